"""The blameless postmortem draft (``postmortem.md``), rendered from an :class:`~pmtimeline.incident.Incident`.

:func:`render_postmortem` returns Markdown; it writes nothing. The draft is made of facts the
analysis can back with evidence: every time it states cites the ``source:line`` it comes from, and
every value taken from a log (messages, service names, paths, alert names, file names) is put in an
inline code span by :mod:`pmtimeline.escaping`, so no heading, link, image, mention, HTML or comment
can come from a log line. People are counted, never named: user fields are not printed, and user
names found in the events are replaced by ``[user]`` in quoted messages.

Templates
---------
The built-in Jinja2 template is ``pmtimeline/report_templates/postmortem.md.j2``; a user template
(``--template FILE``) replaces it. Templates run in a :class:`jinja2.sandbox.SandboxedEnvironment`
with autoescape off. Every string in the context is already escaped Markdown (safe to print as is);
the filters ``code`` (inline code span) and ``md`` (backslash-escaped prose) escape anything else,
and ``cell`` is ``code`` for a table cell. The context (see :func:`postmortem_context`):

===================  ==========================================================================
name                 value
===================  ==========================================================================
title                the incident title (escaped prose)
summary              one paragraph of facts
has_onset            bool: an anomaly was found
quiet                bool: no phase and no breach: the built-in draft is then the short
                     ``postmortem_quiet.md.j2``, which says what was looked at and infers nothing
looked_at            list of bullet strings: window, sources, signals, alerts and changes examined
                     (empty unless ``quiet``)
impact               list of bullet strings (without the leading ``-``)
endpoints            list of ``{path, failed}`` (most failed first, at most 10)
latency              list of ``{period, p50, p95, p99}`` (milliseconds as text)
exposure             list of bullet strings (empty unless a breach was found)
cost                 the financial-impact sentence, or None when no cost model was given
timeline             list of ``{utc, local, event, evidence}`` table cells, in time order
display_tz           the second zone's name (escaped), or None
root_causes          the candidates shown (at most 5, not noise), best first: list of ``{rank, kind,
                     summary, service, time, score, why, evidence: [str], new_errors: [str], after}``
conclusion           list of sentences for the Summary: trigger, mechanism, detection, mitigation
                     (empty without an onset)
mechanism            the mechanism sentence (failure signature, count, first line), or None
noise                list of strings: the candidates ruled out, with why (for the appendix)
open_questions       list of strings
detection            list of bullet strings
mitigation           list of bullet strings
action_items         list of ``{priority, type, item, owner, why}`` table cells (owner is ``TBD``;
                     ``why`` is the fact with its citations)
lessons              ``{went_well, went_wrong, got_lucky}``: lists of prompt strings
sources              list of ``{name, format, lines_read, events, continuation_lines, rejected,
                     outside_window, duplicates, zone, year_inferred, partial}`` table cells
data_quality_notes   list of bullet strings (redaction, partial data, unbalanced accounting)
redacted             bool
metrics              list of ``{name, value}`` (the appendix table)
chart_image          the chart's link target (percent-encoded), or None
phases               ``{phase: "YYYY-MM-DD HH:MM:SS" or None}`` (UTC)
===================  ==========================================================================
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd
from jinja2.sandbox import SandboxedEnvironment

from pmtimeline.action_items import derive_action_items
from pmtimeline.aggregate import MAX_BUCKETS, SPREAD_FACTOR
from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.config import PHASES, TimelineConfig, check_zone
from pmtimeline.errors import ConfigError
from pmtimeline.escaping import markdown_cell, markdown_code, markdown_text
from pmtimeline.exposure import operation_kind
from pmtimeline.incident import Actor, Evidence, Incident, Metrics, RootCauseCandidate, duration_words
from pmtimeline.schema import ERROR_LEVELS

#: Detection slower than this suggests an alerting action item.
DETECTION_LAG_ACTION_S: Final = 5 * 60
#: Recovery slower than this suggests a runbook/rollback action item.
LONG_RECOVERY_S: Final = 30 * 60
#: A change this close before onset suggests a change-safety action item.
CHANGE_BEFORE_ONSET: Final = pd.Timedelta("2h")
#: An alert that fired this long before onset still counts as detecting the incident.
ALERT_LEAD: Final = pd.Timedelta("5min")
#: Change types that can mitigate an incident when they happen after onset.
MITIGATING_CHANGES: Final = frozenset(
    {"rollback", "restart", "failover", "reroute", "scale", "block", "feature_flag", "config"}
)
_MESSAGE_LIMIT: Final = 160
#: A citation is never shortened nor defanged (a cut path cites nothing, and Kubernetes' container log
#: paths pass 120 characters; a directory may be named after a host); this bounds an absurd name only.
_CITATION_LIMIT: Final = 1024
_MAX_TIMELINE_ALERT_ROWS: Final = 30
_MAX_TIMELINE_CHANGE_ROWS: Final = 15
_MAX_TIMELINE_ERROR_ROWS: Final = 15
_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_PHASE_MEANING: Final = {
    "onset": "impact began",
    "detected": "the incident was detected",
    "mitigated": "impact was mitigated",
    "recovered": "the service recovered",
    "resolved": "the incident was resolved",
}
_CANDIDATE_KIND: Final = {
    "change": "Change shortly before onset",
    "external": "External trigger",
    "new_error_template": "New error pattern",
    "first_failing_service": "First failing service",
}
_LATENCY_PERIODS: Final = frozenset({"before", "during", "after"})
TEMPLATE_NAME: Final = "postmortem.md.j2"
#: The built-in draft of a window without an incident (no phase, no breach).
QUIET_TEMPLATE_NAME: Final = "postmortem_quiet.md.j2"


def default_template(name: str = TEMPLATE_NAME) -> str:
    """The text of a built-in postmortem template (the incident draft by default)."""
    return resources.files("pmtimeline").joinpath("report_templates", name).read_text(encoding="utf-8")


def render_postmortem(
    incident: Incident,
    notable: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
    chart_image: str | None = None,
    template_text: str | None = None,
) -> str:
    """Render the postmortem draft as Markdown.

    Args:
        incident: the analysis result.
        notable: the notable events (an event frame: warnings and worse, failed requests, changes,
            alerts, a sample of the rest); already redacted when redaction is on.
        config: title, ``display_tz`` and the cost model are read from it.
        intervals: alert intervals (``alert_id, alert_name, service, severity, fired, acknowledged,
            resolved, source, line, summary`` and each state's ``*_source``/``*_line``, see
            :mod:`pmtimeline.alert_intervals`); derived from the alert events of ``notable`` when None.
        chart_image: a relative path or URL of the chart image to link in the appendix.
        template_text: a Jinja2 template replacing the built-in one (read by the caller).

    Raises:
        ConfigError: the template does not compile or fails while rendering.
    """
    context = postmortem_context(incident, notable, config, intervals=intervals, chart_image=chart_image)
    if template_text is None and context["quiet"]:
        # A window without an incident gets the short draft: no sections to fill with guesses.
        template_text = default_template(QUIET_TEMPLATE_NAME)
    try:
        template = compile_template(template_text if template_text is not None else default_template())
        text = template.render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"postmortem template error at line {exc.lineno}: {_one_line(exc.message)}") from exc
    except jinja2.TemplateError as exc:
        raise ConfigError(f"postmortem template error: {_one_line(exc.message)}") from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # Expressions in a user template fail like Python does ({{ 1 / 0 }}, {{ title + 1 }}).
        raise ConfigError(f"postmortem template error: {type(exc).__name__}: {_one_line(str(exc))}") from exc
    # Collapse the blank-line runs that skipped template blocks leave behind.
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


@functools.lru_cache(maxsize=8)
def compile_template(text: str) -> jinja2.Template:
    """A postmortem template compiled in the sandbox that :func:`render_postmortem` renders in
    (compiled once per text and process).

    Raises:
        jinja2.TemplateSyntaxError: the template does not compile.
    """
    env = SandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["code"] = markdown_code
    env.filters["md"] = markdown_text
    env.filters["cell"] = markdown_cell
    return env.from_string(text)


def postmortem_context(
    incident: Incident,
    notable: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
    chart_image: str | None = None,
) -> dict[str, Any]:
    """The values a postmortem template gets (documented in the module docstring); all pre-escaped."""
    facts = _Facts.build(incident, notable, config, intervals)
    return {
        "title": markdown_text(incident.title, limit=200),
        "summary": facts.summary(),
        "has_onset": incident.phase("onset") is not None,
        "quiet": facts.quiet(),
        "looked_at": facts.looked_at() if facts.quiet() else [],
        "impact": facts.impact(),
        "endpoints": [
            {"path": markdown_cell(path, 120), "failed": f"{n:,}"}
            for path, n in (incident.metrics.affected_endpoints or ())[:10]
        ],
        "latency": facts.latency(),
        "exposure": facts.exposure(),
        "cost": facts.cost(),
        "timeline": facts.timeline(),
        "display_tz": _zone_label(config.display_tz) if config.display_tz else None,
        "root_causes": facts.root_causes(),
        "conclusion": facts.conclusion(),
        "mechanism": facts.mechanism(),
        "noise": facts.noise(),
        "open_questions": facts.open_questions(),
        "detection": facts.detection(),
        "mitigation": facts.mitigation(),
        "action_items": facts.action_items(),
        "lessons": facts.lessons(),
        "sources": facts.sources(),
        "data_quality_notes": facts.data_quality_notes(),
        "redacted": incident.redacted,
        "metrics": facts.metrics_table(),
        "chart_image": quote(chart_image, safe="/._-~") if chart_image else None,
        "phases": {p: _utc(incident.phase(p)) or None for p in PHASES},
    }


# --------------------------------------------------------------------------------------------------
# formatting helpers


def _zone_label(zone: str) -> str:
    # A validated zone name (Europe/Berlin, +01:00) has no Markdown meaning; escape anything else.
    return zone if re.fullmatch(r"[A-Za-z0-9_/+:-]+", zone) else markdown_text(zone)


def _one_line(text: str | None) -> str:
    return " ".join((text or "unknown error").split())


def _cite(citation: str, cell: bool = False) -> str:
    """A ``source:line`` citation as a code span (in a table cell when ``cell``): whole and as
    written, so that it opens the line it names."""
    return (markdown_cell if cell else markdown_code)(citation, _CITATION_LIMIT, defang=False)


def _utc(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).tz_convert("UTC").strftime(_TIME_FORMAT)


def _percent(fraction: float | None) -> str:
    return "unknown" if fraction is None else f"{100 * fraction:.1f}%"


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{int(value):,}"


def _unknown(metrics: Metrics, name: str) -> str:
    """``unknown (no request logs)``: why a metric is None, as Markdown (a reason read from a
    hand-edited incident.json is escaped)."""
    text = metrics.unknown_text(name)
    return text if re.fullmatch(r"[A-Za-z0-9 ,'()-]+", text) else markdown_text(text, limit=200)


def _code_list(values: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(markdown_code(v, 80) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _value(v: Any) -> Any:
    """None for missing values of any kind (None, NA, NaN, NaT)."""
    if v is None:
        return None
    try:
        return None if pd.isna(v) else v
    except (TypeError, ValueError):
        return v


class _PeopleFilter:
    """Replaces the user names seen in the events by ``[user]`` in quoted text (blameless: count, don't name)."""

    def __init__(self, names: Iterable[str]) -> None:
        distinct = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)[:5000]
        self._pattern = (
            re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in distinct), re.IGNORECASE) if distinct else None
        )

    def __call__(self, text: str) -> str:
        return self._pattern.sub("[user]", text) if self._pattern else text


