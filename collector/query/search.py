"""Pure construction of log searches and the cursor that makes paging gap-free.

Results are sorted by (``timestamp``, ``doc_id``) and paged with ``search_after`` on that pair, so
lines sharing a timestamp are neither skipped nor repeated across pages. ``doc_id`` is the
document's own ``_id`` stored as a keyword: it has doc values, whereas sorting on ``_id`` itself
loads ``_id`` fielddata onto the heap, is deprecated, and is refused where
``indices.id_field_data.enabled`` is false (OpenSearch ``IdFieldMapper``). ``unmapped_type`` keeps a
search over indices created before ``doc_id`` existed from failing (their lines sort by timestamp
only). ``numeric_type: date_nanos`` makes sort values epoch nanoseconds in every index, whether it
maps ``timestamp`` as ``date_nanos`` (servelog's template) or as ``date``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector import model as m
from collector.transforms.cri import parse_timestamp

Key = tuple[int, str]
"""A hit's place in the sort order: (timestamp in epoch nanoseconds, doc_id)."""


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What the user asked for."""

    serving_name: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    component: str | None = None
    container_name: str | None = None
    namespace: str | None = None
    pod_name: str | None = None
    level: str | None = None
    text: str | None = None
    since: str | None = None  # RFC 3339 or date math (now-1h)
    until: str | None = None


def nanos_to_rfc3339(nanos: int) -> str:
    """Epoch nanoseconds as the ``strict_date_optional_time_nanos`` text a range query on ``timestamp`` takes."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


_DATE_MATH = re.compile(r"^now(?:(?P<sign>[-+])(?P<amount>\d+)(?P<unit>[smhdw]))?$")
_DURATION = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def when_ns(text: str, now_ns: int) -> int:
    """``--since`` / ``--until`` read without OpenSearch (the transient source): epoch nanoseconds.

    RFC 3339 (``2026-11-24T09:00:00Z``, any fraction, ``Z`` or an offset), a day (``2026-11-24``: its
    start, UTC), a duration back from now (``10m``, ``2h``, ``1d``), or the date math most used with
    OpenSearch: ``now``, ``now-15m``, ``now-1h``, ``now-2d`` (units ``s m h d w``). Anything else is a
    :class:`ValueError` (a usage error).
    """
    value = text.strip()
    if match := _DURATION.match(value):  # 10m: that long ago
        return now_ns - int(match["amount"]) * _UNIT_SECONDS[match["unit"]] * 1_000_000_000
    if match := _DATE_MATH.match(value):
        if not match["sign"]:
            return now_ns
        delta = int(match["amount"]) * _UNIT_SECONDS[match["unit"]] * 1_000_000_000
        return now_ns - delta if match["sign"] == "-" else now_ns + delta
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value += "T00:00:00Z"
    parsed = parse_timestamp(value) if value else None
    if parsed is None:
        raise ValueError(f"cannot read the time {text!r}: give RFC 3339 (2026-11-24T09:00:00Z), a day (2026-11-24), "
                         "a duration back from now (10m, 2h, 1d) or now-<N><s|m|h|d|w> (now-1h)")
    return parsed[0]


def check_time(flag: str, text: str | None) -> None:
    """A usage error (:class:`ValueError`, exit status 2) for a ``--since``/``--until`` no reader understands."""
    if text is not None:
        try:
            when_ns(text, 0)
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None


def opensearch_time(text: str) -> str:
    """A ``--since``/``--until`` as a range query reads it: a bare duration (``10m``) becomes ``now-10m``."""
    value = text.strip()
    return f"now-{value}" if _DURATION.match(value) else value


