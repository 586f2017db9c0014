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
- its **recent events**: the namespace's Events (Kubernetes keeps them about an hour), kept when they
  are about this deployment's objects, decided by the history source's own index
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
from collector.errors import KubeError, KubeRejected
from collector.kube import presets
from collector.sources.history.owners import ServingIndex

LAST_LINES = 10  # lines of a crashed container's log the state shows
MOST_CRASH_LOGS = 8  # pods/log requests for last lines, at most (ten crash-looping replicas say the same)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ClusterApi(Protocol):
    """What this module needs from :class:`collector.kube.client.KubeClient`."""

    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any]: ...

    def list_pods(self, *, field_selector: str = "", label_selector: str = "",
                  namespace: str | None = None) -> tuple[list[dict[str, Any]], str]: ...

    def list_deployments(self, namespace: str, *, label_selector: str = "") -> tuple[list[dict[str, Any]], str]: ...

    def list_events(self, *, namespace: str | None = None, field_selector: str = "",
                    api: str = ...) -> tuple[list[dict[str, Any]], str]: ...

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


def read_events(api: ClusterApi, name: str, namespace: str, isvc: Mapping[str, Any] | None,
                pods: Sequence[Mapping[str, Any]], deployments: Sequence[Mapping[str, Any]] = (),
                custom_fields: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        listed, _ = api.list_events(namespace=namespace)
    except KubeRejected as exc:
        if exc.status != 403:
            raise
        return [], [f"events cannot be read ({exc}): reasons come from pod and InferenceService status only"]
    return deployment_events(listed, name=name, namespace=namespace, isvc=isvc, pods=pods, deployments=deployments,
                             custom_fields=custom_fields), []


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
