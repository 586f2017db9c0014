"""End-to-end benchmark: ``servelog run --once`` over the corpus into the loopback bulk sink.

    python -m bench.run                      # 2M lines, 3 runs
    python -m bench.run --lines 200000 --runs 1

Prints, as medians over the runs: wall-clock lines/s, lines per CPU-second and CPU-seconds per
million lines of the collector process (user + system, from ``wait4``), and its peak RSS. Each run
starts from an empty state directory, so everything is read, enriched, encoded and sent. The sink's
own ceiling is measured first (a client that only replays one bulk body), to show it is not the
bottleneck.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from bench.corpus import generate


def start_sink() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--port", "0"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = proc.stdout.readline().split()[1].decode()
    return proc, f"http://127.0.0.1:{port}"


def sink_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_bench/stats", timeout=10) as response:
        return orjson.loads(response.read())  # type: ignore[no-any-return]


def sink_ceiling(url: str, seconds: float = 3.0) -> float:
    """Documents per second the sink absorbs from one client replaying a 5000-document body."""
    doc = b'{"create":{"_index":"serving-logs-x-2026.11.24","_id":"AAAAAAAAAAAAAAAAAAAA"}}\n{"m":"' + b"x" * 280 + b'"}\n'
    body = doc * 5000
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        request = urllib.request.Request(f"{url}/_bulk", data=body, method="POST",
                                         headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        sent += 5000
    return sent / (time.perf_counter() - started)


def run_once(corpus: Path, url: str, *, extra_env: dict[str, str]) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix="servelog-bench-state-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env.update(extra_env)
    before = sink_stats(url)["documents"]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "collector", "run", "--once", "--log-root", str(corpus),
                             "--state-dir", str(state), "--opensearch-url", url, "--node-name", "bench", "--listen", ""],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    while True:  # wait4 reaps the collector and returns its own rusage (CPU, max RSS)
        pid, exit_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:  # also sample the high-water mark while it runs
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kib = max(peak_kib, int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]))
        except (OSError, StopIteration):
            pass
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(exit_status)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else b""
    summary = orjson.loads([line for line in stderr.splitlines() if line.startswith(b'{"summary"')][-1])["summary"]
    shutil.rmtree(state, ignore_errors=True)
    cpu = usage.ru_utime + usage.ru_stime
    received = sink_stats(url)["documents"] - before
    return {"lines": summary["lines_read"], "documents": summary["documents"], "received": received, "wall": wall,
            "cpu": cpu, "rss_mib": max(peak_kib, usage.ru_maxrss) / 1024, "exit": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--containers", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=Path("bench/.corpus"))
    args = parser.parse_args()
    corpus = args.corpus / f"{args.lines}-{args.containers}"
    if not corpus.exists():
        lines, size = generate(corpus, lines=args.lines, containers=args.containers, seed=1)
        print(f"corpus: {lines} lines, {size / 2**20:.0f} MiB")
    sink, url = start_sink()
    try:
        print(f"sink ceiling: {sink_ceiling(url):,.0f} documents/s (one client, 5000-document bodies)")
        results = []
        for i in range(args.runs):
            result = run_once(corpus, url, extra_env={})
            results.append(result)
            print(f"run {i + 1}: {result['lines']:,} lines -> {result['documents']:,} documents "
                  f"(sink received {result['received']:,}) in {result['wall']:.2f}s wall, {result['cpu']:.2f} CPU-s, "
                  f"peak RSS {result['rss_mib']:.0f} MiB")
            assert result["received"] == result["documents"], "every document reached the sink exactly once"
    finally:
        sink.terminate()
    lines = statistics.median(r["lines"] for r in results)
    cpu = statistics.median(r["cpu"] for r in results)
    wall = statistics.median(r["wall"] for r in results)
    print(f"median: {lines / wall:,.0f} lines/s wall, {lines / cpu:,.0f} lines per CPU-second, "
          f"{cpu / lines * 1e6:.2f} CPU-s per million lines, peak RSS {statistics.median(r['rss_mib'] for r in results):.0f} MiB")


if __name__ == "__main__":
    main()
