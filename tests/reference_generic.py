"""The generic fallback reader as it was before the Rust core: kept as the differential oracle.

This is a frozen copy of ``_parse_generic`` and its ``_GENERIC_PATTERNS`` from
``pmtimeline/connectors/log_formats.py`` (commit 1051d5e), the pre-Rust implementation: eight RE2
patterns tried in order on every line, a timestamp within the first 40 characters, a level word within
the first 48 characters of the message. ``tests/connectors/test_generic_layouts.py`` compares the
package's reader (``pmtimeline._core``, the learned layout) with it. Do not change it to make a test
pass: where the new reader is right and this one wrong, the test documents the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pandas as pd

from pmtimeline.connectors.log_formats import _access_time, _apache_error_time, _reindex_times, _text, assemble
from pmtimeline.connectors.timeformats import (
    ParsedTimes,
    empty_times,
    extract_groups,
    parse_epoch,
    parse_iso8601,
    parse_syslog_time,
    parse_with_formats,
    replace_regex,
)
from pmtimeline.schema import STRING, normalize_levels

#: Zone abbreviations that mean different offsets in different places; never guessed.
_AMBIGUOUS_ZONES: Final = (
    r"(?:IST|CST|CDT|BST|EST|EDT|PST|PDT|MST|MDT|CET|CEST|EET|EEST|AST|ADT|MSK|JST|KST|HKT|SGT"
    r"|AEST|AEDT|ACST|AWST|NZST|NZDT|WET|WEST|SAST|PHT|WIB|ART|BRT)"
)
_PREFIX: Final = r"^(?P<prefix>.{0,40}?)"
_GENERIC_PATTERNS: Final[tuple[tuple[str, Callable[[pd.Series], ParsedTimes]], ...]] = (
    (
        _PREFIX
        + r"(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?: ?(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)\b)?)"
        + rf"(?P<zone> {_AMBIGUOUS_ZONES}\b)?(?P<rest>.*)$",
        parse_iso8601,
    ),
    (
        _PREFIX + r"(?P<ts>\d{4}/\d{2}/\d{2}[ T-]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)(?P<rest>.*)$",
        lambda s: parse_with_formats(
            s.str.replace(",", ".", regex=False)
            .str.replace("T", " ", regex=False)
            .pipe(replace_regex, r"^(\S+)-", r"\1 "),
            ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%f"),
        ),
    ),
    (
        _PREFIX + r"(?P<ts>\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?)(?P<rest>.*)$",
        _access_time,
    ),
    (
        _PREFIX
        + r"(?P<ts>(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?"
        + r"[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})? \d{4})"
        + rf"(?P<zone> {_AMBIGUOUS_ZONES}\b)?(?P<rest>.*)$",
        _apache_error_time,
    ),
    (
        _PREFIX + r"(?P<ts>[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?P<rest>.*)$",
        parse_syslog_time,
    ),
    (
        _PREFIX + r"(?P<ts>\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})(?P<rest>.*)$",
        lambda s: parse_with_formats(s, ("%y/%m/%d %H:%M:%S",)),
    ),
    (
        _PREFIX + r"(?P<ts>\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?P<rest>.*)$",
        lambda s: parse_with_formats(s, ("%Y%m%d-%H:%M:%S", "%Y%m%d-%H:%M:%S.%f")),
    ),
    (
        r"^(?P<prefix>\W{0,3})(?P<ts>\d{10}(?:\.\d{1,9})?|\d{13})(?P<rest>(?:\D.*)?)$",
        lambda s: _plausible_epoch(s),
    ),
)
_EPOCH_MIN: Final = pd.Timestamp("2000-01-01", tz="UTC")
_EPOCH_MAX: Final = pd.Timestamp("2100-01-01", tz="UTC")


def _plausible_epoch(text: pd.Series) -> ParsedTimes:
    """Bare epoch seconds or milliseconds count as a time only between 2000 and 2100."""
    times = parse_epoch(text)
    plausible = (times.utc >= _EPOCH_MIN) & (times.utc < _EPOCH_MAX)
    return times._replace(utc=times.utc.where(plausible), out_of_range=times.out_of_range & False)


_GENERIC_LEVEL: Final = (
    r"(?:^|[\s\[(<|:])(?:level=)?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|ALERT|"
    r"EMERG|SEVERE|[Tt]race|[Dd]ebug|[Ii]nfo|[Nn]otice|[Ww]arn(?:ing)?|[Ee]rror|[Cc]ritical|[Ff]atal)(?:$|[\s\]):>|,])"
)


_GENERIC_LEADING_LEVEL: Final = (
    r"^[\[(<]?(?:level=)?(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|ALERT|EMERG|SEVERE)"
    r"[\])>]?(?:\s*[:|-]\s*|\s+|$)"
)


def parse_generic(lines: pd.Series) -> pd.DataFrame:
    """The pre-Rust generic reader (the oracle)."""
    text = _text(lines)
    index = text.index
    times = empty_times(index)
    ts_raw = pd.Series(pd.NA, index=index, dtype=STRING)
    rest = pd.Series(pd.NA, index=index, dtype=STRING)
    zone = pd.Series(pd.NA, index=index, dtype=STRING)
    matched = pd.Series(False, index=index)
    for pattern, parse_time in _GENERIC_PATTERNS:
        todo = text[~matched]
        if len(todo) == 0:
            break
        groups = extract_groups(todo, pattern)
        hit = groups["matched"]
        if not bool(hit.any()):
            continue
        found = groups[hit]
        parsed = _reindex_times(parse_time(found["ts"]), index)
        if "zone" in found.columns:
            # An ambiguous zone abbreviation after the time: the time is not guessed.
            zoned = found.index[found["zone"].notna().to_numpy()]
            parsed = ParsedTimes(
                parsed.utc.where(~parsed.utc.index.isin(zoned)),
                parsed.naive.where(~parsed.naive.index.isin(zoned)),
                parsed.year_missing,
                parsed.out_of_range,
            )
            zone.loc[found.index] = found["zone"]
        # Rows whose text parsed, is out of range, or carries an ambiguous zone are settled by this
        # pattern; the others may still match a later one.
        zoned_rows = found["zone"].notna() if "zone" in found.columns else pd.Series(False, index=found.index)
        settled_mask = (parsed.parsed.loc[found.index] | parsed.out_of_range.loc[found.index] | zoned_rows).to_numpy()
        settled = found.index[settled_mask]
        keep = pd.Series(index.isin(settled), index=index)
        times = ParsedTimes(
            times.utc.where(~keep, parsed.utc),
            times.naive.where(~keep, parsed.naive),
            times.year_missing.where(~keep, parsed.year_missing).astype(bool),
            times.out_of_range.where(~keep, parsed.out_of_range).astype(bool),
        )
        ts_raw.loc[settled] = found.loc[settled, "ts"]
        rest.loc[settled] = found.loc[settled, "rest"]
        matched.loc[settled] = True
    reason = pd.Series(pd.NA, index=index, dtype=STRING)
    reason = reason.mask(matched & ~times.parsed, "bad_timestamp").mask(
        matched & times.out_of_range, "timestamp_out_of_range"
    )
    head = (matched & times.parsed).astype(bool)
    message = replace_regex(rest, r"^[\]\)>]?[\s,:|\-\]]*", "")
    level_text = message.str.slice(0, 48)
    level = extract_groups(level_text.fillna(""), _GENERIC_LEVEL)["level"].where(head)
    # A level token right at the start of the message is not part of the message.
    message = replace_regex(message, _GENERIC_LEADING_LEVEL, "")
    return assemble(
        index,
        head=head,
        times=times,
        ts_raw=ts_raw,
        reject_reason=reason,
        columns={"kind": "log", "level": normalize_levels(level), "message": message},
    )
