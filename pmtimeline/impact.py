"""Impact metrics: a function of the phases and the aggregates, so that overrides can re-run it.

Every count is taken within [onset, recovered] (recovered = the window's end while the incident is
ongoing) from the per-second counts, so it is exact to ``count_resolution``:

* ``requests_total`` / ``requests_failed`` (HTTP status >= 500): at the edge (access logs) when the
  window has edge requests, else all request events, so a request logged by several layers counts
  once;
* ``error_rate_peak``: the highest failed/total of one bucket (``config.bucket``) of the incident;
* ``error_events``: error events (level error or worse, or HTTP status >= 500);
* ``affected_users``: distinct ``user`` of the error events; unknown (null, with its reason), never 0, when
  no error event of the incident names a user;
* ``affected_services``: services whose own counts of the anomaly's signal rise above their own
  baseline (see :func:`pmtimeline.signals.affected_services`); ``affected_hosts`` the hosts of their
  bad events, most first; ``affected_endpoints`` the endpoints (paths without query string, ids
  masked: ``/api/v1/payments/{id}``) of the failed requests, most first (ties: seen first first);

users, hosts and endpoints are counted from :class:`pmtimeline.aggregate.EventDetails`, exact to
``count_resolution`` like the counts (see :func:`pmtimeline.aggregate.in_window`), not from the
notable events, which are a bounded choice;
* ``latency_ms``: p50/p95/p99 of request durations before onset and during the incident, read from
  the log-spaced histograms (within about 6% of the exact percentiles);
* ``error_budget_burn``: failed requests of the incident divided by the error budget of the whole
  window (``(1 - slo/100) * requests of the window``);
* ``estimated_cost``: ``cost_per_failed_request * requests_failed + revenue_per_minute *
  impact minutes``: an estimate from the user's cost model, labelled as such in every output.

Unknown is not zero. A metric with nothing to count is None, with its reason in
``Metrics.unknown_reasons`` (the ``NO_*`` constants below):

* without request events in the window, the request counts, the peak error rate, the endpoints,
  the latency, the error budget and a cost per failed request are unknown ("no request logs"); with
  them, 0 requests or 0 failed in the incident is a real zero;
* the affected users are unknown when no event kept for the analysis carries a user id ("no user
  ids in the logs"), or when the incident's error events carry none; with user ids and no error
  event in the incident, 0 is a real zero;
* the affected hosts are unknown when none of the affected services' bad events names a host, the
  endpoints when the failed requests carry no path, the latency when no event has a duration;
* without an incident (no onset), every incident metric is unknown ("no anomaly found").

``Metrics.window_totals`` holds what the analysis looked at in the whole window, incident or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.aggregate import Aggregates, EventDetails, bin_value, endpoint_of, in_window
from pmtimeline.config import TimelineConfig
from pmtimeline.incident import Metrics
from pmtimeline.signals import (
    affected_services,
    bucket_range,
    count_column,
    signal_frame,
    uses_edge,
)

__all__ = [
    "compute_metrics",
    "endpoint_of",
    "histogram_percentiles",
    "latency_before_during",
    "most_first",
    "services_affected",
    "window_totals",
]

TOP_ENDPOINTS: Final = 10
TOP_HOSTS: Final = 20
PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_LATENCY_SCOPES: Final = ("edge", "request", "other")

# Why a metric is unknown (the values of ``Metrics.unknown_reasons``), as the outputs word it.
NO_INCIDENT: Final = "no anomaly found"
NO_REQUESTS: Final = "no request logs"
NO_REQUESTS_IN_INCIDENT: Final = "no requests during the incident"
NO_USERS: Final = "no user ids in the logs"
NO_USERS_ON_ERRORS: Final = "no user ids on the incident's error events"
NO_ERRORS_IN_INCIDENT: Final = "no error events in the incident"
NO_SERVICES: Final = "no service names in the logs"
NO_HOSTS: Final = "no host names in the logs"
NO_HOSTS_ON_INCIDENT: Final = "no host names on the incident's events"
NO_PATHS: Final = "no paths on the failed requests"
NO_DURATIONS: Final = "no request durations in the logs"
#: The metrics of an incident (all but the durations, which follow the phases).
_INCIDENT_METRICS: Final = (
    "requests_total",
    "requests_failed",
    "error_rate_peak",
    "error_events",
    "affected_users",
    "affected_services",
    "affected_hosts",
    "affected_endpoints",
    "latency_ms",
)


def most_first(table: pd.DataFrame, key: str, limit: int) -> pd.Series:
    """Event counts of an :class:`~pmtimeline.aggregate.EventDetails` table per ``key``, most first;
    ties in order of first appearance (then by name), at most ``limit``."""
    if table.empty:
        return pd.Series(dtype="int64")
    per = table.groupby(key, sort=False, observed=True).agg(count=("count", "sum"), first=("first", "min"))
    per = per.assign(_name=per.index.astype(str)).sort_values(
        ["count", "first", "_name"], ascending=[False, True, True], kind="stable"
    )
    return per["count"].head(limit).astype("int64")


def _seconds(a: pd.Timestamp | None, b: pd.Timestamp | None) -> float | None:
    return None if a is None or b is None else float((b - a).total_seconds())


def histogram_percentiles(bins: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    """p50/p95/p99 (ms) of a latency histogram (bins as in :func:`pmtimeline.aggregate.latency_bins`)."""
    total = counts.sum()
    if total <= 0:
        return {name: None for name, _ in PERCENTILES}
    order = np.argsort(bins, kind="stable")
    b, c = bins[order], np.cumsum(counts[order])
    values = bin_value(b)
    out: dict[str, float | None] = {}
    for name, q in PERCENTILES:
        i = int(np.searchsorted(c, q * total, side="left"))
        out[name] = round(float(values[min(i, len(values) - 1)]), 1)
    return out


def latency_before_during(
    latency: pd.DataFrame, onset: pd.Timestamp, recovered: pd.Timestamp, resolution: str
) -> dict[str, dict[str, float | None]]:
    """Latency percentiles before onset and during [onset, recovered]; {} without durations."""
    if latency.empty:
        return {}
    # Arrow kernels on the scope column: it has a row per bucket, service and bin (hundreds of
    # thousands), and a Python object array of it cost more than the rest of the metrics.
    present = set(latency["scope"].dropna().unique())
    scope = next(s for s in _LATENCY_SCOPES if s in present)
    chosen = latency["scope"].eq(scope).to_numpy(dtype=bool, na_value=False)
    ns = latency["bucket"].array.asi8[chosen]
    bins = latency["bin"].to_numpy(dtype="int64")[chosen]
    counts = latency["count"].to_numpy(dtype="int64")[chosen]
    start, end = onset.floor(resolution).value, recovered.value
    out: dict[str, dict[str, float | None]] = {}
    for name, mask in (("before", ns < start), ("during", (ns >= start) & (ns <= end))):
        if mask.any():
            # Sum per bin with bincount over bins shifted to start at zero.
            low = int(bins[mask].min())
            per_bin = np.bincount(bins[mask] - low, weights=counts[mask])
            present_bins = np.flatnonzero(per_bin)
            out[name] = histogram_percentiles(present_bins + low, per_bin[present_bins].astype("int64"))
    return out


def services_affected(
    aggregates: Aggregates, onset: pd.Timestamp, recovered: pd.Timestamp, signal: str, config: TimelineConfig
) -> tuple[str, ...]:
    """Services whose own ``signal`` counts rise above their own baseline within [onset, recovered]."""
    counts = aggregates.counts
    if counts.empty:
        return ()
    start = min(aggregates.window_start or counts["bucket"].min(), onset)
    end = max(aggregates.window_end or counts["bucket"].max(), recovered)
    buckets = bucket_range(start, end, config.bucket)
    frame = signal_frame(counts, count_column(signal, uses_edge(counts)), buckets, config.bucket)
    first = int(buckets.searchsorted(onset.floor(config.bucket)))
    last = int(buckets.searchsorted(recovered.floor(config.bucket)))
    if last < first or last >= len(buckets):
        return ()
    return affected_services(frame, first, last, config)


def window_totals(counts: pd.DataFrame) -> dict[str, int | None]:
    """What the analysis looked at in the whole window: events, error and warning events, and
    requests and failed ones (counted once, at the edge when access logs exist; None without
    request events, since then nothing says how many requests there were)."""
    if counts.empty:
        return {"events": 0, "error_events": 0, "warning_events": 0, "requests": None, "failed_requests": None}
    edge = uses_edge(counts)
    requests = int(counts[count_column("requests", edge)].sum())
    failed = int(counts[count_column("failed_requests", edge)].sum())
    return {
        "events": int(counts["events"].sum()),
        "error_events": int(counts["errors"].sum()),
        "warning_events": int(counts["warnings"].sum()),
        "requests": requests if requests else None,
        "failed_requests": failed if requests else None,
    }


def _users_seen(aggregates: Aggregates, details: EventDetails) -> bool:
    """Whether any event the aggregates kept (error events, notable events and their sample, login
    attempts) carries a user id: without one, affected users cannot be counted."""
    if not details.users.empty:
        return True
    spans, actors, notable = details.actor_spans, aggregates.actors, aggregates.notable
    return (
        bool(spans["actor_kind"].eq("user").any())
        or bool(actors["actor_kind"].eq("user").any())
        or ("user" in notable.columns and bool(notable["user"].notna().any()))
    )


def compute_metrics(
    phases: Mapping[str, pd.Timestamp | None],
    aggregates: Aggregates,
    config: TimelineConfig,
    signal: str | None = "errors",
    services: tuple[str, ...] | None = None,
) -> Metrics:
    """The impact metrics of the incident with these ``phases`` (see the module docstring).

    ``services``: the affected services when already known (from the anomaly); recomputed from the
    counts for ``signal`` otherwise (after an override).
    """
    onset = phases.get("onset")
    detect, mitigate, recover, resolve = (
        _seconds(onset, phases.get(p)) for p in ("detected", "mitigated", "recovered", "resolved")
    )
    counts = aggregates.counts
    totals = window_totals(counts)
    if onset is None:
        return Metrics(
            time_to_detect_s=detect,
            time_to_mitigate_s=mitigate,
            time_to_recover_s=recover,
            time_to_resolve_s=resolve,
            unknown_reasons=dict.fromkeys(_INCIDENT_METRICS, NO_INCIDENT),
            window_totals=totals,
        )
    signal = signal or "errors"
    recovered = phases.get("recovered") or aggregates.window_end or onset
    edge = uses_edge(counts)
    res = config.count_resolution
    in_incident = (counts["bucket"] >= onset.floor(res)) & (counts["bucket"] <= recovered)
    during = counts.loc[in_incident.to_numpy(dtype=bool)]
    req_col, fail_col = count_column("requests", edge), count_column("failed_requests", edge)
    # Requests are known when the window has request events at all; then 0 in the incident is a
    # real zero (nothing was served), and so is 0 failed.
    has_requests = totals["requests"] is not None
    unknown: dict[str, str] = {}
    requests_total = requests_failed = None
    peak = None
    if has_requests:
        requests_total = int(during[req_col].sum())
        requests_failed = int(during[fail_col].sum())
        per_bucket = during.groupby(during["bucket"].dt.floor(config.bucket))[[req_col, fail_col]].sum()
        per_bucket = per_bucket.loc[per_bucket[req_col] > 0]
        if per_bucket.empty:
            unknown["error_rate_peak"] = NO_REQUESTS_IN_INCIDENT
        else:
            peak = float((per_bucket[fail_col] / per_bucket[req_col]).max())
    else:
        unknown.update(dict.fromkeys(("requests_total", "requests_failed", "error_rate_peak"), NO_REQUESTS))

    details = aggregates.event_details(config)
    error_events = int(during["errors"].sum())
    users = details.users.loc[in_window(details.users, onset, recovered), "user_hash"]
    affected_users: int | None = int(users.nunique())
    if not affected_users:
        # No user on an error event is no evidence that nobody was affected: without user ids, or
        # with errors that carry none, or with no error at all (an attack of warnings and failed
        # logins), who the incident hit is not in the errors. Never write it as 0.
        affected_users = None
        if not _users_seen(aggregates, details):
            unknown["affected_users"] = NO_USERS
        else:
            unknown["affected_users"] = NO_USERS_ON_ERRORS if error_events else NO_ERRORS_IN_INCIDENT

    if services is None:
        services = services_affected(aggregates, onset, recovered, signal, config)
    named = tuple(s for s in services if s)
    # An edge whose events are all access-log requests passes on the failures of the services behind
    # it: it is an affected service of its own only when none behind it is.
    per_service = aggregates.counts.groupby("service")[["events", "edge_requests"]].sum()
    edges = set(per_service.index[(per_service["events"] == per_service["edge_requests"]).to_numpy()].astype(str))
    named = tuple(s for s in named if s not in edges) or named
    if not named:
        unknown["affected_services"] = NO_SERVICES
    bad_signal = "failed_edge_requests" if signal == "failed_requests" and edge else signal
    hosts = details.hosts.loc[in_window(details.hosts, onset, recovered)]
    hosts = hosts.loc[(hosts["signal"] == bad_signal).to_numpy(dtype=bool, na_value=False)]
    if services:
        hosts = hosts.loc[hosts["service"].isin(list(services)).to_numpy(dtype=bool, na_value=False)]
    affected_hosts: tuple[str, ...] | None = tuple(str(h) for h in most_first(hosts, "host", TOP_HOSTS).index)
    if not affected_hosts:
        # The affected services' bad events are what makes the incident: none of them names a host.
        affected_hosts = None
        unknown["affected_hosts"] = NO_HOSTS if details.hosts.empty else NO_HOSTS_ON_INCIDENT

    affected_endpoints: tuple[tuple[str, int], ...] | None = None
    if not has_requests:
        unknown["affected_endpoints"] = NO_REQUESTS
    else:
        endpoints = details.endpoints.loc[in_window(details.endpoints, onset, recovered)]
        failed_signal = "failed_edge_requests" if edge else "failed_requests"
        endpoints = endpoints.loc[(endpoints["signal"] == failed_signal).to_numpy(dtype=bool, na_value=False)]
        top = most_first(endpoints, "endpoint", TOP_ENDPOINTS)
        affected_endpoints = tuple((str(p), int(n)) for p, n in top.items())
        if requests_failed and not affected_endpoints:
            # Failed requests without a path: which endpoints failed is not in the logs.
            affected_endpoints = None
            unknown["affected_endpoints"] = NO_PATHS

    latency: dict[str, dict[str, float | None]] | None = latency_before_during(
        aggregates.latency, onset, recovered, res
    )
    if not latency:
        latency = None
        unknown["latency_ms"] = NO_DURATIONS if has_requests else NO_REQUESTS

    burn = None
    if config.slo is not None:
        budget = (1 - config.slo / 100) * float(counts[req_col].sum())
        if requests_failed is not None and budget > 0:
            burn = round(requests_failed / budget, 4)
        else:
            unknown["error_budget_burn"] = NO_REQUESTS  # with requests, 0 < slo < 100 leaves a budget
    cost = None
    if config.cost_per_failed_request is not None and requests_failed is None:
        # A cost per failed request applied to no count of failed requests would be an invented zero.
        unknown["estimated_cost"] = NO_REQUESTS
    elif config.cost_per_failed_request is not None or config.revenue_per_minute is not None:
        cost = 0.0
        if config.cost_per_failed_request is not None and requests_failed is not None:
            cost += config.cost_per_failed_request * requests_failed
        minutes = (recovered - onset).total_seconds() / 60
        if config.revenue_per_minute is not None:
            cost += config.revenue_per_minute * minutes
        cost = round(cost, 2)
    return Metrics(
        time_to_detect_s=detect,
        time_to_mitigate_s=mitigate,
        time_to_recover_s=recover,
        time_to_resolve_s=resolve,
        requests_total=requests_total,
        requests_failed=requests_failed,
        error_rate_peak=round(peak, 4) if peak is not None else None,
        error_events=error_events,
        affected_users=affected_users,
        affected_services=named,
        affected_hosts=affected_hosts,
        affected_endpoints=affected_endpoints,
        latency_ms=latency,
        error_budget_burn=burn,
        estimated_cost=cost,
        unknown_reasons=unknown,
        window_totals=totals,
    )
