"""Impact metrics as a function of the phases and the aggregates."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest
from synthetic_incidents import Synthetic, outage, truth_counts

from pmtimeline.aggregate import Aggregates, aggregate, latency_bins
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.impact import compute_metrics, histogram_percentiles

CONFIG = TimelineConfig()


@cache
def data() -> tuple[Synthetic, Aggregates]:
    synthetic = outage(41, minutes=75)
    return synthetic, aggregate(classify_changes(synthetic.events), CONFIG)


def truth_phases() -> dict[str, pd.Timestamp | None]:
    return data()[0].truth.phases()


def test_counts_durations_and_users_match_the_truth() -> None:
    synthetic, aggregates = data()
    phases = truth_phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    metrics = compute_metrics(phases, aggregates, CONFIG)
    expected = truth_counts(synthetic.events, onset, recovered)
    assert metrics.requests_total == expected["requests_total"]
    assert metrics.requests_failed == expected["requests_failed"]
    assert metrics.error_events == expected["error_events"]
    assert metrics.affected_users == expected["affected_users"]
    assert metrics.time_to_recover_s == (recovered - onset).total_seconds()
    assert metrics.time_to_resolve_s == (synthetic.truth.resolved - onset).total_seconds()  # type: ignore[operator]
    assert metrics.affected_services == ("payments", "edge")
    assert set(metrics.affected_hosts) <= {"pay-1", "pay-2", "edge-1", "payments-1"}
    assert {"pay-1", "pay-2"} <= set(metrics.affected_hosts)


def test_error_rate_peak_is_the_worst_bucket() -> None:
    synthetic, aggregates = data()
    phases = truth_phases()
    metrics = compute_metrics(phases, aggregates, CONFIG)
    events = synthetic.events
    edge = events.loc[(events["kind"] == "request") & events["format"].str.startswith("access")]
    t = edge["timestamp"]
    inside = edge.loc[(t >= phases["onset"]) & (t <= phases["recovered"])]
    per_minute = inside.groupby(inside["timestamp"].dt.floor("1min"))["http_status"].agg(
        lambda s: (s >= 500).sum() / len(s)
    )
    assert metrics.error_rate_peak == pytest.approx(per_minute.max(), abs=1e-4)


def test_endpoints_without_query_strings_most_failed_first() -> None:
    _synthetic, aggregates = data()
    metrics = compute_metrics(truth_phases(), aggregates, CONFIG)
    paths = [p for p, _ in metrics.affected_endpoints]
    assert set(paths) == {"/api/v1/payments", "/api/v1/payments/confirm"}
    counts = [n for _, n in metrics.affected_endpoints]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == metrics.requests_failed


def test_cost_model_and_error_budget() -> None:
    _, aggregates = data()
    phases = truth_phases()
    config = replace(CONFIG, slo=99.9, cost_per_failed_request=0.5, revenue_per_minute=100.0)
    metrics = compute_metrics(phases, aggregates, config)
    assert metrics.requests_failed is not None
    assert metrics.time_to_recover_s is not None
    expected_cost = 0.5 * metrics.requests_failed + 100.0 * metrics.time_to_recover_s / 60
    assert metrics.estimated_cost == pytest.approx(expected_cost, abs=0.01)
    window_requests = int(aggregates.counts["edge_requests"].sum())
    assert metrics.error_budget_burn == pytest.approx(metrics.requests_failed / (0.001 * window_requests), rel=1e-3)
    assert compute_metrics(phases, aggregates, CONFIG).estimated_cost is None


def test_latency_before_and_during() -> None:
    _, aggregates = data()
    latency = compute_metrics(truth_phases(), aggregates, CONFIG).latency_ms
    assert set(latency) == {"before", "during"}
    assert latency["before"]["p50"] is not None
    assert latency["during"]["p99"] is not None
    assert latency["before"]["p50"] < 60 < 2500 < latency["during"]["p99"]


def test_histogram_percentiles_match_numpy() -> None:
    durations = np.random.default_rng(5).lognormal(3, 0.8, 20_000)
    bins, counts = np.unique(latency_bins(durations), return_counts=True)
    got = histogram_percentiles(bins, counts)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert got[name] == pytest.approx(np.percentile(durations, q), rel=0.07)
    assert histogram_percentiles(bins[:0], counts[:0]) == {"p50": None, "p95": None, "p99": None}


def test_no_onset_only_durations() -> None:
    _, aggregates = data()
    metrics = compute_metrics(dict.fromkeys(truth_phases()), aggregates, CONFIG)
    assert metrics.requests_total is None
    assert metrics.time_to_detect_s is None


def test_latency_reads_the_first_scope_present() -> None:
    # Edge durations when the window has them, else those of request events; percentiles of the
    # histogram rows of that scope only, before onset and within [onset, recovered].
    from pmtimeline.impact import latency_before_during

    _, aggregates = data()
    phases = truth_phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    start = onset.floor(CONFIG.count_resolution)
    latency = aggregates.latency
    assert {"edge", "request"} <= set(latency["scope"])
    got = latency_before_during(latency, onset, recovered, CONFIG.count_resolution)
    edge = latency.loc[latency["scope"].eq("edge").to_numpy(dtype=bool)]
    for name, rows in (
        ("before", edge.loc[edge["bucket"] < start]),
        ("during", edge.loc[(edge["bucket"] >= start) & (edge["bucket"] <= recovered)]),
    ):
        per_bin = rows.groupby("bin")["count"].sum()
        assert got[name] == histogram_percentiles(per_bin.index.to_numpy(), per_bin.to_numpy())
    requests_only = latency.loc[latency["scope"].ne("edge").to_numpy(dtype=bool)]
    own = latency_before_during(requests_only, onset, recovered, CONFIG.count_resolution)
    assert own != got
    assert set(own) == {"before", "during"}
