"""What an InferenceService's own status says, for when its pods cannot say it.

Why: KServe (with Knative) often fails before any pod exists or after the pods are gone. Knative
resolves an image tag to a digest before it creates a pod (so a missing image fails the revision
with ``Unable to fetch image ...``), an unschedulable revision is scaled back to zero after its
progress deadline, a scaled-to-zero model has no pod at all. Then the root cause is in
``status.conditions`` (``PredictorConfigurationReady``: ``Revision "<rev>" failed with message:
<text>.``; the ``RevisionMissing`` texts above it are consequences, not causes), in
``status.modelStatus.lastFailureInfo`` (``ModelLoadFailed`` with exit code 137 for an OOM kill,
``NoSupportingRuntime`` for a spec no runtime serves) and in the controller's events
(``InternalError``, a ReplicaSet's ``FailedCreate`` for an exceeded quota). This module turns that
into a condition of the start sequence (see :mod:`collector.deployment.pods`), and reads the
connectivity steps (ingress, routes) that come after the pods are ready.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.deployment.model import Condition, ConditionStatus, ConditionType, Failure
from collector.deployment.objects import (
    Event,
    Obj,
    as_int,
    isvc_condition,
    mapping,
    one_line,
)
from collector.deployment.pods import failure_reason, scheduler_reason

_S, _I, _ST, _R = ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY
_U, _F, _T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE

STOP_ANNOTATION = "serving.kserve.io/stop"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
SPEC_FAILURES = frozenset({"NoSupportingRuntime", "RuntimeNotRecognized", "RuntimeDisabled", "InvalidPredictorSpec",
                           "InvalidWorkerSpecNotSet", "InvalidGPUAllocation"})
# Controller / workload events that mean "no pod can even be created" (quota, admission, reconcile errors).
CREATE_FAILURES = frozenset({"FailedCreate", "InternalError", "UpdateFailed", "FailedCreatePodSandBox"})
# Condition reasons that only echo another condition (a missing revision, a predictor not ready): the cause is elsewhere.
ECHOES = frozenset({"RevisionMissing", "Uninitialized", "IngressNotConfigured", "Stopped", "Predictor ingress not created",
                    "Transformer ingress not created", "Explainer ingress not created"})

_SCHEDULING_WORDS = ("nodes are available", "insufficient", "unschedulable", "exceeded quota", "forbidden")
_INIT_WORDS = ("image", "pull", "manifest", "storage-initializer", "volume", "mount", "secret", "configmap")


def stop_requested(isvc: Obj | None) -> bool:
    """KServe's stop: the ``serving.kserve.io/stop: "true"`` annotation, or the ``Stopped`` condition True."""
    if not isvc:
        return False
    annotations = mapping(mapping(isvc.get("metadata")).get("annotations"))
    stopped = isvc_condition(isvc, "Stopped")
    return str(annotations.get(STOP_ANNOTATION, "")).lower() == "true" or (stopped or {}).get("status") == "True"


def is_ready(isvc: Obj | None) -> bool:
    return (isvc_condition(isvc, "Ready") or {}).get("status") == "True"


def component_ready(isvc: Obj | None, component: str) -> bool | None:
    """``<Component>Ready`` (PredictorReady, TransformerReady, ExplainerReady), None when not reported."""
    cond = isvc_condition(isvc, f"{component.capitalize()}Ready")
    return None if cond is None else cond.get("status") == "True"


def revision_message(message: str) -> str:
    """The cause inside Knative's ``Revision "<rev>" failed with message: <text>.``."""
    _, sep, tail = message.partition("failed with message: ")
    return (tail if sep else message).strip().rstrip(".").strip() or message


def classify(text: str, events: Sequence[Event]) -> ConditionType:
    """Which step a failure text belongs to (the text is the revision's or the controller's)."""
    lowered = text.lower()
    if any(word in lowered for word in _SCHEDULING_WORDS):
        return _S
    if any(word in lowered for word in _INIT_WORDS):
        return _I
    if "initial scale was never achieved" in lowered or "progressdeadlineexceeded" in lowered:
        restarts = any(e.reason == "BackOff" and "restarting" in e.message for e in events)
        readiness = any(e.reason == "Unhealthy" and e.message.startswith("Readiness") for e in events)
        return _R if readiness and not restarts else _ST
    return _ST


def _memory_limit(isvc: Obj, component: str) -> str | None:
    spec = mapping(mapping(isvc.get("spec")).get(component))
    for holder in [mapping(spec.get("model")), *[mapping(c) for c in spec.get("containers") or []]]:
        value = mapping(mapping(holder.get("resources")).get("limits")).get("memory")
        if value is not None:
            return str(value)
    return None


