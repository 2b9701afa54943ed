"""Tests for the log format registry: detection and parsing of every format, on real data where we have it."""

from __future__ import annotations

import csv
import json
import pickle
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtimeline.cli import cli
from pmtimeline.connectors import log_formats
from pmtimeline.connectors.log_formats import (
    LOG_FORMATS,
    PARSED_LINE_DTYPES,
    LogFormat,
    detect_log_format,
    get_format,
    logfmt_to_json,
    starts_event,
)
from pmtimeline.connectors.timeformats import extract_groups
from pmtimeline.errors import UnknownFormatError
from pmtimeline.schema import EDGE_FORMAT_PREFIX, STRING, normalize_levels

FORMATS_DIR = Path(__file__).resolve().parents[1] / "data" / "formats"

NA = pd.NA
UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


# Per format: (number of head lines in the sample file, row checked, every column of that row).
# Values were read off the sample lines by hand.
EXPECTED: dict[str, tuple[int, int, dict[str, Any]]] = {
    "access_combined_extra": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "01/Mar/2024:10:00:01 +0100",
            "ts_utc": ts("2024-03-01T09:00:01Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "user": "alice",
            "client_ip": "203.0.113.8",
            "http_method": "POST",
            "url_path": "/api/payments",
            "http_status": 502,
            "message": "POST /api/payments HTTP/1.1",
            "duration_ms": 2004.0,
            "request_id": NA,
            "fields": {
                "protocol": "HTTP/1.1",
                "bytes": 157,
                "user_agent": "curl/8.5.0",
                "extra": 'rt=2.004 uct="0.000" uht="2.001" urt="2.003"',
            },
        },
    ),
    "access_combined": (
        3,
        2,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "01/Mar/2024:09:00:02 +0000",
            "ts_utc": ts("2024-03-01T09:00:02Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "user": NA,
            "client_ip": "198.51.100.4",
            "http_method": "GET",
            "url_path": '/search?q=\\"x\\"',
            "http_status": 404,
            "message": 'GET /search?q="x" HTTP/1.1',
            "fields": {"protocol": "HTTP/1.1", "bytes": 0, "user_agent": "Mozilla/5.0"},
        },
    ),
    "access_common": (
        2,
        0,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "10/Oct/2000:13:55:36 -0700",
            "ts_utc": ts("2000-10-10T20:55:36Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "user": "frank",
            "client_ip": "127.0.0.1",
            "http_method": "GET",
            "url_path": "/apache_pb.gif",
            "http_status": 200,
            "message": "GET /apache_pb.gif HTTP/1.0",
            "fields": {"protocol": "HTTP/1.0", "bytes": 2326},
        },
    ),
    "apache_error": (
        3,
        2,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "Wed Oct 11 14:32:52.123456 2000",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2000-10-11 14:32:52.123456"),
            "year_missing": False,
            "kind": "log",
            "level": "error",
            "logger": "core",
            "client_ip": "192.0.2.44",
            "message": "File does not exist: /var/www/favicon.ico",
            "fields": {"pid": "1234", "tid": "5678", "client": "192.0.2.44:51234"},
        },
    ),
    "syslog_rfc5424": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2003-08-24T05:14:15.000003-07:00",
            "ts_utc": ts("2003-08-24T12:14:15.000003Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "log",
            "level": "notice",  # <165> = facility 20, severity 5
            "host": "192.0.2.1",
            "service": "myproc",
            "message": "%% It's time to make the do-nuts.",
            "fields": {"procid": "8710"},
        },
    ),
    "syslog_rfc3164": (
        4,
        2,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "Feb 29 12:00:00",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2000-02-29 12:00:00"),
            "year_missing": True,
            "kind": "log",
            "level": "error",  # <11> = facility 1, severity 3
            "host": "db-2",
            "service": "postgres",
            "message": "FATAL:  the database system is in recovery mode",
            "fields": {"pid": "77"},
        },
    ),
    "docker_json": (
        3,
        0,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01T10:00:00.250Z",  # the inner time wins when there is one
            "ts_utc": ts("2024-03-01T10:00:00.250Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "level": "error",
            "service": "checkout",
            "http_status": 504,
            "message": "upstream timed out",
            "fields": {"stream": "stderr"},
        },
    ),
    "kubernetes_cri": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01 10:00:00,990",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2024-03-01 10:00:00.990"),
            "year_missing": False,
            "kind": "log",
            "level": "warning",
            "logger": "payments.api",
            "message": "a very long line that the runtime split into two parts",
            "fields": {"stream": "stderr"},
            "continued": False,
        },
    ),
    "kubernetes_audit": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-12T08:49:30.123456Z",
            "ts_utc": ts("2024-03-12T08:49:30.123456Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "log",
            "message": "patch deployments.apps/checkout in namespace shop by alice@example.com via kubectl/v1.29.2",
            "user": "alice@example.com",
            "client_ip": "192.0.2.10",
            "fields": {
                "audit_level": "RequestResponse",
                "stage": "ResponseComplete",
                "request_uri": "/apis/apps/v1/namespaces/shop/deployments/checkout?fieldManager=kubectl-set",
                "response_code": 200,
                "audit_id": "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f",
            },
        },
    ),
    "json_lines": (
        3,
        0,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01T10:00:00.123Z",
            "ts_utc": ts("2024-03-01T10:00:00.123Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "level": "error",
            "message": "charge failed",
            "service": "payments",
            "host": "pay-1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "http_method": "POST",
            "http_status": 502,
            "url_path": "/api/payments",
            "duration_ms": 1500.0,  # event.duration is in nanoseconds
            "user": "u-17",
            "client_ip": "203.0.113.8",
            "logger": "PaymentController",
            "fields": NA,
        },
    ),
    "csv": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01T10:00:00Z",
            "ts_utc": ts("2024-03-01T10:00:00Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "request",
            "level": "error",
            "service": "payments",
            "message": "charge failed, retrying",
            "http_status": 502,
            "fields": {"region": "eu-west-1"},
        },
    ),
    "spring_boot": (
        3,
        5,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01T10:00:01.789+01:00",
            "ts_utc": ts("2024-03-01T09:00:01.789Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "log",
            "level": "warning",
            "service": "payments",
            "trace_id": NA,
            "message": "Slow gateway",
            "logger": "c.b.p.PaymentController",
            "fields": {"pid": "12345", "thread": "nio-8080-exec-3"},
        },
    ),
    "zookeeper": (
        3,
        1,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2015-07-29 19:04:12,394",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2015-07-29 19:04:12.394"),
            "year_missing": False,
            "kind": "log",
            "level": "warning",
            "logger": "QuorumCnxManager$SendWorker",
            "message": "Interrupted while waiting for message on queue",
            "fields": {"thread": "SendWorker:188978561024", "line_no": "679"},
        },
    ),
    "log4j": (
        3,
        5,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01 10:00:01.500",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2024-03-01 10:00:01.5"),
            "year_missing": False,
            "kind": "log",
            "level": "warning",
            "logger": "com.bank.payments.Pool",
            "message": "Pool exhausted",
            "fields": {"thread": "main"},
        },
    ),
    "python_logging": (
        3,
        0,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01 10:00:00,123",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2024-03-01 10:00:00.123"),
            "year_missing": False,
            "kind": "log",
            "level": "error",
            "logger": "payments.api",
            "message": "Charge failed for order 42",
        },
    ),
    "hdfs": (
        3,
        2,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "081109 204005",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2008-11-09 20:40:05"),
            "year_missing": False,
            "kind": "log",
            "level": "warning",
            "logger": "dfs.FSNamesystem",
            "message": "BLOCK* NameSystem.addStoredBlock: redundant addStoredBlock request received",
            "fields": {"pid": "35"},
        },
    ),
    "logfmt": (
        3,
        0,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "2024-03-01T10:00:00.123Z",
            "ts_utc": ts("2024-03-01T10:00:00.123Z"),
            "ts_naive": pd.NaT,
            "year_missing": False,
            "kind": "log",
            "level": "error",
            "message": 'charge failed: "gateway" timeout',
            "service": "payments",
            "duration_ms": 2003.0,
            "url_path": NA,
            "http_status": NA,
            "fields": {"order_id": "42"},
        },
    ),
    "generic": (
        5,
        5,
        {
            "head": True,
            "reject_reason": NA,
            "ts_raw": "Fri Mar 01 10:00:04 2024",
            "ts_utc": pd.NaT,
            "ts_naive": ts("2024-03-01 10:00:04"),
            "year_missing": False,
            "kind": "log",
            "level": "critical",
            "message": "raid degraded",
        },
    ),
}


