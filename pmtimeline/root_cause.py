"""Root-cause candidates, ranked as a causal story: the trigger first, its consequences as its evidence.

:func:`rank_root_causes` returns the candidates best first (``rank`` 1, 2, ...); at most
:data:`~pmtimeline.incident.MAX_SHOWN` are shown, the rest are ``noise`` for the draft's appendix.
Every candidate says ``why`` it ranks where it does.

Triggers, which rank first:

``change``
    A change (deploy, config change, migration, ...) within ``change_lookback`` before onset. The
    score multiplies where it happened (an affected service 1.0; a service the affected ones
    depend on 0.8 — seen in the same traces or requests during the incident; a change without
    a service 0.6; elsewhere 0.25), what it was (a deploy or config change 1.0 ... a block 0.3)
    and how close it is to onset (1.0 at onset, 0.25 at the lookback's edge). A change in, or aimed
    at, an affected service or a dependency is a *trigger*: it outranks every symptom, and the new
    error templates that appeared after it become its evidence (``new_errors``). Services match
    loosely (``WAF`` is ``waf``, ``payments`` is ``payments-api``); a change is *aimed at* the failure when,
    within :data:`AIMED_WITHIN` of onset, its message names a failing service or a distinctive word
    of the first new errors (a config push for ``svc-7Xy2`` before errors compiling ``svc-7Xy2``),
    and it is then that service's change, whoever logged it. An operator's command (a ``destructive``
    one such as ``rm -rf``, an ``operation``, a ``config`` change) is also aimed at the failure when
    it ran on the host where the incident's first errors were written (:data:`HOST_COMMANDS`).
Changes recognized by their shape, not their words (``trigger`` ``operation``, lower confidence):
    an operator's act is often worded as no vocabulary foresees ("went live", "kicked off against 96
    routers", "1780 hosts drained"). A non-error log line within ``change_lookback`` before onset that
    is a *one-off* (its template written once in the window), on or aimed at what failed (an affected
    service, the host where the first errors were written, or naming a failing service or the first
    new errors' words, within :data:`AIMED_WITHIN` unless it names a failing service), counts as a
    change when its evidence adds up: from an operational source (an audit, deploy, CI, sudo or
    runbook log, or a line with an actor field: see :data:`pmtimeline.changes.OPERATIONAL_SOURCES`),
    from a service that speaks rarely (:data:`RARE_PER_MINUTE`), stating a value (a version, an
    assignment, a setting: :data:`STATES_A_VALUE`). Its weight is the share of that evidence present;
    a line that reports a failure or a login never counts.
``external``
    A trigger from outside, recognized when the errors' words name it (:mod:`pmtimeline.signatures`:
    an expired certificate, a quota, a calendar edge, memory, disk or file descriptors exhausted, a
    network failure, an unreachable dependency) from shortly before onset on and (nearly) never
    before, or from the traffic: requests far above their rate before onset (``traffic_surge``), or
    a breach's failed logins from a few sources (``attack``, from the exposure). An expired
    certificate, a quota or a calendar edge outranks a deploy (a deploy does not make a certificate
    expire) unless the change is itself a certificate or configuration change; the other external
    triggers rank below a trigger change, which explains them.

Symptoms, which never outrank a trigger:

``first_failing_service``
    The service where the failure began: the origin of most failing requests followed across
    services by trace or request id (the service of their earliest error), else the affected
    service whose errors began first. A place, not a cause.
``new_error_template``
    An error template (see :mod:`pmtimeline.templates`) seen during the incident but never before
    onset, listed only when no trigger explains it.

Noise: changes in services that did not fail and came long before onset (:data:`NOISE_AGE`), and
restarts of services that did not fail.

:func:`find_mechanism` names how the failure happened: the failure signature of the incident's
errors that appeared first (the most specific one: "too many clients" before the pool timeouts it
causes), with its exact count and the line that names it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from pmtimeline.aggregate import Aggregates, auth_outcomes, error_mask, in_window, notable_mask
from pmtimeline.changes import FAILURE_WORDS, LOGIN_LINES, operational_mask
from pmtimeline.config import TimelineConfig
from pmtimeline.correlate import correlation_ids
from pmtimeline.incident import (
    MAX_SHOWN,
    Evidence,
    Exposure,
    Mechanism,
    NewError,
    RootCauseCandidate,
    duration_words,
)
from pmtimeline.phases import EVIDENCE_COLUMNS, first_bad_per_service
from pmtimeline.polars_regex import search_ignoring_case
from pmtimeline.schema import EDGE_FORMAT_PREFIX, ERROR_LEVELS
from pmtimeline.service_names import same_service
from pmtimeline.signals import uses_edge
from pmtimeline.signatures import SIGNATURE_BY_NAME, SIGNATURES, matched_line
from pmtimeline.template_mining import template_clusters
from pmtimeline.templates import arrow_text, message_templates

CHANGE_TYPE_WEIGHT: Final[Mapping[str, float]] = {
    "destructive": 1.0,
    "deploy": 1.0,
    "config": 1.0,
    "migration": 0.9,
    "feature_flag": 0.9,
    "operation": 0.9,
    "certificate": 0.7,
    "rollback": 0.6,
    "failover": 0.5,
    "reroute": 0.5,
    "scale": 0.5,
    "restart": 0.4,
    "block": 0.3,
}
RELATION_WEIGHT: Final[Mapping[str, float]] = {
    "affected": 1.0,
    "aimed": 0.9,
    "dependency": 0.8,
    "unknown": 0.6,
    "other": 0.25,
}
_WORD: Final = re.compile(r"[a-z][a-z0-9_.-]*[a-z0-9]")
_SERVICE_PARTS: Final = re.compile(r"[-_./ ]+")
#: Words too common in logs to link a change to a failure.
_COMMON_WORDS: Final = frozenset(
    """about after again against all also and api app applied apply are before being build change changed changes
    check client cluster code complete completed config configuration connect connection connections could data
    debug default deploy deployed deploying deployment disabled done down enabled error errors event failed
    failing failure for from get got has have host hosts http https info instance instances into level max message
    min more new node nodes none not null only out over port process production push pushed put ready release
    released request requests response restart restarted restarting rollout run running server servers service
    services set started starting status succeeded success sync than that the then this time timed timeout update
    updated user users value version via was were when which while will with worker workers""".split()  # noqa: SIM905 (128 words: one per line reads worse)
)
#: Change types that can start an incident by themselves.
TRIGGER_CHANGES: Final = frozenset(
    {"deploy", "config", "migration", "feature_flag", "certificate", "scale", "destructive", "operation"}
)
#: Changes that an operator's command on a host makes: aimed at the service failing on that host.
HOST_COMMANDS: Final = frozenset({"destructive", "operation", "config"})
#: A change that names what failed is aimed at it when it came at most this long before onset.
AIMED_WITHIN: Final = pd.Timedelta("15min")
#: A change in a service that did not fail, this long before onset, is noise.
NOISE_AGE: Final = pd.Timedelta("10min")
#: Score of an external trigger recognized from the errors' words, by trigger kind.
EXTERNAL_SCORE: Final[Mapping[str, float]] = {
    "certificate_expiry": 0.95,
    "quota": 0.93,
    "calendar": 0.9,
    "resource_exhaustion": 0.75,
    "network": 0.72,
    "dependency_outage": 0.7,
}
#: Words of an external trigger this long before onset still count (a link fails, then requests do).
TRIGGER_LEAD: Final = pd.Timedelta("5min")
#: Words of a trigger first seen later than this after onset are a consequence, not a trigger.
TRIGGER_DELAY: Final = pd.Timedelta("5min")
#: Requests per bucket at least this many times their median before onset make a traffic surge.
SURGE_FACTOR: Final = 3.0
#: New errors cited as a trigger's evidence.
MAX_NEW_ERRORS: Final = 3
#: A service that writes at most this many events per minute of the window, on average, speaks rarely
#: (an audit trail, a deploy tool, a runbook's log): each of its lines is an act worth reading.
RARE_PER_MINUTE: Final = 0.2
#: Words and shapes of a line that sets something (RE2, case-insensitive): a version, an assignment, a
#: transition, a setting, a flag, a rule.
STATES_A_VALUE: Final = (
    r"\bv?\d+\.\d+\.\d+|\bv\d+(?:\.\d+)*\b|@v?\d|[\w.-]=\S|->|\bfrom \S+ to \S|\(was [^)]+\)|"
    r"\b(?:version|revision|release|config\w*|settings?|parameters?|flags?|rules?|ruleset|policy|policies|"
    r"limits?|quotas?|ttl|capacity|maintenance|job|command|runbook|playbook)\b"
)
#: New errors beginning this long after midnight UTC are a calendar edge's (see :func:`_calendar_candidate`).
CALENDAR_EDGE: Final = pd.Timedelta("1min")
#: The weight a change gains when the failure began within one bucket after it.
IMMEDIATE_BONUS: Final = 0.15
#: Candidates recognized by the shape of their line, at most.
MAX_SHAPE_CANDIDATES: Final = 3
MAX_CHANGES: Final = 5
MAX_TEMPLATES: Final = 5
ORIGIN_WHY: Final = "Where the failure began: a place to look, not a cause; it ranks below any trigger."


@dataclass(frozen=True)
class _Found:
    """A candidate before ranking, with what the ranking needs to know of it."""

    score: float
    candidate: RootCauseCandidate
    change_type: str = ""
    is_trigger: bool = False
    signature: str = ""


def _dependencies(linked: pd.DataFrame, services: tuple[str, ...]) -> set[str]:
    """Services seen in the same traces/requests (``cid``) as the affected services."""
    linked = linked.dropna()
    if linked.empty:
        return set()
    touches = linked["service"].isin(list(services))
    touching = touches.groupby(linked["cid"]).transform("any").to_numpy(dtype=bool)
    return set(linked.loc[touching, "service"].astype(str).unique()) - set(services)


def _cid_hashes(events: pd.DataFrame) -> pd.Series:
    """The 64-bit hash of each event's correlation id (null without one), as in
    :attr:`pmtimeline.aggregate.EventDetails.traced`."""
    ids = correlation_ids(events)
    out = pd.Series(pd.NA, index=events.index, dtype="UInt64")
    has = ids.notna().to_numpy(dtype=bool)
    if has.any():
        out[has] = pd.util.hash_array(ids[has].astype(object).to_numpy())
    return out


def _traced(aggregates: Aggregates, config: TimelineConfig, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The traced notable events within [start, end] (``cid``, ``service``, ``error``, ...), with
    those of the notable events that are not in the details (the ordinary sample)."""
    traced = aggregates.event_details(config).traced
    t = traced["timestamp"]
    window = traced.loc[((t >= start) & (t <= end)).to_numpy(dtype=bool, na_value=False)]
    notable = aggregates.notable
    t = notable["timestamp"]
    extra = notable.loc[((t >= start) & (t <= end)).to_numpy(dtype=bool, na_value=False)]
    extra = extra.loc[~notable_mask(extra)] if not extra.empty else extra
    if extra.empty:
        return window
    more = pd.DataFrame(
        {"timestamp": extra["timestamp"], "cid": _cid_hashes(extra), "service": extra["service"], "error": False}
    ).dropna(subset=["cid"])
    return pd.concat([window, more.astype({"cid": "uint64"})], ignore_index=True)


