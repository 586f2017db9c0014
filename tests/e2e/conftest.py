"""A real OpenSearch for the end-to-end suite, chosen in this order:

1. ``SERVELOG_E2E_OPENSEARCH_URL``: any cluster (with ``SERVELOG_E2E_DASHBOARDS_URL`` optionally);
2. a local node from Maven Central (:mod:`tests.support.opensearch_node`) when Java and Maven are
   present, once per version of ``SERVELOG_E2E_VERSIONS`` (default: the newest 2.19.x and 3.x);
3. testcontainers when a Docker engine answers;
4. else the tests skip with the reason, or fail when ``SERVELOG_E2E_REQUIRE=1`` (``.ci/run`` sets
   it on a machine with Java and Maven, so a CI run cannot pass with the suite skipped).

OpenSearch Dashboards cannot run on these machines: Dashboards checks use the loopback server.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.opensearch_node import NodeUnavailable, OpenSearchNode, major, requested_versions, tools_missing

OPENSEARCH_IMAGE = "opensearchproject/opensearch:2.19.1"


@dataclass
class Cluster:
    """The OpenSearch a test runs against."""

    url: str
    version: str
    kind: str  # "external", "local" or "container"
    dashboards: str = ""
    node: OpenSearchNode | None = None

    @property
    def major(self) -> int:
        return major(self.version)


def _unavailable(reason: str) -> None:
    if os.environ.get("SERVELOG_E2E_REQUIRE") == "1":
        pytest.fail(f"the e2e suite must run here (SERVELOG_E2E_REQUIRE=1) but cannot: {reason}", pytrace=False)
    pytest.skip(reason)


def _docker_unavailable_reason() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker engine available for testcontainers ({type(exc).__name__}: {exc})"
    return None


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


def _mode() -> str:
    if os.environ.get("SERVELOG_E2E_OPENSEARCH_URL"):
        return "external"
    if tools_missing() is None:
        return "local"
    return "container"


def _params() -> list[str]:
    return ["external"] if _mode() == "external" else list(requested_versions())


@pytest.fixture(scope="session", params=_params())
def opensearch(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A real OpenSearch, once per tested version (the session starts each node once)."""
    mode = _mode()
    if mode == "external":
        url = os.environ["SERVELOG_E2E_OPENSEARCH_URL"].rstrip("/")
        with urllib.request.urlopen(url, timeout=30) as response:
            import json

            version = json.loads(response.read())["version"]["number"]
        yield Cluster(url=url, version=version, kind="external", dashboards=os.environ.get("SERVELOG_E2E_DASHBOARDS_URL", ""))
        return
    version = request.param
    if mode == "local":
        try:
            node = OpenSearchNode(version).start()
        except NodeUnavailable as exc:
            _unavailable(str(exc))
            return
        try:
            yield Cluster(url=node.url, version=version, kind="local", node=node)
        finally:
            node.stop()
        return
    reason = _docker_unavailable_reason()
    if reason is not None:
        _unavailable(f"{tools_missing()} for a local node, and {reason}; or set SERVELOG_E2E_OPENSEARCH_URL")
        return
    from testcontainers.core.container import DockerContainer

    image = f"opensearchproject/opensearch:{version}"
    container = (DockerContainer(image).with_env("discovery.type", "single-node")
                 .with_env("DISABLE_SECURITY_PLUGIN", "true").with_env("DISABLE_INSTALL_DEMO_CONFIG", "true")
                 .with_env("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m").with_exposed_ports(9200))
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        _wait_http(f"{url}/_cluster/health?wait_for_status=yellow&timeout=5s", 300)
        yield Cluster(url=url, version=version, kind="container")


@pytest.fixture
def start_node(opensearch: Cluster) -> Iterator[Callable[[Mapping[str, Any]], OpenSearchNode]]:
    """Start an extra local node of the same version with static settings (e.g. a tiny write pool)."""
    started: list[OpenSearchNode] = []
    if opensearch.kind != "local":
        _unavailable(f"needs a local node to set static node settings (running against a {opensearch.kind} cluster)")

    def start(settings: Mapping[str, Any]) -> OpenSearchNode:
        node = OpenSearchNode(opensearch.version, settings=dict(settings)).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
