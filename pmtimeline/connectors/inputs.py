"""From the INPUT arguments of a run to one source object per file.

:func:`open_inputs` expands files, directories (recursively, in sorted order) and globs; it sends
alert files (recognized from their content) to
:class:`~pmtimeline.connectors.alerts.AlertFileConnector` and every other file to
:class:`~pmtimeline.connectors.logfile.LogFileConnector`. A file that cannot be read becomes an
:class:`UnreadableSource`, which yields nothing and says why in its accounting, so the run goes on
with the others (a file that fails later, in ``read()``, raises
:class:`~pmtimeline.errors.SourceError`, which the pipeline records the same way). Directory walks
and globs skip hidden files and pmtimeline's own outputs; they also pass over documentation
(README, LICENSE, ``*.md``) and files that do not look like logs (the generic fallback finds a
timestamp on fewer than half of their first lines). Each such file is listed as a skipped source
with the reason, and is read when named explicitly.

pmtimeline's own outputs are never read back: files by their names (``events.parquet``,
``incident.json``, ``incident.toml``, ``postmortem.md``, ``timeline.*``), the run's ``-o`` and
``--rejects`` paths (``TimelineConfig.own_outputs``), a folder holding ``incident.json`` and
``events.parquet`` (a build's output folder, skipped whole; when it is the folder given, only its
outputs and its ``data`` folder), and files whose first line shows they are a rejects file or an
event export. Each is listed as skipped (file names alone are passed over silently).

An archive (a tar, compressed or not, or a zip; told from its bytes) is replaced by its regular
members, in archive order, each a source of its own named ``bundle.tgz!var/log/app.log``
(:mod:`~pmtimeline.connectors.archives`); they are treated as files found by a walk, and what of the
archive is not read (links, nested archives, what lies past its cap) is listed with the reason.

Year-less files (RFC 3164 syslog) need a reference year. When neither ``--year`` nor the window
gives one, the full timestamps found in the first lines of the run's other log files give it (their
median; failing those, the times of the run's alert files), so that a syslog file read beside
application logs or alerts lands in their year; only a file with no such company falls back to its
modification time.

:func:`sniff` shows which format a file gets, why, and its first events (``pmtimeline sniff``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.alerts import ALERT_FORMATS, AlertFileConnector, detect_alert_format
from pmtimeline.connectors.archives import ArchiveMember, archive_kind, open_archive
from pmtimeline.connectors.log_formats import GENERIC_FORMAT, LogFormat, detect_log_format, get_format
from pmtimeline.connectors.logfile import EventBudget, LogFileConnector, format_registry
from pmtimeline.connectors.rawio import (
    REJECT_SIZE_CAP,
    REJECT_TRUNCATED_ARCHIVE,
    SIZE_CAP_WORDS,
    check_readable,
    head_lines,
)
from pmtimeline.connectors.time_normalize import reference_from_times, reference_from_window
from pmtimeline.errors import ConfigError, SourceError, UnknownFormatError
from pmtimeline.escaping import escape_terminal
from pmtimeline.schema import conform_events
from pmtimeline.sources import AccountedSource, Reject, SourceAccounting

#: Files pmtimeline writes; a directory walk or glob never reads them back as input.
OWN_OUTPUT_NAMES: Final = frozenset({"events.parquet", "incident.json", "incident.toml", "postmortem.md"})
OWN_OUTPUT_PREFIX: Final = "timeline."
#: A folder holding both is an output folder of ``pmtimeline build``: a walk skips it whole (below
#: the folder it was given; that folder itself only loses its outputs and OWN_OUTPUT_DATA_DIR).
OWN_OUTPUT_MARKER: Final = ("incident.json", "events.parquet")
OWN_OUTPUT_DATA_DIR: Final = "data"
#: The first line of a ``--rejects`` file, and columns every event export (``ingest -o``, CSV or
#: JSON lines, Timesketch or not) has in its header or first object: a walk or glob never reads
#: such a file back.
REJECTS_HEADER: Final = "source,line,reason,excerpt"
EXPORT_MARKER_COLUMNS: Final = frozenset({"source", "line", "format", "kind", "ts_raw", "tz_assumed"})
#: Names a directory walk or glob treats as documentation, not logs.
DOCUMENTATION_RE: Final = re.compile(
    r"(?i)^(?:readme|licen[cs]e|notice|changelog|changes|copying|authors|contributing)(?:\.[\w.]+)?$"
    r"|\.(?:md|markdown|rst|adoc|ipynb|html?|pdf|png|jpe?g|svg)$"
)
#: In a directory walk, a file read by the generic fallback needs this share of its sample lines
#: to start with a timestamp; below it, it is more likely a document or a data file than a log.
DISCOVERED_GENERIC_MIN_SHARE: Final = 0.5
#: Decoded text looked at to recognize an alert file.
ALERT_HEAD_BYTES: Final = 64 * 1024
#: Lines of each log file parsed to find full timestamps for the year of year-less files.
YEAR_SAMPLE_LINES: Final = 64
#: Alert files up to this size are read once more for a year reference when no log file gives one.
ALERT_REFERENCE_MAX_BYTES: Final = 8 << 20


class UnreadableSource:
    """A path that could not be read: yields nothing; its accounting says why (``skipped_reason``).

    ``partial``: what was not read belongs to an input that was otherwise read (an archive stopped at
    its cap), so the run is partial.
    """

    def __init__(self, path: str, reason: str, *, partial: bool = False, by_rule: bool = False) -> None:
        self.name = path
        self._accounting = SourceAccounting(name=path, path=path, skipped_reason=reason, skipped_by_rule=by_rule)
        if partial:
            self._accounting.partial, self._accounting.partial_reason = True, reason

    def read(self) -> Iterator[pd.DataFrame]:
        return iter(())

    def accounting(self) -> list[SourceAccounting]:
        return [self._accounting]

    def rejects(self) -> list[Reject]:
        return []


@dataclass(frozen=True)
class SniffResult:
    """What ``pmtimeline sniff FILE`` shows."""

    format: str  # the format chosen ("none" when nothing fits)
    reason: str  # why it was chosen
    zone: str | None  # the zone naive timestamps are read in
    rows: pd.DataFrame  # the first events (event schema), at most 10; redacted unless config.redact is off


def is_own_output(path: str) -> bool:
    """Whether ``path`` names a file that pmtimeline itself writes."""
    name = os.path.basename(path)
    return name in OWN_OUTPUT_NAMES or name.startswith(OWN_OUTPUT_PREFIX)


def expand_inputs(inputs: Sequence[str], outputs: Sequence[str] = ()) -> tuple[list[str], list[UnreadableSource]]:
    """The files named by ``inputs`` (files, directories, globs), in order, each once; and the
    directories that could not be walked, plus the documentation files and pmtimeline's own
    outputs a walk passed over. ``outputs`` are the paths the run writes (``-o``, ``--rejects``):
    a walk or glob never reads them, nor any folder holding a build's outputs
    (:data:`OWN_OUTPUT_MARKER`).

    Raises:
        ConfigError: an input that is neither an existing path nor a glob matching something.
    """
    files: list[str] = []
    unreadable: list[UnreadableSource] = []
    own = _OwnOutputs(outputs)
    for item in inputs:
        if os.path.isdir(item):
            files.extend(_walk(item, unreadable, own))
        elif os.path.lexists(item):
            files.append(item)  # files, and special files or broken links that check_readable explains
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise ConfigError(f"no such file or directory: {escape_terminal(item, limit=300)} (matches nothing)")
            for match in matches:
                if own.holds(match):
                    unreadable.append(_own_output(match))
                elif os.path.isdir(match):
                    files.extend(_walk(match, unreadable, own))
                elif is_documentation(match):
                    unreadable.append(_documentation(match))
                elif not is_own_output(match):
                    files.append(match)
        else:
            raise ConfigError(f"no such file or directory: {escape_terminal(item, limit=300)}")
    seen: set[str] = set()
    unique: list[str] = []
    for path in files:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique, unreadable


class _OwnOutputs:
    """What a walk must not read back: the run's output paths, and folders holding a build's outputs."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self._paths = {os.path.realpath(path) for path in outputs}
        # Names first: a real path costs a system call per level, and a walk may meet 100,000 files.
        self._names = {os.path.basename(path.rstrip(os.sep)) for path in self._paths}

    def is_output(self, path: str) -> bool:
        """Whether ``path`` is one of the run's outputs (``-o``, ``--rejects``)."""
        return os.path.basename(os.path.normpath(path)) in self._names and os.path.realpath(path) in self._paths

    def holds(self, path: str) -> bool:
        """Whether a walk or glob skips ``path`` whole: a run's output, or an output folder of a build."""
        return self.is_output(path) or is_output_folder(path)


