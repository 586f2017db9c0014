"""``--once`` says which lines of live files it left for the next run, and the next run delivers them.

A live ``0.log`` may end inside a line (a ``P`` chunk whose ``F`` is still coming) or hold only lines
without a timestamp (waiting for the stream's first record): ``--once`` leaves both open, with the
checkpoint before them, so the next run reads them whole and dated right. That must not be silent:
the summary counts them and stderr says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.logwriter import ContainerLog, Ledger
from tests.support.opensearch_server import FakeOpenSearch

POD = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"
UID = "0f1e2d3c-1111-2222-3333-444455556666"


def run_once(tmp_path: Path, fos: FakeOpenSearch) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """One ``--once`` run into the loopback OpenSearch: the documents it added, its summary, its stderr."""
    before = {id(s) for s in fos.all_sources()}
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--opensearch-url", fos.url, "--log-root",
                           str(tmp_path / "pods"), "--state-dir", str(tmp_path / "state"), "--listen", ""],
                          capture_output=True, check=True, timeout=60, text=True)
    summary = next(json.loads(line)["summary"] for line in done.stderr.splitlines() if line.startswith('{"summary"'))
    added = sorted((s for s in fos.all_sources() if id(s) not in before), key=lambda s: (s["timestamp"], s["message"]))
    return added, summary, done.stderr


def container_log(tmp_path: Path) -> ContainerLog:
    return ContainerLog(tmp_path / "pods", namespace="team-a", pod=POD, uid=UID, container="kserve-container",
                        ledger=Ledger())


def messages(documents: list[dict[str, Any]]) -> list[str]:
    return [d["message"] for d in documents]


def test_a_line_still_being_written_is_counted_and_read_whole_by_the_next_run(tmp_path: Path) -> None:
    with FakeOpenSearch() as fos:
        _a_line_still_being_written(tmp_path, fos)


def _a_line_still_being_written(tmp_path: Path, fos: FakeOpenSearch) -> None:
    log = container_log(tmp_path)
    log.write("first line")
    log.write_partial("half of a line, ")  # written just now: its F may still come

    documents, summary, stderr = run_once(tmp_path, fos)
    assert messages(documents) == ["first line"]
    assert summary["left_for_next_run"] == 1
    assert "1 line(s) of live files left for the next run" in stderr

    log.write_final("and its end", whole_line="half of a line, and its end")
    documents, summary, stderr = run_once(tmp_path, fos)
    assert messages(documents) == ["half of a line, and its end"]
    assert summary["left_for_next_run"] == 0
    assert "left for the next run" not in stderr


def test_lines_waiting_for_their_streams_first_timestamp_are_counted(tmp_path: Path) -> None:
    with FakeOpenSearch() as fos:
        _lines_waiting_for_a_timestamp(tmp_path, fos)


def _lines_waiting_for_a_timestamp(tmp_path: Path, fos: FakeOpenSearch) -> None:
    log = container_log(tmp_path)
    log.write_raw(b"not a cri record\nnor this one\n", expect=None)

    documents, summary, stderr = run_once(tmp_path, fos)
    assert documents == []
    assert summary["left_for_next_run"] == 2
    assert "2 line(s) of live files left for the next run" in stderr

    log.write("the first record")
    documents, summary, _ = run_once(tmp_path, fos)
    assert sorted(messages(documents)) == ["nor this one", "not a cri record", "the first record"]
    assert len({d["timestamp"] for d in documents}) == 1  # dated by the record they waited for
    assert summary["left_for_next_run"] == 0
