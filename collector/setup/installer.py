"""Installing servelog's OpenSearch assets: component and index templates, ISM retention policies.

Each asset is read back first (``GET``) and written only when the cluster lacks it or holds a
different version, so a second run sends no write at all and says so. ISM policies are replaced
with ``if_seq_no``/``if_primary_term`` from that read, as the plugin demands (a blind ``PUT`` on an
existing policy is a 409); a 409 at that point means someone changed the policy in between.

All requests go through :class:`~collector.sinks.opensearch.client.OpenSearchClient`; its errors
become :class:`~collector.errors.SetupError` with what was being done, never with credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collector.errors import SetupError, SinkAuthError, SinkRejected, SinkUnavailable
from collector.setup.assets import IsmPolicy, Template
from collector.setup.plan import Step, check_opensearch, retention_of, verdict, with_replicas, with_retention
from collector.sinks.opensearch.client import OpenSearchClient


class Installer:
    """Plans and applies the OpenSearch side of ``servelog setup``."""

    def __init__(self, client: OpenSearchClient) -> None:
        self._client = client

    def check_version(self) -> str:
        """``GET /``: reachable, credentials accepted, OpenSearch >= 2.7; its version number."""
        try:
            info = self._client.info()
        except (SinkUnavailable, SinkRejected) as exc:
            raise _setup_error("GET", "/", exc) from exc
        return check_opensearch(info)

    def plan(self, templates: Sequence[Template], policies: Sequence[IsmPolicy], *, replicas: int | None = None,
             retention: Mapping[str, str | None] | None = None) -> list[Step]:
        """Read what the cluster holds and decide each asset; writes nothing."""
        steps = [self._plan_template(t, replicas) for t in templates]
        retention = retention or {}
        steps += [self._plan_policy(p, retention.get(p.policy_id)) for p in policies]
        return steps

    def apply(self, steps: Sequence[Step]) -> None:
        """Send the writes of the changed steps, in order (component templates before index templates)."""
        for step in steps:
            if not step.changed:
                continue
            try:
                self._client.request(step.method, step.path, body=step.body,
                                     params=dict(step.params) if step.params else None)
            except SinkRejected as exc:
                if exc.status == 409 and step.kind == "ism_policy":
                    raise SetupError(f"ISM policy {step.name} changed while setup ran (409 version conflict); "
                                     "run setup again") from exc
                raise _setup_error(step.method, step.path, exc) from exc
            except SinkUnavailable as exc:
                raise _setup_error(step.method, step.path, exc) from exc

    def _plan_template(self, template: Template, replicas: int | None) -> Step:
        desired = with_replicas(template.body, replicas)
        found = (self._get(template.path) or {}).get(f"{template.kind}s", [])
        current = next((t.get(template.kind) for t in found if t.get("name") == template.name), None)
        return Step(template.kind, template.name, verdict(current, desired), "PUT", template.path, body=desired,
                    detail=f"v{template.version}")

    def _plan_policy(self, policy: IsmPolicy, age: str | None) -> Step:
        desired = with_retention(policy.body, age)
        current = self._get(policy.path)
        state = verdict(None if current is None else current.get("policy"), desired["policy"])
        params = None
        if state == "update" and current is not None:
            params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
        return Step("ism_policy", policy.policy_id, state, "PUT", policy.path, body=desired, params=params,
                    detail=f"delete after {retention_of(desired)}")

    def _get(self, path: str) -> dict[str, Any] | None:
        """The parsed answer, or None on 404."""
        try:
            result = self._client.request("GET", path)
        except SinkRejected as exc:
            if exc.status == 404:
                return None
            if exc.status == 400 and "no handler found" in str(exc) and path.startswith("/_plugins/_ism"):
                raise SetupError("the cluster has no Index State Management plugin (ISM): servelog's retention "
                                 "policies need it") from exc
            raise _setup_error("GET", path, exc) from exc
        except SinkUnavailable as exc:
            raise _setup_error("GET", path, exc) from exc
        return result if isinstance(result, dict) else None


def _setup_error(method: str, path: str, exc: Exception) -> SetupError:
    if isinstance(exc, SinkAuthError):
        if exc.status == 401:
            return SetupError("OpenSearch refused the credentials (401): check opensearch.username and "
                              "opensearch.password / opensearch.password_file")
        return SetupError(f"OpenSearch refused {method} {path} (403): the user lacks the permission; "
                          "setup needs cluster permissions for index templates and ISM policies")
    if isinstance(exc, SinkUnavailable):
        return SetupError(f"{exc} (during {method} {path})")
    return SetupError(f"{method} {path} failed: {exc}")
