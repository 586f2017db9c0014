"""Generates ``servelog-1.0.0.ndjson``: OpenSearch Dashboards 2.x saved objects for servelog.

Saved objects embed JSON inside strings (``searchSourceJSON``, ``visState``, ``panelsJSON``,
``fields``), which is miserable to edit and review by hand; this script is the source of truth and
the NDJSON its output (``python dashboards/generate.py``; tests/test_assets.py fails when they
drift). Ids are fixed so that importing with ``overwrite=true`` updates in place; there is no export
trailer. ``migrationVersion`` states the shape the objects already have, so Dashboards does not
migrate them on import.

Index patterns ship their ``fields``, derived from the index templates' mappings
(``index_templates/servelog-*-mappings-*.json``): Dashboards refreshes a pattern's field list from
the indices only when the saved list is missing or lacks ``searchable``/``aggregatable``/
``readFromDocValues`` (``data/common/index_patterns/index_patterns/index_patterns.ts``
``isFieldRefreshRequired``), and a refresh with no matching index yet fails ("No matching indices",
``IndexPatternMissingIndices``), leaving Discover without its time field (OpenSearch-Dashboards #5768,
#5625): the dead-letter and events patterns have no index until something happens. Each field is
what Dashboards itself would compute from ``_field_caps`` (``data/server/index_patterns/fetcher/lib/
field_capabilities/field_caps_response.ts`` ``readFieldCapsResponse``, ``field_capabilities.ts``
with the default ``metaFields`` and ``overrides.ts``; types per
``data/common/osd_field_types/osd_field_types_factory.ts``, ``flat_object`` as ``string`` since
OpenSearch-Dashboards #11085); an e2e test checks it against a real node's ``_field_caps``. A new
index pattern is ``index_pattern(id, title, "<mappings component>")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("servelog-1.0.0.ndjson")
TEMPLATES = Path(__file__).resolve().parents[1] / "index_templates"

LOGS, DEADLETTER, EVENTS = "servelog-logs", "servelog-deadletter", "servelog-events"
CONTROLS_PATTERN = EVENTS  # the dashboard's pickers list what the deployment history knows
COLUMNS = ["serving_name", "model_version", "component", "container_name", "level", "message"]
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
ERRORS_QUERY = "level:(error or critical) or line_count > 1 or message:Traceback"
FAILURE_REASONS = ["OOMKilled", "Unhealthy", "ProbeWarning", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                   "FailedScheduling", "Unschedulable", "CrashLoopBackOff", "BackOff", "Error", "Evicted",
                   "CreateContainerConfigError", "CreateContainerError", "FailedMount", "Restarted", "ModelLoadFailed",
                   "RuntimeUnhealthy", "RevisionFailed", "FailedToLoad"]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- index pattern fields, as Dashboards derives them from _field_caps --------------------------
#: OpenSearch field type -> Dashboards field type (osd_field_types_factory.ts; object/nested are dropped)
OSD_TYPES = {
    **dict.fromkeys(("string", "text", "keyword", "match_only_text", "wildcard", "flat_object", "_id", "_type"), "string"),
    **dict.fromkeys(("float", "half_float", "scaled_float", "double", "integer", "long", "unsigned_long", "short",
                     "byte", "token_count"), "number"),
    **dict.fromkeys(("date", "date_nanos"), "date"),
    "ip": "ip", "boolean": "boolean", "geo_point": "geo_point", "geo_shape": "geo_shape", "_source": "_source",
}
#: the metaFields advanced setting's default and what overrides.ts makes of each
META_FIELDS = {
    "_id": {"type": "string", "esTypes": ["_id"], "searchable": True, "aggregatable": True},
    "_index": {"type": "string", "esTypes": ["_index"], "searchable": True, "aggregatable": True},
    "_score": {"type": "number", "searchable": False, "aggregatable": False},
    "_source": {"type": "_source", "esTypes": ["_source"], "searchable": False, "aggregatable": False},
    "_type": {"type": "string", "searchable": False, "aggregatable": False},
}


def _capabilities(spec: dict[str, Any]) -> tuple[bool, bool]:
    """(searchable, aggregatable) as _field_caps reports a mapped field."""
    kind = spec.get("type", "object")
    searchable = spec.get("index", True) is not False
    if kind == "text":
        return searchable, bool(spec.get("fielddata", False))
    if kind == "flat_object":
        return True, False
    return searchable, spec.get("doc_values", True) is not False


def _field(name: str, spec: dict[str, Any], parent: str | None) -> dict[str, Any]:
    kind = spec["type"]
    searchable, aggregatable = _capabilities(spec)
    field = {"aggregatable": aggregatable, "count": 0, "esTypes": [kind], "name": name,
             # should_read_field_from_doc_values.ts
             "readFromDocValues": aggregatable and kind not in ("text", "geo_shape") and not kind.startswith("_"),
             "scripted": False, "searchable": searchable, "type": OSD_TYPES.get(kind, "unknown")}
    if parent is not None:
        field["subType"] = {"multi": {"parent": parent}}
    return field


def mapped_fields(properties: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The Dashboards field specs of a mapping's properties (objects flattened, multi-fields as children)."""
    fields: list[dict[str, Any]] = []
    for name, spec in properties.items():
        full = prefix + name
        if "properties" in spec or spec.get("type") in (None, "object", "nested"):
            fields += mapped_fields(spec.get("properties") or {}, f"{full}.")
            continue
        fields.append(_field(full, spec, None))
        for sub, sub_spec in (spec.get("fields") or {}).items():
            fields.append(_field(f"{full}.{sub}", sub_spec, full))
    return fields


