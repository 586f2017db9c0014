"""The loopback API server speaks the real protocol: the unmodified ``kubernetes`` client and servelog's
KubeClient list, watch (bookmarks, 410, selector transitions) and stream logs against it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from collector.errors import KubeGone, KubeRejected, KubeUnavailable
from collector.kube.client import KubeClient, KubeThrottled, split_complete_lines
from collector.kube.presets import event_time
from tests.support.kube_server import KubeApiServer, kubelet_timestamp, parse_since_time, pod_fixture
from tests.support.wait import wait_until

NODE = "gpu-node-1"
T0 = 1_795_511_521 * 10**9  # 2026-11-24T09:12:01Z, a whole second
NINE_DIGIT_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=3600) as server:  # bookmarks only when a test asks
        yield server


@pytest.fixture
def core(kube: KubeApiServer) -> Iterator[kubernetes.client.CoreV1Api]:
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=kube.url))
    yield kubernetes.client.CoreV1Api(api)
    api.close()


@pytest.fixture
def client(kube: KubeApiServer) -> Iterator[KubeClient]:
    with KubeClient.for_host(kube.url) as c:
        yield c


def names(items: list[Any]) -> set[str]:
    return {item.metadata.name if hasattr(item, "metadata") else item["metadata"]["name"] for item in items}


# -- list and get ------------------------------------------------------------------------------------
def test_typed_client_lists_the_fixture_pods_scoped_to_a_node(kube: KubeApiServer,
                                                               core: kubernetes.client.CoreV1Api) -> None:
    here = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    kube.add_pod(pod_fixture("kserve-transformer", node="other-node"))
    listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE}")
    assert names(listed.items) == {here["metadata"]["name"]}
    assert listed.metadata.resource_version == str(kube.resource_version)
    pod = listed.items[0]
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert [c.name for c in pod.spec.containers] == ["kserve-container", "queue-proxy", "agent"]


@pytest.mark.parametrize(("selector", "expected"), [
    ("component=predictor", {"predictor", "hops"}),
    ("component==transformer", {"transformer"}),
    ("component!=predictor", {"transformer", "merlin-less"}),
    ("component in (transformer, predictor)", {"predictor", "transformer", "hops"}),
    ("component notin (predictor)", {"transformer", "merlin-less"}),
    ("serving.hops.works/id", {"hops"}),
    ("!serving.kserve.io/inferenceservice", {"merlin-less"}),
    ("component=predictor,serving.hops.works/id", {"hops"}),
])
def test_label_selectors(kube: KubeApiServer, core: kubernetes.client.CoreV1Api, selector: str,
                         expected: set[str]) -> None:
    pods = {"predictor": pod_fixture("kserve-serverless-predictor"), "transformer": pod_fixture("kserve-transformer"),
            "hops": pod_fixture("hopsworks-predictor"), "merlin-less": pod_fixture("merlin-model")}
    pods["merlin-less"]["metadata"]["labels"] = {"app": "plain"}
    for name, pod in pods.items():
        pod["metadata"]["name"] = name
        kube.add_pod(pod)
    assert names(core.list_pod_for_all_namespaces(label_selector=selector).items) == expected


def test_namespaced_list_and_get(kube: KubeApiServer, core: kubernetes.client.CoreV1Api, client: KubeClient) -> None:
    hops = kube.add_pod(pod_fixture("hopsworks-predictor"))
    kube.add_pod(pod_fixture("kserve-transformer"))
    assert names(core.list_namespaced_pod("fraud-project").items) == {hops["metadata"]["name"]}
    got = core.read_namespaced_pod(hops["metadata"]["name"], "fraud-project")
    assert got.metadata.labels["serving.hops.works/model-version"] == "4"
    assert client.get_pod("fraud-project", hops["metadata"]["name"])["metadata"]["uid"] == hops["metadata"]["uid"]
    with pytest.raises(ApiException) as typed:
        core.read_namespaced_pod("nope", "fraud-project")
    assert typed.value.status == 404
    with pytest.raises(KubeRejected) as ours:
        client.get_pod("fraud-project", "nope")
    assert ours.value.status == 404


def test_a_malformed_selector_is_a_400(core: kubernetes.client.CoreV1Api, client: KubeClient) -> None:
    with pytest.raises(ApiException) as caught:
        core.list_pod_for_all_namespaces(label_selector="a in b")
    assert caught.value.status == 400
    with pytest.raises(KubeRejected):
        client.list_pods(label_selector="a in b")


# -- watch -------------------------------------------------------------------------------------------
def test_typed_watch_streams_changes_from_a_resource_version(kube: KubeApiServer,
                                                            core: kubernetes.client.CoreV1Api) -> None:
    rv = core.list_pod_for_all_namespaces().metadata.resource_version
    pod = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    pod["metadata"]["labels"]["canary"] = "true"
    kube.update_pod(pod)
    kube.delete_pod(pod["metadata"]["uid"])
    events = list(kubernetes.watch.Watch().stream(core.list_pod_for_all_namespaces, resource_version=rv,
                                                  timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"].metadata.labels["canary"] == "true"
    assert events[2]["object"].metadata.deletion_timestamp is not None
    assert [int(e["object"].metadata.resource_version) for e in events] == sorted(
        int(e["object"].metadata.resource_version) for e in events)


def test_watch_without_a_version_starts_with_the_current_objects(kube: KubeApiServer,
                                                                 core: kubernetes.client.CoreV1Api) -> None:
    kube.add_pod(pod_fixture("kserve-transformer"))
    events = list(kubernetes.watch.Watch().stream(core.list_pod_for_all_namespaces, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "torch-transformer-transformer-00001-deployment-5c7f8d9b4-qw7rt")]


def test_watch_delivers_events_that_happen_while_it_is_open(kube: KubeApiServer, client: KubeClient) -> None:
    _, rv = client.list_pods(field_selector=f"spec.nodeName={NODE}")
    with client.watch_pods(resource_version=rv, field_selector=f"spec.nodeName={NODE}", timeout_seconds=30) as stream:
        kube.add_pod(pod_fixture("kserve-transformer", node="elsewhere"))  # filtered out by the field selector
        pod = kube.add_pod(pod_fixture("merlin-model", node=NODE))
        kind, obj = next(stream)
    assert (kind, obj["metadata"]["uid"]) == ("ADDED", pod["metadata"]["uid"])


def test_selector_transitions_arrive_as_deleted_and_added(kube: KubeApiServer, client: KubeClient) -> None:
    selector = "serving.kserve.io/inferenceservice"
    pod = kube.add_pod(pod_fixture("kserve-raw-deployment"))
    _, rv = client.list_pods(label_selector=selector)
    unlabelled = {**pod, "metadata": {**pod["metadata"], "labels": {"app": "debug"}}}
    kube.update_pod(unlabelled)
    kube.update_pod(pod)
    stream = client.watch_pods(resource_version=rv, label_selector=selector, timeout_seconds=1)
    assert [kind for kind, _ in stream] == ["DELETED", "ADDED"]


def test_bookmark_carries_the_current_resource_version(kube: KubeApiServer, client: KubeClient) -> None:
    _, rv = client.list_pods(field_selector=f"spec.nodeName={NODE}")
    with client.watch_pods(resource_version=rv, field_selector=f"spec.nodeName={NODE}", timeout_seconds=30) as stream:
        kube.add_pod(pod_fixture("kserve-transformer", node="elsewhere"))  # moves the version, not for us
        kube.send_bookmark()
        kind, obj = next(stream)
    assert kind == "BOOKMARK"
    assert obj["metadata"]["resourceVersion"] == str(kube.resource_version)
    assert int(obj["metadata"]["resourceVersion"]) > int(rv)


def test_periodic_bookmarks_on_a_quiet_watch() -> None:
    with KubeApiServer(bookmark_interval=0.05) as kube, KubeClient.for_host(kube.url) as client:
        _, rv = client.list_pods()
        with client.watch_pods(resource_version=rv, timeout_seconds=30) as stream:
            assert [next(stream)[0] for _ in range(3)] == ["BOOKMARK"] * 3


def test_expired_resource_version_is_an_error_event_inside_a_200(kube: KubeApiServer, client: KubeClient,
                                                                 core: kubernetes.client.CoreV1Api) -> None:
    _, rv = client.list_pods()
    pod = kube.add_pod(pod_fixture("kserve-transformer"))
    kube.delete_pod(pod["metadata"]["uid"])
    kube.compact()
    stream = client.watch_pods(resource_version=rv, timeout_seconds=5)  # the request itself succeeds
    with pytest.raises(KubeGone):
        next(stream)
    with pytest.raises(ApiException) as typed:  # the official client sees the same 410
        list(kubernetes.watch.Watch().stream(core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=5))
    assert typed.value.status == 410
    _, fresh = client.list_pods()
    assert list(client.watch_pods(resource_version=fresh, timeout_seconds=1)) == [], "a fresh version is fine"


def test_expired_resource_version_as_an_http_410() -> None:
    with KubeApiServer(gone_as_status=True) as kube, KubeClient.for_host(kube.url) as client:
        _, rv = client.list_pods()
        kube.add_pod(pod_fixture("kserve-transformer"))
        kube.compact()
        with pytest.raises(KubeGone):
            client.watch_pods(resource_version=rv, timeout_seconds=5)


def test_timeout_seconds_ends_the_watch_cleanly(client: KubeClient) -> None:
    _, rv = client.list_pods()
    assert list(client.watch_pods(resource_version=rv, timeout_seconds=1)) == []


def test_dropped_watch_is_a_broken_stream(kube: KubeApiServer, client: KubeClient) -> None:
    _, rv = client.list_pods()
    stream = client.watch_pods(resource_version=rv, timeout_seconds=30)
    kube.drop_watches()
    with pytest.raises(KubeUnavailable):
        next(stream)


def test_a_watch_silent_past_its_timeout_is_declared_dead(kube: KubeApiServer) -> None:
    # a NAT or proxy that silently dropped the connection: nothing arrives, not even the end
    with KubeClient.for_host(kube.url, watch_read_margin=0.3) as client:
        _, rv = client.list_pods()
        stream = client.watch_pods(resource_version=rv, timeout_seconds=1)
        kube.stall_watches(30)
        with pytest.raises(KubeUnavailable):
            next(stream)
    kube.stall_watches(0)
    wait_until(lambda: kube.open_watches == 0)


def test_slow_answers_hit_the_read_timeout(kube: KubeApiServer) -> None:
    kube.set_delay(0.5, path="/api/v1/pods")
    with KubeClient.for_host(kube.url, request_timeout=0.1) as client, pytest.raises(KubeUnavailable):
        client.list_pods()
    kube.set_delay(0, path="/api/v1/pods")
    with KubeClient.for_host(kube.url, request_timeout=0.1) as client:
        assert client.list_pods()[0] == []


def test_stalled_watch_catches_up_afterwards(kube: KubeApiServer, client: KubeClient) -> None:
    _, rv = client.list_pods()
    with client.watch_pods(resource_version=rv, timeout_seconds=30) as stream:
        kube.stall_watches(0.3)
        first = kube.add_pod(pod_fixture("kserve-transformer"))
        second = kube.add_pod(pod_fixture("merlin-model"))
        got = [next(stream)[1]["metadata"]["uid"] for _ in range(2)]
    assert got == [first["metadata"]["uid"], second["metadata"]["uid"]]


def test_closing_a_stream_from_another_thread_ends_a_blocked_read(client: KubeClient) -> None:
    _, rv = client.list_pods()
    stream = client.watch_pods(resource_version=rv, timeout_seconds=300)
    timer = threading.Timer(0.2, stream.close)
    timer.start()
    assert list(stream) == []
    timer.join()
    assert stream.aborted


# -- logs --------------------------------------------------------------------------------------------
@pytest.fixture
def predictor(kube: KubeApiServer) -> dict[str, Any]:
    return kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))


def where(pod: dict[str, Any]) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]


def test_typed_log_read_with_kubelet_timestamps(kube: KubeApiServer, core: kubernetes.client.CoreV1Api,
                                                predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    kube.append_log(ns, name, "storage-initializer", "Copying contents of gs://kfserving-examples to local", T0 + 123_400_000)
    kube.append_log(ns, name, "storage-initializer", "Successfully copied gs://kfserving-examples to /mnt/models",
                    T0 + 2 * 10**9)
    text = core.read_namespaced_pod_log(name, ns, container="storage-initializer", timestamps=True)
    lines = text.splitlines()
    assert lines[0] == f"{kubelet_timestamp(T0 + 123_400_000)} Copying contents of gs://kfserving-examples to local"
    assert lines[0].startswith("2026-11-24T09:12:01.123400000Z ")
    assert all(NINE_DIGIT_LINE.match(line.encode()) for line in lines)
    plain = core.read_namespaced_pod_log(name, ns, container="storage-initializer")
    assert plain.splitlines()[1] == "Successfully copied gs://kfserving-examples to /mnt/models"


def test_since_time_has_whole_second_precision(kube: KubeApiServer, client: KubeClient,
                                               predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    for offset_ms, text in ((999, "before"), (1000, "at"), (1999, "same second"), (2500, "after")):
        kube.append_log(ns, name, "kserve-container", text, T0 + offset_ms * 10**6)
    since = kubelet_timestamp(T0 + 1_999_000_000)  # a fraction is cut to the second, as metav1.Time does
    stream = client.stream_pod_log(ns, name, container="kserve-container", follow=False, timestamps=False,
                                   since_time=since, previous=False, request_timeout=10)
    assert list(split_complete_lines(iter(stream))) == [b"at", b"same second", b"after"]
    assert parse_since_time("2026-11-24T09:12:02.999Z") == T0 + 10**9


def test_follow_streams_appended_lines_until_the_container_terminates(kube: KubeApiServer, client: KubeClient,
                                                                      predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    kube.append_log(ns, name, "kserve-container", "Registering model: sklearn-iris", T0)
    stream = client.stream_pod_log(ns, name, container="kserve-container", follow=True, timestamps=True,
                                   since_time=None, previous=False, request_timeout=10)
    first = next(stream)
    assert first.endswith(b" Registering model: sklearn-iris\n")
    kube.append_log(ns, name, "kserve-container", "Uvicorn running on http://0.0.0.0:8080", T0 + 10**9)
    kube.terminate_container(ns, name, "kserve-container", exit_code=137, reason="OOMKilled")
    rest = b"".join(stream)
    assert rest.endswith(b" Uvicorn running on http://0.0.0.0:8080\n")
    status = client.get_pod(ns, name)["status"]["containerStatuses"]
    assert next(cs for cs in status if cs["name"] == "kserve-container")["state"]["terminated"]["exitCode"] == 137


def test_previous_reaches_the_last_terminated_instance(kube: KubeApiServer, core: kubernetes.client.CoreV1Api,
                                                       client: KubeClient, predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    with pytest.raises(ApiException) as none_yet:  # the agent never restarted
        core.read_namespaced_pod_log(name, ns, container="agent", previous=True)
    assert none_yet.value.status == 400 and "previous terminated container" in none_yet.value.body
    kube.append_log(ns, name, "kserve-container", "Killed", T0)
    follow = client.stream_pod_log(ns, name, container="kserve-container", follow=True, timestamps=False,
                                   since_time=None, previous=False, request_timeout=10)
    kube.restart_container(ns, name, "kserve-container", exit_code=137, reason="OOMKilled")
    assert b"".join(follow) == b"Killed\n", "the old instance's follow ends at the restart"
    kube.append_log(ns, name, "kserve-container", "Starting again", T0 + 10**9)
    assert core.read_namespaced_pod_log(name, ns, container="kserve-container", previous=True) == "Killed\n"
    assert core.read_namespaced_pod_log(name, ns, container="kserve-container") == "Starting again\n"
    cs = next(c for c in client.get_pod(ns, name)["status"]["containerStatuses"] if c["name"] == "kserve-container")
    before = next(c for c in predictor["status"]["containerStatuses"] if c["name"] == "kserve-container")
    assert cs["restartCount"] == before["restartCount"] + 1 and cs["lastState"]["terminated"]["exitCode"] == 137
    assert "running" in cs["state"]


def test_log_options_limit_bytes_and_tail_lines(kube: KubeApiServer, client: KubeClient,
                                                predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    for i in range(5):
        kube.append_log(ns, name, "agent", f"line {i}", T0 + i)

    def read(**options: Any) -> bytes:
        return b"".join(client.stream_pod_log(ns, name, container="agent", follow=False, timestamps=False,
                                              since_time=None, previous=False, request_timeout=10, **options))

    assert read(tail_lines=2) == b"line 3\nline 4\n"
    assert read(limit_bytes=10) == b"line 0\nlin", "limitBytes may end mid-line"


def test_log_requests_the_api_server_refuses(kube: KubeApiServer, core: kubernetes.client.CoreV1Api,
                                             client: KubeClient, predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    with pytest.raises(ApiException) as ambiguous:
        core.read_namespaced_pod_log(name, ns)
    assert ambiguous.value.status == 400 and "a container name must be specified" in ambiguous.value.body
    with pytest.raises(KubeRejected) as unknown:
        client.stream_pod_log(ns, name, container="sidecar", follow=False, timestamps=False, since_time=None,
                              previous=False, request_timeout=10)
    assert unknown.value.status == 400
    with pytest.raises(KubeRejected) as gone:
        client.stream_pod_log(ns, "deleted-pod", container="x", follow=False, timestamps=False, since_time=None,
                              previous=False, request_timeout=10)
    assert gone.value.status == 404


def test_dropped_log_stream_is_a_broken_stream(kube: KubeApiServer, client: KubeClient,
                                               predictor: dict[str, Any]) -> None:
    ns, name = where(predictor)
    kube.append_log(ns, name, "kserve-container", "one", T0)
    stream = client.stream_pod_log(ns, name, container="kserve-container", follow=True, timestamps=False,
                                   since_time=None, previous=False, request_timeout=10)
    assert next(stream) == b"one\n"
    kube.drop_log_streams()
    with pytest.raises(KubeUnavailable):
        next(stream)


# -- faults and events -------------------------------------------------------------------------------
def test_injected_failures_translate_to_servelog_errors(kube: KubeApiServer, client: KubeClient,
                                                        core: kubernetes.client.CoreV1Api) -> None:
    kube.fail_next(429, retry_after=3)
    with pytest.raises(KubeThrottled) as throttled:
        client.list_pods()
    assert throttled.value.retry_after == 3.0
    assert isinstance(throttled.value.__cause__, ApiException), "the library error is chained"
    kube.fail_next(500)
    with pytest.raises(KubeUnavailable):
        client.list_pods()
    kube.fail_next(403, path="/log")
    client.list_pods()  # not a log request: unaffected
    with pytest.raises(KubeRejected) as forbidden:
        client.stream_pod_log("kserve-test", "x", container="c", follow=False, timestamps=False, since_time=None,
                              previous=False, request_timeout=10)
    assert forbidden.value.status == 403
    # the official client, left at its defaults, sleeps out Retry-After by itself and tries again
    kube.fail_next(429, retry_after=1)
    before = len(kube.requests)
    assert core.list_pod_for_all_namespaces().items == []
    assert len(kube.requests) == before + 2


def test_unreachable_server_is_unavailable() -> None:
    with KubeApiServer() as kube:
        url = kube.url
    with KubeClient.for_host(url) as client, pytest.raises(KubeUnavailable) as caught:
        client.list_pods()
    assert caught.value.__cause__ is not None


def test_events_with_null_timestamps_list_and_watch(kube: KubeApiServer, client: KubeClient) -> None:
    _, rv = client.list_events()
    event = {"metadata": {"name": "sklearn-iris-predictor.18a1", "namespace": "kserve-test"},
             "involvedObject": {"kind": "Pod", "name": "sklearn-iris-predictor-00002-deployment-6d4c5f7b9-x2x9p",
                                "namespace": "kserve-test"},
             "reason": "OOMKilling", "message": "Memory cgroup out of memory", "type": "Warning",
             "eventTime": None, "firstTimestamp": None, "lastTimestamp": "2026-11-24T09:12:05Z", "count": 1,
             "source": {"component": "kubelet", "host": NODE}}
    kube.add_event(event)
    items, _ = client.list_events(namespace="kserve-test")
    assert [event_time(e) for e in items] == ["2026-11-24T09:12:05Z"]
    assert client.list_events(namespace="other")[0] == []
    watched = list(client.watch_events(resource_version=rv, field_selector="reason=OOMKilling", timeout_seconds=1))
    assert [(kind, obj["reason"]) for kind, obj in watched] == [("ADDED", "OOMKilling")]


def test_closing_the_server_cuts_streams_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    kube = KubeApiServer().start()
    client = KubeClient.for_host(kube.url)
    pod = kube.add_pod(pod_fixture("kserve-transformer"))
    _, rv = client.list_pods()
    watch = client.watch_pods(resource_version=rv, timeout_seconds=300)
    follow = client.stream_pod_log(*where(pod), container="kserve-container", follow=True, timestamps=False,
                                   since_time=None, previous=False, request_timeout=60)
    kube.close()
    with pytest.raises(KubeUnavailable):
        next(watch)
    with pytest.raises(KubeUnavailable):
        next(follow)
    client.close()
    assert set(threading.enumerate()) <= before
