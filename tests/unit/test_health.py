"""The destination's health record: metric, /healthz detail, and a log that does not flap."""

from __future__ import annotations

import structlog

from collector.telemetry.health import DestinationHealth
from collector.telemetry.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_problem_is_reported_until_a_request_is_taken_whole() -> None:
    metrics, clock = Metrics(), Clock()
    health = DestinationHealth(metrics, clock=clock)
    assert health.describe() == "OpenSearch: nothing sent yet"
    with structlog.testing.capture_logs() as logs:
        health.failed("not_opensearch", "the URL does not answer like OpenSearch: 404 for POST /_bulk")
        clock.now += 12
        health.failed("not_opensearch", "the URL does not answer like OpenSearch: 404 for POST /_bulk")
        detail = health.describe()
        health.ok()
    assert detail.startswith("OpenSearch: not_opensearch for 12s: the URL does not answer like OpenSearch")
    assert "fix: check opensearch.url" in detail
    assert [e["event"] for e in logs] == ["destination_problem", "destination_recovered"]
    assert logs[1]["after_seconds"] == 12.0
    assert value(metrics, "servelog_destination_errors_total", reason="not_opensearch") == 2
    assert value(metrics, "servelog_destination_healthy") == 1
    assert health.describe().startswith("OpenSearch: ok (last bulk")


def test_a_flapping_cluster_logs_each_reason_once_a_minute_but_the_metric_counts_all() -> None:
    metrics, clock = Metrics(), Clock()
    health = DestinationHealth(metrics, clock=clock)
    with structlog.testing.capture_logs() as logs:
        for _ in range(30):
            health.failed("overloaded", "3 of 40 documents not taken (overloaded): 429", also=["blocked"])
            assert value(metrics, "servelog_destination_healthy") == 0
            health.ok()
            clock.now += 1
        clock.now += 60
        health.failed("overloaded", "again")
    assert [e["event"] for e in logs] == ["destination_problem", "destination_recovered", "destination_problem"]
    assert value(metrics, "servelog_destination_errors_total", reason="overloaded") == 31
    assert value(metrics, "servelog_destination_errors_total", reason="blocked") == 30
