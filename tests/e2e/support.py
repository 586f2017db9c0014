"""Helpers of the end-to-end tests: raw REST calls, servelog's commands, a unique namespace per test.

The real nodes are shared by every e2e and contract test of a session, so each test writes into its
own namespace (``serving-logs-<namespace>-*``) and restores every cluster setting it changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collector.cli import main
from tests.support.e2e import Cluster

ROOT = Path(__file__).resolve().parents[2]
_SET_UP: set[str] = set()


def rest(cluster: Cluster, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    kind = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
    request = urllib.request.Request(cluster.url + path, data=data, method=method, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    if status not in ok:
        raise AssertionError(f"{method} {path} -> {status}: {payload[:800]!r}")
    return json.loads(payload) if payload.strip() else None


def namespace(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ensure_setup(cluster: Cluster) -> None:
    """servelog's templates on the cluster (once per cluster and session; idempotent anyway)."""
    if cluster.url in _SET_UP:
        return
    assert main(["setup", "--opensearch-url", cluster.url, "--skip-dashboards", "--skip-retention",
                 "--replicas", "0"]) == 0
    _SET_UP.add(cluster.url)


@contextmanager
def cluster_settings(cluster: Cluster, settings: dict[str, Any]) -> Iterator[None]:
    """Transient cluster settings for the block, reset afterwards."""
    rest(cluster, "PUT", "/_cluster/settings", {"transient": settings})
    try:
        yield
    finally:
        rest(cluster, "PUT", "/_cluster/settings", {"transient": dict.fromkeys(settings)})


def servelog_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_") or k.startswith("SERVELOG_E2E_")}
    env.update({"SERVELOG_TELEMETRY__LISTEN": "", "SERVELOG_NODE_NAME": "e2e-node",
                "SERVELOG_PIPELINE__SCAN_INTERVAL_SECONDS": "0.2", "SERVELOG_PIPELINE__CHECKPOINT_INTERVAL_SECONDS": "0.2",
                "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.2", "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.1",
                "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "1"})
    env.update(extra)
    return env


def run_once(cluster: Cluster, root: Path, state: Path, **extra: str) -> dict[str, Any]:
    """``servelog run --once``: its summary."""
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--log-root", str(root),
                           "--state-dir", str(state), "--opensearch-url", cluster.url],
                          env=servelog_env(**extra), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stderr.splitlines() if x.startswith(b'{"summary"')][-1]
    summary: dict[str, Any] = json.loads(line)["summary"]
    return summary


def start_collector(cluster: Cluster, root: Path, state: Path, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "collector", "run", "--log-root", str(root), "--state-dir",
                             str(state), "--opensearch-url", cluster.url], env=servelog_env(**extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def all_documents(cluster: Cluster, pattern: str) -> list[dict[str, Any]]:
    """Every document of the indices matching ``pattern`` (refreshed first), paged by doc_id."""
    rest(cluster, "POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
    docs: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 2000, "sort": [{"doc_id": {"order": "asc", "unmapped_type": "keyword"}}],
                                "query": {"match_all": {}}}
        if after is not None:
            body["search_after"] = after
        hits = rest(cluster, "POST", f"/{pattern}/_search?ignore_unavailable=true&allow_no_indices=true",
                    body)["hits"]["hits"]
        docs += [h["_source"] for h in hits]
        if len(hits) < 2000:
            return docs
        after = hits[-1]["sort"]
