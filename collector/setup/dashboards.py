"""OpenSearch Dashboards' saved-objects API: status, read back, import.

Dashboards is not OpenSearch, so it is spoken to with plain urllib3: ``GET /api/status`` first (a
clear "unreachable" or "wrong base path" before anything else), ``POST /api/saved_objects/_bulk_get``
to compare what is stored, then ``POST /api/saved_objects/_import?overwrite=true`` with a multipart
``file`` part named ``*.ndjson`` for the objects that differ. Every write carries ``osd-xsrf``;
``securitytenant`` selects the security plugin's tenant; basic auth reuses the OpenSearch
credentials. The base path (``/_dashboards`` on Amazon OpenSearch Service) is part of the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import urllib3

from collector.errors import SetupError
from collector.settings import OpenSearchSettings, read_secret
from collector.setup.plan import Step, verdict
from collector.sinks.opensearch.client import redact

IMPORT_PATH = "/api/saved_objects/_import"
ObjectKey = tuple[str, str]  # (type, id)


@dataclass(frozen=True, slots=True)
class ImportResult:
    success_count: int
    errors: list[str]


class DashboardsClient:
    """Talks to one OpenSearch Dashboards (base path included in ``url``)."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 tenant: str | None = None, verify_certs: bool = True, ca_file: Path | None = None,
                 client_cert: Path | None = None, client_key: Path | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._secret = password
        headers = {"osd-xsrf": "true", "Accept": "application/json"}
        if username:
            headers.update(urllib3.make_headers(basic_auth=f"{username}:{password or ''}"))
        if tenant:
            headers["securitytenant"] = tenant
        self._headers = headers
        # retries=False: one attempt, and a redirect (say, to a login page) comes back as an answer
        kwargs: dict[str, Any] = {"timeout": urllib3.Timeout(total=timeout), "retries": False}
        if self.url.startswith("https://"):
            kwargs["cert_reqs"] = "CERT_REQUIRED" if verify_certs else "CERT_NONE"
            if ca_file is not None:
                kwargs["ca_certs"] = str(ca_file)
            if client_cert is not None and client_key is not None:
                kwargs.update(cert_file=str(client_cert), key_file=str(client_key))
        self._http = urllib3.PoolManager(**kwargs)

    @classmethod
    def from_settings(cls, url: str, settings: OpenSearchSettings, *, tenant: str | None = None) -> DashboardsClient:
        """Same credentials and TLS options as OpenSearch (the security plugin shares the users)."""
        return cls(url, username=settings.username, password=read_secret(settings.password, settings.password_file),
                   tenant=tenant, verify_certs=settings.verify_certs, ca_file=settings.ca_file,
                   client_cert=settings.client_cert, client_key=settings.client_key, timeout=settings.timeout_seconds)

    def close(self) -> None:
        self._http.clear()

    # -- API ---------------------------------------------------------------------------------------
    def version(self) -> str:
        """``GET /api/status``: reachable, credentials accepted; the Dashboards version."""
        status, body = self._request("GET", "/api/status")
        if status == 404:
            raise SetupError(f"no OpenSearch Dashboards API at {self._shown()}/api/status (404): "
                             "is the base path (such as /_dashboards) part of --dashboards-url?")
        if status != 200:
            raise self._refused("GET /api/status", status, body)
        version = body.get("version", {}) if isinstance(body, dict) else {}
        return str(version.get("number", "unknown"))

    def bulk_get(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        """The stored objects (None where missing), in one request."""
        status, body = self._request("POST", "/api/saved_objects/_bulk_get",
                                     body=orjson.dumps([{"type": t, "id": i} for t, i in keys]),
                                     headers={"Content-Type": "application/json"})
        if status != 200 or not isinstance(body, dict):
            raise self._refused("POST /api/saved_objects/_bulk_get", status, body)
        found: dict[ObjectKey, dict[str, Any] | None] = dict.fromkeys(keys)
        for obj in body.get("saved_objects", []):
            if "error" not in obj:
                found[(obj["type"], obj["id"])] = obj
        return found

    def import_objects(self, objects: Sequence[dict[str, Any]], *, filename: str) -> ImportResult:
        """Import (overwrite) the objects as one NDJSON file; per-object errors are returned, not raised."""
        ndjson = b"".join(orjson.dumps(obj) + b"\n" for obj in objects)
        body, content_type = urllib3.encode_multipart_formdata({"file": (filename, ndjson, "application/ndjson")})
        status, answer = self._request("POST", IMPORT_PATH + "?overwrite=true", body=body,
                                       headers={"Content-Type": content_type})
        if status != 200 or not isinstance(answer, dict):
            raise self._refused(f"POST {IMPORT_PATH}", status, answer)
        errors = [_describe_import_error(e) for e in answer.get("errors") or []]
        if not answer.get("success", False) and not errors:
            errors = ["the import reported no success and no error"]
        return ImportResult(int(answer.get("successCount", 0)), errors)

    # -- plumbing ----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        try:
            response = self._http.request(method, self.url + path, body=body,
                                          headers={**self._headers, **(headers or {})})
        except urllib3.exceptions.HTTPError as exc:
            raise SetupError(redact(f"OpenSearch Dashboards is unreachable at {self._shown()}: {exc}",
                                    self._secret)) from exc
        if 300 <= response.status < 400:
            raise SetupError(f"OpenSearch Dashboards at {self._shown()} redirected {method} {path} to "
                             f"{response.headers.get('Location', '?')}: give the URL Dashboards serves its API at")
        try:
            parsed = orjson.loads(response.data) if response.data else None
        except orjson.JSONDecodeError:
            parsed = response.data[:300].decode("utf-8", "replace")
        return response.status, parsed

    def _refused(self, what: str, status: int, body: Any) -> SetupError:
        if status in (401, 403):
            return SetupError(f"OpenSearch Dashboards refused the credentials ({status}) on {what}")
        message = body.get("message", body) if isinstance(body, dict) else body
        return SetupError(redact(f"OpenSearch Dashboards answered {status} on {what}: {message}", self._secret))

    def _shown(self) -> str:
        return redact(self.url, self._secret)


def _describe_import_error(error: dict[str, Any]) -> str:
    kind = error.get("error", {}).get("type", "error")
    text = f"{error.get('type')}/{error.get('id')}: {kind}"
    missing = error.get("error", {}).get("references")
    if missing:
        text += " " + ", ".join(f"{r.get('type')}/{r.get('id')}" for r in missing)
    return text


def plan_saved_objects(objects: Sequence[dict[str, Any]],
                       stored: dict[ObjectKey, dict[str, Any] | None]) -> list[Step]:
    """Each object against what Dashboards holds: unchanged when its attributes and references are there."""
    steps = []
    for obj in objects:
        key = (obj["type"], obj["id"])
        current = stored.get(key)
        desired = {"attributes": obj["attributes"], "references": obj.get("references", [])}
        state = verdict(None if current is None else {k: current.get(k) for k in desired}, desired)
        steps.append(Step("saved_object", f"{key[0]}/{key[1]}", state, "POST", IMPORT_PATH,
                          body=obj, params={"overwrite": "true"}, detail=obj["attributes"].get("title", "")))
    return steps
