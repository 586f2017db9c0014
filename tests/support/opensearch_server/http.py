"""The loopback OpenSearch's HTTP plumbing: keep-alive HTTP/1.1, a thread per connection, optional TLS."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class Serves(Protocol):
    def _serve(self, h: Handler) -> None: ...


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3 pools connections
    disable_nagle_algorithm = True  # small answers on a kept-alive connection must not wait for delayed ACKs
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    """Threads per connection; TLS handshakes happen in those threads, and stop closes idle connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall without DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def __init__(self, fake: Serves, ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._track = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True,
                                  name=f"fake-opensearch-conn-{client_address[1]}")
        with self._track:
            self._workers.add(worker)
        worker.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._track:
                self._workers.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = request
        if self.ssl_context is not None:
            request.settimeout(10)  # a client that never completes the handshake must not pin a thread
            try:
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            except OSError:
                return  # refused handshake (wrong CA, no client certificate): the client sees the alert
            connection.settimeout(None)
        with self._track:
            self._connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with self._track:
                self._connections.discard(connection)
            if connection is not request:
                connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # resets and broken pipes are the client's business
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._track:
            connections, workers = list(self._connections), list(self._workers)
        for connection in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
