"""The compiled fast path and the Python reference path produce byte-identical output.

On random CRI streams (full and partial records, malformed and Docker lines, tracebacks, JSON and
text levels, Unicode, control characters, invalid UTF-8, repeated timestamps and steps back,
midnight crossings, lines over the limit), with traceback grouping on and off, fed in random chunks:
the same bulk bodies (so the same ``_id``, index and document), the same position after every
document, the same batches (contents, end offsets and positions) and the same counters. The
reference path is the oracle (``pipeline.native: off``).
"""

from __future__ import annotations

import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.pipeline.batcher import Batch, Batcher
from collector.pipeline.checkpoints import AckTracker, CheckpointStore
from collector.transforms import native
from collector.transforms.assembler import AssemblerOptions, LineAssembler, Position
from collector.transforms.levels import detect_level

pytestmark = pytest.mark.skipif(not native.available(), reason=f"the compiled fast path is not built: "
                                f"{native.why_unavailable()}")

FIELDS = {"namespace": "team-a", "pod_name": "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p", "pod_uid": "uid-1",
          "container_name": "kserve-container", "restart_count": 0, "model_name": "iris ✓"}

CONTENTS = [
    "2025-06-10 11:36:26.764 269781 kserve INFO [model_server.py:__call__():110] ready",
    "2025-06-10 11:36:26,764 kserve.trace ERROR: boom", "2025-06-10T11:36:26Z WARN x", "2025-06-10 11:36:26 [ERROR] y",
    "2025-06-10 11:36:26.1+02:00 1 2 INFO z", "2025-06-10 11:36:26.1+0200\tkserve\x1cDEBUG:", "2025-06-10 11:36:26 INFO",
    "2025-06-10 11:36:26 123 INFO:x", "2025-06-10 11:36:26 a.b-c WARNING: w", "2025-06-10 11:36:26 [WARNING]x",
    "2025-06-10 11:36:26 WARNINGS y", "2025-06-10 11:36:26 x y INFO z", "2025-06-10 11:36:26.: INFO",
    "INFO:     127.0.0.1:50000 - \"POST /v1/models/iris:predict HTTP/1.1\" 200 OK", "WARNING: x", "WARN:\ty", "ERROR:x",
    "CRITICAL: c", "FATAL:  f", "DEBUG:", "2022-03-08 05:31:44.366405: I tensorflow_serving/model_servers/x.cc:1]",
    "2022-03-08 05:31:44.3: E y ", "E0308 05:31:44.1 123 x.cc] e", "W0308 05:31:4", "I1234 12:34:56", "info: lower",
    '{"level":"info","ts":1795510806.575602,"msg":"batch flushed"}', '{"severity":"WARNING","x":[1,2,{"a":null}]}',
    '{"levelname":"Error"}', '{"lvl":3,"level":"debug"}', '{"level":"INFO","level":3}', '{"level":3,"severity":"err"}',
    '{"level":"notice"} ', '{"level":"info"}x', '{"level":"in\\"fo"}', '{"lev\\u0065l":"info"}', '{"a":1e5,"level":"info"}',
    '{"a":12345678901234567890123,"level":"info"}', '{"level":"\u0131nfo"}', '{"level":"İNFO"}', '{"log.level":"fatal"}',
    '{"level":"info",}', '{"level":"info" "a":1}', '{"a":01,"level":"info"}', '{"a":-0.5,"level":"WARN"}',
    '{"a":"\\ud800","level":"info"}', '{"a":"tab\tin string","level":"info"}', '{}', '{"level":null}', "{", '{"a":[}',
    '{"a":{"b":{"c":{"d":[[[[]]]]}}},"level":"alert"}', '{"a":true,"b":false,"level":"panic"}', '[1]',
    "Traceback (most recent call last):", '  File "/app/model.py", line 42, in predict', "    return self.model(x)",
    "           ^^^^^^^^^^^^^", "ValueError: bad input", "",
    "During handling of the above exception, another exception occurred:", "\tindented", "ünïcödé INFO: x",
    "INFO: ünïcödé", "\u0663\u0663\u0663\u0663-06-10 11:36:26 INFO x", "2025-06-10 11:36:26\u00a0INFO x",
    "a\x00b\x01c\x7f\x1f\"\\/",
    "emoji 😀 and \u2028 separators", "x" * 150 + " INFO: late", "2025-06-10 11:36:26 " + "n" * 150 + " INFO x",
]
STAMPS = ["2026-11-24T23:59:59.999999999Z", "2026-11-24T23:59:59.5Z", "2026-11-24T23:59:59Z", "2026-11-25T00:00:00.000001Z",
          "2026-11-24T23:59:59.5Z", "2026-11-24T09:00:00.1Z", "2026-11-24T23:59:59.123456789012Z", "2026-11-24T9:00:00.1Z",
          "2026-11-24T23:59:59.5+01:00", "2026-11-24T23:59:59,5Z", "2026-11-24T23:59:59.Z", "2026-02-29T00:00:00Z",
          "2028-02-29T00:00:00Z", "2026-11-24T24:00:00Z", "2026-13-01T00:00:00Z", "1970-01-01T00:00:00Z",
          "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z", "2026-11-24t09:00:00Z", "2026-11-24T09:00:00z"]

