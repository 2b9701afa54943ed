"""Impact metrics as a function of the phases and the aggregates."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA
from synthetic_incidents import Synthetic, outage, quiet, truth_counts

from pmtimeline.aggregate import Aggregates, aggregate, latency_bins
from pmtimeline.analysis import analyze
from pmtimeline.changes import classify_changes
from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.impact import compute_metrics, histogram_percentiles
from pmtimeline.incident import Incident, Metrics
from pmtimeline.postmortem import render_postmortem
from pmtimeline.sources import SourceAccounting

CONFIG = TimelineConfig()


@cache
def data() -> tuple[Synthetic, Aggregates]:
    synthetic = outage(41, minutes=75)
    return synthetic, aggregate(classify_changes(synthetic.events), CONFIG)


def truth_phases() -> dict[str, pd.Timestamp | None]:
    return data()[0].truth.phases()


def test_counts_durations_and_users_match_the_truth() -> None:
    synthetic, aggregates = data()
    phases = truth_phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    metrics = compute_metrics(phases, aggregates, CONFIG)
    expected = truth_counts(synthetic.events, onset, recovered)
    assert metrics.requests_total == expected["requests_total"]
    assert metrics.requests_failed == expected["requests_failed"]
    assert metrics.error_events == expected["error_events"]
    assert metrics.affected_users == expected["affected_users"]
    assert metrics.time_to_recover_s == (recovered - onset).total_seconds()
    assert metrics.time_to_resolve_s == (synthetic.truth.resolved - onset).total_seconds()  # type: ignore[operator]
    assert metrics.affected_services == ("payments", "edge")
    assert set(metrics.affected_hosts) <= {"pay-1", "pay-2", "edge-1", "payments-1"}
    assert {"pay-1", "pay-2"} <= set(metrics.affected_hosts)


def test_error_rate_peak_is_the_worst_bucket() -> None:
    synthetic, aggregates = data()
    phases = truth_phases()
    metrics = compute_metrics(phases, aggregates, CONFIG)
    events = synthetic.events
    edge = events.loc[(events["kind"] == "request") & events["format"].str.startswith("access")]
    t = edge["timestamp"]
    inside = edge.loc[(t >= phases["onset"]) & (t <= phases["recovered"])]
    per_minute = inside.groupby(inside["timestamp"].dt.floor("1min"))["http_status"].agg(
        lambda s: (s >= 500).sum() / len(s)
    )
    assert metrics.error_rate_peak == pytest.approx(per_minute.max(), abs=1e-4)


def test_endpoints_without_query_strings_most_failed_first() -> None:
    _synthetic, aggregates = data()
    metrics = compute_metrics(truth_phases(), aggregates, CONFIG)
    paths = [p for p, _ in metrics.affected_endpoints]
    assert set(paths) == {"/api/v1/payments", "/api/v1/payments/confirm"}
    counts = [n for _, n in metrics.affected_endpoints]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == metrics.requests_failed


def test_cost_model_and_error_budget() -> None:
    _, aggregates = data()
    phases = truth_phases()
    config = replace(CONFIG, slo=99.9, cost_per_failed_request=0.5, revenue_per_minute=100.0)
    metrics = compute_metrics(phases, aggregates, config)
    assert metrics.requests_failed is not None
    assert metrics.time_to_recover_s is not None
    expected_cost = 0.5 * metrics.requests_failed + 100.0 * metrics.time_to_recover_s / 60
    assert metrics.estimated_cost == pytest.approx(expected_cost, abs=0.01)
    window_requests = int(aggregates.counts["edge_requests"].sum())
    assert metrics.error_budget_burn == pytest.approx(metrics.requests_failed / (0.001 * window_requests), rel=1e-3)
    assert compute_metrics(phases, aggregates, CONFIG).estimated_cost is None


def test_latency_before_and_during() -> None:
    _, aggregates = data()
    latency = compute_metrics(truth_phases(), aggregates, CONFIG).latency_ms
    assert set(latency) == {"before", "during"}
    assert latency["before"]["p50"] is not None
    assert latency["during"]["p99"] is not None
    assert latency["before"]["p50"] < 60 < 2500 < latency["during"]["p99"]


def test_histogram_percentiles_match_numpy() -> None:
    durations = np.random.default_rng(5).lognormal(3, 0.8, 20_000)
    bins, counts = np.unique(latency_bins(durations), return_counts=True)
    got = histogram_percentiles(bins, counts)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert got[name] == pytest.approx(np.percentile(durations, q), rel=0.07)
    assert histogram_percentiles(bins[:0], counts[:0]) == {"p50": None, "p95": None, "p99": None}


def test_no_onset_only_durations() -> None:
    _, aggregates = data()
    metrics = compute_metrics(dict.fromkeys(truth_phases()), aggregates, CONFIG)
    assert metrics.requests_total is None
    assert metrics.time_to_detect_s is None


def test_latency_reads_the_first_scope_present() -> None:
    # Edge durations when the window has them, else those of request events; percentiles of the
    # histogram rows of that scope only, before onset and within [onset, recovered].
    from pmtimeline.impact import latency_before_during

    _, aggregates = data()
    phases = truth_phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    start = onset.floor(CONFIG.count_resolution)
    latency = aggregates.latency
    assert {"edge", "request"} <= set(latency["scope"])
    got = latency_before_during(latency, onset, recovered, CONFIG.count_resolution)
    edge = latency.loc[latency["scope"].eq("edge").to_numpy(dtype=bool)]
    for name, rows in (
        ("before", edge.loc[edge["bucket"] < start]),
        ("during", edge.loc[(edge["bucket"] >= start) & (edge["bucket"] <= recovered)]),
    ):
        per_bin = rows.groupby("bin")["count"].sum()
        assert got[name] == histogram_percentiles(per_bin.index.to_numpy(), per_bin.to_numpy())
    requests_only = latency.loc[latency["scope"].ne("edge").to_numpy(dtype=bool)]
    own = latency_before_during(requests_only, onset, recovered, CONFIG.count_resolution)
    assert own != got
    assert set(own) == {"before", "during"}


# -- unknown is not zero ---------------------------------------------------------------------------------------------
# Shapes unlike the sample: a syslog with no request and no user, an edge whose requests all succeed
# while the application behind it fails, a window with no incident at all, and real Loghub systems.
# Each is built through the library and through `pmtimeline build`; the expected counts are taken
# from the generated lines (or the Loghub ground truth), never from the library.

BUILD_START = pd.Timestamp("2024-06-04T10:00:00Z")


def _times(rng: np.random.Generator, start_min: float, end_min: float, n: int) -> list[pd.Timestamp]:
    """``n`` whole-second times between two minutes after :data:`BUILD_START`, in order."""
    offsets = np.sort(rng.integers(int(start_min * 60), int(end_min * 60), size=n))
    return [BUILD_START + pd.Timedelta(seconds=int(s)) for s in offsets]


def _syslog_lines(seed: int) -> tuple[list[str], list[pd.Timestamp]]:
    """An RFC 5424 syslog of a database host over an hour: routine lines, a few background errors,
    and from minute 30 to 40 a burst of disk errors. No requests, no users. Returns the lines and
    the times of the error lines."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[pd.Timestamp, int, str, str]] = []
    for t in _times(rng, 0, 60, 600):
        rows.append((t, 134, "postgres", "checkpoint complete: wrote 12 buffers"))  # local0.info
    for t in _times(rng, 0, 60, 4):
        rows.append((t, 131, "postgres", "could not receive data from client: Connection reset by peer"))
    for t in _times(rng, 30, 40, 250):
        rows.append((t, 131, "postgres", "could not extend file base/16384/2619: No space left on device"))
    rows.sort(key=lambda r: r[0])
    lines = [
        f"<{pri}>1 {t.strftime('%Y-%m-%dT%H:%M:%SZ')} db-01 {app} {1000 + i} - - {msg}"
        for i, (t, pri, app, msg) in enumerate(rows)
    ]
    return lines, [t for t, pri, _, _ in rows if pri % 8 <= 3]


