"""structlog configuration: one JSON object per line, to stdout (stderr when stdout carries data).

Collector logs are events with bounded fields (stream keys, counts, reasons), one line per batch or
per state change, never per log line. Secrets never reach a log call: settings hold them as
``SecretStr`` and connection errors are redacted at the client boundary.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(*, level: str = "info", stream: TextIO | None = None) -> None:
    """JSON logs at ``level`` to ``stream`` (default stdout)."""
    target = stream or sys.stdout
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=target),
        cache_logger_on_first_use=False,
    )
    # libraries that log through the standard library (urllib3, kubernetes) stay quiet below warning
    logging.basicConfig(level=logging.WARNING, stream=target, format="%(levelname)s %(name)s %(message)s")
