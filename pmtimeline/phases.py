"""The phases of an incident (onset, detected, mitigated, recovered, resolved), each with evidence.

From the anomaly of :mod:`pmtimeline.signals`, the notable events and the alert intervals:

* ``onset``: the first bad event (of the anomaly's signal) of an affected service in the first
  anomalous bucket, walked back (at most ``WALK_BACK`` buckets, never before the last change before
  it) to the first event of the new error templates of that bucket when the failure started slowly;
  its evidence is the events of that very second (a later line is never cited for it);
* ``detected``: the first alert episode that fires at or after onset (a lead of up to one bucket
  is tolerated: alerts evaluate on their own clock), is still open at onset, fires before the
  incident is over, and concerns the anomaly: its service is an affected one (names compared
  loosely by :func:`pmtimeline.service_names.service_matches`: ``payments`` and ``Payments API``
  match ``payments-api``) or it has no service;
* ``mitigated``: the first mitigating change from onset to recovery (a rollback, revert, restart,
  failover, reroute, scale-up, block, certificate, config change or feature flag); changes of
  affected services win over changes without a service, which win over changes elsewhere (a
  database failover mitigates a payments outage when nothing was done to payments itself). A
  plain deploy counts when
  it lands in an affected service after onset: that is a fix forward;
* ``recovered``: the last bad event of an affected service in the anomaly's last bucket, i.e.
  before the signal is back at baseline for good; None while the window ends in the anomaly;
* ``resolved``: when the detecting alert resolved; else the last resolution of an alert episode
  that concerns the anomaly (an incident tool's ``resolved`` event is such an episode).

User overrides win: an overridden onset is also the onset the later phases are searched from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.changes import MITIGATING_CHANGE_TYPES
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.incident import Evidence
from pmtimeline.service_names import service_matches
from pmtimeline.signals import Anomaly, bad_event_mask
from pmtimeline.template_mining import mine_templates

#: Evidence events kept per phase.
EVIDENCE_PER_PHASE: Final = 3
#: Onset is walked back at most this many buckets to the first event of the incident's new errors,
#: and errors of a template seen earlier than that are the baseline's (see ``_walk_back``).
WALK_BACK: Final = 5
#: The walk back stops at a gap of more than this many buckets between two of those events.
WALK_GAP: Final = 2


@dataclass(frozen=True)
class PhaseResult:
    """Phases with their evidence, and what the later stages need to know about them."""

    phases: dict[str, pd.Timestamp | None]
    evidence: dict[str, tuple[Evidence, ...]] = field(default_factory=dict)
    overridden: tuple[str, ...] = ()
    detecting_alert: str | None = None


def _service_key(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str)


def _rows(frame: pd.DataFrame, limit: int = EVIDENCE_PER_PHASE) -> tuple[Evidence, ...]:
    return tuple(Evidence.from_row(r) for r in frame.head(limit).itertuples(index=False))


def _alert_evidence(row: pd.Series, column: str) -> Evidence:
    """The evidence of an alert episode's ``fired`` or ``resolved`` time: the event that reported it,
    cited at its own line (a resolution is never cited where the alert fired)."""
    source, line = row[f"{column}_source"], row[f"{column}_line"]
    return Evidence(
        time=pd.Timestamp(row[column]),
        source=str(source) if pd.notna(source) else "alerts",
        line=int(line) if pd.notna(line) else None,
        message=str(row["summary"]) if pd.notna(row["summary"]) else str(row["alert_name"]),
        kind="alert",
        service=str(row["service"]) if pd.notna(row["service"]) else None,
        level=str(row["severity"]) if pd.notna(row["severity"]) else None,
    )


#: The columns an :class:`Evidence` is made from.
EVIDENCE_COLUMNS: Final = ("timestamp", "source", "line", "message", "kind", "service", "level")


def bad_events(
    notable: pd.DataFrame, anomaly: Anomaly, edge: bool, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The notable events that count toward the anomaly's signal, of its affected services (only
    ``columns`` of them when given: copying the rows of the others is most of the cost)."""
    mask = bad_event_mask(notable, anomaly.signal, edge)
    bad = notable.loc[mask] if columns is None else notable.loc[mask, list(columns)]
    if anomaly.services:
        bad = bad.loc[_service_key(bad["service"]).isin(list(anomaly.services)).to_numpy()]
    return bad


