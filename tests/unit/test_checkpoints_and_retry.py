"""Ordered acknowledgement, atomic checkpoint files, and the bulk verdict table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.pipeline.checkpoints import AckTracker, CheckpointStore
from collector.sinks.opensearch.retry import classify
from collector.transforms.assembler import Position


def pos(offset: int) -> Position:
    return Position("f", offset, 0, 0)


class TestAckOrder:
    def test_a_later_batch_acknowledged_first_does_not_move_the_checkpoint(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "c.json")
        acks = AckTracker(store)
        first = acks.register({"s": pos(10)})
        second = acks.register({"s": pos(20)})
        acks.acknowledge(second)
        assert store.get("s") is None
        acks.acknowledge(first)
        assert store.get("s") == pos(20)
        assert acks.in_flight() == 0

    def test_positions_of_different_streams_advance_together_in_order(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "c.json")
        acks = AckTracker(store)
        a = acks.register({"a": pos(1)})
        b = acks.register({"b": pos(2)})
        c = acks.register({"a": pos(3)})
        acks.acknowledge(a)
        acks.acknowledge(c)
        assert store.get("a") == pos(1) and store.get("b") is None
        acks.acknowledge(b)
        assert store.get("a") == pos(3) and store.get("b") == pos(2)


class TestStore:
    def test_save_is_atomic_and_reloads(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "checkpoints.json"
        store = CheckpointStore(path)
        store.update({"uid/c/0": Position("abc", 42, 7, 1, 0, ("stdout",))})
        assert store.save()
        assert not store.save(), "nothing changed: no write"
        assert not list(path.parent.glob(".*tmp"))
        assert CheckpointStore(path).get("uid/c/0") == Position("abc", 42, 7, 1, 0, ("stdout",))

    def test_a_damaged_file_is_set_aside_not_fatal(self, tmp_path: Path) -> None:
        path = tmp_path / "checkpoints.json"
        path.write_text('{"version": 1, "streams": {"a": ')
        store = CheckpointStore(path)
        assert store.load_error is not None and store.keys() == []
        assert list(tmp_path.glob("checkpoints.broken-*"))

    def test_forget_drops_a_stream(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "c.json")
        store.update({"a": pos(1)})
        store.forget("a")
        store.save(force=True)
        assert json.loads((tmp_path / "c.json").read_text())["streams"] == {}


def item(status: int, error_type: str = "", reason: str = "") -> dict[str, object]:
    body: dict[str, object] = {"status": status}
    if error_type:
        body["error"] = {"type": error_type, "reason": reason}
    return {"create": body}


class TestClassify:
    def test_all_created(self) -> None:
        verdict = classify({"errors": False, "items": [item(201), item(201)]}, 2)
        assert verdict.created == [0, 1] and not verdict.retry

    def test_each_status_gets_its_verdict(self) -> None:
        response = {"errors": True, "items": [
            item(201), item(409, "version_conflict_engine_exception"), item(429, "es_rejected_execution_exception"),
            item(400, "mapper_parsing_exception", "failed to parse field [timestamp]"), item(503, "unavailable"),
            item(403, "security_exception", "no permissions"), {"create": {}}]}
        verdict = classify(response, 7)
        assert verdict.created == [0]
        assert verdict.present == [1]
        assert verdict.retry == [2, 4, 5, 6], "403 is a missing permission: the destination's problem, retried"
        assert [(i, r.status, r.error_type) for i, r in verdict.rejected] == [(3, 400, "mapper_parsing_exception")]
        assert "timestamp" in verdict.rejected[0][1].reason

    def test_an_answer_that_does_not_match_the_request_is_retried_whole(self) -> None:
        verdict = classify({"errors": True, "items": [item(201)]}, 3)
        assert verdict.retry == [0, 1, 2] and not verdict.created

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    def test_transient_item_statuses_are_retried(self, status: int) -> None:
        assert classify({"errors": True, "items": [item(status)]}, 1).retry == [0]
