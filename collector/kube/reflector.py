"""One list-then-watch loop for every resource servelog watches: the node's pod cache and the history feeds.

Both :class:`collector.kube.pods.PodWatchCache` (pods, node-scoped in the DaemonSet, cluster-wide in
``servelog events``) and :class:`collector.sources.history.feeds.ClusterFeed` (Events,
InferenceServices) keep a resource current the way client-go's Reflector does, so they share this
loop and differ only in what they do with the objects (a :class:`ListWatchHandler`):

- **List, a page at a time** (``limit`` + ``continue``): ``list_started()``, ``listed_page(items)``
  for each page as it arrives, then ``list_done(resource_version)`` once the list is complete (the
  handler reconciles then: what the list no longer holds is gone). Memory holds one page of raw
  objects, never the whole cluster. A continue token that expired (a 410 on a later page: etcd
  compacted past the list's snapshot, typically after 5-15 minutes of a slow list) starts the list
  again at once (``LIST_EXPIRED``); after :data:`MAX_LIST_RESTARTS` in a row it counts as a failure
  (backoff, then a new list). A 410 on a first page (no token) is a failure too, not a relist loop.
- **Watch** from the list's resourceVersion with bookmarks; ``changed(type, object)`` for each event
  (``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK``), whose resourceVersion becomes the one to
  resume from (bookmarks keep it fresh on a quiet resource).
- **410 Gone** on the watch (an HTTP status, or an ``ERROR`` event inside the 200 stream): list again
  at once (``GONE``), no backoff: relisting is the remedy.
- **Any other** :class:`~collector.errors.KubeError` (a dropped connection, 5xx, 429, 403 while RBAC
  is not applied yet): an exponential backoff with jitter, bounded, a 429's ``Retry-After`` honoured
  within the bound (``FAILURE``); then the watch resumes from the last resourceVersion (no relist),
  or the list is tried again if it never completed. A watch that ends cleanly within a second having
  delivered nothing also backs off, so a misbehaving proxy cannot turn the loop into a busy spin.
- **optional** (a custom resource that may not be installed): a 404 on the first page means "no such
  CRD" (``NOT_INSTALLED``, logged once), a 403 "the ClusterRole does not grant it" (``FORBIDDEN``,
  logged as an error every time, and remembered in :attr:`ListWatch.absent`); either way the resource
  counts as synced (there is nothing to wait for) and is looked for again every ``recheck_seconds``.

``on_status`` hears ``LIST`` (the first complete list), ``RELIST``, ``LIST_EXPIRED``, ``GONE``,
``FAILURE``, ``NOT_INSTALLED`` and ``FORBIDDEN``; metrics stay with the caller. :meth:`ListWatch.run`
takes ``iterations`` (one list and/or one watch request, or one failure and its backoff each), so
tests can run the loop inline; :meth:`ListWatch.start` runs it in a daemon thread, and
:meth:`ListWatch.stop` aborts the watch being read.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from collector.errors import KubeError, KubeGone, KubeRejected, KubeUnavailable
from collector.kube.streams import ListPage

log = structlog.get_logger(__name__)

Objects = list[dict[str, Any]]
PAGE_SIZE = 500  # objects per list page: client-go's default (pager.defaultPageSize); a page of pods is a few MB
MAX_LIST_RESTARTS = 5  # expired continue tokens in a row before a list counts as failed
# A watch that ends cleanly sooner than this without delivering anything is treated like a failure.
_MIN_USEFUL_WATCH_SECONDS = 1.0
_LIST_RESTARTS_NOTE = "the list took longer than the API server keeps its snapshot; listing again"


class Stream(Protocol):
    """A watch: (event type, object) pairs, abortable from another thread."""

    def __iter__(self) -> Any: ...
    def close(self) -> None: ...


class ListWatchHandler(Protocol):
    """What a :class:`ListWatch` hands its objects to (called from the loop's thread)."""

    def list_started(self) -> None: ...
    def listed_page(self, items: Objects) -> None: ...
    def list_done(self, resource_version: str) -> None: ...
    def changed(self, kind: str, obj: dict[str, Any]) -> None: ...


def jittered(backoff: float, retry_after: float | None, ceiling: float) -> float:
    """The next pause: the backoff with jitter (50-100 %), at least the server's Retry-After, bounded."""
    delay = backoff * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, ceiling)


