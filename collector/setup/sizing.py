"""Will servelog's daily indices fit the cluster's shard limit? The arithmetic, stated (pure).

OpenSearch refuses to create an index once the open shards (primaries and replicas of every open
index) plus the new index's would exceed ``cluster.max_shards_per_node`` x data nodes, or
``cluster.routing.allocation.total_shards_limit`` when that is set and lower (OpenSearch
``ShardLimitValidator.checkShardLimit``: "this action would add [2] total shards, but this cluster
currently has [1000]/[1000] maximum shards open"). The collector's auto-created daily index then
fails for every line of that day: lines wait, they are not dead-lettered, but nothing is indexed.

servelog creates, per day, one log index per namespace (``serving-logs-{namespace}-{date}``; with
``opensearch.index: serving-logs-{date}`` one index a day, the namespace being a field), one
dead-letter index when a line is refused, and one events index. Each index has
``number_of_shards`` x (1 + ``number_of_replicas``) shards, and retention keeps ``days + 1`` of them
(today's and ``days`` old ones; ISM deletes an index once it is ``days`` old). So the steady state is

    log shards = streams x (log days + 1) x shards x (1 + replicas)        streams = namespaces, or 1
    + (dead-letter days + 1) x shards x (1 + replicas) + (events days + 1) x shards x (1 + replicas)

and it must stay under the limit, next to everything else the cluster holds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

WARN_RATIO = 0.8
_AGE = re.compile(r"^(\d+)(d|h|m|s|ms|micros|nanos)$")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}


def age_days(age: str | None) -> int | None:
    """Whole days an index of this ISM age is kept (rounded up); None for no retention."""
    if age is None:
        return None
    match = _AGE.match(age)
    if match is None:
        return None
    return max(1, math.ceil(int(match[1]) * _SECONDS[match[2]] / 86400))


@dataclass(frozen=True, slots=True)
class ClusterShards:
    """What the cluster says about shards (``_cluster/health``, ``_cluster/settings``, ``_cat/indices``)."""

    data_nodes: int
    open_shards: int  # active + initializing + unassigned: every shard of every open index
    servelog_shards: int  # of those, the shards of serving-* indices
    max_shards_per_node: int = 1000
    total_shards_limit: int = -1

    @property
    def limit(self) -> int:
        per_nodes = self.max_shards_per_node * max(self.data_nodes, 1)
        return per_nodes if self.total_shards_limit < 0 else min(self.total_shards_limit, per_nodes)


@dataclass(frozen=True, slots=True)
class Layout:
    """What servelog will create: streams of daily indices and how long each kind is kept."""

    namespaces: int
    per_namespace: bool  # opensearch.index contains {namespace}
    shards: int
    replicas: int
    log_days: int | None
    deadletter_days: int | None
    events_days: int | None

    @property
    def shards_per_index(self) -> int:
        return self.shards * (1 + self.replicas)

    @property
    def streams(self) -> int:
        return self.namespaces if self.per_namespace else 1


@dataclass(frozen=True, slots=True)
class Projection:
    steady_servelog: int | None  # None: no retention, no steady state
    per_day: int
    projected_total: int | None
    limit: int
    arithmetic: str
    warning: str | None


def project(layout: Layout, cluster: ClusterShards) -> Projection:
    """The servelog shards the retention keeps, the cluster total that gives, and a warning near the limit."""
    per_index = layout.shards_per_index
    per_day = (layout.streams + 2) * per_index
    kinds = [("log", layout.streams, layout.log_days), ("dead-letter", 1, layout.deadletter_days),
             ("events", 1, layout.events_days)]
    parts, steady = [], 0
    for name, count_streams, days in kinds:
        if days is None:
            parts.append(f"{name}: {count_streams} x unbounded days (no retention)")
            continue
        count = count_streams * (days + 1) * per_index
        steady += count
        parts.append(f"{name}: {count_streams} x ({days} + 1) days x {layout.shards} x (1 + {layout.replicas}) = {count}")
    unbounded = any(days is None for _, _, days in kinds)
    others = max(cluster.open_shards - cluster.servelog_shards, 0)
    limit = cluster.limit
    streams = (f"{layout.namespaces} namespace(s), one index each per day" if layout.per_namespace
               else "one log index a day (namespace as a field)")
    arithmetic = (f"shards: {streams}; " + "; ".join(parts)
                  + f"; other indices hold {others}; the limit is {limit} (cluster.max_shards_per_node "
                  f"{cluster.max_shards_per_node} x {cluster.data_nodes} data node(s)"
                  + (f", total_shards_limit {cluster.total_shards_limit}" if cluster.total_shards_limit >= 0 else "")
                  + ")")
    advice = ("one index a day (opensearch.index: serving-logs-{date}), fewer replicas (--replicas), a shorter "
              "retention, or a higher cluster.max_shards_per_node / more data nodes")
    if unbounded:
        room = limit - cluster.open_shards
        days_left = room // per_day if per_day else 0
        unbounded_warning = (f"without retention servelog adds about {per_day} shards a day; the shard limit ({limit}) is "
                   f"reached in about {max(days_left, 0)} day(s), then new daily indices cannot be created: delete old "
                   f"indices yourself, or use {advice}")
        return Projection(None, per_day, None, limit, arithmetic, unbounded_warning)
    projected = others + max(steady, cluster.servelog_shards)
    warning: str | None = None
    if projected > limit:
        warning = (f"servelog's indices would need {steady} shards, {projected} with the other indices, above the "
                   f"cluster's limit of {limit}: new daily indices would be refused and lines would wait "
                   f"unindexed. Use {advice}")
    elif projected >= WARN_RATIO * limit:
        warning = (f"servelog's indices would bring the cluster to {projected} of its {limit} shards "
                   f"({projected * 100 // max(limit, 1)}%): close to the limit, past which new daily indices are "
                   f"refused. Consider {advice}")
    return Projection(steady, per_day, projected, limit, arithmetic, warning)


def namespaces_in(index_names: list[str], template: str) -> set[str]:
    """The namespaces that existing log indices were created for, read back through ``opensearch.index``."""
    if "{namespace}" not in template:
        return set()
    pattern = re.escape(template).replace(re.escape("{namespace}"), "(?P<ns>.+?)")
    pattern = pattern.replace(re.escape("{date}"), r"\d{4}\.\d{2}\.\d{2}")
    compiled = re.compile(f"^{pattern}$")
    return {m["ns"] for name in index_names if (m := compiled.match(name))}
