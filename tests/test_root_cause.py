"""Root-cause candidates: recent changes in the failing service, new error templates, where failures began."""

from __future__ import annotations

from functools import cache

import pandas as pd
from synthetic_incidents import Synthetic, make_events, outage

from pmtimeline.aggregate import Aggregates, aggregate
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.root_cause import rank_root_causes

CONFIG = TimelineConfig()


@cache
def data() -> tuple[Synthetic, Aggregates]:
    synthetic = outage(51, minutes=75)
    return synthetic, aggregate(classify_changes(synthetic.events), CONFIG)


def test_candidates_are_ranked_with_the_deploy_first() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    top = candidates[0]
    assert (top.kind, top.service, top.time) == ("change", "payments", synthetic.truth.cause_time)
    assert "Deployed payments" in top.evidence[0].message
    restart = next(c for c in candidates if c.kind == "change" and c.service == "reports")
    assert restart.score < 0.5 * top.score


def test_new_error_templates_earliest_first() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    templates = [c for c in candidates if c.kind == "new_error_template"]
    summaries = " ".join(c.summary for c in templates)
    assert "Connection is not available" in summaries
    assert "scheduled job reconcile failed" not in summaries  # background errors are not new
    onset = synthetic.truth.onset
    assert onset is not None
    assert all(c.time is not None and c.time >= onset for c in templates)


def test_first_failing_service_follows_traces_past_the_edge() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == "payments"
    assert {e.service for e in origin.evidence} >= {"payments"}


def test_propagation_order_without_traces() -> None:
    events = make_events(
        [
            {"time": "2024-03-05T08:00:00Z", "service": "db", "level": "error", "message": "disk full"},
            {"time": "2024-03-05T08:00:05Z", "service": "api", "level": "error", "message": "query failed"},
            {"time": "2024-03-05T08:00:09Z", "service": "db", "level": "error", "message": "disk full"},
        ]
    )
    aggregates = aggregate(events, CONFIG)
    phases = {"onset": pd.Timestamp("2024-03-05T08:00:00Z"), "recovered": pd.Timestamp("2024-03-05T08:00:09Z")}
    candidates = rank_root_causes(aggregates, phases, "errors", ("db", "api"), CONFIG)
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == "db"
    assert "db, api" in origin.summary


def test_no_onset_no_candidates() -> None:
    _, aggregates = data()
    assert rank_root_causes(aggregates, {"onset": None}, None, (), CONFIG) == ()
