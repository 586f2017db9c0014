"""Which real OpenSearch the suite uses, and that a CI run cannot pass with the real-cluster tests skipped.

The selection is a pure function (tests/support/e2e.py) and is tested as one. The failure path is
tested for real: a pytest run with the e2e suite required, on a Maven that cannot fetch (offline,
empty repository and cache), must fail with the reason, and without the requirement must skip
with it; the coverage report ``.ci/run`` checks must refuse a run where a version passed nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.e2e import select_backend
from tests.support.e2e_report import problems
from tests.support.opensearch_node import DEFAULT_VERSIONS, maven_errors

ROOT = Path(__file__).resolve().parents[1]


def no_docker() -> str:
    return "no Docker engine"


def test_an_external_url_comes_first() -> None:
    chosen = select_backend({"SERVELOG_E2E_OPENSEARCH_URL": "https://os:9200"}, missing_tools=None,
                            docker_problem=lambda: pytest.fail("not asked"))  # type: ignore[arg-type,return-value]
    assert (chosen.kind, chosen.versions) == ("external", ("external",))


def test_a_local_node_when_java_and_maven_are_there_for_each_version() -> None:
    chosen = select_backend({}, missing_tools=None, docker_problem=lambda: pytest.fail("not asked"))  # type: ignore[arg-type,return-value]
    assert (chosen.kind, chosen.versions) == ("local", DEFAULT_VERSIONS)
    assert select_backend({"SERVELOG_E2E_VERSIONS": "2.19.6, 3.7.0"}, missing_tools=None,
                          docker_problem=no_docker).versions == ("2.19.6", "3.7.0")


def test_testcontainers_then_a_skip_with_every_reason() -> None:
    assert select_backend({}, missing_tools="mvn not found", docker_problem=lambda: None).kind == "container"
    skipped = select_backend({}, missing_tools="java and mvn not found", docker_problem=no_docker)
    assert skipped.kind == "skip"
    assert skipped.reason == ("java and mvn not found for a local node, and no Docker engine; "
                              "or set SERVELOG_E2E_OPENSEARCH_URL")


def test_the_coverage_report_refuses_a_version_with_no_passing_test() -> None:
    good = {"selection": "local", "versions": ["2.19.6", "3.8.0"],
            "outcomes": {"2.19.6": {"passed": 12}, "3.8.0": {"passed": 11, "skipped": 1}}}
    assert problems(good) == []
    assert problems(None) == ["no report: the real-cluster tests did not run (was tests/ collected?)"]
    missing = {**good, "outcomes": {"2.19.6": {"passed": 12}, "3.8.0": {"skipped": 12}}}
    assert problems(missing) == ["OpenSearch 3.8.0: no real-cluster test passed ({'skipped': 12})"]
    assert problems({**good, "selection": "skip"})[0].startswith("the suite ran against 'skip'")


@pytest.mark.skipif(shutil.which("mvn") is None or shutil.which("java") is None, reason="needs Java and Maven")
def test_a_required_suite_fails_when_maven_cannot_fetch_and_skips_otherwise(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    env.update(SERVELOG_E2E_VERSIONS="2.19.6", SERVELOG_E2E_CACHE=str(tmp_path / "cache"),
               SERVELOG_E2E_M2_REPOSITORY=str(tmp_path / "m2"), SERVELOG_E2E_MAVEN_OFFLINE="1",
               SERVELOG_E2E_REPORT=str(tmp_path / "report.json"))
    target = "tests/e2e/test_e2e_setup.py::test_setup_installs_templates_and_a_second_run_changes_nothing"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", target]
    required = subprocess.run(command, cwd=ROOT, env={**env, "SERVELOG_E2E_REQUIRE": "1"}, capture_output=True,
                              text=True, timeout=300, check=False)
    assert required.returncode != 0, required.stdout[-2000:]
    assert "the e2e suite must run here (SERVELOG_E2E_REQUIRE=1) but cannot: Maven could not fetch" in required.stdout
    assert problems(json.loads((tmp_path / "report.json").read_text()))
    relaxed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert relaxed.returncode == 0 and "skipped" in relaxed.stdout and "Maven could not fetch" in relaxed.stdout


def test_maven_failures_are_reported_by_their_cause_not_by_maven_advice() -> None:
    output = ("[INFO] Scanning for projects...\n\x1b[1;31m[ERROR]\x1b[m Failed to execute goal on project standalone-pom: "
              "Could not find artifact org.opensearch.plugin:opensearch-index-management:zip:2.19.6.0 in central\n"
              "[ERROR] \n[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.\n"
              "[ERROR] Re-run Maven using the -X switch to enable full debug logging.\n"
              "[ERROR] [Help 1] http://cwiki.apache.org/confluence/display/MAVEN/DependencyResolutionException\n")
    assert maven_errors(output) == ("[ERROR] Failed to execute goal on project standalone-pom: Could not find artifact "
                                    "org.opensearch.plugin:opensearch-index-management:zip:2.19.6.0 in central")
