"""Pure construction of an OpenSearch Dashboards Discover link for one deployment.

Discover keeps its state in the URL, rison-encoded: ``_g`` (time range, refresh) and ``_a`` (index
pattern, query, filters). The link opens a shipped saved search by its fixed id with one phrase
filter per given field (serving, model version, component), so the filters show as pills the
user can edit or drop. This is the legacy Discover URL form; Dashboards 2.10+ (the new Discover)
migrates ``_a``'s query and filters into its own state, so one link serves every 2.x release.
The base path (``/_dashboards`` on Amazon OpenSearch Service) is simply part of the given URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SAVED_SEARCH_ID = "servelog-search-all"
LOGS_INDEX_PATTERN_ID = "servelog-logs"

_NOT_ID_CHAR = set(" '!:(),*@$")
_NOT_ID_START = set("-0123456789")
_URL_SAFE = "()!:,'*~-_./$@"


def rison(value: Any) -> str:
    """Rison encoding (the JSON subset Discover state uses): ``{"a": [1, "x y"]}`` -> ``(a:!(1,'x y'))``."""
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if value and value[0] not in _NOT_ID_START and all(
                c not in _NOT_ID_CHAR and c.isprintable() and not c.isspace() for c in value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(str(k))}:{rison(v)}" for k, v in value.items()) + ")"
    raise TypeError(f"rison cannot encode {type(value).__name__}")


def phrase_filter(field: str, value: str, *, index_pattern: str = LOGS_INDEX_PATTERN_ID) -> dict[str, Any]:
    """A Dashboards phrase filter, shaped as Discover writes it into its app state."""
    return {
        "$state": {"store": "appState"},
        "meta": {"alias": None, "disabled": False, "index": index_pattern, "key": field, "negate": False,
                 "params": {"query": value}, "type": "phrase"},
        "query": {"match_phrase": {field: value}},
    }


def discover_url(dashboards_url: str, *, serving: str, model_version: str | None = None, component: str | None = None,
                 since: str = "now-24h", saved_search: str = SAVED_SEARCH_ID) -> str:
    """A Discover URL opening ``saved_search`` filtered to one serving (and version, component)."""
    wanted = {"serving_name": serving, "model_version": model_version, "component": component}
    filters = [phrase_filter(field, value) for field, value in wanted.items() if value is not None]
    app_state = {"filters": filters, "index": LOGS_INDEX_PATTERN_ID, "query": {"language": "kuery", "query": ""}}
    global_state = {"filters": [], "refreshInterval": {"pause": True, "value": 0},
                    "time": {"from": since, "to": "now"}}
    return (f"{dashboards_url.rstrip('/')}/app/discover#/view/{quote(saved_search, safe='')}"
            f"?_g={quote(rison(global_state), safe=_URL_SAFE)}&_a={quote(rison(app_state), safe=_URL_SAFE)}")
