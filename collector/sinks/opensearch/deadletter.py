"""Dead-letter destination for documents OpenSearch refuses for good.

A refused document becomes a dead-letter document (the reason, the status, the target index and
``_id`` it was meant for, the raw line, and the fields needed to find it) written with ``create``
into ``serving-deadletter-<line's day>`` under the original ``_id`` (so a replay is again a 409).
When that write fails too, or OpenSearch is unreachable for it, the record is appended to a local
NDJSON file under the state directory and fsynced before the batch is acknowledged. Every document
thus ends somewhere findable, and is counted by destination. The dead-letter index gets three
attempts (immediate: the documents already have their outcome, the file is durable too).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collector import model as m
from collector.errors import SinkError
from collector.sinks.opensearch.client import OpenSearchClient
from collector.sinks.opensearch.retry import Rejection, bulk_response_problem, classify
from collector.transforms.identity import index_name

_KEPT_FIELDS = (m.F_TIMESTAMP, m.F_NAMESPACE, m.F_POD_NAME, m.F_POD_UID, m.F_CONTAINER, m.F_SERVING,
                m.F_MODEL_NAME, m.F_MODEL_VERSION, m.F_COMPONENT, m.F_NODE)
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One refused document (its encoded action+source) and why."""

    piece: bytes
    rejection: Rejection


def deadletter_document(piece: bytes, rejection: Rejection) -> tuple[str, str, dict[str, Any]]:
    """(target index, _id, source) of the original, and the dead-letter source built from it."""
    action_line, _, source_line = piece.partition(b"\n")
    action = orjson.loads(action_line)
    meta = next(iter(action.values()))
    try:
        source = orjson.loads(source_line)
    except orjson.JSONDecodeError:
        source = {}
    doc: dict[str, Any] = {key: source[key] for key in _KEPT_FIELDS if key in source}
    doc.update(
        reason=rejection.reason[:8192],
        error_type=rejection.error_type,
        status=rejection.status,
        target_index=meta.get("_index", ""),
        doc_id=meta.get("_id", ""),
        raw=source.get(m.F_MESSAGE, source_line.decode("utf-8", "replace")),
    )
    return meta.get("_index", ""), meta.get("_id", ""), doc


class DeadLetter:
    """Writes refused documents to the dead-letter index, or to a local file as a last resort."""

    def __init__(self, *, client: OpenSearchClient | None, index_template: str, directory: Path) -> None:
        self._client = client
        self._template = index_template
        self._directory = directory
        self._lock = threading.Lock()

    def write(self, entries: list[DeadLetterEntry]) -> dict[str, int]:
        """Store every entry; returns how many went to each destination ("index", "file")."""
        docs = [deadletter_document(e.piece, e.rejection) for e in entries]
        pieces = []
        for _index, doc_id, doc in docs:
            ts = doc.get(m.F_TIMESTAMP) or "1970-01-01T00:00:00Z"
            target = index_name(self._template, namespace=str(doc.get(m.F_NAMESPACE, "unknown")), ts=ts)
            pieces.append(orjson.dumps({"create": {"_index": target, "_id": doc_id}}) + b"\n" + orjson.dumps(doc) + b"\n")
        remaining = list(range(len(pieces)))
        to_file: list[int] = []
        attempts = _ATTEMPTS if self._client is not None else 0
        for _ in range(attempts):
            assert self._client is not None
            try:
                response = self._client.bulk(b"".join(pieces[i] for i in remaining))
            except SinkError:
                continue
            if bulk_response_problem(response, len(remaining)) is not None:
                continue
            verdict = classify(response, len(remaining))
            # refused by the dead-letter index too: the file; retryable: another attempt
            to_file.extend(remaining[i] for i, _ in verdict.rejected)
            remaining = [remaining[i] for i in verdict.retry]
            if not remaining:
                break
        to_file.extend(remaining)
        self._to_file([docs[i][2] for i in to_file])
        return {"index": len(entries) - len(to_file), "file": len(to_file)}

    def _to_file(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        with self._lock:
            self._directory.mkdir(parents=True, exist_ok=True)
            path = self._directory / "deadletter.ndjson"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, b"".join(orjson.dumps(doc) + b"\n" for doc in docs))
                os.fsync(fd)
            finally:
                os.close(fd)
