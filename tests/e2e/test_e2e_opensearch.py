"""End to end against a real OpenSearch and Dashboards: setup, index a corpus exactly once, read it back.

Runs where Docker is available (testcontainers) or against ``SERVELOG_E2E_OPENSEARCH_URL``; skipped
with the reason otherwise (see conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from collector.settings import OpenSearchSettings
from collector.sinks.opensearch.client import OpenSearchClient
from tests.e2e.conftest import Cluster
from tests.support.logwriter import ContainerLog, Ledger

pytestmark = pytest.mark.e2e


def run_once(tmp_path: Path, url: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--log-root", str(tmp_path / "pods"),
                           "--state-dir", str(tmp_path / "state"), "--opensearch-url", url, "--listen", ""],
                          env=env, capture_output=True, timeout=300, check=True)
    line = [x for x in done.stderr.splitlines() if x.startswith(b'{"summary"')][-1]
    return json.loads(line)["summary"]


def test_setup_index_and_read_back(opensearch: Cluster, tmp_path: Path) -> None:
    url, dashboards = opensearch.url, opensearch.dashboards

    ledger = Ledger()
    namespace = f"e2e-{os.getpid()}"
    log = ContainerLog(tmp_path / "pods", namespace=namespace, pod="iris-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                       uid="0f1e2d3c-1111-2222-3333-444455556666", container="kserve-container", ledger=ledger)
    log.write_many([f"line {i}" for i in range(500)])
    log.write_traceback(["Traceback (most recent call last):", '  File "m.py", line 1, in f', "ValueError: x"])
    log.write(b"bad \xff utf-8", expect="bad \ufffd utf-8")
    log.write_long(40_000, 1024 * 1024)
    log.write('{"level":"error","labels":{"a":1},"timestamp":"not a date"}')
    summary = run_once(tmp_path, url)
    assert summary["dead_lettered"] == 0 and summary["indexed"] == len(ledger)

    client = OpenSearchClient(OpenSearchSettings(url=url))
    pattern = f"serving-logs-{namespace}-*"
    client.request("POST", f"/{pattern}/_refresh")
    hits = client.request("POST", f"/{pattern}/_search", body={"size": 10000, "sort": [{"timestamp": "asc"}]})
    docs = [h["_source"] for h in hits["hits"]["hits"]]
    assert ledger.compare(docs).exactly_once
    mapping = client.request("GET", f"/{pattern}/_mapping")
    properties = next(iter(mapping.values()))["mappings"]["properties"]
    assert properties["timestamp"]["type"] == "date_nanos" and properties["labels"]["type"] == "flat_object"
    by_version = client.request("POST", f"/{pattern}/_count", body={"query": {"term": {"container_name": "kserve-container"}}})
    assert by_version["count"] == len(ledger)

    (tmp_path / "state" / "checkpoints.json").unlink()
    again = run_once(tmp_path, url)
    assert again["indexed"] == 0 and again["already_present"] == len(ledger), "a replay is all 409s"

    if dashboards:
        for kind, object_id in (("search", "servelog-search-all"), ("dashboard", "servelog-dashboard-model-deployment-logs")):
            with urllib.request.urlopen(f"{dashboards}/api/saved_objects/{kind}/{object_id}", timeout=30) as response:
                assert json.loads(response.read())["id"] == object_id
