"""Impact metrics: a function of the phases and the aggregates, so that overrides can re-run it.

Every count is taken within [onset, recovered] (recovered = the window's end while the incident is
ongoing) from the per-second counts, so it is exact to ``count_resolution``:

* ``requests_total`` / ``requests_failed`` (HTTP status >= 500): at the edge (access logs) when the
  window has edge requests, else all request events, so a request logged by several layers counts
  once;
* ``error_rate_peak``: the highest failed/total of one bucket (``config.bucket``) of the incident;
* ``error_events``: error events (level error or worse, or HTTP status >= 500);
* ``affected_users``: distinct ``user`` of the error events;
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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.aggregate import Aggregates, bin_value, endpoint_of, in_window
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
]

TOP_ENDPOINTS: Final = 10
TOP_HOSTS: Final = 20
PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_LATENCY_SCOPES: Final = ("edge", "request", "other")


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
    if onset is None:
        return Metrics(
            time_to_detect_s=detect, time_to_mitigate_s=mitigate, time_to_recover_s=recover, time_to_resolve_s=resolve
        )
    signal = signal or "errors"
    recovered = phases.get("recovered") or aggregates.window_end or onset
    counts = aggregates.counts
    edge = uses_edge(counts)
    res = config.count_resolution
    in_incident = (counts["bucket"] >= onset.floor(res)) & (counts["bucket"] <= recovered)
    during = counts.loc[in_incident.to_numpy(dtype=bool)]
    req_col, fail_col = count_column("requests", edge), count_column("failed_requests", edge)
    requests_total = int(during[req_col].sum())
    requests_failed = int(during[fail_col].sum())
    per_bucket = during.groupby(during["bucket"].dt.floor(config.bucket))[[req_col, fail_col]].sum()
    per_bucket = per_bucket.loc[per_bucket[req_col] > 0]
    peak = float((per_bucket[fail_col] / per_bucket[req_col]).max()) if not per_bucket.empty else None

    details = aggregates.event_details(config)
    users = details.users.loc[in_window(details.users, onset, recovered), "user_hash"]
    if services is None:
        services = services_affected(aggregates, onset, recovered, signal, config)
    named = tuple(s for s in services if s)
    bad_signal = "failed_edge_requests" if signal == "failed_requests" and edge else signal
    hosts = details.hosts.loc[in_window(details.hosts, onset, recovered)]
    hosts = hosts.loc[(hosts["signal"] == bad_signal).to_numpy(dtype=bool, na_value=False)]
    if services:
        hosts = hosts.loc[hosts["service"].isin(list(services)).to_numpy(dtype=bool, na_value=False)]
    endpoints = details.endpoints.loc[in_window(details.endpoints, onset, recovered)]
    failed_signal = "failed_edge_requests" if edge else "failed_requests"
    endpoints = endpoints.loc[(endpoints["signal"] == failed_signal).to_numpy(dtype=bool, na_value=False)]

    burn = None
    if config.slo is not None:
        budget = (1 - config.slo / 100) * float(counts[req_col].sum())
        burn = round(requests_failed / budget, 4) if budget > 0 else None
    cost = None
    if config.cost_per_failed_request is not None or config.revenue_per_minute is not None:
        cost = 0.0
        if config.cost_per_failed_request is not None:
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
        error_events=int(during["errors"].sum()),
        affected_users=int(users.nunique()),
        affected_services=named,
        affected_hosts=tuple(str(h) for h in most_first(hosts, "host", TOP_HOSTS).index),
        affected_endpoints=tuple((str(p), int(n)) for p, n in most_first(endpoints, "endpoint", TOP_ENDPOINTS).items()),
        latency_ms=latency_before_during(aggregates.latency, onset, recovered, res),
        error_budget_burn=burn,
        estimated_cost=cost,
    )
