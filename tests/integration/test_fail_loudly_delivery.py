"""Fail loudly, lose nothing: the real ``servelog run`` against destinations that do not take documents.

A wrong URL (404, a login page, refused credentials) must not dead-letter a single line nor move a
checkpoint; ``--once`` ends within its bound with exit status 3 and says why; the right URL then
indexes every line exactly once (the ledger). Also: every stdout line is JSON, a second SIGTERM
stops at once keeping only acknowledged positions, readiness ignores OpenSearch but tracks the
state directory, liveness survives backpressure, and a dry run says it printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.app import App
from collector.settings import load_settings
from tests.integration.test_process import free_port
from tests.support.logwriter import ContainerLog, Ledger
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.tls import make_test_pki
from tests.support.wait import wait_until
from tests.support.wrong_destination import WrongDestination

pytestmark = pytest.mark.slow

FAST = {
    "SERVELOG_OPENSEARCH__BULK_MAX_DOCS": "100",
    "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1",
    "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05",
    "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.2",
    "SERVELOG_OPENSEARCH__ONCE_GIVE_UP_SECONDS": "1.5",
    "SERVELOG_PIPELINE__SCAN_INTERVAL_SECONDS": "0.1",
    "SERVELOG_PIPELINE__CHECKPOINT_INTERVAL_SECONDS": "0.1",
    "SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS": "5",
    "SERVELOG_TELEMETRY__LISTEN": "",
    "SERVELOG_NODE_NAME": "node-1",
}


class Node:
    """A log root with a ledger, and the servelog process run against some URL."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "pods"
        self.state = tmp / "state"
        self.ledger = Ledger()
        self.clock = [1795510800 * 10**9]
        self.logs = [ContainerLog(self.root, namespace="team-a", pod="iris-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                                  uid="0f1e2d3c-1111-2222-3333-444455556666", container=c, ledger=self.ledger,
                                  clock=self.clock) for c in ("kserve-container", "storage-initializer")]

    def write(self, lines: int, tag: str = "line") -> None:
        for log in self.logs:
            log.write_many([f"{tag} {i} of {log.container}" for i in range(lines)])

    def env(self, url: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update(FAST, SERVELOG_LOG_ROOT=str(self.root), SERVELOG_STATE_DIR=str(self.state),
                   SERVELOG_OPENSEARCH__URL=url)
        env.update(extra)
        return env

    def once(self, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "collector", "run", "--once", *args], env=self.env(url, **extra),
                              capture_output=True, timeout=120, check=False)

    def start(self, url: str, **extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "collector", "run"], env=self.env(url, **extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def checkpoints(self) -> dict[str, Any]:
        path = self.state / "checkpoints.json"
        return orjson.loads(path.read_bytes())["streams"] if path.exists() else {}

    def deadletter_file(self) -> Path:
        return self.state / "deadletter" / "deadletter.ndjson"


def summary_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    line = [x for x in done.stderr.splitlines() if x.startswith(b'{"summary"')][-1]
    return orjson.loads(line)["summary"]


def json_lines(out: bytes) -> list[dict[str, Any]]:
    """Every stdout line, parsed: a line that is not a JSON object fails the test."""
    events = []
    for number, line in enumerate(out.splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError(f"stdout line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(event, dict) and "event" in event and "level" in event, line[:300]
        events.append(event)
    return events


def get(url: str) -> tuple[int, str]:
    """(status, body); (0, "") while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.parametrize(("mode", "words"), [
    ("404", "the URL does not answer like OpenSearch: 404 for POST /_bulk"),
    ("html", "the URL does not answer like OpenSearch: 200 for POST /_bulk"),
    ("401", "the credentials were refused: 401 for POST /_bulk"),
])
def test_a_wrong_destination_takes_nothing_then_the_right_one_gets_every_line_once(
        tmp_path: Path, mode: str, words: str) -> None:
    node = Node(tmp_path)
    node.write(150)
    with WrongDestination(mode) as wrong:
        done = node.once(wrong.url)
        assert wrong.bulk_requests() >= 2
    err = done.stderr.decode()
    assert done.returncode == 3, err[-2000:]
    assert words in err and "gave up after 1.5s without progress" in err
    summary = summary_of(done)
    assert summary["indexed"] == summary["dead_lettered"] == 0 and summary["gave_up"]
    assert not node.deadletter_file().exists(), "a whole-request refusal dead-letters nothing"
    assert node.checkpoints() == {}, "nothing acknowledged, no position moved"
    events = json_lines(done.stdout)
    assert any(e["event"] == "destination_problem" and words in e["message"] for e in events)

    with FakeOpenSearch() as fos:
        again = node.once(fos.url)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        report = node.ledger.compare(fos.all_sources("serving-logs-*"))
        assert report.exactly_once, str(report)
        assert fos.doc_count("serving-deadletter-*") == 0
    assert summary_of(again)["indexed"] == len(node.ledger) == 300
    assert not node.deadletter_file().exists()


@pytest.mark.parametrize("case", ["unreachable", "wrong-ca", "garbage-ca"])
def test_once_gives_up_within_its_bound_exits_3_and_stdout_stays_json(tmp_path: Path, case: str) -> None:
    node = Node(tmp_path)
    node.write(20)
    if case == "unreachable":
        done = node.once(f"http://127.0.0.1:{free_port()}")
        words = "OpenSearch unreachable at http://127.0.0.1"
    else:
        pki = make_test_pki(tmp_path / "pki")
        ca = pki.wrong_ca_file
        if case == "garbage-ca":
            ca = tmp_path / "ca.pem"
            ca.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        with FakeOpenSearch(ssl_context=pki.server_context()) as fos:
            done = node.once(fos.url, SERVELOG_OPENSEARCH__CA_FILE=str(ca))
            assert fos.doc_count() == 0
        words = "TLS with https://127.0.0.1"
    err = done.stderr.decode()
    assert done.returncode == 3, err[-2000:]
    assert words in err and "not everything was delivered" in err
    events = json_lines(done.stdout)
    names = {e["event"] for e in events}
    assert {"bulk_retry", "destination_problem", "delivery_gave_up", "delivery_incomplete"} <= names
    assert not any("Traceback" in json.dumps(e) for e in events), "an exception is one short field"
    assert node.checkpoints() == {} and not node.deadletter_file().exists()


def test_several_senders_never_overflow_the_connection_pool_and_stdout_is_json(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.write(600)
    with FakeOpenSearch() as fos:
        fos.set_delay(0.02)
        done = node.once(fos.url, SERVELOG_OPENSEARCH__WORKERS="4", SERVELOG_OPENSEARCH__BULK_MAX_DOCS="20",
                         SERVELOG_TELEMETRY__LOG_LEVEL="info")
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert node.ledger.compare(fos.all_sources("serving-logs-*")).exactly_once
    assert b"pool is full" not in done.stdout + done.stderr
    assert {e["event"] for e in json_lines(done.stdout)} >= {"collector_started", "collector_stopped"}


def test_a_dry_run_says_it_printed(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.write(5)
    done = node.once("http://127.0.0.1:9", "--output", "stdout")
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    assert "10 printed to stdout (dry run: nothing sent to OpenSearch)" in err and "indexed" not in err.splitlines()[-2]
    summary = summary_of(done)
    assert (summary["printed"], summary["indexed"], summary["output"]) == (10, 0, "stdout")
    assert len(done.stdout.splitlines()) == 10


def test_a_second_sigterm_stops_at_once_and_keeps_only_acknowledged_positions(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.write(50, "first")
    port = free_port()
    with FakeOpenSearch() as fos:
        proc = node.start(fos.url, SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS="120",
                          SERVELOG_TELEMETRY__LISTEN=f"127.0.0.1:{port}")
        try:
            wait_until(lambda: fos.doc_count("serving-logs-*") == 100)
            wait_until(lambda: len(node.checkpoints()) == 2)
            saved = node.checkpoints()
            fos.set_delay(600)  # the next requests hang: senders stay in the middle of a request
            node.write(50, "second")
            wait_until(lambda: "servelog_lines_read_total 200.0" in get(f"http://127.0.0.1:{port}/metrics")[1])
            time.sleep(0.5)  # the batch is sent (flush interval 0.1 s)
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1.5)  # draining: waits for the hanging request (up to 120 s)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 3, err.decode()[-2000:]
        assert node.checkpoints() == saved, "positions stay as acknowledged"
        assert "shutdown_forced" in {e["event"] for e in json_lines(out)}
        fos.set_delay(0)
        again = node.once(fos.url)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        report = node.ledger.compare(fos.all_sources("serving-logs-*"))
        assert report.exactly_once, str(report)


def test_readiness_ignores_opensearch_health_reports_it_and_readiness_tracks_checkpoint_writes(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.write(20, "outage")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeOpenSearch() as fos:
        fos.set_unavailable(True)
        proc = node.start(fos.url, SERVELOG_TELEMETRY__LISTEN=f"127.0.0.1:{port}")
        try:
            wait_until(lambda: "servelog_destination_healthy 0.0" in get(f"{base}/metrics")[1])
            ready, ready_body = get(f"{base}/readyz")
            assert (ready, ready_body.strip()) == (200, "ready"), "an outage is not a reason to be NotReady"
            alive, health = get(f"{base}/healthz")
            assert alive == 200 and "OpenSearch: unavailable for" in health and "503" in health
            assert 'servelog_destination_errors_total{reason="unavailable"}' in get(f"{base}/metrics")[1]

            fos.set_unavailable(False)
            wait_until(lambda: fos.doc_count("serving-logs-*") == 40)
            wait_until(lambda: "OpenSearch: ok" in get(f"{base}/healthz")[1])
            assert "servelog_destination_healthy 1.0" in get(f"{base}/metrics")[1]

            wait_until(lambda: len(node.checkpoints()) == 2)
            shutil.rmtree(node.state)
            node.state.write_text("a file where the state directory was")  # saves fail from now on
            node.write(5, "while unwritable")
            wait_until(lambda: get(f"{base}/readyz")[0] == 503)
            assert "checkpoints cannot be saved" in get(f"{base}/readyz")[1]
            assert 'servelog_checkpoint_save_failures_total' in get(f"{base}/metrics")[1]
            node.state.unlink()
            wait_until(lambda: get(f"{base}/readyz")[0] == 200)
            assert len(node.checkpoints()) == 2, "the positions kept in memory were saved whole"
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
        events = [e["event"] for e in json_lines(out)]
        assert events.count("checkpoint_save_failed") == 1, "logged once per cause, not per attempt"
        assert "checkpoint_save_recovered" in events and "destination_recovered" in events
        assert node.ledger.compare(fos.all_sources("serving-logs-*")).exactly_once


def test_liveness_holds_while_reading_waits_for_the_senders(tmp_path: Path) -> None:
    """An outage with a backlog: the reader blocks on the full queue; that is backpressure, not a hang."""
    node = Node(tmp_path)
    node.write(3000)
    with FakeOpenSearch() as fos:
        fos.set_unavailable(True)
        settings = load_settings(environ=node.env(fos.url, SERVELOG_OPENSEARCH__BULK_MAX_DOCS="50",
                                                  SERVELOG_PIPELINE__QUEUE_BATCHES="1"))
        later = 600.0  # every heartbeat looks ten minutes old to the health check
        app = App(settings, clock=lambda: time.monotonic() + later)
        thread = threading.Thread(target=app.run, daemon=True)
        thread.start()
        try:
            wait_until(app.queue.full)
            alive, detail = app.alive()
            assert alive, detail
            assert "reading waits for the senders" in detail and "OpenSearch: unavailable" in detail
            assert app.ready() == (True, "ready")
        finally:
            app.stop.set()
            app.abort.set()
            thread.join(timeout=30)
        assert not thread.is_alive()
        assert app.alive()[0] is False, "a reader that stopped polling, with room in the queue, is not alive"
