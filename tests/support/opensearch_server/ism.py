"""Index State Management policies as the index-management plugin parses, validates and returns them.

The plugin is not on Maven Central, so no real node in the suite has it: this module is the only
model of it, written from opensearch-project/index-management's sources and cited per rule.

- Parsing is strict: every model class refuses a key it does not know with ``Invalid field: [x]
  found in <Class>.`` (``model/Policy.kt``, ``State.kt``, ``Transition.kt`` (and its ``Conditions``),
  ``ISMTemplate.kt``, ``ISMActionsParser.kt``), plus the ``require`` checks of their ``init`` blocks
  (one transition condition, a valid default state, transitions to existing states, nothing after a
  ``delete``). They surface as 400 ``illegal_argument_exception``.
- ``ism_template`` clashes are refused the way ``TransportIndexPolicyAction.validateISMTemplates``
  does: index-pattern format first (``ISMTemplateService.validateFormat``), then templates of the new
  policy overlapping each other at one priority (``findSelfConflictingTemplates``), then templates of
  *other* policies at the same priority whose patterns overlap (``findConflictingPolicyTemplates``;
  overlap = the intersection of the two ``Regex.simpleMatchToAutomaton`` automata is not empty). The
  error is an ``index_management_exception`` (``IndexManagementException.wrap``), status 400:
  ``New policy <id> has an ISM template with index pattern [<patterns>] matching existing policy
  templates, please use a different priority than <priority>``.
  From 3.4 (#1509) a pattern may be an exclusion, ``-<pattern>``: it is validated without its ``-``,
  must not be empty, and the policy's templates need one inclusion pattern between them (an empty
  ``ism_template`` list is then refused too); overlaps still compare the raw patterns. Before 3.4 a
  ``-`` pattern is an ordinary one (that no index name can match).
- Stored form: the policy's ``last_updated_time`` is the time of the PUT
  (``RestIndexPolicyAction``: ``copy(lastUpdatedTime = Instant.now())``), an ``ism_template``'s is
  the one given, else the time of the PUT (``ISMTemplate.parse``: ``lastUpdatedTime ?:
  Instant.now()``); attachment compares it with the index's creation date (:mod:`.ism_managed`).
  Times come from :func:`event_ms`, a millisecond clock that never repeats a value, so that "created
  after the policy" is decided by the order of the requests, never by the clock's resolution.
- ``GET _plugins/_ism/policies`` pages (``size`` default 20, ``from``), sorted by policy id, and
  lists ``_id``, ``_seq_no``, ``_primary_term`` and ``policy`` per policy (``GetPoliciesResponse``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from tests.support.opensearch_server.common import Reply, as_list, fail, now_ms

ACTIONS = {"rollover", "delete", "read_only", "read_write", "replica_count", "force_merge", "close", "open",
           "notification", "snapshot", "index_priority", "allocation", "rollup", "shrink", "transform", "alias"}
_CONDITIONS = {"min_index_age", "min_doc_count", "min_size", "cron", "min_rollover_age"}
_TIME_CONDITIONS = {"min_index_age", "min_rollover_age"}
_INVALID_PATTERN_CHARS = '\\/?"<>| ,'
_EXCLUSIONS_SINCE = (3, 4)  # index-management #1509: "-pattern" excludes
_clock_lock = threading.Lock()
_last_ms = 0


def event_ms() -> int:
    """Wall-clock milliseconds, strictly increasing across calls (one process-wide sequence)."""
    global _last_ms
    with _clock_lock:
        _last_ms = max(now_ms(), _last_ms + 1)
        return _last_ms


def _invalid(field: str, where: str) -> Reply:
    return fail(400, "illegal_argument_exception", f"Invalid field: [{field}] found in {where}.")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise fail(400, "illegal_argument_exception", message)


def _check_fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise fail(400, "parsing_exception", f"Failed to parse object: expecting token of type [START_OBJECT] in {where}")
    unknown = next((k for k in obj if k not in allowed), None)
    if unknown is not None:
        raise _invalid(unknown, where)
    return obj


def parse_policy(policy: Any) -> dict[str, Any]:
    """Validate a policy body (the object under ``"policy"``) as the plugin does; returns it unchanged."""
    _check_fields(policy, {"schema_version", "last_updated_time", "policy_id", "description", "error_notification",
                           "default_state", "states", "ism_template", "user"}, "Policy")
    states = [_parse_state(s) for s in as_list(policy.get("states"))]
    for template in as_list(policy.get("ism_template")):
        _parse_template(template)
    _require(policy.get("description") is not None, "description is null")
    _require(policy.get("default_state") is not None, "default_state is null")
    names = [s["name"] for s in states]
    for state in states:
        for transition in state.get("transitions") or []:
            _require(transition["state_name"] in names, f"Policy contains a transition in state={state['name']} "
                     f"pointing to a nonexistent state={transition['state_name']}")
    _require(len(set(names)) == len(names), "Policy cannot have duplicate state names")
    _require(bool(states), "Policy must contain at least one State")
    _require(policy["default_state"] in names, "Policy must have a valid default state")
    return policy


def _parse_state(state: Any) -> dict[str, Any]:
    _check_fields(state, {"name", "actions", "transitions"}, "State")
    _require(state.get("name") is not None, "State name is null")
    _require(bool(str(state["name"]).strip()), "State must contain a valid name")
    deleted = False
    for action in as_list(state.get("actions")):
        _check_fields(action, ACTIONS | {"retry", "timeout"}, "Actions")
        _require(any(k in ACTIONS for k in action), "Action inside state is null")
        _require(not deleted, f"State={state['name']} must not contain an action after a delete action")
        deleted = "delete" in action
    transitions = [_parse_transition(t) for t in as_list(state.get("transitions"))]
    if deleted:
        _require(not transitions, f"State={state['name']} cannot contain transitions if using delete action")
    return state


def _parse_transition(transition: Any) -> dict[str, Any]:
    _check_fields(transition, {"state_name", "conditions"}, "Transition")
    _require(transition.get("state_name") is not None, "Transition state name is null")
    conditions = transition.get("conditions")
    if conditions is not None:
        _check_fields(conditions, _CONDITIONS, "Conditions")
        for key in _TIME_CONDITIONS & set(conditions):
            value = str(conditions[key])
            if not _is_time_value(value):
                raise fail(400, "illegal_argument_exception", f"failed to parse setting [{key}] with value [{value}] "
                           "as a time value: unit is missing or unrecognized")
        _require(len(conditions) == 1, "Cannot provide more than one Transition condition")
    return transition


def _is_time_value(value: str) -> bool:
    for unit in ("nanos", "micros", "ms", "d", "h", "m", "s"):
        if value.endswith(unit) and value[: -len(unit)].isdigit():
            return True
    return value in ("-1", "0")


def _parse_template(template: Any) -> dict[str, Any]:
    _check_fields(template, {"index_patterns", "priority", "last_updated_time"}, "ISMTemplate")
    priority = template.get("priority") or 0
    _require(int(priority) >= 0, "Requires priority to be >= 0")
    _require(bool(as_list(template.get("index_patterns"))), "Requires at least one index pattern")
    return template


# -- ism_template clashes ----------------------------------------------------------------------------
def globs_intersect(a: str, b: str) -> bool:
    """Whether some index name matches both ``*``-globs (``Regex.simpleMatchToAutomaton`` supports only ``*``)."""

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            if meet(i + 1, j):  # the star matches nothing more
                return True
            return j < len(b) and meet(i, j + 1)  # the star swallows b's next character (or b's star)
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and meet(i + 1, j + 1)

    return meet(0, 0)


def overlapping(p1: list[str], p2: list[str]) -> bool:
    """``ISMTemplateService.overlapping``: the union automata of the two pattern lists intersect."""
    return bool(p1) and bool(p2) and any(globs_intersect(a, b) for a in p1 for b in p2)


def _kotlin_list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _wrap(message: str) -> Reply:
    # IndexManagementException.wrap(IllegalArgumentException(msg)): status 400, cause "java.lang.IllegalArgumentException: msg"
    cause = {"type": "exception", "reason": f"java.lang.IllegalArgumentException: {message}"}
    error = {"type": "index_management_exception", "reason": message}
    return Reply(400, {"error": {"root_cause": [error], **error, "caused_by": cause}, "status": 400})


def _format_problems(patterns: list[str], version: tuple[int, ...]) -> list[str]:
    """``ISMTemplateService.validateFormat`` over every pattern of the policy's templates."""
    problems = []
    exclusions = version >= _EXCLUSIONS_SINCE
    for pattern in patterns:
        excluded = exclusions and pattern.startswith("-")
        bare = pattern[1:] if excluded else pattern
        if excluded and not bare:
            problems.append(f"index_pattern [{pattern}] must have content after '-' exclusion prefix")
        if "#" in bare:
            problems.append(f"index_pattern [{pattern}] must not contain a '#'")
        if ":" in bare:
            problems.append(f"index_pattern [{pattern}] must not contain a ':'")
        if bare.startswith("_"):
            problems.append(f"index_pattern [{pattern}] must not start with '_'")
        if any(c in bare for c in _INVALID_PATTERN_CHARS):
            problems.append(f"index_pattern [{pattern}] must not contain the following characters [\\, /, ?, \", <, "
                            ">, |,  , ,]")
    if exclusions and all(p.startswith("-") for p in patterns):
        problems.append("index_patterns must contain at least one inclusion pattern (patterns cannot be all exclusions)")
    return problems


