"""A fast loopback ``_bulk`` sink in its own process, so that the benchmark measures the collector.

    python -m bench.sink --port 0              # prints "LISTENING <port> <control-port>" on stdout, then serves
    python -m bench.sink --port 0 --latency    # also records, per document, acknowledgement time - write time
    python -m bench.sink --measure 5           # its ceiling: documents/s absorbed from trivial clients
    python -m bench.sink --measure 5 --full    # the same without filter_path (full answers, as Fluent Bit gets)

It speaks just enough of OpenSearch for ``servelog run``: ``GET /`` answers like OpenSearch 2.19.0,
``POST|PUT /_bulk`` and ``/<index>/_bulk`` accept every action (``create`` -> 201, ``index`` -> 201,
``delete`` -> 200) and honour ``filter_path``: with servelog's ``took,errors,items.*.status,items.*.error``
the answer is ``{"took":1,"errors":false,"items":[{"create":{"status":201}},...]}``, built from
constant fragments with one bytes join; without ``filter_path`` (Fluent Bit) every item is as long
as OpenSearch's. ``GET /_stats_fake`` returns what was received (documents, bytes, bulk requests).
Anything else gets an OpenSearch-style 404, counted.

A control port beside it (``SinkServer``) keeps answering during simulated outages: it serves the
stats, the latency records, and switches outages on and off (503 answers, or refused connections).
With ``--latency`` the sink finds ``seq=<n> sent_ns=<ns>`` (written into each line by
``bench.writer``) in every acknowledged body and keeps acknowledgement time minus write time.

Nothing is stored or parsed beyond the action lines; the bodies are only searched for the corpus's
long-line markers (``long_lines``: whole, beginning only, end only, a check of content that counts
cannot give) and, with ``--latency``, for the write stamps. So the sink costs a small fraction of
what a collector spends per document; ``--measure`` says how much it can absorb.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

INFO = json.dumps({
    "name": "bench-sink", "cluster_name": "bench", "cluster_uuid": "bench-sink-0000000000",
    "version": {"distribution": "opensearch", "number": "2.19.0", "build_type": "tar", "lucene_version": "9.12.1",
                "minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0"},
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}).encode()
UNAVAILABLE = (b'{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/'
               b'no cluster-manager];"}],"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/'
               b'no cluster-manager];"},"status":503}')
# what the latency writer puts in each line (bench.writer); the sink finds it with one regex pass per body
STAMP = re.compile(rb"seq=(\d+) sent_ns=(\d+)")
_STATUS = {b"create": 201, b"index": 201, b"delete": 200, b"update": 200}
_RESULT = {b"create": b"created", b"index": b"created", b"delete": b"not_found", b"update": b"updated"}


class Stats:
    """Counters shared by the handler threads; with ``latency``, also when each document was acknowledged."""

    def __init__(self, *, latency: bool = False) -> None:
        self.lock = threading.Lock()
        self.documents = 0
        self.bytes = 0
        self.bulk_requests = 0
        self.other_requests = 0
        self.unavailable_answers = 0  # 503s answered during an outage
        self.long_lines = [0, 0, 0]  # documents holding a whole corpus long line, only its beginning, only its end
        self.dropped_connections = 0  # requests whose connection was closed unanswered during a refusal
        self.unknown_paths: list[str] = []
        self.latency = latency
        self.delays_us: list[int] = []  # acknowledgement time minus the write time embedded in the line
        self.seqs: set[int] = set()  # distinct writer sequence numbers acknowledged
        self.stamped = 0  # documents that carried a write time (duplicates included)

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"documents": self.documents, "bytes": self.bytes, "bulk_requests": self.bulk_requests,
                    "other_requests": self.other_requests, "unavailable_answers": self.unavailable_answers,
                    "dropped_connections": self.dropped_connections, "unknown_paths": self.unknown_paths[:20],
                    "long_lines": dict(zip(("whole", "beginning_only", "end_only"), self.long_lines, strict=True))}

    def record_acks(self, body: bytes, acked_ns: int) -> None:
        """Per document of an acknowledged body, the delay since the writer's ``sent_ns`` (one regex pass)."""
        found = STAMP.findall(body)
        with self.lock:
            self.stamped += len(found)
            for seq, sent in found:
                self.seqs.add(int(seq))
                self.delays_us.append((acked_ns - int(sent)) // 1000)

    def latency_snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"stamped": self.stamped, "distinct": len(self.seqs), "delays_us": list(self.delays_us)}


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


