"""Breach exposure: suspicious actors, accounts touched and taken over, data operations afterwards."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from synthetic_incidents import Synthetic, credential_stuffing, make_events

from pmtimeline.aggregate import Aggregates, Aggregator, aggregate, notable_mask
from pmtimeline.config import TimelineConfig
from pmtimeline.exposure import detect_exposure
from pmtimeline.templates import regex_mask

CONFIG = TimelineConfig()


@cache
def attack() -> tuple[Synthetic, Aggregates]:
    synthetic = credential_stuffing(8, minutes=100)
    return synthetic, aggregate(synthetic.events, CONFIG)


def test_attackers_accounts_and_data_operations() -> None:
    synthetic, aggregates = attack()
    truth = synthetic.truth
    exposure = detect_exposure(aggregates, truth.onset, truth.recovered, CONFIG)
    assert bool(exposure)
    assert tuple(sorted(a.actor for a in exposure.actors)) == truth.attackers
    assert all(a.actor_kind == "client_ip" for a in exposure.actors)
    assert set(exposure.accounts_touched) == set(truth.accounts_attempted)
    assert {acc for a in exposure.actors for acc in a.accounts} == set(truth.accounts_compromised)
    events = synthetic.events
    for actor in exposure.actors:
        own = events.loc[(events["client_ip"] == actor.actor) & (events["service"] == "auth")]
        assert actor.failures == int((own["level"] == "warning").sum())
        assert actor.successes == int((own["level"] == "info").sum())
        assert actor.first_seen == own["timestamp"].min()
    operations = exposure.data_operations
    assert tuple(sorted(e.time for e in operations)) == truth.data_operation_times
    assert {e.message for e in operations if e.kind == "log"} == {
        f"email changed for {acc}" for acc in truth.accounts_compromised
    }


def test_ordinary_users_and_a_failing_office_nat_are_not_suspects() -> None:
    synthetic, aggregates = attack()
    exposure = detect_exposure(aggregates, synthetic.truth.onset, synthetic.truth.recovered, CONFIG)
    assert not any(a.actor.startswith("192.0.2.") for a in exposure.actors)
    # Before the attack nothing stands out.
    onset = synthetic.truth.onset
    assert onset is not None
    early = detect_exposure(aggregates, onset - pd.Timedelta(minutes=40), onset - pd.Timedelta(minutes=20), CONFIG)
    assert not early


def test_no_onset_no_exposure() -> None:
    _, aggregates = attack()
    assert not detect_exposure(aggregates, None, None, CONFIG)
    assert not detect_exposure(Aggregates.empty(), pd.Timestamp("2024-03-05T08:00:00Z"), None, CONFIG)


def test_data_operation_vocabulary() -> None:
    from pmtimeline.exposure import DATA_OPERATION

    texts = pd.Series(
        [
            "/api/v1/statements/export?format=csv",
            "bulk download of 5000 records",
            "password reset requested",
            "email changed for user1",
            "created API key ak_123",
            "/api/keys",
            "payment processed",
            "GET /api/v1/accounts",
            "login succeeded for user1",
        ]
    )
    assert regex_mask(texts, DATA_OPERATION).tolist() == [True, True, True, True, True, True, False, False, False]


def test_auth_outcomes_from_http_status() -> None:
    from pmtimeline.aggregate import auth_outcomes

    events = make_events(
        [
            {
                "time": "2024-03-05T08:00:00Z",
                "kind": "request",
                "url_path": "/login",
                "http_status": 401,
                "client_ip": "1.2.3.4",
            },
            {
                "time": "2024-03-05T08:00:01Z",
                "kind": "request",
                "url_path": "/login",
                "http_status": 302,
                "client_ip": "1.2.3.4",
            },
            {
                "time": "2024-03-05T08:00:02Z",
                "kind": "request",
                "url_path": "/api/x",
                "http_status": 401,
                "client_ip": "1.2.3.4",
            },
            {
                "time": "2024-03-05T08:00:03Z",
                "message": "Failed password for root from 1.2.3.4",
                "client_ip": "1.2.3.4",
            },
            {"time": "2024-03-05T08:00:04Z", "message": "Accepted password for bob", "user": "bob"},
        ]
    )
    failure, success = auth_outcomes(events)
    assert failure.tolist() == [True, False, False, True, False]
    assert success.tolist() == [False, True, False, False, True]


def test_actor_spans_are_exact_when_few_of_their_events_are_kept_whole() -> None:
    synthetic = credential_stuffing(9, minutes=100)
    events = synthetic.events
    aggregator = Aggregator(CONFIG)
    for part in np.array_split(np.arange(len(events)), 9):
        aggregator.add(events.iloc[part])
    aggregates = aggregator.result()
    truth = synthetic.truth
    exposure = detect_exposure(aggregates, truth.onset, truth.recovered, CONFIG)
    assert exposure.actors
    notable = events.loc[notable_mask(events)]
    for actor in exposure.actors:
        mine = notable.loc[(notable["client_ip"] == actor.actor).to_numpy(dtype=bool, na_value=False)]
        kept = aggregates.notable["client_ip"] == actor.actor
        assert int(kept.sum()) < len(mine)  # most of the attacker's failures are only counted
        assert (actor.first_seen, actor.last_seen) == (mine["timestamp"].min(), mine["timestamp"].max())
