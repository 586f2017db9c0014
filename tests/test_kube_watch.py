"""The node's pod watch cache against the loopback API server: sync, changes, deletion TTL, 410 relists,
dropped connections, exclusions, bounded waits, and never an API call per lookup."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.errors import ConfigError
from collector.kube.client import KubeClient
from collector.kube.pods import PodWatchCache
from collector.kube.reflector import jittered
from collector.settings import load_settings
from tests.support.kube_server import KubeApiServer, pod_fixture
from tests.support.wait import wait_until

NODE = "gpu-node-1"


class FakeClock:
    """Drives the deleted-pod TTL only."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=3600) as server:
        yield server


@pytest.fixture
def client(kube: KubeApiServer) -> Iterator[KubeClient]:
    with KubeClient.for_host(kube.url) as c:
        yield c


class Harness:
    """A cache wired to the server, with its events counted; stopped at teardown."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.events: Counter[str] = Counter()
        self.clock = FakeClock()
        self.caches: list[PodWatchCache] = []

    def cache(self, **options: Any) -> PodWatchCache:
        options = {"node_name": NODE, "deleted_ttl": 300.0, "clock": self.clock, "watch_timeout": 60,
                   "backoff_initial": 0.01, "backoff_max": 0.05, "on_event": self.count, **options}
        cache = PodWatchCache(self.client, **options)
        self.caches.append(cache)
        return cache

    def count(self, kind: str) -> None:
        self.events[kind] += 1

    def started(self, **options: Any) -> PodWatchCache:
        cache = self.cache(**options).start()
        wait_until(cache.synced, timeout=10)
        return cache


@pytest.fixture
def harness(client: KubeClient) -> Iterator[Harness]:
    h = Harness(client)
    yield h
    for cache in h.caches:
        cache.stop()
        assert cache.thread is None or not cache.thread.is_alive(), "stop() ends the watch thread"


def uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"])


# -- sync and changes --------------------------------------------------------------------------------
def test_initial_list_syncs_the_pods_of_this_node_only(kube: KubeApiServer, harness: Harness) -> None:
    here = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    elsewhere = kube.add_pod(pod_fixture("kserve-transformer", node="other-node"))
    cache = harness.cache()
    assert not cache.synced()
    cache.relist()
    assert cache.synced()
    found = cache.lookup(uid(here))
    assert found is not None and not found.deleted
    assert found.fields["model_version"] == "2" and found.init_containers == ("storage-initializer",)
    assert cache.lookup(uid(elsewhere)) is None
    assert harness.events["LIST"] == 1


def test_added_modified_deleted_flow_through_the_watch(kube: KubeApiServer, harness: Harness) -> None:
    cache = harness.started()
    pod = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    assert cache.wait_for(uid(pod), timeout=10) is not None
    pod["metadata"]["annotations"]["serving.kserve.io/model-version"] = "2026.11"
    kube.update_pod(pod)
    wait_until(lambda: (m := cache.lookup(uid(pod))) is not None and m.fields.get("model_version") == "2026.11")
    kube.delete_pod(uid(pod))
    wait_until(lambda: (m := cache.lookup(uid(pod))) is not None and m.deleted)
    assert cache.pods() == [], "deleted pods are not offered to the API source"
    assert harness.events["ADDED"] == harness.events["MODIFIED"] == harness.events["DELETED"] == 1


def test_deleted_pod_is_kept_for_the_ttl_then_forgotten(kube: KubeApiServer, harness: Harness) -> None:
    pod = kube.add_pod(pod_fixture("hopsworks-predictor", node=NODE))
    cache = harness.started()
    kube.delete_pod(uid(pod))
    wait_until(lambda: (m := cache.lookup(uid(pod))) is not None and m.deleted)
    harness.clock.now += 299
    cache.expire()
    kept = cache.lookup(uid(pod))
    assert kept is not None and kept.fields["model_name"] == "fraud_model"
    harness.clock.now += 1
    assert cache.lookup(uid(pod)) is None, "gone at the TTL even before the next sweep"
    cache.expire()
    assert len(cache) == 0


def test_storage_initializer_of_a_pod_deleted_right_away_is_still_enriched(kube: KubeApiServer,
                                                                          harness: Harness) -> None:
    cache = harness.started()
    # the pod comes and goes (storage-initializer failed, pod deleted a second later) before the
    # collector opens its storage-initializer log file
    pod = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    kube.delete_pod(uid(pod))
    wait_until(lambda: harness.events["DELETED"] == 1)
    found = cache.wait_for(uid(pod), timeout=5)
    assert found is not None and found.deleted
    assert "storage-initializer" in found.init_containers
    assert (found.fields["serving_name"], found.fields["component"]) == ("sklearn-iris", "predictor")


def test_wait_for_returns_when_the_pod_appears_and_is_bounded_otherwise(kube: KubeApiServer,
                                                                       harness: Harness) -> None:
    cache = harness.started()
    pod = pod_fixture("merlin-model", node=NODE)
    timer = threading.Timer(0.2, kube.add_pod, args=(pod,))
    timer.start()
    try:
        found = cache.wait_for(uid(pod), timeout=10)
    finally:
        timer.join()
    assert found is not None and found.fields["model_version"] == "3"
    assert cache.wait_for("00000000-0000-4000-8000-000000000000", timeout=0.1) is None


# -- failures ----------------------------------------------------------------------------------------
def test_410_relists_and_reconciles_what_changed_meanwhile(kube: KubeApiServer, harness: Harness) -> None:
    kept = kube.add_pod(pod_fixture("kserve-transformer", node=NODE))
    gone = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    cache = harness.cache(watch_timeout=1)
    cache.relist()
    # while the cache is not watching: one pod deleted, one added, and the history compacted away
    kube.delete_pod(uid(gone))
    new = kube.add_pod(pod_fixture("merlin-model", node=NODE))
    kube.compact()
    cache.run(iterations=2)  # watch -> ERROR 410 -> relist + watch (ends at its 1 s timeout)
    assert harness.events["GONE"] == 1 and harness.events["RELIST"] == 1
    deleted = cache.lookup(uid(gone))
    assert deleted is not None and deleted.deleted, "missing from the relist: marked deleted, kept for the TTL"
    added = cache.lookup(uid(new))
    assert added is not None and not added.deleted
    still = cache.lookup(uid(kept))
    assert still is not None and not still.deleted
    assert cache.resource_version == str(kube.resource_version)


def test_410_as_http_status_also_relists(harness: Harness) -> None:
    with KubeApiServer(gone_as_status=True) as kube, KubeClient.for_host(kube.url) as client:
        cache = PodWatchCache(client, node_name=NODE, watch_timeout=1, on_event=harness.count)
        cache.relist()
        pod = kube.add_pod(pod_fixture("kserve-transformer", node=NODE))
        kube.compact()
        cache.run(iterations=2)
        assert harness.events["GONE"] == 1
        assert cache.lookup(uid(pod)) is not None


def test_relist_does_not_restart_the_ttl_of_a_pod_already_deleted(kube: KubeApiServer, harness: Harness) -> None:
    pod = kube.add_pod(pod_fixture("kserve-transformer", node=NODE))
    cache = harness.cache(watch_timeout=1)
    cache.relist()
    kube.delete_pod(uid(pod))
    cache.run(iterations=1)  # the watch delivers DELETED
    harness.clock.now += 200
    cache.relist()  # still absent
    harness.clock.now += 100
    assert cache.lookup(uid(pod)) is None, "300 s after the deletion, not after the relist"


def test_dropped_connection_resumes_from_the_last_version_without_relisting(kube: KubeApiServer,
                                                                           harness: Harness) -> None:
    cache = harness.started()
    watches_before = sum("watch=true" in r for r in kube.requests)
    kube.drop_watches()
    pod = kube.add_pod(pod_fixture("kserve-raw-deployment", node=NODE))
    assert cache.wait_for(uid(pod), timeout=10) is not None
    assert harness.events["FAILURE"] >= 1
    assert harness.events["LIST"] == 1 and harness.events["RELIST"] == 0
    assert sum("watch=true" in r for r in kube.requests) > watches_before


def test_bookmarks_keep_a_quiet_nodes_version_fresh_across_compaction(kube: KubeApiServer,
                                                                      harness: Harness) -> None:
    cache = harness.started()
    for i in range(3):  # activity elsewhere moves the store's version
        other = pod_fixture("kserve-transformer", node="other-node")
        other["metadata"]["name"] += f"-{i}"
        other["metadata"]["uid"] = f"00000000-0000-4000-8000-00000000000{i}"
        kube.add_pod(other)
    kube.send_bookmark()
    wait_until(lambda: cache.resource_version == str(kube.resource_version))
    kube.compact()
    kube.drop_watches()
    pod = kube.add_pod(pod_fixture("merlin-model", node=NODE))
    assert cache.wait_for(uid(pod), timeout=10) is not None
    assert harness.events["GONE"] == 0, "resumed from the bookmarked version: no 410, no relist"


def test_api_errors_back_off_and_recover(kube: KubeApiServer, harness: Harness) -> None:
    kube.fail_next(503, count=2, path=lambda p: "watch=" not in p)  # the initial list fails twice
    kube.fail_next(500, count=2, path="watch=true")
    cache = harness.cache().start()
    wait_until(cache.synced, timeout=10)
    pod = kube.add_pod(pod_fixture("kserve-transformer", node=NODE))
    assert cache.wait_for(uid(pod), timeout=10) is not None
    assert harness.events["FAILURE"] == 4 and harness.events["LIST"] == 1


def test_forbidden_is_retried_not_fatal(kube: KubeApiServer, harness: Harness) -> None:
    kube.fail_next(403, count=3)  # RBAC not yet applied when the DaemonSet starts
    cache = harness.cache().start()
    wait_until(cache.synced, timeout=10)
    assert harness.events["FAILURE"] == 3


def test_backoff_honours_retry_after_within_the_bound() -> None:
    for _ in range(100):
        assert 0.5 <= jittered(1.0, None, 30.0) <= 1.0
        assert jittered(1.0, 7.0, 30.0) == 7.0
        assert jittered(1.0, 300.0, 30.0) == 30.0
        assert jittered(60.0, None, 30.0) == 30.0


# -- scope -------------------------------------------------------------------------------------------
def test_excluded_pods_and_the_collectors_own_pod_are_not_cached(kube: KubeApiServer, harness: Harness) -> None:
    opted_out = pod_fixture("kserve-transformer", node=NODE)
    opted_out["metadata"]["labels"]["servelog.io/exclude"] = "true"
    kube.add_pod(opted_out)
    own = pod_fixture("kserve-raw-deployment", node=NODE)
    own["metadata"]["name"] = "servelog-7xq2p"
    kube.add_pod(own)
    later = kube.add_pod(pod_fixture("merlin-model", node=NODE))
    cache = harness.started(own_pod="servelog-7xq2p")
    assert cache.lookup(uid(opted_out)) is None
    assert cache.lookup(uid(own)) is None
    assert cache.lookup(uid(later)) is not None
    later["metadata"]["labels"]["servelog.io/exclude"] = "true"  # opting out later forgets the pod
    kube.update_pod(later)
    wait_until(lambda: cache.lookup(uid(later)) is None)


def test_label_selector_scopes_the_watch_and_leaving_it_marks_the_pod_deleted(kube: KubeApiServer,
                                                                              harness: Harness) -> None:
    serving = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    plain = pod_fixture("kserve-transformer", node=NODE)
    plain["metadata"]["labels"] = {"app": "not-a-model"}
    plain = kube.add_pod(plain)
    cache = harness.started(label_selector="serving.kserve.io/inferenceservice")
    assert cache.lookup(uid(plain)) is None and cache.lookup(uid(serving)) is not None
    serving["metadata"]["labels"] = {"app": "debug-copy"}
    kube.update_pod(serving)
    wait_until(lambda: (m := cache.lookup(uid(serving))) is not None and m.deleted)


def test_custom_fields_reach_the_cached_metadata(kube: KubeApiServer, harness: Harness) -> None:
    pod = kube.add_pod(pod_fixture("merlin-model", node=NODE))
    cache = harness.started(custom_fields={"team": "label:gojek.com/team"})
    found = cache.lookup(uid(pod))
    assert found is not None and found.fields["team"] == "credit"


def test_lookups_never_call_the_api(kube: KubeApiServer, harness: Harness) -> None:
    pod = kube.add_pod(pod_fixture("kserve-serverless-predictor", node=NODE))
    cache = harness.started()
    requests = len(kube.requests)
    for _ in range(1000):
        assert cache.lookup(uid(pod)) is not None
        assert cache.lookup("11111111-1111-4111-8111-111111111111") is None
    assert len(kube.requests) == requests


def test_stop_aborts_a_long_watch(kube: KubeApiServer, harness: Harness) -> None:
    cache = harness.started(watch_timeout=3600)
    wait_until(lambda: kube.open_watches == 1)
    cache.stop()
    assert cache.thread is not None and not cache.thread.is_alive()
    wait_until(lambda: kube.open_watches == 0)


# -- wiring from settings ------------------------------------------------------------------------
def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
        "clusters": [{"name": "loopback", "cluster": {"server": server}}],
        "users": [{"name": "servelog", "user": {"token": "test-token"}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "servelog"}}],
    }))
    return path


def test_from_settings_watches_this_node_with_the_configured_rules(kube: KubeApiServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "servelog-abcde")
    own = pod_fixture("kserve-raw-deployment", node=NODE)
    own["metadata"]["name"] = "servelog-abcde"
    kube.add_pod(own)
    pod = kube.add_pod(pod_fixture("merlin-model", node=NODE))
    settings = load_settings(environ={}, overrides={
        "node_name": NODE,
        "kubernetes": {"kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", kube.url)),
                       "custom_fields": {"team": "label:gojek.com/team"}, "watch_timeout_seconds": 30}})
    seen: list[str] = []
    cache = PodWatchCache.from_settings(settings, on_event=seen.append).start()
    try:
        wait_until(cache.synced, timeout=10)
        found = cache.lookup(uid(pod))
        assert found is not None and found.fields["team"] == "credit"
        assert cache.lookup(uid(own)) is None, "the collector's own pod (POD_NAME) is left out"
        assert seen[0] == "LIST"
        assert any(f"fieldSelector=spec.nodeName%3D{NODE}" in r or f"fieldSelector=spec.nodeName={NODE}" in r
                   for r in kube.requests)
    finally:
        cache.stop()


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"kubernetes": {"kubeconfig": str(tmp_path / "absent")}})
    with pytest.raises(ConfigError):
        PodWatchCache.from_settings(settings)
