"""The log format registry: every text log format pmtimeline reads, its detection and its parser.

Each :class:`LogFormat` has a name, a one-line description, a ``check`` on a file's first lines and a
vectorized ``parse`` from a column of lines to a *ParsedLines* frame (see below). All formats live in
the one literal :data:`LOG_FORMATS`, whose order is the detection priority (most specific first, the
generic fallback last). :func:`detect_log_format` scores the formats on a sample of lines
and picks the one a majority of them fit (the other lines are then rejects with a reason);
:func:`get_format` looks one up by name.

ParsedLines: one row per input line, same index and length as the input.

==============  =====================  ===========================================================
column          dtype                  meaning
==============  =====================  ===========================================================
head            bool                   the line starts an event (matched and has a timestamp)
reject_reason   string                 why the line is certainly bad (``json_decode``,
                                       ``no_timestamp``, ``bad_timestamp``,
                                       ``timestamp_out_of_range``, ...); NA otherwise. Lines with
                                       ``head`` False and no reason are continuation candidates
ts_raw          string                 the timestamp text exactly as written
ts_utc          datetime64[ns, UTC]    the time, where the text carried an offset or is an epoch
ts_naive        datetime64[ns]         the wall-clock time, where the text had no offset
year_missing    bool                   no year was written; ``ts_naive`` uses the year 2000
continued       bool                   (optional) the line's text is already part of the head's
                                       message (CRI partial lines): count it as a continuation
                                       line but do not append its text again
event columns   schema dtypes          level (normalized), host, service, logger, message, kind, http_*,
                                       url_path, duration_ms, trace_id, request_id, user,
                                       client_ip, fields (JSON object text); as available
==============  =====================  ===========================================================

Parsers use pyarrow compute regexes (RE2 syntax, named groups) and ``pd.to_datetime`` with explicit
formats; JSON lines are decoded, flattened and mapped onto the event columns by the compiled reading
core (:func:`decode_json_lines`, ``core/src/json_lines.rs``). There is no per-line Python on the hot
path, except in the documented fallback for blocks of CSV that contain malformed lines.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from pmtimeline import _core
from pmtimeline.connectors.timeformats import (
    NAIVE,
    ParsedTimes,
    arrow_strings,
    combine_times,
    core_strings,
    empty_times,
    extract_groups,
    match_text,
    parse_access_time,
    parse_compact_date_time,
    parse_ctime,
    parse_iso8601,
    parse_syslog_time,
    parse_timestamp_text,
    replace_regex,
    string_series,
    to_int,
)
from pmtimeline.errors import UnknownFormatError
from pmtimeline.polars_regex import polars_pattern
from pmtimeline.schema import (
    ECS_FIELD_MAP,
    EVENT_DTYPES,
    FIELD_ALIASES,
    KUBERNETES_FIELD_MAP,
    STRING,
    TIMESTAMP,
    normalize_levels,
)

#: How many non-empty lines of a file detection looks at.
SAMPLE_LINES: Final = 64

#: Event columns a parser may fill, with their dtypes (a subset of the event schema).
EVENT_FIELD_DTYPES: Final[Mapping[str, object]] = {
    name: EVENT_DTYPES[name]
    for name in (
        "level",
        "host",
        "service",
        "logger",
        "message",
        "kind",
        "http_status",
        "http_method",
        "url_path",
        "duration_ms",
        "trace_id",
        "request_id",
        "user",
        "client_ip",
        "fields",
    )
}
#: The columns every ParsedLines frame starts with.
PARSED_LINE_DTYPES: Final[Mapping[str, object]] = {
    "head": bool,
    "reject_reason": STRING,
    "ts_raw": STRING,
    "ts_utc": TIMESTAMP,
    "ts_naive": NAIVE,
    "year_missing": bool,
}


@dataclass(frozen=True)
class LogFormat:
    """A text log format: how to recognize it and how to parse a column of its lines."""

    name: str
    description: str
    #: True when the file's first non-empty lines (up to 64) are in this format.
    check: Callable[[Sequence[str]], bool]
    #: lines (string[pyarrow], RangeIndex) -> ParsedLines frame with the same index and length.
    parse: Callable[[pd.Series], pd.DataFrame]
    #: Lines that are not heads may be continuation lines of the previous event.
    multiline: bool = False
    #: How an event's first line begins (multi-line formats): a line that begins so but is no head is
    #: damage, rejected ``unparseable``; only lines that do not begin so may continue an event.
    multiline_start: re.Pattern[str] | None = None
    #: Zone of naive timestamps declared by the format itself (user formats); None: the source's zone.
    timezone: str | None = None
    #: For formats whose parser needs the file's first lines (CSV needs the header): returns the format
    #: bound to a file. :func:`detect_log_format` returns bound formats; callers that force a format by
    #: name should call :meth:`for_file` with the file's first lines.
    bind: Callable[[Sequence[str]], LogFormat] | None = field(default=None, compare=False)
    #: How another process rebuilds this format (a function and its arguments; see ``__reduce__``):
    #: set by the builders of bound and user-defined formats, whose parsers are closures.
    rebuild: tuple[Callable[..., LogFormat], tuple[Any, ...]] | None = field(default=None, compare=False, repr=False)
    #: What a bound format learned from its file, as a sentence for ``sniff`` (the generic reader's
    #: timestamp layout and the share of sample lines it reads); None for formats that learn nothing.
    learned: str | None = field(default=None, compare=False)

    def for_file(self, first_lines: Sequence[str]) -> LogFormat:
        """This format, bound to a file whose first non-empty lines are ``first_lines``."""
        return self.bind(first_lines) if self.bind is not None else self

    def __reduce__(self) -> tuple[Callable[..., LogFormat], tuple[Any, ...]]:
        # Parsing workers are fresh processes (see connectors.parallel), so a format travels as the
        # recipe that builds it: its registry name, or the arguments of its builder.
        if self.rebuild is not None:
            return self.rebuild
        if LOG_FORMATS.get(self.name) is self:
            return get_format, (self.name,)
        raise pickle.PicklingError(f"log format {self.name!r} has no recipe to rebuild it in another process")


# --------------------------------------------------------------------------------------------------
# Building blocks


def _text(lines: pd.Series) -> pd.Series:
    return lines if str(lines.dtype) == str(STRING) else lines.astype(STRING)


def _arrow(lines: pd.Series) -> pa.ChunkedArray:
    return arrow_strings(lines)


def _series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return string_series(array, index)


def _matches(lines: Sequence[str], pattern: re.Pattern[str]) -> int:
    return sum(1 for line in lines if pattern.search(line))


def _check_share(pattern: str, share: float, among: str | None = None) -> Callable[[Sequence[str]], bool]:
    """A check: at least ``share`` of the sample lines (and at least one) match ``pattern``.

    With ``among`` (multi-line formats), the share counts only lines that match ``among`` (the lines
    that start with a timestamp), so that stack-trace lines do not count against the format.
    """
    compiled = re.compile(pattern)
    starts = re.compile(among) if among is not None else None

    def check(lines: Sequence[str]) -> bool:
        candidates = [line for line in lines if starts.search(line)] if starts is not None else lines
        hits = _matches(candidates, compiled)
        return hits > 0 and hits >= share * len(candidates)

    return check


def json_quote(values: pd.Series) -> pd.Series:
    """JSON string literals of text values (vectorized escaping; NA stays NA)."""
    s = _text(values)
    column = pl.Series(arrow_strings(s))
    # Most values need no escaping at all: test once, replace only when needed.
    if bool(column.str.contains(r'[\\"]').any()):
        column = column.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
    if bool(column.str.contains(r"[\x00-\x1f]").any()):
        for code in range(32):
            char = chr(code)
            escaped = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{code:04x}")
            column = column.str.replace_all(char, escaped, literal=True)
    quoted = pl.concat_str([pl.lit('"'), pl.col("v"), pl.lit('"')])
    out = pl.DataFrame({"v": column}).select(quoted.alias("v"))["v"]
    return _series(out.to_arrow(compat_level=pl.CompatLevel.oldest()), s.index)


def fields_json(columns: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
    """One JSON object text per row from already-encoded JSON values (NA values are left out);
    NA where a row has none."""
    if not columns:
        return pd.Series(pd.NA, index=index, dtype=STRING)
    frame = pl.DataFrame({f"c{i}": pl.Series(arrow_strings(_text(v))) for i, v in enumerate(columns.values())})
    pieces = [
        pl.lit("," + json.dumps(name, ensure_ascii=False) + ":") + pl.col(f"c{i}") for i, name in enumerate(columns)
    ]
    body = pl.concat_str(pieces, ignore_nulls=True)
    obj = pl.when(body.str.len_bytes() > 0).then(pl.lit("{") + body.str.slice(1) + pl.lit("}"))
    out = frame.select(obj.alias("fields"))["fields"]
    return _series(out.to_arrow(compat_level=pl.CompatLevel.oldest()), index)


def _text_fields(groups: pd.DataFrame, names: Iterable[str]) -> pd.Series:
    """``fields`` from regex groups: every named group given, as JSON strings."""
    present = [n for n in names if n in groups.columns]
    return fields_json({n: json_quote(groups[n]) for n in present}, groups.index)


def assemble(
    index: pd.Index,
    *,
    head: pd.Series,
    times: ParsedTimes,
    ts_raw: pd.Series,
    reject_reason: pd.Series | None = None,
    columns: Mapping[str, pd.Series | str] | None = None,
) -> pd.DataFrame:
    """Build a ParsedLines frame with the right dtypes; event columns are cast to schema dtypes."""
    out: dict[str, Any] = {
        "head": head.astype(bool),
        "reject_reason": (
            reject_reason.astype(STRING) if reject_reason is not None else pd.Series(pd.NA, index=index, dtype=STRING)
        ),
        "ts_raw": _text(ts_raw),
        "ts_utc": times.utc.astype(TIMESTAMP),
        "ts_naive": times.naive.astype(NAIVE),
        "year_missing": times.year_missing.fillna(False).astype(bool),
    }
    for name, value in (columns or {}).items():
        dtype = EVENT_FIELD_DTYPES.get(name, bool if name == "continued" else STRING)
        if isinstance(value, str):
            out[name] = pd.Series(value, index=index, dtype=dtype)  # type: ignore[call-overload]
        else:
            out[name] = value.astype(dtype)  # type: ignore[call-overload]
    return pd.DataFrame(out, index=index)


def _time_rejects(matched: pd.Series, times: ParsedTimes) -> tuple[pd.Series, pd.Series]:
    """(head, reject_reason) for lines that matched a format: heads where a time parsed."""
    head = matched & times.parsed
    reason = pd.Series(pd.NA, index=matched.index, dtype=STRING)
    reason = reason.mask(matched & ~times.parsed, "bad_timestamp")
    reason = reason.mask(matched & times.out_of_range, "timestamp_out_of_range")
    return head.astype(bool), reason


def _regex_parse(
    lines: pd.Series,
    patterns: Sequence[str],
    parse_time: Callable[[pd.Series], ParsedTimes],
    *,
    field_groups: Sequence[str] = (),
    kind: str = "log",
    finish: Callable[[pd.DataFrame, dict[str, pd.Series | str]], None] | None = None,
    extract: Callable[[pd.Series, str], pd.DataFrame] = extract_groups,
) -> pd.DataFrame:
    """Parse lines with the first of several RE2 patterns that matches each line.

    The group ``ts`` holds the timestamp text; groups named after event columns become those columns
    (``level`` normalized); ``field_groups`` go to ``fields``; ``finish`` may add derived columns.
    ``extract`` finds the groups (:func:`extract_groups`, or a faster equivalent for one pattern).
    """
    lines = _text(lines)
    index = lines.index
    groups: pd.DataFrame | None = None
    for pattern in patterns:
        todo = lines if groups is None else lines[~groups["matched"]]
        if len(todo) == 0:
            break
        found = extract(todo, pattern)
        if groups is None:
            groups = found
        else:
            for name in found.columns:
                if name not in groups.columns:
                    groups[name] = pd.Series(pd.NA, index=index, dtype=STRING)
                groups.loc[found.index[found["matched"]], name] = found.loc[found["matched"], name]
    assert groups is not None
    matched = groups["matched"]
    times = _reindex_times(parse_time(groups.loc[matched, "ts"]), index)
    head, reason = _time_rejects(matched, times)
    columns: dict[str, pd.Series | str] = {"kind": kind}
    for name in EVENT_FIELD_DTYPES:
        if name in groups.columns and name not in ("kind", "fields"):
            columns[name] = groups[name]
    if "level" in columns:
        columns["level"] = normalize_levels(groups["level"])
    if field_groups:
        columns["fields"] = _text_fields(groups, field_groups)
    if finish is not None:
        finish(groups, columns)
    return assemble(index, head=head, times=times, ts_raw=groups["ts"], reject_reason=reason, columns=columns)


def _reindex_times(times: ParsedTimes, index: pd.Index) -> ParsedTimes:
    return combine_times(empty_times(index), ParsedTimes(*(c.reindex(index) for c in times)))


# Timestamp fragments (RE2).
_ISO_TS: Final = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
_ISO_START: Final = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"


# --------------------------------------------------------------------------------------------------
# Access logs (nginx / Apache)

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_ACCESS_HEAD: Final = (
    r"^(?P<client_ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
)
_ACCESS_COMBINED: Final = _ACCESS_HEAD + r' "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)"'


def _access_time(text: pd.Series) -> ParsedTimes:
    return parse_access_time(text)


def _access_finish(groups: pd.DataFrame, columns: dict[str, pd.Series | str]) -> None:
    request = extract_groups(groups["request"].fillna(""), r"^(?P<method>[A-Z]+) (?P<path>\S+)(?: (?P<proto>\S+))?$")
    columns["http_method"] = request["method"]
    columns["url_path"] = request["path"]
    columns["http_status"] = to_int(groups["status"].mask(groups["status"] == "-"))
    columns["message"] = groups["request"].str.replace('\\"', '"', regex=False)
    columns["user"] = groups["user"].where(groups["user"] != "-")
    columns["client_ip"] = groups["client_ip"].where(groups["client_ip"] != "-")
    encoded: dict[str, pd.Series] = {
        "protocol": json_quote(request["proto"]),
        "bytes": groups["bytes"].where(groups["bytes"] != "-"),
    }
    for name in ("referer", "user_agent"):
        if name in groups.columns:
            encoded[name] = json_quote(groups[name].where(groups[name] != "-").str.replace('\\"', '"', regex=False))
    if "extra" in groups.columns:
        extra = groups["extra"].str.strip()
        keyed = extract_groups(extra, r"(?:^|\s)(?:rt|request_time)=\"?(?P<s>\d+(?:\.\d+)?)\"?")["s"]
        bare = extract_groups(extra, r"^\"?(?P<s>\d+\.\d+)\"?(?:\s|$)")["s"]
        seconds = pd.to_numeric(keyed.fillna(bare), errors="coerce")
        columns["duration_ms"] = (seconds * 1000.0).astype("float64")
        # A request id appended to the line ($request_id: 32 hex; or req_id=/request_id=/UUID) links the
        # edge to the services behind it.
        keyed_id = extract_groups(extra, r"(?:^|\s)(?:req_id|request_id|x_request_id|rid)=\"?(?P<id>[\w.-]{8,64})\"?")[
            "id"
        ]
        bare_id = extract_groups(
            extra,
            r"(?:^|\s)\"?(?P<id>[0-9a-fA-F]{16,64}|[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})\"?(?:\s|$)",
        )["id"]
        columns["request_id"] = keyed_id.fillna(bare_id)
        encoded["extra"] = json_quote(extra)
    columns["fields"] = fields_json(encoded, groups.index)


#: Each access-log layout as the parts of a line between its double quotes (``str.splitn('"', n)``),
#: as the RE2 pattern each part must match whole (see :func:`_access_groups`).
_S: Final = r"[^\t\n\f\r ]+"  # RE2's \S+
_ACCESS_HEAD_PART: Final = rf"^{_S} {_S} {_S} \[[^\]]+\] $"  # client_ip ident user [ts]
_QUOTED_PART: Final = r"^[^\\]*$"  # a quoted field without escapes: request, referer, user agent
_ACCESS_PARTS: Final[dict[str, tuple[str, ...]]] = {
    "common": (_ACCESS_HEAD_PART, _QUOTED_PART, r"^ (?:\d{3}|-) (?:\d+|-)[\t\n\f\r ]*$"),
    "combined": (
        *(_ACCESS_HEAD_PART, _QUOTED_PART, r"^ (?:\d{3}|-) (?:\d+|-) $"),  # head, request, status bytes
        *(_QUOTED_PART, r"^ $", _QUOTED_PART, r"^[\t\n\f\r ]*$"),  # referer, user agent, end of line
    ),
    "combined_extra": (
        *(_ACCESS_HEAD_PART, _QUOTED_PART, r"^ (?:\d{3}|-) (?:\d+|-) $"),
        *(_QUOTED_PART, r"^ $", _QUOTED_PART, r"^ .*[^\t\n\f\r ][\t\n\f\r ]*$"),  # ..., extra fields
    ),
}


def _access_groups(layout: str) -> Callable[[pd.Series, str], pd.DataFrame]:
    """:func:`extract_groups` for one access-log layout, by splitting lines at their double quotes.

    The layout's regex captures ten groups, and capturing is what costs (2.7 us a line in polars);
    searching is cheap. So a line is cut at its quotes, and where every part matches its own
    pattern (a search; no quoted field may hold a backslash), the parts can be read in only one
    way, the way the regex reads them: the fields are taken from the parts by position. The other
    lines (escaped quotes, a quote in a field, a malformed line) are matched by the regex.
    """
    parts = _ACCESS_PARTS[layout]

    def extract(lines: pd.Series, pattern: str) -> pd.DataFrame:
        index = lines.index
        text = pl.Series(arrow_strings(_text(lines)))
        # The last part keeps the rest of the line, quotes included (the extra fields may hold some).
        cut = pl.DataFrame({"line": text}).select(pl.col("line").str.splitn('"', len(parts)).alias("p")).unnest("p")
        names = cut.columns
        rules = [polars_pattern(rule) for rule in parts]
        fits = pl.all_horizontal(
            [pl.col(name).str.contains(rule).fill_null(False) for name, rule in zip(names, rules, strict=True)]
        )
        head = pl.col(names[0]).str.splitn(" ", 4)
        status_bytes = pl.col(names[2]).str.strip_chars("\t\n\f\r ").str.splitn(" ", 2)
        fields = {
            "client_ip": head.struct.field("field_0"),
            "ident": head.struct.field("field_1"),
            "user": head.struct.field("field_2"),
            "ts": head.struct.field("field_3").str.slice(1).str.strip_suffix("] "),
            "request": pl.col(names[1]),
            "status": status_bytes.struct.field("field_0"),
            "bytes": status_bytes.struct.field("field_1"),
        }
        if layout != "common":
            fields["referer"] = pl.col(names[3])
            fields["user_agent"] = pl.col(names[5])
        if layout == "combined_extra":
            fields["extra"] = pl.col(names[6]).str.slice(1).str.strip_chars_end("\t\n\f\r ")
        split = cut.select(
            fits.alias("matched"),
            *(pl.when(fits & (value != "")).then(value).alias(name) for name, value in fields.items()),
        )
        fast = split["matched"].to_numpy()
        arrow = split.drop("matched").to_arrow(compat_level=pl.CompatLevel.oldest())
        columns = {name: string_series(arrow.column(name), index) for name in arrow.column_names}
        columns["matched"] = pd.Series(fast, index=index, dtype=bool)
        groups = pd.DataFrame(columns, index=index)
        if not fast.all():
            rest = extract_groups(lines[~fast], pattern)
            groups.loc[rest.index, rest.columns] = rest
        return groups

    return extract


def _access_parser(pattern: str, layout: str) -> Callable[[pd.Series], pd.DataFrame]:
    extract = _access_groups(layout)

    def parse(lines: pd.Series) -> pd.DataFrame:
        return _regex_parse(lines, (pattern,), _access_time, kind="request", finish=_access_finish, extract=extract)

    return parse


# --------------------------------------------------------------------------------------------------
# Apache error log

_APACHE_ERROR: Final = (
    r"^\[(?P<ts>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})? \d{4})\] "
    r"\[(?:(?P<module>[\w-]+):)?(?P<level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?(?: \[client (?P<client>[^\]]+)\])? ?(?P<message>.*)$"
)


def _apache_error_time(text: pd.Series) -> ParsedTimes:
    # The weekday is redundant (and not checked against the date).
    return parse_ctime(text)


def _apache_error_finish(groups: pd.DataFrame, columns: dict[str, pd.Series | str]) -> None:
    columns["level"] = normalize_levels(replace_regex(groups["level"], r"^trace\d$", "trace"))
    # The module (core, ssl, proxy_fcgi) is the part of Apache that wrote the line, not the application.
    columns["logger"] = groups["module"]
    columns["client_ip"] = replace_regex(groups["client"], r"^(\d+\.\d+\.\d+\.\d+):\d+$", r"\1")


def _parse_apache_error(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(
        lines, (_APACHE_ERROR,), _apache_error_time, field_groups=("pid", "tid", "client"), finish=_apache_error_finish
    )


# --------------------------------------------------------------------------------------------------
# Syslog

_SYSLOG_SEVERITY: Final = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
_RFC5424: Final = (
    r"^(?:<(?P<pri>\d{1,3})>)?1 (?P<ts>\S+) (?P<host>\S+) (?P<service>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<message>.*))?$"
)
_RFC3164: Final = (
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?|" + _ISO_TS + r") "
    r"(?P<host>\S+) (?:(?P<service>[^\s\[:]+)(?:\[(?P<pid>[^\]]*)\])?: ?)?(?P<message>.*)$"
)


def _pri_level(pri: pd.Series) -> pd.Series:
    severity = pd.to_numeric(pri, errors="coerce").astype("Int64") % 8
    names = pd.Series(_SYSLOG_SEVERITY, dtype=STRING)
    return pd.Series(
        names.reindex(severity.astype("float64").to_numpy()).to_numpy(), index=pri.index, dtype=STRING
    ).where(severity.notna().to_numpy())


def _syslog_time(text: pd.Series) -> ParsedTimes:
    iso = text.str.match(r"^\d{4}-").fillna(False).astype(bool)
    result = empty_times(text.index)
    if bool((~iso).any()):
        result = combine_times(result, _reindex_times(parse_syslog_time(text[~iso]), text.index))
    if bool(iso.any()):
        result = combine_times(result, _reindex_times(parse_iso8601(text[iso]), text.index))
    return result


def _rfc3164_finish(groups: pd.DataFrame, columns: dict[str, pd.Series | str]) -> None:
    columns["level"] = _pri_level(groups["pri"])


def _parse_rfc3164(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, (_RFC3164,), _syslog_time, field_groups=("pid",), finish=_rfc3164_finish)


def _rfc5424_finish(groups: pd.DataFrame, columns: dict[str, pd.Series | str]) -> None:
    columns["level"] = _pri_level(groups["pri"])
    for name in ("host", "service"):
        columns[name] = groups[name].where(groups[name] != "-")
    columns["message"] = groups["message"].str.removeprefix("\ufeff")
    encoded = {n: json_quote(groups[n].where(groups[n] != "-")) for n in ("procid", "msgid", "sd")}
    columns["fields"] = fields_json(encoded, groups.index)


def _parse_rfc5424(lines: pd.Series) -> pd.DataFrame:
    parsed = _regex_parse(lines, (_RFC5424,), parse_iso8601, finish=_rfc5424_finish)
    # A NILVALUE timestamp ("-") is a well-formed line without a time.
    nil = (parsed["ts_raw"] == "-").fillna(False)
    parsed["reject_reason"] = parsed["reject_reason"].mask(nil, "no_timestamp")
    return parsed


# --------------------------------------------------------------------------------------------------
# Structured records (JSON lines, CSV, logfmt): one column per key, mapped onto the event columns

#: Lower-cased alias -> (priority, column): ECS dotted names first, then the common aliases, then the
#: Kubernetes metadata of log shippers.
_KEY_TARGETS: Final[dict[str, tuple[int, str]]] = {
    **{
        key.lower(): (i, col)
        for i, (key, col) in enumerate(KUBERNETES_FIELD_MAP.items(), start=len(ECS_FIELD_MAP) + len(FIELD_ALIASES))
    },
    **{key.lower(): (i, col) for i, (key, col) in enumerate(FIELD_ALIASES.items(), start=len(ECS_FIELD_MAP))},
    **{key.lower(): (i, col) for i, (key, col) in enumerate(ECS_FIELD_MAP.items())},
}
_REQUEST_COLUMNS: Final = ("http_status", "http_method", "url_path")
#: Numeric levels of pino and bunyan (JSON loggers for Node.js).
_PINO_LEVELS: Final = {"10": "trace", "20": "debug", "30": "info", "40": "warning", "50": "error", "60": "critical"}


_NUMERIC_TARGETS: Final = ("http_status", "duration_ms")
#: Keys (lower-cased) whose numbers are divided on the way in: ECS's ``event.duration`` is in nanoseconds.
_KEY_DIVISORS: Final = {"event.duration": 1e6}


def _finish_mapped(out: dict[str, pd.Series]) -> None:
    """Type the event columns that structured records mapped to (JSON and CSV alike), in place."""
    if "service" in out:
        # Docker's log drivers write the container name as "/name".
        out["service"] = out["service"].str.removeprefix("/").astype(STRING)
    if "http_status" in out:
        status = pd.to_numeric(out["http_status"], errors="coerce").astype("float64")
        # "inf" or 1e30 is no status, and no int64 either (casting them raised OverflowError).
        status = status.where(status.abs() < 2**63)
        out["http_status"] = status.round().astype("Int64")
    if "duration_ms" in out:
        out["duration_ms"] = pd.to_numeric(out["duration_ms"], errors="coerce").astype("float64")
    if "level" in out:
        raw_level = out["level"]
        # pino/bunyan write numbers (10 trace ... 60 fatal); they are unambiguous, unlike 0-7, which
        # could be syslog severities or something else and are not guessed.
        numeric = raw_level.map(_PINO_LEVELS).astype(STRING)
        out["level"] = numeric.fillna(normalize_levels(raw_level))


def map_record_columns(records: pd.DataFrame, index: pd.Index) -> dict[str, pd.Series]:
    """Map the text columns of CSV records (named by the header) onto event columns.

    Names are looked up (case-insensitively) in :data:`schema.ECS_FIELD_MAP`, then in
    :data:`schema.FIELD_ALIASES`; where several names map to one column, the earlier mapping wins
    row by row. Returns the event columns (``timestamp`` included, not yet parsed), typed columns
    coerced (``http_status`` "500" -> 500, words kept in ``fields``), ``duration_ms`` from ECS
    ``event.duration`` nanoseconds, and ``fields`` with every name that mapped to nothing. JSON
    records are mapped by the same table in the reading core (:func:`decode_json_lines`).
    """
    by_target: dict[str, list[tuple[int, str]]] = {}
    rest: list[str] = []
    # Words under a numeric key ("status": "failed") are kept in ``fields``, not dropped.
    worded: dict[str, pd.Series] = {}
    for name in records.columns:
        mapping = _KEY_TARGETS.get(str(name).lower())
        if mapping is None:
            rest.append(str(name))
        else:
            by_target.setdefault(mapping[1], []).append((mapping[0], str(name)))
    out: dict[str, pd.Series] = {}
    for target, keys in by_target.items():
        combined: pd.Series | None = None
        for _, key in sorted(keys):
            text = _text(records[key]).set_axis(index)
            if target in _NUMERIC_TARGETS:
                raw = text
                text = pd.to_numeric(raw, errors="coerce").astype("float64").set_axis(index)
                words = raw.where(text.isna() & raw.notna())
                if bool(words.notna().any()):
                    worded[key] = json_quote(words)
                text = text / _KEY_DIVISORS.get(key.lower(), 1)
            combined = text if combined is None else combined.fillna(text)
        assert combined is not None
        out[target] = combined
    _finish_mapped(out)
    encoded = {key: json_quote(records[key]).set_axis(index) for key in rest}
    out["fields"] = fields_json({**encoded, **worded}, index)
    return out


def _records_frame(
    index: pd.Index, mapped: dict[str, pd.Series], ok: pd.Series, reject_reason: pd.Series
) -> pd.DataFrame:
    """ParsedLines from the mapped event columns of structured records aligned with ``index`` (rows
    where ``ok`` is False are rejected with ``reject_reason``)."""
    mapped = dict(mapped)
    ts_text = mapped.pop("timestamp", pd.Series(pd.NA, index=index, dtype=STRING))
    times = parse_timestamp_text(ts_text.where(ok))
    reason = reject_reason.copy()
    blank = ts_text.isna() | (ts_text.str.strip() == "").fillna(True)
    reason = reason.mask(ok & blank, "no_timestamp")
    reason = reason.mask(ok & ~blank & ~times.parsed, "bad_timestamp")
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    head = ok & times.parsed
    request = pd.Series(False, index=index)
    for name in _REQUEST_COLUMNS:
        if name in mapped:
            request |= mapped[name].notna()
    columns: dict[str, pd.Series | str] = dict(mapped)
    columns["kind"] = pd.Series("log", index=index, dtype=STRING).mask(request, "request")
    return assemble(index, head=head, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)


#: JSON nested deeper than this many objects/arrays is rejected ``too_deep`` before it is decoded (the
#: reading core's ``MAX_DEPTH``; the alert payloads' decoder recurses once per level).
MAX_JSON_DEPTH: Final = 64
REJECT_TOO_DEEP: Final = "too_deep"
# A JSON string literal (RE2): its brackets do not nest.
_JSON_STRING: Final = r'"(?:[^"\\]|\\.)*"'


def nesting_depth(line: str) -> int:
    """How deep a JSON text nests objects and arrays: a running sum of brackets outside strings."""
    # RE2 (through polars): linear in the line whatever its quotes.
    bare = pl.Series([line]).str.replace_all(_JSON_STRING, '""').item()
    codes = np.frombuffer(str(bare).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    if not len(codes):
        return 0
    step = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS).astype(np.int64)
    return int(np.cumsum(step).max())


_OPENERS: Final = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS: Final = np.frombuffer(b"]}", dtype=np.uint8)


def decode_json_lines(lines: pd.Series, *, mapped: bool = True, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Decode JSON-object lines in the reading core (``core/src/json_lines.rs``), aligned with ``lines``.

    Columns: ``reject_reason`` (``json_decode``, ``json_not_object``, ``too_deep`` past
    :data:`MAX_JSON_DEPTH`; NA for an object); with ``mapped``, the event columns the block's keys
    (nested objects flattened to dotted keys) map to by :data:`schema.ECS_FIELD_MAP`,
    :data:`schema.FIELD_ALIASES` and :data:`schema.KUBERNETES_FIELD_MAP` (``timestamp`` as text,
    ``http_status`` and ``duration_ms`` as numbers, the rest as text, not yet normalized), then
    ``fields`` (every other key, JSON object text) if the block has any key; then ``key:<name>``,
    the text of each key of ``keys`` (dotted names, as written).
    """
    text = _text(lines)
    batch = _core.parse_json_lines(
        core_strings(text),
        "a block of JSON lines",
        _KEY_TARGETS if mapped else None,
        list(_NUMERIC_TARGETS),
        _KEY_DIVISORS,
        list(keys),
    )
    table = pa.record_batch(batch)
    columns: dict[str, pd.Series] = {}
    for name, column in zip(table.schema.names, table.columns, strict=True):
        if pa.types.is_floating(column.type):
            columns[name] = pd.Series(column.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")
        else:
            columns[name] = _series(column, text.index)
    return pd.DataFrame(columns, index=text.index)


def _parse_json_lines(lines: pd.Series) -> pd.DataFrame:
    text = _text(lines)
    decoded = decode_json_lines(text)
    reasons = decoded.pop("reject_reason")
    mapped = {str(name): decoded[name] for name in decoded.columns}
    _finish_mapped(mapped)
    return _records_frame(text.index, mapped, reasons.isna(), reasons)


def _json_check(lines: Sequence[str]) -> bool:
    objects = sum(1 for line in lines if line.lstrip().startswith("{"))
    return objects > 0 and objects >= 0.5 * len(lines)


# --------------------------------------------------------------------------------------------------
# Kubernetes API server audit log (audit.k8s.io Event objects, one JSON object a line)

#: A JSON line that is an audit event.
_AUDIT_CHECK: Final = re.compile(r'"apiVersion"\s*:\s*"audit\.k8s\.io/')


def _parse_kubernetes_audit(lines: pd.Series) -> pd.DataFrame:
    """An audit event has no message: it is written from its parts, as ``kubectl`` would name the
    object (``patch deployments.apps/checkout in namespace shop by alice via kubectl/v1.29.0``), so
    that a change made through the API reads as one (a failed request says ``failed with 403``). The
    acting user goes to ``user``, the first source address to ``client_ip``; the audit level (a policy
    level, not a severity), the request URI and the response code stay in ``fields``."""
    text = _text(lines)
    index = text.index
    names = (
        "requestReceivedTimestamp",
        "stageTimestamp",
        "verb",
        "objectRef.resource",
        "objectRef.apiGroup",
        "objectRef.name",
        "objectRef.namespace",
        "objectRef.subresource",
        "user.username",
        "userAgent",
        "responseStatus.code",
        "requestURI",
        "level",
        "stage",
        "auditID",
    )
    decoded = decode_json_lines(text, mapped=False, keys=names)
    reasons = decoded["reject_reason"]
    ok = reasons.isna()
    key = {name: decoded[f"key:{name}"] for name in names}
    ts_text = key["requestReceivedTimestamp"].fillna(key["stageTimestamp"])
    times = parse_timestamp_text(ts_text.where(ok))
    reason = reasons.mask(ok & ts_text.isna(), "no_timestamp").mask(
        ok & ts_text.notna() & ~times.parsed, "bad_timestamp"
    )
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    resource = key["objectRef.resource"] + ("." + key["objectRef.apiGroup"]).fillna("")
    obj = (resource + ("/" + key["objectRef.name"]).fillna("")).fillna(key["requestURI"])
    code = pd.to_numeric(key["responseStatus.code"], errors="coerce").astype("Int64")
    message = (
        key["verb"].fillna("request")
        + (" " + obj).fillna("")
        + (" " + key["objectRef.subresource"]).fillna("")
        + (" in namespace " + key["objectRef.namespace"]).fillna("")
        + (" by " + key["user.username"]).fillna("")
        + (" via " + key["userAgent"].str.split(" ").str[0]).fillna("")
        + (" failed with " + code.where(code >= 400).astype(STRING)).fillna("")
    )
    # sourceIPs is a list: its first address is the client, read from the line's text.
    client = extract_groups(text, r'"sourceIPs"\s*:\s*\[\s*"(?P<ip>[^"]+)"')["ip"]
    encoded = {
        "audit_level": json_quote(key["level"]),
        "stage": json_quote(key["stage"]),
        "request_uri": json_quote(key["requestURI"]),
        "response_code": code.astype(STRING),
        "audit_id": json_quote(key["auditID"]),
    }
    columns: dict[str, pd.Series | str] = {
        "kind": "log",
        "message": message.astype(STRING),
        "user": key["user.username"],
        "client_ip": client,
        "fields": fields_json(encoded, index),
    }
    return assemble(index, head=ok & times.parsed, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)


# --------------------------------------------------------------------------------------------------
# logfmt

_LOGFMT_PAIR: Final = r'(?:^|\s)([A-Za-z_@][\w.@/-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)'


def logfmt_to_json(lines: pd.Series) -> pd.Series:
    """Rewrite logfmt lines (``k=v k2="quoted \\"v\\""``) into JSON object text, vectorized.

    Unquoted values become JSON strings; quoted values keep their (JSON-compatible) escapes. Text
    that is not a ``key=value`` pair is dropped. Regex replacements mark each pair with control
    characters first, so that the later rewrites cannot touch a value's content.
    """
    s = replace_regex(_text(lines), r"[\x1c-\x1f]", " ")
    marked = replace_regex(s, _LOGFMT_PAIR, "\x1f\\1\x1e\\2\x1d")
    # Drop the text between pairs (bare words): keep only the marked segments.
    marked = replace_regex(marked, r"(?:^|\x1d)[^\x1f]*", "\x1d")
    quoted = replace_regex(marked, '\x1f([^\x1e]*)\x1e("[^\x1d]*)\x1d', ',"\\1":\\2\x1d')
    bare = replace_regex(quoted, "\x1f([^\x1e]*)\x1e([^\x1d]*)\x1d", ',"\\1":"\\2"\x1d')
    body = bare.str.replace("\x1d", "", regex=False).str.removeprefix(",")
    return "{" + body + "}"


def _parse_logfmt(lines: pd.Series) -> pd.DataFrame:
    text = _text(lines)
    index = text.index
    has_pairs = text.str.contains(r"^\s*[A-Za-z_@][\w.@/-]*=", regex=True).fillna(False).astype(bool)
    frame = _parse_json_lines(logfmt_to_json(text).where(has_pairs, "{}"))
    reasons = frame["reject_reason"].where(has_pairs, "not_logfmt")
    # Continuation-like lines (no pairs at all) are not rejected outright: logfmt is single-line,
    # so the connector rejects them as unparseable; a decode failure of a rewritten line is a bug.
    frame["reject_reason"] = reasons.mask(~has_pairs, pd.NA).mask(
        has_pairs & (frame["reject_reason"] == "json_decode").fillna(False), "logfmt_decode"
    )
    frame["head"] = frame["head"] & has_pairs
    return frame.set_axis(index)


# --------------------------------------------------------------------------------------------------
# Application logs: Python logging, log4j / logback, Spring Boot, Zookeeper, HDFS

_PY_LEVEL = r"(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|NOTSET)"
_PY_TS = r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d{1,9})?)"
_PYTHON_PATTERNS: Final = (
    # %(asctime)s - %(name)s - %(levelname)s - %(message)s
    rf"^{_PY_TS} - (?P<logger>\S+) - {_PY_LEVEL} - (?P<message>.*)$",
    # %(asctime)s %(levelname)s [%(name)s] %(message)s
    rf"^{_PY_TS} {_PY_LEVEL} +\[(?P<logger>[^\]\s]+)\] (?P<message>.*)$",
    # %(asctime)s %(levelname)s:%(name)s:%(message)s (basicConfig's layout with a time in front)
    rf"^{_PY_TS} {_PY_LEVEL}:(?P<logger>[^:\s]+):(?P<message>.*)$",
    # %(asctime)s [%(levelname)s] %(name)s: %(message)s
    rf"^{_PY_TS} \[{_PY_LEVEL}\] (?P<logger>[^:\s]+): (?P<message>.*)$",
)
_J_LEVEL = r"(?P<level>TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|SEVERE)"
_LOG4J_PATTERNS: Final = (
    # %d %p [%t] %c: %m  (Hadoop) and %d %-5p [%t] %c - %m
    rf"^{_PY_TS} +{_J_LEVEL} +\[(?P<thread>[^\]]*)\] +(?P<logger>[\w.$]+)(?::|\s-)\s?(?P<message>.*)$",
    # %d [%t] %-5level %logger - %msg  (logback)
    rf"^{_PY_TS} +\[(?P<thread>[^\]]*)\] +{_J_LEVEL} +(?P<logger>[\w.$]+) - (?P<message>.*)$",
)
_SPRING: Final = (
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d{3,9}(?:Z|[+-]\d{2}:?\d{2})?) +"
    r"(?P<level>TRACE|DEBUG|INFO|WARN|ERROR|FATAL) +"
    # Spring Cloud Sleuth (Boot 2) puts [app,traceId,spanId(,exportable)] between level and pid.
    r"(?:\[(?P<sleuth_app>[^,\]]*),(?P<trace_id>[0-9a-fA-F]*),(?P<span_id>[0-9a-fA-F]*)(?:,[^\]]*)?\] +)?"
    r"(?P<pid>\d+) --- "
    r"(?:\[(?P<app>[^\]]*)\] )?\[ *(?P<thread>[^\]]*?)\] (?P<logger>\S+) *: (?P<message>.*)$"
)
_ZOOKEEPER: Final = (
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) - (?P<level>[A-Z]+) +"
    r"\[(?P<thread>.*):(?P<logger>[\w$.]+)@(?P<line_no>\d+)\] - (?P<message>.*)$"
)
_HDFS: Final = r"^(?P<ts>\d{6} \d{6}) (?P<pid>\d+) (?P<level>[A-Z]+) (?P<logger>[^\s:]+): (?P<message>.*)$"


