"""A deterministic benchmark corpus: KServe-like pod logs in the kubelet layout, as containerd writes them.

    python -m bench.corpus --out bench/.corpus/2000000-40-1 --lines 2000000 --containers 40 --seed 1

The corpus is what a busy model-serving node leaves in ``/var/log/pods``: InferenceService pods
(``<isvc>-predictor-00001-deployment-<hash>`` with ``kserve-container``, ``storage-initializer`` and
``agent``; ``<isvc>-transformer-00001-deployment-<hash>`` with ``transformer-container``), CRI
records with containerd's trimmed RFC3339Nano timestamps, content mixing the KServe SDK format,
uvicorn access lines, JSON lines (the Go agent, structured app logs), ``kserve.trace`` timings,
Python tracebacks (sometimes chained) and occasional 40 KB lines split into 16 KiB ``P``/``F``
chunks. About 150 bytes per physical line. Busy containers are rotated the kubelet's way (older
parts gzipped, the newest rotated part plain, a live ``0.log``; a long line may straddle two files)
and a crash-looping predictor has a ``1.log``.

``--lines`` counts physical CRI records (what the collector reads). ``manifest.json`` in the output
directory says how many *documents* a correct collector must produce: ``documents`` (one per logical
line, a traceback grouped and a chunked line counting once), ``documents_ungrouped`` (without
traceback grouping), ``documents_per_file`` (merging ``P``/``F`` per file, as Fluent Bit does: a long
line a rotation cut arrives in two pieces), with ``chunked_lines``, ``partial_records`` and
``files_ending_partial``. The records themselves come from ``bench.corpus_content``. Generation is deterministic for a seed (each
container has its own random stream) and fast: records are built as bytes and written in one call
per file.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import gzip
import itertools
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.corpus_content import ContainerWriter, plan

MANIFEST = "manifest.json"
FORMAT_VERSION = 5  # bump when the corpus or its manifest changes shape, so bench.run regenerates stale ones
ROTATE_MIN_BYTES = 256 * 1024  # containers with at least this much log are candidates for rotation


# -- files -------------------------------------------------------------------------------------------
def rotation_name(ts_ns: int) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(ts_ns // 1_000_000_000))


def split_by_bytes(records: list[bytes], parts: int) -> list[list[bytes]]:
    """Cut a record list into ``parts`` runs of about equal bytes (at record boundaries)."""
    ends = list(itertools.accumulate(len(r) for r in records))
    total = ends[-1] if ends else 0
    cuts = [0] + [bisect.bisect_left(ends, total * k // parts) + 1 for k in range(1, parts)] + [len(records)]
    return [records[cuts[k]:cuts[k + 1]] for k in range(parts)]


@dataclass
class Totals:
    records: int = 0
    documents: int = 0
    bytes: int = 0
    bytes_on_disk: int = 0
    files: int = 0
    gzipped: int = 0
    rotated: int = 0
    restarted: int = 0
    partial_records: int = 0  # P records (each merged into the F record that ends its line)
    chunked_lines: int = 0  # lines longer than 16 KiB, written as P chunks and an F
    files_ending_partial: int = 0  # files whose last record is a P (a rotation cut inside a long line)


def is_partial(record: bytes) -> bool:
    """Whether a CRI record (``<time> <stream> <P|F> <content>``) is a ``P`` chunk."""
    return record.split(b" ", 3)[2] == b"P"


def _write(path: Path, records: list[bytes], totals: Totals, *, compress: bool = False) -> None:
    totals.files += 1
    if records and is_partial(records[-1]):
        totals.files_ending_partial += 1
    data = b"".join(records)
    totals.bytes += len(data)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)  # the kubelet's default level
        totals.gzipped += 1
    path.write_bytes(data)
    totals.bytes_on_disk += len(data)


def write_container(directory: Path, writer: ContainerWriter, totals: Totals, *, crash_at: int | None,
                    rotate: bool) -> None:
    """The container's files: ``0.log`` (and ``1.log`` after a crash), rotated parts when asked."""
    records = writer.records
    directory.mkdir(parents=True, exist_ok=True)
    live = directory / "0.log"
    if crash_at is not None:
        _write(live, records[:crash_at], totals)
        records = records[crash_at:]
        live = directory / "1.log"
        totals.restarted += 1
    if rotate:
        # oldest parts gzipped, the newest rotated part plain, then the live file (max_files 5 holds them);
        # a cut can fall between a P and its F, or inside a traceback, as the kubelet's can
        # Names are the rotation time (just after the part's last record) and must sort by age: the
        # kubelet never rotates twice in one second (its monitoring period is 10 s), and a plain
        # name next to the same name + .gz would read as a leftover of an interrupted compression.
        parts = split_by_bytes(records, 4)
        rotated_at = 0
        for n, part in enumerate(parts[:-1]):
            if not part:
                continue
            rotated_at = max(_record_ns(part[-1]) // 1_000_000_000 + 1, rotated_at + 1)
            name = f"{live.name}.{rotation_name(rotated_at * 1_000_000_000)}"
            _write(directory / (name + ".gz" if n < 2 else name), part, totals, compress=n < 2)
        records = parts[-1]
        totals.rotated += 1
    _write(live, records, totals)


def _record_ns(record: bytes) -> int:
    return calendar.timegm(time.strptime(record[:19].decode(), "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000


def generate(out: Path, *, lines: int, containers: int, seed: int) -> dict[str, object]:
    """Write the corpus under ``out`` (which must not hold anything else) and return its manifest."""
    started = time.perf_counter()
    if out.exists():
        if any(out.iterdir()) and not (out / MANIFEST).exists():
            raise SystemExit(f"{out} is not empty and holds no {MANIFEST}: refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    specs = plan(containers, random.Random(seed))
    weight = sum(s.weight for s in specs)
    budgets = [int(lines * s.weight / weight) for s in specs]
    budgets[0] += lines - sum(budgets)
    totals = Totals()
    eligible = 0
    for index, (spec, budget) in enumerate(zip(specs, budgets, strict=True)):
        writer = ContainerWriter(spec, seed, index)
        crash_at = None
        if spec.crashloop:
            writer.fill(budget // 20)
            writer.crash()
            crash_at = len(writer.records)
        writer.fill(budget)
        size = sum(len(r) for r in writer.records)
        rotate = False
        if size >= ROTATE_MIN_BYTES:  # every other busy container has been rotated
            rotate = eligible % 2 == 0
            eligible += 1
        directory = out / f"{spec.namespace}_{spec.pod}_{spec.uid}" / spec.container
        write_container(directory, writer, totals, crash_at=crash_at, rotate=rotate)
        totals.records += len(writer.records)
        totals.documents += writer.documents
        totals.partial_records += writer.partials
        totals.chunked_lines += writer.chunked_lines
    manifest: dict[str, object] = {
        "format_version": FORMAT_VERSION, "generator": "bench.corpus", "seed": seed, "lines_requested": lines,
        "containers": containers, "records": totals.records, "documents": totals.documents,
        # without traceback grouping: one document per CRI record once P chunks are merged into their F
        # (servelog merges across a rotation; the stream is one)
        "documents_ungrouped": totals.records - totals.partial_records,
        # a collector that merges P/F per file (Fluent Bit's tail + cri multiline parser) also emits the
        # P chunks a rotation cut left at the end of a file as one record of their own
        "documents_per_file": totals.records - totals.partial_records + totals.files_ending_partial,
        "partial_records": totals.partial_records, "chunked_lines": totals.chunked_lines,
        "files_ending_partial": totals.files_ending_partial,
        "bytes": totals.bytes,
        "bytes_on_disk": totals.bytes_on_disk, "files": totals.files, "gzipped_files": totals.gzipped,
        "rotated_containers": totals.rotated, "restarted_containers": totals.restarted,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(out: Path) -> dict[str, object] | None:
    try:
        data = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(manifest: dict[str, object], out: Path) -> str:
    m = manifest
    records, size = int(str(m["records"])), int(str(m["bytes"]))
    return (f"corpus {out}: {records:,} CRI records -> {int(str(m['documents'])):,} expected documents, "
            f"{size / 2**20:,.0f} MiB ({size / max(records, 1):.0f} B/record; {int(str(m['bytes_on_disk'])) / 2**20:,.0f} MiB "
            f"on disk), {m['containers']} containers in {m['files']} files ({m['gzipped_files']} gzipped, "
            f"{m['rotated_containers']} rotated, {m['restarted_containers']} restarted), generated in {m['seconds']}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output directory (replaced if it holds a corpus)")
    parser.add_argument("--lines", type=int, default=2_000_000, help="physical CRI records to write")
    parser.add_argument("--containers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    manifest = generate(args.out, lines=args.lines, containers=args.containers, seed=args.seed)
    os.sync()  # so the first benchmark run does not pay for writeback
    print(describe(manifest, args.out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
