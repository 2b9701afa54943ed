"""Root-cause candidates, ranked by a score in [0, 1], each with its evidence.

Three kinds of candidate:

``change``
    A change (deploy, config change, migration, ...) within ``change_lookback`` before onset. The
    score multiplies where it happened (an affected service 1.0; a service the affected ones
    depend on 0.8 — seen in the same traces or requests during the incident; a change without
    a service 0.6; elsewhere 0.25), what it was (a deploy or config change 1.0 ... a block 0.3)
    and how close it is to onset (1.0 at onset, 0.25 at the lookback's edge).
``new_error_template``
    An error message template (see :mod:`pmtimeline.templates`) seen during the incident but never
    before onset in the window: listed earliest first, scored by its share of the incident's errors.
``first_failing_service``
    The service where the failure began: the origin of most failing requests followed across
    services by trace or request id (the service of their earliest error), else the affected
    service whose errors began first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import pandas as pd

from pmtimeline.aggregate import Aggregates, error_mask, in_window, notable_mask
from pmtimeline.config import TimelineConfig
from pmtimeline.correlate import correlation_ids
from pmtimeline.incident import Evidence, RootCauseCandidate
from pmtimeline.phases import EVIDENCE_COLUMNS, first_bad_per_service
from pmtimeline.signals import uses_edge
from pmtimeline.template_mining import template_clusters
from pmtimeline.templates import message_templates

CHANGE_TYPE_WEIGHT: Final[Mapping[str, float]] = {
    "deploy": 1.0,
    "config": 1.0,
    "migration": 0.9,
    "feature_flag": 0.9,
    "certificate": 0.7,
    "rollback": 0.6,
    "failover": 0.5,
    "reroute": 0.5,
    "scale": 0.5,
    "restart": 0.4,
    "block": 0.3,
}
RELATION_WEIGHT: Final[Mapping[str, float]] = {"affected": 1.0, "dependency": 0.8, "unknown": 0.6, "other": 0.25}
MAX_CHANGES: Final = 5
MAX_TEMPLATES: Final = 5


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
    seconds = int(abs(delta.total_seconds()))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _change_candidates(
    notable: pd.DataFrame,
    onset: pd.Timestamp,
    services: tuple[str, ...],
    dependencies: set[str],
    config: TimelineConfig,
) -> list[tuple[float, RootCauseCandidate]]:
    lookback = pd.Timedelta(config.change_lookback)
    t = notable["timestamp"]
    mask = (notable["kind"] == "change") & (t >= onset - lookback) & (t <= onset)
    changes = notable.loc[mask.to_numpy(dtype=bool, na_value=False)]
    out: list[tuple[float, RootCauseCandidate, str]] = []
    for row in changes.to_dict("records"):  # changes before onset: a handful
        service = _text(row["service"])
        if service is None:
            relation = "unknown"
        elif service in services:
            relation = "affected"
        elif service in dependencies:
            relation = "dependency"
        else:
            relation = "other"
        kind = _text(row["change_type"])
        at = pd.Timestamp(row["timestamp"])
        age = onset - at
        recency = 1.0 - 0.75 * min(1.0, age / lookback) if lookback > pd.Timedelta(0) else 1.0
        score = RELATION_WEIGHT[relation] * CHANGE_TYPE_WEIGHT.get(kind or "", 0.5) * recency
        where = f" in {service}" if service else ""
        summary = f"{kind or 'change'}{where} {_human(age)} before onset"
        if relation == "dependency":
            summary += " (a service the failing ones call)"
        out.append(
            (
                score,
                RootCauseCandidate(
                    rank=0,
                    kind="change",
                    time=at,
                    service=service,
                    summary=summary,
                    score=score,
                    evidence=(Evidence.from_row(pd.Series(row)),),
                ),
                kind or "",
            )
        )
    out.sort(key=lambda c: -c[0])
    return _merge_duplicates(out, pd.Timedelta(config.bucket))[:MAX_CHANGES]


def _merge_duplicates(
    found: list[tuple[float, RootCauseCandidate, str]], within: pd.Timedelta
) -> list[tuple[float, RootCauseCandidate]]:
    """One candidate per change: the same deploy logged by the CD tool and by the service itself (or
    without a service) within one bucket is one change, with the evidence of both."""
    merged: list[tuple[float, RootCauseCandidate, str]] = []
    for score, candidate, change_type in found:  # best first
        for i, (kept_score, kept, kept_type) in enumerate(merged):
            same_kind = kept_type == change_type
            close = kept.time is not None and candidate.time is not None and abs(kept.time - candidate.time) <= within
            same_place = kept.service == candidate.service or candidate.service is None or kept.service is None
            if same_kind and close and same_place:
                evidence = (*kept.evidence, *candidate.evidence)[:3]
                merged[i] = (kept_score, replace(kept, evidence=evidence), kept_type)
                break
        else:
            merged.append((score, candidate, change_type))
    return [(score, candidate) for score, candidate, _ in merged]


def _template_candidates(
    aggregates: Aggregates, onset: pd.Timestamp, recovered: pd.Timestamp, config: TimelineConfig
) -> list[tuple[float, RootCauseCandidate]]:
    """Error templates seen in [onset, recovered] and never before onset (as an error or a warning).

    Counts and first times come from the template table of the details, exact to
    ``count_resolution``; the cited event is the template's first error, which the notable events
    always hold.
    """
    table = aggregates.event_details(config).templates
    if table.empty:
        return []
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
        return []
    counts = new.groupby("template", observed=True)["count"].sum()
    notable = aggregates.notable
    t = notable["timestamp"]
    errors = notable.loc[
        error_mask(notable) & ((t >= onset) & (t <= recovered)).to_numpy(dtype=bool, na_value=False),
        list(EVIDENCE_COLUMNS),
    ]
    masked = message_templates(errors["message"]).fillna("")
    errors = errors.assign(template=masked.map(mined).fillna(masked).to_numpy())
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
    firsts = found.head(MAX_TEMPLATES)
    out = []
    for position, row in enumerate(firsts.to_dict("records")):
        template = str(row["template"])
        n = int(counts[template])
        share = n / total
        score = 0.35 + 0.3 * share + 0.1 * (1 - position / MAX_TEMPLATES)
        service = _text(row["service"])
        where = f" in {service}" if service else ""
        out.append(
            (
                score,
                RootCauseCandidate(
                    rank=0,
                    kind="new_error_template",
                    time=pd.Timestamp(row["timestamp"]),
                    service=service,
                    summary=f"new error{where}: {template} ({n} events, {share:.0%} of errors)",
                    score=score,
                    evidence=(Evidence.from_row(pd.Series(row).drop("template")),),
                ),
            )
        )
    return out


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
    one with the smallest correlation id among those whose errors the notable events hold (all of
    them on a small window; a sample of :data:`pmtimeline.aggregate.TRAIL_REQUESTS` otherwise)."""
    errors = window.loc[error_mask(window) & window["service"].notna().to_numpy(dtype=bool)]
    if errors.empty:
        return ()
    ids = correlation_ids(errors)
    mine = (_cid_hashes(errors).isin(set(cids.tolist())) & ids.notna()).to_numpy(dtype=bool, na_value=False)
    if not mine.any():
        return ()
    example = min(ids[mine].astype(str))
    trail = errors.loc[(ids == example).to_numpy(dtype=bool, na_value=False)]
    trail = trail.sort_values("timestamp", kind="stable").head(4)
    return tuple(Evidence.from_row(r) for r in trail.itertuples(index=False))


def rank_root_causes(
    aggregates: Aggregates,
    phases: Mapping[str, pd.Timestamp | None],
    signal: str | None,
    services: tuple[str, ...],
    config: TimelineConfig,
) -> tuple[RootCauseCandidate, ...]:
    """The ranked root-cause candidates of the incident (none without an onset)."""
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
    found = [
        *_change_candidates(notable, onset, services, dependencies, config),
        *_template_candidates(aggregates, onset, recovered, config),
        *_origin_candidate(
            aggregates, onset, recovered, signal or "errors", services, uses_edge(aggregates.counts), config, traced
        ),
    ]
    found.sort(key=lambda c: (-c[0], c[1].time if c[1].time is not None else onset))
    return tuple(
        RootCauseCandidate(
            rank=i + 1,
            kind=c.kind,
            time=c.time,
            service=c.service,
            summary=c.summary,
            score=round(score, 4),
            evidence=c.evidence,
        )
        for i, (score, c) in enumerate(found)
    )
