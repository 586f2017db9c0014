"""Lines without a timestamp of their own, before any record of their stream: they wait for one.

A malformed line (not a CRI or Docker record) has no timestamp; it is dated by its neighbours so
that it lands in the same daily index as the lines around it, and its identity stays a pure
function of the stream's content:

1. after a record of its stream: the greatest timestamp before it (its ordinal follows);
2. before the stream's first record (leading garbage, a whole rotated file of it): the timestamp
   of that first record, numbered before it. Such lines are held here, with the resume point
   before the first of them, until the record comes; a replay from any point holds them again;
3. a stream with no record at all has no time of its own: when it is flushed for good (the
   container is gone, a ``--once`` run ends on a finished file) or once ``HOLD_MAX_LINES`` lines,
   or more than ``max_line_bytes`` bytes, wait, they are dated at the epoch (index ``...-1970.01.01``)
   and counted (``servelog_parse_errors_total{reason="undated"}``); later lines follow rule 1.
   An idle flush never dates held lines: their date does not depend on when the stream was idle.

Every such document keeps ``parse_error: malformed_cri``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from collector.transforms.position import Position

HOLD_MAX_LINES = 1000


class HeldLine(NamedTuple):
    """A held malformed line: where it was (file, start and end offsets), its bytes, its flags."""

    file_id: str | None
    before: int
    end: int
    raw: bytes
    flags: dict[str, Any] | None


class HeldLines:
    """The malformed lines waiting for their stream's first timestamp, bounded."""

    __slots__ = ("_bytes", "_max_bytes", "lines", "position")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self.lines: list[HeldLine] = []  # one list for good: owners may keep a reference to test it
        self._bytes = 0
        self.position = Position(None, 0, 0, 0)  # the resume point before the first held line

    def add(self, file_id: str | None, before: int, end: int, raw: bytes, flags: dict[str, Any] | None,
            here: Position) -> bool:
        """Hold a line, already cut to the limit (``here``: the resume point before it); True when the bound is reached."""
        if not self.lines:
            self.position = here
        self.lines.append(HeldLine(file_id, before, end, raw, flags))
        self._bytes += len(raw)
        return len(self.lines) >= HOLD_MAX_LINES or self._bytes > self._max_bytes

    def take(self) -> list[HeldLine]:
        """The held lines, in order; none are held any more."""
        lines = self.lines[:]
        self.lines.clear()
        self._bytes = 0
        return lines
