"""Pure: Kubernetes Events, in either API shape, as history facts.

core/v1 and events.k8s.io/v1 serve the same Event objects (same uids) under different field names
(``involvedObject``/``regarding``, ``message``/``note``, ``count``/``deprecatedCount``,
``source``/``deprecatedSource``, ``firstTimestamp``/``deprecatedFirstTimestamp`` ...). Events
written by the old recorder (the kubelet) have ``eventTime: null``; events written by the new one
(the scheduler) have no first/last timestamps and count repetitions in ``series``. So every field
is read from whichever place holds it, and nothing assumes a timestamp is there.

**Identity of an event document: (event uid, occurrence number, its time)**, the occurrence number being
``series.count``, else ``count`` / ``deprecatedCount``, else 1. An event seen again with the same
count (a relist, a second replica) is the same document; each growth of the count is a new one
("Back-off restarting failed container" x 37 is the document with ``count`` 37, and readers fold
the series). Its ``timestamp`` is when that occurrence was observed: ``series.lastObservedTime``,
else ``lastTimestamp``, else ``eventTime``, else ``firstTimestamp``, else the object's creation;
that time, as written, is the third part of the identity (:mod:`collector.sources.history.documents`:
a fact's time is always part of its identity), so whichever API shape or observation carried the
occurrence, it is one (index, ``_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector import model as m
from collector.kube.objects import api_time, container_of_field_path, integer, mapping, text
from collector.sources.history.documents import Fact, first_time, iso


@dataclass(frozen=True, slots=True)
class EventView:
    """An Event reduced to what history needs, whatever API shape it came in."""

    uid: str
    namespace: str
    occurrence: int
    at: str  # the occurrence's time, as the API wrote it
    ts_ns: int
    first_ns: int | None
    last_ns: int | None
    reason: str
    type: str
    message: str
    source: str
    host: str
    involved_kind: str
    involved_name: str
    involved_namespace: str
    involved_uid: str
    container: str
    init_container: bool


def _pick(event: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = event.get(key)
        if value not in (None, "", {}):
            return value
    return None


def view_event(event: Mapping[str, Any]) -> EventView | None:
    """The :class:`EventView` of a raw Event (either shape); None when it names no time at all."""
    meta = mapping(event.get("metadata"))
    series = mapping(event.get("series"))
    involved = mapping(_pick(event, "involvedObject", "regarding"))
    source = mapping(_pick(event, "source", "deprecatedSource"))
    first = api_time(first_time(_pick(event, "firstTimestamp", "deprecatedFirstTimestamp"), event.get("eventTime")))
    last = api_time(first_time(series.get("lastObservedTime"), _pick(event, "lastTimestamp", "deprecatedLastTimestamp")))
    at = first_time(series.get("lastObservedTime"), _pick(event, "lastTimestamp", "deprecatedLastTimestamp"),
                    event.get("eventTime"), _pick(event, "firstTimestamp", "deprecatedFirstTimestamp"),
                    meta.get("creationTimestamp"))
    ts = api_time(at)
    if ts is None:
        return None
    occurrence = integer(series.get("count")) or integer(_pick(event, "count", "deprecatedCount")) or 1
    namespace = text(meta.get("namespace")) or text(involved.get("namespace"))
    container, init = "", False
    if (named := container_of_field_path(involved.get("fieldPath"))) is not None:
        container, init = named[0], named[1] == "initContainers"
    reporter = text(source.get("component")) or text(_pick(event, "reportingComponent", "reportingController"))
    host = text(source.get("host")) or (text(event.get("reportingInstance")) if reporter == "kubelet" else "")
    return EventView(
        uid=text(meta.get("uid")) or f"{namespace}/{text(meta.get('name'))}",
        namespace=namespace, occurrence=max(1, occurrence), at=at, ts_ns=ts, first_ns=first, last_ns=last or ts,
        reason=text(event.get("reason")), type=text(event.get("type")) or "Normal",
        message=text(_pick(event, "message", "note")), source=reporter, host=host,
        involved_kind=text(involved.get("kind")), involved_name=text(involved.get("name")),
        involved_namespace=text(involved.get("namespace")) or namespace, involved_uid=text(involved.get("uid")),
        container=container, init_container=init,
    )


def event_fact(view: EventView, serving: Mapping[str, Any]) -> Fact:
    """The history fact of one event occurrence, enriched with the involved object's ``serving`` fields."""
    fields: dict[str, Any] = dict(serving)
    fields.update({
        m.F_NAMESPACE: view.involved_namespace or view.namespace,
        m.H_REASON: view.reason, m.H_TYPE: view.type, m.F_MESSAGE: view.message, m.H_COUNT: view.occurrence,
        m.H_SOURCE: view.source, m.H_INVOLVED_KIND: view.involved_kind, m.H_INVOLVED_NAME: view.involved_name,
        m.H_FIRST_TIMESTAMP: iso(view.first_ns), m.H_LAST_TIMESTAMP: iso(view.last_ns),
    })
    if view.involved_kind == "Pod":
        fields[m.F_POD_NAME] = view.involved_name
        if view.involved_uid:
            fields[m.F_POD_UID] = view.involved_uid
    if view.container:
        fields[m.F_CONTAINER] = view.container
        if view.init_container:
            fields[m.H_INIT_CONTAINER] = True
    if view.host and not fields.get(m.F_NODE):
        fields[m.F_NODE] = view.host
    return Fact("event", (view.uid, str(view.occurrence), view.at), view.at, fields)
