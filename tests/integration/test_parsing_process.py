"""Parsing through the real process: ``servelog run --once --output stdout`` over kubelet-style files.

What a user sees for the cases the conformance table covers in-process: leading garbage lands in
its stream's day (not 1970), a stream without any record is dated at the epoch and counted, an
unfinished line is marked partial, only the first tag counts, and two runs give the same ids (a dry
run saves no checkpoint; resuming is covered in-process by the conformance and assembler tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.slow

POD = "team-a_iris-predictor-00001-deployment-7d9f8c6b5-x2x9p_0f1e2d3c-1111-2222-3333-444455556666"


def write(root: Path, container: str, data: bytes) -> None:
    directory = root / POD / container
    directory.mkdir(parents=True)
    path = directory / "0.log"
    path.write_bytes(data)
    old = time.time() - 3600  # the container stopped writing long ago: unfinished lines are done
    os.utime(path, (old, old))


def run_once(root: Path, state: Path) -> tuple[list[dict[str, Any]], bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout", "--log-root",
                           str(root), "--state-dir", str(state), "--listen", "", "--node-name", "n1"],
                          env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return [orjson.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_parsing_outcomes_seen_from_the_process(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    write(root, "kserve-container", b"\x00\x00\x00\x00\n"
          b"written by something else\n"
          b"2026-11-24T09:00:00.5Z stdout P:TAG1 first record, \n"
          b"2026-11-24T09:00:00.6Z stdout F:TAG2 merged\n"
          b"2026-11-24T09:00:00.7Z stderr P exited mid-line\n")
    write(root, "storage-initializer", b"Error: failed to create containerd task\nnot a record either\n")

    docs, _stderr = run_once(root, tmp_path / "state")
    by_container: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_container.setdefault(doc["source"]["container_name"], []).append(doc)

    predictor = by_container["kserve-container"]
    assert [(d["index"], d["source"]["timestamp"], d["source"]["message"], d["source"].get("parse_error"),
             d["source"].get("partial")) for d in predictor] == [
        ("serving-logs-team-a-2026.11.24", "2026-11-24T09:00:00.500000000Z", "\x00\x00\x00\x00", "malformed_cri", None),
        ("serving-logs-team-a-2026.11.24", "2026-11-24T09:00:00.500000000Z", "written by something else",
         "malformed_cri", None),
        ("serving-logs-team-a-2026.11.24", "2026-11-24T09:00:00.500000000Z", "first record, merged", None, None),
        ("serving-logs-team-a-2026.11.24", "2026-11-24T09:00:00.700000000Z", "exited mid-line", None, True),
    ]
    initializer = by_container["storage-initializer"]
    assert {(d["index"], d["source"]["timestamp"], d["source"]["parse_error"]) for d in initializer} == {
        ("serving-logs-team-a-1970.01.01", "1970-01-01T00:00:00.000000000Z", "malformed_cri")}
    assert len(initializer) == 2

    again, _ = run_once(root, tmp_path / "state-2")  # a second run: the same documents, the same ids
    assert [(d["index"], d["id"]) for d in again] == [(d["index"], d["id"]) for d in docs]
