"""``servelog status`` against the loopback cluster: the I/O layer of the state, end to end through the real client.

The state function's own tests (``tests/deployment``) cover every row of seed 001's tables; here
each status is reached once from objects served by the API server (InferenceService, pods, events,
Deployments, ``pods/log``), the failure stories of seed 004 and an unschedulable GPU model are
told through the command, and every way the question cannot be answered has its exit status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import servelog
from collector.deployment import ConditionStatus, ConditionType, Status
from collector.query.cluster import crashed_instances, deployment_events, serving_selectors
from collector.query.terminal import use_color
from tests.deployment import builders as b
from tests.deployment.test_state_stories import (
    GPU_TEXT,
    REGISTRY_SAYS,
    image_story,
    liveness_story,
    oom_story,
    revision_failed,
)
from tests.support.kube_server import pod_fixture
from tests.troubleshoot.conftest import Cluster, write_kubeconfig

S, INIT, ST, R, STOP = (ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY,
                     ConditionType.STOPPED)
U, F, T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE
JSON_KEYS = ["serving_name", "namespace", "status", "condition", "components", "model_name", "model_version",
             "last_failure"]


def starting() -> dict[str, Any]:
    return b.isvc(conditions=b.progressing_conditions(), latest_ready=None)


def status_json(cluster: Cluster, name: str = b.NAME, namespace: str = b.NAMESPACE) -> dict[str, Any]:
    ran = cluster.servelog("status", name, "-n", namespace, "--output", "json")
    assert ran.status == 0, ran.err
    found: dict[str, Any] = ran.json()
    assert list(found) == JSON_KEYS and list(found["condition"]) == ["type", "status", "reason"]
    return found


def condition(found: dict[str, Any]) -> tuple[str, str, str]:
    return found["status"], found["condition"]["type"], found["condition"]["status"]


# -- one deployment per status, served by the API ----------------------------------------------------------
def rollout() -> dict[str, Any]:
    new = b.pod(revision=2, suffix="n3w00", created=400, app=[b.running("kserve-container", ready=False, since=410),
                                                              b.running("queue-proxy", ready=False, since=410)])
    return {"isvc": b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=1, generation=2),
            "pods": [b.pod(revision=1), new]}


STATUSES: list[tuple[Status, ConditionType, ConditionStatus, str, Any]] = [
    (Status.CREATED, STOP, T, "Deployment has never been started",
     lambda: {"isvc": b.stopped(b.isvc(conditions=[], latest_created=None, latest_ready=None))}),
    (Status.STARTING, S, U, "Waiting to be scheduled", lambda: {"isvc": starting(), "pods": [b.pod(scheduled=False)]}),
    (Status.RUNNING, R, T, "Deployment is ready", lambda: {"isvc": b.isvc(), "pods": [b.pod()]}),
    (Status.IDLE, R, T, "Deployment is ready, but idle", lambda: {"isvc": b.isvc(min_replicas=0)}),
    (Status.FAILED, ST, F, "kserve-container was OOMKilled (exit 137, memory limit 2Gi)",
     lambda: {"isvc": b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=None),
              "pods": [oom_story()[0]], "events": oom_story()[1]}),
    (Status.UPDATING, ST, T, "Started: waiting for kserve-container, queue-proxy to be ready", rollout),
    (Status.STOPPING, STOP, U, "Stopping: 1 instance still terminating",
     lambda: {"isvc": b.stopped(b.isvc()), "pods": [b.pod(terminating=True)]}),
    (Status.STOPPED, STOP, T, "Deployment is stopped",
     lambda: {"isvc": b.stopped(b.isvc()), "events": [b.event("InferenceService", b.NAME, "InferenceServiceReady",
                                                              "InferenceService [sklearn-iris] is Ready", type="Normal")]}),
]


@pytest.mark.parametrize(("status", "kind", "cond_status", "reason", "objects"), STATUSES, ids=[str(s[0]) for s in STATUSES])
def test_each_status_through_the_command(cluster: Cluster, status: Status, kind: ConditionType,
                                         cond_status: ConditionStatus, reason: str, objects: Any) -> None:
    cluster.load(**objects())
    found = status_json(cluster)
    assert condition(found) == (str(status), str(kind), str(cond_status))
    assert found["condition"]["reason"].startswith(reason), found["condition"]["reason"]
    assert (found["serving_name"], found["namespace"], found["model_name"]) == (b.NAME, b.NAMESPACE, b.NAME)


def test_every_status_is_reached_through_the_command() -> None:
    assert {row[0] for row in STATUSES} == set(Status)


# -- seed 004's failure stories and an unschedulable GPU model ---------------------------------------------
def test_oomkilled_says_the_limit_the_restarts_and_what_the_model_printed_last(cluster: Cluster) -> None:
    pod, events = oom_story()
    cluster.load(isvc=b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=None), pods=[pod],
                 events=events)
    name = pod["metadata"]["name"]
    for n in range(15):  # the instance that was killed (the container now waits to restart)
        cluster.kube.append_log(b.NAMESPACE, name, "kserve-container", f"loading shard {n}/14", previous=True)
    found = status_json(cluster)
    assert condition(found) == ("FAILED", "STARTED", "False")
    assert found["condition"]["reason"] == "kserve-container was OOMKilled (exit 137, memory limit 2Gi), restarted 3 times"
    failure = found["last_failure"]
    assert (failure["reason"], failure["exit_code"], failure["memory_limit"], failure["restarts"]) == ("OOMKilled", 137, "2Gi", 3)
    assert failure["last_lines"] == [f"loading shard {n}/14" for n in range(5, 15)], "the last 10 lines, from pods/log"
    log_reads = [r for r in cluster.kube.requests if "/log?" in r]
    assert len(log_reads) == 1 and "previous=true" in log_reads[0] and "tailLines=10" in log_reads[0]
    text = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE)
    assert text.status == 0
    assert "next: kserve-container was OOMKilled (last at 2026-11-24 09:19 UTC): its limit is 2Gi" in text.out
    assert "    loading shard 14/14" in text.out


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_liveness_probe_failures(cluster: Cluster, with_crd: bool) -> None:
    pod, events = liveness_story()
    cluster.kube.install_kserve(with_crd)
    cluster.load(isvc=starting() if with_crd else None, pods=[pod], events=events)
    found = status_json(cluster)
    assert condition(found) == ("FAILED", "STARTED", "False")
    assert found["condition"]["reason"] == ("kserve-container failed its liveness probe, restarted 4 times: "
                                            "Liveness probe failed: HTTP probe failed with statuscode: 503")
    assert found["last_failure"]["reason"] == "LivenessProbeFailed"
    assert "--previous" in cluster.servelog("status", b.NAME, "-n", b.NAMESPACE).out.splitlines()[-1]


def test_readiness_probe_failures_then_the_controller_giving_up(cluster: Cluster) -> None:
    pod = b.pod(app=[b.running("kserve-container", ready=False, since=300), b.running("queue-proxy", ready=False, since=300)])
    probe = b.pod_event(pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        container="kserve-container", first=320, last=560, count=25)
    cluster.load(isvc=starting(), pods=[pod], events=[probe])
    found = status_json(cluster)
    assert condition(found) == ("STARTING", "READY", "Unknown")
    assert found["condition"]["reason"] == "kserve-container: Readiness probe failed: HTTP probe failed with statuscode: 503"
    assert "readiness probe fails" in cluster.servelog("status", b.NAME, "-n", b.NAMESPACE).out
    gave_up = b.isvc(latest_ready=None, conditions=b.failed_conditions("Initial scale was never achieved"))
    gave_up["status"]["conditions"] = [
        {**c, "reason": "ProgressDeadlineExceeded", "message": "Initial scale was never achieved"}
        if c["type"] == "PredictorReady" else c for c in gave_up["status"]["conditions"]]
    cluster.kube.update_isvc(gave_up)
    failed = status_json(cluster)
    assert condition(failed) == ("FAILED", "READY", "False")
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in failed["condition"]["reason"]


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_image_not_found(cluster: Cluster, with_crd: bool) -> None:
    pod, events = image_story()
    raw = b.isvc(conditions=b.progressing_conditions(), latest_created=None, latest_ready=None)
    raw["status"]["deploymentMode"] = "RawDeployment"
    cluster.kube.install_kserve(with_crd)
    cluster.load(isvc=raw if with_crd else None, pods=[pod], events=events)
    found = status_json(cluster)
    assert condition(found) == ("FAILED", "INITIALIZED", "False")
    assert found["condition"]["reason"] == f"kserve-container: {REGISTRY_SAYS}", "the registry's words, from the events"
    text = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE).out
    assert "next: Check the image name and tag" in text


def test_unschedulable_gpu_deployment_from_the_pod_and_from_the_inference_service_alone(cluster: Cluster) -> None:
    pending = b.pod(scheduled=False, gpus=1)
    cluster.load(isvc=starting(), pods=[pending], events=[b.scheduler_event(pending, GPU_TEXT, count=9)])
    found = status_json(cluster)
    assert condition(found) == ("FAILED", "SCHEDULED", "False")
    assert found["condition"]["reason"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    cluster.load(isvc=b.fixture("isvc-gpu-unschedulable"))  # Knative gave up before any pod existed
    llm = status_json(cluster, "llama-chat", "genai")
    assert condition(llm) == ("FAILED", "SCHEDULED", "False")
    assert llm["condition"]["reason"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    assert "No node has enough free nvidia.com/gpu" in cluster.servelog("status", "llama-chat", "-n", "genai").out


# -- what is read, and what is not -------------------------------------------------------------------------
def test_without_the_crd_raw_deployments_give_the_desired_replicas_and_other_deployments_events_stay_out(
        cluster: Cluster) -> None:
    cluster.kube.install_kserve(False)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "sklearn-iris-predictor", "namespace": b.NAMESPACE,
                               "labels": {"serving.kserve.io/inferenceservice": b.NAME}},
                  "spec": {"replicas": 3, "template": {"metadata": {"labels": {
                      "component": "predictor", "serving.kserve.io/inferenceservice": b.NAME}}, "spec": {}}}}
    other = b.pod(name="other-model", unschedulable=GPU_TEXT)
    cluster.load(pods=[b.pod(raw=True), b.pod(raw=True, suffix="s3c0n"), other], deployments=[deployment],
                 events=[b.scheduler_event(other, GPU_TEXT)])
    found = status_json(cluster)
    assert found["components"] == {"predictor": {"running": 2, "desired": 3, "ready": False}}
    assert found["status"] == "RUNNING" and found["last_failure"] is None, "the other model's failure is not this one's"


def test_a_hopsworks_deployment_is_found_by_its_own_label(cluster: Cluster) -> None:
    pod = pod_fixture("hopsworks-predictor")
    del pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"]
    cluster.kube.install_kserve(False)
    cluster.load(pods=[pod])
    found = status_json(cluster, "fraud", "fraud-project")
    assert (found["model_name"], found["model_version"]) == ("fraud_model", "4")
    assert any("serving.hops.works/name%3Dfraud" in r for r in cluster.kube.requests)


def test_pure_helpers_of_the_reader() -> None:
    assert serving_selectors("iris", {"serving_name": "label:team.io/serving"})[:2] == [
        "team.io/serving=iris", "serving.kserve.io/inferenceservice=iris"]
    pod, _ = oom_story()
    assert crashed_instances(pod) == [("kserve-container", True)]
    failed_init = b.pod(init=[b.terminated("storage-initializer", "Error", 1)],
                        app=[b.waiting("kserve-container", "PodInitializing")])
    assert crashed_instances(failed_init) == [("storage-initializer", False)]
    mine, theirs = b.pod(), b.pod(name="other-model")
    events = [b.pod_event(mine, "Pulled", "pulled", type="Normal"), b.pod_event(theirs, "Pulled", "pulled", type="Normal"),
              b.event("InferenceService", b.NAME, "InferenceServiceReady", "ready", type="Normal")]
    kept = deployment_events(events, name=b.NAME, namespace=b.NAMESPACE, isvc=b.isvc(), pods=[mine])
    assert [e["involvedObject"]["name"] for e in kept] == [mine["metadata"]["name"], b.NAME]


# -- when the question cannot be answered ------------------------------------------------------------------
def test_no_such_deployment_is_exit_status_5(cluster: Cluster) -> None:
    cluster.load(pods=[b.pod(name="other-model")])
    ran = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE)
    assert ran.status == 5 and ran.out == ""
    assert ran.err.startswith(f"servelog status: no deployment named {b.NAME} in namespace {b.NAMESPACE}")


def test_no_cluster_unreachable_refused_and_a_bad_name(cluster: Cluster, tmp_path: Any) -> None:
    cluster.load(isvc=b.isvc(), pods=[b.pod()])
    cluster.kubeconfig = tmp_path / "missing"
    missing = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE)
    assert missing.status == 3 and "no usable configuration" in missing.err
    cluster.kubeconfig = write_kubeconfig(tmp_path / "closed", "http://127.0.0.1:9")
    closed = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE)
    assert closed.status == 3 and "cannot be reached" in closed.err
    cluster.kubeconfig = write_kubeconfig(tmp_path / "loopback", cluster.kube.url, namespace=b.NAMESPACE)
    cluster.kube.fail_next(403, path="/pods")
    refused = cluster.servelog("status", b.NAME)  # the namespace of the kubeconfig's context
    assert refused.status == 4 and "403" in refused.err and "pods/log" in refused.err
    assert cluster.servelog("status", "not/a-name").status == 2
    answered = cluster.servelog("status", b.NAME)
    assert answered.status == 0 and answered.out.startswith(f"{b.NAME} (namespace {b.NAMESPACE})")


def test_a_forbidden_inference_service_is_a_note_and_the_pods_still_answer(cluster: Cluster) -> None:
    cluster.load(isvc=b.isvc(), pods=[b.pod()])
    cluster.kube.fail_next(403, path="/inferenceservices/")
    ran = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE, "--output", "json")
    assert ran.status == 0 and json.loads(ran.out)["status"] == "RUNNING"
    assert "InferenceServices cannot be read" in ran.err


def test_output_is_aligned_and_colourless_unless_a_terminal_asks(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.load(isvc=b.isvc(), pods=[b.pod()])
    text = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE).out
    assert "\033[" not in text, "not a terminal: no colour"
    labels = text.splitlines()[1:4]
    assert [line.split()[0] for line in labels] == ["status", "condition", "model"]
    assert len({line.index(line.split()[1]) for line in labels}) == 1, "values start in one column"

    class Terminal:
        def isatty(self) -> bool:
            return True
    monkeypatch.delenv("TERM", raising=False)
    assert use_color(Terminal())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Terminal())  # type: ignore[arg-type]


# -- a blocked rollout (issue 11 review, D3) ---------------------------------------------------------------
def test_a_rollout_blocked_by_the_scheduler_is_updating_with_its_reason(cluster: Cluster) -> None:
    new = b.pod(revision=2, suffix="n3w00", created=400, scheduled=False, gpus=1)
    cluster.load(isvc=b.isvc(latest_created=2, latest_ready=1, generation=2), pods=[b.pod(revision=1), new],
                 events=[b.scheduler_event(new, GPU_TEXT, first=410, count=5)])
    found = status_json(cluster)
    assert condition(found) == ("UPDATING", "SCHEDULED", "False")
    assert found["condition"]["reason"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    assert found["components"]["predictor"] == {"running": 1, "desired": 1, "ready": True}
    text = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE)
    assert "next: The rollout is blocked; the previous revision still serves with 1 instance" in text.out


def test_a_new_revision_scaled_back_to_zero_is_updating_not_idle(cluster: Cluster) -> None:
    cluster.load(isvc=b.isvc(conditions=revision_failed(GPU_TEXT), latest_created=2, latest_ready=1, generation=2),
                 pods=[b.pod(revision=1)])
    found = status_json(cluster)
    assert condition(found) == ("UPDATING", "SCHEDULED", "False")
    assert found["condition"]["reason"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"


# -- custom model metadata (issue 11 review, D4) -----------------------------------------------------------
def test_status_and_the_notebook_read_the_model_with_the_collectors_custom_fields(cluster: Cluster, tmp_path: Any) -> None:
    config = tmp_path / "servelog.yaml"
    config.write_text("kubernetes:\n  custom_fields:\n    model_name: label:acme.io/model\n"
                      "    model_version: annotation:acme.io/model-version\n")
    cluster.load(isvc=b.isvc(), pods=[b.pod(labels={"acme.io/model": "fraud-gbm"},
                                            annotations={"acme.io/model-version": "2024.11"})])
    ran = cluster.servelog("status", b.NAME, "-n", b.NAMESPACE, "--output", "json", "--config", str(config))
    assert ran.status == 0, ran.err
    assert (ran.json()["model_name"], ran.json()["model_version"]) == ("fraud-gbm", "2024.11")
    with servelog.deployment(b.NAME, b.NAMESPACE, config=config, kubeconfig=cluster.kubeconfig) as d:
        assert (d.state().model_name, d.state().model_version) == ("fraud-gbm", "2024.11")
