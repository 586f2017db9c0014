"""Enrichment presets: real-shaped pods of KServe, Hopsworks and Merlin in, the model fields users filter on out."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import ConfigError
from collector.kube.presets import (
    containers_of,
    event_time,
    fields_from_pod,
    is_excluded,
    merlin_model_version,
    pod_metadata,
    validate_custom_fields,
)
from collector.kube.static import StaticMetadataProvider
from tests.support.kube_server import POD_FIXTURES, pod_fixture

MODEL_FIELDS = ("serving_name", "component", "model_name", "model_version", "project")


def model_fields(pod: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    fields = fields_from_pod(pod, **kwargs)
    return {key: fields.get(key) for key in MODEL_FIELDS}


def with_labels(pod: dict[str, Any], labels: dict[str, str], *, replace: bool = False) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    meta = pod["metadata"]
    meta["labels"] = dict(labels) if replace else {**meta.get("labels", {}), **labels}
    return pod


def bare_pod(labels: dict[str, Any] | None = None, *, namespace: str = "team-a",
             annotations: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p-0", "namespace": namespace, "uid": "11111111-2222-4333-8444-555555555555"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "main", "image": "x"}]}}


# -- the fixtures are real pods ------------------------------------------------------------------
FIXTURE_NAMES = sorted(p.stem for p in POD_FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_is_a_valid_v1_pod(name: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(pod_fixture(name), "1.30", strict=True)


def test_every_platform_has_a_fixture() -> None:
    assert set(FIXTURE_NAMES) >= {"kserve-serverless-predictor", "kserve-transformer", "kserve-raw-deployment",
                                  "hopsworks-predictor", "merlin-model"}


# -- KServe ----------------------------------------------------------------------------------------
class TestKServe:
    def test_serverless_predictor_version_is_the_knative_revision_generation(self) -> None:
        assert model_fields(pod_fixture("kserve-serverless-predictor")) == {
            "serving_name": "sklearn-iris", "component": "predictor", "model_name": "sklearn-iris",
            "model_version": "2", "project": None}

    def test_transformer_model_name_is_the_name_the_server_registers(self) -> None:
        # the transformer's kserve-container runs with "--model_name mnist" (separate argument)
        assert model_fields(pod_fixture("kserve-transformer")) == {
            "serving_name": "torch-transformer", "component": "transformer", "model_name": "mnist",
            "model_version": "1", "project": None}

    def test_raw_deployment_leaves_the_version_unset_rather_than_guessing(self) -> None:
        fields = fields_from_pod(pod_fixture("kserve-raw-deployment"))
        assert (fields["serving_name"], fields["component"], fields["model_name"]) == (
            "sklearn-iris", "predictor", "sklearn-iris")
        assert "model_version" not in fields

    def test_every_pod_label_is_kept_and_the_container_is_left_to_the_log_path(self) -> None:
        pod = pod_fixture("kserve-serverless-predictor")
        fields = fields_from_pod(pod)
        assert fields["labels"] == pod["metadata"]["labels"]
        assert fields["labels"]["app"] == "sklearn-iris-predictor-00002"
        assert "container_name" not in fields and "namespace" not in fields

    def test_model_version_convention_beats_the_revision_generation(self) -> None:
        pod = pod_fixture("kserve-serverless-predictor")
        pod["metadata"]["annotations"]["serving.kserve.io/model-version"] = "2026.11.1"
        assert fields_from_pod(pod)["model_version"] == "2026.11.1"
        labelled = with_labels(pod_fixture("kserve-raw-deployment"), {"serving.kserve.io/model-version": "7"})
        assert fields_from_pod(labelled)["model_version"] == "7"

    def test_model_name_convention_beats_the_container_argument(self) -> None:
        pod = with_labels(pod_fixture("kserve-transformer"), {"serving.kserve.io/model-name": "digits"})
        assert fields_from_pod(pod)["model_name"] == "digits"

    def test_generation_falls_back_to_the_revision_name_suffix(self) -> None:
        pod = pod_fixture("kserve-serverless-predictor")
        del pod["metadata"]["labels"]["serving.knative.dev/configurationGeneration"]
        pod["metadata"]["labels"]["serving.knative.dev/revision"] = "sklearn-iris-predictor-00014"
        assert fields_from_pod(pod)["model_version"] == "14"

    def test_random_revision_suffixes_of_old_knative_give_no_version(self) -> None:
        pod = pod_fixture("kserve-serverless-predictor")
        del pod["metadata"]["labels"]["serving.knative.dev/configurationGeneration"]
        pod["metadata"]["labels"]["serving.knative.dev/revision"] = "sklearn-iris-predictor-default-62jm7"
        assert "model_version" not in fields_from_pod(pod)

    def test_kfserving_pods_are_recognised_from_their_legacy_labels(self) -> None:
        # KFServing 0.5 (kserve/kserve#1337): serving.kubeflow.org label, "-predictor-default" services
        pod = bare_pod({"app": "sklearn-iris-predictor-default-62jm7",
                        "serving.knative.dev/configuration": "sklearn-iris-predictor-default",
                        "serving.knative.dev/configurationGeneration": "1",
                        "serving.knative.dev/revision": "sklearn-iris-predictor-default-62jm7",
                        "serving.knative.dev/service": "sklearn-iris-predictor-default",
                        "serving.kubeflow.org/inferenceservice": "sklearn-iris"})
        assert model_fields(pod) == {"serving_name": "sklearn-iris", "component": "predictor",
                                     "model_name": "sklearn-iris", "model_version": "1", "project": None}

    def test_raw_deployment_app_label_alone_names_the_serving_and_component(self) -> None:
        pod = bare_pod({"app": "isvc.iris-explain-explainer", "pod-template-hash": "5d8f"})
        fields = fields_from_pod(pod)
        assert (fields["serving_name"], fields["component"], fields["model_name"]) == (
            "iris-explain", "explainer", "iris-explain")

    def test_component_label_of_a_non_kserve_pod_is_not_a_model_component(self) -> None:
        pod = bare_pod({"app": "shop", "component": "frontend"})
        assert fields_from_pod(pod) == {"labels": {"app": "shop", "component": "frontend"}}

    def test_a_pod_without_labels_gets_no_fields(self) -> None:
        assert fields_from_pod(bare_pod()) == {}


# -- Hopsworks ---------------------------------------------------------------------------------------
class TestHopsworks:
    def test_hopsworks_labels_beat_the_kserve_guesses(self) -> None:
        # KServe alone would say model_name=fraud (the isvc) and version 3 (the generation)
        assert model_fields(pod_fixture("hopsworks-predictor")) == {
            "serving_name": "fraud", "component": "predictor", "model_name": "fraud_model",
            "model_version": "4", "project": "fraud_project"}

    def test_project_is_the_namespace_with_dashes_back_to_underscores(self) -> None:
        pod = pod_fixture("hopsworks-predictor")
        pod["metadata"]["namespace"] = "credit-risk-team"
        assert fields_from_pod(pod)["project"] == "credit_risk_team"

    def test_older_hopsworks_serving_name_label_is_understood(self) -> None:
        pod = bare_pod({"serving.hops.works/serving-name": "churn", "serving.hops.works/serving-id": "3",
                        "serving.hops.works/model-name": "churn_model", "serving.hops.works/model-version": 2},
                       namespace="demo")
        assert model_fields(pod) == {"serving_name": "churn", "component": None, "model_name": "churn_model",
                                     "model_version": "2", "project": "demo"}

    def test_project_id_is_not_mistaken_for_the_project_name(self) -> None:
        pod = bare_pod({"serving.hops.works/name": "x", "serving.hops.works/project-id": "119"}, namespace="")
        assert "project" not in fields_from_pod(pod)


# -- Merlin --------------------------------------------------------------------------------------------
class TestMerlin:
    def test_merlin_model_version_comes_from_the_inference_service_name(self) -> None:
        assert model_fields(pod_fixture("merlin-model")) == {
            "serving_name": "credit-score-3-r2", "component": "predictor", "model_name": "credit-score",
            "model_version": "3", "project": "sample"}

    def test_label_prefix_is_detected_not_assumed(self) -> None:
        # Merlin's label prefix is configurable; deployed without one, its labels are bare keys
        pod = bare_pod({"app": "credit-score", "component": "predictor", "environment": "staging",
                        "orchestrator": "merlin", "stream": "risk", "team": "credit",
                        "serving.kserve.io/inferenceservice": "credit-score-12"}, namespace="sample")
        assert model_fields(pod) == {"serving_name": "credit-score-12", "component": "predictor",
                                     "model_name": "credit-score", "model_version": "12", "project": "sample"}

    def test_model_names_ending_in_digits_split_exactly_with_the_app_label(self) -> None:
        pod = with_labels(pod_fixture("merlin-model"), {"gojek.com/app": "fraud-2024-7",
                                                        "serving.kserve.io/inferenceservice": "fraud-2024-7-5-r1"})
        fields = fields_from_pod(pod)
        assert (fields["model_name"], fields["model_version"]) == ("fraud-2024-7", "5")

    @pytest.mark.parametrize(("isvc", "app", "expected"), [
        ("my-model-3", None, ("my-model", "3")),
        ("my-model-3-r2", None, ("my-model", "3")),
        ("model-2-3", None, ("model-2", "3")),
        ("model-2-3", "model-2", ("model-2", "3")),
        ("model-2-3-r11", "model-2", ("model-2", "3")),
        ("model-2-3", "model", ("model-2", "3")),  # "2-3" is no <version>[-r<N>]: split from the name alone
        ("no-version", None, None),
    ])
    def test_merlin_name_split(self, isvc: str, app: str | None, expected: tuple[str, str] | None) -> None:
        assert merlin_model_version(isvc, app) == expected

    def test_batch_job_pods_carry_their_version_in_a_label(self) -> None:
        pod = bare_pod({"gojek.com/app": "credit-score", "gojek.com/component": "batch-job",
                        "gojek.com/orchestrator": "merlin", "gojek.com/team": "credit", "model-id": "21",
                        "model-version-id": "3", "prediction-job-id": "88", "spark-role": "driver"}, namespace="sample")
        assert model_fields(pod) == {"serving_name": None, "component": "batch-job", "model_name": "credit-score",
                                     "model_version": "3", "project": "sample"}

    def test_other_orchestrators_are_not_merlin(self) -> None:
        pod = bare_pod({"gojek.com/orchestrator": "clockwork", "gojek.com/app": "cron"})
        assert set(fields_from_pod(pod)) == {"labels"}


# -- custom mapping ------------------------------------------------------------------------------------
class TestCustomFields:
    def test_custom_mapping_comes_first_and_adds_fields(self) -> None:
        pod = pod_fixture("merlin-model")
        pod["metadata"]["annotations"]["example.com/owner"] = "risk-ml@example.com"
        fields = fields_from_pod(pod, custom_fields={
            "team": "label:gojek.com/team", "owner": "annotation:example.com/owner",
            "model_version": "label:gojek.com/environment", "missing": "label:nope"})
        assert fields["team"] == "credit"
        assert fields["owner"] == "risk-ml@example.com"
        assert fields["model_version"] == "production", "the operator's mapping beats the Merlin preset"
        assert "missing" not in fields
        assert fields["model_name"] == "credit-score", "presets still fill what the mapping left open"

    def test_labels_cannot_be_remapped(self) -> None:
        pod = pod_fixture("kserve-transformer")
        fields = fields_from_pod(pod, custom_fields={"labels": "label:app"})
        assert fields["labels"] == pod["metadata"]["labels"]

    def test_validation_lists_every_bad_entry(self) -> None:
        assert validate_custom_fields({"team": "label:gojek.com/team", "owner": "annotation:x"}) == []
        problems = validate_custom_fields({"a": "gojek.com/team", "b": "env:HOME", "c": "label:", "labels": "label:x"})
        assert len(problems) == 4
        assert any("custom_fields.a" in p for p in problems) and any("reserved" in p for p in problems)


# -- pod shape and exclusion -----------------------------------------------------------------------
def test_containers_and_init_containers_come_from_the_spec() -> None:
    assert containers_of(pod_fixture("kserve-serverless-predictor")) == (
        ("kserve-container", "queue-proxy", "agent"), ("storage-initializer",))
    assert containers_of(pod_fixture("kserve-transformer")) == (("kserve-container", "queue-proxy"), ())


def test_containers_fall_back_to_the_status_when_the_spec_is_missing() -> None:
    pod = pod_fixture("kserve-raw-deployment")
    del pod["spec"]
    assert containers_of(pod) == (("kserve-container",), ("storage-initializer",))


@pytest.mark.parametrize(("labels", "rule", "excluded"), [
    ({"servelog.io/exclude": "true"}, "servelog.io/exclude", True),
    ({"servelog.io/exclude": "True"}, "servelog.io/exclude", True),
    ({"servelog.io/exclude": "false"}, "servelog.io/exclude", False),
    ({}, "servelog.io/exclude", False),
    ({"logging": "off"}, "logging=off", True),
    ({"logging": "on"}, "logging=off", False),
    ({"servelog.io/exclude": "true"}, "", False),
])
def test_exclusion_label(labels: dict[str, str], rule: str, excluded: bool) -> None:
    assert is_excluded(bare_pod(labels), rule) is excluded


def test_pod_metadata_carries_identity_fields_and_deletion() -> None:
    pod = pod_fixture("hopsworks-predictor")
    meta = pod_metadata(pod, deleted=True)
    assert (meta.uid, meta.namespace, meta.name, meta.deleted) == (
        "6f1b2c3d-0000-4000-8000-000000000004", "fraud-project", "fraud-predictor-00003-deployment-7b5d8c9f6-zz9kk", True)
    assert meta.init_containers == ("storage-initializer",)
    assert meta.fields["model_version"] == "4"


def test_numbers_and_booleans_from_hand_written_yaml_become_strings() -> None:
    pod = bare_pod({"serving.hops.works/name": "x", "serving.hops.works/model-version": 4, "canary": True, "gone": None})
    fields = fields_from_pod(pod)
    assert fields["model_version"] == "4"
    assert fields["labels"] == {"serving.hops.works/name": "x", "serving.hops.works/model-version": "4", "canary": "true"}


# -- events ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("event", "expected"), [
    ({"eventTime": None, "series": {"lastObservedTime": "2026-11-24T09:12:07.000001Z"},
      "lastTimestamp": None, "firstTimestamp": None}, "2026-11-24T09:12:07.000001Z"),
    ({"eventTime": None, "lastTimestamp": "2026-11-24T09:12:05Z", "firstTimestamp": None}, "2026-11-24T09:12:05Z"),
    ({"eventTime": "2026-11-24T09:12:01.123456Z", "lastTimestamp": "2026-11-24T09:12:05Z"}, "2026-11-24T09:12:01.123456Z"),
    ({"eventTime": None, "firstTimestamp": None, "metadata": {"creationTimestamp": "2026-11-24T09:12:00Z"}},
     "2026-11-24T09:12:00Z"),
    ({"eventTime": None, "series": None}, None),
])
def test_event_time_takes_the_first_non_null_source(event: dict[str, Any], expected: str | None) -> None:
    assert event_time(event) == expected


# -- properties ------------------------------------------------------------------------------------
label_keys = st.one_of(
    st.sampled_from(["app", "component", "serving.kserve.io/inferenceservice", "serving.hops.works/name",
                     "serving.hops.works/model-version", "gojek.com/orchestrator", "gojek.com/app", "orchestrator",
                     "serving.knative.dev/revision", "serving.knative.dev/configurationGeneration",
                     "serving.knative.dev/service", "model-version-id"]),
    st.text(min_size=1, max_size=20))
label_values = st.one_of(st.sampled_from(["merlin", "predictor", "isvc.a-predictor", "m-1-r2", "00003", "", "x-predictor"]),
                         st.text(max_size=20), st.integers(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(labels=st.dictionaries(label_keys, label_values, max_size=8),
       annotations=st.dictionaries(label_keys, label_values, max_size=4),
       namespace=st.text(max_size=12))
def test_presets_never_fail_and_only_emit_non_empty_strings(labels: dict[str, Any], annotations: dict[str, Any],
                                                            namespace: str) -> None:
    fields = fields_from_pod(bare_pod(labels, namespace=namespace, annotations=annotations))
    for key, value in fields.items():
        if key == "labels":
            assert value == {str(k): ("true" if v is True else "false" if v is False else str(v))
                             for k, v in labels.items()}
        else:
            assert isinstance(value, str) and value, (key, value)


# -- static metadata file --------------------------------------------------------------------------
class StepClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def kubectl_yaml(*pods: dict[str, Any]) -> str:
    """What ``kubectl get pods -o yaml`` prints: a v1 List."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(pods)})


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


