"""A loopback Kubernetes API server (pods, pod logs, events, InferenceServices) for the real ``kubernetes`` client.

Why: servelog's pod watch and API log source must be tested against the wire protocol the real
client speaks (chunked JSON-lines watches, ``ERROR`` events inside a 200 stream, ``pods/log``
streams), not against a mocked client. This server implements the part of the API servelog uses,
the way the API server answers it:

- ``GET /api/v1/pods``, ``/api/v1/namespaces/{ns}/pods``: a PodList whose ``metadata.resourceVersion``
  is the store's current version; ``limit`` + ``continue`` pages read from one snapshot, an expired
  continue token answering ``410 Expired``, ``resourceVersion=0`` answered unpaged as the watch cache
  does (:mod:`tests.support.kube_lists`); ``fieldSelector`` (``=``, ``==``, ``!=`` on any dotted path, e.g.
  ``spec.nodeName=node-1``) and ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``,
  ``key``, ``!key``).
- ``?watch=true``: JSON lines ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`` from
  ``resourceVersion`` on (unset or ``0``: the current objects as ``ADDED`` first), chunked;
  ``BOOKMARK`` events when ``allowWatchBookmarks`` (every ``bookmark_interval`` seconds of silence,
  or on :meth:`send_bookmark`); the stream ends cleanly after ``timeoutSeconds``. A
  ``resourceVersion`` older than the compaction point (:meth:`compact`) gets an ``ERROR`` event
  carrying a 410 ``Expired`` Status inside the 200 stream, as the watch cache answers (or an HTTP
  410 with ``gone_as_status=True``). Selector transitions are honoured: an object that stops
  matching arrives as ``DELETED``, one that starts matching as ``ADDED``.
- ``GET /api/v1/namespaces/{ns}/pods/{name}``; 404 Status when missing.
- ``GET /api/v1/namespaces/{ns}/pods/{name}/log``: ``container`` (required when the pod has several),
  ``follow``, ``timestamps`` (RFC 3339 UTC with nine fraction digits, then a space), ``sinceTime``
  (whole seconds: lines at or after that second), ``previous`` (the previous instance; 400 when
  there is none), ``limitBytes``, ``tailLines``. As the kubelet (``validateContainerLogStatus``), a
  container the pod's status shows waiting after a crash (``lastState.terminated``) is served from
  that ended instance with or without ``previous``, and one waiting before any start is a 400. A
  follow stays open and sends lines appended later; it ends when the container terminates (or
  restarts), or is cut by :meth:`drop_log_streams`.
- ``GET /api/v1/events``, ``/api/v1/namespaces/{ns}/events``: list and watch, as for pods; the same
  Events also through ``/apis/events.k8s.io/v1/[namespaces/{ns}/]events`` in that API's shape
  (converted on the fly: :mod:`tests.support.kube_objects`). Events may be given in either shape.
- ``GET /apis/serving.kserve.io/v1beta1/[namespaces/{ns}/]inferenceservices``: list and watch (410
  included), ``.../namespaces/{ns}/inferenceservices/{name}``: one (404 when missing); a 404 like a
  cluster without the KServe CRD when ``kserve_installed`` is false.
- ``GET /apis/apps/v1/[namespaces/{ns}/]deployments``: list (``labelSelector``) and watch.

Test controls: :meth:`add_pod`, :meth:`update_pod`, :meth:`delete_pod`, :meth:`add_event`,
:meth:`repeat_event` (count or series growth), :meth:`delete_event`, :meth:`add_isvc`,
:meth:`update_isvc`, :meth:`delete_isvc`, :meth:`install_kserve`, :meth:`add_deployment`, :meth:`touch`,
:meth:`compact`, :meth:`expire_lists`, :meth:`drop_watches`,
:meth:`stall_watches`, :meth:`send_bookmark`, :meth:`append_log`, :meth:`terminate_container`, :meth:`restart_container`,
:meth:`drop_log_streams`, :meth:`fail_next` (e.g. 429 with ``Retry-After``, 500), :meth:`clear_failures`, :meth:`set_delay`.
``requests`` records every request line, ``items_listed`` / :meth:`listed_items` the objects list answers
sent. Binds 127.0.0.1 on port 0; :meth:`close` cuts every
connection and joins every thread.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from tests.support.kube_lists import BadContinue, ContinueExpired, ListSnapshots
from tests.support.kube_objects import ISVC_API, as_core_event, core_event_to_v1, repeated

RESOURCES = {"pods": ("Pod", "PodList"), "events": ("Event", "EventList"),
             "inferenceservices": ("InferenceService", "InferenceServiceList"),
             "deployments": ("Deployment", "DeploymentList")}
API_VERSIONS = {"pods": "v1", "events": "v1", "inferenceservices": ISVC_API, "deployments": "apps/v1"}

_COLLECTION = re.compile(r"^/api/v1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<resource>pods|events)$")
_ITEM = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<resource>pods|events)/(?P<name>[^/]+)$")
_EVENTS_V1 = re.compile(r"^/apis/events\.k8s\.io/v1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<resource>events)$")
_ISVC = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<resource>inferenceservices)$")
_ISVC_ITEM = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/(?P<ns>[^/]+)/(?P<resource>inferenceservices)/"
                        r"(?P<name>[^/]+)$")
_DEPLOYMENTS = re.compile(r"^/apis/apps/v1/(?:namespaces/(?P<ns>[^/]+)/)?(?P<resource>deployments)$")
_LOG = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$")


View = Callable[[dict[str, Any]], dict[str, Any]]


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


# -- wire formats ----------------------------------------------------------------------------------
def kubelet_timestamp(ts_ns: int) -> str:
    """The kubelet's ``timestamps=true`` prefix: RFC 3339 UTC with exactly nine fraction digits."""
    seconds, nanos = divmod(ts_ns, 10**9)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def rfc3339(ts_ns: int) -> str:
    """An API object timestamp (whole seconds, as metav1.Time serialises)."""
    return datetime.fromtimestamp(ts_ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since_time(text: str) -> int:
    """``sinceTime`` as nanoseconds, truncated to the whole second (metav1.Time precision)."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("sinceTime needs a time zone")
    return int(parsed.timestamp()) * 10**9


def status_body(code: int, message: str, *, reason: str | None = None,
                details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` object as the API server returns it for failures."""
    reason = reason or {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists",
                        410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                        504: "Timeout"}.get(code, "Unknown")
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = dict(details)
    return body


# -- selectors -------------------------------------------------------------------------------------
class SelectorError(ValueError):
    """A selector the API server would refuse with 400."""


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return [t for t in terms if t]


_SET_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)$")
_EQ_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)$")
_EXISTS_TERM = re.compile(r"^(?P<neg>!)?\s*(?P<key>[^\s!=()]+)$")


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector (every requirement must hold)."""
    for term in _split_terms(selector):
        if match := _SET_TERM.match(term):
            values = {v.strip() for v in match["values"].split(",") if v.strip()}
            present = match["key"] in labels and labels[match["key"]] in values
            if present != (match["op"] == "in"):
                return False
        elif match := _EQ_TERM.match(term):
            equal = labels.get(match["key"]) == match["value"]
            if match["op"] == "!=":
                if equal:
                    return False
            elif not equal:
                return False
        elif match := _EXISTS_TERM.match(term):
            if (match["key"] in labels) == bool(match["neg"]):
                return False
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return True


def _dotted(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    return "true" if node is True else "false" if node is False else str(node)


def field_selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` satisfies a field selector (``path=value``, ``path==value``, ``path!=value``)."""
    for term in _split_terms(selector):
        match = re.match(r"^(?P<key>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$", term)
        if match is None:
            raise SelectorError(f"invalid field selector: {term!r}")
        equal = _dotted(obj, match["key"]) == match["value"]
        if (match["op"] == "!=") == equal:
            return False
    return True


