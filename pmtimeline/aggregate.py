"""Streaming aggregation: from event chunks to the bounded state the analysis works from.

The pipeline feeds event chunks (already through :func:`pmtimeline.changes.classify_changes`) one
at a time to an :class:`Aggregator`; memory grows with the window's length and with the notable
events, never with ordinary events. :meth:`Aggregator.result` returns :class:`Aggregates`:

* ``counts``: :data:`pmtimeline.schema.COUNT_COLUMNS` per (second, service), summed across chunks,
  so impact counts are exact to ``count_resolution``;
* ``notable``: the events the analysis, the draft and the chart cite: warnings and worse, HTTP
  5xx, changes, alerts, data operations of identified actors (exports, credential changes; see
  :mod:`pmtimeline.exposure`), a bounded sample of ordinary events per message template, and the
  first and last event of every service;
* ``latency``: a log-spaced histogram of durations per (second, service, scope), so p50/p95/p99
  before and during the incident need no per-request storage;
* ``actors``: failures and successes of authentication-like events per (bucket, actor, account),
  bounded to the most active actors of each bucket, for breach detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.config import TimelineConfig
from pmtimeline.exposure import AUTH_MESSAGE, AUTH_PATH, DATA_OPERATION, FAILURE_MESSAGE, SUCCESS_MESSAGE
from pmtimeline.schema import (
    COUNT_COLUMNS,
    COUNT_DTYPES,
    EDGE_FORMAT_PREFIX,
    ERROR_LEVELS,
    EVENT_COLUMNS,
    STRING,
    TIMESTAMP,
    empty_counts,
    empty_events,
)
from pmtimeline.templates import message_templates, regex_mask

#: Histogram bins per decade of milliseconds: bin ``i`` holds durations in [10**(i/20), 10**((i+1)/20)),
#: so a percentile read from the histogram is within about 6% of the exact one.
LATENCY_BINS_PER_DECADE: Final = 20
#: Ordinary events kept per message template (and templates kept in all) as context for the draft.
SAMPLE_PER_TEMPLATE: Final = 3
MAX_SAMPLE_TEMPLATES: Final = 2_000
#: Ordinary events of a chunk whose templates are computed for the sample (a stride over the chunk).
SAMPLE_SCAN: Final = 5_000
#: Actors kept per bucket (the most active ones): an attack is by definition among them.
TOP_ACTORS_PER_BUCKET: Final = 200
_COMPACT_ROWS: Final = 500_000

LATENCY_COLUMNS: Final = ("bucket", "service", "scope", "bin", "count")
ACTOR_COLUMNS: Final = ("bucket", "actor_kind", "actor", "account", "failures", "successes")
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

    @classmethod
    def empty(cls) -> Aggregates:
        return cls(empty_counts(), empty_events(), _empty_latency(), _empty_actors())


def _empty_latency() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": pd.Series(dtype=TIMESTAMP),
            "service": pd.Series(dtype=STRING),
            "scope": pd.Series(dtype=STRING),
            "bin": pd.Series(dtype="int64"),
            "count": pd.Series(dtype="int64"),
        }
    )


def _empty_actors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": pd.Series(dtype=TIMESTAMP),
            "actor_kind": pd.Series(dtype=STRING),
            "actor": pd.Series(dtype=STRING),
            "account": pd.Series(dtype=STRING),
            "failures": pd.Series(dtype="int64"),
            "successes": pd.Series(dtype="int64"),
        }
    )


def _bool(series: pd.Series) -> np.ndarray:
    return np.asarray(series.to_numpy(dtype=bool, na_value=False), dtype=bool)


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


def count_signals(events: pd.DataFrame, resolution: str) -> pd.DataFrame:
    """The per-(bucket, service) signal counts of one chunk (:data:`pmtimeline.schema.COUNT_COLUMNS`)."""
    if events.empty:
        return empty_counts()
    errors = error_mask(events)
    request = _bool(events["kind"] == "request")
    failed = request & _bool(events["http_status"] >= 500)
    edge = edge_mask(events)
    codes, services = pd.factorize(events["service"].fillna(""))
    step = pd.Timedelta(resolution).value
    ns = floor_ns(events["timestamp"], resolution)
    origin = int(ns.min())
    (slot, service), sums = group_sum(
        [(ns - origin) // step, codes],
        {
            "events": None,
            "errors": errors,
            "warnings": warning_mask(events),
            "requests": request,
            "failed_requests": failed,
            "edge_requests": edge,
            "failed_edge_requests": edge & failed,
        },
    )
    summed = pd.DataFrame(
        {
            "bucket": pd.to_datetime(origin + slot * step, utc=True),
            "service": np.asarray(services, dtype=object)[service],
            **sums,
        }
    )
    return _conform_counts(summed.sort_values(["bucket", "service"], kind="stable"))


def group_sum(
    keys: list[np.ndarray], weights: dict[str, np.ndarray | None]
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Sums of ``weights`` (None counts rows) per distinct combination of non-negative integer keys.

    One mixed-radix int64 key, ``np.unique`` and ``np.bincount``: several times faster than a pandas
    groupby on several columns, which matters once per chunk.
    """
    combined = np.zeros(len(keys[0]), dtype="int64")
    radices = []
    for key in keys:
        base = int(key.max()) + 1 if len(key) else 1
        combined = combined * base + key.astype("int64")
        radices.append(base)
    unique, inverse = np.unique(combined, return_inverse=True)
    sums = {
        name: np.bincount(inverse, weights=None if w is None else w.astype("float64"), minlength=len(unique)).astype(
            "int64"
        )
        for name, w in weights.items()
    }
    decoded: list[np.ndarray] = []
    rest = unique
    for base in reversed(radices):
        decoded.append(rest % base)
        rest = rest // base
    return decoded[::-1], sums


