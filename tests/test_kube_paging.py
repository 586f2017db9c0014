"""Paged lists (``limit`` + ``continue``) against the loopback API server, with the real ``kubernetes`` client.

The server pages as the API server does (:mod:`tests.support.kube_lists`): one snapshot per list,
pages that may hold fewer objects than the limit, ``410 Expired`` for a continue token etcd compacted
away, ``resourceVersion=0`` answered whole from the watch cache. servelog's side: the client's
``*_page`` reads, ``list_all``, and the shared list-then-watch loop
(:class:`collector.kube.reflector.ListWatch`) under the pod cache and the history feeds, which hand
objects on a page at a time and list again when a continue token expires.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from collector.errors import KubeGone, KubeUnavailable
from collector.kube.client import KubeClient
from collector.kube.pods import PodWatchCache
from collector.kube.reflector import MAX_LIST_RESTARTS, ListWatch, Objects, list_all
from tests.support.kube_server import KubeApiServer, pod_fixture

NODE = "gpu-node-1"


def a_pod(i: int, node: str = NODE, **labels: str) -> dict[str, Any]:
    pod = pod_fixture("kserve-transformer", node=node)
    pod["metadata"].update(name=f"pod-{i:03d}", uid=f"00000000-0000-4000-8000-{i:012d}")
    pod["metadata"]["labels"].update(labels)
    return pod


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=3600) as server:
        yield server


@pytest.fixture
def client(kube: KubeApiServer) -> Iterator[KubeClient]:
    with KubeClient.for_host(kube.url) as c:
        yield c


@pytest.fixture
def core(kube: KubeApiServer) -> Iterator[kubernetes.client.CoreV1Api]:
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=kube.url))
    yield kubernetes.client.CoreV1Api(api)
    api.close()


def list_queries(kube: KubeApiServer) -> list[dict[str, str]]:
    found = []
    for line in kube.requests:
        parts = urlsplit(line.split(" ", 1)[1])
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if "watch" not in query and not parts.path.endswith("/log"):
            found.append(query)
    return found


# -- the loopback server pages like the API server ---------------------------------------------------
def test_pages_are_one_snapshot_and_only_the_continue_token_says_more_follows(kube: KubeApiServer,
                                                                             core: kubernetes.client.CoreV1Api) -> None:
    for i in range(7):
        kube.add_pod(a_pod(i, tier="gpu" if i == 0 else "cpu"))
    first = core.list_pod_for_all_namespaces(limit=3)
    assert [p.metadata.name for p in first.items] == ["pod-000", "pod-001", "pod-002"] and first.metadata._continue
    kube.add_pod(a_pod(3_000, tier="gpu"))  # after the first page: not part of this list
    kube.delete_pod("00000000-0000-4000-8000-000000000004")
    names, token, versions = [p.metadata.name for p in first.items], first.metadata._continue, set()
    while token:
        page = core.list_pod_for_all_namespaces(limit=3, _continue=token)
        names += [p.metadata.name for p in page.items]
        versions.add(page.metadata.resource_version)
        token = page.metadata._continue
    assert names == [f"pod-{i:03d}" for i in range(7)], "a consistent snapshot: the deletion and the new pod come later"
    assert versions == {first.metadata.resource_version}
    selected = core.list_pod_for_all_namespaces(limit=3, label_selector="tier=gpu")
    assert [p.metadata.name for p in selected.items] == ["pod-000"] and selected.metadata._continue
    middle = core.list_pod_for_all_namespaces(limit=3, label_selector="tier=gpu", _continue=selected.metadata._continue)
    assert middle.items == [] and middle.metadata._continue, "an empty page that is not the end"
    last = core.list_pod_for_all_namespaces(limit=3, label_selector="tier=gpu", _continue=middle.metadata._continue)
    assert [p.metadata.name for p in last.items] == ["pod-3000"] and not last.metadata._continue


def test_an_expired_continue_token_is_410_with_a_token_for_an_inconsistent_remainder(
        kube: KubeApiServer, core: kubernetes.client.CoreV1Api) -> None:
    for i in range(5):
        kube.add_pod(a_pod(i))
    first = core.list_pod_for_all_namespaces(limit=2)
    kube.touch()
    kube.compact()  # etcd compacted past the list's snapshot
    with pytest.raises(ApiException) as caught:
        core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    assert caught.value.status == 410
    status = json.loads(caught.value.body)
    assert status["reason"] == "Expired" and "too old to display a consistent list" in status["message"]
    rest = core.list_pod_for_all_namespaces(limit=10, _continue=status["metadata"]["continue"])
    assert [p.metadata.name for p in rest.items] == ["pod-002", "pod-003", "pod-004"]
    for bad_request in ({"_continue": "not-a-token"}, {"_continue": rest.metadata._continue or "x", "resource_version": "7"}):
        with pytest.raises(ApiException) as bad:
            core.list_pod_for_all_namespaces(limit=2, **bad_request)
        assert bad.value.status == 400


def test_resource_version_0_is_answered_whole_from_the_watch_cache(core: kubernetes.client.CoreV1Api,
                                                                  kube: KubeApiServer) -> None:
    for i in range(4):
        kube.add_pod(a_pod(i))
    cached = core.list_pod_for_all_namespaces(limit=2, resource_version="0")
    assert len(cached.items) == 4 and not cached.metadata._continue, "the watch cache ignores limit"
    with KubeApiServer(watch_cache=False) as etcd_only:
        for i in range(4):
            etcd_only.add_pod(a_pod(i))
        api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=etcd_only.url))
        try:
            paged = kubernetes.client.CoreV1Api(api).list_pod_for_all_namespaces(limit=2, resource_version="0")
        finally:
            api.close()
        assert len(paged.items) == 2 and paged.metadata._continue


# -- the client ----------------------------------------------------------------------------------------
def test_the_client_reads_a_page_at_a_time_and_list_all_starts_again_when_the_token_expires(
        kube: KubeApiServer, client: KubeClient) -> None:
    for i in range(5):
        kube.add_pod(a_pod(i))
    page = client.list_pods_page(limit=2)
    assert len(page.items) == 2 and page.continue_token and page.resource_version == str(kube.resource_version)
    kube.expire_lists()
    with pytest.raises(KubeGone):
        client.list_pods_page(limit=2, continue_token=page.continue_token)
    expired_once = [False]

    def pages(token: str) -> Any:
        if token and not expired_once[0]:
            expired_once[0] = True
            kube.expire_lists()
        return client.list_pods_page(limit=2, continue_token=token)

    items, version = list_all(pages)
    assert sorted(p["metadata"]["name"] for p in items) == [f"pod-{i:03d}" for i in range(5)]
    assert version == str(kube.resource_version)
    assert client.list_pods()[0] == client.list_pods_page(limit=100).items


def test_every_list_the_history_reads_is_paged(kube: KubeApiServer, client: KubeClient) -> None:
    for i in range(3):
        kube.add_event({"metadata": {"name": f"e{i}", "namespace": "kserve-test"}, "reason": "Started",
                        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "kserve-test"},
                        "firstTimestamp": "2026-11-24T09:00:00Z", "lastTimestamp": "2026-11-24T09:00:00Z"})
        kube.add_isvc({"metadata": {"name": f"isvc-{i}", "namespace": "kserve-test"}, "status": {}})
    for api in ("core", "events.k8s.io"):
        page = client.list_events_page(api=api, limit=2)
        assert len(page.items) == 2 and page.continue_token
        assert len(client.list_events_page(api=api, limit=2, continue_token=page.continue_token).items) == 1
        assert len(client.list_events(api=api)[0]) == 3
    page = client.list_inferenceservices_page(limit=2)
    assert len(page.items) == 2 and len(client.list_inferenceservices_page(continue_token=page.continue_token).items) == 1


# -- the shared loop -----------------------------------------------------------------------------------
class Recorder:
    """A ListWatchHandler that remembers what it was handed."""

    def __init__(self, on_page: Any = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.pages: list[int] = []
        self.on_page = on_page

    def list_started(self) -> None:
        self.calls.append(("started", None))

    def listed_page(self, items: Objects) -> None:
        self.pages.append(len(items))
        self.calls.append(("page", [i["metadata"]["name"] for i in items]))
        if self.on_page is not None:
            self.on_page(len(self.pages))

    def list_done(self, resource_version: str) -> None:
        self.calls.append(("done", resource_version))

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        self.calls.append((kind, obj["metadata"].get("name")))


def loop(client: KubeClient, handler: Recorder, statuses: Counter[str], limit: int = 2) -> ListWatch:
    return ListWatch("pods", list_page=lambda token: client.list_pods_page(limit=limit, continue_token=token),
                     watch=lambda rv: client.watch_pods(resource_version=rv, timeout_seconds=1), handler=handler,
                     on_status=lambda status: statuses.update([status]), backoff_initial=0.01, backoff_max=0.02)


def test_the_loop_hands_objects_on_a_page_at_a_time(kube: KubeApiServer, client: KubeClient) -> None:
    for i in range(7):
        kube.add_pod(a_pod(i))
    handler, statuses = Recorder(), Counter[str]()
    assert loop(client, handler, statuses, limit=3).relist()
    assert handler.pages == [3, 3, 1], "memory holds a page of the cluster, never all of it"
    assert handler.calls[0] == ("started", None) and handler.calls[-1] == ("done", str(kube.resource_version))
    assert statuses == Counter(LIST=1)


def test_an_expired_continue_token_lists_again_from_the_start(kube: KubeApiServer, client: KubeClient) -> None:
    for i in range(5):
        kube.add_pod(a_pod(i))

    def compact_once(page: int) -> None:  # the list was slow: etcd compacted past its snapshot meanwhile
        if page == 1:
            kube.delete_pod("00000000-0000-4000-8000-000000000004")
            kube.compact()

    handler, statuses = Recorder(compact_once), Counter[str]()
    watch = loop(client, handler, statuses)
    watch.run(iterations=1)  # the list (expired, started again) and a watch that ends at its 1 s timeout
    started = [i for i, (what, _) in enumerate(handler.calls) if what == "started"]
    assert len(started) == 2 and statuses["LIST_EXPIRED"] == 1 and statuses["LIST"] == 1
    again = [name for what, names in handler.calls[started[1]:] if what == "page" for name in names]
    assert again == [f"pod-{i:03d}" for i in range(4)], "the second list is whole and current"
    assert [what for what, _ in handler.calls].count("done") == 1 and watch.synced()


def test_a_list_that_keeps_expiring_is_a_failure_with_backoff_not_an_endless_relist(kube: KubeApiServer,
                                                                                     client: KubeClient) -> None:
    for i in range(5):
        kube.add_pod(a_pod(i))
    handler, statuses = Recorder(lambda _page: kube.expire_lists()), Counter[str]()
    watch = loop(client, handler, statuses)
    with pytest.raises(KubeUnavailable, match="expired"):
        watch.relist()
    assert statuses["LIST_EXPIRED"] == MAX_LIST_RESTARTS and not watch.synced()
    watch.run(iterations=1)
    assert statuses["FAILURE"] == 1, "counted as a failure: the loop backs off before the next list"


def test_a_410_on_a_first_page_is_a_failure_not_a_relist_loop(kube: KubeApiServer, client: KubeClient) -> None:
    kube.fail_next(410, count=1, path=lambda p: "watch=" not in p)
    handler, statuses = Recorder(), Counter[str]()
    watch = loop(client, handler, statuses)
    watch.run(iterations=2)
    assert statuses["FAILURE"] == 1 and statuses["LIST"] == 1 and statuses["LIST_EXPIRED"] == 0


# -- the pod cache on the loop ---------------------------------------------------------------------------
def test_a_cluster_wide_pod_cache_lists_in_pages_and_reconciles_across_them(kube: KubeApiServer,
                                                                           client: KubeClient) -> None:
    for i in range(5):
        kube.add_pod(a_pod(i, node=f"node-{i}"))
    seen: list[tuple[str, str]] = []
    cache = PodWatchCache(client, node_name="", page_size=2, on_pod=lambda kind, pod: seen.append(
        (kind, pod["metadata"]["name"])))
    cache.relist()
    assert len(cache.pods()) == 5 and [k for k, _ in seen] == ["LISTED"] * 5
    kube.delete_pod("00000000-0000-4000-8000-000000000001")  # while the cache does not watch
    kube.add_pod(a_pod(9))
    seen.clear()
    cache.relist()
    gone = cache.lookup("00000000-0000-4000-8000-000000000001")
    assert gone is not None and gone.deleted, "missing from every page of the relist: marked deleted"
    assert ("DELETED", "pod-001") in seen and ("LISTED", "pod-009") in seen
    queries = list_queries(kube)
    assert queries and all(q.get("limit") == "2" and "resourceVersion" not in q for q in queries), \
        "a consistent, paged list"


def test_the_node_s_pod_cache_lists_from_the_watch_cache(kube: KubeApiServer, client: KubeClient) -> None:
    for i in range(3):
        kube.add_pod(a_pod(i))
    cache = PodWatchCache(client, node_name=NODE, page_size=2)
    cache.relist()
    assert len(cache.pods()) == 3
    (query,) = list_queries(kube)
    assert query["resourceVersion"] == "0" and query["fieldSelector"] == f"spec.nodeName={NODE}"


def test_a_node_s_pod_cache_pages_too_where_the_api_server_has_no_watch_cache() -> None:
    with KubeApiServer(watch_cache=False) as kube, KubeClient.for_host(kube.url) as etcd_client:
        for i in range(5):
            kube.add_pod(a_pod(i))
        cache = PodWatchCache(etcd_client, node_name=NODE, page_size=2)
        cache.relist()
        assert len(cache.pods()) == 5
        queries = list_queries(kube)
        assert len(queries) == 3 and queries[0]["resourceVersion"] == "0"
        assert all("resourceVersion" not in q and q["continue"] for q in queries[1:]), "the token carries the version"
