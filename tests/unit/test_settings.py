"""Settings: precedence, every error at once, secrets masked, README reference in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.settings import load_settings, settings_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = tmp_path / "servelog.yaml"
    config.write_text("log_root: /from/file\nstate_dir: /state/file\nopensearch:\n  url: http://file:9200\n  workers: 3\n")
    settings = load_settings(
        config_file=config,
        environ={"SERVELOG_STATE_DIR": "/state/env", "SERVELOG_OPENSEARCH__URL": "http://env:9200"},
        overrides={"opensearch": {"url": "http://flag:9200"}},
    )
    assert settings.log_root == Path("/from/file")
    assert settings.state_dir == Path("/state/env")
    assert settings.opensearch.url == "http://flag:9200"
    assert settings.opensearch.workers == 3


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={
            "SERVELOG_OPENSEARCH__URL": "ftp://x", "SERVELOG_PIPELINE__QUEUE_BATCHES": "0",
            "SERVELOG_OUTPUT": "kafka", "SERVELOG_NO_SUCH_THING": "1", "SERVELOG_OPENSEARCH__CA_FILE": "/nope.pem",
        })
    text = str(caught.value)
    for fragment in ("opensearch.url", "queue_batches", "output", "no_such_thing"):
        assert fragment in text, text
    assert len(caught.value.problems) >= 4


def test_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(environ={"SERVELOG_OPENSEARCH__PASSWORD_FILE": str(tmp_path / "missing")})


def test_secrets_are_masked_in_repr() -> None:
    settings = load_settings(environ={"SERVELOG_OPENSEARCH__USERNAME": "u", "SERVELOG_OPENSEARCH__PASSWORD": "hunter2"})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert settings.opensearch.password is not None
    assert settings.opensearch.password.get_secret_value() == "hunter2"


def test_readme_configuration_reference_matches_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings-reference:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- settings-reference:end -->")
    assert text[start:end] == settings_reference(), "run: servelog config-reference, paste into README.md"


def test_progress_line_shows_done_total_rate_and_eta() -> None:
    from collector.telemetry.progress import render

    line = render(50 * 2**20, 200 * 2**20, 10.0)
    assert "50.0 / 200.0 MiB" in line and "25.0%" in line and "5.0 MiB/s" in line and "ETA    30s" in line
    assert "100.0%" in render(0, 0, 1.0)
