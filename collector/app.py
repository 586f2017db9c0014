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
start) and save checkpoints. A second signal stops at once: nothing more is waited for, the
acknowledged positions are saved. ``--once`` also ends when a batch made no progress for
``opensearch.once_give_up_seconds`` (the sink gives up, see :mod:`collector.sinks.opensearch.sink`).
The :class:`Summary` says whether everything read was delivered; the exit status follows from it
(:func:`collector.runner.exit_status`).

Health: ``/healthz`` (:meth:`App.alive`) fails only when the reader is stuck; it stays 200 while
reading waits for the senders (backpressure during an outage) and says in its body what the
destination last did. ``/readyz`` (:meth:`App.ready`) means started, pod metadata synced and the
state directory taking checkpoint writes; OpenSearch's reachability is not part of it, so an
outage does not turn every pod NotReady and stall a rollout.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Protocol

import structlog

from collector.model import MetadataProvider
from collector.pipeline.batcher import Batch, Batcher, Stopped
from collector.pipeline.checkpoints import AckTracker, CheckpointStore
from collector.settings import Settings
from collector.sinks.opensearch.sink import Abandoned, DeliveryReport, GaveUp
from collector.sinks.stdout import OutputClosed
from collector.sources.files.source import FilesSource
from collector.telemetry.health import DestinationHealth
from collector.telemetry.metrics import Metrics
from collector.transforms import native

log = structlog.get_logger(__name__)

HEARTBEAT_STALE_SECONDS = 60.0  # a reader silent this long (and not waiting on backpressure) is stuck
_ABORT_GRACE_SECONDS = 2.0  # after abort, how long senders in the middle of a request are waited for


