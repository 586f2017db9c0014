"""The floor: what a Python program spends to read the corpus's bytes and split them into lines.

    python -m bench.floor CORPUS        # prints {"records": N, "bytes": B, "files": F} as JSON

Every log file of the corpus (``<pod dir>/<container>/<n>.log`` and its rotated parts, gzipped ones
decompressed as a stream) is read in 1 MiB chunks, as servelog reads (``pipeline.read_chunk_bytes``),
and each chunk is split into lines with one ``bytes.split`` (the remainder carried to the next
chunk). Nothing else: no parsing, no objects per line beyond the split's. ``bench.run`` runs it as a
process of its own and measures it exactly like the collectors, so "servelog vs the floor" says how
much more than reading and splitting a collector spends, on the same machine in the same run.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

CHUNK = 1024 * 1024


def log_files(root: Path) -> list[Path]:
    """The corpus's log files (``manifest.json`` and anything not named like a kubelet log skipped)."""
    return sorted(p for p in root.glob("*/*/*") if p.is_file() and (p.name.endswith(".log") or ".log." in p.name))


def count_records(path: Path, chunk: int = CHUNK) -> tuple[int, int]:
    """(records, uncompressed bytes) of one file: lines split out of chunks read one at a time."""
    records = size = 0
    rest = b""
    inflate = zlib.decompressobj(wbits=31) if path.name.endswith(".gz") else None
    with path.open("rb", buffering=0) as handle:
        while raw := handle.read(chunk):
            data = inflate.decompress(raw) if inflate is not None else raw
            size += len(data)
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            records += len(lines)
    if inflate is not None and (tail := inflate.flush()):
        size += len(tail)
        lines = (rest + tail).split(b"\n")
        rest = lines.pop()
        records += len(lines)
    return records + (1 if rest else 0), size


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.floor CORPUS_DIR")
    records = size = 0
    files = log_files(Path(args[0]))
    for path in files:
        n, b = count_records(path)
        records += n
        size += b
    print(json.dumps({"records": records, "bytes": size, "files": len(files)}))


if __name__ == "__main__":
    main()
