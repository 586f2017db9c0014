"""Pure, tolerant readers of raw Kubernetes objects (the API's JSON as dicts), shared by every reader of them.

The API hands servelog objects as raw JSON (see :mod:`collector.kube.client`): camelCase, fields
missing or null while an object is half-reported, hand-written YAML with numbers where strings were
meant. These readers accept all of that and answer an empty value or ``None``, never an exception,
so the code that turns objects into documents reads top to bottom without guards.

**Times.** Kubernetes writes ``metav1.Time`` as RFC 3339 in UTC with whole seconds
(``2026-11-24T09:11:42Z``) and ``metav1.MicroTime`` (``eventTime``, ``series.lastObservedTime``)
with six fraction digits; both are produced by Go's time formatting and parsed back by Go's
``time.Parse(time.RFC3339, ...)``. servelog has one timestamp rule for everything Kubernetes writes,
the kubelet's log lines and the API's objects alike: :func:`collector.transforms.cri.parse_timestamp`
(upper-case ``T`` and ``Z`` only, an offset ``+HH:MM``; a lower-case ``t``/``z``, a space or a
missing zone is no time). :func:`api_time` applies it to an object's field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from collector.transforms.cri import parse_timestamp

# ``involvedObject.fieldPath`` / ``regarding.fieldPath`` of an Event about one container of a pod:
# ``spec.containers{kserve-container}``, ``spec.initContainers{storage-initializer}``,
# ``spec.ephemeralContainers{debugger}`` (the kubelet's ``GetPartialReference`` names the list).
FIELD_PATH_CONTAINER = re.compile(r"^spec\.(?P<list>initContainers|containers|ephemeralContainers)\{(?P<name>[^}]+)\}$")


def mapping(value: Any) -> Mapping[str, Any]:
    """A nested object (``{}`` when absent, null or not an object)."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list field (``[]`` when absent; non-objects left out)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


def text(value: Any) -> str:
    """A string field (``''`` when absent, null or not a scalar)."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def integer(value: Any) -> int | None:
    """An integer field (None when absent or not a whole number; ``"3"`` from hand-written YAML is 3)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def api_time(value: Any) -> int | None:
    """An API timestamp as nanoseconds since the epoch (see the module docstring); None if absent or invalid."""
    if not isinstance(value, str) or not value:
        return None
    parsed = parse_timestamp(value)
    return parsed[0] if parsed is not None else None


def container_of_field_path(field_path: Any) -> tuple[str, str] | None:
    """(container name, ``containers`` | ``initContainers`` | ``ephemeralContainers``) an Event's fieldPath names."""
    match = FIELD_PATH_CONTAINER.match(text(field_path))
    return (match["name"], match["list"]) if match else None
