"""The shapes of a deployment's state and history: frozen data, with their stable JSON forms.

Why a module of its own: the state function, the history folding, the renderers, the CLI and the
notebook API all speak these types; keeping them free of logic lets each of those import them
without importing the others. Every ``as_json`` returns plain ``dict``/``list``/``str``/``int``/
``None`` values with a fixed key order, so ``--output json`` is stable: a key is always present
(``null`` when unknown), never added or dropped by circumstance; every time is :func:`json_time`'s
one form, ``2026-11-24T09:19:58.000000000Z``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from collector.transforms.cri import parse_timestamp


def json_time(text: str | None) -> str | None:
    """A time as every JSON output writes it: RFC 3339 UTC, nine fraction digits, ``Z`` (as the documents' own
    ``timestamp``); Kubernetes writes whole seconds, micro seconds or offsets. Unreadable text is kept as it is."""
    if not text:
        return None
    parsed = parse_timestamp(str(text))
    return parsed[1] if parsed else str(text)


class Status(StrEnum):
    """The deployment's high-level status (seed 001, first table)."""

    CREATED = "CREATED"  # never started
    STARTING = "STARTING"
    RUNNING = "RUNNING"  # ready, instances running
    IDLE = "IDLE"  # ready, scaled to zero: the first requests pay a cold start
    FAILED = "FAILED"  # the condition says why
    UPDATING = "UPDATING"  # a new revision rolls out while the previous one serves
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


class ConditionType(StrEnum):
    """The step a deployment is at (seed 001, second table), in the order a start walks them."""

    STOPPED = "STOPPED"
    SCHEDULED = "SCHEDULED"
    INITIALIZED = "INITIALIZED"
    STARTED = "STARTED"
    READY = "READY"


class ConditionStatus(StrEnum):
    """The progress of that step: ``Unknown`` in progress, ``False`` failed, ``True`` done."""

    UNKNOWN = "Unknown"
    FALSE = "False"
    TRUE = "True"


# The start sequence, in order (the stop sequence is READY/any step -> STOPPED Unknown -> STOPPED True).
START_SEQUENCE: tuple[ConditionType, ...] = (
    ConditionType.STOPPED, ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED,
    ConditionType.READY,
)
_PROGRESS = {ConditionStatus.FALSE: 0, ConditionStatus.UNKNOWN: 1, ConditionStatus.TRUE: 2}


@dataclass(frozen=True, slots=True)
class Condition:
    """One step's condition: type, status and a one-line reason built from the root cause."""

    type: ConditionType
    status: ConditionStatus
    reason: str

    @property
    def progress(self) -> tuple[int, int]:
        """Sort key along the start sequence: later steps are further, and within a step True > Unknown > False."""
        return START_SEQUENCE.index(self.type), _PROGRESS[self.status]

    def as_json(self) -> dict[str, Any]:
        return {"type": str(self.type), "status": str(self.status), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Failure:
    """The last thing that went wrong: a container's end, a waiting error, the scheduler's refusal, an event.

    ``restarts`` is the container's restart count when the failure is a container's; ``memory_limit``
    its ``resources.limits.memory`` from the pod spec (as written there, e.g. ``2Gi``);
    ``last_lines`` the last lines it printed (termination message or the logs the caller passed).
    """

    reason: str
    message: str = ""
    time: str | None = None
    component: str | None = None
    pod: str | None = None
    container: str | None = None
    exit_code: int | None = None
    restarts: int | None = None
    memory_limit: str | None = None
    last_lines: tuple[str, ...] = ()
    image: str | None = None  # the container's image as the pod spec names it (for the advice; not in JSON)

    def as_json(self) -> dict[str, Any]:
        return {"time": json_time(self.time), "component": self.component, "pod": self.pod, "container": self.container,
                "reason": self.reason, "exit_code": self.exit_code, "restarts": self.restarts,
                "memory_limit": self.memory_limit, "message": self.message, "last_lines": list(self.last_lines)}


@dataclass(frozen=True, slots=True)
class ComponentState:
    """Instances of one component (predictor, transformer, explainer): ready pods, wanted pods, readiness."""

    name: str
    running: int
    desired: int
    ready: bool

    def as_json(self) -> dict[str, Any]:
        return {"running": self.running, "desired": self.desired, "ready": self.ready}


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """What ``servelog status`` answers. ``as_json`` has exactly the keys documented in the README.

    ``next_step`` is the one-line advice the human output ends with; ``found`` is False when
    nothing at all was seen of the deployment (no InferenceService, pod, workload or event), which
    the caller reports as "no such deployment" rather than as a state.
    """

    serving_name: str
    namespace: str
    status: Status
    condition: Condition
    components: tuple[ComponentState, ...] = ()
    model_name: str | None = None
    model_version: str | None = None
    last_failure: Failure | None = None
    next_step: str = ""
    found: bool = True

    def component(self, name: str) -> ComponentState | None:
        return next((c for c in self.components if c.name == name), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "serving_name": self.serving_name,
            "namespace": self.namespace,
            "status": str(self.status),
            "condition": self.condition.as_json(),
            "components": {c.name: c.as_json() for c in self.components},
            "model_name": self.model_name,
            "model_version": self.model_version,
            "last_failure": self.last_failure.as_json() if self.last_failure else None,
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a deployment's life: a happening, or a run of identical ones folded (``count`` > 1).

    ``what`` is the status or reason column: the condition as ``Type=Status`` for condition
    documents (``Ready=False``), else the reason (``BackOff``, ``OOMKilled``, ``ImagePullBackOff``).
    ``time`` is the newest occurrence, ``first_time`` the oldest.
    """

    time: str
    kind: str
    what: str
    message: str = ""
    count: int = 1
    first_time: str | None = None
    model_version: str | None = None
    component: str | None = None
    container: str | None = None
    pod: str | None = None
    type: str | None = None  # Normal | Warning

    def as_json(self) -> dict[str, Any]:
        return {"time": json_time(self.time), "first_time": json_time(self.first_time or self.time),
                "model_version": self.model_version,
                "component": self.component, "container": self.container, "pod": self.pod, "kind": self.kind,
                "type": self.type, "what": self.what, "message": self.message, "count": self.count}


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the deployment's status, as Merlin's History view lists them."""

    time: str
    status: Status
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"time": json_time(self.time), "status": str(self.status), "message": self.message}


@dataclass(frozen=True, slots=True)
class History:
    """What ``servelog history`` answers: the life (newest first) and the status transitions (newest first)."""

    serving_name: str
    namespace: str
    entries: tuple[HistoryEntry, ...] = field(default_factory=tuple)
    transitions: tuple[Transition, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {"serving_name": self.serving_name, "namespace": self.namespace,
                "transitions": [t.as_json() for t in self.transitions],
                "entries": [e.as_json() for e in self.entries]}