def floor_ns(times: pd.Series, resolution: str) -> np.ndarray:
    """Times floored to ``resolution``, as int64 nanoseconds since the epoch."""
    step = pd.Timedelta(resolution).value
    ns = times.array.asi8
    return np.asarray(ns - ns % step, dtype="int64")


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
    return _conform_counts(joined.groupby(["bucket", "service"], sort=True, as_index=False).sum())


def latency_bins(durations_ms: np.ndarray) -> np.ndarray:
    """The histogram bin of each duration (see :data:`LATENCY_BINS_PER_DECADE`)."""
    clipped = np.clip(durations_ms, 1e-3, None)
    return np.asarray(np.floor(np.log10(clipped) * LATENCY_BINS_PER_DECADE), dtype="int64")


def bin_value(bins: np.ndarray) -> np.ndarray:
    """A representative duration (geometric middle) of each bin, in ms."""
    return np.asarray(10 ** ((bins.astype("float64") + 0.5) / LATENCY_BINS_PER_DECADE), dtype="float64")


def _latency(events: pd.DataFrame, resolution: str, edge: np.ndarray) -> pd.DataFrame:
    has = _bool(events["duration_ms"].notna()) & _bool(events["duration_ms"] >= 0)
    if not has.any():
        return _empty_latency()
    request = _bool(events["kind"] == "request")[has]
    scope = np.where(edge[has], 0, np.where(request, 1, 2))
    codes, services = pd.factorize(events["service"].fillna(""))
    step = pd.Timedelta(resolution).value
    ns = floor_ns(events["timestamp"], resolution)[has]
    origin = int(ns.min())
    bins = latency_bins(events["duration_ms"].to_numpy(dtype="float64", na_value=np.nan)[has])
    low = int(bins.min())
    (slot, service, scope_code, shifted), sums = group_sum(
        [(ns - origin) // step, codes[has], scope, bins - low], {"count": None}
    )
    summed = pd.DataFrame(
        {
            "bucket": pd.to_datetime(origin + slot * step, utc=True),
            "service": np.asarray(services, dtype=object)[service],
            "scope": np.array(_LATENCY_SCOPES, dtype=object)[scope_code],
            "bin": shifted + low,
            "count": sums["count"],
        }
    )
    return _conform_latency(summed.sort_values(["bucket", "service", "scope", "bin"], kind="stable"))


def _conform_latency(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(LATENCY_COLUMNS)].reset_index(drop=True)
    out["bucket"] = pd.to_datetime(out["bucket"], utc=True).astype(TIMESTAMP)
    out["service"] = out["service"].astype(STRING)
    out["scope"] = out["scope"].astype(STRING)
    out["bin"] = out["bin"].astype("int64")
    out["count"] = out["count"].astype("int64")
    return out


def auth_outcomes(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(failure, success) masks of authentication-like events (logins, token and session requests)."""
    n = len(events)
    identified = _bool(events["client_ip"].notna()) | _bool(events["user"].notna())
    # Whole columns: matching each distinct value once is cheaper than taking a subset first.
    auth = identified & (regex_mask(events["url_path"], AUTH_PATH) | regex_mask(events["message"], AUTH_MESSAGE))
    failure = np.zeros(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(auth)
    if idx.size:
        sub = events[["level", "http_status", "message"]].iloc[idx]
        status = sub["http_status"]
        failed = (
            _bool(sub["level"].isin(_WARNING_OR_WORSE))
            | _bool(status.isin(_AUTH_FAILURE_STATUS))
            | regex_mask(sub["message"], FAILURE_MESSAGE)
        )
        succeeded = ~failed & (_bool(status < 400) | regex_mask(sub["message"], SUCCESS_MESSAGE))
        failure[idx] = failed
        success[idx] = succeeded
    return failure, success


def _actors(events: pd.DataFrame, bucket: str) -> pd.DataFrame:
    failure, success = auth_outcomes(events)
    keep = failure | success
    if not keep.any():
        return _empty_actors()
    sub = events[["timestamp", "user", "client_ip"]].loc[keep]
    times = sub["timestamp"].dt.floor(bucket).array
    user = sub["user"].fillna("").to_numpy(dtype=object)
    ip = sub["client_ip"].to_numpy(dtype=object, na_value=None)
    fails, oks = failure[keep].astype("int64"), success[keep].astype("int64")
    parts = []
    has_ip = ip != None  # noqa: E711 - elementwise comparison on an object array
    if has_ip.any():
        parts.append(
            pd.DataFrame(
                {
                    "bucket": times[has_ip],
                    "actor_kind": "client_ip",
                    "actor": ip[has_ip],
                    "account": user[has_ip],
                    "failures": fails[has_ip],
                    "successes": oks[has_ip],
                }
            )
        )
    has_user = user != ""
    if has_user.any():
        parts.append(
            pd.DataFrame(
                {
                    "bucket": times[has_user],
                    "actor_kind": "user",
                    "actor": user[has_user],
                    "account": user[has_user],
                    "failures": fails[has_user],
                    "successes": oks[has_user],
                }
            )
        )
    return bound_actors(pd.concat(parts, ignore_index=True))


def bound_actors(frame: pd.DataFrame) -> pd.DataFrame:
    """Sum per (bucket, actor, account) and keep the :data:`TOP_ACTORS_PER_BUCKET` most active actors."""
    if frame.empty:
        return _empty_actors()
    # Integer keys: grouping on codes is much faster than on strings.
    kind_codes, kinds = pd.factorize(frame["actor_kind"])
    actor_codes, actor_names = pd.factorize(frame["actor"])
    account_codes, account_names = pd.factorize(frame["account"])
    keyed = pd.DataFrame(
        {
            "b": pd.to_datetime(frame["bucket"], utc=True).to_numpy(dtype="datetime64[ns]").view("int64"),
            "k": kind_codes,
            "a": actor_codes,
            "c": account_codes,
            "failures": frame["failures"].to_numpy(dtype="int64"),
            "successes": frame["successes"].to_numpy(dtype="int64"),
        }
    )
    summed = keyed.groupby(["b", "k", "a", "c"], as_index=False, sort=True)[["failures", "successes"]].sum()
    actor_keys = ["b", "k", "a"]
    per_actor = summed.groupby(actor_keys, as_index=False, sort=False)[["failures", "successes"]].sum()
    if int(per_actor.groupby(["b", "k"]).size().max()) > TOP_ACTORS_PER_BUCKET:
        activity = per_actor["failures"] + per_actor["successes"]
        rank = activity.groupby([per_actor["b"], per_actor["k"]]).rank(method="first", ascending=False)
        top = per_actor.loc[rank <= TOP_ACTORS_PER_BUCKET, actor_keys]
        summed = summed.merge(top, on=actor_keys, how="inner")
    return pd.DataFrame(
        {
            "bucket": pd.to_datetime(summed["b"].to_numpy(dtype="int64"), utc=True),
            "actor_kind": pd.array(np.asarray(kinds, dtype=object)[summed["k"].to_numpy()], dtype=STRING),
            "actor": pd.array(np.asarray(actor_names, dtype=object)[summed["a"].to_numpy()], dtype=STRING),
            "account": pd.array(np.asarray(account_names, dtype=object)[summed["c"].to_numpy()], dtype=STRING),
            "failures": summed["failures"].to_numpy(dtype="int64"),
            "successes": summed["successes"].to_numpy(dtype="int64"),
        }
    )


def notable_mask(events: pd.DataFrame) -> np.ndarray:
    """Events the analysis always keeps: warnings and worse, 5xx, changes, alerts, data operations."""
    keep = (
        _bool(events["level"].isin(_WARNING_OR_WORSE))
        | _bool(events["http_status"] >= 500)
        | _bool(events["kind"].isin(["change", "alert"]))
    )
    identified = ~keep & (_bool(events["client_ip"].notna()) | _bool(events["user"].notna()))
    if identified.any():
        keep |= identified & (
            regex_mask(events["url_path"], DATA_OPERATION) | regex_mask(events["message"], DATA_OPERATION)
        )
    return np.asarray(keep, dtype=bool)


class Aggregator:
    """Accumulates :class:`Aggregates` from event chunks (see the module docstring).

    ``add`` takes one event-schema chunk; ``add_counts`` takes counts computed elsewhere (the
    Elasticsearch push-down), in which case that source's chunks are added with ``counted=True`` so
    that they are not counted twice.
    """

    def __init__(self, config: TimelineConfig) -> None:
        self.config = config
        self._counts: list[pd.DataFrame] = []
        self._count_rows = 0
        self._notable: list[pd.DataFrame] = []
        self._latency: list[pd.DataFrame] = []
        self._latency_rows = 0
        self._actors: list[pd.DataFrame] = []
        self._actor_rows = 0
        self._sample = empty_events().assign(template=pd.Series(dtype=STRING))
        self._edges = empty_events()
        self._start: pd.Timestamp | None = None
        self._end: pd.Timestamp | None = None

    def add(self, events: pd.DataFrame, counted: bool = False) -> None:
        """Add one chunk of events (event schema, already through ``classify_changes``).

        ``counted``: the chunk's events are already in counts given to :meth:`add_counts`.
        """
        if events.empty:
            return
        events = events.reset_index(drop=True)
        times = events["timestamp"]
        start, end = times.min(), times.max()
        self._start = start if self._start is None else min(self._start, start)
        self._end = end if self._end is None else max(self._end, end)

        if not counted:
            self._add_counts(count_signals(events, self.config.count_resolution))

        keep = notable_mask(events)
        if keep.any():
            self._notable.append(events.loc[keep, list(EVENT_COLUMNS)])
        self._add_sample(events, np.flatnonzero(~keep))
        self._add_edges(events)

        latency = _latency(events, self.config.count_resolution, edge_mask(events))
        if not latency.empty:
            self._latency.append(latency)
            self._latency_rows += len(latency)
            if self._latency_rows > _COMPACT_ROWS and len(self._latency) > 1:
                self._latency = [self._merged_latency()]
                self._latency_rows = len(self._latency[0])

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

    def _add_sample(self, events: pd.DataFrame, ordinary: np.ndarray) -> None:
        if ordinary.size == 0 or len(self._sample) >= SAMPLE_PER_TEMPLATE * MAX_SAMPLE_TEMPLATES:
            return
        step = max(1, ordinary.size // SAMPLE_SCAN)
        rows = ordinary[::step]
        # Templates of the scanned messages first; whole rows only for templates still short of samples.
        templates = message_templates(events["message"].iloc[rows]).fillna("").to_numpy(dtype=object)
        have = self._sample["template"].value_counts()
        rank = pd.Series(templates).groupby(templates).cumcount().to_numpy()
        wanted = rank + pd.Series(templates).map(have).fillna(0).to_numpy(dtype="int64") < SAMPLE_PER_TEMPLATE
        if not wanted.any():
            return
        scan = events.iloc[rows[wanted]].assign(template=templates[wanted])
        joined = pd.concat([self._sample, scan.loc[:, [*EVENT_COLUMNS, "template"]]], ignore_index=True)
        self._sample = joined.iloc[: SAMPLE_PER_TEMPLATE * MAX_SAMPLE_TEMPLATES].reset_index(drop=True)

    def _add_edges(self, events: pd.DataFrame) -> None:
        codes, _ = pd.factorize(events["service"].fillna(""))
        ns = pd.Series(events["timestamp"].array.asi8)
        rows = np.unique(np.concatenate([ns.groupby(codes).idxmin().to_numpy(), ns.groupby(codes).idxmax().to_numpy()]))
        joined = pd.concat([self._edges, events.iloc[rows]], ignore_index=True)
        service = joined["service"].fillna("")
        order = joined["timestamp"]
        first = order.groupby(service).idxmin()
        last = order.groupby(service).idxmax()
        rows = np.unique(np.concatenate([first.to_numpy(), last.to_numpy()]))
        self._edges = joined.loc[rows].reset_index(drop=True)

    def _merged_latency(self) -> pd.DataFrame:
        joined = pd.concat(self._latency, ignore_index=True)
        return _conform_latency(joined.groupby(["bucket", "service", "scope", "bin"], as_index=False)[["count"]].sum())

    def result(self) -> Aggregates:
        """The aggregates of every chunk added so far."""
        counts = sum_counts(self._counts)
        kept = [f for f in self._notable if not f.empty]
        extra = [f for f in (self._sample.loc[:, list(EVENT_COLUMNS)], self._edges) if not f.empty]
        if kept or extra:
            # The notable events are all kept (two identical lines are two events); the sample and
            # the first/last events only add what is not already there.
            notable = pd.concat(kept, ignore_index=True) if kept else empty_events()
            if extra:
                keys = ["timestamp", "source", "line", "kind", "message"]
                context = pd.concat(extra, ignore_index=True).drop_duplicates(keys)
                known = pd.MultiIndex.from_frame(notable[keys].astype(object).fillna(""))
                new = ~pd.MultiIndex.from_frame(context[keys].astype(object).fillna("")).isin(known)
                notable = pd.concat([notable, context.loc[new]], ignore_index=True)
            notable = notable.sort_values(["timestamp", "source", "line"], kind="stable").reset_index(drop=True)
        else:
            notable = empty_events()
        latency = self._merged_latency() if self._latency else _empty_latency()
        actors = bound_actors(pd.concat(self._actors, ignore_index=True)) if self._actors else _empty_actors()
        return Aggregates(counts, notable, latency, actors, self._start, self._end)


def aggregate(events: pd.DataFrame, config: TimelineConfig) -> Aggregates:
    """Aggregate one frame of events at once (a convenience for notebooks and tests)."""
    aggregator = Aggregator(config)
    aggregator.add(events)
    return aggregator.result()
