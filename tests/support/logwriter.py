"""A kubelet/containerd log writer for tests, and the ledger oracle that checks exactly-once.

``ContainerLog`` writes CRI records the way containerd does (UTC timestamps with trailing zeros of
the fraction trimmed, lines over 16 KiB split into ``P`` chunks ending with an ``F``) and rotates the
way the kubelet does (rename ``0.log`` to ``0.log.<YYYYMMDD-HHMMSS>``, open a new ``0.log``, gzip the
older rotated files, delete beyond ``max_files``). Every logical line written is recorded in the
:class:`Ledger` with the message servelog must index for it; ``Ledger.compare`` then checks the
documents OpenSearch holds: each ledger line exactly once, nothing else.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHUNK = 16384
BASE_NS = 1795510800 * 10**9  # 2026-11-24T09:00:00Z


def cri_timestamp(ts_ns: int) -> str:
    seconds, nanos = divmod(ts_ns, 10**9)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


Key = tuple[str, str, int, str]


@dataclass
class Ledger:
    """Every logical line written: (pod uid, container, restart count, expected message)."""

    entries: Counter[Key] = field(default_factory=Counter)
    prefixes: list[tuple[str, str, int, str]] = field(default_factory=list)  # truncated lines: prefix match

    def record(self, pod_uid: str, container: str, restart: int, message: str, *, truncated_prefix: bool = False) -> None:
        if truncated_prefix:
            self.prefixes.append((pod_uid, container, restart, message))
        else:
            self.entries[(pod_uid, container, restart, message)] += 1

    def __len__(self) -> int:
        return sum(self.entries.values()) + len(self.prefixes)

    def compare(self, documents: Iterable[dict[str, Any]]) -> LedgerReport:
        got: Counter[Key] = Counter()
        truncated: list[Key] = []
        for doc in documents:
            key = (doc.get("pod_uid", ""), doc.get("container_name", ""), int(doc.get("restart_count", -1)),
                   doc.get("message", ""))
            if doc.get("truncated"):
                truncated.append(key)
            else:
                got[key] += 1
        missing = self.entries - got
        extra = got - self.entries
        duplicated = Counter({k: got[k] - self.entries[k] for k in extra if k in self.entries})
        unexpected = Counter({k: v for k, v in extra.items() if k not in self.entries})
        unmatched_prefixes = list(self.prefixes)
        for key in truncated:
            match = next((p for p in unmatched_prefixes if p[:3] == key[:3] and key[3].startswith(p[3][:1000])
                          and p[3].startswith(key[3][:1000])), None)
            if match is None:
                unexpected[key] += 1
            else:
                unmatched_prefixes.remove(match)
        for prefix in unmatched_prefixes:
            missing[prefix] += 1
        return LedgerReport(missing, duplicated, unexpected)

    def save(self, path: Path) -> None:
        rows = [[*k, n] for k, n in self.entries.items()]
        path.write_text(json.dumps({"entries": rows, "prefixes": self.prefixes}))


@dataclass
class LedgerReport:
    missing: Counter[Key]
    duplicated: Counter[Key]
    unexpected: Counter[Key]

    @property
    def exactly_once(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected)

    def __str__(self) -> str:
        def show(counter: Counter[Key]) -> str:
            return ", ".join(f"{k[1]}/{k[2]}:{k[3][:60]!r}x{n}" for k, n in list(counter.items())[:5])

        return (f"missing {sum(self.missing.values())} [{show(self.missing)}]; duplicated "
                f"{sum(self.duplicated.values())} [{show(self.duplicated)}]; unexpected "
                f"{sum(self.unexpected.values())} [{show(self.unexpected)}]")


class ContainerLog:
    """One container instance's log directory, written like containerd + the kubelet."""

    def __init__(self, root: Path, *, namespace: str, pod: str, uid: str, container: str, restart: int = 0,
                 ledger: Ledger, max_files: int = 5, clock: list[int] | None = None) -> None:
        self.namespace, self.pod, self.uid, self.container, self.restart = namespace, pod, uid, container, restart
        self.directory = root / f"{namespace}_{pod}_{uid}" / container
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{restart}.log"
        self.path.touch()
        self.ledger = ledger
        self.max_files = max_files
        self.clock = clock if clock is not None else [BASE_NS]
        self._rotations = 0

    def _now(self, step_ns: int = 1_000_000) -> int:
        self.clock[0] += step_ns
        return self.clock[0]

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def records(self, content: bytes, stream: str = "stdout", *, final: bool = True) -> bytes:
        """The CRI records for one logical line (16 KiB chunks)."""
        out = []
        chunks = [content[i:i + CHUNK] for i in range(0, len(content), CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            tag = b"F" if final and i == len(chunks) - 1 else b"P"
            out.append(b"%s %s %s %s\n" % (cri_timestamp(self._now()).encode(), stream.encode(), tag, chunk))
        return b"".join(out)

    def write(self, content: str | bytes, stream: str = "stdout", *, expect: str | None = None) -> None:
        data = content.encode() if isinstance(content, str) else content
        self._append(self.records(data, stream))
        self.ledger.record(self.uid, self.container, self.restart,
                           expect if expect is not None else data.decode("utf-8", "replace"))

    def write_many(self, lines: Iterable[str], stream: str = "stdout") -> None:
        batch, expected = [], []
        for line in lines:
            batch.append(self.records(line.encode(), stream))
            expected.append(line)
        self._append(b"".join(batch))
        for line in expected:
            self.ledger.record(self.uid, self.container, self.restart, line)

    def write_long(self, size: int, max_line_bytes: int) -> None:
        data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        self._append(self.records(data))
        if size > max_line_bytes:
            self.ledger.record(self.uid, self.container, self.restart, data[:max_line_bytes].decode(), truncated_prefix=True)
        else:
            self.ledger.record(self.uid, self.container, self.restart, data.decode())

    def write_traceback(self, lines: list[str]) -> None:
        self._append(b"".join(self.records(line.encode(), "stderr") for line in lines))
        self.ledger.record(self.uid, self.container, self.restart, "\n".join(lines))

    def write_partial(self, content: str) -> None:
        """A ``P`` record whose ``F`` comes later (or never: container exit without a newline)."""
        self._append(self.records(content.encode(), final=False))

    def write_final(self, content: str, *, whole_line: str) -> None:
        self._append(self.records(content.encode()))
        self.ledger.record(self.uid, self.container, self.restart, whole_line)

    def write_raw(self, data: bytes, *, expect: str | None) -> None:
        self._append(data)
        if expect is not None:
            self.ledger.record(self.uid, self.container, self.restart, expect)

    def rotate(self, *, compress: bool = True) -> None:
        self._rotations += 1
        stamp = datetime.fromtimestamp(self.clock[0] // 10**9 + self._rotations, tz=UTC).strftime("%Y%m%d-%H%M%S")
        if compress:
            for old in sorted(self.directory.glob(f"{self.restart}.log.*")):
                if old.suffix != ".gz":
                    with old.open("rb") as src, gzip.open(f"{old}.gz", "wb") as dst:
                        dst.write(src.read())
                    old.unlink()
        os.rename(self.path, self.directory / f"{self.restart}.log.{stamp}")
        self.path.touch()
        rotated = sorted(self.directory.glob(f"{self.restart}.log.*"))
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink()

    def truncate(self) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(0)
