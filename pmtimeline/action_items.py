"""Action items that follow from the findings: each from one fact of the analysis, with its evidence.

:func:`derive_action_items` is a pure function of an :class:`~pmtimeline.incident.Incident` (and
its alert intervals). Every item is typed (``prevent``, ``detect``, ``mitigate``, ``process``),
has a priority (``P1`` first) and an owner left to the team (``TBD``), and states the fact it comes
from with that fact's evidence. There is no filler: a rule whose fact is absent writes nothing.

======================================  =========  ==========================================================
fact                                    type       item
======================================  =========  ==========================================================
no alert before impact was visible      detect     alert on the signal that moved first
time to detect over 5 minutes           detect     alert on the signal that moved first, sooner
over 15 minutes from detection to the   mitigate   rollback automation (the mitigation was a rollback) or a
first mitigating change                            runbook
the mechanism (see                      prevent /  its specific guard: pool sizing against max_connections,
:mod:`pmtimeline.signatures`)           detect /   fd limits, certificate expiry monitoring, quota alarms, date
                                        mitigate   tests, link redundancy ...
a traffic surge                         prevent    load test and autoscaling for the surge seen
the trigger is a change with no sign    prevent    canary (progressive rollout with automatic rollback)
of a progressive rollout
an alert that fired 3 or more times     detect     tuning (hysteresis, ``for`` duration, grouping)
a breach                                mitigate,  credential rotation and session revocation, access review
                                        prevent    and notification, lockout of repeated failed logins
partial sources, rejected lines         process    fix the logging that made the data incomplete
======================================  =========  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pandas as pd

from pmtimeline.incident import ActionItem, Evidence, Incident, Mechanism, RootCauseCandidate, duration_words

#: Detection slower than this gives an alerting item.
DETECTION_LAG: Final = pd.Timedelta("5min")
#: More than this between detection (else onset) and the first mitigating change gives a rollback or runbook item.
SLOW_MITIGATION: Final = pd.Timedelta("15min")
#: An alert that fired this long before onset still counts as firing for the incident.
ALERT_LEAD: Final = pd.Timedelta("5min")
#: An alert that fired this many times in the window flaps.
FLAPPING_FIRES: Final = 3
#: Change types a canary protects against.
ROLLED_OUT: Final = frozenset({"deploy", "config", "feature_flag", "migration", "operation"})
#: Words that show a change was rolled out progressively.
PROGRESSIVE_WORDS: Final = ("canary", "progressive", "blue/green", "blue-green", "rollout step", "setweight", "% of")

#: The guard of each mechanism (signature name -> (type, priority, action)).
MECHANISM_GUARDS: Final[Mapping[str, tuple[str, str, str]]] = {
    "db_connections_exhausted": (
        "prevent",
        "P1",
        "Size connection pools against the database's max_connections (pool size x instances of every client "
        "stays below it), check it in review, and alert on connections in use",
    ),
    "connection_pool_exhausted": (
        "prevent",
        "P2",
        "Alert on connection-pool wait time and saturation, and size the pool for the load",
    ),
    "file_descriptors": (
        "prevent",
        "P1",
        "Raise the file-descriptor limit to fit the load, and alert on open files approaching it",
    ),
    "certificate_expired": (
        "detect",
        "P1",
        "Monitor certificate expiry (alert 30 and 7 days ahead) and automate renewal",
    ),
    "quota_exceeded": (
        "detect",
        "P1",
        "Alarm on quota and rate-limit usage (e.g. at 80 %) and raise limits ahead of need",
    ),
    "memory_exhausted": (
        "prevent",
        "P1",
        "Set memory limits with headroom, alert on memory growth, and find what consumed the memory",
    ),
    "disk_full": (
        "detect",
        "P1",
        "Alert on disk usage well before full, and rotate or clean up what fills it",
    ),
    "date_edge": (
        "prevent",
        "P1",
        "Test date arithmetic across leap days, year ends and daylight-saving changes (validity periods, "
        "expiries, schedules)",
    ),
    "network_partition": (
        "mitigate",
        "P2",
        "Give the failing path redundancy and alert on link state and packet loss before it becomes an outage",
    ),
    "dependency_unreachable": (
        "mitigate",
        "P2",
        "Bound the calls to the dependency (timeouts, retries with backoff, a circuit breaker) and alert on "
        "its availability",
    ),
}


def _duration(delta: pd.Timedelta) -> str:
    return duration_words(abs(delta.total_seconds()))


def _evidence(incident: Incident, *phases: str) -> tuple[Evidence, ...]:
    """The first evidence of each phase (phases set by hand have none)."""
    return tuple(ev[0] for p in phases if (ev := incident.phase_evidence.get(p, ())))


def _shown(incident: Incident) -> list[RootCauseCandidate]:
    return sorted((c for c in incident.root_cause_candidates if not c.noise), key=lambda c: c.rank)


def _first_signal(incident: Incident) -> str:
    """What moved first, in words: the mechanism, else the anomaly's signal where failures began."""
    origin = next((c for c in _shown(incident) if c.kind == "first_failing_service" and c.service), None)
    signal = (incident.anomaly_signal or "errors").replace("_", " ")
    where = f" of {origin.service}" if origin is not None else ""
    return f"the {signal}{where}"


