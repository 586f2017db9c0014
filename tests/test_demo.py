"""``servelog demo`` writes real kubelet-layout CRI logs that the files source reads end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

CRI = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [PF] ")


def demo(tmp_path: Path) -> tuple[Path, Path]:
    root, meta = tmp_path / "pods", tmp_path / "pods.yaml"
    subprocess.run([sys.executable, "-m", "collector", "demo", "--log-root", str(root), "--metadata-file", str(meta),
                    "--once", "--lines", "3000", "--rotate-bytes", "65536"], check=True, timeout=60)
    return root, meta


def test_demo_writes_valid_cri_files_rotated_like_the_kubelet(tmp_path: Path) -> None:
    import gzip

    root, meta = demo(tmp_path)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".gz") for p in files) and any(re.search(r"\.log\.\d{8}-\d{6}$", p.name) for p in files)
    assert any(p.name == "1.log" for p in files), "the OOMKilled container restarted"
    for path in files:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines = data.splitlines()
        for i, line in enumerate(lines):
            assert CRI.match(line), (path, line[:80])
            if line.split(b" ", 3)[2] == b"P":
                assert i + 1 < len(lines), "every P is followed by more of its line"
    pods = yaml.safe_load(meta.read_text())["items"]
    dirs = {p.name for p in root.iterdir()}
    assert {f"{p['metadata']['namespace']}_{p['metadata']['name']}_{p['metadata']['uid']}" for p in pods} == dirs


def test_demo_output_through_the_files_source(tmp_path: Path) -> None:
    root, meta = demo(tmp_path)
    done = subprocess.run([sys.executable, "-m", "collector", "run", "--once", "--output", "stdout", "--log-root", str(root),
                           "--metadata-file", str(meta), "--state-dir", str(tmp_path / "state"), "--listen", ""],
                          capture_output=True, check=True, timeout=60)
    docs = [json.loads(line)["source"] for line in done.stdout.splitlines()]
    versions = Counter((d["serving_name"], d["model_version"], d["component"]) for d in docs)
    assert set(versions) == {("fraud-detector", "1", "predictor"), ("fraud-detector", "2", "predictor"),
                             ("fraud-detector", "2", "transformer"), ("sentiment", "3", "predictor")}
    assert {d["container_name"] for d in docs} == {"storage-initializer", "kserve-container", "agent"}
    assert all(d["metadata_source"] == "static" for d in docs)
    tracebacks = [d for d in docs if d.get("line_count")]
    assert tracebacks and all(d["level"] == "error" and d["message"].startswith("Traceback") for d in tracebacks)
    assert any(len(d["message"]) == 40000 for d in docs), "16 KiB chunks merged back"
    assert any(d["restart_count"] == 1 and d["container_name"] == "kserve-container" for d in docs)
