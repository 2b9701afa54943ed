"""The orchestrator: chunks from any source, accounting, failures that do not stop the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.base import FrameSource
from pmtimeline.errors import NoEventsError, OutputError, SourceError
from pmtimeline.pipeline import ChunkHandoff, _coalesced, build, ingest, prepare_chunk, sort_events
from pmtimeline.schema import EVENT_COLUMNS, conform_events


class Broken:
    """A plain source (no accounting) that fails after one chunk."""

    name = "broken"

    def read(self) -> Iterator[pd.DataFrame]:
        yield conform_events(
            pd.DataFrame(
                {"timestamp": ["2024-03-01T10:00:00Z"], "source": ["broken"], "kind": ["log"], "message": ["first"]}
            )
        )
        raise SourceError("connection reset while reading broken")


def test_ingest_orders_events_and_accounts_per_source(small_events: pd.DataFrame) -> None:
    late = small_events.iloc[::-1].copy()
    result = ingest([FrameSource(late, name="a"), FrameSource(small_events.head(3), name="b")], TimelineConfig())
    assert tuple(result.events.columns) == EVENT_COLUMNS
    assert result.events["timestamp"].is_monotonic_increasing
    assert len(result.events) == len(small_events) + 3
    assert [a.name for a in result.sources] == ["a", "b"]
    assert all(a.balanced() for a in result.sources)


def test_a_failing_source_is_recorded_and_the_run_goes_on(small_events: pd.DataFrame) -> None:
    result = ingest([Broken(), FrameSource(small_events, name="ok")], TimelineConfig())
    broken = result.sources[0]
    assert broken.partial
    assert "connection reset" in (broken.partial_reason or "")
    assert broken.events == 1
    assert len(result.events) == len(small_events) + 1


def test_prepare_chunk_recognizes_changes() -> None:
    chunk = conform_events(
        pd.DataFrame(
            {
                "timestamp": ["2024-03-01T10:00:00Z"] * 2,
                "source": ["d"] * 2,
                "kind": ["log"] * 2,
                "message": ["Rolling back payments-api to 2.13.4", "all good"],
                "service": ["payments-api"] * 2,
            }
        )
    )
    out = prepare_chunk(chunk, TimelineConfig())
    assert list(out["kind"]) == ["change", "log"]
    assert out["change_type"].iloc[0] == "rollback"


def test_sort_is_stable_for_equal_times() -> None:
    frame = conform_events(
        pd.DataFrame(
            {"timestamp": ["2024-03-01T10:00:00Z"] * 3, "source": ["s"] * 3, "kind": ["log"] * 3, "line": [3, 1, 2]}
        )
    )
    assert list(sort_events(frame)["line"]) == [1, 2, 3]


def test_build_finds_the_incident_in_an_in_memory_frame(small_events: pd.DataFrame) -> None:
    result = build([FrameSource(small_events, name="api.log")], TimelineConfig())
    onset = result.incident.phase("onset")
    assert onset == pd.Timestamp("2024-03-01T10:10:00Z")
    assert result.events is not None
    assert len(result.events) == len(small_events)


def test_build_without_any_event_is_a_clear_error() -> None:
    empty = pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "message": []})
    with pytest.raises(SourceError, match="no events could be read"):
        build([FrameSource(empty)], TimelineConfig())


def test_clock_skew_correction_shifts_only_matching_sources() -> None:
    from pmtimeline.pipeline import correct_clock_skew

    frame = conform_events(
        pd.DataFrame(
            {
                "timestamp": ["2024-03-01T10:05:00Z", "2024-03-01T10:00:00Z"],
                "source": ["hostb/app.log", "a.log"],
                "kind": ["log", "log"],
            }
        )
    )
    out = correct_clock_skew(frame, [("hostb/*", "-5min"), ("*", "+1h")])
    assert list(out["timestamp"]) == [pd.Timestamp("2024-03-01T10:00:00Z"), pd.Timestamp("2024-03-01T11:00:00Z")]
    assert correct_clock_skew(frame, []) is frame
    with pytest.raises(Exception, match="GLOB=DURATION"):
        TimelineConfig(source_offsets=(("hostb/*", "soonish"),))


def test_chunk_handoff_keeps_order_and_passes_on_errors() -> None:
    seen: list[tuple[int, bool]] = []

    def consume(chunk: pd.DataFrame, counted: bool = False) -> None:
        seen.append((int(chunk["n"].iloc[0]), counted))

    handoff = ChunkHandoff(consume)
    for n in range(20):
        handoff(pd.DataFrame({"n": [n]}), counted=n % 3 == 0)
    handoff.close()
    assert seen == [(n, n % 3 == 0) for n in range(20)]

    def fail(chunk: pd.DataFrame) -> None:
        raise OutputError("disk full")

    failing = ChunkHandoff(fail)
    failing(pd.DataFrame({"n": [0]}))
    with pytest.raises(OutputError, match="disk full"):
        failing(pd.DataFrame({"n": [1]}))
    failing.close()


# -- issue 17, item 8: the reason reaches the user ------------------------------------------------------------


class Unreachable:
    """A counting source (a cluster) whose first request fails, as a refused connection does."""

    name = "es:logs-*"

    def pushdown(self) -> bool:
        raise SourceError("cannot connect to http://127.0.0.1:9: connection refused (5 attempts)")

    def counts(self, resolution: str) -> pd.DataFrame:
        raise AssertionError("never asked: the push-down decision failed")

    def read(self) -> Iterator[pd.DataFrame]:
        self.pushdown()
        yield from ()


def test_a_cluster_failing_its_pushdown_decision_fails_alone(small_events: pd.DataFrame) -> None:
    result = build([Unreachable(), FrameSource(small_events, name="api.log")], TimelineConfig())
    cluster, frame = result.sources
    assert cluster.skipped_reason == "cannot connect to http://127.0.0.1:9: connection refused (5 attempts)"
    assert frame.events == len(small_events)
    assert result.incident.phase("onset") == pd.Timestamp("2024-03-01T10:10:00Z")


def test_nothing_read_names_each_source_and_carries_the_accounting() -> None:
    empty = pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "message": []})
    with pytest.raises(NoEventsError) as info:
        build([Unreachable(), FrameSource(empty, name="empty")], TimelineConfig())
    assert str(info.value) == (
        "no events could be read from any input (es:logs-*: cannot connect to http://127.0.0.1:9: connection"
        " refused (5 attempts); empty: 0 lines read, no event in them)"
    )
    assert [a.name for a in info.value.sources] == ["es:logs-*", "empty"]
    assert isinstance(info.value, SourceError)


def _frame(source: str, n: int) -> pd.DataFrame:
    times = pd.date_range("2024-03-01T10:00:00Z", periods=n, freq="s")
    return conform_events(
        pd.DataFrame({"timestamp": times, "source": source, "line": range(1, n + 1), "kind": "log", "message": "m"})
    )


def test_small_chunks_are_gathered_in_order_and_large_ones_pass_as_they_are() -> None:
    big = _frame("big", 5)
    chunks = [
        (False, _frame("a", 1)),
        (False, _frame("b", 2)),
        (True, _frame("c", 1)),
        (False, big),
        (False, _frame("d", 3)),
    ]
    out = list(_coalesced(iter(chunks), rows=4))
    # a and b gathered (3 rows, under 4); c alone (its counts were pushed down); big as it is; d at the end.
    assert [(counted, len(chunk)) for counted, chunk in out] == [(False, 3), (True, 1), (False, 5), (False, 3)]
    assert out[2][1] is big
    assert list(out[0][1]["source"]) == ["a", "b", "b"]
    assert list(out[0][1]["line"]) == [1, 1, 2]
    # A buffer reaching the row count is handed on at once, so it never holds more.
    assert [len(c) for _, c in _coalesced(iter([(False, _frame("x", 2))] * 5), rows=4)] == [4, 4, 2]


def test_many_small_files_keep_exact_provenance_and_accounting_through_the_cli(tmp_path: Path) -> None:
    """Small files of two formats and uneven sizes (one to three lines, one empty), gathered into
    few chunks by the pipeline: every event keeps its file and line, every file its own count."""
    rng = np.random.default_rng(11)
    logs = tmp_path / "logs"
    expected: dict[str, int] = {}
    for i in range(120):
        n = int(rng.integers(0, 4)) if i else 0
        folder = logs / f"pod{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 3:
            path = folder / f"job-{i}.jsonl"
            rows = [
                json.dumps({"@timestamp": f"2024-03-12T08:{i % 60:02d}:{k:02d}Z", "message": f"job {i} step {k}"})
                for k in range(n)
            ]
        else:
            path = folder / f"job-{i}.log"
            rows = [f'time="2024-03-12T09:{i % 60:02d}:{k:02d}Z" level=warn msg="job {i} step {k}"' for k in range(n)]
        path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        expected[str(path)] = n
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(logs), "-o", str(out), "--no-images", "--workers", "1"])
    assert result.exit_code == 0, result.output
    incident = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    by_name = {s["name"]: s for s in incident["sources"]}
    assert {name: by_name[name]["lines_read"] for name in expected} == expected
    assert {name: by_name[name]["events"] for name in expected} == expected
    events = pd.read_parquet(out / "events.parquet")
    read = events.groupby("source")["line"].apply(lambda s: sorted(int(v) for v in s)).to_dict()
    assert read == {name: list(range(1, n + 1)) for name, n in expected.items() if n}
    steps = events["message"].str.extract(r"job (\d+) step (\d+)").astype(int)
    # Each event's message names its own file and line: nothing was shifted between files.
    assert (events["source"].str.extract(r"job-(\d+)\.")[0].astype(int) == steps[0]).all()
    assert ((events["line"].astype(int) - 1) == steps[1]).all()
