"""Tailing one container instance's logical log stream across kubelet rotations.

A container instance (pod UID, container, restart count) writes ``N.log``; the kubelet renames it
to ``N.log.<stamp>``, opens a fresh ``N.log`` and gzips older rotated files. For servelog these
files are one stream, read oldest first, each byte once:

- Files are identified by a **content fingerprint** (a hash of their first line, which carries a
  nanosecond timestamp), not by name or inode: it survives renames and gzip, and inode reuse cannot
  fool it. Offsets count uncompressed bytes, so a checkpoint taken in ``0.log`` still points at the
  same byte once that file became ``0.log.<stamp>.gz``.
- The live file is followed; at its end, if ``N.log`` now names another inode (rotated) the old file
  is drained to its end before moving on (the kubelet has reopened the runtime's log by the time the
  new file exists, so nothing more arrives in the old one).
- A file that shrank below the read offset was truncated: reading restarts at its beginning.
- A ``P`` chunk at the end of one file and its ``F`` at the start of the next form one line: the
  assembler keeps its partial state across the switch.
- Only regular files are opened, never through a link (:mod:`collector.sources.files.guard`). A file
  the process may not read stops the stream there (it is never skipped: a later file would be read
  out of order) and is reported; reading resumes when it becomes readable.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.sources.files.guard import InputReporter, NotRegularFile, list_log_files, open_log
from collector.sources.files.paths import LogFileName
from collector.transforms.assembler import LineAssembler, Position

_FINGERPRINT_BYTES = 4096
_OVERLONG_SLACK = 64 * 1024


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file of a stream as listed in its directory."""

    path: Path
    name: LogFileName


def fingerprint(head: bytes) -> str | None:
    """The id of a file from its first bytes: its first line (capped), or None if not written yet."""
    newline = head.find(b"\n", 0, _FINGERPRINT_BYTES)
    if newline < 0:
        if len(head) < _FINGERPRINT_BYTES:
            return None
        newline = _FINGERPRINT_BYTES
    return hashlib.blake2b(head[: newline + 1], digest_size=8).hexdigest()


def read_head(path: Path, gzipped: bool) -> bytes:
    """The first bytes of a file (uncompressed); only a regular file, never through a link."""
    with open_log(path, gzipped) as handle:
        return handle.read(_FINGERPRINT_BYTES + 1)


class _Blocked(Exception):
    """The next file of the stream cannot be read (yet): the stream waits at it."""


