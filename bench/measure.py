"""Measuring one process tree: wall-clock time, CPU-seconds and peak memory, the same way for every program.

``measure(argv, ...)`` starts the program and, every 50 ms until it exits:

- reaps it with ``os.wait4(pid, WNOHANG)``: the rusage it returns is the CPU time (user + system) of
  the process, all its threads, and every descendant it reaped;
- samples ``VmHWM`` (peak RSS) of each process of its tree and the sum of their ``VmRSS`` (the tree's
  resident memory now) from ``/proc``; the children of a process are read from
  ``/proc/<pid>/task/<tid>/children``, never by scanning all of ``/proc``;
- asks ``done()``, when given: a program that never exits by itself (Fluent Bit, ``servelog run``
  following live files) is finished when ``done()`` says so; the wall-clock time stops there and the
  program is sent SIGTERM (then SIGKILL after ``grace`` seconds), so that its rusage can be taken.

The wall-clock time runs from just before the fork to the exit (or to ``done()``), so interpreter start
and shutdown count for the programs that exit by themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.05


@dataclass
class Measured:
    """What one run of a program cost."""

    exit_code: int
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    peak_rss_mib: float  # max(ru_maxrss, sampled VmHWM of each process of the tree)
    tree_peak_rss_mib: float  # largest sampled sum of VmRSS over the process tree
    finished: bool = True  # False: timed out (or done() never said so) and was stopped
    stopped_by_us: bool = False  # True: sent SIGTERM because done() said so or the timeout passed
    samples: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (seconds, tree KiB)


def _child_pids(pid: int) -> list[int]:
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


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(_child_pids(current))
    return out


def status_kib(pid: int, field_name: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM:``, ``VmRSS:``); 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field_name):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def measure(
    argv: list[str],
    *,
    env: dict[str, str],
    log: Path,
    cwd: Path,
    done: Callable[[], bool] | None = None,
    tick: Callable[[float], None] | None = None,
    timeout: float | None = None,
    grace: float = 30.0,
    stdout: Path | None = None,
) -> Measured:
    """Run ``argv`` to its exit (or until ``done()``), measuring it; stderr goes to ``log``.

    ``tick(elapsed)`` is called at every sample (a scenario switches an outage on and off there)."""
    hwm_kib = tree_kib = 0
    samples: list[tuple[float, int]] = []
    finished, stopped, wall = True, False, None
    term_at: float | None = None
    with log.open("wb") as err, (stdout.open("wb") if stdout else open(os.devnull, "wb")) as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter() - started
            tree = process_tree(proc.pid)
            hwm_kib = max(hwm_kib, *(status_kib(p, "VmHWM:") for p in tree))
            rss = sum(status_kib(p, "VmRSS:") for p in tree)
            tree_kib = max(tree_kib, rss)
            samples.append((round(now, 3), rss))
            if tick is not None:
                tick(now)
            if term_at is None:
                if done is not None and done():
                    wall, term_at, stopped = now, now, True
                elif timeout is not None and now > timeout:
                    wall, term_at, stopped, finished = now, now, True, False
                if term_at is not None:
                    proc.send_signal(signal.SIGTERM)
            elif now - term_at > grace:
                proc.kill()
            time.sleep(SAMPLE_SECONDS)
        ended = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        exit_code=proc.returncode, wall_s=ended if wall is None else wall, cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime, system_s=usage.ru_stime, peak_rss_mib=max(usage.ru_maxrss, hwm_kib) / 1024,
        tree_peak_rss_mib=max(tree_kib, usage.ru_maxrss) / 1024, finished=finished, stopped_by_us=stopped,
        samples=samples,
    )
