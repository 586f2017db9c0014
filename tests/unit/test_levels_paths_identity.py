"""Level detection, path parsing, identity derivation and enrichment: pure decisions."""

from __future__ import annotations

import pytest

from collector.model import PodMetadata
from collector.sources.files.paths import kserve_names_from_pod, parse_log_file_name, parse_pod_dir
from collector.transforms.enrich import merge_pod_fields, path_fields
from collector.transforms.identity import document_id, index_name, stream_prefix
from collector.transforms.levels import detect_level


@pytest.mark.parametrize(
    ("message", "level"),
    [
        ("2025-06-10 11:36:26.764 269781 kserve INFO [model_server.py:register_model():402] Registering model", "info"),
        ("2025-06-10 11:36:26.764 269781 kserve ERROR [model_server.py:predict():10] boom", "error"),
        ("2025-06-10 11:36:26.764 1 kserve.trace WARNING [x.py:f():1] slow", "warning"),
        ('INFO:     10.0.0.1:5000 - "POST /v1/models/iris:predict HTTP/1.1" 200 OK', "info"),
        ("ERROR:    Exception in ASGI application", "error"),
        ("2022-03-08 05:31:44.366405: I tensorflow_serving/model_servers/server.cc:89] Building", "info"),
        ("E0308 05:31:44.366405   1 server.cc:89] failed", "error"),
        ('{"severity":"ERROR","message":"x"}', "error"),
        ('{"level":"warn","msg":"x"}', "warning"),
        ('{"levelname":"CRITICAL"}', "critical"),
        ("just some text mentioning ERROR later", None),
        ("{not json", None),
        ('{"level": 3}', None),
    ],
)
def test_detect_level(message: str, level: str | None) -> None:
    assert detect_level(message) == level


def test_huge_json_line_is_not_parsed_for_a_level() -> None:
    message = '{"level":"error","pad":"' + "x" * 200_000 + '"}'
    assert detect_level(message) is None


class TestPaths:
    def test_pod_dir(self) -> None:
        pod = parse_pod_dir("team-a_iris-predictor-00001-deployment-7d9f8c6b5-x2x9p_0f1e2d3c-1111-2222-3333-444455556666")
        assert pod is not None
        assert (pod.namespace, pod.pod_name, pod.pod_uid) == (
            "team-a", "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p", "0f1e2d3c-1111-2222-3333-444455556666")

    @pytest.mark.parametrize("name", ["", "nounderscore", "a_b", "Team_pod_uid-0000-1111", "a_b_c_d"])
    def test_not_pod_dirs(self, name: str) -> None:
        assert parse_pod_dir(name) is None

    @pytest.mark.parametrize(
        ("name", "restart", "rotated", "gz"),
        [("0.log", 0, None, False), ("3.log", 3, None, False), ("0.log.20261124-091201", 0, "20261124-091201", False),
         ("1.log.20261124-091201.gz", 1, "20261124-091201", True)],
    )
    def test_log_file_names(self, name: str, restart: int, rotated: str | None, gz: bool) -> None:
        parsed = parse_log_file_name(name)
        assert parsed is not None
        assert (parsed.restart_count, parsed.rotated, parsed.gzipped) == (restart, rotated, gz)

    @pytest.mark.parametrize("name", ["0.log.gz", "0.log.tmp", "x.log", "0.log.20261124-091201.gz.tmp", "log"])
    def test_not_log_files(self, name: str) -> None:
        assert parse_log_file_name(name) is None

    def test_rotated_files_sort_before_the_live_file(self) -> None:
        names = [parse_log_file_name(n) for n in ["0.log", "0.log.20261124-101010", "0.log.20261124-091010.gz"]]
        ordered = sorted((n for n in names if n), key=lambda n: n.order_key)
        assert [n.rotated for n in ordered] == ["20261124-091010", "20261124-101010", None]

    @pytest.mark.parametrize(
        ("pod", "expected"),
        [
            ("sklearn-iris-predictor-00001-deployment-6d4c5f7b9-x2x9p", ("sklearn-iris", "predictor")),
            ("sklearn-iris-predictor-default-00002-deployment-6d4c5f7b9-x2x9p", ("sklearn-iris", "predictor")),
            ("fraud-transformer-00003-deployment-58f9d8b7c4-abcde", ("fraud", "transformer")),
            ("sklearn-iris-predictor-5d8c7b9f4-abcde", ("sklearn-iris", "predictor")),
            ("web-7d9f8c6b5-x2x9p", None),
        ],
    )
    def test_kserve_names_from_pod_names(self, pod: str, expected: tuple[str, str] | None) -> None:
        assert kserve_names_from_pod(pod) == expected


class TestIdentity:
    def test_id_is_a_pure_function_of_the_line_identity(self) -> None:
        prefix = stream_prefix("uid", "kserve-container", 0)
        assert document_id(prefix, 1, 0) == document_id(stream_prefix("uid", "kserve-container", 0), 1, 0)
        others = {document_id(prefix, 1, 1), document_id(prefix, 2, 0), document_id(stream_prefix("uid", "agent", 0), 1, 0),
                  document_id(stream_prefix("uid", "kserve-container", 1), 1, 0)}
        assert document_id(prefix, 1, 0) not in others and len(others) == 4

    def test_id_fits_opensearch_limits(self) -> None:
        doc_id = document_id(stream_prefix("u" * 36, "c" * 63, 99), 2**62, 10**6)
        assert len(doc_id) == 20 and doc_id.isascii()

    def test_index_is_the_lines_own_utc_day(self) -> None:
        assert index_name("serving-logs-{namespace}-{date}", namespace="team-a",
                          ts="2026-11-24T23:59:59.999999999Z") == "serving-logs-team-a-2026.11.24"

    def test_invalid_index_template_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid index name"):
            index_name("Serving-{date}", namespace="a", ts="2026-11-24T00:00:00.000000000Z")


class TestEnrichment:
    def test_path_fields_include_kserve_names(self) -> None:
        fields = path_fields(namespace="ns", pod_name="iris-predictor-00001-deployment-6d4c5f7b9-x2x9p", pod_uid="u",
                             container="storage-initializer", restart_count=0, node_name="n")
        assert fields["serving_name"] == "iris" and fields["component"] == "predictor"
        assert fields["metadata_source"] == "path" and fields["container_name"] == "storage-initializer"

    def test_provider_fields_win_except_for_path_facts(self) -> None:
        base = path_fields(namespace="ns", pod_name="p", pod_uid="u", container="c", restart_count=2, node_name="n")
        pod = PodMetadata(uid="u", namespace="ns", name="p", fields={
            "model_version": "3", "serving_name": "iris", "restart_count": 9, "container_name": "x", "model_name": None,
            "labels": {"app": "iris"}})
        merged = merge_pod_fields(base, pod, "kubernetes")
        assert merged["model_version"] == "3" and merged["serving_name"] == "iris"
        assert merged["restart_count"] == 2 and merged["container_name"] == "c"
        assert "model_name" not in merged and merged["metadata_source"] == "kubernetes"
