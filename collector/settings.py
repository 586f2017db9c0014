"""Typed settings: one validated, frozen object built at start from file, environment and flags.

Precedence, lowest to highest: defaults < YAML file (``--config`` / ``SERVELOG_CONFIG``) <
``SERVELOG_*`` environment variables (nested with ``__``, e.g. ``SERVELOG_OPENSEARCH__URL``; a list
or map setting is JSON there, a list also ``a,b``) < command-line flags. Every problem is reported
at once (pydantic collects them), as a :class:`~collector.errors.ConfigError`; for ``servelog run``
that includes what the settings point at (:mod:`collector.preflight`: log root, state directory,
telemetry port). Secrets are :class:`pydantic.SecretStr` (masked in repr and
logs) and come from the environment or from files (``*_file``), never from argv: there is no flag
for a secret.

Each field's description is the documentation: ``servelog run --help`` and the README's
configuration reference are generated from them (``servelog config-reference``).
"""

from __future__ import annotations

import copy
import json
import os
import socket
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from collector.errors import ConfigError
from collector.model import DEFAULT_DEADLETTER_INDEX, DEFAULT_LOG_INDEX
from collector.preflight import listen_format_problem, run_problems
from collector.sources.history.settings import HistorySettings

MiB = 1024 * 1024


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenSearchSettings(_Group):
    """Where and how documents are sent."""

    url: str = Field("http://localhost:9200", description="OpenSearch URL (http or https).")
    username: str | None = Field(None, description="Basic-auth user name.")
    password: SecretStr | None = Field(
        None, description="Basic-auth password (env SERVELOG_OPENSEARCH__PASSWORD; prefer password_file)."
    )
    password_file: Path | None = Field(None, description="File holding the basic-auth password; re-read when it changes.")
    ca_file: Path | None = Field(None, description="CA bundle for verifying the server certificate.")
    verify_certs: bool = Field(True, description="Verify the server certificate and host name.")
    client_cert: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    client_key: Path | None = Field(None, description="Client key (PEM) for mutual TLS.")
    aws_region: str | None = Field(None, description="Sign requests with AWS SigV4 for this region.")
    aws_service: Literal["es", "aoss"] = Field("es", description="SigV4 service: es (managed) or aoss (Serverless).")
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one HTTP request.")
    index: str = Field(
        DEFAULT_LOG_INDEX,
        description="Target index of log documents; {namespace} and {date} (the line's UTC day) are replaced.",
    )
    deadletter_index: str = Field(DEFAULT_DEADLETTER_INDEX, description="Index of dead-lettered lines; {date}.")
    bulk_max_docs: int = Field(5000, ge=1, le=100_000, description="Most documents in one _bulk request.")
    bulk_max_bytes: int = Field(
        8 * MiB, ge=64 * 1024, le=90 * MiB, description="Most bytes in one _bulk request (OpenSearch advises 5-15 MB)."
    )
    flush_interval_seconds: float = Field(1.0, gt=0, description="Send a partial batch after this long.")
    workers: int = Field(2, ge=1, le=16, description="Concurrent _bulk requests in flight.")
    retry_initial_seconds: float = Field(0.5, gt=0, description="First retry backoff (exponential, with jitter).")
    retry_max_seconds: float = Field(30.0, gt=0, description="Backoff ceiling between two attempts.")
    once_give_up_seconds: float = Field(
        300.0, gt=0, description="--once: give up (exit 3) after this long without delivery progress; the daemon retries "
        "for as long as it runs.",
    )

    @model_validator(mode="after")
    def _check(self) -> OpenSearchSettings:
        problems = []
        if not self.url.startswith(("http://", "https://")):
            problems.append(f"opensearch.url must start with http:// or https://, got {self.url!r}")
        if "{date}" not in self.index:
            problems.append("opensearch.index must contain {date} so a line's index is a function of its timestamp")
        if (self.client_cert is None) != (self.client_key is None):
            problems.append("opensearch.client_cert and opensearch.client_key go together")
        if self.password is not None and self.password_file is not None:
            problems.append("set opensearch.password or opensearch.password_file, not both")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PipelineSettings(_Group):
    """How lines are read, grouped and held."""

    max_line_bytes: int = Field(MiB, ge=1024, le=64 * MiB, description="Longer lines are cut, marked truncated.")
    multiline: bool = Field(True, description="Group Python tracebacks into one document.")
    multiline_max_lines: int = Field(500, ge=2, description="Most physical lines in one grouped document.")
    partial_flush_seconds: float = Field(
        10.0, gt=0, description="Flush a trailing P (partial) line or open traceback after this long idle."
    )
    queue_batches: int = Field(4, ge=1, le=64, description="Batches waiting for a sender before reading pauses.")
    read_chunk_bytes: int = Field(MiB, ge=4096, description="Bytes read from a file at a time.")
    scan_interval_seconds: float = Field(1.0, gt=0, description="How often the log root is scanned for new files.")
    checkpoint_interval_seconds: float = Field(1.0, gt=0, description="How often acknowledged positions are saved.")
    shutdown_timeout_seconds: float = Field(20.0, gt=0, description="SIGTERM: most time spent draining in-flight batches.")
    exclude_containers: tuple[str, ...] = Field(("queue-proxy",), description="Containers never collected.")
    include_namespaces: tuple[str, ...] = Field((), description="Collect only these namespaces (empty: all).")
    exclude_namespaces: tuple[str, ...] = Field((), description="Never collect these namespaces.")
    native: Literal["auto", "on", "off"] = Field(
        "auto", description="The compiled fast path: auto = when built, on = required (start fails without it), "
        "off = the pure-Python reference path.",
    )

    @field_validator("native")
    @classmethod
    def _check_native(cls, value: str) -> str:
        from collector.transforms import native  # noqa: PLC0415 - keeps settings import-light

        if value == "on" and not native.available():
            raise ValueError(f"pipeline.native is on but {native.why_unavailable()}")
        return value


