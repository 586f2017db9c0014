"""Progress display for ``--once`` backfills on a terminal: bytes done / total, rate, ETA."""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO


def render(done: int, total: int, elapsed: float) -> str:
    """One status line (pure)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    pct = 100.0 * done / total if total else 100.0
    eta = (total - done) / rate if rate > 0 and total > done else 0.0
    return f"\r{done / 2**20:8.1f} / {total / 2**20:.1f} MiB  {pct:5.1f}%  {rate / 2**20:6.1f} MiB/s  ETA {eta:5.0f}s"


class Progress:
    """Redraws the status line twice a second until stopped."""

    def __init__(self, app: Any, *, stream: TextIO) -> None:
        self._app = app
        self._stream = stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> Progress:
        self._total = self._app.source.total_bytes()
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def _draw(self) -> None:
        done = min(self._app.source.bytes_read(), self._total)
        self._stream.write(render(done, self._total, time.monotonic() - self._started))
        self._stream.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._draw()
        self._stream.write("\n")
