"""Pytest fixtures for real OpenSearch clusters, shared by ``tests/e2e`` and ``tests/contract``.

Registered from ``tests/conftest.py`` (``pytest_plugins``), so both folders use one
:class:`~tests.support.e2e.ClusterPool` and each node starts once per session:

- ``opensearch``: a :class:`~tests.support.e2e.Cluster`, parametrized over the selected versions;
- ``start_node``: an extra local node of the same version with static node settings;
- ``real_or_loopback``: the parameter list contract tests use (``loopback`` plus each version).

When no cluster can be had the test skips with the reason, or fails when ``SERVELOG_E2E_REQUIRE=1``.
With ``SERVELOG_E2E_REPORT=<file>`` the session writes, per version, how many real-cluster tests
passed, failed and skipped: ``.ci/run`` fails unless every version passed some.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import Cluster, ClusterPool, Selection, docker_problem, required, select_backend
from tests.support.opensearch_node import NodeUnavailable, OpenSearchNode, tools_missing

_SELECTION: Selection | None = None
_OUTCOMES: dict[str, Counter[str]] = {}
LOOPBACK = "loopback"


def selection() -> Selection:
    global _SELECTION
    if _SELECTION is None:
        _SELECTION = select_backend(os.environ, missing_tools=tools_missing(), docker_problem=docker_problem)
    return _SELECTION


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail when the suite is required to run here."""
    if required(os.environ):
        pytest.fail(f"the e2e suite must run here (SERVELOG_E2E_REQUIRE=1) but cannot: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def opensearch_pool() -> Iterator[ClusterPool]:
    pool = ClusterPool(selection())
    yield pool
    pool.close()


def cluster_for(pool: ClusterPool, version: str) -> Cluster:
    try:
        return pool.get(version)
    except NodeUnavailable as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable") from exc


@pytest.fixture(scope="session", params=list(selection().versions))
def opensearch(request: pytest.FixtureRequest, opensearch_pool: ClusterPool) -> Cluster:
    """A real OpenSearch, once per tested version."""
    return cluster_for(opensearch_pool, request.param)


@pytest.fixture
def start_node(opensearch: Cluster) -> Iterator[Callable[[Mapping[str, Any]], OpenSearchNode]]:
    """Start an extra local node of the same version with static settings (e.g. a tiny write pool)."""
    started: list[OpenSearchNode] = []
    if opensearch.kind != "local":
        unavailable(f"needs a local node to set static node settings (running against a {opensearch.kind} cluster)")

    def start(settings: Mapping[str, Any]) -> OpenSearchNode:
        node = OpenSearchNode(opensearch.version, settings=dict(settings)).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def real_or_loopback() -> list[str]:
    """Contract-test backends: per selected version, the loopback server imitating it and the real node."""
    versions = [v for v in selection().versions if v != "external"] or ["2.19.6"]
    return [name for v in versions for name in (f"{LOOPBACK}-{v}", v)] + (
        ["external"] if "external" in selection().versions else [])


# -- the run report ----------------------------------------------------------------------------------
def _version_of(item: pytest.Item) -> str | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in ("opensearch", "backend"):
        value = params.get(name)
        if isinstance(value, str) and not value.startswith(LOOPBACK):
            return value
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    version = _version_of(item)
    if version is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES.setdefault(version, Counter())[report.outcome] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("SERVELOG_E2E_REPORT")
    if path:
        report = {"selection": selection().kind, "versions": list(selection().versions),
                  "outcomes": {v: dict(c) for v, c in _OUTCOMES.items()}}
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
