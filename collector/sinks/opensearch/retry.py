"""Pure retry verdicts for ``_bulk``: one explicit outcome per document and per whole-request failure.

The rule behind both tables: **only a refusal of one document for what it is (a per-item 400) is a
verdict on the document** (dead-letter). Everything else says something about the destination
(wrong URL, credentials, a block, a full cluster, an overload): nothing is acknowledged, the same
documents are sent again with backoff, and the reason (a fixed, bounded set: ``REASONS``) feeds the
``servelog_destination_errors_total{reason}`` metric, ``/healthz``'s detail and the log.

Per item (:func:`classify`), checked top to bottom:

==========================================================  ===========  ==============
item answer                                                 verdict      reason
==========================================================  ===========  ==============
200, 201                                                    created
409 (``create`` of an existing ``_id``)                     present      (a replay)
``cluster_block_exception`` (``index.blocks.write``,        retry        blocked
``index.blocks.read_only``, the flood-stage watermark's
``read_only_allow_delete``: 403 or 429),
``index_create_block_exception``, ``index_closed_exception``
``validation_exception`` / ``illegal_argument_exception``   retry        shard_limit
"this action would add [N] total shards, but this cluster
currently has [X]/[Y] maximum shards open" (3.x: "maximum
LOCAL_ONLY shards open"): auto-creating the day's index hit
``cluster.max_shards_per_node``
429, ``rejected_execution_exception``,                      retry        overloaded
``circuit_breaking_exception``
401, 403 (``security_exception``: a missing permission)     retry        auth
404 (``index_not_found_exception``: auto-creation off)      retry        index_missing
400 ``illegal_argument_exception`` "no write index is       retry        index_missing
defined for alias [...]": the target is an alias with no
(or several) write indices, a problem of the destination
5xx, an item without a status                               retry        unavailable
any other 400 (mapping conflict, a value the mapping        dead-letter
refuses)
any other status                                            retry        rejected
==========================================================  ===========  ==============

Whole request (:func:`request_verdict`), checked top to bottom: a response to the request as a
whole is never a verdict on its documents, with one exception, 413:

==========================================================  ===========  ==============
failure                                                     verdict      reason
==========================================================  ===========  ==============
no answer: connection refused or reset, DNS                 retry        unreachable
no answer: TLS handshake or certificate verification        retry        tls
no answer within ``opensearch.timeout_seconds``             retry        timeout
413 (body over ``http.max_content_length``)                 split        (none)
``cluster_block_exception`` (``cluster.blocks.read_only``,  retry        blocked
``cluster.blocks.create_index``), a 4xx
429                                                         retry        overloaded
401; 403 with OpenSearch's JSON body                        retry        auth
5xx (a proxy's 502 page included)                           retry        unavailable
403 with another body, 404, 405, 400 "no handler found",    retry        not_opensearch
a body that is not OpenSearch's JSON (a proxy's or login
page's HTML), a 200 that is not a bulk response
(:func:`bulk_response_problem`)
any other 4xx                                               retry        rejected
==========================================================  ===========  ==============

413 splits the request in halves, each delivered on its own, down to a single document; a lone
document still too large for any request is its own problem (no retry can shrink it) and is
dead-lettered with status 413.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REASONS = ("unreachable", "tls", "timeout", "auth", "not_opensearch", "blocked", "shard_limit", "overloaded",
           "index_missing", "unavailable", "rejected")
"""Why the destination did not take documents: the bounded label set of the destination metric."""

_BLOCK_TYPES = frozenset({"cluster_block_exception", "index_create_block_exception", "index_closed_exception"})
_OVERLOAD_TYPES = frozenset({"rejected_execution_exception", "es_rejected_execution_exception",
                             "circuit_breaking_exception"})
_SHARD_LIMIT_TYPES = frozenset({"validation_exception", "illegal_argument_exception"})
_NO_WRITE_INDEX = re.compile(r"no write index is defined for alias")  # MetadataIndexAbstraction / IndexAbstraction
_SHARD_LIMIT = re.compile(r"maximum (?:\S+ )?shards open|max_shards_per_node")  # 3.x: "maximum LOCAL_ONLY shards open"

_HINTS = {
    "unreachable": "check opensearch.url (scheme, host, port), DNS and network policies",
    "tls": "check opensearch.ca_file, opensearch.verify_certs and the client certificate",
    "timeout": "the cluster is slow or the network drops packets; opensearch.timeout_seconds bounds one request",
    "auth": "check opensearch.username / password_file and the user's index permissions",
    "not_opensearch": "check opensearch.url: it must be the OpenSearch REST endpoint, not Dashboards or another service",
    "blocked": "lift the block (index.blocks.write, cluster.blocks.read_only, or free disk below the flood-stage "
               "watermark) or reopen the index",
    "shard_limit": "raise cluster.max_shards_per_node or delete old indices so the day's index can be created",
    "overloaded": "the cluster rejects writes for now; servelog slows down and retries",
    "index_missing": "the target index does not exist and may not be auto-created: run `servelog setup` or allow "
                     "action.auto_create_index for serving-*",
    "unavailable": "the cluster answered with a server error; servelog retries",
    "rejected": "the cluster refused the request as a whole; servelog retries",
}


def hint(reason: str) -> str:
    """What to fix for a destination problem (one sentence)."""
    return _HINTS.get(reason, "")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why OpenSearch refused one document."""

    status: int
    error_type: str
    reason: str


@dataclass(slots=True)
class Verdict:
    """The outcome of one ``_bulk`` answer, by position in the request."""

    created: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    """How many retried items had each reason (a subset of ``REASONS``)."""
    retry_detail: str = ""
    """The first retried item's status and error, for the log."""