def _alert_fired_during(incident: Incident, intervals: pd.DataFrame) -> bool:
    """Whether an alert fired from shortly before onset to the end of the incident."""
    onset = incident.phase("onset")
    if onset is None or intervals.empty or "fired" not in intervals.columns:
        return False
    end = incident.phase("resolved") or incident.phase("recovered") or incident.window_end
    fired = intervals["fired"].dropna()
    inside = fired >= onset - ALERT_LEAD
    if end is not None:
        inside &= fired <= end
    return bool(inside.any())


def _detection_items(incident: Incident, intervals: pd.DataFrame | None) -> list[ActionItem]:
    onset, detected = incident.phase("onset"), incident.phase("detected")
    if onset is None:
        return []
    # A gap is a fact only when the alerts are known and none fired during the incident (a
    # detection set by hand or by a customer's report is no alert).
    if intervals is not None and not _alert_fired_during(incident, intervals):
        return [
            ActionItem(
                "detect",
                "P1",
                f"Add an alert on {_first_signal(incident)}, which moved first, so that it pages before users notice",
                "no alert fired during the incident",
                _evidence(incident, "onset"),
            )
        ]
    if detected is None or detected - onset <= DETECTION_LAG:
        return []
    return [
        ActionItem(
            "detect",
            "P2",
            f"Alert on {_first_signal(incident)}, which moved first, so that detection takes under "
            f"{_duration(DETECTION_LAG)}",
            f"detection took {_duration(detected - onset)} after onset",
            _evidence(incident, "onset", "detected"),
        )
    ]


def _mitigation_items(incident: Incident) -> list[ActionItem]:
    onset, mitigated = incident.phase("onset"), incident.phase("mitigated")
    start_phase = "detected" if incident.phase("detected") is not None else "onset"
    start = incident.phase(start_phase)
    if onset is None or start is None or mitigated is None or mitigated - start <= SLOW_MITIGATION:
        return []
    evidence = _evidence(incident, start_phase, "mitigated")
    words = " ".join(e.message.lower() for e in incident.phase_evidence.get("mitigated", ()))
    rollback = any(w in words for w in ("rollback", "roll back", "rolling back", "rolled back", "revert"))
    action = (
        "Make rollback a one-step (or automatic, on the error rate) operation for this service"
        if rollback
        else "Write a runbook for this failure, with the mitigation that worked as its first step"
    )
    return [
        ActionItem(
            "mitigate",
            "P2",
            action,
            f"the first mitigating change came {_duration(mitigated - start)} after "
            + ("detection" if start_phase == "detected" else "onset")
            + (" (a rollback)" if rollback else ""),
            evidence,
        )
    ]


def _mechanism_items(mechanism: Mechanism | None) -> list[ActionItem]:
    if mechanism is None or mechanism.signature not in MECHANISM_GUARDS:
        return []
    kind, priority, action = MECHANISM_GUARDS[mechanism.signature]
    first = "first" if mechanism.first_is_first else "e.g."
    return [
        ActionItem(
            kind,
            priority,
            action,
            f"{mechanism.count:,} error events of the incident name {mechanism.label} ({first} at the cited line)",
            (mechanism.first,),
        )
    ]


def _trigger_items(incident: Incident) -> list[ActionItem]:
    shown = _shown(incident)
    if not shown:
        return []
    top = shown[0]
    out = []
    # A candidate made without the analysis has no change type: it may be any change.
    if top.kind == "change" and (top.trigger is None or top.trigger in ROLLED_OUT) and top.evidence:
        words = " ".join(e.message.lower() for e in top.evidence)
        if not any(w in words for w in PROGRESSIVE_WORDS):
            out.append(
                ActionItem(
                    "prevent",
                    "P1",
                    "Roll out this kind of change progressively: a canary on a small share of traffic, with "
                    "automatic rollback on its error rate",
                    f"the likeliest trigger is a {top.trigger or 'change'} with no sign of a canary or progressive "
                    "rollout in its change lines",
                    top.evidence[:2],
                )
            )
    # A destructive command (rm -rf, DROP TABLE, terminate-instances) is guarded, and its data restorable.
    if top.kind == "change" and top.trigger == "destructive" and top.evidence:
        out.append(
            ActionItem(
                "prevent",
                "P1",
                "Guard destructive commands on production: a second person or a dry run before they run, a "
                "prompt naming the host, and a restore from backup tested on a schedule",
                # The command's words stay in its cited line: a fact here is not redacted like a message.
                f"the likeliest trigger is a destructive command ({top.summary})",
                top.evidence[:1],
            )
        )
    # A surge is a fact to act on when it is the likeliest trigger, not the load an attack brought.
    surge = top if top.trigger == "traffic_surge" and top.evidence else None
    if surge is not None:
        out.append(
            ActionItem(
                "prevent",
                "P2",
                "Load-test for the surge seen and autoscale or shed load before saturation",
                surge.summary,
                surge.evidence,
            )
        )
    return out


