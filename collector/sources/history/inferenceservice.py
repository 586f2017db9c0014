"""Pure: an InferenceService's status (``serving.kserve.io/v1beta1``) as history facts.

What KServe says about a deployment (``docs``: ``../shared/research/kserve-status.md``):

- ``isvc_condition``: identity (isvc uid, condition type, status, reason, ``lastTransitionTime``);
  timestamp ``lastTransitionTime``.
- ``model_status``: identity (isvc uid, observed generation, digest of ``status.modelStatus``, its
  time); timestamp ``lastFailureInfo.time`` for a failure, else the ``lastTransitionTime`` of
  ``PredictorReady`` (the model status is the predictor's: loading it is what makes the predictor
  ready or not).
- ``revision``: identity (isvc uid, component, latest created / latest ready revision, digest of
  ``traffic``, its time); timestamp the latest ``lastTransitionTime`` of the component's own
  ``<Component>ConfigurationReady`` (a revision created, or ready) and ``<Component>RouteReady``
  (traffic moved) conditions.

Knative's condition sets move ``lastTransitionTime`` whenever a condition's status, reason or
message changes, so (type, status, reason, time) names each change exactly. ``modelStatus`` and the
revisions have no time of their own: their identity is their content (plus the observed generation
for the model status: the model status of each generation of the spec is recorded, so a model loaded
again after a rollout is a new document) and the transition time of the component's own conditions,
which is their timestamp. That time is part of the identity (as for every fact, see
:mod:`collector.sources.history.documents`): a transition of an unrelated condition (``IngressReady``,
``Ready``) moves neither their ``_id`` nor their index; a transition of the component's own
conditions without a change of content states the same content again, at its new time. When the
component's conditions are missing, ``LatestDeploymentReady``, then ``Ready``, then the object's
creation is used.

Fields: the InferenceService's name is ``serving_name``; the model name comes from the same
presets as the pods' (a convention label or annotation, Hopsworks and Merlin labels, else the
InferenceService's name); ``model_version`` is the Knative generation of the component's latest
created revision (``sklearn-iris-predictor-00003`` is version 3), exactly what the pods of that
revision carry, unless a convention label says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector import model as m
from collector.kube.objects import integer, items, mapping, text
from collector.kube.presets import fields_from_pod, isvc_as_pod
from collector.sources.history.documents import Fact, digest, fact, first_time, latest_time, severity

SOURCE = "isvc-status"
COMPONENT_PREFIXES = {"Predictor": "predictor", "Transformer": "transformer", "Explainer": "explainer"}
FAILED_MODEL_STATES = frozenset({"FailedToLoad"})
FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})


def _components(isvc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = mapping(mapping(isvc.get("status")).get("components"))
    return {str(name): mapping(spec) for name, spec in found.items()}


def component_of(condition_type: str) -> str | None:
    """``PredictorConfigurationReady`` -> predictor; ``Ready``/``IngressReady`` -> None."""
    for prefix, component in COMPONENT_PREFIXES.items():
        if condition_type.startswith(prefix):
            return component
    return None


def isvc_fields(isvc: Mapping[str, Any], *, component: str | None = None, revision: str | None = None,
                custom_fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The model-aware fields of the InferenceService (of one ``component`` / ``revision``), via the pod presets
    on the pod KServe would create for it (:func:`collector.kube.presets.isvc_as_pod`)."""
    fields = fields_from_pod(isvc_as_pod(isvc, component=component, revision=revision), custom_fields=custom_fields)
    fields.pop(m.F_LABELS, None)
    if not component:
        fields.pop(m.F_COMPONENT, None)
    return fields


def _transitions(isvc: Mapping[str, Any]) -> dict[str, str]:
    """Each condition's ``lastTransitionTime`` (as written), by type."""
    return {text(c.get("type")): text(c.get("lastTransitionTime"))
            for c in items(mapping(isvc.get("status")).get("conditions")) if c.get("type")}


def own_time(isvc: Mapping[str, Any], *condition_types: str) -> str:
    """The latest transition of the given conditions; else ``LatestDeploymentReady``, ``Ready``, the creation."""
    changed = _transitions(isvc)
    return (latest_time(*(changed.get(kind) for kind in condition_types))
            or first_time(changed.get("LatestDeploymentReady"), changed.get("Ready"),
                          mapping(isvc.get("metadata")).get("creationTimestamp")))


