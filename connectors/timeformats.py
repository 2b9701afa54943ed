"""Vectorized parsing of timestamp text: ISO 8601, epoch numbers, strptime patterns, syslog time.

Every function takes a whole column (a pandas Series, any index) and returns a :class:`ParsedTimes`
aligned with it. Nothing here loops over rows in Python or calls dateutil per line: the work is done
by ``pd.to_datetime`` with an explicit ``format=`` and by pyarrow compute kernels.

Conventions (shared with the ParsedLines frames of :mod:`pmtimeline.connectors.log_formats`):

- ``utc`` is set where the text carried an explicit offset (``Z``, ``+0100``, ``+01:00``, ``UTC``) or is
  an epoch number; ``naive`` is set where it had no offset (a wall-clock time in a zone the caller
  decides). At most one of them is set per row.
- ``year_missing`` is True where the text had no year; ``naive`` then uses the placeholder year
  :data:`PLACEHOLDER_YEAR` (a leap year, so ``Feb 29`` parses) and the caller infers the real year.
- ``out_of_range`` is True where the text is a well-formed time that nanosecond timestamps cannot
  hold (before 1677 or after 2262-04-11, negative epochs); such rows get NaT instead of raising
  ``OutOfBoundsDatetime``. Rows that are neither parsed nor out of range are simply bad text.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.schema import STRING, TIMESTAMP

#: Year given to year-less timestamps (syslog) until the connector infers the real one. A leap year.
PLACEHOLDER_YEAR: Final = 2000
#: Naive nanosecond timestamps.
NAIVE: Final = np.dtype("datetime64[ns]")

#: Bounds of nanosecond timestamps (pandas' Timestamp.min/max), as naive values.
_MIN: Final = pd.Timestamp.min.as_unit("ns")
_MAX: Final = pd.Timestamp.max.as_unit("ns")

#: Trailing zone designators that are unambiguous. Abbreviations such as IST, CST or BST mean
#: different offsets in different countries and are deliberately not guessed.
_UTC_NAMES: Final = r"(?:Z|UTC|GMT|z)"
_OFFSET_RE: Final = rf"(?:{_UTC_NAMES}|[+-]\d{{2}}(?::?\d{{2}})?)$"


class ParsedTimes(NamedTuple):
    """Timestamps parsed from one column of text (all four Series share the input's index)."""

    utc: pd.Series  # datetime64[ns, UTC]: text with an explicit offset, or epoch numbers
    naive: pd.Series  # datetime64[ns]: wall-clock text without an offset
    year_missing: pd.Series  # bool: the text had no year; naive uses PLACEHOLDER_YEAR
    out_of_range: pd.Series  # bool: well-formed but outside the nanosecond range

    @property
    def parsed(self) -> pd.Series:
        """True where either ``utc`` or ``naive`` holds a time."""
        return self.utc.notna() | self.naive.notna()


def empty_times(index: pd.Index) -> ParsedTimes:
    """All-NaT times for ``index`` (the start of a combination with :func:`combine_times`)."""
    return ParsedTimes(
        pd.Series(pd.NaT, index=index, dtype=TIMESTAMP),
        pd.Series(pd.NaT, index=index, dtype=NAIVE),
        pd.Series(False, index=index, dtype=bool),
        pd.Series(False, index=index, dtype=bool),
    )


def combine_times(first: ParsedTimes, second: ParsedTimes) -> ParsedTimes:
    """Rows parsed by ``first`` keep its result; the other rows take ``second``'s (same index)."""
    take = ~first.parsed & (second.parsed | second.out_of_range)
    return ParsedTimes(
        first.utc.where(~take, second.utc),
        first.naive.where(~take, second.naive),
        first.year_missing.where(~take, second.year_missing),
        (first.out_of_range & ~second.parsed) | (take & second.out_of_range),
    )


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype(STRING) if str(values.dtype) != str(STRING) else values


def _bounded(parsed: pd.Series, *, utc: bool) -> tuple[pd.Series, pd.Series]:
    """Cast a parsed column to nanoseconds, turning times outside the ns range into NaT + a flag."""
    naive = parsed.dt.tz_convert(None) if utc else parsed
    out = naive.notna() & ((naive < _MIN) | (naive > _MAX))
    kept = parsed.where(~out)
    return kept.astype(TIMESTAMP if utc else NAIVE), out.astype(bool)


def _year_out_of_range(text: pd.Series, unparsed: pd.Series) -> pd.Series:
    """Rows whose leading four-digit year lies outside the nanosecond range (only among ``unparsed``)."""
    year = pd.to_numeric(text.str.extract(r"^\s*\[?(\d{4})-", expand=False), errors="coerce")
    return (unparsed & ((year < 1678) | (year > 2261))).fillna(False).astype(bool)


def parse_iso8601(text: pd.Series) -> ParsedTimes:
    """Parse ISO 8601 / RFC 3339 text, with ``T`` or a space, an optional fraction (``.`` or ``,``,
    up to 9 digits) and an optional offset (``Z``, ``+01``, ``+0100``, ``+01:00``, ``UTC``).

    Rows with an offset come out in ``utc`` (mixed offsets in one column are each honoured);
    rows without in ``naive``. Anything else (including zone abbreviations such as ``CST``) is NaT.
    """
    s = _as_text(text).str.strip()
    # ISO 8601 allows a comma as the decimal sign (log4j and Python logging write one).
    s = s.str.replace(r"^(\S+[ T]\d{2}:\d{2}:\d{2}),(\d)", r"\1.\2", regex=True)
    s = s.str.replace(rf"\s*{_UTC_NAMES}$", "Z", regex=True)
    has_offset = s.str.contains(_OFFSET_RE, regex=True).fillna(False).astype(bool)
    index = s.index
    result = empty_times(index)
    utc_rows = s[has_offset]
    naive_rows = s[~has_offset & s.notna()]
    utc = result.utc.copy()
    naive = result.naive.copy()
    out = result.out_of_range.copy()
    if len(utc_rows):
        parsed, oor = _bounded(pd.to_datetime(utc_rows, format="ISO8601", utc=True, errors="coerce"), utc=True)
        utc.loc[utc_rows.index] = parsed
        out.loc[utc_rows.index] = oor
    if len(naive_rows):
        parsed, oor = _bounded(pd.to_datetime(naive_rows, format="ISO8601", errors="coerce"), utc=False)
        naive.loc[naive_rows.index] = parsed
        out.loc[naive_rows.index] = oor
    unparsed = utc.isna() & naive.isna()
    out = out | _year_out_of_range(s, unparsed & ~out)
    return ParsedTimes(utc, naive, result.year_missing, out)


#: Nanoseconds per unit and the number of integer digits a plausible modern epoch has in that unit.
_EPOCH_UNITS: Final[tuple[tuple[str, int, int, int], ...]] = (
    # unit, ns per unit, fewest integer digits, most integer digits
    ("s", 1_000_000_000, 1, 11),
    ("ms", 1_000_000, 12, 14),
    ("us", 1_000, 15, 17),
    ("ns", 1, 18, 19),
)


def epoch_unit_by_magnitude(digits: pd.Series) -> pd.Series:
    """The epoch unit (``s``, ``ms``, ``us``, ``ns``) implied by the number of integer digits
    (10 -> s, 13 -> ms, 16 -> us, 19 -> ns; 11/12, 14/15, 17/18 go to the nearer unit). NA beyond 19."""
    unit = pd.Series(pd.NA, index=digits.index, dtype=STRING)
    for name, _, low, high in _EPOCH_UNITS:
        unit = unit.mask((digits >= low) & (digits <= high), name)
    return unit


def parse_epoch(values: pd.Series, unit: str | None = None) -> ParsedTimes:
    """Parse epoch numbers (numeric or text such as ``1709251200.5``) as UTC.

    The unit is ``unit`` (``s``/``ms``/``us``/``ns``) when given, otherwise chosen per row by the
    number of integer digits (see :func:`epoch_unit_by_magnitude`). Text fractions are kept to the
    nanosecond (integer arithmetic, no float rounding). Negative values, values beyond 2262 and
    numbers with more than 19 integer digits are flagged ``out_of_range``; non-numbers are NaT.
    """
    index = values.index
    result = empty_times(index)
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        numbers = values.astype("Float64") if pd.api.types.is_float_dtype(values.dtype) else values
        # Integers print exactly; floats print their shortest round-trip form (maybe with an exponent).
        text = numbers.astype(STRING)
        text = text.mask(text.str.contains("e", regex=False).fillna(False))
        sci = numbers.where(text.isna() & numbers.notna())
        if sci.notna().any():
            # Floats in exponent notation (1.7e+18): fall back to float arithmetic for those rows.
            fixed = sci.dropna().map(lambda x: f"{float(x):.0f}" if abs(float(x)) < 1e21 else "1" + "0" * 25)
            text = text.where(text.notna(), fixed.astype(STRING).reindex(index))
    else:
        text = _as_text(values).str.strip()
    parts = text.str.extract(r"^(?P<sign>-?)(?P<int>\d+)(?:\.(?P<frac>\d*))?$")
    ok = parts["int"].notna()
    digits = parts["int"].str.lstrip("0").str.len().fillna(0).astype("int64")
    digits = digits.where(digits > 0, 1)
    units = pd.Series(unit if unit else pd.NA, index=index, dtype=STRING) if unit else epoch_unit_by_magnitude(digits)
    negative = (parts["sign"] == "-").fillna(False).astype(bool)
    too_big = ok & (units.isna() | (digits > 19))
    out = (ok & (negative | too_big)).astype(bool)
    usable = ok & ~out
    nanos = pd.Series(pd.NA, index=index, dtype="Int64")
    for name, per_unit, _, _ in _EPOCH_UNITS:
        rows = usable & (units == name).fillna(False)
        if not rows.any():
            continue
        # Integer part * ns-per-unit must fit int64: compare in float first, then multiply exactly.
        ints = pd.to_numeric(parts.loc[rows, "int"], errors="coerce").astype("float64")
        fits = ints * per_unit < float(_MAX.value)
        out.loc[rows[rows].index[~fits.to_numpy()]] = True
        good = rows[rows].index[fits.to_numpy()]
        whole = parts.loc[good, "int"].astype("int64") * per_unit
        width = len(str(per_unit)) - 1
        if width:
            frac = parts.loc[good, "frac"].fillna("").str.slice(0, width).str.pad(width, side="right", fillchar="0")
            whole = whole + frac.astype("int64")
        nanos.loc[good] = whole.astype("Int64")
    # Exact values: rebuild from the integers (float64 would round nanoseconds).
    exact = nanos.dropna().astype("int64").to_numpy().view("datetime64[ns]")
    utc = pd.Series(pd.NaT, index=index, dtype=TIMESTAMP)
    if len(exact):
        utc.loc[nanos.dropna().index] = pd.DatetimeIndex(exact).tz_localize("UTC")
    return ParsedTimes(utc, result.naive, result.year_missing, out)


def is_epoch_text(text: pd.Series) -> pd.Series:
    """True where the text is an unsigned or negative decimal number (``1709251200``, ``1709251200.5``)."""
    return _as_text(text).str.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*").fillna(False).astype(bool)


def parse_timestamp_text(text: pd.Series) -> ParsedTimes:
    """ISO 8601 text or epoch numbers (by magnitude), mixed within one column (JSON, CSV, logfmt)."""
    s = _as_text(text)
    epoch = is_epoch_text(s)
    result = empty_times(s.index)
    if epoch.any():
        result = combine_times(result, _reindexed(parse_epoch(s[epoch]), s.index))
    if (~epoch).any():
        result = combine_times(result, _reindexed(parse_iso8601(s[~epoch]), s.index))
    return _fill_flags(result)


def _reindexed(times: ParsedTimes, index: pd.Index) -> ParsedTimes:
    return _fill_flags(ParsedTimes(*(column.reindex(index) for column in times)))


def _fill_flags(times: ParsedTimes) -> ParsedTimes:
    return ParsedTimes(
        times.utc.astype(TIMESTAMP),
        times.naive.astype(NAIVE),
        times.year_missing.fillna(False).astype(bool),
        times.out_of_range.fillna(False).astype(bool),
    )


def parse_with_format(text: pd.Series, strptime_format: str) -> ParsedTimes:
    """Parse text with one strptime pattern (``%z`` -> ``utc``, else ``naive``; whole text must match).

    A pattern without a year (no ``%Y``/``%y``/``%G``) gets :data:`PLACEHOLDER_YEAR` and
    ``year_missing`` set. ``%f`` takes up to 9 digits.
    """
    s = _as_text(text).str.strip()
    fmt = strptime_format
    year_missing = not any(code in fmt for code in ("%Y", "%y", "%G"))
    if year_missing:
        s = f"{PLACEHOLDER_YEAR} " + s
        fmt = "%Y " + fmt
    result = empty_times(s.index)
    if year_missing:
        result = result._replace(year_missing=pd.Series(True, index=s.index, dtype=bool))
    utc = "%z" in fmt or "%Z" in fmt
    try:
        parsed = pd.to_datetime(s, format=fmt, utc=utc, errors="coerce", exact=True)
    except ValueError:
        # An invalid pattern is a programmer/config mistake, reported by the caller's validation.
        raise
    ts, out = _bounded(parsed, utc=utc)
    if utc:
        return result._replace(utc=ts, out_of_range=out)
    return result._replace(naive=ts, out_of_range=out)


def parse_with_formats(text: pd.Series, strptime_formats: tuple[str, ...]) -> ParsedTimes:
    """Try several strptime patterns in order; each row keeps the first that parses it."""
    s = _as_text(text)
    result = empty_times(s.index)
    for fmt in strptime_formats:
        todo = ~result.parsed & s.notna()
        if not todo.any():
            break
        part = parse_with_format(s[todo], fmt)
        result = combine_times(result, _reindexed(part, s.index))
    return _fill_flags(result)


def parse_syslog_time(text: pd.Series) -> ParsedTimes:
    """Parse year-less syslog times ``Jun 14 15:16:01`` / ``Mar  1 00:00:00`` (optional fraction).

    ``naive`` gets the placeholder year :data:`PLACEHOLDER_YEAR` (so ``Feb 29`` parses) and
    ``year_missing`` is True; the caller infers the year.
    """
    s = _as_text(text).str.strip().str.replace(r"\s+", " ", regex=True)
    return parse_with_formats(s, ("%b %d %H:%M:%S", "%b %d %H:%M:%S.%f"))


def arrow_text(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The pyarrow string array behind a string[pyarrow] Series (cast when needed)."""
    s = _as_text(values)
    return pa.array(s, type=pa.large_string()) if not hasattr(s.array, "_pa_array") else s.array._pa_array


def match_text(values: pd.Series, pattern: str) -> pd.Series:
    """``pc.match_substring_regex`` as a bool Series (nulls -> False)."""
    mask = pc.match_substring_regex(arrow_text(values), pattern)
    return pd.Series(mask.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)
