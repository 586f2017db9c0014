"""The Kubernetes API source: ``pods/log`` streams instead of kubelet files.

For clusters that forbid hostPath mounts, or a collector running outside the cluster. One thread
per container instance streams ``pods/log`` with ``follow``, ``timestamps=true``, a request timeout
and a periodic reconnect (``log_stream_lifetime_seconds``); a terminated instance (an init container
such as ``storage-initializer``, or the previous instance of a restarted container) is read to its
end without ``follow``.

Resuming is deliberately overlapping: ``sinceTime`` has whole-second precision, so a reconnect asks
for the whole second of the last position and the assembler, restarted with fresh ordinal state at
that second boundary, recomputes the same identities and skips those already emitted
(``skip_through``). Lines that *share* the resume timestamp are therefore never lost (the bug of
tools that drop every line at or before the cursor time), and the ``_id`` of every line equals the
one the files source gives it. ``pods/log`` serves only the current file: when the line at the
resume point is not served any more (rotated away while disconnected), the possible gap is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from collector.errors import KubeError, KubeRejected
from collector.model import MetadataProvider
from collector.pipeline.batcher import Batcher
from collector.pipeline.checkpoints import CheckpointStore
from collector.settings import Settings
from collector.sources import assembler_options
from collector.sources.kubernetes.targets import LogTarget, desired_targets, reconcile
from collector.telemetry.metrics import Metrics
from collector.transforms.assembler import LineAssembler, Position
from collector.transforms.cri import parse_kubelet_api
from collector.transforms.enrich import merge_pod_fields, path_fields

log = structlog.get_logger(__name__)

API_FILE_ID = "api"


class PodLogClient(Protocol):
    """What the API source needs from the Kubernetes client boundary."""

    def stream_pod_log(
        self, namespace: str, pod: str, *, container: str, follow: bool, timestamps: bool,
        since_time: str | None, previous: bool, request_timeout: float,
    ) -> Iterator[bytes]: ...


class PodLister(Protocol):
    """What the API source needs from the pod watch: the raw pods of this node."""

    def pods(self) -> list[Mapping[str, Any]]: ...


def since_time_for(position: Position | None) -> str | None:
    """``sinceTime`` for a resume: the start of the second of the last position (whole seconds)."""
    if position is None or not position.run_ts_ns:
        return None
    seconds = position.run_ts_ns // 1_000_000_000
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def skip_through_for(position: Position | None) -> tuple[int, int] | None:
    """The identity of the last line before ``position`` (lines up to it were emitted)."""
    if position is None or not position.run_ts_ns or position.run_count <= 0:
        return None
    return position.run_ts_ns, position.run_count - 1


def split_lines(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Complete lines from a byte stream, a list per chunk (a trailing unterminated piece waits)."""
    remainder = b""
    for chunk in chunks:
        data = remainder + chunk if remainder else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            remainder = data
            continue
        remainder = data[cut + 1 :]
        yield data[:cut].split(b"\n")
    if remainder:
        yield [remainder]


class _Streamer:
    """Streams one target until its container instance is done (or the collector stops)."""

    def __init__(self, source: ApiSource, target: LogTarget) -> None:
        self.source = source
        self.target = target
        self.last_position: Position | None = source.store.get(target.key)
        self.thread = threading.Thread(target=self.run, name=f"pods-log:{target.key}", daemon=True)
        self.lines = 0
        self.documents = 0
        self._stream: Any = None

    def abort(self) -> None:
        """End a follow blocked waiting for data (shutdown)."""
        stream = self._stream
        close = getattr(stream, "close", None)
        if callable(close):
            close()

    def _assembler(self, fields: Mapping[str, Any]) -> LineAssembler:
        return LineAssembler(
            options=self.source.options, pod_uid=self.target.pod_uid, container=self.target.container,
            restart_count=self.target.restart_count, fields=fields, emit=self._emit,
            start=Position(API_FILE_ID, 0, 0, 0), skip_through=skip_through_for(self.last_position),
            kubelet_api=True,
        )

    def _emit(self, piece: bytes, position: Position) -> None:
        with self.source.lock:
            self.source.batcher.add(self.target.key, piece, position)
        self.last_position = position

    def run(self) -> None:
        src = self.source
        target = self.target
        backoff = 0.5
        while not src.stop.is_set():
            started = time.monotonic()
            fields = src.fields_for(target)
            assembler = self._assembler(fields)
            expected = skip_through_for(self.last_position)
            seen_resume_point = expected is None
            ended_cleanly = False
            try:
                stream = src.client.stream_pod_log(
                    target.namespace, target.pod_name, container=target.container,
                    follow=not target.finished and not src.once, timestamps=True,
                    since_time=since_time_for(self.last_position),
                    previous=target.previous, request_timeout=src.settings.kubernetes.log_request_timeout_seconds,
                )
                self._stream = stream
                try:
                    for lines in split_lines(stream):
                        if not seen_resume_point and expected is not None:
                            seen_resume_point = self._covers(lines, expected)
                        assembler.feed_lines(lines, start_offset=0)
                        self.lines += len(lines)
                        src.metrics.lines_read.inc(len(lines))
                        lifetime = src.settings.kubernetes.log_stream_lifetime_seconds
                        if src.stop.is_set() or time.monotonic() - started > lifetime:
                            break  # periodic reconnect: long-lived follows stall or end silently
                    else:
                        ended_cleanly = not src.stop.is_set()
                finally:
                    close = getattr(stream, "close", None)
                    if callable(close):
                        close()  # release the connection at once, also on the early break
                    self._stream = None
                backoff = 0.5
            except KubeRejected as exc:
                if exc.status in (400, 404):
                    # no such instance (previous gone, pod deleted): nothing more to read
                    log.info("pods_log_unavailable", stream=target.key, status=exc.status)
                    ended_cleanly = True
                else:
                    log.warning("pods_log_rejected", stream=target.key, status=exc.status)
            except KubeError as exc:
                log.warning("pods_log_interrupted", stream=target.key, error=str(exc))
            if not seen_resume_point:
                src.metrics.files_lost.inc()
                log.warning("pods_log_possible_gap", stream=target.key,
                            note="the resume point is no longer served (rotated away while disconnected)")
            assembler.flush() if ended_cleanly else None
            self.documents += assembler.documents
            src.metrics.documents_produced.inc(assembler.documents)
            if ended_cleanly and (target.finished or src.once or not src.still_running(target)):
                src.completed(target)
                return
            if src.stop.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    @staticmethod
    def _covers(lines: list[bytes], expected: tuple[int, int]) -> bool:
        """Whether this chunk reaches the resume point's timestamp (lines at or after it)."""
        for raw in lines:
            record = parse_kubelet_api(raw)
            if record is not None and record.ts_ns >= expected[0]:
                return record.ts_ns == expected[0]
        return False


