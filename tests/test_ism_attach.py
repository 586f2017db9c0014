"""ISM attaches servelog's retention to each new daily index: ``servelog setup``, a bulk write, ``_plugins/_ism/explain``.

The ISM plugin is not on Maven Central, so the real nodes of the e2e suite run without it
(``tests/support/opensearch_node.py`` ``ISM_UNAVAILABLE``): ``tests/e2e/test_e2e_setup.py`` runs
:func:`check_setup_policies_manage_new_indices` where a cluster has the plugin and says it is blocked
where it has not. Here the loopback server plays the plugin's coordinator and explain API as
index-management's sources do (cited in ``tests/support/opensearch_server/ism_managed.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from collector.cli import main
from tests.e2e.support import rest
from tests.support.e2e import Cluster
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.opensearch_server.ism_managed import LEGACY_POLICY_ID_SETTING, POLICY_ID_SETTING
from tests.support.wait import wait_until
from tests.test_setup import bulk_body, sample_documents

ROOT = Path(__file__).resolve().parents[1]
RETENTION = {"logs": ("servelog-logs-retention", "14d"), "deadletter": ("servelog-deadletter-retention", "30d"),
             "events": ("servelog-events-retention", "90d")}
DAY = "2026.11.24"
UNMANAGED = {POLICY_ID_SETTING: None, LEGACY_POLICY_ID_SETTING: None, "enabled": None}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SERVELOG_"):
            monkeypatch.delenv(key)


@pytest.fixture
def server() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fos:
        yield fos


def loopback(server: FakeOpenSearch) -> Cluster:
    return Cluster(server.url, server.version, "loopback")


# -- shared with the e2e suite ------------------------------------------------------------------
def setup(cluster: Cluster, *extra: str) -> int:
    return main(["setup", "--opensearch-url", cluster.url, "--skip-dashboards", *extra])


def daily_indices(namespace: str, day: str) -> dict[str, str]:
    """kind -> the daily index servelog writes that kind of document to."""
    return {"logs": f"serving-logs-{namespace}-{day}", "deadletter": f"serving-deadletter-{day}",
            "events": f"serving-events-{day}"}


def write_each_kind(cluster: Cluster, indices: dict[str, str], *, id_prefix: str) -> None:
    """One bulk of ``create`` items: log lines, a dead-letter record and an event, into ``indices``."""
    kind = {"serving-logs-": "logs", "serving-deadletter-": "deadletter", "serving-events-": "events"}
    documents = [(indices[next(k for p, k in kind.items() if index.startswith(p))], source)
                 for index, source in sample_documents(id_prefix)]
    answer = rest(cluster, "POST", "/_bulk", bulk_body(documents, id_prefix=id_prefix))
    assert not answer["errors"], answer


def explain(cluster: Cluster, target: str = "", **params: str) -> dict[str, Any]:
    path = "/_plugins/_ism/explain" + (f"/{target}" if target else "")
    return dict(rest(cluster, "GET", path + (f"?{urlencode(params)}" if params else "")))


def check_setup_policies_manage_new_indices(cluster: Cluster, namespace: str, day: str, *extra: str,
                                            timeout: float = 0.5) -> None:
    """Setup with retention, then each kind of document auto-creates its daily index: each is managed
    by servelog's policy for that kind (``timeout``: how long the plugin may take to attach)."""
    assert setup(cluster, *extra) == 0
    indices = daily_indices(namespace, day)
    write_each_kind(cluster, indices, id_prefix=namespace)
    target = ",".join(indices.values())
    wait_until(lambda: explain(cluster, target)["total_managed_indices"] == len(indices), timeout=timeout)
    answer = explain(cluster, target, show_policy="true")
    for kind, index in indices.items():
        policy_id, age = RETENTION[kind]
        entry = answer[index]
        uuid = rest(cluster, "GET", f"/{index}/_settings")[index]["settings"]["index"]["uuid"]
        assert (entry[POLICY_ID_SETTING], entry[LEGACY_POLICY_ID_SETTING], entry["policy_id"]) == (policy_id,) * 3
        assert (entry["index"], entry["index_uuid"], entry["enabled"]) == (index, uuid, True), entry
        hot = next(s for s in entry["policy"]["states"] if s["name"] == entry["policy"]["default_state"])
        assert hot["transitions"][0]["conditions"] == {"min_index_age": age}, (kind, hot)