def _parse_python(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, _PYTHON_PATTERNS, parse_iso8601)


def _parse_log4j(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, _LOG4J_PATTERNS, parse_iso8601, field_groups=("thread",))


def _spring_finish(groups: pd.DataFrame, columns: dict[str, pd.Series | str]) -> None:
    # Spring Boot 3 writes the application name in its own brackets (Sleuth in Boot 2 in the first of
    # [app,trace,span]); it is the service when present. The logger class is never the service: without
    # an application name the service comes from the source (its path, or --service).
    app = groups["app"].str.strip()
    sleuth = groups["sleuth_app"].str.strip()
    columns["service"] = app.mask(app == "").fillna(sleuth.mask(sleuth == ""))
    columns["logger"] = groups["logger"]
    trace = groups["trace_id"]
    columns["trace_id"] = trace.mask(trace == "")
    columns["fields"] = _text_fields(groups, ("pid", "thread", "span_id"))


def _parse_spring(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, (_SPRING,), parse_iso8601, finish=_spring_finish)


def _parse_zookeeper(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, (_ZOOKEEPER,), parse_iso8601, field_groups=("thread", "line_no"))


def _hdfs_time(text: pd.Series) -> ParsedTimes:
    return parse_compact_date_time(text)


def _parse_hdfs(lines: pd.Series) -> pd.DataFrame:
    return _regex_parse(lines, (_HDFS,), _hdfs_time, field_groups=("pid",))


