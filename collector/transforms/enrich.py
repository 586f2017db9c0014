"""Pure enrichment: the fields every document of one container instance shares.

Computed once per stream (file or API stream), never per line: path facts first (namespace, pod,
UID, container, restart count, node, and KServe names guessed from the pod name), then whatever a
metadata provider knows of the pod (labels, model name and version) on top. ``metadata_source`` tells
which one won, so users can find lines that went out with path metadata only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector import model as m
from collector.sources.files.paths import kserve_names_from_pod


def path_fields(
    *, namespace: str, pod_name: str, pod_uid: str, container: str, restart_count: int, node_name: str
) -> dict[str, Any]:
    """Fields known from the log path alone."""
    fields: dict[str, Any] = {
        m.F_NAMESPACE: namespace,
        m.F_POD_NAME: pod_name,
        m.F_POD_UID: pod_uid,
        m.F_CONTAINER: container,
        m.F_RESTART: restart_count,
        m.F_NODE: node_name,
        m.F_METADATA_SOURCE: "path",
    }
    names = kserve_names_from_pod(pod_name)
    if names is not None:
        fields[m.F_SERVING], fields[m.F_COMPONENT] = names
    return fields


# Fields a provider may not override: they describe the file itself.
_PATH_OWNED = frozenset({m.F_NAMESPACE, m.F_POD_NAME, m.F_POD_UID, m.F_CONTAINER, m.F_RESTART, m.F_NODE})
# Fields a line may carry itself; a provider must not overwrite them on every line.
_LINE_OWNED = frozenset({m.F_TIMESTAMP, m.F_MESSAGE, m.F_STREAM, m.F_LEVEL, m.F_PARSE_ERROR, m.F_TRUNCATED,
                         m.F_ORIGINAL_BYTES, m.F_LINE_COUNT, m.F_PARTIAL})


def merge_pod_fields(base: Mapping[str, Any], pod: m.PodMetadata | None, provider_name: str) -> dict[str, Any]:
    """Path fields overlaid with the provider's fields (None/empty values are skipped)."""
    fields = dict(base)
    if pod is None:
        return fields
    for key, value in pod.fields.items():
        if key in _PATH_OWNED or key in _LINE_OWNED or value is None or value in ("", {}):
            continue
        fields[key] = value
    fields[m.F_METADATA_SOURCE] = provider_name
    return fields
