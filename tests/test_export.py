"""Exports: CSV (formula-safe, RFC 4180), JSONL, Parquet and Timesketch."""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd
import pytest
from incident_sample import CSV_PAYLOADS, sample_notable

from pmtimeline.errors import ConfigError, SchemaError
from pmtimeline.export import EXPORT_FORMATS, export_events, export_format_for_path
from pmtimeline.schema import EVENT_COLUMNS, empty_events


def payload_events() -> pd.DataFrame:
    """One event per CSV payload, in the message, service and user; with negative numbers around."""
    frame = sample_notable(background=0).head(len(CSV_PAYLOADS)).copy()
    assert len(frame) == len(CSV_PAYLOADS)
    frame["message"] = pd.array(CSV_PAYLOADS, dtype="string[pyarrow]")
    frame["service"] = pd.array(CSV_PAYLOADS, dtype="string[pyarrow]")
    frame["user"] = pd.array(CSV_PAYLOADS, dtype="string[pyarrow]")
    frame["duration_ms"] = -5.0
    frame["http_status"] = pd.array([-1, 200, 503, 404, 500, 201, 302, 418], dtype="Int64")
    return frame.reset_index(drop=True)


def read_csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("out/events.csv", "csv"),
        ("EVENTS.JSONL", "jsonl"),
        ("e.ndjson", "jsonl"),
        ("e.parquet", "parquet"),
        ("case.timesketch.jsonl", "timesketch-jsonl"),
        ("case.timesketch.csv", "timesketch-csv"),
    ],
)
def test_format_for_path(path: str, fmt: str) -> None:
    assert export_format_for_path(path) == fmt
    assert fmt in EXPORT_FORMATS


@pytest.mark.parametrize("path", ["events.xlsx", "events", "events.json", "csv"])
def test_unknown_extension_is_a_config_error(path: str) -> None:
    with pytest.raises(ConfigError, match="cannot tell the export format"):
        export_format_for_path(path)


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown export format 'xlsx'"):
        export_events(sample_notable(background=0), "xlsx")


def test_csv_neutralizes_formulas_and_round_trips() -> None:
    events = payload_events()
    data = export_events(events, "csv")
    assert b"\r\n" in data
    rows = read_csv_rows(data)
    header, body = rows[0], rows[1:]
    assert header == list(EVENT_COLUMNS)
    assert len(body) == len(events)
    col = {name: i for i, name in enumerate(header)}
    for row, payload in zip(body, CSV_PAYLOADS, strict=True):
        for name in ("message", "service", "user"):
            if "\r" in payload:
                # A CR is shown escaped (it would overwrite the line on a terminal): no trigger left.
                assert row[col[name]] == payload.replace("\r", "\\x0d")
            else:
                assert row[col[name]] == "'" + payload
        # Numeric columns stay numeric: no prefix on negative numbers.
        assert row[col["duration_ms"]] == "-5.0"
        assert row[col["line"]].isdigit()
    assert body[0][col["http_status"]] == "-1"


def test_csv_numeric_columns_read_back_as_numbers() -> None:
    back = pd.read_csv(io.BytesIO(export_events(payload_events(), "csv")))
    assert pd.api.types.is_float_dtype(back["duration_ms"])
    assert (back["duration_ms"] == -5.0).all()
    assert pd.api.types.is_integer_dtype(back["line"])
    assert back["http_status"].tolist() == [-1, 200, 503, 404, 500, 201, 302, 418]


def test_csv_times_are_iso_utc() -> None:
    events = sample_notable(background=0)
    rows = read_csv_rows(export_events(events, "csv"))
    col = rows[0].index("timestamp")
    times = [pd.Timestamp(r[col]) for r in rows[1:]]
    assert all(r[col].endswith("Z") for r in rows[1:])
    assert times == list(events["timestamp"])


def test_jsonl_one_object_per_event() -> None:
    events = sample_notable(background=20)
    lines = export_events(events, "jsonl").decode("utf-8").splitlines()
    assert len(lines) == len(events)
    records = [json.loads(line) for line in lines]
    assert list(records[0]) == list(EVENT_COLUMNS)
    assert [pd.Timestamp(r["timestamp"]) for r in records] == list(events["timestamp"].dt.floor("us"))
    change = next(r for r in records if r["kind"] == "change")
    assert change["change_type"] == "deploy"
    assert change["http_status"] is None
    assert all(r["timestamp"].endswith("Z") for r in records)


def test_parquet_round_trip_keeps_dtypes() -> None:
    events = sample_notable(background=50)
    back = pd.read_parquet(io.BytesIO(export_events(events, "parquet")))
    assert list(back.columns) == list(events.columns)
    assert back.dtypes.astype(str).tolist() == events.dtypes.astype(str).tolist()
    pd.testing.assert_frame_equal(back, events)


def test_parquet_dictionary_encodes_only_repetitive_columns() -> None:
    import pyarrow.parquet as pq

    frame = sample_notable()
    data = export_events(frame, "parquet")
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for e in columns["message"].encodings)
    assert not columns["message"].is_stats_set
    assert any("DICTIONARY" in e for e in columns["service"].encodings)
    assert columns["timestamp"].is_stats_set
    assert columns["message"].compression == "ZSTD"
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)), frame.reset_index(drop=True))


