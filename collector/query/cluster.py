"""One deployment read from the live cluster: the I/O edge of ``servelog status`` and of ``logs --source kubernetes``.

What :func:`collector.deployment.deployment_state` needs, fetched as raw JSON through
:mod:`collector.kube.client` (tolerant like the history source: a 403 on one kind of object is a
note, not a failure, as long as the pods can be read):

- the **InferenceService** (custom-objects API). A 404 means there is none of that name, or no KServe
  CRD at all: the state is then read from pods, events and apps/v1 **Deployments** alone;
- the deployment's **pods**, by the labels the enrichment presets read (:mod:`collector.kube.presets`):
  KServe's ``serving.kserve.io/inferenceservice`` (Merlin's pods carry it too), KFServing's,
  Hopsworks' ``serving.hops.works/name`` (and its pre-3.0 ``serving-name``), and a
  ``kubernetes.custom_fields`` label mapped to ``serving_name``; a pod counts when the presets give it
  this serving name, so a pod is this deployment's exactly when its log lines say so;
- its **recent events** (Kubernetes keeps them about an hour), read bounded, never the namespace's
  whole list: one field-selected list (``involvedObject.name=<name>``) per object of the deployment
  known by name (the InferenceService, its components and revisions and their Deployments, the pods'
  ReplicaSets, Deployments and Knative objects, Deployments without KServe, then the pods, failing ones
  first; at most :data:`MOST_EVENT_OBJECTS`), and one list of the namespace's ``type=Warning`` events for
  objects whose names are gone or unknown (the pods of a revision scaled back to zero, a ReplicaSet that
  could not create one); each list paged (``limit`` + ``continue``), all of them together reading at
  most :data:`MOST_EVENTS` events (warnings: :data:`MOST_WARNINGS`) in :data:`MOST_EVENT_REQUESTS`
  requests (a server may answer a selected list with short pages). What was cut is a note ("partial").
  The events kept are those about this deployment's objects, decided by the history source's own index
  (:class:`collector.sources.history.owners.ServingIndex`: pods, their ReplicaSets and Deployments,
  Knative revisions and configurations, the InferenceService, KServe's naming for the rest);
- the **last lines of crashed containers**: ``pods/log`` with ``tailLines``, ``previous=true`` for the
  instance that ended before the current one (crash-looping), ``previous=false`` for a container that
  is terminated now (a failed ``storage-initializer``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from collector import model as m
from collector.errors import KubeError, KubeGone, KubeRejected
from collector.kube import presets
from collector.kube.streams import ListPage
from collector.sources.history.owners import ServingIndex, owner_names, pod_document_fields

LAST_LINES = 10  # lines of a crashed container's log the state shows
MOST_CRASH_LOGS = 8  # pods/log requests for last lines, at most (ten crash-looping replicas say the same)
EVENT_PAGE = 100  # events per list page
MOST_EVENTS = 1000  # events read at most for one status, every list together
MOST_WARNINGS = 300  # of which the namespace's Warning events (other deployments' included), at most
MOST_EVENT_OBJECTS = 40  # objects whose events are listed by name, at most (one list each)
MOST_EVENT_REQUESTS = 120  # event list requests, at most (a selected list's pages may hold few events, or none)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ClusterApi(Protocol):
    """What this module needs from :class:`collector.kube.client.KubeClient`."""

    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any]: ...

    def list_pods(self, *, field_selector: str = "", label_selector: str = "",
                  namespace: str | None = None) -> tuple[list[dict[str, Any]], str]: ...

    def list_deployments(self, namespace: str, *, label_selector: str = "") -> tuple[list[dict[str, Any]], str]: ...

    def list_events_page(self, *, continue_token: str = "", limit: int = ..., resource_version: str = "",
                         namespace: str | None = None, field_selector: str = "", api: str = ...) -> ListPage: ...

    def stream_pod_log(self, namespace: str, pod: str, *, container: str, follow: bool, timestamps: bool,
                       since_time: str | None, previous: bool, request_timeout: float,
                       limit_bytes: int | None = None, tail_lines: int | None = None) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read about one deployment, and what could not be read (``notes``, for stderr)."""

    name: str
    namespace: str
    isvc: dict[str, Any] | None
    pods: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]
    deployments: tuple[dict[str, Any], ...] = ()
    last_logs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def check_name(name: str) -> None:
    """A deployment name must be a label value (every platform's name is): refuse others before asking the API."""
    if not _LABEL_VALUE.match(name):
        raise ValueError(f"{name!r} is not a deployment name (at most 63 letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit)")


