"""``servelog demo``: write realistic KServe pod logs in the kubelet layout, plus a static pod metadata file.

    servelog demo --log-root /demo/pods --metadata-file /demo/pods.yaml             # until SIGTERM/SIGINT
    servelog demo --log-root /demo/pods --metadata-file /demo/pods.yaml --duration 60
    servelog demo --log-root /tmp/pods --metadata-file /tmp/pods.yaml --once        # a fixed amount, then exit
    servelog demo ... --history-dir /demo/history   # also the workload's history, for servelog events --from-files

Then ``servelog run --log-root ... --metadata-file ...`` collects it as if on a node. What is said
comes from :mod:`collector.demo.content` (pure), how it lands on disk from :mod:`collector.demo.kubelet`;
this module only wires them: pacing, stopping, the metadata file, and (``--history-dir``) the
deployment history of the same workload from :mod:`collector.demo.history`: Pods, InferenceServices
and Events as the API would serve them, for ``servelog events --from-files``.

``--once`` uses a simulated clock starting at a fixed instant, so the same ``--seed`` writes the same
bytes; the live mode stamps lines with the wall clock.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from collector.demo.content import SECOND, Clock, LogLine, Restart, pod_list, simulated_clock, story
from collector.demo.history import initial_history, restart_history
from collector.demo.kubelet import LogTree

ONCE_START_NS = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()) * SECOND
LIVE_OOM_AFTER = 2000  # lines: about a minute and a half into a live demo at the default rate


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-root", type=Path, required=True, help="where to write <ns>_<pod>_<uid>/<container>/N.log")
    parser.add_argument("--metadata-file", type=Path, required=True, help="where to write the pods (a PodList in YAML)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="write about --lines lines as fast as possible, then exit")
    mode.add_argument("--duration", type=_positive(float), default=None,
                      help="stop after this many seconds (default: run until SIGTERM/SIGINT)")
    parser.add_argument("--lines", type=_positive(int), default=2000, help="lines to write with --once (default 2000)")
    parser.add_argument("--rate", type=_positive(float), default=20.0, help="lines per second when live (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed tells the same story (default 1)")
    parser.add_argument("--rotate-bytes", type=_positive(int), default=1024 * 1024,
                        help="rotate a log file when it reaches this size, like the kubelet (default 1 MiB)")
    parser.add_argument("--history-dir", type=Path, default=None,
                        help="also write the workload's deployment history (Pod, InferenceService and Event JSON "
                        "documents) here, for `servelog events --from-files DIR`")


def write_history(directory: Path, files: dict[str, dict[str, Any]]) -> None:
    """Add history files atomically (a reader polling the directory never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, directory / name)


def start_history(directory: Path) -> None:
    """The history directory belongs to the demo: a new run starts it afresh."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()


def write_metadata(path: Path, pods: dict[str, Any]) -> None:
    """Replace the metadata file atomically: the collector re-reads it when it changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(pods, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT end the demo cleanly; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def generate(*, log_root: Path, metadata_file: Path, seed: int, clock: Clock, max_lines: int | None, oom_after: int,
             rotate_bytes: int, pace: float | None = None, stop: threading.Event | None = None,
             deadline: float | None = None, history_dir: Path | None = None) -> int:
    """Write the story until it ends, ``stop`` is set or ``deadline`` (monotonic) passes; return the lines written."""
    tree = LogTree(log_root, max_bytes=rotate_bytes)
    created = clock()
    restarts: dict[str, Restart] = {}
    write_metadata(metadata_file, pod_list(created_ns=created, restarts=restarts))
    if history_dir is not None:
        start_history(history_dir)
        write_history(history_dir, initial_history(created))
    started = time.monotonic()
    written = 0
    for event in story(rng=random.Random(seed), clock=clock, max_lines=max_lines, oom_after=oom_after):
        if isinstance(event, Restart):
            restarts[event.pod.uid] = event
            write_metadata(metadata_file, pod_list(created_ns=created, restarts=restarts))
            if history_dir is not None:
                write_history(history_dir, restart_history(created, event, sequence=10 * len(restarts)))
            continue
        assert isinstance(event, LogLine)
        tree.write(event)
        written += 1
        if stop is not None and stop.is_set():
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        if pace is not None:
            ahead = started + written / pace - time.monotonic()
            if ahead > 0 and stop is not None:
                stop.wait(ahead)
    return written


def run(args: argparse.Namespace) -> int:
    if args.once:
        written = generate(log_root=args.log_root, metadata_file=args.metadata_file, seed=args.seed,
                           clock=simulated_clock(ONCE_START_NS, random.Random(f"{args.seed}/clock")),
                           max_lines=args.lines, oom_after=args.lines // 2, rotate_bytes=args.rotate_bytes,
                           history_dir=args.history_dir)
    else:
        sys.stderr.write(f"servelog demo: writing pod logs under {args.log_root} and pods to {args.metadata_file} "
                         f"at {args.rate:g} lines/s; stop with Ctrl-C\n")
        stop = threading.Event()
        deadline = time.monotonic() + args.duration if args.duration else None
        with _stop_on_signals(stop):
            written = generate(log_root=args.log_root, metadata_file=args.metadata_file, seed=args.seed,
                               clock=time.time_ns, max_lines=None, oom_after=LIVE_OOM_AFTER,
                               rotate_bytes=args.rotate_bytes, pace=args.rate, stop=stop, deadline=deadline,
                               history_dir=args.history_dir)
    sys.stderr.write(f"servelog demo: wrote {written} lines under {args.log_root}\n")
    return 0
