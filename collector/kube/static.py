"""Static pod metadata from a file, for runs outside a cluster (the local demo, backfills of copied logs).

The file holds pods the way Kubernetes prints them: a PodList (``kubectl get pods -o yaml`` or
``-o json``), ``{"items": [...]}``, a plain list of pods, or a single Pod, in YAML or JSON (JSON is
YAML, so one parser reads both). The same presets as the pod watch apply, so documents look the same
whichever provider enriched them. The file is re-read when its modification time changes, checked
at most once a second and only on lookup: editing it while the collector runs takes effect without
a restart. A file that becomes unreadable or malformed keeps the last good contents (logged), since
throwing away all metadata because of a half-saved edit would be worse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
import yaml

from collector.errors import ConfigError
from collector.kube.presets import pod_metadata
from collector.model import PodMetadata

log = structlog.get_logger(__name__)

_CHECK_INTERVAL_SECONDS = 1.0


def parse_pods(data: Any, *, source: str = "metadata_file") -> list[dict[str, Any]]:
    """The pods of a loaded PodList / ``{"items": ...}`` / list of pods / single Pod."""
    if data is None:
        return []
    if isinstance(data, dict):
        if "items" in data:
            data = data.get("items") or []
        elif data.get("kind") == "Pod" or "metadata" in data:
            data = [data]
        else:
            raise ConfigError([f"{source}: expected a PodList, a list of pods, or a pod"])
    if not isinstance(data, list):
        raise ConfigError([f"{source}: expected a PodList, a list of pods, or a pod"])
    return [pod for pod in data if isinstance(pod, dict)]


def load_pods(path: Path) -> list[dict[str, Any]]:
    """The pods in ``path``; :class:`~collector.errors.ConfigError` when it cannot be read or parsed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"metadata_file {path}: {exc}"]) from exc
    return parse_pods(data, source=f"metadata_file {path}")


class StaticMetadataProvider:
    """Implements :class:`collector.model.MetadataProvider` from a file of pods."""

    name = "static"

    def __init__(self, path: Path, *, custom_fields: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Reads ``path`` now: a missing or malformed file is a :class:`~collector.errors.ConfigError`."""
        self._path = Path(path)
        self._custom = dict(custom_fields or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._meta: dict[str, PodMetadata] = {}
        self._pods: list[dict[str, Any]] = []
        self._mtime_ns = self._stat()
        if self._mtime_ns is None:
            raise ConfigError([f"metadata_file: no such file {self._path}"])
        self._load(load_pods(self._path))
        self._checked = self._clock()

    def _stat(self) -> int | None:
        try:
            return self._path.stat().st_mtime_ns
        except OSError:
            return None

    def _load(self, pods: list[dict[str, Any]]) -> None:
        metas = (pod_metadata(pod, custom_fields=self._custom) for pod in pods)
        self._meta = {meta.uid: meta for meta in metas if meta.uid}
        self._pods = pods

    def _refresh(self) -> None:
        """Re-read the file if it changed since the last read (called with the lock held)."""
        mtime_ns = self._stat()
        if mtime_ns is None or mtime_ns == self._mtime_ns:
            return
        try:
            pods = load_pods(self._path)
        except ConfigError as exc:
            log.warning("metadata_file_unreadable", path=str(self._path), error=str(exc), action="keeping last contents")
            return
        self._mtime_ns = mtime_ns
        self._load(pods)
        log.info("metadata_file_reloaded", path=str(self._path), pods=len(self._meta))

    def lookup(self, pod_uid: str) -> PodMetadata | None:
        with self._lock:
            now = self._clock()
            if now - self._checked >= _CHECK_INTERVAL_SECONDS:
                self._checked = now
                self._refresh()
            return self._meta.get(pod_uid)

    def synced(self) -> bool:
        return True

    def pods(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pods)
