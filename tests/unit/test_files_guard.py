"""Only regular files are opened, never through a link; what is skipped is said once and counted."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from collector.sources.files.guard import InputReporter, NotRegularFile, open_log, open_regular
from collector.sources.files.tailer import StreamTailer
from collector.telemetry.metrics import Metrics
from tests.unit.test_tailer import Harness, write


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "0.log"
    os.mkfifo(fifo)  # no writer: a plain open() would wait forever
    with pytest.raises(NotRegularFile) as refused:
        open_regular(fifo)
    assert refused.value.reason == "fifo"


def test_a_link_is_never_followed_and_a_device_never_opened(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(NotRegularFile) as refused:
        open_regular(tmp_path / "link")
    assert refused.value.reason == "symlink"
    with pytest.raises(NotRegularFile) as device:
        open_regular(Path("/dev/null"))
    assert device.value.reason == "device"


def test_a_regular_file_and_a_gzip_read_as_usual(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"hello\n")
    with gzip.open(tmp_path / "packed.gz", "wb") as handle:
        handle.write(b"packed\n")
    with open_regular(tmp_path / "plain") as plain:
        assert plain.read() == b"hello\n"
    with open_log(tmp_path / "packed.gz", gzipped=True) as packed:
        assert packed.read() == b"packed\n"


def test_the_tailer_reads_past_links_and_fifos_of_its_stream_reporting_each_once(tmp_path: Path) -> None:
    outside = tmp_path / "outside.log"
    write(outside, "from outside")
    h = Harness(tmp_path / "c")
    metrics = Metrics()
    reporter = InputReporter(metrics)
    h.tailer = StreamTailer(directory=h.directory, restart_count=0, assembler=h.tailer.assembler, start=None,
                            read_chunk_bytes=64, max_line_bytes=1024, reporter=reporter)
    (h.directory / "0.log.20261124-090000").symlink_to(outside)
    os.mkfifo(h.directory / "0.log.20261124-090100")
    write(h.directory / "0.log", "inside 1", "inside 2")
    assert h.drain() == ["inside 1", "inside 2"]
    for _ in range(5):
        h.tailer.poll(1 << 20)
    text = generate_latest(metrics.registry).decode()
    assert 'servelog_files_skipped_total{reason="symlink"} 1.0' in text
    assert 'servelog_files_skipped_total{reason="fifo"} 1.0' in text


def test_the_reporter_says_things_once_per_path_until_they_change(tmp_path: Path) -> None:
    metrics = Metrics()
    reporter = InputReporter(metrics)
    path = tmp_path / "0.log"
    path.write_text("")
    for _ in range(3):
        reporter.unreadable(path, PermissionError(13, "Permission denied"))
    assert reporter.unreadable_now == 1
    reporter.readable(path)
    assert reporter.unreadable_now == 0
    reporter.unreadable(path, PermissionError(13, "Permission denied"))  # again, after it was readable
    reporter.skipped(tmp_path / "link", "symlink")
    reporter.skipped(tmp_path / "link", "symlink")
    text = generate_latest(metrics.registry).decode()
    assert 'servelog_files_unreadable_total{reason="permission_denied"} 2.0' in text
    assert 'servelog_files_skipped_total{reason="symlink"} 1.0' in text
    path.unlink()
    reporter.prune()
    assert reporter.unreadable_now == 0, "a path that is gone is forgotten"
