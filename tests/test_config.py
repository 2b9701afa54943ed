"""TimelineConfig: defaults, validation, zones and user-given times."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.config import (
    MAX_LISTED_SOURCES,
    TimelineConfig,
    check_source_globs,
    check_zone,
    input_roots,
    is_naive_time,
    match_source,
    parse_time,
    source_names,
)
from pmtimeline.errors import ConfigError


def test_defaults_are_usable_and_frozen() -> None:
    config = TimelineConfig()
    assert config.tz == "UTC"
    assert config.redact
    assert config.bucket == "1min"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tz = "Europe/Berlin"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"tz": "IST"}, "unknown time zone"),
        ({"source_tz": (("*.log", "Nowhere/City"),)}, "unknown time zone"),
        ({"start": pd.Timestamp("2024-03-02", tz="UTC"), "end": pd.Timestamp("2024-03-01", tz="UTC")}, "before"),
        ({"phase_overrides": {"begun": pd.Timestamp("2024-03-01", tz="UTC")}}, "unknown phase"),
        ({"bucket": "soon"}, "not a duration"),
        ({"slo": 120.0}, "percentage"),
        ({"chunk_lines": 0}, "positive"),
    ],
)
def test_invalid_settings_give_one_line_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        TimelineConfig(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_zones() -> None:
    assert check_zone("UTC").utcoffset(None) == pd.Timedelta(0)
    assert check_zone("+01:00").utcoffset(None) == pd.Timedelta(hours=1)
    assert check_zone("-0530").utcoffset(None) == -pd.Timedelta(hours=5, minutes=30)
    assert str(check_zone("Europe/Berlin")) == "Europe/Berlin"


def test_parse_time_reads_naive_times_in_the_given_zone() -> None:
    assert parse_time("2024-03-01T10:00:00Z") == pd.Timestamp("2024-03-01T10:00:00Z")
    assert parse_time("2024-03-01 10:00", "Europe/Berlin") == pd.Timestamp("2024-03-01T09:00:00Z")
    assert parse_time("2024-07-01 10:00", "Europe/Berlin") == pd.Timestamp("2024-07-01T08:00:00Z")
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        parse_time("yesterday-ish")


@pytest.mark.parametrize(
    ("text", "naive"),
    [
        ("2024-03-12T08:00:00Z", False),
        ("2024-03-12 08:00:00Z", False),
        ("2024-03-12T09:00+01:00", False),
        ("2024-03-12T09:00:00.000+0100", False),
        ("2024-03-12T03:00-05", False),
        ("2024-03-12t08:00z", False),
        ("2024-03-12 08:00", True),
        ("2024-03-12T08:00:00", True),
        ("2024-03-12T08:00:00,000", True),
        ("2024-03-12T08:00:00.000000000", True),
    ],
)
def test_parse_time_accepts_iso_8601_with_or_without_t_seconds_fraction_and_zone(text: str, naive: bool) -> None:
    assert parse_time(text) == pd.Timestamp("2024-03-12T08:00:00Z")
    assert is_naive_time(text) is naive
    # Naive times are read in the zone given; explicit ones are not moved by it.
    shifted = parse_time(text, "America/New_York")
    assert shifted == pd.Timestamp("2024-03-12T08:00:00Z") + (pd.Timedelta(hours=4) if naive else pd.Timedelta(0))


def test_parse_time_takes_a_date_as_its_midnight_and_datetimes_as_they_are() -> None:
    assert parse_time("2024-03-12", "Europe/Berlin") == pd.Timestamp("2024-03-11T23:00:00Z")
    assert parse_time(dt.datetime(2024, 3, 12, 9, 0), "Europe/Berlin") == pd.Timestamp("2024-03-12T08:00:00Z")
    assert parse_time(pd.Timestamp("2024-03-12T09:00+01:00")) == pd.Timestamp("2024-03-12T08:00:00Z")
    assert is_naive_time(dt.datetime(2024, 3, 12))
    assert not is_naive_time(dt.datetime(2024, 3, 12, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    "text",
    [
        "12/03/2024",
        "03/12/2024 08:00",
        "Mar 12 08:00",
        "12 Mar 2024",
        "yesterday",
        "now-ish",
        "1710230400",
        "2024-03-12T8:00",
        "2024-3-12",
        "2024-03-12Z",
        "2024-02-30",
        "2024-03-12T25:00",
        "2024-03-12 08:00 UTC",
    ],
)
def test_parse_time_refuses_what_is_not_iso_8601_with_one_line_naming_the_form(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_time(text, option="--start")
    message = str(info.value)
    assert message.startswith("--start: ")
    assert "ISO 8601" in message
    assert "YYYY-MM-DD" in message
    assert "\n" not in message


def test_a_local_time_that_a_dst_change_skips_or_repeats_is_refused_unless_its_offset_is_given() -> None:
    with pytest.raises(ConfigError, match="daylight-saving"):
        parse_time("2024-03-31 02:30", "Europe/Berlin", "--onset")  # skipped: clocks jump 02:00 -> 03:00
    with pytest.raises(ConfigError, match="daylight-saving"):
        parse_time("2024-10-27 02:30", "Europe/Berlin", "--onset")  # happens twice
    assert parse_time("2024-10-27 02:30+01:00", "Europe/Berlin") == pd.Timestamp("2024-10-27T01:30:00Z")


# -- source globs ------------------------------------------------------------------------------------


def test_a_glob_matches_the_path_as_given_relative_to_its_input_or_the_file_name(tmp_path: Path) -> None:
    # Shapes unlike the sample: absolute paths, a deeper tree, an input folder named like a glob's
    # first word ("api"), so that only a path relative to the input may count.
    root = tmp_path / "api" / "logs"
    web, api = root / "web" / "access.log", root / "api" / "2024" / "app.log.1"
    for path in (web, api):
        path.parent.mkdir(parents=True)
        path.write_text("", encoding="utf-8")
    roots = input_roots([str(root)])
    assert roots == (str(root),)
    assert source_names(str(web), roots) == (str(web), "web/access.log", "access.log")
    assert match_source([("web/*", "a")], str(web), roots) == "a"
    assert match_source([("access.log", "b")], str(web), roots) == "b"
    assert match_source([(f"{tmp_path}/api/logs/web/*", "c")], str(web), roots) == "c"
    # '*' also crosses '/': a glob over the relative path reaches any depth.
    assert match_source([("api/*", "d")], str(api), roots) == "d"
    assert match_source([("*.log.1", "e")], str(api), roots) == "e"
    # A folder above the input is not part of the relative path: 'api/*' misses web/access.log.
    assert match_source([("api/*", "d")], str(web), roots) is None
    assert match_source([("logs/*", "x")], str(web), roots) is None
    # The first matching pair wins, whichever name it matched.
    assert match_source([("nope", "0"), ("*.log", "1"), ("web/*", "2")], str(web), roots) == "1"


def test_input_roots_of_files_folders_and_globs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    log = tmp_path / "a" / "x.log"
    log.write_text("", encoding="utf-8")
    roots = input_roots([str(tmp_path / "a"), str(log), f"{tmp_path}/b*/*.log", "relative/dir/*.gz"])
    assert roots[:2] == (str(tmp_path / "a"), str(tmp_path))
    assert roots[2].endswith("relative/dir")
    # A file given as the input is matched by its name, relative to its folder.
    assert match_source([("x.log", "z")], str(log), input_roots([str(log)])) == "z"


def test_a_glob_matching_no_source_is_an_error_listing_the_sources(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    paths = [str(tmp_path / "logs" / f"host{i:02d}" / "syslog") for i in range(MAX_LISTED_SOURCES + 5)]
    config = TimelineConfig(
        source_tz=(("host0*/*", "Europe/Berlin"),),
        source_offsets=(("hosts/*", "-5min"),),
        source_services=(("syslog", "os"),),
        input_roots=input_roots([str(tmp_path / "logs")]),
    )
    with pytest.raises(ConfigError) as info:
        check_source_globs(config, paths)
    message = str(info.value)
    assert "\n" not in message
    assert "--offset 'hosts/*' matches no source" in message
    assert "--source-tz" not in message
    assert "--service" not in message
    listed = [f"host{i:02d}/syslog" for i in range(MAX_LISTED_SOURCES)]
    assert ", ".join(listed) in message
    assert "and 5 more" in message
    assert f"host{MAX_LISTED_SOURCES:02d}/syslog" not in message
    # Every glob that matches something passes.
    check_source_globs(dataclasses.replace(config, source_offsets=(("host1*/*", "-5min"),)), paths)
