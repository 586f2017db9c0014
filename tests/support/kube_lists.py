"""Paged lists for the loopback API server: ``limit`` + ``continue`` as the API server serves them.

What the real server does (the ``ListOptions`` reference, and client-go's reflector/pager that
rely on it), and this module copies:

- ``limit=N`` returns at most N objects and, when more exist, ``metadata.continue``: a token for the
  next page. Every page of one list is read from the same snapshot (the resourceVersion of the
  first page, which every page reports), so objects created, changed or deleted after the first
  request do not show up in later pages.
- A page may hold fewer than N objects, even none, when a selector filters them out (the contract
  says so: clients must look only at ``continue`` to know whether more follows). This server scans N
  objects per page and returns those that match, so it produces such pages.
- A continue token expires when etcd compacts past the snapshot's revision (after 5-15 minutes in a
  real cluster; here :meth:`ListSnapshots.expire`, or a compaction past it): the server answers
  ``410 Expired`` with a Status whose ``metadata.continue`` is a token for the remainder, read from
  the current state (an *inconsistent* continuation; a client that needs a consistent list starts
  again without ``continue``).
- ``resourceVersion=0`` is answered from the watch cache, which ignores ``limit`` (client-go's
  reflector relies on it: a paged answer to a ``resourceVersion=0`` list means the watch cache is off);
  ``watch_cache=False`` makes such lists paged too.

Objects are ordered by (namespace, name), like etcd keys. Not thread-safe: the server calls it under
its lock.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import orjson

EXPIRED_MESSAGE = ("The provided continue parameter is too old to display a consistent list result. You can start a "
                   "new list without the continue parameter, or use the continue token in this response to retrieve "
                   "the remainder of the results. Continuing with the provided token results in an inconsistent list - "
                   "objects that were created, modified, or deleted between the time the first chunk was returned and "
                   "now may show up in the list.")


class ContinueExpired(Exception):
    """The token's snapshot is gone; ``remainder`` continues from the current state (inconsistent)."""

    def __init__(self, remainder: str) -> None:
        super().__init__(EXPIRED_MESSAGE)
        self.remainder = remainder


class BadContinue(ValueError):
    """A token this server never issued (the API server answers 400)."""


@dataclasses.dataclass
class _Snapshot:
    resource: str
    rv: int
    objects: list[dict[str, Any]]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ListSnapshots:
    """The snapshots behind the continue tokens this server handed out."""

    def __init__(self) -> None:
        self._snapshots: dict[int, _Snapshot] = {}
        self._ids = itertools.count(1)
        self.pages_served = 0
        self._expire_at: int | None = None  # expire every snapshot once this many pages were served

    def page(self, resource: str, current: Callable[[], Iterable[dict[str, Any]]], rv: int, *, limit: int,
             token: str) -> tuple[list[dict[str, Any]], int, str]:
        """(objects to filter and return, the list's resourceVersion, the next token or '')."""
        if token:
            snapshot, start = self._resume(resource, token, current, rv)
        else:
            snapshot, start = self._open(resource, current(), rv), 0
        end = len(snapshot.objects) if limit <= 0 else start + limit
        chunk = snapshot.objects[start:end]
        self.pages_served += 1
        if self._expire_at is not None and self.pages_served >= self._expire_at:
            self._expire_at = None
            self.expire()  # (the token of this very page is issued below, for a snapshot no longer kept)
            if end < len(snapshot.objects):
                return chunk, snapshot.rv, self._dead_token(snapshot, end)
        if end >= len(snapshot.objects):
            return chunk, snapshot.rv, ""
        return chunk, snapshot.rv, self._token(snapshot, end)

    def expire_after(self, pages: int) -> None:
        """Every snapshot expires once ``pages`` more pages were served (a list slower than etcd's compaction)."""
        self._expire_at = self.pages_served + pages

    def _dead_token(self, snapshot: _Snapshot, start: int) -> str:
        token = self._token(snapshot, start)
        self.expire()
        return token

    def expire(self, *, before: int | None = None) -> None:
        """Forget the snapshots (of revisions older than ``before``): their tokens answer 410."""
        for sid, snapshot in list(self._snapshots.items()):
            if before is None or snapshot.rv < before:
                del self._snapshots[sid]

    def _open(self, resource: str, objects: Iterable[dict[str, Any]], rv: int) -> _Snapshot:
        """A snapshot of the objects now (kept only once a token refers to it)."""
        return _Snapshot(resource, rv, sorted((copy.deepcopy(o) for o in objects), key=_key))

    def _token(self, snapshot: _Snapshot, start: int) -> str:
        sid = next((sid for sid, s in self._snapshots.items() if s is snapshot), None)
        if sid is None:
            sid = next(self._ids)
            self._snapshots[sid] = snapshot
        after = _key(snapshot.objects[start - 1]) if start > 0 else ("", "")
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": snapshot.rv, "id": sid, "start": start, "after": after})
        return base64.urlsafe_b64encode(raw).decode()

    def _resume(self, resource: str, token: str, current: Callable[[], Iterable[dict[str, Any]]],
                rv: int) -> tuple[_Snapshot, int]:
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            sid, start, after = int(decoded["id"]), int(decoded["start"]), tuple(decoded["after"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadContinue(f"continue key is not valid: {exc}") from exc
        snapshot = self._snapshots.get(sid)
        if snapshot is None:
            fresh = self._open(resource, current(), rv)
            remainder = sum(1 for o in fresh.objects if _key(o) <= after)
            raise ContinueExpired(self._token(fresh, remainder) if remainder < len(fresh.objects) else "")
        if snapshot.resource != resource:
            raise BadContinue("continue key belongs to another resource")
        return snapshot, start
