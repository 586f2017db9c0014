"""The kubelet simulator writes what a real node writes, and the ledger oracle catches every miscount.

The reliability tests trust these two helpers to decide whether the collector delivered each line
exactly once, so they get their own tests: the on-disk formats (containerd's 16 KiB split, its
trimmed RFC3339Nano timestamps, Docker json-file), the kubelet's rotation (naming, gzip of older
parts, deletion beyond max_files), crash loops and pod deletion; and the ledger comparison, which
must report a missing line, a duplicate, an unexpected document and a flag mismatch, and must not
report anything when a reference reader of the files reproduces the ledger.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kubelet import BASE_NS, CounterClock, KubeletSim, format_rfc3339nano, rotation_suffix
from tests.support.ledger import Ledger, LedgerEntry, expected_message

UID = "0f1e2d3c-1111-2222-3333-444455556666"
POD = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeletSim]:
    with KubeletSim(tmp_path / "pods") as simulator:
        yield simulator


def records(path: Path) -> list[tuple[str, str, str, bytes]]:
    """The CRI records of a file (gzipped or not) as (timestamp, stream, tag, content)."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends mid-record"
    out = []
    for line in data.split(b"\n")[:-1]:
        ts, stream, tag, content = line.split(b" ", 3)
        out.append((ts.decode(), stream.decode(), tag.decode(), content))
    return out


def read_back(root: Path) -> list[dict[str, Any]]:
    """A minimal reference reader, independent of the collector: the documents the files imply.

    Files of a container instance are read oldest first (rotated parts by name, then the live
    file); ``P`` chunks are merged per stream until their ``F``; a ``P`` never completed is
    flushed at the end. Tracebacks are not grouped: callers write none.
    """
    docs: list[dict[str, Any]] = []
    for pod_dir in sorted(root.iterdir()):
        _namespace, _pod, uid = pod_dir.name.split("_")
        for container_dir in sorted(pod_dir.iterdir()):
            restarts = sorted({int(p.name.split(".")[0]) for p in container_dir.iterdir()})
            for restart in restarts:
                live = container_dir / f"{restart}.log"
                parts = sorted(p for p in container_dir.glob(f"{restart}.log.*"))
                open_lines: dict[str, bytes] = {}
                for path in [*parts, live]:
                    for _ts, stream, tag, content in records(path):
                        whole = open_lines.pop(stream, b"") + content
                        if tag == "P":
                            open_lines[stream] = whole
                            continue
                        message, truncated = expected_message(whole)
                        docs.append({"pod_uid": uid, "container_name": container_dir.name, "restart_count": restart,
                                     "stream": stream, "message": message, "truncated": truncated})
                for stream, whole in open_lines.items():
                    message, truncated = expected_message(whole)
                    docs.append({"pod_uid": uid, "container_name": container_dir.name, "restart_count": restart,
                                 "stream": stream, "message": message, "truncated": truncated})
    return docs


