"""A real OpenSearch (and OpenSearch Dashboards) for end-to-end tests.

Targets an existing cluster when ``SERVELOG_E2E_OPENSEARCH_URL`` (and optionally
``SERVELOG_E2E_DASHBOARDS_URL``) is set; otherwise starts ``opensearchproject/opensearch`` and
``opensearch-dashboards`` 2.19.1 with testcontainers on a shared Docker network. Without either, the
tests are skipped with the reason.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

OPENSEARCH_IMAGE = "opensearchproject/opensearch:2.19.1"
DASHBOARDS_IMAGE = "opensearchproject/opensearch-dashboards:2.19.1"


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


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[dict[str, str]]:
    """{"opensearch": url, "dashboards": url or ""}."""
    given = os.environ.get("SERVELOG_E2E_OPENSEARCH_URL")
    if given:
        yield {"opensearch": given, "dashboards": os.environ.get("SERVELOG_E2E_DASHBOARDS_URL", "")}
        return
    reason = _docker_unavailable_reason()
    if reason is not None:
        pytest.skip(reason + "; or set SERVELOG_E2E_OPENSEARCH_URL to target a cluster")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    with Network() as network:
        opensearch = (DockerContainer(OPENSEARCH_IMAGE).with_network(network).with_network_aliases("opensearch")
                      .with_env("discovery.type", "single-node").with_env("DISABLE_SECURITY_PLUGIN", "true")
                      .with_env("DISABLE_INSTALL_DEMO_CONFIG", "true")
                      .with_env("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m").with_exposed_ports(9200))
        dashboards = (DockerContainer(DASHBOARDS_IMAGE).with_network(network)
                      .with_env("OPENSEARCH_HOSTS", '["http://opensearch:9200"]')
                      .with_env("DISABLE_SECURITY_DASHBOARDS_PLUGIN", "true").with_exposed_ports(5601))
        with opensearch:
            os_url = f"http://{opensearch.get_container_host_ip()}:{opensearch.get_exposed_port(9200)}"
            _wait_http(f"{os_url}/_cluster/health?wait_for_status=yellow&timeout=5s", 300)
            with dashboards:
                osd_url = f"http://{dashboards.get_container_host_ip()}:{dashboards.get_exposed_port(5601)}"
                _wait_http(f"{osd_url}/api/status", 300)
                yield {"opensearch": os_url, "dashboards": osd_url}