PLAIN_STAMPS = ["2026-11-24T23:59:59.999999999Z", "2026-11-24T23:59:59.5Z", "2026-11-24T23:59:59Z",
                "2026-11-24T23:59:59.5Z", "2026-11-24T09:00:00.1Z", "2026-11-24T23:59:59.0000001Z"]

contents = st.one_of(
    st.sampled_from(CONTENTS),
    st.sampled_from(CONTENTS),
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("IWEF0123456789 :.-[]{}\"\\INFOWARNERROR\t\x1d"), max_size=30),
)


@st.composite
def raw_lines(draw: Any) -> bytes:
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.binary(max_size=30))  # anything, invalid UTF-8 included
    if kind == 1:
        return b'{"log":"docker line\\n","stream":"stdout","time":"2026-11-24T09:00:00.1Z"}'
    wild = kind < 6  # else a plain record, mostly of one day: what the fast path takes
    stamp = draw(st.sampled_from(STAMPS if wild else PLAIN_STAMPS))
    stream = draw(st.sampled_from(["stdout", "stderr"] * 5 + ["stdin", ""])) if wild else draw(
        st.sampled_from(["stdout", "stderr"]))
    tag = draw(st.sampled_from(["F"] * 8 + ["P", "P", "F:x", "P:x", "", "X"])) if wild else "F"
    content = draw(contents).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 15)) == 0:
        content += draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82"]))
    if draw(st.integers(0, 20)) == 0:
        content = content * 20 + "é".encode() * 40
    return b" ".join((stamp.encode(), stream.encode(), tag.encode(), content))


def _assembler(mode: str, multiline: bool, max_line_bytes: int, emit: Any, batch: Any = None) -> LineAssembler:
    options = AssemblerOptions(index_template="serving-logs-{namespace}-{date}", max_line_bytes=max_line_bytes,
                               multiline=multiline, multiline_max_lines=4, native=mode)
    return LineAssembler(options=options, pod_uid="uid-1", container="kserve-container", restart_count=2,
                         fields=FIELDS, emit=emit, batch=batch)


def _feed(assembler: LineAssembler, lines: list[bytes], cuts: list[int]) -> None:
    assembler.switch_file("file-1", 7)
    offset, start = 7, 0
    for cut in [*sorted(cuts), len(lines)]:
        chunk = lines[start:cut]
        if chunk:
            assembler.feed_lines(chunk, start_offset=offset)
            offset += sum(len(line) + 1 for line in chunk)
        start = max(start, cut)
    assembler.flush()


def _state(assembler: LineAssembler) -> tuple[Any, ...]:
    return (assembler.documents, assembler.parse_errors, assembler.position(), assembler._counts, assembler._seq)


def _documents(mode: str, lines: list[bytes], cuts: list[int], multiline: bool, max_line_bytes: int) -> tuple[Any, ...]:
    out: list[tuple[bytes, Position]] = []
    assembler = _assembler(mode, multiline, max_line_bytes, lambda piece, position: out.append((piece, position)))
    _feed(assembler, lines, cuts)
    return out, _state(assembler)


def _batches(mode: str, lines: list[bytes], cuts: list[int], multiline: bool, max_line_bytes: int,
             max_docs: int, max_bytes: int) -> tuple[Any, ...]:
    with tempfile.TemporaryDirectory() as state_dir:
        acks = AckTracker(CheckpointStore(Path(state_dir) / "checkpoints.json"))
        out: queue.Queue[Batch | None] = queue.Queue()
        batcher = Batcher(acks=acks, out=out, max_docs=max_docs, max_bytes=max_bytes, max_age=1e9,
                          stop=threading.Event())
        assembler = _assembler(mode, multiline, max_line_bytes, lambda piece, position: batcher.add("s", piece, position),
                               batcher.for_stream("s"))
        _feed(assembler, lines, cuts)
        batcher.flush()
        batches = []
        while not out.empty():
            batch = out.get()
            assert batch is not None
            batches.append((batch.documents.body, batch.documents.ends.tolist(), batch.positions))
    return batches, _state(assembler)


