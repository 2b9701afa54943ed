"""The result of the incident analysis, and its JSON form (``incident.json``).

:class:`Incident` is what :func:`pmtimeline.analysis.analyze` returns and what the postmortem draft,
the chart and ``incident.json`` are made from. Every time is a tz-aware UTC ``pd.Timestamp`` (or
None); in JSON it is ISO 8601 with ``Z``. ``to_dict``/``from_dict`` round-trip exactly, so
``pmtimeline report OUTDIR`` can regenerate the outputs from a saved ``incident.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

import pandas as pd

from pmtimeline.config import PHASES
from pmtimeline.errors import ConfigError
from pmtimeline.escaping import html_text, json_safe
from pmtimeline.sources import SourceAccounting

SCHEMA_VERSION: Final = 1


def iso_utc(ts: pd.Timestamp | None) -> str | None:
    """ISO 8601 in UTC with ``Z`` (microseconds only when present), or None."""
    if ts is None or pd.isna(ts):
        return None
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    text = ts.isoformat().replace("+00:00", "Z")
    return text


def parse_utc(text: str | None) -> pd.Timestamp | None:
    """The inverse of :func:`iso_utc`."""
    if text is None:
        return None
    ts = pd.Timestamp(text)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def duration_words(seconds: float | None) -> str:
    """A duration as the draft writes it: ``45 s``, ``1 min 42 s``, ``3 min``, ``2 h 5 min``; "unknown"
    for None. A negative duration gets a leading minus."""
    if seconds is None or pd.isna(seconds):
        return "unknown"
    total = round(float(seconds))
    if total < 0:
        return f"-{duration_words(-total)}"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


@dataclass(frozen=True)
class Evidence:
    """One event cited as evidence: where it is written and what it says (message is raw text;
    outputs escape and redact it)."""

    time: pd.Timestamp
    source: str
    line: int | None
    message: str
    kind: str = "log"
    service: str | None = None
    level: str | None = None

    def citation(self) -> str:
        """``source:line`` (or just the source for non-file events)."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": iso_utc(self.time),
            "source": self.source,
            "line": self.line,
            "message": self.message,
            "kind": self.kind,
            "service": self.service,
            "level": self.level,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        time = parse_utc(data["time"])
        assert time is not None
        return cls(
            time=time,
            source=data["source"],
            line=data.get("line"),
            message=data.get("message", ""),
            kind=data.get("kind", "log"),
            service=data.get("service"),
            level=data.get("level"),
        )

    @classmethod
    def from_row(cls, row: Any) -> Evidence:
        """From one event row (a Series or namedtuple with the schema's columns)."""

        def val(name: str) -> Any:
            v = getattr(row, name, None)
            return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v

        line = val("line")
        return cls(
            time=pd.Timestamp(row.timestamp),
            source=str(row.source),
            line=int(line) if line is not None else None,
            message=str(val("message") or ""),
            kind=str(val("kind") or "log"),
            service=val("service"),
            level=val("level"),
        )


@dataclass(frozen=True)
class NewError:
    """An error template that first appeared after a trigger: ``count`` events, the first cited."""

    template: str
    count: int
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template, "count": self.count, "evidence": self.evidence.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewError:
        return cls(template=data["template"], count=int(data["count"]), evidence=Evidence.from_dict(data["evidence"]))


@dataclass(frozen=True)
class Mechanism:
    """How the failure happened: the failure signature (see :mod:`pmtimeline.signatures`) of the
    incident's errors that appeared first, e.g. ``FATAL: sorry, too many clients already``.

    ``count`` events of the incident carry it (exact), ``before_onset`` events of the window carried
    it before; ``first`` cites the line that names it (its message is that line's text) and is the
    signature's first event of the incident when ``first_is_first`` (else an example of it).
    """

    signature: str
    label: str
    count: int
    before_onset: int
    first: Evidence
    first_is_first: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "label": self.label,
            "count": self.count,
            "before_onset": self.before_onset,
            "first": self.first.to_dict(),
            "first_is_first": self.first_is_first,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Mechanism | None:
        if not data:
            return None
        return cls(
            signature=data["signature"],
            label=data.get("label", data["signature"]),
            count=int(data["count"]),
            before_onset=int(data.get("before_onset", 0)),
            first=Evidence.from_dict(data["first"]),
            first_is_first=bool(data.get("first_is_first", True)),
        )


