"""Tolerant readers of raw Kubernetes objects: pods, events, InferenceServices as the API returns them.

Why raw dicts: the I/O layer hands over objects exactly as the API server (or the loopback server in
tests) serialises them, camelCase and all, without a typed model that could reject an event with a
null ``eventTime`` or a pod from a newer API version. Every reader here accepts missing or null
fields and answers ``None``/empty instead of raising: a half-reported pod is a normal sight while a
deployment starts.

Events come in two shapes, core/v1 (``involvedObject``, ``message``, ``count``, ``source``) and
``events.k8s.io/v1`` (``regarding``, ``note``, ``deprecatedCount`` or ``series.count``,
``reportingController``); :func:`read_event` reads both. When an event happened is
:func:`collector.kube.presets.event_time` (the first non-null of the places Kubernetes puts it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector import model as m
from collector.kube import presets
from collector.kube.objects import integer as as_int  # one reading of an integer field, the history source's
from collector.transforms.cri import parse_timestamp

Obj = Mapping[str, Any]

_FIELD_PATH_CONTAINER = re.compile(r"^spec\.(?:init)?[cC]ontainers\{(?P<name>[^}]+)\}$")


def mapping(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


def meta(obj: Obj) -> Obj:
    return mapping(obj.get("metadata"))


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def time_ns(text: Any) -> int | None:
    """Integer nanoseconds of an RFC 3339 timestamp (whole seconds or a fraction), None when absent or bad."""
    if not text:
        return None
    parsed = parse_timestamp(str(text))
    return parsed[0] if parsed else None


def is_terminating(obj: Obj) -> bool:
    """The object is being deleted (``metadata.deletionTimestamp`` set): a pod that no longer counts."""
    return bool(meta(obj).get("deletionTimestamp"))


def pod_condition(pod: Obj, kind: str) -> Obj | None:
    """The pod condition of that type (``PodScheduled``, ``Initialized``, ``ContainersReady``, ``Ready``)."""
    for cond in items(mapping(pod.get("status")).get("conditions")):
        if cond.get("type") == kind:
            return cond
    return None


def condition_true(cond: Obj | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def is_ready(pod: Obj) -> bool:
    """A pod that serves: Ready True and not being deleted."""
    return condition_true(pod_condition(pod, "Ready")) and not is_terminating(pod)


def container_statuses(pod: Obj, *, init: bool = False) -> list[Obj]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return items(mapping(pod.get("status")).get(key))


def container_spec(pod: Obj, container: str) -> Obj | None:
    spec = mapping(pod.get("spec"))
    for c in [*items(spec.get("containers")), *items(spec.get("initContainers"))]:
        if c.get("name") == container:
            return c
    return None


def app_container_names(pod: Obj) -> list[str]:
    return [str(c.get("name")) for c in items(mapping(pod.get("spec")).get("containers")) if c.get("name")]


def memory_limit(pod: Obj, container: str) -> str | None:
    """``resources.limits.memory`` of a container, as written in the pod spec (``2Gi``)."""
    spec = container_spec(pod, container) or {}
    value = mapping(mapping(spec.get("resources")).get("limits")).get("memory")
    return str(value) if value is not None else None


def state_of(status: Obj, which: str = "state") -> tuple[str, Obj]:
    """(``waiting`` | ``running`` | ``terminated`` | ``""``, its details) of a container's state or lastState."""
    state = mapping(status.get(which))
    for key in ("waiting", "running", "terminated"):
        if isinstance(state.get(key), Mapping):
            return key, state[key]
    return "", {}


Custom = Mapping[str, str] | None  # ``kubernetes.custom_fields``: the collector's own mapping, as the presets take it


def pod_fields(pod: Obj, custom_fields: Custom = None) -> dict[str, Any]:
    """The model-aware fields of a pod, by the same presets and ``custom_fields`` as log documents."""
    return presets.fields_from_pod(pod, custom_fields=custom_fields)


