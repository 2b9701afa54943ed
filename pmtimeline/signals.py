"""Per-bucket signals and the detection of the incident's sustained anomaly.

Signals, per bucket of ``config.bucket`` (1 minute by default), overall and per service, all read
from the per-second counts of :class:`pmtimeline.aggregate.Aggregates`. The analysis widens the
bucket for a long window (:func:`pmtimeline.aggregate.span_config`: at most
:data:`pmtimeline.aggregate.MAX_BUCKETS` buckets), and the aggregates hold no outlier timestamps
(:func:`pmtimeline.aggregate.dense_span`), so a signal's length, and the cost of its detection, do not
grow with the years the data covers:

* ``errors``: error events (level error or worse, or HTTP status >= 500; alerts are not errors);
* ``failed_requests``: requests with HTTP status >= 500, counted at the edge (access logs) when the
  window has any edge requests, so that a request logged by several layers counts once;
* ``warnings``: warnings that are not errors (failed logins of an attack are typically warnings).

Detection, for one signal:

1. A causal baseline: for each bucket, the median and spread of the previous
   :data:`BASELINE_BUCKETS` buckets (spread = the larger of IQR/1.349 and the Poisson
   sqrt(median)). Buckets with fewer than ``baseline_min_buckets`` buckets before them use a
   global robust baseline (median and MAD of the whole window) instead.
2. A bucket is anomalous when its count exceeds ``median + anomaly_sigma * spread`` and half
   again the median, and is at least ``anomaly_min_count``. This works with a zero baseline
   (errors from nothing need ``anomaly_min_count``) and with background errors.
3. ``sustain_buckets`` consecutive anomalous buckets start an anomaly. Its baseline is then frozen
   (median/MAD of the buckets before it, outside earlier anomalies), and the anomaly lasts until
   ``quiet_buckets`` consecutive buckets are back under the frozen threshold (a bucket whose stretch of
   ``quiet_buckets`` still holds at least ``anomaly_min_count`` bad events and significantly more than
   the baseline's mean gives is not back: a residual trickle on a baseline of none); a trailing blip
   shorter than ``sustain_buckets`` after a dip is noise, not part of it. An anomaly whose last
   bucket is the window's last is *ongoing* (not recovered).
4. Every signal is evaluated; the incident's anomaly is the one with the most excess bad events
   (count above the baseline median, summed over its buckets). Warnings lose to an errors or
   failed-requests anomaly that overlaps them: when both rise, the errors are the impact.
5. The affected services are those whose own counts rise above their own frozen baseline during
   the anomaly, significantly (a Poisson z-score of ``anomaly_sigma`` over the whole anomaly), and
   carry at least 2% of its excess over their baseline mean. The anomaly's
   bounds are then re-detected on the affected services' counts alone, so that background
   errors of other services neither start it early nor prolong it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.config import TimelineConfig
from pmtimeline.schema import EDGE_FORMAT_PREFIX, ERROR_LEVELS

#: Signals evaluated, in order of preference on ties.
SIGNALS: Final[tuple[str, ...]] = ("errors", "failed_requests", "warnings")
#: Buckets of the rolling baseline.
BASELINE_BUCKETS: Final = 60
#: A service must carry this share of the anomaly's excess to count as affected.
AFFECTED_SHARE: Final = 0.02
_MAD_SCALE: Final = 1.4826
_IQR_SCALE: Final = 1.349
_RISE_FACTOR: Final = 1.5


@dataclass(frozen=True)
class Anomaly:
    """A sustained rise of one signal. Bucket times are bucket starts (UTC)."""

    signal: str
    start: pd.Timestamp  # first anomalous bucket
    end: pd.Timestamp  # last anomalous bucket before the signal is back at baseline for good
    ongoing: bool  # the window ends during the anomaly
    baseline: float  # median bad events per bucket before the anomaly
    threshold: float  # bad events per bucket above which a bucket is anomalous
    peak: float
    excess: float  # bad events above the baseline median, summed over the anomaly
    services: tuple[str, ...]  # affected services, most excess first ("" = unknown service)


def uses_edge(counts: pd.DataFrame) -> bool:
    """True when the window has edge requests (access logs): requests are then counted there only."""
    return bool(counts["edge_requests"].sum() > 0) if not counts.empty else False


def count_column(signal: str, edge: bool) -> str:
    """The :data:`pmtimeline.schema.COUNT_COLUMNS` column a signal is read from."""
    if signal == "failed_requests":
        return "failed_edge_requests" if edge else "failed_requests"
    if signal == "requests":
        return "edge_requests" if edge else "requests"
    return signal


def bucket_range(start: pd.Timestamp, end: pd.Timestamp, bucket: str) -> pd.DatetimeIndex:
    """Every bucket start from the bucket of ``start`` to the bucket of ``end``."""
    return pd.date_range(start.floor(bucket), end.floor(bucket), freq=bucket, name="bucket")


def signal_frame(counts: pd.DataFrame, column: str, buckets: pd.DatetimeIndex, bucket: str) -> pd.DataFrame:
    """Counts of ``column`` per bucket (rows, every bucket of ``buckets``) and service (columns)."""
    return signal_frames(counts, (column,), buckets, bucket)[column]


def signal_frames(
    counts: pd.DataFrame, columns: Sequence[str], buckets: pd.DatetimeIndex, bucket: str
) -> dict[str, pd.DataFrame]:
    """:func:`signal_frame` of each of ``columns``: the counts summed per (bucket, service) cell.

    Every service of the counts is a column (sorted by name, as a groupby orders them), every
    bucket of ``buckets`` a row; counts outside ``buckets`` and without a service are left out.
    The cells are numbered once and summed with ``np.bincount``: grouping by bucket and service
    again for every column cost more than the rest of the detection.
    """
    if counts.empty:
        return {column: pd.DataFrame(index=buckets) for column in columns}
    codes, services = pd.factorize(counts["service"], sort=True)
    rows = buckets.get_indexer(counts["bucket"].dt.floor(bucket))
    kept = (codes >= 0) & (rows >= 0)
    cells = rows[kept] * len(services) + codes[kept]
    size = len(buckets) * len(services)
    names = pd.Index(services, name="service")
    out: dict[str, pd.DataFrame] = {}
    for column in dict.fromkeys(columns):
        values = counts[column].to_numpy(dtype="float64")[kept]
        sums = np.bincount(cells, weights=values, minlength=size).reshape(len(buckets), len(services))
        out[column] = pd.DataFrame(sums, index=buckets, columns=names)
    return out


def thresholds(median: np.ndarray | float, spread: np.ndarray | float, config: TimelineConfig) -> np.ndarray:
    """The anomaly threshold for a baseline ``median`` and robust ``spread``."""
    med = np.asarray(median, dtype="float64")
    spr = np.maximum(np.asarray(spread, dtype="float64"), np.sqrt(np.maximum(med, 0.0)))
    return np.asarray(np.maximum(med + config.anomaly_sigma * spr, _RISE_FACTOR * med), dtype="float64")


def _is_anomalous(x: np.ndarray, threshold: np.ndarray, config: TimelineConfig) -> np.ndarray:
    return np.asarray((x > threshold) & (x >= config.anomaly_min_count), dtype=bool)


def _robust(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD-based spread along axis 0."""
    med = np.median(values, axis=0)
    mad = np.median(np.abs(values - med), axis=0)
    return med, _MAD_SCALE * mad


