"""``servelog demo --history-dir`` tells the workload's history, and ``servelog events --from-files`` indexes it.

The story a user opening Dashboards must find next to the logs: an OOMKilled restart (exit 137), a
readiness probe failure, a revision whose image is not found, a GPU revision that cannot be
scheduled, and a successful rollout, each with the serving, model and version its logs carry.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.demo import command
from collector.demo.history import initial_history
from collector.sources.history.events import view_event
from collector.sources.history.feeds import read_documents

ROOT = Path(__file__).resolve().parents[1]


def run_demo(tmp: Path, *extra: str) -> Path:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--log-root", str(tmp / "pods"), "--metadata-file", str(tmp / "pods.yaml"), "--history-dir",
                              str(tmp / "history"), "--once", "--lines", "1200", *extra])
    assert command.run(args) == 0
    return tmp / "history"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    tmp = tmp_path_factory.mktemp("demo-history")
    history = run_demo(tmp)
    done = subprocess.run([sys.executable, "-m", "collector", "events", "--once", "--output", "stdout", "--from-files",
                           str(history), "--state-dir", str(tmp / "state"), "--listen", ""],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    yield history, [json.loads(line)["source"] for line in done.stdout.splitlines()]


def find(docs: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    return [d for d in docs if all(d.get(k) == v for k, v in fields.items())]


def test_the_history_files_are_api_shaped_lists(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    history, _ = demo
    assert sorted(p.name for p in history.iterdir()) == ["000-pods.json", "001-inferenceservices.json", "002-events.json",
                                                         "010-pods.json", "011-inferenceservices.json", "012-events.json"]
    found = read_documents(history)
    assert not found["other"]
    assert all(view_event(e) is not None for e in found["Event"]), "every event has a time, whatever its shape"
    shapes = {e["apiVersion"] for e in found["Event"]}
    assert shapes == {"v1", "events.k8s.io/v1"}
    kubelet = [e for e in found["Event"] if e["apiVersion"] == "v1" and e.get("source", {}).get("component") == "kubelet"]
    assert kubelet and all(e["eventTime"] is None for e in kubelet), "the old recorder leaves eventTime null"


def test_the_oomkilled_restart_is_told_by_the_pod_status_and_the_inferenceservice(
        demo: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = demo
    (oom,) = find(docs, event_kind="termination", reason="OOMKilled")
    assert (oom["serving_name"], oom["model_version"], oom["component"], oom["container_name"], oom["exit_code"]) == (
        "sentiment", "3", "predictor", "kserve-container", 137)
    assert find(docs, event_kind="restart", serving_name="sentiment", restart_count=1)
    (failed_load,) = find(docs, event_kind="model_status", reason="ModelLoadFailed")
    assert failed_load["exit_code"] == 137 and failed_load["type"] == "Warning"
    assert find(docs, event_kind="model_status", serving_name="sentiment", reason="Loaded"), "and it recovered"
    started = find(docs, event_kind="event", reason="Started", serving_name="sentiment", container_name="kserve-container")
    assert sorted(d["count"] for d in started) == [1, 2], "the container's Started event counted its second start"


def test_a_probe_failure_an_image_not_found_and_an_unschedulable_gpu_revision(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = demo
    probes = find(docs, event_kind="event", reason="Unhealthy")
    assert {(d["serving_name"], d["model_version"]) for d in probes} >= {("fraud-detector", "2"), ("sentiment", "3")}
    assert all(d["count"] == 2 and d["type"] == "Warning" for d in probes)
    (pull,) = find(docs, event_kind="waiting", reason="ImagePullBackOff")
    assert (pull["serving_name"], pull["model_version"]) == ("fraud-detector", "3")
    assert any("not found" in d["message"] for d in find(docs, event_kind="event", reason="Failed", model_version="3"))
    revision_failed = find(docs, event_kind="isvc_condition", serving_name="fraud-detector", reason="RevisionFailed")
    assert revision_failed and all(d["model_version"] == "3" for d in revision_failed)
    (unschedulable,) = find(docs, event_kind="pod_condition", reason="Unschedulable")
    assert unschedulable["serving_name"] == "summarizer" and "nvidia.com/gpu" in unschedulable["message"]
    (scheduling,) = find(docs, event_kind="event", reason="FailedScheduling")
    assert scheduling["count"] == 3 and scheduling["source"] == "default-scheduler"


def test_the_successful_rollout_moves_the_traffic_to_version_2(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = demo
    revisions = find(docs, event_kind="revision", serving_name="fraud-detector", component="predictor")
    assert [(d["reason"], d["traffic"]) for d in sorted(revisions, key=lambda d: (d["timestamp"], d["revision"]))] == [
        ("RevisionCreated", ["fraud-detector-predictor-00001=100"]),
        ("RevisionReady", ["fraud-detector-predictor-00002=100"]),
        ("RevisionCreated", ["fraud-detector-predictor-00002=100"]),  # 00003 created, never ready
    ]
    assert find(docs, event_kind="event", reason="InferenceServiceReady", serving_name="fraud-detector")


def test_every_history_document_carries_the_logs_model_fields(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = demo
    assert len(docs) > 100
    assert len({d["doc_id"] for d in docs}) == len(docs)
    for doc in docs:
        assert doc["serving_name"] in {"fraud-detector", "sentiment", "summarizer"}, doc
        assert doc["namespace"] in {"team-risk", "team-nlp"}
        if doc["event_kind"] not in ("event", "isvc_condition") or doc.get("involved_kind") == "Pod":
            assert doc.get("model_version"), doc


def test_the_history_is_deterministic_for_a_start_time() -> None:
    assert initial_history(1795510800 * 10**9) == initial_history(1795510800 * 10**9)


def test_a_new_demo_run_starts_its_history_afresh(tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.mkdir()
    (history / "099-stale.json").write_text("{}")
    run_demo(tmp_path, "--lines", "50")  # too short for the OOM kill
    assert sorted(p.name for p in history.iterdir()) == ["000-pods.json", "001-inferenceservices.json", "002-events.json"]


def test_the_readers_of_the_history_tell_the_demos_story(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    """The contract holds end to end: issue 11's pure readers fold what this collector wrote."""
    from collector.deployment import Status, deployment_history

    _, docs = demo
    sentiment = deployment_history([d for d in docs if d["serving_name"] == "sentiment"], serving_name="sentiment")
    statuses = [t.status for t in reversed(sentiment.transitions)]
    assert Status.FAILED in statuses and statuses[-1] == Status.RUNNING, "OOMKilled, then running again"
    assert any(e.kind == "termination" and "137" in e.message for e in sentiment.entries)
    summarizer = deployment_history([d for d in docs if d["serving_name"] == "summarizer"], serving_name="summarizer")
    assert summarizer.transitions[0].status == Status.FAILED
    assert any("Insufficient nvidia.com/gpu" in e.message for e in summarizer.entries)
