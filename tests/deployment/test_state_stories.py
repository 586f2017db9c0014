"""The troubleshooting stories: seed 004's three failures, an unschedulable GPU model, scale to zero, a rollout.

Each is told with the KServe CRD and, where the pods say it too, without it (Hopsworks' and Merlin's
own deployments, raw Deployments): the condition must be the same either way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from collector.deployment import ConditionStatus, ConditionType, Status, deployment_state
from tests.deployment import builders as b
from tests.support.kube_server import pod_fixture

S, INIT, ST, R = ConditionType.SCHEDULED, ConditionType.INITIALIZED, ConditionType.STARTED, ConditionType.READY
U, F, T = ConditionStatus.UNKNOWN, ConditionStatus.FALSE, ConditionStatus.TRUE
GPU_TEXT = ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod..")
MISSING_IMAGE = "kserve/sklearnserver:v9.9.9"
REGISTRY_SAYS = (f"Failed to pull image \"{MISSING_IMAGE}\": rpc error: code = NotFound desc = failed to pull and unpack "
                 f"image \"docker.io/{MISSING_IMAGE}\": failed to resolve reference \"docker.io/{MISSING_IMAGE}\": "
                 f"docker.io/{MISSING_IMAGE}: not found")


def starting_isvc() -> dict[str, Any]:
    return b.isvc(conditions=b.progressing_conditions(), latest_ready=None)


# -- seed 004: OOMKilled ---------------------------------------------------------------------------
def oom_story() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return b.fixture("pod-oomkilled-crashloop"), b.fixture("events-oomkilled")["items"]


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_oomkilled_model_server_is_started_false_with_its_memory_limit(with_crd: bool) -> None:
    pod, events = oom_story()
    isvc = b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=None) if with_crd else None
    now = b.T0 + timedelta(minutes=21, seconds=42)  # the pod started at 09:11:42: ten minutes ago
    state = deployment_state(isvc, [pod], events, now=now)
    assert state.status is Status.FAILED
    assert (state.condition.type, state.condition.status) == (ST, F)
    assert state.condition.reason == "kserve-container was OOMKilled (exit 137, memory limit 2Gi), restarted 3 times"
    failure = state.last_failure
    assert failure is not None
    assert (failure.reason, failure.exit_code, failure.container, failure.memory_limit, failure.restarts) == (
        "OOMKilled", 137, "kserve-container", "2Gi", 3)
    assert failure.time == "2026-11-24T09:19:58Z"
    assert state.next_step.startswith("kserve-container was OOMKilled (last at 09:19 UTC): its limit is 2Gi"), \
        "3 restarts, but one kill with a time: the restart count is not evidence of when, nor of an OOM kill"
    assert (state.serving_name, state.namespace, state.model_name, state.model_version) == (
        "sklearn-iris", "kserve-test", "sklearn-iris", "2")


def test_oom_kill_known_only_to_the_inference_service_still_names_the_limit() -> None:
    """Pods gone (Knative scaled the failed revision down): KServe's lastFailureInfo keeps exit code 137."""
    isvc = b.isvc(conditions=b.failed_conditions("Container failed with: ."), latest_ready=None, memory="4Gi",
                  model_status={"transitionStatus": "BlockedByFailedLoad",
                                "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                                "lastFailureInfo": {"reason": "ModelLoadFailed", "exitCode": 137, "message": "",
                                                    "location": "sklearn-iris-predictor-00001-deployment-7c9d8-abcde"}})
    state = deployment_state(isvc, [], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, ST, F)
    assert state.condition.reason == "kserve-container was OOMKilled (exit 137, memory limit 4Gi)"
    assert "its limit is 4Gi" in state.next_step


def test_a_replica_that_survived_an_oom_kill_is_running_with_the_failure_remembered() -> None:
    state = deployment_state(b.isvc(latest_created=2, latest_ready=2), [pod_fixture("kserve-serverless-predictor")], [],
                             now=b.T0 + timedelta(minutes=30))
    assert (state.status, state.condition.type, state.condition.status) == (Status.RUNNING, R, T)
    assert state.last_failure is not None and state.last_failure.reason == "OOMKilled"
    assert "OOMKilled (last at 09:16 UTC)" in state.next_step and "serving again" in state.next_step


