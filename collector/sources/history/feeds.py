"""Where the history source's objects come from: the cluster's API, or a directory of documents.

:class:`ClusterFeed` (``servelog events`` on a cluster) runs three watches, each cluster-wide and
each one request however many nodes there are: pods (the node-agnostic :class:`PodWatchCache`
caching serving pods only), InferenceServices (optional: a cluster without the KServe CRD is
noticed and rechecked) and Events (started once the other two listed, bounded, so an event about
a pod finds the pod). All three run the shared list-then-watch loop
(:class:`collector.kube.reflector.ListWatch`: pages of ``limit`` objects, 410 relists, bounded
backoff). ``--once`` lists the three in that order and ends; an InferenceService list the
ClusterRole forbids (403) is one of its :meth:`ClusterFeed.problems`, which make the run's exit
status non-zero (a cluster without the CRD, 404, is none: there is nothing to read).

:class:`FilesFeed` (``--from-files DIR``: the demo, or a saved ``kubectl get -o json``) reads every
``*.json``/``*.yaml``/``*.yml`` file of a directory: single objects, ``List``s (``PodList``,
``EventList``, ...) or YAML streams, Events in either API shape. Every pass is treated as a full
list; the files are read again whenever one changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog
import yaml

from collector.errors import CollectorError
from collector.kube.reflector import PAGE_SIZE, ListWatch, Objects, Stream
from collector.kube.streams import ListPage
from collector.sources.history.owners import is_serving, pod_document_fields

if TYPE_CHECKING:
    from collector.kube.client import KubeClient
    from collector.kube.pods import PodWatchCache
    from collector.sources.history.source import HistorySource

log = structlog.get_logger(__name__)

SYNC_WAIT_SECONDS = 30.0  # the event watch waits this long (at most) for pods and InferenceServices
_LIST_KINDS = {"PodList": "Pod", "EventList": "Event", "InferenceServiceList": "InferenceService", "List": ""}
_CHANGES = ("ADDED", "MODIFIED", "DELETED")


class _EventWatch:
    """The Event watch's :class:`~collector.kube.reflector.ListWatchHandler`: objects to the source."""

    def __init__(self, source: HistorySource) -> None:
        self.source = source

    def list_started(self) -> None:
        self.source.events_list_started()

    def listed_page(self, items: Objects) -> None:
        for event in items:
            self.source.on_listed_event(event)

    def list_done(self, resource_version: str) -> None:
        self.source.events_list_done()

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in _CHANGES:
            self.source.on_event(kind, obj)


class _IsvcWatch:
    """The InferenceService watch's :class:`~collector.kube.reflector.ListWatchHandler`."""

    def __init__(self, source: HistorySource) -> None:
        self.source = source

    def list_started(self) -> None:
        self.source.isvcs_list_started()

    def listed_page(self, items: Objects) -> None:
        for isvc in items:
            self.source.on_listed_isvc(isvc)

    def list_done(self, resource_version: str) -> None:
        self.source.isvcs_list_done()

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in _CHANGES:
            self.source.on_isvc(kind, obj)


class ClusterFeed:
    """Pods, InferenceServices and Events from the API server (see the module docstring)."""

    def __init__(self, source: HistorySource, client: KubeClient, *, page_size: int = PAGE_SIZE) -> None:
        """``page_size``: objects per list page (client-go's default), so memory holds a page, not the cluster."""
        from collector.kube.pods import PodWatchCache  # noqa: PLC0415 - the kubernetes client is heavy

        self.source = source
        self.client = client
        settings = source.settings
        k, h = settings.kubernetes, settings.history
        metrics = source.history_metrics
        self.pods: PodWatchCache | None = None
        source.wait_for_pods = h.lifecycle
        if h.lifecycle:
            self.pods = PodWatchCache(
                client, node_name="", label_selector=k.label_selector, exclude_label=k.exclude_label,
                deleted_ttl=k.deleted_pod_ttl_seconds, watch_timeout=k.watch_timeout_seconds,
                custom_fields=k.custom_fields, own_pod=os.environ.get("POD_NAME"), on_event=self._pod_status,
                on_pod=source.on_pod, page_size=page_size,
                keep=lambda pod: is_serving(pod_document_fields(pod, custom_fields=k.custom_fields)),
            )

        def status(resource: str) -> Callable[[str], None]:
            def record(what: str) -> None:
                metrics.watch.labels(resource, what).inc()
                if what in ("LIST", "RELIST", "NOT_INSTALLED", "FORBIDDEN"):
                    metrics.synced.labels(resource).set(1)
                if resource == "inferenceservices" and what in ("NOT_INSTALLED", "FORBIDDEN"):
                    source.isvcs_absent()
            return record

        def watch(open_watch: Callable[..., Stream], **options: Any) -> Callable[[str], Stream]:
            return lambda rv: open_watch(resource_version=rv, timeout_seconds=k.watch_timeout_seconds, **options)

        self.isvcs: ListWatch | None = None
        if h.inferenceservices:
            self.isvcs = ListWatch(
                "inferenceservices",
                list_page=lambda token: client.list_inferenceservices_page(continue_token=token, limit=page_size),
                watch=watch(client.watch_inferenceservices), handler=_IsvcWatch(source),
                on_status=status("inferenceservices"), optional=True, recheck_seconds=h.crd_recheck_seconds,
                log_prefix="history",
            )
        self.events = ListWatch("events", list_page=self._event_page, watch=watch(client.watch_events, api=h.events_api),
                                handler=_EventWatch(source), on_status=status("events"), log_prefix="history")
        self._page_size = page_size
        self._stop = threading.Event()
        self._wait_for_others = False

    def _pod_status(self, what: str) -> None:
        metrics = self.source.history_metrics
        self.source.pods_stale = what in ("GONE", "FAILURE")  # until the next list or watch event
        if what in ("LIST", "RELIST"):
            self.source.on_pods_listed()
            metrics.synced.labels("pods").set(1)
        if what in ("LIST", "RELIST", "GONE", "LIST_EXPIRED", "FAILURE"):
            metrics.watch.labels("pods", what).inc()

    def _others_synced(self) -> bool:
        pods = self.pods is None or self.pods.synced()
        isvcs = self.isvcs is None or self.isvcs.synced()
        return pods and isvcs

    def _event_page(self, continue_token: str) -> ListPage:
        if self._wait_for_others and not continue_token:
            deadline = time.monotonic() + SYNC_WAIT_SECONDS
            while not self._others_synced() and time.monotonic() < deadline and not self._stop.is_set():
                self._stop.wait(0.05)
            self._wait_for_others = False
        return self.client.list_events_page(api=self.source.settings.history.events_api, continue_token=continue_token,
                                            limit=self._page_size)

    def once(self) -> None:
        if self.pods is not None:
            self.pods.relist()
        if self.isvcs is not None:
            self.isvcs.relist()
        self.events.relist()

    def start(self) -> None:
        self._wait_for_others = True
        if self.pods is not None:
            self.pods.start()
        if self.isvcs is not None:
            self.isvcs.start("history-inferenceservices")
        self.events.start("history-events")

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for part in (self.events, self.isvcs, self.pods):
            if part is not None:
                part.stop()
        self.client.close()

    def synced(self) -> bool:
        return self._others_synced() and self.events.synced()

    def healthy(self) -> tuple[bool, str]:
        for name, part in (("events", self.events), ("inferenceservices", self.isvcs), ("pods", self.pods)):
            if part is not None and not part.alive():
                return False, f"the {name} watch stopped: {part.error!r}"
        return True, "watching"

    def problems(self) -> list[str]:
        """What could not be read although it exists (a 404 CRD is no problem: nothing to read)."""
        if self.isvcs is not None and self.isvcs.absent == "forbidden":
            return ["InferenceServices could not be read: the API server answered 403 (grant get/list/watch on "
                    "inferenceservices.serving.kserve.io, deploy/events-rbac.yaml); their status is not in the history"]
        return []


