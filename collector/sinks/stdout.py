"""The stdout sink: a dry run that prints what would be indexed, one NDJSON object per document.

Each line is ``{"index": ..., "id": ..., "source": {...}}``: the exact target index, ``_id`` and
document the OpenSearch sink would send, so the output doubles as a golden file for tests.

When the reader of stdout goes away (``servelog run --output stdout | head``) the sink raises
:class:`OutputClosed`: the run stops reading and ends quietly, as other command-line tools do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import BinaryIO

import orjson

from collector.sinks.opensearch.sink import DeliveryReport


class OutputClosed(Exception):
    """The stream the dry run prints to was closed by its reader."""


class StdoutSink:
    """Writes documents to a binary stream instead of OpenSearch."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def deliver(self, pieces: Sequence[bytes]) -> DeliveryReport:
        out = []
        for piece in pieces:
            action_line, _, source_line = piece.partition(b"\n")
            meta = next(iter(orjson.loads(action_line).values()))
            out.append(
                b'{"index":' + orjson.dumps(meta["_index"]) + b',"id":' + orjson.dumps(meta["_id"])
                + b',"source":' + source_line.rstrip(b"\n") + b"}\n"
            )
        with self._lock:
            try:
                self._stream.write(b"".join(out))
                self._stream.flush()
            except BrokenPipeError as exc:
                raise OutputClosed("the reader of stdout went away") from exc
        return DeliveryReport(created=len(pieces))
