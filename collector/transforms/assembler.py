"""The per-stream line assembler: records in, encoded bulk documents with resume positions out.

One assembler serves one container instance (pod UID, container, restart count), whatever the
source (kubelet files, or the Kubernetes API). For every raw line it:

1. parses the runtime record (CRI or Docker json-file; anything else is kept, marked malformed);
2. merges ``P`` chunks into one logical line (per stdout/stderr: the runtime may interleave them),
   cutting at ``max_line_bytes`` and marking the document truncated;
3. gives the logical line its identity: (timestamp ns, ordinal among lines with that timestamp);
4. groups Python tracebacks into one document (optional);
5. encodes the document as a ready ``_bulk`` ``create`` action + source, with the deterministic
   ``_id`` and index from :mod:`collector.transforms.identity`.

Each document carries a :class:`Position`: the place to resume reading so that every document not
yet acknowledged is produced again *with the same identity*. While a partial line or a traceback is
open, that place is the start of the open part (with the ordinal state as it was there), so a crash
between a ``P`` and its ``F``, or inside a traceback, loses nothing.

The hot path is :meth:`LineAssembler.feed_lines`: per line a split, a memoised timestamp parse, a
UTF-8 decode, one regex for the level, one hash for the ``_id`` and one ``orjson.dumps`` of the
message; every field shared by the stream is pre-encoded once (``_base_fragment``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from collector import model as m
from collector.transforms.cri import Record, format_timestamp, parse_cri, parse_docker_json, parse_kubelet_api
from collector.transforms.identity import document_id, index_name, stream_prefix
from collector.transforms.levels import detect_level
from collector.transforms.multiline import chains_traceback, continues_traceback, starts_traceback


class Position(NamedTuple):  # a tuple: one is built per document on the hot path
    """A resume point: the locator of a record boundary plus the ordinal state there.

    ``file_id``/``offset`` locate a byte in a logical stream of files (the file's content
    fingerprint, the byte offset in its uncompressed content); the API source uses ``offset`` 0
    and relies on the ordinal state alone. The ordinal state: ``run_ts_ns``, the greatest line
    timestamp seen before this point, ``run_count`` how many lines carried it, ``run_back`` how many
    lines since then carried an *earlier* timestamp (stdout and stderr are stamped by different
    writers and may step back a little).

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


@dataclass(frozen=True, slots=True)
class AssemblerOptions:
    """Stream-independent settings of an assembler."""

    index_template: str
    max_line_bytes: int = 1024 * 1024
    multiline: bool = True
    multiline_max_lines: int = 500


class _Line:
    """A completed logical line awaiting encoding (only lines that take part in grouping)."""

    __slots__ = ("flags", "message", "ordinal", "stream", "ts", "ts_ns")

    def __init__(self, ts_ns: int, ts: str, ordinal: int, stream: str | None, message: str,
                 flags: dict[str, Any] | None) -> None:
        self.ts_ns, self.ts, self.ordinal, self.stream, self.message, self.flags = ts_ns, ts, ordinal, stream, message, flags


class _Partial:
    """Chunks of one logical line that are still arriving (``P`` records)."""

    __slots__ = ("chunks", "dropped", "mark", "ordinal", "size", "ts", "ts_ns")

    def __init__(self, record: Record, mark: Mark, ordinal: int) -> None:
        self.ts_ns, self.ts = record.ts_ns, record.ts
        self.ordinal = ordinal
        self.chunks: list[bytes] = []
        self.size = 0
        self.dropped = 0
        self.mark = mark


# grouping states
_NONE, _FRAMES, _AFTER_EXC, _CHAIN = 0, 1, 2, 3

# A mark: where something still open began: (record sequence number, resume position there,
# records seen per stream before it, the stream key it belongs to).
Mark = tuple[int, Position, dict[str, int], str]


def _key(stream: str | None) -> str:
    return "-" if stream is None else stream

Emit = Callable[[bytes, Position], None]


