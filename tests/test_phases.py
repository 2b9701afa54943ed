"""Phases from an anomaly, the notable events and the alerts: which alert is the detection, which change
the mitigation, and how overrides win."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic_incidents import make_events

from pmtimeline.config import TimelineConfig
from pmtimeline.phases import detect_phases
from pmtimeline.signals import Anomaly

CONFIG = TimelineConfig()


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2024-03-05T{text}Z")


ANOMALY = Anomaly(
    signal="errors",
    start=at("09:00:00"),
    end=at("09:10:00"),
    ongoing=False,
    baseline=0.0,
    threshold=3.0,
    peak=40.0,
    excess=300.0,
    services=("payments",),
)


def alert(time: str, state: str, alert_id: str, service: str | None, name: str = "HighErrors") -> dict[str, object]:
    return {
        "time": f"2024-03-05T{time}Z",
        "source": "alerts.json",
        "kind": "alert",
        "alert_id": alert_id,
        "alert_name": name,
        "alert_state": state,
        "service": service,
        "message": f"[{state.upper()}] {name}",
    }


def change(time: str, message: str, change_type: str, service: str | None) -> dict[str, object]:
    return {
        "time": f"2024-03-05T{time}Z",
        "source": "deploy.log",
        "kind": "change",
        "change_type": change_type,
        "service": service,
        "message": message,
    }


def errors(service: str, times: list[str]) -> list[dict[str, object]]:
    return [
        {"time": f"2024-03-05T{t}Z", "service": service, "level": "error", "message": "pool exhausted"} for t in times
    ]


BASE = [
    *errors("reports", ["09:00:05"]),  # a bystander's error in the first bucket
    *errors("payments", ["09:00:21", "09:00:30", "09:05:00", "09:10:40", "09:10:50"]),
    *errors("reports", ["09:10:55"]),
]


def phases_of(records: list[dict[str, object]], **kwargs: object) -> dict[str, pd.Timestamp | None]:
    notable = make_events(records).sort_values("timestamp", kind="stable").reset_index(drop=True)
    return detect_phases(ANOMALY, notable, CONFIG, edge=False, **kwargs).phases  # type: ignore[arg-type]


def test_onset_and_recovery_come_from_the_affected_service() -> None:
    phases = phases_of(BASE)
    assert phases["onset"] == at("09:00:21")
    assert phases["recovered"] == at("09:10:50")
    assert phases["detected"] is None


def test_detection_skips_earlier_and_unrelated_alerts() -> None:
    records = [
        *BASE,
        alert("08:40:00", "firing", "early", "payments"),
        alert("08:50:00", "resolved", "early", "payments"),  # fired and resolved before onset
        alert("09:01:00", "firing", "disk", "reports", "DiskLow"),  # another service
        alert("09:02:30", "firing", "pay", "payments-api"),  # concerns payments
        alert("09:03:00", "acknowledged", "pay", "payments-api"),
        alert("09:14:00", "resolved", "pay", "payments-api"),
        alert("09:20:00", "resolved", "disk", "reports", "DiskLow"),
    ]
    notable = make_events(records).sort_values("timestamp", kind="stable").reset_index(drop=True)
    result = detect_phases(ANOMALY, notable, CONFIG, edge=False)
    assert result.phases["detected"] == at("09:02:30")
    assert result.phases["resolved"] == at("09:14:00")
    assert result.detecting_alert == "pay"
    assert result.evidence["detected"][0].kind == "alert"


def test_an_alert_without_a_service_counts_and_a_small_lead_is_tolerated() -> None:
    phases = phases_of([*BASE, alert("08:59:40", "firing", "any", None), alert("09:12:00", "resolved", "any", None)])
    assert phases["detected"] == at("08:59:40")
    assert phases["resolved"] == at("09:12:00")


def test_mitigation_prefers_the_affected_service() -> None:
    records = [
        *BASE,
        change("08:55:00", "Deployed payments v2", "deploy", "payments"),  # before onset: a cause, not a fix
        change("09:03:00", "Restarted reports worker", "restart", "reports"),
        change("09:08:00", "Rolled back payments to v1", "rollback", "payments"),
    ]
    phases = phases_of(records)
    assert phases["mitigated"] == at("09:08:00")


def test_a_deploy_after_onset_in_the_affected_service_is_a_fix_forward() -> None:
    assert phases_of([*BASE, change("09:06:00", "Deployed payments v2.1", "deploy", "payments")])["mitigated"] == at(
        "09:06:00"
    )
    assert phases_of([*BASE, change("09:06:00", "Deployed ledger v9", "deploy", "ledger")])["mitigated"] is None


def test_a_change_elsewhere_is_the_mitigation_when_nothing_local_happened() -> None:
    phases = phases_of([*BASE, change("09:07:00", "db failed over to replica", "failover", "db")])
    assert phases["mitigated"] == at("09:07:00")


def test_overrides_win_and_move_the_search() -> None:
    records = [*BASE, alert("09:02:30", "firing", "pay", "payments"), alert("09:04:00", "firing", "pay2", "payments")]
    notable = make_events(records).sort_values("timestamp", kind="stable").reset_index(drop=True)
    result = detect_phases(ANOMALY, notable, CONFIG, edge=False, overrides={"onset": at("09:04:00")})
    assert result.phases["onset"] == at("09:04:00")
    assert result.phases["detected"] == at("09:04:00")  # the 09:02:30 alert fired before the new onset
    assert result.overridden == ("onset",)
    assert "onset" not in result.evidence


def test_no_anomaly_no_phases_unless_overridden() -> None:
    notable = make_events(BASE)
    assert all(v is None for v in detect_phases(None, notable, CONFIG, edge=False).phases.values())
    result = detect_phases(None, notable, CONFIG, edge=False, overrides={"onset": at("09:00:00")})
    assert result.phases["onset"] == at("09:00:00")


@pytest.mark.parametrize(
    ("alert_service", "detects"),
    [
        (None, True),
        ("payments", True),
        ("Payments API", True),  # PagerDuty's service summary
        ("payments-7d9f8b6c4-x2x9z", True),  # a pod label
        ("payments-service", True),
        ("pay", False),
        ("reports", False),
    ],
)
def test_the_detecting_alert_names_an_affected_service_loosely(alert_service: str | None, detects: bool) -> None:
    # the anomaly's service is "payments"; the alert's labels spell it their own way
    phases = phases_of([*BASE, alert("09:02:30", "firing", "pay", alert_service)])
    assert phases["detected"] == (at("09:02:30") if detects else None)


def test_events_without_a_service_do_not_make_a_change_local() -> None:
    # Edge requests have no service, so "" is among the affected services; an unattributed "deploy"
    # line (a pasted note, a README) is still not the affected service's fix forward.
    anomaly = Anomaly(**{**ANOMALY.__dict__, "services": ("payments", "")})
    records = [
        *BASE,
        change("09:04:00", "release notes: deploy checklist", "deploy", None),
        change("09:08:00", "Rolled back payments to v1", "rollback", "payments"),
    ]
    notable = make_events(records).sort_values("timestamp", kind="stable").reset_index(drop=True)
    assert detect_phases(anomaly, notable, CONFIG, edge=False).phases["mitigated"] == at("09:08:00")


def test_bad_events_of_some_columns_are_those_rows_of_all() -> None:
    from pmtimeline.phases import EVIDENCE_COLUMNS, bad_events

    notable = make_events(BASE).sort_values("timestamp", kind="stable").reset_index(drop=True)
    whole = bad_events(notable, ANOMALY, edge=False)
    some = bad_events(notable, ANOMALY, edge=False, columns=EVIDENCE_COLUMNS)
    assert list(some.columns) == list(EVIDENCE_COLUMNS)
    pd.testing.assert_frame_equal(some, whole[list(EVIDENCE_COLUMNS)])
    assert set(whole["service"]) == {"payments"}
    assert len(whole) == 5


def test_detected_and_resolved_cite_their_own_alert_events() -> None:
    # make_events numbers the records' lines 1..n in this order
    records = [
        alert("09:02:30", "firing", "pay", "payments"),  # line 1
        alert("09:03:00", "firing", "pay", "payments"),  # line 2: a resend
        alert("09:14:00", "resolved", "pay", "payments"),  # line 3
        *BASE,
    ]
    notable = make_events(records).sort_values("timestamp", kind="stable").reset_index(drop=True)
    evidence = detect_phases(ANOMALY, notable, CONFIG, edge=False).evidence
    assert [(e.time, e.citation()) for e in evidence["detected"]] == [(at("09:02:30"), "alerts.json:1")]
    assert [(e.time, e.citation()) for e in evidence["resolved"]] == [(at("09:14:00"), "alerts.json:3")]


def test_onset_evidence_holds_the_onset_second_only() -> None:
    """Issue 15: each line cited for onset and recovery holds the time the draft writes for it. A
    second bad event seconds later (an access log's 503 at 09:00:27 in the zoo's retry storm) is not
    cited beside the onset at 09:00:21."""
    records = [
        *errors("payments", ["09:00:21.500", "09:00:21.900", "09:00:27", "09:05:00", "09:10:40", "09:10:50"]),
    ]
    result = detect_phases(ANOMALY, make_events(records), CONFIG, edge=False)
    assert result.phases["onset"] == at("09:00:21.500")
    assert [e.time for e in result.evidence["onset"]] == [at("09:00:21.500"), at("09:00:21.900")]
    assert [e.time for e in result.evidence["recovered"]] == [at("09:10:50")]


def _slow_start(background: list[str], change_at: str | None) -> list[dict[str, object]]:
    """A leak: OOM errors of payments every 40 s to 80 s before the anomaly's first bucket (09:00), then
    dense; ``background``: times of an old error of its own (the baseline)."""
    oom = "request failed: java.lang.OutOfMemoryError: Java heap space"
    slow = ["08:57:31", "08:58:40", "08:59:20"]
    dense = [f"09:0{m}:{s:02d}" for m in range(0, 4) for s in range(5, 60, 6)]
    records: list[dict[str, object]] = [
        {"time": f"2024-03-05T{t}Z", "service": "payments", "level": "error", "message": oom} for t in (*slow, *dense)
    ]
    records += [
        {"time": f"2024-03-05T{t}Z", "service": "payments", "level": "error", "message": "cache miss storm on key 7"}
        for t in background
    ]
    if change_at is not None:
        records.append(change(change_at, "Deployed payments v9.1.0", "deploy", "payments"))
    return records


def test_a_slow_start_walks_onset_back_to_the_first_new_error() -> None:
    """Issue 15, item 4: the OOM kills start at ~1 a minute, below the anomaly threshold; onset is the
    first of them, not the first event of the first anomalous bucket."""
    result = detect_phases(ANOMALY, make_events(_slow_start([], None)), CONFIG, edge=False)
    assert result.phases["onset"] == at("08:57:31")
    assert [e.time for e in result.evidence["onset"]] == [at("08:57:31")]


def test_the_walk_back_stops_at_a_change_a_gap_and_the_baseline() -> None:
    # Not before the change that set the leak off.
    result = detect_phases(ANOMALY, make_events(_slow_start([], "08:58:00")), CONFIG, edge=False)
    assert result.phases["onset"] == at("08:58:40")
    # An error of a template already seen long before onset is the baseline: no walk on it.
    records = [
        {"time": f"2024-03-05T{t}Z", "service": "payments", "level": "error", "message": "pool exhausted"}
        for t in ("08:40:00", "08:59:10")
    ]
    result = detect_phases(
        ANOMALY, make_events([*records, *errors("payments", ["09:00:21", "09:00:30"])]), CONFIG, edge=False
    )
    assert result.phases["onset"] == at("09:00:21")
    # A lone error of the new template far earlier (a gap of more than two buckets) is not the start.
    lone = [{"time": "2024-03-05T08:56:00Z", "service": "payments", "level": "error", "message": "pool exhausted"}]
    result = detect_phases(
        ANOMALY, make_events([*lone, *errors("payments", ["09:00:21", "09:00:30"])]), CONFIG, edge=False
    )
    assert result.phases["onset"] == at("09:00:21")


def test_failed_requests_bridge_the_walk_back_but_never_begin_it() -> None:
    """The zoo's memory leak with other noise: two OOM errors, then only the edge's 503s for over two
    minutes before the errors are dense. The 503s keep the chain unbroken; onset is the first OOM error."""
    oom = "request failed: java.lang.OutOfMemoryError: Java heap space"
    records: list[dict[str, object]] = [
        {"time": f"2024-03-05T{t}Z", "service": "payments", "level": "error", "message": oom}
        for t in ("08:57:47", "08:57:49", *(f"09:00:{s:02d}" for s in range(5, 60, 6)))
    ]
    records += [
        {
            "time": f"2024-03-05T{t}Z",
            "service": "payments",
            "kind": "request",
            "message": "GET /api/recs HTTP/1.1",
            "http_status": 503,
            "level": "error",
        }
        for t in ("08:57:30", "08:58:09", "08:58:36", "08:59:09", "08:59:35")
    ]
    result = detect_phases(ANOMALY, make_events(records), CONFIG, edge=False)
    assert result.phases["onset"] == at("08:57:47")
    # Without the requests, the gap of more than two buckets stops the walk.
    logs_only = [r for r in records if r.get("kind") != "request"]
    result = detect_phases(ANOMALY, make_events(logs_only), CONFIG, edge=False)
    assert result.phases["onset"] == at("09:00:05")
