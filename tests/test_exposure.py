"""Breach exposure: suspicious actors, accounts touched and taken over, data operations afterwards.

Besides the frame-level attack of :mod:`synthetic_incidents`, the breach is written here as the
files a responder gets: Kubernetes container logs (CRI and Docker json-file lines holding JSON with
non-ECS names), an auth service's JSON audit log and an nginx access log; an OpenSSH brute force in
syslog; an access log alone; and a window with no breach at all (an office NAT that fails a little).
The truth of each comes from the generator, never from the library.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from synthetic_incidents import Synthetic, credential_stuffing, make_events

import pmtimeline
from pmtimeline.aggregate import Aggregates, Aggregator, aggregate, auth_identities, notable_mask
from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.exposure import address_range, detect_exposure, operation_kind
from pmtimeline.templates import regex_mask

CONFIG = TimelineConfig()


def _range_of(address: str) -> str:
    return str(ipaddress.ip_network(f"{address}/24", strict=False))


@cache
def attack() -> tuple[Synthetic, Aggregates]:
    synthetic = credential_stuffing(8, minutes=100)
    return synthetic, aggregate(synthetic.events, CONFIG)


def test_attackers_accounts_and_data_operations() -> None:
    synthetic, aggregates = attack()
    truth = synthetic.truth
    exposure = detect_exposure(aggregates, truth.onset, truth.recovered, CONFIG)
    assert bool(exposure)
    # Two attackers share a /24: one range actor; the third is alone.
    ranges: dict[str, list[str]] = {}
    for ip in truth.attackers:
        ranges.setdefault(_range_of(ip), []).append(str(ip))
    expected = sorted(r if len(ips) > 1 else ips[0] for r, ips in ranges.items())
    assert sorted(a.actor for a in exposure.actors) == expected
    assert set(exposure.accounts_touched) == set(truth.accounts_attempted)
    assert {acc for a in exposure.actors for acc in a.accounts} == set(truth.accounts_compromised)
    events = synthetic.events
    for actor in exposure.actors:
        members = ranges[actor.actor] if actor.actor_kind == "client_range" else [actor.actor]
        assert actor.actor_kind == ("client_range" if len(members) > 1 else "client_ip")
        assert actor.members == (len(members) if len(members) > 1 else None)
        own = events.loc[events["client_ip"].isin(members) & (events["service"] == "auth")]
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


def test_without_an_onset_the_burst_of_failures_is_the_window() -> None:
    synthetic, aggregates = attack()
    truth = synthetic.truth
    found = detect_exposure(aggregates, None, None, CONFIG)
    given = detect_exposure(aggregates, truth.onset, truth.recovered, CONFIG)
    assert sorted(a.actor for a in found.actors) == sorted(a.actor for a in given.actors)
    assert {acc for a in found.actors for acc in a.accounts} == set(truth.accounts_compromised)
    assert not detect_exposure(Aggregates.empty(), pd.Timestamp("2024-03-05T08:00:00Z"), None, CONFIG)


def test_data_operation_vocabulary() -> None:
    from pmtimeline.exposure import DATA_OPERATION, DATA_OPERATION_FIELD

    texts = pd.Series(
        [
            "/api/v1/statements/export?format=csv",
            "bulk download of 5000 records",
            "password reset requested",
            "email changed for user1",
            "created API key ak_123",
            "/api/keys",
            "transfer created",
            "payment processed",
            "GET /api/v1/accounts",
            "login succeeded for user1",
        ]
    )
    expected = [True, True, True, True, True, True, True, False, False, False]
    assert regex_mask(texts, DATA_OPERATION).tolist() == expected
    fields = pd.Series(['{"action":"export","records":5000}', '{"action":"view"}', '{"user_agent":"export-bot"}'])
    assert regex_mask(fields, DATA_OPERATION_FIELD).tolist() == [True, False, False]
    kinds = operation_kind(pd.Series(["export GET /x/export", "email_change", "transfer created", "api key created"]))
    assert kinds.tolist() == ["export", "contact change", "transfer", "credential change"]


def test_address_ranges() -> None:
    assert address_range("203.0.113.7") == "203.0.113.0/24"
    assert address_range("::ffff:203.0.113.7") == "203.0.113.0/24"
    assert address_range("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert address_range("not-an-ip") is None


def test_auth_outcomes_from_http_status_words_and_fields() -> None:
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
            # Structured records at level info whose outcome is in a key of its own.
            {
                "time": "2024-03-05T08:00:05Z",
                "level": "info",
                "message": "auth attempt",
                "user": "carol",
                "fields": '{"event":"login","outcome":"failure"}',
            },
            {
                "time": "2024-03-05T08:00:06Z",
                "level": "info",
                "message": "auth attempt",
                "user": "carol",
                "fields": '{"event":"login","result":"ok"}',
            },
            {
                "time": "2024-03-05T08:00:07Z",
                "level": "info",
                "message": "balance viewed",
                "user": "carol",
                "fields": '{"action":"view","status":"failed"}',
            },
            # An OpenSSH line of a syslog file names neither column: they are read from its text.
            {
                "time": "2024-03-05T08:00:08Z",
                "message": "Failed password for invalid user admin from 5.6.7.8 port 2 ssh2",
            },
            # ECS names: event.action and event.outcome stay in fields, dotted.
            {
                "time": "2024-03-05T08:00:09Z",
                "message": "",
                "client_ip": "2001:db8::7",
                "fields": '{"event.action":"user-login","event.outcome":"failure"}',
            },
        ]
    )
    failure, success = auth_outcomes(events)
    assert failure.tolist() == [True, False, False, True, False, True, False, False, True, True]
    assert success.tolist() == [False, True, False, False, True, False, True, False, False, False]


def test_identities_read_from_auth_daemon_messages() -> None:
    events = make_events(
        [
            {
                "time": "2024-03-05T08:00:00Z",
                "message": "Failed password for invalid user admin from 203.0.113.7 port 42 ssh2",
            },
            {"time": "2024-03-05T08:00:01Z", "message": "Accepted password for deploy from 203.0.113.8 port 22 ssh2"},
            {
                "time": "2024-03-05T08:00:02Z",
                "message": "pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                "euid=0 tty=ssh ruser= rhost=198.51.100.4  user=root",
            },
            {
                "time": "2024-03-05T08:00:03Z",
                "message": "Failed password for invalid user oracle from 2001:db8::7 port 5555 ssh2",
            },
            {"time": "2024-03-05T08:00:04Z", "message": "received 3 rows from the cache"},
            {"time": "2024-03-05T08:00:05Z", "message": "login failed from 10.1.2.3", "user": "dave"},
        ]
    )
    user, address = auth_identities(events)
    assert user.tolist()[:4] == ["admin", "deploy", "root", "oracle"]
    assert pd.isna(user.iloc[4])
    assert user.iloc[5] == "dave"
    assert address.tolist()[:4] == ["203.0.113.7", "203.0.113.8", "198.51.100.4", "2001:db8::7"]
    # The event's own columns are never overridden.
    assert pd.isna(address.iloc[4])
    assert pd.isna(address.iloc[5])


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
        members = [str(ip) for ip in truth.attackers if actor.actor in (ip, _range_of(str(ip)))]
        mine = notable.loc[notable["client_ip"].isin(members).to_numpy(dtype=bool, na_value=False)]
        kept = aggregates.notable["client_ip"].isin(members)
        assert int(kept.sum()) < len(mine)  # most of the attacker's failures are only counted
        assert (actor.first_seen, actor.last_seen) == (mine["timestamp"].min(), mine["timestamp"].max())


# --------------------------------------------------------------------------------------------------
# The breach as files


BREACH_T0 = pd.Timestamp("2024-03-12T07:00:00Z")
AUTH_CRI = "var/log/containers/auth-api-6d8f7b9c5-q7x2m_bank-prod_auth-api-" + "3f" * 32 + ".log"
AUTH_DOCKER = "var/log/containers/auth-api-6d8f7b9c5-z9k3w_bank-prod_auth-api-" + "a1" * 32 + ".log"
AUDIT = "auth-service/audit.json"
ACCOUNTS = "var/log/containers/accounts-api-7c9d5f6b8-m4n8p_bank-prod_accounts-api-" + "5c" * 32 + ".log"
WAF = "var/log/containers/edge-waf-84b6c7d9f-r2t5v_edge_waf-" + "e7" * 32 + ".log"
ACCESS = "var/log/nginx/access.log"


@dataclass
class BreachFiles:
    """What the generator wrote, and the truth of it."""

    root: Path
    onset: pd.Timestamp
    mitigated: pd.Timestamp | None
    ranges: dict[str, tuple[str, ...]]  # range -> its attacking addresses
    failures: dict[str, int]  # range or address -> failed logins
    attempted: tuple[str, ...]
    compromised: tuple[str, ...]
    operations: dict[str, int] = field(default_factory=dict)  # kind -> how many
    citations: dict[str, set[str]] = field(default_factory=dict)  # account or address -> "path:line" of its ops
    bystanders: tuple[str, ...] = ()  # addresses that must never be named


def _iso(t: pd.Timestamp, digits: int = 3) -> str:
    return (t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000")[: 20 + digits] + "Z"


def _cri(t: pd.Timestamp, record: dict[str, object]) -> str:
    """A Kubernetes CRI line (``<RFC 3339 nanoseconds> stdout F <inner>``) holding a JSON record."""
    return f"{_iso(t, 9)} stdout F " + json.dumps({"ts": _iso(t), **record}, separators=(",", ":"))


def _docker(t: pd.Timestamp, record: dict[str, object]) -> str:
    """A Docker json-file line whose ``log`` is a JSON record (what /var/log/containers holds on Docker nodes)."""
    inner = json.dumps({"time": _iso(t), **record}, separators=(",", ":"))
    return json.dumps({"log": inner + "\n", "stream": "stdout", "time": _iso(t, 9)}, separators=(",", ":"))


def _access(t: pd.Timestamp, ip: str, method: str, path: str, status: int, size: int, user: str = "-") -> str:
    stamp = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "Mozilla/5.0 (X11; Linux x86_64)"'


class _Writer:
    """Lines per file, written sorted by time; remembers which lines cite what."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lines: dict[str, list[tuple[pd.Timestamp, str, str]]] = {}

    def add(self, path: str, t: pd.Timestamp, text: str, tag: str = "") -> None:
        self.lines.setdefault(path, []).append((t, text, tag))

    def times(self, start: pd.Timestamp, stop: pd.Timestamp, n: int) -> list[pd.Timestamp]:
        span = int((stop - start) / pd.Timedelta(milliseconds=1))
        return [start + pd.Timedelta(milliseconds=int(x)) for x in np.sort(self.rng.integers(0, span, n))]

    def write(self, root: Path) -> dict[str, set[str]]:
        cited: dict[str, set[str]] = {}
        for path, rows in self.lines.items():
            rows.sort(key=lambda r: r[0])
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(text + "\n" for _, text, _ in rows))
            for number, (_, _, tag) in enumerate(rows, start=1):
                if tag:
                    cited.setdefault(tag, set()).add(f"{target}:{number}")
        return cited


