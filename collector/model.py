"""The shapes that cross component boundaries: document fields, index names, pod metadata.

Everything here is data: the field names every document carries (and the index template maps),
the naming of target indices, and the small protocol through which any metadata provider (the
Kubernetes pod watch, a static file, nothing at all) hands pod facts to enrichment. Keeping them in
one module lets the index template test, the Dashboards assets and the pipeline agree by import
rather than by copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# -- document fields -------------------------------------------------------------------------
# Every log document is a flat JSON object with these keys (absent when unknown, never null).
F_TIMESTAMP = "timestamp"  # RFC 3339 UTC with 9 fraction digits; mapped as date_nanos
F_MESSAGE = "message"  # the line (or grouped lines) as text
F_STREAM = "stream"  # stdout | stderr
F_LEVEL = "level"  # debug | info | warning | error | critical, when the line carries one
F_COMPONENT = "component"  # predictor | transformer | explainer | ...
F_CONTAINER = "container_name"  # kserve-container, storage-initializer, agent, ...
F_SERVING = "serving_name"  # InferenceService / deployment name
F_MODEL_NAME = "model_name"
F_MODEL_VERSION = "model_version"  # a string; the template adds a numeric sub-field
F_NAMESPACE = "namespace"
F_POD_NAME = "pod_name"
F_POD_UID = "pod_uid"
F_NODE = "node_name"
F_RESTART = "restart_count"  # integer
F_LABELS = "labels"  # pod labels, flat_object
F_PROJECT = "project"  # Hopsworks project (from the namespace or label)
F_METADATA_SOURCE = "metadata_source"  # kubernetes | static | path: who enriched this line
F_PARSE_ERROR = "parse_error"  # malformed_cri | invalid_timestamp | invalid_utf8 | malformed_json
F_TRUNCATED = "truncated"  # true when the line was cut at max_line_bytes
F_ORIGINAL_BYTES = "original_bytes"  # the line's size before it was cut
F_LINE_COUNT = "line_count"  # number of physical lines grouped into this document (tracebacks)
F_DOC_ID = "doc_id"  # the document's own _id, as a keyword with doc values: the sort tiebreaker of servelog logs

LOG_FIELDS: tuple[str, ...] = (
    F_TIMESTAMP, F_MESSAGE, F_STREAM, F_LEVEL, F_COMPONENT, F_CONTAINER, F_SERVING, F_MODEL_NAME,
    F_MODEL_VERSION, F_NAMESPACE, F_POD_NAME, F_POD_UID, F_NODE, F_RESTART, F_LABELS, F_PROJECT,
    F_METADATA_SOURCE, F_PARSE_ERROR, F_TRUNCATED, F_ORIGINAL_BYTES, F_LINE_COUNT, F_DOC_ID,
)

# Fields of a dead-letter document (index ``serving-deadletter-YYYY.MM.dd``).
DEADLETTER_FIELDS: tuple[str, ...] = (
    F_TIMESTAMP, F_NAMESPACE, F_POD_NAME, F_CONTAINER, F_SERVING, F_MODEL_VERSION, F_COMPONENT,
    "reason", "error_type", "status", "target_index", "doc_id", "raw",
)

# -- index names -----------------------------------------------------------------------------
DEFAULT_LOG_INDEX = "serving-logs-{namespace}-{date}"  # date = the line's own UTC day, YYYY.MM.dd
DEFAULT_DEADLETTER_INDEX = "serving-deadletter-{date}"
DEFAULT_EVENTS_INDEX = "serving-events-{date}"
LOG_INDEX_PATTERN = "serving-logs-*"
DEADLETTER_INDEX_PATTERN = "serving-deadletter-*"
EVENTS_INDEX_PATTERN = "serving-events-*"


# -- pod metadata ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PodMetadata:
    """What a metadata provider knows of one pod, already turned into document fields.

    ``fields`` holds document fields (``component``, ``serving_name``, ``model_name``,
    ``model_version``, ``labels``, ``project`` ...); enrichment merges them over the fields derived
    from the log path. ``containers`` names every container and init container of the pod.
    """

    uid: str
    namespace: str
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    containers: tuple[str, ...] = ()
    init_containers: tuple[str, ...] = ()
    deleted: bool = False


class MetadataProvider(Protocol):
    """A source of pod metadata. Lookups are in-memory: never an API call per line."""

    #: written into each document's ``metadata_source`` field: kubernetes | static
    name: str

    def lookup(self, pod_uid: str) -> PodMetadata | None:
        """The pod's metadata, or None when the provider does not know it (yet)."""
        ...

    def synced(self) -> bool:
        """True once the provider has its initial state (readiness)."""
        ...
