"""Parallel parsing gives what a sequential run gives; time-window pruning skips files and ranges."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.inputs import open_inputs
from pmtimeline.connectors.parallel import PARTS_AHEAD, PRUNE_MIN_BYTES, ParallelLogFile, plan_sources, worker_count
from pmtimeline.pipeline import IngestResult, ingest, prepare_chunk

REPO = Path(__file__).resolve().parents[2]
SMALL_RANGE = 48 << 10  # many range boundaries on a small corpus


def _generator() -> Callable[[list[str]], int]:
    spec = importlib.util.spec_from_file_location("generate_corpus", REPO / "bench" / "generate_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    main: Callable[[list[str]], int] = module.main
    return main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark corpus (five formats, stack traces) at 15 000 lines, plus damaged lines."""
    out = tmp_path_factory.mktemp("corpus")
    assert _generator()(["--lines", "15000", "--out", str(out), "--chunk-lines", "2000"]) == 0
    # Damage in the middle of multi-line files: a NUL-only line, garbage, a head with a bad time.
    for name in ("service.log", "worker.log"):
        path = out / name
        lines = path.read_bytes().split(b"\n")
        middle = len(lines) // 2
        lines[middle:middle] = [b"\0\0\0", b"garbage that is no log line", b"2024-13-45 99:99:99,000 ERROR x - y"]
        path.write_bytes(b"\n".join(lines))
    return out


def _run(paths: list[str], config: TimelineConfig, range_bytes: int | None = None) -> IngestResult:
    sources = open_inputs(paths, config)
    if range_bytes is not None:
        sources = plan_sources(sources, config, range_bytes=range_bytes)
    return ingest(sources, config)


def _assert_same(a: IngestResult, b: IngestResult, *, skipped_ok: bool = False) -> None:
    pd.testing.assert_frame_equal(a.events, b.events)
    for x, y in zip(a.sources, b.sources, strict=True):
        dx, dy = x.to_dict(), y.to_dict()
        if skipped_ok:
            dy["skipped_reason"] = dx["skipped_reason"]
        assert dx == dy
    assert [(r.source, r.line, r.reason, r.excerpt) for r in a.rejects] == [
        (r.source, r.line, r.reason, r.excerpt) for r in b.rejects
    ]


def test_two_workers_over_byte_ranges_give_the_sequential_events_and_accounting(corpus: Path) -> None:
    config = TimelineConfig()
    sequential = _run([str(corpus)], config)
    parallel_config = dataclasses.replace(config, workers=2)
    planned = plan_sources(open_inputs([str(corpus)], parallel_config), parallel_config, range_bytes=SMALL_RANGE)
    assert all(isinstance(s, ParallelLogFile) for s in planned)
    parallel = ingest(planned, parallel_config)
    assert sequential.events["message"].str.contains("\n").sum() > 100
    assert sum(s.rejected_total for s in sequential.sources) >= 6  # the damage is there, and counted
    _assert_same(sequential, parallel)
    assert all(s.balanced() for s in parallel.sources)


def test_range_boundaries_inside_stack_traces_keep_traces_with_their_heads(corpus: Path) -> None:
    config = TimelineConfig()
    path = str(corpus / "service.log")
    sequential = _run([path], config)
    # Boundaries every few KB: many fall inside a Java stack trace and must move to the next head.
    for range_bytes in (8 << 10, 13 << 10):
        parallel = _run([path], dataclasses.replace(config, workers=2), range_bytes)
        _assert_same(sequential, parallel)
    assert sequential.sources[0].continuation_lines > 300


def test_in_process_ranges_equal_the_sequential_run(corpus: Path) -> None:
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T07:00Z"), end=pd.Timestamp("2024-03-12T11:00Z"))
    sequential = _run([str(corpus / "worker.log"), str(corpus / "app.jsonl")], config)
    parallel = _run([str(corpus / "worker.log"), str(corpus / "app.jsonl")], config, SMALL_RANGE)
    _assert_same(sequential, parallel)


