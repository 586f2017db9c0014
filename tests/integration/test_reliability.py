"""Exactly-once, checked by a ledger oracle against the real servelog process.

Every line the writer puts in the kubelet layout is recorded in a ledger; the loopback OpenSearch
holds what servelog indexed; the ledger comparison requires each line exactly once (and nothing
else). The faults are the ones that lose or duplicate lines in the field: SIGKILL mid-batch,
rotations (renamed and gzipped) while running and while stopped, a partial line split across a
rotation with a crash in between, OpenSearch outages, per-item 429/400/409, a connection dropped
after OpenSearch applied the bulk, request-too-large, and hostile input.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.logwriter import ContainerLog, Ledger
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

FAST = {
    "SERVELOG_OPENSEARCH__BULK_MAX_DOCS": "300",
    "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1",
    "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05",
    "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.3",
    "SERVELOG_PIPELINE__SCAN_INTERVAL_SECONDS": "0.1",
    "SERVELOG_PIPELINE__CHECKPOINT_INTERVAL_SECONDS": "0.1",
    "SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS": "5",
    "SERVELOG_PIPELINE__QUEUE_BATCHES": "2",
    "SERVELOG_TELEMETRY__LISTEN": "",
    "SERVELOG_NODE_NAME": "node-1",
}


class Node:
    """A log root, a ledger, a loopback OpenSearch and a way to run servelog against them."""

    def __init__(self, tmp: Path, fos: FakeOpenSearch) -> None:
        self.root = tmp / "pods"
        self.root.mkdir()
        self.state = tmp / "state"
        self.fos = fos
        self.ledger = Ledger()
        self.clock = [1795510800 * 10**9]

    def container(self, name: str, *, pod: str = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                  uid: str = "0f1e2d3c-1111-2222-3333-444455556666", namespace: str = "team-a",
                  max_files: int = 5) -> ContainerLog:
        return ContainerLog(self.root, namespace=namespace, pod=pod, uid=uid, container=name, ledger=self.ledger,
                            clock=self.clock, max_files=max_files)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update(FAST)
        env.update(SERVELOG_LOG_ROOT=str(self.root), SERVELOG_STATE_DIR=str(self.state),
                   SERVELOG_OPENSEARCH__URL=self.fos.url)
        env.update(extra)
        return env

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "collector", "run"], env=self.env(**extra),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def once(self, **extra: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "collector", "run", "--once"], env=self.env(**extra),
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        summary_line = [line for line in done.stderr.splitlines() if line.startswith(b'{"summary"')][-1]
        return orjson.loads(summary_line)["summary"]

    def indexed(self) -> list[dict[str, Any]]:
        return self.fos.all_sources("serving-logs-*")

    def assert_exactly_once(self) -> None:
        report = self.ledger.compare(self.indexed())
        assert report.exactly_once, str(report)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with FakeOpenSearch() as fos:
        yield Node(tmp_path, fos)




def test_sigkill_at_random_instants_loses_and_duplicates_nothing(node: Node) -> None:
    rng = random.Random(7)
    # The kubelet's max-files deletion is left out here (a file deleted before it was read is a
    # counted gap, tested on its own): this test is about crashes, not about outrunning rotation.
    logs = [node.container(c, max_files=1000) for c in ("kserve-container", "agent", "storage-initializer")]
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 6000:
            log = rng.choice(logs)
            kind = rng.random()
            if kind < 0.02:
                log.rotate(compress=True)
            elif kind < 0.04:
                log.write_traceback(["Traceback (most recent call last):", f'  File "m.py", line {n}, in f',
                                     f"ValueError: {n}"])
            elif kind < 0.05:
                log.write_long(40_000, 1024 * 1024)
            else:
                log.write_many([f"line {n} {'x' * rng.randint(0, 80)}" for _ in range(5)])
            n += 5
            time.sleep(0.001)

    node.fos.set_delay(0.01)  # keep batches in flight when the kill lands
    thread = threading.Thread(target=writer)
    thread.start()
    kills = 0
    try:
        while thread.is_alive() or kills < 3:
            proc = node.start()
            time.sleep(rng.uniform(0.4, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if kills > 12:
                break
    finally:
        stop.set()
        thread.join()
    node.fos.set_delay(0)
    summary = node.once()
    assert kills >= 3
    assert summary["indexed"] + summary["already_present"] <= summary["documents"]
    node.assert_exactly_once()


def test_outage_pauses_reading_then_the_backlog_drains(node: Node) -> None:
    log = node.container("kserve-container")
    node.fos.set_unavailable(True)
    proc = node.start()
    try:
        for burst in range(20):
            log.write_many([f"burst {burst} line {i} " + "y" * 100 for i in range(1000)])
        time.sleep(2)
        assert node.fos.doc_count() == 0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kib = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        assert rss_kib < 200 * 1024, f"memory grew with the backlog: {rss_kib} KiB"
        node.fos.set_unavailable(False)
        wait_until(lambda: node.fos.doc_count() >= len(node.ledger), timeout=90)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert 503 in node.fos.statuses()
    node.assert_exactly_once()


def test_item_faults_retry_only_failed_items_and_dead_letter_permanent_ones(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_many([f"ok {i}" for i in range(200)])
    log.write_many([f"FLAKY {i}" for i in range(20)])
    poison = [f"POISON {i}" for i in range(5)]
    for line in poison:
        log.write_raw(log.records(line.encode()), expect=None)  # not expected in the log index
    attempts: dict[str, int] = {}

    def fault(index: str, doc_id: str, source: dict[str, Any]) -> int | None:
        message = source.get("message", "")
        if index.startswith("serving-logs-") and message.startswith("POISON"):
            return 400
        if message.startswith("FLAKY"):
            attempts[doc_id] = attempts.get(doc_id, 0) + 1
            return 429 if attempts[doc_id] <= 2 else None
        return None

    node.fos.fail_items_where(fault)
    summary = node.once()
    node.assert_exactly_once()
    assert summary["dead_lettered"] == 5
    assert sorted(attempts.values()) == [3] * 20, "flaky items were resent, and only they"
    dead = node.fos.all_sources("serving-deadletter-*")
    assert sorted(d["raw"] for d in dead) == sorted(poison)
    assert all(d["status"] == 400 and d["error_type"] == "mapper_parsing_exception" for d in dead)
    assert all(d["target_index"] == "serving-logs-team-a-2026.11.24" and d["doc_id"] for d in dead)
    # a replay from scratch is harmless: everything is already there
    (node.state / "checkpoints.json").unlink()
    again = node.once()
    assert again["indexed"] == 0 and again["already_present"] == 220
    node.assert_exactly_once()


def test_dead_letter_falls_back_to_a_local_file(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_raw(log.records(b"POISON everywhere"), expect=None)
    log.write("fine")
    node.fos.fail_items_where(lambda index, _id, source: 400 if "POISON" in str(source) else None)
    summary = node.once()
    assert summary["dead_lettered"] == 1
    records = [orjson.loads(line) for line in (node.state / "deadletter" / "deadletter.ndjson").read_bytes().splitlines()]
    assert [r["raw"] for r in records] == ["POISON everywhere"] and records[0]["status"] == 400
    node.assert_exactly_once()


def test_connection_dropped_after_bulk_applied_gives_409_not_duplicates(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_many([f"line {i}" for i in range(500)])
    node.fos.drop_connections(2, after_processing=True)
    summary = node.once()
    assert summary["already_present"] > 0
    node.assert_exactly_once()


def test_request_too_large_is_split(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_many([f"line {i}" for i in range(100)])
    node.fos.fail_requests(413, 1)
    node.once()
    assert 413 in node.fos.statuses()
    node.assert_exactly_once()


def test_rotations_and_gzip_while_the_collector_is_stopped(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_many([f"first {i}" for i in range(100)])
    log.write_partial("half-")  # a P at the end of the file that will be rotated
    node.once(SERVELOG_PIPELINE__PARTIAL_FLUSH_SECONDS="60")
    log.rotate()
    log.write_final("line", whole_line="half-line")
    log.write_many([f"second {i}" for i in range(100)])
    log.rotate()  # the first rotated file is gzipped now
    log.write_many([f"third {i}" for i in range(100)])
    assert any(p.suffix == ".gz" for p in log.directory.iterdir())
    node.once()
    node.assert_exactly_once()


def test_crash_between_a_partial_and_its_final_across_rotation(node: Node) -> None:
    log = node.container("kserve-container")
    log.write_many(["before"])
    log.write_partial("head-")
    proc = node.start(SERVELOG_PIPELINE__PARTIAL_FLUSH_SECONDS="60")
    wait_until(lambda: node.fos.doc_count() == 1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.rotate()
    log.write_final("tail", whole_line="head-tail")
    node.once()
    node.assert_exactly_once()


def test_hostile_input_gets_an_outcome_for_every_line(node: Node) -> None:
    log = node.container("kserve-container")
    log.write(b"invalid \xff\xfe utf-8", expect="invalid \ufffd\ufffd utf-8")
    log.write(b"nul \x00 byte")
    log.write_long(10 * 1024 * 1024, 1024 * 1024)  # 10 MB, in 16 KiB P chunks
    log.write_raw(b"this is not a CRI record\n", expect="this is not a CRI record")
    ndjson = '{"index":{"_index":"victim","_id":"x"}}\n{"field":"forged"}'
    log.write(ndjson.replace("\n", "\\n"))
    log.write('{"_index":"other","_id":"forged","routing":"r"}')
    log.write(orjson.dumps({f"k{i}": i for i in range(5000)}).decode())
    log.write("\r\n".strip() + "crlf line\r")
    summary = node.once()
    assert summary["dead_lettered"] == 0
    node.assert_exactly_once()
    docs = node.indexed()
    assert {d["parse_error"] for d in docs if "parse_error" in d} == {"invalid_utf8", "malformed_cri"}
    assert set(node.fos.documents()) == {"serving-logs-team-a-2026.11.24"}
    big = next(d for d in docs if d.get("truncated"))
    assert big["original_bytes"] == 10 * 1024 * 1024 and len(big["message"]) == 1024 * 1024


def test_trailing_partial_of_a_finished_container_is_flushed(node: Node) -> None:
    log = node.container("storage-initializer")
    log.write("Copying contents of s3://models/iris/2 to local")
    log.write_partial("Model downloaded in 1.11 seconds.")  # exit without a newline: P, no F
    node.ledger.record(log.uid, log.container, 0, "Model downloaded in 1.11 seconds.")
    old = time.time() - 120
    os.utime(log.path, (old, old))  # the container finished two minutes ago
    node.once()
    node.assert_exactly_once()


def test_trailing_partial_is_flushed_by_the_daemon_after_the_idle_delay(node: Node) -> None:
    log = node.container("storage-initializer")
    log.write_partial("last words")
    node.ledger.record(log.uid, log.container, 0, "last words")
    proc = node.start(SERVELOG_PIPELINE__PARTIAL_FLUSH_SECONDS="0.5")
    try:
        wait_until(lambda: node.fos.doc_count() == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    node.assert_exactly_once()