def read_documents(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every object of the directory's JSON/YAML files, by kind (``Pod``, ``Event``, ``InferenceService``, other)."""
    found: dict[str, list[dict[str, Any]]] = {"Pod": [], "Event": [], "InferenceService": [], "other": []}
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".json", ".yaml", ".yml") and p.is_file()):
        try:
            data = path.read_bytes()
            docs = [orjson.loads(data)] if path.suffix == ".json" else list(yaml.safe_load_all(data))
        except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
            raise CollectorError(f"history file {path}: {exc}") from exc
        for doc in docs:
            for obj, kind in _objects(doc):
                found[kind if kind in found else "other"].append(obj)
    return found


def _objects(doc: Any) -> list[tuple[dict[str, Any], str]]:
    if not isinstance(doc, dict):
        return []
    kind = str(doc.get("kind") or "")
    if kind in _LIST_KINDS or (not kind and isinstance(doc.get("items"), list)):
        implied = _LIST_KINDS.get(kind, "")
        return [(item, str(item.get("kind") or implied)) for item in doc.get("items") or [] if isinstance(item, dict)]
    return [(doc, kind)]


class FilesFeed:
    """Objects from a directory, read again whenever a file changes."""

    def __init__(self, source: HistorySource, directory: Path, *, interval: float) -> None:
        self.source = source
        self.directory = directory
        self.interval = interval
        self._stop = threading.Event()
        self._synced = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _signature(self) -> list[tuple[str, int, int]]:
        out = []
        for path in sorted(self.directory.iterdir()):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # replaced while we looked: the next pass sees the new one
            out.append((path.name, stat.st_mtime_ns, stat.st_size))
        return out

    def once(self) -> None:
        found = read_documents(self.directory)
        for obj in found["other"]:
            self.source.history_metrics.skipped.labels("unknown_kind").inc()
            log.warning("history_file_object_skipped", kind=obj.get("kind"), name=(obj.get("metadata") or {}).get("name"),
                        note="only Pod, Event and InferenceService objects are read")
        for pod in found["Pod"]:
            self.source.on_pod("LISTED", pod)
        self.source.on_pods_listed()
        if found["InferenceService"]:
            self.source.isvcs_list_started()
            for isvc in found["InferenceService"]:
                self.source.on_listed_isvc(isvc)
            self.source.isvcs_list_done()
        else:
            self.source.isvcs_absent()
        self.source.events_list_started()
        for event in found["Event"]:
            self.source.on_listed_event(event)
        self.source.events_list_done()
        self._synced = True

    def _loop(self) -> None:
        seen: list[tuple[str, int, int]] | None = None
        try:
            while not self._stop.is_set():
                signature = self._signature()
                if signature != seen:
                    self.once()
                    seen = signature
                self._stop.wait(self.interval)
        except Exception as exc:
            self.error = exc
            log.exception("history_files_failed", directory=str(self.directory))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="history-files", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def synced(self) -> bool:
        return self._synced

    def healthy(self) -> tuple[bool, str]:
        if self.error is not None:
            return False, f"reading {self.directory} failed: {self.error}"
        return True, "reading files"

    def problems(self) -> list[str]:
        return []
