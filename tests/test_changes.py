"""Change recognition in log messages: positive and negative vocabulary, what is never reclassified."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic_incidents import make_events

from pmtimeline.changes import DEFAULT_CHANGE_VOCABULARY, change_vocabulary, classify_changes
from pmtimeline.errors import ConfigError
from pmtimeline.schema import CHANGE_TYPES


def _classify(message: str, **fields: object) -> tuple[str, str | None]:
    frame = classify_changes(make_events([{"time": "2024-03-05T08:00:00Z", "message": message, **fields}]))
    change_type = frame["change_type"].iloc[0]
    return str(frame["kind"].iloc[0]), None if pd.isna(change_type) else str(change_type)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Deployed payments v2.4.0 (build 8812) to production", "deploy"),
        ("Starting deployment of payments-api version 2.4.0", "deploy"),
        ("rollout of checkout v3 complete", "deploy"),
        ("Released v1.8.2 to production", "deploy"),
        ("upgraded ledger to v5.1", "deploy"),
        ("Rolled back payments to v2.3.9", "rollback"),
        ("Reverted commit 3f2a1c: 'use new pool size'", "rollback"),
        ("rollback of deploy 42 started", "rollback"),
        ("Restarted reports worker after memory limit", "restart"),
        ("systemd: payments.service restarting", "restart"),
        ("node pay-2 rebooted", "restart"),
        ("configuration reloaded from /etc/payments.yaml", "config"),
        ("kubectl apply -f payments-config.yaml", "config"),
        ("applied migration 0042_add_index", "migration"),
        ("database failed over to replica db-2", "failover"),
        ("promoted standby db-2 to primary", "failover"),
        ("traffic shifted to eu-west-1", "reroute"),
        ("rerouted checkout traffic to the blue pool", "reroute"),
        ("scaled up payments to 12 replicas", "scale"),
        ("autoscaler added 3 nodes", "scale"),
        ("Blocked IP 203.0.113.7 after repeated failures", "block"),
        ("WAF rule 1002 enabled for /login", "block"),
        ("certificate renewed for api.bank.example", "certificate"),
        ("installed new TLS certificate for edge", "certificate"),
        ("feature flag new_checkout disabled", "feature_flag"),
    ],
)
def test_changes_are_recognized_with_their_type(message: str, expected: str) -> None:
    assert _classify(message, level="info", service="payments") == ("change", expected)


@pytest.mark.parametrize(
    "message",
    [
        "failed to restart worker: permission denied",
        "could not restart payments",
        "deploy failed: image not found",
        "migration 0042 failed",
        "rollback aborted",
        "Released lock 42",
        "user logged in",
        "restarting the request timed out",
        "payment processed for release of funds",
        "GET /api/v1/deployments 200",
    ],
)
def test_failures_and_lookalikes_are_not_changes(message: str) -> None:
    assert _classify(message, level="info")[0] == "log"


def test_error_events_mentioning_a_change_stay_errors() -> None:
    assert _classify("Restarted payments", level="error") == ("log", None)


@pytest.mark.parametrize("kind", ["alert", "request"])
def test_alerts_and_requests_are_never_reclassified(kind: str) -> None:
    assert _classify("Deployed payments v2.4.0", kind=kind)[0] == kind


def test_change_events_keep_their_kind_and_get_a_type() -> None:
    assert _classify("Rolled back payments to v2.3.9", kind="change") == ("change", "rollback")
    assert _classify("pipeline #88 finished", kind="change", change_type="deploy") == ("change", "deploy")


def test_service_is_kept_for_attribution() -> None:
    frame = classify_changes(
        make_events([{"time": "2024-03-05T08:00:00Z", "message": "Deployed v2", "service": "ledger"}])
    )
    assert frame["service"].iloc[0] == "ledger"


def test_vocabulary_is_configurable() -> None:
    frame = make_events([{"time": "2024-03-05T08:00:00Z", "message": "shipit: payments #551 live"}])
    assert classify_changes(frame)["kind"].iloc[0] == "log"
    custom = classify_changes(frame, {"deploy": r"\bshipit\b"})
    assert (custom["kind"].iloc[0], custom["change_type"].iloc[0]) == ("change", "deploy")


def test_vocabulary_covers_every_change_type() -> None:
    assert set(DEFAULT_CHANGE_VOCABULARY) == set(CHANGE_TYPES)


@pytest.mark.parametrize("bad", [{"deploy": "(unclosed"}, {"teleport": "beam me up"}])
def test_bad_vocabulary_is_a_config_error(bad: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        change_vocabulary(bad)


def test_empty_frame_passes_through() -> None:
    empty = make_events([{"time": "2024-03-05T08:00:00Z", "message": "Deployed v2"}]).iloc[:0]
    assert classify_changes(empty).empty
