"""The per-stream line assembler: records in, encoded bulk documents with resume positions out.

One assembler serves one container instance (pod UID, container, restart count), whatever the
source (kubelet files, or the Kubernetes API). For every raw line it:

1. parses the runtime record by the kubelet's rules (:mod:`collector.transforms.cri`; anything else
   is kept, marked malformed, and dated by its neighbours: see :meth:`LineAssembler._malformed`);
2. merges ``P`` chunks into one logical line (per stdout/stderr: the runtime may interleave them),
   cutting at ``max_line_bytes`` on a character boundary and marking the document truncated; a line
   whose end never came (flushed) is marked ``partial``;
3. gives the logical line its identity: (timestamp ns, ordinal among lines with that timestamp);
4. groups Python tracebacks into one document (optional);
5. encodes the document as a ready ``_bulk`` ``create`` action + source, with the deterministic
   ``_id`` and index from :mod:`collector.transforms.identity`.

Each document carries a :class:`Position`: the place to resume reading so that every document not
yet acknowledged is produced again *with the same identity*. While a partial line or a traceback is
open, that place is the start of the open part (with the ordinal state as it was there), so a crash
between a ``P`` and its ``F``, inside a traceback, or among leading lines still waiting for a
timestamp, loses nothing (:mod:`collector.transforms.position`).

The hot path is :meth:`LineAssembler.feed_lines`: per line a split, a memoised timestamp parse, a
UTF-8 decode, one regex for the level, one hash for the ``_id`` and one ``orjson.dumps`` of the
message; every field shared by the stream is pre-encoded once (``_base_fragment``).

With the compiled fast path (``pipeline.native``, :mod:`collector.transforms.native`) runs of plain
lines are encoded in Rust, with the interpreter lock released, whenever nothing is open (no partial
line, traceback, held line or resume skip): the run ends at the first line the reference path must
take, which this class then handles as always. Runs go to ``batch`` (one body per run, one position
at its end, never overfilling a batch) or, without one, one document at a time to ``emit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector import model as m
from collector.transforms import fastpath, multiline
from collector.transforms.cri import Record, cut_utf8, format_timestamp, parse_cri, parse_docker_json, parse_kubelet_api
from collector.transforms.fastpath import RunBatch
from collector.transforms.identity import document_id, index_name, stream_prefix
from collector.transforms.levels import detect_level
from collector.transforms.multiline import starts_traceback
from collector.transforms.native import default_mode, resolve
from collector.transforms.position import Mark, Position, StreamCursor, earliest
from collector.transforms.undated import HeldLines

__all__ = ["AssemblerOptions", "LineAssembler", "Position"]


@dataclass(frozen=True, slots=True)
class AssemblerOptions:
    """Stream-independent settings of an assembler."""

    index_template: str
    max_line_bytes: int = 1024 * 1024
    multiline: bool = True
    multiline_max_lines: int = 500
    native: str = field(default_factory=default_mode)  # auto | on | off (collector.transforms.native)


class _Partial:
    """Chunks of one logical line that are still arriving (``P`` records)."""

    __slots__ = ("chunks", "kept", "mark", "ordinal", "size", "ts", "ts_ns")

    def __init__(self, record: Record, mark: Mark, ordinal: int) -> None:
        self.ts_ns, self.ts = record.ts_ns, record.ts
        self.ordinal = ordinal
        self.chunks: list[bytes] = []
        self.size = 0  # bytes of the whole line
        self.kept = 0  # bytes kept: up to max_line_bytes + 1 (the byte past the cut tells if it splits a character)
        self.mark = mark


def _key(stream: str | None) -> str:
    return "-" if stream is None else stream

Emit = Callable[[bytes, Position], None]


class LineAssembler(StreamCursor):
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
        batch: RunBatch | None = None,
    ) -> None:
        self._opt = options
        self._batch = batch
        self._encode_run = None if kubelet_api else resolve(options.native)
        self._native_day: bytes | None = None  # the day of the last index used, and that index
        self._native_index = b""
        self._api = kubelet_api  # lines come from pods/log?timestamps=true, not from runtime files
        self._prefix = stream_prefix(pod_uid, container, restart_count)
        self._emit = emit
        self._namespace = str(fields.get(m.F_NAMESPACE, "unknown"))
        self.set_fields(fields)
        self._indices: dict[str, bytes] = {}
        super().__init__(start or Position(None, 0, 0, 0))
        self._partials: dict[str, _Partial] = {}
        self._group = multiline.TracebackGroup()
        self._held = HeldLines(options.max_line_bytes)
        self._held_lines = self._held.lines  # tested per record: a plain list is the cheapest test
        self._skip_through = skip_through
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
        if self._encode_run is None:
            self._feed(lines, start_offset)
            return
        i, count, offset = 0, len(lines), start_offset
        while i < count:
            if self._native_day is not None and fastpath.clean(self):
                i, offset = fastpath.feed_run(self, lines, i, offset)
                if i >= count:
                    return
            raw = lines[i]  # a line the fast path stops at, or something is open: the reference path
            self._feed((raw,), offset)
            offset += len(raw) + 1
            i += 1

    def _feed(self, lines: Iterable[bytes], start_offset: int) -> None:
        """The reference path: every line in Python."""
        offset = start_offset
        max_bytes = self._opt.max_line_bytes
        partials = self._partials
        counts = self._counts
        held = self._held_lines
        group = self._group
        for raw in lines:
            before = offset
            offset += len(raw) + 1
            if self._api:
                record = parse_kubelet_api(raw)
            else:
                record = parse_docker_json(raw) if raw[:1] == b"{" else parse_cri(raw)
            if record is None:
                if self._nothing_numbered():
                    self._offset = offset
                    self._hold(raw, before, offset, None)  # nothing dated yet in this stream
                    continue
            elif held:
                self._release_held(record.ts_ns)
            self._seq += 1
            key = "-" if record is None else record.stream
            counts[key] = counts.get(key, 0) + 1
            if self._skip_left and self._skip_left.get(key):
                self._offset = offset
                self._skip_record(key, record)
                continue
            if record is None:
                self._offset = offset
                self._malformed(raw, before, self._run_ts, None)
                continue
            if group.lines and key != _key(group.lines[0].stream):
                # a record of the other stream ends an open traceback here, before it: a resume
                # point taken now can never fall before one of the group's own lines
                self._close_group(before=self._mark(before, key))
            pending = partials.get(record.stream)
            if record.partial or pending is not None:
                if pending is None:
                    mark = self._mark(before, key)
                    pending = _Partial(record, mark, self._ordinal(record.ts_ns))
                    partials[record.stream] = pending
                content = record.content
                room = max_bytes + 1 - pending.kept
                if room > 0:
                    piece = content[:room] if len(content) > room else content
                    pending.chunks.append(piece)
                    pending.kept += len(piece)
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
                content = cut_utf8(content, max_bytes)
            self._line(record.ts_ns, record.ts, record.stream, content, flags, before)

    def feed_overlong(self, head: bytes, *, start_offset: int, end_offset: int) -> None:
        """A line with no newline within the limit: ``head`` is its start, the rest was skipped."""
        record = parse_docker_json(head) if head[:1] == b"{" else parse_cri(head)
        size = end_offset - start_offset - 1  # the physical line, without its newline
        if record is None:
            flags: dict[str, Any] = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: size}
            if self._nothing_numbered():
                self._offset = end_offset
                self._hold(head, start_offset, end_offset, flags)
                return
        elif self._held_lines:
            self._release_held(record.ts_ns)
        self._seq += 1
        key = "-" if record is None else record.stream
        self._counts[key] = self._counts.get(key, 0) + 1
        self._offset = end_offset
        if self._skip_left and self._skip_left.get(key):
            self._skip_record(key, record)
            return
        if record is None:
            self._malformed(head, start_offset, self._run_ts, flags)
            return
        content_bytes = size - (len(head) - len(record.content))  # the record's content, without the prefix
        flags = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: content_bytes}
        self._line(record.ts_ns, record.ts, record.stream, cut_utf8(record.content, self._opt.max_line_bytes),
                   flags, start_offset)

    def flush(self, *, partial_lines: bool = True) -> None:
        """Close what is open: an open traceback and (``partial_lines``) trailing ``P`` chunks.

        Without ``partial_lines`` an unfinished line stays open (its writer may still be writing
        it) and the resume point stays before it. With it, an unfinished line is emitted marked
        ``partial``, and malformed lines still waiting for the stream's first timestamp are dated
        as those of a stream without one (the epoch).
        """
        if partial_lines:
            if self._held_lines:
                self._release_held(0)
            for stream, pending in sorted(self._partials.items(), key=lambda kv: kv[1].mark[0]):
                del self._partials[stream]
                self._complete_partial(stream, pending, None)
        self._close_group()

    def has_pending(self) -> bool:
        """A partial line or a traceback is open (what an idle flush would close).

        Lines waiting for the stream's first timestamp are not: an idle stream keeps them waiting,
        so that their date never depends on when the stream was idle.
        """
        return bool(self._partials) or bool(self._group.lines)

    def left_open(self) -> int:
        """Lines a pause leaves for the next run: unfinished partial lines, lines waiting for a timestamp."""
        return len(self._partials) + len(self._held_lines)

    def position(self, before: Mark | None = None) -> Position:
        """Where to resume to reproduce everything not emitted yet (the current safe point).

        ``before`` marks a line consumed but not emitted yet (the one that closed a traceback
        group): the resume point must not pass it.
        """
        if self._held_lines:
            return self._held.position  # nothing else can be open before a stream's first record
        group_mark = self._group.mark
        if not self._partials and group_mark is None and before is None:  # nothing open: the common case
            if not self._skip_left and not self._skip_inline:
                return Position(self._file_id, self._offset, self._run_ts, self._run_count, self._run_back)
            return self._here()
        marks = [p.mark for p in self._partials.values()]
        if group_mark is not None:
            marks.append(group_mark)
        if before is not None:
            marks.append(before)
        return earliest(marks, self._counts)

    # -- internals ---------------------------------------------------------------------------
    def _count_error(self, reason: str) -> None:
        self.parse_errors[reason] = self.parse_errors.get(reason, 0) + 1

    def _hold(self, raw: bytes, before: int, end: int, flags: dict[str, Any] | None) -> None:
        """Keep a malformed line read before any record of the stream until a timestamp comes."""
        if len(raw) > self._opt.max_line_bytes:
            flags = flags or {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: len(raw)}
            raw = cut_utf8(raw, self._opt.max_line_bytes)
        if self._held.add(self._file_id, before, end, raw, flags, self._here(before)):
            self._release_held(0)  # too many: dated as a stream without a timestamp

    def _release_held(self, ts_ns: int) -> None:
        """Emit the held lines, in order, dated ``ts_ns`` (the stream's first record's, or the epoch).

        Each is processed as if read now at its own place (file, offset): numbered at ``ts_ns``
        before the record that released them, with resume points after each of them.
        """
        file_id, offset = self._file_id, self._offset
        for line in self._held.take():
            self._file_id, self._offset = line.file_id, line.end
            self._seq += 1
            self._counts["-"] = self._counts.get("-", 0) + 1
            self._malformed(line.raw, line.before, ts_ns, line.flags)
        self._file_id, self._offset = file_id, offset

    def _malformed(self, raw: bytes, before: int, ts_ns: int, flags: dict[str, Any] | None) -> None:
        """Not a runtime record: keep it, marked, dated by its neighbours.

        ``ts_ns`` is the greatest timestamp before it in the stream; for lines before the stream's
        first record, that record's (they were held until it came); for a stream without any
        record, the epoch (counted as ``undated``). Its ordinal follows the previous line's, so a
        replay agrees.
        """
        self._count_error("malformed_cri")
        if not ts_ns:
            self._count_error("undated")
        flags = {**(flags or {}), m.F_PARSE_ERROR: "malformed_cri"}
        if len(raw) > self._opt.max_line_bytes:
            flags[m.F_TRUNCATED] = True
            flags.setdefault(m.F_ORIGINAL_BYTES, len(raw))
            raw = cut_utf8(raw, self._opt.max_line_bytes)
        self._line(ts_ns, format_timestamp(ts_ns), None, raw, flags, before)

    def _complete_partial(self, stream: str, pending: _Partial, before: int | None) -> None:
        """A merged line: ended by its final record (``before`` its offset) or flushed without one."""
        content = b"".join(pending.chunks)
        flags: dict[str, Any] | None = None
        if pending.size > self._opt.max_line_bytes:
            flags = {m.F_TRUNCATED: True, m.F_ORIGINAL_BYTES: pending.size}
            content = cut_utf8(content, self._opt.max_line_bytes)
        if before is None:
            flags = {**(flags or {}), m.F_PARTIAL: True}  # its end never came
        # the line's identity and resume point are those of its first chunk
        self._line(pending.ts_ns, pending.ts, stream, content, flags, pending.mark[1].offset,
                   start_mark=pending.mark, ordinal=pending.ordinal)

    def _line(
        self, ts_ns: int, ts: str, stream: str | None, content: bytes, flags: dict[str, Any] | None,
        before: int, *, start_mark: Mark | None = None, ordinal: int | None = None,
    ) -> None:
        """A complete logical line: number it (unless it started earlier), then group or encode it."""
        try:
            message = content.decode()
        except UnicodeDecodeError:
            message, flags = self._replace_invalid(content, flags)
        multiline_on = self._opt.multiline
        # The line's own resume point (with the ordinal state before it) is needed only when it
        # opens or closes a traceback group: build it only then (this is the per-line hot path).
        mark = None
        group = self._group
        if multiline_on and (group.lines or starts_traceback(message)):
            mark = start_mark or self._mark(before, _key(stream))
        if ordinal is None:
            ordinal = self._ordinal(ts_ns)
        if not multiline_on or mark is None:
            self._encode(ts_ns, ts, ordinal, stream, message, flags, None)
            return
        line = multiline.Line(ts_ns, ts, ordinal, stream, message, flags)
        if group.lines:
            if group.offer(line):
                if len(group.lines) >= self._opt.multiline_max_lines:
                    self._close_group()
                return
            self._close_group(before=mark)
        if starts_traceback(message):
            group.start(line, mark)
            return
        self._encode(ts_ns, ts, ordinal, stream, message, flags, None)

    def _replace_invalid(self, content: bytes, flags: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """Invalid UTF-8: U+FFFD for each bad byte, marked; cut again if that outgrew the limit."""
        message = content.decode("utf-8", "replace")
        self._count_error("invalid_utf8")
        flags = dict(flags or {})
        flags.setdefault(m.F_PARSE_ERROR, "invalid_utf8")
        encoded = message.encode()
        if len(encoded) > self._opt.max_line_bytes:
            message = cut_utf8(encoded, self._opt.max_line_bytes).decode()
            flags[m.F_TRUNCATED] = True
            flags.setdefault(m.F_ORIGINAL_BYTES, len(content))
        return message, flags

    def _close_group(self, before: Mark | None = None) -> None:
        if not self._group.lines:
            return
        group, trailing = self._group.take()
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
        for line in trailing:
            self._encode(line.ts_ns, line.ts, line.ordinal, line.stream, line.message, line.flags, None, before)

    def _index(self, ts: str) -> bytes:
        day = ts[:10]
        index = self._indices.get(day)
        if index is None:
            index = index_name(self._opt.index_template, namespace=self._namespace, ts=ts).encode()
            self._indices[day] = index
        if self._encode_run is not None:
            self._native_day, self._native_index = day.encode(), index  # the fast path continues this day
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
