"""The backlog scenario: OpenSearch is down while the whole corpus (2M lines) waits, then it recovers.

    python -m bench.run --scenario backlog                          # 503 then refused connections, 30 s each
    python -m bench.run --scenario backlog --outage refuse --outage-seconds 60 --runs 1

Per outage mode and run: a fresh sink is put in outage before servelog starts (``503``: every request
answered 503 ``cluster_block_exception``, as a cluster without a cluster-manager answers; ``refuse``: the
``_bulk`` port closed, so connecting is refused and kept-alive connections are dropped), then
``servelog run --once`` starts over the corpus from a fresh state directory. Reading must pause once
the bounded queue is full (the log files are the buffer) while the sender retries with backoff.
After ``--outage-seconds`` the sink recovers and servelog drains everything, then exits.

Printed: peak RSS during the outage and over the whole run (target: under 100 MiB), the time from
recovery to the last acknowledgement (servelog's exit; its backoff had grown to up to
``opensearch.retry_max_seconds``), how often it knocked during the outage, and exactly-once: the
sink must hold the manifest's count of documents, no more (a duplicate would show as more).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness import ROOT, Sink, collector_command, expected_servelog_documents, load, servelog_env, write_report
from bench.measure import Measured, measure

RSS_TARGET_MIB = 100


def peak_mib(samples: list[tuple[float, int]], *, start: float = 0.0, end: float = float("inf")) -> float:
    """Largest sampled tree RSS between ``start`` and ``end`` seconds, in MiB (0 when no sample falls there)."""
    return max((kib for t, kib in samples if start <= t < end), default=0) / 1024


def run_backlog(args: argparse.Namespace, corpus_dir: Path, manifest: dict[str, object]) -> int:
    modes = [m.strip() for m in args.outage.split(",") if m.strip()]
    env = servelog_env(args.set)
    expected = expected_servelog_documents(manifest, env)
    command = collector_command()
    args.results.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    print(f"backlog: servelog run --once over {int(str(manifest['records'])):,} records ({expected:,} documents), "
          f"outage {args.outage_seconds:g} s first ({', '.join(modes)}), settings {args.set or 'defaults'}")
    failures = 0
    rows: list[dict[str, object]] = []
    for mode in modes:
        for n in range(1, args.runs + 1):
            row = _one(command, mode=mode, corpus=corpus_dir, env=env, expected=expected,
                       outage_seconds=args.outage_seconds, log=args.results / f"backlog-{mode}-{n}.stderr.log")
            rows.append(asdict(row))
            failures += not (row.exact and row.exit_code == 0)
            print(f"  {mode} run {n}: exit {row.exit_code}, {row.wall_s:.1f} s wall, {row.cpu_s:.1f} CPU-s; "
                  f"peak RSS {row.peak_rss_outage_mib:.0f} MiB during the outage, {row.peak_rss_mib:.0f} MiB overall "
                  f"(target < {RSS_TARGET_MIB} MiB: {'met' if row.peak_rss_mib < RSS_TARGET_MIB else 'NOT met'}); "
                  f"{row.knocks} requests answered 503 or dropped; first acknowledgement {row.resumed_s:.1f} s and exit "
                  f"{row.drain_s:.1f} s after recovery; "
                  f"{row.received:,} of {expected:,} documents{'' if row.exact else ' -- MISMATCH'}")
    print(f"load average at end: {load()}")
    write_report(args.results, "backlog", {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_at_end": load(), "settings": args.set,
        "outage_seconds": args.outage_seconds, "corpus": manifest, "runs": rows,
    })
    return 1 if failures else 0


@dataclass
class OutageRun:
    """One run through an outage."""

    mode: str
    exit_code: int
    finished: bool
    wall_s: float
    cpu_s: float
    recovered_at_s: float
    resumed_s: float  # recovery to the first acknowledged document (the retry backoff at work)
    drain_s: float  # recovery to exit
    peak_rss_outage_mib: float
    peak_rss_mib: float
    knocks: int  # requests answered 503, or whose kept-alive connection was dropped (refused connects are not seen)
    received: int
    exact: bool


def _one(command: list[str], *, mode: str, corpus: Path, env: dict[str, str], expected: int, outage_seconds: float,
         log: Path) -> OutageRun:
    sink = Sink()
    state = Path(tempfile.mkdtemp(prefix="servelog-bench-backlog-"))
    recovered: list[float] = []
    resumed: list[float] = []

    def tick(elapsed: float) -> None:
        if not recovered:
            if elapsed >= outage_seconds:
                sink.recover()
                recovered.append(elapsed)
        elif not resumed and sink.documents() > 0:
            resumed.append(elapsed)  # the first acknowledgement after recovery: how long the backoff held

    try:
        sink.outage(mode)
        argv = [*command, "run", "--once", "--log-root", str(corpus), "--state-dir", str(state),
                "--opensearch-url", sink.url, "--node-name", "bench"]
        measured: Measured = measure(argv, env=env, log=log, cwd=ROOT, tick=tick, timeout=outage_seconds + 1800)
        stats = sink.stats()
    finally:
        sink.close()
        shutil.rmtree(state, ignore_errors=True)
    at = recovered[0] if recovered else measured.wall_s
    received = int(str(stats["documents"]))
    return OutageRun(
        mode=mode, exit_code=measured.exit_code, finished=measured.finished, wall_s=measured.wall_s,
        cpu_s=measured.cpu_s, recovered_at_s=at,
        resumed_s=(resumed[0] - at) if resumed else float("nan"), drain_s=measured.wall_s - at,
        peak_rss_outage_mib=peak_mib(measured.samples, end=at), peak_rss_mib=measured.tree_peak_rss_mib,
        knocks=int(str(stats["unavailable_answers"])) + int(str(stats["dropped_connections"])),
        received=received, exact=received == expected and measured.finished,
    )
