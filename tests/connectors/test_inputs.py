"""open_inputs and sniff over directories of mixed files written here."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.alerts import AlertFileConnector
from pmtimeline.connectors.inputs import UnreadableSource, expand_inputs, open_inputs, sniff
from pmtimeline.connectors.logfile import LogFileConnector
from pmtimeline.errors import ConfigError, UnknownFormatError
from pmtimeline.schema import validate_events
from pmtimeline.sources import AccountedSource

CONFIG = TimelineConfig()

LOG4J = "".join(f"2024-06-14 10:00:{s:02d},000 INFO [main] a.B: tick {s}\n" for s in range(10))
SYSLOG = "Jun 14 10:00:05 web1 sshd[7]: Accepted publickey for bob\nJun 14 10:00:06 web1 sshd[7]: session opened\n"
ACCESS = '10.0.0.1 - - [14/Jun/2024:12:00:00 +0200] "GET / HTTP/1.1" 200 5 "-" "curl"\n'
ALERTMANAGER = {
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "status": "firing",
    "receiver": "pager",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2024-06-14T10:00:03Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "abc123",
        }
    ],
}


def read_source(source: AccountedSource) -> pd.DataFrame:
    frames = list(source.read())
    for frame in frames:
        validate_events(frame)
    for acc in source.accounting():
        assert acc.balanced(), acc.to_dict()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    (root / "app").mkdir(parents=True)
    (root / "edge").mkdir()
    (root / ".git").mkdir()
    (root / "app" / "app.log").write_text(LOG4J)
    (root / "app" / "auth.log").write_text(SYSLOG)
    (root / "edge" / "access.log.gz").write_bytes(gzip.compress(ACCESS.encode()))
    (root / "alert.json").write_text(json.dumps(ALERTMANAGER, indent=2))
    (root / ".hidden.log").write_text(LOG4J)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "events.parquet").write_bytes(b"PAR1")
    (root / "timeline.html").write_text("<html></html>")
    (root / "postmortem.md").write_text("# Incident\n")
    return root


def test_directory_walk_is_sorted_recursive_and_skips_hidden_and_own_outputs(logs: Path) -> None:
    files, unreadable = expand_inputs([str(logs)])
    assert [os.path.relpath(f, logs) for f in files] == [
        "alert.json",
        os.path.join("app", "app.log"),
        os.path.join("app", "auth.log"),
        os.path.join("edge", "access.log.gz"),
    ]
    assert unreadable == []


def test_mixed_directory_gives_log_and_alert_sources(logs: Path) -> None:
    sources = open_inputs([str(logs)], CONFIG)
    kinds = {os.path.relpath(s.name, logs): type(s) for s in sources}
    assert kinds == {
        "alert.json": AlertFileConnector,
        os.path.join("app", "app.log"): LogFileConnector,
        os.path.join("app", "auth.log"): LogFileConnector,
        os.path.join("edge", "access.log.gz"): LogFileConnector,
    }
    events = {os.path.relpath(s.name, logs): read_source(s) for s in sources}
    assert len(events[os.path.join("app", "app.log")]) == 10
    assert events["alert.json"]["kind"].tolist() == ["alert"]
    access = events[os.path.join("edge", "access.log.gz")]
    assert access["timestamp"].tolist() == [pd.Timestamp("2024-06-14T10:00:00Z")]
    # The year-less syslog file takes its year from the full timestamps of the others (2024).
    auth = events[os.path.join("app", "auth.log")]
    assert auth["timestamp"].tolist() == [pd.Timestamp("2024-06-14T10:00:05Z"), pd.Timestamp("2024-06-14T10:00:06Z")]
    assert auth["year_inferred"].all()
    auth_acc = next(s for s in sources if s.name.endswith("auth.log")).accounting()[0]
    assert any("other sources" in note for note in auth_acc.notes)


def test_globs_and_explicit_files_keep_order_and_each_file_once(logs: Path) -> None:
    app_log = str(logs / "app" / "app.log")
    files, _ = expand_inputs([app_log, str(logs / "**" / "*.log"), str(logs / "app")])
    assert files == [app_log, str(logs / "app" / "auth.log")]


def test_inputs_that_match_nothing_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        open_inputs([str(tmp_path / "missing.log")], CONFIG)
    with pytest.raises(ConfigError, match="no such file or directory"):
        open_inputs([str(tmp_path / "*.nothing")], CONFIG)


def test_unreadable_paths_become_skipped_sources(logs: Path) -> None:
    fifo = logs / "pipe.log"
    os.mkfifo(fifo)
    loop = logs / "loop.log"
    os.symlink(loop, loop)
    sources = open_inputs([str(logs)], CONFIG)
    skipped = {os.path.basename(s.name): s for s in sources if isinstance(s, UnreadableSource)}
    assert set(skipped) == {"pipe.log", "loop.log"}
    for source in skipped.values():
        assert list(source.read()) == []
        (acc,) = source.accounting()
        assert acc.skipped_reason
        assert "\n" not in acc.skipped_reason
    assert "FIFO" in (skipped["pipe.log"].accounting()[0].skipped_reason or "")
    assert "loop" in (skipped["loop.log"].accounting()[0].skipped_reason or "")
    # The other files are still read.
    assert sum(len(read_source(s)) for s in sources) == 10 + 2 + 1 + 1


def test_forced_format_name_is_checked_up_front(logs: Path) -> None:
    with pytest.raises(UnknownFormatError):
        open_inputs([str(logs)], dataclasses.replace(CONFIG, format_name="nope"))


def test_run_shares_one_event_budget(logs: Path) -> None:
    sources = open_inputs([str(logs / "app")], dataclasses.replace(CONFIG, max_events=11))
    total = sum(len(read_source(s)) for s in sources)
    assert total == 11
    accounts = [acc for s in sources for acc in s.accounting()]
    assert any(acc.partial for acc in accounts)


def test_sniff_a_log_file_and_an_alert_file(logs: Path) -> None:
    result = sniff(str(logs / "app" / "app.log"), CONFIG)
    assert result.format == "log4j"
    assert "log4j" in result.reason
    assert result.zone == "UTC"
    assert result.rows["line"].tolist() == list(range(1, 11))
    assert result.rows["message"].iloc[0] == "tick 0"
    alert = sniff(str(logs / "alert.json"), CONFIG)
    assert alert.format == "alertmanager"
    assert alert.rows["kind"].tolist() == ["alert"]
    empty = logs / "empty.log"
    empty.write_text("")
    assert sniff(str(empty), CONFIG).format == "none"


def test_year_less_file_beside_alerts_only_takes_the_alerts_year(tmp_path: Path) -> None:
    (tmp_path / "auth.log").write_text(SYSLOG)
    (tmp_path / "alert.json").write_text(json.dumps(ALERTMANAGER))
    stamp = pd.Timestamp("2030-01-01T00:00:00Z").value  # a modification time that would say 2029
    os.utime(tmp_path / "auth.log", ns=(stamp, stamp))
    sources = open_inputs([str(tmp_path)], CONFIG)
    auth = next(s for s in sources if s.name.endswith("auth.log"))
    assert read_source(auth)["timestamp"].iloc[0] == pd.Timestamp("2024-06-14T10:00:05Z")


def test_walk_passes_over_documentation_and_non_logs_but_reads_them_when_named(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("2024-03-01 10:00:00,000 ERROR [main] a.B: boom\n" * 3, encoding="utf-8")
    (logs / "README.md").write_text("# Notes\n2024-03-01 10:00 the outage began\n", encoding="utf-8")
    facts = {"phases": {"onset": "2024-03-01T10:00:00Z"}, "counts": list(range(40))}
    (logs / "facts.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    config = TimelineConfig()
    sources = open_inputs([str(logs)], config)
    by_name = {Path(s.name).name: s for s in sources}
    assert isinstance(by_name["app.log"], LogFileConnector)
    for name, why in (("README.md", "documentation"), ("facts.json", "not recognized as a log")):
        source = by_name[name]
        assert isinstance(source, UnreadableSource)
        assert list(source.read()) == []
        assert why in (source.accounting()[0].skipped_reason or "")
    named = open_inputs([str(logs / "facts.json")], config)
    assert isinstance(named[0], LogFileConnector)


# -- own outputs are never read back (issue 17, item 13) --------------------------------------------------


def _incident_logs(root: Path) -> Path:
    """A small incident: an access log with a burst of 5xx, and an application log of errors."""
    (root / "edge").mkdir(parents=True)
    (root / "app").mkdir()
    start = pd.Timestamp("2024-06-14T10:00Z")
    access = []
    for i in range(600):
        at = start + pd.Timedelta(seconds=i)
        status = 503 if 300 <= i < 420 and i % 2 else 200
        access.append(f'10.0.0.{i % 250} - - [{at:%d/%b/%Y:%H:%M:%S +0000}] "GET /pay HTTP/1.1" {status} 5 "-" "c"')
    (root / "edge" / "access.log").write_text("\n".join(access) + "\n")
    app = [
        f"{start + pd.Timedelta(seconds=i):%Y-%m-%d %H:%M:%S},000 {'ERROR' if 300 <= i < 420 else 'INFO'} "
        f"[main] pay.Api: request {i} {'failed: pool exhausted' if 300 <= i < 420 else 'ok'}"
        for i in range(0, 600, 3)
    ]
    (root / "app" / "app.log").write_text("\n".join(app) + "\n")
    return root


def _cli(args: list[str]) -> str:
    from click.testing import CliRunner

    from pmtimeline.cli import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _built_events(outdir: Path) -> int:
    return len(pd.read_parquet(outdir / "events.parquet"))


def test_cli_build_output_inside_the_input_folder_read_twice_gives_the_same_events(tmp_path: Path) -> None:
    logs = _incident_logs(tmp_path / "logs")
    args = ["build", str(logs), "-o", str(logs / "out"), "--rejects", str(logs / "rejects.csv"), "--no-images"]
    first = _cli(args)
    events = _built_events(logs / "out")
    assert events == 600 + 200
    second = _cli(args)
    assert _built_events(logs / "out") == events
    assert "skipped" not in first
    assert f"skipped {logs / 'out'}: pmtimeline's output folder: not read back as input" in second
    assert f"skipped {logs / 'rejects.csv'}: this run's own output: not read back as input" in second
    # Another run with another output folder passes over the first one's outputs, found by their contents.
    third = _cli(["build", str(logs), "-o", str(logs / "again"), "--no-images"])
    assert _built_events(logs / "again") == events
    assert f"skipped {logs / 'out'}: pmtimeline's output folder" in third
    assert f"skipped {logs / 'rejects.csv'}: a pmtimeline rejects file: not read back as input" in third


def test_cli_build_into_the_input_folder_itself_reads_only_the_logs_again(tmp_path: Path) -> None:
    logs = _incident_logs(tmp_path / "logs")
    _cli(["build", str(logs), "-o", str(logs), "--no-images"])
    events = _built_events(logs)
    assert (logs / "incident.toml").is_file()
    assert (logs / "data").is_dir()
    again = _cli(["build", str(logs), "-o", str(logs), "--no-images"])
    assert _built_events(logs) == events == 800
    assert f"skipped {logs / 'data'}: pmtimeline's output folder" in again
    assert "incident.toml" not in again


@pytest.mark.parametrize("export", ["events.jsonl", "events.csv", "events.timesketch.jsonl", "events.timesketch.csv"])
def test_cli_ingest_exports_inside_the_input_folder_are_not_read_back(tmp_path: Path, export: str) -> None:
    logs = _incident_logs(tmp_path / "logs")
    out = logs / export
    for _ in range(2):
        output = _cli(["ingest", str(logs), "-o", str(out)])
        assert "total: 800 lines read, 800 events" in output
    assert f"skipped {out}: this run's own output: not read back as input" in output
    output = _cli(["ingest", str(logs), "-o", str(tmp_path / "elsewhere.parquet")])
    assert "total: 800 lines read, 800 events" in output
    assert f"skipped {out}: a pmtimeline event export: not read back as input (name it to read it)" in output
    assert len(pd.read_parquet(tmp_path / "elsewhere.parquet")) == 800


def test_own_outputs_named_explicitly_are_read(tmp_path: Path) -> None:
    logs = _incident_logs(tmp_path / "logs")
    export = logs / "events.jsonl"
    _cli(["ingest", str(logs), "-o", str(export)])
    sources = open_inputs([str(export)], CONFIG)
    assert [type(s) for s in sources] == [LogFileConnector]
    assert len(read_source(sources[0])) == 800


def test_what_pmtimeline_wrote_is_told_from_a_first_line() -> None:
    from pmtimeline.connectors.inputs import written_by_pmtimeline

    assert written_by_pmtimeline("source,line,reason,excerpt") == "a pmtimeline rejects file"
    assert written_by_pmtimeline('{"a": 1, "source": "x", "line": 3}') is None  # a log with such keys
    assert written_by_pmtimeline("timestamp,source,line,level,message") is None
    assert written_by_pmtimeline('{"@timestamp": "2024-06-14T10:00:00Z", "message": "x"}') is None
    assert written_by_pmtimeline("{not json") is None
    assert written_by_pmtimeline("[1, 2]") is None


# -- issue 17 item 9: the year references cost the files, not their square ------------------------------


def test_median_without_a_file_equals_the_median_of_the_other_files_times() -> None:
    import numpy as np

    from pmtimeline.connectors.inputs import _median_without
    from pmtimeline.connectors.time_normalize import reference_from_times

    rng = np.random.default_rng(7)
    for _ in range(200):
        pool = np.sort(rng.integers(0, 50, size=int(rng.integers(1, 30))) * 10**9)
        own = np.sort(rng.choice(pool, size=int(rng.integers(0, len(pool) + 1)), replace=False))
        rest = list(pool)
        for value in own:
            rest.remove(value)
        expected = reference_from_times(pd.Timestamp(int(v)) for v in rest)
        assert _median_without(pool, own) == expected


def test_year_less_files_each_take_the_median_of_the_other_files(tmp_path: Path) -> None:
    # Many files: several year-less syslog files beside log4j files of 2023 and 2025; each syslog
    # file's year comes from the others' full timestamps, as one file alone gets it.
    for i in range(30):
        year = 2023 if i % 3 else 2025
        (tmp_path / f"app{i:02d}.log").write_text(f"{year}-06-14 10:00:0{i % 10},000 INFO [main] Svc - tick {i}\n")
    for i in range(5):
        (tmp_path / f"auth{i}.log").write_text(SYSLOG)
    sources = open_inputs([str(tmp_path)], CONFIG)
    years = {s.name: read_source(s)["timestamp"].iloc[0].year for s in sources if "auth" in s.name}
    assert years == {str(tmp_path / f"auth{i}.log"): 2023 for i in range(5)}