def _same_second(rows: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """The rows of ``rows`` in the same second as ``at``: a phase's evidence holds the phase's time as
    the draft writes it (to the second), never a later line cited beside it."""
    second = rows["timestamp"].dt.floor("s")
    same: pd.DataFrame = rows.loc[(second == at.floor("s")).to_numpy(dtype=bool, na_value=False)]
    return same


def _walk_back(
    bad: pd.DataFrame, notable: pd.DataFrame, onset: pd.Timestamp, early: pd.DataFrame, width: pd.Timedelta
) -> pd.DataFrame:
    """The bad log events before ``onset`` that begin the incident's new errors (empty when none).

    A failure can start slowly (a few OOM kills a minute) before its buckets rise above the
    threshold: the incident began at the first event of the error templates of its ``early`` bad
    events (its first :data:`WALK_BACK` anomalous buckets) that are new, i.e. absent from the errors
    more than :data:`WALK_BACK` buckets before onset. The walk is bounded: at most that far back, not
    across a gap of more than :data:`WALK_GAP` buckets between two of those events (or failed
    requests), and never before the last change before onset (what came before a change is not what
    it set off).
    """
    logs = early.loc[(early["kind"] != "request").to_numpy(dtype=bool, na_value=False)]
    if logs.empty:
        return bad.iloc[:0]
    horizon = onset - WALK_BACK * width
    times = bad["timestamp"]
    changes = notable.loc[(notable["kind"] == "change").to_numpy(dtype=bool, na_value=False), "timestamp"]
    changes = changes.loc[((changes >= horizon) & (changes < onset)).to_numpy(dtype=bool, na_value=False)]
    if not changes.empty:
        horizon = max(horizon, pd.Timestamp(changes.max()))
    earlier = bad.loc[
        (times < onset).to_numpy(dtype=bool, na_value=False)
        & (bad["kind"] != "request").to_numpy(dtype=bool, na_value=False)
    ]
    if earlier.empty:
        return bad.iloc[:0]
    # Mined together, so that lines of one kind with other words in them (user names, hosts) share a
    # template: a background failed login of an account the attack tries later is the baseline's.
    mined = mine_templates(pd.concat([earlier["message"], logs["message"]], ignore_index=True)).fillna("")
    templates = pd.Series(mined.iloc[: len(earlier)].to_numpy(), index=earlier.index)
    incident = set(mined.iloc[len(earlier) :])
    baseline = set(templates.loc[(earlier["timestamp"] < onset - WALK_BACK * width).to_numpy(dtype=bool)])
    new = incident - baseline - {""}
    mine = earlier.loc[
        templates.isin(list(new)).to_numpy(dtype=bool) & (earlier["timestamp"] >= horizon).to_numpy(dtype=bool)
    ]
    if mine.empty:
        return bad.iloc[:0]
    # Walk back from onset through the chain of these events while they stay close to each other;
    # the failed requests between them (the edge's 503s while the service dies slowly) bridge gaps
    # but never begin the incident by themselves.
    requests = bad.loc[
        (times < onset).to_numpy(dtype=bool, na_value=False)
        & (times >= horizon).to_numpy(dtype=bool, na_value=False)
        & (bad["kind"] == "request").to_numpy(dtype=bool, na_value=False),
        "timestamp",
    ]
    stamps = np.sort(np.concatenate([mine["timestamp"].array.asi8, requests.array.asi8, [onset.value]]))
    gaps = np.diff(stamps) > (WALK_GAP * width).value
    reached = stamps[int(np.flatnonzero(gaps)[-1]) + 1] if gaps.any() else stamps[0]
    walked: pd.DataFrame = mine.loc[mine["timestamp"].array.asi8 >= reached]
    return walked


def detect_onset_recovery(
    anomaly: Anomaly, notable: pd.DataFrame, edge: bool, config: TimelineConfig
) -> tuple[tuple[pd.Timestamp, tuple[Evidence, ...]], tuple[pd.Timestamp | None, tuple[Evidence, ...]]]:
    """(onset, evidence), (recovered, evidence) of an anomaly; onset walked back to the first event
    of the incident's new errors (see :func:`_walk_back`)."""
    width = pd.Timedelta(config.bucket)
    bad = bad_events(notable, anomaly, edge, EVIDENCE_COLUMNS)
    bad = bad.iloc[np.argsort(bad["timestamp"].array.asi8, kind="stable")]
    times = bad["timestamp"]
    first = bad.loc[(times >= anomaly.start) & (times < anomaly.start + width)]
    if first.empty:
        first = bad.loc[(times >= anomaly.start) & (times < anomaly.end + width)]
    onset_time = pd.Timestamp(first["timestamp"].iloc[0]) if not first.empty else anomaly.start
    if not first.empty:
        # The incident's early errors name its templates (its first bucket may hold requests only).
        early = bad.loc[(times >= anomaly.start) & (times < anomaly.start + WALK_BACK * width)]
        before = _walk_back(bad, notable, onset_time, early, width)
        if not before.empty:
            first = before
            onset_time = pd.Timestamp(before["timestamp"].iloc[0])
    onset = (onset_time, _rows(_same_second(first, onset_time)))
    if anomaly.ongoing:
        return onset, (None, ())
    last = bad.loc[(times >= anomaly.end) & (times < anomaly.end + width)]
    if last.empty:
        last = bad.loc[(times >= anomaly.start) & (times < anomaly.end + width)]
    recovered_time = pd.Timestamp(last["timestamp"].iloc[-1]) if not last.empty else anomaly.end + width
    return onset, (recovered_time, _rows(_same_second(last.iloc[::-1], recovered_time)))


def _concerning(
    intervals: pd.DataFrame,
    onset: pd.Timestamp,
    until: pd.Timestamp | None,
    services: Sequence[str],
    config: TimelineConfig,
) -> pd.DataFrame:
    lead = pd.Timedelta(config.bucket)
    fired = intervals["fired"]
    ok = fired.notna() & (fired >= onset - lead)
    ok &= intervals["resolved"].isna() | (intervals["resolved"] >= onset)
    if until is not None:
        ok &= fired <= until
    concerns = {s: service_matches(s, services) for s in intervals["service"].dropna().astype(str).unique()}
    ok &= intervals["service"].map(concerns).fillna(True).astype(bool)  # an alert without a service concerns all
    return intervals.loc[ok.to_numpy(dtype=bool, na_value=False)].sort_values("fired", kind="stable")


def _mitigation(
    notable: pd.DataFrame,
    onset: pd.Timestamp,
    until: pd.Timestamp | None,
    services: Sequence[str],
) -> pd.DataFrame:
    changes = notable.loc[(notable["kind"] == "change").to_numpy(dtype=bool, na_value=False)]
    times = changes["timestamp"]
    in_time = times >= onset
    if until is not None:
        in_time &= times <= until
    changes = changes.loc[in_time.to_numpy(dtype=bool, na_value=False)]
    service = _service_key(changes["service"])
    named = [s for s in services if s]  # "" (events without a service) is not a service to act on
    local = service.isin(named).to_numpy(dtype=bool) if named else np.ones(len(changes), dtype=bool)
    unattributed = (service == "").to_numpy(dtype=bool)
    kind = changes["change_type"]
    mitigating = kind.isin(list(MITIGATING_CHANGE_TYPES)).to_numpy(dtype=bool, na_value=False) | (
        (kind == "deploy").to_numpy(dtype=bool, na_value=False) & local & bool(named)
    )
    # Changes of the affected services first, then changes without a service, then the rest.
    for preferred in (mitigating & local, mitigating & unattributed, mitigating):
        if preferred.any():
            return changes.loc[preferred]
    return changes.iloc[:0]


def detect_phases(
    anomaly: Anomaly | None,
    notable: pd.DataFrame,
    config: TimelineConfig,
    edge: bool,
    overrides: Mapping[str, pd.Timestamp | None] | None = None,
    window_end: pd.Timestamp | None = None,
) -> PhaseResult:
    """The phases of the incident, their evidence, and which ones the user set."""
    overrides = dict(config.phase_overrides if overrides is None else overrides)
    phases: dict[str, pd.Timestamp | None] = dict.fromkeys(PHASES)
    evidence: dict[str, tuple[Evidence, ...]] = {}
    services: tuple[str, ...] = anomaly.services if anomaly is not None else ()
    if anomaly is not None:
        (found_onset, onset_ev), (found_recovered, recovered_ev) = detect_onset_recovery(anomaly, notable, edge, config)
        phases["onset"], phases["recovered"] = found_onset, found_recovered
        evidence["onset"], evidence["recovered"] = onset_ev, recovered_ev
    for name in ("onset", "recovered"):
        if name in overrides:
            phases[name] = overrides[name]
            evidence[name] = ()

    detecting: str | None = None
    onset = phases["onset"]
    if onset is not None:
        width = pd.Timedelta(config.bucket)
        recovered = phases["recovered"]
        until = recovered + config.quiet_buckets * width if recovered is not None else window_end
        intervals = alert_intervals(notable.loc[(notable["kind"] == "alert").to_numpy(dtype=bool, na_value=False)])
        concerning = _concerning(intervals, onset, until, services, config)
        if not concerning.empty:
            first = concerning.iloc[0]
            detecting = str(first["alert_id"])
            phases["detected"] = pd.Timestamp(first["fired"])
            evidence["detected"] = (_alert_evidence(first, "fired"),)
            resolved = first["resolved"]
            if pd.isna(resolved):
                done = concerning.loc[concerning["resolved"].notna()]
                if not done.empty:
                    first = done.iloc[int(np.argmax(done["resolved"].array.asi8))]
                    resolved = first["resolved"]
            if pd.notna(resolved):
                phases["resolved"] = pd.Timestamp(resolved)
                evidence["resolved"] = (_alert_evidence(first, "resolved"),)
        mitigation_until = recovered + width if recovered is not None else window_end
        mitigations = _mitigation(notable, onset, mitigation_until, services)
        if not mitigations.empty:
            phases["mitigated"] = pd.Timestamp(mitigations["timestamp"].iloc[0])
            evidence["mitigated"] = _rows(mitigations, 1)
    for name in ("detected", "mitigated", "resolved"):
        if name in overrides:
            phases[name] = overrides[name]
            evidence[name] = ()
    overridden = tuple(p for p in PHASES if p in overrides)
    evidence = {p: ev for p, ev in evidence.items() if ev}
    return PhaseResult(phases=phases, evidence=evidence, overridden=overridden, detecting_alert=detecting)


def first_bad_per_service(
    notable: pd.DataFrame, signal: str, edge: bool, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The first bad event of each service within [start, end], earliest first."""
    bad = notable.loc[bad_event_mask(notable, signal, edge)]
    times = bad["timestamp"]
    bad = bad.loc[((times >= start) & (times <= end)).to_numpy(dtype=bool, na_value=False)]
    key = _service_key(bad["service"])
    firsts = bad.loc[~key.duplicated().to_numpy(dtype=bool)]
    order = np.argsort(firsts["timestamp"].array.asi8, kind="stable")
    return firsts.iloc[order]
