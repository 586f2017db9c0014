"""End-to-end benchmarks of servelog against a loopback ``_bulk`` sink: throughput, backlog, latency.

    python -m bench.run                                  # throughput: servelog + floor, 2M-record corpus, 3 rounds
    FLUENT_BIT_BIN=/path/to/fluent-bit python -m bench.run   # ... and Fluent Bit, same work, ratios printed
    python -m bench.run --lines 200000 --runs 1          # a quick look
    python -m bench.run --scenario backlog               # OpenSearch outage with 2M lines waiting: peak RSS
    python -m bench.run --scenario latency               # line written -> acknowledged at 10k lines/s: p50, p99

**throughput** (``bench.throughput``): each round runs servelog (``run --once`` from a fresh state
directory), the floor (``bench.floor``: read + split of the same bytes) and, when ``FLUENT_BIT_BIN`` or
``--fluent-bit`` names a binary, Fluent Bit (``bench.fluentbit``), each measured the same way
(``bench.measure``: wall clock, CPU-seconds of the process tree from ``wait4``, peak RSS from
``/proc``), each checked for exactly the documents the corpus manifest says. It prints medians,
CPU-seconds per million records, records per second, peak RSS and the ratios between them. With
Fluent Bit, servelog runs with ``--set PIPELINE__EXCLUDE_CONTAINERS= --set PIPELINE__MULTILINE=false``
so both do the same work (``--no-same-work`` to keep servelog's defaults).

**backlog** (``bench.backlog``) and **latency** (``bench.latency``): see those modules.

Everything is also written to ``bench/results/<time>-<scenario>.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import throughput
from bench.harness import (
    ROOT,
    SAME_WORK,
    Sink,
    collector_command,
    ensure_corpus,
    expected_servelog_documents,
    load,
    servelog_env,
    write_report,
)


def _fluent_bit(args: argparse.Namespace) -> str | None:
    binary = args.fluent_bit or os.environ.get("FLUENT_BIT_BIN") or None
    if binary and not os.access(binary, os.X_OK):
        raise SystemExit(f"Fluent Bit binary {binary!r} (FLUENT_BIT_BIN / --fluent-bit) is not an executable file")
    return binary


def run_throughput(args: argparse.Namespace, corpus_dir: Path, manifest: dict[str, object]) -> int:
    records = int(str(manifest["records"]))
    binary = _fluent_bit(args)
    same_work = args.same_work if args.same_work is not None else binary is not None
    settings = [*(SAME_WORK if same_work else ()), *args.set]
    env = servelog_env(settings)
    expected = expected_servelog_documents(manifest, env)
    wanted = [c.strip() for c in args.only.split(",")] if args.only else ["servelog", "floor", "fluent_bit"]
    programs = [c for c in ("servelog", "floor", "fluent_bit") if c in wanted and (c != "fluent_bit" or binary)]
    if args.sink_ceiling:
        from bench.ceiling import measure as ceiling

        for full in (False, True):
            absorbed = ceiling(args.sink_ceiling, full=full)
            print(f"sink ceiling: {absorbed['documents_per_second']:,.0f} documents/s (2 trivial clients, 5000-document "
                  f"bodies{', full answers as Fluent Bit asks' if full else ', servelog filter_path'})")
    command = collector_command()
    fb_options = {"workers": args.fluent_bit_workers, "mem_buf_limit": args.fluent_bit_mem_buf_limit,
                  "buffer_chunk_size": args.fluent_bit_chunk, "threaded_input": args.fluent_bit_threaded}
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    print(f"servelog: {' '.join(command)} run --once ... settings {settings or 'defaults'}: expects {expected:,} documents")
    print("floor: python -m bench.floor CORPUS: expects every CRI record counted")
    if binary:
        print(f"Fluent Bit: {binary} -c fluent-bit.conf {fb_options}: expects {manifest['documents_per_file']:,} documents")
    args.results.mkdir(parents=True, exist_ok=True)
    runs: list[throughput.Run] = []
    sink = Sink()
    work = Path(tempfile.mkdtemp(prefix="bench-fluent-bit-"))
    try:
        for n in range(1, args.runs + 1):
            print(f"round {n} (load {load()}):")
            for program in programs:
                log = args.results / f"{program}-{n}.stderr.log"
                if program == "servelog":
                    run = throughput.run_servelog(command, corpus=corpus_dir, sink=sink, env=env, log=log, expected=expected,
                                                  chunked=int(str(manifest["chunked_lines"])))
                elif program == "floor":
                    run = throughput.run_floor(corpus=corpus_dir, log=log, records=records)
                else:
                    assert binary is not None
                    run = throughput.run_fluentbit(binary, corpus=corpus_dir, sink=sink, work=work, manifest=manifest,
                                                   options=fb_options, timeout=args.fluent_bit_timeout)
                    for name in ("fluent-bit.conf", "fluent-bit.log"):
                        if (work / name).exists():
                            (work / name).replace(args.results / f"{program}-{n}.{name.split('.', 1)[1]}")
                runs.append(run)
                print(throughput.describe_run(n, run))
        if args.profile and "servelog" in programs:
            throughput.profile_once(command, corpus=corpus_dir, sink=sink, env=env, out_dir=args.results)
    finally:
        sink.close()
        shutil.rmtree(work, ignore_errors=True)  # its configuration and log were moved to results/
    print(f"load average at end: {load()}")
    found = {p: throughput.figures(p, records, [r for r in runs if r.collector == p]) for p in programs}
    rows = [f for f in found.values() if f is not None]
    print(f"medians over valid runs ({records:,} CRI records, {int(str(manifest['bytes'])) / 2**20:,.0f} MiB):")
    print(throughput.table(rows))
    found_ratios = throughput.ratios(found.get("servelog"), found.get("floor"), found.get("fluent_bit"))
    for line in throughput.ratio_lines(found_ratios):
        print(line)
    invalid = [r for r in runs if not r.valid]
    if (servelog := found.get("servelog")) is not None:
        print(f"servelog peak RSS {servelog.peak_rss_mib:.0f} MiB (target < 100 MiB: "
              f"{'met' if servelog.peak_rss_mib < 100 else 'NOT met'})")
    print(f"every run valid: {'yes' if not invalid else f'NO ({len(invalid)} invalid runs, excluded from the medians)'}")
    write_report(args.results, "throughput", {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_at_end": load(), "cpus": os.cpu_count(),
        "python": sys.version.split()[0], "command": command, "settings": settings, "fluent_bit": binary,
        "fluent_bit_options": fb_options, "corpus": manifest, "runs": throughput.report(runs),
        "medians": {f.collector: {"wall_s": f.wall_s, "cpu_s": f.cpu_s, "peak_rss_mib": f.peak_rss_mib,
                                  "records_per_s": f.records_per_s, "cpu_s_per_million_records": f.cpu_s_per_million}
                    for f in rows},
        "ratios": found_ratios,
    })
    return 1 if invalid or len(rows) < len(programs) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("throughput", "backlog", "latency"), default="throughput")
    parser.add_argument("--lines", type=int, default=2_000_000, help="physical CRI records in the corpus")
    parser.add_argument("--containers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="rounds (throughput) or runs per outage mode (backlog)")
    parser.add_argument("--corpus-root", type=Path, default=ROOT / "bench" / ".corpus")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a servelog setting as environment, e.g. OPENSEARCH__WORKERS=4 (repeatable)")
    group = parser.add_argument_group("throughput")
    group.add_argument("--only", default="", help="comma-separated subset of servelog,floor,fluent_bit")
    group.add_argument("--same-work", action=argparse.BooleanOptionalAction, default=None,
                       help=f"servelog with {' '.join('--set ' + s for s in SAME_WORK)} (default: when Fluent Bit runs)")
    group.add_argument("--sink-ceiling", type=float, default=0, metavar="SECONDS",
                       help="also measure the sink's own ceiling for this long first")
    group.add_argument("--profile", action="store_true", help="one more servelog run under py-spy (or cProfile)")
    group.add_argument("--fluent-bit", default="", metavar="PATH", help="a Fluent Bit binary (default: $FLUENT_BIT_BIN)")
    group.add_argument("--fluent-bit-workers", type=int, default=2)
    group.add_argument("--fluent-bit-chunk", default="1M", help="tail Buffer_Chunk_Size")
    group.add_argument("--fluent-bit-mem-buf-limit", default=None, help="tail Mem_Buf_Limit (default: none)")
    group.add_argument("--fluent-bit-threaded", action="store_true", help="tail Threaded On")
    group.add_argument("--fluent-bit-timeout", type=float, default=900.0, metavar="SECONDS")
    group = parser.add_argument_group("backlog")
    group.add_argument("--outage", default="503,refuse", help="outage modes to run: 503 and/or refuse")
    group.add_argument("--outage-seconds", type=float, default=30.0)
    group = parser.add_argument_group("latency")
    group.add_argument("--rate", type=int, default=10_000, help="lines per second written")
    group.add_argument("--seconds", type=float, default=30.0, help="how long the writer writes")
    args = parser.parse_args(argv)

    if args.scenario == "latency":
        from bench.latency import run_latency

        return run_latency(args)
    corpus_dir = args.corpus_root / f"{args.lines}-{args.containers}-{args.seed}"
    manifest = ensure_corpus(corpus_dir, lines=args.lines, containers=args.containers, seed=args.seed)
    if args.scenario == "backlog":
        from bench.backlog import run_backlog

        return run_backlog(args, corpus_dir, manifest)
    return run_throughput(args, corpus_dir, manifest)


if __name__ == "__main__":
    sys.exit(main())
