"""Logging: one JSON object per line, to stdout (stderr when stdout carries data), for every logger.

servelog's own events (structlog) and the standard-library logging of the libraries it uses
(opensearch-py, urllib3, kubernetes, ``warnings``) go through one handler on the root logger and
one :class:`structlog.stdlib.ProcessorFormatter`, so every line is the same kind of JSON object:
``event``, ``level``, ``timestamp``, ``logger`` for foreign records, and an exception as **one**
field. A library's exception is rendered as ``Type: message`` of its innermost cause (bounded: a
library warning is not a bug report); servelog's own ``log.exception`` keeps the traceback, as one
string field. Uncaught exceptions of threads are logged the same way.

Libraries log at ``warning`` and above; opensearch-py's per-request lines (``opensearch``) only at
``error`` unless the level is ``debug``: the sink logs every failed request itself
(``bulk_retry``, with the verdict's reason), so they would say the same thing twice.

Collector logs are events with bounded fields (stream keys, counts, reasons), one line per batch or
per state change, never per log line. Secrets never reach a log call: settings hold them as
``SecretStr``, connection errors are redacted at the client boundary, and URL credentials are
masked in foreign records too.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

_URL_CREDENTIALS = re.compile(r"//[^/@\s]+@")
_MAX_FOREIGN_EVENT = 2000
_QUIET_UNLESS_DEBUG = ("opensearch",)


def _foreign_exception(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """A library record's exception as one short field, and its message bounded and redacted."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        exc = exc_info[1] if isinstance(exc_info, tuple) else None
        if isinstance(exc, BaseException):
            inner = exc
            for _ in range(10):
                nested = inner.__cause__ or inner.__context__
                if nested is None:
                    break
                inner = nested
            event["exception"] = _URL_CREDENTIALS.sub("//***@", f"{type(inner).__name__}: {inner}")[:500]
    message = str(event.get("event", ""))
    event["event"] = _URL_CREDENTIALS.sub("//***@", message)[:_MAX_FOREIGN_EVENT]
    event.pop("stack_info", None)
    return event


def configure_logging(*, level: str = "info", stream: TextIO | None = None) -> None:
    """JSON logs at ``level`` to ``stream`` (default stdout), for structlog and the standard library alike."""
    target = stream or sys.stdout
    numeric = logging.getLevelName(level.upper())
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,  # servelog's own exceptions: the traceback as one field
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper,
                           _foreign_exception],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.JSONRenderer()],
    )
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    for name in ("collector", "__main__"):
        logging.getLogger(name).setLevel(numeric)  # structlog filters first; the stdlib must let its records through
    for name in _QUIET_UNLESS_DEBUG:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.ERROR)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_crash


def _log_thread_crash(args: Any) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    structlog.get_logger(__name__).error(
        "thread_crashed", thread=thread, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
