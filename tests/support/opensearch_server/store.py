"""What the loopback OpenSearch holds: indices, their documents, and when each document becomes searchable.

Visibility follows the real refresh model (checked by ``tests/contract``): a document is returned by
``GET /<index>/_doc/<id>`` at once (real-time get) but by ``_search``/``_count`` only after a refresh:
an explicit ``_refresh``, ``?refresh=true`` on the write, or the index's scheduled refresh, which
runs every ``index.refresh_interval`` (default 1s, ``-1`` disables it) from the index's creation. A
replaced document shows its previous source until then; a deletion is visible at once (a
simplification: servelog never deletes documents).
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.opensearch_server.settings import flatten_settings, refresh_interval_ns


@dataclass(slots=True)
class Doc:
    source: dict[str, Any]
    version: int
    seq_no: int
    indexed_ns: int = field(default_factory=time.monotonic_ns)
    previous: dict[str, Any] | None = None  # the source searches see until the next refresh


@dataclass(frozen=True)
class ManagedIndexConfig:
    """The ISM job attached to an index (index-management ``ManagedIndexConfig``): its policy, copied."""

    policy_id: str
    policy: dict[str, Any]
    enabled: bool = True


@dataclass
class Index:
    name: str
    mappings: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, Doc] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: base64.urlsafe_b64encode(os.urandom(16)).decode()[:22])
    seq_no: int = -1
    created_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    created_ns: int = field(default_factory=time.monotonic_ns)
    refreshed_ns: int = 0  # the last explicit refresh (monotonic)
    managed: ManagedIndexConfig | None = None  # attached at creation by an ism_template (see .ism_managed)

    def __post_init__(self) -> None:
        self.refreshed_ns = self.created_ns

    def next_seq(self) -> int:
        self.seq_no += 1
        return self.seq_no

    def _setting(self, name: str, default: str) -> str:
        flat = flatten_settings(self.settings)
        return str(flat.get(f"index.{name}", flat.get(name, default)))

    @property
    def replicas(self) -> int:
        return int(self._setting("number_of_replicas", "1"))

    @property
    def shards(self) -> int:
        return int(self._setting("number_of_shards", "1"))

    @property
    def write_blocked(self) -> bool:
        return self._setting("blocks.write", "false").lower() == "true"

    def refresh(self) -> None:
        self.refreshed_ns = time.monotonic_ns()

    def next_refresh_ns(self, indexed_ns: int) -> int | None:
        """When a write made at ``indexed_ns`` becomes searchable without an explicit refresh (None: never)."""
        interval = refresh_interval_ns(self.settings)
        if interval is None:
            return None
        return self.created_ns + ((indexed_ns - self.created_ns) // interval + 1) * interval

    def searchable_source(self, doc: Doc, now_ns: int) -> dict[str, Any] | None:
        """The source a search sees for ``doc`` now: its current one once refreshed, else the previous one."""
        if doc.indexed_ns <= self.refreshed_ns:
            return doc.source
        tick = self.next_refresh_ns(doc.indexed_ns)
        if tick is not None and now_ns >= tick:
            return doc.source
        return doc.previous


@dataclass
class RequestFault:
    status: int
    prefix: str
    method: str | None
    body: dict[str, Any] | None


@dataclass
class Drop:
    after_processing: bool
    prefix: str


def path_matches(path: str, prefix: str) -> bool:
    return path.startswith(prefix) or path.endswith(prefix)


class ConnectionEnd(Exception):
    """Close the connection without an answer."""
