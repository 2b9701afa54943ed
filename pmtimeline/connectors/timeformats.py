"""Vectorized parsing of timestamp text: ISO 8601, epoch numbers, strptime patterns, syslog time.

Every function takes a whole column (a pandas Series, any index) and returns a :class:`ParsedTimes`
aligned with it. Nothing here loops over rows in Python or calls dateutil per line: the work is done
by the Rust core (regular expressions, and the common time layouts), ``pd.to_datetime`` with an
explicit ``format=`` (every other layout) and pyarrow compute kernels.

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

import re
from collections.abc import Callable
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline import _core
from pmtimeline.errors import ConfigError
from pmtimeline.polars_regex import polars_pattern
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


# Columnar text helpers. pandas falls back to Python's re, row by row, for str.extract and for
# str.replace with regex=True; these call the pyarrow (RE2) kernels directly.


def arrow_strings(values: pd.Series) -> pa.ChunkedArray:
    """The pyarrow large_string array behind a text Series (converted when needed)."""
    array = _as_text(values).array
    chunks: pa.ChunkedArray = array._pa_array
    if chunks.type != pa.large_string():
        chunks = pc.cast(chunks, pa.large_string())
    return chunks


def core_strings(values: pd.Series) -> pa.Array:
    """The text of a Series as one large_string array, as the Rust core takes it (no copy when the
    Series holds one chunk)."""
    strings = arrow_strings(values)
    return strings.chunk(0) if strings.num_chunks == 1 else strings.combine_chunks()


def string_series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A string[pyarrow] Series over a pyarrow string array (no copy), with ``index``."""
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    if array.type != pa.large_string():
        array = pc.cast(array, pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def extract_groups(values: pd.Series, pattern: str) -> pd.DataFrame:
    """Named groups of a regular expression (RE2 syntax) matched at each value.

    Returns one string column per group (NA where the value does not match, and where an optional
    group did not take part or matched nothing) plus a bool column ``matched``. An unnamed group's
    column is named by its number, counted from 2.

    The match runs in the Rust core (the ``regex`` crate, linear in the text, on every core), with
    ``\\d``, ``\\w``, ``\\s`` and ``\\b`` meaning what they mean in RE2 (ASCII; see
    :func:`pmtimeline.polars_regex.polars_pattern`). A pattern the engine refuses raises ConfigError.
    """
    index = values.index
    array = core_strings(values)
    try:
        batch = pa.record_batch(_core.extract_groups(array, polars_pattern(pattern)))
    except ValueError as exc:
        raise ConfigError(f"regular expression {pattern!r} is refused: {exc}") from exc
    columns: dict[str, pd.Series] = {
        name: string_series(batch.column(name), index) for name in batch.schema.names if name != _MATCHED
    }
    matched = batch.column(_MATCHED).to_numpy(zero_copy_only=False)
    columns["matched"] = pd.Series(matched, index=index, dtype=bool)
    return pd.DataFrame(columns, index=index)


def search_text(values: pd.Series, pattern: str) -> np.ndarray:
    """Boolean mask: where ``pattern`` (RE2 syntax, as in :func:`extract_groups`) is found in each
    value (nulls are False), in the Rust core."""
    array = core_strings(values)
    try:
        batch = pa.record_batch(_core.regex_search(array, polars_pattern(pattern)))
    except ValueError as exc:
        raise ConfigError(f"regular expression {pattern!r} is refused: {exc}") from exc
    return np.asarray(batch.column(_MATCHED).to_numpy(zero_copy_only=False), dtype=bool)


#: The core's column telling which rows matched.
_MATCHED: Final = "pmtimeline_matched"


def replace_regex(values: pd.Series, pattern: str, replacement: str) -> pd.Series:
    """``pc.replace_substring_regex`` (RE2; ``\\1`` refers to a group) as a string Series."""
    return string_series(pc.replace_substring_regex(arrow_strings(values), pattern, replacement), values.index)


def to_int(values: pd.Series) -> pd.Series:
    """Digit strings to Int64 (NA where not a number), via pyarrow's cast (fast) when all parse."""
    text = _as_text(values)
    try:
        ints = pc.cast(arrow_strings(text), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(text, errors="coerce").astype("Int64")
    as_float = pc.cast(ints, pa.float64()).fill_null(np.nan)
    return pd.Series(as_float.to_numpy(), index=text.index).astype("Int64")


def _bounded(parsed: pd.Series, *, utc: bool) -> tuple[pd.Series, pd.Series]:
    """Cast a parsed column to nanoseconds, turning times outside the ns range into NaT + a flag."""
    naive = parsed.dt.tz_convert(None) if utc else parsed
    out = naive.notna() & ((naive < _MIN) | (naive > _MAX))
    kept = parsed.where(~out)
    return kept.astype(TIMESTAMP if utc else NAIVE), out.astype(bool)


def _year_out_of_range(text: pd.Series, unparsed: pd.Series) -> pd.Series:
    """Rows whose leading four-digit year lies outside the nanosecond range (only among ``unparsed``)."""
    out = pd.Series(False, index=text.index)
    if bool(unparsed.any()):
        year = to_int(extract_groups(text[unparsed], r"^\s*\[?(?P<year>\d{4})-")["year"])
        out.loc[year.index] = ((year < 1678) | (year > 2261)).fillna(False).astype(bool)
    return out


# The common layouts are read by the Rust core (core/src/times.rs, chrono's calendar): only rows of the
# exact shape it knows, with a year that nanoseconds can hold (1700-2259) and seconds below 60; a row of
# any other shape takes the general path here, which flags such years and refuses such seconds. A row
# of the shape that names no real date or time (``Feb 30``, ``25:00``, an offset of a day) is NaT.


def _core_times(text: pd.Series, layout: str) -> tuple[ParsedTimes, pd.Series]:
    """(times, fits): the rows of ``text`` of the core's ``layout`` (``iso``, ``access``, ``syslog``,
    ``ctime``, ``compact``) parsed (other rows are NaT), and which rows have the layout's shape."""
    array = core_strings(text)
    batch = pa.record_batch(_core.parse_layout(array, layout))
    index = text.index
    fits = pd.Series(batch.column("fits").to_numpy(zero_copy_only=False), index=index, dtype=bool)
    utc = _nanos_series(batch.column("utc"), index).dt.tz_localize("UTC").astype(TIMESTAMP)
    naive = _nanos_series(batch.column("naive"), index)
    false = pd.Series(False, index=index, dtype=bool)
    return ParsedTimes(utc, naive, false, false.copy()), fits


def _nanos_series(nanos: pa.Array, index: pd.Index) -> pd.Series:
    """Nullable int64 nanoseconds as naive datetime64[ns] (null -> NaT)."""
    values = nanos.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False)
    return pd.Series(values, index=index, dtype=NAIVE)


def parse_iso8601(text: pd.Series) -> ParsedTimes:
    """Parse ISO 8601 / RFC 3339 text, with ``T`` or a space, an optional fraction (``.`` or ``,``,
    up to 9 digits) and an optional offset (``Z``, ``+01``, ``+0100``, ``+01:00``, ``UTC``).

    Rows with an offset come out in ``utc`` (mixed offsets in one column are each honoured);
    rows without in ``naive``. Anything else (including zone abbreviations such as ``CST``) is NaT.
    """
    s = _as_text(text)
    fast, fits = _core_times(s, "iso")
    if bool(fits.all()):
        return fast
    if not bool(fits.any()):
        return _parse_iso8601_general(s)
    return combine_times(fast, _reindexed(_parse_iso8601_general(s[~fits]), s.index))


def _parse_iso8601_general(text: pd.Series) -> ParsedTimes:
    """:func:`parse_iso8601` for any text (pandas' ISO parser, with the zone names and range checks)."""
    s = _as_text(text).str.strip()
    # ISO 8601 allows a comma as the decimal sign (log4j and Python logging write one); in a time
    # stamp that is the only place a comma can be.
    s = s.str.replace(",", ".", regex=False)
    if bool(match_text(s, rf"\s*{_UTC_NAMES}$").any()):
        s = replace_regex(s, rf"\s*{_UTC_NAMES}$", "Z")
    # A fraction sign with no digits after it (``00:00:00.``, ``00:00:00.+1``) is no ISO 8601 time:
    # pandas read what followed as an offset and raised on the naive rows beside it, losing the chunk.
    empty_fraction = match_text(s, r"\d:\d{2}\.(?:\D|$)")
    if bool(empty_fraction.any()):
        s = s.mask(empty_fraction)
    has_offset = match_text(s, _OFFSET_RE)
    # A zone that is neither an offset we read nor absent (``+1``, ``+123``, ``CST``) is refused
    # here: pandas would read some of them as offsets and then refuse the naive rows beside them.
    # A fraction sign with no digits (``00:00:00.+1``) counts too: pandas read that ``+1`` as an offset
    # and then raised on the naive rows beside it (the whole chunk was lost to one line).
    odd_zone = ~has_offset & match_text(
        s, r"\d:\d{2}(?:(?:\.\d+)?\s*(?:[+-]\d+(?::\d*)?|[A-Za-z]+)|\.\s*[+-]\d+(?::\d*)?)$"
    )
    if bool(odd_zone.any()):
        s = s.mask(odd_zone)
    index = s.index
    result = empty_times(index)
    if bool(has_offset.all()):
        utc, out = _bounded(pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce"), utc=True)
        naive = result.naive
    elif not bool(has_offset.any()):
        naive, out = _bounded(pd.to_datetime(s, format="ISO8601", errors="coerce"), utc=False)
        utc = result.utc
    else:
        utc = result.utc.copy()
        naive = result.naive.copy()
        out = result.out_of_range.copy()
        utc_rows = s[has_offset]
        naive_rows = s[~has_offset & s.notna()]
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
    parts = extract_groups(text, r"^(?P<sign>-?)(?P<int>\d+)(?:\.(?P<frac>\d*))?$")
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
    return match_text(text, r"^\s*-?\d+(?:\.\d+)?\s*$")


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
    ``year_missing`` set. ``%f`` takes up to 9 digits. Invalid dates (``Feb 30``) are NaT.
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
    fast = _arrow_strptime(s, fmt)
    if fast is not None:
        ts, out = fast
    else:
        parsed = pd.to_datetime(s, format=fmt, utc=utc, errors="coerce", exact=True)
        ts, out = _bounded(parsed, utc=utc)
    if utc:
        return result._replace(utc=ts.astype(TIMESTAMP), out_of_range=out)
    return result._replace(naive=ts.astype(NAIVE), out_of_range=out)


#: strptime codes the pyarrow fast path handles (``%z`` only at the end, ``%f`` only after ``%S``).
_ARROW_CODES: Final = frozenset("YymdbaHMSzf")
_NS_PER_S: Final = 1_000_000_000
_MAX_SECONDS: Final = _MAX.value // _NS_PER_S
_MIN_SECONDS: Final = _MIN.value // _NS_PER_S + 1


def _arrow_strptime(text: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series] | None:
    """Parse with ``pyarrow.compute.strptime`` (C++, far faster than pandas for non-ISO patterns).

    Returns (datetime64[ns] or datetime64[ns, UTC] values, out_of_range) or None when the pattern
    is outside what this path handles. pyarrow has no ``%f`` and rolls invalid dates over
    (``Feb 30`` -> ``Mar 1``), so the fraction and the offset are cut off and applied here, and
    every value is checked by formatting it back; rows that do not round-trip (unpadded numbers,
    invalid dates) go to pandas' strict parser.
    """
    codes = re.findall(r"%(.)", fmt)
    if not set(codes) <= _ARROW_CODES or ("z" in codes and not fmt.endswith("%z")) or "%%" in fmt:
        return None
    core_fmt = fmt
    core = text
    index = text.index
    offset_s = pd.Series(0, index=index, dtype="int64")
    if "z" in codes:
        core_fmt = fmt[:-2].rstrip()
        parts = extract_groups(text, r"^(?P<core>.*?) ?(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$")
        core = parts["core"]
        minutes = to_int(parts["hh"]) * 60 + to_int(parts["mm"])
        offset_s = (minutes * 60 * parts["sign"].map({"+": 1, "-": -1})).fillna(0).astype("int64")
    frac_ns = pd.Series(0, index=index, dtype="int64")
    if "f" in codes:
        found = re.search(r"%S([.,])%f", core_fmt)
        if found is None:
            return None
        core_fmt = core_fmt.replace(found.group(0), "%S")
        parts = extract_groups(core, r"^(?P<a>.*:\d{2})[.,](?P<frac>\d{1,9})(?P<b>\D.*)?$")
        core = parts["a"] + parts["b"].fillna("")
        frac_ns = to_int(parts["frac"].str.pad(9, side="right", fillchar="0")).fillna(0).astype("int64")
    array = arrow_strings(core)
    try:
        seconds = pc.strptime(array, format=core_fmt, unit="s", error_is_null=True)
        back = pc.strftime(seconds, format=core_fmt)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    as_float = pc.cast(seconds.cast(pa.int64()), pa.float64()).fill_null(np.nan)
    values = pd.Series(as_float.to_numpy(), index=index).astype("Int64")
    back_text = pd.Series(pd.arrays.ArrowStringArray(pc.cast(back, pa.large_string())), index=index)
    round_trip = back_text == core
    retry = (core.notna() & ~round_trip.fillna(False)).astype(bool)
    if bool(retry.any()):
        # Unpadded fields ("1/Mar"), extra spaces or invalid dates: pandas checks these strictly.
        strict = pd.to_datetime(core[retry], format=core_fmt, errors="coerce", exact=True)
        strict_s = (strict.astype("datetime64[s]").astype("int64")).where(strict.notna())
        values = values.mask(retry, strict_s.reindex(index).astype("Int64"))
    out = values.notna() & ((values > _MAX_SECONDS) | (values < _MIN_SECONDS))
    values = values.mask(out)
    nanos = values * _NS_PER_S + frac_ns - offset_s * _NS_PER_S
    ok = nanos.notna()
    raw = nanos.fillna(0).astype("int64").to_numpy().view("datetime64[ns]")
    naive = pd.Series(raw, index=index).where(ok.to_numpy())
    if "z" in codes:
        return naive.dt.tz_localize("UTC"), out.astype(bool)
    return naive, out.astype(bool)


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


# Fast paths for the common non-ISO layouts: the fields are cut out by position (cheap pyarrow
# slices), reassembled as ISO 8601 and parsed by pandas' ISO parser, which is several times faster
# than strptime with %b or %z (pandas' and pyarrow's alike) and still refuses invalid dates.
# Rows whose text does not have the exact expected shape go to the general strptime path.

_MONTHS: Final = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
_MONTH_NUMBERS: Final = pa.array([f"{m:02d}" for m in range(1, 13)], pa.large_string())


def _month_numbers(names: pd.Series) -> pd.Series:
    """``Jan``..``Dec`` -> ``01``..``12`` (NA for anything else)."""
    positions = pc.index_in(arrow_strings(names), value_set=_MONTHS)
    return string_series(pc.take(_MONTH_NUMBERS, positions), names.index)


def _iso_fast_path(
    text: pd.Series,
    shape: str,
    build: Callable[[pd.Series], pd.Series],
    fallback_formats: tuple[str, ...],
    *,
    year_missing: bool = False,
    layout: str | None = None,
    normalize_rest: Callable[[pd.Series], pd.Series] | None = None,
) -> ParsedTimes:
    """Parse rows matching the RE2 ``shape`` via ``build`` (text -> ISO 8601 text); others by strptime.

    With ``layout``, rows of that shape are read by the Rust core first (the fastest path);
    ``normalize_rest`` rewrites the text of the rows left for the other paths."""
    s = _as_text(text)
    index = s.index
    result = empty_times(index)
    if layout is not None:
        fast, quick = _core_times(s, layout)
        if bool(quick.any()):
            result = fast
            if year_missing:
                result = result._replace(year_missing=quick & result.parsed)
            if bool(quick.all()):
                return result
            s = s[~quick]
    if normalize_rest is not None:
        s = normalize_rest(s)
    fits = match_text(s, shape)
    if bool(fits.any()):
        iso = parse_iso8601(build(s[fits]))
        if year_missing:
            iso = iso._replace(year_missing=pd.Series(True, index=iso.year_missing.index))
        result = combine_times(result, _reindexed(iso, index))
    rest = ~fits & s.notna()
    if bool(rest.any()):
        result = combine_times(result, _reindexed(parse_with_formats(s[rest], fallback_formats), index))
    return _fill_flags(result)


def parse_access_time(text: pd.Series) -> ParsedTimes:
    """Access-log times ``10/Oct/2000:13:55:36 -0700`` (offset optional) -> ``utc`` (or ``naive``)."""

    def build(s: pd.Series) -> pd.Series:
        offset = s.str.slice(20).str.strip()
        return (
            s.str.slice(7, 11) + "-" + _month_numbers(s.str.slice(3, 6)) + "-" + s.str.slice(0, 2)
            + "T" + s.str.slice(12, 20) + offset
        )  # fmt: skip

    return _iso_fast_path(
        text,
        r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?$",
        build,
        ("%d/%b/%Y:%H:%M:%S %z", "%d/%b/%Y:%H:%M:%S"),
        layout="access",
    )


def _pad_day(s: pd.Series) -> pd.Series:
    """``Mar  1`` / ``Mar 1`` -> ``Mar 01`` (and any run of spaces -> one space)."""
    s = replace_regex(s.str.strip(), r"\s+", " ")
    return replace_regex(s, r"^((?:[A-Z][a-z]{2} )?[A-Z][a-z]{2}) (\d) ", r"\1 0\2 ")


def parse_syslog_time(text: pd.Series) -> ParsedTimes:
    """Parse year-less syslog times ``Jun 14 15:16:01`` / ``Mar  1 00:00:00`` (optional fraction).

    ``naive`` gets the placeholder year :data:`PLACEHOLDER_YEAR` (so ``Feb 29`` parses) and
    ``year_missing`` is True; the caller infers the year.
    """

    def build(s: pd.Series) -> pd.Series:
        return (
            f"{PLACEHOLDER_YEAR}-" + _month_numbers(s.str.slice(0, 3)) + "-" + s.str.slice(4, 6) + "T" + s.str.slice(7)
        )

    # The common shapes (``Mar  1`` and ``Mar 01``) go to the core as they are; only the rest is
    # normalized by _pad_day (two regex passes) for the general path.
    return _iso_fast_path(
        text,
        r"^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$",
        build,
        ("%b %d %H:%M:%S", "%b %d %H:%M:%S.%f"),
        year_missing=True,
        layout="syslog",
        normalize_rest=_pad_day,
    )


def parse_ctime(text: pd.Series) -> ParsedTimes:
    """``[Www ]Mmm dd HH:MM:SS[.ffffff] YYYY`` (C ``ctime``, Apache error logs) -> ``naive``."""

    def build(s: pd.Series) -> pd.Series:
        s = replace_regex(s, r"^[A-Z][a-z]{2} ([A-Z][a-z]{2} )", r"\1")
        return (
            s.str.slice(-4) + "-" + _month_numbers(s.str.slice(0, 3)) + "-" + s.str.slice(4, 6)
            + "T" + s.str.slice(7, -5)
        )  # fmt: skip

    return _iso_fast_path(
        _pad_day(_as_text(text)),
        r"^(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})? \d{4}$",
        build,
        ("%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S.%f %Y", "%b %d %H:%M:%S %Y", "%b %d %H:%M:%S.%f %Y"),
        layout="ctime",
    )


def parse_compact_date_time(text: pd.Series) -> ParsedTimes:
    """``yymmdd HHMMSS`` (HDFS) -> ``naive``; two-digit years 69-99 are 19xx, 00-68 are 20xx (as strptime)."""

    def build(s: pd.Series) -> pd.Series:
        century = pd.Series("20", index=s.index, dtype=STRING).mask(s.str.slice(0, 2) >= "69", "19")
        return (
            century + s.str.slice(0, 2) + "-" + s.str.slice(2, 4) + "-" + s.str.slice(4, 6)
            + "T" + s.str.slice(7, 9) + ":" + s.str.slice(9, 11) + ":" + s.str.slice(11, 13)
        )  # fmt: skip

    return _iso_fast_path(text, r"^\d{6} \d{6}$", build, ("%y%m%d %H%M%S",), layout="compact")


def match_text(values: pd.Series, pattern: str) -> pd.Series:
    """Where ``pattern`` (RE2 syntax) is found in each value, in the Rust core; nulls -> False."""
    return pd.Series(search_text(values, pattern), index=values.index, dtype=bool)
