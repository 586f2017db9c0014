"""Pure reconciliation of API log streams with the pods the watch reports.

A *target* is one container instance whose log the API source streams: the current instance of
every container and init container that has started, and the previous instance of a restarted one
(``previous=true`` reaches exactly one instance back). The source diffs the desired set against the
running streamers, Alloy's ``SyncTargets`` style, keyed like the files source's checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One container instance to stream through ``pods/log``."""

    namespace: str
    pod_name: str
    pod_uid: str
    container: str
    restart_count: int
    previous: bool  # stream the previous (terminated) instance
    finished: bool  # the instance has terminated: read to the end, no follow

    @property
    def key(self) -> str:
        """The checkpoint key, shared with the files source: same line, same position slot."""
        return f"{self.pod_uid}/{self.container}/{self.restart_count}"


def targets_of_pod(pod: Mapping[str, Any], *, excluded_containers: Iterable[str] = ()) -> list[LogTarget]:
    """The container instances of a raw Pod object worth streaming."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
    excluded = set(excluded_containers)
    targets: list[LogTarget] = []
    for statuses in (status.get("initContainerStatuses") or [], status.get("containerStatuses") or []):
        for cs in statuses:
            container = cs.get("name", "")
            if not container or container in excluded:
                continue
            restarts = int(cs.get("restartCount") or 0)
            state = cs.get("state") or {}
            started = "running" in state or "terminated" in state
            if started:
                targets.append(LogTarget(namespace, name, uid, container, restarts, previous=False,
                                         finished="terminated" in state))
            if restarts > 0 and (cs.get("lastState") or {}).get("terminated") is not None:
                targets.append(LogTarget(namespace, name, uid, container, restarts - 1, previous=True, finished=True))
    return targets


def desired_targets(pods: Iterable[Mapping[str, Any]], *, excluded_containers: Iterable[str] = ()) -> set[LogTarget]:
    """Every target of every pod (pure)."""
    excluded = tuple(excluded_containers)
    return {t for pod in pods for t in targets_of_pod(pod, excluded_containers=excluded)}


def reconcile(
    desired: Iterable[LogTarget], running: Iterable[str], completed: Iterable[str]
) -> list[LogTarget]:
    """Targets to start: desired keys neither streaming now nor already read to their end.

    Streamers are never stopped from here: a stream ends by itself when its container terminates or
    its pod is deleted, after delivering the last lines (stopping it early would lose them).
    """
    busy = set(running) | set(completed)
    chosen: dict[str, LogTarget] = {}
    for target in desired:
        if target.key not in busy:
            chosen.setdefault(target.key, target)
    return sorted(chosen.values(), key=lambda t: t.key)
