"""The postmortem draft: its sections and facts, citations, blameless wording, templates, and safety."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from incident_sample import (
    HTML_PAYLOADS,
    MARKDOWN_PAYLOADS,
    PEOPLE,
    breach_exposure,
    sample_incident,
    sample_intervals,
    sample_notable,
    ts,
)
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pmtimeline.config import TimelineConfig
from pmtimeline.errors import ConfigError
from pmtimeline.incident import Evidence, Incident, Metrics, RootCauseCandidate
from pmtimeline.postmortem import default_template, postmortem_context, render_postmortem
from pmtimeline.sources import SourceAccounting

SECTIONS = (
    "Summary",
    "Impact",
    "Timeline",
    "Root cause analysis",
    "Detection",
    "Mitigation and recovery",
    "Action items",
    "Lessons learned",
    "Data quality",
    "Appendix",
)


def markdown() -> MarkdownIt:
    # GFM tables as GitHub renders them; linkify needs an extra package and adds nothing for code spans.
    return MarkdownIt("gfm-like", {"linkify": False})


def headings(text: str) -> list[tuple[str, str]]:
    tokens = markdown().parse(text)
    return [(tok.tag, tokens[i + 1].content) for i, tok in enumerate(tokens) if tok.type == "heading_open"]


def prose(tokens: list[Token]) -> str:
    """All text outside code spans/blocks (what a renderer would interpret), recursively."""
    out: list[str] = []
    for tok in tokens:
        if tok.type in ("code_inline", "code_block", "fence"):
            continue
        if tok.children:
            out.append(prose(tok.children))
        elif tok.type in ("text", "html_inline", "html_block"):
            out.append(tok.content)
    return "\n".join(out)


def draft(**config: object) -> str:
    return render_postmortem(
        sample_incident(),
        sample_notable(),
        TimelineConfig(**config),
        intervals=sample_intervals(),  # type: ignore[arg-type]
    )


def section(text: str, name: str) -> str:
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"section {name} missing"
    return match.group(1)


def test_draft_has_every_section_in_order() -> None:
    text = draft()
    level2 = [content for tag, content in headings(text) if tag == "h2"]
    assert level2 == list(SECTIONS)
    assert headings(text)[0] == ("h1", "Postmortem: Checkout failures after payments deploy")


def test_summary_states_the_true_facts() -> None:
    summary = section(draft(), "Summary")
    # onset 10:00:30 -> recovered 10:24:00 is 23 min 30 s; 14,100 of 28,200 failed; detection 8 min 30 s.
    assert "2024-03-01 10:00:30" in summary
    assert "2024-03-01 10:24:00" in summary
    assert "23 min 30 s" in summary
    assert "14,100 of 28,200 requests failed (50.0%)" in summary
    assert "1,234 users were affected" in summary
    assert "detected 8 min 30 s after onset" in summary
    assert "`payments.log:1042`" in summary


def test_every_phase_and_candidate_evidence_is_cited() -> None:
    incident = sample_incident()
    text = draft()
    timeline = section(text, "Timeline")
    for phase, evidence in incident.phase_evidence.items():
        row = next(line for line in timeline.splitlines() if f"**{phase.capitalize()}**" in line)
        assert f"`{evidence[0].citation()}`" in row, phase
    rca = section(text, "Root cause analysis")
    for candidate in incident.root_cause_candidates:
        for ev in candidate.evidence:
            assert f"`{ev.citation()}`" in rca
    # Every timeline row ends with a source:line citation.
    rows = [line for line in timeline.splitlines() if line.startswith("| 2024-")]
    assert len(rows) >= 10
    assert all(re.search(r"\| `[^`|]+:\d+` \|$", row) for row in rows), rows


def test_timeline_shows_display_tz_column_only_when_set() -> None:
    without = section(draft(), "Timeline")
    assert without.splitlines()[1] == "| Time (UTC) | Event | Evidence |"
    with_tz = section(draft(display_tz="America/New_York"), "Timeline")
    assert "| Time (UTC) | Time (America/New_York) | Event | Evidence |" in with_tz
    onset_row = next(line for line in with_tz.splitlines() if "**Onset**" in line)
    local = datetime(2024, 3, 1, 10, 0, 30, tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") == "2024-03-01 05:00:30 EST"
    assert "| 2024-03-01 10:00:30 | 2024-03-01 05:00:30 EST |" in onset_row


def test_timeline_is_in_time_order_with_alerts_changes_and_first_errors() -> None:
    timeline = section(draft(), "Timeline")
    times = [line.split(" | ")[0].lstrip("| ") for line in timeline.splitlines() if line.startswith("| 2024-")]
    assert times == sorted(times)
    assert "Alert `PaymentsHighErrorRate` on `payments` fired" in timeline
    assert "Alert `PaymentsHighErrorRate` acknowledged" in timeline
    assert "Change (`deploy`) on `payments`" in timeline
    assert "Change (`rollback`) on `payments`" in timeline
    for service in ("payments", "api-gateway", "db"):
        assert f"First error on `{service}`" in timeline


def test_alerts_are_derived_from_events_without_intervals() -> None:
    text = render_postmortem(sample_incident(), sample_notable(), TimelineConfig())
    assert "Alert `PaymentsHighErrorRate` on `payments` fired | `alerts.json:3`" in text
    # each state change cites the event that reported it, not the line where the alert fired
    assert "Alert `PaymentsHighErrorRate` acknowledged | `alerts.json:4`" in text
    assert "Alert `PaymentsHighErrorRate` resolved | `alerts.json:9`" in text
    assert "still firing at the end of the data: `DbConnectionsHigh`" in section(text, "Mitigation and recovery")


def test_cost_estimate_only_with_a_cost_model() -> None:
    assert "Estimated financial impact" not in draft()
    text = draft(cost_per_failed_request=0.5, revenue_per_minute=100.0)
    # 14,100 failed x 0.5 + 23.5 min x 100 = 7,050 + 2,350.
    assert "**≈ 9,400**" in section(text, "Impact")
    assert "an estimate" in section(text, "Impact")
    assert "| Estimated financial impact (estimate) | 9,400 |" in section(text, "Appendix")


def test_analysis_cost_estimate_wins_when_present() -> None:
    incident = sample_incident(metrics=dataclasses.replace(sample_incident().metrics, estimated_cost=1234.0))
    text = render_postmortem(incident, sample_notable(), TimelineConfig(cost_per_failed_request=1.0))
    assert "**≈ 1,234**" in text


def test_no_person_named_in_the_draft() -> None:
    notable = sample_notable()
    assert notable["user"].dropna().nunique() >= 3
    incident = sample_incident(exposure=breach_exposure())
    text = render_postmortem(incident, notable, TimelineConfig(), intervals=sample_intervals())
    names = [*PEOPLE, *notable["user"].dropna().unique(), "mallory", "erin", "frank"]
    for name in names:
        assert name.lower() not in text.lower(), name
    # The deploy message is still quoted, with the user replaced.
    assert "deploy payments v2.3.1 started by [user]" in text


def test_breach_exposure_and_its_action_items() -> None:
    incident = sample_incident(exposure=breach_exposure())
    text = render_postmortem(incident, sample_notable(), TimelineConfig(), intervals=sample_intervals())
    assert ("h3", "Breach exposure") in headings(text)
    impact = section(text, "Impact")
    assert "`203.0.113.7`" in impact
    assert "Accounts touched: **3**" in impact
    assert "`app.log:900`" in impact
    actions = section(text, "Action items")
    assert "Reset the credentials of the accounts touched" in actions
    assert "Rate\\-limit and lock out repeated failed logins" in actions
    assert "4,020 failed attempts from 2 actor\\(s\\)" in actions


def test_a_breach_draft_speaks_of_compromised_accounts_and_their_data_operations() -> None:
    """Issue 15: a breach is accounts taken over and what was done with them, not "the service was
    degraded" and "Users affected: unknown" while the exposure knows the accounts."""
    exposure = dataclasses.replace(breach_exposure(), operation_counts=(("export", 7), ("contact change", 2)))
    metrics = dataclasses.replace(
        sample_incident().metrics,
        affected_users=None,
        unknown_reasons={**sample_incident().metrics.unknown_reasons, "affected_users": "no user ids"},
    )
    incident = sample_incident(exposure=exposure, metrics=metrics)
    text = render_postmortem(incident, sample_notable(), TimelineConfig(), intervals=sample_intervals())
    summary = section(text, "Summary")
    assert "under a credential attack" in summary
    assert "degraded" not in summary
    # carol99 and erin from 203.0.113.7: two accounts, counted, never named.
    assert "2 account(s) compromised, then data operations by them: export 7; contact change 2" in summary
    impact = section(text, "Impact")
    assert "Users affected: **2** whose accounts were compromised" in impact
    assert "Users affected: unknown" not in text
    assert "| Users affected | 2 (accounts compromised) |" in text
    # Without a breach the rule of the other helpers holds: unknown, with its reason.
    plain = render_postmortem(
        sample_incident(metrics=metrics), sample_notable(), TimelineConfig(), intervals=sample_intervals()
    )
    assert "Users affected: unknown (no user ids)" in plain
    assert "degraded" in section(plain, "Summary")