def _causal_thresholds(x: np.ndarray, config: TimelineConfig) -> np.ndarray:
    prior = pd.Series(x).shift(1)
    rolling = prior.rolling(BASELINE_BUCKETS, min_periods=config.baseline_min_buckets)
    med = rolling.median().to_numpy()
    iqr = (rolling.quantile(0.75) - rolling.quantile(0.25)).to_numpy() / _IQR_SCALE
    g_med, g_spread = _robust(x)
    missing = np.isnan(med)
    med = np.where(missing, g_med, med)
    iqr = np.where(missing, g_spread, iqr)
    return thresholds(med, iqr, config)


def _runs(mask: np.ndarray, min_length: int) -> list[int]:
    """Start indices of runs of True at least ``min_length`` long."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]]).astype("int8")
    edges = np.diff(padded)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [int(s) for s, e in zip(starts, stops, strict=True) if e - s >= min_length]


@dataclass(frozen=True)
class _Run:
    start: int
    end: int
    median: float
    threshold: float
    excess: float
    peak: float


def _residual(x: np.ndarray, baseline_mean: float, config: TimelineConfig) -> np.ndarray:
    """Buckets with bad events whose stretch of ``quiet_buckets`` (ending or starting there) holds more
    than the baseline gives: at least ``anomaly_min_count`` events and ``anomaly_sigma`` Poisson
    deviations above the baseline mean's expectation (the mean, not the median: a sparse background
    has a median of zero). ``x`` holds the counts of the buckets under the threshold, zero for the
    others: the anomaly's own peak never makes the stretch after it look busy."""
    q = max(1, config.quiet_buckets)
    expected = q * max(baseline_mean, 0.0)
    enough = max(float(config.anomaly_min_count), expected + config.anomaly_sigma * np.sqrt(expected))
    sums = np.convolve(x, np.ones(q), mode="full")  # sums[i] = x[i-q+1 .. i]
    backward = sums[: len(x)]
    forward = sums[q - 1 :]
    return np.asarray((x > baseline_mean) & ((backward >= enough) | (forward >= enough)), dtype=bool)