class ApiSource:
    """Reconciles streamers with the pods of this node and keeps the batcher ticking."""

    def __init__(
        self,
        *,
        settings: Settings,
        batcher: Batcher,
        store: CheckpointStore,
        metrics: Metrics,
        client: PodLogClient,
        pods: PodLister,
        metadata: MetadataProvider | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.batcher = batcher
        self.store = store
        self.metrics = metrics
        self.client = client
        self.pod_lister = pods
        self.metadata = metadata
        self.clock = clock
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.options = assembler_options(settings)
        self._streamers: dict[str, _Streamer] = {}
        self._completed: set[str] = set()
        self._done_streamers: list[_Streamer] = []
        self.heartbeat = clock()
        self.once = False

    # -- callbacks from streamers ----------------------------------------------------------------
    def fields_for(self, target: LogTarget) -> dict[str, Any]:
        base = path_fields(namespace=target.namespace, pod_name=target.pod_name, pod_uid=target.pod_uid,
                           container=target.container, restart_count=target.restart_count,
                           node_name=self.settings.node_name)
        pod = self.metadata.lookup(target.pod_uid) if self.metadata is not None else None
        if pod is None or self.metadata is None:
            self.metrics.metadata_fallbacks.inc()
            return base
        return merge_pod_fields(base, pod, self.metadata.name)

    def still_running(self, target: LogTarget) -> bool:
        """Whether the instance still runs (a clean end of a follow then means: reconnect)."""
        for pod in self.pod_lister.pods():
            if (pod.get("metadata") or {}).get("uid") != target.pod_uid:
                continue
            for candidate in desired_targets([pod], excluded_containers=()):
                if candidate.key == target.key:
                    return not candidate.finished
        return False

    def completed(self, target: LogTarget) -> None:
        with self.lock:
            self._completed.add(target.key)

    # -- the loop --------------------------------------------------------------------------------
    def sync(self) -> None:
        """Start streamers for new container instances."""
        desired = desired_targets(self.pod_lister.pods(), excluded_containers=self.settings.pipeline.exclude_containers)
        include, exclude = set(self.settings.pipeline.include_namespaces), set(self.settings.pipeline.exclude_namespaces)
        desired = {t for t in desired if (not include or t.namespace in include) and t.namespace not in exclude}
        for key in [k for k, s in self._streamers.items() if not s.thread.is_alive()]:
            self._done_streamers.append(self._streamers.pop(key))
        with self.lock:
            completed = set(self._completed)
        for target in reconcile(desired, self._streamers, completed):
            streamer = _Streamer(self, target)
            self._streamers[target.key] = streamer
            streamer.thread.start()
        self.metrics.streams.set(len(self._streamers))

    def run(self, stop: threading.Event, *, once: bool) -> None:
        self.once = once
        interval = self.settings.pipeline.scan_interval_seconds
        # Targets come from the pod watch: wait (bounded) for its first list, or a --once run
        # would find no pods and end before it started.
        synced = getattr(self.pod_lister, "synced", None)
        deadline = time.monotonic() + max(self.settings.kubernetes.metadata_wait_seconds, 30.0)
        while callable(synced) and not synced() and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(0.05)
        while not stop.is_set():
            self.heartbeat = self.clock()
            self.sync()
            with self.lock:
                self.batcher.tick()
            if once and not any(s.thread.is_alive() for s in self._streamers.values()):
                break
            stop.wait(min(interval, 0.2))
        self.stop.set()
        for streamer in self._streamers.values():
            streamer.abort()
        for streamer in self._streamers.values():
            streamer.thread.join(timeout=self.settings.kubernetes.log_request_timeout_seconds)
        with self.lock:
            self.batcher.flush()

    def close(self) -> None:
        self.stop.set()

    @property
    def lines_read(self) -> int:
        return sum(s.lines for s in [*self._streamers.values(), *self._done_streamers])

    @property
    def documents(self) -> int:
        return sum(s.documents for s in [*self._streamers.values(), *self._done_streamers])

    def total_bytes(self) -> int:
        return 0

    def bytes_read(self) -> int:
        return 0
