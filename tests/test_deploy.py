"""Deployment artefacts, checked offline: the Kubernetes manifests, the Dockerfile and the dependency lock.

Manifests are rendered as ``kubectl apply -k`` would render them (``kubectl kustomize``, when kubectl is
installed; otherwise the raw files of the base), validated against the Kubernetes 1.30 JSON schemas
bundled by ``kubernetes-validate`` (strict: unknown fields fail), and then held to the security
properties deploy/README.md promises.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
API_MODE_OVERLAY = ROOT / "examples" / "api-mode"
K8S_VERSION = "1.30"
READ_VERBS = {"get", "list", "watch"}
KUBECTL = shutil.which("kubectl")

Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kustomization(directory: Path) -> Manifest:
    return documents(directory / "kustomization.yaml")[0]


def raw_base() -> list[Manifest]:
    """The base's resources as written (what kustomize starts from)."""
    return [doc for entry in kustomization(DEPLOY)["resources"] for doc in documents(DEPLOY / entry)]


def render(directory: Path) -> list[Manifest]:
    done = subprocess.run([KUBECTL or "kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    """deploy/ as applied: rendered by kustomize when kubectl exists, else the raw files."""
    return render(DEPLOY) if KUBECTL else raw_base()


@pytest.fixture(scope="module")
def api_mode() -> list[Manifest]:
    if not KUBECTL:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed: the api-mode component cannot be rendered")
    return render(API_MODE_OVERLAY)


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def pod_spec(manifests: list[Manifest], kind: str) -> Manifest:
    return one(manifests, kind)["spec"]["template"]["spec"]


def collector(manifests: list[Manifest]) -> Manifest:
    (container,) = pod_spec(manifests, "DaemonSet")["containers"]
    return container


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


# -- schema ------------------------------------------------------------------------------------------

def every_manifest_file() -> list[Path]:
    """Every Kubernetes object file we ship (patches are partial objects: validated after rendering)."""
    files = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml" and not p.name.endswith("-patch.yaml"))
    return [*files, ROOT / "examples" / "secret.yaml"]


def validate(manifest: Manifest) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (a test extra, bundles the schemas) is not installed")
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", every_manifest_file(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_manifest_is_valid_against_the_kubernetes_schema(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        validate(doc)


def test_rendered_base_and_api_mode_are_valid_against_the_kubernetes_schema(base: list[Manifest],
                                                                            api_mode: list[Manifest]) -> None:
    for manifest in base + api_mode:
        validate(manifest)


def test_the_schema_check_rejects_a_misspelt_field(base: list[Manifest]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    broken = json.loads(json.dumps(one(base, "DaemonSet")))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


# -- kustomize structure -------------------------------------------------------------------------------

def test_kustomizations_reference_files_that_exist_and_no_manifest_is_orphaned() -> None:
    referenced: set[Path] = set()
    for path in [*DEPLOY.rglob("kustomization.yaml"), API_MODE_OVERLAY / "kustomization.yaml"]:
        body = documents(path)[0]
        for entry in body.get("resources", []) + [p["path"] for p in body.get("patches", [])]:
            target = (path.parent / entry).resolve()
            assert target.exists(), (path, entry)
            referenced.add(target)
        for component in body.get("components", []):
            target = (path.parent / component).resolve()
            assert documents(target / "kustomization.yaml")[0]["kind"] == "Component"
    shipped = {p.resolve() for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert shipped <= referenced, f"not in any kustomization: {sorted(map(str, shipped - referenced))}"
    assert "components" not in kustomization(DEPLOY), "API mode is opt-in"


def test_rendering_puts_everything_namespaced_in_the_servelog_namespace(base: list[Manifest]) -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for manifest in base:
        if manifest["kind"] not in cluster_scoped:
            assert manifest["metadata"]["namespace"] == "servelog", manifest["metadata"]["name"]


# -- RBAC ----------------------------------------------------------------------------------------------

def rules(manifests: list[Manifest]) -> dict[str, list[Manifest]]:
    return {m["metadata"]["name"]: m["rules"] for m in manifests if m["kind"] in {"ClusterRole", "Role"}}


def test_rbac_grants_only_reads_of_pods_and_never_secrets(base: list[Manifest]) -> None:
    granted = rules(base)
    assert set(granted) == {"servelog", "servelog-events"}
    for rules_ in granted.values():
        for rule in rules_:
            assert set(rule["verbs"]) <= READ_VERBS, rule
            assert "*" not in rule["resources"] and "*" not in rule["verbs"] and "*" not in rule["apiGroups"]
    assert all(rule["apiGroups"] == [""] for rule in granted["servelog"])
    resources = {r for rule in granted["servelog"] for r in rule["resources"]}
    assert resources == {"pods"}, "no secrets, no pods/log outside api-mode; events are the history's"
    verbs = {(r, v) for rule in granted["servelog"] for r in rule["resources"] for v in rule["verbs"]}
    assert verbs == {("pods", v) for v in READ_VERBS}
    binding = one(base, "ClusterRoleBinding", "servelog")
    assert binding["roleRef"]["name"] == "servelog"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "servelog", "namespace": "servelog"}]
    assert pod_spec(base, "DaemonSet")["serviceAccountName"] == "servelog"


def test_pods_log_is_granted_only_by_the_api_mode_component(base: list[Manifest], api_mode: list[Manifest]) -> None:
    assert not any("pods/log" in rule["resources"] for rs in rules(base).values() for rule in rs)
    granted = rules(api_mode)
    assert granted["servelog-pods-log"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    assert granted["servelog"] == rules(base)["servelog"]
    binding = one(api_mode, "ClusterRoleBinding", "servelog-pods-log")
    assert binding["roleRef"]["name"] == "servelog-pods-log"
    assert binding["subjects"][0]["name"] == pod_spec(api_mode, "DaemonSet")["serviceAccountName"]


# -- DaemonSet -----------------------------------------------------------------------------------------

def test_log_directory_is_mounted_read_only_and_only_checkpoints_are_writable(base: list[Manifest]) -> None:
    spec = pod_spec(base, "DaemonSet")
    host_paths = {v["name"]: v["hostPath"] for v in spec["volumes"] if "hostPath" in v}
    assert host_paths == {"pod-logs": {"path": "/var/log/pods", "type": "Directory"},
                          "state": {"path": "/var/lib/servelog", "type": "DirectoryOrCreate"}}
    mounts = {m["name"]: m for m in collector(base)["volumeMounts"]}
    assert mounts["pod-logs"]["readOnly"] is True and mounts["pod-logs"]["mountPath"] == "/var/log/pods"
    assert not mounts["state"].get("readOnly")
    writable = {m["mountPath"] for m in mounts.values() if not m.get("readOnly")}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all("emptyDir" in volumes[m["name"]] for m in mounts.values()
               if m["mountPath"] in writable and m["name"] != "state"), "only the checkpoint hostPath is writable"


def test_collector_container_is_hardened(base: list[Manifest]) -> None:
    spec = pod_spec(base, "DaemonSet")
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = collector(base)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}, "uid 0 reads the files as their owner: no capability added"
    assert security.get("privileged") is False
    assert security["runAsUser"] == 0
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")


def test_daemonset_never_runs_two_collectors_on_a_node_and_runs_on_every_node(base: list[Manifest]) -> None:
    daemonset = one(base, "DaemonSet")
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                   "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}, "tolerating every taint must not mean Windows nodes"
    assert spec["priorityClassName"] == "system-node-critical"
    quota = one(base, "ResourceQuota")
    (scope,) = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert scope["scopeName"] == "PriorityClass" and spec["priorityClassName"] in scope["values"]


def test_collector_knows_its_node_pod_and_address_from_the_downward_api(base: list[Manifest]) -> None:
    container = collector(base)
    env = env_of(container)
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    names = [e["name"] for e in container["env"]]
    assert env["SERVELOG_TELEMETRY__LISTEN"]["value"] == "$(POD_IP):9880"
    assert names.index("POD_IP") < names.index("SERVELOG_TELEMETRY__LISTEN"), "$(VAR) expands only earlier variables"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert env["SERVELOG_CONFIG"]["value"] in mounts, "SERVELOG_CONFIG points at the mounted settings file"


def test_probes_hit_the_health_endpoints_on_the_telemetry_port(base: list[Manifest]) -> None:
    container = collector(base)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen_port = int(env_of(container)["SERVELOG_TELEMETRY__LISTEN"]["value"].rsplit(":", 1)[1])
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert ports[container[probe]["httpGet"]["port"]] == listen_port
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}


def test_collector_and_setup_pods_carry_the_exclude_label_the_collector_honours(base: list[Manifest]) -> None:
    from collector.settings import KubernetesSettings

    label = KubernetesSettings().exclude_label
    for kind in ("DaemonSet", "Job", "Deployment"):
        assert one(base, kind)["spec"]["template"]["metadata"]["labels"][label] == "true"


def test_settings_file_is_valid_and_drains_within_the_grace_period(base: list[Manifest]) -> None:
    from collector.settings import Settings

    data = yaml.safe_load(one(base, "ConfigMap")["data"]["servelog.yaml"])
    settings = Settings.model_validate(data)  # unknown keys or bad values raise
    grace = pod_spec(base, "DaemonSet")["terminationGracePeriodSeconds"]
    assert grace == 30 and settings.pipeline.shutdown_timeout_seconds < grace
    assert settings.opensearch.password is None, "no secret in the ConfigMap"


def test_credentials_are_files_from_the_secret_never_plain_environment(base: list[Manifest]) -> None:
    data = yaml.safe_load(one(base, "ConfigMap")["data"]["servelog.yaml"])
    (secret,) = documents(ROOT / "examples" / "secret.yaml")
    for kind in ("DaemonSet", "Job", "Deployment"):
        spec = pod_spec(base, kind)
        (container,) = spec["containers"]
        secret_volumes = [v for v in spec["volumes"] if "secret" in v]
        assert [v["secret"]["secretName"] for v in secret_volumes] == [secret["metadata"]["name"]]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == secret_volumes[0]["name"]]
        assert mount["readOnly"] is True and mount["mountPath"] == "/etc/servelog/secrets"
        for setting in ("password_file", "ca_file"):
            path = Path(data["opensearch"][setting])
            assert path.parent == Path(mount["mountPath"]) and path.name in secret["stringData"]
        for entry in container["env"]:
            assert "value" not in entry or "PASSWORD" not in entry["name"], entry
            if "secretKeyRef" in entry.get("valueFrom", {}):
                assert entry["name"] == "SERVELOG_OPENSEARCH__USERNAME", "only the user name comes as a variable"
        assert "--password" not in " ".join(container.get("args", []))


def test_setup_job_runs_setup_as_non_root_without_an_api_token(base: list[Manifest]) -> None:
    spec = pod_spec(base, "Job")
    (container,) = spec["containers"]
    assert container["args"][0] == "setup"
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["image"] == collector(base)["image"]
    assert env_of(container)["SERVELOG_CONFIG"] == env_of(collector(base))["SERVELOG_CONFIG"]


def test_image_tag_is_the_package_version(base: list[Manifest]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert collector(base)["image"] == f"ghcr.io/servelog/servelog:{version}"
    assert collector(base)["args"] == ["run"]


def test_manifest_commands_parse_with_the_cli(base: list[Manifest]) -> None:
    parser = build_parser()
    for kind in ("DaemonSet", "Job", "Deployment"):
        (container,) = pod_spec(base, kind)["containers"]
        parser.parse_args(container["args"])


def test_network_policy_admits_only_the_metrics_port_of_the_collector(base: list[Manifest]) -> None:
    policy = one(base, "NetworkPolicy", "servelog-metrics")["spec"]
    labels = one(base, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 9880, "protocol": "TCP"}]
    assert rule["from"], "never from everywhere"


# -- servelog events (the deployment history) ----------------------------------------------------------

def events_container(manifests: list[Manifest]) -> Manifest:
    (container,) = pod_spec(manifests, "Deployment")["containers"]
    return container


def test_history_rbac_reads_events_of_both_apis_pods_and_inferenceservices_and_nothing_else(base: list[Manifest]) -> None:
    granted = {(group, resource, verb) for rule in rules(base)["servelog-events"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    wanted = {("", "events"), ("", "pods"), ("events.k8s.io", "events"), ("serving.kserve.io", "inferenceservices")}
    assert granted == {(g, r, v) for g, r in wanted for v in READ_VERBS}
    binding = one(base, "ClusterRoleBinding", "servelog-events")
    assert binding["roleRef"]["name"] == "servelog-events"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "servelog-events", "namespace": "servelog"}]
    spec = pod_spec(base, "Deployment")
    assert spec["serviceAccountName"] == "servelog-events" and spec["automountServiceAccountToken"] is True
    assert one(base, "ServiceAccount", "servelog-events")["metadata"]["namespace"] == "servelog"


def test_one_events_deployment_serves_the_cluster_and_a_second_replica_is_safe(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "servelog-events")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}, \
        "an overlap of two pods is harmless (deterministic ids), a gap is not"
    container = events_container(base)
    assert container["args"] == ["events"] and container["image"] == collector(base)["image"]
    spec = pod_spec(base, "Deployment")
    assert not [v for v in spec["volumes"] if "hostPath" in v], "no node state: any node, any number of replicas"
    assert not spec.get("tolerations") and not spec.get("nodeSelector")


def test_events_deployment_is_hardened_and_meets_the_restricted_standard(base: list[Manifest]) -> None:
    spec = pod_spec(base, "Deployment")
    security = {**spec["securityContext"], **events_container(base)["securityContext"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True and security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m for m in events_container(base)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path, mount in mounts.items():
        if not mount.get("readOnly"):
            assert "emptyDir" in volumes[mount["name"]], path
    state = env_of(events_container(base))["SERVELOG_STATE_DIR"]["value"]
    assert state in mounts and "emptyDir" in volumes[mounts[state]["name"]]


def test_events_probes_and_metrics_port_are_fenced_like_the_collectors(base: list[Manifest]) -> None:
    container = events_container(base)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = env_of(container)
    assert env["SERVELOG_TELEMETRY__LISTEN"]["value"] == "$(POD_IP):9880"
    names = [e["name"] for e in container["env"]]
    assert names.index("POD_IP") < names.index("SERVELOG_TELEMETRY__LISTEN")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path and ports[container[probe]["httpGet"]["port"]] == 9880
    policy = one(base, "NetworkPolicy", "servelog-events-metrics")["spec"]
    labels = pod_spec_labels(base, "Deployment")
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 9880, "protocol": "TCP"}] and rule["from"]


def pod_spec_labels(manifests: list[Manifest], kind: str) -> dict[str, str]:
    return dict(one(manifests, kind)["spec"]["template"]["metadata"]["labels"])


def test_the_settings_file_is_valid_for_servelog_events_too(base: list[Manifest]) -> None:
    from collector.settings import Settings

    data = yaml.safe_load(one(base, "ConfigMap")["data"]["servelog.yaml"])
    settings = Settings.model_validate({**data, "state_dir": "/var/lib/servelog-events"})
    assert settings.history.from_files is None, "the cluster's API, not files"
    assert pod_spec(base, "Deployment")["terminationGracePeriodSeconds"] > settings.pipeline.shutdown_timeout_seconds


# -- API mode --------------------------------------------------------------------------------------------

def test_api_mode_drops_every_hostpath_and_root_and_streams_from_the_api(api_mode: list[Manifest]) -> None:
    spec = pod_spec(api_mode, "DaemonSet")
    assert not [v for v in spec["volumes"] if "hostPath" in v]
    container = collector(api_mode)
    assert "/var/log/pods" not in {m["mountPath"] for m in container["volumeMounts"]}
    assert env_of(container)["SERVELOG_SOURCE"]["value"] == "kubernetes"
    # The "restricted" Pod Security Standard, which the namespace now enforces.
    assert one(api_mode, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    security = {**spec["securityContext"], **container["securityContext"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    allowed = {"configMap", "secret", "emptyDir", "projected", "downwardAPI", "persistentVolumeClaim", "csi", "ephemeral"}
    assert all(set(v) - {"name"} <= allowed for v in spec["volumes"])


def test_base_namespace_declares_the_privileged_level_hostpath_needs(base: list[Manifest]) -> None:
    assert one(base, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


# -- examples ----------------------------------------------------------------------------------------------

def test_example_settings_file_is_valid_and_mentions_every_setting() -> None:
    from pydantic import BaseModel

    from collector.settings import Settings

    path = ROOT / "examples" / "servelog.yaml"
    Settings.model_validate(yaml.safe_load(path.read_text()))
    text = path.read_text()
    sections = dict(re.findall(r"^(\w+):\n((?:[ #].*\n|\n)*)", text, flags=re.MULTILINE))
    missing = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += [f"{name}.{leaf}" for leaf in annotation.model_fields
                        if not re.search(rf"^\s+(# )?{leaf}:", sections.get(name, ""), flags=re.MULTILINE)]
        elif not re.search(rf"^(# )?{name}:", text, flags=re.MULTILINE):
            missing.append(name)
    assert not missing, f"examples/servelog.yaml lacks {missing}"


# -- Dockerfile ------------------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def dockerignore_allows(path: str) -> bool:
    """Docker's rule for our allow-list: the last matching pattern wins; a pattern matches a path or a parent."""
    allowed = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, p) for p in prefixes):
            allowed = negate
    return allowed


