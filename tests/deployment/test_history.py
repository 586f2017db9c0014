"""History folding and transitions, from deployment-history documents shaped as the contract says (``_source``s)."""

from __future__ import annotations

import random
from typing import Any

from collector.deployment import Status, deployment_history, fold_history, status_transitions
from collector.deployment.history import with_count_suffix
from collector.sources.history.inferenceservice import revision_facts
from tests.deployment import builders as b

POD = "sklearn-iris-predictor-00002-deployment-6d4c5f7b9-k7wq4"
BACKOFF = f"Back-off restarting failed container kserve-container in pod {POD}_kserve-test(5b2e9c1a)"


def doc(seconds: float, kind: str, reason: str = "", *, message: str = "", doc_id: str | None = None,
        **fields: Any) -> dict[str, Any]:
    """A history document: the contract's fields, absent when unknown."""
    base: dict[str, Any] = {"timestamp": b.micro(seconds)[:-1] + "000Z", "event_kind": kind, "namespace": "kserve-test",
                            "serving_name": "sklearn-iris", "model_name": "sklearn-iris", "model_version": "2",
                            "component": "predictor", "pod_name": POD, "doc_id": doc_id or f"{kind}-{reason}-{seconds}"}
    if reason:
        base["reason"] = reason
    if message:
        base["message"] = message
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def backoff(seconds: float, count: int) -> dict[str, Any]:
    return doc(seconds, "event", "BackOff", message=BACKOFF, type="Warning", count=count, involved_kind="Pod",
               involved_name=POD, container_name="kserve-container", source="kubelet")


def ready(seconds: float, status: str, reason: str = "", message: str = "", kind: str = "isvc_condition",
          **fields: Any) -> dict[str, Any]:
    return doc(seconds, kind, reason, message=message, condition_type="Ready", condition_status=status,
               type="Warning" if status == "False" else "Normal", component=None,
               pod_name=None if kind == "isvc_condition" else POD, **fields)


# -- folding ---------------------------------------------------------------------------------------
def test_repeated_events_fold_into_one_entry_with_the_highest_count() -> None:
    docs = [backoff(100 + 10 * n, n) for n in range(1, 38)]
    entries = fold_history(docs)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.count, entry.what, entry.container, entry.model_version) == (37, "BackOff", "kserve-container", "2")
    assert (entry.time, entry.first_time) == (docs[-1]["timestamp"], docs[0]["timestamp"])
    assert with_count_suffix(entry) == f"{BACKOFF} \N{MULTIPLICATION SIGN}37"


def test_a_counter_that_starts_over_adds_up() -> None:
    """The Event object expired (1 h TTL) and a new one counts from 1 again: 9 + 4 occurrences."""
    docs = [backoff(100 + n, n) for n in range(1, 10)] + [backoff(5000 + n, n) for n in range(1, 5)]
    assert fold_history(docs)[0].count == 13


def test_events_without_a_count_count_their_documents() -> None:
    docs = [doc(10 + n, "event", "Unhealthy", message="Readiness probe failed: 503", type="Warning",
                involved_kind="Pod", involved_name=POD) for n in range(5)]
    assert fold_history(docs)[0].count == 5


def test_entries_are_newest_first_whatever_order_the_documents_come_in() -> None:
    history = b.fixture("history-crashloop")
    shuffled = list(history)
    random.Random(7).shuffle(shuffled)
    entries = fold_history(shuffled)
    assert entries == fold_history(history)
    times = [e.time for e in entries]
    assert times == sorted(times, reverse=True)
    assert entries[0].what == "Ready=False RevisionMissing"


def test_the_crashloop_history_reads_as_merlins_history_view() -> None:
    entries = fold_history(b.fixture("history-crashloop"))
    backoffs = [e for e in entries if e.what == "BackOff"]
    ooms = [e for e in entries if e.what == "OOMKilled"]
    assert [e.count for e in backoffs] == [9]
    assert [(e.count, e.message) for e in ooms] == [(3, "exit 137")]  # three identical kills of one container
    assert len(entries) == 7


