"""The only module that imports ``opensearchpy``: connection setup and error translation.

Everything else talks to OpenSearch through :class:`OpenSearchClient`, which raises only
servelog's own errors (``SinkUnavailable``, ``SinkRejected``, ``SinkAuthError``, ``SinkBadResponse``)
with the library's exception chained as the cause, and with what the verdict needs as data: the
status, OpenSearch's ``error.type``, how a request without answer failed (``refused``, ``tls``,
``timeout``) and whether the body was OpenSearch's JSON at all (a proxy's HTML page is not). The
transport's own retries are switched off (``max_retries=0``): retrying lives in exactly one layer,
:mod:`collector.sinks.opensearch.sink`.

The connection pool holds ``workers + 2`` connections (the senders, the dead-letter writes they
make, and a spare), so no sender ever finds it full and drops a connection ("Connection pool is
full, discarding connection"); urllib3's default is one.

Secrets are read through :func:`collector.settings.read_secret` when the client is built, and the
client is rebuilt when a password file changes (``refresh_credentials``); no error message built
here ever includes them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

# servelog uses the synchronous client only. opensearch-py imports its optional async transport when
# aiohttp is installed (other dependencies bring it), ~20 MiB and 0.15 CPU-s per process for nothing:
# while it imports, aiohttp is unimportable, so it takes its own "not installed" path (a documented
# optional extra, `opensearch-py[async]`). A process that imported aiohttp already keeps it.
if "aiohttp" not in sys.modules:
    sys.modules["aiohttp"] = None  # type: ignore[assignment]
    try:
        import opensearchpy
    finally:
        del sys.modules["aiohttp"]
import opensearchpy
from opensearchpy.serializer import JSONSerializer

from collector.errors import SinkAuthError, SinkBadResponse, SinkRejected, SinkUnavailable
from collector.settings import OpenSearchSettings, read_secret

_ALL_SUCCEEDED = re.compile(r'\{"took":(\d+),"errors":false,"items":\[')


class SucceededItems(Sequence[Any]):
    """The ``items`` of a ``_bulk`` answer with ``"errors":false``: every item succeeded, so only
    their number is needed (one ``"status":`` per item); the items are parsed only if read."""

    __slots__ = ("_count", "_parsed", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._count = text.count('"status":')
        self._parsed: list[Any] | None = None

    def __len__(self) -> int:
        return self._count

    def _items(self) -> list[Any]:
        if self._parsed is None:
            self._parsed = list(orjson.loads(self._text)["items"])
        return self._parsed

    def __getitem__(self, index: Any) -> Any:
        return self._items()[index]


class _OrjsonSerializer(JSONSerializer):
    """orjson for speed: bulk responses carry one item per document.

    A ``_bulk`` answer that says ``"errors":false`` (servelog's ``filter_path`` keeps ``took`` and
    ``errors`` first) is not parsed item by item: every item succeeded, its items are counted.
    """

    def loads(self, s: Any) -> Any:
        if isinstance(s, str) and s.startswith('{"took":'):
            match = _ALL_SUCCEEDED.match(s)
            if match is not None:
                return {"took": int(match[1]), "errors": False, "items": SucceededItems(s)}
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            raise opensearchpy.exceptions.SerializationError(f"not JSON: {exc}") from exc

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):
            return data
        return orjson.dumps(data, default=self.default).decode()


_CREDENTIALS_IN_URL = re.compile(r"//[^/@\s]+@")


def redact(text: str, *secrets: str | None) -> str:
    """Remove credentials (URL user-info and the given secret values) from a message."""
    text = _CREDENTIALS_IN_URL.sub("//***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class OpenSearchClient:
    """A thin, typed facade over ``opensearchpy.OpenSearch``."""

    def __init__(self, settings: OpenSearchSettings) -> None:
        self._settings = settings
        self._password_mtime: float | None = None
        self._secret: str | None = None
        self._client = self._build()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> opensearchpy.OpenSearch:
        s = self._settings
        kwargs: dict[str, Any] = {
            "hosts": [s.url],
            "timeout": s.timeout_seconds,
            "max_retries": 0,  # one retry layer only: the sink's
            "retry_on_timeout": False,
            "serializer": _OrjsonSerializer(),
            "http_compress": False,
            "pool_maxsize": s.workers + 2,
        }
        if s.url.startswith("https://"):
            kwargs.update(use_ssl=True, verify_certs=s.verify_certs, ssl_show_warn=False)
            if s.ca_file:
                kwargs["ca_certs"] = str(s.ca_file)
            if s.client_cert and s.client_key:
                kwargs.update(client_cert=str(s.client_cert), client_key=str(s.client_key))
            if not s.verify_certs:
                kwargs["ssl_assert_hostname"] = False
        password = read_secret(s.password, s.password_file)
        self._secret = password
        if s.password_file is not None:
            self._password_mtime = _mtime(s.password_file)
        if s.aws_region:
            kwargs["http_auth"] = self._aws_auth()
            kwargs["connection_class"] = opensearchpy.RequestsHttpConnection
        elif s.username:
            kwargs["http_auth"] = (s.username, password or "")
        return opensearchpy.OpenSearch(**kwargs)

    def _aws_auth(self) -> Any:
        try:
            import boto3  # noqa: PLC0415 - optional dependency, only for SigV4
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise SinkRejected(0, "AWS SigV4 needs boto3: pip install 'servelog[aws]'") from exc
        credentials = boto3.Session().get_credentials()
        return opensearchpy.RequestsAWSV4SignerAuth(credentials, self._settings.aws_region, self._settings.aws_service)

    def refresh_credentials(self) -> bool:
        """Rebuild the connection when the password file changed; True if it did."""
        path = self._settings.password_file
        if path is None or _mtime(path) == self._password_mtime:
            return False
        self._client.close()
        self._client = self._build()
        return True

    # -- requests ----------------------------------------------------------------------------
    def bulk(self, body: bytes) -> dict[str, Any]:
        """Send an NDJSON ``_bulk`` body; return the parsed response (only status/error per item)."""
        return self._call(
            self._client.bulk,
            body=body,
            params={"filter_path": "took,errors,items.*.status,items.*.error"},
        )

    def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Any other REST call (templates, ISM, search); JSON in, parsed JSON out."""
        return self._call(self._client.transport.perform_request, method, path, body=body, params=params)

    @property
    def url(self) -> str:
        """The configured URL, without credentials (for messages)."""
        return redact(self._settings.url)

    def info(self) -> dict[str, Any]:
        """``GET /``: cluster name and version; also a reachability probe."""
        return self._call(self._client.info)

    def close(self) -> None:
        self._client.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except opensearchpy.exceptions.ConnectionError as exc:
            # ConnectionTimeout and SSLError are ConnectionErrors too
            kind = ("tls" if isinstance(exc, opensearchpy.exceptions.SSLError) else
                    "timeout" if isinstance(exc, opensearchpy.exceptions.ConnectionTimeout) else "refused")
            detail = redact(_root_cause(exc), self._secret)
            raise SinkUnavailable(f"OpenSearch unreachable at {self.url}: {detail}", kind=kind, detail=detail) from exc
        except opensearchpy.exceptions.TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            message = redact(_describe(exc), self._secret)
            error_type = _error_type(exc)
            opensearch_body = isinstance(exc.info, dict)
            if status == 401 or (status == 403 and opensearch_body):
                raise SinkAuthError(status, message, error_type=error_type) from exc
            if status >= 500 or status == 0:
                raise SinkUnavailable(f"OpenSearch answered {status}: {message}", status=status, error_type=error_type,
                                      detail=message) from exc
            if not opensearch_body:
                raise SinkBadResponse(status, message) from exc
            raise SinkRejected(status, message, error_type=error_type) from exc
        except opensearchpy.exceptions.SerializationError as exc:
            # a 2xx whose body is not JSON (a proxy's or another service's page)
            raise SinkBadResponse(200, redact(str(exc), self._secret)[:300]) from exc


def _error_type(exc: Any) -> str:
    info = exc.info
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        return str(info["error"].get("type", ""))
    return ""


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's words ("[Errno 111] Connection refused"), not the library's wrapping."""
    inner: BaseException = exc
    seen = 0
    while seen < 10:
        nested = inner.__cause__ or inner.__context__
        args: tuple[Any, ...] = tuple(getattr(inner, "args", ()))
        if nested is None and len(args) >= 3 and isinstance(args[2], BaseException):
            nested = args[2]  # opensearch-py keeps the original exception as its third argument
        if nested is None:
            break
        inner, seen = nested, seen + 1
    text = str(inner) or type(inner).__name__
    return text[:300]


def _describe(exc: Any) -> str:
    info = exc.info
    if isinstance(info, dict):
        err = info.get("error")
        if isinstance(err, dict):
            return f"{err.get('type', '')}: {err.get('reason', '')}"[:500]
        if err:
            return str(err)[:500]
    text = exc.error.decode("utf-8", "replace") if isinstance(exc.error, bytes) else str(exc.error)
    return " ".join(text.split())[:200]  # a proxy's HTML page: its first words, on one line


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
