"""The throughput scenario: servelog, the floor and (when given) Fluent Bit over one corpus, one sink, one run.

Each round runs, one after the other and each measured by :func:`bench.measure.measure`:

- **servelog**: ``servelog run --once --log-root CORPUS --state-dir FRESH --opensearch-url SINK
  --node-name bench``; done when it exits; the sink must have received exactly the documents the
  manifest says (``documents``, or ``documents_ungrouped`` without traceback grouping);
- **floor**: ``python -m bench.floor CORPUS`` (read + split of the same bytes); it must count every
  CRI record of the manifest;
- **Fluent Bit** (``FLUENT_BIT_BIN``): ``fluent-bit -c CONFIG`` (``bench.fluentbit``); done when the
  sink holds ``documents_per_file`` documents (plus the pieces of long lines its flush timeout split)
  and a second passed without more; then SIGTERM, its rusage after it exits, its wall clock to its
  last document.

The sink's long-line tally checks content, not only counts: servelog must deliver every long line
whole; Fluent Bit may split some in two (its cri parser's flush timeout) and may lose the held
beginning of a line a rotation cut (both noted); anything else makes a run invalid.

Rounds interleave the programs, so a change of the machine's load touches all of them alike. Figures
are medians over the valid runs of each program; CPU-seconds per million records and records per second
are over the corpus's CRI records (the same input for all three). The ratios compare them.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import fluentbit
from bench.harness import ROOT, Sink
from bench.measure import Measured, measure


@dataclass(frozen=True)
class LongLines:
    """The corpus's long (P/F-chunked) lines as the sink saw them, against what the program may deliver.

    Every long line must have its end delivered exactly once: whole, or apart from its beginning.
    ``cut`` lines (a rotation between a P and its F) a per-file reader must deliver in two pieces;
    ``extra_splits`` more it may split (Fluent Bit's flush timeout); ``may_lose`` cut lines it may
    deliver without their beginning (Fluent Bit sometimes drops the P chunks it holds at the end of a
    file). servelog may do none of this: every long line whole."""

    whole: int  # documents holding a whole long line
    beginnings: int  # documents holding only a beginning
    ends: int  # documents holding only an end
    chunked: int  # long lines in the corpus (manifest ``chunked_lines``)
    cut: int = 0
    extra_splits: int = 0
    may_lose: int = 0

    @property
    def lost_beginnings(self) -> int:
        return max(0, self.ends - self.beginnings)

    @property
    def extra(self) -> int:
        """Lines split beyond the rotation cuts."""
        return max(0, self.ends - self.cut)

    def problems(self) -> list[str]:
        out = []
        if self.beginnings > self.ends:
            out.append(f"{self.beginnings - self.ends} long lines lost their end")
        if self.lost_beginnings > self.may_lose:
            out.append(f"{self.lost_beginnings} long lines lost their beginning")
        if missing := self.chunked - self.whole - self.ends:
            out.append(f"{abs(missing)} long lines {'missing' if missing > 0 else 'too many'}")
        if self.ends < self.cut or self.extra > self.extra_splits:
            out.append(f"{self.ends} long lines delivered apart, {self.cut} expected")
        return out

    def remarks(self) -> list[str]:
        out = []
        if self.extra:
            out.append(f"{self.extra} long lines split in two by the cri parser's 4 s flush timeout")
        if self.lost_beginnings and self.lost_beginnings <= self.may_lose:
            out.append(f"{self.lost_beginnings} rotation-cut long lines lost their beginning (the P chunks held at "
                       f"the end of a file)")
        return out


@dataclass
class Run:
    """One measured run of one program and what it delivered."""

    collector: str
    measured: Measured
    received: int  # documents the sink received (the floor: records it counted)
    expected: int  # with every long line delivered whole, or cut in two where a per-file reader must
    summary: dict[str, object] | None = None
    long_lines: LongLines | None = None  # None: the floor (no sink)

    @property
    def expected_now(self) -> int:
        """``expected`` plus the pieces of extra splits, minus the beginnings a program may lose."""
        if self.long_lines is None:
            return self.expected
        return self.expected + self.long_lines.beginnings - self.long_lines.cut

    @property
    def valid(self) -> bool:
        """Finished; every document, exactly, once the long lines' pieces are accounted for; the exit
        status counts unless we stopped the program ourselves."""
        m = self.measured
        if not ((m.exit_code == 0 or m.stopped_by_us) and m.finished):
            return False
        if self.long_lines is not None and self.long_lines.problems():
            return False
        return self.received == self.expected_now

    @property
    def exact(self) -> bool:
        return self.valid and self.received == self.expected and not (self.long_lines and self.long_lines.remarks())

    @property
    def note(self) -> str:
        notes = []
        if self.long_lines is not None:
            notes = self.long_lines.problems() or self.long_lines.remarks()
        if self.received != self.expected_now:
            notes.append(f"{self.received - self.expected_now:+,} documents")
        return "; ".join(notes)


def long_lines_since(sink: Sink, before: dict[str, object], *, chunked: int, cut: int = 0, extra_splits: int = 0,
                     may_lose: int = 0) -> LongLines:
    now, then = sink.stats()["long_lines"], before["long_lines"]
    assert isinstance(now, dict) and isinstance(then, dict)
    whole, beginnings, ends = (int(now[k]) - int(then[k]) for k in ("whole", "beginning_only", "end_only"))
    return LongLines(whole, beginnings, ends, chunked=chunked, cut=cut, extra_splits=extra_splits, may_lose=may_lose)


@dataclass(frozen=True)
class Figures:
    """Medians of one program's valid runs."""

    collector: str
    records: int
    runs: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    delivery: str = "exact"

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s

    @property
    def cpu_s_per_million(self) -> float:
        return self.cpu_s / self.records * 1e6


def delivery(runs: list[Run]) -> str:
    """What the valid runs delivered beyond the exact count: split and lost long lines, per run."""
    lines = [r.long_lines for r in runs if r.valid and r.long_lines is not None]
    parts = []
    if any(ll.extra for ll in lines):
        parts.append(f"long lines split by the flush timeout: {', '.join(str(ll.extra) for ll in lines)} per run")
    if lost := sum(1 for ll in lines if ll.lost_beginnings):
        parts.append(f"a rotation-cut long line's beginning lost in {lost} of {len(lines)} runs")
    return "; ".join(parts) or "exact"


def figures(collector: str, records: int, runs: list[Run]) -> Figures | None:
    valid = [r.measured for r in runs if r.valid]
    if not valid:
        return None
    return Figures(collector, records, len(valid), statistics.median(m.wall_s for m in valid),
                   statistics.median(m.cpu_s for m in valid), statistics.median(m.tree_peak_rss_mib for m in valid),
                   delivery(runs))


def ratios(servelog: Figures | None, floor: Figures | None, fluent_bit: Figures | None) -> dict[str, float]:
    """``a/b`` of CPU-seconds per million records (``cpu``) and of records per second (``rate``)."""
    out: dict[str, float] = {}
    pairs = (("servelog/fluent_bit", servelog, fluent_bit), ("servelog/floor", servelog, floor),
             ("fluent_bit/floor", fluent_bit, floor))
    for name, a, b in pairs:
        if a is not None and b is not None:
            out[f"{name} cpu"] = a.cpu_s_per_million / b.cpu_s_per_million
            out[f"{name} rate"] = a.records_per_s / b.records_per_s
    return out


def table(rows: list[Figures]) -> str:
    lines = ["| collector | records/s | CPU-s per M records | peak RSS | valid runs | delivered |", "|---|---|---|---|---|---|"]
    for f in rows:
        lines.append(f"| {f.collector} | {f.records_per_s:,.0f} | {f.cpu_s_per_million:.2f} | {f.peak_rss_mib:.0f} MiB "
                     f"| {f.runs} | {f.delivery} |")
    return "\n".join(lines)


def ratio_lines(found: dict[str, float]) -> list[str]:
    out = []
    if "servelog/fluent_bit cpu" in found:
        cpu, rate = found["servelog/fluent_bit cpu"], found["servelog/fluent_bit rate"]
        out.append(f"servelog / Fluent Bit: CPU-s per M records x{cpu:.2f} (target <= 0.50: "
                   f"{'met' if cpu <= 0.5 else 'NOT met'}), records/s x{rate:.2f} "
                   f"(target > 1: {'met' if rate > 1 else 'NOT met'})")
    for name, label in (("servelog/floor", "servelog / floor"), ("fluent_bit/floor", "Fluent Bit / floor")):
        if f"{name} cpu" in found:
            out.append(f"{label}: CPU-s per M records x{found[name + ' cpu']:.1f}, records/s x{found[name + ' rate']:.3f}")
    return out


# -- one run of each program -------------------------------------------------------------------------
def _summary(log: Path) -> dict[str, object] | None:
    summary = None
    for line in log.read_bytes().splitlines():
        if line.startswith(b'{"summary"'):
            summary = json.loads(line)["summary"]
    return summary


def run_servelog(command: list[str], *, corpus: Path, sink: Sink, env: dict[str, str], log: Path, expected: int,
                 chunked: int) -> Run:
    """servelog merges a long line's chunks across a rotation (one stream): every long line whole."""
    state = Path(tempfile.mkdtemp(prefix="servelog-bench-state-"))
    argv = [*command, "run", "--once", "--log-root", str(corpus), "--state-dir", str(state),
            "--opensearch-url", sink.url, "--node-name", "bench"]
    before = sink.stats()
    try:
        measured = measure(argv, env=env, log=log, cwd=ROOT)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    received = sink.documents() - int(str(before["documents"]))
    lines = long_lines_since(sink, before, chunked=chunked)
    return Run("servelog", measured, received, expected, _summary(log), long_lines=lines)


def run_floor(*, corpus: Path, log: Path, records: int) -> Run:
    out = log.with_suffix(".stdout")
    measured = measure([sys.executable, "-m", "bench.floor", str(corpus)], env={"PYTHONPATH": str(ROOT)}, log=log,
                       cwd=ROOT, stdout=out)
    try:
        counted = int(json.loads(out.read_text())["records"])
    except (OSError, ValueError, KeyError):
        counted = -1
    return Run("floor", measured, counted, records)


def run_fluentbit(binary: str, *, corpus: Path, sink: Sink, work: Path, manifest: dict[str, object],
                  options: dict[str, object], timeout: float, settle_seconds: float = 1.0,
                  stall_seconds: float = 15.0) -> Run:
    """Fluent Bit until the sink holds the expected documents and nothing more came for ``settle_seconds``
    (or nothing more for ``stall_seconds``, whatever the count). Its wall-clock time ends at the last
    document's arrival.

    Expected: ``documents_per_file`` (a long line cut by a rotation arrives in two pieces), plus one per
    long line that its cri parser split: it flushes a pending ``P`` chunk after 4 s without the ``F``
    (``flush_timeout``), so a long line whose ``F`` is read later arrives as two records. The sink's
    long-line tally tells splits (a beginning and an end apart) from losses (an end without its
    beginning)."""
    expected = fluentbit.expected_records(manifest)
    before_stats = sink.stats()
    before = int(str(before_stats["documents"]))
    conf = work / "fluent-bit.conf"
    log = work / "fluent-bit.log"
    conf.write_text(fluentbit.config(corpus=corpus, port=sink.port, log_file=log, **options))  # type: ignore[arg-type]
    cut = int(str(manifest["files_ending_partial"]))
    progress = {"count": 0, "changed": 0.0, "now": 0.0, "all_but_cut": 0.0}

    def tick(elapsed: float) -> None:
        count = sink.documents() - before
        if count != progress["count"]:
            progress.update(count=count, changed=elapsed)
            if not progress["all_but_cut"] and count >= expected - cut:
                progress["all_but_cut"] = elapsed  # the pieces of cut lines may be held for the 4 s flush timeout
        progress["now"] = elapsed

    def done() -> bool:
        quiet = progress["now"] - progress["changed"]
        # nothing yet: allow a slow start; then silence for stall_seconds means Fluent Bit has nothing more
        return (progress["count"] >= expected and quiet >= settle_seconds) or quiet > (stall_seconds if progress["count"]
                                                                                       else 4 * stall_seconds)

    measured = measure(fluentbit.command(binary, conf), env={}, log=work / "fluent-bit.stderr.log", cwd=work,
                       tick=tick, done=done, timeout=timeout, grace=15.0)
    if measured.finished:
        measured = replace(measured, wall_s=progress["changed"])
    received = sink.documents() - before
    chunked = int(str(manifest["chunked_lines"]))
    lines = long_lines_since(sink, before_stats, chunked=chunked, cut=cut, extra_splits=chunked, may_lose=cut)
    run = Run("fluent_bit", measured, received, expected, long_lines=lines)
    run.summary = {"all_but_cut_pieces_s": round(progress["all_but_cut"], 2)} if cut else {}
    if log.exists() and (retries := fluentbit.retried_chunks(log.read_text(errors="replace"))):
        run.summary["retried_chunks"] = retries  # a resent chunk: duplicates ids OpenSearch would answer 409
    return run


def profile_once(command: list[str], *, corpus: Path, sink: Sink, env: dict[str, str], out_dir: Path) -> None:
    """One extra servelog run under py-spy (flame graph) if installed, else cProfile (top functions printed)."""
    state = Path(tempfile.mkdtemp(prefix="servelog-bench-profile-"))
    args = ["run", "--once", "--log-root", str(corpus), "--state-dir", str(state), "--opensearch-url", sink.url,
            "--node-name", "bench"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        py_spy = shutil.which("py-spy")
        if py_spy:
            target = out_dir / f"profile-{stamp}.svg"
            subprocess.run([py_spy, "record", "--subprocesses", "--rate", "250", "-o", str(target), "--", *command, *args],
                           env=env, check=False, stdout=subprocess.DEVNULL, cwd=ROOT)
            print(f"profile: {target} (py-spy flame graph)")
            return
        target = out_dir / f"profile-{stamp}.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(target), "-m", "collector", *args], env=env,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        import pstats

        print(f"profile: {target} (cProfile; py-spy not installed). Top functions by own time:")
        pstats.Stats(str(target)).sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def describe_run(n: int, run: Run) -> str:
    m = run.measured
    what = "records counted" if run.collector == "floor" else "documents received"
    said = ""
    if run.summary and "lines_read" in run.summary:
        said = f"; servelog: {run.summary.get('lines_read')} lines -> {run.summary.get('documents')} documents"
    elif run.summary:
        said = f"; {run.summary}"
    stopped = " (stopped when done)" if m.stopped_by_us and m.finished else (" -- TIMED OUT or STALLED" if not m.finished else "")
    verdict = "" if run.exact else (f" ({run.note})" if run.valid else f" -- MISMATCH{f' ({run.note})' if run.note else ''}")
    if run.long_lines is not None:
        ll = run.long_lines
        verdict += f"; long lines: {ll.whole} whole, {ll.beginnings} beginnings and {ll.ends} ends apart, of {ll.chunked}"
    return (f"  {run.collector} run {n}: exit {m.exit_code}{stopped}, {m.wall_s:.2f}s wall, {m.cpu_s:.2f} CPU-s "
            f"({m.user_s:.2f} user + {m.system_s:.2f} sys), peak RSS {m.peak_rss_mib:.0f} MiB (tree {m.tree_peak_rss_mib:.0f} "
            f"MiB); {run.received:,} of {run.expected:,} {what}{verdict}{said}")


def report(runs: list[Run]) -> list[dict[str, object]]:
    out = []
    for run in runs:
        measured = asdict(run.measured)
        measured.pop("samples")
        out.append({"collector": run.collector, "received": run.received, "expected": run.expected,
                    "valid": run.valid, "note": run.note, "summary": run.summary,
                    "long_lines": asdict(run.long_lines) if run.long_lines else None, **measured})
    return out