@dataclass(frozen=True)
class RootCauseCandidate:
    """A ranked explanation with its evidence.

    ``kind``: ``change`` (a change before onset), ``external`` (an external trigger recognized from
    the errors' words or the traffic: ``trigger`` says which), ``first_failing_service`` (where the
    failure began: a place, not a cause) or ``new_error_template`` (a new error that no trigger
    explains). ``why`` says why it ranks where it does (no log text in it); ``new_errors`` are the
    errors that appeared after a trigger, its evidence. ``noise`` candidates were ruled out (changes
    in services that did not fail, long before onset; routine restarts; those ranked below the
    first :data:`MAX_SHOWN`): the draft lists them in its appendix.
    """

    rank: int
    kind: str
    time: pd.Timestamp | None
    service: str | None
    summary: str
    score: float
    evidence: tuple[Evidence, ...] = ()
    why: str = ""
    trigger: str | None = None
    new_errors: tuple[NewError, ...] = ()
    noise: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "kind": self.kind,
            "time": iso_utc(self.time),
            "service": self.service,
            "summary": self.summary,
            "score": round(float(self.score), 4),
            "evidence": [e.to_dict() for e in self.evidence],
            "why": self.why,
            "trigger": self.trigger,
            "new_errors": [n.to_dict() for n in self.new_errors],
            "noise": self.noise,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RootCauseCandidate:
        return cls(
            rank=int(data["rank"]),
            kind=data["kind"],
            time=parse_utc(data.get("time")),
            service=data.get("service"),
            summary=data.get("summary", ""),
            score=float(data.get("score", 0.0)),
            evidence=tuple(Evidence.from_dict(e) for e in data.get("evidence", [])),
            why=data.get("why", ""),
            trigger=data.get("trigger"),
            new_errors=tuple(NewError.from_dict(n) for n in data.get("new_errors", [])),
            noise=bool(data.get("noise", False)),
        )


#: Root-cause candidates the draft shows; the others are in its appendix.
MAX_SHOWN: Final = 5
#: Types of action item.
ACTION_TYPES: Final = ("prevent", "detect", "mitigate", "process")


@dataclass(frozen=True)
class ActionItem:
    """A follow-up derived from one fact of the analysis (see :mod:`pmtimeline.action_items`).

    ``type`` is one of :data:`ACTION_TYPES`; ``priority`` ``P1`` (do first) to ``P3``; ``fact``
    states what the analysis found and ``evidence`` cites it. Owners are left to the team.
    """

    type: str
    priority: str
    action: str
    fact: str
    evidence: tuple[Evidence, ...] = ()
    owner: str = "TBD"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "priority": self.priority,
            "action": self.action,
            "fact": self.fact,
            "evidence": [e.to_dict() for e in self.evidence],
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionItem:
        return cls(
            type=data["type"],
            priority=data["priority"],
            action=data["action"],
            fact=data.get("fact", ""),
            evidence=tuple(Evidence.from_dict(e) for e in data.get("evidence", [])),
            owner=data.get("owner", "TBD"),
        )


