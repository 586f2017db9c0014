"""Pure construction of an OpenSearch Dashboards Discover link for one deployment.

Current Dashboards (2.10 and later, 3.x) serve Discover inside the Data Explorer app,
``/app/data-explorer/discover``, and read its state from three rison-encoded query parameters of
the URL's hash (``opensearch_dashboards_utils/public/state_management/url/osd_url_storage.ts``
``getStatesFromOsdUrl``: ``parseUrlHash`` then ``rison.decode`` per key):

- ``_a``: the Redux root state, taken as is when present (``data_explorer/public/utils/
  state_management/redux_persistence.ts`` ``loadReduxState``): ``metadata.indexPattern`` (the index
  pattern id), ``metadata.view`` (``discover``) and ``discover`` (``columns``, ``sort``, ``isDirty``:
  ``discover/public/application/utils/state_management/discover_slice.tsx``);
- ``_q``: the app query and app filters (``data/public/query/state_sync/connect_to_query_state.ts``
  ``connectStorageToQueryState``: ``_q.query``, ``_q.filters`` become the query bar and the pills);
- ``_g``: time range, refresh interval, pinned filters (``data/public/query/state_sync/
  sync_state_with_url.ts``).

The link opens no saved search: with ``#/view/<id>`` the saved search's own filters are loaded
over the URL's, and URL filters were lost on first load or overridden (OpenSearch-Dashboards
#7677, #11234); a legacy ``/app/discover#/view/<id>?_a=(filters:...)`` link is rewritten by
``discover/public/migrate_state.ts`` (its ``_g`` was dropped before 2.16, #6766/#6780). The index
pattern and the columns are the shipped ones, so the link shows what the *Serving logs: all* saved
search shows, filtered to one deployment. ``legacy=True`` builds the old form for Dashboards before
2.10 (no Data Explorer). The base path (``/_dashboards`` on Amazon OpenSearch Service) is part of
the given URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SAVED_SEARCH_ID = "servelog-search-all"
LOGS_INDEX_PATTERN_ID = "servelog-logs"
#: the columns of the shipped "Serving logs: all" saved search (dashboards/generate.py COLUMNS)
COLUMNS = ["serving_name", "model_version", "component", "container_name", "level", "message"]

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
    """A Dashboards phrase filter (an app filter: a pill the user can edit or drop)."""
    return {
        "$state": {"store": "appState"},
        "meta": {"alias": None, "disabled": False, "index": index_pattern, "key": field, "negate": False,
                 "params": {"query": value}, "type": "phrase"},
        "query": {"match_phrase": {field: value}},
    }


def _param(key: str, state: Any) -> str:
    return f"{key}={quote(rison(state), safe=_URL_SAFE)}"


def discover_url(dashboards_url: str, *, serving: str, model_version: str | None = None, component: str | None = None,
                 since: str = "now-24h", legacy: bool = False) -> str:
    """A Discover URL showing one serving's logs (and version, component) over ``since`` .. now."""
    wanted = {"serving_name": serving, "model_version": model_version, "component": component}
    filters = [phrase_filter(field, value) for field, value in wanted.items() if value is not None]
    query = {"language": "kuery", "query": ""}
    global_state = {"filters": [], "refreshInterval": {"pause": True, "value": 0},
                    "time": {"from": since, "to": "now"}}
    base = dashboards_url.rstrip("/")
    if legacy:  # Dashboards < 2.10: the legacy Discover app and its app state
        app = {"columns": COLUMNS, "filters": filters, "index": LOGS_INDEX_PATTERN_ID, "query": query,
               "sort": [["timestamp", "desc"]]}
        return (f"{base}/app/discover#/view/{quote(SAVED_SEARCH_ID, safe='')}?"
                f"{_param('_g', global_state)}&{_param('_a', app)}")
    app_state = {"discover": {"columns": COLUMNS, "isDirty": False, "sort": [["timestamp", "desc"]]},
                 "metadata": {"indexPattern": LOGS_INDEX_PATTERN_ID, "view": "discover"}}
    return (f"{base}/app/data-explorer/discover#?{_param('_a', app_state)}&{_param('_g', global_state)}"
            f"&{_param('_q', {'filters': filters, 'query': query})}")
