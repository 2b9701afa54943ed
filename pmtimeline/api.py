"""The public entry points that wire connectors to the library: what the CLI and notebooks call.

``load(...)`` accepts files, directories, globs, connector objects and in-memory DataFrames, and
returns an analyzed :class:`~pmtimeline.timeline.Timeline`. ``open_sources(...)`` turns the same
inputs into connector objects, for callers that want to drive :mod:`pmtimeline.pipeline` themselves.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pmtimeline.config import TimelineConfig, parse_time
from pmtimeline.connectors.base import FrameSource
from pmtimeline.connectors.inputs import open_inputs
from pmtimeline.errors import ConfigError
from pmtimeline.pipeline import ProgressCallback, build, ingest
from pmtimeline.sources import Source
from pmtimeline.timeline import Timeline

Input = str | os.PathLike[str] | pd.DataFrame | Source


def open_sources(inputs: Input | Iterable[Input], config: TimelineConfig) -> list[Source]:
    """Connector objects for a mix of paths (files, directories, globs), connectors and frames."""
    items: list[Any]
    if isinstance(inputs, str | os.PathLike | pd.DataFrame | Source):
        items = [inputs]
    else:
        items = list(inputs)
    sources: list[Source] = []
    paths: list[str] = []

    def flush() -> None:
        if paths:
            sources.extend(open_inputs(list(paths), config))
            paths.clear()

    for i, item in enumerate(items):
        if isinstance(item, pd.DataFrame):
            flush()
            sources.append(FrameSource(item, name=f"frame{i}" if len(items) > 1 else "frame"))
        elif isinstance(item, str | os.PathLike):
            paths.append(os.fspath(item))
        elif isinstance(item, Source):
            flush()
            sources.append(item)
        else:
            raise ConfigError(f"cannot read {type(item).__name__}: give paths, DataFrames or connector objects")
    flush()
    return sources


def make_config(
    config: TimelineConfig | None = None,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    **options: Any,
) -> TimelineConfig:
    """A :class:`TimelineConfig` from keyword options; ``start``/``end`` may be ISO 8601 text
    (a time without zone is read in ``tz``)."""
    base = config or TimelineConfig()
    tz = options.get("tz", base.tz)
    changes: dict[str, Any] = dict(options)
    if start is not None:
        changes["start"] = parse_time(start, tz) if isinstance(start, str) else pd.Timestamp(start).tz_convert("UTC")
    if end is not None:
        changes["end"] = parse_time(end, tz) if isinstance(end, str) else pd.Timestamp(end).tz_convert("UTC")
    unknown = set(changes) - {f.name for f in dataclasses.fields(TimelineConfig)}
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(base, **changes) if changes else base


def load(
    inputs: Input | Sequence[Input],
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    config: TimelineConfig | None = None,
    keep_events: bool = True,
    progress: bool | ProgressCallback = False,
    **options: Any,
) -> Timeline:
    """Read and analyze an outage window; returns a :class:`Timeline`.

    Args:
        inputs: files, directories (recursive), globs, connector objects or DataFrames.
        start, end: the window (ISO 8601; a time without zone is read in ``tz``).
        config: a base configuration; ``options`` (any :class:`TimelineConfig` field, e.g.
            ``tz="Europe/Berlin"``, ``title="Payments outage"``) override it.
        keep_events: keep the full event table (``Timeline.events``); otherwise only the notable
            events are kept, for windows too large for memory.
        progress: show a progress bar (tqdm, notebook-aware), or a callback.

    Example:
        >>> tl = pmtimeline.load("sample_logs", source_tz=(("*ledger*", "Europe/Amsterdam"),))
        >>> tl.incident.phases["onset"]
    """
    cfg = make_config(config, start=start, end=end, **options)
    sources = open_sources(inputs, cfg)
    callback, close = _progress(progress)
    try:
        result = build(sources, cfg, keep_events=keep_events, progress=callback)
    finally:
        close()
    return Timeline(
        incident=result.incident,
        aggregates=result.aggregates,
        config=cfg,
        accounting=tuple(result.sources),
        rejected=tuple(result.rejects),
        events_frame=result.events,
    )


def read_events(
    inputs: Input | Sequence[Input],
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    config: TimelineConfig | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Only the normalized, time-ordered event table (what ``pmtimeline ingest`` writes)."""
    cfg = make_config(config, start=start, end=end, **options)
    return ingest(open_sources(inputs, cfg), cfg).events


def open_outputs(outdir: str | os.PathLike[str], config: TimelineConfig | None = None) -> Timeline:
    """Reopen a saved output directory (``pmtimeline build -o OUTDIR``) without reading the logs."""
    return Timeline.open(Path(outdir), config)


def _progress(progress: bool | ProgressCallback) -> tuple[ProgressCallback | None, Any]:
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(unit=" events", desc="reading")

    def update(source: str, events: int, chunk: int) -> None:
        bar.set_postfix_str(os.path.basename(source)[-40:], refresh=False)
        bar.update(chunk)

    return update, bar.close
