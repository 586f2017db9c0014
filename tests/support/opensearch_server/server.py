"""The loopback OpenSearch server: lifecycle, scripted faults, request records, routing.

See the package docstring for what it models. The REST handlers live in :mod:`.documents` (bulk,
documents, search, refresh), :mod:`.indices` (indices, templates, ISM policies) and
:mod:`.ism_managed` (ISM attachment, explain); this module keeps the request flow (read body,
authenticate, scripted faults, route, answer) and the cluster-level endpoints (``/``,
``_cluster/health``, ``_cluster/settings``, ``_nodes``).
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import gzip
import hmac
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from tests.support.opensearch_server.cluster import ClusterApi
from tests.support.opensearch_server.common import (
    Reply,
    RequestRecord,
    fail,
    no_handler,
    parse_json,
    request_error,
    version_tuple,
)
from tests.support.opensearch_server.documents import DocumentsApi, ItemPredicate
from tests.support.opensearch_server.http import Handler, Server
from tests.support.opensearch_server.indices import IndicesApi
from tests.support.opensearch_server.ism_managed import ManagedIndicesApi
from tests.support.opensearch_server.search import filter_path
from tests.support.opensearch_server.store import ConnectionEnd, Drop, Index, RequestFault, path_matches


class FakeOpenSearch(ClusterApi, DocumentsApi, IndicesApi, ManagedIndicesApi):
    """A loopback OpenSearch for tests; see the package docstring.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is known from
    construction on (the port is bound in ``__init__``).

    Options: ``version`` (``GET /`` answers it; 3.x adds the ``X-OpenSearch-Version`` header and 3.x
    error types; ``flat_object`` mappings are refused below 2.7), ``ssl_context`` (a server-side
    context: the server speaks HTTPS), ``username``/``password`` (require HTTP basic auth: 401
    otherwise), ``max_content_length`` (a bigger body is read, discarded and answered 413 with an
    empty body, as OpenSearch's HTTP layer does), ``validate_mappings`` (check each indexed source
    against the index's mappings, taken from the matching index template when the index is created),
    ``distribution`` (None imitates an Elasticsearch, which has no ``version.distribution``),
    ``ism_plugin`` (False: the ISM endpoints answer "no handler found", as on a cluster without the
    plugin) and ``data_nodes`` (replicas are assigned only when there are enough nodes; the shard
    limit is ``cluster.max_shards_per_node`` times this).
    """

    def __init__(self, *, version: str = "2.19.0", ssl_context: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None,
                 max_content_length: int = 100 * 1024 * 1024, validate_mappings: bool = False,
                 distribution: str | None = "opensearch", ism_plugin: bool = True, data_nodes: int = 1) -> None:
        self.version = version
        self.max_content_length = max_content_length
        self.validate_mappings = validate_mappings
        self.distribution = distribution
        self.ism_plugin = ism_plugin
        self.data_nodes = data_nodes
        self.index_templates: dict[str, dict[str, Any]] = {}
        """name -> the body as it was PUT."""
        self.component_templates: dict[str, dict[str, Any]] = {}
        """name -> the body as it was PUT."""
        self.ism_policies: dict[str, dict[str, Any]] = {}
        """policy id -> ``{"_id", "_version", "_seq_no", "_primary_term", "policy"}`` as GET answers it."""
        self.cluster_settings: dict[str, dict[str, str]] = {"persistent": {}, "transient": {}}
        """``persistent`` / ``transient`` -> flat setting name -> value (as text)."""
        self.requests: list[RequestRecord] = []
        """Every request in order of completion (dropped ones with status 0)."""
        self._indices: dict[str, Index] = {}
        self._lock = threading.RLock()
        self._refreshed = threading.Condition(self._lock)
        self._request_faults: list[RequestFault] = []
        self._item_scripts: dict[str, list[int]] = {}
        self._item_predicates: list[ItemPredicate] = []
        self._drops: list[Drop] = []
        self._delay = 0.0
        self._unavailable = False
        self._ism_seq_no = -1
        self._auth = f"{username}:{password or ''}".encode() if username is not None else None
        self._stopping = threading.Event()
        self._server = Server(self, ssl_context)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-opensearch-{self._server.server_address[1]}", daemon=True)
        self._started = self._stopped = False

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.version)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenSearch:
        """Start serving; returns self."""
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and wait for the connection threads (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        with self._refreshed:
            self._refreshed.notify_all()
        if self._started:
            self._server.shutdown()
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> FakeOpenSearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults --------------------------------------------------------------------------------------
    def fail_requests(self, status: int, count: int = 1, *, path_prefix: str = "/_bulk",
                      body: dict[str, Any] | None = None, method: str | None = None) -> None:
        """Answer the next ``count`` matching requests with ``status`` and an OpenSearch error body.

        A request matches when its path starts or ends with ``path_prefix`` (so ``/_bulk`` also
        matches ``/{index}/_bulk``; ``/`` matches everything) and, if given, its ``method``. ``body``
        replaces the default body (413 has an empty one, like OpenSearch's HTTP layer). Nothing is
        applied for a failed request.
        """
        with self._lock:
            self._request_faults += [RequestFault(status, path_prefix, method, body) for _ in range(count)]

    def fail_items(self, statuses_by_id: dict[str, list[int]]) -> None:
        """Per document ``_id``: the statuses to answer on its next attempts, one per attempt.

        429 answers ``rejected_execution_exception``, 400 ``mapper_parsing_exception``, 409
        ``version_conflict_engine_exception``, 500/503 shard failures; a 2xx in the list lets that
        attempt be processed normally. A failed item is not stored. Calls add to earlier scripts.
        """
        with self._lock:
            for doc_id, statuses in statuses_by_id.items():
                self._item_scripts.setdefault(doc_id, []).extend(statuses)

    def fail_items_where(self, predicate: ItemPredicate) -> None:
        """Answer ``predicate(index, id, source)`` (a status, or None to process) for every bulk item.

        For permanent rejections, e.g. a 400 whenever the source has some field. Predicates are
        asked in the order they were added; the first status wins.
        """
        with self._lock:
            self._item_predicates.append(predicate)

    def drop_connections(self, count: int = 1, *, after_processing: bool = False, path_prefix: str = "/_bulk") -> None:
        """Close the connection of the next ``count`` matching requests without answering.

        With ``after_processing`` the request is applied first (the bulk's documents are stored),
        so the client sees a connection error, retries, and meets 409s: the ambiguous outcome an
        exactly-once pipeline must survive. Matching is as for :meth:`fail_requests`.
        """
        with self._lock:
            self._drops += [Drop(after_processing, path_prefix) for _ in range(count)]

    def set_delay(self, seconds: float) -> None:
        """Sleep this long before processing each request (a slow cluster); 0 to stop."""
        self._delay = seconds

    def set_unavailable(self, flag: bool) -> None:
        """While set, every request answers 503 ``cluster_block_exception`` (no cluster manager)."""
        self._unavailable = flag

    def clear_faults(self) -> None:
        """Forget every scripted fault, delay and the unavailable flag."""
        with self._lock:
            self._request_faults.clear()
            self._item_scripts.clear()
            self._item_predicates.clear()
            self._drops.clear()
        self._delay, self._unavailable = 0.0, False

    # -- state ---------------------------------------------------------------------------------------
    def documents(self, index_glob: str = "*") -> dict[str, dict[str, dict[str, Any]]]:
        """index -> _id -> _source, for the indices whose names match the glob."""
        with self._lock:
            return {name: {doc_id: doc.source for doc_id, doc in index.docs.items()}
                    for name, index in self._indices.items() if fnmatch.fnmatchcase(name, index_glob)}

    def all_sources(self, index_glob: str = "*") -> list[dict[str, Any]]:
        """Every stored ``_source`` in the matching indices."""
        with self._lock:
            return [doc.source for name, index in self._indices.items() if fnmatch.fnmatchcase(name, index_glob)
                    for doc in index.docs.values()]

    def doc_count(self, index_glob: str = "*") -> int:
        """How many documents the matching indices hold."""
        with self._lock:
            return sum(len(i.docs) for n, i in self._indices.items() if fnmatch.fnmatchcase(n, index_glob))

    def index_names(self) -> list[str]:
        """The existing indices, sorted."""
        with self._lock:
            return sorted(self._indices)

    def mappings(self, index: str) -> dict[str, Any]:
        """The mappings an index was created with (from its template and the create request)."""
        with self._lock:
            return self._indices[index].mappings

    def statuses(self) -> list[int]:
        """The status of every request so far, in order (0: dropped)."""
        return [r.status for r in list(self.requests)]

    # -- serving -------------------------------------------------------------------------------------
    def _serve(self, h: Handler) -> None:
        parts = urlsplit(h.path)
        path = parts.path or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        record = RequestRecord(h.command, path, query, dict(h.headers.items()), 0, 0)
        try:
            try:
                body = self._read_body(h)
            except Reply as too_large:
                self._send(h, too_large.status, too_large.payload, record)
                return
            record.body_size = len(body)
            if self._delay:
                self._stopping.wait(self._delay)
            drop = self._take(self._drops, lambda d: path_matches(path, d.prefix))
            if drop is not None and not drop.after_processing:
                raise ConnectionEnd
            try:
                status, payload, headers = self._answer(h.command, path, query, body, h.headers, record)
            except Reply as reply:
                status, payload, headers = reply.status, reply.payload, reply.headers
            if drop is not None:
                raise ConnectionEnd
            headers = {**self._version_header(), **headers}
            if status < 400 and "filter_path" in query and isinstance(payload, dict | list):
                payload = filter_path(payload, query["filter_path"])
            self._send(h, status, payload, record, headers=headers, head=h.command == "HEAD")
        except ConnectionEnd:
            self.requests.append(record)
            h.close_connection = True
            with contextlib.suppress(OSError):
                socket.socket.shutdown(h.connection, socket.SHUT_RDWR)

    def _take(self, queue: list[Any], match: Callable[[Any], bool]) -> Any:
        with self._lock:
            for i, item in enumerate(queue):
                if match(item):
                    return queue.pop(i)
        return None

    def _read_body(self, h: Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while (length := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                size += length
                chunk = h.rfile.read(length)
                h.rfile.readline()
                if size <= self.max_content_length:
                    chunks.append(chunk)
            while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            if size > self.max_content_length:
                raise Reply(413, None)
            body = b"".join(chunks)
        else:
            length = int(h.headers.get("Content-Length") or 0)
            if length > self.max_content_length:
                while length > 0:  # read and discard, so the connection stays usable
                    length -= len(h.rfile.read(min(length, 1 << 20)) or b"\0" * length)
                raise Reply(413, None)
            body = h.rfile.read(length) if length else b""
        if h.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        return body

    def _send(self, h: Handler, status: int, payload: Any, record: RequestRecord, *,
              headers: dict[str, str] | None = None, head: bool = False) -> None:
        if payload is None:
            data, content_type = b"", "text/plain; charset=UTF-8"
        elif isinstance(payload, bytes):
            data, content_type = payload, "text/plain; charset=UTF-8"
        else:
            data, content_type = orjson.dumps(payload), "application/json; charset=UTF-8"
        record.status = status
        self.requests.append(record)
        h.send_response_only(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        if data and not head:
            h.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, str], body: bytes, headers: Any,
                record: RequestRecord) -> tuple[int, Any, dict[str, str]]:
        if self._auth is not None:
            self._authenticate(headers.get("Authorization", ""))
        if self._unavailable:
            raise Reply(503, request_error(503, path))
        fault = self._take(self._request_faults, lambda f: path_matches(path, f.prefix)
                           and (f.method is None or f.method == method))
        if fault is not None:
            raise Reply(fault.status, fault.body if fault.body is not None else request_error(fault.status, path))
        segments = [unquote(s) for s in path.split("/") if s]
        try:
            status, payload = self._route(method, path, segments, query, body, record)
        except Reply:
            raise
        except Exception as exc:  # never crash the server: answer like an unexpected server failure
            raise fail(500, "exception", f"{type(exc).__name__}: {exc}") from exc
        return status, payload, self._version_header()

    def _authenticate(self, header: str) -> None:
        challenge = {"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}
        if not header.startswith("Basic "):
            raise Reply(401, b"Unauthorized", challenge)
        try:
            given = base64.b64decode(header[6:], validate=True)
        except ValueError:
            given = b""
        assert self._auth is not None
        if not hmac.compare_digest(given, self._auth):
            raise Reply(401, b"Authentication finally failed", challenge)

    # -- routing ---------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, seg: list[str], query: dict[str, str], body: bytes,
               record: RequestRecord) -> tuple[int, Any]:
        n = len(seg)
        first = seg[0] if seg else ""

        def allow(*methods: str) -> None:
            if method not in methods:
                raise Reply(405, {"error": f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: "
                                           f"[{', '.join(methods)}]", "status": 405})

        if n == 0:
            allow("GET", "HEAD")
            return 200, self._info()
        if seg[-1] == "_bulk" and n <= 2:
            allow("POST", "PUT")
            status, answer = self._bulk(body, query, seg[0] if n == 2 else None)
            record.items = len(answer.get("items", ()))
            return status, answer
        if first == "_cluster" and n == 2 and seg[1] == "health":
            allow("GET")
            return 200, self._health()
        if first == "_cluster" and n == 2 and seg[1] == "settings":
            allow("GET", "PUT")
            return self._cluster_settings(method, body, query)
        if first == "_nodes" and n <= 2:
            allow("GET")
            return 200, self._nodes()
        if first in ("_index_template", "_component_template") and n <= 2:
            allow("GET", "PUT", "POST", "DELETE", "HEAD")
            return self._templates(method, first, seg[1] if n == 2 else "*", body)
        if self.ism_plugin and seg[:3] == ["_plugins", "_ism", "policies"] and n <= 4:
            if n == 4:
                allow("GET", "PUT", "DELETE")
            else:
                allow("GET")
            return self._ism(method, seg[3] if n == 4 else None, query, body)
        if self.ism_plugin and seg[:3] == ["_plugins", "_ism", "explain"] and n <= 4:
            allow("GET", "POST")
            return self._explain(method, seg[3] if n == 4 else None, query)
        if first == "_cat" and n >= 2 and seg[1] == "indices" and n <= 3:
            allow("GET")
            return self._cat_indices(seg[2] if n == 3 else "*", query)
        if seg[-1] in ("_search", "_count") and n <= 2:
            allow("GET", "POST")
            target = seg[0] if n == 2 else "_all"
            return self._search(target, parse_json(body, required=False), query, count=seg[-1] == "_count")
        if seg[-1] == "_refresh" and n <= 2:
            allow("GET", "POST")
            return 200, self._refresh(seg[0] if n == 2 else "_all", query)
        if n in (2, 3) and seg[1] in ("_doc", "_create"):
            return self._single_doc(method, seg[0], seg[1], seg[2] if n == 3 else None, body, query)
        if n == 2 and seg[1] in ("_mapping", "_settings"):
            allow("GET", "PUT")
            return self._mapping_or_settings(method, seg[0], seg[1], body, query)
        if n == 1 and (not first.startswith("_") or method in ("PUT", "HEAD")):
            allow("GET", "HEAD", "PUT", "DELETE")
            return self._index_endpoint(method, first, body, query)
        raise no_handler(method, path)
