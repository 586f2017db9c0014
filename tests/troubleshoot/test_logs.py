"""``servelog logs SERVING --source kubernetes|auto``: transient logs straight from the components, through ``pods/log``.

Every pod of the component, lines merged by timestamp and labelled by pod, the same documents as
the collector indexes (ids, index, model fields), ``--tail``, ``--previous``, the filters; and
``--follow`` across a dropped stream and a container restart, checked with a ledger oracle: every
line printed exactly once, those sharing the boundary timestamp included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collector.errors import KubeRejected
from collector.kube.client import KubeClient
from collector.query.search import when_ns
from collector.query.transient import streams_of
from collector.transforms.identity import document_id, stream_prefix
from tests.deployment import builders as b
from tests.support.ledger import Ledger
from tests.support.wait import wait_until
from tests.troubleshoot.conftest import Cluster

T0_NS = int(b.T0.timestamp()) * 10**9
NS = b.NAMESPACE


def deployment(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two predictor replicas and a transformer; each replica's storage-initializer ran, then its model server."""
    first, second = b.pod(suffix="aaaaa"), b.pod(suffix="bbbbb", created=12)
    transformer = b.pod(component="transformer", suffix="tr4n5")
    cluster.load(isvc=b.isvc(transformer=True), pods=[first, second, transformer])
    log = cluster.kube.append_log
    for n, pod in enumerate((first, second)):
        name = pod["metadata"]["name"]
        log(NS, name, "storage-initializer", f"copying model to /mnt/models ({n})", T0_NS + n)
        for k in range(4):  # the replicas' lines interleave in time
            log(NS, name, "kserve-container", f"INFO:     replica {n} line {k}", T0_NS + (2 * k + n + 2) * 10**9)
        log(NS, name, "queue-proxy", '{"severity":"INFO","message":"probe ok"}', T0_NS + 5 * 10**9)
    log(NS, transformer["metadata"]["name"], "kserve-container", "transformer ready", T0_NS + 3 * 10**9)
    log(NS, first["metadata"]["name"], "kserve-container", "ERROR: failed to decode the request", T0_NS + 20 * 10**9)
    return first, second, transformer


def messages(lines: list[dict[str, Any]]) -> list[str]:
    return [line["source"]["message"] for line in lines]


def test_every_predictor_pod_merged_by_timestamp_as_the_collector_would_index_it(cluster: Cluster) -> None:
    first, second, _ = deployment(cluster)
    ran = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--component", "predictor", "--json",
                           "--limit", "0")
    assert ran.status == 0, ran.err
    lines = ran.lines()
    assert messages(lines) == ["copying model to /mnt/models (0)", "copying model to /mnt/models (1)",
                               *[f"INFO:     replica {(k - 2) % 2} line {(k - 2) // 2}" for k in range(2, 10)],
                               "ERROR: failed to decode the request"], "both replicas, merged by time; no queue-proxy"
    stamps = [line["source"]["timestamp"] for line in lines]
    assert stamps == sorted(stamps)
    for line in lines:
        source = line["source"]
        pod = first if source["pod_name"] == first["metadata"]["name"] else second
        assert source["pod_uid"] == pod["metadata"]["uid"]
        assert (source["serving_name"], source["component"], source["model_version"]) == (b.NAME, "predictor", "1")
        prefix = stream_prefix(source["pod_uid"], source["container_name"], source["restart_count"])
        assert line["id"] == source["doc_id"] == document_id(prefix, when_ns(source["timestamp"], 0), 0), \
            "the _id the collector gives the line"
        assert line["index"] == f"serving-logs-{NS}-2026.11.24"
    assert lines[-1]["source"]["level"] == "error" and lines[2]["source"]["level"] == "info"