# -- state -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Change:
    rv: int
    kind: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclasses.dataclass
class _Instance:
    """One container instance's log."""

    lines: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)
    terminated: bool = False


@dataclasses.dataclass
class _ContainerLog:
    current: _Instance = dataclasses.field(default_factory=_Instance)
    previous: _Instance | None = None


@dataclasses.dataclass
class _Failure:
    status: int
    retry_after: float | None
    path: str | Callable[[str], bool] | None

    def matches(self, request_path: str) -> bool:
        if self.path is None:
            return True
        return self.path(request_path) if callable(self.path) else self.path in request_path


class _StreamCut(Exception):
    """The test asked to cut this stream (drop), or the client went away: close without the final chunk."""


def _client_gone(h: BaseHTTPRequestHandler) -> bool:
    """Whether the client closed its end (a readable socket with nothing to read is EOF)."""
    try:
        readable, _, _ = select.select([h.connection], [], [], 0)
        return bool(readable) and h.connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: nothing outlives the fixture
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, owner: KubeApiServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def cut_all(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests instead
        return

    def do_GET(self) -> None:
        try:
            self.server.owner._serve(self)
        except (_StreamCut, OSError):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    # -- response helpers --
    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class KubeApiServer:
    """The loopback API server (see the module docstring). Use as a context manager."""

    def __init__(self, *, bookmark_interval: float = 1.0, gone_as_status: bool = False,
                 default_watch_timeout: float = 1800.0, start_rv: int = 1000, kserve_installed: bool = True,
                 watch_cache: bool = True) -> None:
        self.bookmark_interval = bookmark_interval
        self.watch_cache = watch_cache
        self._lists = ListSnapshots()
        self.kserve_installed = kserve_installed
        self.gone_as_status = gone_as_status
        self.default_watch_timeout = default_watch_timeout
        self.requests: list[str] = []
        self.items_listed: dict[str, int] = {}  # objects sent in list responses, per resource (bounded reads)
        self._cond = threading.Condition()
        self._rv = start_rv
        self._compacted = 0
        self._store: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCES}
        self._history: dict[str, list[_Change]] = {name: [] for name in RESOURCES}
        self._logs: dict[tuple[str, str, str], _ContainerLog] = {}
        self._watch_epoch = 0
        self._log_epoch = 0
        self._bookmark_epoch = 0
        self._stalled_until = 0.0
        self._failures: list[_Failure] = []
        self._delays: list[tuple[float, str | None]] = []
        self._open_watches = 0
        self._open_logs = 0
        self._closing = False
        self._httpd = _HTTPServer(self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kube-api-server", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> KubeApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.cut_all()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- objects -----------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    @property
    def open_watches(self) -> int:
        with self._cond:
            return self._open_watches

    @property
    def open_log_streams(self) -> int:
        with self._cond:
            return self._open_logs

    def _record(self, resource: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        self._history[resource].append(_Change(self._rv, kind, copy.deepcopy(obj), copy.deepcopy(old)))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _prepare(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = RESOURCES[resource][0]
        obj = copy.deepcopy(dict(obj))
        obj.setdefault("apiVersion", API_VERSIONS[resource])
        obj.setdefault("kind", kind)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(time.time_ns()))
        if not meta.get("name"):
            raise ValueError(f"a {kind} needs metadata.name")
        return obj

    def _find(self, resource: str, key: str | Mapping[str, Any]) -> str:
        """The uid of an object given its uid, or an object (its uid, else namespace + name)."""
        store = self._store[resource]
        if isinstance(key, str):
            if key in store:
                return key
            raise KeyError(f"no {resource} with uid {key}")
        meta = key.get("metadata") or {}
        if meta.get("uid") in store:
            return str(meta["uid"])
        for uid, obj in store.items():
            if (obj["metadata"].get("namespace"), obj["metadata"]["name"]) == (meta.get("namespace", "default"),
                                                                             meta.get("name")):
                return uid
        raise KeyError(f"no {resource} {meta.get('namespace')}/{meta.get('name')}")

    def add_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        """Create a pod (ADDED); the stored copy (with uid and resourceVersion) is returned."""
        obj = self._prepare("pods", pod)
        meta = obj["metadata"]
        with self._cond:
            if meta["uid"] in self._store["pods"]:
                raise ValueError(f"pod uid {meta['uid']} exists")
            for key in [k for k in self._logs if k[:2] == (meta["namespace"], meta["name"])]:
                del self._logs[key]  # a new pod under an old name starts with no logs
            self._store["pods"][meta["uid"]] = obj
            return self._record("pods", "ADDED", obj, None)

    def update_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a pod (MODIFIED), found by uid or namespace/name."""
        with self._cond:
            uid = self._find("pods", pod)
            old = self._store["pods"][uid]
            obj = copy.deepcopy(dict(pod))
            obj.setdefault("apiVersion", "v1")
            obj.setdefault("kind", "Pod")
            obj.setdefault("metadata", {})["uid"] = uid
            obj["metadata"].setdefault("namespace", old["metadata"]["namespace"])
            obj["metadata"].setdefault("creationTimestamp", old["metadata"].get("creationTimestamp"))
            self._store["pods"][uid] = obj
            return self._record("pods", "MODIFIED", obj, old)

    def delete_pod(self, pod: str | Mapping[str, Any]) -> dict[str, Any]:
        """Delete a pod (DELETED, carrying its final state), given its uid or the pod."""
        with self._cond:
            uid = self._find("pods", pod)
            old = self._store["pods"].pop(uid)
            obj = copy.deepcopy(old)
            obj["metadata"].setdefault("deletionTimestamp", rfc3339(time.time_ns()))
            return self._record("pods", "DELETED", obj, old)

    def pods(self) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(p) for p in self._store["pods"].values()]

    def add_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Create an Event (ADDED), given in either shape; the stored core/v1 copy is returned."""
        obj = self._prepare("events", as_core_event(event))
        with self._cond:
            self._store["events"][obj["metadata"]["uid"]] = obj
            return self._record("events", "ADDED", obj, None)

    def update_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an Event (MODIFIED), given in either shape, found by uid or namespace/name."""
        with self._cond:
            uid = self._find("events", event)
            old = self._store["events"][uid]
            obj = as_core_event(event)
            obj.setdefault("metadata", {})["uid"] = uid
            self._store["events"][uid] = obj
            return self._record("events", "MODIFIED", obj, old)

    def repeat_event(self, event: str | Mapping[str, Any], when: str) -> dict[str, Any]:
        """The event happens once more at ``when``: its count (or series) grows (a MODIFIED)."""
        with self._cond:
            uid = self._find("events", event)
            return self.update_event(repeated(self._store["events"][uid], when))

    def delete_event(self, event: str | Mapping[str, Any]) -> dict[str, Any]:
        """The event expires (its TTL, an hour by default): DELETED."""
        with self._cond:
            uid = self._find("events", event)
            old = self._store["events"].pop(uid)
            return self._record("events", "DELETED", copy.deepcopy(old), old)

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(e) for e in self._store["events"].values()]

    # -- InferenceServices -------------------------------------------------------------------------
    def install_kserve(self, installed: bool = True) -> None:
        """Install (or remove) the InferenceService CRD: without it its paths answer 404."""
        with self._cond:
            self.kserve_installed = installed

    def add_isvc(self, isvc: Mapping[str, Any]) -> dict[str, Any]:
        """Create an InferenceService (ADDED); the stored copy is returned."""
        obj = self._prepare("inferenceservices", isvc)
        with self._cond:
            self._store["inferenceservices"][obj["metadata"]["uid"]] = obj
            return self._record("inferenceservices", "ADDED", obj, None)

    def update_isvc(self, isvc: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an InferenceService (MODIFIED: its status changed), found by uid or namespace/name."""
        with self._cond:
            uid = self._find("inferenceservices", isvc)
            old = self._store["inferenceservices"][uid]
            obj = copy.deepcopy(dict(isvc))
            obj.setdefault("apiVersion", ISVC_API)
            obj.setdefault("kind", "InferenceService")
            obj.setdefault("metadata", {})["uid"] = uid
            obj["metadata"].setdefault("namespace", old["metadata"]["namespace"])
            self._store["inferenceservices"][uid] = obj
            return self._record("inferenceservices", "MODIFIED", obj, old)

    def delete_isvc(self, isvc: str | Mapping[str, Any]) -> dict[str, Any]:
        with self._cond:
            uid = self._find("inferenceservices", isvc)
            old = self._store["inferenceservices"].pop(uid)
            return self._record("inferenceservices", "DELETED", copy.deepcopy(old), old)

    # -- Deployments (apps/v1) ---------------------------------------------------------------------
    def add_deployment(self, deployment: Mapping[str, Any]) -> dict[str, Any]:
        """Create an apps/v1 Deployment (ADDED); the stored copy is returned."""
        obj = self._prepare("deployments", deployment)
        with self._cond:
            self._store["deployments"][obj["metadata"]["uid"]] = obj
            return self._record("deployments", "ADDED", obj, None)

    # -- faults ------------------------------------------------------------------------------------
    def touch(self) -> None:
        """Cluster activity in resources nobody here watches (leases, endpoints): the resourceVersion moves on."""
        with self._cond:
            self._rv += 1

    def compact(self) -> None:
        """Forget history up to now: watches from an older resourceVersion get 410 Expired, and so do the
        continue tokens of lists whose snapshot is older (etcd compacted it away)."""
        with self._cond:
            self._compacted = self._rv
            self._lists.expire(before=self._rv)

    def expire_lists(self, *, after_pages: int = 0) -> None:
        """Every continue token handed out so far expires (410 with an inconsistent remainder token); with
        ``after_pages``, once that many more list pages were served (a list in progress expires midway)."""
        with self._cond:
            if after_pages:
                self._lists.expire_after(after_pages)
            else:
                self._lists.expire()

    @property
    def list_pages_served(self) -> int:
        with self._cond:
            return self._lists.pages_served

    def drop_watches(self) -> None:
        """Cut every open watch connection (no final chunk: the client sees a broken stream)."""
        with self._cond:
            self._watch_epoch += 1
            self._cond.notify_all()

    def stall_watches(self, seconds: float) -> None:
        """Open watches send nothing (events, bookmarks) for ``seconds``; then catch up."""
        with self._cond:
            self._stalled_until = time.monotonic() + seconds
            self._cond.notify_all()

    def send_bookmark(self) -> None:
        """Every open watch that asked for bookmarks gets one now."""
        with self._cond:
            self._bookmark_epoch += 1
            self._cond.notify_all()

    def drop_log_streams(self) -> None:
        """Cut every open ``pods/log`` stream."""
        with self._cond:
            self._log_epoch += 1
            self._cond.notify_all()

    def drop_streams(self) -> None:
        """Cut every open stream, watches and logs."""
        self.drop_watches()
        self.drop_log_streams()

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None,
                  path: str | Callable[[str], bool] | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (a Status body, ``Retry-After`` if given);
        only requests whose path contains ``path`` (or satisfies it, when callable) count."""
        with self._cond:
            self._failures.extend(_Failure(status, retry_after, path) for _ in range(count))

    def listed_items(self, resource: str) -> int:
        """How many objects of ``resource`` (``pods``, ``events``...) list answers have sent so far."""
        with self._cond:
            return self.items_listed.get(resource, 0)

    def clear_failures(self) -> None:
        """Forget the failures :meth:`fail_next` still holds."""
        with self._cond:
            self._failures.clear()

    def set_delay(self, seconds: float, *, path: str | None = None) -> None:
        """Wait ``seconds`` before answering each request (whose path contains ``path``); 0 clears."""
        with self._cond:
            self._delays = [(s, p) for s, p in self._delays if p != path]
            if seconds > 0:
                self._delays.append((seconds, path))

    # -- logs --------------------------------------------------------------------------------------
    def _container_log(self, namespace: str, pod: str, container: str) -> _ContainerLog:
        return self._logs.setdefault((namespace, pod, container), _ContainerLog())

    def append_log(self, namespace: str, pod: str, container: str, line: str | bytes, ts_ns: int | None = None,
                   *, previous: bool = False) -> int:
        """Append one line (no newline) to the current (or previous) instance; its timestamp is returned."""
        ts_ns = time.time_ns() if ts_ns is None else ts_ns
        data = line.encode() if isinstance(line, str) else line
        with self._cond:
            record = self._container_log(namespace, pod, container)
            if previous:
                if record.previous is None:
                    record.previous = _Instance(terminated=True)
                record.previous.lines.append((ts_ns, data))
            else:
                record.current.lines.append((ts_ns, data))
            self._cond.notify_all()
        return ts_ns

    def terminate_container(self, namespace: str, pod: str, container: str, *, exit_code: int = 0,
                            reason: str = "Completed", update_status: bool = True) -> None:
        """The container's current instance ends: follows end after its last line; the pod's
        status shows it terminated (a MODIFIED event) unless ``update_status`` is false."""
        with self._cond:
            self._container_log(namespace, pod, container).current.terminated = True
            if update_status:
                self._set_container_state(namespace, pod, container, terminated={
                    "exitCode": exit_code, "reason": reason, "startedAt": None,
                    "finishedAt": rfc3339(time.time_ns())})
            self._cond.notify_all()

    def terminate(self, namespace: str, pod: str, container: str) -> None:
        """Shorthand for :meth:`terminate_container` with its defaults."""
        self.terminate_container(namespace, pod, container)

    def restart_container(self, namespace: str, pod: str, container: str, *, exit_code: int = 1,
                          reason: str = "Error") -> None:
        """The current instance terminates and becomes the previous one; a new instance starts
        (restartCount + 1, ``lastState.terminated``)."""
        with self._cond:
            record = self._container_log(namespace, pod, container)
            record.current.terminated = True
            record.previous, record.current = record.current, _Instance()
            now = rfc3339(time.time_ns())
            self._set_container_state(namespace, pod, container, restart=True,
                                      last={"exitCode": exit_code, "reason": reason, "finishedAt": now})
            self._cond.notify_all()

    def _set_container_state(self, namespace: str, pod: str, container: str, *,
                             terminated: dict[str, Any] | None = None, restart: bool = False,
                             last: dict[str, Any] | None = None) -> None:
        try:
            uid = self._find("pods", {"metadata": {"namespace": namespace, "name": pod}})
        except KeyError:
            return  # logs of a pod the store does not hold: nothing to update
        old = self._store["pods"][uid]
        obj = copy.deepcopy(old)
        status = obj.setdefault("status", {})
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in status.get(key) or []:
                if cs.get("name") != container:
                    continue
                if terminated is not None:
                    started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
                    cs["state"] = {"terminated": {**terminated, "startedAt": started or terminated["finishedAt"]}}
                    cs["ready"] = False
                    cs["started"] = False
                if restart:
                    cs["restartCount"] = int(cs.get("restartCount") or 0) + 1
                    cs["lastState"] = {"terminated": {**(last or {}), "startedAt": (
                        (cs.get("state") or {}).get("running") or {}).get("startedAt") or (last or {}).get("finishedAt")}}
                    cs["state"] = {"running": {"startedAt": rfc3339(time.time_ns())}}
        self._store["pods"][uid] = obj
        self._record("pods", "MODIFIED", obj, old)

    # -- protocol ----------------------------------------------------------------------------------
    def _serve(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._cond:
            self.requests.append(f"GET {h.path}")
            failure = next((f for f in self._failures if f.matches(h.path)), None)
            if failure is not None:
                self._failures.remove(failure)
            delay = sum(s for s, p in self._delays if p is None or p in h.path)
        if delay:
            time.sleep(delay)
        if failure is not None:
            headers = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after is not None else None
            return h.send_json(failure.status, status_body(failure.status, "injected failure"), headers)
        if match := _LOG.match(path):
            return self._log(h, match["ns"], match["name"], query)
        if match := _COLLECTION.match(path):
            return self._collection(h, match["resource"], match["ns"], query, None, "v1")
        if match := _EVENTS_V1.match(path):
            return self._collection(h, "events", match["ns"], query, core_event_to_v1, "events.k8s.io/v1")
        if (match := _ISVC.match(path)) and self.kserve_installed:
            return self._collection(h, "inferenceservices", match["ns"], query, None, ISVC_API)
        if (match := _ISVC_ITEM.match(path)) and self.kserve_installed:
            return self._get(h, "inferenceservices", match["ns"], match["name"])
        if match := _DEPLOYMENTS.match(path):
            return self._collection(h, "deployments", match["ns"], query, None, "apps/v1")
        if match := _ITEM.match(path):
            return self._get(h, match["resource"], match["ns"], match["name"])
        return h.send_json(404, status_body(404, f"the server could not find the requested resource ({path})"))

    def _selects(self, obj: Mapping[str, Any] | None, namespace: str | None, query: Mapping[str, str]) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if namespace and meta.get("namespace") != namespace:
            return False
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        return (field_selector_matches(query.get("fieldSelector", ""), obj)
                and label_selector_matches(query.get("labelSelector", ""), labels))

    def _check_selectors(self, h: _Handler, query: Mapping[str, str]) -> bool:
        try:
            field_selector_matches(query.get("fieldSelector", ""), {})
            label_selector_matches(query.get("labelSelector", ""), {})
        except SelectorError as exc:
            h.send_json(400, status_body(400, str(exc)))
            return False
        return True

    def _collection(self, h: _Handler, resource: str, namespace: str | None, query: Mapping[str, str],
                    view: View | None, api_version: str) -> None:
        """A list or a watch of ``resource``, each object shown through ``view`` (the API's shape)."""
        if query.get("watch") in ("true", "1"):
            return self._watch(h, resource, namespace, query, view or _same, api_version)
        return self._list(h, resource, namespace, query, view or _same, api_version)

    def _list(self, h: _Handler, resource: str, namespace: str | None, query: Mapping[str, str],
              view: View, api_version: str) -> None:
        if not self._check_selectors(h, query):
            return
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            return h.send_json(400, status_body(400, f"invalid limit {query.get('limit')!r}"))
        if query.get("continue") and query.get("resourceVersion") not in (None, "", "0"):
            return h.send_json(400, status_body(400, "specifying resource version is not allowed when using continue"))
        if query.get("resourceVersion") == "0" and self.watch_cache and not query.get("continue"):
            limit = 0  # answered from the watch cache, which ignores limit
        with self._cond:
            try:
                chunk, rv, token = self._lists.page(resource, self._store[resource].values, self._rv, limit=limit,
                                                    token=query.get("continue", ""))
            except ContinueExpired as exc:
                body = status_body(410, str(exc), reason="Expired")
                body["metadata"] = {"continue": exc.remainder} if exc.remainder else {}
                return h.send_json(410, body)
            except BadContinue as exc:
                return h.send_json(400, status_body(400, str(exc)))
        items = [view(o) for o in chunk if self._selects(o, namespace, query)]
        with self._cond:
            self.items_listed[resource] = self.items_listed.get(resource, 0) + len(items)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
        h.send_json(200, {"kind": RESOURCES[resource][1], "apiVersion": api_version, "metadata": meta, "items": items})

    def _get(self, h: _Handler, resource: str, namespace: str, name: str) -> None:
        with self._cond:
            found = next((copy.deepcopy(o) for o in self._store[resource].values()
                          if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name), None)
        if found is None:
            return h.send_json(404, status_body(404, f'{resource} "{name}" not found',
                                                details={"name": name, "kind": resource}))
        return h.send_json(200, found)

    def _watch_events(self, resource: str, namespace: str | None, query: Mapping[str, str],
                      after: int, view: View = lambda o: o) -> tuple[list[dict[str, Any]], int]:
        """Events after ``after`` as this watcher sees them (selector transitions applied)."""
        out = []
        for change in self._history[resource]:
            if change.rv <= after:
                continue
            now_in, was_in = self._selects(change.obj, namespace, query), self._selects(change.old, namespace, query)
            kind = change.kind
            if kind == "MODIFIED" and not was_in:
                kind = "ADDED"
            elif kind == "MODIFIED" and not now_in:
                kind = "DELETED"
            if (kind == "DELETED" and was_in) or (kind != "DELETED" and now_in):
                out.append({"type": kind, "object": view(change.obj)})
        return out, self._rv

    def _watch(self, h: _Handler, resource: str, namespace: str | None, query: Mapping[str, str],
               view: View, api_version: str) -> None:
        if not self._check_selectors(h, query):
            return
        raw_rv = query.get("resourceVersion", "")
        try:
            since = int(raw_rv) if raw_rv not in ("", "0") else None
        except ValueError:
            return h.send_json(400, status_body(400, f"invalid resource version {raw_rv!r}"))
        timeout = float(query.get("timeoutSeconds") or self.default_watch_timeout)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        deadline = time.monotonic() + timeout
        kind_name = RESOURCES[resource][0]
        with self._cond:
            expired = since is not None and since < self._compacted
            compacted = self._compacted
            if expired and self.gone_as_status:
                return h.send_json(410, status_body(410, f"too old resource version: {since} ({compacted})"))
            if since is None:
                initial = [{"type": "ADDED", "object": view(copy.deepcopy(o))}
                           for o in self._store[resource].values() if self._selects(o, namespace, query)]
                sent = self._rv
            else:
                initial, sent = [], since
            epoch, bookmark_epoch = self._watch_epoch, self._bookmark_epoch
            self._open_watches += 1
        try:
            h.start_chunked("application/json")
            if expired:
                error = status_body(410, f"too old resource version: {since} ({compacted})", reason="Expired")
                h.chunk(orjson.dumps({"type": "ERROR", "object": error}) + b"\n")
                return h.end_chunked()
            h.chunk(b"".join(orjson.dumps(e) + b"\n" for e in initial))
            last_write = time.monotonic()
            while True:
                with self._cond:
                    while True:
                        now = time.monotonic()
                        if self._closing or self._watch_epoch != epoch or _client_gone(h):
                            raise _StreamCut
                        stalled = now < self._stalled_until  # a stalled connection sends nothing, not even its end
                        if now >= deadline and not stalled:
                            break
                        if not stalled:
                            events, latest = self._watch_events(resource, namespace, query, sent, view)
                            forced = bookmarks and self._bookmark_epoch != bookmark_epoch
                            due = bookmarks and now - last_write >= self.bookmark_interval
                            if events or forced or due:
                                break
                        self._cond.wait(min(0.05, max(0.001, deadline - now)))
                    if now >= deadline:
                        return h.end_chunked()  # timeoutSeconds: a clean end
                    bookmark_epoch = self._bookmark_epoch
                    sent = latest
                payload = b"".join(orjson.dumps(e) + b"\n" for e in events)
                if bookmarks and not events:
                    payload = orjson.dumps({"type": "BOOKMARK", "object": {
                        "kind": kind_name, "apiVersion": api_version, "metadata": {"resourceVersion": str(sent)}}}) + b"\n"
                h.chunk(payload)
                last_write = time.monotonic()
        finally:
            with self._cond:
                self._open_watches -= 1

    def _log(self, h: _Handler, namespace: str, name: str, query: Mapping[str, str]) -> None:
        with self._cond:
            pod = next((copy.deepcopy(o) for o in self._store["pods"].values()
                        if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name), None)
        if pod is None:
            return h.send_json(404, status_body(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"}))
        spec = pod.get("spec") or {}
        containers = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        container = query.get("container", "")
        if not container:
            if len(containers) != 1:
                return h.send_json(400, status_body(400, (
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
                    + (f" or one of the init containers: [{' '.join(init)}]" if init else ""))))
            container = containers[0]
        if container not in containers and container not in init:
            return h.send_json(400, status_body(400, f"container {container} is not valid for pod {name}"))
        follow = query.get("follow") in ("true", "1")
        timestamps = query.get("timestamps") in ("true", "1")
        previous = query.get("previous") in ("true", "1")
        try:
            since = parse_since_time(query["sinceTime"]) if query.get("sinceTime") else None
            limit = int(query["limitBytes"]) if query.get("limitBytes") else None
            tail = int(query["tailLines"]) if query.get("tailLines") else None
        except ValueError as exc:
            return h.send_json(400, status_body(400, f"invalid log options: {exc}"))
        state, crashed = _container_state(pod, container)
        if state == "waiting" and not crashed and not previous:
            return h.send_json(400, status_body(400, f'container "{container}" in pod "{name}" is waiting to start'))
        with self._cond:
            record = self._container_log(namespace, name, container)
            # the kubelet serves a container waiting to restart from the instance that ended (validateContainerLogStatus)
            instance = record.previous if previous or (state == "waiting" and crashed) else record.current
            epoch = self._log_epoch
            if instance is not None:
                self._open_logs += 1
        if instance is None:
            return h.send_json(400, status_body(400, f'previous terminated container "{container}" in pod "{name}" '
                                                     "not found"))
        try:
            h.start_chunked("text/plain")
            for piece in self._log_pieces(h, instance, epoch, follow=follow and not previous, since=since, tail=tail,
                                          timestamps=timestamps, limit=limit):
                h.chunk(piece)
            h.end_chunked()
        finally:
            with self._cond:
                self._open_logs -= 1

    def _log_pieces(self, h: _Handler, instance: _Instance, epoch: int, *, follow: bool, since: int | None, tail: int | None,
                    timestamps: bool, limit: int | None) -> Iterator[bytes]:
        """The bytes of one ``pods/log`` response, piece by piece as lines exist."""
        with self._cond:
            pending = list(instance.lines)
            sent = len(pending)
        pending = [(ts, line) for ts, line in pending if since is None or ts >= since]
        if tail is not None:
            pending = pending[-tail:] if tail > 0 else []
        budget = limit
        while True:
            out = []
            for ts_ns, line in pending:
                if since is not None and ts_ns < since:
                    continue
                text = (kubelet_timestamp(ts_ns).encode() + b" " if timestamps else b"") + line + b"\n"
                if budget is not None:
                    text = text[:budget]
                    budget -= len(text)
                out.append(text)
                if budget is not None and budget <= 0:
                    break
            if out:
                yield b"".join(out)
            if budget is not None and budget <= 0:
                return  # limitBytes reached (possibly mid-line, as the kubelet does)
            with self._cond:
                while True:
                    if self._closing or self._log_epoch != epoch or _client_gone(h):
                        raise _StreamCut
                    pending = instance.lines[sent:]
                    done = not follow or instance.terminated
                    if pending or done:
                        break
                    self._cond.wait(0.05)
                sent += len(pending)
            if not pending and done:
                return


def _container_state(pod: Mapping[str, Any], container: str) -> tuple[str, bool]:
    """(the container's state in the pod status: running | terminated | waiting | "", whether an instance ended)."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                state = next(iter(cs.get("state") or {}), "")
                return str(state), bool((cs.get("lastState") or {}).get("terminated"))
    return "", False


POD_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pods"


def pod_fixture(name: str, *, node: str | None = None) -> dict[str, Any]:
    """A pod from ``tests/fixtures/pods/<name>.json`` (a fresh copy), optionally moved to ``node``."""
    pod = orjson.loads((POD_FIXTURES / f"{name}.json").read_bytes())
    return pod_on_node(pod, node) if node else pod


def pod_on_node(pod: Mapping[str, Any], node: str) -> dict[str, Any]:
    """A copy of ``pod`` scheduled on ``node``."""
    out = copy.deepcopy(dict(pod))
    out.setdefault("spec", {})["nodeName"] = node
    return out
