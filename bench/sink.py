"""A fast loopback ``_bulk`` sink in its own process, so the collector is what gets measured.

    python -m bench.sink --port 0      # prints "LISTENING <port>", then serves

Answers ``GET /`` like OpenSearch 2.19 and every ``_bulk`` with an all-201 response shaped by
servelog's ``filter_path`` (status only); ``GET /_bench/stats`` returns documents and bytes received.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

_ITEM = b'{"create":{"status":201}}'
_lock = threading.Lock()
stats = {"documents": 0, "bytes": 0, "requests": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/_bench/stats"):
            with _lock:
                self._send(orjson.dumps(stats))
            return
        self._send(orjson.dumps({"version": {"distribution": "opensearch", "number": "2.19.0"}}))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        documents = body.count(b"\n") // 2
        with _lock:
            stats["documents"] += documents
            stats["bytes"] += len(body)
            stats["requests"] += 1
        self._send(b'{"took":1,"errors":false,"items":[' + b",".join([_ITEM] * documents) + b"]}")

    do_PUT = do_POST


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    sys.stdout.write(f"LISTENING {server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