# -- seed 004: liveness / readiness probe failures -------------------------------------------------
def liveness_story() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    killed = b.terminated_state("Error", 137, started=200, finished=262)
    pod = b.pod(liveness=True, app=[b.waiting("kserve-container", "CrashLoopBackOff", "back-off 1m20s restarting failed "
                                              "container=kserve-container", restarts=4, last=killed),
                                    b.running("queue-proxy", ready=False)])
    events = [b.pod_event(pod, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503",
                          container="kserve-container", first=60, last=250, count=12),
              b.pod_event(pod, "Killing", "Container kserve-container failed liveness probe, will be restarted",
                          container="kserve-container", type="Normal", first=82, last=252, count=4),
              b.pod_event(pod, "BackOff", f"Back-off restarting failed container kserve-container in pod "
                          f"{pod['metadata']['name']}_kserve-test({pod['metadata']['uid']})", container="kserve-container",
                          first=90, last=590, count=37)]
    return pod, events


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_liveness_probe_failures_leading_to_crash_loop_back_off(with_crd: bool) -> None:
    pod, events = liveness_story()
    state = deployment_state(starting_isvc() if with_crd else None, [pod], events, now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, ST, F)
    assert state.condition.reason == ("kserve-container failed its liveness probe, restarted 4 times: "
                                      "Liveness probe failed: HTTP probe failed with statuscode: 503")
    assert state.last_failure is not None and state.last_failure.reason == "LivenessProbeFailed"
    assert "liveness probe" in state.next_step and "--previous" in state.next_step


def test_a_plain_crash_loop_says_the_last_line_it_printed() -> None:
    crashed = b.terminated_state("Error", 1, started=300, finished=304)
    pod = b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=5, last=crashed),
                     b.running("queue-proxy", ready=False)])
    logs = {"kserve-container": ["Traceback (most recent call last):", "  File \"/app/model.py\", line 3, in <module>",
                                 "    import xgboost", "ModuleNotFoundError: No module named 'xgboost'", ""]}
    state = deployment_state(None, [pod], [], now=b.NOW, last_logs=logs)
    assert state.condition.reason == ("kserve-container exited with code 1 (Error), restarted 5 times: "
                                      "ModuleNotFoundError: No module named 'xgboost'")
    assert state.last_failure is not None
    assert state.last_failure.last_lines[-1] == "ModuleNotFoundError: No module named 'xgboost'"
    assert state.next_step.endswith("--component predictor --container kserve-container --previous")


def test_logs_keyed_by_pod_and_container_win_over_the_termination_message() -> None:
    crashed = b.terminated_state("Error", 2, started=300, finished=304, message="usage: server [-h]\nerror: bad flag")
    pod = b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=1, last=crashed)])
    plain = deployment_state(None, [pod], [], now=b.NOW)
    keyed = deployment_state(None, [pod], [], now=b.NOW,
                             last_logs={f"{pod['metadata']['name']}/kserve-container": ["loading", "MemoryError"]})
    assert plain.condition.reason.endswith(": error: bad flag")
    assert keyed.condition.reason.endswith(": MemoryError")


