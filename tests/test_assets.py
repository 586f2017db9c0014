"""The shipped assets checked as code: templates, ISM policies and Dashboards saved objects.

Every file parses; templates are versioned and compose existing components; every field the
pipeline writes is mapped with the intended type; every saved-object reference resolves; every
embedded JSON string parses; every field a saved object uses (columns, sort, filters, kuery field
names, aggregations, controls) exists in the mapping of the index pattern it reads; the NDJSON is
exactly what ``dashboards/generate.py`` produces; the pipeline's real output fits the mapping.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.errors import SetupError
from collector.model import (
    DEADLETTER_FIELDS,
    DEADLETTER_INDEX_PATTERN,
    EVENTS_INDEX_PATTERN,
    LOG_FIELDS,
    LOG_INDEX_PATTERN,
)
from collector.setup import assets
from collector.setup.discover import LOGS_INDEX_PATTERN_ID, SAVED_SEARCH_ID
from tests.support.logwriter import ContainerLog, Ledger

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = assets.load_templates(ROOT)
SAVED = assets.load_saved_objects(ROOT).objects
EVENT_FIELDS = ("timestamp", "namespace", "pod_name", "pod_uid", "serving_name", "model_name", "model_version",
                "component", "container_name", "reason", "type", "message", "count", "source", "exit_code", "event_kind")


def index_template_for(index_pattern: str) -> assets.Template:
    """The index template whose patterns cover an index pattern's title (as OpenSearch would pick it)."""
    sample = index_pattern.replace("*", "x")
    matching = [t for t in TEMPLATES if t.kind == "index_template"
                and any(fnmatch.fnmatch(sample, p) for p in t.body["index_patterns"])]
    assert len(matching) == 1, (index_pattern, [t.name for t in matching])
    return matching[0]


def composed(index_pattern: str) -> dict[str, Any]:
    """The merged template (mappings and settings) new indices matching ``index_pattern`` get."""
    by_name = {t.name: t.body for t in TEMPLATES}
    merged: dict[str, Any] = {"mappings": {"properties": {}}, "settings": {"index": {}}}
    for component in index_template_for(index_pattern).body["composed_of"]:
        template = by_name[component]["template"]
        mappings = template.get("mappings", {})
        merged["mappings"]["properties"].update(mappings.get("properties", {}))
        merged["mappings"].update({k: v for k, v in mappings.items() if k != "properties"})
        merged["settings"]["index"].update(template.get("settings", {}).get("index", {}))
    return merged


def properties(index_pattern: str) -> dict[str, Any]:
    return composed(index_pattern)["mappings"]["properties"]


def field_names(index_pattern: str) -> set[str]:
    names = set()
    for name, spec in properties(index_pattern).items():
        names.add(name)
        names.update(f"{name}.{sub}" for sub in spec.get("fields", {}))
    return names


# -- files ---------------------------------------------------------------------------------------
def test_every_asset_file_parses_and_the_ndjson_has_one_object_per_line_and_no_export_trailer() -> None:
    for path in sorted((ROOT / "index_templates").glob("*.json")):
        assert isinstance(json.loads(path.read_text()), dict), path
    for path in sorted((ROOT / "dashboards").glob("*.ndjson")):
        lines = path.read_text().splitlines()
        assert lines and all(line.strip() for line in lines), f"{path}: blank lines"
        for line in lines:
            obj = json.loads(line)
            assert set(obj) >= {"type", "id", "attributes", "references"}, obj
            assert "exportedCount" not in obj and "missingRefCount" not in obj, "export trailer"


