"""Cluster-level endpoints of the loopback OpenSearch: ``/``, ``_cluster/health``, ``_cluster/settings``, ``_nodes``.

Cluster settings are validated like the real ``ClusterSettings`` (an unknown key: ``transient setting
[x], not recognized``) and some act: ``indices.id_field_data.enabled: false`` refuses sorts on
``_id``; ``compatibility.override_main_response_version: true`` (2.x only) makes ``GET /`` report
7.10.2 without a distribution; ``cluster.max_shards_per_node`` and
``cluster.routing.allocation.total_shards_limit`` bound index creation (``ShardLimitValidator``);
``cluster.blocks.read_only`` refuses writes.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.support.opensearch_server.common import CLUSTER_NAME, parse_json
from tests.support.opensearch_server.settings import (
    COMPATIBILITY_OVERRIDE,
    cluster_defaults,
    flatten_settings,
    validate_cluster_update,
)
from tests.support.opensearch_server.store import Index

NODE_ID = "fK8yNsy1QyqzkGBeRzlLOA"


class ClusterApi:
    """Mixed into FakeOpenSearch: the attributes below are its own."""

    version: str
    version_tuple: tuple[int, ...]
    distribution: str | None
    ism_plugin: bool
    data_nodes: int
    cluster_settings: dict[str, dict[str, str]]
    _indices: dict[str, Index]
    _lock: threading.RLock

    # -- cluster -------------------------------------------------------------------------------------------
    def cluster_setting(self, name: str) -> str | None:
        """A cluster setting's effective value: transient, else persistent, else its default."""
        for scope in ("transient", "persistent"):
            if name in self.cluster_settings[scope]:
                return self.cluster_settings[scope][name]
        return cluster_defaults(self.version_tuple, ism_plugin=self.ism_plugin).get(name)

    def _version_header(self) -> dict[str, str]:
        # 3.x answers every request with this header (checked on 3.8.0); 2.x does not send it
        return {"X-OpenSearch-Version": f"OpenSearch/{self.version} (opensearch)"} if self.version_tuple >= (3,) else {}

    def _info(self) -> dict[str, Any]:
        number = self.version
        overridden = self.version_tuple < (3,) and self.cluster_setting(COMPATIBILITY_OVERRIDE) == "true"
        if overridden:
            number = "7.10.2"  # MainResponse with compatibility.override_main_response_version: no distribution
        version: dict[str, Any] = {"number": number, "build_type": "tar", "build_hash": "0" * 40,
                                   "build_date": "2025-02-04T00:00:00.000000Z", "build_snapshot": False,
                                   "lucene_version": "9.12.1", "minimum_wire_compatibility_version": "7.10.0",
                                   "minimum_index_compatibility_version": "7.0.0"}
        if self.distribution is not None and not overridden:
            version = {"distribution": self.distribution, **version}
        tagline = "The OpenSearch Project: https://opensearch.org/" if self.distribution else "You Know, for Search"
        return {"name": "fake-node-1", "cluster_name": CLUSTER_NAME, "cluster_uuid": "Xu7gR0IYQ6e0i0ODm7YO5A",
                "version": version, "tagline": tagline}

    def _nodes(self) -> dict[str, Any]:
        node = {"name": "fake-node-1", "transport_address": "127.0.0.1:9300", "host": "127.0.0.1", "ip": "127.0.0.1",
                "version": self.version, "build_type": "tar", "build_hash": "0" * 40,
                "roles": ["cluster_manager", "data", "ingest", "remote_cluster_client"]}
        return {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": CLUSTER_NAME,
                "nodes": {NODE_ID: node}}

    def shard_counts(self) -> tuple[int, int, int]:
        """(active primaries, active shards, unassigned shards) over every index (replicas need more nodes)."""
        with self._lock:
            primaries = sum(i.shards for i in self._indices.values())
            assigned = sum(i.shards * (1 + min(i.replicas, self.data_nodes - 1)) for i in self._indices.values())
            total = sum(i.shards * (1 + i.replicas) for i in self._indices.values())
        return primaries, assigned, total - assigned

    def _health(self) -> dict[str, Any]:
        primaries, active, unassigned = self.shard_counts()
        return {"cluster_name": CLUSTER_NAME, "status": "yellow" if unassigned else "green", "timed_out": False,
                "number_of_nodes": self.data_nodes, "number_of_data_nodes": self.data_nodes,
                "discovered_master": True, "discovered_cluster_manager": True,
                "active_primary_shards": primaries, "active_shards": active, "relocating_shards": 0,
                "initializing_shards": 0, "unassigned_shards": unassigned, "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0 * active / (active + unassigned) if active else 100.0}

    def _cluster_settings(self, method: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        defaults = cluster_defaults(self.version_tuple, ism_plugin=self.ism_plugin)
        flat_view = query.get("flat_settings") == "true"

        def shape(flat: dict[str, str]) -> dict[str, Any]:
            if flat_view:
                return dict(flat)
            nested: dict[str, Any] = {}
            for key, value in flat.items():
                node = nested
                *parents, leaf = key.split(".")
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = value
            return nested

        with self._lock:
            if method == "PUT":
                request = parse_json(body)
                for scope in ("persistent", "transient"):
                    flat = flatten_settings(request.get(scope) or {})
                    validate_cluster_update(scope, flat, defaults, self.version_tuple)
                for scope in ("persistent", "transient"):
                    for key, value in flatten_settings(request.get(scope) or {}).items():
                        if value is None:
                            self.cluster_settings[scope].pop(key, None)
                        else:
                            self.cluster_settings[scope][key] = str(value).lower() if isinstance(value, bool) else str(value)
                    # the answer echoes what the request set, per scope (nulls dropped)
                answer = {"acknowledged": True}
                for scope in ("persistent", "transient"):
                    echoed = {k: (str(v).lower() if isinstance(v, bool) else str(v))
                              for k, v in flatten_settings(request.get(scope) or {}).items() if v is not None}
                    answer[scope] = shape(echoed)
                return 200, answer
            answer = {scope: shape(self.cluster_settings[scope]) for scope in ("persistent", "transient")}
            if query.get("include_defaults") == "true":
                answer["defaults"] = shape({k: v for k, v in defaults.items()
                                            if k not in self.cluster_settings["persistent"]
                                            and k not in self.cluster_settings["transient"]})
            return 200, answer


    def shard_limit_problem(self, adding: int) -> str | None:
        """``ShardLimitValidator.checkShardLimit``: why creating ``adding`` more shards is refused, or None."""
        per_node = int(self.cluster_setting("cluster.max_shards_per_node") or 1000)
        total_limit = int(self.cluster_setting("cluster.routing.allocation.total_shards_limit") or -1)
        limit = per_node * self.data_nodes if total_limit == -1 else min(total_limit, per_node * self.data_nodes)
        with self._lock:
            current = sum(i.shards * (1 + i.replicas) for i in self._indices.values())
        if current + adding <= limit:
            return None
        kind = " LOCAL_ONLY" if self.version_tuple >= (3,) else ""  # 3.x names the shard kind
        return (f"Validation Failed: 1: this action would add [{adding}] total{kind} shards, but this cluster "
                f"currently has [{current}]/[{limit}] maximum{kind} shards open;")
