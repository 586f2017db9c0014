"""Seed 001's transition diagrams, reconstructed: one deployment walked through its start and its stop, snapshot by snapshot."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from collector.deployment import ConditionStatus, ConditionType, DeploymentState, Status, deployment_state
from collector.deployment.model import START_SEQUENCE
from tests.deployment import builders as b
from tests.deployment import test_state_tables as rows

S, INIT, ST, R, STOP = (ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY,
                     ConditionType.STOPPED)
U, F, T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE
Snapshot = tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]]]


def starting_isvc() -> dict[str, Any]:
    return b.isvc(conditions=b.progressing_conditions(), latest_ready=None)


def start_snapshots() -> list[Snapshot]:
    """A stopped deployment started again: every observation the kubelet and KServe make on the way to Ready."""
    creating = b.pod(app=[b.waiting("kserve-container"), b.waiting("queue-proxy")])
    pulled = [b.pod_event(creating, "Pulled", f"Successfully pulled image \"{c}\" in 2.1s", container=c, type="Normal",
                          first=30) for c in ("kserve-container", "queue-proxy")]
    all_ready_isvc = starting_isvc()
    all_ready_isvc["status"]["conditions"] = [
        {**c, "status": "True"} if c["type"].startswith("Predictor") or c["type"] == "LatestDeploymentReady" else c
        for c in all_ready_isvc["status"]["conditions"]]
    return [
        (b.stopped(b.isvc()), [], [b.event("InferenceService", b.NAME, "InferenceServiceReady", "ready", type="Normal")]),
        (starting_isvc(), [b.pod(scheduled=False)], []),
        (starting_isvc(), [b.pod(kubelet_reported=False)], []),
        (starting_isvc(), [b.pod(init=[b.running("storage-initializer", since=12, ready=False)],
                                 app=[b.waiting("kserve-container", "PodInitializing"),
                                      b.waiting("queue-proxy", "PodInitializing")])], []),
        (starting_isvc(), [creating], pulled),
        (starting_isvc(), [b.pod(startup=True, app=[b.running("kserve-container", ready=False, started=False),
                                                    b.running("queue-proxy", ready=False)])], pulled),
        (starting_isvc(), [b.pod(app=[b.running("kserve-container", ready=False),
                                      b.running("queue-proxy", ready=False)])], pulled),
        (all_ready_isvc, [b.pod()], pulled),
        (b.isvc(), [b.pod()], pulled),
    ]


def walk(snapshots: list[Snapshot]) -> list[DeploymentState]:
    return [deployment_state(isvc, pods, events, now=b.NOW) for isvc, pods, events in snapshots]


def test_the_start_sequence_walks_every_step_in_order() -> None:
    states = walk(start_snapshots())
    assert [(s.condition.type, s.condition.status) for s in states] == [
        (STOP, T), (S, U), (S, T), (INIT, U), (INIT, T), (ST, U), (ST, T), (R, U), (R, T)]
    assert [s.status for s in states] == [Status.STOPPED, *[Status.STARTING] * 7, Status.RUNNING]


def test_each_start_transition_moves_forward() -> None:
    progress = [s.condition.progress for s in walk(start_snapshots())]
    assert all(a < b for a, b in itertools.pairwise(progress)), progress
    assert [START_SEQUENCE[p[0]] for p in progress] == [STOP, S, S, INIT, INIT, ST, ST, R, R]


def test_ready_unknown_while_the_pods_are_ready_names_the_ingress_still_being_set_up() -> None:
    state = walk(start_snapshots())[7]
    assert state.condition.reason == "Setting up connectivity: Predictor ingress not created"
    assert state.component("predictor") is not None and state.component("predictor").running == 1  # type: ignore[union-attr]


FAILURE_BRANCHES: list[tuple[Callable[[], DeploymentState], Callable[[], DeploymentState]]] = [
    (rows.scheduled_unknown, rows.scheduled_false),
    (rows.initialized_unknown, rows.initialized_false),
    (rows.started_unknown, rows.started_false),
    (rows.ready_unknown, rows.ready_false),
]


@pytest.mark.parametrize(("before", "after"), FAILURE_BRANCHES, ids=["SCHEDULED", "INITIALIZED", "STARTED", "READY"])
def test_each_step_can_end_false_from_unknown(before: Callable[[], DeploymentState],
                                              after: Callable[[], DeploymentState]) -> None:
    was, now = before(), after()
    assert was.condition.type == now.condition.type
    assert (was.condition.status, now.condition.status) == (U, F)
    assert (was.status, now.status) == (Status.STARTING, Status.FAILED)
    assert now.last_failure is not None


def test_readiness_that_never_comes_ends_false_when_the_controller_gives_up() -> None:
    pod = b.pod(app=[b.running("kserve-container", ready=False), b.running("queue-proxy", ready=False)])
    probe = b.pod_event(pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        container="queue-proxy", first=70, last=590, count=52)
    gave_up = b.isvc(latest_ready=None, conditions=b.failed_conditions("Initial scale was never achieved"))
    gave_up["status"]["conditions"] = [
        {**c, "reason": "ProgressDeadlineExceeded", "message": "Initial scale was never achieved"}
        if c["type"] == "PredictorReady" else c for c in gave_up["status"]["conditions"]]
    waiting = deployment_state(starting_isvc(), [pod], [probe], now=b.NOW)
    failed = deployment_state(gave_up, [pod], [probe], now=b.NOW)
    assert (waiting.condition.type, waiting.condition.status) == (R, U)
    assert (failed.condition.type, failed.condition.status, failed.status) == (R, F, Status.FAILED)
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in failed.condition.reason
    assert "readiness probe never passed" in failed.next_step


# -- stopping --------------------------------------------------------------------------------------
def stop_snapshots() -> list[Snapshot]:
    return [
        (b.isvc(), [b.pod()], []),
        (b.stopped(b.isvc()), [b.pod(terminating=True)], []),
        (b.stopped(b.isvc()), [], []),
    ]


def test_the_stop_sequence_goes_through_stopped_unknown_to_stopped_true() -> None:
    states = walk(stop_snapshots())
    assert [(s.condition.type, s.condition.status) for s in states] == [(R, T), (STOP, U), (STOP, T)]
    assert [s.status for s in states] == [Status.RUNNING, Status.STOPPING, Status.STOPPED]
    assert [s.component("predictor").desired for s in states] == [1, 0, 0]  # type: ignore[union-attr]


def test_a_failed_start_stops_the_same_way() -> None:
    pending = b.pod(unschedulable=rows.GPU_TEXT, gpus=1)
    states = walk([(starting_isvc(), [pending], []), (b.stopped(starting_isvc()), [pending], []),
                   (b.stopped(starting_isvc()), [], [])])
    assert [(s.condition.type, s.condition.status) for s in states] == [(S, F), (STOP, U), (STOP, T)]
    assert [s.status for s in states] == [Status.FAILED, Status.STOPPING, Status.STOPPED]


def test_kserves_stopped_condition_means_stop_even_without_the_annotation() -> None:
    isvc = b.isvc()
    isvc["status"]["conditions"] = [{**c, "status": "True"} if c["type"] == "Stopped" else c
                                    for c in isvc["status"]["conditions"]]
    assert deployment_state(isvc, [b.pod(terminating=True)], [], now=b.NOW).status is Status.STOPPING


def test_a_deleted_inference_service_stops_its_deployment_hopsworks_style() -> None:
    """Hopsworks stops a deployment by deleting its InferenceService: the pods terminate, then nothing is left."""
    states = walk([(None, [b.pod(terminating=True)], []), (None, [], [b.event("Pod", "x", "Killing", "Stopping container "
                                                                              "kserve-container", type="Normal")])])
    assert [(s.status, s.condition.type, s.condition.status) for s in states] == [
        (Status.STOPPING, STOP, U), (Status.STOPPED, STOP, T)]
    assert all(s.found for s in states)


def test_nothing_seen_at_all_is_not_found() -> None:
    state = deployment_state(None, [], [], now=b.NOW, serving_name="ghost", namespace="models")
    assert not state.found
    assert (state.serving_name, state.namespace) == ("ghost", "models")
