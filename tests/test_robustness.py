"""The bad-input and fault checklist of ``../shared/reference/robustness.md`` §6, row by row.

Each test is named after its row (``test_b1_...``) and asserts what pmtimeline does with that input:
a counted reject with its reason, or a clear one-line error, the accounting invariant
``lines_read == event_lines + continuation_lines + sum(rejected) + outside_window`` intact for every
source, and never a traceback: the CLI runs through click's ``CliRunner`` with
``catch_exceptions=False``, so any exception other than a clean exit fails the test. The inputs are
generated here; none are shipped. ``docs/robustness.md`` lists every row with its test.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import json
import lzma
import os
import random
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import zstandard
from click.testing import CliRunner, Result
from esstub import EsStub

from pmtimeline.api import load, open_sources
from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.elasticsearch import ElasticsearchConnector, EsSettings
from pmtimeline.errors import ConfigError
from pmtimeline.pipeline import IngestResult, build, ingest
from pmtimeline.sources import SourceAccounting

#: Bytes that must never reach a terminal from log data.
TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\x08")
VALID = "2024-03-01T10:00:{:02d}Z INFO api: request ok n={}"


def valid_lines(n: int, start: int = 0) -> str:
    return "".join(VALID.format((start + i) % 60, start + i) + "\n" for i in range(n))


def cli_run(*args: str, expect_exit: int | None = 0) -> Result:
    """Run ``pmtimeline ARGS``; a traceback (any exception but SystemExit) fails the test."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    for ch in TERMINAL_CONTROLS:
        assert ch not in out, (ch, out)
    if expect_exit is not None:
        assert result.exit_code == expect_exit, out
    if result.exit_code:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr  # one clear line
    return result


def read(paths: Sequence[str | Path], **options: Any) -> IngestResult:
    """The library path (what ``ingest`` does), with the invariant checked for every source."""
    config = TimelineConfig(**options)
    result = ingest(open_sources([str(p) for p in paths], config), config)
    assert_balanced(result.sources)
    return result


def assert_balanced(sources: Sequence[SourceAccounting]) -> None:
    for acc in sources:
        accounted = acc.event_lines + acc.continuation_lines + acc.rejected_total + acc.outside_window
        assert acc.lines_read == accounted, acc.to_dict()


def acc_of(result: IngestResult, path: Path) -> SourceAccounting:
    (acc,) = [a for a in result.sources if a.name == str(path)]
    return acc