# -- seed 004: image not found ---------------------------------------------------------------------
def image_story() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pod = b.pod(raw=True, app=[b.waiting("kserve-container", "ImagePullBackOff", f"Back-off pulling image \"{MISSING_IMAGE}\"",
                                         image=MISSING_IMAGE)])
    c = "kserve-container"
    events = [b.pod_event(pod, "Pulling", f"Pulling image \"{MISSING_IMAGE}\"", container=c, type="Normal",
                          first=21, last=200, count=4),
              b.pod_event(pod, "Failed", REGISTRY_SAYS, container=c, first=22, last=201, count=4),
              b.pod_event(pod, "Failed", "Error: ErrImagePull", container=c, first=22, last=201, count=4),
              b.pod_event(pod, "BackOff", f"Back-off pulling image \"{MISSING_IMAGE}\"", container=c, type="Normal",
                          first=23, last=590, count=40),
              b.pod_event(pod, "Failed", "Error: ImagePullBackOff", container=c, first=23, last=590, count=40)]
    return pod, events


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_image_not_found_is_initialized_false_in_the_registrys_words(with_crd: bool) -> None:
    pod, events = image_story()
    raw_mode = b.isvc(conditions=b.progressing_conditions(), latest_created=None, latest_ready=None)
    raw_mode["status"]["deploymentMode"] = "RawDeployment"
    state = deployment_state(raw_mode if with_crd else None, [pod], events, now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, INIT, F)
    assert state.condition.reason == f"kserve-container: {REGISTRY_SAYS}"
    assert state.last_failure is not None and state.last_failure.reason == "ImagePullBackOff"
    assert "image name and tag" in state.next_step


def test_image_not_found_before_any_pod_exists_knative_digest_resolution() -> None:
    text = (f"Unable to fetch image \"{MISSING_IMAGE}\": failed to resolve image to digest: GET "
            "https://index.docker.io/v2/kserve/sklearnserver/manifests/v9.9.9: MANIFEST_UNKNOWN: manifest unknown; "
            "unknown tag=v9.9.9")
    state = deployment_state(b.isvc(conditions=b.failed_conditions(text), latest_ready=None), [], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, INIT, F)
    assert state.condition.reason == text
    assert "image name and tag" in state.next_step


def test_a_missing_secret_is_initialized_false() -> None:
    pod = b.pod(app=[b.waiting("kserve-container", "CreateContainerConfigError", "secret \"s3-credentials\" not found")])
    state = deployment_state(None, [pod], [], now=b.NOW)
    assert (state.condition.type, state.condition.status) == (INIT, F)
    assert state.condition.reason == "kserve-container: secret \"s3-credentials\" not found"
    assert "secret or config map" in state.next_step


def test_a_volume_that_cannot_be_mounted_is_initialized_false() -> None:
    pod = b.pod(app=[b.waiting("kserve-container"), b.waiting("queue-proxy")])
    mount = b.pod_event(pod, "FailedMount", "MountVolume.SetUp failed for volume \"model-cache\" : persistentvolumeclaim "
                        "\"llm-cache\" not found", first=30, last=500, count=9)
    state = deployment_state(None, [pod], [mount], now=b.NOW)
    assert (state.condition.type, state.condition.status) == (INIT, F)
    assert "persistentvolumeclaim \"llm-cache\" not found" in state.condition.reason


def test_a_mount_that_failed_before_the_images_were_pulled_is_no_longer_the_story() -> None:
    pod = b.pod(app=[b.waiting("kserve-container"), b.waiting("queue-proxy")])
    events = [b.pod_event(pod, "FailedMount", "MountVolume.SetUp failed for volume \"kube-api-access\" : object "
                          "\"kserve-test\"/\"kube-root-ca.crt\" not registered", first=12),
              b.pod_event(pod, "Pulling", "Pulling image \"kserve/sklearnserver:v0.14.1\"", container="kserve-container",
                          type="Normal", first=25)]
    state = deployment_state(None, [pod], events, now=b.NOW)
    assert (state.condition.type, state.condition.status) == (INIT, U)
    assert state.condition.reason == "Initializing: pulling image \"kserve/sklearnserver:v0.14.1\""


def test_pulling_the_storage_initializer_image_is_initializing() -> None:
    pod = b.pod(init=[b.waiting("storage-initializer", "PodInitializing")],
                app=[b.waiting("kserve-container", "PodInitializing"), b.waiting("queue-proxy", "PodInitializing")])
    pulling = b.pod_event(pod, "Pulling", "Pulling image \"kserve/storage-initializer:v0.14.1\"",
                          container="storage-initializer", init=True, type="Normal", first=11)
    state = deployment_state(None, [pod], [pulling], now=b.NOW)
    assert state.condition.reason == "Initializing: pulling image \"kserve/storage-initializer:v0.14.1\""