_FULL_ITEM = (b'{"%s":{"_index":"serving-logs-bench-2026.11.24","_id":"%020d","_version":1,"result":"%s",'
              b'"_shards":{"total":2,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":%d}}')


# The corpus's long lines (bench.corpus, ~40 KB, written as 16 KiB P chunks and an F) begin and end so:
LONG_BEGINS = b"DEBUG payload {"
LONG_ENDS = b']]}"'  # the end of the payload, then the end of the JSON string holding it


def long_lines(body: bytes) -> tuple[int, int, int]:
    """(whole, beginning only, end only): the corpus's long lines in a bulk body, by document line.

    A collector that merges a long line's chunks delivers it whole; one that cuts it (a flush timeout,
    a rotation) delivers a beginning and an end apart; one that loses a chunk shows an end without its
    beginning (or the reverse). Only the lines holding a marker are looked at."""
    found: dict[int, int] = {}  # line start -> 1 beginning, 2 end, 3 both
    for marker, bit in ((LONG_BEGINS, 1), (LONG_ENDS, 2)):
        at = body.find(marker)
        while at != -1:
            start = body.rfind(b"\n", 0, at) + 1
            found[start] = found.get(start, 0) | bit
            end = body.find(b"\n", at)
            at = -1 if end == -1 else body.find(marker, end)
    kinds = list(found.values())
    return kinds.count(3), kinds.count(1), kinds.count(2)


def bulk_response(actions: list[bytes], filter_path: str | None) -> bytes:
    """An all-success ``_bulk`` answer shaped by ``filter_path``.

    Without ``filter_path`` (Fluent Bit sends none) every item is as long as OpenSearch's (index name,
    a 20-character id, version, result, shards, sequence number), so a client that parses the whole
    answer pays what it would pay against OpenSearch."""
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
        elif fields is None:
            full = [_FULL_ITEM % (name, seq, _RESULT.get(name, b"created"), seq, _STATUS.get(name, 201))
                    for seq, name in enumerate(actions)]
            parts.append(b'"items":[' + b",".join(full) + b"]")
        else:
            filtered = []
            for seq, name in enumerate(actions):
                item = json.loads(_FULL_ITEM % (name, seq, _RESULT.get(name, b"created"), seq, _STATUS.get(name, 201)))
                filtered.append({name.decode(): {k: v for k, v in item[name.decode()].items() if k in fields}})
            parts.append(b'"items":' + json.dumps(filtered, separators=(",", ":")).encode())
    return b"{" + b",".join(parts) + b"}"


def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    # status line, headers and body in one write: one segment for small answers
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json; charset=UTF-8\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    handler.wfile.write(head if handler.command == "HEAD" else head + body)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as opensearch-py's connection pool expects

    def setup(self) -> None:
        super().setup()
        # small answers must not wait for the client's delayed ACK (Nagle)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # OpenSearch (Netty) accepts a deep backlog; Python's default of 5 would drop or reset the burst of
    # connections Fluent Bit opens when it flushes many chunks at once
    request_queue_size = 256


