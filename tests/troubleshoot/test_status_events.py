"""``servelog status`` reads its events bounded (review D7d): field-selected lists, paged, with a cap.

The loopback holds many events of other deployments and more than one page of this one's; the
state must come out right while the event lists asked are this deployment's objects (by
``involvedObject.name``) plus one ``type=Warning`` list, each paged (``limit`` + ``continue``), the
number of requests and the events read bounded, and a cut list said on stderr ("partial").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from collector.kube.client import KubeClient
from collector.query import cluster as cl
from tests.deployment import builders as b
from tests.deployment.test_state_stories import oom_story
from tests.troubleshoot.conftest import Cluster

NS = b.NAMESPACE


def others(count: int, *, warnings: int) -> list[dict[str, Any]]:
    """Events of another deployment's pods, the first ``warnings`` of them Warnings."""
    return [b.event("Pod", f"other-model-predictor-00001-deployment-5f6d7c8b9-p{n:04d}", "Unhealthy" if n < warnings
                    else "Pulled", f"event {n}", type="Warning" if n < warnings else "Normal", first=n % 500)
            for n in range(count)]


def event_lists(cluster: Cluster) -> list[dict[str, str]]:
    """The query of each events list request the command made."""
    found = []
    for request in cluster.kube.requests:
        parts = urlsplit(request.split(" ", 1)[1])
        if parts.path.endswith("/events"):
            found.append({k: v[-1] for k, v in parse_qs(parts.query).items()})
    return found


def load_story(cluster: Cluster, *, other_events: list[dict[str, Any]]) -> dict[str, Any]:
    pod, events = oom_story()
    ours = [b.pod_event(pod, "Pulled", f"Container image pulled ({n})", type="Normal", first=100 + n) for n in range(150)]
    gone = b.event("Pod", "sklearn-iris-predictor-00002-deployment-6d4c5f7b9-g0n3x", "FailedScheduling",
                   "0/3 nodes are available: 3 Insufficient memory.", source="default-scheduler", first=30)
    cluster.load(isvc=b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=None), pods=[pod],
                 events=[*events, *ours, gone, *other_events])
    return pod


def test_the_state_is_right_from_bounded_field_selected_lists(cluster: Cluster) -> None:
    pod = load_story(cluster, other_events=others(700, warnings=200))
    ran = cluster.servelog("status", b.NAME, "-n", NS, "--output", "json")
    assert ran.status == 0, ran.err
    found = ran.json()
    assert (found["status"], found["condition"]["type"], found["condition"]["status"]) == ("FAILED", "STARTED", "False")
    assert found["last_failure"]["reason"] == "OOMKilled" and "partial" not in ran.err
    lists = event_lists(cluster)
    selectors = [q.get("fieldSelector", "") for q in lists]
    assert all(selectors), "never the namespace's whole list"
    assert set(selectors) <= {*(f"involvedObject.name={n}" for n in cl.event_objects(
        b.NAME, b.isvc(latest_created=2, latest_ready=None), [pod])), "type=Warning"}
    assert f"involvedObject.name={pod['metadata']['name']}" in selectors and "type=Warning" in selectors
    pod_pages = [q for q in lists if q.get("fieldSelector") == f"involvedObject.name={pod['metadata']['name']}"]
    assert len(pod_pages) > 1 and all("continue" in q for q in pod_pages[1:]), "this pod's events: several pages"
    assert all(int(q["limit"]) <= cl.EVENT_PAGE for q in lists)
    assert len(lists) <= cl.MOST_EVENT_REQUESTS
    assert cluster.kube.listed_items("events") <= cl.MOST_EVENTS, "items read: bounded"
    with KubeClient.for_host(cluster.kube.url) as client:  # a deleted pod's verdict: through the Warning list
        kept, notes = cl.read_events(client, b.NAME, NS, b.isvc(latest_created=2, latest_ready=None), [pod])
    assert not notes and "sklearn-iris-predictor-00002-deployment-6d4c5f7b9-g0n3x" in {
        e["involvedObject"]["name"] for e in kept}
    assert not any(e["involvedObject"]["name"].startswith("other-model") for e in kept)
    assert len([e for e in kept if e["reason"] == "Pulled" and "pulled (" in e["message"]]) == 150


def test_a_cut_list_says_the_events_are_partial(cluster: Cluster) -> None:
    load_story(cluster, other_events=others(2 * cl.MOST_WARNINGS, warnings=2 * cl.MOST_WARNINGS))
    ran = cluster.servelog("status", b.NAME, "-n", NS, "--output", "json")
    assert ran.status == 0, ran.err
    assert ran.json()["last_failure"]["reason"] == "OOMKilled", "this deployment's own objects' events were all read"
    assert "partial events: the namespace's Warning events were read only in part" in ran.err
    warning_pages = [q for q in event_lists(cluster) if q.get("fieldSelector") == "type=Warning"]
    assert sum(int(q["limit"]) for q in warning_pages) == cl.MOST_WARNINGS, "read up to the cap, not one more page"


def test_the_objects_asked_about_are_the_deployments_own() -> None:
    pod, _ = oom_story()
    names = cl.event_objects(b.NAME, b.isvc(latest_created=2, latest_ready=None), [pod])
    assert names[:2] == [b.NAME, f"{b.NAME}-predictor"]
    assert {"sklearn-iris-predictor-00002", "sklearn-iris-predictor-00002-deployment",
            "sklearn-iris-predictor-00002-deployment-6d4c5f7b9", pod["metadata"]["name"]} <= set(names)
    assert names[-1] == pod["metadata"]["name"], "pods last: the deployment-wide objects are never crowded out"