class KubernetesSettings(_Group):
    """Pod metadata from a node-scoped watch, and the API streaming source."""

    enabled: Literal["auto", "true", "false"] = Field(
        "auto", description="Watch pods for metadata: auto = when running in a cluster."
    )
    kubeconfig: Path | None = Field(None, description="Kubeconfig file (outside a cluster).")
    label_selector: str = Field("", description="Only pods matching this selector (empty: all pods of the node).")
    exclude_label: str = Field("servelog.io/exclude", description="Pods with this label set to true are skipped.")
    deleted_pod_ttl_seconds: float = Field(300.0, ge=0, description="Keep a deleted pod's metadata this long.")
    metadata_wait_seconds: float = Field(5.0, ge=0, description="Wait this long for an unknown pod before path metadata.")
    watch_timeout_seconds: int = Field(300, ge=10, description="Server-side timeout of one watch request.")
    log_request_timeout_seconds: float = Field(60.0, gt=0, description="API source: read timeout of a pods/log stream.")
    log_stream_lifetime_seconds: float = Field(3600.0, gt=0, description="API source: reconnect streams this often.")
    custom_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Extra mapping: document field -> 'label:<key>' or 'annotation:<key>'.",
    )


    @model_validator(mode="after")
    def _check(self) -> KubernetesSettings:
        from collector.kube.presets import validate_custom_fields  # noqa: PLC0415 - keeps settings import-light

        if problems := validate_custom_fields(self.custom_fields):
            raise ValueError("; ".join(problems))
        return self


class TelemetrySettings(_Group):
    """Logs, metrics and health endpoints."""

    listen: str = Field(
        "127.0.0.1:9880",
        description="host:port of /metrics, /healthz, /readyz ('' disables); a dry run (output=stdout) listens only when set.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Collector log level.")
    progress: Literal["auto", "always", "never"] = Field("auto", description="Progress display on --once runs.")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if problem := listen_format_problem(value):
            raise ValueError(problem)
        return value


