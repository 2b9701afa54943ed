"""Parse log files on several processes, and skip what lies outside the time window, unread.

:func:`plan_sources` takes the sources of a run (from :func:`~pmtimeline.connectors.inputs.open_inputs`)
and returns sources that give **the same events and the same accounting** as reading them one by
one in this process, in the same order (source order, then line order), but:

* **across files and byte ranges**: every log file is a *task*, and a large uncompressed file is cut
  into byte ranges of about :data:`WORKER_CHUNK_LINES` lines and at most :data:`RANGE_BYTES` (one
  task and one chunk each), parsed by ``config.workers`` processes (0 = one per core). The parent
  process reads the results in order, so the pipeline sees the events of a sequential run, in its
  order; at most ``workers + 1`` tasks are in flight, which bounds memory.
* **time-window pruning** (``config.prune``, on by default; ``--no-prune``): with
  ``config.start``/``config.end``, a file or byte range is not parsed when every time sampled across
  it (its head, its tail, each range boundary and :data:`SAMPLE_PROBES` evenly spread probes) lies
  outside the window by more than :data:`PRUNE_MARGIN`, all on the same side, and the times never
  step back by more than that margin through the file (else nothing of the file is skipped). A
  compressed file is skipped only when its head, its tail (one decompression, no parse) and its
  modification time agree; a plain file under :data:`PRUNE_MIN_BYTES` is read, never pruned. A
  skipped file says ``skipped_reason = "outside the window (first ..., last ...)"`` and counts its
  lines in ``lines_read`` and ``outside_window``; a skipped range counts its lines in
  ``outside_window``. docs/time.md states the rules.

How a cut keeps results exact:

* **Multi-line events.** A range boundary is moved forward to the next line that *starts* a segment
  (an event head, or a line the format rejects), found by parsing a small probe at the boundary, so
  a stack trace is never separated from its head. If no such line is found within
  :data:`MAX_PROBE_BYTES`, the two ranges are merged.
* **Line numbers** come from counting newlines (:func:`~pmtimeline.connectors.rawio.iter_line_ranges`).
* **Accounting** of the ranges is summed; ``out_of_order`` gets the one comparison that straddles a
  boundary added back (from the last time of a range and the first of the next); the run's event
  cap (``config.max_events``) is kept by reading a file in this process, as before, as soon as the
  lines of the files sent to workers could exceed the remaining budget.
* **What is not cut**: compressed and UTF-16 files (no random access), year-less formats (the year
  of each line depends on every line before it: December-to-January rollovers), naive timestamps in
  a zone with daylight saving time (a repeated hour is resolved by line order across the file), CSV
  (its header binds the parser) and files smaller than two ranges. Such files are still parsed on a
  worker, whole.

Pruning relies on samples, so it assumes that a file is written in time order (log files are, up to
the margin) wherever its samples show no step back. With pruning on, the lines of a skipped range count as
``outside_window`` even if some of them would have been rejected, and ``out_of_order`` is not
counted inside skipped ranges. Workers are started by a fork server (a fresh interpreter, see
:func:`_worker_context`); a task travels to them pickled, its log format as the recipe that rebuilds
it (:meth:`~pmtimeline.connectors.log_formats.LogFormat.__reduce__`).
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import copy
import dataclasses
import functools
import gc
import mmap
import multiprocessing
import os
import pickle
import struct
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.archives import ArchiveMember
from pmtimeline.connectors.log_formats import LogFormat
from pmtimeline.connectors.logfile import EventBudget, LogFileConnector, zone_for
from pmtimeline.connectors.rawio import READ_SIZE, LineReader, check_readable, iter_line_ranges
from pmtimeline.errors import SourceError
from pmtimeline.sources import Reject, Source, SourceAccounting

__all__ = [
    "MAX_PROBE_BYTES",
    "PRUNE_MARGIN",
    "RANGE_BYTES",
    "ParallelLogFile",
    "plan_sources",
    "worker_count",
]

#: Bytes parsed at a range boundary (and at a file's head and tail) to find event heads and times.
PROBE_BYTES: Final = 16 << 10
MAX_PROBE_BYTES: Final = 1 << 20
#: Bytes per range of a large plain file (a task for one worker), at most. A range is read in one
#: step of READ_SIZE bytes, after its boundary moved forward to an event head (by less than
#: MAX_PROBE_BYTES): a second read would give a block of the one line it cuts, and every block costs
#: a whole parse, a chunk through the pipeline and a row group of the event table.
RANGE_BYTES: Final = READ_SIZE - MAX_PROBE_BYTES
#: Files and ranges are skipped only when they end this long before the window or start this long
#: after it: log lines are written in time order only up to a request's duration or a flush delay.
PRUNE_MARGIN: Final = pd.Timedelta(minutes=5)
#: Plain files smaller than this (or than two byte ranges) are never pruned, only read: planning
#: them would cost about what reading them does.
PRUNE_MIN_BYTES: Final = 1 << 20
#: Probes spread evenly across a plain file, besides its head, its tail and its range boundaries,
#: before any of it is skipped; each parses up to SAMPLE_LINES whole lines from SAMPLE_BYTES bytes
#: (more, up to MAX_SAMPLE_BYTES, until one line is whole).
SAMPLE_PROBES: Final = 16
SAMPLE_LINES: Final = 8
SAMPLE_BYTES: Final = 4 << 10
MAX_SAMPLE_BYTES: Final = 1 << 20
#: Last lines of a compressed file parsed for its last event time.
TAIL_LINES: Final = 256
_TRUNCATED_NOTE: Final = " lines longer than "


def worker_count(config: TimelineConfig) -> int:
    """The number of parsing processes of a run: ``config.workers``, 0 meaning one per core."""
    if config.workers > 0:
        return config.workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- tasks and their results -------------------------------------------------------------------------


#: A stage every chunk of a run goes through after its connector (the pipeline's prepare_chunk,
#: bound to the run's configuration): run by the worker, so that the parent only collects.
ChunkStage = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass
class _Task:
    connector: LogFileConnector
    byte_range: tuple[int, int, int] | None  # None: the whole file, read as LogFileConnector.read does
    prepare: ChunkStage | None = None
    lines: int | None = None  # lines of the byte range (known from planning)


@dataclass
class _TaskResult:
    frames: list[pd.DataFrame]
    accounting: SourceAccounting
    rejects: list[Reject]
    truncated: int = 0
    last_time: pd.Timestamp | None = None
    error: str | None = None
    first_time: pd.Timestamp | None = None  # of the events as parsed (before ``prepare``)


def _run_task(task: _Task, sink: Callable[[pd.DataFrame], None] | None = None) -> _TaskResult:
    """Parse one task (in a worker, or in this process); never raises a SourceError.

    Frames go to ``sink`` as they are parsed (a worker's spool), else into the result.
    """
    connector = copy.copy(task.connector)
    if sink is not None and connector.config.chunk_lines > WORKER_CHUNK_LINES:
        # A worker's memory is that of the chunk it parses (a few times its text), times the
        # workers: smaller chunks keep a parallel run within the memory of a sequential one. A
        # range was cut to about that many lines: it is one chunk (its few lines more or less
        # than WORKER_CHUNK_LINES would otherwise make a chunk of their own).
        lines = max(WORKER_CHUNK_LINES, task.lines or 0)
        connector.config = dataclasses.replace(connector.config, chunk_lines=min(lines, connector.config.chunk_lines))
    # The run's event budget is kept by ParallelLogFile.read, in the parent, in source order.
    connector._budget = EventBudget(connector.config.max_events)
    frames: list[pd.DataFrame] = []
    first_time: list[pd.Timestamp] = []

    def emit(frame: pd.DataFrame) -> None:
        if not first_time and len(frame):
            first_time.append(frame["timestamp"].iloc[0])  # as parsed, before ``prepare``
        if task.prepare is not None:
            frame = task.prepare(frame)
        if sink is not None:
            sink(frame)
        else:
            frames.append(frame)

    truncated = 0
    last_time = None
    error = None
    try:
        # As LogFileConnector.read, for a byte range too.
        connector._accounting = SourceAccounting(name=connector.path, path=connector.path)
        connector._rejects = []
        check_readable(connector.path)
        fmt, reason = connector.choose_format()
        state = connector._start(fmt, reason)
        reader = LineReader(connector.path, connector.config, byte_range=task.byte_range)
        # The connector yields no one-event frames: the event it holds back at a block's end goes
        # out with the next block's events, and the last block holds none back.
        for frame in connector._run(reader.blocks(), state):
            emit(frame)
        connector._finish(state, reader)
        truncated, last_time = state.truncated, state.last_time
    except SourceError as exc:
        error = str(exc)
    return _TaskResult(
        frames,
        connector.accounting()[0],
        connector.rejects(),
        truncated,
        last_time,
        error,
        first_time[0] if first_time else None,
    )


#: Lines per chunk parsed by a worker (at most; the run's ``chunk_lines`` when smaller).
WORKER_CHUNK_LINES: Final = 100_000
#: Parts (chunks) a worker may leave unread in the spool before it waits for the reader: bounds the
#: memory of a task that runs ahead (a whole year-less file is one task), not only its count.
PARTS_AHEAD: Final = 3
_POLL_SECONDS: Final = 0.005


def _part_path(spool: str, index: int, part: int) -> str:
    return os.path.join(spool, f"task{index:06d}.{part:06d}.pickle")


def _done_path(spool: str, index: int) -> str:
    return os.path.join(spool, f"task{index:06d}.done.pickle")


#: A spool file: the length of the pickle stream and the number of buffers, then each buffer's
#: (offset, length), the pickle stream, and the buffers, each at an offset aligned for any dtype.
_SPOOL_HEADER: Final = struct.Struct("<QQ")
_SPOOL_ALIGN: Final = 64


def _write_atomically(path: str, value: object) -> None:
    """Write ``value`` as pickle protocol 5 with its array buffers out of band, laid out so that
    :func:`_take` copies each buffer straight from the file's mapping instead of unpickling arrays
    (a chunk is tens of MB)."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    at = _SPOOL_HEADER.size + 16 * len(views) + len(stream)
    layout: list[int] = []
    for view in views:
        at = -(-at // _SPOOL_ALIGN) * _SPOOL_ALIGN
        layout += [at, view.nbytes]
        at += view.nbytes
    temporary = path + ".partial"
    with open(temporary, "wb") as out:
        out.write(_SPOOL_HEADER.pack(len(stream), len(views)))
        out.write(struct.pack(f"<{len(layout)}Q", *layout))
        out.write(stream)
        at = _SPOOL_HEADER.size + 16 * len(views) + len(stream)
        for view, offset in zip(views, layout[::2], strict=True):
            out.write(bytes(offset - at))
            out.write(view)
            at = offset + view.nbytes
    os.replace(temporary, path)


def _run_task_to_spool(task: _Task, index: int, spool: str) -> int:
    """Run a task in a worker; its chunks go to ``spool`` one file each, as they are parsed, then
    its result (accounting, rejects) to a final file. Returns the number of chunk files.

    Chunks (tens of MB) do not go through the executor's pipe: the parent reads a pipe in 64 KiB
    steps in a helper thread that needs the GIL for each, so a busy main thread stalls the worker
    for seconds per result. One file read releases the GIL once. A worker waits while
    :data:`PARTS_AHEAD` of its files are unread, so that a long task never piles up in memory.
    """
    parts = 0

    def sink(frame: pd.DataFrame) -> None:
        nonlocal parts
        while parts >= PARTS_AHEAD and os.path.exists(_part_path(spool, index, parts - PARTS_AHEAD)):
            time.sleep(_POLL_SECONDS)
        _write_atomically(_part_path(spool, index, parts), frame)
        parts += 1

    result = _run_task(task, sink)
    _write_atomically(_done_path(spool, index), (parts, result))
    return parts


def _take(path: str) -> Any:
    """The value in a spool file (see :func:`_write_atomically`), which is removed.

    The file is mapped and each array buffer copied once from the mapping into memory of its own
    (writable: pandas may write into it); the pickle is not parsed array by array, and the mapping
    is closed before this returns. Buffers of their own matter: arrays that were views of one
    mapping would keep all of it alive for as long as any of them lives, and a run keeps a few
    rows of many chunks (notable events, first and last events, samples) in structures that may
    share memory with the chunk (pandas copies on write, not on select): a 20 M-line build then
    held every chunk it had read (3.6 GB instead of 1.6 GB).
    """
    try:
        with (
            open(path, "rb") as fh,
            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data,
            memoryview(data) as view,
        ):
            length, count = _SPOOL_HEADER.unpack_from(view, 0)
            layout = struct.unpack_from(f"<{2 * count}Q", view, _SPOOL_HEADER.size)
            at = _SPOOL_HEADER.size + 16 * count
            pairs = zip(layout[::2], layout[1::2], strict=True)
            buffers = [bytearray(view[offset : offset + size]) for offset, size in pairs]
            with view[at : at + length] as pickled:
                return pickle.loads(pickled, buffers=buffers)
    finally:
        os.unlink(path)


def _start_fork_server(prepare: ChunkStage | None = None) -> None:
    """Start the fork server now: it imports the parsers (and the module of ``prepare``) while this
    process plans the run, once for all the workers it forks."""
    context = _worker_context()
    if context.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    modules = [__name__]
    module = getattr(getattr(prepare, "func", prepare), "__module__", None)
    if isinstance(module, str) and module not in modules and module in sys.modules:
        modules.append(module)
    context.set_forkserver_preload(modules)
    # Workers parse one chunk each, as many as the cores: a polars thread pool per worker would
    # only contend for the same cores (and spin while it waits). Read when polars starts, in the
    # server, which is started with this process's environment; a value the user set is kept.
    saved = os.environ.get(_POLARS_THREADS)
    os.environ.setdefault(_POLARS_THREADS, "1")
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            os.environ.pop(_POLARS_THREADS, None)


_POLARS_THREADS: Final = "POLARS_MAX_THREADS"


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server: a fresh interpreter that imports the parsers once and forks
    a worker per process slot. Not a fork of this process, whose polars thread pool may be running:
    a forked copy of a running thread pool has no threads and deadlocks on its first parallel step.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While worker processes start: the caller's ``__main__`` module is not re-run in them.

    A fresh worker runs the parent's main script again (as ``__mp_main__``) before its task, which
    re-runs a notebook's or a script's whole work when it has no ``if __name__ == "__main__"``
    guard, and then fails. The workers only need this module, so the main module is not named to
    them: multiprocessing finds no ``__file__`` or ``__spec__`` to re-run.
    """
    main = sys.modules.get("__main__")
    names = ("__file__", "__spec__")
    saved = {name: main.__dict__[name] for name in names if main is not None and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            if "__spec__" in saved:
                main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


class _TaskStream:
    """The chunks of one task, in order, as its worker writes them; then its result."""

    def __init__(self, frames: Iterator[pd.DataFrame]) -> None:
        self._frames = frames
        self.result: _TaskResult | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self._frames


def _close_if_alive(scheduler: weakref.ref[_Scheduler]) -> None:
    alive = scheduler()
    if alive is not None:
        alive.close()
        # The pool's queues and locks are in reference cycles: freed now, their named semaphores
        # are released before the resource tracker looks for leaks at exit (and warns).
        gc.collect()


class _Scheduler:
    """Runs the tasks of a run on a process pool, at most ``workers + 1`` ahead of the reader."""

    def __init__(self, tasks: list[_Task], workers: int) -> None:
        self.tasks = tasks
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[int, Future[int]] = {}
        self._submitted = 0
        self._spool: tempfile.TemporaryDirectory[str] | None = None

    def run(self, index: int) -> _TaskStream:
        """The chunks of task ``index`` (iterate them all; then ``.result`` holds the rest)."""
        if self._workers <= 1:
            result = _run_task(self.tasks[index])
            stream = _TaskStream(iter(result.frames))
            result.frames = []
            stream.result = result
            return stream
        self.submit_through(index + self._workers)
        stream = _TaskStream(iter(()))
        stream._frames = self._parts(index, stream)
        return stream

    def submit_through(self, last: int) -> None:
        """Hand the tasks up to index ``last`` (of those planned so far) to the workers."""
        if self._workers <= 1 or self._submitted > min(last, len(self.tasks) - 1):
            return
        if self._pool is None:
            shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
            self._spool = tempfile.TemporaryDirectory(prefix="pmtimeline-", dir=shm)
            self._pool = ProcessPoolExecutor(self._workers, mp_context=_worker_context())
            # A run that stops before reading every task (an error, an unread source): at exit,
            # concurrent.futures waits for the running tasks, before atexit handlers run, so the
            # scheduler is closed by a hook of the same kind (run in reverse order: first).
            register = getattr(threading, "_register_atexit", atexit.register)
            register(functools.partial(_close_if_alive, weakref.ref(self)))
        assert self._spool is not None
        with _main_module_hidden():
            while self._submitted < len(self.tasks) and self._submitted <= last:
                task = self.tasks[self._submitted]
                self._futures[self._submitted] = self._pool.submit(
                    _run_task_to_spool, task, self._submitted, self._spool.name
                )
                self._submitted += 1

    def _parts(self, index: int, stream: _TaskStream) -> Iterator[pd.DataFrame]:
        assert self._spool is not None
        spool = self._spool.name
        future = self._futures.pop(index)
        part = 0
        while True:
            path = _part_path(spool, index, part)
            if os.path.exists(path):
                yield _take(path)
                part += 1
                continue
            done = _done_path(spool, index)
            if os.path.exists(done):
                parts, result = _take(done)
                # Chunk files are written before the final one: none can be missing now.
                while part < parts:
                    yield _take(_part_path(spool, index, part))
                    part += 1
                stream.result = result
                break
            if future.done():
                try:
                    future.result()  # a worker that died raises here (BrokenProcessPool)
                except Exception as exc:
                    # The run goes on with the other sources (see pipeline.stream_chunks).
                    path_of = self.tasks[index].connector.path
                    raise SourceError(f"{path_of}: its parsing worker stopped: {exc}") from exc
                if not os.path.exists(done) and not os.path.exists(path):
                    raise SourceError(f"{self.tasks[index].connector.path}: its parsing worker left no result")
                continue
            time.sleep(_POLL_SECONDS)
        if index == len(self.tasks) - 1:
            self.close()

    def close(self) -> None:
        """Stop the workers and remove the spool (also when the run stops before its end)."""
        # The spool goes first: a worker waiting for its chunks to be read then fails its write
        # and ends, instead of waiting for ever while the pool waits for it.
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -- the sources the pipeline reads --------------------------------------------------------------------


@dataclass
class _RangePlan:
    task: int | None  # index into the scheduler's tasks; None: skipped (outside the window)
    lines: int  # lines of the range (known for plain files), for the accounting of a skip
    first_time: pd.Timestamp | None = None  # first event time found by the probe at its start
    probed: bool = False  # whether first_time comes from a probe (else: from the range's events)


@dataclass
class _FilePlan:
    ranges: list[_RangePlan] = field(default_factory=list)
    skipped_reason: str | None = None


class ParallelLogFile:
    """A log file whose parsing :func:`plan_sources` planned: yields the chunks of its tasks in order.

    Its ``accounting()`` and ``rejects()`` are those of the file read whole in this process.
    """

    def __init__(
        self, connector: LogFileConnector, plan: _FilePlan, scheduler: _Scheduler, *, prepared: bool = False
    ) -> None:
        self.name = connector.name
        #: Whether its chunks already went through the run's ``prepare`` stage (see plan_sources).
        self.chunks_prepared = prepared
        self.path = connector.path
        self._connector = connector
        self._plan = plan
        self._scheduler = scheduler
        self._accounting = SourceAccounting(name=connector.path, path=connector.path)
        self._rejects: list[Reject] = []

    def accounting(self) -> list[SourceAccounting]:
        return [self._accounting]

    def rejects(self) -> list[Reject]:
        return list(self._rejects)

    def read(self) -> Iterator[pd.DataFrame]:
        acc = self._accounting = SourceAccounting(name=self.path, path=self.path)
        self._rejects = []
        config = self._connector.config
        if self._plan.skipped_reason is not None:
            acc.skipped_reason = self._plan.skipped_reason
            acc.skipped_by_rule = True
            fmt, reason = self._connector.choose_format()
            acc.format, acc.format_reason = (fmt.name if fmt else None), reason
            acc.time_zone = zone_for(self.path, config, fmt)
        truncated = 0
        notes: list[str] = []
        previous_last: pd.Timestamp | None = None
        started = False
        for plan in self._plan.ranges:
            if plan.task is None:
                acc.lines_read += plan.lines
                acc.outside_window += plan.lines
                previous_last = None
                continue
            stream = self._scheduler.run(plan.task)
            for frame in stream:
                self._connector._budget.take(len(frame))
                yield frame
            result = stream.result
            assert result is not None
            part = result.accounting
            if not started:
                acc.format, acc.format_reason, acc.time_zone = part.format, part.format_reason, part.time_zone
                acc.year_inferred = part.year_inferred
                started = True
            acc.merge(part)
            first_time = plan.first_time if plan.probed else result.first_time
            if previous_last is not None and first_time is not None and first_time < previous_last:
                acc.out_of_order += 1
            previous_last = result.last_time
            acc.partial = acc.partial or part.partial
            acc.partial_reason = acc.partial_reason or part.partial_reason
            truncated += result.truncated
            notes.extend(n for n in part.notes if n not in notes)
            room = config.max_rejects_kept - len(self._rejects)
            self._rejects.extend(result.rejects[: max(room, 0)])
            if result.error is not None:
                acc.notes = _merge_notes(notes, truncated, config)
                raise SourceError(result.error)
        acc.notes = _merge_notes(notes, truncated, config)


def _merge_notes(notes: list[str], truncated: int, config: TimelineConfig) -> list[str]:
    """Notes of the ranges, once each; the per-range counts of cut long lines become one total."""
    from pmtimeline.connectors.logfile import _size

    at = next((i for i, n in enumerate(notes) if _TRUNCATED_NOTE in n), 0)  # where a sequential read puts it
    kept = [n for n in notes if _TRUNCATED_NOTE not in n]
    if truncated:
        kept.insert(at, f"{truncated} lines longer than {_size(config.max_line_bytes)} cut to that size")
    return kept


# -- planning ------------------------------------------------------------------------------------------------


def plan_sources(
    sources: Sequence[Source],
    config: TimelineConfig,
    *,
    range_bytes: int = RANGE_BYTES,
    prepare: ChunkStage | None = None,
) -> list[Source]:
    """The sources of a run, with log files planned for parallel parsing and window pruning.

    Returns ``sources`` unchanged when there is nothing to gain (one worker and no window). Other
    sources (alerts, Elasticsearch, frames) are kept as they are, in place. With ``prepare`` (a
    picklable function of a chunk), workers also run it on their chunks, and the planned files say
    so with ``chunks_prepared``, so that the pipeline does not run it again.
    """
    workers = worker_count(config)
    windowed = _pruning(config)
    if workers <= 1 and not windowed:
        return list(sources)
    if workers > 1:
        _start_fork_server(prepare)
    tasks: list[_Task] = []
    scheduler = _Scheduler(tasks, workers)
    out: list[Source] = []
    budget_left: int | None = None
    inline = False  # once a file must share the event budget live, every later one does too
    for source in sources:
        if not isinstance(source, LogFileConnector):
            out.append(source)
            continue
        if budget_left is None:
            budget_left = source._budget.remaining
        if isinstance(source.path, ArchiveMember):
            # An archive member is read here, in order (a compressed tar is streamed once, forward),
            # from the live budget: the files after it get what it may leave.
            budget_left -= source.path.line_bound(config)
            out.append(source)
            continue
        try:
            plan, bound = _plan_file(source, config, tasks, split=workers > 1, range_bytes=range_bytes)
        except SourceError:
            out.append(source)  # its read() reports the error, as in a sequential run
            continue
        if inline or bound > budget_left:
            inline = True
            del tasks[len(tasks) - sum(r.task is not None for r in plan.ranges) :]
            out.append(source)
            continue
        budget_left -= bound
        for planned in plan.ranges:
            if planned.task is not None:
                tasks[planned.task].prepare = prepare
        out.append(ParallelLogFile(source, plan, scheduler, prepared=prepare is not None))
        # The workers start on the first tasks while the other files are planned.
        scheduler.submit_through(workers)
    return out


@dataclass
class _Probe:
    starter: int | None  # index of the first line that starts a segment (None: none in the probe)
    skip_bytes: int  # bytes before that line
    first_time: pd.Timestamp | None  # first event time in the probe (from the starter on)
    last_time: pd.Timestamp | None  # last event time in the probe


def _plan_file(
    connector: LogFileConnector, config: TimelineConfig, tasks: list[_Task], *, split: bool, range_bytes: int
) -> tuple[_FilePlan, int]:
    """Plan one file: its tasks (appended to ``tasks``) and an upper bound on its lines."""
    path = connector.path
    check_readable(path)
    fmt, _reason = connector.choose_format()
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        magic = fh.read(6)
    compressed = magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic[:6] == b"\xfd7zXZ\x00"
    compressed = compressed or magic[:4] == b"\x28\xb5\x2f\xfd"
    if compressed:
        bound = min(config.max_decompressed_bytes, max(config.max_compression_ratio * size, 64 << 20)) + 1
    else:
        bound = size + 1
    if split and not compressed:
        range_bytes = _range_bytes(path, size, range_bytes)
    if not compressed and size < min(PRUNE_MIN_BYTES, 2 * range_bytes):
        # Planning costs a few parses (the format's times, head, tail, samples): for a small file,
        # about what reading it does. It is one task, read whole; the window applies line by line.
        lines = _line_count(path, (0, size, 1)) if size else 0  # a newline count: no parse
        tasks.append(_Task(connector, None))
        return _FilePlan([_RangePlan(len(tasks) - 1, lines)]), lines + 1
    zone = zone_for(path, connector.config, fmt)  # the connector's config knows the run's input roots
    timed = fmt is not None and _times_are_placeable(connector, fmt, zone)
    windowed = _pruning(config)

    wide = magic[:2] in (b"\xff\xfe", b"\xfe\xff") or magic[:4] == b"\x00\x00\xfe\xff"  # UTF-16, UTF-32
    if compressed or wide or fmt is None or not timed:
        plan = _FilePlan()
        if windowed and timed and fmt is not None and compressed:
            skipped = _compressed_skip(connector, fmt, zone, config)
            if skipped is not None:
                plan.skipped_reason, lines = skipped
                plan.ranges.append(_RangePlan(None, lines))
                return plan, 0
        plan.ranges.append(_RangePlan(len(tasks), 0))
        tasks.append(_Task(connector, None))
        return plan, bound

    assert fmt is not None
    splittable = (split or windowed) and size >= 2 * range_bytes and "csv" not in fmt.name
    ranges = iter_line_ranges(path, config, range_bytes) if splittable else [(0, size, 1)]
    if not ranges:
        plan = _FilePlan([_RangePlan(len(tasks), 0)])
        tasks.append(_Task(connector, None))
        return plan, bound
    lines_total = _line_count(path, ranges[-1])
    bound = lines_total
    # Probes cost a parse each: needed to align multi-line events and to find times for pruning;
    # without either, a range starts at its first line (single-line formats) and its first time
    # comes back with its events.
    probing = fmt.multiline or windowed
    unprobed = _Probe(0, 0, None, None)
    probes = [_probe(connector, fmt, zone, ranges[0], PROBE_BYTES, at_start=True) if windowed else unprobed]
    aligned: list[tuple[int, int, int]] = [ranges[0]]
    for start, end, first_line in ranges[1:]:
        probe = _aligned_probe(connector, fmt, zone, (start, size, first_line)) if probing else unprobed
        if probe is None or probe.starter is None:
            prev = aligned[-1]
            aligned[-1] = (prev[0], end, prev[2])  # no segment start near the boundary: merge
            continue
        new_start = start + probe.skip_bytes
        prev = aligned[-1]
        if new_start >= end:  # the whole range continues the previous one's last event
            aligned[-1] = (prev[0], end, prev[2])
            continue
        aligned[-1] = (prev[0], new_start, prev[2])
        aligned.append((new_start, end, first_line + probe.starter))
        probes.append(probe)
    tail = _tail_time(connector, fmt, zone, size) if windowed else None
    # Every time seen, by byte offset: the head, each range's boundary, evenly spread samples, the tail.
    seen: list[tuple[int, pd.Timestamp]] = []
    if windowed:
        # (A probe's last time is left out: its byte offset is not known.)
        seen = [
            (at, probe.first_time)
            for (at, _end, _line), probe in zip(aligned, probes, strict=True)
            if probe.first_time is not None
        ]
        sampled = _samples(connector, fmt, zone, size)
        seen += sampled
        seen += [(size, tail)] if tail is not None else []
        seen.sort(key=lambda point: point[0])  # stable: a probe's times keep their order
        # Times that go back (a clock reset, a line from another year) bound nothing, and no time
        # found across the file (probes inside long traces, a parse failure) is no evidence: read it all.
        windowed = bool(sampled) and _in_time_order([t for _at, t in seen])
    at_of = [at for at, _t in seen]

    plan = _FilePlan()
    if windowed:
        first, last = probes[0].first_time, tail
        if first is not None and last is not None and _all_outside([t for _at, t in seen], config):
            plan.skipped_reason = _outside_reason(first, last, "last")
            plan.ranges.append(_RangePlan(None, lines_total))
            return plan, 0
    for i, (start, end, first_line) in enumerate(aligned):
        next_first = aligned[i + 1][2] if i + 1 < len(aligned) else lines_total + 1
        lines = next_first - first_line
        upper = probes[i + 1].first_time if i + 1 < len(probes) else tail
        lower = probes[i].first_time
        stop = aligned[i + 1][0] if i + 1 < len(aligned) else size
        inside = [t for _at, t in seen[bisect.bisect_left(at_of, start) : bisect.bisect_left(at_of, stop)]]
        if windowed and lower is not None and upper is not None and _all_outside([*inside, upper], config):
            plan.ranges.append(_RangePlan(None, lines, lower))
            continue
        whole = len(aligned) == 1
        plan.ranges.append(_RangePlan(len(tasks), lines, probes[i].first_time if i else None, probing))
        tasks.append(_Task(connector, None if whole else (start, end, first_line), lines=None if whole else lines))
    return plan, bound


def _range_bytes(path: str, size: int, most: int) -> int:
    """Bytes per range of a file parsed by workers: about WORKER_CHUNK_LINES lines (from the line
    length at its head), at most ``most``. A range is then one chunk of a worker, as large as its
    other chunks. (In this process, ranges only serve the window: the larger, the fewer probes.)"""
    with open(path, "rb") as fh:
        head = fh.read(min(size, 1 << 20))
    newlines = head.count(b"\n")
    if not newlines:
        return most
    return max(1, min(most, len(head) * WORKER_CHUNK_LINES // newlines))


def _times_are_placeable(connector: LogFileConnector, fmt: LogFormat, zone: str) -> bool:
    """Whether the file's times can be placed without reading it from the start: full dates, and
    naive times only in a zone without daylight saving time."""
    from pmtimeline.connectors.rawio import head_lines

    sample = [line for line in head_lines(connector.path, connector.config, n=64) if line.strip()]
    if not sample:
        return False
    try:
        parsed = fmt.parse(pd.Series(sample, dtype="string[pyarrow]"))
    # A parser failing on the sample: let the connector itself report it, on one worker.
    except Exception:
        return False
    if "year_missing" in parsed and bool(parsed["year_missing"].astype(bool).any()):
        return False
    naive = parsed["ts_naive"].notna() if "ts_naive" in parsed else pd.Series(False, index=parsed.index)
    utc = parsed["ts_utc"].notna() if "ts_utc" in parsed else pd.Series(False, index=parsed.index)
    return not bool((naive & ~utc).any()) or not _has_dst(zone)


def _head_time(connector: LogFileConnector, fmt: LogFormat, zone: str) -> pd.Timestamp | None:
    """The first event time among the first lines of any file (compressed ones included)."""
    from pmtimeline.connectors.rawio import head_lines

    sample = [line for line in head_lines(connector.path, connector.config, n=64) if line.strip()]
    if not sample:
        return None
    try:
        parsed = fmt.parse(pd.Series(sample, dtype="string[pyarrow]"))
    except Exception:  # see _times_are_placeable
        return None
    placed = _placed_times(parsed, zone)
    return placed.iloc[0] if len(placed) else None


def _has_dst(zone: str) -> bool:
    if zone.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return False
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return True  # fixed offsets like +01:00 are handled by the connector; be careful here
    offsets = {tz.utcoffset(pd.Timestamp(year=y, month=m, day=1).to_pydatetime()) for y in (1990, 2024) for m in (1, 7)}
    return len(offsets) > 1 or any(
        tz.utcoffset(pd.Timestamp(year=y, month=1, day=1).to_pydatetime())
        != tz.utcoffset(pd.Timestamp(year=y, month=7, day=1).to_pydatetime())
        for y in range(1970, 2040)
    )


def _probe(
    connector: LogFileConnector,
    fmt: LogFormat,
    zone: str,
    byte_range: tuple[int, int, int],
    limit: int,
    *,
    at_start: bool,
) -> _Probe:
    """Parse up to ``limit`` bytes from the start of ``byte_range``: the first segment start, its
    byte offset, and the first and last event times from there on."""
    start, end, first_line = byte_range
    stop = min(end, start + limit)
    reader = LineReader(connector.path, connector.config, byte_range=(start, stop, first_line))
    blocks = list(reader.blocks())
    if not blocks:
        return _Probe(None, 0, None, None)
    lines = pd.concat([b.lines for b in blocks], ignore_index=True)
    io_reject = pd.concat([b.io_reject for b in blocks], ignore_index=True)
    if stop < end and len(lines) > 1:  # the last line may be cut by the probe: leave it out
        lines, io_reject = lines.iloc[:-1], io_reject.iloc[:-1]
    try:
        parsed = fmt.parse(lines.reset_index(drop=True))
    except Exception:  # see _times_are_placeable
        return _Probe(None, 0, None, None)
    reason = io_reject.reset_index(drop=True).notna().to_numpy().copy()
    if "reject_reason" in parsed:
        reason |= parsed["reject_reason"].notna().to_numpy()
    head = parsed["head"].to_numpy(dtype=bool)
    starter_mask = head | reason
    starters = np.flatnonzero(starter_mask)
    if len(starters) == 0:
        return _Probe(None, 0, None, None)
    starter = 0 if at_start else int(starters[0])
    # Bytes before the starter line: its raw lines plus their newlines (raw lengths, so read them again).
    skip = _bytes_of_lines(connector.path, start, starter)
    events = np.flatnonzero(head & ~reason)
    placed = _utc_times(parsed, zone).iloc[events[events >= starter]].dropna()
    first = placed.iloc[0] if len(placed) else None
    last = placed.iloc[-1] if len(placed) else None
    return _Probe(starter, skip, first, last)


def _aligned_probe(
    connector: LogFileConnector, fmt: LogFormat, zone: str, byte_range: tuple[int, int, int]
) -> _Probe | None:
    limit = PROBE_BYTES
    while True:
        probe = _probe(connector, fmt, zone, byte_range, limit, at_start=False)
        if probe.starter is not None:
            return probe
        if limit >= MAX_PROBE_BYTES or byte_range[0] + limit >= byte_range[1]:
            return None
        limit *= 4


def _bytes_of_lines(path: str, start: int, count: int) -> int:
    """Bytes taken by the first ``count`` lines (with their newlines) from byte ``start``."""
    if count == 0:
        return 0
    skipped = 0
    found = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        while found < count:
            data = fh.read(PROBE_BYTES)
            if not data:
                break
            pos = 0
            while found < count:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                found += 1
                pos = nl + 1
            skipped += pos if found >= count else len(data)
    return skipped


def _placed_times(parsed: pd.DataFrame, zone: str) -> pd.Series:
    """The UTC times of the parsed lines that start an event and are not rejected (index: their
    position in ``parsed``)."""
    ok = parsed["head"].to_numpy(dtype=bool).copy()
    if "reject_reason" in parsed:
        ok &= parsed["reject_reason"].isna().to_numpy()
    return _utc_times(parsed, zone)[ok].dropna()


def _utc_times(parsed: pd.DataFrame, zone: str) -> pd.Series:
    """UTC times of parsed lines: explicit ones as they are, naive ones read in ``zone``
    (a time in a repeated or skipped DST hour is left out)."""
    if "ts_utc" in parsed:
        utc = pd.to_datetime(parsed["ts_utc"], utc=True)
    else:
        utc = pd.Series(pd.NaT, index=parsed.index, dtype="datetime64[ns, UTC]")
    if "ts_naive" in parsed:
        naive = pd.to_datetime(parsed["ts_naive"])
        need = utc.isna() & naive.notna()
        if bool(need.any()):
            try:
                local = naive[need].dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
            except (ValueError, TypeError, ZoneInfoNotFoundError):
                local = pd.Series(pd.NaT, index=naive[need].index, dtype="datetime64[ns, UTC]")
            utc = utc.copy()
            utc[need] = local
    return utc.reset_index(drop=True)


def _tail_time(connector: LogFileConnector, fmt: LogFormat, zone: str, size: int) -> pd.Timestamp | None:
    """The last event time of a plain file, from its last bytes (None when none is found there)."""
    limit = PROBE_BYTES
    while True:
        start = max(0, size - limit)
        if start:
            with open(connector.path, "rb") as fh:
                fh.seek(start)
                data = fh.read(limit)
            cut = data.find(b"\n")
            start = start + cut + 1 if cut >= 0 else size
        probe = _probe(connector, fmt, zone, (start, size, 1), size - start, at_start=True)
        if probe.last_time is not None or start == 0 or limit >= MAX_PROBE_BYTES:
            return probe.last_time
        limit *= 4


def _line_count(path: str, last_range: tuple[int, int, int]) -> int:
    """Lines of a plain file, from its last range: its first line number plus the lines in it."""
    start, end, first_line = last_range
    count = 0
    last_byte = b"\n"
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            data = fh.read(min(remaining, 16 << 20))
            if not data:
                break
            count += data.count(b"\n")
            last_byte = data[-1:]
            remaining -= len(data)
    return first_line - 1 + count + (0 if last_byte == b"\n" else 1)


def _pruning(config: TimelineConfig) -> bool:
    """Whether a run may skip what lies outside its window unread: a window, and ``config.prune``."""
    return config.prune and (config.start is not None or config.end is not None)


def _side(time: pd.Timestamp, config: TimelineConfig) -> int:
    """-1 when ``time`` lies before the window (by more than the margin), 1 after it, 0 otherwise."""
    if config.start is not None and time < config.start - PRUNE_MARGIN:
        return -1
    if config.end is not None and time >= config.end + PRUNE_MARGIN:
        return 1
    return 0


def _all_outside(times: Sequence[pd.Timestamp], config: TimelineConfig) -> bool:
    """True when every time lies outside the window, all on the same side of it.

    Times on both sides may have the window between them, so they prune nothing.
    """
    sides = {_side(t, config) for t in times}
    return len(sides) == 1 and 0 not in sides


def _in_time_order(times: Sequence[pd.Timestamp]) -> bool:
    """Whether times seen in file order never go back by more than :data:`PRUNE_MARGIN`: the
    evidence that a file is written in time order, which pruning by samples relies on."""
    if len(times) < 2:
        return True
    values = np.array([t.value for t in times], dtype=np.int64)
    return bool((values >= np.maximum.accumulate(values) - PRUNE_MARGIN.value).all())


def _samples(connector: LogFileConnector, fmt: LogFormat, zone: str, size: int) -> list[tuple[int, pd.Timestamp]]:
    """``(byte offset, time)`` of the events in :data:`SAMPLE_PROBES` probes spread evenly across a
    plain file, in file order: a few whole lines at each (all parsed at once)."""
    config = connector.config
    lines: list[str] = []
    offsets: list[int] = []
    covered = 0  # bytes before this are sampled already (small files: probes overlap)
    with open(connector.path, "rb") as fh:
        fd = fh.fileno()
        for k in range(1, SAMPLE_PROBES + 1):
            at = max(size * k // (SAMPLE_PROBES + 1), covered)
            if at >= size:
                break
            limit = SAMPLE_BYTES
            while True:
                data = os.pread(fd, limit + 1, at - 1) if at else b"\n" + os.pread(fd, limit, 0)
                begin = data.find(b"\n") + 1  # the line under the offset is cut: start after it
                end = data.rfind(b"\n") + 1 if at - 1 + len(data) < size else len(data)
                if (begin and end > begin) or limit >= MAX_SAMPLE_BYTES or at - 1 + len(data) >= size:
                    break
                limit *= 4
            if not begin or end <= begin:
                continue
            covered = at - 1 + end
            for raw in data[begin:end].split(b"\n")[:SAMPLE_LINES]:
                line = raw[: config.max_line_bytes].removesuffix(b"\r").replace(b"\0", b"")
                lines.append(line.decode("utf-8", "replace").removeprefix("\ufeff"))
                offsets.append(at - 1 + begin)
    lines_kept = [i for i, line in enumerate(lines) if line.strip()]
    if not lines_kept:
        return []
    try:
        parsed = fmt.parse(pd.Series([lines[i] for i in lines_kept], dtype="string[pyarrow]"))
    except Exception:  # see _times_are_placeable
        return []
    placed = _placed_times(parsed, zone)
    return [(offsets[lines_kept[i]], at) for i, at in zip(placed.index, placed, strict=True)]


def _compressed_skip(
    connector: LogFileConnector, fmt: LogFormat, zone: str, config: TimelineConfig
) -> tuple[str, int] | None:
    """For a compressed file (no random access): the reason to skip it and its lines, or None to read it.

    Only its head, its tail and its modification time are evidence; it is skipped when they agree:
    the first and the last event time lie outside the window on one side, in order, and the file
    was modified no earlier than its last line (a copy or a restore with old times bounds
    nothing). The tail costs one decompression without parsing, which also counts the lines.
    """
    first = _head_time(connector, fmt, zone)
    if first is None or not _side(first, config):
        return None
    mtime = pd.Timestamp(os.stat(connector.path).st_mtime_ns, unit="ns", tz="UTC")
    if mtime < first:
        return None
    scanned = _compressed_tail(connector, fmt, zone)
    if scanned is None:
        return None
    lines, last = scanned
    if last < first - PRUNE_MARGIN or mtime < last - PRUNE_MARGIN or not _all_outside([first, last], config):
        return None
    return f"outside the window (first {_iso(first)}, last {_iso(last)}, modification time {_iso(mtime)})", lines


def _compressed_tail(connector: LogFileConnector, fmt: LogFormat, zone: str) -> tuple[int, pd.Timestamp] | None:
    """Lines and last event time of a compressed file, decompressed once without parsing; None
    when reading stops early (a cap, damage: its read reports it) or no time is found at its end."""
    reader = LineReader(connector.path, connector.config)
    lines = 0
    tail = pd.Series([], dtype="string[pyarrow]")
    try:
        for block in reader.blocks():
            lines += len(block.lines)
            kept = block.lines[block.io_reject.isna().to_numpy()]
            tail = pd.concat([tail, kept]).iloc[-TAIL_LINES:] if len(kept) < TAIL_LINES else kept.iloc[-TAIL_LINES:]
    except SourceError:
        return None
    if reader.stop_reason is not None or not len(tail):
        return None
    try:
        parsed = fmt.parse(tail.reset_index(drop=True))
    except Exception:  # see _times_are_placeable
        return None
    placed = _placed_times(parsed, zone)
    return (lines, placed.iloc[-1]) if len(placed) else None


def _outside_reason(first: pd.Timestamp, last: pd.Timestamp, what: str) -> str:
    return f"outside the window (first {_iso(first)}, {what} {_iso(last)})"


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
