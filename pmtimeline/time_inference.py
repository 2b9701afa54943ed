"""Where each source's times came from, and zone or clock-skew offsets found from the logs themselves.

Two questions about time that the logs can answer:

* **How was each time read?** :class:`TimeEvidence` counts, per source, the events whose text carried
  its own offset (``tz_assumed`` null) and those read in a zone (``tz_assumed`` set), by zone, and the
  events whose year was inferred. :func:`account_times` writes these counts, and where the zone came
  from (``--source-tz``, the format, or ``--tz``), into the sources' accounting.
* **Does a source sit away from the others?** The same events seen by two sources pin their clocks
  together. :func:`estimate_offsets` compares every source that has naive times (a *suspect*) with the
  times that carried their own offset in the *other* sources (the *references*: an offset in the data
  is a fact, not a guess), from three kinds of evidence, the first with enough of it winning:

  1. the same trace, request or correlation id in both (the edge's request and the app's line):
     per id, the suspect's first time minus the references' first time;
  2. the same user or client: per actor, the difference of the first times each saw it;
  3. the alignment of their per-second event curves (errors when both have enough): the lag of the
     peak of their cross-correlation, claimed only when that peak stands clear of every other lag
     (periodic lines, such as a once-a-minute metrics line, give several peaks and no claim).

  The estimate is the median difference, with its interquartile range and evidence count. A median a
  whole number of quarter hours from zero (within :data:`ZONE_TOLERANCE`) on a naive source is a zone
  (``looks like local time UTC+1``); a smaller one, at least :data:`SKEW_THRESHOLD`, is clock skew;
  two whole-hour offsets an hour apart are a daylight-saving change, which only a zone name can model.
  No reference or too little shared evidence: nothing is claimed.

Everything here is pure: evidence is gathered from event chunks (vectorized per chunk; a few bytes per
id-bearing event are kept), estimates are computed from it, and :func:`apply_estimates` returns a new
:class:`~pmtimeline.config.TimelineConfig`. ``--auto-time`` (``TimelineConfig.auto_time``) reads the
sources a second time with that config: the cost of the first pass again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl

from pmtimeline.config import TimelineConfig, match_source, source_names
from pmtimeline.polars_regex import polars_strings
from pmtimeline.schema import ERROR_LEVELS, STRING
from pmtimeline.sources import SourceAccounting
from pmtimeline.templates import arrow_text

#: A median this close to a whole number of quarter hours (and not zero) on a naive source is a zone.
ZONE_TOLERANCE: Final = pd.Timedelta(minutes=2)
#: A smaller median offset of at least this much is clock skew; below it, the clocks agree.
SKEW_THRESHOLD: Final = pd.Timedelta(seconds=5)
#: Evidence needed before anything is claimed: shared ids, shared actors.
MIN_SHARED_IDS: Final = 5
MIN_SHARED_ACTORS: Final = 10
#: Differences whose interquartile range is wider than this disagree too much to claim an offset.
MAX_SPREAD: Final = pd.Timedelta(minutes=10)
#: Cross-correlation: lags searched (the widest zone offsets), the longest span correlated, the
#: lowest normalized peak claimed, and how far a second peak must stay below the first.
MAX_LAG: Final = pd.Timedelta(hours=14)
MAX_CURVE_SPAN: Final = pd.Timedelta(days=3)
MIN_CORRELATION: Final = 0.5
PEAK_MARGIN: Final = 0.8

_QUARTER: Final = 900  # seconds
_COLUMNS: Final = ("timestamp", "source", "tz_assumed", "year_inferred", "trace_id", "request_id", "user")
_COLUMNS_MORE: Final = ("client_ip", "level", "http_status")


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 for null) and the distinct values as text; a chunk usually holds one source
    and one zone, which a comparison finds faster than a factorization."""
    first = values.iloc[0]
    # A null compares as NA, which all() skips: filled as False, a chunk holding the value and nulls
    # (a zone for the naive lines, none for those carrying an offset) is factorized, not all one code.
    if first is not pd.NA and bool((values == first).fillna(False).all()):
        return np.zeros(len(values), dtype=np.int64), np.array([str(first)], dtype=object)
    if first is pd.NA and bool(values.isna().all()):
        return np.full(len(values), -1, dtype=np.int64), np.array([], dtype=object)
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques.astype(str), dtype=object)


