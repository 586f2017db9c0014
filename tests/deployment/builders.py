"""Builders of real-shaped Kubernetes objects for the deployment-state tests: pods, events, InferenceServices.

Why builders: a story (an OOM-killed model server, an unschedulable GPU predictor) is a handful of
objects that differ from a healthy deployment in a few fields; writing each as hundreds of lines of
JSON would bury those fields. Each builder produces the object the way the API server serves it
(camelCase, the fields the kubelet / scheduler / KServe controller set, the pod conditions derived
from the container statuses the way the kubelet derives them), with realistic defaults taken from
the fixtures in ``tests/fixtures/pods`` and KServe's serverless predictor; the verbatim documents
in ``tests/fixtures/deployment`` keep the builders honest (``test_fixtures.py`` validates every
built pod and event against the Kubernetes schema).
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deployment"
T0 = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)
NAMESPACE = "kserve-test"
NAME = "sklearn-iris"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def at(seconds: float) -> str:
    """RFC 3339 whole seconds, ``seconds`` after T0 (as metav1.Time serialises)."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(seconds: float) -> str:
    """RFC 3339 with microseconds (metav1.MicroTime: an event's ``eventTime``)."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


# -- container statuses ----------------------------------------------------------------------------
SERVER_IMAGE = "kserve/sklearnserver:v0.14.1"


def running(name: str = "kserve-container", *, since: float = 60, ready: bool = True, restarts: int = 0,
            last: dict[str, Any] | None = None, started: bool = True, image: str = SERVER_IMAGE) -> dict[str, Any]:
    return {"name": name, "state": {"running": {"startedAt": at(since)}}, "lastState": {"terminated": last} if last else {},
            "ready": ready, "restartCount": restarts, "image": f"docker.io/{image}",
            "imageID": f"docker.io/{image.split(':', maxsplit=1)[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
            "containerID": f"containerd://{hashlib.sha256((name + str(since)).encode()).hexdigest()}", "started": started}


def waiting(name: str = "kserve-container", reason: str = "ContainerCreating", message: str | None = None, *,
            restarts: int = 0, last: dict[str, Any] | None = None, image: str = "kserve/sklearnserver:v0.14.1") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    status: dict[str, Any] = {"name": name, "state": {"waiting": state}, "lastState": {"terminated": last} if last else {},
                              "ready": False, "restartCount": restarts, "image": image, "imageID": "", "started": False}
    if last:
        status["containerID"] = f"containerd://{hashlib.sha256((name + 'last').encode()).hexdigest()}"
    return status


def terminated_state(reason: str = "Error", exit_code: int = 1, *, started: float = 60, finished: float = 90,
                     message: str | None = None, name: str = "kserve-container") -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code, "reason": reason, "startedAt": at(started), "finishedAt": at(finished),
                             "containerID": f"containerd://{hashlib.sha256((name + str(started)).encode()).hexdigest()}"}
    if message:
        state["message"] = message
    return state


def terminated(name: str = "storage-initializer", reason: str = "Completed", exit_code: int = 0, *,
               started: float = 12, finished: float = 20, message: str | None = None, restarts: int = 0,
               image: str = "kserve/storage-initializer:v0.14.1") -> dict[str, Any]:
    return {"name": name, "state": {"terminated": terminated_state(reason, exit_code, started=started, finished=finished,
                                                                   message=message, name=name)},
            "lastState": {}, "ready": exit_code == 0, "restartCount": restarts, "image": f"docker.io/{image}",
            "imageID": f"docker.io/{image.split(':', maxsplit=1)[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
            "containerID": f"containerd://{hashlib.sha256((name + str(started)).encode()).hexdigest()}", "started": False}


HEALTHY_INIT = [terminated()]


def healthy_app(since: float = 30) -> list[dict[str, Any]]:
    return [running("kserve-container", since=since), running("queue-proxy", since=since, image="knative/queue:v1.15")]


# -- pods ------------------------------------------------------------------------------------------
def _condition(kind: str, ok: bool, when: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": when}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod(
    *,
    name: str = NAME,
    namespace: str = NAMESPACE,
    component: str = "predictor",
    revision: int = 1,
    suffix: str = "x2x9p",
    created: float = 10,
    unschedulable: str | None = None,
    scheduled: bool = True,
    init: list[dict[str, Any]] | None = None,
    app: list[dict[str, Any]] | None = None,
    kubelet_reported: bool = True,
    terminating: bool = False,
    memory: str = "2Gi",
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    raw: bool = False,
    liveness: bool = False,
    startup: bool = False,
    phase: str | None = None,
) -> dict[str, Any]:
    """A KServe serverless pod (``raw``: a raw-deployment pod) with statuses and kubelet-derived conditions.

    ``init``/``app`` are container statuses (default: storage-initializer done, kserve-container
    and queue-proxy running and ready); ``unschedulable`` the scheduler's message; ``scheduled``
    False leaves the pod unbound without a verdict; ``kubelet_reported`` False is a pod just bound
    that the kubelet has not reported on yet.
    """
    service = f"{name}-{component}"
    rev = f"{service}-{revision:05d}"
    template_hash = hashlib.sha256(rev.encode()).hexdigest()[:9]
    pod_name = f"{service}-{template_hash}-{suffix}" if raw else f"{rev}-deployment-{template_hash}-{suffix}"
    base_labels = ({"app": f"isvc.{service}", "component": component, "pod-template-hash": template_hash,
                    "serving.kserve.io/inferenceservice": name} if raw else
                   {"app": rev, "component": component, "pod-template-hash": template_hash,
                    "serving.knative.dev/configuration": service, "serving.knative.dev/configurationGeneration": str(revision),
                    "serving.knative.dev/revision": rev, "serving.knative.dev/service": service,
                    "serving.kserve.io/inferenceservice": name})
    limits: dict[str, str] = {"cpu": "1", "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    server: dict[str, Any] = {
        "name": "kserve-container", "image": "kserve/sklearnserver:v0.14.1",
        "args": [f"--model_name={name}", "--model_dir=/mnt/models", "--http_port=8080"],
        "ports": [{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"limits": limits, "requests": {"cpu": "100m", "memory": "512Mi",
                                                     **({"nvidia.com/gpu": str(gpus)} if gpus else {})}},
        "volumeMounts": [{"name": "kserve-provision-location", "readOnly": True, "mountPath": "/mnt/models"}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "IfNotPresent"}
    if liveness:
        server["livenessProbe"] = {"httpGet": {"path": f"/v1/models/{name}", "port": 8080, "scheme": "HTTP"},
                                   "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10,
                                   "successThreshold": 1, "failureThreshold": 3}
    if startup:
        server["startupProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 10, "failureThreshold": 30,
                                  "timeoutSeconds": 1, "successThreshold": 1}
    containers = [server]
    if not raw:
        containers.append({"name": "queue-proxy", "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:0c2d",
                           "ports": [{"name": "queue-port", "containerPort": 8012, "protocol": "TCP"}],
                           "readinessProbe": {"httpGet": {"path": "/", "port": 8012, "scheme": "HTTP",
                                                          "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}]},
                                              "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                                              "failureThreshold": 3},
                           "resources": {"requests": {"cpu": "25m"}}, "imagePullPolicy": "IfNotPresent"})
    spec: dict[str, Any] = {
        "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
        "initContainers": [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.14.1",
                            "args": ["gs://kfserving-examples/models/sklearn/1.0/model", "/mnt/models"],
                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                          "requests": {"cpu": "100m", "memory": "100Mi"}},
                            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "FallbackToLogsOnError", "imagePullPolicy": "IfNotPresent"}],
        "containers": containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 300,
        "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "schedulerName": "default-scheduler",
        "priority": 0, "enableServiceLinks": False}
    meta: dict[str, Any] = {
        "name": pod_name, "generateName": pod_name[: -len(suffix)], "namespace": namespace, "uid": uid(namespace, pod_name),
        "resourceVersion": str(48211000 + int(created)), "creationTimestamp": at(created),
        "labels": {**base_labels, **(labels or {})},
        "annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev", **(annotations or {})},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": pod_name[: -len(suffix) - 1],
                             "uid": uid("rs", pod_name), "controller": True, "blockOwnerDeletion": True}]}
    if terminating:
        meta["deletionTimestamp"] = at(created + 300)
        meta["deletionGracePeriodSeconds"] = 300
    status: dict[str, Any] = {"phase": "Pending", "qosClass": "Burstable"}
    conditions: list[dict[str, Any]] = []
    if unschedulable is not None:
        conditions.append(_condition("PodScheduled", False, at(created), "Unschedulable", unschedulable))
    elif scheduled:
        spec["nodeName"] = "ip-10-0-12-34.eu-west-1.compute.internal"
        conditions.append(_condition("PodScheduled", True, at(created)))
        if kubelet_reported:
            init = copy.deepcopy(HEALTHY_INIT) if init is None else init
            app = healthy_app() if app is None else app
            if not init:
                del spec["initContainers"]
            init_done = all("terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0 for s in init)
            app_ready = bool(app) and all(s["ready"] for s in app)
            unready = [s["name"] for s in app if not s["ready"]]
            conditions.append(_condition("PodReadyToStartContainers", True, at(created + 1)))
            conditions.append(_condition("Initialized", init_done, at(created + 10), "ContainersNotInitialized",
                                         f"containers with incomplete status: [{' '.join(s['name'] for s in init)}]"))
            conditions.append(_condition("ContainersReady", app_ready, at(created + 20), "ContainersNotReady",
                                         f"containers with unready status: [{' '.join(unready)}]"))
            conditions.append(_condition("Ready", app_ready, at(created + 20), "ContainersNotReady",
                                         f"containers with unready status: [{' '.join(unready)}]"))
            status.update({"hostIP": "10.0.12.34", "podIP": "10.244.3.17", "startTime": at(created),
                           "initContainerStatuses": init, "containerStatuses": app})
            if any("running" in s["state"] for s in app):
                status["phase"] = "Running"
    status["conditions"] = conditions
    if phase:
        status["phase"] = phase
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


# -- events ----------------------------------------------------------------------------------------
def event(kind: str, name: str, reason: str, message: str, *, namespace: str = NAMESPACE, type: str = "Warning",
          count: int = 1, first: float = 0, last: float | None = None, object_uid: str | None = None,
          field_path: str | None = None, source: str = "kubelet", host: str | None = "ip-10-0-12-34.eu-west-1.compute.internal",
          api_version: str = "v1") -> dict[str, Any]:
    """A core/v1 Event as the API serves it (kubelet events: ``eventTime`` null, counts and timestamps set)."""
    involved: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name, "apiVersion": api_version}
    if object_uid:
        involved["uid"] = object_uid
    if field_path:
        involved["fieldPath"] = field_path
    suffix = hashlib.sha256(f"{name}{reason}{message}".encode()).hexdigest()[:16]
    src: dict[str, Any] = {"component": source}
    if host and source == "kubelet":
        src["host"] = host
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{suffix}", "namespace": namespace, "uid": uid("event", name, reason, message),
                         "resourceVersion": str(48212000 + int(first)), "creationTimestamp": at(first)},
            "involvedObject": involved, "reason": reason, "message": message, "source": src, "type": type,
            "firstTimestamp": at(first), "lastTimestamp": at(first if last is None else last), "count": count,
            "eventTime": None, "reportingComponent": source, "reportingInstance": host if source == "kubelet" else ""}


def pod_event(target: dict[str, Any], reason: str, message: str, *, container: str | None = None, init: bool = False,
              **kwargs: Any) -> dict[str, Any]:
    """An event about a pod (``container``: about one of its containers, as the kubelet's fieldPath says)."""
    meta = target["metadata"]
    path = None if container is None else f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return event("Pod", meta["name"], reason, message, namespace=meta["namespace"], object_uid=meta["uid"],
                 field_path=path, **kwargs)


def scheduler_event(target: dict[str, Any], message: str, *, first: float = 10, count: int = 1) -> dict[str, Any]:
    """The scheduler's FailedScheduling: events.k8s.io/v1 read through core/v1 (firstTimestamp null, eventTime set)."""
    ev = event("Pod", target["metadata"]["name"], "FailedScheduling", message, namespace=target["metadata"]["namespace"],
               object_uid=target["metadata"]["uid"], source="default-scheduler", host=None, first=first, count=count)
    ev.update({"firstTimestamp": None, "lastTimestamp": None, "count": None, "eventTime": micro(first),
               "action": "Scheduling", "reportingComponent": "default-scheduler",
               "reportingInstance": "default-scheduler-ip-10-0-1-10"})
    if count > 1:
        ev["series"] = {"count": count, "lastObservedTime": micro(first + 60 * (count - 1))}
    return ev


# -- InferenceService ------------------------------------------------------------------------------
def _cond(kind: str, status: str, when: float, reason: str | None = None, message: str | None = None,
          severity: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": at(when)}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    if severity:
        cond["severity"] = severity
    return cond


def ready_conditions(components: tuple[str, ...] = ("predictor",), when: float = 40) -> list[dict[str, Any]]:
    conds = [_cond("IngressReady", "True", when), _cond("LatestDeploymentReady", "True", when, severity="Info")]
    for c in components:
        title = c.capitalize()
        conds += [_cond(f"{title}ConfigurationReady", "True", when, severity="Info"), _cond(f"{title}Ready", "True", when),
                  _cond(f"{title}RouteReady", "True", when, severity="Info")]
    return [*conds, _cond("Ready", "True", when), _cond("RoutesReady", "True", when, severity="Info"),
            _cond("Stopped", "False", when)]


def progressing_conditions(message: str = "Revision \"sklearn-iris-predictor-00001\" is waiting for the deployment",
                           when: float = 10) -> list[dict[str, Any]]:
    unknown = "Unknown"
    return [_cond("IngressReady", unknown, when, "Predictor ingress not created"),
            _cond("LatestDeploymentReady", unknown, when, "PredictorConfigurationReady not ready", severity="Info"),
            _cond("PredictorConfigurationReady", unknown, when, "Deploying", message, "Info"),
            _cond("PredictorReady", unknown, when, "RevisionMissing",
                  f"Configuration \"{NAME}-predictor\" is waiting for a Revision to become ready."),
            _cond("PredictorRouteReady", unknown, when, "RevisionMissing",
                  f"Configuration \"{NAME}-predictor\" is waiting for a Revision to become ready.", "Info"),
            _cond("Ready", unknown, when, "RevisionMissing",
                  f"Configuration \"{NAME}-predictor\" is waiting for a Revision to become ready."),
            _cond("RoutesReady", unknown, when, "PredictorRouteReady not ready", severity="Info"),
            _cond("Stopped", "False", when)]


def failed_conditions(revision_text: str, *, revision: str = f"{NAME}-predictor-00001", when: float = 40) -> list[dict[str, Any]]:
    """What KServe shows when Knative's revision failed (kserve/kserve#1601's shape, KServe v0.14 names)."""
    missing = f"Configuration \"{NAME}-predictor\" does not have any ready Revision."
    return [_cond("IngressReady", "False", when, "Predictor ingress not created"),
            _cond("LatestDeploymentReady", "False", when, "PredictorConfigurationReady not ready", severity="Info"),
            _cond("PredictorConfigurationReady", "False", when, "RevisionFailed",
                  f"Revision \"{revision}\" failed with message: {revision_text}.", "Info"),
            _cond("PredictorReady", "False", when, "RevisionMissing", missing),
            _cond("PredictorRouteReady", "False", when, "RevisionMissing", missing, "Info"),
            _cond("Ready", "False", when, "RevisionMissing", missing),
            _cond("RoutesReady", "False", when, "PredictorRouteReady not ready", severity="Info"),
            _cond("Stopped", "False", when)]


def isvc(*, name: str = NAME, namespace: str = NAMESPACE, conditions: list[dict[str, Any]] | None = None,
         latest_created: int | None = 1, latest_ready: int | None = 1, generation: int = 1,
         min_replicas: int | None = None, max_replicas: int | None = None, transformer: bool = False,
         annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
         model_status: dict[str, Any] | None = None, memory: str = "2Gi") -> dict[str, Any]:
    """An InferenceService (serving.kserve.io/v1beta1) with the status the controller writes; default: Ready."""
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                                           "resources": {"limits": {"cpu": "1", "memory": memory},
                                                         "requests": {"cpu": "100m", "memory": "512Mi"}}}}
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    spec: dict[str, Any] = {"predictor": predictor}
    components = ("predictor", "transformer") if transformer else ("predictor",)
    if transformer:
        spec["transformer"] = {"containers": [{"name": "kserve-container", "image": "kserve/image-transformer:v0.14.1",
                                               "args": ["--model_name", name]}]}
    status_components: dict[str, Any] = {}
    for c in components:
        entry: dict[str, Any] = {}
        if latest_created is not None:
            entry["latestCreatedRevision"] = f"{name}-{c}-{latest_created:05d}"
        if latest_ready is not None:
            entry["latestReadyRevision"] = f"{name}-{c}-{latest_ready:05d}"
            entry["traffic"] = [{"latestRevision": True, "percent": 100, "revisionName": f"{name}-{c}-{latest_ready:05d}"}]
            entry["url"] = f"http://{name}-{c}.{namespace}.example.com"
        status_components[c] = entry
    status: dict[str, Any] = {
        "conditions": ready_conditions(components) if conditions is None else conditions,
        "components": status_components, "observedGeneration": generation, "deploymentMode": "Serverless",
        "modelStatus": model_status or {"copies": {"failedCopies": 0, "totalCopies": 1},
                                        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                                        "transitionStatus": "UpToDate"}}
    if latest_ready is not None and conditions is None:
        status["url"] = f"http://{name}.{namespace}.example.com"
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "generation": generation, "uid": uid("isvc", namespace, name),
                         "resourceVersion": "48213000", "creationTimestamp": at(0),
                         "annotations": dict(annotations or {}), "labels": dict(labels or {}),
                         "finalizers": ["inferenceservice.finalizers"]},
            "spec": spec, "status": status}


def stopped(obj: dict[str, Any]) -> dict[str, Any]:
    """The InferenceService with KServe's stop annotation (``serving.kserve.io/stop: "true"``)."""
    copy_ = copy.deepcopy(obj)
    copy_["metadata"]["annotations"]["serving.kserve.io/stop"] = "true"
    return copy_
