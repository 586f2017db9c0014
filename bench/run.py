"""End-to-end benchmark: ``servelog run --once`` over the corpus into the loopback bulk sink.

    python -m bench.run                          # 2M lines, 3 runs
    python -m bench.run --lines 200000 --runs 1  # a quick look
    python -m bench.run --profile                # one more run under py-spy (or cProfile)

Generates the corpus once (``bench/.corpus/<lines>-<containers>-<seed>``, reused while its manifest
matches), starts ``bench.sink`` in its own process, then runs the collector ``--runs`` times, each
from a fresh state directory so that everything is read, parsed, enriched, encoded and sent:

    servelog run --once --log-root CORPUS --state-dir FRESH --opensearch-url http://127.0.0.1:PORT --node-name bench

Per run it measures wall-clock time, the CPU time (user + system) of the collector's whole process
tree (``os.wait4`` returns the child's rusage, which includes every descendant it reaped, and all
threads), and peak RSS (``ru_maxrss`` of the tree, and ``VmHWM``/``VmRSS`` of every live process of
the tree sampled from ``/proc`` every 50 ms). It checks that the sink received exactly the number of
documents the corpus manifest says a correct collector produces. Medians are printed, and all
figures are written to ``bench/results/<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import corpus as corpus_mod

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.05


@dataclass
class RunResult:
    exit_code: int
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    peak_rss_mib: float  # max(ru_maxrss, sampled VmHWM of each process of the tree)
    tree_peak_rss_mib: float  # largest sampled sum of VmRSS over the process tree
    received: int  # documents the sink received during the run
    summary: dict[str, object] | None  # the collector's own --once summary, when it printed one


# -- corpus and sink -------------------------------------------------------------------------------
def ensure_corpus(directory: Path, *, lines: int, containers: int, seed: int) -> dict[str, object]:
    manifest = corpus_mod.read_manifest(directory)
    wanted = {"format_version": corpus_mod.FORMAT_VERSION, "lines_requested": lines, "containers": containers, "seed": seed}
    if manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        print(f"reusing {corpus_mod.describe(manifest, directory)}")
        return manifest
    manifest = corpus_mod.generate(directory, lines=lines, containers=containers, seed=seed)
    os.sync()
    print(corpus_mod.describe(manifest, directory))
    return manifest


class Sink:
    """``bench.sink`` in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--port", "0"], cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "LISTENING":
            self.close()
            raise SystemExit(f"bench.sink did not start: {first!r}")
        self.url = f"http://127.0.0.1:{first[1]}"

    def stats(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/_stats_fake", timeout=10) as response:
            data = json.loads(response.read())
        assert isinstance(data, dict)
        return data

    def documents(self) -> int:
        return int(str(self.stats()["documents"]))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- the collector's process tree ------------------------------------------------------------------
def collector_command() -> list[str]:
    """The ``servelog`` console script of this interpreter (not a pyenv/asdf shim, whose own bash
    would be measured), else whatever ``servelog`` is on PATH, else ``python -m collector``."""
    beside = Path(sys.executable).parent / "servelog"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("servelog")
    if found and "shims" not in found:
        return [found]
    return [sys.executable, "-m", "collector"]


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/<pid>/task/<tid>/children``: no scan of all of /proc)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                out.extend(int(x) for x in handle.read().split())
        except OSError:
            continue
    return out


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(_child_pids(current))
    return out


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_once(command: list[str], *, corpus: Path, sink: Sink, env: dict[str, str], log: Path) -> RunResult:
    state = Path(tempfile.mkdtemp(prefix="servelog-bench-state-"))
    argv = [*command, "run", "--once", "--log-root", str(corpus), "--state-dir", str(state),
            "--opensearch-url", sink.url, "--node-name", "bench"]
    before = sink.documents()
    hwm_kib = tree_kib = 0
    try:
        with log.open("wb") as stderr:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
            while True:
                # wait4 reaps the child and returns the rusage of it and of every descendant it reaped
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                tree = _tree(proc.pid)
                hwm_kib = max(hwm_kib, *(_status_kib(p, "VmHWM:") for p in tree))
                tree_kib = max(tree_kib, sum(_status_kib(p, "VmRSS:") for p in tree))
                time.sleep(SAMPLE_SECONDS)
            wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    received = sink.documents() - before
    summary = None
    for line in log.read_bytes().splitlines():
        if line.startswith(b'{"summary"'):
            summary = json.loads(line)["summary"]
    return RunResult(
        exit_code=proc.returncode, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, user_s=usage.ru_utime,
        system_s=usage.ru_stime, peak_rss_mib=max(usage.ru_maxrss, hwm_kib) / 1024,
        tree_peak_rss_mib=max(tree_kib, usage.ru_maxrss) / 1024, received=received, summary=summary,
    )