def _text(value: Any) -> str | None:
    """A cell as text, or None when it is null or empty."""
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and value != value) or value == ""
        else str(value)
    )


def _human(delta: pd.Timedelta) -> str:
    """How long, as the draft writes every duration (:func:`~pmtimeline.incident.duration_words`)."""
    return duration_words(abs(delta.total_seconds()))


def _recency(age: pd.Timedelta, lookback: pd.Timedelta, width: pd.Timedelta) -> float:
    """How close a change is to onset, as a weight: 1.0 at onset, 0.25 at the lookback's edge; a change
    the errors followed within one bucket keeps more of it (a change that left the service healthy for
    twenty minutes is less likely the trigger than one the failure followed at once: above 1.0, so the
    product of weights it enters is capped at 1.0 where it is used)."""
    linear = 1.0 - 0.75 * min(1.0, age / lookback) if lookback > pd.Timedelta(0) else 1.0
    return linear * (1.0 + IMMEDIATE_BONUS) if age <= width else linear


def _words(text: str, shortest: int = 4) -> set[str]:
    """The distinctive words of a text: identifiers and names, not the vocabulary every log shares."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= shortest and not w.isdigit() and w not in _COMMON_WORDS}


def _service_words(name: str) -> set[str]:
    """A service's name and its parts, as a change aimed at it would write them (``waf``, ``checkout``)."""
    parts = {p for p in _SERVICE_PARTS.split(name.lower()) if len(p) >= 3 and p not in _COMMON_WORDS}
    return {name.lower(), *parts}


