"""The line assembler: partial merging, truncation, tracebacks, identity and resume positions."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.transforms.assembler import AssemblerOptions, LineAssembler, Position
from collector.transforms.undated import HOLD_MAX_LINES

FIELDS = {"namespace": "team-a", "pod_name": "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p", "pod_uid": "uid-1",
          "container_name": "kserve-container", "restart_count": 0}


def run(lines: list[bytes], *, start: Position | None = None, offset: int = 0, flush: bool = True,
        assembler_out: list[LineAssembler] | None = None,
        **options: Any) -> list[tuple[dict[str, Any], dict[str, Any], Position]]:
    """Feed lines; return (action meta, source, position) per emitted document."""
    out: list[tuple[dict[str, Any], dict[str, Any], Position]] = []

    def emit(piece: bytes, position: Position) -> None:
        action, source, rest = piece.split(b"\n")
        assert rest == b""
        out.append((orjson.loads(action)["create"], orjson.loads(source), position))

    assembler = LineAssembler(
        options=AssemblerOptions(index_template="serving-logs-{namespace}-{date}", **options),
        pod_uid="uid-1", container="kserve-container", restart_count=0, fields=FIELDS, emit=emit, start=start,
    )
    assembler.switch_file("file-1", offset)
    assembler.feed_lines(lines, start_offset=offset)
    if flush:
        assembler.flush()
    if assembler_out is not None:
        assembler_out.append(assembler)
    return out


def test_partial_chunks_merge_into_one_line_with_the_first_chunks_timestamp() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout P aaa", b"2026-11-24T09:00:00.2Z stdout P bbb",
                b"2026-11-24T09:00:00.3Z stdout F ccc"])
    assert [d[1]["message"] for d in docs] == ["aaabbbccc"]
    assert docs[0][1]["timestamp"] == "2026-11-24T09:00:00.100000000Z"


def test_interleaved_stdout_and_stderr_partials_do_not_mix() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout P out-1 ", b"2026-11-24T09:00:00.2Z stderr P err-1 ",
                b"2026-11-24T09:00:00.3Z stdout F out-2", b"2026-11-24T09:00:00.4Z stderr F err-2"])
    assert sorted((d[1]["stream"], d[1]["message"]) for d in docs) == [("stderr", "err-1 err-2"), ("stdout", "out-1 out-2")]


def test_resume_position_stays_at_an_open_partial_line() -> None:
    lines = [b"2026-11-24T09:00:00.1Z stdout F done", b"2026-11-24T09:00:00.2Z stdout P open-"]
    docs = run(lines, flush=False)
    assert len(docs) == 1
    # the position handed out with "done" is after it: the P was not read when it was emitted
    assert docs[0][2].offset == len(lines[0]) + 1


def test_trailing_partial_without_final_is_flushed_as_a_line_marked_partial() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout P a-", b"2026-11-24T09:00:00.1Z stdout F b",
                b"2026-11-24T09:00:00.2Z stdout P no newline at exit"])
    assert [(d[1]["message"], d[1].get("partial")) for d in docs] == [("a-b", None), ("no newline at exit", True)]


def test_an_unfinished_line_stays_open_without_a_flush_of_partial_lines() -> None:
    docs = run([b"2026-11-24T09:00:00.2Z stdout P still being written"], flush=False)
    assert docs == []


def test_only_the_first_tag_counts() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout P:TAG1:TAG2 head-", b"2026-11-24T09:00:00.2Z stdout F:TAG1 tail",
                b"2026-11-24T09:00:00.3Z stdout NEWTAG unknown tags are full lines"])
    assert [d[1]["message"] for d in docs] == ["head-tail", "unknown tags are full lines"]
    assert not any("parse_error" in d[1] for d in docs)


def test_long_lines_are_cut_and_marked() -> None:
    chunk = b"x" * 16384
    lines = [b"2026-11-24T09:00:00.1Z stdout P " + chunk] * 4 + [b"2026-11-24T09:00:00.1Z stdout F end"]
    docs = run(lines, max_line_bytes=20000)
    source = docs[0][1]
    assert len(source["message"]) == 20000 and source["truncated"] is True
    assert source["original_bytes"] == 4 * 16384 + 3


def test_a_long_line_is_cut_on_a_character_boundary_without_a_false_invalid_utf8_marker() -> None:
    text = ("\u00e9" * 7 + "\u20ac").encode()  # 14 bytes of 2-byte characters, then a 3-byte one
    docs = run([b"2026-11-24T09:00:00.1Z stdout F " + text + b"tail"], max_line_bytes=16)
    source = docs[0][1]
    assert source["message"] == "\u00e9" * 7 and "parse_error" not in source
    assert source["truncated"] is True and source["original_bytes"] == len(text) + 4


def test_a_merged_line_is_cut_on_a_character_boundary_even_when_the_character_spans_two_chunks() -> None:
    euro = "\u20ac".encode()
    docs = run([b"2026-11-24T09:00:00.1Z stdout P " + b"x" * 9 + euro[:1], b"2026-11-24T09:00:00.2Z stdout P " + euro[1:],
                b"2026-11-24T09:00:00.3Z stdout F more"], max_line_bytes=11)
    source = docs[0][1]
    assert source["message"] == "x" * 9 and "parse_error" not in source
    assert (source["truncated"], source["original_bytes"]) == (True, 9 + 3 + 4)


def test_a_message_never_outgrows_the_limit_even_after_replacing_invalid_bytes() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout F " + b"\xff" * 10], max_line_bytes=16)
    source = docs[0][1]
    assert len(source["message"].encode()) <= 16 and source["parse_error"] == "invalid_utf8"
    assert source["truncated"] is True and source["original_bytes"] == 10


def test_a_line_too_long_to_read_whole_counts_its_content_and_is_cut_on_a_character() -> None:
    docs: list[tuple[dict[str, Any], Position]] = []
    assembler = LineAssembler(
        options=AssemblerOptions(index_template="serving-logs-{namespace}-{date}", max_line_bytes=16),
        pod_uid="uid-1", container="kserve-container", restart_count=0, fields=FIELDS,
        emit=lambda piece, position: docs.append((orjson.loads(piece.split(b"\n")[1]), position)),
    )
    assembler.switch_file("file-1", 0)
    garbage = b"no record " * 10
    assembler.feed_overlong(garbage[:40], start_offset=0, end_offset=len(garbage) + 1)  # waits for a timestamp
    prefix = b"2026-11-24T09:00:00.1Z stdout F "
    content = ("\u00e9" * 20).encode()
    start = len(garbage) + 1
    assembler.feed_overlong((prefix + content)[:50], start_offset=start, end_offset=start + len(prefix) + len(content) + 1)
    first, second = docs[0][0], docs[1][0]
    assert (first["timestamp"], first["parse_error"], first["original_bytes"]) == (
        "2026-11-24T09:00:00.100000000Z", "malformed_cri", len(garbage))
    assert (second["message"], second["original_bytes"], second["truncated"]) == ("\u00e9" * 8, len(content), True)
    assert "parse_error" not in second


def test_invalid_utf8_and_nul_bytes_are_kept_and_marked() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout F bad \xff\xfe byte \x00 nul"])
    assert docs[0][1]["message"] == "bad \ufffd\ufffd byte \x00 nul"
    assert docs[0][1]["parse_error"] == "invalid_utf8"


def test_malformed_line_is_kept_with_the_previous_timestamp() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout F good", b"this is not cri"])
    assert docs[1][1]["parse_error"] == "malformed_cri"
    assert docs[1][1]["timestamp"] == docs[0][1]["timestamp"]
    assert docs[1][0]["_id"] != docs[0][0]["_id"]


def test_leading_garbage_takes_the_timestamp_of_the_streams_first_record_and_is_numbered_before_it() -> None:
    lines = [b"\x00\x00\x00", b"not cri", b"2026-11-24T09:00:00.5Z stderr F first", b"2026-11-24T09:00:00.5Z stdout F second"]
    docs = run(lines)
    assert [d[1]["message"] for d in docs] == ["\x00\x00\x00", "not cri", "first", "second"]
    assert {d[1]["timestamp"] for d in docs} == {"2026-11-24T09:00:00.500000000Z"}
    assert {d[0]["_index"] for d in docs} == {"serving-logs-team-a-2026.11.24"}
    assert [d[1].get("parse_error") for d in docs] == ["malformed_cri", "malformed_cri", None, None]
    assert len({d[0]["_id"] for d in docs}) == 4
    # each held line's resume point is just after it (numbered at the record's timestamp)
    assert [d[2].offset for d in docs[:2]] == [4, 4 + 8]
    assert [d[0]["_id"] for d in run(lines[1:], start=docs[0][2], offset=4)] == [d[0]["_id"] for d in docs[1:]]


def test_lines_waiting_for_a_timestamp_keep_the_resume_point_before_them_and_are_no_idle_flush_matter() -> None:
    out: list[LineAssembler] = []
    assert run([b"garbage", b"more garbage"], flush=False, assembler_out=out) == []
    assembler = out[0]
    assert assembler.position() == Position("file-1", 0, 0, 0)
    assert not assembler.has_pending()


def test_a_stream_without_any_record_is_dated_at_the_epoch_when_flushed_for_good_and_counted() -> None:
    out: list[LineAssembler] = []
    docs = run([b"garbage", b"more garbage"], assembler_out=out)
    assert [(d[1]["timestamp"], d[1]["parse_error"]) for d in docs] == [("1970-01-01T00:00:00.000000000Z", "malformed_cri")] * 2
    assert {d[0]["_index"] for d in docs} == {"serving-logs-team-a-1970.01.01"}
    assert out[0].parse_errors == {"malformed_cri": 2, "undated": 2}


def test_too_many_lines_without_a_timestamp_are_dated_as_a_stream_without_one() -> None:
    lines = [b"garbage %d" % i for i in range(HOLD_MAX_LINES + 5)] + [b"2026-11-24T09:00:00.5Z stdout F late"]
    docs = run(lines)
    stamps = [d[1]["timestamp"] for d in docs]
    assert stamps[:-1] == ["1970-01-01T00:00:00.000000000Z"] * (HOLD_MAX_LINES + 5)  # then the predecessor rule
    assert stamps[-1] == "2026-11-24T09:00:00.500000000Z"
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for crash_after in (3, HOLD_MAX_LINES - 1, HOLD_MAX_LINES + 2):
        position = docs[crash_after][2]
        first = offsets.index(position.offset)
        assert [d[0]["_id"] for d in run(lines[first:], start=position, offset=position.offset)] == \
            [d[0]["_id"] for d in docs[crash_after + 1:]]


def test_more_than_max_line_bytes_without_a_timestamp_is_dated_as_a_stream_without_one() -> None:
    docs = run([b"ten bytes!", b"ten bytes!", b"2026-11-24T09:00:00.5Z stdout F late"], max_line_bytes=16)
    assert [d[1]["timestamp"][:4] for d in docs] == ["1970", "1970", "2026"]
    docs = run([b"ten bytes!", b"2026-11-24T09:00:00.5Z stdout F in time"], max_line_bytes=16)
    assert [d[1]["timestamp"][:4] for d in docs] == ["2026", "2026"]


def test_garbage_between_records_takes_the_timestamp_before_it() -> None:
    docs = run([b"2026-11-24T09:00:00.1Z stdout F a", b"garbage", b"2026-11-24T09:00:02Z stdout F b"])
    assert [d[1]["timestamp"][17:22] for d in docs] == ["00.10", "00.10", "02.00"]


def test_log_text_that_looks_like_bulk_ndjson_stays_inside_the_message() -> None:
    evil = b'x"}}\n{"delete":{"_index":"serving-logs-team-a-2026.11.24","_id":"victim"}}'.replace(b"\n", b"\\n")
    docs = run([b"2026-11-24T09:00:00.1Z stdout F " + evil,
                b'2026-11-24T09:00:00.2Z stdout F {"_index":"other","_id":"forged","routing":"r","pipeline":"p"}'])
    assert [d[0]["_index"] for d in docs] == ["serving-logs-team-a-2026.11.24"] * 2
    assert docs[1][0]["_id"] != "forged"
    assert "_index" not in docs[1][1] and docs[1][1]["message"].startswith('{"_index"')


def test_python_traceback_becomes_one_document() -> None:
    tb = [b"Traceback (most recent call last):", b'  File "/app/model.py", line 42, in predict',
          b"    return self.model(x)", b"           ^^^^^^^^^^^^^", b"ValueError: bad input"]
    lines = [b"2026-11-24T09:00:00.1Z stderr F before"]
    lines += [b"2026-11-24T09:00:01.%dZ stderr F " % i + t for i, t in enumerate(tb, 1)]
    lines += [b"2026-11-24T09:00:02Z stderr F after"]
    docs = run(lines)
    messages = [d[1]["message"] for d in docs]
    assert messages == ["before", "\n".join(t.decode() for t in tb), "after"]
    assert docs[1][1]["line_count"] == 5 and docs[1][1]["level"] == "error"


def test_chained_tracebacks_stay_together_and_trailing_blank_lines_do_not() -> None:
    tb = [b"Traceback (most recent call last):", b'  File "a.py", line 1, in f', b"KeyError: 'x'", b"",
          b"During handling of the above exception, another exception occurred:", b"",
          b"Traceback (most recent call last):", b'  File "a.py", line 3, in g', b"RuntimeError: y", b"", b"next"]
    docs = run([b"2026-11-24T09:00:01Z stderr F " + t for t in tb])
    assert [d[1].get("line_count") for d in docs] == [9, None, None]
    assert [d[1]["message"] for d in docs][1:] == ["", "next"]


def test_grouping_can_be_switched_off() -> None:
    docs = run([b"2026-11-24T09:00:01Z stderr F Traceback (most recent call last):",
                b"2026-11-24T09:00:01Z stderr F   File x", b"2026-11-24T09:00:01Z stderr F E: y"], multiline=False)
    assert len(docs) == 3


def test_lines_sharing_a_timestamp_get_distinct_ids() -> None:
    docs = run([b"2026-11-24T09:00:01Z stdout F same"] * 3)
    assert len({d[0]["_id"] for d in docs}) == 3


# -- the resume property ---------------------------------------------------------------------
_CONTENT = st.sampled_from([
    b"hello", b"", b"Traceback (most recent call last):", b'  File "x.py", line 1, in f', b"    ^^^^",
    b"ValueError: boom", b"During handling of the above exception, another exception occurred:", b"\xff\xfe",
    b"2025-06-10 11:36:26.764 1 kserve ERROR [a.py:f():1] x", b'{"level":"info"}',
])
_RECORD = st.tuples(st.integers(0, 3), st.sampled_from([b"stdout", b"stderr"]),
                    st.sampled_from([b"P", b"F", b"F", b"P:x", b"X"]),
                    _CONTENT, st.booleans())


def _lines(records: list[tuple[int, bytes, bytes, bytes, bool]], leading_garbage: int = 0) -> list[bytes]:
    lines, second = [b"\x00garbage %d" % i for i in range(leading_garbage)], 0
    for step, stream, tag, content, malformed in records:
        second += step  # non-decreasing timestamps, often equal
        if malformed:
            lines.append(b"garbage " + content)
        else:
            lines.append(b"2026-11-24T09:%02d:%02dZ %s %s %s" % (second // 60 % 60, second % 60, stream, tag, content))
    return lines


@settings(max_examples=300, deadline=None)
@given(st.lists(_RECORD, min_size=1, max_size=40), st.integers(0, 3), st.data())
def test_resuming_from_any_emitted_position_reproduces_the_rest_with_the_same_ids(records: Any, leading: int,
                                                                                   data: Any) -> None:
    lines = _lines(records, leading)
    full = run(lines)
    ids = [d[0]["_id"] for d in full]
    assert len(set(ids)) == len(ids), "ids are unique within a stream"
    if not full:
        return
    everything = {(d[0]["_id"], orjson.dumps(d[1])) for d in full}
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1

    def resume(position: Position) -> list[tuple[dict[str, Any], dict[str, Any], Position]]:
        first = offsets.index(position.offset) if position.offset < at else len(lines)
        position = Position.from_json(orjson.loads(orjson.dumps(position.to_json())))  # as checkpointed
        return run(lines[first:], start=position, offset=position.offset)

    # crash after any acknowledged document, resume; crash again inside the resumed run, resume again
    docs, acked = full, set()
    for _crash in range(2):
        if not docs:
            break
        crash_after = data.draw(st.integers(0, len(docs) - 1))
        acked |= {(d[0]["_id"], orjson.dumps(d[1])) for d in docs[: crash_after + 1]}
        docs = resume(docs[crash_after][2])
        replayed = {(d[0]["_id"], orjson.dumps(d[1])) for d in docs}
        assert replayed <= everything, "a replay produces only documents of the full run, with the same ids"
        assert acked | replayed == everything, "nothing after the acknowledged position is lost"


def test_the_same_lines_through_the_kubelet_api_get_the_same_ids_as_from_files() -> None:
    files = run([b"2026-11-24T09:00:00.1Z stdout F one", b"2026-11-24T09:00:00.1Z stderr F two",
                 b"2026-11-24T09:00:01Z stdout P thr", b"2026-11-24T09:00:01.5Z stdout F ee"])
    api_out: list[str] = []
    assembler = LineAssembler(
        options=AssemblerOptions(index_template="serving-logs-{namespace}-{date}"), pod_uid="uid-1",
        container="kserve-container", restart_count=0, fields=FIELDS, kubelet_api=True,
        emit=lambda piece, _pos: api_out.append(orjson.loads(piece.split(b"\n")[0])["create"]["_id"]),
    )
    assembler.feed_lines([b"2026-11-24T09:00:00.100000000Z one", b"2026-11-24T09:00:00.100000000Z two",
                          b"2026-11-24T09:00:01.000000000Z three"], start_offset=0)
    assembler.flush()
    assert api_out == [d[0]["_id"] for d in files]
