"""Pure enrichment presets: a raw Pod object (the API's JSON) in, the model fields of its documents out.

Why presets: KServe, Hopsworks and Merlin each say "which model, which version" in their own labels,
and none of them in a field a log user can filter on. Each preset below reads one platform's labels;
they run from the most specific to the most generic, and a later preset only fills a field that an
earlier one left empty:

1. **Custom mapping** (settings ``kubernetes.custom_fields``: ``field: "label:<key>"`` or
   ``"annotation:<key>"``): the operator's explicit word beats every guess, and can add fields of
   its own (``team: "label:gojek.com/team"``).
2. **Hopsworks** (any ``serving.hops.works/*`` label): ``serving.hops.works/name`` is the serving
   name, ``/model-name`` and ``/model-version`` are the model's registry name and version.
   ``project`` comes from the namespace: Hopsworks names a project's namespace after the project,
   lower-cased with ``_`` turned into ``-``, so ``fraud-project`` is project ``fraud_project`` (the
   same rule Hopsworks' own Logstash pipeline applies). ``serving.hops.works/project-id`` is a
   number, not a name, and is left in ``labels``.
3. **Merlin** (caraml; the label ``<prefix>orchestrator: merlin``, prefix ``gojek.com/`` by default
   and configurable in Merlin, so it is detected rather than assumed): ``<prefix>app`` is the
   model name, and the InferenceService is named ``<model>-<version>`` with an optional
   ``-r<N>`` suffix counting redeployments of that version (``credit-score-3-r2``: model
   ``credit-score``, version ``3``). Knowing the model name from ``<prefix>app`` makes the split
   exact even for models whose names end in digits. Batch-job pods carry ``model-version-id``.
   ``project`` is the namespace (Merlin deploys into a namespace named after the MLP project).
4. **KServe** (``serving.kserve.io/inferenceservice``, or KFServing's
   ``serving.kubeflow.org/inferenceservice``):

   - ``serving_name``: the InferenceService name. Fallbacks for pods without that label: the
     Knative service ``<isvc>-<component>`` (older: ``-<component>-default``) or the raw-deployment
     ``app: isvc.<isvc>-<component>`` label.
   - ``component``: the ``component`` label (predictor, transformer, explainer), else the same
     Knative / raw-deployment names. The ``component`` label of a pod that is *not* an
     InferenceService pod is ignored (plenty of charts use ``component: frontend``).
   - ``model_name``: KServe has no model-name label. Used, in order: the label or annotation
     ``serving.kserve.io/model-name`` (a convention some teams set on the InferenceService, which
     KServe copies to its pods; KServe itself never sets it); the ``--model_name`` argument of
     ``kserve-container`` (the name the model server registers and logs, which KServe renders into
     the pod spec); the InferenceService name (KServe's default model name).
   - ``model_version``: the label or annotation ``serving.kserve.io/model-version`` (same
     convention) when present; otherwise, in serverless mode, the Knative configuration generation
     (``serving.knative.dev/configurationGeneration``, else the ``-000NN`` suffix of the revision
     name). That number grows by one with every change of the component's spec, so revision
     ``sklearn-iris-predictor-00002`` is version ``2``: for a plain KServe user the revision *is*
     the deployed version, the thing that changes when a new model is rolled out. It counts per
     component (a transformer has its own), and a change of resources alone also bumps it; where
     that is not good enough, set the convention label or map a label with ``custom_fields``.
     Raw-deployment pods have no such counter: their ``model_version`` stays unset rather than
     guessed.

``labels`` always carries every pod label (one ``flat_object`` field in OpenSearch, so dotted keys
never reach the mapping). ``container_name`` and the other path facts are never set here: they come
from the log path. All values are strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collector import model as m

# -- KServe / Knative ------------------------------------------------------------------------------
KSERVE_ISVC = "serving.kserve.io/inferenceservice"
KFSERVING_ISVC = "serving.kubeflow.org/inferenceservice"  # KFServing <= 0.6
KSERVE_COMPONENT = "component"
KSERVE_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
KSERVE_MODEL_NAME = "serving.kserve.io/model-name"  # convention (label or annotation), not set by KServe
KSERVE_MODEL_VERSION = "serving.kserve.io/model-version"  # convention (label or annotation)
KSERVE_CONTAINER = "kserve-container"
KNATIVE_SERVICE = "serving.knative.dev/service"
KNATIVE_CONFIGURATION = "serving.knative.dev/configuration"
KNATIVE_GENERATION = "serving.knative.dev/configurationGeneration"
KNATIVE_REVISION = "serving.knative.dev/revision"
RAW_APP = "app"  # raw deployment: app=isvc.<isvc>-<component>
COMPONENTS = ("predictor", "transformer", "explainer")

# -- Hopsworks -------------------------------------------------------------------------------------
HOPS_PREFIX = "serving.hops.works/"
HOPS_NAME = "serving.hops.works/name"
HOPS_NAME_OLD = "serving.hops.works/serving-name"  # Hopsworks <= 2.x
HOPS_MODEL = "serving.hops.works/model-name"
HOPS_VERSION = "serving.hops.works/model-version"
HOPS_PROJECT_ID = "serving.hops.works/project-id"
HOPS_ID = "serving.hops.works/id"

# -- Merlin ----------------------------------------------------------------------------------------
MERLIN_ORCHESTRATOR = "orchestrator"  # after the deployment's label prefix (default gojek.com/)
MERLIN_APP = "app"
MERLIN_COMPONENT = "component"
MERLIN_VERSION_ID = "model-version-id"  # batch prediction jobs

_SERVICE_NAME = re.compile(r"^(?P<isvc>.+)-(?P<component>predictor|transformer|explainer)(?:-default)?$")
_REVISION_GENERATION = re.compile(r"^.+-(?P<generation>\d{5})$")
_MERLIN_ISVC = re.compile(r"^(?P<model>.+?)-(?P<version>\d+)(?:-r(?P<revision>\d+))?$")
_MERLIN_VERSION_SUFFIX = re.compile(r"^(?P<version>\d+)(?:-r(?P<revision>\d+))?$")

CUSTOM_SOURCES = ("label", "annotation")


# -- small readers ---------------------------------------------------------------------------------
def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _string_map(value: Any) -> dict[str, str]:
    """A label/annotation map with string values (hand-written YAML may hold numbers, or nulls)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _text(v) for k, v in value.items() if v is not None}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pod_labels(pod: Mapping[str, Any]) -> dict[str, str]:
    """Every label of the pod, values as strings."""
    return _string_map(_meta(pod).get("labels"))


