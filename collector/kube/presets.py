"""Pure enrichment presets: a raw Pod object in, the model fields of its documents out.

Applied in order, each filling only what earlier ones left empty:

1. **Custom mapping** from settings (``field: "label:<key>"`` or ``"annotation:<key>"``): the
   operator's word wins.
2. **Hopsworks**: ``serving.hops.works/{name,model-name,model-version,project-id}``; the project is
   the namespace (Hopsworks names namespaces after projects).
3. **Merlin** (``gojek.com/orchestrator: merlin`` or any ``gojek.com/app``): the InferenceService is
   named ``<model>-<version>`` with an optional revision suffix ``-r<N>``.
4. **KServe**: ``serving.kserve.io/inferenceservice`` is the serving name and, absent anything
   better, the model name (KServe serves the model under the InferenceService's name by default);
   ``component`` is predictor/transformer/explainer. ``model_version``: KServe has no model-version
   label, so in serverless mode the Knative configuration generation is used: it increases with
   every change of the predictor spec, i.e. with every deployed model version (revision
   ``<isvc>-predictor-00003`` is generation 3). Raw-deployment pods have no such counter; their
   version stays unset unless a custom mapping provides it.

``labels`` always carries every pod label (stored as one ``flat_object`` field, so label keys never
reach the mapping), and ``container_name`` is never touched here: it comes from the log path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from collector import model as m

KSERVE_ISVC = "serving.kserve.io/inferenceservice"
KSERVE_COMPONENT = "component"
KNATIVE_REVISION = "serving.knative.dev/revision"
KNATIVE_GENERATION = "serving.knative.dev/configurationGeneration"
HOPS_NAME = "serving.hops.works/name"
HOPS_MODEL = "serving.hops.works/model-name"
HOPS_VERSION = "serving.hops.works/model-version"
HOPS_PROJECT_ID = "serving.hops.works/project-id"
MERLIN_ORCHESTRATOR = "gojek.com/orchestrator"
MERLIN_APP = "gojek.com/app"

_MERLIN_NAME = re.compile(r"^(?P<model>[a-z0-9][-a-z0-9]*?)-(?P<version>\d+)(?:-r(?P<revision>\d+))?$")
_COMPONENTS = ("predictor", "transformer", "explainer")


def _labels(pod: Mapping[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


def _annotations(pod: Mapping[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("annotations") or {})


def _fill(fields: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "") and fields.get(key) in (None, ""):
        fields[key] = str(value)


def fields_from_pod(pod: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Document fields for every line of this pod (see the module docstring for the rules)."""
    labels, annotations = _labels(pod), _annotations(pod)
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    fields: dict[str, Any] = {}
    for field_name, source in (custom_fields or {}).items():
        kind, _, key = source.partition(":")
        _fill(fields, field_name, (labels if kind == "label" else annotations if kind == "annotation" else {}).get(key))
    # Hopsworks
    if HOPS_NAME in labels or HOPS_MODEL in labels:
        _fill(fields, m.F_SERVING, labels.get(HOPS_NAME))
        _fill(fields, m.F_MODEL_NAME, labels.get(HOPS_MODEL))
        _fill(fields, m.F_MODEL_VERSION, labels.get(HOPS_VERSION))
        _fill(fields, m.F_PROJECT, namespace.replace("-", "_") if namespace else labels.get(HOPS_PROJECT_ID))
    isvc = labels.get(KSERVE_ISVC)
    # Merlin
    if isvc and (labels.get(MERLIN_ORCHESTRATOR) == "merlin" or MERLIN_APP in labels):
        match = _MERLIN_NAME.match(isvc)
        if match:
            _fill(fields, m.F_MODEL_NAME, match["model"])
            _fill(fields, m.F_MODEL_VERSION, match["version"])
        _fill(fields, m.F_SERVING, isvc)
        _fill(fields, m.F_PROJECT, namespace)
    # KServe
    if isvc:
        _fill(fields, m.F_SERVING, isvc)
        _fill(fields, m.F_MODEL_NAME, isvc)
        _fill(fields, m.F_MODEL_VERSION, labels.get(KNATIVE_GENERATION))
    component = labels.get(KSERVE_COMPONENT)
    if component in _COMPONENTS:
        _fill(fields, m.F_COMPONENT, component)
    elif isvc and labels.get(KNATIVE_REVISION):
        for candidate in _COMPONENTS:
            if f"-{candidate}-" in labels[KNATIVE_REVISION] + "-":
                _fill(fields, m.F_COMPONENT, candidate)
    if labels:
        fields[m.F_LABELS] = labels
    return fields


def containers_of(pod: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(containers, init containers) named in the pod spec."""
    spec = pod.get("spec") or {}
    return (tuple(c.get("name", "") for c in spec.get("containers") or []),
            tuple(c.get("name", "") for c in spec.get("initContainers") or []))


def is_excluded(pod: Mapping[str, Any], exclude_label: str) -> bool:
    """The pod asks not to be collected (e.g. the collector's own pods)."""
    return str(_labels(pod).get(exclude_label, "")).lower() == "true"


def pod_metadata(pod: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None,
                 deleted: bool = False) -> m.PodMetadata:
    meta = pod.get("metadata") or {}
    containers, init_containers = containers_of(pod)
    return m.PodMetadata(uid=meta.get("uid", ""), namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                         fields=fields_from_pod(pod, custom_fields=custom_fields), containers=containers,
                         init_containers=init_containers, deleted=deleted)
