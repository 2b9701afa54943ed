"""The log-file connector: one file of lines in, UTC event frames and a complete accounting out.

:class:`LogFileConnector` streams a file through three layers: :mod:`~pmtimeline.connectors.rawio`
(bytes to numbered lines), a :class:`~pmtimeline.connectors.log_formats.LogFormat` (lines to parsed
columns) and :mod:`~pmtimeline.connectors.time_normalize` (wall clock to UTC). Per chunk of lines,
everything is vectorized; the only state carried between chunks is the last, still open event (its
stack trace may continue in the next chunk), the year sequence and the DST fall-back state.

What becomes of each line (the accounting invariant
``lines_read == event_lines + continuation_lines + sum(rejected) + outside_window`` always holds):

* a line rejected by the I/O layer (``nul_bytes``, ``truncated_archive``, ...) or by the format
  (``json_decode``, ``bad_timestamp``, ...) is rejected with that reason; a head whose timestamp
  cannot be placed (a ``Feb 29`` that no leap year fits) is rejected ``bad_timestamp``;
* an event head starts an event; in a multi-line format the lines that follow it without being
  heads (stack traces, tracebacks, blank lines inside an event) are its continuation lines and are
  appended to its message with ``\\n`` (blank lines at its end are counted but not appended);
* in a multi-line format, a line that begins the way the format's events begin
  (``LogFormat.multiline_start``: a timestamp at the start) but is not a head is damage, rejected
  ``unparseable``, never folded into the event before it;
* a rejected line ends the event before it, so that the stack trace of a head with a bad timestamp
  is not attached to an earlier event: continuation lines after it, and before the first head of the
  file, are rejected ``orphan_continuation`` (blank ones ``empty_line``);
* in a single-line format a line that is not a head is rejected ``unparseable`` (blank:
  ``empty_line``); a file whose format cannot be detected has all its lines rejected
  ``unparseable``;
* an event outside the window ``[config.start, config.end)`` counts its head and continuation
  lines in ``outside_window``;
* past ``config.max_events`` events in the run, the remaining lines count as rejected
  ``event_cap`` and the source is marked partial.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.config import TimelineConfig, match_source
from pmtimeline.connectors.log_formats import (
    EVENT_FIELD_DTYPES,
    LOG_FORMATS,
    LogFormat,
    detect_log_format,
    get_format,
    starts_event,
)
from pmtimeline.connectors.rawio import (
    REJECT_SIZE_CAP,
    REJECT_TRUNCATED_ARCHIVE,
    SIZE_CAP_WORDS,
    LineBlock,
    LineReader,
    check_readable,
    file_mtime,
    read_head,
)
from pmtimeline.connectors.time_normalize import (
    FallBackState,
    YearRule,
    YearScan,
    apply_years,
    localize_flagged,
    reference_from_window,
    reference_from_year,
)
from pmtimeline.errors import UnknownFormatError
from pmtimeline.escaping import escape_terminal
from pmtimeline.schema import (
    EVENT_DTYPES,
    LEVELS,
    SEVERITY_NUMBER,
    STRING,
    TIMESTAMP,
    conform_events,
    normalize_levels,
)
from pmtimeline.sources import Reject, SourceAccounting

REJECT_UNPARSEABLE: Final = "unparseable"
REJECT_ORPHAN: Final = "orphan_continuation"
REJECT_EMPTY: Final = "empty_line"
REJECT_BAD_TIMESTAMP: Final = "bad_timestamp"
REJECT_NO_TIMESTAMP: Final = "no_timestamp"
REJECT_EVENT_CAP: Final = "event_cap"
REJECT_PARSER_ERROR: Final = "parser_error"
#: Longest excerpt of a rejected line kept for ``--rejects`` (characters, after escaping).
EXCERPT_CHARS: Final = 512
#: Lines read at most by :meth:`LogFileConnector.preview`.
PREVIEW_LINES: Final = 5000

#: Event columns a format's parser may provide, besides the timestamp columns.
_N_LINES: Final = "_n_lines"  # lines an event spans: its head plus its continuation lines


class EventBudget:
    """How many more events a run may emit (``config.max_events``), shared by its sources."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` events; returns how many may be emitted."""
        granted = min(wanted, self.remaining)
        self.remaining -= granted
        return granted

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0


def format_registry(config: TimelineConfig, formats: Mapping[str, LogFormat] | None = None) -> dict[str, LogFormat]:
    """The formats of a run: the user formats of ``config.format_file`` first, then ``formats``
    (default: the built-in :data:`LOG_FORMATS`). A user format may replace a built-in one by name."""
    base = dict(formats if formats is not None else LOG_FORMATS)
    if not config.format_file:
        return base
    from pmtimeline.connectors.user_formats import load_format_file  # only runs that use --format-file

    user = load_format_file(config.format_file)
    return {**user, **{name: fmt for name, fmt in base.items() if name not in user}}


