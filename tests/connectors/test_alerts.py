"""Alert files: detection, events, accounting, duplicates, malformed payloads, the window."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.alerts import ALERT_FORMATS, AlertFileConnector, detect_alert_format
from pmtimeline.errors import SourceError, UnknownFormatError
from pmtimeline.schema import validate_events
from pmtimeline.sources import AccountedSource, SourceAccounting

DATA = Path(__file__).resolve().parents[1] / "data" / "alerts"

#: The real payloads and the format each one is.
REAL_FORMATS = {
    "alertmanager_firing_matjaz99_alertmonitor.json": "alertmanager",
    "alertmanager_resolved_k8s_liamkelly15_pythonwebhook.json": "alertmanager",
    "alertmanager_resolved_matjaz99_alertmonitor.json": "alertmanager",
    "grafana_webhook_docs_example.json": "grafana",
    "pagerduty_v3_incident_priority_updated_docs.json": "pagerduty",
    "pagerduty_v3_event_data_incident_note_docs.json": "pagerduty",
    "opsgenie_webhook_create_docs.json": "opsgenie",
    "opsgenie_webhook_acknowledge_docs.json": "opsgenie",
    "datadog_webhook_triggered_codenow_fluffy.json": "datadog",
    "datadog_webhook_recovered_codenow_fluffy.json": "datadog",
    "datadog_payload_template_variables_servicenow_docs.json": "datadog",
}
#: Our fixtures and their formats.
FIXTURE_FORMATS = {
    "alertmanager_resends.ndjson": "alertmanager",
    "grafana_array.json": "grafana",
    "pagerduty_incident.ndjson": "pagerduty",
    "opsgenie_actions.json": "opsgenie",
    "datadog_monitor.ndjson": "datadog",
    "alerts_export.csv": "alert_csv",
    "alerts_export.json": "alert_json",
    "alertmanager_kubernetes.ndjson": "alertmanager",
    "datadog_kube_tags.ndjson": "datadog",
    "opsgenie_details.json": "opsgenie",
}


def _read(
    path: Path, config: TimelineConfig | None = None, fmt: str | None = None
) -> tuple[pd.DataFrame, AlertFileConnector]:
    connector = AlertFileConnector(str(path), config or TimelineConfig(), fmt)
    frames = list(connector.read())
    assert len(frames) == 1
    return validate_events(frames[0]), connector


def _acc(connector: AlertFileConnector) -> SourceAccounting:
    (acc,) = connector.accounting()
    return acc


def _line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


# -- detection -------------------------------------------------------------------------------------


def test_every_format_has_a_fixture() -> None:
    assert set(FIXTURE_FORMATS.values()) == set(ALERT_FORMATS)


@pytest.mark.parametrize(("name", "fmt"), sorted(REAL_FORMATS.items()))
def test_detects_real_payloads(shared_data: Path, name: str, fmt: str) -> None:
    assert detect_alert_format((shared_data / "alerts" / name).read_text()) == fmt


@pytest.mark.parametrize(("name", "fmt"), sorted(FIXTURE_FORMATS.items()))
def test_detects_fixtures(name: str, fmt: str) -> None:
    assert detect_alert_format((DATA / name).read_text()) == fmt


def test_detects_a_payload_longer_than_the_head(shared_data: Path) -> None:
    text = (shared_data / "alerts" / "grafana_webhook_docs_example.json").read_text()
    assert detect_alert_format(text[:900]) == "grafana"  # cut inside the first alert


@pytest.mark.parametrize(
    "log_text",
    [
        # ECS JSON lines
        '{"@timestamp":"2024-03-01T10:00:00.000Z","log.level":"error","message":"payment failed",'
        '"service.name":"payments","ecs.version":"1.6.0"}\n'
        '{"@timestamp":"2024-03-01T10:00:01.000Z","log.level":"info","message":"ok","service.name":"payments"}\n',
        # bunyan
        '{"name":"api","hostname":"web-1","pid":12,"level":50,"msg":"db timeout",'
        '"time":"2024-03-01T10:00:00Z","v":0}\n',
        # JSON request log with a name and an HTTP status
        '{"time":"2024-03-01T10:00:00Z","name":"checkout","status":503,"message":"upstream timeout"}\n',
        # JSON log with a connection state word, but nothing alert-specific
        '{"time":"2024-03-01T10:00:00Z","name":"db-pool","state":"open","message":"connection opened"}\n',
        # CSV log
        "time,level,message\n2024-03-01T10:00:00Z,ERROR,db timeout\n2024-03-01T10:00:01Z,INFO,ok\n",
        # CSV access log with a name and an HTTP status column
        "timestamp,name,status,path\n2024-03-01T10:00:00Z,api,200,/health\n2024-03-01T10:00:01Z,api,503,/pay\n",
        # syslog
        "Mar  1 10:00:00 web-1 sshd[812]: Failed password for root from 203.0.113.9 port 2222 ssh2\n"
        "Mar  1 10:00:01 web-1 CRON[900]: (root) CMD (run-parts /etc/cron.hourly)\n",
        # bracketed log lines start like a JSON array
        "[2024-03-01 10:00:00,123] ERROR db timeout\n[2024-03-01 10:00:01,001] INFO ok\n",
        "[INFO] service started\n",
        # plain text and nothing
        "hello, world, again\n",
        "",
        "[]",
    ],
)
def test_does_not_claim_log_files(log_text: str) -> None:
    assert detect_alert_format(log_text) is None


# -- the real payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_FORMATS))
def test_real_payloads_are_accounted_for(shared_data: Path, name: str) -> None:
    path = shared_data / "alerts" / name
    frame, connector = _read(path)
    acc = _acc(connector)
    assert acc.balanced(), acc.to_dict()
    assert acc.lines_read == _line_count(path)
    assert acc.format == REAL_FORMATS[name]
    assert acc.events == len(frame)
    assert isinstance(connector, AccountedSource)
    assert (frame["kind"] == "alert").all()
    assert (frame["source"] == str(path)).all()


def test_real_alertmanager_events(shared_data: Path) -> None:
    frame, _ = _read(shared_data / "alerts" / "alertmanager_firing_matjaz99_alertmonitor.json")
    assert len(frame) == 3
    assert (frame["timestamp"] == pd.Timestamp("2019-09-27T16:27:56.612666101Z")).all()
    assert (frame["ts_raw"] == "2019-09-27T16:27:56.612666101Z").all()
    assert (frame["line"] == 1).all()
    assert set(frame["alert_state"]) == {"firing"}
    assert set(frame["level"]) == {"error"}
    assert set(frame["severity_number"]) == {17}
    assert (
        frame.loc[0, "message"] == "[FIRING] ICMP ping failed blackbox-icmp: 172.29.254.30 does not reply to ICMP pings"
    )
    fields = json.loads(frame.loc[0, "fields"])
    assert fields["labels"]["instance"] == "172.29.254.30"
    assert fields["endsAt"] == "0001-01-01T00:00:00Z"


def test_real_resolved_without_ends_at_is_reported(shared_data: Path) -> None:
    frame, connector = _read(shared_data / "alerts" / "alertmanager_resolved_matjaz99_alertmonitor.json")
    assert set(frame["alert_state"]) == {"firing"}  # the resolution time is unknown: not invented
    assert any("3 resolved" in note for note in _acc(connector).notes)


def test_real_firing_and_resolved_captures_together(shared_data: Path, tmp_path: Path) -> None:
    # Two captures of the same group in one NDJSON file: the resolved one repeats the firing events.
    ndjson = tmp_path / "am.ndjson"
    payloads = [
        json.loads((shared_data / "alerts" / name).read_text())
        for name in (
            "alertmanager_firing_matjaz99_alertmonitor.json",
            "alertmanager_resolved_matjaz99_alertmonitor.json",
        )
    ]
    ndjson.write_text("".join(json.dumps(p) + "\n" for p in payloads))
    frame, connector = _read(ndjson)
    acc = _acc(connector)
    assert len(frame) == 3
    assert acc.duplicates == 3
    assert (acc.event_lines, acc.lines_read) == (2, 2)


def test_real_grafana_times(shared_data: Path) -> None:
    frame, _ = _read(shared_data / "alerts" / "grafana_webhook_docs_example.json")
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2021-10-12T07:51:03.157076Z"),
        pd.Timestamp("2021-10-12T07:56:03.157076Z"),
    ]
    assert frame["tz_assumed"].isna().all()


def test_real_templates_and_bare_data_objects_are_rejected(shared_data: Path) -> None:
    for name in (
        "datadog_payload_template_variables_servicenow_docs.json",
        "pagerduty_v3_event_data_incident_note_docs.json",
    ):
        path = shared_data / "alerts" / name
        frame, connector = _read(path)
        acc = _acc(connector)
        assert frame.empty
        assert acc.rejected == {"no_timestamp": _line_count(path)}
        (reject,) = connector.rejects()
        assert (reject.line, reject.reason) == (1, "no_timestamp")
        assert reject.excerpt.startswith("{")


# -- our fixtures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_fixtures_are_accounted_for(name: str) -> None:
    frame, connector = _read(DATA / name)
    acc = _acc(connector)
    assert acc.balanced(), acc.to_dict()
    assert acc.lines_read == _line_count(DATA / name)
    assert acc.events == len(frame) > 0
    assert frame["alert_id"].notna().all()
    assert frame["message"].str.match(r"^\[[A-Z_]+\] ").all()
    assert not frame["message"].str.contains("\n").any()


def test_alertmanager_ndjson_resends_and_malformed_lines() -> None:
    frame, connector = _read(DATA / "alertmanager_resends.ndjson")
    acc = _acc(connector)
    # line 1: A and B fire; 2: resend of 1; 3: blank; 4: A resolved, B still firing; 5: group resolved;
    # 6: cut JSON; 7: A fires again; 8: only Go zero times; 9: no alerts[]; 10: a number
    got = list(zip(frame["line"], frame["alert_state"], frame["alert_name"], strict=True))
    assert got == [
        (1, "firing", "HighErrorRate"),
        (1, "firing", "HighLatency"),
        (4, "resolved", "HighErrorRate"),
        (5, "resolved", "HighLatency"),
        (7, "firing", "HighErrorRate"),
    ]
    assert frame.loc[0, "timestamp"] == pd.Timestamp("2024-03-01T10:02:00.123456789Z")
    assert frame.loc[0, "alert_id"] == "aaaa000000000001"
    assert frame.loc[1, "level"] == "warning"  # "Warning"
    assert frame.loc[1, "service"] == "api"  # job
    assert acc.duplicates == 7  # 2 on line 2, 2 on line 4, 3 on line 5
    assert (acc.lines_read, acc.event_lines, acc.continuation_lines) == (10, 5, 1)
    assert acc.rejected == {"json_decode": 1, "no_timestamp": 1, "unknown_payload": 2}
    assert sorted((r.line, r.reason) for r in connector.rejects()) == [
        (6, "json_decode"),
        (8, "no_timestamp"),
        (9, "unknown_payload"),
        (10, "unknown_payload"),
    ]


def test_grafana_array_element_lines() -> None:
    path = DATA / "grafana_array.json"
    element_starts = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if line == "  {"]
    frame, connector = _read(path)
    assert list(frame["line"]) == element_starts
    assert list(frame["timestamp"]) == [pd.Timestamp("2024-03-01T09:05:00.5Z"), pd.Timestamp("2024-03-01T09:15:00.25Z")]
    assert list(frame["alert_state"]) == ["firing", "resolved"]
    assert _acc(connector).duplicates == 1  # the resolved notification repeats the firing
    assert json.loads(frame.loc[0, "fields"])["valueString"] == "[ var='B' labels={} value=91.2 ]"


def test_pagerduty_lifecycle() -> None:
    frame, connector = _read(DATA / "pagerduty_incident.ndjson")
    acc = _acc(connector)
    assert list(frame["alert_state"].fillna("-")) == [
        "firing",
        "acknowledged",
        "-",
        "acknowledged",
        "resolved",
        "firing",
    ]
    assert frame.loc[1, "timestamp"] == pd.Timestamp("2024-03-01T10:07:30.5Z")
    assert frame.loc[2, "message"] == "[ANNOTATED] Checkout 5xx above 2%: rolling back deploy 4512"
    assert frame.loc[3, "message"].startswith("[PRIORITY_UPDATED] ")
    assert frame.loc[0, "level"] == "error"  # urgency high, no priority yet
    assert frame.loc[4, "level"] == "critical"  # P1
    assert set(frame["alert_id"]) == {"Q1CHK"}
    assert acc.rejected == {"not_an_alert": 1}
    assert acc.duplicates == 1  # line 8 is PagerDuty's retry of line 1


def test_opsgenie_actions() -> None:
    frame, connector = _read(DATA / "opsgenie_actions.json")
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2024-03-01T10:00:00.25Z"),
        pd.Timestamp("2024-03-01T10:05:00Z"),
        pd.Timestamp("2024-03-01T10:06:00Z"),
        pd.Timestamp("2024-03-01T10:20:00Z"),
    ]
    assert list(frame["alert_state"].fillna("-")) == ["firing", "acknowledged", "-", "resolved"]
    assert set(frame["service"]) == {"checkout"}  # tag service:checkout
    assert set(frame["host"]) == {"web-1"}
    assert set(frame["level"]) == {"error"}  # P2
    assert _acc(connector).rejected == {"unknown_payload": 1}


def test_datadog_fixture() -> None:
    frame, connector = _read(DATA / "datadog_monitor.ndjson")
    assert list(frame["alert_id"]) == ["cyc-9", "cyc-9", "cyc-9", "555"]
    assert list(frame["alert_state"]) == ["firing", "firing", "resolved", "firing"]
    assert list(frame["level"])[:2] == ["warning", "error"]
    assert frame.loc[3, "timestamp"] == pd.Timestamp("2024-03-01T10:13:20Z")
    assert frame.loc[3, "host"] == "db-1"
    assert _acc(connector).rejected == {"no_timestamp": 1}


def test_csv_export_with_naive_times_and_bad_rows() -> None:
    frame, connector = _read(DATA / "alerts_export.csv", TimelineConfig(tz="Europe/Berlin"))
    acc = _acc(connector)
    disk = frame[frame["alert_name"] == "DiskFull"].reset_index(drop=True)
    assert list(disk["alert_state"]) == ["firing", "resolved"]
    assert list(disk["timestamp"]) == [pd.Timestamp("2024-03-01T09:02:00Z"), pd.Timestamp("2024-03-01T09:12:00Z")]
    assert list(disk["tz_assumed"].fillna("-")) == ["Europe/Berlin", "-"]
    assert set(disk["line"]) == {3}  # the row spans lines 3-4 (a quoted newline)
    assert acc.rejected == {"csv_columns": 1, "no_timestamp": 1}
    assert (acc.event_lines, acc.continuation_lines) == (2, 2)  # header and the quoted newline


def test_json_export() -> None:
    frame, _ = _read(DATA / "alerts_export.json")
    cache_miss = frame[frame["alert_id"] == "c-1"]
    assert list(cache_miss["alert_state"]) == ["firing", "resolved"]
    assert list(cache_miss["timestamp"]) == [pd.Timestamp("2024-03-01T10:00:00Z"), pd.Timestamp("2024-03-01T10:04:00Z")]
    assert set(frame["service"]) == {"cache"}
    assert json.loads(frame.loc[0, "fields"])["runbook"] == "https://runbooks.example/cache"


# -- malformed files, the window, errors -----------------------------------------------------------


def test_truncated_pretty_payload_is_one_reject(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "alerts" / "alertmanager_resolved_k8s_liamkelly15_pythonwebhook.json").read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    frame, connector = _read(cut)
    acc = _acc(connector)
    assert frame.empty
    assert acc.rejected == {"json_decode": acc.lines_read}
    assert acc.balanced()


def test_bad_array_element_costs_only_its_lines(tmp_path: Path) -> None:
    lines = (DATA / "grafana_array.json").read_text().splitlines()
    second = [i for i, line in enumerate(lines) if line == "  {"][1]
    lines[second + 2] = '    "status": resolved,'  # not JSON: an unquoted word
    path = tmp_path / "bad.json"
    path.write_text("\n".join(lines) + "\n")
    frame, connector = _read(path, fmt="grafana")
    acc = _acc(connector)
    assert list(frame["alert_state"]) == ["firing"]
    assert acc.rejected["json_decode"] == len(lines) - second  # no element follows: up to the end
    assert acc.balanced()
    # in a one-element-per-line array the next element is found again
    compact = (DATA / "opsgenie_actions.json").read_text().splitlines()
    compact[2] = compact[2][:40]  # line 3, the Acknowledge action, cut short
    path = tmp_path / "compact.json"
    path.write_text("\n".join(compact) + "\n")
    frame, connector = _read(path)
    assert list(frame["alert_state"].fillna("-")) == ["firing", "-", "resolved"]
    assert _acc(connector).rejected == {"json_decode": 1, "unknown_payload": 1}
    assert [r.line for r in connector.rejects()] == [3, 6]


def test_gzip_and_bom(tmp_path: Path) -> None:
    raw = (DATA / "pagerduty_incident.ndjson").read_bytes()
    bom = tmp_path / "bom.ndjson"
    bom.write_bytes(b"\xef\xbb\xbf" + raw)
    frame, _ = _read(bom)
    assert len(frame) == 6


def test_window_keeps_the_invariant() -> None:
    config = TimelineConfig(start=pd.Timestamp("2024-03-01T10:10:00Z"), end=pd.Timestamp("2024-03-01T10:30:00Z"))
    frame, connector = _read(DATA / "alertmanager_resends.ndjson", config)
    acc = _acc(connector)
    assert list(frame["alert_state"]) == ["resolved", "resolved"]
    assert acc.outside_window == 3  # lines 1, 2 and 7 hold only events outside
    assert acc.event_lines == 2  # lines 4 and 5 hold events inside (and the firing events outside)
    assert acc.balanced()
    assert any("outside the window" in note for note in acc.notes)


def test_forced_format_and_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError):
        AlertFileConnector(str(DATA / "alerts_export.csv"), TimelineConfig(), "nagios")
    log = tmp_path / "app.log"
    log.write_text("time,level,message\n2024-03-01T10:00:00Z,ERROR,db timeout\n")
    with pytest.raises(UnknownFormatError, match="not a recognized alert file"):
        list(AlertFileConnector(str(log), TimelineConfig()).read())
    with pytest.raises(SourceError):
        list(AlertFileConnector(str(tmp_path / "missing.json"), TimelineConfig()).read())
    # a forced format reads what detection would not claim, and rejects what does not fit it
    frame, connector = _read(DATA / "opsgenie_actions.json", fmt="alertmanager")
    assert frame.empty
    assert _acc(connector).rejected == {"unknown_payload": 5}
    assert _acc(connector).balanced()


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "pd.ndjson.gz"
    path.write_bytes(gzip.compress((DATA / "pagerduty_incident.ndjson").read_bytes()))
    frame, connector = _read(path)
    assert len(frame) == 6
    assert _acc(connector).balanced()


def test_nul_lines_and_bad_bytes_are_counted(tmp_path: Path) -> None:
    lines = (DATA / "pagerduty_incident.ndjson").read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"Ann Oncall", b"Ann \xff Oncall", 1)  # one invalid UTF-8 byte
    lines.insert(3, b"\x00\x00\x00\x00\n")  # a NUL-only line, as a crashed writer leaves
    path = tmp_path / "pd.ndjson"
    path.write_bytes(b"".join(lines))
    frame, connector = _read(path)
    acc = _acc(connector)
    assert len(frame) == 6
    assert acc.decode_errors == 1
    assert acc.rejected["nul_bytes"] == 1
    assert acc.balanced()


def test_source_zone_for_naive_export_times() -> None:
    config = TimelineConfig(source_tz=(("*alerts_export.csv", "America/New_York"),))
    frame, connector = _read(DATA / "alerts_export.csv", config)
    disk = frame[(frame["alert_name"] == "DiskFull") & (frame["alert_state"] == "firing")]
    assert list(disk["timestamp"]) == [pd.Timestamp("2024-03-01T15:02:00Z")]  # EST, UTC-5
    assert _acc(connector).time_zone == "America/New_York"


_PIECES = st.sampled_from(['"', "{", "}", "[", "]", ",", "\n", "null", "0", '"x"', ":", "\x00", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(FIXTURE_FORMATS)),
    cuts=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 30), _PIECES), min_size=1, max_size=6),
    forced=st.sampled_from([None, *ALERT_FORMATS]),
)
def test_damaged_files_never_raise_and_stay_balanced(
    tmp_path: Path, name: str, cuts: list[tuple[float, int, str]], forced: str | None
) -> None:
    text = (DATA / name).read_text()
    for where, length, piece in cuts:
        at = int(where * len(text))
        text = text[:at] + piece + text[at + length :]
    path = tmp_path / f"damaged-{name}"
    path.write_text(text)
    connector = AlertFileConnector(str(path), TimelineConfig(), forced)
    try:
        frames = list(connector.read())
    except UnknownFormatError:
        return  # detection declined the damaged file: a clear one-line error
    validate_events(frames[0])
    acc = _acc(connector)
    assert acc.balanced(), acc.to_dict()
    assert acc.lines_read == text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def test_reading_twice_gives_the_same_accounting() -> None:
    connector = AlertFileConnector(str(DATA / "alertmanager_resends.ndjson"), TimelineConfig())
    first = pd.concat(list(connector.read()))
    counts = _acc(connector).to_dict()
    second = pd.concat(list(connector.read()))
    assert _acc(connector).to_dict() == counts
    assert len(connector.rejects()) == 4
    pd.testing.assert_frame_equal(first, second)