def _public_addresses(rng: np.random.Generator, n: int) -> list[str]:
    parts = rng.integers([24, 0, 0, 1], [90, 256, 256, 255], (n, 4))
    return [".".join(str(int(x)) for x in row) for row in parts]


def write_k8s_breach(root: Path, seed: int, respond_after: pd.Timedelta | None = None) -> BreachFiles:
    """Credential stuffing at a bank on Kubernetes, as its log files.

    Logins go to two auth-api pods (one on a CRI runtime writing ``msg``/``user``/``ip``, one on a
    Docker node writing ``event``/``outcome``/``username``/``remote_addr`` at level INFO whatever
    the outcome) and a legacy auth service (``event``/``result``/``account``/``src_ip``). Thousands
    of failures come from two /24 ranges, a few dozen succeed, and those accounts export their data
    (``"action":"export","records":5000`` in accounts-api, ``GET /api/v1/accounts/export`` at the
    edge), change their e-mail and make transfers until the WAF blocks the ranges; passwords are
    then reset and sessions revoked. Ordinary customers log in, mistype, view and export their own
    statements all along; staff behind the office NAT fail now and then. With ``respond_after``,
    nobody blocks the ranges: the attackers stop on their own, and the response (passwords reset,
    sessions revoked) comes that long after.
    """
    rng = np.random.default_rng(seed)
    out = _Writer(rng)
    end = BREACH_T0 + pd.Timedelta(hours=3)
    customers = [f"cust{i:06d}" for i in rng.choice(1_000_000, size=3000, replace=False)]
    active = customers[:400]
    public = _public_addresses(rng, 500)
    nat = "192.0.2.10"
    staff = [f"staff{i:03d}" for i in range(40)]

    def login(t: pd.Timestamp, account: str, ip: str, ok: bool) -> None:
        where = int(rng.integers(0, 3))
        if where == 0:
            record: dict[str, object] = {
                "level": "info" if ok else "warn",
                "msg": "login succeeded" if ok else "login failed",
                "user": account,
                "ip": ip,
            }
            out.add(AUTH_CRI, t, _cri(t, record if ok else {**record, "reason": "invalid_password"}))
        elif where == 1:
            record = {
                "severity": "INFO",
                "event": "login",
                "outcome": "success" if ok else "failure",
                "username": account,
                "remote_addr": ip,
            }
            out.add(AUTH_DOCKER, t, _docker(t, record))
        else:
            record = {
                "timestamp": _iso(t),
                "level": "INFO",
                "event": "auth.login",
                "result": "ok" if ok else "failed",
                "account": account,
                "src_ip": ip,
                "user_agent": "Mozilla/5.0",
            }
            out.add(AUDIT, t, json.dumps(record, separators=(",", ":")))

    for t in out.times(BREACH_T0, end, 1800):
        login(
            t, active[int(rng.integers(0, len(active)))], public[int(rng.integers(0, len(public)))], rng.random() > 0.04
        )
    for t in out.times(BREACH_T0, end, 2500):
        account, ip = active[int(rng.integers(0, len(active)))], public[int(rng.integers(0, len(public)))]
        out.add(
            ACCOUNTS,
            t,
            _cri(t, {"level": "info", "msg": "account viewed", "action": "view", "user": account, "client_ip": ip}),
        )
        out.add(ACCESS, t, _access(t, ip, "GET", "/api/v1/accounts/summary", 200, 812))
    for t in out.times(BREACH_T0, end, 6):  # customers export their own statements now and then
        account, ip = active[int(rng.integers(0, len(active)))], public[int(rng.integers(0, len(public)))]
        out.add(
            ACCOUNTS,
            t,
            _cri(
                t,
                {
                    "level": "info",
                    "msg": "export completed",
                    "action": "export",
                    "records": 12,
                    "user": account,
                    "client_ip": ip,
                },
            ),
        )
    for t in out.times(BREACH_T0, end, 90):
        login(t, staff[int(rng.integers(0, len(staff)))], nat, rng.random() > 0.15)

    onset = (BREACH_T0 + pd.Timedelta(minutes=float(rng.uniform(55, 70)))).floor("1s")
    blocked = onset + pd.Timedelta(minutes=int(rng.integers(30, 45)))
    range_a = sorted(f"203.0.113.{i}" for i in rng.choice(np.arange(2, 250), 14, replace=False))
    range_b = sorted(f"198.51.100.{i}" for i in rng.choice(np.arange(2, 250), 9, replace=False))
    attackers = range_a + range_b
    k = int(rng.integers(4000, 6000))
    times = out.times(onset, blocked, k)
    times[0] = onset
    leaked = customers[50:] + [f"user{i:07d}" for i in rng.choice(10_000_000, 3000, replace=False)]
    targets = [leaked[int(i)] for i in rng.integers(0, len(leaked), k)]
    sources = [attackers[int(i)] for i in rng.integers(0, len(attackers), k)]
    wins = set(rng.choice(np.arange(k // 3, k - 50), int(rng.integers(30, 42)), replace=False).tolist())
    failures: dict[str, int] = {}
    compromised: dict[str, tuple[pd.Timestamp, str]] = {}
    for i, (t, account, ip) in enumerate(zip(times, targets, sources, strict=True)):
        ok = i in wins and account.startswith("cust") and account not in compromised
        login(t, account, ip, ok)
        if ok:
            compromised[account] = (t, ip)
        else:
            failures[_range_of(ip)] = failures.get(_range_of(ip), 0) + 1
    operations = {"export": 0, "contact change": 0, "transfer": 0}
    for account, (t, ip) in compromised.items():
        at = t + pd.Timedelta(seconds=int(rng.integers(30, 240)))
        if at >= blocked:
            continue  # blocked before they got to it
        out.add(
            ACCESS,
            at - pd.Timedelta(milliseconds=900),
            _access(at, ip, "GET", "/api/v1/accounts/export?format=csv", 200, 1_843_221),
            account,
        )
        out.add(
            ACCOUNTS,
            at,
            _cri(
                at,
                {
                    "level": "info",
                    "msg": "export completed",
                    "action": "export",
                    "records": 5000,
                    "user": account,
                    "client_ip": ip,
                },
            ),
            account,
        )
        operations["export"] += 1
        if rng.random() < 0.5:
            at2 = at + pd.Timedelta(seconds=int(rng.integers(5, 60)))
            out.add(
                ACCOUNTS,
                at2,
                _cri(
                    at2,
                    {
                        "level": "info",
                        "msg": "email changed",
                        "action": "email_change",
                        "user": account,
                        "client_ip": ip,
                    },
                ),
                account,
            )
            operations["contact change"] += 1
        if rng.random() < 0.3:
            at3 = at + pd.Timedelta(seconds=int(rng.integers(60, 120)))
            out.add(
                ACCOUNTS,
                at3,
                _cri(
                    at3,
                    {
                        "level": "info",
                        "msg": "transfer created",
                        "action": "transfer",
                        "amount": 9800,
                        "user": account,
                        "client_ip": ip,
                    },
                ),
                account,
            )
            operations["transfer"] += 1
    if respond_after is None:
        mitigated = blocked + pd.Timedelta(seconds=int(rng.integers(1, 20)))
        out.add(
            WAF,
            mitigated,
            _cri(
                mitigated,
                {"level": "info", "rule": 1001, "msg": "WAF rule 1001 added: deny 203.0.113.0/24, 198.51.100.0/24"},
            ),
        )
        later = mitigated + pd.Timedelta(minutes=4)
    else:
        mitigated = later = (blocked + respond_after).floor("1s")
    for account in compromised:
        out.add(
            AUTH_CRI,
            later,
            _cri(later, {"level": "info", "msg": "password reset forced", "user": account, "admin": "secops"}),
        )
    later += pd.Timedelta(seconds=20)
    out.add(AUTH_CRI, later, _cri(later, {"level": "info", "msg": "sessions revoked", "count": len(compromised)}))
    cited = out.write(root)
    return BreachFiles(
        root=root,
        onset=onset,
        mitigated=mitigated,
        ranges={"203.0.113.0/24": tuple(range_a), "198.51.100.0/24": tuple(range_b)},
        failures=failures,
        attempted=tuple(sorted(set(targets))),
        compromised=tuple(sorted(compromised)),
        operations={kind: n for kind, n in operations.items() if n},
        citations=cited,
        bystanders=(nat, *public),
    )


@pytest.fixture(scope="module")
def k8s_breach(tmp_path_factory: pytest.TempPathFactory) -> tuple[BreachFiles, pmtimeline.Timeline]:
    files = write_k8s_breach(tmp_path_factory.mktemp("k8s_breach"), seed=3)
    return files, pmtimeline.load(files.root)


def test_k8s_breach_names_the_ranges_the_accounts_and_what_they_did(
    k8s_breach: tuple[BreachFiles, pmtimeline.Timeline],
) -> None:
    files, timeline = k8s_breach
    exposure = timeline.incident.exposure
    assert {a.actor: a.actor_kind for a in exposure.actors} == {r: "client_range" for r in files.ranges}
    for actor in exposure.actors:
        assert actor.members == len(files.ranges[actor.actor])
        assert actor.failures == files.failures[actor.actor]
        assert actor.first_seen is not None
        assert actor.first_seen >= files.onset
    assert sorted(acc for a in exposure.actors for acc in a.accounts) == list(files.compromised)
    assert set(exposure.accounts_touched) == set(files.attempted)
    assert dict(exposure.operation_counts) == files.operations
    # Every operation cited is one of the compromised accounts' own lines.
    theirs = set().union(*files.citations.values())
    assert exposure.data_operations
    assert {e.citation() for e in exposure.data_operations} <= theirs
    # Staff behind the office NAT and ordinary customers are named nowhere.
    named = {a.actor for a in exposure.actors}
    assert not named & set(files.bystanders)


def test_k8s_breach_block_is_the_mitigation(k8s_breach: tuple[BreachFiles, pmtimeline.Timeline]) -> None:
    files, timeline = k8s_breach
    phases = timeline.incident.phases
    assert phases["mitigated"] is not None
    assert abs(phases["mitigated"] - files.mitigated) < pd.Timedelta(seconds=1)
    # The forced resets are the response, not an operation of the attackers.
    assert not any("reset forced" in e.message for e in timeline.incident.exposure.data_operations)


def test_k8s_breach_contained_long_after_the_attempts_stopped(tmp_path: Path) -> None:
    files = write_k8s_breach(tmp_path, seed=7, respond_after=pd.Timedelta(minutes=25))
    timeline = pmtimeline.load(tmp_path)
    phases = timeline.incident.phases
    assert phases["recovered"] is not None
    assert phases["recovered"] < files.mitigated
    # The forced password resets are the containment, although the failures had stopped.
    assert phases["mitigated"] == files.mitigated
    (reset,) = timeline.incident.phase_evidence["mitigated"]
    assert "password reset forced" in reset.message
    assert {a.actor for a in timeline.incident.exposure.actors} == set(files.ranges)


def test_k8s_breach_through_the_cli_is_redacted(tmp_path: Path) -> None:
    files = write_k8s_breach(tmp_path / "logs", seed=5)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(files.root), "-o", str(out), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    incident = json.loads((out / "incident.json").read_text())
    actors = incident["exposure"]["actors"]
    assert sorted(a["members"] for a in actors) == sorted(len(m) for m in files.ranges.values())
    assert sum(len(a["accounts"]) for a in actors) == len(files.compromised)
    draft = (out / "postmortem.md").read_text()
    # Pseudonymized: neither an attacker's range or address nor an account is written.
    # (Only the exposure of incident.json: it is the part this module writes.)
    for text in (json.dumps(incident["exposure"]), draft):
        assert "203.0.113." not in text
        assert "198.51.100." not in text
        assert not any(account in text for account in files.compromised)
    assert "2 address ranges" in draft
    assert f"Accounts compromised: **{len(files.compromised)}**" in draft
    for kind, n in files.operations.items():
        assert f"{kind}: {n:,}" in draft
    # The draft's citations of operations point at the compromised accounts' own lines.
    section = draft.split("Accounts compromised", 1)[1]
    cited = re.findall(r"`([^`]+:\d+)`", section.split("\n## ", 1)[0])
    assert cited
    assert set(cited) <= set().union(*files.citations.values())


# --------------------------------------------------------------------------------------------------
# Other shapes


def _syslog(t: pd.Timestamp, host: str, program: str, message: str) -> str:
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}+00:00 {host} {program}: {message}"


def write_ssh_bruteforce(root: Path, seed: int) -> BreachFiles:
    """An OpenSSH brute force in a syslog auth log (ISO timestamps, no levels): failures for many
    user names from three addresses of one /24, then one password accepted; fail2ban bans them."""
    rng = np.random.default_rng(seed)
    out = _Writer(rng)
    path = "bastion/auth.log"
    end = BREACH_T0 + pd.Timedelta(hours=2)
    admins = ["alice", "bob", "deploy"]
    office = "192.0.2.10"
    for t in out.times(BREACH_T0, end, 60):
        user = admins[int(rng.integers(0, len(admins)))]
        pid = int(rng.integers(2000, 30000))
        if rng.random() < 0.1:
            out.add(
                path,
                t,
                _syslog(
                    t,
                    "bastion",
                    f"sshd[{pid}]",
                    f"Failed password for {user} from {office} port {int(rng.integers(30000, 60000))} ssh2",
                ),
            )
        out.add(
            path,
            t + pd.Timedelta(seconds=3),
            _syslog(
                t + pd.Timedelta(seconds=3),
                "bastion",
                f"sshd[{pid}]",
                f"Accepted publickey for {user} from {office} port 51000 ssh2",
            ),
        )
    for t in out.times(BREACH_T0, end, 200):
        out.add(path, t, _syslog(t, "bastion", "CRON[1200]", "pam_unix(cron:session): session opened for user root"))
    onset = BREACH_T0 + pd.Timedelta(minutes=40)
    stop = onset + pd.Timedelta(minutes=20)
    attackers = ["203.0.113.21", "203.0.113.22", "203.0.113.23"]
    names = ["root", "admin", "oracle", "test", "ubuntu", "postgres", "git", "backup", "pi", "user"]
    times = out.times(onset, stop, 1500)
    times[0] = onset
    failures = 0
    won_at = len(times) * 2 // 3
    for i, t in enumerate(times):
        ip = attackers[i % 3]
        name = names[int(rng.integers(0, len(names)))]
        pid = int(rng.integers(2000, 30000))
        if i == won_at:
            out.add(
                path,
                t,
                _syslog(
                    t,
                    "bastion",
                    f"sshd[{pid}]",
                    f"Accepted password for backup from {ip} port {int(rng.integers(30000, 60000))} ssh2",
                ),
            )
            continue
        invalid = "" if name in ("root", "backup") else "invalid user "
        out.add(
            path,
            t,
            _syslog(
                t,
                "bastion",
                f"sshd[{pid}]",
                f"Failed password for {invalid}{name} from {ip} port {int(rng.integers(30000, 60000))} ssh2",
            ),
        )
        failures += 1
    banned = stop + pd.Timedelta(seconds=5)
    for ip in attackers:
        out.add(path, banned, _syslog(banned, "bastion", "fail2ban.actions[812]", f"NOTICE [sshd] Ban {ip}"))
    out.write(root)
    return BreachFiles(
        root=root,
        onset=onset,
        mitigated=banned,
        ranges={"203.0.113.0/24": tuple(attackers)},
        failures={"203.0.113.0/24": failures},
        attempted=tuple(sorted(set(names))),
        compromised=("backup",),
        bystanders=(office,),
    )


def test_ssh_brute_force_in_syslog(tmp_path: Path) -> None:
    files = write_ssh_bruteforce(tmp_path, seed=11)
    timeline = pmtimeline.load(tmp_path)
    exposure = timeline.incident.exposure
    assert [(a.actor, a.actor_kind, a.members) for a in exposure.actors] == [("203.0.113.0/24", "client_range", 3)]
    actor = exposure.actors[0]
    assert actor.failures == files.failures["203.0.113.0/24"]
    assert actor.accounts == files.compromised
    assert set(exposure.accounts_touched) == set(files.attempted)
    # No level, no error: no anomaly. The breach gives the phases, fail2ban's ban its mitigation.
    phases = timeline.incident.phases
    assert phases["onset"] == files.onset
    assert phases["recovered"] == actor.last_seen
    assert phases["mitigated"] == files.mitigated
    (ban,) = timeline.incident.phase_evidence["mitigated"]
    lines = (tmp_path / "bastion" / "auth.log").read_text().splitlines()
    assert ban.line is not None
    assert "Ban 203.0.113.21" in lines[ban.line - 1]
    assert phases["detected"] is None
    # The first failure, kept as a sample of its kind of line, is the onset's evidence.
    (first,) = timeline.incident.phase_evidence["onset"]
    assert first.line is not None
    assert "Failed password" in lines[first.line - 1]
    assert "from 203.0.113.2" in lines[first.line - 1]
    assert first.time == files.onset
    # Logins of a user named "deploy" are no deploys.
    changes = timeline.events.loc[timeline.events["kind"] == "change", "change_type"]
    assert set(changes) == {"block"}


def write_access_log_stuffing(root: Path, seed: int) -> BreachFiles:
    """An nginx access log alone: 401s on POST /login from a /24, some 200s, then exports from the
    same addresses. The log names no account: which accounts were taken over is unknown."""
    rng = np.random.default_rng(seed)
    out = _Writer(rng)
    end = BREACH_T0 + pd.Timedelta(hours=2)
    public = _public_addresses(rng, 300)
    for t in out.times(BREACH_T0, end, 3000):
        ip = public[int(rng.integers(0, len(public)))]
        if rng.random() < 0.2:
            out.add(ACCESS, t, _access(t, ip, "POST", "/login", 401 if rng.random() < 0.05 else 200, 120))
        else:
            out.add(ACCESS, t, _access(t, ip, "GET", "/api/v1/accounts/summary", 200, 812))
    onset = BREACH_T0 + pd.Timedelta(minutes=50)
    stop = onset + pd.Timedelta(minutes=25)
    attackers = [f"203.0.113.{i}" for i in (40, 41, 42, 43, 44, 45)]
    times = out.times(onset, stop, 3000)
    times[0] = onset
    successes: dict[str, int] = {}
    exports: dict[str, set[str]] = {}
    failures = 0
    for i, t in enumerate(times):
        ip = attackers[int(rng.integers(0, len(attackers)))]
        if i % 250 == 249:
            out.add(ACCESS, t, _access(t, ip, "POST", "/login", 200, 120))
            successes[ip] = successes.get(ip, 0) + 1
            at = t + pd.Timedelta(seconds=20)
            out.add(ACCESS, at, _access(at, ip, "GET", "/api/v1/accounts/export?format=csv", 200, 1_843_221), ip)
        else:
            out.add(ACCESS, t, _access(t, ip, "POST", "/login", 401, 64))
            failures += 1
    cited = out.write(root)
    exports = {ip: lines for ip, lines in cited.items()}
    return BreachFiles(
        root=root,
        onset=onset,
        mitigated=None,
        ranges={"203.0.113.0/24": tuple(attackers)},
        failures={"203.0.113.0/24": failures},
        attempted=(),
        compromised=(),
        operations={"export": sum(successes.values())},
        citations=exports,
        bystanders=tuple(public),
    )


def test_access_log_stuffing_without_account_names(tmp_path: Path) -> None:
    files = write_access_log_stuffing(tmp_path / "logs", seed=2)
    timeline = pmtimeline.load(tmp_path / "logs")
    exposure = timeline.incident.exposure
    assert [(a.actor, a.members) for a in exposure.actors] == [("203.0.113.0/24", 6)]
    assert exposure.actors[0].failures == files.failures["203.0.113.0/24"]
    assert exposure.accounts_touched == ()
    assert exposure.actors[0].accounts == ()
    assert dict(exposure.operation_counts) == files.operations
    assert {e.citation() for e in exposure.data_operations} == set().union(*files.citations.values())
    # 401s are no server errors: the breach itself gives the onset, its first failed login.
    assert timeline.incident.phases["onset"] == files.onset
    assert timeline.incident.phases["mitigated"] is None  # nothing was done about it
    draft = timeline.postmortem()
    assert "Accounts compromised: unknown" in draft
    assert "Accounts touched: **0" not in draft
    assert "0 account(s)" not in draft
    assert "touched an unknown number of accounts" in draft


def write_office_day(root: Path, seed: int) -> None:
    """No breach: customers log in (a few typos), staff behind the office NAT fail more often."""
    rng = np.random.default_rng(seed)
    out = _Writer(rng)
    end = BREACH_T0 + pd.Timedelta(hours=3)
    public = _public_addresses(rng, 300)
    customers = [f"cust{i:04d}" for i in range(300)]
    for t in out.times(BREACH_T0, end, 2000):
        ok = rng.random() > 0.04
        out.add(
            AUTH_CRI,
            t,
            _cri(
                t,
                {
                    "level": "info" if ok else "warn",
                    "msg": "login " + ("succeeded" if ok else "failed"),
                    "user": customers[int(rng.integers(0, 300))],
                    "ip": public[int(rng.integers(0, 300))],
                },
            ),
        )
    for t in out.times(BREACH_T0, end, 150):
        ok = rng.random() > 0.2
        out.add(
            AUTH_CRI,
            t,
            _cri(
                t,
                {
                    "level": "info" if ok else "warn",
                    "msg": "login " + ("succeeded" if ok else "failed"),
                    "user": f"staff{int(rng.integers(0, 40)):02d}",
                    "ip": "192.0.2.10",
                },
            ),
        )
    out.write(root)


def test_no_breach_is_claimed_for_an_office_nat(tmp_path: Path) -> None:
    write_office_day(tmp_path, seed=4)
    timeline = pmtimeline.load(tmp_path)
    assert not timeline.incident.exposure
    assert all(at is None for at in timeline.incident.phases.values())
    draft = timeline.postmortem()
    assert "compromised" not in draft.lower()
    assert "address range" not in draft


def test_outcome_words_under_a_status_key_survive_parsing(tmp_path: Path) -> None:
    from pmtimeline.aggregate import auth_outcomes

    path = tmp_path / "auth.jsonl"
    records = [
        {
            "ts": "2024-03-12T08:00:00Z",
            "msg": "login attempt",
            "user": "a",
            "client_ip": "203.0.113.9",
            "status": "failed",
        },
        {
            "ts": "2024-03-12T08:00:01Z",
            "msg": "login attempt",
            "user": "b",
            "client_ip": "203.0.113.9",
            "status": "success",
        },
        {
            "ts": "2024-03-12T08:00:02Z",
            "msg": "GET /login",
            "client_ip": "203.0.113.9",
            "path": "/login",
            "status": 401,
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    events = pmtimeline.read_events(path)
    assert events["http_status"].tolist()[2] == 401
    failure, success = auth_outcomes(events)
    assert failure.tolist() == [True, False, True]
    assert success.tolist() == [False, True, False]


def test_accounts_unknown_are_never_written_as_zero() -> None:
    from pmtimeline.incident import Actor, Exposure

    unnamed = Exposure(actors=(Actor("203.0.113.0/24", "client_range", 2_988, 12, members=6),))
    assert unnamed.accounts_phrase() == "an unknown number of accounts (the logs name none)"
    named = Exposure(actors=unnamed.actors, accounts_touched=("a", "b"))
    assert named.accounts_phrase() == "2 account(s)"


def test_an_accounts_operations_count_from_its_own_compromise() -> None:
    t0 = pd.Timestamp("2024-03-05T08:00:00Z")
    records: list[dict[str, object]] = []

    def at(seconds: float) -> str:
        return (t0 + pd.Timedelta(seconds=seconds)).isoformat()

    for i in range(120):  # the attack: 120 failures over 10 minutes from two addresses of one /24
        ip = "203.0.113.5" if i % 2 else "203.0.113.6"
        records.append(
            {"time": at(i * 5), "level": "warning", "message": "login failed", "user": f"u{i}", "client_ip": ip}
        )
    records += [
        {"time": at(61), "level": "info", "message": "login succeeded", "user": "bob", "client_ip": "203.0.113.5"},
        {"time": at(241), "level": "info", "message": "login succeeded", "user": "alice", "client_ip": "203.0.113.6"},
        # Alice exports her own statement from home before her account is taken: hers, not the attackers'.
        {"time": at(150), "level": "info", "message": "export completed", "user": "alice", "client_ip": "198.18.0.1"},
        {"time": at(160), "level": "info", "message": "export completed", "user": "bob", "client_ip": "203.0.113.5"},
        {"time": at(300), "level": "info", "message": "export completed", "user": "alice", "client_ip": "203.0.113.6"},
    ]
    events = make_events(sorted(records, key=lambda r: str(r["time"])))
    exposure = detect_exposure(aggregate(events, CONFIG), t0, t0 + pd.Timedelta(minutes=10), CONFIG)
    assert [(a.actor, a.members, a.accounts) for a in exposure.actors] == [("203.0.113.0/24", 2, ("alice", "bob"))]
    assert [e.time for e in exposure.data_operations] == [t0 + pd.Timedelta(seconds=s) for s in (160, 300)]
    assert exposure.operation_counts == (("export", 2),)


# --------------------------------------------------------------------------------------------------
# Issue 15 (helper 9): a botnet spread over many networks, one address each


@dataclass
class SpreadTruth:
    bots: set[str] = field(default_factory=set)
    compromised: set[str] = field(default_factory=set)
    exports: int = 0


def write_logins_with(root: Path, seed: int, *, botnet: bool, outage: bool = False) -> SpreadTruth:
    """Customers log in from their usual addresses (a few typos) for three hours. With ``botnet``, from
    minute 60 for half an hour, 500 addresses in 500 networks never seen before each try 2 or 3 leaked
    credentials; a few succeed and export statements from the same address. With ``outage``, the
    customers' own logins fail most of the time for that half hour (the login service is down)."""
    rng = np.random.default_rng(seed)
    out = _Writer(rng)
    truth = SpreadTruth()
    end = BREACH_T0 + pd.Timedelta(hours=3)
    start, stop = BREACH_T0 + pd.Timedelta(minutes=60), BREACH_T0 + pd.Timedelta(minutes=90)
    customers = [f"cust{i:04d}" for i in range(300)]
    home = dict(zip(customers, _public_addresses(rng, 300), strict=True))

    def login(t: pd.Timestamp, account: str, ip: str, ok: bool) -> None:
        record = {"level": "info" if ok else "warn", "msg": "login " + ("succeeded" if ok else "failed")}
        out.add(AUTH_CRI, t, _cri(t, {**record, "user": account, "ip": ip}))

    for t in out.times(BREACH_T0, end, 2400):
        account = customers[int(rng.integers(0, 300))]
        failing = 0.7 if outage and start <= t < stop else 0.04
        login(t, account, home[account], rng.random() > failing)
    if botnet:
        leaked = [f"cust{i:04d}" for i in rng.choice(5000, size=2000, replace=False)]
        # 500 addresses, each of its own /24, in a space the customers' addresses never use.
        nets = rng.choice(np.arange(0, 100 * 256), size=500, replace=False)
        hosts = rng.integers([0, 1], [256, 255], (len(nets), 2))
        bots = [f"{100 + int(n) // 256}.{int(n) % 256}.{c}.{d}" for n, (c, d) in zip(nets, hosts.tolist(), strict=True)]
        for ip, t0 in zip(bots, out.times(start, stop - pd.Timedelta(minutes=3), len(bots)), strict=True):
            truth.bots.add(ip)
            tries = int(rng.integers(2, 4))
            won = tries == 3 and rng.random() < 0.08
            for k in range(tries):
                t = t0 + pd.Timedelta(seconds=20 * k)
                ok = won and k == tries - 1
                account = leaked[int(rng.integers(0, len(leaked)))]
                login(t, account, ip, ok)
                if ok:
                    truth.compromised.add(account)
                    e = t + pd.Timedelta(seconds=40)
                    record = {"level": "info", "msg": "export completed", "action": "export", "records": 5000}
                    out.add(ACCOUNTS, e, _cri(e, {**record, "user": account, "client_ip": ip}))
                    truth.exports += 1
    out.write(root)
    return truth


def test_a_botnet_spread_over_many_networks_is_one_distributed_actor(tmp_path: Path) -> None:
    truth = write_logins_with(tmp_path, seed=11, botnet=True)
    assert truth.compromised
    timeline = pmtimeline.load(tmp_path)
    exposure = timeline.incident.exposure
    spread = [a for a in exposure.actors if a.actor_kind == "client_set"]
    assert len(spread) == 1, exposure.actors
    actor = spread[0]
    assert actor.members is not None
    # Every bot that failed more than it succeeded, and no customer at home, is a member.
    assert actor.members >= 0.9 * len(truth.bots)
    assert actor.actor == f"{actor.members} addresses in {actor.members} networks"
    assert set(actor.accounts) == truth.compromised
    assert not [a for a in exposure.actors if a.actor_kind != "client_set"]
    assert sum(n for _, n in exposure.operation_counts) == truth.exports
    assert {op.message for op in exposure.data_operations} == {"export completed"}
    draft = timeline.postmortem()
    assert f"A distributed attack: {actor.members} addresses never seen before onset" in draft
    # The attack's evidence is the bots' own lines: their first failed login (a botnet's name is a
    # count, so its lines are found by its addresses), then the first data operation.
    [attack] = [c for c in timeline.incident.root_cause_candidates if c.summary.startswith("attack")]
    failed, operation = attack.evidence[0], attack.evidence[-1]
    assert (failed.message, operation.message) == ("login failed", "export completed")
    assert failed.time == actor.first_seen < operation.time


@pytest.mark.parametrize("outage", [False, True])
def test_no_botnet_is_claimed_for_customers_at_home(tmp_path: Path, outage: bool) -> None:
    """A quiet day, and an outage of the login that fails the customers' own attempts from their
    usual addresses: many addresses and accounts fail, but none is a new address: no distributed actor."""
    write_logins_with(tmp_path, seed=12, botnet=False, outage=outage)
    timeline = pmtimeline.load(tmp_path)
    assert not [a for a in timeline.incident.exposure.actors if a.actor_kind == "client_set"]


def test_a_distributed_actor_through_the_cli_keeps_its_description(tmp_path: Path) -> None:
    """Shared outputs pseudonymize addresses and accounts; the distributed actor's name is a count of
    addresses and networks, which names no one, and stays readable."""
    truth = write_logins_with(tmp_path / "logs", seed=11, botnet=True)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "logs"), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    [actor] = data["exposure"]["actors"]
    assert actor["actor_kind"] == "client_set"
    assert actor["actor"] == f"{actor['members']} addresses in {actor['members']} networks"
    assert len(actor["accounts"]) == len(truth.compromised)
    assert not set(actor["accounts"]) & truth.compromised  # pseudonymized
    draft = (out / "postmortem.md").read_text(encoding="utf-8")
    assert "A distributed attack:" in draft
    assert not any(ip in draft for ip in truth.bots)
