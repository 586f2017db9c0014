"""Bad input, driven through the real process: said out loud, never skipped in silence, never a hang.

- a log root that does not exist, a state directory that cannot be written: exit 2 at start, with
  every other settings problem;
- files the process may not read: logged once, counted, read (in order) once they become readable;
  a ``--once`` run that could not read everything exits non-zero;
- a FIFO, a socket, links under the log root: never opened, never followed (no hang, no
  ``/etc/passwd`` shipped), logged once and counted.

Unreadable files need a process that permissions apply to. As root, the collector runs as uid 0
with an empty capability bounding set (as the DaemonSet runs it: uid 0, no capabilities), and the
"unreadable" files belong to another user with mode 0600; as another user, they are its own files
with mode 0000.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

POD = "team-a_iris-predictor-00001-deployment-7d9f8c6b5-x2x9p_0f1e2d3c-1111-2222-3333-444455556666"
OTHER_POD = "team-a_iris-transformer-00001-deployment-5c8b7d6f4-k7m2q_9a8b7c6d-1111-2222-3333-444455556666"
NOBODY = 65534
PR_CAPBSET_DROP = 24
TIMEOUT = 90  # a safety net for a hung process, not a timing assertion


def cri_lines(texts: list[str], minute: int = 0) -> bytes:
    return b"".join(b"2026-11-24T09:%02d:%02d.%09dZ stdout F %s\n" % (minute, i % 60, i + 1, t.encode())
                    for i, t in enumerate(texts))


def write_log(path: Path, texts: list[str], minute: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cri_lines(texts, minute))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Empties the capability bounding set, then execs argv[1:]: uid 0 keeps no capability after the exec.
_WITHOUT_CAPABILITIES = f"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in range(64):
    if libc.prctl({PR_CAPBSET_DROP}, cap, 0, 0, 0) != 0:
        if ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(sys.argv[1], sys.argv[1:])
"""


def restricted(argv: list[str]) -> list[str]:
    """``argv`` as a process that file permissions apply to (as is, when this user already is one)."""
    return [sys.executable, "-c", _WITHOUT_CAPABILITIES, *argv] if os.geteuid() == 0 else argv


