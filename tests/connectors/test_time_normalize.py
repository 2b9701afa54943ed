"""Wall clock to UTC (zones, DST) and the year of year-less timestamps.

Expected instants are derived with the standard library (zoneinfo and PEP 495 ``fold``), not
with the code under test.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pmtimeline.connectors.time_normalize import (
    FallBackState,
    YearScan,
    apply_years,
    infer_years,
    localize,
    localize_flagged,
    reference_from_times,
    reference_from_window,
    reference_from_year,
    year_offsets,
)
from pmtimeline.errors import ConfigError

UTC = dt.UTC


def naive(*texts: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(texts), format="ISO8601"))


def stdlib_utc(text: str, zone: str, fold: int = 0) -> pd.Timestamp:
    """The UTC instant of a wall-clock time by PEP 495 (fold=0: first pass / offset before a gap)."""
    local = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold)
    return pd.Timestamp(local.astimezone(UTC))


def test_utc_and_fixed_offsets() -> None:
    wall = naive("2024-03-01T10:00:00", "2024-03-01T10:00:00.123456789", None)
    assert localize(wall, "UTC").tolist()[:2] == [
        pd.Timestamp("2024-03-01T10:00:00Z"),
        pd.Timestamp("2024-03-01T10:00:00.123456789Z"),
    ]
    plus_one = localize(wall, "+01:00")
    assert plus_one.iloc[0] == pd.Timestamp("2024-03-01T09:00:00Z")
    assert pd.isna(plus_one.iloc[2])
    assert str(plus_one.dtype) == "datetime64[ns, UTC]"
    assert localize(wall, "-05:30").iloc[0] == pd.Timestamp("2024-03-01T15:30:00Z")


def test_unknown_or_ambiguous_zone_names_are_refused() -> None:
    with pytest.raises(ConfigError):
        localize(naive("2024-03-01T10:00:00"), "CST")


def test_tz_aware_input_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        localize(pd.Series(pd.to_datetime(["2024-03-01T10:00:00Z"])), "UTC")


@pytest.mark.parametrize(
    ("zone", "day"),
    [("Europe/Berlin", "2024-10-27"), ("America/New_York", "2024-11-03")],
)
def test_fall_back_hour_twice_in_file_order(zone: str, day: str) -> None:
    hour = "02" if zone == "Europe/Berlin" else "01"
    texts = [
        f"{day}T00:59:00",
        f"{day}T{hour}:10:00",  # first pass (summer time)
        f"{day}T{hour}:40:00",
        f"{day}T{hour}:39:58",  # two seconds out of order: still the first pass
        f"{day}T{hour}:05:00",  # the clock went back: second pass (standard time)
        f"{day}T{hour}:40:00",
        f"{day}T{hour}:59:59",
        "2024-12-01T12:00:00",
    ]
    result = localize_flagged(naive(*texts), zone)
    folds = [0, 0, 0, 0, 1, 1, 1, 0]
    expected = [stdlib_utc(t, zone, fold) for t, fold in zip(texts, folds, strict=True)]
    assert result.utc.tolist() == expected
    assert result.ambiguous.tolist() == [False, True, True, True, True, True, True, False]
    assert not result.nonexistent.any()
    # The same wall clock 02:40 / 01:40 twice, one hour apart in UTC.
    assert result.utc.iloc[5] - result.utc.iloc[2] == pd.Timedelta(hours=1)


def test_fall_back_resolved_across_chunks_with_state() -> None:
    zone = "America/New_York"
    texts = ["2024-11-03T01:50:00", "2024-11-03T01:59:00", "2024-11-03T01:01:00", "2024-11-03T01:30:00"]
    state = FallBackState()
    first = localize_flagged(naive(*texts[:2]), zone, state=state).utc
    second = localize_flagged(naive(*texts[2:]), zone, state=state).utc
    expected = [stdlib_utc(t, zone, fold) for t, fold in zip(texts, [0, 0, 1, 1], strict=True)]
    assert [*first.tolist(), *second.tolist()] == expected


@pytest.mark.parametrize(
    ("zone", "gap_time", "after"),
    [
        ("America/New_York", "2024-03-10T02:30:00", "2024-03-10T03:40:00"),
        ("Europe/Berlin", "2024-03-31T02:30:00", "2024-03-31T03:40:00"),
    ],
)
def test_spring_forward_gap_is_shifted_forward_and_flagged(zone: str, gap_time: str, after: str) -> None:
    result = localize_flagged(naive("2024-03-10T00:00:00", gap_time, after), zone)
    # PEP 495: a time in the gap with fold=0 is read with the offset in force before the gap.
    assert result.utc.iloc[1] == stdlib_utc(gap_time, zone)
    assert result.nonexistent.tolist() == [False, True, False]
    assert result.utc.iloc[1] < result.utc.iloc[2]  # order kept
    local = result.utc.iloc[1].tz_convert(zone)
    assert (local.hour, local.minute) == (3, 30)


def test_offsets_unwrap_months_in_file_order() -> None:
    ts = naive("2000-11-30T00:00:00", "2000-12-31T23:59:58", "2000-01-01T00:00:02", "2000-12-31T23:59:59", None)
    assert year_offsets(ts).tolist() == [0, 0, 1, 0, pd.NA]


def test_december_to_january_rollover_with_year_reference() -> None:
    ts = naive("2000-12-31T23:59:58", "2000-01-01T00:00:02")
    years, note = infer_years(ts, reference_from_year(2024), rule="first", origin="--year")
    assert years.tolist() == [pd.Timestamp("2024-12-31T23:59:58"), pd.Timestamp("2025-01-01T00:00:02")]
    assert "2024" in note
    assert "--year" in note


def test_rollover_carried_across_chunks() -> None:
    scan = YearScan()
    first = scan.observe(naive("2000-12-30T10:00:00", "2000-12-31T23:00:00"))
    second = scan.observe(naive("2000-01-01T01:00:00", "2000-01-02T01:00:00"))
    anchor, _ = scan.choose(reference_from_year(2024), "first", "--year")
    assert anchor == 2024
    assert apply_years(naive("2000-01-01T01:00:00"), second.iloc[:1], anchor).iloc[0] == pd.Timestamp(
        "2025-01-01T01:00:00"
    )
    assert first.tolist() == [0, 0]


def test_feb_29_with_reference_2023_goes_to_the_nearest_leap_year() -> None:
    years, note = infer_years(naive("2000-02-29T12:00:00"), reference_from_year(2023), rule="first", origin="--year")
    assert years.iloc[0] == pd.Timestamp("2024-02-29T12:00:00")
    assert "leap" in note


def test_feb_29_that_cannot_be_in_a_leap_year_becomes_nat() -> None:
    # The same file says Feb 29 in two consecutive years: one of them is impossible.
    ts = naive("2000-02-29T12:00:00", "2000-08-01T00:00:00", "2000-01-01T00:00:00", "2000-02-29T12:00:00")
    years, _ = infer_years(ts, reference_from_year(2024), rule="first", origin="--year")
    assert years.isna().sum() == 1


def test_year_from_window_is_the_nearest() -> None:
    ts = naive("2000-12-31T23:00:00", "2000-01-01T01:00:00")
    start, end = pd.Timestamp("2025-01-01T00:00:00Z"), pd.Timestamp("2025-01-01T02:00:00Z")
    reference = reference_from_window(start, end)
    assert reference is not None
    years, _ = infer_years(ts, reference, rule="nearest", origin="the window")
    assert years.tolist() == [pd.Timestamp("2024-12-31T23:00:00"), pd.Timestamp("2025-01-01T01:00:00")]
    # A file of January lines only, with a window starting on New Year's Eve: January of the next year.
    only_jan, _ = infer_years(
        naive("2000-01-01T00:10:00"), pd.Timestamp("2024-12-31T22:00:00Z"), rule="nearest", origin="the window"
    )
    assert only_jan.iloc[0] == pd.Timestamp("2025-01-01T00:10:00")


def test_year_from_other_sources_of_the_run() -> None:
    reference = reference_from_times(
        [pd.Timestamp("2019-06-14T10:00:00Z"), pd.Timestamp("2019-06-15T10:00:00Z"), pd.NaT]
    )
    assert reference is not None
    years, _ = infer_years(naive("2000-06-14T15:16:01"), reference, rule="nearest", origin="other sources")
    assert years.iloc[0] == pd.Timestamp("2019-06-14T15:16:01")
    assert reference_from_times([]) is None


def test_year_from_mtime_keeps_the_last_line_not_after_it() -> None:
    ts = naive("2000-12-30T10:00:00", "2000-01-02T10:00:00")
    mtime = pd.Timestamp("2025-01-02T11:00:00Z")
    years, note = infer_years(ts, mtime, rule="not_after", origin="the file's modification time")
    assert years.tolist() == [pd.Timestamp("2024-12-30T10:00:00"), pd.Timestamp("2025-01-02T10:00:00")]
    assert "modification time" in note
    # A file written in March whose lines say December: last December, not the coming one.
    december, _ = infer_years(
        naive("2000-12-10T06:55:46"), pd.Timestamp("2025-03-01T00:00:00Z"), rule="not_after", origin="mtime"
    )
    assert december.iloc[0] == pd.Timestamp("2024-12-10T06:55:46")


def test_empty_and_all_nat_series() -> None:
    years, _ = infer_years(naive(), reference_from_year(2024), rule="first", origin="--year")
    assert years.empty
    years, _ = infer_years(naive(None, None), reference_from_year(2024), rule="first", origin="--year")
    assert years.isna().all()
    assert localize(naive(), "Europe/Berlin").empty


def test_years_outside_the_nanosecond_range_never_crash() -> None:
    # 2261-12-31 then 2262-01-01 would leave the last whole year of ns timestamps (2261): the
    # nearest anchor that keeps the whole file inside the range is taken instead.
    ts = naive("2000-12-31T00:00:00", "2000-01-01T00:00:00")
    years, _ = infer_years(ts, reference_from_year(2261), rule="first", origin="--year")
    assert years.tolist() == [pd.Timestamp("2260-12-31T00:00:00"), pd.Timestamp("2261-01-01T00:00:00")]
    early, note = infer_years(naive("2000-06-01T00:00:00"), reference_from_year(1500), rule="first", origin="--year")
    assert early.isna().all()
    assert "1500" in note
