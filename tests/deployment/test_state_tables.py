"""Seed 001's two tables, row by row: each status and each condition (type and status) from a real-shaped fixture."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from collector.deployment import ConditionStatus, ConditionType, DeploymentState, Status, deployment_state
from tests.deployment import builders as b

S, INIT, ST, R, STOP = (ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY,
                     ConditionType.STOPPED)
U, F, T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE
GPU_TEXT = ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod..")


def state(isvc: dict[str, Any] | None, pods: list[dict[str, Any]], events: Sequence[dict[str, Any]] = (),
          **kwargs: Any) -> DeploymentState:
    return deployment_state(isvc, pods, list(events), now=b.NOW, **kwargs)


def starting_isvc() -> dict[str, Any]:
    return b.isvc(conditions=b.progressing_conditions(), latest_ready=None)


def pulled(pod: dict[str, Any], *containers: str) -> list[dict[str, Any]]:
    return [b.pod_event(pod, "Pulled", f"Container image \"{c}:v1\" already present on machine", container=c,
                        type="Normal", first=25) for c in containers]


# -- each condition row ----------------------------------------------------------------------------
def stopped_unknown() -> DeploymentState:
    return state(b.stopped(b.isvc()), [b.pod(terminating=True)])


def stopped_true() -> DeploymentState:
    return state(b.stopped(b.isvc()), [], [b.event("InferenceService", b.NAME, "InferenceServiceReady", "ready", type="Normal")])


def scheduled_unknown() -> DeploymentState:
    return state(starting_isvc(), [b.pod(scheduled=False)])


def scheduled_false() -> DeploymentState:
    return state(starting_isvc(), [b.pod(unschedulable=GPU_TEXT, gpus=1)])


def scheduled_true() -> DeploymentState:
    return state(starting_isvc(), [b.pod(kubelet_reported=False)])


def initialized_unknown() -> DeploymentState:
    return state(starting_isvc(), [b.pod(init=[b.running("storage-initializer", since=12, ready=False)],
                                         app=[b.waiting("kserve-container", "PodInitializing"),
                                              b.waiting("queue-proxy", "PodInitializing")])])


def initialized_false() -> DeploymentState:
    failed = b.terminated("storage-initializer", "Error", 1, message=(
        "Traceback (most recent call last):\n  File \"/storage-initializer/scripts/initializer-entrypoint\", line 16\n"
        "RuntimeError: Failed to fetch model. No model found in gs://kfserving-examples/models/sklearn/9.9/model."))
    back_off = {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
    crashing = {**failed, "state": {"waiting": back_off},
                "lastState": failed["state"], "restartCount": 2}
    return state(starting_isvc(), [b.pod(init=[crashing], app=[b.waiting("kserve-container", "PodInitializing"),
                                                              b.waiting("queue-proxy", "PodInitializing")])])


def initialized_true() -> DeploymentState:
    pod = b.pod(app=[b.waiting("kserve-container"), b.waiting("queue-proxy")])
    return state(starting_isvc(), [pod], pulled(pod, "kserve-container", "queue-proxy"))


def started_unknown() -> DeploymentState:
    return state(starting_isvc(), [b.pod(startup=True, app=[b.running("kserve-container", ready=False, started=False),
                                                            b.running("queue-proxy", ready=False)])])


def started_false() -> DeploymentState:
    oom = b.terminated_state("OOMKilled", 137, started=200, finished=260)
    return state(starting_isvc(), [b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", "back-off 1m20s restarting "
                                                        "failed container=kserve-container", restarts=3, last=oom),
                                              b.running("queue-proxy", ready=False)])])


def started_true() -> DeploymentState:
    return state(starting_isvc(), [b.pod(app=[b.running("kserve-container", ready=False, since=300),
                                              b.running("queue-proxy", ready=False, since=300)])])


def ready_unknown() -> DeploymentState:
    pod = b.pod(app=[b.running("kserve-container", ready=False, since=300), b.running("queue-proxy", ready=False, since=300)])
    probe = b.pod_event(pod, "Unhealthy", "Readiness probe failed: Get \"http://10.244.3.17:8012/\": context deadline exceeded",
                        container="queue-proxy", first=320, last=560, count=25)
    return state(starting_isvc(), [pod], [probe])


def ready_false() -> DeploymentState:
    conditions = [c if c["type"] != "Ready" else {**c, "status": "Unknown", "reason": "IngressNotConfigured"}
                  for c in b.ready_conditions()]
    conditions = [c for c in conditions if c["type"] != "IngressReady"]
    error = b.event("InferenceService", b.NAME, "InternalError", "fails to reconcile ingress: fails to reconcile virtual "
                    "service: admission webhook \"validation.istio.io\" denied the request: configuration is invalid: "
                    "gateway must be specified", source="v1beta1Controllers", api_version="serving.kserve.io/v1beta1",
                    first=400, count=6)
    return state(b.isvc(conditions=conditions), [b.pod()], [error])


def ready_true() -> DeploymentState:
    return state(b.isvc(), [b.pod()])


CONDITION_ROWS = [
    (stopped_unknown, STOP, U, "Stopping: 1 instance still terminating"),
    (stopped_true, STOP, T, "Deployment is stopped"),
    (scheduled_unknown, S, U, "Waiting to be scheduled"),
    (scheduled_false, S, F, "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"),
    (scheduled_true, S, T, "Scheduled on node ip-10-0-12-34"),
    (initialized_unknown, INIT, U, "Initializing: storage-initializer running"),
    (initialized_false, INIT, F, "storage-initializer failed (exit 1): RuntimeError: Failed to fetch model. No model found in"),
    (initialized_true, INIT, T, "Initialized: images pulled, volumes mounted"),
    (started_unknown, ST, U, "Starting: kserve-container running for 9 minutes, startup probe pending"),
    (started_false, ST, F, "kserve-container was OOMKilled (exit 137, memory limit 2Gi), restarted 3 times"),
    (started_true, ST, T, "Started: waiting for kserve-container, queue-proxy to be ready"),
    (ready_unknown, R, U, "queue-proxy: Readiness probe failed: Get \"http://10.244.3.17:8012/\": context deadline exceeded"),
    (ready_false, R, F, "Failed to set up connectivity: fails to reconcile ingress: fails to reconcile virtual service"),
    (ready_true, R, T, "Deployment is ready"),
]


@pytest.mark.parametrize(("build", "kind", "status", "reason"), CONDITION_ROWS, ids=[f"{r[1]}-{r[2]}" for r in CONDITION_ROWS])
def test_each_condition_of_the_table(build: Any, kind: ConditionType, status: ConditionStatus, reason: str) -> None:
    got = build().condition
    assert (got.type, got.status) == (kind, status)
    assert got.reason.startswith(reason), got.reason
    assert "\n" not in got.reason


def test_every_row_of_the_condition_table_is_covered() -> None:
    rows = {(kind, status) for _, kind, status, _ in CONDITION_ROWS}
    expected = {(STOP, U), (STOP, T)} | {(k, s) for k in (S, INIT, ST, R) for s in (U, F, T)}
    assert rows == expected


# -- each status -----------------------------------------------------------------------------------
def created() -> DeploymentState:
    return state(b.stopped(b.isvc(conditions=[], latest_created=None, latest_ready=None)), [])


def idle() -> DeploymentState:
    return state(b.isvc(min_replicas=0), [])


def updating() -> DeploymentState:
    new = b.pod(revision=2, suffix="n3w00", created=400, app=[b.running("kserve-container", ready=False, since=410),
                                                              b.running("queue-proxy", ready=False, since=410)])
    isvc = b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=1, generation=2)
    return state(isvc, [b.pod(revision=1), new])


STATUS_ROWS = [
    (created, Status.CREATED, STOP, T),
    (scheduled_unknown, Status.STARTING, S, U),
    (ready_true, Status.RUNNING, R, T),
    (idle, Status.IDLE, R, T),
    (started_false, Status.FAILED, ST, F),
    (updating, Status.UPDATING, ST, T),
    (stopped_unknown, Status.STOPPING, STOP, U),
    (stopped_true, Status.STOPPED, STOP, T),
]


@pytest.mark.parametrize(("build", "status", "kind", "cond_status"), STATUS_ROWS, ids=[str(r[1]) for r in STATUS_ROWS])
def test_each_status_of_the_table(build: Any, status: Status, kind: ConditionType, cond_status: ConditionStatus) -> None:
    got = build()
    assert got.status is status
    assert (got.condition.type, got.condition.status) == (kind, cond_status)


def test_every_status_is_covered() -> None:
    assert {row[1] for row in STATUS_ROWS} == set(Status)