def _sample_lines(name: str) -> list[str]:
    return (FORMATS_DIR / f"{name}.log").read_text(encoding="utf-8").splitlines()


def _parse_file(name: str) -> tuple[LogFormat, pd.DataFrame]:
    lines = _sample_lines(name)
    fmt, _ = detect_log_format(lines)
    return fmt, fmt.parse(pd.Series(lines, dtype=STRING))


def _same(actual: Any, expected: Any) -> bool:
    if expected is NA or expected is pd.NaT:
        return bool(pd.isna(actual))
    if isinstance(expected, dict):
        return not pd.isna(actual) and json.loads(actual) == expected
    return bool(actual == expected)


def test_every_registered_format_has_a_sample_file_and_expectations() -> None:
    names = set(LOG_FORMATS)
    assert {p.stem for p in FORMATS_DIR.glob("*.log")} == names
    assert set(EXPECTED) == names


def test_registry_order_ends_with_the_generic_fallback() -> None:
    assert list(LOG_FORMATS)[-1] == "generic"
    assert all(name.startswith(EDGE_FORMAT_PREFIX) for name in LOG_FORMATS if "access" in name)


@pytest.mark.parametrize("name", list(LOG_FORMATS))
def test_sample_file_is_detected_and_parsed(name: str) -> None:
    lines = _sample_lines(name)
    fmt, reason = detect_log_format(lines)
    assert fmt.name == name
    assert reason.startswith(f"{name}: ")
    frame = fmt.parse(pd.Series(lines, dtype=STRING))
    heads, row, expected = EXPECTED[name]
    assert len(frame) == len(lines)
    assert frame.index.equals(pd.RangeIndex(len(lines)))
    assert int(frame["head"].sum()) == heads
    for column, dtype in PARSED_LINE_DTYPES.items():
        assert str(frame[column].dtype) == str(pd.Series(dtype=dtype).dtype), column  # type: ignore[call-overload]
    actual = frame.iloc[row].to_dict()
    assert set(actual) == set(expected)
    mismatched = {k: (actual[k], v) for k, v in expected.items() if not _same(actual[k], v)}
    assert not mismatched


