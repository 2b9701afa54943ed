"""Alert and incident-tool files as timeline events: webhook captures and alert exports.

:func:`detect_alert_format` recognizes a file from its first bytes; :class:`AlertFileConnector`
reads it into event frames with ``kind == "alert"``, one event per alert state change. The per-tool
payload readers live in :mod:`pmtimeline.connectors.alert_payloads`.

A file may hold one payload (pretty-printed over many lines), a JSON array of payloads, payloads one
per line (NDJSON), or a CSV export with a header line.

Accounting, per physical line (``lines_read == event_lines + continuation_lines + rejected +
outside_window``):

* the first line of a payload (an NDJSON line, an array element, a CSV row) that produced at least
  one event is an event line, its other lines are continuation lines; blank lines and the lines of
  JSON structure between payloads (``[``, ``]``) and a CSV header are continuation lines;
* a payload that is not valid JSON, has an unknown shape or no usable time is rejected with its
  reason (``json_decode``, ``too_deep`` past ``MAX_JSON_DEPTH`` levels, ``unknown_payload``,
  ``no_timestamp``, ``not_an_alert``, ``csv_columns``) for all its lines;
* a payload whose events all fall outside the window ``[config.start, config.end)`` counts its lines
  in ``outside_window``; when only some of its events are outside, its lines stay event lines, the
  outside events are dropped and a note says how many;
* an event equal in ``(alert_id, alert_state, timestamp)`` (and tool event type) to one already read
  from the same file is a repeated notification: it is dropped and counted in ``duplicates``.
"""

from __future__ import annotations

import bisect
import csv
import json
import re
from collections import Counter
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from pmtimeline.config import TimelineConfig, match_source
from pmtimeline.connectors.alert_payloads import (
    ALERT_NAME_COLUMNS,
    ALERT_ONLY_COLUMNS,
    END_TIME_COLUMNS,
    NAME_COLUMNS,
    PAYLOAD_READERS,
    STATE_ALIASES,
    STATE_COLUMNS,
    TIME_COLUMNS,
    AlertEvent,
    PayloadRejectedError,
    datadog_key,
    normalize_state,
)
from pmtimeline.connectors.log_formats import MAX_JSON_DEPTH, REJECT_TOO_DEEP, nesting_depth
from pmtimeline.connectors.rawio import LineReader
from pmtimeline.errors import UnknownFormatError
from pmtimeline.escaping import strip_controls
from pmtimeline.schema import SEVERITY_NUMBER, conform_events, empty_events
from pmtimeline.sources import Reject, SourceAccounting

#: The alert formats, in detection order, with what each one reads.
ALERT_FORMATS: Final[Mapping[str, str]] = {
    "alertmanager": "Prometheus Alertmanager webhook payloads (version 4)",
    "grafana": "Grafana Alerting webhook payloads (version 1)",
    "pagerduty": "PagerDuty v3 webhook deliveries (incident events)",
    "opsgenie": "Opsgenie webhook alert actions",
    "datadog": "Datadog monitor webhook payloads",
    "alert_json": "generic alert exports as JSON (array or NDJSON)",
    "alert_csv": "generic alert exports as CSV",
}

_EXCERPT_LIMIT: Final = 512
_PAGERDUTY_DATA_TYPES: Final = frozenset({"incident", "incident_note", "incident_status_update", "incident_responder"})
_CSV_DELIMITERS: Final = (",", ";", "\t", "|")


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------


