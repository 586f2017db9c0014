"""Which model deployment an object belongs to: an in-memory index built from the pod and InferenceService watches.

An Event names its object by kind, namespace and name (and uid for pods). Pods are enriched by the
same presets as the logs (:mod:`collector.kube.presets`); for the objects around them (ReplicaSet,
Deployment, Knative Revision / Configuration / Service, the InferenceService) the index remembers
what each serving pod and each InferenceService vouches for:

- a pod: its ReplicaSet (``ownerReferences``), that ReplicaSet's Deployment (the name without the
  ``pod-template-hash``), its Knative revision, configuration and service (labels), and its
  InferenceService (``serving.kserve.io/inferenceservice``); revision-level names keep the model
  version, the others drop it (a Configuration spans versions);
- an InferenceService: its own name, ``<name>-<component>``, and the revisions its status names.

Objects nobody vouches for (a revision whose image was never pulled has no pod) fall back to
KServe's naming (``<isvc>-<component>[-<generation>][-deployment[-<hash>]]``), accepted when the
InferenceService is known, or always on a cluster without the KServe CRD. Pods that are not serving
pods are remembered by uid only, so an event about them is dropped at once instead of waiting for
a pod that will never be indexed. Deleted objects are kept for ``deleted_ttl`` seconds (their last
events and final statuses arrive late); names not refreshed for that long are forgotten.

Not thread-safe on its own: the history source calls it under its lock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector import model as m
from collector.kube.objects import mapping, text
from collector.kube.presets import KNATIVE_CONFIGURATION, KNATIVE_REVISION, KNATIVE_SERVICE, fields_from_pod, pod_labels
from collector.sources.files.paths import kserve_names_from_pod
from collector.sources.history.inferenceservice import isvc_fields

_OWNER_NAME = re.compile(r"^(?P<isvc>[a-z0-9][-a-z0-9]*?)-(?P<component>predictor|transformer|explainer)(?:-default)?"
                         r"(?:-(?P<generation>\d{5}))?(?:-deployment)?(?:-[a-z0-9]{6,10})?$")
_POD_SPECIFIC = (m.F_POD_NAME, m.F_POD_UID, m.F_NODE, m.F_CONTAINER)
_SERVING_KEYS = (m.F_SERVING, m.F_MODEL_NAME)


@dataclass(slots=True)
class PodRecord:
    """A serving pod as history documents see it."""

    uid: str
    namespace: str
    name: str
    fields: dict[str, Any]  # namespace, pod_name, pod_uid, node_name and the model-aware fields
    names: dict[str, dict[str, Any]]  # owner object name -> the fields it carries
    deleted_at: float | None = None
    ready: set[str] = field(default_factory=set)  # container instances seen ready (lifecycle.readiness)


@dataclass(slots=True)
class _Name:
    fields: dict[str, Any]
    seen: float
    from_pod: bool = True


def pod_document_fields(pod: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fields of every history document about this pod (presets; ``labels`` left out)."""
    meta, spec = mapping(pod.get("metadata")), mapping(pod.get("spec"))
    fields = fields_from_pod(pod, custom_fields=custom_fields)
    fields.pop(m.F_LABELS, None)
    fields.update({m.F_NAMESPACE: text(meta.get("namespace")), m.F_POD_NAME: text(meta.get("name")),
                   m.F_POD_UID: text(meta.get("uid")), m.F_NODE: text(spec.get("nodeName"))})
    return {k: v for k, v in fields.items() if v not in (None, "")}


def is_serving(fields: Mapping[str, Any]) -> bool:
    return any(fields.get(key) for key in _SERVING_KEYS)


def _without(fields: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in keys}


