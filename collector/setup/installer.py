"""Installing templates, ISM policies and saved objects: a plan, then idempotent actions.

Each asset is compared with what the cluster has (``GET``) and written only when it differs, so a
second run changes nothing and says so. Comparison is by containment with scalars compared as
text, because OpenSearch hands settings back as strings and adds bookkeeping fields to ISM policies.
ISM policies are updated with ``if_seq_no``/``if_primary_term``, as the plugin requires.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3

from collector.errors import SetupError, SinkAuthError, SinkError, SinkRejected
from collector.settings import OpenSearchSettings, read_secret
from collector.setup import assets
from collector.sinks.opensearch.client import OpenSearchClient, redact

MIN_VERSION = (2, 7)  # flat_object arrived in OpenSearch 2.7


@dataclass(slots=True)
class Action:
    """One step of the plan and its outcome."""

    kind: str
    name: str
    state: str  # create | update | unchanged | imported | skipped | failed
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind:<20} {self.name:<42} {self.state}{' - ' + self.detail if self.detail else ''}"


def contains(actual: Any, desired: Any) -> bool:
    """Whether ``actual`` holds everything in ``desired`` (scalars compared as lower-case text)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(actual, list) and len(actual) == len(desired) and all(
            contains(a, d) for a, d in zip(actual, desired, strict=True))
    return str(actual).lower() == str(desired).lower()


def with_retention(policy: dict[str, Any], age: str | None) -> dict[str, Any]:
    """The policy with its delete transition at ``age`` (e.g. ``14d``)."""
    if age is None:
        return policy
    policy = copy.deepcopy(policy)
    for state in policy["policy"]["states"]:
        for transition in state.get("transitions", []):
            if transition.get("state_name") == "delete":
                transition["conditions"] = {"min_index_age": age}
    return policy


def with_replicas(template: dict[str, Any], replicas: int | None) -> dict[str, Any]:
    if replicas is None or "settings" not in template.get("template", {}):
        return template
    template = copy.deepcopy(template)
    template["template"]["settings"].setdefault("index", {})["number_of_replicas"] = replicas
    return template


class Installer:
    """Installs servelog's OpenSearch assets through the client boundary."""

    def __init__(self, client: OpenSearchClient, *, dry_run: bool = False) -> None:
        self._client = client
        self._dry_run = dry_run

    def check_version(self) -> str:
        try:
            info = self._client.info()
        except SinkAuthError as exc:
            raise SetupError(f"OpenSearch refused the credentials ({exc.status}): check username/password") from exc
        except SinkError as exc:
            raise SetupError(f"OpenSearch is unreachable: {exc}") from exc
        version = info.get("version", {})
        number = str(version.get("number", "0"))
        if version.get("distribution") != "opensearch":
            raise SetupError(f"this is not OpenSearch (version {number}, no 'opensearch' distribution): servelog needs "
                             "OpenSearch >= 2.7 for flat_object and date_nanos")
        parts = tuple(int(p) for p in number.split(".")[:2] if p.isdigit())
        if parts < MIN_VERSION:
            raise SetupError(f"OpenSearch {number} is too old: servelog needs >= 2.7 (flat_object for pod labels)")
        return number

    def templates(self, *, replicas: int | None = None) -> list[Action]:
        actions = []
        for template in assets.templates():
            kind = "component_template" if template.is_component else "index_template"
            path = f"/_{kind}/{template.name}"
            desired = with_replicas(template.body, replicas)
            current = self._get(path)
            found = (current or {}).get(f"{kind}s", [])
            if found and contains(found[0].get(kind, {}), desired):
                actions.append(Action(kind, template.name, "unchanged", f"v{template.version}"))
                continue
            state = "update" if found else "create"
            if not self._dry_run:
                self._client.request("PUT", path, body=desired)
            actions.append(Action(kind, template.name, state, f"v{template.version}"))
        return actions

    def ism(self, retention: dict[str, str | None]) -> list[Action]:
        actions = []
        for policy_id, policy in assets.ism_policies().items():
            desired = with_retention(policy, retention.get(policy_id))
            path = f"/_plugins/_ism/policies/{policy_id}"
            current = self._get(path)
            if current is not None and contains(current.get("policy", {}), desired["policy"]):
                actions.append(Action("ism_policy", policy_id, "unchanged"))
                continue
            params = None
            if current is not None:
                params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
            if not self._dry_run:
                try:
                    self._client.request("PUT", path, body=desired, params=params)
                except SinkRejected as exc:
                    if exc.status == 400 and "ism" in str(exc).lower():
                        raise SetupError(f"the ISM plugin refused the policy: {exc}") from exc
                    raise
            actions.append(Action("ism_policy", policy_id, "update" if current else "create"))
        return actions

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            result = self._client.request("GET", path)
        except SinkRejected as exc:
            if exc.status == 404:
                return None
            raise
        return result if isinstance(result, dict) else None


class DashboardsClient:
    """The Dashboards saved-objects import API (not OpenSearch: plain HTTP through urllib3)."""

    def __init__(self, url: str, settings: OpenSearchSettings, *, tenant: str | None = None, timeout: float = 30.0) -> None:
        self._url = url.rstrip("/")
        self._secret = read_secret(settings.password, settings.password_file)
        headers = {"osd-xsrf": "true"}
        if settings.username:
            headers.update(urllib3.make_headers(basic_auth=f"{settings.username}:{self._secret or ''}"))
        if tenant:
            headers["securitytenant"] = tenant
        self._headers = headers
        kwargs: dict[str, Any] = {"timeout": urllib3.Timeout(total=timeout), "retries": False}
        if self._url.startswith("https://"):
            kwargs["cert_reqs"] = "CERT_REQUIRED" if settings.verify_certs else "CERT_NONE"
            if settings.ca_file:
                kwargs["ca_certs"] = str(settings.ca_file)
        self._http = urllib3.PoolManager(**kwargs)

    def _request(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request(method, self._url + path, headers={**self._headers, **kwargs.pop("headers", {})},
                                      **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise SetupError(redact(f"OpenSearch Dashboards is unreachable at {self._url}: {exc}", self._secret)) from exc

    def check(self) -> str:
        response = self._request("GET", "/api/status")
        if response.status in (401, 403):
            raise SetupError(f"OpenSearch Dashboards refused the credentials ({response.status})")
        if response.status != 200:
            raise SetupError(f"OpenSearch Dashboards answered {response.status} on /api/status")
        body = orjson.loads(response.data or b"{}")
        return str(body.get("version", {}).get("number", "?"))

    def import_objects(self, ndjson: bytes, filename: str) -> Action:
        fields = {"file": (filename, ndjson, "application/ndjson")}
        body, content_type = urllib3.encode_multipart_formdata(fields)
        response = self._request("POST", "/api/saved_objects/_import?overwrite=true", body=body,
                                 headers={"Content-Type": content_type})
        try:
            result = orjson.loads(response.data or b"{}")
        except orjson.JSONDecodeError:
            result = {}
        if response.status != 200 or not result.get("success", False):
            errors = result.get("errors") or result.get("message") or response.data[:500].decode("utf-8", "replace")
            raise SetupError(f"saved objects import failed ({response.status}): {errors}")
        return Action("saved_objects", filename, "imported", f"{result.get('successCount', 0)} objects")
