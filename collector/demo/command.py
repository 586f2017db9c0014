"""``servelog demo``: write demo pod logs in the kubelet layout, plus a static pod metadata file.

    servelog demo --log-root /demo/pods --metadata-file /demo/pods.yaml            # until stopped
    servelog demo --log-root /tmp/pods --metadata-file /tmp/pods.yaml --once       # a fixed amount

Files are written like containerd writes them (CRI records, 16 KiB ``P``/``F`` chunks) and rotated
like the kubelet rotates them (rename to ``0.log.<stamp>``, gzip older rotated files, keep five).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from collector.demo.content import OOM_POD, PODS, TRACEBACK, DemoPod, now, pod_object, startup_lines, traffic_line

CHUNK = 16384


def cri_timestamp(when: datetime) -> str:
    fraction = f"{when.microsecond:06d}".rstrip("0")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class ContainerWriter:
    """Appends CRI records to one container instance's log, rotating like the kubelet."""

    def __init__(self, root: Path, pod: DemoPod, container: str, restart: int, *, max_bytes: int, max_files: int) -> None:
        self.directory = root / f"{pod.namespace}_{pod.name}_{pod.uid}" / container
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{restart}.log"
        self.restart = restart
        self.max_bytes = max_bytes
        self.max_files = max_files

    def write(self, line: str, stream: str, when: datetime) -> None:
        data = line.encode()
        chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        stamp = cri_timestamp(when).encode()
        records = b"".join(b"%s %s %s %s\n" % (stamp, stream.encode(), b"F" if i == len(chunks) - 1 else b"P", chunk)
                           for i, chunk in enumerate(chunks))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, records)
        finally:
            os.close(fd)
        if self.path.stat().st_size >= self.max_bytes:
            self.rotate(when)

    def rotate(self, when: datetime) -> None:
        rotated = sorted(self.directory.glob(f"{self.restart}.log.*"))
        for old in rotated:
            if old.suffix != ".gz":
                with old.open("rb") as src, gzip.open(f"{old}.gz.tmp", "wb") as dst:
                    dst.write(src.read())
                os.replace(f"{old}.gz.tmp", f"{old}.gz")
                old.unlink()
        target = self.directory / f"{self.restart}.log.{when.strftime('%Y%m%d-%H%M%S')}"
        while target.exists():
            when += timedelta(seconds=1)
            target = self.directory / f"{self.restart}.log.{when.strftime('%Y%m%d-%H%M%S')}"
        os.rename(self.path, target)
        self.path.touch()
        rotated = sorted(self.directory.glob(f"{self.restart}.log.*"))
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-root", type=Path, required=True, help="where to write <ns>_<pod>_<uid>/<container>/N.log")
    parser.add_argument("--metadata-file", type=Path, required=True, help="where to write the pods (a PodList in YAML)")
    parser.add_argument("--once", action="store_true", help="write --lines lines as fast as possible, then exit")
    parser.add_argument("--lines", type=int, default=2000, help="traffic lines with --once (default 2000)")
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until signalled)")
    parser.add_argument("--rate", type=float, default=20.0, help="traffic lines per second (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (the story is deterministic)")
    parser.add_argument("--rotate-bytes", type=int, default=1024 * 1024, help="rotate a file at this size (1 MiB)")


def write_metadata(path: Path, restarts: dict[str, int]) -> None:
    pods = [pod_object(p, restarts=restarts.get(p.uid, 0)) for p in PODS]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "PodList", "items": pods}, sort_keys=False))
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    clock = now() if not args.once else datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    restarts: dict[str, int] = {}
    write_metadata(args.metadata_file, restarts)
    writers: dict[tuple[str, str, int], ContainerWriter] = {}

    def writer(pod: DemoPod, container: str) -> ContainerWriter:
        restart = restarts.get(pod.uid, 0) if container == "kserve-container" else 0
        key = (pod.uid, container, restart)
        if key not in writers:
            writers[key] = ContainerWriter(args.log_root, pod, container, restart, max_bytes=args.rotate_bytes,
                                           max_files=5)
        return writers[key]

    for pod in PODS:
        for container, lines in startup_lines(pod, clock).items():
            for line in lines:
                writer(pod, container).write(line, "stderr" if "kserve" in line else "stdout", clock)
    written = 0
    total = args.lines if args.once else None
    started = now()
    while not stop.is_set():
        if total is not None and written >= total:
            break
        if args.duration and (now() - started).total_seconds() >= args.duration:
            break
        clock = clock + timedelta(milliseconds=rng.randint(1, 50)) if args.once else now()
        pod = PODS[rng.randrange(len(PODS))]
        container, stream, line = traffic_line(pod, rng, clock)
        writer(pod, container).write(line, stream, clock)
        written += 1
        if written % 400 == 0:  # version 2 of the fraud model crashes on a bad payload
            crashing = PODS[1]
            writer(crashing, "kserve-container").write(
                "2026-11-24 09:00:00.000 1 kserve ERROR [dataplane.py:infer():311] Exception in predict", "stderr", clock)
            for tb_line in TRACEBACK:
                writer(crashing, "kserve-container").write(tb_line, "stderr", clock)
        if written == (total or 4000) // 2 and not restarts:
            _oom(writer, restarts, args, clock)
        if written % 250 == 0:
            writer(pod, "kserve-container").write("x" * 40000, "stdout", clock)  # a 40 KB line: 16 KiB chunks
        if not args.once:
            stop.wait(1.0 / args.rate)
    return 0


def _oom(writer: Any, restarts: dict[str, int], args: argparse.Namespace, clock: datetime) -> None:
    """The sentiment server runs out of memory and restarts: its next lines go to 1.log."""
    writer(OOM_POD, "kserve-container").write(
        "2026-11-24 09:00:00.000 1 kserve WARNING [model.py:predict():51] batch of 4096 inputs, memory at 98%", "stderr", clock)
    restarts[OOM_POD.uid] = 1
    write_metadata(args.metadata_file, restarts)
    writer(OOM_POD, "kserve-container").write(
        "INFO:     Started server process [1] (after OOMKilled restart, exit code 137)", "stdout", clock)
