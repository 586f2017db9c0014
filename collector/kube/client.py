"""The only module that imports ``kubernetes``: configuration, raw JSON calls, error translation.

servelog reads pods and logs as raw JSON (``_preload_content=False`` + orjson) rather than typed
models: it is faster, and the typed models reject objects real clusters produce (null timestamps in
events, fields newer than the client). Every library exception becomes a
:class:`~collector.errors.KubeError` with the cause chained; a ``410 Gone``, whether as an HTTP
status or as an ``ERROR`` event inside a watch stream, becomes :class:`~collector.errors.KubeGone`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes
import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from collector.errors import KubeGone, KubeRejected, KubeUnavailable
from collector.settings import Settings

_STREAM_CHUNK = 64 * 1024


class KubeClient:
    """Pods (list, watch), pod logs (stream) and events, for one API server."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeClient:
        """In-cluster service account, else the configured (or default) kubeconfig."""
        configuration = kubernetes.client.Configuration()
        try:
            if settings.kubernetes.kubeconfig is None:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            else:
                kubernetes.config.load_kube_config(config_file=str(settings.kubernetes.kubeconfig),
                                                   client_configuration=configuration)
        except kubernetes.config.ConfigException as exc:
            raise KubeUnavailable(f"no Kubernetes configuration: {exc}") from exc
        return cls(kubernetes.client.ApiClient(configuration))

    @classmethod
    def for_host(cls, host: str) -> KubeClient:
        """A client for an explicit API server URL (tests, kubectl proxy)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = host
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()

    # -- pods ------------------------------------------------------------------------------------
    def list_pods(self, *, field_selector: str = "", label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """(pods, resourceVersion of the list)."""
        response = self._call(self._core.list_pod_for_all_namespaces, field_selector=field_selector or None,
                              label_selector=label_selector or None, _request_timeout=60)
        body = orjson.loads(self._read(response))
        return body.get("items") or [], str(body.get("metadata", {}).get("resourceVersion", ""))

    def watch_pods(self, *, resource_version: str, field_selector: str = "", label_selector: str = "",
                   timeout_seconds: int = 300) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from ``resource_version`` on, bookmarks included; KubeGone on 410."""
        response = self._call(
            self._core.list_pod_for_all_namespaces, watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=timeout_seconds, field_selector=field_selector or None,
            label_selector=label_selector or None, _request_timeout=(10, timeout_seconds + 30),
        )
        yield from self._events(response)

    def list_events(self, *, field_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        response = self._call(self._core.list_event_for_all_namespaces, field_selector=field_selector or None,
                              _request_timeout=60)
        body = orjson.loads(self._read(response))
        return body.get("items") or [], str(body.get("metadata", {}).get("resourceVersion", ""))

    def watch_events(self, *, resource_version: str, field_selector: str = "",
                     timeout_seconds: int = 300) -> Iterator[tuple[str, dict[str, Any]]]:
        response = self._call(
            self._core.list_event_for_all_namespaces, watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=timeout_seconds, field_selector=field_selector or None,
            _request_timeout=(10, timeout_seconds + 30),
        )
        yield from self._events(response)

    def _events(self, response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in _lines(self._stream(response)):
                event = orjson.loads(line)
                kind, obj = event.get("type", ""), event.get("object") or {}
                if kind == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        raise KubeGone(str(obj.get("message", "too old resource version")))
                    raise KubeRejected(int(code or 0), str(obj.get("message", "watch error")))
                yield kind, obj
        finally:
            response.release_conn()

    # -- logs ------------------------------------------------------------------------------------
    def stream_pod_log(
        self, namespace: str, pod: str, *, container: str, follow: bool, timestamps: bool,
        since_time: str | None, previous: bool, request_timeout: float,
    ) -> Iterator[bytes]:
        """The raw bytes of ``pods/log`` as they arrive (``sinceTime`` passed as a query parameter:
        the generated client has no argument for it)."""
        query: list[tuple[str, str]] = [("container", container), ("follow", str(follow).lower()),
                                        ("timestamps", str(timestamps).lower()), ("previous", str(previous).lower())]
        if since_time is not None:
            query.append(("sinceTime", since_time))
        try:
            request = self._api.param_serialize(
                "GET", "/api/v1/namespaces/{namespace}/pods/{name}/log",
                path_params={"namespace": namespace, "name": pod}, query_params=query,
                header_params={"Accept": "*/*"}, auth_settings=["BearerToken"],
            )
            result = self._api.call_api(*request, _request_timeout=(10, request_timeout))
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc) from exc
        response = result.response
        if not 200 <= result.status <= 299:
            body = response.data if hasattr(response, "data") else b""
            raise _status_error(result.status, body)
        try:
            yield from self._stream(response)
        finally:
            response.release_conn()

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return method(_preload_content=False, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc) from exc

    @staticmethod
    def _read(response: Any) -> bytes:
        try:
            return bytes(response.data)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(f"reading the API response failed: {exc}") from exc
        finally:
            response.release_conn()

    @staticmethod
    def _stream(response: Any) -> Iterator[bytes]:
        try:
            yield from response.stream(_STREAM_CHUNK, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(f"stream interrupted: {exc}") from exc


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    remainder = b""
    for chunk in chunks:
        remainder += chunk
        *complete, remainder = remainder.split(b"\n")
        yield from (line for line in complete if line.strip())
    if remainder.strip():
        yield remainder


def _status_error(status: int, body: bytes) -> Exception:
    try:
        message = str(orjson.loads(body).get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    if status == 410:
        return KubeGone(message)
    if status == 429 or status >= 500:
        return KubeUnavailable(f"API server answered {status}: {message}")
    return KubeRejected(status, message)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, ApiException):
        body = exc.body if isinstance(exc.body, bytes) else (exc.body or "").encode()
        return _status_error(int(exc.status or 0), body) if exc.status else KubeUnavailable(str(exc))
    return KubeUnavailable(f"API server unreachable: {exc}")