def validate_ism_templates(policy_id: str, templates: list[dict[str, Any]],
                           existing: dict[str, list[dict[str, Any]]], version: tuple[int, ...] = (2, 19)) -> None:
    """``TransportIndexPolicyAction.validateISMTemplates`` against the other stored policies' templates."""
    problems = _format_problems([p for t in templates for p in as_list(t.get("index_patterns"))], version)
    if problems:
        message = "Validation Failed: " + "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        error = {"type": "index_management_exception", "reason": message}
        raise Reply(400, {"error": {"root_cause": [error], **error, "caused_by": {
            "type": "exception", "reason": f"org.opensearch.common.ValidationException: {message}"}}, "status": 400})
    by_priority: dict[int, list[list[str]]] = {}
    for template in templates:
        by_priority.setdefault(int(template.get("priority") or 0), []).append(as_list(template.get("index_patterns")))
    for lists in by_priority.values():
        for n, patterns in enumerate(lists):
            others = [p for later in lists[n + 1:] for p in later]
            if overlapping(patterns, others):
                raise _wrap(f"New policy {policy_id} has an ISM template with index pattern {_kotlin_list(patterns)} "
                            f"matching this policy's other ISM templates with index patterns {_kotlin_list(others)},"
                            " please use different priority")
    for template in templates:
        patterns, priority = as_list(template.get("index_patterns")), int(template.get("priority") or 0)
        clash = [other for other, theirs in existing.items() if other != policy_id and any(
            int(t.get("priority") or 0) == priority and overlapping(patterns, as_list(t.get("index_patterns")))
            for t in theirs)]
        if clash:
            raise _wrap(f"New policy {policy_id} has an ISM template with index pattern {_kotlin_list(patterns)} "
                        f"matching existing policy templates, please use a different priority than {priority}")


