"""The retry verdicts, table by table: per item, per whole request, and the shape of a bulk answer.

Every row of the two tables in :mod:`collector.sinks.opensearch.retry` has a case here, with the
error texts OpenSearch actually sends (from its source: ``ClusterBlockException``,
``IndexCreateBlockException``, ``ShardLimitValidator``, the security plugin).
"""

from __future__ import annotations

from typing import Any

import pytest

from collector.sinks.opensearch.retry import (
    REASONS,
    bulk_response_problem,
    classify,
    hint,
    is_shard_limit,
    item_reason,
    request_verdict,
)

INDEX = "serving-logs-team-a-2026.11.24"
SHARD_LIMIT = ("Validation Failed: 1: this action would add [2] total shards, but this cluster currently has "
               "[1000]/[1000] maximum shards open;")

# (status, error type, reason) -> expected verdict: "created", "present", "dead-letter" or a retry reason
ITEM_TABLE: list[tuple[int | None, str, str, str]] = [
    (201, "", "", "created"),
    (200, "", "", "created"),
    (409, "version_conflict_engine_exception", "[x]: version conflict, document already exists", "present"),
    (403, "cluster_block_exception", f"index [{INDEX}] blocked by: [FORBIDDEN/8/index write (api)];", "blocked"),
    (403, "cluster_block_exception", f"index [{INDEX}] blocked by: [FORBIDDEN/5/index read-only (api)];", "blocked"),
    (429, "cluster_block_exception", f"index [{INDEX}] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded "
                                     "flood-stage watermark, index has read-only-allow-delete block];", "blocked"),
    (403, "cluster_block_exception", "blocked by: [FORBIDDEN/6/cluster read-only (api)];", "blocked"),
    (403, "index_create_block_exception", "blocked by: [FORBIDDEN/10/cluster create-index blocked (api)];", "blocked"),
    (400, "index_closed_exception", "closed", "blocked"),
    (400, "validation_exception", SHARD_LIMIT, "shard_limit"),
    (400, "illegal_argument_exception", SHARD_LIMIT, "shard_limit"),
    (429, "rejected_execution_exception", "rejected execution of coordinating operation", "overloaded"),
    (429, "es_rejected_execution_exception", "rejected execution of primary operation", "overloaded"),
    (429, "circuit_breaking_exception", "[parent] Data too large, data for [<http_request>] would be larger", "overloaded"),
    (401, "security_exception", "missing authentication credentials", "auth"),
    (403, "security_exception", "no permissions for [indices:data/write/bulk[s]] and User [name=servelog]", "auth"),
    (404, "index_not_found_exception", f"no such index [{INDEX}]", "index_missing"),
    (400, "illegal_argument_exception", "no write index is defined for alias [serving-logs]. The write index may be "
     "explicitly disabled using is_write_index=false or the alias points to multiple indices without one being "
     "designated as a write index", "index_missing"),
    (500, "exception", "java.lang.IllegalStateException", "unavailable"),
    (503, "unavailable_shards_exception", f"[{INDEX}][0] primary shard is not active", "unavailable"),
    (None, "", "", "unavailable"),
    (400, "mapper_parsing_exception", "failed to parse field [timestamp] of type [date_nanos]", "dead-letter"),
    (400, "document_parsing_exception", "[1:15] failed to parse field [model_version] of type [long]", "dead-letter"),
    (400, "strict_dynamic_mapping_exception", "mapping set to strict, dynamic introduction of [x] is not allowed",
     "dead-letter"),
    (400, "illegal_argument_exception", "mapper [level] cannot be changed from type [keyword] to [long]", "dead-letter"),
    (400, "illegal_argument_exception", "Limit of total fields [1000] has been exceeded", "dead-letter"),
    (408, "", "", "rejected"),
]