def is_output_folder(path: str) -> bool:
    """Whether ``path`` is a folder holding a build's outputs (:data:`OWN_OUTPUT_MARKER`)."""
    return all(os.path.isfile(os.path.join(path, name)) for name in OWN_OUTPUT_MARKER)


def _own_output(path: str) -> UnreadableSource:
    if os.path.isdir(path):
        return UnreadableSource(
            path, "pmtimeline's output folder: not read back as input (name its files to read it)", by_rule=True
        )
    return UnreadableSource(path, "this run's own output: not read back as input", by_rule=True)


def written_by_pmtimeline(first_line: str) -> str | None:
    """What pmtimeline output a file is, from its first line (a rejects file, an event export), or None."""
    if first_line == REJECTS_HEADER:
        return "a pmtimeline rejects file"
    keys: set[str] = set()
    if first_line.startswith("{"):
        with contextlib.suppress(ValueError, RecursionError):  # RecursionError: JSON nested too deep
            value = json.loads(first_line)
            keys = set(value) if isinstance(value, dict) else set()
    elif "," in first_line and '"' not in first_line:
        keys = set(first_line.split(","))
    return "a pmtimeline event export" if keys >= EXPORT_MARKER_COLUMNS else None


def _walk(root: str, unreadable: list[UnreadableSource], own: _OwnOutputs | None = None) -> list[str]:
    def failed(exc: OSError) -> None:
        where = exc.filename if isinstance(exc.filename, str) else root
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or type(exc).__name__
        unreadable.append(UnreadableSource(where, f"{escape_terminal(where, limit=300)}: {reason}; skipped"))

    own = own or _OwnOutputs(())
    found: list[str] = []
    for directory, subdirs, names in os.walk(root, onerror=failed):
        # The folder given may itself be an output folder (-o inside the logs' own folder): then
        # only its outputs are passed over, and its data folder.
        outputs_here = own.holds(directory)
        kept = []
        for name in sorted(d for d in subdirs if not d.startswith(".")):
            path = os.path.join(directory, name)
            if (outputs_here and name == OWN_OUTPUT_DATA_DIR) or own.holds(path):
                unreadable.append(_own_output(path))
            else:
                kept.append(name)
        subdirs[:] = kept
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name.startswith(".") or is_own_output(name):
                continue
            if own.is_output(path):
                unreadable.append(_own_output(path))
                continue
            if is_documentation(name):
                unreadable.append(_documentation(path))
            else:
                found.append(path)
    return found


