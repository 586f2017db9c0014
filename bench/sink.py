"""A fast loopback ``_bulk`` sink in its own process, so that the benchmark measures the collector.

    python -m bench.sink --port 0              # prints "LISTENING <port>" on stdout, then serves
    python -m bench.sink --measure 5           # its ceiling: documents/s absorbed from trivial clients

It speaks just enough of OpenSearch for ``servelog run``: ``GET /`` answers like OpenSearch 2.19.0,
``POST|PUT /_bulk`` and ``/<index>/_bulk`` accept every action (``create`` -> 201, ``index`` -> 201,
``delete`` -> 200) and honour ``filter_path``: with servelog's ``took,errors,items.*.status,items.*.error``
the answer is ``{"took":1,"errors":false,"items":[{"create":{"status":201}},...]}``, built from
constant fragments with one bytes join. ``GET /_stats_fake`` returns what was received
(documents, bytes, bulk requests). Anything else gets an OpenSearch-style 404, counted.

Nothing is stored or parsed beyond the action lines, so the sink costs a small fraction of what
the collector spends per document; ``--measure`` says how much it can absorb.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

INFO = json.dumps({
    "name": "bench-sink", "cluster_name": "bench", "cluster_uuid": "bench-sink-0000000000",
    "version": {"distribution": "opensearch", "number": "2.19.0", "build_type": "tar", "lucene_version": "9.12.1",
                "minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0"},
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}).encode()
_STATUS = {b"create": 201, b"index": 201, b"delete": 200, b"update": 200}
_RESULT = {b"create": "created", b"index": "created", b"delete": "not_found", b"update": "updated"}


class Stats:
    """Counters shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.documents = 0
        self.bytes = 0
        self.bulk_requests = 0
        self.other_requests = 0
        self.unknown_paths: list[str] = []

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"documents": self.documents, "bytes": self.bytes, "bulk_requests": self.bulk_requests,
                    "other_requests": self.other_requests, "unknown_paths": self.unknown_paths[:20]}


def _item_filter(filter_path: str | None) -> tuple[bool, bool, bool, set[str] | None]:
    """(took, errors, items, item fields) kept by ``filter_path``; item fields None = all of them."""
    if filter_path is None:
        return True, True, True, None
    paths = [p.strip() for p in filter_path.split(",") if p.strip()]
    took = any(p in ("took", "*") for p in paths)
    errors = any(p in ("errors", "*") for p in paths)
    if any(p in ("items", "items.*", "*") for p in paths):
        return took, errors, True, None
    fields = {p.split(".", 2)[2] for p in paths if p.startswith("items.*.") and p.count(".") >= 2}
    return took, errors, bool(fields), fields


def _actions(body: bytes) -> list[bytes]:
    """The action names of an NDJSON bulk body (``create``, ``index``, ``delete``, ``update``)."""
    lines = body.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    actions = lines[0::2]
    # fast path: servelog sends create + source pairs only
    if all(a.startswith(b'{"create"') for a in actions):
        return [b"create"] * len(actions)
    out = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        name = next(iter(json.loads(line)), "index").encode()
        out.append(name)
        i += 1 if name == b"delete" else 2
    return out


def bulk_response(actions: list[bytes], filter_path: str | None) -> bytes:
    """An all-success ``_bulk`` answer shaped by ``filter_path``."""
    took, errors, items, fields = _item_filter(filter_path)
    parts = []
    if took:
        parts.append(b'"took":1')
    if errors:
        parts.append(b'"errors":false')
    if items and actions:
        if fields is not None and fields <= {"status", "error"}:
            # successful items carry no error: only the status survives the filter
            fragments = {name: b'{"%s":{"status":%d}}' % (name, _STATUS.get(name, 201)) for name in set(actions)}
            if "status" not in fields:
                fragments = {name: b'{"%s":{}}' % name for name in fragments}
            parts.append(b'"items":[' + b",".join([fragments[a] for a in actions]) + b"]")
        else:
            full = []
            for seq, name in enumerate(actions):
                item = {"_index": "bench", "_id": str(seq), "_version": 1, "result": _RESULT.get(name, "created"),
                        "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1,
                        "status": _STATUS.get(name, 201)}
                if fields is not None:
                    item = {k: v for k, v in item.items() if k in fields}
                full.append({name.decode(): item})
            parts.append(b'"items":' + json.dumps(full, separators=(",", ":")).encode())
    return b"{" + b",".join(parts) + b"}"


