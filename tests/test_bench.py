"""The benchmark's own arithmetic and plumbing (bench/): fast, no timing assertions.

The figures bench/ prints are only as good as its expected counts, its ratios, its Fluent Bit
configuration and its sink's outage switch; these tests check each against an independent oracle.
"""

from __future__ import annotations

import gzip
import http.client
import json
import sys
import threading
from pathlib import Path

import pytest

from bench import corpus, floor, fluentbit, sink
from bench.harness import SAME_WORK, expected_servelog_documents, servelog_env
from bench.latency import percentile, summarise
from bench.measure import Measured, measure
from bench.throughput import Figures, LongLines, Run, delivery, figures, ratios


def _streams(root: Path) -> list[list[list[bytes]]]:
    """Per container instance (``<dir>/<restart>.log*``), its files' CRI tags (``P``/``F``) oldest file first,
    read back independently of the generator's bookkeeping."""
    def age(path: Path) -> tuple[str, int, bool, str]:
        restart, _, rotation = path.name.partition(".log")
        return str(path.parent), int(restart), rotation == "", rotation.removesuffix(".gz")

    streams: dict[tuple[str, int], list[list[bytes]]] = {}
    for path in sorted((p for p in root.rglob("*") if p.is_file() and p.name != corpus.MANIFEST), key=age):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        streams.setdefault(age(path)[:2], []).append([r.split(b" ", 3)[2] for r in data.splitlines()])
    return list(streams.values())


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("corpus") / "c"
    # enough lines that long (P/F-chunked) lines and rotation cuts occur
    return root, corpus.generate(root, lines=60_000, containers=8, seed=4)


def test_manifest_counts_match_the_files(small_corpus: tuple[Path, dict[str, object]]) -> None:
    root, manifest = small_corpus
    streams = _streams(root)
    files = [tags for stream in streams for tags in stream]
    finals = sum(t.count(b"F") for t in files)
    partials = sum(t.count(b"P") for t in files)
    ending_partial = sum(1 for t in files if t and t[-1] == b"P")
    # a chunked line is a run of P records then an F, possibly across a rotation: count runs per stream
    whole = [[tag for tags in stream for tag in tags] for stream in streams]
    runs = sum(1 for t in whole for i, tag in enumerate(t) if tag == b"P" and (i == 0 or t[i - 1] != b"P"))
    assert partials > 0 and ending_partial > 0, "the corpus must exercise P/F merging and rotation cuts inside a line"
    assert manifest["records"] == sum(len(t) for t in files) == finals + partials
    assert manifest["partial_records"] == partials
    assert manifest["chunked_lines"] == runs
    # servelog merges P/F across a rotation (one stream): one document per F
    assert manifest["documents_ungrouped"] == finals
    # Fluent Bit merges per file: a file ending in P chunks emits them as a record of their own
    assert manifest["files_ending_partial"] == ending_partial
    assert manifest["documents_per_file"] == fluentbit.expected_records(manifest) == finals + ending_partial
    # traceback grouping only ever folds records together
    assert int(str(manifest["documents"])) < finals


def test_floor_counts_every_record(small_corpus: tuple[Path, dict[str, object]]) -> None:
    root, manifest = small_corpus
    counted = [floor.count_records(p, chunk=4096) for p in floor.log_files(root)]
    assert sum(n for n, _ in counted) == manifest["records"]
    assert sum(b for _, b in counted) == manifest["bytes"]
    assert len(counted) == manifest["files"]


def test_servelog_expected_count_follows_traceback_grouping() -> None:
    manifest: dict[str, object] = {"documents": 10, "documents_ungrouped": 12}
    assert expected_servelog_documents(manifest, servelog_env([])) == 10
    same = servelog_env(list(SAME_WORK))
    assert same["SERVELOG_PIPELINE__EXCLUDE_CONTAINERS"] == ""
    assert expected_servelog_documents(manifest, same) == 12
    with pytest.raises(SystemExit):
        servelog_env(["NOT_A_SETTING"])


