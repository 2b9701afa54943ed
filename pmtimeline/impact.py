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
  masked: ``/api/v1/payments/{id}``) of the failed requests, most first;
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

from pmtimeline.aggregate import Aggregates, bin_value, error_mask
from pmtimeline.config import TimelineConfig
from pmtimeline.incident import Metrics
from pmtimeline.signals import (
    affected_services,
    bad_event_mask,
    bucket_range,
    count_column,
    signal_frame,
    uses_edge,
)

TOP_ENDPOINTS: Final = 10
TOP_HOSTS: Final = 20
PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_LATENCY_SCOPES: Final = ("edge", "request", "other")


def endpoint_of(paths: pd.Series) -> pd.Series:
    """Request paths as endpoints: no query string or fragment, and id segments (a number, or a
    segment with two digits or more, such as ``pay_3f9c2b1a``) replaced with ``{id}``."""
    out = paths.str.replace(r"[?#].*$", "", regex=True)
    out = out.str.replace(r"/[^/]*[0-9][^/]*[0-9][^/]*", "/{id}", regex=True)
    return out.str.replace(r"/[0-9]+(/|$)", r"/{id}\1", regex=True)


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
    scopes = latency["scope"].to_numpy(dtype=object)
    present = set(pd.unique(scopes))
    scope = next(s for s in _LATENCY_SCOPES if s in present)
    chosen = scopes == scope
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

    notable = aggregates.notable
    t = notable["timestamp"]
    window = notable.loc[
        ((t >= onset) & (t <= recovered)).to_numpy(dtype=bool, na_value=False),
        ["timestamp", "kind", "format", "level", "http_status", "url_path", "user", "service", "host"],
    ]
    errors = window.loc[error_mask(window)]
    users = errors["user"].dropna()
    if services is None:
        services = services_affected(aggregates, onset, recovered, signal, config)
    named = tuple(s for s in services if s)
    bad = window.loc[bad_event_mask(window, signal, edge)]
    if services:
        bad = bad.loc[bad["service"].fillna("").isin(list(services)).to_numpy(dtype=bool)]
    hosts = bad["host"].dropna().astype(str).value_counts().head(TOP_HOSTS)
    failed = window.loc[bad_event_mask(window, "failed_requests", edge)]
    paths = endpoint_of(failed["url_path"].dropna())
    endpoints = paths.value_counts().head(TOP_ENDPOINTS)

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
        affected_hosts=tuple(str(h) for h in hosts.index),
        affected_endpoints=tuple((str(p), int(n)) for p, n in endpoints.items()),
        latency_ms=latency_before_during(aggregates.latency, onset, recovered, res),
        error_budget_burn=burn,
        estimated_cost=cost,
    )
