"""Checkpoints: acknowledged resume positions per stream, persisted atomically.

Positions enter only through :class:`AckTracker`, which applies a batch's positions when that batch
and every batch created before it were acknowledged by the sink: a position can never pass a line
OpenSearch has not confirmed. The store is written as JSON with write-to-temp, ``fsync``, ``rename``
and a directory ``fsync``, so a crash at any instant leaves either the old or the new file, whole.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from collector.transforms.assembler import Position

_FORMAT_VERSION = 1


class CheckpointStore:
    """Positions by stream key (``<pod_uid>/<container>/<restart>``), saved on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._positions: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self.saved_at: float | None = None
        self._load()

    def _load(self) -> None:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except OSError as exc:
            # Not a damaged file: the state directory is not usable (a file in its place, no
            # permission). `servelog run` refuses to start so (settings check); say what is wrong.
            self.load_error = (f"cannot read {self.path}: {exc.strerror or exc}: state_dir must be a directory "
                               "this process may read and write (checkpoints cannot be kept)")
            return
        except orjson.JSONDecodeError as exc:
            # Never crash-loop on a damaged file (renames make this unlikely): keep it for
            # inspection and start over; deterministic ids turn the re-read into 409s.
            broken = self.path.with_suffix(f".broken-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.rename(broken)
            self.load_error = f"{self.path} is damaged ({exc}); set aside as {broken.name}"
            return
        if isinstance(data, dict) and data.get("version") == _FORMAT_VERSION:
            self._positions = dict(data.get("streams", {}))

    load_error: str | None = None

    def get(self, key: str) -> Position | None:
        with self._lock:
            raw = self._positions.get(key)
        return Position.from_json(raw) if raw is not None else None

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._positions)

    def update(self, positions: dict[str, Position]) -> None:
        with self._lock:
            for key, position in positions.items():
                self._positions[key] = position.to_json()
            if positions:
                self._dirty = True

    def forget(self, key: str) -> None:
        with self._lock:
            if self._positions.pop(key, None) is not None:
                self._dirty = True

    def save(self, *, force: bool = False) -> bool:
        """Write the file if anything changed (atomically); True when written."""
        with self._lock:
            if not self._dirty and not force:
                return False
            payload = orjson.dumps({"version": _FORMAT_VERSION, "streams": self._positions})
            self._dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.saved_at = time.time()
        return True


class AckTracker:
    """Applies batches' positions in creation order, as their acknowledgements arrive."""

    def __init__(self, store: CheckpointStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._order: collections.deque[int] = collections.deque()
        self._positions: dict[int, dict[str, Position]] = {}
        self._acked: set[int] = set()
        self._next = 0
        self.idle = threading.Condition(self._lock)

    def register(self, positions: dict[str, Position]) -> int:
        """A new batch (in creation order); returns its ticket."""
        with self._lock:
            ticket = self._next
            self._next += 1
            self._order.append(ticket)
            self._positions[ticket] = positions
            return ticket

    def acknowledge(self, ticket: int) -> None:
        """The sink delivered the batch; advance positions as far as order allows."""
        ready: list[dict[str, Position]] = []
        with self._lock:
            self._acked.add(ticket)
            while self._order and self._order[0] in self._acked:
                head = self._order.popleft()
                self._acked.discard(head)
                ready.append(self._positions.pop(head))
            if not self._order:
                self.idle.notify_all()
        merged: dict[str, Position] = {}
        for positions in ready:
            merged.update(positions)
        self._store.update(merged)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._order)

    def streams_in_flight(self) -> set[str]:
        with self._lock:
            keys: set[str] = set()
            for positions in self._positions.values():
                keys.update(positions)
            return keys
