"""Runs one conformance case through the real line assembler, as the files source feeds it.

A case is a directory under ``cases/``:

- ``case.toml``: ``description`` (what the case shows and the rule it follows), ``ended`` (the
  container is gone: unfinished lines are flushed, default true), ``max_line_bytes``, ``kubelet``
  (how servelog's documents relate to what the kubelet's own reader makes of the same bytes:
  ``same``, ``refuses`` (the kubelet serves nothing for this file) or ``differs``, with ``why``);
- input files named as the kubelet names them (``0.log.<stamp>`` rotated, ``0.log`` live), read
  oldest first as one stream, each byte as written by the runtime;
- ``expected.ndjson``: the documents servelog must produce, one per line (``_index``, ``_id``, then
  the document without the stream's shared fields);
- ``kubelet.json``: what ``k8s.io/cri-client``'s ``ReadLogs`` (the code behind ``kubectl logs
  --timestamps``) printed for the stream's bytes, recorded by ``kubelet/main.go``.

Files are fed the way the tailer feeds them: complete lines per file, a last line without a newline
as a line of its finished file, ``switch_file`` at every file; a resume starts at a position's
file and offset, with the position's state.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collector.sources.files.paths import parse_log_file_name
from collector.transforms.assembler import AssemblerOptions, LineAssembler, Position

CASES = Path(__file__).parent / "cases"
NAMESPACE = "conformance"
FIELDS = {"namespace": NAMESPACE}  # the only shared field: the index name needs it
POD_UID, CONTAINER, RESTART = "00000000-0000-4000-8000-000000000000", "kserve-container", 0

Document = tuple[dict[str, Any], Position]  # (the golden view of one document, its resume position)


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    description: str
    files: list[Path]
    ended: bool
    max_line_bytes: int
    kubelet: str
    why: str

    @property
    def expected_path(self) -> Path:
        return self.directory / "expected.ndjson"

    @property
    def kubelet_path(self) -> Path:
        return self.directory / "kubelet.json"

    def stream_bytes(self) -> bytes:
        return b"".join(path.read_bytes() for path in self.files)


def load_case(directory: Path) -> Case:
    meta = tomllib.loads((directory / "case.toml").read_text())
    named = [(parse_log_file_name(p.name), p) for p in directory.iterdir()]
    files = [p for name, p in sorted(((n, p) for n, p in named if n is not None), key=lambda np: np[0].order_key)]
    if not files:
        raise ValueError(f"{directory}: no input file")
    return Case(name=directory.name, directory=directory, description=meta["description"], files=files,
                ended=meta.get("ended", True), max_line_bytes=meta.get("max_line_bytes", 1024 * 1024),
                kubelet=meta["kubelet"], why=meta.get("why", ""))


def all_cases() -> list[Case]:
    return [load_case(d) for d in sorted(CASES.iterdir()) if (d / "case.toml").exists()]


def run_case(case: Case, start: Position | None = None) -> list[Document]:
    """The documents of the case's stream, from the beginning or resumed at ``start``."""
    out: list[Document] = []

    def emit(piece: bytes, position: Position) -> None:
        action, source, rest = piece.split(b"\n")
        assert rest == b"", "one action line and one document per piece"
        meta = orjson.loads(action)["create"]
        document = orjson.loads(source)
        assert document.pop("namespace") == NAMESPACE
        out.append(({"_index": meta["_index"], "_id": meta["_id"], **document}, position))

    assembler = LineAssembler(
        options=AssemblerOptions(index_template="serving-logs-{namespace}-{date}", max_line_bytes=case.max_line_bytes),
        pod_uid=POD_UID, container=CONTAINER, restart_count=RESTART, fields=FIELDS, emit=emit, start=start,
    )
    names = [path.name for path in case.files]
    first = names.index(start.file_id) if start is not None and start.file_id is not None else 0
    for index, path in enumerate(case.files[first:], first):
        offset = start.offset if start is not None and index == first else 0
        data = path.read_bytes()[offset:]
        assembler.switch_file(path.name, offset)
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        if lines:
            assembler.feed_lines(lines, start_offset=offset)
        if tail:  # the file is finished: its last line is a line even without a newline
            end = offset + len(data)
            assembler.feed_lines([tail], start_offset=end - len(tail))
            assembler.switch_file(path.name, end)
    assembler.flush(partial_lines=case.ended)
    return out


def encode_expected(documents: list[Document]) -> bytes:
    return b"".join(orjson.dumps(doc) + b"\n" for doc, _position in documents)


def read_expected(case: Case) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in case.expected_path.read_bytes().splitlines() if line.strip()]