def detect_runs(x: np.ndarray, config: TimelineConfig) -> list[_Run]:
    """Every sustained anomaly of one per-bucket series, in time order."""
    n = len(x)
    if n == 0:
        return []
    causal = _is_anomalous(x, _causal_thresholds(x, config), config)
    taken = np.zeros(n, dtype=bool)
    runs: list[_Run] = []
    last_end = -1
    for s in _runs(causal, config.sustain_buckets):
        if s <= last_end:
            continue
        lo = max(0, s - BASELINE_BUCKETS)
        pre = x[lo:s][~taken[lo:s]]
        if len(pre) >= config.baseline_min_buckets:
            med, spread = _robust(pre)
        else:
            med, spread = _robust(x)
        threshold = float(thresholds(med, spread, config))
        hot = _is_anomalous(x[s:], np.asarray(threshold), config)
        if hot.any():
            # Once under way, the anomaly is over when the counts are back at the baseline, not when
            # each bucket falls under the per-bucket floor that starting one needs: a residual one or
            # two failures a minute on a baseline of none is still the incident (see _residual).
            first = int(np.flatnonzero(hot)[0])
            quiet = np.where(hot, 0.0, x[s:])  # stretches of the non-anomalous buckets alone
            base = max(float(med), float(np.mean(pre)) if len(pre) >= config.baseline_min_buckets else 0.0)
            hot[first:] |= _residual(quiet, base, config)[first:]
        above = np.flatnonzero(hot) + s
        # The frozen baseline can differ a little from the rolling one: start at the first bucket
        # above it, if that is still part of this rise.
        if above.size == 0 or above[0] > s + config.sustain_buckets:
            continue
        s = int(above[0])
        gaps = np.flatnonzero(np.diff(above) > config.quiet_buckets)
        inside = above[: gaps[0] + 1] if gaps.size else above
        # A short blip after the last dip (one noisy bucket) does not prolong the anomaly: trailing
        # segments shorter than sustain_buckets are trimmed.
        segments = np.split(inside, np.flatnonzero(np.diff(inside) > 1) + 1)
        while len(segments) > 1 and len(segments[-1]) < config.sustain_buckets:
            segments.pop()
        end = int(segments[-1][-1])
        segment = x[s : end + 1]
        runs.append(
            _Run(
                s,
                end,
                float(med),
                threshold,
                float(np.clip(segment - med, 0, None).sum()),
                float(segment.max()),
            )
        )
        taken[s : end + 1] = True
        last_end = end
    return runs