# --------------------------------------------------------------------------------------------------
# the facts of one draft


@dataclass
class _Alert:
    name: str
    service: str | None
    fired: pd.Timestamp | None
    acknowledged: pd.Timestamp | None
    resolved: pd.Timestamp | None
    citation: str  # where it fired (else its first event)
    # Each state change is cited where it was reported, never where the alert fired.
    acknowledged_citation: str = ""
    resolved_citation: str = ""


@dataclass
class _Facts:
    incident: Incident
    notable: pd.DataFrame
    config: TimelineConfig
    alerts: list[_Alert]
    people: _PeopleFilter
    zone: Any
    intervals: pd.DataFrame | None = None

    @classmethod
    def build(
        cls, incident: Incident, notable: pd.DataFrame, config: TimelineConfig, intervals: pd.DataFrame | None
    ) -> _Facts:
        names: list[str] = []
        if "user" in notable.columns:
            names.extend(str(u) for u in notable["user"].dropna().unique())
        names.extend(a.actor for a in incident.exposure.actors if a.actor_kind == "user")
        names.extend(incident.exposure.accounts_touched)
        for actor in incident.exposure.actors:
            names.extend(actor.accounts)
        if intervals is None:
            intervals = alert_intervals(notable) if not notable.empty and "kind" in notable.columns else None
        alerts = _alerts_from_intervals(intervals) if intervals is not None else []
        zone = check_zone(config.display_tz) if config.display_tz else None
        return cls(incident, notable, config, alerts, _PeopleFilter(names), zone, intervals)

    # -- small pieces --------------------------------------------------------------------------

    def quote(self, text: object, limit: int = _MESSAGE_LIMIT) -> str:
        return markdown_code(self.people(str(text)), limit)

    def quote_cell(self, text: object, limit: int = _MESSAGE_LIMIT) -> str:
        return markdown_cell(self.people(str(text)), limit)

    def phase_citations(self, phase: str, cell: bool = False) -> str:
        if phase in self.incident.phase_overridden:
            return "set by hand"
        evidence = self.incident.phase_evidence.get(phase, ())
        if not evidence:
            return "no evidence recorded"
        return ", ".join(_cite(e.citation(), cell) for e in evidence[:2])

    def at(self, phase: str) -> str:
        """``2024-03-01 10:05:00 UTC (`app.log:42`)`` for a phase."""
        ts = self.incident.phase(phase)
        return f"{_utc(ts)} UTC ({self.phase_citations(phase)})" if ts is not None else "not determined"

    def local(self, ts: pd.Timestamp | None) -> str:
        if ts is None or self.zone is None:
            return ""
        return pd.Timestamp(ts).tz_convert(self.zone).strftime(f"{_TIME_FORMAT} %Z")

    def minutes(self, a: str, b: str) -> float | None:
        start, end = self.incident.phase(a), self.incident.phase(b)
        return None if start is None or end is None else (end - start).total_seconds()

    def incident_alerts(self) -> list[_Alert]:
        """Alerts that fired during the incident (from shortly before onset to its end), by firing time.

        Alerts of the whole window when no onset is known. An alert that fired long before onset
        (a disk filling up an hour earlier) did not detect this incident.
        """
        fired = sorted((a for a in self.alerts if a.fired is not None), key=lambda a: a.fired)  # type: ignore[arg-type,return-value]
        onset = self.incident.phase("onset")
        if onset is None:
            return fired
        end = next((t for p in ("resolved", "recovered") if (t := self.incident.phase(p)) is not None), None)
        start = onset - ALERT_LEAD
        return [a for a in fired if a.fired is not None and a.fired >= start and (end is None or a.fired <= end)]

    def had_alerts(self) -> bool:
        return bool(self.incident_alerts())

    def changes(self) -> pd.DataFrame:
        return self._changes

    @functools.cached_property
    def _changes(self) -> pd.DataFrame:
        # Three sections read the changes; selecting them from the notable events is made once.
        frame = self.notable
        if frame.empty or "kind" not in frame.columns:
            return frame.iloc[0:0]
        return frame[frame["kind"].eq("change").fillna(False)].sort_values("timestamp", kind="stable")

    def changes_before_onset(self) -> pd.DataFrame:
        onset = self.incident.phase("onset")
        changes = self.changes()
        if onset is None or changes.empty:
            return changes.iloc[0:0]
        lookback = max(pd.Timedelta(self.config.change_lookback), pd.Timedelta(0))
        window = min(lookback, CHANGE_BEFORE_ONSET)
        times = changes["timestamp"]
        return changes[(times <= onset) & (times >= onset - window)]

    def change_candidates(self) -> list[RootCauseCandidate]:
        """The changes among the candidates shown (not those ruled out as noise)."""
        return [c for c in self.shown_candidates() if c.kind == "change"]

    def cost_model_given(self) -> bool:
        return self.config.cost_per_failed_request is not None or self.config.revenue_per_minute is not None

    # -- sections ------------------------------------------------------------------------------

    def summary(self) -> str:
        inc, m = self.incident, self.incident.metrics
        onset = inc.phase("onset")
        if onset is None:
            return self.quiet_summary()
        services = list(m.affected_services)
        who = _code_list(services, 3) if services else "the service"
        verb = "were" if len(services) > 1 else "was"
        end_phase = "recovered" if inc.phase("recovered") is not None else "resolved"
        end = inc.phase(end_phase)
        # A breach is an attack on accounts, not a service running slow: the Summary says so.
        state = "under a credential attack" if inc.exposure else "degraded"
        parts: list[str] = []
        if end is not None:
            parts.append(
                f"From {_utc(onset)} to {_utc(end)} UTC ({duration_words((end - onset).total_seconds())}), "
                f"{who} {verb} "
                f"{state} (onset {self.phase_citations('onset')}, {end_phase} {self.phase_citations(end_phase)})."
            )
        else:
            until = f" by the end of the data at {_utc(inc.window_end)} UTC" if inc.window_end is not None else ""
            parts.append(
                f"From {_utc(onset)} UTC (onset {self.phase_citations('onset')}), {who} {verb} {state} and had "
                f"not {'stopped' if inc.exposure else 'recovered'}{until}."
            )
        parts.extend(self.impact_sentences())
        if inc.exposure:
            parts.append(
                f"Failed and successful logins from {len(inc.exposure.actors)} suspicious actor(s) touched "
                f"{inc.exposure.accounts_phrase()}{self.breach_outcome()}."
            )
        if inc.phase("detected") is not None:
            parts.append(
                f"The incident was detected {duration_words(m.time_to_detect_s or self.minutes('onset', 'detected'))} "
                f"after onset ({self.phase_citations('detected')})."
            )
        return " ".join(parts)

    # -- a window without an incident ----------------------------------------------------------

    def quiet(self) -> bool:
        """No phase, no breach: the window holds no incident, and the draft says only that."""
        inc = self.incident
        return all(inc.phase(p) is None for p in PHASES) and not inc.exposure

    def window_text(self) -> str:
        """``from 2024-03-12 08:00:00 to 2024-03-12 10:00:00 UTC (2 h 0 min)``, or "" when unknown."""
        inc = self.incident
        if inc.window_start is None or inc.window_end is None:
            return ""
        span = duration_words((inc.window_end - inc.window_start).total_seconds())
        return f"from {_utc(inc.window_start)} to {_utc(inc.window_end)} UTC ({span})"

    def quiet_summary(self) -> str:
        """The Summary of a window without an anomaly: what was looked at, and no invented incident."""
        inc, totals = self.incident, self.incident.metrics.window_totals
        window = f"the window {self.window_text()}".rstrip()
        if totals and not totals.get("events"):
            return f"No events were found in {window}: there is nothing to analyse; check the sources (Data quality)."
        looked = ["error events", "warnings"]
        if totals.get("requests") is not None:
            looked.insert(1, "failed requests")
        text = (
            f"No significant anomaly was found in {window}: {', '.join(looked[:-1])} and {looked[-1]} stayed "
            "within their own baselines, overall and per service."
        )
        if inc.exposure:
            return (
                f"{text} A suspicious access pattern was found, though: {len(inc.exposure.actors)} actor(s) touched "
                f"{inc.exposure.accounts_phrase()} (see Breach exposure)."
            )
        return (
            f"{text} This draft therefore describes no incident: no impact, no root cause and no detection gap "
            "are inferred. If an incident did happen in this window, set its phases by hand (`incident.toml`, "
            "or `--onset` and the other phase options) and regenerate the draft."
        )

    def looked_at(self) -> list[str]:
        """What the analysis of a quiet window examined: window, sources, signals, alerts, changes."""
        inc, cfg, totals = self.incident, self.config, self.incident.metrics.window_totals
        out = [f"Window: {self.window_text() or 'unknown (no event has a time)'}."]
        sources = [s for s in inc.sources if not s.skipped_reason]
        if sources:
            shown = ", ".join(
                f"{markdown_code(s.name, 120)} ({markdown_code(s.format, 40) if s.format else 'format unknown'}, "
                f"{s.events:,} events)"
                for s in sources[:10]
            )
            more = f" and {len(sources) - 10} more" if len(sources) > 10 else ""
            out.append(f"Sources: {len(sources)}, {sum(s.events for s in sources):,} events: {shown}{more}.")
        skipped = len(inc.sources) - len(sources)
        if skipped:
            out.append(f"{skipped} source(s) were skipped (see Data quality).")
        if totals:
            requests = totals.get("requests")
            request_text = (
                f"{_count(totals.get('failed_requests'))} failed of {_count(requests)} requests"
                if requests is not None
                else "requests: unknown (no request logs)"
            )
            out.append(
                f"Signals: {_count(totals.get('error_events'))} error events, {request_text}, "
                f"{_count(totals.get('warning_events'))} warnings in the window, counted per "
                f"{markdown_text(cfg.bucket)} bucket overall and per service. None rose above its own baseline "
                f"(by more than {cfg.anomaly_sigma:g} times its usual spread, to at least {cfg.anomaly_min_count} "
                f"events per bucket) for {cfg.sustain_buckets} buckets in a row, which is what the analysis takes "
                "for an incident."
            )
        fired = [a for a in self.alerts if a.fired is not None]
        if fired:
            listed = "; ".join(
                f"{markdown_code(a.name, 80)} fired at {_utc(a.fired)} UTC "
                f"({_cite(a.citation)})"
                + (
                    f", resolved at {_utc(a.resolved)} UTC"
                    + (f" ({_cite(a.resolved_citation)})" if a.resolved_citation else "")
                    if a.resolved is not None
                    else ", still firing at its end"
                )
                for a in fired[:5]
            )
            more = f"; and {len(fired) - 5} more" if len(fired) > 5 else ""
            out.append(f"Alerts: {len(fired)} fired in the window: {listed}{more}.")
        else:
            out.append("Alerts: none fired in the window.")
        changes = _Row.all_of(self.changes().head(5)) if not self.changes().empty else []
        if changes:
            listed = "; ".join(
                f"{markdown_code(r.change_type or 'change', 40)}"
                f"{' on ' + markdown_code(r.service, 60) if r.service else ''} at {_utc(r.time)} UTC "
                f"({_cite(r.citation())})"
                for r in changes
            )
            total = len(self.changes())
            more = f"; and {total - 5} more" if total > 5 else ""
            out.append(f"Changes: {total} recorded in the window: {listed}{more}.")
        else:
            out.append("Changes: none recorded in the window.")
        return out

    def compromised_accounts(self) -> int:
        """How many accounts the breach's actors took over (0 without a breach or none seen)."""
        exposure = self.incident.exposure
        return len({acc for a in exposure.actors for acc in a.accounts}) if exposure else 0

    def breach_outcome(self) -> str:
        """``: 40 accounts compromised, then export 40 by them`` (empty when none was compromised):
        the breach's outcome in the Summary's words, each count as the exposure holds it."""
        exposure, taken = self.incident.exposure, self.compromised_accounts()
        if not exposure or not taken:
            return ""
        counts = exposure.operation_counts
        ops = "; ".join(f"{markdown_text(kind)} {n:,}" for kind, n in counts)
        return f": {taken:,} account(s) compromised" + (f", then data operations by them: {ops}" if ops else "")

    def impact_sentences(self) -> list[str]:
        """The Summary's impact: requests, error events and users, each a count or why it is unknown
        (a metric with nothing to count is never written as 0)."""
        m = self.incident.metrics
        out: list[str] = []
        errors = f"{_count(m.error_events)} error events were logged" if m.error_events is not None else ""
        if m.requests_total:
            share = (m.requests_failed or 0) / m.requests_total
            out.append(
                f"{_count(m.requests_failed)} of {_count(m.requests_total)} requests failed ({_percent(share)})"
                + (f", with a peak error rate of {_percent(m.error_rate_peak)}." if m.error_rate_peak else ".")
            )
        elif m.requests_total == 0:
            out.append("No request was logged during the incident" + (f"; {errors}." if errors else "."))
        else:
            out.append(f"Requests: {_unknown(m, 'requests_total')}" + (f"; {errors}." if errors else "."))
        if m.affected_users is not None:
            out.append(f"{_count(m.affected_users)} users were affected.")
        elif not self.compromised_accounts():  # a breach's compromised accounts are said beside its actors
            out.append(f"Users affected: {_unknown(m, 'affected_users')}.")
        return out

    def impact(self) -> list[str]:
        m = self.incident.metrics
        out: list[str] = []
        if self.incident.phase("onset") is None:
            # No anomaly, no impact to measure: the metrics are unknown for want of an incident.
            return [
                "No sustained anomaly of errors, failed requests or warnings was found, so no impact is measured"
                + (" beyond the breach exposure below." if self.incident.exposure else ".")
            ]
        if m.affected_users is not None:
            out.append(
                f"Users affected: **{_count(m.affected_users)}** "
                "(distinct users with an error event; counted, not named)."
            )
        elif self.compromised_accounts():
            out.append(
                f"Users affected: **{self.compromised_accounts():,}** whose accounts were compromised (see the breach "
                "exposure; the error events name no user)."
            )
        else:
            out.append(f"Users affected: {_unknown(m, 'affected_users')}.")
        if m.requests_total is not None:
            out.append(
                f"Requests in the incident: {_count(m.requests_total)}; failed: **{_count(m.requests_failed)}**."
            )
        else:
            out.append(f"Requests in the incident: {_unknown(m, 'requests_total')}.")
        if m.error_rate_peak is not None:
            out.append(
                f"Peak error rate: **{_percent(m.error_rate_peak)}** per {markdown_text(self.config.bucket)} bucket."
            )
        else:
            out.append(f"Peak error rate: {_unknown(m, 'error_rate_peak')}.")
        if m.error_events is not None:
            out.append(f"Error events logged: {_count(m.error_events)}.")
        if m.affected_services:
            out.append(f"Services affected: {_code_list(list(m.affected_services), 10)}.")
        elif "affected_services" in m.unknown_reasons:
            out.append(f"Services affected: {_unknown(m, 'affected_services')}.")
        if m.affected_hosts:
            out.append(f"Hosts affected: {len(m.affected_hosts)} ({_code_list(list(m.affected_hosts), 5)}).")
        elif m.affected_hosts is None:
            out.append(f"Hosts affected: {_unknown(m, 'affected_hosts')}.")
        if m.affected_endpoints is None and m.requests_total is not None:
            out.append(f"Endpoints with failed requests: {_unknown(m, 'affected_endpoints')}.")
        if m.error_budget_burn is not None:
            slo = f" (SLO {self.config.slo}%)" if self.config.slo is not None else ""
            out.append(f"Error budget consumed: {_percent(m.error_budget_burn)} of the window's budget{slo}.")
        elif self.config.slo is not None:
            out.append(f"Error budget consumed: {_unknown(m, 'error_budget_burn')}.")
        for phase_a, phase_b, label in (
            ("onset", "recovered", "Duration of impact"),
            ("onset", "resolved", "Until resolved"),
        ):
            seconds = self.minutes(phase_a, phase_b)
            if seconds is not None:
                out.append(
                    f"{label}: {duration_words(seconds)} ({phase_a} {self.phase_citations(phase_a)}, "
                    f"{phase_b} {self.phase_citations(phase_b)})."
                )
        if self.incident.partial:
            out.append("The data is **partial**, so these numbers are lower bounds (see Data quality).")
        return out

    def latency(self) -> list[dict[str, str]]:
        rows = []
        for period, values in (self.incident.metrics.latency_ms or {}).items():
            rows.append(
                {"period": period if period in _LATENCY_PERIODS else markdown_cell(period, 60)}
                | {p: ("" if values.get(p) is None else f"{values[p]:,.0f}") for p in ("p50", "p95", "p99")}
            )
        return rows

    def exposure(self) -> list[str]:
        exposure = self.incident.exposure
        if not exposure:
            return []
        out = []
        ranges = [a for a in exposure.actors if a.actor_kind == "client_range"]
        ips = [a for a in exposure.actors if a.actor_kind == "client_ip"]
        spread = [a for a in exposure.actors if a.actor_kind == "client_set"]
        users = [a for a in exposure.actors if a.actor_kind not in ("client_ip", "client_range", "client_set")]

        def attempts(actors: list[Actor]) -> str:
            failed, succeeded = sum(a.failures for a in actors), sum(a.successes for a in actors)
            return f"{failed:,} failed and {succeeded:,} successful logins"

        if ranges:
            listed = ", ".join(
                f"{markdown_code(a.actor, 80)} ({a.members or 0} addresses, {attempts([a])})" for a in ranges[:10]
            )
            more = f" and {len(ranges) - 10} more" if len(ranges) > 10 else ""
            noun = "address range" if len(ranges) == 1 else "address ranges"
            out.append(f"{len(ranges)} {noun} departed from the baseline: {listed}{more}.")
        if ips:
            out.append(
                f"{len(ips)} client address(es) departed from the baseline: {_code_list([a.actor for a in ips], 10)} "
                f"({attempts(ips)})."
            )
        for actor in spread:
            out.append(
                f"A distributed attack: {actor.members or 0} addresses never seen before onset, mostly one per "
                f"network, each failing a few logins ({attempts([actor])})."
            )
        if users:
            out.append(f"{len(users)} user identit(ies) departed from the baseline ({attempts(users)}).")
        seen = [a for a in exposure.actors if a.first_seen is not None]
        if seen:
            first = min(a.first_seen for a in seen if a.first_seen is not None)
            last = max(a.last_seen or a.first_seen for a in seen if a.first_seen is not None)
            out.append(f"Suspicious activity seen from {_utc(first)} to {_utc(last)} UTC.")
        compromised = sorted({acc for a in exposure.actors for acc in a.accounts})
        successes = sum(a.successes for a in exposure.actors)
        if compromised:
            # Counted, not named here (people are never named in the draft): incident.json lists them.
            out.append(
                f"Accounts compromised: **{len(compromised):,}** (a successful login from a suspicious source after "
                "its failures; listed in incident.json for the credential reset and the notifications)."
            )
        elif not exposure.accounts_touched:
            out.append(
                f"Accounts compromised: unknown (the logs name no account; {successes:,} successful logins "
                "from the suspicious sources)."
            )
        else:
            out.append("Accounts compromised: none seen (no successful login from the suspicious sources).")
        if exposure.accounts_touched:
            out.append(f"Accounts touched: **{len(exposure.accounts_touched):,}** (counted, not named).")
        else:
            out.append("Accounts touched: unknown (the logs name no account).")
        by_kind: dict[str, list[Evidence]] = {}
        kinds = operation_kind(pd.Series([e.message for e in exposure.data_operations], dtype=object))
        for e, kind in zip(exposure.data_operations, kinds, strict=True):
            by_kind.setdefault(str(kind), []).append(e)
        # An incident.json written before the counts existed: count the evidence kept.
        counts = exposure.operation_counts or tuple((kind, len(items)) for kind, items in by_kind.items())
        if counts:
            parts = []
            for kind, n in counts:
                # Citations whole: a shortened path would lose the line number it points at.
                cites = ", ".join(_cite(e.citation()) for e in by_kind.get(kind, [])[:3])
                parts.append(f"{markdown_text(kind)}: {n:,}" + (f" ({cites})" if cites else ""))
            out.append(
                "Data operations by them after the first compromise (an operation logged by several layers counts "
                f"once): {'; '.join(parts)}."
            )
        return out

    def estimated_cost(self) -> float | None:
        """The analysis' estimate, or the cost model applied to the metrics; None without a cost model."""
        if not self.cost_model_given():
            return None
        m, cfg = self.incident.metrics, self.config
        if m.estimated_cost is not None:
            return m.estimated_cost
        if cfg.cost_per_failed_request is not None and m.requests_failed is None:
            return None  # a cost per failed request without a count of them: unknown, not 0
        outage = self.minutes("onset", "recovered") or self.minutes("onset", "resolved") or 0.0
        per_request = (cfg.cost_per_failed_request or 0.0) * (m.requests_failed or 0)
        return per_request + (cfg.revenue_per_minute or 0.0) * outage / 60

    def cost(self) -> str | None:
        estimate = self.estimated_cost()
        if estimate is None:
            if self.cost_model_given() and self.incident.phase("onset") is not None:
                return f"Estimated financial impact: {_unknown(self.incident.metrics, 'estimated_cost')}."
            return None
        cfg = self.config
        model = []
        if cfg.cost_per_failed_request is not None:
            model.append(f"{cfg.cost_per_failed_request:,.4g} per failed request")
        if cfg.revenue_per_minute is not None:
            model.append(f"{cfg.revenue_per_minute:,.4g} of revenue per minute of impact")
        return (
            f"Estimated financial impact: **≈ {estimate:,.0f}** (an estimate from the cost model given: "
            f"{' and '.join(model)}; not an accounting figure)."
        )

    def timeline(self) -> list[dict[str, str]]:
        rows: list[tuple[pd.Timestamp, int, dict[str, str]]] = []

        def add(ts: pd.Timestamp | None, order: int, event: str, evidence: str) -> None:
            if ts is None or pd.isna(ts):
                return
            ts = pd.Timestamp(ts)
            rows.append((ts, order, {"utc": _utc(ts), "local": self.local(ts), "event": event, "evidence": evidence}))

        for order, phase in enumerate(PHASES):
            ts = self.incident.phase(phase)
            evidence = self.incident.phase_evidence.get(phase, ())
            detail = f": {self.quote_cell(evidence[0].message, 100)}" if evidence else ""
            add(
                ts,
                order,
                f"**{phase.capitalize()}**: {_PHASE_MEANING[phase]}{detail}",
                self.phase_citations(phase, True),
            )
        for alert in self.alerts[:_MAX_TIMELINE_ALERT_ROWS]:
            where = f" on {markdown_cell(alert.service, 60)}" if alert.service else ""
            name = markdown_cell(alert.name, 80)
            for when, order, state, cited in (
                (alert.fired, 10, f"{where} fired", alert.citation),
                (alert.acknowledged, 11, " acknowledged", alert.acknowledged_citation),
                (alert.resolved, 12, " resolved", alert.resolved_citation),
            ):
                add(when, order, f"Alert {name}{state}", _cite(cited, cell=True))
        for row in self._rows(self.changes(), _MAX_TIMELINE_CHANGE_ROWS):
            kind = markdown_cell(row.change_type or "change", 40)
            where = f" on {markdown_cell(row.service, 60)}" if row.service else ""
            add(
                row.time,
                20,
                f"Change ({kind}){where}: {self.quote_cell(row.message, 100)}",
                _cite(row.citation(), cell=True),
            )
        for row in self._first_errors():
            add(
                row.time,
                30,
                f"First error on {markdown_cell(row.service or row.source, 60)}: {self.quote_cell(row.message, 100)}",
                _cite(row.citation(), cell=True),
            )
        rows.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in rows]

    def _rows(self, frame: pd.DataFrame, limit: int) -> list[_Row]:
        if frame.empty:
            return []
        onset = self.incident.phase("onset")
        if onset is not None and len(frame) > limit:
            # Keep the changes nearest to onset: those are the ones a reader asks about.
            distance = (frame["timestamp"] - onset).abs()
            frame = frame.loc[distance.sort_values(kind="stable").index[:limit]].sort_values("timestamp", kind="stable")
        return _Row.all_of(frame.head(limit))

    def _first_errors(self) -> list[_Row]:
        frame = self.notable
        if frame.empty or "level" not in frame.columns:
            return []
        is_error = frame["level"].isin(list(ERROR_LEVELS)).fillna(False)
        if "http_status" in frame.columns:
            is_error = is_error | frame["http_status"].ge(500).fillna(False)
        rows = np.flatnonzero((is_error & ~frame["kind"].isin(["alert", "change"]).fillna(False)).to_numpy(dtype=bool))
        if not len(rows):
            return []
        # The first error of each lane, found on the three columns it needs; only those rows are copied.
        errors = frame[["timestamp", "service", "source"]].iloc[rows].reset_index(drop=True)
        lane = errors["service"].fillna(errors["source"])
        first = errors.assign(_lane=lane).sort_values("timestamp", kind="stable").groupby("_lane", sort=False).head(1)
        picked = rows[first.index.to_numpy()[:_MAX_TIMELINE_ERROR_ROWS]]
        return _Row.all_of(frame.iloc[picked])

    def _evidence_lines(self, evidence: Sequence[Evidence], limit: int = 5) -> list[str]:
        out = [f"{_utc(e.time)} UTC, {_cite(e.citation())}: {self.quote(e.message)}" for e in evidence[:limit]]
        if len(evidence) > limit:
            out.append(f"and {len(evidence) - limit} more events")
        return out

    def shown_candidates(self) -> list[RootCauseCandidate]:
        """The candidates the draft shows (the others are noise, in the appendix), best first."""
        return sorted((c for c in self.incident.root_cause_candidates if not c.noise), key=lambda c: c.rank)

    def root_causes(self) -> list[dict[str, Any]]:
        out = []
        for c in self.shown_candidates():
            cite = _cite(c.evidence[0].citation()) if c.evidence else "no evidence line"
            new_errors = [
                f"{self.quote(n.template, 160)} appeared {n.count:,} times, first at {_utc(n.evidence.time)} UTC "
                f"({_cite(n.evidence.citation())})"
                for n in c.new_errors
            ]
            out.append(
                {
                    "rank": c.rank,
                    "kind": _CANDIDATE_KIND.get(c.kind, markdown_text(c.kind)),
                    "summary": self.quote(c.summary, 200),
                    "service": markdown_code(c.service, 80) if c.service else "",
                    "time": f"{_utc(c.time)} UTC ({cite})" if c.time is not None else "",
                    "score": f"{c.score:.2f}",
                    "why": markdown_text(c.why, 400),
                    "evidence": self._evidence_lines(c.evidence),
                    "new_errors": new_errors,
                    "after": markdown_text(c.trigger or "change", 40) if c.kind == "change" else "it",
                }
            )
        return out

    def noise(self) -> list[str]:
        """The candidates ruled out, for the appendix: each with why and its first evidence."""
        out = []
        for c in sorted(self.incident.root_cause_candidates, key=lambda c: c.rank):
            if not c.noise:
                continue
            cite = f" ({_cite(c.evidence[0].citation())})" if c.evidence else ""
            out.append(f"{self.quote(c.summary, 160)}{cite}: {markdown_text(c.why, 300)}")
        return out

    def mechanism(self) -> str | None:
        """The mechanism sentence: the failure signature that appeared first, counted, its line cited."""
        mech = self.incident.mechanism
        if mech is None or self.incident.phase("onset") is None:
            return None
        first = "first" if mech.first_is_first else "for example"
        before = "none before onset" if mech.before_onset == 0 else f"{mech.before_onset:,} before onset in the window"
        return (
            f"{self.quote(mech.first.message, 160)}: {markdown_text(mech.label)}, in {mech.count:,} error events of "
            f"the incident ({before}); {first} at {_utc(mech.first.time)} UTC "
            f"({_cite(mech.first.citation())})."
        )

    def conclusion(self) -> list[str]:
        """The Summary's conclusion, to be confirmed: trigger, mechanism, detection and mitigation,
        each sentence with its citations (empty without an onset)."""
        inc = self.incident
        onset = inc.phase("onset")
        if onset is None:
            return []
        out = []
        shown = self.shown_candidates()
        top = shown[0] if shown else None
        is_trigger = top is not None and top.kind in {"change", "external"}
        if top is not None and is_trigger:
            cite = f" ({_cite(top.evidence[0].citation())})" if top.evidence else ""
            at = f" at {_utc(top.time)} UTC" if top.time is not None else ""
            out.append(f"Most likely trigger (to confirm): {self.quote(top.summary, 160)}{at}{cite}.")
        elif top is not None:
            cite = f" ({_cite(top.evidence[0].citation())})" if top.evidence else ""
            out.append(
                "No trigger (change or external cause) was found in these logs; the strongest lead is "
                f"{self.quote(top.summary, 160)}{cite}."
            )
        mech = inc.mechanism
        if mech is not None:
            out.append(
                f"Mechanism: {self.quote(mech.first.message, 120)} ({markdown_text(mech.label)}), in "
                f"{mech.count:,} error events from {_utc(mech.first.time)} UTC "
                f"({_cite(mech.first.citation())})."
            )
        elif top is not None and top.new_errors:
            # No failure signature named it: the first new error after the trigger is how it showed.
            first = min(top.new_errors, key=lambda n: n.evidence.time)
            out.append(
                f"The first new error after it: {self.quote(first.template, 120)}, {first.count:,} times from "
                f"{_utc(first.evidence.time)} UTC ({_cite(first.evidence.citation())})."
            )
        elif top is not None and top.kind == "external" and top.evidence:
            first_line = top.evidence[0]
            out.append(
                f"It shows first as {self.quote(first_line.message, 120)} at {_utc(first_line.time)} UTC "
                f"({_cite(first_line.citation())})."
            )
        detected = inc.phase("detected")
        if detected is not None:
            alert = next((a for a in self.incident_alerts() if a.fired is not None and a.fired == detected), None)
            by = f" by the alert {markdown_code(alert.name, 80)}" if alert is not None else ""
            out.append(
                f"It was detected{by} at {_utc(detected)} UTC, {duration_words((detected - onset).total_seconds())} "
                f"after onset ({self.phase_citations('detected')})."
            )
        else:
            out.append("No detection was found in the events.")
        mitigated = inc.phase("mitigated")
        evidence = inc.phase_evidence.get("mitigated", ())
        if mitigated is not None:
            how = f" by {self.quote(evidence[0].message, 100)}" if evidence else ""
            recovered = inc.phase("recovered")
            then = (
                f"; the last error of the incident came at {_utc(recovered)} UTC ({self.phase_citations('recovered')})"
                if recovered is not None
                else ""
            )
            out.append(f"It was mitigated{how} at {_utc(mitigated)} UTC ({self.phase_citations('mitigated')}){then}.")
        else:
            out.append("No mitigating action was found in the events.")
        return out

    def open_questions(self) -> list[str]:
        inc = self.incident
        out: list[str] = []
        candidates = self.shown_candidates()
        if candidates and candidates[0].kind in {"change", "external"}:
            top = candidates[0]
            owner = f" with the owners of {markdown_code(top.service, 80)}" if top.service else ""
            out.append(f"Is candidate 1 the trigger, or a symptom of something earlier? Confirm{owner}.")
        elif inc.phase("onset") is not None:
            out.append(
                f"The events show no clear trigger: what changed around {_utc(inc.phase('onset'))} UTC "
                "(deploys, configuration, traffic, dependencies) that these logs don't record?"
            )
        for c in self.change_candidates()[:1]:
            cite = _cite(c.evidence[0].citation()) if c.evidence else "no evidence recorded"
            out.append(
                f"How was the change at {_utc(c.time)} UTC ({cite}) tested and rolled out, "
                "and what would have caught it earlier?"
            )
        if inc.phase("onset") is not None and not self.had_alerts():
            out.append("Why did no alert fire during the incident? Which signal should have paged?")
        if inc.phase("onset") is not None and inc.phase("recovered") is None:
            out.append("The events don't show recovery: when did the service really recover, and how do we know?")
        if inc.exposure:
            out.append("Which data could the suspicious actors read or change, and who must be notified?")
        if inc.partial:
            out.append("Some sources are partial (see Data quality): could the missing data change this picture?")
        out.append("Were customers affected that these logs don't show (other regions, clients that gave up and left)?")
        return out

    def detection(self) -> list[str]:
        inc, m = self.incident, self.incident.metrics
        out = [f"Onset: {self.at('onset')}."]
        if inc.phase("detected") is not None:
            lag = m.time_to_detect_s if m.time_to_detect_s is not None else self.minutes("onset", "detected")
            out.append(f"Detected: {self.at('detected')}, {duration_words(lag)} after onset.")
        else:
            out.append("Detection: not determined from the events; set the `detected` phase by hand if known.")
        if inc.anomaly_signal:
            out.append(f"The anomaly was found in the {markdown_text(inc.anomaly_signal.replace('_', ' '))} signal.")
        fired = self.incident_alerts()
        in_window = sum(a.fired is not None for a in self.alerts)
        if inc.phase("onset") is None:
            # Without an onset no alert can be tied to an incident, and there is no gap to speak of.
            out.append("No onset is known" + (f"; {in_window} alert(s) fired in the window." if in_window else "."))
            return out
        if fired:
            first = fired[0]
            out.append(
                f"First alert of the incident: {markdown_code(first.name, 80)} fired at {_utc(first.fired)} UTC "
                f"({_cite(first.citation)}); {len(fired)} alert(s) fired during the incident, "
                f"{in_window} in the whole window."
            )
            acked = [a for a in fired if a.acknowledged is not None and a.fired is not None]
            if acked:
                a = acked[0]
                assert a.acknowledged is not None
                assert a.fired is not None
                cite = _cite(a.acknowledged_citation)
                out.append(
                    f"First acknowledgement: {_utc(a.acknowledged)} UTC ({cite}), "
                    f"{duration_words((a.acknowledged - a.fired).total_seconds())} after the alert fired."
                )
        else:
            out.append(
                "No alert fired during the incident: it was noticed some other way (a monitoring gap)"
                + (f"; {in_window} alert(s) fired at other times in the window." if in_window else ".")
            )
        return out

    def mitigation(self) -> list[str]:
        inc, m = self.incident, self.incident.metrics
        out = []
        for phase, seconds in (
            ("mitigated", m.time_to_mitigate_s),
            ("recovered", m.time_to_recover_s),
            ("resolved", m.time_to_resolve_s),
        ):
            if inc.phase(phase) is not None:
                secs = seconds if seconds is not None else self.minutes("onset", phase)
                since = f", {duration_words(secs)} after onset" if secs is not None else ""
                out.append(f"{phase.capitalize()}: {self.at(phase)}{since}.")
            else:
                out.append(f"{phase.capitalize()}: not determined from the events.")
        onset = inc.phase("onset")
        changes = self.changes()
        if onset is not None and not changes.empty:
            after = changes[
                (changes["timestamp"] >= onset) & changes["change_type"].isin(list(MITIGATING_CHANGES)).fillna(False)
            ]
            for row in self._rows(after, 5):
                out.append(
                    f"{_utc(row.time)} UTC: {markdown_code(row.change_type or 'change', 40)}"
                    f"{' on ' + markdown_code(row.service, 60) if row.service else ''}: {self.quote(row.message, 100)} "
                    f"({_cite(row.citation())})."
                )
        still_open = [a for a in self.alerts if a.fired is not None and a.resolved is None]
        if still_open:
            out.append(
                f"{len(still_open)} alert(s) were still firing at the end of the data: "
                f"{_code_list([a.name for a in still_open], 5)}."
            )
        return out

    def action_items(self) -> list[dict[str, str]]:
        inc = self.incident
        # An incident made without the analysis (by hand, or an older incident.json) gets its items here;
        # one whose analysis found none (an empty tuple) keeps none.
        items = inc.action_items if inc.action_items is not None else derive_action_items(inc, self.intervals)
        out = []
        for a in items:
            cites = ", ".join(_cite(e.citation(), cell=True) for e in a.evidence[:3])
            out.append(
                {
                    "priority": markdown_text(a.priority, 10),
                    "type": markdown_text(a.type, 20),
                    "item": markdown_text(a.action, 300).replace("|", "\\|"),
                    "owner": markdown_text(a.owner, 40),
                    "why": markdown_text(a.fact, 300).replace("|", "\\|") + (f" ({cites})" if cites else ""),
                }
            )
        return out

    def lessons(self) -> dict[str, list[str]]:
        m = self.incident.metrics
        went_well = ["What helped us detect, diagnose or mitigate quickly?"]
        went_wrong = ["What slowed us down? Where did the tooling, alerts or runbooks not help?"]
        got_lucky = ["What could have made this much worse (time of day, traffic, who was on call)?"]
        lag = m.time_to_detect_s
        if lag is not None and lag <= DETECTION_LAG_ACTION_S:
            went_well.append(f"Detection took {duration_words(lag)}: which signal made that possible?")
        elif lag is not None:
            went_wrong.append(f"Detection took {duration_words(lag)}: why did it take that long?")
        if m.time_to_mitigate_s is not None:
            went_well.append(f"Mitigation came {duration_words(m.time_to_mitigate_s)} after onset: what made it work?")
        if not self.had_alerts() and self.incident.phase("onset") is not None:
            went_wrong.append("No alert fired: how was the incident noticed?")
        return {"went_well": went_well, "went_wrong": went_wrong, "got_lucky": got_lucky}

    def sources(self) -> list[dict[str, str]]:
        rows = []
        for s in self.incident.sources:
            reasons = ", ".join(f"{markdown_text(r)}: {n:,}" for r, n in sorted(s.rejected.items()))
            partial = "no"
            if s.partial:
                partial = "yes" + (f": {markdown_cell(s.partial_reason, 120)}" if s.partial_reason else "")
            elif s.skipped_reason:
                partial = f"skipped: {markdown_cell(s.skipped_reason, 120)}"
            rows.append(
                {
                    "name": markdown_cell(s.name, 120),
                    "format": markdown_cell(s.format, 40) if s.format else "unknown",
                    "lines_read": f"{s.lines_read:,}",
                    "events": f"{s.events:,}",
                    "continuation_lines": f"{s.continuation_lines:,}",
                    "rejected": f"{s.rejected_total:,}" + (f" ({reasons})" if reasons else ""),
                    "outside_window": f"{s.outside_window:,}",
                    "duplicates": f"{s.duplicates:,}",
                    "zone": _zone_cell(s),
                    "year_inferred": (
                        markdown_cell(s.year_origin, 120) if s.year_origin else "yes" if s.year_inferred else "no"
                    ),
                    "partial": partial,
                }
            )
        return rows

    def data_quality_notes(self) -> list[str]:
        inc = self.incident
        out = [
            "Redaction was **on**: secrets were removed and IP addresses and users pseudonymized "
            "before this draft was written."
            if inc.redacted
            else "Redaction was **off**: this draft may contain secrets or personal data; review it before sharing."
        ]
        if inc.partial:
            reasons = "; ".join(markdown_code(r, 120) for r in inc.partial_reasons) or "see the table"
            out.append(f"The data is **partial**: {reasons}.")
        unbalanced = [s.name for s in inc.sources if not s.balanced()]
        if unbalanced:
            out.append(
                f"Line accounting does not balance for {_code_list(unbalanced, 5)}: some lines are unaccounted for."
            )
        # Counted over the events: a source whose lines carry their offset assumed nothing.
        assumed = [s.name for s in inc.sources if s.times_in_zone and s.zone_origin != "--source-tz"]
        if assumed:
            out.append(
                f"Time zones were assumed for {len(assumed)} source(s) whose timestamps carry no offset: "
                f"{_code_list(assumed, 5)}."
            )
        given = [s.name for s in inc.sources if s.times_in_zone and s.zone_origin == "--source-tz"]
        if given:
            out.append(f"Time zones were given (--source-tz) for {_code_list(given, 5)}.")
        inferred = [s for s in inc.sources if s.year_inferred or s.year_origin]
        if inferred:
            out.append(
                f"The year was not written in {len(inferred)} source(s): "
                + "; ".join(
                    f"{markdown_code(s.name, 80)}: {markdown_text(s.year_origin or 'inferred')}" for s in inferred[:5]
                )
                + "."
            )
        out.extend(_time_inference_notes(inc))
        out.extend(_time_span_notes(inc))
        if inc.phase_overridden:
            out.append(f"Phases set by hand: {', '.join(markdown_text(p) for p in inc.phase_overridden)}.")
        return out

    def metrics_table(self) -> list[dict[str, str]]:
        m = self.incident.metrics

        def known(name: str, text: str | None) -> str:
            # A metric with nothing to count says why; one that was not asked for stays out.
            if text is not None:
                return text
            return _unknown(m, name) if name in m.unknown_reasons and self.incident.phase("onset") is not None else ""

        def size(values: tuple[Any, ...] | None) -> str | None:
            return str(len(values)) if values else None

        rows = [
            ("Time to detect", duration_words(m.time_to_detect_s) if m.time_to_detect_s is not None else ""),
            ("Time to mitigate", duration_words(m.time_to_mitigate_s) if m.time_to_mitigate_s is not None else ""),
            ("Time to recover", duration_words(m.time_to_recover_s) if m.time_to_recover_s is not None else ""),
            ("Time to resolve", duration_words(m.time_to_resolve_s) if m.time_to_resolve_s is not None else ""),
            ("Requests", known("requests_total", None if m.requests_total is None else _count(m.requests_total))),
            (
                "Failed requests",
                known("requests_failed", None if m.requests_failed is None else _count(m.requests_failed)),
            ),
            (
                "Peak error rate",
                known("error_rate_peak", None if m.error_rate_peak is None else _percent(m.error_rate_peak)),
            ),
            ("Error events", _count(m.error_events) if m.error_events is not None else ""),
            (
                "Users affected",
                known(
                    "affected_users",
                    _count(m.affected_users)
                    if m.affected_users is not None
                    else f"{self.compromised_accounts():,} (accounts compromised)"
                    if self.compromised_accounts()
                    else None,
                ),
            ),
            ("Services affected", known("affected_services", size(m.affected_services))),
            ("Hosts affected", known("affected_hosts", size(m.affected_hosts))),
            (
                "Error budget consumed",
                known("error_budget_burn", None if m.error_budget_burn is None else _percent(m.error_budget_burn)),
            ),
        ]
        estimate = self.estimated_cost()
        if estimate is not None:
            rows.append(("Estimated financial impact (estimate)", f"{estimate:,.0f}"))
        return [{"name": name, "value": value} for name, value in rows if value]