class TestStaticMetadata:
    def test_kubectl_yaml_output_is_read_with_the_same_presets(self, tmp_path: Path) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text(kubectl_yaml(pod_fixture("hopsworks-predictor"), pod_fixture("merlin-model")))
        provider = StaticMetadataProvider(path)
        hops = provider.lookup("6f1b2c3d-0000-4000-8000-000000000004")
        assert hops is not None and hops.fields == fields_from_pod(pod_fixture("hopsworks-predictor"))
        assert hops.init_containers == ("storage-initializer",)
        assert provider.lookup(uid_of("merlin-model")) is not None
        assert provider.lookup("nope") is None
        assert provider.synced() and provider.name == "static"
        assert len(provider.pods()) == 2

    @pytest.mark.parametrize("shape", ["items", "list", "single"])
    def test_json_pod_lists_plain_lists_and_single_pods(self, tmp_path: Path, shape: str) -> None:
        pod = pod_fixture("kserve-transformer")
        data = {"items": [pod]} if shape == "items" else [pod] if shape == "list" else pod
        path = tmp_path / "pods.json"
        path.write_text(json.dumps(data))
        found = StaticMetadataProvider(path, custom_fields={"canary": "label:component"}).lookup(uid_of("kserve-transformer"))
        assert found is not None and found.fields["model_name"] == "mnist" and found.fields["canary"] == "transformer"

    def test_an_edited_file_is_reread_at_most_once_a_second(self, tmp_path: Path) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text(kubectl_yaml(pod_fixture("kserve-transformer")))
        clock = StepClock()
        provider = StaticMetadataProvider(path, clock=clock)
        assert provider.lookup(uid_of("merlin-model")) is None
        path.write_text(kubectl_yaml(pod_fixture("kserve-transformer"), pod_fixture("merlin-model")))
        bump_mtime(path)
        clock.now += 0.5
        assert provider.lookup(uid_of("merlin-model")) is None, "checked at most once a second"
        clock.now += 0.5
        assert provider.lookup(uid_of("merlin-model")) is not None

    def test_a_half_written_edit_keeps_the_last_good_contents(self, tmp_path: Path) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text(kubectl_yaml(pod_fixture("kserve-transformer")))
        clock = StepClock()
        provider = StaticMetadataProvider(path, clock=clock)
        path.write_text("items: [ {metadata: ")
        bump_mtime(path)
        clock.now += 1
        assert provider.lookup(uid_of("kserve-transformer")) is not None

    @pytest.mark.parametrize("content", ["items: [ {metadata: ", "just a string", "kind: Service\nspec: {}\n"])
    def test_an_unusable_file_is_a_config_error_at_start(self, tmp_path: Path, content: str) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text(content)
        with pytest.raises(ConfigError):
            StaticMetadataProvider(path)
        with pytest.raises(ConfigError):
            StaticMetadataProvider(tmp_path / "missing.yaml")

    def test_an_empty_file_means_no_pods(self, tmp_path: Path) -> None:
        path = tmp_path / "pods.yaml"
        path.write_text("")
        assert StaticMetadataProvider(path).pods() == []


def uid_of(name: str) -> str:
    return str(pod_fixture(name)["metadata"]["uid"])
