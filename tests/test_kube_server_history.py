"""The loopback API server's history side speaks the protocol the unmodified ``kubernetes`` client accepts:
Events through events.k8s.io/v1 (converted from core/v1 and back), count and series growth, and
InferenceServices through the custom-objects API (list, watch, 410, a cluster without the CRD)."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from collector.errors import KubeGone, KubeRejected
from collector.kube.client import KubeClient
from tests.support.kube_objects import core_event_to_v1, history_fixture, items, v1_event_to_core
from tests.support.kube_server import KubeApiServer


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=3600) as server:
        yield server


@pytest.fixture
def api(kube: KubeApiServer) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=kube.url))
    yield client
    client.close()


def test_events_serve_through_both_apis_and_the_typed_v1_client_reads_them(kube: KubeApiServer,
                                                                            api: kubernetes.client.ApiClient) -> None:
    for event in items("events-core"):
        if event["eventTime"] is not None:  # the typed v1 model requires eventTime: old-recorder events break it
            kube.add_event(event)
    listed = kubernetes.client.EventsV1Api(api).list_namespaced_event("kserve-test")
    assert {e.reason for e in listed.items} == {"Scheduled", "FailedScheduling"}
    scheduling = next(e for e in listed.items if e.reason == "FailedScheduling")
    assert scheduling.series.count == 4 and scheduling.regarding.kind == "Pod" and scheduling.note.startswith("0/3 nodes")
    core = kubernetes.client.CoreV1Api(api).list_namespaced_event("kserve-test")
    assert {e.message for e in core.items} == {e.note for e in listed.items}


def test_old_recorder_events_have_a_null_event_time_through_events_k8s_io_and_the_raw_client_keeps_them(
        kube: KubeApiServer) -> None:
    for event in items("events-core"):
        kube.add_event(event)
    with KubeClient.for_host(kube.url) as client:
        v1, _ = client.list_events(api="events.k8s.io")
        core, _ = client.list_events(api="core")
    assert len(v1) == len(core) == len(items("events-core"))
    kubelet = [e for e in v1 if e["reportingController"] == "kubelet"]
    assert kubelet and all(e["eventTime"] is None and "deprecatedCount" in e for e in kubelet)
    assert {v1_event_to_core(e)["metadata"]["uid"] for e in v1} == {e["metadata"]["uid"] for e in core}


def test_conversions_round_trip() -> None:
    for event in items("events-core"):
        assert v1_event_to_core(core_event_to_v1(event)) == {**event, "apiVersion": "v1", "kind": "Event"}


def test_a_repeated_event_grows_its_count_or_its_series(kube: KubeApiServer) -> None:
    events = {e["reason"]: e for e in items("events-core") if "m4k8t" not in e["metadata"]["name"]}  # one BackOff
    kube.add_event(events["BackOff"])
    kube.add_event(events["FailedScheduling"])
    kube.repeat_event(events["BackOff"], "2026-11-24T09:42:48Z")
    kube.repeat_event(events["FailedScheduling"], "2026-11-24T10:22:10Z")
    stored = {e["reason"]: e for e in kube.events()}
    assert stored["BackOff"]["count"] == 2 and stored["BackOff"]["lastTimestamp"] == "2026-11-24T09:42:48Z"
    assert stored["FailedScheduling"]["series"] == {"count": 5, "lastObservedTime": "2026-11-24T10:22:10.000000Z"}
    assert "count" not in stored["FailedScheduling"], "the new recorder does not count in core's field"


def test_inferenceservices_list_watch_and_expire_through_the_custom_objects_api(kube: KubeApiServer,
                                                                                 api: kubernetes.client.ApiClient) -> None:
    kube.add_isvc(history_fixture("isvc-sklearn-iris-ready"))
    custom = kubernetes.client.CustomObjectsApi(api)
    listed = custom.list_cluster_custom_object("serving.kserve.io", "v1beta1", "inferenceservices")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["sklearn-iris"]
    version = listed["metadata"]["resourceVersion"]
    with KubeClient.for_host(kube.url) as client:
        stream = client.watch_inferenceservices(resource_version=version, timeout_seconds=5)
        kube.update_isvc(history_fixture("isvc-sklearn-iris-oomkilled"))
        kind, obj = next(iter(stream))
        stream.close()
        assert kind == "MODIFIED" and obj["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
        kube.touch()
        kube.compact()
        with pytest.raises(KubeGone):
            list(client.watch_inferenceservices(resource_version=version, timeout_seconds=5))


def test_a_cluster_without_the_crd_answers_404(kube: KubeApiServer, api: kubernetes.client.ApiClient) -> None:
    kube.install_kserve(False)
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CustomObjectsApi(api).list_cluster_custom_object("serving.kserve.io", "v1beta1",
                                                                           "inferenceservices")
    assert refused.value.status == 404
    with KubeClient.for_host(kube.url) as client, pytest.raises(KubeRejected) as raw:
        client.list_inferenceservices()
    assert raw.value.status == 404 and not isinstance(raw.value, KubeGone)