def zone_for(path: str, config: TimelineConfig, fmt: LogFormat | None = None) -> str:
    """The zone of naive timestamps of ``path``: the first matching ``--source-tz`` glob
    (:func:`~pmtimeline.config.match_source`), else the format's own zone (user formats), else ``--tz``."""
    zone = match_source(config.source_tz, path, config.input_roots)
    if zone is not None:
        return zone
    if fmt is not None and fmt.timezone:
        return fmt.timezone
    return config.tz


def service_for(path: str, config: TimelineConfig) -> str | None:
    """The service of the events of ``path`` that name none themselves: the first matching
    ``--service`` glob, else the name :func:`service_from_path` finds in the path (None: unknown)."""
    name = match_source(config.source_services, path, config.input_roots)
    return name if name is not None else service_from_path(path)


#: Directory names that say nothing about the application (compared lower-cased); so does any name
#: with ``log``/``logs`` as a word (``sample_logs``, ``log-archive``), a date or a number.
GENERIC_DIRECTORIES: Final = frozenset(
    {
        *("", ".", "..", "var", "tmp", "temp", "home", "opt", "srv", "run", "data", "app", "apps", "application"),
        *("current", "archive", "archived", "old", "rotated", "backup", "hosts", "host", "system", "sys", "out"),
        *("output", "outputs", "containers", "pods", "services", "service", "workers", "incident", "incidents"),
        *("input", "inputs", "dump", "dumps", "export", "exports", "raw", "files", "default", "prod", "production"),
        *("staging", "stage", "dev", "test", "tests", "local", "users", "user", "root", "mnt", "volumes", "share"),
    }
)
#: File stems that name a kind of log, not an application.
GENERIC_STEMS: Final = frozenset(
    {
        *("log", "logs", "access", "error", "errors", "app", "application", "main", "server", "output", "out"),
        *("stdout", "stderr", "console", "current", "messages", "syslog", "kern", "auth", "secure", "daemon"),
        *("debug", "combined", "all", "service", "default", "audit", "trace", "events", "event", "info", "warn"),
        *("std", "err", "cron", "user", "mail", "requests", "request", "other_vhosts_access", "ssl_access"),
        *("production", "prod", "staging", "development", "dev", "test", "api", "worker", "web", "www"),
    }
)
#: Web servers and proxies: a name of the software, used only when the path has no better name
#: (``edge/nginx_access.log`` is ``edge``; ``/var/log/nginx/access.log`` is ``nginx``).
SERVER_SOFTWARE: Final = frozenset(
    {"nginx", "apache", "apache2", "httpd", "haproxy", "envoy", "traefik", "caddy", "lighttpd", "varnish", "squid"}
)
# Rotation, compression and date suffixes, and log extensions: removed from a file name until none is
# left (``checkout-api.log.2024-03-12.gz`` -> ``checkout-api``).
_NAME_SUFFIX: Final = re.compile(
    r"(?i)(?:\.(?:gz|bz2|xz|zst|lz4|zip|z)|[._-]\d{1,3}|[._-]?\d{4}-?\d{2}-?\d{2}(?:[T_-]?\d{2,6})?|"
    r"\.(?:log|logs|txt|json|jsonl|ndjson|logfmt|csv|out|err))$"
)
# A role of the log after the application's name: ``nginx_access``, ``checkout.error``, ``api-stdout``.
_ROLE_SUFFIX: Final = re.compile(r"(?i)[._-](?:access|error|errors|debug|stdout|stderr|out|err|console|audit|gc)$")
# /var/log/containers/<pod>_<namespace>_<container>-<64 hex container id>.log
# (the container id is 64 hex digits; some tools shorten it to 12)
_K8S_CONTAINER_LOG: Final = re.compile(r"^[^_/]+_[^_/]+_(?P<container>[^/]+)-[0-9a-f]{12,64}\.log(?:\..*)?$")
# /var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log
_K8S_POD_DIR: Final = re.compile(r"^[^_/]+_[^_/]+_[0-9a-fA-F-]{8,}$")
_K8S_POD_LOG: Final = re.compile(r"^\d+\.log(?:\..*)?$")
_NUMBER: Final = re.compile(r"^[\d._-]*$")
_LOGS_DIRECTORY: Final = re.compile(r"(?i)(?:^|[._-])logs?(?:$|[._-])")


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", name.lower()) if w]


def _longer_name_of(longer: str, name: str) -> bool:
    """``longer`` holds every word of ``name``, and more (``provision-service`` of ``provision``)."""
    outer, inner = _words(longer), _words(name)
    if not inner or len(outer) <= len(inner):
        return False
    return any(outer[i : i + len(inner)] == inner for i in range(len(outer) - len(inner) + 1))


