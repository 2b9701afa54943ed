"""One frozen configuration object, passed in explicitly, never found implicitly.

The CLI builds a :class:`TimelineConfig` from its options; a notebook builds one in code
(``TimelineConfig(tz="Europe/Berlin", bucket="30s")``) or uses the defaults. Every stage reads only
the fields it needs. Use :func:`dataclasses.replace` to derive a changed copy.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from pmtimeline.errors import ConfigError

#: Phases of an incident, in order.
PHASES: Final[tuple[str, ...]] = ("onset", "detected", "mitigated", "recovered", "resolved")

DEFAULT_CHUNK_LINES: Final = 250_000
DEFAULT_MAX_LINE_BYTES: Final = 1 << 20  # 1 MiB: longer lines are cut and counted (Fluent Bit drops the file)
DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 64 << 30  # 64 GiB of decompressed text per file
DEFAULT_MAX_COMPRESSION_RATIO: Final = 200  # decompressed/compressed; real logs stay well under 50
DEFAULT_MAX_EVENTS: Final = 200_000_000


@dataclass(frozen=True)
class TimelineConfig:
    """Every setting of a pmtimeline run, with its default.

    Window and time:
        start, end: keep only events in ``[start, end)``; tz-aware UTC timestamps or None.
        tz: IANA zone for naive timestamps of every source without a ``source_tz`` match ("UTC").
        source_tz: ``(glob, zone)`` pairs; the first glob matching a source sets its zone.
        source_offsets: ``(glob, duration)`` pairs correcting clock skew: the first glob matching a
            source adds the duration (e.g. ``-5min`` for a host whose clock runs 5 minutes ahead) to
            its timestamps, after the window was applied to the times as written.
        source_services: ``(glob, name)`` pairs (``--service``); the first glob matching a log file
            names the service of its events that name none themselves (a line's own app field
            wins; this wins over the name guessed from the path).
        auto_time: apply the zone and clock-skew offsets found from evidence shared between sources
            (:mod:`pmtimeline.time_inference`; ``--auto-time``): the sources are read a second time
            with them. False (the default) only reports them.
        input_roots: the folders of the inputs a run was given (see :func:`input_roots`), so that
            the globs above also match a source's path relative to its input; set by
            :func:`pmtimeline.api.load` and the CLI. A glob matches a source when it matches the
            path as given, the path relative to one of these folders, or the file name
            (:func:`match_source`).
        year: the year of year-less timestamps (syslog); None infers it (window, other sources,
            file modification time).
        prune: with a window, skip log files and byte ranges of them that samples across them
            show to lie wholly outside it, unread (counted in ``outside_window``; see
            docs/time.md). True by default; False (``--no-prune``) reads every line and applies
            the window line by line.

    Reading:
        format_name: force this registered format for every log file (None detects per file).
        format_file: a TOML file of user-defined ``[[format]]`` tables.
        chunk_lines: lines per chunk when streaming a file.
        workers: parsing processes (1 = in-process; 0 = one per core).
        max_line_bytes: longer lines are truncated to this size and counted ``line_too_long``.
        max_decompressed_bytes, max_compression_ratio: stop decompressing a file past either
            (compression bombs), counted ``decompressed_size_cap``.
        max_events: stop a run after this many events, counted ``event_cap`` (partial).
        max_rejects_kept: rejected lines kept with their excerpt for ``--rejects`` (all are counted).
        own_outputs: paths this run writes (the ``-o`` output, the rejects file): a directory walk or
            glob never reads them back as input (set by the CLI; empty by default).

    Analysis:
        bucket: signal bucket width (pandas offset string).
        count_resolution: resolution of the stored per-bucket counts (impact counts are exact to it).
        baseline_min_buckets: buckets of baseline needed before an anomaly can start.
        anomaly_sigma: robust z-score (median/MAD) above which a bucket is anomalous.
        anomaly_min_count: minimum bad events in a bucket for it to count as anomalous.
        sustain_buckets: consecutive anomalous buckets that make a sustained anomaly.
        quiet_buckets: consecutive baseline buckets after which an anomaly is over.
        change_lookback: how far before onset a change is a root-cause candidate.
        change_vocabulary: change type -> regex (case-insensitive); None uses the built-in one.
        phase_overrides: phase name -> UTC timestamp given by the user; wins over detection.
        slo: availability objective in percent (e.g. 99.9) for error-budget burn; None skips it.
        cost_per_failed_request, revenue_per_minute: optional cost model (estimate).

    Outputs:
        title: the incident title.
        display_tz: a second zone shown beside UTC in the draft's timeline.
        redact: redact secrets and pseudonymize IPs and users in shared outputs (on by default).
        keep_raw: keep unredacted values in ``events.parquet``.
        template: a Jinja2 template file replacing the built-in postmortem template.
        chart_max_points: events plotted individually before the chart aggregates.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    tz: str = "UTC"
    source_tz: tuple[tuple[str, str], ...] = ()
    source_offsets: tuple[tuple[str, str], ...] = ()
    source_services: tuple[tuple[str, str], ...] = ()
    input_roots: tuple[str, ...] = ()
    year: int | None = None
    auto_time: bool = False
    prune: bool = True

    format_name: str | None = None
    format_file: str | None = None
    chunk_lines: int = DEFAULT_CHUNK_LINES
    workers: int = 1
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO
    max_events: int = DEFAULT_MAX_EVENTS
    max_rejects_kept: int = 100_000
    own_outputs: tuple[str, ...] = ()

    bucket: str = "1min"
    count_resolution: str = "1s"
    baseline_min_buckets: int = 5
    anomaly_sigma: float = 4.0
    anomaly_min_count: int = 3
    sustain_buckets: int = 2
    quiet_buckets: int = 3
    change_lookback: str = "2h"
    change_vocabulary: Mapping[str, str] | None = None
    phase_overrides: Mapping[str, pd.Timestamp] = field(default_factory=dict)
    slo: float | None = None
    cost_per_failed_request: float | None = None
    revenue_per_minute: float | None = None

    title: str = "Incident"
    display_tz: str | None = None
    redact: bool = True
    keep_raw: bool = False
    template: str | None = None
    chart_max_points: int = 20_000

    def __post_init__(self) -> None:
        for name in ("tz", "display_tz"):
            value = getattr(self, name)
            if value is not None:
                check_zone(value)
        for _glob, zone in self.source_tz:
            check_zone(zone)
        for _glob, offset in self.source_offsets:
            try:
                pd.Timedelta(offset)
            except ValueError as exc:
                raise ConfigError(f"--offset takes GLOB=DURATION such as 'hostb/*=-5min', got {offset!r}") from exc
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ConfigError("--start must be before --end")
        unknown = set(self.phase_overrides) - set(PHASES)
        if unknown:
            raise ConfigError(f"unknown phase(s): {', '.join(sorted(unknown))}; use {', '.join(PHASES)}")
        if self.chunk_lines < 1 or self.max_line_bytes < 64 or self.max_events < 1:
            raise ConfigError("chunk_lines, max_line_bytes and max_events must be positive")
        try:
            pd.Timedelta(self.bucket)
            pd.Timedelta(self.count_resolution)
            pd.Timedelta(self.change_lookback)
        except ValueError as exc:
            raise ConfigError(f"not a duration: {exc}") from exc
        if self.slo is not None and not 0 < self.slo < 100:
            raise ConfigError("--slo is a percentage between 0 and 100, e.g. 99.9")


