"""The per-tool payload readers: one payload dict in, alert state changes out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pmtimeline.connectors.alert_payloads import (
    AlertEvent,
    PayloadRejectedError,
    epoch_to_timestamp,
    normalize_severity,
    normalize_state,
    parse_alert_time,
    read_alertmanager,
    read_datadog,
    read_generic,
    read_opsgenie,
    read_pagerduty,
    stable_id,
    workload_of_pod,
)


def _load(shared_data: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_data / "alerts" / name).read_text())
    return data


def _states(events: list[AlertEvent]) -> list[tuple[str | None, pd.Timestamp]]:
    return [(e.alert_state, e.timestamp) for e in events]


# -- values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("critical", "critical"),
        ("major", "error"),
        ("Warning", "warning"),
        ("warning", "warning"),
        ("minor", "warning"),
        ("info", "info"),
        ("informational", "info"),
        ("page", "critical"),
        ("P1", "critical"),
        ("P2", "error"),
        ("p5", "info"),
        ("high", "error"),
        ("low", "info"),
        ("bogus", None),
        (None, None),
    ],
)
def test_normalize_severity(raw: str | None, level: str | None) -> None:
    assert normalize_severity(raw) == level


@pytest.mark.parametrize(
    ("raw", "state"),
    [("firing", "firing"), ("Alerting", "firing"), ("OK", "resolved"), ("acked", "acknowledged"), ("200", None)],
)
def test_normalize_state(raw: str, state: str | None) -> None:
    assert normalize_state(raw) == state


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1709287200, "2024-03-01T10:00:00Z"),  # seconds
        (1709287200000, "2024-03-01T10:00:00Z"),  # milliseconds (Opsgenie createdAt, Datadog $DATE)
        ("1709287200000", "2024-03-01T10:00:00Z"),  # ... as a string
        (1709287200000000, "2024-03-01T10:00:00Z"),  # microseconds
        (1709287200000000001, "2024-03-01T10:00:00.000000001Z"),  # nanoseconds, exact (Opsgenie updatedAt)
        ("1709287200.5", "2024-03-01T10:00:00.5Z"),
    ],
)
def test_epoch_unit_follows_the_magnitude(value: int | str, expected: str) -> None:
    assert epoch_to_timestamp(value) == pd.Timestamp(expected)


def test_an_epoch_beyond_the_event_table_is_no_time() -> None:
    # 99999999999999 ms is the year 5138: pandas holds it (in microseconds), the event table cannot
    assert epoch_to_timestamp(99999999999999) is None
    assert parse_alert_time("99999999999999") is None


def test_parse_alert_time_traps() -> None:
    nine = parse_alert_time("2019-09-27T16:27:56.612666101Z")
    assert nine is not None
    assert nine[0] == pd.Timestamp("2019-09-27T16:27:56.612666101Z")
    assert nine[0].nanosecond == 101
    offset = parse_alert_time("2021-10-12T09:51:03.157076+02:00")
    assert offset is not None
    assert offset[0] == pd.Timestamp("2021-10-12T07:51:03.157076Z")
    assert offset[2] is None  # the text carried its offset
    assert parse_alert_time("0001-01-01T00:00:00Z") is None  # Go zero time: not ended
    assert parse_alert_time("$DATE") is None
    assert parse_alert_time("") is None
    assert parse_alert_time(None) is None
    naive = parse_alert_time("2024-03-01 10:02:00", "Europe/Berlin")
    assert naive == (pd.Timestamp("2024-03-01T09:02:00Z"), "2024-03-01 10:02:00", "Europe/Berlin")


def test_stable_id_ignores_label_order() -> None:
    assert stable_id("labels", {"a": "1", "b": "2"}) == stable_id("labels", {"b": "2", "a": "1"})
    assert stable_id("labels", {"a": "1"}) != stable_id("labels", {"a": "2"})


# -- the real payloads -----------------------------------------------------------------------------


def test_alertmanager_firing_nanoseconds_and_zero_ends_at(shared_data: Path) -> None:
    events = read_alertmanager(_load(shared_data, "alertmanager_firing_matjaz99_alertmonitor.json"))
    assert _states(events) == [("firing", pd.Timestamp("2019-09-27T16:27:56.612666101Z"))] * 3
    assert {e.host for e in events} == {"172.29.254.30", "172.29.254.50", "172.29.254.66"}
    first = events[0]
    assert first.alert_name == "ICMP ping failed"
    assert first.level == "error"  # severity "major"
    assert first.service == "blackbox-icmp"  # job
    assert first.summary == "172.29.254.30 does not reply to ICMP pings"
    assert first.alert_id.startswith("labels:")  # no fingerprint in this older Alertmanager
    assert len({e.alert_id for e in events}) == 3
    assert first.fields["generatorURL"].startswith("http://9ed35ff90bf8:9090/graph")


def test_alertmanager_resolved_without_ends_at_keeps_only_the_firing_time(shared_data: Path) -> None:
    events = read_alertmanager(_load(shared_data, "alertmanager_resolved_matjaz99_alertmonitor.json"))
    assert [e.alert_state for e in events] == ["firing"] * 3
    assert events[0].untimed == ["resolved"] * 3
    firing = read_alertmanager(_load(shared_data, "alertmanager_firing_matjaz99_alertmonitor.json"))
    assert [e.alert_id for e in events] == [e.alert_id for e in firing]  # same identity: they pair


def test_alertmanager_resolved_k8s(shared_data: Path) -> None:
    events = read_alertmanager(_load(shared_data, "alertmanager_resolved_k8s_liamkelly15_pythonwebhook.json"))
    assert _states(events) == [
        ("firing", pd.Timestamp("2022-07-29T11:13:27.300Z")),
        ("resolved", pd.Timestamp("2022-07-29T11:17:27.300Z")),
    ]
    assert {e.alert_id for e in events} == {"fbab788ec4c1018b"}
    assert events[1].level == "warning"  # "Warning", capitalised
    assert events[1].service == "eric-log-transformer"  # the deployment, not the exporter's job
    assert events[1].summary == "Kubernetes Deployment Replicas Mismatch"


def test_grafana_offsets_and_values(shared_data: Path) -> None:
    events = read_alertmanager(_load(shared_data, "grafana_webhook_docs_example.json"))
    assert _states(events) == [
        ("firing", pd.Timestamp("2021-10-12T07:51:03.157076Z")),
        ("firing", pd.Timestamp("2021-10-12T07:56:03.157076Z")),
    ]
    assert [e.alert_id for e in events] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    assert events[0].fields["values"] == {"B": 44.23943737541908, "C": 1}
    assert events[0].ts_raw == "2021-10-12T09:51:03.157076+02:00"


def test_pagerduty_priority_updated(shared_data: Path) -> None:
    (event,) = read_pagerduty(_load(shared_data, "pagerduty_v3_incident_priority_updated_docs.json"))
    assert event.timestamp == pd.Timestamp("2020-10-02T18:45:22.169Z")
    assert event.alert_id == "PGR0VU2"
    assert event.alert_name == "A little bump in the road"
    assert event.service == "API Service"
    assert event.alert_state == "firing"  # the incident's current status, "triggered"
    assert event.level == "critical"  # priority P1
    assert event.label == "PRIORITY_UPDATED"
    assert event.fields["event_type"] == "incident.priority_updated"


def test_pagerduty_note_in_an_envelope_is_an_annotation(shared_data: Path) -> None:
    note = _load(shared_data, "pagerduty_v3_event_data_incident_note_docs.json")
    (event,) = read_pagerduty(
        {"event": {"id": "x", "event_type": "incident.annotated", "occurred_at": "2020-10-02T18:50:00Z", "data": note}}
    )
    assert event.alert_id == "PGR0VU2"
    assert event.alert_state is None  # a note does not change the state
    assert event.summary == "I sure am glad we are using PagerDuty!"
    assert event.label == "ANNOTATED"


def test_pagerduty_data_without_envelope_is_rejected(shared_data: Path) -> None:
    with pytest.raises(PayloadRejectedError) as info:
        read_pagerduty(_load(shared_data, "pagerduty_v3_event_data_incident_note_docs.json"))
    assert info.value.reason == "no_timestamp"


def test_opsgenie_milliseconds_and_nanoseconds(shared_data: Path) -> None:
    (create,) = read_opsgenie(_load(shared_data, "opsgenie_webhook_create_docs.json"))
    (ack,) = read_opsgenie(_load(shared_data, "opsgenie_webhook_acknowledge_docs.json"))
    # updatedAt 1420452193166002000 ns; createdAt 1420452191104 ms: both 2015-01-05 10:03 UTC
    assert create.timestamp == pd.Timestamp("2015-01-05T10:03:13.166002Z")
    assert create.fields["created_at"] == pd.Timestamp("2015-01-05T10:03:11.104Z").isoformat()
    assert ack.timestamp == pd.Timestamp("2015-01-05T10:03:44.764002246Z")
    assert (create.alert_state, ack.alert_state) == ("firing", "acknowledged")
    assert create.alert_id == ack.alert_id == "052652ac-5d1c-464a-812a-7dd18bbfba8c"
    assert create.alert_name == "test alert"
    assert create.service is None  # source is a user's e-mail, entity is empty


def test_datadog_ms_strings_and_recovered_before_triggered(shared_data: Path) -> None:
    (triggered,) = read_datadog(_load(shared_data, "datadog_webhook_triggered_codenow_fluffy.json"))
    (recovered,) = read_datadog(_load(shared_data, "datadog_webhook_recovered_codenow_fluffy.json"))
    assert triggered.timestamp == pd.Timestamp("2015-11-25T07:12:10Z")
    assert recovered.timestamp == pd.Timestamp("2015-11-25T07:11:17Z")
    assert triggered.timestamp - recovered.timestamp == pd.Timedelta(seconds=53)
    assert (triggered.alert_state, recovered.alert_state) == ("firing", "resolved")
    assert triggered.alert_name == "Dock is almost out of memory..."
    assert triggered.host == "i-3b93aafb"
    assert triggered.alert_id == recovered.alert_id  # same monitor and scope
    assert triggered.ts_raw == "1448435530000"


def test_datadog_template_is_rejected(shared_data: Path) -> None:
    with pytest.raises(PayloadRejectedError) as info:
        read_datadog(_load(shared_data, "datadog_payload_template_variables_servicenow_docs.json"))
    assert info.value.reason == "no_timestamp"
    assert "$DATE" in info.value.detail


# -- shapes the real samples do not cover ----------------------------------------------------------


def test_datadog_variable_names_in_any_case() -> None:
    payload = {
        "ALERT_CYCLE_KEY": "cyc-1",
        "ALERT_ID": "42",
        "Alert_Transition": "Warn",
        "DATE": 1709287200000,
        "EVENT_TITLE": "[Warn on {service:payments}] Latency",
        "TAGS": "service:payments,env:prod",
    }
    (event,) = read_datadog(payload)
    assert (event.alert_id, event.alert_state, event.level) == ("cyc-1", "firing", "warning")
    assert event.service == "payments"
    assert event.timestamp == pd.Timestamp("2024-03-01T10:00:00Z")


def test_generic_interval_row_and_status_row() -> None:
    interval = read_generic(
        {"AlertName": "Disk", "Status": "resolved", "startsAt": "2024-03-01T10:00:00Z", "ended_at": "2024-03-01T10:09Z"}
    )
    assert _states(interval) == [
        ("firing", pd.Timestamp("2024-03-01T10:00:00Z")),
        ("resolved", pd.Timestamp("2024-03-01T10:09:00Z")),
    ]
    (status_row,) = read_generic({"time": "2024-03-01T10:05:00Z", "title": "Disk", "state": "acknowledged"})
    assert status_row.alert_state == "acknowledged"
    assert status_row.alert_id == read_generic({"time": "2024-03-01T10:00:00Z", "title": "Disk"})[0].alert_id


def test_malformed_shapes_are_rejected_not_raised() -> None:
    with pytest.raises(PayloadRejectedError, match="unknown_payload"):
        read_alertmanager({"version": "4", "alerts": "nope"})
    with pytest.raises(PayloadRejectedError, match="unknown_payload"):
        read_opsgenie({"action": "Create"})
    with pytest.raises(PayloadRejectedError, match="not_an_alert"):
        read_pagerduty({"event": {"event_type": "service.updated", "data": {"type": "service"}}})
    with pytest.raises(PayloadRejectedError, match="no_timestamp"):
        read_generic({"name": "x", "status": "firing"})


# -- which key names the service -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("payments-api-7d9f8b6c4-x2x9z", "payments-api"),  # a Deployment's pod
        ("fluent-bit-x2x9z", "fluent-bit"),  # a DaemonSet's pod
        ("postgres-0", "postgres"),  # a StatefulSet's pod
        ("my-app-nginx", "my-app-nginx"),  # "nginx" has vowels: not a generated suffix
        ("payments-api", "payments-api"),
    ],
)
def test_workload_of_pod(pod: str, workload: str) -> None:
    assert workload_of_pod(pod) == workload


def _am_service(labels: dict[str, str]) -> str | None:
    payload = {"status": "firing", "alerts": [{"labels": labels, "startsAt": "2024-03-01T10:00:00Z"}]}
    return read_alertmanager(payload)[0].service


def test_alertmanager_labels_name_the_application_first() -> None:
    exporter = {"job": "kube-state-metrics", "app_kubernetes_io_name": "kube-state-metrics", "namespace": "shop"}
    assert _am_service({**exporter, "deployment": "checkout", "service": "checkout-api"}) == "checkout-api"
    assert _am_service({**exporter, "deployment": "checkout"}) == "checkout"
    assert _am_service({**exporter, "pod": "checkout-5c7b9d8f6-qwz2k", "container": "app"}) == "checkout"
    assert _am_service({"app": "search", "job": "kubernetes-pods"}) == "search"
    assert _am_service({"namespace": "payments"}) == "payments"
    assert _am_service({"alertname": "Watchdog"}) is None


def test_tags_name_the_service_by_key_priority_not_tag_order() -> None:
    payload = {
        "ALERT_TRANSITION": "Triggered",
        "DATE": "1709287200000",
        "EVENT_TITLE": "[Triggered] x",
        "TAGS": "kube_namespace:shop,env:prod,kube_deployment:checkout,team:web",
    }
    assert read_datadog(payload)[0].service == "checkout"
    assert read_datadog({**payload, "TAGS": "kube_namespace:shop,service:checkout-api"})[0].service == "checkout-api"
    alert = {"alertId": "a", "message": "m", "createdAt": 1709287200000, "tags": ["prod", "env=prod"]}
    assert read_opsgenie({"action": "Create", "alert": alert})[0].service is None
    with_details = {**alert, "details": {"App": "ledger"}, "tags": ["component=ledger-db"]}
    assert read_opsgenie({"action": "Create", "alert": with_details})[0].service == "ledger-db"
    assert read_opsgenie({"action": "Create", "alert": {**alert, "details": {"App": "ledger"}}})[0].service == "ledger"