class Settings(BaseModel):
    """All of servelog's settings."""

    # Sources (file, SERVELOG_* environment, flags) are merged by load_settings, in one
    # explicit order; the model only validates.
    model_config = ConfigDict(extra="forbid", frozen=True)

    log_root: Path = Field(Path("/var/log/pods"), description="Kubelet pod log directory.")
    state_dir: Path = Field(Path("/var/lib/servelog"), description="Checkpoints and dead-letter files live here.")
    node_name: str = Field(
        default_factory=lambda: os.environ.get("NODE_NAME") or socket.gethostname(),
        description="This node's name (downward API NODE_NAME).",
    )
    source: Literal["files", "kubernetes"] = Field("files", description="Read kubelet files or stream pods/log.")
    output: Literal["opensearch", "stdout"] = Field("opensearch", description="stdout prints NDJSON (a dry run).")
    once: bool = Field(False, description="Index what exists now, then exit (backfill).")
    metadata_file: Path | None = Field(None, description="Static pod metadata (YAML/JSON), for runs outside a cluster.")
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)  # type: ignore[arg-type]
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)  # type: ignore[arg-type]
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)  # type: ignore[arg-type]
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)  # type: ignore[arg-type]
    history: HistorySettings = Field(default_factory=HistorySettings)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _dry_run_listens_only_when_asked(cls, data: Any) -> Any:
        """output=stdout is a dry run: it binds no port unless telemetry.listen was set."""
        if not isinstance(data, dict) or data.get("output") != "stdout":
            return data
        telemetry = data.get("telemetry", {})
        if isinstance(telemetry, dict) and "listen" not in telemetry:
            return {**data, "telemetry": {**telemetry, "listen": ""}}
        return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# SERVELOG_* variables that are not settings: the file to read, where assets live, test targets.
_NOT_SETTINGS = frozenset({"SERVELOG_CONFIG", "SERVELOG_ASSETS_DIR"})


def _annotation(path: list[str]) -> Any:
    """The type of the setting at ``path`` (None when there is no such setting)."""
    model: type[BaseModel] = Settings
    for part in path[:-1]:
        info = model.model_fields.get(part)
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return None
        model = info.annotation
    info = model.model_fields.get(path[-1])
    return None if info is None else info.annotation


def _collection_kind(annotation: Any) -> Literal["list", "map"] | None:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return "list"
    return "map" if origin is dict else None


def env_value(key: str, value: str, kind: Literal["list", "map"] | None) -> Any:
    """One variable's value: lists and maps as JSON (a list also as ``a,b``); the rest stays text.

    Raises ValueError with a message naming the variable when a list or map cannot be read.
    """
    if kind is None:
        return value
    text = value.strip()
    if kind == "list" and not text.startswith(("[", "{", '"')):  # not JSON: a,b
        return [v.strip() for v in text.split(",") if v.strip()]
    if not text:
        return [] if kind == "list" else {}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{key}: not valid JSON ({exc}); e.g. {_ENV_EXAMPLES[kind]}") from exc
    wanted = list if kind == "list" else dict
    if not isinstance(parsed, wanted):
        raise ValueError(f"{key}: expected a JSON {'array' if kind == 'list' else 'object'}, e.g. {_ENV_EXAMPLES[kind]}")
    return parsed


_ENV_EXAMPLES = {"list": """'["queue-proxy","agent"]'""", "map": """'{"team":"label:team"}'"""}


