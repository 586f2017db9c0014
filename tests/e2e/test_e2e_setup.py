"""``servelog setup`` against a real OpenSearch 2.19 and OpenSearch Dashboards 2.19.

The cluster comes from the ``e2e_cluster`` fixture (tests/e2e/conftest.py): the one named by
``SERVELOG_E2E_OPENSEARCH_URL`` / ``SERVELOG_E2E_DASHBOARDS_URL``, else containers started with
testcontainers on a shared network; skipped with the reason when there is no Docker engine.

What only a real server can tell: that the second run finds every asset unchanged (the servers
hand templates, policies and saved objects back in their own normal form), that indices created
from the templates get the intended mapping, settings and ISM policy, that the sample documents
are all accepted and searchable by the fields the saved objects use, and that Dashboards serves
the imported saved search and dashboard.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest

from collector.cli import main
from collector.errors import SinkRejected
from collector.settings import OpenSearchSettings
from collector.sinks.opensearch.client import OpenSearchClient
from tests.support.wait import wait_until
from tests.test_setup import bulk_body, report, sample_documents

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings reads every SERVELOG_* variable as a setting, SERVELOG_E2E_* included; the
    # session-scoped e2e_cluster fixture has read those already (wider scopes are set up first)
    for key in list(os.environ):
        if key.startswith("SERVELOG_"):
            monkeypatch.delenv(key)


def discard(client: OpenSearchClient, path: str) -> None:
    try:
        client.request("DELETE", path)
    except SinkRejected as exc:  # already gone (the test failed before creating it)
        if exc.status != 404:
            raise


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # GET needs no osd-xsrf
        return json.loads(response.read())


def test_setup_on_a_real_cluster(e2e_cluster: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, dashboards = e2e_cluster["opensearch"], e2e_cluster["dashboards"]
    args = ["setup", "--opensearch-url", url, "--replicas", "0"]
    args += ["--dashboards-url", dashboards] if dashboards else ["--skip-dashboards"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    second = report(capsys.readouterr().out)
    assert second and set(second.values()) == {"unchanged"}, {k: v for k, v in second.items() if v != "unchanged"}

    namespace = f"e2e-setup-{os.getpid()}"
    documents = sample_documents(namespace)
    index = f"serving-logs-{namespace}-2026.11.24"
    client = OpenSearchClient(OpenSearchSettings(url=url))
    try:
        answer = client.bulk(bulk_body(documents, id_prefix=namespace))
        assert not answer["errors"], answer
        logs = f"serving-logs-{namespace}-*"
        client.request("POST", f"/{logs},serving-deadletter-*,serving-events-*/_refresh")

        def count(query: dict[str, Any], pattern: str = logs) -> int:
            return int(client.request("POST", f"/{pattern}/_count", body={"query": query})["count"])

        assert count({"match_all": {}}) == 4
        assert count({"range": {"model_version.numeric": {"gte": 3}}}) == 2, "3 and 20261124; v2 ignored, not refused"
        assert count({"term": {"model_version": "v2"}}) == 1
        assert count({"term": {"labels": "iris"}}) == 2, "flat_object: any label value"
        assert count({"term": {"labels.app.kubernetes.io/name": "iris"}}) == 2, "flat_object: a dotted label key"
        assert count({"match": {"message": "traceback"}}) == 1
        assert count({"range": {"line_count": {"gt": 1}}}) == 1
        assert count({"term": {"reason": "OOMKilled"}}, "serving-events-*") >= 1

        mapping = client.request("GET", f"/{index}/_mapping")[index]["mappings"]
        assert mapping["properties"]["timestamp"]["type"] == "date_nanos"
        assert mapping["properties"]["labels"]["type"] == "flat_object"
        assert "unknown_field" not in mapping["properties"], "dynamic: false keeps unknown fields out of the mapping"
        settings = client.request("GET", f"/{index}/_settings")[index]["settings"]["index"]
        assert settings["codec"] == "best_compression" and settings["number_of_replicas"] == "0"
        hit = client.request("POST", f"/{index}/_search", body={"query": {"ids": {"values": [f"{namespace}-2"]}}})
        assert hit["hits"]["hits"][0]["_source"]["unknown_field"] == {"kept": "in _source only"}

        def managed() -> bool:
            explained = client.request("GET", f"/_plugins/_ism/explain/{index}").get(index, {})
            return "servelog-logs-retention" in (explained.get("policy_id"),
                                                 explained.get("index.plugins.index_state_management.policy_id"))

        wait_until(managed, timeout=60, interval=1)  # the policy's ism_template attached it to the new index
    finally:
        discard(client, f"/{index}")
        for number, (target, _) in enumerate(documents):
            if not target.startswith("serving-logs-"):  # shared daily indices: remove only this run's documents
                discard(client, f"/{target}/_doc/{namespace}-{number}")
        client.close()

    if dashboards:
        for kind, object_id in (("search", "servelog-search-all"), ("search", "servelog-search-errors"),
                                ("dashboard", "servelog-dashboard-model-deployment-logs")):
            found = get_json(f"{dashboards}/api/saved_objects/{kind}/{object_id}")
            assert found["id"] == object_id and "error" not in found
        patterns = get_json(f"{dashboards}/api/saved_objects/_find?type=index-pattern&per_page=100")
        titles = {o["attributes"]["title"] for o in patterns["saved_objects"]}
        assert {"serving-logs-*", "serving-deadletter-*", "serving-events-*"} <= titles
