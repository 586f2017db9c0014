"""Index and cluster settings as OpenSearch validates and returns them.

The index settings a node knows are its ``IndexScopedSettings`` (OpenSearch:server
``common/settings/IndexScopedSettings.java`` ``BUILT_IN_INDEX_SETTINGS``) plus what plugins register.
The lists below are exactly the keys a real node reports for an index with
``GET /<index>/_settings?include_defaults=true&flat_settings=true`` (2.19.6 and 3.8.0 integ-test
distributions, no plugins), plus the group settings (``index.analysis.*``, allocation filters, ...)
that are prefixes rather than keys. An unknown key is refused the way the node refuses it:
``unknown setting [index.x] please check that any required plugins are installed, or check the
breaking changes documentation for removed settings`` (``illegal_argument_exception`` in 2.x,
``settings_exception`` in 3.x); a private one (``index.uuid``) the same way in 2.x and as a
``validation_exception`` in 3.x (``MetadataCreateIndexService.validateIndexSettings``).
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.opensearch_server.common import Reply, error_body, fail, settings_error_type

_BOTH = """
    allocation.existing_shards_allocator allocation.max_retries analyze.max_token_count
    append_only.enabled auto_expand_replicas blocks.metadata blocks.read blocks.read_only
    blocks.read_only_allow_delete blocks.write check_pending_flush.enabled codec codec.compression_level
    composite_index composite_index.star_tree.default.max_leaf_docs
    composite_index.star_tree.field.default.date_intervals
    composite_index.star_tree.field.default.metrics composite_index.star_tree.field.max_base_metrics
    composite_index.star_tree.field.max_date_intervals composite_index.star_tree.field.max_dimensions
    composite_index.star_tree.max_fields compound_format data_path default_pipeline fielddata.cache
    final_pipeline flush_after_merge force_memory_term_dictionary format gc_deletes hidden
    highlight.max_analyzed_offset indexing.slowlog.level indexing.slowlog.reformat
    indexing.slowlog.source indexing.slowlog.threshold.index.debug indexing.slowlog.threshold.index.info
    indexing.slowlog.threshold.index.trace indexing.slowlog.threshold.index.warn
    load_fixed_bitset_filters_eagerly mapper.dynamic mapping.coerce mapping.depth.limit
    mapping.field_name_length.limit mapping.ignore_malformed mapping.nested_fields.limit
    mapping.nested_objects.limit mapping.total_fields.limit max_adjacency_matrix_filters
    max_docvalue_fields_search max_inner_result_window max_ngram_diff max_refresh_listeners
    max_regex_length max_rescore_window max_result_window max_script_fields max_shingle_diff
    max_slices_per_pit max_slices_per_scroll max_terms_count
    merge.log_byte_size_policy.max_merge_segment
    merge.log_byte_size_policy.max_merge_segment_forced_merge merge.log_byte_size_policy.max_merged_docs
    merge.log_byte_size_policy.merge_factor merge.log_byte_size_policy.min_merge
    merge.log_byte_size_policy.no_cfs_ratio merge.policy merge.policy.deletes_pct_allowed
    merge.policy.expunge_deletes_allowed merge.policy.floor_segment merge.policy.max_merge_at_once
    merge.policy.max_merged_segment merge.policy.reclaim_deletes_weight merge.policy.segments_per_tier
    merge.scheduler.auto_throttle merge.scheduler.max_merge_count merge.scheduler.max_thread_count
    merge_on_flush.enabled merge_on_flush.max_full_flush_merge_wait_time merge_on_flush.policy
    number_of_replicas number_of_routing_shards number_of_shards optimize_auto_generated_id
    optimize_doc_id_lookup.fuzzy_set.enabled optimize_doc_id_lookup.fuzzy_set.false_positive_probability
    priority queries.cache.enabled query.default_field query.derived_field.enabled
    query.max_nested_depth query.parse.allow_unmapped_fields query_string.lenient recovery.type
    refresh_interval remote_store.enabled remote_store.segment.repository
    remote_store.translog.buffer_interval remote_store.translog.keep_extra_gen
    remote_store.translog.repository replication.type requests.cache.enable routing.allocation.enable
    routing.allocation.total_shards_per_node routing.rebalance.enable routing_partition_size
    search.concurrent.max_slice_count search.concurrent_segment_search.enabled
    search.concurrent_segment_search.mode search.default_pipeline search.idle.after search.slowlog.level
    search.slowlog.threshold.fetch.debug search.slowlog.threshold.fetch.info
    search.slowlog.threshold.fetch.trace search.slowlog.threshold.fetch.warn
    search.slowlog.threshold.query.debug search.slowlog.threshold.query.info
    search.slowlog.threshold.query.trace search.slowlog.threshold.query.warn search.throttled
    searchable_snapshot.index.id searchable_snapshot.repository searchable_snapshot.shard_path_type
    searchable_snapshot.snapshot_id.name searchable_snapshot.snapshot_id.uuid shard.check_on_startup
    soft_deletes.enabled soft_deletes.retention.operations soft_deletes.retention_lease.period
    sort.field sort.missing sort.mode sort.order store.fs.fs_lock store.hybrid.nio.extensions
    store.preload store.stats_refresh_interval store.type translog.durability
    translog.flush_threshold_size translog.generation_threshold_size translog.retention.age
    translog.retention.size translog.sync_interval unassigned.node_left.delayed_timeout
    unreferenced_file_cleanup.enabled use_compound_file verified_before_close warmer.enabled
    write.wait_for_active_shards
