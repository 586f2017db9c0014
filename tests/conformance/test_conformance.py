"""Conformance: container log files in, the documents servelog must produce out (golden files).

Each case under ``cases/`` (see :mod:`tests.conformance.driver`) is a stream of files as a runtime
writes them, with the documents expected from it, built from the format's definition and the
kubelet's parser (``k8s.io/cri-client`` ``pkg/logs``). Three checks per case:

- the documents equal ``expected.ndjson`` (ids and target indices included: an identity is a
  promise, changing one breaks deduplication across an upgrade);
- a crash after any document, resumed at that document's position, produces only documents of the
  full run, with the same ids, and every document after it;
- the records agree with ``kubelet.json``, what the kubelet's own reader made of the same bytes,
  as the case's ``kubelet`` key claims (``same``, ``refuses``, or ``differs`` with ``why``).

The test compares and never writes. After an intended change, regenerate and review the diff:
``python -m tests.conformance.regenerate`` (``--kubelet`` re-records the kubelet's output; needs Go).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from collector.transforms.cri import parse_timestamp
from collector.transforms.position import Position
from tests.conformance.driver import Case, all_cases, read_expected, run_case

CASES = all_cases()
REGENERATE = "python -m tests.conformance.regenerate"

Entry = tuple[str, int | None, str, bool]  # (stream, instant, message, line complete)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_documents_match_the_golden_file(case: Case) -> None:
    produced = [doc for doc, _position in run_case(case)]
    expected = read_expected(case)
    assert produced == expected, f"{case.name}: documents differ from expected.ndjson; if intended: {REGENERATE} {case.name}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_resuming_after_any_document_reproduces_the_rest_with_the_same_ids(case: Case) -> None:
    full = run_case(case)
    everything = [orjson.dumps(doc) for doc, _position in full]
    for index, (_doc, position) in enumerate(full):
        checkpointed = Position.from_json(orjson.loads(orjson.dumps(position.to_json())))
        resumed = [orjson.dumps(doc) for doc, _p in run_case(case, start=checkpointed)]
        assert set(resumed) <= set(everything), f"{case.name}: a replay after document {index} made a new document"
        assert set(everything[index + 1:]) <= set(resumed), f"{case.name}: documents after {index} lost on resume"


def _kubelet_entries(output: dict[str, Any]) -> list[Entry]:
    """The kubelet's lines, per stream in order: ``<timestamp> <content>\\n`` (no newline: unfinished).

    A line whose start is no timestamp servelog reads (the kubelet left it out, or printed an instant
    outside date_nanos) has none: such an entry matches nothing of servelog's.
    """
    entries: list[Entry] = []
    for stream in ("stdout", "stderr"):
        text = base64.b64decode(output[stream] or "").decode("utf-8", "replace")
        lines = text.split("\n")
        unfinished = lines.pop()
        for index, line in enumerate([*lines, unfinished] if unfinished else lines):
            ts_text, _, message = line.partition(" ")
            parsed = parse_timestamp(ts_text)
            if parsed is None:
                entries.append((stream, None, line, index < len(lines)))
            else:
                entries.append((stream, parsed[0], message, index < len(lines)))
    return entries


def _servelog_entries(case: Case) -> list[Entry]:
    entries: list[Entry] = []
    for stream in ("stdout", "stderr"):
        for doc, _position in run_case(case):
            if doc.get("stream") == stream and doc.get("parse_error") != "malformed_cri":
                instant = parse_timestamp(doc["timestamp"])
                assert instant is not None
                entries.append((stream, instant[0], doc["message"], not doc.get("partial", False)))
    return entries


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_records_agree_with_the_kubelets_reader_as_the_case_claims(case: Case) -> None:
    output = orjson.loads(case.kubelet_path.read_bytes())
    if case.kubelet == "refuses":
        assert output["error"] and not output["stdout"] and not output["stderr"]
        return
    assert output["error"] is None, output["error"]
    agree = _kubelet_entries(output) == _servelog_entries(case)
    if case.kubelet == "same":
        assert agree, f"{case.name}: servelog's records differ from the kubelet's"
    else:
        assert case.kubelet == "differs" and case.why.strip(), f"{case.name}: say why servelog differs"
        assert not agree, f"{case.name}: claims to differ from the kubelet but agrees: set kubelet = \"same\""


def test_every_case_has_its_golden_files() -> None:
    assert len(CASES) >= 15
    for case in CASES:
        assert case.expected_path.exists() and case.kubelet_path.exists(), case.name
        assert case.kubelet in ("same", "refuses", "differs"), case.name