def serving_selectors(name: str, custom_fields: Mapping[str, str] | None = None) -> list[str]:
    """Label selectors that find the pods (and Deployments) of deployment ``name`` (pure)."""
    selectors = [f"{presets.KSERVE_ISVC}={name}", f"{presets.KFSERVING_ISVC}={name}", f"{presets.HOPS_NAME}={name}",
                 f"{presets.HOPS_NAME_OLD}={name}"]
    kind, _, key = (custom_fields or {}).get(m.F_SERVING, "").partition(":")
    if kind == "label" and key:
        selectors.insert(0, f"{key}={name}")
    return selectors


def belongs(obj: Mapping[str, Any], name: str, custom_fields: Mapping[str, str] | None = None) -> bool:
    """Whether the presets give this pod (or pod template) the serving name ``name`` (pure)."""
    return presets.fields_from_pod(obj, custom_fields=custom_fields).get(m.F_SERVING) == name


def _by_selectors(list_once: Any, name: str, custom_fields: Mapping[str, str] | None) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for selector in serving_selectors(name, custom_fields):
        for obj in list_once(selector):
            meta = obj.get("metadata") or {}
            found.setdefault(str(meta.get("uid") or meta.get("name")), obj)
    return sorted(found.values(), key=lambda o: str((o.get("metadata") or {}).get("name") or ""))