def rejects_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def here(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary directory so CLI paths stay short and relative."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


# -- 6.1 bytes and encoding -------------------------------------------------------------------------------


def test_b1_binary_garbage_is_rejected_line_by_line(here: Path) -> None:
    garbage = here / "garbage.log"
    garbage.write_bytes(random.Random(1).randbytes(1 << 18))
    good = here / "good.log"
    good.write_text(valid_lines(20))
    result = cli_run("ingest", "garbage.log", "good.log", "-o", "events.csv", "--rejects", "rejects.csv")
    row = next(line for line in result.stdout.splitlines() if line.startswith("garbage.log"))
    assert row.split()[3] == "0"  # the events column: "0 events from garbage.log"
    lib = read([garbage, good])
    acc = acc_of(lib, garbage)
    assert acc.events == 0
    assert acc.lines_read > 500
    assert set(acc.rejected) <= {"unparseable", "nul_bytes", "empty_line"}
    assert acc.rejected["unparseable"] >= 0.9 * acc.lines_read
    assert acc_of(lib, good).events == 20
    # No raw bytes in any output: excerpts are escaped, the export holds only good.log's events.
    rejects = (here / "rejects.csv").read_text(encoding="utf-8")
    assert not any(ch in rejects for ch in ("\x00", "\x1b", "\x07", "\x9b"))
    assert pd.read_csv(here / "events.csv")["source"].eq("good.log").all()


def test_b2_invalid_utf8_is_replaced_and_counted(here: Path) -> None:
    path = here / "app.log"
    path.write_bytes(b"2024-03-01T00:00:00Z GET /\xff\xfe\xc3( user=bob\n")
    result = read([path])
    acc = acc_of(result, path)
    assert acc.events == 1
    assert acc.decode_errors >= 2
    event = result.events.iloc[0]
    assert event["timestamp"] == pd.Timestamp("2024-03-01T00:00:00Z")
    assert "\ufffd" in event["message"]


def test_b3_utf8_bom_is_stripped(here: Path) -> None:
    path = here / "bom.log"
    path.write_bytes(b"\xef\xbb\xbf" + valid_lines(3).encode())
    result = read([path])
    assert acc_of(result, path).events == 3
    assert result.events["line"].tolist() == [1, 2, 3]
    assert not result.events["message"].str.contains("\ufeff").any()


def test_b4_utf16_is_decoded_from_its_bom(here: Path) -> None:
    path = here / "windows.log"
    path.write_bytes(valid_lines(4).encode("utf-16"))
    result = read([path])
    acc = acc_of(result, path)
    assert acc.events == 4
    assert any("utf-16" in note for note in acc.notes)
    assert result.events["message"].str.startswith("api: request ok").all()


def test_b5_nul_runs_are_skipped_and_counted(here: Path) -> None:
    path = here / "crashed.log"
    # A NUL region on its own line (preallocated file), and one glued to the start of a line.
    path.write_bytes(
        valid_lines(2).encode() + b"\x00" * 4096 + b"\n" + b"\x00" * 4096 + valid_lines(2, start=2).encode()
    )
    result = read([path])
    acc = acc_of(result, path)
    assert acc.events == 4
    assert acc.rejected == {"nul_bytes": 1}
    assert result.events["message"].tolist() == [f"api: request ok n={i}" for i in range(4)]


def test_b6_control_characters_stay_data_and_are_escaped_on_output(here: Path) -> None:
    agent = "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\ \x1b[2J ok\rFAIL \u202etxt.exe\x07"
    line = f'203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "{agent}"\n'
    (here / "access.log").write_text(line * 3 + line.replace(" 200 ", " 500 ") * 3)
    cli_run("ingest", "access.log", "-o", "events.parquet")
    stored = pd.read_parquet(here / "events.parquet")
    assert (
        stored["fields"].str.contains("\\u001b", regex=False).all()
        | stored["fields"].str.contains("\x1b", regex=False).all()
    )  # stored as data (JSON-escaped in fields)
    (here / "app.log").write_text(f"2024-03-01T10:00:00Z ERROR api: {agent}\n")
    result = cli_run("sniff", "app.log")
    assert "\\x1b]8;;https://evil.example" in result.stdout  # shown escaped, never live
    assert "\\u202e" in result.stdout
    cli_run("build", "access.log", "-o", "out", "--no-images")
    for name in ("postmortem.md", "timeline.html", "incident.json"):
        text = (here / "out" / name).read_text(encoding="utf-8")
        assert "\x1b" not in text, name
        assert "\u202e" not in text, name


def test_b7_crlf_and_lone_cr(here: Path) -> None:
    path = here / "mixed.log"
    lines = valid_lines(3).splitlines()
    path.write_bytes(f"{lines[0]}\r\n{lines[1]}\rtail\n{lines[2]}\r".encode())
    result = read([path])
    messages = result.events["message"].tolist()
    # A lone CR is data, not a line break (line numbers agree with wc -l); outputs escape it.
    assert result.events["line"].tolist() == [1, 2, 3]
    assert not any(m.endswith("\r") for m in messages)  # CRLF and a CR ending the file are removed
    assert messages[1].endswith("n=1\rtail")
    assert acc_of(result, path).lines_read == 3


def test_b8_last_line_without_newline(here: Path) -> None:
    plain = here / "plain.log"
    plain.write_text(valid_lines(3).rstrip("\n"))
    assert acc_of(read([plain]), plain).events == 3
    cut = here / "cut.jsonl"
    cut.write_text('{"@timestamp":"2024-03-01T00:00:00Z","msg":"a"}\n{"@timestamp":"2024-03-01T00:00:01Z","msg":"hel')
    acc = acc_of(read([cut], format_name="json_lines"), cut)
    assert (acc.events, dict(acc.rejected)) == (1, {"json_decode": 1})


def test_b9_empty_file_and_empty_gzip(here: Path) -> None:
    (here / "empty.log").write_bytes(b"")
    (here / "empty.log.gz").write_bytes(gzip.compress(b""))
    result = cli_run("build", "empty.log", "empty.log.gz", "-o", "out", "--no-images", expect_exit=1)
    assert "no events could be read" in result.stderr
    lib = read([here / "empty.log", here / "empty.log.gz"])
    assert [a.events for a in lib.sources] == [0, 0]
    assert [a.lines_read for a in lib.sources] == [0, 0]
    assert len(lib.events) == 0


# -- 6.2 compression and size -----------------------------------------------------------------------------


def test_c1_gzip_detected_by_magic_not_name(here: Path) -> None:
    path = here / "app.log"
    path.write_bytes(gzip.compress(valid_lines(5).encode()))
    acc = acc_of(read([path]), path)
    assert acc.events == 5
    assert "gzip-compressed" in acc.notes


@pytest.mark.parametrize(
    ("name", "compress", "label"),
    [("b.log", bz2.compress, "bz2"), ("x.log", lzma.compress, "xz"), ("z.log", zstandard.compress, "zstd")],
)
def test_c2_bzip2_xz_zstd(here: Path, name: str, compress: Any, label: str) -> None:
    path = here / name
    path.write_bytes(compress(valid_lines(6).encode()))
    acc = acc_of(read([path]), path)
    assert acc.events == 6
    assert f"{label}-compressed" in acc.notes


def test_c3_truncated_gzip_keeps_the_lines_before_the_cut(here: Path) -> None:
    data = valid_lines(2000).encode()
    (here / "cut.log.gz").write_bytes(gzip.compress(data)[:-20])
    lib = read([here / "cut.log.gz"])
    acc = lib.sources[0]
    assert acc.rejected == {"truncated_archive": 1}
    assert acc.events >= 1990
    assert acc.partial
    assert "truncated" in str(acc.partial_reason)
    result = cli_run("ingest", "cut.log.gz", "-o", "e.csv", "--strict", expect_exit=1)
    assert "--strict" in result.stderr


def test_c4_multi_member_gzip(here: Path) -> None:
    path = here / "multi.log.gz"
    path.write_bytes(gzip.compress(valid_lines(3).encode()) + gzip.compress(valid_lines(4, start=3).encode()))
    result = read([path])
    assert acc_of(result, path).events == 7
    assert result.events["line"].tolist() == list(range(1, 8))


def test_c5_gzip_bomb_stops_at_the_decompressed_size_cap(here: Path) -> None:
    path = here / "bomb.log.gz"
    line = VALID.format(0, 0).encode() + b"\n"
    path.write_bytes(gzip.compress(line * ((32 << 20) // len(line)), compresslevel=9))
    cap = 1 << 20
    result = read([path], max_decompressed_bytes=cap)
    acc = acc_of(result, path)
    assert acc.rejected == {"decompressed_size_cap": 1}
    assert acc.partial
    assert "decompressed-size cap" in str(acc.partial_reason)
    assert acc.lines_read * len(line) <= cap + len(line)  # stopped at the cap, not at the end


def test_c6_ten_megabyte_line_between_valid_lines(here: Path) -> None:
    path = here / "long.log"
    with path.open("w") as fh:
        fh.write(valid_lines(1))
        fh.write("2024-03-01T10:00:05Z ERROR api: " + "x" * 10_000_000 + "\n")
        fh.write(valid_lines(1, start=2))
    result = read([path])
    acc = acc_of(result, path)
    assert acc.events == 3  # the neighbours parse; the long line is cut to the cap and kept
    assert any("1 lines longer than 1 MiB cut" in note for note in acc.notes)
    assert acc.truncated_lines == 1
    assert result.events["message"].str.len().max() <= (1 << 20)
    small = read([path], max_line_bytes=4096)
    assert acc_of(small, path).events == 3
    assert small.events["message"].str.len().max() <= 4096


@pytest.mark.timeout(60)
def test_c7_special_files_never_hang_and_others_are_read(here: Path) -> None:
    (here / "good.log").write_text(valid_lines(5))
    (here / "adir").mkdir()
    (here / "adir" / "inner.log").write_text(valid_lines(2))
    os.mkfifo(here / "fifo.log")
    os.symlink(here / "loop.log", here / "loop.log")
    locked = here / "locked.log"
    locked.write_text(valid_lines(1))
    locked.chmod(0)
    inputs = ["good.log", "adir", "fifo.log", "loop.log", "locked.log", "/dev/zero"]
    result = cli_run("ingest", *inputs, "-o", "e.csv")
    out = result.stdout
    assert "fifo.log: is a FIFO (named pipe), not a regular file; skipped" in out
    assert "loop.log: symbolic link loop" in out
    assert "/dev/zero: is a character device" in out
    lib = read([here / p for p in inputs])
    assert sum(a.events for a in lib.sources) == 5 + 2 + (1 if os.access(locked, os.R_OK) else 0)
    skipped = {a.name: a.skipped_reason for a in lib.sources if a.skipped_reason}
    assert len(skipped) >= 3
    if not os.access(locked, os.R_OK):  # root reads anything
        assert "permission denied" in skipped[str(locked)]


# -- 6.3 structure ---------------------------------------------------------------------------------------------


def jsonl(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def good_json(second: int) -> str:
    return json.dumps({"@timestamp": f"2024-03-01T00:00:{second:02d}Z", "level": "info", "msg": f"m{second}"})


TRUNCATED_JSON = '{"@timestamp":"2024-03-01T00:00:00Z","msg":"hel'


def test_s1_truncated_json_line(here: Path) -> None:
    path = jsonl(here / "s1.jsonl", *(good_json(i) for i in range(9)), TRUNCATED_JSON, good_json(10))
    cli_run("ingest", "s1.jsonl", "-o", "e.jsonl", "--rejects", "rejects.csv", "--format", "json_lines")
    rows = rejects_rows(here / "rejects.csv")
    assert [(r["line"], r["reason"]) for r in rows] == [("10", "json_decode")]
    result = read([path], format_name="json_lines")
    assert result.events["line"].tolist() == [*range(1, 10), 11]


def test_s1_truncated_json_line_does_not_change_the_detected_format(here: Path) -> None:
    path = jsonl(here / "s1.jsonl", *(good_json(i % 60) for i in range(99)), TRUNCATED_JSON)
    lines = path.read_text().splitlines()
    lines[5], lines[-1] = lines[-1], lines[5]
    path.write_text("\n".join(lines) + "\n")
    acc = acc_of(read([path]), path)
    assert acc.format == "json_lines"
    assert acc.rejected == {"json_decode": 1}


def test_s2_json_that_is_not_an_object(here: Path) -> None:
    bad = ["[1,2]", '"str"', "null", "1e999", "42"]
    path = jsonl(here / "s2.jsonl", *(good_json(i) for i in range(10)), *bad, good_json(15))
    result = read([path], format_name="json_lines")
    acc = acc_of(result, path)
    assert acc.events == 11
    assert acc.rejected_total == len(bad)
    assert set(acc.rejected) <= {"json_not_object", "json_decode", "unparseable", "no_timestamp"}
    assert result.events["line"].tolist() == [*range(1, 11), 16]


def test_s3_deeply_nested_json(here: Path) -> None:
    path = jsonl(here / "s3.jsonl", good_json(0), good_json(1), "[" * 100_000, '{"a":' * 50_000, good_json(4))
    acc = acc_of(read([path]), path)
    assert acc.events == 3
    assert acc.rejected_total == 2


def test_s4_duplicate_keys_and_huge_numbers(here: Path) -> None:
    path = jsonl(
        here / "s4.jsonl",
        '{"@timestamp":"2024-03-01T00:00:00Z","msg":"first","msg":"last"}',
        '{"@timestamp":"2024-03-01T00:00:01Z","msg":"big","n":123456789012345678901234567890}',
    )
    result = read([path])
    assert result.events["message"].tolist() == ["last", "big"]
    fields = json.loads(result.events["fields"].iloc[1])
    assert str(fields["n"]) == "123456789012345678901234567890"


def test_s5_missing_or_blank_timestamp(here: Path) -> None:
    path = jsonl(here / "s5.jsonl", good_json(0), '{"msg":"x"}', '{"@timestamp":"","msg":"y"}', good_json(3))
    result = read([path])
    acc = acc_of(result, path)
    assert acc.rejected == {"no_timestamp": 2}
    assert (result.events["timestamp"] > pd.Timestamp("2000-01-01", tz="UTC")).all()  # never epoch 0


def test_s6_field_types_vary_across_lines(here: Path) -> None:
    rows = [
        {"@timestamp": f"2024-03-01T00:00:{i:02d}Z", "msg": "req", "status": status}
        for i, status in enumerate(["500", 500, None, "200", 404.0])
    ]
    path = jsonl(here / "s6.jsonl", *(json.dumps(r) for r in rows))
    result = read([path])
    assert str(result.events["http_status"].dtype) == "Int64"
    assert result.events["http_status"].tolist()[:2] == [500, 500]
    assert pd.isna(result.events["http_status"].iloc[2])
    analyzed = build(open_sources([str(path)], TimelineConfig()), TimelineConfig())  # metrics take the mix
    assert analyzed.incident.metrics.requests_total in (None, 5)


# -- 6.4 time ----------------------------------------------------------------------------------------------------


def test_t1_mixed_zones_are_one_instant(here: Path) -> None:
    path = jsonl(
        here / "t1.jsonl",
        *(
            json.dumps({"@timestamp": ts, "msg": "x"})
            for ts in ("2024-03-01T10:00:00Z", "2024-03-01T11:00:00+01:00", "2024-03-01T05:00:00-05:00")
        ),
    )
    times = read([path]).events["timestamp"]
    assert set(times) == {pd.Timestamp("2024-03-01T10:00:00Z")}


def test_t2_naive_times_in_a_zone_and_the_assumption_stated(here: Path) -> None:
    path = here / "naive.log"
    path.write_text("2024-03-01 10:00:00 INFO api: a\n2024-03-01 10:00:01 ERROR api: b\n")
    berlin = read([path], tz="Europe/Berlin")
    assert berlin.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T09:00:00Z")
    assert acc_of(berlin, path).time_zone == "Europe/Berlin"
    utc = read([path])
    assert utc.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T10:00:00Z")
    assert set(utc.events["tz_assumed"]) == {"UTC"}
    draft = load([str(path)]).postmortem()
    data_quality = draft.split("## Data quality", 1)[1]
    assert "UTC" in data_quality


def test_t3_dst_fall_back_resolved_by_line_order(here: Path) -> None:
    path = here / "ny.log"
    wall = ["00:59", "01:30", "01:59", "01:05", "01:30", "02:10"]  # the clock falls back after 01:59 EDT
    path.write_text("".join(f"2024-11-03 {t}:00 INFO app: step {i}\n" for i, t in enumerate(wall)))
    result = read([path], tz="America/New_York")
    utc = ["04:59", "05:30", "05:59", "06:05", "06:30", "07:10"]
    assert result.events["timestamp"].tolist() == [pd.Timestamp(f"2024-11-03T{t}:00Z") for t in utc]
    assert any("repeated DST hour" in note for note in acc_of(result, path).notes)


def test_t4_dst_spring_forward_gap_is_shifted_and_noted(here: Path) -> None:
    path = here / "gap.log"
    path.write_text("2024-03-10 01:59:00 INFO app: before\n2024-03-10 02:30:00 INFO app: in the gap\n")
    result = read([path], tz="America/New_York")
    # Shifted forward by the gap (read with the offset before it: 02:30 EST = 03:30 EDT), and noted.
    assert result.events["timestamp"].iloc[1] == pd.Timestamp("2024-03-10T07:30:00Z")
    assert any("spring-forward gap" in note for note in acc_of(result, path).notes)


@pytest.mark.parametrize("zone", ["IST", "CST", "BST"])
def test_t5_ambiguous_abbreviations_are_refused(here: Path, zone: str) -> None:
    (here / "a.log").write_text(valid_lines(2))
    result = cli_run("ingest", "a.log", "-o", "e.csv", "--tz", zone, expect_exit=1)
    assert "unknown time zone" in result.stderr
    with pytest.raises(ConfigError):
        TimelineConfig(tz=zone)


def test_t6_year_less_syslog_over_new_year(here: Path) -> None:
    path = here / "auth.log"
    path.write_text("Dec 31 23:59:58 host sshd[1]: x\nJan  1 00:00:02 host sshd[1]: y\n")
    result = read([path], year=2024)
    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2024-12-31T23:59:58Z"),
        pd.Timestamp("2025-01-01T00:00:02Z"),
    ]


def test_t7_year_less_feb_29(here: Path) -> None:
    path = here / "leap.log"
    path.write_text("Feb 29 12:00:00 host app[1]: leap\nMar  1 12:00:00 host app[1]: next\n")
    result = read([path], year=2023)
    acc = acc_of(result, path)
    if acc.events == 2:
        assert result.events["timestamp"].iloc[0] == pd.Timestamp("2024-02-29T12:00:00Z")
    else:
        assert acc.rejected == {"bad_timestamp": 1}


def test_t8_single_digit_day_padding(here: Path) -> None:
    path = here / "pad.log"
    path.write_text("Mar  1 00:00:00 host app[1]: padded\n")
    result = read([path], year=2024)
    assert result.events["timestamp"].tolist() == [pd.Timestamp("2024-03-01T00:00:00Z")]


EPOCHS = ("1709251200", "1709251200000", "1709251200000000", "1709251200000000000")


def test_t9_epoch_units_by_magnitude(here: Path) -> None:
    path = jsonl(here / "t9.jsonl", *(f'{{"ts":{v},"msg":"e"}}' for v in EPOCHS))
    # In plain text the generic format takes epoch seconds and milliseconds (longer numbers at the
    # start of a line are too often ids), with fractions.
    text = jsonl(here / "t9.log", *(f"{v} INFO app: e" for v in ("1709251200", "1709251200000", "1709251200.5")))
    expected = pd.Timestamp("2024-03-01T00:00:00Z")
    for source, n in ((path, 4), (text, 3)):
        times = read([source]).events["timestamp"]
        assert len(times) == n
        assert all(abs(t - expected) <= pd.Timedelta("0.5s") for t in times)


def test_t9_epoch_units_mixed_with_a_fraction_in_json(here: Path) -> None:
    path = jsonl(here / "t9.jsonl", *(f'{{"ts":{v},"msg":"e"}}' for v in (*EPOCHS, "1709251200.5")))
    assert len(read([path]).events) == 5


def test_t10_out_of_range_epoch_is_rejected(here: Path) -> None:
    path = jsonl(here / "t10.jsonl", good_json(0), '{"ts":99999999999999999999,"msg":"far"}', '{"ts":-1,"msg":"neg"}')
    result = read([path])
    acc = acc_of(result, path)
    assert acc.events + acc.rejected_total == 3
    assert acc.rejected_total >= 1
    assert set(acc.rejected) <= {"timestamp_out_of_range", "bad_timestamp", "no_timestamp"}
    assert (
        result.events["timestamp"].between(pd.Timestamp("1969-12-31", tz="UTC"), pd.Timestamp("2262", tz="UTC")).all()
    )


def test_t11_nanosecond_strings_keep_their_precision(here: Path) -> None:
    path = jsonl(here / "t11.jsonl", json.dumps({"@timestamp": "2024-03-01T00:00:00.123456789Z", "msg": "ns"}))
    ts = read([path]).events["timestamp"].iloc[0]
    assert ts.nanosecond == 789
    assert ts == pd.Timestamp("2024-03-01T00:00:00.123456789Z")


def test_t12_out_of_order_lines_are_sorted_stably_and_counted(here: Path) -> None:
    lines = valid_lines(50).splitlines()
    lines[10], lines[40] = lines[40], lines[10]
    path = here / "shuffled.log"
    path.write_text("\n".join(lines) + "\n")
    result = read([path])
    assert result.events["timestamp"].is_monotonic_increasing
    assert acc_of(result, path).out_of_order >= 1


def test_t13_clock_skew_is_not_silently_corrected_and_offset_corrects_it(here: Path) -> None:
    (here / "a.log").write_text("2024-03-01T10:00:00Z INFO a: ping\n")
    (here / "b.log").write_text("2024-03-01T10:05:00Z INFO b: pong\n")  # host B runs 5 minutes ahead
    result = read([here / "a.log", here / "b.log"])
    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01T10:00:00Z"),
        pd.Timestamp("2024-03-01T10:05:00Z"),
    ]
    assert result.events["ts_raw"].tolist() == ["2024-03-01T10:00:00Z", "2024-03-01T10:05:00Z"]
    corrected = read([here / "a.log", here / "b.log"], source_offsets=((f"{here}/b.log", "-5min"),))
    assert corrected.events["timestamp"].tolist() == [pd.Timestamp("2024-03-01T10:00:00Z")] * 2
    assert corrected.events["ts_raw"].tolist() == ["2024-03-01T10:00:00Z", "2024-03-01T10:05:00Z"]


# -- 6.5 duplicates -------------------------------------------------------------------------------------------


def test_d1_same_event_in_a_file_and_in_elasticsearch(here: Path) -> None:
    line = {"@timestamp": "2024-03-01T10:00:00Z", "message": "payment failed", "service.name": "api"}
    jsonl(here / "app.jsonl", json.dumps(line))
    with EsStub(emulate_major=9) as stub:
        stub.add_documents("logs-app", [line])
        config = TimelineConfig()
        es = ElasticsearchConnector(EsSettings(url=stub.url, index="logs-*", mode="documents"), config)
        result = ingest([*open_sources([str(here / "app.jsonl")], config), es], config)
    assert_balanced(result.sources)
    # Merged once: the file's copy (read first) keeps its provenance; the cluster's is counted.
    assert len(result.events) == 1
    assert result.events["source"].iloc[0] == str(here / "app.jsonl")
    es_acc = next(a for a in result.sources if a.name.startswith("es:"))
    assert es_acc.duplicates == 1
    assert any("merged" in note for note in es_acc.notes)


def test_d1_identical_events_within_one_source_with_a_cluster_beside_are_kept(here: Path) -> None:
    line = json.dumps({"@timestamp": "2024-03-01T10:00:00Z", "message": "401 user=admin", "service.name": "api"})
    jsonl(here / "app.jsonl", line, line, line)
    with EsStub(emulate_major=9) as stub:
        stub.add_documents("logs-app", [{"@timestamp": "2024-03-01T10:05:00Z", "message": "other"}])
        config = TimelineConfig()
        es = ElasticsearchConnector(EsSettings(url=stub.url, index="logs-*", mode="documents"), config)
        result = ingest([*open_sources([str(here / "app.jsonl")], config), es], config)
    assert len(result.events) == 4
    assert all(a.duplicates == 0 for a in result.sources)


def test_d2_one_file_named_twice_is_read_once(here: Path) -> None:
    (here / "app.log").write_text(valid_lines(5))
    result = read([here / "app.log", here / "app.log", here])
    assert len(result.sources) == 1
    assert len(result.events) == 5


def test_d3_identical_repeats_are_kept(here: Path) -> None:
    line = "2024-03-01T10:00:00Z WARNING auth: 401 user=admin\n"
    (here / "auth.log").write_text(line * 5000)
    result = read([here / "auth.log"])
    assert len(result.events) == 5000
    assert acc_of(result, here / "auth.log").duplicates == 0


# -- 6.6 Elasticsearch faults (esstub) -------------------------------------------------------------------------

WINDOW = ("2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z")


def es_docs(n: int = 12, *, same_time: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "@timestamp": "2024-03-01T10:00:00Z" if same_time else f"2024-03-01T10:0{i // 6}:{i % 6 * 10:02d}Z",
            "message": f"doc {i}",
            "service": {"name": "api"},
            "log": {"level": "error" if i % 3 == 0 else "info"},
        }
        for i in range(n)
    ]


@pytest.fixture
def es() -> Iterator[EsStub]:
    with EsStub(emulate_major=8) as stub:
        stub.add_documents("logs-app", es_docs())
        yield stub


def es_read(stub: EsStub, **overrides: Any) -> tuple[IngestResult, ElasticsearchConnector]:
    settings = {
        "url": stub.url,
        "index": "logs-*",
        "mode": "documents",
        "page_size": 5,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "request_timeout": 2.0,
        **overrides,
    }
    config = TimelineConfig(start=pd.Timestamp(WINDOW[0]), end=pd.Timestamp(WINDOW[1]))
    connector = ElasticsearchConnector(EsSettings(**settings), config)
    result = ingest([connector], config)
    assert_balanced(result.sources)
    return result, connector


def es_cli(stub: EsStub, *extra: str, expect_exit: int | None = 0) -> Result:
    return cli_run(
        "ingest", "--es", stub.url, "--start", WINDOW[0], "--end", WINDOW[1], "-o", "es.csv", *extra,
        expect_exit=expect_exit,
    )  # fmt: skip


def test_e1_not_elasticsearch(here: Path) -> None:
    with EsStub(product_header=False) as stub:
        stub.add_documents("logs-app", es_docs())
        result = es_cli(stub, expect_exit=1)
    assert "server is not Elasticsearch (OpenSearch?" in result.stderr or "is not Elasticsearch" in result.stdout


def test_e2_server_too_old_for_the_client_names_the_fix(here: Path) -> None:
    with EsStub(emulate_major=10) as stub:
        stub.add_documents("logs-app", es_docs())
        result = es_cli(stub, expect_exit=1)
    assert "pip install" in result.stdout + result.stderr


def test_e3_429_three_times_then_ok(es: EsStub) -> None:
    es.add_fault("search", "status", status=429, first_call=3, times=3)
    result, connector = es_read(es)
    acc = connector.accounting()[0]
    assert len(result.events) == 12
    assert any(note.startswith("retried") for note in acc.notes)
    assert not acc.partial
    assert es.open_contexts() == 0


def test_e4_503_forever_gives_up_and_closes_the_pit(here: Path, es: EsStub) -> None:
    es.add_fault("search", "status", status=503, first_call=2, times=None)
    _result, connector = es_read(es, max_attempts=3)
    acc = connector.accounting()[0]
    assert acc.partial  # a clean failure, recorded; the run goes on
    assert "503" in str(acc.partial_reason)
    assert len(es.calls("pit_close", "DELETE")) == 1
    assert es.open_contexts() == 0


def test_e5_slow_answer_times_out_and_is_retried(es: EsStub) -> None:
    es.add_fault("search", "delay", delay=1.0, first_call=2)
    result, connector = es_read(es, request_timeout=0.3)
    assert len(result.events) == 12
    assert any("timeout" in note for note in connector.accounting()[0].notes)


@pytest.mark.parametrize("action", ["drop", "truncate"])
def test_e6_dropped_or_truncated_answer_is_retried(es: EsStub, action: str) -> None:
    es.add_fault("search", action, first_call=2)
    result, _ = es_read(es)
    assert sorted(result.events["message"]) == sorted(d["message"] for d in es_docs())


def test_e7_expired_pit_is_reopened_without_duplicates(es: EsStub) -> None:
    es.add_fault("search", "pit_expired", first_call=2)
    result, _connector = es_read(es)
    assert sorted(result.events["message"]) == sorted(d["message"] for d in es_docs())
    assert len(es.calls("pit_open")) == 2


@pytest.mark.parametrize("action", ["partial_shards", "timed_out"])
def test_e8_incomplete_answer_marks_the_source_partial(here: Path, es: EsStub, action: str) -> None:
    es.add_fault("search", action, first_call=2)
    result, connector = es_read(es)
    assert connector.accounting()[0].partial
    assert len(result.events) == 12
    es.add_fault("search", action, first_call=len(es.calls("search")) + 2)
    strict = es_cli(es, "--es-mode", "documents", "--es-page-size", "5", "--strict", expect_exit=1)
    assert "--strict" in strict.stderr


def test_e9_identical_timestamps_across_a_page_boundary() -> None:
    with EsStub(emulate_major=9) as stub:
        stub.add_documents("logs-app", es_docs(3, same_time=True))
        result, _ = es_read(stub, page_size=2)
    assert sorted(result.events["message"]) == ["doc 0", "doc 1", "doc 2"]


def test_e10_no_exact_total_is_claimed(es: EsStub) -> None:
    result, _ = es_read(es)
    searches = es.calls("search")
    assert all(s.body.get("track_total_hits") is False for s in searches)
    assert len(result.events) == 12


def test_e11_documents_without_timestamp_are_counted_not_plotted() -> None:
    with EsStub(emulate_major=9) as stub:
        stub.add_documents("logs-app", [*es_docs(4), {"message": "untimed", "service": {"name": "api"}}])
        result, connector = es_read(stub)
    acc = connector.accounting()[0]
    assert len(result.events) == 4
    assert (result.events["timestamp"] > pd.Timestamp("2000-01-01", tz="UTC")).all()
    assert acc.rejected.get("no_timestamp", 0) <= 1


@pytest.mark.parametrize(("action", "status"), [("unauthorized", "401"), ("forbidden", "403")])
def test_e12_auth_errors_are_clear_and_never_echo_the_credential(here: Path, action: str, status: str) -> None:
    with EsStub(emulate_major=8) as stub:
        stub.add_documents("logs-app", es_docs())
        stub.add_fault("*", action, times=None)
        result = es_cli(stub, "--es-username", "elastic", "--es-password", "hunter2-secret", expect_exit=1)
    out = result.stdout + result.stderr
    assert status in out
    assert "hunter2-secret" not in out


def test_e13_huge_and_non_object_sources() -> None:
    with EsStub(emulate_major=9) as stub:
        huge = {"@timestamp": "2024-03-01T10:00:01Z", "message": "y" * 5_000_000, "service": {"name": "api"}}
        stub.add_documents("logs-app", [*es_docs(2), huge])
        result, connector = es_read(stub)
    assert len(result.events) == 3
    assert result.events["message"].str.len().max() < 5_000_000
    assert any("cut" in note for note in connector.accounting()[0].notes)


def test_e14_deprecation_warning_surfaced_once(es: EsStub) -> None:
    es.add_fault("search", "warning", times=None)
    result, connector = es_read(es)
    notes = connector.accounting()[0].notes
    assert len(result.events) == 12
    assert len([n for n in notes if "deprecated" in n]) == 1


# -- resource limits and --strict -------------------------------------------------------------------------------


def test_event_cap_is_counted_and_marks_the_run_partial(here: Path) -> None:
    (here / "a.log").write_text(valid_lines(30))
    (here / "b.log").write_text(valid_lines(30, start=30))
    result = read([here / "a.log", here / "b.log"], max_events=40)
    assert len(result.events) == 40
    caps = {a.name: a.rejected.get("event_cap", 0) for a in result.sources}
    assert sum(caps.values()) == 20
    assert all(a.partial for a in result.sources if a.rejected.get("event_cap"))
    cli = cli_run("ingest", "a.log", "b.log", "-o", "e.csv", "--max-events", "40")
    assert "event_cap=20" in cli.stdout
    assert "stopped at the run's cap of 40 events" in cli.stdout
    assert len(pd.read_csv(here / "e.csv")) == 40


def test_strict_exit_codes(here: Path) -> None:
    (here / "clean.log").write_text(valid_lines(5))
    (here / "dirty.log").write_text("not a log line at all\n" + valid_lines(5))
    cli_run("ingest", "clean.log", "-o", "e.csv", "--strict", expect_exit=0)
    cli_run("ingest", "dirty.log", "-o", "e.csv", expect_exit=0)
    failed = cli_run("ingest", "clean.log", "dirty.log", "-o", "e.csv", "--strict", expect_exit=1)
    assert "dirty.log" in failed.stderr
    assert "clean.log" not in failed.stderr
    cli_run("build", "dirty.log", "-o", "out2", "--no-images", "--strict", expect_exit=1)
    assert (here / "e.csv").exists()  # the outputs are still written before the non-zero exit


def test_strict_ignores_skips_by_rule_but_not_failures(here: Path) -> None:
    """Own outputs, documentation and files outside the window are skipped by rule: --strict passes them.

    An unreadable file is a failure: --strict still exits 1 on it.
    """
    logs = here / "logs"
    logs.mkdir()
    (logs / "clean.log").write_text(valid_lines(5))
    (logs / "README.md").write_text("# how these logs were collected\n")
    old = [f"2019-01-01T00:00:{s:02d}Z INFO old line {s}" for s in range(60)]
    (logs / "old.log").write_text("\n".join(old) + "\n")
    window = ("--start", "2024-01-01T00:00:00Z", "--end", "2030-01-01T00:00:00Z")
    first = cli_run("build", "logs", "-o", "logs/out", "--no-images", "--strict", *window, expect_exit=0)
    assert "old.log" in first.stdout  # listed in the summary, with its lines outside the window
    again = cli_run("build", "logs", "-o", "logs/out", "--no-images", "--strict", *window, expect_exit=0)
    assert "not read back as input" in again.stdout
    (logs / "locked.log").write_text(valid_lines(5))
    (logs / "locked.log").chmod(0)
    if os.access(logs / "locked.log", os.R_OK):
        (logs / "locked.log").unlink()
        (logs / "loop.log").symlink_to(logs / "loop.log")  # unreadable as root too: a symbolic link loop
    failed = cli_run("build", "logs", "-o", "logs/out", "--no-images", "--strict", *window, expect_exit=1)
    assert "--strict" in failed.stderr


def test_nothing_readable_is_exit_one_with_one_line(here: Path) -> None:
    (here / "only.txt").write_bytes(b"\x00\x01\x02 nothing here\n")
    result = cli_run("ingest", "only.txt", "-o", "e.csv", expect_exit=1)
    assert "no events could be read" in result.stderr
    missing = cli_run("ingest", "nope.log", "-o", "e.csv", expect_exit=1)
    assert "no such file or directory" in missing.stderr


def test_terminal_safety_of_file_names_and_errors(here: Path) -> None:
    name = "evil\x1b[2J\u202e.log"
    (here / name).write_text(valid_lines(2) + "garbage \x1b]0;pwned\x07 line\n")
    ingest_out = cli_run("ingest", name, "-o", "e.csv")
    assert "evil\\x1b[2J\\u202e.log" in ingest_out.stdout
    sniff_out = cli_run("sniff", name)
    assert "\\x1b" in sniff_out.stdout
    missing = cli_run("ingest", "missing\x1b]0;t\x07.log", "-o", "e.csv", expect_exit=1)
    assert "\\x1b" in missing.stderr
    bad_zone = cli_run("ingest", name, "-o", "e.csv", "--tz", "Mars/\x1b[31mRed", expect_exit=1)
    assert "\\x1b" in bad_zone.stderr


def test_rejects_file_is_private_redacted_and_escaped(here: Path) -> None:
    (here / "a.log").write_text("junk password=hunter2 \x1b[2J 4111111111111111\n" + valid_lines(2))
    cli_run("ingest", "a.log", "-o", "e.csv", "--rejects", "rejects.csv")
    path = here / "rejects.csv"
    assert (path.stat().st_mode & 0o777) == 0o600
    text = path.read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert "4111111111111111" not in text
    assert "\x1b" not in text
    (row,) = rejects_rows(path)
    assert (row["source"], row["line"], row["reason"]) == ("a.log", "1", "orphan_continuation")


def test_build_keeps_the_invariant_for_every_source_of_a_messy_directory(here: Path) -> None:
    messy = here / "messy"
    messy.mkdir()
    (messy / "ok.log").write_text(valid_lines(40))
    (messy / "trace.log").write_text(
        "2024-03-01 10:00:00,000 ERROR [main] com.example.App: boom\njava.lang.IllegalStateException: x\n"
        "\tat com.example.App.run(App.java:1)\n\n\tat orphan\n"
    )
    (messy / "bad.jsonl").write_text(good_json(1) + "\n{oops\n")
    (messy / "cut.log.gz").write_bytes(gzip.compress(valid_lines(50).encode())[:-30])
    (messy / "bin.dat").write_bytes(random.Random(7).randbytes(4096))
    config = TimelineConfig()
    result = build(open_sources([str(messy)], config), config)
    assert_balanced(result.sources)
    assert len(result.sources) == 5
    assert result.events is not None
    assert sum(a.events for a in result.sources) == len(result.events)
    by_name = {a.name.rsplit("/", 1)[-1]: a for a in result.sources}
    assert {name for name, a in by_name.items() if a.rejected_total} >= {"bad.jsonl", "cut.log.gz", "bin.dat"}
    assert by_name["trace.log"].continuation_lines >= 3  # the stack trace is folded, not rejected


def test_config_guards_resource_limits() -> None:
    with pytest.raises(ConfigError):
        TimelineConfig(max_events=0)
    with pytest.raises(ConfigError):
        TimelineConfig(max_line_bytes=1)
    assert dataclasses.replace(TimelineConfig(), max_line_bytes=64).max_line_bytes == 64
    assert sys.getrecursionlimit() > 0


# -- the table in docs/robustness.md stays true --------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
CHECKLIST_ROWS = (
    [f"B{i}" for i in range(1, 10)]
    + [f"C{i}" for i in range(1, 8)]
    + [f"S{i}" for i in range(1, 7)]
    + [f"T{i}" for i in range(1, 14)]
    + [f"D{i}" for i in range(1, 4)]
    + [f"E{i}" for i in range(1, 15)]
    + ["O1", "O2", "O3"]
)
# The cases of issue 17 (nothing lost, nothing hangs, cost bounded by what the logs hold).
ISSUE_17_ROWS = (
    [f"A{i}" for i in range(1, 12)]  # archives
    + [f"W{i}" for i in range(1, 9)]  # writing outputs
    + ["R1", "R2", "R3"]  # the reason reaches the user
    + [f"P{i}" for i in range(1, 10)]  # the window never drops data inside it
    + [f"N{i}" for i in range(1, 5)]  # own outputs never read back
    + ["G1", "G2", "G3", "J1", "J2", "J3", "J4"]  # damage never contagious; no recursion
    + ["U1", "U2", "U3", "U4", "O4", "O5"]  # user formats in linear time; every output escaped, sniff redacted
    + ["K1", "K2", "K3", "K4"]  # cost follows size
)


def test_docs_table_names_every_checklist_row_and_only_real_tests() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([A-Z]\d+)'? \|(.*)$", text, flags=re.MULTILINE))
    assert set(rows) >= set(CHECKLIST_ROWS) | set(ISSUE_17_ROWS)
    # A test the doc names may live in any test module (escaping, redaction, the draft's citations).
    sources = "".join(path.read_text(encoding="utf-8") for path in Path(__file__).parent.rglob("test_*.py"))
    defined = set(re.findall(r"^(?:async )?def (test_\w+)", sources, flags=re.MULTILINE))

    def real(name: str) -> bool:
        # Names ending in "_" in the doc ("test_c3_...") are prefixes of a test defined here.
        return name in defined or any(d.startswith(name.rstrip("_")) for d in defined)

    named = set(re.findall(r"`(?:[\w./]+::)?(test_\w+)", text))
    assert {n for n in named if not real(n)} == set()
    # Every row names at least one test, in its last cell, so each case stated is a case run.
    untested = {row for row, cells in rows.items() if not re.search(r"test_\w+", cells.rsplit("|", 2)[-2])}
    assert untested == set()
    this_module = set(re.findall(r"^def (test_[bcstde]\d+\w*)", Path(__file__).read_text(), flags=re.MULTILINE))
    assert this_module <= named  # every checklist test is in the table


# -- issue 17, items 2 and 4: damage is counted, never contagious; no recursion on input ----------------------
# (every format damaged at 1/15/40 %: tests/connectors/test_log_formats.py::test_damaged_lines_are_counted_...)


def json_event(second: int, level: str = "error") -> str:
    return json.dumps(
        {"@timestamp": f"2024-03-01T10:00:{second:02d}Z", "level": level, "service": "api", "msg": f"request {second}"}
    )


def test_damage_three_of_twenty_json_lines_cut_off_keeps_json_lines(here: Path) -> None:
    lines = [json_event(i) for i in range(20)]
    for i in (3, 9, 15):
        lines[i] = lines[i][:60]  # cut after the timestamp: the generic fallback would find one in every line
    jsonl(here / "cut.jsonl", *lines)
    result = cli_run("ingest", "cut.jsonl", "-o", "e.jsonl", "--rejects", "rejects.csv")
    assert "cut.jsonl: json_lines: 17 of 20 sample lines match" in result.stdout
    assert [(r["line"], r["reason"]) for r in rejects_rows(here / "rejects.csv")] == [
        ("4", "json_decode"),
        ("10", "json_decode"),
        ("16", "json_decode"),
    ]
    events = [json.loads(line) for line in (here / "e.jsonl").read_text().splitlines()]
    assert len(events) == 17
    assert {(e["level"], e["service"]) for e in events} == {("error", "api")}  # fields kept: not generic text
    acc = acc_of(read([here / "cut.jsonl"]), here / "cut.jsonl")
    assert (acc.format, acc.events, acc.rejected) == ("json_lines", 17, {"json_decode": 3})


def test_damage_in_a_multi_line_log_is_rejected_and_stack_traces_still_fold(here: Path) -> None:
    head = "2024-03-01 10:00:{:02d}.000  ERROR 4242 --- [main] c.b.Pay : charge {} failed"
    trace = ["java.lang.IllegalStateException: gateway timeout", "\tat c.b.Pay.charge(Pay.java:57)"]
    lines: list[str] = []
    for i in range(30):
        lines += [head.format(i, i), *trace]
    lines[3 * 5] = lines[3 * 5][:40]  # an event start cut off: damage, not part of the event before it
    lines[3 * 20] = "2024-03-01 10:00:20 something else entirely"  # another layout: damage
    (here / "app.log").write_text("\n".join(lines) + "\n")
    cli_run("ingest", "app.log", "-o", "e.jsonl", "--rejects", "rejects.csv")
    rows = rejects_rows(here / "rejects.csv")
    # The damaged heads are rejected; their stack-trace lines have no event to join and are counted too.
    assert [(r["line"], r["reason"]) for r in rows] == [
        ("16", "unparseable"),
        ("17", "orphan_continuation"),
        ("18", "orphan_continuation"),
        ("61", "unparseable"),
        ("62", "orphan_continuation"),
        ("63", "orphan_continuation"),
    ]
    acc = acc_of(read([here / "app.log"]), here / "app.log")
    assert (acc.format, acc.events, acc.continuation_lines) == ("spring_boot", 28, 56)
    events = [json.loads(line) for line in (here / "e.jsonl").read_text().splitlines()]
    assert all(e["message"].endswith("(Pay.java:57)") for e in events)  # every trace folded into its event


ALERT_PAYLOAD: dict[str, Any] = {
    "version": "4",
    "status": "firing",
    "receiver": "pager",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2024-03-01T10:00:03Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "abc123",
        }
    ],
}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_deep_json_is_rejected_too_deep_and_the_run_goes_on(here: Path) -> None:
    deep = json.dumps({"@timestamp": "2024-03-01T10:00:05Z", "msg": "deep"})[:-1] + ',"x":' + nested(450) + "}"
    # One file on pyarrow's fast path, one with a malformed line beside (the line-by-line path), and the
    # issue's worst cases: 5,000 objects and 100,000 arrays.
    jsonl(here / "fast.jsonl", json_event(0), deep, json_event(2))
    good = [json_event(i) for i in range(4)]
    jsonl(here / "slow.jsonl", *good, deep, TRUNCATED_JSON, "[" * 100_000, nested(5000), json_event(9))
    docker = json.dumps({"log": nested(500) + "\n", "stream": "stdout", "time": "2024-03-01T10:00:07.5Z"})
    jsonl(
        here / "docker.log",
        *(json.dumps({"log": "ok\n", "stream": "stdout", "time": f"2024-03-01T10:00:0{i}Z"}) for i in range(3)),
        docker,
    )
    alert = json.loads(json.dumps(ALERT_PAYLOAD))
    alert["deep"] = json.loads(nested(60))  # deep but within the limit: read
    (here / "ok_alert.json").write_text(json.dumps(alert))
    (here / "deep_alert.ndjson").write_text(
        json.dumps(ALERT_PAYLOAD) + "\n" + json.dumps(ALERT_PAYLOAD)[:-1] + ',"deep":' + nested(5000) + "}\n"
    )
    names = ["fast.jsonl", "slow.jsonl", "docker.log", "ok_alert.json", "deep_alert.ndjson"]
    cli_run("ingest", *names, "-o", "e.jsonl", "--rejects", "rejects.csv")
    reasons = {(r["source"], r["line"]): r["reason"] for r in rejects_rows(here / "rejects.csv")}
    assert reasons == {
        ("fast.jsonl", "2"): "too_deep",
        ("slow.jsonl", "5"): "too_deep",
        ("slow.jsonl", "6"): "json_decode",
        ("slow.jsonl", "7"): "too_deep",
        ("slow.jsonl", "8"): "too_deep",
        ("deep_alert.ndjson", "2"): "too_deep",
    }
    result = read([here / n for n in names])
    events = {n: acc_of(result, here / n).events for n in names}
    assert events == {"fast.jsonl": 2, "slow.jsonl": 5, "docker.log": 4, "ok_alert.json": 1, "deep_alert.ndjson": 1}
    # The docker line keeps its runtime time and text; its inner JSON is too deep to read as fields.
    docker_event = result.events[result.events["source"] == str(here / "docker.log")].iloc[-1]
    assert docker_event["timestamp"] == pd.Timestamp("2024-03-01T10:00:07.5Z")


