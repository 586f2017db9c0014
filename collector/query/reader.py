"""Reading log documents from OpenSearch page by page: the I/O edge of ``servelog logs``.

Every page is a ``_search`` sorted by (timestamp, doc_id) and continued with ``search_after`` from the
last hit's sort values (:mod:`collector.query.search`), never with ``from``: deep pages cost the same
as the first, and a line is never skipped or repeated between pages. Missing indices are not errors
(``ignore_unavailable``, ``allow_no_indices``): a pattern with no index yet lists nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from collector.query.search import LogQuery, count_body, search_body

PAGE_SIZE = 500
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
