"""The shipped assets: templates, ISM policies and Dashboards saved objects, checked as code.

Every reference resolves, every embedded JSON string parses, every field a saved object uses is
mapped, every field the pipeline produces is mapped with a compatible type, and the NDJSON is what
``dashboards/generate.py`` generates.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.model import LOG_FIELDS
from collector.setup import assets
from tests.support.logwriter import ContainerLog, Ledger

ROOT = Path(__file__).resolve().parents[1]


def mapping_of(index_template: str) -> dict[str, Any]:
    """The merged properties of an index template and its component templates."""
    by_name = {t.name: t.body for t in assets.templates(ROOT)}
    template = by_name[index_template]
    properties: dict[str, Any] = {}
    for component in template["composed_of"]:
        properties.update(by_name[component]["template"].get("mappings", {}).get("properties", {}))
    return properties


def field_names(properties: dict[str, Any]) -> set[str]:
    names = set()
    for name, spec in properties.items():
        names.add(name)
        for sub in spec.get("fields", {}):
            names.add(f"{name}.{sub}")
    return names


def saved_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in assets.saved_objects_file(ROOT).read_text().splitlines()]


def test_templates_compose_existing_components_and_are_versioned() -> None:
    templates = assets.templates(ROOT)
    names = {t.name for t in templates}
    for template in templates:
        assert template.body["_meta"]["version"] == template.version
        for component in template.body.get("composed_of", []):
            assert component in names
    for pattern, index in (("serving-logs-*", "servelog-logs"), ("serving-deadletter-*", "servelog-deadletter"),
                           ("serving-events-*", "servelog-events")):
        assert next(t for t in templates if t.name == index).body["index_patterns"] == [pattern]


def test_log_mapping_is_explicit_and_covers_every_document_field() -> None:
    properties = mapping_of("servelog-logs")
    assert set(LOG_FIELDS) <= set(properties)
    assert properties["timestamp"]["type"] == "date_nanos"
    assert properties["labels"]["type"] == "flat_object"
    assert properties["model_version"]["fields"]["numeric"]["type"] == "long"
    mappings = next(t for t in assets.templates(ROOT) if t.name == "servelog-logs-mappings").body["template"]["mappings"]
    assert mappings["dynamic"] is False, "unknown fields must never grow the mapping"


def test_ism_policies_attach_themselves_to_new_indices() -> None:
    policies = assets.ism_policies(ROOT)
    assert set(policies) == {"servelog-logs-retention", "servelog-deadletter-retention", "servelog-events-retention"}
    ages = {}
    for policy_id, body in policies.items():
        policy = body["policy"]
        assert policy["ism_template"][0]["index_patterns"][0].startswith("serving-")
        delete = [t for s in policy["states"] for t in s["transitions"] if t["state_name"] == "delete"]
        ages[policy_id] = delete[0]["conditions"]["min_index_age"]
    assert ages["servelog-logs-retention"] == "14d"


def test_saved_objects_are_clean_and_every_reference_resolves() -> None:
    objects = saved_objects()
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(ids) == len(set(ids)), "ids are unique"
    assert all("exportedCount" not in o for o in objects), "no export trailer"
    known = set(ids)
    for obj in objects:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in known, (obj["id"], reference)
        attributes = obj["attributes"]
        if "kibanaSavedObjectMeta" in attributes:
            source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
            names = {r["name"] for r in obj["references"]}
            for ref_name in [source.get("indexRefName")] + [f["meta"]["indexRefName"] for f in source.get("filter", [])]:
                assert ref_name is None or ref_name in names
        for key in ("visState", "panelsJSON", "optionsJSON", "uiStateJSON"):
            if key in attributes:
                json.loads(attributes[key])
        if obj["type"] == "index-pattern":
            assert attributes["timeFieldName"] == "timestamp" and "fields" not in attributes


def test_the_dashboard_offers_the_deployment_controls_and_searches() -> None:
    objects = {o["id"]: o for o in saved_objects()}
    board = objects["servelog-dashboard-model-deployment-logs"]
    assert board["attributes"]["title"] == "Model deployment logs"
    panels = {r["id"] for r in board["references"]}
    assert {"servelog-vis-controls", "servelog-vis-volume-by-version", "servelog-vis-errors-by-component",
            "servelog-search-errors"} <= panels
    controls = json.loads(objects["servelog-vis-controls"]["attributes"]["visState"])["params"]["controls"]
    assert [c["fieldName"] for c in controls] == ["serving_name", "model_name", "model_version"]
    titles = {o["attributes"].get("title") for o in objects.values()}
    for wanted in ("predictor", "transformer", "storage-initializer", "inference logger", "errors", "Dead-lettered"):
        assert any(wanted in (t or "") for t in titles), wanted


_KUERY_FIELD = re.compile(r"([A-Za-z_][\w.]*)\s*(?::|<|>)")


def used_fields(obj: dict[str, Any]) -> set[str]:
    attributes = obj["attributes"]
    fields = set(attributes.get("columns", [])) | {s[0] for s in attributes.get("sort", [])}
    meta = attributes.get("kibanaSavedObjectMeta")
    if meta:
        source = json.loads(meta["searchSourceJSON"])
        fields |= set(_KUERY_FIELD.findall(source.get("query", {}).get("query", "")))
        fields |= {f["meta"]["key"] for f in source.get("filter", [])}
    if "visState" in attributes:
        vis = json.loads(attributes["visState"])
        fields |= {a["params"]["field"] for a in vis.get("aggs", []) if "field" in a.get("params", {})}
        fields |= {c["fieldName"] for c in vis.get("params", {}).get("controls", [])}
    return fields


@pytest.mark.parametrize("obj", saved_objects(), ids=lambda o: o["id"])
def test_every_field_a_saved_object_uses_is_mapped(obj: dict[str, Any]) -> None:
    pattern = next((r["id"] for r in obj["references"] if r["type"] == "index-pattern"), "servelog-logs")
    mapped = field_names(mapping_of(pattern))
    missing = used_fields(obj) - mapped
    assert not missing, f"{obj['id']} uses unmapped fields {missing}"


def test_generated_ndjson_is_up_to_date() -> None:
    sys.path.insert(0, str(ROOT / "dashboards"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert assets.saved_objects_file(ROOT).read_text() == generate.render(), "run: python dashboards/generate.py"


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
    properties = mapping_of("servelog-logs")
    for document in documents:
        assert re.match(r"^serving-logs-team-a-\d{4}\.\d\d\.\d\d$", document["index"])
        for name, value in document["source"].items():
            assert name in properties, f"unmapped field {name}"
            assert compatible(value, properties[name]), (name, value if len(str(value)) < 80 else str(value)[:80])
