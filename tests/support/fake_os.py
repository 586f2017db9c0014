"""A loopback OpenSearch for tests: the real wire protocol for what servelog uses, plus faults.

Speaks ``GET /``, ``_bulk`` (create/index, 409 on an existing ``_id``, per-item errors exactly as
OpenSearch shapes them, ``filter_path``), ``_search``/``_count`` (term/terms/range/match_phrase/bool,
sort, ``search_after``), index and component templates, ISM policies (409 on a blind overwrite,
like the real plugin) and index creation. Faults are scripted: whole-request statuses, per-document
statuses (by predicate), slow answers, dropped connections (before or after applying the bulk),
and an "unavailable" switch. The real ``opensearch-py`` client talks to it unchanged.
"""

from __future__ import annotations

import fnmatch
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

ItemFault = Callable[[str, str, dict[str, Any]], int | None]

_ERRORS = {
    400: ("mapper_parsing_exception", "failed to parse field"),
    409: ("version_conflict_engine_exception", "document already exists"),
    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
    500: ("internal_server_error", "internal error"),
    503: ("unavailable_shards_exception", "primary shard is not active"),
}


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    documents: int = 0


class FakeOpenSearch:
    """See the module docstring. Use as a context manager or ``start()``/``stop()``."""

    def __init__(self, *, version: str = "2.19.0", ssl_context: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        self.version = version
        self.indices: dict[str, dict[str, dict[str, Any]]] = {}
        self.index_templates: dict[str, dict[str, Any]] = {}
        self.component_templates: dict[str, dict[str, Any]] = {}
        self.ism_policies: dict[str, dict[str, Any]] = {}
        self.requests: list[Received] = []
        self._lock = threading.RLock()
        self._request_faults: list[tuple[str, int]] = []
        self._item_faults: list[ItemFault] = []
        self._drops: list[bool] = []
        self._delay = 0.0
        self._unavailable = False
        self._auth = (username, password) if username else None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenSearch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenSearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------------
    def fail_requests(self, status: int, count: int = 1, *, path_prefix: str = "/_bulk") -> None:
        with self._lock:
            self._request_faults.extend([(path_prefix, status)] * count)

    def fail_items_where(self, predicate: ItemFault) -> None:
        """``predicate(index, id, source)`` returns a status to answer for that item, or None."""
        with self._lock:
            self._item_faults.append(predicate)

    def drop_connections(self, count: int = 1, *, after_processing: bool = False) -> None:
        with self._lock:
            self._drops.extend([after_processing] * count)

    def set_delay(self, seconds: float) -> None:
        self._delay = seconds

    def set_unavailable(self, flag: bool) -> None:
        self._unavailable = flag

    # -- state -------------------------------------------------------------------------------------
    def documents(self, index_glob: str = "*") -> dict[str, dict[str, dict[str, Any]]]:
        with self._lock:
            return {name: dict(docs) for name, docs in self.indices.items() if fnmatch.fnmatch(name, index_glob)}

    def all_sources(self, index_glob: str = "*") -> list[dict[str, Any]]:
        return [doc for docs in self.documents(index_glob).values() for doc in docs.values()]

    def doc_count(self, index_glob: str = "*") -> int:
        return sum(len(docs) for docs in self.documents(index_glob).values())

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    # -- protocol ----------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if self._delay:
            time.sleep(self._delay)
        with self._lock:
            drop = self._drops.pop(0) if self._drops and path.endswith("/_bulk") else None
            fault = next((f for f in self._request_faults if path.startswith(f[0]) or path.endswith(f[0])), None)
            if fault is not None and drop is None:
                self._request_faults.remove(fault)
        if drop is not None:
            if drop:
                self._bulk(body, query)
            self.requests.append(Received(h.command, path, 0))
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return None
        if self._auth is not None and not self._authorized(h):
            return self._reply(h, 401, _error("security_exception", "missing authentication credentials"), path)
        if self._unavailable:
            return self._reply(h, 503, _error("cluster_block_exception", "cluster unavailable"), path)
        if fault is not None:
            status = fault[1]
            kind, reason = _ERRORS.get(status, ("error", "injected"))
            if status == 413:
                kind, reason = "content_too_long", "request entity too large"
            return self._reply(h, status, _error(kind, reason), path)
        try:
            status, payload = self._route(h.command, path, query, body)
        except Exception as exc:
            status, payload = 500, _error("exception", repr(exc))
        if status == 200 and "filter_path" in query:
            payload = _filter_path(payload, query["filter_path"].split(","))
        self._reply(h, status, payload, path, head=h.command == "HEAD")
        return None

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        import base64

        header = h.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self._auth[0]}:{self._auth[1]}".encode()).decode()  # type: ignore[index]
        return header == f"Basic {expected}"

    def _reply(self, h: BaseHTTPRequestHandler, status: int, payload: Any, path: str, *, head: bool = False) -> None:
        data = orjson.dumps(payload)
        with self._lock:
            docs = payload.get("items") if isinstance(payload, dict) else None
            self.requests.append(Received(h.command, path, status, len(docs) if isinstance(docs, list) else 0))
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not head:
            h.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        segments = [s for s in path.split("/") if s]
        if not segments:
            return 200, {"name": "fake", "cluster_name": "servelog-test", "tagline": "The OpenSearch Project",
                         "version": {"distribution": "opensearch", "number": self.version}}
        if segments[-1] == "_bulk":
            return 200, self._bulk(body, query, default_index=segments[0] if len(segments) == 2 else None)
        if segments[0] == "_cluster":
            return 200, {"status": "green"}
        if segments[0] in ("_index_template", "_component_template"):
            store = self.index_templates if segments[0] == "_index_template" else self.component_templates
            key = "index_templates" if segments[0] == "_index_template" else "component_templates"
            inner = "index_template" if segments[0] == "_index_template" else "component_template"
            return self._templates(method, segments[1:], body, store, key, inner)
        if segments[:2] == ["_plugins", "_ism"] and len(segments) >= 4 and segments[2] == "policies":
            return self._ism(method, segments[3], query, body)
        if segments[-1] in ("_search", "_count"):
            return self._search(segments[0] if len(segments) == 2 else "*", orjson.loads(body) if body else {},
                                count=segments[-1] == "_count")
        if segments[-1] == "_refresh":
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if len(segments) == 1 and method in ("PUT", "HEAD", "DELETE", "GET"):
            return self._index(method, segments[0])
        return 400, _error("illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]")

    def _bulk(self, body: bytes, query: dict[str, str], default_index: str | None = None) -> dict[str, Any]:
        lines = body.split(b"\n")
        items: list[dict[str, Any]] = []
        i = 0
        started = time.perf_counter()
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            action = orjson.loads(lines[i])
            (op, meta), = action.items()
            source = orjson.loads(lines[i + 1]) if op in ("create", "index") else {}
            i += 2 if op in ("create", "index") else 1
            index, doc_id = meta.get("_index", default_index), meta.get("_id")
            items.append({op: self._apply(op, index, doc_id, source)})
        took = int((time.perf_counter() - started) * 1000)
        return {"took": took, "errors": any(next(iter(it.values()))["status"] >= 300 for it in items), "items": items}

    def _apply(self, op: str, index: str, doc_id: str | None, source: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for predicate in self._item_faults:
                status = predicate(index, doc_id or "", source)
                if status is not None:
                    kind, reason = _ERRORS.get(status, ("error", "injected"))
                    return {"_index": index, "_id": doc_id, "status": status,
                            "error": {"type": kind, "reason": reason, "index": index}}
            docs = self.indices.setdefault(index, {})
            if op == "create" and doc_id in docs:
                kind, reason = _ERRORS[409]
                return {"_index": index, "_id": doc_id, "status": 409,
                        "error": {"type": kind, "reason": f"[{doc_id}]: {reason}", "index": index}}
            doc_id = doc_id or f"auto-{len(docs)}"
            docs[doc_id] = source
            return {"_index": index, "_id": doc_id, "_version": 1, "result": "created", "status": 201}

    def _templates(self, method: str, rest: list[str], body: bytes, store: dict[str, Any], key: str,
                   inner: str) -> tuple[int, Any]:
        name = rest[0] if rest else "*"
        with self._lock:
            if method == "PUT":
                store[name] = orjson.loads(body)
                return 200, {"acknowledged": True}
            if method == "DELETE":
                store.pop(name, None)
                return 200, {"acknowledged": True}
            found = [{"name": n, inner: t} for n, t in store.items() if fnmatch.fnmatch(n, name)]
        if not found and "*" not in name:
            return 404, _error("resource_not_found_exception", f"{key[:-1]} [{name}] missing")
        return 200, {key: found}

    def _ism(self, method: str, policy_id: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            current = self.ism_policies.get(policy_id)
            if method == "GET":
                if current is None:
                    return 404, _error("status_exception", "Policy not found")
                return 200, {"_id": policy_id, **current}
            if method == "DELETE":
                self.ism_policies.pop(policy_id, None)
                return 200, {"result": "deleted"}
            policy = orjson.loads(body)["policy"]
            if current is not None:
                seq, term = query.get("if_seq_no"), query.get("if_primary_term")
                if seq is None or int(seq) != current["_seq_no"] or int(term or -1) != current["_primary_term"]:
                    return 409, _error("version_conflict_engine_exception", f"[{policy_id}]: version conflict")
                record = {"_version": current["_version"] + 1, "_seq_no": current["_seq_no"] + 1,
                          "_primary_term": 1, "policy": policy}
            else:
                record = {"_version": 1, "_seq_no": 0, "_primary_term": 1, "policy": policy}
            self.ism_policies[policy_id] = record
            return (200 if current else 201), {"_id": policy_id, **record}

    def _index(self, method: str, name: str) -> tuple[int, Any]:
        with self._lock:
            if method == "PUT":
                if name in self.indices:
                    return 400, _error("resource_already_exists_exception", f"index [{name}] already exists")
                self.indices[name] = {}
                return 200, {"acknowledged": True, "index": name}
            if method == "DELETE":
                for existing in [n for n in self.indices if fnmatch.fnmatch(n, name)]:
                    del self.indices[existing]
                return 200, {"acknowledged": True}
            exists = any(fnmatch.fnmatch(n, name) for n in self.indices)
            return (200, {name: {}}) if exists else (404, _error("index_not_found_exception", "no such index"))

    def _search(self, pattern: str, body: dict[str, Any], *, count: bool) -> tuple[int, Any]:
        hits = [(index, doc_id, source) for index, docs in self.documents(pattern).items()
                for doc_id, source in docs.items() if _matches(source, body.get("query", {"match_all": {}}))]
        if count:
            return 200, {"count": len(hits)}
        sort = body.get("sort") or []
        keys = [(next(iter(s)) if isinstance(s, dict) else s,
                 (next(iter(s.values())) if isinstance(s, dict) else {}).get("order", "asc")) for s in sort]

        def sort_values(hit: tuple[str, str, dict[str, Any]]) -> list[Any]:
            return [hit[1] if field == "_id" else hit[2].get(field) for field, _ in keys]

        for field, order in reversed(keys):
            hits.sort(key=lambda h, f=field: (h[1] if f == "_id" else h[2].get(f)) or "", reverse=order == "desc")
        after = body.get("search_after")
        if after is not None and keys:
            def beyond(hit: tuple[str, str, dict[str, Any]]) -> bool:
                for value, cursor, (_f, order) in zip(sort_values(hit), after, keys, strict=False):
                    if value != cursor:
                        return (value > cursor) if order == "asc" else (value < cursor)
                return False

            hits = [h for h in hits if beyond(h)]
        start = int(body.get("from", 0))
        page = hits[start:start + int(body.get("size", 10))]
        return 200, {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": [
            {"_index": i, "_id": d, "_score": None, "_source": s, **({"sort": sort_values((i, d, s))} if keys else {})}
            for i, d, s in page]}}


