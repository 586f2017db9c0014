"""The history source: Kubernetes objects in, history documents into the same Batcher as the logs.

    Events ──┐                                   ┌── event facts (uid, occurrence)
    Pods ────┼─▶ ServingIndex (which deployment) ┼── lifecycle facts (pod status)
    ISVCs ───┘                                   └── InferenceService facts (status)
                         │ deterministic _id + index, seen-before filter
                         ▼
                  Batcher ─▶ senders ─▶ OpenSearchSink ─▶ AckTracker ─▶ CheckpointStore   (collector/app.py)

Objects arrive from a *feed*: the cluster (:mod:`collector.sources.history.feeds`: a cluster-wide
pod watch, an Event watch, an InferenceService watch, each in its own thread) or a directory of
JSON/YAML documents (the demo without a cluster). Handlers run under one lock, so the index, the
filters and the batcher see one change at a time; a full queue blocks the handler, which stops
reading its watch: the API server is the buffer, memory stays bounded.

Exactly once: every document's ``_id`` and index are pure functions of what happened
(:mod:`collector.sources.history.documents`), written with ``create``. Within a process a document
already handed to the batcher is not produced again (per-object memory of ids, per-event highest
count), so a pod seen in ten updates costs one document per fact; across processes (a restart,
SIGKILL, a second replica, a relist after ``410``) the same fact is the same ``_id``: a 409. The
checkpoint store records, per resource, the resourceVersion and time of the newest acknowledged
document (``history/<resource>``), for operators; a start always lists again, because the index of
pods has to be rebuilt anyway and the ids make the relist harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from collector import model as m
from collector.errors import CollectorError
from collector.kube.objects import mapping, text
from collector.pipeline.batcher import Batcher, Stopped
from collector.settings import Settings
from collector.sources.history.documents import Fact, encode
from collector.sources.history.events import EventView, event_fact, view_event
from collector.sources.history.inferenceservice import isvc_facts
from collector.sources.history.lifecycle import pod_facts
from collector.sources.history.metrics import HistoryMetrics
from collector.sources.history.owners import ServingIndex
from collector.telemetry.metrics import Metrics
from collector.transforms.assembler import Position

log = structlog.get_logger(__name__)

SEEN_PER_OBJECT = 1024  # ids remembered per pod / InferenceService (older ones cost a 409 at most)
_EXPIRE_EVERY = 10.0


class Feed(Protocol):
    """Where objects come from (the cluster, or files)."""

    def once(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def synced(self) -> bool: ...
    def healthy(self) -> tuple[bool, str]: ...
    def problems(self) -> list[str]: ...


class _Seen:
    """Ids handed to the batcher, per object (bounded: the oldest are forgotten first)."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, None]] = {}

    def new(self, owner: str, facts: Iterable[Fact]) -> list[Fact]:
        known = self._ids.get(owner, {})
        return [f for f in facts if f.doc_id not in known]

    def add(self, owner: str, doc_id: str) -> None:
        ids = self._ids.setdefault(owner, {})
        ids[doc_id] = None
        if len(ids) > SEEN_PER_OBJECT:
            del ids[next(iter(ids))]

    def forget(self, owner: str) -> None:
        self._ids.pop(owner, None)