def test_generated_ndjson_is_up_to_date() -> None:
    sys.path.insert(0, str(ROOT / "dashboards"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert assets.load_saved_objects(ROOT).path.read_text() == generate.render(), "run: python dashboards/generate.py"


# -- templates -----------------------------------------------------------------------------------
def test_templates_are_versioned_and_index_templates_compose_existing_components() -> None:
    components = {t.name for t in TEMPLATES if t.kind == "component_template"}
    for template in TEMPLATES:
        assert template.body["_meta"]["version"] == template.version
    index_templates = [t for t in TEMPLATES if t.kind == "index_template"]
    assert {p for t in index_templates for p in t.body["index_patterns"]} == {
        LOG_INDEX_PATTERN, DEADLETTER_INDEX_PATTERN, EVENTS_INDEX_PATTERN}
    for template in index_templates:
        assert template.body["composed_of"], template.name
        assert set(template.body["composed_of"]) <= components, template.name
        assert isinstance(template.body["priority"], int)
        kinds = {"mappings" if "mappings" in next(t for t in TEMPLATES if t.name == c).body["template"] else "settings"
                 for c in template.body["composed_of"]}
        assert kinds == {"mappings", "settings"}, f"{template.name} composes a mappings and a settings component"


def test_component_templates_come_before_the_index_templates_that_use_them() -> None:
    kinds = [t.kind for t in TEMPLATES]
    assert kinds == sorted(kinds, key=lambda k: k != "component_template")


@pytest.mark.parametrize("pattern", [LOG_INDEX_PATTERN, DEADLETTER_INDEX_PATTERN, EVENTS_INDEX_PATTERN])
def test_mappings_are_closed_and_timestamps_keep_nanoseconds(pattern: str) -> None:
    mappings = composed(pattern)["mappings"]
    assert mappings["dynamic"] is False, "unknown fields are kept in _source but never grow the mapping"
    assert mappings["properties"]["timestamp"] == {"type": "date_nanos", "format": "strict_date_optional_time_nanos"}
    version = mappings["properties"]["model_version"]
    assert version["type"] == "keyword"
    assert version["fields"]["numeric"] == {"type": "long", "ignore_malformed": True}


def test_every_log_document_field_is_mapped_with_its_type() -> None:
    mapped = properties(LOG_INDEX_PATTERN)
    assert set(LOG_FIELDS) <= set(mapped)
    types = {name: spec["type"] for name, spec in mapped.items()}
    for name in ("component", "container_name", "serving_name", "model_name", "model_version", "namespace", "pod_name",
                 "pod_uid", "node_name", "stream", "level", "project", "metadata_source", "parse_error"):
        assert types[name] == "keyword", name
    assert types["labels"] == "flat_object", "pod label keys (app.kubernetes.io/name) must not become fields"
    assert types["truncated"] == "boolean"
    assert {types[n] for n in ("restart_count", "original_bytes", "line_count")} <= {"integer", "long"}
    assert mapped["message"]["type"] == "text"
    assert mapped["message"]["fields"]["keyword"]["type"] == "keyword"
    assert mapped["message"]["fields"]["keyword"]["ignore_above"] <= 8191, "a 1 MiB line must not fail the keyword"


def test_every_dead_letter_field_is_mapped_and_the_raw_line_is_stored_not_indexed() -> None:
    mapped = properties(DEADLETTER_INDEX_PATTERN)
    assert set(DEADLETTER_FIELDS) <= set(mapped)
    raw = mapped["raw"]
    assert raw.get("index") is False
    assert raw["type"] == "text" or raw.get("doc_values") is False
    assert mapped["reason"]["type"] == "text" and mapped["reason"]["fields"]["keyword"]["type"] == "keyword"
    assert mapped["status"]["type"] == "integer"
    for name in ("error_type", "target_index", "doc_id"):
        assert mapped[name]["type"] == "keyword", name


def test_every_event_field_is_mapped() -> None:
    mapped = properties(EVENTS_INDEX_PATTERN)
    assert set(EVENT_FIELDS) <= set(mapped)
    assert {mapped[n]["type"] for n in ("count", "exit_code")} == {"integer"}
    assert mapped["message"]["type"] == "text"
    for name in ("reason", "type", "source", "event_kind"):
        assert mapped[name]["type"] == "keyword", name


@pytest.mark.parametrize("pattern", [LOG_INDEX_PATTERN, DEADLETTER_INDEX_PATTERN, EVENTS_INDEX_PATTERN])
def test_index_settings_suit_logs_and_default_search_fields_exist(pattern: str) -> None:
    settings = composed(pattern)["settings"]["index"]
    assert settings["refresh_interval"] == "5s"
    assert settings["codec"] == "best_compression"
    assert settings["number_of_replicas"] == 1
    assert set(settings["query"]["default_field"]) <= field_names(pattern)


# -- retention -----------------------------------------------------------------------------------
def test_ism_policies_delete_at_their_default_age_and_attach_to_new_indices() -> None:
    policies = {p.policy_id: p.body["policy"] for p in assets.load_ism_policies(ROOT)}
    expected = {"servelog-logs-retention": (LOG_INDEX_PATTERN, "14d"),
                "servelog-deadletter-retention": (DEADLETTER_INDEX_PATTERN, "30d"),
                "servelog-events-retention": (EVENTS_INDEX_PATTERN, "90d")}
    assert set(policies) == set(expected)
    for policy_id, (pattern, age) in expected.items():
        policy = policies[policy_id]
        assert policy["ism_template"] == [{"index_patterns": [pattern], "priority": 100}]
        states = {s["name"]: s for s in policy["states"]}
        assert policy["default_state"] in states
        deletes = [t for s in policy["states"] for t in s["transitions"] if t["state_name"] == "delete"]
        assert [t["conditions"] for t in deletes] == [{"min_index_age": age}]
        assert {"delete": {}} in states["delete"]["actions"]


# -- saved objects -------------------------------------------------------------------------------
def test_saved_object_ids_are_unique_and_every_reference_resolves_within_the_file() -> None:
    keys = [(o["type"], o["id"]) for o in SAVED]
    assert len(keys) == len(set(keys))
    for obj in SAVED:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in set(keys), (obj["id"], reference)


def test_embedded_json_parses_and_every_ref_name_has_a_reference() -> None:
    for obj in SAVED:
        attributes = obj["attributes"]
        names = {r["name"] for r in obj["references"]}
        used: list[str] = []
        meta = attributes.get("kibanaSavedObjectMeta")
        if meta is not None:
            assert isinstance(meta["searchSourceJSON"], str), "searchSourceJSON is a JSON string"
            source = json.loads(meta["searchSourceJSON"])
            used += [source["indexRefName"]] if "indexRefName" in source else []
            used += [f["meta"]["indexRefName"] for f in source.get("filter", [])]
        for key in ("visState", "uiStateJSON", "optionsJSON"):
            if key in attributes:
                assert isinstance(json.loads(attributes[key]), dict), (obj["id"], key)
        if "visState" in attributes:
            vis = json.loads(attributes["visState"])
            used += [c["indexPatternRefName"] for c in vis["params"].get("controls", [])]
        if "panelsJSON" in attributes:
            used += [p["panelRefName"] for p in json.loads(attributes["panelsJSON"])]
        assert set(used) <= names, (obj["id"], set(used) - names)


def test_index_patterns_name_the_time_field_and_ship_every_mapped_field() -> None:
    # without a complete field list Dashboards refreshes it from the indices, which fails while none exists
    # (data/common/index_patterns/index_patterns/index_patterns.ts isFieldRefreshRequired); e2e checks the
    # list against a real node's _field_caps
    patterns = {o["attributes"]["title"]: o for o in SAVED if o["type"] == "index-pattern"}
    assert set(patterns) == {LOG_INDEX_PATTERN, DEADLETTER_INDEX_PATTERN, EVENTS_INDEX_PATTERN}
    for title, pattern in patterns.items():
        assert pattern["attributes"]["timeFieldName"] == "timestamp"
        fields = {f["name"]: f for f in json.loads(pattern["attributes"]["fields"])}
        assert all({"searchable", "aggregatable", "readFromDocValues"} <= set(f) for f in fields.values())
        assert fields["timestamp"]["type"] == "date" and fields["timestamp"]["esTypes"] == ["date_nanos"]
        assert set(fields) == {*field_names(title), "_id", "_index", "_score", "_source", "_type"}
    logs = {f["name"]: f for f in json.loads(patterns[LOG_INDEX_PATTERN]["attributes"]["fields"])}
    assert logs["message"]["aggregatable"] is False and logs["message.keyword"]["subType"] == {"multi": {"parent": "message"}}
    assert logs["doc_id"]["readFromDocValues"] is True and logs["labels"]["esTypes"] == ["flat_object"]


def test_the_history_index_pattern_lists_every_mapped_field_so_it_opens_while_empty() -> None:
    (pattern,) = [o for o in SAVED if o["type"] == "index-pattern" and o["attributes"]["title"] == EVENTS_INDEX_PATTERN]
    fields = {f["name"]: f for f in json.loads(pattern["attributes"]["fields"])}
    assert fields["timestamp"]["type"] == "date" and fields["timestamp"]["esTypes"] == ["date_nanos"]
    assert fields["reason"]["aggregatable"] and fields["reason"]["type"] == "string"
    assert not fields["message"]["aggregatable"] and fields["message.keyword"]["aggregatable"]
    assert fields["message.keyword"]["subType"] == {"multi": {"parent": "message"}}
    assert fields["exit_code"]["type"] == "number" and fields["init_container"]["type"] == "boolean"
    assert fields["doc_id"]["readFromDocValues"] is True


_KUERY_FIELD = re.compile(r"([A-Za-z_][\w.]*)\s*(?::|<=?|>=?)")


def fields_used(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(index-pattern id, field) for every field a saved object reads."""
    refs = {r["name"]: r["id"] for r in obj["references"] if r["type"] == "index-pattern"}
    attributes = obj["attributes"]
    used: list[tuple[str, str]] = []
    meta = attributes.get("kibanaSavedObjectMeta")
    source = json.loads(meta["searchSourceJSON"]) if meta else {}
    main = refs.get(source.get("indexRefName", ""), "")
    used += [(main, c) for c in attributes.get("columns", [])]
    used += [(main, s[0]) for s in attributes.get("sort", [])]
    used += [(main, f) for f in _KUERY_FIELD.findall(source.get("query", {}).get("query", ""))]
    used += [(refs[f["meta"]["indexRefName"]], f["meta"]["key"]) for f in source.get("filter", [])]
    used += [(refs[f["meta"]["indexRefName"]], field) for f in source.get("filter", [])
             for field in f["query"].get("match_phrase", {})]
    if "visState" in attributes:
        vis = json.loads(attributes["visState"])
        used += [(main, a["params"]["field"]) for a in vis["aggs"] if "field" in a["params"]]
        used += [(refs[c["indexPatternRefName"]], c["fieldName"]) for c in vis["params"].get("controls", [])]
    return used


@pytest.mark.parametrize("obj", SAVED, ids=lambda o: o["id"])
def test_every_field_a_saved_object_uses_is_mapped_in_its_index_pattern(obj: dict[str, Any]) -> None:
    titles = {o["id"]: o["attributes"]["title"] for o in SAVED if o["type"] == "index-pattern"}
    for pattern_id, field in fields_used(obj):
        assert field in field_names(titles[pattern_id]), f"{obj['id']} uses {field}, unmapped in {titles[pattern_id]}"


def test_the_field_check_sees_kuery_filters_aggregations_and_controls() -> None:
    by_id = {o["id"]: o for o in SAVED}
    assert ("servelog-logs", "line_count") in fields_used(by_id["servelog-search-errors"])
    assert ("servelog-events", "reason") in fields_used(by_id["servelog-search-deployment-failures"])
    assert ("servelog-logs", "model_version") in fields_used(by_id["servelog-search-by-model-version"])
    assert ("servelog-logs", "model_version") in fields_used(by_id["servelog-vis-volume-by-version"])
    assert ("servelog-events", "model_name") in fields_used(by_id["servelog-vis-controls"])


def test_saved_searches_cover_each_component_container_and_failure_view() -> None:
    searches = {o["id"]: json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
                for o in SAVED if o["type"] == "search"}
    queries = {object_id: source["query"]["query"] for object_id, source in searches.items()}
    assert queries["servelog-search-predictor"] == "component:predictor"
    assert queries["servelog-search-transformer"] == "component:transformer"
    assert "storage-initializer" in queries["servelog-search-storage-initializer"]
    assert "agent" in queries["servelog-search-inference-logger"]
    assert "inference-logger" in queries["servelog-search-inference-logger"]
    for part in ("level:(error or critical)", "line_count > 1", "message:Traceback"):
        assert part in queries["servelog-search-errors"]
    for reason in ("OOMKilled", "Unhealthy", "ImagePullBackOff", "ErrImagePull", "Unschedulable", "CrashLoopBackOff",
                   "BackOff"):
        assert reason in queries["servelog-search-deployment-failures"]
    by_version = searches["servelog-search-by-model-version"]["filter"]
    assert [f["meta"]["key"] for f in by_version] == ["model_version"]
    for obj in SAVED:
        if obj["type"] == "search":
            assert obj["attributes"]["sort"] == [["timestamp", "desc"]]


def test_the_dashboard_offers_controls_volume_errors_and_the_log_searches() -> None:
    by_id = {o["id"]: o for o in SAVED}
    board = by_id["servelog-dashboard-model-deployment-logs"]
    assert board["attributes"]["title"] == "Model deployment logs"
    panels = {r["id"] for r in board["references"]}
    assert {"servelog-vis-controls", "servelog-vis-volume-by-version", "servelog-vis-errors-by-component",
            "servelog-search-errors", "servelog-search-all", "servelog-search-deployment-history",
            "servelog-search-deployment-failures"} <= panels
    controls = json.loads(by_id["servelog-vis-controls"]["attributes"]["visState"])
    assert controls["type"] == "input_control_vis"
    assert [c["fieldName"] for c in controls["params"]["controls"]] == ["serving_name", "model_name", "model_version",
                                                                       "component"]
    volume = json.loads(by_id["servelog-vis-volume-by-version"]["attributes"]["visState"])
    aggs = {a["schema"]: a for a in volume["aggs"]}
    assert aggs["segment"]["type"] == "date_histogram" and aggs["segment"]["params"]["field"] == "timestamp"
    assert aggs["group"]["type"] == "terms" and aggs["group"]["params"]["field"] == "model_version"


def test_the_discover_link_points_at_shipped_objects() -> None:
    by_id = {o["id"]: o for o in SAVED}
    assert by_id[SAVED_SEARCH_ID]["type"] == "search"
    assert by_id[LOGS_INDEX_PATTERN_ID]["attributes"]["title"] == LOG_INDEX_PATTERN


# -- lookup --------------------------------------------------------------------------------------
def test_assets_are_found_in_the_checkout_the_environment_or_package_data(tmp_path: Path) -> None:
    assert assets.assets_root() in assets.candidate_roots()
    roots = assets.candidate_roots({"SERVELOG_ASSETS_DIR": str(tmp_path)})
    assert roots[0] == tmp_path
    assert ROOT / "collector" / "assets" in roots, "package data is a fallback"
    with pytest.raises(SetupError) as refused:
        assets.assets_root([tmp_path / "nowhere", tmp_path / "elsewhere"])
    assert "nowhere" in str(refused.value) and "elsewhere" in str(refused.value)
    assert "SERVELOG_ASSETS_DIR" in str(refused.value)


def test_the_newest_template_version_wins_and_a_wrong_meta_version_is_refused(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "index_templates", tmp_path / "index_templates")
    newer = json.loads((ROOT / "index_templates" / "servelog-logs-1.0.0.json").read_text())
    newer["_meta"]["version"] = "1.10.0"
    (tmp_path / "index_templates" / "servelog-logs-1.10.0.json").write_text(json.dumps(newer))
    logs = [t for t in assets.load_templates(tmp_path) if t.name == "servelog-logs"]
    assert [t.version for t in logs] == ["1.10.0"]
    newer["_meta"]["version"] = "1.9.0"
    (tmp_path / "index_templates" / "servelog-logs-1.10.0.json").write_text(json.dumps(newer))
    with pytest.raises(SetupError, match=r"_meta\.version"):
        assets.load_templates(tmp_path)


# -- the pipeline's own output -------------------------------------------------------------------
_DATE_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def compatible(value: Any, spec: dict[str, Any]) -> bool:
    kind = spec["type"]
    if kind == "date_nanos":
        return isinstance(value, str) and bool(_DATE_NANOS.match(value))
    if kind == "keyword":
        return isinstance(value, str) and len(value.encode()) <= 32766
    if kind == "text":
        return isinstance(value, str)
    if kind in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "flat_object":
        return isinstance(value, dict)
    return False


def test_the_pipelines_real_output_satisfies_the_mapping(tmp_path: Path) -> None:
    ledger = Ledger()
    log = ContainerLog(tmp_path / "pods", namespace="team-a", pod="iris-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                       uid="0f1e2d3c-1111-2222-3333-444455556666", container="kserve-container", ledger=ledger)
    log.write("2025-06-10 11:36:26.764 269781 kserve INFO [model_server.py:register_model():402] Registering model")
    log.write(b"bad \xff utf-8")
    log.write_traceback(["Traceback (most recent call last):", '  File "m.py", line 1, in f', "ValueError: x"])
    log.write_long(2 * 1024 * 1024, 1024 * 1024)
    log.write_raw(b"not cri\n", expect="not cri")
    log.write('{"level":"error","msg":"json line"}')
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout", "--log-root",
                           str(tmp_path / "pods"), "--state-dir", str(tmp_path / "state"), "--listen", ""],
                          capture_output=True, check=True, timeout=60)
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(documents) == 6
    mapped = properties(LOG_INDEX_PATTERN)
    for document in documents:
        assert re.match(r"^serving-logs-team-a-\d{4}\.\d\d\.\d\d$", document["index"])
        for name, value in document["source"].items():
            assert name in mapped, f"unmapped field {name}"
            assert compatible(value, mapped[name]), (name, value if len(str(value)) < 80 else str(value)[:80])
