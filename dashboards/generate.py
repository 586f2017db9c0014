"""Generates ``servelog-1.0.0.ndjson``: OpenSearch Dashboards 2.x saved objects for servelog.

Saved objects embed JSON inside strings (``searchSourceJSON``, ``visState``, ``panelsJSON``), which
is miserable to edit by hand; this script is the source of truth and the NDJSON is its output
(``python dashboards/generate.py``; a test fails when they drift). Ids are fixed so that importing
with ``overwrite=true`` updates in place, and there is no export trailer or cached field list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("servelog-1.0.0.ndjson")
VERSION = "1.0.0"

LOGS, DEADLETTER, EVENTS = "servelog-logs", "servelog-deadletter", "servelog-events"
COLUMNS = ["serving_name", "model_version", "component", "container_name", "level", "message"]


def index_pattern(object_id: str, title: str) -> dict[str, Any]:
    return {"type": "index-pattern", "id": object_id, "attributes": {"title": title, "timeFieldName": "timestamp"},
            "references": [], "migrationVersion": {"index-pattern": "7.6.0"}}


def phrase_filter(field: str, value: str) -> dict[str, Any]:
    return {"meta": {"key": field, "type": "phrase", "params": {"query": value}, "negate": False, "disabled": False,
                     "alias": None, "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index"},
            "query": {"match_phrase": {field: value}}, "$state": {"store": "appState"}}


def search(object_id: str, title: str, query: str, *, pattern: str = LOGS, columns: list[str] | None = None,
           filters: list[dict[str, Any]] | None = None, description: str = "") -> dict[str, Any]:
    source = {"query": {"language": "kuery", "query": query}, "filter": filters or [],
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    references = [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": pattern}]
    references += [{"name": f["meta"]["indexRefName"], "type": "index-pattern", "id": pattern} for f in filters or []]
    return {"type": "search", "id": object_id, "attributes": {
        "title": title, "description": description, "columns": columns or COLUMNS, "sort": [["timestamp", "desc"]],
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)}}, "references": references,
        "migrationVersion": {"search": "7.9.3"}}


def visualization(object_id: str, title: str, vis_state: dict[str, Any], *, query: str = "",
                  pattern: str | None = LOGS) -> dict[str, Any]:
    source: dict[str, Any] = {"query": {"language": "kuery", "query": query}, "filter": []}
    references = []
    if pattern is not None:
        source["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.index"
        references.append({"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
                           "id": pattern})
    return {"type": "visualization", "id": object_id, "attributes": {
        "title": title, "visState": json.dumps({"title": title, **vis_state}), "uiStateJSON": "{}", "description": "",
        "version": 1, "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)}},
        "references": references, "migrationVersion": {"visualization": "7.10.0"}}


def volume_by_version() -> dict[str, Any]:
    return visualization("servelog-vis-volume-by-version", "Log volume by model version", {
        "type": "histogram",
        "params": {"type": "histogram", "addLegend": True, "legendPosition": "right", "addTooltip": True},
        "aggs": [
            {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}},
            {"id": "2", "enabled": True, "type": "date_histogram", "schema": "segment",
             "params": {"field": "timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}}},
            {"id": "3", "enabled": True, "type": "terms", "schema": "group",
             "params": {"field": "model_version", "size": 10, "order": "desc", "orderBy": "1"}},
        ]})


def errors_by_component() -> dict[str, Any]:
    return visualization("servelog-vis-errors-by-component", "Errors by component and container", {
        "type": "table", "params": {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False},
        "aggs": [
            {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}},
            {"id": "2", "enabled": True, "type": "terms", "schema": "bucket",
             "params": {"field": "component", "size": 10, "order": "desc", "orderBy": "1"}},
            {"id": "3", "enabled": True, "type": "terms", "schema": "bucket",
             "params": {"field": "container_name", "size": 20, "order": "desc", "orderBy": "1"}},
        ]}, query="level:error or level:critical")


def controls() -> dict[str, Any]:
    def control(control_id: str, field: str, label: str, index: int) -> dict[str, Any]:
        return {"id": control_id, "fieldName": field, "label": label, "type": "list", "parent": "",
                "options": {"type": "terms", "multiselect": True, "dynamicOptions": True, "size": 50, "order": "desc"},
                "indexPatternRefName": f"control_{index}_index_pattern"}

    vis = visualization("servelog-vis-controls", "Pick a deployment", {
        "type": "input_control_vis",
        "params": {"controls": [control("1", "serving_name", "Serving", 0), control("2", "model_name", "Model", 1),
                                control("3", "model_version", "Model version", 2)],
                   "updateFiltersOnChange": True, "useTimeFilter": True, "pinFilters": False},
        "aggs": []}, pattern=None)
    vis["references"] = [{"name": f"control_{i}_index_pattern", "type": "index-pattern", "id": LOGS} for i in range(3)]
    return vis


def dashboard(panels: list[dict[str, Any]]) -> dict[str, Any]:
    layout = [(0, 0, 48, 6), (0, 6, 24, 12), (24, 6, 24, 12), (0, 18, 48, 15), (0, 33, 48, 15)]
    panels_json = []
    references = []
    for i, (obj, (x, y, w, h)) in enumerate(zip(panels, layout, strict=True)):
        panels_json.append({"panelIndex": str(i + 1), "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                            "embeddableConfig": {}, "version": "2.19.0", "panelRefName": f"panel_{i}"})
        references.append({"name": f"panel_{i}", "type": obj["type"], "id": obj["id"]})
    return {"type": "dashboard", "id": "servelog-dashboard-model-deployment-logs", "attributes": {
        "title": "Model deployment logs", "description": "Pick a serving, model and version; errors first.",
        "panelsJSON": json.dumps(panels_json), "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
        "timeRestore": False, "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"language": "kuery", "query": ""}, "filter": []})}},
        "references": references, "migrationVersion": {"dashboard": "7.9.3"}}


def objects() -> list[dict[str, Any]]:
    all_logs = search("servelog-search-all", "Serving logs: all", "")
    errors = search("servelog-search-errors", "Serving logs: errors and tracebacks",
                    "level:error or level:critical or line_count > 1 or message:Traceback")
    searches = [
        all_logs,
        search("servelog-search-predictor", "Serving logs: predictor", "component:predictor"),
        search("servelog-search-transformer", "Serving logs: transformer", "component:transformer"),
        search("servelog-search-storage-initializer", "Serving logs: storage-initializer (model download)",
               'container_name:"storage-initializer"'),
        search("servelog-search-inference-logger", "Serving logs: inference logger",
               'container_name:"agent" or container_name:"inference-logger"'),
        errors,
        search("servelog-search-by-model-version", "Serving logs: one model version (edit the filter)", "",
               filters=[phrase_filter("model_version", "1")]),
        search("servelog-search-deadletter", "Dead-lettered lines", "", pattern=DEADLETTER,
               columns=["namespace", "pod_name", "container_name", "status", "error_type", "reason"]),
        search("servelog-search-deployment-failures", "Deployment failures (OOMKilled, probes, image pulls, scheduling)",
               "reason:(OOMKilled or Unhealthy or ProbeFailed or ImagePullBackOff or ErrImagePull or FailedScheduling "
               "or Unschedulable or CrashLoopBackOff or BackOff or Error)", pattern=EVENTS,
               columns=["serving_name", "model_version", "component", "container_name", "reason", "exit_code", "message"]),
    ]
    vis = [volume_by_version(), errors_by_component(), controls()]
    patterns = [index_pattern(LOGS, "serving-logs-*"), index_pattern(DEADLETTER, "serving-deadletter-*"),
                index_pattern(EVENTS, "serving-events-*")]
    board = dashboard([vis[2], vis[0], vis[1], errors, all_logs])
    return [*patterns, *searches, *vis, board]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in objects())


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT} ({len(objects())} objects)")
