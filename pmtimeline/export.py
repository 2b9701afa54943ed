"""Exports of the event table: CSV, JSON lines, Parquet, and Timesketch's import formats.

=====================  ==========================================================================
format                 what
=====================  ==========================================================================
``csv``                RFC 4180 (CRLF, quoted where needed), one row per event, times ISO 8601 UTC;
                       control, bidi and invisible characters but newlines and tabs shown escaped
                       (``\\x1b``, ``\\x0d``, ``\\u202e``); string cells that a spreadsheet would
                       evaluate (``= + - @`` TAB at the start) get a leading ``'``; numeric columns
                       stay numeric
``jsonl``              one JSON object per event, times ISO 8601 UTC, nulls as ``null``; control,
                       bidi and invisible characters as JSON ``\\u`` escapes (the values unchanged)
``parquet``            the frame as is, with its dtypes (``string[pyarrow]``, ``Int64``, UTC times)
``timesketch-jsonl``   Timesketch's JSONL import: ``message``, ``datetime`` (ISO 8601),
                       ``timestamp_desc``, ``timestamp`` (microseconds since the epoch), then the
                       other columns
``timesketch-csv``     the same columns as CSV (with the CSV formula neutralizing)
=====================  ==========================================================================

:func:`export_events` returns bytes; writing them is the caller's job.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pmtimeline.errors import ConfigError, OutputError, SchemaError
from pmtimeline.escaping import csv_column, has_controls, json_safe

EXPORT_FORMATS: Final = ("csv", "jsonl", "parquet", "timesketch-jsonl", "timesketch-csv")

#: File name endings and the export format each means; longer endings are checked first.
_EXTENSIONS: Final = (
    (".timesketch.jsonl", "timesketch-jsonl"),
    (".timesketch.csv", "timesketch-csv"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".csv", "csv"),
    (".parquet", "parquet"),
)
#: Timesketch's ``timestamp_desc`` of each event kind (alerts by state).
TIMESTAMP_DESC: Final = {
    "log": "Event Logged",
    "request": "Request Logged",
    "change": "Change",
}
ALERT_TIMESTAMP_DESC: Final = {
    "firing": "Alert Fired",
    "acknowledged": "Alert Acknowledged",
    "resolved": "Alert Resolved",
}
_ISO_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
#: Free-text columns: almost every value is distinct, so a dictionary only costs time (Arrow builds
#: one, then falls back to plain encoding), and min/max statistics of log text serve no reader.
_FREE_TEXT_COLUMNS: Final = frozenset({"message", "fields", "ts_raw", "url_path", "trace_id", "request_id"})
#: Columns of (nearly) distinct numbers: plain encoding, but statistics kept (time filters use them).
_DISTINCT_VALUE_COLUMNS: Final = frozenset({"timestamp", "line", "duration_ms"})


def export_format_for_path(path: str) -> str:
    """The export format a file name asks for, by its ending (``.timesketch.jsonl`` before ``.jsonl``).

    Raises:
        ConfigError: the ending is not one of the export formats.
    """
    name = str(path).lower()
    for ending, fmt in _EXTENSIONS:
        if name.endswith(ending):
            return fmt
    endings = ", ".join(e for e, _ in _EXTENSIONS)
    raise ConfigError(f"cannot tell the export format of {path!r}: use a name ending in {endings}")


def export_events(events: pd.DataFrame, fmt: str) -> bytes:
    """The events in export format ``fmt`` (one of :data:`EXPORT_FORMATS`).

    Raises:
        ConfigError: unknown format.
        SchemaError: the frame lacks the ``timestamp`` column (or ``message``, for Timesketch).
        OutputError: Parquet could not encode a column.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet":
        return _parquet(events)
    if "timestamp" not in events.columns:
        raise SchemaError("cannot export events without a timestamp column")
    frame = _timesketch(events) if fmt.startswith("timesketch") else _with_iso_times(events)
    if fmt.endswith("csv"):
        return _csv(frame)
    return _jsonl(frame)


def _iso(times: pd.Series) -> pd.Series:
    utc = pd.to_datetime(times, utc=True)
    return utc.dt.strftime(_ISO_FORMAT).astype("string")


def _with_iso_times(events: pd.DataFrame) -> pd.DataFrame:
    out = events.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(out[column].dtype):
            out[column] = _iso(out[column])
    return out


def _timesketch(events: pd.DataFrame) -> pd.DataFrame:
    if "message" not in events.columns:
        raise SchemaError("Timesketch export needs a message column")
    kind = events["kind"].astype("string") if "kind" in events.columns else pd.Series("log", index=events.index)
    desc = kind.map(TIMESTAMP_DESC).astype("string")
    if "alert_state" in events.columns:
        alert = events["alert_state"].astype("string").map(ALERT_TIMESTAMP_DESC).astype("string")
        desc = desc.mask(kind.eq("alert").fillna(False), alert.fillna("Alert"))
    times = pd.to_datetime(events["timestamp"], utc=True)
    micros = times.astype("datetime64[ns, UTC]").astype("int64") // 1_000
    head = pd.DataFrame(
        {
            "message": events["message"].astype("string").fillna(""),
            "datetime": _iso(times),
            "timestamp_desc": desc.fillna("Event Logged"),
            "timestamp": pd.Series(micros.to_numpy(dtype=np.int64), index=events.index),
        }
    )
    rest = _with_iso_times(events.drop(columns=["timestamp", "message"]))
    # Timesketch reserves these names; keep ours under a prefix rather than overwrite its fields.
    rest = rest.rename(columns={c: f"event_{c}" for c in rest.columns if c in ("datetime", "timestamp_desc")})
    return pd.concat([head, rest], axis=1)


def _csv(frame: pd.DataFrame) -> bytes:
    safe = frame.apply(csv_column)
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, fields with separators, quotes or line breaks quoted, quotes doubled.
    safe.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8")


def _jsonl(frame: pd.DataFrame) -> bytes:
    if frame.empty:
        return b""
    text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    # Non-ASCII text stays readable; controls, bidi overrides and invisible characters become JSON
    # escapes (the same values to a reader, nothing for a terminal or an editor to obey). The columns
    # are checked with Arrow first: scanning the whole text costs half as much again as writing it.
    if any(has_controls(frame[column]) for column in frame.columns):
        text = json_safe(text)
    return text.encode("utf-8") + (b"" if text.endswith("\n") else b"\n")


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Keyword arguments of :func:`pyarrow.parquet.write_table` / ``ParquetWriter`` for an event
    table: zstd, dictionary encoding only for the repetitive columns (service, level, status, ...),
    statistics for all but the free-text ones. A third less CPU and a sixth smaller file than
    dictionary-encoding everything, and the file reads back the same."""
    names = [field.name for field in schema]
    return {
        "compression": "zstd",
        "use_dictionary": [n for n in names if n not in _FREE_TEXT_COLUMNS | _DISTINCT_VALUE_COLUMNS],
        "write_statistics": [n for n in names if n not in _FREE_TEXT_COLUMNS],
    }


def _parquet(events: pd.DataFrame) -> bytes:
    try:
        table = pa.Table.from_pandas(events, preserve_index=False)
        sink = io.BytesIO()
        pq.write_table(table, sink, **parquet_options(table.schema))
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise OutputError(f"cannot write the events as Parquet: {exc}") from exc
    return sink.getvalue()
