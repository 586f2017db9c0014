"""Loopback endpoints that are *not* a working OpenSearch, for the "wrong destination" tests.

What a user points ``--opensearch-url`` at by mistake answers ``_bulk`` in ways servelog must
never take for a verdict on the documents: a path or an ingress that is not OpenSearch (404, 405),
OpenSearch Dashboards (its own JSON 404 ``{"statusCode": 404, "error": "Not Found"}``), a proxy's or
a login page's HTML (200 or 403), a plain-text or JSON 200 that is not a bulk response, refused
credentials (401 with a ``WWW-Authenticate`` challenge, as the security plugin answers), and a
server that accepts the connection but never answers (:data:`HANG`).

:class:`WrongDestination` answers every request with the :class:`Answer` of its current mode
(changeable while it runs with :meth:`WrongDestination.answer_with`) and counts requests by path.
It is an in-process HTTP/1.1 server on 127.0.0.1 (an ephemeral port), one daemon thread per
connection, keep-alive, the request body read and discarded.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """One canned HTTP answer."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


_HTML = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body><h1>Welcome</h1>\n"
         b"<p>Please sign in to continue.</p></body></html>\n")

ANSWERS: dict[str, Answer] = {
    # a wrong path behind OpenSearch itself, or an ingress rule: OpenSearch-style "no handler" text
    "404": Answer(404, b'{"error":"no handler found for uri [/wrong/_bulk] and method [POST]","status":404}'),
    "dashboards": Answer(404, b'{"statusCode":404,"error":"Not Found","message":"Not Found"}'),
    "405": Answer(405, b'{"error":"Incorrect HTTP method for uri [/_bulk] and method [POST], allowed: [GET]",'
                       b'"status":405}'),
    "html": Answer(200, _HTML, "text/html; charset=utf-8"),
    "html-403": Answer(403, _HTML, "text/html; charset=utf-8"),
    "html-502": Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "text": Answer(200, b"OK\n", "text/plain; charset=utf-8"),
    "json-not-bulk": Answer(200, b'{"ok":true,"status":"green"}'),
    "401": Answer(401, b"Unauthorized", "text/plain; charset=UTF-8",
                  {"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}),
}
HANG = "hang"
"""Accept the request and never answer (until the server stops)."""


class WrongDestination:
    """Answers every request with the current mode's canned answer. A context manager."""

    def __init__(self, mode: str = "404") -> None:
        self._mode = mode
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        """``"METHOD /path"`` -> how many requests arrived (counted on arrival)."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = urlsplit(self.path).path
                with outer._lock:
                    outer.requests[f"{self.command} {path}"] += 1
                    mode = outer._mode
                if mode == HANG:
                    outer._stopping.wait()
                    self.close_connection = True
                    return
                answer = ANSWERS[mode]
                self.send_response_only(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="wrong-destination", daemon=True)

    def answer_with(self, mode: str) -> None:
        """Switch the answer of the next requests (a key of :data:`ANSWERS`, or :data:`HANG`)."""
        if mode != HANG and mode not in ANSWERS:
            raise KeyError(mode)
        with self._lock:
            self._mode = mode

    def bulk_requests(self) -> int:
        """How many ``_bulk`` requests arrived so far."""
        with self._lock:
            return sum(n for key, n in self.requests.items() if key.endswith("/_bulk"))

    def __enter__(self) -> WrongDestination:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
