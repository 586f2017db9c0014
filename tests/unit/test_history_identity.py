"""Every history fact is exactly one (index, ``_id``): the timestamp is part of the identity, whatever else changes.

The promise behind "a relist, a restart, a second replica produce no duplicate": the ``create`` of
a fact must be the same action every time the fact is seen. Both halves count: the same ``_id`` in
a second daily index is a second document. These tests take real Pod, InferenceService and Event
shapes, change what a later status update changes (another condition's transition on another day,
the container seen waiting instead of running, a readiness flap), and check that an ``_id`` never
lands in two indices and that facts nothing happened to keep their (index, ``_id``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import model as m
from collector.sources.history.documents import Fact, index_of
from collector.sources.history.events import event_fact, view_event
from collector.sources.history.inferenceservice import isvc_facts
from collector.sources.history.lifecycle import instance_key, pod_facts
from collector.sources.history.owners import pod_document_fields
from tests.support.kube_objects import history_fixture, items

INDEX = "serving-events-{date}"
PODS = ("pod-sklearn-iris-oomkilled", "pod-sklearn-iris-imagepull", "pod-llm-unschedulable")
ISVCS = ("isvc-sklearn-iris-ready", "isvc-sklearn-iris-oomkilled", "isvc-sklearn-iris-image-not-found",
         "isvc-llm-unschedulable")
# the facts whose time a condition gives (besides the condition's own fact)
POD_DEPENDENTS = {"ContainersReady": {"readiness"}, "Initialized": {"waiting"}, "PodScheduled": {"waiting"}}
ISVC_DEPENDENTS = {"PredictorReady": {"model_status"}, "PredictorConfigurationReady": {"revision"},
                   "PredictorRouteReady": {"revision"}}

Pairs = set[tuple[str, str]]


def later(text: str, days: int, seconds: int) -> str:
    when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(days=days, seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def pairs(facts: Iterable[Fact]) -> Pairs:
    return {(index_of(f, index_template=INDEX), f.doc_id) for f in facts}


def one_index_per_id(*observations: Iterable[Fact]) -> None:
    """Across every observation: each ``_id`` has one index, and one observation has no ``_id`` twice."""
    where: dict[str, set[str]] = {}
    for observation in observations:
        facts = list(observation)
        assert len({f.doc_id for f in facts}) == len(facts), "two facts of one observation share an _id"
        for index, doc_id in pairs(facts):
            where.setdefault(doc_id, set()).add(index)
    assert all(len(indices) == 1 for indices in where.values()), {i: x for i, x in where.items() if len(x) > 1}


def of_pod(pod: dict[str, Any], was_ready: set[str] | None = None) -> list[Fact]:
    return pod_facts(pod, pod_document_fields(pod), was_ready=was_ready or set())[0]


def about(facts: Iterable[Fact], condition: str, dependents: dict[str, set[str]]) -> list[Fact]:
    """The facts a change of ``condition`` may change: its own, and those whose time it gives."""
    return [f for f in facts if (f.fields.get(m.H_CONDITION_TYPE) == condition and f.kind.endswith("condition"))
            or f.kind in dependents.get(condition, set())]


def moved(obj: dict[str, Any], condition: str, days: int, seconds: int) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for c in out["status"]["conditions"]:
        if c["type"] == condition:
            c["lastTransitionTime"] = later(c["lastTransitionTime"], days, seconds)
    return out


def conditions_of(names: Iterable[str]) -> list[tuple[str, str]]:
    return [(name, c["type"]) for name in names for c in history_fixture(name)["status"]["conditions"]]


# -- a later transition of one condition, on another day ---------------------------------------------
@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(conditions_of(ISVCS)), days=st.integers(1, 400), seconds=st.integers(0, 86399))
def test_an_inferenceservice_condition_moving_to_another_day_moves_only_its_own_facts(
        target: tuple[str, str], days: int, seconds: int) -> None:
    name, condition = target
    isvc = history_fixture(name)
    before, after = isvc_facts(isvc), isvc_facts(moved(isvc, condition, days, seconds))
    one_index_per_id(before, after)
    unchanged = pairs(before) - pairs(about(before, condition, ISVC_DEPENDENTS))
    assert unchanged == pairs(after) - pairs(about(after, condition, ISVC_DEPENDENTS))
    assert len(before) == len(after)


@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(conditions_of(PODS)), days=st.integers(1, 400), seconds=st.integers(0, 86399))
def test_a_pod_condition_moving_to_another_day_moves_only_its_own_facts(target: tuple[str, str], days: int,
                                                                        seconds: int) -> None:
    name, condition = target
    pod = history_fixture(name)
    was = {instance_key("queue-proxy", "2026-11-24T10:20:12Z")}  # a drop, for the readiness facts
    before, after = of_pod(pod, was), of_pod(moved(pod, condition, days, seconds), was)
    one_index_per_id(before, after)
    unchanged = pairs(before) - pairs(about(before, condition, POD_DEPENDENTS))
    assert unchanged == pairs(after) - pairs(about(after, condition, POD_DEPENDENTS))


@pytest.mark.parametrize("condition", ["IngressReady", "Ready", "RoutesReady", "LatestDeploymentReady"])
def test_model_status_and_revision_keep_their_document_when_an_unrelated_condition_moves(condition: str) -> None:
    isvc = history_fixture("isvc-sklearn-iris-ready")  # IngressReady is the review's case: it moved two days on
    before = {f.kind: f for f in isvc_facts(isvc) if f.kind in ("model_status", "revision")}
    after = {f.kind: f for f in isvc_facts(moved(isvc, condition, 2, 0)) if f.kind in ("model_status", "revision")}
    assert pairs(before.values()) == pairs(after.values())
    assert {index_of(f, index_template=INDEX) for f in after.values()} == {"serving-events-2026.11.24"}


def test_the_component_s_own_transition_is_when_its_revision_and_model_status_are_stated() -> None:
    isvc = history_fixture("isvc-sklearn-iris-ready")
    facts = {f.kind: f.document() for f in isvc_facts(isvc) if f.kind in ("model_status", "revision")}
    assert facts["revision"]["timestamp"] == "2026-11-24T09:12:31.000000000Z", "PredictorRouteReady, the later one"
    assert facts["model_status"]["timestamp"] == "2026-11-24T09:12:31.000000000Z", "PredictorReady"
    failed = next(f.document() for f in isvc_facts(history_fixture("isvc-sklearn-iris-oomkilled"))
                  if f.kind == "model_status")
    assert failed["timestamp"] == "2026-11-24T09:42:07.000000000Z", "a failure has its own time"


# -- the same container, seen in different states ----------------------------------------------------
def crashlooping(pod: dict[str, Any], *, died: str) -> dict[str, Any]:
    """The oomkilled pod after its current instance (attempt 1) died at ``died``, waiting in CrashLoopBackOff."""
    out = copy.deepcopy(pod)
    cs = out["status"]["containerStatuses"][0]
    started = cs["state"]["running"]["startedAt"]
    cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": started, "finishedAt": died}}
    cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}
    cs["ready"] = False
    return out


def restarts(facts: Iterable[Fact]) -> list[Fact]:
    return [f for f in facts if f.kind == "restart" and f.fields[m.F_CONTAINER] == "kserve-container"]


def test_a_restart_is_one_document_whether_its_instance_is_seen_running_or_dead_days_later() -> None:
    running = history_fixture("pod-sklearn-iris-oomkilled")  # restart 1 started 2026-11-24T09:42:19Z
    waiting = crashlooping(running, died="2026-11-26T03:00:00Z")
    (seen_running,), (seen_waiting,) = restarts(of_pod(running)), restarts(of_pod(waiting))
    assert pairs([seen_running]) == pairs([seen_waiting])
    assert index_of(seen_waiting, index_template=INDEX) == "serving-events-2026.11.24"
    assert "OOMKilled (exit code 137)" in seen_running.document()["message"]
    one_index_per_id(of_pod(running), of_pod(waiting))


def test_the_next_restart_is_a_new_document_at_its_own_start() -> None:
    pod = history_fixture("pod-sklearn-iris-oomkilled")
    again = copy.deepcopy(pod)
    cs = again["status"]["containerStatuses"][0]
    cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-11-24T09:42:19Z",
                                      "finishedAt": "2026-11-26T03:00:00Z"}}
    cs["state"], cs["restartCount"] = {"running": {"startedAt": "2026-11-26T03:00:12Z"}}, 2
    (first,), (second,) = restarts(of_pod(pod)), restarts(of_pod(again))
    assert first.doc_id != second.doc_id and second.document()["restart_count"] == 2
    assert index_of(second, index_template=INDEX) == "serving-events-2026.11.26"


def with_readiness(pod: dict[str, Any], *, ready: bool, changed: str) -> dict[str, Any]:
    out = copy.deepcopy(pod)
    for cs in out["status"]["containerStatuses"]:
        cs["ready"] = ready
    for c in out["status"]["conditions"]:
        if c["type"] in ("ContainersReady", "Ready"):
            c["status"], c["lastTransitionTime"] = ("True" if ready else "False"), changed
    return out


def readiness(facts: Iterable[Fact]) -> list[tuple[str, str]]:
    return sorted((f.document()["condition_status"], f.document()["timestamp"]) for f in facts
                  if f.kind == "readiness" and f.fields[m.F_CONTAINER] == "kserve-container")


def test_each_readiness_flap_of_one_instance_is_its_own_document_at_its_own_time() -> None:
    pod = history_fixture("pod-sklearn-iris-oomkilled")
    was = {instance_key("kserve-container", "2026-11-24T09:42:19Z")}
    flaps = [with_readiness(pod, ready=r, changed=t) for r, t in [
        (True, "2026-11-24T09:42:31Z"), (False, "2026-11-25T22:00:00Z"), (True, "2026-11-26T01:00:00Z"),
        (False, "2026-11-27T08:00:00Z")]]
    observations = [of_pod(p, was) for p in flaps]
    one_index_per_id(*observations)
    seen = sorted({pair for facts in observations for pair in readiness(facts)})
    assert seen == [("False", "2026-11-25T22:00:00.000000000Z"), ("False", "2026-11-27T08:00:00.000000000Z"),
                    ("True", "2026-11-24T09:42:31.000000000Z"), ("True", "2026-11-26T01:00:00.000000000Z")]
    ids = {f.doc_id for facts in observations for f in facts if f.kind == "readiness"
           and f.fields[m.F_CONTAINER] == "kserve-container"}
    assert len(ids) == 4, "two flaps in each direction are four documents, not one per direction"


def test_a_ready_container_is_not_stated_before_the_pod_says_its_containers_are_ready() -> None:
    pod = history_fixture("pod-sklearn-iris-oomkilled")
    for c in pod["status"]["conditions"]:
        if c["type"] == "ContainersReady":
            c["status"], c["lastTransitionTime"] = "False", "2026-11-24T09:42:08Z"
    assert readiness(of_pod(pod)) == [], "no time to state it at yet (the next status update has one)"


# -- events ------------------------------------------------------------------------------------------
def test_an_event_occurrence_carries_its_time_in_its_identity() -> None:
    backoff = next(e for e in items("events-core") if e["reason"] == "BackOff")
    view = view_event(backoff)
    assert view is not None
    skewed = copy.deepcopy(backoff)
    skewed["lastTimestamp"] = later(skewed["lastTimestamp"], 3, 0)  # the same count, another time: another fact
    other = view_event(skewed)
    assert other is not None and other.occurrence == view.occurrence
    one_index_per_id([event_fact(view, {})], [event_fact(other, {})])
    assert event_fact(view, {}).doc_id != event_fact(other, {}).doc_id


@pytest.mark.parametrize("maker", [lambda: [event_fact(v, {}) for e in items("events-core") if (v := view_event(e))],
                                   lambda: [f for n in ISVCS for f in isvc_facts(history_fixture(n))],
                                   lambda: [f for n in PODS for f in of_pod(history_fixture(n))]])
def test_every_fact_s_time_is_part_of_its_identity(maker: Callable[[], list[Fact]]) -> None:
    facts = maker()
    assert facts and all(f.at in f.identity for f in facts)
    with pytest.raises(ValueError, match="part of its identity"):
        Fact("restart", ("uid", "kserve-container", "1"), "2026-11-24T09:42:19Z", {})