def classify_alert_record(record: Mapping[str, Any]) -> str | None:
    """The alert format of one decoded JSON payload, or None when it is not an alert payload."""
    alerts = record.get("alerts")
    if isinstance(alerts, list) and any(k in record for k in ("version", "groupKey", "receiver", "status")):
        if str(record.get("version")) == "1" or "orgId" in record:
            return "grafana"
        return "alertmanager"
    event = record.get("event")
    if isinstance(event, dict) and str(event.get("event_type", "")).startswith("incident."):
        return "pagerduty"
    if record.get("type") in _PAGERDUTY_DATA_TYPES and "pagerduty.com" in json.dumps(record):
        return "pagerduty"
    alert = record.get("alert")
    if isinstance(alert, dict) and isinstance(record.get("action"), str) and ("alertId" in alert or "alias" in alert):
        return "opsgenie"
    keys = {datadog_key(str(k)) for k in record}
    if keys & {"alerttransition", "alertcyclekey"} or (
        "alertid" in keys and keys & {"alerttype", "eventtitle", "eventmsg", "alertpriority"}
    ):
        return "datadog"
    if _is_generic_alert_record({str(k).strip().lower(): v for k, v in record.items()}):
        return "alert_json"
    return None


def _is_generic_alert_record(row: Mapping[str, Any]) -> bool:
    """A time column, a name column, a status *word* (firing, resolved, ...) and one alert-only column.

    Conservative on purpose: JSON and CSV logs have time, level and message, often a ``name``
    (bunyan) or a ``status`` or ``state`` (HTTP status, connection state). An export needs, beside
    its status word, an unmistakable alert-name column (``alertname``), an alert-only column
    (``severity``, ``priority``, ``fingerprint``, ``alert_id`` ...) or an end-time column.
    """
    keys = set(row)
    if not keys & set(TIME_COLUMNS) or not keys & set(NAME_COLUMNS) or keys & {"log.level", "msg"}:
        return False
    if not any(normalize_state(row.get(c)) for c in STATE_COLUMNS):
        return False
    return bool(keys & (ALERT_NAME_COLUMNS | ALERT_ONLY_COLUMNS | set(END_TIME_COLUMNS)))


def _first_json_value(text: str) -> object:
    """The first top-level JSON value of ``text`` (the first element of an array); raises ValueError."""
    decoder = json.JSONDecoder()
    pos = 0
    if text.startswith("["):
        pos = len(text) - len(text[1:].lstrip()) if len(text) > 1 else 1
        if text[pos:].startswith("]"):
            raise ValueError("empty array")
    value, _end = decoder.raw_decode(text, pos)
    return value


def _detect_by_keys(text: str) -> str | None:
    """Key patterns of a payload too large to decode from the head of its file."""
    if re.search(r'"alerts"\s*:\s*\[', text) and '"startsAt"' in text:
        return "grafana" if re.search(r'"version"\s*:\s*"1"|"orgId"\s*:', text) else "alertmanager"
    if re.search(r'"event_type"\s*:\s*"incident\.', text) and '"occurred_at"' in text:
        return "pagerduty"
    if re.search(r'"action"\s*:\s*"', text) and '"alertId"' in text:
        return "opsgenie"
    return None


def _detect_csv(text: str) -> str | None:
    lines = [line for line in text.splitlines()[:25] if line.strip()]
    if len(lines) < 2:
        return None
    header_line = lines[0]
    delimiter = max(_CSV_DELIMITERS, key=header_line.count)
    if header_line.count(delimiter) < 2:
        return None
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]]
    if len(set(header)) != len(header):
        return None
    records = [dict(zip(header, row, strict=False)) for row in rows[1:] if len(row) == len(header)]
    if not records:
        return None
    if not any(c in header for c in TIME_COLUMNS) or not any(c in header for c in NAME_COLUMNS):
        return None
    state_cols = [c for c in STATE_COLUMNS if c in header]
    if not state_cols:
        return None
    # every status value of the first rows must be a status word (an HTTP status column is not)
    values = {r[c].strip().lower() for r in records for c in state_cols if r[c].strip()}
    if not values or not values <= set(STATE_ALIASES):
        return None
    return "alert_csv" if _is_generic_alert_record(records[0]) else None


