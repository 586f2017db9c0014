"""Settings a user hits in the first hour: lists and maps in the environment, --listen, start-time checks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.pipeline.checkpoints import CheckpointStore
from collector.preflight import listen_format_problem, split_listen
from collector.settings import load_settings, settings_reference


# -- lists and maps from the environment ------------------------------------------------------------
def test_a_list_is_given_in_the_environment_as_json_or_comma_separated() -> None:
    as_json = load_settings(environ={"SERVELOG_PIPELINE__EXCLUDE_CONTAINERS": '["queue-proxy","agent"]'})
    assert as_json.pipeline.exclude_containers == ("queue-proxy", "agent")
    as_text = load_settings(environ={"SERVELOG_PIPELINE__INCLUDE_NAMESPACES": "team-a, team-b"})
    assert as_text.pipeline.include_namespaces == ("team-a", "team-b")
    empty = load_settings(environ={"SERVELOG_PIPELINE__EXCLUDE_CONTAINERS": "[]"})
    assert empty.pipeline.exclude_containers == ()


def test_a_map_is_given_in_the_environment_as_a_json_object() -> None:
    settings = load_settings(environ={"SERVELOG_KUBERNETES__CUSTOM_FIELDS": '{"team":"label:team","owner":"annotation:o"}'})
    assert settings.kubernetes.custom_fields == {"team": "label:team", "owner": "annotation:o"}


def test_unreadable_json_is_a_settings_error_naming_the_variable_with_the_other_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={
            "SERVELOG_KUBERNETES__CUSTOM_FIELDS": "team=label:team",
            "SERVELOG_PIPELINE__EXCLUDE_NAMESPACES": '["unclosed"',
            "SERVELOG_PIPELINE__EXCLUDE_CONTAINERS": '{"not": "a list"}',
            "SERVELOG_OPENSEARCH__URL": "ftp://x",
        })
    text = str(caught.value)
    assert "SERVELOG_KUBERNETES__CUSTOM_FIELDS: not valid JSON" in text
    assert "SERVELOG_PIPELINE__EXCLUDE_NAMESPACES: not valid JSON" in text
    assert "SERVELOG_PIPELINE__EXCLUDE_CONTAINERS: expected a JSON array" in text
    assert "opensearch.url" in text
    with pytest.raises(ConfigError, match=r"custom_fields\.team: expected 'label:<key>'"):
        load_settings(environ={"SERVELOG_KUBERNETES__CUSTOM_FIELDS": '{"team": "team"}'})


def test_config_reference_says_how_lists_and_maps_are_written_in_the_environment() -> None:
    reference = settings_reference()
    assert "`SERVELOG_PIPELINE__EXCLUDE_CONTAINERS` (JSON array) | `[\"queue-proxy\"]`" in reference
    assert "`SERVELOG_KUBERNETES__CUSTOM_FIELDS` (JSON object) | `{}`" in reference
    assert """SERVELOG_KUBERNETES__CUSTOM_FIELDS='{"team":"label:team"}'""" in reference


# -- telemetry.listen -------------------------------------------------------------------------------
@pytest.mark.parametrize("listen", ["", "127.0.0.1:9880", "0.0.0.0:0", "[::]:9880", "[::1]:80", "::1:80",
                                    ":9880", "localhost:9880", "node-1.example.com:9880"])
def test_valid_listen_addresses(listen: str) -> None:
    assert listen_format_problem(listen) is None


@pytest.mark.parametrize("listen", ["abc", "9880", "127.0.0.1:", "127.0.0.1:99999", "host:port", "a b:80",
                                    "127.0.0.1:-1"])
def test_invalid_listen_addresses_are_settings_errors(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"telemetry\.listen: "):
        load_settings(environ={}, overrides={"telemetry": {"listen": listen}})


def test_split_listen_defaults_the_host_to_loopback() -> None:
    assert split_listen(":9880") == ("127.0.0.1", 9880)
    assert split_listen("[::1]:80") == ("::1", 80)


def test_a_dry_run_listens_only_when_asked() -> None:
    assert load_settings(environ={}, overrides={"output": "stdout"}).telemetry.listen == ""
    assert load_settings(environ={}).telemetry.listen == "127.0.0.1:9880"
    asked = load_settings(environ={"SERVELOG_TELEMETRY__LISTEN": "127.0.0.1:9999"}, overrides={"output": "stdout"})
    assert asked.telemetry.listen == "127.0.0.1:9999"
    by_flag = load_settings(environ={}, overrides={"output": "stdout", "telemetry": {"listen": "127.0.0.1:1234"}})
    assert by_flag.telemetry.listen == "127.0.0.1:1234"


# -- what `servelog run` checks at start ------------------------------------------------------------------
def run_settings(**overrides: object) -> list[str]:
    try:
        load_settings(environ={}, overrides={"telemetry": {"listen": ""}, **overrides}, for_run=True)
    except ConfigError as exc:
        return exc.problems
    return []


def test_the_log_root_must_exist_for_the_files_source_only(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert run_settings(log_root=missing, output="stdout") == [
        f"log_root: {missing} does not exist (the kubelet's pod log directory: mount it, e.g. hostPath "
        "/var/log/pods, or pass --log-root)"]
    (tmp_path / "file").write_text("")
    assert run_settings(log_root=tmp_path / "file", output="stdout") == [f"log_root: {tmp_path / 'file'} is not a directory"]
    assert run_settings(log_root=tmp_path, output="stdout") == []
    assert load_settings(environ={}, overrides={"log_root": missing}).log_root == missing, "setup and logs do not care"


def test_the_state_dir_must_be_writable_where_checkpoints_are_kept(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    under_file = tmp_path / "file" / "state"
    assert run_settings(log_root=tmp_path, state_dir=under_file) == [
        f"state_dir: {under_file} cannot be created: {tmp_path / 'file'} is a file, not a directory"]
    assert run_settings(log_root=tmp_path, state_dir=tmp_path / "file") == [
        f"state_dir: {tmp_path / 'file'} is not a directory"]
    assert run_settings(log_root=tmp_path, state_dir=tmp_path / "new" / "state") == [], "created by the first save"
    assert not (tmp_path / "new").exists(), "the check creates nothing"
    assert run_settings(log_root=tmp_path, state_dir=tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"], "the write probe is removed"
    assert run_settings(log_root=tmp_path, state_dir=under_file, output="stdout") == [], "a dry run keeps nothing"


def test_a_problem_of_any_kind_is_reported_with_the_others(tmp_path: Path) -> None:
    problems = run_settings(log_root=tmp_path / "missing", state_dir=tmp_path, opensearch={"url": "ftp://x"},
                            pipeline={"queue_batches": 0})
    assert [p.split(":", 1)[0] for p in problems] == ["opensearch", "pipeline.queue_batches", "log_root"]


def test_a_busy_port_is_a_settings_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        problems = run_settings(log_root=tmp_path, state_dir=tmp_path, telemetry={"listen": f"127.0.0.1:{port}"})
    assert len(problems) == 1 and problems[0].startswith(f"telemetry.listen: cannot listen on 127.0.0.1:{port}: ")
    assert "another process listens there" in problems[0]


# -- the checkpoint file's load error says what is wrong ---------------------------------------------------
def test_a_checkpoint_file_that_cannot_be_read_is_not_called_damaged(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = CheckpointStore(tmp_path / "file" / "checkpoints.json")
    assert store.load_error is not None
    assert "Not a directory" in store.load_error and "state_dir must be a directory" in store.load_error
    (tmp_path / "checkpoints.json").write_text("{not json")
    damaged = CheckpointStore(tmp_path / "checkpoints.json")
    assert damaged.load_error is not None and "is damaged" in damaged.load_error and "set aside as" in damaged.load_error
