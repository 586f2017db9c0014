"""Where the history source's objects come from: the cluster's API, or a directory of documents.

:class:`ClusterFeed` (``servelog events`` on a cluster) runs three watches, each cluster-wide and
each one request however many nodes there are: pods (the node-agnostic :class:`PodWatchCache`
caching serving pods only), InferenceServices (optional: a cluster without the KServe CRD is
noticed and rechecked) and Events (started once the other two listed, bounded, so an event about
a pod finds the pod). ``--once`` lists the three in that order and ends.

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
from collector.sources.history.owners import is_serving, pod_document_fields
from collector.sources.history.reflector import Reflector

if TYPE_CHECKING:
    from collector.kube.client import KubeClient
    from collector.kube.pods import PodWatchCache
    from collector.sources.history.source import HistorySource

log = structlog.get_logger(__name__)

SYNC_WAIT_SECONDS = 30.0  # the event watch waits this long (at most) for pods and InferenceServices
_LIST_KINDS = {"PodList": "Pod", "EventList": "Event", "InferenceServiceList": "InferenceService", "List": ""}


class ClusterFeed:
    """Pods, InferenceServices and Events from the API server (see the module docstring)."""

    def __init__(self, source: HistorySource, client: KubeClient) -> None:
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
                on_pod=source.on_pod,
                keep=lambda pod: is_serving(pod_document_fields(pod, custom_fields=k.custom_fields)),
            )

        def status(resource: str) -> Callable[[str], None]:
            def record(what: str) -> None:
                metrics.watch.labels(resource, what).inc()
                if what in ("LIST", "RELIST", "NOT_INSTALLED", "FORBIDDEN"):
                    metrics.synced.labels(resource).set(1)
                if resource == "inferenceservices" and what in ("NOT_INSTALLED", "FORBIDDEN"):
                    source.on_isvcs_listed([], active=False)
            return record

        self.isvcs: Reflector | None = None
        if h.inferenceservices:
            self.isvcs = Reflector(
                "inferenceservices", list_objects=client.list_inferenceservices,
                watch=lambda rv: client.watch_inferenceservices(resource_version=rv, timeout_seconds=k.watch_timeout_seconds),
                on_list=source.on_isvcs_listed, on_change=source.on_isvc, on_status=status("inferenceservices"),
                optional=True, recheck_seconds=h.crd_recheck_seconds,
            )
        self.events = Reflector(
            "events", list_objects=self._list_events,
            watch=lambda rv: client.watch_events(resource_version=rv, timeout_seconds=k.watch_timeout_seconds,
                                                 api=h.events_api),
            on_list=source.on_events_listed, on_change=source.on_event, on_status=status("events"),
        )
        self._stop = threading.Event()
        self._wait_for_others = False

    def _pod_status(self, what: str) -> None:
        metrics = self.source.history_metrics
        self.source.pods_stale = what in ("GONE", "FAILURE")  # until the next list or watch event
        if what in ("LIST", "RELIST"):
            self.source.on_pods_listed()
            metrics.synced.labels("pods").set(1)
        if what in ("LIST", "RELIST", "GONE", "FAILURE"):
            metrics.watch.labels("pods", what).inc()

    def _others_synced(self) -> bool:
        pods = self.pods is None or self.pods.synced()
        isvcs = self.isvcs is None or self.isvcs.synced.is_set()
        return pods and isvcs

    def _list_events(self) -> tuple[list[dict[str, Any]], str]:
        if self._wait_for_others:
            deadline = time.monotonic() + SYNC_WAIT_SECONDS
            while not self._others_synced() and time.monotonic() < deadline and not self._stop.is_set():
                self._stop.wait(0.05)
            self._wait_for_others = False
        return self.client.list_events(api=self.source.settings.history.events_api)

    def once(self) -> None:
        if self.pods is not None:
            self.pods.relist()
        if self.isvcs is not None:
            self.isvcs.list_now()
        self.events.list_now()

    def start(self) -> None:
        self._wait_for_others = True
        if self.pods is not None:
            self.pods.start()
        if self.isvcs is not None:
            self.isvcs.start()
        self.events.start()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for part in (self.events, self.isvcs, self.pods):
            if part is not None:
                part.stop()
        self.client.close()

    def synced(self) -> bool:
        return self._others_synced() and self.events.synced.is_set()

    def healthy(self) -> tuple[bool, str]:
        for reflector in (self.events, self.isvcs):
            if reflector is not None and not reflector.alive():
                return False, f"the {reflector.name} watch stopped: {reflector.error!r}"
        thread = getattr(self.pods, "_thread", None)
        if thread is not None and not thread.is_alive() and not self._stop.is_set():
            return False, "the pod watch stopped"
        return True, "watching"


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
        self.source.on_isvcs_listed(found["InferenceService"], active=bool(found["InferenceService"]))
        self.source.on_events_listed(found["Event"])
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