def check_zone(name: str) -> ZoneInfo | dt.timezone:
    """Return the zone called ``name`` (IANA name, ``UTC``, or a fixed offset such as ``+01:00``).

    Raises:
        ConfigError: for an unknown zone. Ambiguous abbreviations (IST, CST, BST) are refused
            rather than guessed.
    """
    if name.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    if name[:1] in "+-" and len(name) in (5, 6):
        try:
            sign = -1 if name[0] == "-" else 1
            hours, minutes = int(name[1:3]), int(name[-2:])
            return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        except ValueError:
            pass
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, or an offset such as +01:00"
        ) from exc


#: The forms ``--start``/``--end``, phase options and incident.toml accept, as said in their errors.
ISO_TIME_FORM: Final = "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM] (ISO 8601; 'T' or a space)"
_ISO_TIME_RE: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


def parse_time(value: str | dt.datetime | pd.Timestamp, tz: str = "UTC", option: str | None = None) -> pd.Timestamp:
    """A time given by a user, as UTC: ISO 8601 text (``2024-03-12T08:00:00Z``, ``2024-03-12 08:00``,
    ``2024-03-12T08:00:00.250+01:00``, ``2024-03-12``) or a datetime. A time without zone is read
    in ``tz``; :func:`is_naive_time` tells whether it had none.

    Nothing else is guessed: ``12/03/2024`` (3 December or 12 March?), ``Mar 12 08:00`` (which
    year?) and ``yesterday`` are refused. ``option`` names the option in the error (``--start``).

    Raises:
        ConfigError: when ``value`` is not such a time, or names a local time that does not exist
            or happens twice in ``tz`` (a DST change): give its offset then.
    """
    where = f"{option}: " if option else ""
    if isinstance(value, str):
        text = value.strip()
        if _ISO_TIME_RE.fullmatch(text) is None:
            example = "e.g. 2024-03-12T08:00:00Z"
            raise ConfigError(f"{where}{value!r} is not an ISO 8601 time; use {ISO_TIME_FORM}, {example}")
        value = text.replace(",", ".")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}{value!r} is not an ISO 8601 time ({exc}); use {ISO_TIME_FORM}") from exc
    if pd.isna(ts):
        raise ConfigError(f"{where}{value!r} is not an ISO 8601 time; use {ISO_TIME_FORM}")
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(check_zone(tz), ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz/pandas raise ValueError subclasses for DST gaps and folds
            raise ConfigError(
                f"{where}{value!s} does not name one instant in {tz} (a daylight-saving change): add its offset"
            ) from exc
    return ts.tz_convert("UTC")


def is_naive_time(value: object) -> bool:
    """Whether a user's time (text or datetime) has no zone, so that it is read in ``--tz``."""
    if isinstance(value, str):
        match = _ISO_TIME_RE.fullmatch(value.strip())
        return match is None or match["zone"] is None
    return isinstance(value, dt.datetime) and value.tzinfo is None


# -- source globs (--source-tz, --offset, --service) ----------------------------------------------


def input_roots(inputs: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The folders of a run's inputs, absolute, against which source globs match relative paths:
    a folder itself, a file's folder, a glob's folder before its first wildcard."""
    roots: list[str] = []
    for item in inputs:
        text = os.fspath(item)
        if glob.has_magic(text):
            parts = []
            for part in text.split(os.sep):
                if glob.has_magic(part):
                    break
                parts.append(part)
            root = os.sep.join(parts) or "."
        elif os.path.isdir(text):
            root = text
        else:
            root = os.path.dirname(text) or "."
        absolute = os.path.abspath(root)
        if absolute not in roots:
            roots.append(absolute)
    return tuple(roots)


def source_names(path: str, roots: Sequence[str] = ()) -> tuple[str, ...]:
    """What a source glob is matched against: the path as given (and normalized), the path relative
    to each of ``roots`` that holds it, and the file name (for an archive member, ``<archive>!<member
    path>``, also the member path); ``/``-separated, each once."""
    names = [path, os.path.normpath(path)]
    absolute = os.path.abspath(path)
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if absolute.startswith(prefix):
            names.append(absolute[len(prefix) :])
    names.append(os.path.basename(path))
    archive, bang, member = path.partition("!")
    if bang and os.path.isfile(archive):  # an archive member (bundle.tgz!var/log/app.log): also its own path
        names.append(member)
    if os.sep != "/":
        names = [name.replace(os.sep, "/") for name in names]
    return tuple(dict.fromkeys(name for name in names if name))


def match_source(pairs: Iterable[tuple[str, str]], path: str, roots: Sequence[str] = ()) -> str | None:
    """The value of the first ``(glob, value)`` pair whose glob matches the source ``path`` (see
    :func:`source_names`; ``*`` also matches ``/``), or None. The one rule of ``--source-tz``,
    ``--offset`` and ``--service``."""
    names = source_names(path, roots)
    for pattern, value in pairs:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return value
    return None


#: Sources listed by name in the error about a glob that matches none.
MAX_LISTED_SOURCES: Final = 20


def check_source_globs(config: TimelineConfig, paths: Sequence[str]) -> None:
    """Refuse a ``--source-tz``, ``--offset`` or ``--service`` glob that matches none of the sources
    ``paths``: its zone, offset or service would silently never apply.

    Raises:
        ConfigError: naming the glob and listing the sources as it could have matched them
            (relative to their input), at most :data:`MAX_LISTED_SOURCES`.
    """
    options = (
        ("--source-tz", config.source_tz),
        ("--offset", config.source_offsets),
        ("--service", config.source_services),
    )
    missed: list[str] = []
    for option, pairs in options:
        for pattern, value in pairs:
            if not any(match_source([(pattern, value)], path, config.input_roots) for path in paths):
                missed.append(f"{option} {pattern!r}")
    if not missed:
        return
    shown = [_relative_name(path, config.input_roots) for path in paths]
    listed = ", ".join(shown[:MAX_LISTED_SOURCES])
    if len(shown) > MAX_LISTED_SOURCES:
        listed += f" and {len(shown) - MAX_LISTED_SOURCES} more"
    verb = "matches" if len(missed) == 1 else "match"
    raise ConfigError(
        f"{' and '.join(missed)} {verb} no source (a glob matches a path as given, relative to an input, "
        f"or a file name); the sources are: {listed or 'none'}"
    )


def _relative_name(path: str, roots: Sequence[str]) -> str:
    """``path`` relative to the innermost of ``roots`` holding it (as given when none does)."""
    absolute = os.path.abspath(path)
    relative = [absolute[len(r.rstrip(os.sep)) + 1 :] for r in roots if absolute.startswith(r.rstrip(os.sep) + os.sep)]
    return min(relative, key=len) if relative else path