def _alert_items(intervals: pd.DataFrame | None) -> list[ActionItem]:
    if intervals is None or intervals.empty or "fired" not in intervals.columns:
        return []
    fired = intervals.loc[intervals["fired"].notna().to_numpy(dtype=bool)]
    if fired.empty:
        return []
    names = fired["alert_name"].fillna("alert").astype(str)
    counts = names.value_counts()
    out = []
    for name in counts.index[(counts >= FLAPPING_FIRES).to_numpy()][:3]:  # a few alert names
        rows = fired.loc[(names == name).to_numpy()].sort_values("fired", kind="stable")
        evidence = tuple(
            Evidence(
                time=pd.Timestamp(r.fired),
                source=str(r.source),
                line=None if pd.isna(r.line) else int(r.line),
                message=str(r.summary) if not pd.isna(r.summary) else str(name),
                kind="alert",
            )
            for r in rows.head(3).itertuples(index=False)
        )
        out.append(
            ActionItem(
                "detect",
                "P3",
                f"Tune the alert {name} (a longer 'for' duration, hysteresis, grouping) so it pages once per problem",
                f"the alert {name} fired {int(counts[name])} times in the window",
                evidence,
            )
        )
    return out


def _breach_items(incident: Incident) -> list[ActionItem]:
    exposure = incident.exposure
    if not exposure:
        return []
    failures = sum(a.failures for a in exposure.actors)
    evidence = exposure.data_operations[:3]
    out = [
        ActionItem(
            "mitigate",
            "P1",
            "Reset the credentials of the accounts touched, revoke their sessions and tokens",
            f"{exposure.accounts_phrase()} touched by suspicious actors",
            evidence,
        ),
        ActionItem(
            "prevent",
            "P2",
            "Rate-limit and lock out repeated failed logins per source and per account; require a second factor",
            f"{failures:,} failed attempts from {len(exposure.actors)} actor(s)",
            evidence,
        ),
    ]
    if exposure.data_operations:
        out.insert(
            1,
            ActionItem(
                "process",
                "P1",
                "Review what the accounts touched read or changed, and notify whom the law and the contracts require",
                # All of them by kind (the evidence keeps only the first ones).
                f"{sum(n for _, n in exposure.operation_counts) or len(exposure.data_operations):,} data operation(s) "
                "by the accounts after access",
                evidence,
            ),
        )
    return out


def _data_items(incident: Incident) -> list[ActionItem]:
    out = []
    if incident.partial:
        out.append(
            ActionItem(
                "process",
                "P3",
                "Fix the log gaps that made this data partial",
                f"{len(incident.partial_reasons)} source(s) are partial (see Data quality)",
            )
        )
    rejected = [s.name for s in incident.sources if s.rejected_total]
    if rejected:
        out.append(
            ActionItem(
                "process",
                "P3",
                "Make the rejected log lines parseable (or fix their writers)",
                f"lines were rejected in {len(rejected)} source(s) (see Data quality)",
            )
        )
    return out


def derive_action_items(incident: Incident, intervals: pd.DataFrame | None = None) -> tuple[ActionItem, ...]:
    """The action items the findings call for, ``P1`` first (see the module docstring).

    Args:
        incident: the analysis result (phases, mechanism, candidates, exposure, sources).
        intervals: the window's alert intervals (:func:`pmtimeline.alert_intervals.alert_intervals`),
            for monitoring gaps and flapping alerts; without them neither is written.
    """
    items = [
        *_mechanism_items(incident.mechanism if incident.phase("onset") is not None else None),
        *_trigger_items(incident),
        *_detection_items(incident, intervals),
        *_mitigation_items(incident),
        *_breach_items(incident),
        *_alert_items(intervals),
        *_data_items(incident),
    ]
    return tuple(sorted(items, key=lambda a: a.priority))
