"""Root-cause candidates: recent changes in the failing service, new error templates, where failures began."""

from __future__ import annotations

from functools import cache

import pandas as pd
from synthetic_incidents import Synthetic, make_events, outage

from pmtimeline.aggregate import Aggregates, aggregate, error_mask
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.correlate import correlation_ids
from pmtimeline.root_cause import rank_root_causes
from pmtimeline.templates import message_templates

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


def test_counts_and_votes_stay_exact_when_few_errors_are_kept_whole() -> None:
    # A busy outage: tens of failing requests per second, so only a bounded choice of the errors is
    # kept whole; the candidates' counts must still be those of every event.
    synthetic = outage(53, minutes=30, rate_per_min=2500, onset_minute=8)
    events = classify_changes(synthetic.events)
    aggregates = aggregate(events, CONFIG)
    errors = events.loc[error_mask(events)]
    assert len(aggregates.notable.loc[error_mask(aggregates.notable)]) < 0.5 * len(errors)
    phases = synthetic.truth.phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    candidates = rank_root_causes(aggregates, phases, "errors", ("payments", "edge"), CONFIG)

    # New templates: counted over every error of the incident.
    t = errors["timestamp"]
    templates = message_templates(errors["message"]).fillna("")
    during = templates[((t >= onset) & (t <= recovered)).to_numpy()]
    new = during[~during.isin(set(templates[(t < onset).to_numpy()]))].value_counts()
    found = [c for c in candidates if c.kind == "new_error_template"]
    assert found
    for candidate in found:
        template = next(name for name in new.index if f": {name} (" in candidate.summary)
        assert f"({new[template]} events, {new[template] / len(during):.0%} of errors)" in candidate.summary

    # First failing service: votes over every failing request followed across services.
    width = pd.Timedelta(CONFIG.bucket)
    window = errors.loc[((t >= onset - width) & (t <= recovered)).to_numpy()].dropna(subset=["service"])
    traced = window.assign(cid=correlation_ids(window)).dropna(subset=["cid"])
    multi = traced.loc[traced.groupby("cid")["service"].transform("nunique").to_numpy() >= 2]
    edge = multi["format"].str.startswith("access").fillna(False)
    origins = multi.assign(_edge=edge).sort_values(["cid", "_edge", "timestamp"], kind="stable").drop_duplicates("cid")
    votes = origins["service"].value_counts()
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == votes.index[0] == "payments"
    assert f"{votes.iloc[0]} of {votes.sum()} failing requests" in origin.summary
    # Its evidence is one whole request: its errors (up to four), in time order, as every event has them.
    first = origin.evidence[0]
    row = window.loc[(window["timestamp"] == first.time) & (window["source"] == first.source)]
    row = row.loc[row["line"] == first.line]
    cid = correlation_ids(row).iloc[0]
    request = traced.loc[traced["cid"] == cid].sort_values("timestamp", kind="stable").head(4)
    assert [(e.source, e.line) for e in origin.evidence] == list(zip(request["source"], request["line"], strict=True))


def test_one_selection_of_traced_events_serves_dependencies_and_origin() -> None:
    # rank_root_causes selects the traced events once, from one bucket before onset; from onset on,
    # that selection is the one the dependencies are found in.
    from pmtimeline.root_cause import _dependencies, _traced

    synthetic, aggregates = data()
    onset, recovered = synthetic.truth.onset, synthetic.truth.recovered
    assert onset is not None
    assert recovered is not None
    # Any earlier start: the window's, so that the selection holds events before onset.
    assert aggregates.window_start is not None
    wide = _traced(aggregates, CONFIG, aggregates.window_start, recovered)
    narrow = _traced(aggregates, CONFIG, onset, recovered)
    since_onset = wide.loc[(wide["timestamp"] >= onset).to_numpy(dtype=bool)].reset_index(drop=True)
    assert len(since_onset) == len(narrow) < len(wide)
    for column in ("timestamp", "cid", "service", "error"):
        assert since_onset[column].astype(str).tolist() == narrow[column].astype(str).tolist()
    for services in (("payments", "edge"), ("edge",)):
        assert _dependencies(since_onset, services) == _dependencies(narrow, services)
    assert _dependencies(narrow, ("edge",)) == {"payments"}