def service_from_path(path: str) -> str | None:
    """A stable service name from a log file's path, or None when the path has none.

    * Kubernetes log files name their container: ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log``
      and ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log`` give ``<container>``.
    * Otherwise the file's stem, without rotation, compression and date suffixes, log extensions and a
      role suffix (``logs/checkout-api.log.1`` and ``checkout-api-2024-03-12.log.gz`` give
      ``checkout-api``, ``checkout.access.log`` gives ``checkout``), unless that stem names a kind of
      log (:data:`GENERIC_STEMS`: ``app.log``, ``access.log``, ``syslog``, ``api.jsonl``); then the nearest directory
      that is not generic (:data:`GENERIC_DIRECTORIES`, ``*logs*``, dates), looking up two levels
      (``checkout/app.log`` and ``checkout/logs/current`` give ``checkout``). A directory that names the
      stem more fully is taken instead (``s3-index/index.log`` and ``guest-agent/agent.log`` give the
      directory; ``payments/payments-api.log`` gives ``payments-api``).
    * The name of web-server software (``nginx``) is taken only when nothing better is found.
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts:
        return None
    name, dirs = parts[-1], parts[:-1]
    container = _K8S_CONTAINER_LOG.match(name)
    if container:
        return container["container"]
    if _K8S_POD_LOG.match(name) and len(dirs) >= 2 and _K8S_POD_DIR.match(dirs[-2]):
        return dirs[-1]
    stem = name
    while True:
        shorter = _NAME_SUFFIX.sub("", stem)
        if shorter == stem or not shorter:
            break
        stem = shorter
    stem = _ROLE_SUFFIX.sub("", stem) or stem
    weak: str | None = None
    if stem.lower() in SERVER_SOFTWARE:
        weak = stem
    elif stem.lower() not in GENERIC_STEMS and not _NUMBER.match(stem):
        # A directory that names the same thing more fully wins: s3-index/index.log is s3-index.
        parent = dirs[-1] if dirs else ""
        return parent if _longer_name_of(parent, stem) else stem
    for directory in reversed(dirs[-2:]):
        if directory.lower() in SERVER_SOFTWARE:
            weak = weak or directory
        elif not (
            directory.lower() in GENERIC_DIRECTORIES or _NUMBER.match(directory) or _LOGS_DIRECTORY.search(directory)
        ):
            return directory
    return weak


@dataclass
class _YearChoice:
    reference: pd.Timestamp
    rule: YearRule
    origin: str


@dataclass
class _Pending:
    """The last event read, held back because its continuation lines may follow in the next chunk."""

    event: pd.DataFrame  # one row: event columns and _N_LINES
    pieces: list[str] = field(default_factory=list)  # continuation text from later chunks


@dataclass
class _FileState:
    """Everything carried from one chunk of a file to the next."""

    fmt: LogFormat | None
    zone: str
    pending: _Pending | None = None
    years: YearScan = field(default_factory=YearScan)
    anchor: int | None = None
    dst: FallBackState = field(default_factory=FallBackState)
    last_time: pd.Timestamp | None = None
    ambiguous: int = 0
    nonexistent: int = 0
    truncated: int = 0
    prescan: bool = True  # allowed to read the whole file once more to choose a year
    service: str | None = None  # the service of events that name none (see service_for)


class LogFileConnector:
    """Events of one log file, with the accounting of every line.

    Args:
        path: the file, as given by the user (``name`` and the ``source`` column keep it as is).
        config: the run's configuration (window, zones, year, forced format, limits).
        format: parse with this format instead of detecting one.
        formats: the registry to detect from and to look ``config.format_name`` up in (default:
            :func:`format_registry` of ``config``).
        reference_year: a reference for year-less timestamps when neither ``config.year`` nor the
            window gives one: a year (the year of the file's first line) or a time (typically the
            median of full timestamps of the other sources of the run; the year is chosen to put the
            file nearest to it). Without any, the file's modification time is used.
        budget: the run's shared event budget (default: one of ``config.max_events`` for this file).
        detected: the ``(format, reason)`` that :func:`detect_log_format` already chose for this
            file's first lines (saves detecting twice); ignored when a format is forced.

    ``read()`` raises :class:`~pmtimeline.errors.SourceError` (one line) when the file cannot be read.
    """

    def __init__(
        self,
        path: str,
        config: TimelineConfig,
        format: LogFormat | None = None,
        formats: Mapping[str, LogFormat] | None = None,
        reference_year: int | pd.Timestamp | None = None,
        *,
        budget: EventBudget | None = None,
        detected: tuple[LogFormat, str] | None = None,
    ) -> None:
        self.name = path
        self.path = path
        self.config = config
        self._forced = format
        self._formats = formats
        self._reference = reference_year
        self._budget = budget if budget is not None else EventBudget(config.max_events)
        self._detected = detected
        self._accounting = SourceAccounting(name=path, path=path)
        self._rejects: list[Reject] = []

    # -- AccountedSource ---------------------------------------------------------------------------

    def accounting(self) -> list[SourceAccounting]:
        return [self._accounting]

    def rejects(self) -> list[Reject]:
        return list(self._rejects)

    def read(self) -> Iterator[pd.DataFrame]:
        """Yield event frames (schema columns and dtypes), in file order, chunk by chunk."""
        self._accounting = SourceAccounting(name=self.path, path=self.path)
        self._rejects = []
        check_readable(self.path)
        fmt, reason = self.choose_format()
        state = self._start(fmt, reason)
        reader = LineReader(self.path, self.config)
        yield from self._run(reader.blocks(), state)
        self._finish(state, reader)

    # -- public helpers ------------------------------------------------------------------------------

    def choose_format(self) -> tuple[LogFormat | None, str]:
        """The format to parse the file with, and why (None when no format fits)."""
        formats = self._registry()
        if self._detected is not None and self._forced is None and not self.config.format_name:
            return self._detected
        head = read_head(self.path, self.config, skip_blank=True)
        first = head.lines
        sample = [line for line in first if line.strip()]
        if self._forced is not None:
            return self._forced.for_file(sample), f"{self._forced.name}: given by the caller"
        if self.config.format_name:
            fmt = get_format(self.config.format_name, formats).for_file(sample)
            learned = f"; {fmt.learned}" if fmt.learned else ""  # the generic reader's learned layout
            return fmt, f"{self.config.format_name}: forced with --format{learned}"
        if not sample:
            return None, head.why_no_line()  # not "empty" for a bomb or a first line of megabytes
        try:
            return detect_log_format(first, formats)
        except UnknownFormatError as exc:
            return None, str(exc)

    def preview(self, rows: int = 10) -> tuple[LogFormat | None, str, str, pd.DataFrame]:
        """The format, why, the zone and the first ``rows`` events, reading only the file's start.

        The year of year-less timestamps is chosen from the lines read (no second pass).
        """
        check_readable(self.path)
        fmt, reason = self.choose_format()
        state = self._start(fmt, reason)
        state.prescan = False
        reader = LineReader(self.path, dataclasses.replace(self.config, chunk_lines=min(self.config.chunk_lines, 1000)))
        frames: list[pd.DataFrame] = []
        found = 0

        def limited() -> Iterator[LineBlock]:
            for block in reader.blocks():
                yield block
                if found >= rows or block.first_line + len(block.lines) > PREVIEW_LINES:
                    return

        for frame in self._run(limited(), state):
            frames.append(frame)
            found += len(frame)
        events = pd.concat(frames, ignore_index=True) if frames else conform_events(pd.DataFrame())
        return fmt, reason, state.zone, events.head(rows).reset_index(drop=True)

    # -- the per-file run ----------------------------------------------------------------------------

    def _registry(self) -> Mapping[str, LogFormat]:
        if self._formats is None:
            self._formats = format_registry(self.config)
        return self._formats

    def _start(self, fmt: LogFormat | None, reason: str) -> _FileState:
        acc = self._accounting
        acc.format = fmt.name if fmt is not None else None
        acc.format_reason = escape_terminal(reason, limit=300)
        zone = zone_for(self.path, self.config, fmt)
        acc.time_zone = zone
        return _FileState(fmt=fmt, zone=zone, service=service_for(self.path, self.config))

    def _run(self, blocks: Iterable[LineBlock], state: _FileState) -> Iterator[pd.DataFrame]:
        it = iter(blocks)
        block = next(it, None)
        while block is not None:
            following = next(it, None)
            # Lookahead: a file held in one chunk needs no second pass to choose a year.
            whole_file = block.first_line == 1 and following is None
            yield from self._block(block, state, whole_file=whole_file, last=following is None)
            block = following
        if state.pending is not None:
            yield from self._emit(self._close_pending(state))

    def _finish(self, state: _FileState, reader: LineReader) -> None:
        acc = self._accounting
        acc.truncated_lines = state.truncated
        if state.truncated:
            acc.notes.append(
                f"{state.truncated} lines longer than {_size(self.config.max_line_bytes)} cut to that size"
            )
        if state.ambiguous:
            acc.notes.append(
                f"{state.ambiguous} timestamps in a repeated DST hour ({state.zone}) resolved by line order"
            )
        if state.nonexistent:
            acc.notes.append(
                f"{state.nonexistent} timestamps in a DST spring-forward gap ({state.zone}) shifted forward"
            )
        if reader.compression:
            acc.notes.append(f"{reader.compression}-compressed")
        if reader.encoding != "utf-8":
            acc.notes.append(f"decoded from {reader.encoding}")
        stop = reader.stop_reason
        if stop and stop != "read_limit":
            acc.partial = True
            acc.partial_reason = acc.partial_reason or _stop_message(stop)

    # -- one chunk of lines --------------------------------------------------------------------------

    def _block(
        self, block: LineBlock, state: _FileState, *, whole_file: bool, last: bool = False
    ) -> Iterator[pd.DataFrame]:
        acc = self._accounting
        n = len(block.lines)
        acc.lines_read += n
        acc.decode_errors += block.decode_errors
        state.truncated += block.truncated_lines
        if n == 0:
            return
        lines = block.lines.reset_index(drop=True)
        io_reject = block.io_reject.reset_index(drop=True)
        if self._budget.exhausted:
            if state.pending is not None:
                yield from self._emit(self._close_pending(state))
            self._count_cap(n)
            return
        if state.fmt is None:
            self._reject(block.first_line, lines, _reasons(io_reject.fillna(REJECT_UNPARSEABLE)))
            return
        parsed = self._parse(state.fmt, lines)
        if parsed is None:
            if state.pending is not None:
                yield from self._emit(self._close_pending(state))
            self._reject(block.first_line, lines, _reasons(io_reject.fillna(REJECT_PARSER_ERROR)))
            return

        # Reasons as an object array (None: not rejected): set with numpy, counted once per chunk.
        reason = _reasons(io_reject.fillna(parsed["reject_reason"]) if "reject_reason" in parsed else io_reject)
        head = parsed["head"].to_numpy(dtype=bool) & pd.isna(reason)
        times = self._times(parsed, np.flatnonzero(head), state, whole_file=whole_file)
        placed = times["timestamp"].notna().to_numpy()
        unplaced = np.flatnonzero(head)[~placed]
        if len(unplaced):
            ts_known = _column(parsed, "ts_utc").notna() | _column(parsed, "ts_naive").notna()
            known = ts_known.to_numpy()[unplaced]
            reason[unplaced[known]] = REJECT_BAD_TIMESTAMP
            reason[unplaced[~known]] = REJECT_NO_TIMESTAMP
            head[unplaced] = False
            times = times[placed].reset_index(drop=True)

        candidate = ~head & pd.isna(reason)
        empty = (lines.str.len() == 0).to_numpy(dtype=bool)
        heads = np.flatnonzero(head)
        if not state.fmt.multiline:
            reason[candidate & empty] = REJECT_EMPTY
            reason[candidate & ~empty] = REJECT_UNPARSEABLE
            events = self._events(parsed, lines, heads, times, state, block.first_line)
            events[_N_LINES] = 1
            self._reject(block.first_line, lines, reason)
            yield from self._emit(events)
            return

        # Multi-line: a line that begins like an event but is no head is damage, not a stack-trace
        # line. Segments start at heads and at rejected lines; segment 0 continues the event held
        # back from the previous chunk, if any.
        continued = _column(parsed, "continued", default=False).to_numpy(dtype=bool)
        maybe = np.flatnonzero(candidate & ~continued)
        if len(maybe):
            damaged = maybe[starts_event(state.fmt, lines.iloc[maybe])]
            reason[damaged] = REJECT_UNPARSEABLE
            candidate[damaged] = False
        starter = head | pd.notna(reason)
        segment = np.cumsum(starter)
        starts = np.flatnonzero(starter)
        segment_is_event = np.concatenate(([state.pending is not None], head[starts]))
        attached = candidate & segment_is_event[segment]
        orphan = candidate & ~attached
        reason[orphan & empty] = REJECT_EMPTY
        reason[orphan & ~empty] = REJECT_ORPHAN
        self._reject(block.first_line, lines, reason)

        cont = np.flatnonzero(attached)
        cont_segments = segment[cont]
        counts = np.bincount(cont_segments, minlength=len(starts) + 1)
        with_text = cont[~continued[cont]]
        joined = _join_groups(lines, with_text, segment[with_text])

        closed: pd.DataFrame | None = None
        if state.pending is not None:
            state.pending.event[_N_LINES] += int(counts[0])
            if 0 in joined.index:
                state.pending.pieces.append(str(joined.loc[0]))
            if len(starts) == 0:
                return  # the whole chunk continues the held-back event
            # The held-back event leaves with this chunk's events: as a chunk of its own it would
            # cost every later stage a chunk's fixed overhead (and events.parquet a one-row group).
            closed = self._close_pending(state)

        events = self._events(parsed, lines, heads, times, state, block.first_line)
        if len(events) == 0:
            if closed is not None:
                yield from self._emit(closed)
            return
        head_segments = segment[heads]
        events[_N_LINES] = 1 + counts[head_segments]
        folded = joined[joined.index > 0]
        if len(folded):
            # Only the events that have continuation text are touched (a few of many, usually).
            rows = np.flatnonzero(np.isin(head_segments, folded.index.to_numpy()))
            extra = folded.loc[head_segments[rows]].set_axis(rows)
            message = events["message"].iloc[rows].fillna("")
            events.loc[rows, "message"] = (message + "\n" + extra).str.rstrip("\n")
        # Hold back the last event if nothing after it ended it: its continuation may go on (in
        # the next block; after the last block there is none).
        if head_segments[-1] == len(starts) and not last:
            state.pending = _Pending(events.iloc[-1:].reset_index(drop=True))
            events = events.iloc[:-1]
        if closed is not None:
            events = pd.concat([closed, events], ignore_index=True)
        yield from self._emit(events)

    def _parse(self, fmt: LogFormat, lines: pd.Series) -> pd.DataFrame | None:
        try:
            parsed = fmt.parse(lines)
        # A parser is code from the format registry or a user's format file: if it fails on some
        # input, the chunk's lines are rejected "parser_error" and the run goes on.
        except Exception as exc:
            note = f"parser of {fmt.name} failed on a chunk: {escape_terminal(exc, limit=200)}"
            if note not in self._accounting.notes:
                self._accounting.notes.append(note)
            return None
        if len(parsed) != len(lines) or "head" not in parsed:
            note = f"parser of {fmt.name} returned no row-aligned 'head' column for a chunk"
            if note not in self._accounting.notes:
                self._accounting.notes.append(note)
            return None
        return parsed.reset_index(drop=True)

    def _times(self, parsed: pd.DataFrame, heads: np.ndarray, state: _FileState, *, whole_file: bool) -> pd.DataFrame:
        """UTC timestamp, tz_assumed and year_inferred of the heads (in file order)."""
        utc = _column(parsed, "ts_utc", dtype=TIMESTAMP).iloc[heads].reset_index(drop=True)
        naive = _column(parsed, "ts_naive", dtype="datetime64[ns]").iloc[heads].reset_index(drop=True)
        missing = _column(parsed, "year_missing", default=False).iloc[heads].reset_index(drop=True).astype(bool)
        use_naive = utc.isna() & naive.notna()
        year_less = use_naive & missing
        if bool(year_less.any()):
            offsets = state.years.observe(naive[year_less])
            if state.anchor is None:
                state.anchor = self._anchor(state, whole_file=whole_file)
            naive[year_less] = apply_years(naive[year_less], offsets, state.anchor)
            use_naive &= naive.notna()
        timestamp = utc.astype(TIMESTAMP)
        if bool(use_naive.any()):
            local = localize_flagged(naive[use_naive], state.zone, state=state.dst)
            timestamp[use_naive] = local.utc
            state.ambiguous += int(local.ambiguous.sum())
            state.nonexistent += int(local.nonexistent.sum())
        placed = timestamp.dropna()
        if len(placed):
            previous = placed.shift(1)
            if state.last_time is not None:
                previous.iloc[0] = state.last_time
            self._accounting.out_of_order += int((placed < previous).sum())
            state.last_time = placed.iloc[-1]
        return pd.DataFrame(
            {
                "timestamp": timestamp,
                "tz_assumed": pd.Series(pd.NA, index=timestamp.index, dtype=STRING).mask(use_naive, state.zone),
                "year_inferred": year_less & use_naive,
            }
        )

    def _anchor(self, state: _FileState, *, whole_file: bool) -> int:
        choice = self._year_choice()
        scan = state.years
        if choice.rule == "not_after" and not whole_file and state.prescan and state.fmt is not None:
            scan = self._scan_years(state.fmt)
        anchor, note = scan.choose(choice.reference, choice.rule, choice.origin)
        self._accounting.year_inferred = True
        self._accounting.notes.append(note)
        return anchor

    def _year_choice(self) -> _YearChoice:
        cfg = self.config
        if cfg.year is not None:
            return _YearChoice(reference_from_year(cfg.year), "first", "--year")
        window = reference_from_window(cfg.start, cfg.end)
        if window is not None:
            return _YearChoice(window, "nearest", "the --start/--end window")
        if isinstance(self._reference, int):
            return _YearChoice(reference_from_year(self._reference), "first", "the run's reference year")
        if self._reference is not None:
            return _YearChoice(pd.Timestamp(self._reference), "nearest", "full timestamps of other sources of this run")
        mtime = file_mtime(self.path)
        return _YearChoice(mtime, "not_after", f"the file's modification time ({mtime:%Y-%m-%d %H:%M} UTC)")

    def _scan_years(self, fmt: LogFormat) -> YearScan:
        """Read the whole file once to find its last line (only for the modification-time rule)."""
        scan = YearScan()
        for block in LineReader(self.path, self.config).blocks():
            parsed = self._parse(fmt, block.lines.reset_index(drop=True))
            if parsed is None:
                continue
            ok = parsed["head"].to_numpy(dtype=bool) & block.io_reject.isna().to_numpy()
            if "reject_reason" in parsed:
                ok &= parsed["reject_reason"].isna().to_numpy()
            naive = _column(parsed, "ts_naive", dtype="datetime64[ns]")
            year_less = (
                ok
                & _column(parsed, "ts_utc", dtype=TIMESTAMP).isna().to_numpy()
                & naive.notna().to_numpy()
                & _column(parsed, "year_missing", default=False).to_numpy(dtype=bool)
            )
            scan.observe(naive[year_less])
        return scan

    def _events(
        self,
        parsed: pd.DataFrame,
        lines: pd.Series,
        heads: np.ndarray,
        times: pd.DataFrame,
        state: _FileState,
        first_line: int,
    ) -> pd.DataFrame:
        """One row per head: every event column with its schema dtype, timestamp and provenance."""
        assert state.fmt is not None
        n = len(heads)
        index = pd.RangeIndex(n)
        mask = np.zeros(len(lines), dtype=bool)
        mask[heads] = True  # boolean selection is several times faster than take on Arrow strings

        def pick(column: pd.Series) -> pd.Series:
            return column[mask].set_axis(index)

        frame: dict[str, pd.Series] = {}
        for name, dtype in EVENT_DTYPES.items():
            if name in EVENT_FIELD_DTYPES and name in parsed.columns:
                column = pick(parsed[name])
                frame[name] = column if str(column.dtype) == str(dtype) else column.astype(dtype)  # type: ignore[call-overload]
            else:
                frame[name] = _nulls(dtype, index)
        if "message" not in parsed.columns:
            frame["message"] = pick(lines).astype(STRING)
        level = frame["level"]
        if not bool(level.dropna().isin(LEVELS).all()):
            level = frame["level"] = normalize_levels(level)
        frame["severity_number"] = _severity_numbers(level)
        frame["kind"] = _fill_text(frame["kind"], "log")
        frame["timestamp"] = times["timestamp"].astype(TIMESTAMP).set_axis(index)
        frame["tz_assumed"] = times["tz_assumed"].astype(STRING).set_axis(index)
        frame["year_inferred"] = times["year_inferred"].astype("boolean").set_axis(index)
        frame["ts_raw"] = pick(_column(parsed, "ts_raw", dtype=STRING)).astype(STRING)
        frame["source"] = _constant_text(self.path, index)
        frame["format"] = _constant_text(state.fmt.name, index)
        if state.service is not None:
            # Lines that name their application keep it; the others belong to the source's service.
            frame["service"] = _fill_text(frame["service"], state.service)
        frame["line"] = pd.Series(first_line + heads, index=index, dtype="Int64")
        return pd.DataFrame(frame, index=index)

    def _close_pending(self, state: _FileState) -> pd.DataFrame:
        pending = state.pending
        assert pending is not None
        state.pending = None
        event = pending.event
        if pending.pieces:
            message = event["message"].astype(STRING).fillna("")
            event["message"] = (message + "\n" + "\n".join(pending.pieces)).str.rstrip("\n")
        return event

    def _emit(self, events: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Apply the window and the event budget, account, and yield the schema frame."""
        if len(events) == 0:
            return
        acc = self._accounting
        n_lines = events[_N_LINES].to_numpy(dtype=np.int64)
        inside = np.ones(len(events), dtype=bool)
        ts = events["timestamp"]
        if self.config.start is not None:
            inside &= (ts >= self.config.start).to_numpy()
        if self.config.end is not None:
            inside &= (ts < self.config.end).to_numpy()
        acc.outside_window += int(n_lines[~inside].sum())
        kept = events[inside]
        kept_lines = n_lines[inside]
        granted = self._budget.take(len(kept))
        if granted < len(kept):
            self._count_cap(int(kept_lines[granted:].sum()))
            kept, kept_lines = kept.iloc[:granted], kept_lines[:granted]
        if len(kept) == 0:
            return
        acc.event_lines += len(kept)
        acc.events += len(kept)
        acc.continuation_lines += int(kept_lines.sum()) - len(kept)
        yield conform_events(kept)

    def _count_cap(self, lines: int) -> None:
        acc = self._accounting
        acc.rejected[REJECT_EVENT_CAP] += lines
        acc.partial = True
        acc.partial_reason = acc.partial_reason or f"stopped at the run's cap of {self._budget.limit:,} events"

    def _reject(self, first_line: int, lines: pd.Series, reason: np.ndarray) -> None:
        """Count the rejected lines of a chunk by reason and keep the first ones for ``--rejects``."""
        rejected = pd.notna(reason)
        if not rejected.any():
            return
        positions = np.flatnonzero(rejected)
        self._accounting.rejected.update(
            Counter({str(why): int(count) for why, count in pd.Series(reason[positions]).value_counts().items()})
        )
        room = self.config.max_rejects_kept - len(self._rejects)
        if room <= 0:
            return
        keep = positions[:room]
        excerpts = lines.iloc[keep].str.slice(0, EXCERPT_CHARS).fillna("").tolist()
        for pos, why, text in zip(keep.tolist(), reason[keep].tolist(), excerpts, strict=True):
            self._rejects.append(
                Reject(self.path, first_line + pos, str(why), escape_terminal(text, limit=EXCERPT_CHARS))
            )


