"""Pure: a Pod's status as history facts (the evidence that outlives its events).

Events expire after an hour; a container's previous termination is overwritten by the next. What
the pod's status holds at any moment is turned into facts whose identity is a function of the
status itself, so seeing the same pod in ten updates (or after a relist, or from a second replica)
yields the same documents. Each fact's timestamp is an API time that is part of its identity
(:mod:`collector.sources.history.documents`), so no later, unrelated change of the pod can move a
fact to another daily index:

- ``termination``: identity (pod uid, container, the instance's ``startedAt`` and ``finishedAt``);
  timestamp ``finishedAt``.
- ``waiting``: identity (pod uid, container, ``restartCount``, the last termination's ``finishedAt``,
  reason, and, for a first instance, when the container could start); timestamp the last
  termination's end, else when the container could start (``Initialized``, for an init container
  ``PodScheduled``), else the pod's start.
- ``restart``: identity (pod uid, container, ``restartCount``, the ``startedAt`` of the instance that
  restart created); timestamp that start. The instance whose attempt number is ``restartCount`` is
  the one in ``state`` while it runs or after it ended, and the one in ``lastState`` while the
  container waits to be started again (``CrashLoopBackOff``), so every view of the pod names the
  same start.
- ``readiness``: identity (pod uid, container, the instance's ``startedAt``, ready flag, the pod's
  ``ContainersReady`` transition time); timestamp that transition (the instance's start if later).
  A container's ready flag carries no time of its own; ``ContainersReady`` is the pod-level
  transition it causes. So each flap of one instance (ready, not ready, ready again) is its own
  document, and, in a pod with several containers, a container's readiness is stated again when a
  sibling's change moves ``ContainersReady``.
- ``pod_condition``: identity (pod uid, condition type, status, ``lastTransitionTime``); timestamp
  ``lastTransitionTime`` (the pod's creation for a condition written without one).

A termination is read from ``state.terminated`` and ``lastState.terminated`` alike, keyed by its own
start and finish times rather than by ``restartCount`` (the kubelet reports the last termination
with either the old or the new count depending on whether the next instance exists yet), so it is
one document however it is seen. ``ContainerCreating`` and ``PodInitializing`` are the normal path,
not waiting *reasons*: they produce no document. Readiness: an instance is recorded ready when it
is and the pod's ``ContainersReady`` is True; a ready instance that is not any more is recorded when
``ContainersReady`` is False and the caller saw that instance ready (``was_ready``): a container
that is merely not ready yet while starting is not news. Init containers (``storage-initializer``)
are covered like the others and marked ``init_container``. Waiting and restart documents carry
``restart_count``, readiness documents the instance's ``started_at``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from collector import model as m
from collector.kube.objects import api_time, integer, items, mapping, text
from collector.sources.history.documents import Fact, fact, first_time, iso, latest_time, severity

SOURCE = "pod-status"
BENIGN_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
_FAILED_TERMINATIONS = frozenset({"OOMKilled", "Error", "ContainerCannotRun", "DeadlineExceeded", "StartError"})


def _conditions(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = mapping(pod.get("status"))
    return {text(c.get("type")): c for c in items(status.get("conditions")) if c.get("type")}


def _transition(conditions: Mapping[str, Mapping[str, Any]], kind: str, status: str) -> str:
    """The ``lastTransitionTime`` (as written) of the condition when it has that status; ``''`` otherwise."""
    found = conditions.get(kind)
    if found is None or text(found.get("status")) != status:
        return ""
    return first_time(found.get("lastTransitionTime"))


def instance_key(container: str, started_at: str) -> str:
    """The key of one container instance (for the caller's ``was_ready`` set)."""
    return f"{container}/{started_at}"


def _termination(base: Mapping[str, Any], uid: str, cs: Mapping[str, Any], terminated: Mapping[str, Any],
                 init: bool) -> Fact | None:
    name = text(cs.get("name"))
    started, finished = text(terminated.get("startedAt")), text(terminated.get("finishedAt"))
    exit_code = integer(terminated.get("exitCode"))
    reason = text(terminated.get("reason")) or ("Completed" if exit_code == 0 else "Error")
    summary = f"Container {name} terminated: {reason}" + (f" (exit code {exit_code})" if exit_code is not None else "")
    detail = text(terminated.get("message")).strip()
    fields = {
        **base, m.F_CONTAINER: name, m.H_INIT_CONTAINER: init or None, m.H_REASON: reason, m.H_EXIT_CODE: exit_code,
        m.H_SIGNAL: integer(terminated.get("signal")), m.H_TYPE: severity(exit_code != 0 or reason in _FAILED_TERMINATIONS),
        m.F_MESSAGE: f"{summary}\n{detail}" if detail else summary, m.H_IMAGE: text(cs.get("image")),
        m.H_STARTED_AT: iso(api_time(started)), m.H_FINISHED_AT: iso(api_time(finished)),
    }
    identity = (uid, name, started, finished, "" if started or finished else text(terminated.get("containerID")))
    return fact("termination", identity, first_time(finished, started), fields)


def _waiting(pod: Mapping[str, Any], common: Mapping[str, Any], uid: str, cs: Mapping[str, Any], *, init: bool,
             conditions: Mapping[str, Mapping[str, Any]]) -> Fact | None:
    name, restarts = text(cs.get("name")), integer(cs.get("restartCount")) or 0
    waiting = mapping(mapping(cs.get("state")).get("waiting"))
    reason = text(waiting.get("reason"))
    if not reason or reason in BENIGN_WAITING:
        return None
    last_finished = first_time(mapping(mapping(cs.get("lastState")).get("terminated")).get("finishedAt"))
    identity: tuple[str, ...] = (uid, name, str(restarts), last_finished, reason)
    at = last_finished
    if not at:  # a first instance: when it could have started (a part of the identity too)
        meta, status = mapping(pod.get("metadata")), mapping(pod.get("status"))
        at = (_transition(conditions, "PodScheduled" if init else "Initialized", "True")
              or first_time(status.get("startTime"), meta.get("creationTimestamp")))
        identity += (at,)
    return fact("waiting", identity, at, {
        **common, m.H_REASON: reason, m.H_TYPE: "Warning", m.H_IMAGE: text(cs.get("image")), m.F_RESTART: restarts,
        m.F_MESSAGE: text(waiting.get("message")) or f"Container {name} waiting: {reason}"})


def _restart(common: Mapping[str, Any], uid: str, cs: Mapping[str, Any]) -> Fact | None:
    name, restarts = text(cs.get("name")), integer(cs.get("restartCount")) or 0
    if restarts <= 0:
        return None
    state, last = mapping(cs.get("state")), mapping(cs.get("lastState"))
    previous = mapping(last.get("terminated"))
    if state.get("waiting") is not None:  # attempt ``restarts`` already ended: it is lastState
        started, previous = first_time(previous.get("startedAt")), {}  # the termination before it is gone
    else:
        started = first_time(mapping(state.get("running")).get("startedAt"),
                             mapping(state.get("terminated")).get("startedAt"))
    why, code = text(previous.get("reason")), integer(previous.get("exitCode"))
    after = f"; last termination: {why}" + (f" (exit code {code})" if code is not None else "") if why else ""
    return fact("restart", (uid, name, str(restarts), started), started, {
        **common, m.H_REASON: "Restarted", m.H_TYPE: "Warning", m.F_RESTART: restarts, m.H_EXIT_CODE: code,
        m.F_MESSAGE: f"Container {name} restarted (restart {restarts}){after}"})


def _readiness(common: Mapping[str, Any], uid: str, cs: Mapping[str, Any], *, conditions: Mapping[str, Mapping[str, Any]],
               was_ready: Collection[str], ready_now: set[str]) -> Fact | None:
    name = text(cs.get("name"))
    running_since = text(mapping(mapping(cs.get("state")).get("running")).get("startedAt"))
    if api_time(running_since) is None:
        return None
    key = instance_key(name, running_since)
    fields = {**common, m.H_STARTED_AT: iso(api_time(running_since))}
    if cs.get("ready") is True:
        ready_now.add(key)
        changed = _transition(conditions, "ContainersReady", "True")
        value, reason, message = "True", "ContainerReady", f"Container {name} is ready"
    elif key in was_ready:
        changed = _transition(conditions, "ContainersReady", "False")
        value, reason, message = "False", "ContainerNotReady", f"Container {name} is no longer ready"
    else:
        return None
    if not changed:  # the pod's ContainersReady does not agree (yet): no time to state it at
        return None
    at = latest_time(running_since, changed)
    return fact("readiness", (uid, name, running_since, value, changed), at, {
        **fields, m.H_REASON: reason, m.H_TYPE: severity(value == "False"), m.H_CONDITION_STATUS: value,
        m.F_MESSAGE: message})


def _container_facts(pod: Mapping[str, Any], base: Mapping[str, Any], cs: Mapping[str, Any], *, init: bool,
                     conditions: Mapping[str, Mapping[str, Any]], was_ready: Collection[str],
                     ready_now: set[str]) -> list[Fact | None]:
    uid = text(base.get(m.F_POD_UID))
    state, last = mapping(cs.get("state")), mapping(cs.get("lastState"))
    common = {**base, m.F_CONTAINER: text(cs.get("name")), m.H_INIT_CONTAINER: init or None}
    facts = [_termination(base, uid, cs, terminated, init)
             for terminated in (mapping(state.get("terminated")), mapping(last.get("terminated"))) if terminated]
    facts += [_waiting(pod, common, uid, cs, init=init, conditions=conditions), _restart(common, uid, cs)]
    if not init:
        facts.append(_readiness(common, uid, cs, conditions=conditions, was_ready=was_ready, ready_now=ready_now))
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
    base[m.F_POD_UID] = uid
    ready_now: set[str] = set()
    found: list[Fact | None] = []
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for cs in items(status.get(key)):
            if cs.get("name"):
                found += _container_facts(pod, base, cs, init=init, conditions=conditions, was_ready=was_ready,
                                          ready_now=ready_now)
    for kind, condition in conditions.items():
        value, reason = text(condition.get("status")), text(condition.get("reason"))
        at = first_time(condition.get("lastTransitionTime"), meta.get("creationTimestamp"))
        default = f"Pod condition {kind} is {value}" + (f" ({reason})" if reason else "")
        found.append(fact("pod_condition", (uid, kind, value, at), at, {
            **base, m.H_CONDITION_TYPE: kind, m.H_CONDITION_STATUS: value, m.H_REASON: reason,
            m.H_TYPE: severity(value == "False"), m.F_MESSAGE: text(condition.get("message")) or default,
        }))
    return [f for f in found if f is not None], ready_now
