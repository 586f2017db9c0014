"""The telemetry HTTP endpoint: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

Each check returns ``(ok, detail)``: 200 or 503, with the detail as the body (``/healthz``'s body
carries the destination's state, which never fails it; see :mod:`collector.app`).

Bound to loopback unless configured otherwise: a monitoring port is attack surface (CVE-2024-4323
hit a peer's), so exposing it on the pod IP is an explicit choice made in the DaemonSet manifest.
Health is a function injected by the app, so this module knows nothing of the pipeline.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], tuple[bool, str]]


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class TelemetryServer:
    """Serves metrics and health checks on ``host:port`` in a daemon thread."""

    def __init__(self, *, listen: str, registry: CollectorRegistry, alive: Check, ready: Check) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        registry_, alive_, ready_ = registry, alive, ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry_), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    ok, detail = (alive_ if path == "/healthz" else ready_)()
                    self._send(200 if ok else 503, (detail + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the collector's own log

        # the pod IP may be IPv6 ($(POD_IP):9880 on a dual-stack or IPv6 cluster)
        server_class: type[ThreadingHTTPServer] = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, int(port)), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="telemetry", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> TelemetryServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