@dataclass(frozen=True)
class _Row:
    """The fields of one notable event that the draft uses."""

    time: pd.Timestamp
    source: str
    line: int | None
    message: str
    service: str | None
    change_type: str | None

    @classmethod
    def of(cls, row: Any) -> _Row:
        line = _value(getattr(row, "line", None))
        service = _value(getattr(row, "service", None))
        change_type = _value(getattr(row, "change_type", None))
        return cls(
            time=pd.Timestamp(row.timestamp),
            source=str(row.source),
            line=int(line) if line is not None else None,
            message=str(_value(getattr(row, "message", None)) or ""),
            service=str(service) if service is not None else None,
            change_type=str(change_type) if change_type is not None else None,
        )

    @classmethod
    def all_of(cls, frame: pd.DataFrame) -> list[_Row]:
        """A row of each event of ``frame``, read from the columns a row holds only (the others'
        values were copied out of every event for nothing)."""
        used = [c for c in _ROW_COLUMNS if c in frame.columns]
        return [cls.of(r) for r in frame[used].itertuples(index=False)]

    def citation(self) -> str:
        return Evidence(self.time, self.source, self.line, self.message).citation()


#: The columns a :class:`_Row` is read from.
_ROW_COLUMNS: Final = ("timestamp", "source", "line", "message", "service", "change_type")


