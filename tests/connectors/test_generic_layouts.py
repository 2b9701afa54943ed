"""The generic reader (pmtimeline._core: core/src/generic.rs, core/src/layouts.rs) and its layouts.

- the catalogue: 50+ layouts, each with a source;
- six public system logs with no dedicated format (Loghub Proxifier, Android, HPC, BGL, HealthApp,
  Thunderbird): the pre-Rust reader (tests/reference_generic.py) misses or misreads them, the new one
  places every line at the time of the Loghub structured CSV;
- real logs rewritten into every layout of the catalogue: the reader recovers the same instants;
- the differential test against the pre-Rust reader on the lines it handled, with the documented
  differences where the new reader is right.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_generic import parse_generic as old_generic

from pmtimeline import _core
from pmtimeline.connectors.log_formats import GENERIC_FORMAT, LOG_FORMATS, detect_log_format, get_format
from pmtimeline.schema import STRING

HERE = Path(__file__).resolve().parent
EXCERPTS = HERE.parent / "data" / "loghub_more"
REPO = HERE.parents[1]
SAMPLE_LOGS = REPO / "sample_logs"
LOGHUB = Path("/work/shared/data/loghub")
CORPUS = Path("/tmp/corpus")
LAYOUTS: list[dict[str, Any]] = _core.generic_layouts()
BY_NAME = {layout["name"]: layout for layout in LAYOUTS}
NS = 1_000_000_000


def _series(lines: list[str]) -> pd.Series:
    return pd.Series(lines, dtype=STRING)


def _read(lines: list[str]) -> tuple[pd.DataFrame, str]:
    """The package's generic format bound to these lines (the layout learned), and what it learned."""
    bound = get_format(GENERIC_FORMAT).for_file(lines)
    return bound.parse(_series(lines)), bound.learned or ""


