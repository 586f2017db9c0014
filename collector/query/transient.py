"""Transient logs: a deployment's lines read straight from its components through ``pods/log``.

``servelog logs SERVING --source kubernetes`` (and ``--source auto`` while something runs). What is read:
every pod of the deployment (``--component``, ``--pod``), every container (``--container``; by default
all but ``pipeline.exclude_containers``, as the collector), the instance the kubelet serves for it
(the running one, a terminated one, or for a container waiting (``CrashLoopBackOff``...) with a previous
termination the one that ended, read with ``previous=true``: the current one has no output; the
stream's ``waiting`` says why, for the caller to tell the user), or with ``--previous`` the instance before it.

**The same documents as in OpenSearch.** Each instance's stream goes through the collector's own line
assembler (``kubelet_api=True``) with the fields the enrichment presets give its pod, so a line read
here has the ``doc_id``, ``level``, model fields and grouped traceback it has once indexed, and the
output format and filters are the OpenSearch source's.

**Resuming without loss or repeat** is the API source's logic (:mod:`collector.sources.kubernetes.source`,
reused, not copied): ``sinceTime`` has whole-second precision, so a reconnect asks for the whole
second of the last position and a fresh assembler recomputes the identities of that second, (pod,
container, restart, timestamp ns, ordinal among lines sharing it), skipping through the last line
emitted (``skip_through``). Lines sharing the boundary timestamp are neither lost nor repeated.

Reading is per instance; lines of several instances are merged by timestamp: exactly when reading
what exists (:func:`read_streams`), within a short reorder delay when following
(:mod:`collector.query.transient_follow`).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from collector import model as m
from collector.errors import KubeError, KubeRejected
from collector.kube import presets
from collector.query.search import LogQuery
from collector.sources.kubernetes.source import API_FILE_ID, since_time_for, skip_through_for, split_lines
from collector.sources.kubernetes.targets import LogTarget, targets_of_pod
from collector.transforms.assembler import AssemblerOptions, LineAssembler, Position
from collector.transforms.cri import parse_timestamp
from collector.transforms.enrich import merge_pod_fields, path_fields

Hit = dict[str, Any]  # {"_index", "_id", "_source"}: the shape of an OpenSearch hit
Emit = Callable[[Hit], None]


class LogStreamer(Protocol):
    """What reading needs from :class:`collector.kube.client.KubeClient`."""

    def stream_pod_log(self, namespace: str, pod: str, *, container: str, follow: bool, timestamps: bool,
                       since_time: str | None, previous: bool, request_timeout: float,
                       limit_bytes: int | None = None, tail_lines: int | None = None) -> Iterable[bytes]: ...


@dataclass(frozen=True, slots=True)
class Stream:
    """One container instance to read, and the document fields its lines share."""

    target: LogTarget
    fields: Mapping[str, Any]
    waiting: str = ""  # why the previous instance is read without --previous: the current one waits (its reason)

    @property
    def key(self) -> str:
        return self.target.key

    @property
    def label(self) -> str:
        return f"{self.target.pod_name}/{self.target.container}"


def _served_instance(targets: list[LogTarget], container: str, previous: bool) -> LogTarget | None:
    """The instance the kubelet serves for a container: with ``previous``, the one before the current; else the
    current (running or terminated), or for a container waiting to restart, the last one that ran."""
    mine = [t for t in targets if t.container == container]
    if previous:
        return next((t for t in mine if t.previous), None)
    return next((t for t in mine if not t.previous), None) or next((t for t in mine if t.previous), None)


def waiting_reason(pod: Mapping[str, Any], container: str) -> str:
    """The reason a container of this pod is waiting (``CrashLoopBackOff``...), ``""`` when it is not (pure)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                waiting = (cs.get("state") or {}).get("waiting")
                return str(waiting.get("reason") or "waiting") if isinstance(waiting, Mapping) else ""
    return ""


