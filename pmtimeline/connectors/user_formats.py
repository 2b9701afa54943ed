"""User-defined log formats, described in a TOML file and parsed like the built-in ones.

A format file holds one ``[[format]]`` table per format::

    [[format]]
    name = "billing"                       # required; letters, digits, "_", "-", "."
    description = "billing batch jobs"     # optional
    regex = '^(?P<timestamp>\\S+ \\S+) \\[(?P<level>\\w+)\\] (?P<service>[\\w.]+): (?P<message>.*)$'
    timestamp_format = "%Y-%m-%d %H:%M:%S" # strptime pattern, or epoch_s / epoch_ms / epoch_us /
                                           # epoch_ns / iso8601 / auto
    timezone = "Europe/Berlin"             # optional: zone of naive timestamps
    levels = { W = "warning", E = "error" }  # optional: raw token -> normalized level
    multiline_start = '^\\d{4}-'           # optional: a line that starts an event; other lines are
                                           # continuation lines of the previous event, and a line
                                           # that starts one but does not fit ``regex`` is rejected
    kind = "log"                           # optional: event kind of every line (log, request, ...)

``regex`` is a regular expression with the named group ``timestamp`` and optionally ``level``,
``host``, ``service``, ``message`` and any other event column (``http_status``, ``trace_id``, ...);
every other named group goes to ``fields``. It runs in pmtimeline's Rust core (the ``regex`` crate,
RE2's syntax: ``(?P<name>...)``, classes, ``\\d``/``\\w``/``\\s`` as ASCII), which takes time linear in the
line whatever the pattern. Constructs only a backtracking engine has (look-around, backreferences,
possessive quantifiers, atomic groups, conditionals) are refused when the file is loaded, with the
construct, its position and a rewrite hint: in Python's ``re`` one such pattern took minutes on 20
short lines. ``multiline_start`` runs in the same engine and is checked the same way.

:func:`load_format_file` returns the formats by name; merge them in front of the built-in ones
(``{**user, **LOG_FORMATS}``) so detection tries them first, or force one by name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from pmtimeline import _core
from pmtimeline.config import check_zone
from pmtimeline.connectors.log_formats import (
    EVENT_FIELD_DTYPES,
    LogFormat,
    assemble,
    fields_json,
    json_quote,
)
from pmtimeline.connectors.timeformats import (
    ParsedTimes,
    combine_times,
    empty_times,
    extract_groups,
    parse_epoch,
    parse_timestamp_text,
    parse_with_format,
    search_text,
)
from pmtimeline.errors import ConfigError
from pmtimeline.polars_regex import linear_time_problem, polars_pattern
from pmtimeline.schema import KINDS, LEVELS, STRING, normalize_levels

_KEYS: Final = frozenset(
    {"name", "description", "regex", "timestamp_format", "timezone", "levels", "multiline_start", "kind"}
)
_REQUIRED: Final = ("name", "regex", "timestamp_format")
_EPOCH_FORMATS: Final = {"epoch_s": "s", "epoch_ms": "ms", "epoch_us": "us", "epoch_ns": "ns"}
_NAME: Final = re.compile(r"^[A-Za-z0-9][\w.-]*$")
#: Event columns a user regex may fill directly (the rest of the named groups go to ``fields``).
_COLUMN_GROUPS: Final = frozenset(EVENT_FIELD_DTYPES) - {"fields", "kind"}


def load_format_file(path: str | Path) -> dict[str, LogFormat]:
    """Read the user-defined formats of a TOML file, by name, in file order.

    Raises:
        ConfigError: a one-line message naming the file and the problem (unreadable file, invalid
            TOML, unknown or missing keys, a bad regex or timestamp format, an unknown zone, ...).
    """
    where = str(path)
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read format file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: format file is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    unknown_top = set(document) - {"format"}
    if unknown_top:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown_top)}; expected [[format]] tables")
    tables = document.get("format", [])
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}: expected one or more [[format]] tables")
    formats: dict[str, LogFormat] = {}
    for number, table in enumerate(tables, start=1):
        fmt = _format_from_table(table, f"{where}: format #{number}")
        if fmt.name in formats:
            raise ConfigError(f"{where}: format name {fmt.name!r} is defined twice")
        formats[fmt.name] = fmt
    return formats


def _text_option(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _format_from_table(table: Mapping[str, Any], where: str) -> LogFormat:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {', '.join(sorted(_KEYS))}")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    name = _text_option(table, "name", where) or ""
    where = f"{where} ({name})"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name must be letters, digits, '_', '-' or '.'")
    regex = _linear_time_regex(_text_option(table, "regex", where) or "", where, "regex")
    if "timestamp" not in _group_names(regex):
        raise ConfigError(f"{where}: regex has no named group 'timestamp'")
    timestamp_format = _text_option(table, "timestamp_format", where) or ""
    parse_time = _time_parser(timestamp_format, where)
    timezone = _text_option(table, "timezone", where)
    if timezone is not None:
        try:
            check_zone(timezone)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    levels = _levels(table.get("levels"), where)
    start_text = _text_option(table, "multiline_start", where)
    if start_text is not None:
        start_text = _linear_time_regex(start_text, where, "multiline_start")
    kind = _text_option(table, "kind", where) or "log"
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
    description = _text_option(table, "description", where) or f"user-defined format {name}"

    def parse(lines: pd.Series) -> pd.DataFrame:
        return _parse_user_lines(lines, regex, parse_time, levels, kind, start_text)

    def check(sample: Sequence[str]) -> bool:
        return bool(search_text(pd.Series(list(sample), dtype=STRING), regex).any())

    return LogFormat(
        name=name,
        description=description,
        check=check,
        parse=parse,
        multiline=start_text is not None,
        # Left unset: the parser matches the start pattern in the core; a Python ``re`` pattern here
        # would invite matching lines with a backtracking engine.
        multiline_start=None,
        timezone=timezone,
        rebuild=(_format_from_table, (dict(table), where)),
    )


def _linear_time_regex(pattern: str, where: str, key: str) -> str:
    """``pattern``, after checking that the core's linear-time engine runs it (else a ConfigError)."""
    problem = linear_time_problem(pattern)
    if problem is None:
        return pattern
    refused = "not supported" in problem or "too large" in problem
    raise ConfigError(f"{where}: {key}: {problem}" if refused else f"{where}: bad {key}: {problem}")


