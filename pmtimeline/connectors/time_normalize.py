"""Wall clock to UTC: time zones with DST, and the year of year-less timestamps.

Pure, vectorized functions over pandas Series, used by the log-file connector after a format has
parsed its lines. Nothing here looks at the current date: a year is only ever taken from a
reference the caller names (``--year``, the window, other sources, the file's modification time).

Daylight saving time, for a naive wall clock read in an IANA zone:

* **Fall-back hour** (a local hour that happens twice): resolved by the order of the lines. In file
  order, the lines of a repeated hour belong to the first pass (the earlier instant, DST) until the
  wall clock steps backwards by more than ``jitter`` (default 5 minutes) inside that hour; from
  there on they belong to the second pass (standard time). Smaller backward steps are taken as
  out-of-order lines within one pass, which real multi-threaded logs have. pandas'
  ``ambiguous="infer"`` needs a strictly monotonic run and raises otherwise, hence this rule.
* **Spring-forward gap** (a local time that never happened): read with the UTC offset in force
  just before the gap, as a clock that had not jumped yet would have written it; the result is
  shifted forward by the gap (``02:30`` in New York on 2024-03-10 becomes 07:30 UTC = 03:30 EDT)
  and the row is flagged ``nonexistent``. Order and spacing of the lines are kept.

Year-less timestamps (RFC 3164 syslog) arrive with the placeholder year 2000 (a leap year, so
``Feb 29`` parses). Their month sequence is unwrapped in file order: a month step backwards by
more than half a year (December to January) starts the next year, a step forwards by more than
half a year (a January line followed by a late December line) goes back one; smaller steps are
out-of-order lines. The year of the first line (the *anchor*) then comes from a reference:

* ``rule="first"``: the reference year is the year of the first line (``--year``);
* ``rule="nearest"``: the year that puts the file's time span nearest to the reference time (the
  ``--start/--end`` window, or full timestamps of other sources of the same run);
* ``rule="not_after"``: the latest year for which the file's last line is not after the
  reference (the file's modification time, with one day of slack for the unknown zone).

Whatever the rule, a ``Feb 29`` line must land in a leap year; the anchor moves to the nearest
year where all of them do (``Feb 29`` with reference year 2023 gives 2024).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from pmtimeline.config import check_zone
from pmtimeline.connectors.timeformats import PLACEHOLDER_YEAR  # the year parsers give year-less text

#: Backward steps of the wall clock up to this size inside a repeated fall-back hour are taken as
#: out-of-order lines, larger ones as the clock going back to standard time.
DEFAULT_JITTER: Final = pd.Timedelta(minutes=5)
#: Slack of the ``not_after`` rule: the file's wall clock may be ahead of UTC by up to 14 hours.
NOT_AFTER_SLACK: Final = pd.Timedelta(days=1)

YearRule = Literal["first", "nearest", "not_after"]

_NS_DTYPE: Final = "datetime64[ns]"
_UTC_DTYPE: Final = pd.DatetimeTZDtype("ns", "UTC")
# Longest gap between two instants of a zone's wall clock (spring-forward gaps are at most 2 h,
# but zones that changed their base offset once skipped up to a day; 3 h covers DST).
_GAP_LOOKBACK: Final = pd.Timedelta(hours=3)
_DAY_NS: Final = 86_400 * 10**9
# Whole years inside the range of nanosecond timestamps (1677-09-21 .. 2262-04-11).
_MIN_YEAR: Final = 1678
_MAX_YEAR: Final = 2261


# --------------------------------------------------------------------------------------- zones


@dataclass
class FallBackState:
    """What :func:`localize_flagged` remembers of repeated hours between chunks of one file.

    Keys are the local dates (as ns since the epoch) of fall-back transitions seen so far.
    """

    running_max: dict[int, int] = field(default_factory=dict)  # latest wall clock seen (ns)
    switched: set[int] = field(default_factory=set)  # the second pass (standard time) has begun


@dataclass(frozen=True)
class LocalizedTimes:
    """UTC instants of naive wall-clock times, with the rows DST made questionable."""

    utc: pd.Series  # datetime64[ns, UTC], NaT where the input was NaT
    ambiguous: pd.Series  # bool: in a repeated fall-back hour, resolved by line order
    nonexistent: pd.Series  # bool: in a spring-forward gap, shifted forward


def localize(ts_naive: pd.Series, zone: str) -> pd.Series:
    """Read naive wall-clock times in ``zone`` (IANA name or fixed offset) and return UTC instants.

    See the module docstring for how DST fall-back and spring-forward times are resolved.
    """
    return localize_flagged(ts_naive, zone).utc


def localize_flagged(
    ts_naive: pd.Series,
    zone: str,
    *,
    state: FallBackState | None = None,
    jitter: pd.Timedelta = DEFAULT_JITTER,
) -> LocalizedTimes:
    """Like :func:`localize`, and say which rows were ambiguous or nonexistent.

    ``ts_naive`` must be in file order. Pass the same ``state`` for consecutive chunks of one file
    so a repeated hour that spans two chunks is resolved as one; it is updated in place.
    """
    tz = check_zone(zone)
    wall = _as_naive_ns(ts_naive)
    index = wall.index
    no_flags = pd.Series(False, index=index, dtype=bool)
    if isinstance(tz, dt.timezone):  # UTC or a fixed offset: no DST
        utc = wall.dt.tz_localize(tz).dt.tz_convert("UTC").astype(_UTC_DTYPE)
        return LocalizedTimes(utc, no_flags, no_flags.copy())

    n = len(wall)
    early = wall.dt.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT").dt.tz_convert("UTC")
    late = wall.dt.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT").dt.tz_convert("UTC")
    # The first pass of a repeated hour is the earlier instant, whatever the zone calls DST
    # (Europe/Dublin's tzdata has a negative "DST" in winter).
    first = early.where(early <= late, late)
    second = early.where(early > late, late)
    ambiguous = (first != second) & first.notna()
    nonexistent = wall.notna() & first.isna()

    utc = first.copy()
    if bool(ambiguous.any()):
        use_second = _second_pass(wall[ambiguous], state if state is not None else FallBackState(), jitter)
        utc[ambiguous] = second[ambiguous].where(use_second, first[ambiguous])
    if bool(nonexistent.any()):
        gap_wall = wall[nonexistent]
        before_wall = gap_wall - _GAP_LOOKBACK
        before_utc = before_wall.dt.tz_localize(
            tz, ambiguous=np.ones(len(before_wall), dtype=bool), nonexistent="shift_forward"
        )
        offset_before = before_wall - before_utc.dt.tz_convert("UTC").dt.tz_localize(None)
        utc[nonexistent] = (gap_wall - offset_before).dt.tz_localize("UTC")
    return LocalizedTimes(utc.astype(_UTC_DTYPE), ambiguous.astype(bool), nonexistent.astype(bool))


def _second_pass(wall: pd.Series, state: FallBackState, jitter: pd.Timedelta) -> pd.Series:
    """For the rows of repeated hours (in file order): True from where the clock went back."""
    values = wall.to_numpy(dtype=_NS_DTYPE).view(np.int64)
    keys = pd.Series(values - values % _DAY_NS, index=wall.index)  # one fall-back per local date
    walls = pd.Series(values, index=wall.index)
    running = walls.groupby(keys).cummax()
    previous = running.groupby(keys).shift(1).astype("float64")
    carried = keys.map(state.running_max).astype("float64")
    previous = previous.fillna(carried)
    step_back = (previous - walls.astype("float64")) > float(jitter.value)
    switched = step_back.astype("int64").groupby(keys).cummax().astype(bool) | keys.isin(state.switched)
    group_max = running.groupby(keys).max()
    for key, latest in zip(group_max.index.to_numpy(dtype=np.int64), group_max.to_numpy(dtype=np.int64), strict=True):
        state.running_max[int(key)] = max(int(latest), state.running_max.get(int(key), int(latest)))
    state.switched.update(int(k) for k in keys[switched].unique())
    return switched


def _as_naive_ns(ts: pd.Series) -> pd.Series:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise TypeError("localize() takes naive wall-clock times; this Series is already tz-aware")
    return pd.to_datetime(ts).astype(_NS_DTYPE)


# --------------------------------------------------------------------------------------- years


@dataclass
class YearCarry:
    """The month sequence of a file so far, so chunks unwrap like one Series."""

    last_month: int | None = None
    offset: int = 0


def year_offsets(ts_placeholder: pd.Series, carry: YearCarry | None = None) -> pd.Series:
    """Years since the file's first line, from the month sequence in file order (Int64, NA at NaT).

    A month step backwards by more than six months starts the next year (December to January); a
    step forwards by more than six months goes back one (an out-of-order line across New Year).
    ``carry`` continues the sequence of earlier chunks and is updated in place.
    """
    carry = carry if carry is not None else YearCarry()
    valid = ts_placeholder.notna()
    months = ts_placeholder[valid].dt.month.to_numpy(dtype=np.int64)
    out = pd.Series(pd.NA, index=ts_placeholder.index, dtype="Int64")
    if len(months) == 0:
        return out
    previous = np.empty_like(months)
    previous[0] = carry.last_month if carry.last_month is not None else months[0]
    previous[1:] = months[:-1]
    step = months - previous
    wraps = np.where(step < -6, 1, np.where(step > 6, -1, 0))
    offsets = carry.offset + np.cumsum(wraps)
    out[valid] = offsets
    carry.last_month = int(months[-1])
    carry.offset = int(offsets[-1])
    return out


def apply_years(ts_placeholder: pd.Series, offsets: pd.Series, anchor: int) -> pd.Series:
    """Give each placeholder-year timestamp the year ``anchor + offset``.

    Rows whose ``Feb 29`` lands in a common year become NaT (the caller rejects them).
    """
    valid = ts_placeholder.notna() & offsets.notna()
    out = pd.Series(pd.NaT, index=ts_placeholder.index, dtype=_NS_DTYPE)
    if not bool(valid.any()):
        return out
    ts = _as_naive_ns(ts_placeholder[valid])
    years = anchor + offsets[valid].to_numpy(dtype=np.int64)
    months = ts.dt.month.to_numpy(dtype=np.int64)
    days = ts.dt.day.to_numpy(dtype=np.int64)
    time_of_day = (ts - ts.dt.normalize()).to_numpy()
    impossible = ((months == 2) & (days == 29) & ~_is_leap(years)) | (years < _MIN_YEAR) | (years > _MAX_YEAR)
    years = np.clip(years, _MIN_YEAR, _MAX_YEAR)  # keep the arithmetic in range; those rows become NaT
    month_starts = (years - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (months - 1)
    dates = month_starts.astype("datetime64[D]") + (days - 1)
    result = dates.astype(_NS_DTYPE) + time_of_day
    result[impossible] = np.datetime64("NaT")
    out[valid] = result
    return out


@dataclass
class YearScan:
    """What the year choice needs to know of a file: its first and last line, and its Feb 29 lines.

    Feed it the placeholder timestamps chunk by chunk with :meth:`observe`, then :meth:`choose`.
    """

    carry: YearCarry = field(default_factory=YearCarry)
    earliest: tuple[int, pd.Timestamp] | None = None  # (year offset, placeholder timestamp)
    latest: tuple[int, pd.Timestamp] | None = None
    feb29_offsets: set[int] = field(default_factory=set)
    rows: int = 0
    rollovers: int = 0

    def observe(self, ts_placeholder: pd.Series) -> pd.Series:
        """Add a chunk (in file order) and return its year offsets."""
        offsets = year_offsets(ts_placeholder, self.carry)
        valid = offsets.notna() & ts_placeholder.notna()
        if not bool(valid.any()):
            return offsets
        ts = _as_naive_ns(ts_placeholder[valid])
        k = offsets[valid].to_numpy(dtype=np.int64)
        # Sortable key: year offset first, then the time within the placeholder year (< 400 days).
        order_key = k * (400 * _DAY_NS) + (ts.to_numpy().view(np.int64) - _placeholder_origin_ns())
        low, high = int(np.argmin(order_key)), int(np.argmax(order_key))
        candidates = [c for c in (self.earliest, (int(k[low]), ts.iloc[low])) if c is not None]
        self.earliest = min(candidates)
        candidates = [c for c in (self.latest, (int(k[high]), ts.iloc[high])) if c is not None]
        self.latest = max(candidates)
        feb29 = (ts.dt.month == 2).to_numpy() & (ts.dt.day == 29).to_numpy()
        self.feb29_offsets.update(int(x) for x in np.unique(k[feb29]))
        self.rows += int(valid.sum())
        self.rollovers = self.carry.offset
        return offsets

    def choose(self, reference: pd.Timestamp, rule: YearRule, origin: str) -> tuple[int, str]:
        """The year of the file's first line, and a note saying where it came from."""
        ref = _naive(reference)
        if self.earliest is None or self.latest is None:
            return ref.year, f"year {ref.year} from {origin}"
        (low_k, low_ts), (high_k, high_ts) = self.earliest, self.latest
        # Candidate years of the first line; the whole file must stay inside the ns timestamp range.
        candidates = range(
            max(ref.year - high_k - 10, _MIN_YEAR - low_k), min(ref.year - low_k + 11, _MAX_YEAR - high_k + 1)
        )
        if not candidates:
            return ref.year, f"no year near {ref.year} from {origin} fits the file's span"
        leap_ok = [y for y in candidates if all(_is_leap_year(y + k) for k in self.feb29_offsets)]
        pool = leap_ok or list(candidates)

        def span(year: int) -> tuple[pd.Timestamp, pd.Timestamp]:
            return _with_year(low_ts, year + low_k), _with_year(high_ts, year + high_k)

        def distance(year: int) -> tuple[pd.Timedelta, int]:
            start, end = span(year)
            gap = start - ref if ref < start else ref - end if ref > end else pd.Timedelta(0)
            return gap, abs(year - ref.year)

        if rule == "first":
            anchor = min(pool, key=lambda y: (abs(y - ref.year), y))
        elif rule == "nearest":
            anchor = min(pool, key=distance)
        else:
            fits = [y for y in pool if span(y)[1] <= ref + NOT_AFTER_SLACK]
            anchor = max(fits) if fits else min(pool, key=distance)
        note = f"year {anchor} {'taken' if rule == 'first' else 'inferred'} from {origin}"
        if rule == "first" and anchor != ref.year:
            note += f" (moved from {ref.year} so that Feb 29 falls in a leap year)"
        if high_k > low_k:
            note += f"; the file runs into {anchor + high_k} (month sequence wraps past December)"
        return anchor, note


