"""Service names compared loosely, and alert payloads of every tool naming services that match the logs'."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.alerts import AlertFileConnector
from pmtimeline.service_names import (
    same_service,
    same_service_mask,
    service_matches,
    service_words,
)

DATA = Path(__file__).resolve().parent / "data" / "alerts"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("payments", "payments-api"),  # a namespace or a PagerDuty service, and the deployment
        ("Payments API", "payments-api"),  # a PagerDuty service summary
        ("checkout", "checkout-service"),
        ("PaymentsApi", "payments_api"),
        ("paymentsapi", "payments-api"),
        ("payments-service", "payments-api"),  # the same service once "service" and "api" go
        ("payments-api-7d9f8b6c4-x2x9z", "payments-api"),  # a pod and its deployment
        ("shop/checkout-service", "checkout"),  # Argo CD's namespace/name
        ("HTTPServer", "http-server"),
        ("LEDGER", "ledger-service"),
    ],
)
def test_same_service(a: str, b: str) -> None:
    assert same_service(a, b)
    assert same_service(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("pay", "payments"),  # never inside a word
        ("reports", "payments"),
        ("payments-api", "payments-worker"),  # two deployables of one team
        ("api", "payments-api"),  # a generic word alone names nothing
        ("service", "api"),
        ("node", "ledger-service"),
        ("eric-log-transformer", "eric-pm-kube-state-metrics"),
        ("", "payments"),
        ("-", "payments"),
    ],
)
def test_different_services(a: str, b: str) -> None:
    assert not same_service(a, b)
    assert not same_service(b, a)


def test_service_words() -> None:
    assert service_words("Payments API") == ("payments", "api")
    assert service_words("PaymentsAPIGateway") == ("payments", "api", "gateway")
    assert service_words("ledger_service.v2") == ("ledger", "service", "v2")
    assert service_words(" -- ") == ()


def test_service_matches_treats_no_service_as_concerning_all() -> None:
    assert service_matches(None, ["payments-api"])
    assert service_matches("  ", ["payments-api"])
    assert service_matches("payments", [])
    assert service_matches("payments", ["", "payments-api"])
    assert not service_matches("reports", ["", "payments-api"])


def test_same_service_mask_is_same_service_per_row() -> None:
    a = pd.Series(["payments", "Payments API", None, "x", "payments", "checkout"], dtype="string")
    b = pd.Series(["payments-api", "payments-api", "payments", None, "ledger", "checkout-service"], dtype="string")
    mask = same_service_mask(a, b)
    assert mask.tolist() == [True, True, False, False, False, True]
    assert same_service_mask(a.iloc[:0], b.iloc[:0]).tolist() == []


def _services(path: Path) -> set[str | None]:
    frame = pd.concat(list(AlertFileConnector(str(path), TimelineConfig()).read()))
    return {None if pd.isna(s) else str(s) for s in frame["service"]}


#: Our fixtures: the services their alerts name (from which key), and log service names each matches.
FIXTURE_SERVICES = {
    # service, deployment (not kube-state-metrics' job), a pod's workload, namespace, k8s-app, job
    "alertmanager_kubernetes.ndjson": {
        "checkout-service": "checkout",
        "ledger-service": "ledger-service",
        "payments": "payments-api",
        "search": "search-api",
        "node": "node",
    },
    "alertmanager_resends.ndjson": {"payments": "payments-api", "api": "api-gateway"},
    "grafana_array.json": {"storage": "storage-service"},
    # PagerDuty's service summary
    "pagerduty_incident.ndjson": {"checkout": "checkout-service", None: "any"},
    # Opsgenie service: tags, and the service of its details
    "opsgenie_actions.json": {"checkout": "Checkout"},
    "opsgenie_details.json": {"ledger-service": "ledger"},
    # Datadog service: tags, and its Kubernetes tags (kube_deployment before kube_namespace)
    "datadog_monitor.ndjson": {"payments": "payments-api", None: "any"},
    "datadog_kube_tags.ndjson": {"checkout-service": "checkout", "payments": "Payments API"},
    "alerts_export.csv": {"payments": "payments-api", "storage": "storage"},
    "alerts_export.json": {"cache": "cache-redis"},
}


@pytest.mark.parametrize("name", sorted(FIXTURE_SERVICES))
def test_fixture_alerts_name_services_that_match_the_logs(name: str) -> None:
    expected = FIXTURE_SERVICES[name]
    assert _services(DATA / name) == set(expected)
    for service, log_name in expected.items():
        assert service_matches(service, [log_name])
        if service is not None:
            assert not service_matches(service, ["reports", "billing-worker"])


#: The real payloads: the services their alerts name (None: the payload names none).
REAL_SERVICES = {
    "alertmanager_firing_matjaz99_alertmonitor.json": {"blackbox-icmp"},  # only a scrape job
    # kube-state-metrics' alert about a deployment: the deployment, not the exporter's job or name
    "alertmanager_resolved_k8s_liamkelly15_pythonwebhook.json": {"eric-log-transformer"},
    "grafana_webhook_docs_example.json": {None},  # team and zone only
    "pagerduty_v3_incident_priority_updated_docs.json": {"API Service"},
    "opsgenie_webhook_create_docs.json": {None},  # bare tags, and a person as its source
    "datadog_webhook_triggered_codenow_fluffy.json": {None},  # role:dock is not a service tag
}


@pytest.mark.parametrize("name", sorted(REAL_SERVICES))
def test_real_payloads_name_their_services(shared_data: Path, name: str) -> None:
    assert _services(shared_data / "alerts" / name) == REAL_SERVICES[name]


def test_real_payload_services_match_loosely(shared_data: Path) -> None:
    k8s = _services(shared_data / "alerts" / "alertmanager_resolved_k8s_liamkelly15_pythonwebhook.json").pop()
    assert service_matches(k8s, ["eric-log-transformer-5d8f7c9b6-x2x9z"])  # its pods' logs
    assert not service_matches(k8s, ["eric-pm-kube-state-metrics"])
    pagerduty = _services(shared_data / "alerts" / "pagerduty_v3_incident_priority_updated_docs.json").pop()
    assert service_matches(pagerduty, ["api-service"])
    assert service_matches(pagerduty, ["api"])
    assert not service_matches(pagerduty, ["payments-api"])
