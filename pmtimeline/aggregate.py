"""Streaming aggregation: from event chunks to the bounded state the analysis works from.

The pipeline feeds event chunks (already through :func:`pmtimeline.changes.classify_changes`) one
at a time to an :class:`Aggregator`; memory grows with the window's length and the variety of its
events (services, hosts, users, endpoints, message templates), never with their number.
:meth:`Aggregator.result` returns :class:`Aggregates`:

* ``counts``: :data:`pmtimeline.schema.COUNT_COLUMNS` per (second, service), summed across chunks,
  so impact counts are exact to ``count_resolution``;
* ``details``: :class:`EventDetails`, the exact facts about the notable events (warnings and worse,
  HTTP 5xx, changes, alerts, data operations of actors) that the metrics and candidates count:
  error events per user, bad events per host, failed requests per endpoint, events per message
  template, the services of traced requests, the span of each actor;
* ``notable``: the events the analysis, the draft and the chart cite, kept whole: every change,
  alert and data operation of an identified actor (exports, credential changes; see
  :mod:`pmtimeline.exposure`); of the warnings, errors and failed requests, the first and last few
  of every (bucket, service, source) (:func:`bad_sample_mask`), the first of every message template,
  and every error of a sample of failing requests (:data:`TRAIL_REQUESTS`); a bounded sample of
  ordinary events per message template; the first and last event of every service;
* ``latency``: a log-spaced histogram of durations per (second, service, scope), so p50/p95/p99
  before and during the incident need no per-request storage;
* ``actors``: failures and successes of authentication-like events per (bucket, actor, account),
  with the times of the first and last of them, bounded to the most active actors of each bucket,
  for breach detection.

An outage multiplies the errors, often with long stack traces: keeping them all whole was what made
memory grow with a window's size (1.1 M events, most of the memory of a 20 M-line build).

Message templates here are the masked ones (:func:`pmtimeline.templates.message_templates`), the
same for a message in whichever chunk it comes: a clustering needs every distinct template of the
window, so it cannot run per chunk. The analysis clusters the distinct templates the aggregates
hold (:func:`pmtimeline.template_mining.template_clusters`) and merges their counts and firsts by
kind when it compares templates (see :mod:`pmtimeline.root_cause`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.config import TimelineConfig
from pmtimeline.correlate import correlation_ids
from pmtimeline.exposure import (
    AUTH_FIELD,
    AUTH_MESSAGE,
    AUTH_PATH,
    DATA_OPERATION,
    DATA_OPERATION_FIELD,
    FAILURE_FIELD,
    FAILURE_MESSAGE,
    MESSAGE_ACCOUNT,
    MESSAGE_ADDRESS,
    SUCCESS_FIELD,
    SUCCESS_MESSAGE,
)
from pmtimeline.polars_regex import polars_pattern
from pmtimeline.schema import (
    COUNT_COLUMNS,
    COUNT_DTYPES,
    EDGE_FORMAT_PREFIX,
    ERROR_LEVELS,
    EVENT_COLUMNS,
    EVENT_DTYPES,
    STRING,
    TIMESTAMP,
    empty_counts,
    empty_events,
)
from pmtimeline.signatures import signatures_of
from pmtimeline.templates import arrow_text, message_templates, regex_mask

#: Histogram bins per decade of milliseconds: bin ``i`` holds durations in [10**(i/20), 10**((i+1)/20)),
#: so a percentile read from the histogram is within about 6% of the exact one.
LATENCY_BINS_PER_DECADE: Final = 20
#: Ordinary events kept per message template (and templates kept in all) as context for the draft.
SAMPLE_PER_TEMPLATE: Final = 3
MAX_SAMPLE_TEMPLATES: Final = 2_000
#: Ordinary events of a chunk whose templates are computed for the sample (a stride over the chunk);
#: after a chunk whose scan found no template short of samples, the next chunk scans half as many,
#: down to :data:`SAMPLE_SCAN_LEAST`, and a scan that finds one goes back to :data:`SAMPLE_SCAN`.
SAMPLE_SCAN: Final = 5_000
SAMPLE_SCAN_LEAST: Final = 500
#: Actors kept per bucket (the most active ones): an attack is by definition among them.
TOP_ACTORS_PER_BUCKET: Final = 200
#: Bad events kept whole per (bucket, service, source) and signal, at each end (see :func:`bad_sample_mask`).
BAD_EVENTS_PER_BUCKET: Final = 3
#: Failing requests whose error events are all kept whole (those with the smallest correlation ids).
TRAIL_REQUESTS: Final = 200
_COMPACT_ROWS: Final = 500_000
#: A bucket wider than any window: keyed counts over it are counts over the whole window.
_WHOLE_WINDOW: Final = "36500D"
_COMPACT_SAMPLE_ROWS: Final = 20_000
_COMPACT_PARTS: Final = 64
#: Signal buckets per analysis at most: a span wider than this many ``config.bucket`` gets the
#: narrowest of :data:`BUCKET_WIDTHS` that fits it (:func:`adapted_bucket`), so the cost of the
#: analysis does not grow with the years the data covers.
MAX_BUCKETS: Final = 2_000
BUCKET_WIDTHS: Final = (
    "1s", "5s", "10s", "15s", "30s", "1min", "2min", "5min", "10min", "15min", "30min", "1h", "2h", "3h", "6h",
    "12h", "1D", "2D", "7D", "14D", "28D", "91D", "182D", "364D",
)  # fmt: skip
#: Outlier timestamps (:func:`dense_span`): the core of the data is what lies between the
#: :data:`CORE_QUANTILE` and 1 - :data:`CORE_QUANTILE` quantiles of its events' times; an event more
#: than :data:`OUTLIER_SPANS` core widths (at least :data:`MIN_CORE_WIDTH`) outside the core is an outlier.
CORE_QUANTILE: Final = 0.05
OUTLIER_SPANS: Final = 10
MIN_CORE_WIDTH: Final = "1D"
#: The earliest and the latest events of the data kept whole (the outliers are among them).
EXTREME_EVENTS: Final = 100
#: Data spanning more than this many times its densest half is said to (a --start/--end is suggested).
SPREAD_FACTOR: Final = 20

LATENCY_COLUMNS: Final = ("bucket", "service", "scope", "bin", "count")
ACTOR_COLUMNS: Final = ("bucket", "actor_kind", "actor", "account", "failures", "successes", "first", "last")
_WARNING_OR_WORSE: Final = ["warning", *sorted(ERROR_LEVELS)]
_AUTH_FAILURE_STATUS: Final = [401, 403, 429]
_LATENCY_SCOPES: Final = ("edge", "request", "other")


@dataclass
class Aggregates:
    """What the analysis needs of a window's events (see the module docstring)."""

    counts: pd.DataFrame
    notable: pd.DataFrame
    latency: pd.DataFrame
    actors: pd.DataFrame
    window_start: pd.Timestamp | None = None
    window_end: pd.Timestamp | None = None
    #: None when the aggregates were reopened without them (older outputs): then they are
    #: derived from ``notable`` by :meth:`event_details`.
    details: EventDetails | None = field(default=None, repr=False)
    #: How the data's time span was handled (:class:`TimeSpan`); None when reopened from outputs.
    span: TimeSpan | None = None
    _signatures: pd.Series | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def empty(cls) -> Aggregates:
        return cls(empty_counts(), empty_events(), _empty_latency(), _empty_actors(), details=EventDetails.empty())

    def event_details(self, config: TimelineConfig) -> EventDetails:
        """The :class:`EventDetails` of the window (derived once from ``notable`` when absent)."""
        if self.details is None:
            self.details = event_details(self.notable, config)
        return self.details

    def notable_signatures(self) -> pd.Series:
        """The failure signature (:mod:`pmtimeline.signatures`) of each notable error or warning that
        has one (alerts and changes aside), indexed by position in ``notable``. Computed once: the
        mechanism and every external trigger cite events of their signature."""
        if self._signatures is None:
            notable = self.notable.reset_index(drop=True)
            masks = SignalMasks.of(notable)
            self._signatures = _signatures(notable, masks.errors | masks.warning_level)
        return self._signatures


@dataclass(frozen=True)
class TimeSpan:
    """The data's time span as the analysis saw it (see :func:`dense_span` and :func:`adapted_bucket`).

    ``outliers``: the events set aside as far from the dense span, kept whole (at most
    :data:`EXTREME_EVENTS` at each end); ``outlier_events`` counts all of them. They are in none of
    the other tables of :class:`Aggregates`. ``bucket`` is the signal bucket width the analysis uses;
    ``densest_start``/``densest_end`` bound the shortest stretch holding half of the other events.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    bucket: str
    densest_start: pd.Timestamp
    densest_end: pd.Timestamp
    outlier_events: int = 0
    outliers: pd.DataFrame = field(default_factory=lambda: empty_events(), repr=False)

    @property
    def spread(self) -> bool:
        """True when the data spans far more than its densest half (:data:`SPREAD_FACTOR` times, and
        more than :data:`MAX_BUCKETS` buckets of one minute)."""
        span = self.end - self.start
        dense = max(self.densest_end - self.densest_start, pd.Timedelta("1min"))
        return bool(span > SPREAD_FACTOR * dense and span > MAX_BUCKETS * pd.Timedelta("1min"))

    def notes(self, configured: str) -> list[str]:
        """What to say on stderr: outliers set aside, coarser buckets, a --start/--end to paste."""
        out = []
        if self.outlier_events:
            shown = ", ".join(_iso(t) for t in pd.unique(self.outliers["timestamp"])[:3])
            out.append(
                f"{self.outlier_events} event(s) lie far outside the data's dense span ({shown}): kept and listed "
                "as outliers (incident.json time_span, Data quality), left out of the signals"
            )
        if self.spread:
            start, end = self.densest_start.floor("1min"), self.densest_end.ceil("1min")
            out.append(
                f"the data spans {_iso(self.start)} to {_iso(self.end)}, far more than its densest activity "
                f"(half of the events lie within {_iso(self.densest_start)} to {_iso(self.densest_end)}); "
                f"signals use {self.bucket} buckets. To analyse that part alone: --start {_iso(start)} --end "
                f"{_iso(end + pd.Timedelta('1min'))}"
            )
        elif self.bucket != configured:
            out.append(
                f"the data spans {_iso(self.start)} to {_iso(self.end)}: signals use {self.bucket} buckets "
                f"(at most {MAX_BUCKETS:,}); --start/--end narrow the window for finer ones"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``time_span`` of incident.json: the times are the data's; outliers are cited, not quoted."""
        listed = self.outliers
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "bucket": self.bucket,
            "densest_half": {"start": _iso(self.densest_start), "end": _iso(self.densest_end)},
            "outlier_events": self.outlier_events,
            "outliers": [
                {
                    "timestamp": _iso(t),
                    "source": None if pd.isna(src) else str(src),
                    "line": None if pd.isna(ln) else int(ln),
                }
                for t, src, ln in zip(listed["timestamp"], listed["source"], listed["line"], strict=True)
            ],
        }


