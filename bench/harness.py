"""What every benchmark scenario shares: the corpus, the sink process, the collector's command and settings.

- ``ensure_corpus``: the deterministic corpus, generated once and reused while its manifest matches;
- ``Sink``: ``bench.sink`` in a child process, driven through its control port (stats, outages,
  latency records), so it answers even while its ``_bulk`` port refuses connections;
- ``collector_command`` and ``servelog_env``: how ``servelog`` is started, with settings as
  ``SERVELOG_*`` environment (``--set KEY=VALUE``), no metrics port, this checkout on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench import corpus as corpus_mod

ROOT = Path(__file__).resolve().parent.parent

# What makes servelog do Fluent Bit's work: every container collected (servelog skips queue-proxy by
# default, Fluent Bit's tail has no such rule) and no traceback grouping (Fluent Bit's cri parser
# merges P/F chunks only).
SAME_WORK = ("PIPELINE__EXCLUDE_CONTAINERS=", "PIPELINE__MULTILINE=false")


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

    def __init__(self, *, latency: bool = False) -> None:
        argv = [sys.executable, "-m", "bench.sink", "--port", "0", *(["--latency"] if latency else [])]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 3 or first[0] != "LISTENING":
            self.close()
            raise SystemExit(f"bench.sink did not start: {first!r}")
        self.port = int(first[1])
        self.url = f"http://127.0.0.1:{first[1]}"
        self.control = f"http://127.0.0.1:{first[2]}"

    def _get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.control}{path}", timeout=30) as response:
            data = json.loads(response.read())
        assert isinstance(data, dict)
        return data

    def _post(self, path: str) -> None:
        request = urllib.request.Request(f"{self.control}{path}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stats(self) -> dict[str, object]:
        return self._get("/_stats_fake")

    def documents(self) -> int:
        return int(str(self.stats()["documents"]))

    def latency(self) -> dict[str, object]:
        return self._get("/_bench/latency")

    def outage(self, mode: str) -> None:
        """``503``: every request answered 503; ``refuse``: the port stops accepting connections."""
        self._post(f"/_bench/outage?mode={mode}")

    def recover(self) -> None:
        self._post("/_bench/recover")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


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


def servelog_env(settings: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The collector's environment: ours without SERVELOG_*, no metrics port, then ``KEY=VALUE`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env["SERVELOG_TELEMETRY__LISTEN"] = ""  # no metrics port: runs never collide with anything listening
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        env[key if key.startswith("SERVELOG_") else f"SERVELOG_{key}"] = value
    return env


def expected_servelog_documents(manifest: dict[str, object], env: dict[str, str]) -> int:
    """Documents servelog must deliver: tracebacks grouped (the default) or one per merged CRI record."""
    grouping = env.get("SERVELOG_PIPELINE__MULTILINE", "true").strip().lower() not in ("false", "0", "no", "off")
    return int(str(manifest["documents" if grouping else "documents_ungrouped"]))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def write_report(results: Path, scenario: str, report: dict[str, object]) -> None:
    """``results/<time>-<scenario>.json``."""
    target = results / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {target}")
