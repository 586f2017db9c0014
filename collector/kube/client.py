"""The only module that imports ``kubernetes``: configuration, raw JSON calls, streams, error translation.

servelog reads pods, events and logs as raw JSON (``_preload_content=False`` + orjson) rather than
typed models: it is faster, and typed models reject objects real clusters produce (null timestamps
in events, fields newer than the client). Streams (watches, ``pods/log``) are read as the bytes
arrive and can be aborted from another thread (:meth:`KubeStream.close`), so a collector that is
shutting down never waits for a watch to time out.

Every library exception becomes a :class:`~collector.errors.KubeError` with the cause chained:
connection problems, timeouts, 5xx and 429 are :class:`~collector.errors.KubeUnavailable` (worth
retrying; a 429's ``Retry-After`` is kept as ``retry_after``), other 4xx are
:class:`~collector.errors.KubeRejected`, and ``410 Gone``, whether it arrives as an HTTP status or
as an ``ERROR`` event inside a 200 watch stream, is :class:`~collector.errors.KubeGone`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

import kubernetes
import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from collector.errors import ConfigError, KubeError, KubeGone, KubeRejected, KubeUnavailable
from collector.settings import Settings

T = TypeVar("T")

_STREAM_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 10.0
# A watch's read timeout: the server ends a watch after timeoutSeconds; a connection silent for
# longer than that plus this margin is dead (a NAT or proxy dropped it without a reset).
_WATCH_READ_MARGIN = 30.0


class KubeThrottled(KubeUnavailable):
    """429 Too Many Requests (API Priority and Fairness); ``retry_after`` is the server's advice."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KubeStream(Generic[T]):
    """An iterator over a streaming response that another thread may abort with :meth:`close`.

    Iteration raises :class:`~collector.errors.KubeError` on failures; after :meth:`close` it
    simply ends. The connection goes back to the pool only when the stream was read to its end.
    """

    def __init__(self, response: Any, items: Callable[[Any], Iterator[T]]) -> None:
        self._response = response
        self._items = self._guarded(items(response))
        self._aborted = False
        self._released = False
        self._busy = threading.Lock()

    def __iter__(self) -> KubeStream[T]:
        return self

    def __next__(self) -> T:
        with self._busy:
            return next(self._items)

    def __enter__(self) -> KubeStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def close(self) -> None:
        """Abort the stream (safe from any thread): a blocked read returns and iteration ends."""
        self._aborted = True
        with contextlib.suppress(Exception):  # already released or closed: nothing to unblock
            self._response.shutdown()  # unblocks a read in progress in another thread
        if self._busy.acquire(blocking=False):
            try:
                self._items.close()  # not being iterated now: release the connection here
                self._release(reuse=False)  # (a generator never started has no finally to run)
            finally:
                self._busy.release()

    def _release(self, *, reuse: bool) -> None:
        if not self._released:
            self._released = True
            _finish(self._response, reuse=reuse)

    def _guarded(self, items: Iterator[T]) -> Generator[T, None, None]:
        complete = False
        try:
            try:
                yield from items
                complete = True
            except Exception:
                # after close() a read fails in whatever way the socket layer chooses: that is the
                # end of the stream, not an error; otherwise errors are already KubeErrors
                if not self._aborted:
                    raise
        finally:
            self._release(reuse=complete and not self._aborted)


