"""Human and JSON output of the state and the history: aligned, colourless unless asked, stable keys, a next step."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from collector.deployment import (
    Failure,
    HistoryEntry,
    Status,
    Transition,
    deployment_history,
    deployment_state,
    history_json,
    history_text,
    state_json,
    state_text,
)
from tests.deployment import builders as b

ANSI = re.compile(r"\033\[[0-9;]*m")


def oom_state():  # type: ignore[no-untyped-def]
    return deployment_state(None, [b.fixture("pod-oomkilled-crashloop")], b.fixture("events-oomkilled")["items"],
                            now=b.T0 + timedelta(minutes=21, seconds=42))


def test_state_json_has_exactly_the_documented_keys_in_order() -> None:
    data = json.loads(state_json(oom_state()))
    assert list(data) == ["serving_name", "namespace", "status", "condition", "components", "model_name", "model_version",
                          "last_failure"]
    assert list(data["condition"]) == ["type", "status", "reason"]
    assert data["components"] == {"predictor": {"running": 0, "desired": 1, "ready": False}}
    assert list(data["last_failure"]) == ["time", "component", "pod", "container", "reason", "exit_code", "restarts",
                                          "memory_limit", "message", "last_lines"]


def test_state_json_is_stable_and_keeps_unknowns_as_null() -> None:
    idle = deployment_state(b.isvc(min_replicas=0), [], [], now=b.NOW)
    assert state_json(idle) == state_json(deployment_state(b.isvc(min_replicas=0), [], [], now=b.NOW + timedelta(hours=1)))
    data = json.loads(state_json(idle))
    assert data["last_failure"] is None
    assert state_json(idle).endswith("}\n")


def test_human_state_is_colourless_unless_asked_and_aligned_either_way() -> None:
    state = oom_state()
    plain, coloured = state_text(state), state_text(state, color=True)
    assert not ANSI.search(plain)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain
    lines = plain.splitlines()
    assert lines[0] == "sklearn-iris (namespace kserve-test)"
    values = ["FAILED", "STARTED", "sklearn-iris", "2026"]
    assert [line.index(value) for line, value in zip(lines[1:5], values, strict=True)] == [14] * 4
    table = [line for line in lines if line.startswith(("COMPONENT", "predictor"))]
    assert table == ["COMPONENT  RUNNING  DESIRED  READY", "predictor  0        1        no"]
    assert lines[-1] == ("next: kserve-container was OOMKilled (last at 09:19 UTC): its limit is 2Gi. Raise "
                         "resources.limits.memory of the predictor or make the model use less memory")


def test_human_state_shows_the_last_lines_a_crashed_container_printed() -> None:
    crashed = b.terminated_state("Error", 1, started=300, finished=304)
    pod = b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=5, last=crashed)])
    text = state_text(deployment_state(None, [pod], [], now=b.NOW,
                                       last_logs={"kserve-container": ["import xgboost", "ModuleNotFoundError: xgboost"]}))
    assert "  last lines it printed:\n    import xgboost\n    ModuleNotFoundError: xgboost\n" in text


def test_human_history_lists_transitions_then_folded_entries_aligned() -> None:
    history = deployment_history(b.fixture("history-crashloop"))
    text = history_text(history)
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0] == "sklearn-iris (namespace kserve-test)"
    assert lines[2].split() == ["TIME", "(UTC)", "STATUS", "MESSAGE"]
    assert lines[3].startswith("2026-11-24 09:13:02  FAILED    kserve-container: OOMKilled (exit 137)")
    header = next(line for line in lines if line.startswith("TIME (UTC)") and "VERSION" in line)
    assert header.split() == ["TIME", "(UTC)", "VERSION", "COMPONENT", "CONTAINER", "WHAT", "MESSAGE"]
    rows = lines[lines.index(header) + 1:]
    assert len(rows) == 7
    column = header.index("WHAT")
    assert all(row[column - 2:column] == "  " for row in rows)
    backoff = next(row for row in rows if "BackOff" in row)
    assert backoff.endswith("\N{MULTIPLICATION SIGN}9")
    assert ANSI.sub("", history_text(history, color=True)) == text


def test_history_text_can_be_cut_and_says_so() -> None:
    text = history_text(deployment_history(b.fixture("history-crashloop")), limit=3)
    assert text.splitlines()[-1] == "... 4 older entries (--output json shows all)"


def test_an_empty_history_says_why_it_may_be_empty() -> None:
    text = history_text(deployment_history([], serving_name="fraud", namespace="models"))
    assert "no history recorded" in text


def test_history_json_round_trips() -> None:
    history = deployment_history(b.fixture("history-crashloop"))
    data = json.loads(history_json(history))
    assert data == history.as_json()
    assert data["transitions"][0] == {"time": "2026-11-24T09:13:02.000000000Z", "status": "FAILED",
                                      "message": "kserve-container: OOMKilled (exit 137)"}


def test_every_json_time_is_rfc3339_utc_with_nine_digits_and_z() -> None:
    """Review D7e: Kubernetes writes whole seconds, microseconds or offsets; JSON writes one form."""
    assert Failure("OOMKilled", time="2026-11-24T10:19:58+01:00").as_json()["time"] == "2026-11-24T09:19:58.000000000Z"
    assert Failure("Evicted", time="2026-11-24T09:19:58.123456Z").as_json()["time"] == "2026-11-24T09:19:58.123456000Z"
    assert Failure("Evicted").as_json()["time"] is None
    entry = HistoryEntry(time="2026-11-24T09:19:58Z", kind="event", what="BackOff").as_json()
    assert (entry["time"], entry["first_time"]) == ("2026-11-24T09:19:58.000000000Z",) * 2
    assert Transition("2026-11-24T09:19:58Z", Status.FAILED, "x").as_json()["time"] == "2026-11-24T09:19:58.000000000Z"
    pod, events = b.fixture("pod-oomkilled-crashloop"), b.fixture("events-oomkilled")["items"]
    found = deployment_state(None, [pod], events, now=b.NOW).as_json()["last_failure"]
    assert found["time"] == "2026-11-24T09:19:58.000000000Z"