def _ns(values: pd.Series) -> np.ndarray:
    """Nanoseconds since 1970 of a datetime column (NaT -> min int64)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    return values.to_numpy(dtype="datetime64[ns]").astype("int64")


# --------------------------------------------------------------------------------------------------
# The catalogue


def test_the_catalogue_has_at_least_fifty_layouts_each_with_a_source() -> None:
    names = [layout["name"] for layout in LAYOUTS]
    assert len(names) >= 50
    assert len(set(names)) == len(names)
    assert all(layout["source"] and layout["spec"] for layout in LAYOUTS)
    # Every family the issue names is there.
    specs = " ".join(layout["spec"] for layout in LAYOUTS)
    for piece in ("%Y-", "%Y/", "%Y.", "%d.%m.%Y", "%m/%d/%Y", "%b", "%B", "%a", "%A", "%p", "%z", "[", "%s", "%Q"):
        assert piece in specs
    assert any(not layout["has_year"] for layout in LAYOUTS)
    assert {"epoch_s", "epoch_ms", "epoch_us", "epoch_ns"} <= set(names)


def test_unknown_layout_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown timestamp layout"):
        _core.generic_render("no_such_layout", 0)


# --------------------------------------------------------------------------------------------------
# Six public system logs the old reader missed or misread


def _truth(system: str) -> tuple[list[str], pd.DataFrame]:
    lines = (EXCERPTS / f"{system}_head.log").read_text(encoding="utf-8").splitlines()
    with (EXCERPTS / f"{system}_truth.csv").open(encoding="utf-8", newline="") as handle:
        truth = pd.DataFrame(list(csv.DictReader(handle)))
    assert len(truth) == len(lines)
    return lines, truth


def _epoch_truth(column: pd.Series) -> np.ndarray:
    return column.astype("int64").to_numpy() * NS


def _wall(text: pd.Series, fmt: str) -> np.ndarray:
    return pd.to_datetime(text, format=fmt).to_numpy(dtype="datetime64[ns]").astype("int64")


def _healthapp_wall(text: pd.Series) -> np.ndarray:
    # 20171223-22:15:35:11: the last field counts milliseconds (11 ms, not 110).
    parts = text.str.extract(r"^(\d{8}-\d{2}:\d{2}:\d{2}):(\d{1,3})$")
    seconds = _wall(parts[0], "%Y%m%d-%H:%M:%S")
    return seconds + parts[1].astype("int64").to_numpy() * 1_000_000


SYSTEMS: dict[str, tuple[str, str]] = {
    # system: (learned layout, what the pre-Rust reader did)
    "Proxifier": ("proxifier", "none"),
    "Android": ("android", "none"),
    "HPC": ("epoch_s", "none"),
    "BGL": ("epoch_s", "some"),
    "HealthApp": ("healthapp", "misread"),
    "Thunderbird": ("epoch_s", "misread"),
}


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_six_systems_without_a_format_are_placed_right(system: str) -> None:
    lines, truth = _truth(system)
    layout, before = SYSTEMS[system]
    fmt, reason = detect_log_format(lines)
    assert fmt.name == GENERIC_FORMAT
    assert f"timestamp layout {layout} " in reason
    assert f"from {len(lines)} of {len(lines)} sample lines" in reason

    new = fmt.parse(_series(lines))
    old = old_generic(_series(lines))
    assert bool(new["head"].all())
    if system == "Proxifier":
        expected = _wall("2000." + truth["Time"], "%Y.%m.%d %H:%M:%S")
        assert (_ns(new["ts_naive"]) == expected).all()
        assert bool(new["year_missing"].all())
    elif system == "Android":
        expected = _wall("2000-" + truth["Date"] + " " + truth["Time"], "%Y-%m-%d %H:%M:%S.%f")
        assert (_ns(new["ts_naive"]) == expected).all()
        assert bool(new["year_missing"].all())
    elif system == "HealthApp":
        expected = _healthapp_wall(truth["Time"])
        assert (_ns(new["ts_naive"]) == expected).all()
        assert not bool(new["year_missing"].any())
    else:  # HPC, BGL, Thunderbird: the CSV's epoch seconds
        column = truth["Time"] if system == "HPC" else truth["Timestamp"]
        assert (_ns(new["ts_utc"]) == _epoch_truth(column)).all()

    # What the pre-Rust reader did with the same lines.
    old_heads = int(old["head"].sum())
    if before == "none":
        assert old_heads == 0
    elif system == "BGL":
        # Lines that do not begin with "- " (APPREAD, KERNDTLB...) had no time: folded into the
        # previous event as continuation lines.
        assert 0 < old_heads < len(lines)
        assert not bool(old.loc[~pd.Series(lines).str.startswith("- "), "head"].any())
    elif system == "HealthApp":
        # The milliseconds were cut off (and left at the start of the message).
        assert old_heads == len(lines)
        assert (_ns(old["ts_naive"]) != _healthapp_wall(truth["Time"])).any()
        assert old["message"].str.match(r"^\d{1,3}\|").all()
    else:  # Thunderbird: the local, year-less syslog time after the host instead of the epoch
        assert old_heads == len(lines)
        assert bool(old["year_missing"].all())
        assert bool(old["ts_utc"].isna().all())


# --------------------------------------------------------------------------------------------------
# Real logs rewritten into every layout


def _source_files() -> Iterator[Path]:
    for name in ("ledger/ledger.log", "workers/settlement-worker.log", "edge/nginx_access.log", "hosts/syslog"):
        yield SAMPLE_LOGS / name
    if LOGHUB.is_dir():
        yield from sorted(LOGHUB.glob("*/*_2k.log"))


def _truths(path: Path, limit: int = 150) -> tuple[list[str], pd.DataFrame]:
    """The first lines of a real log, read by the format detection picks (the reference times)."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()][:limit]
    fmt, _ = detect_log_format(lines)
    parsed = fmt.parse(_series(lines))
    return lines, parsed


