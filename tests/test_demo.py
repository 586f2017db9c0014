"""``servelog demo`` writes what a KServe node's kubelet would: CRI records, rotation, restarts, pod metadata.

The demo is run in-process (``add_arguments`` + ``run``) into ``tmp_path``; only the signal test and the
end-to-end test start processes. Every file is checked as a reader would see it: CRI grammar, ``P``
chunks completed by an ``F`` of the same stream, gzip members, and directories that match the pods.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.demo import command
from collector.demo.content import PODS, SECOND, TRACEBACK, LogLine, Restart, simulated_clock, story
from collector.demo.kubelet import CRI_MAX_RECORD, ContainerLog, cri_records, cri_timestamp

ROOT = Path(__file__).resolve().parents[1]
CRI = re.compile(rb"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) "
                 rb"(?P<stream>stdout|stderr) (?P<tag>[PF]) (?P<content>.*)$")
KSERVE_SDK = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ kserve (DEBUG|INFO|WARNING|ERROR) \[[\w.]+:\w+\(\):\d+\] ")
LOG_FILE = re.compile(r"^(?P<restart>\d+)\.log(?:\.(?P<stamp>\d{8}-\d{6})(?P<gz>\.gz)?)?$")


def run_demo(tmp_path: Path, *extra: str, lines: int = 3000, rotate_bytes: int = 24000) -> tuple[Path, Path]:
    root, meta = tmp_path / "pods", tmp_path / "pods.yaml"
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--log-root", str(root), "--metadata-file", str(meta), "--once", "--lines", str(lines),
                              "--rotate-bytes", str(rotate_bytes), *extra])
    assert command.run(args) == 0
    return root, meta


def read_log(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def log_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def logical_lines(records: list[bytes]) -> list[tuple[str, bytes]]:
    """Reassemble P/F records into (stream, line), as a CRI reader does (per stream)."""
    pending: dict[str, bytes] = {}
    out = []
    for record in records:
        match = CRI.match(record)
        assert match, record[:100]
        stream = match["stream"].decode()
        pending[stream] = pending.get(stream, b"") + match["content"]
        if match["tag"] == b"F":
            out.append((stream, pending.pop(stream)))
    assert not pending, "a P record is never left without its F"
    return out


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_demo(tmp_path_factory.mktemp("demo"))


def test_every_file_is_in_the_kubelet_layout_and_every_record_is_cri(demo_output: tuple[Path, Path]) -> None:
    root, _ = demo_output
    files = log_files(root)
    assert files
    for path in files:
        pod_dir, container = path.parent.parent.name, path.parent.name
        assert path.parent.parent.parent == root
        assert re.fullmatch(r"[a-z0-9-]+_[a-z0-9.-]+_[0-9a-f-]{36}", pod_dir), pod_dir
        assert container in {"storage-initializer", "kserve-container", "queue-proxy", "agent"}
        assert LOG_FILE.match(path.name), path.name
        records = read_log(path).split(b"\n")
        assert records.pop() == b"", f"{path.name} ends with a newline"
        for record in records:
            assert CRI.match(record), (path, record[:100])
        logical_lines(records)


def test_long_lines_are_split_into_16KiB_P_records_closed_by_F(demo_output: tuple[Path, Path]) -> None:
    root, _ = demo_output
    long_lines = []
    for path in log_files(root):
        records = read_log(path).splitlines()
        for i, record in enumerate(records):
            match = CRI.match(record)
            assert match
            if match["tag"] == b"P":
                assert len(match["content"]) == CRI_MAX_RECORD
                following = CRI.match(records[i + 1])
                assert following and following["stream"] == match["stream"] and following["ts"] == match["ts"]
        long_lines += [line for _, line in logical_lines(records) if len(line) > 2 * CRI_MAX_RECORD]
    assert long_lines, "the demo logs a payload longer than two records"
    assert all(b"Received payload: {\"instances\"" in line for line in long_lines)


def test_timestamps_are_containerd_style_utc_with_trailing_zeros_trimmed(demo_output: tuple[Path, Path]) -> None:
    root, _ = demo_output
    for path in log_files(root):
        for record in read_log(path).splitlines():
            match = CRI.match(record)
            assert match
            ts = match["ts"].decode()
            fraction = ts[20:-1] if "." in ts else ""
            assert not fraction.endswith("0"), ts


def test_cri_encoding_of_timestamps_and_chunks() -> None:
    base = 1795510800 * SECOND  # 2026-11-24T09:00:00Z
    assert cri_timestamp(base) == "2026-11-24T09:00:00Z"
    assert cri_timestamp(base + 764_269_781) == "2026-11-24T09:00:00.764269781Z"
    assert cri_timestamp(base + 120_000_000) == "2026-11-24T09:00:00.12Z"
    assert cri_records("", stream="stdout", time_ns=base) == b"2026-11-24T09:00:00Z stdout F \n"
    exact = cri_records("x" * CRI_MAX_RECORD, stream="stderr", time_ns=base).splitlines()
    assert [r.split(b" ")[2] for r in exact] == [b"F"]
    split = cri_records("é" * CRI_MAX_RECORD, stream="stderr", time_ns=base).splitlines()  # 2 bytes per character
    assert [r.split(b" ")[2] for r in split] == [b"P", b"F"]
    assert b"".join(r.split(b" ", 3)[3] for r in split).decode() == "é" * CRI_MAX_RECORD


def test_rotation_renames_with_a_kubelet_stamp_gzips_older_files_and_keeps_five(demo_output: tuple[Path, Path]) -> None:
    root, _ = demo_output
    instances: dict[tuple[Path, str], list[re.Match[str]]] = {}
    for path in log_files(root):
        match = LOG_FILE.match(path.name)
        assert match
        instances.setdefault((path.parent, match["restart"]), []).append(match)
    gzipped = 0
    for (directory, restart), names in instances.items():
        assert (directory / f"{restart}.log").exists(), "the live file always exists"
        assert len(names) <= 5
        rotated = sorted((m for m in names if m["stamp"]), key=lambda m: m["stamp"])
        if rotated:
            assert not rotated[-1]["gz"], "the newest rotated file stays uncompressed"
            assert all(m["gz"] for m in rotated[:-1]), "older rotated files are gzipped"
            gzipped += sum(1 for m in rotated if m["gz"])
    assert gzipped, "rotation produced .gz files"
    assert not [p for p in log_files(root) if p.name.endswith(".tmp")]


def test_rotation_never_loses_or_reorders_a_record(tmp_path: Path) -> None:
    log = ContainerLog(tmp_path / "c", 0, max_bytes=300, max_files=100)
    base = 1795510800 * SECOND
    for i in range(200):
        log.append(cri_records(f"line {i}", stream="stdout", time_ns=base + i * SECOND // 3), time_ns=base + i * SECOND // 3)
    files = [*sorted(p for p in (tmp_path / "c").iterdir() if p.name != "0.log"), tmp_path / "c" / "0.log"]
    text = b"".join(read_log(p) for p in files)
    assert [r.split(b" ", 3)[3] for r in text.splitlines()] == [f"line {i}".encode() for i in range(200)]


def test_metadata_file_is_a_podlist_matching_the_directories(demo_output: tuple[Path, Path]) -> None:
    root, meta = demo_output
    podlist = yaml.safe_load(meta.read_text())
    assert podlist["kind"] == "PodList" and podlist["apiVersion"] == "v1"
    pods = {p["metadata"]["uid"]: p for p in podlist["items"]}
    directories = {d.name: d for d in root.iterdir()}
    assert {f"{p['metadata']['namespace']}_{p['metadata']['name']}_{uid}" for uid, p in pods.items()} == set(directories)
    for name, directory in directories.items():
        pod = pods[name.rsplit("_", 1)[1]]
        named = {c["name"] for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])}
        assert {c.name for c in directory.iterdir()} <= named
        labels = pod["metadata"]["labels"]
        assert labels["serving.kserve.io/inferenceservice"] in {"fraud-detector", "sentiment"}
        assert labels["component"] in {"predictor", "transformer"}
        assert labels["serving.knative.dev/revision"] == f"{labels['serving.kserve.io/inferenceservice']}-" \
                                                         f"{labels['component']}-{int(labels['serving.knative.dev/configurationGeneration']):05d}"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    versions = {(p["metadata"]["namespace"], p["metadata"]["labels"]["serving.kserve.io/inferenceservice"],
                 p["metadata"]["labels"]["serving.knative.dev/configurationGeneration"], p["metadata"]["labels"]["component"])
                for p in pods.values()}
    assert versions == {("team-risk", "fraud-detector", "1", "predictor"), ("team-risk", "fraud-detector", "2", "predictor"),
                        ("team-risk", "fraud-detector", "2", "transformer"), ("team-nlp", "sentiment", "3", "predictor")}


def test_the_oomkilled_container_restarts_into_1_log_and_the_metadata_says_so(demo_output: tuple[Path, Path]) -> None:
    root, meta = demo_output
    restarted = list(root.rglob("1.log"))
    assert len(restarted) == 1 and restarted[0].parent.name == "kserve-container"
    uid = restarted[0].parent.parent.name.rsplit("_", 1)[1]
    (pod,) = [p for p in yaml.safe_load(meta.read_text())["items"] if p["metadata"]["uid"] == uid]
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "kserve-container"]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled" and status["lastState"]["terminated"]["exitCode"] == 137
    files = sorted(restarted[0].parent.glob("1.log*"), key=lambda p: (p.name == "1.log", p.name))  # oldest first
    lines = [line for _, line in logical_lines(b"".join(read_log(p) for p in files).splitlines())]
    assert any(b"Registering model: sentiment" in line for line in lines), "the restarted server starts up again"


def test_the_story_contains_what_a_kserve_operator_sees(demo_output: tuple[Path, Path]) -> None:
    root, _ = demo_output
    by_container: dict[str, list[bytes]] = {}
    for path in log_files(root):
        by_container.setdefault(path.parent.name, []).extend(line for _, line in logical_lines(read_log(path).splitlines()))
    init = b"\n".join(by_container["storage-initializer"]).decode()
    for expected in ("kserve INFO [storage.py:download():64] Copying contents of s3://models/fraud-detector/2 to local",
                     "Successfully copied s3://models/", "Model downloaded in 1.11 seconds."):
        assert expected in init
    server = [line.decode() for line in by_container["kserve-container"]]
    assert any(KSERVE_SDK.match(line) and "Registering model: fraud-detector" in line for line in server)
    assert any(re.match(r'^INFO: {5}[\d.]+:\d+ - "POST /v1/models/\S+:predict HTTP/1.1" 200 OK$', line) for line in server)
    assert any('"GET /v1/models/fraud-detector HTTP/1.1" 503 Service Unavailable' in line for line in server), "readiness"
    start = server.index(TRACEBACK[0])
    assert server[start:start + len(TRACEBACK)] == list(TRACEBACK)
    assert server[start + len(TRACEBACK) - 1].startswith("ValueError: ")
    assert KSERVE_SDK.match(server[start - 1]) and " ERROR " in server[start - 1], "logger.exception: message, then traceback"
    agent = [json.loads(line) for line in by_container["agent"]]
    assert {"Logging request", "Logging response"} <= {a["msg"] for a in agent}
    assert any("Readiness probe failed" in json.loads(line)["message"] for line in by_container["queue-proxy"])


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    def snapshot(where: Path, seed: str) -> dict[str, bytes]:
        root, meta = run_demo(where, "--seed", seed, lines=600, rotate_bytes=8192)
        files = {str(p.relative_to(root)): p.read_bytes() for p in log_files(root)}
        files["pods.yaml"] = meta.read_bytes()
        return files

    first = snapshot(tmp_path / "a", "7")
    assert first == snapshot(tmp_path / "b", "7")
    assert first != snapshot(tmp_path / "c", "8")


def test_the_story_is_pure_and_ends_after_about_max_lines() -> None:
    import random

    def tell() -> list[LogLine | Restart]:
        return list(story(rng=random.Random(3), clock=simulated_clock(0, random.Random(4)), max_lines=500, oom_after=200))

    events = tell()
    assert events == tell()
    lines = [e for e in events if isinstance(e, LogLine)]
    assert 500 <= len(lines) < 520
    assert [e.time_ns for e in lines] == sorted(e.time_ns for e in lines), "a single clock: time never goes back"
    (restart,) = [e for e in events if isinstance(e, Restart)]
    assert restart.reason == "OOMKilled" and restart.pod in PODS
    after = events[events.index(restart) + 1:]
    same = [e for e in after if isinstance(e, LogLine) and (e.pod, e.container) == (restart.pod, restart.container)]
    assert same and all(e.restart == 1 for e in same)


def test_live_mode_with_duration_stops_by_itself_and_restores_signal_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--log-root", str(tmp_path / "pods"), "--metadata-file", str(tmp_path / "pods.yaml"),
                              "--duration", "0.2", "--rate", "1000"])
    assert command.run(args) == 0
    assert list((tmp_path / "pods").rglob("0.log"))
    assert signal.getsignal(signal.SIGTERM) == before


def test_once_and_duration_are_mutually_exclusive_and_rates_must_be_positive() -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    required = ["--log-root", "r", "--metadata-file", "m"]
    for bad in (["--once", "--duration", "5"], ["--rate", "0"], ["--lines", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(required + bad)


def test_live_mode_runs_until_sigterm_then_exits_zero(tmp_path: Path) -> None:
    root, meta = tmp_path / "pods", tmp_path / "pods.yaml"
    code = ("import argparse, sys; from collector.demo import command; p = argparse.ArgumentParser(); "
            "command.add_arguments(p); sys.exit(command.run(p.parse_args(sys.argv[1:])))")
    process = subprocess.Popen([sys.executable, "-c", code, "--log-root", str(root), "--metadata-file", str(meta),
                                "--rate", "500"], cwd=ROOT, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        from tests.support.wait import wait_until

        wait_until(lambda: len(list(root.rglob("0.log"))) >= 10, timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert re.search(rb"wrote \d+ lines", stderr)
    assert yaml.safe_load(meta.read_text())["kind"] == "PodList"


def test_demo_output_through_the_files_source(tmp_path: Path) -> None:
    root, meta = run_demo(tmp_path)
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout", "--log-root", str(root),
                           "--metadata-file", str(meta), "--state-dir", str(tmp_path / "state"), "--listen", ""],
                          capture_output=True, check=True, timeout=120, cwd=ROOT)
    docs: list[dict[str, Any]] = [json.loads(line)["source"] for line in done.stdout.splitlines()]
    versions = Counter((d["serving_name"], d["model_version"], d["component"]) for d in docs)
    assert set(versions) == {("fraud-detector", "1", "predictor"), ("fraud-detector", "2", "predictor"),
                             ("fraud-detector", "2", "transformer"), ("sentiment", "3", "predictor")}
    assert {d["container_name"] for d in docs} == {"storage-initializer", "kserve-container", "agent"}, "queue-proxy excluded"
    assert all(d["metadata_source"] == "static" for d in docs)
    tracebacks = [d for d in docs if d["message"].startswith("Traceback")]
    assert tracebacks and all(d["level"] == "error" and d["message"].endswith("as input.") for d in tracebacks)
    assert any(len(d["message"]) > 2 * CRI_MAX_RECORD for d in docs), "16 KiB chunks merged back"
    assert any(d["restart_count"] == 1 and d["container_name"] == "kserve-container" for d in docs)
