"""The only module that imports ``kubernetes``: configuration, raw JSON calls, streams, error translation.

servelog reads pods, events (core/v1 and events.k8s.io/v1), InferenceServices (a custom resource,
through the client's ``CustomObjectsApi``), apps/v1 Deployments and logs as raw JSON (``_preload_content=False`` + orjson)
rather than typed models: it is faster, and typed models reject objects real clusters produce (null
timestamps in events, fields newer than the client). The byte-level side (abortable streams, watch
events, Status errors) is :mod:`collector.kube.streams`. Streams (watches, ``pods/log``) are read as the bytes
arrive and can be aborted from another thread (:meth:`KubeStream.close`), so a collector that is
shutting down never waits for a watch to time out. Lists are read a page at a time (``limit`` +
``continue``, :class:`~collector.kube.streams.ListPage`): the ``*_page`` methods hand one page on, so a
cluster-wide watch (:mod:`collector.kube.reflector`) never holds more than a page of raw objects;
the plain ``list_*`` methods collect every page for callers that want the whole (small) list.

Every library exception becomes a :class:`~collector.errors.KubeError` with the cause chained:
connection problems, timeouts, 5xx and 429 are :class:`~collector.errors.KubeUnavailable` (worth
retrying; a 429's ``Retry-After`` is kept as ``retry_after``), other 4xx are
:class:`~collector.errors.KubeRejected`, and ``410 Gone``, whether it arrives as an HTTP status or
as an ``ERROR`` event inside a 200 watch stream, is :class:`~collector.errors.KubeGone`.
"""

from __future__ import annotations

import os
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from collector.errors import ConfigError, KubeError, KubeUnavailable
from collector.kube.reflector import PAGE_SIZE, list_all
from collector.kube.streams import (
    KubeStream,
    KubeThrottled,
    ListPage,
    finish_response,
    line_blocks,
    list_page,
    read_json,
    split_complete_lines,
    status_error,
    watch_event_items,
)
from collector.settings import Settings

_CONNECT_TIMEOUT = 10.0
# A watch's read timeout: the server ends a watch after timeoutSeconds; a connection silent for
# longer than that plus this margin is dead (a NAT or proxy dropped it without a reset).
_WATCH_READ_MARGIN = 30.0

_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

EVENTS_CORE = "core"  # core/v1 Events
EVENTS_V1 = "events.k8s.io"  # events.k8s.io/v1 Events
ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