def pod_annotations(pod: Mapping[str, Any]) -> dict[str, str]:
    return _string_map(_meta(pod).get("annotations"))


def _fill(fields: dict[str, Any], key: str, value: str | None) -> None:
    """Set ``key`` unless an earlier preset already did (empty values never count)."""
    if value and not fields.get(key):
        fields[key] = value


# -- presets ---------------------------------------------------------------------------------------
def _custom(fields: dict[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str],
            custom_fields: Mapping[str, str]) -> None:
    for field_name, source in custom_fields.items():
        if field_name == m.F_LABELS:
            continue  # labels is always the full label map
        kind, _, key = source.partition(":")
        if kind == "label":
            _fill(fields, field_name, labels.get(key))
        elif kind == "annotation":
            _fill(fields, field_name, annotations.get(key))


def _hopsworks(fields: dict[str, Any], labels: Mapping[str, str], namespace: str) -> None:
    if not any(key.startswith(HOPS_PREFIX) for key in labels):
        return
    _fill(fields, m.F_SERVING, labels.get(HOPS_NAME) or labels.get(HOPS_NAME_OLD))
    _fill(fields, m.F_MODEL_NAME, labels.get(HOPS_MODEL))
    _fill(fields, m.F_MODEL_VERSION, labels.get(HOPS_VERSION))
    _fill(fields, m.F_PROJECT, namespace.replace("-", "_") if namespace else None)
    # Hopsworks' own (non-KServe) deployments label the component too
    _fill(fields, m.F_COMPONENT, labels.get(KSERVE_COMPONENT) if labels.get(KSERVE_COMPONENT) in COMPONENTS else None)


def merlin_prefix(labels: Mapping[str, str]) -> str | None:
    """The label prefix of a Merlin-managed pod (``gojek.com/``, possibly ``""``), or None."""
    for key, value in labels.items():
        if value == "merlin" and (key == MERLIN_ORCHESTRATOR or key.endswith("/" + MERLIN_ORCHESTRATOR)):
            return key[: -len(MERLIN_ORCHESTRATOR)]
    return None


def merlin_model_version(isvc: str, app: str | None = None) -> tuple[str, str] | None:
    """(model, version) from a Merlin InferenceService name ``<model>-<version>[-r<N>]``."""
    if app and isvc.startswith(app + "-"):
        exact = _MERLIN_VERSION_SUFFIX.match(isvc[len(app) + 1:])
        if exact:
            return app, exact["version"]
    guess = _MERLIN_ISVC.match(isvc)
    return (guess["model"], guess["version"]) if guess else None