# -- against the loopback ISM --------------------------------------------------------------------
def test_setup_policies_manage_each_new_daily_index(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    check_setup_policies_manage_new_indices(cluster, "team-a", DAY)
    fresh = explain(cluster, f"serving-logs-team-a-{DAY}")
    assert fresh == {f"serving-logs-team-a-{DAY}": {
        POLICY_ID_SETTING: "servelog-logs-retention", LEGACY_POLICY_ID_SETTING: "servelog-logs-retention",
        "index": f"serving-logs-team-a-{DAY}", "index_uuid": fresh[f"serving-logs-team-a-{DAY}"]["index_uuid"],
        "policy_id": "servelog-logs-retention", "enabled": True}, "total_managed_indices": 1}, \
        "before the job's first run: no state, action or info yet"
    everything = explain(cluster, size="2")
    assert everything["total_managed_indices"] == 3
    assert list(everything) == [f"serving-deadletter-{DAY}", f"serving-events-{DAY}", "total_managed_indices"]


def test_an_index_no_template_selects_stays_unmanaged(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster) == 0
    rest(cluster, "PUT", "/model-metrics-2026.11.24")
    rest(cluster, "PUT", f"/serving-logs-team-a-{DAY}", {"settings": {"index": {"hidden": True}}})
    answer = explain(cluster, f"model-metrics-2026.11.24,serving-logs-team-a-{DAY},no-such-index")
    assert answer == {"model-metrics-2026.11.24": UNMANAGED, f"serving-logs-team-a-{DAY}": UNMANAGED,
                      "total_managed_indices": 0}, "hidden indices are never auto-managed; a missing one is left out"
    assert explain(cluster) == {"total_managed_indices": 0}


def test_an_index_created_before_the_policies_is_not_attached(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster, "--skip-retention") == 0
    before = daily_indices("team-a", "2026.11.23")
    write_each_kind(cluster, before, id_prefix="day-1")
    assert setup(cluster) == 0, "retention added later"
    after = daily_indices("team-a", DAY)
    write_each_kind(cluster, before, id_prefix="day-1-again")  # written to again: still no policy
    write_each_kind(cluster, after, id_prefix="day-2")
    answer = explain(cluster, "serving-*")
    assert {index: answer[index]["policy_id"] if answer[index]["enabled"] else None for index in [*before.values(),
            *after.values()]} == {**dict.fromkeys(before.values()), **{after[k]: RETENTION[k][0] for k in after}}
    assert answer["total_managed_indices"] == 3


def custom_policy(patterns: list[str], priority: int) -> dict[str, Any]:
    body = json.loads((ROOT / "index_templates" / "ism-servelog-logs-retention.json").read_text())
    body["policy"]["description"] = "someone else's retention"
    body["policy"]["ism_template"] = [{"index_patterns": patterns, "priority": priority}]
    return body


def test_of_two_matching_policies_the_higher_priority_wins(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster) == 0  # servelog's templates at priority 100
    rest(cluster, "PUT", "/_plugins/_ism/policies/team-a-logs", custom_policy(["serving-logs-team-a-*"], 200))
    rest(cluster, "PUT", "/_plugins/_ism/policies/all-serving", custom_policy(["serving-*"], 50))
    for index in (f"serving-logs-team-a-{DAY}", f"serving-logs-team-b-{DAY}", f"serving-deadletter-{DAY}",
                  f"serving-other-{DAY}"):
        rest(cluster, "PUT", f"/{index}")
    answer = explain(cluster, "serving-*")
    assert {n: e["policy_id"] for n, e in answer.items() if n != "total_managed_indices"} == {
        f"serving-logs-team-a-{DAY}": "team-a-logs", f"serving-logs-team-b-{DAY}": "servelog-logs-retention",
        f"serving-deadletter-{DAY}": "servelog-deadletter-retention", f"serving-other-{DAY}": "all-serving"}


def test_a_template_only_selects_indices_created_after_its_last_updated_time(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster) == 0
    later = custom_policy(["serving-logs-team-a-*"], 300)
    tomorrow = int(time.time() * 1000) + 86_400_000
    later["policy"]["ism_template"][0]["last_updated_time"] = tomorrow  # kept as given (ISMTemplate.parse)
    rest(cluster, "PUT", "/_plugins/_ism/policies/from-tomorrow", later)
    rest(cluster, "PUT", f"/serving-logs-team-a-{DAY}")
    assert explain(cluster, f"serving-logs-team-a-{DAY}")[f"serving-logs-team-a-{DAY}"]["policy_id"] == \
        "servelog-logs-retention", "a template younger than the index is passed over (findMatchingPolicy)"


def test_the_job_keeps_the_policy_it_was_attached_with(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster) == 0
    rest(cluster, "PUT", "/serving-logs-team-a-2026.11.23")
    assert setup(cluster, "--logs-retention", "7d") == 0
    rest(cluster, "PUT", f"/serving-logs-team-a-{DAY}")
    answer = explain(cluster, "serving-logs-team-a-*", show_policy="true")

    def age(index: str) -> str:
        return str(answer[index]["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"])

    assert (age("serving-logs-team-a-2026.11.23"), age(f"serving-logs-team-a-{DAY}")) == ("14d", "7d"), \
        "a changed policy reaches new indices; managed ones keep theirs (the plugin's change-policy API moves them)"


@pytest.mark.parametrize(("version", "kube_system", "not_auto_managed"), [
    ("2.19.0", "kube-system-logs", "kube-system-logs"),  # '-' is a plain pattern; auto_manage: plugins || legacy
    ("3.8.0", "servelog-logs-retention", None),  # 3.4+: '-' excludes (#1509); the plugins key decides (#1525)
])
def test_exclusion_patterns_and_auto_manage_follow_the_plugin_version(
        version: str, kube_system: str, not_auto_managed: str | None) -> None:
    with FakeOpenSearch(version=version) as fos:
        cluster = loopback(fos)
        assert setup(cluster) == 0
        rest(cluster, "PUT", "/_plugins/_ism/policies/kube-system-logs",
             custom_policy(["serving-logs-*", "-serving-logs-kube-system-*"], 200))
        rest(cluster, "PUT", f"/serving-logs-kube-system-{DAY}")
        rest(cluster, "PUT", f"/serving-logs-team-a-{DAY}",
             {"settings": {"index.plugins.index_state_management.auto_manage": False}})
        answer = explain(cluster, "serving-logs-*")
    assert answer[f"serving-logs-kube-system-{DAY}"][POLICY_ID_SETTING] == kube_system
    assert answer[f"serving-logs-team-a-{DAY}"][POLICY_ID_SETTING] == not_auto_managed


def test_exclusion_only_templates_are_refused_from_3_4() -> None:
    with FakeOpenSearch(version="3.8.0") as fos:
        cluster = loopback(fos)
        refused = rest(cluster, "PUT", "/_plugins/_ism/policies/only-exclusions", custom_policy(["-serving-*"], 7),
                       ok=(400,))
    assert refused["error"]["reason"] == ("Validation Failed: 1: index_patterns must contain at least one inclusion "
                                          "pattern (patterns cannot be all exclusions);")


def test_without_the_plugin_explain_is_an_unknown_endpoint() -> None:
    with FakeOpenSearch(ism_plugin=False) as fos:
        cluster = loopback(fos)
        assert setup(cluster, "--skip-retention") == 0
        rest(cluster, "PUT", f"/serving-logs-team-a-{DAY}")
        answer = rest(cluster, "GET", f"/_plugins/_ism/explain/serving-logs-team-a-{DAY}", ok=(400,))
    assert answer == {"error": f"no handler found for uri [/_plugins/_ism/explain/serving-logs-team-a-{DAY}] "
                               "and method [GET]"}


def test_a_deleted_and_recreated_index_is_managed_afresh(server: FakeOpenSearch) -> None:
    cluster = loopback(server)
    assert setup(cluster) == 0
    index = f"serving-logs-team-a-{DAY}"
    rest(cluster, "PUT", f"/{index}")
    first = explain(cluster, index)[index]["index_uuid"]
    rest(cluster, "DELETE", f"/{index}")
    assert explain(cluster) == {"total_managed_indices": 0}, "the job goes with its index"
    rest(cluster, "PUT", f"/{index}")
    again = explain(cluster, index)[index]
    assert again["policy_id"] == "servelog-logs-retention" and again["index_uuid"] != first

