"""Contract: template shapes, error bodies, settings and cluster endpoints, on the loopback server and real nodes.

The shapes asserted are the ones ``servelog setup`` reads back and the errors it reports; each one
was first observed on real 2.19.6 and 3.8.0 nodes (see conftest.py for how a test runs on both).
"""

from __future__ import annotations

from tests.contract.conftest import Backend

SETTINGS = {"index": {"number_of_replicas": 0, "refresh_interval": "5s", "codec": "best_compression",
                      "mapping": {"total_fields": {"limit": 200}}, "query": {"default_field": ["message"]}}}
MAPPINGS = {"dynamic": False, "properties": {
    "timestamp": {"type": "date_nanos", "format": "strict_date_optional_time_nanos"},
    "model_version": {"type": "keyword", "fields": {"numeric": {"type": "long", "ignore_malformed": True}}},
    "labels": {"type": "flat_object"}, "truncated": {"type": "boolean"}}}


def error(answer_body: dict[str, object]) -> dict[str, object]:
    return answer_body["error"]  # type: ignore[return-value]


def test_templates_come_back_with_settings_as_text_and_mappings_as_given(backend: Backend) -> None:
    component, template = f"{backend.prefix}-c", f"{backend.prefix}-t"
    assert backend.rest("PUT", f"/_component_template/{component}", {
        "template": {"settings": SETTINGS, "mappings": MAPPINGS}, "_meta": {"version": "1.0.0"}}).body == {"acknowledged": True}
    got = backend.rest("GET", f"/_component_template/{component}").body
    assert got["component_templates"][0]["name"] == component
    body = got["component_templates"][0]["component_template"]
    assert body["_meta"] == {"version": "1.0.0"}
    assert body["template"]["settings"] == {"index": {"number_of_replicas": "0", "refresh_interval": "5s",
                                                      "codec": "best_compression",
                                                      "mapping": {"total_fields": {"limit": "200"}},
                                                      "query": {"default_field": ["message"]}}}
    assert body["template"]["mappings"] == MAPPINGS, "booleans stay booleans (dynamic: false)"
    assert backend.rest("PUT", f"/_index_template/{template}", {
        "index_patterns": [f"{backend.prefix}-x-*"], "priority": 7, "composed_of": [component],
        "_meta": {"version": "1.0.0"}}).status == 200
    index_template = backend.rest("GET", f"/_index_template/{template}").body["index_templates"][0]
    assert index_template == {"name": template, "index_template": {
        "index_patterns": [f"{backend.prefix}-x-*"], "composed_of": [component], "priority": 7,
        "_meta": {"version": "1.0.0"}}}
    index = f"{backend.prefix}-x-1"
    backend.rest("PUT", f"/{index}")
    mapping = backend.rest("GET", f"/{index}/_mapping").body[index]["mappings"]
    assert mapping["dynamic"] == "false", "an index's mapping comes back with dynamic as text"
    settings = backend.rest("GET", f"/{index}/_settings").body[index]["settings"]["index"]
    assert settings["codec"] == "best_compression" and settings["number_of_replicas"] == "0"
    assert {"uuid", "creation_date", "provided_name", "version"} <= set(settings)


def test_template_refusals(backend: Backend) -> None:
    missing = backend.rest("PUT", f"/_index_template/{backend.prefix}-m", {
        "index_patterns": [f"{backend.prefix}-m-*"], "composed_of": ["nope"]})
    assert missing.status == 400 and error(missing.body)["type"] == "invalid_index_template_exception"
    assert error(missing.body)["reason"] == (f"index_template [{backend.prefix}-m] invalid, cause [index template "
                                             f"[{backend.prefix}-m] specifies component templates [nope] that do not exist]")
    first = backend.rest("PUT", f"/_index_template/{backend.prefix}-a", {"index_patterns": [f"{backend.prefix}-p-*"],
                                                                         "priority": 5})
    assert first.status == 200
    clash = backend.rest("PUT", f"/_index_template/{backend.prefix}-b", {"index_patterns": [f"{backend.prefix}-p-*"],
                                                                         "priority": 5})
    assert clash.status == 400 and error(clash.body)["type"] == "illegal_argument_exception"
    assert "that have the same priority [5], multiple index templates may not match during index creation, please " \
           "use a different priority" in str(error(clash.body)["reason"])
    gone = backend.rest("GET", "/_index_template/nope-nope")
    assert gone.status == 404 and error(gone.body)["reason"] == "index template matching [nope-nope] not found"


