"""``servelog setup`` on clusters that are not a fresh default: compatibility mode, no ISM, other ISM policies, shard limits.

Against the loopback server, which refuses what a real cluster refuses (the ISM clash exactly as
index-management's ``validateISMTemplates``; see tests/test_support_opensearch_ism.py). The real-node
versions of these checks, where a real node can run them, are in tests/e2e/test_e2e_setup.py.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from collector.cli import main
from collector.errors import SetupError
from collector.setup.ism import choose_priority
from collector.setup.plan import check_opensearch
from collector.setup.sizing import ClusterShards, Layout, age_days, namespaces_in, project
from tests.support.opensearch_server import FakeOpenSearch
from tests.test_setup import report, writes


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SERVELOG_"):
            monkeypatch.delenv(key)


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as server:
        yield server


def setup(*args: str) -> int:
    return main(["setup", "--skip-dashboards", *args])


def rest(server: FakeOpenSearch, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


CATCH_ALL = {"policy": {"description": "delete anything after 7 days", "default_state": "hot", "states": [
    {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "7d"}}]},
    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}],
    "ism_template": [{"index_patterns": ["*"], "priority": 100}]}}


# -- version -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("info", "nodes", "accepted"), [
    ({"distribution": "opensearch", "number": "2.7.0"}, None, "2.7.0"),
    ({"distribution": "opensearch", "number": "3.0.0-beta1"}, None, "3.0.0-beta1"),
    ({"distribution": "opensearch", "number": "2.6.0"}, None, None),
    ({"number": "7.10.2"}, ["2.19.6"], "2.19.6"),  # compatibility.override_main_response_version
    ({"number": "7.10.2"}, ["2.19.6", "2.18.0"], "2.18.0"),  # a rolling upgrade: the oldest node counts
    ({"number": "7.10.2"}, ["7.10.2"], None),  # Elasticsearch 7.10
    ({"number": "7.10.2"}, None, None),  # _nodes not readable: cannot tell
    ({"number": "8.15.0", "build_flavor": "default"}, ["8.15.0"], None),
    ({"number": "7.10.2"}, ["1.3.20"], None),  # OpenSearch 1.x in compatibility mode: too old
])
def test_version_check(info: dict[str, str], nodes: list[str] | None, accepted: str | None) -> None:
    if accepted is not None:
        assert check_opensearch({"version": info}, nodes) == accepted
    else:
        with pytest.raises(SetupError):
            check_opensearch({"version": info}, nodes)


def test_a_cluster_in_compatibility_mode_is_recognised(opensearch: FakeOpenSearch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rest(opensearch, "PUT", "/_cluster/settings", {"persistent": {"compatibility.override_main_response_version": True}})
    assert setup("--opensearch-url", opensearch.url) == 0
    out = capsys.readouterr().out
    assert "OpenSearch 2.19.0 at" in out and "GET / reports 7.10.2" in out
    assert "servelog-logs" in opensearch.index_templates


def test_the_dotted_key_warning_says_every_later_key_is_affected(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(version="2.11.1") as older:
        assert setup("--opensearch-url", older.url) == 0
    err = capsys.readouterr().err
    assert "every later label key" in err and "#11402" in err and "#11425" in err and "labels: value" in err


# -- no ISM ----------------------------------------------------------------------------------------
def test_without_ism_setup_stops_unless_told_to_skip_retention(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(ism_plugin=False) as bare:
        assert setup("--opensearch-url", bare.url) == 1
        assert not writes(bare)
        assert "--skip-retention" in capsys.readouterr().err
        before = len(bare.requests)
        assert setup("--opensearch-url", bare.url, "--skip-retention") == 0
        captured = capsys.readouterr()
        assert set(report(captured.out)) == {"servelog-logs-mappings", "servelog-logs-settings", "servelog-logs",
                                             "servelog-deadletter-mappings", "servelog-deadletter-settings",
                                             "servelog-deadletter", "servelog-events-mappings",
                                             "servelog-events-settings", "servelog-events"}
        assert "nothing deletes" in captured.err
        assert "without retention servelog adds about" in captured.err, "the shard count grows without bound"
        assert not [r for r in bare.requests[before:] if "_ism" in r.path], "ISM is not even asked"


# -- another policy's ism_template ------------------------------------------------------------------
def test_a_catch_all_policy_at_the_same_priority_moves_servelog_above_it(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    rest(opensearch, "PUT", "/_plugins/_ism/policies/catch-all", CATCH_ALL)
    assert setup("--opensearch-url", opensearch.url) == 0
    err = capsys.readouterr().err
    assert "priority 100 clashes with catch-all ['*']; installed at priority 101" in err
    templates = {p: v["policy"]["ism_template"][0]["priority"] for p, v in opensearch.ism_policies.items()}
    assert templates == {"catch-all": 100, "servelog-logs-retention": 101, "servelog-deadletter-retention": 101,
                         "servelog-events-retention": 101}
    assert setup("--opensearch-url", opensearch.url) == 0
    assert set(report(capsys.readouterr().out).values()) == {"unchanged"}, "the chosen priority is stable"


def test_an_explicit_priority_that_clashes_stops_with_the_conflict(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    rest(opensearch, "PUT", "/_plugins/_ism/policies/catch-all", CATCH_ALL)
    assert setup("--opensearch-url", opensearch.url, "--ism-priority", "100") == 1
    err = capsys.readouterr().err
    assert "servelog-deadletter-retention: its ism_template ['serving-deadletter-*'] at priority 100 overlaps policy " \
           "catch-all (index_patterns ['*'], priority 100)" in err
    assert "--ism-priority" in err and "validateISMTemplates" in err
    assert set(opensearch.ism_policies) == {"catch-all"} and not opensearch.index_templates, "nothing was written"
    assert setup("--opensearch-url", opensearch.url, "--ism-priority", "150") == 0


def test_a_higher_priority_policy_is_reported_as_winning() -> None:
    ours = {"policy": {"ism_template": [{"index_patterns": ["serving-logs-*"], "priority": 100}]}}
    choice = choose_priority("servelog-logs-retention", ours, {"serving": [{"index_patterns": ["serving-*"],
                                                                            "priority": 500}]}, None)
    assert choice.body["policy"]["ism_template"][0]["priority"] == 100 and not choice.notes
    assert "outranks servelog-logs-retention" in choice.warnings[0] and "--ism-priority 501" in choice.warnings[0]
    assert ours["policy"]["ism_template"][0]["priority"] == 100, "not mutated"


# -- sizing -----------------------------------------------------------------------------------------
def test_the_shard_arithmetic(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ClusterShards(data_nodes=3, open_shards=1200, servelog_shards=200, max_shards_per_node=1000)
    per_namespace = Layout(namespaces=40, per_namespace=True, shards=1, replicas=1, log_days=14, deadletter_days=30,
                           events_days=90)
    projection = project(per_namespace, cluster)
    assert projection.steady_servelog == 40 * 15 * 2 + 31 * 2 + 91 * 2 == 1444
    assert projection.projected_total == 1000 + 1444 and projection.limit == 3000
    assert projection.warning is not None and "81%" in projection.warning
    daily = project(Layout(namespaces=40, per_namespace=False, shards=1, replicas=1, log_days=14, deadletter_days=30,
                           events_days=90), cluster)
    assert daily.steady_servelog == 15 * 2 + 31 * 2 + 91 * 2 and daily.warning is None
    over = project(per_namespace, ClusterShards(data_nodes=1, open_shards=10, servelog_shards=0))
    assert over.warning is not None and "above the cluster's limit of 1000" in over.warning
    assert "serving-logs-{date}" in over.warning
    assert age_days("14d") == 14 and age_days("36h") == 2 and age_days(None) is None
    assert namespaces_in(["serving-logs-team-a-2026.11.24", "serving-logs-team-a-2026.11.25",
                          "serving-logs-b-2026.11.24", "other"], "serving-logs-{namespace}-{date}") == {"team-a", "b"}


def test_setup_warns_when_the_daily_indices_near_the_shard_limit(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    rest(opensearch, "PUT", "/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": 500}})
    assert setup("--opensearch-url", opensearch.url, "--namespaces", "10") == 0
    captured = capsys.readouterr()
    assert "sizing: shards: 10 namespace(s), one index each per day; log: 10 x (14 + 1) days x 1 x (1 + 1) = 300" \
           in captured.out
    assert "the limit is 500 (cluster.max_shards_per_node 500 x 1 data node(s))" in captured.out
    assert "above the cluster's limit of 500" in captured.err
    assert setup("--opensearch-url", opensearch.url, "--namespaces", "10", "--replicas", "0") == 0
    err = capsys.readouterr().err  # 10 x 15 + 31 + 91 = 272 shards of 500: 54%, no warning
    assert "limit" not in err


def test_namespaces_are_counted_from_existing_indices(opensearch: FakeOpenSearch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("serving-logs-a-2026.11.24", "serving-logs-b-2026.11.24", "serving-logs-b-2026.11.25"):
        rest(opensearch, "PUT", f"/{name}", {"settings": {"index": {"number_of_replicas": 0}}})
    assert setup("--opensearch-url", opensearch.url) == 0
    out = capsys.readouterr().out
    assert "2 namespace(s)" in out and "(2 seen in existing indices; set --namespaces)" in out