def _column(parsed: pd.DataFrame, name: str, *, dtype: object | None = None, default: object = pd.NA) -> pd.Series:
    """A column of a ParsedLines frame, or a default column where the parser left it out."""
    if name in parsed.columns:
        return parsed[name]
    if dtype is None:
        dtype = bool if isinstance(default, bool) else STRING
    column: pd.Series = pd.Series(default, index=parsed.index, dtype=dtype)  # type: ignore[call-overload]
    return column


def _reasons(column: pd.Series) -> np.ndarray:
    """Reject reasons as an object array, None where the line is not rejected."""
    reasons: np.ndarray = column.astype(object).to_numpy(copy=True)
    reasons[pd.isna(reasons)] = None
    return reasons


def _constant_text(value: str, index: pd.RangeIndex) -> pd.Series:
    """A string column holding ``value`` on every row (pandas fills a scalar element by element)."""
    array = pa.repeat(pa.scalar(value, pa.large_string()), len(index))
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def _fill_text(column: pd.Series, value: str) -> pd.Series:
    """``column.fillna(value)`` for an Arrow string column, in C."""
    if not bool(column.isna().any()):
        return column
    array = pa.array(column, type=pa.large_string())
    filled = pc.fill_null(array, pa.scalar(value, pa.large_string()))
    return pd.Series(pd.arrays.ArrowStringArray(filled), index=column.index, copy=False)


