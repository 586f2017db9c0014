"""Contract: bulk item shapes, refresh visibility, search_after on date_nanos, sorts, blocks and the shard limit.

Each test runs against the loopback server (imitating the version) and the real node of that
version with the same assertions (see conftest.py). The shapes asserted are the ones servelog's
delivery verdicts and ``servelog logs`` read.
"""

from __future__ import annotations

from tests.contract.conftest import Backend

MAPPINGS = {"dynamic": False, "properties": {
    "timestamp": {"type": "date_nanos", "format": "strict_date_optional_time_nanos"},
    "doc_id": {"type": "keyword"}, "n": {"type": "long"}, "k": {"type": "keyword"}, "b": {"type": "boolean"},
    "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
    "labels": {"type": "flat_object"}}}


def make_index(backend: Backend, name: str, *, refresh: str = "-1") -> str:
    index = f"{backend.prefix}-{name}"
    answer = backend.rest("PUT", f"/{index}", {"settings": {"index": {"number_of_replicas": 0, "refresh_interval": refresh}},
                                               "mappings": MAPPINGS})
    assert answer.status == 200 and answer.body == {"acknowledged": True, "shards_acknowledged": True, "index": index}
    return index


def create(index: str, doc_id: str, source: dict[str, object]) -> list[dict[str, object]]:
    return [{"create": {"_index": index, "_id": doc_id}}, source]


def item(answer_items: list[dict[str, object]], n: int) -> dict[str, object]:
    (op, result), = answer_items[n].items()  # type: ignore[union-attr]
    assert op == "create"
    return result  # type: ignore[return-value]


def test_bulk_items_201_409_400_have_opensearch_shapes(backend: Backend) -> None:
    index = make_index(backend, "bulk")
    ts = "2026-11-24T09:00:00.000000001Z"
    answer = backend.bulk(create(index, "a", {"timestamp": ts, "k": "x"}) + create(index, "a", {"timestamp": ts})
                          + create(index, "b", {"timestamp": ts, "n": "abc"})
                          + create(index, "c", {"timestamp": ts, "k": {"o": 1}})
                          + create(index, "d", {"timestamp": "not a date"})
                          + create(index, "e", {"timestamp": ts, "b": "maybe"}))
    assert answer.status == 200 and answer.body["errors"] is True and isinstance(answer.body["took"], int)
    items = answer.body["items"]
    created = item(items, 0)
    assert set(created) == {"_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term", "status"}
    assert (created["status"], created["result"], created["_version"], created["_primary_term"]) == (201, "created", 1, 1)
    assert created["_shards"] == {"total": 1, "successful": 1, "failed": 0}
    replay = item(items, 1)
    assert set(replay) == {"_index", "_id", "status", "error"} and replay["status"] == 409
    assert set(replay["error"]) == {"type", "reason", "index", "shard", "index_uuid"}  # type: ignore[arg-type]
    assert replay["error"]["type"] == "version_conflict_engine_exception"  # type: ignore[index]
    assert replay["error"]["reason"] == "[a]: version conflict, document already exists (current version [1])"  # type: ignore[index]
    number = item(items, 2)["error"]
    assert (item(items, 2)["status"], number["type"]) == (400, "mapper_parsing_exception")  # type: ignore[index]
    assert number["reason"] == ("failed to parse field [n] of type [long] in document with id 'b'. "  # type: ignore[index]
                                "Preview of field's value: 'abc'")
    # a long parses strings through Numbers.toLong: IllegalArgumentException (an integer: NumberFormatException)
    assert number["caused_by"] == {"type": "illegal_argument_exception", "reason": 'For input string: "abc"'}  # type: ignore[index]
    keyword = item(items, 3)["error"]
    assert keyword["reason"].endswith("Preview of field's value: '{o=1}'")  # type: ignore[index]
    assert keyword["caused_by"]["reason"].startswith("Can't get text on a START_OBJECT")  # type: ignore[index]
    date = item(items, 4)["error"]
    assert date["caused_by"]["reason"] == ("failed to parse date field [not a date] with format "  # type: ignore[index]
                                           "[strict_date_optional_time_nanos]")
    boolean = item(items, 5)["error"]
    assert boolean["caused_by"]["reason"] == "Failed to parse value [maybe] as only [true] or [false] are allowed."  # type: ignore[index]