def test_a_flapping_condition_keeps_its_order() -> None:
    docs = [ready(10, "False", "ContainersNotReady", kind="pod_condition"), ready(20, "True", kind="pod_condition"),
            ready(30, "False", "ContainersNotReady", kind="pod_condition")]
    flapping = ["Ready=False ContainersNotReady", "Ready=True", "Ready=False ContainersNotReady"]
    assert [e.what for e in fold_history(docs)] == flapping


def test_restarts_of_one_container_fold_whatever_their_text() -> None:
    docs = [doc(100 * n, "restart", "Restarted", message=f"Container kserve-container restarted (restart {n})",
                container_name="kserve-container", type="Warning") for n in range(1, 6)]
    entries = fold_history(docs)
    assert [(e.count, e.message) for e in entries] == [(5, "Container kserve-container restarted (restart 5)")]


def test_documents_without_a_timestamp_are_left_out() -> None:
    assert fold_history([{"event_kind": "event", "reason": "BackOff"}, backoff(10, 1)])[0].count == 1


# -- transitions -----------------------------------------------------------------------------------
def test_transitions_of_the_crashloop_history() -> None:
    """A start that never got ready: it failed at the first OOM kill, not when KServe gave up."""
    transitions = status_transitions(b.fixture("history-crashloop"))
    assert [(t.status, t.time[11:19]) for t in transitions] == [(Status.FAILED, "09:13:02"), (Status.STARTING, "09:11:42")]
    assert transitions[0].message == "kserve-container: OOMKilled (exit 137)"


def test_inference_service_ready_decides_and_one_replicas_oom_does_not_fail_a_serving_deployment() -> None:
    docs = [doc(0, "revision", "LatestCreatedRevision", message="sklearn-iris-predictor-00001"),
            ready(30, "Unknown", "RevisionMissing"), ready(60, "True"),
            doc(300, "termination", "OOMKilled", exit_code=137, container_name="kserve-container", type="Warning"),
            ready(400, "False", "RevisionMissing", "Configuration \"sklearn-iris-predictor\" does not have any ready Revision."),
            ready(700, "True")]
    assert [t.status for t in status_transitions(docs)][::-1] == [
        Status.STARTING, Status.RUNNING, Status.FAILED, Status.RUNNING]


def test_a_new_model_version_while_serving_is_updating() -> None:
    docs = [ready(60, "True"), doc(500, "revision", "LatestCreatedRevision", message="sklearn-iris-predictor-00003",
                                   model_version="3"),
            ready(520, "Unknown", model_version="3"), ready(600, "True", model_version="3")]
    transitions = status_transitions(docs)
    assert [t.status for t in transitions] == [Status.RUNNING, Status.UPDATING, Status.RUNNING]
    assert transitions[1].message == "sklearn-iris-predictor-00003"


def test_a_fix_after_a_failure_is_a_start_before_it_ever_served_and_an_update_after() -> None:
    never = [doc(0, "revision", "LatestCreatedRevision", message="00001"), ready(60, "False", "RevisionMissing", "no"),
             doc(300, "revision", "LatestCreatedRevision", message="00002")]
    assert [t.status for t in status_transitions(never)][::-1] == [Status.STARTING, Status.FAILED, Status.STARTING]
    served = [ready(10, "True"), ready(60, "False", "RevisionMissing", "no"),
              doc(300, "revision", "LatestCreatedRevision", message="00002"), ready(320, "Unknown")]
    assert [t.status for t in status_transitions(served)][::-1] == [Status.RUNNING, Status.FAILED, Status.UPDATING]


def test_without_inference_service_documents_the_pods_decide() -> None:
    docs = [doc(0, "event", "Scheduled", message="Successfully assigned kserve-test/x to node-1", type="Normal",
                involved_kind="Pod", involved_name=POD),
            doc(20, "waiting", "ImagePullBackOff", message="Back-off pulling image \"kserve/sklearnserver:v9.9.9\"",
                container_name="kserve-container", type="Warning"),
            ready(300, "True", kind="pod_condition"),
            doc(900, "termination", "OOMKilled", exit_code=137, container_name="kserve-container", type="Warning")]
    transitions = status_transitions(docs)
    assert [t.status for t in transitions][::-1] == [Status.STARTING, Status.FAILED, Status.RUNNING, Status.FAILED]
    assert transitions[0].message == "kserve-container: OOMKilled (exit 137)"