def profile_once(command: list[str], *, corpus: Path, sink: Sink, env: dict[str, str], out_dir: Path) -> None:
    """One extra run under py-spy (flame graph) if installed, else cProfile (top functions printed)."""
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


# -- main ------------------------------------------------------------------------------------------
def _env(settings: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env["SERVELOG_TELEMETRY__LISTEN"] = ""  # no metrics port: runs never collide with anything listening
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        env[key if key.startswith("SERVELOG_") else f"SERVELOG_{key}"] = value
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000, help="physical CRI records in the corpus")
    parser.add_argument("--containers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus-root", type=Path, default=ROOT / "bench" / ".corpus")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a collector setting as environment, e.g. OPENSEARCH__WORKERS=4 (repeatable)")
    parser.add_argument("--sink-ceiling", type=float, default=0, metavar="SECONDS",
                        help="also measure the sink's own ceiling for this long first")
    parser.add_argument("--profile", action="store_true", help="one more run under py-spy (or cProfile)")
    args = parser.parse_args(argv)

    corpus_dir = args.corpus_root / f"{args.lines}-{args.containers}-{args.seed}"
    manifest = ensure_corpus(corpus_dir, lines=args.lines, containers=args.containers, seed=args.seed)
    records, expected = int(str(manifest["records"])), int(str(manifest["documents"]))
    if args.sink_ceiling:
        from bench.sink import measure

        ceiling = measure(args.sink_ceiling)
        print(f"sink ceiling: {ceiling['documents_per_second']:,.0f} documents/s (2 trivial clients, 5000-document bodies)")
    command = collector_command()
    env = _env(args.set)
    args.results.mkdir(parents=True, exist_ok=True)
    print(f"collector: {' '.join(command)} run --once ... ({args.runs} runs, fresh state each)")
    results: list[RunResult] = []
    failures = 0
    sink = Sink()
    try:
        for n in range(1, args.runs + 1):
            log = args.results / f"run-{n}.stderr.log"
            result = run_once(command, corpus=corpus_dir, sink=sink, env=env, log=log)
            results.append(result)
            exact = result.received == expected
            failures += (not exact) + (result.exit_code != 0)
            collector_said = ""
            if result.summary:
                said = result.summary
                collector_said = f"; collector: {said.get('lines_read')} lines -> {said.get('documents')} documents"
            print(f"run {n}: exit {result.exit_code}, {result.wall_s:.2f}s wall, {result.cpu_s:.2f} CPU-s "
                  f"({result.user_s:.2f} user + {result.system_s:.2f} sys), peak RSS {result.peak_rss_mib:.0f} MiB "
                  f"(tree {result.tree_peak_rss_mib:.0f} MiB); sink received {result.received:,} of {expected:,} expected "
                  f"documents{'' if exact else ' -- MISMATCH'}{collector_said}")
            if result.exit_code != 0:
                print(f"  collector failed; its stderr: {log}")
        if args.profile:
            profile_once(command, corpus=corpus_dir, sink=sink, env=env, out_dir=args.results)
    finally:
        sink.close()

    valid = [r for r in results if r.exit_code == 0 and r.received == expected]
    if not valid:
        print("no valid run (every run failed or delivered a wrong number of documents): no figures")
        return 1
    wall = statistics.median(r.wall_s for r in valid)
    cpu = statistics.median(r.cpu_s for r in valid)
    rss = statistics.median(r.peak_rss_mib for r in valid)
    tree_rss = statistics.median(r.tree_peak_rss_mib for r in valid)
    print(f"median of {len(valid)} valid runs: {records / wall:,.0f} lines/s wall ({expected / wall:,.0f} documents/s), "
          f"{cpu / records * 1e6:.2f} CPU-s per million lines = {records / cpu:,.0f} lines per CPU-second, "
          f"peak RSS {rss:.0f} MiB (tree {tree_rss:.0f} MiB)")
    print(f"targets: >= 100,000 lines per CPU-second ({'met' if records / cpu >= 100_000 else 'NOT met'}), "
          f"peak RSS < 150 MiB ({'met' if tree_rss < 150 else 'NOT met'}); "
          f"exactly {expected:,} documents in every run: {'yes' if failures == 0 else 'NO'}")
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command, "settings": args.set,
        "corpus": manifest, "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "runs": [asdict(r) for r in results],
        "median": {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss, "tree_peak_rss_mib": tree_rss,
                   "lines_per_s_wall": records / wall, "lines_per_cpu_s": records / cpu,
                   "cpu_s_per_million_lines": cpu / records * 1e6},
    }
    target = args.results / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {target}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
