"""The fixtures are real: every built pod and event is a valid Kubernetes object, and the readers take both event APIs."""

from __future__ import annotations

from typing import Any

import pytest

from collector.deployment.objects import read_event, read_events
from tests.deployment import builders as b
from tests.deployment import test_state_stories as stories


def built_pods() -> list[dict[str, Any]]:
    oom = b.terminated_state("OOMKilled", 137)
    return [
        b.pod(), b.pod(raw=True), b.pod(unschedulable="0/3 nodes are available", gpus=1), b.pod(scheduled=False),
        b.pod(kubelet_reported=False), b.pod(terminating=True), b.pod(liveness=True, startup=True),
        b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=3, last=oom), b.running("queue-proxy")]),
        b.pod(init=[b.running("storage-initializer", ready=False)], app=[b.waiting("kserve-container", "PodInitializing")]),
        b.pod(init=[], app=[b.running()]), stories.liveness_story()[0], stories.image_story()[0],
        b.fixture("pod-oomkilled-crashloop"),
    ]


def built_events() -> list[dict[str, Any]]:
    pod = b.pod()
    return [*stories.liveness_story()[1], *stories.image_story()[1], b.scheduler_event(pod, "0/3 nodes", count=3),
            b.event("InferenceService", "x", "InternalError", "boom", source="v1beta1Controllers"),
            *b.fixture("events-oomkilled")["items"]]


@pytest.mark.parametrize("index", range(len(built_pods())))
def test_built_pods_are_valid_v1_pods(index: int) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(built_pods()[index], "1.30", strict=True)


def test_built_events_are_valid_v1_events() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for event in built_events():
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Event", **event}, "1.30", strict=True)


def test_core_and_events_k8s_io_shapes_read_alike() -> None:
    core = b.pod_event(b.pod(), "Unhealthy", "Readiness probe failed: 503", container="queue-proxy", count=4, first=10, last=70)
    modern = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
              "metadata": {"name": "e.1", "namespace": b.NAMESPACE, "creationTimestamp": b.at(10)},
              "regarding": core["involvedObject"], "reason": "Unhealthy", "note": "Readiness probe failed: 503",
              "type": "Warning", "eventTime": b.micro(10), "series": {"count": 4, "lastObservedTime": b.micro(70)},
              "reportingController": "kubelet", "reportingInstance": "node-1", "action": "Probe"}
    pytest.importorskip("kubernetes_validate").validate(modern, "1.30", strict=True)
    a, c = read_event(core), read_event(modern)
    assert (a.reason, a.message, a.type, a.kind, a.name, a.uid, a.container, a.count, a.source) == (
        c.reason, c.message, c.type, c.kind, c.name, c.uid, c.container, c.count, c.source)
    assert a.container == "queue-proxy"


def test_scheduler_events_with_null_timestamps_are_placed_by_event_time() -> None:
    pod = b.pod()
    events = read_events([b.pod_event(pod, "Pulled", "x", first=50, type="Normal"), b.scheduler_event(pod, "0/3", first=5)])
    assert [e.reason for e in events] == ["FailedScheduling", "Pulled"]
    assert events[0].time == b.micro(5)


def test_malformed_objects_are_read_without_raising() -> None:
    event = read_event({"involvedObject": None, "count": "seven", "metadata": None})
    assert (event.reason, event.count, event.time) == ("", 1, None)
