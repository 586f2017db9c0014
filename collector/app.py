"""Wiring and lifecycle: source -> parse -> enrich -> batch -> send -> ack -> checkpoint.

    FilesSource ──(LineAssembler: parse, merge, group, enrich, encode)──▶ Batcher
        ▲                                                                  │ bounded queue
        │ reading pauses when the queue is full                            ▼
    log files (the buffer)                                   sender threads ─▶ OpenSearchSink
                                                                           │ every doc has an outcome
    CheckpointStore ◀── AckTracker (in batch order) ◀──────────────────────┘
        └── saved atomically every checkpoint_interval and at shutdown

Shutdown (SIGTERM/SIGINT): stop reading, queue the open batch, let senders drain for at most
``shutdown_timeout_seconds``, then abandon what is still unacknowledged (it is re-read on the next
start) and save checkpoints. Exit 0.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Protocol

import structlog

from collector.model import MetadataProvider
from collector.pipeline.batcher import Batch, Batcher, Stopped
from collector.pipeline.checkpoints import AckTracker, CheckpointStore
from collector.settings import Settings
from collector.sinks.opensearch.sink import Abandoned, DeliveryReport
from collector.sources.files.source import FilesSource
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)


class Sink(Protocol):
    def deliver(self, pieces: list[bytes]) -> DeliveryReport: ...


class Source(Protocol):
    """What the app needs of a source (files, or the Kubernetes API)."""

    heartbeat: float

    def run(self, stop: threading.Event, *, once: bool) -> None: ...
    def close(self) -> None: ...
    @property
    def lines_read(self) -> int: ...
    @property
    def documents(self) -> int: ...
    def total_bytes(self) -> int: ...
    def bytes_read(self) -> int: ...


@dataclass(slots=True)
class Summary:
    """Totals of one run (printed by ``--once``)."""

    lines_read: int = 0
    documents: int = 0
    indexed: int = 0
    already_present: int = 0
    dead_lettered: int = 0
    abandoned_batches: int = 0
    failed: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read, "documents": self.documents, "indexed": self.indexed,
            "already_present": self.already_present, "dead_lettered": self.dead_lettered,
            "abandoned_batches": self.abandoned_batches,
        }


class App:
    """One collector process."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        metadata: MetadataProvider | None = None,
        sink: Sink | None = None,
        stdout: BinaryIO | None = None,
        make_source: Callable[[App], Source] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metadata = metadata
        self.stop = threading.Event()  # stop reading
        self.abort = threading.Event()  # stop delivering (shutdown deadline passed)
        self.summary = Summary()
        self._summary_lock = threading.Lock()
        self._persist = settings.output == "opensearch"
        self.store = CheckpointStore(Path(settings.state_dir) / "checkpoints.json")
        if self.store.load_error:
            log.error("checkpoints_unreadable", error=self.store.load_error, action="starting over; replays are 409s")
        self.acks = AckTracker(self.store)
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=settings.pipeline.queue_batches)
        self.batcher = Batcher(
            acks=self.acks, out=self.queue, max_docs=settings.opensearch.bulk_max_docs,
            max_bytes=settings.opensearch.bulk_max_bytes, max_age=settings.opensearch.flush_interval_seconds,
            stop=self.abort,
        )
        self._client: Any = None
        self.sink = sink or self._make_sink(stdout)
        self.source: Source = make_source(self) if make_source is not None else FilesSource(
            settings=settings, batcher=self.batcher, store=self.store, acks=self.acks, metrics=self.metrics,
            metadata=metadata,
        )
        self._last_delivery_ok: float | None = None
        self._workers: list[threading.Thread] = []

    def _make_sink(self, stdout: BinaryIO | None) -> Sink:
        if self.settings.output == "stdout":
            from collector.sinks.stdout import StdoutSink  # noqa: PLC0415 - only for dry runs

            return StdoutSink(stdout or sys.stdout.buffer)
        from collector.sinks.opensearch.client import OpenSearchClient  # noqa: PLC0415
        from collector.sinks.opensearch.deadletter import DeadLetter  # noqa: PLC0415
        from collector.sinks.opensearch.sink import OpenSearchSink  # noqa: PLC0415

        os_settings = self.settings.opensearch
        self._client = OpenSearchClient(os_settings)
        deadletter = DeadLetter(
            client=self._client, index_template=os_settings.deadletter_index,
            directory=Path(self.settings.state_dir) / "deadletter",
        )
        return OpenSearchSink(
            client=self._client, deadletter=deadletter, metrics=self.metrics, abort=self.abort,
            initial_backoff=os_settings.retry_initial_seconds, max_backoff=os_settings.retry_max_seconds,
        )

    # -- health ----------------------------------------------------------------------------------
    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self.source.heartbeat
        return (age < 60, f"reader heartbeat {age:.1f}s ago")

    def ready(self) -> tuple[bool, str]:
        if self.metadata is not None and not self.metadata.synced():
            return False, "pod metadata not synced yet"
        if self._client is not None:
            recent = self._last_delivery_ok is not None and time.monotonic() - self._last_delivery_ok < 30
            if not recent:
                try:
                    self._client.info()
                except Exception as exc:
                    return False, f"OpenSearch not reachable: {exc}"
        return True, "ready"

    # -- threads ---------------------------------------------------------------------------------
    def _sender(self) -> None:
        while True:
            batch = self.queue.get()
            self.metrics.queue_depth.set(self.queue.qsize())
            if batch is None:
                return
            try:
                report = self.sink.deliver(batch.pieces) if batch.pieces else DeliveryReport()
            except Abandoned:
                with self._summary_lock:
                    self.summary.abandoned_batches += 1
                continue  # keep draining the queue so the reader never blocks on a dead sender
            except Exception as exc:
                log.exception("sender_failed")
                with self._summary_lock:
                    self.summary.failed = f"sender failed: {exc!r}"
                self.abort.set()
                self.stop.set()
                continue
            self._last_delivery_ok = time.monotonic()
            self.acks.acknowledge(batch.ticket)
            self.metrics.in_flight.set(self.acks.in_flight())
            if batch.positions:
                newest = max(p.run_ts_ns for p in batch.positions.values())
                if newest:
                    self.metrics.lag_seconds.set(max(0.0, time.time() - newest / 1e9))
            with self._summary_lock:
                self.summary.indexed += report.created
                self.summary.already_present += report.present
                self.summary.dead_lettered += report.dead_lettered

    def _checkpointer(self) -> None:
        interval = self.settings.pipeline.checkpoint_interval_seconds
        while not self.abort.wait(interval):
            self._save()
            if self.stop.is_set() and self.queue.empty() and self.acks.in_flight() == 0:
                break

    def _save(self) -> None:
        if not self._persist:
            return
        try:
            self.store.save()
        except OSError as exc:
            log.error("checkpoint_save_failed", error=str(exc))
        if self.store.saved_at is not None:
            self.metrics.checkpoint_age.set(time.time() - self.store.saved_at)

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> Summary:
        """Read, deliver and checkpoint until stopped (or, with ``once``, until caught up)."""
        once = self.settings.once
        for _ in range(self.settings.opensearch.workers):
            worker = threading.Thread(target=self._sender, name="sender", daemon=True)
            worker.start()
            self._workers.append(worker)
        checkpointer = threading.Thread(target=self._checkpointer, name="checkpointer", daemon=True)
        checkpointer.start()
        log.info("collector_started", log_root=str(self.settings.log_root), once=once,
                 output=self.settings.output, node=self.settings.node_name)
        try:
            self.source.run(self.stop, once=once)
        except Stopped:
            pass
        finally:
            self._drain(deadline=None if once and not self.stop.is_set() else
                        time.monotonic() + self.settings.pipeline.shutdown_timeout_seconds)
            self.source.close()
        self.summary.lines_read = self.source.lines_read
        self.summary.documents = self.source.documents
        unreadable = getattr(self.source, "unreadable", 0)  # files source: input it could not read
        if once and unreadable and self.summary.failed is None:
            self.summary.failed = f"{unreadable} file(s) or directories under the log root could not be read"
        log.info("collector_stopped", **self.summary.as_dict())
        return self.summary

    def _drain(self, *, deadline: float | None) -> None:
        """Deliver what is queued; past ``deadline`` give up on unacknowledged batches."""
        for _ in self._workers:
            while True:
                try:
                    self.queue.put(None, timeout=0.2)
                    break
                except queue.Full:
                    if deadline is not None and time.monotonic() > deadline:
                        self.abort.set()
                    if self.stop.is_set() and deadline is None:
                        deadline = time.monotonic() + self.settings.pipeline.shutdown_timeout_seconds
        for worker in self._workers:
            while worker.is_alive():
                if deadline is None and self.stop.is_set():
                    deadline = time.monotonic() + self.settings.pipeline.shutdown_timeout_seconds
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.abort.set()
                    remaining = 5.0
                worker.join(timeout=min(remaining, 0.5) if remaining is not None else 0.5)
        self.abort.set()
        self._save()
        if self._client is not None:
            self._client.close()