def is_documentation(path: str) -> bool:
    """Whether a directory walk should treat ``path`` as documentation rather than a log."""
    return DOCUMENTATION_RE.search(os.path.basename(path)) is not None


def _documentation(path: str) -> UnreadableSource:
    return UnreadableSource(
        path, "documentation, not a log: passed over in a directory walk (name it to read it)", by_rule=True
    )


def _looks_like_log(fmt: LogFormat, lines: Sequence[str]) -> tuple[bool, str]:
    """For a file found by a walk: whether the generic fallback explains enough of its first lines."""
    if fmt.name != GENERIC_FORMAT:
        return True, ""
    sample = [line for line in lines if line.strip()]
    if not sample:
        return True, ""
    heads = int(fmt.parse(pd.Series(sample, dtype="string[pyarrow]"))["head"].astype(bool).sum())
    if heads >= DISCOVERED_GENERIC_MIN_SHARE * len(sample):
        return True, ""
    return False, (
        f"not recognized as a log: only {heads} of its first {len(sample)} lines start with a timestamp; "
        "passed over in a directory walk (name it, or use --format, to read it)"
    )


def open_inputs(inputs: Sequence[str], config: TimelineConfig) -> list[AccountedSource]:
    """One source per file named by ``inputs``, in order.

    Raises:
        ConfigError: an input matches nothing.
        UnknownFormatError: ``config.format_name`` names no log or alert format.
    """
    paths, unwalkable = expand_inputs(inputs, config.own_outputs)
    named = {os.path.realpath(item) for item in inputs if os.path.isfile(item)}
    formats = format_registry(config)
    forced_alert = config.format_name if config.format_name in ALERT_FORMATS else None
    if config.format_name and forced_alert is None:
        get_format(config.format_name, formats)  # fail fast, before reading anything
    budget = EventBudget(config.max_events)
    log_heads: dict[str, list[str]] = {}
    opened: list[UnreadableSource | tuple[str, str | None]] = []  # (path, alert format or None)
    for path in _with_archive_members(paths, config):
        if isinstance(path, UnreadableSource):
            opened.append(path)
            continue
        try:
            check_readable(path)
            head = head_lines(path, config, n=1 << 20, max_bytes=ALERT_HEAD_BYTES)
        except SourceError as exc:
            opened.append(UnreadableSource(path, str(exc)))
            continue
        written = written_by_pmtimeline(head[0]) if head else None
        if written is not None and os.path.realpath(path) not in named:
            opened.append(
                UnreadableSource(path, f"{written}: not read back as input (name it to read it)", by_rule=True)
            )
            continue
        alert = forced_alert or detect_alert_format("\n".join(head))
        if alert is None:
            log_heads[path] = head[:YEAR_SAMPLE_LINES]
        opened.append((path, alert))

    detected = _detect_formats(log_heads, formats, config)
    passed_over: dict[str, str] = {}
    if not config.format_name:
        for path, (fmt, _reason) in detected.items():
            if os.path.realpath(path) not in named:
                ok, why = _looks_like_log(fmt, log_heads[path])
                if not ok and isinstance(path, ArchiveMember):
                    why = why.replace("a directory walk (name it, or use --format, to read it)", "an archive")
                if not ok:
                    passed_over[path] = why
        for path in passed_over:
            del detected[path]
            del log_heads[path]
    alert_paths = [item[0] for item in opened if isinstance(item, tuple) and item[1] is not None]
    references = _year_references(log_heads, detected, config, alert_paths)
    sources: list[AccountedSource] = list(unwalkable)
    for item in opened:
        if isinstance(item, UnreadableSource):
            sources.append(item)
            continue
        path, alert = item
        if path in passed_over:
            sources.append(UnreadableSource(path, passed_over[path]))
        elif alert is not None:
            sources.append(AlertFileConnector(path, config, alert))
        else:
            connector = LogFileConnector(
                path,
                config,
                formats=formats,
                reference_year=references.get(path),
                budget=budget,
                detected=detected.get(path),
            )
            sources.append(connector)
    return sources


