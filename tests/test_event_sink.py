"""EventSink: chunk-by-chunk output equals the one-shot export; order; redaction; failures."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.inputs import open_inputs
from pmtimeline.errors import ConfigError, OutputError
from pmtimeline.event_sink import EventSink, sort_chunk
from pmtimeline.export import export_events
from pmtimeline.pipeline import ingest
from pmtimeline.redact import Redactor
from pmtimeline.schema import EVENT_COLUMNS, conform_events

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs"


@pytest.fixture(scope="module")
def sample_events() -> pd.DataFrame:
    config = TimelineConfig(source_tz=(("*ledger.log", "Europe/Amsterdam"),))
    events = ingest(open_inputs([str(SAMPLE)], config), config).events
    assert len(events) > 1000
    return events


def _write_in_chunks(path: Path, fmt: str, events: pd.DataFrame, size: int, **kwargs: object) -> EventSink:
    with EventSink(path, fmt, **kwargs) as sink:  # type: ignore[arg-type]
        for start in range(0, len(events), size):
            sink(events.iloc[start : start + size])
    return sink


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "timesketch-csv", "timesketch-jsonl"])
def test_text_formats_appended_chunk_by_chunk_equal_the_one_shot_export(
    tmp_path: Path, sample_events: pd.DataFrame, fmt: str
) -> None:
    path = tmp_path / f"events.{fmt}"
    sink = _write_in_chunks(path, fmt, sample_events, 701)
    assert sink.rows == len(sample_events)
    assert path.read_bytes() == export_events(sample_events, fmt)


def test_parquet_written_by_row_groups_reads_back_as_the_one_shot_export(
    tmp_path: Path, sample_events: pd.DataFrame
) -> None:
    path = tmp_path / "events.parquet"
    _write_in_chunks(path, "parquet", sample_events, 1000)
    expected = pd.read_parquet(io.BytesIO(export_events(sample_events, "parquet")))
    got = pd.read_parquet(path)
    pd.testing.assert_frame_equal(got, expected)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(sample_events) // 1000)


def test_each_chunk_is_written_in_time_order_with_ties_in_line_order(tmp_path: Path) -> None:
    times = pd.to_datetime(["2024-01-01T00:00:03Z", "2024-01-01T00:00:01Z", None, "2024-01-01T00:00:01Z"], utc=True)
    chunk = conform_events(
        pd.DataFrame({"timestamp": times, "source": "a.log", "line": [1, 2, 3, 4], "message": list("wxyz")})
    )
    assert sort_chunk(chunk)["line"].tolist() == [2, 4, 1, 3]
    in_order = sort_chunk(chunk).reset_index(drop=True)
    assert sort_chunk(in_order) is in_order  # already sorted: returned as is
    path = tmp_path / "events.parquet"
    _write_in_chunks(path, "parquet", chunk, 10)
    assert pd.read_parquet(path)["line"].tolist() == [2, 4, 1, 3]
    _write_in_chunks(path, "parquet", chunk, 10, sort_chunks=False)
    assert pd.read_parquet(path)["line"].tolist() == [1, 2, 3, 4]


def test_redactor_is_applied_to_every_chunk(tmp_path: Path, sample_events: pd.DataFrame) -> None:
    redactor = Redactor()
    path = tmp_path / "events.jsonl"
    with_users = sample_events[sample_events["user"].notna()]
    assert len(with_users) > 10
    _write_in_chunks(path, "jsonl", with_users, 7, redactor=redactor)
    written = pd.read_json(path, lines=True, dtype=False)
    raw_users = set(with_users["user"])
    assert not raw_users & set(written["user"].astype(str))
    # One redactor for all chunks: a user gets the same pseudonym in every chunk.
    assert written["user"].nunique() == with_users["user"].nunique()


def test_no_chunk_gives_a_valid_empty_table(tmp_path: Path) -> None:
    with EventSink(tmp_path / "e.parquet", "parquet"):
        pass
    assert list(pd.read_parquet(tmp_path / "e.parquet").columns) == list(EVENT_COLUMNS)
    with EventSink(tmp_path / "e.csv", "csv"):
        pass
    assert (tmp_path / "e.csv").read_bytes().startswith(b"timestamp,source,line")


def test_a_failed_run_leaves_no_partial_file_and_keeps_the_old_one(tmp_path: Path, sample_events: pd.DataFrame) -> None:
    path = tmp_path / "events.parquet"
    path.write_bytes(b"old")

    def failing_run() -> None:
        with EventSink(path, "parquet") as sink:
            sink(sample_events.iloc[:100])
            raise RuntimeError("reading failed")

    with pytest.raises(RuntimeError):
        failing_run()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]


def test_bad_format_and_unwritable_place_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format"):
        EventSink(tmp_path / "e.xml", "xml")
    with pytest.raises(OutputError, match="cannot write"):
        EventSink(tmp_path / "missing-dir" / "e.parquet", "parquet")
    sink = EventSink(tmp_path / "e.parquet", "parquet")
    sink.close()
    with pytest.raises(OutputError, match="closed"):
        sink.write(conform_events(pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-01"], utc=True)})))


def test_a_chunk_that_cannot_be_written_fails_the_sink_cleanly(tmp_path: Path, sample_events: pd.DataFrame) -> None:
    path = tmp_path / "events.parquet"
    path.write_bytes(b"old")
    bad = sample_events.iloc[:10].astype({"line": object})
    bad.loc[bad.index[0], "line"] = "not a number"
    sink = EventSink(path, "parquet")
    sink(sample_events.iloc[:50])
    with pytest.raises(OutputError, match="cannot write the events"):
        sink(bad)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]
    with pytest.raises(OutputError, match="closed"):
        sink(sample_events.iloc[:5])


def test_a_link_at_the_target_is_replaced_never_written_through(tmp_path: Path, sample_events: pd.DataFrame) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "events.csv"
    path.symlink_to(victim)
    _write_in_chunks(path, "csv", sample_events.iloc[:30], 10)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink()
    assert len(pd.read_csv(path)) == 30


def test_in_a_run_s_transaction_the_table_moves_only_when_the_run_commits(
    tmp_path: Path, sample_events: pd.DataFrame
) -> None:
    from pmtimeline.output_files import OutputTransaction

    path = tmp_path / "out" / "events.parquet"
    outputs = OutputTransaction(tmp_path / "out")
    with EventSink(path, "parquet", outputs=outputs) as sink:
        sink(sample_events.iloc[:40])
    assert not path.exists()  # closed, but waiting for the run's other files
    outputs.commit()
    assert len(pd.read_parquet(path)) == 40
    # An aborted sink leaves nothing for the run to commit.
    outputs = OutputTransaction(tmp_path / "out")

    def failing_run() -> None:
        with EventSink(path, "parquet", outputs=outputs) as sink:
            sink(sample_events.iloc[:5])
            raise RuntimeError("reading failed")

    with pytest.raises(RuntimeError):
        failing_run()
    assert outputs.commit() == ()
    assert len(pd.read_parquet(path)) == 40


def test_the_table_is_private_like_the_logs_it_holds(tmp_path: Path, sample_events: pd.DataFrame) -> None:
    path = tmp_path / "events.parquet"
    path.write_bytes(b"old")
    path.chmod(0o644)
    _write_in_chunks(path, "parquet", sample_events.iloc[:10], 5)
    assert path.stat().st_mode & 0o777 == 0o600
