"""Reading Kubernetes API responses as bytes: abortable streams, watch events, lists, Status errors.

No ``kubernetes`` import here (only urllib3 responses and orjson), so the wire format is testable
on its own and :mod:`collector.kube.client` stays the one module that knows the client library.
A :class:`KubeStream` is an iterator over a streaming response (a watch, ``pods/log``) that another
thread may abort; ``watch_events`` turns JSON lines into (type, object) pairs and an ``ERROR``
event into the matching :class:`~collector.errors.KubeError` (410: :class:`~collector.errors.KubeGone`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
import urllib3

from collector.errors import KubeError, KubeGone, KubeRejected, KubeUnavailable

T = TypeVar("T")

_STREAM_CHUNK = 64 * 1024


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
            finish_response(self._response, reuse=reuse)

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


def finish_response(response: Any, *, reuse: bool) -> None:
    """Give the connection back (a fully read response) or drop it (anything else)."""
    try:
        if not reuse:
            response.close()
        response.release_conn()
    except Exception:  # noqa: S110 - best effort: the connection is unusable either way
        pass


def read_json(response: Any) -> Any:
    try:
        data = response.data
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        finish_response(response, reuse=False)
        raise KubeUnavailable(f"reading the API response failed: {exc}") from exc
    finish_response(response, reuse=True)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise KubeUnavailable(f"the API server answered with malformed JSON: {exc}") from exc


def list_body(body: Any) -> tuple[list[dict[str, Any]], str]:
    page = list_page(body)
    return page.items, page.resource_version


class ListPage(NamedTuple):
    """One page of a list: its objects, the list's resourceVersion and the token of the next page ('' at the end)."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str


def list_page(body: Any) -> ListPage:
    """A list response (``PodList``, ``EventList``, ...) as a :class:`ListPage`."""
    if not isinstance(body, dict):
        raise KubeUnavailable("the API server answered a list with something that is not an object")
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return ListPage(items, str(meta.get("resourceVersion") or ""), str(meta.get("continue") or ""))


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


def line_blocks(response: Any) -> Iterator[bytes]:
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


def watch_event_items(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
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
    return status_error(code, orjson.dumps(status), None)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP-date: rare from the API server, and a default backoff is fine


def status_error(status: int, body: bytes | str | None, headers: Any) -> KubeError:
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
