"""LogFileConnector over files written here and over the public Loghub samples.

Every read goes through :func:`read_all`, which asserts the accounting invariant and the event
schema. Expected values come from the text of the files written by each test (or, for Loghub, from
the structured CSVs published with the logs), never from the code under test.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig, parse_time
from pmtimeline.connectors.log_formats import LOG_FORMATS, get_format
from pmtimeline.connectors.logfile import EventBudget, LogFileConnector, service_for, service_from_path, zone_for
from pmtimeline.errors import SourceError, UnknownFormatError
from pmtimeline.schema import EVENT_COLUMNS, validate_events

CONFIG = TimelineConfig()

JAVA = """\
2024-03-01 10:00:00,123 INFO  [main] com.example.App: started
2024-03-01 10:00:01,000 ERROR [worker-1] com.example.Db: query failed
java.lang.IllegalStateException: boom
\tat com.example.Db.query(Db.java:42)
\tat com.example.App.main(App.java:10)
Caused by: java.io.IOException: timeout
\t... 2 more

2024-03-01 10:00:02,500 WARN  [main] com.example.App: slow
"""
JAVA_TRACE = (
    "query failed\njava.lang.IllegalStateException: boom\n\tat com.example.Db.query(Db.java:42)\n"
    "\tat com.example.App.main(App.java:10)\nCaused by: java.io.IOException: timeout\n\t... 2 more"
)

PYTHON = """\
2024-03-01 10:00:00,123 - app.worker - INFO - starting
2024-03-01 10:00:01,500 - app.worker - ERROR - job failed
Traceback (most recent call last):
  File "/srv/app/worker.py", line 10, in run
    do()
