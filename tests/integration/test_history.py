"""``servelog events`` as a process against the loopback API server and OpenSearch: the history story, exactly once.

The oracle is :class:`tests.support.history_scenario.HistoryScenario`: every event occurrence,
termination, restart, waiting reason, readiness change, pod and InferenceService condition change,
model status and revision change the story makes happen is recorded from the document fields a
reader uses, and the indexed documents must match it one for one, with the right serving, model,
version and component. The faults are the ones that duplicate or lose history: a SIGKILL while
documents are read but not acknowledged (OpenSearch refusing bulks), changes made while no
collector runs, two collectors at once, a ``410 Gone`` relist of every watch, events whose count
(core/v1) or series (events.k8s.io/v1) grows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.cli import main
from tests.support.history_scenario import HistoryScenario
from tests.support.kube_server import KubeApiServer
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

NOT_FOUND = ('Failed to pull image "kserve/sklearnserver:v9.9.9": rpc error: code = NotFound desc = failed to pull and '
             'unpack image "docker.io/kserve/sklearnserver:v9.9.9": docker.io/kserve/sklearnserver:v9.9.9: not found')
NO_GPU = ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 3 No preemption "
          "victims found for incoming pod.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collectors:
    """``servelog events`` processes sharing one kubeconfig and OpenSearch, each with its state and port."""

    def __init__(self, tmp: Path, kube: KubeApiServer, fos: FakeOpenSearch) -> None:
        self.tmp = tmp
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
            "clusters": [{"name": "loopback", "cluster": {"server": kube.url}}],
            "users": [{"name": "servelog", "user": {"token": "test-token"}}],
            "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "servelog"}}],
        }))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        self.env.update({
            "SERVELOG_KUBERNETES__KUBECONFIG": str(kubeconfig), "SERVELOG_KUBERNETES__WATCH_TIMEOUT_SECONDS": "10",
            "SERVELOG_KUBERNETES__METADATA_WAIT_SECONDS": "2", "SERVELOG_OPENSEARCH__URL": fos.url,
            "SERVELOG_OPENSEARCH__FLUSH_INTERVAL_SECONDS": "0.1", "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05",
            "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.3", "SERVELOG_PIPELINE__CHECKPOINT_INTERVAL_SECONDS": "0.1",
            "SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS": "5", "SERVELOG_HISTORY__CRD_RECHECK_SECONDS": "1",
        })
        self.ports: dict[str, int] = {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        port = self.ports.setdefault(name, free_port())
        env = {**self.env, "SERVELOG_STATE_DIR": str(self.tmp / f"state-{name}"),
               "SERVELOG_TELEMETRY__LISTEN": f"127.0.0.1:{port}"}
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "collector", "events"], env=env, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def metric(self, name: str, metric: str, **labels: str) -> float:
        """The sum of a metric's samples (those with ``labels``) on a collector's /metrics; 0 while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for found in re.finditer(rf"^{metric}(?:{{(?P<labels>[^}}]*)}})? (?P<value>\S+)$", text, flags=re.MULTILINE):
            have = dict(re.findall(r'(\w+)="([^"]*)"', found["labels"] or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(found["value"])
        return total

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeApiServer, FakeOpenSearch, Collectors]]:
    with KubeApiServer(bookmark_interval=3600) as kube, FakeOpenSearch(validate_mappings=True) as fos:
        assert main(["setup", "--opensearch-url", fos.url]) == 0  # the events mapping validates every document
        collectors = Collectors(tmp_path, kube, fos)
        try:
            yield kube, fos, collectors
        finally:
            collectors.kill_all()
            kube.drop_streams()


def settle(story: HistoryScenario, fos: FakeOpenSearch, timeout: float = 30.0) -> None:
    """Wait until the index holds exactly what the story made happen so far (fail with the report)."""
    try:
        wait_until(lambda: story.compare(fos.all_sources("serving-events-*")).exactly_once, timeout=timeout)
    except AssertionError:
        expected = sorted(str(k) for k in story.expected if k[0] in ("model_status", "isvc_condition"))
        pytest.fail(str(story.compare(fos.all_sources("serving-events-*"))) + "\n" + "\n".join(expected))


