"""Deployment artefacts, checked offline: Kubernetes manifests against the API schemas, compose, Dockerfile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.name.endswith("-patch.yaml"):
            continue
        found += [(f"{path.relative_to(ROOT)}#{i}", doc) for i, doc in enumerate(documents(path))]
    return found


@pytest.mark.parametrize(("where", "manifest"), manifests(), ids=[w for w, _ in manifests()])
def test_manifest_is_valid_against_the_kubernetes_schema(where: str, manifest: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (test extra) not installed")
    kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_kustomizations_reference_files_that_exist() -> None:
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        body = documents(kustomization)[0]
        for entry in body.get("resources", []) + [p["path"] for p in body.get("patches", [])]:
            assert (kustomization.parent / entry).exists(), (kustomization, entry)
        for component in body.get("components", []):
            assert (kustomization.parent / component / "kustomization.yaml").exists()
    assert (DEPLOY / "api-mode" / "kustomization.yaml").exists()


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [m for _, m in manifests() if m["kind"] == kind]


def test_rbac_is_least_privilege() -> None:
    rules = {role["metadata"]["name"]: role["rules"] for role in by_kind("ClusterRole")}
    main = rules["servelog"]
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in main)
    resources = {res for r in main for res in r["resources"]}
    assert resources == {"pods", "events"}, "no secrets, no pods/log outside api-mode"
    assert rules["servelog-pods-log"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    core = documents(DEPLOY / "kustomization.yaml")[0]["resources"]
    assert all("api-mode" not in r for r in core), "pods/log is opt-in"


def test_daemonset_is_hardened_and_node_aware() -> None:
    (daemonset,) = by_kind("DaemonSet")
    spec = daemonset["spec"]
    assert spec["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    pod = spec["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert spec["template"]["metadata"]["labels"]["servelog.io/exclude"] == "true"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["pod-logs"]["readOnly"] is True and not mounts["state"].get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"]["hostPath"]["path"] == "/var/lib/servelog"
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    grace = pod["terminationGracePeriodSeconds"]
    assert int(env["SERVELOG_PIPELINE__SHUTDOWN_TIMEOUT_SECONDS"]["value"]) < grace
    assert not any("PASSWORD" in name and "FILE" not in name for name in env), "secrets come as files"


def test_configmap_settings_are_valid_servelog_settings() -> None:
    from collector.settings import Settings

    (configmap,) = by_kind("ConfigMap")
    data = yaml.safe_load(configmap["data"]["servelog.yaml"])
    Settings.model_validate(data)  # unknown keys or bad values would raise


COMPOSE = ROOT / "docker-compose.yml"


def test_compose_services_and_files() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"opensearch", "dashboards", "setup", "demo", "collector"}
    for name, service in services.items():
        if "image" in service:
            assert re.search(r":\d+\.\d+\.\d+$", service["image"]), f"{name}: pin the image"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: bind to loopback"
    assert services["collector"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    parser = build_parser()
    for name in ("setup", "demo", "collector"):
        parser.parse_args(services[name]["command"])  # every subcommand and flag exists


def test_dockerfile_copies_what_exists_and_runs_servelog() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+?) \S+$", dockerfile, flags=re.MULTILINE):
        for item in source.split():
            assert (ROOT / item).exists(), item
    assert 'ENTRYPOINT ["servelog"]' in dockerfile and "USER 10001" in dockerfile
