"""Differential test: the Rust core's regex extraction and time layouts against the pre-Rust ones.

``tests/reference_timeformats.py`` is ``timeformats.py`` as it was before the core took over (polars
regex, RE2 fallback, polars strptime). Every built-in format parses the same lines twice, once with the
package's functions and once with the oracle's patched into the parsers, and the frames must be
identical; the time parsers and ``extract_groups`` are compared directly on generated text too.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmtimeline.connectors import log_formats, timeformats, user_formats
from pmtimeline.connectors.log_formats import LOG_FORMATS
from pmtimeline.schema import STRING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference_timeformats as reference  # type: ignore[import-not-found]  # the oracle, beside the tests

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared/data")
CORPUS = Path("/tmp/corpus")

#: The functions of timeformats that the parsers call, compared one for one.
_SWAPPED = (
    "extract_groups",
    "match_text",
    "parse_access_time",
    "parse_compact_date_time",
    "parse_ctime",
    "parse_epoch",
    "parse_iso8601",
    "parse_syslog_time",
    "parse_timestamp_text",
    "parse_with_format",
    "parse_with_formats",
)


def _with_reference(run: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``run()`` with the oracle's functions in place of timeformats' in every module that imported them."""
    saved: list[tuple[ModuleType, str, object]] = []
    try:
        for module in (log_formats, user_formats, timeformats):
            for name in _SWAPPED:
                if hasattr(module, name):
                    saved.append((module, name, getattr(module, name)))
                    setattr(module, name, getattr(reference, name))
        return run()
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _text_lines(path: Path, limit: int) -> list[str]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace").splitlines()[:limit]


def _log_files() -> Iterator[Path]:
    for folder in (ROOT / "sample_logs", SHARED / "loghub"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix not in (".csv", ".json", ".md") and path.name != "LICENSE":
                    yield path


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []


def _assert_same_parse(lines: list[str], where: str) -> None:
    series = pd.Series(lines, dtype=STRING)
    for name, fmt in LOG_FORMATS.items():
        new = fmt.parse(series)
        old = _with_reference(functools.partial(fmt.parse, series))
        pd.testing.assert_frame_equal(new, old, obj=f"{name} on {where}")


@pytest.mark.parametrize("path", list(_log_files()), ids=lambda p: str(p.name))
def test_every_format_parses_the_sample_and_loghub_logs_as_before(path: Path) -> None:
    _assert_same_parse(_text_lines(path, 3000), str(path))


@pytest.mark.skipif(not _corpus_files(), reason="no bench corpus in /tmp/corpus")
@pytest.mark.parametrize("name", ["access.log", "app.jsonl", "service.log", "syslog", "worker.log"])
def test_every_format_parses_a_slice_of_the_bench_corpus_as_before(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    _assert_same_parse(_text_lines(path, 5000), str(path))


def test_a_user_format_parses_as_before(tmp_path: Path) -> None:
    spec = tmp_path / "formats.toml"
    spec.write_text(
        "[[format]]\nname = 'shop'\n"
        "regex = '^(?P<timestamp>\\S+ \\S+) \\[(?P<level>\\w+)\\] (\\w+) (?P<service>[\\w.]+): (?P<message>.*)$'\n"
        "timestamp_format = '%Y-%m-%d %H:%M:%S'\n"
        "multiline_start = '^\\d{4}-'\n",
        encoding="utf-8",
    )
    fmt = user_formats.load_format_file(spec)["shop"]
    lines = pd.Series(
        [
            "2024-03-01 12:00:00 [INFO] x shop.api: hello",
            "2024-03-01 12:00:01 [WARN] y shop.api: folded\n  continuation",
            "2024-03-01 broken",
            "2024-02-30 12:00:00 [INFO] x shop.api: no such day",
            "9999-03-01 12:00:00 [INFO] x shop.api: far future",
            "  a continuation",
            None,
        ],
        dtype=STRING,
    )
    pd.testing.assert_frame_equal(fmt.parse(lines), _with_reference(lambda: fmt.parse(lines)))


def _assert_same_times(new: timeformats.ParsedTimes, old: reference.ParsedTimes, where: str) -> None:
    for field in ("utc", "naive", "year_missing", "out_of_range"):
        pd.testing.assert_series_equal(getattr(new, field), getattr(old, field), obj=f"{where}.{field}")


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_digits = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")
_month_numbers = st.one_of(st.integers(1, 12).map(lambda n: f"{n:02d}"), _digits)
_day_numbers = st.one_of(st.integers(1, 31).map(lambda n: f"{n:02d}"), _digits)
_years = st.sampled_from(["1677", "1678", "1699", "1700", "1970", "2000", "2024", "2259", "2261", "2262", "9999"])
_clock = st.tuples(
    st.integers(0, 25), st.integers(0, 61), st.sampled_from([0, 0, 0, 1, 59, 60, 61]), st.integers(0, 59)
).map(lambda t: f"{t[0]:02d}:{t[1]:02d}:{t[2] if t[2] else t[3]:02d}")
_fraction = st.one_of(st.just(""), st.from_regex(r"[.,][0-9]{0,11}", fullmatch=True))
_offsets = st.sampled_from(
    ["", "Z", "z", "UTC", " UTC", "GMT", "+00", "+01", "-0130", "+01:00", "+14:00", "-14:00", "+05:45",
     "+23:59", "+24:00", "+99:99", "+1", "+123", "-12345", "+01:60", " CST", "+00:00:00"]
)  # fmt: skip
_days = st.one_of(_day_numbers, st.integers(1, 9).map(lambda d: f" {d}"), st.integers(1, 9).map(str))
_months_text = st.one_of(st.sampled_from(_MONTHS), st.sampled_from(["jan", "JAN", "Foo", "Ma"]))


@st.composite
def _iso_text(draw: st.DrawFn) -> str:
    date = f"{draw(_years)}-{draw(_month_numbers)}-{draw(_day_numbers)}"
    sep = draw(st.sampled_from(["T", " ", "t", "  "]))
    return f"{date}{sep}{draw(_clock)}{draw(_fraction)}{draw(_offsets)}"


@st.composite
def _access_text(draw: st.DrawFn) -> str:
    zone = draw(st.sampled_from(["", " +0000", " -0700", " +1400", " +2400", " +0160", " +01:00", "+0100", " +999"]))
    return f"{draw(_days)}/{draw(_months_text)}/{draw(_years)}:{draw(_clock)}{zone}"


@st.composite
def _syslog_text(draw: st.DrawFn) -> str:
    frac = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,11}", fullmatch=True)))
    gap = draw(st.sampled_from([" ", "  ", "\t"]))
    return f"{draw(_months_text)}{gap}{draw(_days)} {draw(_clock)}{frac}"


@st.composite
def _ctime_text(draw: st.DrawFn) -> str:
    weekday = draw(st.sampled_from(["", "Mon ", "Thu ", "Xyz "]))
    frac = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,7}", fullmatch=True)))
    return f"{weekday}{draw(_months_text)} {draw(_days)} {draw(_clock)}{frac} {draw(_years)}"


