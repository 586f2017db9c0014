"""``servelog logs --follow``: print every new line exactly once, although lines become searchable late.

Two facts break the naive follower that polls "everything after the last line printed": a document
is searchable only after its index refreshes (servelog's template: every 5 s), and lines do not
arrive in timestamp order (two files, two collector workers, a retry after a 429, a collector
catching up after a restart). A line that becomes visible with a timestamp before the cursor is
never returned by ``search_after``, which only goes forward.

So the follower keeps a trailing **window** (``--follow-window``, default 60 s) behind the newest line
it printed and remembers the ``doc_id`` of every line printed inside it (the seen-set; its size is
bounded by the lines of one window). Each poll:

1. fetches what sorts after the cursor (``search_after``), as before;
2. counts the lines inside the window; when OpenSearch holds more than the seen-set, some arrived
   late: the window is searched again and the unseen ones are printed (a line is printed once:
   the seen-set de-duplicates by ``doc_id``);
3. slides the window (it never moves back): ids older than its start are forgotten, and the lines
   OpenSearch holds before that start are counted. The count can only grow by the lines that just
   left the window; anything more arrived later than the window allows, was not printed, and is
   reported on stderr with the command that shows it (fail loudly, never a silent gap).

Each poll costs two or three requests (a page after the cursor, two counts) plus a re-read of the
window when something arrived late.

Re-querying a trailing window was chosen over a point in time (PIT): a PIT freezes one view of the
index, so it cannot show documents that become visible later, which is the whole problem. The
window is anchored at the newest line printed, or at the local clock when that is earlier, so a
clock skew between this machine and the nodes cannot empty it. Late lines are printed when found,
so output is in timestamp order except for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from collector.query.search import Key, LogQuery, hit_key, nanos_to_rfc3339

Emit = Callable[[dict[str, Any]], None]


class Reader(Protocol):
    def pages(self, query: LogQuery, *, after: list[Any] | None = None, limit: int = 0,
              floor_ns: int | None = None, ceiling_ns: int | None = None) -> Any: ...

    def newest(self, query: LogQuery, limit: int) -> list[dict[str, Any]]: ...

    def count(self, query: LogQuery, *, floor_ns: int | None = None, ceiling_ns: int | None = None,
              below_ns: int | None = None) -> int: ...


@dataclass
class FollowWindow:
    """The follower's memory: the cursor, and the ids printed within the trailing window (pure)."""

    window_ns: int
    seen: dict[str, int] = field(default_factory=dict)  # doc_id -> timestamp ns, only inside the window
    cursor: Key | None = None  # the greatest (timestamp, doc_id) printed
    lower_bound_ns: int | None = None  # after a truncated listing: nothing older is followed

    def floor(self, now_ns: int) -> int:
        """Where the window starts: ``window_ns`` before the newest line printed (or now, if earlier)."""
        anchor = now_ns if self.cursor is None else min(self.cursor[0], now_ns)
        start = anchor - self.window_ns
        return start if self.lower_bound_ns is None else max(start, self.lower_bound_ns)

    def admit(self, key: Key) -> bool:
        """Record a line; False when it was printed already."""
        ts_ns, doc_id = key
        if doc_id in self.seen:
            return False
        self.seen[doc_id] = ts_ns
        if self.cursor is None or key > self.cursor:
            self.cursor = key
        return True

    def evict(self, floor_ns: int) -> int:
        """Forget the ids older than the window's start; how many were forgotten."""
        old = [doc_id for doc_id, ts_ns in self.seen.items() if ts_ns < floor_ns]
        for doc_id in old:
            del self.seen[doc_id]
        return len(old)

    @property
    def cursor_sort(self) -> list[Any] | None:
        return None if self.cursor is None else [self.cursor[0], self.cursor[1]]


@dataclass
class Follower:
    """Runs the follow loop against a :class:`Reader`; the clock, sleep and outputs are injected."""

    reader: Reader
    query: LogQuery
    emit: Emit
    warn: Callable[[str], None]
    window_ns: int = 60 * 10**9
    poll_seconds: float = 2.0
    clock: Callable[[], int] = time.time_ns
    sleep: Callable[[float], None] = time.sleep
    window: FollowWindow = field(init=False)
    _floor: int = field(init=False, default=0)
    _below: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.window = FollowWindow(self.window_ns)

    def start(self, limit: int) -> None:
        """Print the newest ``limit`` lines (0: all of ``--since``), then set the window up."""
        if limit:
            hits = self.reader.newest(self.query, limit)
            if len(hits) == limit and hits:
                self.window.lower_bound_ns = hit_key(hits[0])[0] + 1  # older lines were cut off on purpose
        else:
            hits = list(self.reader.pages(self.query))
        for hit in hits:
            if self.window.admit(hit_key(hit)):
                self.emit(hit)
        self._floor = self.window.floor(self.clock())
        self.window.evict(self._floor)
        self._below = self.reader.count(self.query, below_ns=self._floor)

    def poll(self) -> None:
        """One round: new lines after the cursor, late lines inside the window, then slide the window."""
        for hit in self.reader.pages(self.query, after=self.window.cursor_sort, floor_ns=self._floor):
            if self.window.admit(hit_key(hit)):
                self.emit(hit)
        cursor = self.window.cursor
        if cursor is not None:
            held = self.reader.count(self.query, floor_ns=self._floor, ceiling_ns=cursor[0])
            if held > len(self.window.seen):
                for hit in self.reader.pages(self.query, floor_ns=self._floor, ceiling_ns=cursor[0]):
                    if self.window.admit(hit_key(hit)):
                        self.emit(hit)
        floor = max(self.window.floor(self.clock()), self._floor)
        forgotten = self.window.evict(floor)
        below = self.reader.count(self.query, below_ns=floor)
        missed = below - self._below - forgotten
        if missed > 0:
            self.warn(f"{missed} line(s) older than {nanos_to_rfc3339(floor)} arrived later than --follow-window "
                      f"allows and were not printed; see them with: servelog logs --until {nanos_to_rfc3339(floor)}"
                      " (same filters)")
        self._floor, self._below = floor, below

    def run(self, limit: int, *, rounds: int | None = None) -> None:
        """Start, then poll every ``poll_seconds`` (``rounds`` times, or until interrupted)."""
        self.start(limit)
        done = 0
        while rounds is None or done < rounds:
            self.sleep(self.poll_seconds)
            self.poll()
            done += 1
