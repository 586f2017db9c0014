"""Kubernetes object shapes for the loopback API server: Event conversions, InferenceServices, fixtures.

The API server keeps one Event and serves it through two APIs: core/v1 (``involvedObject``,
``message``, ``count``, ``source``, ``firstTimestamp``/``lastTimestamp``) and events.k8s.io/v1
(``regarding``, ``note``, ``deprecatedCount``, ``deprecatedSource``,
``deprecatedFirstTimestamp``/``deprecatedLastTimestamp``), converting field by field as
Kubernetes' ``pkg/apis/events/v1`` conversion does; ``eventTime``, ``series``, ``reason``,
``type``, ``action``, ``related`` and ``reportingInstance`` are shared, and core's
``reportingComponent`` is v1's ``reportingController``. Events written by the old recorder
(kubelet) have ``eventTime: null``; events written by the new one (scheduler) have no
``firstTimestamp``/``lastTimestamp`` and count with ``series``. The store holds core/v1.

Fixtures live in ``tests/fixtures/history/`` (Events in both shapes, InferenceServices in the states
``kserve-status.md`` describes, pods in failure states); :func:`history_fixture` loads one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

EVENTS_V1 = "events.k8s.io/v1"
ISVC_API = "serving.kserve.io/v1beta1"
HISTORY_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "history"

# core/v1 field -> events.k8s.io/v1 field (the rest is shared)
_CORE_TO_V1 = {"involvedObject": "regarding", "message": "note", "count": "deprecatedCount",
               "source": "deprecatedSource", "firstTimestamp": "deprecatedFirstTimestamp",
               "lastTimestamp": "deprecatedLastTimestamp", "reportingComponent": "reportingController"}
_V1_TO_CORE = {v1: core for core, v1 in _CORE_TO_V1.items()}


def core_event_to_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as events.k8s.io/v1 serves it (``eventTime`` stays null when it is)."""
    out: dict[str, Any] = {"apiVersion": EVENTS_V1, "kind": "Event"}
    for key, value in event.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_CORE_TO_V1.get(key, key)] = copy.deepcopy(value)
    out.setdefault("eventTime", None)
    return out


def v1_event_to_core(event: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as core/v1 serves it (``firstTimestamp`` null for new-API events)."""
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for key, value in event.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_V1_TO_CORE.get(key, key)] = copy.deepcopy(value)
    for key in ("firstTimestamp", "lastTimestamp"):
        out.setdefault(key, None)
    return out


def as_core_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Either shape, as core/v1."""
    if str(event.get("apiVersion", "")).startswith("events.k8s.io/"):
        return v1_event_to_core(event)
    return copy.deepcopy(dict(event))


def repeated(event: Mapping[str, Any], when: str) -> dict[str, Any]:
    """The Event after one more occurrence at ``when`` (RFC 3339), as the recorder that wrote it updates it.

    The old recorder (no ``series``, ``eventTime`` null) bumps ``count`` and ``lastTimestamp``;
    the new one bumps ``series.count`` and ``series.lastObservedTime`` (a series starts at 2).
    """
    out = copy.deepcopy(dict(event))
    if out.get("eventTime") and not out.get("firstTimestamp"):
        series = dict(out.get("series") or {"count": 1})
        series["count"] = int(series.get("count") or 1) + 1
        series["lastObservedTime"] = when.replace("Z", ".000000Z") if "." not in when else when
        out["series"] = series
    else:
        out["count"] = int(out.get("count") or 1) + 1
        out["lastTimestamp"] = when
    return out


def history_fixture(name: str) -> Any:
    """``tests/fixtures/history/<name>.json`` (a fresh copy)."""
    return orjson.loads((HISTORY_FIXTURES / f"{name}.json").read_bytes())


def items(name: str) -> list[dict[str, Any]]:
    """The ``items`` of a list fixture."""
    return list(history_fixture(name)["items"])
