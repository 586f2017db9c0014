"""The OpenSearch sink: the one retry layer between the pipeline and ``_bulk``.

``deliver(pieces)`` returns only when every document has an outcome: created, already present
(409), or dead-lettered. Failed items alone are resent, with exponential backoff and jitter
(``tenacity``), for as long as it takes: the log files are the buffer, and a document is never given
up because OpenSearch is slow. The wait is interruptible: at shutdown the sink gives up *without
acknowledging*, so the batch is read again on the next start (and its replays are 409s).

Requests too large (413) are split in halves; a lone document that is still refused, or a whole
request refused with another 4xx, goes to the dead-letter destination.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_never, wait_exponential_jitter

from collector.errors import SinkAuthError, SinkRejected, SinkUnavailable
from collector.sinks.opensearch.client import OpenSearchClient
from collector.sinks.opensearch.deadletter import DeadLetter, DeadLetterEntry
from collector.sinks.opensearch.retry import Rejection, classify
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)


class Abandoned(Exception):
    """Shutdown interrupted delivery; the batch stays unacknowledged."""


class _RetryItems(Exception):
    """Some items must be sent again."""


@dataclass(slots=True)
class DeliveryReport:
    """What happened to one batch's documents."""

    created: int = 0
    present: int = 0
    dead_lettered: int = 0


class OpenSearchSink:
    """Delivers encoded ``create`` actions to OpenSearch."""

    def __init__(
        self,
        *,
        client: OpenSearchClient,
        deadletter: DeadLetter,
        metrics: Metrics,
        abort: threading.Event,
        initial_backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._client = client
        self._deadletter = deadletter
        self._metrics = metrics
        self._abort = abort
        self._initial = initial_backoff
        self._max = max_backoff
        self._sleep = sleep or self._interruptible_sleep

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise Abandoned

    def deliver(self, pieces: list[bytes]) -> DeliveryReport:
        """Send until each document has an outcome (or raise Abandoned at shutdown)."""
        report = DeliveryReport()
        self._deliver(pieces, report)
        return report

    def _deliver(self, pieces: list[bytes], report: DeliveryReport) -> None:
        pending = list(range(len(pieces)))

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("bulk_retry", attempt=state.attempt_number, documents=len(pending), reason=str(exc))

        retrying = Retrying(
            retry=retry_if_exception_type((SinkUnavailable, _RetryItems, SinkAuthError)),
            wait=wait_exponential_jitter(initial=self._initial, max=self._max),
            stop=stop_never,  # bounded by shutdown: the sleep raises Abandoned
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if self._abort.is_set():
                    raise Abandoned
                pending = self._attempt(pieces, pending, report)
                if pending:
                    raise _RetryItems(f"{len(pending)} documents to resend")

    def _attempt(self, pieces: list[bytes], pending: list[int], report: DeliveryReport) -> list[int]:
        """One ``_bulk`` request for ``pending``; returns the indices still to resend."""
        body = b"".join(pieces[i] for i in pending)
        started = time.perf_counter()
        try:
            response = self._client.bulk(body)
        except SinkAuthError:
            self._metrics.bulk_requests.labels("rejected").inc()
            self._client.refresh_credentials()  # a rotated secret may fix it; retried with backoff
            raise
        except SinkUnavailable:
            self._metrics.bulk_requests.labels("unavailable").inc()
            self._metrics.documents_retried.inc(len(pending))
            raise
        except SinkRejected as exc:
            if exc.status == 429:
                self._metrics.bulk_requests.labels("unavailable").inc()
                self._metrics.documents_retried.inc(len(pending))
                raise SinkUnavailable(str(exc)) from exc
            self._metrics.bulk_requests.labels("too_large" if exc.status == 413 else "rejected").inc()
            self._split_or_deadletter([pieces[i] for i in pending], exc, report)
            return []
        finally:
            self._metrics.bulk_latency.observe(time.perf_counter() - started)
        verdict = classify(response, len(pending))
        self._metrics.bulk_requests.labels("partial" if verdict.retry or verdict.rejected else "ok").inc()
        report.created += len(verdict.created)
        report.present += len(verdict.present)
        self._metrics.documents_indexed.inc(len(verdict.created))
        self._metrics.documents_present.inc(len(verdict.present))
        if verdict.rejected:
            entries = [DeadLetterEntry(pieces[pending[i]], rejection) for i, rejection in verdict.rejected]
            self._dead_letter(entries, report)
        if verdict.retry:
            self._metrics.documents_retried.inc(len(verdict.retry))
        return [pending[i] for i in verdict.retry]

    def _split_or_deadletter(self, pieces: list[bytes], exc: SinkRejected, report: DeliveryReport) -> None:
        if len(pieces) > 1:
            middle = len(pieces) // 2
            self._deliver(pieces[:middle], report)
            self._deliver(pieces[middle:], report)
            return
        reason = "request too large" if exc.status == 413 else str(exc)
        self._dead_letter([DeadLetterEntry(pieces[0], Rejection(exc.status, "request_rejected", reason))], report)

    def _dead_letter(self, entries: list[DeadLetterEntry], report: DeliveryReport) -> None:
        destinations = self._deadletter.write(entries)
        for destination, count in destinations.items():
            self._metrics.documents_dead_lettered.labels(destination).inc(count)
        report.dead_lettered += len(entries)
        log.warning(
            "documents_dead_lettered", count=len(entries),
            statuses=sorted({e.rejection.status for e in entries}), destinations=destinations,
        )