def _nulls(dtype: object, index: pd.RangeIndex) -> pd.Series:
    """An all-null column of an event dtype, built without a per-element fill."""
    n = len(index)
    if dtype == STRING:
        return pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string())), index=index, copy=False)
    if dtype == "Int64":
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)), index=index)
    if dtype == "boolean":
        return pd.Series(pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool)), index=index)
    if dtype == "float64":
        return pd.Series(np.full(n, np.nan), index=index)
    return pd.Series(pd.NaT, index=index, dtype=TIMESTAMP)


def _severity_numbers(levels: pd.Series) -> pd.Series:
    """OpenTelemetry severity numbers of normalized levels, in C (``Series.map`` is per element)."""
    codes = pc.index_in(pa.array(levels, type=pa.large_string()), value_set=pa.array(LEVELS, type=pa.large_string()))
    numbers = pc.take(pa.array([SEVERITY_NUMBER[level] for level in LEVELS], type=pa.int64()), codes)
    return pd.Series(numbers.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), index=levels.index)


def _join_groups(lines: pd.Series, positions: np.ndarray, groups: np.ndarray) -> pd.Series:
    """The lines at ``positions`` joined with ``\\n`` per group (``groups`` non-decreasing), in C;
    indexed by group."""
    if len(positions) == 0:
        return pd.Series([], index=pd.Index([], dtype=np.int64), dtype=STRING)
    values = pa.array(lines.iloc[positions].fillna(""), type=pa.large_string())
    if isinstance(values, pa.ChunkedArray):  # lines that span two reads come in two Arrow chunks
        values = values.combine_chunks()
    starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
    offsets = pa.array(np.concatenate((starts, [len(groups)])).astype(np.int64))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, values), pa.scalar("\n", pa.large_string()))
    return pd.Series(pd.arrays.ArrowStringArray(joined), index=groups[starts], copy=False)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _stop_message(stop: str) -> str:
    if stop == REJECT_TRUNCATED_ARCHIVE:
        return "the compressed file is truncated: lines after the cut are missing"
    if stop == REJECT_SIZE_CAP:
        return SIZE_CAP_WORDS
    return escape_terminal(stop.replace("_", " ", 1), limit=200)
