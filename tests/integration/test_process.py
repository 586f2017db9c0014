"""The real ``servelog`` process: telemetry endpoints, SIGTERM drain, secrets hygiene, exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

POD = "team-a_iris-predictor-00001-deployment-7d9f8c6b5-x2x9p_0f1e2d3c-1111-2222-3333-444455556666"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_logs(root: Path, lines: int = 50) -> Path:
    directory = root / POD / "kserve-container"
    directory.mkdir(parents=True)
    with (directory / "0.log").open("wb") as handle:
        for i in range(lines):
            handle.write(b"2026-11-24T09:00:%02d.%dZ stdout F line %d\n" % (i % 60, i + 1, i))
    return directory / "0.log"


def servelog(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "collector", *args], env=full_env,  # type: ignore[call-overload]
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_metrics_health_and_sigterm_drain(tmp_path: Path) -> None:
    log = make_logs(tmp_path / "pods")
    port = free_port()
    proc = servelog("run", "--output", "stdout", "--log-root", str(tmp_path / "pods"), "--state-dir",
                    str(tmp_path / "state"), "--listen", f"127.0.0.1:{port}", "--node-name", "n1")
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 20
        metrics = ""
        while time.monotonic() < deadline:
            _status, metrics = get(f"http://127.0.0.1:{port}/metrics")
            if "servelog_lines_read_total 50.0" in metrics:
                break
            time.sleep(0.1)
        assert "servelog_lines_read_total 50.0" in metrics
        assert 'servelog_bulk_requests_total{outcome="ok"}' in metrics
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert get(f"http://127.0.0.1:{port}/nope")[0] == 404
        with log.open("ab") as handle:
            handle.write(b"2026-11-24T09:01:00Z stdout F after\n")
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out.count(b"\n") == 51
    assert b"shutdown_requested" in err and b"collector_stopped" in err


def test_invalid_settings_exit_2_listing_every_problem(tmp_path: Path) -> None:
    proc = servelog("run", "--once", "--opensearch-url", "ftp://nowhere", "--log-root", str(tmp_path),
                    env={"SERVELOG_PIPELINE__QUEUE_BATCHES": "0"})
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"opensearch.url" in err and b"queue_batches" in err


def test_secrets_never_reach_logs_argv_or_output(tmp_path: Path) -> None:
    """A canary password, given as a file, must not appear anywhere the collector writes."""
    make_logs(tmp_path / "pods", lines=3)
    canary = "canary-S3cr3t-7731"
    secret_file = tmp_path / "password"
    secret_file.write_text(canary)
    port = free_port()  # nothing listens: every request fails and gets logged
    proc = servelog("run", "--log-root", str(tmp_path / "pods"), "--state-dir", str(tmp_path / "state"),
                    "--opensearch-url", f"http://127.0.0.1:{port}", "--listen", "",
                    env={"SERVELOG_OPENSEARCH__USERNAME": "collector", "SERVELOG_OPENSEARCH__PASSWORD_FILE": str(secret_file),
                         "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05", "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.1",
                         "SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS": "2"})
    try:
        time.sleep(3)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, "the drain could not deliver: not a success"
    assert b"bulk_retry" in out, "the outage was logged"
    for blob in (out, err, cmdline):
        assert canary.encode() not in blob
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes()