def test_raw_mode_pods_speak_even_if_the_inference_service_names_a_revision() -> None:
    pod, events = image_story()
    state = deployment_state(starting_isvc(), [pod], events, now=b.NOW)
    assert (state.condition.type, state.condition.status) == (INIT, F)


# -- an unschedulable GPU deployment ---------------------------------------------------------------
def test_unschedulable_gpu_model_from_the_inference_service_alone() -> None:
    state = deployment_state(b.fixture("isvc-gpu-unschedulable"), [], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, S, F)
    assert state.condition.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    assert (state.serving_name, state.namespace, state.model_name, state.model_version) == (
        "llama-chat", "genai", "llama-chat", "1")
    assert state.next_step.startswith("No node has enough free nvidia.com/gpu")


@pytest.mark.parametrize("with_crd", [True, False], ids=["kserve", "no-crd"])
def test_unschedulable_gpu_pod_from_its_condition_or_the_schedulers_event(with_crd: bool) -> None:
    isvc = starting_isvc() if with_crd else None
    by_condition = deployment_state(isvc, [b.pod(unschedulable=GPU_TEXT, gpus=1)], [], now=b.NOW)
    pending = b.pod(scheduled=False, gpus=1)
    by_event = deployment_state(isvc, [pending], [b.scheduler_event(pending, GPU_TEXT, count=9)], now=b.NOW)
    for state in (by_condition, by_event):
        assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, S, F)
        assert state.condition.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"


def test_an_exceeded_quota_without_any_pod_is_scheduled_false() -> None:
    quota = b.event("ReplicaSet", "sklearn-iris-predictor-7d9f8b6c5", "FailedCreate", "Error creating: pods "
                    "\"sklearn-iris-predictor-7d9f8b6c5-abcde\" is forbidden: exceeded quota: gpu-quota, requested: "
                    "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4",
                    source="replicaset-controller", first=20, count=14, api_version="apps/v1")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "sklearn-iris-predictor", "namespace": b.NAMESPACE},
                  "spec": {"replicas": 1, "template": {"metadata": {"labels": {
                      "app": "isvc.sklearn-iris-predictor", "component": "predictor",
                      "serving.kserve.io/inferenceservice": "sklearn-iris"}}, "spec": {"containers": []}}}}
    state = deployment_state(None, [], [quota], now=b.NOW, deployments=[deployment])
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, S, F)
    assert "exceeded quota: gpu-quota" in state.condition.reason
    assert state.component("predictor") is not None and state.component("predictor").desired == 1  # type: ignore[union-attr]


# -- scale to zero ---------------------------------------------------------------------------------
def test_scaled_to_zero_is_idle_and_ready() -> None:
    state = deployment_state(b.isvc(min_replicas=0), [], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.IDLE, R, T)
    assert state.as_json()["components"] == {"predictor": {"running": 0, "desired": 0, "ready": True}}
    assert "cold start" in state.next_step and "--source opensearch" in state.next_step
    assert (state.model_name, state.model_version) == ("sklearn-iris", "1")


def test_a_transformer_kept_warm_in_front_of_an_idle_predictor_is_idle() -> None:
    isvc = b.isvc(min_replicas=0, transformer=True)
    transformer = b.pod(component="transformer", suffix="tr4n5")
    state = deployment_state(isvc, [transformer], [], now=b.NOW)
    assert state.status is Status.IDLE
    assert state.as_json()["components"] == {"predictor": {"running": 0, "desired": 0, "ready": True},
                                             "transformer": {"running": 1, "desired": 1, "ready": True}}


def test_without_the_crd_a_scaled_to_zero_model_cannot_be_told_from_a_stopped_one() -> None:
    assert deployment_state(None, [], [], now=b.NOW).status is Status.STOPPED


# -- a rollout -------------------------------------------------------------------------------------
def rollout(new_app: list[dict[str, Any]], *, ready_isvc: bool = False) -> list[dict[str, Any]]:
    return [b.pod(revision=1), b.pod(revision=2, suffix="n3w00", created=400, app=new_app)]