ZeroDivisionError: division by zero
2024-03-01 10:00:02,000 - app.worker - WARNING - retrying
"""
PYTHON_TRACE = (
    "job failed\nTraceback (most recent call last):\n"
    '  File "/srv/app/worker.py", line 10, in run\n    do()\nZeroDivisionError: division by zero'
)

ACCESS = """\
10.0.0.1 - alice [01/Mar/2024:10:00:00 +0100] "GET /api/x?id=1 HTTP/1.1" 500 123 "-" "curl/8.0"
garbage line
10.0.0.2 - - [01/Mar/2024:10:00:01 +0100] "POST /login HTTP/1.1" 200 5 "-" "Mozilla"
"""


def write(directory: Path, name: str, content: str | bytes) -> str:
    path = directory / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return str(path)


def read_all(connector: LogFileConnector) -> pd.DataFrame:
    """All events of a connector, after checking the schema of each frame and the accounting."""
    frames = list(connector.read())
    for frame in frames:
        assert tuple(frame.columns) == EVENT_COLUMNS
        validate_events(frame)
    (acc,) = connector.accounting()
    accounted = acc.event_lines + acc.continuation_lines + acc.rejected_total + acc.outside_window
    assert acc.lines_read == accounted, acc.to_dict()
    assert acc.events == acc.event_lines
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(EVENT_COLUMNS))
    assert len(events) == acc.events
    return events


def count_lines(text: str) -> int:
    return len(text.splitlines())


@pytest.mark.parametrize("chunk_lines", [1, 4, 250_000])
def test_java_stack_trace_folded_across_chunk_boundaries(tmp_path: Path, chunk_lines: int) -> None:
    path = write(tmp_path, "app.log", JAVA)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, chunk_lines=chunk_lines))
    events = read_all(connector)
    assert events["line"].tolist() == [1, 2, 9]
    assert events["message"].tolist() == ["started", JAVA_TRACE, "slow"]
    assert events["level"].tolist() == ["info", "error", "warning"]
    assert events["logger"].tolist() == ["com.example.App", "com.example.Db", "com.example.App"]
    # app.log names no application: the service is the file's directory.
    assert events["service"].tolist() == [tmp_path.name] * 3
    assert events["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01T10:00:00.123Z"),
        pd.Timestamp("2024-03-01T10:00:01Z"),
        pd.Timestamp("2024-03-01T10:00:02.5Z"),
    ]
    assert events["ts_raw"].tolist() == [
        "2024-03-01 10:00:00,123",
        "2024-03-01 10:00:01,000",
        "2024-03-01 10:00:02,500",
    ]
    assert set(events["tz_assumed"]) == {"UTC"}
    assert set(events["source"]) == {path}
    (acc,) = connector.accounting()
    assert acc.format == "log4j"
    assert acc.lines_read == count_lines(JAVA)
    assert acc.continuation_lines == 6  # five trace lines and the blank line before the next head
    assert acc.rejected_total == 0


@pytest.mark.parametrize("chunk_lines", [2, 3, 5])
def test_held_back_events_leave_with_the_next_block(tmp_path: Path, chunk_lines: int) -> None:
    """The event held back at a block's end (its stack trace may go on in the next block) is
    yielded with the next block's events, and the last block holds none back: no chunk is a lone
    held-back event, so there are never more chunks than blocks."""
    text = JAVA * 7
    path = write(tmp_path, "app.log", text)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, chunk_lines=chunk_lines))
    frames = list(connector.read())
    blocks = -(-count_lines(text) // chunk_lines)
    assert len(frames) <= blocks
    events = pd.concat(frames, ignore_index=True)
    assert events["message"].tolist() == ["started", JAVA_TRACE, "slow"] * 7
    assert events["line"].tolist() == [n + 9 * k for k in range(7) for n in (1, 2, 9)]
    (acc,) = connector.accounting()
    assert acc.continuation_lines == 6 * 7
    assert acc.lines_read == acc.event_lines + acc.continuation_lines


@pytest.mark.parametrize("chunk_lines", [3, 250_000])
def test_python_traceback_folded(tmp_path: Path, chunk_lines: int) -> None:
    path = write(tmp_path, "worker.log", PYTHON)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, chunk_lines=chunk_lines))
    events = read_all(connector)
    assert connector.accounting()[0].format == "python_logging"
    assert events["message"].tolist() == ["starting", PYTHON_TRACE, "retrying"]
    assert events["line"].tolist() == [1, 2, 7]
    assert events["severity_number"].tolist() == [9, 17, 13]
    assert connector.accounting()[0].continuation_lines == 4


def test_access_log_with_offsets_and_an_unparseable_line(tmp_path: Path) -> None:
    path = write(tmp_path, "access.log", ACCESS)
    connector = LogFileConnector(path, CONFIG)
    events = read_all(connector)
    (acc,) = connector.accounting()
    assert acc.format == "access_combined"
    assert dict(acc.rejected) == {"unparseable": 1}
    row = events.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2024-03-01T09:00:00Z")  # 10:00 +0100
    assert pd.isna(row["tz_assumed"])  # the text had its own offset
    assert (row["http_status"], row["http_method"], row["url_path"]) == (500, "GET", "/api/x?id=1")
    assert (row["client_ip"], row["user"], row["kind"], row["line"]) == ("10.0.0.1", "alice", "request", 1)
    assert events["line"].tolist() == [1, 3]
    (reject,) = connector.rejects()
    assert (reject.source, reject.line, reject.reason, reject.excerpt) == (path, 2, "unparseable", "garbage line")


def test_json_lines_with_bad_lines_and_mixed_offsets(tmp_path: Path) -> None:
    good = [
        '{"@timestamp":"2024-03-01T10:00:00.5Z","log.level":"error","message":"db down","service.name":"api"}',
        '{"@timestamp":"2024-03-01T11:00:00+01:00","level":"warn","msg":"same instant"}',
        '{"time":"2024-03-01 10:00:01","level":"info","msg":"naive wall clock"}',
    ] * 30  # detection looks at the first 64 lines
    text = "\n".join([*good, '{"@timestamp":"2024-03-01T10:00:00Z","msg":"hel', "", "[1,2]"]) + "\n"
    path = write(tmp_path, "app.jsonl", text)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, source_tz=(("*.jsonl", "Europe/Berlin"),)))
    events = read_all(connector)
    (acc,) = connector.accounting()
    assert acc.format == "json_lines"
    assert acc.time_zone == "Europe/Berlin"
    assert acc.event_lines == 90
    assert acc.rejected_total == 3
    assert acc.rejected["json_decode"] >= 1
    first = events.iloc[:3]
    assert first["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01T10:00:00.5Z"),
        pd.Timestamp("2024-03-01T10:00:00Z"),
        pd.Timestamp("2024-03-01T09:00:01Z"),  # naive, read in Europe/Berlin (+01:00 in March)
    ]
    assert first["tz_assumed"].isna().tolist() == [True, True, False]
    assert first["tz_assumed"].iloc[2] == "Europe/Berlin"
    assert first["level"].tolist() == ["error", "warning", "info"]
    assert first["message"].tolist() == ["db down", "same instant", "naive wall clock"]
    assert events["service"].iloc[0] == "api"
    assert sorted(r.line for r in connector.rejects()) == [91, 92, 93]


def test_window_counts_events_with_their_continuation_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "app.log", JAVA)
    config = dataclasses.replace(
        CONFIG, start=parse_time("2024-03-01T10:00:01Z"), end=parse_time("2024-03-01T10:00:02Z"), chunk_lines=2
    )
    connector = LogFileConnector(path, config)
    events = read_all(connector)
    assert events["line"].tolist() == [2]
    (acc,) = connector.accounting()
    assert acc.outside_window == 2  # the first and the last head, no continuation lines
    assert acc.continuation_lines == 6
    later = LogFileConnector(path, dataclasses.replace(config, start=parse_time("2024-03-01T10:00:02Z"), end=None))
    assert read_all(later)["line"].tolist() == [9]
    assert later.accounting()[0].outside_window == 8  # 1 head + 1 head with 6 continuation lines


def test_forced_format_by_config_and_by_argument(tmp_path: Path) -> None:
    path = write(tmp_path, "app.log", JAVA)
    forced = LogFileConnector(path, dataclasses.replace(CONFIG, format_name="generic"))
    events = read_all(forced)
    (acc,) = forced.accounting()
    assert acc.format == "generic"
    assert "--format" in acc.format_reason
    assert set(events["format"]) == {"generic"}
    assert events["timestamp"].iloc[1] == pd.Timestamp("2024-03-01T10:00:01Z")
    by_argument = LogFileConnector(path, CONFIG, format=LOG_FORMATS["log4j"])
    assert read_all(by_argument)["message"].iloc[1] == JAVA_TRACE
    with pytest.raises(UnknownFormatError):
        read_all(LogFileConnector(path, dataclasses.replace(CONFIG, format_name="no_such_format")))


def test_single_line_format_rejects_non_heads(tmp_path: Path) -> None:
    path = write(tmp_path, "access.log", ACCESS.replace("garbage line\n", "garbage line\n\n"))
    connector = LogFileConnector(path, CONFIG, format=get_format("access_combined"))
    read_all(connector)
    assert dict(connector.accounting()[0].rejected) == {"unparseable": 1, "empty_line": 1}


def test_orphan_continuation_and_rejected_heads_break_events(tmp_path: Path) -> None:
    text = (
        "\tat orphan.Before(First.java:1)\n"
        "\n"
        "2024-03-01 10:00:00,000 ERROR [main] a.B: first\n"
        "\tat a.B.run(B.java:1)\n"
        "2024-13-45 10:00:00,000 ERROR [main] a.B: impossible date\n"
        "\tat a.B.lost(B.java:2)\n"
        "2024-03-01 10:00:05,000 INFO  [main] a.B: second\n"
    )
    path = write(tmp_path, "app.log", text)
    connector = LogFileConnector(path, CONFIG, format=LOG_FORMATS["log4j"])
    events = read_all(connector)
    assert events["message"].tolist() == ["first\n\tat a.B.run(B.java:1)", "second"]
    (acc,) = connector.accounting()
    assert dict(acc.rejected) == {"orphan_continuation": 2, "empty_line": 1, "bad_timestamp": 1}
    assert [(r.line, r.reason) for r in connector.rejects()] == [
        (1, "orphan_continuation"),
        (2, "empty_line"),
        (5, "bad_timestamp"),
        (6, "orphan_continuation"),
    ]
    assert connector.rejects()[0].excerpt == "\tat orphan.Before(First.java:1)"  # TAB is harmless, kept


def test_rejects_are_escaped_bounded_and_all_counted(tmp_path: Path) -> None:
    evil = "\x1b]8;;https://evil\x1b\\x\x1b[2J" + "y" * 2000
    lines = [evil] * 30 + ["2024-03-01 10:00:00,000 INFO [main] a.B: ok"]
    path = write(tmp_path, "evil.log", "\n".join(lines) + "\n")
    config = dataclasses.replace(CONFIG, max_rejects_kept=5)
    connector = LogFileConnector(path, config, format=LOG_FORMATS["log4j"])
    read_all(connector)
    assert connector.accounting()[0].rejected_total == 30
    rejects = connector.rejects()
    assert len(rejects) == 5
    for reject in rejects:
        assert "\x1b" not in reject.excerpt
        assert len(reject.excerpt) <= 512


def test_event_cap_marks_the_source_partial(tmp_path: Path) -> None:
    path = write(tmp_path, "app.log", JAVA * 3)
    budget = EventBudget(4)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, chunk_lines=4), budget=budget)
    events = read_all(connector)
    assert len(events) == 4
    (acc,) = connector.accounting()
    assert acc.partial
    assert "cap" in (acc.partial_reason or "")
    assert acc.rejected["event_cap"] == acc.lines_read - acc.event_lines - acc.continuation_lines
    # The run's budget is shared: a second file gets nothing and says so.
    other = LogFileConnector(write(tmp_path, "b.log", PYTHON), CONFIG, budget=budget)
    assert read_all(other).empty
    assert other.accounting()[0].rejected["event_cap"] == count_lines(PYTHON)


SYSLOG_NEW_YEAR = "Dec 31 23:59:58 host sshd[1]: x\nJan  1 00:00:02 host sshd[1]: y\n"


def test_year_less_syslog_with_year_option_rolls_over(tmp_path: Path) -> None:
    path = write(tmp_path, "auth.log", SYSLOG_NEW_YEAR)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, year=2024))
    events = read_all(connector)
    assert events["timestamp"].tolist() == [pd.Timestamp("2024-12-31T23:59:58Z"), pd.Timestamp("2025-01-01T00:00:02Z")]
    assert events["year_inferred"].tolist() == [True, True]
    (acc,) = connector.accounting()
    assert acc.year_inferred
    assert any("--year" in note for note in acc.notes)


@pytest.mark.parametrize("chunk_lines", [1, 250_000])
def test_year_less_syslog_from_modification_time(tmp_path: Path, chunk_lines: int) -> None:
    path = write(tmp_path, "auth.log", SYSLOG_NEW_YEAR)
    mtime = pd.Timestamp("2025-01-01T00:05:00Z")
    os.utime(path, ns=(mtime.value, mtime.value))
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, chunk_lines=chunk_lines))
    events = read_all(connector)
    assert events["timestamp"].tolist() == [pd.Timestamp("2024-12-31T23:59:58Z"), pd.Timestamp("2025-01-01T00:00:02Z")]
    assert any("modification time" in note for note in connector.accounting()[0].notes)


def test_year_less_syslog_from_window_and_from_run_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "auth.log", SYSLOG_NEW_YEAR)
    window = dataclasses.replace(
        CONFIG, start=parse_time("2021-12-31T00:00:00Z"), end=parse_time("2022-01-02T00:00:00Z")
    )
    assert read_all(LogFileConnector(path, window))["timestamp"].iloc[1] == pd.Timestamp("2022-01-01T00:00:02Z")
    run = LogFileConnector(path, CONFIG, reference_year=pd.Timestamp("2019-01-01T03:00:00Z"))
    assert read_all(run)["timestamp"].tolist() == [
        pd.Timestamp("2018-12-31T23:59:58Z"),
        pd.Timestamp("2019-01-01T00:00:02Z"),
    ]


def test_dst_fall_back_hour_in_a_log_file(tmp_path: Path) -> None:
    # Berlin, 2024-10-27: 02:00-03:00 local happens twice (CEST +02:00, then CET +01:00).
    text = "".join(
        f"2024-10-27 {t},000 INFO [main] a.B: m{i}\n"
        for i, t in enumerate(["01:59:00", "02:30:00", "02:59:00", "02:01:00", "02:30:00", "03:00:00"])
    )
    path = write(tmp_path, "app.log", text)
    connector = LogFileConnector(path, dataclasses.replace(CONFIG, tz="Europe/Berlin", chunk_lines=3))
    events = read_all(connector)
    assert events["timestamp"].tolist() == [
        pd.Timestamp("2024-10-26T23:59:00Z"),
        pd.Timestamp("2024-10-27T00:30:00Z"),
        pd.Timestamp("2024-10-27T00:59:00Z"),
        pd.Timestamp("2024-10-27T01:01:00Z"),
        pd.Timestamp("2024-10-27T01:30:00Z"),
        pd.Timestamp("2024-10-27T02:00:00Z"),
    ]
    (acc,) = connector.accounting()
    assert acc.out_of_order == 0
    assert any("repeated DST hour" in note for note in acc.notes)


def test_out_of_order_lines_are_counted(tmp_path: Path) -> None:
    text = "".join(f"2024-03-01 10:00:{s:02d},000 INFO [main] a.B: m\n" for s in (1, 2, 0, 3, 4, 1))
    connector = LogFileConnector(write(tmp_path, "app.log", text), CONFIG)
    read_all(connector)
    assert connector.accounting()[0].out_of_order == 2


def test_zone_selection_order(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, tz="UTC", source_tz=(("*/edge/*", "America/New_York"), ("*.log", "+01:00")))
    assert zone_for("/logs/edge/a.log", config) == "America/New_York"
    assert zone_for("/logs/app/a.log", config) == "+01:00"
    assert zone_for("/logs/app/a.txt", config) == "UTC"
    user_format = dataclasses.replace(LOG_FORMATS["log4j"], timezone="Asia/Tokyo")
    assert zone_for("/logs/app/a.txt", config, user_format) == "Asia/Tokyo"
    assert zone_for("/logs/app/a.log", config, user_format) == "+01:00"


def test_bad_bytes_nul_bom_crlf_and_invalid_utf8(tmp_path: Path) -> None:
    lines = [
        b"\xef\xbb\xbf2024-03-01 10:00:00,000 INFO [main] a.B: bom stripped\r\n",
        b"\x00" * 4096 + b"\n",
        b"2024-03-01 10:00:01,000 INFO [main] a.B: bad \xff\xfe bytes\r\n",
        b"2024-03-01 10:00:02,000 INFO [main] a.B: no final newline",
    ]
    connector = LogFileConnector(write(tmp_path, "bytes.log", b"".join(lines)), CONFIG)
    events = read_all(connector)
    assert events["message"].tolist() == ["bom stripped", "bad \ufffd\ufffd bytes", "no final newline"]
    (acc,) = connector.accounting()
    assert dict(acc.rejected) == {"nul_bytes": 1}
    assert acc.decode_errors == 2
    assert events["line"].tolist() == [1, 3, 4]


def test_binary_garbage_gives_no_events_and_every_line_counted(tmp_path: Path) -> None:
    import random

    data = random.Random(7).randbytes(1 << 16)
    connector = LogFileConnector(write(tmp_path, "garbage.log", data), CONFIG)
    events = read_all(connector)
    (acc,) = connector.accounting()
    assert acc.lines_read == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert len(events) <= acc.lines_read * 0.01
    assert all("\x1b" not in r.excerpt for r in connector.rejects())


def test_empty_file(tmp_path: Path) -> None:
    connector = LogFileConnector(write(tmp_path, "empty.log", b""), CONFIG)
    assert read_all(connector).empty
    (acc,) = connector.accounting()
    assert (acc.lines_read, acc.format) == (0, None)


def test_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    data = (PYTHON * 50).encode()
    whole = LogFileConnector(write(tmp_path, "app.log", gzip.compress(data)), CONFIG)
    assert len(read_all(whole)) == 150
    assert "gzip-compressed" in whole.accounting()[0].notes
    cut = LogFileConnector(write(tmp_path, "cut.log.gz", gzip.compress(data)[:-200]), CONFIG)
    events = read_all(cut)
    (acc,) = cut.accounting()
    assert acc.partial
    assert 0 < len(events) < 150
    assert "truncated" in (acc.partial_reason or "")


def test_long_line_is_cut_and_noted(tmp_path: Path) -> None:
    text = "2024-03-01 10:00:00,000 INFO [main] a.B: " + "x" * 5000 + "\n2024-03-01 10:00:01,000 INFO [main] a.B: ok\n"
    connector = LogFileConnector(write(tmp_path, "long.log", text), dataclasses.replace(CONFIG, max_line_bytes=1024))
    events = read_all(connector)
    assert events["message"].tolist()[1] == "ok"
    assert len(events["message"].iloc[0]) < 1024
    assert any("cut to that size" in note for note in connector.accounting()[0].notes)


def test_unreadable_files_raise_one_line_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        list(LogFileConnector(str(tmp_path / "missing.log"), CONFIG).read())
    with pytest.raises(SourceError, match="directory"):
        list(LogFileConnector(str(tmp_path), CONFIG).read())


def test_preview_reads_the_start_only(tmp_path: Path) -> None:
    path = write(tmp_path, "app.log", JAVA * 2000)
    fmt, reason, zone, rows = LogFileConnector(path, CONFIG).preview(5)
    assert fmt is not None
    assert fmt.name == "log4j"
    assert "log4j" in reason
    assert zone == "UTC"
    assert rows["line"].tolist() == [1, 2, 9, 10, 11]


# ------------------------------------------------------------------------------------------------
# Loghub: real logs with ground truth written by their authors (../shared/data/loghub)

LOGHUB_TIMES = {
    # system: (columns of the structured CSV holding the wall clock, strptime format, year known)
    "Apache": (["Time"], "%a %b %d %H:%M:%S %Y", True),
    "HDFS": (["Date", "Time"], "%y%m%d %H%M%S", True),
    "Hadoop": (["Date", "Time"], "%Y-%m-%d %H:%M:%S,%f", True),
    "Linux": (["Month", "Date", "Time"], "%b %d %H:%M:%S", False),
    "OpenSSH": (["Date", "Day", "Time"], "%b %d %H:%M:%S", False),
    "Zookeeper": (["Date", "Time"], "%Y-%m-%d %H:%M:%S,%f", True),
}
LOGHUB_LEVELS = {"info": "info", "warn": "warning", "error": "error", "fatal": "critical", "notice": "notice"}


@pytest.mark.parametrize("system", sorted(LOGHUB_TIMES))
def test_loghub_timestamps_and_levels_match_the_structured_csv(shared_data: Path, system: str) -> None:
    log = shared_data / "loghub" / system / f"{system}_2k.log"
    truth = pd.read_csv(f"{log}_structured.csv", dtype=str, keep_default_na=False)
    connector = LogFileConnector(str(log), CONFIG)
    events = read_all(connector).set_index("line")
    (acc,) = connector.accounting()
    assert acc.lines_read == len(truth) == 2000

    columns, fmt, has_year = LOGHUB_TIMES[system]
    text = truth[columns].agg(" ".join, axis=1)
    if system == "HDFS":
        text = truth["Date"].str.zfill(6) + " " + truth["Time"].str.zfill(6)
    expected = pd.to_datetime(text if has_year else "2000 " + text, format=fmt if has_year else "%Y " + fmt)
    expected.index = truth["LineId"].astype(int)
    got = events["timestamp"].reindex(expected.index).dt.tz_convert(None)
    if has_year:
        same = got.dt.floor("s") == expected.dt.floor("s")
    else:
        same = got.dt.strftime("%m-%d %H:%M:%S") == expected.dt.strftime("%m-%d %H:%M:%S")
    assert same.fillna(False).mean() >= 0.99, f"{system}: {int((~same.fillna(False)).sum())} lines differ"

    if system in ("Apache", "HDFS", "Hadoop", "Zookeeper"):
        want = truth.set_index(truth["LineId"].astype(int))["Level"].str.lower().map(LOGHUB_LEVELS)
        level_match = events["level"].reindex(want.index) == want
        assert level_match.fillna(False).mean() >= 0.99


def test_user_format_file_is_detected_first_and_brings_its_zone(tmp_path: Path) -> None:
    format_file = tmp_path / "formats.toml"
    format_file.write_text(
        "[[format]]\n"
        'name = "billing"\n'
        "regex = '^(?P<timestamp>\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}) \\| (?P<level>[WE]) \\| (?P<message>.*)$'\n"
        'timestamp_format = "%Y-%m-%d %H:%M:%S"\n'
        'timezone = "America/New_York"\n'
        'levels = { W = "warning", E = "error" }\n'
        "multiline_start = '^\\d{4}-'\n"
    )
    text = (
        "2024-07-01 09:00:00 | W | card declined\n"
        "  detail: insufficient funds\n"
        "2024-07-01 09:00:05 | E | batch failed\n"
    )
    path = write(tmp_path, "billing.txt", text)
    config = dataclasses.replace(CONFIG, format_file=str(format_file))
    connector = LogFileConnector(path, config)
    events = read_all(connector)
    (acc,) = connector.accounting()
    assert acc.format == "billing"
    assert acc.time_zone == "America/New_York"
    assert events["timestamp"].tolist() == [pd.Timestamp("2024-07-01T13:00:00Z"), pd.Timestamp("2024-07-01T13:00:05Z")]
    assert events["level"].tolist() == ["warning", "error"]
    assert events["message"].iloc[0] == "card declined\n  detail: insufficient funds"
    assert set(events["tz_assumed"]) == {"America/New_York"}
    # --source-tz still wins over the format's own zone.
    pinned = LogFileConnector(path, dataclasses.replace(config, source_tz=(("*.txt", "UTC"),)))
    assert read_all(pinned)["timestamp"].iloc[0] == pd.Timestamp("2024-07-01T09:00:00Z")


# --------------------------------------------------------------------------------------------------
# Service identity: the application, never the logger


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("checkout/checkout.log", "checkout"),
        ("logs/checkout-api.log", "checkout-api"),
        ("logs/checkout-api.log.1", "checkout-api"),
        ("/var/log/billing/billing-2024-03-12.log.gz", "billing"),
        ("archive/search.log.20240312.gz", "search"),
        ("checkout/app.log", "checkout"),
        ("checkout/logs/current", "checkout"),
        ("/srv/ledger/logs/app.log.3", "ledger"),
        ("/var/log/nginx/checkout.access.log", "checkout"),
        ("edge/nginx_access.log", "edge"),
        ("/var/log/nginx/access.log", "nginx"),
        ("/var/log/apache2/error.log.1", "apache2"),
        ("workers/settlement-worker.log", "settlement-worker"),
        ("s3-index/index.log", "s3-index"),  # the directory names the stem more fully
        ("provision-service/provision.log", "provision-service"),
        ("hookshot/worker.log", "hookshot"),  # a role, not a name
        ("config-api/api.jsonl", "config-api"),
        ("rails/production.json", "rails"),  # an environment, not a name
        ("containers/inventory-6d5f8b7c9-x2lq4_shop_inventory-3b1f9a7c2d4e.log", "inventory"),  # a short id
        ("C:\\logs\\billing\\app.log", "billing"),
        (
            "/var/log/containers/checkout-7d9f8b6c4d-x2x4z_shop_checkout-api-"
            "0f5a1c2e9b8d7c6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988.log",
            "checkout-api",
        ),
        (
            "/var/log/pods/shop_checkout-7d9f8b6c4d-x2x4z_0f5a1c2e-1111-2222-3333-444455556666/checkout-api/0.log",
            "checkout-api",
        ),
        (
            "/var/log/pods/shop_search-5c4d_0f5a1c2e-1111-2222-3333-444455556666/indexer/2.log.20240312-101010.gz",
            "indexer",
        ),
        # Nothing in these paths names an application: unknown, not guessed.
        ("app.log", None),
        ("sample_logs/hosts/syslog", None),
        ("/var/log/messages", None),
        ("incident-logs/2024-03-12/output.log", None),
    ],
)
def test_service_from_path(path: str, expected: str | None) -> None:
    assert service_from_path(path) == expected


def _read_as(tmp_path: Path, relative: str, content: str, config: TimelineConfig = CONFIG) -> pd.DataFrame:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return read_all(LogFileConnector(str(path), config))


SPRING_NO_APP = """\
2024-03-01T10:00:00.123Z  INFO 4711 --- [           main] c.b.x.idp.SomeClient          : started
2024-03-01T10:00:01.456Z ERROR 4711 --- [nio-8080-exec-1] c.b.x.idp.TokenService        : token refresh failed
"""
SPRING_BOOT3_APP = """\
2024-03-01T10:00:00.123Z  INFO 4711 --- [identity] [           main] c.b.x.idp.SomeClient : started
"""


def test_spring_boot_without_an_app_name_is_its_source_service_and_keeps_the_class_as_logger(tmp_path: Path) -> None:
    events = _read_as(tmp_path, "idp/idp-gateway.log", SPRING_NO_APP)
    assert events["service"].tolist() == ["idp-gateway", "idp-gateway"]
    assert events["logger"].tolist() == ["c.b.x.idp.SomeClient", "c.b.x.idp.TokenService"]
    # Spring Boot 3's own application name wins over the path.
    named = _read_as(tmp_path, "idp/idp-gateway-2.log", SPRING_BOOT3_APP)
    assert named["service"].tolist() == ["identity"]
    assert named["logger"].tolist() == ["c.b.x.idp.SomeClient"]


def test_log4j_and_python_logger_names_are_loggers_not_services(tmp_path: Path) -> None:
    java = _read_as(tmp_path, "orders/logs/app.log", JAVA)
    assert set(java["service"]) == {"orders"}
    assert java["logger"].tolist() == ["com.example.App", "com.example.Db", "com.example.App"]
    python = """\
