"""The Discover link, parsed the way OpenSearch Dashboards parses it.

``servelog setup --print-discover-url`` must open Discover on one deployment's logs with its filters
and time range. These tests read the printed URL as Dashboards' code does (cited per step) rather
than comparing strings: ``parseUrlHash`` takes the hash and parses it as a URL with a query string
(``opensearch_dashboards_utils/public/state_management/url/parse.ts``: Node's ``url.parse(hash, true)``,
so ``querystring`` decoding), ``getStatesFromOsdUrl`` rison-decodes ``_a``, ``_g`` and ``_q``
(``osd_url_storage.ts``), and the consumers read them: ``loadReduxState`` takes ``_a`` as the root
state (``data_explorer/public/utils/state_management/redux_persistence.ts``),
``connectStorageToQueryState`` sets ``_q.query`` and ``_q.filters`` as the query and the app filters
(``data/public/query/state_sync/connect_to_query_state.ts``), ``_g`` carries the time range. The
legacy form is fed through a transcription of ``discover/public/migrate_state.ts`` (with the
``_g`` migration of OpenSearch-Dashboards #6780).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from collector.cli import main
from collector.setup.discover import COLUMNS, LOGS_INDEX_PATTERN_ID, SAVED_SEARCH_ID, rison

ROOT = Path(__file__).resolve().parents[1]


def parse_rison(text: str) -> Any:
    """A small rison decoder, independent of the encoder under test."""
    position = 0

    def value() -> Any:
        nonlocal position
        char = text[position]
        if char == "(":
            position += 1
            result: dict[str, Any] = {}
            while text[position] != ")":
                key = value()
                assert text[position] == ":"
                position += 1
                result[key] = value()
                if text[position] == ",":
                    position += 1
            position += 1
            return result
        if text.startswith("!(", position):
            position += 2
            items = []
            while text[position] != ")":
                items.append(value())
                if text[position] == ",":
                    position += 1
            position += 1
            return items
        if text.startswith(("!t", "!f", "!n"), position):
            position += 2
            return {"!t": True, "!f": False, "!n": None}[text[position - 2:position]]
        if char == "'":
            position += 1
            out = []
            while text[position] != "'":
                if text[position] == "!":
                    position += 1
                out.append(text[position])
                position += 1
            position += 1
            return "".join(out)
        end = position
        while end < len(text) and text[end] not in ":,()":
            end += 1
        token, position = text[position:end], end
        return int(token) if token.lstrip("-").isdigit() else token

    parsed = value()
    assert position == len(text), f"trailing rison: {text[position:]}"
    return parsed


def osd_states(url: str) -> tuple[str, str, dict[str, Any]]:
    """(path, hash route, {key: decoded state}) as parseUrlHash + getStatesFromOsdUrl see the URL."""
    parts = urlsplit(url)
    hashed = urlsplit(parts.fragment)  # parseUrl(hash.slice(1))
    query = dict(parse_qsl(hashed.query, keep_blank_values=True))  # querystring.parse: %XX and '+' decoded
    return parts.path, hashed.path, {key: parse_rison(value) for key, value in query.items()}


def migrate_legacy(url: str) -> dict[str, Any]:
    """migrate_state.ts migrateUrlState for ``#/view/<id>?_a=...&_g=...``: the states the new Discover gets."""
    _, route, states = osd_states(url)
    legacy = states["_a"]
    return {"route": route, "_g": states.get("_g"),
            "_a": {"discover": {"columns": legacy.get("columns"), "interval": legacy.get("interval"),
                                "sort": legacy.get("sort"), "savedQuery": legacy.get("savedQuery")},
                   "metadata": {"indexPattern": legacy.get("index")}},
            "_q": {"query": legacy.get("query"), "filters": legacy.get("filters")}}


def printed_url(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["setup", "--print-discover-url", "--dashboards-url", "https://search.example.com/_dashboards/",
                 "--serving", "fraud-detector", "--model-version", "2", "--component", "predictor",
                 "--since", "now-7d", *extra]) == 0
    return capsys.readouterr().out.strip()


def expected_filters(filters: list[dict[str, Any]]) -> None:
    by_key = {f["meta"]["key"]: f for f in filters}
    assert {k: f["meta"]["params"]["query"] for k, f in by_key.items()} == {
        "serving_name": "fraud-detector", "model_version": "2", "component": "predictor"}
    assert by_key["model_version"]["query"] == {"match_phrase": {"model_version": "2"}}, "a string, not the number 2"
    assert all(f["meta"]["index"] == LOGS_INDEX_PATTERN_ID and f["$state"] == {"store": "appState"}
               and f["meta"]["disabled"] is False and f["meta"]["negate"] is False for f in filters)


def test_the_discover_link_opens_data_explorer_with_the_filters_and_time_range(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = printed_url(capsys)
    path, route, states = osd_states(url)
    assert urlsplit(url).netloc == "search.example.com" and path == "/_dashboards/app/data-explorer/discover"
    assert route == "", "no #/view/<id>: no saved search loads its own filters over the URL's"
    assert states["_a"]["metadata"] == {"indexPattern": LOGS_INDEX_PATTERN_ID, "view": "discover"}
    assert states["_a"]["discover"] == {"columns": COLUMNS, "isDirty": False, "sort": [["timestamp", "desc"]]}
    assert states["_q"]["query"] == {"language": "kuery", "query": ""}
    expected_filters(states["_q"]["filters"])
    assert states["_g"]["time"] == {"from": "now-7d", "to": "now"} and states["_g"]["filters"] == []


def test_the_legacy_link_survives_the_migration_of_current_dashboards(capsys: pytest.CaptureFixture[str]) -> None:
    url = printed_url(capsys, "--legacy-discover-url")
    assert urlsplit(url).path == "/_dashboards/app/discover"
    migrated = migrate_legacy(url)
    assert migrated["route"] == f"/view/{SAVED_SEARCH_ID}"
    assert migrated["_a"]["metadata"] == {"indexPattern": LOGS_INDEX_PATTERN_ID}
    expected_filters(migrated["_q"]["filters"])
    assert migrated["_g"]["time"] == {"from": "now-7d", "to": "now"}


def test_the_link_shows_the_columns_of_the_shipped_saved_search() -> None:
    saved = [json.loads(line) for line in (ROOT / "dashboards" / "servelog-1.0.0.ndjson").read_text().splitlines()]
    search = next(o for o in saved if o["id"] == SAVED_SEARCH_ID)
    pattern = next(o for o in saved if o["id"] == LOGS_INDEX_PATTERN_ID)
    assert search["attributes"]["columns"] == COLUMNS and pattern["type"] == "index-pattern"


def test_values_that_need_quoting_and_escaping_survive_the_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "--print-discover-url", "--dashboards-url", "http://osd:5601", "--serving",
                 "it's a (test)!", "--model-version", "2+3 & 4"]) == 0
    _, _, states = osd_states(capsys.readouterr().out.strip())
    values = {f["meta"]["key"]: f["meta"]["params"]["query"] for f in states["_q"]["filters"]}
    assert values == {"serving_name": "it's a (test)!", "model_version": "2+3 & 4"}


def test_rison_quotes_what_would_otherwise_change_meaning() -> None:
    value = {"a": [1, "x y", True, None, ""], "b": "it's!", "$state": "2", "c": "-x", "d": "serving-logs-*"}
    encoded = rison(value)
    assert encoded == "(a:!(1,'x y',!t,!n,''),b:'it!'s!!','$state':'2',c:'-x',d:'serving-logs-*')"
    assert parse_rison(encoded) == value
