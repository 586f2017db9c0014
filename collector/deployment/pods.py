"""One pod's progress along the start sequence: which step it is at, how that step goes, and why.

Why per pod: the root cause of a deployment's trouble is nearly always one pod's (the scheduler
refused it, its image is missing, its storage-initializer or model server died), and the pod's
own status says it more precisely than any aggregate. :mod:`collector.deployment.state` then picks
the pod that speaks for the deployment. Each pod walks the steps of seed 001, read from what the
kubelet and the scheduler report; the first step not yet done is the pod's condition:

=============  =========================================================================================
SCHEDULED      ``PodScheduled``. ``False`` when the scheduler said ``Unschedulable`` / ``SchedulerError``
               (or a ``FailedScheduling`` event says so); ``True`` once bound, while the kubelet has not
               reported anything else yet.
INITIALIZED    init containers (KServe's ``storage-initializer``), image pulls, volume mounts.
               ``False``: an init container exited non-zero or crash-loops, an image cannot be pulled
               (``ErrImagePull``, ``ImagePullBackOff``, ``InvalidImageName``...), the container
               config is wrong (``CreateContainerConfigError``: a missing secret/config map), a
               volume cannot be mounted (``FailedMount``). ``True``: init done and every image
               pulled, no container running yet.
STARTED        the model server (and transformer script) process. ``False``: a container ended
               badly (``OOMKilled``, a non-zero exit, killed by its liveness probe) and crash-loops
               or is not ready again after restarting; ``Unknown``: running, startup probe
               pending (``started: false``); ``True``: running and started, readiness pending.
READY          readiness probes, then readiness gates (connectivity). ``Unknown`` while a
               readiness probe fails on a container that keeps running, or gates are pending;
               ``True`` when the pod is Ready. The InferenceService's ingress and route are added
               on top by the state module.
=============  =========================================================================================

Reasons are one line, built from the root cause: the scheduler's text without its preemption
tail, the registry's error from the kubelet's ``Failed`` event rather than the bland
``Back-off pulling image``, the OOM kill with the container's memory limit, a crash with the last
line the container printed (its termination message, or the lines the caller passed in
``last_logs``, keyed ``"<pod>/<container>"`` or ``"<container>"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from collector.deployment.model import Condition, ConditionStatus, ConditionType, Failure
from collector.deployment.objects import (
    Custom,
    Event,
    Obj,
    app_container_names,
    as_int,
    component_of,
    condition_true,
    container_spec,
    container_statuses,
    created_ns,
    events_about,
    mapping,
    memory_limit,
    meta,
    name_of,
    one_line,
    pod_condition,
    revision_of,
    state_of,
    time_ns,
)

IMAGE_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                          "RegistryUnavailable", "ImageInspectError", "SignatureValidationFailed"})
CONFIG_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "PreCreateHookError"})
START_ERRORS = frozenset({"CrashLoopBackOff", "RunContainerError", "StartError", "PostStartHookError"})
CREATING = frozenset({"ContainerCreating", "PodInitializing"})
UNSCHEDULABLE = frozenset({"Unschedulable", "SchedulerError"})
# Warning events that record a failure of the deployment's objects (for the last failure and the history's FAILED).
FAILURE_EVENTS = frozenset({"FailedScheduling", "Failed", "BackOff", "FailedMount", "FailedCreate", "InternalError",
                            "OOMKilling", "Evicted", "FailedAttachVolume", "UpdateFailed"})
LastLogs = Mapping[str, Sequence[str]]

_S, _I, _ST, _R = ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY
_U, _F, _T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE


@dataclass(frozen=True, slots=True)
class PodProgress:
    """Where one pod is: its condition, the failure behind a ``False`` one, and whether it serves."""

    pod: str
    component: str
    revision: str
    created_ns: int
    condition: Condition
    failure: Failure | None = None
    ready: bool = False


# -- reasons ---------------------------------------------------------------------------------------
def scheduler_reason(message: str) -> str:
    """The scheduler's verdict without its ``preemption: ...`` tail or trailing dots, on one line."""
    head = message.split(" preemption:", 1)[0]
    return one_line(head).rstrip(". ")


def how_often(count: int) -> str:
    """``once``, ``3 times``: a count in words, for reasons and advice."""
    return "once" if count == 1 else f"{count} times"


def _last_lines(pod: Obj, container: str, terminated: Obj, last_logs: LastLogs | None, keep: int = 10) -> tuple[str, ...]:
    logs = last_logs or {}
    lines = logs.get(f"{name_of(pod)}/{container}") or logs.get(container)
    if not lines:
        lines = str(terminated.get("message") or "").splitlines()
    return tuple(line.rstrip() for line in lines if line.strip())[-keep:]


