"""What the files source may open under the log root, and how it says what it could not read.

Only regular files are read. A FIFO would block ``open`` forever (and with it SIGTERM), a device or
socket is not a log, and a symbolic link could point anywhere on the node (``/etc/passwd``), so:

- listings use ``lstat`` semantics (``DirEntry.is_symlink``/``is_file(follow_symlinks=False)``, from
  the directory entry itself, no extra system call): **no link is ever followed**, neither a linked
  file nor a linked pod or container directory. The kubelet's own layout has no links under
  ``/var/log/pods`` (dockershim's links into ``/var/lib/docker`` pointed at Docker's JSON files,
  which are not CRI logs anyway). The log root itself may be a link: it is the operator's choice.
- files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` before the first
  read, so an entry swapped for a link or a FIFO between listing and opening is refused too.

:class:`InputReporter` logs each problem once per path (until it clears) and counts it:
``servelog_files_skipped_total{reason}`` for entries that are never read (``symlink``, ``fifo``,
``socket``, ``device``, ``other``) and ``servelog_files_unreadable_total{reason}`` for files or
directories the process may not read (``permission_denied``, ``error``: the kubelet writes logs 0640
root), which are tried again and read as soon as they become readable.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path
from typing import BinaryIO

import structlog

from collector.sources.files.paths import LogFileName, parse_log_file_name
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class NotRegularFile(Exception):
    """An entry that is not a regular file was about to be opened; ``reason`` says what it is."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}, not a regular file")


def kind_of(mode: int) -> str | None:
    """None for a regular file, else the skip reason of that file type."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def entry_kind(entry: os.DirEntry[str]) -> str | None:
    """None for a regular file, else why the entry is skipped (never following a link)."""
    if entry.is_symlink():
        return "symlink"
    if entry.is_file(follow_symlinks=False):
        return None
    try:
        return kind_of(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "other"


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without following a link or blocking on a FIFO.

    Raises :class:`NotRegularFile` for anything else, ``OSError`` (``PermissionError``...) as ``open``.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if os.path.islink(path):  # ELOOP from O_NOFOLLOW
            raise NotRegularFile(path, "symlink") from exc
        raise
    try:
        reason = kind_of(os.fstat(fd).st_mode)
        if reason is not None:
            raise NotRegularFile(path, reason)
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


class _OwnedGzip(gzip.GzipFile):
    """A GzipFile that closes the file it reads (GzipFile leaves a given fileobj open)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_log(path: Path, gzipped: bool) -> BinaryIO:
    """A log file (uncompressed view of a ``.gz``), opened as :func:`open_regular` does."""
    raw = open_regular(path)
    if not gzipped:
        return raw
    try:
        return _OwnedGzip(raw)  # type: ignore[return-value]
    except BaseException:
        raw.close()
        raise


def list_dir(directory: Path, reporter: InputReporter) -> list[os.DirEntry[str]] | None:
    """A directory's entries ([] when it is gone); None, reported, when it cannot be listed."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        reporter.unreadable(directory, exc)
        return None
    reporter.readable(directory)
    return entries


def list_log_files(directory: Path, reporter: InputReporter) -> list[tuple[Path, LogFileName]] | None:
    """The regular log files of a container directory (``N.log[.<stamp>[.gz]]``), unsorted.

    Entries named like logs that are not regular files are reported as skipped; None (reported as
    unreadable) when the directory cannot be listed.
    """
    entries = list_dir(directory, reporter)
    if entries is None:
        return None
    found = []
    for entry in entries:
        name = parse_log_file_name(entry.name)
        if name is None:
            continue
        reason = entry_kind(entry)
        if reason is not None:
            reporter.skipped(Path(entry.path), reason)
            continue
        found.append((Path(entry.path), name))
    return found


class InputReporter:
    """Says once, per path, what under the log root is skipped or cannot be read, and counts it."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._skipped: dict[str, str] = {}
        self._unreadable: dict[str, str] = {}

    @property
    def unreadable_now(self) -> int:
        """Paths that could not be read at their last attempt."""
        return len(self._unreadable)

    def skipped(self, path: Path, reason: str) -> None:
        key = str(path)
        if self._skipped.get(key) == reason:
            return
        self._skipped[key] = reason
        if self._metrics is not None:
            self._metrics.files_skipped.labels(reason).inc()
        log.warning("input_skipped", path=key, reason=reason,
                    note="only regular files under the log root are read; links are never followed")

    def unreadable(self, path: Path, exc: OSError) -> None:
        key = str(path)
        reason = "permission_denied" if isinstance(exc, PermissionError) else "error"
        if self._unreadable.get(key) == reason:
            return
        self._unreadable[key] = reason
        if self._metrics is not None:
            self._metrics.files_unreadable.labels(reason).inc()
        log.error("input_unreadable", path=key, reason=reason, error=exc.strerror or str(exc), uid=os.geteuid(),
                  note="read as soon as it becomes readable; kubelet logs are 0640 root: run as uid 0 "
                  "(no capabilities needed) or a group that may read them")

    def readable(self, path: Path) -> None:
        """``path`` was opened or listed: a problem reported for it is over."""
        if self._unreadable and self._unreadable.pop(str(path), None) is not None:
            log.info("input_readable", path=str(path))

    def prune(self) -> None:
        """Forget paths that no longer exist (a new file there is reported afresh)."""
        for table in (self._skipped, self._unreadable):
            for key in [k for k in table if not os.path.lexists(k)]:
                del table[key]
