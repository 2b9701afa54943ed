"""The public entry points that wire connectors to the library: what the CLI and notebooks call.

``load(...)`` accepts files, directories, globs, connector objects, Elasticsearch settings and
in-memory DataFrames, and returns an analyzed :class:`~pmtimeline.timeline.Timeline`.
``open_sources(...)`` turns the same inputs into connector objects, for callers that want to drive
:mod:`pmtimeline.pipeline` themselves; ``make_config(...)`` builds the configuration from the same
keyword options (so a connector built by hand can share the window of a run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmtimeline.aggregate import span_config
from pmtimeline.config import TimelineConfig, check_source_globs, check_zone, input_roots, match_source, parse_time
from pmtimeline.connectors.elasticsearch import ElasticsearchConnector, EsSettings
from pmtimeline.connectors.inputs import UnreadableSource, open_inputs
from pmtimeline.connectors.parallel import plan_sources
from pmtimeline.errors import ConfigError
from pmtimeline.pipeline import AnalysisResult, ProgressCallback, build, ingest, prepare_chunk
from pmtimeline.schema import conform_events, normalize_levels
from pmtimeline.sources import Reject, Source, SourceAccounting
from pmtimeline.time_inference import (
    TimeEvidence,
    account_times,
    apply_estimates,
    estimate_offsets,
    inference_dict,
    needs_rerun,
)
from pmtimeline.timeline import Timeline

#: A time given by a user: ISO 8601 text, or a datetime/Timestamp (naive = in ``tz``).
TimeLike = str | dt.datetime | pd.Timestamp
#: Zones (offsets, services) of single sources: ``{"ledger/*": "Europe/Amsterdam"}``, ``(glob, value)``
#: pairs, or ``"GLOB=VALUE"`` strings. A glob matches a source's path as given, its path relative to
#: the input it was found under, or its file name (:func:`pmtimeline.config.match_source`).
SourceZones = Mapping[str, str] | Sequence[tuple[str, str]] | Sequence[str] | str

#: What :func:`load` reads: a path (file, directory, glob), an in-memory frame, Elasticsearch
#: settings, or any connector object (anything with ``name`` and ``read()``).
Input = str | os.PathLike[str] | pd.DataFrame | EsSettings | Source


class DataFrameSource:
    """An in-memory DataFrame as a source, read like a log file would be.

    Unlike the bare :class:`~pmtimeline.connectors.base.FrameSource`, naive timestamps are read in
    the run's zone (``tz``), raw level names (``"ERROR"``, ``"warn"``) are normalized, rows with an
    HTTP status are requests, and events outside the window are dropped and counted.
    """

    def __init__(self, frame: pd.DataFrame, config: TimelineConfig, name: str = "frame") -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError("frame must be a pandas DataFrame")
        missing = [c for c in ("timestamp", "message") if c not in frame.columns]
        if missing:
            raise ConfigError(f"DataFrame input {name!r} lacks column(s) {', '.join(missing)}")
        self.name = name
        self._frame = frame
        self._config = config
        self._accounting = SourceAccounting(name=name, format="frame", time_zone=config.tz)

    def read(self) -> Iterator[pd.DataFrame]:
        frame = self._frame.reset_index(drop=True)
        n = len(frame)
        stamps = _frame_timestamps(frame["timestamp"], self._config.tz, self.name)
        inside = stamps.notna()
        if self._config.start is not None:
            inside &= stamps >= self._config.start
        if self._config.end is not None:
            inside &= stamps < self._config.end
        keep = inside.to_numpy(dtype=bool)
        frame = frame.loc[keep].assign(timestamp=stamps[keep])
        if "level" in frame.columns:
            frame["level"] = normalize_levels(frame["level"])
        if "source" not in frame.columns:
            frame["source"] = self.name
        frame["source"] = frame["source"].fillna(self.name)
        if "kind" not in frame.columns:
            is_request = frame["http_status"].notna() if "http_status" in frame.columns else False
            frame["kind"] = np.where(is_request, "request", "log")
        frame["kind"] = frame["kind"].fillna("log")
        if "line" not in frame.columns:
            frame["line"] = np.flatnonzero(keep) + 1  # the row number: what `source:line` cites
        acc = self._accounting
        acc.lines_read = n
        acc.event_lines = acc.events = int(keep.sum())
        acc.outside_window = int(stamps.notna().sum()) - acc.events
        missing_time = int(stamps.isna().sum())
        acc.rejected = Counter({"no_timestamp": missing_time} if missing_time else {})
        yield conform_events(frame)

    def accounting(self) -> list[SourceAccounting]:
        return [self._accounting]

    def rejects(self) -> list[Reject]:
        return []


def _frame_timestamps(values: pd.Series, tz: str, name: str) -> pd.Series:
    """UTC timestamps of a frame column; naive values are read in ``tz``; unparseable ones are null."""
    parsed: pd.Series = values
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        except (TypeError, ValueError):
            # Aware and naive values mixed: parse as UTC-aware (naive ones are then read as UTC).
            try:
                parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"DataFrame input {name!r}: the timestamp column is not times") from exc
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(check_zone(tz), ambiguous="NaT", nonexistent="NaT")
    utc: pd.Series = parsed.dt.tz_convert("UTC")
    return utc


def open_sources(inputs: Input | Iterable[Input], config: TimelineConfig) -> list[Source]:
    """Connector objects for a mix of paths (files, directories, globs), frames, Elasticsearch
    settings and connector objects, in the order given.

    The connectors read with ``config`` plus the folders of the path inputs
    (:attr:`TimelineConfig.input_roots`), so ``--source-tz``/``--service`` globs match paths
    relative to them. The pipeline applies ``--offset`` with the config it is given: give it
    :func:`with_inputs` ``(config, inputs)`` (an offset glob it would miss is refused here).

    Raises:
        ConfigError: a path that does not exist or a glob that matches nothing; a ``source_tz``,
            ``source_offsets`` or ``source_services`` glob that matches no source; an input of
            another type; no input at all.
    """
    items: list[Any]
    if isinstance(inputs, str | os.PathLike | pd.DataFrame | EsSettings | Source):
        items = [inputs]
    elif isinstance(inputs, Iterable):
        items = list(inputs)
    else:
        raise ConfigError(f"cannot read {type(inputs).__name__}: give paths, DataFrames or connector objects")
    if not items:
        raise ConfigError("no inputs: give files, directories, globs, DataFrames or connector objects")
    frames = sum(isinstance(item, pd.DataFrame) for item in items)
    given, config = config, with_inputs(config, items)
    sources: list[Source] = []
    paths: list[str] = []

    def flush() -> None:
        if paths:
            sources.extend(open_inputs(list(paths), config))
            paths.clear()

    for item in items:
        if isinstance(item, str | os.PathLike):
            paths.append(os.fspath(item))
            continue
        flush()
        if isinstance(item, pd.DataFrame):
            sources.append(DataFrameSource(item, config, name=f"frame{len(sources)}" if frames > 1 else "frame"))
        elif isinstance(item, EsSettings):
            sources.append(ElasticsearchConnector(item, config))
        elif isinstance(item, Source):
            sources.append(item)
        else:
            raise ConfigError(f"cannot read {type(item).__name__}: give paths, DataFrames or connector objects")
    flush()
    names = [source.name for source in sources if not isinstance(source, UnreadableSource)]
    check_source_globs(config, names)
    # The pipeline applies --offset with the config it is given: refuse a glob it would miss there.
    for pattern, offset in given.source_offsets if config is not given else ():
        if not any(match_source([(pattern, offset)], name, given.input_roots) for name in names):
            raise ConfigError(
                f"--offset {pattern!r} matches sources only relative to their input: give the pipeline "
                "pmtimeline.api.with_inputs(config, inputs), as load() does, so that it applies"
            )
    return sources


def with_inputs(config: TimelineConfig, inputs: Input | Sequence[Input]) -> TimelineConfig:
    """``config`` with the folders of the path inputs added to its ``input_roots``, so that source
    globs also match paths relative to them (what :func:`load` and the CLI do)."""
    items: Sequence[Any] = [inputs] if isinstance(inputs, str | os.PathLike) else []
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        items = inputs
    paths = [item for item in items if isinstance(item, str | os.PathLike)]
    roots = tuple(root for root in input_roots(paths) if root not in config.input_roots)
    return dataclasses.replace(config, input_roots=config.input_roots + roots) if roots else config


def planned_sources(sources: Sequence[Source], config: TimelineConfig) -> list[Source]:
    """``sources`` planned as ``pmtimeline build`` plans them: log files parsed on ``config.workers``
    processes (which also run the pipeline's :func:`~pmtimeline.pipeline.prepare_chunk`), and files
    or byte ranges wholly outside the window skipped; the same events and accounting as a
    sequential read."""
    return plan_sources(sources, config, prepare=functools.partial(prepare_chunk, config=config))


def make_config(
    config: TimelineConfig | None = None,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    **options: Any,
) -> TimelineConfig:
    """A :class:`TimelineConfig` from keyword options (any of its fields), on top of ``config``.

    Friendlier forms are accepted where a notebook wants them: ``start``/``end`` and phase overrides
    as ISO 8601 text (:func:`~pmtimeline.config.parse_time`) or datetimes (a time without zone is
    read in ``tz``), ``source_tz`` as a dict ``{"ledger/*": "Europe/Amsterdam"}`` or ``"GLOB=ZONE"``
    strings, ``source_offsets`` (``{"hosts/*": "-5min"}``) and ``source_services``
    (``{"edge/*": "storefront"}``) likewise.

    Raises:
        ConfigError: an unknown option (with the closest known name), or an invalid value.
    """
    base = config or TimelineConfig()
    known = [f.name for f in dataclasses.fields(TimelineConfig)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        hints = [difflib.get_close_matches(name, known, n=1) for name in unknown]
        shown = ", ".join(
            f"{name} (did you mean {hint[0]}?)" if hint else name for name, hint in zip(unknown, hints, strict=True)
        )
        raise ConfigError(f"unknown option(s): {shown}")
    # None keeps the base value, so `load(..., tz=None)` means "the default".
    changes: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    tz = changes.get("tz", base.tz)
    check_zone(tz)
    if start is not None:
        changes["start"] = parse_time(start, tz, "--start")
    if end is not None:
        changes["end"] = parse_time(end, tz, "--end")
    globs = (("source_tz", "--source-tz", "ZONE"), ("source_offsets", "--offset", "DURATION"))
    for name, option, what in (*globs, ("source_services", "--service", "NAME")):
        if name in changes:
            changes[name] = _glob_pairs(changes[name], option, what)
    if "phase_overrides" in changes:
        changes["phase_overrides"] = {
            name: parse_time(value, tz, f"--{name}") for name, value in dict(changes["phase_overrides"]).items()
        }
    try:
        return dataclasses.replace(base, **changes) if changes else base
    except TypeError as exc:  # e.g. a string where a number belongs, caught by a comparison
        raise ConfigError(f"invalid option value: {exc}") from exc


def load(
    inputs: Input | Sequence[Input],
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    tz: str | None = None,
    source_tz: SourceZones | None = None,
    title: str | None = None,
    config: TimelineConfig | None = None,
    keep_events: bool = True,
    progress: bool | ProgressCallback = False,
    **options: Any,
) -> Timeline:
    """Read and analyze an outage window; returns a :class:`Timeline`.

    Args:
        inputs: files, directories (recursive), globs, DataFrames, :class:`EsSettings` or connector
            objects (e.g. an ``ElasticsearchConnector``), alone or in a list.
        start, end: the window ``[start, end)`` (ISO 8601 or datetime; a time without zone is read
            in ``tz``). None reads everything.
        tz: zone of timestamps written without one ("UTC" by default).
        source_tz: zones of single sources, ``{"ledger/*": "Europe/Amsterdam"}``: a glob matches a
            source's path as given, relative to the input it was found under, or its file name;
            one that matches no source is an error. ``source_offsets`` and ``source_services``
            (in ``options``) match the same way.
        title: the incident title.
        config: a base configuration; ``tz``, ``source_tz``, ``title`` and ``options`` (any other
            :class:`TimelineConfig` field, e.g. ``bucket="30s"``, ``slo=99.9``) override it.
        keep_events: keep the full event table (``Timeline.events``); otherwise only the notable
            events are kept, for windows too large for memory: a bounded set (changes, alerts, the
            first and last warnings and errors of every minute, service and source, the first of
            every error template, a sample), while the counts stay exact (``Timeline.aggregates``).
        progress: show a progress bar (``tqdm.auto``: a widget in Jupyter), or a callback
            ``(source, events so far, events in chunk)``.

    Raises:
        ConfigError: a missing path, an unknown option, an invalid value.
        SourceError: no events could be read from any input.

    Example:
        >>> tl = pmtimeline.load("sample_logs", source_tz={"*ledger.log": "Europe/Amsterdam"})
        >>> tl.incident.phases["onset"]
    """
    cfg = make_config(config, start=start, end=end, tz=tz, source_tz=source_tz, title=title, **options)
    cfg = with_inputs(cfg, inputs)
    callback, close = _progress(progress)

    def run(run_config: TimelineConfig, on_chunk: Callable[[pd.DataFrame], None]) -> AnalysisResult:
        sources = planned_sources(open_sources(inputs, run_config), run_config)
        return build(sources, run_config, keep_events=keep_events, on_chunk=on_chunk, progress=callback)

    try:
        result, cfg = build_with_time_inference(run, cfg)
    finally:
        close()
    return Timeline(
        incident=result.incident,
        aggregates=result.aggregates,
        config=span_config(cfg, result.aggregates),
        accounting=tuple(result.sources),
        rejected=tuple(result.rejects),
        events_frame=result.events,
    )


def build_with_time_inference(
    run: Callable[[TimelineConfig, Callable[[pd.DataFrame], None]], AnalysisResult], config: TimelineConfig
) -> tuple[AnalysisResult, TimelineConfig]:
    """Run a build, find zone and clock-skew offsets between its sources from the evidence they share
    (:mod:`pmtimeline.time_inference`), and with ``config.auto_time`` run it again with them applied.

    ``run(config, on_chunk)`` builds from freshly opened sources and gives every chunk to
    ``on_chunk``. Returns the result (its incident's ``time_inference`` set, its sources' time
    accounting filled in) and the config it was built with (the applied one with ``auto_time``).
    A second run costs what the first did: the sources are read again.
    """
    evidence = TimeEvidence()
    result = run(config, evidence.add)
    estimates = estimate_offsets(evidence, config)
    found: tuple[tuple[str, str], ...] = ()
    if config.auto_time and needs_rerun(estimates):
        applied, estimates = apply_estimates(config, estimates)
        found = applied.source_tz[: len(applied.source_tz) - len(config.source_tz)]
        evidence = TimeEvidence()
        result = run(applied, evidence.add)
        config = applied
    account_times(result.sources, evidence, config, found=found)
    result.incident = dataclasses.replace(
        result.incident, time_inference=inference_dict(estimates, auto_time=config.auto_time)
    )
    return result, config


def read_events(
    inputs: Input | Sequence[Input],
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    config: TimelineConfig | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Only the normalized, time-ordered event table (what ``pmtimeline ingest`` writes)."""
    cfg = with_inputs(make_config(config, start=start, end=end, **options), inputs)
    return ingest(planned_sources(open_sources(inputs, cfg), cfg), cfg).events


def open_outputs(outdir: str | os.PathLike[str], config: TimelineConfig | None = None) -> Timeline:
    """Reopen a saved output directory (``pmtimeline build -o OUTDIR``) without reading the logs."""
    return Timeline.open(Path(outdir), config)


def _glob_pairs(value: SourceZones, option: str, what: str) -> tuple[tuple[str, str], ...]:
    """``source_tz``, ``source_offsets`` or ``source_services`` as ``(glob, value)`` pairs, from a
    dict, pairs, or ``"GLOB=VALUE"`` strings (the last ``=`` splits them)."""
    items: Iterable[Any] = value.items() if isinstance(value, Mapping) else [value] if isinstance(value, str) else value
    pairs: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            glob, sep, zone = item.rpartition("=")
            if not sep or not glob or not zone:
                raise ConfigError(f"{option} takes GLOB={what}, got {item!r}")
            pairs.append((glob, zone))
        elif isinstance(item, tuple | list) and len(item) == 2:
            pairs.append((str(item[0]), str(item[1])))
        else:
            raise ConfigError(f"{option} takes {{glob: {what.lower()}}} or GLOB={what} strings, got {item!r}")
    return tuple(pairs)


def _progress(progress: bool | ProgressCallback) -> tuple[ProgressCallback | None, Any]:
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    with warnings.catch_warnings():
        # Without ipywidgets, tqdm.auto falls back to a text bar and warns about it; the bar is enough.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    bar = tqdm(unit=" events", desc="reading", mininterval=0.5)

    def update(source: str, events: int, chunk: int) -> None:
        bar.set_postfix_str(os.path.basename(source)[-40:], refresh=False)
        bar.update(chunk)

    return update, bar.close