def detect_alert_format(head_text: str) -> str | None:
    """The alert format of a file from the first ~64 KiB of its decoded text, or None for a log file.

    Cheap and conservative: a JSON file is classified by its first payload (the first element of
    an array, the first NDJSON line); a CSV file by its header and first rows. JSON-lines and CSV
    logs (time, level, message) are not claimed.
    """
    text = head_text.lstrip("\ufeff \t\r\n")
    if not text:
        return None
    if text[0] in "[{":
        try:
            first = _first_json_value(text)
        except (ValueError, RecursionError):  # a JSONDecodeError: a payload longer than the head (or too deep)
            return _detect_by_keys(text)
        return classify_alert_record(first) if isinstance(first, dict) else None
    return _detect_csv(text)


# --------------------------------------------------------------------------------------------------
# Splitting a file into payloads
# --------------------------------------------------------------------------------------------------


@dataclass
class _Segment:
    """Lines ``first..last`` (0-based, inclusive) holding one payload, or a rejected stretch."""

    first: int
    last: int
    value: Any = None
    reason: str | None = None  # set for a stretch that could not be decoded
    detail: str = ""


@dataclass
class _Outcome:
    """What one segment became."""

    segment: _Segment
    events: list[AlertEvent] = field(default_factory=list)
    reason: str | None = None
    detail: str = ""


class _TooDeepError(Exception):
    """A JSON value nested deeper than MAX_JSON_DEPTH (internal: becomes a ``too_deep`` reject)."""


class _JsonSplitter:
    """Top-level JSON values of a text, with their line ranges; elements of arrays are payloads.

    Resynchronizes after a syntax error at the next line that starts a value at the same
    indentation (NDJSON lines and concatenated payloads start in column 0), so one bad payload
    costs only its own lines.
    """

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._text = "\n".join(lines)
        self._starts: list[int] = []
        offset = 0
        for line in lines:
            self._starts.append(offset)
            offset += len(line) + 1
        self._decoder = json.JSONDecoder()
        # The decoder recurses once per level: a file nested deeper than MAX_JSON_DEPTH anywhere has
        # each value measured before it is used (one linear scan of the file decides).
        self._deep = nesting_depth(self._text) > MAX_JSON_DEPTH

    def _decode(self, pos: int) -> tuple[Any, int]:
        try:
            value, end = self._decoder.raw_decode(self._text, pos)
        except RecursionError:
            raise _TooDeepError from None
        if self._deep and nesting_depth(self._text[pos:end]) > MAX_JSON_DEPTH:
            raise _TooDeepError
        return value, end

    def _too_deep(self, pos: int, indent: str) -> tuple[_Segment, int]:
        segment, pos = self._resync(pos, indent)
        return _Segment(segment.first, segment.last, reason=REJECT_TOO_DEEP, detail="nested too deep"), pos

    def _line_of(self, pos: int) -> int:
        return max(bisect.bisect_right(self._starts, pos) - 1, 0)

    def _skip_ws(self, pos: int) -> int:
        text = self._text
        while pos < len(text) and text[pos] in " \t\r\n\ufeff":
            pos += 1
        return pos

    def _resync(self, pos: int, indent: str) -> tuple[_Segment, int]:
        """Reject from the line of ``pos`` up to the next line starting with ``indent`` + ``{`` or ``[``."""
        first = self._line_of(pos)
        pattern = re.compile(re.escape(indent) + r"[\[{]")
        nxt = next((i for i in range(first + 1, len(self._lines)) if pattern.match(self._lines[i])), len(self._lines))
        return _Segment(first, nxt - 1, reason="json_decode", detail="not valid JSON"), (
            self._starts[nxt] if nxt < len(self._lines) else len(self._text)
        )

    def _indent_at(self, pos: int) -> str:
        line = self._lines[self._line_of(pos)]
        stripped = line.lstrip(" \t")
        return line[: len(line) - len(stripped)]

    def segments(self) -> Iterator[_Segment]:
        text = self._text
        pos = self._skip_ws(0)
        while pos < len(text):
            if text[pos] == "[":
                pos = yield from self._array(pos)
                continue
            try:
                value, end = self._decode(pos)
            except json.JSONDecodeError:
                segment, pos = self._resync(pos, "")
                yield segment
            except _TooDeepError:
                segment, pos = self._too_deep(pos, "")
                yield segment
            else:
                yield _Segment(self._line_of(pos), self._line_of(end - 1), value)
                pos = end
            pos = self._skip_ws(pos)

    def _array(self, pos: int) -> Generator[_Segment, None, int]:
        """Yield the elements of the array at ``pos``; the generator's value is the position after it."""
        text = self._text
        pos = self._skip_ws(pos + 1)
        while pos < len(text):
            if text[pos] == "]":
                return self._skip_ws(pos + 1)
            try:
                value, end = self._decode(pos)
            except json.JSONDecodeError:
                segment, pos = self._resync(pos, self._indent_at(pos))
                yield segment
                continue
            except _TooDeepError:
                segment, pos = self._too_deep(pos, self._indent_at(pos))
                yield segment
                continue
            yield _Segment(self._line_of(pos), self._line_of(end - 1), value)
            pos = self._skip_ws(end)
            if text.startswith(",", pos):
                pos = self._skip_ws(pos + 1)
            elif not text.startswith("]", pos) and pos < len(text):
                segment, pos = self._resync(pos, self._indent_at(pos))
                yield segment
        return pos


