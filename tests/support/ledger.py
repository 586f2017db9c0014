"""The exactly-once oracle: a ledger of every logical line written, compared with what was indexed.

The kubelet simulator (:mod:`tests.support.kubelet`) records one :class:`LedgerEntry` per logical
line it writes, carrying the message the collector must index for it (the collector's contract,
computed by :func:`expected_message`). :meth:`Ledger.compare` then takes the documents the loopback
OpenSearch holds and says which entries are missing, which were indexed more than once, which
documents match nothing, and which matched but with the wrong stream or truncation flag.

The comparison is a multiset keyed by (pod_uid, container, restart_count, message): the same line
can legitimately be written twice, and then it must be indexed twice. Truncated lines match by
prefix, because the collector may drop a partial multibyte character at the cut.

A ledger can persist to a JSON-lines file, appended entry by entry, so that a writer in another
process (killed or not) and the test that checks it share one ledger.
"""

from __future__ import annotations

import codecs
import json
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
DEFAULT_MAX_LINE_BYTES = MiB

# Kinds of ledger entries (informational: they say which writer helper produced the line).
KIND_LINE = "line"
KIND_TRACEBACK = "traceback"
KIND_PARTIAL = "partial"  # a trailing P record never completed by an F
KIND_SPLIT = "split"  # a P before a rotation, its F after it
KIND_RAW = "raw"  # a hand-made (usually malformed) record

_REPLACEMENT = "\ufffd"
# How many characters a truncated document may lack at its end compared with the expected prefix:
# a UTF-8 character is at most 4 bytes, so cutting inside one can cost the collector at most
# that character (plus the replacement character Python would have produced for the cut bytes).
_PREFIX_SLACK_CHARS = 4
_SHOW = 5  # items of each category shown in a report
_SHOW_CHARS = 100  # characters of a message shown in a report


def _per_byte_replace(error: UnicodeError) -> tuple[str, int]:
    """Replace each undecodable byte by one U+FFFD, as Go's encoders do (Docker json-file)."""
    assert isinstance(error, UnicodeDecodeError)
    return _REPLACEMENT * (error.end - error.start), error.end


codecs.register_error("servelog-tests-per-byte-replace", _per_byte_replace)


def decode_go(data: bytes) -> str:
    """Decode UTF-8 the way Go's JSON writers do: every invalid byte becomes one U+FFFD."""
    return data.decode("utf-8", "servelog-tests-per-byte-replace")