def _state_citation(row: Any, column: str, default_source: str) -> str:
    """``source:line`` of the event that set an interval's ``column`` time; the source alone when
    the intervals do not say which line (never the line of another state change)."""
    line = _value(getattr(row, f"{column}_line", None))
    source = str(_value(getattr(row, f"{column}_source", None)) or default_source)
    return f"{source}:{int(line)}" if line is not None else source


def _alerts_from_intervals(intervals: pd.DataFrame) -> list[_Alert]:
    out = []
    for row in intervals.itertuples(index=False):
        line = _value(getattr(row, "line", None))
        source = str(_value(getattr(row, "source", None)) or "alerts")
        service = _value(getattr(row, "service", None))
        out.append(
            _Alert(
                name=str(_value(getattr(row, "alert_name", None)) or "alert"),
                service=str(service) if service is not None else None,
                fired=_value(getattr(row, "fired", None)),
                acknowledged=_value(getattr(row, "acknowledged", None)),
                resolved=_value(getattr(row, "resolved", None)),
                citation=f"{source}:{int(line)}" if line is not None else source,
                acknowledged_citation=_state_citation(row, "acknowledged", source),
                resolved_citation=_state_citation(row, "resolved", source),
            )
        )
    out.sort(key=lambda a: a.fired if a.fired is not None else pd.Timestamp.max.tz_localize("UTC"))
    return out


