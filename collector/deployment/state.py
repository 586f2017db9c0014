"""A deployment's state, computed purely from (InferenceService or None, pods, recent events, now).

The semantics are seed 001's two tables (Hopsworks' deployment states). Its two transition
diagrams are images the seed's text does not carry; reconstructed from the tables, they are:

- **starting**: ``STOPPED True`` → ``SCHEDULED Unknown`` → ``SCHEDULED True`` → ``INITIALIZED
  Unknown`` → ``INITIALIZED True`` → ``STARTED Unknown`` → ``STARTED True`` → ``READY Unknown`` →
  ``READY True``; from each ``Unknown`` a step may instead end ``False`` (failed to be scheduled,
  to initialise, to start, to set up connectivity), which is where the deployment stays until it
  is changed or stopped.
- **stopping**: from any step of a started deployment → ``STOPPED Unknown`` (instances are still
  terminating) → ``STOPPED True`` (no instance, no resources).

What each step means in pod terms is in :mod:`collector.deployment.pods`; what the
InferenceService adds (failures before any pod exists, ingress and routes after the pods are
ready) in :mod:`collector.deployment.isvc`. The status follows from the intent and the condition:

============  ============================================================================================
STOPPED       stop asked (``serving.kserve.io/stop``, ``Stopped`` True, the InferenceService being
              deleted, every raw Deployment at 0 replicas, or no owner left) and no pod left
STOPPING      stop asked and pods still there (``STOPPED Unknown``)
CREATED       stopped and never started (no revision was ever created); ``STOPPED True``
FAILED        the condition is ``False`` and no older revision serves
IDLE          the InferenceService is Ready and a component has no pod at all, its minimum being 0 and no
              newer revision pending: really scaled to zero (``READY True``)
RUNNING       ``READY True`` with instances, and no rollout in progress
UPDATING      a new revision rolls out while an older one serves (Knative's latest created revision is
              not the latest ready one, or pods of an older revision still serve); blocked when its
              condition is ``False`` (the new revision's pods cannot be scheduled, pull their image,
              start...), or when the new revision has no pod (not yet, or scaled back to zero by
              Knative): the reason is the scheduler's word on its pods, else the InferenceService's
              condition on that revision
STARTING      any other step in progress
============  ============================================================================================

Which pods speak: per component, the pods of its newest revision (Knative's latest created
revision, else the newest group by revision label / ``pod-template-hash``); terminating pods and
finished pods (evicted, completed) never do, though their failures count for ``last_failure``. Of
those pods, a failed one speaks first (the one failing earliest in the sequence), else the least
advanced one; but a component with some of them ready is serving (``READY True``, the reason says
how many are ready and what holds the others: a scale-up, one crash-looping replica).

Without the KServe CRD (``isvc`` None: Hopsworks' and Merlin's own deployments, raw Deployments)
the same is read from pods and events alone, with ``deployments`` (apps/v1 objects, if the caller
has them) for the desired replicas; only IDLE needs the InferenceService (nothing else tells a
scaled-to-zero model from a stopped one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from collector import model as m
from collector.deployment import hints
from collector.deployment import isvc as kserve
from collector.deployment.model import (
    ComponentState,
    Condition,
    ConditionStatus,
    ConditionType,
    DeploymentState,
    Failure,
    Status,
)
from collector.deployment.objects import (
    Custom,
    Event,
    Obj,
    as_int,
    component_of,
    created_ns,
    is_ready,
    is_terminating,
    isvc_component_status,
    isvc_spec_components,
    mapping,
    meta,
    name_of,
    one_line,
    pod_fields,
    read_events,
    revision_of,
    time_ns,
)
from collector.deployment.oom import oom_kills
from collector.deployment.pods import FAILURE_EVENTS, LastLogs, PodProgress, failure_reason, past_failures, pod_progress
from collector.kube import presets

_STOPPED, _READY = ConditionType.STOPPED, ConditionType.READY
_U, _F, _T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE
COMPONENT_ORDER = ("predictor", "transformer", "explainer")


@dataclass(frozen=True, slots=True)
class _Component:
    """One component's pods, split into the revision rolling out (target) and older ones still serving."""

    name: str
    target: tuple[Obj, ...]
    serving_old: tuple[Obj, ...]
    live: tuple[Obj, ...]
    revision: str = ""  # the revision rolling out (Knative's latest created), when known


def _is_live(pod: Obj) -> bool:
    return not is_terminating(pod) and mapping(pod.get("status")).get("phase") not in ("Failed", "Succeeded")


def _generation(revision: str) -> int:
    return int(revision.rsplit("-", 1)[-1]) if revision.rsplit("-", 1)[-1].isdigit() else -1