"""

_SINCE_3 = """
    aggregation.streaming.min_segment_size auto_expand_search_replicas auto_force_merge.enabled
    blocks.search_only bulk.adaptive_shard_selection.enabled composite_store.type context_aware.enabled
    context_aware.max_retry_on_lookup_map_acquisition_exception derived_source.enabled
    derived_source.translog.enabled ingestion_source.all_active ingestion_source.error_strategy
    ingestion_source.internal_queue_size ingestion_source.mapper_type
    ingestion_source.num_processor_threads ingestion_source.pointer.init.reset
    ingestion_source.pointer.init.reset.value ingestion_source.pointer_based_lag_update_interval
    ingestion_source.poll.max_batch_size ingestion_source.poll.timeout ingestion_source.type
    ingestion_source.warmup.lag_threshold ingestion_source.warmup.timeout
    mapping.dynamic_properties.lucene_field.limit merge.scheduler.max_force_merge_mb_per_sec
    number_of_search_replicas number_of_virtual_shards percolator.map_unmapped_fields_as_text
    periodic_flush_interval pluggable.dataformat pluggable.dataformat.enabled
    routing.allocation.total_primary_shards_per_node
    routing.allocation.total_remote_capable_primary_shards_per_node
    routing.allocation.total_remote_capable_shards_per_node search.star_tree_index.enabled
    segment_replication.publish_referenced_segments_interval store.data_locality store.factory
    tiered.storage.slowlog.enabled tiered.storage.slowlog.level
    tiered.storage.slowlog.threshold.fetch.debug tiered.storage.slowlog.threshold.fetch.info
    tiered.storage.slowlog.threshold.fetch.trace tiered.storage.slowlog.threshold.fetch.warn
    tiered.storage.slowlog.threshold.query.debug tiered.storage.slowlog.threshold.query.info
    tiered.storage.slowlog.threshold.query.trace tiered.storage.slowlog.threshold.query.warn
    tiering.state translog.read_forward warm
"""

_UNTIL_3 = """
    store.hybrid.mmap.extensions
"""

#: group settings: any key under these prefixes is accepted
_GROUPS = ("analysis.", "similarity.", "routing.allocation.include.", "routing.allocation.exclude.",
           "routing.allocation.require.", "routing.allocation.search.", "search.slowlog.", "indexing.slowlog.",
           "merge.", "store.", "translog.", "sort.", "knn.")
#: registered by the Index State Management plugin (index-management ManagedIndexSettings)
_ISM = ("plugins.index_state_management.", "opendistro.index_state_management.")
_PRIVATE = {"uuid", "creation_date", "provided_name", "version.created", "version.upgraded", "history.uuid"}
_TIME = re.compile(r"^-1$|^0$|^\d+(d|h|m|s|ms|micros|nanos)$")
_INTEGER = {"number_of_shards", "number_of_replicas", "mapping.total_fields.limit", "mapping.depth.limit",
            "mapping.nested_fields.limit", "max_result_window", "priority"}


def known_index_settings(version: tuple[int, ...]) -> frozenset[str]:
    names = set(_BOTH.split()) | set((_SINCE_3 if version >= (3,) else _UNTIL_3).split())
    return frozenset(names)


def flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_setting_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_setting_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def normalize_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as OpenSearch hands them back: nested under ``index``, every scalar as text."""
    nested: dict[str, Any] = {}
    for key, value in flatten_settings(settings).items():
        full = key if key.startswith("index.") else f"index.{key}"
        node = nested
        *parents, leaf = full.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _as_setting_text(value)
    return nested