2024-03-01 10:00:00,123 - search.handler - INFO - query served
2024-03-01 10:00:01,500 - search.index.shard - ERROR - shard 3 unavailable
"""
    events = _read_as(tmp_path, "logs/search-api.log.1", python)
    assert events["service"].tolist() == ["search-api", "search-api"]
    assert events["logger"].tolist() == ["search.handler", "search.index.shard"]


def test_json_without_ecs_names_takes_its_app_field_and_logger(tmp_path: Path) -> None:
    content = "\n".join(
        [
            '{"ts":"2024-03-01T10:00:00Z","app":"checkout","logger_name":"c.s.CartController","msg":"ok"}',
            '{"ts":"2024-03-01T10:00:01Z","application":"checkout","logger":"c.s.Pay","msg":"slow"}',
            '{"ts":"2024-03-01T10:00:02Z","app_name":"cart","msg":"cart saved"}',
            '{"ts":"2024-03-01T10:00:03Z","msg":"no app field on this line"}',
        ]
    )
    events = _read_as(tmp_path, "shop/shop-frontend.json", content + "\n")
    assert events["service"].tolist() == ["checkout", "checkout", "cart", "shop-frontend"]
    assert events["logger"].tolist()[:2] == ["c.s.CartController", "c.s.Pay"]
    assert events["logger"].isna().tolist()[2:] == [True, True]


def test_kubernetes_container_logs_are_named_by_label_or_container(tmp_path: Path) -> None:
    container_id = "9" * 64
    cri = (
        '2024-03-01T10:00:00.000000001Z stdout F {"ts":"2024-03-01T10:00:00Z","msg":"login ok","logger":"auth.views"}\n'
        '2024-03-01T10:00:01.000000001Z stderr F {"ts":"2024-03-01T10:00:01Z","msg":"db down","service":"auth-api"}\n'
    )
    events = _read_as(tmp_path, f"var/log/containers/auth-6f7d-abcde_prod_auth-{container_id}.log", cri)
    assert events["service"].tolist() == ["auth", "auth-api"]  # the container; the line's own app field wins
    assert events["logger"].tolist()[0] == "auth.views"
    # A log shipper's copy carries the Kubernetes labels: app.kubernetes.io/name before the container.
    shipped = "\n".join(
        [
            '{"time":"2024-03-01T10:00:00Z","log":"GET /","kubernetes":{"container_name":"nginx",'
            '"labels":{"app.kubernetes.io/name":"storefront"}}}',
            '{"time":"2024-03-01T10:00:01Z","log":"tick","kubernetes":{"container_name":"cron-sidecar",'
            '"labels":{"k8s-app":"kube-dns"}}}',
            '{"time":"2024-03-01T10:00:02Z","log":"x","kubernetes":{"container_name":"worker"}}',
        ]
    )
    events = _read_as(tmp_path, "fluent-bit/out.json", shipped + "\n")
    assert events["service"].tolist() == ["storefront", "kube-dns", "worker"]


def test_syslog_program_is_the_service_and_a_line_without_one_stays_unknown(tmp_path: Path) -> None:
    rfc3164 = "Mar  1 10:00:00 web-1 sshd[42]: Accepted publickey for deploy\nMar  1 10:00:01 web-1 kernel: oom\n"
    rfc3164 += "Mar  1 10:00:02 web-1 no program here at all\n"
    events = _read_as(tmp_path, "var/log/syslog", rfc3164, dataclasses.replace(CONFIG, year=2024))
    assert events["service"].tolist()[:2] == ["sshd", "kernel"]
    rfc5424 = "<165>1 2024-03-01T10:00:00Z web-1 billing 77 ID47 - invoice sent\n"
    assert _read_as(tmp_path, "logs/messages", rfc5424)["service"].tolist() == ["billing"]


def test_service_option_names_a_source_and_the_line_app_field_still_wins(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, source_services=(("*/edge/*", "storefront-edge"), ("*", "never-used")))
    access = '10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 503 12 "-" "curl/8.0"\n'
    events = _read_as(tmp_path, "edge/nginx_access.log", access, config)
    assert events["service"].tolist() == ["storefront-edge"]
    assert _read_as(tmp_path, "edge/nginx_access.log", access)["service"].tolist() == ["edge"]
    json_line = '{"ts":"2024-03-01T10:00:00Z","service":"cart","msg":"saved"}\n'
    assert _read_as(tmp_path, "edge/cart.json", json_line, config)["service"].tolist() == ["cart"]
    assert service_for("x/edge/a.log", config) == "storefront-edge"


def test_service_option_from_the_command_line_and_the_library(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pmtimeline.api import make_config
    from pmtimeline.cli import cli

    log = tmp_path / "edge" / "access.log"
    log.parent.mkdir()
    log.write_text('10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "curl"\n', encoding="utf-8")
    out = tmp_path / "events.parquet"
    args = ["ingest", str(log), "-o", str(out), "--service", "*/edge/*=storefront"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out)["service"].tolist() == ["storefront"]
    bad = CliRunner().invoke(cli, ["ingest", str(log), "-o", str(out), "--service", "storefront"])
    assert bad.exit_code != 0
    assert "--service takes GLOB=NAME" in bad.output
    assert make_config(source_services={"*/edge/*": "storefront"}).source_services == (("*/edge/*", "storefront"),)


def test_the_sample_files_name_their_services_as_its_readme_says() -> None:
    """sample_logs/README.md's "service named by" column: service.name, Sleuth's app, the worker's
    name (now from its file, its logger kept apart), syslog programs, Argo CD's app=, and the edge."""
    sample = Path(__file__).resolve().parents[2] / "sample_logs"

    def services(relative: str) -> pd.Series:
        config = dataclasses.replace(CONFIG, year=2024)
        return read_all(LogFileConnector(str(sample / relative), config))["service"]

    assert set(services("payments/payments-api.jsonl")) == {"payments-api"}
    assert set(services("ledger/ledger.log")) == {"ledger-service"}
    worker = read_all(LogFileConnector(str(sample / "workers/settlement-worker.log"), CONFIG))
    assert set(worker["service"]) == {"settlement-worker"}
    assert set(worker["logger"]) == {"settlement-worker"}
    assert set(services("deploy/argocd.logfmt")) == {"payments-api", "accounts-service"}
    assert set(services("edge/nginx_access.log")) == {"edge"}
    programs = re.findall(r"^\w{3} [ \d]\d [\d:]{8} \S+ ([^\s\[:]+)", (sample / "hosts/syslog").read_text(), re.M)
    assert set(services("hosts/syslog")) == set(programs) >= {"sshd", "CRON", "kubelet"}