def _env_overrides(environ: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """SERVELOG_A__B=v as {"a": {"b": v}}: lists and maps parsed from JSON, the rest strings for pydantic."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("SERVELOG_") or key in _NOT_SETTINGS or key.startswith("SERVELOG_E2E_"):
            continue
        path = key[len("SERVELOG_"):].lower().split("__")
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # SERVELOG_X=v and SERVELOG_X__Y=w
                problems.append(f"{key}: {'.'.join(path[:depth + 1])} is a setting, not a group of settings")
                break
            node = child
        else:
            try:
                node[path[-1]] = env_value(key, value, _collection_kind(_annotation(path)))
            except ValueError as exc:
                problems.append(str(exc))
    return out


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    for_run: bool = False,
) -> Settings:
    """Build and validate the settings; raise ConfigError listing every problem at once.

    ``for_run``: also check what ``servelog run`` will use at start (:func:`collector.preflight.run_problems`:
    the log root, the state directory, the telemetry port), reported with the other problems.
    """
    environ = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    data: dict[str, Any] = {}
    config_file = config_file or (Path(environ["SERVELOG_CONFIG"]) if environ.get("SERVELOG_CONFIG") else None)
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"config file {config_file}: {exc}")
            loaded = {}
        if not isinstance(loaded, dict):
            problems.append(f"config file {config_file}: expected a mapping at the top level")
            loaded = {}
        data = loaded
    data = _deep_merge(data, _env_overrides(environ, problems))
    data = _deep_merge(data, overrides or {})
    settings, invalid = _validate(data)
    problems.extend(invalid)
    if settings is not None:
        problems.extend(_check_paths(settings))
        if for_run:
            problems.extend(run_problems(settings))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _validate(data: dict[str, Any]) -> tuple[Settings | None, list[str]]:
    """The settings and every validation problem.

    With problems, the settings returned are a best effort (each invalid key dropped, so its default
    applies) for the checks that follow to still run: every problem is reported in one go.
    """
    try:
        return Settings.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = []
    pruned = copy.deepcopy(data)
    for err in errors:
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        _drop(pruned, err["loc"])
    try:
        return Settings.model_validate(pruned), problems
    except ValidationError:
        return None, problems


def _drop(data: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    """Remove the key an error points at (a list's whole key for an item's error)."""
    node = data
    for depth, part in enumerate(loc):
        if not isinstance(part, str) or part not in node:
            return
        if depth == len(loc) - 1 or not isinstance(node[part], dict):
            del node[part]
            return
        node = node[part]


def _check_paths(settings: Settings) -> list[str]:
    problems = []
    os_settings = settings.opensearch
    for name in ("password_file", "ca_file", "client_cert", "client_key"):
        path = getattr(os_settings, name)
        if path is not None and not Path(path).is_file():
            problems.append(f"opensearch.{name}: no such file {path}")
    if settings.metadata_file is not None and not settings.metadata_file.is_file():
        problems.append(f"metadata_file: no such file {settings.metadata_file}")
    return problems


def read_secret(value: SecretStr | None, file: Path | None) -> str | None:
    """The secret's current value: from its file (re-read on every call) or from the setting."""
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    return value.get_secret_value() if value is not None else None


def settings_reference() -> str:
    """A Markdown table of every setting: key, environment variable, default, description."""
    rows = ["| key | environment | default | description |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
                continue
            key = f"{prefix}{name}"
            env = f"`SERVELOG_{key.upper().replace('.', '__')}`"
            kind = _collection_kind(annotation)
            if kind is not None:
                env += " (JSON array)" if kind == "list" else " (JSON object)"
            value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
            if name == "node_name":
                default = "(computed)"
            elif kind is not None:
                default = json.dumps(list(value) if kind == "list" else value)
            else:
                default = str(value) if isinstance(value, Path) else repr(value)
            rows.append(f"| `{key}` | {env} | `{default}` | {info.description or ''} |")

    walk(Settings, "")
    note = (
        "\nIn the environment, a list is a JSON array (`SERVELOG_PIPELINE__EXCLUDE_CONTAINERS="
        + _ENV_EXAMPLES["list"] + "`; a plain `queue-proxy,agent` is read as a comma-separated list) and a map a JSON "
        "object (`SERVELOG_KUBERNETES__CUSTOM_FIELDS=" + _ENV_EXAMPLES["map"] + "`); a value that does not parse "
        "is a settings error.\n"
    )
    return "\n".join(rows) + "\n" + note