def expected_message(content: bytes, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[str, bool]:
    """The message the collector must index for a logical line's content, and whether it is truncated.

    The content is the line without its newline (partial chunks already concatenated). It is cut
    at ``max_line_bytes`` bytes, then decoded as UTF-8 with replacement characters (NUL kept).
    """
    if len(content) > max_line_bytes:
        return content[:max_line_bytes].decode("utf-8", "replace"), True
    return content.decode("utf-8", "replace"), False


Key = tuple[str, str, int, str]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One logical line written: where, on which stream, and the message expected for it.

    ``stream`` is ``""`` when the writer cannot know it (a malformed record): it is then not checked.
    """

    pod_uid: str
    container: str
    restart_count: int
    stream: str
    expected_message: str
    kind: str = KIND_LINE
    truncated: bool = False

    @property
    def key(self) -> Key:
        return (self.pod_uid, self.container, self.restart_count, self.expected_message)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LedgerEntry:
        return cls(
            pod_uid=str(data["pod_uid"]), container=str(data["container"]), restart_count=int(data["restart_count"]),
            stream=str(data.get("stream", "")), expected_message=str(data["expected_message"]),
            kind=str(data.get("kind", KIND_LINE)), truncated=bool(data.get("truncated", False)),
        )


def _source(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """A search hit's ``_source``, or the document itself."""
    source = document.get("_source")
    return source if isinstance(source, Mapping) else document


def _doc_key(document: Mapping[str, Any]) -> Key:
    restart = document.get("restart_count", -1)
    return (str(document.get("pod_uid", "")), str(document.get("container_name", "")),
            int(restart) if restart is not None else -1, str(document.get("message", "")))


def _clip(text: str) -> str:
    if len(text) <= _SHOW_CHARS:
        return repr(text)
    return f"{text[:_SHOW_CHARS]!r}... ({len(text)} chars)"


def _show_entry(entry: LedgerEntry) -> str:
    flags = f" {entry.kind}" + (" truncated" if entry.truncated else "")
    where = f"{entry.pod_uid}/{entry.container}/{entry.restart_count}"
    return f"{where} {entry.stream or '?'}{flags}: {_clip(entry.expected_message)}"


def _show_doc(document: Mapping[str, Any]) -> str:
    uid, container, restart, message = _doc_key(document)
    flags = " truncated" if document.get("truncated") else ""
    return f"{uid}/{container}/{restart} {document.get('stream', '?')}{flags}: {_clip(message)}"


@dataclass
class LedgerReport:
    """The outcome of a comparison; ``str(report)`` is meant for assertion messages."""

    expected: int
    received: int
    missing: list[LedgerEntry] = field(default_factory=list)
    duplicated: list[Mapping[str, Any]] = field(default_factory=list)
    unexpected: list[Mapping[str, Any]] = field(default_factory=list)
    # documents that matched an entry's key but not its stream or truncation flag
    mismatched: list[tuple[LedgerEntry, Mapping[str, Any]]] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        """Every entry indexed exactly once, as expected, and nothing else indexed."""
        return not (self.missing or self.duplicated or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        head = (f"ledger: {self.expected} expected, {self.received} documents: {len(self.missing)} missing, "
                f"{len(self.duplicated)} duplicated, {len(self.unexpected)} unexpected, {len(self.mismatched)} mismatched")
        parts = [head]
        sections: list[tuple[str, list[str]]] = [
            ("missing", [_show_entry(e) for e in self.missing[:_SHOW]]),
            ("duplicated", [_show_doc(d) for d in self.duplicated[:_SHOW]]),
            ("unexpected", [_show_doc(d) for d in self.unexpected[:_SHOW]]),
            ("mismatched", [f"expected {_show_entry(e)}\n      got {_show_doc(d)}" for e, d in self.mismatched[:_SHOW]]),
        ]
        for name, shown in sections:
            if shown:
                parts.append(f"  {name} (first {len(shown)}):")
                parts.extend(f"    - {line}" for line in shown)
        return "\n".join(parts)

    __repr__ = __str__


def _flags_match(entry: LedgerEntry, document: Mapping[str, Any], *, check_stream: bool) -> bool:
    if bool(document.get("truncated", False)) != entry.truncated:
        return False
    if check_stream and entry.stream:
        return document.get("stream") == entry.stream
    return True


def _take(pool: deque[int], entries: list[LedgerEntry], document: Mapping[str, Any], *,
          check_stream: bool) -> tuple[int, bool]:
    """Consume the entry (index) of ``pool`` that best fits ``document``: one whose flags match if any."""
    for n, i in enumerate(pool):
        if _flags_match(entries[i], document, check_stream=check_stream):
            del pool[n]
            return i, True
    return pool.popleft(), False


def _prefix_match(entry: LedgerEntry, message: str) -> bool:
    expected = entry.expected_message.rstrip(_REPLACEMENT)
    got = message.rstrip(_REPLACEMENT)
    return expected.startswith(got) and len(expected) - len(got) <= _PREFIX_SLACK_CHARS


class Ledger:
    """Every logical line written, in writing order.

    With ``path``, each entry is also appended to that JSON-lines file as it is recorded (after
    the line itself was written to the log, so a writer killed in between leaves a line the ledger
    does not know rather than a ledger entry for a line never written).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: list[LedgerEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def record(self, entry: LedgerEntry) -> None:
        self.extend((entry,))

    def extend(self, entries: Iterable[LedgerEntry]) -> None:
        batch = list(entries)
        self.entries.extend(batch)
        if self.path is not None and batch:
            data = "".join(e.to_json() + "\n" for e in batch).encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def add(self, pod_uid: str, container: str, restart_count: int, stream: str, expected_message: str, *,
            kind: str = KIND_LINE, truncated: bool = False) -> LedgerEntry:
        entry = LedgerEntry(pod_uid, container, restart_count, stream, expected_message, kind, truncated)
        self.record(entry)
        return entry

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write every entry to ``path`` (JSON lines), atomically."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(e.to_json() + "\n" for e in self.entries), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """Read a ledger file; a torn last line (a writer killed mid-append) is ignored."""
        ledger = cls()
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = text.split("\n")
        for number, line in enumerate(lines):
            if not line:
                continue
            try:
                ledger.entries.append(LedgerEntry.from_mapping(json.loads(line)))
            except json.JSONDecodeError:
                if number == len(lines) - 1:  # the last line has no newline: an interrupted append
                    break
                raise
        return ledger

    # -- the oracle ---------------------------------------------------------------------------
    def compare(self, documents: Iterable[Mapping[str, Any]], *, check_stream: bool = True) -> LedgerReport:
        """Match indexed documents (sources or search hits) against the ledger.

        ``check_stream=False`` for sources that cannot tell stdout from stderr (the pods/log API).
        """
        entries = self.entries
        exact: dict[Key, deque[int]] = defaultdict(deque)  # key -> indices of entries not yet matched
        prefixed: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for i, entry in enumerate(entries):
            if entry.truncated:
                prefixed[entry.key[:3]].append(i)
            else:
                exact[entry.key].append(i)
        exact_keys = set(exact)
        matched_prefixed: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        matched = [False] * len(entries)
        report = LedgerReport(expected=len(entries), received=0)
        for raw in documents:
            document = _source(raw)
            report.received += 1
            key = _doc_key(document)
            pool = exact.get(key)
            if pool:
                i, fits = _take(pool, entries, document, check_stream=check_stream)
                matched[i] = True
                if not fits:
                    report.mismatched.append((entries[i], document))
                continue
            if key in exact_keys:
                report.duplicated.append(document)
                continue
            group = key[:3]
            candidates = prefixed.get(group, [])
            found = next((i for i in candidates if _prefix_match(entries[i], key[3])), None)
            if found is not None:
                candidates.remove(found)
                matched_prefixed[group].append(found)
                matched[found] = True
                if not _flags_match(entries[found], document, check_stream=check_stream):
                    report.mismatched.append((entries[found], document))
            elif any(_prefix_match(entries[i], key[3]) for i in matched_prefixed.get(group, [])):
                report.duplicated.append(document)
            else:
                report.unexpected.append(document)
        report.missing = [e for e, done in zip(entries, matched, strict=True) if not done]
        return report


__all__ = [
    "DEFAULT_MAX_LINE_BYTES", "KIND_LINE", "KIND_PARTIAL", "KIND_RAW", "KIND_SPLIT", "KIND_TRACEBACK",
    "Ledger", "LedgerEntry", "LedgerReport", "decode_go", "expected_message",
]
