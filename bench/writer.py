"""A steady writer of CRI lines into a live log file, each line carrying the time it was written.

    python -m bench.writer --file ROOT/<ns>_<pod>_<uid>/kserve-container/0.log --rate 10000 --seconds 30

Every 5 ms it appends, in one ``write()`` (``O_APPEND``, unbuffered), the lines due by then at
``--rate`` lines per second, as containerd writes them (``<RFC3339Nano> stdout F <message>``); each
message ends with ``seq=<n> sent_ns=<wall clock ns just before the write>``, which the sink
(``bench.sink --latency``) finds in the bodies it acknowledges. At the end it prints a JSON summary:
lines written, the rate achieved, and how far behind schedule it ever fell (a loaded machine shows).
"""

from __future__ import annotations

import argparse
import json
import os
import time

TICK_SECONDS = 0.005


def cri_time(ns: int) -> bytes:
    """containerd's timestamp: RFC3339Nano, UTC, trailing zeros of the fraction trimmed."""
    sec, frac = divmod(ns, 1_000_000_000)
    fraction = (b"%09d" % frac).rstrip(b"0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode() + (b"." + fraction if fraction else b"") + b"Z"


def cri_lines(ns: int, seqs: range) -> bytes:
    """The lines numbered ``seqs``, all written at ``ns``: a KServe SDK line with ``seq=`` and ``sent_ns=``."""
    stamp = cri_time(ns)
    app_time = b"%s.%03d" % (stamp[:19].replace(b"T", b" "), ns // 1_000_000 % 1000)
    return b"".join([b"%s stdout F %s 1 kserve INFO [model.py:predict():42] Predicting on 8 instances seq=%d sent_ns=%d\n"
                     % (stamp, app_time, seq, ns) for seq in seqs])


def write_steadily(path: str, *, rate: int, seconds: float, first_seq: int = 1) -> dict[str, float]:
    total = int(rate * seconds)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    written = behind = 0.0
    count = 0
    started = time.perf_counter()
    try:
        while count < total:
            elapsed = time.perf_counter() - started
            due = min(total, int(elapsed * rate) + 1)
            if due > count:
                behind = max(behind, elapsed - count / rate)
                now = time.time_ns()
                os.write(fd, cri_lines(now, range(first_seq + count, first_seq + due)))
                count = due
            time.sleep(TICK_SECONDS)
        written = time.perf_counter() - started
    finally:
        os.close(fd)
    return {"lines": count, "seconds": written, "rate": count / written if written else 0.0,
            "max_behind_ms": behind * 1000}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True)
    parser.add_argument("--rate", type=int, default=10_000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(json.dumps(write_steadily(args.file, rate=args.rate, seconds=args.seconds)), flush=True)


if __name__ == "__main__":
    main()
