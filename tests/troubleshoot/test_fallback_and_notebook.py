"""``--source auto`` falls back to OpenSearch when nothing runs, saying why; the notebook API returns what the CLI prints.

The historical logs are documents in the loopback OpenSearch (servelog's templates installed), the
deployment lives in the loopback cluster: stopped, idle, or not there at all (no cluster), each
answered from OpenSearch with the reason on stderr. Then ``servelog.deployment(...)`` is compared
with ``servelog status|history|logs --output json / --json`` on the same cluster and index.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import servelog
from collector.cli import main
from collector.notebook import deployment
from tests.deployment import builders as b
from tests.deployment.test_state_stories import oom_story
from tests.support.opensearch_server import FakeOpenSearch
from tests.troubleshoot.conftest import Cluster

NS = b.NAMESPACE
POD = "sklearn-iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"


def post(opensearch: FakeOpenSearch, path: str, body: bytes) -> None:
    request = urllib.request.Request(opensearch.url + path, data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def historical(namespace: str, n: int) -> dict[str, Any]:
    return {"timestamp": f"2026-11-24T09:00:{n:02d}.000000000Z", "doc_id": f"{namespace}-{n:04d}", "serving_name": b.NAME,
            "namespace": namespace, "model_name": b.NAME, "model_version": "1", "component": "predictor",
            "container_name": "kserve-container", "pod_name": POD, "restart_count": 0, "level": "info",
            "message": f"INFO:     request {n} served"}


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fos:
        assert main(["setup", "--opensearch-url", fos.url, "--skip-dashboards", "--skip-retention"]) == 0
        lines = []
        for namespace in (NS, "elsewhere"):
            for n in range(5):
                doc = historical(namespace, n)
                lines += [json.dumps({"create": {"_index": f"serving-logs-{namespace}-2026.11.24", "_id": doc["doc_id"]}}),
                          json.dumps(doc)]
        post(fos, "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())
        yield fos


def sources(ran: Any) -> list[dict[str, Any]]:
    return [line["source"] for line in ran.lines()]


@pytest.mark.parametrize(("isvc", "why"), [
    (b.stopped(b.isvc()), "sklearn-iris is STOPPED: no instance is running"),
    (b.isvc(min_replicas=0), "sklearn-iris is IDLE: scaled to zero, no instance is running"),
], ids=["stopped", "idle"])
def test_auto_reads_opensearch_when_nothing_runs_and_says_why(cluster: Cluster, opensearch: FakeOpenSearch,
                                                             isvc: dict[str, Any], why: str) -> None:
    cluster.load(isvc=isvc)
    ran = cluster.servelog("logs", b.NAME, "-n", NS, "--opensearch-url", opensearch.url, "--json")
    assert ran.status == 0, ran.err
    assert ran.err == f"servelog logs: {why}: reading its historical logs from OpenSearch\n"
    assert sources(ran) == [historical(NS, n) for n in range(5)], "oldest first, only the namespace given"
    tail = cluster.servelog("logs", b.NAME, "-n", NS, "--opensearch-url", opensearch.url, "--json", "--tail", "2")
    assert [s["doc_id"] for s in sources(tail)] == [f"{NS}-0003", f"{NS}-0004"], "--tail: the newest, oldest first"


def test_auto_without_a_cluster_reads_opensearch_and_says_why(cluster: Cluster, opensearch: FakeOpenSearch,
                                                              tmp_path: Any) -> None:
    cluster.kubeconfig = tmp_path / "no-such-kubeconfig"
    ran = cluster.servelog("logs", b.NAME, "-n", NS, "--opensearch-url", opensearch.url, "--json")
    assert ran.status == 0 and sources(ran) == [historical(NS, n) for n in range(5)]
    assert "kubernetes: no usable configuration" in ran.err and ran.err.endswith("reading the historical logs from OpenSearch\n")
    mixed = cluster.servelog("logs", b.NAME, "--opensearch-url", opensearch.url, "--json")
    assert mixed.status == 6 and mixed.out == "", "no -n, two namespaces: refused, not mixed"
    assert mixed.err.endswith(f"{b.NAME} has logs in several namespaces: elsewhere, {NS}; give one with -n/--namespace\n")
    assert cluster.servelog("logs", b.NAME, "--source", "kubernetes").status == 3


def test_the_notebook_api_returns_what_the_commands_print(cluster: Cluster, opensearch: FakeOpenSearch) -> None:
    pod, events = oom_story()
    cluster.load(isvc=b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=None), pods=[pod],
                 events=events)
    for n in range(5):
        cluster.kube.append_log(NS, pod["metadata"]["name"], "kserve-container", f"loading {n}", previous=True)
    assert servelog.deployment is deployment and servelog.__version__
    with servelog.deployment(b.NAME, namespace=NS, kubeconfig=cluster.kubeconfig, opensearch_url=opensearch.url) as d:
        state = d.state()
        assert state.as_json() == cluster.servelog("status", b.NAME, "-n", NS, "--output", "json").json()
        assert (state.status, state.last_failure.reason if state.last_failure else None) == (servelog.Status.FAILED, "OOMKilled")
        logs = d.logs(container="kserve-container", tail=3)
        assert logs.source == "kubernetes" and [line["message"] for line in logs] == ["loading 2", "loading 3", "loading 4"]
        assert logs.lines == sources(cluster.servelog("logs", b.NAME, "-n", NS, "--container", "kserve-container",
                                                     "--tail", "3", "--json"))
        assert "reading the transient logs" in logs.notes[0] and "[sklearn-iris-predictor-00002" in logs.text()
        past = d.logs(source="opensearch")
        assert past.source == "opensearch" and past.lines == [historical(NS, n) for n in range(5)]

    history_docs = [{"timestamp": f"2026-11-24T09:1{n}:00.000000000Z", "doc_id": f"h{n}", "event_kind": "event",
                     "reason": "BackOff", "type": "Warning", "count": n + 1, "involved_kind": "Pod",
                     "involved_name": POD, "serving_name": b.NAME, "namespace": NS, "model_version": "1",
                     "message": "Back-off restarting failed container kserve-container"} for n in range(3)]
    lines = [json.dumps(x) for doc in history_docs for x in ({"create": {"_index": "serving-events-2026.11.24",
                                                                         "_id": doc["doc_id"]}}, doc)]
    post(opensearch, "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())
    history = servelog.deployment(b.NAME, NS, opensearch_url=opensearch.url).history()
    assert [(e.what, e.count) for e in history.entries] == [("BackOff", 3)]
    assert history.as_json() == cluster.servelog("history", b.NAME, "-n", NS, "--opensearch-url", opensearch.url,
                                                 "--output", "json", cluster=False).json()
    with pytest.raises(servelog.NotFound):
        servelog.deployment("never-deployed", NS, kubeconfig=cluster.kubeconfig).state()