def affected_services(
    frame: pd.DataFrame, start: int, end: int, config: TimelineConfig, exclude: np.ndarray | None = None
) -> tuple[str, ...]:
    """Services whose own counts rise above their own baseline in buckets ``start..end``."""
    if frame.shape[1] == 0:
        return ()
    values = frame.to_numpy(dtype="float64")
    lo = max(0, start - BASELINE_BUCKETS)
    keep = np.ones(start - lo, dtype=bool) if exclude is None else ~exclude[lo:start]
    pre = values[lo:start][keep]
    base = pre if len(pre) >= config.baseline_min_buckets else values
    during = values[start : end + 1]
    # Excess over the baseline *mean*: unbiased, so a noisy service does not collect excess by chance.
    expected = len(during) * base.mean(axis=0)
    excess = during.sum(axis=0) - expected
    # A Poisson z-score of the service's excess: significant, not a fluctuation of a noisy service.
    significant = excess / np.sqrt(expected + 1.0) >= config.anomaly_sigma
    total = float(np.clip(excess, 0, None).sum())
    # A small service (a worker failing once a minute) never crosses the per-bucket threshold, yet
    # its failures over the whole anomaly are significant: the z-score decides, not single buckets.
    chosen = significant & (excess >= max(config.anomaly_min_count, AFFECTED_SHARE * total))
    if not chosen.any():
        chosen = excess == excess.max()
    chosen &= excess > 0
    order = np.argsort(-excess, kind="stable")
    names = frame.columns.to_numpy()
    return tuple(str(names[i]) for i in order if chosen[i])


def find_anomaly(
    counts: pd.DataFrame,
    config: TimelineConfig,
    window_start: pd.Timestamp | None = None,
    window_end: pd.Timestamp | None = None,
) -> Anomaly | None:
    """The incident's sustained anomaly (see the module docstring), or None when there is none."""
    if counts.empty:
        return None
    start = window_start if window_start is not None else counts["bucket"].min()
    end = window_end if window_end is not None else counts["bucket"].max()
    buckets = bucket_range(start, end, config.bucket)
    edge = uses_edge(counts)
    found: list[tuple[str, _Run, pd.DataFrame]] = []
    frames = signal_frames(counts, [count_column(signal, edge) for signal in SIGNALS], buckets, config.bucket)
    for signal in SIGNALS:
        frame = frames[count_column(signal, edge)]
        total = frame.sum(axis=1).to_numpy(dtype="float64") if frame.shape[1] else np.zeros(len(buckets))
        found.extend((signal, run, frame) for run in detect_runs(total, config))
    if not found:
        return None
    impact = [f for f in found if f[0] != "warnings"]

    def overlaps_impact(run: _Run) -> bool:
        return any(r.start <= run.end and run.start <= r.end for _, r, _ in impact)

    eligible = [f for f in found if f[0] != "warnings" or not overlaps_impact(f[1])]
    signal, run, frame = max(eligible, key=lambda f: (f[1].excess, -SIGNALS.index(f[0])))
    services = affected_services(frame, run.start, run.end, config)
    # Bounds from the affected services alone: background errors elsewhere neither start the
    # incident early nor keep it going.
    if services and len(services) < frame.shape[1]:
        own = frame.loc[:, list(services)].sum(axis=1).to_numpy(dtype="float64")
        overlapping = [r for r in detect_runs(own, config) if r.start <= run.end and run.start <= r.end]
        if overlapping:
            first, last = overlapping[0], overlapping[-1]
            run = _Run(first.start, last.end, run.median, run.threshold, run.excess, run.peak)
    return Anomaly(
        signal=signal,
        start=buckets[run.start],
        end=buckets[run.end],
        ongoing=run.end == len(buckets) - 1,
        baseline=run.median,
        threshold=run.threshold,
        peak=run.peak,
        excess=run.excess,
        services=services,
    )


def bad_event_mask(events: pd.DataFrame, signal: str, edge: bool) -> np.ndarray:
    """The events of ``events`` that count toward ``signal``."""
    level = events["level"]
    status = events["http_status"]
    alert = (events["kind"] == "alert").to_numpy(dtype=bool, na_value=False)
    errors = ~alert & (
        level.isin(list(ERROR_LEVELS)).to_numpy(dtype=bool, na_value=False)
        | (status >= 500).to_numpy(dtype=bool, na_value=False)
    )
    if signal == "errors":
        return np.asarray(errors, dtype=bool)
    if signal == "warnings":
        return np.asarray((level == "warning").to_numpy(dtype=bool, na_value=False) & ~errors & ~alert, dtype=bool)
    failed = (events["kind"] == "request").to_numpy(dtype=bool, na_value=False) & (status >= 500).to_numpy(
        dtype=bool, na_value=False
    )
    if edge:
        failed &= events["format"].str.startswith(EDGE_FORMAT_PREFIX).to_numpy(dtype=bool, na_value=False)
    return np.asarray(failed, dtype=bool)