def streams_of(pods: Sequence[Mapping[str, Any]], *, component: str | None = None, container: str | None = None,
               pod_name: str | None = None, previous: bool = False, excluded: Iterable[str] = (),
               custom_fields: Mapping[str, str] | None = None) -> list[Stream]:
    """The container instances to read of these pods (pure; pods in the order given)."""
    skip = set() if container else set(excluded)
    found = []
    for pod in pods:
        metadata = presets.pod_metadata(pod, custom_fields=custom_fields)
        if (component and metadata.fields.get(m.F_COMPONENT) != component) or (pod_name and metadata.name != pod_name):
            continue
        targets = targets_of_pod(pod)
        names = dict.fromkeys(t.container for t in targets)
        for name in names:
            if (container and name != container) or name in skip:
                continue
            target = _served_instance(targets, name, previous)
            if target is None:
                continue
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            base = path_fields(namespace=target.namespace, pod_name=target.pod_name, pod_uid=target.pod_uid,
                               container=target.container, restart_count=target.restart_count, node_name=node)
            waiting = waiting_reason(pod, name) if target.previous and not previous else ""
            found.append(Stream(target, merge_pod_fields(base, metadata, "kubernetes"), waiting))
    return found


def hit_of(piece: bytes) -> Hit:
    """The assembler's encoded bulk action and document, as a search hit."""
    action, _, source = piece.partition(b"\n")
    meta = orjson.loads(action)["create"]
    return {"_index": meta["_index"], "_id": meta["_id"], "_source": orjson.loads(source)}


def hit_ns(hit: Hit) -> int:
    parsed = parse_timestamp(str(hit["_source"].get(m.F_TIMESTAMP) or ""))
    return parsed[0] if parsed else 0


def whole_second(ts_ns: int | None) -> str | None:
    """``sinceTime`` for a start at ``ts_ns``: the server reads whole seconds, the rest is filtered here."""
    return None if ts_ns is None else since_time_for(Position(API_FILE_ID, 0, ts_ns, 1))


def accepts(query: LogQuery, *, since_ns: int | None = None, until_ns: int | None = None) -> Callable[[Hit], bool]:
    """The OpenSearch source's filters, on a document read here (``--grep``: case-insensitive substring)."""
    wanted = [(m.F_MODEL_NAME, query.model_name), (m.F_MODEL_VERSION, query.model_version), (m.F_LEVEL, query.level)]
    wanted = [(k, v) for k, v in wanted if v is not None]
    text = query.text.casefold() if query.text else None

    def accept(hit: Hit) -> bool:
        source = hit["_source"]
        if any(str(source.get(k)) != v for k, v in wanted):
            return False
        if text is not None and text not in str(source.get(m.F_MESSAGE, "")).casefold():
            return False
        if since_ns is not None or until_ns is not None:
            ts = hit_ns(hit)
            if (since_ns is not None and ts < since_ns) or (until_ns is not None and ts >= until_ns):
                return False
        return True
    return accept


