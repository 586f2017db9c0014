"""Pure log-level detection for the formats model servers actually write.

- KServe SDK (python/kserve logging): ``2025-06-10 11:36:26.764 269781 kserve INFO [file:func():1] msg``
- Python logging defaults and uvicorn: ``INFO:     127.0.0.1 - "POST /v1/models/m:predict" 200``
- TF-Serving / glog: ``2022-03-08 05:31:44.366405: I tensorflow_serving/...`` and ``E0308 05:31:44 ...``
- JSON lines (structlog, zap, queue-proxy): ``level`` / ``severity`` / ``levelname`` keys

Only a bounded prefix is examined so that a 1 MiB line costs what a short one does.

The compiled fast path (``collector._native``, ``native/src/levels.rs`` and ``json_level.rs``)
implements these same rules for the lines it takes; a change here must be made there too
(``tests/unit/test_native_equivalence.py`` compares both).
"""

from __future__ import annotations

import re

import orjson

_CANONICAL = {
    "debug": "debug", "trace": "debug", "info": "info", "information": "info", "notice": "info",
    "warn": "warning", "warning": "warning", "error": "error", "err": "error", "critical": "critical",
    "fatal": "critical", "panic": "critical", "dpanic": "critical", "emergency": "critical",
    "alert": "critical",
}
_GLOG = {"I": "info", "W": "warning", "E": "error", "F": "critical"}

_TEXT = re.compile(
    r"(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+"  # timestamp
    r"(?:\d+\s+)?(?:[\w.\-]+\s+)?"  # pid and logger name (KServe SDK)
    r"\[?(?P<a>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?[\s:]"
    r"|(?P<b>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL):\s"  # uvicorn / logging.basicConfig
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<c>[IWEF]) "  # TF-Serving
    r"|(?P<d>[IWEF])\d{4} \d\d:\d\d:\d\d)"  # glog
)
_JSON_KEYS = ("level", "severity", "levelname", "lvl", "log.level")
_PREFIX = 160
_JSON_MAX = 64 * 1024


def detect_level(message: str) -> str | None:
    """The canonical level (debug/info/warning/error/critical) the line states, or None."""
    if message[:1] == "{":
        return _json_level(message)
    match = _TEXT.match(message, 0, _PREFIX)
    if match is None:
        return None
    word = match["a"] or match["b"]
    if word:
        return _CANONICAL[word.lower()]
    return _GLOG[match["c"] or match["d"]]


def _json_level(message: str) -> str | None:
    if len(message) > _JSON_MAX:
        return None
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for key in _JSON_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            return _CANONICAL.get(value.lower())
    return None