def test_timesketch_jsonl_has_the_required_columns() -> None:
    events = sample_notable(background=5)
    records = [json.loads(line) for line in export_events(events, "timesketch-jsonl").decode().splitlines()]
    assert len(records) == len(events)
    assert list(records[0])[:4] == ["message", "datetime", "timestamp_desc", "timestamp"]
    for record, (_, event) in zip(records, events.iterrows(), strict=True):
        assert record["message"] == event["message"]
        assert pd.Timestamp(record["datetime"]) == event["timestamp"].floor("us")
        assert record["timestamp"] == event["timestamp"].value // 1000
    descs = {(r["kind"], r["alert_state"]): r["timestamp_desc"] for r in records}
    assert descs[("alert", "firing")] == "Alert Fired"
    assert descs[("alert", "acknowledged")] == "Alert Acknowledged"
    assert descs[("alert", "resolved")] == "Alert Resolved"
    assert descs[("change", None)] == "Change"
    assert descs[("log", None)] == "Event Logged"
    assert descs[("request", None)] == "Request Logged"


def test_timesketch_csv_is_formula_safe() -> None:
    rows = read_csv_rows(export_events(payload_events(), "timesketch-csv"))
    assert rows[0][:4] == ["message", "datetime", "timestamp_desc", "timestamp"]
    assert [r[0] for r in rows[1:]] == [p.replace("\r", "\\x0d") if "\r" in p else "'" + p for p in CSV_PAYLOADS]
    assert all(r[3].isdigit() for r in rows[1:])


def test_empty_frame_exports() -> None:
    empty = empty_events()
    assert read_csv_rows(export_events(empty, "csv")) == [list(EVENT_COLUMNS)]
    assert export_events(empty, "jsonl") == b""
    back = pd.read_parquet(io.BytesIO(export_events(empty, "parquet")))
    assert back.empty
    assert list(back.columns) == list(EVENT_COLUMNS)
    assert read_csv_rows(export_events(empty, "timesketch-csv"))[0][:4] == [
        "message",
        "datetime",
        "timestamp_desc",
        "timestamp",
    ]


def test_frame_without_timestamp_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="timestamp"):
        export_events(pd.DataFrame({"message": ["x"]}), "jsonl")


#: Characters a terminal obeys or that reorder/hide text: each must leave the exports escaped.
HOSTILE_VALUES = (
    "ok\x1b[2J\x07 bell",
    "OK\rFAIL",
    "del\x7f nel\x85 csi\x9b",
    "evil\u202egnp.exe \u2066iso\u2069 \u200fmark \u061c",
    "zero\u200bwidth\ufeff \u2028sep\u2029 tag\U000e0041",
    "plain Störung 😀",
    "",
    "-",
)
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\U000e0000-\U000e007f]"
)


def hostile_events() -> pd.DataFrame:
    frame = sample_notable(background=0).head(len(HOSTILE_VALUES)).copy()
    for column in ("message", "service", "source", "user", "fields"):
        frame[column] = pd.array(HOSTILE_VALUES, dtype="string[pyarrow]")
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["jsonl", "timesketch-jsonl"])
def test_jsonl_writes_controls_as_json_escapes_and_reads_back_unchanged(fmt: str) -> None:
    events = hostile_events()
    text = export_events(events, fmt).decode("utf-8")
    assert RAW_CONTROL.findall(text) == []
    assert "\\u202e" in text
    assert "\\udb40\\udc41" in text  # the tag character, as JSON writes an astral one
    assert "Störung 😀" in text  # other text stays readable
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["message"] for r in records] == list(HOSTILE_VALUES)
    assert [r["source"] for r in records] == list(HOSTILE_VALUES)


def test_jsonl_keeps_a_lone_del_escaped_in_ascii_text() -> None:
    events = hostile_events().head(1)
    events["message"] = pd.array(["rub\x7fout"], dtype="string[pyarrow]")
    text = export_events(events, "jsonl").decode("utf-8")
    assert "\x7f" not in text
    assert json.loads(text)["message"] == "rub\x7fout"


@pytest.mark.parametrize("fmt", ["csv", "timesketch-csv"])
def test_csv_shows_controls_escaped_but_keeps_line_feeds(fmt: str) -> None:
    events = hostile_events()
    events.loc[len(events) - 1, "message"] = "trace\n  at x\tend"
    data = export_events(events, fmt).decode("utf-8")
    assert RAW_CONTROL.findall(data.replace("\r\n", "\n")) == []
    rows = read_csv_rows(data.encode("utf-8"))
    message = rows[0].index("message")
    shown = [row[message] for row in rows[1:]]
    assert shown[0] == "ok\\x1b[2J\\x07 bell"
    assert shown[1] == "OK\\x0dFAIL"
    assert shown[3] == "evil\\u202egnp.exe \\u2066iso\\u2069 \\u200fmark \\u061c"
    assert shown[4] == "zero\\u200bwidth\\ufeff \\u2028sep\\u2029 tag\\U000e0041"
    assert shown[5] == "plain Störung 😀"
    assert shown[-1] == "trace\n  at x\tend"
