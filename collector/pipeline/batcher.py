"""Batching: encoded documents into bounded ``_bulk`` batches on a bounded queue.

A batch closes at ``max_docs`` documents, ``max_bytes`` bytes or ``max_age`` seconds. Closing
registers it with the :class:`~collector.pipeline.checkpoints.AckTracker` (fixing its place in the
acknowledgement order) and puts it on a queue of at most ``queue_batches`` batches. ``put`` blocks
when the queue is full: the reading thread stops reading and the log files are the buffer, so memory
stays bounded by (queue + workers + 1) x ``max_bytes`` whatever the backlog.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.pipeline.checkpoints import AckTracker
from collector.transforms.assembler import Position


@dataclass(slots=True)
class Batch:
    """Documents for one ``_bulk`` request and the stream positions they complete."""

    ticket: int
    pieces: list[bytes]
    size: int
    positions: dict[str, Position]
    created: float = field(default_factory=time.monotonic)


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
        self._pieces: list[bytes] = []
        self._size = 0
        self._positions: dict[str, Position] = {}
        self._opened = clock()
        self.blocked_seconds = 0.0

    def add(self, stream_key: str, piece: bytes, position: Position) -> None:
        """One encoded document of a stream, with the stream's resume position after it."""
        if self._pieces and (self._size + len(piece) > self._max_bytes or len(self._pieces) >= self._max_docs):
            self.flush()
        if not self._pieces:
            self._opened = self._clock()
        self._pieces.append(piece)
        self._size += len(piece)
        self._positions[stream_key] = position

    def tick(self) -> None:
        """Close the open batch if it is old enough."""
        if (self._pieces or self._positions) and self._clock() - self._opened >= self._max_age:
            self.flush()

    def flush(self) -> None:
        """Close the open batch and queue it (blocks while the queue is full)."""
        if not self._pieces and not self._positions:
            return
        ticket = self._acks.register(self._positions)
        batch = Batch(ticket=ticket, pieces=self._pieces, size=self._size, positions=self._positions)
        self._pieces, self._size, self._positions = [], 0, {}
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
