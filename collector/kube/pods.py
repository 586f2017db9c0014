"""The node-scoped pod watch: an in-memory cache of this node's pods, kept current by list + watch.

Why a watch and not a lookup per file: enrichment must never cost an API call per line (or per
file, on a node starting hundreds of pods), and the API server must see one cheap long-lived
request per node, not a storm. So the cache lists the pods of its node once
(``fieldSelector=spec.nodeName=<node>``, ``resourceVersion=0``: answered from the API server's watch
cache, which indexes pods by node, instead of a read of every pod from etcd per node; the answer is
bounded by the node's pods, so that the watch cache ignores ``limit`` costs nothing), then watches from
the list's resourceVersion with bookmarks (which keep that version fresh on a quiet node). Without a
node (``servelog events``: every serving pod of the cluster) the list is a consistent one, read
``limit`` pods a page, so memory holds a page of the cluster, not all of it. The loop itself (pages,
410 relists, backoff) is :class:`collector.kube.reflector.ListWatch`, shared with the history feeds:

- ``ADDED`` / ``MODIFIED`` replace a pod's metadata; ``BOOKMARK`` only moves the resourceVersion.
- ``DELETED`` marks the pod deleted but keeps its metadata for ``deleted_ttl`` seconds (clock
  injected), then forgets it. The last lines of a pod are often read after the pod is gone, and a
  KServe ``storage-initializer`` can finish and its pod be deleted within a second: those lines
  must still be enriched.
- ``410 Gone`` (the version expired while disconnected): list again and reconcile. A pod missing
  from the new list was deleted in between: it is marked deleted (kept for the TTL), not dropped,
  for the same reason.
- A dropped connection or a failing API server: resume from the last resourceVersion after an
  exponential backoff with jitter (bounded; a 429's ``Retry-After`` is honoured within the bound).
- Pods carrying the exclude label (``servelog.io/exclude=true``) and the collector's own pod
  (``POD_NAME``) are never cached: their lines are not collected.

Lookups are dictionary reads under a lock. :meth:`wait_for` lets a reader of a brand-new pod's log
wait a bounded time for the watch to deliver the pod. Metrics stay outside: ``on_event`` is called
with ``LIST`` (the first list), ``RELIST``, each watch event type (``ADDED``, ``MODIFIED``,
``DELETED``, ``BOOKMARK``), ``GONE`` (a 410), ``LIST_EXPIRED`` (a slow list started again) and
``FAILURE`` (an error before a backoff).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from collector.kube.presets import is_excluded, pod_metadata
from collector.kube.reflector import PAGE_SIZE, ListWatch, Objects, Stream
from collector.kube.streams import ListPage
from collector.model import PodMetadata
from collector.settings import Settings

_EXPIRE_EVERY = 10.0  # seconds of the cache's clock between sweeps of deleted pods while watching


@dataclasses.dataclass(slots=True)
class _Entry:
    pod: dict[str, Any]
    meta: PodMetadata
    deleted_at: float | None = None
    listed: int = 0  # the list generation that last held this pod


class PodWatchCache:
    """Implements :class:`collector.model.MetadataProvider` from a node-scoped pod watch."""

    name = "kubernetes"

    def __init__(
        self,
        client: Any,
        *,
        node_name: str,
        label_selector: str = "",
        exclude_label: str = "servelog.io/exclude",
        deleted_ttl: float = 300.0,
        watch_timeout: int = 300,
        custom_fields: Mapping[str, str] | None = None,
        own_pod: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_pod: Callable[[str, dict[str, Any]], None] | None = None,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        """``client`` is a :class:`~collector.kube.client.KubeClient` (or anything with its
        ``list_pods``/``watch_pods``); ``clock`` drives the deleted-pod TTL only.

        ``on_pod(kind, pod)`` sees every pod change, after the cache applied it and outside its lock:
        ``LISTED`` for each pod of a (re)list (then ``on_event("LIST"/"RELIST")``), ``ADDED``,
        ``MODIFIED`` and ``DELETED`` from the watch, and ``DELETED`` (with the last state known) for
        a pod a relist no longer finds. ``keep(pod)`` false: the pod is not cached (its changes still
        reach ``on_pod``), so a cluster-wide watch holds only the pods it cares about."""
        self._client = client
        self._field_selector = f"spec.nodeName={node_name}" if node_name else ""
        self._list_version = "0" if node_name else ""  # see the module docstring
        self._label_selector = label_selector
        self._exclude_label = exclude_label
        self._ttl = deleted_ttl
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._custom = dict(custom_fields or {})
        self._own_pod = own_pod or None
        self._clock = clock
        self._on_event = on_event or (lambda _kind: None)
        self._on_pod = on_pod
        self._keep = keep
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self._synced = False
        self._stopping = False
        self._last_expiry = clock()
        self._loop = ListWatch("pods", list_page=self._list_page, watch=self._open_watch, handler=self,
                               on_status=self._on_event, backoff_initial=backoff_initial, backoff_max=backoff_max,
                               log_prefix="pod")

    @classmethod
    def from_settings(cls, settings: Settings, *, on_event: Callable[[str], None] | None = None) -> PodWatchCache:
        from collector.kube.client import KubeClient  # noqa: PLC0415 - the kubernetes client is heavy

        k = settings.kubernetes
        return cls(KubeClient.from_settings(settings), node_name=settings.node_name, label_selector=k.label_selector,
                   exclude_label=k.exclude_label, deleted_ttl=k.deleted_pod_ttl_seconds,
                   watch_timeout=k.watch_timeout_seconds, custom_fields=k.custom_fields,
                   own_pod=os.environ.get("POD_NAME"), on_event=on_event)

    # -- MetadataProvider ------------------------------------------------------------------------
    def lookup(self, pod_uid: str) -> PodMetadata | None:
        with self._cond:
            entry = self._entries.get(pod_uid)
            if entry is None or self._expired(entry, self._clock()):
                return None
            return entry.meta

    def synced(self) -> bool:
        return self._synced

    def wait_for(self, pod_uid: str, timeout: float) -> PodMetadata | None:
        """The pod's metadata, waiting up to ``timeout`` seconds for the watch to deliver it."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                found = self.lookup(pod_uid)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or self._stopping:
                    return found
                self._cond.wait(remaining)

    # -- views for the API source and for health -------------------------------------------------
    def pods(self) -> list[dict[str, Any]]:
        """The raw pods that exist now (deleted ones left out), for the API source's targets."""
        with self._cond:
            return [entry.pod for entry in self._entries.values() if entry.deleted_at is None]

    @property
    def resource_version(self) -> str:
        return self._loop.resource_version

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    # -- state changes (the loop's ListWatchHandler; public so tests and the loop share one path) -----
    def relist(self) -> None:
        """List the pods (page by page) and make the cache match: pods gone meanwhile are marked deleted."""
        self._loop.relist()

    def list_started(self) -> None:
        with self._cond:
            self._generation += 1

    def listed_page(self, items: Objects) -> None:
        listed: list[dict[str, Any]] = []
        with self._cond:
            for pod in items:
                uid = _uid(pod)
                if uid:
                    self._upsert(uid, pod)
                    entry = self._entries.get(uid)
                    if entry is not None:
                        entry.listed = self._generation
                    listed.append(pod)
        if self._on_pod is not None:
            for pod in listed:
                self._on_pod("LISTED", pod)

    def list_done(self, resource_version: str) -> None:
        now = self._clock()
        with self._cond:
            gone = [entry for entry in self._entries.values()
                    if entry.listed != self._generation and entry.deleted_at is None]
            for entry in gone:
                self._mark_deleted(entry, now)
            self._synced = True
            self._cond.notify_all()
        if self._on_pod is not None:
            for entry in gone:
                self._on_pod("DELETED", entry.pod)
        self.expire()

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        self.apply(kind, obj)
        if self._clock() - self._last_expiry >= _EXPIRE_EVERY:
            self.expire()

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        """One watch event."""
        uid = _uid(obj)
        with self._cond:
            if kind in ("ADDED", "MODIFIED") and uid:
                self._upsert(uid, obj)
            elif kind == "DELETED" and uid:
                entry = self._entries.get(uid)
                if entry is not None and entry.deleted_at is None:
                    entry.pod = obj  # the final state, as the API server last saw it
                    self._mark_deleted(entry, self._clock())
            self._cond.notify_all()
        if self._on_pod is not None and uid and kind in ("ADDED", "MODIFIED", "DELETED"):
            self._on_pod(kind, obj)
        self._on_event(kind)

    def expire(self) -> None:
        """Forget pods deleted longer ago than the TTL."""
        now = self._last_expiry = self._clock()
        with self._cond:
            for uid in [uid for uid, entry in self._entries.items() if self._expired(entry, now)]:
                del self._entries[uid]

    def _expired(self, entry: _Entry, now: float) -> bool:
        return entry.deleted_at is not None and now - entry.deleted_at >= self._ttl

    def _excluded(self, pod: Mapping[str, Any]) -> bool:
        name = (pod.get("metadata") or {}).get("name")
        return is_excluded(pod, self._exclude_label) or (self._own_pod is not None and name == self._own_pod)

    def _upsert(self, uid: str, pod: dict[str, Any]) -> None:
        if self._excluded(pod) or (self._keep is not None and not self._keep(pod)):
            self._entries.pop(uid, None)  # a pod may opt out later: forget it
            return
        self._entries[uid] = _Entry(pod=pod, meta=pod_metadata(pod, custom_fields=self._custom))

    def _mark_deleted(self, entry: _Entry, now: float) -> None:
        entry.deleted_at = now
        entry.meta = dataclasses.replace(entry.meta, deleted=True)

    # -- the loop (collector.kube.reflector.ListWatch) --------------------------------------------
    def _list_page(self, continue_token: str) -> ListPage:
        page: ListPage = self._client.list_pods_page(
            continue_token=continue_token, limit=self._page_size, resource_version=self._list_version,
            field_selector=self._field_selector, label_selector=self._label_selector)
        return page

    def _open_watch(self, resource_version: str) -> Stream:
        stream: Stream = self._client.watch_pods(resource_version=resource_version, field_selector=self._field_selector,
                                                 label_selector=self._label_selector,
                                                 timeout_seconds=self._watch_timeout)
        return stream

    def run(self, iterations: int | None = None) -> None:
        """List, then watch, until stopped. ``iterations`` bounds the attempts (one list and/or one
        watch request, or one failure and its backoff), so tests can run the loop inline."""
        self._loop.run(iterations)

    @property
    def thread(self) -> threading.Thread | None:
        return self._loop.thread

    def alive(self) -> bool:
        """The loop runs (or was not started, or was stopped); False when it crashed (see ``error``)."""
        return self._loop.alive()

    @property
    def error(self) -> BaseException | None:
        return self._loop.error

    def start(self) -> PodWatchCache:
        """Run the loop in a daemon thread."""
        self._loop.start("pod-watch")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop: abort the watch being read and wait (bounded) for the thread; waiters give up."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._loop.stop(timeout)


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")