def test_dockerfile_copies_only_what_exists_and_the_context_keeps() -> None:
    sources = [item for line in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.MULTILINE) for item in line.split()]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), f".dockerignore drops {source}"
    assert not dockerignore_allows("tests/test_deploy.py") and not dockerignore_allows(".git/config")
    assert not dockerignore_allows("collector/__pycache__/cli.cpython-311.pyc")


def test_dockerfile_is_multi_stage_pinned_and_runs_servelog_as_non_root() -> None:
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-\w+$", DOCKERFILE, flags=re.MULTILINE)
    assert re.search(r"^ARG RUST_IMAGE=rust:\d+\.\d+-slim-\w+$", DOCKERFILE, flags=re.MULTILINE)
    # the Rust toolchain's image, the build stage (it builds the compiled fast path), the final stage
    assert len(re.findall(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)) == 3
    assert "native.available()" in DOCKERFILE.split("\nFROM ${PYTHON_IMAGE} AS build", 1)[1].rsplit("\nFROM ", 1)[0]
    assert "--constraint requirements.lock" in DOCKERFILE and "--requirement requirements.lock" in DOCKERFILE
    assert 'ENTRYPOINT ["servelog"]' in DOCKERFILE
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=build /opt/servelog /opt/servelog" in final_stage and "COPY collector" not in final_stage
    assert "cargo" not in final_stage and "rustup" not in final_stage  # no toolchain in the image that runs


