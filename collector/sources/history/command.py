"""``servelog events``: index the history of every model deployment beside its logs.

    servelog events --opensearch-url https://opensearch:9200 --state-dir /var/lib/servelog-events
    servelog events --once ...                       # what the API has now, then exit
    servelog events --from-files /demo/history ...   # Event/Pod/InferenceService documents, no cluster

The same settings and flags as ``servelog run`` (their definitions are shared, see
:func:`collector.cli.add_run_arguments`), plus ``history.*`` (``--from-files``, ``--events-api``).
The documents go through the same pipeline as the logs (:class:`collector.app.App`: batcher,
senders, ``create``, ordered acknowledgements, checkpoints); only the source differs
(:class:`collector.sources.history.source.HistorySource`). One small Deployment runs it for the whole
cluster (``deploy/events-deployment.yaml``); its documents' ids are deterministic, so a second
replica is safe without leader election. ``--once`` exits non-zero (1) when something that exists
could not be read (InferenceServices the ClusterRole forbids: 403), as ``run --once`` does for
unreadable log files; a cluster without the KServe CRD (404) is no failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import structlog

from collector.errors import ConfigError
from collector.settings import Settings, load_settings

log = structlog.get_logger(__name__)

_EPILOG = """\
Events (core/v1 or events.k8s.io/v1), container lifecycle from pod status (terminations, waiting
reasons, restarts, readiness, pod conditions) and InferenceService status (conditions, model status,
revisions) of model-serving pods and their owners go to serving-events-<day>, each with the logs'
serving_name, model_name, model_version and component. Needs get/list/watch on events (both API
groups), pods and inferenceservices.serving.kserve.io (deploy/events-rbac.yaml).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from collector.cli import _RUN_EPILOG, add_run_arguments  # noqa: PLC0415 - the CLI imports this module

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG + "\n" + _RUN_EPILOG
    add_run_arguments(parser)
    parser.add_argument("--from-files", type=Path,
                        help="read Event, Pod and InferenceService documents (JSON/YAML, Lists too) from this "
                        "directory instead of the API (re-read when a file changes; with --once: read once)")
    parser.add_argument("--events-api", choices=["events.k8s.io", "core"],
                        help="which Events API to read (default events.k8s.io: the same objects either way)")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    from collector.cli import run_overrides  # noqa: PLC0415

    found = run_overrides(args)
    history: dict[str, Any] = {}
    if args.from_files is not None:
        history["from_files"] = args.from_files
    if args.events_api is not None:
        history["events_api"] = args.events_api
    if history:
        found["history"] = history
    return found


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, overrides=overrides(args))
    if problems := start_problems(settings):
        raise ConfigError(problems)
    return run_history(settings)


def start_problems(settings: Settings) -> list[str]:
    """What ``servelog run`` checks at start, but the log root (the history reads no log files)."""
    from collector.preflight import listen_problem, state_dir_problem  # noqa: PLC0415

    found = [state_dir_problem(settings.state_dir) if settings.output == "opensearch" else None,
             listen_problem(settings.telemetry.listen)]
    return [problem for problem in found if problem is not None]


def run_history(settings: Settings) -> int:
    """Build the app with the history source, serve telemetry, run to completion; the exit status."""
    from collector.app import App  # noqa: PLC0415 - keeps --help fast
    from collector.sources.history.feeds import ClusterFeed, FilesFeed  # noqa: PLC0415
    from collector.sources.history.source import Feed, HistorySource  # noqa: PLC0415
    from collector.telemetry.logging import configure_logging  # noqa: PLC0415
    from collector.telemetry.metrics import Metrics  # noqa: PLC0415

    configure_logging(level=settings.telemetry.log_level,
                      stream=sys.stderr if settings.output == "stdout" else sys.stdout)
    metrics = Metrics()
    directory = settings.history.from_files
    client = None
    if directory is None:
        from collector.kube.client import KubeClient  # noqa: PLC0415 - the kubernetes client is heavy

        client = KubeClient.from_settings(settings)

    def make_feed(source: HistorySource) -> Feed:
        if directory is not None:
            return FilesFeed(source, directory, interval=settings.pipeline.scan_interval_seconds)
        assert client is not None
        return ClusterFeed(source, client)

    sources: list[HistorySource] = []

    def make_source(app: Any) -> HistorySource:
        sources.append(HistorySource(settings=settings, batcher=app.batcher, metrics=metrics,
                                     index_template=settings.history.index, make_feed=make_feed))
        return sources[0]

    app = App(settings, metrics=metrics, make_source=make_source)
    app.install_signal_handlers()

    def ready() -> tuple[bool, str]:
        if not sources[0].synced():
            return False, "history watches not listed yet"
        return app.ready()

    server = None
    if settings.telemetry.listen:
        from collector.telemetry.server import TelemetryServer  # noqa: PLC0415

        server = TelemetryServer(listen=settings.telemetry.listen, registry=metrics.registry, alive=app.alive,
                                 ready=ready).start()
        log.info("telemetry_listening", address=server.address)
    log.info("history_started", source="files" if directory else "kubernetes", directory=str(directory or ""),
             events_api=settings.history.events_api, once=settings.once)
    try:
        summary = app.run()
    finally:
        if server is not None:
            server.stop()
    if settings.once and summary.failed is None and (problems := sources[0].problems()):
        summary.failed = "; ".join(problems)  # like run --once with unreadable input: not everything was read
    from collector.runner import exit_status, failure_message  # noqa: PLC0415 - the same verdict as run's

    status, reason = exit_status(summary), failure_message(summary)
    if reason is not None:
        log.error("history_failed" if summary.failed else "delivery_incomplete", reason=reason, exit_status=status)
    if settings.once or reason is not None:
        from collector.cli import print_summary  # noqa: PLC0415

        print_summary(summary.as_dict(), reason=reason)
    return status