def validate_index_settings(settings: dict[str, Any], version: tuple[int, ...], *, ism_plugin: bool) -> None:
    """Refuse unknown, private or unparsable index settings as ``PUT /<index>`` and templates do."""
    known = known_index_settings(version)
    for key, value in flatten_settings(settings).items():
        name = key.removeprefix("index.")
        full = f"index.{name}"
        if name in _PRIVATE:
            if version >= (3,):
                raise fail(400, "validation_exception", f"Validation Failed: 1: private index setting [{full}] can not "
                           "be set explicitly;")
            raise _unknown(full, version)
        groups = _GROUPS + (_ISM if ism_plugin else ())
        if name not in known and not name.startswith(groups):
            raise _unknown(full, version)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if name == "refresh_interval" and not _TIME.match(text):
            raise fail(400, "illegal_argument_exception", f"failed to parse setting [{full}] with value [{text}] as a "
                       "time value: unit is missing or unrecognized")
        if name in _INTEGER and not re.fullmatch(r"-?\d+", text):
            cause = {"type": "number_format_exception", "reason": f'For input string: "{text}"'}
            raise Reply(400, {"error": {"root_cause": [{"type": "illegal_argument_exception", "reason": f"Failed to "
                              f"parse value [{text}] for setting [{full}]"}], "type": "illegal_argument_exception",
                              "reason": f"Failed to parse value [{text}] for setting [{full}]", "caused_by": cause},
                              "status": 400})


def _unknown(full: str, version: tuple[int, ...]) -> Reply:
    return fail(400, settings_error_type(version), f"unknown setting [{full}] please check that any required plugins "
                "are installed, or check the breaking changes documentation for removed settings")


def refresh_interval_ns(settings: dict[str, Any]) -> int | None:
    """The index's refresh interval in nanoseconds (default 1s), None when refreshes are disabled (``-1``)."""
    value = str(flatten_settings(settings).get("index.refresh_interval",
                                               flatten_settings(settings).get("refresh_interval", "1s")))
    if value == "-1":
        return None
    match = re.fullmatch(r"(\d+)(d|h|m|s|ms|micros|nanos)?", value)
    if match is None:
        return 1_000_000_000
    unit = {"d": 86400 * 10**9, "h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "micros": 10**3,
            "nanos": 1, None: 10**6}[match[2]]
    return int(match[1]) * unit


# -- cluster settings ----------------------------------------------------------------------------
#: the dynamic cluster settings the loopback server knows, with their defaults (as text, as GET answers)
CLUSTER_DEFAULTS: dict[str, str] = {
    "indices.id_field_data.enabled": "true",
    "cluster.max_shards_per_node": "1000",
    "cluster.routing.allocation.total_shards_limit": "-1",
    "cluster.blocks.read_only": "false",
    "cluster.blocks.read_only_allow_delete": "false",
    "cluster.routing.allocation.disk.threshold_enabled": "true",
    "action.auto_create_index": "true",
    "search.max_buckets": "65535",
}
#: 2.x only (a 3.8.0 node answers "transient setting [...], not recognized"): GET / then reports 7.10.2
COMPATIBILITY_OVERRIDE = "compatibility.override_main_response_version"


def cluster_defaults(version: tuple[int, ...], *, ism_plugin: bool) -> dict[str, str]:
    defaults = dict(CLUSTER_DEFAULTS)
    if version < (3,):
        defaults[COMPATIBILITY_OVERRIDE] = "false"
    if ism_plugin:
        defaults["plugins.index_state_management.job_interval"] = "5"
    return defaults


def validate_cluster_update(kind: str, flat: dict[str, Any], known: dict[str, str], version: tuple[int, ...]) -> None:
    for key in flat:
        if key not in known:
            raise Reply(400, error_body(400, settings_error_type(version), f"{kind} setting [{key}], not recognized"))
