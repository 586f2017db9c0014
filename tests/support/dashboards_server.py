"""A loopback OpenSearch Dashboards: status and the saved-objects API, refusing what the real one refuses.

Serves ``GET /api/status``, ``POST /api/saved_objects/_import``, ``POST /api/saved_objects/_bulk_get``,
``GET /api/saved_objects/_find`` and ``GET /api/saved_objects/{type}/{id}``, behind an optional base
path (``/_dashboards``, as on Amazon OpenSearch Service) and optional basic auth. The checks follow
OpenSearch Dashboards' own routes (src/core/server/saved_objects/routes/import.ts and the xsrf
lifecycle handler):

- a non-GET request without ``osd-xsrf`` is 400 "Request must contain a osd-xsrf header.";
- ``overwrite`` together with ``createNewCopies`` is 400;
- the body must be multipart/form-data with a ``file`` part whose file name ends in ``.ndjson``
  (else 400 "Invalid file extension .json");
- an object whose references resolve neither within the file nor among stored objects is not
  imported and is reported as ``missing_references``; an unknown type as ``unsupported_type``; an
  existing object without ``overwrite`` as ``conflict``. The others are imported.

Objects are stored per security tenant (the ``securitytenant`` header; None without it), and every
request's tenant header is recorded.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

KNOWN_TYPES = frozenset({"index-pattern", "search", "visualization", "dashboard", "config", "query", "url",
                         "augment-vis", "visualization-visbuilder"})


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    method: str
    path: str  # without the base path
    status: int
    tenant: str | None


class FakeDashboards:
    """See the module docstring. Use as a context manager or ``start()``/``stop()``."""

    def __init__(self, *, version: str = "2.19.1", base_path: str = "", username: str | None = None,
                 password: str | None = None) -> None:
        self.version = version
        self.base_path = base_path.rstrip("/")
        self.stored: dict[str | None, dict[tuple[str, str], dict[str, Any]]] = {}
        self.requests: list[Seen] = []
        self._auth = (username, password) if username else None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave as two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.base_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-dashboards", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeDashboards:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeDashboards:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------------------------
    def objects(self, tenant: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """The objects stored in ``tenant`` (None: requests without a tenant header)."""
        with self._lock:
            return dict(self.stored.get(tenant, {}))

    def writes(self) -> list[Seen]:
        return [r for r in self.requests if r.method != "GET"]

    # -- serving -----------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        tenant = h.headers.get("securitytenant")
        if not (parts.path == self.base_path or parts.path.startswith(self.base_path + "/")):
            return self._reply(h, parts.path, tenant, 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
        path = parts.path[len(self.base_path):] or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, payload = self._route(h, path, query, body, tenant)
        return self._reply(h, path, tenant, status, payload)

    def _route(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str], body: bytes,
               tenant: str | None) -> tuple[int, Any]:
        if self._auth is not None:
            expected = "Basic " + base64.b64encode(f"{self._auth[0]}:{self._auth[1]}".encode()).decode()
            if h.headers.get("Authorization") != expected:
                return 401, {"statusCode": 401, "error": "Unauthorized", "message": "Authentication required"}
        if h.command != "GET" and "osd-xsrf" not in {k.lower() for k in h.headers}:
            return 400, _bad_request("Request must contain a osd-xsrf header.")
        if h.command == "GET" and path == "/api/status":
            return 200, {"name": "fake-dashboards", "version": {"number": self.version, "build_snapshot": False},
                         "status": {"overall": {"id": "overall", "state": "green", "title": "Green"}, "statuses": []}}
        if h.command == "POST" and path == "/api/saved_objects/_import":
            return self._import(h, body, query, tenant)
        if h.command == "POST" and path == "/api/saved_objects/_bulk_get":
            return self._bulk_get(body, tenant)
        if h.command == "GET" and path == "/api/saved_objects/_find":
            return self._find(query, tenant)
        segments = path.split("/")
        if h.command == "GET" and len(segments) == 5 and segments[:3] == ["", "api", "saved_objects"]:
            found = self.objects(tenant).get((unquote(segments[3]), unquote(segments[4])))
            if found is None:
                return 404, {"statusCode": 404, "error": "Not Found",
                             "message": f"Saved object [{segments[3]}/{segments[4]}] not found"}
            return 200, found
        return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}

    def _import(self, h: BaseHTTPRequestHandler, body: bytes, query: dict[str, str],
                tenant: str | None) -> tuple[int, Any]:
        overwrite = query.get("overwrite") == "true"
        if overwrite and query.get("createNewCopies") == "true":
            return 400, _bad_request("[request query]: cannot use [overwrite] with [createNewCopies]")
        content_type = h.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return 415, {"statusCode": 415, "error": "Unsupported Media Type", "message": "Unsupported Media Type"}
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        file_part = next((p for p in parts if p.get_param("name", header="content-disposition") == "file"), None)
        if file_part is None:
            return 400, _bad_request("[request body.file]: expected value of type [Stream] but got [undefined]")
        filename = file_part.get_filename() or ""
        extension = filename[filename.rfind("."):].lower() if "." in filename else ""
        if extension != ".ndjson":
            return 400, _bad_request(f"Invalid file extension {extension}")
        try:
            incoming = [orjson.loads(line) for line in file_part.get_payload(decode=True).splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            return 400, _bad_request(f"Unexpected token in JSON: {exc}")
        with self._lock:
            store = self.stored.setdefault(tenant, {})
            known = set(store) | {(o.get("type"), o.get("id")) for o in incoming}
            errors, accepted = [], []
            for obj in incoming:
                key = (obj.get("type"), obj.get("id"))
                title = obj.get("attributes", {}).get("title")
                missing = [r for r in obj.get("references", []) if (r.get("type"), r.get("id")) not in known]
                if obj.get("type") not in KNOWN_TYPES:
                    error = {"type": "unsupported_type"}
                elif missing:
                    error = {"type": "missing_references",
                             "references": [{"type": r["type"], "id": r["id"]} for r in missing]}
                elif key in store and not overwrite:
                    error = {"type": "conflict"}
                else:
                    accepted.append(obj)
                    continue
                errors.append({"id": key[1], "type": key[0], "title": title, "meta": {"title": title}, "error": error})
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for obj in accepted:
                store[(obj["type"], obj["id"])] = {**obj, "updated_at": now, "version": "WzEsMV0="}
        answer: dict[str, Any] = {"successCount": len(accepted), "success": not errors}
        if accepted:
            answer["successResults"] = [{"type": o["type"], "id": o["id"],
                                         "meta": {"title": o.get("attributes", {}).get("title")}} for o in accepted]
        if errors:
            answer["errors"] = errors
        return 200, answer

    def _bulk_get(self, body: bytes, tenant: str | None) -> tuple[int, Any]:
        try:
            wanted = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, _bad_request("[request body]: expected value of type [array]")
        if not isinstance(wanted, list):
            return 400, _bad_request("[request body]: expected value of type [array]")
        store = self.objects(tenant)
        answer = []
        for item in wanted:
            key = (item.get("type"), item.get("id"))
            found = store.get(key)
            answer.append(found if found is not None else {
                "id": key[1], "type": key[0],
                "error": {"statusCode": 404, "error": "Not Found", "message": f"Saved object [{key[0]}/{key[1]}] not found"}})
        return 200, {"saved_objects": answer}

    def _find(self, query: dict[str, str], tenant: str | None) -> tuple[int, Any]:
        kinds = set(query.get("type", "").split(",")) - {""}
        search = query.get("search", "").rstrip("*").lower()
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "20"))
        hits = [o for (kind, _), o in sorted(self.objects(tenant).items())
                if (not kinds or kind in kinds) and search in str(o.get("attributes", {}).get("title", "")).lower()]
        window = hits[(page - 1) * per_page:page * per_page]
        return 200, {"page": page, "per_page": per_page, "total": len(hits), "saved_objects": window}

    def _reply(self, h: BaseHTTPRequestHandler, path: str, tenant: str | None, status: int, payload: Any) -> None:
        with self._lock:
            self.requests.append(Seen(h.command, path, status, tenant))
        data = orjson.dumps(payload)
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def _bad_request(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "error": "Bad Request", "message": message}
