"""Anomaly detection on per-bucket counts: zero baselines, background noise, window edges, several rises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_incidents import make_events

from pmtimeline.config import TimelineConfig
from pmtimeline.schema import COUNT_COLUMNS, empty_counts
from pmtimeline.signals import bad_event_mask, count_column, detect_runs, find_anomaly, uses_edge

CONFIG = TimelineConfig()
T0 = pd.Timestamp("2024-03-05T08:00:00Z")


def counts_from(series: dict[str, dict[str, list[int]]]) -> pd.DataFrame:
    """Per-minute counts: {service: {column: [count per minute]}}, every other column zero."""
    frames = []
    for service, columns in series.items():
        n = len(next(iter(columns.values())))
        frame = pd.DataFrame({"bucket": pd.date_range(T0, periods=n, freq="1min"), "service": service})
        for name in COUNT_COLUMNS[2:]:
            frame[name] = np.asarray(columns.get(name, [0] * n), dtype="int64")
        frame["events"] = frame[list(COUNT_COLUMNS[3:])].sum(axis=1) + 10
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).astype(empty_counts().dtypes.to_dict())


def minutes(values: list[int], at: dict[int, int] | None = None) -> list[int]:
    out = list(values)
    for i, v in (at or {}).items():
        out[i] = v
    return out


def test_empty_counts_have_no_anomaly() -> None:
    assert find_anomaly(empty_counts(), CONFIG) is None


def test_errors_from_nothing() -> None:
    errors = [0] * 30 + [12] * 6 + [0] * 20
    anomaly = find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG)
    assert anomaly is not None
    assert (anomaly.signal, anomaly.start, anomaly.end) == (
        "errors",
        T0 + pd.Timedelta(minutes=30),
        T0 + pd.Timedelta(minutes=35),
    )
    assert not anomaly.ongoing
    assert anomaly.services == ("api",)
    assert anomaly.baseline == 0


def test_a_few_errors_from_nothing_are_not_an_incident() -> None:
    errors = [0] * 30 + [2] * 6 + [0] * 20  # below anomaly_min_count
    assert find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG) is None


def test_single_bucket_spike_is_not_sustained() -> None:
    errors = minutes([1] * 60, {30: 50})
    assert find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_background_noise_over_hours(seed: int) -> None:
    rng = np.random.default_rng(seed)
    errors = rng.poisson(4, 6 * 60)
    errors[200:215] += rng.poisson(25, 15)
    anomaly = find_anomaly(counts_from({"api": {"errors": errors.tolist()}}), CONFIG)
    assert anomaly is not None
    assert abs(anomaly.start - (T0 + pd.Timedelta(minutes=200))) <= pd.Timedelta(minutes=1)
    assert abs(anomaly.end - (T0 + pd.Timedelta(minutes=214))) <= pd.Timedelta(minutes=1)


@pytest.mark.parametrize("seed", [3, 4])
def test_pure_noise_has_no_anomaly(seed: int) -> None:
    errors = np.random.default_rng(seed).poisson(4, 6 * 60)
    assert find_anomaly(counts_from({"api": {"errors": errors.tolist()}}), CONFIG) is None


def test_anomaly_at_the_start_of_the_window_uses_a_global_baseline() -> None:
    errors = [30] * 4 + [1] * 40
    anomaly = find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG)
    assert anomaly is not None
    assert (anomaly.start, anomaly.end) == (T0, T0 + pd.Timedelta(minutes=3))


def test_ongoing_at_the_end_of_the_window() -> None:
    errors = [1] * 30 + [40] * 5
    anomaly = find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG)
    assert anomaly is not None
    assert anomaly.ongoing


def test_largest_of_several_anomalies_wins() -> None:
    errors = minutes([1] * 90, {**dict.fromkeys(range(20, 23), 10), **dict.fromkeys(range(60, 70), 40)})
    runs = detect_runs(np.asarray(errors, dtype="float64"), CONFIG)
    assert [(r.start, r.end) for r in runs] == [(20, 22), (60, 69)]
    anomaly = find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG)
    assert anomaly is not None
    assert anomaly.start == T0 + pd.Timedelta(minutes=60)


def test_a_burst_of_warnings_is_an_anomaly_but_errors_win_when_both_rise() -> None:
    warnings = minutes([5] * 60, dict.fromkeys(range(30, 40), 200))
    alone = find_anomaly(counts_from({"auth": {"warnings": warnings}}), CONFIG)
    assert alone is not None
    assert alone.signal == "warnings"
    errors = minutes([0] * 60, dict.fromkeys(range(31, 40), 20))
    both = find_anomaly(counts_from({"auth": {"warnings": warnings, "errors": errors}}), CONFIG)
    assert both is not None
    assert both.signal == "errors"


def test_affected_services_exclude_bystanders() -> None:
    rng = np.random.default_rng(7)
    pay = rng.poisson(1, 60)
    pay[30:40] += 30
    other = rng.poisson(1, 60)
    anomaly = find_anomaly(
        counts_from({"payments": {"errors": pay.tolist()}, "reports": {"errors": other.tolist()}}), CONFIG
    )
    assert anomaly is not None
    assert anomaly.services == ("payments",)


def test_failed_requests_are_counted_at_the_edge_when_access_logs_exist() -> None:
    edge = counts_from({"edge": {"edge_requests": [10] * 5, "failed_edge_requests": [1] * 5, "requests": [10] * 5}})
    assert uses_edge(edge)
    assert count_column("failed_requests", True) == "failed_edge_requests"
    assert not uses_edge(counts_from({"app": {"requests": [10] * 5}}))


def test_bad_event_mask_per_signal() -> None:
    events = make_events(
        [
            {"time": "2024-03-05T08:00:00Z", "level": "error", "message": "boom"},
            {"time": "2024-03-05T08:00:01Z", "level": "warning", "message": "slow"},
            {"time": "2024-03-05T08:00:02Z", "kind": "request", "http_status": 503, "format": "access_combined"},
            {"time": "2024-03-05T08:00:03Z", "kind": "request", "http_status": 502, "format": "json_lines"},
            {"time": "2024-03-05T08:00:04Z", "level": "warning", "http_status": 500, "message": "upstream"},
        ]
    )
    assert bad_event_mask(events, "errors", True).tolist() == [True, False, True, True, True]
    assert bad_event_mask(events, "warnings", True).tolist() == [False, True, False, False, False]
    assert bad_event_mask(events, "failed_requests", True).tolist() == [False, False, True, False, False]
    assert bad_event_mask(events, "failed_requests", False).tolist() == [False, False, True, True, False]


def test_signal_frames_are_each_column_per_bucket_and_service() -> None:
    # The cells are summed once per column: each frame equals the column's own pivot of the counts
    # (a five-minute bucket, so that several per-second rows fall in each cell).
    from synthetic_incidents import outage

    from pmtimeline.aggregate import aggregate
    from pmtimeline.signals import bucket_range, signal_frame, signal_frames

    counts = aggregate(outage(23, minutes=90).events, CONFIG).counts
    buckets = bucket_range(counts["bucket"].min(), counts["bucket"].max(), "5min")
    columns = ["errors", "failed_edge_requests", "warnings", "errors"]
    frames = signal_frames(counts, columns, buckets, "5min")
    floored = counts.assign(bucket=counts["bucket"].dt.floor("5min"))
    for column in columns:
        pivot = floored.pivot_table(index="bucket", columns="service", values=column, aggfunc="sum", fill_value=0)
        expected = pivot.reindex(buckets, fill_value=0).astype("float64")
        pd.testing.assert_frame_equal(frames[column], expected)
        pd.testing.assert_frame_equal(signal_frame(counts, column, buckets, "5min"), frames[column])
    assert frames["errors"].to_numpy().sum() == counts["errors"].sum()
    # Buckets of part of the window only, and counts without a service: both left out.
    part = bucket_range(counts["bucket"].min(), counts["bucket"].min() + pd.Timedelta("30min"), "1min")
    unnamed = counts.assign(service=counts["service"].where(counts.index % 7 != 0))
    floored = unnamed.assign(bucket=unnamed["bucket"].dt.floor("1min"))
    pivot = floored.pivot_table(index="bucket", columns="service", values="errors", aggfunc="sum", fill_value=0)
    expected = pivot.reindex(part, fill_value=0).astype("float64")
    pd.testing.assert_frame_equal(signal_frames(unnamed, ["errors"], part, "1min")["errors"], expected)
    assert signal_frames(empty_counts(), ["errors"], buckets, "5min")["errors"].shape == (len(buckets), 0)


def test_years_of_counts_give_a_bounded_signal_and_still_find_the_rise() -> None:
    from pmtimeline.aggregate import MAX_BUCKETS, Aggregates, span_config
    from pmtimeline.signals import bucket_range

    # A day's worth of background errors every month for eight years, then a month of many errors.
    days = pd.date_range("2010-01-01", "2017-12-01", freq="MS", tz="UTC")
    burst = pd.date_range("2018-01-01", "2018-01-28", freq="D", tz="UTC")
    rows = [(t, 1) for t in days] + [(t, 200) for t in burst]
    counts = empty_counts().reindex(range(len(rows)))
    counts["bucket"] = pd.to_datetime([t for t, _ in rows], utc=True)
    counts["service"] = "batch"
    for column in COUNT_COLUMNS[2:]:
        counts[column] = 0
    counts["events"] = counts["errors"] = [n for _, n in rows]
    aggregates = Aggregates(counts, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), rows[0][0], rows[-1][0])
    config = span_config(TimelineConfig(), aggregates)
    assert pd.Timedelta(config.bucket) > pd.Timedelta("1D")
    assert len(bucket_range(rows[0][0], rows[-1][0], config.bucket)) <= MAX_BUCKETS
    anomaly = find_anomaly(counts, config, rows[0][0], rows[-1][0])
    assert anomaly is not None
    assert anomaly.signal == "errors"
    assert pd.Timestamp("2017-12-01", tz="UTC") < anomaly.start <= pd.Timestamp("2018-01-03", tz="UTC")
    assert anomaly.services == ("batch",)


# Issue 15 (helper 9): an anomaly is over when its counts are back at the baseline, not when each bucket
# falls under the floor that starting one needs.


def test_a_residual_trickle_on_a_baseline_of_none_is_still_the_incident() -> None:
    """After the peak, one to four failures a minute for half an hour on a baseline of none: the
    incident ends with the trickle, not at the first three buckets under ``anomaly_min_count``."""
    trickle = [2, 1, 2, 1, 4, 2, 1, 3, 1, 2, 2, 1, 1, 3, 2, 1, 2, 4, 1, 2, 1, 1, 2, 3, 1, 2, 1, 2, 2, 1]
    errors = [0] * 30 + [20] * 10 + trickle + [0] * 20
    anomaly = find_anomaly(counts_from({"api": {"errors": errors}}), CONFIG)
    assert anomaly is not None
    assert anomaly.start == T0 + pd.Timedelta(minutes=30)
    assert anomaly.end == T0 + pd.Timedelta(minutes=40 + len(trickle) - 1)


@pytest.mark.parametrize("seed", [5, 6])
def test_the_same_trickle_on_a_background_like_it_is_the_background(seed: int) -> None:
    """Where the baseline itself fails a couple of times a minute, the trickle after the peak is the
    background: the incident ends with the peak."""
    errors = np.random.default_rng(seed).poisson(2, 120)
    errors[60:70] += 25
    anomaly = find_anomaly(counts_from({"api": {"errors": errors.tolist()}}), CONFIG)
    assert anomaly is not None
    assert abs(anomaly.end - (T0 + pd.Timedelta(minutes=69))) <= pd.Timedelta(minutes=1)
