"""The one orchestrator: sources -> event chunks -> aggregates -> incident.

Everything streams: each source yields chunks, every chunk passes through the same pure stages
(:func:`prepare_chunk`), and the analysis works from per-bucket aggregates plus the notable events
(:class:`~pmtimeline.aggregate.Aggregator`), so memory does not grow with the number of ordinary
events. Keeping the full event table is optional (``keep_events``), for ``ingest``, notebooks and
``events.parquet``; a caller that writes events itself passes ``on_chunk`` instead.

Nothing here writes files: the CLI and :meth:`pmtimeline.timeline.Timeline.save` do.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from pmtimeline.aggregate import Aggregates, Aggregator
from pmtimeline.analysis import analyze
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig, match_source
from pmtimeline.errors import NoEventsError, PmtimelineError, SourceError
from pmtimeline.incident import Incident
from pmtimeline.schema import EVENT_COLUMNS, EVENT_DTYPES, STRING, conform_events, empty_events, validate_events
from pmtimeline.sources import AccountedSource, CountingSource, Reject, Source, SourceAccounting

#: Called after each chunk with (source name, events so far, lines so far); used for progress bars.
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class IngestResult:
    """The event table of a run (time-ordered), with the accounting of every source."""

    events: pd.DataFrame
    sources: list[SourceAccounting]
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0
    event_count: int = 0  # events read (also when they were not kept in ``events``)

    @property
    def lines_read(self) -> int:
        return sum(s.lines_read for s in self.sources)

    @property
    def any_rejected(self) -> bool:
        return any(s.rejected_total for s in self.sources)

    @property
    def any_partial(self) -> bool:
        return any(s.partial for s in self.sources)


@dataclass
class AnalysisResult:
    """Everything a build produces: the incident, the aggregates it came from, the accounting, and
    (when kept) the full event table."""

    incident: Incident
    aggregates: Aggregates
    sources: list[SourceAccounting]
    rejects: list[Reject]
    events: pd.DataFrame | None = None
    seconds: float = 0.0


def prepare_chunk(chunk: pd.DataFrame, config: TimelineConfig) -> pd.DataFrame:
    """The stages every chunk passes through after its connector: schema check, clock-skew
    correction, change recognition."""
    return (
        (chunk if _conforms(chunk) else conform_events(chunk))
        .pipe(validate_events)
        .pipe(correct_clock_skew, config.source_offsets, config.input_roots)
        .pipe(classify_changes, config.change_vocabulary)
    )


def _conforms(chunk: pd.DataFrame) -> bool:
    """Whether ``chunk`` already is what :func:`conform_events` makes of it (the log connectors give
    such chunks): conforming it again rebuilt every column, a fixed cost per chunk paid per small file."""
    index = chunk.index
    return (
        tuple(chunk.columns) == EVENT_COLUMNS
        and isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and all(str(chunk[name].dtype) == str(dtype) for name, dtype in EVENT_DTYPES.items())
    )


def correct_clock_skew(
    events: pd.DataFrame, offsets: Sequence[tuple[str, str]], roots: Sequence[str] = ()
) -> pd.DataFrame:
    """Shift the timestamps of sources whose path matches a glob by its duration (``--offset``).

    The first matching glob wins, matched as ``--source-tz`` is (:func:`~pmtimeline.config.match_source`,
    with ``roots`` the run's ``input_roots``); other sources are unchanged.
    """
    if not offsets or events.empty:
        return events
    shift = pd.Series(pd.Timedelta(0), index=events.index)
    for source in events["source"].dropna().unique():
        offset = match_source(offsets, str(source), roots)
        if offset is not None:
            shift[events["source"] == source] = pd.Timedelta(offset)
    if not bool((shift != pd.Timedelta(0)).any()):
        return events
    return events.assign(timestamp=events["timestamp"] + shift)


def sort_events(events: pd.DataFrame) -> pd.DataFrame:
    """Stable time order: by timestamp, then source, then line (so equal times keep file order)."""
    return events.sort_values(["timestamp", "source", "line"], kind="stable", na_position="last").reset_index(drop=True)


def _rejects_of(source: Source) -> list[Reject]:
    return source.rejects() if isinstance(source, AccountedSource) else []


def _uses_pushdown(source: Source) -> bool:
    if not isinstance(source, CountingSource):
        return False
    decide = getattr(source, "pushdown", None)
    return bool(decide()) if callable(decide) else True


class CrossSourceDuplicates:
    """Events read from two sources of one run (a log file and the cluster it ships to) count once.

    An event is a duplicate when an event with the same time, message, host and service was already
    read from *another* source; identical events within one source are all kept (5,000 identical
    failed logins are the signal). Active only when a run reads a cluster (a counting source) beside
    other sources, which is where the same event arrives twice; fingerprints are 8-byte hashes kept
    per chunk, so the cost is bounded by what that run reads.
    """

    _KEY: Final = ["timestamp", "message", "host", "service"]

    def __init__(self) -> None:
        self._blocks: list[tuple[int, np.ndarray]] = []  # (owner, sorted fingerprints)
        self.dropped: dict[int, int] = {}

    def drop(self, chunk: pd.DataFrame, owner: int) -> pd.DataFrame:
        """``chunk`` without the events already read from another source."""
        key = (
            chunk[self._KEY]
            .astype({"message": STRING, "host": STRING, "service": STRING})
            .fillna({"message": "", "host": "", "service": ""})
        )
        hashes = pd.util.hash_pandas_object(key, index=False).to_numpy(dtype=np.uint64)
        dup = np.zeros(len(hashes), dtype=bool)
        for block_owner, block in self._blocks:
            if block_owner == owner or not len(block):
                continue
            pos = np.minimum(np.searchsorted(block, hashes), len(block) - 1)
            dup |= block[pos] == hashes
        self._blocks.append((owner, np.unique(hashes[~dup])))
        if not dup.any():
            return chunk
        self.dropped[owner] = self.dropped.get(owner, 0) + int(dup.sum())
        return chunk.loc[~dup].reset_index(drop=True)


def merges_duplicates(sources: Sequence[Source]) -> CrossSourceDuplicates | None:
    """A duplicate merger when the run reads a cluster beside other sources, else None."""
    if len(sources) > 1 and any(isinstance(s, CountingSource) for s in sources):
        return CrossSourceDuplicates()
    return None


def stream_chunks(
    sources: Iterable[Source],
    config: TimelineConfig,
    *,
    progress: ProgressCallback | None = None,
    failures: dict[int, str] | None = None,
    duplicates: CrossSourceDuplicates | None = None,
) -> Iterator[tuple[Source, pd.DataFrame]]:
    """Yield ``(source, prepared chunk)`` for every chunk of every source, in source order.

    A source that fails with ``SourceError`` is recorded in ``failures`` (by ``id(source)``) and
    the run goes on with the other sources, so one bad input never stops it. Events that another
    source of the run already gave are merged (see :class:`CrossSourceDuplicates`; pass one to
    read its counts).
    """
    events = 0
    for source in sources:
        try:
            for chunk in source.read():
                if chunk.empty:
                    continue
                # A planned log file's workers already ran prepare_chunk (connectors.parallel).
                prepared = chunk if getattr(source, "chunks_prepared", False) else prepare_chunk(chunk, config)
                if duplicates is not None:
                    prepared = duplicates.drop(prepared, id(source))
                    if prepared.empty:
                        continue
                events += len(prepared)
                if progress is not None:
                    progress(source.name, events, len(prepared))
                yield source, prepared
        except SourceError as exc:
            if failures is None:
                raise
            failures[id(source)] = str(exc)


def nothing_read_message(accounting: Sequence[SourceAccounting], shown: int = 3) -> str:
    """``no events could be read from any input (NAME: reason; ...)``: why each source gave nothing,
    for the first ``shown`` sources (the per-source summary lists them all)."""
    reasons = [f"{acc.name}: {why_no_events(acc)}" for acc in accounting[:shown]]
    if len(accounting) > shown:
        reasons.append(f"and {len(accounting) - shown} more")
    return "no events could be read from any input" + (f" ({'; '.join(reasons)})" if reasons else "")


def why_no_events(acc: SourceAccounting) -> str:
    """The reason a source gave no event, from its accounting: why it failed or was skipped, what
    became of its lines, or what its reader noted."""
    if acc.skipped_reason or acc.partial_reason:
        return str(acc.skipped_reason or acc.partial_reason)
    if acc.rejected_total and acc.rejected_total >= acc.lines_read:
        detail = ", ".join(f"{k}={v:,}" for k, v in sorted(acc.rejected.items()))
        return f"all {acc.lines_read:,} lines rejected ({detail})"
    if acc.outside_window and acc.outside_window >= acc.lines_read - acc.rejected_total:
        return f"{acc.outside_window:,} lines outside the window, {acc.rejected_total:,} rejected"
    if acc.format_reason and not acc.lines_read:
        return acc.format_reason
    if acc.notes:
        return acc.notes[0]
    return f"{acc.lines_read:,} lines read, no event in them"


def collect_accounting(
    sources: Iterable[Source],
    events_per_source: dict[int, int],
    failures: dict[int, str],
    duplicates: Mapping[int, int] | None = None,
) -> list[SourceAccounting]:
    """The accounting of every source; plain sources count their events, failed ones say why,
    and events merged with another source's copy are counted in ``duplicates``."""
    out: list[SourceAccounting] = []
    for source in sources:
        n = events_per_source.get(id(source), 0)
        if isinstance(source, AccountedSource):
            accs = source.accounting()
        else:
            accs = [SourceAccounting(name=source.name, format="frame", lines_read=n, event_lines=n, events=n)]
        merged = (duplicates or {}).get(id(source), 0)
        if merged and accs:
            accs[-1].duplicates += merged
            accs[-1].events = max(accs[-1].events - merged, 0)
            accs[-1].notes.append(f"{merged} events also read from another source of this run were merged")
        if id(source) in failures:
            if not accs:
                accs = [SourceAccounting(name=source.name)]
            accs[-1].partial = True
            accs[-1].partial_reason = failures[id(source)]
            if not accs[-1].lines_read:
                accs[-1].skipped_reason = failures[id(source)]
        out.extend(accs)
    return out


class ChunkHandoff:
    """Runs a chunk consumer (``on_chunk``: redacting and writing the event table; the aggregation)
    on a thread of its own, one chunk behind the stream, so that it overlaps with the next chunk's
    parsing. Keyword arguments of a call are passed on to the consumer with its chunk.

    Parquet encoding, compression and the regex kernels release the GIL, so the overlap is real on
    two cores. At most one chunk waits for the consumer (memory stays bounded); the consumer sees
    the chunks in order; an error it raises comes out of the next call or of :meth:`close`, which
    returns only when every chunk has been handed over.
    """

    def __init__(self, on_chunk: Callable[..., None]) -> None:
        self._on_chunk = on_chunk
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmtimeline-chunks")
        self._pending: Future[None] | None = None

    def __call__(self, chunk: pd.DataFrame, **options: Any) -> None:
        self._wait()
        self._pending = self._thread.submit(self._on_chunk, chunk, **options)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last chunk; raises what the consumer raised."""
        try:
            self._wait()
        finally:
            self._thread.shutdown(wait=True)


#: Chunks smaller than this are gathered (in order) into one of about this many rows before the
#: consumers see them: the event sink, the aggregation and the time evidence each have a fixed cost
#: per chunk, which a run of 20,000 one-line files pays 20,000 times. Provenance (source, line) is in
#: the columns, so nothing is lost; the buffer holds at most this many rows (memory stays bounded).
COALESCE_ROWS: Final = 65_536


def _coalesced(
    chunks: Iterable[tuple[bool, pd.DataFrame]], rows: int = COALESCE_ROWS
) -> Iterator[tuple[bool, pd.DataFrame]]:
    """``(counted, chunk)`` pairs with consecutive small chunks of the same ``counted`` flag
    concatenated, in order; a chunk of ``rows`` or more passes through as it is."""
    held: list[pd.DataFrame] = []
    held_rows = 0
    held_counted = False

    def flush() -> Iterator[tuple[bool, pd.DataFrame]]:
        nonlocal held, held_rows
        if held:
            yield held_counted, held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
        held, held_rows = [], 0

    for counted, chunk in chunks:
        if held and counted != held_counted:
            yield from flush()
        if len(chunk) >= rows:
            yield from flush()
            yield counted, chunk
            continue
        held.append(chunk)
        held_rows += len(chunk)
        held_counted = counted
        if held_rows >= rows:
            yield from flush()
    yield from flush()


def _counted_and_handed_off(
    sources: Sequence[Source],
    config: TimelineConfig,
    on_chunk: Callable[[pd.DataFrame], None] | None,
    progress: ProgressCallback | None,
    failures: dict[int, str],
    duplicates: CrossSourceDuplicates | None,
    counts: dict[int, int],
    pushdown: set[int] | None = None,
) -> Generator[tuple[bool, pd.DataFrame], None, None]:
    """:func:`stream_chunks`, counting the events of each source in ``counts``, gathering small
    chunks (see :data:`COALESCE_ROWS`) and giving every chunk to ``on_chunk`` (through a
    :class:`ChunkHandoff`) before yielding it with whether its source's counts were pushed down
    (its id in ``pushdown``). Close it (or run it to its end) so that the last chunk is handed over
    and an error of ``on_chunk`` comes out."""
    handoff = ChunkHandoff(on_chunk) if on_chunk is not None else None

    def counted() -> Iterator[tuple[bool, pd.DataFrame]]:
        chunks = stream_chunks(sources, config, progress=progress, failures=failures, duplicates=duplicates)
        for source, chunk in chunks:
            counts[id(source)] = counts.get(id(source), 0) + len(chunk)
            yield pushdown is not None and id(source) in pushdown, chunk

    try:
        for pushed_down, chunk in _coalesced(counted()):
            if handoff is not None:
                handoff(chunk)
            yield pushed_down, chunk
    finally:
        if handoff is not None:
            handoff.close()


def ingest(
    sources: Iterable[Source],
    config: TimelineConfig,
    *,
    keep_events: bool = True,
    on_chunk: Callable[[pd.DataFrame], None] | None = None,
    progress: ProgressCallback | None = None,
) -> IngestResult:
    """Read every source into one time-ordered event table, with per-source accounting.

    Args:
        keep_events: keep (and sort) the whole table in memory; turn it off for large windows and
            write the chunks as they come with ``on_chunk`` (``IngestResult.events`` is then empty
            and ``IngestResult.event_count`` says how many events went by).
        on_chunk: called with every prepared chunk, in source order and file order
            (e.g. :class:`pmtimeline.event_sink.EventSink`), on a thread of its own (see
            :class:`ChunkHandoff`).
    """
    started = time.perf_counter()
    sources = list(sources)
    failures: dict[int, str] = {}
    counts: dict[int, int] = {}
    chunks: list[pd.DataFrame] = []
    duplicates = merges_duplicates(sources)
    stream = _counted_and_handed_off(sources, config, on_chunk, progress, failures, duplicates, counts)
    with contextlib.closing(stream):
        for _pushed_down, chunk in stream:
            if keep_events:
                chunks.append(chunk)
    events = sort_events(pd.concat(chunks, ignore_index=True)) if chunks else empty_events()
    return IngestResult(
        events=events[list(EVENT_COLUMNS)],
        sources=collect_accounting(sources, counts, failures, duplicates.dropped if duplicates else None),
        rejects=[r for s in sources for r in _rejects_of(s)],
        seconds=time.perf_counter() - started,
        event_count=sum(counts.values()),
    )


def build(
    sources: Iterable[Source],
    config: TimelineConfig,
    *,
    keep_events: bool = True,
    on_chunk: Callable[[pd.DataFrame], None] | None = None,
    progress: ProgressCallback | None = None,
) -> AnalysisResult:
    """Ingest and analyze: the library behind ``pmtimeline build`` and :func:`pmtimeline.load`.

    Args:
        keep_events: keep the full event table in memory (``AnalysisResult.events``); turn it off
            for very large windows, where ``on_chunk`` can write chunks as they come.
        on_chunk: called with every prepared chunk (e.g. an incremental Parquet writer), on a thread
            of its own (see :class:`ChunkHandoff`); the aggregation runs on another.
    """
    started = time.perf_counter()
    sources = list(sources)
    aggregator = Aggregator(config)
    kept: list[pd.DataFrame] = []
    failures: dict[int, str] = {}
    counts: dict[int, int] = {}
    pushdown: set[int] = set()
    for source in sources:
        try:
            if _uses_pushdown(source):
                assert isinstance(source, CountingSource)
                aggregator.add_counts(source.counts(config.count_resolution))
                pushdown.add(id(source))
        except SourceError as exc:
            # A cluster that cannot be reached fails alone, as an unreadable file does: the run goes
            # on with the other sources, and the summary says why.
            failures[id(source)] = str(exc)
    readable = [s for s in sources if id(s) not in failures]
    duplicates = merges_duplicates(sources)
    stream = _counted_and_handed_off(readable, config, on_chunk, progress, failures, duplicates, counts, pushdown)
    # The aggregation overlaps with the parsing of the next chunk, as the writing does: both lean on
    # kernels that release the GIL (polars, Arrow, numpy sorts): a one-process build of the 2 M-line
    # benchmark corpus went from 23.4 s to 20.8 s on two cores (bench/run_bench.py --workers 1, same
    # code otherwise). It sees the chunks in order, so its result is the same.
    aggregating = ChunkHandoff(aggregator.add)
    with contextlib.closing(stream):
        try:
            for pushed_down, chunk in stream:
                aggregating(chunk, counted=pushed_down)
                if keep_events:
                    kept.append(chunk)
        finally:
            aggregating.close()
    aggregates = aggregator.result()
    accounting = collect_accounting(sources, counts, failures, duplicates.dropped if duplicates else None)
    if not any(a.events or a.lines_read for a in accounting) and not len(aggregates.counts):
        raise NoEventsError(nothing_read_message(accounting), accounting)
    incident = analyze(aggregates, accounting, config)
    events = sort_events(pd.concat(kept, ignore_index=True)) if kept else (empty_events() if keep_events else None)
    return AnalysisResult(
        incident=incident,
        aggregates=aggregates,
        sources=accounting,
        rejects=[r for s in sources for r in _rejects_of(s)],
        events=events,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "AnalysisResult",
    "ChunkHandoff",
    "CrossSourceDuplicates",
    "IngestResult",
    "PmtimelineError",
    "build",
    "collect_accounting",
    "correct_clock_skew",
    "ingest",
    "merges_duplicates",
    "nothing_read_message",
    "prepare_chunk",
    "sort_events",
    "stream_chunks",
    "why_no_events",
]