def span_config(config: TimelineConfig, aggregates: Aggregates) -> TimelineConfig:
    """``config`` with the bucket width the analysis of ``aggregates`` uses (:func:`adapted_bucket` of
    their window): the analysis, the draft and the chart then speak of the same buckets."""
    if aggregates.window_start is None or aggregates.window_end is None:
        return config
    bucket = adapted_bucket(config.bucket, aggregates.window_end - aggregates.window_start)
    return config if bucket == config.bucket else replace(config, bucket=bucket)


def _iso(at: pd.Timestamp) -> str:
    return pd.Timestamp(at).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def adapted_bucket(configured: str, span: pd.Timedelta) -> str:
    """``configured`` when ``span`` holds at most :data:`MAX_BUCKETS` of it; else the narrowest of
    :data:`BUCKET_WIDTHS` that does (the widest when none does)."""
    if span <= MAX_BUCKETS * pd.Timedelta(configured):
        return configured
    wide = [w for w in BUCKET_WIDTHS if pd.Timedelta(w) > pd.Timedelta(configured)]
    return next((w for w in wide if span <= MAX_BUCKETS * pd.Timedelta(w)), BUCKET_WIDTHS[-1])


def dense_span(ns: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    """The bounds (int64 ns, inclusive) outside which a time is an outlier, for events at times
    ``ns`` (sorted) counted by ``weights``.

    The core is between the :data:`CORE_QUANTILE` and 1 - :data:`CORE_QUANTILE` weighted quantiles of
    the times; its width ``w`` is at least :data:`MIN_CORE_WIDTH`; the bounds are ``w *``
    :data:`OUTLIER_SPANS` before and after it. A clock reset to 1970 or a year 2200 beside a day of
    logs is far outside; six systems logged years apart, each a sixth of the data, are all inside.
    Up to :data:`CORE_QUANTILE` of the events can be outliers this way.
    """
    cumulative = np.cumsum(weights, dtype="float64")
    total = cumulative[-1]
    low = ns[min(int(np.searchsorted(cumulative, CORE_QUANTILE * total, side="left")), len(ns) - 1)]
    high = ns[min(int(np.searchsorted(cumulative, (1 - CORE_QUANTILE) * total, side="left")), len(ns) - 1)]
    width = max(int(high) - int(low), pd.Timedelta(MIN_CORE_WIDTH).value)
    bound = np.iinfo("int64")
    return max(int(low) - OUTLIER_SPANS * width, bound.min + 1), min(int(high) + OUTLIER_SPANS * width, bound.max)


def densest_half(ns: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    """The shortest stretch (int64 ns bounds) of sorted times ``ns`` holding half of their ``weights``."""
    cumulative = np.cumsum(weights, dtype="float64")
    before = cumulative - weights
    # For each first time, the first time by which half of the events have come.
    last = np.searchsorted(cumulative, before + cumulative[-1] / 2, side="left")
    valid = last < len(ns)
    first = np.flatnonzero(valid)
    widths = ns[last[first]] - ns[first]
    best = int(first[int(np.argmin(widths))])
    return int(ns[best]), int(ns[last[best]])


def _empty_of(columns: Mapping[str, object]) -> Callable[[], pd.DataFrame]:
    """A maker of empty frames with these columns and dtypes. The frame is built once, on first use
    (pandas takes milliseconds to build one, and every chunk needs a few); callers get a shallow
    copy (copy-on-write: changing it never changes the frame kept)."""

    @cache
    def blank() -> pd.DataFrame:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})  # type: ignore[call-overload]

    def empty() -> pd.DataFrame:
        return blank().copy(deep=False)

    return empty


_empty_latency = _empty_of({"bucket": TIMESTAMP, "service": STRING, "scope": STRING, "bin": "int64", "count": "int64"})
_empty_rows = _empty_of({**EVENT_DTYPES, "_row": "int64"})
_empty_actors = _empty_of(
    {
        "bucket": TIMESTAMP,
        "actor_kind": STRING,
        "actor": STRING,
        "account": STRING,
        "failures": "int64",
        "successes": "int64",
        "first": TIMESTAMP,
        "last": TIMESTAMP,
    }
)


def _bool(series: pd.Series) -> np.ndarray:
    return np.asarray(series.to_numpy(dtype=bool, na_value=False), dtype=bool)


def _is_in(values: pd.Series, options: list[str]) -> np.ndarray:
    """Boolean mask of the values among ``options`` (nulls are False); Arrow's kernel on the
    event schema's string columns (half the time of ``Series.isin`` there)."""
    if values.dtype != STRING:
        return _bool(values.isin(options))
    text = pa.array(values.array)
    found = pc.is_in(text, value_set=pa.array(options, type=text.type))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _starts_with(values: pd.Series, prefix: str) -> np.ndarray:
    """Boolean mask of the values that start with ``prefix`` (nulls are False)."""
    if values.dtype != STRING:
        return _bool(values.str.startswith(prefix))
    found = pc.fill_null(pc.starts_with(pa.array(values.array), prefix), False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def endpoint_of(paths: pd.Series) -> pd.Series:
    """Request paths as endpoints: no query string or fragment, and id segments (a number, or a
    segment with two digits or more, such as ``pay_3f9c2b1a``) replaced with ``{id}``."""
    out = paths.str.replace(r"[?#].*$", "", regex=True)
    out = out.str.replace(r"/[^/]*[0-9][^/]*[0-9][^/]*", "/{id}", regex=True)
    return out.str.replace(r"/[0-9]+(/|$)", r"/{id}\1", regex=True)


def error_mask(events: pd.DataFrame) -> np.ndarray:
    """Error events: level error or worse, or HTTP status >= 500. Alert state changes are not errors
    (a critical alert reports errors, it is not one more)."""
    bad = _bool(events["level"].isin(list(ERROR_LEVELS))) | _bool(events["http_status"] >= 500)
    return np.asarray(bad & ~_bool(events["kind"] == "alert"), dtype=bool)


def warning_mask(events: pd.DataFrame) -> np.ndarray:
    """Warnings that are not error events (nor alerts)."""
    warn = _bool(events["level"] == "warning") & ~_bool(events["kind"] == "alert")
    return np.asarray(warn & ~error_mask(events), dtype=bool)


def edge_mask(events: pd.DataFrame) -> np.ndarray:
    """Request events of access logs (edge requests)."""
    return np.asarray(
        _bool(events["kind"] == "request") & _bool(events["format"].str.startswith(EDGE_FORMAT_PREFIX)), dtype=bool
    )


@dataclass(frozen=True)
class SignalMasks:
    """The masks of one frame that every stage needs, computed once: the events that count toward
    each signal of :data:`BAD_SIGNALS` (as :func:`pmtimeline.signals.bad_event_mask` selects
    them), requests, edge requests and events of level warning (alerts and changes included)."""

    errors: np.ndarray
    warnings: np.ndarray
    requests: np.ndarray
    failed: np.ndarray
    edge: np.ndarray
    warning_level: np.ndarray
    edge_format: np.ndarray  # events of access logs, requests or not

    @classmethod
    def of(cls, events: pd.DataFrame) -> SignalMasks:
        level = events["level"]
        status = events["http_status"]
        alert = _is_in(events["kind"], ["alert"])
        errors = ~alert & (_is_in(level, sorted(ERROR_LEVELS)) | _bool(status >= 500))
        warning_level = _is_in(level, ["warning"])
        requests = _is_in(events["kind"], ["request"])
        edge_format = _starts_with(events["format"], EDGE_FORMAT_PREFIX)
        return cls(
            errors=errors,
            warnings=warning_level & ~errors & ~alert,
            requests=requests,
            failed=requests & _bool(status >= 500),
            edge=requests & edge_format,
            warning_level=warning_level,
            edge_format=edge_format,
        )

    @property
    def bad(self) -> np.ndarray:
        """The events that count toward any of :data:`BAD_SIGNALS`."""
        return np.asarray(self.errors | self.warnings | self.failed, dtype=bool)

    def signal(self, name: str) -> np.ndarray:
        """The mask of one of :data:`BAD_SIGNALS`."""
        masks = {
            "errors": self.errors,
            "warnings": self.warnings,
            "failed_requests": self.failed,
            "failed_edge_requests": self.failed & self.edge,
        }
        return np.asarray(masks[name], dtype=bool)


def service_codes(events: pd.DataFrame) -> tuple[np.ndarray, Any]:
    """(codes, names) of the events' services, null as "", in order of first appearance: several
    stages group a chunk by service, and code it once."""
    return _code(events["service"].fillna(""))


def count_signals(
    events: pd.DataFrame,
    resolution: str,
    masks: SignalMasks | None = None,
    services: tuple[np.ndarray, Any] | None = None,
) -> pd.DataFrame:
    """The per-(bucket, service) signal counts of one chunk (:data:`pmtimeline.schema.COUNT_COLUMNS`).

    ``masks`` and ``services`` (:func:`service_codes`) are computed when not given.
    """
    if events.empty:
        return empty_counts()
    masks = masks or SignalMasks.of(events)
    errors, request, failed, edge = masks.errors, masks.requests, masks.failed, masks.edge
    codes, names = _in_name_order(*(services or service_codes(events)))
    slots = _Slots.of(np.asarray(events["timestamp"].array.asi8, dtype="int64"), resolution)
    # The keys sort as the rows must: by bucket, then service name.
    (slot, service), sums = group_sum(
        [slots.numbers, codes],
        {
            "events": None,
            "errors": errors,
            "warnings": masks.warnings,
            "requests": request,
            "failed_requests": failed,
            "edge_requests": edge,
            "failed_edge_requests": edge & failed,
        },
    )
    return pd.DataFrame({"bucket": utc_times(slots.starts(slot)), "service": names.take(service), **sums})


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray]:
    """(integer codes, distinct values as a string array) with the codes in the order of the values
    (as ``pd.factorize(values, sort=True)`` gives them; ``values`` hold no nulls)."""
    return _in_name_order(*_code(values.astype(STRING)))