def infer_years(
    ts_naive_placeholder: pd.Series,
    reference: pd.Timestamp,
    rule: YearRule = "nearest",
    origin: str = "the reference time",
) -> tuple[pd.Series, str]:
    """Give year-less timestamps (placeholder year 2000, in file order) their year.

    Args:
        ts_naive_placeholder: naive timestamps carrying the placeholder year.
        reference: the reference time (naive wall clock, or tz-aware: its UTC wall clock is used).
        rule: how the reference picks the year of the first line (see the module docstring).
        origin: where the reference comes from, for the note ("--year", "the file's modification
            time", ...).

    Returns:
        The timestamps with their years (NaT where the input was NaT, or for a Feb 29 that cannot
        land in a leap year), and a one-line note for the source's accounting.
    """
    scan = YearScan()
    offsets = scan.observe(ts_naive_placeholder)
    anchor, note = scan.choose(reference, rule, origin)
    return apply_years(ts_naive_placeholder, offsets, anchor), note


def reference_from_year(year: int) -> pd.Timestamp:
    """The reference time for ``--year YYYY`` (use with ``rule="first"``)."""
    return pd.Timestamp(year=year, month=1, day=1)


def reference_from_window(start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.Timestamp | None:
    """The reference time of a ``--start/--end`` window (its middle, or its one bound)."""
    if start is not None and end is not None:
        return start + (end - start) / 2
    return start if start is not None else end


def reference_from_times(times: Iterable[pd.Timestamp]) -> pd.Timestamp | None:
    """The reference time of full timestamps seen elsewhere in a run: their median."""
    values = pd.Series([_naive(t) for t in times if not pd.isna(t)], dtype=_NS_DTYPE)
    if values.empty:
        return None
    return pd.Timestamp(values.median())


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _placeholder_origin_ns() -> int:
    return int(pd.Timestamp(year=PLACEHOLDER_YEAR, month=1, day=1).value)


def _is_leap(years: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return ((years % 4 == 0) & (years % 100 != 0)) | (years % 400 == 0)  # type: ignore[no-any-return]


def _is_leap_year(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _with_year(ts: pd.Timestamp, year: int) -> pd.Timestamp:
    if ts.month == 2 and ts.day == 29 and not _is_leap_year(year):
        return ts.replace(year=year, day=28)  # only used to measure spans; the row itself is NaT
    return ts.replace(year=year)
