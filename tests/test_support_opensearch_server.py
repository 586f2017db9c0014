"""The loopback OpenSearch in tests/support, driven by the real ``opensearch-py`` client.

Other suites trust this server to refuse what OpenSearch refuses and to fail the way OpenSearch
fails; these tests hold it to that. Every request goes through ``opensearchpy.OpenSearch`` with
``max_retries=0`` over real sockets (and real TLS), so the wire format, status codes and exception
mapping are the client's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import opensearchpy
import orjson
import pytest
from opensearchpy import OpenSearch

from tests.support.opensearch_server import FakeOpenSearch, date_math_to_nanos, filter_path, iso_to_nanos
from tests.support.tls import TestPKI, make_test_pki

LOGS = "serving-logs-team-a-2026.11.24"
ITEM_FILTER = {"filter_path": "took,errors,items.*.status,items.*.error"}


def connect(server: FakeOpenSearch, **options: Any) -> OpenSearch:
    return OpenSearch(hosts=[server.url], max_retries=0, retry_on_timeout=False, **options)


@pytest.fixture
def server() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenSearch) -> Iterator[OpenSearch]:
    connection = connect(server)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def bulk_body(docs: list[tuple[str, dict[str, Any]]], *, index: str = LOGS, op: str = "create") -> bytes:
    lines = []
    for doc_id, source in docs:
        lines += [orjson.dumps({op: {"_index": index, "_id": doc_id}}), orjson.dumps(source)]
    return b"\n".join(lines) + b"\n"


def statuses(answer: dict[str, Any]) -> list[int]:
    return [next(iter(item.values()))["status"] for item in answer["items"]]


def errors(answer: dict[str, Any]) -> list[str | None]:
    return [next(iter(item.values())).get("error", {}).get("type") for item in answer["items"]]


def doc(n: int, **extra: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-11-24T09:00:00.{n:09d}Z", "message": f"line {n}", "level": "info", **extra}


# -- bulk ----------------------------------------------------------------------------------------------
def test_create_stores_documents_and_a_replayed_create_is_a_409_that_keeps_the_first(
        server: FakeOpenSearch, client: OpenSearch) -> None:
    first = client.bulk(body=bulk_body([("a", doc(1)), ("b", doc(2))]))
    assert first["errors"] is False and statuses(first) == [201, 201]
    item = first["items"][0]["create"]
    assert item["_index"] == LOGS and item["_id"] == "a" and item["result"] == "created" and item["_version"] == 1
    assert {"_seq_no", "_primary_term", "_shards"} <= set(item)

    replay = client.bulk(body=bulk_body([("a", doc(1, message="changed")), ("c", doc(3))]))
    assert replay["errors"] is True and statuses(replay) == [409, 201]
    error = replay["items"][0]["create"]["error"]
    assert error["type"] == "version_conflict_engine_exception" and error["index"] == LOGS and error["shard"] == "0"
    assert "[a]: version conflict, document already exists" in error["reason"]
    assert server.documents()[LOGS]["a"]["message"] == "line 1"
    assert server.doc_count() == 3 and server.doc_count("serving-logs-team-b-*") == 0


def test_index_update_and_delete_actions_behave_like_opensearch(client: OpenSearch, server: FakeOpenSearch) -> None:
    lines = [{"index": {"_index": LOGS, "_id": "x"}}, {"n": 1}, {"index": {"_index": LOGS, "_id": "x"}}, {"n": 2},
             {"update": {"_index": LOGS, "_id": "x"}}, {"doc": {"extra": True}},
             {"update": {"_index": LOGS, "_id": "missing"}}, {"doc": {"n": 0}},
             {"index": {"_index": LOGS}}, {"n": 3}, {"delete": {"_index": LOGS, "_id": "gone"}},
             {"delete": {"_index": LOGS, "_id": "x"}}]
    answer = client.bulk(body=b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    results = [(next(iter(i)), next(iter(i.values()))["status"], next(iter(i.values())).get("result"))
               for i in answer["items"]]
    assert results == [("index", 201, "created"), ("index", 200, "updated"), ("update", 200, "updated"),
                       ("update", 404, None), ("index", 201, "created"), ("delete", 404, "not_found"),
                       ("delete", 200, "deleted")]
    assert answer["items"][3]["update"]["error"]["type"] == "document_missing_exception"
    auto_id = answer["items"][4]["index"]["_id"]
    assert server.documents()[LOGS] == {auto_id: {"n": 3}}


def test_filter_path_keeps_only_the_requested_paths(client: OpenSearch) -> None:
    client.bulk(body=bulk_body([("a", doc(1))]))
    answer = client.bulk(body=bulk_body([("a", doc(1)), ("b", doc(2))]), params=ITEM_FILTER)
    assert set(answer) == {"took", "errors", "items"}
    assert answer["items"][1] == {"create": {"status": 201}}
    assert set(answer["items"][0]["create"]) == {"status", "error"}
    assert client.info(params={"filter_path": "version.number"}) == {"version": {"number": "2.19.0"}}


def test_filter_path_supports_wildcards_inside_names_and_double_star() -> None:
    payload = {"hits": {"total": {"value": 2}, "hits": [{"_id": "1", "_source": {"a": 1}}, {"_id": "2"}]}, "took": 1}
    assert filter_path(payload, "hits.hits._id") == {"hits": {"hits": [{"_id": "1"}, {"_id": "2"}]}}
    assert filter_path(payload, "**.value,to*") == {"hits": {"total": {"value": 2}}, "took": 1}
    assert filter_path(payload, "nothing.here") == {}


def test_malformed_action_lines_and_missing_newline_fail_the_whole_request(
        client: OpenSearch, server: FakeOpenSearch) -> None:
    with pytest.raises(opensearchpy.RequestError) as bad_json:
        client.transport.perform_request("POST", "/_bulk", body=b'{"create": {"_index": "a", "_id": "1"}}\n{}\nnot json\n')
    assert bad_json.value.status_code == 400 and bad_json.value.error == "illegal_argument_exception"
    assert "Malformed action/metadata line [3]" in str(bad_json.value.info)
    with pytest.raises(opensearchpy.RequestError, match="illegal_argument_exception"):
        client.transport.perform_request("POST", "/_bulk", body=b'{"upsert": {"_index": "a"}}\n{}\n')
    with pytest.raises(opensearchpy.RequestError) as no_newline:
        client.transport.perform_request("POST", "/_bulk", headers={"content-type": "application/x-ndjson"},
                                         body=b'{"create": {"_index": "a", "_id": "1"}}\n{}')
    assert "terminated by a newline" in str(no_newline.value.info)
    assert server.doc_count() == 0


def test_invalid_index_names_are_refused_per_item(client: OpenSearch, server: FakeOpenSearch) -> None:
    lines = [{"create": {"_index": name, "_id": "1"}} for name in ("Upper", "_under", "-dash", "+plus", "fine")]
    body = b"".join(orjson.dumps(line) + b"\n{}\n" for line in lines)
    answer = client.bulk(body=body)
    assert statuses(answer) == [400, 400, 400, 400, 201]
    assert set(errors(answer)[:4]) == {"invalid_index_name_exception"}
    assert "must be lowercase" in answer["items"][0]["create"]["error"]["reason"]
    assert server.index_names() == ["fine"]


def test_default_index_from_the_path_applies_to_items_without_one(client: OpenSearch, server: FakeOpenSearch) -> None:
    client.bulk(index="from-path", body=b'{"create": {"_id": "1"}}\n{"a": 1}\n')
    assert server.documents("from-path") == {"from-path": {"1": {"a": 1}}}


# -- faults ----------------------------------------------------------------------------------------------
def test_item_faults_are_answered_in_order_per_id_and_failed_items_are_not_stored(
        client: OpenSearch, server: FakeOpenSearch) -> None:
    server.fail_items({"a": [429, 503], "b": [400]})
    body = bulk_body([("a", doc(1)), ("b", doc(2)), ("c", doc(3))])
    first = client.bulk(body=body, params=ITEM_FILTER)
    assert statuses(first) == [429, 400, 201]
    assert errors(first) == ["rejected_execution_exception", "mapper_parsing_exception", None]
    assert set(server.documents()[LOGS]) == {"c"}
    second = client.bulk(body=bulk_body([("a", doc(1)), ("b", doc(2))]))
    assert statuses(second) == [503, 201] and errors(second)[0] == "unavailable_shards_exception"
    third = client.bulk(body=bulk_body([("a", doc(1))]))
    assert statuses(third) == [201]
    assert set(server.documents()[LOGS]) == {"a", "b", "c"}


def test_fail_items_where_rejects_matching_documents_every_time(client: OpenSearch, server: FakeOpenSearch) -> None:
    server.fail_items_where(lambda index, doc_id, source: 400 if "poison" in source else None)
    for _ in range(2):
        answer = client.bulk(body=bulk_body([("p", doc(1, poison=True)), ("ok", doc(2))], op="index"))
        assert statuses(answer)[0] == 400 and errors(answer)[0] == "mapper_parsing_exception"
    assert set(server.documents()[LOGS]) == {"ok"}


@pytest.mark.parametrize(("status", "exception"), [(503, opensearchpy.TransportError), (429, opensearchpy.TransportError),
                                                   (413, opensearchpy.TransportError), (500, opensearchpy.TransportError),
                                                   (403, opensearchpy.AuthorizationException)])
def test_whole_request_faults_raise_the_client_exception_and_apply_nothing(
        client: OpenSearch, server: FakeOpenSearch, status: int, exception: type[Exception]) -> None:
    server.fail_requests(status)
    with pytest.raises(exception) as raised:
        client.bulk(body=bulk_body([("a", doc(1))]))
    assert raised.value.status_code == status  # type: ignore[attr-defined]
    if status != 413:  # OpenSearch's HTTP layer answers 413 with an empty body
        assert raised.value.info["status"] == status and raised.value.info["error"]["type"]  # type: ignore[attr-defined]
    assert server.doc_count() == 0
    assert client.info()["cluster_name"], "other paths are not affected"
    assert statuses(client.bulk(body=bulk_body([("a", doc(1))]))) == [201], "the fault is consumed"
    assert [r.status for r in server.requests] == [status, 200, 200]


def test_a_body_over_max_content_length_is_413_and_the_connection_stays_usable() -> None:
    with FakeOpenSearch(max_content_length=1000) as server:
        client = connect(server)
        try:
            with pytest.raises(opensearchpy.TransportError) as raised:
                client.bulk(body=bulk_body([(str(n), doc(n)) for n in range(50)]))
            assert raised.value.status_code == 413
            assert statuses(client.bulk(body=bulk_body([("small", {})]))) == [201]
        finally:
            client.close()
        assert server.doc_count() == 1


def test_a_dropped_connection_raises_connection_error_and_stores_nothing(
        client: OpenSearch, server: FakeOpenSearch) -> None:
    server.drop_connections()
    with pytest.raises(opensearchpy.ConnectionError):
        client.bulk(body=bulk_body([("a", doc(1))]))
    assert server.doc_count() == 0
    assert statuses(client.bulk(body=bulk_body([("a", doc(1))]))) == [201]


def test_a_drop_after_processing_stores_the_bulk_and_the_retry_meets_409s(
        client: OpenSearch, server: FakeOpenSearch) -> None:
    server.drop_connections(after_processing=True)
    body = bulk_body([("a", doc(1)), ("b", doc(2))])
    with pytest.raises(opensearchpy.ConnectionError):
        client.bulk(body=body)
    assert server.doc_count() == 2
    assert statuses(client.bulk(body=body, params=ITEM_FILTER)) == [409, 409]
    assert [(r.status, r.items) for r in server.requests] == [(0, 2), (200, 2)]


def test_unavailable_cluster_answers_503_until_cleared(client: OpenSearch, server: FakeOpenSearch) -> None:
    server.set_unavailable(True)
    with pytest.raises(opensearchpy.TransportError) as raised:
        client.info()
    assert raised.value.status_code == 503 and raised.value.error == "cluster_block_exception"
    server.set_unavailable(False)
    assert client.info()["version"]["distribution"] == "opensearch"


def test_a_slow_answer_times_the_client_out_yet_the_bulk_is_applied(server: FakeOpenSearch) -> None:
    client = connect(server, timeout=0.05)
    server.set_delay(0.3)
    try:
        with pytest.raises(opensearchpy.ConnectionTimeout):
            client.bulk(body=bulk_body([("late", doc(1))]))
    finally:
        client.close()
    server.set_delay(0)
    for _ in range(250):  # the server is still sleeping on the request the client abandoned
        if server.doc_count():
            break
        time.sleep(0.02)
    assert server.doc_count() == 1, "the cluster finished the work the client gave up on"


# -- security -------------------------------------------------------------------------------------------------
def test_basic_auth_is_required_and_checked() -> None:
    with FakeOpenSearch(username="servelog", password="s3cret") as server:
        for auth in (None, ("servelog", "wrong")):
            anonymous = connect(server, http_auth=auth)
            with pytest.raises(opensearchpy.AuthenticationException) as raised:
                anonymous.info()
            anonymous.close()
            assert raised.value.status_code == 401
        good = connect(server, http_auth=("servelog", "s3cret"))
        assert good.info()["cluster_name"]
        good.close()
        assert [r.status for r in server.requests] == [401, 401, 200]


def test_tls_with_the_test_ca_verifies_and_an_unrelated_ca_is_refused(pki: TestPKI) -> None:
    with FakeOpenSearch(ssl_context=pki.server_context()) as server:
        assert server.url.startswith("https://127.0.0.1:")
        trusted = connect(server, use_ssl=True, verify_certs=True, ca_certs=str(pki.ca_file))
        assert statuses(trusted.bulk(body=bulk_body([("tls", doc(1))]))) == [201]
        trusted.close()
        wrong = connect(server, use_ssl=True, verify_certs=True, ca_certs=str(pki.wrong_ca_file))
        with pytest.raises(opensearchpy.SSLError):
            wrong.info()
        wrong.close()
        assert server.doc_count() == 1


def test_mutual_tls_needs_a_client_certificate_from_the_ca(pki: TestPKI) -> None:
    with FakeOpenSearch(ssl_context=pki.server_context(require_client_cert=True)) as server:
        without = connect(server, use_ssl=True, verify_certs=True, ca_certs=str(pki.ca_file))
        with pytest.raises(opensearchpy.ConnectionError):
            without.info()
        without.close()
        mutual = connect(server, use_ssl=True, verify_certs=True, ca_certs=str(pki.ca_file),
                         client_cert=str(pki.client_cert), client_key=str(pki.client_key))
        assert mutual.info()["cluster_name"]
        mutual.close()


# -- templates, ISM, indices ----------------------------------------------------------------------------
MAPPINGS = {"dynamic": "strict", "properties": {
    "timestamp": {"type": "date_nanos", "format": "strict_date_optional_time_nanos"},
    "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
    "pod_name": {"type": "keyword"},
    "level": {"type": "keyword"},
    "model_version": {"type": "keyword", "fields": {"numeric": {"type": "long", "ignore_malformed": True}}},
    "restart_count": {"type": "integer"},
    "truncated": {"type": "boolean"},
    "labels": {"type": "flat_object"},
    "kube": {"properties": {"node": {"type": "keyword"}}},
    "extra": {"type": "object", "dynamic": False},
}}


def install_templates(client: OpenSearch) -> None:
    client.transport.perform_request("PUT", "/_component_template/logs-mappings", body={"template": {"mappings": MAPPINGS}})
    client.transport.perform_request("PUT", "/_component_template/logs-settings", body={
        "template": {"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "5s"}}}})
    client.transport.perform_request("PUT", "/_index_template/logs", body={
        "index_patterns": ["serving-logs-*"], "priority": 200, "composed_of": ["logs-mappings", "logs-settings"]})


def test_templates_round_trip_in_opensearch_shapes(client: OpenSearch, server: FakeOpenSearch) -> None:
    with pytest.raises(opensearchpy.RequestError) as missing_component:
        client.transport.perform_request("PUT", "/_index_template/logs", body={
            "index_patterns": ["serving-logs-*"], "composed_of": ["logs-mappings"]})
    assert missing_component.value.error == "invalid_index_template_exception"
    install_templates(client)
    got = client.transport.perform_request("GET", "/_index_template/logs")
    assert got["index_templates"][0]["name"] == "logs"
    assert got["index_templates"][0]["index_template"]["composed_of"] == ["logs-mappings", "logs-settings"]
    component = client.transport.perform_request("GET", "/_component_template/logs-settings")
    settings = component["component_templates"][0]["component_template"]["template"]["settings"]
    assert settings == {"index": {"number_of_replicas": "0", "refresh_interval": "5s"}}, "settings come back as text"
    assert server.component_templates["logs-settings"]["template"]["settings"]["index"]["number_of_replicas"] == 0
    with pytest.raises(opensearchpy.NotFoundError) as not_found:
        client.transport.perform_request("GET", "/_index_template/nope")
    assert not_found.value.error == "resource_not_found_exception"
    with pytest.raises(opensearchpy.RequestError, match="illegal_argument_exception"):
        client.transport.perform_request("DELETE", "/_component_template/logs-mappings")  # still in use
    client.transport.perform_request("DELETE", "/_index_template/logs")
    assert set(server.index_templates) == set()


def test_flat_object_mappings_are_refused_before_opensearch_2_7() -> None:
    with FakeOpenSearch(version="2.5.0") as server:
        client = connect(server)
        with pytest.raises(opensearchpy.RequestError, match="mapper_parsing_exception"):
            client.transport.perform_request("PUT", "/_component_template/m", body={"template": {"mappings": MAPPINGS}})
        client.close()


POLICY = {"policy": {"description": "retention", "default_state": "hot", "states": [
    {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "14d"}}]},
    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}],
    "ism_template": [{"index_patterns": ["serving-logs-*"], "priority": 100}]}}


def test_ism_put_on_an_existing_policy_needs_its_sequence_number(client: OpenSearch, server: FakeOpenSearch) -> None:
    path = "/_plugins/_ism/policies/retention"
    with pytest.raises(opensearchpy.NotFoundError):
        client.transport.perform_request("GET", path)
    created = client.transport.perform_request("PUT", path, body=POLICY)
    assert created["_id"] == "retention" and created["policy"]["policy"]["policy_id"] == "retention"
    with pytest.raises(opensearchpy.ConflictError) as blind:
        client.transport.perform_request("PUT", path, body=POLICY)
    assert blind.value.error == "version_conflict_engine_exception"
    current = client.transport.perform_request("GET", path)
    assert current["policy"]["states"][1]["actions"][0]["retry"]["count"] == 3, "the plugin adds retry defaults"
    stale = {"if_seq_no": current["_seq_no"] + 7, "if_primary_term": current["_primary_term"]}
    with pytest.raises(opensearchpy.ConflictError):
        client.transport.perform_request("PUT", path, body=POLICY, params=stale)
    fresh = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
    updated = client.transport.perform_request("PUT", path, body=POLICY, params=fresh)
    assert updated["_seq_no"] == current["_seq_no"] + 1 and updated["_version"] == 2
    assert server.ism_policies["retention"]["_seq_no"] == updated["_seq_no"]
    client.transport.perform_request("DELETE", path)
    assert not server.ism_policies


def test_ism_endpoints_are_unknown_without_the_plugin() -> None:
    with FakeOpenSearch(ism_plugin=False) as server:
        client = connect(server)
        with pytest.raises(opensearchpy.RequestError) as raised:
            client.transport.perform_request("GET", "/_plugins/_ism/policies/x")
        client.close()
    assert "no handler found for uri" in str(raised.value.error)


def test_indices_create_exist_list_and_delete(client: OpenSearch, server: FakeOpenSearch) -> None:
    client.indices.create(index="one")
    with pytest.raises(opensearchpy.RequestError, match="resource_already_exists_exception"):
        client.indices.create(index="one")
    client.bulk(body=bulk_body([("a", {})], index="two"))
    assert client.indices.exists(index="one") and not client.indices.exists(index="three")
    rows = client.cat.indices(format="json")
    assert {(r["index"], r["docs.count"]) for r in rows} == {("one", "0"), ("two", "1")}
    assert client.get(index="two", id="a")["_source"] == {}
    with pytest.raises(opensearchpy.NotFoundError):
        client.get(index="two", id="b")
    client.indices.refresh(index="two")
    client.indices.delete(index="t*")
    assert server.index_names() == ["one"]


def test_unknown_endpoints_answer_like_opensearch_and_the_server_keeps_serving(client: OpenSearch) -> None:
    with pytest.raises(opensearchpy.RequestError) as raised:
        client.transport.perform_request("GET", "/_nodes/stats/whatever/more")
    assert raised.value.error == "no handler found for uri [/_nodes/stats/whatever/more] and method [GET]"
    assert client.cluster.health()["status"] == "green"


# -- mapping validation ------------------------------------------------------------------------------------
def test_mapping_validation_refuses_what_the_template_refuses() -> None:
    with FakeOpenSearch(validate_mappings=True) as server:
        client = connect(server)
        install_templates(client)
        good = doc(1, pod_name="p", model_version="v2", restart_count="3", truncated=False, message="m" * 40_000,
                   labels={"app.kubernetes.io/name": "iris"}, kube={"node": "n1"}, extra={"anything": {"goes": 1}})
        bad = {
            "strict": doc(2, surprise=1),
            "strict-nested": doc(3, kube={"node": "n1", "zone": "z"}),
            "date": {"timestamp": "yesterday"},
            "before-epoch": {"timestamp": "1969-12-31T23:59:59Z"},
            "month": {"timestamp": "2026-13-01T00:00:00Z"},
            "long-keyword": {"pod_name": "p" * 40_000},
            "integer": {"restart_count": "many"},
            "range": {"restart_count": 2 ** 40},
            "boolean": {"truncated": "yes"},
            "object": {"kube": "n1"},
            "flat": {"labels": "app=iris"},
        }
        answer = client.bulk(body=bulk_body([("good", good), *bad.items()]))
        client.close()
    verdict = {next(iter(i.values()))["_id"]: (next(iter(i.values()))["status"], next(iter(i.values())).get("error"))
               for i in answer["items"]}
    assert verdict.pop("good") == (201, None)
    assert {k: status for k, (status, _) in verdict.items()} == dict.fromkeys(bad, 400)
    assert verdict["strict"][1]["type"] == "strict_dynamic_mapping_exception"
    assert "[surprise]" in verdict["strict"][1]["reason"] and "[zone] within [kube]" in verdict["strict-nested"][1]["reason"]
    assert verdict["date"][1]["type"] == "mapper_parsing_exception" and "[timestamp]" in verdict["date"][1]["reason"]
    assert verdict["long-keyword"][1]["type"] == "illegal_argument_exception"
    assert 'field="pod_name"' in verdict["long-keyword"][1]["reason"]
    assert "[restart_count]" in verdict["integer"][1]["reason"]
    assert server.mappings(LOGS)["dynamic"] == "strict", "the template applied when the bulk created the index"


# -- search ----------------------------------------------------------------------------------------------
def search_fixture(client: OpenSearch) -> None:
    docs = [(f"d{n}", {"timestamp": f"2026-11-24T09:00:0{n % 3}.00000000{n % 2}Z", "level": "error" if n % 4 == 0
                       else "info", "serving_name": "iris" if n < 6 else "wine", "message": f"request {n} took long",
                       "n": n}) for n in range(10)]
    client.bulk(body=bulk_body(docs), params={"refresh": "true"})
    client.bulk(body=bulk_body([("other", {"timestamp": "2026-11-25T00:00:00Z", "level": "info"})],
                               index="serving-logs-team-b-2026.11.25"))


def test_search_term_filters_sort_and_search_after_page_through_everything_once(client: OpenSearch) -> None:
    search_fixture(client)
    body: dict[str, Any] = {"size": 2, "query": {"bool": {"filter": [{"term": {"serving_name": "iris"}}]}},
                            "sort": [{"timestamp": {"order": "asc"}}, {"_id": {"order": "asc"}}]}
    seen, after = [], None
    while True:
        page = client.search(index="serving-logs-*", body={**body, **({"search_after": after} if after else {})})
        hits = page["hits"]["hits"]
        if not hits:
            break
        seen += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
        assert isinstance(after[0], int), "date sort values are epoch nanoseconds, as for date_nanos"
    times = {f"d{n}": (n % 3, n % 2, f"d{n}") for n in range(6)}
    assert seen == sorted(times, key=lambda k: times[k])
    assert page["hits"]["total"] == {"value": 6, "relation": "eq"}


def test_search_query_clauses(client: OpenSearch) -> None:
    search_fixture(client)

    def ids(query: dict[str, Any], **extra: Any) -> set[str]:
        answer = client.search(index="serving-logs-team-a-*", body={"query": query, "size": 100, **extra})
        return {h["_id"] for h in answer["hits"]["hits"]}

    assert ids({"terms": {"level": ["error"]}}) == {"d0", "d4", "d8"}
    assert ids({"range": {"timestamp": {"gt": "2026-11-24T09:00:02Z"}}}) == {"d5"}, "nanosecond-exact"
    assert ids({"range": {"n": {"gte": 3, "lt": 5}}}) == {"d3", "d4"}
    assert ids({"match_phrase": {"message": "Request 7 took"}}) == {"d7"}
    assert ids({"bool": {"must_not": [{"term": {"level": "info"}}], "should": [{"term": {"n": 4}}, {"term": {"n": 8}}],
                         "minimum_should_match": 1}}) == {"d4", "d8"}
    assert ids({"query_string": {"query": "serving_name:wine AND level:error"}}) == {"d8"}
    assert ids({"exists": {"field": "nope"}}) == set()
    assert client.count(index="serving-logs-*", body={"query": {"match": {"message": "long"}}})["count"] == 10
    untracked = client.search(index=LOGS, body={"track_total_hits": False, "size": 1})
    assert "total" not in untracked["hits"] and len(untracked["hits"]["hits"]) == 1
    with pytest.raises(opensearchpy.RequestError, match="parsing_exception"):
        client.search(index=LOGS, body={"query": {"fuzzy_thing": {}}})
    with pytest.raises(opensearchpy.NotFoundError):
        client.search(index="no-such-index", body={})


def test_timestamps_convert_to_exact_nanoseconds() -> None:
    assert iso_to_nanos("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert iso_to_nanos("2026-11-24T10:00:00+01:00") == iso_to_nanos("2026-11-24T09:00:00Z")
    assert iso_to_nanos("2026-11-24") == iso_to_nanos("2026-11-24T00:00:00.000Z")
    assert iso_to_nanos("2026-02-30T00:00:00Z") is None and iso_to_nanos("yesterday") is None
    assert date_math_to_nanos("2026-01-31||+1M/d") == iso_to_nanos("2026-02-28T00:00:00Z")


def test_stop_closes_kept_alive_connections_and_their_threads() -> None:
    server = FakeOpenSearch().start()
    client = connect(server)
    client.info()  # leaves a kept-alive connection and its thread behind
    server.stop()
    client.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-opensearch") and t.is_alive()]


def test_requests_are_recorded_with_what_tests_need(client: OpenSearch, server: FakeOpenSearch) -> None:
    client.bulk(body=bulk_body([("a", doc(1)), ("b", doc(2))]), params=ITEM_FILTER)
    record = server.requests[-1]
    assert (record.method, record.path, record.status, record.items) == ("POST", "/_bulk", 200, 2)
    assert record.query == ITEM_FILTER and record.body_size == len(bulk_body([("a", doc(1)), ("b", doc(2))]))
    assert record.headers["content-type"].startswith("application/")


@pytest.fixture(autouse=True)
def _no_leftover() -> Iterator[None]:
    yield
    # every server above is stopped by its fixture or context manager: none may keep threads
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-opensearch") and t.is_alive()]