def test_workers_zero_means_one_per_core() -> None:
    assert worker_count(TimelineConfig(workers=0)) == len(os.sched_getaffinity(0))
    assert worker_count(TimelineConfig(workers=3)) == 3


def test_a_file_wholly_before_the_window_is_skipped_with_its_lines_counted(corpus: Path) -> None:
    # The corpus spans 08:00-10:00; a window from 11:00 holds none of it.
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T11:00Z"), end=pd.Timestamp("2024-03-12T12:00Z"))
    path = corpus / "app.jsonl"
    result = _run([str(path)], config, SMALL_RANGE)
    acc = result.sources[0]
    assert acc.skipped_reason is not None
    assert acc.skipped_reason.startswith("outside the window (first 2024-03-12T08:00")
    lines = path.read_bytes().count(b"\n")
    assert acc.lines_read == acc.outside_window == lines
    assert acc.events == 0
    assert acc.balanced()
    assert len(result.events) == 0


def test_ranges_outside_the_window_are_skipped_and_the_result_is_unchanged(corpus: Path) -> None:
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T09:40Z"), end=pd.Timestamp("2024-03-12T09:50Z"))
    path = str(corpus / "access.log")
    sequential = _run([path], config)
    planned = plan_sources(open_inputs([path], config), config, range_bytes=SMALL_RANGE)
    source = planned[0]
    assert isinstance(source, ParallelLogFile)
    skipped = [r for r in source._plan.ranges if r.task is None]
    assert len(skipped) >= len(source._plan.ranges) // 2  # most ranges lie outside the 10 minutes
    parallel = ingest(planned, config)
    _assert_same(sequential, parallel)
    assert len(parallel.events) > 0
    assert parallel.events["timestamp"].between(config.start, config.end).all()


def test_a_compressed_rotated_log_older_than_the_window_is_skipped_with_its_lines_counted(
    corpus: Path, tmp_path: Path
) -> None:
    # Head, tail and modification time agree: the whole file (08:00-08:32) lies before the window.
    rotated = tmp_path / "app.jsonl.1.gz"
    text = (corpus / "app.jsonl").read_bytes()[:200_000].rsplit(b"\n", 1)[0] + b"\n"
    rotated.write_bytes(gzip.compress(text))
    lines = text.split(b"\n")[:-1]
    first, last = (pd.Timestamp(json.loads(line)["@timestamp"]) for line in (lines[0], lines[-1]))
    last_write = last + pd.Timedelta(seconds=30)
    os.utime(rotated, ns=(last_write.value, last_write.value))
    config = TimelineConfig(start=last + pd.Timedelta(minutes=30), end=last + pd.Timedelta(minutes=90))
    acc = _run([str(rotated)], config, SMALL_RANGE).sources[0]
    iso = "%Y-%m-%dT%H:%M:%SZ"
    assert acc.skipped_reason == (
        f"outside the window (first {first:{iso}}, last {last:{iso}}, modification time {last_write:{iso}})"
    )
    assert acc.lines_read == acc.outside_window == len(lines)
    assert acc.events == 0
    assert acc.balanced()
    # Modified before its last line (a restore with old times): the evidence disagrees, so it is read.
    early = last - pd.Timedelta(minutes=20)
    os.utime(rotated, ns=(early.value, early.value))
    read = _run([str(rotated)], config, SMALL_RANGE).sources[0]
    assert read.skipped_reason is None
    assert read.lines_read == read.outside_window == len(lines)
    assert read.balanced()


