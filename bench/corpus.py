"""A deterministic benchmark corpus: KServe-like CRI logs in the kubelet layout.

    python -m bench.corpus --out bench/.corpus --lines 2000000 --containers 40

Content mixes the KServe SDK format, uvicorn access lines, request-logger JSON, Python tracebacks
and occasional 40 KB lines split into 16 KiB ``P`` chunks; about 150 bytes per line. Some
containers are rotated (renamed and gzipped), as the kubelet leaves them.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import time
from pathlib import Path

BASE = 1795510800  # 2026-11-24T09:00:00Z
CHUNK = 16384
TRACEBACK = [
    b"Traceback (most recent call last):",
    b'  File "/usr/local/lib/python3.11/site-packages/kserve/protocol/dataplane.py", line 311, in infer',
    b"    response = await model(request, headers=headers)",
    b'  File "/app/model.py", line 42, in predict',
    b"KeyError: 'instances'",
]


def _ts(i: int, step_us: int) -> bytes:
    micros = i * step_us
    seconds, frac = divmod(micros, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + seconds))
    fraction = f"{frac:06d}".rstrip("0")
    return (f"{text}.{fraction}Z" if fraction else f"{text}Z").encode()


def container_lines(rng: random.Random, count: int, isvc: str) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while len(out) < count:
        ts = _ts(i, 997)
        i += 1
        roll = rng.random()
        if roll < 0.002:
            out.extend(ts + b" stderr F " + line for line in TRACEBACK)
            continue
        if roll < 0.0025:
            big = b"z" * 40000
            chunks = [big[k:k + CHUNK] for k in range(0, len(big), CHUNK)]
            out.extend(ts + (b" stdout F " if n == len(chunks) - 1 else b" stdout P ") + c for n, c in enumerate(chunks))
            continue
        if roll < 0.4:
            msg = (b"2026-11-24 09:%02d:%02d.%03d 1 kserve INFO [model.py:predict():40] scored request %016x in %.1f ms"
                   % (i // 60000 % 60, i // 1000 % 60, i % 1000, rng.getrandbits(64), rng.uniform(1, 50)))
            stream = b"stderr"
        elif roll < 0.75:
            msg = (b'INFO:     10.1.%d.%d:%d - "POST /v1/models/%s:predict HTTP/1.1" 200 OK'
                   % (rng.randint(0, 9), rng.randint(2, 250), rng.randint(30000, 60000), isvc.encode()))
            stream = b"stdout"
        else:
            msg = (b'{"level":"info","ts":%d.%03d,"logger":"fallback-logger","msg":"Logging request",'
                   b'"inferenceservice":"%s","id":"%016x"}' % (BASE + i // 1000, i % 1000, isvc.encode(), rng.getrandbits(64)))
            stream = b"stdout"
        out.append(ts + b" " + stream + b" F " + msg)
    return out


def generate(out: Path, *, lines: int, containers: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    per = lines // containers
    total_lines = total_bytes = 0
    names = ["kserve-container", "agent", "storage-initializer", "transformer-container"]
    for c in range(containers):
        isvc = f"model-{c // 4:02d}"
        uid = f"b0000000-0000-4000-8000-{c:012d}"
        pod = f"{isvc}-predictor-00001-deployment-6d4c5f7b9-{c:05d}"
        directory = out / f"bench-ns-{c % 4}_{pod}_{uid}" / names[c % len(names)]
        directory.mkdir(parents=True, exist_ok=True)
        data = container_lines(rng, per, isvc)
        total_lines += len(data)
        if c % 5 == 0:  # rotated: an old gzipped part, a renamed part, and the live file
            third = len(data) // 3
            parts = [data[:third], data[third:2 * third], data[2 * third:]]
            with gzip.open(directory / "0.log.20261124-090001.gz", "wb", compresslevel=1) as handle:
                handle.write(b"\n".join(parts[0]) + b"\n")
            (directory / "0.log.20261124-090002").write_bytes(b"\n".join(parts[1]) + b"\n")
            (directory / "0.log").write_bytes(b"\n".join(parts[2]) + b"\n")
        else:
            (directory / "0.log").write_bytes(b"\n".join(data) + b"\n")
        total_bytes += sum(len(x) + 1 for x in data)
    return total_lines, total_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/.corpus"))
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--containers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    lines, size = generate(args.out, lines=args.lines, containers=args.containers, seed=args.seed)
    print(f"corpus: {lines} physical lines, {size / 2**20:.0f} MiB, {args.containers} containers in {args.out} "
          f"({time.perf_counter() - started:.1f}s)")
    os.sync()


if __name__ == "__main__":
    main()
