"""The destination's health as the senders see it: for ``/healthz``'s detail, a metric and the log.

Kubernetes restarts a container whose liveness probe fails and takes a NotReady pod out of a
rollout's budget; neither helps when OpenSearch is down (a DaemonSet pod serves no traffic, and a
restart does not bring OpenSearch back). So the destination's state is *reported* here, never a
probe failure: ``/healthz`` stays 200 while the reader is alive and says in its body what the
senders last met; ``servelog_destination_healthy`` is 0 while documents are not taken; the log
has one ``destination_problem`` event when a problem starts or changes reason (each retry is also
logged, as ``bulk_retry``) and one ``destination_recovered`` event when it ends. A cluster that
flaps (per-item 429s under load: one batch refused, the next taken) logs a reason at most once per
``_LOG_EVERY_SECONDS``; the metric and ``/healthz`` follow every change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from collector.sinks.opensearch.retry import hint
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

_LOG_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Problem:
    """A destination problem: its bounded reason, what happened, and since when (monotonic)."""

    reason: str
    message: str
    since: float
    logged: bool  # its destination_problem event was written (so its end is logged too)


class DestinationHealth:
    """Thread-safe record of the last outcome of a ``_bulk`` request."""

    def __init__(self, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._problem: Problem | None = None
        self._last_ok: float | None = None
        self._logged_at: dict[str, float] = {}

    @property
    def problem(self) -> Problem | None:
        with self._lock:
            return self._problem

    def failed(self, reason: str, message: str, *, also: Iterable[str] = ()) -> None:
        """A request (or some of its documents) was not taken, for ``reason`` (and, for other documents, ``also``)."""
        for each in (reason, *also):
            self._metrics.destination_errors.labels(each).inc()
        self._metrics.destination_healthy.set(0)
        now = self._clock()
        with self._lock:
            previous = self._problem
            if previous is not None and previous.reason == reason:
                self._problem = Problem(reason, message, previous.since, previous.logged)
                return
            logged = now - self._logged_at.get(reason, -1e18) >= _LOG_EVERY_SECONDS
            if logged:
                self._logged_at[reason] = now
            self._problem = Problem(reason, message, previous.since if previous is not None else now, logged)
        if logged:
            log.error("destination_problem", reason=reason, message=message, fix=hint(reason))

    def ok(self) -> None:
        """A request was taken whole."""
        with self._lock:
            previous, self._problem = self._problem, None
            self._last_ok = self._clock()
        if previous is not None:
            self._metrics.destination_healthy.set(1)
            if previous.logged:
                log.info("destination_recovered", reason=previous.reason,
                         after_seconds=round(self._clock() - previous.since, 1))

    def describe(self) -> str:
        """One line for ``/healthz``: OpenSearch's state as the senders last saw it."""
        with self._lock:
            problem, last_ok = self._problem, self._last_ok
        now = self._clock()
        if problem is not None:
            return (f"OpenSearch: {problem.reason} for {now - problem.since:.0f}s: {problem.message}; "
                    f"fix: {hint(problem.reason)}")
        if last_ok is None:
            return "OpenSearch: nothing sent yet"
        return f"OpenSearch: ok (last bulk {now - last_ok:.1f}s ago)"
