"""Fixtures of the troubleshooting commands' tests: a loopback cluster with a kubeconfig, and running ``servelog``.

The commands run in-process (``collector.cli.main``) against the loopback API server
(:mod:`tests.support.kube_server`) through the real ``kubernetes`` client, configured by a real
kubeconfig file, as a user's terminal would run them; a ``--follow`` runs as a process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main
from tests.support.kube_server import KubeApiServer


def write_kubeconfig(path: Path, server: str, *, namespace: str | None = None) -> Path:
    context: dict[str, Any] = {"cluster": "loopback", "user": "servelog"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
        "clusters": [{"name": "loopback", "cluster": {"server": server}}],
        "users": [{"name": "servelog", "user": {"token": "test-token"}}],
        "contexts": [{"name": "loopback", "context": context}]}))
    return path


@dataclass
class Ran:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@dataclass
class Cluster:
    kube: KubeApiServer
    kubeconfig: Path
    capsys: pytest.CaptureFixture[str]

    def servelog(self, *argv: str, cluster: bool = True) -> Ran:
        """``servelog ARGV [--kubeconfig <loopback>]`` in-process: its exit status, stdout and stderr."""
        self.capsys.readouterr()
        status = main([*argv, *(["--kubeconfig", str(self.kubeconfig)] if cluster else [])])
        captured = self.capsys.readouterr()
        return Ran(status, captured.out, captured.err)

    def load(self, *, isvc: dict[str, Any] | None = None, pods: Sequence[dict[str, Any]] = (),
             events: Sequence[dict[str, Any]] = (), deployments: Sequence[dict[str, Any]] = ()) -> None:
        if isvc is not None:
            self.kube.add_isvc(isvc)
        for pod in pods:
            self.kube.add_pod(pod)
        for event in events:
            self.kube.add_event(event)
        for deployment in deployments:
            self.kube.add_deployment(deployment)


@pytest.fixture
def cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    for key in [k for k in os.environ if k.startswith("SERVELOG_") or k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")]:
        monkeypatch.delenv(key)
    with KubeApiServer() as kube:
        yield Cluster(kube, write_kubeconfig(tmp_path / "kubeconfig", kube.url), capsys)
        kube.drop_streams()