def _cell_counts(cells: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct non-negative cells in order, rows of each, sum of ``weights`` in each). A chunk's
    cells (source by zone, source by second) are few and close together: counted on all of them
    with ``np.bincount``, with no sort, unless they spread far wider than the chunk."""
    span = int(cells.max()) + 1
    if int(cells.min()) >= 0 and span <= 4 * len(cells) + 4096:
        rows = np.bincount(cells, minlength=span)
        cell = np.flatnonzero(rows)
        return cell, rows[cell], np.bincount(cells, weights=weights, minlength=span)[cell].astype(np.int64)
    cell, inverse, rows = np.unique(cells, return_inverse=True, return_counts=True)
    return cell, rows, np.bincount(inverse.reshape(-1), weights=weights, minlength=len(cell)).astype(np.int64)


def _named(names: np.ndarray, codes: np.ndarray) -> Any:
    """``names[codes]`` as a string array (taken by Arrow: pandas would check every Python string)."""
    return pd.array(list(names), dtype=STRING).take(codes)


def _first_times(group: np.ndarray, names: np.ndarray, keys: pl.Series, ns: np.ndarray, salt: int = 0) -> pd.DataFrame:
    """One row per (source, naive, key) of the rows with a key (``keys``, null for none): its first and
    last time (ns since the epoch). ``group`` codes (source, naive) as ``2 * source code + naive``;
    ``names`` the sources. Keys are kept as 64-bit hashes seeded with ``salt`` (so that kinds of keys
    never meet), hashed and grouped by polars: a sixth of the time of pandas' hashing of strings."""
    frame = pl.DataFrame({"group": group, "key": keys.hash(seed=salt), "has": keys.is_not_null(), "ns": ns})
    out = frame.filter(pl.col("has")).group_by("group", "key").agg(pl.col("ns").min(), pl.col("ns").max().alias("last"))
    codes = out["group"].to_numpy()
    return pd.DataFrame(
        {
            "source": _named(names, codes // 2),
            "naive": (codes % 2).astype(bool),
            "key": out["key"].to_numpy(),
            "ns": out["ns"].to_numpy(),
            "last": out["last"].to_numpy(),
        }
    )


def _correlation_keys(chunk: pd.DataFrame) -> pl.Series:
    """Each event's correlation id as :func:`pmtimeline.correlate.correlation_ids` gives it (its trace
    id, else its request id; empty is absent), as a polars series: hashed there, never built in pandas."""
    trace, request = (polars_strings(arrow_text(chunk[column])) for column in ("trace_id", "request_id"))
    return pl.select(pl.when(trace != "").then(trace).when(request != "").then(request)).to_series()


def _text_keys(values: pd.Series) -> pl.Series:
    return polars_strings(arrow_text(values))


@dataclass
class TimeEvidence:
    """Evidence about time gathered from event chunks (feed it every chunk with :meth:`add`)."""

    counts: list[pd.DataFrame] = field(default_factory=list)
    ids: list[pd.DataFrame] = field(default_factory=list)
    actors: list[pd.DataFrame] = field(default_factory=list)
    curves: list[pd.DataFrame] = field(default_factory=list)
    _merged: TimeEvidence | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, chunk: pd.DataFrame) -> None:
        """Take what is needed from one event chunk (schema columns); integer codes and numpy
        throughout, strings grouped and hashed by polars (about 0.3 µs an event)."""
        placed = chunk["timestamp"].notna()
        if not bool(placed.all()):
            # Only the columns used: filtering a whole chunk copies its texts.
            chunk = chunk.loc[placed, [*_COLUMNS, *_COLUMNS_MORE]]
        if chunk.empty:
            return
        self._merged = None
        source_codes, names = _codes(chunk["source"])
        zone_codes, zone_names = _codes(chunk["tz_assumed"])  # -1: the text carried its offset
        naive = zone_codes >= 0
        group = 2 * source_codes.astype(np.int64) + naive
        ns = chunk["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        year = chunk["year_inferred"].to_numpy(dtype=bool, na_value=False)
        zones = np.append(zone_names, "")
        cells = source_codes.astype(np.int64) * (len(zones)) + np.where(naive, zone_codes, len(zones) - 1)
        cell, events, years = _cell_counts(cells, year)
        self.counts.append(
            pd.DataFrame(
                {
                    "source": _named(names, cell // len(zones)),
                    "zone": zones[cell % len(zones)],
                    "events": events,
                    "year": years,
                }
            )
        )
        if bool(chunk["trace_id"].notna().any()) or bool(chunk["request_id"].notna().any()):
            self.ids.append(_first_times(group, names, _correlation_keys(chunk), ns))
        users, clients = chunk["user"], chunk["client_ip"]
        has_user = bool(users.notna().any())
        if has_user:
            self.actors.append(_first_times(group, names, _text_keys(users), ns, salt=1))
        if bool(clients.notna().any()):
            only_client = _text_keys(clients.where(users.isna()) if has_user else clients)
            self.actors.append(_first_times(group, names, only_client, ns, salt=2))
        errors = chunk["level"].isin(list(ERROR_LEVELS)).to_numpy(dtype=bool, na_value=False)
        errors = errors | (chunk["http_status"] >= 500).to_numpy(dtype=bool, na_value=False)
        second = ns // 1_000_000_000
        low = int(second.min())
        cells = group * (int(second.max()) - low + 1) + (second - low)
        cell, events, error_counts = _cell_counts(cells, errors)
        width = int(second.max()) - low + 1
        codes = cell // width
        self.curves.append(
            pd.DataFrame(
                {
                    "source": _named(names, codes // 2),
                    "naive": (codes % 2).astype(bool),
                    "second": cell % width + low,
                    "events": events,
                    "errors": error_counts,
                }
            )
        )

    def merged(self) -> TimeEvidence:
        """The evidence of all chunks folded into one frame of each kind (computed once until the
        next :meth:`add`: the accounting and the estimates both read it)."""
        if self._merged is not None:
            return self._merged

        def fold(parts: list[pd.DataFrame], keys: list[str], how: dict[str, str], ordered: bool) -> list[pd.DataFrame]:
            parts = [p for p in parts if not p.empty]
            if not parts:
                return []
            joined = pd.concat(parts, ignore_index=True)
            # Each chunk's part has one row per key already; only the counts' order is read (the
            # zones of a source are listed in it), and not sorting halves the time of the rest.
            return [joined.groupby(keys, as_index=False, sort=ordered).agg(how)]

        self._merged = TimeEvidence(
            counts=fold(self.counts, ["source", "zone"], {"events": "sum", "year": "sum"}, True),
            ids=fold(self.ids, ["source", "naive", "key"], {"ns": "min", "last": "max"}, False),
            actors=fold(self.actors, ["source", "naive", "key"], {"ns": "min", "last": "max"}, False),
            curves=fold(self.curves, ["source", "naive", "second"], {"events": "sum", "errors": "sum"}, False),
        )
        return self._merged


def _one(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    return parts[0] if parts else None


# -- item 2: where each time came from ----------------------------------------------------------


def account_times(
    accounting: Iterable[SourceAccounting],
    evidence: TimeEvidence,
    config: TimelineConfig,
    *,
    found: Sequence[tuple[str, str]] = (),
) -> list[SourceAccounting]:
    """The sources' accounting with ``times_with_offset``, ``times_in_zone`` (zone -> events read in
    it), ``zone_origin`` and ``year_origin`` filled in from the events (the same objects, changed).
    ``found``: the ``source_tz`` pairs that ``--auto-time`` added (their zone is "found", not given)."""
    counts = _one(evidence.merged().counts)
    out = []
    for acc in accounting:
        rows = counts[counts["source"] == acc.name] if counts is not None else None
        if rows is not None and len(rows):
            acc.times_with_offset = int(rows.loc[rows["zone"] == "", "events"].sum())
            acc.times_in_zone = {str(z): int(n) for z, n in zip(rows["zone"], rows["events"], strict=True) if z}
            acc.times_year_inferred = int(rows["year"].sum())
        if acc.times_in_zone or (acc.time_zone and not acc.times_with_offset):
            path = acc.path or acc.name
            if match_source(found, path, config.input_roots) is not None:
                acc.zone_origin = "--auto-time"
            elif match_source(config.source_tz, path, config.input_roots) is not None:
                acc.zone_origin = "--source-tz"
            else:
                acc.zone_origin = "--tz" if acc.time_zone == config.tz else "format"
        acc.year_origin = year_origin(acc, config) if acc.year_inferred or acc.times_year_inferred else None
        out.append(acc)
    return out


def year_origin(acc: SourceAccounting, config: TimelineConfig) -> str:
    """What a source's year-less times took their year from, from its accounting note."""
    note = next((n for n in acc.notes if n.startswith("year ")), "")
    year = note.split()[1] if len(note.split()) > 1 else "?"
    if "from --year" in note:
        return f"year {year} given (--year)"
    for marker, text in (
        ("--start/--end window", "the --start/--end window"),
        ("other sources", "other sources of this run"),
        ("modification time", "the file's modification time"),
    ):
        if marker in note:
            return f"year {year} inferred from {text}"
    return f"nothing: year {year} assumed"


# -- item 3: offsets of sources against each other ---------------------------------------------------


@dataclass(frozen=True)
class OffsetEstimate:
    """How far one source's times sit from the references', and what that looks like.

    ``offset_s`` is the median of (suspect time - reference time) over the evidence: positive when the
    suspect's times read later. ``kind`` is ``zone`` (a whole number of quarter hours: a naive source
    written in another zone), ``skew`` (a clock behind by less: its lines come before the requests
    began elsewhere), ``late`` (its lines come after the requests ended elsewhere: work that went on,
    or a clock ahead; the ids cannot tell which, so nothing is applied), ``dst`` (two whole-hour offsets an hour
    apart: local time across a daylight-saving change), ``far`` (more than 14 h: a wrong year or date,
    not a zone), ``agrees`` or ``unclear`` (evidence spread too wide). ``zone_offset_s`` is the zone
    the source's naive times look written in (for ``zone``).
    """

    source: str
    method: str  # "shared ids", "shared users or clients", "rate curves"
    evidence: int
    offset_s: float
    q1_s: float | None
    q3_s: float | None
    kind: str
    zone_offset_s: int | None = None
    skew_s: float | None = None
    glob: str = ""
    correlation: float | None = None
    applied: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``time_inference.estimates[]`` of ``incident.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OffsetEstimate:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def duration_text(seconds: float) -> str:
    """``+1 h 00 m 02 s``, ``-1 m 30 s``, ``+0.4 s``."""
    sign = "-" if seconds < 0 else "+"
    value = abs(seconds)
    if value < 60:
        return f"{sign}{value:.1f} s" if value < 10 else f"{sign}{round(value)} s"
    minutes, sec = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} m {sec:02d} s" if hours else f"{sign}{minutes} m {sec:02d} s"


def utc_offset_text(seconds: int) -> str:
    """``UTC+1``, ``UTC+5:30``, ``UTC-3:45``, ``UTC``."""
    if seconds == 0:
        return "UTC"
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def fixed_zone(seconds: int) -> str:
    """A fixed-offset zone as ``--source-tz`` takes it: ``+01:00``."""
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _glob_for(name: str, names: Sequence[str], roots: Sequence[str]) -> str:
    """The shortest name of a source that names it alone, glob characters escaped."""
    others = [source_names(n, roots) for n in names if n != name]
    for candidate in sorted(source_names(name, roots), key=len):
        escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in candidate)
        if not any(match_source([(escaped, "x")], o[0], roots) for o in others):
            return escaped
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _differences(table: pd.DataFrame | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Per shared key: the suspect's (naive) first time minus the other sources' first offset-carrying
    time, and the length (s) of the span the references saw the key over (first to last)."""
    empty = np.array([], dtype=float)
    if table is None or table.empty:
        return empty, empty
    mine = table[(table["source"] == source) & table["naive"].astype(bool)]
    refs = table[(table["source"] != source) & ~table["naive"].astype(bool)]
    if mine.empty or refs.empty:
        return empty, empty
    spans = refs.groupby("key").agg(ref=("ns", "min"), ref_last=("last", "max"))
    joined = mine.join(spans, on="key", how="inner")
    diffs = (joined["ns"] - joined["ref"]).to_numpy(dtype=np.int64) / 1e9
    lengths = (joined["ref_last"] - joined["ref"]).to_numpy(dtype=np.int64) / 1e9
    return np.asarray(diffs, dtype=float), np.asarray(lengths, dtype=float)


def _outside(diffs: np.ndarray, lengths: np.ndarray, zone: float) -> float:
    """Clock skew beyond ``zone``: the median distance of the suspect's times outside the span the
    references saw each request over. A line logged while the request was under way (a service that
    waited 25 s on a pool logs its timeout 25 s after the edge's first line) is no skew."""
    shifted = diffs - zone
    return float(np.median(shifted - np.clip(shifted, 0.0, lengths)))


def _curve_lag(curves: pd.DataFrame | None, source: str) -> tuple[float, float, int] | None:
    """(lag in seconds, peak correlation, events) of the suspect's per-second curve against the
    references', when one lag stands clear of every other; else None."""
    if curves is None or curves.empty:
        return None
    mine = curves[(curves["source"] == source) & curves["naive"]]
    refs = curves[(curves["source"] != source) & ~curves["naive"].astype(bool)]
    if mine.empty or refs.empty:
        return None
    column = "errors" if mine["errors"].sum() >= 20 and refs["errors"].sum() >= 20 else "events"
    a = mine.groupby("second")[column].sum()
    b = refs.groupby("second")[column].sum()
    lag_max = int(MAX_LAG.total_seconds())
    low = int(min(a.index.min(), b.index.min())) - lag_max
    high = int(max(a.index.max(), b.index.max())) + lag_max
    if high - low > MAX_CURVE_SPAN.total_seconds() + 2 * lag_max or a.sum() < 20:
        return None
    n = high - low + 1
    x = np.zeros(n)
    y = np.zeros(n)
    x[a.index.to_numpy(dtype=np.int64) - low] = a.to_numpy(dtype=float)
    y[b.index.to_numpy(dtype=np.int64) - low] = b.to_numpy(dtype=float)
    x -= x.mean()
    y -= y.mean()
    norm = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    if norm == 0:
        return None
    size = 1 << (2 * n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size) / norm
    lags = np.concatenate([np.arange(0, lag_max + 1), np.arange(-lag_max, 0)])
    values = np.concatenate([corr[: lag_max + 1], corr[size - lag_max :]])
    best = int(np.argmax(values))
    peak = float(values[best])
    # Another peak more than two minutes away that comes close: the curves do not pin one lag.
    far = np.abs(lags - lags[best]) > 120
    if peak < MIN_CORRELATION or (far.any() and float(values[far].max()) > PEAK_MARGIN * peak):
        return None
    return float(lags[best]), peak, int(a.sum())


def _classify(offsets: np.ndarray, lengths: np.ndarray) -> tuple[str, int | None, float | None]:
    """kind, zone offset (s) and remaining skew (s) of a set of differences (``lengths``: the spans
    the references saw each key over, see :func:`_outside`)."""
    median = float(np.median(offsets))
    rounded = np.round(offsets / _QUARTER) * _QUARTER
    near = np.abs(offsets - rounded) <= ZONE_TOLERANCE.total_seconds()
    whole, share = np.unique(rounded[near], return_counts=True)
    big = whole[(share >= 0.2 * len(offsets)) & (whole != 0)]
    if len(whole[share >= 0.2 * len(offsets)]) == 2 and near.mean() > 0.8:
        two = np.sort(whole[share >= 0.2 * len(offsets)])
        if two[1] - two[0] == 3600 and len(big):
            return "dst", None, None
    zone = round(median / _QUARTER) * _QUARTER
    if abs(median) > MAX_LAG.total_seconds():
        # Beyond any zone (UTC-12 to UTC+14): a wrong year or date, not a zone; nothing applied.
        return "far", None, None
    if zone != 0 and abs(median - zone) <= ZONE_TOLERANCE.total_seconds():
        rest = _outside(offsets, lengths, zone)
        return "zone", int(zone), (rest if abs(rest) >= SKEW_THRESHOLD.total_seconds() else None)
    skew = _outside(offsets, lengths, 0.0)
    if skew <= -SKEW_THRESHOLD.total_seconds():
        return "skew", None, skew
    if skew >= SKEW_THRESHOLD.total_seconds():
        return "late", None, skew
    return "agrees", None, None


def estimate_offsets(evidence: TimeEvidence, config: TimelineConfig | None = None) -> list[OffsetEstimate]:
    """One estimate per source with naive times and enough evidence shared with sources whose times
    carried their own offset (see the module docstring); sources without such evidence are left out:
    nothing is claimed about them."""
    cfg = config or TimelineConfig()
    merged = evidence.merged()
    counts = _one(merged.counts)
    if counts is None:
        return []
    names = sorted(counts["source"].unique())
    suspects = sorted(counts.loc[counts["zone"] != "", "source"].unique())
    zones = counts[counts["zone"] != ""].sort_values("events").groupby("source")["zone"].last()
    out: list[OffsetEstimate] = []
    for source in suspects:
        found: tuple[str, np.ndarray, np.ndarray] | None = None
        for method, table, least in (
            ("shared ids", _one(merged.ids), MIN_SHARED_IDS),
            ("shared users or clients", _one(merged.actors), MIN_SHARED_ACTORS),
        ):
            diffs, lengths = _differences(table, source)
            if len(diffs) >= least:
                found = (method, diffs, lengths)
                break
        glob = _glob_for(source, names, cfg.input_roots)
        if found is not None:
            method, diffs, lengths = found
            q1, median, q3 = (float(v) for v in np.percentile(diffs, [25, 50, 75]))
            kind, zone, skew = _classify(diffs, lengths)
            if kind not in ("dst",) and q3 - q1 > MAX_SPREAD.total_seconds():
                kind, zone, skew = "unclear", None, None
            estimate = OffsetEstimate(source, method, len(diffs), median, q1, q3, kind, zone, skew, glob)
        else:
            lag = _curve_lag(_one(merged.curves), source)
            if lag is None:
                continue
            seconds, peak, events = lag
            kind, zone, skew = _classify(np.array([seconds]), np.zeros(1))
            estimate = OffsetEstimate(source, "rate curves", events, seconds, None, None, kind, zone, skew, glob, peak)
        out.append(_with_zone(estimate, str(zones.get(source, cfg.tz)), _first_second(_one(merged.curves), source)))
    return out


def _zone_offset(zone: str, when: pd.Timestamp | None) -> int:
    """UTC offset (s) of ``zone`` at ``when`` (its standard offset when unknown)."""
    stamp = when if when is not None else pd.Timestamp("2000-01-01")
    try:
        local = stamp.tz_localize(None).tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
    except (TypeError, ValueError):
        return 0
    delta = local.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _first_second(curves: pd.DataFrame | None, source: str) -> pd.Timestamp | None:
    """The time of a source's first naive event (where the zone it was read in is taken)."""
    if curves is None:
        return None
    seconds = curves.loc[(curves["source"] == source) & curves["naive"].astype(bool), "second"]
    return pd.Timestamp(int(seconds.min()), unit="s") if len(seconds) else None


def _with_zone(estimate: OffsetEstimate, read_in: str, when: pd.Timestamp | None) -> OffsetEstimate:
    """Turn the offset into the zone the source looks written in, and the message saying so; the
    offset of the zone it was read in is taken at its first event (a change of it later is not modelled)."""
    source = estimate.source
    spread = (
        f", IQR {duration_text(estimate.q1_s)} to {duration_text(estimate.q3_s)}"
        if estimate.q1_s is not None and estimate.q3_s is not None
        else f", peak correlation {estimate.correlation:.2f}"
        if estimate.correlation is not None
        else ""
    )
    what = {"shared ids": "shared requests", "shared users or clients": "shared users or clients"}.get(
        estimate.method, "events in rate curves"
    )
    basis = f"({estimate.evidence:,} {what}, median offset {duration_text(estimate.offset_s)}{spread})"
    name = source
    if estimate.kind == "zone" and estimate.zone_offset_s is not None:
        zone = _zone_offset(read_in, when) + estimate.zone_offset_s
        fixed = fixed_zone(zone)
        text = (
            f"{name} looks like local time {utc_offset_text(zone)} {basis}: rerun with "
            f"--source-tz '{estimate.glob}={fixed}' (or the zone's name, which also models daylight saving) "
            "or --auto-time"
        )
        if estimate.skew_s is not None and estimate.skew_s < 0:
            text += f"; beyond the zone its clock is behind by {duration_text(-estimate.skew_s)[1:]}"
        elif estimate.skew_s is not None:
            text += (
                f"; beyond the zone its lines come a median {duration_text(estimate.skew_s)} after the requests' "
                "last lines elsewhere (work going on after the callers gave up, or a clock ahead: not applied)"
            )
        return dataclasses.replace(estimate, zone_offset_s=zone, message=text)
    if estimate.kind == "skew" and estimate.skew_s is not None:
        text = (
            f"{name}'s clock looks behind by {duration_text(-estimate.skew_s)[1:]} {basis}: its lines come before "
            f"the requests began in the sources that carry offsets; rerun with "
            f"--offset '{estimate.glob}={-estimate.skew_s:+.0f}s' or --auto-time"
        )
        return dataclasses.replace(estimate, message=text)
    if estimate.kind == "late" and estimate.skew_s is not None:
        text = (
            f"{name}'s lines come a median {duration_text(estimate.skew_s)} after the requests' last lines in "
            f"the sources that carry offsets {basis}: work going on after the callers gave up, or a clock ahead "
            f"by that much (the shared requests cannot tell; if it is the clock, --offset "
            f"'{estimate.glob}={-estimate.skew_s:+.0f}s'); not applied"
        )
        return dataclasses.replace(estimate, message=text)
    if estimate.kind == "dst":
        text = (
            f"{name} sits whole hours from the others, by two offsets an hour apart {basis}: it looks like local "
            f"time across a daylight-saving change; give its zone by name with --source-tz '{estimate.glob}=ZONE' "
            "(--auto-time applies no fixed offset here)"
        )
        return dataclasses.replace(estimate, message=text)
    if estimate.kind == "far":
        text = (
            f"{name} sits {duration_text(estimate.offset_s)} from the sources that carry offsets {basis}: more than "
            "any zone; a wrong year or date? (--year, or a window); not applied"
        )
        return dataclasses.replace(estimate, message=text)
    if estimate.kind == "unclear":
        text = f"{name}: the shared evidence disagrees {basis}; no offset claimed"
        return dataclasses.replace(estimate, message=text)
    return dataclasses.replace(estimate, message=f"{name} agrees with the sources that carry offsets {basis}")


def apply_estimates(
    config: TimelineConfig, estimates: Sequence[OffsetEstimate]
) -> tuple[TimelineConfig, list[OffsetEstimate]]:
    """``config`` with each zone found applied as a fixed-offset ``source_tz`` and each skew as a
    ``source_offsets`` correction (placed first, so they win over globs of the user), and the
    estimates with ``applied`` saying what was applied to which source."""
    zones: list[tuple[str, str]] = []
    shifts: list[tuple[str, str]] = []
    out = []
    for est in estimates:
        applied: list[str] = []
        if est.kind == "zone" and est.zone_offset_s is not None:
            zones.append((est.glob, fixed_zone(est.zone_offset_s)))
            applied.append(
                f"read in fixed offset {fixed_zone(est.zone_offset_s)} (daylight-saving changes not modelled)"
            )
        # Only a clock behind is certain: a line before the request began elsewhere cannot be work on it.
        if est.kind in ("zone", "skew") and est.skew_s is not None and est.skew_s < 0:
            seconds = -round(est.skew_s, 3)
            # The estimate was made on times already shifted by an --offset of the user: add to it.
            given = match_source(config.source_offsets, est.source, config.input_roots)
            total = pd.Timedelta(given or 0) + pd.Timedelta(seconds=seconds)
            shifts.append((est.glob, f"{total.total_seconds()}s"))
            applied.append(f"shifted by {duration_text(seconds)} (clock skew)")
        out.append(dataclasses.replace(est, applied="; ".join(applied) or None))
    if not zones and not shifts:
        return config, out
    new = dataclasses.replace(
        config,
        source_tz=tuple(zones) + tuple(config.source_tz),
        source_offsets=tuple(shifts) + tuple(config.source_offsets),
    )
    return new, out


def needs_rerun(estimates: Sequence[OffsetEstimate]) -> bool:
    """Whether :func:`apply_estimates` would change anything."""
    return any(e.kind in ("zone", "skew") for e in estimates)


def inference_dict(estimates: Sequence[OffsetEstimate], *, auto_time: bool) -> dict[str, Any]:
    """The ``time_inference`` object of ``incident.json``."""
    return {"auto_time": auto_time, "estimates": [e.to_dict() for e in estimates]}


__all__ = [
    "MIN_SHARED_IDS",
    "SKEW_THRESHOLD",
    "ZONE_TOLERANCE",
    "OffsetEstimate",
    "TimeEvidence",
    "account_times",
    "apply_estimates",
    "duration_text",
    "estimate_offsets",
    "fixed_zone",
    "inference_dict",
    "needs_rerun",
    "utc_offset_text",
    "year_origin",
]
