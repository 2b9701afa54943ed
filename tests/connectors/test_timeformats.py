"""Tests for vectorized timestamp parsing."""

from __future__ import annotations

import random
from collections.abc import Callable

import pandas as pd
import pyarrow.compute as pc
import pytest

from pmtimeline.connectors import log_formats, timeformats
from pmtimeline.connectors.timeformats import (
    PLACEHOLDER_YEAR,
    ParsedTimes,
    arrow_strings,
    epoch_unit_by_magnitude,
    extract_groups,
    parse_access_time,
    parse_compact_date_time,
    parse_ctime,
    parse_epoch,
    parse_iso8601,
    parse_syslog_time,
    parse_timestamp_text,
    parse_with_format,
    parse_with_formats,
)
from pmtimeline.schema import STRING

T = pd.Timestamp


def text(*values: str | None) -> pd.Series:
    return pd.Series(list(values), dtype=STRING)


def test_iso8601_mixed_offsets_come_out_equal_in_utc() -> None:
    times = parse_iso8601(
        text(
            "2024-03-01T10:00:00Z", "2024-03-01T11:00:00+01:00", "2024-03-01T05:00:00-05:00", "2024-03-01 11:00:00+0100"
        )
    )
    assert times.utc.tolist() == [T("2024-03-01T10:00:00Z")] * 4
    assert times.naive.isna().all()
    assert str(times.utc.dtype) == "datetime64[ns, UTC]"


def test_iso8601_without_offset_is_naive_and_keeps_nanoseconds() -> None:
    times = parse_iso8601(
        text("2024-03-01 10:00:00,123", "2024-03-01T10:00:00.123456789", "2024-03-01T10:00:00.123456789Z")
    )
    assert times.naive.tolist()[:2] == [T("2024-03-01 10:00:00.123"), T("2024-03-01 10:00:00.123456789")]
    assert times.utc.iloc[2].value == T("2024-03-01T10:00:00.123456789Z").value
    assert str(times.naive.dtype) == "datetime64[ns]"


def test_iso8601_refuses_ambiguous_abbreviations_and_flags_out_of_range() -> None:
    times = parse_iso8601(
        text("2024-03-01 10:00:00 CST", "2024-03-01 10:00:00 UTC", "3000-01-01T00:00:00", "garbage", None)
    )
    assert times.parsed.tolist() == [False, True, False, False, False]
    assert times.utc.iloc[1] == T("2024-03-01T10:00:00Z")
    assert times.out_of_range.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize(
    "value", ["1709251200", "1709251200000", "1709251200000000", "1709251200000000000", "1709251200.0"]
)
def test_epoch_unit_by_magnitude(value: str) -> None:
    times = parse_epoch(text(value))
    assert times.utc.iloc[0] == T("2024-03-01T00:00:00Z")
    assert not times.out_of_range.iloc[0]


def test_epoch_fractions_are_kept_to_the_nanosecond() -> None:
    times = parse_epoch(text("1709251200.5", "1709251200.123456789", "1709251200123.456"))
    assert [t.value for t in times.utc] == [
        1709251200_500000000,
        1709251200_123456789,
        1709251200_123456000,
    ]


def test_epoch_numbers_and_forced_unit() -> None:
    assert (
        parse_epoch(pd.Series([1709251200, 1709251200000], dtype="Int64")).utc.tolist()
        == [T("2024-03-01T00:00:00Z")] * 2
    )
    assert parse_epoch(pd.Series([1709251200.5])).utc.iloc[0] == T("2024-03-01T00:00:00.5Z")
    assert parse_epoch(text("1709251200000"), unit="ms").utc.iloc[0] == T("2024-03-01T00:00:00Z")


def test_epoch_out_of_range_is_flagged_not_raised() -> None:
    times = parse_epoch(text("99999999999999", "-1", "123456789012345678901234", "99999999999", "abc"))
    assert times.utc.isna().all()
    assert times.out_of_range.tolist() == [True, True, True, True, False]


def test_epoch_unit_table() -> None:
    digits = pd.Series([10, 13, 16, 19, 20])
    assert epoch_unit_by_magnitude(digits).tolist() == ["s", "ms", "us", "ns", pd.NA]


def test_mixed_epoch_and_iso_text() -> None:
    times = parse_timestamp_text(text("1709251200", "2024-03-01T01:00:00+01:00", "2024-03-01 00:00:00", ""))
    assert times.utc.tolist()[:2] == [T("2024-03-01T00:00:00Z")] * 2
    assert times.naive.iloc[2] == T("2024-03-01")
    assert not times.parsed.iloc[3]


