"""Pure: a Pod's status as history facts (the evidence that outlives its events).

Events expire after an hour; a container's previous termination is overwritten by the next. What
the pod's status holds at any moment is turned into facts whose identity is a function of the
status itself, so seeing the same pod in ten updates (or after a relist, or from a second replica)
yields the same documents:

- ``termination``: identity (pod uid, container, the instance's ``startedAt`` and ``finishedAt``);
  timestamp ``finishedAt``.
- ``waiting``: identity (pod uid, container, ``restartCount``, the last termination's ``finishedAt``,
  reason); timestamp the last termination's end, else when the container could start.
- ``restart``: identity (pod uid, container, ``restartCount``); timestamp the new instance's start.
- ``readiness``: identity (pod uid, container, the instance's ``startedAt``, ready flag); timestamp
  the ``ContainersReady`` / ``Ready`` transition.
- ``pod_condition``: identity (pod uid, condition type, status, ``lastTransitionTime``); timestamp
  ``lastTransitionTime``.

A termination is read from ``state.terminated`` and ``lastState.terminated`` alike, keyed by its own
start and finish times rather than by ``restartCount`` (the kubelet reports the last termination
with either the old or the new count depending on whether the next instance exists yet), so it is
one document however it is seen. ``ContainerCreating`` and ``PodInitializing`` are the normal path,
not waiting *reasons*: they produce no document. Readiness: an instance that becomes ready is one
document; an instance that was seen ready and is not any more is another (``was_ready``, kept by
the caller); a container that is merely not ready yet while starting is not news. Init containers
(``storage-initializer``) are covered like the others and marked ``init_container``. Waiting and
restart documents carry ``restart_count``, readiness documents the instance's ``started_at``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from collector import model as m
from collector.sources.history.documents import Fact, first_time, integer, iso, mapping, parse_time, severity, text

SOURCE = "pod-status"
BENIGN_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
_FAILED_TERMINATIONS = frozenset({"OOMKilled", "Error", "ContainerCannotRun", "DeadlineExceeded", "StartError"})


def _conditions(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = mapping(pod.get("status"))
    return {text(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping) and c.get("type")}


def _condition_time(conditions: Mapping[str, Mapping[str, Any]], kind: str, status: str) -> int | None:
    found = conditions.get(kind)
    if found is None or text(found.get("status")) != status:
        return None
    return parse_time(found.get("lastTransitionTime"))


def instance_key(container: str, started_at: str) -> str:
    """The key of one container instance (for the caller's ``was_ready`` set)."""
    return f"{container}/{started_at}"


def _termination(base: Mapping[str, Any], uid: str, cs: Mapping[str, Any], terminated: Mapping[str, Any],
                 init: bool) -> Fact | None:
    name = text(cs.get("name"))
    started, finished = text(terminated.get("startedAt")), text(terminated.get("finishedAt"))
    ts = first_time(finished, started)
    if ts is None:
        return None
    exit_code = integer(terminated.get("exitCode"))
    reason = text(terminated.get("reason")) or ("Completed" if exit_code == 0 else "Error")
    summary = f"Container {name} terminated: {reason}" + (f" (exit code {exit_code})" if exit_code is not None else "")
    detail = text(terminated.get("message")).strip()
    fields = {
        **base, m.F_CONTAINER: name, m.H_INIT_CONTAINER: init or None, m.H_REASON: reason, m.H_EXIT_CODE: exit_code,
        m.H_SIGNAL: integer(terminated.get("signal")), m.H_TYPE: severity(exit_code != 0 or reason in _FAILED_TERMINATIONS),
        m.F_MESSAGE: f"{summary}\n{detail}" if detail else summary, m.H_IMAGE: text(cs.get("image")),
        m.H_STARTED_AT: _iso(parse_time(started)), m.H_FINISHED_AT: _iso(parse_time(finished)),
    }
    return Fact("termination", (uid, name, started, finished, "" if started or finished else text(terminated.get("containerID"))),
                ts, fields)


def _container_facts(pod: Mapping[str, Any], base: Mapping[str, Any], cs: Mapping[str, Any], *, init: bool,
                     conditions: Mapping[str, Mapping[str, Any]], was_ready: Collection[str],
                     ready_now: set[str]) -> list[Fact]:
    uid = text(base.get(m.F_POD_UID))
    name = text(cs.get("name"))
    state, last = mapping(cs.get("state")), mapping(cs.get("lastState"))
    restarts = integer(cs.get("restartCount")) or 0
    common = {**base, m.F_CONTAINER: name, m.H_INIT_CONTAINER: init or None}
    facts: list[Fact] = []
    for terminated in (mapping(state.get("terminated")), mapping(last.get("terminated"))):
        if terminated and (fact := _termination(base, uid, cs, terminated, init)) is not None:
            facts.append(fact)
    last_finished = text(mapping(last.get("terminated")).get("finishedAt"))
    waiting = mapping(state.get("waiting"))
    reason = text(waiting.get("reason"))
    if reason and reason not in BENIGN_WAITING:
        meta, status = mapping(pod.get("metadata")), mapping(pod.get("status"))
        could_start = _condition_time(conditions, "PodScheduled" if init else "Initialized", "True")
        ts = first_time(last_finished) or could_start or first_time(status.get("startTime"), meta.get("creationTimestamp"))
        if ts is not None:
            facts.append(Fact("waiting", (uid, name, str(restarts), last_finished, reason), ts, {
                **common, m.H_REASON: reason, m.H_TYPE: "Warning", m.H_IMAGE: text(cs.get("image")), m.F_RESTART: restarts,
                m.F_MESSAGE: text(waiting.get("message")) or f"Container {name} waiting: {reason}"}))
    running_since = text(mapping(state.get("running")).get("startedAt"))
    if restarts > 0:
        ts = first_time(running_since, mapping(state.get("terminated")).get("startedAt"), last_finished)
        if ts is not None:
            previous = mapping(last.get("terminated"))
            why = text(previous.get("reason"))
            code = integer(previous.get("exitCode"))
            after = f"; last termination: {why}" + (f" (exit code {code})" if code is not None else "") if why else ""
            facts.append(Fact("restart", (uid, name, str(restarts)), ts, {
                **common, m.H_REASON: "Restarted", m.H_TYPE: "Warning", m.F_RESTART: restarts, m.H_EXIT_CODE: code,
                m.F_MESSAGE: f"Container {name} restarted (restart {restarts}){after}"}))
    if running_since and not init:
        key = instance_key(name, running_since)
        started_ns = parse_time(running_since) or 0
        common[m.H_STARTED_AT] = _iso(parse_time(running_since))
        if cs.get("ready") is True:
            ready_now.add(key)
            ts = max(started_ns, _condition_time(conditions, "ContainersReady", "True") or 0)
            facts.append(Fact("readiness", (uid, name, running_since, "True"), ts, {
                **common, m.H_REASON: "ContainerReady", m.H_TYPE: "Normal", m.H_CONDITION_STATUS: "True",
                m.F_MESSAGE: f"Container {name} is ready"}))
        elif key in was_ready:
            dropped = _condition_time(conditions, "Ready", "False") or _condition_time(conditions, "ContainersReady", "False")
            facts.append(Fact("readiness", (uid, name, running_since, "False"), max(started_ns, dropped or 0), {
                **common, m.H_REASON: "ContainerNotReady", m.H_TYPE: "Warning", m.H_CONDITION_STATUS: "False",
                m.F_MESSAGE: f"Container {name} is no longer ready"}))
    return facts


def pod_facts(pod: Mapping[str, Any], base: Mapping[str, Any], *,
              was_ready: Collection[str] = ()) -> tuple[list[Fact], set[str]]:
    """Every fact the pod's status holds now, and the container instances ready now.

    ``base`` carries the pod's document fields (namespace, pod name and uid, node, serving, model,
    version, component); ``was_ready`` the instances the caller saw ready before.
    """
    status = mapping(pod.get("status"))
    meta = mapping(pod.get("metadata"))
    conditions = _conditions(pod)
    base = {**base, m.H_SOURCE: SOURCE, m.H_INVOLVED_KIND: "Pod", m.H_INVOLVED_NAME: text(meta.get("name"))}
    uid = text(base.get(m.F_POD_UID)) or text(meta.get("uid"))
    ready_now: set[str] = set()
    facts: list[Fact] = []
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for cs in status.get(key) or []:
            if isinstance(cs, Mapping) and cs.get("name"):
                facts += _container_facts(pod, base, cs, init=init, conditions=conditions, was_ready=was_ready,
                                          ready_now=ready_now)
    for kind, condition in conditions.items():
        value, changed = text(condition.get("status")), text(condition.get("lastTransitionTime"))
        ts = first_time(changed, meta.get("creationTimestamp"))
        if ts is None:
            continue
        reason = text(condition.get("reason"))
        default = f"Pod condition {kind} is {value}" + (f" ({reason})" if reason else "")
        facts.append(Fact("pod_condition", (uid, kind, value, changed), ts, {
            **base, m.H_CONDITION_TYPE: kind, m.H_CONDITION_STATUS: value, m.H_REASON: reason,
            m.H_TYPE: severity(value == "False"), m.F_MESSAGE: text(condition.get("message")) or default,
        }))
    return facts, ready_now


def _iso(ts_ns: int | None) -> str | None:
    return iso(ts_ns) if ts_ns is not None else None
