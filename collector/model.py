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
F_PARSE_ERROR = "parse_error"  # malformed_cri (not a CRI/Docker record) | invalid_utf8
F_TRUNCATED = "truncated"  # true when the line was cut at max_line_bytes
F_ORIGINAL_BYTES = "original_bytes"  # the line's size before it was cut
F_LINE_COUNT = "line_count"  # number of physical lines grouped into this document (tracebacks)
F_PARTIAL = "partial"  # true when a P (partial) line was flushed without its end: the line may be cut
F_DOC_ID = "doc_id"  # the document's own _id, as a keyword with doc values: the sort tiebreaker of servelog logs

LOG_FIELDS: tuple[str, ...] = (
    F_TIMESTAMP, F_MESSAGE, F_STREAM, F_LEVEL, F_COMPONENT, F_CONTAINER, F_SERVING, F_MODEL_NAME,
    F_MODEL_VERSION, F_NAMESPACE, F_POD_NAME, F_POD_UID, F_NODE, F_RESTART, F_LABELS, F_PROJECT,
    F_METADATA_SOURCE, F_PARSE_ERROR, F_TRUNCATED, F_ORIGINAL_BYTES, F_LINE_COUNT, F_PARTIAL, F_DOC_ID,
)

# Fields of a dead-letter document (index ``serving-deadletter-YYYY.MM.dd``).
DEADLETTER_FIELDS: tuple[str, ...] = (
    F_TIMESTAMP, F_NAMESPACE, F_POD_NAME, F_CONTAINER, F_SERVING, F_MODEL_VERSION, F_COMPONENT,
    "reason", "error_type", "status", "target_index", "doc_id", "raw",
)

# Fields of a deployment-history document (index ``serving-events-YYYY.MM.dd``): the contract
# between the history collector (collector/sources/history) and its readers. The model-aware
# fields are the logs' own (F_SERVING, F_MODEL_VERSION, ...). Absent when unknown, never null.
H_EVENT_KIND = "event_kind"  # one of HISTORY_KINDS
H_REASON = "reason"
H_TYPE = "type"  # Normal | Warning
H_COUNT = "count"  # event: the occurrence number
H_EXIT_CODE = "exit_code"
H_SIGNAL = "signal"
H_SOURCE = "source"  # kubelet, default-scheduler, ... or pod-status / isvc-status
H_CONDITION_TYPE = "condition_type"
H_CONDITION_STATUS = "condition_status"  # True | False | Unknown (readiness: the container's ready flag)
H_INVOLVED_KIND = "involved_kind"
H_INVOLVED_NAME = "involved_name"
H_FIRST_TIMESTAMP = "first_timestamp"
H_LAST_TIMESTAMP = "last_timestamp"
H_DOC_ID = "doc_id"
# additions to the contract (issue 10): where they apply
H_STARTED_AT = "started_at"  # termination: when the ended container instance started
H_FINISHED_AT = "finished_at"  # termination: when it ended
H_INIT_CONTAINER = "init_container"  # container-level documents of an init container (storage-initializer)
H_IMAGE = "image"  # termination / waiting: the container's image
H_MODEL_STATE = "model_state"  # model_status: activeModelState
H_TARGET_MODEL_STATE = "target_model_state"  # model_status: targetModelState
H_TRANSITION_STATUS = "transition_status"  # model_status: transitionStatus
H_REVISION = "revision"  # revision: latestCreatedRevision
H_READY_REVISION = "ready_revision"  # revision: latestReadyRevision
H_TRAFFIC = "traffic"  # revision: ["<revision>=<percent>", ...]
H_FAILED_COPIES = "failed_copies"  # model_status: copies.failedCopies
H_TOTAL_COPIES = "total_copies"  # model_status: copies.totalCopies

HISTORY_KINDS: tuple[str, ...] = ("event", "termination", "waiting", "restart", "readiness", "pod_condition",
                                  "isvc_condition", "model_status", "revision")
HISTORY_FIELDS: tuple[str, ...] = (
    F_TIMESTAMP, H_EVENT_KIND, H_REASON, H_TYPE, F_MESSAGE, H_COUNT, H_EXIT_CODE, H_SIGNAL, H_SOURCE,
    H_CONDITION_TYPE, H_CONDITION_STATUS, H_INVOLVED_KIND, H_INVOLVED_NAME, F_NAMESPACE, F_SERVING, F_MODEL_NAME,
    F_MODEL_VERSION, F_COMPONENT, F_CONTAINER, F_POD_NAME, F_POD_UID, F_NODE, H_FIRST_TIMESTAMP, H_LAST_TIMESTAMP,
    H_DOC_ID, F_PROJECT, F_RESTART, H_STARTED_AT, H_FINISHED_AT, H_INIT_CONTAINER, H_IMAGE, H_MODEL_STATE,
    H_TARGET_MODEL_STATE, H_TRANSITION_STATUS, H_REVISION, H_READY_REVISION, H_TRAFFIC, H_FAILED_COPIES,
    H_TOTAL_COPIES,
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