def _with_archive_members(paths: Sequence[str], config: TimelineConfig) -> Iterator[str | UnreadableSource]:
    """``paths``, with each archive replaced by its members (see :mod:`~pmtimeline.connectors.archives`),
    which are treated as files found by a directory walk; and what of an archive is not read."""
    for path in paths:
        kind = archive_kind(path)
        if kind is None:
            yield path
            continue
        try:
            listing = open_archive(path, kind, config)
        except SourceError as exc:
            yield UnreadableSource(path, str(exc))
            continue
        for member in listing.members:
            parts = member.member.replace("\\", "/").split("/")
            if any(part.startswith(".") and part not in (".", "..") for part in parts) or is_own_output(parts[-1]):
                continue  # hidden files and pmtimeline's outputs, as in a directory walk
            if is_documentation(parts[-1]):
                yield UnreadableSource(member, "documentation, not a log: passed over in an archive", by_rule=True)
                continue
            nested = archive_kind(member)
            if nested is not None:
                reason = f"a {nested} archive inside an archive: not read (extract it and name it)"
                yield UnreadableSource(member, reason)
                continue
            yield member  # even at an absolute or ``..`` path: it is read in memory, never extracted
        for name, reason in listing.skipped:
            yield UnreadableSource(name, reason)
        if not listing.members and not listing.skipped and listing.stop_reason is None:
            yield UnreadableSource(path, f"an empty {kind} archive: no file in it")
        if listing.stop_reason is not None:
            after = f"after {escape_terminal(listing.stop_after, limit=200)}" if listing.stop_after else "at its start"
            yield UnreadableSource(
                path, f"{_stop_words(listing.stop_reason)}: the archive was not read {after}", partial=True
            )


def _stop_words(reason: str) -> str:
    if reason == REJECT_SIZE_CAP:
        return SIZE_CAP_WORDS
    if reason == REJECT_TRUNCATED_ARCHIVE:
        return "the archive is truncated"
    return escape_terminal(reason.replace("_", " ", 1), limit=200)


def _detect_formats(
    heads: Mapping[str, list[str]], formats: Mapping[str, LogFormat], config: TimelineConfig
) -> dict[str, tuple[LogFormat, str]]:
    """The format of each log file, detected or forced (none where nothing fits)."""
    detected: dict[str, tuple[LogFormat, str]] = {}
    for path, lines in heads.items():
        try:
            if config.format_name:
                sample = [line for line in lines if line.strip()]
                fmt = get_format(config.format_name, formats).for_file(sample)
                learned = f"; {fmt.learned}" if fmt.learned else ""  # the generic reader's learned layout
                detected[path] = (fmt, f"forced with --format{learned}")
            else:
                detected[path] = detect_log_format(lines, formats)
        except UnknownFormatError:
            continue  # the connector says so in its accounting
    return detected


