"""The contract tests' backend: the loopback server imitating a version, or the real node of that version.

Each contract test runs once per backend with the same assertions; a difference between the
loopback server and the real node fails the loopback run, and is fixed in the loopback server.
Requests go through ``urllib`` (not servelog's client) so that status, headers and bodies are
compared as they travel.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.e2e import ClusterPool
from tests.support.e2e_fixtures import LOOPBACK, cluster_for, real_or_loopback
from tests.support.opensearch_node import major
from tests.support.opensearch_server import FakeOpenSearch


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Backend:
    """One OpenSearch for a contract test, with a prefix that keeps its indices and templates apart."""

    url: str
    version: str
    kind: str  # "loopback" or "real"
    prefix: str = field(default_factory=lambda: f"contract-{uuid.uuid4().hex[:8]}")
    created: list[str] = field(default_factory=list)  # paths to DELETE afterwards (real nodes are shared)
    cluster_settings: set[str] = field(default_factory=set)

    @property
    def major(self) -> int:
        return major(self.version)

    def rest(self, method: str, path: str, body: Any = None, *, ndjson: bool = False) -> Answer:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload, status, got = response.read(), response.status, dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            payload, status, got = exc.read(), exc.code, dict(exc.headers.items())
        parsed = json.loads(payload) if payload.strip() else None
        if method == "PUT" and status < 300 and ("_template/" in path or path.count("/") == 1):
            self.created.append(path.split("?", maxsplit=1)[0])
        return Answer(status, parsed, {k.lower(): v for k, v in got.items()})

    def bulk(self, lines: list[dict[str, Any]], query: str = "") -> Answer:
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return self.rest("POST", f"/_bulk{query}", body, ndjson=True)

    def cluster(self, settings: dict[str, Any]) -> Answer:
        """Set transient cluster settings (reset after the test)."""
        self.cluster_settings |= set(settings)
        return self.rest("PUT", "/_cluster/settings", {"transient": settings})

    def cleanup(self) -> None:
        if self.cluster_settings:
            self.rest("PUT", "/_cluster/settings", {"transient": dict.fromkeys(self.cluster_settings)})
        for path in reversed(self.created):  # index templates before the components they use
            self.rest("DELETE", path)
        self.rest("DELETE", f"/{self.prefix}*")  # indices the tests' bulks created


@pytest.fixture(params=real_or_loopback())
def backend(request: pytest.FixtureRequest, opensearch_pool: ClusterPool) -> Iterator[Backend]:
    name: str = request.param
    if name.startswith(LOOPBACK):
        version = name.removeprefix(f"{LOOPBACK}-")
        with FakeOpenSearch(version=version, validate_mappings=True) as server:
            yield Backend(server.url, version, "loopback")
        return
    cluster = cluster_for(opensearch_pool, name)
    chosen = Backend(cluster.url, cluster.version, "real")
    try:
        yield chosen
    finally:
        chosen.cleanup()


@pytest.fixture(autouse=True)
def _no_servelog_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SERVELOG_") and not key.startswith("SERVELOG_E2E_"):
            monkeypatch.delenv(key)
