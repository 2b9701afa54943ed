"""Tests for user-defined formats read from TOML."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pmtimeline.cli import cli
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
    assert reason == "billing: 3 of 4 sample lines match"  # two heads and the line that continues one
    assert get_format("meter", merged).name == "meter"


def test_a_line_that_starts_an_event_but_misfits_the_regex_is_rejected_not_glued(tmp_path: Path) -> None:
    billing = load_format_file(_write(tmp_path, BILLING))["billing"]
    lines = [LINES[0], "  at step 3", "01.03.2024 10:00:05 garbled", "  its detail"]
    frame = billing.parse(pd.Series(lines, dtype=STRING))
    assert frame["head"].tolist() == [True, False, False, False]
    # The third line starts an event (multiline_start) but does not fit: a reject, not a continuation.
    assert frame["reject_reason"].tolist()[1:] == [pd.NA, "unparseable", pd.NA]


def _one_format(regex: str, key: str = "regex") -> str:
    other = "regex = '^(?P<timestamp>\\S+) (?P<message>.*)$'\n" if key != "regex" else ""
    return f'[[format]]\nname = "mine"\n{key} = \'{regex}\'\n{other}timestamp_format = "auto"\n'


@pytest.mark.parametrize(
    ("regex", "construct", "at"),
    [
        (r"^(?P<timestamp>\S+) (?=x)(?P<message>.*)$", "lookahead `(?=...)`", 21),
        (r"^(?P<timestamp>\S+) (?!x)", "negative lookahead `(?!...)`", 21),
        (r"^(?P<timestamp>\S+) (?<=\s)x", "lookbehind `(?<=...)`", 21),
        (r"(?<!x)(?P<timestamp>\S+)", "negative lookbehind `(?<!...)`", 1),
        (r"(?P<timestamp>\S+) (\w)\1", "backreference `\\1`", 24),
        (r"(?P<timestamp>\S+) (?P<u>\w)(?P=u)", "backreference `(?P=name)`", 29),
        (r"(?P<timestamp>\S++)", "possessive quantifier `++`", 17),
        (r"(?P<timestamp>\d{4,}+)", "possessive quantifier `{4,}+`", 17),
        (r"(?>(?P<timestamp>\S+))", "atomic group `(?>...)`", 1),
        (r"(?P<timestamp>\S+)(x)?(?(2)y|z)", "conditional `(?(...)...)`", 23),
        (r"(?P<timestamp>\S+)\Z", "`\\Z`", 19),
    ],
)
def test_constructs_only_a_backtracking_engine_has_are_refused_at_load(
    tmp_path: Path, regex: str, construct: str, at: int
) -> None:
    path = _write(tmp_path, _one_format(regex))
    with pytest.raises(ConfigError) as info:
        load_format_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: format #1 (mine): regex: {construct} at character {at} is not supported")
    assert "linear-time engine" in message
    assert message.count(": ") >= 4  # ...: the rewrite hint after the reason
    assert "\n" not in message


def test_the_multiline_start_pattern_is_checked_the_same_way(tmp_path: Path) -> None:
    path = _write(tmp_path, _one_format(r"^(?=\d)", key="multiline_start"))
    with pytest.raises(ConfigError, match=r"multiline_start: lookahead `\(\?=\.\.\.\)` at character 2"):
        load_format_file(path)


def test_supported_syntax_beyond_python_loads(tmp_path: Path) -> None:
    # Rust's regex reads (?<name>...) groups and Unicode classes; a '(?=' inside a class is text.
    fmt = load_format_file(_write(tmp_path, _one_format(r"^(?<timestamp>\S+) [(?=]\p{L}+ (?P<message>.*)$")))["mine"]
    frame = fmt.parse(pd.Series(["2024-03-01T00:00:00Z (Ünïcode hello"], dtype=STRING))
    assert frame["head"].tolist() == [True]
    assert frame["message"].iloc[0] == "hello"


LOOKAHEAD_FORMAT = r"""
[[format]]
name = "ahead"
regex = '^(?P<timestamp>\d+) (?=(\w+\s?)+$)(?P<message>.*)$'
timestamp_format = "epoch_s"
"""


def test_cli_refuses_a_lookahead_format_at_load_with_one_line(tmp_path: Path) -> None:
    # Issue 17 item 5: this pattern fell back to Python's re and took 120 s on 20 lines of 30 characters.
    format_file = _write(tmp_path, LOOKAHEAD_FORMAT)
    logs = tmp_path / "app.log"
    logs.write_text("".join(f"{1709280000 + i} {'word ' * 4}word!\n" for i in range(20)), encoding="utf-8")
    for args in (
        ["ingest", "--format-file", str(format_file), str(logs), "-o", str(tmp_path / "events.csv")],
        ["formats", "--format-file", str(format_file)],
    ):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines() == [
            f"Error: {format_file}: format #1 (ahead): regex: lookahead `(?=...)` at character 21 is not supported "
            "(patterns run in a linear-time engine): match the text and capture around it instead"
        ]
    assert not (tmp_path / "events.csv").exists()


def test_cli_runs_a_nested_quantifier_on_long_lines_in_linear_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a+)+$ backtracks exponentially in Python's re on a run of a's that ends in another letter; the
    # linear-time engine answers at once. 30 lines of 10,000 characters: half match, half do not.
    format_file = _write(
        tmp_path,
        '[[format]]\nname = "runs"\n'
        "regex = '^(?P<timestamp>\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ) (?P<message>(a+)+$)'\n"
        'timestamp_format = "iso8601"\n',
    )
    logs = tmp_path / "runs.log"
    logs.write_text(
        "".join(f"2024-03-01T10:00:{i:02d}Z {'a' * 10_000}{'b' if i % 2 else ''}\n" for i in range(30)),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    args = ["ingest", "--format-file", str(format_file), "--format", "runs", logs.name, "-o", "events.csv"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("runs.log "))
    assert row.split()[1:5] == ["runs", "30", "15", "0"]
    assert "15 (unparseable=15)" in row
    events = pd.read_csv(tmp_path / "events.csv")
    assert events["timestamp"].tolist() == [f"2024-03-01T10:00:{i:02d}.000000Z" for i in range(0, 30, 2)]
    assert (events["message"].str.len() == 10_000).all()


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