@st.composite
def _compact_text(draw: st.DrawFn) -> str:
    return f"{draw(_digits)}{draw(_month_numbers)}{draw(_day_numbers)} {draw(_clock).replace(':', '')}"


_damaged = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def _column(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype=STRING, index=pd.RangeIndex(3, 3 + len(values)))


_Parser = Callable[[pd.Series], timeformats.ParsedTimes]
_CASES: dict[str, tuple[_Parser, Callable[..., reference.ParsedTimes], st.SearchStrategy[str]]] = {
    "parse_iso8601": (timeformats.parse_iso8601, reference.parse_iso8601, _iso_text()),
    "parse_timestamp_text": (timeformats.parse_timestamp_text, reference.parse_timestamp_text, _iso_text()),
    "parse_access_time": (timeformats.parse_access_time, reference.parse_access_time, _access_text()),
    "parse_syslog_time": (timeformats.parse_syslog_time, reference.parse_syslog_time, _syslog_text()),
    "parse_ctime": (timeformats.parse_ctime, reference.parse_ctime, _ctime_text()),
    "parse_compact_date_time": (
        timeformats.parse_compact_date_time,
        reference.parse_compact_date_time,
        _compact_text(),
    ),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_time_parsers_agree_with_the_oracle_on_generated_text(name: str) -> None:
    new, old, valid = _CASES[name]
    values = st.lists(st.one_of(valid, valid, valid, _damaged, st.none()), max_size=25)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values)
    def check(rows: list[str | None]) -> None:
        column = _column(rows)
        got = new(column)
        # An empty fraction before an odd offset: the oracle raised, or flagged the year; the package
        # refuses that zone as it refuses it without the dot (the documented difference below).
        odd = column.str.contains(r"\d:\d{2}[.,](?:\D|$)", regex=True, na=False)
        if bool(odd.any()):
            assert not bool(got.parsed[odd].any())
            rest = column[~odd]
            _assert_same_times(new(rest), old(rest), name)
            return
        _assert_same_times(got, old(column), name)

    check()


