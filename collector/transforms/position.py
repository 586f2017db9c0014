"""Resume positions: where to read again after a crash so that every document comes back the same.

A :class:`Position` travels with every document to the checkpoint store; resuming at it must
produce again, with the same identities, every document not acknowledged yet. While something is
open (a partial line, a traceback being grouped, lines waiting for a timestamp) the position stays
before it: :func:`earliest` combines the open parts' marks into that position. :class:`StreamCursor`
is the per-stream bookkeeping behind it (line numbering, records seen, what a resume passes over),
which the line assembler extends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from collector.transforms.cri import Record


class Position(NamedTuple):  # a tuple: one is built per document on the hot path
    """A resume point: the locator of a record boundary plus the ordinal state there.

    ``file_id``/``offset`` locate a byte in a logical stream of files (the file's content
    fingerprint, the byte offset in its uncompressed content); the API source uses ``offset`` 0
    and relies on the ordinal state alone. The ordinal state: ``run_ts_ns``, the greatest line
    timestamp seen before this point, ``run_count`` how many lines carried it, ``run_back`` how many
    lines since then carried an *earlier* timestamp (stdout and stderr are stamped by different
    writers and may step back a little). ``run_ts_ns == run_count == 0``: no line numbered yet.

    stdout and stderr records interleave, so a resume point can precede records that already went
    out inside an emitted document (the rest of a partial line, later lines of a traceback).
    ``skips`` says how many records of each stream (``-`` for malformed lines) to pass over on
    resume, still numbering the lines they start; ``midline`` names the streams whose first skipped
    record continues a line begun before this point.
    """

    file_id: str | None
    offset: int
    run_ts_ns: int
    run_count: int
    run_back: int = 0
    midline: tuple[str, ...] = ()
    skips: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "offset": self.offset, "run_ts_ns": self.run_ts_ns,
                "run_count": self.run_count, "run_back": self.run_back, "midline": list(self.midline),
                "skips": [list(pair) for pair in self.skips]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Position:
        return cls(
            file_id=data.get("file_id"), offset=int(data["offset"]),
            run_ts_ns=int(data.get("run_ts_ns", 0)), run_count=int(data.get("run_count", 0)),
            run_back=int(data.get("run_back", 0)), midline=tuple(data.get("midline", ())),
            skips=tuple((str(k), int(n)) for k, n in data.get("skips", ())),
        )


# A mark: where something still open began: (record sequence number, resume position there,
# records seen per stream before it, the stream key it belongs to).
Mark = tuple[int, Position, dict[str, int], str]


def earliest(marks: list[Mark], counts: Mapping[str, int]) -> Position:
    """The position of the earliest mark, with the skips that a resume from there needs.

    ``counts`` are the records seen per stream so far. Per stream, the records after the earliest
    mark up to that stream's first still-open record went out already: a resume passes over them.
    """
    _seq, position, start_counts, _stream = min(marks, key=lambda mk: mk[0])
    ends: dict[str, int] = {}
    for _s, _p, mark_counts, stream in marks:
        ends[stream] = min(ends.get(stream, mark_counts.get(stream, 0)), mark_counts.get(stream, 0))
    skips_by_stream = dict(position.skips)
    for stream, now in counts.items():
        passed = ends.get(stream, now) - start_counts.get(stream, 0)
        if passed > skips_by_stream.get(stream, 0):
            skips_by_stream[stream] = passed
    return position._replace(skips=tuple(sorted((k, n) for k, n in skips_by_stream.items() if n > 0)))


class StreamCursor:
    """Numbering and resume bookkeeping of one stream, from a start position.

    ``_run_ts``/``_run_count``/``_run_back`` number lines (:meth:`_ordinal`); ``_file_id`` and
    ``_offset`` are the current place; ``_seq`` and ``_counts`` count records (in all, per stream
    key) for marks; ``_skip_left``/``_skip_inline`` are what a resume still has to pass over;
    ``_partials`` maps a stream to its unfinished line (kept by the subclass, named in marks).
    """

    def __init__(self, start: Position) -> None:
        self._run_ts = start.run_ts_ns
        self._run_count = start.run_count
        self._run_back = start.run_back
        self._file_id = start.file_id
        self._offset = start.offset
        self._seq = 0
        self._counts: dict[str, int] = {}
        self._skip_left: dict[str, int] = dict(start.skips)
        self._skip_inline: set[str] = set(start.midline)
        self._partials: dict[str, Any] = {}

    def _nothing_numbered(self) -> bool:
        """No line of the stream has been numbered (so none has a timestamp) and no resume skip is due."""
        return not self._run_count and not self._run_ts and not self._skip_left

    def _skips(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((k, n) for k, n in self._skip_left.items() if n)) if self._skip_left else ()

    def _midline(self) -> tuple[str, ...]:
        if not self._partials and not self._skip_inline:
            return ()
        return tuple(sorted(self._skip_inline.union(self._partials)))

    def _here(self, offset: int | None = None) -> Position:
        """The position at ``offset`` (default: the current place) with the state as it is now."""
        return Position(self._file_id, self._offset if offset is None else offset, self._run_ts, self._run_count,
                        self._run_back, self._midline(), self._skips())

    def _mark(self, offset: int, key: str) -> Mark:
        """A mark just before the record being processed (already counted) of stream ``key``."""
        counts = dict(self._counts)
        counts[key] = counts.get(key, 0) - 1
        return self._seq, self._here(offset), counts, key

    def _skip_record(self, key: str, record: Record | None) -> None:
        """Pass over a record that went out before the resume point, numbering the line it starts."""
        left = self._skip_left[key] - 1
        if left:
            self._skip_left[key] = left
        else:
            del self._skip_left[key]
        if record is None:
            self._ordinal(self._run_ts)  # a malformed line is numbered like its predecessor
            return
        if key not in self._skip_inline:
            self._ordinal(record.ts_ns)
        if record.partial:
            self._skip_inline.add(key)
        else:
            self._skip_inline.discard(key)

    def _ordinal(self, ts_ns: int) -> int:
        """The line's ordinal among lines with its timestamp, assigned when the line *starts*.

        Lines are numbered in the order their first record appears, which a replay from any
        position reproduces. A timestamp below the greatest seen so far gets a negative ordinal
        derived from the distance and a counter, unique within the stream.
        """
        if ts_ns == self._run_ts:
            self._run_count += 1
            return self._run_count - 1
        if ts_ns > self._run_ts:
            self._run_ts, self._run_count, self._run_back = ts_ns, 1, 0
            return 0
        self._run_back += 1
        return -(((self._run_ts - ts_ns) << 24) + self._run_back)
