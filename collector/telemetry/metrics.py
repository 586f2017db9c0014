"""Prometheus metrics, created against an injected registry (tests use a fresh one).

Labels are bounded by construction: outcomes, reasons and destinations come from fixed sets in
this module; no pod, namespace or message ever becomes a label. Counters are incremented per batch
or per file poll, never per line, and a retried document is never counted as dropped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.sinks.opensearch.retry import REASONS as DESTINATION_REASONS

PARSE_ERROR_REASONS = ("malformed_cri", "invalid_utf8")
DEADLETTER_DESTINATIONS = ("index", "file")
BULK_OUTCOMES = ("ok", "partial", "unavailable", "rejected", "too_large")
FILE_SKIP_REASONS = ("symlink", "fifo", "socket", "device", "other")
FILE_UNREADABLE_REASONS = ("permission_denied", "missing", "error")


class Metrics:
    """Every metric servelog exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lines_read = Counter("servelog_lines_read_total", "Physical log lines read.", registry=r)
        self.bytes_read = Counter("servelog_bytes_read_total", "Log bytes read.", registry=r)
        self.documents_produced = Counter(
            "servelog_documents_produced_total", "Documents produced (after merging and grouping).", registry=r
        )
        self.documents_indexed = Counter("servelog_documents_indexed_total", "Documents OpenSearch created.", registry=r)
        self.documents_present = Counter(
            "servelog_documents_already_present_total", "Documents OpenSearch already had (409 on create).", registry=r
        )
        self.documents_retried = Counter(
            "servelog_documents_retried_total", "Document sends retried (429, 5xx, connection errors).", registry=r
        )
        self.documents_dead_lettered = Counter(
            "servelog_documents_dead_lettered_total", "Documents refused for good, by destination.",
            ["destination"], registry=r,
        )
        self.parse_errors = Counter(
            "servelog_parse_errors_total", "Lines kept with a parse_error marker, by reason.", ["reason"], registry=r
        )
        self.truncated = Counter("servelog_lines_truncated_total", "Lines cut at max_line_bytes.", registry=r)
        self.metadata_fallbacks = Counter(
            "servelog_metadata_fallback_total", "Streams sent with path-derived metadata only.", registry=r
        )
        self.files_lost = Counter(
            "servelog_files_lost_total", "Rotated files deleted before they were read (possible gap).", registry=r
        )
        self.truncations = Counter("servelog_file_truncations_total", "Log files found truncated.", registry=r)
        self.bulk_requests = Counter(
            "servelog_bulk_requests_total", "_bulk requests by outcome.", ["outcome"], registry=r
        )
        self.bulk_latency = Histogram(
            "servelog_bulk_request_seconds", "Latency of _bulk requests.", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.queue_depth = Gauge("servelog_queue_batches", "Batches waiting for a sender.", registry=r)
        self.in_flight = Gauge("servelog_batches_unacknowledged", "Batches not yet acknowledged.", registry=r)
        self.streams = Gauge("servelog_streams", "Container log streams being tailed.", registry=r)
        self.backlog_bytes = Gauge("servelog_backlog_bytes", "Bytes of log files not read yet.", registry=r)
        self.backlog_files = Gauge("servelog_backlog_files", "Log files not fully read yet.", registry=r)
        self.lag_seconds = Gauge(
            "servelog_lag_seconds", "Age of the newest acknowledged line's timestamp at acknowledgement.", registry=r
        )
        self.checkpoint_age = Gauge(
            "servelog_checkpoint_age_seconds", "Seconds since checkpoints were last saved.", registry=r
        )
        self.destination_errors = Counter(
            "servelog_destination_errors_total",
            "_bulk requests the destination did not take whole, by reason (documents are retried, never dropped).",
            ["reason"], registry=r,
        )
        self.destination_healthy = Gauge(
            "servelog_destination_healthy", "1 while OpenSearch takes every document sent, 0 while it does not.",
            registry=r,
        )
        self.destination_healthy.set(1)
        self.checkpoint_save_failures = Counter(
            "servelog_checkpoint_save_failures_total", "Checkpoint saves that failed (the state directory refused).",
            registry=r,
        )
        self.reading_paused = Counter(
            "servelog_backpressure_seconds_total", "Seconds reading waited for a full queue.", registry=r
        )
        self.files_skipped = Counter(
            "servelog_files_skipped_total", "Entries under the log root never read (not regular files; links are "
            "never followed), by reason.", ["reason"], registry=r,
        )
        self.files_unreadable = Counter(
            "servelog_files_unreadable_total", "Files or directories under the log root that could not be read "
            "(read once they can be), by reason.", ["reason"], registry=r,
        )
        for reason in PARSE_ERROR_REASONS:
            self.parse_errors.labels(reason)
        for reason in FILE_SKIP_REASONS:
            self.files_skipped.labels(reason)
        for reason in FILE_UNREADABLE_REASONS:
            self.files_unreadable.labels(reason)
        for destination in DEADLETTER_DESTINATIONS:
            self.documents_dead_lettered.labels(destination)
        for outcome in BULK_OUTCOMES:
            self.bulk_requests.labels(outcome)
        for reason in DESTINATION_REASONS:
            self.destination_errors.labels(reason)
