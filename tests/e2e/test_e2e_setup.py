"""``servelog setup`` against a real OpenSearch (2.19 and 3.x from Maven Central, or any given cluster).

What only a real server can tell: that the second run finds every asset unchanged (the server hands
templates back in its own normal form), that an index created from the templates gets the intended
mapping and settings, that the documents servelog writes are all accepted and searchable by the
fields the saved objects use, how a cluster without ISM answers, that compatibility mode is seen
through, that the shard facts are read right, and that the shipped index-pattern fields are what
Dashboards would derive from the node's ``_field_caps``.

ISM policies and ``_plugins/_ism/explain`` need the ISM plugin, which is not on Maven Central
(tests/support/opensearch_node.py ``ISM_UNAVAILABLE``): on the local nodes the test of a new daily
index's policy checks that explain is absent and skips, saying that it is blocked and why; on a
cluster with the plugin (``SERVELOG_E2E_OPENSEARCH_URL``) it runs. ``tests/test_ism_attach.py`` runs
the same check against the loopback server's model of the plugin.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from collector.cli import main
from tests.e2e.support import ROOT, cluster_settings, ensure_setup, namespace, rest
from tests.support.e2e import Cluster
from tests.support.opensearch_node import ISM_UNAVAILABLE
from tests.test_ism_attach import check_setup_policies_manage_new_indices, daily_indices
from tests.test_setup import bulk_body, report, sample_documents

pytestmark = pytest.mark.e2e


def setup(cluster: Cluster, *extra: str) -> int:
    return main(["setup", "--opensearch-url", cluster.url, "--skip-dashboards", "--replicas", "0", *extra])


def test_setup_installs_templates_and_a_second_run_changes_nothing(
        opensearch: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup(opensearch) == 1, "no ISM plugin: retention cannot be installed"
    err = capsys.readouterr().err
    assert "no Index State Management plugin" in err and "--skip-retention" in err, "the real node's answer is recognised"
    assert setup(opensearch, "--skip-retention") == 0
    first = capsys.readouterr()
    assert f"OpenSearch {opensearch.version} at" in first.out
    assert setup(opensearch, "--skip-retention") == 0
    second = report(capsys.readouterr().out)
    assert len(second) == 9 and set(second.values()) == {"unchanged"}, second


def test_a_new_daily_index_gets_the_mappings_and_takes_every_kind_of_document(
        opensearch: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    documents = sample_documents(ns)
    logs = f"serving-logs-{ns}-2026.11.24"
    answer = rest(opensearch, "POST", "/_bulk?refresh=true", bulk_body(documents, id_prefix=ns))
    assert not answer["errors"], answer
    mapping = rest(opensearch, "GET", f"/{logs}/_mapping")[logs]["mappings"]
    types = {name: spec.get("type") for name, spec in mapping["properties"].items()}
    assert types["timestamp"] == "date_nanos" and types["labels"] == "flat_object" and types["doc_id"] == "keyword"
    assert mapping["dynamic"] == "false" and "unknown_field" not in types
    settings = rest(opensearch, "GET", f"/{logs}/_settings")[logs]["settings"]["index"]
    assert (settings["codec"], settings["number_of_replicas"], settings["refresh_interval"]) == ("best_compression", "0", "5s")

    def count(query: dict[str, Any], pattern: str = f"serving-logs-{ns}-*") -> int:
        return int(rest(opensearch, "POST", f"/{pattern}/_count", {"query": query})["count"])

    assert count({"match_all": {}}) == 4
    assert count({"range": {"model_version.numeric": {"gte": 3}}}) == 2, "3 and 20261124; v2 ignored, not refused"
    assert count({"term": {"labels": "iris"}}) == 2, "flat_object: any label value"
    assert count({"term": {"labels.app.kubernetes.io/name": "iris"}}) == 2, "flat_object: a dotted label key"
    assert count({"match": {"message": "traceback"}}) == 1
    assert count({"term": {"reason": "OOMKilled"}, }, "serving-events-2026.11.24") >= 1
    rest(opensearch, "DELETE", f"/{logs}")


def test_a_new_daily_index_gets_its_ism_policy(opensearch: Cluster) -> None:
    probe = rest(opensearch, "GET", "/_plugins/_ism/explain", ok=(200, 400))
    if "total_managed_indices" not in probe:
        assert probe == {"error": "no handler found for uri [/_plugins/_ism/explain] and method [GET]"}, probe
        pytest.skip(f"blocked on this node: no _plugins/_ism/explain, {ISM_UNAVAILABLE}; tests/test_ism_attach.py "
                    "runs this check against the loopback server's ISM")
    ensure_setup(opensearch)
    ns, day = namespace(), "2033.03.03"  # dead-letter and events indices are per day only: one no other test uses
    indices = daily_indices(ns, day)
    for index in indices.values():
        rest(opensearch, "DELETE", f"/{index}", ok=(200, 404))
    try:
        check_setup_policies_manage_new_indices(opensearch, ns, day, "--replicas", "0", timeout=60)
    finally:
        for index in indices.values():
            rest(opensearch, "DELETE", f"/{index}", ok=(200, 404))


def test_compatibility_mode_is_seen_through(opensearch: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    if opensearch.major >= 3:
        pytest.skip("compatibility.override_main_response_version exists in 2.x only (3.0 removed it)")
    ensure_setup(opensearch)
    with cluster_settings(opensearch, {"compatibility.override_main_response_version": True}):
        assert rest(opensearch, "GET", "/")["version"]["number"] == "7.10.2"
        assert setup(opensearch, "--skip-retention") == 0
    out = capsys.readouterr().out
    assert f"OpenSearch {opensearch.version} at" in out and "GET / reports 7.10.2" in out


def test_setup_reads_the_shard_facts_and_warns_near_the_limit(opensearch: Cluster,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ensure_setup(opensearch)
    health = rest(opensearch, "GET", "/_cluster/health")
    open_shards = health["active_shards"] + health["unassigned_shards"] + health["initializing_shards"]
    with cluster_settings(opensearch, {"cluster.max_shards_per_node": open_shards + 50}):
        assert setup(opensearch, "--skip-retention", "--dry-run", "--namespaces", "30") == 0
    captured = capsys.readouterr()
    assert f"the limit is {open_shards + 50} (cluster.max_shards_per_node {open_shards + 50} x 1 data node(s))" \
        in captured.out
    assert "without retention servelog adds about 32 shards a day" in captured.err


def osd_fields(caps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Dashboards' field list from a _field_caps answer (a transcription of field_caps_response.ts
    readFieldCapsResponse and field_capabilities.ts getFieldCapabilities with the default metaFields)."""
    kinds = {**dict.fromkeys(("text", "keyword", "flat_object", "_id", "string"), "string"),
             **dict.fromkeys(("long", "integer"), "number"), **dict.fromkeys(("date", "date_nanos"), "date"),
             "boolean": "boolean", "object": "object", "_source": "_source"}
    fields: dict[str, dict[str, Any]] = {}
    for name, by_type in caps["fields"].items():
        types = list(by_type)
        aggregatable = any(c["aggregatable"] for c in by_type.values())
        field = {"name": name, "type": kinds.get(types[0], "unknown"), "esTypes": types,
                 "searchable": any(c["searchable"] for c in by_type.values()), "aggregatable": aggregatable,
                 "readFromDocValues": aggregatable and types[0] not in ("text", "geo_shape") and not types[0].startswith("_")}
        fields[name] = field
    for name, field in fields.items():
        parents = [".".join(name.split(".")[:i]) for i in range(len(name.split(".")) - 1, 0, -1)]
        first = next((fields[p] for p in parents if p in fields), None)
        if first is not None and first["type"] not in ("object", "nested"):
            field["subType"] = {"multi": {"parent": first["name"]}}
    listed = {n: f for n, f in fields.items() if not n.startswith("_") and f["type"] not in ("object", "nested")}
    overrides = {"_source": {"type": "_source"}, "_index": {"type": "string"}, "_type": {"type": "string"},
                 "_id": {"type": "string"}, "_score": {"type": "number", "searchable": False, "aggregatable": False}}
    for meta in ("_source", "_id", "_type", "_index", "_score"):
        listed[meta] = {"name": meta, "type": "string", "searchable": False, "aggregatable": False,
                        "readFromDocValues": False, **fields.get(meta, {}), **overrides[meta]}
    return listed


