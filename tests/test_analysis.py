"""The analysis end to end on synthetic incidents with known truth (see tests/synthetic_incidents.py)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pandas as pd
import pytest
from synthetic_incidents import Synthetic, credential_stuffing, outage, quiet, truth_counts

from pmtimeline.aggregate import Aggregates, Aggregator
from pmtimeline.analysis import analyze, apply_overrides
from pmtimeline.changes import classify_changes
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.errors import ConfigError
from pmtimeline.incident import Incident
from pmtimeline.sources import SourceAccounting

CONFIG = TimelineConfig()
BUCKET = pd.Timedelta(CONFIG.bucket)
SEEDS = (1, 2, 3)


def aggregate_in_chunks(events: pd.DataFrame, config: TimelineConfig, chunks: int = 1) -> Aggregates:
    aggregator = Aggregator(config)
    size = -(-len(events) // chunks)
    for start in range(0, len(events), size):
        aggregator.add(classify_changes(events.iloc[start : start + size], config.change_vocabulary))
    return aggregator.result()


@cache
def scenario(name: str, seed: int) -> tuple[Synthetic, Aggregates, Incident]:
    if name == "outage":
        synthetic = outage(seed, minutes=75, rate_per_min=[40.0, 90.0, 25.0][seed % 3])
    elif name == "hours":
        synthetic = outage(seed, minutes=5 * 60, rate_per_min=12, background_per_min=3.0)
    elif name == "zero":
        synthetic = outage(seed, minutes=75, rate_per_min=30, background_per_min=0.0)
    elif name == "at_start":
        synthetic = outage(seed, minutes=60, rate_per_min=40, onset_minute=0.5)
    elif name == "quiet":
        synthetic = quiet(seed)
    else:
        synthetic = credential_stuffing(seed, minutes=90)
    aggregates = aggregate_in_chunks(synthetic.events, CONFIG, chunks=2)
    return synthetic, aggregates, analyze(aggregates, [], CONFIG)


def assert_phases_near_truth(incident: Incident, synthetic: Synthetic) -> None:
    for phase, truth in synthetic.truth.phases().items():
        found = incident.phases[phase]
        assert (found is None) == (truth is None), phase
        if found is not None and truth is not None:
            assert abs(found - truth) <= BUCKET, (phase, found, truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_phases_within_one_bucket_of_the_truth(seed: int) -> None:
    synthetic, _, incident = scenario("outage", seed)
    assert incident.anomaly_signal == "errors"
    assert_phases_near_truth(incident, synthetic)
    # Detection, mitigation and resolution are read from single events: exact.
    for phase in ("detected", "mitigated", "resolved"):
        assert incident.phases[phase] == synthetic.truth.phases()[phase]
    assert set(incident.phase_evidence) == set(PHASES)
    assert incident.phase_evidence["detected"][0].kind == "alert"
    assert "Rolled back" in incident.phase_evidence["mitigated"][0].message


@pytest.mark.parametrize("seed", SEEDS)
def test_impact_counts_are_exact(seed: int) -> None:
    synthetic, _, incident = scenario("outage", seed)
    onset, recovered = incident.phases["onset"], incident.phases["recovered"]
    assert onset is not None
    assert recovered is not None
    truth = truth_counts(synthetic.events, onset, recovered)
    metrics = incident.metrics
    assert metrics.requests_total == truth["requests_total"]
    assert metrics.requests_failed == truth["requests_failed"]
    assert metrics.error_events == truth["error_events"]
    assert metrics.affected_users == truth["affected_users"]
    assert set(metrics.affected_services) == {"payments", "edge"}
    assert metrics.affected_endpoints[0][0].startswith("/api/v1/payments")
    assert "?" not in "".join(path for path, _ in metrics.affected_endpoints)
    assert metrics.time_to_detect_s == (incident.phases["detected"] - onset).total_seconds()
    during = metrics.latency_ms["during"]["p99"]
    before = metrics.latency_ms["before"]["p99"]
    assert during is not None
    assert before is not None
    assert during > 2500 > before


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_truth_phases_as_overrides_give_the_truth_counts(seed: int) -> None:
    synthetic, aggregates, _ = scenario("outage", seed)
    truth = synthetic.truth
    assert truth.onset is not None
    assert truth.recovered is not None
    overrides = {"onset": truth.onset, "recovered": truth.recovered}
    incident = analyze(aggregates, [], replace(CONFIG, phase_overrides=overrides))
    assert incident.phase_overridden == ("onset", "recovered")
    assert incident.phases["onset"] == truth.onset
    expected = truth_counts(synthetic.events, truth.onset, truth.recovered)
    got = incident.metrics
    assert (got.requests_total, got.requests_failed, got.error_events, got.affected_users) == (
        expected["requests_total"],
        expected["requests_failed"],
        expected["error_events"],
        expected["affected_users"],
    )


def test_overrides_flow_into_every_metric() -> None:
    synthetic, aggregates, incident = scenario("outage", 1)
    onset = incident.phases["onset"]
    assert onset is not None
    later = onset + pd.Timedelta(minutes=3)
    shifted = analyze(aggregates, [], replace(CONFIG, phase_overrides={"onset": later, "detected": later}))
    assert shifted.phases["onset"] == later
    assert shifted.phases["detected"] == later
    assert shifted.metrics.time_to_detect_s == 0
    recovered = shifted.phases["recovered"]
    assert recovered is not None
    assert shifted.metrics.time_to_recover_s == (recovered - later).total_seconds()
    assert shifted.metrics.requests_total == truth_counts(synthetic.events, later, recovered)["requests_total"]
    assert shifted.metrics.requests_total is not None
    assert incident.metrics.requests_total is not None
    assert shifted.metrics.requests_total < incident.metrics.requests_total
    assert "onset" not in shifted.phase_evidence

    # The same through apply_overrides on a saved incident, with and without the aggregates.
    saved = Incident.from_dict(incident.to_dict())
    again = apply_overrides(saved, {"onset": later, "detected": later}, aggregates, CONFIG)
    assert again.phases == shifted.phases
    assert again.metrics == shifted.metrics
    quick = apply_overrides(saved, {"detected": later})
    assert quick.phases["detected"] == later
    assert quick.phase_overridden == ("detected",)
    assert quick.metrics.time_to_detect_s == (later - onset).total_seconds()
    assert quick.metrics.requests_total == incident.metrics.requests_total
    with pytest.raises(ConfigError):
        apply_overrides(saved, {"begun": later})


def test_chunked_aggregation_gives_the_same_incident() -> None:
    synthetic, _, chunked = scenario("outage", 2)
    whole = analyze(aggregate_in_chunks(synthetic.events, CONFIG, chunks=1), [], CONFIG)
    assert whole.to_dict() == chunked.to_dict()


def test_incident_json_round_trip() -> None:
    _, _, incident = scenario("outage", 3)
    assert Incident.from_dict(incident.to_dict()).to_dict() == incident.to_dict()


def test_root_cause_is_the_deploy_not_the_unrelated_restart() -> None:
    synthetic, _, incident = scenario("outage", 3)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.service, top.time) == ("change", "payments", synthetic.truth.cause_time)
    restart = [c for c in incident.root_cause_candidates if c.time == synthetic.truth.extra["unrelated_restart"]]
    assert restart
    assert restart[0].score < top.score
    assert [c.rank for c in incident.root_cause_candidates] == list(range(1, len(incident.root_cause_candidates) + 1))


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_no_incident_gives_null_phases(seed: int) -> None:
    _, _, incident = scenario("quiet", seed)
    assert all(incident.phases[p] is None for p in PHASES)
    assert incident.anomaly_signal is None
    assert incident.metrics.requests_total is None
    assert not incident.exposure
    assert incident.root_cause_candidates == ()


def test_empty_aggregates() -> None:
    incident = analyze(Aggregates.empty(), [SourceAccounting(name="empty.log")], CONFIG)
    assert all(v is None for v in incident.phases.values())
    assert incident.sources[0].name == "empty.log"


def test_hours_long_window_with_background_errors() -> None:
    synthetic, _, incident = scenario("hours", 11)
    assert_phases_near_truth(incident, synthetic)


def test_zero_baseline() -> None:
    synthetic, aggregates, incident = scenario("zero", 12)
    assert int(aggregates.counts.loc[aggregates.counts["bucket"] < synthetic.truth.onset, "errors"].sum()) == 0
    assert_phases_near_truth(incident, synthetic)


def test_anomaly_at_the_start_of_the_window() -> None:
    synthetic, _, incident = scenario("at_start", 13)
    assert_phases_near_truth(incident, synthetic)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_warning_burst_attack_with_exposure(seed: int) -> None:
    synthetic, _, incident = scenario("stuffing", seed)
    truth = synthetic.truth
    assert incident.anomaly_signal == "warnings"
    assert truth.onset is not None
    assert incident.phases["onset"] is not None
    assert abs(incident.phases["onset"] - truth.onset) <= BUCKET
    exposure = incident.exposure
    # Attackers that share a /24 are one range actor (see test_exposure).
    ranges: dict[str, list[str]] = {}
    for ip in truth.attackers:
        ranges.setdefault(str(ip).rsplit(".", 1)[0] + ".0/24", []).append(str(ip))
    expected = sorted(name if len(members) > 1 else members[0] for name, members in ranges.items())
    assert sorted(a.actor for a in exposure.actors) == expected
    assert set(exposure.accounts_touched) == set(truth.accounts_attempted)
    assert {acc for a in exposure.actors for acc in a.accounts} == set(truth.accounts_compromised)
    assert tuple(sorted(e.time for e in exposure.data_operations)) == truth.data_operation_times
    assert incident.metrics.affected_services == ("auth",)


def test_partial_sources_mark_the_incident_partial() -> None:
    _, aggregates, _ = scenario("outage", 1)
    source = SourceAccounting(name="big.log", partial=True, partial_reason="event cap reached")
    incident = analyze(aggregates, [source], CONFIG)
    assert incident.partial
    assert incident.partial_reasons == ("big.log: event cap reached",)