def test_a_new_revision_rolling_out_while_the_old_one_serves_is_updating() -> None:
    isvc = b.isvc(conditions=b.progressing_conditions(), latest_created=2, latest_ready=1, generation=2)
    pods = rollout([b.waiting("kserve-container"), b.waiting("queue-proxy")])
    state = deployment_state(isvc, pods, [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, INIT, U)
    assert state.model_version == "2"  # what is being rolled out
    assert state.component("predictor").running == 1  # type: ignore[union-attr]  # the old revision still serves
    assert "previous revision serves (1 instance)" in state.next_step


@pytest.mark.parametrize("isvc_ready", [False, True], ids=["isvc-progressing", "isvc-ready"])
def test_a_rollout_whose_new_revision_cannot_pull_its_image_is_updating_and_blocked(isvc_ready: bool) -> None:
    """The previous revision still serves: the deployment is not FAILED, its update is blocked (review D3)."""
    isvc = b.isvc(conditions=None if isvc_ready else b.progressing_conditions(), latest_created=2, latest_ready=1,
                  generation=2)
    pods = rollout([b.waiting("kserve-container", "ImagePullBackOff", f"Back-off pulling image \"{MISSING_IMAGE}\"",
                              image=MISSING_IMAGE), b.waiting("queue-proxy")])
    events = [b.pod_event(pods[1], "Failed", REGISTRY_SAYS, container="kserve-container", first=410, last=500, count=4)]
    state = deployment_state(isvc, pods, events, now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, INIT, F)
    assert state.condition.reason == f"kserve-container: {REGISTRY_SAYS}"
    assert state.last_failure is not None and state.last_failure.reason == "ImagePullBackOff"
    assert state.component("predictor").running == 1  # type: ignore[union-attr]
    assert state.next_step.startswith("The rollout is blocked")
    assert "the previous revision still serves with 1 instance" in state.next_step


def test_a_rollout_whose_new_revision_cannot_be_scheduled_is_updating_with_the_schedulers_reason() -> None:
    isvc = b.isvc(latest_created=2, latest_ready=1, generation=2)  # Ready: the previous revision serves
    new = b.pod(revision=2, suffix="n3w00", created=400, scheduled=False, gpus=1)
    state = deployment_state(isvc, [b.pod(revision=1), new], [b.scheduler_event(new, GPU_TEXT, first=410, count=5)],
                             now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, S, F)
    assert state.condition.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    assert state.as_json()["components"]["predictor"]["running"] == 1


def revision_failed(text: str) -> list[dict[str, Any]]:
    """A Ready InferenceService (the previous revision serves) whose latest revision failed."""
    conditions = b.ready_conditions()
    for cond in conditions:
        if cond["type"] == "PredictorConfigurationReady":
            cond.update(status="False", reason="RevisionFailed",
                        message=f"Revision \"{b.NAME}-predictor-00002\" failed with message: {text}.")
        if cond["type"] == "LatestDeploymentReady":
            cond.update(status="False", reason="PredictorConfigurationReady not ready")
    return conditions


def test_a_new_revision_scaled_back_to_zero_is_updating_not_idle() -> None:
    """Knative scales an unschedulable revision back to zero after its progress deadline: no pod of it is left."""
    isvc = b.isvc(conditions=revision_failed(GPU_TEXT), latest_created=2, latest_ready=1, generation=2)
    state = deployment_state(isvc, [b.pod(revision=1)], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, S, F)
    assert state.condition.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    gone = b.pod(revision=2, suffix="g0n3x", created=400, scheduled=False)
    by_events = deployment_state(b.isvc(latest_created=2, latest_ready=1, generation=2), [b.pod(revision=1)],
                                 [b.scheduler_event(gone, GPU_TEXT, first=410)], now=b.NOW)
    assert (by_events.status, by_events.condition.type, by_events.condition.status) == (Status.UPDATING, S, F)
    assert by_events.condition.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"


def test_a_new_revision_without_any_pod_yet_is_updating_not_idle() -> None:
    state = deployment_state(b.isvc(latest_created=2, latest_ready=1, generation=2), [b.pod(revision=1)], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, S, U)
    assert f"{b.NAME}-predictor-00002" in state.condition.reason
    assert state.as_json()["components"]["predictor"] == {"running": 1, "desired": 1, "ready": True}


def test_idle_only_when_really_scaled_to_zero_and_ready() -> None:
    no_pod = deployment_state(b.isvc(), [], [], now=b.NOW)  # minReplicas 1 (KServe's default): it should have one
    assert no_pod.status is not Status.IDLE and no_pod.condition.type is not R
    rolling = deployment_state(b.isvc(min_replicas=0, latest_created=2, latest_ready=1, generation=2), [], [], now=b.NOW)
    assert (rolling.status, rolling.condition.type) == (Status.UPDATING, S)
    assert deployment_state(b.isvc(min_replicas=0), [], [], now=b.NOW).status is Status.IDLE


def test_without_the_crd_two_revisions_with_the_old_one_ready_is_updating() -> None:
    pods = rollout([b.running("kserve-container", ready=False, since=410), b.running("queue-proxy", ready=False, since=410)])
    state = deployment_state(None, pods, [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.UPDATING, ST, T)


def test_a_finished_rollout_is_running_while_the_old_pod_terminates() -> None:
    isvc = b.isvc(latest_created=2, latest_ready=2, generation=2)
    pods = [b.pod(revision=1, terminating=True), b.pod(revision=2, suffix="n3w00", created=400)]
    state = deployment_state(isvc, pods, [], now=b.NOW)
    assert (state.status, state.model_version) == (Status.RUNNING, "2")
    assert state.component("predictor").running == 1  # type: ignore[union-attr]


# -- partial readiness, transformers, other platforms ----------------------------------------------
def test_scaling_up_keeps_a_serving_deployment_running() -> None:
    pods = [b.pod(), b.pod(suffix="s3c0n", created=500, scheduled=False)]
    state = deployment_state(b.isvc(max_replicas=3), pods, [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.RUNNING, R, T)
    assert state.condition.reason.startswith("Deployment is ready: 1/2 predictor instances ready; ")
    assert state.as_json()["components"]["predictor"] == {"running": 1, "desired": 2, "ready": True}


def test_a_failing_transformer_fails_the_deployment_and_both_components_are_counted() -> None:
    conditions = [c if c["type"] not in ("TransformerReady", "Ready") else {**c, "status": "False", "reason": "RevisionMissing"}
                  for c in b.ready_conditions(("predictor", "transformer"))]
    crashed = b.terminated_state("Error", 1, started=300, finished=302, message="KeyError: 'instances'")
    transformer = b.pod(component="transformer", suffix="tr4n5", app=[
        b.waiting("kserve-container", "CrashLoopBackOff", restarts=2, last=crashed), b.running("queue-proxy", ready=False)])
    state = deployment_state(b.isvc(transformer=True, conditions=conditions), [b.pod(), transformer], [], now=b.NOW)
    assert (state.status, state.condition.type, state.condition.status) == (Status.FAILED, ST, F)
    assert state.last_failure is not None and state.last_failure.component == "transformer"
    assert state.as_json()["components"] == {"predictor": {"running": 1, "desired": 1, "ready": True},
                                             "transformer": {"running": 0, "desired": 1, "ready": False}}


def test_an_evicted_pod_does_not_speak_but_is_the_last_failure() -> None:
    evicted = b.pod(suffix="ev1ct", created=5, phase="Failed")
    evicted["status"].update({"reason": "Evicted", "message": "The node was low on resource: memory. Threshold quantity: 100Mi"})
    state = deployment_state(b.isvc(), [evicted, b.pod()], [], now=b.NOW)
    assert state.status is Status.RUNNING
    assert state.last_failure is not None and state.last_failure.reason == "Evicted"


def test_events_of_an_older_pod_with_the_same_name_are_not_this_pods() -> None:
    pod = b.pod(app=[b.running("kserve-container", ready=False), b.running("queue-proxy", ready=False)])
    stale = b.pod_event(pod, "Unhealthy", "Readiness probe failed: connection refused", container="queue-proxy", first=70)
    stale["involvedObject"]["uid"] = "00000000-0000-4000-8000-000000000000"
    state = deployment_state(None, [pod], [stale], now=b.NOW)
    assert (state.condition.type, state.condition.status) == (ST, T)


@pytest.mark.parametrize(("fixture", "identity"), [
    ("hopsworks-predictor", ("fraud", "fraud-project", "fraud_model", "4")),
    ("merlin-model", ("credit-score-3-r2", "sample", "credit-score", "3")),
])
def test_platform_pods_without_the_crd_name_their_model_by_the_presets(fixture: str, identity: tuple[str, ...]) -> None:
    state = deployment_state(None, [pod_fixture(fixture)], [], now=b.T0 + timedelta(hours=3))
    assert (state.serving_name, state.namespace, state.model_name, state.model_version) == identity
    assert state.found


def test_raw_deployments_give_the_desired_replicas_and_zero_replicas_means_stopped() -> None:
    def deployment(replicas: int) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "sklearn-iris-predictor", "namespace": b.NAMESPACE},
                "spec": {"replicas": replicas, "template": {"metadata": {"labels": {
                    "component": "predictor", "serving.kserve.io/inferenceservice": "sklearn-iris"}}, "spec": {}}}}
    pods = [b.pod(raw=True), b.pod(raw=True, suffix="s3c0n")]
    scaled = deployment_state(None, pods, [], now=b.NOW, deployments=[deployment(3)])
    assert scaled.as_json()["components"]["predictor"] == {"running": 2, "desired": 3, "ready": False}
    assert scaled.status is Status.RUNNING
    stopping = deployment_state(None, [b.pod(raw=True, terminating=True)], [], now=b.NOW, deployments=[deployment(0)])
    assert stopping.status is Status.STOPPING


# -- custom model metadata (issue 11 review, D4) ---------------------------------------------------
CUSTOM = {"model_name": "label:acme.io/model", "model_version": "annotation:acme.io/model-version"}


def test_model_name_and_version_follow_the_collectors_custom_fields() -> None:
    """The same ``kubernetes.custom_fields`` as the collector's enrichment: the log lines and the state agree."""
    labelled = b.pod(labels={"acme.io/model": "fraud-gbm"}, annotations={"acme.io/model-version": "2024.11"})
    state = deployment_state(b.isvc(), [labelled], [], now=b.NOW, custom_fields=CUSTOM)
    assert (state.model_name, state.model_version) == ("fraud-gbm", "2024.11")
    assert deployment_state(b.isvc(), [labelled], [], now=b.NOW).model_name == b.NAME, "without them: the presets"
    idle = b.isvc(min_replicas=0, labels={"acme.io/model": "fraud-gbm"}, annotations={"acme.io/model-version": "2024.11"})
    from_isvc = deployment_state(idle, [], [], now=b.NOW, custom_fields=CUSTOM)
    assert (from_isvc.status, from_isvc.model_name, from_isvc.model_version) == (Status.IDLE, "fraud-gbm", "2024.11")


def test_a_custom_component_field_places_the_pods() -> None:
    pod = b.pod(raw=True, labels={"acme.io/part": "transformer"})
    pod["metadata"]["labels"].pop("component", None)
    state = deployment_state(None, [pod], [], now=b.NOW, custom_fields={"component": "label:acme.io/part"})
    assert [c.name for c in state.components] == ["transformer"]


def test_the_image_advice_names_the_exact_image_to_check() -> None:
    """Review D7g: the command to paste carries the pod spec's image reference, not a placeholder."""
    pod, events = image_story()
    pod["spec"]["containers"][0]["image"] = f"registry.example.com/team/{MISSING_IMAGE}"
    state = deployment_state(None, [pod], events, now=b.NOW)
    assert state.last_failure is not None and state.last_failure.reason == "ImagePullBackOff"
    image = f"registry.example.com/team/{MISSING_IMAGE}"
    assert f"`docker manifest inspect {image}`" in state.next_step and f"`crane manifest {image}`" in state.next_step
    assert "image" not in state.as_json()["last_failure"], "the JSON keys stay the documented ones"