def mappings_of(component: str) -> dict[str, Any]:
    """The newest ``index_templates/<component>-<version>.json``'s mapping properties."""
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.stem.rsplit("-", 1)[1].split("."))
    newest = max(TEMPLATES.glob(f"{component}-[0-9]*.json"), key=version)
    properties: dict[str, Any] = json.loads(newest.read_text())["template"]["mappings"]["properties"]
    return properties


def field_specs(component: str) -> list[dict[str, Any]]:
    metas = [{"count": 0, "name": name, "readFromDocValues": False, "scripted": False, **spec}
             for name, spec in META_FIELDS.items()]
    return [dict(sorted(f.items())) for f in sorted(metas + mapped_fields(mappings_of(component)), key=lambda f: f["name"])]


def index_pattern(object_id: str, title: str, mappings_component: str) -> dict[str, Any]:
    attributes = {"title": title, "timeFieldName": "timestamp", "fields": _json(field_specs(mappings_component))}
    return {"type": "index-pattern", "id": object_id, "attributes": attributes,
            "references": [], "migrationVersion": {"index-pattern": "7.6.0"}}


# -- deployment history (serving-events-*) --------------------------------------------------------
HISTORY_COLUMNS = ["serving_name", "model_version", "component", "container_name", "reason", "message"]
FAILURES_COLUMNS = ["serving_name", "model_version", "component", "container_name", "event_kind", "reason", "exit_code",
                    "message"]
FAILURES_QUERY = ("(event_kind:event and type:Warning) or reason:(" + " or ".join(FAILURE_REASONS) + ")"
                  " or transition_status:BlockedByFailedLoad")
def history_searches() -> tuple[dict[str, Any], dict[str, Any]]:
    """"Deployment history" (everything that happened) and "Deployment failures" (what went wrong)."""
    history = search(
        "servelog-search-deployment-history", "Deployment history", "", pattern=EVENTS, columns=HISTORY_COLUMNS,
        description="What happened to each model deployment: Kubernetes events, container terminations, waiting "
        "reasons, restarts, readiness, pod conditions and InferenceService status, newest first.")
    failures = search(
        "servelog-search-deployment-failures", "Deployment failures (OOMKilled, probes, image pulls, scheduling)",
        FAILURES_QUERY, pattern=EVENTS, columns=FAILURES_COLUMNS,
        description="Warning events, OOMKilled and failed containers, probe failures, image pull errors, unschedulable "
        "pods, crash loops, failed model loads and failed revisions.")
    return history, failures


def phrase_filter(field: str, value: str, position: int) -> dict[str, Any]:
    return {"meta": {"alias": None, "negate": False, "disabled": False, "type": "phrase", "key": field,
                     "params": {"query": value},
                     "indexRefName": f"kibanaSavedObjectMeta.searchSourceJSON.filter[{position}].meta.index"},
            "query": {"match_phrase": {field: value}}, "$state": {"store": "appState"}}