def _csv_segments(lines: list[str]) -> Iterator[_Segment]:
    """One segment per CSV row (quoted fields may span lines); the header is structure."""
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        return
    delimiter = max(_CSV_DELIMITERS, key=lines[header_index].count)
    reader = csv.reader((line + "\n" for line in lines[header_index:]), delimiter=delimiter)
    header: list[str] | None = None
    start = header_index
    try:
        for row in reader:
            end = header_index + reader.line_num - 1
            if header is None:
                header = [h.strip() for h in row]
            elif row and any(cell.strip() for cell in row):
                if len(row) != len(header):
                    yield _Segment(
                        start, end, reason="csv_columns", detail=f"{len(row)} columns, header has {len(header)}"
                    )
                else:
                    yield _Segment(start, end, dict(zip(header, row, strict=True)))
            start = end + 1
    except csv.Error as exc:
        yield _Segment(start, len(lines) - 1, reason="csv_syntax", detail=str(exc))


# --------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _message(event: AlertEvent) -> str:
    """``[FIRING] HighErrorRate payments: 5xx above 5%``; annotations carry their event type."""
    if event.label:
        tag = event.label
    elif event.alert_state:
        tag = event.alert_state.upper()
    else:
        tag = (event.transition.rsplit(".", 1)[-1] or "event").upper()
    head = f"[{tag}] {event.alert_name or event.alert_id}"
    if event.service:
        head += f" {event.service}"
    return _one_line(f"{head}: {event.summary}" if event.summary and event.summary != event.alert_name else head)


