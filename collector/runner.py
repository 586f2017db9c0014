"""``servelog run``: build the collector from validated settings and run it to completion.

Chooses the metadata provider (static file, pod watch, or none), starts telemetry, installs the
signal handlers, runs the :class:`~collector.app.App`, prints the ``--once`` summary and turns the
run's :class:`~collector.app.Summary` into the exit status (:func:`exit_status`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import structlog

from collector.app import App, Summary
from collector.model import MetadataProvider
from collector.settings import Settings
from collector.telemetry.logging import configure_logging
from collector.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # an unexpected failure (a bug, an unwritable dead-letter file, ...)
EXIT_INVALID_SETTINGS = 2
EXIT_UNDELIVERED = 3  # something read was not delivered: given up (--once) or abandoned at shutdown


def exit_status(summary: Summary) -> int:
    """0 only when every line read was delivered (created, already present or dead-lettered)."""
    if summary.failed:
        return EXIT_FAILED
    if not summary.delivered_everything:
        return EXIT_UNDELIVERED
    return EXIT_OK


def failure_message(summary: Summary) -> str | None:
    """Why the run did not deliver everything, in one line (None when it did)."""
    if summary.failed:
        return summary.failed
    if summary.gave_up:
        return summary.gave_up
    if not summary.delivered_everything:
        batches = max(summary.unacknowledged_batches, summary.abandoned_batches)
        return (f"{batches} batch(es) were not acknowledged before the run ended; their lines are read again on the "
                "next start (checkpoints hold only acknowledged positions)")
    return None


def make_metadata_provider(settings: Settings) -> MetadataProvider | None:
    """Static file if given; the node-scoped pod watch when in a cluster (or asked to); else none."""
    if settings.metadata_file is not None:
        from collector.kube.static import StaticMetadataProvider  # noqa: PLC0415

        return StaticMetadataProvider(settings.metadata_file, custom_fields=settings.kubernetes.custom_fields)
    enabled = settings.kubernetes.enabled
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if enabled == "true" or (enabled == "auto" and (in_cluster or settings.kubernetes.kubeconfig)):
        from collector.kube.pods import PodWatchCache  # noqa: PLC0415 - the kubernetes client is heavy

        cache = PodWatchCache.from_settings(settings)
        cache.start()
        return cache
    return None


def run_collector(settings: Settings) -> int:
    configure_logging(level=settings.telemetry.log_level,
                      stream=sys.stderr if settings.output == "stdout" else sys.stdout)
    metrics = Metrics()
    metadata = make_metadata_provider(settings)
    make_source = None
    if settings.source == "kubernetes":
        make_source = _api_source_factory(settings, metrics, metadata)
    app = App(settings, metrics=metrics, metadata=metadata, make_source=make_source)
    app.install_signal_handlers()
    server = None
    if settings.telemetry.listen:
        from collector.telemetry.server import TelemetryServer  # noqa: PLC0415

        server = TelemetryServer(listen=settings.telemetry.listen, registry=metrics.registry,
                                 alive=app.alive, ready=app.ready).start()
        log.info("telemetry_listening", address=server.address)
    progress = None
    if settings.once and _progress_wanted(settings):
        from collector.telemetry.progress import Progress  # noqa: PLC0415

        progress = Progress(app, stream=sys.stderr).start()
    try:
        summary = app.run()
    finally:
        if progress is not None:
            progress.stop()
        if server is not None:
            server.stop()
        stop = getattr(metadata, "stop", None)
        if callable(stop):
            stop()
    status = exit_status(summary)
    reason = failure_message(summary)
    if reason is not None:
        log.error("collector_failed" if summary.failed else "delivery_incomplete", reason=reason, exit_status=status)
    if settings.once or reason is not None:
        from collector.cli import print_summary  # noqa: PLC0415

        print_summary(summary.as_dict(), reason=reason)
    return status


def _api_source_factory(settings: Settings, metrics: Metrics, metadata: MetadataProvider | None) -> Any:
    """The pods/log source needs the pod watch (targets) and the client (streams)."""
    from collector.errors import ConfigError  # noqa: PLC0415
    from collector.kube.client import KubeClient  # noqa: PLC0415
    from collector.sources.kubernetes.source import ApiSource  # noqa: PLC0415

    if metadata is None or not hasattr(metadata, "pods"):
        raise ConfigError(["source=kubernetes needs the pod watch: run in a cluster or set kubernetes.kubeconfig"])
    client = KubeClient.from_settings(settings)

    def make(app: App) -> ApiSource:
        return ApiSource(settings=settings, batcher=app.batcher, store=app.store, metrics=metrics, client=client,
                         pods=metadata, metadata=metadata)  # type: ignore[arg-type]

    return make


def _progress_wanted(settings: Settings) -> bool:
    mode = settings.telemetry.progress
    return mode == "always" or (mode == "auto" and sys.stderr.isatty())
