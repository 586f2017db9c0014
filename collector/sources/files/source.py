"""The files source: discovers container log streams under the log root and tails them.

Target reconciliation, Promtail/Alloy style: every scan lists ``<ns>_<pod>_<uid>/<container>/``
and turns each (pod UID, container, restart count) into a stream; new streams get a tailer, streams
whose pod directory vanished are drained (the open file descriptor still reads what was written)
and let go. A stream of a pod the metadata provider does not know yet waits a bounded time for it,
then goes out with path-derived metadata (counted); it is upgraded when the pod shows up.

One thread reads all streams round-robin, a bounded slice each, and hands documents to the
batcher; when the batch queue is full the batcher blocks and reading pauses.

Only regular files and real directories are read, links never followed; what is skipped or cannot
be read is logged once and counted (:mod:`collector.sources.files.guard`). A ``--once`` run that
ends with files it could not read says so (:attr:`FilesSource.unreadable`): it did not read everything.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from collector.model import MetadataProvider
from collector.pipeline.batcher import Batcher
from collector.pipeline.checkpoints import AckTracker, CheckpointStore
from collector.settings import Settings
from collector.sources import assembler_options
from collector.sources.files.guard import InputReporter, list_dir, list_log_files
from collector.sources.files.paths import PodDir, parse_log_file_name, parse_pod_dir
from collector.sources.files.tailer import StreamTailer
from collector.telemetry.metrics import Metrics
from collector.transforms.assembler import LineAssembler
from collector.transforms.enrich import merge_pod_fields, path_fields

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Stream:
    key: str
    pod: PodDir
    container: str
    restart_count: int
    directory: Path
    first_seen: float
    path_fields: dict[str, Any]
    tailer: StreamTailer | None = None
    enriched: bool = False
    last_activity: float = 0.0
    seen_counts: dict[str, int] = field(default_factory=dict)


class FilesSource:
    """Reads every collected container log stream of this node."""

    def __init__(
        self,
        *,
        settings: Settings,
        batcher: Batcher,
        store: CheckpointStore,
        acks: AckTracker,
        metrics: Metrics,
        metadata: MetadataProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._pipeline = settings.pipeline
        self._batcher = batcher
        self._store = store
        self._acks = acks
        self._metrics = metrics
        self._metadata = metadata
        self._clock = clock
        self._options = assembler_options(settings)
        self._streams: dict[str, _Stream] = {}
        self._finished: set[str] = set()
        self._last_scan = -1e18
        self.lines_read = 0
        self.documents = 0
        self.left_for_next_run = 0  # --once: lines left open in live files (see run)
        self.heartbeat = clock()
        self._blocked_seen = 0.0
        self.reporter = InputReporter(metrics)
        self._root_missing = False

    @property
    def unreadable(self) -> int:
        """Files and directories under the log root that could not be read at the last attempt."""
        return self.reporter.unreadable_now + int(self._root_missing)

    def _root_present(self, root: Path) -> bool:
        """False, said once and counted, while the log root itself is gone (unmounted, deleted).

        A vanished root is not "every pod is gone": streams and checkpoints are kept, and reading
        resumes where it stopped when the root is back.
        """
        if root.is_dir():
            if self._root_missing:
                self._root_missing = False
                log.info("log_root_back", path=str(root))
            return True
        if not self._root_missing:
            self._root_missing = True
            self._metrics.files_unreadable.labels("missing").inc()
            log.error("log_root_missing", path=str(root),
                      note="streams and checkpoints are kept; reading resumes when it is back")
        return False

    # -- discovery -----------------------------------------------------------------------------
    def scan(self) -> None:
        """Reconcile streams with what the log root holds now."""
        root = self._settings.log_root
        if not self._root_present(root):
            self._update_gauges()
            return
        present: set[str] = set()
        uids: set[str] = set()
        include = set(self._pipeline.include_namespaces)
        exclude = set(self._pipeline.exclude_namespaces)
        excluded_containers = set(self._pipeline.exclude_containers)
        reporter = self.reporter
        reporter.prune()
        unlisted: list[str] = []  # key prefixes of directories that could not be listed: not gone
        pod_entries = list_dir(root, reporter)
        if pod_entries is None:
            unlisted.append("")
        for pod_entry in pod_entries or ():
            pod = parse_pod_dir(pod_entry.name)
            if pod is None or (include and pod.namespace not in include) or pod.namespace in exclude:
                continue
            if pod_entry.is_symlink():
                reporter.skipped(Path(pod_entry.path), "symlink")
                continue
            uids.add(pod.pod_uid)
            container_entries = list_dir(Path(pod_entry.path), reporter)
            if container_entries is None:
                unlisted.append(f"{pod.pod_uid}/")
            for container_entry in container_entries or ():
                if container_entry.name in excluded_containers:
                    continue
                if container_entry.is_symlink():
                    reporter.skipped(Path(container_entry.path), "symlink")
                    continue
                if not container_entry.is_dir(follow_symlinks=False):
                    continue
                files = list_log_files(Path(container_entry.path), reporter)
                if files is None:
                    unlisted.append(f"{pod.pod_uid}/{container_entry.name}/")
                for restart in {name.restart_count for _path, name in files or ()}:
                    key = f"{pod.pod_uid}/{container_entry.name}/{restart}"
                    present.add(key)
                    if key not in self._streams and key not in self._finished:
                        self._add(key, pod, container_entry.name, restart, Path(container_entry.path))
        present.update(key for key in self._streams if key.startswith(tuple(unlisted)))
        for key, stream in list(self._streams.items()):
            if key not in present and stream.tailer is not None and stream.tailer.exhausted:
                self._finish(stream, reason="pod_gone")
            elif key not in present and stream.tailer is None:
                del self._streams[key]
        self._prune_checkpoints(uids)
        self._update_gauges()

    def _add(self, key: str, pod: PodDir, container: str, restart: int, directory: Path) -> None:
        fields = path_fields(
            namespace=pod.namespace, pod_name=pod.pod_name, pod_uid=pod.pod_uid, container=container,
            restart_count=restart, node_name=self._settings.node_name,
        )
        self._streams[key] = _Stream(key, pod, container, restart, directory, self._clock(), fields)

    def _prune_checkpoints(self, uids: set[str]) -> None:
        """Forget positions of pods whose logs are gone (nothing left to resume)."""
        in_flight = self._acks.streams_in_flight()
        for key in self._store.keys():  # noqa: SIM118 - a method of the store, not a dict
            if key.split("/", 1)[0] not in uids and key not in in_flight and key not in self._streams:
                self._store.forget(key)
                self._finished.discard(key)

    # -- metadata ------------------------------------------------------------------------------
    def _try_start(self, stream: _Stream, now: float) -> None:
        """Start tailing once metadata is known, or once waiting any longer is not allowed."""
        pod = self._metadata.lookup(stream.pod.pod_uid) if self._metadata is not None else None
        waited = now - stream.first_seen
        wait_limit = self._settings.kubernetes.metadata_wait_seconds
        if pod is None and self._metadata is not None and self._metadata.name == "kubernetes" and waited < wait_limit:
            return  # the watch may not have seen this pod yet
        fields = stream.path_fields
        if pod is not None and self._metadata is not None:
            fields = merge_pod_fields(fields, pod, self._metadata.name)
            stream.enriched = True
        else:
            self._metrics.metadata_fallbacks.inc()
        start = self._store.get(stream.key)
        assembler = LineAssembler(
            options=self._options, pod_uid=stream.pod.pod_uid, container=stream.container,
            restart_count=stream.restart_count, fields=fields, emit=self._emitter(stream.key), start=start,
            batch=self._batcher.for_stream(stream.key),
        )
        stream.tailer = StreamTailer(
            directory=stream.directory, restart_count=stream.restart_count, assembler=assembler, start=start,
            read_chunk_bytes=self._pipeline.read_chunk_bytes, max_line_bytes=self._pipeline.max_line_bytes,
            reporter=self.reporter,
        )
        self._account(stream)
        stream.last_activity = now

    def _upgrade_metadata(self, stream: _Stream) -> None:
        if stream.enriched or self._metadata is None or stream.tailer is None:
            return
        pod = self._metadata.lookup(stream.pod.pod_uid)
        if pod is not None:
            stream.tailer.assembler.set_fields(merge_pod_fields(stream.path_fields, pod, self._metadata.name))
            stream.enriched = True

    def _emitter(self, key: str) -> Callable[[bytes, Any], None]:
        add = self._batcher.add

        def emit(piece: bytes, position: Any) -> None:
            add(key, piece, position)

        return emit

    # -- reading -------------------------------------------------------------------------------
    def poll_once(self, *, once: bool = False) -> int:
        """One round over all streams; returns bytes read."""
        now = self._clock()
        self.heartbeat = now
        if now - self._last_scan >= self._pipeline.scan_interval_seconds:
            self._last_scan = now
            self.scan()
            for stream in self._streams.values():
                self._upgrade_metadata(stream)
        total = 0
        budget = self._pipeline.read_chunk_bytes
        for stream in list(self._streams.values()):
            if stream.tailer is None:
                self._try_start(stream, now)
                if stream.tailer is None:
                    continue
            tailer = stream.tailer
            read = tailer.poll(budget)
            if read:
                total += read
                stream.last_activity = now
            self._account(stream)
            idle = now - stream.last_activity >= self._pipeline.partial_flush_seconds
            if tailer.exhausted and idle and not once and tailer.assembler.has_pending():
                tailer.finish(file_complete=False)
                self._account(stream)
        self._batcher.tick()
        blocked = self._batcher.blocked_seconds
        if blocked > self._blocked_seen:
            self._metrics.reading_paused.inc(blocked - self._blocked_seen)
            self._blocked_seen = blocked
        return total

    def _account(self, stream: _Stream) -> None:
        tailer = stream.tailer
        assert tailer is not None
        counts = stream.seen_counts
        lines = tailer.lines_read - counts.get("lines", 0)
        docs = tailer.assembler.documents - counts.get("docs", 0)
        read = tailer.bytes_read - counts.get("bytes", 0)
        if lines:
            self._metrics.lines_read.inc(lines)
            self.lines_read += lines
        if docs:
            self._metrics.documents_produced.inc(docs)
            self.documents += docs
        if read:
            self._metrics.bytes_read.inc(read)
        counts.update(lines=tailer.lines_read, docs=tailer.assembler.documents, bytes=tailer.bytes_read)
        for reason, value in tailer.assembler.parse_errors.items():
            seen = counts.get(reason, 0)
            if value > seen:
                if reason == "truncated":
                    self._metrics.truncated.inc(value - seen)
                else:
                    self._metrics.parse_errors.labels(reason).inc(value - seen)
                counts[reason] = value
        if tailer.lost_files > counts.get("lost_files", 0):
            self._metrics.files_lost.inc(tailer.lost_files - counts.get("lost_files", 0))
            counts["lost_files"] = tailer.lost_files
            log.warning("checkpointed_file_gone", stream=stream.key, note="possible gap: file deleted before read")
        if tailer.truncations > counts.get("truncations", 0):
            self._metrics.truncations.inc(tailer.truncations - counts.get("truncations", 0))
            counts["truncations"] = tailer.truncations

    def _finish(self, stream: _Stream, *, reason: str) -> None:
        if stream.tailer is not None:
            stream.tailer.finish(file_complete=True)
            self._account(stream)
            stream.tailer.close()
        self._streams.pop(stream.key, None)
        self._finished.add(stream.key)
        log.info("stream_finished", stream=stream.key, reason=reason)

    def _update_gauges(self) -> None:
        self._metrics.streams.set(len(self._streams))
        backlog = 0
        files = 0
        for stream in self._streams.values():
            if stream.tailer is not None:
                pending = stream.tailer.backlog_bytes()
                backlog += pending
                files += 1 if pending else 0
        self._metrics.backlog_bytes.set(backlog)
        self._metrics.backlog_files.set(files)

    def run(self, stop: threading.Event, *, once: bool) -> None:
        """Read until ``stop`` is set, or (``once``) until everything present now was read."""
        idle_rounds = 0
        while not stop.is_set():
            read = self.poll_once(once=once)
            if read:
                idle_rounds = 0
                continue
            if once:
                waiting = any(s.tailer is None for s in self._streams.values())
                idle_rounds += 1
                if not waiting and idle_rounds >= 2:
                    break
                if waiting:
                    stop.wait(0.05)
                continue
            stop.wait(0.1)
        if once and not stop.is_set():
            # A live file written to recently may be mid-line (a P whose F is coming): leave its open
            # line for the next run. A rotated file, or one idle for partial_flush_seconds, is done.
            for stream in list(self._streams.values()):
                tailer = stream.tailer
                if tailer is not None:
                    done = not tailer.live or tailer.idle_seconds() >= self._pipeline.partial_flush_seconds
                    tailer.finish(file_complete=not tailer.live, flush=done)
                    self._account(stream)
                    self.left_for_next_run += tailer.assembler.left_open()
            if self.left_for_next_run:
                log.warning("lines_left_for_next_run", lines=self.left_for_next_run,
                            note="a live file's last line is still being written, or its stream has no timestamp "
                                 "yet: the checkpoint stays before them and the next run reads them")
            if self.unreadable:
                log.error("files_not_read", unreadable=self.unreadable,
                          note="see input_unreadable above: this run did not read everything")
        self._batcher.flush()

    def close(self) -> None:
        for stream in self._streams.values():
            if stream.tailer is not None:
                stream.tailer.close()

    def total_bytes(self) -> int:
        """Bytes of log files currently under the root (for progress display)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self._settings.log_root):
            for name in files:
                if parse_log_file_name(name) is not None:
                    with contextlib.suppress(OSError):
                        info = os.lstat(os.path.join(dirpath, name))
                        total += info.st_size if stat.S_ISREG(info.st_mode) else 0
        return total

    def bytes_read(self) -> int:
        return sum(s.tailer.bytes_read for s in self._streams.values() if s.tailer is not None)
