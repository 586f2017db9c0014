"""A loopback OpenSearch that speaks the real REST protocol, with scriptable faults, for tests.

:class:`FakeOpenSearch` is an in-process HTTP/1.1 server (keep-alive, one daemon thread per
connection, bound to 127.0.0.1 on an ephemeral port, optionally TLS) that the real ``opensearch-py``
client talks to unchanged. It answers the way OpenSearch 2.x and 3.x answer, so tests exercise
servelog's real parsing and error handling rather than a simplified contract; ``tests/contract``
runs one set of checks against it and against real 2.19 and 3.x nodes to keep it honest.

- ``GET``/``HEAD /`` (with ``compatibility.override_main_response_version`` on 2.x), ``_nodes``,
  ``_cluster/health``, ``_cluster/settings`` (:mod:`.cluster`);
- ``_bulk``, ``/<index>/_doc``, ``_search``/``_count`` (the query DSL servelog uses, ``sort``,
  ``search_after``, ``track_total_hits``), ``_refresh`` with the real refresh model: writes become
  searchable after a refresh, scheduled or explicit (:mod:`.documents`, :mod:`.store`,
  :mod:`.search`);
- indices, index settings (unknown and private ones refused), mappings (unknown types and
  parameters refused; documents checked against them with ``validate_mappings=True``), composable
  index templates and component templates, ``_cat/indices`` (:mod:`.indices`, :mod:`.settings`,
  :mod:`.mappings`);
- ISM policies as the index-management plugin parses and validates them, ``ism_template`` clashes
  included (:mod:`.ism`), attached to a new index by its ``ism_template`` and shown by
  ``_plugins/_ism/explain`` (:mod:`.ism_managed`); without ``ism_plugin`` their endpoints are unknown;
- anything else: OpenSearch's own "no handler found" 400 (never a crash).

Faults are scripted and consumed in order of arrival, thread-safely: whole-request statuses
(:meth:`FakeOpenSearch.fail_requests`), per-document statuses (:meth:`~FakeOpenSearch.fail_items`,
:meth:`~FakeOpenSearch.fail_items_where`), dropped connections before or after the bulk is applied
(:meth:`~FakeOpenSearch.drop_connections`), slow answers (:meth:`~FakeOpenSearch.set_delay`) and
an unavailable cluster (:meth:`~FakeOpenSearch.set_unavailable`). Real cluster behaviour that has a
setting (blocks, the shard limit, ``_id`` fielddata) is reached through that setting, as on a
real cluster.

Bulk bodies of several megabytes are parsed with ``orjson`` line by line and applied under one lock
acquisition, so the server is never the bottleneck of a test.
"""

from tests.support.opensearch_server.common import CLUSTER_NAME, RequestRecord, error_body
from tests.support.opensearch_server.documents import ItemPredicate
from tests.support.opensearch_server.mappings import field_type, validate_source
from tests.support.opensearch_server.search import filter_path, matches
from tests.support.opensearch_server.server import FakeOpenSearch
from tests.support.opensearch_server.settings import normalize_settings
from tests.support.opensearch_server.timeparse import date_math_to_nanos, iso_to_nanos, nanos_to_iso

__all__ = [
    "CLUSTER_NAME", "FakeOpenSearch", "ItemPredicate", "RequestRecord", "date_math_to_nanos", "error_body",
    "field_type", "filter_path", "iso_to_nanos", "matches", "nanos_to_iso", "normalize_settings", "validate_source",
]
