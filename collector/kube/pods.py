"""The node-scoped pod watch: an in-memory cache of this node's pods, kept by list + watch.

List once (``spec.nodeName=<node>``), then watch from the list's resourceVersion with bookmarks.
``410 Gone`` means the resourceVersion expired: list again and reconcile (a pod missing from the new
list was deleted meanwhile: it is marked deleted, not forgotten). A dropped or failed connection is
resumed with exponential backoff and jitter. A deleted pod's metadata stays for
``deleted_pod_ttl_seconds`` so the last lines of a just-deleted pod, and of its short-lived
``storage-initializer``, are still enriched. Lookups are dictionary reads: never an API call per line.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from collector.errors import KubeError, KubeGone
from collector.kube.presets import is_excluded, pod_metadata
from collector.model import PodMetadata
from collector.settings import Settings

log = structlog.get_logger(__name__)


class PodWatchCache:
    """Implements :class:`collector.model.MetadataProvider` from a pod watch."""

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
    ) -> None:
        self._client = client
        self._field_selector = f"spec.nodeName={node_name}" if node_name else ""
        self._label_selector = label_selector
        self._exclude_label = exclude_label
        self._ttl = deleted_ttl
        self._watch_timeout = watch_timeout
        self._custom = dict(custom_fields or {})
        self._own_pod = own_pod
        self._clock = clock
        self._on_event = on_event or (lambda _kind: None)
        self._lock = threading.Condition()
        self._pods: dict[str, dict[str, Any]] = {}
        self._meta: dict[str, PodMetadata] = {}
        self._deleted_at: dict[str, float] = {}
        self._resource_version = ""
        self._synced = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="pod-watch", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> PodWatchCache:
        from collector.kube.client import KubeClient  # noqa: PLC0415

        k = settings.kubernetes
        return cls(KubeClient.from_settings(settings), node_name=settings.node_name, label_selector=k.label_selector,
                   exclude_label=k.exclude_label, deleted_ttl=k.deleted_pod_ttl_seconds,
                   watch_timeout=k.watch_timeout_seconds, custom_fields=k.custom_fields,
                   own_pod=os.environ.get("POD_NAME"))

    # -- MetadataProvider ------------------------------------------------------------------------
    def lookup(self, pod_uid: str) -> PodMetadata | None:
        with self._lock:
            return self._meta.get(pod_uid)

    def synced(self) -> bool:
        return self._synced

    def wait_for(self, pod_uid: str, timeout: float) -> PodMetadata | None:
        """Block up to ``timeout`` seconds for a pod to appear (bounded: never forever)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while pod_uid not in self._meta:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)
            return self._meta[pod_uid]

    def pods(self) -> list[dict[str, Any]]:
        """The raw pods known now (deleted ones excluded), for the API source's targets."""
        with self._lock:
            return [pod for uid, pod in self._pods.items() if uid not in self._deleted_at]

    # -- state changes ---------------------------------------------------------------------------
    def _excluded(self, pod: Mapping[str, Any]) -> bool:
        name = (pod.get("metadata") or {}).get("name")
        return is_excluded(pod, self._exclude_label) or (self._own_pod is not None and name == self._own_pod)

    def _upsert(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if not uid or self._excluded(pod):
            return
        self._pods[uid] = pod
        self._meta[uid] = pod_metadata(pod, custom_fields=self._custom)
        self._deleted_at.pop(uid, None)
        self._lock.notify_all()

    def _delete(self, uid: str) -> None:
        if uid in self._meta and uid not in self._deleted_at:
            self._deleted_at[uid] = self._clock()
            old = self._meta[uid]
            self._meta[uid] = PodMetadata(uid=old.uid, namespace=old.namespace, name=old.name, fields=old.fields,
                                          containers=old.containers, init_containers=old.init_containers, deleted=True)

    def expire(self) -> None:
        """Forget pods deleted longer ago than the TTL."""
        now = self._clock()
        with self._lock:
            for uid, when in list(self._deleted_at.items()):
                if now - when >= self._ttl:
                    del self._deleted_at[uid]
                    self._meta.pop(uid, None)
                    self._pods.pop(uid, None)

    def relist(self) -> None:
        items, resource_version = self._client.list_pods(field_selector=self._field_selector,
                                                         label_selector=self._label_selector)
        with self._lock:
            listed = set()
            for pod in items:
                self._upsert(pod)
                listed.add((pod.get("metadata") or {}).get("uid"))
            for uid in list(self._meta):
                if uid not in listed:
                    self._delete(uid)  # deleted while we were not watching
            self._resource_version = resource_version
            self._synced = True
            self._lock.notify_all()
        self._on_event("LISTED")

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        """One watch event."""
        meta = obj.get("metadata") or {}
        with self._lock:
            if meta.get("resourceVersion"):
                self._resource_version = str(meta["resourceVersion"])
            if kind in ("ADDED", "MODIFIED"):
                self._upsert(obj)
            elif kind == "DELETED" and meta.get("uid"):
                self._delete(meta["uid"])
        self._on_event(kind)

    # -- the loop --------------------------------------------------------------------------------
    def run(self, iterations: int | None = None) -> None:
        """List, then watch, until stopped (``iterations`` bounds the watch requests, for tests)."""
        backoff = 0.5
        done = 0
        need_list = not self._synced
        while not self._stop.is_set() and (iterations is None or done < iterations):
            done += 1
            try:
                if need_list:
                    self.relist()
                    need_list = False
                for kind, obj in self._client.watch_pods(
                        resource_version=self._resource_version, field_selector=self._field_selector,
                        label_selector=self._label_selector, timeout_seconds=self._watch_timeout):
                    self.apply(kind, obj)
                    self.expire()
                    if self._stop.is_set():
                        return
                backoff = 0.5  # the server ended the watch (timeout): resume from the last version
            except KubeGone:
                log.info("pod_watch_expired", action="relist")
                need_list = True
            except KubeError as exc:
                log.warning("pod_watch_failed", error=str(exc), retry_in=round(backoff, 2))
                if self._stop.wait(backoff * random.uniform(0.5, 1.5)):
                    return
                backoff = min(backoff * 2, 30.0)
            self.expire()

    def start(self) -> PodWatchCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
