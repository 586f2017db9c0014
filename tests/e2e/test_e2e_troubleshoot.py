"""Troubleshooting a deployment against a real OpenSearch: its history, and ``logs`` falling back to the indexed logs.

- ``servelog events --once`` reads the loopback cluster (an OOM-killed model server in a crash loop,
  its BackOff event growing between two runs) into a real node with servelog's events templates;
  ``servelog history`` reads it back through ``search_after`` on ``(timestamp, doc_id)``: folded,
  newest first, with the transitions.
- The collector indexes a deployment's lines into the real node; the deployment is then stopped in
  the loopback cluster, and ``servelog logs NAME`` (``--source auto``) says so and prints them from
  OpenSearch: each line exactly once (the ledger).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main
from tests.deployment import builders as b
from tests.deployment.test_state_stories import oom_story
from tests.e2e.support import ensure_setup, namespace, rest, run_once
from tests.support.e2e import Cluster
from tests.support.kube_server import KubeApiServer
from tests.support.kubelet import KubeletSim
from tests.troubleshoot.conftest import write_kubeconfig

pytestmark = pytest.mark.e2e
UID = "0f1e2d3c-7777-8888-9999-444455556666"
POD = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"


def servelog(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_history_indexed_from_the_cluster_is_read_back_folded_and_newest_first(
        opensearch: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_setup(opensearch)
    index = f"serving-events-tr-{uuid.uuid4().hex[:8]}-{{date}}"
    pattern = index.replace("{date}", "*")
    with KubeApiServer() as kube:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
        pod, events = oom_story()
        kube.add_isvc(b.isvc(conditions=b.failed_conditions("Container failed with: ."), latest_created=2, latest_ready=1,
                             generation=2))
        kube.add_pod(pod)
        for event in events:
            kube.add_event(event)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update({"SERVELOG_KUBERNETES__KUBECONFIG": str(kubeconfig), "SERVELOG_HISTORY__INDEX": index,
                    "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1"})
        command = [sys.executable, "-m", "collector", "events", "--once", "--opensearch-url", opensearch.url,
                   "--state-dir", str(tmp_path / "state"), "--listen", ""]
        subprocess.run(command, env=env, capture_output=True, timeout=120, check=True)
        kube.repeat_event(next(e for e in kube.events() if e["reason"] == "BackOff"), "2026-11-24T09:22:43Z")
        subprocess.run(command, env=env, capture_output=True, timeout=120, check=True)
        kube.drop_streams()
    rest(opensearch, "POST", f"/{pattern}/_refresh")
    status, out, err = servelog(capsys, "history", b.NAME, "-n", b.NAMESPACE, "--opensearch-url", opensearch.url,
                                "--index", pattern, "--output", "json")
    assert status == 0, err
    history: dict[str, Any] = json.loads(out)
    entries = history["entries"]
    backoffs = [e for e in entries if e["what"] == "BackOff"]
    assert [e["count"] for e in backoffs] == [10], "two occurrences, one entry with the highest count"
    stamps = [e["time"] for e in entries]
    assert stamps == sorted(stamps, reverse=True) and len(entries) > 10
    assert any(e["what"] == "OOMKilled" and "exit 137" in e["message"] for e in entries)
    assert history["transitions"][0]["status"] == "FAILED"
    raw = rest(opensearch, "POST", f"/{pattern}/_count", {"query": {"term": {"serving_name": b.NAME}}})["count"]
    assert raw > len(entries), "the index holds every occurrence; the history folds them"


def test_logs_of_a_stopped_deployment_come_from_opensearch_each_line_once(
        opensearch: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    with KubeletSim(tmp_path / "pods") as sim:
        for container in ("storage-initializer", "kserve-container"):
            sim.container(ns, POD, UID, container).write_many([f"{container} line {n}" for n in range(150)])
        assert run_once(opensearch, sim.root, tmp_path / "state")["indexed"] == 300
    rest(opensearch, "POST", f"/serving-logs-{ns}-*/_refresh")
    with KubeApiServer() as kube:
        kube.add_isvc(b.stopped(b.isvc(name="iris", namespace=ns)))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
        status, out, err = servelog(capsys, "logs", "iris", "-n", ns, "--opensearch-url", opensearch.url, "--json",
                                    "--limit", "0", "--kubeconfig", str(kubeconfig))
    assert status == 0, err
    assert err == "servelog logs: iris is STOPPED: no instance is running: reading its historical logs from OpenSearch\n"
    printed = [json.loads(line)["source"] for line in out.splitlines()]
    report = sim.ledger.compare(printed)
    assert report.exactly_once, str(report)