# --------------------------------------------------------------------------------------------------
# Container runtimes: Kubernetes CRI and Docker json-file; the inner line is parsed again


def _inner_formats() -> dict[str, LogFormat]:
    return {name: fmt for name, fmt in LOG_FORMATS.items() if name not in _CONTAINER_FORMATS and fmt.bind is None}


def _reparse_inner(outer: pd.DataFrame, inner: pd.Series) -> pd.DataFrame:
    """Parse the inner lines again with the format detected among them; take level, message,
    service, host and the other event columns from there. The inner time wins where it has one;
    the outer (runtime) time is kept where it has none."""
    candidates = inner[outer["head"]].dropna()
    sample = [line for line in candidates.head(SAMPLE_LINES).tolist() if line.strip()]
    if not sample:
        return outer
    try:
        fmt, _ = detect_log_format(sample, _inner_formats())
    except UnknownFormatError:
        return outer
    rows = outer["head"] & inner.notna()
    parsed = fmt.parse(_text(inner[rows]).reset_index(drop=True)).set_axis(inner.index[rows])
    # Inner JSON without a time of its own is still the event's content (the outer time stays).
    take = parsed["head"] | (parsed["reject_reason"] == "no_timestamp").fillna(False)
    out = outer.copy()
    idx = parsed.index[take]
    for name in EVENT_FIELD_DTYPES:
        if name in parsed.columns and name != "fields":
            if name not in out.columns:
                out[name] = pd.Series(pd.NA, index=out.index, dtype=EVENT_FIELD_DTYPES[name])  # type: ignore[call-overload]
            values = parsed.loc[idx, name]
            if name in ("message", "kind"):
                out.loc[idx, name] = values
            else:
                out.loc[idx, name] = values.where(values.notna(), out.loc[idx, name])
    if "fields" in parsed.columns:
        out.loc[idx, "fields"] = parsed.loc[idx, "fields"].where(
            parsed.loc[idx, "fields"].notna(), out.loc[idx, "fields"]
        )
    has_time = idx[(parsed.loc[idx, "ts_utc"].notna() | parsed.loc[idx, "ts_naive"].notna()).to_numpy()]
    for name in ("ts_raw", "ts_utc", "ts_naive", "year_missing"):
        out.loc[has_time, name] = parsed.loc[has_time, name]
    # An inner time without a year or zone is less precise than the runtime's own UTC stamp.
    weak = has_time[(parsed.loc[has_time, "year_missing"]).to_numpy()]
    for name in ("ts_raw", "ts_utc", "ts_naive", "year_missing"):
        out.loc[weak, name] = outer.loc[weak, name]
    return out