def test_tail_text_output_labels_the_pod_and_filters_apply(cluster: Cluster) -> None:
    _, second, _ = deployment(cluster)
    tail = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--container", "kserve-container",
                            "--component", "predictor", "--tail", "2")
    assert tail.status == 0, tail.err
    printed = tail.out.splitlines()
    assert [line.rsplit("     ", 1)[-1] if "INFO" in line else line.split(" ERROR ")[-1] for line in printed] == [
        "replica 1 line 2", "replica 0 line 3", "replica 1 line 3", "ERROR: failed to decode the request"], \
        "the last 2 lines of each replica, merged by time"
    assert f"sklearn-iris/1/predictor/kserve-container [{second['metadata']['name']}] INFO INFO:     replica 1 line 2" \
        in printed[0]
    assert all("tailLines=2" in r for r in cluster.kube.requests if "/log?" in r)
    errors = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--level", "error", "--json")
    assert messages(errors.lines()) == ["ERROR: failed to decode the request"]
    grep = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--grep", "LINE 3", "--json",
                            "--since", "2026-11-24T09:00:08.5Z")
    assert messages(grep.lines()) == ["INFO:     replica 1 line 3"], \
        "case-insensitive; --since to the nanosecond (the API: whole seconds)"
    every = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--container", "queue-proxy", "--json")
    assert len(every.lines()) == 2, "an excluded container is read when named"


def test_previous_reads_the_instance_before_the_restart(cluster: Cluster) -> None:
    first, _, _ = deployment(cluster)
    name = first["metadata"]["name"]
    cluster.kube.restart_container(NS, name, "kserve-container", exit_code=137, reason="OOMKilled")
    cluster.kube.append_log(NS, name, "kserve-container", "INFO:     restarted", T0_NS + 60 * 10**9)
    args = ("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--pod", name, "--container", "kserve-container", "--json")
    previous = cluster.servelog(*args, "--previous").lines()
    assert messages(previous)[-1] == "ERROR: failed to decode the request" and len(previous) == 5
    assert {line["source"]["restart_count"] for line in previous} == {0}
    current = cluster.servelog(*args).lines()
    assert messages(current) == ["INFO:     restarted"] and current[0]["source"]["restart_count"] == 1
    assert cluster.servelog(*args[:-3], "--previous", "--component", "transformer").status == 5, "nothing restarted there"


def test_auto_reads_the_running_components_and_says_so(cluster: Cluster) -> None:
    deployment(cluster)
    ran = cluster.servelog("logs", b.NAME, "-n", NS, "--json", "--component", "transformer")
    assert ran.status == 0 and messages(ran.lines()) == ["transformer ready"]
    assert "reading the transient logs of 1 pod of sklearn-iris (transformer)" in ran.err
    assert "--source opensearch reads the historical logs" in ran.err


def test_usage_errors_and_nothing_to_read(cluster: Cluster) -> None:
    assert cluster.servelog("logs", "--source", "kubernetes").status == 2, "which deployment?"
    assert cluster.servelog("logs", b.NAME, "--serving", "other").status == 2
    assert cluster.servelog("logs", b.NAME, "--source", "opensearch", "--previous").status == 2
    assert cluster.servelog("logs", b.NAME, "--follow", "--until", "now").status == 2
    missing = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes")
    assert missing.status == 5 and "no deployment named sklearn-iris" in missing.err


def test_which_instance_is_read_follows_the_kubelet() -> None:
    crashing = b.pod(app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=3,
                                    last=b.terminated_state("OOMKilled", 137)), b.running("queue-proxy")])
    streams = {s.target.container: s.target for s in streams_of([crashing], excluded=["queue-proxy"])}
    assert set(streams) == {"storage-initializer", "kserve-container"}
    assert (streams["kserve-container"].restart_count, streams["kserve-container"].previous) == (2, True), \
        "a container waiting to restart is read from the instance that crashed"
    waiting = b.pod(app=[b.waiting("kserve-container", "ImagePullBackOff")], init=[])
    assert streams_of([waiting]) == [], "nothing ever ran"


