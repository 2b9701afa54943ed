"""The Incident model and its incident.json form round-trip exactly."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pmtimeline.errors import ConfigError
from pmtimeline.incident import (
    Actor,
    Evidence,
    Exposure,
    Incident,
    Metrics,
    RootCauseCandidate,
    iso_utc,
    parse_utc,
)
from pmtimeline.sources import SourceAccounting

T0 = pd.Timestamp("2024-03-01T10:02:03.5Z")


def make_incident() -> Incident:
    ev = Evidence(
        time=T0, source="payments.jsonl", line=42, message="db pool exhausted", service="payments", level="error"
    )
    acc = SourceAccounting(name="payments.jsonl", format="json_lines", lines_read=10, event_lines=9, events=9)
    acc.rejected["json_decode"] = 1
    return Incident(
        title="Payments outage",
        window_start=T0 - pd.Timedelta(hours=1),
        window_end=T0 + pd.Timedelta(hours=1),
        phases={
            "onset": T0,
            "detected": T0 + pd.Timedelta(minutes=4),
            "mitigated": None,
            "recovered": None,
            "resolved": None,
        },
        phase_evidence={"onset": (ev,)},
        phase_overridden=("detected",),
        anomaly_signal="errors",
        metrics=Metrics(
            time_to_detect_s=240.0,
            requests_total=100,
            requests_failed=7,
            affected_services=("payments",),
            affected_endpoints=(("/pay", 7),),
            latency_ms={"during": {"p50": 12.0, "p95": None, "p99": None}},
        ),
        exposure=Exposure(
            actors=(Actor("198.51.100.7", "client_ip", 40, 2, ("cust-1",), T0, T0),),
            accounts_touched=("cust-1",),
            data_operations=(ev,),
        ),
        root_cause_candidates=(RootCauseCandidate(1, "change", T0, "payments", "deploy v2", 0.9, (ev,)),),
        sources=(acc,),
        partial=True,
        partial_reasons=("es: shard failure",),
    )


def test_round_trip_through_json() -> None:
    incident = make_incident()
    text = json.dumps(incident.to_dict())
    again = Incident.from_dict(json.loads(text))
    assert again.to_dict() == incident.to_dict()
    assert again.phases["onset"] == T0
    assert again.sources[0].rejected["json_decode"] == 1
    assert again.sources[0].balanced()


def test_json_times_are_utc_with_z() -> None:
    data = make_incident().to_dict()
    assert data["phases"]["onset"] == "2024-03-01T10:02:03.500000Z"
    assert data["phases"]["mitigated"] is None
    assert data["window"]["start"].endswith("Z")
    assert iso_utc(pd.Timestamp("2024-03-01T11:00:00+01:00")) == "2024-03-01T10:00:00Z"
    assert parse_utc("2024-03-01T10:00:00Z") == pd.Timestamp("2024-03-01T10:00:00Z")


def test_invalid_documents_give_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"incident\.json is not valid"):
        Incident.from_dict({"phases": {"onset": "not a time"}})
    with pytest.raises(ConfigError, match="unknown phase"):
        Incident(title="x", window_start=None, window_end=None, phases={"begun": None})


def test_evidence_citation() -> None:
    assert Evidence(time=T0, source="a.log", line=3, message="m").citation() == "a.log:3"
    assert Evidence(time=T0, source="es:logs-*", line=None, message="m").citation() == "es:logs-*"
