"""Pure: an InferenceService's status (``serving.kserve.io/v1beta1``) as history facts.

What KServe says about a deployment (``docs``: ``../shared/research/kserve-status.md``):

- ``isvc_condition``: identity (isvc uid, condition type, status, reason, ``lastTransitionTime``);
  timestamp ``lastTransitionTime``.
- ``model_status``: identity (isvc uid, observed generation, digest of ``status.modelStatus``);
  timestamp ``lastFailureInfo.time`` for a failure, else the status's latest transition.
- ``revision``: identity (isvc uid, component, latest created / latest ready revision, digest of
  ``traffic``); timestamp the status's latest transition.

Knative's condition sets move ``lastTransitionTime`` whenever a condition's status, reason or
message changes, so (type, status, reason, time) names each change exactly. ``modelStatus`` and the
revisions have no time of their own: their identity is their content (plus the observed generation
for the model status: the model status of each generation of the spec is recorded, so a model loaded
again after a rollout is a new document), their timestamp the most recent condition transition of the
same status (``status epoch``).

Fields: the InferenceService's name is ``serving_name``; the model name comes from the same
presets as the pods' (a convention label or annotation, Hopsworks and Merlin labels, else the
InferenceService's name); ``model_version`` is the Knative generation of the component's latest
created revision (``sklearn-iris-predictor-00003`` is version 3), exactly what the pods of that
revision carry, unless a convention label says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from collector import model as m
from collector.kube.presets import KNATIVE_REVISION, KSERVE_ISVC, fields_from_pod
from collector.sources.history.documents import Fact, digest, first_time, integer, mapping, parse_time, severity, text

SOURCE = "isvc-status"
COMPONENT_PREFIXES = {"Predictor": "predictor", "Transformer": "transformer", "Explainer": "explainer"}
FAILED_MODEL_STATES = frozenset({"FailedToLoad"})
FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})
_REVISION = re.compile(r"^.+-(?P<generation>\d{5})$")


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
    """The model-aware fields of the InferenceService (of one ``component`` / ``revision``), via the pod presets.

    The presets read labels: the InferenceService's own labels and annotations, plus the labels KServe
    gives its pods (``serving.kserve.io/inferenceservice``, the component, and the revision whose
    generation is the version: ``revision``, else the component's latest created one).
    """
    meta = mapping(isvc.get("metadata"))
    name = text(meta.get("name"))
    labels = {str(k): str(v) for k, v in mapping(meta.get("labels")).items() if v is not None}
    labels.setdefault(KSERVE_ISVC, name)
    spec = _components(isvc).get(component or "predictor", {})
    revision = revision or text(spec.get("latestCreatedRevision")) or text(spec.get("latestReadyRevision"))
    if revision and _REVISION.match(revision):
        labels.setdefault(KNATIVE_REVISION, revision)
    if component:
        labels["component"] = component
    synthetic = {"metadata": {"name": name, "namespace": meta.get("namespace"), "labels": labels,
                              "annotations": meta.get("annotations") or {}}}
    fields = fields_from_pod(synthetic, custom_fields=custom_fields)
    fields.pop(m.F_LABELS, None)
    if not component:
        fields.pop(m.F_COMPONENT, None)
    return fields


def status_epoch(isvc: Mapping[str, Any]) -> int | None:
    """The latest ``lastTransitionTime`` of the status's conditions (else the object's creation)."""
    status = mapping(isvc.get("status"))
    times = [t for c in status.get("conditions") or [] if isinstance(c, Mapping)
             if (t := parse_time(c.get("lastTransitionTime"))) is not None]
    return max(times) if times else first_time(mapping(isvc.get("metadata")).get("creationTimestamp"))


def _base(isvc: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    meta = mapping(isvc.get("metadata"))
    return {**fields, m.F_NAMESPACE: text(meta.get("namespace")), m.H_SOURCE: SOURCE,
            m.H_INVOLVED_KIND: "InferenceService", m.H_INVOLVED_NAME: text(meta.get("name"))}


def condition_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    uid = text(mapping(isvc.get("metadata")).get("uid"))
    epoch = status_epoch(isvc)
    facts = []
    for condition in mapping(isvc.get("status")).get("conditions") or []:
        if not isinstance(condition, Mapping) or not condition.get("type"):
            continue
        kind, value = text(condition.get("type")), text(condition.get("status"))
        reason, changed = text(condition.get("reason")), text(condition.get("lastTransitionTime"))
        ts = parse_time(changed) or epoch
        if ts is None:
            continue
        component = component_of(kind)
        base = _base(isvc, isvc_fields(isvc, component=component, custom_fields=custom_fields))
        facts.append(Fact("isvc_condition", (uid, kind, value, reason, changed), ts, {
            **base, m.H_CONDITION_TYPE: kind, m.H_CONDITION_STATUS: value, m.H_REASON: reason,
            m.H_TYPE: severity(value == "False"),
            m.F_MESSAGE: text(condition.get("message")) or f"{kind} is {value}" + (f" ({reason})" if reason else ""),
        }))
    return facts


def model_status_fact(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> Fact | None:
    meta, status = mapping(isvc.get("metadata")), mapping(isvc.get("status"))
    model = mapping(status.get("modelStatus"))
    if not model:
        return None
    states, failure, copies = mapping(model.get("states")), mapping(model.get("lastFailureInfo")), mapping(model.get("copies"))
    active, target, transition = text(states.get("activeModelState")), text(states.get("targetModelState")), text(
        model.get("transitionStatus"))
    failing = transition in FAILED_TRANSITIONS or active in FAILED_MODEL_STATES or target in FAILED_MODEL_STATES
    ts = (parse_time(failure.get("time")) if failing else None) or status_epoch(isvc)
    if ts is None:
        return None
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
    return Fact("model_status", (text(meta.get("uid")), generation, digest(model)), ts, {
        **base, m.H_REASON: reason, m.H_TYPE: severity(failing), m.F_MESSAGE: "; ".join(words),
        m.H_EXIT_CODE: integer(failure.get("exitCode")) if failing else None, m.H_MODEL_STATE: active,
        m.H_TARGET_MODEL_STATE: target, m.H_TRANSITION_STATUS: transition,
        m.H_FAILED_COPIES: integer(copies.get("failedCopies")), m.H_TOTAL_COPIES: integer(copies.get("totalCopies")),
    })


def revision_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    uid = text(mapping(isvc.get("metadata")).get("uid"))
    ts = status_epoch(isvc)
    if ts is None:
        return []
    facts = []
    for component, spec in sorted(_components(isvc).items()):
        created, ready = text(spec.get("latestCreatedRevision")), text(spec.get("latestReadyRevision"))
        traffic = [f"{text(t.get('revisionName')) or ('latest' if t.get('latestRevision') else '?')}="
                   f"{integer(t.get('percent')) or 0}" for t in spec.get("traffic") or [] if isinstance(t, Mapping)]
        if not (created or ready or traffic):
            continue
        serving = [t for t in traffic if not t.endswith("=0")]
        reason = "TrafficSplit" if len(serving) > 1 else "RevisionReady" if created and created == ready else "RevisionCreated"
        parts = [f"{component}: latest created revision {created or '-'}", f"latest ready {ready or '-'}"]
        if traffic:
            parts.append("traffic " + ", ".join(t.replace("=", " ") + "%" for t in traffic))
        base = _base(isvc, isvc_fields(isvc, component=component, custom_fields=custom_fields))
        facts.append(Fact("revision", (uid, component, created, ready, digest(traffic)), ts, {
            **base, m.H_REASON: reason, m.H_TYPE: "Normal", m.F_MESSAGE: "; ".join(parts), m.H_REVISION: created,
            m.H_READY_REVISION: ready, m.H_TRAFFIC: traffic,
        }))
    return facts


def isvc_facts(isvc: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> list[Fact]:
    """Every fact the InferenceService's status holds now."""
    facts = condition_facts(isvc, custom_fields=custom_fields)
    if (model := model_status_fact(isvc, custom_fields=custom_fields)) is not None:
        facts.append(model)
    return facts + revision_facts(isvc, custom_fields=custom_fields)