def failed_condition(isvc: Obj, component: str, events: Sequence[Event]) -> tuple[Condition, Failure] | None:
    """The failed step a not-ready InferenceService reports for a component without live pods, if any."""
    status = mapping(isvc.get("status"))
    info = mapping(mapping(status.get("modelStatus")).get("lastFailureInfo"))
    title = component.capitalize()
    if info and component == "predictor":
        reason, message = str(info.get("reason") or "ModelLoadFailed"), str(info.get("message") or "")
        exit_code = as_int(info.get("exitCode"))
        failure = Failure(reason=reason, message=message, time=str(info.get("time") or "") or None, component=component,
                          pod=str(info.get("location") or "") or None, exit_code=exit_code)
        if reason in SPEC_FAILURES:
            return Condition(_S, _F, one_line(f"{reason}: {message}" if message else reason)), failure
        if exit_code == 137:
            oom = Failure(reason="OOMKilled", message=message, time=failure.time, component=component, pod=failure.pod,
                          container="kserve-container", exit_code=137, memory_limit=_memory_limit(isvc, component))
            return Condition(_ST, _F, failure_reason(oom)), oom
        said = message.strip().splitlines()[-1] if message.strip() else ""
        text = f"model failed to load ({reason}" + (f", exit {exit_code})" if exit_code is not None else ")")
        return Condition(_ST, _F, one_line(text + (f": {said}" if said else ""))), failure
    for kind in (f"{title}ConfigurationReady", f"{title}Ready", "LatestDeploymentReady", "Ready"):
        cond = isvc_condition(isvc, kind)
        if cond and cond.get("status") == "False" and cond.get("reason") not in ECHOES:
            message = revision_message(str(cond.get("message") or cond.get("reason") or ""))
            step = classify(message, events)
            reason = scheduler_reason(message) if step is _S else one_line(message)
            return Condition(step, _F, reason), Failure(reason=str(cond.get("reason") or "RevisionFailed"),
                                                        message=message, time=cond.get("lastTransitionTime"),
                                                        component=component)
    created = [e for e in events if e.reason in CREATE_FAILURES and e.type == "Warning"]
    if created:
        event = created[-1]
        return Condition(_S, _F, one_line(event.message)), Failure(reason=event.reason, message=event.message,
                                                                   time=event.time, component=component)
    return None


def pending_condition(isvc: Obj, component: str) -> Condition:
    """A not-ready InferenceService whose component has no pod yet and no failure: waiting to be scheduled."""
    cond = isvc_condition(isvc, f"{component.capitalize()}ConfigurationReady") or isvc_condition(isvc, "Ready") or {}
    message = str(cond.get("message") or "")
    return Condition(_S, _U, one_line(f"Waiting to be scheduled: {message}" if message else "Waiting to be scheduled"))


def connectivity(isvc: Obj, components: Sequence[str], events: Sequence[Event]) -> Condition | None:
    """READY Unknown/False while the pods are ready but the ingress or routes are not; None when Ready.

    ``False`` when a condition fails for its own reason, or the controller reported an
    ``InternalError`` (KServe's event when reconciling the ingress or virtual service fails).
    """
    if is_ready(isvc):
        return None
    errors = [e for e in events if e.reason == "InternalError" and e.type == "Warning"]
    if errors:
        return Condition(_R, _F, one_line(f"Failed to set up connectivity: {errors[-1].message}"))
    kinds = ["IngressReady", *[f"{c.capitalize()}RouteReady" for c in components], "RoutesReady",
             *[f"{c.capitalize()}Ready" for c in components], "Ready"]
    for kind in kinds:
        cond = isvc_condition(isvc, kind)
        if cond is None or cond.get("status") == "True":
            continue
        message = one_line(str(cond.get("message") or cond.get("reason") or kind))
        if cond.get("status") == "False" and cond.get("reason") not in ECHOES:
            return Condition(_R, _F, f"Failed to set up connectivity: {message}")
        return Condition(_R, _U, f"Setting up connectivity: {message}")
    return Condition(_R, _U, "Setting up connectivity")


def gave_up(isvc: Obj | None, component: str) -> str | None:
    """The controller's word that it stopped waiting for readiness (progress deadline), if it said so."""
    for kind in (f"{component.capitalize()}Ready", f"{component.capitalize()}ConfigurationReady", "Ready"):
        cond = isvc_condition(isvc, kind)
        text = f"{(cond or {}).get('reason', '')} {(cond or {}).get('message', '')}"
        if cond and cond.get("status") == "False" and ("ProgressDeadlineExceeded" in text
                                                      or "Initial scale was never achieved" in text):
            return revision_message(str(cond.get("message") or cond.get("reason")))
    return None


def never_started(isvc: Obj) -> bool:
    """Created stopped and never run: no revision was ever created for any component."""
    components = mapping(mapping(isvc.get("status")).get("components"))
    return not any(mapping(c).get("latestCreatedRevision") for c in components.values())


def desired_replicas(isvc: Obj, component: str) -> tuple[int, int]:
    """(minReplicas, maxReplicas) of a component; KServe's default minimum is 1, max 0 means unbounded."""
    spec = mapping(mapping(isvc.get("spec")).get(component))
    minimum = as_int(spec.get("minReplicas"))
    if minimum is None:
        annotations = {**mapping(mapping(isvc.get("metadata")).get("annotations")), **mapping(spec.get("annotations"))}
        minimum = as_int(annotations.get(MIN_SCALE) or annotations.get("autoscaling.knative.dev/minScale"))
    return (1 if minimum is None else max(minimum, 0)), max(as_int(spec.get("maxReplicas")) or 0, 0)
