"""Pure construction of log searches and the cursor that makes paging gap-free.

Results are sorted by (``timestamp``, ``_id``) and paged with ``search_after`` on that pair, so
lines sharing a timestamp are neither skipped nor repeated across pages or follow-polls (the
boundary-timestamp loss of tools that resume with "after time T").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector import model as m


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


def search_body(query: LogQuery, *, size: int, after: list[Any] | None = None, newest_first: bool = False) -> dict[str, Any]:
    """The ``_search`` body for one page."""
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
            bounds["gte"] = query.since
        if query.until:
            bounds["lt"] = query.until
        filters.append({"range": {m.F_TIMESTAMP: bounds}})
    must: list[dict[str, Any]] = []
    if query.text:
        must.append({"match_phrase": {m.F_MESSAGE: query.text}})
    order = "desc" if newest_first else "asc"
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"filter": filters, "must": must}} if filters or must else {"match_all": {}},
        # the tie-breaker makes the cursor total: lines sharing a nanosecond stay in one order
        "sort": [{m.F_TIMESTAMP: {"order": order}}, {"_id": {"order": order}}],
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


def format_hit(hit: dict[str, Any], *, show_source: bool = True) -> str:
    """One line of ``servelog logs`` output."""
    source = hit.get("_source", {})
    where = "/".join(str(source.get(k, "-")) for k in (m.F_SERVING, m.F_MODEL_VERSION, m.F_COMPONENT, m.F_CONTAINER))
    level = source.get(m.F_LEVEL, "")
    prefix = f"{source.get(m.F_TIMESTAMP, '')} {where}" if show_source else str(source.get(m.F_TIMESTAMP, ""))
    return f"{prefix} {level.upper() + ' ' if level else ''}{source.get(m.F_MESSAGE, '')}"