# -- formats -----------------------------------------------------------------------------------
def test_layout_is_namespace_pod_uid_then_container_then_restart_count(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("hello")
    assert log.path == sim.root / f"team-a_{POD}_{UID}" / "kserve-container" / "0.log"
    assert records(log.path) == [("2026-11-24T09:00:00Z", "stdout", "F", b"hello")]


def test_a_line_over_16_kib_becomes_p_chunks_then_an_f_each_with_its_own_timestamp(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    content = bytes(range(65, 91)) * 1600  # 41,600 bytes
    log.write(content)
    got = records(log.path)
    assert [tag for _, _, tag, _ in got] == ["P", "P", "F"]
    assert [len(c) for _, _, _, c in got] == [16384, 16384, 41600 - 2 * 16384]
    assert b"".join(c for _, _, _, c in got) == content
    assert [ts for ts, _, _, _ in got] == ["2026-11-24T09:00:00Z", "2026-11-24T09:00:00.001Z", "2026-11-24T09:00:00.002Z"]


def test_a_line_of_exactly_16_kib_is_not_split_like_containerd(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write(b"x" * 16384)
    log.write(b"y" * 16385)
    assert [(tag, len(c)) for _, _, tag, c in records(log.path)] == [("F", 16384), ("P", 16384), ("F", 1)]


def test_timestamps_are_utc_rfc3339nano_with_trailing_zeros_trimmed(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("a", ts_ns=BASE_NS + 12 * 60 * 10**9 + 1 * 10**9 + 123_400_000)
    log.write("b", ts_ns=BASE_NS + 12 * 60 * 10**9 + 1 * 10**9)
    log.write("c", ts_ns=BASE_NS + 1)
    log.write("d", ts_ns=BASE_NS + 100_000_000)
    assert [ts for ts, _, _, _ in records(log.path)] == [
        "2026-11-24T09:12:01.1234Z", "2026-11-24T09:12:01Z", "2026-11-24T09:00:00.000000001Z", "2026-11-24T09:00:00.1Z"]


def test_records_can_share_one_timestamp(tmp_path: Path) -> None:
    with KubeletSim(tmp_path, clock=CounterClock(step_ns=0)) as frozen:
        log = frozen.container("team-a", POD, UID, "kserve-container")
        log.write_many(["one", "two", "two"], stream="stderr")
        assert {ts for ts, _, _, _ in records(log.path)} == {"2026-11-24T09:00:00Z"}
        assert [e.expected_message for e in frozen.ledger] == ["one", "two", "two"]


def test_a_crlf_line_loses_its_carriage_return_like_containerd_readline(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    entry = log.write(b"windows line\r")
    assert records(log.path)[0][3] == b"windows line"
    assert entry.expected_message == "windows line"


def test_docker_json_file_records_mark_partial_chunks_by_a_missing_newline(tmp_path: Path) -> None:
    with KubeletSim(tmp_path, fmt="docker", chunk_bytes=8) as docker:
        log = docker.container("team-a", POD, UID, "kserve-container")
        log.write("<b>&0123456789", stream="stderr")
        log.write(b"bad \xe2\x82 utf8")  # a truncated 3-byte sequence
        lines = log.path.read_bytes().split(b"\n")[:-1]
        assert lines[0] == b'{"log":"\\u003cb\\u003e\\u00260123","stream":"stderr","time":"2026-11-24T09:00:00Z"}'
        objs = [json.loads(line) for line in lines]
        assert [o["log"] for o in objs[:2]] == ["<b>&0123", "456789\n"]
        assert [o["stream"] for o in objs] == ["stderr", "stderr", "stdout", "stdout"]
        # Go replaces each invalid byte with its own U+FFFD; the ledger expects what the file says
        assert "".join(o["log"] for o in objs[2:]) == "bad \ufffd\ufffd utf8\n"
        assert [e.expected_message for e in docker.ledger] == ["<b>&0123456789", "bad \ufffd\ufffd utf8"]


# -- rotation ----------------------------------------------------------------------------------
def test_rotation_renames_with_the_utc_time_and_reopens_an_empty_live_file(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("before")
    rotated = log.rotate()
    assert rotated.name == f"0.log.{rotation_suffix(BASE_NS + 1_000_000)}" == "0.log.20261124-090000"
    assert log.path.read_bytes() == b""
    log.write("after")
    assert [c for _, _, _, c in records(rotated)] == [b"before"]
    assert [c for _, _, _, c in records(log.path)] == [b"after"]


def test_rotation_gzips_every_rotated_file_but_the_newest(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    for n in range(3):
        log.write(f"part {n}")
        log.rotate()
    names = [p.name for p in log.files()]
    assert names[0] == "0.log"
    assert [n.endswith(".gz") for n in names[1:]] == [True, True, False]
    assert not any(n.endswith(".tmp") for n in names)
    assert [c for p in log.files()[1:] for _, _, _, c in records(p)] == [b"part 0", b"part 1", b"part 2"]


def test_rotation_without_compression_leaves_rotated_files_plain(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    for n in range(3):
        log.write(f"part {n}")
        log.rotate(compress=False)
    assert not any(p.name.endswith(".gz") for p in log.files())
    assert len(log.files()) == 4


def test_rotation_keeps_at_most_max_files_deleting_the_oldest(tmp_path: Path) -> None:
    with KubeletSim(tmp_path, max_files=3) as small:
        log = small.container("team-a", POD, UID, "kserve-container")
        for n in range(6):
            log.write(f"part {n}")
            log.rotate()
        files = log.files()
        assert len(files) == 3
        assert [c for p in files[1:] for _, _, _, c in records(p)] == [b"part 4", b"part 5"]


def test_rotations_within_one_second_get_distinct_names(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    first = log.rotate(compress=False)
    second = log.rotate(compress=False)
    assert first != second
    assert first.exists() and second.exists()


def test_without_reopen_writes_land_in_the_renamed_file_until_the_runtime_reopens(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    rotated = log.rotate(reopen=False)
    log.write("late")
    assert not log.path.exists()
    log.reopen()
    log.write("fresh")
    assert [c for _, _, _, c in records(rotated)] == [b"late"]
    assert [c for _, _, _, c in records(log.path)] == [b"fresh"]


def test_a_partial_line_can_end_the_rotated_file_and_finish_in_the_new_one(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("first")
    entry = log.write_partial_then_final_across_rotation("straddling the rotation")
    rotated = [p for p in log.files() if p.name != "0.log"]
    assert len(rotated) == 1
    old, new = records(rotated[0]), records(log.path)
    assert old[-1][2] == "P" and new[0][2] == "F"
    assert old[-1][3] + new[0][3] == b"straddling the rotation"
    assert entry.expected_message == "straddling the rotation"


def test_a_long_line_across_rotation_keeps_all_its_p_chunks_in_the_old_file(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write_partial_then_final_across_rotation(b"z" * 40000)
    rotated = next(p for p in log.files() if p.name != "0.log")
    assert [(tag, len(c)) for _, _, tag, c in records(rotated)] == [("P", 16384), ("P", 16384)]
    assert [(tag, len(c)) for _, _, tag, c in records(log.path)] == [("F", 40000 - 32768)]


def test_a_trailing_partial_is_p_records_only_and_expected_as_a_line(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    entry = log.write_trailing_partial(b"q" * 20000)
    assert [tag for _, _, tag, _ in records(log.path)] == ["P", "P"]
    assert entry.kind == "partial" and entry.expected_message == "q" * 20000


def test_truncate_empties_the_live_file_and_appends_restart_at_zero(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("old")
    log.truncate()
    log.write("new")
    assert [c for _, _, _, c in records(log.path)] == [b"new"]


def test_a_crash_loop_writes_one_file_per_restart_count(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("run 0")
    second = log.restart()
    second.write("run 1")
    third = second.restart()
    third.write("run 2")
    assert [p.name for p in third.files()] == ["0.log", "1.log", "2.log"]
    assert [(e.restart_count, e.expected_message) for e in sim.ledger] == [(0, "run 0"), (1, "run 1"), (2, "run 2")]
    with pytest.raises(RuntimeError):
        log.write("a dead container cannot write")


def test_deleting_the_pod_removes_its_directory(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    other = sim.container("team-a", "other-pod", "uid-2", "kserve-container")
    log.write("x")
    other.write("y")
    log.delete_pod()
    assert not log.pod_directory.exists()
    assert other.path.exists()


def test_write_raw_puts_bytes_as_they_are_and_records_only_what_is_expected(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write_raw(b"garbage without a newline\n", expect="garbage without a newline")
    log.write_raw(b"\n")
    assert log.path.read_bytes() == b"garbage without a newline\n\n"
    assert [(e.kind, e.stream, e.expected_message) for e in sim.ledger] == [("raw", "", "garbage without a newline")]


def test_containerd_timestamp_format_matches_go_rfc3339nano() -> None:
    assert format_rfc3339nano(BASE_NS) == "2026-11-24T09:00:00Z"
    assert format_rfc3339nano(BASE_NS + 120_000) == "2026-11-24T09:00:00.00012Z"
    assert format_rfc3339nano(BASE_NS + 999_999_999) == "2026-11-24T09:00:00.999999999Z"


# -- ledger expectations -----------------------------------------------------------------------
def test_expected_message_cuts_long_lines_and_replaces_invalid_utf8_keeping_nul() -> None:
    assert expected_message(b"a\x00b\xff") == ("a\x00b\ufffd", False)
    assert expected_message(b"abcdef", max_line_bytes=4) == ("abcd", True)
    assert expected_message("é".encode() * 3, max_line_bytes=3) == ("é\ufffd", True)


def test_a_traceback_is_one_ledger_line_of_its_physical_lines(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    lines = ["Traceback (most recent call last):", '  File "/app/model.py", line 42, in predict', "KeyError: 'x'"]
    entry = log.write_traceback(lines)
    assert [(s, t) for _, s, t, _ in records(log.path)] == [("stderr", "F")] * 3
    assert len(sim.ledger) == 1
    assert entry.expected_message == "\n".join(lines) and entry.kind == "traceback"


def test_a_line_over_max_line_bytes_is_expected_truncated(tmp_path: Path) -> None:
    with KubeletSim(tmp_path, max_line_bytes=20000) as small:
        entry = small.container("team-a", POD, UID, "kserve-container").write(b"w" * 50000)
        assert entry.truncated and entry.expected_message == "w" * 20000


# -- the oracle ----------------------------------------------------------------------------------
def _mixed_workload(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("same line")
    log.write("same line")  # identical lines are legitimate: both must arrive
    log.write(b"nul \x00 and invalid \xff", stream="stderr")
    log.write(b"L" * 40000)
    log.write_partial_then_final_across_rotation(b"S" * 20000)
    log.write("after rotation")
    log.rotate()
    log.write("in the third file")
    agent = sim.container("team-a", POD, UID, "agent")
    agent.write_many([f"agent {n}" for n in range(5)])
    restarted = agent.restart()
    restarted.write("restarted")
    restarted.write_trailing_partial("exit without newline")


def test_a_reference_reader_of_the_files_reproduces_the_ledger_exactly_once(sim: KubeletSim) -> None:
    _mixed_workload(sim)
    report = sim.ledger.compare(read_back(sim.root))
    assert report.exactly_once, report
    assert report.expected == report.received == len(sim.ledger) == 14


def test_the_oracle_reports_a_missing_line(sim: KubeletSim) -> None:
    _mixed_workload(sim)
    docs = read_back(sim.root)
    lost = next(d for d in docs if d["message"] == "agent 3")
    docs.remove(lost)
    report = sim.ledger.compare(docs)
    assert not report.exactly_once
    assert [e.expected_message for e in report.missing] == ["agent 3"]
    assert not (report.duplicated or report.unexpected or report.mismatched)
    assert "1 missing" in str(report) and "'agent 3'" in str(report)


def test_the_oracle_reports_a_duplicate_even_of_a_line_written_twice(sim: KubeletSim) -> None:
    _mixed_workload(sim)
    docs = read_back(sim.root)
    docs.append(dict(next(d for d in docs if d["message"] == "same line")))
    report = sim.ledger.compare(docs)
    assert not report.exactly_once
    assert [d["message"] for d in report.duplicated] == ["same line"]
    assert not (report.missing or report.unexpected or report.mismatched)


def test_the_oracle_reports_one_of_two_identical_lines_missing(sim: KubeletSim) -> None:
    _mixed_workload(sim)
    docs = read_back(sim.root)
    docs.remove(next(d for d in docs if d["message"] == "same line"))
    report = sim.ledger.compare(docs)
    assert [e.expected_message for e in report.missing] == ["same line"]


def test_the_oracle_reports_an_unexpected_document(sim: KubeletSim) -> None:
    _mixed_workload(sim)
    docs = read_back(sim.root)
    docs.append({"pod_uid": UID, "container_name": "agent", "restart_count": 0, "stream": "stdout", "message": "ghost"})
    docs.append({"pod_uid": UID, "container_name": "agent", "restart_count": 7, "stream": "stdout", "message": "agent 1"})
    report = sim.ledger.compare(docs)
    assert [(d["restart_count"], d["message"]) for d in report.unexpected] == [(0, "ghost"), (7, "agent 1")]
    assert not (report.missing or report.duplicated or report.mismatched)


def test_the_oracle_reports_a_wrong_stream_or_truncation_flag_unless_streams_are_unknowable(sim: KubeletSim) -> None:
    log = sim.container("team-a", POD, UID, "kserve-container")
    log.write("to stderr", stream="stderr")
    log.write("plain")
    docs = [{"pod_uid": UID, "container_name": "kserve-container", "restart_count": 0, "stream": "stdout",
             "message": "to stderr"},
            {"pod_uid": UID, "container_name": "kserve-container", "restart_count": 0, "stream": "stdout",
             "message": "plain", "truncated": True}]
    report = sim.ledger.compare(docs)
    assert [(e.expected_message, d["stream"]) for e, d in report.mismatched] == [("to stderr", "stdout"), ("plain", "stdout")]
    assert not report.exactly_once
    api_docs = [{k: v for k, v in d.items() if k not in ("stream", "truncated")} for d in docs]
    assert sim.ledger.compare(api_docs, check_stream=False).exactly_once


def test_truncated_lines_match_by_prefix_tolerating_a_dropped_partial_character(tmp_path: Path) -> None:
    with KubeletSim(tmp_path, max_line_bytes=5000) as small:
        log = small.container("team-a", POD, UID, "kserve-container")
        entry = log.write(("a" + "é" * 4000).encode())  # the cut at 5000 bytes splits a 2-byte character
        assert entry.expected_message.endswith("\ufffd")
        base = {"pod_uid": UID, "container_name": "kserve-container", "restart_count": 0, "stream": "stdout",
                "truncated": True}
        assert small.ledger.compare([{**base, "message": "a" + "é" * 2499}]).exactly_once
        assert small.ledger.compare([{**base, "message": entry.expected_message}]).exactly_once
        report = small.ledger.compare([{**base, "message": "a" + "é" * 2000}])  # far too short: not that line
        assert len(report.unexpected) == 1 and len(report.missing) == 1
        twice = small.ledger.compare([{**base, "message": "a" + "é" * 2499}, {**base, "message": "a" + "é" * 2499}])
        assert len(twice.duplicated) == 1 and not twice.missing


def test_search_hits_are_unwrapped_to_their_source(sim: KubeletSim) -> None:
    sim.container("team-a", POD, UID, "kserve-container").write("hit")
    hit = {"_index": "serving-logs-team-a-2026.11.24", "_id": "x", "_source": {
        "pod_uid": UID, "container_name": "kserve-container", "restart_count": 0, "stream": "stdout", "message": "hit"}}
    assert sim.ledger.compare([hit]).exactly_once


def test_a_report_stays_readable_with_huge_messages(sim: KubeletSim) -> None:
    sim.container("team-a", POD, UID, "kserve-container").write(b"h" * 100000)
    text = str(sim.ledger.compare([]))
    assert "1 missing" in text and "100000 chars" in text
    assert len(text) < 1000


# -- persistence ---------------------------------------------------------------------------------
def test_a_ledger_file_written_entry_by_entry_loads_back_identically(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    with KubeletSim(tmp_path / "pods", ledger=Ledger(path)) as writer:
        _mixed_workload(writer)
        written = list(writer.ledger)
    assert list(Ledger.load(path)) == written
    writer.ledger.save(tmp_path / "copy.jsonl")
    assert list(Ledger.load(tmp_path / "copy.jsonl")) == written
    assert any("\x00" in e.expected_message for e in written)


def test_loading_ignores_a_torn_last_line_of_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.add(UID, "agent", 0, "stdout", "complete")
    with path.open("a") as handle:
        handle.write('{"pod_uid":"x","contai')
    assert [e.expected_message for e in Ledger.load(path)] == ["complete"]
    assert Ledger.load(tmp_path / "absent.jsonl").entries == []


def test_ledger_entries_round_trip_through_json() -> None:
    entry = LedgerEntry(UID, "agent", 2, "stderr", "tab\tnul\x00 é", "traceback", True)
    assert LedgerEntry.from_mapping(json.loads(entry.to_json())) == entry
