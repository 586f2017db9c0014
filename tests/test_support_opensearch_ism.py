"""The loopback server's ISM plugin refuses what index-management refuses.

No real node in the suite has ISM (Maven Central does not publish the plugin), so these checks are
held to the plugin's sources instead (cited in tests/support/opensearch_server/ism.py): strict
parsing of every model class, the ``ism_template`` clash of ``validateISMTemplates``, paging of
``GET _plugins/_ism/policies``. The glob-overlap test compares both implementations (the loopback
server's and ``collector.setup.ism``'s) with brute force.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from collector.setup.ism import globs_overlap
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.opensearch_server.ism import globs_intersect

POLICY: dict[str, Any] = {"policy": {"description": "retention", "default_state": "hot", "states": [
    {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "14d"}}]},
    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}],
    "ism_template": [{"index_patterns": ["serving-logs-*"], "priority": 100}]}}


@pytest.fixture
def server() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as fos:
        yield fos


def put(server: FakeOpenSearch, policy_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.url}/_plugins/_ism/policies/{policy_id}", method="PUT",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def variant(edit: Any) -> dict[str, Any]:
    body = copy.deepcopy(POLICY)
    edit(body["policy"])
    return body


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda p: p.update(colour="red"), "Invalid field: [colour] found in Policy."),
    (lambda p: p["states"][0].update(after="x"), "Invalid field: [after] found in State."),
    (lambda p: p["states"][0]["transitions"][0].update(when="x"), "Invalid field: [when] found in Transition."),
    (lambda p: p["states"][0]["transitions"][0]["conditions"].update(max_age="1d"),
     "Invalid field: [max_age] found in Conditions."),
    (lambda p: p["states"][0]["transitions"][0]["conditions"].update(min_doc_count=5),
     "Cannot provide more than one Transition condition"),
    (lambda p: p["states"][1]["actions"].append({"purge": {}}), "Invalid field: [purge] found in Actions."),
    (lambda p: p["ism_template"][0].update(order=1), "Invalid field: [order] found in ISMTemplate."),
    (lambda p: p["states"][0]["transitions"][0].update(state_name="gone"),
     "Policy contains a transition in state=hot pointing to a nonexistent state=gone"),
    (lambda p: p.update(default_state="warm"), "Policy must have a valid default state"),
    (lambda p: p["states"][1]["transitions"].append({"state_name": "hot"}),
     "State=delete cannot contain transitions if using delete action"),
    (lambda p: p["states"][0]["transitions"][0]["conditions"].update(min_index_age="two weeks"),
     "failed to parse setting [min_index_age] with value [two weeks] as a time value: unit is missing or unrecognized"),
])
def test_policies_are_parsed_as_strictly_as_the_plugin(server: FakeOpenSearch, edit: Any, reason: str) -> None:
    status, answer = put(server, "p", variant(edit))
    assert (status, answer["error"]["type"], answer["error"]["reason"]) == (400, "illegal_argument_exception", reason)
    assert not server.ism_policies


def test_an_overlapping_ism_template_at_the_same_priority_is_refused(server: FakeOpenSearch) -> None:
    catch_all = variant(lambda p: p.update(ism_template=[{"index_patterns": ["*"], "priority": 100}]))
    assert put(server, "catch-all", catch_all)[0] == 201
    status, answer = put(server, "servelog-logs-retention", POLICY)
    message = ("New policy servelog-logs-retention has an ISM template with index pattern [serving-logs-*] matching "
               "existing policy templates, please use a different priority than 100")
    assert status == 400 and answer["error"] == {
        "root_cause": [{"type": "index_management_exception", "reason": message}],
        "type": "index_management_exception", "reason": message,
        "caused_by": {"type": "exception", "reason": f"java.lang.IllegalArgumentException: {message}"}}
    higher = variant(lambda p: p["ism_template"][0].update(priority=101))
    assert put(server, "servelog-logs-retention", higher)[0] == 201
    disjoint = variant(lambda p: p.update(ism_template=[{"index_patterns": ["other-*"], "priority": 101}]))
    assert put(server, "other", disjoint)[0] == 201, "no overlap, no clash"
    current = server.ism_policies["catch-all"]
    replaced = put(server, f"catch-all?if_seq_no={current['_seq_no']}&if_primary_term=1", catch_all)
    assert replaced[0] == 200, "a policy does not clash with its own previous version"


def test_templates_of_one_policy_must_not_overlap_each_other(server: FakeOpenSearch) -> None:
    body = variant(lambda p: p.update(ism_template=[{"index_patterns": ["serving-*"], "priority": 5},
                                                    {"index_patterns": ["serving-logs-*"], "priority": 5}]))
    status, answer = put(server, "self", body)
    assert status == 400 and answer["error"]["reason"] == (
        "New policy self has an ISM template with index pattern [serving-*] matching this policy's other ISM "
        "templates with index patterns [serving-logs-*], please use different priority")


def test_the_policy_list_pages_twenty_at_a_time(server: FakeOpenSearch) -> None:
    no_template = variant(lambda p: p.pop("ism_template"))
    for n in range(25):
        assert put(server, f"p{n:02d}", no_template)[0] == 201
    with urllib.request.urlopen(f"{server.url}/_plugins/_ism/policies") as response:
        first = json.loads(response.read())
    assert first["total_policies"] == 25 and len(first["policies"]) == 20
    assert set(first["policies"][0]) == {"_id", "_seq_no", "_primary_term", "policy"}
    with urllib.request.urlopen(f"{server.url}/_plugins/_ism/policies?size=20&from=20") as response:
        rest = json.loads(response.read())
    assert [p["_id"] for p in rest["policies"]] == [f"p{n}" for n in range(20, 25)]


def test_glob_overlap_agrees_with_brute_force() -> None:
    words = ["".join(w) for n in range(7) for w in itertools.product("ab", repeat=n)]
    patterns = ["".join(p) for n in range(1, 4) for p in itertools.product("ab*", repeat=n)]
    for a, b in itertools.product(patterns, repeat=2):
        expected = any(fnmatch.fnmatchcase(w, a) and fnmatch.fnmatchcase(w, b) for w in words)
        assert globs_intersect(a, b) == expected == globs_overlap(a, b), (a, b)
    assert globs_overlap("*", "serving-logs-*") and not globs_overlap("serving-logs-*", "serving-events-*")
