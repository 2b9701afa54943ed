"""Synthetic incidents with known truth, for the analysis tests (not a test module).

:func:`outage` builds a window of a small bank's traffic: an edge proxy (access log, edge requests)
in front of ``payments`` (which logs every request again, as request events: the same request
seen by two layers) and ``ledger``, plus a ``reports`` batch service. A deploy of ``payments``
breaks it at a random onset; failing requests return 502 at the edge and log connection-pool
errors in ``payments``; an alert fires, on-call rolls back, errors stop. Noise: background errors
in every service, an unrelated earlier alert on ``reports`` that fires and resolves before onset,
and an unrelated restart of ``reports`` before the incident.

:func:`credential_stuffing` builds an attack whose signal is a burst of *warnings* (failed logins)
from a few IPs across many accounts, a few successes, then data exports and credential changes.

Every generator returns the events and the truth (:class:`Truth`); the truth of the counts is
computed from the generated events by :func:`truth_counts`, independently of the library.
Timestamps are whole seconds, so counting at one-second resolution is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pmtimeline.schema import conform_events

T0 = pd.Timestamp("2024-03-05T08:00:00Z")
EDGE_FORMAT = "access_combined"


@dataclass
class Truth:
    onset: pd.Timestamp | None = None
    detected: pd.Timestamp | None = None
    mitigated: pd.Timestamp | None = None
    recovered: pd.Timestamp | None = None
    resolved: pd.Timestamp | None = None
    cause_service: str | None = None
    cause_time: pd.Timestamp | None = None
    attackers: tuple[str, ...] = ()
    accounts_attempted: tuple[str, ...] = ()
    accounts_compromised: tuple[str, ...] = ()
    data_operation_times: tuple[pd.Timestamp, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def phases(self) -> dict[str, pd.Timestamp | None]:
        return {
            "onset": self.onset,
            "detected": self.detected,
            "mitigated": self.mitigated,
            "recovered": self.recovered,
            "resolved": self.resolved,
        }


@dataclass
class Synthetic:
    events: pd.DataFrame
    truth: Truth


def _frame(n: int, times: np.ndarray, **columns: object) -> pd.DataFrame:
    data: dict[str, object] = {"timestamp": pd.to_datetime(times, utc=True)}
    for name, value in columns.items():
        data[name] = value if isinstance(value, (np.ndarray, list, pd.Series)) else [value] * n
    return pd.DataFrame(data)


def _seconds(rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp, n: int) -> np.ndarray:
    span = int((end - start).total_seconds())
    offsets = np.sort(rng.integers(0, max(span, 1), size=n))
    return (start + pd.to_timedelta(offsets, unit="s")).to_numpy()


def _single(time: pd.Timestamp, **columns: object) -> pd.DataFrame:
    return _frame(1, np.array([time.to_datetime64()]), **columns)


def finish(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate, number lines per source, sort by time, conform to the event schema."""
    frame = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["line"] = frame.groupby("source").cumcount() + 1
    if "kind" not in frame:
        frame["kind"] = "log"
    frame["kind"] = frame["kind"].fillna("log")
    return conform_events(frame)


