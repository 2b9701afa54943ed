"""The incident analysis: from :class:`~pmtimeline.aggregate.Aggregates` to an :class:`Incident`.

:func:`analyze` is the one entry point::

    anomaly   = signals.find_anomaly(counts)              # the sustained rise, its signal, its services
    phases    = phases.detect_phases(anomaly, notable)     # onset ... resolved, with evidence; overrides win
    metrics   = impact.compute_metrics(phases, aggregates) # a function of (phases, aggregates)
    exposure  = exposure.detect_exposure(aggregates, ...)  # breach actors, accounts, data operations
    mechanism = root_cause.find_mechanism(aggregates, phases)   # "too many clients", counted, first line
    causes    = root_cause.rank_root_causes(aggregates, phases, ..., exposure, mechanism)  # trigger first
    actions   = action_items.derive_action_items(incident)      # typed items, each from a fact

Because metrics are a function of the phases and the aggregates, :func:`apply_overrides` can apply
a user's phase overrides to a saved incident: with the aggregates (rebuilt from the saved events)
everything is recomputed; without them only the durations can be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from pmtimeline.action_items import derive_action_items
from pmtimeline.aggregate import Aggregates, span_config
from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.errors import ConfigError
from pmtimeline.exposure import breach_phases, detect_exposure
from pmtimeline.impact import compute_metrics
from pmtimeline.incident import Incident, Metrics
from pmtimeline.phases import detect_phases
from pmtimeline.root_cause import find_mechanism, rank_root_causes
from pmtimeline.signals import find_anomaly, uses_edge
from pmtimeline.sources import SourceAccounting


def _check(overrides: Mapping[str, pd.Timestamp | None]) -> None:
    unknown = set(overrides) - set(PHASES)
    if unknown:
        raise ConfigError(f"unknown phase(s): {', '.join(sorted(unknown))}; use {', '.join(PHASES)}")


def _incident(
    aggregates: Aggregates,
    config: TimelineConfig,
    overrides: Mapping[str, pd.Timestamp | None],
    title: str,
    sources: tuple[SourceAccounting, ...],
) -> Incident:
    _check(overrides)
    # Buckets wide enough that the signals stay a few thousand long, whatever the span.
    config = span_config(config, aggregates)
    anomaly = find_anomaly(aggregates.counts, config, aggregates.window_start, aggregates.window_end)
    edge = uses_edge(aggregates.counts)
    result = detect_phases(anomaly, aggregates.notable, config, edge, overrides, aggregates.window_end)
    if all(result.phases[p] is None for p in PHASES) and not overrides:
        # A breach need raise no anomaly (failed logins at level info, 401s are no server errors):
        # then its burst of failed logins gives the phases.
        exposure = detect_exposure(aggregates, None, None, config)
        if exposure:
            found, evidence = breach_phases(exposure, aggregates.notable, aggregates.window_end)
            result = replace(result, phases=found, evidence=evidence)
    else:
        exposure = detect_exposure(aggregates, result.phases["onset"], result.phases["recovered"], config)
        onset = result.phases["onset"]
        if exposure and onset is not None and result.phases["mitigated"] is None and "mitigated" not in overrides:
            # A breach is contained when the access is cut (ranges blocked, passwords reset, sessions
            # revoked), which may come well after the failed logins, and so after "recovered".
            found, evidence = breach_phases(exposure, aggregates.notable, aggregates.window_end)
            contained = found["mitigated"]
            if contained is not None and contained >= onset:
                result = replace(
                    result,
                    phases={**result.phases, "mitigated": contained},
                    evidence={**result.evidence, "mitigated": evidence["mitigated"]},
                )
    phases = result.phases
    signal = anomaly.signal if anomaly is not None else None
    # The anomaly's services stand while its onset and recovery do; overridden bounds recompute them.
    known = anomaly.services if anomaly is not None and not {"onset", "recovered"} & set(overrides) else None
    metrics = compute_metrics(phases, aggregates, config, signal, known)
    services = known if known is not None else metrics.affected_services
    mechanism = find_mechanism(aggregates, phases, config)
    causes = rank_root_causes(aggregates, phases, signal, services, config, exposure=exposure, mechanism=mechanism)
    reasons = tuple(f"{s.name}: {s.partial_reason or 'incomplete'}" for s in sources if s.partial)
    incident = Incident(
        title=title,
        window_start=aggregates.window_start,
        window_end=aggregates.window_end,
        phases=phases,
        phase_evidence=result.evidence,
        phase_overridden=result.overridden,
        anomaly_signal=signal if phases["onset"] is not None else None,
        metrics=metrics,
        exposure=exposure,
        root_cause_candidates=causes,
        mechanism=mechanism,
        sources=sources,
        partial=bool(reasons),
        partial_reasons=reasons,
        redacted=config.redact,
        time_span=aggregates.span.to_dict() if aggregates.span is not None else {},
    )
    return replace(incident, action_items=derive_action_items(incident, alert_intervals(aggregates.notable)))


def analyze(aggregates: Aggregates, sources: Sequence[SourceAccounting], config: TimelineConfig) -> Incident:
    """Analyze a window: phases with evidence, impact metrics, exposure and root-cause candidates.

    ``config.phase_overrides`` win over the detected phases and flow into every metric. Data without
    an incident gives an :class:`Incident` whose phases are all None.
    """
    return _incident(aggregates, config, dict(config.phase_overrides), config.title, tuple(sources))


def apply_overrides(
    incident: Incident,
    overrides: Mapping[str, pd.Timestamp | None],
    aggregates: Aggregates | None = None,
    config: TimelineConfig | None = None,
) -> Incident:
    """``incident`` with the phases in ``overrides`` set by hand (None clears a phase).

    The overrides join those already in the incident. With ``aggregates`` (e.g. rebuilt from the
    saved ``events.parquet`` with an :class:`~pmtimeline.aggregate.Aggregator`) the phases,
    metrics, exposure and candidates are recomputed; without them only the phases and the
    durations change, and the counts are kept as they were.
    """
    _check(overrides)
    config = config or TimelineConfig()
    merged: dict[str, pd.Timestamp | None] = {p: incident.phases.get(p) for p in incident.phase_overridden}
    merged.update(overrides)
    if aggregates is not None:
        redone = _incident(aggregates, config, merged, incident.title, incident.sources)
        return replace(
            redone,
            partial=incident.partial,
            partial_reasons=incident.partial_reasons,
            time_inference=incident.time_inference,  # found while reading the logs, not from the aggregates
            # Aggregates reopened from saved outputs hold no outliers any more: the saved listing stands.
            time_span=redone.time_span or incident.time_span,
        )
    phases = {**incident.phases, **merged}
    onset = phases.get("onset")

    def since_onset(name: str) -> float | None:
        at = phases.get(name)
        return None if onset is None or at is None else float((at - onset).total_seconds())

    metrics: Metrics = replace(
        incident.metrics,
        time_to_detect_s=since_onset("detected"),
        time_to_mitigate_s=since_onset("mitigated"),
        time_to_recover_s=since_onset("recovered"),
        time_to_resolve_s=since_onset("resolved"),
    )
    evidence = {p: ev for p, ev in incident.phase_evidence.items() if p not in merged}
    overridden = tuple(p for p in PHASES if p in merged)
    updated = replace(incident, phases=phases, phase_evidence=evidence, phase_overridden=overridden, metrics=metrics)
    # The items follow the phases; without the aggregates there are no alert intervals, so the
    # alert-based items (a monitoring gap, a flapping alert) are not derived again.
    return replace(updated, action_items=derive_action_items(updated))
