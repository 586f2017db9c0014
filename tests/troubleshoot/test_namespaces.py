"""Which namespace ``history`` and ``logs`` read without ``-n`` (issue 11 review, D2).

The cluster is asked in the kubeconfig context's namespace (``status``, ``logs`` from the components);
OpenSearch without ``-n`` is searched in every namespace, and when the deployment's documents are in
several, the command says so and refuses (exit status 6, the namespaces listed) rather than mix two
deployments of the same name. A fallback to OpenSearch after the cluster found the deployment in a
namespace reads that namespace's documents.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import servelog
from collector.cli import main
from tests.deployment import builders as b
from tests.support.opensearch_server import FakeOpenSearch
from tests.troubleshoot.conftest import Cluster, write_kubeconfig

NS = b.NAMESPACE
POD = "sklearn-iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"


def post(opensearch: FakeOpenSearch, lines: list[str]) -> None:
    request = urllib.request.Request(opensearch.url + "/_bulk?refresh=true", data=("\n".join(lines) + "\n").encode(),
                                     method="POST", headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def history_doc(namespace: str, n: int) -> dict[str, Any]:
    return {"timestamp": f"2026-11-24T09:1{n}:00.000000000Z", "doc_id": f"{namespace}-h{n}", "event_kind": "event",
            "reason": "BackOff", "type": "Warning", "count": n + 1, "involved_kind": "Pod", "involved_name": POD,
            "serving_name": b.NAME, "namespace": namespace, "model_version": "1",
            "message": f"Back-off restarting failed container kserve-container ({namespace})"}


def log_doc(namespace: str, n: int) -> dict[str, Any]:
    return {"timestamp": f"2026-11-24T09:00:{n:02d}.000000000Z", "doc_id": f"{namespace}-{n:04d}", "serving_name": b.NAME,
            "namespace": namespace, "model_name": b.NAME, "model_version": "1", "component": "predictor",
            "container_name": "kserve-container", "pod_name": POD, "restart_count": 0, "level": "info",
            "message": f"request {n} served in {namespace}"}


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fos:
        assert main(["setup", "--opensearch-url", fos.url, "--skip-dashboards", "--skip-retention"]) == 0
        lines: list[str] = []
        for namespace in (NS, "elsewhere"):
            for n in range(3):
                for index, doc in ((f"serving-logs-{namespace}-2026.11.24", log_doc(namespace, n)),
                                   ("serving-events-2026.11.24", history_doc(namespace, n))):
                    lines += [json.dumps({"create": {"_index": index, "_id": doc["doc_id"]}}), json.dumps(doc)]
        post(fos, lines)
        yield fos


def test_history_without_namespace_refuses_to_mix_two_deployments_of_one_name(cluster: Cluster,
                                                                              opensearch: FakeOpenSearch) -> None:
    ran = cluster.servelog("history", b.NAME, "--opensearch-url", opensearch.url, "--output", "json", cluster=False)
    assert ran.status == 6, ran.out
    assert ran.out == ""
    assert f"{b.NAME} has history in several namespaces: elsewhere, {NS}" in ran.err and "-n/--namespace" in ran.err
    one = cluster.servelog("history", b.NAME, "-n", NS, "--opensearch-url", opensearch.url, "--output", "json",
                           cluster=False)
    assert one.status == 0, one.err
    assert [e["message"] for e in one.json()["entries"]] == [f"Back-off restarting failed container kserve-container ({NS})"]
    assert one.json()["namespace"] == NS


def test_history_without_namespace_reads_the_only_namespace_there_is(cluster: Cluster, opensearch: FakeOpenSearch) -> None:
    lines = [json.dumps({"create": {"_index": "serving-events-2026.11.25", "_id": "solo"}}),
             json.dumps({**history_doc("solo-ns", 0), "serving_name": "solo", "doc_id": "solo"})]
    post(opensearch, lines)
    solo = cluster.servelog("history", "solo", "--opensearch-url", opensearch.url, "--output", "json", cluster=False)
    assert solo.status == 0, solo.err
    assert solo.json()["namespace"] == "solo-ns" and len(solo.json()["entries"]) == 1


def test_logs_from_opensearch_without_namespace_refuses_to_mix_too(cluster: Cluster, opensearch: FakeOpenSearch) -> None:
    ran = cluster.servelog("logs", b.NAME, "--source", "opensearch", "--opensearch-url", opensearch.url, "--json",
                           cluster=False)
    assert ran.status == 6 and ran.out == ""
    assert f"{b.NAME} has logs in several namespaces: elsewhere, {NS}" in ran.err
    every = cluster.servelog("logs", "--namespace", NS, "--opensearch-url", opensearch.url, "--json", cluster=False)
    assert every.status == 0 and len(every.lines()) == 3, "without a deployment name: a search, as before"
    across = cluster.servelog("logs", "--level", "info", "--opensearch-url", opensearch.url, "--json", cluster=False)
    assert across.status == 0 and len(across.lines()) == 6, "no deployment named: every deployment, every namespace"


def test_a_fallback_after_the_cluster_found_the_deployment_reads_its_namespace(cluster: Cluster,
                                                                               opensearch: FakeOpenSearch,
                                                                               tmp_path: Any) -> None:
    cluster.kubeconfig = write_kubeconfig(tmp_path / "ctx-kubeconfig", cluster.kube.url, namespace=NS)
    cluster.load(isvc=b.isvc(min_replicas=0))
    ran = cluster.servelog("logs", b.NAME, "--opensearch-url", opensearch.url, "--json")
    assert ran.status == 0, ran.err
    assert "IDLE" in ran.err
    assert [line["source"]["namespace"] for line in ran.lines()] == [NS] * 3


def test_the_notebook_history_refuses_alike(opensearch: FakeOpenSearch) -> None:
    with pytest.raises(servelog.Ambiguous, match="several namespaces"):
        servelog.deployment(b.NAME, opensearch_url=opensearch.url).history()
    assert len(servelog.deployment(b.NAME, NS, opensearch_url=opensearch.url).history().entries) == 1