def test_unknown_settings_and_mapping_parameters_are_refused(backend: Backend) -> None:
    setting = backend.rest("PUT", f"/_component_template/{backend.prefix}-s", {"template": {"settings": {"index": {"foo": 1}}}})
    kind = "settings_exception" if backend.major >= 3 else "illegal_argument_exception"
    assert setting.status == 400 and error(setting.body)["type"] == kind
    assert error(setting.body)["reason"] == ("unknown setting [index.foo] please check that any required plugins are "
                                             "installed, or check the breaking changes documentation for removed settings")
    for spec, inner in (({"type": "keyword", "foo": 1}, "unknown parameter [foo] on mapper [f] of type [keyword]"),
                        ({"type": "text", "ignore_above": 5}, "unknown parameter [ignore_above] on mapper [f] of type [text]"),
                        ({"type": "flat_object", "index": False},
                         "Mapping definition for [f] has unsupported parameters:  [index : false]"),
                        ({"type": "nosuch"}, "No handler for type [nosuch] declared on field [f]")):
        answer = backend.rest("PUT", f"/_component_template/{backend.prefix}-p", {
            "template": {"mappings": {"properties": {"f": spec}}}})
        assert answer.status == 400, spec
        assert error(answer.body)["type"] == "mapper_parsing_exception"
        assert error(answer.body)["reason"] == f"Failed to parse mapping [_doc]: {inner}"
        assert error(answer.body)["root_cause"] == [{"type": "mapper_parsing_exception", "reason": inner}]
    root = backend.rest("PUT", f"/{backend.prefix}-r", {"mappings": {"foo": 1, "properties": {}}})
    assert error(root.body)["root_cause"][0]["reason"] == "Root mapping definition has unsupported parameters:  [foo : 1]"  # type: ignore[index]
    interval = backend.rest("PUT", f"/{backend.prefix}-i", {"settings": {"index": {"refresh_interval": "soon"}}})
    assert error(interval.body)["reason"] == ("failed to parse setting [index.refresh_interval] with value [soon] as "
                                              "a time value: unit is missing or unrecognized")


def test_error_bodies_of_unknown_endpoints_and_missing_indices(backend: Backend) -> None:
    unknown = backend.rest("GET", "/_plugins/_nope/x")
    assert (unknown.status, unknown.body) == (400, {"error": "no handler found for uri [/_plugins/_nope/x] and method [GET]"})
    missing = backend.rest("GET", f"/{backend.prefix}-none/_search")
    assert missing.status == 404 and missing.body["status"] == 404
    assert error(missing.body)["root_cause"] == [{
        "type": "index_not_found_exception", "reason": f"no such index [{backend.prefix}-none]",
        "index": f"{backend.prefix}-none", "resource.id": f"{backend.prefix}-none", "resource.type": "index_or_alias",
        "index_uuid": "_na_"}]
    lenient = backend.rest("GET", f"/{backend.prefix}-none*/_search?ignore_unavailable=true&allow_no_indices=true")
    assert lenient.status == 200 and lenient.body["hits"]["hits"] == []


def test_cluster_settings_nodes_and_the_version(backend: Backend) -> None:
    unknown = backend.rest("PUT", "/_cluster/settings", {"transient": {"nope.x": 1}})
    kind = "settings_exception" if backend.major >= 3 else "illegal_argument_exception"
    assert unknown.status == 400 and error(unknown.body)["type"] == kind
    assert error(unknown.body)["reason"] == "transient setting [nope.x], not recognized"
    changed = backend.cluster({"cluster.max_shards_per_node": 999})
    assert changed.body == {"acknowledged": True, "persistent": {}, "transient": {"cluster": {"max_shards_per_node": "999"}}}
    read = backend.rest("GET", "/_cluster/settings?include_defaults=true&filter_path=**.max_shards_per_node,"
                               "**.total_shards_limit").body
    assert read["transient"] == {"cluster": {"max_shards_per_node": "999"}}
    assert read["defaults"]["cluster"]["routing"]["allocation"]["total_shards_limit"] == "-1"
    nodes = backend.rest("GET", "/_nodes?filter_path=nodes.*.version").body
    assert [n["version"] for n in nodes["nodes"].values()] == [backend.version]
    info = backend.rest("GET", "/")
    assert info.body["version"]["distribution"] == "opensearch" and info.body["version"]["number"] == backend.version
    assert (info.headers.get("x-opensearch-version") == f"OpenSearch/{backend.version} (opensearch)") == (backend.major >= 3)
    if backend.major == 2:
        backend.cluster({"compatibility.override_main_response_version": True})
        overridden = backend.rest("GET", "/").body["version"]
        assert overridden["number"] == "7.10.2" and "distribution" not in overridden
        assert [n["version"] for n in backend.rest("GET", "/_nodes?filter_path=nodes.*.version").body["nodes"].values()] \
            == [backend.version], "the nodes keep telling the truth"
    else:
        refused = backend.cluster({"compatibility.override_main_response_version": True})
        assert refused.status == 400, "3.x removed the compatibility override"
        backend.cluster_settings.discard("compatibility.override_main_response_version")


def test_cat_indices_columns_as_json(backend: Backend) -> None:
    index = f"{backend.prefix}-cat"
    backend.rest("PUT", f"/{index}", {"settings": {"index": {"number_of_shards": 2, "number_of_replicas": 0}}})
    rows = backend.rest("GET", f"/_cat/indices/{backend.prefix}-*?format=json&h=index,pri,rep,status").body
    assert rows == [{"index": index, "pri": "2", "rep": "0", "status": "open"}]
