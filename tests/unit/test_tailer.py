"""The stream tailer: rotation (rename, gzip), truncation and resume, each byte once."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson

from collector.sources.files.tailer import StreamTailer
from collector.transforms.assembler import AssemblerOptions, LineAssembler, Position


class Harness:
    """A container log directory, a tailer over it, and the messages it produced."""

    def __init__(self, directory: Path, start: Position | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.docs: list[tuple[str, Position]] = []
        self.start = start
        self.tailer = self._tailer(start)

    def _tailer(self, start: Position | None) -> StreamTailer:
        def emit(piece: bytes, position: Position) -> None:
            self.docs.append((orjson.loads(piece.split(b"\n")[1])["message"], position))

        assembler = LineAssembler(
            options=AssemblerOptions(index_template="l-{namespace}-{date}", max_line_bytes=1024), pod_uid="u", container="c",
            restart_count=0, fields={"namespace": "ns"}, emit=emit, start=start)
        return StreamTailer(directory=self.directory, restart_count=0, assembler=assembler, start=start,
                            read_chunk_bytes=64, max_line_bytes=1024)

    def drain(self) -> list[str]:
        for _ in range(1000):
            if not self.tailer.poll(1 << 20):
                break
        return [m for m, _ in self.docs]


def write(path: Path, *messages: str, tag: str = "F", second: int = 0) -> None:
    with path.open("ab") as handle:
        for i, message in enumerate(messages):
            handle.write(f"2026-11-24T09:00:{second:02d}.{i + 1}Z stdout {tag} {message}\n".encode())


def rotate(directory: Path, stamp: str, *, gzip_older: bool = True) -> None:
    """What the kubelet does: rename 0.log, create a new one, gzip older rotated files."""
    for old in sorted(directory.glob("0.log.*")):
        if gzip_older and not old.name.endswith(".gz"):
            with old.open("rb") as src, gzip.open(f"{old}.gz", "wb") as dst:
                dst.write(src.read())
            old.unlink()
    os.rename(directory / "0.log", directory / f"0.log.{stamp}")
    (directory / "0.log").touch()


def test_reads_rotated_and_gzipped_files_oldest_first(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "a1", "a2", second=1)
    rotate(h.directory, "20261124-090001")
    write(log, "b1", second=2)
    rotate(h.directory, "20261124-090002")
    write(log, "c1", second=3)
    assert sorted(p.name for p in h.directory.iterdir()) == ["0.log", "0.log.20261124-090001.gz", "0.log.20261124-090002"]
    assert h.drain() == ["a1", "a2", "b1", "c1"]


def test_rotation_while_following_reads_each_line_once(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "one", second=1)
    assert h.drain() == ["one"]
    write(log, "two", second=2)  # written to the old file before the rename
    rotate(h.directory, "20261124-090002")
    write(log, "three", second=3)
    assert h.drain() == ["one", "two", "three"]
    rotate(h.directory, "20261124-090003")  # and the previous one gets gzipped now
    write(log, "four", second=4)
    assert h.drain() == ["one", "two", "three", "four"]


def test_partial_at_the_end_of_a_rotated_file_joins_its_final_in_the_new_file(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "head-", tag="P", second=1)
    rotate(h.directory, "20261124-090001")
    write(log, "tail", second=2)
    assert h.drain() == ["head-tail"]


def test_resume_from_a_checkpoint_inside_a_file_that_was_gzipped_meanwhile(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "a1", "a2", "a3", second=1)
    h.drain()
    checkpoint = h.docs[0][1]  # acknowledged up to a1 only
    rotate(h.directory, "20261124-090001")
    write(log, "b1", second=2)
    rotate(h.directory, "20261124-090002")  # the file holding the checkpoint is now .gz
    write(log, "c1", second=3)
    resumed = Harness(h.directory, start=checkpoint)
    assert resumed.drain() == ["a2", "a3", "b1", "c1"]


def test_resume_between_a_partial_and_its_final_across_rotation(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "done", second=1)
    write(log, "head-", tag="P", second=2)
    h.drain()
    checkpoint = h.docs[-1][1]  # after "done", before the open partial
    rotate(h.directory, "20261124-090002")
    write(log, "tail", second=3)
    assert Harness(h.directory, start=checkpoint).drain() == ["head-tail"]


def test_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "x" * 100, "y" * 100, second=1)
    assert len(h.drain()) == 2
    with log.open("r+b") as handle:
        handle.truncate(0)
    write(log, "after", second=5)
    assert h.drain()[-1] == "after"
    assert h.tailer.truncations == 1


def test_checkpointed_file_deleted_while_down_is_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    write(log, "a1", second=1)
    h.drain()
    checkpoint = h.docs[-1][1]
    rotate(h.directory, "20261124-090001")
    write(log, "b1", second=2)
    for old in h.directory.glob("0.log.*"):
        old.unlink()  # the kubelet's max files rule removed it before we came back
    resumed = Harness(h.directory, start=checkpoint)
    assert resumed.drain() == ["b1"]
    assert resumed.tailer.lost_files == 1


def test_an_unterminated_huge_line_is_cut_not_buffered(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    log = h.directory / "0.log"
    with log.open("wb") as handle:
        handle.write(b"2026-11-24T09:00:01Z stdout F " + b"z" * 300_000 + b"\n")
    write(log, "next", second=2)
    messages = h.drain()
    assert messages[1] == "next"
    assert len(messages[0]) == 1024
