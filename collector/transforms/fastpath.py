"""The assembler's side of the compiled fast path: when it may take over, and what a run changes.

:class:`~collector.transforms.assembler.LineAssembler` hands ``lines[i:]`` to
``collector._native.encode_run`` (see :mod:`collector.transforms.native`) only in a **clean**
state: no partial line, open traceback, line waiting for a timestamp or resume skip. A run then
encodes plain lines exactly as the reference path would and stops at the first it cannot take
(the assembler takes that one itself), or before the document that would overfill the open batch
(the batch is closed, the run goes on). What the reference path would have done per line is done
here per run: records counted per stream, the place and ordinal state advanced, documents counted,
and one position, the one after the run's last document (a batch keeps one position per stream).
Without a batch (``emit`` only: tests, dry tools) every run is one document, with its own position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from collector.transforms.position import Position

if TYPE_CHECKING:
    from collector.transforms.assembler import LineAssembler

_ONE_DOCUMENT = (0, 0, 1, 1 << 62)  # room of an empty batch that holds one document


class RunBatch(Protocol):
    """Where runs go: one stream's view of the batcher (:meth:`collector.pipeline.batcher.Batcher.for_stream`)."""

    def room(self) -> tuple[int, int, int, int]: ...
    def add_run(self, body: bytes, ends: bytes, position: Position) -> None: ...
    def flush(self) -> None: ...


def clean(a: LineAssembler) -> bool:
    """Nothing open and no resume skip due: the state in which the fast path may take over."""
    return not (a._partials or a._group.lines or a._held_lines or a._skip_left or a._skip_inline
                or a._skip_through is not None)


def feed_run(a: LineAssembler, lines: list[bytes], i: int, offset: int) -> tuple[int, int]:
    """Encode ``lines[i:]`` (``lines[i]`` at ``offset``) until a line the fast path cannot take.

    Returns that line's index and offset (``len(lines)`` when every line was taken).
    """
    batch = a._batch
    opt = a._opt
    counts = a._counts
    encode_run = a._encode_run
    assert encode_run is not None
    while True:
        room = batch.room() if batch is not None else _ONE_DOCUMENT
        (consumed, body, ends, docs, stdout, stderr, offset, a._run_ts, a._run_count, a._run_back,
         full) = encode_run(lines, i, offset, a._run_ts, a._run_count, a._run_back, a._prefix, a._base_fragment,
                            a._native_day, a._native_index, opt.max_line_bytes, opt.multiline, *room)
        if consumed:
            i += consumed
            a._seq += consumed
            if stdout:
                counts["stdout"] = counts.get("stdout", 0) + stdout
            if stderr:
                counts["stderr"] = counts.get("stderr", 0) + stderr
            a._offset = offset
            a.documents += docs
            position = Position(a._file_id, offset, a._run_ts, a._run_count, a._run_back)
            if batch is not None:
                batch.add_run(body, ends, position)
            else:
                a._emit(body, position)
        if not full:
            return i, offset
        if batch is not None:
            batch.flush()
