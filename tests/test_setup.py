"""``servelog setup`` against a loopback OpenSearch and a loopback Dashboards."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.cli import main
from collector.setup.discover import rison
from tests.support.fake_dashboards import FakeDashboards
from tests.support.fake_os import FakeOpenSearch


@pytest.fixture
def fos() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("SERVELOG_"):
            monkeypatch.delenv(key)


def writes(fos: FakeOpenSearch) -> list[str]:
    return [f"{r.method} {r.path}" for r in fos.requests if r.method in ("PUT", "POST")]


def test_installs_everything_and_a_second_run_changes_nothing(fos: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeDashboards() as osd:
        assert main(["setup", "--opensearch-url", fos.url, "--dashboards-url", osd.url]) == 0
        first = capsys.readouterr().out
        assert set(fos.component_templates) == {"servelog-logs-mappings", "servelog-logs-settings",
                                                "servelog-deadletter-mappings", "servelog-events-mappings"}
        assert set(fos.index_templates) == {"servelog-logs", "servelog-deadletter", "servelog-events"}
        assert set(fos.ism_policies) == {"servelog-logs-retention", "servelog-deadletter-retention",
                                         "servelog-events-retention"}
        assert ("dashboard", "servelog-dashboard-model-deployment-logs") in osd.objects
        assert "create" in first and "imported" in first
        before = len(writes(fos))
        assert main(["setup", "--opensearch-url", fos.url, "--dashboards-url", osd.url]) == 0
        second = capsys.readouterr().out
        assert len(writes(fos)) == before, "nothing rewritten in OpenSearch"
        assert " create" not in second and " update" not in second
        assert second.count("unchanged") == 10


def test_dry_run_changes_nothing(fos: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeDashboards() as osd:
        assert main(["setup", "--dry-run", "--opensearch-url", fos.url, "--dashboards-url", osd.url]) == 0
        assert not fos.index_templates and not fos.ism_policies and not osd.objects
    assert "plan:" in capsys.readouterr().out


def test_changed_retention_updates_the_policy_with_its_sequence_number(fos: FakeOpenSearch) -> None:
    assert main(["setup", "--opensearch-url", fos.url]) == 0
    assert main(["setup", "--opensearch-url", fos.url, "--logs-retention", "30d"]) == 0
    policy = fos.ism_policies["servelog-logs-retention"]
    assert policy["_seq_no"] == 1
    delete = policy["policy"]["states"][0]["transitions"][0]
    assert delete["conditions"]["min_index_age"] == "30d"


def test_tenant_and_amazon_dashboards_prefix(fos: FakeOpenSearch) -> None:
    with FakeDashboards(base_path="/_dashboards") as osd:
        assert osd.url.endswith("/_dashboards")
        assert main(["setup", "--opensearch-url", fos.url, "--dashboards-url", osd.url, "--tenant", "global"]) == 0
        assert osd.tenants == ["global"] and osd.imports == 1


def test_dashboards_unreachable_still_installs_templates(fos: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "--opensearch-url", fos.url, "--dashboards-url", "http://127.0.0.1:9"]) == 1
    assert "Dashboards is unreachable" in capsys.readouterr().err
    assert "servelog-logs" in fos.index_templates


def test_too_old_or_not_opensearch_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(version="2.5.0") as old:
        assert main(["setup", "--opensearch-url", old.url]) == 1
    assert "too old" in capsys.readouterr().err


def test_refused_credentials_are_reported_without_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "password"
    secret.write_text("wrong-Pa55word")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__USERNAME", "admin")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__PASSWORD_FILE", str(secret))
    with FakeOpenSearch(username="admin", password="right") as fos:
        assert main(["setup", "--opensearch-url", fos.url]) == 1
    captured = capsys.readouterr()
    assert "refused the credentials" in captured.err
    assert "wrong-Pa55word" not in captured.err + captured.out


def test_discover_url_opens_the_saved_search_with_the_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "--print-discover-url", "--dashboards-url", "https://os.example/_dashboards",
                 "--serving", "fraud-detector", "--model-version", "2"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://os.example/_dashboards/app/discover#/view/servelog-search-all?")
    app_state = urllib.parse.unquote(url.split("_a=", 1)[1])
    assert "serving_name:\"fraud-detector\" and model_version:\"2\"" in app_state


def test_rison_encoding() -> None:
    assert rison({"a": [1, "x y", True, None], "b": "it's"}) == "(a:!(1,'x y',!t,!n),b:'it!'s')"
