"""The real client and sink against destinations that are not a working OpenSearch (in process).

Each wrong destination must end in a retry with a reason, never in the dead-letter: the sink keeps
the documents, reports the reason (metric, health) and, with a bound (``--once``), gives up with a
message that says what to fix. A fake clock and sleep make the bound instant; the HTTP is real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collector.settings import OpenSearchSettings
from collector.sinks.opensearch.client import OpenSearchClient
from collector.sinks.opensearch.deadletter import DeadLetter
from collector.sinks.opensearch.sink import Abandoned, GaveUp, OpenSearchSink
from collector.telemetry.metrics import Metrics
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.tls import make_test_pki
from tests.support.wrong_destination import HANG, WrongDestination


def pieces(n: int) -> list[bytes]:
    return [orjson.dumps({"create": {"_index": "serving-logs-team-a-2026.11.24", "_id": f"id-{i}"}}) + b"\n"
            + orjson.dumps({"message": f"line {i}", "timestamp": "2026-11-24T09:00:00Z", "namespace": "team-a"}) + b"\n"
            for i in range(n)]


class FakeTime:
    """A clock that only sleeping advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_sink(url: str, tmp_path: Path, *, give_up_after: float | None = 10.0, time_: FakeTime | None = None,
              abort: threading.Event | None = None, **settings: object) -> tuple[OpenSearchSink, Metrics]:
    time_ = time_ or FakeTime()
    client = OpenSearchClient(OpenSearchSettings(url=url, **settings))  # type: ignore[arg-type]
    metrics = Metrics()
    deadletter = DeadLetter(client=client, index_template="serving-deadletter-{date}", directory=tmp_path / "deadletter")
    sink = OpenSearchSink(client=client, deadletter=deadletter, metrics=metrics, abort=abort or threading.Event(),
                          initial_backoff=0.5, max_backoff=4.0, give_up_after=give_up_after, sleep=time_.sleep,
                          clock=time_.clock)
    return sink, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def wrong() -> Iterator[WrongDestination]:
    with WrongDestination() as server:
        yield server


@pytest.mark.parametrize(("mode", "reason", "words"), [
    ("404", "not_opensearch", "the URL does not answer like OpenSearch: 404 for POST /_bulk"),
    ("dashboards", "not_opensearch", "404 for POST /_bulk"),
    ("405", "not_opensearch", "405 for POST /_bulk"),
    ("html", "not_opensearch", "200 for POST /_bulk"),
    ("html-403", "not_opensearch", "403 for POST /_bulk"),
    ("text", "not_opensearch", "not a JSON object"),
    ("json-not-bulk", "not_opensearch", "no 'items' list"),
    ("401", "auth", "credentials were refused"),
    ("html-502", "unavailable", "502"),
])
def test_a_wrong_destination_is_retried_then_given_up_never_dead_lettered(
        wrong: WrongDestination, tmp_path: Path, mode: str, reason: str, words: str) -> None:
    wrong.answer_with(mode)
    time_ = FakeTime()
    sink, metrics = make_sink(wrong.url, tmp_path, time_=time_)
    with pytest.raises(GaveUp) as gave_up:
        sink.deliver(pieces(5))
    assert gave_up.value.reason == reason
    assert words in gave_up.value.message and words in str(gave_up.value)
    assert wrong.bulk_requests() >= 3, "retried with backoff before giving up"
    assert time_.now - 1000.0 == pytest.approx(10.0), "the last wait is cut to the bound"
    assert not (tmp_path / "deadletter").exists(), "nothing dead-lettered"
    assert sample(metrics, "servelog_documents_dead_lettered_total", destination="index") == 0
    assert sample(metrics, "servelog_destination_errors_total", reason=reason) == wrong.bulk_requests()
    assert sample(metrics, "servelog_destination_healthy") == 0
    assert sample(metrics, "servelog_documents_indexed_total") == 0


def test_without_a_bound_the_sink_retries_until_shutdown(wrong: WrongDestination, tmp_path: Path) -> None:
    abort = threading.Event()
    time_ = FakeTime()

    def sleep(seconds: float) -> None:
        time_.sleep(seconds)
        if len(time_.sleeps) == 12:  # an hour of backoff later, the process is told to stop
            abort.set()
        if abort.is_set():
            raise Abandoned

    sink, _metrics = make_sink(wrong.url, tmp_path, give_up_after=None, time_=time_, abort=abort)
    sink._sleep = sleep  # the interruptible wait, scripted
    with pytest.raises(Abandoned) as stopped:
        sink.deliver(pieces(3))
    assert not isinstance(stopped.value, GaveUp)
    assert wrong.bulk_requests() == 12
    assert max(time_.sleeps) <= 4.0 + 1.0, "backoff capped at retry_max_seconds (plus jitter)"


