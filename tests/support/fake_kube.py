"""A loopback Kubernetes API server for pods and pod logs, driven by the real ``kubernetes`` client.

Implements what servelog uses, the way the API server answers it: ``GET /api/v1/pods`` (list with
``fieldSelector=spec.nodeName=`` and equality ``labelSelector``, a list resourceVersion) and
``?watch=true`` (JSON lines ``{"type", "object"}`` from a resourceVersion, ``BOOKMARK`` events when
``allowWatchBookmarks``, an ``ERROR`` event carrying a 410 ``Expired`` Status when the version was
compacted away, ``timeoutSeconds``); ``GET .../pods/{name}/log`` with ``container``, ``follow``,
``timestamps`` (nine fraction digits), ``sinceTime`` (whole seconds, inclusive) and ``previous``.
Faults: compaction (410), dropped watches and log streams, failing the next requests.
"""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


def kubelet_timestamp(ts_ns: int) -> str:
    seconds, nanos = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _parse_since(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 10**9


class FakeKube:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._rv = 100
        self._compacted = 0
        self._pods: dict[str, dict[str, Any]] = {}  # uid -> pod
        self._history: list[tuple[int, str, dict[str, Any]]] = []
        self._logs: dict[tuple[str, str, str, bool], list[tuple[int, bytes]]] = {}
        self._terminated: set[tuple[str, str, str]] = set()
        self._generation = 0  # bumps to drop open streams
        self._fail: list[int] = []
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop_streams()
        self._server.shutdown()
        self._server.server_close()

    # -- controls ----------------------------------------------------------------------------------
    def _record(self, kind: str, pod: dict[str, Any]) -> None:
        self._rv += 1
        pod = copy.deepcopy(pod)
        pod.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        self._history.append((self._rv, kind, pod))
        self._lock.notify_all()

    def add_pod(self, pod: dict[str, Any]) -> None:
        with self._lock:
            self._pods[pod["metadata"]["uid"]] = pod
            self._record("ADDED", pod)

    def update_pod(self, pod: dict[str, Any]) -> None:
        with self._lock:
            self._pods[pod["metadata"]["uid"]] = pod
            self._record("MODIFIED", pod)

    def delete_pod(self, uid: str) -> None:
        with self._lock:
            pod = self._pods.pop(uid)
            self._record("DELETED", pod)

    def compact(self) -> None:
        """Forget history: watches from older versions now get 410 Gone."""
        with self._lock:
            self._compacted = self._rv
            self._history.clear()

    def drop_streams(self) -> None:
        with self._lock:
            self._generation += 1
            self._lock.notify_all()

    def fail_next(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._fail.extend([status] * count)

    def append_log(self, namespace: str, pod: str, container: str, line: str, ts_ns: int, *,
                   previous: bool = False) -> None:
        with self._lock:
            self._logs.setdefault((namespace, pod, container, previous), []).append((ts_ns, line.encode()))
            self._lock.notify_all()

    def terminate(self, namespace: str, pod: str, container: str) -> None:
        with self._lock:
            self._terminated.add((namespace, pod, container))
            self._lock.notify_all()

    # -- protocol ----------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        segments = [s for s in parts.path.split("/") if s]
        self.requests.append(h.path)
        with self._lock:
            failure = self._fail.pop(0) if self._fail else None
        if failure is not None:
            return self._json(h, failure, _status(failure, "injected failure"))
        if segments[:2] == ["api", "v1"] and segments[2:] == ["pods"]:
            if query.get("watch") in ("true", "1"):
                return self._watch(h, query)
            return self._list(h, query)
        if segments[:3] == ["api", "v1", "namespaces"] and len(segments) == 7 and segments[6] == "log":
            return self._log(h, segments[3], segments[5], query)
        if segments[:2] == ["api", "v1"] and segments[-1] == "events":
            return self._json(h, 200, {"kind": "EventList", "metadata": {"resourceVersion": str(self._rv)}, "items": []})
        return self._json(h, 404, _status(404, "not found"))

    def _selected(self, pod: dict[str, Any], query: dict[str, str]) -> bool:
        field = query.get("fieldSelector", "")
        if field.startswith("spec.nodeName=") and (pod.get("spec") or {}).get("nodeName") != field.split("=", 1)[1]:
            return False
        labels = (pod.get("metadata") or {}).get("labels") or {}
        for term in filter(None, query.get("labelSelector", "").split(",")):
            key, _, value = term.partition("=")
            if key.endswith("!"):
                if labels.get(key[:-1]) == value:
                    return False
            elif labels.get(key) != value:
                return False
        return True

    def _list(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        with self._lock:
            items = [copy.deepcopy(p) for p in self._pods.values() if self._selected(p, query)]
            rv = self._rv
        self._json(h, 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}, "items": items})

    def _watch(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds", 300))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self._start_chunked(h, "application/json")
        with self._lock:
            generation = self._generation
            if since < self._compacted:
                self._chunk(h, orjson.dumps({"type": "ERROR", "object": _status(410, "too old resource version")}) + b"\n")
                return self._end(h)
        sent = since
        last_bookmark = time.monotonic()
        try:
            while time.monotonic() < deadline:
                with self._lock:
                    if self._generation != generation:
                        h.close_connection = True
                        return None  # dropped: no terminating chunk
                    events = [(rv, kind, pod) for rv, kind, pod in self._history if rv > sent]
                    if not events:
                        if bookmarks and time.monotonic() - last_bookmark > 0.5:
                            # nothing for us lately: tell the client how far the store has moved
                            last_bookmark = time.monotonic()
                            sent = max(sent, self._rv)
                            self._chunk(h, orjson.dumps({"type": "BOOKMARK", "object": {
                                "kind": "Pod", "metadata": {"resourceVersion": str(sent)}}}) + b"\n")
                        self._lock.wait(0.1)
                        continue
                for rv, kind, pod in events:
                    if self._selected(pod, query):
                        self._chunk(h, orjson.dumps({"type": kind, "object": pod}) + b"\n")
                    sent = rv
        except OSError:
            return None
        return self._end(h)

    def _log(self, h: BaseHTTPRequestHandler, namespace: str, pod: str, query: dict[str, str]) -> None:
        container = query.get("container", "")
        previous = query.get("previous") == "true"
        follow = query.get("follow") == "true"
        timestamps = query.get("timestamps") == "true"
        since = _parse_since(query["sinceTime"]) if "sinceTime" in query else None
        with self._lock:
            key = (namespace, pod, container, previous)
            if key not in self._logs:
                what = "previous terminated container" if previous else "container"
                return self._json(h, 400, _status(400, f'{what} "{container}" in pod "{pod}" not found'))
            generation = self._generation
        self._start_chunked(h, "text/plain")
        sent = 0
        try:
            while True:
                with self._lock:
                    lines = self._logs[key][sent:]
                    done = not follow or previous or (namespace, pod, container) in self._terminated
                    dropped = self._generation != generation
                if dropped:
                    h.close_connection = True
                    return None
                for ts_ns, line in lines:
                    sent += 1
                    if since is not None and ts_ns < since:
                        continue
                    prefix = kubelet_timestamp(ts_ns).encode() + b" " if timestamps else b""
                    self._chunk(h, prefix + line + b"\n")
                if done:
                    return self._end(h)
                with self._lock:
                    self._lock.wait(0.1)
        except OSError:
            return None

    # -- HTTP helpers ------------------------------------------------------------------------------
    def _start_chunked(self, h: BaseHTTPRequestHandler, content_type: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

    def _chunk(self, h: BaseHTTPRequestHandler, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    def _end(self, h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _json(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = orjson.dumps(payload)
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def _status(code: int, message: str) -> dict[str, Any]:
    reason = {410: "Expired", 400: "BadRequest", 404: "NotFound", 429: "TooManyRequests"}.get(code, "InternalError")
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code}
