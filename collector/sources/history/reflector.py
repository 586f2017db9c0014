"""List, then watch, one cluster-wide resource (Events, InferenceServices) and hand every object on.

The loop of the pod watch (:class:`collector.kube.pods.PodWatchCache`), without a cache: list
(``on_list`` gets every object and knows it is a full state), watch from the list's
resourceVersion with bookmarks (``on_change`` gets ``ADDED``/``MODIFIED``/``DELETED``), relist at
once on ``410 Gone``, resume after a dropped connection or a failing API server with a bounded,
jittered exponential backoff (a 429's ``Retry-After`` honoured within the bound).

``optional=True`` is for a custom resource that may not be installed: a 404 on the list means "this
cluster has no such CRD" (logged once, ``synced`` all the same since there is nothing to sync), a
403 means the ClusterRole lacks it (logged as an error every time); either way the loop looks again
every ``recheck_seconds`` and starts watching once the resource answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from collector.errors import KubeError, KubeGone, KubeRejected
from collector.kube.pods import _jittered

log = structlog.get_logger(__name__)

Objects = list[dict[str, Any]]
_MIN_USEFUL_WATCH_SECONDS = 1.0


class Reflector:
    """One resource's list + watch loop, in a daemon thread."""

    def __init__(
        self,
        name: str,
        *,
        list_objects: Callable[[], tuple[Objects, str]],
        watch: Callable[[str], Any],
        on_list: Callable[[Objects], None],
        on_change: Callable[[str, dict[str, Any]], None],
        on_status: Callable[[str], None] | None = None,
        optional: bool = False,
        recheck_seconds: float = 300.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        """``watch(resource_version)`` opens a watch (a stream of (type, object) with ``close()``).
        ``on_status`` hears ``LIST``, ``RELIST``, ``GONE``, ``FAILURE``, ``NOT_INSTALLED``, ``FORBIDDEN``."""
        self.name = name
        self._list = list_objects
        self._watch = watch
        self._on_list = on_list
        self._on_change = on_change
        self._on_status = on_status or (lambda _status: None)
        self._optional = optional
        self._recheck = recheck_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = max(backoff_max, backoff_initial)
        self._resource_version = ""
        self._listed_once = False
        self._missing_logged = False
        self.installed = True
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._stream: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # an unexpected exception that ended the loop

    def list_now(self) -> bool:
        """One list (``on_list``); False when an optional resource is not installed or not allowed."""
        try:
            items, self._resource_version = self._list()
        except KubeRejected as exc:
            if not self._optional or exc.status not in (403, 404) or isinstance(exc, KubeGone):
                raise
            self._absent(exc)
            return False
        if not self.installed or self._missing_logged:
            log.info("history_resource_available", resource=self.name)
        self.installed, self._missing_logged = True, False
        self._on_list(items)
        self._on_status("RELIST" if self._listed_once else "LIST")
        self._listed_once = True
        self.synced.set()
        return True

    def _absent(self, exc: KubeRejected) -> None:
        self.installed = False
        self.synced.set()  # nothing to wait for
        if exc.status == 404:
            self._on_status("NOT_INSTALLED")
            if not self._missing_logged:
                log.info("history_resource_not_installed", resource=self.name, recheck_seconds=self._recheck,
                         note="events and pod lifecycle are collected without it")
                self._missing_logged = True
        else:
            self._on_status("FORBIDDEN")
            log.error("history_resource_forbidden", resource=self.name, error=str(exc),
                      action="grant get/list/watch on it (deploy/events-rbac.yaml); rechecking")

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # surfaced by the source's health check: never a silent dead thread
            self.error = exc
            log.exception("history_watch_crashed", resource=self.name)

    def _loop(self) -> None:
        backoff = self._backoff_initial
        need_list = True
        while not self._stop.is_set():
            started, delivered = time.monotonic(), 0
            try:
                if need_list:
                    if not self.list_now():
                        self._stop.wait(self._recheck)
                        continue
                    need_list = False
                delivered = self._watch_once()
            except KubeGone:
                log.info("history_watch_expired", resource=self.name, action="relist")
                self._on_status("GONE")
                need_list = True
                continue
            except KubeError as exc:
                if self._stop.is_set():
                    break
                self._on_status("FAILURE")
                delay = _jittered(backoff, getattr(exc, "retry_after", None), self._backoff_max)
                log.warning("history_watch_failed", resource=self.name, error=str(exc), retry_in=round(delay, 3))
                backoff = min(backoff * 2, self._backoff_max)
                self._stop.wait(delay)
                continue
            if delivered or time.monotonic() - started >= _MIN_USEFUL_WATCH_SECONDS:
                backoff = self._backoff_initial
            else:
                self._stop.wait(_jittered(backoff, None, self._backoff_max))
                backoff = min(backoff * 2, self._backoff_max)

    def _watch_once(self) -> int:
        stream = self._watch(self._resource_version)
        with self._lock:
            self._stream = stream
        delivered = 0
        try:
            for kind, obj in stream:
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self._resource_version = str(version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._on_change(kind, obj)
                delivered += 1
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return delivered

    def start(self) -> Reflector:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=f"history-{self.name}", daemon=True)
            self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