def outage(
    seed: int,
    *,
    minutes: int = 90,
    rate_per_min: float | None = None,
    background_per_min: float | None = None,
    onset_minute: float | None = None,
) -> Synthetic:
    """A deploy breaks ``payments``; see the module docstring. Random but seeded."""
    rng = np.random.default_rng(seed)
    rate = rate_per_min if rate_per_min is not None else float(rng.uniform(30, 150))
    background = background_per_min if background_per_min is not None else float(rng.uniform(0.2, 2.0))
    end = T0 + pd.Timedelta(minutes=minutes)
    start_min = onset_minute if onset_minute is not None else float(rng.uniform(35, minutes - 35))
    onset = (T0 + pd.Timedelta(minutes=start_min)).floor("1s")
    duration = pd.Timedelta(seconds=int(rng.integers(6 * 60, 18 * 60)))
    mitigated = onset + duration
    incident_end = mitigated + pd.Timedelta(seconds=int(rng.integers(5, 40)))
    fail_share = float(rng.uniform(0.4, 0.9))
    users = np.array([f"cust{i:05d}" for i in range(2000)])
    ips = np.array([f"10.{i // 250}.{i % 250}.{(i * 7) % 250 + 1}" for i in range(500)])
    paths = np.array(["/api/v1/payments", "/api/v1/payments/confirm", "/api/v1/accounts", "/api/v1/ledger/balance"])

    parts: list[pd.DataFrame] = []
    # Requests: edge access log + the app's own request event for payment paths.
    n = int(rng.poisson(rate * minutes))
    times = _seconds(rng, T0, end, n)
    ts = pd.to_datetime(times, utc=True)
    path = paths[rng.integers(0, len(paths), n)]
    is_payment = np.char.startswith(path.astype(str), "/api/v1/payments")
    in_incident = (ts >= onset) & (ts <= incident_end)
    fails = in_incident & is_payment & (rng.random(n) < fail_share)
    # The first failure is exactly at onset; the last exactly at incident_end.
    status = np.where(fails, 502, np.where(rng.random(n) < 0.01, 404, 200))
    user = users[rng.integers(0, len(users), n)]
    trace = np.array([f"{seed:04x}{i:012x}" for i in range(n)])
    duration_ms = np.where(fails, rng.uniform(2900, 3100, n), rng.lognormal(3.5, 0.4, n)).round(1)
    query = np.where(rng.random(n) < 0.3, "?page=2", "")
    edge = _frame(
        n,
        times,
        source="edge/access.log",
        format=EDGE_FORMAT,
        host="edge-1",
        service="edge",
        kind="request",
        message=np.char.add("request ", path.astype(str)),
        http_status=status,
        http_method="POST",
        url_path=np.char.add(path.astype(str), query),
        duration_ms=duration_ms,
        trace_id=trace,
        user=user,
        client_ip=ips[rng.integers(0, len(ips), n)],
        level=np.where(status >= 500, "error", "info"),
    )
    parts.append(edge)
    app = edge.loc[is_payment].assign(
        source="payments/app.jsonl",
        format="json_lines",
        host=np.where(rng.random(int(is_payment.sum())) < 0.5, "pay-1", "pay-2"),
        service="payments",
        message="payment processed",
        url_path=path[is_payment],
        duration_ms=(duration_ms[is_payment] - 2).round(1),
    )
    failed_app = app["http_status"].to_numpy() >= 500
    app.loc[failed_app, "message"] = "payment failed: could not get connection from pool within 3000 ms"
    parts.append(app)
    # Pool errors in payments logged with the trace (error level, kind log), one per failed request.
    pool = app.loc[failed_app].assign(
        kind="log",
        http_status=pd.NA,
        message="HikariPool-1 - Connection is not available, request timed out after 3000ms",
        level="error",
    )
    parts.append(pool)
    # Ledger is called by payments on every payment request (a dependency): info lines with the trace.
    ledger = app.loc[~failed_app].assign(
        source="ledger/ledger.log", format="logfmt", host="ledger-1", service="ledger", kind="log", http_status=pd.NA
    )
    ledger["message"] = "balance updated"
    ledger["level"] = "info"
    parts.append(ledger)
    # Background errors in every service, including payments, over the whole window.
    nb = int(rng.poisson(background * minutes))
    bt = _seconds(rng, T0, end, nb)
    services = np.array(["payments", "ledger", "reports", "edge"])
    bsvc = services[rng.integers(0, len(services), nb)]
    codes = rng.integers(100, 999, nb).astype(str)
    parts.append(
        _frame(
            nb,
            bt,
            source=np.char.add(bsvc.astype(str), "/background.log"),
            format="logfmt",
            host=np.char.add(bsvc.astype(str), "-1"),
            service=bsvc,
            level="error",
            message=np.char.add("scheduled job reconcile failed with code ", codes),
            user=np.where(rng.random(nb) < 0.3, users[rng.integers(0, len(users), nb)], None),
        )
    )
    # Periodic info noise of reports (so that the service exists all along).
    nr = minutes * 2
    parts.append(
        _frame(
            nr,
            _seconds(rng, T0, end, nr),
            source="reports/batch.log",
            format="logfmt",
            host="reports-1",
            service="reports",
            level="info",
            message="batch step completed",
        )
    )
    # Changes: the culprit deploy shortly before onset, an unrelated restart earlier, the rollback.
    deploy_at = onset - pd.Timedelta(seconds=int(rng.integers(90, 600)))
    restart_at = onset - pd.Timedelta(seconds=int(rng.integers(900, 1500)))
    parts.append(
        _single(
            deploy_at,
            source="deploy/ci.log",
            format="logfmt",
            service="payments",
            level="info",
            message="Deployed payments v2.4.0 (build 8812) to production",
        )
    )
    parts.append(
        _single(
            restart_at,
            source="reports/batch.log",
            format="logfmt",
            service="reports",
            host="reports-1",
            level="info",
            message="Restarted reports worker after memory limit",
        )
    )
    parts.append(
        _single(
            mitigated,
            source="deploy/ci.log",
            format="logfmt",
            service="payments",
            level="info",
            message="Rolled back payments to v2.3.9",
        )
    )
    # Alerts: an unrelated earlier alert that fires and resolves before onset, then the real one.
    early_fire = restart_at - pd.Timedelta(seconds=120)
    early_resolve = restart_at + pd.Timedelta(seconds=60)
    detected = onset + pd.Timedelta(seconds=int(rng.integers(60, 240)))
    resolved = incident_end + pd.Timedelta(seconds=int(rng.integers(120, 400)))
    for at, name, svc, state, aid in (
        (early_fire, "ReportsDiskSpaceLow", "reports", "firing", "a-reports-disk"),
        (early_resolve, "ReportsDiskSpaceLow", "reports", "resolved", "a-reports-disk"),
        (detected, "PaymentsHighErrorRate", "payments", "firing", "a-pay-5xx"),
        (detected + pd.Timedelta(seconds=90), "PaymentsHighErrorRate", "payments", "acknowledged", "a-pay-5xx"),
        (resolved, "PaymentsHighErrorRate", "payments", "resolved", "a-pay-5xx"),
    ):
        parts.append(
            _single(
                at,
                source="alerts/alertmanager.json",
                format="alertmanager",
                service=svc,
                kind="alert",
                level="warning" if state != "resolved" else "info",
                alert_name=name,
                alert_state=state,
                alert_id=aid,
                message=f"[{state.upper()}] {name}",
            )
        )
    events = finish(parts)
    bad = events.loc[
        (events["timestamp"] >= onset)
        & events["message"].isin(
            [
                "payment failed: could not get connection from pool within 3000 ms",
                "HikariPool-1 - Connection is not available, request timed out after 3000ms",
            ]
        )
    ]
    truth = Truth(
        onset=bad["timestamp"].min(),
        detected=detected,
        mitigated=mitigated,
        recovered=bad["timestamp"].max(),
        resolved=resolved,
        cause_service="payments",
        cause_time=deploy_at,
        extra={"fail_share": fail_share, "rate": rate, "unrelated_restart": restart_at},
    )
    return Synthetic(events, truth)


