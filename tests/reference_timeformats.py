"""The pre-Rust implementation of ``pmtimeline.connectors.timeformats``, kept as the differential oracle.

This is ``timeformats.py`` (with ``polars_regex.polars_pattern``) frozen at commit 1051d5e, before the
regex extraction and the common time layouts moved into the Rust core (``core/src/extract.rs``,
``core/src/times.rs``). It runs the patterns in polars (with RE2 through pyarrow as the fallback) and
the common time layouts with polars' strptime. ``tests/connectors/test_extract_parity.py`` compares the
package's functions with these on real logs, the bench corpus and generated text. Do not edit it to
follow the package: it is the record of what the package did.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.schema import STRING, TIMESTAMP

#: Raised by polars for a pattern its engine refuses (look-around, backreferences, syntax errors).
POLARS_PATTERN_ERRORS: Final = (pl.exceptions.ComputeError,)

_ASCII_CLASSES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
#: Word boundaries, ASCII as in RE2 (``(?-u:...)`` is allowed for assertions in a Unicode pattern).
_ASCII_ASSERTIONS: Final = {"b": "(?-u:\\b)", "B": "(?-u:\\B)"}


@functools.lru_cache(maxsize=4096)  # a pure function of a few hundred distinct patterns, called per chunk
def polars_pattern(pattern: str) -> str:
    """``pattern`` (RE2) with ``\\d``, ``\\w``, ``\\s`` (and negations) spelled as ASCII classes and
    ``\\b``/``\\B`` as ASCII word boundaries, for polars' ``str`` regex methods."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            code = pattern[i + 1]
            spelled = _ASCII_CLASSES.get(code.lower())
            if not in_class and code in _ASCII_ASSERTIONS:
                out.append(_ASCII_ASSERTIONS[code])
            elif spelled is None:
                out.append(pattern[i : i + 2])
            elif in_class:
                # A negated class inside brackets cannot be spelled out; it keeps polars' meaning.
                out.append(spelled if code.islower() else pattern[i : i + 2])
            else:
                out.append(f"[{spelled}]" if code.islower() else f"[^{spelled}]")
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            i += 1
            # A ']' right after '[' or '[^' is a literal member of the class.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


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
    group did not take part or matched nothing) plus a bool column ``matched``.

    The match runs in polars (Rust's ``regex`` crate) when it accepts the pattern, else in pyarrow's
    RE2 (``pc.extract_regex``). Both are linear-time engines, but RE2's submatch extraction was the
    largest single cost of parsing, and polars takes 2-3x less CPU for our access-log and log4j
    patterns (bench/parse_engines.py; bench/README.md, "Parsing engine").
    """
    index = values.index
    strings = arrow_strings(values)
    try:
        fields, matched = _polars_groups(strings, pattern)
    except POLARS_PATTERN_ERRORS:
        structs = pc.extract_regex(strings, pattern)
        valid = pc.is_valid(structs)
        matched = valid.to_numpy(zero_copy_only=False)
        fields = {}
        for i, name in enumerate(structs.type.names):
            field = pc.struct_field(structs, [i])
            fields[name] = pc.if_else(pc.and_(valid, pc.not_equal(field, "")), field, pa.scalar(None, field.type))
    columns: dict[str, pd.Series] = {name: string_series(field, index) for name, field in fields.items()}
    columns["matched"] = pd.Series(matched, index=index, dtype=bool)
    return pd.DataFrame(columns, index=index)


_MATCH_GROUP: Final = "pmtimeline_matched"
_LINE: Final = "pmtimeline_line"
#: A pattern that ends in ``(?P<name>.*)$`` after an anchored prefix: the rest of the line.
_TAIL_GROUP: Final = re.compile(r"(?s)(\^.*)\(\?P<(\w+)>\.\*\)\$")


def _top_level_alternation(pattern: str) -> bool:
    """Whether ``pattern`` has a ``|`` outside every group and class."""
    depth = 0
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        i += 1
    return False


@functools.lru_cache(maxsize=512)
def _polars_pattern(pattern: str) -> tuple[str, str | None]:
    """(the pattern polars runs, the name of a tail group cut off it, or None).

    A trailing ``(?P<message>.*)$`` costs more to capture than all the other groups together (the
    capture engine walks the whole message), so when the rest of the pattern is an anchored prefix
    it is matched alone and the tail is the text after it. ``.*$`` matches any rest of a line (a
    line holds no newline), so the match is the same.
    """
    tail = None
    cut = _TAIL_GROUP.fullmatch(pattern)
    if cut is not None and not _top_level_alternation(cut.group(1)):
        try:
            re.compile(cut.group(1))
        except re.error:
            pass
        else:
            pattern, tail = cut.group(1), cut.group(2)
    return f"(?P<{_MATCH_GROUP}>{polars_pattern(pattern)})", tail


def _polars_groups(strings: pa.ChunkedArray, pattern: str) -> tuple[dict[str, pa.ChunkedArray], np.ndarray]:
    """(named group -> large_string array with NA for "" and non-matches, matched mask), in polars."""
    run, tail = _polars_pattern(pattern)
    frame = pl.DataFrame({_LINE: pl.Series(strings)})
    groups = frame.select(pl.col(_LINE).str.extract_groups(run).struct.unnest())
    if tail is not None:
        prefix = groups[_MATCH_GROUP]
        groups = groups.with_columns(frame[_LINE].str.slice(prefix.str.len_chars()).alias(tail))
    matched = groups[_MATCH_GROUP].is_not_null().to_numpy()
    groups = groups.drop(_MATCH_GROUP).select(
        pl.when(pl.all() != "").then(pl.all())  # "" (an empty or absent group) -> null, as RE2 is read
    )
    arrow = groups.to_arrow(compat_level=pl.CompatLevel.oldest())
    fields = {name: arrow.column(name).cast(pa.large_string()) for name in arrow.column_names}
    return fields, matched


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


# The common layouts are parsed by polars' strptime (chrono): with the checks around it, 1.5x
# (ISO 8601) to 6x (access-log times) less CPU than the general path here (bench/parse_engines.py,
# bench/README.md). chrono is more lenient than pandas in ways that would be wrong for us (a
# year past 2262 wraps around the nanosecond range, ``:60`` rolls over into the next minute), so it
# only gets rows whose text has the exact shape below, with a year that nanoseconds can hold and
# seconds below 60; a row of any other shape takes the general path, which flags such years and
# refuses such seconds.
_SAFE_YEAR: Final = r"(?:1[7-9][0-9]{2}|2[01][0-9]{2}|22[0-5][0-9])"
_SAFE_CLOCK: Final = r"[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
_PL_ZONE: Final = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
_PL_ISO: Final = rf"^{_SAFE_YEAR}-[0-9]{{2}}-[0-9]{{2}}[T ]{_SAFE_CLOCK}(?:[.,][0-9]{{1,9}})?{_PL_ZONE}?$"
_MONTH_ALTERNATION: Final = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


class PolarsLayout(NamedTuple):
    """A time layout polars parses: rows matching ``shape`` (fully anchored; see the note above),
    rewritten by ``normalize`` (an expression on the column ``t``), are read with the chrono layout
    ``naive`` or, where they match ``zoned``, with ``with_zone`` into UTC."""

    shape: str
    normalize: pl.Expr
    naive: str
    zoned: str | None = None
    with_zone: str | None = None


_PL_ISO_LAYOUT: Final = PolarsLayout(
    _PL_ISO,
    pl.col("t").str.replace(",", ".", literal=True).str.replace(" ", "T", literal=True),
    "%Y-%m-%dT%H:%M:%S%.f",
    f"{_PL_ZONE}$",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
)
_PL_ACCESS_LAYOUT: Final = PolarsLayout(
    rf"^[0-9]{{2}}/{_MONTH_ALTERNATION}/{_SAFE_YEAR}:{_SAFE_CLOCK}(?: [+-][0-9]{{4}})?$",
    pl.col("t"),
    "%d/%b/%Y:%H:%M:%S",
    r" [+-][0-9]{4}$",
    "%d/%b/%Y:%H:%M:%S %z",
)
_PL_SYSLOG_LAYOUT: Final = PolarsLayout(
    rf"^{_MONTH_ALTERNATION} (?:[0-9]{{2}}| [0-9]) {_SAFE_CLOCK}(?:\.[0-9]{{1,9}})?$",
    pl.lit(f"{PLACEHOLDER_YEAR} ") + pl.col("t").str.replace("  ", " 0", literal=True),
    "%Y %b %d %H:%M:%S%.f",
)


def _polars_times(text: pd.Series, layout: PolarsLayout) -> tuple[ParsedTimes, pd.Series]:
    """(times, fits): the rows of ``text`` that match ``layout.shape`` parsed by polars (other rows
    are NaT), and which rows matched the shape."""
    frame = pl.DataFrame({"t": pl.Series(arrow_strings(text))})
    flags = frame.select(
        fits=pl.col("t").str.contains(layout.shape).fill_null(False),
        zoned=pl.col("t").str.contains(layout.zoned).fill_null(False) if layout.zoned is not None else pl.lit(False),
    )
    fits = flags["fits"]
    zoned = fits & flags["zoned"]
    index = text.index
    utc = pd.Series(pd.NaT, index=index, dtype=TIMESTAMP)
    naive = pd.Series(pd.NaT, index=index, dtype=NAIVE)
    if bool(fits.any()):
        # Each layout is parsed only when some row needs it: a column rarely mixes zoned and naive text.
        normalized = frame.select(layout.normalize.alias("n"))
        if layout.with_zone is not None and bool(zoned.any()):
            read = normalized.select(pl.col("n").str.strptime(pl.Datetime("ns", "UTC"), layout.with_zone, strict=False))
            values = read["n"].set(~zoned, None).to_numpy()
            utc = pd.Series(values, index=index).dt.tz_localize("UTC").astype(TIMESTAMP)
        plain = fits & ~zoned
        if bool(plain.any()):
            read = normalized.select(pl.col("n").str.strptime(pl.Datetime("ns"), layout.naive, strict=False))
            naive = pd.Series(read["n"].set(~plain, None).to_numpy(), index=index).astype(NAIVE)
    false = pd.Series(False, index=index, dtype=bool)
    return ParsedTimes(utc, naive, false, false.copy()), pd.Series(fits.to_numpy(), index=index, dtype=bool)


def parse_iso8601(text: pd.Series) -> ParsedTimes:
    """Parse ISO 8601 / RFC 3339 text, with ``T`` or a space, an optional fraction (``.`` or ``,``,
    up to 9 digits) and an optional offset (``Z``, ``+01``, ``+0100``, ``+01:00``, ``UTC``).

    Rows with an offset come out in ``utc`` (mixed offsets in one column are each honoured);
    rows without in ``naive``. Anything else (including zone abbreviations such as ``CST``) is NaT.
    """
    s = _as_text(text)
    fast, fits = _polars_times(s, _PL_ISO_LAYOUT)
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
    has_offset = match_text(s, _OFFSET_RE)
    # A zone that is neither an offset we read nor absent (``+1``, ``+123``, ``CST``) is refused
    # here: pandas would read some of them as offsets and then refuse the naive rows beside them.
    odd_zone = ~has_offset & match_text(s, r"\d:\d{2}(?:\.\d+)?\s*(?:[+-]\d+(?::\d*)?|[A-Za-z]+)$")
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
    polars: PolarsLayout | None = None,
    normalize_rest: Callable[[pd.Series], pd.Series] | None = None,
) -> ParsedTimes:
    """Parse rows matching the RE2 ``shape`` via ``build`` (text -> ISO 8601 text); others by strptime.

    With ``polars``, rows of its shape are parsed by polars first (the fastest path);
    ``normalize_rest`` rewrites the text of the rows left for the other paths."""
    s = _as_text(text)
    index = s.index
    result = empty_times(index)
    if polars is not None:
        fast, quick = _polars_times(s, polars)
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
        polars=_PL_ACCESS_LAYOUT,
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

    # The common shapes (``Mar  1`` and ``Mar 01``) go to polars as they are; only the rest is
    # normalized by _pad_day (two regex passes) for the general path.
    return _iso_fast_path(
        text,
        r"^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$",
        build,
        ("%b %d %H:%M:%S", "%b %d %H:%M:%S.%f"),
        year_missing=True,
        polars=_PL_SYSLOG_LAYOUT,
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
    )


def parse_compact_date_time(text: pd.Series) -> ParsedTimes:
    """``yymmdd HHMMSS`` (HDFS) -> ``naive``; two-digit years 69-99 are 19xx, 00-68 are 20xx (as strptime)."""

    def build(s: pd.Series) -> pd.Series:
        century = pd.Series("20", index=s.index, dtype=STRING).mask(s.str.slice(0, 2) >= "69", "19")
        return (
            century + s.str.slice(0, 2) + "-" + s.str.slice(2, 4) + "-" + s.str.slice(4, 6)
            + "T" + s.str.slice(7, 9) + ":" + s.str.slice(9, 11) + ":" + s.str.slice(11, 13)
        )  # fmt: skip

    return _iso_fast_path(text, r"^\d{6} \d{6}$", build, ("%y%m%d %H%M%S",))


def match_text(values: pd.Series, pattern: str) -> pd.Series:
    """Where the RE2 ``pattern`` matches each value (``pc.match_substring_regex``); nulls -> False."""
    mask = pc.fill_null(pc.match_substring_regex(arrow_strings(values), pattern), False)
    return pd.Series(mask.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)