def _expected(layout: dict[str, Any], utc: int | None, naive: int | None) -> tuple[int, bool]:
    """(ns, is_utc) the reader must recover from a time rendered in ``layout``."""
    ns = utc if utc is not None else naive
    assert ns is not None
    digits = layout["fraction_digits"]
    keep = {0: NS, 3: 1_000_000, 6: 1_000, 9: 1}[digits]
    if not layout["has_seconds"]:
        keep = 60 * NS
    ns = ns - ns % keep
    if not layout["has_year"]:
        wall = pd.Timestamp(ns)
        ns = int(wall.replace(year=2000).value)
    return ns, bool(layout["epoch"] or (utc is not None and layout["has_zone"]))


def _ambiguous_day_first(layout: str, learned: str) -> bool:
    # Day-first and month-first (and year-first two-digit years) read a file with no day above 12
    # alike: the learner takes the one first in the catalogue (month-first; yy/mm/dd as today's
    # reader). Such a file is ambiguous, not misread.
    twins = {("dmy_slash", "mdy_slash"), ("mdy_slash_short", "ymd_slash_short")}
    return (layout, learned) in twins


@pytest.mark.parametrize("path", list(_source_files()), ids=lambda p: p.name)
def test_real_logs_rewritten_into_every_layout_read_back_the_same_instants(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    lines, parsed = _truths(path)
    heads = parsed.index[parsed["head"].to_numpy(dtype=bool)]
    assert len(heads) > 0
    utc = _ns(parsed["ts_utc"])
    naive = _ns(parsed["ts_naive"])
    nat = np.iinfo("int64").min
    failures: list[str] = []
    for layout in LAYOUTS:
        rewritten: list[str] = []
        expected: list[tuple[int, bool]] = []
        for row in heads:
            line, raw = lines[row], parsed.at[row, "ts_raw"]
            u = int(utc[row]) if utc[row] != nat else None
            n = int(naive[row]) if naive[row] != nat else None
            text = _core.generic_render(layout["name"], u if u is not None else n or 0, 330 if u is not None else None)
            if text is None or pd.isna(raw) or raw not in line:
                continue
            rewritten.append(line.replace(raw, text, 1))
            expected.append(_expected(layout, u, n))
        if len(rewritten) < 5:
            continue  # the layout cannot hold these times (two-digit years, epochs before 2000)
        frame, learned = _read(rewritten)
        if f"timestamp layout {layout['name']} " not in learned and _ambiguous_day_first(
            layout["name"], learned.split()[2]
        ):
            continue
        got_utc = _ns(frame["ts_utc"])
        got_naive = _ns(frame["ts_naive"])
        for i, (ns, is_utc) in enumerate(expected):
            got = got_utc[i] if is_utc else got_naive[i]
            if got != ns:
                failures.append(f"{layout['name']}: {rewritten[i]!r} -> {learned}: {got} != {ns}")
                break
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------------
# The differential test against the pre-Rust reader


_LEVEL_WINDOW = 48


def _differential_lines() -> Iterator[tuple[str, list[str]]]:
    for path in _source_files():
        if path.exists():
            yield path.name, path.read_text(encoding="utf-8", errors="replace").splitlines()
    with gzip.open(SAMPLE_LOGS / "hosts" / "syslog.1.gz", "rt", encoding="utf-8") as handle:
        yield "syslog.1.gz", handle.read().splitlines()
    for name in ("service.log", "worker.log", "syslog", "access.log"):
        path = CORPUS / name
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as handle:
                yield f"corpus/{name}", [next(handle, "") for _ in range(20_000)]
    for path in sorted(EXCERPTS.glob("*_head.log")):
        yield path.name, path.read_text(encoding="utf-8").splitlines()


def _documented(old: pd.DataFrame, new: pd.DataFrame, lines: pd.Series) -> pd.Series:
    """Rows where the readers differ for a documented reason (the new reader is right):

    - the new reader takes the earliest time in the line (an epoch before a year-less syslog time,
      Loghub Thunderbird and BGL) where the old one took the first of its eight patterns that matched;
    - the new reader reads the milliseconds of ``22:15:35:606`` (Loghub HealthApp), the old one cut them;
    - the new reader finds a level word beyond the first 48 characters of the message.
    """
    earlier = new["ts_raw"].notna() & old["ts_raw"].notna() & (new["ts_raw"] != old["ts_raw"])
    earlier &= pd.Series(
        [
            isinstance(n, str) and isinstance(o, str) and line.find(n) < line.find(o)
            for n, o, line in zip(new["ts_raw"], old["ts_raw"], lines, strict=True)
        ],
        index=lines.index,
    )
    longer = (
        new["ts_raw"].notna()
        & old["ts_raw"].notna()
        & pd.Series(
            [
                isinstance(n, str) and isinstance(o, str) and n != o and n.startswith(o)
                for n, o in zip(new["ts_raw"], old["ts_raw"], strict=True)
            ],
            index=lines.index,
        )
    )
    return (earlier | longer).fillna(False).astype(bool)


@pytest.mark.parametrize(("name", "lines"), list(_differential_lines()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_new_reader_agrees_with_the_old_on_the_lines_it_read(name: str, lines: list[str]) -> None:
    lines = [line for line in lines if line]
    series = _series(lines)
    new, _ = _read(lines)
    old = old_generic(series)
    handled = old["head"].to_numpy(dtype=bool) | old["reject_reason"].notna().to_numpy(dtype=bool)
    documented = _documented(old, new, series).to_numpy(dtype=bool)
    check = handled & ~documented
    for column in ("head", "reject_reason", "ts_raw", "year_missing", "message"):
        a = old.loc[check, column].astype(object).where(old.loc[check, column].notna(), None)
        b = new.loc[check, column].astype(object).where(new.loc[check, column].notna(), None)
        bad = a.to_numpy() != b.to_numpy()
        assert not bad.any(), f"{name}: {column} differs on {series[check][bad].head(3).tolist()}"
    for column in ("ts_utc", "ts_naive"):
        assert (_ns(old.loc[check, column]) == _ns(new.loc[check, column])).all(), f"{name}: {column} differs"
    # Levels: the same where the old reader could see the level word (its first 48 characters).
    old_level = old.loc[check, "level"]
    new_level = new.loc[check, "level"]
    same = (old_level == new_level).fillna(False) | (old_level.isna() & new_level.isna())
    beyond = old_level.isna() & new_level.notna()
    assert bool((same | beyond).all()), f"{name}: level differs on {series[check][~(same | beyond)].head(3).tolist()}"


# --------------------------------------------------------------------------------------------------
# Hypothesis: lines in the old reader's shapes, with prefixes, levels and messages


_WORDS = st.sampled_from(["started", "payment", "ERROR", "warn", "[info]", "level=debug", "id=42", "x:y", "-", "ok"])


@st.composite
def _old_shape_lines(draw: st.DrawFn) -> str:
    t = pd.Timestamp(draw(st.datetimes(min_value=pd.Timestamp("2001-01-01"), max_value=pd.Timestamp("2099-01-01"))))
    shape = draw(st.sampled_from(["iso", "iso_z", "syslog", "access", "ymd_slash", "epoch"]))
    text = {
        "iso": t.strftime("%Y-%m-%d %H:%M:%S") + f",{t.microsecond // 1000:03d}",
        "iso_z": t.strftime("%Y-%m-%dT%H:%M:%S") + "Z",
        "syslog": t.strftime("%b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S"),
        "access": "[" + t.strftime("%d/%b/%Y:%H:%M:%S") + " +0000]",
        "ymd_slash": t.strftime("%Y/%m/%d %H:%M:%S"),
        "epoch": str(int(t.tz_localize("UTC").timestamp())),
    }[shape]
    prefix = "" if shape == "epoch" else draw(st.sampled_from(["", "host-1 ", "[main] ", "12345 "]))
    words = draw(st.lists(_WORDS, min_size=0, max_size=12))
    return f"{prefix}{text} {' '.join(words)}".rstrip()


@settings(max_examples=60, deadline=None)
@given(st.lists(_old_shape_lines(), min_size=1, max_size=20))
def test_hypothesis_lines_read_as_the_old_reader_read_them(lines: list[str]) -> None:
    series = _series(lines)
    new, _ = _read(lines)
    old = old_generic(series)
    assert (new["head"].to_numpy() == old["head"].to_numpy()).all()
    assert (_ns(new["ts_utc"]) == _ns(old["ts_utc"])).all()
    assert (_ns(new["ts_naive"]) == _ns(old["ts_naive"])).all()
    assert new["message"].fillna("").tolist() == old["message"].fillna("").tolist()


def test_damaged_lines_do_not_crash_and_are_not_heads() -> None:
    lines = [
        "2024-13-45 99:99:99 nonsense",
        "Feb 30 10:00:00 host x",
        "\x00\x01\ufffd",
        "",
        "[",
        "9" * 40,
        "2024-01-01 10:00:00 CST x",
    ]
    frame, _ = _read(lines)
    assert frame["head"].tolist() == [False] * 7
    assert frame["reject_reason"].tolist()[-1] == "bad_timestamp"


def test_out_of_range_years_are_rejected_as_today() -> None:
    frame, _ = _read(["2300-01-01 00:00:00 far", "2024-01-01 00:00:00 near"])
    assert frame["reject_reason"].tolist()[0] == "timestamp_out_of_range"
    assert frame["head"].tolist() == [False, True]


def test_a_file_mixing_two_layouts_reads_both() -> None:
    frame, learned = _read(["2024-03-01 10:00:00 INFO a", "2024-03-01 10:00:01 INFO b", "Mar  1 10:00:02 host c"])
    assert "iso8601_space" in learned
    assert frame["head"].tolist() == [True, True, True]
    assert frame["year_missing"].tolist() == [False, False, True]


def test_level_words_at_any_position() -> None:
    line = "2024-03-01 10:00:00 node-7 some.long.component.name.that.pushes.it.further said: [error] disk full"
    frame, _ = _read([line])
    assert frame["level"].tolist() == ["error"]
    assert old_generic(_series([line]))["level"].isna().all()


def test_the_bound_format_travels_by_its_layout_name() -> None:
    import pickle

    fmt = get_format(GENERIC_FORMAT).for_file(["[10.30 16:49:06] chrome.exe - x"])
    again = pickle.loads(pickle.dumps(fmt))
    assert again.learned == fmt.learned
    assert "proxifier" in (again.learned or "")
    assert LOG_FORMATS[GENERIC_FORMAT].learned is None


def test_a_generic_file_is_sniffed_with_its_layout() -> None:
    _, reason = detect_log_format(["03-17 16:13:38.811  1702  2395 D WindowManager: x"] * 3)
    assert re.search(r"timestamp layout android \(%m-%d %H:%M:%S%f\) learned from 3 of 3 sample lines", reason)


def test_a_forced_generic_format_names_its_learned_layout(tmp_path: Path) -> None:
    from pmtimeline.config import TimelineConfig
    from pmtimeline.connectors.logfile import LogFileConnector

    path = tmp_path / "proxy.log"
    path.write_text((EXCERPTS / "Proxifier_head.log").read_text(encoding="utf-8"), encoding="utf-8")
    connector = LogFileConnector(str(path), TimelineConfig(format_name="generic"))
    events = pd.concat(list(connector.read()))
    (accounting,) = connector.accounting()
    assert "forced with --format; timestamp layout proxifier" in accounting.format_reason
    assert len(events) == 16