def test_a_compressed_log_whose_modification_time_predates_its_content_is_read(corpus: Path, tmp_path: Path) -> None:
    # A copy or an archive restored with old times: the modification time bounds nothing, so a file
    # whose first line lies before the window's end is read, and its lines inside the window count.
    copied = tmp_path / "app.jsonl.gz"
    copied.write_bytes(gzip.compress((corpus / "app.jsonl").read_bytes()))
    os.utime(copied, ns=(10**18, 10**18))  # 2001-09-09
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T09:00Z"), end=pd.Timestamp("2024-03-12T09:30Z"))
    acc = _run([str(copied)], config, SMALL_RANGE).sources[0]
    assert acc.skipped_reason is None
    assert acc.lines_read == (corpus / "app.jsonl").read_bytes().count(b"\n")
    assert 0 < acc.events < acc.lines_read
    assert acc.balanced()
    assert _run([str(copied)], config).sources[0].events == acc.events


def test_a_file_whose_last_line_is_a_clock_reset_is_read_not_pruned(tmp_path: Path) -> None:
    # Head in the window's past and tail in 1970: the times are out of order, so they bound nothing.
    start = pd.Timestamp("2024-03-12T08:00Z")
    lines = [
        f'10.0.0.{i % 200} - - [{at:%d/%b/%Y:%H:%M:%S +0000}] "GET /x HTTP/1.1" 200 1 "-" "c"'
        for i, at in enumerate(start + pd.Timedelta(seconds=2 * i) for i in range(3600))
    ]
    lines.append('10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] "GET /x HTTP/1.1" 200 1 "-" "c"')
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T08:30Z"), end=pd.Timestamp("2024-03-12T09:30Z"))
    acc = _run([str(path)], config, SMALL_RANGE).sources[0]
    assert acc.skipped_reason is None
    assert acc.events == 1800  # 08:30:00 .. 09:29:58 every 2 s
    assert acc.lines_read == 3601
    assert acc.balanced()


def test_year_less_syslog_is_parsed_whole_and_still_equal(corpus: Path) -> None:
    config = TimelineConfig(workers=2)
    path = str(corpus / "syslog")
    planned = plan_sources(open_inputs([path], config), config, range_bytes=SMALL_RANGE)
    assert isinstance(planned[0], ParallelLogFile)
    assert [r.task for r in planned[0]._plan.ranges] == [0]  # one task: the whole file
    _assert_same(_run([path], TimelineConfig()), ingest(planned, config))