def _in_name_order(codes: np.ndarray, names: Any) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray]:
    """Codes of distinct strings renumbered in the order of the strings."""
    order = np.asarray(names.argsort(), dtype="int64")
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order), dtype="int64")
    return rank[codes], names.take(order)


def utc_times(ns: np.ndarray) -> pd.DatetimeIndex:
    """Int64 nanoseconds since the epoch as UTC times (what ``pd.to_datetime(ns, utc=True)`` gives,
    without its parsing machinery: a view, some thirty times faster on a chunk's keys)."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]"), tz="UTC")


def group_sum(
    keys: list[np.ndarray], weights: dict[str, np.ndarray | None]
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Sums of ``weights`` (None counts rows) per distinct combination of non-negative integer keys.

    One mixed-radix int64 key, ``np.unique`` and ``np.bincount``: several times faster than a pandas
    groupby on several columns, which matters once per chunk. Combinations come out in key order.
    """
    combined, radices = _mixed_radix(keys)
    span = int(np.prod(radices, dtype="int64"))
    if span <= 2 * len(combined) + 4096:
        # Few possible combinations (a chunk's seconds times its services): count on all of them
        # and keep those present, with no sort at all.
        rows = np.bincount(combined, minlength=span)
        unique = np.flatnonzero(rows)
        sums = {
            name: (rows if w is None else np.bincount(combined, weights=w.astype("float64"), minlength=span))[
                unique
            ].astype("int64")
            for name, w in weights.items()
        }
        return _decoded(unique.astype("int64"), radices), sums
    unique, inverse = np.unique(combined, return_inverse=True)
    sums = {
        name: np.bincount(inverse, weights=None if w is None else w.astype("float64"), minlength=len(unique)).astype(
            "int64"
        )
        for name, w in weights.items()
    }
    return _decoded(unique, radices), sums