def test_the_story_is_indexed_exactly_once_across_sigkill_a_410_relist_and_two_collectors(
        cluster: tuple[KubeApiServer, FakeOpenSearch, Collectors]) -> None:
    kube, fos, collectors = cluster
    story = HistoryScenario(kube)
    first = collectors.start("a")

    # -- A: version 1 of sklearn-iris rolls out (a probe fails thrice on the way) -------------------------
    iris = story.isvc("sklearn-iris")
    v1 = story.pod(iris, 1)
    settle(story, fos)
    story.event(v1, "Scheduled", f"Successfully assigned kserve-test/{v1.name} to node-1", api="v1",
                component="default-scheduler")
    story.event(("ReplicaSet", story.replicaset(v1), v1), "SuccessfulCreate", f"Created pod: {v1.name}",
                component="replicaset-controller")
    story.init_done(v1)
    story.start(v1)
    probe = story.event(v1, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        type_="Warning", container="kserve-container")
    story.repeat(probe)
    story.repeat(probe)
    story.ready(v1)
    story.pod_condition(v1, "ContainersReady", "True")
    story.pod_condition(v1, "Ready", "True")
    rev1 = "sklearn-iris-predictor-00001"
    story.isvc_update(iris, revision=("predictor", rev1, rev1, [(rev1, 100)]),
                      conditions=[("PredictorReady", "True", "", ""), ("Ready", "True", "", "")],
                      model=("UpToDate", "Loaded", "Loaded", None))
    story.event(iris, "InferenceServiceReady", "InferenceService [sklearn-iris] is Ready", component="v1beta1Controllers")
    outsider = kube.add_pod({"metadata": {"name": "coredns-7db6d8ff4d-8xk2p", "namespace": "kube-system"},
                             "spec": {"containers": [{"name": "coredns"}]}, "status": {"phase": "Running"}})
    kube.add_event({"metadata": {"name": "coredns.1", "namespace": "kube-system"}, "reason": "Unhealthy",
                    "involvedObject": {"kind": "Pod", "name": outsider["metadata"]["name"], "namespace": "kube-system",
                                       "uid": outsider["metadata"]["uid"]},
                    "message": "Readiness probe failed", "type": "Warning", "count": 1,
                    "firstTimestamp": "2026-11-24T09:00:00Z", "lastTimestamp": "2026-11-24T09:00:00Z"})
    settle(story, fos)

    # -- A2: the model server is OOMKilled; its history is read but OpenSearch acknowledges none of it ----------
    fos.fail_requests(503, count=10**6, path_prefix="/_bulk")
    produced = collectors.metric("a", "servelog_history_documents_total")
    story.crash(v1, reason="OOMKilled", exit_code=137)
    backoff = story.event(v1, "BackOff", f"Back-off restarting failed container kserve-container in pod {v1.name}",
                          type_="Warning", container="kserve-container")
    story.isvc_update(iris, conditions=[("PredictorReady", "False", "RevisionFailed",
                                         f'Revision "{rev1}" failed with message: Container failed with: .')],
                      model=("BlockedByFailedLoad", "Pending", "FailedToLoad",
                             {"reason": "ModelLoadFailed", "exitCode": 137, "time": story.tick(0), "location": v1.name}))
    wait_until(lambda: collectors.metric("a", "servelog_history_documents_total") >= produced + 5, timeout=20)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    fos.clear_faults()

    # -- B: no collector runs; nothing the unacknowledged documents came from is overwritten ---------------
    story.repeat(probe)
    story.ready(v1)  # the new instance is ready again
    llm = story.isvc("llm")
    gpu = story.pod(llm, 1, node=None, scheduled=False, unschedulable_message=NO_GPU)
    unschedulable = story.event(gpu, "FailedScheduling", NO_GPU, type_="Warning", api="v1", component="default-scheduler")

    # -- C: two collectors at once; the first resumes after its SIGKILL -------------------------------------
    again, second = collectors.start("a"), collectors.start("b")
    settle(story, fos)
    story.repeat(backoff)
    story.repeat(unschedulable)
    story.isvc_update(iris, conditions=[("PredictorReady", "True", "", "")],
                      model=("UpToDate", "Loaded", "Loaded",
                             {"reason": "ModelLoadFailed", "exitCode": 137, "time": "2026-11-24T09:00:00Z"}))
    settle(story, fos)

    # every watch expires (the API server compacted): both collectors relist, changes in between are not missed
    kube.touch()  # unrelated cluster activity: every watch's last version is now older than the compaction
    kube.compact()
    kube.drop_watches()
    rev2 = "sklearn-iris-predictor-00002"
    story.isvc_update(iris, generation=2, revision=("predictor", rev2, rev1, [(rev1, 100)]), conditions=[
        ("PredictorConfigurationReady", "False", "RevisionFailed",
         f'Revision "{rev2}" failed with message: Back-off pulling image "kserve/sklearnserver:v9.9.9".')])
    v2 = story.pod(iris, 2)
    story.init_done(v2)
    story.waiting(v2, "kserve-container", "ErrImagePull", NOT_FOUND)
    story.event(v2, "Failed", NOT_FOUND, type_="Warning", container="kserve-container")
    story.repeat(unschedulable)
    settle(story, fos)
    story.waiting(v2, "kserve-container", "ImagePullBackOff", 'Back-off pulling image "kserve/sklearnserver:v9.9.9"')
    settle(story, fos)

    for resource in ("events", "pods", "inferenceservices"):
        relisted = sum(collectors.metric(n, "servelog_history_watch_total", resource=resource, status="GONE") for n in "ab")
        assert relisted >= 1, f"the {resource} watch met the 410 and relisted"
    replayed = collectors.metric("a", "servelog_documents_already_present_total") + collectors.metric(
        "b", "servelog_documents_already_present_total")
    assert replayed > 0, "the second collector and the restarted one wrote the same ids (409s), not new documents"
    assert collectors.stop(again) == 0 and collectors.stop(second) == 0
    report = story.compare(fos.all_sources("serving-events-*"))
    assert report.exactly_once, str(report)
    assert report.expected >= 35, "the story ran to its end"