def test_detect_reason_counts_sample_lines() -> None:
    fmt, reason = detect_log_format(_sample_lines("access_combined"))
    assert fmt.name == "access_combined"
    assert reason == "access_combined: 3 of 3 sample lines match"


def test_detect_raises_when_no_line_has_a_timestamp() -> None:
    with pytest.raises(UnknownFormatError, match="no known log format"):
        detect_log_format(["hello world", "no time here", "   at frame 3"])
    with pytest.raises(UnknownFormatError, match="empty"):
        detect_log_format(["", "  "])


def test_get_format_names_the_known_formats() -> None:
    assert get_format("logfmt").name == "logfmt"
    with pytest.raises(UnknownFormatError, match="access_combined"):
        get_format("nginx")


def test_continuation_lines_are_neither_heads_nor_rejected() -> None:
    _, frame = _parse_file("python_logging")
    traceback = frame.iloc[1:5]
    assert not traceback["head"].any()
    assert traceback["reject_reason"].isna().all()
    assert LOG_FORMATS["python_logging"].multiline


def test_cri_partial_lines_are_joined_into_the_following_full_line() -> None:
    _, frame = _parse_file("kubernetes_cri")
    assert frame["continued"].tolist() == [False, False, True, False]
    assert not frame.loc[2, "head"]
    assert pd.isna(frame.loc[2, "reject_reason"])


def test_access_log_timestamps_keep_their_offsets() -> None:
    lines = pd.Series(
        [
            '1.2.3.4 - - [01/Mar/2024:10:00:00 +0100] "GET / HTTP/1.1" 200 1',
            '1.2.3.4 - - [01/Mar/2024:04:00:00 -0500] "GET / HTTP/1.1" 200 1',
            '1.2.3.4 - - [31/Feb/2024:04:00:00 -0500] "GET / HTTP/1.1" 200 1',
        ],
        dtype=STRING,
    )
    frame = LOG_FORMATS["access_common"].parse(lines)
    assert frame["ts_utc"].iloc[:2].tolist() == [ts("2024-03-01T09:00:00Z")] * 2
    assert frame["head"].tolist() == [True, True, False]
    assert frame["reject_reason"].iloc[2] == "bad_timestamp"


def test_generic_does_not_guess_ambiguous_zone_abbreviations() -> None:
    lines = pd.Series(["2024-03-01 10:00:00 IST ERROR x", "2024-03-01 10:00:00 UTC ERROR y"], dtype=STRING)
    frame = LOG_FORMATS["generic"].parse(lines)
    assert frame["head"].tolist() == [False, True]
    assert frame["reject_reason"].iloc[0] == "bad_timestamp"
    assert frame["ts_utc"].iloc[1] == ts("2024-03-01T10:00:00Z")
    assert frame["level"].iloc[1] == "error"


def test_generic_epoch_only_in_a_plausible_range() -> None:
    lines = pd.Series(["1709287203 started", "1709287203123 ms", "0000000042 not a time"], dtype=STRING)
    frame = LOG_FORMATS["generic"].parse(lines)
    assert frame["head"].tolist() == [True, True, False]
    assert frame["ts_utc"].iloc[1] == ts("2024-03-01T10:00:03.123Z")


def test_logfmt_rewrites_quoted_values_and_drops_bare_words() -> None:
    text = logfmt_to_json(pd.Series(['a=1 b="x \\"y\\" z" junk c= d=path/to'], dtype=STRING))
    assert json.loads(text.iloc[0]) == {"a": "1", "b": 'x "y" z', "c": "", "d": "path/to"}


# JSON edge cases (robustness.md 6.3, S1-S6)


def _json(lines: list[str]) -> pd.DataFrame:
    return LOG_FORMATS["json_lines"].parse(pd.Series(lines, dtype=STRING))


GOOD = '{"@timestamp":"2024-03-01T00:00:00Z","msg":"ok","status":200}'


def test_json_truncated_line_is_rejected_and_neighbours_parse() -> None:  # S1
    frame = _json([GOOD, '{"@timestamp":"2024-03-01T00:00:00Z","msg":"hel', GOOD])
    assert frame["head"].tolist() == [True, False, True]
    assert frame["reject_reason"].iloc[1] == "json_decode"
    assert frame["message"].iloc[2] == "ok"


