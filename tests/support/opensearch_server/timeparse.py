"""Time as OpenSearch reads it: ``strict_date_optional_time_nanos`` strings and date math, nanosecond exact."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time

_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}
_DAY = {"hour": 0, "minute": 0, "second": 0}
_ROUNDING: dict[str, dict[str, int]] = {"y": {"month": 1, "day": 1, **_DAY}, "M": {"day": 1, **_DAY}, "w": _DAY,
                                        "d": _DAY, "h": {"minute": 0, "second": 0}, "H": {"minute": 0, "second": 0},
                                        "m": {"second": 0}, "s": {}}


def iso_to_nanos(text: str) -> int | None:
    """Epoch nanoseconds of a ``strict_date_optional_time_nanos`` string, or None if it does not parse."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    year, month, day = int(g[0]), int(g[1] or 1), int(g[2] or 1)
    hour, minute, second = int(g[3] or 0), int(g[4] or 0), int(g[5] or 0)
    try:
        day_ordinal = dt.date(year, month, day).toordinal()
        dt.time(hour, minute, second)
    except ValueError:
        return None
    offset = 0
    zone = m[8]
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:] or 0)) * 60 * (1 if zone[0] == "+" else -1)
    seconds = (day_ordinal - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + int((m[7] or "").ljust(9, "0"))


def date_math_to_nanos(text: str) -> int | None:
    """``now``, ``now-1h/d``, ``2026-01-01||+1d`` or a plain ISO timestamp, as epoch nanoseconds."""
    anchor, sep, math = text.partition("||")
    if not sep:
        if not text.startswith("now"):
            return iso_to_nanos(text)
        anchor, math = "now", text[3:]
    base = time.time_ns() if anchor == "now" else iso_to_nanos(anchor)
    if base is None:
        return None
    math, _, rounding = math.partition("/")
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=base // 1000)
    rest = base % 1000
    pos = 0
    for m in _MATH.finditer(math):
        if m.start() != pos:
            return None
        pos = m.end()
        amount = int(m[2]) * (1 if m[1] == "+" else -1)
        if m[3] in "yM":
            months = moment.month - 1 + amount * (12 if m[3] == "y" else 1)
            year, month = moment.year + months // 12, months % 12 + 1
            moment = moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
        else:
            moment += dt.timedelta(seconds=amount * _UNIT_SECONDS[m[3]])
    if pos != len(math):
        return None
    if rounding:
        if rounding not in _ROUNDING:
            return None
        moment = moment.replace(microsecond=0, **_ROUNDING[rounding])
        if rounding == "w":
            moment -= dt.timedelta(days=moment.weekday())
        rest = 0
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + rest



def nanos_to_iso(nanos: int) -> str:
    """Epoch nanoseconds as RFC 3339 UTC with nine fraction digits."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    day = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return day.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"
