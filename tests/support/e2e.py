"""Which real OpenSearch the end-to-end and contract tests run against, and a pool that starts each once.

Selection, in this order (:func:`select_backend`, a pure function of the environment and two probes):

1. ``SERVELOG_E2E_OPENSEARCH_URL``: any cluster (``SERVELOG_E2E_DASHBOARDS_URL`` optionally);
2. a local node from Maven Central (:mod:`tests.support.opensearch_node`) when Java and Maven are
   present, once per version of ``SERVELOG_E2E_VERSIONS`` (default: the newest 2.19.x and 3.x);
3. testcontainers when a Docker engine answers;
4. else the tests skip with the reason, or fail when ``SERVELOG_E2E_REQUIRE=1`` (``.ci/run`` sets
   it on a machine with Java and Maven, so a CI run cannot pass with the suite skipped).

:class:`ClusterPool` starts a version the first time a test asks for it and keeps it for the session
(e2e and contract tests share the nodes); a version that cannot start is remembered with its reason.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.opensearch_node import NodeUnavailable, OpenSearchNode, major, requested_versions

Kind = Literal["external", "local", "container", "skip"]
OPENSEARCH_IMAGE = "opensearchproject/opensearch"


@dataclass(frozen=True)
class Selection:
    """Where the real OpenSearch comes from, for which versions, or why there is none."""

    kind: Kind
    versions: tuple[str, ...] = ()
    reason: str = ""


def select_backend(environ: Mapping[str, str], *, missing_tools: str | None,
                   docker_problem: Callable[[], str | None]) -> Selection:
    """The backend the suite uses here (see the module docstring); ``docker_problem`` is asked only if needed."""
    if environ.get("SERVELOG_E2E_OPENSEARCH_URL"):
        return Selection("external", ("external",))
    versions = requested_versions(environ)
    if missing_tools is None:
        return Selection("local", versions)
    problem = docker_problem()
    if problem is None:
        return Selection("container", versions)
    return Selection("skip", versions, f"{missing_tools} for a local node, and {problem}; "
                                       "or set SERVELOG_E2E_OPENSEARCH_URL")


def required(environ: Mapping[str, str]) -> bool:
    return environ.get("SERVELOG_E2E_REQUIRE") == "1"


def docker_problem() -> str | None:
    """Why testcontainers cannot run here, or None when a Docker engine answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker engine available for testcontainers ({type(exc).__name__}: {exc})"
    return None


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


def wait_http(url: str, timeout: float) -> None:
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


@dataclass
class ClusterPool:
    """Real clusters by version, started on first use and stopped by :meth:`close`."""

    selection: Selection
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _clusters: dict[str, Cluster] = field(default_factory=dict)
    _failures: dict[str, str] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack)

    def get(self, version: str) -> Cluster:
        """The cluster for ``version``; raises :class:`NodeUnavailable` with the reason when there is none."""
        if version in self._failures:
            raise NodeUnavailable(self._failures[version])
        if version not in self._clusters:
            try:
                self._clusters[version] = self._start(version)
            except (NodeUnavailable, TimeoutError, OSError) as exc:
                self._failures[version] = str(exc)
                raise NodeUnavailable(str(exc)) from exc
        return self._clusters[version]

    def _start(self, version: str) -> Cluster:
        kind = self.selection.kind
        if kind == "skip":
            raise NodeUnavailable(self.selection.reason)
        if kind == "external":
            url = self.environ["SERVELOG_E2E_OPENSEARCH_URL"].rstrip("/")
            with urllib.request.urlopen(url, timeout=30) as response:
                number = json.loads(response.read())["version"]["number"]
            return Cluster(url, number, "external", self.environ.get("SERVELOG_E2E_DASHBOARDS_URL", ""))
        if kind == "local":
            node = OpenSearchNode(version).start()
            self._stack.callback(node.stop)
            return Cluster(node.url, version, "local", node=node)
        from testcontainers.core.container import DockerContainer

        container: Any = (DockerContainer(f"{OPENSEARCH_IMAGE}:{version}").with_env("discovery.type", "single-node")
                          .with_env("DISABLE_SECURITY_PLUGIN", "true").with_env("DISABLE_INSTALL_DEMO_CONFIG", "true")
                          .with_env("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m").with_exposed_ports(9200))
        self._stack.enter_context(container)
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        wait_http(f"{url}/_cluster/health?wait_for_status=yellow&timeout=5s", 300)
        return Cluster(url, version, "container")

    def close(self) -> None:
        self._stack.close()
        self._clusters.clear()
