"""A loopback OpenSearch Dashboards: ``/api/status`` and the saved-objects import, checked like the real one.

What real Dashboards refuses, this refuses: a write without the ``osd-xsrf`` header (400 "Request
must contain a osd-xsrf header."), a multipart body without a ``file`` part, a file name not ending
in ``.ndjson``, ``overwrite`` together with ``createNewCopies``, and objects whose references point
nowhere (reported per object as ``missing_references``). An optional base path (``/_dashboards``,
as on Amazon OpenSearch Service) and basic auth are supported; the tenant header is recorded.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


class FakeDashboards:
    def __init__(self, *, base_path: str = "", username: str | None = None, password: str | None = None,
                 version: str = "2.19.1") -> None:
        self.base_path = base_path.rstrip("/")
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.tenants: list[str | None] = []
        self.imports = 0
        self._auth = (username, password) if username else None
        self._version = version
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._serve(self)

            do_POST = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.base_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeDashboards:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if not parts.path.startswith(self.base_path + "/"):
            return self._reply(h, 404, {"statusCode": 404, "error": "Not Found"})
        path = parts.path[len(self.base_path):]
        if self._auth is not None:
            expected = "Basic " + base64.b64encode(f"{self._auth[0]}:{self._auth[1]}".encode()).decode()
            if h.headers.get("Authorization") != expected:
                return self._reply(h, 401, {"statusCode": 401, "error": "Unauthorized"})
        if h.command == "GET" and path == "/api/status":
            return self._reply(h, 200, {"version": {"number": self._version}, "status": {"overall": {"state": "green"}}})
        if h.command == "GET" and path.startswith("/api/saved_objects/"):
            _, _, _, kind, object_id = path.split("/", 4)
            found = self.objects.get((kind, object_id))
            return self._reply(h, 200 if found else 404, found or {"statusCode": 404, "error": "Not Found"})
        if h.command == "POST" and path == "/api/saved_objects/_import":
            return self._import(h, body, {k: v[-1] for k, v in parse_qs(parts.query).items()})
        return self._reply(h, 404, {"statusCode": 404, "error": "Not Found"})

    def _import(self, h: BaseHTTPRequestHandler, body: bytes, query: dict[str, str]) -> None:
        if "osd-xsrf" not in {k.lower() for k in h.headers}:
            return self._reply(h, 400, {"statusCode": 400, "error": "Bad Request",
                                        "message": "Request must contain a osd-xsrf header."})
        if query.get("overwrite") == "true" and query.get("createNewCopies") == "true":
            return self._reply(h, 400, {"statusCode": 400, "message": "overwrite and createNewCopies cannot be used together"})
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + h.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + body)
        file_part = next((p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"),
                         None) if message.is_multipart() else None
        if file_part is None:
            return self._reply(h, 400, {"statusCode": 400, "message": "[request body.file]: expected value of type [object]"})
        filename = file_part.get_filename() or ""
        if not filename.endswith(".ndjson"):
            ext = filename[filename.rfind("."):] if "." in filename else filename
            return self._reply(h, 400, {"statusCode": 400, "message": f"Invalid file extension {ext}"})
        self.tenants.append(h.headers.get("securitytenant"))
        incoming = [orjson.loads(line) for line in file_part.get_payload(decode=True).splitlines() if line.strip()]
        known = set(self.objects) | {(o["type"], o["id"]) for o in incoming}
        errors = []
        for obj in incoming:
            missing = [r for r in obj.get("references", []) if (r["type"], r["id"]) not in known]
            if missing:
                errors.append({"id": obj["id"], "type": obj["type"], "error": {
                    "type": "missing_references", "references": [{"type": r["type"], "id": r["id"]} for r in missing]}})
        if not errors:
            for obj in incoming:
                self.objects[(obj["type"], obj["id"])] = obj
            self.imports += 1
        self._reply(h, 200, {"success": not errors, "successCount": 0 if errors else len(incoming), "errors": errors})

    def _reply(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = orjson.dumps(payload)
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