def test_a_model_version_change_seen_only_in_pod_documents_is_updating() -> None:
    docs = [ready(60, "True", kind="pod_condition"),
            doc(500, "event", "Scheduled", message="assigned", type="Normal", model_version="3")]
    assert [t.status for t in status_transitions(docs)] == [Status.UPDATING, Status.RUNNING]


def test_kserves_stop_and_resume() -> None:
    docs = [ready(60, "True"), doc(500, "isvc_condition", condition_type="Stopped", condition_status="True"),
            doc(900, "isvc_condition", condition_type="Stopped", condition_status="False"), ready(990, "True")]
    assert [t.status for t in status_transitions(docs)][::-1] == [Status.RUNNING, Status.STOPPED, Status.STARTING,
                                                                 Status.RUNNING]


def test_deployment_history_takes_the_names_from_the_documents() -> None:
    history = deployment_history(b.fixture("history-crashloop"))
    assert (history.serving_name, history.namespace) == ("sklearn-iris", "kserve-test")
    assert list(history.as_json()) == ["serving_name", "namespace", "transitions", "entries"]
    assert list(history.as_json()["entries"][0]) == ["time", "first_time", "model_version", "component", "container",
                                                     "pod", "kind", "type", "what", "message", "count"]


# -- revision documents as the history collector writes them (issue 11 review, D1) ------------------
def revision(seconds: float, created: int, ready: int | None) -> dict[str, Any]:
    """The ``revision`` document ``servelog events`` writes for an InferenceService at that point of a rollout."""
    (fact,) = revision_facts(b.isvc(latest_created=created, latest_ready=ready))
    return {**fact.fields, "event_kind": "revision", "timestamp": b.micro(seconds)[:-1] + "000Z",
            "doc_id": f"revision-{created}-{ready}-{seconds}"}


def test_the_producers_revision_documents_say_which_revision_is_ready() -> None:
    assert (revision(0, 2, 1)["reason"], revision(0, 2, 2)["reason"]) == ("RevisionCreated", "RevisionReady")
    assert (revision(0, 2, 1)["revision"], revision(0, 2, 1)["ready_revision"]) == (
        "sklearn-iris-predictor-00002", "sklearn-iris-predictor-00001")


def test_a_rollout_that_finished_is_not_the_start_of_an_update() -> None:
    docs = [revision(10, 1, None), ready(30, "Unknown", model_version="1"), revision(50, 1, 1),
            ready(60, "True", model_version="1"),
            revision(500, 2, 1), revision(600, 2, 2)]
    transitions = status_transitions(docs)
    assert [t.status for t in transitions][::-1] == [Status.STARTING, Status.RUNNING, Status.UPDATING, Status.RUNNING]
    assert "sklearn-iris-predictor-00002" in transitions[0].message


def test_a_ready_revision_recorded_while_serving_changes_nothing() -> None:
    """The collector re-records the revision (a restart, a traffic change): the deployment keeps serving."""
    docs = [ready(60, "True", model_version="1"), revision(100, 1, 1), revision(900, 1, 1)]
    assert [t.status for t in status_transitions(docs)] == [Status.RUNNING]


def test_only_a_new_revision_that_is_not_ready_starts_an_update() -> None:
    docs = [ready(60, "True", model_version="1"), revision(100, 1, 1), revision(500, 2, 1)]
    transitions = status_transitions(docs)
    assert [(t.status, t.time[11:19]) for t in transitions] == [(Status.UPDATING, "09:08:20"), (Status.RUNNING, "09:01:00")]


def test_history_and_state_know_the_same_failure_events() -> None:
    """One list of failure events (review D6): a volume that cannot attach fails the history as it fails the state."""
    attach = doc(20, "event", "FailedAttachVolume", message="AttachVolume.Attach failed for volume \"models\"",
                 type="Warning", involved_kind="Pod", involved_name=POD)
    assert [t.status for t in status_transitions([attach])] == [Status.FAILED]