def read_pods(api: ClusterApi, name: str, namespace: str,
              custom_fields: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The deployment's pods (any component, revision or phase), sorted by name."""
    pods = _by_selectors(lambda s: api.list_pods(namespace=namespace, label_selector=s)[0], name, custom_fields)
    return [p for p in pods if belongs(p, name, custom_fields)]


def read_deployments(api: ClusterApi, name: str, namespace: str,
                     custom_fields: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """apps/v1 Deployments whose pods would be this deployment's (a KServe-less deployment's desired replicas)."""
    found = _by_selectors(lambda s: api.list_deployments(namespace, label_selector=s)[0], name, custom_fields)
    return [d for d in found if belongs(presets.template_as_pod(d), name, custom_fields) or belongs(d, name, custom_fields)]


def read_isvc(api: ClusterApi, name: str, namespace: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The InferenceService, or None (none of that name, no CRD, or not readable: then a note says so)."""
    try:
        return api.get_inferenceservice(namespace, name), []
    except KubeRejected as exc:
        if exc.status == 404:
            return None, []
        if exc.status == 403:
            return None, [f"InferenceServices cannot be read ({exc}): the state is read from pods and events only"]
        raise


def _involved(event: Mapping[str, Any]) -> Mapping[str, Any]:
    found = event.get("involvedObject") or event.get("regarding") or {}
    return found if isinstance(found, Mapping) else {}


def _owned_by(involved: Mapping[str, Any], deployments: Sequence[Mapping[str, Any]]) -> bool:
    """An event about one of these Deployments or their ReplicaSets (``<deployment>-<pod-template-hash>``)."""
    kind, name = involved.get("kind"), str(involved.get("name") or "")
    names = {str((d.get("metadata") or {}).get("name") or "") for d in deployments} - {""}
    if kind == "Deployment":
        return name in names
    return kind == "ReplicaSet" and any(name.startswith(n + "-") and "-" not in name[len(n) + 1:] for n in names)


def deployment_events(events: Sequence[Mapping[str, Any]], *, name: str, namespace: str, isvc: Mapping[str, Any] | None,
                      pods: Sequence[Mapping[str, Any]], deployments: Sequence[Mapping[str, Any]] = (),
                      custom_fields: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The events about this deployment's objects, in the order listed (pure)."""
    index = ServingIndex(custom_fields=custom_fields)
    for pod in pods:
        index.update_pod("LISTED", pod)
    index.list_done()
    if isvc is not None:
        index.update_isvc("LISTED", isvc)
    kept = []
    for event in events:
        involved = _involved(event)
        fields = index.resolve(kind=str(involved.get("kind") or ""), namespace=str(involved.get("namespace") or namespace),
                               name=str(involved.get("name") or ""), uid=str(involved.get("uid") or ""))
        if (fields is not None and fields.get(m.F_SERVING) == name) or _owned_by(involved, deployments):
            kept.append(dict(event))
    return kept


def _failing_first(pod: Mapping[str, Any]) -> tuple[bool, str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    healthy = bool(statuses) and all(cs.get("ready") and not cs.get("restartCount") for cs in statuses)
    return healthy, str((pod.get("metadata") or {}).get("name") or "")


def event_objects(name: str, isvc: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]],
                  deployments: Sequence[Mapping[str, Any]] = (),
                  custom_fields: Mapping[str, str] | None = None) -> list[str]:
    """Names of the deployment's objects whose events are listed, the deployment-wide ones first (pure)."""
    found: dict[str, None] = {name: None}
    status = (isvc or {}).get("status") or {}
    components = {*((isvc or {}).get("spec") or {}), *(status.get("components") or {}), "predictor"} if isvc else set()
    for component in sorted(c for c in components if c in ("predictor", "transformer", "explainer")):
        found.setdefault(f"{name}-{component}")
        spec = (status.get("components") or {}).get(component) or {}
        revisions = {spec.get("latestCreatedRevision"), spec.get("latestReadyRevision"),
                     *((t or {}).get("revisionName") for t in spec.get("traffic") or [])}
        for revision in sorted(str(r) for r in revisions if r):
            found.update({revision: None, f"{revision}-deployment": None})  # Knative names a revision's Deployment so
    for deployment in deployments:
        found.setdefault(str((deployment.get("metadata") or {}).get("name") or ""))
    for pod in pods:
        found.update(dict.fromkeys(owner_names(pod, pod_document_fields(pod, custom_fields=custom_fields))))
    for pod in sorted(pods, key=_failing_first):
        found.setdefault(str((pod.get("metadata") or {}).get("name") or ""))
    found.pop("", None)
    return list(found)


@dataclass(slots=True)
class _Budget:
    """What the event lists of one status may still read: events, and requests (a selector's pages may be short)."""

    events: int = MOST_EVENTS
    requests: int = MOST_EVENT_REQUESTS


def _list_bounded(api: ClusterApi, namespace: str, selector: str, budget: _Budget,
                  most: int | None = None) -> tuple[list[dict[str, Any]], bool]:
    """The events ``selector`` picks, paged, within ``budget`` (and ``most``); whether the list was cut."""
    got: list[dict[str, Any]] = []
    token = ""
    while True:
        room = min(budget.events, most if most is not None else budget.events) - len(got)
        if room <= 0 or budget.requests <= 0:
            return got, True
        budget.requests -= 1
        try:
            page = api.list_events_page(namespace=namespace, field_selector=selector, continue_token=token,
                                        limit=min(EVENT_PAGE, room))
        except KubeGone:  # the continue token expired meanwhile: what was read will do
            return got, True
        got += page.items[:room]
        token = page.continue_token
        if not token:
            budget.events -= len(got)
            return got, False
        if len(page.items) >= room:
            budget.events -= len(got)
            return got, True


def read_events(api: ClusterApi, name: str, namespace: str, isvc: Mapping[str, Any] | None,
                pods: Sequence[Mapping[str, Any]], deployments: Sequence[Mapping[str, Any]] = (),
                custom_fields: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The deployment's recent events, read bounded (see the module docstring), and notes on what was cut."""
    objects = event_objects(name, isvc, pods, deployments, custom_fields)
    selectors = [f"involvedObject.name={n}" for n in objects[:MOST_EVENT_OBJECTS]]
    listed: dict[str, dict[str, Any]] = {}
    budget = _Budget()
    cut: list[str] = []
    try:
        for selector in selectors:
            items, partial = _list_bounded(api, namespace, selector, budget)
            listed.update((str((e.get("metadata") or {}).get("uid") or id(e)), e) for e in items)
            if partial:
                cut.append(f"{selector.partition('=')[2]}'s")
        warnings, partial = _list_bounded(api, namespace, "type=Warning", budget, MOST_WARNINGS)
        listed.update((str((e.get("metadata") or {}).get("uid") or id(e)), e) for e in warnings)
        if partial:
            cut.append("the namespace's Warning")
    except KubeRejected as exc:
        if exc.status != 403:
            raise
        return [], [f"events cannot be read ({exc}): reasons come from pod and InferenceService status only"]
    notes = []
    if len(objects) > MOST_EVENT_OBJECTS:
        notes.append(f"partial events: those of {len(objects) - MOST_EVENT_OBJECTS} of the deployment's "
                     f"{len(objects)} objects were not read (at most {MOST_EVENT_OBJECTS})")
    if cut:
        notes.append(f"partial events: {', '.join(cut[:3])}{' and more' if len(cut) > 3 else ''} events were read only "
                     f"in part (at most {MOST_EVENTS} events, {MOST_WARNINGS} warnings, {MOST_EVENT_REQUESTS} "
                     "requests): a cause may be missing")
    ordered = sorted(listed.values(), key=lambda e: presets.event_time(e) or "")
    return deployment_events(ordered, name=name, namespace=namespace, isvc=isvc, pods=pods, deployments=deployments,
                             custom_fields=custom_fields), notes


def crashed_instances(pod: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(container, previous) of each container instance that ended badly and whose log may say why (pure).

    ``previous`` is True for the instance before the current one (a container restarting after a
    crash), False for a container that is terminated now (an init container that failed).
    """
    status = pod.get("status") or {}
    found: list[tuple[str, bool]] = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            name = str(cs.get("name") or "")
            now = (cs.get("state") or {}).get("terminated")
            last = (cs.get("lastState") or {}).get("terminated")
            if now and (now.get("exitCode") or 0) != 0:
                found.append((name, False))
            elif last and ((last.get("exitCode") or 0) != 0 or last.get("reason") == "OOMKilled"):
                found.append((name, True))
    return found


def read_last_lines(api: ClusterApi, pods: Sequence[Mapping[str, Any]], namespace: str, *, tail: int = LAST_LINES,
                    request_timeout: float = 30.0) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """The last ``tail`` lines of each crashed container instance, keyed ``"<pod>/<container>"``."""
    wanted = [(str((p.get("metadata") or {}).get("name")), c, prev) for p in pods for c, prev in crashed_instances(p)]
    logs: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    for pod_name, container, previous in wanted[:MOST_CRASH_LOGS]:
        try:
            stream = api.stream_pod_log(namespace, pod_name, container=container, follow=False, timestamps=False,
                                        since_time=None, previous=previous, request_timeout=request_timeout,
                                        tail_lines=tail)
            data = b"".join(stream)
        except KubeRejected as exc:
            if exc.status not in (400, 404):  # that instance's log is gone: the termination message has to do
                notes.append(f"the last lines of {pod_name}/{container} cannot be read: {exc}")
            continue
        except KubeError as exc:
            notes.append(f"the last lines of {pod_name}/{container} cannot be read: {exc}")
            continue
        lines = tuple(data.decode("utf-8", "replace").splitlines())
        if lines:
            logs[f"{pod_name}/{container}"] = lines
    return logs, notes


def snapshot(api: ClusterApi, name: str, namespace: str, *, custom_fields: Mapping[str, str] | None = None,
             request_timeout: float = 30.0) -> Snapshot:
    """Read one deployment (see the module docstring); raises :class:`~collector.errors.KubeError` when the
    pods cannot be read (no answer, refused) or the API fails otherwise."""
    check_name(name)
    isvc, notes = read_isvc(api, name, namespace)
    pods = read_pods(api, name, namespace, custom_fields)
    deployments: list[dict[str, Any]] = []
    if isvc is None:
        try:
            deployments = read_deployments(api, name, namespace, custom_fields)
        except KubeRejected as exc:
            if exc.status != 403:
                raise
            notes.append(f"Deployments cannot be read ({exc}): desired replicas are counted from pods")
    events, event_notes = read_events(api, name, namespace, isvc, pods, deployments, custom_fields)
    last_logs, log_notes = read_last_lines(api, pods, namespace, request_timeout=request_timeout)
    return Snapshot(name=name, namespace=namespace, isvc=isvc, pods=tuple(pods), events=tuple(events),
                    deployments=tuple(deployments), last_logs=last_logs, notes=(*notes, *event_notes, *log_notes))
