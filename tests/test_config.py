"""TimelineConfig: defaults, validation, zones and user-given times."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig, check_zone, parse_time
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
