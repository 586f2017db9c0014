"""``servelog logs`` paging and ``--follow`` against the loopback server's real refresh model.

The follower is driven round by round (its clock and sleep are injected): between rounds the test
indexes lines the way a real cluster shows them, late (a refresh later) and out of timestamp order
(another index refreshed first), and checks the oracle: every line exactly once, in the order it
could be known, and a warning rather than a silent gap when a line comes later than the window.
The same behaviour on a real node, with the collector indexing, is tests/e2e/test_e2e_logs.py.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from collector.query.follow import Follower
from collector.query.reader import LogReader
from collector.query.search import LogQuery, hit_key, nanos_to_rfc3339
from collector.settings import OpenSearchSettings
from collector.sinks.opensearch.client import OpenSearchClient
from tests.support.opensearch_server import FakeOpenSearch

T0 = 1795510800 * 10**9  # 2026-11-24T09:00:00Z
S = 10**9
MAPPINGS = {"dynamic": False, "properties": {"timestamp": {"type": "date_nanos", "format": "strict_date_optional_time_nanos"},
                                             "doc_id": {"type": "keyword"}, "message": {"type": "text"}}}


class Cluster:
    def __init__(self, server: FakeOpenSearch) -> None:
        self.server = server
        for day in ("a", "b"):
            self.rest("PUT", f"/serving-logs-{day}-2026.11.24", {
                "settings": {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}, "mappings": MAPPINGS})

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.server.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def write(self, index: str, *lines: tuple[str, int]) -> None:
        body = b"".join(json.dumps(x).encode() + b"\n" for doc_id, ts in lines for x in (
            {"create": {"_index": f"serving-logs-{index}-2026.11.24", "_id": doc_id}},
            {"timestamp": nanos_to_rfc3339(ts), "doc_id": doc_id, "message": f"line {doc_id}"}))
        answer = self.rest("POST", "/_bulk", body)
        assert not answer["errors"], answer

    def refresh(self, index: str) -> None:
        self.rest("POST", f"/serving-logs-{index}-2026.11.24/_refresh")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with FakeOpenSearch() as server:
        yield Cluster(server)


@pytest.fixture
def reader(cluster: Cluster) -> Iterator[LogReader]:
    client = OpenSearchClient(OpenSearchSettings(url=cluster.server.url))
    yield LogReader(client, "serving-logs-*", page_size=3)  # small pages: paging is exercised
    client.close()


def follower(reader: LogReader, now: list[int], rounds: list[Callable[[], None]], window_s: int = 60
             ) -> tuple[Follower, list[str], list[str]]:
    printed: list[str] = []
    warnings: list[str] = []
    script = iter(rounds)

    def sleep(_: float) -> None:
        next(script)()

    follow = Follower(reader, LogQuery(), emit=lambda hit: printed.append(hit["_id"]), warn=warnings.append,
                      window_ns=window_s * S, clock=lambda: now[0], sleep=sleep)
    return follow, printed, warnings


def test_paging_through_lines_sharing_one_timestamp_skips_and_repeats_nothing(cluster: Cluster,
                                                                              reader: LogReader) -> None:
    cluster.write("a", *[(f"a{n:02d}", T0) for n in range(10)])
    cluster.write("b", *[(f"b{n:02d}", T0) for n in range(7)], ("late", T0 + 1))
    cluster.refresh("a")
    cluster.refresh("b")
    ids = [hit["_id"] for hit in reader.pages(LogQuery())]
    assert sorted(ids) == sorted([f"a{n:02d}" for n in range(10)] + [f"b{n:02d}" for n in range(7)] + ["late"])
    assert len(ids) == len(set(ids)) and ids[-1] == "late"
    assert [h["_id"] for h in reader.newest(LogQuery(), 4)] == ["b04", "b05", "b06", "late"], "newest, oldest first"


def test_follow_prints_late_and_out_of_order_lines_exactly_once(cluster: Cluster, reader: LogReader) -> None:
    now = [T0 + 30 * S]
    cluster.write("a", *[(f"a{n}", T0 + n * S) for n in range(1, 6)])
    cluster.refresh("a")

    def round_1() -> None:
        cluster.write("b", ("b-early", T0 + 2 * S))  # older than the cursor, and not refreshed yet
        cluster.write("a", ("a6", T0 + 6 * S))
        cluster.refresh("a")  # a6 becomes visible first: the cursor moves past b-early

    def round_2() -> None:
        cluster.refresh("b")  # b-early becomes visible now, behind the cursor
        now[0] += 2 * S

    def round_3() -> None:
        now[0] += 2 * S

    follow, printed, warnings = follower(reader, now, [round_1, round_2, round_3])
    follow.run(0, rounds=3)
    assert printed == ["a1", "a2", "a3", "a4", "a5", "a6", "b-early"], "every line once, the late one when it appeared"
    assert not warnings
    behind = [h["_id"] for h in reader.pages(LogQuery(), after=[T0 + 6 * S, "a6"])]
    assert "b-early" not in behind, "a plain search_after cursor would never have returned it"


def test_a_line_later_than_the_window_is_reported_not_silently_lost(cluster: Cluster, reader: LogReader) -> None:
    now = [T0 + 100 * S]
    cluster.write("a", ("a1", T0 + 95 * S))
    cluster.refresh("a")

    def round_1() -> None:
        cluster.write("b", ("ancient", T0 + 10 * S))  # 85 s older than the newest line: outside a 30 s window
        cluster.refresh("b")
        now[0] += 40 * S  # the window slides past

    def round_2() -> None:
        now[0] += 2 * S

    follow, printed, warnings = follower(reader, now, [round_1, round_2], window_s=30)
    follow.run(0, rounds=2)
    assert printed == ["a1"]
    assert len(warnings) == 1 and warnings[0].startswith("1 line(s) older than") and "servelog logs --until" in warnings[0]


def test_the_seen_set_holds_only_the_window(cluster: Cluster, reader: LogReader) -> None:
    now = [T0]
    steps = []
    for step in range(6):
        def round_(step: int = step) -> None:
            cluster.write("a", *[(f"s{step}-{n}", now[0] + n) for n in range(5)])
            cluster.refresh("a")
            now[0] += 20 * S
        steps.append(round_)
    follow, printed, _ = follower(reader, now, steps, window_s=30)
    follow.run(0, rounds=6)
    assert len(printed) == len(set(printed)) == 30
    assert len(follow.window.seen) <= 10, "ids older than the window are forgotten"
    assert hit_key({"sort": [5, None], "_id": "x"}) == (5, "x")


def test_tail_mode_starts_with_the_newest_lines(cluster: Cluster, reader: LogReader) -> None:
    now = [T0 + 60 * S]
    cluster.write("a", *[(f"a{n:02d}", T0 + n * S) for n in range(10)])
    cluster.refresh("a")

    def round_1() -> None:
        cluster.write("a", ("a10", T0 + 10 * S))
        cluster.refresh("a")

    follow, printed, warnings = follower(reader, now, [round_1])
    follow.run(4, rounds=1)
    assert printed == ["a06", "a07", "a08", "a09", "a10"] and not warnings
