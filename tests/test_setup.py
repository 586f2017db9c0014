"""``servelog setup`` through the real command line, against a loopback OpenSearch and Dashboards.

The real opensearch-py client (inside OpenSearchClient) and urllib3 talk to the loopback servers,
which refuse what the real ones refuse: a blind ISM overwrite (409), a write without ``osd-xsrf``,
an import whose file is not ``.ndjson`` or whose references do not resolve, documents that do not
fit the installed index template.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from collector.cli import main
from collector.errors import SetupError
from collector.settings import OpenSearchSettings
from collector.setup.plan import check_opensearch, contains, verdict, with_retention
from collector.sinks.opensearch.client import OpenSearchClient
from tests.support.dashboards_server import FakeDashboards
from tests.support.opensearch_server import FakeOpenSearch

ROOT = Path(__file__).resolve().parents[1]
ALL_OPENSEARCH_ASSETS = {
    "servelog-logs-mappings", "servelog-logs-settings", "servelog-deadletter-mappings", "servelog-deadletter-settings",
    "servelog-events-mappings", "servelog-events-settings", "servelog-logs", "servelog-deadletter", "servelog-events",
    "servelog-logs-retention", "servelog-deadletter-retention", "servelog-events-retention",
}
SAVED_OBJECT_COUNT = sum(1 for line in (ROOT / "dashboards" / "servelog-1.0.0.ndjson").read_text().splitlines() if line)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SERVELOG_"):
            monkeypatch.delenv(key)


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as server:
        yield server


@pytest.fixture
def dashboards() -> Iterator[FakeDashboards]:
    with FakeDashboards() as server:
        yield server


def setup(*args: str) -> int:
    return main(["setup", *args])


def report(out: str) -> dict[str, str]:
    """name -> verdict, from the lines the command prints per asset."""
    verdicts = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in ("create", "update", "unchanged"):
            verdicts[words[2]] = words[0]
    return verdicts


def writes(server: FakeOpenSearch) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests if r.method in ("PUT", "POST", "DELETE")]


# -- installing ----------------------------------------------------------------------------------
def test_first_run_creates_every_asset_and_a_second_run_changes_nothing(
        opensearch: FakeOpenSearch, dashboards: FakeDashboards, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url) == 0
    first = report(capsys.readouterr().out)
    assert set(opensearch.component_templates) == {n for n in ALL_OPENSEARCH_ASSETS if n.endswith(("-mappings", "-settings"))}
    assert set(opensearch.index_templates) == {"servelog-logs", "servelog-deadletter", "servelog-events"}
    assert set(opensearch.ism_policies) == {n for n in ALL_OPENSEARCH_ASSETS if n.endswith("-retention")}
    assert len(dashboards.objects()) == SAVED_OBJECT_COUNT
    assert ("dashboard", "servelog-dashboard-model-deployment-logs") in dashboards.objects()
    assert len(first) == len(ALL_OPENSEARCH_ASSETS) + SAVED_OBJECT_COUNT
    assert set(first.values()) == {"create"}

    opensearch_writes, dashboards_writes = len(writes(opensearch)), len(dashboards.writes())
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url) == 0
    second = capsys.readouterr().out
    assert set(report(second).values()) == {"unchanged"} and len(report(second)) == len(first)
    assert "0 created, 0 updated" in second
    assert len(writes(opensearch)) == opensearch_writes, "no PUT for an unchanged asset"
    imports = [r for r in dashboards.writes() if r.path.endswith("/_import")]
    assert len(imports) == 1, "the second run compared (bulk_get) and imported nothing"
    assert len(dashboards.writes()) == dashboards_writes + 1


def test_dry_run_prints_each_request_and_sends_no_write(
        opensearch: FakeOpenSearch, dashboards: FakeDashboards, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup("--dry-run", "--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url) == 0
    out = capsys.readouterr().out
    assert not writes(opensearch)
    assert not opensearch.index_templates and not opensearch.component_templates and not opensearch.ism_policies
    assert not dashboards.objects() and not [r for r in dashboards.writes() if r.path.endswith("/_import")]
    assert "PUT /_component_template/servelog-logs-mappings" in out
    assert "PUT /_index_template/servelog-logs" in out
    assert "PUT /_plugins/_ism/policies/servelog-logs-retention" in out
    assert "POST /api/saved_objects/_import?overwrite=true" in out
    assert set(report(out).values()) == {"create"}
    assert "nothing was changed" in out


def test_changed_retention_replaces_the_policy_with_its_sequence_number(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup("--opensearch-url", opensearch.url, "--skip-dashboards") == 0
    before = opensearch.ism_policies["servelog-logs-retention"]
    capsys.readouterr()
    assert setup("--opensearch-url", opensearch.url, "--skip-dashboards", "--logs-retention", "7d") == 0
    verdicts = report(capsys.readouterr().out)
    assert verdicts["servelog-logs-retention"] == "update"
    assert verdicts["servelog-events-retention"] == "unchanged"
    after = opensearch.ism_policies["servelog-logs-retention"]
    assert after["_seq_no"] > before["_seq_no"], "replaced in place (a blind PUT would have been a 409)"
    deletes = [t for s in after["policy"]["states"] for t in s["transitions"] if t["state_name"] == "delete"]
    assert deletes[0]["conditions"] == {"min_index_age": "7d"}


def test_replicas_override_reaches_every_settings_component(opensearch: FakeOpenSearch) -> None:
    assert setup("--opensearch-url", opensearch.url, "--skip-dashboards", "--replicas", "0") == 0
    with_settings = [b for b in opensearch.component_templates.values() if "settings" in b["template"]]
    assert len(with_settings) == 3
    assert {b["template"]["settings"]["index"]["number_of_replicas"] for b in with_settings} == {0}


def test_a_bad_retention_age_is_refused_before_anything_is_sent(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        setup("--opensearch-url", opensearch.url, "--logs-retention", "two weeks")
    assert exited.value.code == 2
    assert "not an age" in capsys.readouterr().err
    assert not opensearch.requests


# -- Dashboards ----------------------------------------------------------------------------------
def test_saved_objects_go_to_the_tenant_through_the_amazon_base_path(opensearch: FakeOpenSearch) -> None:
    with FakeDashboards(base_path="/_dashboards") as osd:
        assert osd.url.endswith("/_dashboards")
        assert setup("--opensearch-url", opensearch.url, "--dashboards-url", osd.url, "--tenant", "global") == 0
        assert len(osd.objects("global")) == SAVED_OBJECT_COUNT
        assert not osd.objects(None), "nothing landed outside the tenant"
        assert {r.tenant for r in osd.requests} == {"global"}
        assert {r.path for r in osd.requests} >= {"/api/status", "/api/saved_objects/_bulk_get",
                                                  "/api/saved_objects/_import"}


def test_a_dashboards_object_edited_by_hand_is_put_back_and_only_it_is_imported(
        opensearch: FakeOpenSearch, dashboards: FakeDashboards, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url) == 0
    edited = dashboards.stored[None][("search", "servelog-search-errors")]
    edited["attributes"] = {**edited["attributes"], "columns": ["message"]}
    capsys.readouterr()
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url) == 0
    verdicts = report(capsys.readouterr().out)
    assert verdicts["search/servelog-search-errors"] == "update"
    assert [v for v in verdicts.values() if v != "unchanged"] == ["update"]
    assert dashboards.objects()[("search", "servelog-search-errors")]["attributes"]["columns"][0] == "serving_name"


def test_dashboards_basic_auth_reuses_the_opensearch_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "password").write_text("s3cret-Pa55\n")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__USERNAME", "servelog")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__PASSWORD_FILE", str(tmp_path / "password"))
    with FakeOpenSearch(username="servelog", password="s3cret-Pa55") as fos, \
            FakeDashboards(username="servelog", password="s3cret-Pa55") as osd:
        assert setup("--opensearch-url", fos.url, "--dashboards-url", osd.url) == 0
        assert len(osd.objects()) == SAVED_OBJECT_COUNT


def test_without_a_dashboards_url_templates_install_and_a_warning_names_what_was_skipped(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup("--opensearch-url", opensearch.url) == 0
    assert "servelog-logs" in opensearch.index_templates
    err = capsys.readouterr().err
    assert "no --dashboards-url" in err and "saved searches" in err


def test_unreachable_dashboards_fails_clearly_after_installing_the_templates(
        opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeDashboards() as gone:
        url = gone.url
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", url) == 1
    assert "OpenSearch Dashboards is unreachable" in capsys.readouterr().err
    assert set(opensearch.index_templates) == {"servelog-logs", "servelog-deadletter", "servelog-events"}
    assert len(opensearch.ism_policies) == 3


def test_a_missing_base_path_is_explained(opensearch: FakeOpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeDashboards(base_path="/_dashboards") as osd:
        without_prefix = osd.url.removesuffix("/_dashboards")
        assert setup("--opensearch-url", opensearch.url, "--dashboards-url", without_prefix) == 1
    assert "base path" in capsys.readouterr().err


def test_objects_dashboards_refuses_are_reported_per_object(
        opensearch: FakeOpenSearch, dashboards: FakeDashboards, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "index_templates", tmp_path / "index_templates")
    (tmp_path / "dashboards").mkdir()
    orphan = {"type": "search", "id": "orphan", "attributes": {"title": "orphan"},
              "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
                              "id": "no-such-pattern"}]}
    (tmp_path / "dashboards" / "servelog-9.9.9.ndjson").write_text(json.dumps(orphan) + "\n")
    assert setup("--opensearch-url", opensearch.url, "--dashboards-url", dashboards.url, "--assets-dir",
                 str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "search/orphan: missing_references index-pattern/no-such-pattern" in err


def test_the_loopback_dashboards_refuses_what_the_real_one_refuses(dashboards: FakeDashboards) -> None:
    http = urllib3.PoolManager()
    pattern = {"type": "index-pattern", "id": "p", "attributes": {"title": "serving-logs-*"}, "references": []}

    def post(query: str, filename: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body, content_type = urllib3.encode_multipart_formdata(
            {"file": (filename, json.dumps(pattern).encode() + b"\n", "application/ndjson")})
        response = http.request("POST", f"{dashboards.url}/api/saved_objects/_import{query}", body=body,
                                headers={"Content-Type": content_type,
                                         **({"osd-xsrf": "true"} if headers is None else headers)})
        return response.status, json.loads(response.data)

    assert post("", "a.ndjson", headers={}) == (400, {"statusCode": 400, "error": "Bad Request",
                                                      "message": "Request must contain a osd-xsrf header."})
    assert post("", "a.json")[1]["message"] == "Invalid file extension .json"
    assert post("?overwrite=true&createNewCopies=true", "a.ndjson")[0] == 400
    assert post("", "a.ndjson") == (200, {"successCount": 1, "success": True, "successResults": [
        {"type": "index-pattern", "id": "p", "meta": {"title": "serving-logs-*"}}]})
    status, answer = post("", "a.ndjson")
    assert (status, answer["success"], answer["errors"][0]["error"]) == (200, False, {"type": "conflict"})
    assert post("?overwrite=true", "a.ndjson")[1]["success"] is True
    http.clear()


# -- refusals ------------------------------------------------------------------------------------
def test_opensearch_older_than_2_7_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(version="2.5.0") as old:
        assert setup("--opensearch-url", old.url) == 1
        assert not writes(old)
    err = capsys.readouterr().err
    assert "2.5.0 is too old" in err and "flat_object" in err


def test_opensearch_before_2_12_installs_and_warns_about_dotted_label_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(version="2.9.0") as older:
        assert setup("--opensearch-url", older.url, "--skip-dashboards") == 0
        assert "servelog-logs" in older.index_templates
    assert "app.kubernetes.io/name" in capsys.readouterr().err
    with FakeOpenSearch(version="2.12.0") as fixed:
        assert setup("--opensearch-url", fixed.url, "--skip-dashboards") == 0
    assert "app.kubernetes.io/name" not in capsys.readouterr().err


def test_elasticsearch_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(version="7.10.2", distribution=None) as elasticsearch:
        assert setup("--opensearch-url", elasticsearch.url) == 1
        assert not writes(elasticsearch)
    assert "not OpenSearch" in capsys.readouterr().err


def test_a_cluster_without_the_ism_plugin_is_told_retention_needs_it(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch(ism_plugin=False) as bare:
        assert setup("--opensearch-url", bare.url, "--skip-dashboards") == 1
        assert not writes(bare), "the plan is read completely before anything is written"
    err = capsys.readouterr().err
    assert "Index State Management plugin" in err and "--skip-retention" in err


def test_refused_credentials_are_reported_without_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "password").write_text("wrong-Pa55word")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__USERNAME", "admin")
    monkeypatch.setenv("SERVELOG_OPENSEARCH__PASSWORD_FILE", str(tmp_path / "password"))
    with FakeOpenSearch(username="admin", password="right") as fos:
        assert setup("--opensearch-url", fos.url, "--dashboards-url", "http://127.0.0.1:9") == 1
        assert not writes(fos)
    captured = capsys.readouterr()
    assert "refused the credentials (401)" in captured.err
    assert "wrong-Pa55word" not in captured.err + captured.out


def test_unreachable_opensearch_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenSearch() as gone:
        url = gone.url
    assert setup("--opensearch-url", url) == 1
    assert "unreachable" in capsys.readouterr().err


# -- what the templates accept -------------------------------------------------------------------
def sample_documents(namespace: str = "team-a") -> list[tuple[str, dict[str, Any]]]:
    """(index, source): realistic documents of each kind, including the awkward ones.

    Four log lines (numeric, non-numeric and date-like model versions, dotted label keys, a
    traceback, a 100 KB line with an unmapped field, a path-only truncated line), one dead-letter
    record and one OOMKilled event.
    """
    pod = {"namespace": namespace, "pod_name": "iris-predictor-00003-deployment-7d9f8c6b5-x2x9p",
           "pod_uid": "0f1e2d3c-1111-2222-3333-444455556666", "node_name": "gpu-node-1", "serving_name": "iris",
           "model_name": "iris", "component": "predictor", "container_name": "kserve-container"}
    labels = {"app": "iris-predictor-00003", "app.kubernetes.io/name": "iris",
              "serving.kserve.io/inferenceservice": "iris", "component": "predictor",
              "serving.knative.dev/revision": "iris-predictor-00003"}
    logs = f"serving-logs-{namespace}-2026.11.24"
    return [
        (logs, {**pod, "timestamp": "2026-11-24T09:12:01.123456789Z", "stream": "stderr", "level": "info",
                "message": "INFO:     10.0.0.7:51234 - \"POST /v1/models/iris:predict HTTP/1.1\" 200 OK",
                "model_version": "3", "restart_count": 0, "labels": labels, "project": "team_a",
                "metadata_source": "kubernetes", "line_count": 1}),
        (logs, {**pod, "timestamp": "2026-11-24T09:12:02.000000001Z", "stream": "stderr", "level": "error",
                "message": "Traceback (most recent call last):\n  File \"model.py\", line 12, in predict\n"
                           "ValueError: shapes (1,3) and (4,) not aligned", "model_version": "v2", "restart_count": 2,
                "labels": labels, "metadata_source": "kubernetes", "line_count": 3}),
        (logs, {**pod, "timestamp": "2026-11-24T09:12:03Z", "stream": "stdout", "model_version": "20261124",
                "message": "x" * 100 * 1024, "truncated": False, "original_bytes": 100 * 1024, "line_count": 1,
                "labels": {}, "metadata_source": "static", "unknown_field": {"kept": "in _source only"}}),
        (logs, {"namespace": namespace, "pod_name": "iris-predictor-00003-deployment-7d9f8c6b5-x2x9p",
                "container_name": "storage-initializer", "timestamp": "2026-11-24T09:12:04.5Z", "stream": "stdout",
                "message": "bad \ufffd utf-8", "parse_error": "invalid_utf8", "truncated": True,
                "original_bytes": 3 * 1024 * 1024, "metadata_source": "path"}),
        ("serving-deadletter-2026.11.24", {
            "timestamp": "2026-11-24T09:12:05.000000000Z", "namespace": namespace, "pod_name": pod["pod_name"],
            "container_name": "kserve-container", "serving_name": "iris", "model_version": "3",
            "component": "predictor", "reason": "failed to parse field [labels] of type [flat_object]",
            "error_type": "mapper_parsing_exception", "status": 400, "target_index": logs,
            "doc_id": "0f1e2d3c-kserve-container-0-1234", "raw": "2026-11-24T09:12:05Z stdout F {\"labels\": 1}"}),
        ("serving-events-2026.11.24", {
            "timestamp": "2026-11-24T09:13:00Z", "namespace": namespace, "pod_name": pod["pod_name"],
            "pod_uid": pod["pod_uid"], "serving_name": "iris", "model_name": "iris", "model_version": "3",
            "component": "predictor", "container_name": "kserve-container", "reason": "OOMKilled", "type": "Warning",
            "message": "Container kserve-container exceeded its memory limit", "count": 1,
            "source": "container-status", "exit_code": 137, "event_kind": "termination"}),
    ]


def bulk_body(documents: list[tuple[str, dict[str, Any]]], *, id_prefix: str = "doc") -> bytes:
    lines = []
    for number, (index, source) in enumerate(documents):
        lines += [json.dumps({"create": {"_index": index, "_id": f"{id_prefix}-{number}"}}), json.dumps(source)]
    return ("\n".join(lines) + "\n").encode()


def test_sample_documents_fit_the_installed_templates() -> None:
    with FakeOpenSearch(validate_mappings=True) as fos:
        assert setup("--opensearch-url", fos.url, "--skip-dashboards") == 0
        client = OpenSearchClient(OpenSearchSettings(url=fos.url))
        try:
            answer = client.bulk(bulk_body(sample_documents()))
            refused = client.bulk(bulk_body([("serving-logs-team-a-2026.11.24",
                                              {"timestamp": "yesterday", "message": "m", "restart_count": "many"})],
                                       id_prefix="misfit"))
        finally:
            client.close()
    statuses = [next(iter(item.values()))["status"] for item in answer["items"]]
    assert statuses == [201] * len(sample_documents()), answer
    assert next(iter(refused["items"][0].values()))["status"] == 400, "the validation is live: a misfit is refused"


# -- decisions -----------------------------------------------------------------------------------
def test_contains_tolerates_what_servers_add_and_how_they_stringify() -> None:
    desired = {"settings": {"index": {"number_of_replicas": 1}}, "mappings": {"dynamic": False},
               "states": [{"actions": [{"delete": {}}]}]}
    returned = {"settings": {"index": {"number_of_replicas": "1", "uuid": "x"}}, "mappings": {"dynamic": "false"},
                "states": [{"actions": [{"retry": {"count": 3}, "delete": {}}]}], "last_updated_time": 1}
    assert contains(returned, desired)
    assert verdict(returned, desired) == "unchanged"
    assert verdict(None, desired) == "create"
    assert verdict({**returned, "settings": {"index": {"number_of_replicas": "2"}}}, desired) == "update"
    assert not contains({"states": [{"actions": []}, {"actions": []}]}, {"states": [{"actions": []}]})


def test_with_retention_moves_only_the_delete_transition() -> None:
    policy = {"policy": {"states": [{"name": "hot", "transitions": [{"state_name": "delete",
                                                                     "conditions": {"min_index_age": "14d"}}]},
                                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}]}}
    changed = with_retention(policy, "3d")
    assert changed["policy"]["states"][0]["transitions"][0]["conditions"] == {"min_index_age": "3d"}
    assert policy["policy"]["states"][0]["transitions"][0]["conditions"] == {"min_index_age": "14d"}, "not mutated"
    assert with_retention(policy, None) is policy


@pytest.mark.parametrize(("version", "accepted"), [
    ({"distribution": "opensearch", "number": "2.7.0"}, True),
    ({"distribution": "opensearch", "number": "2.19.1"}, True),
    ({"distribution": "opensearch", "number": "3.0.0-beta1"}, True),
    ({"distribution": "opensearch", "number": "2.6.0"}, False),
    ({"distribution": "opensearch", "number": "1.3.20"}, False),
    ({"number": "8.15.0", "build_flavor": "default"}, False),
])
def test_version_check(version: dict[str, str], accepted: bool) -> None:
    if accepted:
        assert check_opensearch({"version": version}) == version["number"]
    else:
        with pytest.raises(SetupError):
            check_opensearch({"version": version})