def test_action_items_follow_the_evidence() -> None:
    actions = section(draft(), "Action items")
    rows = [line for line in actions.splitlines() if line.startswith("| ") and "TBD" in line]
    kinds = [tuple(row.split(" | ")[:2]) for row in rows]
    # a deploy 138 s before onset (no canary); detection 8.5 min > 5 min; partial data; rejected lines.
    assert kinds == [("| P1", "prevent"), ("| P2", "detect"), ("| P3", "process"), ("| P3", "process")]
    assert all(" | TBD | " in row for row in rows)
    assert "`deploy.log:41`" in rows[0]
    assert "detection took 8 min 30 s after onset" in rows[1]

    # No alert, a slow recovery, quick detection.
    incident = sample_incident(
        phases={**sample_incident().phases, "detected": ts("10:02:00"), "recovered": ts("11:00:00")},
        metrics=Metrics(time_to_detect_s=90.0, time_to_recover_s=3570.0),
        partial=False,
        sources=(),
    )
    notable = sample_notable()
    notable = notable[notable["kind"] != "alert"]
    other = section(render_postmortem(incident, notable, TimelineConfig()), "Action items")
    kinds = [tuple(line.split(" | ")[:2]) for line in other.splitlines() if "TBD" in line]
    # the deploy; no alert fired; 18 min from detection (by hand) to the rollback.
    assert kinds == [("| P1", "prevent"), ("| P1", "detect"), ("| P2", "mitigate")]
    assert "no alert fired during the incident" in other
    assert "Make rollback a one\\-step" in other


