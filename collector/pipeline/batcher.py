"""Batching: encoded documents into bounded ``_bulk`` batches on a bounded queue.

A batch closes at ``max_docs`` documents, ``max_bytes`` bytes or ``max_age`` seconds. Closing
registers it with the :class:`~collector.pipeline.checkpoints.AckTracker` (fixing its place in the
acknowledgement order) and puts it on a queue of at most ``queue_batches`` batches. ``put`` blocks
when the queue is full: the reading thread stops reading and the log files are the buffer, so memory
stays bounded by (queue + workers + 1) x ``max_bytes`` whatever the backlog.

Documents come one at a time (:meth:`Batcher.add`, the reference path) or as a **run** of one
stream's consecutive documents already encoded into one body (:meth:`Batcher.add_run`, the compiled
fast path), which asks :meth:`Batcher.room` first and never overfills a batch, so batches close at
the same documents either way. A batch keeps one position per stream: the one after its last
document of that stream (acknowledgements are per batch, in order), so a run needs only its end
position. The body is joined once at close (:class:`~collector.pipeline.documents.Documents`).
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.pipeline.checkpoints import AckTracker
from collector.pipeline.documents import Documents, ends_from_bytes
from collector.transforms.assembler import Position


@dataclass(slots=True)
class Batch:
    """Documents for one ``_bulk`` request and the stream positions they complete."""

    ticket: int
    documents: Documents
    positions: dict[str, Position]
    created: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return len(self.documents.body)


class Stopped(Exception):
    """The pipeline is stopping; the caller should stop producing."""


class Batcher:
    """Accumulates documents; hands full batches to the bounded queue (blocking when full)."""

    def __init__(
        self,
        *,
        acks: AckTracker,
        out: queue.Queue[Batch | None],
        max_docs: int,
        max_bytes: int,
        max_age: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._acks = acks
        self._out = out
        self._max_docs = max_docs
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._stop = stop
        self._clock = clock
        self._parts: list[bytes] = []
        self._ends: array[int] = array("Q")
        self._size = 0
        self._positions: dict[str, Position] = {}
        self._opened = clock()
        self.blocked_seconds = 0.0

    def add(self, stream_key: str, piece: bytes, position: Position) -> None:
        """One encoded document of a stream, with the stream's resume position after it."""
        if self._ends and (self._size + len(piece) > self._max_bytes or len(self._ends) >= self._max_docs):
            self.flush()
        if not self._ends:
            self._opened = self._clock()
        self._parts.append(piece)
        self._size += len(piece)
        self._ends.append(self._size)
        self._positions[stream_key] = position

    def room(self) -> tuple[int, int, int, int]:
        """(documents, bytes) in the open batch and the limits (max_docs, max_bytes) a run must respect."""
        return len(self._ends), self._size, self._max_docs, self._max_bytes

    def add_run(self, stream_key: str, body: bytes, ends: bytes, position: Position) -> None:
        """Consecutive documents of a stream in one body; ``ends``: their end offsets *in the batch*
        (little-endian u64, as :meth:`room` said the batch was), ``position``: the stream's after the last."""
        if not self._ends:
            self._opened = self._clock()
        self._parts.append(body)
        self._size += len(body)
        self._ends.extend(ends_from_bytes(ends))
        self._positions[stream_key] = position

    def for_stream(self, stream_key: str) -> StreamBatch:
        """This batcher as one stream's assembler sees it (runs of that stream's documents)."""
        return StreamBatch(self, stream_key)

    def tick(self) -> None:
        """Close the open batch if it is old enough."""
        if (self._ends or self._positions) and self._clock() - self._opened >= self._max_age:
            self.flush()

    def flush(self) -> None:
        """Close the open batch and queue it (blocks while the queue is full)."""
        if not self._ends and not self._positions:
            return
        ticket = self._acks.register(self._positions)
        body = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        batch = Batch(ticket=ticket, documents=Documents(body, self._ends), positions=self._positions)
        self._parts, self._ends, self._size, self._positions = [], array("Q"), 0, {}
        del body
        started = time.monotonic()
        while True:
            try:
                self._out.put(batch, timeout=0.2)
                break
            except queue.Full:
                if self._stop.is_set():
                    # stopping with a full queue: this batch is never sent, so never acknowledged
                    raise Stopped from None
        self.blocked_seconds += time.monotonic() - started


class StreamBatch:
    """One stream's view of the batcher: what :class:`~collector.transforms.assembler.LineAssembler` feeds runs to."""

    __slots__ = ("_batcher", "_key", "flush", "room")

    def __init__(self, batcher: Batcher, key: str) -> None:
        self._batcher = batcher
        self._key = key
        self.room = batcher.room
        self.flush = batcher.flush

    def add_run(self, body: bytes, ends: bytes, position: Position) -> None:
        self._batcher.add_run(self._key, body, ends, position)