def _same_service(name: str, others: Iterable[str]) -> bool:
    """Loose service identity, the project's one rule (:func:`pmtimeline.service_names.same_service`):
    ``WAF`` is ``waf``, ``payments`` is ``payments-api``."""
    return any(same_service(name, other) for other in others)


def _failing_hosts(
    notable: pd.DataFrame, onset: pd.Timestamp, services: tuple[str, ...], width: pd.Timedelta
) -> dict[str, str]:
    """The hosts where the affected services' errors of the first bucket from onset were written,
    each with its service (the first to fail there)."""
    if "host" not in notable.columns or not services:
        return {}
    t = notable["timestamp"]
    first = notable.loc[
        error_mask(notable)
        & ((t >= onset) & (t < onset + width)).to_numpy(dtype=bool, na_value=False)
        & notable["service"].isin(list(services)).to_numpy(dtype=bool, na_value=False)
        & notable["host"].notna().to_numpy(dtype=bool)
    ]
    first = first.sort_values("timestamp", kind="stable").drop_duplicates("host")
    return dict(zip(first["host"].astype(str), first["service"].astype(str), strict=True))


def _change_candidates(
    notable: pd.DataFrame,
    onset: pd.Timestamp,
    services: tuple[str, ...],
    dependencies: set[str],
    config: TimelineConfig,
    failure_words: set[str],
    failing_services: Mapping[str, str],
    failing_hosts: Mapping[str, str] | None = None,
) -> list[_Found]:
    """Changes before onset; ``failure_words``: the distinctive words of the incident's first new
    errors and failing services, which a change aimed at them names too (``failing_services``: the
    service each of a failing service's words names; ``failing_hosts``: the failing service of each
    host where the incident's first errors were written)."""
    failing_hosts = failing_hosts or {}
    lookback = pd.Timedelta(config.change_lookback)
    t = notable["timestamp"]
    mask = (notable["kind"] == "change") & (t >= onset - lookback) & (t <= onset)
    changes = notable.loc[mask.to_numpy(dtype=bool, na_value=False)]
    out: list[_Found] = []
    for row in changes.to_dict("records"):  # changes before onset: a handful
        service = _text(row["service"])
        at = pd.Timestamp(row["timestamp"])
        age = onset - at
        shared = sorted(_words(str(row["message"] or ""), shortest=3) & failure_words)
        target: str | None = None
        logged_by = ""
        if service is not None and (service in services or _same_service(service, services)):
            relation = "affected"
        elif service is not None and (service in dependencies or _same_service(service, dependencies)):
            relation = "dependency"
        elif (
            _text(row.get("host")) in failing_hosts
            and age <= AIMED_WITHIN
            and _text(row["change_type"]) in HOST_COMMANDS
        ):
            # An operator's command on the machine where the failure began (a sudo rm -rf on the
            # database host) is aimed at the service failing there, whatever program logged it.
            relation = "aimed"
            target = failing_hosts[str(row["host"])]
            shared = [f"host {row['host']}"]
            if target != service:
                logged_by = f" (logged by {service})" if service else ""
                service = target
        elif shared and age <= AIMED_WITHIN:
            relation = "aimed"
            # A change logged by a tool about a failing service it names is that service's change.
            target = next((failing_services[w] for w in shared if w in failing_services), None)
            if target is not None and target != service:
                logged_by = f" (logged by {service})" if service else ""
                service = target
        elif service is None:
            relation = "unknown"
        else:
            relation = "other"
        kind = _text(row["change_type"]) or ""
        recency = _recency(age, lookback, pd.Timedelta(config.bucket))
        score = min(1.0, RELATION_WEIGHT[relation] * CHANGE_TYPE_WEIGHT.get(kind, 0.5) * recency)
        where = f" in {service}" if service else ""
        summary = f"{kind or 'change'}{where} {_human(age)} before onset"
        if relation == "aimed" and target is not None and target == service:
            summary += logged_by
        trigger = relation != "other" and kind in TRIGGER_CHANGES
        noise = relation == "other" and (age > NOISE_AGE or kind == "restart")
        if trigger:
            place = {
                "affected": "in a service that failed",
                "dependency": "in a service the failing ones call (seen in the same requests)",
                "aimed": f"aimed at what failed (it names {', '.join(shared[:3])}, as the failures do)",
                "unknown": "that names no service",
            }[relation]
            why = (
                f"A {kind} {place}, {_human(age)} before onset: the likeliest trigger; the errors that "
                "appeared after it are its evidence, not causes of their own."
            )
            # A trigger outranks every symptom: its score starts above theirs.
            score = 0.6 + 0.4 * score
        elif noise:
            why = (
                "A routine restart of a service that did not fail."
                if kind == "restart"
                else f"A change in a service that did not fail, {_human(age)} before onset."
            )
        elif relation == "other":
            why = f"A change in a service that did not fail, but only {_human(age)} before onset."
        else:
            why = f"A {kind or 'change'} {_human(age)} before onset, of a kind that seldom starts an incident."
        if relation == "dependency":
            summary += " (a service the failing ones call)"
        candidate = RootCauseCandidate(
            rank=0,
            kind="change",
            time=at,
            service=service,
            summary=summary,
            score=score,
            evidence=(Evidence.from_row(pd.Series(row)),),
            why=why,
            trigger=kind or None,
            noise=noise,
        )
        out.append(_Found(score, candidate, kind, trigger))
    out.sort(key=lambda c: -c.score)
    return _merge_duplicates(out, pd.Timedelta(config.bucket), onset)[:MAX_CHANGES]