def _mixed_radix(keys: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Non-negative integer keys combined into one int64 key per row, and the radix of each."""
    combined = np.zeros(len(keys[0]), dtype="int64")
    radices = []
    for key in keys:
        base = int(key.max()) + 1 if len(key) else 1
        combined = combined * base + key.astype("int64")
        radices.append(base)
    return combined, radices


def _decoded(combined: np.ndarray, radices: list[int]) -> list[np.ndarray]:
    """The keys that :func:`_mixed_radix` combined, back from the combined values."""
    decoded: list[np.ndarray] = []
    rest = combined
    for base in reversed(radices):
        decoded.append(rest % base)
        rest = rest // base
    return decoded[::-1]


@dataclass(frozen=True)
class _Slots:
    """Times (int64 ns) as the numbers of their buckets of one resolution: small non-negative integers
    that combine with other keys into one (see :func:`group_sum`).

    Counted from the earliest bucket; or, when a chunk spans far more buckets than it has events (a
    line dated 1970 beside today's, or centuries, whose offsets would not even fit in int64), the
    ranks of its distinct buckets, so that no key grows with the span.
    """

    numbers: np.ndarray
    origin: int  # start of bucket 0, int64 ns
    step: int  # the resolution, ns
    table: np.ndarray | None = None  # the start of each numbered bucket, when numbered by rank

    @classmethod
    def of(cls, ns: np.ndarray, resolution: str) -> _Slots:
        step = pd.Timedelta(resolution).value
        floored = ns - ns % step
        low, high = (int(floored.min()), int(floored.max())) if len(floored) else (0, 0)
        # Python integers: the difference of two int64 times can overflow int64.
        if (high - low) // step <= 4 * len(ns) + 4096:
            return cls(np.asarray((floored - low) // step, dtype="int64"), low, step)
        table, numbers = np.unique(floored, return_inverse=True)
        return cls(np.asarray(numbers, dtype="int64").reshape(-1), 0, step, np.asarray(table, dtype="int64"))

    def starts(self, numbers: np.ndarray) -> np.ndarray:
        """The start (int64 ns) of the buckets numbered ``numbers``."""
        if self.table is not None:
            return np.asarray(self.table[numbers], dtype="int64")
        return np.asarray(self.origin + numbers * self.step, dtype="int64")


def _conform_counts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(COUNT_COLUMNS)].reset_index(drop=True)
    out["bucket"] = pd.to_datetime(out["bucket"], utc=True).astype(TIMESTAMP)
    for name, dtype in COUNT_DTYPES.items():
        if name != "bucket":
            out[name] = out[name].astype(dtype)  # type: ignore[call-overload]
    return out


def sum_counts(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Counts of several chunks summed per (bucket, service)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_counts()
    joined = pd.concat(frames, ignore_index=True)
    if len(frames) == 1:
        return _conform_counts(joined)
    if bool(joined["service"].isna().any()):
        return _conform_counts(joined.groupby(["bucket", "service"], sort=True, as_index=False).sum())
    # As the groupby above, on integer codes: the rows come out by bucket, then service.
    names = [c for c in COUNT_COLUMNS if c not in ("bucket", "service")]
    bucket_ns, bucket_codes = np.unique(_times_ns(joined["bucket"]), return_inverse=True)
    service_codes, services = _sorted_codes(joined["service"])
    (bucket, service), sums = group_sum(
        [bucket_codes.reshape(-1), service_codes], {name: joined[name].to_numpy(dtype="int64") for name in names}
    )
    return pd.DataFrame({"bucket": utc_times(bucket_ns[bucket]), "service": services.take(service), **sums})


def _times_ns(times: pd.Series) -> np.ndarray:
    """UTC times (of any resolution) as int64 nanoseconds since the epoch."""
    return np.asarray(pd.to_datetime(times, utc=True).astype(TIMESTAMP).array.asi8, dtype="int64")


def latency_bins(durations_ms: np.ndarray) -> np.ndarray:
    """The histogram bin of each duration (see :data:`LATENCY_BINS_PER_DECADE`)."""
    clipped = np.clip(durations_ms, 1e-3, None)
    return np.asarray(np.floor(np.log10(clipped) * LATENCY_BINS_PER_DECADE), dtype="int64")


def bin_value(bins: np.ndarray) -> np.ndarray:
    """A representative duration (geometric middle) of each bin, in ms."""
    return np.asarray(10 ** ((bins.astype("float64") + 0.5) / LATENCY_BINS_PER_DECADE), dtype="float64")


#: The scopes of latency histograms, in alphabetical order: their codes sort as the names do.
_SCOPES_SORTED: Final = tuple(sorted(_LATENCY_SCOPES))
_SCOPE_CODES: Final = {name: code for code, name in enumerate(_SCOPES_SORTED)}


class _HeldRows:
    """Copies of chunks' rows kept while any of them is held, held rows named by their run-wide row
    numbers: the first error of each template, the ends of each service. A rule that moves on to a
    later row leaves its earlier copy behind, and a copy goes once none of its rows is held."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, pd.DataFrame]] = []

    def add(self, events: pd.DataFrame, rows: np.ndarray, order: np.ndarray, held: np.ndarray) -> None:
        """Copy ``rows`` (positions) of a chunk whose row numbers are ``order``; ``held``: the row
        numbers held now, these included."""
        self._parts = [(numbers, part) for numbers, part in self._parts if np.isin(numbers, held).any()]
        self._parts.append((order[rows], events.iloc[rows].assign(_row=order[rows])))

    def frame(self, held: np.ndarray) -> pd.DataFrame:
        """The rows held (``held``: their row numbers), with a ``_row`` column."""
        parts = [part.loc[np.isin(numbers, held)] for numbers, part in self._parts]
        return pd.concat(parts, ignore_index=True) if parts else _empty_rows()


class _LatencyHistograms:
    """The latency histograms of the chunks added so far (see :attr:`Aggregates.latency`).

    Kept as integer columns (bucket start in ns, service id, scope code, bin, count), the services
    numbered in the order first seen: merging the chunks' histograms is then numpy work only, with
    no string column to concatenate or code again.
    """

    def __init__(self) -> None:
        self.services: dict[str, int] = {}
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0

    def add(self, events: pd.DataFrame, resolution: str, edge: np.ndarray, services: tuple[np.ndarray, Any]) -> None:
        """Add the histograms of one chunk's events that have a duration (``services`` as
        :func:`service_codes` gives them)."""
        has = _bool(events["duration_ms"].notna()) & _bool(events["duration_ms"] >= 0)
        if not has.any():
            return
        request = _is_in(events["kind"], ["request"])[has]
        other = np.where(request, _SCOPE_CODES["request"], _SCOPE_CODES["other"])
        scope = np.where(edge[has], _SCOPE_CODES["edge"], other)
        codes, names = services
        ids = np.array([self.services.setdefault(n, len(self.services)) for n in names.tolist()], dtype="int64")
        slots = _Slots.of(np.asarray(events["timestamp"].array.asi8, dtype="int64")[has], resolution)
        bins = latency_bins(events["duration_ms"].to_numpy(dtype="float64", na_value=np.nan)[has])
        low = int(bins.min())
        (slot, service, scope_code, shifted), sums = group_sum(
            [slots.numbers, ids[codes[has]], scope, bins - low], {"count": None}
        )
        self.parts.append((slots.starts(slot), service, scope_code, shifted + low, sums["count"]))
        self.rows += len(slot)
        if self.rows > _COMPACT_ROWS and len(self.parts) > 1:
            self.parts = [self._merged()]
            self.rows = len(self.parts[0][0])

    def _merged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The parts summed per (bucket, service, scope, bin), rows in that order (services by name)."""
        bucket, service, scope, bins, count = (np.concatenate(column) for column in zip(*self.parts, strict=True))
        buckets, bucket_codes = np.unique(bucket, return_inverse=True)
        by_name = np.argsort(np.array(list(self.services), dtype=object), kind="stable")
        rank = np.empty(len(by_name), dtype="int64")
        rank[by_name] = np.arange(len(by_name), dtype="int64")
        low = int(bins.min())
        (b, name_rank, scope_code, shifted), sums = group_sum(
            [bucket_codes.reshape(-1), rank[service], scope, bins - low], {"count": count}
        )
        return buckets[b], by_name[name_rank], scope_code, shifted + low, sums["count"]

    def frame(self) -> pd.DataFrame:
        """The histograms as :data:`LATENCY_COLUMNS`, by bucket, service, scope and bin."""
        if not self.parts:
            return _empty_latency()
        bucket, service, scope, bins, count = self._merged()
        names = pd.array(list(self.services), dtype=STRING)
        scopes = pd.array(list(_SCOPES_SORTED), dtype=STRING)
        return pd.DataFrame(
            {
                "bucket": utc_times(bucket),
                "service": names.take(service),
                "scope": scopes.take(scope),
                "bin": bins,
                "count": count,
            }
        )


def _matching(events: pd.DataFrame, rows: np.ndarray, patterns: Mapping[str, str]) -> np.ndarray:
    """Positions of the ``rows`` (a mask) where a column matches its pattern (:func:`regex_mask`).

    Only the rows asked about are matched: most logs identify no actor (no user, no client IP), and
    their messages, nearly all distinct, would each be matched for nothing.
    """
    idx = np.flatnonzero(rows)
    if not idx.size:
        return idx
    whole = idx.size == len(events)
    found = np.zeros(idx.size, dtype=bool)
    for column, pattern in patterns.items():
        values = events[column] if whole else pd.Series(events[column].array.take(idx))
        found |= regex_mask(values, pattern)
    return idx[found]


def auth_identities(events: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(user, client_ip) of each event: its own columns, else read from the message where both are
    missing and the message is an authentication message naming a client address (``Failed
    password for root from 203.0.113.7``)."""
    user, address = events["user"], events["client_ip"]
    rows = np.flatnonzero(_bool(user.isna()) & _bool(address.isna()))
    if not rows.size:
        return user, address
    # A literal search first (one polars pass for both words, cheaper than two): most lines name no address.
    text = pl.from_arrow(arrow_text(events["message"]).take(pa.array(rows)))
    assert isinstance(text, pl.Series)
    rows = rows[text.str.contains("from |rhost=").fill_null(False).to_numpy()]
    if rows.size:
        rows = rows[regex_mask(pd.Series(events["message"].array.take(rows)), AUTH_MESSAGE)]
    if not rows.size:
        return user, address
    messages = pl.from_arrow(arrow_text(events["message"]).take(pa.array(rows)))
    assert isinstance(messages, pl.Series)
    found_address = messages.str.extract(polars_pattern(MESSAGE_ADDRESS), 1)
    found_user = pl.select(
        pl.when(found_address.is_not_null()).then(messages.str.extract(polars_pattern(MESSAGE_ACCOUNT), 1))
    ).to_series()
    # The found values put in place by Arrow: pandas' setitem on a string column checks every value.
    at = np.zeros(len(events), dtype=bool)
    at[rows] = True
    return _replaced(user, at, found_user), _replaced(address, at, found_address)


def _replaced(values: pd.Series, at: np.ndarray, found: pl.Series) -> pd.Series:
    """``values`` with the rows ``at`` (a mask) replaced by ``found``, in order, as strings."""
    text = arrow_text(values)
    new = found.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(text.type)
    out = pc.replace_with_mask(text, pa.array(at), new)
    return pd.Series(pd.array(out, dtype=STRING), index=values.index, name=values.name)


def auth_outcomes(
    events: pd.DataFrame, identities: tuple[pd.Series, pd.Series] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(failure, success) masks of authentication-like events (logins, token and session requests).

    The outcome is read from the level, the HTTP status, the message's words, and the keys of
    structured records (``"outcome":"failure"``, ``"result":"ok"``; see :mod:`pmtimeline.exposure`).
    """
    n = len(events)
    failure = np.zeros(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    user, address = identities if identities is not None else auth_identities(events)
    identified = _bool(address.notna()) | _bool(user.notna())
    idx = _matching(events, identified, {"url_path": AUTH_PATH, "message": AUTH_MESSAGE, "fields": AUTH_FIELD})
    if idx.size:
        sub = events[["level", "http_status", "message", "fields"]].iloc[idx]
        status = sub["http_status"]
        failed = (
            _bool(sub["level"].isin(_WARNING_OR_WORSE))
            | _bool(status.isin(_AUTH_FAILURE_STATUS))
            | regex_mask(sub["message"], FAILURE_MESSAGE)
            | regex_mask(sub["fields"], FAILURE_FIELD)
        )
        succeeded = ~failed & (
            _bool(status < 400) | regex_mask(sub["message"], SUCCESS_MESSAGE) | regex_mask(sub["fields"], SUCCESS_FIELD)
        )
        failure[idx] = failed
        success[idx] = succeeded
    return failure, success


def _actors(events: pd.DataFrame, bucket: str) -> pd.DataFrame:
    identities = auth_identities(events)
    failure, success = auth_outcomes(events, identities)
    keep = failure | success
    if not keep.any():
        return _empty_actors()
    rows = np.flatnonzero(keep)
    # Columns taken as Arrow arrays (no Python object per row), and grouped on integer codes.
    stamps = pd.Series(events["timestamp"].array.take(rows))
    times = stamps.dt.floor(bucket).array
    # The exact times too: an actor's first and last attempt are phases of a breach.
    exact = stamps.array
    user = pd.Series(pd.array(arrow_text(identities[0]).take(pa.array(rows)), dtype=STRING)).fillna("")
    ip = pd.array(arrow_text(identities[1]).take(pa.array(rows)), dtype=STRING)
    fails, oks = failure[rows].astype("int64"), success[rows].astype("int64")
    parts = []
    for kind, actor, has in (
        ("client_ip", ip, _bool(pd.Series(ip).notna())),
        ("user", user.array, _bool(user != "")),
    ):
        if not has.any():
            continue
        parts.append(
            pd.DataFrame(
                {
                    "bucket": times[has],
                    "actor_kind": _repeated(kind, int(has.sum())).array,
                    "actor": actor[has],
                    "account": user.array[has],
                    "failures": fails[has],
                    "successes": oks[has],
                    "first": exact[has],
                    "last": exact[has],
                }
            )
        )
    return bound_actors(pd.concat(parts, ignore_index=True))


def bound_actors(frame: pd.DataFrame) -> pd.DataFrame:
    """Sum per (bucket, actor, account), with the first and last attempt, and keep the
    :data:`TOP_ACTORS_PER_BUCKET` most active actors."""
    if frame.empty:
        return _empty_actors()
    # Integer keys (strings coded in order of first appearance), grouped with one numpy sort: a
    # pandas groupby on four keys cost several times more, once per chunk.
    kind_codes, kinds = _code(frame["actor_kind"].astype(STRING))
    actor_codes, actor_names = _code(frame["actor"].astype(STRING))
    account_codes, account_names = _code(frame["account"].astype(STRING))
    bucket_ns = pd.to_datetime(frame["bucket"], utc=True).to_numpy(dtype="datetime64[ns]").view("int64")
    first_ns = pd.to_datetime(frame["first"], utc=True).to_numpy(dtype="datetime64[ns]").view("int64")
    last_ns = pd.to_datetime(frame["last"], utc=True).to_numpy(dtype="datetime64[ns]").view("int64")
    keys = (bucket_ns, kind_codes, actor_codes, account_codes)
    order = np.lexsort(keys[::-1])
    ordered = [key[order] for key in keys]
    changed = np.zeros(len(order), dtype=bool)
    changed[0] = True
    for key in ordered:
        changed[1:] |= key[1:] != key[:-1]
    starts = np.flatnonzero(changed)
    summed = pd.DataFrame(
        {
            "b": ordered[0][starts],
            "k": ordered[1][starts],
            "a": ordered[2][starts],
            "c": ordered[3][starts],
            "failures": np.add.reduceat(frame["failures"].to_numpy(dtype="int64")[order], starts),
            "successes": np.add.reduceat(frame["successes"].to_numpy(dtype="int64")[order], starts),
            "first": np.minimum.reduceat(first_ns[order], starts),
            "last": np.maximum.reduceat(last_ns[order], starts),
        }
    )
    actor_keys = ["b", "k", "a"]
    per_actor = summed.groupby(actor_keys, as_index=False, sort=False)[["failures", "successes"]].sum()
    if int(per_actor.groupby(["b", "k"]).size().max()) > TOP_ACTORS_PER_BUCKET:
        activity = per_actor["failures"] + per_actor["successes"]
        rank = activity.groupby([per_actor["b"], per_actor["k"]]).rank(method="first", ascending=False)
        top = per_actor.loc[rank <= TOP_ACTORS_PER_BUCKET, actor_keys]
        summed = summed.merge(top, on=actor_keys, how="inner")
    return pd.DataFrame(
        {
            "bucket": utc_times(summed["b"].to_numpy(dtype="int64")),
            "actor_kind": kinds.take(summed["k"].to_numpy()),
            "actor": actor_names.take(summed["a"].to_numpy()),
            "account": account_names.take(summed["c"].to_numpy()),
            "failures": summed["failures"].to_numpy(dtype="int64"),
            "successes": summed["successes"].to_numpy(dtype="int64"),
            "first": utc_times(summed["first"].to_numpy(dtype="int64")),
            "last": utc_times(summed["last"].to_numpy(dtype="int64")),
        }
    )


def notable_parts(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(bad, kept) masks: ``bad`` the warnings and worse and HTTP 5xx, ``kept`` the events always kept
    whole: changes, alerts and data operations of identified actors (exports, credential changes;
    see :mod:`pmtimeline.exposure`), whatever their level."""
    bad = _is_in(events["level"], _WARNING_OR_WORSE) | _bool(events["http_status"] >= 500)
    kept = _is_in(events["kind"], ["change", "alert"])
    identified = _bool(events["client_ip"].notna()) | _bool(events["user"].notna())
    kept[
        _matching(
            events,
            identified,
            {"url_path": DATA_OPERATION, "message": DATA_OPERATION, "fields": DATA_OPERATION_FIELD},
        )
    ] = True
    return np.asarray(bad & ~kept, dtype=bool), np.asarray(kept, dtype=bool)


def notable_mask(events: pd.DataFrame) -> np.ndarray:
    """The notable events: warnings and worse, 5xx, changes, alerts, data operations of actors.

    Their counts are all in the aggregates; :class:`Aggregator` keeps a bounded choice of them whole.
    """
    bad, kept = notable_parts(events)
    return np.asarray(bad | kept, dtype=bool)


def in_window(table: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Rows of an :class:`EventDetails` table whose events fall within [start, end].

    A row stands for the events of one key in one bucket of ``count_resolution``, with the times of
    the first and the last of them; a row counts when some of its events are inside. That is exact
    unless a row has events on both sides of a bound, within one bucket (then it counts whole, as a
    bucket of :attr:`Aggregates.counts` does).
    """
    return np.asarray(_bool(table["last"] >= start) & _bool(table["first"] <= end), dtype=bool)


def _empty_keyed(keys: tuple[str, ...], dtypes: Mapping[str, object]) -> pd.DataFrame:
    # A shallow copy: with copy-on-write, changing it never changes the frame kept.
    return _empty_keyed_frame(keys, tuple(sorted((k, str(v)) for k, v in dtypes.items()))).copy(deep=False)


@cache
def _empty_keyed_frame(keys: tuple[str, ...], dtype_items: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    dtypes = dict(dtype_items)
    columns: dict[str, pd.Series] = {"bucket": pd.Series(dtype=TIMESTAMP)}
    columns.update({k: pd.Series(dtype=dtypes.get(k, STRING)) for k in keys})
    columns.update(
        {
            "count": pd.Series(dtype="int64"),
            "first": pd.Series(dtype=TIMESTAMP),
            "last": pd.Series(dtype=TIMESTAMP),
        }
    )
    return pd.DataFrame(columns)


#: The keys of each :class:`EventDetails` table (besides its bucket), and their dtypes.
DETAIL_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "users": ("user_hash",),
    "hosts": ("signal", "service", "host"),
    "endpoints": ("signal", "endpoint"),
    "templates": ("level", "template"),
    "signatures": ("level", "signature"),
}
_KEY_DTYPES: Final[dict[str, object]] = {"user_hash": "uint64"}
TRACED_COLUMNS: Final = ("timestamp", "cid", "service", "source", "line", "error", "edge")
SPAN_COLUMNS: Final = ("actor_kind", "actor", "first", "last")
#: Signals of the hosts and endpoints tables (see :func:`pmtimeline.signals.bad_event_mask`).
BAD_SIGNALS: Final = ("errors", "warnings", "failed_requests", "failed_edge_requests")


_empty_traced = _empty_of(
    {
        "timestamp": TIMESTAMP,
        "cid": "uint64",
        "service": STRING,
        "source": STRING,
        "line": "Int64",
        "error": bool,
        "edge": bool,
    }
)
_empty_spans = _empty_of({"actor_kind": STRING, "actor": STRING, "first": TIMESTAMP, "last": TIMESTAMP})


@dataclass
class EventDetails:
    """Exact, bounded facts about the notable events, for the numbers the analysis reports.

    The keyed tables have one row per (bucket of ``count_resolution``, key) with the events'
    ``count`` and the times of the ``first`` and ``last`` of them (see :func:`in_window`):

    * ``users``: error events per user (``user_hash``, a 64-bit hash: the table holds no names);
    * ``hosts``: bad events per (``signal``, ``service``, ``host``), signals of :data:`BAD_SIGNALS`;
    * ``endpoints``: failed requests per (``signal``, ``endpoint``), ``failed_requests`` and
      ``failed_edge_requests``, endpoints as :func:`pmtimeline.impact.endpoint_of` gives them;
    * ``templates``: error events (``level`` "error": level error or worse, or HTTP 5xx) and
      events of level warning (``level`` "warning") per message template;
    * ``signatures``: the same events (alerts and changes aside) per failure signature of
      :mod:`pmtimeline.signatures` (too many clients, certificate expired, ...), searched in the
      whole text of each, stack traces and fields included.

    ``traced``: one row per notable event with a correlation id (``cid``, a 64-bit hash of the
    trace or request id), with its service, place, and whether it is an error and from an access
    log; about 30 bytes per event, for the requests followed across services. ``actor_spans``: the
    first and last notable event of each client IP and user.
    """

    users: pd.DataFrame
    hosts: pd.DataFrame
    endpoints: pd.DataFrame
    templates: pd.DataFrame
    signatures: pd.DataFrame
    traced: pd.DataFrame
    actor_spans: pd.DataFrame

    @classmethod
    def empty(cls) -> EventDetails:
        keyed = {name: _empty_keyed(keys, _KEY_DTYPES) for name, keys in DETAIL_KEYS.items()}
        return cls(**keyed, traced=_empty_traced(), actor_spans=_empty_spans())

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table by name (to save them; :meth:`from_frames` reads them back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> EventDetails:
        """The details from saved tables (as :meth:`frames` gives them)."""
        empty = cls.empty()
        out: dict[str, pd.DataFrame] = {}
        for name, blank in empty.frames().items():
            frame = frames.get(name, blank)
            out[name] = frame.astype(blank.dtypes.to_dict()) if not frame.empty else blank
        return cls(**out)


def keyed_counts(times: pd.Series, keys: Mapping[str, pd.Series], resolution: str) -> pd.DataFrame:
    """Events per (bucket of ``resolution``, keys), with the times of the first and last of them.

    Rows with a null key are left out.
    """
    coded = {name: _code(values) for name, values in keys.items()}
    return _keyed(np.asarray(times.array.asi8, dtype="int64"), coded, resolution)


def _code(values: pd.Series) -> tuple[np.ndarray, Any]:
    """(integer codes, -1 for null; distinct values) of a column, in order of first appearance."""
    if values.dtype == STRING:
        # Arrow's hash kernel straight on the column: what pd.factorize does, without its several
        # copies (a tenth of the time on a chunk's service column).
        text = pa.array(values.array)
        encoded = pc.dictionary_encode(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return np.asarray(codes, dtype="int64"), pd.array(encoded.dictionary, dtype=STRING)
    codes, names = pd.factorize(values)
    return np.asarray(codes, dtype="int64"), names


def _code_at(values: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, Any]:
    """:func:`_code` of the values at the positions ``rows`` only, as codes for every row (-1
    elsewhere): a key needed for a chunk's few notable rows is not hashed for all of its rows."""
    codes = np.full(len(values), -1, dtype="int64")
    at, names = _code(pd.Series(values.array.take(rows)))
    codes[rows] = at
    return codes, names


def _keyed(ns: np.ndarray, keys: Mapping[str, tuple[np.ndarray, Any]], resolution: str) -> pd.DataFrame:
    """:func:`keyed_counts` of events given as times (int64 ns) and coded keys, all aligned.

    Grouped with one numpy sort on a mixed-radix key (see :func:`group_sum`): a pandas groupby on
    string columns costs several times more, once per chunk and table.
    """
    names = list(keys)
    valid = np.ones(len(ns), dtype=bool)
    for codes, _ in keys.values():
        valid &= codes >= 0
    if not valid.any():
        return _empty_keyed(tuple(names), _KEY_DTYPES)
    ns = ns[valid]
    slots = _Slots.of(ns, resolution)
    order, starts, group_keys = _groups([slots.numbers, *(codes[valid] for codes, _ in keys.values())])
    counts = np.diff(np.append(starts, len(order)))
    sorted_ns = ns[order]
    out: dict[str, Any] = {"bucket": utc_times(slots.starts(group_keys[0]))}
    for name, (_, unique), key in zip(names, keys.values(), group_keys[1:], strict=True):
        dtype = _KEY_DTYPES.get(name, STRING)
        if isinstance(unique, pd.api.extensions.ExtensionArray) and unique.dtype == dtype:
            out[name] = unique.take(key)  # string columns stay Arrow arrays: no Python objects
        else:
            # The distinct values converted once, then taken: not one Python object per row.
            distinct: Any = np.asarray(unique)
            out[name] = pd.array(distinct, dtype=dtype).take(key)
    out["count"] = counts.astype("int64")
    out["first"] = utc_times(np.minimum.reduceat(sorted_ns, starts))
    out["last"] = utc_times(np.maximum.reduceat(sorted_ns, starts))
    return pd.DataFrame(out)


def _groups(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(order, group starts, decoded keys of each group) for non-negative integer keys."""
    combined, radices = _mixed_radix(keys)
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts, _decoded(ordered[starts], radices)


def merge_keyed(frames: list[pd.DataFrame], keys: tuple[str, ...]) -> pd.DataFrame:
    """Keyed tables (:func:`keyed_counts`) of several chunks merged: counts summed, first/last kept."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return _empty_keyed(keys, _KEY_DTYPES)
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    joined = pd.concat(frames, ignore_index=True)
    if bool(joined.loc[:, list(keys)].isna().any().any()):
        merged = joined.groupby(["bucket", *keys], sort=True, as_index=False, observed=True).agg(
            count=("count", "sum"), first=("first", "min"), last=("last", "max")
        )
        return merged.reset_index(drop=True)
    # As that groupby, on integer codes whose order is the values' order: one numpy sort.
    bucket_ns, bucket_codes = np.unique(_times_ns(joined["bucket"]), return_inverse=True)
    coded = [_sorted_codes(joined[k]) if joined[k].dtype == STRING else _unique_codes(joined[k]) for k in keys]
    order, starts, group_keys = _groups([bucket_codes.reshape(-1), *(codes for codes, _ in coded)])
    out: dict[str, Any] = {"bucket": utc_times(bucket_ns[group_keys[0]])}
    for name, (_, values), key in zip(keys, coded, group_keys[1:], strict=True):
        out[name] = values.take(key)
    out["count"] = np.add.reduceat(joined["count"].to_numpy(dtype="int64")[order], starts)
    out["first"] = utc_times(np.minimum.reduceat(_times_ns(joined["first"])[order], starts))
    out["last"] = utc_times(np.maximum.reduceat(_times_ns(joined["last"])[order], starts))
    return pd.DataFrame(out)


def _unique_codes(values: pd.Series) -> tuple[np.ndarray, Any]:
    """(codes, distinct values) with the codes in the order of the values (a column without nulls)."""
    distinct, codes = np.unique(values.to_numpy(), return_inverse=True)
    return np.asarray(codes, dtype="int64").reshape(-1), pd.Series(distinct, dtype=values.dtype).array


def _repeated(text: str, n: int) -> pd.Series:
    """``text`` ``n`` times, as strings (built by Arrow, not from ``n`` Python objects)."""
    return pd.Series(pd.array(pa.repeat(pa.scalar(text, type=pa.large_string()), n), dtype=STRING))


def _hash_text(values: pd.Series) -> np.ndarray:
    return np.asarray(pd.util.hash_array(values.astype(object).to_numpy()), dtype="uint64")


def _signatures(events: pd.DataFrame, worded: np.ndarray) -> pd.Series:
    """The failure signature of the ``worded`` events that have one (alerts and changes aside),
    indexed by row (``events`` has a range index)."""
    rows = np.flatnonzero(worded & ~_is_in(events["kind"], ["alert", "change"]))
    # The two columns first, then the rows: taking the rows of every column copies them all.
    found = signatures_of(events[["message", "fields"]].iloc[rows])
    return found.loc[found.notna().to_numpy(dtype=bool)]


def event_details(events: pd.DataFrame, config: TimelineConfig) -> EventDetails:
    """The :class:`EventDetails` of one frame of events (a chunk, or saved notable events)."""
    if events.empty:
        return EventDetails.empty()
    events = events.reset_index(drop=True)
    masks = SignalMasks.of(events)
    bad, kept = notable_parts(events)
    worded = masks.errors | masks.warning_level
    templates = message_templates(events["message"].loc[worded]).fillna("")
    return _describe(events, config, masks, bad | kept, worded, templates)


def _describe(
    events: pd.DataFrame,
    config: TimelineConfig,
    masks: SignalMasks,
    notable: np.ndarray,
    worded: np.ndarray,
    templates: pd.Series,
    ids: pd.Series | None = None,
    services: tuple[np.ndarray, Any] | None = None,
    signatures: pd.Series | None = None,
) -> EventDetails:
    """``events`` with a range index; ``templates`` of the ``worded`` events; ``ids`` the correlation
    ids of the ``notable`` events (computed when None).

    Columns are coded once (distinct values to integers) and every table is grouped on the codes
    of its rows, so no row of the chunk is copied.
    """
    res = config.count_resolution
    errors = masks.errors
    ns = np.asarray(events["timestamp"].array.asi8, dtype="int64")
    service = services or service_codes(events)
    host = _code_at(events["host"], np.flatnonzero(masks.bad))

    user_codes, user_names = _code_at(events["user"], np.flatnonzero(errors | notable))
    rows = np.flatnonzero(errors & (user_codes >= 0))
    # Users are kept as hashes of their names: counting them needs no name.
    if rows.size:
        hashed = _hash_text(pd.Series(user_names, dtype=object))
        users = _keyed(ns[rows], {"user_hash": (user_codes[rows], hashed)}, res)
    else:
        users = _empty_keyed(DETAIL_KEYS["users"], _KEY_DTYPES)

    failed = np.flatnonzero(masks.failed)
    url_codes, urls = _code(pd.Series(events["url_path"].array.take(failed)))
    if len(urls):
        # Paths repeat: each distinct path of a failed request becomes an endpoint once.
        endpoint_of_url, endpoint_names = pd.factorize(endpoint_of(pd.Series(urls, dtype=STRING)))
        endpoint_codes = np.full(len(events), -1, dtype="int64")
        endpoint_codes[failed] = np.where(url_codes >= 0, endpoint_of_url[np.maximum(url_codes, 0)], -1)
        endpoint = (endpoint_codes, endpoint_names)
    hosts: list[pd.DataFrame] = []
    endpoints: list[pd.DataFrame] = []
    for signal in BAD_SIGNALS:
        rows = np.flatnonzero(masks.signal(signal))
        if not rows.size:
            continue
        table = _keyed(ns[rows], {"service": (service[0][rows], service[1]), "host": (host[0][rows], host[1])}, res)
        table.insert(1, "signal", _repeated(signal, len(table)))
        hosts.append(table)
        if signal.startswith("failed") and len(urls):
            table = _keyed(ns[rows], {"endpoint": (endpoint[0][rows], endpoint[1])}, res)
            table.insert(1, "signal", _repeated(signal, len(table)))
            endpoints.append(table)

    rows = np.flatnonzero(worded)
    template_codes, template_names = _code(templates)
    level = (np.where(errors[rows], 0, 1).astype("int64"), np.array(["error", "warning"], dtype=object))
    keyed_templates = _keyed(ns[rows], {"level": level, "template": (template_codes, template_names)}, res)
    if signatures is None:
        signatures = _signatures(events, worded)
    rows = signatures.index.to_numpy()
    signature_codes, signature_names = _code(signatures)
    level = (np.where(errors[rows], 0, 1).astype("int64"), np.array(["error", "warning"], dtype=object))
    keyed_signatures = _keyed(ns[rows], {"level": level, "signature": (signature_codes, signature_names)}, res)

    if ids is None:
        ids = correlation_ids(events[["trace_id", "request_id"]].loc[notable])
    ids = ids.dropna()
    position = ids.index.to_numpy()
    traced = pd.DataFrame(
        {
            "timestamp": events["timestamp"].array.take(position),
            "cid": _hash_text(ids),
            "service": events["service"].array.take(position),
            "source": events["source"].array.take(position),
            "line": events["line"].array.take(position),
            "error": errors[position],
            "edge": masks.edge_format[position],
        }
    )
    spans = []
    client_ips = _code_at(events["client_ip"], np.flatnonzero(notable))
    for kind, (codes, names) in (("client_ip", client_ips), ("user", (user_codes, user_names))):
        rows = np.flatnonzero(notable & (codes >= 0))
        if rows.size:
            span = _keyed(ns[rows], {"actor": (codes[rows], names)}, _WHOLE_WINDOW)
            spans.append(span.loc[:, ["actor", "first", "last"]].assign(actor_kind=kind))
    # Signals (and actor kinds) are disjoint keys of one table: concatenating their parts is merging them.
    return EventDetails(
        users=users,
        hosts=pd.concat(hosts, ignore_index=True) if hosts else _empty_keyed(DETAIL_KEYS["hosts"], _KEY_DTYPES),
        endpoints=(
            pd.concat(endpoints, ignore_index=True)
            if endpoints
            else _empty_keyed(DETAIL_KEYS["endpoints"], _KEY_DTYPES)
        ),
        templates=keyed_templates,
        signatures=keyed_signatures,
        traced=traced,
        actor_spans=(
            pd.concat(spans, ignore_index=True).loc[:, list(SPAN_COLUMNS)].astype({"actor_kind": STRING})
            if spans
            else _empty_spans()
        ),
    )


def merge_spans(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Actor spans of several chunks merged (the earliest first, the latest last)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return _empty_spans()
    joined = pd.concat(frames, ignore_index=True)
    merged = joined.groupby(["actor_kind", "actor"], sort=True, as_index=False, observed=True).agg(
        first=("first", "min"), last=("last", "max")
    )
    return merged.astype(_empty_spans().dtypes.to_dict()).reset_index(drop=True)


def merge_details(parts: list[EventDetails]) -> EventDetails:
    """The details of several chunks as one."""
    if not parts:
        return EventDetails.empty()
    if len(parts) == 1:
        return parts[0]
    keyed = {name: merge_keyed([getattr(p, name) for p in parts], keys) for name, keys in DETAIL_KEYS.items()}
    traced = [p.traced for p in parts if not p.traced.empty]
    return EventDetails(
        **keyed,
        traced=pd.concat(traced, ignore_index=True) if traced else _empty_traced(),
        actor_spans=merge_spans([p.actor_spans for p in parts]),
    )


def bad_sample_mask(
    events: pd.DataFrame,
    config: TimelineConfig,
    order: np.ndarray,
    masks: SignalMasks | None = None,
    per_side: int = BAD_EVENTS_PER_BUCKET,
    services: tuple[np.ndarray, Any] | None = None,
) -> np.ndarray:
    """The bad events kept whole. For each signal of :data:`BAD_SIGNALS`, in time order (then
    line, then ``order``):

    * the first and the last ``per_side`` events of every (``config.bucket``, service, source):
      onset and recovery are the first and the last bad event of the affected services within a
      bucket, cited with :data:`pmtimeline.phases.EVIDENCE_PER_PHASE` events; the source in the
      key only adds rows (the first events of a service are among those of its sources), and
      gives the draft the first error of each source;
    * the first event of every (``config.count_resolution``, service): the first bad event of
      each service after a time that is not a bucket start (the order in which services began to
      fail, from a bucket before onset) is then exact to ``count_resolution``.
    """
    keep = np.zeros(len(events), dtype=bool)
    if events.empty:
        return keep
    times = np.asarray(events["timestamp"].array.asi8, dtype="int64")
    # Bucket numbers from the first event, so that the group keys combine into one small integer.
    slot, second = (_Slots.of(times, resolution).numbers for resolution in (config.bucket, config.count_resolution))
    service, _ = services or service_codes(events)
    masks = masks or SignalMasks.of(events)
    source, _ = _code_at(events["source"].fillna(""), np.flatnonzero(masks.bad))
    line = events["line"].to_numpy(dtype="float64", na_value=np.inf)
    for signal in BAD_SIGNALS:
        idx = np.flatnonzero(masks.signal(signal))
        if not idx.size:
            continue
        # One sort in time order (then line, then ``order``) for both groupings; a stable sort on
        # each grouping's combined key keeps that order within its groups.
        timed = idx[np.lexsort((order[idx], line[idx], times[idx]))]
        for keys, last in (((slot, service, source), per_side), ((second, service), 0)):
            combined, _ = _mixed_radix([k[timed] for k in keys])
            by_key = np.argsort(combined, kind="stable")
            ranked, key = timed[by_key], combined[by_key]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            sizes = np.diff(np.append(starts, ranked.size))
            group = np.repeat(np.arange(starts.size), sizes)
            position = np.arange(ranked.size) - starts[group]
            keep[ranked[(position < (per_side if last else 1)) | (position >= sizes[group] - last)]] = True
    return keep


class Aggregator:
    """Accumulates :class:`Aggregates` from event chunks (see the module docstring).

    ``add`` takes one event-schema chunk; ``add_counts`` takes counts computed elsewhere (the
    Elasticsearch push-down), in which case that source's chunks are added with ``counted=True`` so
    that they are not counted twice.

    Memory: the counts, histograms, actors and :class:`EventDetails` are merged as they grow, and
    the events kept whole are bounded per bucket, per template and per traced request (plus every
    change, alert and data operation), so memory grows with the window's length and its variety,
    not with its number of events.
    """

    def __init__(self, config: TimelineConfig) -> None:
        self.config = config
        self._counts: list[pd.DataFrame] = []
        self._count_rows = 0
        self._kept: list[pd.DataFrame] = []  # changes, alerts, data operations: every one
        self._bad: list[pd.DataFrame] = []  # candidates for the bad-event sample
        self._bad_rows = 0
        # (correlation ids, rows) of the error events of the sampled requests, and the sample's ids
        self._trail: list[tuple[np.ndarray, pd.DataFrame]] = []
        self._trail_ids = np.array([], dtype=object)
        # template -> (time, source, line, row) of its first error event; and copies of the chunks'
        # events that were a first when added
        self._first_keys: dict[str, tuple[int, str, float, int]] = {}
        self._first_rows = _HeldRows()
        self._details: list[EventDetails] = []
        self._detail_rows = 0
        self._latency = _LatencyHistograms()
        self._actors: list[pd.DataFrame] = []
        self._actor_rows = 0
        self._sample: list[pd.DataFrame] = []  # ordinary events kept as context, in the order kept
        self._sample_rows = 0
        self._sample_counts: dict[str, int] = {}  # events kept in the sample per message template
        self._sample_scan = SAMPLE_SCAN  # ordinary events of the next chunk to scan
        # copies of the events that were an end of their service when added
        self._edge_rows = _HeldRows()
        # service -> ((time, row) of its earliest event, (time, row) of its latest), int64 ns and row numbers
        self._edge_ends: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
        self._rows_seen = 0
        self._extremes = _empty_rows()  # the earliest and the latest events (the outliers are among them)
        self._start: pd.Timestamp | None = None
        self._end: pd.Timestamp | None = None

    def add(self, events: pd.DataFrame, counted: bool = False) -> None:
        """Add one chunk of events (event schema, already through ``classify_changes``).

        ``counted``: the chunk's events are already in counts given to :meth:`add_counts`.
        """
        if events.empty:
            return
        if list(events.columns) != list(EVENT_COLUMNS) or not events.index.equals(pd.RangeIndex(len(events))):
            events = events.reset_index(drop=True).loc[:, list(EVENT_COLUMNS)]
        # A run-wide row number: events kept by several rules are kept once, and ties keep input order.
        order = np.arange(self._rows_seen, self._rows_seen + len(events), dtype="int64")
        self._rows_seen += len(events)
        times = events["timestamp"]
        start, end = times.min(), times.max()
        self._start = start if self._start is None else min(self._start, start)
        self._end = end if self._end is None else max(self._end, end)

        masks = SignalMasks.of(events)
        services = service_codes(events)
        if not counted:
            self._add_counts(count_signals(events, self.config.count_resolution, masks, services))

        bad, kept = notable_parts(events)
        notable = bad | kept
        if kept.any():
            self._kept.append(events.loc[kept].assign(_row=order[kept]))
        worded = masks.errors | masks.warning_level
        templates = message_templates(events["message"].iloc[np.flatnonzero(worded)]).fillna("")
        ids = correlation_ids(events[["trace_id", "request_id"]].loc[notable])
        signatures = _signatures(events, worded)
        self._add_details(_describe(events, self.config, masks, notable, worded, templates, ids, services, signatures))
        if bad.any():
            chosen = bad_sample_mask(events, self.config, order, masks, services=services)
            self._add_bad(events.loc[chosen].assign(_row=order[chosen]))
        self._add_firsts(events, order, masks.errors[worded], templates)
        # The first event of each failure signature too (the mechanism cites it); the keys cannot
        # be templates, which hold no control character.
        self._add_firsts(events, order, np.ones(len(signatures), dtype=bool), "\x1f" + signatures.astype(str))
        self._add_trail(events, order, masks.errors, ids)
        self._add_sample(events, order, np.flatnonzero(~notable))
        self._add_edges(events, order, services)
        self._add_extremes(events, order)

        self._latency.add(events, self.config.count_resolution, masks.edge, services)

        actors = _actors(events, self.config.bucket)
        if not actors.empty:
            self._actors.append(actors)
            self._actor_rows += len(actors)
            if self._actor_rows > _COMPACT_ROWS and len(self._actors) > 1:
                self._actors = [bound_actors(pd.concat(self._actors, ignore_index=True))]
                self._actor_rows = len(self._actors[0])

    def add_counts(self, counts: pd.DataFrame) -> None:
        """Add per-bucket counts computed elsewhere (at ``config.count_resolution``)."""
        if counts.empty:
            return
        missing = [c for c in COUNT_COLUMNS if c not in counts.columns]
        if missing:
            raise ValueError(f"counts lack columns: {', '.join(missing)}")
        self._add_counts(_conform_counts(counts))
        bucket = pd.to_datetime(counts["bucket"], utc=True)
        start, end = bucket.min(), bucket.max()
        self._start = start if self._start is None else min(self._start, start)
        self._end = end if self._end is None else max(self._end, end)

    def _add_counts(self, counts: pd.DataFrame) -> None:
        self._counts.append(counts)
        self._count_rows += len(counts)
        if self._count_rows > _COMPACT_ROWS and len(self._counts) > 1:
            self._counts = [sum_counts(self._counts)]
            self._count_rows = len(self._counts[0])

    def _add_details(self, details: EventDetails) -> None:
        self._details.append(details)
        self._detail_rows += sum(len(getattr(details, name)) for name in DETAIL_KEYS)
        if self._detail_rows > _COMPACT_ROWS and len(self._details) > 1:
            self._details = [merge_details(self._details)]
            self._detail_rows = sum(len(getattr(self._details[0], name)) for name in DETAIL_KEYS)

    def _add_bad(self, chosen: pd.DataFrame) -> None:
        self._bad.append(chosen)
        self._bad_rows += len(chosen)
        if self._bad_rows > _COMPACT_SAMPLE_ROWS and len(self._bad) > 1:
            self._bad = [self._bad_sample()]
            self._bad_rows = len(self._bad[0])

    def _bad_sample(self) -> pd.DataFrame:
        joined = pd.concat(self._bad, ignore_index=True) if self._bad else _empty_rows()
        return joined.loc[bad_sample_mask(joined, self.config, joined["_row"].to_numpy())].reset_index(drop=True)

    def _add_firsts(self, events: pd.DataFrame, order: np.ndarray, errors: np.ndarray, templates: pd.Series) -> None:
        """Keep the first error event of every message template (the new-template candidates cite it)."""
        if not errors.any():
            return
        rows = templates.index[errors].to_numpy()
        codes, names = _code(templates.loc[rows])
        times = np.asarray(events["timestamp"].array.asi8, dtype="int64")[rows]
        line = events["line"].to_numpy(dtype="float64", na_value=np.inf)[rows]
        # The chunk's first event of each template (by time, source, line, input order) before any row is copied.
        source, sources = _in_name_order(*_code(events["source"].iloc[rows].fillna("")))
        ranked = np.lexsort((order[rows], line, source, times, codes))
        first = ranked[np.r_[True, codes[ranked][1:] != codes[ranked][:-1]]]
        # Each template's first is the earliest by (time, source, line, row number): compared with
        # the one held, template by template, so that only the rows that win are copied.
        won = []
        source_names = np.asarray(sources, dtype=object)
        for at, template in zip(first.tolist(), np.asarray(names, dtype=object)[codes[first]], strict=True):
            key = (int(times[at]), str(source_names[source[at]]), float(line[at]), int(order[rows[at]]))
            held = self._first_keys.get(template)
            if held is None or key < held:
                self._first_keys[template] = key
                won.append(rows[at])
        if not won:
            return
        self._first_rows.add(events, np.asarray(won, dtype="int64"), order, self._held_firsts())

    def _held_firsts(self) -> np.ndarray:
        return np.array([key[3] for key in self._first_keys.values()], dtype="int64")

    def _firsts(self) -> pd.DataFrame:
        """The first error event of every message template (see :meth:`_add_firsts`)."""
        return self._first_rows.frame(self._held_firsts())

    def _add_trail(self, events: pd.DataFrame, order: np.ndarray, errors: np.ndarray, ids: pd.Series) -> None:
        """Keep every error event of the failing requests with the :data:`TRAIL_REQUESTS` smallest
        correlation ids (a sample independent of time and chunking): a request followed across
        services is cited with its errors in order, so they must all be there."""
        positions = ids.index.to_numpy()
        keep = errors[positions] & _bool(ids.notna())
        positions, cids = positions[keep], ids.to_numpy(dtype=object)[keep]
        if not cids.size:
            return
        if len(self._trail_ids) == TRAIL_REQUESTS:
            # A full sample takes only ids below its largest: most chunks add nothing to sort.
            below = cids < self._trail_ids[-1]
            if not below.any():
                return
            positions, cids = positions[below], cids[below]
        pool = np.union1d(self._trail_ids, np.unique(cids))[:TRAIL_REQUESTS]
        if len(self._trail_ids) and self._trail_ids[-1] > pool[-1]:
            # Smaller ids came: the requests that left the sample leave the kept events too.
            held = [(c, part, np.isin(c, pool)) for c, part in self._trail]
            self._trail = [(c[inside], part.loc[inside]) for c, part, inside in held if inside.any()]
        self._trail_ids = pool
        inside = np.isin(cids, pool)
        if inside.any():
            rows = positions[inside]
            self._trail.append((cids[inside], events.iloc[rows].assign(_row=order[rows])))

    def _add_sample(self, events: pd.DataFrame, order: np.ndarray, ordinary: np.ndarray) -> None:
        """Keep the first :data:`SAMPLE_PER_TEMPLATE` scanned events of every message template, up
        to :data:`MAX_SAMPLE_TEMPLATES` templates' worth in all."""
        room = SAMPLE_PER_TEMPLATE * MAX_SAMPLE_TEMPLATES - self._sample_rows
        if ordinary.size == 0 or room <= 0:
            return
        step = max(1, ordinary.size // self._sample_scan)
        rows = ordinary[::step]
        # Templates of the scanned messages first; whole rows only for templates still short of samples.
        codes, names = _code(message_templates(events["message"].iloc[rows]).fillna(""))
        # Each scanned event's rank among the scanned events of its template, in row order.
        by_code = np.argsort(codes, kind="stable")
        ranked = codes[by_code]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        rank = np.empty(len(codes), dtype="int64")
        rank[by_code] = np.arange(len(codes)) - np.repeat(starts, np.diff(np.append(starts, len(codes))))
        templates = np.asarray(names, dtype=object)
        have = np.array([self._sample_counts.get(t, 0) for t in templates], dtype="int64")
        wanted = np.flatnonzero(rank + have[codes] < SAMPLE_PER_TEMPLATE)[:room]
        # Templating is most of the cost of the sample: once the scans find only templates that
        # have their samples (a log's kinds of lines are few and recur), they scan less.
        self._sample_scan = SAMPLE_SCAN if wanted.size else max(SAMPLE_SCAN_LEAST, self._sample_scan // 2)
        if not wanted.size:
            return
        self._sample.append(events.iloc[rows[wanted]].assign(_row=order[rows[wanted]]))
        if len(self._sample) > _COMPACT_PARTS:
            self._sample = [pd.concat(self._sample, ignore_index=True)]
        self._sample_rows += wanted.size
        kept, counts = np.unique(codes[wanted], return_counts=True)
        for template, count in zip(templates[kept], counts.tolist(), strict=True):
            self._sample_counts[template] = self._sample_counts.get(template, 0) + count

    def _add_edges(self, events: pd.DataFrame, order: np.ndarray, services: tuple[np.ndarray, Any]) -> None:
        """Keep the earliest and the latest event of every service (of equal times, the first
        added). The times and row numbers held are compared in a dict keyed by service; only the
        rows of the services whose ends a chunk moves are copied, and the rows no longer held are
        dropped as soon as none of a chunk's copies is held (and by :meth:`_edges`)."""
        codes, names = services
        ns = np.asarray(events["timestamp"].array.asi8, dtype="int64")
        # The chunk's earliest and latest event of each service (the first of equal times): the
        # extreme time of each service in one pass, then the first row that has it.
        ends = []
        for extreme, start in ((np.minimum, np.iinfo("int64").max), (np.maximum, np.iinfo("int64").min)):
            best = np.full(len(names), start, dtype="int64")
            extreme.at(best, codes, ns)
            at = np.flatnonzero(ns == best[codes])
            ends.append(at[np.unique(codes[at], return_index=True)[1]])
        moved: list[int] = []
        for name, first, last in zip(np.asarray(names, dtype=object), *ends, strict=True):
            # Earlier chunks hold smaller row numbers: a tie keeps the end held.
            held = self._edge_ends.get(name)
            new_first = held is None or ns[first] < held[0][0]
            new_last = held is None or ns[last] > held[1][0]
            if new_first or new_last:
                self._edge_ends[name] = (
                    (int(ns[first]), int(order[first])) if new_first else held[0],  # type: ignore[index]
                    (int(ns[last]), int(order[last])) if new_last else held[1],  # type: ignore[index]
                )
                moved.extend([first] if new_first else [])
                moved.extend([last] if new_last else [])
        if not moved:
            return
        # Copies of which no row is an end any more go (most are: every chunk moves the last events).
        self._edge_rows.add(events, np.unique(np.asarray(moved, dtype="int64")), order, self._held_edges())

    def _add_extremes(self, events: pd.DataFrame, order: np.ndarray) -> None:
        """Keep the :data:`EXTREME_EVENTS` earliest and latest events (of equal times, the first added):
        whatever the final span, its outliers lie at its ends, so they are among these."""
        ns = np.asarray(events["timestamp"].array.asi8, dtype="int64")
        n, k = len(ns), EXTREME_EVENTS
        rows = np.arange(n) if n <= 2 * k else np.unique(np.argpartition(ns, (k - 1, n - k))[np.r_[0:k, n - k : n]])
        if len(self._extremes) == 2 * k:
            # Held in full: a row of this chunk (added later than every held one, so it loses ties at
            # the start and wins them at the end) gets in only before the k-th earliest held time or
            # from the k-th latest on. Most chunks have none, and copy nothing.
            held_ns = np.asarray(self._extremes["timestamp"].array.asi8, dtype="int64")
            rows = rows[(ns[rows] < held_ns[k - 1]) | (ns[rows] >= held_ns[k])]
            if not rows.size:
                return
        added = events.iloc[rows].assign(_row=order[rows])
        held = pd.concat([self._extremes, added], ignore_index=True) if len(self._extremes) else added
        held = held.sort_values(["timestamp", "_row"], kind="stable")
        self._extremes = held if len(held) <= 2 * k else pd.concat([held.iloc[:k], held.iloc[-k:]])

    def _span(self, counts: pd.DataFrame) -> tuple[TimeSpan, int, int] | None:
        """The :class:`TimeSpan` of the counts and the bounds (int64 ns, inclusive) of its dense span."""
        if counts.empty:
            return None
        res = pd.Timedelta(self.config.count_resolution).value
        ns = _times_ns(counts["bucket"])
        weights = counts["events"].to_numpy(dtype="float64")
        order = np.argsort(ns, kind="stable")
        ns, weights = ns[order], weights[order]
        low, high = dense_span(ns, weights)
        # Whole count buckets: an event is an outlier when its bucket is.
        low = low - low % res
        high = high - high % res + res - 1
        inside = (ns >= low) & (ns <= high)
        if not inside.any():
            return None
        first, last = densest_half(ns[inside], weights[inside])
        times = np.asarray(self._extremes["timestamp"].array.asi8, dtype="int64")
        out = (times < low) | (times > high)
        kept = self._extremes.loc[~out, "timestamp"]
        # The exact first and last kept times when the extremes hold them, else their count buckets.
        start = kept.iloc[0] if len(kept) and times[~out][0] <= ns[inside][0] + res else utc_times(ns[inside][:1])[0]
        end_ns = int(ns[inside][-1])
        end = kept.iloc[-1] if len(kept) and times[~out][-1] >= end_ns else utc_times(np.array([end_ns]))[0]
        outliers = self._extremes.loc[out, list(EVENT_COLUMNS)].reset_index(drop=True)
        span = TimeSpan(
            start=start,
            end=end,
            bucket=adapted_bucket(self.config.bucket, end - start),
            densest_start=utc_times(np.array([first]))[0],
            densest_end=utc_times(np.array([last]))[0],
            outlier_events=int(weights[~inside].sum()),
            outliers=outliers,
        )
        return span, low, high

    def _held_edges(self) -> np.ndarray:
        return np.array([row for ends in self._edge_ends.values() for _, row in ends], dtype="int64")

    def _edges(self) -> pd.DataFrame:
        """The earliest and the latest event of every service (see :meth:`_add_edges`)."""
        return self._edge_rows.frame(self._held_edges())

    def result(self) -> Aggregates:
        """The aggregates of every chunk added so far."""
        counts = sum_counts(self._counts)
        parts = [
            *self._kept,
            self._bad_sample(),
            *(part for _, part in self._trail),
            self._firsts(),
            *self._sample,
            self._edges(),
        ]
        kept = [p for p in parts if not p.empty]
        if kept:
            joined = pd.concat(kept, ignore_index=True).drop_duplicates("_row")
            joined = joined.sort_values(["timestamp", "source", "line", "_row"], kind="stable", na_position="last")
            notable = joined.loc[:, list(EVENT_COLUMNS)].reset_index(drop=True)
        else:
            notable = empty_events()
        latency = self._latency.frame()
        actors = bound_actors(pd.concat(self._actors, ignore_index=True)) if self._actors else _empty_actors()
        details = merge_details(self._details)
        found = self._span(counts)
        if found is None:
            return Aggregates(counts, notable, latency, actors, self._start, self._end, details)
        span, low, high = found
        if span.outlier_events:
            # The outliers leave every table: the signals, the citations and the numbers are those of the rest.
            counts = _between(counts, "bucket", low, high)
            notable = _between(notable, "timestamp", low, high)
            latency = _between(latency, "bucket", low, high)
            actors = actors.loc[_ns_of(actors["last"]) >= low].loc[lambda a: _ns_of(a["first"]) <= high]
            actors = actors.reset_index(drop=True)
            keyed = {name: _between(getattr(details, name), "bucket", low, high) for name in DETAIL_KEYS}
            details = EventDetails(
                **keyed, traced=_between(details.traced, "timestamp", low, high), actor_spans=details.actor_spans
            )
        return Aggregates(counts, notable, latency, actors, span.start, span.end, details, span)


def _ns_of(times: pd.Series) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(times, utc=True)).asi8, dtype="int64")


def _between(frame: pd.DataFrame, column: str, low: int, high: int) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` (times) lies in [low, high] (int64 ns)."""
    ns = _ns_of(frame[column])
    return frame.loc[(ns >= low) & (ns <= high)].reset_index(drop=True)


def aggregate(events: pd.DataFrame, config: TimelineConfig) -> Aggregates:
    """Aggregate one frame of events at once (a convenience for notebooks and tests)."""
    aggregator = Aggregator(config)
    aggregator.add(events)
    return aggregator.result()