@dataclass(frozen=True, slots=True)
class RequestVerdict:
    """What to do after a whole-request failure."""

    split: bool  # 413: send halves (a lone document is dead-lettered)
    reason: str  # one of REASONS ("" when split)
    message: str  # what happened, in the user's terms, and what to fix


def _error_fields(error: Any) -> tuple[str, str]:
    """(type, reason with its cause) of an item's ``error`` object or string."""
    if not isinstance(error, dict):
        return "", str(error or "")
    reason = str(error.get("reason", ""))
    caused = error.get("caused_by")
    if isinstance(caused, dict) and caused.get("reason"):
        reason = f"{reason}: {caused.get('type', '')}: {caused.get('reason')}"
    return str(error.get("type", "")), reason


def is_shard_limit(error_type: str, reason: str) -> bool:
    """An index creation refused because the cluster holds as many shards as it may."""
    return error_type in _SHARD_LIMIT_TYPES and bool(_SHARD_LIMIT.search(reason))


def item_reason(status: int | None, error_type: str, reason: str) -> str | None:
    """Why an item must be retried (one of ``REASONS``), or None when it has a final outcome."""
    if status in (200, 201, 409):
        return None
    if error_type in _BLOCK_TYPES:
        return "blocked"
    if is_shard_limit(error_type, reason):
        return "shard_limit"
    if status is None or status >= 500:
        return "unavailable"
    if status == 429 or error_type in _OVERLOAD_TYPES:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 404 or (error_type == "illegal_argument_exception" and _NO_WRITE_INDEX.search(reason)):
        return "index_missing"
    if status == 400:
        return None  # the document's own problem: dead-letter
    return "rejected"


def bulk_response_problem(response: Any, sent: int) -> str | None:
    """Why a 200 answer is not a bulk response for ``sent`` documents, or None when it is one."""
    if not isinstance(response, dict):
        return f"the body is {type(response).__name__}, not a JSON object"
    items = response.get("items")
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        return "the body has no 'items' list"
    if len(items) != sent:
        return f"{len(items)} items answered for {sent} documents sent"
    return None


def classify(response: dict[str, Any], sent: int) -> Verdict:
    """Classify a ``_bulk`` response (already checked by :func:`bulk_response_problem`)."""
    verdict = Verdict()
    items: Sequence[Any] = response.get("items") or []
    if not response.get("errors") and len(items) == sent:
        verdict.created = list(range(sent))
        return verdict
    if len(items) != sent:  # cannot be trusted item by item
        verdict.retry = list(range(sent))
        verdict.retry_reasons["not_opensearch"] = sent
        return verdict
    for position, item in enumerate(items):
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
        if not isinstance(result, dict):
            result = {}
        raw_status = result.get("status")
        status = raw_status if isinstance(raw_status, int) else None
        if status in (200, 201):
            verdict.created.append(position)
            continue
        if status == 409:
            verdict.present.append(position)
            continue
        error_type, reason = _error_fields(result.get("error"))
        retry_reason = item_reason(status, error_type, reason)
        if retry_reason is None:
            verdict.rejected.append((position, Rejection(status or 0, error_type, reason)))
            continue
        verdict.retry.append(position)
        verdict.retry_reasons[retry_reason] += 1
        if not verdict.retry_detail:
            verdict.retry_detail = f"{status if status is not None else 'no status'} {error_type}: {reason}"[:500]
    return verdict


def request_verdict(*, status: int, error_type: str = "", kind: str = "", detail: str = "", opensearch_body: bool = True,
                    url: str = "", method: str = "POST", path: str = "/_bulk") -> RequestVerdict:
    """The verdict on a whole-request failure (see the second table of the module docstring).

    ``status`` 0 means no answer (``kind``: ``refused``, ``tls``, ``timeout``); ``opensearch_body``
    is False when the answer's body was not OpenSearch's JSON (a proxy's page, plain text).
    """
    base = urlsplit(url).path.rstrip("/") if url else ""
    where = f"{method} {base}{path}"  # the path the request really went to (a URL with a prefix included)
    detail = detail.strip()[:300]
    said = f": {detail}" if detail else ""
    if status == 0:
        target = url or "OpenSearch"
        if kind == "tls":
            return RequestVerdict(False, "tls", f"TLS with {target} failed{said}")
        if kind == "timeout":
            return RequestVerdict(False, "timeout", f"no answer from {target} within the request timeout{said}")
        return RequestVerdict(False, "unreachable", f"OpenSearch unreachable at {target}{said}")
    if status == 413:
        return RequestVerdict(True, "", f"413 for {where}: request too large, sending halves")
    if error_type in ("cluster_block_exception", "index_create_block_exception") and status < 500:
        return RequestVerdict(False, "blocked", f"the cluster is blocked for writes: {status} for {where}{said}")
    if status == 429:
        return RequestVerdict(False, "overloaded", f"OpenSearch is overloaded: 429 for {where}{said}")
    if status == 401 or (status == 403 and opensearch_body):
        what = "the credentials were refused" if status == 401 else "the user lacks a permission"
        return RequestVerdict(False, "auth", f"{what}: {status} for {where}{said}")
    if status >= 500:
        return RequestVerdict(False, "unavailable", f"OpenSearch answered {status} for {where}{said}")
    no_handler = status == 400 and (detail.startswith("no handler found") or not error_type)
    if status in (403, 404, 405) or no_handler or not opensearch_body:
        return RequestVerdict(False, "not_opensearch", f"the URL does not answer like OpenSearch: {status} for {where}{said}")
    return RequestVerdict(False, "rejected", f"OpenSearch refused {where} as a whole: {status}{said}")
