"""Alert intervals: firing episodes from alert events of any source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pmtimeline.alert_intervals import INTERVAL_COLUMNS, INTERVAL_DTYPES, alert_intervals
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.alerts import AlertFileConnector
from pmtimeline.schema import conform_events

DATA = Path(__file__).resolve().parent / "data" / "alerts"
T0 = pd.Timestamp("2024-03-01T10:00:00Z")


def _events(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Alert events at minute offsets from T0: (minute, alert_id, state[, level])."""
    frame = pd.DataFrame(rows)
    frame["timestamp"] = T0 + pd.to_timedelta(frame.pop("minute"), unit="min")
    frame["kind"] = frame.get("kind", pd.Series(["alert"] * len(frame))).fillna("alert")
    frame["source"] = "alerts.json"
    frame["line"] = range(1, len(frame) + 1)
    frame["alert_name"] = frame["alert_id"].str.upper()
    frame["message"] = "[" + frame["alert_state"].fillna("note").str.upper() + "] " + frame["alert_name"]
    return conform_events(frame)


def _at(minutes: float | None) -> pd.Timestamp | None:
    return None if minutes is None else T0 + pd.Timedelta(minutes=minutes)


def _spans(intervals: pd.DataFrame) -> list[tuple[str, Any, Any, Any]]:
    def opt(value: Any) -> Any:
        return None if pd.isna(value) else value

    return [
        (row.alert_id, opt(row.fired), opt(row.acknowledged), opt(row.resolved))
        for row in intervals.itertuples(index=False)
    ]


def test_empty_and_non_alert_events_give_an_empty_frame() -> None:
    for frame in (conform_events(pd.DataFrame()), pd.DataFrame()):
        out = alert_intervals(frame)
        assert out.empty
        assert tuple(out.columns) == INTERVAL_COLUMNS
    logs = _events([{"minute": 0, "alert_id": "a", "alert_state": "firing", "kind": "log"}])
    assert alert_intervals(logs).empty


def test_fired_acknowledged_resolved() -> None:
    events = _events(
        [
            {"minute": 0, "alert_id": "a", "alert_state": "firing", "level": "warning", "service": "api"},
            {"minute": 3, "alert_id": "a", "alert_state": "acknowledged"},
            {"minute": 4, "alert_id": "a", "alert_state": "firing", "level": "critical"},  # a resend, worse
            {"minute": 9, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 10, "alert_id": "a", "alert_state": "resolved"},  # a second notification
        ]
    )
    out = alert_intervals(events)
    assert _spans(out) == [("a", _at(0), _at(3), _at(9))]
    row = out.iloc[0]
    assert (row["alert_name"], row["service"], row["severity"]) == ("A", "api", "critical")
    assert (row["source"], row["line"], row["summary"]) == ("alerts.json", 1, "A")
    assert {c: str(out[c].dtype) for c in out.columns} == {c: str(d) for c, d in INTERVAL_DTYPES.items()}


def test_refire_after_resolve_starts_a_new_interval_and_open_alerts_stay_open() -> None:
    events = _events(
        [
            {"minute": 20, "alert_id": "a", "alert_state": "firing"},  # out of order on purpose
            {"minute": 0, "alert_id": "a", "alert_state": "firing"},
            {"minute": 5, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 2, "alert_id": "b", "alert_state": "firing"},
            {"minute": 22, "alert_id": "a", "alert_state": "acknowledged"},
        ]
    )
    assert _spans(alert_intervals(events)) == [
        ("a", _at(0), None, _at(5)),
        ("b", _at(2), None, None),
        ("a", _at(20), _at(22), None),
    ]


def test_resolution_without_a_captured_firing() -> None:
    # the alert fired before the window or before the capture: fired is NaT, never invented
    events = _events(
        [
            {"minute": 1, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 2, "alert_id": "a", "alert_state": "firing"},
        ]
    )
    assert _spans(alert_intervals(events)) == [("a", None, None, _at(1)), ("a", _at(2), None, None)]


def test_same_instant_orders_firing_before_resolved_and_ignores_stateless_events() -> None:
    events = _events(
        [
            {"minute": 1, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 1, "alert_id": "a", "alert_state": "firing"},
            {"minute": 0.5, "alert_id": "a", "alert_state": None},  # a note
        ]
    )
    assert _spans(alert_intervals(events)) == [("a", _at(1), None, _at(1))]