def make_unreadable(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
        path.chmod(0o600)
    else:
        path.chmod(0o000)


@pytest.fixture(scope="module")
def permissions_apply(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip (with the reason) where a process that permissions apply to cannot be had."""
    probe = tmp_path_factory.mktemp("probe") / "secret"
    probe.write_text("x")
    try:
        make_unreadable(probe)
        done = subprocess.run(restricted([sys.executable, "-c", f"open({str(probe)!r}).read()"]),
                              capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        pytest.skip(f"cannot make a process that file permissions apply to: {exc}")
    if done.returncode == 0 or "PermissionError" not in done.stderr:
        pytest.skip("this process cannot drop the capabilities that bypass file permissions (CAP_DAC_*)")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    base.update({"SERVELOG_NODE_NAME": "n1", "SERVELOG_KUBERNETES__ENABLED": "false",
                 "SERVELOG_PIPELINE__SCAN_INTERVAL_SECONDS": "0.1"})
    base.update(extra)
    return base


def run_once(*args: str | Path, extra_env: dict[str, str] | None = None,
             unprivileged: bool = False) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "collector", "run", *map(str, args)]
    return subprocess.run(restricted(argv) if unprivileged else argv, env=env(**(extra_env or {})),
                          capture_output=True, timeout=TIMEOUT, check=False)


def events(stderr: bytes | list[bytes]) -> list[dict[str, Any]]:
    lines = stderr.splitlines() if isinstance(stderr, bytes) else stderr
    out = []
    for line in lines:
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            out.append(parsed)
    return out


def messages(stdout: bytes | list[bytes]) -> list[str]:
    lines = stdout.splitlines() if isinstance(stdout, bytes) else stdout
    return [orjson.loads(line)["source"]["message"] for line in lines if line.strip()]


class Collector:
    """A daemon ``servelog run --output stdout`` whose stdout and stderr are collected as they come."""

    def __init__(self, *args: str | Path, unprivileged: bool = False) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "collector", "run", "--output", "stdout", "--listen", f"127.0.0.1:{self.port}",
                *map(str, args)]
        self.proc = subprocess.Popen(restricted(argv) if unprivileged else argv, env=env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        self._readers = [threading.Thread(target=self._drain, args=(pipe, into), daemon=True)
                         for pipe, into in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(pipe: Any, into: list[bytes]) -> None:
        for line in pipe:
            into.append(line)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in events(list(self.stderr)) if e.get("event") == event]

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM; the exit status (the process must end: a generous timeout is only a safety net)."""
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for collector in started:
        collector.kill()


# -- at start: settings errors ---------------------------------------------------------------------
def test_a_missing_log_root_is_a_settings_error(tmp_path: Path) -> None:
    done = run_once("--once", "--output", "stdout", "--log-root", tmp_path / "no-such-dir")
    assert done.returncode == 2, done.stderr.decode()
    assert f"log_root: {tmp_path / 'no-such-dir'} does not exist" in done.stderr.decode()
    assert done.stdout == b""


def test_a_state_dir_under_a_regular_file_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    done = run_once("--once", "--log-root", tmp_path / "no-such-dir", "--state-dir", tmp_path / "a-file" / "state",
                    "--opensearch-url", "http://127.0.0.1:1", extra_env={"SERVELOG_PIPELINE__QUEUE_BATCHES": "0"})
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"state_dir: {tmp_path / 'a-file' / 'state'} cannot be created: {tmp_path / 'a-file'} is a file" in err
    assert "log_root:" in err and "pipeline.queue_batches" in err, "every problem in one go"
    assert "checkpoints_unreadable" not in err


def test_a_read_only_state_dir_is_a_settings_error(tmp_path: Path, permissions_apply: None) -> None:
    (tmp_path / "pods").mkdir()
    state = tmp_path / "state"
    state.mkdir()
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
    state.chmod(0o555)
    done = run_once("--once", "--log-root", tmp_path / "pods", "--state-dir", state, "--opensearch-url",
                    "http://127.0.0.1:1", "--listen", "", unprivileged=True)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"state_dir: cannot write in {state}: Permission denied" in err


# -- while running: unreadable files -----------------------------------------------------------------
def test_unreadable_files_are_reported_once_counted_and_read_in_order_when_readable(
        tmp_path: Path, permissions_apply: None, collectors: list[Collector]) -> None:
    directory = tmp_path / "pods" / POD / "kserve-container"
    rotated = write_log(directory / "0.log.20261124-090100", [f"old {i}" for i in range(5)], minute=0)
    write_log(directory / "0.log", [f"new {i}" for i in range(5)], minute=1)
    make_unreadable(rotated)  # the oldest file of the stream: nothing after it may be read first
    collector = Collector("--log-root", tmp_path / "pods", unprivileged=True)
    collectors.append(collector)
    wait_until(lambda: 'servelog_files_unreadable_total{reason="permission_denied"} 1.0' in collector.metrics(),
               timeout=TIMEOUT)
    (reported,) = collector.events("input_unreadable")
    assert reported["path"] == str(rotated) and reported["reason"] == "permission_denied"
    assert reported["error"] == "Permission denied" and reported["level"] == "error"
    assert collector.stdout == [], "the stream waits at the file it cannot read"
    rotated.chmod(0o644)
    wait_until(lambda: len(collector.stdout) == 10, timeout=TIMEOUT)
    assert collector.stop() == 0
    assert messages(collector.stdout) == [f"old {i}" for i in range(5)] + [f"new {i}" for i in range(5)]
    assert len(collector.events("input_unreadable")) == 1, "logged once, not at every poll"
    assert [e["path"] for e in collector.events("input_readable")] == [str(rotated)]


def test_a_once_run_that_could_not_read_a_file_exits_non_zero_saying_why(tmp_path: Path, permissions_apply: None) -> None:
    write_log(tmp_path / "pods" / POD / "kserve-container" / "0.log", ["readable"])
    hidden = write_log(tmp_path / "pods" / POD / "agent" / "0.log", ["hidden"])
    make_unreadable(hidden)
    hidden_dir = write_log(tmp_path / "pods" / POD / "transformer-container" / "0.log", ["hidden too"]).parent
    make_unreadable(hidden_dir)  # a directory that cannot be listed
    done = run_once("--once", "--output", "stdout", "--log-root", tmp_path / "pods", unprivileged=True)
    assert done.returncode == 1, done.stderr.decode()
    assert messages(done.stdout) == ["readable"]
    found = events(done.stderr)
    assert sorted((e["path"], e["reason"]) for e in found if e.get("event") == "input_unreadable") == sorted([
        (str(hidden), "permission_denied"), (str(hidden_dir), "permission_denied")])
    assert any(e.get("event") == "collector_failed" and "could not be read" in e["reason"] for e in found)


# -- only regular files, no link followed -------------------------------------------------------------
def make_hostile_tree(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A log root with one good stream, a FIFO, a socket and links pointing out of the root."""
    root = tmp_path / "pods"
    write_log(root / POD / "kserve-container" / "0.log", [f"good {i}" for i in range(3)])
    outside = tmp_path / "outside"
    secret = write_log(outside / "secret.log", ["root:x:0:0:root:/root:/bin/bash"])
    write_log(outside / "container" / "0.log", ["root:x:0:0:from a linked container dir"])
    write_log(outside / "pod" / "kserve-container" / "0.log", ["root:x:0:0:from a linked pod dir"])
    skipped = {
        "fifo": root / POD / "storage-initializer" / "0.log",
        "socket": root / POD / "transformer-container" / "0.log",
        "file link": root / POD / "agent" / "0.log",
        "container link": root / POD / "queue-proxy-copy",
        "pod link": root / OTHER_POD,
    }
    skipped["fifo"].parent.mkdir(parents=True)
    os.mkfifo(skipped["fifo"])
    skipped["socket"].parent.mkdir(parents=True)
    short = Path(tempfile.mkdtemp(prefix="sl-")) / "s"  # AF_UNIX paths are short: bind there, move it in
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(short))
    short.rename(skipped["socket"])  # the socket file stays
    short.parent.rmdir()
    skipped["file link"].parent.mkdir(parents=True)
    skipped["file link"].symlink_to(secret)
    skipped["container link"].symlink_to(outside / "container")
    skipped["pod link"].symlink_to(outside / "pod")
    return root, skipped


def test_fifo_socket_and_links_are_skipped_counted_and_sigterm_still_stops_the_collector(
        tmp_path: Path, collectors: list[Collector]) -> None:
    root, skipped = make_hostile_tree(tmp_path)
    collector = Collector("--log-root", root)
    collectors.append(collector)

    def counted() -> bool:
        metrics = collector.metrics()
        return all(f'servelog_files_skipped_total{{reason="{reason}"}} {count}' in metrics
                   for reason, count in (("fifo", "1.0"), ("socket", "1.0"), ("symlink", "3.0")))

    wait_until(lambda: counted() and len(collector.stdout) == 3, timeout=TIMEOUT)
    time.sleep(0.5)  # a few more scans: each entry is still reported once
    assert collector.stop() == 0, b"".join(collector.stderr).decode()
    assert messages(collector.stdout) == ["good 0", "good 1", "good 2"]
    assert b"root:x:0:0" not in b"".join(collector.stdout), "a link out of the log root was followed"
    reported = sorted((e["path"], e["reason"]) for e in collector.events("input_skipped"))
    assert reported == sorted([(str(skipped["fifo"]), "fifo"), (str(skipped["socket"]), "socket"),
                               (str(skipped["file link"]), "symlink"), (str(skipped["container link"]), "symlink"),
                               (str(skipped["pod link"]), "symlink")])


def test_a_once_run_over_a_fifo_ends(tmp_path: Path) -> None:
    root, _skipped = make_hostile_tree(tmp_path)
    done = run_once("--once", "--output", "stdout", "--log-root", root)
    assert done.returncode == 0, done.stderr.decode()
    assert messages(done.stdout) == ["good 0", "good 1", "good 2"]
    assert {e["reason"] for e in events(done.stderr) if e.get("event") == "input_skipped"} == {"fifo", "socket", "symlink"}


def test_a_log_root_that_vanishes_while_running_is_said_and_keeps_every_position(
        tmp_path: Path, collectors: list[Collector]) -> None:
    root = tmp_path / "pods"
    live = write_log(root / POD / "kserve-container" / "0.log", [f"line {i}" for i in range(5)])
    collector = Collector("--log-root", root)
    collectors.append(collector)
    wait_until(lambda: len(collector.stdout) == 5, timeout=TIMEOUT)
    away = tmp_path / "unmounted"
    root.rename(away)  # an unmounted or deleted hostPath: not "every pod is gone"
    wait_until(lambda: collector.events("log_root_missing"), timeout=TIMEOUT)
    assert 'servelog_files_unreadable_total{reason="missing"} 1.0' in collector.metrics()
    away.rename(root)
    with live.open("ab") as handle:
        handle.write(cri_lines([f"line {i}" for i in range(5, 8)], minute=1))
    wait_until(lambda: len(collector.stdout) >= 8 and collector.events("log_root_back"), timeout=TIMEOUT)
    assert collector.stop() == 0
    assert messages(collector.stdout) == [f"line {i}" for i in range(8)], "resumed where it stopped: nothing read twice"
    assert len(collector.events("log_root_missing")) == 1, "said once, not at every scan"
