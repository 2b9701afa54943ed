"""The public entry points (pmtimeline.api): load, read_events, open_sources, make_config, open_outputs.

Each is exercised with real data: the sample incident's files, an in-memory frame, and the
Elasticsearch connector talking to the protocol-level test server (tests/esstub.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE_LOGS
from esstub import EsStub, load_events

import pmtimeline
from pmtimeline.api import DataFrameSource, make_config, open_sources
from pmtimeline.connectors.alerts import AlertFileConnector
from pmtimeline.connectors.elasticsearch import ElasticsearchConnector, EsSettings
from pmtimeline.connectors.logfile import LogFileConnector
from pmtimeline.errors import ConfigError, SourceError
from pmtimeline.timeline import Timeline

WINDOW = ("2024-03-01T10:00:00Z", "2024-03-01T10:20:00Z")


def outage_frame() -> pd.DataFrame:
    """Ten minutes of a healthy service, then five minutes of errors; raw level names, naive times."""
    times = pd.date_range("2024-03-01 10:00:00", periods=15 * 6, freq="10s")
    frame = pd.DataFrame({"timestamp": times, "message": "request ok", "level": "INFO", "service": "api"})
    frame.loc[60:, ["message", "level"]] = ["db timeout after 3000 ms", "ERROR"]
    return frame


@pytest.fixture(scope="module")
def frame_timeline() -> Timeline:
    return pmtimeline.load(outage_frame(), title="api outage")


@pytest.fixture(scope="module")
def es_stub() -> Iterator[EsStub]:
    with EsStub() as stub:
        events = pmtimeline.read_events(outage_frame())
        load_events(stub.url, "logs-api", events)
        yield stub


# -- load -------------------------------------------------------------------------------------------


def test_load_reads_files_directories_and_globs_alike() -> None:
    by_dir = pmtimeline.read_events([SAMPLE_LOGS / "deploy", SAMPLE_LOGS / "alerts"])
    by_glob = pmtimeline.read_events([str(SAMPLE_LOGS / "deploy" / "*.logfmt"), str(SAMPLE_LOGS / "alerts" / "*")])
    by_file = pmtimeline.read_events(
        [
            SAMPLE_LOGS / "deploy" / "argocd.logfmt",
            SAMPLE_LOGS / "alerts" / "alertmanager.json",
            SAMPLE_LOGS / "alerts" / "pagerduty.json",
        ]
    )
    assert len(by_dir) == len(by_glob) == len(by_file) > 0
    assert by_dir["timestamp"].is_monotonic_increasing
    lines = sum(1 for _ in (SAMPLE_LOGS / "deploy" / "argocd.logfmt").open(encoding="utf-8"))
    assert (by_dir["format"] == "logfmt").sum() == lines


def test_load_applies_the_window_and_source_zones() -> None:
    ledger = SAMPLE_LOGS / "ledger"
    local = pmtimeline.read_events(ledger, source_tz={"*ledger.log": "Europe/Amsterdam"})
    as_utc = pmtimeline.read_events(ledger)
    assert len(local) == len(as_utc) > 0
    # Amsterdam is UTC+1 in March: read as UTC, every event lands one hour late.
    shift = (as_utc["timestamp"] - local["timestamp"]).unique()
    assert list(shift) == [pd.Timedelta(hours=1)]
    first_line = (ledger / "ledger.log").read_text(encoding="utf-8").splitlines()[0]
    written = pd.Timestamp(first_line[:23]).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    assert local["timestamp"].iloc[0] == written
    # The window [start, end) in the run's zone; "GLOB=ZONE" strings name zones too.
    windowed = pmtimeline.read_events(
        ledger,
        "2024-03-12 09:50",
        "2024-03-12 10:00",
        tz="Europe/Amsterdam",
        source_tz=["*ledger.log=Europe/Amsterdam"],
    )
    assert windowed["timestamp"].min() >= pd.Timestamp("2024-03-12T08:50:00Z")
    assert windowed["timestamp"].max() < pd.Timestamp("2024-03-12T09:00:00Z")
    inside = local["timestamp"].between(pd.Timestamp("2024-03-12T08:50Z"), pd.Timestamp("2024-03-12T09:00Z"), "left")
    assert len(windowed) == int(inside.sum())


def test_load_plans_the_files_as_the_cli_does() -> None:
    # workers and the window go through the same planning as `pmtimeline build`: same events.
    inputs = [SAMPLE_LOGS / "ledger", SAMPLE_LOGS / "workers"]
    window = ("2024-03-12T08:30:00Z", "2024-03-12T09:30:00Z")
    sequential = pmtimeline.read_events(inputs, *window, source_tz={"*ledger.log": "Europe/Amsterdam"})
    parallel = pmtimeline.read_events(inputs, *window, source_tz={"*ledger.log": "Europe/Amsterdam"}, workers=2)
    assert len(sequential) > 0
    pd.testing.assert_frame_equal(parallel, sequential)


def test_load_an_in_memory_frame(frame_timeline: Timeline) -> None:
    tl = frame_timeline
    assert len(tl.events) == 90
    assert set(tl.events["level"].dropna()) == {"info", "error"}  # raw level names normalized
    assert tl.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T10:00:00Z")  # naive = UTC by default
    onset = tl.incident.phase("onset")
    assert onset is not None
    assert abs(onset - pd.Timestamp("2024-03-01T10:10:00Z")) <= pd.Timedelta("1min")
    assert tl.incident.title == "api outage"
    assert tl.sources.loc[0, "format"] == "frame"
    assert int(tl.sources.loc[0, "events"]) == 90


def test_a_frame_takes_the_zone_and_window_of_the_run() -> None:
    frame = outage_frame()
    # Naive times, and the window, are Berlin time (UTC+1): 30 rows of 10 s in 5 minutes.
    events = pmtimeline.read_events(frame, "2024-03-01 10:05", "2024-03-01 10:10", tz="Europe/Berlin")
    assert len(events) == 30
    assert events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T09:05:00Z")
    source = DataFrameSource(frame, make_config(start="2024-03-01T10:05:00Z", end="2024-03-01T10:10:00Z"))
    chunks = list(source.read())
    acc = source.accounting()[0]
    assert sum(len(c) for c in chunks) == acc.events == 30
    assert acc.outside_window == 60
    assert acc.balanced()
    with pytest.raises(ConfigError, match="lacks column"):
        pmtimeline.load(pd.DataFrame({"timestamp": frame["timestamp"]}))


def test_load_a_connector_object_and_es_settings(es_stub: EsStub, frame_timeline: Timeline) -> None:
    config = make_config(start=WINDOW[0], end=WINDOW[1])
    connector = ElasticsearchConnector(EsSettings(url=es_stub.url, index="logs-api", mode="documents"), config)
    from_connector = pmtimeline.load(connector, config=config)
    assert len(from_connector.events) == 90
    assert from_connector.incident.phases == frame_timeline.incident.phases
    assert from_connector.sources.loc[0, "name"] == "es:logs-api"
    # EsSettings directly: load builds the connector with the run's window.
    pushed = pmtimeline.load(EsSettings(url=es_stub.url, index="logs-api", mode="pushdown"), *WINDOW)
    assert pushed.incident.phases == frame_timeline.incident.phases
    assert pushed.incident.metrics.error_events == frame_timeline.incident.metrics.error_events


def test_load_a_mix_keeps_the_order_of_the_inputs(es_stub: EsStub) -> None:
    config = make_config()
    sources = open_sources(
        [SAMPLE_LOGS / "deploy", outage_frame(), EsSettings(url=es_stub.url, index="logs-api"), outage_frame()],
        config,
    )
    assert [type(s) for s in sources] == [LogFileConnector, DataFrameSource, ElasticsearchConnector, DataFrameSource]
    assert [s.name for s in sources][1::2] == ["frame1", "frame3"]
    alerts = open_sources(str(SAMPLE_LOGS / "alerts" / "*.json"), config)
    assert all(isinstance(s, AlertFileConnector) for s in alerts)
    assert len(alerts) == 2


def test_progress_callback_sees_every_event() -> None:
    seen: list[tuple[str, int, int]] = []
    tl = pmtimeline.load(outage_frame(), progress=lambda source, total, chunk: seen.append((source, total, chunk)))
    assert seen[-1][1] == len(tl.events) == sum(chunk for _, _, chunk in seen)


# -- errors: one line, our own types ------------------------------------------------------------------


def test_a_missing_path_is_a_one_line_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigError) as info:
        pmtimeline.load(missing)
    message = str(info.value)
    assert "no such file or directory" in message
    assert str(missing) in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="matches nothing"):
        pmtimeline.load(str(tmp_path / "*.log"))


def test_unknown_options_name_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown option\(s\): tzz \(did you mean tz\?\)"):
        pmtimeline.load(outage_frame(), tzz="UTC")
    with pytest.raises(ConfigError, match="unknown option"):
        make_config(not_an_option=1)


def test_bad_values_and_inputs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown time zone"):
        pmtimeline.load(outage_frame(), tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="ISO 8601"):
        pmtimeline.load(outage_frame(), start="not a time")
    with pytest.raises(ConfigError, match="before"):
        pmtimeline.load(outage_frame(), start="2024-03-01T11:00Z", end="2024-03-01T10:00Z")
    with pytest.raises(ConfigError, match="GLOB=ZONE"):
        pmtimeline.load(outage_frame(), source_tz=["ledger"])
    with pytest.raises(ConfigError, match="cannot read int"):
        pmtimeline.load([42])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="no inputs"):
        pmtimeline.load([])


def test_no_events_at_all_is_a_source_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match="no events"):
        pmtimeline.load(empty)


# -- make_config, read_events, open_outputs ---------------------------------------------------------------


def test_make_config_accepts_what_a_notebook_has() -> None:
    config = make_config(
        start=dt.datetime(2024, 3, 1, 11, 0),
        end=pd.Timestamp("2024-03-01T10:30:00Z"),
        tz="Europe/Berlin",
        source_tz={"*ledger.log": "Europe/Amsterdam"},
        phase_overrides={"onset": "2024-03-01 11:05"},
        bucket="30s",
        slo=None,  # None keeps the default
    )
    assert config.start == pd.Timestamp("2024-03-01T10:00:00Z")
    assert config.end == pd.Timestamp("2024-03-01T10:30:00Z")
    assert config.source_tz == (("*ledger.log", "Europe/Amsterdam"),)
    assert config.phase_overrides == {"onset": pd.Timestamp("2024-03-01T10:05:00Z")}
    assert config.bucket == "30s"
    assert config.slo is None
    base = make_config(title="base", bucket="5min")
    assert make_config(base, bucket="1min") == dataclasses.replace(base, bucket="1min")


def test_read_events_is_the_event_table_of_load(frame_timeline: Timeline) -> None:
    events = pmtimeline.read_events(outage_frame())
    pd.testing.assert_frame_equal(events, frame_timeline.events)


def test_open_outputs_reopens_a_saved_timeline(frame_timeline: Timeline, tmp_path: Path) -> None:
    frame_timeline.save(tmp_path / "out", images=False)
    reopened = pmtimeline.open_outputs(tmp_path / "out")
    assert reopened.incident.phases == frame_timeline.incident.phases
    assert reopened.incident.title == "api outage"
    assert len(reopened.events) == len(frame_timeline.events)
    with pytest.raises(ConfigError, match="not a pmtimeline output directory"):
        pmtimeline.open_outputs(tmp_path)


def test_log_text_in_the_notebook_summary_is_escaped() -> None:
    frame = outage_frame()
    frame.loc[60:, "message"] = '<img src=x onerror="alert(1)"> db timeout'
    frame.loc[60:, "service"] = "<b>api</b>"
    markup = pmtimeline.load(frame)._repr_html_()
    assert "<img" not in markup
    assert "<b>api</b>" not in markup
    assert "&lt;b&gt;api&lt;/b&gt;" in markup


# -- source globs and times (issue 16) --------------------------------------------------------------------


def test_source_globs_match_relative_to_each_input_in_the_library_too() -> None:
    inputs = [SAMPLE_LOGS / "ledger", SAMPLE_LOGS / "hosts"]
    as_utc = pmtimeline.read_events(inputs).sort_values(["source", "line"], ignore_index=True)
    # Given these folders, a source's path relative to its input is its file name.
    by_name = pmtimeline.read_events(
        inputs, source_tz={"ledger.log": "Europe/Amsterdam"}, source_offsets=["syslog*=-5min"]
    ).sort_values(["source", "line"], ignore_index=True)
    shift = (by_name["timestamp"] - as_utc["timestamp"]).groupby(by_name["source"].map(lambda s: Path(s).name))
    assert {name: set(values) for name, values in shift} == {
        "ledger.log": {pd.Timedelta(hours=-1)},
        "syslog": {pd.Timedelta(minutes=-5)},
        "syslog.1.gz": {pd.Timedelta(minutes=-5)},
    }
    # Given their parent, the folder names are part of it: the same events.
    by_folder = pmtimeline.read_events(
        SAMPLE_LOGS, source_tz=["ledger/*=Europe/Amsterdam"], source_offsets={"hosts/*": "-5min"}
    )
    mine = by_folder[by_folder["source"].str.contains("/ledger/|/hosts/")].sort_values(["source", "line"])
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), by_name)
    # ... and 'ledger/*' given the ledger folder itself matches nothing: an error, not a silent UTC.
    with pytest.raises(ConfigError, match=r"--source-tz 'ledger/\*' matches no source.*: ledger\.log, syslog"):
        pmtimeline.read_events(inputs, source_tz={"ledger/*": "Europe/Amsterdam"})


def test_open_sources_refuses_globs_that_match_nothing_or_that_the_pipeline_would_miss() -> None:
    from pmtimeline.api import with_inputs
    from pmtimeline.pipeline import ingest

    with pytest.raises(ConfigError, match=r"--service 'checkout/\*' matches no source.*deploy/argocd\.logfmt"):
        open_sources([SAMPLE_LOGS], make_config(source_services={"checkout/*": "checkout"}))
    # 'deploy/*' matches deploy/argocd.logfmt only relative to the folder given.
    config = make_config(source_offsets={"deploy/*": "+2s"})
    with pytest.raises(ConfigError, match="with_inputs"):
        open_sources([SAMPLE_LOGS], config)
    # With the inputs in the config, the pipeline applies the offset that open_sources matched.
    config = with_inputs(config, [SAMPLE_LOGS])
    events = ingest(open_sources([SAMPLE_LOGS], config), config).events
    shifted = events[events["source"].str.endswith("argocd.logfmt")].sort_values("line", ignore_index=True)
    plain = pmtimeline.read_events(SAMPLE_LOGS / "deploy").sort_values("line", ignore_index=True)
    assert len(shifted) == len(plain) > 0
    assert set(shifted["timestamp"] - plain["timestamp"]) == {pd.Timedelta(seconds=2)}


def test_times_are_iso_8601_only_and_naive_ones_are_read_in_tz() -> None:
    for bad in ("12/03/2024", "Mar 12 08:00", "yesterday"):
        with pytest.raises(ConfigError, match=f"--start: '{bad}' is not an ISO 8601 time"):
            make_config(start=bad)
        with pytest.raises(ConfigError, match=f"--onset: '{bad}' is not an ISO 8601 time"):
            make_config(phase_overrides={"onset": bad})
    config = make_config(start="2024-03-12 09:50", phase_overrides={"onset": "2024-03-12T09:51:12"}, tz="+01:00")
    assert config.start == pd.Timestamp("2024-03-12T08:50:00Z")
    assert config.phase_overrides == {"onset": pd.Timestamp("2024-03-12T08:51:12Z")}
