"""CRI and Docker json-file record parsing, and timestamp normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.transforms.cri import format_timestamp, parse_cri, parse_docker_json, parse_timestamp


class TestTimestamps:
    def test_containerd_trimmed_fraction_and_kubelet_padded_fraction_are_the_same_instant(self) -> None:
        trimmed = parse_timestamp("2026-11-24T09:12:05.1234Z")
        padded = parse_timestamp("2026-11-24T09:12:05.123400000Z")
        assert trimmed == padded
        assert trimmed is not None and trimmed[1] == "2026-11-24T09:12:05.123400000Z"

    def test_whole_second_has_nine_zero_digits(self) -> None:
        assert parse_timestamp("2026-11-24T09:12:05Z") == (1795511525_000_000_000, "2026-11-24T09:12:05.000000000Z")

    def test_offset_timestamps_are_converted_to_utc(self) -> None:
        parsed = parse_timestamp("2026-11-24T10:12:05.5+01:00")
        assert parsed == parse_timestamp("2026-11-24T09:12:05.5Z")

    @pytest.mark.parametrize("text", ["", "yesterday", "2026-13-40T99:99:99Z", "2026-11-24T09:12:05.1234567891Z",
                                      "2026-11-24T09:12:05.12a4Z"])
    def test_garbage_is_refused(self, text: str) -> None:
        assert parse_timestamp(text) is None

    @given(st.integers(min_value=0, max_value=2**62))
    def test_format_then_parse_round_trips(self, ts_ns: int) -> None:
        text = format_timestamp(ts_ns)
        assert parse_timestamp(text) == (ts_ns, text)


class TestCri:
    def test_full_line(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stderr F hello world")
        assert record is not None
        assert (record.stream, record.partial, record.content) == ("stderr", False, b"hello world")

    def test_partial_chunk(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout P chunk ")
        assert record is not None and record.partial and record.content == b"chunk "

    def test_empty_content(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout F ")
        assert record is not None and record.content == b""
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout F")
        assert record is not None and record.content == b""

    @pytest.mark.parametrize("line", [b"", b"hello", b"2026-11-24T09:12:05.1Z stdin F x", b"2026-11-24T09:12:05.1Z stdout X x",
                                      b"\xff\xfe stdout F x", b"not-a-time stdout F x"])
    def test_malformed_lines_are_none(self, line: bytes) -> None:
        assert parse_cri(line) is None


class TestDocker:
    def test_json_file_line(self) -> None:
        record = parse_docker_json(b'{"log":"hi\\n","stream":"stderr","time":"2026-11-24T09:12:05.123456789Z"}')
        assert record is not None
        assert (record.content, record.stream, record.partial) == (b"hi", "stderr", False)

    def test_json_file_partial(self) -> None:
        record = parse_docker_json(b'{"log":"part","stream":"stdout","time":"2026-11-24T09:12:05Z"}')
        assert record is not None and record.partial

    def test_other_json_is_not_a_record(self) -> None:
        assert parse_docker_json(b'{"level":"info"}') is None
        assert parse_docker_json(b"{not json") is None