def test_data_quality_accounts_for_every_source() -> None:
    dq = section(draft(), "Data quality")
    rows = [line for line in dq.splitlines() if line.startswith("| `")]
    assert len(rows) == 4
    gateway = next(r for r in rows if "gateway.log" in r)
    assert "| 60,000 | 59,990 | 0 | 10 (unparseable: 10) |" in gateway
    payments = next(r for r in rows if "payments.log" in r)
    assert "| 500 |" in payments
    # Accounting without counted times (an older incident.json) says what it knows: the zone naive times were read in.
    assert "naive times read in `Europe/Berlin` (not counted)" in payments
    db = next(r for r in rows if "db.log" in r)
    assert "| yes | yes: `file truncated at 10:30` |" in db
    assert "Redaction was **on**" in dq
    off = render_postmortem(sample_incident(redacted=False), sample_notable(), TimelineConfig())
    assert "Redaction was **off**" in section(off, "Data quality")


def test_appendix_has_metrics_and_chart_link() -> None:
    text = render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), chart_image="timeline.png")
    appendix = section(text, "Appendix")
    assert "| Time to detect | 8 min 30 s |" in appendix
    assert "| Failed requests | 14,100 |" in appendix
    assert "![Incident timeline chart](timeline.png)" in appendix
    html = markdown().render(text)
    assert '<img src="timeline.png" alt="Incident timeline chart"' in html
    assert "![" not in section(draft(), "Appendix")
    odd = render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), chart_image="my chart (1).png")
    assert "![Incident timeline chart](my%20chart%20%281%29.png)" in odd


def test_no_anomaly_and_no_events_render_without_crash() -> None:
    incident = Incident(title="Quiet night", window_start=ts("09:00:00"), window_end=ts("11:00:00"), phases={})
    text = render_postmortem(incident, sample_notable().iloc[0:0], TimelineConfig())
    # A window without an incident gets the short draft (tests/test_impact.py checks its facts).
    assert [c for tag, c in headings(text) if tag == "h2"] == ["Summary", "What was looked at", "Data quality"]
    assert "No significant anomaly was found" in section(text, "Summary")
    assert "monitoring gap" not in text


