"""Pure derivation of a document's ``_id`` and target index from the line's own identity.

A line is identified by (pod UID, container, restart count, its timestamp in integer nanoseconds,
its ordinal among the lines of that container instance sharing that exact timestamp). None of these
depend on when or how the line was read: re-reading after a crash, reading a rotated or gzipped copy,
or streaming the same line through the Kubernetes API yields the same (index, ``_id``), so a replay
written with ``create`` is a harmless 409. The index is chosen by the line's own UTC day, never by
ingestion time, for the same reason (``_id`` uniqueness holds within one index only).

The compiled fast path (``collector._native``, ``native/src/identity.rs``) implements these same
rules for the lines it takes; a change here must be made there too
(``tests/unit/test_native_equivalence.py`` compares both).
"""

from __future__ import annotations

import base64
import hashlib
import re

_INDEX_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def stream_prefix(pod_uid: str, container: str, restart_count: int) -> bytes:
    """The per-container-instance part of every ``_id`` (computed once per stream)."""
    return f"{pod_uid}/{container}/{restart_count}/".encode()


def document_id(prefix: bytes, ts_ns: int, ordinal: int) -> str:
    """A 20-character URL-safe id: BLAKE2b-120 of the line identity (collisions: ~2^-60 per pair)."""
    digest = hashlib.blake2b(prefix + b"%d/%d" % (ts_ns, ordinal), digest_size=15).digest()
    return base64.urlsafe_b64encode(digest).decode()


def index_name(template: str, *, namespace: str, ts: str) -> str:
    """``serving-logs-{namespace}-{date}`` with date = the UTC day of ``ts`` (normalised RFC 3339)."""
    name = template.replace("{namespace}", namespace).replace("{date}", f"{ts[:4]}.{ts[5:7]}.{ts[8:10]}")
    if not _INDEX_SAFE.match(name) or len(name.encode()) > 255:
        raise ValueError(f"invalid index name {name!r} from template {template!r}")
    return name
