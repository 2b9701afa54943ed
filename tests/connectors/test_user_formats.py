"""Tests for user-defined formats read from TOML."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.connectors.log_formats import LOG_FORMATS, detect_log_format, get_format
from pmtimeline.connectors.user_formats import load_format_file
from pmtimeline.errors import ConfigError
from pmtimeline.schema import STRING

BILLING = r"""
[[format]]
name = "billing"
description = "billing batch jobs"
regex = '^(?P<timestamp>\d{2}\.\d{2}\.\d{4} [\d:]{8}) (?P<level>\w) (?P<service>\S+) job=(?P<job>\d+) (?P<message>.*)'
timestamp_format = "%d.%m.%Y %H:%M:%S"
timezone = "Europe/Berlin"
levels = { W = "warning", E = "error", I = "info" }
multiline_start = '^\d{2}\.\d{2}\.\d{4} '

[[format]]
name = "meter"
regex = '^(?P<timestamp>-?\d+)\|(?P<host>[^|]+)\|(?P<http_status>\d{3})\|(?P<message>.*)$'
timestamp_format = "epoch_ms"
kind = "request"
"""

LINES = [
    "01.03.2024 10:00:00 E billing.run job=7 charge failed",
    "  at step 3",
    "31.02.2024 10:00:01 I billing.run job=8 ok",
    "01.03.2024 10:00:02 W billing.run job=9 slow",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "formats.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_user_format_parses_with_levels_fields_and_zone(tmp_path: Path) -> None:
    formats = load_format_file(_write(tmp_path, BILLING))
    assert list(formats) == ["billing", "meter"]
    billing = formats["billing"]
    assert billing.timezone == "Europe/Berlin"
    assert billing.multiline
    assert billing.multiline_start is not None
    assert billing.multiline_start.match(LINES[0])
    frame = billing.parse(pd.Series(LINES, dtype=STRING))
    assert frame["head"].tolist() == [True, False, False, True]
    assert frame["reject_reason"].tolist()[1:3] == [pd.NA, "bad_timestamp"]
    row = frame.iloc[0]
    assert row["ts_naive"] == pd.Timestamp("2024-03-01 10:00:00")
    assert pd.isna(row["ts_utc"])
    assert row["ts_raw"] == "01.03.2024 10:00:00"
    assert (row["level"], row["service"], row["message"]) == ("error", "billing.run", "charge failed")
    assert row["fields"] == '{"job":"7"}'
    assert frame["level"].iloc[3] == "warning"


def test_user_epoch_format_and_kind(tmp_path: Path) -> None:
    meter = load_format_file(_write(tmp_path, BILLING))["meter"]
    frame = meter.parse(pd.Series(["1709251200123|edge-1|503|upstream down", "x|y|200|z", "-5|y|200|z"], dtype=STRING))
    assert frame["ts_utc"].iloc[0] == pd.Timestamp("2024-03-01T00:00:00.123Z")
    assert frame["http_status"].iloc[0] == 503
    assert frame["host"].iloc[0] == "edge-1"
    assert frame["kind"].iloc[0] == "request"
    # A line the regex does not match is left to the connector (continuation or unparseable).
    assert frame["head"].tolist() == [True, False, False]
    assert pd.isna(frame["reject_reason"].iloc[1])
    assert frame["reject_reason"].iloc[2] == "timestamp_out_of_range"


def test_user_formats_merge_first_and_can_be_forced(tmp_path: Path) -> None:
    user = load_format_file(_write(tmp_path, BILLING))
    merged = {**user, **LOG_FORMATS}
    fmt, reason = detect_log_format(LINES, merged)
    assert fmt.name == "billing"
    assert reason == "billing: 2 of 4 sample lines match"
    assert get_format("meter", merged).name == "meter"


def test_python_only_regex_falls_back_to_python_re(tmp_path: Path) -> None:
    text = r"""
[[format]]
name = "lookbehind"
regex = '^(?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) (?<=Z )(?P<message>.*)$'
timestamp_format = "iso8601"
"""
    fmt = load_format_file(_write(tmp_path, text))["lookbehind"]
    frame = fmt.parse(pd.Series(["2024-03-01T00:00:00Z hello"], dtype=STRING))
    assert frame["head"].tolist() == [True]
    assert frame["message"].iloc[0] == "hello"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[format]\nname=", "invalid TOML"),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>"\ntimestamp_format = "auto"', "bad regex"),
        ('[[format]]\nname = "a"\nregex = "(?P<time>.*)"\ntimestamp_format = "auto"', "no named group 'timestamp'"),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"\ntimestamp_format = "auto"\ncolour = 1', "unknown keys"),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"', "missing timestamp_format"),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"\ntimestamp_format = "dd.mm.yyyy"', "strptime"),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"\ntimestamp_format = "auto"\ntimezone = "CST"', "CST"),
        (
            '[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"\ntimestamp_format = "auto"\nlevels = {X = "bad"}',
            "levels",
        ),
        ('[[format]]\nname = "a"\nregex = "(?P<timestamp>.*)"\ntimestamp_format = "auto"\nkind = "other"', "kind"),
        ("title = 1", "unknown top-level keys"),
    ],
)
def test_invalid_format_files_give_one_line_config_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=problem) as info:
        load_format_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "\n" not in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_format_file(tmp_path / "absent.toml")


def test_user_formats_travel_to_worker_processes_as_their_table(tmp_path: Path) -> None:
    # Parsing workers are fresh processes: a user format is pickled as the table that defines it.
    for fmt in load_format_file(_write(tmp_path, BILLING)).values():
        copy = pickle.loads(pickle.dumps(fmt))
        assert copy is not fmt
        assert (copy.name, copy.timezone, copy.multiline) == (fmt.name, fmt.timezone, fmt.multiline)
        lines = pd.Series(LINES, dtype=STRING)
        pd.testing.assert_frame_equal(copy.parse(lines), fmt.parse(lines))