def _split(name: str, live: list[Obj], latest_created: str, custom_fields: Custom) -> _Component:
    groups: dict[str, list[Obj]] = {}
    for pod in live:
        groups.setdefault(revision_of(pod, custom_fields), []).append(pod)
    knative = any(presets.KNATIVE_REVISION in presets.pod_labels(p) for p in live)
    if latest_created and (latest_created in groups or knative or not live):
        target_key = latest_created  # Knative's newest revision, even before its first pod exists
    elif groups:
        target_key = max(groups, key=lambda r: (_generation(r), min(created_ns(p) for p in groups[r])))
    else:
        target_key = ""
    target = tuple(groups.get(target_key, ()))
    old = tuple(p for r, pods in groups.items() if r != target_key for p in pods if is_ready(p))
    return _Component(name=name, target=target, serving_old=old, live=tuple(live), revision=target_key)


def _order(names: set[str]) -> list[str]:
    return [c for c in COMPONENT_ORDER if c in names] + sorted(names - set(COMPONENT_ORDER))


def _deployment_component(deployment: Obj, custom_fields: Custom) -> str:
    return component_of(presets.template_as_pod(deployment), custom_fields)


def _worst(progresses: Sequence[PodProgress]) -> PodProgress:
    failed = [p for p in progresses if p.condition.status is _F]
    if failed:
        return min(failed, key=lambda p: (p.condition.progress, -(p.failure.restarts or 0) if p.failure else 0))
    return min(progresses, key=lambda p: (p.condition.progress, -p.created_ns))


def _stopped(isvc: Obj | None, pods: Sequence[Obj], events: Sequence[Event]) -> tuple[Status, Condition]:
    if pods:
        plural = "s" if len(pods) != 1 else ""
        return Status.STOPPING, Condition(_STOPPED, _U, f"Stopping: {len(pods)} instance{plural} still terminating")
    if isvc is not None and kserve.never_started(isvc) and not events:
        return Status.CREATED, Condition(_STOPPED, _T, "Deployment has never been started")
    return Status.STOPPED, Condition(_STOPPED, _T, "Deployment is stopped: no instance is running")


def _identity(isvc: Obj | None, pods: Sequence[Obj], deployments: Sequence[Obj], custom_fields: Custom) -> dict[str, str]:
    """Model fields from the newest predictor pod, else the InferenceService, else a Deployment's template, by the
    presets and ``custom_fields`` that give the log lines theirs."""
    ordered = sorted(pods, key=lambda p: (component_of(p, custom_fields) == "predictor", _is_live(p), created_ns(p)),
                     reverse=True)
    views = [*ordered, *([presets.isvc_as_pod(isvc, component="predictor")] if isvc is not None else []),
             *(presets.template_as_pod(d) for d in deployments)]
    candidates = [pod_fields(view, custom_fields) for view in views]
    found: dict[str, str] = {}
    for fields in candidates:
        for key in (m.F_SERVING, m.F_MODEL_NAME, m.F_MODEL_VERSION):
            if fields.get(key) and key not in found:
                found[key] = str(fields[key])
    return found


def _last_failure(chosen: Failure | None, pods: Sequence[Obj], events: Sequence[Event], isvc: Obj | None,
                  last_logs: LastLogs | None, custom_fields: Custom) -> Failure | None:
    if chosen is not None:
        return chosen
    seen: list[Failure] = [f for pod in pods for f in past_failures(pod, events, last_logs, custom_fields)]
    info = mapping(mapping(mapping((isvc or {}).get("status")).get("modelStatus")).get("lastFailureInfo"))
    if info:
        seen.append(Failure(reason=str(info.get("reason") or "ModelLoadFailed"), message=str(info.get("message") or ""),
                            time=str(info.get("time") or "") or None, component="predictor",
                            pod=str(info.get("location") or "") or None, exit_code=as_int(info.get("exitCode"))))
    for event in events:
        if event.type == "Warning" and event.reason in FAILURE_EVENTS:
            seen.append(Failure(reason=event.reason, message=event.message, time=event.time,
                                pod=event.name if event.kind == "Pod" else None, container=event.container))
    return max(seen, key=lambda f: time_ns(f.time) or 0) if seen else None


