"""Installing servelog's OpenSearch assets: component and index templates, ISM retention policies.

Each asset is read back first (``GET``) and written only when the cluster lacks it or holds a
different version, so a second run sends no write at all and says so. ISM policies are replaced
with ``if_seq_no``/``if_primary_term`` from that read, as the plugin demands (a blind ``PUT`` on an
existing policy is a 409); a 409 at that point means someone changed the policy in between. Their
``ism_template`` priority is chosen next to the other policies' (:mod:`collector.setup.ism`).

The version check reads ``GET /`` and, when that names no distribution, ``GET /_nodes`` (a 2.x
cluster in compatibility mode reports 7.10.2 at ``/``). The shard facts for the sizing check come
from ``_cluster/health``, ``_cluster/settings`` and ``_cat/indices`` (:mod:`collector.setup.sizing`).

All requests go through :class:`~collector.sinks.opensearch.client.OpenSearchClient`; its errors
become :class:`~collector.errors.SetupError` with what was being done, never with credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collector.errors import SetupError, SinkAuthError, SinkError, SinkRejected, SinkUnavailable
from collector.setup.assets import IsmPolicy, Template
from collector.setup.ism import Templates, choose_priority
from collector.setup.plan import Step, check_opensearch, retention_of, verdict, with_replicas, with_retention
from collector.setup.sizing import ClusterShards
from collector.sinks.opensearch.client import OpenSearchClient

NO_ISM = ("the cluster has no Index State Management plugin (ISM): servelog's retention policies need it. "
          "Install the plugin (opensearch-index-management), or run setup with --skip-retention to install the "
          "templates without retention (then nothing deletes old indices: do it yourself)")
_POLICY_PAGE = 200


class Installer:
    """Plans and applies the OpenSearch side of ``servelog setup``."""

    def __init__(self, client: OpenSearchClient) -> None:
        self._client = client
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.reported_version: str | None = None  # what GET / said, when it was not the real version

    def check_version(self) -> str:
        """Reachable, credentials accepted, OpenSearch >= 2.7 (compatibility mode too); its version number."""
        try:
            info = self._client.info()
        except (SinkUnavailable, SinkRejected) as exc:
            raise _setup_error("GET", "/", exc) from exc
        nodes: list[str] | None = None
        if (info.get("version") or {}).get("distribution") != "opensearch":
            try:
                answer = self._client.request("GET", "/_nodes", params={"filter_path": "nodes.*.version"})
                nodes = [str(n.get("version")) for n in (answer.get("nodes") or {}).values()]
            except SinkError:
                nodes = None  # not permitted or not there: check_opensearch says what to do
        number = check_opensearch(info, nodes)
        reported = str((info.get("version") or {}).get("number", ""))
        self.reported_version = reported if reported != number else None
        return number

    def plan(self, templates: Sequence[Template], policies: Sequence[IsmPolicy], *, replicas: int | None = None,
             retention: Mapping[str, str | None] | None = None, ism_priority: int | None = None) -> list[Step]:
        """Read what the cluster holds and decide each asset; writes nothing (no policies: none planned)."""
        steps = [self._plan_template(t, replicas) for t in templates]
        retention = retention or {}
        others = self._ism_templates() if policies else {}
        for policy in policies:
            choice = choose_priority(policy.policy_id, with_retention(policy.body, retention.get(policy.policy_id)),
                                     others, ism_priority)
            self.notes += choice.notes
            self.warnings += choice.warnings
            steps.append(self._plan_policy(policy, choice.body))
        return steps

    def _ism_templates(self) -> Templates:
        """Every stored policy's ``ism_template`` entries, read page by page."""
        found: dict[str, list[dict[str, Any]]] = {}
        start = 0
        while True:
            answer = self._get(f"/_plugins/_ism/policies?size={_POLICY_PAGE}&from={start}") or {}
            page = answer.get("policies") or []
            for item in page:
                found[str(item.get("_id"))] = list((item.get("policy") or {}).get("ism_template") or [])
            start += len(page)
            if not page or start >= int(answer.get("total_policies", 0)):
                return found

    def shard_facts(self) -> ClusterShards:
        """Data nodes, open shards (servelog's among them) and the shard limit settings; SinkError when refused."""
        health = self._client.request("GET", "/_cluster/health")
        settings = self._client.request("GET", "/_cluster/settings", params={
            "include_defaults": "true", "filter_path": "**.max_shards_per_node,**.total_shards_limit"})
        rows = self._client.request("GET", "/_cat/indices/serving-*", params={
            "format": "json", "h": "index,pri,rep,status", "expand_wildcards": "open", "ignore_unavailable": "true"})

        def setting(*path: str) -> int | None:
            for scope in ("transient", "persistent", "defaults"):
                node: Any = settings.get(scope) or {}
                for part in path:
                    node = node.get(part) if isinstance(node, dict) else None
                if node is not None:
                    return int(node)
            return None

        open_shards = sum(int(health.get(k, 0)) for k in ("active_shards", "initializing_shards", "unassigned_shards"))
        servelog = sum(int(r.get("pri") or 0) * (1 + int(r.get("rep") or 0)) for r in rows or [])
        return ClusterShards(
            data_nodes=int(health.get("number_of_data_nodes", 1)), open_shards=open_shards, servelog_shards=servelog,
            max_shards_per_node=setting("cluster", "max_shards_per_node") or 1000,
            total_shards_limit=setting("cluster", "routing", "allocation", "total_shards_limit") or -1)

    def log_index_names(self) -> list[str]:
        """The existing ``serving-logs-*`` indices (to count namespaces); empty when they cannot be listed."""
        try:
            rows = self._client.request("GET", "/_cat/indices/serving-logs-*", params={
                "format": "json", "h": "index", "ignore_unavailable": "true"})
        except SinkError:
            return []
        return [str(r.get("index")) for r in rows or []]

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

    def _plan_policy(self, policy: IsmPolicy, desired: dict[str, Any]) -> Step:
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
                raise SetupError(NO_ISM) from exc
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