def test_writes_are_searchable_after_a_refresh_and_gettable_at_once(backend: Backend) -> None:
    index = make_index(backend, "refresh")
    backend.bulk(create(index, "a", {"timestamp": "2026-11-24T09:00:00Z"}))
    assert backend.rest("POST", f"/{index}/_count", {"query": {"match_all": {}}}).body["count"] == 0, \
        "refresh_interval -1: not searchable before a refresh"
    assert backend.rest("GET", f"/{index}/_doc/a").body["found"] is True, "GET is real-time"
    refreshed = backend.rest("POST", f"/{index}/_refresh")
    assert refreshed.body == {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    assert backend.rest("POST", f"/{index}/_count", {"query": {"match_all": {}}}).body["count"] == 1
    backend.bulk(create(index, "b", {"timestamp": "2026-11-24T09:00:01Z"}), query="?refresh=true")
    assert backend.rest("POST", f"/{index}/_count", {"query": {"match_all": {}}}).body["count"] == 2
    scheduled = make_index(backend, "scheduled", refresh="1s")
    backend.bulk(create(scheduled, "c", {"timestamp": "2026-11-24T09:00:02Z"}), query="?refresh=wait_for")
    assert backend.rest("POST", f"/{scheduled}/_count", {"query": {"match_all": {}}}).body["count"] == 1, \
        "wait_for returns once the scheduled refresh made the write searchable"


def test_search_after_with_date_nanos_sort_values_is_strictly_after(backend: Backend) -> None:
    index = make_index(backend, "paging")
    lines = []
    for n, (ts, doc_id) in enumerate([("2026-11-24T09:00:00.000000001Z", "b"), ("2026-11-24T09:00:00.000000001Z", "a"),
                                      ("2026-11-24T09:00:00.000000002Z", "c")]):
        lines += create(index, f"id{n}", {"timestamp": ts, "doc_id": doc_id})
    lines += create(index, "none", {"timestamp": "2026-11-24T09:00:00.000000001Z"})  # no doc_id
    backend.bulk(lines, query="?refresh=true")
    sort = [{"timestamp": {"order": "asc", "numeric_type": "date_nanos"}},
            {"doc_id": {"order": "asc", "unmapped_type": "keyword"}}]
    page = backend.rest("POST", f"/{index}/_search", {"sort": sort, "size": 10, "track_total_hits": False}).body
    values = [h["sort"] for h in page["hits"]["hits"]]
    assert values == [[1795510800000000001, "a"], [1795510800000000001, "b"], [1795510800000000001, None],
                      [1795510800000000002, "c"]], "epoch nanoseconds; a missing keyword sorts last as null"
    assert "total" not in page["hits"]
    after = backend.rest("POST", f"/{index}/_search", {"sort": sort, "search_after": [1795510800000000001, "a"]}).body
    assert [h["_id"] for h in after["hits"]["hits"]] == ["id0", "none", "id2"]
    after_null = backend.rest("POST", f"/{index}/_search",
                              {"sort": sort, "search_after": [1795510800000000001, None]}).body
    assert [h["_id"] for h in after_null["hits"]["hits"]] == ["id2"]
    ranged = backend.rest("POST", f"/{index}/_count", {"query": {"range": {"timestamp": {
        "gte": "2026-11-24T09:00:00.000000002Z"}}}}).body
    assert ranged["count"] == 1, "range bounds are nanosecond exact"


def test_sorting_on_id_needs_fielddata_and_unmapped_fields_need_unmapped_type(backend: Backend) -> None:
    index = make_index(backend, "sorts")
    backend.bulk(create(index, "a", {"timestamp": "2026-11-24T09:00:00Z"}), query="?refresh=true")
    assert backend.rest("POST", f"/{index}/_search", {"sort": [{"_id": "asc"}]}).status == 200
    backend.cluster({"indices.id_field_data.enabled": False})
    refused = backend.rest("POST", f"/{index}/_search", {"sort": [{"_id": "asc"}]})
    assert refused.status == 400 and refused.body["error"]["type"] == "search_phase_execution_exception"
    assert refused.body["error"]["root_cause"][0] == {"type": "illegal_argument_exception", "reason": (
        "Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster "
        "setting: indices.id_field_data.enabled")}
    assert backend.rest("POST", f"/{index}/_search", {"sort": [{"doc_id": "asc"}]}).status == 200, "doc values"
    unmapped = backend.rest("POST", f"/{index}/_search", {"sort": [{"nope": "asc"}]})
    assert unmapped.status == 400
    assert unmapped.body["error"]["root_cause"][0]["reason"] == "No mapping found for [nope] in order to sort on"
    assert backend.rest("POST", f"/{index}/_search", {"sort": [{"nope": {"unmapped_type": "keyword"}}]}).status == 200


def test_a_write_block_refuses_items_and_a_cluster_block_the_request(backend: Backend) -> None:
    index = make_index(backend, "blocks")
    other = make_index(backend, "open")
    assert backend.rest("PUT", f"/{index}/_settings", {"index": {"blocks": {"write": True}}}).status == 200
    answer = backend.bulk(create(index, "a", {"k": "x"}) + create(other, "a", {"k": "x"}))
    assert item(answer.body["items"], 0)["status"] == 403
    assert item(answer.body["items"], 0)["error"] == {"type": "cluster_block_exception", "reason": (
        f"index [{index}] blocked by: [FORBIDDEN/8/index write (api)];")}
    assert item(answer.body["items"], 1)["status"] == 201
    backend.rest("PUT", f"/{index}/_settings", {"index": {"blocks": {"write": None}}})
    backend.cluster({"cluster.blocks.read_only": True})
    refused = backend.bulk(create(other, "b", {"k": "x"}))
    assert refused.status == 403
    assert refused.body["error"]["root_cause"][0] == {"type": "cluster_block_exception",
                                                       "reason": "blocked by: [FORBIDDEN/6/cluster read-only (api)];"}
    backend.cluster({"cluster.blocks.read_only": None})
    assert item(backend.bulk(create(index, "c", {"k": "x"})).body["items"], 0)["status"] == 201, "lifted: accepted"


def test_the_shard_limit_refuses_an_auto_created_index_per_item(backend: Backend) -> None:
    health = backend.rest("GET", "/_cluster/health").body
    assert {"number_of_data_nodes", "active_shards", "unassigned_shards", "initializing_shards"} <= set(health)
    open_shards = health["active_shards"] + health["unassigned_shards"] + health["initializing_shards"]
    backend.cluster({"cluster.max_shards_per_node": open_shards + 1})
    answer = backend.bulk(create(f"{backend.prefix}-new", "a", {"k": "x"}))  # 1 primary + 1 replica: 2 shards
    refused = item(answer.body["items"], 0)
    kind = " LOCAL_ONLY" if backend.major >= 3 else ""
    assert refused["status"] == 400 and refused["error"] == {"type": "validation_exception", "reason": (
        f"Validation Failed: 1: this action would add [2] total{kind} shards, but this cluster currently has "
        f"[{open_shards}]/[{open_shards + 1}] maximum{kind} shards open;")}