_CRI: Final = (
    r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})) "
    r"(?P<stream>stdout|stderr) (?P<flag>[PF])(?: (?P<message>.*))?$"
)


def _parse_cri(lines: pd.Series) -> pd.DataFrame:
    text = _text(lines)
    index = text.index
    groups = extract_groups(text, _CRI)
    # A group of P (partial) lines ends with an F (full) line: the group is one event, whose head
    # is its first line and whose message is the inner texts joined without separators.
    flag = groups["flag"]
    full = (flag == "F").fillna(False).astype(bool)
    matched = groups["matched"]
    group_id = full.shift(1, fill_value=True).astype("int64").cumsum()
    first = matched & ~(flag.shift(1) == "P").fillna(False).astype(bool)
    continued = matched & ~first
    inner = groups["message"].fillna("")
    if bool(continued.any()):
        # Only the (rare) groups of several lines are joined; the loop is over those groups.
        sizes = group_id[matched].value_counts()
        in_multi = matched & group_id.map(sizes).gt(1).fillna(False).astype(bool)
        joined = inner[in_multi].groupby(group_id[in_multi]).agg("".join)
        heads_of_multi = first & in_multi
        inner = inner.mask(heads_of_multi, group_id[heads_of_multi].map(joined).astype(STRING))
    times = _reindex_times(parse_iso8601(groups.loc[matched, "ts"]), index)
    head, reason = _time_rejects(matched & first, times)
    # The runtime frames every line it writes (stack-trace lines too): a line without the frame is
    # damage, not a continuation line.
    reason = reason.mask(~matched, "unparseable")
    columns: dict[str, pd.Series | str] = {
        "kind": "log",
        "message": inner.astype(STRING),
        "fields": _text_fields(groups, ("stream",)),
        "continued": continued,
    }
    outer = assemble(index, head=head, times=times, ts_raw=groups["ts"], reject_reason=reason, columns=columns)
    return _reparse_inner(outer, inner.astype(STRING).where(head))


