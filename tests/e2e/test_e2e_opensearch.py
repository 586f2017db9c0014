"""End to end against a real OpenSearch: exactly once across SIGKILLs, and the real node's refusals dead-lettered.

The kubelet simulator (tests/support/kubelet.py) writes a corpus with everything that breaks naive
collectors (rotations with gzip, containerd's ``P``/``F`` chunks, a partial line across a rotation,
tracebacks); the ledger (tests/support/ledger.py) knows every logical line written; the real node
holds what servelog indexed. The comparison requires each line exactly once, across SIGKILLs of the
collector at random instants and restarts, and a replay from scratch counts every line as already
present (409 on ``create``), not indexed again.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.support import all_documents, ensure_setup, namespace, rest, run_once, start_collector
from tests.support.e2e import Cluster
from tests.support.kubelet import KubeletSim
from tests.support.ledger import Ledger
from tests.support.wait import wait_until

pytestmark = pytest.mark.e2e
UID = "0f1e2d3c-1111-2222-3333-444455556666"
POD = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"
TRACEBACK = ["Traceback (most recent call last):", '  File "model.py", line 12, in predict',
             "ValueError: shapes (1,3) and (4,) not aligned"]


def count(cluster: Cluster, pattern: str) -> int:
    rest(cluster, "POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
    return int(rest(cluster, "POST", f"/{pattern}/_count?ignore_unavailable=true&allow_no_indices=true",
                    {"query": {"match_all": {}}})["count"])


def test_exactly_once_across_sigkills_rotations_and_a_replay(opensearch: Cluster, tmp_path: Path) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    pattern = f"serving-logs-{ns}-*"
    rng = random.Random(11)
    with KubeletSim(tmp_path / "pods", max_files=1000) as sim:
        logs = [sim.container(ns, POD, UID, name) for name in ("kserve-container", "agent", "storage-initializer")]
        stop = threading.Event()

        def writer() -> None:
            for n in range(900):
                if stop.is_set():
                    return
                log = rng.choice(logs)
                kind = rng.random()
                if kind < 0.02:
                    log.rotate(compress=True)
                elif kind < 0.04:
                    log.write_traceback([*TRACEBACK[:1], f'  File "m.py", line {n}, in f', f"ValueError: {n}"])
                elif kind < 0.05:
                    log.write("x" * rng.randint(20_000, 60_000))  # containerd splits it into 16 KiB P chunks
                elif kind < 0.055:
                    log.write_partial_then_final_across_rotation(f"split {n} " + "y" * 30_000)
                else:
                    log.write_many([f"line {n}.{k} {'z' * rng.randint(0, 60)}" for k in range(4)])
                time.sleep(0.002)

        thread = threading.Thread(target=writer)
        thread.start()
        kills = 0
        try:
            while thread.is_alive() or kills < 2:
                proc = start_collector(opensearch, sim.root, tmp_path / "state")
                wait_until(lambda: count(opensearch, pattern) > 0, timeout=60, interval=0.2)
                time.sleep(rng.uniform(0.3, 1.5))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                if kills >= 6:
                    break
        finally:
            stop.set()
            thread.join()
        summary = run_once(opensearch, sim.root, tmp_path / "state")
        ledger = sim.ledger
    assert kills >= 2 and summary["dead_lettered"] == 0
    documents = all_documents(opensearch, pattern)
    report = ledger.compare(documents)
    assert report.exactly_once, str(report)
    assert any(d.get("line_count", 1) > 1 for d in documents) and any(len(d["message"]) > 16384 for d in documents)

    (tmp_path / "state" / "checkpoints.json").unlink()
    again = run_once(opensearch, sim.root, tmp_path / "state")
    assert again["indexed"] == 0 and again["already_present"] == len(ledger), again
    assert ledger.compare(all_documents(opensearch, pattern)).exactly_once


def test_a_document_the_node_refuses_is_dead_lettered_with_the_real_reason(opensearch: Cluster, tmp_path: Path) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    index = f"serving-logs-{ns}-2026.11.24"
    # the day's index exists already, created by hand with line_count as a boolean: a mapping conflict
    rest(opensearch, "PUT", f"/{index}", {"mappings": {"properties": {"line_count": {"type": "boolean"}}}})
    assert rest(opensearch, "GET", f"/{index}/_mapping")[index]["mappings"]["properties"]["line_count"] == {"type": "boolean"}
    with KubeletSim(tmp_path / "pods") as sim:
        log = sim.container(ns, POD, UID, "kserve-container")
        log.write_many([f"fine {n}" for n in range(50)])
        refused = log.write_traceback(TRACEBACK)  # grouped: line_count 3, which a boolean field refuses
        log.write_many([f"fine again {n}" for n in range(20)])
        summary = run_once(opensearch, sim.root, tmp_path / "state")
    assert summary["dead_lettered"] == 1, summary
    accepted = Ledger()
    accepted.extend(e for e in sim.ledger if e is not refused)
    assert accepted.compare(all_documents(opensearch, f"serving-logs-{ns}-*")).exactly_once
    dead = [d for d in all_documents(opensearch, "serving-deadletter-*") if d.get("namespace") == ns]
    assert len(dead) == 1
    letter = dead[0]
    assert (letter["status"], letter["error_type"], letter["target_index"]) == (400, "mapper_parsing_exception", index)
    assert letter["raw"] == "\n".join(TRACEBACK)
    assert letter["reason"].startswith("failed to parse field [line_count] of type [boolean] in document with id "), \
        letter["reason"]
    assert letter["doc_id"] and letter["container_name"] == "kserve-container"
