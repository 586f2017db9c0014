"""Connection security: TLS verification with a CA bundle, mutual TLS, and credential rotation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.errors import SinkUnavailable
from collector.settings import OpenSearchSettings
from collector.sinks.opensearch.client import OpenSearchClient
from tests.support.logwriter import ContainerLog, Ledger
from tests.support.opensearch_server import FakeOpenSearch
from tests.support.tls import make_test_pki


def test_tls_with_the_right_ca_works_and_a_wrong_ca_is_refused(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    with FakeOpenSearch(ssl_context=pki.server_context()) as fos:
        assert fos.url.startswith("https://")
        good = OpenSearchClient(OpenSearchSettings(url=fos.url, ca_file=pki.ca_file))
        assert good.info()["version"]["number"]
        bad = OpenSearchClient(OpenSearchSettings(url=fos.url, ca_file=pki.wrong_ca_file))
        with pytest.raises(SinkUnavailable, match=r"(?i)certificate"):
            bad.info()
        default = OpenSearchClient(OpenSearchSettings(url=fos.url))  # verification is on by default
        with pytest.raises(SinkUnavailable):
            default.info()


def test_mutual_tls_with_a_client_certificate(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    with FakeOpenSearch(ssl_context=pki.server_context(require_client_cert=True)) as fos:
        with_cert = OpenSearchClient(OpenSearchSettings(url=fos.url, ca_file=pki.ca_file, client_cert=pki.client_cert,
                                                        client_key=pki.client_key))
        assert with_cert.info()["version"]["distribution"] == "opensearch"
        without = OpenSearchClient(OpenSearchSettings(url=fos.url, ca_file=pki.ca_file))
        with pytest.raises(SinkUnavailable):
            without.info()


@pytest.mark.slow
def test_a_rotated_password_file_is_picked_up_without_restart(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    secret = tmp_path / "password"
    secret.write_text("old-password")
    ledger = Ledger()
    log = ContainerLog(tmp_path / "pods", namespace="team-a", pod="iris-predictor-00001-deployment-7d9f8c6b5-x2x9p",
                       uid="0f1e2d3c-1111-2222-3333-444455556666", container="kserve-container", ledger=ledger)
    log.write_many([f"line {i}" for i in range(50)])
    with FakeOpenSearch(ssl_context=pki.server_context(), username="servelog", password="new-password") as fos:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
        env.update({"SERVELOG_OPENSEARCH__URL": fos.url, "SERVELOG_OPENSEARCH__CA_FILE": str(pki.ca_file),
                    "SERVELOG_OPENSEARCH__USERNAME": "servelog", "SERVELOG_OPENSEARCH__PASSWORD_FILE": str(secret),
                    "SERVELOG_OPENSEARCH__RETRY_INITIAL_SECONDS": "0.05", "SERVELOG_OPENSEARCH__RETRY_MAX_SECONDS": "0.2",
                    "SERVELOG_LOG_ROOT": str(tmp_path / "pods"), "SERVELOG_STATE_DIR": str(tmp_path / "state"),
                    "SERVELOG_TELEMETRY__LISTEN": ""})
        proc = subprocess.Popen([sys.executable, "-m", "collector", "run"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while 401 not in fos.statuses() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert 401 in fos.statuses() and fos.doc_count() == 0
            time.sleep(0.05)
            secret.write_text("new-password")  # the Secret volume is updated in place
            deadline = time.monotonic() + 20
            while fos.doc_count() < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert ledger.compare(fos.all_sources("serving-logs-*")).exactly_once
        assert b"old-password" not in out + err and b"new-password" not in out + err


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_aws_sigv4_signs_every_request(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3", reason="SigV4 needs the optional 'aws' extra (boto3)")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSERVELOGTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with FakeOpenSearch() as fos:
        client = OpenSearchClient(OpenSearchSettings(url=fos.url, aws_region="eu-west-1", aws_service=service))
        assert client.info()["version"]["distribution"] == "opensearch"
        client.bulk(b'{"create":{"_index":"serving-logs-a-2026.11.24","_id":"x"}}\n{"message":"m"}\n')
    for request in fos.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDSERVELOGTEST/")
        assert f"/eu-west-1/{service}/aws4_request" in headers["authorization"]
        assert "x-amz-date" in headers
        assert "not-a-real-secret-key" not in str(headers)
