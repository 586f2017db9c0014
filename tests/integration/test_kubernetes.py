"""servelog with a (loopback) Kubernetes API: enrichment from the pod watch, and the pods/log source.

The real process is configured through a kubeconfig that points at the loopback API server, exactly
as it would be outside a cluster.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_server import KubeApiServer as FakeKube
from tests.support.logwriter import BASE_NS, ContainerLog, Ledger
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pods"


def fixture(name: str) -> dict[str, Any]:
    pod = json.loads((FIXTURES / f"{name}.json").read_text())
    pod["spec"]["nodeName"] = "node-1"
    return pod




@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKube, FakeOpenSearch, dict[str, str]]]:
    with FakeKube() as kube, FakeOpenSearch() as fos:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
            "clusters": [{"name": "loopback", "cluster": {"server": kube.url}}],
            "users": [{"name": "servelog", "user": {"token": "test-token"}}],
            "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "servelog"}}],
        }))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update({
            "SERVELOG_KUBERNETES__KUBECONFIG": str(kubeconfig), "SERVELOG_KUBERNETES__WATCH_TIMEOUT_SECONDS": "10",
            "SERVELOG_OPENSEARCH__URL": fos.url, "SERVELOG_STATE_DIR": str(tmp_path / "state"),
            "SERVELOG_LOG_ROOT": str(tmp_path / "pods"), "SERVELOG_NODE_NAME": "node-1",
            "SERVELOG_TELEMETRY__LISTEN": "", "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1",
            "SERVELOG_PIPELINE__SCAN_INTERVAL_SECONDS": "0.1", "SERVELOG_PIPELINE__CHECKPOINT_INTERVAL_SECONDS": "0.1",
            "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05",
        })
        (tmp_path / "pods").mkdir()
        yield kube, fos, env
        kube.drop_streams()


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "collector", "run", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_storage_initializer_of_a_pod_deleted_a_second_after_it_finished_is_enriched(
        cluster: tuple[FakeKube, FakeOpenSearch, dict[str, str]], tmp_path: Path) -> None:
    kube, fos, env = cluster
    proc = start(env)
    try:
        wait_until(lambda: kube.open_watches >= 1)  # the watch is up before the pod exists
        pod = fixture("kserve-serverless-predictor")
        kube.add_pod(pod)
        ledger = Ledger()
        log = ContainerLog(tmp_path / "pods", namespace=pod["metadata"]["namespace"], pod=pod["metadata"]["name"],
                           uid=pod["metadata"]["uid"], container="storage-initializer", ledger=ledger)
        log.write_many(["Copying contents of gs://kfserving-examples/models/sklearn/1.0/model to local",
                        "Successfully copied gs://kfserving-examples/models/sklearn/1.0/model to /mnt/models",
                        "Model downloaded in 1.11 seconds."])
        time.sleep(1)
        kube.delete_pod(pod["metadata"]["uid"])
        wait_until(lambda: fos.doc_count("serving-logs-*") == 3)
    finally:
        stop(proc)
    docs = fos.all_sources("serving-logs-*")
    assert ledger.compare(docs).exactly_once
    for doc in docs:
        assert doc["metadata_source"] == "kubernetes"
        assert (doc["serving_name"], doc["model_version"], doc["component"], doc["container_name"]) == (
            "sklearn-iris", "2", "predictor", "storage-initializer")
        assert doc["labels"]["serving.kserve.io/inferenceservice"] == "sklearn-iris"


def test_pod_unknown_to_the_watch_goes_out_with_path_metadata_after_a_bounded_wait(
        cluster: tuple[FakeKube, FakeOpenSearch, dict[str, str]], tmp_path: Path) -> None:
    _kube, fos, env = cluster
    ledger = Ledger()
    log = ContainerLog(tmp_path / "pods", namespace="team-a", pod="ghost-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                       uid="0f1e2d3c-9999-2222-3333-444455556666", container="kserve-container", ledger=ledger)
    log.write("no pod object anywhere")
    proc = start({**env, "SERVELOG_KUBERNETES__METADATA_WAIT_SECONDS": "1"}, "--once")
    assert proc.wait(timeout=60) == 0
    (doc,) = fos.all_sources("serving-logs-*")
    assert doc["metadata_source"] == "path" and doc["serving_name"] == "ghost" and doc["component"] == "predictor"


def _append(kube: FakeKube, pod: dict[str, Any], container: str, lines: list[tuple[int, str]], *,
            previous: bool = False) -> None:
    for ts_ns, line in lines:
        kube.append_log(pod["metadata"]["namespace"], pod["metadata"]["name"], container, line, ts_ns, previous=previous)


def test_api_source_exactly_once_across_reconnects_shared_timestamps_and_sigkill(
        cluster: tuple[FakeKube, FakeOpenSearch, dict[str, str]]) -> None:
    kube, fos, env = cluster
    env = {**env, "SERVELOG_SOURCE": "kubernetes", "SERVELOG_KUBERNETES__LOG_REQUEST_TIMEOUT_SECONDS": "5"}
    pod = fixture("kserve-serverless-predictor")  # kserve-container restarted once: previous instance too
    kube.add_pod(pod)
    second = BASE_NS + 10**9
    expected: Counter[tuple[str, int, str]] = Counter()

    def add(container: str, restart: int, lines: list[tuple[int, str]], *, previous: bool = False) -> None:
        _append(kube, pod, container, lines, previous=previous)
        expected.update((container, restart, text) for _, text in lines)

    add("storage-initializer", 0, [(second, "download 1"), (second + 5, "download 2")])
    add("kserve-container", 0, [(second, "before OOMKilled")], previous=True)
    add("kserve-container", 1, [(second + i, f"run {i}") for i in range(3)])
    add("agent", 0, [(second, "logger up")])
    proc = start(env)
    try:
        wait_until(lambda: fos.doc_count("serving-logs-*") == sum(expected.values()))
        # lines sharing the last timestamp arrive after a dropped stream: the resume overlaps the
        # whole second and must keep them (distinct lines, same timestamp)
        kube.drop_streams()
        add("kserve-container", 1, [(second + 2, "same instant A"), (second + 2, "same instant B")])
        wait_until(lambda: fos.doc_count("serving-logs-*") == sum(expected.values()))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        add("kserve-container", 1, [(second + 2, "same instant C"), (second + 3 * 10**9, "later")])
        proc = start(env)
        wait_until(lambda: fos.doc_count("serving-logs-*") == sum(expected.values()))
        time.sleep(1)  # nothing more may arrive
    finally:
        stop(proc)
    docs = fos.all_sources("serving-logs-*")
    got = Counter((d["container_name"], d["restart_count"], d["message"]) for d in docs)
    assert got == expected
    assert all(d["metadata_source"] == "kubernetes" and d["serving_name"] == "sklearn-iris" for d in docs)
    assert any("sinceTime=" in r for r in kube.requests), "reconnects resume with sinceTime"


def test_api_source_ids_match_the_files_source(cluster: tuple[FakeKube, FakeOpenSearch, dict[str, str]],
                                               tmp_path: Path) -> None:
    kube, _fos, env = cluster
    pod = copy.deepcopy(fixture("kserve-transformer"))
    kube.add_pod(pod)
    log = ContainerLog(tmp_path / "pods", namespace=pod["metadata"]["namespace"], pod=pod["metadata"]["name"],
                       uid=pod["metadata"]["uid"], container="kserve-container", ledger=Ledger(),
                       clock=[BASE_NS])
    stamps = []
    for text in ("alpha", "beta", "gamma"):
        log.write(text)
        stamps.append(log.clock[0])
    _append(kube, pod, "kserve-container", list(zip(stamps, ["alpha", "beta", "gamma"], strict=True)))
    kube.terminate(pod["metadata"]["namespace"], pod["metadata"]["name"], "kserve-container")
    files = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout"], env=env,
                           capture_output=True, timeout=60, check=True)
    api = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout", "--source",
                          "kubernetes"], env={**env, "SERVELOG_STATE_DIR": str(tmp_path / "state-api")},
                         capture_output=True, timeout=60, check=True)

    def ids(output: bytes) -> dict[str, str]:
        return {json.loads(line)["source"]["message"]: json.loads(line)["id"] for line in output.splitlines()
                if json.loads(line)["source"]["container_name"] == "kserve-container"}

    assert ids(files.stdout) == ids(api.stdout) and len(ids(files.stdout)) == 3