def test_json_values_that_are_not_objects_are_rejected() -> None:  # S2
    frame = _json([GOOD, "[1,2]", '"str"', "null", "1e999"])
    assert frame["reject_reason"].tolist()[1:] == ["json_not_object"] * 4


def test_json_deep_nesting_is_rejected_without_crashing() -> None:  # S3
    frame = _json([GOOD, "[" * 100000])
    assert frame["reject_reason"].iloc[1] == "too_deep"
    assert frame["head"].tolist() == [True, False]


def test_json_duplicate_keys_and_huge_numbers() -> None:  # S4
    frame = _json(
        [
            '{"ts":"2024-03-01T00:00:00Z","a":1,"a":2}',
            '{"ts":"2024-03-01T00:00:01Z","n":123456789012345678901234567890}',
        ]
    )
    assert frame["head"].all()
    assert json.loads(frame["fields"].iloc[0]) == {"a": 2}
    assert json.loads(frame["fields"].iloc[1]) == {"n": 123456789012345678901234567890}


def test_json_missing_or_blank_timestamp_is_rejected_not_epoch_zero() -> None:  # S5
    frame = _json([GOOD, '{"msg":"x"}', '{"time":"","msg":"y"}', '{"time":null,"msg":"z"}'])
    assert pd.isna(frame["reject_reason"].iloc[0])
    assert frame["reject_reason"].iloc[1:].tolist() == ["no_timestamp"] * 3
    assert frame["ts_utc"].iloc[1:].isna().all()


def test_json_field_types_varying_across_lines_are_coerced() -> None:  # S6
    frame = _json(
        [
            '{"ts":"2024-03-01T00:00:00Z","status":"500"}',
            '{"ts":"2024-03-01T00:00:01Z","status":500}',
            '{"ts":"2024-03-01T00:00:02Z","status":null}',
            '{"ts":"2024-03-01T00:00:03Z","status":"oops"}',
        ]
    )
    assert str(frame["http_status"].dtype) == "Int64"
    assert frame["http_status"].tolist()[:2] == [500, 500]
    assert frame["http_status"].iloc[2:].isna().all()


def test_json_epoch_units_by_magnitude_and_mixed_offsets() -> None:
    frame = _json(
        [
            '{"ts":1709251200,"msg":"s"}',
            '{"ts":1709251200000,"msg":"ms"}',
            '{"ts":"2024-03-01T01:00:00+01:00","msg":"iso"}',
            '{"ts":1709251200000000000,"msg":"ns"}',
            '{"ts":99999999999999,"msg":"far"}',
        ]
    )
    assert frame["ts_utc"].iloc[:4].tolist() == [ts("2024-03-01T00:00:00Z")] * 4
    assert frame["reject_reason"].iloc[4] == "timestamp_out_of_range"


def test_json_pino_numeric_levels() -> None:
    frame = _json(['{"time":1709251200000,"level":50,"msg":"boom"}', '{"time":1709251200001,"level":3,"msg":"x"}'])
    assert frame["level"].iloc[0] == "error"
    assert pd.isna(frame["level"].iloc[1])


def test_json_dotted_and_nested_ecs_keys_agree() -> None:
    frame = _json(
        [
            '{"@timestamp":"2024-03-01T00:00:00Z","log":{"level":"WARN"},"service":{"name":"a"}}',
            '{"@timestamp":"2024-03-01T00:00:01Z","log.level":"error","service.name":"b"}',
        ]
    )
    assert frame["level"].tolist() == ["warning", "error"]
    assert frame["service"].tolist() == ["a", "b"]


# Loghub: real logs with ground truth written by their authors

LOGHUB = ("Apache", "HDFS", "Hadoop", "Linux", "OpenSSH", "Zookeeper")


def _loghub_truth(structured: pd.DataFrame, system: str) -> tuple[pd.Series, bool]:
    """(ground-truth wall clock, whether the log writes a year)."""
    s = structured
    if system == "Apache":
        return pd.to_datetime(s["Time"], format="%a %b %d %H:%M:%S %Y"), True
    if system == "HDFS":
        return pd.to_datetime(s["Date"] + " " + s["Time"], format="%y%m%d %H%M%S"), True
    if system in ("Hadoop", "Zookeeper"):
        return pd.to_datetime(s["Date"] + " " + s["Time"], format="%Y-%m-%d %H:%M:%S,%f"), True
    month, day = ("Month", "Date") if system == "Linux" else ("Date", "Day")
    text = "2000 " + s[month] + " " + s[day] + " " + s["Time"]
    return pd.to_datetime(text, format="%Y %b %d %H:%M:%S"), False