def test_regenerating_from_incident_json_gives_the_same_draft() -> None:
    incident = sample_incident(exposure=breach_exposure())
    again = Incident.from_dict(incident.to_dict())
    cfg = TimelineConfig(display_tz="Europe/Berlin")
    assert render_postmortem(again, sample_notable(), cfg) == render_postmortem(incident, sample_notable(), cfg)


def test_custom_template_replaces_the_built_in_one() -> None:
    template = (
        "# {{ title }}\n{{ summary }}\n{% for row in timeline %}* {{ row.utc }} {{ row.evidence }}\n{% endfor %}"
        "{{ 'x|<b>' | code }} {{ '*a*' | md }}\n"
    )
    text = render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), template_text=template)
    assert text.startswith("# Checkout failures after payments deploy\nFrom 2024-03-01 10:00:30")
    assert "* 2024-03-01 10:00:30 `payments.log:1042`" in text
    assert "`x|<b>` \\*a\\*" in text
    assert "## Summary" not in text


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% for x in timeline %}", "postmortem template error at line 1"),
        ("{{ no_such_value }}", "'no_such_value' is undefined"),
        ("{{ title.__class__.__mro__ }}", "postmortem template error"),
        ("{{ ''.__class__.__subclasses__() }}", "postmortem template error"),
        ("{{ 1 / 0 }}", "postmortem template error: ZeroDivisionError: division by zero"),
        ("{{ title + 1 }}", "postmortem template error: TypeError"),
        ("{{ timeline[999].utc }}", "postmortem template error"),
    ],
)
def test_broken_or_unsafe_template_is_a_config_error(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), template_text=template)
    assert "\n" not in str(info.value)


def test_context_is_documented_and_pre_escaped() -> None:
    context = postmortem_context(sample_incident(), sample_notable(), TimelineConfig(), intervals=sample_intervals())
    import pmtimeline.postmortem as module

    assert module.__doc__ is not None
    for name in context:
        assert re.search(rf"^{name} ", module.__doc__, flags=re.M), f"{name} is not documented"
    assert "{{" in default_template()


def injected(payload: str) -> tuple[Incident, pd.DataFrame]:
    """The sample with ``payload`` in every log-derived string: messages, services, sources, names, title."""
    ev = Evidence(ts("10:00:30"), payload, 7, payload, service=payload)
    base = sample_incident()
    incident = dataclasses.replace(
        base,
        title=payload,
        phase_evidence={phase: (ev,) for phase in base.phases},
        phase_overridden=(),
        metrics=dataclasses.replace(
            base.metrics,
            affected_services=(payload, "payments"),
            affected_hosts=(payload,),
            affected_endpoints=((payload, 3),),
            latency_ms={payload: {"p50": 1.0}},
        ),
        root_cause_candidates=(RootCauseCandidate(1, "change", ts("09:58:00"), payload, payload, 0.9, (ev,)),),
        sources=(
            SourceAccounting(name=payload, format=payload, partial=True, partial_reason=payload, time_zone="UTC"),
        ),
        partial_reasons=(payload,),
        anomaly_signal="errors",
        exposure=dataclasses.replace(
            breach_exposure(),
            data_operations=(ev,),
            actors=(dataclasses.replace(breach_exposure().actors[0], actor=payload),),
        ),
    )
    notable = sample_notable(background=30)
    for column in ("message", "service", "source", "alert_name", "change_type"):
        mask = notable[column].notna() | notable["kind"].isin(["alert", "change"])
        notable.loc[mask, column] = payload
    return incident, notable