def search(object_id: str, title: str, query: str, *, description: str, pattern: str = LOGS,
           columns: list[str] | None = None, filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    filters = filters or []
    source = {"query": {"language": "kuery", "query": query}, "filter": filters, "indexRefName": INDEX_REF}
    references = [{"name": INDEX_REF, "type": "index-pattern", "id": pattern}]
    references += [{"name": f["meta"]["indexRefName"], "type": "index-pattern", "id": pattern} for f in filters]
    return {"type": "search", "id": object_id, "attributes": {
        "title": title, "description": description, "columns": columns or COLUMNS, "sort": [["timestamp", "desc"]],
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json(source)}}, "references": references,
        "migrationVersion": {"search": "7.9.3"}}


def visualization(object_id: str, title: str, vis_state: dict[str, Any], *, description: str, query: str = "",
                  pattern: str | None = LOGS) -> dict[str, Any]:
    source: dict[str, Any] = {"query": {"language": "kuery", "query": query}, "filter": []}
    references = []
    if pattern is not None:
        source["indexRefName"] = INDEX_REF
        references.append({"name": INDEX_REF, "type": "index-pattern", "id": pattern})
    return {"type": "visualization", "id": object_id, "attributes": {
        "title": title, "description": description, "visState": _json({"title": title, **vis_state}),
        "uiStateJSON": "{}", "version": 1, "kibanaSavedObjectMeta": {"searchSourceJSON": _json(source)}},
        "references": references, "migrationVersion": {"visualization": "7.10.0"}}


def count_metric() -> dict[str, Any]:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def terms(agg_id: str, schema: str, field: str, size: int, missing_label: str) -> dict[str, Any]:
    return {"id": agg_id, "enabled": True, "type": "terms", "schema": schema, "params": {
        "field": field, "size": size, "order": "desc", "orderBy": "1", "otherBucket": True, "otherBucketLabel": "Other",
        "missingBucket": True, "missingBucketLabel": missing_label}}


def volume_by_version() -> dict[str, Any]:
    """Stacked bars over time, one series per model version: a new version's rollout at a glance."""
    params = {
        "type": "histogram", "addTooltip": True, "addLegend": True, "legendPosition": "right", "times": [],
        "addTimeMarker": False, "grid": {"categoryLines": False}, "labels": {"show": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True, "style": {},
                          "scale": {"type": "linear"}, "labels": {"show": True, "filter": True, "truncate": 100},
                          "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left", "show": True,
                       "style": {}, "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": "Log lines"}}],
        "seriesParams": [{"show": True, "type": "histogram", "mode": "stacked", "data": {"label": "Log lines", "id": "1"},
                          "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True, "lineWidth": 2,
                          "showCircles": True}],
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }
    aggs = [count_metric(),
            {"id": "2", "enabled": True, "type": "date_histogram", "schema": "segment", "params": {
                "field": "timestamp", "interval": "auto", "useNormalizedOpenSearchInterval": True,
                "scaleMetricValues": False, "drop_partials": False, "min_doc_count": 1, "extended_bounds": {}}},
            terms("3", "group", "model_version", 10, "no version")]
    return visualization("servelog-vis-volume-by-version", "Log volume by model version",
                         {"type": "histogram", "params": params, "aggs": aggs},
                         description="Log lines over time, one series per model version.")


def errors_by_component() -> dict[str, Any]:
    params = {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False, "showTotal": True,
              "totalFunc": "sum", "percentageCol": ""}
    aggs = [count_metric(), terms("2", "bucket", "component", 10, "unknown"),
            terms("3", "bucket", "container_name", 20, "unknown")]
    return visualization("servelog-vis-errors-by-component", "Errors by component and container",
                         {"type": "table", "params": params, "aggs": aggs}, query=ERRORS_QUERY,
                         description="Error lines and tracebacks, by component and container.")