def test_unreachable_tls_and_timeout_have_their_reasons(tmp_path: Path) -> None:
    from tests.integration.test_process import free_port

    sink, _ = make_sink(f"http://127.0.0.1:{free_port()}", tmp_path)
    with pytest.raises(GaveUp) as refused:
        sink.deliver(pieces(1))
    assert refused.value.reason == "unreachable" and "Connection refused" in refused.value.message

    pki = make_test_pki(tmp_path / "pki")
    with FakeOpenSearch(ssl_context=pki.server_context()) as fos:
        sink, _ = make_sink(fos.url, tmp_path, ca_file=pki.wrong_ca_file)
        with pytest.raises(GaveUp) as tls:
            sink.deliver(pieces(1))
        assert tls.value.reason == "tls" and "certificate" in tls.value.message.lower()
        assert "ca_file" in str(tls.value), "the message says what to check"
        assert fos.doc_count() == 0

    with WrongDestination(HANG) as hang:
        sink, _ = make_sink(hang.url, tmp_path, timeout_seconds=0.2)
        with pytest.raises(GaveUp) as timeout:
            sink.deliver(pieces(1))
        assert timeout.value.reason == "timeout"


def test_the_right_server_after_the_wrong_one_takes_everything(wrong: WrongDestination, tmp_path: Path) -> None:
    """A destination problem that heals: the same documents are sent again and created once."""
    with FakeOpenSearch() as fos:
        fos.fail_requests(404, 3)  # OpenSearch's own 404 JSON for the whole request
        fos.fail_requests(401, 1, body={"error": "Unauthorized"})
        sink, metrics = make_sink(fos.url, tmp_path)
        report = sink.deliver(pieces(20))
        assert (report.created, report.dead_lettered) == (20, 0)
        assert fos.doc_count("serving-logs-*") == 20 and fos.doc_count("serving-deadletter-*") == 0
        assert sample(metrics, "servelog_destination_errors_total", reason="not_opensearch") == 3
        assert sample(metrics, "servelog_destination_healthy") == 1, "recovered"


def test_per_item_auth_and_missing_index_are_retried_not_dead_lettered(tmp_path: Path) -> None:
    with FakeOpenSearch() as fos:
        fos.fail_items({"id-0": [403, 403], "id-1": [404], "id-2": [429, 503]})
        sink, metrics = make_sink(fos.url, tmp_path)
        report = sink.deliver(pieces(4))
        assert (report.created, report.dead_lettered) == (4, 0)
        assert fos.doc_count("serving-deadletter-*") == 0 and not (tmp_path / "deadletter").exists()
        assert sample(metrics, "servelog_destination_errors_total", reason="auth") == 2
        assert sample(metrics, "servelog_destination_errors_total", reason="index_missing") == 1


def test_progress_resets_the_bound(tmp_path: Path) -> None:
    """A batch whose documents keep getting outcomes is not given up, however long it takes."""
    with FakeOpenSearch() as fos:
        # each attempt one more document is taken; the others are rejected with 429
        fos.fail_items({f"id-{i}": [429] * i for i in range(8)})
        time_ = FakeTime()
        sink, _ = make_sink(fos.url, tmp_path, give_up_after=3.0, time_=time_)
        report = sink.deliver(pieces(8))
        assert report.created == 8
        assert time_.now - 1000.0 > 3.0, "longer than the bound in all, but never that long without progress"


def test_the_connection_pool_fits_every_sender(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenSearch() as fos:
        fos.set_delay(0.05)
        sink, _ = make_sink(fos.url, tmp_path, workers=4)
        caplog.set_level(logging.WARNING, logger="urllib3")
        batches = [pieces(3) for _ in range(4)]
        for n, batch in enumerate(batches):
            batches[n] = [p.replace(b'"id-', f'"b{n}-'.encode()) for p in batch]

        def send(batch: list[bytes]) -> None:
            for _ in range(3):
                sink.deliver(batch)  # the second and third rounds are 409s: same ids

        threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fos.doc_count("serving-logs-*") == 12
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()], "no connection discarded"


def test_413_halves_down_to_one_and_a_lone_document_too_large_is_its_own_problem(tmp_path: Path) -> None:
    with FakeOpenSearch(max_content_length=4096) as fos:
        batch = pieces(12)
        batch[5] = batch[5].replace(b'"line 5"', b'"' + b"x" * 5000 + b'"')
        sink, metrics = make_sink(fos.url, tmp_path)
        report = sink.deliver(batch)
        assert (report.created, report.dead_lettered) == (11, 1)
        assert fos.doc_count("serving-logs-*") == 11
        (record,) = [orjson.loads(line) for line in (tmp_path / "deadletter" / "deadletter.ndjson").read_bytes().splitlines()]
        assert record["status"] == 413 and record["doc_id"] == "id-5" and "larger than the destination" in record["reason"]
        assert sample(metrics, "servelog_bulk_requests_total", outcome="too_large") >= 2
        assert sample(metrics, "servelog_destination_errors_total", reason="rejected") == 0, "413 is not a destination error"