def test_syslog_time_feb_29_and_two_space_padding() -> None:
    times = parse_syslog_time(text("Feb 29 12:00:00", "Mar  1 00:00:00", "Jun 14 15:16:01.250", "Feb 30 00:00:00"))
    assert times.naive.tolist()[:3] == [
        T(f"{PLACEHOLDER_YEAR}-02-29 12:00:00"),
        T(f"{PLACEHOLDER_YEAR}-03-01 00:00:00"),
        T(f"{PLACEHOLDER_YEAR}-06-14 15:16:01.25"),
    ]
    assert pd.isna(times.naive.iloc[3])
    assert times.year_missing.tolist()[:3] == [True, True, True]


def test_strptime_formats_with_and_without_zone() -> None:
    zoned = parse_with_format(text("01/Mar/2024:10:00:00 +0100"), "%d/%b/%Y:%H:%M:%S %z")
    assert zoned.utc.iloc[0] == T("2024-03-01T09:00:00Z")
    naive = parse_with_formats(text("081109 203615", "20240301"), ("%y%m%d %H%M%S", "%Y%m%d"))
    assert naive.naive.tolist() == [T("2008-11-09 20:36:15"), T("2024-03-01")]
    yearless = parse_with_format(text("03-01 10:00"), "%m-%d %H:%M")
    assert yearless.year_missing.iloc[0]
    assert yearless.naive.iloc[0] == T(f"{PLACEHOLDER_YEAR}-03-01 10:00")


def test_access_time_fast_path_and_fallback() -> None:
    times = parse_access_time(
        text(
            "10/Oct/2000:13:55:36 -0700",
            "01/Mar/2024:10:00:00 +0100",
            "1/Mar/2024:10:00:00 +0000",
            "31/Feb/2024:00:00:00 +0000",
        )
    )
    assert times.utc.tolist()[:3] == [T("2000-10-10T20:55:36Z"), T("2024-03-01T09:00:00Z"), T("2024-03-01T10:00:00Z")]
    assert pd.isna(times.utc.iloc[3])
    naive = parse_access_time(text("10/Oct/2000:13:55:36"))
    assert naive.naive.iloc[0] == T("2000-10-10 13:55:36")


def test_ctime_with_and_without_weekday_and_fraction() -> None:
    times = parse_ctime(text("Sun Dec 04 04:47:44 2005", "Wed Oct 11 14:32:52.123456 2000", "Dec  4 04:47:44 2005"))
    assert times.naive.tolist() == [T("2005-12-04 04:47:44"), T("2000-10-11 14:32:52.123456"), T("2005-12-04 04:47:44")]


def test_compact_date_time_two_digit_year_pivot() -> None:
    times = parse_compact_date_time(text("081109 203615", "991231 235959", "081132 000000"))
    assert times.naive.tolist()[:2] == [T("2008-11-09 20:36:15"), T("1999-12-31 23:59:59")]
    assert pd.isna(times.naive.iloc[2])


# The core's time layouts (core/src/times.rs) must give exactly what the general paths give (pandas'
# parsers with their range checks), on every shape, valid or not. (tests/connectors/test_extract_parity.py
# compares extract_groups and the parsers with the pre-Rust implementation.)


def _tricky_times(seed: int, n: int = 6000) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    iso, access, syslog = [], [], []
    for _ in range(n):
        year = rng.choice(["2024", "1699", "1700", "2259", "2262", "2300", "1970"])
        month = rng.choice(["01", "02", "12", "13"])
        day = rng.choice(["01", "29", "30", "32"])
        clock = f"{rng.choice(['00', '23', '24'])}:{rng.choice(['00', '59', '60'])}:{rng.choice(['00', '59', '60'])}"
        fraction = rng.choice(["", ".1", ",123", ".123456789", ".1234567891"])
        zone = rng.choice(["", "Z", "+01:00", "-0530", "+01", "+1", "UTC", " UTC", "+123", " CST"])
        iso.append(f"{year}-{month}-{day}{rng.choice('T ')}{clock}{fraction}{zone}")
        name = rng.choice(["Jan", "Feb", "Mar", "mar", "Dec"])
        access.append(f"{day}/{name}/{year}:{clock}{rng.choice(['', ' +0100', ' -0530', ' Z'])}")
        padded = rng.choice(["01", " 1", "1", "29", "30", "  3"])
        syslog.append(f"{name} {padded} {clock}{rng.choice(['', '.5', '.1234567890'])}")
    return iso, access, syslog


