"""Delivery against a real OpenSearch: what heals is retried, never dead-lettered, and nothing is lost.

Each case makes the real node refuse writes the way production clusters do, checks that servelog
reports the reason and keeps retrying, heals the cluster, and checks the ledger: every line exactly
once, nothing in the dead-letter index or file.

- real 429s: a node with a one-thread write pool and a one-slot queue, several senders;
- a write block on the target index (``index.blocks.write``) and the flood-stage watermark's
  ``index.blocks.read_only_allow_delete`` (per-item refusals), lifted by the test;
- a cluster read-only block (``cluster.blocks.read_only``: the whole request is refused);
- the shard limit: ``cluster.max_shards_per_node`` reached, so auto-creating the day's index fails
  (``validation_exception``), until the limit is raised.

The default dynamic mapping is enough here (no templates needed).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.support.logwriter import ContainerLog, Ledger
from tests.support.opensearch_node import OpenSearchNode
from tests.support.wait import wait_until

pytestmark = pytest.mark.e2e

POD, UID = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p", "0f1e2d3c-1111-2222-3333-444455556666"
DAY = "2026.11.24"  # the day of tests.support.logwriter.BASE_NS


def rest(url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read()[:500]!r}") from None


class Run:
    """``servelog run --once`` in the background, its stdout events collected as they come."""

    def __init__(self, url: str, tmp_path: Path, **extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update({
            "SERVELOG_LOG_ROOT": str(tmp_path / "pods"), "SERVELOG_STATE_DIR": str(tmp_path / "state"),
            "SERVELOG_OPENSEARCH__URL": url, "SERVELOG_TELEMETRY__LISTEN": "", "SERVELOG_NODE_NAME": "e2e",
            "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.1", "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.5",
            "SERVELOG_OPENSEARCH__ONCE_GIVE_UP_SECONDS": "120",
        })
        env.update(extra)
        self.events: list[dict[str, Any]] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "collector", "run", "--once"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))  # every stdout line is a JSON event

    def saw(self, event: str, **fields: str) -> bool:
        return any(e["event"] == event and all(e.get(k) == v for k, v in fields.items()) for e in list(self.events))

    def finish(self) -> dict[str, Any]:
        self.proc.wait(timeout=180)
        self._reader.join(timeout=10)  # stdout is read by the reader thread only
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()  # the summary (logs go to stdout)
        assert self.proc.returncode == 0, err.decode()[-3000:]
        line = [x for x in err.splitlines() if x.startswith(b'{"summary"')][-1]
        return json.loads(line)["summary"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(url: str, tmp_path: Path, **extra: str) -> Iterator[Run]:
    run = Run(url, tmp_path, **extra)
    try:
        yield run
    finally:
        run.kill()


def write_logs(tmp_path: Path, namespace: str, lines: int, *, containers: int = 1, size: int = 40) -> Ledger:
    ledger = Ledger()
    clock = [1795510800 * 10**9]
    for c in range(containers):
        log = ContainerLog(tmp_path / "pods", namespace=namespace, pod=POD, uid=UID, container=f"kserve-container-{c}",
                           ledger=ledger, clock=clock)
        log.write_many([f"line {i} " + "x" * size for i in range(lines)])
    return ledger


def assert_exactly_once(url: str, namespace: str, ledger: Ledger, tmp_path: Path, summary: dict[str, Any]) -> None:
    index = f"serving-logs-{namespace}-{DAY}"
    rest(url, "POST", f"/{index}/_refresh")
    hits = rest(url, "POST", f"/{index}/_search", {"size": 10000, "query": {"match_all": {}}})["hits"]["hits"]
    report = ledger.compare([h["_source"] for h in hits])
    assert report.exactly_once, str(report)
    assert summary["dead_lettered"] == 0 and summary["indexed"] == len(ledger)
    assert not (tmp_path / "state" / "deadletter").exists()
    dead = rest(url, "GET", "/_cat/indices/serving-deadletter-*?format=json")
    assert not [d for d in dead if namespace in d.get("index", "")]


@pytest.fixture
def namespace(opensearch: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"e2e-{request.node.name.split('[')[0][5:30].replace('_', '-')}-{os.getpid()}".lower()
    yield name
    with contextlib.suppress(AssertionError):
        rest(opensearch.url, "DELETE", f"/serving-logs-{name}-*")


def test_real_429s_are_retried_and_nothing_is_lost(
        start_node: Callable[[dict[str, Any]], OpenSearchNode], tmp_path: Path) -> None:
    node = start_node({"thread_pool.write.size": 1, "thread_pool.write.queue_size": 1})
    namespace = "e2e-overload"
    ledger = write_logs(tmp_path, namespace, 400, containers=4, size=200)
    rest(node.url, "PUT", f"/serving-logs-{namespace}-{DAY}", {"settings": {"number_of_shards": 4, "number_of_replicas": 0}})
    with running(node.url, tmp_path, SERVELOG_OPENSEARCH__WORKERS="8", SERVELOG_OPENSEARCH__BULK_MAX_DOCS="40",
                 SERVELOG_PIPELINE__QUEUE_BATCHES="16") as run:
        summary = run.finish()
    assert run.saw("bulk_retry", reason="overloaded"), "the node rejected writes (429) and servelog retried"
    rejected = rest(node.url, "GET", "/_nodes/stats/thread_pool")["nodes"]
    assert sum(n["thread_pool"]["write"]["rejected"] for n in rejected.values()) > 0
    assert_exactly_once(node.url, namespace, ledger, tmp_path, summary)


@pytest.mark.parametrize("block", ["index.blocks.write", "index.blocks.read_only_allow_delete"])
def test_an_index_block_is_retried_until_lifted(opensearch: Cluster, namespace: str, tmp_path: Path, block: str) -> None:
    url = opensearch.url
    ledger = write_logs(tmp_path, namespace, 300)
    index = f"serving-logs-{namespace}-{DAY}"
    rest(url, "PUT", f"/{index}", {"settings": {"number_of_replicas": 0, block: True}})
    try:
        with running(url, tmp_path) as run:
            wait_until(lambda: run.saw("destination_problem", reason="blocked"), timeout=60)
            assert run.proc.poll() is None, "still retrying"
            rest(url, "PUT", f"/{index}/_settings", {block: None})
            summary = run.finish()
    finally:
        rest(url, "PUT", f"/{index}/_settings", {block: None})
    assert run.saw("destination_recovered", reason="blocked")
    assert_exactly_once(url, namespace, ledger, tmp_path, summary)


def test_a_cluster_read_only_block_is_retried_until_lifted(opensearch: Cluster, namespace: str, tmp_path: Path) -> None:
    url = opensearch.url
    ledger = write_logs(tmp_path, namespace, 300)
    rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.blocks.read_only": True}})
    try:
        with running(url, tmp_path) as run:
            wait_until(lambda: run.saw("destination_problem", reason="blocked"), timeout=60)
            assert any("403 for POST /_bulk" in e.get("message", "") for e in run.events), "refused as a whole"
            rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.blocks.read_only": None}})
            summary = run.finish()
    finally:
        rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.blocks.read_only": None}})
    assert_exactly_once(url, namespace, ledger, tmp_path, summary)


def test_the_shard_limit_is_not_a_document_problem(opensearch: Cluster, namespace: str, tmp_path: Path) -> None:
    url = opensearch.url
    ledger = write_logs(tmp_path, namespace, 200)
    health = rest(url, "GET", "/_cluster/health")
    open_shards = health["active_shards"] + health["unassigned_shards"]
    rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": max(1, open_shards)}})
    try:
        with running(url, tmp_path) as run:
            wait_until(lambda: run.saw("destination_problem", reason="shard_limit"), timeout=60)
            problem = next(e for e in run.events if e["event"] == "destination_problem")
            assert "shards open" in problem["message"] and "max_shards_per_node" in problem["fix"]
            rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": None}})
            summary = run.finish()
    finally:
        rest(url, "PUT", "/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": None}})
    assert_exactly_once(url, namespace, ledger, tmp_path, summary)
