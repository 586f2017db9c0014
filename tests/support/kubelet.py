"""A kubelet + containerd log simulator: writes pod logs exactly as a node leaves them on disk.

The collector's hardest cases come from the runtime and the kubelet, not from the applications: a
line over 16 KiB arrives as several CRI records (``P`` ... ``P`` ``F``), each with its own
timestamp; the kubelet rotates ``0.log`` under the reader (rename, new file, gzip of older parts,
deletion beyond ``containerLogMaxFiles``), and a ``P`` can sit at the end of the rotated file with
its ``F`` at the start of the new one; a crash-looping container writes ``1.log``, ``2.log`` ...;
a container that exits mid-line leaves a ``P`` with no ``F``. This module reproduces those on disk:

* layout ``<root>/<namespace>_<pod-name>_<pod-uid>/<container>/<restart-count>.log``;
* CRI records ``<RFC3339Nano UTC> <stdout|stderr> <P|F> <content>\\n``, the timestamp with the
  trailing zeros of its fraction trimmed (Go's ``time.RFC3339Nano``), split like containerd's
  ``redirectLogs``: chunks of ``chunk_bytes``, only lines *longer* than that are split, and a
  trailing ``\\r`` of a ``\\r\\n`` line is dropped;
* or Docker json-file records ``{"log":"...\\n","stream":"stdout","time":"..."}`` (older
  clusters), a ``log`` without ``\\n`` being a partial chunk, invalid UTF-8 replaced per byte as
  Go's writer does;
* kubelet rotation as ``container_log_manager.go`` does it: remove ``.tmp`` leftovers, delete the
  oldest rotated files so that at most ``max_files - 2`` remain, gzip every remaining uncompressed
  one (via ``<name>.tmp``, then rename to ``<name>.gz``), rename ``0.log`` to
  ``0.log.<YYYYMMDD-HHMMSS>`` and let the runtime reopen a fresh ``0.log``.

Every logical line written is recorded in a :class:`~tests.support.ledger.Ledger` with the message
the collector must index for it, after the bytes are on disk. Writes are ``os.write`` calls on an
``O_APPEND`` descriptor the runtime keeps open, one per CRI record, so a concurrent reader can see a
``P`` before its ``F`` and, with ``rotate(reopen=False)``, records still landing in the renamed file.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tests.support.ledger import (
    DEFAULT_MAX_LINE_BYTES,
    KIND_LINE,
    KIND_PARTIAL,
    KIND_RAW,
    KIND_SPLIT,
    KIND_TRACEBACK,
    Ledger,
    LedgerEntry,
    decode_go,
    expected_message,
)

BASE_NS = 1795510800 * 10**9  # 2026-11-24T09:00:00Z
CRI_MAX_LINE = 16384  # containerd's default max_container_log_line_size
STREAMS = ("stdout", "stderr")
LogFormat = Literal["cri", "docker"]


def format_rfc3339nano(ts_ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: ``2026-11-24T09:12:01.1234Z``, a whole second without fraction."""
    seconds, nanos = divmod(ts_ns, 10**9)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def rotation_suffix(ts_ns: int) -> str:
    """The kubelet's rotated-file suffix (``20060102-150405``), UTC."""
    return datetime.fromtimestamp(ts_ns // 10**9, tz=UTC).strftime("%Y%m%d-%H%M%S")


class CounterClock:
    """A deterministic clock: returns ``start_ns``, then advances ``step_ns`` per call.

    ``step_ns = 0`` gives every record the same timestamp; ``now_ns`` can be set to jump.
    """

    def __init__(self, start_ns: int = BASE_NS, step_ns: int = 1_000_000) -> None:
        self.now_ns = start_ns
        self.step_ns = step_ns

    def __call__(self) -> int:
        value = self.now_ns
        self.now_ns += self.step_ns
        return value


def split_chunks(content: bytes, chunk_bytes: int) -> list[bytes]:
    """containerd's split: chunks of ``chunk_bytes``; a line of exactly ``chunk_bytes`` stays whole."""
    if len(content) <= chunk_bytes:
        return [content]
    return [content[i:i + chunk_bytes] for i in range(0, len(content), chunk_bytes)]


def cri_record(ts_ns: int, stream: str, tag: str, chunk: bytes) -> bytes:
    return b"%s %s %s %s\n" % (format_rfc3339nano(ts_ns).encode(), stream.encode(), tag.encode(), chunk)


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def docker_record(ts_ns: int, stream: str, log: bytes) -> bytes:
    """One json-file line, as Docker's ``MarshalJSONBuf`` writes it (field order, Go escaping)."""
    text = json.dumps(decode_go(log), ensure_ascii=False).translate(_GO_ESCAPES)
    return b'{"log":%s,"stream":"%s","time":"%s"}\n' % (text.encode(), stream.encode(), format_rfc3339nano(ts_ns).encode())


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


class ContainerLog:
    """The log files of one container instance (one restart count) of one pod."""

    def __init__(self, sim: KubeletSim, namespace: str, pod_name: str, pod_uid: str, container: str,
                 restart: int) -> None:
        self.sim = sim
        self.namespace, self.pod_name, self.pod_uid, self.container, self.restart_count = (
            namespace, pod_name, pod_uid, container, restart)
        self.pod_directory = sim.root / f"{namespace}_{pod_name}_{pod_uid}"
        self.directory = self.pod_directory / container
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._open()

    # -- files ------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The live file, ``<restart>.log``."""
        return self.directory / f"{self.restart_count}.log"

    def files(self) -> list[Path]:
        """Every file in the container's directory (all restarts, rotated parts), sorted by name."""
        return sorted(self.directory.iterdir()) if self.directory.exists() else []

    def _open(self) -> None:
        # the runtime's descriptor: O_APPEND, so a truncation or a reader never moves our writes
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def close(self) -> None:
        """Close the runtime's descriptor (the container exited)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def reopen(self) -> None:
        """What the runtime does on the kubelet's ReopenContainerLog: open (create) ``<restart>.log`` anew."""
        self.close()
        self._open()

    def _emit(self, records: Iterable[bytes]) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self.path}: the container's log is closed (restarted or deleted)")
        for record in records:
            os.write(self._fd, record)

    # -- records ----------------------------------------------------------------------------
    def _stamp(self, ts_ns: int | None) -> int:
        return self.sim.clock() if ts_ns is None else ts_ns

    def _records(self, content: bytes, stream: str, *, final: bool, ts_ns: int | None) -> tuple[list[bytes], bytes]:
        """The records of one logical line and the content the collector will reassemble from them."""
        if b"\n" in content:
            raise ValueError("a logical line cannot contain a newline: use write_many or write_traceback")
        if final and self.sim.fmt == "cri" and content.endswith(b"\r"):
            content = content[:-1]  # containerd's readLine drops the \r of a \r\n line end
        return self._build(split_chunks(content, self.sim.chunk_bytes), stream, final=final, ts_ns=ts_ns)

    def _build(self, chunks: list[bytes], stream: str, *, final: bool, ts_ns: int | None) -> tuple[list[bytes], bytes]:
        if stream not in STREAMS:
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        last = len(chunks) - 1
        if self.sim.fmt == "docker":
            records = [docker_record(self._stamp(ts_ns), stream, chunk + (b"\n" if final and n == last else b""))
                       for n, chunk in enumerate(chunks)]
            # Go replaces invalid UTF-8 chunk by chunk; the collector sees that text
            return records, "".join(decode_go(chunk) for chunk in chunks).encode("utf-8")
        records = [cri_record(self._stamp(ts_ns), stream, "F" if final and n == last else "P", chunk)
                   for n, chunk in enumerate(chunks)]
        return records, b"".join(chunks)

    def _entry(self, stream: str, content: bytes, kind: str) -> LedgerEntry:
        message, truncated = expected_message(content, max_line_bytes=self.sim.max_line_bytes)
        return LedgerEntry(self.pod_uid, self.container, self.restart_count, stream, message, kind, truncated)

    # -- writing ----------------------------------------------------------------------------
    def write(self, content: str | bytes, stream: str = "stdout", *, ts_ns: int | None = None) -> LedgerEntry:
        """One logical line (no newline inside), split into ``P``/``F`` records when long."""
        records, seen = self._records(_as_bytes(content), stream, final=True, ts_ns=ts_ns)
        self._emit(records)
        entry = self._entry(stream, seen, KIND_LINE)
        self.sim.ledger.record(entry)
        return entry

    def write_many(self, lines: Iterable[str | bytes], stream: str = "stdout", *, ts_ns: int | None = None) -> None:
        """Several logical lines; with ``ts_ns`` they all carry that same timestamp."""
        entries = []
        for line in lines:
            records, seen = self._records(_as_bytes(line), stream, final=True, ts_ns=ts_ns)
            self._emit(records)
            entries.append(self._entry(stream, seen, KIND_LINE))
        self.sim.ledger.extend(entries)

    def write_traceback(self, lines: Iterable[str | bytes], stream: str = "stderr", *, ts_ns: int | None = None) -> LedgerEntry:
        """A Python traceback: one record per physical line, ONE logical line (joined with ``\\n``) in the ledger."""
        seen_lines = []
        for line in lines:
            records, seen = self._records(_as_bytes(line), stream, final=True, ts_ns=ts_ns)
            self._emit(records)
            seen_lines.append(seen)
        entry = self._entry(stream, b"\n".join(seen_lines), KIND_TRACEBACK)
        self.sim.ledger.record(entry)
        return entry

    def write_partial_then_final_across_rotation(self, content: str | bytes, stream: str = "stdout", *,
                                                 compress: bool = True) -> LedgerEntry:
        """A line whose ``P`` records end the current file and whose ``F`` starts the next one.

        A line longer than ``chunk_bytes`` is split the real way (all its ``P`` chunks before the
        rotation). A shorter one is cut in two halves, ``P`` then ``F``: a shape containerd only
        produces around a rotation with a smaller ``max_container_log_line_size``, but the same
        contract for the reader.
        """
        data = _as_bytes(content)
        if b"\n" in data:
            raise ValueError("a logical line cannot contain a newline")
        if self.sim.fmt == "cri" and data.endswith(b"\r"):
            data = data[:-1]
        if len(data) > self.sim.chunk_bytes:
            chunks = split_chunks(data, self.sim.chunk_bytes)
        elif len(data) >= 2:
            chunks = [data[: len(data) // 2], data[len(data) // 2:]]
        else:
            raise ValueError("content must have at least 2 bytes to straddle a rotation")
        records, seen = self._build(chunks, stream, final=True, ts_ns=None)
        self._emit(records[:-1])
        self.rotate(compress=compress)
        self._emit(records[-1:])
        entry = self._entry(stream, seen, KIND_SPLIT)
        self.sim.ledger.record(entry)
        return entry

    def write_trailing_partial(self, content: str | bytes, stream: str = "stdout") -> LedgerEntry:
        """The last output of an exiting container, without a newline: ``P`` record(s), never an ``F``.

        The collector must still index it (once the file is done) as a line of its own.
        """
        records, seen = self._records(_as_bytes(content), stream, final=False, ts_ns=None)
        self._emit(records)
        entry = self._entry(stream, seen, KIND_PARTIAL)
        self.sim.ledger.record(entry)
        return entry

    def write_raw(self, data: bytes, *, expect: str | None = None, stream: str = "") -> LedgerEntry | None:
        """Bytes as they are (malformed records, odd timestamps); a ledger entry only when ``expect`` is given."""
        self._emit([data])
        if expect is None:
            return None
        entry = LedgerEntry(self.pod_uid, self.container, self.restart_count, stream, expect, KIND_RAW, False)
        self.sim.ledger.record(entry)
        return entry

    # -- kubelet operations ------------------------------------------------------------------
    def rotate(self, *, compress: bool = True, reopen: bool = True) -> Path:
        """Rotate ``<restart>.log`` as the kubelet does; returns the renamed file.

        ``reopen=False`` stops after the rename, as when the runtime has not reopened yet: writes
        keep landing in the renamed file until :meth:`reopen`.
        """
        live = self.path
        rotated = sorted(str(p) for p in self.directory.glob(f"{live.name}.*"))
        in_use = []
        for name in rotated:  # leftovers of an interrupted rotation
            if name.endswith(".tmp") or (not name.endswith(".gz") and f"{name}.gz" in rotated):
                os.unlink(name)
            else:
                in_use.append(name)
        keep = max(self.sim.max_files - 2, 0)
        for name in in_use[: max(len(in_use) - keep, 0)]:  # oldest first; names sort by time
            os.unlink(name)
        if compress:
            for name in in_use[max(len(in_use) - keep, 0):]:
                if not name.endswith(".gz"):
                    _gzip_like_kubelet(Path(name))
        # The kubelet rotates at most once per 10 s monitoring period, so its names are unique and
        # sort by age; the simulator can rotate faster, so it moves a name on to the next free second.
        newest = max((_rotation_seconds(name) for name in in_use), default=0)
        ts_s = max(self.sim.clock() // 10**9, newest + 1)
        target = self.directory / f"{live.name}.{rotation_suffix(ts_s * 10**9)}"
        os.rename(live, target)
        if reopen:
            self.reopen()
        return target

    def truncate(self) -> None:
        """Truncate the live file in place (copytruncate-style tooling); later writes start at 0."""
        os.truncate(self.path, 0)

    def restart(self) -> ContainerLog:
        """The container crashed and restarted: its next instance writes ``<restart + 1>.log``."""
        self.close()
        return self.sim.container(self.namespace, self.pod_name, self.pod_uid, self.container, restart=self.restart_count + 1)

    def delete_pod(self) -> None:
        """The pod is gone: the kubelet removes its whole log directory."""
        self.sim.delete_pod(self.pod_directory)


def _rotation_seconds(name: str) -> int:
    """Epoch seconds of a rotated file's suffix (``0.log.20261124-090000[.gz]``)."""
    suffix = name.removesuffix(".gz").rsplit(".", 1)[-1]
    return int(datetime.strptime(suffix, "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp())


def _gzip_like_kubelet(path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.rename(tmp, path.with_name(path.name + ".gz"))
    os.unlink(path)


class KubeletSim:
    """A node's ``/var/log/pods``: containers, their log files and the ledger of what they wrote."""

    def __init__(self, root: Path, *, ledger: Ledger | None = None, clock: Callable[[], int] | None = None,
                 chunk_bytes: int = CRI_MAX_LINE, max_files: int = 5, fmt: LogFormat = "cri",
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if fmt not in ("cri", "docker"):
            raise ValueError(f"fmt must be cri or docker, not {fmt!r}")
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.ledger = ledger if ledger is not None else Ledger()
        self.clock: Callable[[], int] = clock if clock is not None else CounterClock()
        self.chunk_bytes = chunk_bytes
        self.max_files = max_files
        self.fmt: LogFormat = fmt
        self.max_line_bytes = max_line_bytes  # the collector's setting: decides the ledger's expectations
        self._containers: dict[tuple[str, str, str, str, int], ContainerLog] = {}

    def container(self, namespace: str, pod_name: str, pod_uid: str, container: str, restart: int = 0) -> ContainerLog:
        """The container instance's log (created on first use, with its directories and empty file)."""
        key = (namespace, pod_name, pod_uid, container, restart)
        log = self._containers.get(key)
        if log is None or log._fd is None:
            log = ContainerLog(self, namespace, pod_name, pod_uid, container, restart)
            self._containers[key] = log
        return log

    def delete_pod(self, pod_directory: Path) -> None:
        for key, log in list(self._containers.items()):
            if log.pod_directory == pod_directory:
                log.close()
                del self._containers[key]
        shutil.rmtree(pod_directory, ignore_errors=True)

    def close(self) -> None:
        """Close every open descriptor (all containers exit)."""
        for log in self._containers.values():
            log.close()

    def __enter__(self) -> KubeletSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "BASE_NS", "CRI_MAX_LINE", "ContainerLog", "CounterClock", "KubeletSim", "cri_record", "docker_record",
    "format_rfc3339nano", "rotation_suffix", "split_chunks",
]
