"""Pure: the demo workload's deployment history, as the Kubernetes API would serve it.

``servelog demo --history-dir DIR`` writes these documents for ``servelog events --from-files DIR``:
Pods, InferenceServices and Events in the shapes the API server returns (events written by the
kubelet in core/v1 shape with ``eventTime: null``, the scheduler's in events.k8s.io/v1 shape with a
``series``). The directory is append-only, like an API's history: each file holds the objects as
they were at one moment (a later file may hold the same object, changed), so the failure *and*
the recovery are both there to be read, whether the reader polls or reads once.

The story told next to the logs of :mod:`collector.demo.content`:

- ``fraud-detector`` rolls out version 2 successfully (revision 00002 ready, then all the traffic),
  then version 3 with an image tag that does not exist: ``ErrImagePull`` / ``ImagePullBackOff``, the
  revision fails, version 2 keeps serving;
- every model server fails its readiness probe while the model loads (``Unhealthy`` x2);
- ``summarizer``, a GPU model, cannot be scheduled: ``0/3 nodes are available: 3 Insufficient
  nvidia.com/gpu``;
- ``sentiment`` version 3 is OOMKilled once (exit 137): the termination, the restart, the
  InferenceService's failed model load, and its recovery.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

from collector.demo.content import KSERVE_VERSION, NODE_NAME, PODS, SECOND, DemoPod, Restart, pod_object

BAD_IMAGE = "kserve/sklearnserver:v9.9.9"
FAILED_ROLLOUT = DemoPod("team-risk", "fraud-detector", 3, "predictor", "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4",
                         "8e7d6c5b4a", "h5r8k", 1, "10.1.1.17", BAD_IMAGE)
UNSCHEDULABLE = DemoPod("team-nlp", "summarizer", 1, "predictor", "6e7f8091-a2b3-4c4d-9e5f-60718293a4b5",
                        "7b6a5c4d3e", "m2p9x", 1, "", f"kserve/huggingfaceserver:{KSERVE_VERSION}-gpu")
NO_GPU = ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
          "3 No preemption victims found for incoming pod.")
NOT_FOUND = (f'Failed to pull image "{BAD_IMAGE}": rpc error: code = NotFound desc = failed to pull and unpack image '
             f'"docker.io/{BAD_IMAGE}": failed to resolve reference "docker.io/{BAD_IMAGE}": docker.io/{BAD_IMAGE}: not found')


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uid(*parts: object) -> str:
    text = f"{random.Random('/'.join(map(str, parts))).getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"


class _Events:
    """Builds Events; the same (object, reason) is one Event whose count grows, as the recorders do."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def kubelet(self, pod: DemoPod, reason: str, message: str, first: int, *, last: int | None = None, count: int = 1,
                container: str | None = None, warning: bool = False) -> dict[str, Any]:
        involved: dict[str, Any] = {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid,
                                    "apiVersion": "v1"}
        if container:
            kind = "initContainers" if container == "storage-initializer" else "containers"
            involved["fieldPath"] = f"spec.{kind}{{{container}}}"
        event = {"apiVersion": "v1", "kind": "Event", "metadata": self._meta(pod.namespace, pod.name, reason, container, first),
                 "involvedObject": involved, "reason": reason, "message": message,
                 "source": {"component": "kubelet", "host": NODE_NAME}, "firstTimestamp": _iso(first),
                 "lastTimestamp": _iso(last or first), "count": count, "type": "Warning" if warning else "Normal",
                 "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": NODE_NAME}
        self.items.append(event)
        return event

    def controller(self, namespace: str, kind: str, name: str, reason: str, message: str, at: int, component: str) -> None:
        involved = {"kind": kind, "namespace": namespace, "name": name,
                    "apiVersion": "serving.kserve.io/v1beta1" if kind == "InferenceService" else "apps/v1"}
        self.items.append({"apiVersion": "v1", "kind": "Event", "metadata": self._meta(namespace, name, reason, None, at),
                           "involvedObject": involved, "reason": reason, "message": message,
                           "source": {"component": component}, "firstTimestamp": _iso(at), "lastTimestamp": _iso(at),
                           "count": 1, "type": "Normal", "eventTime": None, "reportingComponent": component})

    def scheduler(self, pod: DemoPod, reason: str, message: str, at: int, *, warning: bool = False,
                  series: tuple[int, int] | None = None) -> None:
        event: dict[str, Any] = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": self._meta(pod.namespace, pod.name, reason, None, at),
            "eventTime": _micro(at), "reportingController": "default-scheduler",
            "reportingInstance": "default-scheduler-demo", "action": "Scheduling" if warning else "Binding",
            "reason": reason, "regarding": {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid,
                                            "apiVersion": "v1"},
            "note": message, "type": "Warning" if warning else "Normal", "deprecatedSource": {}}
        if series:
            event["series"] = {"count": series[0], "lastObservedTime": _micro(series[1])}
        self.items.append(event)

    @staticmethod
    def _meta(namespace: str, name: str, reason: str, container: str | None, at: int) -> dict[str, Any]:
        uid = _uid("event", namespace, name, reason, container)
        return {"name": f"{name}.{uid.replace('-', '')[:16]}", "namespace": namespace, "uid": uid,
                "creationTimestamp": _iso(at)}


