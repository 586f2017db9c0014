"""Decoding ``_bulk`` answers: ``"errors":false`` is counted, not parsed, and gives the same verdict."""

from __future__ import annotations

import orjson

from collector.sinks.opensearch.client import SucceededItems, _OrjsonSerializer
from collector.sinks.opensearch.retry import bulk_response_problem, classify


def _answer(items: list[dict[str, object]], errors: bool) -> str:
    return orjson.dumps({"took": 3, "errors": errors, "items": items}).decode()


def test_an_answer_without_errors_is_counted_and_classified_as_all_created() -> None:
    items = [{"create": {"status": 201}}] * 4 + [{"index": {"_index": "x", "_id": "a", "status": 200}}]
    decoded = _OrjsonSerializer().loads(_answer(items, errors=False))
    assert isinstance(decoded["items"], SucceededItems)
    assert len(decoded["items"]) == 5 and decoded["errors"] is False and decoded["took"] == 3
    assert bulk_response_problem(decoded, 5) is None
    assert classify(decoded, 5).created == list(range(5))
    assert decoded["items"][4] == items[4], "read, the items are the answer's own"


def test_a_miscount_is_a_problem_not_a_success() -> None:
    decoded = _OrjsonSerializer().loads(_answer([{"create": {"status": 201}}] * 2, errors=False))
    assert bulk_response_problem(decoded, 3) == "2 items answered for 3 documents sent"


def test_an_answer_with_errors_is_parsed_item_by_item() -> None:
    items = [{"create": {"status": 201}}, {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}]
    decoded = _OrjsonSerializer().loads(_answer(items, errors=True))
    assert decoded["items"] == items
    verdict = classify(decoded, 2)
    assert verdict.created == [0] and verdict.retry == [1]