def component_of(pod: Obj, custom_fields: Custom = None) -> str:
    """The pod's component; KServe-less pods without one count as the predictor (they serve the model)."""
    return str(pod_fields(pod, custom_fields).get(m.F_COMPONENT) or "predictor")


def revision_of(pod: Obj, custom_fields: Custom = None) -> str:
    """What distinguishes one rollout of a component from the next, for telling old pods from new ones.

    The Knative revision name when serverless; else Hopsworks' revision label; else the ReplicaSet's
    ``pod-template-hash`` (a raw Deployment); else the model version; else empty (a single group).
    """
    labels = presets.pod_labels(pod)
    return (labels.get(presets.KNATIVE_REVISION) or labels.get("serving.hops.works/revision")
            or labels.get("pod-template-hash") or str(pod_fields(pod, custom_fields).get(m.F_MODEL_VERSION) or ""))


def created_ns(obj: Obj) -> int:
    return time_ns(meta(obj).get("creationTimestamp")) or 0


def started_ns(pod: Obj) -> int | None:
    return time_ns(mapping(pod.get("status")).get("startTime"))


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Event:
    """One Kubernetes Event, whatever API group it was read from."""

    reason: str
    message: str
    type: str  # Normal | Warning
    kind: str  # involved object's kind
    name: str  # involved object's name
    uid: str
    container: str | None  # from fieldPath spec.containers{name}
    time: str | None
    time_ns: int
    count: int
    source: str
    first_ns: int = 0  # the first occurrence of a repeated event (``count`` > 1); 0 when not given

    def about(self, obj: Obj) -> bool:
        """The event is about this object (by uid when both have one, else by name)."""
        uid = str(meta(obj).get("uid") or "")
        return self.uid == uid if (self.uid and uid) else self.name == name_of(obj)


def read_event(obj: Obj) -> Event:
    """An :class:`Event` from a core/v1 or events.k8s.io/v1 Event object."""
    involved = mapping(obj.get("involvedObject")) or mapping(obj.get("regarding"))
    series = mapping(obj.get("series"))
    count = as_int(obj.get("count")) or as_int(series.get("count")) or as_int(obj.get("deprecatedCount")) or 1
    source = (mapping(obj.get("source")).get("component") or obj.get("reportingController")
              or obj.get("reportingComponent") or "")
    match = _FIELD_PATH_CONTAINER.match(str(involved.get("fieldPath") or ""))
    when = presets.event_time(obj)
    return Event(reason=str(obj.get("reason") or ""), message=str(obj.get("message") or obj.get("note") or ""),
                 type=str(obj.get("type") or "Normal"), kind=str(involved.get("kind") or ""),
                 name=str(involved.get("name") or ""), uid=str(involved.get("uid") or ""),
                 container=match["name"] if match else None, time=when, time_ns=time_ns(when) or 0,
                 count=count, source=str(source),
                 first_ns=time_ns(obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp")) or 0)


def read_events(objs: Iterable[Obj]) -> list[Event]:
    """Every event, oldest first (ties keep their input order)."""
    return sorted((read_event(o) for o in objs if isinstance(o, Mapping)), key=lambda e: e.time_ns)


def events_about(events: Sequence[Event], obj: Obj) -> list[Event]:
    return [e for e in events if e.about(obj)]


# -- InferenceService ------------------------------------------------------------------------------
def isvc_condition(isvc: Obj | None, kind: str) -> Obj | None:
    if not isvc:
        return None
    for cond in items(mapping(isvc.get("status")).get("conditions")):
        if cond.get("type") == kind:
            return cond
    return None


def isvc_component_status(isvc: Obj | None, component: str) -> Obj:
    return mapping(mapping(mapping(isvc or {}).get("status")).get("components")).get(component) or {}


def isvc_spec_components(isvc: Obj | None) -> list[str]:
    spec = mapping(mapping(isvc or {}).get("spec"))
    return [c for c in presets.COMPONENTS if isinstance(spec.get(c), Mapping)]


def one_line(text: str, limit: int = 300) -> str:
    """Text squeezed onto one line (whitespace runs become one space), cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