def test_follow_prints_every_line_once_across_a_dropped_stream_and_a_restart(cluster: Cluster, tmp_path: Path) -> None:
    pod = b.pod(init=[], app=[b.running("kserve-container", since=0)])
    cluster.load(isvc=b.isvc(), pods=[pod])
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    ledger = Ledger()
    base = time.time_ns() - 60 * 10**9

    def write(text: str, ts_ns: int, restart: int = 0) -> None:
        cluster.kube.append_log(NS, name, "kserve-container", text, ts_ns)
        ledger.add(uid, "kserve-container", restart, "", text)

    for n in range(6):
        write(f"before {n}", base + n * 10**6)
    boundary = base + 10 * 10**9 + 123_456_789
    for n in range(4):
        write(f"boundary {n}", boundary)  # four lines sharing one timestamp
    out_path = tmp_path / "follow.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    with out_path.open("wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "collector", "logs", b.NAME, "-n", NS, "--source", "kubernetes",
                                     "--follow", "--json", "--poll-seconds", "0.3", "--kubeconfig", str(cluster.kubeconfig)],
                                    env=env, stdout=out, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= 10, timeout=30, interval=0.1)
            cluster.kube.drop_log_streams()  # cut while the last lines printed share the boundary timestamp
            for n in range(4, 7):
                write(f"boundary {n}", boundary)  # more lines of that same instant, sent after the cut
            write("after the cut", boundary + 10**9)
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= 14, timeout=30, interval=0.1)
            cluster.kube.restart_container(NS, name, "kserve-container")
            cluster.kube.append_log(NS, name, "kserve-container", "INFO:     started again", time.time_ns())
            ledger.add(uid, "kserve-container", 1, "", "INFO:     started again")
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= 15, timeout=30, interval=0.1)
            time.sleep(1.0)  # a few more polls and reconnects: a repeat would show now
        finally:
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err.decode()[-2000:]
    printed = [json.loads(line)["source"] for line in out_path.read_text().splitlines() if line.strip()]
    report = ledger.compare(printed, check_stream=False)
    assert report.exactly_once, str(report)
    assert len({doc["doc_id"] for doc in printed}) == len(printed) == 15
    assert b"stream interrupted" in err and b"resuming" in err


def test_times_are_read_as_opensearch_reads_the_common_ones() -> None:
    now = T0_NS + 123
    assert when_ns("now", now) == now and when_ns("now-1h", now) == now - 3600 * 10**9
    assert when_ns("now+2d", now) == now + 2 * 86400 * 10**9
    assert when_ns("2026-11-24", now) == T0_NS - 9 * 3600 * 10**9
    assert when_ns("2026-11-24T10:00:00.5+01:00", now) == T0_NS + 5 * 10**8
    for bad in ("yesterday", "now-1y", "2026-11-24 09:00", ""):
        with pytest.raises(ValueError, match="cannot read the time"):
            when_ns(bad, now)


def test_tail_is_the_last_lines_within_until_since_and_the_filters(cluster: Cluster) -> None:
    """``--tail N`` is taken after ``--until``, ``--since`` and the filters (review D5): pods/log has no until."""
    first, _, _ = deployment(cluster)
    args = ("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--pod", first["metadata"]["name"],
            "--container", "kserve-container", "--json")
    until = cluster.servelog(*args, "--tail", "2", "--until", "2026-11-24T09:00:07Z")
    assert until.status == 0, until.err
    assert messages(until.lines()) == ["INFO:     replica 0 line 1", "INFO:     replica 0 line 2"], \
        "the last 2 lines before --until, though newer ones exist"
    since = cluster.servelog(*args, "--tail", "3", "--since", "2026-11-24T09:00:03Z")
    assert messages(since.lines()) == ["INFO:     replica 0 line 2", "INFO:     replica 0 line 3",
                                       "ERROR: failed to decode the request"]
    window = cluster.servelog(*args, "--tail", "5", "--since", "2026-11-24T09:00:03Z", "--until", "2026-11-24T09:00:08Z")
    assert messages(window.lines()) == ["INFO:     replica 0 line 1", "INFO:     replica 0 line 2"]
    grep = cluster.servelog(*args, "--tail", "1", "--grep", "replica")
    assert messages(grep.lines()) == ["INFO:     replica 0 line 3"], "the last matching line, not the last line filtered"


def test_bad_times_are_usage_errors_before_anything_is_asked(cluster: Cluster) -> None:
    """Review D7a: a bad --since/--until is exit status 2 with the forms it takes; durations are one of them."""
    for argv in (("logs", b.NAME, "--since", "yesterday"), ("logs", b.NAME, "--source", "opensearch", "--until", "9am"),
                 ("history", b.NAME, "--since", "last week")):
        ran = cluster.servelog(*argv, cluster=argv[0] == "logs")
        assert ran.status == 2, (argv, ran.err)
        assert "cannot read the time" in ran.err and "(10m, 2h, 1d)" in ran.err
    assert not cluster.kube.requests, "nothing asked"
    assert when_ns("10m", 3600 * 10**9) == when_ns("now-10m", 3600 * 10**9) == 3000 * 10**9
    first, _, _ = deployment(cluster)
    recent = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--since", "1d", "--json",
                              "--pod", first["metadata"]["name"], "--container", "kserve-container")
    assert recent.status == 0, recent.err


