"""servelog from Python, for notebooks: one deployment's state, history and logs as plain data.

    import servelog

    d = servelog.deployment("fraud-detector", namespace="models")
    state = d.state()                       # DeploymentState: .status, .condition, .components, .last_failure ...
    d.describe()                            # the same as `servelog status fraud-detector -n models`
    state.as_json()                         # exactly the dict `servelog status --output json` prints
    d.history(since="now-1d").entries       # HistoryEntry tuples, newest first; .transitions
    logs = d.logs(component="predictor", tail=10)   # source="auto" | "kubernetes" | "opensearch"
    logs.source, logs.notes, logs.lines     # where they were read, why, and the documents (dicts)

The commands ``servelog status``, ``history`` and ``logs`` are thin layers over the same functions
(:mod:`collector.query.status`, :mod:`collector.query.history`, :mod:`collector.query.logs`), so a
notebook sees what the terminal prints. Settings come as for the commands (``config=`` a YAML file,
``SERVELOG_*`` environment variables), plus ``kubeconfig=``, ``context=`` and ``opensearch_url=``;
tests and advanced users can hand in ready clients (``kube=``, ``opensearch=``). Failures raise
servelog's exceptions: :class:`NotFound` (nothing of that deployment), :class:`Ambiguous` (no namespace
given, and OpenSearch holds that name's documents in several), ``NoCluster`` (no usable
Kubernetes configuration), ``KubeError`` / ``SinkError`` (the cluster or OpenSearch could not answer),
``ValueError`` (a bad argument). Notes (what could not be read, where logs came from) are kept in
``Deployment.notes`` and the result's ``notes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.deployment import DeploymentState, History, state_text
from collector.query.connections import Connections
from collector.query.history import read_history
from collector.query.logs import LogRequest, read_logs
from collector.query.search import LogQuery, format_hit
from collector.query.status import read_state
from collector.query.terminal import Ambiguous, NoCluster, NotFound
from collector.settings import Settings, load_settings

__all__ = ["Ambiguous", "Deployment", "Logs", "NoCluster", "NotFound", "deployment"]


@dataclass(frozen=True, slots=True)
class Logs:
    """What :meth:`Deployment.logs` read: ``source`` (``kubernetes`` or ``opensearch``), ``notes`` (why that
    source, what could not be read) and ``lines``: the documents, oldest first, as ``servelog logs --json``
    prints them under ``source`` (``timestamp``, ``message``, ``level``, ``pod_name``, ``container_name``, ...)."""

    source: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def text(self) -> str:
        """The lines as ``servelog logs`` prints them."""
        return "".join(format_hit({"_source": line}) + "\n" for line in self.lines)

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "notes": list(self.notes), "lines": list(self.lines)}


class Deployment:
    """One model deployment, by name (and namespace: default the kubeconfig context's)."""

    def __init__(self, name: str, namespace: str | None = None, *, config: str | Path | None = None,
                 kubeconfig: str | Path | None = None, context: str | None = None, opensearch_url: str | None = None,
                 settings: Settings | None = None, kube: Any = None, opensearch: Any = None) -> None:
        if settings is None:
            overrides: dict[str, Any] = {}
            if kubeconfig is not None:
                overrides["kubernetes"] = {"kubeconfig": Path(kubeconfig)}
            if opensearch_url is not None:
                overrides["opensearch"] = {"url": opensearch_url}
            settings = load_settings(config_file=Path(config) if config is not None else None, overrides=overrides)
        self.name = name
        self.namespace = namespace
        self.notes: list[str] = []
        self._connections = Connections(settings, kube=kube, opensearch=opensearch, context=context)

    def __repr__(self) -> str:
        return f"Deployment({self.name!r}, namespace={self.namespace!r})"

    def state(self, *, now: datetime | None = None) -> DeploymentState:
        """The deployment's state, from the cluster (what ``servelog status`` prints)."""
        self.notes = []
        return read_state(self._connections, self.name, self.namespace, now=now, notes=self.notes.append)

    def describe(self) -> None:
        """Print the state as ``servelog status`` does (Hopsworks' ``state.describe()``)."""
        print(state_text(self.state()), end="")

    def history(self, *, model_version: str | int | None = None, since: str | None = None) -> History:
        """The deployment's history from OpenSearch (what ``servelog history`` prints), newest first."""
        return read_history(self._connections, self.name, self.namespace,
                            model_version=None if model_version is None else str(model_version), since=since)

    def logs(self, *, component: str | None = None, container: str | None = None, pod: str | None = None,
             tail: int | None = None, previous: bool = False, source: str = "auto", since: str | None = None,
             until: str | None = None, level: str | None = None, grep: str | None = None,
             model_version: str | int | None = None, limit: int = 1000) -> Logs:
        """The deployment's logs (what ``servelog logs NAME --json`` prints), oldest first.

        ``source="auto"`` reads the running components when some run, else OpenSearch (``notes`` says
        which and why); ``tail`` is the last lines of each container (from OpenSearch: the newest).
        """
        query = LogQuery(serving_name=self.name, namespace=self.namespace, component=component, container_name=container,
                         pod_name=pod, since=since, until=until, level=level, text=grep,
                         model_version=None if model_version is None else str(model_version))
        request = LogRequest(query=query, source=source, tail=tail, previous=previous, limit=limit)
        lines: list[dict[str, Any]] = []
        self.notes = []
        used = read_logs(request, self._connections, lambda hit: lines.append(hit.get("_source") or {}),
                         note=self.notes.append, warn=self.notes.append)
        return Logs(source=used, lines=lines, notes=tuple(self.notes))

    def close(self) -> None:
        self._connections.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deployment(name: str, namespace: str | None = None, **options: Any) -> Deployment:
    """``servelog.deployment("fraud-detector", namespace="models")``: see :class:`Deployment` for ``options``."""
    return Deployment(name, namespace, **options)