def list_all(list_page: Callable[[str], ListPage], *, restarts: int = MAX_LIST_RESTARTS) -> tuple[Objects, str]:
    """(every object, the list's resourceVersion) of a paged list, started again when a continue token expires."""
    for _ in range(restarts + 1):
        found: Objects = []
        token, version = "", ""
        try:
            while True:
                page = list_page(token)
                version = version or page.resource_version
                found += page.items
                token = page.continue_token
                if not token:
                    return found, version
        except KubeGone as exc:
            if not token:
                raise KubeUnavailable(f"the API server answered a new list with 410: {exc}") from exc
    raise KubeUnavailable(f"a paged list expired {restarts + 1} times in a row: {_LIST_RESTARTS_NOTE}")


class ListWatch:
    """One resource's list + watch loop (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        list_page: Callable[[str], ListPage],
        watch: Callable[[str], Stream],
        handler: ListWatchHandler,
        on_status: Callable[[str], None] | None = None,
        optional: bool = False,
        recheck_seconds: float = 300.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        log_prefix: str = "kube",
    ) -> None:
        """``list_page(continue_token)`` returns one page ('' asks for the first);
        ``watch(resource_version)`` opens a watch stream (the request is made there: a refusal raises)."""
        self.name = name
        self._list_page = list_page
        self._watch = watch
        self._handler = handler
        self._on_status = on_status or (lambda _status: None)
        self._optional = optional
        self._recheck = recheck_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = max(backoff_max, backoff_initial)
        self._prefix = log_prefix
        self.resource_version = ""
        self.absent = ""  # optional resource: "" (answers), "not_installed" (404) or "forbidden" (403)
        self.error: BaseException | None = None  # an unexpected exception that ended the loop
        self._listed_once = False
        self._missing_logged = False
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Stream | None = None  # the watch being read, so stop() can abort it
        self._thread: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------------
    def synced(self) -> bool:
        """A list completed (or an optional resource is known to be absent)."""
        return self._synced.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def alive(self) -> bool:
        """Not started, running, or stopped on purpose (a crashed loop is not alive)."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the list --------------------------------------------------------------------------------
    def relist(self) -> bool:
        """One complete list, page by page; False when an optional resource is absent (or when stopping)."""
        for restart in range(MAX_LIST_RESTARTS + 1):
            if restart:
                self._on_status("LIST_EXPIRED")
                log.info(f"{self._prefix}_watch_list_expired", resource=self.name, restart=restart, note=_LIST_RESTARTS_NOTE)
            try:
                complete = self._list_pages()
            except KubeGone:
                continue  # an expired continue token (a first page's 410 is raised as a failure)
            except KubeRejected as exc:
                if not self._optional or exc.status not in (403, 404):
                    raise
                self._absent(exc)
                return False
            if complete is None:
                return False
            self._listed(complete)
            return True
        raise KubeUnavailable(f"the {self.name} list expired {MAX_LIST_RESTARTS + 1} times in a row: "
                              f"{_LIST_RESTARTS_NOTE}")

    def _list_pages(self) -> str | None:
        """Hand every page on; the list's resourceVersion (None when stopped midway)."""
        token, version, objects = "", "", 0
        self._handler.list_started()
        while True:
            try:
                page = self._list_page(token)
            except KubeGone as exc:
                if not token:
                    raise KubeUnavailable(f"the API server answered a new {self.name} list with 410: {exc}") from exc
                raise
            version = version or page.resource_version  # every page of a list shares the snapshot's version
            objects += len(page.items)
            self._handler.listed_page(page.items)
            token = page.continue_token
            if not token:
                self._handler.list_done(version)
                log.info(f"{self._prefix}_watch_listed", resource=self.name, objects=objects, resource_version=version)
                return version
            if self._stop.is_set():
                return None

    def _listed(self, version: str) -> None:
        self.resource_version = version
        if self.absent or self._missing_logged:
            log.info(f"{self._prefix}_resource_available", resource=self.name)
        self.absent, self._missing_logged = "", False
        self._on_status("RELIST" if self._listed_once else "LIST")
        self._listed_once = True
        self._synced.set()

    def _absent(self, exc: KubeRejected) -> None:
        self._synced.set()  # nothing to wait for
        if exc.status == 404:
            self.absent = "not_installed"
            self._on_status("NOT_INSTALLED")
            if not self._missing_logged:
                log.info(f"{self._prefix}_resource_not_installed", resource=self.name, recheck_seconds=self._recheck,
                         note="the rest is collected without it")
                self._missing_logged = True
        else:
            self.absent = "forbidden"
            self._on_status("FORBIDDEN")
            log.error(f"{self._prefix}_resource_forbidden", resource=self.name, error=str(exc),
                      action="grant get/list/watch on it (deploy/events-rbac.yaml); rechecking",
                      recheck_seconds=self._recheck)

    # -- the loop --------------------------------------------------------------------------------
    def run(self, iterations: int | None = None) -> None:
        """List, then watch, until stopped (or ``iterations`` attempts); an unexpected error is kept in ``error``."""
        try:
            self._loop(iterations)
        except Exception as exc:  # surfaced by alive()/error to the health checks: never a silent dead thread
            self.error = exc
            log.exception(f"{self._prefix}_watch_crashed", resource=self.name)

    def _loop(self, iterations: int | None) -> None:
        backoff = self._backoff_initial
        need_list = not self.synced() or bool(self.absent)
        done = 0
        while not self._stop.is_set() and (iterations is None or done < iterations):
            done += 1
            started, delivered = time.monotonic(), 0
            try:
                if need_list:
                    if not self.relist():
                        self._stop.wait(self._recheck)
                        continue
                    need_list = False
                delivered = self._watch_once()
            except KubeGone:
                log.info(f"{self._prefix}_watch_expired", resource=self.name, resource_version=self.resource_version,
                         action="relist")
                self._on_status("GONE")
                need_list = True
                continue  # relisting is the remedy: no backoff
            except KubeError as exc:
                if self._stop.is_set():
                    break
                self._on_status("FAILURE")
                delay = jittered(backoff, getattr(exc, "retry_after", None), self._backoff_max)
                log.warning(f"{self._prefix}_watch_failed", resource=self.name, error=str(exc), synced=self.synced(),
                            retry_in=round(delay, 3))
                backoff = min(backoff * 2, self._backoff_max)
                self._stop.wait(delay)
                continue
            if delivered or time.monotonic() - started >= _MIN_USEFUL_WATCH_SECONDS:
                backoff = self._backoff_initial  # the server ended the watch (its timeout): resume at once
            else:
                self._stop.wait(jittered(backoff, None, self._backoff_max))
                backoff = min(backoff * 2, self._backoff_max)

    def _watch_once(self) -> int:
        """One watch request from the current resourceVersion; the number of events it delivered."""
        stream = self._watch(self.resource_version)
        with self._lock:
            self._stream = stream
        delivered = 0
        try:
            if self._stop.is_set():
                return 0
            events: Iterable[tuple[str, dict[str, Any]]] = stream
            for kind, obj in events:
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = str(version)
                self._handler.changed(kind, obj)
                delivered += 1
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return delivered

    # -- the thread ------------------------------------------------------------------------------
    def start(self, thread_name: str | None = None) -> ListWatch:
        """Run the loop in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=thread_name or f"watch-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop: abort the watch being read and wait (bounded) for the thread."""
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
