"""The pure side of the history source: real Event, Pod and InferenceService shapes in, documents and ids out."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from collector import model as m
from collector.kube.objects import api_time, container_of_field_path, integer, mapping, text
from collector.sources.history.documents import Fact, encode, history_id
from collector.sources.history.events import event_fact, view_event
from collector.sources.history.inferenceservice import isvc_facts, isvc_fields
from collector.sources.history.lifecycle import instance_key, pod_facts
from collector.sources.history.owners import ServingIndex, pod_document_fields
from collector.transforms.cri import parse_timestamp
from tests.support.kube_objects import core_event_to_v1, history_fixture, items, repeated, v1_event_to_core

IRIS_UID = "0f4b8f3e-6c1d-4c7a-9d0e-2b5f6a7c8d91"


def by_reason(events: list[dict[str, Any]], reason: str, name_part: str = "") -> dict[str, Any]:
    return next(e for e in events if e["reason"] == reason and name_part in e["metadata"]["name"])


def facts_of_pod(name: str, was_ready: set[str] | None = None) -> tuple[list[Fact], set[str]]:
    pod = history_fixture(name)
    return pod_facts(pod, pod_document_fields(pod), was_ready=was_ready or set())


def kinds(facts: list[Fact]) -> list[str]:
    return [f.kind for f in facts]


# -- times and ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T09:11:42Z", 1795511502 * 10**9),
    ("2026-11-24T09:11:42.318204Z", 1795511502 * 10**9 + 318_204_000),
    ("2026-11-24T10:11:42+01:00", 1795511502 * 10**9),
    ("2026-11-24T09:11:42.123456789Z", 1795511502 * 10**9 + 123_456_789),
])
def test_api_times_in_seconds_microseconds_and_offsets_parse_to_nanoseconds(text: str, expected: int) -> None:
    assert api_time(text) == expected


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-11-24T09:11:42", 1795511502, {},
                                   "2026-11-24t09:11:42z", "2026-11-24 09:11:42Z", "2026-11-24T09:11:42z",
                                   "2026-11-24T09:11:42+0100", "2026-02-30T09:11:42Z"])
def test_absent_or_invalid_times_are_none_never_an_exception(value: Any) -> None:
    assert api_time(value) is None


@pytest.mark.parametrize("text", ["2026-11-24T09:11:42Z", "2026-11-24T09:11:42.318204Z", "2026-11-24T9:11:42Z",
                                  "2026-11-24T09:11:42,5Z", "2026-11-24T09:11:42.1234567891Z", "2026-11-24t09:11:42Z",
                                  "2026-11-24T09:11:42+24:00", "2026-11-24T09:11:42 Z"])
def test_api_times_follow_the_one_timestamp_rule_of_the_logs(text: str) -> None:
    """Kubernetes writes object times with Go, as the kubelet writes log timestamps: one parser for both."""
    parsed = parse_timestamp(text)
    assert api_time(text) == (parsed[0] if parsed else None)


def test_an_event_time_that_is_no_rfc_3339_falls_back_to_the_next_place_kubernetes_puts_it() -> None:
    event = by_reason(items("events-core"), "Unhealthy", "x2x9p")  # first 09:12:02, last 09:12:22
    event["lastTimestamp"] = event["lastTimestamp"].replace("T", " ")
    view = view_event(event)
    assert view is not None and view.ts_ns == api_time("2026-11-24T09:12:02Z")


def test_ids_are_pure_functions_of_kind_and_identity_and_the_index_of_the_day() -> None:
    at = "2026-11-24T09:11:42Z"
    fact = Fact("event", ("uid-1", "3", at), at, {m.F_NAMESPACE: "kserve-test"})
    assert fact.doc_id == Fact("event", ("uid-1", "3", at), at, {}).doc_id == history_id("event", ["uid-1", "3", at])
    assert fact.doc_id != Fact("event", ("uid-1", "4", at), at, {}).doc_id
    assert fact.doc_id != Fact("termination", ("uid-1", "3", at), at, {}).doc_id
    index, piece = encode(fact, index_template="serving-events-{date}")
    action, source = (orjson.loads(line) for line in piece.splitlines())
    assert index == "serving-events-2026.11.24"
    assert action == {"create": {"_index": index, "_id": fact.doc_id}}
    assert source["timestamp"] == "2026-11-24T09:11:42.000000000Z" and source["doc_id"] == fact.doc_id
    assert source["event_kind"] == "event"


def test_documents_never_carry_nulls_or_empty_values() -> None:
    at = "2026-11-24T09:11:42Z"
    doc = Fact("waiting", ("x", at), at, {"reason": "ErrImagePull", "message": "", "exit_code": None, "traffic": []}).document()
    assert set(doc) == {"reason", "timestamp", "event_kind", "doc_id"}


# -- events ----------------------------------------------------------------------------------------
def test_kubelet_events_with_a_null_event_time_and_scheduler_events_with_null_first_timestamp_are_read() -> None:
    events = items("events-core")
    pulling = view_event(by_reason(events, "Pulling"))
    assert pulling is not None and pulling.container == "storage-initializer" and pulling.init_container
    assert pulling.source == "kubelet" and pulling.host == "gpu-node-1" and pulling.occurrence == 1
    scheduled = view_event(by_reason(events, "Scheduled"))
    assert scheduled is not None and scheduled.source == "default-scheduler"
    assert scheduled.ts_ns == api_time("2026-11-24T09:11:42.318204Z") and scheduled.first_ns == scheduled.ts_ns
    failed = view_event(by_reason(events, "FailedScheduling"))
    assert failed is not None and failed.occurrence == 4, "series.count is the occurrence"
    assert failed.ts_ns == api_time("2026-11-24T10:12:10.602953Z"), "the last observation of the series"


def test_an_event_read_through_either_api_is_the_same_document() -> None:
    for core in items("events-core"):
        v1 = core_event_to_v1(core)
        a, b = view_event(core), view_event(v1)
        assert a == b, core["reason"]
        assert event_fact(a, {}).doc_id == event_fact(b, {}).doc_id  # type: ignore[arg-type]
    for v1 in items("events-v1"):
        assert view_event(v1) == view_event(v1_event_to_core(v1))


def test_the_shipped_v1_fixtures_match_their_core_twins() -> None:
    core = {e["metadata"]["uid"]: e for e in items("events-core")}
    for v1 in items("events-v1"):
        assert view_event(v1) == view_event(core[v1["metadata"]["uid"]])


def test_each_growth_of_a_count_or_series_is_a_new_occurrence_and_the_same_count_is_the_same_id() -> None:
    events = items("events-core")
    backoff = by_reason(events, "BackOff", "x2x9p")
    again = repeated(backoff, "2026-11-24T09:42:48Z")
    first, second = view_event(backoff), view_event(again)
    assert first is not None and second is not None
    assert (first.occurrence, second.occurrence) == (1, 2)
    assert event_fact(first, {}).doc_id != event_fact(second, {}).doc_id
    assert event_fact(second, {}).doc_id == event_fact(view_event(copy.deepcopy(again)), {}).doc_id  # type: ignore[arg-type]
    series = repeated(by_reason(events, "FailedScheduling"), "2026-11-24T10:22:10Z")
    assert view_event(series).occurrence == 5 and view_event(series).ts_ns == api_time("2026-11-24T10:22:10Z")  # type: ignore[union-attr]


@pytest.mark.parametrize(("field_path", "container", "init"), [
    ("spec.containers{kserve-container}", "kserve-container", False),
    ("spec.initContainers{storage-initializer}", "storage-initializer", True),
    ("spec.ephemeralContainers{debugger}", "debugger", False),
    ("spec.containers", "", False), ("metadata.name", "", False)])
def test_the_container_an_event_is_about_comes_from_its_field_path(field_path: str, container: str, init: bool) -> None:
    event = by_reason(items("events-core"), "Pulling")
    event["involvedObject"]["fieldPath"] = field_path
    view = view_event(event)
    assert view is not None and (view.container, view.init_container) == (container, init)
    assert container_of_field_path(field_path) == ((container, field_path[5:field_path.index("{")]) if container else None)


@pytest.mark.parametrize(("value", "as_text", "as_integer"), [
    (None, "", None), ("3", "3", 3), (" -2", " -2", -2), (3, "3", 3), (True, "True", None), ({}, "", None), ([1], "", None)])
def test_the_tolerant_readers_never_raise(value: Any, as_text: str, as_integer: int | None) -> None:
    assert (text(value), integer(value), mapping(value)) == (as_text, as_integer, value if isinstance(value, dict) else {})


def test_an_event_with_no_time_at_all_is_refused_rather_than_stamped_with_the_reading_time() -> None:
    assert view_event({"metadata": {"name": "e", "uid": "u"}, "reason": "Started"}) is None


def test_event_documents_carry_the_contract_fields() -> None:
    view = view_event(by_reason(items("events-core"), "Unhealthy", "x2x9p"))
    assert view is not None
    doc = event_fact(view, {"serving_name": "sklearn-iris", "model_version": "2", "component": "predictor"}).document()
    assert doc["event_kind"] == "event" and doc["reason"] == "Unhealthy" and doc["type"] == "Warning"
    assert doc["count"] == 3 and doc["message"].startswith("Readiness probe failed")
    assert (doc["involved_kind"], doc["pod_uid"], doc["container_name"], doc["node_name"]) == (
        "Pod", IRIS_UID, "kserve-container", "gpu-node-1")
    assert doc["first_timestamp"] == "2026-11-24T09:12:02.000000000Z" and doc["timestamp"] == doc["last_timestamp"]


# -- container lifecycle ---------------------------------------------------------------------------
def test_an_oomkilled_restart_is_a_termination_a_restart_and_a_ready_instance() -> None:
    facts, ready = facts_of_pod("pod-sklearn-iris-oomkilled")
    by_kind = {f.kind + "/" + str(f.fields.get(m.F_CONTAINER)): f for f in facts if f.kind != "pod_condition"}
    oom = by_kind["termination/kserve-container"].document()
    assert (oom["reason"], oom["exit_code"], oom["type"]) == ("OOMKilled", 137, "Warning")
    assert oom["started_at"] == "2026-11-24T09:11:52.000000000Z" and oom["timestamp"] == "2026-11-24T09:42:07.000000000Z"
    assert (oom["serving_name"], oom["model_version"], oom["component"]) == ("sklearn-iris", "2", "predictor")
    restart = by_kind["restart/kserve-container"].document()
    assert restart["restart_count"] == 1 and "OOMKilled (exit code 137)" in restart["message"]
    init = by_kind["termination/storage-initializer"].document()
    assert init["init_container"] is True and init["reason"] == "Completed" and init["type"] == "Normal"
    assert instance_key("kserve-container", "2026-11-24T09:42:19Z") in ready
    conditions = {f.fields[m.H_CONDITION_TYPE] for f in facts if f.kind == "pod_condition"}
    assert conditions == {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}


def test_a_termination_is_one_document_whether_seen_as_state_or_as_last_state() -> None:
    pod = history_fixture("pod-sklearn-iris-oomkilled")
    just_died = copy.deepcopy(pod)
    cs = just_died["status"]["containerStatuses"][0]
    cs["state"], cs["lastState"], cs["restartCount"] = cs["lastState"], {}, 0  # before the kubelet restarted it
    fields = pod_document_fields(pod)
    ids = [next(f.doc_id for f in pod_facts(p, fields)[0] if f.kind == "termination" and f.fields[m.F_CONTAINER] ==
                "kserve-container") for p in (just_died, pod)]
    assert ids[0] == ids[1]


def test_waiting_on_a_missing_image_is_a_warning_and_normal_waiting_is_not_news() -> None:
    facts, _ = facts_of_pod("pod-sklearn-iris-imagepull")
    (waiting,) = [f for f in facts if f.kind == "waiting"]
    doc = waiting.document()
    assert (doc["reason"], doc["type"], doc["container_name"], doc["model_version"]) == (
        "ImagePullBackOff", "Warning", "kserve-container", "3")
    assert doc["image"] == "kserve/sklearnserver:v9.9.9" and doc["timestamp"] == "2026-11-24T10:20:11.000000000Z"
    pod = history_fixture("pod-sklearn-iris-imagepull")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert "waiting" not in kinds(pod_facts(pod, pod_document_fields(pod))[0])


def test_readiness_is_recorded_when_an_instance_becomes_ready_and_when_a_ready_one_stops_being_ready() -> None:
    pod = history_fixture("pod-sklearn-iris-imagepull")  # queue-proxy runs, not ready: starting, not news
    facts, ready = pod_facts(pod, pod_document_fields(pod))
    assert "readiness" not in kinds(facts) and not ready
    was = {instance_key("queue-proxy", "2026-11-24T10:20:12Z")}
    facts, _ = pod_facts(pod, pod_document_fields(pod), was_ready=was)
    (drop,) = [f.document() for f in facts if f.kind == "readiness"]
    assert (drop["condition_status"], drop["type"], drop["container_name"]) == ("False", "Warning", "queue-proxy")


def test_an_unschedulable_gpu_pod_is_a_pod_condition_with_the_scheduler_message() -> None:
    facts, _ = facts_of_pod("pod-llm-unschedulable")
    (condition,) = [f.document() for f in facts]
    assert (condition["condition_type"], condition["condition_status"], condition["reason"]) == (
        "PodScheduled", "False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in condition["message"] and condition["type"] == "Warning"
    assert (condition["serving_name"], condition["model_version"]) == ("llm", "1") and "node_name" not in condition


# -- InferenceService status -----------------------------------------------------------------------
def test_a_ready_inferenceservice_is_its_conditions_its_loaded_model_and_its_revision() -> None:
    facts = isvc_facts(history_fixture("isvc-sklearn-iris-ready"))
    assert kinds(facts).count("isvc_condition") == 7
    (model,) = [f.document() for f in facts if f.kind == "model_status"]
    assert (model["reason"], model["model_state"], model["transition_status"], model["type"]) == (
        "Loaded", "Loaded", "UpToDate", "Normal")
    (revision,) = [f.document() for f in facts if f.kind == "revision"]
    assert revision["reason"] == "RevisionReady" and revision["traffic"] == ["sklearn-iris-predictor-00002=100"]
    assert (revision["serving_name"], revision["model_version"], revision["component"]) == ("sklearn-iris", "2", "predictor")


def test_an_oom_killed_model_is_a_failed_load_with_exit_code_137() -> None:
    (model,) = [f.document() for f in isvc_facts(history_fixture("isvc-sklearn-iris-oomkilled")) if f.kind == "model_status"]
    assert (model["reason"], model["exit_code"], model["type"], model["transition_status"]) == (
        "ModelLoadFailed", 137, "Warning", "BlockedByFailedLoad")
    assert model["timestamp"] == "2026-11-24T09:42:07.000000000Z" and model["failed_copies"] == 1


def test_a_revision_whose_image_is_not_found_fails_its_configuration_condition_at_the_new_version() -> None:
    facts = isvc_facts(history_fixture("isvc-sklearn-iris-image-not-found"))
    failed = next(f.document() for f in facts if f.kind == "isvc_condition"
                  and f.fields[m.H_CONDITION_TYPE] == "PredictorConfigurationReady")
    assert (failed["reason"], failed["condition_status"], failed["type"]) == ("RevisionFailed", "False", "Warning")
    assert failed["model_version"] == "3" and failed["component"] == "predictor" and "v9.9.9" in failed["message"]
    (revision,) = [f.document() for f in facts if f.kind == "revision"]
    assert revision["reason"] == "RevisionCreated" and revision["ready_revision"] == "sklearn-iris-predictor-00002"


def test_an_unchanged_condition_keeps_its_id_and_a_transition_gets_a_new_one() -> None:
    ready = {f.doc_id for f in isvc_facts(history_fixture("isvc-sklearn-iris-ready")) if f.kind == "isvc_condition"}
    oom = {f.doc_id for f in isvc_facts(history_fixture("isvc-sklearn-iris-oomkilled")) if f.kind == "isvc_condition"}
    assert len(ready & oom) == 3, "IngressReady, PredictorRouteReady, RoutesReady did not change"
    assert len(oom - ready) == 4


def test_inferenceservice_fields_use_the_pod_presets_and_the_revision_generation() -> None:
    isvc = history_fixture("isvc-sklearn-iris-ready")
    assert isvc_fields(isvc, component="predictor") == {"serving_name": "sklearn-iris", "component": "predictor",
                                                        "model_name": "sklearn-iris", "model_version": "2"}
    isvc["metadata"]["labels"] = {"serving.kserve.io/model-version": "2026.11"}
    assert isvc_fields(isvc)["model_version"] == "2026.11", "the convention label wins, like on pods"


# -- which deployment an object belongs to ---------------------------------------------------------
@pytest.fixture
def index() -> ServingIndex:
    index = ServingIndex()
    for name in ("pod-sklearn-iris-oomkilled", "pod-sklearn-iris-imagepull", "pod-llm-unschedulable"):
        index.update_pod("LISTED", history_fixture(name))
    index.update_pod("LISTED", {"metadata": {"name": "coredns-7db6d8ff4d-8xk2p", "namespace": "kube-system", "uid": "dns"}})
    index.list_done()
    return index


@pytest.mark.parametrize(("kind", "name", "version"), [
    ("ReplicaSet", "sklearn-iris-predictor-00002-deployment-6d4c5f7b9", "2"),
    ("Deployment", "sklearn-iris-predictor-00003-deployment", "3"),
    ("Revision", "sklearn-iris-predictor-00003", "3"),
    ("Configuration", "sklearn-iris-predictor", None),
])
def test_owners_of_serving_pods_resolve_to_their_deployment(index: ServingIndex, kind: str, name: str,
                                                            version: str | None) -> None:
    fields = index.resolve(kind=kind, namespace="kserve-test", name=name)
    assert fields is not None and fields["serving_name"] == "sklearn-iris" and fields.get("model_version") == version
    assert "pod_uid" not in fields


def test_pods_that_serve_no_model_are_known_and_left_out(index: ServingIndex) -> None:
    assert index.knows_pod("dns") and index.resolve(kind="Pod", namespace="kube-system", name="coredns", uid="dns") is None
    assert index.resolve(kind="Deployment", namespace="kube-system", name="coredns") is None
    index.list_done()  # a relist that no longer lists it: forgotten
    assert not index.knows_pod("dns")


def test_kserve_naming_covers_objects_no_pod_vouches_for_when_the_inferenceservice_is_known(index: ServingIndex) -> None:
    index.isvc_watch_active = True
    assert index.resolve(kind="Revision", namespace="kserve-test", name="fraud-predictor-00004") is None
    index.update_isvc("ADDED", {"metadata": {"name": "fraud", "namespace": "kserve-test", "uid": "f"}, "status": {}})
    fields = index.resolve(kind="Revision", namespace="kserve-test", name="fraud-predictor-00004")
    assert fields is not None and (fields["serving_name"], fields["model_version"], fields["component"]) == (
        "fraud", "4", "predictor")
    pod = index.resolve(kind="Pod", namespace="kserve-test", name="fraud-predictor-00004-deployment-7c9d8f6b54-q8x2m")
    assert pod is not None and pod["model_version"] == "4"


def test_deleted_pods_are_kept_for_the_ttl_then_forgotten() -> None:
    clock = [0.0]
    index = ServingIndex(deleted_ttl=300, clock=lambda: clock[0])
    pod = history_fixture("pod-sklearn-iris-oomkilled")
    index.update_pod("DELETED", pod)
    clock[0] = 299
    assert index.expire() == [] and index.pod(IRIS_UID) is not None
    clock[0] = 300
    assert index.expire() == [IRIS_UID] and index.pod(IRIS_UID) is None


def test_inferenceservices_a_relist_no_longer_finds_were_deleted_and_expire() -> None:
    clock = [0.0]
    index = ServingIndex(deleted_ttl=10, clock=lambda: clock[0])
    index.update_isvc("ADDED", history_fixture("isvc-llm-unschedulable"))
    index.update_isvc("ADDED", history_fixture("isvc-sklearn-iris-ready"))
    index.isvcs_listed({"4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a"})  # llm was deleted while the watch was down
    clock[0] = 10
    assert index.expire() == ["7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"]
    assert not index.isvc_known("kserve-test", "llm") and index.isvc_known("kserve-test", "sklearn-iris")
