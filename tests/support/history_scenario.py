"""A model-deployment story played against the loopback API server, with a ledger of what it made happen.

The oracle for the history collector: every step that makes something happen (an event occurs or
occurs again, a container terminates, restarts, waits, becomes ready or stops being ready, a pod or
InferenceService condition changes, the model status or the revisions change) records the key a
reader would find it by, from the document's own fields (never from the collector's id code), and
the model fields it must carry. :meth:`HistoryScenario.compare` then says which were indexed not at
all, more than once, or with the wrong serving / model / version / component, and which documents
match nothing the story did.

Objects are written the way Kubernetes writes them: pods in KServe's serverless shape
(``<isvc>-<component>-<generation>-deployment-<hash>-<suffix>``, Knative labels, a ReplicaSet
owner, ``storage-initializer``), Events in core/v1 or events.k8s.io/v1 shape (old-recorder events
with ``eventTime: null``, new-recorder ones with ``series``), InferenceServices with Knative
conditions. Times advance one second per step (``tick``), whole seconds as the API writes them.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.kube_server import KubeApiServer

T0 = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp())
Key = tuple[Any, ...]
CHECKED = ("serving_name", "model_name", "model_version", "component")


def stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nanos(text: str) -> str:
    """A whole-second API time as a document timestamp (nine fraction digits)."""
    return text.replace("Z", ".000000000Z")


def _uid(*parts: str) -> str:
    return str(uuid.UUID(bytes=hashlib.blake2b("/".join(parts).encode(), digest_size=16).digest()))


def document_key(doc: Mapping[str, Any]) -> Key:
    """The key of an indexed history document, as :class:`HistoryScenario` records it."""
    kind = doc["event_kind"]
    if kind == "event":
        return (kind, doc.get("involved_name"), doc.get("reason"), doc.get("count"))
    if kind == "termination":
        return (kind, doc.get("pod_uid"), doc.get("container_name"), doc.get("finished_at"))
    if kind in ("waiting", "restart"):
        return (kind, doc.get("pod_uid"), doc.get("container_name"), doc.get("reason"), doc.get("restart_count"))
    if kind == "readiness":
        return (kind, doc.get("pod_uid"), doc.get("container_name"), doc.get("condition_status"), doc.get("started_at"))
    if kind == "pod_condition":
        return (kind, doc.get("pod_uid"), doc.get("condition_type"), doc.get("condition_status"), doc.get("timestamp"))
    if kind == "isvc_condition":
        return (kind, doc.get("involved_name"), doc.get("condition_type"), doc.get("condition_status"), doc.get("reason"),
                doc.get("timestamp"))
    if kind == "model_status":
        return (kind, doc.get("involved_name"), doc.get("model_version"), doc.get("transition_status"),
                doc.get("model_state"), doc.get("target_model_state"), doc.get("timestamp"))
    return (kind, doc.get("involved_name"), doc.get("component"), doc.get("revision"), doc.get("ready_revision"),
            tuple(doc.get("traffic") or ()))


@dataclass
class Isvc:
    name: str
    namespace: str
    obj: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])


@dataclass
class Pod:
    isvc: Isvc
    version: int
    component: str
    obj: dict[str, Any]
    started: dict[str, str] = field(default_factory=dict)  # container -> current instance's startedAt

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    def fields(self) -> dict[str, Any]:
        return {"serving_name": self.isvc.name, "model_name": self.isvc.name, "model_version": str(self.version),
                "component": self.component}

    def status_of(self, container: str) -> dict[str, Any]:
        status = self.obj["status"]
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in status.get(key, []):
                if cs["name"] == container:
                    return cs
        raise KeyError(container)


@dataclass
class Event:
    obj: dict[str, Any]
    api: str
    key_name: str
    expect: dict[str, Any]


class HistoryScenario:
    """Drives the story (see the module docstring); ``expected`` counts every key it made happen."""

    def __init__(self, kube: KubeApiServer, *, namespace: str = "kserve-test") -> None:
        self.kube = kube
        self.namespace = namespace
        self.now = T0
        self.expected: Counter[Key] = Counter()
        self.expect_fields: dict[Key, dict[str, Any]] = {}

    def tick(self, seconds: int = 1) -> str:
        self.now += seconds
        return stamp(self.now)

    def _expect(self, key: Key, fields: Mapping[str, Any] | None = None) -> None:
        self.expected[key] += 1
        if fields:
            self.expect_fields[key] = dict(fields)

    # -- InferenceServices -----------------------------------------------------------------------
    def isvc(self, name: str) -> Isvc:
        obj = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": name, "namespace": self.namespace, "uid": _uid("isvc", name), "generation": 1,
                            "creationTimestamp": self.tick(), "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
               "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://models/{name}"}}},
               "status": {"conditions": [], "observedGeneration": 1}}
        handle = Isvc(name, self.namespace, obj)
        handle.obj = self.kube.add_isvc(obj)
        return handle

    def _isvc_version(self, isvc: Isvc) -> str | None:
        created = isvc.obj["status"].get("components", {}).get("predictor", {}).get("latestCreatedRevision", "")
        return str(int(created[-5:])) if created[-5:].isdigit() else None

    def isvc_update(self, isvc: Isvc, *, conditions: Iterable[tuple[str, str, str, str]] = (),
                    revision: tuple[str, str, str, list[tuple[str, int]]] | None = None,
                    model: tuple[str, str, str, dict[str, Any] | None] | None = None, generation: int | None = None) -> None:
        """One status update: conditions (type, status, reason, message) changed now, a component's
        revisions (component, latest created, latest ready, traffic), the model status
        (transition, active, target, lastFailureInfo)."""
        obj = copy.deepcopy(isvc.obj)
        status = obj["status"]
        when = self.tick()
        if generation is not None:
            obj["metadata"]["generation"] = status["observedGeneration"] = generation
        if revision is not None:
            component, created, ready, traffic = revision
            status.setdefault("components", {})[component] = {
                "latestCreatedRevision": created, "latestReadyRevision": ready,
                "traffic": [{"revisionName": r, "percent": p, "latestRevision": r == ready} for r, p in traffic]}
            self._expect(("revision", isvc.name, component, created, ready, tuple(f"{r}={p}" for r, p in traffic)),
                         {"serving_name": isvc.name, "component": component, "model_version": str(int(created[-5:]))})
        isvc.obj = obj
        version = self._isvc_version(isvc)
        by_type = {c["type"]: c for c in status["conditions"]}
        for kind, value, reason, message in conditions:
            condition = {"type": kind, "status": value, "lastTransitionTime": when}
            if reason:
                condition["reason"] = reason
            if message:
                condition["message"] = message
            by_type[kind] = condition
            component = "predictor" if kind.startswith("Predictor") else None
            expect = {"serving_name": isvc.name, "model_name": isvc.name, "model_version": version, "component": component}
            self._expect(("isvc_condition", isvc.name, kind, value, reason or None, nanos(when)), expect)
        status["conditions"] = sorted(by_type.values(), key=lambda c: c["type"])
        if model is None and generation is not None and status.get("modelStatus"):
            # the same model status, of a new generation: the history records it again
            current = status["modelStatus"]
            model = (current["transitionStatus"], current["states"]["activeModelState"],
                     current["states"]["targetModelState"], current.get("lastFailureInfo"))
        if model is not None:
            transition, active, target, failure = model
            status["modelStatus"] = {"transitionStatus": transition,
                                     "states": {"activeModelState": active, "targetModelState": target},
                                     **({"lastFailureInfo": failure} if failure else {})}
            failing = transition == "BlockedByFailedLoad" or "FailedToLoad" in (active, target)
            # its own time: the failure's, else the predictor's readiness transition (the model status is the predictor's)
            times = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
            own = times.get("PredictorReady") or times.get("LatestDeploymentReady") or times.get("Ready") or (
                obj["metadata"]["creationTimestamp"])
            ts = failure["time"] if failing and failure else own
            self._expect(("model_status", isvc.name, version, transition, active, target, nanos(ts)),
                         {"serving_name": isvc.name, "model_version": version, "component": "predictor"})
        isvc.obj = self.kube.update_isvc(obj)

    # -- pods ------------------------------------------------------------------------------------
    def replicaset(self, pod: Pod) -> str:
        return str(pod.obj["metadata"]["ownerReferences"][0]["name"])

    def pod(self, isvc: Isvc, version: int, *, component: str = "predictor", node: str | None = "node-1",
            scheduled: bool = True, unschedulable_message: str = "") -> Pod:
        revision = f"{isvc.name}-{component}-{version:05d}"
        template_hash = hashlib.blake2b(revision.encode(), digest_size=5).hexdigest()[:9]
        suffix = hashlib.blake2b(f"pod/{revision}".encode(), digest_size=3).hexdigest()[:5]
        name = f"{revision}-deployment-{template_hash}-{suffix}"
        created = self.tick()
        obj: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": isvc.namespace, "uid": _uid("pod", name), "creationTimestamp": created,
                         "labels": {"app": revision, "component": component, "pod-template-hash": template_hash,
                                    "serving.knative.dev/configuration": f"{isvc.name}-{component}",
                                    "serving.knative.dev/configurationGeneration": str(version),
                                    "serving.knative.dev/revision": revision,
                                    "serving.knative.dev/service": f"{isvc.name}-{component}",
                                    "serving.kserve.io/inferenceservice": isvc.name},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                              "name": f"{revision}-deployment-{template_hash}",
                                              "uid": _uid("rs", revision)}]},
            "spec": {"initContainers": [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.14.1"}],
                     "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.14.1",
                                     "args": [f"--model_name={isvc.name}", "--model_dir=/mnt/models"]},
                                    {"name": "queue-proxy", "image": "gcr.io/knative-releases/queue:v1.16.0"}]},
            "status": {"phase": "Pending", "conditions": [], "initContainerStatuses": [], "containerStatuses": []},
        }
        if node:
            obj["spec"]["nodeName"] = node
        pod = Pod(isvc, version, component, obj)
        self.kube.add_pod(obj)
        if scheduled:
            self.pod_condition(pod, "PodScheduled", "True")
        else:
            self.pod_condition(pod, "PodScheduled", "False", "Unschedulable", unschedulable_message)
        return pod

    def _push(self, pod: Pod) -> None:
        pod.obj = self.kube.update_pod(pod.obj)

    def pod_condition(self, pod: Pod, kind: str, value: str, reason: str = "", message: str = "") -> None:
        when = self.tick()
        conditions = {c["type"]: c for c in pod.obj["status"]["conditions"]}
        condition = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": when}
        if reason:
            condition["reason"], condition["message"] = reason, message
        conditions[kind] = condition
        pod.obj["status"]["conditions"] = list(conditions.values())
        self._expect(("pod_condition", pod.uid, kind, value, nanos(when)), pod.fields())
        self._push(pod)

    def init_done(self, pod: Pod) -> None:
        started, finished = self.tick(), self.tick(3)
        terminated = {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": finished,
                      "containerID": f"containerd://{_uid(pod.name, 'init')}"}
        pod.obj["status"]["initContainerStatuses"] = [{
            "name": "storage-initializer", "image": "kserve/storage-initializer:v0.14.1", "ready": True, "restartCount": 0,
            "started": False, "state": {"terminated": terminated}}]
        self._expect(("termination", pod.uid, "storage-initializer", nanos(finished)), pod.fields())
        self._push(pod)
        self.pod_condition(pod, "Initialized", "True")

    def start(self, pod: Pod, container: str = "kserve-container") -> None:
        when = self.tick()
        pod.started[container] = when
        statuses = {cs["name"]: cs for cs in pod.obj["status"]["containerStatuses"]}
        previous = statuses.get(container, {})
        statuses[container] = {"name": container, "image": "kserve/sklearnserver:v0.14.1", "ready": False, "started": True,
                               "restartCount": previous.get("restartCount", 0), "lastState": previous.get("lastState", {}),
                               "state": {"running": {"startedAt": when}}}
        pod.obj["status"]["containerStatuses"] = list(statuses.values())
        pod.obj["status"]["phase"] = "Running"
        self._push(pod)

    def ready(self, pod: Pod, container: str = "kserve-container", value: bool = True) -> None:
        pod.status_of(container)["ready"] = value
        self._expect(("readiness", pod.uid, container, "True" if value else "False", nanos(pod.started[container])), pod.fields())
        self._push(pod)

    def crash(self, pod: Pod, container: str = "kserve-container", *, reason: str = "OOMKilled", exit_code: int = 137,
              restart: bool = True) -> None:
        """The instance ends (a termination); with ``restart`` the kubelet starts the next one."""
        cs = pod.status_of(container)
        finished = self.tick()
        terminated = {"exitCode": exit_code, "reason": reason, "startedAt": pod.started[container], "finishedAt": finished,
                      "containerID": f"containerd://{_uid(pod.name, container, pod.started[container])}"}
        self._expect(("termination", pod.uid, container, nanos(finished)), {**pod.fields()})
        if not restart:
            cs.update(ready=False, started=False, state={"terminated": terminated})
            self._push(pod)
            return
        when = self.tick()
        cs.update(ready=False, restartCount=cs["restartCount"] + 1, lastState={"terminated": terminated},
                  state={"running": {"startedAt": when}})
        pod.started[container] = when
        self._expect(("restart", pod.uid, container, "Restarted", cs["restartCount"]), pod.fields())
        self._push(pod)

    def waiting(self, pod: Pod, container: str, reason: str, message: str) -> None:
        statuses = {cs["name"]: cs for cs in pod.obj["status"]["containerStatuses"]}
        cs = statuses.setdefault(container, {"name": container, "image": "kserve/sklearnserver:v9.9.9", "ready": False,
                                             "started": False, "restartCount": 0, "lastState": {}})
        cs["state"] = {"waiting": {"reason": reason, "message": message}}
        pod.obj["status"]["containerStatuses"] = list(statuses.values())
        self._expect(("waiting", pod.uid, container, reason, cs["restartCount"]), pod.fields())
        self._push(pod)

    # -- events ----------------------------------------------------------------------------------
    def event(self, about: Pod | Isvc | tuple[str, str, Pod], reason: str, message: str, *, type_: str = "Normal",
              container: str | None = None, api: str = "core", component: str = "kubelet") -> Event:
        """An event about a pod, an InferenceService, or ``(kind, name, pod)`` (a ReplicaSet or Deployment of the pod)."""
        when = self.tick()
        if isinstance(about, Pod):
            involved = {"kind": "Pod", "namespace": self.namespace, "name": about.name, "uid": about.uid, "apiVersion": "v1"}
            expect = about.fields()
        elif isinstance(about, Isvc):
            involved = {"kind": "InferenceService", "namespace": self.namespace, "name": about.name, "uid": about.uid,
                        "apiVersion": "serving.kserve.io/v1beta1"}
            expect = {"serving_name": about.name, "model_name": about.name}
        else:
            kind, name, pod = about
            involved = {"kind": kind, "namespace": self.namespace, "name": name, "apiVersion": "apps/v1"}
            expect = pod.fields()
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        meta = {"name": f"{involved['name']}.{hashlib.blake2b(f'{reason}{when}'.encode(), digest_size=8).hexdigest()}",
                "namespace": self.namespace, "uid": _uid("event", involved["name"], reason, when), "creationTimestamp": when}
        if api == "core":
            obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Event", "metadata": meta, "involvedObject": involved,
                                   "reason": reason, "message": message, "type": type_, "count": 1,
                                   "firstTimestamp": when, "lastTimestamp": when, "eventTime": None,
                                   "source": {"component": component}, "reportingComponent": component}
        else:  # the new recorder (scheduler): eventTime, no first/last timestamps, series on repetition
            obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta, "regarding": involved,
                   "reason": reason, "note": message, "type": type_, "eventTime": when.replace("Z", ".000000Z"),
                   "reportingController": component, "reportingInstance": f"{component}-1", "action": "Scheduling",
                   "deprecatedSource": {}}
        stored = self.kube.add_event(obj)
        event = Event(stored, api, involved["name"], expect)
        self._expect(("event", involved["name"], reason, 1), expect)
        return event

    def repeat(self, event: Event) -> None:
        """The event occurs again: its count (or series) grows."""
        event.obj = self.kube.repeat_event(event.obj, self.tick())
        count = (event.obj.get("series") or {}).get("count") or event.obj.get("count")
        self._expect(("event", event.key_name, event.obj["reason"], count), event.expect)

    # -- the oracle ------------------------------------------------------------------------------
    def compare(self, documents: Iterable[Mapping[str, Any]]) -> Report:
        seen: Counter[Key] = Counter()
        wrong: list[str] = []
        for doc in documents:
            key = document_key(doc)
            seen[key] += 1
            for name, value in self.expect_fields.get(key, {}).items():
                if name in CHECKED and doc.get(name) != value:
                    wrong.append(f"{key}: {name}={doc.get(name)!r}, expected {value!r}")
        return Report(missing=sorted(map(str, self.expected - seen)),
                      duplicated=sorted(str(k) for k, n in seen.items() if n > 1),
                      unexpected=sorted(str(k) for k in seen if k not in self.expected), wrong=wrong,
                      expected=sum(self.expected.values()), received=sum(seen.values()))


@dataclass
class Report:
    missing: list[str]
    duplicated: list[str]
    unexpected: list[str]
    wrong: list[str]
    expected: int
    received: int

    @property
    def exactly_once(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected or self.wrong)

    def __str__(self) -> str:
        lines = [f"history: {self.expected} expected, {self.received} indexed; {len(self.missing)} missing, "
                 f"{len(self.duplicated)} duplicated, {len(self.unexpected)} unexpected, {len(self.wrong)} wrong fields"]
        for title, items in (("missing", self.missing), ("duplicated", self.duplicated), ("unexpected", self.unexpected),
                             ("wrong", self.wrong)):
            lines += [f"  {title}: {item}" for item in items[:8]]
        return "\n".join(lines)