class SinkServer:
    """The ``_bulk`` endpoint on ``port`` and a control endpoint beside it.

    The control endpoint keeps answering while the bulk endpoint is down: ``GET /_stats_fake``,
    ``GET /_bench/latency``, ``POST /_bench/outage?mode=503`` (every request answered 503, as an
    OpenSearch cluster that lost its master does), ``POST /_bench/outage?mode=refuse`` (the listening
    socket is closed, so connecting is refused, and any kept-alive connection is closed at its next
    request), ``POST /_bench/recover``.
    """

    def __init__(self, port: int, *, control_port: int = 0, latency: bool = False) -> None:
        self.stats = Stats(latency=latency)
        self.mode: str | None = None
        self._lock = threading.Lock()
        self._bulk: _Server | None = None
        self.port = port
        self._start_bulk()
        self._control = _Server(("127.0.0.1", control_port), self._control_handler())
        self.control_port = self._control.server_address[1]

    def _start_bulk(self) -> None:
        server = _Server(("127.0.0.1", self.port), self._bulk_handler())
        self.port = server.server_address[1]
        self._bulk = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def outage(self, mode: str) -> None:
        if mode not in ("503", "refuse"):
            raise ValueError(f"outage mode must be 503 or refuse, got {mode!r}")
        with self._lock:
            self.mode = mode
            if mode == "refuse" and self._bulk is not None:
                self._bulk.shutdown()
                self._bulk.server_close()
                self._bulk = None

    def recover(self) -> None:
        with self._lock:
            if self._bulk is None:
                self._start_bulk()
            self.mode = None

    def serve(self) -> None:
        try:
            self._control.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._control.server_close()
            if self._bulk is not None:
                self._bulk.server_close()

    def _bulk_handler(self) -> type[BaseHTTPRequestHandler]:
        sink, stats = self, self.stats

        class Handler(_Quiet):
            def _refused(self) -> bool:
                if sink.mode == "refuse":
                    with stats.lock:
                        stats.dropped_connections += 1
                    self.close_connection = True  # no answer: the client sees the connection drop
                    return True
                if sink.mode == "503":
                    self._body()
                    with stats.lock:
                        stats.unavailable_answers += 1
                    _answer(self, 503, UNAVAILABLE)
                    return True
                return False

            def _not_found(self, path: str) -> None:
                with stats.lock:
                    stats.other_requests += 1
                    if len(stats.unknown_paths) < 100:
                        stats.unknown_paths.append(f"{self.command} {path}")
                _answer(self, 404, b'{"error":{"type":"resource_not_found_exception","reason":"bench sink: no such '
                                   b'endpoint"},"status":404}')

            def do_GET(self) -> None:
                if self._refused():
                    return
                url = urlsplit(self.path)
                if url.path == "/":
                    _answer(self, 200, INFO)
                elif url.path == "/_stats_fake":
                    _answer(self, 200, json.dumps(stats.snapshot()).encode())
                else:
                    self._not_found(url.path)

            do_HEAD = do_GET

            def do_POST(self) -> None:
                if self._refused():
                    return
                url = urlsplit(self.path)
                body = self._body()
                if not url.path.endswith("/_bulk"):
                    self._not_found(url.path)
                    return
                actions = _actions(body)
                whole, beginnings, ends = long_lines(body)
                with stats.lock:
                    stats.long_lines[0] += whole
                    stats.long_lines[1] += beginnings
                    stats.long_lines[2] += ends
                    stats.documents += sum(1 for a in actions if a != b"delete")
                    stats.bytes += len(body)
                    stats.bulk_requests += 1
                _answer(self, 200, bulk_response(actions, parse_qs(url.query).get("filter_path", [None])[0]))
                if stats.latency:
                    stats.record_acks(body, time.time_ns())

            do_PUT = do_POST

        return Handler

    def _control_handler(self) -> type[BaseHTTPRequestHandler]:
        sink, stats = self, self.stats

        class Control(_Quiet):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/_stats_fake":
                    _answer(self, 200, json.dumps({**stats.snapshot(), "mode": sink.mode}).encode())
                elif path == "/_bench/latency":
                    _answer(self, 200, json.dumps(stats.latency_snapshot()).encode())
                else:
                    _answer(self, 404, b'{"error":"no such control endpoint"}')

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                self._body()
                try:
                    if url.path == "/_bench/outage":
                        sink.outage(parse_qs(url.query).get("mode", ["503"])[0])
                    elif url.path == "/_bench/recover":
                        sink.recover()
                    else:
                        _answer(self, 404, b'{"error":"no such control endpoint"}')
                        return
                except ValueError as exc:
                    _answer(self, 400, json.dumps({"error": str(exc)}).encode())
                    return
                _answer(self, 200, json.dumps({"mode": sink.mode}).encode())

        return Control


def serve(port: int, *, control_port: int = 0, latency: bool = False) -> None:
    server = SinkServer(port, control_port=control_port, latency=latency)
    sys.stdout.write(f"LISTENING {server.port} {server.control_port}\n")
    sys.stdout.flush()
    server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--measure", type=float, metavar="SECONDS", help="measure the ceiling instead of serving")
    parser.add_argument("--clients", type=int, default=2, help="client threads for --measure")
    parser.add_argument("--docs", type=int, default=5000, help="documents per _bulk body for --measure")
    parser.add_argument("--full", action="store_true", help="--measure without filter_path (full answers)")
    parser.add_argument("--control-port", type=int, default=0, help="port of the control endpoint (0: any)")
    parser.add_argument("--latency", action="store_true", help="record acknowledgement time - write time per document")
    args = parser.parse_args(argv)
    if args.measure:
        from bench.ceiling import measure

        result = measure(args.measure, docs=args.docs, clients=args.clients, full=args.full)
        print(f"sink ceiling: {result['documents_per_second']:,.0f} documents/s ({result['mib_per_second']:,.0f} MiB/s; "
              f"{args.clients} clients, {args.docs}-document bodies of {result['bytes_per_doc']:.0f} B/doc"
              f"{', full answers' if args.full else ''})")
        return
    serve(args.port, control_port=args.control_port, latency=args.latency)


if __name__ == "__main__":
    main()