def _startup_events(events: _Events, pod: DemoPod, at: int) -> None:
    events.scheduler(pod, "Scheduled", f"Successfully assigned {pod.namespace}/{pod.name} to {NODE_NAME}", at)
    replicaset = f"{pod.revision}-deployment-{pod.replicaset_hash}"
    events.controller(pod.namespace, "ReplicaSet", replicaset, "SuccessfulCreate", f"Created pod: {pod.name}", at,
                      "replicaset-controller")
    if pod.init_containers:
        events.kubelet(pod, "Pulled", f'Container image "kserve/storage-initializer:{KSERVE_VERSION}" already present on '
                       "machine", at, container="storage-initializer")
        events.kubelet(pod, "Started", "Started container storage-initializer", at + 1, container="storage-initializer")


def _running_pod_events(events: _Events, pod: DemoPod, at: int) -> None:
    _startup_events(events, pod, at)
    events.kubelet(pod, "Created", "Created container kserve-container", at + 2, container="kserve-container")
    events.kubelet(pod, "Started", "Started container kserve-container", at + 2, container="kserve-container")
    events.kubelet(pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", at + 3, last=at + 8,
                   count=2, container="queue-proxy", warning=True)


def _failed_pod(pod: DemoPod, at: int) -> dict[str, Any]:
    """A pod of ``pod``'s revision whose model server image cannot be pulled."""
    obj = pod_object(pod, created_ns=at * SECOND)
    status = obj["status"]
    status["phase"] = "Pending"
    status["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": _iso(at)},
        {"type": "Initialized", "status": "True", "lastTransitionTime": _iso(at + 4)},
        {"type": "ContainersReady", "status": "False", "lastTransitionTime": _iso(at), "reason": "ContainersNotReady",
         "message": "containers with unready status: [kserve-container queue-proxy agent]"},
        {"type": "Ready", "status": "False", "lastTransitionTime": _iso(at), "reason": "ContainersNotReady",
         "message": "containers with unready status: [kserve-container queue-proxy agent]"},
    ]
    status["initContainerStatuses"][0]["state"]["terminated"].update(startedAt=_iso(at + 1), finishedAt=_iso(at + 4))
    for cs in status["containerStatuses"]:
        cs["ready"] = False
        if cs["name"] == "kserve-container":
            cs.update(started=False, state={"waiting": {"reason": "ImagePullBackOff",
                                                        "message": f'Back-off pulling image "{BAD_IMAGE}"'}})
    return obj


def _pending_pod(pod: DemoPod, at: int) -> dict[str, Any]:
    obj = pod_object(pod, created_ns=at * SECOND)
    del obj["spec"]["nodeName"]
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"},
                                                 "requests": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}}
    obj["status"] = {"phase": "Pending", "qosClass": "Guaranteed", "conditions": [
        {"type": "PodScheduled", "status": "False", "lastTransitionTime": _iso(at), "reason": "Unschedulable",
         "message": NO_GPU}]}
    return obj


def _isvc(namespace: str, name: str, generation: int, created: int) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "uid": _uid("isvc", namespace, name), "generation": generation,
                         "creationTimestamp": _iso(created), "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://models/{name}"}}},
            "status": {"observedGeneration": generation, "deploymentMode": "Serverless", "conditions": [], "components": {}}}


def _conditions(at: int, *, failed: dict[str, tuple[str, str]] | None = None, types: tuple[str, ...] = (
        "IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady", "PredictorReady", "PredictorRouteReady",
        "Ready", "RoutesReady")) -> list[dict[str, Any]]:
    failed = failed or {}
    out = []
    for kind in types:
        condition: dict[str, Any] = {"type": kind, "status": "True", "lastTransitionTime": _iso(at)}
        if kind in failed:
            condition.update(status="False", reason=failed[kind][0], message=failed[kind][1])
        out.append(condition)
    return out