def _year_references(
    heads: Mapping[str, list[str]],
    detected: Mapping[str, tuple[LogFormat, str]],
    config: TimelineConfig,
    alert_paths: Sequence[str] = (),
) -> dict[str, pd.Timestamp]:
    """For each year-less log file: the median of the full timestamps in the heads of the other log
    files, or else of the alert times of the run's (small) alert files.

    The heads of the files of one format are parsed together, as one chunk (a parser reads lines
    independently of the chunk they come in), and each file's median leaves its own times out of
    the pooled, sorted times by binary search: the cost does not grow with the square of the files.
    """
    if config.year is not None or reference_from_window(config.start, config.end) is not None:
        return {}
    by_format: dict[int, list[str]] = {}
    for path, (fmt, _reason) in detected.items():
        by_format.setdefault(id(fmt), []).append(path)
    full: dict[str, np.ndarray] = {}  # naive UTC nanoseconds of each file's full timestamps
    year_less: list[str] = []
    for paths in by_format.values():
        fmt = detected[paths[0]][0]
        samples = [[line for line in heads[path] if line.strip()] for path in paths]
        try:
            parsed = fmt.parse(pd.Series([line for sample in samples for line in sample], dtype="string[pyarrow]"))
            found = _full_times(parsed)
        # Any failure here only means these files give no reference; their connectors report it.
        except Exception:
            found = None
        if found is None and len(paths) > 1:  # one file's lines may fail the others: each alone
            for path, sample in zip(paths, samples, strict=True):
                try:
                    one = _full_times(fmt.parse(pd.Series(sample, dtype="string[pyarrow]")))
                except Exception:
                    continue
                if one is not None:
                    full[path] = one[0]
                    if bool(one[1].any()):
                        year_less.append(path)
            continue
        if found is None:
            continue
        times, undated, owner = found
        bounds = np.cumsum([0] + [len(sample) for sample in samples])
        for i, path in enumerate(paths):
            full[path] = times[(owner >= bounds[i]) & (owner < bounds[i + 1])]
            if bool(undated[bounds[i] : bounds[i + 1]].any()):
                year_less.append(path)
    references: dict[str, pd.Timestamp] = {}
    if not year_less:
        return references
    pool = np.sort(np.concatenate(list(full.values()))) if full else np.zeros(0, dtype=np.int64)
    alert_times: list[pd.Timestamp] | None = None
    for path in year_less:
        reference = _median_without(pool, np.sort(full.get(path, np.zeros(0, dtype=np.int64))))
        if reference is None and alert_paths:
            if alert_times is None:
                alert_times = _alert_times(alert_paths, config)
            reference = reference_from_times(alert_times)
        if reference is not None:
            references[path] = reference
    return references