def _merlin(fields: dict[str, Any], labels: Mapping[str, str], namespace: str) -> None:
    prefix = merlin_prefix(labels)
    if prefix is None:
        return
    app = labels.get(prefix + MERLIN_APP) or None
    isvc = labels.get(KSERVE_ISVC)
    parsed = merlin_model_version(isvc, app) if isvc else None
    _fill(fields, m.F_MODEL_NAME, app or (parsed[0] if parsed else None))
    _fill(fields, m.F_MODEL_VERSION, (parsed[1] if parsed else None) or labels.get(MERLIN_VERSION_ID))
    if not isvc:
        # image builders and batch jobs: Merlin's own component name (image-builder, batch-job)
        _fill(fields, m.F_COMPONENT, labels.get(prefix + MERLIN_COMPONENT))
    _fill(fields, m.F_PROJECT, namespace or None)


def _flag_value(args: Sequence[Any], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` in a container's command line."""
    for index, arg in enumerate(args):
        text = str(arg)
        if text.startswith(flag + "="):
            return text[len(flag) + 1:] or None
        if text == flag and index + 1 < len(args):
            return str(args[index + 1]) or None
    return None


def _served_model_name(pod: Mapping[str, Any]) -> str | None:
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or []:
        if isinstance(container, Mapping) and container.get("name") == KSERVE_CONTAINER:
            args = [*(container.get("command") or []), *(container.get("args") or [])]
            return _flag_value(args, "--model_name") or _flag_value(args, "--model-name")
    return None


def _names_from_knative_or_raw(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(isvc, component) from Knative service/configuration names or the raw-deployment app label."""
    for key in (KNATIVE_SERVICE, KNATIVE_CONFIGURATION):
        match = _SERVICE_NAME.match(labels.get(key, ""))
        if match:
            return match["isvc"], match["component"]
    app = labels.get(RAW_APP, "")
    if app.startswith("isvc."):
        match = _SERVICE_NAME.match(app[len("isvc."):])
        if match:
            return match["isvc"], match["component"]
    return None


def knative_generation(labels: Mapping[str, str]) -> str | None:
    """The Knative configuration generation of a serverless pod, as a string without zero padding."""
    generation = labels.get(KNATIVE_GENERATION, "")
    if generation.isdigit():
        return str(int(generation))
    match = _REVISION_GENERATION.match(labels.get(KNATIVE_REVISION, ""))
    return str(int(match["generation"])) if match else None


def _kserve(fields: dict[str, Any], pod: Mapping[str, Any], labels: Mapping[str, str],
            annotations: Mapping[str, str]) -> None:
    isvc = labels.get(KSERVE_ISVC) or labels.get(KFSERVING_ISVC)
    derived = _names_from_knative_or_raw(labels)
    if not isvc and derived is None:
        return
    _fill(fields, m.F_SERVING, isvc or (derived[0] if derived else None))
    _fill(fields, m.F_COMPONENT, (labels.get(KSERVE_COMPONENT) if isvc else None) or (derived[1] if derived else None))
    _fill(fields, m.F_MODEL_NAME, labels.get(KSERVE_MODEL_NAME) or annotations.get(KSERVE_MODEL_NAME))
    _fill(fields, m.F_MODEL_NAME, _served_model_name(pod))
    _fill(fields, m.F_MODEL_NAME, fields.get(m.F_SERVING))
    _fill(fields, m.F_MODEL_VERSION, labels.get(KSERVE_MODEL_VERSION) or annotations.get(KSERVE_MODEL_VERSION))
    _fill(fields, m.F_MODEL_VERSION, knative_generation(labels))


def fields_from_pod(pod: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Document fields for every line of this pod (the rules are in the module docstring)."""
    labels, annotations = pod_labels(pod), pod_annotations(pod)
    namespace = str(_meta(pod).get("namespace") or "")
    fields: dict[str, Any] = {}
    _custom(fields, labels, annotations, custom_fields or {})
    _hopsworks(fields, labels, namespace)
    _merlin(fields, labels, namespace)
    _kserve(fields, pod, labels, annotations)
    if labels:
        fields[m.F_LABELS] = labels
    return fields


def template_as_pod(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The pod a workload (apps/v1 Deployment, ReplicaSet) would create: its pod template, in its namespace."""
    spec = workload.get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    template = template if isinstance(template, Mapping) else {}
    template_spec = template.get("spec")
    return {"metadata": {**_meta(template), "namespace": _meta(workload).get("namespace")},
            "spec": dict(template_spec) if isinstance(template_spec, Mapping) else {}}


def isvc_as_pod(isvc: Mapping[str, Any], *, component: str | None = None, revision: str | None = None) -> dict[str, Any]:
    """The pod KServe would create for an InferenceService (one ``component``, one ``revision``), for the presets.

    KServe copies the InferenceService's labels and annotations to its pods, labels them with its name
    and the component, names their Knative revision after the component's (the given ``revision``, else
    the latest created one, else the latest ready one: its generation is the version), and runs the
    spec's ``kserve-container`` (or the model's ``args``). For when no pod exists (scaled to zero,
    failed before any pod was created) and for the history of the InferenceService itself.
    """
    meta = _meta(isvc)
    labels = pod_labels(isvc)
    labels.setdefault(KSERVE_ISVC, _text(meta.get("name") or ""))
    status = isvc.get("status")
    components = status.get("components") if isinstance(status, Mapping) else None
    own = components.get(component or "predictor") if isinstance(components, Mapping) else None
    own = own if isinstance(own, Mapping) else {}
    revision = revision or _text(own.get("latestCreatedRevision") or "") or _text(own.get("latestReadyRevision") or "")
    if revision and knative_generation({KNATIVE_REVISION: revision}) is not None:
        labels.setdefault(KNATIVE_REVISION, revision)
    if component:
        labels[KSERVE_COMPONENT] = component
    spec = isvc.get("spec")
    wanted = spec.get(component or "predictor") if isinstance(spec, Mapping) else None
    wanted = wanted if isinstance(wanted, Mapping) else {}
    containers = [dict(c) for c in wanted.get("containers") or [] if isinstance(c, Mapping)
                  and c.get("name") == KSERVE_CONTAINER]
    model = wanted.get("model")
    if not containers and isinstance(model, Mapping) and model.get("args"):
        containers = [{"name": KSERVE_CONTAINER, "args": model.get("args")}]
    return {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "labels": labels,
                         "annotations": pod_annotations(isvc)},
            "spec": {"containers": containers}}


def validate_custom_fields(custom_fields: Mapping[str, str]) -> list[str]:
    """Problems with a ``kubernetes.custom_fields`` mapping (empty when it is fine), for settings checks."""
    problems = []
    for field_name, source in custom_fields.items():
        kind, sep, key = source.partition(":")
        if not sep or kind not in CUSTOM_SOURCES or not key:
            problems.append(f"kubernetes.custom_fields.{field_name}: expected 'label:<key>' or 'annotation:<key>', "
                            f"got {source!r}")
        if field_name == m.F_LABELS:
            problems.append("kubernetes.custom_fields: 'labels' is reserved for the pod's label map")
    return problems


# -- pod shape -------------------------------------------------------------------------------------
def _names(containers: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(c["name"]) for c in containers if isinstance(c, Mapping) and c.get("name"))


def containers_of(pod: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(containers, init containers) of the pod, from its spec (or its status when the spec is absent)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = _names(spec.get("containers") or []) or _names(status.get("containerStatuses") or [])
    init = _names(spec.get("initContainers") or []) or _names(status.get("initContainerStatuses") or [])
    return containers, init


def is_excluded(pod: Mapping[str, Any], exclude_label: str) -> bool:
    """The pod opts out of collection: ``exclude_label`` (``key`` or ``key=value``) set to true / the value."""
    if not exclude_label:
        return False
    key, sep, wanted = exclude_label.partition("=")
    value = pod_labels(pod).get(key)
    if value is None:
        return False
    return value == wanted if sep else value.lower() == "true"


def pod_metadata(pod: Mapping[str, Any], *, custom_fields: Mapping[str, str] | None = None,
                 deleted: bool = False) -> m.PodMetadata:
    """The :class:`~collector.model.PodMetadata` of a raw pod."""
    meta = _meta(pod)
    containers, init_containers = containers_of(pod)
    return m.PodMetadata(uid=str(meta.get("uid") or ""), namespace=str(meta.get("namespace") or ""),
                         name=str(meta.get("name") or ""), fields=fields_from_pod(pod, custom_fields=custom_fields),
                         containers=containers, init_containers=init_containers, deleted=deleted)


# -- events ----------------------------------------------------------------------------------------
def event_time(event: Mapping[str, Any]) -> str | None:
    """When an Event happened: the first non-null of the places Kubernetes puts it.

    Kubelet events written through ``events.k8s.io/v1`` have ``eventTime`` null, scheduler events
    read through core/v1 may have ``firstTimestamp`` null, so no single field can be trusted.
    """
    series = event.get("series")
    observed = series.get("lastObservedTime") if isinstance(series, Mapping) else None
    for value in (event.get("eventTime"), observed, event.get("lastTimestamp"),
                  event.get("firstTimestamp"), _meta(event).get("creationTimestamp")):
        if value:
            return str(value)
    return None