@pytest.mark.parametrize("system", LOGHUB)
def test_loghub_sample_detected_and_times_match_ground_truth(shared_data: Path, system: str) -> None:
    folder = shared_data / "loghub" / system
    raw = (folder / f"{system}_2k.log").read_text(encoding="utf-8")
    lines = [line.removesuffix("\r") for line in raw.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    structured = pd.read_csv(folder / f"{system}_2k.log_structured.csv", dtype=str, keep_default_na=False)
    assert len(lines) == len(structured) == 2000

    fmt, _ = detect_log_format(lines[:64])
    frame = fmt.parse(pd.Series(lines, dtype=STRING))
    assert frame["head"].mean() >= 0.99

    truth, has_year = _loghub_truth(structured, system)
    parsed = frame["ts_naive"].dt.floor("s")
    if not has_year:
        assert frame["year_missing"].all()
        parsed = parsed.dt.strftime("%m-%d %H:%M:%S")
        truth = truth.dt.strftime("%m-%d %H:%M:%S")
    else:
        truth = truth.dt.floor("s")
    assert (parsed.to_numpy() == truth.to_numpy()).mean() >= 0.99

    if system in ("Apache", "HDFS", "Hadoop", "Zookeeper"):
        expected_levels = normalize_levels(structured["Level"])
        assert expected_levels.notna().all()
        assert (frame["level"].to_numpy() == expected_levels.to_numpy()).mean() >= 0.99


def test_json_lone_surrogate_escape_is_kept_as_replacement_characters() -> None:
    frame = _json(['{"ts":"2024-03-01T00:00:00Z","msg":"a\\ud800b"}', GOOD])
    assert frame["head"].tolist() == [True, True]
    assert frame["message"].iloc[0].startswith("a\ufffd")


@pytest.mark.parametrize("name", list(LOG_FORMATS))
def test_hostile_lines_never_raise(name: str) -> None:
    lines = ["", "\x00", "{", "[" * 10000, "x" * 200_000, "é💥\u202e", '"', "=", "Feb 30 00:00:00 h p: m"]
    frame = LOG_FORMATS[name].parse(pd.Series(lines, dtype=STRING, index=range(3, 3 + len(lines))))
    assert len(frame) == len(lines)
    assert list(frame.index) == list(range(3, 3 + len(lines)))
    assert not frame["head"].iloc[:5].any()


def test_spring_boot_2_with_sleuth_brackets() -> None:
    lines = [
        "2024-03-12 09:05:01.214 ERROR [ledger-service,d2b090f1d16d258e50690670739dcfc3,50690670739dcfc3,true] 1 --- "
        "[io-8080-exec-16] c.e.bank.ledger.api.PostingController     : Posting failed",
        "2024-03-12 09:05:02.001  INFO [ledger-service,,] 1 --- [   scheduling-1] c.e.b.PoolStats : ok",
    ]
    fmt, _ = detect_log_format(lines)
    assert fmt.name == "spring_boot"
    out = fmt.parse(pd.Series(lines, dtype="string[pyarrow]"))
    assert list(out["head"]) == [True, True]
    assert list(out["service"]) == ["ledger-service", "ledger-service"]
    assert out["trace_id"].iloc[0] == "d2b090f1d16d258e50690670739dcfc3"
    assert pd.isna(out["trace_id"].iloc[1])
    assert list(out["level"]) == ["error", "info"]
    assert '"span_id":"50690670739dcfc3"' in out["fields"].iloc[0]


@pytest.mark.parametrize(
    ("extra", "request_id"),
    [
        ("0.123 d2b090f1d16d258e50690670739dcfc3", "d2b090f1d16d258e50690670739dcfc3"),
        ('rt=0.5 req_id="abc-123-def"', "abc-123-def"),
        ("0.2 123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
        ("0.2 0.3", None),
    ],
)
def test_access_log_trailing_request_id(extra: str, request_id: str | None) -> None:
    line = f'203.0.113.7 - - [01/Mar/2024:10:00:00 +0100] "GET / HTTP/1.1" 200 5 "-" "curl/8" {extra}'
    out = LOG_FORMATS["access_combined_extra"].parse(pd.Series([line], dtype="string[pyarrow]"))
    got = out["request_id"].iloc[0]
    assert (pd.isna(got) and request_id is None) or got == request_id


def test_csv_check_survives_an_open_quote_across_the_sample() -> None:
    # found by tests/test_fuzz.py: csv.reader joins the two lines into one record
    from pmtimeline.connectors.log_formats import _csv_check

    assert _csv_check(['time,"message', "x,y"]) is False


def test_formats_travel_to_worker_processes_by_recipe() -> None:
    # Registry formats come back as the very same objects; a CSV format bound to a header is rebuilt
    # from the file's first lines and parses as the original does.
    for fmt in LOG_FORMATS.values():
        assert pickle.loads(pickle.dumps(fmt)) is fmt
    first = ["time,level,msg", "2024-03-12T08:00:00Z,ERROR,disk full"]
    bound = get_format("csv").for_file(first)
    assert bound is not get_format("csv")
    copy = pickle.loads(pickle.dumps(bound))
    lines = pd.Series(first, dtype=STRING)
    pd.testing.assert_frame_equal(copy.parse(lines), bound.parse(lines))
    assert copy.parse(lines)["message"].iloc[1] == "disk full"
    orphan = LogFormat("adhoc", "made in a notebook", check=lambda lines: True, parse=lambda lines: lines.to_frame())
    with pytest.raises(pickle.PicklingError, match="adhoc"):
        pickle.dumps(orphan)


_ACCESS_LAYOUTS = {
    "common": log_formats._ACCESS_HEAD + r"\s*$",
    "combined": log_formats._ACCESS_COMBINED + r"\s*$",
    "combined_extra": log_formats._ACCESS_COMBINED + r" (?P<extra>.*\S)\s*$",
}
# Pieces that move a line's quotes and fields: escapes, quotes and brackets in odd places, other spaces.
_ODD_TEXT = st.text(alphabet=list('ab9- "\\[]/\t\x0bé.=:'), max_size=12)
_PLAIN_TEXT = st.text(alphabet=list("ab9-/é.=:[] "), max_size=12)


@st.composite
def _access_lines(draw: st.DrawFn, odd: bool) -> str:
    """Access-log lines: well-formed ones with varied fields, or (``odd``) with pieces out of place."""

    def piece(plain: st.SearchStrategy[str], strange: st.SearchStrategy[str]) -> str:
        return draw(st.one_of(plain, strange) if odd else plain)

    ip = piece(st.sampled_from(["1.2.3.4", "::1", "-", "é"]), _ODD_TEXT)
    user = piece(st.sampled_from(["-", "bob", "a]b"]), st.sampled_from(['a"b', "", "a b", "x\\"]))
    stamp = piece(st.sampled_from(["12/Mar/2024:09:00:00 +0100", "x [y"]), st.sampled_from(['x"y', "a] b", ""]))
    status = piece(st.sampled_from(["200", "-"]), st.sampled_from(["2000", "", "2 0"]))
    size = piece(st.sampled_from(["512", "-"]), st.sampled_from(["x", ""]))
    line = f'{ip} - {user} [{stamp}] "{piece(_PLAIN_TEXT, _ODD_TEXT)}" {status} {size}'
    for _ in range(draw(st.sampled_from([0, 2, 3] if odd else [0, 2]))):
        line += f' "{piece(_PLAIN_TEXT, _ODD_TEXT)}"'
    return line + draw(st.sampled_from(["", " ", " 0.25", "\t ", "  x ", ' "q" 1', " \\x"]))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.one_of(_access_lines(odd=False), _access_lines(odd=True)), min_size=1, max_size=40),
    layout=st.sampled_from(sorted(_ACCESS_LAYOUTS)),
)
def test_access_log_fields_split_at_quotes_equal_the_regex_captures(lines: list[str], layout: str) -> None:
    pattern = _ACCESS_LAYOUTS[layout]
    series = pd.Series(lines, dtype=STRING, index=range(3, 3 + len(lines)))
    split = log_formats._access_groups(layout)(series, pattern)
    pd.testing.assert_frame_equal(split, extract_groups(series, pattern))


