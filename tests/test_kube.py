"""Kubernetes awareness: presets from real pod shapes, the pod watch against a loopback API server."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.errors import KubeGone, KubeRejected
from collector.kube.client import KubeClient
from collector.kube.pods import PodWatchCache
from collector.kube.presets import fields_from_pod
from collector.kube.static import StaticMetadataProvider
from tests.support.fake_kube import FakeKube
from tests.support.wait import wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "pods"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())




class TestPresets:
    def test_kserve_serverless_predictor(self) -> None:
        fields = fields_from_pod(fixture("kserve-serverless-predictor"))
        assert (fields["serving_name"], fields["model_name"], fields["model_version"], fields["component"]) == (
            "sklearn-iris", "sklearn-iris", "2", "predictor")
        assert fields["labels"]["app"] == "sklearn-iris-predictor-00002"
        assert "container_name" not in fields, "the container comes from the log path"

    def test_kserve_transformer(self) -> None:
        fields = fields_from_pod(fixture("kserve-transformer"))
        assert (fields["serving_name"], fields["component"], fields["model_version"]) == ("torch-transformer", "transformer", "1")

    def test_kserve_raw_deployment_has_no_version_counter(self) -> None:
        fields = fields_from_pod(fixture("kserve-raw-deployment"))
        assert fields["serving_name"] == "sklearn-iris" and fields["component"] == "predictor"
        assert "model_version" not in fields

    def test_hopsworks_labels_win(self) -> None:
        fields = fields_from_pod(fixture("hopsworks-predictor"))
        assert (fields["serving_name"], fields["model_name"], fields["model_version"], fields["project"]) == (
            "fraud", "fraud_model", "4", "fraud_project")

    def test_merlin_name_gives_model_and_version(self) -> None:
        fields = fields_from_pod(fixture("merlin-model"))
        assert (fields["model_name"], fields["model_version"], fields["serving_name"]) == (
            "credit-score", "3", "credit-score-3-r2")

    def test_custom_mapping_comes_first(self) -> None:
        pod = fixture("merlin-model")
        fields = fields_from_pod(pod, custom_fields={"model_version": "label:gojek.com/team",
                                                     "owner": "annotation:missing"})
        assert fields["model_version"] == "credit" and "owner" not in fields

    def test_static_provider_reads_a_pod_list(self, tmp_path: Path) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [fixture("hopsworks-predictor")]}))
        provider = StaticMetadataProvider(path)
        found = provider.lookup("6f1b2c3d-0000-4000-8000-000000000004")
        assert found is not None and found.fields["model_version"] == "4"
        assert found.init_containers == ("storage-initializer",)
        assert provider.lookup("nope") is None


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


def on_node(pod: dict[str, Any], node: str = "gpu-node-1") -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["spec"]["nodeName"] = node
    return pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestPodWatch:
    def test_list_then_watch_add_modify_delete_and_deleted_ttl(self, kube: FakeKube) -> None:
        predictor = on_node(fixture("kserve-serverless-predictor"))
        elsewhere = on_node(fixture("kserve-transformer"), node="other-node")
        kube.add_pod(predictor)
        kube.add_pod(elsewhere)
        clock = Clock()
        cache = PodWatchCache(KubeClient.for_host(kube.url), node_name="gpu-node-1", deleted_ttl=300, clock=clock,
                              watch_timeout=10)
        cache.start()
        try:
            wait_until(cache.synced)
            uid = predictor["metadata"]["uid"]
            assert cache.lookup(uid) is not None
            assert cache.lookup(elsewhere["metadata"]["uid"]) is None, "scoped to this node"
            storage_only = on_node(fixture("kserve-raw-deployment"))
            kube.add_pod(storage_only)
            found = cache.wait_for(storage_only["metadata"]["uid"], timeout=5)
            assert found is not None and found.fields["serving_name"] == "sklearn-iris"
            kube.delete_pod(storage_only["metadata"]["uid"])
            wait_until(lambda: (m := cache.lookup(storage_only["metadata"]["uid"])) is not None and m.deleted)
            clock.now += 299
            cache.expire()
            assert cache.lookup(storage_only["metadata"]["uid"]) is not None, "kept for the TTL after deletion"
            clock.now += 2
            cache.expire()
            assert cache.lookup(storage_only["metadata"]["uid"]) is None
        finally:
            cache.stop()
            kube.drop_streams()

    def test_410_gone_relists_and_marks_pods_deleted_meanwhile(self, kube: FakeKube) -> None:
        first, second = on_node(fixture("kserve-serverless-predictor")), on_node(fixture("hopsworks-predictor"))
        kube.add_pod(first)
        cache = PodWatchCache(KubeClient.for_host(kube.url), node_name="gpu-node-1", watch_timeout=1)
        cache.relist()
        kube.delete_pod(first["metadata"]["uid"])
        kube.add_pod(second)
        kube.compact()  # the cache's resourceVersion is now too old
        with pytest.raises(KubeGone):
            list(KubeClient.for_host(kube.url).watch_pods(resource_version="101", timeout_seconds=1))
        cache.run(iterations=2)  # watch -> 410 -> relist + watch
        assert sum("watch=true" in r for r in kube.requests) == 2 + 1
        gone = cache.lookup(first["metadata"]["uid"])
        assert gone is not None and gone.deleted
        assert cache.lookup(second["metadata"]["uid"]) is not None

    def test_dropped_watch_resumes(self, kube: FakeKube) -> None:
        cache = PodWatchCache(KubeClient.for_host(kube.url), node_name="gpu-node-1", watch_timeout=10)
        cache.start()
        try:
            wait_until(cache.synced)
            kube.drop_streams()
            pod = on_node(fixture("merlin-model"))
            kube.add_pod(pod)
            wait_until(lambda: cache.lookup(pod["metadata"]["uid"]) is not None)
        finally:
            cache.stop()
            kube.drop_streams()

    def test_excluded_pods_are_not_cached(self, kube: FakeKube) -> None:
        pod = on_node(fixture("kserve-transformer"))
        pod["metadata"]["labels"]["servelog.io/exclude"] = "true"
        kube.add_pod(pod)
        cache = PodWatchCache(KubeClient.for_host(kube.url), node_name="gpu-node-1")
        cache.relist()
        assert cache.lookup(pod["metadata"]["uid"]) is None

    def test_errors_translate_to_servelog_errors(self, kube: FakeKube) -> None:
        kube.fail_next(403)
        with pytest.raises(KubeRejected) as caught:
            KubeClient.for_host(kube.url).list_pods()
        assert caught.value.status == 403
