"""The OpenSearch sink: the one retry layer between the pipeline and ``_bulk``.

``deliver(documents)`` returns only when every document has an outcome: created, already present
(409), or dead-lettered (a per-item 400 only, or a lone document too large for any request). The
verdicts are the pure functions of :mod:`collector.sinks.opensearch.retry`; this module applies
them. Documents still without an outcome (a whole-request failure, per-item 429, blocks, a full
cluster) are resent, and only they, with exponential backoff and jitter (``tenacity``).

The bound is explicit:

- ``give_up_after`` seconds **without progress** (no document of this batch got an outcome), the
  sink raises :class:`GaveUp` with the reason: ``--once`` runs pass
  ``opensearch.once_give_up_seconds`` (300 s by default), so a backfill Job ends and says why. The
  last backoff is cut to the deadline, so the bound is this plus at most one request timeout.
- ``None`` (the daemon): no time bound, because the log files are the buffer and a document is
  never given up because OpenSearch is slow or down; shutdown bounds it instead: the backoff wait
  is interruptible and ``abort`` makes the sink raise :class:`Abandoned`.

Either way the batch stays unacknowledged, so its lines are read again on the next start (and
their replays are 409s). Each failed attempt is logged (``bulk_retry``), counted by reason
(``servelog_destination_errors_total``) and reported to :class:`DestinationHealth`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, wait_exponential, wait_random

from collector.errors import SinkAuthError, SinkBadResponse, SinkError
from collector.pipeline.documents import Documents
from collector.sinks.opensearch.client import OpenSearchClient
from collector.sinks.opensearch.deadletter import DeadLetter, DeadLetterEntry
from collector.sinks.opensearch.retry import Rejection, bulk_response_problem, classify, hint, request_verdict
from collector.telemetry.health import DestinationHealth
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

_TRANSIENT_OUTCOME = frozenset({"unreachable", "tls", "timeout", "unavailable", "overloaded"})


class Abandoned(Exception):
    """Shutdown interrupted delivery; the batch stays unacknowledged."""


class GaveUp(Abandoned):
    """No progress for ``give_up_after`` seconds; the batch stays unacknowledged. ``reason`` is bounded."""

    def __init__(self, reason: str, message: str, seconds: float) -> None:
        self.reason, self.message, self.seconds = reason, message, seconds
        super().__init__(f"gave up after {seconds:g}s without progress: {message} ({hint(reason)})")


class _Retry(Exception):
    """Some documents must be sent again, for ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(message)


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
        give_up_after: float | None = None,
        health: DestinationHealth | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._deadletter = deadletter
        self._metrics = metrics
        self._abort = abort
        self._initial = initial_backoff
        self._max = max_backoff
        self._give_up_after = give_up_after
        self._health = health or DestinationHealth(metrics, clock=clock)
        self._sleep = sleep or self._interruptible_sleep
        self._clock = clock

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise Abandoned

    def deliver(self, pieces: Sequence[bytes]) -> DeliveryReport:
        """Send until each document has an outcome (or raise Abandoned / GaveUp).

        ``pieces``: a batch's :class:`~collector.pipeline.documents.Documents` (sent as its one body)
        or any sequence of encoded documents.
        """
        report = DeliveryReport()
        self._deliver(Documents.from_pieces(pieces), report)
        return report

    def _deliver(self, pieces: Documents, report: DeliveryReport) -> None:
        pending = list(range(len(pieces)))
        progress = [self._clock()]  # when a document of this batch last got an outcome
        bound = self._give_up_after
        # exponential from retry_initial_seconds up to retry_max_seconds, plus up to one initial step of jitter
        backoff = wait_exponential(multiplier=self._initial, max=self._max) + wait_random(0, self._initial)

        def remaining() -> float:
            return math.inf if bound is None else bound - (self._clock() - progress[0])

        def wait(state: RetryCallState) -> float:
            return max(0.0, min(backoff(state), remaining()))  # never sleep past the deadline

        def stop(_state: RetryCallState) -> bool:
            return remaining() <= 0

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("bulk_retry", attempt=state.attempt_number, documents=len(pending),
                        reason=getattr(exc, "reason", "unknown"), message=str(exc)[:500])

        retrying = Retrying(retry=retry_if_exception_type(_Retry), wait=wait, stop=stop, sleep=self._sleep,
                            before_sleep=before_sleep)
        try:
            for attempt in retrying:
                with attempt:
                    if self._abort.is_set():
                        raise Abandoned
                    pending = self._attempt(pieces, pending, report, progress)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            reason, message = (last.reason, last.message) if isinstance(last, _Retry) else ("unavailable", str(last))
            raise GaveUp(reason, message, bound or 0.0) from last

    def _attempt(self, pieces: Documents, pending: list[int], report: DeliveryReport,
                 progress: list[float]) -> list[int]:
        """One ``_bulk`` request for ``pending``; raises _Retry when some documents must be resent."""
        started = time.perf_counter()
        try:
            response = self._client.bulk(pieces.select(pending))
        except SinkError as exc:
            failure = request_verdict(status=exc.status, error_type=exc.error_type, kind=exc.kind, detail=exc.detail,
                                      opensearch_body=not isinstance(exc, SinkBadResponse), url=self._client.url)
            if failure.split:
                self._metrics.bulk_requests.labels("too_large").inc()
                self._split_or_deadletter([pieces[i] for i in pending], report)
                return []
            if isinstance(exc, SinkAuthError):
                self._client.refresh_credentials()  # a rotated secret may fix it
            outcome = "unavailable" if failure.reason in _TRANSIENT_OUTCOME else "rejected"
            self._metrics.bulk_requests.labels(outcome).inc()
            self._metrics.documents_retried.inc(len(pending))
            self._health.failed(failure.reason, failure.message)
            raise _Retry(failure.reason, failure.message) from exc
        finally:
            self._metrics.bulk_latency.observe(time.perf_counter() - started)
        problem = bulk_response_problem(response, len(pending))
        if problem is not None:
            odd = request_verdict(status=200, detail=problem, opensearch_body=False, url=self._client.url)
            self._metrics.bulk_requests.labels("rejected").inc()
            self._metrics.documents_retried.inc(len(pending))
            self._health.failed(odd.reason, odd.message)
            raise _Retry(odd.reason, odd.message)
        verdict = classify(response, len(pending))
        self._metrics.bulk_requests.labels("partial" if verdict.retry or verdict.rejected else "ok").inc()
        report.created += len(verdict.created)
        report.present += len(verdict.present)
        self._metrics.documents_indexed.inc(len(verdict.created))
        self._metrics.documents_present.inc(len(verdict.present))
        if verdict.rejected:
            entries = [DeadLetterEntry(pieces[pending[i]], rejection) for i, rejection in verdict.rejected]
            self._dead_letter(entries, report)
        if verdict.created or verdict.present or verdict.rejected:
            progress[0] = self._clock()
        if not verdict.retry:
            self._health.ok()
            return []
        self._metrics.documents_retried.inc(len(verdict.retry))
        reason = verdict.retry_reasons.most_common(1)[0][0]
        message = (f"{len(verdict.retry)} of {len(pending)} documents not taken ({reason}): {verdict.retry_detail}")
        self._health.failed(reason, message, also=[r for r in verdict.retry_reasons if r != reason])
        remaining = [pending[i] for i in verdict.retry]
        pending[:] = remaining  # the retry log and the next attempt see only these
        raise _Retry(reason, message)

    def _split_or_deadletter(self, pieces: Sequence[bytes], report: DeliveryReport) -> None:
        """413: halves, each delivered on its own; a lone document too large for any request is dead-lettered."""
        if len(pieces) > 1:
            middle = len(pieces) // 2
            self._deliver(Documents.from_pieces(pieces[:middle]), report)
            self._deliver(Documents.from_pieces(pieces[middle:]), report)
            return
        rejection = Rejection(413, "request_too_large",
                              "this document alone is larger than the destination accepts (http.max_content_length)")
        self._dead_letter([DeadLetterEntry(pieces[0], rejection)], report)

    def _dead_letter(self, entries: list[DeadLetterEntry], report: DeliveryReport) -> None:
        destinations = self._deadletter.write(entries)
        for destination, count in destinations.items():
            self._metrics.documents_dead_lettered.labels(destination).inc(count)
        report.dead_lettered += len(entries)
        log.warning(
            "documents_dead_lettered", count=len(entries),
            statuses=sorted({e.rejection.status for e in entries}), destinations=destinations,
        )