def _speak(components: Sequence[_Component], progresses: Sequence[PodProgress], isvc: Obj | None,
           events: Sequence[Event]) -> tuple[Condition, Failure | None, bool]:
    """(condition, the failure behind it, idle): each component's speaker, then the one that speaks for all."""
    speaking: list[tuple[Condition, Failure | None]] = []
    idle = False
    for comp in components:
        mine = [p for p in progresses if p.component == comp.name]
        serving = [p for p in mine if p.ready]
        if serving and len(serving) < len(mine):
            worst = _worst([p for p in mine if not p.ready])
            speaking.append((Condition(_READY, _T, one_line(
                f"Deployment is ready: {len(serving)}/{len(mine)} {comp.name} instances ready; {worst.pod}: "
                f"{worst.condition.type} {worst.condition.status}: {worst.condition.reason}")), None))
        elif mine:
            worst = _worst(mine)
            condition = worst.condition
            if condition.type is _READY and condition.status is _U and kserve.gave_up(isvc, comp.name):
                condition = Condition(_READY, _F, condition.reason)
            speaking.append((condition, worst.failure))
        elif comp.live or _rollout_pending(isvc, comp.name):
            speaking.append(_new_revision_without_pods(comp, isvc, events))
        elif isvc is not None and kserve.is_ready(isvc) and kserve.desired_replicas(isvc, comp.name)[0] == 0:
            idle = True
            speaking.append((Condition(_READY, _T, "Deployment is ready, but idle: scaled to zero, "
                                                   "the first requests will wait for a cold start"), None))
        elif isvc is not None:
            failed = kserve.failed_condition(isvc, comp.name, events)
            speaking.append(failed or (kserve.pending_condition(isvc, comp.name), None))
        else:
            speaking.append(_no_pod_yet(comp.name, events))
    failed_steps = [s for s in speaking if s[0].status is _F]
    condition, failure = min(failed_steps or speaking, key=lambda s: s[0].progress)
    if condition.type is _READY and condition.status is _T and isvc is not None and not idle:
        condition = kserve.connectivity(isvc, [c.name for c in components], events) or condition
    return condition, failure, idle


def _rollout_pending(isvc: Obj | None, component: str) -> bool:
    """Knative's latest created revision of the component is not its latest ready one."""
    status = isvc_component_status(isvc, component)
    created, ready = status.get("latestCreatedRevision"), status.get("latestReadyRevision")
    return bool(created and ready and created != ready)


def _new_revision_without_pods(comp: _Component, isvc: Obj | None,
                               events: Sequence[Event]) -> tuple[Condition, Failure | None]:
    """A component whose new revision has no pod (not yet, or scaled back to zero) while an older one may serve.

    The root cause is the scheduler's word about the new revision's (gone) pods, else the InferenceService's
    condition on that revision, else it is waiting for its first instance.
    """
    revision = comp.revision
    refused = [e for e in events if e.reason == "FailedScheduling" and revision and e.name.startswith(revision + "-")]
    if refused:
        event = refused[-1]
        failure = Failure(reason="FailedScheduling", message=event.message, time=event.time, component=comp.name,
                          pod=event.name)
        return Condition(ConditionType.SCHEDULED, _F, failure_reason(failure)), failure
    failed = kserve.failed_condition(isvc, comp.name, events) if isvc is not None else None
    if failed is not None:
        return failed
    which = f"the new revision {revision}" if revision else "the new revision"
    return Condition(ConditionType.SCHEDULED, _U, f"Waiting to be scheduled: {which} has no instance yet"), None


def _no_pod_yet(component: str, events: Sequence[Event]) -> tuple[Condition, Failure | None]:
    """A KServe-less component whose workload exists but has no pod: refused creation, or waiting."""
    refused = [e for e in events if e.reason in kserve.CREATE_FAILURES and e.type == "Warning"]
    if not refused:
        return Condition(ConditionType.SCHEDULED, _U, "Waiting to be scheduled"), None
    event = refused[-1]
    return (Condition(ConditionType.SCHEDULED, _F, event.message),
            Failure(reason=event.reason, message=event.message, time=event.time, component=component))


def _updating(components: Sequence[_Component], isvc: Obj | None) -> bool:
    """A newer revision rolls out while an older one serves."""
    if isvc is None:
        return any(c.serving_old for c in components)
    if any(c.serving_old for c in components) and not kserve.is_ready(isvc):
        return True
    for comp in components:
        status = isvc_component_status(isvc, comp.name)
        if status.get("latestReadyRevision") and status.get("latestReadyRevision") != status.get("latestCreatedRevision"):
            return True
    return False


def _status(condition: Condition, *, idle: bool, updating: bool, old_serving: bool) -> Status:
    if condition.status is _F:
        return Status.UPDATING if updating and old_serving else Status.FAILED  # a blocked rollout still serves
    if condition.type is _READY and condition.status is _T:
        return Status.UPDATING if updating else (Status.IDLE if idle else Status.RUNNING)
    return Status.UPDATING if updating else Status.STARTING


