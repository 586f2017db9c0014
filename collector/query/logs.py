"""Which logs ``servelog logs`` reads, and from where: the components (transient) or OpenSearch (historical).

- ``--source opensearch``: the indexed logs, paged by (timestamp, doc_id) (:mod:`collector.query.reader`),
  followed with a trailing window (:mod:`collector.query.follow`); without a deployment name too.
- ``--source kubernetes``: straight from the deployment's running components through ``pods/log``
  (:mod:`collector.query.transient`, :mod:`collector.query.transient_follow`). A container waiting
  (``CrashLoopBackOff``...) after a termination is read from its previous instance, saying so on stderr
  once per container; ``--follow`` then follows its next instance from its first line when it starts.
- ``--source auto`` (the default): the components when some container of the deployment can be read,
  saying so on stderr; when nothing runs (idle, stopped, never started, no such deployment) or no
  cluster can be asked, OpenSearch, saying why, as the Hopsworks client does. Without a deployment
  name, OpenSearch (a search across deployments), silently.

Both sources print the same documents (the fields, ``doc_id`` and grouped tracebacks of the
collector) through the same ``emit``, with the same filters; ``--tail N`` is the last N lines within
``--since``/``--until`` and the filters (of each container instance read from the API: the server's
``tailLines`` when nothing else selects, else the newest N accepted while reading from ``--since``;
the newest N in OpenSearch), ``--limit`` caps what is printed:
from OpenSearch the oldest lines of ``--since`` (as before), from the components the newest (they hold
the recent past). The cluster is asked in ``-n/--namespace`` or the kubeconfig context's namespace.
OpenSearch is read in ``-n``'s namespace; without it, for a named deployment, in the namespace the
cluster found it in (``auto`` falling back for an idle or stopped deployment), else in the one namespace
its documents are in, refusing when they are in several (:func:`collector.query.reader.pin_namespace`,
exit status 6); without a deployment name, in every namespace (a search across deployments).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from collector import model as m
from collector.deployment import Status, deployment_state
from collector.errors import KubeError
from collector.query import cluster
from collector.query.connections import Connections
from collector.query.follow import Follower
from collector.query.reader import LogReader, pin_namespace
from collector.query.search import LogQuery, check_time, when_ns
from collector.query.terminal import NoCluster, NotFound, explain
from collector.query.transient import Emit, Stream, accepts, merged, read_streams, streams_of
from collector.query.transient_follow import TransientFollower
from collector.sources import assembler_options

SOURCES = ("auto", "kubernetes", "opensearch")


@dataclass(frozen=True, slots=True)
class LogRequest:
    """What the user asked ``servelog logs`` (or ``Deployment.logs``) for."""

    query: LogQuery
    source: str = "auto"
    tail: int | None = None
    previous: bool = False
    limit: int = 1000
    follow: bool = False
    follow_window: float = 60.0
    poll_seconds: float = 2.0
    index: str = m.LOG_INDEX_PATTERN

    def check(self) -> None:
        """Usage errors (:class:`ValueError`, exit status 2), before anything is asked."""
        if self.source not in SOURCES:
            raise ValueError(f"--source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.follow and self.query.until:
            raise ValueError("--follow and --until exclude each other")
        if self.previous and self.source == "opensearch":
            raise ValueError("--previous reads a container's previous instance through the API: use --source "
                             "kubernetes (OpenSearch holds every instance: filter with --since/--until)")
        if self.source == "kubernetes" and not self.query.serving_name:
            raise ValueError("--source kubernetes reads one deployment: name it (servelog logs SERVING ...)")
        check_time("--since", self.query.since)
        check_time("--until", self.query.until)
        if (self.tail is not None and self.tail < 0) or self.limit < 0:
            raise ValueError("--tail and --limit take a number of lines (0 or more)")
        if self.query.serving_name:
            cluster.check_name(self.query.serving_name)


def read_logs(request: LogRequest, connections: Connections, emit: Emit, *, note: Callable[[str], None],
              warn: Callable[[str], None], stop: threading.Event | None = None) -> str:
    """Emit the logs ``request`` asks for from the source it names or ``auto`` picks; the source read."""
    request.check()
    query = request.query
    name = query.serving_name
    if request.source == "opensearch" or (request.source == "auto" and not name):
        _from_opensearch(request, connections, emit, warn)
        return "opensearch"
    assert name is not None
    settings = connections.settings
    custom = settings.kubernetes.custom_fields
    try:
        client = connections.kube()
        namespace = connections.namespace(query.namespace)
        pods = cluster.read_pods(client, name, namespace, custom)
    except (NoCluster, KubeError) as exc:
        if request.source == "kubernetes":
            raise
        note(f"{explain(exc)}: reading the historical logs from OpenSearch")
        _from_opensearch(request, connections, emit, warn)
        return "opensearch"

    told: set[tuple[str, str]] = set()

    def select(found: list[dict[str, Any]]) -> list[Stream]:
        return streams_of(found, component=query.component, container=query.container_name, pod_name=query.pod_name,
                          previous=request.previous, excluded=settings.pipeline.exclude_containers, custom_fields=custom)

    def tell_waiting(chosen: list[Stream]) -> list[Stream]:
        for stream in chosen:  # once per container, at the start and when --follow finds it re-listing
            where = (stream.target.pod_name, stream.target.container)
            if stream.waiting and where not in told:
                told.add(where)
                note(f"{where[0]}: {where[1]} is waiting ({stream.waiting}): reading its previous instance")
        return chosen

    streams = select(pods)
    if streams:
        if request.source == "auto":
            pods_read = sorted({s.target.pod_name for s in streams})
            components = sorted({str(s.fields.get(m.F_COMPONENT) or "?") for s in streams})
            note(f"reading the transient logs of {len(pods_read)} pod{'s' if len(pods_read) != 1 else ''} of {name} "
                 f"({', '.join(components)}) in namespace {namespace} from its running components through the "
                 "Kubernetes API; --source opensearch reads the historical logs")
        tell_waiting(streams)
        _from_kubernetes(request, connections, client, streams,
                         lambda: tell_waiting(select(cluster.read_pods(client, name, namespace, custom))), emit, warn, stop)
        return "kubernetes"
    why, found = _nothing_to_read(request, connections, client, name, namespace, pods)
    if request.source == "kubernetes":
        raise NotFound(why)
    note(f"{why}: reading its historical logs from OpenSearch")
    _from_opensearch(request, connections, emit, warn, namespace=namespace if found else None)
    return "opensearch"


def _nothing_to_read(request: LogRequest, connections: Connections, client: cluster.ClusterApi, name: str,
                     namespace: str, pods: list[dict[str, Any]]) -> tuple[str, bool]:
    """Why no container of the deployment can be read, in the words of its state; whether it exists there."""
    query = request.query
    if pods:
        if request.previous:
            return f"no container of {name} has a previous instance (none restarted)", True
        if query.component or query.container_name or query.pod_name:
            wanted = ", ".join(f"{k} {v}" for k, v in (("component", query.component), ("container", query.container_name),
                                                       ("pod", query.pod_name)) if v)
            return f"no running container of {name} matches {wanted}", True
    custom = connections.settings.kubernetes.custom_fields
    shot = cluster.snapshot(client, name, namespace, custom_fields=custom)
    state = deployment_state(shot.isvc, shot.pods, shot.events, now=datetime.now(UTC), serving_name=name,
                             namespace=namespace, last_logs=shot.last_logs, deployments=shot.deployments,
                             custom_fields=custom)
    if not state.found:
        return f"no deployment named {name} in namespace {namespace} (no InferenceService, pod, Deployment or event)", False
    if state.status is Status.IDLE:
        return f"{name} is IDLE: scaled to zero, no instance is running", True
    if state.status in (Status.STOPPED, Status.CREATED, Status.STOPPING):
        return f"{name} is {state.status}: no instance is running", True
    condition = state.condition
    return (f"{name} is {state.status} ({condition.type} {condition.status}: {condition.reason}): no container has "
            "started"), True


def _times(request: LogRequest) -> tuple[int | None, int | None]:
    now = time.time_ns()
    since = when_ns(request.query.since, now) if request.query.since else None
    until = when_ns(request.query.until, now) if request.query.until else None
    return since, until


def _from_kubernetes(request: LogRequest, connections: Connections, client: Any, streams: list[Stream],
                     relist: Callable[[], list[Stream]], emit: Emit, warn: Callable[[str], None],
                     stop: threading.Event | None) -> None:
    settings = connections.settings
    since_ns, until_ns = _times(request)
    accept = accepts(request.query, since_ns=since_ns, until_ns=until_ns)
    options = assembler_options(settings)
    timeout = settings.kubernetes.log_request_timeout_seconds
    filtering = request.query.level is not None or request.query.text is not None
    if request.follow:
        tail = request.tail if request.tail is not None else (request.limit or None)
        TransientFollower(client, relist, options, emit, warn=warn, accept=accept,
                          tail=tail, since_ns=since_ns, request_timeout=timeout, poll_seconds=request.poll_seconds,
                          stop=stop).run(initial=streams)
        return
    # the last --tail (else --limit) lines of each container: the server's tailLines when nothing else selects;
    # with --until or a filter (which pods/log cannot apply) every line from --since, the newest accepted kept
    wanted = request.tail if request.tail is not None else (request.limit or None)
    selecting = filtering or until_ns is not None
    per_stream = read_streams(client, streams, options, warn=warn, tail=None if selecting else wanted,
                              since_ns=since_ns, request_timeout=timeout, accept=accept if selecting else None,
                              keep_last=wanted if selecting else None)
    for hit in merged(per_stream, accept=accept, limit=request.limit):
        emit(hit)


def _from_opensearch(request: LogRequest, connections: Connections, emit: Emit, warn: Callable[[str], None], *,
                     namespace: str | None = None) -> None:
    """The historical logs; ``namespace``: where the cluster found the deployment (when ``-n`` was not given)."""
    reader = LogReader(connections.opensearch(), request.index)
    query = request.query if request.query.namespace or not namespace else replace(request.query, namespace=namespace)
    query = pin_namespace(reader, query, what="logs")
    if request.follow:
        first = request.tail if request.tail is not None else request.limit
        Follower(reader, query, emit, warn=warn, window_ns=int(request.follow_window * 1e9),
                 poll_seconds=request.poll_seconds).run(first)
    elif request.tail is not None:
        for hit in reader.newest(query, request.tail) if request.tail else []:
            emit(hit)
    else:
        for hit in reader.pages(query, limit=request.limit):
            emit(hit)