class KubeClient:
    """Pods (list, get, watch), pod logs (stream), events (both APIs), InferenceServices (get, list, watch) and
    Deployments (list), as raw JSON.

    ``default_namespace`` is the namespace a command works in when none is given: the kubeconfig
    context's, the service account's in a cluster, else ``default`` (as ``kubectl`` chooses).
    """

    def __init__(self, api_client: Any, *, request_timeout: float = 60.0,
                 watch_read_margin: float = _WATCH_READ_MARGIN, default_namespace: str = "default") -> None:
        """``request_timeout`` is the read timeout of non-streaming calls; a watch's read timeout is
        its ``timeout_seconds`` plus ``watch_read_margin``."""
        self._api = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._events = kubernetes.client.EventsV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._timeout = (_CONNECT_TIMEOUT, request_timeout)
        self._watch_margin = watch_read_margin
        self.default_namespace = default_namespace or "default"

    @classmethod
    def from_settings(cls, settings: Settings, *, context: str | None = None) -> KubeClient:
        """The configured kubeconfig; else the in-cluster service account; else the default kubeconfig
        (``$KUBECONFIG`` or ``~/.kube/config``). ``context`` picks a kubeconfig context other than the current one."""
        configuration = kubernetes.client.Configuration()
        kubeconfig = settings.kubernetes.kubeconfig
        config_file = str(kubeconfig) if kubeconfig is not None else None
        try:
            if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                kubernetes.config.load_incluster_config(client_configuration=configuration)
                namespace = _in_cluster_namespace()
            else:
                kubernetes.config.load_kube_config(config_file=config_file, context=context,
                                                   client_configuration=configuration)
                namespace = _context_namespace(config_file, context)
        except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster or default kubeconfig"
            raise ConfigError([f"kubernetes: no usable configuration ({where}): {exc}"]) from exc
        return cls(kubernetes.client.ApiClient(_own_retries(configuration)), default_namespace=namespace)

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
        """(pods, resourceVersion of the list), every page collected (see :meth:`list_pods_page`)."""
        return list_all(lambda token: self.list_pods_page(field_selector=field_selector, label_selector=label_selector,
                                                          namespace=namespace, continue_token=token))

    def list_pods_page(self, *, continue_token: str = "", limit: int = PAGE_SIZE, resource_version: str = "",
                       field_selector: str = "", label_selector: str = "", namespace: str | None = None) -> ListPage:
        """One page of pods (``limit`` + ``continue``): a cluster-wide reader holds a page in memory, not the cluster.

        ``resource_version=""`` is a consistent list (paged by the server); ``"0"`` lets the API
        server answer from its watch cache (cheap, possibly slightly stale, and unpaged: the cache
        ignores ``limit``, client-go's reflector notes). An expired ``continue_token`` raises
        :class:`~collector.errors.KubeGone`: the list must start again.
        """
        options = self._page_options(continue_token, limit, resource_version, field_selector=field_selector or None,
                                     label_selector=label_selector or None)
        if namespace:
            response = self._call(self._core.list_namespaced_pod, namespace, **options)
        else:
            response = self._call(self._core.list_pod_for_all_namespaces, **options)
        return list_page(read_json(response))

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """One pod; :class:`~collector.errors.KubeRejected` (404) when it does not exist."""
        response = self._call(self._core.read_namespaced_pod, name, namespace, _request_timeout=self._timeout)
        body = read_json(response)
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
        return KubeStream(response, watch_event_items)

    # -- events ----------------------------------------------------------------------------------
    def _events_api(self, api: str) -> tuple[Any, Any]:
        """(cluster-wide list method, namespaced list method) of core/v1 or events.k8s.io/v1 Events."""
        if api == EVENTS_CORE:
            return self._core.list_event_for_all_namespaces, self._core.list_namespaced_event
        if api == EVENTS_V1:
            return self._events.list_event_for_all_namespaces, self._events.list_namespaced_event
        raise ValueError(f"unknown events API {api!r} (expected {EVENTS_CORE!r} or {EVENTS_V1!r})")

    def list_events(self, *, namespace: str | None = None, field_selector: str = "",
                    api: str = EVENTS_CORE) -> tuple[list[dict[str, Any]], str]:
        """Events as raw objects (null timestamps and all), and the list's resourceVersion; every page collected.

        ``api`` picks the shape: ``core`` (core/v1: ``involvedObject``, ``message``, ``count``) or
        ``events.k8s.io`` (events.k8s.io/v1: ``regarding``, ``note``, ``series``); both serve the
        same objects (same uids).
        """
        return list_all(lambda token: self.list_events_page(namespace=namespace, field_selector=field_selector, api=api,
                                                            continue_token=token))

    def list_events_page(self, *, continue_token: str = "", limit: int = PAGE_SIZE, resource_version: str = "",
                         namespace: str | None = None, field_selector: str = "", api: str = EVENTS_CORE) -> ListPage:
        """One page of Events of the ``api`` shape (see :meth:`list_events` and :meth:`list_pods_page`)."""
        cluster, namespaced = self._events_api(api)
        options = self._page_options(continue_token, limit, resource_version, field_selector=field_selector or None)
        if namespace:
            response = self._call(namespaced, namespace, **options)
        else:
            response = self._call(cluster, **options)
        return list_page(read_json(response))

    def watch_events(self, *, resource_version: str, namespace: str | None = None, field_selector: str = "",
                     timeout_seconds: int = 300, api: str = EVENTS_CORE) -> KubeStream[tuple[str, dict[str, Any]]]:
        """Like :meth:`watch_pods`, for Events of the ``api`` shape (see :meth:`list_events`)."""
        cluster, namespaced = self._events_api(api)
        options = self._watch_options(resource_version, timeout_seconds, field_selector=field_selector or None)
        if namespace:
            response = self._call(namespaced, namespace, **options)
        else:
            response = self._call(cluster, **options)
        return KubeStream(response, watch_event_items)

    # -- InferenceServices (a custom resource: read through the custom-objects API) -----------------
    def list_inferenceservices(self, *, namespace: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """``serving.kserve.io/v1beta1`` InferenceServices as raw objects, and the list's resourceVersion.

        A cluster without the KServe CRD answers 404: :class:`~collector.errors.KubeRejected` with
        ``status == 404`` (the caller decides that this means "not installed"). Every page collected.
        """
        return list_all(lambda token: self.list_inferenceservices_page(namespace=namespace, continue_token=token))

    def list_inferenceservices_page(self, *, continue_token: str = "", limit: int = PAGE_SIZE,
                                    resource_version: str = "", namespace: str | None = None) -> ListPage:
        """One page of InferenceServices (see :meth:`list_inferenceservices` and :meth:`list_pods_page`)."""
        options = self._page_options(continue_token, limit, resource_version)
        if namespace:
            response = self._call(self._custom.list_namespaced_custom_object, ISVC_GROUP, ISVC_VERSION, namespace,
                                  ISVC_PLURAL, **options)
        else:
            response = self._call(self._custom.list_cluster_custom_object, ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL,
                                  **options)
        return list_page(read_json(response))

    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any]:
        """One InferenceService; :class:`~collector.errors.KubeRejected` 404 when it does not exist, or when the
        cluster has no KServe CRD at all."""
        response = self._call(self._custom.get_namespaced_custom_object, ISVC_GROUP, ISVC_VERSION, namespace,
                              ISVC_PLURAL, name, _request_timeout=self._timeout)
        body = read_json(response)
        if not isinstance(body, dict):
            raise KubeUnavailable("the API server answered an InferenceService read with something that is not an object")
        return body

    def watch_inferenceservices(self, *, resource_version: str,
                                timeout_seconds: int = 300) -> KubeStream[tuple[str, dict[str, Any]]]:
        """Like :meth:`watch_pods`, for InferenceServices of every namespace."""
        options = self._watch_options(resource_version, timeout_seconds)
        response = self._call(self._custom.list_cluster_custom_object, ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL, **options)
        return KubeStream(response, watch_event_items)

    def _page_options(self, continue_token: str, limit: int, resource_version: str, **extra: Any) -> dict[str, Any]:
        """A continued page names no resourceVersion: the token carries the list's (the API server refuses both)."""
        return {"limit": limit, "_continue": continue_token or None,
                "resource_version": None if continue_token else resource_version or None,
                "_request_timeout": self._timeout, **extra}

    def _watch_options(self, resource_version: str, timeout_seconds: int, **extra: Any) -> dict[str, Any]:
        return {"watch": True, "resource_version": resource_version or None, "allow_watch_bookmarks": True,
                "timeout_seconds": timeout_seconds, "_request_timeout": self._watch_timeout(timeout_seconds), **extra}

    # -- Deployments (apps/v1) ---------------------------------------------------------------------
    def list_deployments(self, namespace: str, *, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """apps/v1 Deployments of a namespace (raw objects) and the list's resourceVersion."""
        response = self._call(self._apps.list_namespaced_deployment, namespace, label_selector=label_selector or None,
                              _request_timeout=self._timeout)
        page = list_page(read_json(response))  # a namespace's Deployments of one serving: one page
        return page.items, page.resource_version

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
                finish_response(response, reuse=False)
            raise status_error(result.status, body, response.headers)
        return KubeStream(response, line_blocks)

    # -- plumbing --------------------------------------------------------------------------------
    def _watch_timeout(self, timeout_seconds: int) -> tuple[float, float]:
        return (_CONNECT_TIMEOUT, timeout_seconds + self._watch_margin)

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _preload_content=False, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc) from exc


# -- helpers ---------------------------------------------------------------------------------------
def _own_retries(configuration: Any) -> Any:
    """Retry only failed connection attempts inside urllib3; everything else is the caller's call.

    urllib3's default would silently sleep out a 429's Retry-After (and retry 5xx) inside a
    request, invisible to the pod watch's own backoff and to a shutdown in progress.
    """
    configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=False,
                                          respect_retry_after_header=False, raise_on_status=False)
    return configuration


def _context_namespace(config_file: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context in use (``default`` when it names none)."""
    contexts, active = kubernetes.config.list_kube_config_contexts(config_file=config_file)
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _in_cluster_namespace() -> str:
    try:
        with open(_SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _translate(exc: Exception) -> KubeError:
    if isinstance(exc, ApiException) and exc.status:
        return status_error(int(exc.status), exc.body, exc.headers)
    return KubeUnavailable(f"API server unreachable: {exc}")


__all__ = ["EVENTS_CORE", "EVENTS_V1", "PAGE_SIZE", "KubeClient", "KubeStream", "KubeThrottled", "ListPage",
           "split_complete_lines"]