class LineAssembler:
    """Turns one container instance's raw lines into encoded documents (see module docstring)."""

    def __init__(
        self,
        *,
        options: AssemblerOptions,
        pod_uid: str,
        container: str,
        restart_count: int,
        fields: Mapping[str, Any],
        emit: Emit,
        start: Position | None = None,
        skip_through: tuple[int, int] | None = None,
        kubelet_api: bool = False,
    ) -> None:
        self._opt = options
        self._api = kubelet_api  # lines come from pods/log?timestamps=true, not from runtime files
        self._prefix = stream_prefix(pod_uid, container, restart_count)
        self._emit = emit
        self._namespace = str(fields.get(m.F_NAMESPACE, "unknown"))
        self.set_fields(fields)
        self._indices: dict[str, bytes] = {}
        start = start or Position(None, 0, 0, 0)
        self._run_ts = start.run_ts_ns
        self._run_count = start.run_count
        self._run_back = start.run_back
        self._file_id = start.file_id
        self._offset = start.offset
        self._seq = 0
        self._partials: dict[str, _Partial] = {}
        self._group: list[_Line] = []
        self._group_state = _NONE
        self._group_mark: Mark | None = None
        self._skip_through = skip_through
        self._counts: dict[str, int] = {}
        self._skip_left: dict[str, int] = dict(start.skips)
        self._skip_inline: set[str] = set(start.midline)
        self.documents = 0
        self.parse_errors: dict[str, int] = {}

    # -- configuration -----------------------------------------------------------------------
    def set_fields(self, fields: Mapping[str, Any]) -> None:
        """Replace the stream's shared fields (e.g. when pod metadata arrives late)."""
        shared = {k: v for k, v in fields.items() if v is not None}
        encoded = orjson.dumps(shared)
        self._base_fragment = (b"," + encoded[1:-1]) if len(encoded) > 2 else b""

    # -- input -------------------------------------------------------------------------------
    def switch_file(self, file_id: str | None, offset: int = 0) -> None:
        """Continue in another file of the stream (rotation, resume) at ``offset``."""
        self._file_id = file_id
        self._offset = offset

    def feed_lines(self, lines: list[bytes], *, start_offset: int) -> None:
        """Feed complete raw lines (without ``\\n``) that start at ``start_offset`` of the current file."""
        offset = start_offset
        max_bytes = self._opt.max_line_bytes
        partials = self._partials
        counts = self._counts
        for raw in lines:
            before = offset
            offset += len(raw) + 1
            self._seq += 1
            if self._api:
                record = parse_kubelet_api(raw)
            else:
                record = parse_docker_json(raw) if raw[:1] == b"{" else parse_cri(raw)
            key = "-" if record is None else record.stream
            counts[key] = counts.get(key, 0) + 1
            if self._skip_left and self._skip_left.get(key):
                self._offset = offset
                self._skip_record(key, record)
                continue
            if record is None:
                self._offset = offset
                self._malformed(raw, before)
                continue
            if self._group_state != _NONE and key != _key(self._group[0].stream):
                # a record of the other stream ends an open traceback here, before it: a resume
                # point taken now can never fall before one of the group's own lines
                self._close_group(before=self._mark(before, key))
            pending = partials.get(record.stream)
            if record.partial or pending is not None:
                if pending is None:
                    mark = self._mark(before, key)
                    pending = _Partial(record, mark, self._ordinal(record.ts_ns))
                    partials[record.stream] = pending
                room = max_bytes - pending.size
                content = record.content
                if room > 0:
                    pending.chunks.append(content[:room] if len(content) > room else content)
                if len(content) > room:
                    pending.dropped += len(content) - max(room, 0)
                pending.size += len(content)
                self._offset = offset
                if record.partial:
                    continue
                del partials[record.stream]
                self._complete_partial(record.stream, pending, before)
                continue
            self._offset = offset
            content = record.content
            flags = None
            if len(content) > max_bytes:
                flags = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: len(content)}
                content = content[:max_bytes]
            self._line(record.ts_ns, record.ts, record.stream, content, flags, before)

    def feed_overlong(self, head: bytes, *, start_offset: int, end_offset: int) -> None:
        """A line with no newline within the limit: ``head`` is its start, the rest was skipped."""
        self._seq += 1
        record = parse_cri(head) or (parse_docker_json(head) if head[:1] == b"{" else None)
        key = "-" if record is None else record.stream
        self._counts[key] = self._counts.get(key, 0) + 1
        self._offset = end_offset
        flags: dict[str, Any] = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: end_offset - start_offset - 1}
        if record is None:
            ts_ns = self._run_ts
            self._count_error("malformed_cri")
            flags[m.F_PARSE_ERROR] = "malformed_cri"
            self._line(ts_ns, format_timestamp(ts_ns), None, head[: self._opt.max_line_bytes], flags, start_offset)
        else:
            self._line(record.ts_ns, record.ts, record.stream, record.content[: self._opt.max_line_bytes], flags,
                       start_offset)

    def flush(self, *, partial_lines: bool = True) -> None:
        """Close what is open: an open traceback and (``partial_lines``) trailing ``P`` chunks.

        Without ``partial_lines`` an unfinished line stays open (its writer may still be writing
        it) and the resume point stays before it.
        """
        if partial_lines:
            for stream, pending in sorted(self._partials.items(), key=lambda kv: kv[1].mark[0]):
                del self._partials[stream]
                self._complete_partial(stream, pending, None)
        self._close_group()

    def has_pending(self) -> bool:
        """A partial line or a traceback is open."""
        return bool(self._partials) or bool(self._group)

    def position(self, before: Mark | None = None) -> Position:
        """Where to resume to reproduce everything not emitted yet (the current safe point).

        ``before`` marks a line consumed but not emitted yet (the one that closed a traceback
        group): the resume point must not pass it.
        """
        marks = [p.mark for p in self._partials.values()]
        if self._group_mark is not None:
            marks.append(self._group_mark)
        if before is not None:
            marks.append(before)
        if not marks:
            skips = tuple(sorted((k, n) for k, n in self._skip_left.items() if n)) if self._skip_left else ()
            midline = tuple(sorted(self._skip_inline)) if self._skip_inline else ()
            return Position(self._file_id, self._offset, self._run_ts, self._run_count, self._run_back, midline, skips)
        _seq, position, counts, _stream = min(marks, key=lambda mk: mk[0])
        # Per stream, the records after that point up to the stream's first still-open record
        # went out already: a resume from there passes over them.
        ends: dict[str, int] = {}
        for _s, _p, mark_counts, stream in marks:
            ends[stream] = min(ends.get(stream, mark_counts.get(stream, 0)), mark_counts.get(stream, 0))
        skips_by_stream = dict(position.skips)
        for stream, now in self._counts.items():
            passed = ends.get(stream, now) - counts.get(stream, 0)
            if passed > skips_by_stream.get(stream, 0):
                skips_by_stream[stream] = passed
        return position._replace(skips=tuple(sorted((k, n) for k, n in skips_by_stream.items() if n > 0)))

    # -- internals ---------------------------------------------------------------------------
    def _midline(self) -> tuple[str, ...]:
        if not self._partials and not self._skip_inline:
            return ()
        return tuple(sorted(self._skip_inline.union(self._partials)))

    def _mark(self, offset: int, key: str) -> Mark:
        """A mark just before the record being processed (already counted) of stream ``key``."""
        counts = dict(self._counts)
        counts[key] = counts.get(key, 0) - 1
        skips = tuple(sorted((k, n) for k, n in self._skip_left.items() if n)) if self._skip_left else ()
        position = Position(self._file_id, offset, self._run_ts, self._run_count, self._run_back, self._midline(), skips)
        return self._seq, position, counts, key

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

    def _count_error(self, reason: str) -> None:
        self.parse_errors[reason] = self.parse_errors.get(reason, 0) + 1

    def _malformed(self, raw: bytes, before: int) -> None:
        # Not a runtime record: keep it, timestamped like its predecessor, marked. Identity stays a
        # function of content order (ordinal after the previous line), so a replay agrees.
        self._count_error("malformed_cri")
        ts_ns = self._run_ts
        flags: dict[str, Any] = {m.F_PARSE_ERROR: "malformed_cri"}
        if len(raw) > self._opt.max_line_bytes:
            flags[m.F_TRUNCATED] = True
            flags[m.F_ORIGINAL_BYTES] = len(raw)
            raw = raw[: self._opt.max_line_bytes]
        self._line(ts_ns, format_timestamp(ts_ns), None, raw, flags, before)

    def _complete_partial(self, stream: str, pending: _Partial, before: int | None) -> None:
        flags = None
        if pending.dropped:
            flags = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: pending.size}
        # the line's identity and resume point are those of its first chunk
        self._line(pending.ts_ns, pending.ts, stream, b"".join(pending.chunks), flags, pending.mark[1].offset,
                   start_mark=pending.mark, ordinal=pending.ordinal)

    def _line(
        self, ts_ns: int, ts: str, stream: str | None, content: bytes, flags: dict[str, Any] | None,
        before: int, *, start_mark: Mark | None = None, ordinal: int | None = None,
    ) -> None:
        """A complete logical line: number it (unless it started earlier), then group or encode it."""
        try:
            message = content.decode()
        except UnicodeDecodeError:
            message = content.decode("utf-8", "replace")
            self._count_error("invalid_utf8")
            flags = dict(flags or {})
            flags.setdefault(m.F_PARSE_ERROR, "invalid_utf8")
        multiline = self._opt.multiline
        # The line's own resume point (with the ordinal state before it) is needed only when it
        # opens or closes a traceback group: build it only then (this is the per-line hot path).
        mark = None
        if multiline and (self._group_state != _NONE or starts_traceback(message)):
            mark = start_mark or self._mark(before, _key(stream))
        if ordinal is None:
            ordinal = self._ordinal(ts_ns)
        if not multiline or mark is None:
            self._encode(ts_ns, ts, ordinal, stream, message, flags, None)
            return
        if self._group_state != _NONE:
            group_stream = self._group[0].stream
            if stream == group_stream and self._continues(message):
                self._group.append(_Line(ts_ns, ts, ordinal, stream, message, flags))
                if len(self._group) >= self._opt.multiline_max_lines:
                    self._close_group()
                return
            self._close_group(before=mark)
        if starts_traceback(message):
            self._group = [_Line(ts_ns, ts, ordinal, stream, message, flags)]
            self._group_state = _FRAMES
            self._group_mark = mark
            return
        self._encode(ts_ns, ts, ordinal, stream, message, flags, None)

    def _continues(self, message: str) -> bool:
        """Advance the traceback state machine; False when ``message`` is not part of the group."""
        state = self._group_state
        if state == _FRAMES:
            if not continues_traceback(message) and message:
                self._group_state = _AFTER_EXC  # the exception line closes the frames
            return True
        if state == _AFTER_EXC:
            if message == "":
                return True  # maybe a chained traceback follows; trailing blanks are split off on close
            if chains_traceback(message):
                self._group_state = _CHAIN
                return True
            return message[:1] in (" ", "\t")  # indented exception notes / multi-line messages
        # _CHAIN: blank lines, then the next Traceback header
        if message == "":
            return True
        if starts_traceback(message):
            self._group_state = _FRAMES
            return True
        return False

    def _close_group(self, before: Mark | None = None) -> None:
        group = self._group
        if not group:
            return
        # blank lines held after the last exception line belong to no traceback: emit them alone
        trailing: list[_Line] = []
        while len(group) > 1 and group[-1].message == "" and self._group_state in (_AFTER_EXC, _CHAIN):
            trailing.append(group.pop())
        self._group, self._group_state, self._group_mark = [], _NONE, None
        first = group[0]
        if len(group) == 1:
            self._encode(first.ts_ns, first.ts, first.ordinal, first.stream, first.message, first.flags, None,
                         before)
        else:
            flags: dict[str, Any] = {}
            for line in group:
                if line.flags:
                    flags.update(line.flags)
            message = "\n".join(line.message for line in group)
            self._encode(first.ts_ns, first.ts, first.ordinal, first.stream, message, flags or None, len(group),
                         before)
        for line in reversed(trailing):
            self._encode(line.ts_ns, line.ts, line.ordinal, line.stream, line.message, line.flags, None, before)

    def _index(self, ts: str) -> bytes:
        day = ts[:10]
        index = self._indices.get(day)
        if index is None:
            index = index_name(self._opt.index_template, namespace=self._namespace, ts=ts).encode()
            self._indices[day] = index
        return index

    def _encode(
        self, ts_ns: int, ts: str, ordinal: int, stream: str | None, message: str,
        flags: dict[str, Any] | None, line_count: int | None, before: Mark | None = None,
    ) -> None:
        skip = self._skip_through
        if skip is not None:
            if (ts_ns, ordinal) <= skip:
                return
            self._skip_through = None  # identities only grow along a stream
        doc_id = document_id(self._prefix, ts_ns, ordinal)
        level = detect_level(message)
        if level is None and line_count is not None:
            level = "error"  # a grouped traceback without a level prefix is an error report
        extra = b""
        if stream:
            extra += b',"stream":"' + stream.encode() + b'"'
        if level is not None:
            extra += b',"level":"' + level.encode() + b'"'
        if flags:
            extra += b"," + orjson.dumps(flags)[1:-1]
            if flags.get(m.F_TRUNCATED):
                self._count_error("truncated")
        if line_count is not None:
            extra += b',"line_count":%d' % line_count
        id_bytes = doc_id.encode()
        piece = b"".join((
            b'{"create":{"_index":"', self._index(ts), b'","_id":"', id_bytes, b'"}}\n{"timestamp":"',
            ts.encode(), b'","doc_id":"', id_bytes, b'","message":', orjson.dumps(message), extra,
            self._base_fragment, b"}\n",
        ))
        self.documents += 1
        self._emit(piece, self.position(before))