def _error(kind: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
            "status": 400}


def _matches(source: dict[str, Any], query: dict[str, Any]) -> bool:
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "bool":
        clauses_ok = all(_matches(source, q) for key in ("must", "filter") for q in spec.get(key, []))
        not_ok = any(_matches(source, q) for q in spec.get("must_not", []))
        should = spec.get("should", [])
        return clauses_ok and not not_ok and (not should or any(_matches(source, q) for q in should))
    (field, value), = spec.items()
    actual = source.get(field.removesuffix(".keyword"))
    if kind == "term":
        return actual == (value.get("value") if isinstance(value, dict) else value)
    if kind == "terms":
        return actual in value
    if kind in ("match", "match_phrase"):
        text = value.get("query") if isinstance(value, dict) else value
        return isinstance(actual, str) and str(text).lower() in actual.lower()
    if kind == "exists":
        return source.get(spec["field"]) is not None
    if kind == "range":
        if actual is None:
            return False
        ok = True
        for op, bound in value.items():
            ok &= {"gte": actual >= bound, "gt": actual > bound, "lte": actual <= bound, "lt": actual < bound}.get(op, True)
        return ok
    raise ValueError(f"unsupported query {kind}")


def _filter_path(payload: Any, paths: list[str]) -> Any:
    """OpenSearch's ``filter_path``: keep only the given dotted paths (``*`` matches any key)."""

    def keep(node: Any, parts: list[list[str]]) -> Any:
        if not parts or any(not p for p in parts):
            return node
        if isinstance(node, list):
            kept = [keep(item, parts) for item in node]
            return [k for k in kept if k is not _DROP]
        if not isinstance(node, dict):
            return _DROP
        out = {}
        for key, value in node.items():
            rest = [p[1:] for p in parts if p[0] in ("*", key)]
            if rest:
                kept = keep(value, rest)
                if kept is not _DROP and kept != {}:
                    out[key] = kept
        return out if out else _DROP

    result = keep(payload, [p.split(".") for p in paths])
    return {} if result is _DROP else result


_DROP = object()