def _sections(text: str) -> dict[str, dict[str, str]]:
    """A classic Fluent Bit configuration as {section: {lower-case key: value}}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif line.strip():
            key, value = line.split(None, 1)
            current[key.lower()] = value
    return sections


def test_fluent_bit_config_does_servelogs_work(tmp_path: Path) -> None:
    sections = _sections(fluentbit.config(corpus=tmp_path / "corpus", port=4321, log_file=tmp_path / "fb.log"))
    tail, out = sections["INPUT"], sections["OUTPUT"]
    assert tail["name"] == "tail" and tail["multiline.parser"] == "cri" and tail["read_from_head"] == "On"
    assert tail["path"] == f"{tmp_path / 'corpus'}/*/*/*.log*"
    assert "db" not in tail and "mem_buf_limit" not in tail
    assert out["name"] == "opensearch" and out["port"] == "4321" and out["host"] == "127.0.0.1"
    assert out["suppress_type_name"] == "On" and out["generate_id"] == "On" and out["workers"] == "2"
    assert out["write_operation"] == "create" and out["buffer_size"] == "False"
    assert out["logstash_format"] == "On" and out["retry_limit"] == "no_limits"
    assert sections["SERVICE"]["log_file"] == str(tmp_path / "fb.log")
    tuned = _sections(fluentbit.config(corpus=tmp_path, port=1, log_file=tmp_path / "l", db=tmp_path / "fb.db",
                                       mem_buf_limit="50M", workers=4, threaded_input=True))
    assert tuned["INPUT"]["db"] == str(tmp_path / "fb.db") and tuned["INPUT"]["mem_buf_limit"] == "50M"
    assert tuned["INPUT"]["threaded"] == "On" and tuned["OUTPUT"]["workers"] == "4"


def _figures(name: str, wall: float, cpu: float) -> Figures:
    return Figures(name, records=2_000_000, runs=3, wall_s=wall, cpu_s=cpu, peak_rss_mib=90)


def test_ratios() -> None:
    servelog, fb, flo = _figures("servelog", 20, 22), _figures("fluent_bit", 25, 30), _figures("floor", 1, 0.8)
    assert servelog.cpu_s_per_million == 11 and servelog.records_per_s == 100_000
    found = ratios(servelog, flo, fb)
    assert found["servelog/fluent_bit cpu"] == pytest.approx(22 / 30)
    assert found["servelog/fluent_bit rate"] == pytest.approx(25 / 20)
    assert found["servelog/floor cpu"] == pytest.approx(22 / 0.8)
    assert found["fluent_bit/floor rate"] == pytest.approx(1 / 25)
    assert set(ratios(servelog, flo, None)) == {"servelog/floor cpu", "servelog/floor rate"}


def test_split_long_lines_are_accounted_and_lost_pieces_are_not() -> None:
    def run(received: int, whole: int, beginnings: int, ends: int, *, exit_code: int = 0, stopped: bool = True,
            collector: str = "fluent_bit") -> Run:
        measured = Measured(exit_code, 1, 1, 1, 0, 1, 1, finished=True, stopped_by_us=stopped)
        if collector == "fluent_bit":
            lines = LongLines(whole, beginnings, ends, chunked=10, cut=1, extra_splits=10, may_lose=1)
        else:
            lines = LongLines(whole, beginnings, ends, chunked=10)
        return Run(collector, measured, received, expected=100, long_lines=lines)

    assert run(100, 9, 1, 1).exact  # the rotation cut: one long line in two pieces, as expected
    split = run(102, 7, 3, 3)  # two more split by Fluent Bit's flush timeout: two more documents
    assert split.valid and not split.exact and "2 long lines split" in split.note
    assert not run(101, 7, 3, 3).valid  # a split does not explain a missing document
    held = run(99, 9, 0, 1)  # the cut line's held beginning dropped: one document fewer, tolerated for the peer
    assert held.valid and "lost their beginning" in held.note
    assert not run(100, 7, 1, 3).valid  # two beginnings lost: more than the cut lines explain
    assert not run(100, 9, 2, 1).valid  # a beginning without its end
    assert not run(100, 8, 1, 1).valid  # a long line missing altogether
    assert run(100, 9, 1, 1, exit_code=-6).valid  # an abort in the shutdown we asked for, after delivering all
    assert not run(100, 9, 1, 1, exit_code=1, stopped=False).valid
    assert run(100, 10, 0, 0, collector="servelog").exact
    assert not run(101, 9, 1, 1, collector="servelog").valid  # servelog merges across a rotation: never a split
    assert not run(99, 9, 0, 1, collector="servelog").valid
    assert delivery([split, held, run(100, 9, 1, 1)]) == ("long lines split by the flush timeout: 2, 0, 0 per run; "
                                                          "a rotation-cut long line's beginning lost in 1 of 3 runs")
    log = ("[2026/12/02 13:48:28] [ warn] [engine] failed to flush chunk '1-17.flb', retry in 7 seconds: task_id=3\n"
           "[2026/12/02 13:48:29] [ info] [input:tail:tail.0] inotify_fs_remove(): inode=1 watch_fd=2\n")
    assert fluentbit.retried_chunks(log) == 1


def test_sink_tallies_long_lines_by_piece() -> None:
    begin, end = b"DEBUG payload {\\\"instances\\\":[[0.1,", b'0.9]]}"'
    docs = [b'{"message":"' + begin + b"0.5," + end + b"}", b'{"log":"' + begin + b'0.2"}', b'{"log":"0.3,' + end + b"}",
            b'{"message":"short"}']
    body = b"".join(b'{"create":{}}\n' + d + b"\n" for d in docs)
    assert sink.long_lines(body) == (1, 1, 1)


def test_figures_are_medians_of_valid_runs_only() -> None:
    def run(wall: float, cpu: float, *, received: int = 5, exit_code: int = 0) -> Run:
        return Run("floor", Measured(exit_code, wall, cpu, cpu, 0, 80, 80 + wall), received, expected=5)

    runs = [run(10, 10), run(30, 30), run(20, 20), run(1, 1, received=4), run(2, 2, exit_code=1)]
    found = figures("servelog", 1_000_000, runs)
    assert found is not None and (found.runs, found.wall_s, found.cpu_s, found.peak_rss_mib) == (3, 20, 20, 100)
    assert figures("servelog", 1, [run(1, 1, received=6)]) is None


def test_percentiles_nearest_rank() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7], 99.9) == 7
    assert summarise([3000, 1000, 2000]) == {"p50_ms": 2, "p90_ms": 3, "p99_ms": 3, "p99.9_ms": 3, "max_ms": 3,
                                             "min_ms": 1}


def test_bulk_responses_follow_filter_path() -> None:
    actions = [b"create"] * 3
    compact = json.loads(sink.bulk_response(actions, "took,errors,items.*.status,items.*.error"))
    assert compact == {"took": 1, "errors": False, "items": [{"create": {"status": 201}}] * 3}
    full = json.loads(sink.bulk_response(actions, None))
    assert full["errors"] is False and len(full["items"]) == 3
    assert [i["create"]["_seq_no"] for i in full["items"]] == [0, 1, 2]
    assert {"_index", "_id", "result", "_shards", "status"} <= set(full["items"][0]["create"])
    assert json.loads(sink.bulk_response(actions, "items.*._id")) == {"items": [{"create": {"_id": f"{n:020d}"}}
                                                                                for n in range(3)]}


def test_sink_records_acknowledgement_delays() -> None:
    stats = sink.Stats(latency=True)
    body = (b'{"create":{}}\n{"message":"x seq=1 sent_ns=1000000"}\n'
            b'{"create":{}}\n{"message":"y seq=2 sent_ns=3000000"}\n{"create":{}}\n{"message":"no stamp"}\n')
    stats.record_acks(body, 5_000_000)
    stats.record_acks(body, 6_000_000)  # a replay: counted, not distinct
    assert stats.latency_snapshot() == {"stamped": 4, "distinct": 2, "delays_us": [4000, 2000, 5000, 3000]}


def _post(port: int, path: str, body: bytes = b"") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_sink_outage_switch() -> None:
    server = sink.SinkServer(0)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    bulk = b'{"create":{"_index":"i","_id":"1"}}\n{"message":"m"}\n'
    try:
        assert _post(server.port, "/_bulk", bulk)[0] == 200
        assert _post(server.control_port, "/_bench/outage?mode=503")[0] == 200
        status, answer = _post(server.port, "/_bulk", bulk)
        assert status == 503 and json.loads(answer)["status"] == 503
        assert _post(server.control_port, "/_bench/outage?mode=refuse")[0] == 200
        with pytest.raises(ConnectionRefusedError):
            _post(server.port, "/_bulk", bulk)
        assert _post(server.control_port, "/_bench/outage?mode=sideways")[0] == 400
        assert _post(server.control_port, "/_bench/recover")[0] == 200
        assert _post(server.port, "/_bulk", bulk)[0] == 200
        stats = server.stats.snapshot()
        assert (stats["documents"], stats["unavailable_answers"]) == (2, 1)
    finally:
        server._control.shutdown()
        thread.join(10)


def test_measure_reports_memory_and_stops_a_program_when_done(tmp_path: Path) -> None:
    grows = "b = bytearray(64 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    measured = measure([sys.executable, "-c", grows], env={}, log=tmp_path / "a.log", cwd=tmp_path)
    assert measured.exit_code == 0 and measured.finished and not measured.stopped_by_us
    assert measured.peak_rss_mib >= 64 and measured.cpu_s > 0
    marker = tmp_path / "ready"
    forever = f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\nwhile True: time.sleep(0.01)"
    stopped = measure([sys.executable, "-c", forever], env={}, log=tmp_path / "b.log", cwd=tmp_path,
                      done=marker.exists)
    assert stopped.finished and stopped.stopped_by_us and stopped.exit_code == -15