streams = st.lists(raw_lines(), max_size=40)
chunk_cuts = st.lists(st.integers(0, 40), max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=streams, cuts=chunk_cuts, multiline=st.booleans(), max_line_bytes=st.sampled_from([48, 120, 1024 * 1024]))
def test_every_document_and_position_is_identical(lines: list[bytes], cuts: list[int], multiline: bool,
                                                  max_line_bytes: int) -> None:
    assert _documents("on", lines, cuts, multiline, max_line_bytes) == _documents("off", lines, cuts, multiline,
                                                                                  max_line_bytes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=streams, cuts=chunk_cuts, multiline=st.booleans(), max_docs=st.integers(1, 7),
       max_bytes=st.sampled_from([1, 600, 2000, 1 << 30]))
def test_batches_close_at_the_same_documents(lines: list[bytes], cuts: list[int], multiline: bool, max_docs: int,
                                             max_bytes: int) -> None:
    on = _batches("on", lines, cuts, multiline, 1024 * 1024, max_docs, max_bytes)
    assert on == _batches("off", lines, cuts, multiline, 1024 * 1024, max_docs, max_bytes)


@pytest.mark.parametrize("content", CONTENTS)
def test_levels_of_known_shapes_are_the_reference_levels(content: str) -> None:
    """Each sample line once, alone: its document (level included) is the reference path's."""
    line = b"2026-11-24T09:00:00.1Z stdout F " + content.encode()
    for multiline in (True, False):
        on = _documents("on", [line, line], [], multiline, 1024 * 1024)
        assert on == _documents("off", [line, line], [], multiline, 1024 * 1024)
    assert detect_level(content) is None or detect_level(content) in {"debug", "info", "warning", "error", "critical"}


TEXT_PIECES = ["2025-06-10", "2022-03-08", " ", "T", "11:36:26", "05:31:44", ".764", ",5", ".", "Z", "+02:00", "+0200",
               "-01", "\t", "  ", "123", "kserve", "a.b-c", "[", "]", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL",
               "FATAL", "DEBUG", ":", ": ", "I", "W", "E", "F", "0308", "x", "\x1c", "\x0b", "-", "INF"]
JSON_PIECES = ['{', '}', '"level"', '"severity"', '"levelname"', '"lvl"', '"log.level"', ':', ',', '"info"', '"WARN"',
               '"x"', '1', '-2.5', '1e3', 'true', 'null', '[', ']', ' ', '"a\\"b"', '"\\n"', '{"a":1}', '"Error"', '01']


@settings(max_examples=400, deadline=None)
@given(message=st.one_of(st.lists(st.sampled_from(TEXT_PIECES), max_size=12).map("".join),
                         st.lists(st.sampled_from(JSON_PIECES), max_size=10).map(lambda p: "{" + "".join(p))))
def test_levels_of_pattern_fragments_are_the_reference_levels(message: str) -> None:
    """The level patterns' own pieces, recombined: where the regex backtracks, the fast path agrees."""
    line = b"2026-11-24T09:00:00.1Z stdout F " + message.encode()
    assert _documents("on", [line, line], [], False, 1024 * 1024) == _documents("off", [line, line], [], False,
                                                                               1024 * 1024)


def test_the_fast_path_takes_plain_lines() -> None:
    """Not vacuous: with the extension, plain lines do go through it (one emitted run per document)."""
    calls: list[int] = []
    encode = native.resolve("on")
    assert encode is not None

    def counting(*args: Any) -> tuple[Any, ...]:
        result = encode(*args)
        calls.append(result[0])
        return result

    assembler = _assembler("on", True, 1024 * 1024, lambda piece, position: None)
    assembler._encode_run = counting
    lines = [b"2026-11-24T09:00:00.%dZ stdout F INFO: line %d" % (i + 1, i) for i in range(5)]
    _feed(assembler, lines, [])
    assert sum(calls) == 4  # the first line names the day's index on the reference path, the rest are runs


def test_native_off_and_on_resolve() -> None:
    assert native.resolve("off") is None
    assert native.resolve("auto") is not None
    assert native.describe("auto") == "on"