def test_the_shipped_index_pattern_fields_are_what_dashboards_derives_from_field_caps(opensearch: Cluster) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    day = "2031.01.01"  # a day of its own: these indices hold only this test's documents
    sources = {"servelog-logs": f"serving-logs-{ns}-{day}", "servelog-deadletter": f"serving-deadletter-{day}",
               "servelog-events": f"serving-events-{day}"}
    saved = {o["id"]: o for o in map(json.loads, (ROOT / "dashboards" / "servelog-1.0.0.ndjson").read_text().splitlines())}
    try:
        for pattern_id, index in sources.items():
            rest(opensearch, "PUT", f"/{index}")
            caps = rest(opensearch, "GET", f"/{index}/_field_caps?fields=*")
            expected = {n: f for n, f in osd_fields(caps).items() if not n.endswith(".")}  # 2.19 lists a "labels." too
            shipped = {f["name"]: {k: v for k, v in f.items() if k not in ("count", "scripted")}
                       for f in json.loads(saved[pattern_id]["attributes"]["fields"])}
            assert shipped == expected, (pattern_id, set(shipped.keys() ^ expected.keys()),
                                         [n for n in shipped if n in expected and shipped[n] != expected[n]])
    finally:
        for index in sources.values():
            rest(opensearch, "DELETE", f"/{index}", ok=(200, 404))


def test_saved_objects_are_served_by_a_real_dashboards(opensearch: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    if not opensearch.dashboards:
        pytest.skip("no OpenSearch Dashboards here (set SERVELOG_E2E_DASHBOARDS_URL with SERVELOG_E2E_OPENSEARCH_URL); "
                    "tests/test_setup.py covers the import against the loopback Dashboards")
    assert main(["setup", "--opensearch-url", opensearch.url, "--dashboards-url", opensearch.dashboards,
                 "--skip-retention", "--replicas", "0"]) == 0
    capsys.readouterr()
    for kind, object_id in (("search", "servelog-search-all"), ("index-pattern", "servelog-deadletter"),
                            ("dashboard", "servelog-dashboard-model-deployment-logs")):
        with urllib.request.urlopen(f"{opensearch.dashboards}/api/saved_objects/{kind}/{object_id}", timeout=30) as got:
            found = json.loads(got.read())
        assert found["id"] == object_id and "error" not in found
