"""``servelog history`` end to end: ``servelog events --once`` indexes the loopback cluster's history into the
loopback OpenSearch (with the shipped mappings), and ``servelog history`` reads it back, folded and ordered.

The story is an OOM-killed model server in a crash loop (seed 004): the kubelet's BackOff event
grows between two runs of the history collector, so the index holds two occurrences of it, which
the history folds into one entry with the highest count, newest first, with the status transitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main
from tests.deployment import builders as b
from tests.deployment.test_state_stories import oom_story
from tests.support.opensearch_server import FakeOpenSearch
from tests.troubleshoot.conftest import Cluster

pytestmark = pytest.mark.slow
FOLD = "\N{MULTIPLICATION SIGN}"


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch(validate_mappings=True) as fos:
        assert main(["setup", "--opensearch-url", fos.url, "--skip-dashboards"]) == 0
        yield fos


def index_history(cluster: Cluster, opensearch: FakeOpenSearch, state: Path) -> dict[str, Any]:
    """``servelog events --once`` from the loopback cluster: its summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env.update({"SERVELOG_KUBERNETES__KUBECONFIG": str(cluster.kubeconfig), "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1"})
    done = subprocess.run([sys.executable, "-m", "collector", "events", "--once", "--opensearch-url", opensearch.url,
                           "--state-dir", str(state), "--listen", ""], env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    line = [x for x in done.stderr.splitlines() if x.startswith(b'{"summary"')][-1]
    summary: dict[str, Any] = json.loads(line)["summary"]
    return summary


def refresh(opensearch: FakeOpenSearch) -> None:
    request = urllib.request.Request(f"{opensearch.url}/serving-events-*/_refresh", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_history_indexed_by_servelog_events_is_folded_newest_first_with_its_transitions(
        cluster: Cluster, opensearch: FakeOpenSearch, tmp_path: Path) -> None:
    pod, events = oom_story()
    cluster.load(isvc=b.isvc(conditions=b.failed_conditions("Container failed with: ."), latest_created=2, latest_ready=1,
                             generation=2), pods=[pod], events=events)
    first = index_history(cluster, opensearch, tmp_path / "state")
    assert first["indexed"] > 10 and first["dead_lettered"] == 0
    backoff = next(e for e in cluster.kube.events() if e["reason"] == "BackOff")
    cluster.kube.repeat_event(backoff, "2026-11-24T09:22:43Z")  # the model server crashed once more
    assert index_history(cluster, opensearch, tmp_path / "state")["indexed"] >= 1
    indexed = [d for d in opensearch.all_sources("serving-events-*") if d.get("reason") == "BackOff"]
    assert sorted(d["count"] for d in indexed) == [9, 10], "two occurrences of the BackOff event are indexed"
    refresh(opensearch)

    ran = cluster.servelog("history", b.NAME, "-n", b.NAMESPACE, "--opensearch-url", opensearch.url, "--output", "json",
                           cluster=False)
    assert ran.status == 0, ran.err
    history = ran.json()
    assert list(history) == ["serving_name", "namespace", "transitions", "entries"]
    entries = history["entries"]
    backoffs = [e for e in entries if e["what"] == "BackOff"]
    assert len(backoffs) == 1 and backoffs[0]["count"] == 10, "folded into one entry with the highest count"
    assert backoffs[0]["time"].startswith("2026-11-24T09:22:43") and backoffs[0]["first_time"].startswith("2026-11-24T09:13:05")
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True), "newest first"
    oom = [e for e in entries if e["what"] == "OOMKilled"]
    assert oom and oom[0]["container"] == "kserve-container" and "exit 137" in oom[0]["message"]
    assert history["transitions"][0]["status"] == "FAILED"
    assert {e["model_version"] for e in entries if e["kind"] != "isvc_condition"} <= {"2", None}

    text = cluster.servelog("history", b.NAME, "-n", b.NAMESPACE, "--opensearch-url", opensearch.url, cluster=False)
    assert text.status == 0 and "\033[" not in text.out
    assert f"Back-off restarting failed container kserve-container in pod {pod['metadata']['name']}" in text.out
    assert f"{FOLD}10" in text.out
    header = next(line for line in text.out.splitlines() if line.startswith("TIME (UTC)") and "VERSION" in line)
    row = next(line for line in text.out.splitlines() if "BackOff" in line)
    assert row.index("BackOff") == header.index("WHAT"), "columns aligned under their headers"

    later = cluster.servelog("history", b.NAME, "-n", b.NAMESPACE, "--opensearch-url", opensearch.url, "--since", "2026-12-01",
                             cluster=False)
    assert later.status == 0 and "nothing recorded for since 2026-12-01" in later.out
    none = cluster.servelog("history", "never-deployed", "--opensearch-url", opensearch.url, cluster=False)
    assert none.status == 5 and "no history recorded for never-deployed" in none.err