def _shape_candidates(
    aggregates: Aggregates,
    onset: pd.Timestamp,
    services: tuple[str, ...],
    config: TimelineConfig,
    failure_words: set[str],
    failing_services: Mapping[str, str],
    failing_hosts: Mapping[str, str],
) -> list[_Found]:
    """Changes recognized by the shape of their line, not a vocabulary (see the module docstring)."""
    notable = aggregates.notable
    lookback = pd.Timedelta(config.change_lookback)
    # The quiet log lines (no warning or error: an act is logged as news, not as a problem), whose
    # templates alone are computed: during an outage, the errors are most of the kept events.
    logs = notable.loc[
        (notable["kind"] == "log").to_numpy(dtype=bool, na_value=False)
        & notable["message"].notna().to_numpy(dtype=bool)
        & ~notable["level"].isin(["warning", *ERROR_LEVELS]).to_numpy(dtype=bool, na_value=False)
    ]
    if logs.empty:
        return []
    t = logs["timestamp"]
    near = ((t >= onset - lookback) & (t <= onset)).to_numpy(dtype=bool, na_value=False)
    if not near.any():
        return []
    # One-off: its template is written once in the window (the aggregates keep the first few lines
    # of every template, so a count of one among them is the count).
    templates = message_templates(logs["message"]).fillna("")
    once = templates.map(templates.value_counts()).to_numpy(dtype="int64") == 1
    rows = logs.loc[near & once]
    if rows.empty:
        return []
    text = arrow_text(rows["message"].astype(str))
    plain = ~search_ignoring_case(text, FAILURE_WORDS) & ~search_ignoring_case(text, LOGIN_LINES)
    rows = rows.loc[plain]
    if rows.empty:
        return []
    operational = operational_mask(rows)
    values = search_ignoring_case(arrow_text(rows["message"].astype(str)), STATES_A_VALUE)
    counts = aggregates.counts
    span = pd.Timedelta(0)
    if not counts.empty:
        span = pd.Timestamp(counts["bucket"].max()) - pd.Timestamp(counts["bucket"].min())
    minutes = max(1.0, span / pd.Timedelta("1min"))
    per_service = counts.groupby("service", observed=True)["events"].sum() if not counts.empty else pd.Series()
    rate = rows["service"].fillna("").astype(str).map(per_service).fillna(0).to_numpy(dtype="float64") / minutes
    rare = rate <= RARE_PER_MINUTE
    out: list[_Found] = []
    for i, row in enumerate(rows.to_dict("records")):  # one-off lines before onset: a handful
        service = _text(row["service"])
        at = pd.Timestamp(row["timestamp"])
        age = onset - at
        said = str(row["message"]) + " " + str(_text(row.get("fields")) or "")
        shared = sorted(_words(said, shortest=3) & failure_words)
        names = [failing_services[w] for w in shared if w in failing_services]
        logged_by = service
        if service is not None and _same_service(service, services):
            relation, place = "affected", "in a service that failed"
        elif _text(row.get("host")) in failing_hosts and age <= AIMED_WITHIN:
            relation, service = "aimed", failing_hosts[str(row["host"])]
            place = f"on {row['host']}, the host where the failure began"
        elif names or (shared and age <= AIMED_WITHIN):
            relation = "aimed"
            service = names[0] if names else service
            place = f"aimed at what failed (it names {', '.join(shared[:3])}, as the failures do)"
        else:
            continue  # a one-off line about something else: the incident's logs are full of them
        found = [
            ("from an operational source", bool(operational[i])),
            ("from a source that seldom writes", bool(rare[i])),
            ("stating a value or setting", bool(values[i])),
        ]
        if relation == "affected" and not any(ok for _, ok in found):
            continue  # a one-off line of the failing service itself, with nothing of an act about it
        strength = 0.3 + 0.2 * sum(ok for _, ok in found)
        recency = _recency(age, lookback, pd.Timedelta(config.bucket))
        score = 0.6 + 0.4 * min(1.0, RELATION_WEIGHT[relation] * strength * recency)
        reasons = ", ".join(name for name, ok in found if ok)
        where = f" in {service}" if service else ""
        summary = f"operation{where} {_human(age)} before onset (recognized by its shape, not its words)"
        if logged_by and logged_by != service:
            summary += f" (logged by {logged_by})"
        why = (
            f"A one-off line {place}, {_human(age)} before onset, {reasons}: an act that no change "
            "vocabulary names, so a likely trigger with less confidence than a recognized change."
        )
        candidate = RootCauseCandidate(
            rank=0,
            kind="change",
            time=at,
            service=service,
            summary=summary,
            score=score,
            evidence=(Evidence.from_row(pd.Series(row)),),
            why=why,
            trigger="operation",
        )
        out.append(_Found(score, candidate, "operation", True))
    out.sort(key=lambda c: -c.score)
    return out[:MAX_SHAPE_CANDIDATES]


def _retimed(candidate: RootCauseCandidate, evidence: tuple[Evidence, ...], onset: pd.Timestamp) -> RootCauseCandidate:
    """A merged change begins at its earliest line: its time, and the age its words state, from there
    (the draft cites that line beside "N min before onset", which must hold for it)."""
    if candidate.time is None:
        return replace(candidate, evidence=evidence, time=evidence[0].time)
    said = f"{_human(onset - candidate.time)} before onset"
    now = f"{_human(onset - evidence[0].time)} before onset"
    return replace(
        candidate,
        evidence=evidence,
        time=evidence[0].time,
        summary=candidate.summary.replace(said, now),
        why=candidate.why.replace(said, now),
    )


def _merge_duplicates(found: list[_Found], within: pd.Timedelta, onset: pd.Timestamp) -> list[_Found]:
    """One candidate per change: the same deploy logged by the CD tool and by the service itself (or
    without a service) within one bucket is one change, with the evidence of both."""
    merged: list[_Found] = []
    for item in found:  # best first
        candidate = item.candidate
        for i, kept in enumerate(merged):
            same_kind = kept.change_type == item.change_type
            close = (
                kept.candidate.time is not None
                and candidate.time is not None
                and abs(kept.candidate.time - candidate.time) <= within
            )
            same_place = (
                kept.candidate.service == candidate.service
                or candidate.service is None
                or kept.candidate.service is None
            )
            if same_kind and close and same_place:
                # The earliest line first: the change began there (the CD tool's line, often).
                evidence = tuple(sorted((*kept.candidate.evidence, *candidate.evidence), key=lambda e: e.time))[:3]
                merged[i] = replace(kept, candidate=_retimed(kept.candidate, evidence, onset))
                break
        else:
            merged.append(item)
    return merged