def _full_times(parsed: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The full timestamps of parsed head lines (naive UTC nanoseconds), which lines are heads without
    a year, and the line of each timestamp; None when the parser gave no ``head`` column."""
    if "head" not in parsed:
        return None
    ok = parsed["head"].astype(bool).to_numpy()
    if "reject_reason" in parsed:
        ok = ok & parsed["reject_reason"].isna().to_numpy()
    n = len(ok)
    missing = parsed["year_missing"].astype(bool).to_numpy() if "year_missing" in parsed else np.zeros(n, dtype=bool)
    utc = parsed["ts_utc"] if "ts_utc" in parsed else pd.Series(pd.NaT, index=parsed.index, dtype="datetime64[ns, UTC]")
    naive = (
        parsed["ts_naive"] if "ts_naive" in parsed else pd.Series(pd.NaT, index=parsed.index, dtype="datetime64[ns]")
    )
    has_utc = utc.notna().to_numpy()
    from_utc = ok & has_utc
    from_naive = ok & ~has_utc & naive.notna().to_numpy() & ~missing
    utc_ns = pd.to_datetime(utc[from_utc], utc=True).dt.tz_localize(None).astype("datetime64[ns]").to_numpy()
    naive_ns = pd.to_datetime(naive[from_naive]).astype("datetime64[ns]").to_numpy()
    times = np.concatenate([utc_ns.view(np.int64), naive_ns.view(np.int64)])
    owner = np.concatenate([np.flatnonzero(from_utc), np.flatnonzero(from_naive)])
    return times, ok & missing & ~has_utc, owner


def _median_without(pool: np.ndarray, own: np.ndarray) -> pd.Timestamp | None:
    """The median (as :func:`reference_from_times` takes it) of the sorted times ``pool`` less the
    sorted times ``own`` (a part of them), without copying the pool: each order statistic by binary
    search on how many pooled times, less own ones, lie at or below a pooled time."""
    count = len(pool) - len(own)
    if count <= 0:
        return None

    def kth(k: int) -> int:
        lo, hi = 0, len(pool) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            value = pool[mid]
            if np.searchsorted(pool, value, "right") - np.searchsorted(own, value, "right") >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        return int(pool[lo])

    middle = [kth(count // 2)] if count % 2 else [kth(count // 2 - 1), kth(count // 2)]
    return reference_from_times(pd.Timestamp(v) for v in middle)


def _alert_times(paths: Sequence[str], config: TimelineConfig) -> list[pd.Timestamp]:
    """Event times of the run's alert files no larger than :data:`ALERT_REFERENCE_MAX_BYTES`."""
    times: list[pd.Timestamp] = []
    for path in paths:
        try:
            size = path.size if isinstance(path, ArchiveMember) else os.path.getsize(path)
            if size > ALERT_REFERENCE_MAX_BYTES:
                continue
            for frame in AlertFileConnector(path, config).read():
                times.extend(pd.Timestamp(t) for t in frame["timestamp"].dropna().head(YEAR_SAMPLE_LINES))
        except (OSError, SourceError):
            continue  # its own connector reports the problem when the run reads it
    return times


def sniff(path: str, config: TimelineConfig) -> SniffResult:
    """The format chosen for ``path``, why, its zone and its first events (at most 10).

    The events are redacted and pseudonymized as ``build``'s shared outputs are (a sniff gets pasted
    into tickets and chats), unless ``config.redact`` is off.

    ``path`` may name a member of an archive as ``bundle.tgz!var/log/app.log``.

    Raises:
        SourceError: the file cannot be read; ``path`` is an archive (the message names a member).
        UnknownFormatError: a forced format name is not registered.
    """
    path = _archive_member(path, config) or path
    check_readable(path)
    kind = archive_kind(path)
    if kind is not None:
        members = open_archive(path, kind, config).members
        example = f"; sniff one of them as '{escape_terminal(members[0], limit=300)}'" if members else ""
        raise SourceError(
            f"{escape_terminal(path, limit=300)} is a {kind} archive: `pmtimeline build` reads each of its "
            f"files as a source{example}"
        )
    head = head_lines(path, config, n=1 << 20, max_bytes=ALERT_HEAD_BYTES)
    forced_alert = config.format_name if config.format_name in ALERT_FORMATS else None
    alert = forced_alert or (None if config.format_name else detect_alert_format("\n".join(head)))
    if alert is not None:
        connector = AlertFileConnector(path, config, alert)
        try:
            frames = list(connector.read())
        except UnknownFormatError as exc:
            raise SourceError(str(exc)) from exc
        rows = pd.concat(frames, ignore_index=True) if frames else conform_events(pd.DataFrame())
        acc = connector.accounting()[0]
        reason = acc.format_reason or ALERT_FORMATS[alert]
        return SniffResult(alert, reason, acc.time_zone, _shared(rows.head(10), config))
    fmt, reason, zone, rows = LogFileConnector(path, config).preview(10)
    return SniffResult(fmt.name if fmt is not None else "none", reason, zone, _shared(rows, config))


def _archive_member(path: str, config: TimelineConfig) -> ArchiveMember | None:
    """The member that ``path`` names as ``<archive>!<member path>`` (None: ``path`` names no member).

    Raises:
        SourceError: the archive holds no such member.
    """
    if os.path.lexists(path):
        return None
    cut = path.find("!")
    while cut > 0:
        archive, name = path[:cut], path[cut + 1 :]
        kind = archive_kind(archive) if os.path.isfile(archive) else None
        if kind is not None:
            listing = open_archive(archive, kind, config)
            for member in listing.members:
                if member.member == name:
                    return member
            raise SourceError(f"{escape_terminal(archive, limit=300)} holds no file {escape_terminal(name, limit=300)}")
        cut = path.find("!", cut + 1)
    return None


def _shared(rows: pd.DataFrame, config: TimelineConfig) -> pd.DataFrame:
    """``rows`` as a shared output shows them: redacted with a key of their own, unless redaction is off."""
    from pmtimeline.redact import Redactor

    return Redactor().redact_events(rows) if config.redact else rows