def _instances(comp: _Component, isvc: Obj | None, deployments: Sequence[Obj], custom_fields: Custom) -> ComponentState:
    """Running (ready pods, any revision) and desired instances of a component, and its readiness."""
    running = sum(1 for p in comp.live if is_ready(p))
    ready: bool | None = None
    if isvc is not None:
        minimum, maximum = kserve.desired_replicas(isvc, comp.name)
        desired = max(minimum, len(comp.target))
        desired = min(desired, maximum) if maximum else desired
        ready = kserve.component_ready(isvc, comp.name)
    else:
        own = [d for d in deployments if _deployment_component(d, custom_fields) == comp.name]
        scale = [as_int(mapping(meta(p).get("annotations")).get("autoscaling.knative.dev/min-scale")) or 0
                 for p in comp.target]
        desired = (sum(as_int(mapping(d.get("spec")).get("replicas")) or 0 for d in own) if own
                   else max([len(comp.target), *scale]))
    return ComponentState(comp.name, running, desired, ready if ready is not None else (running >= desired and running > 0))


def deployment_state(
    isvc: Obj | None,
    pods: Sequence[Obj],
    events: Sequence[Obj],
    *,
    now: datetime,
    serving_name: str | None = None,
    namespace: str | None = None,
    last_logs: LastLogs | None = None,
    deployments: Sequence[Obj] = (),
    custom_fields: Custom = None,
) -> DeploymentState:
    """The state of one deployment (the rules are in the module docstring).

    ``isvc`` is the InferenceService object or None (no CRD, or none of that name); ``pods`` the
    deployment's pods (any component, any revision, terminating ones included); ``events`` its
    recent events (core/v1 or events.k8s.io/v1; each is matched to a pod by uid or name, so
    unrelated ones are harmless); ``now`` an aware datetime (naive: UTC); ``last_logs`` the last lines of
    crashed containers, keyed ``"<pod>/<container>"`` or ``"<container>"``; ``deployments``
    apps/v1 Deployments of a KServe-less deployment, for its desired replicas and stop state;
    ``custom_fields`` the collector's ``kubernetes.custom_fields``, so the model name, version and
    component are the ones its log lines carry.
    """
    when = now if now.tzinfo is not None else now.replace(tzinfo=UTC)  # a naive ``now`` is taken as UTC
    now_ns = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    evs = read_events(events)
    identity = _identity(isvc, pods, deployments, custom_fields)
    component_of_pod = {id(p): component_of(p, custom_fields) for p in pods}
    live = [p for p in pods if _is_live(p)]
    raw_stopped = bool(deployments) and all(as_int(mapping(d.get("spec")).get("replicas")) == 0 for d in deployments)
    owner = isvc is not None or bool(deployments)
    names = (set(isvc_spec_components(isvc)) | set(component_of_pod.values())
             | {_deployment_component(d, custom_fields) for d in deployments})
    components = [_split(c, [p for p in live if component_of_pod[id(p)] == c],
                         str(isvc_component_status(isvc, c).get("latestCreatedRevision") or ""), custom_fields)
                  for c in _order(names or {"predictor"})]
    chosen: Failure | None = None
    if kserve.stop_requested(isvc) or is_terminating(isvc or {}) or raw_stopped or (not owner and not live):
        status, condition = _stopped(isvc, [p for p in pods if mapping(p.get("status")).get("phase")
                                            not in ("Failed", "Succeeded")], evs)
        instances = tuple(ComponentState(c.name, sum(1 for p in c.live if is_ready(p)), 0, False) for c in components)
    else:
        progresses = [pod_progress(p, evs, now_ns=now_ns, last_logs=last_logs, custom_fields=custom_fields)
                      for c in components for p in c.target]
        condition, failure, idle = _speak(components, progresses, isvc, evs)
        status = _status(condition, idle=idle, updating=_updating(components, isvc),
                         old_serving=any(c.serving_old for c in components))
        chosen = failure if condition.status is _F else None
        instances = tuple(_instances(c, isvc, deployments, custom_fields) for c in components)
    last_failure = _last_failure(chosen, pods, evs, isvc, last_logs, custom_fields)
    state = DeploymentState(
        serving_name=serving_name or (name_of(isvc) if isvc else "") or identity.get(m.F_SERVING, ""),
        namespace=namespace or str(meta(isvc or {}).get("namespace") or "")
        or next((str(meta(p).get("namespace")) for p in pods if meta(p).get("namespace")), ""),
        status=status, condition=condition, components=instances, model_name=identity.get(m.F_MODEL_NAME),
        model_version=identity.get(m.F_MODEL_VERSION), last_failure=last_failure,
        found=owner or bool(pods) or bool(evs))
    oom = None
    if last_failure is not None and last_failure.reason == "OOMKilled":
        mates = [p for p in pods if not last_failure.component or component_of_pod[id(p)] == last_failure.component]
        oom = oom_kills(mates, evs, container=last_failure.container, now_ns=now_ns)
    return replace(state, next_step=hints.next_step(
        state, now_ns=now_ns, oom=oom,
        old_serving=sum(len(c.serving_old) for c in components) if status is not Status.STOPPING else 0))