def _parse_docker_json(lines: pd.Series) -> pd.DataFrame:
    text = _text(lines)
    index = text.index
    decoded = decode_json_lines(text, mapped=False, keys=("time", "log", "stream"))
    reasons = decoded["reject_reason"]
    ok = reasons.isna()
    ts_text = decoded["key:time"]
    inner = decoded["key:log"].str.removesuffix("\n").str.removesuffix("\r")
    times = parse_iso8601(ts_text.where(ok))
    reason = reasons.mask(ok & ts_text.isna(), "no_timestamp").mask(
        ok & ts_text.notna() & ~times.parsed, "bad_timestamp"
    )
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    head = ok & times.parsed
    columns: dict[str, pd.Series | str] = {"kind": "log", "message": inner}
    columns["fields"] = fields_json({"stream": json_quote(decoded["key:stream"])}, index)
    outer = assemble(index, head=head, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)
    return _reparse_inner(outer, inner.where(head))


_DOCKER_CHECK: Final = re.compile(r'^\{"log":".*"stream":"(?:stdout|stderr)".*"time":"\d{4}-')


# --------------------------------------------------------------------------------------------------
# CSV with a header row that names a time column


def _csv_header(first_lines: Sequence[str]) -> list[str] | None:
    """The header of a CSV sample: it names one time column, and most of the lines after it (at least
    one) have as many fields, so that a few damaged rows do not hide the header."""
    if len(first_lines) < 2 or first_lines[0].count('"') % 2:  # an open quote: no header of one line
        return None
    header = _csv_fields(first_lines[0])
    if len(header) < 2 or len(set(header)) != len(header):
        return None
    if not any(_KEY_TARGETS.get(name.strip().lower(), (0, ""))[1] == "timestamp" for name in header):
        return None
    # Row by row: an open quote in a damaged row must not swallow the rows after it.
    rows = first_lines[1:SAMPLE_LINES]
    fitting = sum(1 for line in rows if len(_csv_fields(line)) == len(header))
    if not fitting or 2 * fitting <= len(rows):
        return None
    return [name.strip() for name in header]


