"""The latency scenario: from a line written to a live log file to its acknowledgement, at a steady rate.

    python -m bench.run --scenario latency                 # 10,000 lines/s for 30 s
    python -m bench.run --scenario latency --rate 2000 --seconds 60 --set OPENSEARCH__FLUSH_INTERVAL_SECONDS=0.2

``servelog run`` (following, not ``--once``) tails a fresh log root holding one live container file
(``<ns>_<pod>_<uid>/kserve-container/0.log``) into ``bench.sink --latency``. A probe line is written
first; once the sink has it (servelog is up and tailing), ``bench.writer`` appends CRI lines at
``--rate`` lines per second for ``--seconds``, each carrying its write time (``sent_ns``). For every
document it acknowledges, the sink keeps acknowledgement time minus write time (one wall clock, one
machine). When the sink holds every line, servelog is stopped (SIGTERM). Printed: p50, p90, p99, p99.9
and the maximum of the delays; exactly-once (every sequence number acknowledged once); servelog's
CPU over the run (cores used) and peak RSS; the writer's own achieved rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.harness import ROOT, Sink, collector_command, load, servelog_env, write_report
from bench.measure import measure
from bench.writer import cri_time

POD_DIR = "team-a_sklearn-iris-predictor-00001-deployment-6d4c5f7b9c-x2x9p_0f1e2d3c-1111-2222-3333-444455556666"
PROBE_SECONDS = 120.0  # servelog must be tailing within this long
DRAIN_SECONDS = 120.0  # after the writer stops, every line must be acknowledged within this long


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def summarise(delays_us: Sequence[int]) -> dict[str, float]:
    ordered = sorted(delays_us)
    out = {f"p{q:g}_ms": percentile(ordered, q) / 1000 for q in (50, 90, 99, 99.9)}
    out["max_ms"] = ordered[-1] / 1000
    out["min_ms"] = ordered[0] / 1000
    return out


def run_latency(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-latency-root-"))
    state = Path(tempfile.mkdtemp(prefix="bench-latency-state-"))
    live = root / POD_DIR / "kserve-container" / "0.log"
    live.parent.mkdir(parents=True)
    live.touch()
    lines = int(args.rate * args.seconds)
    env = servelog_env(args.set)
    args.results.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    print(f"latency: servelog run (following) <- bench.writer {args.rate:,} lines/s for {args.seconds:g} s = {lines:,} "
          f"lines; settings {args.set or 'defaults'}")
    sink = Sink(latency=True)
    argv = [*collector_command(), "run", "--log-root", str(root), "--state-dir", str(state), "--opensearch-url", sink.url,
            "--node-name", "bench"]
    phase: dict[str, object] = {"probe_at": None, "writer": None, "writer_done_at": None}

    def tick(elapsed: float) -> None:
        if phase["probe_at"] is None:
            with live.open("ab") as handle:
                handle.write(cri_time(time.time_ns()) + b" stdout F bench latency probe: servelog is tailing\n")
            phase["probe_at"] = elapsed
        elif phase["writer"] is None and sink.documents() >= 1:
            phase["writer"] = subprocess.Popen(
                [sys.executable, "-m", "bench.writer", "--file", str(live), "--rate", str(args.rate),
                 "--seconds", str(args.seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            phase["writer_at"] = elapsed
        elif (isinstance(phase["writer"], subprocess.Popen) and phase["writer_done_at"] is None
              and phase["writer"].poll() is not None):
            phase["writer_done_at"] = elapsed

    def done() -> bool:
        return phase["writer_done_at"] is not None and sink.documents() >= 1 + lines

    timeout = PROBE_SECONDS + args.seconds + DRAIN_SECONDS
    try:
        measured = measure(argv, env=env, log=args.results / "latency-servelog.stderr.log", cwd=ROOT, tick=tick,
                           done=done, timeout=timeout)
        writer = phase["writer"]
        written: dict[str, float] = {}
        if isinstance(writer, subprocess.Popen):
            out, _ = writer.communicate(timeout=timeout)
            written = json.loads(out) if out.strip() else {}
        received = sink.documents()
        found = sink.latency()
    finally:
        sink.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    delays = [int(d) for d in found["delays_us"]]  # type: ignore[attr-defined]
    stamped, distinct = int(str(found["stamped"])), int(str(found["distinct"]))
    exact = measured.finished and stamped == distinct == lines and received == lines + 1
    print(f"load average at end: {load()}")
    print(f"writer: {written.get('lines', 0):,.0f} lines in {written.get('seconds', 0):.2f} s = "
          f"{written.get('rate', 0):,.0f} lines/s (at most {written.get('max_behind_ms', 0):.0f} ms behind schedule)")
    busy = measured.wall_s - float(str(phase.get("writer_at", 0)))
    print(f"servelog: {measured.cpu_s:.2f} CPU-s over {measured.wall_s:.1f} s ({measured.cpu_s / max(busy, 1e-9):.2f} cores "
          f"while lines flowed), peak RSS {measured.tree_peak_rss_mib:.0f} MiB, exit {measured.exit_code}")
    print(f"acknowledged: {distinct:,} distinct of {lines:,} lines written, {stamped:,} in all "
          f"({stamped - distinct:,} duplicates): {'exactly once' if exact else 'MISMATCH'}")
    figures = summarise(delays) if delays else {}
    if figures:
        print("line written -> acknowledged: " + ", ".join(f"{k.removesuffix('_ms')} {v:,.0f} ms" for k, v in figures.items()
                                                          if k != "min_ms"))
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_at_end": load(), "rate": args.rate,
              "seconds": args.seconds, "settings": args.set, "writer": written, "received": received,
              "stamped": stamped, "distinct": distinct, "exact": exact, "latency": figures,
              "servelog": {"cpu_s": measured.cpu_s, "wall_s": measured.wall_s, "peak_rss_mib": measured.tree_peak_rss_mib,
                           "exit_code": measured.exit_code, "finished": measured.finished}}
    write_report(args.results, "latency", report)
    return 0 if exact and measured.exit_code == 0 else 1