def _probe_events(events: Sequence[Event], probe: str, container: str, since_ns: int) -> list[Event]:
    prefix = f"{probe} probe failed"
    return [e for e in events if e.reason == "Unhealthy" and e.message.startswith(prefix)
            and e.container in (None, container) and e.time_ns >= since_ns]


def _pull_error(events: Sequence[Event], container: str, fallback: str) -> str:
    """The registry's own words: the newest kubelet ``Failed`` event that says why a pull failed."""
    for event in reversed(events):
        if (event.reason == "Failed" and event.container in (None, container)
                and event.message.startswith(("Failed to pull image", "Failed to inspect image"))):
            return event.message
    return fallback


# -- failures --------------------------------------------------------------------------------------
def _waiting_failure(pod: Obj, status: Obj, events: Sequence[Event], component: str) -> Failure | None:
    """An image or container-config error of a container that waits (init or app)."""
    kind, details = state_of(status)
    reason = str(details.get("reason") or "")
    if kind != "waiting" or reason not in IMAGE_ERRORS | CONFIG_ERRORS:
        return None
    container = str(status.get("name") or "")
    message = str(details.get("message") or reason)
    if reason in IMAGE_ERRORS:
        message = _pull_error(events, container, message)
    image = str((container_spec(pod, container) or {}).get("image") or status.get("image") or "") or None
    return Failure(reason=reason, message=message, time=_newest_time(events, container), component=component,
                   pod=name_of(pod), container=container, restarts=as_int(status.get("restartCount")), image=image)


def _newest_time(events: Sequence[Event], container: str) -> str | None:
    for event in reversed(events):
        if event.type == "Warning" and event.container in (None, container):
            return event.time
    return None


def crash_failure(pod: Obj, status: Obj, events: Sequence[Event], component: str,
                  last_logs: LastLogs | None, *, current_only: bool = True) -> Failure | None:
    """How a container ended badly, if it did: OOM kill, liveness kill, non-zero exit, a start error.

    With ``current_only`` it counts only while the container still suffers from it (crash-looping,
    terminated, or running again but not ready); otherwise any recorded bad end (for the last failure).
    """
    container = str(status.get("name") or "")
    kind, details = state_of(status)
    last_kind, last = state_of(status, "lastState")
    restarts = as_int(status.get("restartCount")) or 0
    waiting_reason = str(details.get("reason") or "") if kind == "waiting" else ""
    terminated = details if kind == "terminated" else (last if last_kind == "terminated" else {})
    exit_code = as_int(terminated.get("exitCode"))
    bad_end = bool(terminated) and (exit_code != 0 or restarts > 0 or waiting_reason in START_ERRORS)
    suffering = (waiting_reason in START_ERRORS or (kind == "terminated" and exit_code != 0)
                 or (kind == "running" and not status.get("ready") and bad_end))
    if current_only and not suffering:
        return None
    if not bad_end and waiting_reason not in START_ERRORS:
        return None
    base = Failure(reason=waiting_reason or "Error", component=component, pod=name_of(pod), container=container,
                   restarts=restarts, memory_limit=memory_limit(pod, container), exit_code=exit_code,
                   time=str(terminated.get("finishedAt") or "") or _newest_time(events, container))
    if not terminated:  # RunContainerError & co: never ran
        return replace(base, message=str(details.get("message") or waiting_reason))
    term_reason = str(terminated.get("reason") or "Error")
    lines = _last_lines(pod, container, terminated, last_logs)
    since = time_ns(terminated.get("startedAt")) or 0
    killed_by_liveness = any(e.reason == "Killing" and "liveness probe" in e.message and e.container in (None, container)
                             and e.time_ns >= since for e in events)
    liveness = _probe_events(events, "Liveness", container, since)
    if term_reason != "OOMKilled" and (killed_by_liveness or liveness):
        message = liveness[-1].message if liveness else "failed liveness probe"
        return replace(base, reason="LivenessProbeFailed", message=message, last_lines=lines)
    message = "\n".join(lines) or str(terminated.get("message") or "")
    return replace(base, reason=term_reason, message=message, last_lines=lines)