@pytest.mark.parametrize("payload", [*MARKDOWN_PAYLOADS, *HTML_PAYLOADS, "{{ 7*7 }}", "`` ` ``` x", "a\\|b"])
def test_payloads_render_inert(payload: str) -> None:
    incident, notable = injected(payload)
    intervals = sample_intervals().assign(alert_name=payload, service=payload, source=payload)
    text = render_postmortem(incident, notable, TimelineConfig(display_tz="Europe/Berlin"), intervals=intervals)
    md = markdown()
    tokens = md.parse(text)
    html = md.renderer.render(tokens, md.options, {})
    for tag in ("<img", "<a ", "<a>", "<details", "<script", "<summary", "<span", "<!--"):
        assert tag not in html.lower(), tag
    # The headings are exactly the template's: none came from data.
    found = [(tok.tag, tokens[i + 1].content) for i, tok in enumerate(tokens) if tok.type == "heading_open"]
    assert [c for tag, c in found if tag == "h2"] == list(SECTIONS)
    assert {tag for tag, _ in found} == {"h1", "h2", "h3"}
    allowed_h3 = ("Breach exposure", "Open questions for the team", "Root-cause candidates ruled out as noise")
    assert all(c.startswith("Candidate ") or c in allowed_h3 for tag, c in found if tag == "h3")
    assert not any(tok.type in ("html_inline", "html_block") for tok in _walk(tokens))
    # Outside code spans no payload survives, except in the title, which is escaped prose (shown literally).
    outside = prose(tokens[3:])
    if len(payload) > 3:
        assert payload.strip() not in outside
    if payload == "{{ 7*7 }}":
        assert "`{{ 7*7 }}`" in text
    # Every table row keeps its column count: no pipe from data split a cell.
    for table in re.findall(r"((?:^\|.*\|$\n?)+)", text, flags=re.M):
        widths = {len(_cells(row)) for row in table.strip().splitlines()}
        assert len(widths) == 1, table


def _walk(tokens: list[Token]) -> list[Token]:
    out = []
    for tok in tokens:
        out.append(tok)
        if tok.children:
            out.extend(_walk(tok.children))
    return out


def _cells(row: str) -> list[str]:
    return re.split(r"(?<!\\)\|", row.strip().strip("|"))


def test_title_payload_is_escaped_prose() -> None:
    incident = sample_incident(title="@everyone <img src=x> [x](javascript:alert(1))\n# Root cause")
    text = render_postmortem(incident, sample_notable(), TimelineConfig())
    first = text.splitlines()[0]
    assert first.startswith(
        "# Postmortem: \\@everyone &lt;img src=x&gt; \\[x\\]\\(javascript\\:alert\\(1\\)\\)⏎\\# Root"
    )
    assert headings(text)[0][0] == "h1"
    assert "<img" not in markdown().render(text)


def test_alerts_long_before_onset_did_not_detect_the_incident() -> None:
    early = sample_intervals().assign(
        fired=[ts("09:05:00"), ts("09:10:00")],
        acknowledged=pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"),
        resolved=[ts("09:20:00"), ts("09:30:00")],
    )
    text = render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), intervals=early)
    detection = section(text, "Detection")
    assert "No alert fired during the incident" in detection
    assert "2 alert(s) fired at other times in the window" in detection
    assert "no alert fired during the incident" in section(text, "Action items")
    during = section(draft(), "Detection")
    assert "First alert of the incident: `PaymentsHighErrorRate` fired at 2024-03-01 10:09:00 UTC" in during
    assert "2 alert(s) fired during the incident, 2 in the whole window" in during


def test_the_sample_draft_concludes_trigger_first() -> None:
    # The bundled sample, built as a user would: the Summary names trigger, mechanism, detection and
    # mitigation with their lines; at most five candidates, the deploy first; the noise in the appendix.
    from conftest import SAMPLE_LOGS

    from pmtimeline.api import load

    text = load(str(SAMPLE_LOGS), source_tz={"*ledger.log": "Europe/Amsterdam"}).postmortem()
    summary = section(text, "Summary")
    assert "Most likely trigger (to confirm): `deploy in payments-api" in summary
    assert "deploy/argocd.logfmt:11`)" in summary
    assert "FATAL: sorry, too many clients already" in summary
    assert "in 305 error events" in summary
    assert "ledger/ledger.log:70`)" in summary
    assert "detected by the alert `HighErrorRate`" in summary
    assert "mitigated by `rollback to v2.13.4 started`" in summary
    assert "deploy/argocd.logfmt:17`)" in summary
    causes = section(text, "Root cause analysis")
    candidates = [c for tag, c in headings(text) if tag == "h3" and c.startswith("Candidate ")]
    assert 1 <= len(candidates) <= 5
    assert candidates[0] == "Candidate 1: Change shortly before onset"
    assert "Why it ranks here:" in causes
    mechanism = "`Caused by: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already`"
    assert f"**Mechanism:** {mechanism}" in causes
    appendix = section(text, "Appendix")
    assert "deploy in accounts-service" in appendix
    assert "hosts/syslog.1.gz:14`" in appendix  # the fluent-bit restart
    assert "accounts-service" not in causes
    actions = section(text, "Action items")
    assert "max\\_connections" in actions
    assert "canary" in actions