def _zone_cell(source: Any) -> str:
    """Where a source's times came from (the Data quality table's zone cell)."""
    account = [line for line in source.time_account() if not line.startswith(("year ", "nothing:"))]
    if account:
        return markdown_cell("; ".join(account), 200)
    if source.time_zone:
        # An incident.json written before the times were counted: the zone naive times would be read in.
        return f"naive times read in {markdown_cell(source.time_zone, 40)} (not counted)"
    return "none"


def _time_inference_notes(inc: Incident) -> list[str]:
    """The zone and clock-skew estimates, each with its evidence, and what --auto-time applied."""
    info = inc.time_inference or {}
    out = []
    for est in info.get("estimates", []):
        if est.get("kind") == "agrees":
            continue
        line = markdown_text(str(est.get("message", "")), 800)
        if est.get("applied"):
            line += f" **Applied (--auto-time):** {markdown_text(str(est['applied']), 300)}."
        out.append(line)
    return out


def _time_span_notes(inc: Incident) -> list[str]:
    """Outlier timestamps set aside, and a span far wider than its densest activity (incident.json ``time_span``)."""
    span = inc.time_span
    out = []
    outliers = int(span.get("outlier_events") or 0)
    if outliers:
        listed = [o for o in span.get("outliers") or [] if isinstance(o, dict)][:5]
        cited = "; ".join(
            markdown_code(str(o.get("timestamp")), 40)
            + (f" at {_cite(str(o['source']) + ':' + str(o.get('line')))}" if o.get("source") else "")
            for o in listed
        )
        more = f" and {outliers - len(listed)} more" if outliers > len(listed) else ""
        out.append(
            f"{outliers} event(s) lie far outside the data's dense span (a clock reset or a wrong year?) and were "
            f"left out of the signals, the metrics and the timeline: {cited}{more}."
        )
    if _spread(span):
        dense = span["densest_half"]
        out.append(
            f"The data spans {markdown_code(str(span['start']), 40)} to {markdown_code(str(span['end']), 40)}, "
            f"far more than its densest activity (half of the events lie within "
            f"{markdown_code(str(dense['start']), 40)} to {markdown_code(str(dense['end']), 40)}): signals were "
            f"counted per {markdown_text(str(span.get('bucket')))} bucket; --start/--end can narrow the window."
        )
    return out


def _spread(span: dict[str, Any]) -> bool:
    """As :attr:`pmtimeline.aggregate.TimeSpan.spread`, from incident.json's ``time_span``."""
    try:
        start, end = pd.Timestamp(span["start"]), pd.Timestamp(span["end"])
        dense = span["densest_half"]
        width = max(pd.Timestamp(dense["end"]) - pd.Timestamp(dense["start"]), pd.Timedelta("1min"))
    except (KeyError, TypeError, ValueError):
        return False
    return bool(end - start > SPREAD_FACTOR * width and end - start > MAX_BUCKETS * pd.Timedelta("1min"))