def failure_reason(failure: Failure) -> str:
    """The one-line reason a failure gives its condition."""
    who = failure.container or failure.pod or "deployment"
    restarted = f", restarted {how_often(failure.restarts)}" if failure.restarts else ""
    if failure.reason == "OOMKilled":
        limit = f", memory limit {failure.memory_limit}" if failure.memory_limit else ", no memory limit"
        return f"{who} was OOMKilled (exit {failure.exit_code if failure.exit_code is not None else 137}{limit}){restarted}"
    if failure.reason == "LivenessProbeFailed":
        return one_line(f"{who} failed its liveness probe{restarted}: {failure.message}")
    if failure.reason in IMAGE_ERRORS | CONFIG_ERRORS | START_ERRORS | {"FailedMount"}:
        return one_line(f"{who}: {failure.message}")
    if failure.reason in UNSCHEDULABLE | {"FailedScheduling"}:
        return scheduler_reason(failure.message)
    if failure.exit_code is not None:
        said = failure.last_lines[-1] if failure.last_lines else ""
        return one_line(f"{who} exited with code {failure.exit_code} ({failure.reason}){restarted}"
                        + (f": {said}" if said else ""))
    return one_line(f"{who}: {failure.message or failure.reason}")


# -- the steps -------------------------------------------------------------------------------------
def _scheduling(pod: Obj, events: Sequence[Event], component: str) -> tuple[Condition, Failure | None] | None:
    cond = pod_condition(pod, "PodScheduled")
    if condition_true(cond):
        return None
    refused = [e for e in events if e.reason == "FailedScheduling"]
    if (cond is not None and cond.get("reason") in UNSCHEDULABLE) or refused:
        message = str((cond or {}).get("message") or (refused[-1].message if refused else ""))
        failure = Failure(reason=str((cond or {}).get("reason") or "FailedScheduling"), message=message,
                          time=str((cond or {}).get("lastTransitionTime") or "") or (refused[-1].time if refused else None),
                          component=component, pod=name_of(pod))
        return Condition(_S, _F, failure_reason(failure)), failure
    return Condition(_S, _U, "Waiting to be scheduled"), None


def _initialization(pod: Obj, events: Sequence[Event], component: str,
                    last_logs: LastLogs | None) -> tuple[Condition, Failure | None] | None:
    init_statuses, app_statuses = container_statuses(pod, init=True), container_statuses(pod)
    initialized = pod_condition(pod, "Initialized")
    if initialized is None and not init_statuses and not app_statuses:
        node = mapping(pod.get("spec")).get("nodeName")
        return Condition(_S, _T, f"Scheduled on node {node}" if node else "Scheduled"), None
    for status in init_statuses:
        failure = _waiting_failure(pod, status, events, component) or crash_failure(pod, status, events, component, last_logs)
        if failure is not None:
            if failure.exit_code is not None:
                said = failure.last_lines[-1] if failure.last_lines else ""
                reason = one_line(f"{failure.container} failed (exit {failure.exit_code})" + (f": {said}" if said else ""))
            else:
                reason = failure_reason(failure)
            return Condition(_I, _F, reason), failure
    if not condition_true(initialized):
        running = [str(s.get("name")) for s in init_statuses if state_of(s)[0] == "running"]
        pulling = _pulling(events)
        doing = f"{', '.join(running)} running" if running else (pulling or "running init containers")
        return Condition(_I, _U, one_line(f"Initializing: {doing}")), None
    for status in app_statuses:
        failure = _waiting_failure(pod, status, events, component)
        if failure is not None:
            return Condition(_I, _F, failure_reason(failure)), failure
    waiting = {str(s.get("name")): str(state_of(s)[1].get("reason") or "") for s in app_statuses if state_of(s)[0] == "waiting"}
    unreported = [c for c in app_container_names(pod) if c not in {str(s.get("name")) for s in app_statuses}]
    creating = [c for c, reason in waiting.items() if reason in CREATING]
    crashed = any(crash_failure(pod, s, events, component, last_logs) for s in app_statuses)
    if crashed or (not creating and not unreported):
        return None  # a crash of one container says more than a sibling still being created
    pulls = [e.time_ns for e in events if e.reason in ("Pulling", "Pulled")]
    mounts = [e for e in events if e.reason == "FailedMount" and e.type == "Warning" and e.time_ns > max(pulls, default=0)]
    if mounts:  # volumes are mounted before images are pulled: a pull after it means the mount succeeded since
        failure = Failure(reason="FailedMount", message=mounts[-1].message, time=mounts[-1].time,
                          component=component, pod=name_of(pod))
        return Condition(_I, _F, one_line(f"volume not mounted: {mounts[-1].message}")), failure
    pulled = {e.container for e in events if e.reason == "Pulled"}
    not_pulled = [c for c in creating if waiting[c] == "ContainerCreating" and c not in pulled]
    if not_pulled:
        pulling = _pulling(events)
        return Condition(_I, _U, one_line(f"Initializing: {pulling or 'creating ' + ', '.join(not_pulled)}")), None
    return Condition(_I, _T, "Initialized: images pulled, volumes mounted"), None