# -- stored form ----------------------------------------------------------------------------------
def policy_view(policy_id: str, policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as the plugin stores and returns it: bookkeeping and retry defaults added."""
    now = event_ms()
    states = [{**s, "actions": [{"retry": {"count": 3, "backoff": "exponential", "delay": "1m"}, **a}
                                for a in s.get("actions") or []], "transitions": s.get("transitions") or []}
              for s in policy["states"]]
    view = {"policy_id": policy_id, "description": policy.get("description", ""), "last_updated_time": now,
            "schema_version": 21, "error_notification": policy.get("error_notification"),
            "default_state": policy["default_state"], "states": states,
            "ism_template": [{**t, "priority": int(t.get("priority") or 0),
                              "last_updated_time": now if t.get("last_updated_time") is None
                              else int(t["last_updated_time"])}
                             for t in as_list(policy.get("ism_template"))] or None}
    return view


def list_page(policies: dict[str, dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """``GET _plugins/_ism/policies``: one page (``size`` default 20, ``from``), sorted by policy id."""
    size, start = int(query.get("size", 20)), int(query.get("from", 0))
    ordered = sorted(policies.items(), reverse=query.get("sortOrder", "asc") == "desc")
    page = [{"_id": k, "_seq_no": v["_seq_no"], "_primary_term": v["_primary_term"], "policy": v["policy"]}
            for k, v in ordered[start:start + size]]
    return {"policies": page, "total_policies": len(policies)}
