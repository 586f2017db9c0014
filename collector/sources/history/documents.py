"""Pure: a history *fact* (one thing that happened), its deterministic identity, index and bulk encoding.

Every reader of the cluster (the event watch, pod status, InferenceService status) turns objects
into :class:`Fact` values: what kind of thing happened, the parts that identify it, when it happened
and the document fields. From a fact alone follow its ``_id`` (BLAKE2b-120 of the kind and the
identity parts, never of the time it was read) and its index (``serving-events-<UTC day of the
timestamp>``), so a relist, a restart, a second replica or the same termination seen in ten pod
updates all produce the same ``create`` action: the first is indexed, the others are 409s.

Kubernetes writes times as RFC 3339 with whole seconds (``metav1.Time``) or microseconds
(``MicroTime``, ``eventTime``); :func:`parse_time` reads both, and documents carry nine fraction
digits like the logs (``date_nanos``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from collector import model as m
from collector.transforms.cri import format_timestamp
from collector.transforms.identity import index_name

_TIME = re.compile(r"^(?P<base>\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d{1,9}))?(?P<zone>[Zz]|[+-]\d\d:\d\d)$")
_SEPARATOR = "\x1f"  # between identity parts: never inside a Kubernetes name, uid, reason or time


def parse_time(value: Any) -> int | None:
    """An API time (``2026-11-24T09:00:00Z``, ``...:00.123456Z``, ``+02:00``) as ns since the epoch; None if absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    match = _TIME.match(value.strip())
    if match is None:
        return None
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        parsed = datetime.fromisoformat(match["base"].replace("t", "T").replace(" ", "T") + zone)
    except ValueError:
        return None
    nanos = int((match["fraction"] or "").ljust(9, "0") or 0)
    return int(parsed.timestamp()) * 1_000_000_000 + nanos


def first_time(*values: Any) -> int | None:
    """The first value that parses as a time."""
    for value in values:
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def iso(ts_ns: int) -> str:
    """A document timestamp: RFC 3339 UTC with nine fraction digits."""
    return format_timestamp(ts_ns)


def history_id(kind: str, parts: Iterable[str]) -> str:
    """The ``_id`` of a fact: 20 URL-safe characters, a pure function of its kind and identity parts."""
    key = _SEPARATOR.join(("servelog-history-v1", kind, *parts)).encode()
    return base64.urlsafe_b64encode(hashlib.blake2b(key, digest_size=15).digest()).decode()


def digest(value: Any) -> str:
    """A short stable digest of a JSON value (sorted keys), for identities made of a whole status block."""
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened to a model deployment.

    ``identity`` holds the parts that say *which* thing (an event's uid and occurrence number, a
    termination's pod uid, container and start/finish times, a condition's type, status and
    transition time ...); ``ts_ns`` when it happened; ``fields`` the rest of the document.
    """

    kind: str
    identity: tuple[str, ...]
    ts_ns: int
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return history_id(self.kind, self.identity)

    def document(self) -> dict[str, Any]:
        """The document: fields without empty values, plus ``timestamp``, ``event_kind`` and ``doc_id``."""
        doc = {key: value for key, value in self.fields.items() if value is not None and value not in ("", [], {})}
        doc[m.F_TIMESTAMP] = iso(self.ts_ns)
        doc[m.H_EVENT_KIND] = self.kind
        doc[m.H_DOC_ID] = self.doc_id
        return doc


def encode(fact: Fact, *, index_template: str) -> tuple[str, bytes]:
    """(index, ``_bulk`` piece): the ``create`` action line and the document, each ending in a newline."""
    doc = fact.document()
    index = index_name(index_template, namespace=str(doc.get(m.F_NAMESPACE) or "cluster"), ts=doc[m.F_TIMESTAMP])
    action = orjson.dumps({"create": {"_index": index, "_id": doc[m.H_DOC_ID]}})
    return index, action + b"\n" + orjson.dumps(doc) + b"\n"


def severity(warning: bool) -> str:
    """The ``type`` field: ``Warning`` for a failure, ``Normal`` otherwise."""
    return "Warning" if warning else "Normal"


def text(value: Any) -> str:
    """A string field of an API object ('' when absent or not a scalar)."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def integer(value: Any) -> int | None:
    """An integer field of an API object (None when absent or not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
