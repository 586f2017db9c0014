"""The clients a reading command or a notebook needs, made from the settings on first use and closed together.

The Kubernetes client (kubeconfig, ``--context``, or the in-cluster service account) is made only
when the cluster is asked, the OpenSearch client only when OpenSearch is: ``servelog status`` needs
no OpenSearch, ``servelog history`` no cluster, and ``logs --source auto`` may need either. Tests and
notebooks can hand in ready clients instead. Importing the client libraries is deferred too (the
``kubernetes`` package takes a second to import).
"""

from __future__ import annotations

from typing import Any

from collector.errors import ConfigError
from collector.query.terminal import NoCluster
from collector.settings import Settings


class Connections:
    """Lazily made ``KubeClient`` and ``OpenSearchClient`` for one set of settings."""

    def __init__(self, settings: Settings, *, kube: Any = None, opensearch: Any = None, context: str | None = None) -> None:
        self.settings = settings
        self.context = context
        self._kube = kube
        self._opensearch = opensearch
        self._owned: list[Any] = []

    def kube(self) -> Any:
        """The Kubernetes client; :class:`~collector.query.terminal.NoCluster` when there is no usable configuration."""
        if self._kube is None:
            from collector.kube.client import KubeClient  # noqa: PLC0415 - heavy import, only when asked

            try:
                self._kube = KubeClient.from_settings(self.settings, context=self.context)
            except ConfigError as exc:
                raise NoCluster("; ".join(exc.problems)) from exc
            self._owned.append(self._kube)
        return self._kube

    def namespace(self, given: str | None) -> str:
        """``given``, else the kubeconfig context's namespace (or the service account's), as kubectl chooses."""
        return given or str(getattr(self.kube(), "default_namespace", "") or "default")

    def opensearch(self) -> Any:
        if self._opensearch is None:
            from collector.sinks.opensearch.client import OpenSearchClient  # noqa: PLC0415

            self._opensearch = OpenSearchClient(self.settings.opensearch)
            self._owned.append(self._opensearch)
        return self._opensearch

    def close(self) -> None:
        """Close the clients made here (those handed in belong to the caller)."""
        for client in self._owned:
            client.close()
        self._owned.clear()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