def _csv_fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # a NUL byte, say: no fields
        return []


def _csv_check(lines: Sequence[str]) -> bool:
    return _csv_header(lines) is not None


def _csv_rows(text: pd.Series, header: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """Rows of CSV lines as string columns named by ``header``; ``ok`` False where a line has the
    wrong number of fields. pyarrow reads the block at once; a block with malformed rows goes
    through the csv module line by line so that each bad line is known by its index."""
    index = text.index
    payload = "\n".join(text.fillna("").tolist()).encode("utf-8", "surrogatepass")
    bad: list[int] = []

    def on_invalid(row: Any) -> str:
        bad.append(1)
        return "skip"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(payload),
            read_options=pa_csv.ReadOptions(column_names=header, block_size=max(1 << 20, len(payload) + 1)),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeEncodeError):
        table = None
    if table is not None and not bad and table.num_rows == len(text):
        frame = pd.DataFrame({name: _series(table.column(name), index) for name in header}, index=index)
        return frame, pd.Series(True, index=index)
    parsed = [next(csv.reader([line]), []) if isinstance(line, str) else [] for line in text.tolist()]
    ok = pd.Series([len(row) == len(header) for row in parsed], index=index)
    rows = [row if len(row) == len(header) else [None] * len(header) for row in parsed]
    frame = pd.DataFrame(rows, columns=header, index=index, dtype=object).astype(STRING)
    frame = frame.mask(frame == "")
    return frame, ok