def make_handler(stats: Stats) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as opensearch-py's connection pool expects

        def setup(self) -> None:
            super().setup()
            # small answers must not wait for the client's delayed ACK (Nagle)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, body: bytes) -> None:
            # status line, headers and body in one write: one segment for small answers
            head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                    f"content-type: application/json; charset=UTF-8\r\ncontent-length: {len(body)}\r\n\r\n").encode()
            self.wfile.write(head if self.command == "HEAD" else head + body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _not_found(self, path: str) -> None:
            with stats.lock:
                stats.other_requests += 1
                if len(stats.unknown_paths) < 100:
                    stats.unknown_paths.append(f"{self.command} {path}")
            self._send(404, b'{"error":{"type":"resource_not_found_exception","reason":"bench sink: no such endpoint"},'
                            b'"status":404}')

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                self._send(200, INFO)
            elif url.path == "/_stats_fake":
                self._send(200, json.dumps(stats.snapshot()).encode())
            else:
                self._not_found(url.path)

        do_HEAD = do_GET

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self._body()
            if not url.path.endswith("/_bulk"):
                self._not_found(url.path)
                return
            actions = _actions(body)
            with stats.lock:
                stats.documents += sum(1 for a in actions if a != b"delete")
                stats.bytes += len(body)
                stats.bulk_requests += 1
            self._send(200, bulk_response(actions, parse_qs(url.query).get("filter_path", [None])[0]))

        do_PUT = do_POST

    return Handler


def serve(port: int) -> None:
    stats = Stats()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(stats))
    server.daemon_threads = True
    sys.stdout.write(f"LISTENING {server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- measuring the sink's own ceiling -----------------------------------------------------------------
def sample_body(docs: int) -> bytes:
    """A bulk body shaped like servelog's: create actions with 27-char ids, ~15-field sources."""
    pairs = []
    for n in range(docs):
        pairs.append(b'{"create":{"_index":"serving-logs-team-a-2026.11.24","_id":"%027d"}}\n' % n)
        pairs.append(b'{"timestamp":"2026-11-24T09:00:00.123456789Z","message":"2026-11-24 09:00:00.123 1 kserve INFO '
                     b'[model.py:predict():42] Predicting on 8 instances","stream":"stderr","level":"info",'
                     b'"component":"predictor","container_name":"kserve-container","serving_name":"sklearn-iris",'
                     b'"model_name":"sklearn-iris","model_version":"1","namespace":"team-a","pod_name":'
                     b'"sklearn-iris-predictor-00001-deployment-6d4c5f7b9c-x2x9p","pod_uid":'
                     b'"0f1e2d3c-1111-2222-3333-444455556666","node_name":"bench","restart_count":0,'
                     b'"metadata_source":"path"}\n')
    return b"".join(pairs)


def _client(port: int, body: bytes, docs: int, deadline: float, sent: list[int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    count = 0
    try:
        while time.perf_counter() < deadline:
            connection.request("POST", "/_bulk?filter_path=took,errors,items.*.status,items.*.error", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            count += docs
    finally:
        connection.close()
        sent.append(count)


def measure(seconds: float, *, docs: int = 5000, clients: int = 2) -> dict[str, float]:
    """Start a sink process and feed it from ``clients`` threads replaying one body; documents/s absorbed."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--port", "0"], stdout=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        body = sample_body(docs)
        sent: list[int] = []
        started = time.perf_counter()
        threads = [threading.Thread(target=_client, args=(port, body, docs, started + seconds, sent)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_stats_fake")
        received = json.loads(connection.getresponse().read())
        connection.close()
        assert received["documents"] == sum(sent), (received, sum(sent))
        return {"documents_per_second": sum(sent) / elapsed, "mib_per_second": received["bytes"] / elapsed / 2**20,
                "clients": clients, "docs_per_request": docs, "bytes_per_doc": len(body) / docs}
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--measure", type=float, metavar="SECONDS", help="measure the ceiling instead of serving")
    parser.add_argument("--clients", type=int, default=2, help="client threads for --measure")
    parser.add_argument("--docs", type=int, default=5000, help="documents per _bulk body for --measure")
    args = parser.parse_args(argv)
    if args.measure:
        result = measure(args.measure, docs=args.docs, clients=args.clients)
        print(f"sink ceiling: {result['documents_per_second']:,.0f} documents/s ({result['mib_per_second']:,.0f} MiB/s; "
              f"{args.clients} clients, {args.docs}-document bodies of {result['bytes_per_doc']:.0f} B/doc)")
        return
    serve(args.port)


if __name__ == "__main__":
    main()