def test_access_log_lines_with_escapes_are_read_by_the_regex() -> None:
    lines = pd.Series(
        [
            '1.2.3.4 - - [12/Mar/2024:09:00:00 +0100] "GET /q?x=\\"1\\" HTTP/1.1" 200 5 "-" "UA \\"v2\\"" 0.5',
            '1.2.3.4 - - [12/Mar/2024:09:00:00 +0100] "GET / HTTP/1.1" 200 5 "-" "curl" rt=0.25 "quoted extra"',
        ],
        dtype=STRING,
    )
    pattern = _ACCESS_LAYOUTS["combined_extra"]
    groups = log_formats._access_groups("combined_extra")(lines, pattern)
    assert groups["request"].tolist() == ['GET /q?x=\\"1\\" HTTP/1.1', "GET / HTTP/1.1"]
    assert groups["user_agent"].tolist() == ['UA \\"v2\\"', "curl"]
    assert groups["extra"].tolist() == ["0.5", 'rt=0.25 "quoted extra"']
    pd.testing.assert_frame_equal(groups, extract_groups(lines, pattern))


def test_plain_access_log_lines_never_reach_the_regex() -> None:
    lines = pd.Series(
        [
            '10.0.0.1 - bob [12/Mar/2024:09:00:00 +0100] "GET /a b HTTP/1.1" 503 - "-" "Mozilla/5.0 [en]" 0.250 rid=x',
            '::1 - - [12/Mar/2024:09:00:01 +0100] "" 400 0 "" "" 1.5\t',
        ],
        dtype=STRING,
    )
    # Lines read from their quotes never compile the pattern: this one would not compile.
    groups = log_formats._access_groups("combined_extra")(lines, "(?P<unclosed")
    assert groups["matched"].all()
    assert groups["request"].fillna("<none>").tolist() == ["GET /a b HTTP/1.1", "<none>"]
    assert groups["ts"].tolist() == ["12/Mar/2024:09:00:00 +0100", "12/Mar/2024:09:00:01 +0100"]
    assert groups["extra"].tolist() == ["0.250 rid=x", "1.5"]


