"""How often a container was OOM-killed, and when: the evidence behind the OOM advice, with times (pure).

Why: "OOMKilled 3 times in 10 minutes" must be true. A restart count says how often a container
restarted since its pod started, not why nor when (an early crash, a liveness kill and an OOM kill
all count), so the advice counts only kills that carry a time:

- each pod's container status: ``lastState.terminated`` and ``state.terminated`` with reason
  ``OOMKilled`` (their ``finishedAt``), across the component's pods;
- Events about those pods with reason ``OOMKilled`` or ``OOMKilling`` (their ``count`` occurrences
  between the first and the last time; ``BackOff`` is a restart delay, not a kill). A status kill
  within a few seconds of an event's last time is that event's occurrence, not another one.

Only kills in the last :data:`WINDOW_NS` (an hour, about as long as Kubernetes keeps events) count;
the advice then states the span the evidence covers ("in the last 42 minutes"), or when the one
known kill happened ("last at 09:19 UTC").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from collector.deployment.objects import Event, Obj, items, mapping, meta, name_of, time_ns

WINDOW_NS = 3600 * 10**9  # the evidence counted: the last hour
_SAME_KILL_NS = 5 * 10**9  # a status kill this close to an event's last time is that occurrence
OOM_EVENTS = frozenset({"OOMKilled", "OOMKilling"})


@dataclass(frozen=True, slots=True)
class OomKills:
    """OOM kills with times in the window: how many, the first and the last (ns)."""

    count: int
    first_ns: int
    last_ns: int


def _status_kills(pod: Obj, container: str | None) -> list[int]:
    status = mapping(pod.get("status"))
    found = []
    for cs in [*items(status.get("initContainerStatuses")), *items(status.get("containerStatuses"))]:
        if container and cs.get("name") != container:
            continue
        for where in (mapping(cs.get("lastState")), mapping(cs.get("state"))):
            ended = mapping(where.get("terminated"))
            finished = time_ns(ended.get("finishedAt"))
            if ended.get("reason") == "OOMKilled" and finished:
                found.append(finished)
    return found


def oom_kills(pods: Sequence[Obj], events: Sequence[Event], *, container: str | None, now_ns: int,
              window_ns: int = WINDOW_NS) -> OomKills | None:
    """The OOM kills of ``container`` (any, when None) in these pods within ``window_ns`` before ``now_ns``."""
    start = now_ns - window_ns
    count, times = 0, []
    for pod in pods:
        uid = str(meta(pod).get("uid") or "")
        evented = [e for e in events if e.reason in OOM_EVENTS and e.kind == "Pod" and e.time_ns >= start
                   and (e.uid == uid if e.uid and uid else e.name == name_of(pod))
                   and (container is None or e.container in (None, container))]
        newest_event = max((e.time_ns for e in evented), default=None)
        for event in evented:
            count += max(event.count, 1)
            times += [max(event.first_ns or event.time_ns, 0), event.time_ns]
        for finished in _status_kills(pod, container):
            if finished < start or (newest_event is not None and abs(finished - newest_event) <= _SAME_KILL_NS):
                continue
            count += 1
            times.append(finished)
    if not count:
        return None
    return OomKills(count, min(times), max(times))


def clock_time(ns: int, now_ns: int) -> str:
    """``09:19 UTC``, with the date when it is not ``now_ns``'s day."""
    when, today = datetime.fromtimestamp(ns / 1e9, UTC), datetime.fromtimestamp(now_ns / 1e9, UTC)
    return when.strftime("%H:%M UTC" if when.date() == today.date() else "%Y-%m-%d %H:%M UTC")


def span(ns: int) -> str:
    """A duration in whole minutes (at least one), in hours from two hours on."""
    minutes = max(-(-ns // 60_000_000_000), 1)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


def how_often_oom(kills: OomKills | None, *, now_ns: int, last_known: str | None = None) -> str:
    """``OOMKilled 3 times in the last 42 minutes``, ``OOMKilled (last at 09:19 UTC)``, or ``OOMKilled``.

    ``last_known`` is the failure's own time, for a kill older than the window.
    """
    if kills is not None and kills.count > 1 and kills.last_ns > kills.first_ns:
        return f"OOMKilled {kills.count} times in the last {span(now_ns - kills.first_ns)}"
    if kills is not None and kills.count > 1:
        return f"OOMKilled {kills.count} times (last at {clock_time(kills.last_ns, now_ns)})"
    last = kills.last_ns if kills is not None else time_ns(last_known)
    return f"OOMKilled (last at {clock_time(last, now_ns)})" if last else "OOMKilled"