def _new_templates(
    aggregates: Aggregates, onset: pd.Timestamp, recovered: pd.Timestamp, config: TimelineConfig
) -> tuple[list[tuple[NewError, float, bool]], int]:
    """Error templates seen in [onset, recovered] and never before onset (as an error or a warning),
    earliest first, each with its share of the incident's errors and whether it is an access log's
    (an edge request); and the incident's error count.

    Counts and first times come from the template table of the details, exact to
    ``count_resolution``; the cited event is the template's first error, which the notable events
    always hold.
    """
    table = aggregates.event_details(config).templates
    if table.empty:
        return [], 0
    # The aggregates key masked templates chunk by chunk; the miner merges those of one kind across
    # the window (a user name or host in the message no longer makes each line a new template).
    mined = template_clusters(table.groupby("template", observed=True)["count"].sum())
    table = table.assign(template=table["template"].map(mined))
    is_error = (table["level"] == "error").to_numpy(dtype=bool, na_value=False)
    # Baseline templates include the warnings before onset: a message that was a warning yesterday
    # is not new today.
    baseline = set(table.loc[(table["first"] < onset).to_numpy(dtype=bool), "template"])
    incident = table.loc[is_error & in_window(table, onset, recovered)]
    total = int(incident["count"].sum())
    new = incident.loc[~incident["template"].isin(baseline).to_numpy(dtype=bool) & (incident["template"] != "")]
    if new.empty or total == 0:
        return [], total
    counts = new.groupby("template", observed=True)["count"].sum()
    notable = aggregates.notable
    t = notable["timestamp"]
    errors = notable.loc[
        error_mask(notable) & ((t >= onset) & (t <= recovered)).to_numpy(dtype=bool, na_value=False),
        [*EVIDENCE_COLUMNS, "format"],
    ]
    masked = message_templates(errors["message"]).fillna("")
    errors = errors.assign(
        template=masked.map(mined).fillna(masked).to_numpy(),
        format=errors["format"].fillna("").str.startswith(EDGE_FORMAT_PREFIX).to_numpy(dtype=bool),
    ).rename(columns={"format": "edge"})
    found = errors.loc[errors["template"].isin(list(counts.index))].drop_duplicates("template")
    # Reopened shared outputs hold redacted messages, whose templates can differ from the table's
    # (an IP becomes a token): the first error at the template's first time stands in for them.
    missing = counts.index.difference(found["template"])
    if len(missing):
        first = new.loc[new["template"].isin(list(missing))].groupby("template", observed=True)["first"].min()
        at = errors.drop_duplicates("timestamp").set_index("timestamp")
        stand_ins = at.loc[at.index.intersection(first.to_numpy())].reset_index()
        stand_ins = stand_ins.merge(
            pd.DataFrame({"timestamp": first.to_numpy(), "table_template": first.index.astype(str)}), on="timestamp"
        )
        stand_ins = stand_ins.assign(template=stand_ins.pop("table_template"))
        found = pd.concat([found, stand_ins], ignore_index=True).sort_values("timestamp", kind="stable")
    out = []
    for row in found.to_dict("records"):  # one row per new template
        template = str(row["template"])
        n = int(counts[template])
        error = NewError(template, n, Evidence.from_row(pd.Series(row).drop(["template", "edge"])))
        out.append((error, n / total, bool(row["edge"])))
    return out, total


def _template_candidates(new: list[tuple[NewError, float, bool]]) -> list[_Found]:
    """New error templates as candidates of their own: only when no trigger explains them."""
    out = []
    for position, (error, share, _) in enumerate(new[:MAX_TEMPLATES]):
        score = 0.3 + 0.2 * share + 0.05 * (1 - position / MAX_TEMPLATES)
        service = error.evidence.service
        where = f" in {service}" if service else ""
        out.append(
            _Found(
                score,
                RootCauseCandidate(
                    rank=0,
                    kind="new_error_template",
                    time=error.evidence.time,
                    service=service,
                    summary=f"new error{where}: {error.template} ({error.count} events, {share:.0%} of errors)",
                    score=score,
                    evidence=(error.evidence,),
                    why="A new error with no change or external trigger found to explain it: a symptom at least.",
                ),
            )
        )
    return out


