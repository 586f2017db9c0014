"""What a new user hits in the first hour, through the real process.

``servelog logs | head`` ends quietly; ``--listen abc`` and a busy port are settings errors; a dry run
binds no port unless asked; ``--config`` after the subcommand; lists and maps from the environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collector.cli import main
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pods"
TIMEOUT = 90  # a safety net for a hung process, not a timing assertion


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    base.update({"SERVELOG_NODE_NAME": "n1", "SERVELOG_KUBERNETES__ENABLED": "false"})
    base.update(extra)
    return base


def servelog(*args: str | Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "collector", *map(str, args)], env=env(**(extra_env or {})),
                          capture_output=True, timeout=TIMEOUT, check=False)


def write_logs(root: Path, pod_dir: str, containers: list[str], lines: int = 3) -> None:
    for container in containers:
        directory = root / pod_dir / container
        directory.mkdir(parents=True)
        (directory / "0.log").write_bytes(b"".join(
            b"2026-11-24T09:00:%02d.%09dZ stdout F %s line %d\n" % (i, i + 1, container.encode(), i)
            for i in range(lines)))


POD_DIR = "team-a_iris-predictor-00001-deployment-7d9f8c6b5-x2x9p_0f1e2d3c-1111-2222-3333-444455556666"


def sources(stdout: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line)["source"] for line in stdout.splitlines() if line.strip()]


# -- --listen (settings errors: in process, the collector never starts) ---------------------------------------
def test_a_malformed_listen_address_is_a_settings_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--output", "stdout", "--log-root", str(tmp_path), "--listen", "abc"]) == 2
    err = capsys.readouterr().err
    assert "telemetry.listen: expected host:port" in err and "'abc'" in err


def test_a_busy_port_is_a_settings_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = main(["run", "--once", "--output", "stdout", "--log-root", str(tmp_path), "--listen", f"127.0.0.1:{port}"])
    assert status == 2
    assert f"telemetry.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err


def listening_sockets(pid: int) -> set[str]:
    """Inodes of the TCP sockets in LISTEN state that process ``pid`` holds."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A":
                listening.add(fields[9])
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:["):-1])
    return held & listening


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the process's sockets from /proc (Linux)")
@pytest.mark.parametrize("listen", [None, "127.0.0.1:0"])
def test_a_dry_run_binds_no_port_unless_asked(tmp_path: Path, listen: str | None) -> None:
    write_logs(tmp_path / "pods", POD_DIR, ["kserve-container"])
    args = ["--listen", listen] if listen is not None else []
    proc = subprocess.Popen([sys.executable, "-m", "collector", "run", "--output", "stdout", "--log-root",
                             str(tmp_path / "pods"), *args], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: len(out) == 3, timeout=TIMEOUT)  # running: past the point where it would have bound
        sockets = listening_sockets(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    if listen is None:
        assert sockets == set(), "a dry run listens only when --listen (or telemetry.listen) is given"
    else:
        assert len(sockets) == 1, "the check sees a listening socket when there is one"


# -- --config after the subcommand ---------------------------------------------------------------------
@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fos:
        yield fos


def test_config_is_accepted_after_the_subcommand(tmp_path: Path, opensearch: FakeOpenSearch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_logs(tmp_path / "pods", POD_DIR, ["kserve-container"])
    config = tmp_path / "servelog.yaml"
    config.write_text(f"log_root: {tmp_path / 'pods'}\nopensearch:\n  url: {opensearch.url}\n")
    run = servelog("run", "--once", "--output", "stdout", "--config", config)
    assert run.returncode == 0, run.stderr.decode()
    assert len(sources(run.stdout)) == 3
    for argv in (["setup", "--config", str(config)], ["--config", str(config), "setup"]):
        assert main([*argv, "--dry-run", "--skip-dashboards"]) == 0
        assert opensearch.url.split("//")[1] in capsys.readouterr().out
    assert main(["logs", "--config", str(config), "--serving", "iris"]) == 0
    assert any(r.path.startswith("/serving-logs-*/_search") for r in opensearch.requests)


# -- lists and maps from the environment -----------------------------------------------------------------
def test_lists_and_maps_from_the_environment_as_json(tmp_path: Path) -> None:
    pod = json.loads((FIXTURES / "kserve-serverless-predictor.json").read_text())
    pod["metadata"]["labels"]["team"] = "fraud"
    meta = pod["metadata"]
    metadata = tmp_path / "pods.json"
    metadata.write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [pod]}))
    write_logs(tmp_path / "pods", f"{meta['namespace']}_{meta['name']}_{meta['uid']}",
               ["kserve-container", "agent", "queue-proxy"])
    done = servelog("run", "--once", "--output", "stdout", "--log-root", tmp_path / "pods", "--metadata-file", metadata,
                    extra_env={"SERVELOG_PIPELINE__EXCLUDE_CONTAINERS": '["queue-proxy","agent"]',
                               "SERVELOG_KUBERNETES__CUSTOM_FIELDS": '{"team":"label:team"}'})
    assert done.returncode == 0, done.stderr.decode()
    docs = sources(done.stdout)
    assert {d["container_name"] for d in docs} == {"kserve-container"}
    assert len(docs) == 3 and {d["team"] for d in docs} == {"fraud"}


# -- servelog logs | head ------------------------------------------------------------------------------------
def test_logs_into_a_closed_pipe_end_quietly(opensearch: FakeOpenSearch) -> None:
    lines = []
    for i in range(3000):
        lines.append(orjson.dumps({"create": {"_index": "serving-logs-team-a-2026.11.24", "_id": f"id-{i:05d}"}}))
        lines.append(orjson.dumps({"timestamp": f"2026-11-24T09:00:00.{i:09d}Z", "serving_name": "iris",
                                   "message": f"line {i} " + "x" * 80, "level": "info"}))
    import urllib.request

    request = urllib.request.Request(f"{opensearch.url}/_bulk?refresh=true", data=b"\n".join(lines) + b"\n",
                                     headers={"Content-Type": "application/x-ndjson"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    proc = subprocess.Popen([sys.executable, "-m", "collector", "logs", "--opensearch-url", opensearch.url,
                             "--limit", "0"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    status = proc.wait(timeout=TIMEOUT)
    assert b"line 0 " in first
    assert err == b"", err.decode()
    assert status == 128 + signal.SIGPIPE, "the status of a command stopped by a closed pipe"
