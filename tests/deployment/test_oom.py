"""The OOM advice counts OOM kills from evidence with times, in a stated window (review D7f), on fixtures.

Evidence: each pod's ``lastState``/``state`` terminated ``OOMKilled`` (``finishedAt``) across the
component's pods, and ``OOMKilled``/``OOMKilling`` Events about them (``count`` occurrences);
restarts and ``BackOff`` events are not kills. Only the last hour counts, and the advice says the
span the evidence covers, or when the one known kill happened.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from collector.deployment import deployment_state
from collector.deployment.objects import read_events
from collector.deployment.oom import OomKills, how_often_oom, oom_kills
from tests.deployment import builders as b

C = "kserve-container"
MIN = 60


def now_ns(minutes: float) -> int:
    return int((b.T0 + timedelta(minutes=minutes)).timestamp()) * 10**9


def crashlooping(suffix: str, *, finished: float, restarts: int = 3, reason: str = "OOMKilled") -> dict[str, Any]:
    killed = b.terminated_state(reason, 137, started=finished - 30, finished=finished)
    return b.pod(suffix=suffix, app=[b.waiting(C, "CrashLoopBackOff", restarts=restarts, last=killed),
                                     b.running("queue-proxy", ready=False)])


def test_one_kill_known_says_when_not_how_often_the_pod_restarted() -> None:
    pod = crashlooping("aaaaa", finished=19 * MIN, restarts=9)
    backoff = b.pod_event(pod, "BackOff", "Back-off restarting failed container", container=C, first=60, last=1190, count=37)
    kills = oom_kills([pod], read_events([backoff]), container=C, now_ns=now_ns(30))
    assert kills == OomKills(1, now_ns(19), now_ns(19)), "9 restarts and 37 back-offs are not 9 kills"
    assert how_often_oom(kills, now_ns=now_ns(30)) == "OOMKilled (last at 09:19 UTC)"


def test_kills_across_the_components_pods_and_events_in_the_last_hour() -> None:
    first, second = crashlooping("aaaaa", finished=50 * MIN), crashlooping("bbbbb", finished=58 * MIN)
    old = crashlooping("ccccc", finished=5 * MIN)  # more than an hour before now: outside the window
    evented = b.pod_event(first, "OOMKilling", "Memory cgroup out of memory: Killed process 4242 (python)", container=C,
                          first=18 * MIN, last=50 * MIN + 2, count=3)  # its last occurrence is first's lastState
    other = b.pod_event(first, "OOMKilled", "killed", container="queue-proxy", first=40 * MIN)
    kills = oom_kills([first, second, old], read_events([evented, other]), container=C, now_ns=now_ns(70))
    assert kills == OomKills(4, now_ns(18), now_ns(58)), "3 evented kills of the first pod (one its lastState), 1 of the second"
    assert how_often_oom(kills, now_ns=now_ns(70)) == "OOMKilled 4 times in the last 52 minutes"
    assert oom_kills([old], [], container=C, now_ns=now_ns(70)) is None
    assert how_often_oom(None, now_ns=now_ns(70), last_known=b.at(5 * MIN)) == "OOMKilled (last at 09:05 UTC)", \
        "a kill older than the window: when it was, not a count"
    assert how_often_oom(None, now_ns=now_ns(70)) == "OOMKilled"
    assert how_often_oom(OomKills(1, now_ns(5), now_ns(5)), now_ns=now_ns(24 * 60 + 30)) == \
        "OOMKilled (last at 2026-11-24 09:05 UTC)", "another day: the date too"


def test_an_event_without_a_first_time_says_when_it_last_happened() -> None:
    pod = b.pod(suffix="aaaaa", app=[b.running(C, restarts=2), b.running("queue-proxy")])
    event = b.pod_event(pod, "OOMKilling", "Memory cgroup out of memory", container=C, first=20 * MIN, count=2)
    assert how_often_oom(oom_kills([pod], read_events([event]), container=C, now_ns=now_ns(30)),
                         now_ns=now_ns(30)) == "OOMKilled 2 times (last at 09:20 UTC)"


def test_the_advice_of_a_crash_looping_component_states_the_real_window() -> None:
    first, second = crashlooping("aaaaa", finished=12 * MIN), crashlooping("bbbbb", finished=19 * MIN + 30)
    state = deployment_state(b.isvc(conditions=b.progressing_conditions(), latest_created=1, latest_ready=None),
                             [first, second], [], now=b.T0 + timedelta(minutes=21, seconds=42))
    assert state.last_failure is not None and state.last_failure.reason == "OOMKilled"
    assert state.next_step.startswith("kserve-container was OOMKilled 2 times in the last 10 minutes: its limit is 2Gi"), \
        state.next_step