def test_alerts_from_several_files_pair_by_identity() -> None:
    frames = [
        next(AlertFileConnector(str(DATA / name), TimelineConfig()).read())
        for name in ("pagerduty_incident.ndjson", "alertmanager_resends.ndjson", "opsgenie_actions.json")
    ]
    out = alert_intervals(pd.concat(frames, ignore_index=True))
    by_id = out.groupby("alert_id").size().to_dict()
    assert by_id["Q1CHK"] == 2  # reopened after its resolution
    assert by_id["aaaa000000000001"] == 2  # re-fired at 10:40
    q1 = out[out["alert_id"] == "Q1CHK"].iloc[0]
    assert (q1["fired"], q1["acknowledged"], q1["resolved"]) == (
        pd.Timestamp("2024-03-01T10:05:00Z"),
        pd.Timestamp("2024-03-01T10:07:30.5Z"),
        pd.Timestamp("2024-03-01T10:30:00Z"),
    )
    assert (q1["service"], q1["severity"], q1["summary"]) == ("checkout", "critical", "Checkout 5xx above 2%")
    og = out[out["alert_id"] == "og-1"].iloc[0]
    assert og["summary"] == "Checkout latency high"
    am = out[out["alert_id"] == "aaaa000000000001"].iloc[0]
    assert am["summary"] == "5xx above 5%"  # the annotation, not the message with its prefix
    assert out["fired"].is_monotonic_increasing


def test_alerts_without_identity_pair_by_name() -> None:
    events = _events(
        [
            {"minute": 0, "alert_id": "a", "alert_state": "firing"},
            {"minute": 5, "alert_id": "a", "alert_state": "resolved"},
        ]
    )
    events["alert_id"] = pd.Series([pd.NA, pd.NA], dtype=events["alert_id"].dtype)
    assert _spans(alert_intervals(events)) == [("name:A", _at(0), None, _at(5))]
    events["alert_name"] = pd.Series([pd.NA, pd.NA], dtype=events["alert_name"].dtype)
    assert alert_intervals(events).empty


def _cited(intervals: pd.DataFrame) -> list[tuple[Any, ...]]:
    """(fired, acknowledged, resolved) citations of each episode, as ``line`` numbers or None."""

    def opt(value: Any) -> Any:
        return None if pd.isna(value) else int(value)

    return [
        (opt(row.fired_line), opt(row.acknowledged_line), opt(row.resolved_line))
        for row in intervals.itertuples(index=False)
    ]


def test_each_state_change_cites_the_event_that_reported_it() -> None:
    # lines are 1..n in the order below; the resend (line 3) and the second resolution (line 5) lose
    # to the first events of their state, and each episode of the re-firing alert has its own lines
    events = _events(
        [
            {"minute": 0, "alert_id": "a", "alert_state": "firing"},
            {"minute": 3, "alert_id": "a", "alert_state": "acknowledged"},
            {"minute": 4, "alert_id": "a", "alert_state": "firing"},
            {"minute": 9, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 10, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 20, "alert_id": "a", "alert_state": "firing"},
            {"minute": 25, "alert_id": "a", "alert_state": "resolved"},
            {"minute": 1, "alert_id": "b", "alert_state": "resolved"},  # its firing was not captured
        ]
    )
    out = alert_intervals(events)
    assert _spans(out) == [("a", _at(0), _at(3), _at(9)), ("b", None, None, _at(1)), ("a", _at(20), None, _at(25))]
    assert _cited(out) == [(1, 2, 4), (None, None, 8), (6, None, 7)]
    assert out["resolved_source"].tolist() == ["alerts.json"] * 3
    assert out["acknowledged_source"].isna().tolist() == [False, True, True]


def test_state_changes_in_files_cite_their_payloads() -> None:
    """Real payload files: NDJSON lines, and a pretty-printed array whose records span many lines
    (cited at the line where each record starts)."""
    frames = [
        next(AlertFileConnector(str(DATA / name), TimelineConfig()).read())
        for name in ("pagerduty_incident.ndjson", "alertmanager_resends.ndjson", "grafana_array.json")
    ]
    out = alert_intervals(pd.concat(frames, ignore_index=True)).set_index(["alert_id", "fired"])
    lines = {key: _cited(out.loc[[key]].reset_index())[0] for key in out.index}
    # PagerDuty: triggered on line 1, acknowledged on 2 (a second acknowledgement on 4), resolved on
    # 5, reopened on 6
    assert lines["Q1CHK", pd.Timestamp("2024-03-01T10:05:00Z")] == (1, 2, 5)
    assert lines["Q1CHK", pd.Timestamp("2024-03-01T10:45:00Z")] == (6, None, None)
    # Alertmanager: fired in the group on line 1, resolved on 4, re-fired on 7
    assert lines["aaaa000000000001", pd.Timestamp("2024-03-01T10:02:00.123456789Z")] == (1, None, 4)
    assert lines["aaaa000000000001", pd.Timestamp("2024-03-01T10:40:00Z")] == (7, None, None)
    # Grafana array: the firing payload starts on line 2, the resolved one on line 39
    assert lines["g100000000000001", pd.Timestamp("2024-03-01T09:05:00.5Z")] == (2, None, 39)
    text = (DATA / "grafana_array.json").read_text().splitlines()
    assert text[38] == "  {"
    assert '"status": "resolved"' in text[40]