def _query(query: LogQuery, *, floor_ns: int | None, ceiling_ns: int | None, below_ns: int | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    for field_name, value in (
        (m.F_SERVING, query.serving_name), (m.F_MODEL_NAME, query.model_name), (m.F_MODEL_VERSION, query.model_version),
        (m.F_COMPONENT, query.component), (m.F_CONTAINER, query.container_name), (m.F_NAMESPACE, query.namespace),
        (m.F_POD_NAME, query.pod_name), (m.F_LEVEL, query.level),
    ):
        if value is not None:
            filters.append({"term": {field_name: value}})
    if query.since or query.until:
        bounds: dict[str, Any] = {}
        if query.since:
            bounds["gte"] = opensearch_time(query.since)
        if query.until:
            bounds["lt"] = opensearch_time(query.until)
        filters.append({"range": {m.F_TIMESTAMP: bounds}})
    window: dict[str, Any] = {}
    if floor_ns is not None:
        window["gte"] = nanos_to_rfc3339(floor_ns)
    if ceiling_ns is not None:
        window["lte"] = nanos_to_rfc3339(ceiling_ns)
    if below_ns is not None:
        window["lt"] = nanos_to_rfc3339(below_ns)
    if window:
        filters.append({"range": {m.F_TIMESTAMP: window}})
    must: list[dict[str, Any]] = []
    if query.text:
        must.append({"match_phrase": {m.F_MESSAGE: query.text}})
    return {"bool": {"filter": filters, "must": must}} if filters or must else {"match_all": {}}


def sort_clause(*, newest_first: bool = False) -> list[dict[str, Any]]:
    order = "desc" if newest_first else "asc"
    return [{m.F_TIMESTAMP: {"order": order, "numeric_type": "date_nanos"}},
            {m.F_DOC_ID: {"order": order, "unmapped_type": "keyword"}}]


def search_body(query: LogQuery, *, size: int, after: list[Any] | None = None, newest_first: bool = False,
                floor_ns: int | None = None, ceiling_ns: int | None = None) -> dict[str, Any]:
    """The ``_search`` body for one page (optionally within ``[floor_ns, ceiling_ns]``)."""
    body: dict[str, Any] = {
        "size": size,
        "query": _query(query, floor_ns=floor_ns, ceiling_ns=ceiling_ns, below_ns=None),
        # the tie-breaker makes the cursor total: lines sharing a nanosecond stay in one order
        "sort": sort_clause(newest_first=newest_first),
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


def namespace_probe_body(query: LogQuery, *, excluded: list[str]) -> dict[str, Any]:
    """One hit of ``query`` outside the ``excluded`` namespaces: what :meth:`LogReader.namespaces` asks, in turn."""
    matching = _query(query, floor_ns=None, ceiling_ns=None, below_ns=None)
    bool_query = {"filter": [matching], "must_not": [{"terms": {m.F_NAMESPACE: excluded}}] if excluded else []}
    return {"size": 1, "query": {"bool": bool_query}, "_source": [m.F_NAMESPACE], "track_total_hits": False}


def count_body(query: LogQuery, *, floor_ns: int | None = None, ceiling_ns: int | None = None,
               below_ns: int | None = None) -> dict[str, Any]:
    """The ``_count`` body for the lines of ``query`` within the given bounds (``below_ns`` exclusive)."""
    return {"query": _query(query, floor_ns=floor_ns, ceiling_ns=ceiling_ns, below_ns=below_ns)}


def hit_key(hit: dict[str, Any]) -> Key:
    """A hit's (timestamp ns, doc_id) from its sort values (the _id where doc_id is missing)."""
    sort = hit.get("sort") or [0, None]
    return int(sort[0]), str(sort[1] if sort[1] is not None else hit.get("_id", ""))


def format_hit(hit: dict[str, Any], *, show_source: bool = True) -> str:
    """One line of ``servelog logs`` output, from either source: time, serving/version/component/container, the
    pod (replicas of one component print side by side), level, message."""
    source = hit.get("_source", {})
    where = "/".join(str(source.get(k, "-")) for k in (m.F_SERVING, m.F_MODEL_VERSION, m.F_COMPONENT, m.F_CONTAINER))
    if source.get(m.F_POD_NAME):
        where += f" [{source[m.F_POD_NAME]}]"
    level = source.get(m.F_LEVEL, "")
    prefix = f"{source.get(m.F_TIMESTAMP, '')} {where}" if show_source else str(source.get(m.F_TIMESTAMP, ""))
    return f"{prefix} {level.upper() + ' ' if level else ''}{source.get(m.F_MESSAGE, '')}"
