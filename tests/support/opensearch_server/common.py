"""Shapes shared by the loopback OpenSearch's modules: request records, error envelopes, small helpers.

Every error body here is the one OpenSearch itself answers (checked against real 2.19 and 3.x nodes by
``tests/contract``): the ``{"error": {"root_cause": [...], "type", "reason"}, "status"}`` envelope of
``OpenSearchException``, the bare-string ``error`` of an unknown endpoint, and the per-item errors of
``_bulk``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

CLUSTER_NAME = "servelog-test"
PRIMARY_TERM = 1
MAX_KEYWORD_BYTES = 32766  # Lucene's limit for one indexed term
MAX_RESULT_WINDOW = 10000
ISM_CONFIG_INDEX = ".opendistro-ism-config"
ItemError = dict[str, Any]


@dataclass
class RequestRecord:
    """One request as the server saw it (in order of completion)."""

    method: str
    path: str  # as sent, without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int  # bytes received (after decompression)
    status: int  # the status answered; 0 when the connection was dropped without an answer
    items: int = 0  # bulk items in the request (0 for other requests and for unparsed bodies)

    @property
    def documents(self) -> int:
        """Alias of :attr:`items` (the name the first loopback server used)."""
        return self.items


class Reply(Exception):
    """Raised anywhere while routing to answer at once with ``status`` and ``payload``."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}


def error_body(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    """OpenSearch's error envelope: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def fail(status: int, kind: str, reason: str, **extra: Any) -> Reply:
    return Reply(status, error_body(status, kind, reason, **extra))


def wrapped(status: int, kind: str, reason: str, cause: dict[str, Any], *, root: dict[str, Any] | None = None) -> Reply:
    """An error whose ``caused_by`` is ``cause`` and whose root cause is ``root`` (default: ``cause``)."""
    root = root or cause
    return Reply(status, {"error": {"root_cause": [root], "type": kind, "reason": reason, "caused_by": cause},
                          "status": status})


def no_handler(method: str, path: str) -> Reply:
    # RestController.handleBadRequest: a bare string as "error" and no "status" field (checked on 2.19 and 3.x)
    return Reply(400, {"error": f"no handler found for uri [{path}] and method [{method}]"})


def settings_error_type(version: tuple[int, ...]) -> str:
    """The exception an unknown setting raises: ``illegal_argument_exception`` in 2.x, ``settings_exception`` in 3.x."""
    return "settings_exception" if version >= (3,) else "illegal_argument_exception"


# -- per-item and whole-request error shapes ---------------------------------------------------
def item_error(status: int, index: str, doc_id: str, uuid_: str) -> dict[str, Any]:
    """A realistic ``error`` object for a bulk item answered with ``status``."""
    where = {"index": index, "shard": "0", "index_uuid": uuid_}
    if status == 409:
        return {"type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])", **where}
    if status == 429:
        # OpenSearchRejectedExecutionException from the write thread pool (or indexing pressure)
        return {"type": "rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, "
                          "replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=1048576, "
                          "max_coordinating_and_primary_bytes=107374182]"}
    if status == 400:
        return {"type": "mapper_parsing_exception", "reason": f"failed to parse field [message] of type [text] in "
                f"document with id '{doc_id}'. Preview of field's value: 'null'", **where,
                "caused_by": {"type": "illegal_argument_exception", "reason": "injected by the test"}}
    if status == 403:
        return {"type": "security_exception", "reason": "no permissions for [indices:data/write/bulk[s]] and User "
                "[name=servelog, backend_roles=[], requestedTenant=null]"}
    if status == 404:
        return {"type": "index_not_found_exception", "reason": f"no such index [{index}]", **where}
    if status == 503:
        return {"type": "unavailable_shards_exception", "reason": f"[{index}][0] primary shard is not active "
                f"Timeout: [1m], request: [BulkShardRequest [[{index}][0]] containing [1] requests]", **where}
    return {"type": "exception", "reason": f"java.lang.IllegalStateException: shard failure ({status})", **where}


def request_error(status: int, path: str) -> dict[str, Any] | None:
    """A realistic whole-request error body for ``status`` (None: an empty body, as for 413)."""
    if status == 413:
        return None  # Netty's HttpObjectAggregator answers 413 with no body
    kinds = {
        400: ("illegal_argument_exception", "request rejected"),
        401: ("security_exception", f"missing authentication credentials for REST request [{path}]"),
        403: ("security_exception", "no permissions for [indices:data/write/bulk] and User [name=servelog, "
              "backend_roles=[], requestedTenant=null]"),
        404: ("index_not_found_exception", "no such index [_na_]"),
        409: ("version_conflict_engine_exception", "version conflict"),
        429: ("rejected_execution_exception", "rejected execution of coordinating operation "
              "[coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, "
              "coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=107374182]"),
        500: ("exception", "java.lang.IllegalStateException: unexpected failure"),
        502: ("exception", "bad gateway"),
        503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"),
        504: ("exception", "gateway timeout"),
    }
    kind, reason = kinds.get(status, ("exception", f"failure {status}"))
    return error_body(status, kind, reason)


# -- small helpers -----------------------------------------------------------------------------
def parse_json(body: bytes, *, required: bool = True) -> Any:
    if not body.strip():
        if required:
            raise fail(400, "parse_exception", "request body is required")
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise fail(400, "json_parse_exception", str(exc)) from None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_token(value: Any) -> str:
    """The Jackson token name OpenSearch's parser errors use for a JSON value."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_NUMBER" if is_number(value) else "VALUE_STRING"


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def index_name_problem(name: str) -> str | None:
    """Why OpenSearch refuses ``name`` as an index name, or None (MetadataCreateIndexService's checks)."""
    if not name or any(c in name for c in ' "*\\<|,>/?'):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if len(name.encode()) > 255:
        return f"index name is too long, ({len(name.encode())} > 255)"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name.lower() != name:
        return "must be lowercase"
    return None


def invalid_index(name: str, problem: str) -> dict[str, Any]:
    return {"type": "invalid_index_name_exception", "reason": f"Invalid index name [{name}], {problem}",
            "index_uuid": "_na_", "index": name}
