"""What containerd and the kubelet do on disk, reproduced for the demo: CRI records and log rotation.

Pure encoding first (:func:`cri_timestamp`, :func:`cri_records`), then the file side
(:class:`ContainerLog`, :class:`LogTree`). The layout is the kubelet's:
``<log_root>/<namespace>_<pod>_<uid>/<container>/<restart>.log``. Rotation is the kubelet's too: when
the live file is over the size limit, older rotated files are gzipped (``.gz``, via a temporary file
renamed into place), the live file is renamed to ``<restart>.log.<YYYYMMDD-HHMMSS>`` and a new one is
started; at most ``max_files`` files (the live one included) are kept.
"""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

from collector.demo.content import SECOND, DemoPod, LogLine

CRI_MAX_RECORD = 16 * 1024  # containerd splits longer lines into P records of this many bytes


def cri_timestamp(time_ns: int) -> str:
    """containerd's RFC 3339 with nanoseconds, UTC, trailing zeros of the fraction trimmed (Go's RFC3339Nano)."""
    seconds, nanos = divmod(time_ns, SECOND)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def cri_records(text: str, *, stream: str, time_ns: int) -> bytes:
    """One log line as CRI records: ``P`` chunks of 16 KiB, then the ``F`` chunk that ends the line."""
    data = text.encode("utf-8")
    chunks = [data[i:i + CRI_MAX_RECORD] for i in range(0, len(data), CRI_MAX_RECORD)] or [b""]
    prefix = f"{cri_timestamp(time_ns)} {stream} ".encode()
    return b"".join(prefix + (b"F " if i == len(chunks) - 1 else b"P ") + chunk + b"\n" for i, chunk in enumerate(chunks))


def rotation_stamp(time_ns: int) -> str:
    """The kubelet's suffix for a rotated file: Go's ``20060102-150405``."""
    return datetime.fromtimestamp(time_ns // SECOND, tz=UTC).strftime("%Y%m%d-%H%M%S")


class ContainerLog:
    """One container instance's log file, appended to and rotated like the kubelet does."""

    def __init__(self, directory: Path, restart: int, *, max_bytes: int, max_files: int) -> None:
        self.directory = directory
        self.restart = restart
        self.path = directory / f"{restart}.log"
        self.max_bytes = max_bytes
        self.max_files = max_files
        directory.mkdir(parents=True, exist_ok=True)

    def append(self, records: bytes, *, time_ns: int) -> None:
        # One write per line, O_APPEND: a reader never sees half a record it cannot finish later.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, records)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size >= self.max_bytes:
            self.rotate(time_ns=time_ns)

    def rotate(self, *, time_ns: int) -> None:
        for old in sorted(self.directory.glob(f"{self.restart}.log.*")):
            if old.name.endswith((".gz", ".tmp")):
                continue
            tmp = old.with_name(old.name + ".gz.tmp")
            with old.open("rb") as src, tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
                dst.write(src.read())
            os.replace(tmp, old.with_name(old.name + ".gz"))
            old.unlink()
        stamp = time_ns
        target = self.directory / f"{self.restart}.log.{rotation_stamp(stamp)}"
        while target.exists() or target.with_name(target.name + ".gz").exists():
            stamp += SECOND  # two rotations within a second: the kubelet would wait, the demo moves on
            target = self.directory / f"{self.restart}.log.{rotation_stamp(stamp)}"
        os.rename(self.path, target)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o640)  # containerd reopens the live file
        os.close(fd)
        kept = sorted(p for p in self.directory.glob(f"{self.restart}.log.*") if not p.name.endswith(".tmp"))
        for old in kept[: max(0, len(kept) - (self.max_files - 1))]:
            old.unlink()


class LogTree:
    """The kubelet's ``/var/log/pods`` tree: one :class:`ContainerLog` per container instance."""

    def __init__(self, root: Path, *, max_bytes: int, max_files: int = 5) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._logs: dict[tuple[str, str, int], ContainerLog] = {}

    def directory(self, pod: DemoPod, container: str) -> Path:
        return self.root / f"{pod.namespace}_{pod.name}_{pod.uid}" / container

    def write(self, line: LogLine) -> None:
        key = (line.pod.uid, line.container, line.restart)
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = ContainerLog(self.directory(line.pod, line.container), line.restart,
                                                 max_bytes=self.max_bytes, max_files=self.max_files)
        log.append(cri_records(line.text, stream=line.stream, time_ns=line.time_ns), time_ns=line.time_ns)