def crash_looping(cluster: Cluster) -> dict[str, Any]:
    """A predictor whose kserve-container waits in CrashLoopBackOff after an OOM kill; its previous instance printed."""
    pod = b.pod(init=[], app=[b.waiting("kserve-container", "CrashLoopBackOff", restarts=3,
                                        last=b.terminated_state("OOMKilled", 137))])
    cluster.load(isvc=b.isvc(), pods=[pod])
    for n in range(3):
        cluster.kube.append_log(NS, pod["metadata"]["name"], "kserve-container", f"loading shard {n}",
                                T0_NS + n * 10**9, previous=True)
    return pod


def test_a_waiting_container_is_read_from_its_previous_instance_and_says_so(cluster: Cluster) -> None:
    """Review D7b: CrashLoopBackOff has no current output; the instance that crashed is read, once, with a note."""
    pod = crash_looping(cluster)
    name = pod["metadata"]["name"]
    for source in ("kubernetes", "auto"):
        ran = cluster.servelog("logs", b.NAME, "-n", NS, "--source", source, "--json")
        assert ran.status == 0, ran.err
        assert messages(ran.lines()) == ["loading shard 0", "loading shard 1", "loading shard 2"]
        assert {line["source"]["restart_count"] for line in ran.lines()} == {2}, "the instance before the current"
        told = f"{name}: kserve-container is waiting (CrashLoopBackOff): reading its previous instance"
        assert ran.err.count(told) == 1, ran.err
    reads = [r for r in cluster.kube.requests if "/log?" in r]
    assert reads and all("previous=true" in r for r in reads)
    explicit = cluster.servelog("logs", b.NAME, "-n", NS, "--source", "kubernetes", "--previous", "--json")
    assert explicit.status == 0 and len(explicit.lines()) == 3 and "is waiting" not in explicit.err, \
        "--previous asked for it: nothing to explain"


def test_the_loopback_refuses_a_previous_instance_that_does_not_exist_as_the_api_does(cluster: Cluster) -> None:
    first, _, _ = deployment(cluster)
    with KubeClient.for_host(cluster.kube.url) as client, pytest.raises(KubeRejected) as refused:
        list(client.stream_pod_log(NS, first["metadata"]["name"], container="kserve-container", follow=False,
                                   timestamps=False, since_time=None, previous=True, request_timeout=10))
    assert refused.value.status == 400
    assert f'previous terminated container "kserve-container" in pod "{first["metadata"]["name"]}" not found' \
        in str(refused.value)


def test_follow_prints_the_previous_instance_then_follows_the_next_one(cluster: Cluster, tmp_path: Path) -> None:
    pod = crash_looping(cluster)
    name = pod["metadata"]["name"]
    out_path = tmp_path / "follow.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_")}
    with out_path.open("wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "collector", "logs", b.NAME, "-n", NS, "--source", "kubernetes",
                                     "--follow", "--json", "--poll-seconds", "0.3", "--kubeconfig", str(cluster.kubeconfig)],
                                    env=env, stdout=out, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= 3, timeout=30, interval=0.1)
            started = b.pod(init=[], app=[b.running("kserve-container", restarts=3,
                                                    last=b.terminated_state("OOMKilled", 137))])
            cluster.kube.update_pod(started)
            cluster.kube.append_log(NS, name, "kserve-container", "INFO:     started again", time.time_ns())
            wait_until(lambda: out_path.read_bytes().count(b"\n") >= 4, timeout=30, interval=0.1)
            time.sleep(1.0)  # a few more polls: a repeat would show now
        finally:
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err.decode()[-2000:]
    printed = [json.loads(line)["source"] for line in out_path.read_text().splitlines() if line.strip()]
    assert [(d["message"], d["restart_count"]) for d in printed] == [
        ("loading shard 0", 2), ("loading shard 1", 2), ("loading shard 2", 2), ("INFO:     started again", 3)]
    assert err.count(b"is waiting (CrashLoopBackOff): reading its previous instance") == 1