def _parse_csv_with_header(lines: pd.Series, header: list[str], header_line: str | None) -> pd.DataFrame:
    text = _text(lines)
    index = text.index
    is_header = (
        (text == header_line).fillna(False).astype(bool) if header_line is not None else pd.Series(False, index=index)
    )
    rows, ok = _csv_rows(text.where(~is_header, ",".join([""] * len(header))), header)
    reasons = pd.Series(pd.NA, index=index, dtype=STRING).mask(~ok, "csv_field_count").mask(is_header, "csv_header")
    mapped = map_record_columns(rows, index) if len(rows.columns) else {}
    return _records_frame(index, mapped, ok & ~is_header, reasons)


def _bind_csv(first_lines: Sequence[str]) -> LogFormat:
    header = _csv_header(first_lines)
    if header is None:
        return CSV_FORMAT
    header_line = first_lines[0]

    def parse(lines: pd.Series) -> pd.DataFrame:
        return _parse_csv_with_header(lines, header, header_line)

    return replace(CSV_FORMAT, parse=parse, bind=None, rebuild=(_bind_csv, (tuple(first_lines),)))


def _parse_csv_unbound(lines: pd.Series) -> pd.DataFrame:
    """CSV without a known header: the first line of ``lines`` is taken as the header."""
    text = _text(lines)
    first = text.dropna().head(SAMPLE_LINES).tolist()
    header = _csv_header(first)
    if header is None:
        index = text.index
        return assemble(
            index,
            head=pd.Series(False, index=index),
            times=empty_times(index),
            ts_raw=pd.Series(pd.NA, index=index, dtype=STRING),
            reject_reason=pd.Series("csv_no_header", index=index, dtype=STRING),
        )
    return _parse_csv_with_header(text, header, first[0])


# --------------------------------------------------------------------------------------------------
# Generic fallback: a timestamp in a layout learned from the file, a level word anywhere

# The generic reader lives in the Rust core (core/src/generic.rs, core/src/layouts.rs): a catalogue of
# timestamp layouts, one learned from the file's first lines, the catalogue line by line for the lines
# the learned layout does not read. The layout is learned when the format is bound to a file (detection,
# or ``for_file`` for a forced format), like CSV's header: every chunk of the file is then read with the
# same layout, and a chunk that starts inside a stack trace cannot learn a different one. An unbound
# ``generic`` (a caller that never binds) learns from the first lines of each batch it is given.


def _generic_parse(lines: pd.Series, layout: str | None) -> pd.DataFrame:
    """ParsedLines of ``lines`` read by the Rust generic reader with ``layout`` (None: learned here)."""
    text = _text(lines)
    index = text.index
    batch = pa.record_batch(_core.generic_parse(core_strings(text), layout, "the lines of a generic log"))

    def column(name: str) -> pd.Series:
        values = batch.column(name)
        if pa.types.is_large_string(values.type):
            return string_series(values, index)
        out: pd.Series = values.to_pandas()
        out.index = index
        return out

    reason = column("reject_reason")
    times = ParsedTimes(
        column("ts_utc"),
        column("ts_naive"),
        column("year_missing"),
        (reason == "timestamp_out_of_range").fillna(False).astype(bool),
    )
    return assemble(
        index,
        head=column("head"),
        times=times,
        ts_raw=column("ts_raw"),
        reject_reason=reason,
        columns={"kind": "log", "level": normalize_levels(column("level")), "message": column("message")},
    )


def _parse_generic(lines: pd.Series) -> pd.DataFrame:
    return _generic_parse(lines, None)


def _generic_with_layout(layout: str, sentence: str) -> LogFormat:
    """The generic format bound to a timestamp layout (``sentence`` says how it was learned)."""

    def parse(lines: pd.Series) -> pd.DataFrame:
        return _generic_parse(lines, layout)

    return replace(
        LOG_FORMATS[GENERIC_FORMAT],
        parse=parse,
        bind=None,
        learned=sentence,
        rebuild=(_generic_with_layout, (layout, sentence)),
    )


def _bind_generic(first_lines: Sequence[str]) -> LogFormat:
    sample = [line.rstrip("\r\n") for line in first_lines if line.strip()][:SAMPLE_LINES]
    layout, hits, total = _core.generic_learn(sample)
    if layout is None:
        return LOG_FORMATS[GENERIC_FORMAT]
    spec = _GENERIC_SPECS.get(layout, "")
    sentence = f"timestamp layout {layout} ({spec}) learned from {hits} of {total} sample lines"
    return _generic_with_layout(layout, sentence)


#: The catalogue of the generic reader's timestamp layouts: name -> spec (strftime-like).
_GENERIC_SPECS: Final[Mapping[str, str]] = {layout["name"]: layout["spec"] for layout in _core.generic_layouts()}


# --------------------------------------------------------------------------------------------------
# The registry

_TS_LINE_START: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_CONTAINER_FORMATS: Final = frozenset({"kubernetes_cri", "docker_json"})

CSV_FORMAT: Final = LogFormat(
    name="csv",
    description="CSV with a header row that names a time column (time, timestamp, @timestamp, date, ...)",
    check=_csv_check,
    parse=_parse_csv_unbound,
    bind=_bind_csv,
)