@pytest.fixture
def health_server() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_dockerfile_healthcheck_asks_healthz_where_the_collector_listens(health_server: tuple[int, list[str]]) -> None:
    port, seen = health_server
    healthcheck = re.search(r"^HEALTHCHECK (?:.*\\\n)*\s*CMD (\[.*\])$", DOCKERFILE, flags=re.MULTILINE)
    assert healthcheck, "the image has a HEALTHCHECK in exec form"
    command = json.loads(healthcheck[1])
    assert command[0] == "python"

    def check(listen: str | None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "SERVELOG_TELEMETRY__LISTEN"}
        if listen is not None:
            env["SERVELOG_TELEMETRY__LISTEN"] = listen
        return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False).returncode

    assert check(f"0.0.0.0:{port}") == 0
    assert check(f"127.0.0.1:{port}") == 0
    assert seen == ["/healthz", "/healthz"]
    assert check("127.0.0.1:1") != 0, "nothing listening: unhealthy"


# -- dependency lock ---------------------------------------------------------------------------------------

def lock_pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def lock_module() -> Any:
    spec = importlib.util.spec_from_file_location("servelog_lock", DEPLOY / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_pins_every_runtime_dependency_within_the_declared_ranges() -> None:
    from packaging.utils import canonicalize_name

    pins = lock_pins()
    for requirement in lock_module().project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement.specifier}"


def test_lock_is_closed_under_the_requirements_of_its_pins() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.utils import canonicalize_name

    pins = lock_pins()
    lock = lock_module()
    checked = 0
    for name, pinned in pins.items():
        try:
            if version(name) != pinned:
                continue  # another version installed here: its metadata says nothing about the pinned one
        except PackageNotFoundError:
            continue
        checked += 1
        for requirement in lock.requirements_of(name):
            needed = canonicalize_name(requirement.name)
            assert needed in pins, f"{name} needs {requirement.name}, which requirements.lock does not pin"
            assert requirement.specifier.contains(pins[needed], prereleases=True), (name, requirement, pins[needed])
    if not checked:
        pytest.skip("no pinned version is installed here: regenerate the lock where the tests run")