def _nothing_fits(text: pd.Series, layout: str) -> tuple[ParsedTimes, pd.Series]:
    """timeformats._core_times that knows no layout: every row takes the general path."""
    return timeformats.empty_times(text.index), pd.Series(False, index=text.index, dtype=bool)


@pytest.mark.parametrize(
    ("parse", "which"),
    [(parse_iso8601, 0), (parse_access_time, 1), (parse_syslog_time, 2)],
)
def test_core_time_layouts_equal_the_general_path(
    parse: Callable[[pd.Series], ParsedTimes], which: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = pd.Series([*_tricky_times(11)[which], None, ""], dtype=STRING)
    fast = parse(values)
    monkeypatch.setattr(timeformats, "_core_times", _nothing_fits)
    general = parse(values)
    assert int(fast.parsed.sum()) > 300  # the sample holds plenty of valid times
    for got, expected in zip(fast, general, strict=True):
        pd.testing.assert_series_equal(got, expected)


def _tricky_ctime_and_compact(seed: int, n: int = 4000) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    ctime, compact = [], []
    for _ in range(n):
        clock = (
            f"{rng.choice(['00', '23', '24', '35'])}:{rng.choice(['00', '59', '60'])}:{rng.choice(['00', '59', '60'])}"
        )
        day = rng.choice(["01", "29", "30", "32", " 4", "4", "00"])
        weekday = rng.choice(["", "Sun ", "Xyz ", "sun "])
        month = rng.choice(["Jan", "Feb", "Dec", "Foo", "feb"])
        fraction = rng.choice(["", ".5", ".123456", ".1234567890"])
        year = rng.choice(["2005", "1699", "1700", "2259", "2262", "2300"])
        ctime.append(f"{weekday}{month} {day} {clock}{fraction} {year}")
        yymmdd = f"{rng.choice(['08', '68', '69', '99', '00'])}{rng.choice(['01', '02', '13', '00'])}{day.strip():0>2}"
        compact.append(f"{yymmdd} {clock.replace(':', '')}")
    return ctime, compact


@pytest.mark.parametrize(("parse", "which"), [(parse_ctime, 0), (parse_compact_date_time, 1)])
def test_core_ctime_and_compact_layouts_equal_the_general_path(
    parse: Callable[[pd.Series], ParsedTimes], which: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = pd.Series([*_tricky_ctime_and_compact(5)[which], None, ""], dtype=STRING)
    fast = parse(values)
    monkeypatch.setattr(timeformats, "_core_times", _nothing_fits)
    general = parse(values)
    assert int(fast.parsed.sum()) > 200
    for got, expected in zip(fast, general, strict=True):
        pd.testing.assert_series_equal(got, expected)


def test_extract_groups_in_the_core_equals_re2() -> None:
    lines = pd.Series(
        [
            '10.0.0.1 - alice [12/Mar/2024:09:00:00 +0100] "GET /a?x=\\"y\\" HTTP/1.1" 200 5 "-" "UA é" 0.5',
            '10.0.0.1 - - [12/Mar/2024:09:00:00 +0100] "-" 400 - "-" "-"',
            "garbage",
            "",
            None,
            '٣٣.0.0.1 - - [12/Mar/2024:09:00:00 +0100] "GET / HTTP/1.1" ٢٠٠ 5 "-" "-"',
        ],
        dtype=STRING,
    )
    pattern = log_formats._ACCESS_COMBINED + r"(?P<extra>.*)$"
    fast = extract_groups(lines, pattern)
    structs = pc.extract_regex(arrow_strings(lines), pattern)
    assert fast["matched"].tolist() == pc.is_valid(structs).to_pylist()
    for i, name in enumerate(structs.type.names):
        expected = [None if (v is None or v == "") else v for v in pc.struct_field(structs, [i]).to_pylist()]
        assert [None if pd.isna(v) else v for v in fast[name]] == expected, name
    # Arabic-Indic digits are not \d in RE2, and not in the core either once the classes are spelled out.
    assert not fast["matched"].iloc[5]


def test_a_trailing_message_group_takes_the_rest_of_the_line() -> None:
    groups = extract_groups(text("12 hello  world ", "x 1", None, "7 "), r"^(?P<a>\d+) (?P<message>.*)$")
    assert groups["a"].tolist() == ["12", pd.NA, pd.NA, "7"]
    assert groups["message"].tolist() == ["hello  world ", pd.NA, pd.NA, pd.NA]
    assert groups["matched"].tolist() == [True, False, False, True]
