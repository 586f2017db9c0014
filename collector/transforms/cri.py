"""Pure parsing of container runtime log records, by the kubelet's rules: CRI and Docker json-file.

The reference is the kubelet's own log reader (``k8s.io/cri-client`` ``pkg/logs/logs.go``, what
``kubectl logs`` serves): a CRI record is ``<timestamp> <stream> <tags> <content>``, each field
ended by one space. ``stream`` is ``stdout`` or ``stderr``; ``tags`` is a ``:``-separated list of
which only the first is read, ``P`` marking a chunk of a longer line (containerd and CRI-O split at
16 KiB) continued by the next record of that stream, anything else a full line (``F``, ``F:x``, an
unknown tag, even an empty one), so that tags added later stay readable. A line whose tag is not
followed by a space is no record (the kubelet: "log tag is not found"). Docker's json-file writes
``{"log": "...\\n", "stream": ..., "time": ...}``, where a ``log`` without a trailing newline is a chunk.

**One timestamp rule** for both formats: what Go's ``time.Parse(time.RFC3339Nano, ...)`` accepts
(the kubelet parses CRI lines with that layout, and Docker's ``time`` through ``time.Time``'s JSON
decoding, which accepts the same set: Go 1.26 ``src/time/format.go``, ``format_rfc3339.go`` where
the stricter checks are disabled, https://go.dev/issue/54580)::

    YYYY-MM-DD 'T' H[H]:MM:SS [('.' | ',') digits] ('Z' | ('+' | '-') HH:MM)

upper-case ``T`` and ``Z`` only (a lower-case ``t`` or ``z``, a space, ``+0100`` or a missing zone
are refused), a one-digit hour accepted, any number of fraction digits (the first nine count,
truncated), an offset hour up to 24 and minute up to 60 (Go's own range check), day checked against
the month. servelog adds one limit: the instant must fit OpenSearch's ``date_nanos`` (after
1970-01-01T00:00:00Z, up to 2262-04-11T23:47:16.854775807Z), or the document could never be
indexed; the epoch itself stands for "no timestamp" inside servelog.

Timestamps become integer nanoseconds since the epoch: a line's identity is built from that number,
never from the text, because containerd trims trailing zeros of the fraction while the kubelet's
``pods/log?timestamps=true`` pads it to nine digits. This is the hot path: the second (with its
zone) is memoised, so a line costs a dict lookup, a digit check and one ``int()``; everything else
goes through one regular expression.

The compiled fast path (``collector._native``, ``native/src/timestamp.rs``) implements these same
rules for the lines it takes; a change here must be made there too
(``tests/unit/test_native_equivalence.py`` compares both).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import NamedTuple

import orjson


class Record(NamedTuple):
    """One runtime log record. ``content`` excludes the newline; ``partial`` means more follows."""

    ts_ns: int
    ts: str  # normalised: YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    stream: str  # "stdout" | "stderr"
    partial: bool
    content: bytes


MAX_TS_NS = 2**63 - 1  # date_nanos holds a signed 64-bit count of nanoseconds
_MAX_CACHED_SECONDS = MAX_TS_NS // 1_000_000_000 - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_PAD = tuple("0" * (9 - n) for n in range(10))
_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}

# (second text, zone) -> (UTC seconds, normalised UTC second text); keys are the first 19
# characters alone for "Z", plus the 6-character offset otherwise. Only validated seconds enter.
_SECONDS_CACHE: dict[str, tuple[int, str]] = {}
_MAX_CACHE = 4096

_RFC3339_GO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d?):(\d\d):(\d\d)(?:[.,](\d+))?(?:Z|([+-])(\d\d):(\d\d))", re.ASCII
)


def parse_timestamp(text: str) -> tuple[int, str] | None:
    """The kubelet's timestamp rule (see the module docstring) -> (ns since epoch, normalised UTC text)."""
    n = len(text)
    if text[n - 1 :] == "Z":
        cached = _SECONDS_CACHE.get(text[:19])
        end = n - 1
    elif n >= 25 and text[n - 3 : n - 2] == ":":
        cached = _SECONDS_CACHE.get(text[:19] + text[n - 6 :])
        end = n - 6
    else:
        cached = None
    if cached is not None:
        seconds, head = cached
        if end == 19:
            return seconds * 1_000_000_000, head + ".000000000Z"
        if end <= 29 and text[19] == ".":
            fraction = text[20:end]
            if fraction.isdigit() and fraction.isascii():
                fraction += _PAD[len(fraction)]
                return seconds * 1_000_000_000 + int(fraction), f"{head}.{fraction}Z"
    return _parse_timestamp_general(text)


def _parse_timestamp_general(text: str) -> tuple[int, str] | None:
    """Every shape Go accepts (one-digit hour, comma, long fractions, any offset); fills the cache."""
    match = _RFC3339_GO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, zone_hour, zone_minute = match.groups()
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or s > 59:
        return None
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # month or day out of range (or year 0, long before the epoch anyway)
        return None
    seconds = days * 86400 + h * 3600 + mi * 60 + s
    if sign is not None:
        offset_hours, offset_minutes = int(zone_hour), int(zone_minute)
        if offset_hours > 24 or offset_minutes > 60:
            return None
        offset = (offset_hours * 60 + offset_minutes) * 60
        seconds += -offset if sign == "+" else offset
    nanos = int(fraction[:9] + _PAD[len(fraction[:9])]) if fraction else 0
    ts_ns = seconds * 1_000_000_000 + nanos
    if not 0 < ts_ns <= MAX_TS_NS:
        return None
    head = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if len(hour) == 2 and 0 < seconds <= _MAX_CACHED_SECONDS:
        if len(_SECONDS_CACHE) >= _MAX_CACHE:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[text[:19] if sign is None else text[:19] + text[-6:]] = (seconds, head)
    return ts_ns, f"{head}.{nanos:09d}Z"


def format_timestamp(ts_ns: int) -> str:
    """ns since epoch -> ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def cut_utf8(content: bytes, limit: int) -> bytes:
    """``content`` cut to at most ``limit`` bytes, never inside a UTF-8 character.

    When the first byte past the limit continues a character, the cut moves back to that
    character's first byte (at most three bytes); bytes that are no valid UTF-8 are cut where they are.
    """
    if len(content) <= limit:
        return content
    start = limit
    while start > limit - 3 and start > 0 and content[start] & 0xC0 == 0x80:
        start -= 1
    lead = content[start]
    if start < limit and lead >= 0xC0 and start + (2 if lead < 0xE0 else 3 if lead < 0xF0 else 4) > limit:
        return content[:start]
    return content[:limit]


def parse_cri(line: bytes) -> Record | None:
    """A CRI record, or None when the line is not one (the caller marks it malformed)."""
    parts = line.split(b" ", 3)
    if len(parts) != 4:
        return None  # no timestamp, stream or tag ended by a space
    ts_bytes, stream_bytes, tag, content = parts
    stream = _STREAMS.get(stream_bytes)
    if stream is None:
        return None
    try:
        ts_text = ts_bytes.decode("ascii")
    except UnicodeDecodeError:
        return None
    parsed = parse_timestamp(ts_text)
    if parsed is None:
        return None
    # only the first tag counts: "P" and "P:..." are chunks, every other tag a full line
    partial = tag != b"F" and (tag == b"P" or tag[:2] == b"P:")
    return Record(parsed[0], parsed[1], stream, partial, content)


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