class StreamTailer:
    """Reads one stream's files in order and feeds complete lines to its assembler."""

    def __init__(
        self,
        *,
        directory: Path,
        restart_count: int,
        assembler: LineAssembler,
        start: Position | None,
        read_chunk_bytes: int,
        max_line_bytes: int,
        reporter: InputReporter | None = None,
    ) -> None:
        self.directory = directory
        self.reporter = reporter if reporter is not None else InputReporter()
        self.restart_count = restart_count
        self.assembler = assembler
        self._chunk = read_chunk_bytes
        self._max_line = max_line_bytes
        self._handle: BinaryIO | None = None
        self._inode: int | None = None
        self._live = False  # reading N.log itself (followed), not a rotated file
        self._file_id: str | None = None
        self._offset = 0
        self._remainder = b""
        self._overlong: tuple[bytes, int] | None = None  # (head, start offset) while skipping a huge line
        self._seen: set[str] = set()
        self._fp_cache: dict[tuple[str, int, int], str | None] = {}
        self.lost_files = 0
        self.truncations = 0
        self.bytes_read = 0
        self.lines_read = 0
        self.exhausted = False  # at the end of the newest file
        self._start: Position | None = start
        self._started = False
        self._try_open_initial()

    # -- file listing --------------------------------------------------------------------------
    def files(self) -> list[LogFile]:
        """This stream's regular files, oldest first."""
        found = [LogFile(path, name) for path, name in list_log_files(self.directory, self.reporter) or ()
                 if name.restart_count == self.restart_count]
        found.sort(key=lambda f: f.name.order_key)
        return found

    def _fingerprint_of(self, log_file: LogFile) -> str | None:
        """The file's id; None while it cannot tell (empty, vanished, being compressed, not regular).

        Raises :class:`_Blocked` when the file cannot be read (reported): the stream waits there.
        """
        try:
            stat = os.lstat(log_file.path)
        except FileNotFoundError:
            return None
        key = (log_file.path.name, stat.st_ino, stat.st_size if stat.st_size < _FINGERPRINT_BYTES else -1)
        if key not in self._fp_cache:
            try:
                value = fingerprint(read_head(log_file.path, log_file.name.gzipped))
            except NotRegularFile as exc:
                self.reporter.skipped(exc.path, exc.reason)
                return None
            except (FileNotFoundError, EOFError, gzip.BadGzipFile):
                return None  # vanished or being compressed right now: look again next time
            except OSError as exc:
                self.reporter.unreadable(log_file.path, exc)
                raise _Blocked from exc
            self.reporter.readable(log_file.path)
            if value is None:
                return None
            if len(self._fp_cache) > 64:
                self._fp_cache.clear()
            self._fp_cache[key] = value
        return self._fp_cache[key]

    # -- opening -------------------------------------------------------------------------------
    def _try_open_initial(self) -> bool:
        """Open where the checkpoint points; False (try again later) while a file cannot be read."""
        if self._started:
            return True
        start = self._start
        files = self.files()
        if start is not None and start.file_id is not None:
            try:
                ids = [self._fingerprint_of(f) for f in files]
            except _Blocked:
                return False  # cannot tell where the checkpoint is yet: never guess "lost"
            self._started = True
            if start.file_id in ids:
                index = ids.index(start.file_id)
                self._seen.update(i for i in ids[:index] if i)
                if self._open(files[index], start.offset):
                    return True
            else:
                # the checkpointed file is gone (deleted by the kubelet while we were down): read
                # what is left from the start; ids already acked come back as 409s
                self.lost_files += 1
        self._started = True
        if files:
            self._open(files[0], 0)
        return True

    def _open(self, log_file: LogFile, offset: int) -> bool:
        self._close()
        try:
            handle = open_log(log_file.path, log_file.name.gzipped)
        except NotRegularFile as exc:
            self.reporter.skipped(exc.path, exc.reason)
            return False
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.reporter.unreadable(log_file.path, exc)
            return False
        self.reporter.readable(log_file.path)
        try:
            if offset:
                handle.seek(offset)
            if not log_file.name.gzipped:
                self._inode = os.fstat(handle.fileno()).st_ino
        except (OSError, EOFError):
            handle.close()
            return False
        self._handle = handle
        self._live = log_file.name.rotated is None
        self._offset = offset
        self._remainder = b""
        self._file_id = self._fingerprint_of(log_file) if offset else None
        if self._file_id is not None:
            self._seen.add(self._file_id)
        self.assembler.switch_file(self._file_id, offset)
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._inode = None

    def close(self) -> None:
        self._close()

    # -- reading -------------------------------------------------------------------------------
    def poll(self, budget: int) -> int:
        """Read up to ``budget`` bytes; returns the number of bytes read (0: nothing new)."""
        total = 0
        if not self._try_open_initial():
            self.exhausted = True
            return 0
        while total < budget:
            if self._handle is None and not self._advance():
                self.exhausted = True
                return total
            assert self._handle is not None
            try:
                chunk = self._handle.read(min(self._chunk, budget - total))
            except (OSError, EOFError, gzip.BadGzipFile):
                chunk = b""  # a damaged gzip tail: treat as the end of that file
                self._live = False
            if chunk:
                total += len(chunk)
                self._consume(chunk)
                continue
            # end of the current file
            if self._live and not self._rotated_away():
                if self._truncated():
                    continue
                self.exhausted = True
                return total
            # a rotated file (or the live one just rotated): drain it, then the next file
            if not self._advance():
                self.exhausted = True
                return total
        self.exhausted = False
        return total

    def _rotated_away(self) -> bool:
        """The live file was renamed and a new ``N.log`` exists (so nothing more is written here)."""
        live = self.directory / f"{self.restart_count}.log"
        try:
            inode = os.lstat(live).st_ino
        except FileNotFoundError:
            return not self.directory.exists()  # pod gone: the fd still reads what was written
        if inode == self._inode:
            return False
        # final drain of the renamed file before moving on
        assert self._handle is not None
        while True:
            chunk = self._handle.read(self._chunk)
            if not chunk:
                return True
            self._consume(chunk)

    def _truncated(self) -> bool:
        """copytruncate or a rewrite: the file is shorter than what we read. Restart at 0."""
        assert self._handle is not None
        try:
            size = os.fstat(self._handle.fileno()).st_size
        except OSError:
            return False
        if size >= self._offset + len(self._remainder):
            return False
        self.truncations += 1
        self.assembler.flush()
        self._handle.seek(0)
        self._offset = 0
        self._remainder = b""
        self._overlong = None
        self._file_id = None
        self.assembler.switch_file(None)
        return True

    def _advance(self) -> bool:
        """Move to the next unread file of the stream; False when there is none (yet)."""
        if self._file_id is not None:
            self._seen.add(self._file_id)
        for log_file in self.files():
            try:
                file_id = self._fingerprint_of(log_file)
            except _Blocked:
                return False  # wait at the unreadable file: never read past it
            if file_id is None:
                if log_file.name.rotated is None:
                    return self._open_next(log_file)  # the new live file, still empty
                continue
            if file_id in self._seen or file_id == self._file_id:
                continue
            return self._open_next(log_file)
        return False

    def _open_next(self, log_file: LogFile) -> bool:
        if self._handle is not None and self._remainder:
            self._consume_tail()  # the finished file ended without a newline
        return self._open(log_file, 0)

    def _consume(self, chunk: bytes) -> None:
        self.bytes_read += len(chunk)
        if self._overlong is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._offset += len(chunk)
                return
            head, start = self._overlong
            self._overlong = None
            self._offset += newline + 1
            self.lines_read += 1
            self.assembler.feed_overlong(head, start_offset=start, end_offset=self._offset)
            chunk = chunk[newline + 1 :]
            if not chunk:
                return
        data = self._remainder + chunk if self._remainder else chunk
        if self._file_id is None and self._offset == 0:
            self._file_id = fingerprint(data)
            if self._file_id is None:
                self._remainder = data
                return
            self._seen.add(self._file_id)
            self.assembler.switch_file(self._file_id)
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > self._max_line + _OVERLONG_SLACK:
                # no newline within the limit: keep the head, skip to the next newline
                self._overlong = (data[: self._max_line + 256], self._offset)
                self._offset += len(data)
                self._remainder = b""
            else:
                self._remainder = data
            return
        lines = data[:cut].split(b"\n")
        self.lines_read += len(lines)
        start = self._offset
        self._offset += cut + 1
        self._remainder = data[cut + 1 :]
        self.assembler.feed_lines(lines, start_offset=start)

    def _consume_tail(self) -> None:
        """A last line without a newline at the end of a finished file."""
        if self._remainder:
            start = self._offset
            tail, self._remainder = self._remainder, b""
            self._offset += len(tail)
            self.lines_read += 1
            self.assembler.feed_lines([tail], start_offset=start)
            self.assembler.switch_file(self._file_id, self._offset)  # no newline was consumed

    def finish(self, *, file_complete: bool, flush: bool = True) -> None:
        """The stream pauses for good (``--once`` ends, the container is gone): flush what is open.

        ``file_complete``: no more bytes will be written to the current file, so an unterminated
        last line is a line; otherwise it is a record being written and is left for the next run.
        ``flush``: emit an open partial line now (the container is done); when False it stays open
        and the checkpoint stays before it, for the next run to complete. An open traceback (whole
        lines) is always emitted.
        """
        if self._overlong is not None and file_complete:
            head, start = self._overlong
            self._overlong = None
            self.assembler.feed_overlong(head, start_offset=start, end_offset=self._offset + 1)
            self.assembler.switch_file(self._file_id, self._offset)
        if file_complete:
            self._consume_tail()
        self.assembler.flush(partial_lines=flush)

    def idle_seconds(self) -> float:
        """Seconds since the current file was last written (0 when unknown)."""
        if self._handle is None or self._inode is None:
            return 0.0
        try:
            return max(0.0, time.time() - os.fstat(self._handle.fileno()).st_mtime)
        except OSError:
            return 0.0

    @property
    def live(self) -> bool:
        """Reading the live ``N.log`` (which the runtime may still write)."""
        return self._live

    def backlog_bytes(self) -> int:
        """Bytes not read yet in the current file (rotated files are counted by the source)."""
        if self._handle is None or self._inode is None:
            return 0
        try:
            return max(0, os.fstat(self._handle.fileno()).st_size - self._offset - len(self._remainder))
        except OSError:
            return 0
