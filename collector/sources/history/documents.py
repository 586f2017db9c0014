"""Pure: a history *fact* (one thing that happened), its deterministic identity, index and bulk encoding.

Every reader of the cluster (the event watch, pod status, InferenceService status) turns objects
into :class:`Fact` values: what kind of thing happened, the parts that identify it, the API time it
happened at and the document fields. From a fact alone follow its ``_id`` (BLAKE2b-120 of the kind
and the identity parts, never of the time it was read) and its index (``serving-events-<UTC day of
the timestamp>``).

**The rule that makes a replay harmless**: both halves of the (index, ``_id``) pair are functions of
the identity. A fact's timestamp is the API time ``at`` (the raw text Kubernetes wrote, e.g. a
condition's ``lastTransitionTime``), and ``at`` must be one of the identity parts: :class:`Fact`
refuses to exist otherwise. So the same identity can never land in two daily indices, whatever else
changed in the object meanwhile (another condition's transition, the next status update of the
pod), and a relist, a restart, a second replica or the same termination seen in ten pod updates all
produce the same ``create`` action: the first is indexed, the others are 409s.

Times are read by :func:`collector.kube.objects.api_time` (the project's one RFC 3339 rule); documents
carry nine fraction digits like the logs (``date_nanos``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector import model as m
from collector.kube.objects import api_time
from collector.transforms.cri import format_timestamp
from collector.transforms.identity import index_name

_SEPARATOR = "\x1f"  # between identity parts: never inside a Kubernetes name, uid, reason or time


def first_time(*values: Any) -> str:
    """The first value that is an API time, as written (``''`` when none is): the ``at`` of a fact."""
    for value in values:
        if api_time(value) is not None:
            return str(value)
    return ""


def latest_time(*values: Any) -> str:
    """The latest of the values that are API times, as written (``''`` when none is)."""
    found = [(ts, str(value)) for value in values if (ts := api_time(value)) is not None]
    return max(found)[1] if found else ""


def iso(ts_ns: int | None) -> str | None:
    """A document timestamp: RFC 3339 UTC with nine fraction digits (None stays None)."""
    return format_timestamp(ts_ns) if ts_ns is not None else None


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

    ``identity`` holds the parts that say *which* thing (an event's uid, occurrence number and the
    time of that occurrence, a termination's pod uid, container and start/finish times, a
    condition's type, status and transition time ...); ``at`` the API time it happened, which is
    one of those parts; ``fields`` the rest of the document. Use :func:`fact`, which returns None
    when there is no valid time to stamp the fact with.
    """

    kind: str
    identity: tuple[str, ...]
    at: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    ts_ns: int = field(init=False)

    def __post_init__(self) -> None:
        if self.at not in self.identity:
            raise ValueError(f"a {self.kind} fact's time {self.at!r} must be part of its identity {self.identity!r}")
        ts = api_time(self.at)
        if ts is None:
            raise ValueError(f"a {self.kind} fact needs an API time, not {self.at!r}")
        object.__setattr__(self, "ts_ns", ts)

    @property
    def doc_id(self) -> str:
        return history_id(self.kind, self.identity)

    def document(self) -> dict[str, Any]:
        """The document: fields without empty values, plus ``timestamp``, ``event_kind`` and ``doc_id``."""
        doc = {key: value for key, value in self.fields.items() if value is not None and value not in ("", [], {})}
        doc[m.F_TIMESTAMP] = format_timestamp(self.ts_ns)
        doc[m.H_EVENT_KIND] = self.kind
        doc[m.H_DOC_ID] = self.doc_id
        return doc


def fact(kind: str, identity: tuple[str, ...], at: str, fields: Mapping[str, Any]) -> Fact | None:
    """The :class:`Fact`, or None when ``at`` is no API time (a fact is never stamped with the reading time)."""
    if api_time(at) is None:
        return None
    return Fact(kind, identity, at, fields)


def index_of(fact: Fact, *, index_template: str) -> str:
    """The target index of a fact: ``{date}`` is the UTC day of its timestamp."""
    namespace = str(fact.fields.get(m.F_NAMESPACE) or "cluster")
    return index_name(index_template, namespace=namespace, ts=format_timestamp(fact.ts_ns))


def encode(fact: Fact, *, index_template: str) -> tuple[str, bytes]:
    """(index, ``_bulk`` piece): the ``create`` action line and the document, each ending in a newline."""
    doc = fact.document()
    index = index_of(fact, index_template=index_template)
    action = orjson.dumps({"create": {"_index": index, "_id": doc[m.H_DOC_ID]}})
    return index, action + b"\n" + orjson.dumps(doc) + b"\n"


def severity(warning: bool) -> str:
    """The ``type`` field: ``Warning`` for a failure, ``Normal`` otherwise."""
    return "Warning" if warning else "Normal"