def test_app_fields_and_logger_keys_of_common_json_loggers() -> None:
    frame = _json(
        [
            # Serilog: Application property, SourceContext logger
            '{"@t":"2024-03-01T10:00:00Z","@mt":"cart saved","Application":"cart","SourceContext":"Shop.Cart.Api"}',
            # zap: logger key; the service from an app_name field
            '{"ts":1709287201,"level":"warn","logger":"orders.sync","msg":"slow","app_name":"orders"}',
            # Docker's fluentd driver: the container name with its leading slash, the line in "log"
            '{"time":"2024-03-01T10:00:02Z","container_name":"/checkout-1","log":"GET / 200","source":"stdout"}',
            # a logger only: no service on the line (the source names it later)
            '{"time":"2024-03-01T10:00:03Z","logger_name":"c.b.x.idp.SomeClient","message":"token refreshed"}',
        ]
    )
    assert frame["service"].tolist()[:3] == ["cart", "orders", "checkout-1"]
    assert pd.isna(frame["service"].iloc[3])
    assert frame["logger"].tolist()[:2] == ["Shop.Cart.Api", "orders.sync"]
    assert frame["logger"].iloc[3] == "c.b.x.idp.SomeClient"
    assert frame["message"].tolist() == ["cart saved", "slow", "GET / 200", "token refreshed"]


# --------------------------------------------------------------------------------------------------
# Damage is counted, never contagious (issue 17, item 2): every built-in format, through the CLI

#: Every timestamp layout of the sample files (removed by the "drop the timestamp" damage).
_ANY_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}|\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d+)?"
    r"|\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"
    r"|(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?"
    r"|^\d{6} \d{6}|\b1\d{9}\b"
)


def _damage(line: str, kind: str, rng: random.Random) -> bytes:
    """The line truncated, replaced by random bytes, or without its timestamp(s)."""
    if kind == "truncate":
        return line[: rng.randrange(1, len(line))].encode()
    if kind == "random":
        alphabet = [b for b in range(1, 256) if b not in (0x0A, 0x0D)]
        return bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
    return _ANY_TIMESTAMP.sub("", line).encode()


