"""``servelog status SERVING [-n NAMESPACE] [--output json]``: a deployment's state, read from the live cluster.

    servelog status fraud-detector -n models
    servelog status fraud-detector -n models --output json | jq .condition

The InferenceService, pods, Deployments, events and the last lines of crashed containers are read by
:mod:`collector.query.cluster`; :func:`collector.deployment.deployment_state` decides what they mean;
:mod:`collector.deployment.render` prints it (aligned, coloured only on a terminal, ending with what
to do next). The exit status is 0 whenever the question was answered, a FAILED deployment included;
the others are in :mod:`collector.query.terminal`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from collector.deployment import DeploymentState, deployment_state, state_json, state_text
from collector.errors import CollectorError
from collector.query import cluster
from collector.query.connections import Connections
from collector.query.options import add_deployment_argument, add_kube_arguments, load
from collector.query.terminal import EXIT_STATUS_HELP, NotFound, fail, note, use_color

_EPILOG = EXIT_STATUS_HELP + """
--output json prints exactly: serving_name, namespace, status, condition {type, status, reason},
components {NAME: {running, desired, ready}}, model_name, model_version, last_failure (null or
{time, component, pod, container, reason, exit_code, restarts, memory_limit, message, last_lines}).
Needs get/list on pods, events, deployments.apps, inferenceservices.serving.kserve.io and get on pods/log.
"""


def read_state(connections: Connections, name: str, namespace: str | None = None, *,
               now: datetime | None = None, notes: Callable[[str], None] = lambda _: None) -> DeploymentState:
    """The state of deployment ``name``; :class:`~collector.query.terminal.NotFound` when nothing of it exists."""
    cluster.check_name(name)
    client = connections.kube()
    where = connections.namespace(namespace)
    custom = connections.settings.kubernetes.custom_fields  # the collector's own mapping: the same model fields
    shot = cluster.snapshot(client, name, where, custom_fields=custom,
                            request_timeout=min(connections.settings.kubernetes.log_request_timeout_seconds, 30.0))
    for text in shot.notes:
        notes(text)
    state = deployment_state(shot.isvc, shot.pods, shot.events, now=now or datetime.now(UTC), serving_name=name,
                             namespace=where, last_logs=shot.last_logs, deployments=shot.deployments,
                             custom_fields=custom)
    if not state.found:
        raise NotFound(f"no deployment named {name} in namespace {where}: no InferenceService, pod, Deployment or "
                       "event of that name (check the name and -n/--namespace)")
    return state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = ("A deployment's status (CREATED, STARTING, RUNNING, IDLE, FAILED, UPDATING, STOPPING, STOPPED), "
                          "its condition with the reason, its instances per component, model and version, and the "
                          "last failure, read from the cluster.")
    parser.epilog = _EPILOG
    add_deployment_argument(parser)
    parser.add_argument("--output", choices=["text", "json"], default="text", help="text (default) or json")
    add_kube_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with Connections(settings, context=args.context) as connections:
        try:
            state = read_state(connections, args.serving, args.namespace, notes=lambda text: note("status", text))
        except (CollectorError, ValueError) as exc:
            return fail("status", exc)
    sys.stdout.write(state_json(state) if args.output == "json" else state_text(state, color=use_color()))
    return 0
