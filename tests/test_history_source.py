"""The history source in the app's pipeline, against the loopback API server and OpenSearch.

In process (the real App, Batcher, senders, OpenSearchSink and checkpoints; the real KubeClient):
a cluster without the KServe CRD, the CRD appearing later, a ClusterRole without InferenceServices,
both Event APIs giving the same documents, namespace filters, a repeat run that only meets 409s,
and the settings ``servelog events`` refuses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from collector.app import App
from collector.kube.client import KubeClient
from collector.settings import Settings, load_settings
from collector.sources.history.feeds import ClusterFeed, FilesFeed
from collector.sources.history.source import HistorySource
from tests.support.kube_objects import history_fixture, items
from tests.support.kube_server import KubeApiServer
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.wait import wait_until

FAST = {"opensearch": {"flush_interval_seconds": 0.05, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.2},
        "pipeline": {"checkpoint_interval_seconds": 0.1, "shutdown_timeout_seconds": 5},
        "kubernetes": {"watch_timeout_seconds": 10, "metadata_wait_seconds": 1}, "telemetry": {"listen": ""}}


def settings_for(tmp: Path, fos: FakeOpenSearch, **extra: Any) -> Settings:
    overrides: dict[str, Any] = json.loads(json.dumps(FAST))
    overrides.update({"state_dir": str(tmp / "state"), "opensearch": {**overrides["opensearch"], "url": fos.url}})
    for key, value in extra.items():
        overrides[key] = {**overrides.get(key, {}), **value} if isinstance(value, dict) else value
    return load_settings(overrides=overrides, environ={})


class Running:
    """An App with the history source, run in a thread until :meth:`stop`."""

    def __init__(self, settings: Settings, make_feed: Any) -> None:
        self.sources: list[HistorySource] = []

        def make_source(app: App) -> HistorySource:
            self.sources.append(HistorySource(settings=settings, batcher=app.batcher, metrics=app.metrics,
                                              index_template=settings.history.index, make_feed=make_feed))
            return self.sources[0]

        self.app = App(settings, make_source=make_source)
        self.thread = threading.Thread(target=self.app.run, name="history-app", daemon=True)

    @property
    def source(self) -> HistorySource:
        return self.sources[0]

    def start(self) -> Running:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.app.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=3600) as server:
        yield server


@pytest.fixture
def fos() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as server:
        yield server


def load_fixtures(kube: KubeApiServer, *, isvcs: bool = True) -> None:
    for name in ("pod-sklearn-iris-oomkilled", "pod-sklearn-iris-imagepull", "pod-llm-unschedulable"):
        kube.add_pod(history_fixture(name))
    for event in items("events-core"):
        kube.add_event(event)
    if isvcs:
        for name in ("isvc-sklearn-iris-image-not-found", "isvc-llm-unschedulable"):
            kube.add_isvc(history_fixture(name))


def kinds(fos: FakeOpenSearch) -> set[str]:
    return {d["event_kind"] for d in fos.all_sources("serving-events-*")}


def run_cluster(tmp: Path, kube: KubeApiServer, fos: FakeOpenSearch, **extra: Any) -> Running:
    settings = settings_for(tmp, fos, **extra)
    client = KubeClient.for_host(kube.url)
    return Running(settings, lambda source: ClusterFeed(source, client))


def test_once_indexes_what_the_api_has_and_a_second_run_only_meets_409s(tmp_path: Path, kube: KubeApiServer,
                                                                         fos: FakeOpenSearch) -> None:
    load_fixtures(kube)
    first = run_cluster(tmp_path, kube, fos, once=True).start()
    first.thread.join(30)
    summary = first.app.summary
    assert summary.indexed == fos.doc_count("serving-events-*") > 40 and summary.failed is None
    assert kinds(fos) == {"event", "termination", "waiting", "restart", "readiness", "pod_condition", "isvc_condition",
                          "model_status", "revision"}
    assert not any(d.get("namespace") == "kube-system" for d in fos.all_sources()), "coredns is no model deployment"
    checkpoints = json.loads((tmp_path / "state" / "checkpoints.json").read_text())["streams"]
    assert set(checkpoints) == {"history/events", "history/pods", "history/inferenceservices"}
    again = run_cluster(tmp_path, kube, fos, once=True).start()
    again.thread.join(30)
    assert again.app.summary.indexed == 0 and again.app.summary.already_present == summary.indexed


def test_both_event_apis_give_the_same_documents(tmp_path: Path, kube: KubeApiServer) -> None:
    load_fixtures(kube)
    found = {}
    for api in ("core", "events.k8s.io"):
        with FakeOpenSearch() as fos:
            run = run_cluster(tmp_path / api, kube, fos, once=True, history={"events_api": api}).start()
            run.thread.join(30)
            found[api] = fos.documents("serving-events-*")
    assert found["core"] == found["events.k8s.io"]
    assert any(api_path.startswith("GET /apis/events.k8s.io/v1/events") for api_path in kube.requests)
    assert any(api_path.startswith("GET /api/v1/events") for api_path in kube.requests)


def test_a_cluster_without_kserve_still_gets_events_and_lifecycle_and_the_crd_is_found_later(
        tmp_path: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> None:
    kube.install_kserve(False)
    load_fixtures(kube, isvcs=False)
    with structlog.testing.capture_logs() as logs:
        run = run_cluster(tmp_path, kube, fos, history={"crd_recheck_seconds": 0.2}).start()
        try:
            wait_until(lambda: {"event", "termination", "pod_condition"} <= kinds(fos), timeout=20)
            wait_until(run.source.synced, timeout=10)
            assert "isvc_condition" not in kinds(fos)
            kube.install_kserve(True)
            kube.add_isvc(history_fixture("isvc-llm-unschedulable"))
            wait_until(lambda: {"isvc_condition", "model_status", "revision"} <= kinds(fos), timeout=20)
        finally:
            run.stop()
    missing = [e for e in logs if e["event"] == "history_resource_not_installed"]
    assert len(missing) == 1, "said once, however often it was looked for"
    assert any(e["event"] == "history_resource_available" for e in logs)


def test_inferenceservices_the_clusterrole_does_not_grant_are_an_error_and_the_rest_goes_on(
        tmp_path: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> None:
    load_fixtures(kube)
    kube.fail_next(403, count=1000, path="inferenceservices")
    with structlog.testing.capture_logs() as logs:
        run = run_cluster(tmp_path, kube, fos, history={"crd_recheck_seconds": 0.2}).start()
        try:
            wait_until(lambda: {"event", "termination"} <= kinds(fos), timeout=20)
            wait_until(lambda: sum(e["event"] == "history_resource_forbidden" for e in logs) >= 2, timeout=10)
        finally:
            run.stop()
    assert all(e["log_level"] == "error" for e in logs if e["event"] == "history_resource_forbidden")
    assert "isvc_condition" not in kinds(fos)


def test_namespace_filters_apply_to_history_too(tmp_path: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> None:
    load_fixtures(kube)
    run = run_cluster(tmp_path, kube, fos, once=True, pipeline={**FAST["pipeline"], "exclude_namespaces": ["kserve-test"]})
    run.start().thread.join(30)
    assert fos.doc_count("serving-events-*") == 0
    assert run.source.history_metrics.skipped.labels("namespace")._value.get() > 40


def test_files_are_read_again_when_one_changes(tmp_path: Path, fos: FakeOpenSearch) -> None:
    directory = tmp_path / "history"
    directory.mkdir()
    (directory / "pods.json").write_text(json.dumps({"kind": "PodList", "items": [history_fixture("pod-llm-unschedulable")]}))
    settings = settings_for(tmp_path, fos, pipeline={**FAST["pipeline"], "scan_interval_seconds": 0.05})
    run = Running(settings, lambda source: FilesFeed(source, directory, interval=0.05)).start()
    try:
        wait_until(lambda: fos.doc_count("serving-events-*") == 1, timeout=20)
        (directory / "events.yaml").write_text(json.dumps(items("events-v1")[0]))  # JSON is YAML too
        wait_until(lambda: "event" in kinds(fos), timeout=20)
    finally:
        run.stop()
    assert fos.doc_count("serving-events-*") == 2


def servelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True, text=True, timeout=60,
                          check=False, env={"PATH": "/usr/bin:/bin"})


def test_invalid_history_settings_exit_2_and_a_broken_file_exits_1(tmp_path: Path) -> None:
    done = servelog("events", "--once", "--from-files", str(tmp_path / "nowhere"), "--output", "stdout")
    assert done.returncode == 2 and "history.from_files" in done.stderr
    (tmp_path / "bad.json").write_text("{not json")
    done = servelog("events", "--once", "--from-files", str(tmp_path), "--output", "stdout", "--state-dir",
                    str(tmp_path / "state"), "--listen", "")
    assert done.returncode == 1 and "bad.json" in done.stderr


def test_a_taken_port_or_an_unwritable_state_dir_exit_2_like_run(tmp_path: Path) -> None:
    import socket

    (tmp_path / "history").mkdir()
    (tmp_path / "file").write_text("not a directory")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = servelog("events", "--once", "--from-files", str(tmp_path / "history"), "--state-dir",
                        str(tmp_path / "file" / "state"), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert "telemetry.listen" in done.stderr and "state" in done.stderr
    assert "log_root" not in done.stderr, "the history reads no log files"


def test_the_history_lists_in_pages_and_a_list_that_expires_midway_is_read_again_without_duplicates(
        tmp_path: Path, kube: KubeApiServer) -> None:
    load_fixtures(kube)
    with FakeOpenSearch() as whole:
        run_cluster(tmp_path / "whole", kube, whole, once=True).start().thread.join(30)
        expected = whole.documents("serving-events-*")
    pages = kube.list_pages_served
    kube.expire_lists(after_pages=5)  # the pods (2 pages), the InferenceServices (1), then the events expire midway
    with FakeOpenSearch() as paged:
        settings = settings_for(tmp_path / "paged", paged, once=True)
        client = KubeClient.for_host(kube.url)
        run = Running(settings, lambda source: ClusterFeed(source, client, page_size=2)).start()
        run.thread.join(30)
        assert paged.documents("serving-events-*") == expected
        count = sum(len(docs) for docs in expected.values())
        assert run.app.summary.indexed == count > 40 and run.app.summary.already_present == 0
    metrics = run.source.history_metrics
    assert metrics.watch.labels("events", "LIST_EXPIRED")._value.get() == 1
    # 3 pods: 2 pages, 2 InferenceServices: 1, 12 events: 2 pages, then (expired) all 6 again
    assert kube.list_pages_served - pages == 11, "a page of two objects at a time"
    assert all("limit=2" in r for r in kube.requests[-8:] if "watch=" not in r)


def kubeconfig(tmp: Path, kube: KubeApiServer) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
        "clusters": [{"name": "loopback", "cluster": {"server": kube.url}}],
        "users": [{"name": "servelog", "user": {"token": "test-token"}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "servelog"}}]}))
    return path


def events_once(tmp: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SERVELOG_KUBERNETES__KUBECONFIG": str(kubeconfig(tmp, kube))}
    return subprocess.run([sys.executable, "-m", "collector", "events", "--once", "--opensearch-url", fos.url,
                           "--state-dir", str(tmp / "state"), "--listen", ""], capture_output=True, text=True,
                          timeout=60, check=False, env=env)


def test_once_fails_when_the_clusterrole_forbids_inferenceservices_and_not_when_kserve_is_absent(
        tmp_path: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> None:
    load_fixtures(kube)
    kube.fail_next(403, count=1000, path="inferenceservices")
    done = events_once(tmp_path / "forbidden", kube, fos)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "InferenceServices could not be read" in done.stdout and "403" in done.stdout
    assert fos.doc_count("serving-events-*") > 20, "what could be read is indexed all the same"
    kube.clear_failures()
    kube.install_kserve(False)
    done = events_once(tmp_path / "absent", kube, fos)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "history_resource_not_installed" in done.stdout


def test_events_is_ready_once_its_watches_listed_even_while_opensearch_is_down(tmp_path: Path,
                                                                              kube: KubeApiServer) -> None:
    """deploy/events-deployment.yaml's readinessProbe: an OpenSearch outage must not make the Deployment NotReady."""
    import socket
    import urllib.error
    import urllib.request

    load_fixtures(kube)
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    listen, nowhere = ports
    env = {"PATH": "/usr/bin:/bin", "SERVELOG_KUBERNETES__KUBECONFIG": str(kubeconfig(tmp_path, kube))}
    proc = subprocess.Popen([sys.executable, "-m", "collector", "events", "--opensearch-url", f"http://127.0.0.1:{nowhere}",
                             "--state-dir", str(tmp_path / "state"), "--listen", f"127.0.0.1:{listen}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{listen}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until(ready, timeout=30)
    finally:
        proc.kill()  # nothing to keep: OpenSearch never answered
        proc.wait(30)
