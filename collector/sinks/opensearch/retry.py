"""Pure retry classification of ``_bulk`` answers: one explicit verdict per document.

=========================  ==========================================================
item status                verdict
=========================  ==========================================================
200, 201                   created
409 (``create``)           already present: the deterministic ``_id`` was indexed before
429, 5xx, missing status   retry (only these items are resent, with backoff)
any other (400, 403, 404)  rejected for good: dead-letter with the reason
=========================  ==========================================================

Whole-request failures are decided by the sink: connection errors, 5xx and 429 retry the same
items; 413 splits the request; other 4xx split down to the offending document and dead-letter it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def classify(response: dict[str, Any], sent: int) -> Verdict:
    """Classify a ``_bulk`` response for a request of ``sent`` documents."""
    verdict = Verdict()
    items: Sequence[Any] = response.get("items") or []
    if not response.get("errors") and len(items) == sent:
        verdict.created = list(range(sent))
        return verdict
    if len(items) != sent:
        # an answer that does not match the request cannot be trusted item by item
        verdict.retry = list(range(sent))
        return verdict
    for position, item in enumerate(items):
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, int):
            verdict.retry.append(position)
        elif status in (200, 201):
            verdict.created.append(position)
        elif status == 409:
            verdict.present.append(position)
        elif is_retryable_status(status):
            verdict.retry.append(position)
        else:
            error = result.get("error") or {}
            if isinstance(error, dict):
                caused = error.get("caused_by") or {}
                reason = str(error.get("reason", ""))
                if isinstance(caused, dict) and caused.get("reason"):
                    reason = f"{reason}: {caused.get('reason')}"
                verdict.rejected.append((position, Rejection(status, str(error.get("type", "")), reason)))
            else:
                verdict.rejected.append((position, Rejection(status, "", str(error))))
    return verdict
