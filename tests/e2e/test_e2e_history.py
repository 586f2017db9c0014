"""End to end against a real OpenSearch: the deployment history indexed with its mapping, read back, replayed.

The history fixtures (real Event, Pod and InferenceService shapes) go through ``servelog events
--once --from-files`` into a real node with the events templates installed; the documents must be
there once, typed as the mapping says (``date_nanos``, keywords, integers, booleans), findable the
way readers look (failures of one version, sorted by ``(timestamp, doc_id)``), and a second run must
be all 409s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.settings import OpenSearchSettings
from collector.setup import assets
from collector.sinks.opensearch.client import OpenSearchClient
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run_once(tmp: Path, url: str, index: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env["SERVELOG_HISTORY__INDEX"] = index
    done = subprocess.run([sys.executable, "-m", "collector", "events", "--once", "--from-files", str(tmp / "history"),
                           "--state-dir", str(tmp / "state"), "--opensearch-url", url, "--listen", ""],
                          env=env, capture_output=True, timeout=300, check=True)
    line = [x for x in done.stderr.splitlines() if x.startswith(b'{"summary"')][-1]
    return dict(json.loads(line)["summary"])


def test_history_is_indexed_with_its_mapping_read_back_and_replayed_as_409s(opensearch: Cluster, tmp_path: Path) -> None:
    client = OpenSearchClient(OpenSearchSettings(url=opensearch.url))
    for template in assets.load_templates(ROOT):
        if template.name.startswith("servelog-events"):
            client.request("PUT", template.path, body=template.body)
    shutil.copytree(ROOT / "tests" / "fixtures" / "history", tmp_path / "history")
    index = f"serving-events-e2e-{os.getpid()}-{{date}}"
    pattern = index.replace("{date}", "*")

    summary = run_once(tmp_path, opensearch.url, index)
    assert summary["dead_lettered"] == 0 and summary["indexed"] == summary["documents"] > 40
    client.request("POST", f"/{pattern}/_refresh")
    hits = client.request("POST", f"/{pattern}/_search", body={
        "size": 1000, "sort": [{"timestamp": "asc"}, {"doc_id": "asc"}]})["hits"]["hits"]
    docs = [h["_source"] for h in hits]
    assert len(docs) == summary["indexed"]
    assert all(h["_id"] == h["_source"]["doc_id"] for h in hits)
    stamps = [(d["timestamp"], d["doc_id"]) for d in docs]
    assert stamps == sorted(stamps), "readers page by (timestamp, doc_id)"

    mapping = next(iter(client.request("GET", f"/{pattern}/_mapping").values()))["mappings"]
    properties = mapping["properties"]
    assert mapping["dynamic"] in (False, "false")
    assert properties["timestamp"]["type"] == "date_nanos" and properties["finished_at"]["type"] == "date_nanos"
    assert {properties[f]["type"] for f in ("reason", "event_kind", "serving_name", "doc_id", "traffic")} == {"keyword"}
    assert properties["exit_code"]["type"] == "integer" and properties["init_container"]["type"] == "boolean"
    assert properties["message"]["type"] == "text"

    oom = client.request("POST", f"/{pattern}/_search", body={"query": {"bool": {"filter": [
        {"term": {"event_kind": "termination"}}, {"term": {"exit_code": 137}}, {"term": {"serving_name": "sklearn-iris"}},
        {"term": {"model_version": "2"}}]}}})["hits"]["hits"]
    assert [h["_source"]["reason"] for h in oom] == ["OOMKilled"]
    failures = client.request("POST", f"/{pattern}/_count", body={"query": {"bool": {"filter": [
        {"term": {"type": "Warning"}}, {"range": {"model_version.numeric": {"gte": 3}}}]}}})
    assert failures["count"] >= 3, "the image that was not found, per version"
    gpu = {"query": {"match_phrase": {"message": "Insufficient nvidia.com/gpu"}}}
    unschedulable = client.request("POST", f"/{pattern}/_search", body=gpu)
    assert {h["_source"]["serving_name"] for h in unschedulable["hits"]["hits"]} == {"llm"}

    (tmp_path / "state" / "checkpoints.json").unlink()
    again = run_once(tmp_path, opensearch.url, index)
    assert again["indexed"] == 0 and again["already_present"] == summary["indexed"], "a replay is all 409s"
