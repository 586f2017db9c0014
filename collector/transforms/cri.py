"""Pure parsing of container runtime log records: CRI (containerd, CRI-O) and Docker json-file.

A CRI record is ``<RFC3339Nano> <stdout|stderr> <P|F> <content>``; ``P`` marks a chunk of a longer
line (containerd splits at 16 KiB) continued by the next record. Docker's json-file writes
``{"log": "...\\n", "stream": ..., "time": ...}`` where a ``log`` without a trailing newline is a chunk.

Timestamps become integer nanoseconds since the epoch: a line's identity is built from that number,
never from the text, because containerd trims trailing zeros of the fraction while the kubelet's
``pods/log?timestamps=true`` pads it to nine digits. The seconds part is memoised: lines of one file
share a handful of distinct seconds, so the hot path is a dict lookup and one ``int()``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import orjson


class Record(NamedTuple):
    """One runtime log record. ``content`` excludes the newline; ``partial`` means more follows."""

    ts_ns: int
    ts: str  # normalised: YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    stream: str  # "stdout" | "stderr"
    partial: bool
    content: bytes


_SECONDS_CACHE: dict[str, int] = {}
_MAX_CACHE = 4096


def parse_timestamp(text: str) -> tuple[int, str] | None:
    """RFC 3339 (any fraction length, ``Z`` or an offset) -> (ns since epoch, normalised UTC text)."""
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and text[19] in ".Z":
        seconds_text = text[:19]
        seconds = _SECONDS_CACHE.get(seconds_text)
        if seconds is None:
            try:
                seconds = int(datetime.fromisoformat(seconds_text + "+00:00").timestamp())
            except ValueError:
                return None
            if len(_SECONDS_CACHE) >= _MAX_CACHE:
                _SECONDS_CACHE.clear()
            _SECONDS_CACHE[seconds_text] = seconds
        fraction = text[20:-1] if text[19] == "." else ""
        if len(fraction) > 9 or (fraction and not fraction.isdigit()):
            return None
        fraction = fraction.ljust(9, "0")
        return seconds * 1_000_000_000 + int(fraction), f"{seconds_text}.{fraction}Z"
    return _parse_timestamp_slow(text)


def _parse_timestamp_slow(text: str) -> tuple[int, str] | None:
    """Offsets other than Z (CRI-O may write local time) and other rare shapes."""
    head, dot, rest = text.partition(".")
    fraction = ""
    offset = ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, offset = rest[:digits], rest[digits:]
    else:
        head, offset = text[:19], text[19:]
    if len(fraction) > 9 or len(head) != 19:
        return None
    try:
        when = datetime.fromisoformat(head + (offset.replace("Z", "+00:00") or "+00:00"))
    except ValueError:
        return None
    seconds = int(when.timestamp())
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    utc = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return seconds * 1_000_000_000 + nanos, f"{utc}.{nanos:09d}Z"


def format_timestamp(ts_ns: int) -> str:
    """ns since epoch -> ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def parse_cri(line: bytes) -> Record | None:
    """A CRI record, or None when the line is not one (the caller marks it malformed)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stream = parts[1]
    tag = parts[2]
    if stream not in (b"stdout", b"stderr") or tag not in (b"F", b"P"):
        return None
    try:
        ts_text = parts[0].decode("ascii")
    except UnicodeDecodeError:
        return None
    parsed = parse_timestamp(ts_text)
    if parsed is None:
        return None
    return Record(parsed[0], parsed[1], stream.decode(), tag == b"P", parts[3] if len(parts) == 4 else b"")


def parse_docker_json(line: bytes) -> Record | None:
    """A Docker json-file record, or None when the line is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    log, stream, time_text = obj.get("log"), obj.get("stream"), obj.get("time")
    if not isinstance(log, str) or stream not in ("stdout", "stderr") or not isinstance(time_text, str):
        return None
    parsed = parse_timestamp(time_text)
    if parsed is None:
        return None
    partial = not log.endswith("\n")
    content = (log if partial else log[:-1]).encode("utf-8", "surrogatepass")
    return Record(parsed[0], parsed[1], stream, partial, content)


def parse_kubelet_api(line: bytes) -> Record | None:
    """A line of ``pods/log?timestamps=true``: ``<RFC3339 with 9 digits> <content>``.

    The kubelet has already merged partial chunks and does not say which stream a line came from,
    so ``stream`` is empty and ``partial`` is False.
    """
    ts_bytes, _, content = line.partition(b" ")
    try:
        parsed = parse_timestamp(ts_bytes.decode("ascii"))
    except UnicodeDecodeError:
        return None
    if parsed is None:
        return None
    return Record(parsed[0], parsed[1], "", False, content)
