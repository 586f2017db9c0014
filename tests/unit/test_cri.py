"""CRI and Docker json-file record parsing by the kubelet's rules, timestamps, cutting on characters.

The accepted and refused timestamp forms were checked against Go 1.26's ``time.Parse(time.RFC3339Nano,
...)`` and ``json.Unmarshal`` into a ``time.Time`` (what the kubelet uses for CRI and Docker lines).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.transforms import cri
from collector.transforms.cri import MAX_TS_NS, cut_utf8, format_timestamp, parse_cri, parse_docker_json, parse_timestamp

INSTANT = 1795511525_000_000_000  # 2026-11-24T09:12:05Z


class TestTimestamps:
    def test_containerd_trimmed_fraction_and_kubelet_padded_fraction_are_the_same_instant(self) -> None:
        trimmed = parse_timestamp("2026-11-24T09:12:05.1234Z")
        padded = parse_timestamp("2026-11-24T09:12:05.123400000Z")
        assert trimmed == padded
        assert trimmed is not None and trimmed[1] == "2026-11-24T09:12:05.123400000Z"

    def test_whole_second_has_nine_zero_digits(self) -> None:
        assert parse_timestamp("2026-11-24T09:12:05Z") == (INSTANT, "2026-11-24T09:12:05.000000000Z")

    def test_offset_timestamps_are_converted_to_utc(self) -> None:
        parsed = parse_timestamp("2026-11-24T10:12:05.5+01:00")
        assert parsed == parse_timestamp("2026-11-24T09:12:05.5Z")

    @pytest.mark.parametrize(("text", "ns"), [
        ("2026-11-24T9:12:05Z", INSTANT),  # a one-digit hour
        ("2026-11-24T09:12:05,5Z", INSTANT + 500_000_000),  # comma as the fraction separator
        ("2026-11-24T09:12:05.1234567891Z", INSTANT + 123_456_789),  # digits past the ninth are dropped
        ("2026-11-24T09:12:05.99999999999Z", INSTANT + 999_999_999),  # truncated, not rounded
        ("2026-11-24T09:12:05-00:00", INSTANT),
        ("2026-11-24T09:12:05+24:00", INSTANT - 24 * 3600 * 10**9),  # Go checks offset hours with "> 24"
        ("2026-11-24T09:12:05+23:60", INSTANT - 24 * 3600 * 10**9),  # and offset minutes with "> 60"
        ("2028-02-29T00:00:00Z", 1835395200 * 10**9),  # a leap day
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("2262-04-11T23:47:16.854775807Z", MAX_TS_NS),
    ])
    def test_forms_go_accepts(self, text: str, ns: int) -> None:
        for _ in range(2):  # the second time through the memoised second
            parsed = parse_timestamp(text)
            assert parsed is not None and parsed[0] == ns

    @pytest.mark.parametrize("text", [
        "", "yesterday", "2026-11-24t09:12:05Z", "2026-11-24T09:12:05z", "2026-11-24 09:12:05Z", "2026-11-24T09:12:05",
        "2026-11-24T09:12:05+0100", "2026-11-24T09:12:05+01", "2026-11-24T09:12:05+25:00", "2026-11-24T09:12:05+01:61",
        "2026-11-24T24:00:00Z", "2026-11-24T23:60:00Z", "2026-11-24T23:59:60Z", "2026-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-2T09:12:05Z", "2026-11-24T09:2:05Z",
        "2026-11-24T09:12:05.Z", "2026-11-24T09:12:05.12a4Z", "2026-11-24T09:12:05.\uff15Z", "2026-11-24T09:12:05ZZ",
        "+2026-11-24T09:12:05Z", "20261124T091205Z", "2026-11-24T09:12:05.123+01:00Z",
        "1969-12-31T23:59:59.999999999Z",  # before date_nanos' range
        "1970-01-01T00:00:00Z",  # the epoch itself means "no timestamp"
        "2262-04-11T23:47:16.854775808Z", "9999-12-31T23:59:59Z",  # after date_nanos' range
    ])
    def test_forms_refused(self, text: str) -> None:
        for _ in range(2):
            assert parse_timestamp(text) is None

    @given(st.integers(min_value=1, max_value=MAX_TS_NS))
    def test_format_then_parse_round_trips(self, ts_ns: int) -> None:
        text = format_timestamp(ts_ns)
        assert parse_timestamp(text) == (ts_ns, text)

    @given(st.integers(min_value=86400, max_value=MAX_TS_NS // 10**9 - 86400), st.integers(0, 10**9 - 1),
           st.integers(-23 * 60, 23 * 60), st.integers(0, 9))
    def test_any_zone_and_fraction_length_gives_the_instant(self, seconds: int, nanos: int, minutes: int,
                                                            digits: int) -> None:
        zone = timedelta(minutes=minutes)
        local = datetime.fromtimestamp(seconds, tz=UTC) + zone
        fraction = f"{nanos:09d}"[:digits]
        suffix = "Z" if not minutes else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + suffix
        expected = seconds * 10**9 + (int(fraction.ljust(9, "0")) if digits else 0)
        cri._SECONDS_CACHE.clear()
        assert parse_timestamp(text) == parse_timestamp(text) == (expected, format_timestamp(expected))


class TestCri:
    def test_full_line(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stderr F hello world")
        assert record is not None
        assert (record.stream, record.partial, record.content) == ("stderr", False, b"hello world")

    def test_partial_chunk(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout P chunk ")
        assert record is not None and record.partial and record.content == b"chunk "

    def test_empty_content_needs_the_space_after_the_tag(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout F ")
        assert record is not None and record.content == b""
        assert parse_cri(b"2026-11-24T09:12:05.1Z stdout F") is None  # the kubelet: "log tag is not found"

    @pytest.mark.parametrize(("tag", "partial"), [
        (b"P", True), (b"P:TAG1:TAG2", True), (b"P:", True), (b"F", False), (b"F:TAG1", False),
        (b"X", False), (b"", False), (b"p", False), (b"PF", False), (b"F:P", False),
    ])
    def test_only_the_first_tag_counts_and_only_P_is_a_chunk(self, tag: bytes, partial: bool) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout " + tag + b" text")
        assert record is not None and record.partial is partial and record.content == b"text"

    def test_content_keeps_its_own_spaces(self) -> None:
        record = parse_cri(b"2026-11-24T09:12:05.1Z stdout F   indented  ")
        assert record is not None and record.content == b"  indented  "

    @pytest.mark.parametrize("line", [b"", b"hello", b"2026-11-24T09:12:05.1Z stdin F x", b"2026-11-24T09:12:05.1Z Stdout F x",
                                      b"\xff\xfe stdout F x", b"not-a-time stdout F x", b"2026-11-24T09:12:05.1Z stdout",
                                      b"2026-11-24t09:12:05.1Z stdout F x", b" 2026-11-24T09:12:05.1Z stdout F x"])
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

    def test_the_same_timestamp_rule_as_cri(self) -> None:
        def docker(ts: str) -> cri.Record | None:
            return parse_docker_json(b'{"log":"x\\n","stream":"stdout","time":"%s"}' % ts.encode())

        for text in ("2026-11-24T10:12:05.5+01:00", "2026-11-24T9:12:05,5Z", "2026-11-24T09:12:05.5Z"):
            record = docker(text)
            assert record is not None and record.ts_ns == INSTANT + 500_000_000
        for text in ("2026-11-24T09:12:05.5z", "2026-11-24t09:12:05.5Z", "2026-11-24 09:12:05.5Z"):
            assert docker(text) is None

    def test_other_json_is_not_a_record(self) -> None:
        assert parse_docker_json(b'{"level":"info"}') is None
        assert parse_docker_json(b"{not json") is None
        assert parse_docker_json(b'{"log":"x\\n","stream":"stdin","time":"2026-11-24T09:12:05Z"}') is None


class TestCutOnCharacters:
    def test_a_cut_inside_a_character_moves_back_to_its_start(self) -> None:
        text = "ab\u20ac".encode()  # b"ab" + 3 bytes
        assert cut_utf8(text, 4) == b"ab"
        assert cut_utf8("x\U0001f600".encode(), 4) == b"x"
        assert cut_utf8(text, 5) == text

    def test_invalid_bytes_are_cut_where_they_are(self) -> None:
        assert cut_utf8(b"\xff\xfe\xfd\xfc", 2) == b"\xff\xfe"
        assert cut_utf8(b"a\x80\x80\x80\x80", 3) == b"a\x80\x80"

    @given(st.text(), st.integers(0, 64))
    def test_never_splits_a_character_and_keeps_every_whole_one(self, text: str, limit: int) -> None:
        encoded = text.encode()
        cut = cut_utf8(encoded, limit)
        assert len(cut) <= limit and encoded.startswith(cut)
        kept = cut.decode()  # valid UTF-8 stays valid: no character is split
        assert text.startswith(kept)
        if len(cut) < len(encoded):
            next_char = text[len(kept)]
            assert len(cut) + len(next_char.encode()) > limit  # the cut is as late as it can be