# -- issue 17 item 9: cost linear in size, whatever the content (helper 7) -------------------------------


def _ecs(second: int, user: str, message: str, level: str = "warn") -> str:
    stamp = f"2024-03-01T10:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
    return json.dumps({"@timestamp": stamp, "log.level": level, "user.name": user, "message": message})


def test_k1_thousands_of_distinct_users_are_pseudonymized_everywhere_in_linear_time(here: Path) -> None:
    # A credential-stuffing shape: every line names one of 3,000 distinct accounts, in the user field
    # and in the message. The former redaction ran one regex alternation per 1,000 names over every
    # value, and a Python alternation of all names over each flagged message.
    rng = random.Random(9)
    users = [f"{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz', k=7))}{i}" for i in range(3000)]
    lines = [_ecs(i // 2, u, f"login failed for {u}: bad password") for i, u in enumerate(users)]
    lines += [_ecs(1600 + i, users[i], f"login ok for {users[i]}", "info") for i in range(0, 3000, 300)]
    jsonl(here / "auth.jsonl", *lines)
    cli_run("build", "auth.jsonl", "-o", "out")
    texts = {name: (here / "out" / name).read_text() for name in ("postmortem.md", "incident.json")}
    events = pd.read_parquet(here / "out" / "events.parquet")
    assert len(events) == 3010
    shared = "\n".join(texts.values()) + "\n".join(events["message"].astype(str))
    assert not [u for u in users if re.search(rf"\b{re.escape(u)}\b", shared)]
    # Each message names its event's account by the same pseudonym as the user column.
    named = events["message"].str.extract(r"for (user_[0-9a-f]{8})")[0]
    assert named.notna().all()
    assert (named == events["user"]).all()
    assert events["user"].nunique() == 3000


def test_k2_many_small_files_each_keep_their_exact_accounting(here: Path) -> None:
    # 120 small files in 4 folders; every tenth holds two events and a cut-off line: per-file
    # sources, line numbers and rejects stay exact.
    for i in range(120):
        folder = here / "logs" / f"part{i // 30}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [_ecs(i, f"u{i}", f"request {i} served")]
        if i % 10 == 0:
            lines += [_ecs(i, f"u{i}", f"request {i} retried"), '{"@timestamp": "2024-03-01T10:00']
        (folder / f"job-{i:04d}.jsonl").write_text("\n".join(lines) + "\n")
    result = cli_run("ingest", "logs", "-o", "events.parquet", "--rejects", "rejects.csv")
    events = pd.read_parquet(here / "events.parquet")
    assert len(events) == 132
    per_file = events.groupby(events["source"].str.extract(r"job-(\d+)")[0].astype(int))["line"].apply(list)
    assert per_file.to_dict() == {i: [1, 2] if i % 10 == 0 else [1] for i in range(120)}
    rows = rejects_rows(here / "rejects.csv")
    assert {(r["source"], r["line"]) for r in rows} == {
        (os.path.join("logs", f"part{i // 30}", f"job-{i:04d}.jsonl"), "3") for i in range(0, 120, 10)
    }
    assert "total: 144 lines read, 132 events, 12 rejected" in result.stdout


def test_k3_the_progress_bar_counts_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from pmtimeline.cli import progress_bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    update, close = progress_bar(3)
    for name in ("a.log", "a.log", "b.log"):
        update(name, 0, 10)
    close()
    assert "file 2/3" in screen.getvalue()
    assert "30 events" in screen.getvalue()