class KubeClient:
    """Pods (list, get, watch), pod logs (stream) and events (list, watch), as raw JSON, for one API server."""

    def __init__(self, api_client: Any, *, request_timeout: float = 60.0,
                 watch_read_margin: float = _WATCH_READ_MARGIN) -> None:
        """``request_timeout`` is the read timeout of non-streaming calls; a watch's read timeout is
        its ``timeout_seconds`` plus ``watch_read_margin``."""
        self._api = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._timeout = (_CONNECT_TIMEOUT, request_timeout)
        self._watch_margin = watch_read_margin

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeClient:
        """The configured kubeconfig; else the in-cluster service account; else the default kubeconfig."""
        configuration = kubernetes.client.Configuration()
        kubeconfig = settings.kubernetes.kubeconfig
        try:
            if kubeconfig is not None:
                kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            else:
                kubernetes.config.load_kube_config(client_configuration=configuration)
        except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster or default kubeconfig"
            raise ConfigError([f"kubernetes: no usable configuration ({where}): {exc}"]) from exc
        return cls(kubernetes.client.ApiClient(_own_retries(configuration)))

    @classmethod
    def for_host(cls, host: str, *, request_timeout: float = 60.0,
                 watch_read_margin: float = _WATCH_READ_MARGIN) -> KubeClient:
        """A client for an explicit API server URL without credentials (tests, ``kubectl proxy``)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = host
        return cls(kubernetes.client.ApiClient(_own_retries(configuration)), request_timeout=request_timeout,
                   watch_read_margin=watch_read_margin)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pods ------------------------------------------------------------------------------------
    def list_pods(self, *, field_selector: str = "", label_selector: str = "",
                  namespace: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """(pods, resourceVersion of the list)."""
        if namespace:
            response = self._call(self._core.list_namespaced_pod, namespace, field_selector=field_selector or None,
                                  label_selector=label_selector or None, _request_timeout=self._timeout)
        else:
            response = self._call(self._core.list_pod_for_all_namespaces, field_selector=field_selector or None,
                                  label_selector=label_selector or None, _request_timeout=self._timeout)
        return _list_body(_read_json(response))

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """One pod; :class:`~collector.errors.KubeRejected` (404) when it does not exist."""
        response = self._call(self._core.read_namespaced_pod, name, namespace, _request_timeout=self._timeout)
        body = _read_json(response)
        if not isinstance(body, dict):
            raise KubeUnavailable("the API server answered a pod read with something that is not an object")
        return body

    def watch_pods(self, *, resource_version: str, field_selector: str = "", label_selector: str = "",
                   timeout_seconds: int = 300) -> KubeStream[tuple[str, dict[str, Any]]]:
        """(event type, object) from ``resource_version`` on, ``BOOKMARK`` events included.

        The request is made now (a refusal raises here); events are read as they arrive. An
        ``ERROR`` event raises (410: :class:`~collector.errors.KubeGone`).
        """
        response = self._call(
            self._core.list_pod_for_all_namespaces, watch=True, resource_version=resource_version or None,
            allow_watch_bookmarks=True, timeout_seconds=timeout_seconds, field_selector=field_selector or None,
            label_selector=label_selector or None, _request_timeout=self._watch_timeout(timeout_seconds),
        )
        return KubeStream(response, _watch_events)

    # -- events ----------------------------------------------------------------------------------
    def list_events(self, *, namespace: str | None = None,
                    field_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """core/v1 Events as raw objects (null timestamps and all), and the list's resourceVersion."""
        if namespace:
            response = self._call(self._core.list_namespaced_event, namespace, field_selector=field_selector or None,
                                  _request_timeout=self._timeout)
        else:
            response = self._call(self._core.list_event_for_all_namespaces, field_selector=field_selector or None,
                                  _request_timeout=self._timeout)
        return _list_body(_read_json(response))

    def watch_events(self, *, resource_version: str, namespace: str | None = None, field_selector: str = "",
                     timeout_seconds: int = 300) -> KubeStream[tuple[str, dict[str, Any]]]:
        """Like :meth:`watch_pods`, for core/v1 Events."""
        options: dict[str, Any] = {
            "watch": True, "resource_version": resource_version or None, "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds, "field_selector": field_selector or None,
            "_request_timeout": self._watch_timeout(timeout_seconds),
        }
        if namespace:
            response = self._call(self._core.list_namespaced_event, namespace, **options)
        else:
            response = self._call(self._core.list_event_for_all_namespaces, **options)
        return KubeStream(response, _watch_events)

    # -- logs ------------------------------------------------------------------------------------
    def stream_pod_log(
        self, namespace: str, pod: str, *, container: str, follow: bool, timestamps: bool,
        since_time: str | None, previous: bool, request_timeout: float,
        limit_bytes: int | None = None, tail_lines: int | None = None,
    ) -> KubeStream[bytes]:
        """``pods/log`` as it arrives, in pieces that end at a line boundary (``\\n`` kept).

        Only a final piece without a newline (the stream ended mid-line) is unterminated.
        ``since_time`` (RFC 3339) is passed as the ``sinceTime`` query parameter through
        ``call_api``: the generated method has no argument for it. The server resolves it to whole
        seconds, so a resume overlaps the lines of that second. ``request_timeout`` is the read
        timeout: a follow silent for that long is treated as dead.
        """
        query: list[tuple[str, str]] = [("container", container), ("follow", _flag(follow)),
                                        ("timestamps", _flag(timestamps)), ("previous", _flag(previous))]
        if since_time is not None:
            query.append(("sinceTime", since_time))
        if limit_bytes is not None:
            query.append(("limitBytes", str(limit_bytes)))
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        try:
            request = self._api.param_serialize(
                "GET", "/api/v1/namespaces/{namespace}/pods/{name}/log",
                path_params={"namespace": namespace, "name": pod}, query_params=query,
                header_params={"Accept": "text/plain, */*"}, auth_settings=["BearerToken"],
            )
            result = self._api.call_api(*request, _request_timeout=(_CONNECT_TIMEOUT, request_timeout))
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc) from exc
        response = result.response
        if not 200 <= result.status <= 299:
            try:
                body = response.data
            except (urllib3.exceptions.HTTPError, OSError):
                body = b""
            finally:
                _finish(response, reuse=False)
            raise _status_error(result.status, body, response.headers)
        return KubeStream(response, _line_blocks)

    # -- plumbing --------------------------------------------------------------------------------
    def _watch_timeout(self, timeout_seconds: int) -> tuple[float, float]:
        return (_CONNECT_TIMEOUT, timeout_seconds + self._watch_margin)

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _preload_content=False, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc) from exc