LOG_FORMATS: Final[dict[str, LogFormat]] = {
    f.name: f
    for f in (
        LogFormat(
            name="access_combined_extra",
            description="nginx/Apache combined access log with trailing fields (request time -> duration_ms)",
            check=_check_share(
                r'^\S+ \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (?:\d{3}|-) (?:\d+|-) '
                r'"(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*" \S',
                0.5,
            ),
            parse=_access_parser(_ACCESS_COMBINED + r" (?P<extra>.*\S)\s*$", "combined_extra"),
        ),
        LogFormat(
            name="access_combined",
            description='nginx/Apache combined access log: common + "referer" "user agent"',
            check=_check_share(r'^\S+ \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (?:\d{3}|-) (?:\d+|-) "', 0.5),
            parse=_access_parser(_ACCESS_COMBINED + r"\s*$", "combined"),
        ),
        LogFormat(
            name="access_common",
            description='NCSA common log format: host ident user [time] "request" status bytes',
            check=_check_share(r'^\S+ \S+ \S+ \[[^\]]+\] "', 0.5),
            parse=_access_parser(_ACCESS_HEAD + r"\s*$", "common"),
        ),
        LogFormat(
            name="apache_error",
            description="Apache error log, 2.2 ([time] [level] msg) and 2.4 ([time] [module:level] [pid] [client])",
            check=_check_share(r"^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} +\d{1,2} [\d:.]+ \d{4}\] \[", 0.5),
            parse=_parse_apache_error,
        ),
        LogFormat(
            name="syslog_rfc5424",
            description="syslog RFC 5424: <PRI>1 timestamp host app procid msgid [sd] msg",
            check=_check_share(r"^(?:<\d{1,3}>)?1 (?:\d{4}-\d{2}-\d{2}T\S+|-) \S+ \S+ \S+ \S+ ", 0.5),
            parse=_parse_rfc5424,
        ),
        LogFormat(
            name="syslog_rfc3164",
            description="BSD syslog RFC 3164 (no year): [<PRI>]Mmm dd HH:MM:SS host program[pid]: msg",
            check=_check_share(r"^(?:<\d{1,3}>)?[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \S+ ", 0.5),
            parse=_parse_rfc3164,
        ),
        LogFormat(
            name="docker_json",
            description='Docker json-file driver: {"log": "...", "stream": "...", "time": "..."}; inner line reparsed',
            check=lambda lines: _matches(lines, _DOCKER_CHECK) >= 0.5 * len(lines) > 0,
            parse=_parse_docker_json,
        ),
        LogFormat(
            name="kubernetes_cri",
            description="Kubernetes CRI container log: time stream P|F line; partials joined, inner line parsed again",
            check=_check_share(r"^\d{4}-\d{2}-\d{2}T\S+ (?:stdout|stderr) [PF] ", 0.5),
            parse=_parse_cri,
            multiline=True,
            multiline_start=re.compile(r"^\d{4}-\d{2}-\d{2}T\S+ (?:stdout|stderr) [PF] "),
        ),
        LogFormat(
            name="kubernetes_audit",
            description="Kubernetes API server audit log (audit.k8s.io events): verb, object, user; writes are changes",
            check=lambda lines: _matches(lines, _AUDIT_CHECK) >= 0.5 * len(lines) > 0,
            parse=_parse_kubernetes_audit,
        ),
        LogFormat(
            name="json_lines",
            description="JSON lines: ECS (nested or dotted) and common keys (time/ts/@timestamp, level, msg, ...)",
            check=_json_check,
            parse=_parse_json_lines,
        ),
        CSV_FORMAT,
        LogFormat(
            name="spring_boot",
            description="Spring Boot default console/file layout (2.x and 3.x), Java stack traces folded",
            check=_check_share(r"^\d{4}-\d{2}-\d{2}[ T]\S+ +[A-Z]+ +(?:\[[^\]]*\] +)?\d+ --- ", 0.5, among=_ISO_START),
            parse=_parse_spring,
            multiline=True,
            multiline_start=_TS_LINE_START,
        ),
        LogFormat(
            name="zookeeper",
            description="Zookeeper log4j layout: date time - LEVEL [thread:Class@line] - msg",
            check=_check_share(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - [A-Z]+ +\[", 0.5, among=_ISO_START),
            parse=_parse_zookeeper,
            multiline=True,
            multiline_start=_TS_LINE_START,
        ),
        LogFormat(
            name="log4j",
            description="log4j/logback: date LEVEL [thread] logger: msg (and %d [%t] %p %c - %m), stack traces folded",
            check=_check_share(
                r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\S* +(?:[A-Z]+ +)?\[[^\]]*\] +(?:[A-Z]+ +)?[\w.$]+(?::|\s-)",
                0.5,
                among=_ISO_START,
            ),
            parse=_parse_log4j,
            multiline=True,
            multiline_start=_TS_LINE_START,
        ),
        LogFormat(
            name="python_logging",
            description="Python logging with a time: '%(asctime)s - name - LEVEL - msg' and similar, tracebacks folded",
            check=_check_share(
                r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d+)? (?:- \S+ - |\[?[A-Z]+\]?[ :])",
                0.5,
                among=_ISO_START,
            ),
            parse=_parse_python,
            multiline=True,
            multiline_start=_TS_LINE_START,
        ),
        LogFormat(
            name="hdfs",
            description="Hadoop HDFS layout: yymmdd HHMMSS pid LEVEL component: msg",
            check=_check_share(r"^\d{6} \d{6} \d+ [A-Z]+ \S+: ", 0.5),
            parse=_parse_hdfs,
            multiline=True,
            multiline_start=re.compile(r"^\d{6} \d{6} \d+ "),
        ),
        LogFormat(
            name="logfmt",
            description='logfmt: key=value pairs with a time key (ts=... level=... msg="...")',
            check=lambda lines: (
                bool(lines)
                and sum(1 for line in lines if re.match(r"^\s*[A-Za-z_@][\w.@/-]*=\S", line) and "=" in line[:40])
                >= 0.5 * len(lines)
                and any(re.search(r"(?:^|\s)(?:ts|time|timestamp|t|@timestamp|date)=", line) for line in lines)
            ),
            parse=_parse_logfmt,
        ),
        LogFormat(
            name="generic",
            description=(
                "fallback: a timestamp in a layout learned from the file's first lines (ISO 8601, syslog, "
                "access-log, epoch and 50 more), a level word anywhere in the line"
            ),
            check=lambda lines: bool(lines),
            parse=_parse_generic,
            multiline=True,
            bind=_bind_generic,
        ),
    )
}
if len(LOG_FORMATS) != 18:  # duplicate-name guard: a repeated name would silently replace a format
    raise RuntimeError("duplicate log format names in LOG_FORMATS")

#: The name of the fallback format, which detection only chooses when nothing more specific fits.
GENERIC_FORMAT: Final = "generic"


def get_format(name: str, formats: Mapping[str, LogFormat] = LOG_FORMATS) -> LogFormat:
    """The format registered under ``name``.

    Raises:
        UnknownFormatError: listing the known names.
    """
    try:
        return formats[name]
    except KeyError:
        raise UnknownFormatError(f"unknown log format {name!r}; known formats: {', '.join(formats)}") from None


def starts_event(fmt: LogFormat, lines: pd.Series) -> np.ndarray:
    """Where lines begin the way an event of ``fmt`` begins (its ``multiline_start``): such a line that
    is not an event head is damage, never a continuation line. All False for formats without one."""
    text = _text(lines)
    if fmt.multiline_start is None or len(text) == 0:
        return np.zeros(len(text), dtype=bool)
    try:
        return match_text(text, fmt.multiline_start.pattern).to_numpy(dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A user format's pattern that RE2 does not accept: Python's re on these lines.
        return np.fromiter(
            (isinstance(v, str) and fmt.multiline_start.search(v) is not None for v in text.tolist()),
            dtype=bool,
            count=len(text),
        )


def explained_lines(fmt: LogFormat, parsed: pd.DataFrame, lines: pd.Series) -> int:
    """How many of ``lines`` (parsed by ``fmt`` into ``parsed``) the format explains: event heads, lines
    the parser joined to their head (CRI partial lines), a CSV header and, in multi-line formats, the
    lines that may continue an event (after a head, with no rejected line or damaged event start in
    between)."""
    # A CSV header is the format's own structure: explained, though not an event.
    head = (parsed["head"] | (parsed["reject_reason"] == "csv_header").fillna(False)).to_numpy(dtype=bool)
    rejected = parsed["reject_reason"].notna().to_numpy(dtype=bool) & ~head
    continued = (
        parsed["continued"].to_numpy(dtype=bool) if "continued" in parsed.columns else np.zeros(len(head), dtype=bool)
    )
    if not fmt.multiline:
        return int((head | (continued & ~rejected)).sum())
    candidate = ~head & ~rejected
    rejected = rejected | (candidate & ~continued & starts_event(fmt, lines))
    candidate = candidate & ~rejected
    starter = head | rejected
    segment = np.cumsum(starter)
    segment_is_event = np.concatenate(([False], head[starter]))
    return int(head.sum() + (candidate & segment_is_event[segment]).sum())


def detect_log_format(lines: Sequence[str], formats: Mapping[str, LogFormat] = LOG_FORMATS) -> tuple[LogFormat, str]:
    """Choose the format of a file from its first lines: the one the majority of them fit.

    Every format whose ``check`` accepts the sample parses it, and scores the sample lines it
    explains (:func:`explained_lines`: event heads, and in multi-line formats the lines that continue
    them). The highest score wins, the earlier (more specific) format on a tie. A specific format
    that explains a majority of the sample is chosen even where the generic fallback would find a
    timestamp in more lines: the lines it does not explain are damage, rejected with a reason, and
    must not turn a whole file into text without levels or fields. Only when no specific format
    explains a majority is the fallback compared, by its event heads. Formats that need the file's
    first lines (CSV) come back bound to them.

    Returns:
        (format, reason), e.g. ``(access_combined, "access_combined: 62 of 64 sample lines match")``;
        when the fallback wins, the reason also names the best specific format and its score.

    Raises:
        UnknownFormatError: when no format finds a timestamp in any sample line.
    """
    sample = [line.rstrip("\r\n") for line in lines if line.strip()][:SAMPLE_LINES]
    if not sample:
        raise UnknownFormatError("no lines to detect a log format from (the file is empty or blank)")
    series = pd.Series(sample, dtype=STRING)
    best: tuple[int, LogFormat] | None = None
    runner_up: tuple[int, LogFormat] | None = None
    for fmt in formats.values():
        if fmt.name == GENERIC_FORMAT and best is not None and 2 * best[0] > len(sample):
            break  # a specific format explains a majority: the fallback is not considered
        if not fmt.check(sample):
            continue
        bound = fmt.for_file(sample)
        parsed = bound.parse(series)
        if fmt.name == GENERIC_FORMAT:
            score = int(parsed["head"].sum())
        else:
            score = explained_lines(bound, parsed, series)
        if score and (best is None or score > best[0]):
            runner_up = best if best is not None and fmt.name == GENERIC_FORMAT else runner_up
            best = (score, bound)
        if score == len(sample):
            break  # every line explained: later (less specific) formats could only tie
    if best is None:
        raise UnknownFormatError(
            f"no known log format finds a timestamp in the first {len(sample)} lines; "
            "force one with --format or describe it in a --format-file"
        )
    score, fmt = best
    reason = f"{fmt.name}: {score} of {len(sample)} sample lines match"
    if fmt.name == GENERIC_FORMAT and runner_up is not None:
        reason += f" (no specific format fits a majority; best {runner_up[1].name}: {runner_up[0]})"
    if fmt.learned is not None:
        reason += f"; {fmt.learned}"
    return fmt, reason