def _damaged_file(name: str, rate: float, seed: int) -> tuple[list[str], dict[int, bytes], LogFormat]:
    """A file of the format (its sample file repeated, stack traces and all, with its single-line events
    in between) with ``rate`` of its lines damaged. Only single-line events are damaged (whose next line
    is a head), evenly spread, so that which line was damaged never depends on a stack trace after it.
    Returns (the clean lines, the damaged ones by 0-based index, the format bound to the file)."""
    sample = _sample_lines(name)
    header, rows = (sample[:1], sample[1:]) if name == "csv" else ([], sample)
    fmt = get_format(name).for_file(sample)
    parsed = fmt.parse(pd.Series(rows, dtype=STRING))
    head = parsed["head"].tolist()
    continued = parsed["continued"].tolist() if "continued" in parsed else [False] * len(rows)
    single = [r for i, r in enumerate(rows) if head[i] and not continued[i] and (i + 1 == len(rows) or head[i + 1])]
    body: list[str] = []
    while len(body) < 240:
        body += rows + [single[i % len(single)] for i in range(20)]
    lines = header + body
    parsed = fmt.parse(pd.Series(lines, dtype=STRING))
    head = parsed["head"].tolist()
    continued = parsed["continued"].tolist() if "continued" in parsed else [False] * len(lines)
    eligible = [
        i
        for i in range(1, len(lines))
        if head[i] and not continued[i] and (i + 1 == len(lines) or (head[i + 1] and not continued[i + 1]))
    ]
    wanted = round(rate * len(lines))
    assert wanted <= len(eligible)
    rng = random.Random(seed)
    targets = [eligible[i * len(eligible) // wanted] for i in range(wanted)]
    damaged = {i: _damage(lines[i], rng.choice(["truncate", "random", "drop_timestamp"]), rng) for i in targets}
    return lines, damaged, fmt


def _ingest(runner: CliRunner, names: list[str]) -> dict[str, tuple[str, list[int], set[int], set[int]]]:
    """``pmtimeline ingest NAMES``; per file: (format, [lines, events, continuation, rejected], the event
    line numbers, the rejected line numbers)."""
    result = runner.invoke(
        cli, ["ingest", *names, "-o", "events.jsonl", "--rejects", "rejects.csv"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in Path("events.jsonl").read_text(encoding="utf-8").splitlines()]
    with Path("rejects.csv").open(newline="", encoding="utf-8") as fh:
        rejects = list(csv.DictReader(fh))
    out = {}
    for name in names:
        row = re.search(rf"^{re.escape(name)}\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", result.stdout, re.M)
        assert row is not None, result.stdout
        out[name] = (
            row.group(1),
            [int(row.group(i)) for i in range(2, 6)],
            {e["line"] for e in events if e["source"] == name},
            {int(r["line"]) for r in rejects if r["source"] == name},
        )
    return out


RATES = (0.01, 0.15, 0.40)


@pytest.mark.parametrize("name", list(LOG_FORMATS))
def test_damaged_lines_are_counted_and_never_change_the_format(
    name: str, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 %, 15 % and 40 % of the lines damaged (truncated, random bytes, timestamp dropped): the format
    holds and every line is accounted for exactly, the damaged ones as rejects (or, in multi-line
    formats, as continuation lines where they may continue an event), the others as before."""
    monkeypatch.chdir(tmp_path)  # short relative names keep the summary table's rows whole
    files: dict[str, tuple[list[str], dict[int, bytes], LogFormat]] = {}
    for rate in RATES:
        lines, damaged, fmt = _damaged_file(name, rate, seed=len(name) + int(rate * 100))
        files[f"d{round(rate * 100)}.log"] = (lines, damaged, fmt)
        Path(f"d{round(rate * 100)}.log").write_bytes(
            b"".join(damaged.get(i, line.encode()) + b"\n" for i, line in enumerate(lines))
        )
    Path("clean.log").write_text("".join(line + "\n" for line in lines), encoding="utf-8")  # same lines each time
    summary = _ingest(runner, ["clean.log", *files])
    clean_format, clean_counts, clean_events, clean_rejected = summary["clean.log"]
    assert clean_format == name
    for file, (lines, damaged, fmt) in files.items():
        detected, (read, events, continuation, rejected), event_lines, rejected_lines = summary[file]
        assert detected == name, file  # the format holds
        assert read == len(lines) == events + continuation + rejected, file  # no window: nothing outside

        # What each damaged line must become, from the format alone: an event where that line parses as
        # one, a continuation line (multi-line formats) where it may continue the event open before it,
        # else a reject. A damaged line never costs a neighbour anything.
        expected_events = set(clean_events)
        expected_rejected = set(clean_rejected)
        to_continuation = 0
        order = sorted(damaged)
        texts = pd.Series([damaged[i].decode("utf-8", "replace") for i in order], dtype=STRING)
        alone = fmt.parse(texts)  # each damaged line on its own (no two of them are P/F parts of one line)
        may_continue = fmt.multiline & alone["reject_reason"].isna().to_numpy() & ~starts_event(fmt, texts)
        for k, index in enumerate(order):
            open_event = index not in expected_rejected  # line numbers are 1-based: ``index`` is the line before
            expected_events.discard(index + 1)
            if bool(alone["head"].iloc[k]):
                expected_events.add(index + 1)
            elif may_continue[k] and open_event:
                to_continuation += 1
            else:
                expected_rejected.add(index + 1)
        assert event_lines == expected_events, file
        assert rejected_lines == expected_rejected, file
        assert rejected == len(expected_rejected), file
        assert continuation == clean_counts[2] + to_continuation, file
        if not fmt.multiline:  # the damage was real: most damaged lines are no event of the format
            assert len(expected_rejected - clean_rejected) >= len(damaged) // 2, file


# --------------------------------------------------------------------------------------------------
# No recursion on input (issue 17, item 4)


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def test_json_depth_limit_is_exact() -> None:
    limit = log_formats.MAX_JSON_DEPTH
    ok = '{"ts":"2024-03-01T10:00:00Z","x":' + _nested(limit - 1) + "}"
    deep = '{"ts":"2024-03-01T10:00:01Z","x":' + _nested(limit) + "}"
    # Brackets inside strings do not nest: a message full of them is an ordinary line.
    quoted = json.dumps({"ts": "2024-03-01T10:00:02Z", "msg": "[{" * 500 + '\\"}' * 10})
    for lines in ([ok, deep, quoted], [ok, deep, quoted, "{broken"]):  # with and without a broken neighbour
        frame = _json(lines)
        assert frame["reject_reason"].tolist()[:3] == [NA, "too_deep", NA]
        assert frame["head"].tolist()[:3] == [True, False, True]
        fields = json.loads(frame["fields"].iloc[0])
        assert fields["x" + ".a" * (limit - 1)] == 1  # flattened to the last level
    assert _json([ok, deep, quoted, None])["reject_reason"].tolist() == [NA, "too_deep", NA, "json_decode"]


def test_json_of_any_depth_never_raises() -> None:
    lines = [_nested(d) for d in (10, 63, 64, 65, 999, 1001, 20_000)] + ["[" * 200_000, "{" * 200_000]
    frame = _json(lines)
    assert len(frame) == len(lines)
    assert frame["reject_reason"].tolist()[3:] == ["too_deep"] * 6


def test_csv_header_holds_when_the_first_rows_are_damaged() -> None:
    header = "time,level,msg"
    rows = [f"2024-03-01T10:00:0{i}Z,error,m{i}" for i in range(5)]
    damaged = [header, "2024-03-01T10:00:00Z,err", rows[1][:5], *rows[2:]]
    fmt, reason = detect_log_format(damaged)
    assert (fmt.name, reason) == ("csv", "csv: 4 of 6 sample lines match")  # header + 3 rows, a majority
    frame = fmt.parse(pd.Series(damaged, dtype=STRING))
    assert frame["reject_reason"].tolist() == ["csv_header", "csv_field_count", "csv_field_count", NA, NA, NA]
    # Most rows must fit the header: otherwise the file is no CSV with that header.
    assert detect_log_format([header, "a,b", "c,d", rows[0]])[0].name == "generic"