# -- pure helpers (module level so tests and the stream share them) -------------------------------
def _own_retries(configuration: Any) -> Any:
    """Retry only failed connection attempts inside urllib3; everything else is the caller's call.

    urllib3's default would silently sleep out a 429's Retry-After (and retry 5xx) inside a
    request, invisible to the pod watch's own backoff and to a shutdown in progress.
    """
    configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=False,
                                          respect_retry_after_header=False, raise_on_status=False)
    return configuration


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _finish(response: Any, *, reuse: bool) -> None:
    """Give the connection back (a fully read response) or drop it (anything else)."""
    try:
        if not reuse:
            response.close()
        response.release_conn()
    except Exception:  # noqa: S110 - best effort: the connection is unusable either way
        pass


def _read_json(response: Any) -> Any:
    try:
        data = response.data
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        _finish(response, reuse=False)
        raise KubeUnavailable(f"reading the API response failed: {exc}") from exc
    _finish(response, reuse=True)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise KubeUnavailable(f"the API server answered with malformed JSON: {exc}") from exc


def _list_body(body: Any) -> tuple[list[dict[str, Any]], str]:
    if not isinstance(body, dict):
        raise KubeUnavailable("the API server answered a list with something that is not an object")
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    return items, str((body.get("metadata") or {}).get("resourceVersion") or "")


def _chunks(response: Any) -> Iterator[bytes]:
    """Bytes as they arrive: chunk by chunk when chunked, else whatever one read returns."""
    try:
        if response.chunked and response.supports_chunked_reads():
            yield from response.stream(_STREAM_CHUNK, decode_content=True)
            return
        while data := response.read1(_STREAM_CHUNK):
            yield data
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeUnavailable(f"stream interrupted: {exc}") from exc


def split_complete_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines (without their newline) from a byte stream; a trailing unterminated piece comes last."""
    pending: list[bytes] = []
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if pending:
                pending.append(chunk[start:end])
                yield b"".join(pending)
                pending.clear()
            else:
                yield chunk[start:end]
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield b"".join(pending)


def _line_blocks(response: Any) -> Iterator[bytes]:
    """Pieces of the body cut at the last newline, so no line is ever split between two pieces."""
    pending = b""
    for chunk in _chunks(response):
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        pending = data[cut:]
    if pending:
        yield pending


def _watch_events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in split_complete_lines(_chunks(response)):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise KubeUnavailable(f"malformed watch event: {line[:200]!r}") from exc
        if not isinstance(event, dict):
            raise KubeUnavailable(f"malformed watch event: {line[:200]!r}")
        kind = str(event.get("type") or "")
        found = event.get("object")
        obj: dict[str, Any] = found if isinstance(found, dict) else {}
        if kind == "ERROR":
            raise _watch_error(obj)
        yield kind, obj


def _watch_error(status: dict[str, Any]) -> KubeError:
    """The exception for an ``ERROR`` event (its object is a Status)."""
    message = str(status.get("message") or "watch error")
    try:
        code = int(status.get("code") or 0)
    except (TypeError, ValueError):
        code = 0
    if code == 410 or status.get("reason") in ("Expired", "Gone"):
        return KubeGone(message)
    if code == 0:
        return KubeUnavailable(f"watch error: {message}")
    return _status_error(code, orjson.dumps(status), None)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP-date: rare from the API server, and a default backoff is fine


def _status_error(status: int, body: bytes | str | None, headers: Any) -> KubeError:
    """The servelog error for an HTTP status and its (Status) body."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        parsed = orjson.loads(raw)
        message = str(parsed.get("message") or "") if isinstance(parsed, dict) else ""
    except orjson.JSONDecodeError:
        message = raw[:200].decode("utf-8", "replace")
    if status == 410:
        return KubeGone(message or "resource version too old")
    if status == 429:
        return KubeThrottled(f"API server answered 429: {message}", _retry_after(headers))
    if status >= 500:
        return KubeUnavailable(f"API server answered {status}: {message}")
    return KubeRejected(status, message)


def _translate(exc: Exception) -> KubeError:
    if isinstance(exc, ApiException) and exc.status:
        return _status_error(int(exc.status), exc.body, exc.headers)
    return KubeUnavailable(f"API server unreachable: {exc}")
