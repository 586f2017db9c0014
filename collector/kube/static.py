"""Static pod metadata from a file: a Kubernetes PodList (``kubectl get pods -o yaml``) in YAML or JSON.

For runs outside a cluster (the local demo, backfills of copied log directories). The same presets
as the pod watch apply, so documents look the same either way. The file is re-read when it changes
(checked at most once a second).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import yaml

from collector.errors import ConfigError
from collector.kube.presets import pod_metadata
from collector.model import PodMetadata


def load_pods(path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"metadata_file {path}: {exc}"]) from exc
    if isinstance(data, dict):
        data = data.get("items", [data] if data.get("kind") == "Pod" else [])
    if not isinstance(data, list):
        raise ConfigError([f"metadata_file {path}: expected a PodList, a list of pods, or a pod"])
    return [pod for pod in data if isinstance(pod, dict)]


class StaticMetadataProvider:
    """Implements :class:`collector.model.MetadataProvider` from a file."""

    name = "static"

    def __init__(self, path: Path, *, custom_fields: dict[str, str] | None = None) -> None:
        self._path = path
        self._custom = custom_fields or {}
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime = -1.0
        self._meta: dict[str, PodMetadata] = {}
        self._pods: list[dict[str, Any]] = []
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            return
        if mtime == self._mtime:
            return
        pods = load_pods(self._path)
        self._pods = pods
        self._meta = {m.uid: m for m in (pod_metadata(p, custom_fields=self._custom) for p in pods) if m.uid}
        self._mtime = mtime

    def lookup(self, pod_uid: str) -> PodMetadata | None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= 1.0:
                self._checked = now
                self._reload()
            return self._meta.get(pod_uid)

    def synced(self) -> bool:
        return True

    def pods(self) -> list[dict[str, Any]]:
        return list(self._pods)