class AlertFileConnector:
    """Read one alert file (webhook captures or an alert export) into alert events.

    Args:
        path: the file.
        config: window (``start``/``end``), zones for naive export times (``tz``/``source_tz``), and
            ``max_rejects_kept``.
        format_name: force one of :data:`ALERT_FORMATS`; None detects it from the content.

    Raises (from ``read()``):
        SourceError: the file cannot be read.
        UnknownFormatError: it is not an alert file, or ``format_name`` is not an alert format.
    """

    def __init__(self, path: str, config: TimelineConfig, format_name: str | None = None) -> None:
        if format_name is not None and format_name not in ALERT_FORMATS:
            raise UnknownFormatError(f"unknown alert format {format_name!r}; use one of {', '.join(ALERT_FORMATS)}")
        self.name = path
        self._path = path
        self._config = config
        self._format_name = format_name
        self._accounting = SourceAccounting(name=path, path=path)
        self._rejects: list[Reject] = []
        self._io_rejects: dict[int, str] = {}  # 0-based line -> reason, from the I/O layer

    def accounting(self) -> list[SourceAccounting]:
        return [self._accounting]

    def rejects(self) -> list[Reject]:
        return list(self._rejects)

    def _zone(self) -> str:
        zone = match_source(self._config.source_tz, self._path, self._config.input_roots)
        return zone if zone is not None else self._config.tz

    def _read_lines(self) -> list[str]:
        """The file's lines as :mod:`~pmtimeline.connectors.rawio` decodes them (compression, BOM,
        UTF-16, bad bytes, NUL bytes, overlong lines). Lines rejected at the I/O layer are recorded
        in ``self._io_rejects`` and read as blank lines, so payloads around them still decode."""
        acc = self._accounting
        reader = LineReader(self._path, self._config)
        lines: list[str] = []
        truncated = 0
        for block in reader.blocks():
            acc.decode_errors += block.decode_errors
            truncated += block.truncated_lines
            rejected = block.io_reject.notna()
            if bool(rejected.any()):
                # block.lines has a RangeIndex, so positions are offsets from first_line
                positions = np.flatnonzero(rejected.to_numpy(dtype=bool))
                for position, reason in zip(positions, block.io_reject[rejected], strict=True):
                    self._io_rejects[block.first_line - 1 + int(position)] = str(reason)
            lines.extend(block.lines.fillna("").tolist())
        if truncated:
            acc.notes.append(f"{truncated} line(s) longer than max_line_bytes were cut (a cut payload is rejected)")
        if reader.stop_reason:
            acc.partial = True
            acc.partial_reason = reader.stop_reason
        return lines

    def read(self) -> Iterator[pd.DataFrame]:
        """Yield the file's alert events as one event frame, sorted by time.

        Alert files are small (webhook captures, exports of some thousands of alerts), so the file
        is held in memory and its payloads are read one by one in Python.
        """
        # a second read() starts the accounting afresh
        acc = self._accounting = SourceAccounting(name=self._path, path=self._path)
        self._rejects, self._io_rejects = [], {}
        lines = self._read_lines()
        acc.lines_read = len(lines)
        format_name = self._format_name
        if format_name is None:
            format_name = detect_alert_format("\n".join(lines[:2000])[: 64 * 1024])
            if format_name is None:
                raise UnknownFormatError(f"{self._path} is not a recognized alert file")
            acc.format_reason = f"detected from content: {ALERT_FORMATS[format_name]}"
        else:
            acc.format_reason = ALERT_FORMATS[format_name]  # given by the caller (detected there, or forced)
        acc.format = format_name
        zone = self._zone()
        acc.time_zone = zone
        splitter = _csv_segments(lines) if format_name == "alert_csv" else _JsonSplitter(lines).segments()
        outcomes = [self._read_segment(segment, format_name, zone) for segment in splitter]
        frame = self._account(lines, outcomes, format_name)
        yield frame

    def _read_segment(self, segment: _Segment, format_name: str, zone: str) -> _Outcome:
        if segment.reason is not None:
            return _Outcome(segment, reason=segment.reason, detail=segment.detail)
        if not isinstance(segment.value, dict):
            return _Outcome(segment, reason="unknown_payload", detail="a JSON value that is not an object")
        try:
            events = PAYLOAD_READERS[format_name](segment.value, zone)
        except PayloadRejectedError as rejected:
            return _Outcome(segment, reason=rejected.reason, detail=rejected.detail)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a payload of the right family with an odd shape: a counted reject, never a traceback
            return _Outcome(segment, reason="unknown_payload", detail=f"{type(exc).__name__}: {exc}")
        return _Outcome(segment, events=events)

    def _in_window(self, ts: pd.Timestamp) -> bool:
        start, end = self._config.start, self._config.end
        return (start is None or ts >= start) and (end is None or ts < end)

    def _account(self, lines: list[str], outcomes: list[_Outcome], format_name: str) -> pd.DataFrame:
        acc = self._accounting
        owned = [False] * len(lines)
        for index, reason in self._io_rejects.items():
            if index < len(owned):
                owned[index] = True
                acc.rejected[reason] += 1
        seen: set[tuple[str, str | None, int, str]] = set()
        rows: list[dict[str, Any]] = []
        partially_outside = 0
        untimed: Counter[str] = Counter()
        detail_counts: Counter[str] = Counter()
        for outcome in outcomes:
            seg = outcome.segment
            own = [i for i in range(seg.first, seg.last + 1) if i < len(owned) and not owned[i]]
            for i in own:
                owned[i] = True
            if outcome.reason is not None:
                acc.rejected[outcome.reason] += len(own)
                detail_counts[f"{outcome.reason}: {outcome.detail}"] += 1
                self._keep_reject(lines, seg, outcome.reason)
                continue
            for event in outcome.events:
                untimed.update(event.untimed)
            inside = [e for e in outcome.events if self._in_window(e.timestamp)]
            if not inside:
                acc.outside_window += len(own)
                continue
            partially_outside += len(outcome.events) - len(inside)
            if own:
                acc.event_lines += 1 if own[0] == seg.first else 0
                acc.continuation_lines += len(own) - (1 if own[0] == seg.first else 0)
            for event in inside:
                key = (event.alert_id, event.alert_state, event.timestamp.value, event.transition)
                if key in seen:
                    acc.duplicates += 1
                    continue
                seen.add(key)
                rows.append(self._row(event, seg.first + 1, format_name))
        acc.continuation_lines += owned.count(False)  # blank lines, "[" and "]", the CSV header
        acc.events = len(rows)
        if partially_outside:
            acc.notes.append(f"{partially_outside} alert event(s) outside the window dropped from payloads in it")
        if untimed:
            states = ", ".join(f"{n} {state}" for state, n in sorted(untimed.items()))
            acc.notes.append(
                f"alert state change(s) without a usable time not placed: {states} "
                "(e.g. a resolved Alertmanager alert whose endsAt is 0001-01-01)"
            )
        for detail, n in sorted(detail_counts.items()):
            acc.notes.append(f"{n} payload(s) rejected, {_one_line(strip_controls(detail), 200)}")
        if not rows:
            return empty_events()
        frame = conform_events(pd.DataFrame(rows))
        return frame.sort_values(["timestamp", "line"], kind="stable").reset_index(drop=True)

    def _keep_reject(self, lines: list[str], seg: _Segment, reason: str) -> None:
        if len(self._rejects) >= self._config.max_rejects_kept:
            return
        text = "\n".join(lines[seg.first : min(seg.last + 1, seg.first + 20)])
        excerpt = strip_controls(text)[:_EXCERPT_LIMIT]
        self._rejects.append(Reject(source=self._path, line=seg.first + 1, reason=reason, excerpt=excerpt))

    def _row(self, event: AlertEvent, line: int, format_name: str) -> dict[str, Any]:
        return {
            "timestamp": event.timestamp,
            "source": self._path,
            "line": line,
            "format": format_name,
            "host": event.host,
            "service": event.service,
            "level": event.level,
            "severity_number": SEVERITY_NUMBER.get(event.level) if event.level else None,
            "message": _message(event),
            "kind": "alert",
            "alert_name": event.alert_name,
            "alert_state": event.alert_state,
            "alert_id": event.alert_id,
            "ts_raw": event.ts_raw,
            "tz_assumed": event.tz_assumed,
            # the summary is kept whole in fields: alert_intervals reports it without the message's prefix
            "fields": json.dumps(
                {"summary": event.summary, **event.fields} if event.summary else event.fields,
                ensure_ascii=False,
                sort_keys=True,
                default=str,
            ),
            # given explicitly: conform_events cannot build a missing float64 column of NA (pandas 3)
            "duration_ms": float("nan"),
        }
