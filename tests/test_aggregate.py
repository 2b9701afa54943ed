"""Streaming aggregation: counts, notable events, latency histograms, actors; chunking changes nothing."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from synthetic_incidents import credential_stuffing, make_events, outage

from pmtimeline.aggregate import (
    SAMPLE_PER_TEMPLATE,
    Aggregates,
    Aggregator,
    aggregate,
    bin_value,
    count_signals,
    latency_bins,
)
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.schema import COUNT_COLUMNS

CONFIG = TimelineConfig()


@cache
def events() -> pd.DataFrame:
    return classify_changes(outage(31, minutes=75, rate_per_min=40).events)


def chunked(frame: pd.DataFrame, chunks: int) -> Aggregates:
    aggregator = Aggregator(CONFIG)
    for part in np.array_split(np.arange(len(frame)), chunks):
        aggregator.add(frame.iloc[part])
    return aggregator.result()


def test_count_signals_match_direct_counts() -> None:
    frame = events()
    counts = count_signals(frame, "1s")
    assert tuple(counts.columns) == COUNT_COLUMNS
    assert int(counts["events"].sum()) == len(frame)
    is_error = frame["level"].isin(["error", "critical"]).fillna(False) | (frame["http_status"] >= 500).fillna(False)
    assert int(counts["errors"].sum()) == int(is_error.sum())
    edge = (frame["kind"] == "request") & frame["format"].str.startswith("access")
    assert int(counts["edge_requests"].sum()) == int(edge.sum())
    assert int(counts["failed_edge_requests"].sum()) == int((edge & (frame["http_status"] >= 500)).sum())
    assert int(counts["requests"].sum()) > int(counts["edge_requests"].sum())  # payments logs requests too
    payments = counts.loc[counts["service"] == "payments", "events"].sum()
    assert payments == int((frame["service"] == "payments").sum())
    assert (counts["bucket"] == counts["bucket"].dt.floor("1s")).all()


@pytest.mark.parametrize("chunks", [2, 7])
def test_chunks_give_the_same_aggregates(chunks: int) -> None:
    whole, parts = chunked(events(), 1), chunked(events(), chunks)
    pd.testing.assert_frame_equal(whole.counts, parts.counts)
    pd.testing.assert_frame_equal(whole.latency, parts.latency)
    pd.testing.assert_frame_equal(whole.actors, parts.actors)
    assert (whole.window_start, whole.window_end) == (parts.window_start, parts.window_end)
    kept = whole.notable
    important = kept["level"].isin(["warning", "error"]).fillna(False) | kept["kind"].isin(["change", "alert"])
    pd.testing.assert_frame_equal(
        kept.loc[important].reset_index(drop=True),
        parts.notable.loc[
            parts.notable["level"].isin(["warning", "error"]).fillna(False)
            | parts.notable["kind"].isin(["change", "alert"])
        ].reset_index(drop=True),
    )


def test_notable_keeps_what_the_analysis_needs_and_little_else() -> None:
    frame = events()
    result = aggregate(frame, CONFIG)
    notable = result.notable
    errors = frame["level"].isin(["error"]).fillna(False) | (frame["http_status"] >= 500).fillna(False)
    assert len(
        notable.loc[notable["level"].eq("error").fillna(False) | (notable["http_status"] >= 500).fillna(False)]
    ) == int(errors.sum())
    assert set(notable.loc[notable["kind"] == "change", "change_type"]) == {"deploy", "restart", "rollback"}
    assert int((notable["kind"] == "alert").sum()) == int((frame["kind"] == "alert").sum())
    ordinary = notable.loc[
        ~(notable["level"].isin(["warning", "error"]).fillna(False)) & notable["kind"].isin(["log", "request"])
    ]
    assert len(ordinary) < 0.05 * len(frame)
    # The first and last event of every service are kept.
    for service, group in frame.groupby("service"):
        own = notable.loc[notable["service"] == service, "timestamp"]
        assert own.min() == group["timestamp"].min()
        assert own.max() == group["timestamp"].max()
    assert notable["timestamp"].is_monotonic_increasing
    assert (result.window_start, result.window_end) == (frame["timestamp"].min(), frame["timestamp"].max())


def test_sample_is_bounded_per_template() -> None:
    frame = make_events(
        [
            {"time": f"2024-03-05T08:00:{i % 60:02d}Z", "message": f"cache hit for key {i}", "service": "api"}
            for i in range(50)
        ]
    )
    notable = aggregate(frame, CONFIG).notable
    # One template: its first SAMPLE_PER_TEMPLATE events, plus the service's last event.
    assert len(notable) == SAMPLE_PER_TEMPLATE + 1
    assert notable["message"].iloc[-1] == "cache hit for key 49"


def test_latency_histogram_is_within_six_percent() -> None:
    durations = np.random.default_rng(1).lognormal(4, 1, 10_000)
    representative = bin_value(latency_bins(durations))
    assert np.all(np.abs(representative / durations - 1) < 0.06)


def test_pushed_down_counts_are_not_counted_twice() -> None:
    frame = events()
    aggregator = Aggregator(CONFIG)
    aggregator.add_counts(count_signals(frame, CONFIG.count_resolution))
    aggregator.add(frame.loc[frame["level"].isin(["warning", "error"]).fillna(False)], counted=True)
    pushed = aggregator.result()
    pd.testing.assert_frame_equal(pushed.counts, aggregate(frame, CONFIG).counts)
    with pytest.raises(ValueError, match="lack columns"):
        aggregator.add_counts(pd.DataFrame({"bucket": [pd.Timestamp("2024-03-05T08:00:00Z")]}))


def test_actors_count_login_failures_and_successes() -> None:
    synthetic = credential_stuffing(3, minutes=90)
    actors = aggregate(synthetic.events, CONFIG).actors
    attacker = synthetic.truth.attackers[0]
    own = synthetic.events.loc[(synthetic.events["client_ip"] == attacker) & (synthetic.events["service"] == "auth")]
    mine = actors.loc[(actors["actor_kind"] == "client_ip") & (actors["actor"] == attacker)]
    assert int(mine["failures"].sum()) == int((own["level"] == "warning").sum())
    assert int(mine["successes"].sum()) == int((own["level"] == "info").sum())
    assert set(mine["account"]) == set(own["user"])


def test_empty_chunks_and_empty_result() -> None:
    aggregator = Aggregator(CONFIG)
    aggregator.add(events().iloc[:0])
    result = aggregator.result()
    assert result.counts.empty
    assert result.notable.empty
    assert result.window_start is None