def item(status: int | None, error_type: str = "", reason: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {} if status is None else {"status": status}
    if error_type:
        body["error"] = {"type": error_type, "reason": reason, "index": INDEX}
    return {"create": body}


def verdict_of(position: int, verdict: Any) -> str:
    if position in verdict.created:
        return "created"
    if position in verdict.present:
        return "present"
    if any(i == position for i, _ in verdict.rejected):
        return "dead-letter"
    assert position in verdict.retry
    return "retry"


@pytest.mark.parametrize(("status", "error_type", "reason", "expected"), ITEM_TABLE,
                         ids=[f"{row[0]}-{row[1] or 'none'}-{row[3]}" for row in ITEM_TABLE])
def test_each_item_answer_gets_its_verdict(status: int | None, error_type: str, reason: str, expected: str) -> None:
    response = {"errors": True, "items": [item(201), item(status, error_type, reason)]}
    verdict = classify(response, 2)
    got = verdict_of(1, verdict)
    if expected in ("created", "present", "dead-letter"):
        assert got == expected
        assert item_reason(status, error_type, reason) is None
    else:
        assert got == "retry"
        assert verdict.retry_reasons == {expected: 1}
        assert item_reason(status, error_type, reason) == expected
        assert expected in REASONS and hint(expected)


def test_the_whole_item_table_in_one_answer_keeps_positions() -> None:
    response = {"errors": True, "items": [item(s, t, r) for s, t, r, _ in ITEM_TABLE]}
    verdict = classify(response, len(ITEM_TABLE))
    for position, (_s, _t, _r, expected) in enumerate(ITEM_TABLE):
        got = verdict_of(position, verdict)
        assert got == (expected if expected in ("created", "present", "dead-letter") else "retry"), ITEM_TABLE[position]
    assert sum(verdict.retry_reasons.values()) == len(verdict.retry)
    assert verdict.retry_detail.startswith("403 cluster_block_exception"), "the first retried item, for the log"
    dead = {r.error_type for _, r in verdict.rejected}
    assert dead == {"mapper_parsing_exception", "document_parsing_exception", "strict_dynamic_mapping_exception",
                    "illegal_argument_exception"}


def test_a_rejection_keeps_the_cause() -> None:
    response = {"errors": True, "items": [{"create": {"status": 400, "error": {
        "type": "mapper_parsing_exception", "reason": "failed to parse field [timestamp]",
        "caused_by": {"type": "illegal_argument_exception", "reason": "bad date"}}}}]}
    ((_, rejection),) = classify(response, 1).rejected
    assert rejection.status == 400 and "bad date" in rejection.reason


def test_all_created_without_errors_is_the_fast_path() -> None:
    verdict = classify({"errors": False, "items": [item(201), item(201)]}, 2)
    assert verdict.created == [0, 1] and not verdict.retry and not verdict.retry_reasons


def test_an_answer_that_does_not_match_the_request_is_retried_whole() -> None:
    verdict = classify({"errors": True, "items": [item(201)]}, 3)
    assert verdict.retry == [0, 1, 2] and not verdict.created and verdict.retry_reasons == {"not_opensearch": 3}


@pytest.mark.parametrize("text", [
    SHARD_LIMIT,
    "this action would add [1] total shards, but this cluster currently has [3]/[3] maximum shards open",
    # OpenSearch 3.x names the shard kind
    "Validation Failed: 1: this action would add [2] total LOCAL_ONLY shards, but this cluster currently has [0]/[1] "
    "maximum LOCAL_ONLY shards open;",
])
def test_shard_limit_texts(text: str) -> None:
    assert is_shard_limit("validation_exception", text)
    assert not is_shard_limit("mapper_parsing_exception", text), "the type matters too"
    assert not is_shard_limit("validation_exception", "Validation Failed: 1: index name is missing;")


# (arguments, expected split, expected reason, words the message must contain)
REQUEST_TABLE: list[tuple[dict[str, Any], bool, str, str]] = [
    ({"status": 0, "kind": "refused", "detail": "[Errno 111] Connection refused"}, False, "unreachable",
     "unreachable at http://os:9200"),
    ({"status": 0, "kind": "tls", "detail": "certificate verify failed"}, False, "tls", "TLS with http://os:9200"),
    ({"status": 0, "kind": "timeout"}, False, "timeout", "no answer"),
    ({"status": 413}, True, "", "halves"),
    ({"status": 429, "error_type": "rejected_execution_exception"}, False, "overloaded", "429"),
    ({"status": 403, "error_type": "cluster_block_exception", "detail": "blocked by: [FORBIDDEN/6/cluster read-only (api)];"},
     False, "blocked", "cluster read-only"),
    ({"status": 429, "error_type": "cluster_block_exception"}, False, "blocked", "blocked"),
    ({"status": 401, "opensearch_body": False, "detail": "Unauthorized"}, False, "auth", "credentials were refused"),
    ({"status": 403, "error_type": "security_exception", "detail": "no permissions"}, False, "auth", "lacks a permission"),
    ({"status": 403, "opensearch_body": False, "detail": "<html>"}, False, "not_opensearch", "403 for POST /_bulk"),
    ({"status": 404, "detail": "no handler found for uri [/x/_bulk]"}, False, "not_opensearch",
     "the URL does not answer like OpenSearch: 404 for POST /_bulk"),
    ({"status": 404, "error_type": "index_not_found_exception"}, False, "not_opensearch", "404 for POST /_bulk"),
    ({"status": 405}, False, "not_opensearch", "405 for POST /_bulk"),
    ({"status": 404, "url": "https://proxy.example/opensearch/"}, False, "not_opensearch", "404 for POST /opensearch/_bulk"),
    ({"status": 400, "detail": "no handler found for uri [/_bulk] and method [POST]"}, False, "not_opensearch", "400"),
    ({"status": 200, "opensearch_body": False, "detail": "the body has no 'items' list"}, False, "not_opensearch",
     "200 for POST /_bulk: the body has no 'items' list"),
    ({"status": 400, "error_type": "illegal_argument_exception", "detail": "Malformed action/metadata line [1]"},
     False, "rejected", "as a whole: 400"),
    ({"status": 409, "error_type": "version_conflict_engine_exception"}, False, "rejected", "409"),
    ({"status": 500, "error_type": "exception"}, False, "unavailable", "500"),
    ({"status": 502, "opensearch_body": False, "detail": "<html>Bad Gateway"}, False, "unavailable", "502"),
    ({"status": 503, "error_type": "cluster_block_exception", "detail": "no cluster-manager"}, False, "unavailable", "503"),
]


@pytest.mark.parametrize(("arguments", "split", "reason", "words"), REQUEST_TABLE,
                         ids=[f"{row[0]['status']}-{row[0].get('kind') or row[0].get('error_type') or 'plain'}"
                              for row in REQUEST_TABLE])
def test_each_whole_request_failure_gets_its_verdict(arguments: dict[str, Any], split: bool, reason: str,
                                                     words: str) -> None:
    verdict = request_verdict(**{"url": "http://os:9200", **arguments})
    assert (verdict.split, verdict.reason) == (split, reason)
    assert words in verdict.message
    assert verdict.split or verdict.reason in REASONS


def test_no_whole_request_failure_is_a_verdict_on_the_documents() -> None:
    """The only outcomes of a whole-request failure: retry (with a reason) or split (413)."""
    for status in [0, *range(400, 432), *range(500, 512)]:
        for opensearch_body in (True, False):
            verdict = request_verdict(status=status, opensearch_body=opensearch_body)
            assert verdict.split == (status == 413)
            assert verdict.split or verdict.reason in REASONS


@pytest.mark.parametrize(("response", "sent", "problem"), [
    ({"took": 3, "errors": False, "items": [item(201)]}, 1, None),
    ("OK\n", 1, "not a JSON object"),
    ([1, 2], 2, "not a JSON object"),
    ({"ok": True}, 1, "no 'items' list"),
    ({"items": "x"}, 1, "no 'items' list"),
    ({"errors": False, "items": [item(201)]}, 2, "1 items answered for 2 documents"),
])
def test_a_200_must_be_a_bulk_response_for_what_was_sent(response: Any, sent: int, problem: str | None) -> None:
    found = bulk_response_problem(response, sent)
    assert found == problem if problem is None else problem in (found or "")