def test_documented_difference_an_empty_fraction_before_an_odd_offset_is_no_time() -> None:
    """The oracle raised on ``00:00:00.+1`` (pandas read ``+1`` as an offset, then refused the naive rows
    beside it, or compared it with a naive bound): in a log, the whole chunk was lost to one line. The
    package refuses that zone, as it refuses ``00:00:00+1``, and reads the other rows."""
    column = _column(["2024-01-01T00:00:00", "2024-01-01T00:00:00.+1", "1677-01-01T00:00:00.+1"])
    with pytest.raises((ValueError, TypeError)):
        reference.parse_iso8601(column)
    got = timeformats.parse_iso8601(column)
    assert got.naive.iloc[0] == pd.Timestamp("2024-01-01T00:00:00")
    assert got.parsed.tolist() == [True, False, False]
    alone = timeformats.parse_iso8601(_column(["1677-01-01T00:00:00.+1"]))
    assert not bool(alone.parsed.any())
    # The same flags as the zone without the dot, which the oracle already refused.
    for text in ("1677-01-01T00:00:60.+1", "2024-01-01T00:00:00.+1"):
        with_dot = timeformats.parse_iso8601(_column([text]))
        without = reference.parse_iso8601(_column([text.replace(".+", "+")]))
        assert with_dot.out_of_range.tolist() == without.out_of_range.tolist()
        assert with_dot.parsed.tolist() == without.parsed.tolist() == [False]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(_iso_text(), _damaged, st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{0,12})?", fullmatch=True)), max_size=20
    )
)
def test_epoch_and_strptime_paths_agree_with_the_oracle(rows: list[str]) -> None:
    column = _column(list(rows))
    _assert_same_times(timeformats.parse_epoch(column), reference.parse_epoch(column), "parse_epoch")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z", "%b %d %H:%M:%S.%f", "%y%m%d %H%M%S"):
        _assert_same_times(timeformats.parse_with_format(column, fmt), reference.parse_with_format(column, fmt), fmt)


_BUILT_IN_PATTERNS = (
    log_formats._ACCESS_COMBINED + r"(?P<extra>.*)$",
    log_formats._LOG4J_PATTERNS[0],
    log_formats._RFC5424,
    log_formats._CRI,
    r"^(?P<a>\d+) (x)? ?(?P<message>.*)$",
    r"(?:^|\s)(?:rt|request_time)=\"?(?P<s>\d+(?:\.\d+)?)\"?",
    r"^(?P<w>\w+)\b(?P<s>\s*)(?P<message>.*)$",
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(_BUILT_IN_PATTERNS),
    st.lists(st.one_of(_damaged, st.from_regex(r"[0-9a-z =.\"-]{0,20}", fullmatch=True), st.none()), max_size=15),
)
def test_extract_groups_agrees_with_the_oracle_on_any_text(pattern: str, rows: list[str | None]) -> None:
    column = _column(rows)
    pd.testing.assert_frame_equal(
        timeformats.extract_groups(column, pattern), reference.extract_groups(column, pattern)
    )


def test_unicode_digits_and_spaces_are_not_ascii_classes_in_either() -> None:
    column = _column(["١٢ x", "12\u00a0x", "12\u2003x", "12\vx", "12 x\ny", "ß_9 x"])
    for pattern in (r"^(?P<n>\d+)\s(?P<message>.*)$", r"^(?P<w>\w+)\b", r"(?P<s>\S+)\s+(?P<t>\S+)"):
        pd.testing.assert_frame_equal(
            timeformats.extract_groups(column, pattern), reference.extract_groups(column, pattern)
        )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_damaged, _iso_text(), st.none()), max_size=15))
def test_match_text_agrees_with_re2(rows: list[str | None]) -> None:
    column = _column(rows)
    for pattern in (r"^\s*\{", r"\d:\d{2}(?:\.\d+)?\s*(?:[+-]\d+(?::\d*)?|[A-Za-z]+)$", r"\bT\b", r"^\S+$"):
        pd.testing.assert_series_equal(timeformats.match_text(column, pattern), reference.match_text(column, pattern))


def test_a_pattern_the_engine_refuses_is_a_config_error() -> None:
    # Before, RE2 (through pyarrow) ran what polars refused (``\\C``, any byte); now there is one engine.
    from pmtimeline.errors import ConfigError

    with pytest.raises(ConfigError, match="refused"):
        timeformats.extract_groups(_column(["ab"]), r"^(?P<first>\C)")
