"""The history's assets: the events mapping holds every field the collector writes, and Dashboards shows it.

The mapping is checked against the contract's field list (:data:`collector.model.HISTORY_FIELDS`)
and against the collector's real output for the history fixtures; the saved objects against what a
user troubleshooting a deployment looks for (history above the logs, failures, the same controls).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from collector.model import EVENTS_INDEX_PATTERN, HISTORY_FIELDS, HISTORY_KINDS
from collector.setup import assets
from tests.test_assets import compatible, properties

ROOT = Path(__file__).resolve().parents[1]
SAVED = {o["id"]: o for o in assets.load_saved_objects(ROOT).objects}


def search_source(object_id: str) -> dict[str, Any]:
    return dict(json.loads(SAVED[object_id]["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]))


def test_every_history_field_is_mapped_with_the_contracts_type() -> None:
    mapped = properties(EVENTS_INDEX_PATTERN)
    assert set(HISTORY_FIELDS) <= set(mapped), set(HISTORY_FIELDS) - set(mapped)
    types = {name: spec["type"] for name, spec in mapped.items()}
    for name in ("timestamp", "first_timestamp", "last_timestamp", "started_at", "finished_at"):
        assert types[name] == "date_nanos", name
    for name in ("count", "exit_code", "signal", "restart_count", "failed_copies", "total_copies"):
        assert types[name] == "integer", name
    for name in ("event_kind", "reason", "type", "source", "condition_type", "condition_status", "involved_kind",
                 "involved_name", "doc_id", "revision", "traffic", "transition_status"):
        assert types[name] == "keyword", name
    assert types["message"] == "text" and mapped["message"]["fields"]["keyword"]["type"] == "keyword"
    assert types["init_container"] == "boolean"


def test_the_collectors_real_output_fits_the_events_mapping(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "collector", "events", "--once", "--output", "stdout", "--from-files",
                           str(ROOT / "tests" / "fixtures" / "history"), "--state-dir", str(tmp_path), "--listen", ""],
                          capture_output=True, text=True, check=True, timeout=60)
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    mapped = properties(EVENTS_INDEX_PATTERN)
    assert {d["source"]["event_kind"] for d in documents} == set(HISTORY_KINDS)
    for document in documents:
        assert document["index"] == "serving-events-2026.11.24" and document["id"] == document["source"]["doc_id"]
        for name, value in document["source"].items():
            assert name in mapped, f"unmapped field {name}"
            values = value if isinstance(value, list) else [value]
            assert all(compatible(v, mapped[name]) for v in values), (name, value)


def test_the_history_search_shows_what_happened_to_which_version_newest_first() -> None:
    history = SAVED["servelog-search-deployment-history"]
    assert history["attributes"]["title"] == "Deployment history"
    assert history["attributes"]["columns"] == ["serving_name", "model_version", "component", "container_name", "reason",
                                                "message"]
    assert history["attributes"]["sort"] == [["timestamp", "desc"]]
    assert [r["id"] for r in history["references"]] == ["servelog-events"]


def test_the_failures_search_finds_every_kind_of_failure_the_issue_names() -> None:
    query = search_source("servelog-search-deployment-failures")["query"]["query"]
    assert "event_kind:event and type:Warning" in query, "Warning events"
    for reason in ("OOMKilled", "Unhealthy", "ErrImagePull", "ImagePullBackOff", "Unschedulable", "FailedScheduling",
                   "CrashLoopBackOff", "BackOff", "ModelLoadFailed", "RevisionFailed", "Restarted"):
        assert reason in query, reason
    columns = SAVED["servelog-search-deployment-failures"]["attributes"]["columns"]
    assert {"event_kind", "reason", "exit_code", "model_version"} <= set(columns)


def test_the_dashboard_shows_the_history_above_the_logs_under_the_same_controls() -> None:
    board = SAVED["servelog-dashboard-model-deployment-logs"]
    panels = json.loads(board["attributes"]["panelsJSON"])
    placed = {ref["id"]: panel["gridData"] for ref in board["references"] for panel in panels
              if panel["panelRefName"] == ref["name"]}
    assert placed["servelog-vis-controls"]["y"] == 0
    history_bottom = max(placed[i]["y"] + placed[i]["h"] for i in ("servelog-search-deployment-history",
                                                                  "servelog-search-deployment-failures"))
    assert history_bottom <= min(placed[i]["y"] for i in ("servelog-search-all", "servelog-search-errors",
                                                          "servelog-vis-volume-by-version"))
    controls = json.loads(SAVED["servelog-vis-controls"]["attributes"]["visState"])["params"]["controls"]
    assert [c["fieldName"] for c in controls] == ["serving_name", "model_name", "model_version", "component"]
    assert {r["id"] for r in SAVED["servelog-vis-controls"]["references"]} == {"servelog-events"}
    # a control's filter is on its field name: both index patterns map every controlled field the same way
    for field in ("serving_name", "model_name", "model_version", "component"):
        assert properties("serving-logs-*")[field]["type"] == properties(EVENTS_INDEX_PATTERN)[field]["type"] == "keyword"