def quiet(seed: int, minutes: int = 90) -> Synthetic:
    """Healthy traffic with background errors and an unrelated alert: no incident."""
    rng = np.random.default_rng(seed)
    end = T0 + pd.Timedelta(minutes=minutes)
    n = int(rng.poisson(60 * minutes))
    times = _seconds(rng, T0, end, n)
    status = np.where(rng.random(n) < 0.002, 503, 200)
    parts = [
        _frame(
            n,
            times,
            source="edge/access.log",
            format=EDGE_FORMAT,
            service="edge",
            kind="request",
            http_status=status,
            url_path="/api/v1/payments",
            message="request",
            duration_ms=25.0,
            level=np.where(status >= 500, "error", "info"),
        ),
    ]
    nb = int(rng.poisson(1.0 * minutes))
    parts.append(
        _frame(
            nb,
            _seconds(rng, T0, end, nb),
            source="payments/app.log",
            format="logfmt",
            service="payments",
            level="error",
            message="scheduled job reconcile failed",
        )
    )
    at = T0 + pd.Timedelta(minutes=minutes / 2)
    for when, state in ((at, "firing"), (at + pd.Timedelta(minutes=3), "resolved")):
        parts.append(
            _single(
                when,
                source="alerts/am.json",
                format="alertmanager",
                kind="alert",
                alert_name="DiskLow",
                alert_state=state,
                alert_id="disk",
                service="reports",
                message="disk",
            )
        )
    return Synthetic(finish(parts), Truth())