def _base(isvc: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    meta = mapping(isvc.get("metadata"))
    return {**fields, m.F_NAMESPACE: text(meta.get("namespace")), m.H_SOURCE: SOURCE,
            m.H_INVOLVED_KIND: "InferenceService", m.H_INVOLVED_NAME: text(meta.get("name"))}


def condition_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    meta = mapping(isvc.get("metadata"))
    uid = text(meta.get("uid"))
    facts: list[Fact | None] = []
    for condition in items(mapping(isvc.get("status")).get("conditions")):
        if not condition.get("type"):
            continue
        kind, value = text(condition.get("type")), text(condition.get("status"))
        reason = text(condition.get("reason"))
        at = first_time(condition.get("lastTransitionTime"), meta.get("creationTimestamp"))
        component = component_of(kind)
        base = _base(isvc, isvc_fields(isvc, component=component, custom_fields=custom_fields))
        facts.append(fact("isvc_condition", (uid, kind, value, reason, at), at, {
            **base, m.H_CONDITION_TYPE: kind, m.H_CONDITION_STATUS: value, m.H_REASON: reason,
            m.H_TYPE: severity(value == "False"),
            m.F_MESSAGE: text(condition.get("message")) or f"{kind} is {value}" + (f" ({reason})" if reason else ""),
        }))
    return [f for f in facts if f is not None]


def model_status_fact(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> Fact | None:
    meta, status = mapping(isvc.get("metadata")), mapping(isvc.get("status"))
    model = mapping(status.get("modelStatus"))
    if not model:
        return None
    states, failure, copies = mapping(model.get("states")), mapping(model.get("lastFailureInfo")), mapping(model.get("copies"))
    active, target, transition = text(states.get("activeModelState")), text(states.get("targetModelState")), text(
        model.get("transitionStatus"))
    failing = transition in FAILED_TRANSITIONS or active in FAILED_MODEL_STATES or target in FAILED_MODEL_STATES
    at = (first_time(failure.get("time")) if failing else "") or own_time(isvc, "PredictorReady")
    generation = text(status.get("observedGeneration")) or text(meta.get("generation"))
    reason = (text(failure.get("reason")) or "FailedToLoad") if failing else (target or active or transition)
    words = [f"model {active or 'unknown'}"]
    if target and target != active:
        words.append(f"target {target}")
    if transition:
        words.append(f"transition {transition}")
    if failing and failure:
        code = integer(failure.get("exitCode"))
        words.append(f"last failure {text(failure.get('reason'))}" + (f" (exit code {code})" if code else "")
                     + (f": {text(failure.get('message'))}" if failure.get("message") else ""))
    base = _base(isvc, isvc_fields(isvc, component="predictor", custom_fields=custom_fields))
    return fact("model_status", (text(meta.get("uid")), generation, digest(model), at), at, {
        **base, m.H_REASON: reason, m.H_TYPE: severity(failing), m.F_MESSAGE: "; ".join(words),
        m.H_EXIT_CODE: integer(failure.get("exitCode")) if failing else None, m.H_MODEL_STATE: active,
        m.H_TARGET_MODEL_STATE: target, m.H_TRANSITION_STATUS: transition,
        m.H_FAILED_COPIES: integer(copies.get("failedCopies")), m.H_TOTAL_COPIES: integer(copies.get("totalCopies")),
    })


def revision_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    uid = text(mapping(isvc.get("metadata")).get("uid"))
    facts: list[Fact | None] = []
    for component, spec in sorted(_components(isvc).items()):
        created, ready = text(spec.get("latestCreatedRevision")), text(spec.get("latestReadyRevision"))
        traffic = [f"{text(t.get('revisionName')) or ('latest' if t.get('latestRevision') else '?')}="
                   f"{integer(t.get('percent')) or 0}" for t in items(spec.get("traffic"))]
        if not (created or ready or traffic):
            continue
        serving = [t for t in traffic if not t.endswith("=0")]
        reason = "TrafficSplit" if len(serving) > 1 else "RevisionReady" if created and created == ready else "RevisionCreated"
        parts = [f"{component}: latest created revision {created or '-'}", f"latest ready {ready or '-'}"]
        if traffic:
            parts.append("traffic " + ", ".join(t.replace("=", " ") + "%" for t in traffic))
        base = _base(isvc, isvc_fields(isvc, component=component, custom_fields=custom_fields))
        prefix = component.capitalize()
        at = own_time(isvc, f"{prefix}ConfigurationReady", f"{prefix}RouteReady")
        facts.append(fact("revision", (uid, component, created, ready, digest(traffic), at), at, {
            **base, m.H_REASON: reason, m.H_TYPE: "Normal", m.F_MESSAGE: "; ".join(parts), m.H_REVISION: created,
            m.H_READY_REVISION: ready, m.H_TRAFFIC: traffic,
        }))
    return [f for f in facts if f is not None]


def isvc_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    """Every fact the InferenceService's status holds now."""
    facts = condition_facts(isvc, custom_fields=custom_fields)
    if (model := model_status_fact(isvc, custom_fields=custom_fields)) is not None:
        facts.append(model)
    return facts + revision_facts(isvc, custom_fields=custom_fields)