@dataclass(frozen=True)
class Metrics:
    """Impact metrics, all derived from the events; None where the data cannot tell.

    Durations are seconds measured from onset. Request counts are within [onset, recovered], each
    request counted once (at the edge when access logs exist).

    A metric with nothing to count is None, never 0: without request events the request counts,
    error rates, endpoints, latency and error budget are unknown; without user ids the affected
    users are. ``unknown_reasons`` says why for each such metric (``{"requests_total": "no request
    logs"}``), and :meth:`unknown_text` words it for outputs. A 0 is a real zero: requests were
    logged and none failed.
    """

    time_to_detect_s: float | None = None
    time_to_mitigate_s: float | None = None
    time_to_recover_s: float | None = None
    time_to_resolve_s: float | None = None
    requests_total: int | None = None
    requests_failed: int | None = None
    error_rate_peak: float | None = None
    error_events: int | None = None
    affected_users: int | None = None
    affected_services: tuple[str, ...] = ()
    affected_hosts: tuple[str, ...] | None = None
    affected_endpoints: tuple[tuple[str, int], ...] | None = None  # (path, failed requests), most first
    latency_ms: dict[str, dict[str, float | None]] | None = None  # before/during -> p50/p95/p99
    error_budget_burn: float | None = None  # fraction of the window's error budget consumed
    estimated_cost: float | None = None  # an estimate, from the user's cost model
    #: Why a metric is None (metric name -> reason, e.g. "no request logs").
    unknown_reasons: dict[str, str] = field(default_factory=dict)
    #: What the analysis looked at in the whole window: ``events``, ``error_events``,
    #: ``warning_events``, ``requests`` and ``failed_requests`` (None without request logs).
    window_totals: dict[str, int | None] = field(default_factory=dict)

    def unknown_text(self, name: str) -> str:
        """``unknown (no request logs)``: how outputs write a metric that is None."""
        reason = self.unknown_reasons.get(name)
        return f"unknown ({reason})" if reason else "unknown"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "affected_endpoints" and value is not None:
                value = [{"path": p, "failed_requests": n} for p, n in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs["affected_services"] = tuple(data.get("affected_services") or ())
        hosts, endpoints = data.get("affected_hosts"), data.get("affected_endpoints")
        kwargs["affected_hosts"] = tuple(hosts) if hosts is not None else None
        kwargs["affected_endpoints"] = (
            tuple((e["path"], int(e["failed_requests"])) for e in endpoints) if endpoints is not None else None
        )
        kwargs["unknown_reasons"] = dict(data.get("unknown_reasons") or {})
        kwargs["window_totals"] = dict(data.get("window_totals") or {})
        return cls(**kwargs)


@dataclass(frozen=True)
class Actor:
    """A suspicious actor of a breach: a client IP or user whose pattern departs from the baseline."""

    actor: str
    actor_kind: str  # "client_ip", "client_range" (a network of several addresses), "client_set" (a botnet) or "user"
    failures: int
    successes: int
    accounts: tuple[str, ...] = ()
    first_seen: pd.Timestamp | None = None
    last_seen: pd.Timestamp | None = None
    members: int | None = None  # a client_range or client_set: how many of its addresses took part
    # A client_set's addresses, so that its evidence can be found among the kept events. Not written
    # to incident.json (hundreds of addresses; the draft cites their lines instead).
    addresses: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "failures": self.failures,
            "successes": self.successes,
            "accounts": list(self.accounts),
            "first_seen": iso_utc(self.first_seen),
            "last_seen": iso_utc(self.last_seen),
            "members": self.members,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Actor:
        return cls(
            actor=data["actor"],
            actor_kind=data["actor_kind"],
            failures=int(data["failures"]),
            successes=int(data["successes"]),
            accounts=tuple(data.get("accounts", ())),
            first_seen=parse_utc(data.get("first_seen")),
            last_seen=parse_utc(data.get("last_seen")),
            members=data.get("members"),
        )


@dataclass(frozen=True)
class Exposure:
    """A breach's exposure: who, which accounts, and what they did with them afterwards."""

    actors: tuple[Actor, ...] = ()
    accounts_touched: tuple[str, ...] = ()
    data_operations: tuple[Evidence, ...] = ()  # the first ones, as evidence
    operation_counts: tuple[tuple[str, int], ...] = ()  # all of them, by kind ("export", "transfer", ...)

    def __bool__(self) -> bool:
        return bool(self.actors)

    def accounts_phrase(self) -> str:
        """``"1,427 account(s)"`` touched, or an unknown number when the logs name no account (an
        access log alone): never an invented 0."""
        n = len(self.accounts_touched)
        return f"{n:,} account(s)" if n else "an unknown number of accounts (the logs name none)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "actors": [a.to_dict() for a in self.actors],
            "accounts_touched": list(self.accounts_touched),
            "data_operations": [e.to_dict() for e in self.data_operations],
            "operation_counts": dict(self.operation_counts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Exposure:
        data = data or {}
        return cls(
            actors=tuple(Actor.from_dict(a) for a in data.get("actors", [])),
            accounts_touched=tuple(data.get("accounts_touched", ())),
            data_operations=tuple(Evidence.from_dict(e) for e in data.get("data_operations", [])),
            operation_counts=tuple((str(k), int(n)) for k, n in (data.get("operation_counts") or {}).items()),
        )


@dataclass(frozen=True)
class Incident:
    """Phases, metrics, exposure and root-cause candidates of one incident, with their evidence."""

    title: str
    window_start: pd.Timestamp | None
    window_end: pd.Timestamp | None
    phases: dict[str, pd.Timestamp | None]
    phase_evidence: dict[str, tuple[Evidence, ...]] = field(default_factory=dict)
    phase_overridden: tuple[str, ...] = ()  # phases the user set by hand
    anomaly_signal: str | None = None  # "errors", "failed_requests" or "warnings"
    metrics: Metrics = field(default_factory=Metrics)
    exposure: Exposure = field(default_factory=Exposure)
    root_cause_candidates: tuple[RootCauseCandidate, ...] = ()
    mechanism: Mechanism | None = None
    #: None when not derived (an incident made by hand, or an incident.json without them); () when
    #: the analysis found no fact that calls for one.
    action_items: tuple[ActionItem, ...] | None = None
    sources: tuple[SourceAccounting, ...] = ()
    partial: bool = False
    partial_reasons: tuple[str, ...] = ()
    redacted: bool = True
    schema_version: int = SCHEMA_VERSION
    #: Zone and clock-skew estimates between sources (pmtimeline.time_inference.inference_dict).
    time_inference: dict[str, Any] = field(default_factory=dict)
    #: The data's span, signal bucket width and outlier timestamps (pmtimeline.aggregate.TimeSpan.to_dict).
    time_span: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.phases) - set(PHASES)
        if unknown:
            raise ConfigError(f"unknown phase(s): {', '.join(sorted(unknown))}")

    def phase(self, name: str) -> pd.Timestamp | None:
        return self.phases.get(name)

    def with_title(self, title: str) -> Incident:
        return replace(self, title=title)

    def to_dict(self) -> dict[str, Any]:
        """The ``incident.json`` document (see ``docs/incident-json.md``)."""
        return {
            "schema_version": self.schema_version,
            "title": self.title,
            "window": {"start": iso_utc(self.window_start), "end": iso_utc(self.window_end)},
            "phases": {p: iso_utc(self.phases.get(p)) for p in PHASES},
            "phase_evidence": {p: [e.to_dict() for e in ev] for p, ev in self.phase_evidence.items()},
            "phase_overridden": list(self.phase_overridden),
            "anomaly_signal": self.anomaly_signal,
            "metrics": self.metrics.to_dict(),
            "exposure": self.exposure.to_dict(),
            "root_cause_candidates": [c.to_dict() for c in self.root_cause_candidates],
            "mechanism": self.mechanism.to_dict() if self.mechanism is not None else None,
            "action_items": None if self.action_items is None else [a.to_dict() for a in self.action_items],
            "sources": [s.to_dict() for s in self.sources],
            "partial": self.partial,
            "partial_reasons": list(self.partial_reasons),
            "redacted": self.redacted,
            "time_inference": dict(self.time_inference),
            "time_span": dict(self.time_span),
        }

    def to_json(self) -> str:
        """The text of ``incident.json``: :meth:`to_dict` indented, non-ASCII text as written, but
        control, bidi and invisible characters (from file names and log text) as ``\\u`` escapes,
        so that no terminal or editor showing the file obeys or reorders them."""
        return json_safe(json.dumps(self.to_dict(), indent=2, ensure_ascii=False)) + "\n"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text form (beside the HTML one): title and phases, not every field."""
        phases = ", ".join(f"{p} {iso_utc(self.phases.get(p)) or '-'}" for p in PHASES)
        printer.text(f"<Incident {self.title!r}: {phases}>")

    def _repr_html_(self) -> str:
        """A notebook summary: phases with their evidence, headline metrics, likely causes.

        Every value is escaped: titles, citations and summaries come from untrusted log text.
        """
        esc = html_text
        phase_rows = []
        for p in PHASES:
            evidence = self.phase_evidence.get(p, ())
            cited = "set by hand" if p in self.phase_overridden else (evidence[0].citation() if evidence else "")
            phase_rows.append(
                f"<tr><td>{esc(p)}</td><td>{esc(iso_utc(self.phases.get(p)) or '—')}</td><td>{esc(cited)}</td></tr>"
            )
        m = self.metrics
        facts = [
            ("time to detect", _duration_text(m.time_to_detect_s)),
            ("time to mitigate", _duration_text(m.time_to_mitigate_s)),
            ("time to recover", _duration_text(m.time_to_recover_s)),
            ("time to resolve", _duration_text(m.time_to_resolve_s)),
            (
                "requests failed / total",
                f"{_count_text(m.requests_failed)} / {_count_text(m.requests_total)}"
                if m.requests_total is not None
                else m.unknown_text("requests_total"),
            ),
            (
                "peak error rate",
                m.unknown_text("error_rate_peak") if m.error_rate_peak is None else f"{m.error_rate_peak:.1%}",
            ),
            ("error events", _count_text(m.error_events)),
            (
                "affected users",
                m.unknown_text("affected_users") if m.affected_users is None else f"{m.affected_users:,}",
            ),
            ("affected services", ", ".join(m.affected_services) or "—"),
        ]
        fact_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in facts)
        causes = "".join(
            f"<li>{esc(c.kind)}: {esc(c.summary[:300])} <small>({esc(c.evidence[0].citation())})</small></li>"
            if c.evidence
            else f"<li>{esc(c.kind)}: {esc(c.summary[:300])}</li>"
            for c in [c for c in self.root_cause_candidates if not c.noise][:3]
        )
        notes = []
        if self.partial:
            notes.append(f"<p><b>Partial:</b> {esc('; '.join(self.partial_reasons)[:500])}</p>")
        return (
            f"<div class='pmtimeline-incident'><b>{esc(self.title)}</b>"
            f"<table><tr><th>phase</th><th>UTC</th><th>evidence</th></tr>{''.join(phase_rows)}</table>"
            f"<table><tr><th>metric</th><th>value</th></tr>{fact_rows}</table>"
            + (f"<p>Likely causes:</p><ol>{causes}</ol>" if causes else "")
            + "".join(notes)
            + "</div>"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        """Rebuild from :meth:`to_dict` output (e.g. a saved, possibly hand-edited incident.json)."""
        try:
            window = data.get("window", {})
            return cls(
                schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
                title=data.get("title", "Incident"),
                window_start=parse_utc(window.get("start")),
                window_end=parse_utc(window.get("end")),
                phases={p: parse_utc(data.get("phases", {}).get(p)) for p in PHASES},
                phase_evidence={
                    p: tuple(Evidence.from_dict(e) for e in ev) for p, ev in data.get("phase_evidence", {}).items()
                },
                phase_overridden=tuple(data.get("phase_overridden", ())),
                anomaly_signal=data.get("anomaly_signal"),
                metrics=Metrics.from_dict(data.get("metrics", {})),
                exposure=Exposure.from_dict(data.get("exposure")),
                root_cause_candidates=tuple(
                    RootCauseCandidate.from_dict(c) for c in data.get("root_cause_candidates", [])
                ),
                mechanism=Mechanism.from_dict(data.get("mechanism")),
                action_items=(
                    None
                    if data.get("action_items") is None
                    else tuple(ActionItem.from_dict(a) for a in data["action_items"])
                ),
                sources=tuple(SourceAccounting.from_dict(s) for s in data.get("sources", [])),
                partial=bool(data.get("partial", False)),
                partial_reasons=tuple(data.get("partial_reasons", ())),
                redacted=bool(data.get("redacted", True)),
                time_inference=dict(data.get("time_inference") or {}),
                time_span=dict(data.get("time_span") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"incident.json is not valid: {exc}") from exc


def _duration_text(seconds: float | None) -> str:
    """``28m 18s`` or ``1h 02m 05s``; an em dash when unknown."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    minutes, sec = divmod(round(abs(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h {minutes:02d}m {sec:02d}s" if hours else f"{sign}{minutes}m {sec:02d}s"


def _count_text(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"
