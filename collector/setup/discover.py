"""Pure construction of an OpenSearch Dashboards Discover link for one deployment.

Discover keeps its state in the URL as rison: ``_g`` (time range) and ``_a`` (query, filters). The
link opens a shipped saved search (fixed id) with the deployment's filters applied.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SAVED_SEARCH = "servelog-search-all"


def rison(value: Any) -> str:
    """Rison encoding of the JSON subset Discover state uses."""
    if isinstance(value, bool):
        return "!t" if value else "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if value and all(c.isalnum() or c in "-_./~" for c in value) and not value[0].isdigit() and value[0] != "-":
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"


def _kuery_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def discover_url(dashboards_url: str, *, serving: str, model_version: str | None = None, component: str | None = None,
                 since: str = "now-7d", saved_search: str = SAVED_SEARCH) -> str:
    """A Discover URL showing ``serving``'s logs (optionally one version/component), newest first."""
    terms = [f"serving_name:{_kuery_value(serving)}"]
    if model_version is not None:
        terms.append(f"model_version:{_kuery_value(model_version)}")
    if component is not None:
        terms.append(f"component:{_kuery_value(component)}")
    app_state = {"query": {"language": "kuery", "query": " and ".join(terms)}, "sort": [["timestamp", "desc"]]}
    global_state = {"time": {"from": since, "to": "now"}}
    safe = "():,!'*~-_."
    return (f"{dashboards_url.rstrip('/')}/app/discover#/view/{saved_search}"
            f"?_g={quote(rison(global_state), safe=safe)}&_a={quote(rison(app_state), safe=safe)}")