def test_citations_are_whole_and_never_defanged() -> None:
    # A Kubernetes container log path passes 120 characters, and remote syslog directories are named
    # after hosts: the citation must still open that file at that line.
    pod = "checkout-api-7d9f8b6c4-x2x9z_shop_checkout-api-" + "0123456789abcdef" * 4
    long_path = f"/var/log/containers/{pod}.log"
    host_path = "/var/log/remote/web-01.example.com/syslog"
    incident = sample_incident()
    phase_evidence = {
        **incident.phase_evidence,
        "onset": (
            Evidence(incident.phases["onset"], long_path, 4211, "ERROR pool exhausted at https://db.example.com"),
        ),
        "mitigated": (Evidence(incident.phases["mitigated"], host_path, 17, "rollback to v1"),),
    }
    text = render_postmortem(
        dataclasses.replace(incident, phase_evidence=phase_evidence),
        sample_notable(),
        TimelineConfig(),
        intervals=sample_intervals(),  # type: ignore[arg-type]
    )
    assert len(long_path) > 120
    assert f"`{long_path}:4211`" in section(text, "Timeline")
    assert f"`{host_path}:17`" in section(text, "Mitigation and recovery")
    assert "hxxps://db[.]example[.]com" in section(text, "Timeline")  # the message is still defanged


def test_each_episode_of_a_flapping_alert_cites_its_own_notifications() -> None:
    from pmtimeline.alert_intervals import alert_intervals
    from pmtimeline.schema import conform_events

    def note(time: str, line: int, state: str) -> dict[str, object]:
        return {
            "timestamp": ts(time),
            "source": "alerts/am.ndjson",
            "line": line,
            "kind": "alert",
            "alert_id": "flap",
            "alert_name": "CheckoutLatency",
            "alert_state": state,
            "service": "payments",
            "message": f"[{state.upper()}] CheckoutLatency",
        }

    flapping = conform_events(
        pd.DataFrame(
            [
                note("10:03:00", 11, "firing"),
                note("10:04:00", 12, "firing"),  # a resend
                note("10:06:00", 13, "resolved"),
                note("10:08:00", 14, "firing"),
                note("10:09:30", 15, "acknowledged"),
                note("10:12:00", 16, "resolved"),
            ]
        )
    )
    text = render_postmortem(sample_incident(), sample_notable(), TimelineConfig(), intervals=alert_intervals(flapping))
    timeline = section(text, "Timeline")
    for time, state, line in [
        ("10:03:00", "on `payments` fired", 11),
        ("10:06:00", "resolved", 13),
        ("10:08:00", "on `payments` fired", 14),
        ("10:09:30", "acknowledged", 15),
        ("10:12:00", "resolved", 16),
    ]:
        assert f"| 2024-03-01 {time} | Alert `CheckoutLatency` {state} | `alerts/am.ndjson:{line}` |" in timeline


def test_noise_goes_to_the_appendix_and_raises_no_question() -> None:
    restart = Evidence(ts("09:20:00"), "syslog", 14, "fluent-bit.service: Scheduled restart job")
    origin_ev = Evidence(ts("10:00:30"), "payments.log", 1042, "ERROR connection pool exhausted (5/5 in use)")
    candidates = (
        RootCauseCandidate(
            1,
            "first_failing_service",
            origin_ev.time,
            "payments",
            "errors began first in payments",
            0.55,
            (origin_ev,),
            why="Where the failure began.",
        ),
        RootCauseCandidate(
            2,
            "change",
            restart.time,
            "fluent-bit",
            "restart in fluent-bit 40 min 30 s before onset",
            0.05,
            (restart,),
            why="A routine restart of a service that did not fail.",
            noise=True,
        ),
    )
    text = render_postmortem(sample_incident(root_cause_candidates=candidates), sample_notable(), TimelineConfig())
    causes = section(text, "Root cause analysis")
    assert "### Candidate 1: First failing service" in causes
    assert "Candidate 2" not in causes
    assert "The events show no clear trigger" in causes
    assert "`syslog:14`" not in causes  # no question about the restart
    appendix = section(text, "Appendix")
    assert "`restart in fluent-bit 40 min 30 s before onset` (`syslog:14`): A routine restart" in appendix
    # Without a trigger, the Summary says so and names the strongest lead.
    assert "No trigger (change or external cause) was found in these logs" in section(text, "Summary")