def _signature_counts(
    aggregates: Aggregates, start: pd.Timestamp, recovered: pd.Timestamp, config: TimelineConfig
) -> pd.DataFrame:
    """Per failure signature: ``count`` in [start, recovered], ``before`` (events before that) and
    ``first`` (its first time in the incident), earliest first."""
    table = aggregates.event_details(config).signatures
    columns = ["signature", "count", "before", "first"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    during = table.loc[in_window(table, start, recovered)]
    if during.empty:
        return pd.DataFrame(columns=columns)
    before = table.loc[(table["last"] < start).to_numpy(dtype=bool, na_value=False)]
    counts = during.groupby("signature", observed=True).agg(count=("count", "sum"), first=("first", "min"))
    counts["before"] = before.groupby("signature", observed=True)["count"].sum().reindex(counts.index).fillna(0)
    counts = counts.astype({"before": "int64"}).reset_index()
    # New, or at least ten times as frequent as before onset: not the background.
    counts = counts.loc[(counts["count"] >= 10 * counts["before"]).to_numpy(dtype=bool)]
    order = {s.name: i for i, s in enumerate(SIGNATURES)}
    counts = counts.assign(_order=counts["signature"].astype(str).map(order))
    return counts.sort_values(["first", "_order"], kind="stable").loc[:, columns].reset_index(drop=True)


def _signature_evidence(
    aggregates: Aggregates, signature: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[Evidence, ...]:
    """The earliest kept events of ``signature`` in [start, end] (at most 3), each citing the line
    that names it, with that line as its message."""
    named = aggregates.notable_signatures()  # searched once per analysis, not once per signature
    rows = aggregates.notable.iloc[named.index[(named == signature).to_numpy(dtype=bool, na_value=False)]]
    t = rows["timestamp"]
    rows = rows.loc[((t >= start) & (t <= end)).to_numpy(dtype=bool, na_value=False)]
    if rows.empty:
        return ()
    rows = rows.sort_values(["timestamp", "source", "line"], kind="stable").head(3)
    found = []
    for row in rows.itertuples(index=False):  # at most three
        evidence = Evidence.from_row(row)
        hit = matched_line(evidence.message, SIGNATURE_BY_NAME[signature])
        if hit is not None:
            offset, text = hit
            line = evidence.line + offset if evidence.line is not None else None
            evidence = replace(evidence, line=line, message=text)
        else:
            hit = matched_line(str(_text(row.fields) or ""), SIGNATURE_BY_NAME[signature])
            if hit is not None:
                evidence = replace(evidence, message=hit[1])
        found.append(evidence)
    return tuple(found)


def find_mechanism(
    aggregates: Aggregates, phases: Mapping[str, pd.Timestamp | None], config: TimelineConfig
) -> Mechanism | None:
    """How the failure happened: the incident's first failure signature, the most specific first.

    Signatures that start incidents by themselves or name an exhausted resource (too many clients,
    too many open files, an expired certificate) come before the symptoms they cause (an exhausted
    connection pool); among those, the earliest in the incident. None without an onset or without
    any signature new to the incident.
    """
    onset = phases.get("onset")
    if onset is None:
        return None
    recovered = phases.get("recovered") or aggregates.window_end or onset
    counts = _signature_counts(aggregates, onset - pd.Timedelta(config.bucket), recovered, config)
    if counts.empty:
        return None
    specific = counts.loc[counts["signature"].astype(str).map(lambda n: SIGNATURE_BY_NAME[n].trigger is not None)]
    chosen = (specific if not specific.empty else counts).iloc[0]
    name = str(chosen["signature"])
    first = pd.Timestamp(chosen["first"])
    evidence = _signature_evidence(aggregates, name, onset - pd.Timedelta(config.bucket), recovered)
    if not evidence:
        return None
    return Mechanism(
        signature=name,
        label=SIGNATURE_BY_NAME[name].label,
        count=int(chosen["count"]),
        before_onset=int(chosen["before"]),
        first=evidence[0],
        # The table's first time is exact to count_resolution; the kept event is the first when it
        # falls within that resolution of it.
        first_is_first=abs(evidence[0].time - first) <= pd.Timedelta(config.count_resolution),
    )


def _first_word_of(
    notable: pd.DataFrame, evidence: tuple[Evidence, ...], onset: pd.Timestamp, config: TimelineConfig
) -> tuple[Evidence, ...]:
    """An external trigger's evidence, from the first warning its source wrote about it: the source
    that names the failure (a network monitor) often began warning, in other words, shortly before
    (from :data:`TRIGGER_LEAD` before onset) after a quiet ``change_lookback``."""
    first = evidence[0]
    if first.service is None or first.time <= onset - TRIGGER_LEAD:
        return evidence
    t = notable["timestamp"]
    own = notable.loc[
        (notable["service"] == first.service).to_numpy(dtype=bool, na_value=False)
        & (notable["kind"] == "log").to_numpy(dtype=bool, na_value=False)
        & (error_mask(notable) | (notable["level"] == "warning").to_numpy(dtype=bool, na_value=False))
        & ((t >= onset - pd.Timedelta(config.change_lookback)) & (t < first.time)).to_numpy(dtype=bool, na_value=False)
    ]
    if own.empty or (own["timestamp"] < onset - TRIGGER_LEAD).any():
        return evidence  # the source warns all the time: its earlier warnings are its background
    earliest = own.sort_values(["timestamp", "source", "line"], kind="stable").iloc[0]
    return (Evidence.from_row(earliest), *evidence[:2])


def _calendar_candidate(new: list[tuple[NewError, float, bool]], onset: pd.Timestamp) -> list[_Found]:
    """A calendar edge told by timing alone: the incident's first new error began within
    :data:`CALENDAR_EDGE` after midnight UTC (a date rollover, a leap day, or a job scheduled then),
    whatever words its errors use (those naming one are :func:`_external_candidates`')."""
    if not new:
        return []
    error = new[0][0]
    at = error.evidence.time
    since = at - at.normalize()
    if since > CALENDAR_EDGE or abs(at - onset) > CALENDAR_EDGE:
        return []
    score = EXTERNAL_SCORE["calendar"] * 0.9
    summary = f"calendar edge: new errors from {_human(since)} after midnight UTC of {at.date().isoformat()}"
    why = (
        f"The incident's first new error began {_human(since)} after midnight UTC: a date rollover (a leap "
        "day, a month or year end) or a job scheduled at midnight; told by timing, not by the errors' words."
    )
    return [
        _Found(
            score,
            RootCauseCandidate(
                0, "external", at, error.evidence.service, summary, score, (error.evidence,), why, "calendar"
            ),
            is_trigger=True,
            signature="calendar-timing",
        )
    ]


def _external_candidates(
    aggregates: Aggregates, onset: pd.Timestamp, recovered: pd.Timestamp, config: TimelineConfig
) -> list[_Found]:
    """External triggers named by the errors' words, from shortly before onset (:data:`TRIGGER_LEAD`) on."""
    counts = _signature_counts(aggregates, onset - TRIGGER_LEAD, recovered, config)
    out: list[_Found] = []
    for row in counts.to_dict("records"):  # one per signature: a handful
        signature = SIGNATURE_BY_NAME[str(row["signature"])]
        if signature.trigger is None:
            continue
        first = pd.Timestamp(row["first"])
        evidence = _signature_evidence(aggregates, signature.name, onset - TRIGGER_LEAD, recovered)
        if not evidence:
            continue
        evidence = _first_word_of(aggregates.notable, evidence, onset, config)
        late = first > onset + TRIGGER_DELAY
        # Words first seen late are a consequence: below the symptoms that came first.
        score = EXTERNAL_SCORE[signature.trigger] * (0.4 if late else 1.0)
        before = int(row["before"])
        seen = "none before onset" if before == 0 else f"{before} before onset"
        timing = f"from {_human(first - onset)} after onset" if first >= onset else "from just before onset"
        why = f"The errors name {signature.label}: {int(row['count'])} events {timing}, {seen}." + (
            " First seen late in the incident, so more likely a consequence." if late else ""
        )
        summary = f"{signature.trigger.replace('_', ' ')}: {signature.label} ({int(row['count'])} events)"
        out.append(
            _Found(
                score,
                RootCauseCandidate(
                    rank=0,
                    kind="external",
                    time=evidence[0].time,
                    service=evidence[0].service,
                    summary=summary,
                    score=score,
                    evidence=evidence,
                    why=why,
                    trigger=signature.trigger,
                ),
                is_trigger=not late,
                signature=signature.name,
            )
        )
    return out


def _surge_candidate(
    aggregates: Aggregates, onset: pd.Timestamp, recovered: pd.Timestamp, config: TimelineConfig
) -> list[_Found]:
    """A traffic surge: requests per bucket during the incident far above their median before it."""
    counts = aggregates.counts
    if counts.empty:
        return []
    column = "edge_requests" if uses_edge(counts) else "requests"
    width = pd.Timedelta(config.bucket)
    per = counts.groupby(counts["bucket"].dt.floor(width))[column].sum()
    before = per.loc[per.index < onset.floor(width)]
    during = per.loc[(per.index >= onset.floor(width)) & (per.index <= recovered)]
    # A median needs a baseline of some length, and a surge some volume.
    if len(before) < 10 or during.empty or float(before.median()) <= 0:
        return []
    median = float(before.median())
    peak_at: pd.Timestamp = during.index[int(during.to_numpy().argmax())]
    peak = float(during.max())
    if peak < SURGE_FACTOR * median or peak < 30:
        return []
    score = 0.8
    # The counts hold no lines: the first kept request of the peak bucket is cited as an example of it.
    notable = aggregates.notable
    t = notable["timestamp"]
    requests = notable.loc[
        (notable["kind"] == "request").to_numpy(dtype=bool, na_value=False)
        & ((t >= peak_at) & (t < peak_at + width)).to_numpy(dtype=bool, na_value=False)
    ]
    if column == "edge_requests":
        requests = requests.loc[requests["format"].fillna("").str.startswith(EDGE_FORMAT_PREFIX).to_numpy(dtype=bool)]
    requests = requests.sort_values(["timestamp", "source", "line"], kind="stable")
    evidence = (Evidence.from_row(requests.iloc[0]),) if not requests.empty else ()
    summary = f"traffic surge: {peak:,.0f} requests per {config.bucket} at the peak, {peak / median:.1f}x the median"
    why = (
        f"Requests peaked at {peak / median:.1f} times their median per {config.bucket} before onset "
        f"({median:,.0f}): more load than the service was sized for."
    )
    return [
        _Found(
            score,
            RootCauseCandidate(0, "external", peak_at, None, summary, score, evidence, why, "traffic_surge"),
            is_trigger=True,
        )
    ]


def _attack_evidence(notable: pd.DataFrame, exposure: Exposure) -> tuple[Evidence, ...]:
    """The attackers' first failed and first successful login among the kept events (where their
    address or user is written), then their first data operation."""
    names = {a.actor for a in exposure.actors}
    for actor in exposure.actors:  # a botnet's name is a count: its addresses are its members
        names.update(actor.addresses)
    ips, users = notable["client_ip"], notable["user"]
    # Address ranges (a.b.c.0/24) hold their addresses: each distinct address is checked once.
    ranges = []
    for actor in exposure.actors:
        if actor.actor_kind == "client_range":
            try:
                ranges.append(ipaddress.ip_network(actor.actor, strict=False))
            except ValueError:
                continue
    for address in ips.dropna().unique() if ranges else ():
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            continue
        if any(ip.version == net.version and ip in net for net in ranges):
            names.add(str(address))
    mine = (ips.isin(list(names)) | users.isin(list(names))).to_numpy(dtype=bool, na_value=False)
    rows = notable.loc[mine].sort_values(["timestamp", "source", "line"], kind="stable")
    found: list[Evidence] = []
    if not rows.empty:
        failure, success = auth_outcomes(rows)
        for mask in (failure, success):
            if mask.any():
                found.append(Evidence.from_row(rows.iloc[int(np.flatnonzero(mask)[0])]))
    return (*found, *exposure.data_operations[:1])


def _attack_candidate(notable: pd.DataFrame, exposure: Exposure | None) -> list[_Found]:
    """A breach: failed logins concentrated on a few sources, then successes (the exposure)."""
    if not exposure:
        return []
    assert exposure is not None
    failures = sum(a.failures for a in exposure.actors)
    evidence = _attack_evidence(notable, exposure)
    first = min((a.first_seen for a in exposure.actors if a.first_seen is not None), default=None)
    summary = (
        f"attack: {failures:,} failed logins from {len(exposure.actors)} actor(s), {exposure.accounts_phrase()} touched"
    )
    why = "Failed logins concentrated on a few sources, then successful ones: an attack on the accounts, not a fault."
    score = 0.97
    return [
        _Found(
            score,
            RootCauseCandidate(0, "external", first, None, summary, score, evidence, why, "attack"),
            is_trigger=True,
        )
    ]


def _origin_candidate(
    aggregates: Aggregates,
    onset: pd.Timestamp,
    recovered: pd.Timestamp,
    signal: str,
    services: tuple[str, ...],
    edge: bool,
    config: TimelineConfig,
    traced: pd.DataFrame,
) -> list[tuple[float, RootCauseCandidate]]:
    """The first failing service; ``traced``: :func:`_traced` from one bucket before onset to recovery."""
    width = pd.Timedelta(config.bucket)
    errors = traced.loc[traced["error"].to_numpy(dtype=bool, na_value=False)].dropna(subset=["service"])
    notable = aggregates.notable
    t = notable["timestamp"]
    window = notable.loc[
        ((t >= onset - width) & (t <= recovered)).to_numpy(dtype=bool, na_value=False),
        [*EVIDENCE_COLUMNS, "format", "http_status", "trace_id", "request_id"],
    ]
    if not errors.empty:
        spans = errors.groupby("cid")["service"].transform("nunique").to_numpy(dtype="int64")
        multi = errors.loc[spans >= 2]
        if not multi.empty:
            # An access log reports its upstream's failure: within a request, an edge (access-log)
            # error is the origin only when no other service failed.
            ordered = multi.sort_values(
                ["cid", "edge", "timestamp", "source", "line"], kind="stable", na_position="last"
            )
            origins = ordered.drop_duplicates("cid")
            votes = origins["service"].astype(str).value_counts()
            origin = str(votes.index[0])
            share = float(votes.iloc[0] / votes.sum())
            summary = (
                f"failing requests start in {origin}: {votes.iloc[0]} of {votes.sum()} failing requests "
                "followed across services fail there first"
            )
            evidence = _request_trail(window, origins.loc[origins["service"].astype(str) == origin, "cid"])
            if evidence:
                return [
                    (
                        0.5 + 0.3 * share,
                        RootCauseCandidate(
                            0, "first_failing_service", evidence[0].time, origin, summary, 0.5 + 0.3 * share, evidence
                        ),
                    )
                ]
    firsts = first_bad_per_service(window, signal, edge, onset - width, recovered)
    if services:
        firsts = firsts.loc[firsts["service"].fillna("").isin(list(services)).to_numpy(dtype=bool)]
    firsts = firsts.loc[firsts["service"].notna().to_numpy(dtype=bool)]
    if firsts.empty:
        return []
    first = firsts.iloc[0]
    order = ", ".join(str(s) for s in firsts["service"].head(5))
    summary = f"errors began first in {first['service']} (order: {order})"
    score = 0.55 if len(firsts) > 1 else 0.4
    evidence = tuple(Evidence.from_row(r) for r in firsts.head(3).itertuples(index=False))
    return [
        (
            score,
            RootCauseCandidate(
                0, "first_failing_service", evidence[0].time, str(first["service"]), summary, score, evidence
            ),
        )
    ]


def _request_trail(window: pd.DataFrame, cids: pd.Series) -> tuple[Evidence, ...]:
    """The errors (at most 4, in time order) of one failing request that starts in the origin: the
    earliest among those whose errors the notable events hold (all of
    them on a small window; a sample of :data:`pmtimeline.aggregate.TRAIL_REQUESTS` otherwise)."""
    errors = window.loc[error_mask(window) & window["service"].notna().to_numpy(dtype=bool)]
    if errors.empty:
        return ()
    ids = correlation_ids(errors)
    mine = (_cid_hashes(errors).isin(set(cids.tolist())) & ids.notna()).to_numpy(dtype=bool, na_value=False)
    if not mine.any():
        return ()
    # The earliest of them (ties by id): the candidate is timed at its first error, so it must be the
    # first failing request seen, not an arbitrary one.
    starts = pd.DataFrame({"id": ids[mine].astype(str).to_numpy(), "t": errors["timestamp"].to_numpy()[mine]})
    example = starts.sort_values(["t", "id"], kind="stable")["id"].iloc[0]
    trail = errors.loc[(ids == example).to_numpy(dtype=bool, na_value=False)]
    trail = trail.sort_values("timestamp", kind="stable").head(4)
    return tuple(Evidence.from_row(r) for r in trail.itertuples(index=False))


def rank_root_causes(
    aggregates: Aggregates,
    phases: Mapping[str, pd.Timestamp | None],
    signal: str | None,
    services: tuple[str, ...],
    config: TimelineConfig,
    *,
    exposure: Exposure | None = None,
    mechanism: Mechanism | None = None,
) -> tuple[RootCauseCandidate, ...]:
    """The ranked root-cause candidates of the incident (none without an onset), triggers first.

    The best trigger gets the new errors that appeared after it (``new_errors``) and the
    ``mechanism`` (when given and later than it) as its evidence; the new errors are candidates of
    their own only when no trigger was found. At most :data:`~pmtimeline.incident.MAX_SHOWN`
    candidates are not ``noise``.
    """
    onset = phases.get("onset")
    if onset is None:
        return ()
    recovered = phases.get("recovered") or aggregates.window_end or onset
    notable = aggregates.notable
    # One selection of the traced events serves both: the dependencies look from onset, the origin
    # from one bucket before it (each is a row filter of the same events, and costs as much).
    traced = _traced(aggregates, config, onset - pd.Timedelta(config.bucket), recovered)
    since_onset = traced.loc[(traced["timestamp"] >= onset).to_numpy(dtype=bool, na_value=False)]
    dependencies = _dependencies(since_onset, services) if services else set()
    new, _ = _new_templates(aggregates, onset, recovered, config)
    # What a change aimed at the failure would name: the first new errors' words and the failing services.
    failure_words: set[str] = set()
    for error, _, edge in new[:10]:
        if not edge:
            failure_words |= _words(error.evidence.message.split("\n", 1)[0])
    failing_services: dict[str, str] = {}
    for name in sorted({*services, *(e.evidence.service for e, _, _ in new[:10] if e.evidence.service)}):
        for word in _service_words(name):
            failing_services.setdefault(word, name)
    failure_words |= set(failing_services)
    failing_hosts = _failing_hosts(notable, onset, services, pd.Timedelta(config.bucket))
    changes = _change_candidates(
        notable, onset, services, dependencies, config, failure_words, failing_services, failing_hosts
    )
    shapes = _shape_candidates(aggregates, onset, services, config, failure_words, failing_services, failing_hosts)
    changes = sorted([*changes, *shapes], key=lambda c: -c.score)
    externals = [
        *_external_candidates(aggregates, onset, recovered, config),
        *_surge_candidate(aggregates, onset, recovered, config),
        *_attack_candidate(notable, exposure),
    ]
    if not any(e.candidate.trigger == "calendar" for e in externals):
        externals.extend(_calendar_candidate(new, onset))
    if exposure:
        # An attack's requests are its surge: the surge is not a trigger of its own.
        externals = [
            replace(e, score=min(e.score, 0.5), is_trigger=False) if e.candidate.trigger == "traffic_surge" else e
            for e in externals
        ]
    trigger_changes = [c for c in changes if c.is_trigger]
    if trigger_changes:
        # A change explains the resource exhaustion, the outage of a dependency and the surge that
        # follow it; not an expired certificate or a quota, unless it changed certificates or config.
        best = trigger_changes[0]
        overriding = best.change_type in {"certificate", "config"}
        externals = [
            e
            if e.candidate.trigger in {"certificate_expiry", "quota", "calendar", "attack"} and not overriding
            else replace(
                e,
                score=min(e.score, 0.55),
                is_trigger=False,
                candidate=replace(e.candidate, why=e.candidate.why + " The change before it explains it better."),
            )
            for e in externals
        ]
        # The words that name the mechanism the change set off are the mechanism (named beside the
        # change, and in its evidence), not a second explanation.
        if mechanism is not None:
            externals = [e for e in externals if e.is_trigger or e.signature != mechanism.signature]
    origin = [
        # A place, not a cause: it ranks below every trigger.
        _Found(min(score, 0.55), replace(candidate, why=ORIGIN_WHY))
        for score, candidate in _origin_candidate(
            aggregates, onset, recovered, signal or "errors", services, uses_edge(aggregates.counts), config, traced
        )
    ]
    found = [*changes, *externals, *origin]
    triggers = [f for f in found if f.is_trigger and not f.candidate.noise]
    if not triggers:
        found.extend(_template_candidates(new))
    found.sort(key=lambda c: (c.candidate.noise, -c.score, c.candidate.time if c.candidate.time is not None else onset))
    if triggers:
        top = found[0]
        at = top.candidate.time or onset
        # Access-log request lines repeat the services' failures: the services' own errors tell more.
        after = tuple(error for error, _, edge in new if error.evidence.time >= at and not edge)
        top_errors = tuple(sorted(after, key=lambda e: -e.count)[:MAX_NEW_ERRORS])
        evidence = top.candidate.evidence
        if mechanism is not None and mechanism.first.time >= at and mechanism.first not in evidence:
            evidence = (*evidence, mechanism.first)
        found[0] = replace(top, candidate=replace(top.candidate, new_errors=top_errors, evidence=evidence))
    out = []
    for i, item in enumerate(found):
        c = item.candidate
        noise = c.noise or i >= MAX_SHOWN
        why = c.why if c.noise or i < MAX_SHOWN else f"Ranked below the {MAX_SHOWN} shown. {c.why}"
        out.append(replace(c, rank=i + 1, score=round(item.score, 4), noise=noise, why=why))
    return tuple(out)