class StreamReader:
    """Reads one container instance's ``pods/log`` into documents; each :meth:`read` is one connection.

    The first connection asks for ``tail`` lines (and ``since_ns``, to the whole second); each later one
    resumes at the last position (see the module docstring). :meth:`abort` (any thread) ends a read,
    :meth:`flush_idle` (any thread) closes a traceback group the stream left open while idle.
    """

    def __init__(self, client: LogStreamer, stream: Stream, options: AssemblerOptions, emit: Emit, *,
                 tail: int | None = None, since_ns: int | None = None, request_timeout: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.stream, self.options, self.emit = client, stream, options, emit
        self.tail, self.since_ns, self.request_timeout, self.clock = tail, since_ns, request_timeout, clock
        self.last_position: Position | None = None
        self.documents = 0
        self.lock = threading.Lock()
        self._connections = 0
        self._assembler: LineAssembler | None = None
        self._response: Any = None
        self._aborted = False
        self._idle_since = clock()

    def _emit(self, piece: bytes, position: Position) -> None:
        self.last_position = position
        self.documents += 1
        self.emit(hit_of(piece))

    def read(self, *, follow: bool) -> None:
        """One connection, read to its end (a :class:`~collector.errors.KubeError` when it broke)."""
        target = self.stream.target
        resume = self.last_position is not None
        assembler = LineAssembler(
            options=self.options, pod_uid=target.pod_uid, container=target.container,
            restart_count=target.restart_count, fields=self.stream.fields, emit=self._emit,
            start=Position(API_FILE_ID, 0, 0, 0), skip_through=skip_through_for(self.last_position), kubelet_api=True)
        response = self.client.stream_pod_log(
            target.namespace, target.pod_name, container=target.container, follow=follow and not target.finished,
            timestamps=True, since_time=since_time_for(self.last_position) if resume else whole_second(self.since_ns),
            previous=target.previous, request_timeout=self.request_timeout,
            tail_lines=self.tail if self._connections == 0 else None)  # later: nothing came, so nothing was cut
        self._connections += 1
        with self.lock:
            if self._aborted:
                _close(response)
                return
            self._assembler, self._response = assembler, response
        try:
            for lines in split_lines(response):
                with self.lock:
                    assembler.feed_lines(lines, start_offset=0)
                    self._idle_since = self.clock()
        finally:
            _close(response)
            with self.lock:
                self._assembler = self._response = None
        with self.lock:
            if not self._aborted and not getattr(response, "aborted", False):
                assembler.flush()  # the stream ended: what is open is complete

    def flush_idle(self, idle_seconds: float) -> None:
        """Emit a traceback group left open by a stream idle for ``idle_seconds`` (the next line may never come)."""
        with self.lock:
            assembler = self._assembler
            if assembler is not None and assembler.has_pending() and self.clock() - self._idle_since >= idle_seconds:
                assembler.flush(partial_lines=False)

    def abort(self) -> None:
        with self.lock:
            self._aborted = True
            response = self._response
        if response is not None:
            _close(response)


def _close(response: Any) -> None:
    close = getattr(response, "close", None)
    if callable(close):
        close()


def read_streams(client: LogStreamer, streams: Sequence[Stream], options: AssemblerOptions, *,
                 warn: Callable[[str], None], tail: int | None = None, since_ns: int | None = None,
                 request_timeout: float = 60.0, attempts: int = 3, accept: Callable[[Hit], bool] | None = None,
                 keep_last: int | None = None, sleep: Callable[[float], None] = time.sleep) -> list[list[Hit]]:
    """Every stream read to its end (a dropped connection resumes, ``attempts`` times): the documents of each.

    ``tail`` is the server's ``tailLines`` (the last lines before any filter); ``accept`` filters the
    documents here and ``keep_last`` keeps each stream's newest accepted ones (bounded memory): the
    last N lines within ``--until`` or matching ``--grep``, which the server cannot select.
    A stream the API refuses is reported through ``warn`` and left out; when every stream fails,
    the last error is raised.
    """
    results: list[list[Hit]] = []
    failed: KubeError | None = None
    for stream in streams:
        hits: deque[Hit] = deque(maxlen=keep_last or None)

        def take(hit: Hit, hits: deque[Hit] = hits) -> None:
            if accept is None or accept(hit):
                hits.append(hit)

        reader = StreamReader(client, stream, options, take, tail=tail, since_ns=since_ns,
                              request_timeout=request_timeout)
        for attempt in range(attempts):
            try:
                reader.read(follow=False)
                break
            except KubeRejected as exc:
                if exc.status not in (400, 404):  # 400/404: the instance or its pod went away meanwhile
                    warn(f"{stream.label}: {exc}")
                    failed = exc
                break
            except KubeError as exc:
                if attempt == attempts - 1:
                    warn(f"{stream.label}: {exc}")
                    failed = exc
                else:
                    sleep(0.5 * 2**attempt)
        results.append(list(hits))
    if failed is not None and not any(results):
        raise failed
    return results


def merged(per_stream: Sequence[Sequence[Hit]], *, accept: Callable[[Hit], bool], limit: int = 0) -> list[Hit]:
    """The streams' documents merged by timestamp (a stream's own order kept), filtered, the newest ``limit``."""
    by_stream = [[((hit_ns(h), index), h) for h in hits] for index, hits in enumerate(per_stream)]
    kept: deque[Hit] = deque(maxlen=limit or None)
    for _key, hit in heapq.merge(*by_stream, key=lambda pair: pair[0]):
        if accept(hit):
            kept.append(hit)
    return list(kept)