def _changed(conditions: list[dict[str, Any]], at: int, changes: dict[str, tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The conditions after those in ``changes`` (type -> (status, reason, message)) changed at ``at``; the others
    keep their transition time, as Knative's condition sets do."""
    out = []
    for condition in conditions:
        kind = condition["type"]
        if kind not in changes:
            out.append(copy.deepcopy(condition))
            continue
        status, reason, message = changes[kind]
        changed = {"type": kind, "status": status, "lastTransitionTime": _iso(at)}
        if reason:
            changed.update(reason=reason, message=message)
        out.append(changed)
    return out


def _component(created: str, ready: str, traffic: list[tuple[str, int]]) -> dict[str, Any]:
    return {"latestCreatedRevision": created, "latestReadyRevision": ready,
            "traffic": [{"revisionName": r, "percent": p, "latestRevision": r == ready} for r, p in traffic]}


def _loaded(copies: int = 1, failure: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"transitionStatus": "UpToDate",
                              "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                              "copies": {"failedCopies": 0, "totalCopies": copies}}
    if failure:
        status["lastFailureInfo"] = failure
    return status


def initial_history(created_ns: int) -> dict[str, dict[str, Any]]:
    """The files written when the demo starts: ``{file name: List}``."""
    c = created_ns // SECOND
    events = _Events()
    for pod in PODS:
        _running_pod_events(events, pod, c)
    fraud, sentiment, summarizer = (_isvc("team-risk", "fraud-detector", 2, c - 600), _isvc("team-nlp", "sentiment", 1, c - 300),
                                    _isvc("team-nlp", "summarizer", 1, c + 20))
    rev = "fraud-detector-predictor-0000"
    # version 2 rolls out: created, then ready, then it takes the traffic
    rolling = copy.deepcopy(fraud)
    settled = _conditions(c - 900)
    progressing = ("Unknown", "RevisionNotReady", f'Revision "{rev}2" is not ready yet.')
    rolling["status"]["conditions"] = _changed(settled, c - 590, {"LatestDeploymentReady": progressing,
                                                                  "PredictorConfigurationReady": progressing})
    rolling["status"]["components"] = {"predictor": _component(f"{rev}2", f"{rev}1", [(f"{rev}1", 100)])}
    rolling["status"]["modelStatus"] = {"transitionStatus": "InProgress", "copies": {"failedCopies": 0, "totalCopies": 1},
                                        "states": {"activeModelState": "Loaded", "targetModelState": "Loading"}}
    rolled = copy.deepcopy(fraud)
    rolled["status"]["conditions"] = _changed(rolling["status"]["conditions"], c + 10, {
        "LatestDeploymentReady": ("True", "", ""), "PredictorConfigurationReady": ("True", "", "")})
    rolled["status"]["components"] = {"predictor": _component(f"{rev}2", f"{rev}2", [(f"{rev}2", 100)]),
                                      "transformer": _component("fraud-detector-transformer-00002",
                                                                "fraud-detector-transformer-00002",
                                                                [("fraud-detector-transformer-00002", 100)])}
    rolled["status"]["modelStatus"] = _loaded()
    events.controller("team-risk", "InferenceService", "fraud-detector", "InferenceServiceReady",
                      "InferenceService [fraud-detector] is Ready", c + 10, "v1beta1Controllers")
    # version 3: the image tag does not exist; version 2 keeps serving
    broken = copy.deepcopy(rolled)
    broken["metadata"]["generation"] = broken["status"]["observedGeneration"] = 3
    failure = f'Revision "{rev}3" failed with message: Back-off pulling image "{BAD_IMAGE}".'
    broken["status"]["conditions"] = _changed(rolled["status"]["conditions"], c + 75, {
        "LatestDeploymentReady": ("False", "RevisionFailed", failure),
        "PredictorConfigurationReady": ("False", "RevisionFailed", failure)})
    broken["status"]["components"]["predictor"] = _component(f"{rev}3", f"{rev}2", [(f"{rev}2", 100)])
    failed_pod = _failed_pod(FAILED_ROLLOUT, c + 60)
    _startup_events(events, FAILED_ROLLOUT, c + 60)
    events.kubelet(FAILED_ROLLOUT, "Pulling", f'Pulling image "{BAD_IMAGE}"', c + 65, last=c + 95, count=3,
                   container="kserve-container")
    events.kubelet(FAILED_ROLLOUT, "Failed", NOT_FOUND, c + 66, last=c + 96, count=3, container="kserve-container",
                   warning=True)
    events.kubelet(FAILED_ROLLOUT, "BackOff", f'Back-off pulling image "{BAD_IMAGE}"', c + 67, last=c + 110, count=5,
                   container="kserve-container")
    # sentiment: ready
    sentiment["status"]["conditions"] = _conditions(c + 10)
    sentiment["status"]["components"] = {"predictor": _component("sentiment-predictor-00003", "sentiment-predictor-00003",
                                                                 [("sentiment-predictor-00003", 100)])}
    sentiment["metadata"]["generation"] = sentiment["status"]["observedGeneration"] = 3
    sentiment["status"]["modelStatus"] = _loaded()
    # summarizer: a GPU model no node can take
    pending = _pending_pod(UNSCHEDULABLE, c + 20)
    events.scheduler(UNSCHEDULABLE, "FailedScheduling", NO_GPU, c + 20, warning=True, series=(3, c + 50))
    gpu_failure = f'Revision "summarizer-predictor-00001" failed with message: {NO_GPU}.'
    missing = 'Configuration "summarizer-predictor" does not have any ready Revision.'
    summarizer["status"]["conditions"] = _conditions(c + 22, failed={
        "IngressReady": ("PredictorIngressNotCreated", "Predictor ingress not created"),
        "LatestDeploymentReady": ("RevisionFailed", gpu_failure), "PredictorConfigurationReady": ("RevisionFailed", gpu_failure),
        "PredictorReady": ("RevisionMissing", missing), "PredictorRouteReady": ("RevisionMissing", missing),
        "Ready": ("PredictorIngressNotCreated", "Predictor ingress not created"), "RoutesReady": ("RevisionMissing", missing)})
    summarizer["status"]["components"] = {"predictor": {"latestCreatedRevision": "summarizer-predictor-00001"}}
    summarizer["status"]["modelStatus"] = {"transitionStatus": "InProgress", "copies": {"failedCopies": 0, "totalCopies": 0},
                                           "states": {"activeModelState": "Pending", "targetModelState": "Pending"}}
    pods = [pod_object(p, created_ns=created_ns) for p in PODS] + [failed_pod, pending]
    return {"000-pods.json": {"apiVersion": "v1", "kind": "PodList", "items": pods},
            "001-inferenceservices.json": {"apiVersion": "v1", "kind": "List",
                                           "items": [rolling, rolled, broken, sentiment, summarizer]},
            "002-events.json": {"apiVersion": "v1", "kind": "EventList", "items": events.items}}


def restart_history(created_ns: int, restart: Restart, *, sequence: int = 10) -> dict[str, dict[str, Any]]:
    """The files written when a container is OOMKilled and restarts: its pod, its InferenceService failing and
    recovering, the kubelet's events counting one more start."""
    c, r = created_ns // SECOND, restart.time_ns // SECOND
    pod = pod_object(restart.pod, created_ns=created_ns, restart=restart)
    events = _Events()
    _running_pod_events(events, restart.pod, c)  # the same Events, now seen twice where the container started again
    for event in events.items:
        if event["reason"] in ("Created", "Started") and "kserve-container" in event["involvedObject"].get("fieldPath", ""):
            event.update(count=2, lastTimestamp=_iso(r + 1))
    events.kubelet(restart.pod, "BackOff", f"Back-off restarting failed container kserve-container in pod {restart.pod.name}",
                   r, container="kserve-container", warning=True)
    isvc = _isvc(restart.pod.namespace, restart.pod.serving, 3, c - 300)
    component = {"predictor": _component(restart.pod.revision, restart.pod.revision, [(restart.pod.revision, 100)])}
    failure = {"reason": "ModelLoadFailed", "exitCode": restart.exit_code, "time": _iso(r), "location": restart.pod.name}
    failed = copy.deepcopy(isvc)
    message = f'Revision "{restart.pod.revision}" failed with message: Container failed with: .'
    failed["status"]["conditions"] = _changed(_conditions(c + 10), r + 1, {
        "PredictorReady": ("False", "RevisionFailed", message), "Ready": ("False", "RevisionFailed", message)})
    failed["status"]["components"] = component
    failed["status"]["modelStatus"] = {"transitionStatus": "BlockedByFailedLoad", "lastFailureInfo": failure,
                                       "copies": {"failedCopies": 1, "totalCopies": 1},
                                       "states": {"activeModelState": "Pending", "targetModelState": "FailedToLoad"}}
    recovered = copy.deepcopy(isvc)
    recovered["status"]["conditions"] = _changed(failed["status"]["conditions"], r + 5, {
        "PredictorReady": ("True", "", ""), "Ready": ("True", "", "")})
    recovered["status"]["components"] = component
    recovered["status"]["modelStatus"] = _loaded(failure=failure)
    return {f"{sequence:03d}-pods.json": {"apiVersion": "v1", "kind": "PodList", "items": [pod]},
            f"{sequence + 1:03d}-inferenceservices.json": {"apiVersion": "v1", "kind": "List", "items": [failed, recovered]},
            f"{sequence + 2:03d}-events.json": {"apiVersion": "v1", "kind": "EventList", "items": events.items}}