class Sink(Protocol):
    def deliver(self, pieces: Sequence[bytes]) -> DeliveryReport: ...


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

    output: str = "opensearch"
    lines_read: int = 0
    documents: int = 0
    indexed: int = 0
    already_present: int = 0
    dead_lettered: int = 0
    printed: int = 0  # --output stdout: documents printed instead of sent
    abandoned_batches: int = 0  # batches whose delivery was given up (they are read again next time)
    unacknowledged_batches: int = 0  # batches read but not acknowledged when the run ended
    gave_up: str | None = None  # --once: why delivery stopped making progress
    failed: str | None = None  # an unexpected failure
    output_closed: bool = False  # --output stdout: the reader of stdout went away (| head)
    left_for_next_run: int = 0  # --once: lines of live files still open (being written, or undated): read next run

    @property
    def delivered_everything(self) -> bool:
        return not (self.gave_up or self.failed or self.abandoned_batches or self.unacknowledged_batches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output, "lines_read": self.lines_read, "documents": self.documents,
            "indexed": self.indexed, "already_present": self.already_present, "dead_lettered": self.dead_lettered,
            "printed": self.printed, "abandoned_batches": self.abandoned_batches,
            "unacknowledged_batches": self.unacknowledged_batches, "gave_up": self.gave_up, "failed": self.failed,
            "left_for_next_run": self.left_for_next_run,
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metadata = metadata
        self.clock = clock
        self.stop = threading.Event()  # stop reading
        self.abort = threading.Event()  # stop delivering (shutdown deadline passed, gave up, second signal)
        self.forced = threading.Event()  # a second signal: wait for nothing more
        self.health = DestinationHealth(self.metrics, clock=clock)
        self.summary = Summary(output=settings.output)
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
            stop=self.stop,  # a full queue never holds the reader past a stop request
        )
        self._client: Any = None
        self.sink = sink or self._make_sink(stdout)
        self.source: Source = make_source(self) if make_source is not None else FilesSource(
            settings=settings, batcher=self.batcher, store=self.store, acks=self.acks, metrics=self.metrics,
            metadata=metadata,
        )
        self._workers: list[threading.Thread] = []
        self._started = False
        self._checkpoint_error: str | None = None

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
            give_up_after=os_settings.once_give_up_seconds if self.settings.once else None, health=self.health,
            clock=self.clock,
        )

    # -- health ----------------------------------------------------------------------------------
    def alive(self) -> tuple[bool, str]:
        """Liveness: the reader polls, or waits for the senders (backpressure). Never OpenSearch's state."""
        age = self.clock() - self.source.heartbeat
        waiting = self.queue.full()
        ok = age < HEARTBEAT_STALE_SECONDS or waiting
        reader = f"reader heartbeat {age:.1f}s ago" + ("; reading waits for the senders" if waiting else "")
        return ok, f"{reader}; {self.health.describe()}"

    def ready(self) -> tuple[bool, str]:
        """Readiness: started, pod metadata synced, checkpoints being saved."""
        if not self._started:
            return False, "starting"
        if self.metadata is not None and not self.metadata.synced():
            return False, "pod metadata not synced yet"
        if self._checkpoint_error is not None:
            return False, f"checkpoints cannot be saved: {self._checkpoint_error}"
        return True, "ready"

    # -- threads ---------------------------------------------------------------------------------
    def _sender(self) -> None:
        while True:
            batch = self.queue.get()
            self.metrics.queue_depth.set(self.queue.qsize())
            if batch is None:
                return
            try:
                report = self.sink.deliver(batch.documents) if batch.documents else DeliveryReport()
            except GaveUp as exc:
                log.error("delivery_gave_up", reason=exc.reason, message=exc.message, seconds=exc.seconds)
                with self._summary_lock:
                    self.summary.abandoned_batches += 1
                    self.summary.gave_up = self.summary.gave_up or str(exc)
                self.stop.set()
                self.abort.set()
                continue
            except Abandoned:
                with self._summary_lock:
                    self.summary.abandoned_batches += 1
                continue  # keep draining the queue so the reader never blocks on a dead sender
            except OutputClosed:
                self.summary.output_closed = True  # a dry run piped into `head`: stop quietly
                self.stop.set()
                self.abort.set()
                continue
            except Exception as exc:
                log.exception("sender_failed")
                with self._summary_lock:
                    self.summary.failed = f"sender failed: {exc!r}"
                self.abort.set()
                self.stop.set()
                continue
            self.acks.acknowledge(batch.ticket)
            self.metrics.in_flight.set(self.acks.in_flight())
            if batch.positions:
                newest = max(p.run_ts_ns for p in batch.positions.values())
                if newest:
                    self.metrics.lag_seconds.set(max(0.0, time.time() - newest / 1e9))
            with self._summary_lock:
                if self.settings.output == "stdout":
                    self.summary.printed += report.created
                else:
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
        """Save acknowledged positions; a failure is logged (once per cause), counted and makes /readyz fail."""
        if not self._persist:
            return
        try:
            # after a failure the store no longer knows it is dirty: write it whole until a save succeeds
            self.store.save(force=self._checkpoint_error is not None)
        except OSError as exc:
            self.metrics.checkpoint_save_failures.inc()
            error = f"{self.store.path}: {exc.strerror or exc}"
            if error != self._checkpoint_error:
                log.error("checkpoint_save_failed", error=error, action="positions are kept in memory and saved "
                          "when the state directory accepts writes again; /readyz fails meanwhile")
            self._checkpoint_error = error
        else:
            if self._checkpoint_error is not None:
                log.info("checkpoint_save_recovered", previous_error=self._checkpoint_error)
            self._checkpoint_error = None
        if self.store.saved_at is not None:
            self.metrics.checkpoint_age.set(time.time() - self.store.saved_at)

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self.stop.is_set():
                log.warning("shutdown_forced", signal=name, action="stopping now; unacknowledged lines are read again "
                            "on the next start")
                self.forced.set()
                self.abort.set()
            else:
                log.info("shutdown_requested", signal=name, action="draining; a second signal stops at once")
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> Summary:
        """Read, deliver and checkpoint until stopped (or, with ``once``, until caught up or given up)."""
        once = self.settings.once
        for _ in range(self.settings.opensearch.workers):
            worker = threading.Thread(target=self._sender, name="sender", daemon=True)
            worker.start()
            self._workers.append(worker)
        checkpointer = threading.Thread(target=self._checkpointer, name="checkpointer", daemon=True)
        checkpointer.start()
        self._started = True
        log.info("collector_started", log_root=str(self.settings.log_root), once=once,
                 output=self.settings.output, node=self.settings.node_name,
                 native=native.describe(self.settings.pipeline.native))
        try:
            self.source.run(self.stop, once=once)
        except Stopped:
            pass
        finally:
            self._drain(deadline=None if once and not self.stop.is_set() else
                        self.clock() + self.settings.pipeline.shutdown_timeout_seconds)
            self.source.close()
        self.summary.lines_read = self.source.lines_read
        self.summary.documents = self.source.documents
        self.summary.left_for_next_run = getattr(self.source, "left_for_next_run", 0)
        unreadable = getattr(self.source, "unreadable", 0)  # files source: input it could not read
        if once and unreadable and self.summary.failed is None:
            self.summary.failed = f"{unreadable} file(s) or directories under the log root could not be read"
        self.summary.unacknowledged_batches = self.acks.in_flight()
        log.info("collector_stopped", **self.summary.as_dict())
        return self.summary

    def _drain(self, *, deadline: float | None) -> None:
        """Deliver what is queued; past ``deadline`` (or at a second signal) give up on the unacknowledged.

        ``deadline`` None (``--once`` running to its end) waits for the senders, which end on their
        own (delivered, or given up); a signal sets a deadline.
        """
        sentinels = len(self._workers)
        aborted_at: float | None = None
        while not self.forced.is_set():
            now = self.clock()
            if deadline is None and self.stop.is_set():
                deadline = now + self.settings.pipeline.shutdown_timeout_seconds
            if deadline is not None and now > deadline:
                self.abort.set()
            if self.abort.is_set():
                aborted_at = now if aborted_at is None else aborted_at
                if now - aborted_at > _ABORT_GRACE_SECONDS:
                    break  # senders still in a request: their batches stay unacknowledged
            if sentinels:
                try:
                    self.queue.put(None, timeout=0.2)
                    sentinels -= 1
                except queue.Full:
                    pass
                continue
            alive = [worker for worker in self._workers if worker.is_alive()]
            if not alive:
                break
            alive[0].join(timeout=0.2)
        self.abort.set()
        self._save()
        if self._client is not None and not any(worker.is_alive() for worker in self._workers):
            self._client.close()
