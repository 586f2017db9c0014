"""``servelog logs`` against a real OpenSearch: gap-free paging and ``--follow`` while the collector indexes.

Both run with ``indices.id_field_data.enabled: false`` (a dynamic cluster setting): sorting on
``_id`` is refused there, so ``servelog logs`` must not need it. The oracle is the ledger of every
line written, compared with what ``servelog logs --json`` printed: each line exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main
from tests.e2e.support import cluster_settings, ensure_setup, namespace, rest, run_once, servelog_env, start_collector
from tests.support.e2e import Cluster
from tests.support.kubelet import KubeletSim
from tests.support.opensearch_server import iso_to_nanos
from tests.support.wait import wait_until

pytestmark = pytest.mark.e2e
UID = "0f1e2d3c-1111-2222-3333-444455556666"
POD = "iris-predictor-00001-deployment-7d9f8c6b5-x2x9p"
LAST_NS_OF_DAY = 1795564799 * 10**9 + 999_999_999  # 2026-11-24T23:59:59.999999999Z
FIRST_NS_OF_NEXT_DAY = 1795564800 * 10**9  # 2026-11-25T00:00:00Z


def printed(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_paging_through_thousands_of_lines_sharing_a_timestamp_across_two_days(
        opensearch: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_setup(opensearch)
    ns = namespace()
    with KubeletSim(tmp_path / "pods") as sim:
        log = sim.container(ns, POD, UID, "kserve-container")
        log.write_many([f"before midnight {n}" for n in range(1300)], ts_ns=LAST_NS_OF_DAY)
        log.write_many([f"after midnight {n}" for n in range(1300)], ts_ns=FIRST_NS_OF_NEXT_DAY)
        assert run_once(opensearch, sim.root, tmp_path / "state")["indexed"] == 2600
    indices = rest(opensearch, "GET", f"/_cat/indices/serving-logs-{ns}-*?format=json&h=index")
    assert sorted(r["index"] for r in indices) == [f"serving-logs-{ns}-2026.11.24", f"serving-logs-{ns}-2026.11.25"]
    rest(opensearch, "POST", f"/serving-logs-{ns}-*/_refresh")
    with cluster_settings(opensearch, {"indices.id_field_data.enabled": False}):
        refused = rest(opensearch, "POST", f"/serving-logs-{ns}-*/_search", {"sort": [{"_id": "asc"}]}, ok=(400,))
        assert "Fielddata access on the _id field is disallowed" in json.dumps(refused), "the old tiebreaker fails here"
        capsys.readouterr()
        assert main(["logs", "--opensearch-url", opensearch.url, "--namespace", ns, "--json", "--limit", "0"]) == 0
        out = capsys.readouterr().out
    lines = printed(out)
    assert sim.ledger.compare([line["source"] for line in lines]).exactly_once, "nothing skipped or repeated"
    stamps = [line["source"]["timestamp"] for line in lines]
    assert stamps == sorted(stamps) and len({line["id"] for line in lines}) == 2600
    assert stamps[0].startswith("2026-11-24T23:59:59.999999999") and stamps[-1].startswith("2026-11-25T00:00:00")


def test_follow_prints_every_line_once_while_the_collector_indexes_out_of_order(
        opensearch: Cluster, tmp_path: Path) -> None:
    ensure_setup(opensearch)  # the template's refresh_interval: 5s
    ns = namespace()
    out_path = tmp_path / "follow.out"
    with cluster_settings(opensearch, {"indices.id_field_data.enabled": False}), \
            KubeletSim(tmp_path / "pods", clock=time.time_ns) as sim, out_path.open("wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "collector", "logs", "--opensearch-url", opensearch.url,
                                     "--namespace", ns, "--json", "--limit", "0", "--follow", "--since", "now-10m",
                                     "--poll-seconds", "1", "--follow-window", "60"],
                                    env=servelog_env(), stdout=out, stderr=subprocess.PIPE)
        collector = start_collector(opensearch, sim.root, tmp_path / "state", SERVELOG_OPENSEARCH__WORKERS="2",
                                    SERVELOG_OPENSEARCH__BULK_MAX_DOCS="50")
        try:
            front, behind = (sim.container(ns, POD, UID, c) for c in ("kserve-container", "agent"))
            for burst in range(6):
                front.write_many([f"front {burst}.{n}" for n in range(40)])
                time.sleep(0.3)
            wait_until(lambda: out_path.read_bytes().count(b"\n") > 0, timeout=90, interval=0.3)
            newest_printed = max(printed(out_path.read_text()), key=lambda x: x["source"]["timestamp"])
            stamp = newest_printed["source"]["timestamp"]
            # lines stamped before what the follower already printed, arriving now (another file, a late batch)
            late_ns = (iso_to_nanos(stamp) or 0) - 2 * 10**9
            for burst in range(6, 12):
                behind.write_many([f"behind {burst}.{n}" for n in range(30)], ts_ns=late_ns + burst)
                front.write_many([f"front {burst}.{n}" for n in range(40)])
                time.sleep(0.3)
            expected = len(sim.ledger)
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= expected, timeout=90, interval=0.5)
            time.sleep(3)  # a few more polls: a repeat would show now
        finally:
            collector.send_signal(signal.SIGTERM)
            collector.wait(timeout=60)
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err.decode()[-2000:]
    lines = printed(out_path.read_text())
    report = sim.ledger.compare([line["source"] for line in lines])
    assert report.exactly_once, str(report)
    assert b"warning" not in err, err.decode()
    stamps = [line["source"]["timestamp"] for line in lines]
    first_late = next(n for n, line in enumerate(lines) if line["source"]["message"].startswith("behind"))
    assert max(stamps[:first_late]) > stamps[first_late], "a late line was printed after newer ones, not lost"