def _access_line(t: pd.Timestamp, path: str, status: int, i: int) -> str:
    return (
        f'203.0.113.{i % 200 + 1} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "GET {path}?page={i % 7} HTTP/1.1" '
        f'{status} 512 "-" "curl/8.5.0"'
    )


def _shop_files(seed: int, directory: Path, *, incident: bool, users_on_errors: bool = True) -> dict[str, Any]:
    """An edge access log whose requests all succeed (or, without an incident, fail rarely) and
    the JSON log of the ``orders`` worker behind it, which from minute 30 to 40 fails to publish
    orders for some users when ``incident`` (naming them unless not ``users_on_errors``; its
    routine lines always name theirs). Returns what the files hold."""
    rng = np.random.default_rng(seed)
    edge_times = _times(rng, 0, 60, 3000)
    statuses = [200] * len(edge_times) if incident else [503 if rng.random() < 0.003 else 200 for _ in edge_times]
    access = [_access_line(t, "/shop/cart", s, i) for i, (t, s) in enumerate(zip(edge_times, statuses, strict=True))]
    records = [
        {"ts": t, "level": "info", "msg": "order published", "user": f"customer-{i % 40}"}
        for i, t in enumerate(_times(rng, 0, 60, 300))
    ]
    records += [{"ts": t, "level": "error", "msg": "stock check timed out"} for t in _times(rng, 0, 60, 3)]
    if incident:
        for t in _times(rng, 30, 40, 200):
            user = f"customer-{int(rng.integers(0, 60))}"
            message = "publishing order failed: broker unavailable"
            records.append({"ts": t, "level": "error", "msg": message, **({"user": user} if users_on_errors else {})})
    records.sort(key=lambda r: r["ts"])
    (directory / "edge").mkdir(parents=True, exist_ok=True)
    (directory / "orders").mkdir(parents=True, exist_ok=True)
    (directory / "edge" / "access.log").write_text("\n".join(access) + "\n", encoding="utf-8")
    (directory / "orders" / "worker.jsonl").write_text(
        "".join(json.dumps({**r, "ts": r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n" for r in records),
        encoding="utf-8",
    )
    return {"edge": list(zip(edge_times, statuses, strict=True)), "records": records}


def _build(paths: list[Path], out: Path) -> tuple[dict[str, Any], str, str]:
    """`pmtimeline build` of ``paths``: (incident.json, postmortem.md, terminal output)."""
    result = CliRunner().invoke(cli, ["build", *map(str, paths), "-o", str(out), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    incident = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    return incident, (out / "postmortem.md").read_text(encoding="utf-8"), result.output


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _in_incident(times: list[pd.Timestamp], incident: dict[str, Any]) -> int:
    """How many ``times`` fall in [onset, recovered], at the counts' one-second resolution."""
    onset, recovered = (pd.Timestamp(incident["phases"][p]) for p in ("onset", "recovered"))
    return sum(onset.floor("1s") <= t <= recovered for t in times)


def test_syslog_without_requests_or_users_says_unknown_not_zero(tmp_path: Path) -> None:
    lines, error_times = _syslog_lines(7)
    log = tmp_path / "db" / "postgres.log"
    log.parent.mkdir()
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    incident, draft, terminal = _build([log], tmp_path / "out")
    onset = pd.Timestamp(incident["phases"]["onset"])
    assert abs(onset - (BUILD_START + pd.Timedelta(minutes=30))) <= pd.Timedelta("1min")
    metrics = incident["metrics"]
    for name in ("requests_total", "requests_failed", "error_rate_peak", "affected_endpoints", "latency_ms"):
        assert metrics[name] is None, name
        assert metrics["unknown_reasons"][name] == "no request logs", name
    assert metrics["affected_users"] is None
    assert metrics["unknown_reasons"]["affected_users"] == "no user ids in the logs"
    # What there is to count is counted: the error lines of the incident, on their host.
    assert metrics["error_events"] == _in_incident(error_times, incident)
    assert metrics["affected_hosts"] == ["db-01"]
    assert metrics["window_totals"]["requests"] is None
    assert metrics["window_totals"]["events"] == len(lines)
    for section in ("Summary", "Impact"):
        text = _section(draft, section)
        assert "unknown (no request logs)" in text, section
        assert "unknown (no user ids in the logs)" in text, section
        assert not re.search(r"(Users affected|failed): \**0\b|\b0 users", text), section
    assert re.search(r"requests failed +unknown \(no request logs\)", terminal)
    assert re.search(r"affected users +unknown \(no user ids in the logs\)", terminal)


def test_requests_that_all_succeeded_are_a_real_zero(tmp_path: Path) -> None:
    truth = _shop_files(11, tmp_path / "logs", incident=True)
    incident, draft, terminal = _build([tmp_path / "logs"], tmp_path / "out")
    metrics = incident["metrics"]
    assert abs(pd.Timestamp(incident["phases"]["onset"]) - (BUILD_START + pd.Timedelta(minutes=30))) <= pd.Timedelta(
        "1min"
    )
    requests = _in_incident([t for t, _ in truth["edge"]], incident)
    assert requests > 0
    assert (metrics["requests_total"], metrics["requests_failed"]) == (requests, 0)
    assert metrics["error_rate_peak"] == 0.0
    assert metrics["affected_endpoints"] == []  # no failed request: none, not unknown
    errors = [r for r in truth["records"] if r["level"] == "error"]
    onset, recovered = (pd.Timestamp(incident["phases"][p]) for p in ("onset", "recovered"))
    users = {r["user"] for r in errors if "user" in r and onset.floor("1s") <= r["ts"] <= recovered}
    assert metrics["affected_users"] == len(users) > 0
    assert metrics["latency_ms"] is None
    assert metrics["unknown_reasons"] == {
        "latency_ms": "no request durations in the logs",
        "affected_hosts": "no host names in the logs",
    }
    assert f"0 of {requests:,} requests failed (0.0%)" in _section(draft, "Summary")
    impact = _section(draft, "Impact")
    assert f"Requests in the incident: {requests:,}; failed: **0**." in impact
    assert "Peak error rate: **0.0%**" in impact
    assert f"Users affected: **{len(users):,}**" in impact
    assert re.search(r"requests failed +0\n", terminal)


def test_errors_that_name_no_user_leave_the_affected_users_unknown(tmp_path: Path) -> None:
    # The worker's routine lines name users, its failures do not: who was hit is not in the logs.
    _shop_files(11, tmp_path / "logs", incident=True, users_on_errors=False)
    incident, draft, terminal = _build([tmp_path / "logs"], tmp_path / "out")
    assert incident["phases"]["onset"] is not None
    metrics = incident["metrics"]
    assert metrics["affected_users"] is None
    assert metrics["unknown_reasons"]["affected_users"] == "no user ids on the incident's error events"
    assert "Users affected: unknown (no user ids on the incident's error events)." in _section(draft, "Impact")
    assert re.search(r"affected users +unknown \(no user ids on the incident's error events\)", terminal)


def test_a_quiet_window_gets_a_short_draft_through_the_cli(tmp_path: Path) -> None:
    truth = _shop_files(5, tmp_path / "logs", incident=False)
    incident, draft, terminal = _build([tmp_path / "logs"], tmp_path / "out")
    assert all(v is None for v in incident["phases"].values())
    metrics = incident["metrics"]
    assert metrics["requests_total"] is None
    assert metrics["unknown_reasons"]["requests_total"] == "no anomaly found"
    failed = sum(s >= 500 for _, s in truth["edge"])
    errors = sum(r["level"] == "error" for r in truth["records"])
    assert metrics["window_totals"] == {
        "events": len(truth["edge"]) + len(truth["records"]),
        "error_events": errors + failed,
        "warning_events": 0,
        "requests": len(truth["edge"]),
        "failed_requests": failed,
    }
    headings = re.findall(r"(?m)^## (.+)$", draft)
    assert headings == ["Summary", "What was looked at", "Data quality"]
    assert "monitoring gap" not in draft
    looked = _section(draft, "What was looked at")
    first = min([t for t, _ in truth["edge"]] + [r["ts"] for r in truth["records"]])
    last = max([t for t, _ in truth["edge"]] + [r["ts"] for r in truth["records"]])
    assert f"from {first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} UTC" in looked
    assert "access.log" in looked
    assert "worker.jsonl" in looked
    assert f"{errors + failed:,} error events, {failed:,} failed of {len(truth['edge']):,} requests" in looked
    assert "Alerts: none fired in the window." in looked
    assert "no significant anomaly found" in terminal
    events = len(truth["edge"]) + len(truth["records"])
    assert re.search(
        rf"looked at +{events:,} events: {errors + failed:,} errors, 0 warnings, "
        rf"{len(truth['edge']):,} requests, {failed:,} failed",
        terminal,
    )
    # `pmtimeline report` regenerates the same short draft from what build saved.
    again = CliRunner().invoke(cli, ["report", str(tmp_path / "out"), "--no-images"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "out" / "postmortem.md").read_text(encoding="utf-8") == draft
    assert json.loads((tmp_path / "out" / "incident.json").read_text(encoding="utf-8"))["metrics"] == metrics


def test_a_quiet_window_names_its_alert_and_infers_nothing() -> None:
    synthetic = quiet(3)
    aggregates = aggregate(classify_changes(synthetic.events), CONFIG)
    sources = [SourceAccounting(name=s, events=int(n)) for s, n in synthetic.events["source"].value_counts().items()]
    incident = analyze(aggregates, sources, CONFIG)
    assert incident.metrics.window_totals["events"] == len(synthetic.events)
    draft = render_postmortem(incident, aggregates.notable, CONFIG)
    assert re.findall(r"(?m)^## (.+)$", draft) == ["Summary", "What was looked at", "Data quality"]
    looked = _section(draft, "What was looked at")
    fired = synthetic.events.loc[synthetic.events["alert_state"].eq("firing").fillna(False), "timestamp"].iloc[0]
    assert f"Alerts: 1 fired in the window: `DiskLow` fired at {fired:%Y-%m-%d %H:%M:%S} UTC" in looked
    resolved = synthetic.events.loc[synthetic.events["alert_state"].eq("resolved").fillna(False)].iloc[0]
    where = f"alerts/am.json:{resolved['line']}" if pd.notna(resolved["line"]) else "alerts/am.json"
    assert f"resolved at {resolved['timestamp']:%Y-%m-%d %H:%M:%S} UTC (`{where}`)" in looked
    assert "monitoring gap" not in draft
    assert "Root cause" not in draft
    assert "Action items" not in draft


def test_a_cost_model_or_slo_without_request_logs_is_unknown() -> None:
    # The outage's aggregates with every request count taken away: as if only application logs were read.
    _, aggregates = data()
    no_requests = {c: 0 for c in ("requests", "failed_requests", "edge_requests", "failed_edge_requests")}
    blind = replace(aggregates, counts=aggregates.counts.assign(**no_requests))
    phases = truth_phases()
    config = replace(CONFIG, slo=99.9, cost_per_failed_request=0.5, revenue_per_minute=100.0)
    metrics = compute_metrics(phases, blind, config)
    assert (metrics.requests_failed, metrics.error_budget_burn, metrics.estimated_cost) == (None, None, None)
    assert {metrics.unknown_reasons[k] for k in ("requests_failed", "error_budget_burn", "estimated_cost")} == {
        "no request logs"
    }
    assert metrics.error_events == compute_metrics(phases, aggregates, config).error_events
    incident = Incident(title="t", window_start=None, window_end=None, phases=phases, metrics=metrics)
    impact = _section(render_postmortem(incident, blind.notable, config), "Impact")
    assert "Estimated financial impact: unknown (no request logs)." in impact
    assert "Error budget consumed: unknown (no request logs)." in impact
    # A model that does not count requests still applies.
    revenue_only = compute_metrics(phases, blind, replace(CONFIG, revenue_per_minute=100.0))
    assert metrics.time_to_recover_s is not None
    assert revenue_only.estimated_cost == pytest.approx(100.0 * metrics.time_to_recover_s / 60, abs=0.01)


def test_incident_json_keeps_unknown_apart_from_zero() -> None:
    metrics = Metrics(
        requests_total=None,
        requests_failed=None,
        error_events=0,
        affected_users=0,
        affected_hosts=None,
        affected_endpoints=(),
        unknown_reasons={"requests_total": "no request logs", "affected_hosts": "no host names in the logs"},
    )
    data = json.loads(json.dumps(metrics.to_dict()))
    assert (data["requests_total"], data["affected_hosts"], data["affected_endpoints"]) == (None, None, [])
    assert (data["error_events"], data["affected_users"]) == (0, 0)
    again = Metrics.from_dict(data)
    assert again == metrics
    assert again.unknown_text("requests_total") == "unknown (no request logs)"
    assert again.unknown_text("error_rate_peak") == "unknown"


@pytest.mark.skipif(not (SHARED_DATA / "loghub").is_dir(), reason="the shared Loghub samples are absent")
def test_loghub_zookeeper_incident_counts_only_what_the_log_holds(tmp_path: Path) -> None:
    # A real system with no requests, no users and no hosts: its errors are counted, the rest unknown.
    log = SHARED_DATA / "loghub" / "Zookeeper" / "Zookeeper_2k.log"
    truth = pd.read_csv(log.with_name(log.name + "_structured.csv"))
    incident, draft, _ = _build([log], tmp_path / "out")
    if incident["phases"]["onset"] is None:
        pytest.skip("no anomaly found in this Zookeeper sample")
    times = pd.to_datetime(truth["Date"] + " " + truth["Time"].str.replace(",", "."), utc=True)
    error_times = list(times[truth["Level"].isin(["ERROR", "FATAL"])])
    metrics = incident["metrics"]
    assert metrics["error_events"] == _in_incident(error_times, incident)
    assert metrics["requests_total"] is None
    assert metrics["affected_users"] is None
    assert metrics["affected_hosts"] is None
    assert metrics["unknown_reasons"]["affected_hosts"] == "no host names in the logs"
    impact = _section(draft, "Impact")
    assert "Requests in the incident: unknown (no request logs)." in impact
    assert "Users affected: unknown (no user ids in the logs)." in impact
    assert "Hosts affected: unknown (no host names in the logs)." in impact


@pytest.mark.skipif(not (SHARED_DATA / "loghub").is_dir(), reason="the shared Loghub samples are absent")
def test_loghub_hdfs_quiet_window_says_what_was_looked_at(tmp_path: Path) -> None:
    log = SHARED_DATA / "loghub" / "HDFS" / "HDFS_2k.log"
    truth = pd.read_csv(log.with_name(log.name + "_structured.csv"))
    incident, draft, terminal = _build([log], tmp_path / "out")
    if any(incident["phases"].values()) or incident["exposure"]["actors"]:
        pytest.skip("this HDFS sample is not quiet for the analysis")
    totals = incident["metrics"]["window_totals"]
    assert totals["events"] == len(truth)
    assert totals["warning_events"] == int(truth["Level"].eq("WARN").sum())
    assert totals["error_events"] == int(truth["Level"].isin(["ERROR", "FATAL"]).sum())
    assert totals["requests"] is None
    assert re.findall(r"(?m)^## (.+)$", draft) == ["Summary", "What was looked at", "Data quality"]
    assert "requests: unknown (no request logs)" in _section(draft, "What was looked at")
    assert "monitoring gap" not in draft
    assert "no significant anomaly found" in terminal
    assert (
        f"looked at         {len(truth):,} events: {totals['error_events']:,} errors, "
        f"{totals['warning_events']:,} warnings, requests unknown (no request logs)"
    ) in terminal


def test_affected_users_are_unknown_not_zero_when_the_incident_has_no_error_event() -> None:
    """An attack of warnings (failed logins) with user ids on every line and no error event: who it
    hit is not in the errors, so affected users are unknown with that reason, never 0."""
    from synthetic_incidents import make_events

    t0 = pd.Timestamp("2024-05-02T10:00:00Z")
    records = [
        {"time": t0 + pd.Timedelta(seconds=5 * i), "level": "info", "message": "login succeeded", "user": f"u{i % 40}"}
        for i in range(240)
    ] + [
        {
            "time": t0 + pd.Timedelta(minutes=10, seconds=i),
            "level": "warning",
            "message": "login failed",
            "user": f"v{i}",
        }
        for i in range(300)
    ]
    events = make_events([{**r, "time": str(r["time"])} for r in sorted(records, key=lambda r: r["time"])])
    assert not (events["level"] == "error").any()
    aggregates = aggregate(events, CONFIG)
    phases: dict[str, pd.Timestamp | None] = {"onset": t0 + pd.Timedelta(minutes=10)}
    phases["recovered"] = t0 + pd.Timedelta(minutes=15)
    metrics = compute_metrics(phases, aggregates, CONFIG)
    assert metrics.error_events == 0
    assert metrics.affected_users is None
    assert metrics.unknown_text("affected_users") == "unknown (no error events in the incident)"