def test_ranges_read_in_several_steps_fold_traces_across_steps(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A range longer than one read: the line that straddles two reads is decoded apart, so a
    # block's lines come in two Arrow chunks, which the trace folding must survive.
    import pmtimeline.connectors.rawio as rawio

    path = str(corpus / "service.log")
    sequential = _run([path], TimelineConfig())
    monkeypatch.setattr(rawio, "READ_SIZE", 16 << 10)
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T07:00Z"))  # in-process ranges
    _assert_same(sequential, _run([path], config, 200 << 10))


def _run_script(script: Path, body: str, *, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run ``body`` as a script of its own (a fresh interpreter, as a user's script is)."""
    script.write_text(body, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, check=False)


def test_a_script_without_a_main_guard_is_not_run_again_by_the_workers(corpus: Path, tmp_path: Path) -> None:
    # Workers are fresh processes; multiprocessing would re-run the caller's main script in each of
    # them, which breaks a script (or a notebook export) that has no `if __name__ == "__main__"`.
    files = [str(corpus / "service.log"), str(corpus / "worker.log")]
    done = _run_script(
        tmp_path / "unguarded.py",
        "import pmtimeline\n"
        "print('body', flush=True)\n"
        f"timeline = pmtimeline.load({files!r}, workers=2)\n"
        "print('events', len(timeline.events))\n",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sequential = _run(files, TimelineConfig())
    assert done.stdout.splitlines() == ["body", f"events {len(sequential.events)}"]


def test_workers_that_prepare_their_chunks_give_the_sequential_events(corpus: Path) -> None:
    # With the pipeline's prepare stage handed to plan_sources, workers run it (clock-skew offsets,
    # change recognition) and the parent does not run it again: same events, same accounting.
    config = TimelineConfig(source_offsets=(("*service.log", "-90s"),))
    sequential = _run([str(corpus)], config)
    parallel_config = dataclasses.replace(config, workers=2)
    planned = plan_sources(
        open_inputs([str(corpus)], parallel_config),
        parallel_config,
        range_bytes=SMALL_RANGE,
        prepare=functools.partial(prepare_chunk, config=parallel_config),
    )
    assert all(isinstance(s, ParallelLogFile) and s.chunks_prepared for s in planned)
    parallel = ingest(planned, parallel_config)
    _assert_same(sequential, parallel)
    assert (sequential.events["kind"] == "change").sum() >= 2  # the deploy and the rollback
    service = sequential.events["source"].str.endswith("service.log")
    raw = _run([str(corpus / "service.log")], TimelineConfig()).events
    assert sequential.events.loc[service, "timestamp"].min() == raw["timestamp"].min() - pd.Timedelta(seconds=90)


def test_a_worker_waits_for_the_reader_instead_of_piling_up_chunks(corpus: Path) -> None:
    # The year-less syslog is one task, parsed whole; with small chunks it has many. While the
    # reader holds back, its worker leaves at most PARTS_AHEAD chunk files unread.
    config = TimelineConfig(workers=2, chunk_lines=100)
    path = str(corpus / "syslog")
    planned = plan_sources(open_inputs([path], config), config)
    source = planned[0]
    assert isinstance(source, ParallelLogFile)
    chunks = source.read()
    first = next(chunks)
    spool = source._scheduler._spool
    assert spool is not None
    time.sleep(2.0)  # plenty for the worker to parse the whole file if nothing held it back
    waiting = [name for name in os.listdir(spool.name) if not name.endswith(".partial")]
    assert 1 <= len(waiting) <= PARTS_AHEAD
    rest = list(chunks)
    sequential = _run([path], dataclasses.replace(config, workers=1))
    pd.testing.assert_frame_equal(pd.concat([first, *rest], ignore_index=True), sequential.events)
    assert len(rest) + 1 > 3 * PARTS_AHEAD


def test_a_worker_that_dies_is_a_one_line_source_error(corpus: Path) -> None:
    # A worker killed by the system (out of memory) breaks the pool: the run reports each file it
    # could not parse with a clear message instead of a traceback.
    config = TimelineConfig(workers=2)
    paths = [str(corpus / "service.log"), str(corpus / "worker.log")]
    planned = plan_sources(open_inputs(paths, config), config, prepare=_die)
    result = ingest(planned, config)
    assert result.event_count == 0
    for accounting in result.sources:
        assert accounting.partial
        assert accounting.partial_reason is not None
        assert "its parsing worker stopped" in accounting.partial_reason
        assert "\n" not in accounting.partial_reason


def _die(frame: pd.DataFrame) -> pd.DataFrame:
    os._exit(9)  # in the worker process: as the kernel's out-of-memory killer would


def test_each_range_of_a_multi_line_file_comes_as_one_chunk(corpus: Path) -> None:
    # The event a multi-line format holds back at the end of a block is not a frame of its own
    # (every chunk costs a pass of each later stage): a worker's range comes as one chunk.
    config = TimelineConfig(workers=2)
    path = str(corpus / "service.log")
    planned = plan_sources(open_inputs([path], config), config, range_bytes=SMALL_RANGE)
    source = planned[0]
    assert isinstance(source, ParallelLogFile)
    tasks = [r.task for r in source._plan.ranges if r.task is not None]
    assert len(tasks) > 5
    chunks = list(source.read())
    assert len(chunks) == len(tasks)
    sequential = _run([path], TimelineConfig())
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), sequential.events)


def test_a_spooled_chunk_comes_back_equal_and_writable(corpus: Path, tmp_path: Path) -> None:
    from pmtimeline.connectors.parallel import _take, _write_atomically

    events = _run([str(corpus / "access.log")], TimelineConfig()).events
    path = str(tmp_path / "part")
    _write_atomically(path, events)
    back = _take(path)
    assert not os.path.exists(path)
    pd.testing.assert_frame_equal(back, events)
    # Its arrays have memory of their own, which pandas may write into.
    assert all(block.values.flags.writeable for block in back._mgr.blocks if isinstance(block.values, np.ndarray))
    back.loc[0, "http_status"] = 599
    back.loc[0, "duration_ms"] = -1.0
    assert (back.loc[0, "http_status"], back.loc[0, "duration_ms"]) == (599, -1.0)
    assert events.loc[0, "http_status"] != 599


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps (Linux)")
def test_rows_kept_from_a_spooled_chunk_do_not_keep_its_file_mapped(corpus: Path, tmp_path: Path) -> None:
    # A run keeps a few rows of many chunks: with arrays that were views of the file's mapping,
    # every chunk read stayed in memory (a 20 M-line build held 3.6 GB).
    from pmtimeline.connectors.parallel import _take, _write_atomically

    events = _run([str(corpus / "access.log")], TimelineConfig()).events
    path = str(tmp_path / "part")
    _write_atomically(path, events)
    kept = _take(path).iloc[:3]
    assert len(kept) == 3
    assert not [line for line in Path("/proc/self/maps").read_text().splitlines() if path in line]


def test_a_run_that_stops_reading_early_exits_without_waiting_for_its_workers(corpus: Path, tmp_path: Path) -> None:
    # The year-less syslog is one task of many small chunks: its worker waits for the reader, which
    # stops after one chunk. The process must still exit (the spool is removed before the pool waits).
    done = _run_script(
        tmp_path / "stops_early.py",
        "from pmtimeline.config import TimelineConfig\n"
        "from pmtimeline.connectors.inputs import open_inputs\n"
        "from pmtimeline.connectors.parallel import plan_sources\n"
        "config = TimelineConfig(workers=2, chunk_lines=100)\n"
        f"sources = plan_sources(open_inputs([{str(corpus / 'syslog')!r}], config), config)\n"
        "print(len(next(iter(sources[0].read()))))\n",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "100"
    assert "leaked" not in done.stderr  # the pool's semaphores are released, not left to the tracker


def test_ranges_hold_about_a_workers_chunk_of_lines(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ranges are cut to about WORKER_CHUNK_LINES lines (from the line length at the file's head), so
    # that each is one chunk of its worker: here 2,000 lines of the 15,000-line access log.
    import pmtimeline.connectors.parallel as parallel

    monkeypatch.setattr(parallel, "WORKER_CHUNK_LINES", 2_000)
    config = TimelineConfig(workers=2)
    path = str(corpus / "access.log")
    planned = plan_sources(open_inputs([path], config), config)
    source = planned[0]
    assert isinstance(source, ParallelLogFile)
    lines = [r.lines for r in source._plan.ranges]
    assert sum(lines) == Path(path).read_bytes().count(b"\n")
    assert all(1_500 <= n <= 2_500 for n in lines[:-1])
    chunks = list(source.read())
    assert len(chunks) == len(lines)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), _run([path], TimelineConfig()).events)


def test_a_file_parsed_whole_by_a_worker_keeps_its_note_of_cut_long_lines(corpus: Path, tmp_path: Path) -> None:
    # A worker reports the long lines it cut for a whole file as for a range: the note survives.
    lines = (corpus / "syslog").read_bytes().split(b"\n")[:300]
    lines[100] = lines[100] + b" x" * 1_000
    path = tmp_path / "syslog"
    path.write_bytes(b"\n".join(lines) + b"\n")
    config = TimelineConfig(max_line_bytes=1_024)
    sequential = _run([str(path)], config)
    assert any("lines longer than" in note for note in sequential.sources[0].notes)
    parallel_config = dataclasses.replace(config, workers=2)
    planned = plan_sources(open_inputs([str(path)], parallel_config), parallel_config)
    assert isinstance(planned[0], ParallelLogFile)
    _assert_same(sequential, ingest(planned, parallel_config))


# -- the window never drops data inside it, through the CLI (issue 17, item 1) ------------------------------

WINDOW = ["--start", "2024-03-12T08:30:00Z", "--end", "2024-03-12T09:30:00Z"]
ISO = "%Y-%m-%dT%H:%M:%SZ"


def _access_lines(start: str, count: int, step: str = "2s") -> list[str]:
    """Access-log lines (each with its offset) every ``step`` from ``start``, 640 bytes each (long user
    agents): 1,800 of them make a file larger than PRUNE_MIN_BYTES, which planning may prune."""
    times = pd.date_range(start, periods=count, freq=step)
    request = f'"GET /x HTTP/1.1" 200 1 "-" "Mozilla/5.0 {"x" * 544}"'
    return [f"10.0.0.{i % 200} - - [{t:%d/%b/%Y:%H:%M:%S +0000}] {request}" for i, t in enumerate(times)]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ingest(tmp_path: Path, inputs: list[Path], *extra: str) -> tuple[dict[str, dict[str, int]], str, pd.DataFrame]:
    """Run ``pmtimeline ingest`` with the window: per-source counts from its summary, its output, the events."""
    from click.testing import CliRunner

    from pmtimeline.cli import cli

    out = tmp_path / "events.parquet"
    args = ["ingest", *(str(p.relative_to(tmp_path)) for p in inputs), *WINDOW, "-o", str(out), *extra]
    with contextlib.chdir(tmp_path):  # short names in the summary
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("source "))
    columns = ("lines", "events", "cont.", "rejected", "outside")
    rows: dict[str, dict[str, int]] = {}
    for line in lines[header + 1 :]:
        if line.startswith("total:"):
            break
        cells = line.split()
        name, numbers = cells[0], [c for c in cells[2:] if c.replace(",", "").isdigit()]
        rows[os.path.basename(name)] = {c: int(n.replace(",", "")) for c, n in zip(columns, numbers, strict=False)}
    for counts in rows.values():  # every line accounted for (single-line events: one line each)
        assert counts["lines"] == counts["events"] + counts["cont."] + counts["rejected"] + counts["outside"]
    return rows, result.output, pd.read_parquet(out)


def _in_window(events: pd.DataFrame) -> pd.Series:
    start, end = (pd.Timestamp(t) for t in WINDOW[1::2])
    return events["timestamp"].between(start, end, inclusive="left")


def test_cli_a_last_line_reset_to_1970_keeps_the_1800_events_in_the_window(tmp_path: Path) -> None:
    path = _write(tmp_path / "access.log", [*_access_lines("2024-03-12T08:00Z", 3600), *_access_lines("1970-01-01", 1)])
    rows, output, events = _ingest(tmp_path, [path])
    assert rows["access.log"] == {"lines": 3601, "events": 1800, "cont.": 0, "rejected": 0, "outside": 1801}
    assert len(events) == 1800
    assert _in_window(events).all()
    assert "skipped" not in output


def test_cli_a_first_line_in_the_next_year_keeps_the_events_in_the_window(tmp_path: Path) -> None:
    path = _write(tmp_path / "access.log", [*_access_lines("2025-01-01", 1), *_access_lines("2024-03-12T08:00Z", 3600)])
    rows, output, events = _ingest(tmp_path, [path])
    assert rows["access.log"] == {"lines": 3601, "events": 1800, "cont.": 0, "rejected": 0, "outside": 1801}
    assert len(events) == 1800
    assert "skipped" not in output


def test_cli_a_file_whose_middle_lies_in_the_window_is_read_though_its_head_and_tail_lie_before_it(
    tmp_path: Path,
) -> None:
    # A device that boots without a clock (1970), gets its time, then loses it again: head and tail
    # are in 1970 and in order (the tail after the head); only samples across the file show 2024.
    booted = _access_lines("1970-01-01T00:00Z", 600)
    synced = _access_lines("2024-03-12T08:30Z", 1800)
    reset = _access_lines("1970-01-01T00:30Z", 600)
    path = _write(tmp_path / "device.log", [*booted, *synced, *reset])
    rows, output, events = _ingest(tmp_path, [path])
    assert rows["device.log"] == {"lines": 3000, "events": 1800, "cont.": 0, "rejected": 0, "outside": 1200}
    assert len(events) == 1800
    assert _in_window(events).all()
    assert "skipped" not in output


def test_cli_a_file_wholly_outside_the_window_is_skipped_with_its_lines_and_both_bounds(tmp_path: Path) -> None:
    before = _write(tmp_path / "before.log", _access_lines("2024-03-12T06:00Z", 1801))
    after = _write(tmp_path / "after.log", _access_lines("2024-03-12T10:00Z", 1801))
    inside = _write(tmp_path / "inside.log", _access_lines("2024-03-12T08:00Z", 3600))
    rows, output, events = _ingest(tmp_path, [before, after, inside])
    assert rows["before.log"] == {"lines": 1801, "events": 0, "cont.": 0, "rejected": 0, "outside": 1801}
    assert rows["after.log"] == {"lines": 1801, "events": 0, "cont.": 0, "rejected": 0, "outside": 1801}
    assert rows["inside.log"]["events"] == len(events) == 1800
    assert "skipped before.log: outside the window (first 2024-03-12T06:00:00Z, last 2024-03-12T07:00:00Z)" in output
    assert "skipped after.log: outside the window (first 2024-03-12T10:00:00Z, last 2024-03-12T11:00:00Z)" in output
    # --no-prune reads every line of them and applies the window line by line: the same events.
    unpruned, output, same = _ingest(tmp_path, [before, after, inside], "--no-prune")
    assert unpruned == rows
    assert "skipped" not in output
    pd.testing.assert_frame_equal(same, events)


def test_cli_compressed_logs_are_skipped_only_when_head_tail_and_modification_time_agree(tmp_path: Path) -> None:
    def gz(name: str, lines: list[str], modified: str) -> Path:
        path = tmp_path / name
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        at = pd.Timestamp(modified)
        os.utime(path, ns=(at.value, at.value))
        return path

    rotated = gz("app.log.2.gz", _access_lines("2024-03-12T07:00Z", 901), "2024-03-12T07:31Z")
    # Copied with an old modification time (before its first line): no evidence; read.
    copied = gz("app.log.1.gz", _access_lines("2024-03-12T08:00Z", 3600), "2001-09-09T01:46:40Z")
    # Head and modification time before the window, tail inside it: the evidence disagrees; read.
    restored = gz("other.log.1.gz", _access_lines("2024-03-12T07:00Z", 3600), "2024-03-12T07:10Z")
    rows, output, events = _ingest(tmp_path, [rotated, copied, restored])
    assert rows["app.log.2.gz"] == {"lines": 901, "events": 0, "cont.": 0, "rejected": 0, "outside": 901}
    assert (
        "skipped app.log.2.gz: outside the window (first 2024-03-12T07:00:00Z, last 2024-03-12T07:30:00Z, "
        "modification time 2024-03-12T07:31:00Z)" in output
    )
    assert rows["app.log.1.gz"] == {"lines": 3600, "events": 1800, "cont.": 0, "rejected": 0, "outside": 1800}
    assert rows["other.log.1.gz"] == {"lines": 3600, "events": 900, "cont.": 0, "rejected": 0, "outside": 2700}
    assert len(events) == 2700
    assert output.count("skipped") == 1


def test_no_prune_hands_the_sources_over_unplanned(tmp_path: Path) -> None:
    path = _write(tmp_path / "access.log", _access_lines("2024-03-12T06:00Z", 100))
    window = {"start": pd.Timestamp("2024-03-12T08:30Z"), "end": pd.Timestamp("2024-03-12T09:30Z")}
    config = TimelineConfig(**window, prune=False)
    sources = open_inputs([str(path)], config)
    assert plan_sources(sources, config) == sources
    assert isinstance(plan_sources(sources, TimelineConfig(**window))[0], ParallelLogFile)


def test_ranges_of_a_file_with_a_clock_reset_inside_are_all_read(tmp_path: Path) -> None:
    # Byte ranges whose boundaries lie before the window may hold a stretch inside it when times go
    # back; samples across the file see it and nothing of the file is skipped.
    lines = [
        *_access_lines("2024-03-12T06:00Z", 3000),
        *_access_lines("1970-01-01", 3000),
        *_access_lines("2024-03-12T08:40Z", 300),
        *_access_lines("1970-01-01T02:00Z", 3000),
    ]
    path = _write(tmp_path / "access.log", lines)
    config = TimelineConfig(start=pd.Timestamp("2024-03-12T08:30Z"), end=pd.Timestamp("2024-03-12T09:30Z"))
    planned = plan_sources(open_inputs([str(path)], config), config, range_bytes=SMALL_RANGE)
    source = planned[0]
    assert isinstance(source, ParallelLogFile)
    assert len(source._plan.ranges) > 8
    assert all(r.task is not None for r in source._plan.ranges)
    result = ingest(planned, config)
    assert result.sources[0].events == 300
    assert result.sources[0].balanced()
    _assert_same(_run([str(path)], config), result)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32-le", "utf-32-be"])
def test_cli_wide_encodings_are_read_whole_never_pruned(tmp_path: Path, encoding: str) -> None:
    # Samples read bytes as UTF-8: a UTF-16 or UTF-32 file is never judged by them.
    synced = _access_lines("2024-03-12T08:30Z", 1800)
    lines = [*_access_lines("1970-01-01", 600), *synced, *_access_lines("1970-01-01T00:30Z", 600)]
    bom = {"utf-32-le": b"\xff\xfe\x00\x00", "utf-32-be": b"\x00\x00\xfe\xff"}.get(encoding, b"")
    (tmp_path / "device.log").write_bytes(bom + ("\n".join(lines) + "\n").encode(encoding))
    rows, output, events = _ingest(tmp_path, [tmp_path / "device.log"])
    assert rows["device.log"] == {"lines": 3000, "events": 1800, "cont.": 0, "rejected": 0, "outside": 1200}
    assert len(events) == 1800
    assert "skipped" not in output


def test_cli_a_small_file_outside_the_window_is_read_not_pruned(tmp_path: Path) -> None:
    # Under PRUNE_MIN_BYTES, planning would cost about what reading does: the file is read, its
    # lines all counted outside the window, and no sample is taken.
    small = _write(tmp_path / "small.log", _access_lines("2024-03-12T06:00Z", 100))
    inside = _write(tmp_path / "inside.log", _access_lines("2024-03-12T08:00Z", 3600))
    assert small.stat().st_size < PRUNE_MIN_BYTES < inside.stat().st_size
    rows, output, _events = _ingest(tmp_path, [small, inside])
    assert rows["small.log"] == {"lines": 100, "events": 0, "cont.": 0, "rejected": 0, "outside": 100}
    assert "skipped" not in output


def test_cli_a_file_whose_samples_find_no_time_is_read_not_pruned(tmp_path: Path) -> None:
    # Every probe lands inside one long stack trace: head and tail alone are no evidence across it.
    trace = ["\tat com.example.payments.Ledger.post(Ledger.java:123)"] * 24_000
    lines = ["2024-03-12 06:00:00,000 ERROR [main] a.B: boom", *trace, "2024-03-12 06:10:00,000 INFO [main] a.B: done"]
    path = _write(tmp_path / "service.log", lines)
    assert path.stat().st_size > PRUNE_MIN_BYTES
    inside = _write(tmp_path / "inside.log", _access_lines("2024-03-12T09:00Z", 9))
    rows, output, _events = _ingest(tmp_path, [path, inside])
    assert rows["service.log"] == {"lines": 24_002, "events": 0, "cont.": 0, "rejected": 0, "outside": 24_002}
    assert "skipped" not in output