def _group_names(pattern: str) -> list[str]:
    """The groups of a pattern the core accepts, as :func:`extract_groups` names its columns."""
    return _core.regex_group_names(polars_pattern(pattern))


def _levels(value: object, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{where}: levels must be a table of raw token = normalized level")
    bad = sorted({v for v in value.values() if v not in LEVELS})
    if bad:
        raise ConfigError(f"{where}: unknown levels {bad}; use {', '.join(LEVELS)}")
    return dict(value)


def _time_parser(timestamp_format: str, where: str) -> Any:
    if timestamp_format in _EPOCH_FORMATS:
        unit = _EPOCH_FORMATS[timestamp_format]
        return lambda text: parse_epoch(text, unit)
    if timestamp_format in ("iso8601", "auto"):
        # "auto": ISO 8601 text or epoch numbers by magnitude, decided per value.
        return parse_timestamp_text
    if "%" not in timestamp_format:
        raise ConfigError(
            f"{where}: timestamp_format must be a strptime pattern or one of "
            "epoch_s, epoch_ms, epoch_us, epoch_ns, iso8601, auto"
        )
    try:
        # Validate the pattern once on a value, so a typo fails at load time and not per line.
        parse_with_format(pd.Series(["x"], dtype=STRING), timestamp_format)
    except ValueError as exc:
        raise ConfigError(f"{where}: bad timestamp_format {timestamp_format!r}: {exc}") from exc
    return lambda text: parse_with_format(text, timestamp_format)


def _parse_user_lines(
    lines: pd.Series,
    regex: str,
    parse_time: Any,
    levels: Mapping[str, str] | None,
    kind: str,
    start: str | None = None,
) -> pd.DataFrame:
    text = lines if str(lines.dtype) == str(STRING) else lines.astype(STRING)
    index = text.index
    # load_format_file checked that the core runs the pattern: no backtracking engine on any line.
    groups = extract_groups(text, regex)
    matched = groups["matched"]
    stamp = groups["timestamp"]
    times: ParsedTimes = empty_times(index)
    if bool(matched.any()):
        part = parse_time(stamp[matched])
        times = combine_times(times, ParsedTimes(*(c.reindex(index) for c in part)))
        times = times._replace(
            year_missing=times.year_missing.fillna(False).astype(bool),
            out_of_range=times.out_of_range.fillna(False).astype(bool),
        )
    head = matched & times.parsed
    reason = pd.Series(pd.NA, index=index, dtype=STRING)
    reason = reason.mask(matched & stamp.isna(), "no_timestamp")
    reason = reason.mask(matched & stamp.notna() & ~times.parsed, "bad_timestamp")
    reason = reason.mask(matched & times.out_of_range, "timestamp_out_of_range")
    if start is not None:
        # A line that starts an event but does not fit the regex is a reject, not a continuation:
        # glued to the previous event, its text would be lost inside another event's message.
        starts = search_text(text, start)
        reason = reason.mask(~matched & starts, "unparseable")
    columns: dict[str, pd.Series | str] = {"kind": kind}
    for name in groups.columns:
        if name in _COLUMN_GROUPS:
            columns[name] = groups[name]
    if "level" in groups.columns:
        raw = groups["level"]
        if levels:
            mapped = raw.map(levels).astype(STRING)
            columns["level"] = mapped.fillna(normalize_levels(raw))
        else:
            columns["level"] = normalize_levels(raw)
    if "http_status" in columns:
        columns["http_status"] = pd.to_numeric(groups["http_status"], errors="coerce").astype("Int64")
    if "duration_ms" in columns:
        columns["duration_ms"] = pd.to_numeric(groups["duration_ms"], errors="coerce").astype("float64")
    rest = [n for n in groups.columns if n not in _COLUMN_GROUPS and n not in ("timestamp", "matched")]
    if rest:
        columns["fields"] = fields_json({n: json_quote(groups[n]) for n in rest}, index)
    return assemble(index, head=head, times=times, ts_raw=stamp, reject_reason=reason, columns=columns)
