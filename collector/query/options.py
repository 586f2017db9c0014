"""Flags shared by the reading commands (``status``, ``history``, ``logs``) and the settings they make.

The deployment is the positional argument of all three, with ``-n/--namespace``. Without ``-n`` the
cluster is asked in the kubeconfig context's namespace (the service account's in a cluster, else
``default``), and OpenSearch is searched in the one namespace the deployment's documents are in
(several: exit status 6, the namespaces listed; :func:`collector.query.reader.pin_namespace`). The cluster is
chosen as kubectl chooses it (``--kubeconfig``, else ``kubernetes.kubeconfig``, else the service
account in a cluster, else ``$KUBECONFIG`` / ``~/.kube/config``; ``--context``), OpenSearch as the
other commands do (``--opensearch-url``, settings file, environment).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from collector.settings import Settings, load_settings


def add_deployment_argument(parser: argparse.ArgumentParser, *, required: bool = True,
                            namespace_help: str = "its namespace (default: the kubeconfig context's)") -> None:
    parser.add_argument("serving", metavar="SERVING", nargs=None if required else "?",
                        help="the deployment: its InferenceService (or Hopsworks / Merlin serving) name")
    parser.add_argument("-n", "--namespace", help=namespace_help)


def add_kube_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def add_opensearch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--opensearch-url", help="OpenSearch URL (default from settings)")


def load(args: argparse.Namespace) -> Settings:
    """The settings for a reading command: file, environment, then these flags."""
    overrides: dict[str, Any] = {}
    if getattr(args, "opensearch_url", None):
        overrides["opensearch"] = {"url": args.opensearch_url}
    if getattr(args, "kubeconfig", None) is not None:
        overrides["kubernetes"] = {"kubeconfig": args.kubeconfig}
    return load_settings(config_file=getattr(args, "config", None), overrides=overrides)
