"""One batch's documents: a single ``_bulk`` body and the end offset of every document in it.

The body is joined once when the batch closes and sent as it is; a retry of the documents that
failed (per-item 429, blocks) or a dead-letter entry slices the body at the recorded offsets, so no
document is copied again unless it has to be sent again. It is a read-only sequence of the
documents' bytes (``docs[i]``), which is what the sinks need.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from typing import overload


class Documents(Sequence[bytes]):
    """Encoded ``create`` action + source pairs, back to back in ``body``; ``ends[i]`` is where document ``i`` ends."""

    __slots__ = ("body", "ends")

    def __init__(self, body: bytes, ends: array[int]) -> None:
        self.body = body
        self.ends = ends

    @classmethod
    def from_pieces(cls, pieces: Sequence[bytes]) -> Documents:
        if isinstance(pieces, Documents):
            return pieces
        ends: array[int] = array("Q")
        size = 0
        for piece in pieces:
            size += len(piece)
            ends.append(size)
        return cls(b"".join(pieces), ends)

    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Documents: ...
    def __getitem__(self, index: int | slice) -> bytes | Documents:
        if isinstance(index, slice):
            return Documents.from_pieces([self[i] for i in range(*index.indices(len(self)))])
        if index < 0:
            index += len(self.ends)
        end = self.ends[index]  # IndexError past the end, as a sequence must
        return self.body[self.ends[index - 1] if index else 0 : end]

    def __iter__(self) -> Iterator[bytes]:
        start = 0
        body = self.body
        for end in self.ends:
            yield body[start:end]
            start = end

    def select(self, indices: Sequence[int]) -> bytes:
        """The ``_bulk`` body of the documents at ``indices`` (in order): the whole body when all."""
        if len(indices) == len(self.ends):
            return self.body
        return b"".join([self[i] for i in indices])


def ends_from_bytes(raw: bytes) -> array[int]:
    """Little-endian u64 offsets (the compiled fast path's output) as an array."""
    ends: array[int] = array("Q")
    ends.frombytes(raw)
    if sys.byteorder == "big":
        ends.byteswap()
    return ends