def owner_names(pod: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Names of the objects around a serving pod, each with the fields its events should carry."""
    shared = _without(fields, *_POD_SPECIFIC)
    spanning = _without(shared, m.F_MODEL_VERSION)
    labels = pod_labels(pod)
    out: dict[str, dict[str, Any]] = {}
    template_hash = labels.get("pod-template-hash", "")
    for owner in mapping(pod.get("metadata")).get("ownerReferences") or []:
        name = text(mapping(owner).get("name"))
        if name:
            out[name] = shared
            if template_hash and name.endswith("-" + template_hash):
                out[name[: -len(template_hash) - 1]] = shared  # the Deployment of that ReplicaSet
    if labels.get(KNATIVE_REVISION):
        out[labels[KNATIVE_REVISION]] = shared
    for key in (KNATIVE_CONFIGURATION, KNATIVE_SERVICE):
        if labels.get(key):
            out.setdefault(labels[key], spanning)
    if fields.get(m.F_SERVING):
        out.setdefault(str(fields[m.F_SERVING]), _without(spanning, m.F_COMPONENT))
    return out


class ServingIndex:
    """Pods and InferenceServices by uid, and the names of the objects around them."""

    def __init__(self, *, custom_fields: Mapping[str, str] | None = None, deleted_ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._custom = dict(custom_fields or {})
        self._ttl = deleted_ttl
        self._clock = clock
        self._pods: dict[str, PodRecord] = {}
        self._other_pods: dict[str, int] = {}  # uid -> list generation, for pods that are not serving pods
        self._isvcs: dict[str, tuple[dict[str, Any], float | None]] = {}  # uid -> (isvc, deleted_at)
        self._names: dict[tuple[str, str], _Name] = {}
        self._generation = 0
        self.isvc_watch_active = False  # the CRD answers: name fallbacks must name a known InferenceService

    # -- pods ------------------------------------------------------------------------------------
    def update_pod(self, kind: str, pod: Mapping[str, Any]) -> PodRecord | None:
        """A pod from the watch (``ADDED``, ``MODIFIED``, ``DELETED``, ``LISTED``); its record when it serves a model."""
        meta = mapping(pod.get("metadata"))
        uid = text(meta.get("uid"))
        if not uid:
            return None
        fields = pod_document_fields(pod, custom_fields=self._custom)
        if not is_serving(fields):
            if kind == "DELETED":
                self._other_pods.pop(uid, None)
            else:  # a listed pod belongs to the list in progress (see list_done)
                self._other_pods[uid] = self._generation + (kind == "LISTED")
            self._pods.pop(uid, None)
            return None
        now = self._clock()
        record = self._pods.get(uid)
        if record is None:
            record = self._pods[uid] = PodRecord(uid, text(meta.get("namespace")), text(meta.get("name")), fields, {})
        record.fields = fields
        record.names = owner_names(pod, fields)
        if kind == "DELETED" and record.deleted_at is None:
            record.deleted_at = now
        for name, carried in record.names.items():
            self._names[(record.namespace, name)] = _Name(carried, now)
        return record

    def list_done(self) -> None:
        """A (re)list of pods ended: the pods that serve no model and were not listed are gone."""
        self._generation += 1
        self._other_pods = {uid: gen for uid, gen in self._other_pods.items() if gen >= self._generation}

    def pod(self, uid: str) -> PodRecord | None:
        return self._pods.get(uid)

    def knows_pod(self, uid: str) -> bool:
        """Whether the pod was seen at all (serving or not)."""
        return uid in self._pods or uid in self._other_pods

    # -- InferenceServices -------------------------------------------------------------------------
    def update_isvc(self, kind: str, isvc: Mapping[str, Any]) -> None:
        meta = mapping(isvc.get("metadata"))
        uid, namespace, name = text(meta.get("uid")), text(meta.get("namespace")), text(meta.get("name"))
        if not uid or not name:
            return
        now = self._clock()
        previous = self._isvcs.get(uid)
        deleted_at = (previous[1] if previous and previous[1] is not None else now) if kind == "DELETED" else None
        self._isvcs[uid] = (dict(isvc), deleted_at)
        self._vouch(namespace, name, _without(isvc_fields(isvc, custom_fields=self._custom), m.F_MODEL_VERSION), now)
        components = mapping(mapping(isvc.get("status")).get("components"))
        for component in {*components, "predictor"}:
            per_component = isvc_fields(isvc, component=str(component), custom_fields=self._custom)
            self._vouch(namespace, f"{name}-{component}", _without(per_component, m.F_MODEL_VERSION), now)
            spec = mapping(components.get(component))
            revisions = {text(spec.get("latestCreatedRevision")), text(spec.get("latestReadyRevision"))}
            revisions |= {text(mapping(t).get("revisionName")) for t in spec.get("traffic") or []}
            for revision in sorted(revisions - {""}):
                fields = isvc_fields(isvc, component=str(component), revision=revision, custom_fields=self._custom)
                self._vouch(namespace, revision, fields, now)

    def _vouch(self, namespace: str, name: str, fields: dict[str, Any], now: float) -> None:
        """An InferenceService's word for a name: kept unless a pod (whose labels the logs use) said otherwise."""
        entry = self._names.get((namespace, name))
        if entry is None or not entry.from_pod:
            self._names[(namespace, name)] = _Name(fields, now, from_pod=False)
        else:
            entry.seen = now

    def isvcs_listed(self, listed: set[str]) -> None:
        """A (re)list of InferenceServices ended: those it no longer finds were deleted meanwhile."""
        for uid, (isvc, deleted) in list(self._isvcs.items()):
            if uid not in listed and deleted is None:
                self.update_isvc("DELETED", isvc)

    def isvc_known(self, namespace: str, name: str) -> bool:
        return any(text(mapping(i.get("metadata")).get("namespace")) == namespace
                   and text(mapping(i.get("metadata")).get("name")) == name for i, _ in self._isvcs.values())

    # -- resolution --------------------------------------------------------------------------------
    def resolve(self, *, kind: str, namespace: str, name: str, uid: str = "") -> dict[str, Any] | None:
        """The model-aware fields for an object an event is about; None when it belongs to no model deployment."""
        if kind == "Pod":
            record = self._pods.get(uid) if uid else None
            if record is None:
                record = next((r for r in self._pods.values() if (r.namespace, r.name) == (namespace, name)), None)
            if record is not None:
                return dict(record.fields)
            if uid and uid in self._other_pods:
                return None
        found = self._names.get((namespace, name))
        if found is not None:
            return dict(found.fields)
        return self._from_naming(kind, namespace, name)

    def _from_naming(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == "InferenceService":  # about a model deployment by definition, even before its watch delivered it
            return {m.F_SERVING: name, m.F_MODEL_NAME: name}
        if kind == "Pod" and kserve_names_from_pod(name) is None:
            return None
        match = _OWNER_NAME.match(name.rsplit("-", 1)[0] if kind == "Pod" else name)  # a pod: its ReplicaSet's name
        if match is None:
            return None
        isvc, component, generation = match["isvc"], match["component"], match["generation"]
        if self.isvc_watch_active and not self.isvc_known(namespace, isvc):
            return None
        fields = self._known_isvc_fields(namespace, isvc) or {m.F_SERVING: isvc, m.F_MODEL_NAME: isvc}
        fields[m.F_COMPONENT] = component
        if generation:
            fields[m.F_MODEL_VERSION] = str(int(generation))
        return fields

    def _known_isvc_fields(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._names.get((namespace, name))
        return dict(found.fields) if found is not None else None

    # -- expiry ----------------------------------------------------------------------------------
    def expire(self) -> list[str]:
        """Forget what was deleted (or not vouched for) longer ago than the TTL; the uids forgotten."""
        now = self._clock()
        gone = [uid for uid, r in self._pods.items() if r.deleted_at is not None and now - r.deleted_at >= self._ttl]
        for uid in gone:
            del self._pods[uid]
        for record in self._pods.values():
            for name in record.names:
                entry = self._names.get((record.namespace, name))
                if entry is not None:
                    entry.seen = now
        for uid in [u for u, (_, deleted) in self._isvcs.items() if deleted is not None and now - deleted >= self._ttl]:
            gone.append(uid)
            del self._isvcs[uid]
        for isvc, deleted in list(self._isvcs.values()):
            if deleted is None:
                self.update_isvc("MODIFIED", isvc)
        self._names = {key: entry for key, entry in self._names.items() if now - entry.seen < self._ttl}
        return gone

    def __len__(self) -> int:
        return len(self._pods) + len(self._isvcs)
