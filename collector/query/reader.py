"""Reading log documents from OpenSearch page by page: the I/O edge of ``servelog logs``.

Every page is a ``_search`` sorted by (timestamp, doc_id) and continued with ``search_after`` from the
last hit's sort values (:mod:`collector.query.search`), never with ``from``: deep pages cost the same
as the first, and a line is never skipped or repeated between pages. Missing indices are not errors
(``ignore_unavailable``, ``allow_no_indices``): a pattern with no index yet lists nothing.
:func:`pin_namespace` keeps a deployment read without ``-n`` to the one namespace its documents are
in, and refuses (:class:`~collector.query.terminal.Ambiguous`) when they are in several.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Protocol

from collector import model as m
from collector.query.search import LogQuery, count_body, namespace_probe_body, search_body
from collector.query.terminal import Ambiguous

PAGE_SIZE = 500
MOST_NAMESPACES = 10  # namespaces listed when a deployment name is ambiguous
_LENIENT = {"ignore_unavailable": "true", "allow_no_indices": "true"}


class Requester(Protocol):
    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any: ...


class LogReader:
    """Searches one index pattern through a client (``OpenSearchClient`` or anything with ``request``)."""

    def __init__(self, client: Requester, index: str, *, page_size: int = PAGE_SIZE) -> None:
        self._client = client
        self._index = index
        self._page = page_size

    def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self._client.request("POST", f"/{self._index}/_search", body=body, params=_LENIENT)
        hits: list[dict[str, Any]] = answer.get("hits", {}).get("hits", [])
        return hits

    def pages(self, query: LogQuery, *, after: list[Any] | None = None, limit: int = 0,
              floor_ns: int | None = None, ceiling_ns: int | None = None) -> Iterator[dict[str, Any]]:
        """Every matching hit after ``after``, oldest first (at most ``limit``; 0: no limit)."""
        given = 0
        while True:
            size = self._page if not limit else min(self._page, limit - given)
            if size <= 0:
                return
            hits = self._search(search_body(query, size=size, after=after, floor_ns=floor_ns, ceiling_ns=ceiling_ns))
            yield from hits
            given += len(hits)
            if len(hits) < size:
                return
            after = hits[-1].get("sort")

    def newest(self, query: LogQuery, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` newest matching hits, oldest first (what ``tail -n`` shows)."""
        collected: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while len(collected) < limit:
            size = min(self._page, limit - len(collected))
            hits = self._search(search_body(query, size=size, after=after, newest_first=True))
            collected += hits
            if len(hits) < size:
                break
            after = hits[-1].get("sort")
        collected.reverse()
        return collected

    def count(self, query: LogQuery, *, floor_ns: int | None = None, ceiling_ns: int | None = None,
              below_ns: int | None = None) -> int:
        body = count_body(query, floor_ns=floor_ns, ceiling_ns=ceiling_ns, below_ns=below_ns)
        answer = self._client.request("POST", f"/{self._index}/_count", body=body, params=_LENIENT)
        return int(answer.get("count", 0))

    def namespaces(self, query: LogQuery, *, most: int = MOST_NAMESPACES) -> list[str]:
        """The namespaces of the documents ``query`` matches (sorted; at most ``most``): one small search per
        namespace, each excluding those already found (no aggregation, so any index mapping answers)."""
        found: list[str] = []
        while len(found) < most:
            hits = self._search(namespace_probe_body(query, excluded=found))
            if not hits:
                break
            namespace = str((hits[0].get("_source") or {}).get(m.F_NAMESPACE) or "")
            if not namespace or namespace in found:
                break  # documents without a namespace: nothing more to tell apart
            found.append(namespace)
        return sorted(found)


def pin_namespace(reader: LogReader, query: LogQuery, *, what: str) -> LogQuery:
    """``query`` for one deployment, in one namespace: as given, else the only one its documents are in.

    Without ``-n`` OpenSearch is searched in every namespace; two deployments of one name in two
    namespaces are not mixed: :class:`~collector.query.terminal.Ambiguous` lists the namespaces.
    ``what`` names the documents (``history``, ``logs``) in the message.
    """
    if query.namespace or not query.serving_name:
        return query
    found = reader.namespaces(LogQuery(serving_name=query.serving_name))
    if len(found) > 1:
        more = " (and maybe more)" if len(found) >= MOST_NAMESPACES else ""
        raise Ambiguous(f"{query.serving_name} has {what} in several namespaces: {', '.join(found)}{more}; "
                        "give one with -n/--namespace")
    return replace(query, namespace=found[0]) if found else query