def credential_stuffing(seed: int, minutes: int = 120) -> Synthetic:
    """A burst of failed logins (warnings) from a few IPs, a few take-overs, then exfiltration."""
    rng = np.random.default_rng(seed)
    end = T0 + pd.Timedelta(minutes=minutes)
    users = np.array([f"user{i:05d}" for i in range(5000)])
    normal_ips = np.array([f"192.0.2.{i}" for i in range(1, 200)])
    parts: list[pd.DataFrame] = []
    # Normal logins: mostly successes, a few typos (warnings) from many IPs.
    n = int(rng.poisson(25 * minutes))
    times = _seconds(rng, T0, end, n)
    fail = rng.random(n) < 0.05
    user = users[rng.integers(0, 300, n)]
    ip = normal_ips[rng.integers(0, len(normal_ips), n)]
    parts.append(
        _frame(
            n,
            times,
            source="auth/auth.log",
            format="logfmt",
            service="auth",
            host="auth-1",
            level=np.where(fail, "warning", "info"),
            user=user,
            client_ip=ip,
            message=np.where(
                fail,
                np.char.add("login failed for ", user.astype(str)),
                np.char.add("login succeeded for ", user.astype(str)),
            ),
        )
    )
    # Ordinary traffic at the edge.
    m = int(rng.poisson(30 * minutes))
    parts.append(
        _frame(
            m,
            _seconds(rng, T0, end, m),
            source="edge/access.log",
            format=EDGE_FORMAT,
            service="edge",
            kind="request",
            http_status=200,
            url_path="/api/v1/accounts",
            message="request",
            duration_ms=20.0,
            user=users[rng.integers(0, 300, m)],
            client_ip=normal_ips[rng.integers(0, len(normal_ips), m)],
        )
    )
    # The attack.
    onset = (T0 + pd.Timedelta(minutes=float(rng.uniform(40, 60)))).floor("1s")
    attack_end = onset + pd.Timedelta(minutes=int(rng.integers(12, 25)))
    attackers = np.array(["203.0.113.7", "203.0.113.8", "198.51.100.23"])
    k = int(rng.integers(1500, 3000))
    at = _seconds(rng, onset, attack_end, k)
    at[0] = onset.to_datetime64()
    victims = users[rng.choice(np.arange(300, 5000), size=k, replace=False)]
    aip = attackers[rng.integers(0, len(attackers), k)]
    win = np.zeros(k, dtype=bool)
    win[rng.choice(np.arange(k // 2, k), size=6, replace=False)] = True
    parts.append(
        _frame(
            k,
            at,
            source="auth/auth.log",
            format="logfmt",
            service="auth",
            host="auth-1",
            level=np.where(win, "info", "warning"),
            user=victims,
            client_ip=aip,
            message=np.where(
                win,
                np.char.add("login succeeded for ", victims.astype(str)),
                np.char.add("login failed for ", victims.astype(str)),
            ),
        )
    )
    op_parts = []
    wins = pd.to_datetime(at[win], utc=True)
    for when, account, addr in zip(wins, victims[win], aip[win], strict=True):
        export_at = when + pd.Timedelta(seconds=int(rng.integers(20, 200)))
        change_at = export_at + pd.Timedelta(seconds=30)
        op_parts.append(
            _single(
                export_at,
                source="edge/access.log",
                format=EDGE_FORMAT,
                service="edge",
                kind="request",
                http_status=200,
                http_method="GET",
                url_path="/api/v1/statements/export?format=csv",
                message="request",
                user=str(account),
                client_ip=str(addr),
                duration_ms=900.0,
            )
        )
        op_parts.append(
            _single(
                change_at,
                source="accounts/app.log",
                format="logfmt",
                service="accounts",
                level="info",
                user=str(account),
                client_ip=str(addr),
                message=f"email changed for {account}",
            )
        )
    parts.extend(op_parts)
    events = finish(parts)
    attack = events.loc[events["client_ip"].isin(list(attackers)) & (events["service"] == "auth")]
    warns = attack.loc[attack["level"] == "warning"]
    truth = Truth(
        onset=warns["timestamp"].min(),
        recovered=warns["timestamp"].max(),
        attackers=tuple(sorted(attackers)),
        accounts_attempted=tuple(sorted(set(victims))),
        accounts_compromised=tuple(sorted(set(victims[win]))),
        data_operation_times=tuple(sorted(p["timestamp"].iloc[0] for p in op_parts)),
    )
    return Synthetic(events, truth)


def truth_counts(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, int]:
    """Impact counts over [start, end], computed directly from the generated events."""
    t = events["timestamp"]
    inside = events.loc[(t >= start.floor("1s")) & (t <= end)]
    edge = inside.loc[(inside["kind"] == "request") & inside["format"].str.startswith("access").fillna(False)]
    is_error = inside["level"].isin(["error", "critical", "alert", "emergency"]).fillna(False) | (
        inside["http_status"] >= 500
    ).fillna(False)
    return {
        "requests_total": len(edge),
        "requests_failed": int((edge["http_status"] >= 500).fillna(False).sum()),
        "error_events": int(is_error.sum()),
        "affected_users": int(inside.loc[is_error, "user"].dropna().nunique()),
    }


def make_events(records: list[dict[str, object]]) -> pd.DataFrame:
    """An event frame from a few hand-written records (``time`` as text; defaults for the rest)."""
    rows = []
    for number, record in enumerate(records, start=1):
        row = {"source": "app.log", "kind": "log", "line": number, **record}
        row["timestamp"] = pd.Timestamp(str(row.pop("time")))
        rows.append(row)
    return conform_events(pd.DataFrame(rows))