def controls() -> dict[str, Any]:
    fields = [("serving_name", "Serving"), ("model_name", "Model"), ("model_version", "Model version"),
              ("component", "Component")]
    controls_ = [{"id": str(i + 1), "fieldName": field, "label": label, "type": "list", "parent": "",
                  "options": {"type": "terms", "multiselect": True, "dynamicOptions": True, "size": 50, "order": "desc"},
                  "indexPatternRefName": f"control_{i}_index_pattern"} for i, (field, label) in enumerate(fields)]
    vis = visualization("servelog-vis-controls", "Pick a deployment", {
        "type": "input_control_vis", "aggs": [],
        "params": {"controls": controls_, "updateFiltersOnChange": True, "useTimeFilter": True, "pinFilters": False}},
        pattern=None, description="Filters every panel (history and logs alike) to one serving, model, version and "
        "component. The choices come from the deployment history, which knows deployments that never wrote a line.")
    vis["references"] = [{"name": f"control_{i}_index_pattern", "type": "index-pattern", "id": CONTROLS_PATTERN}
                         for i in range(len(fields))]
    return vis


def dashboard(panels: list[tuple[dict[str, Any], tuple[int, int, int, int]]]) -> dict[str, Any]:
    panels_json = []
    references = []
    for i, (obj, (x, y, w, h)) in enumerate(panels):
        panels_json.append({"panelIndex": str(i + 1), "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                            "embeddableConfig": {}, "version": "2.7.0", "panelRefName": f"panel_{i}"})
        references.append({"name": f"panel_{i}", "type": obj["type"], "id": obj["id"]})
    source = {"query": {"language": "kuery", "query": ""}, "filter": []}
    return {"type": "dashboard", "id": "servelog-dashboard-model-deployment-logs", "attributes": {
        "title": "Model deployment logs",
        "description": "Pick a serving, model, version and component: what happened to the deployment (history, "
        "failures), then its logs (volume by version, errors, all lines).",
        "panelsJSON": _json(panels_json), "optionsJSON": _json({"useMargins": True, "hidePanelTitles": False}),
        "timeRestore": False, "version": 1, "kibanaSavedObjectMeta": {"searchSourceJSON": _json(source)}},
        "references": references, "migrationVersion": {"dashboard": "7.9.3"}}


def objects() -> list[dict[str, Any]]:
    patterns = [index_pattern(LOGS, "serving-logs-*", "servelog-logs-mappings"),
                index_pattern(DEADLETTER, "serving-deadletter-*", "servelog-deadletter-mappings"),
                index_pattern(EVENTS, "serving-events-*", "servelog-events-mappings")]
    all_logs = search("servelog-search-all", "Serving logs: all", "",
                      description="Every line of every model serving pod, newest first.")
    errors = search("servelog-search-errors", "Serving logs: errors and tracebacks", ERRORS_QUERY,
                    description="Lines at level error or critical, grouped tracebacks, and lines mentioning Traceback.")
    history, failures = history_searches()
    searches = [
        all_logs,
        search("servelog-search-predictor", "Serving logs: predictor", "component:predictor",
               description="The predictor (model server) containers."),
        search("servelog-search-transformer", "Serving logs: transformer", "component:transformer",
               description="The transformer (pre/post-processing) containers."),
        search("servelog-search-storage-initializer", "Serving logs: storage-initializer (model download)",
               'container_name:"storage-initializer"',
               description="The init container that downloads the model: look here when a deployment never starts."),
        search("servelog-search-inference-logger", "Serving logs: inference logger",
               'container_name:("agent" or "inference-logger")',
               description="The request/response logger sidecar (KServe agent, Hopsworks inference-logger)."),
        errors,
        search("servelog-search-by-model-version", "Serving logs: one model version (edit the filter)", "",
               filters=[phrase_filter("model_version", "1", 0)],
               description="Edit the model_version filter to the version you are looking for."),
        search("servelog-search-deadletter", "Dead-lettered lines", "", pattern=DEADLETTER,
               columns=["serving_name", "pod_name", "container_name", "status", "error_type", "reason"],
               description="Lines OpenSearch refused (mapping conflicts, oversized documents), with the raw line."),
        failures,
        history,
    ]
    vis = [controls(), volume_by_version(), errors_by_component()]
    # the history above the logs: what happened to the deployment first, then what it said
    layout = [(vis[0], (0, 0, 48, 7)), (history, (0, 7, 48, 15)), (failures, (0, 22, 48, 12)),
              (vis[1], (0, 34, 32, 14)), (vis[2], (32, 34, 16, 14)), (errors, (0, 48, 48, 15)),
              (all_logs, (0, 63, 48, 20))]
    return [*patterns, *searches, *vis, dashboard(layout)]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in objects())


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT} ({len(objects())} objects)")
