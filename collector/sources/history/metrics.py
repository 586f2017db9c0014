"""Prometheus metrics of the history source, registered beside the pipeline's (same registry, bounded labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from collector.model import HISTORY_KINDS

RESOURCES = ("events", "pods", "inferenceservices")
SKIP_REASONS = ("not_serving", "namespace", "no_time", "unknown_kind")
WATCH_STATUSES = ("LIST", "RELIST", "GONE", "FAILURE", "NOT_INSTALLED", "FORBIDDEN")


class HistoryMetrics:
    """``servelog_history_*``: objects read, documents produced, objects skipped, watch restarts, sync state."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.objects = Counter("servelog_history_objects_total", "API objects read by the history source.",
                               ["resource"], registry=registry)
        self.documents = Counter("servelog_history_documents_total", "History documents produced, by event_kind.",
                                 ["kind"], registry=registry)
        self.skipped = Counter("servelog_history_skipped_total", "Objects or facts left out, by reason.",
                               ["reason"], registry=registry)
        self.watch = Counter("servelog_history_watch_total",
                             "List/watch lifecycle of each resource (410s, failures, CRD absent).",
                             ["resource", "status"], registry=registry)
        self.synced = Gauge("servelog_history_synced", "1 once the resource was listed (or is known absent).",
                            ["resource"], registry=registry)
        for resource in RESOURCES:
            self.objects.labels(resource)
            self.synced.labels(resource)
            for status in WATCH_STATUSES:
                self.watch.labels(resource, status)
        for kind in HISTORY_KINDS:
            self.documents.labels(kind)
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