def _pulling(events: Sequence[Event]) -> str | None:
    """The kubelet's ``Pulling image "..."`` for an image not pulled yet, lower-cased for a reason."""
    pulled = {e.container for e in events if e.reason == "Pulled"}
    for event in reversed(events):
        if event.reason == "Pulling" and event.container not in pulled:
            return event.message[:1].lower() + event.message[1:]
    return None


def _start(pod: Obj, events: Sequence[Event], component: str, last_logs: LastLogs | None,
           now_ns: int) -> tuple[Condition, Failure | None] | None:
    statuses = container_statuses(pod)
    failures = [f for f in (crash_failure(pod, s, events, component, last_logs) for s in statuses) if f]
    if failures:
        failure = max(failures, key=lambda f: (f.container == "kserve-container", f.restarts or 0))
        return Condition(_ST, _F, failure_reason(failure)), failure
    not_started = [s for s in statuses if state_of(s)[0] == "running" and s.get("started") is False]
    if not_started:
        status = not_started[0]
        container = str(status.get("name"))
        since = time_ns(state_of(status)[1].get("startedAt")) or 0
        probes = _probe_events(events, "Startup", container, since)
        age = f" for {_duration(now_ns - since)}" if since and now_ns > since else ""
        reason = one_line(probes[-1].message) if probes else f"Starting: {container} running{age}, startup probe pending"
        return Condition(_ST, _U, reason), None
    if condition_true(pod_condition(pod, "ContainersReady")) or all(s.get("ready") for s in statuses):
        return None
    for status in statuses:
        if status.get("ready"):
            continue
        container = str(status.get("name"))
        since = time_ns(state_of(status)[1].get("startedAt")) or 0
        probes = _probe_events(events, "Readiness", container, since) or _probe_events(events, "Liveness", container, since)
        if probes:
            return Condition(_R, _U, one_line(f"{container}: {probes[-1].message}")), None
    names = [str(s.get("name")) for s in statuses if not s.get("ready")]
    return Condition(_ST, _T, f"Started: waiting for {', '.join(names)} to be ready"), None


def _duration(ns: int) -> str:
    seconds = ns // 1_000_000_000
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


def pod_progress(pod: Obj, events: Sequence[Event], *, now_ns: int, last_logs: LastLogs | None = None,
                 custom_fields: Custom = None) -> PodProgress:
    """The condition of one (live, not terminating) pod; ``events`` may hold any events, the pod's are picked."""
    own = events_about(events, pod)
    component = component_of(pod, custom_fields)
    step = (_scheduling(pod, own, component) or _initialization(pod, own, component, last_logs)
            or _start(pod, own, component, last_logs, now_ns))
    ready = pod_condition(pod, "Ready")
    failure = None
    if step is not None:
        condition, failure = step
    elif condition_true(ready):
        condition = Condition(_R, _T, "Deployment is ready")
    else:
        message = str((ready or {}).get("message") or "waiting for readiness gates")
        condition = Condition(_R, _U, one_line(f"Setting up connectivity: {message}"))
    return PodProgress(pod=name_of(pod), component=component, revision=revision_of(pod, custom_fields),
                       created_ns=created_ns(pod),
                       condition=condition, failure=failure, ready=step is None and condition_true(ready))


def past_failures(pod: Obj, events: Sequence[Event], last_logs: LastLogs | None = None,
                  custom_fields: Custom = None) -> list[Failure]:
    """Every bad end this pod's containers have on record (current or survived), and an eviction."""
    own = events_about(events, pod)
    component = component_of(pod, custom_fields)
    found = []
    for status in [*container_statuses(pod, init=True), *container_statuses(pod)]:
        failure = _waiting_failure(pod, status, own, component) or crash_failure(
            pod, status, own, component, last_logs, current_only=False)
        if failure is not None:
            found.append(failure)
    pod_status = mapping(pod.get("status"))
    if pod_status.get("phase") == "Failed":
        found.append(Failure(reason=str(pod_status.get("reason") or "Failed"), message=str(pod_status.get("message") or ""),
                             time=str(meta(pod).get("deletionTimestamp") or "") or None, component=component, pod=name_of(pod)))
    return found