class HistorySource:
    """Implements the app's ``Source`` for ``servelog events``."""

    def __init__(self, *, settings: Settings, batcher: Batcher, metrics: Metrics, index_template: str,
                 make_feed: Callable[[HistorySource], Feed], clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.batcher = batcher
        self.metrics = metrics
        self.history_metrics = HistoryMetrics(metrics.registry)
        self.index_template = index_template
        k = settings.kubernetes
        self.index = ServingIndex(custom_fields=k.custom_fields, deleted_ttl=k.deleted_pod_ttl_seconds, clock=clock)
        self.lock = threading.Lock()
        self._pod_arrived = threading.Condition(self.lock)
        self._seen = _Seen()
        self._event_counts: dict[str, int] = {}  # event uid -> highest occurrence handed on
        self._events_listed: set[str] = set()  # uids of _event_counts the list in progress holds
        self._isvcs_listed: set[str] = set()
        self._include = set(settings.pipeline.include_namespaces)
        self._exclude = set(settings.pipeline.exclude_namespaces)
        self.wait_for_pods = False  # a pod watch runs: an event about an unknown pod may wait for it (bounded)
        self.pods_stale = False  # the pod watch is reconnecting or relisting: new pods may not be known yet
        self._stopping = False  # closing: no new document
        self._batcher_stopped = False  # the pipeline refused a batch (shutdown with a full queue)
        self._clock = clock
        self.heartbeat = clock()
        self._objects = 0
        self._documents = 0
        self.feed = make_feed(self)

    # -- handlers (any feed thread) --------------------------------------------------------------
    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        with self.lock:
            self._objects += 1
            self.history_metrics.objects.labels("pods").inc()
            record = self.index.update_pod(kind, pod)
            self._pod_arrived.notify_all()
            if record is None:
                return
            facts, ready = pod_facts(pod, record.fields, was_ready=record.ready)
            record.ready |= ready
            self._emit("pods", pod, record.uid, facts)

    def on_pods_listed(self) -> None:
        with self.lock:
            self.index.list_done()

    def on_isvc(self, kind: str, isvc: dict[str, Any]) -> None:
        with self.lock:
            self._objects += 1
            self.history_metrics.objects.labels("inferenceservices").inc()
            self.index.update_isvc(kind, isvc)
            uid = text(mapping(isvc.get("metadata")).get("uid"))
            self._emit("inferenceservices", isvc, uid, isvc_facts(isvc, custom_fields=self.settings.kubernetes.custom_fields))

    def isvcs_list_started(self) -> None:
        with self.lock:
            self.index.isvc_watch_active = True
            self._isvcs_listed = set()

    def on_listed_isvc(self, isvc: dict[str, Any]) -> None:
        self.on_isvc("LISTED", isvc)
        with self.lock:
            self._isvcs_listed.add(text(mapping(isvc.get("metadata")).get("uid")))

    def isvcs_list_done(self) -> None:
        with self.lock:
            self.index.isvcs_listed(self._isvcs_listed)
            self._isvcs_listed = set()

    def isvcs_absent(self) -> None:
        """No InferenceService watch (no CRD, or not allowed): names are resolved without them."""
        with self.lock:
            self.index.isvc_watch_active = False

    def events_list_started(self) -> None:
        with self.lock:
            self._events_listed = set()

    def on_listed_event(self, event: dict[str, Any]) -> None:
        self.on_event("LISTED", event, live=False)

    def events_list_done(self) -> None:
        """A (re)list of Events ended: the counts of events it no longer holds (expired) are forgotten."""
        with self.lock:
            self._event_counts = {uid: n for uid, n in self._event_counts.items() if uid in self._events_listed}
            self._events_listed = set()

    def on_event(self, kind: str, event: dict[str, Any], *, live: bool = True) -> None:
        view = view_event(event)
        with self.lock:
            self._on_event(kind, event, view, live=live)
            if not live and view is not None and view.uid in self._event_counts:
                self._events_listed.add(view.uid)  # still there: its count is kept (see events_list_done)

    def _on_event(self, kind: str, event: dict[str, Any], view: EventView | None, *, live: bool) -> None:
        """One event (under the lock)."""
        self._objects += 1
        self.history_metrics.objects.labels("events").inc()
        if view is None:
            self.history_metrics.skipped.labels("no_time").inc()
            return
        if kind == "DELETED":  # expired: nothing new happened
            self._event_counts.pop(view.uid, None)
            return
        if view.occurrence <= self._event_counts.get(view.uid, 0):
            return
        uid = view.involved_uid
        if ((live or self.pods_stale) and self.wait_for_pods and view.involved_kind == "Pod" and uid
                and not self.index.knows_pod(uid)):
            self._pod_arrived.wait_for(lambda: self.index.knows_pod(uid) or self._stopping,
                                       timeout=self.settings.kubernetes.metadata_wait_seconds)
        serving = self.index.resolve(kind=view.involved_kind, namespace=view.involved_namespace,
                                     name=view.involved_name, uid=uid)
        if serving is None and self.settings.history.serving_only:
            self.history_metrics.skipped.labels("not_serving").inc()
            return
        if self._emit("events", event, "", [event_fact(view, serving or {})]):
            self._event_counts[view.uid] = view.occurrence

    # -- emitting (under the lock) ---------------------------------------------------------------
    def _emit(self, resource: str, obj: Mapping[str, Any], owner: str, facts: list[Fact]) -> bool:
        """Hand new facts to the batcher; False when nothing could be (stopping, or filtered out)."""
        if self._stopping:
            return False
        version = text(mapping(obj.get("metadata")).get("resourceVersion"))
        sent = False
        for fact in self._seen.new(owner, facts) if owner else facts:
            namespace = str(fact.fields.get(m.F_NAMESPACE) or "")
            if (self._include and namespace not in self._include) or namespace in self._exclude:
                self.history_metrics.skipped.labels("namespace").inc()
                continue
            _index, piece = encode(fact, index_template=self.index_template)
            try:
                self.batcher.add(f"history/{resource}", piece, Position(f"rv:{version}", 0, fact.ts_ns, 1))
            except Stopped:
                self._stopping = self._batcher_stopped = True
                return False
            if owner:
                self._seen.add(owner, fact.doc_id)
            self._documents += 1
            self.metrics.documents_produced.inc()
            self.history_metrics.documents.labels(fact.kind).inc()
            sent = True
        return sent

    def _expire(self) -> None:
        with self.lock:
            for uid in self.index.expire():
                self._seen.forget(uid)

    # -- the app's Source ------------------------------------------------------------------------
    def synced(self) -> bool:
        return self.feed.synced()

    def problems(self) -> list[str]:
        """What the feed could not read although it exists (``--once`` fails on them)."""
        return self.feed.problems()

    def run(self, stop: threading.Event, *, once: bool) -> None:
        if once:
            self.feed.once()
            with self.lock:
                self.batcher.flush()
            return
        self.feed.start()
        last_expiry = self._clock()
        try:
            while not stop.is_set():
                self.heartbeat = self._clock()
                ok, why = self.feed.healthy()
                if not ok:
                    raise CollectorError(f"history source failed: {why}")
                if self.lock.acquire(timeout=0.2):
                    try:
                        self.batcher.tick()
                    finally:
                        self.lock.release()
                if self._clock() - last_expiry >= _EXPIRE_EVERY:
                    self._expire()
                    last_expiry = self._clock()
                stop.wait(0.2)
        finally:
            self.close()
            with self.lock:
                if not self._batcher_stopped:
                    self.batcher.flush()  # the open batch: the app drains it

    def close(self) -> None:
        with self.lock:
            self._stopping = True
            self._pod_arrived.notify_all()
        self.feed.stop()

    @property
    def lines_read(self) -> int:
        return self._objects

    @property
    def documents(self) -> int:
        return self._documents

    def total_bytes(self) -> int:
        return 0

    def bytes_read(self) -> int:
        return 0
