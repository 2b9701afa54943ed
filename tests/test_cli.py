"""The command line, end to end on the bundled sample incident: the facts of sample_logs/truth.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from pmtimeline.cli import cli
from pmtimeline.config import PHASES

TRUTH: dict[str, Any] = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
# The ledger's zone in the form --help shows: relative to the folder passed (the truth's glob is "*ledger.log").
(LEDGER_ZONE,) = (zone for glob, zone in TRUTH["source_tz"] if glob == "*ledger.log")
ZONE = [f"--source-tz=ledger/*={LEDGER_ZONE}"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("build") / "out"
    result = CliRunner().invoke(
        cli,
        ["build", str(SAMPLE_LOGS), *ZONE, "--title", "Payments outage", "-o", str(out), "--no-images"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_build_writes_every_output(built: tuple[Path, str]) -> None:
    out, _ = built
    for name in ("events.parquet", "incident.json", "postmortem.md", "timeline.html", "incident.toml"):
        assert (out / name).stat().st_size > 0, name


def test_build_reproduces_the_true_phases(built: tuple[Path, str]) -> None:
    out, output = built
    incident = json.loads((out / "incident.json").read_text())
    for phase in PHASES:
        got = pd.Timestamp(incident["phases"][phase])
        want = pd.Timestamp(TRUTH["phases"][phase])
        assert abs(got - want) <= pd.Timedelta("1min"), (phase, got, want)
        assert TRUTH["phases"][phase][:16] in output.replace(" ", "T") or phase in output


def test_build_reproduces_the_true_impact(built: tuple[Path, str]) -> None:
    out, _ = built
    metrics = json.loads((out / "incident.json").read_text())["metrics"]
    truth = TRUTH["metrics"]
    assert metrics["requests_total"] == truth["requests_total"]
    assert metrics["requests_failed"] == truth["requests_failed"]
    assert metrics["affected_users"] == truth["affected_users"]
    assert set(truth["affected_services"]) <= set(metrics["affected_services"])


def test_build_names_the_deploy_as_the_likely_cause(built: tuple[Path, str]) -> None:
    out, _ = built
    top = json.loads((out / "incident.json").read_text())["root_cause_candidates"][0]
    assert top["kind"] == TRUTH["root_cause"]["kind"]
    assert top["service"] == TRUTH["root_cause"]["service"]
    assert abs(pd.Timestamp(top["time"]) - pd.Timestamp(TRUTH["root_cause"]["time"])) <= pd.Timedelta("5s")


def test_every_sample_source_balances(built: tuple[Path, str]) -> None:
    out, _ = built
    sources = json.loads((out / "incident.json").read_text())["sources"]
    skipped = {Path(s["name"]).name: s["skipped_reason"] for s in sources if s["skipped_reason"]}
    assert set(skipped) == {"README.md", "truth.json"}
    for s in sources:
        assert s["lines_read"] == s["event_lines"] + s["continuation_lines"] + s["rejected"] + s["outside_window"]
    total = sum(s["lines_read"] for s in sources)
    assert total == TRUTH["total_lines"]


def test_report_regenerates_with_overrides_and_title(built: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    (copy / "incident.toml").write_text('title = "Edited title"\n[phases]\nonset = "2024-03-12T08:50:00Z"\n')
    result = CliRunner().invoke(cli, ["report", str(copy), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    incident = json.loads((copy / "incident.json").read_text())
    assert incident["title"] == "Edited title"
    assert incident["phases"]["onset"] == "2024-03-12T08:50:00Z"
    assert "onset" in incident["phase_overridden"]
    detected = pd.Timestamp(incident["phases"]["detected"])
    assert incident["metrics"]["time_to_detect_s"] == pytest.approx(
        (detected - pd.Timestamp("2024-03-12T08:50:00Z")).total_seconds()
    )
    assert "Edited title" in (copy / "postmortem.md").read_text()


def test_chart_regenerates(built: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = built
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "timeline.html").unlink()
    result = CliRunner().invoke(cli, ["chart", str(copy), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (copy / "timeline.html").stat().st_size > 100_000


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".timesketch.jsonl"])
def test_ingest_writes_the_table(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"events{suffix}"
    result = CliRunner().invoke(
        cli,
        ["ingest", str(SAMPLE_LOGS / "edge"), str(SAMPLE_LOGS / "payments"), "-o", str(target)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "access_combined" in result.output
    assert "json_lines" in result.output
    expected = TRUTH["files"]["edge/nginx_access.log"]["lines"] + TRUTH["files"]["payments/payments-api.jsonl"]["lines"]
    if suffix == ".parquet":
        assert len(pd.read_parquet(target)) == expected
    else:
        lines = target.read_text(encoding="utf-8").count("\n")
        assert lines in (expected, expected + 1)  # CSV has a header


def test_ingest_window_and_rejects(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "2024-03-01 10:00:00,000 ERROR [main] a.B: one\n"
        "garbage without time\n"
        "2024-03-01 11:00:00,000 ERROR [main] a.B: two\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(log),
            "--format",
            "log4j",
            "--end",
            "2024-03-01T10:30:00",
            "-o",
            str(tmp_path / "e.parquet"),
            "--rejects",
            str(rejects),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert list(frame["message"].str[:3]) == ["one"] or len(frame) == 1
    assert rejects.exists()


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(tmp_path / "missing.log"), "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    result = runner.invoke(cli, ["ingest", str(SAMPLE_LOGS / "edge"), "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    result = runner.invoke(cli, ["build", str(SAMPLE_LOGS / "edge"), "--tz", "Mars/Base", "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "unknown time zone" in result.output


def test_formats_lists_the_registry() -> None:
    from pmtimeline.connectors.log_formats import LOG_FORMATS

    result = CliRunner().invoke(cli, ["formats"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in LOG_FORMATS:
        assert name in result.output
    assert "alertmanager" in result.output


def test_sniff_shows_the_format_and_rows() -> None:
    result = CliRunner().invoke(cli, ["sniff", str(SAMPLE_LOGS / "edge" / "nginx_access.log")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "access_combined" in result.output
    assert "2024-03-12" in result.output


def test_build_reads_a_cluster_alongside_files(tmp_path: Path) -> None:
    """The logs in Elasticsearch, the alert payloads as files: one build, the true phases."""
    from esstub import EsStub, load_events

    import pmtimeline

    zones = dict(TRUTH["source_tz"])
    logs = pmtimeline.read_events(
        [str(p) for p in sorted(SAMPLE_LOGS.glob("*/*")) if p.parent.name != "alerts"], source_tz=zones
    )
    with EsStub(emulate_major=8) as stub:
        load_events(stub.url, "logs-bank", logs)
        out = tmp_path / "out"
        result = CliRunner().invoke(
            cli,
            [
                "build",
                str(SAMPLE_LOGS / "alerts"),
                "--es",
                stub.url,
                "--es-index",
                "logs-bank",
                "--es-mode",
                "documents",
                "-o",
                str(out),
                "--no-images",
            ],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    assert "es:logs-bank" in result.output
    incident = json.loads((out / "incident.json").read_text())
    for phase in PHASES:
        assert pd.Timestamp(incident["phases"][phase]) == pd.Timestamp(TRUTH["phases"][phase]), phase
    assert incident["metrics"]["requests_failed"] == TRUTH["metrics"]["requests_failed"]


# -- options that cannot silently miss (issue 16) ------------------------------------------------------


def ingest_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> tuple[pd.DataFrame, Any]:
    """`pmtimeline ingest sample_logs ...` run from the repository, as a user types it."""
    monkeypatch.chdir(SAMPLE_LOGS.parent)
    out = tmp_path / f"events{len(list(tmp_path.iterdir()))}.parquet"
    result = CliRunner().invoke(cli, ["ingest", "sample_logs", *options, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out).sort_values(["source", "line"], ignore_index=True), result


@pytest.fixture(scope="module")
def unzoned(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The sample read with no --source-tz, --offset or --service: every naive time in UTC."""
    out = tmp_path_factory.mktemp("unzoned") / "events.parquet"
    result = CliRunner().invoke(cli, ["ingest", str(SAMPLE_LOGS), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out).sort_values(["source", "line"], ignore_index=True)
    frame["source"] = frame["source"].map(lambda s: Path(s).relative_to(SAMPLE_LOGS).as_posix())
    return frame


@pytest.mark.parametrize("glob", ["ledger/*", "ledger.log", "*ledger.log", "sample_logs/ledger/*", "*/ledger/*.log"])
def test_each_documented_glob_form_puts_the_ledger_in_its_zone(
    glob: str, unzoned: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _ = ingest_sample(tmp_path, monkeypatch, "--source-tz", f"{glob}=Europe/Amsterdam")
    events["source"] = events["source"].map(lambda s: Path(s).relative_to("sample_logs").as_posix())
    assert events["source"].tolist() == unzoned["source"].tolist()
    ledger = (events["source"] == "ledger/ledger.log").to_numpy()
    assert ledger.sum() > 0
    # Amsterdam is UTC+1 in March: the ledger moves one hour earlier than read as UTC, nothing else moves.
    shift = events["timestamp"] - unzoned["timestamp"]
    assert set(shift[ledger]) == {pd.Timedelta(hours=-1)}
    assert set(shift[~ledger].dropna()) == {pd.Timedelta(0)}
    first = (SAMPLE_LOGS / "ledger" / "ledger.log").read_text(encoding="utf-8").splitlines()[0]
    written = pd.Timestamp(first[:23]).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    assert events.loc[ledger, "timestamp"].iloc[0] == written


def test_offset_and_service_globs_match_relative_to_the_folder_given(
    unzoned: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _ = ingest_sample(tmp_path, monkeypatch, "--offset", "hosts/*=-5min", "--service", "edge/*=storefront")
    events["source"] = events["source"].map(lambda s: Path(s).relative_to("sample_logs").as_posix())
    hosts = events["source"].str.startswith("hosts/").to_numpy()
    assert set(events.loc[hosts, "source"]) == {"hosts/syslog", "hosts/syslog.1.gz"}
    shift = events["timestamp"] - unzoned["timestamp"]
    assert set(shift[hosts]) == {pd.Timedelta(minutes=-5)}
    assert set(shift[~hosts].dropna()) == {pd.Timedelta(0)}
    edge = (events["source"] == "edge/nginx_access.log").to_numpy()
    assert set(events.loc[edge, "service"]) == {"storefront"}
    assert "storefront" not in set(events.loc[~edge, "service"].dropna())


@pytest.mark.parametrize(
    "option", ["--source-tz=ledgr/*=Europe/Amsterdam", "--offset=host/*=-5min", "--service=nginx=web"]
)
def test_a_glob_matching_no_source_is_an_error_that_lists_the_sources(
    option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLE_LOGS.parent)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "sample_logs", option, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {option.split('=')[0]} '{option.split('=')[1]}' matches no source")
    for name in TRUTH["files"]:
        assert name in lines[0]
    assert "README.md" not in lines[0]
    assert not out.exists()


def test_sniff_checks_its_globs_against_the_file() -> None:
    path = str(SAMPLE_LOGS / "ledger" / "ledger.log")
    ok = CliRunner().invoke(cli, ["sniff", path, "--source-tz", "ledger.log=Europe/Amsterdam"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "zone:   Europe/Amsterdam" in ok.output
    bad = CliRunner().invoke(cli, ["sniff", path, "--source-tz", "edge/*=Europe/Amsterdam"], catch_exceptions=False)
    assert bad.exit_code == 1
    assert "matches no source" in bad.output
    assert "ledger.log" in bad.output


@pytest.mark.parametrize(
    ("start", "end", "tz"),
    [
        ("2024-03-12T08:50:00Z", "2024-03-12T09:00:00Z", "UTC"),
        ("2024-03-12 09:50+01:00", "2024-03-12T10:00:00.000+0100", "UTC"),
        ("2024-03-12 08:50", "2024-03-12T09:00:00", "UTC"),
        ("2024-03-12 09:50", "2024-03-12T10:00", "Europe/Amsterdam"),
        ("2024-03-12 04:50:00,000", "2024-03-12T05:00", "America/New_York"),
    ],
)
def test_window_forms_agree_and_naive_times_are_said_to_be_read_in_tz(
    start: str, end: str, tz: str, tmp_path: Path
) -> None:
    out = tmp_path / "events.parquet"
    args = ["ingest", str(SAMPLE_LOGS / "edge"), "--start", start, "--end", end, "--tz", tz, "-o", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    times = pd.read_parquet(out)["timestamp"]
    assert times.min() >= pd.Timestamp("2024-03-12T08:50:00Z")
    assert times.max() < pd.Timestamp("2024-03-12T09:00:00Z")
    lines = (SAMPLE_LOGS / "edge" / "nginx_access.log").read_text(encoding="utf-8").splitlines()
    inside = [line for line in lines if "12/Mar/2024:09:50:00" <= line.split("[", 1)[1][:20] < "12/Mar/2024:10:00:00"]
    assert len(times) == len(inside) > 0
    for option, value in (("--start", start), ("--end", end)):
        said = f"{option} {value} read in {tz} (--tz)"
        assert (said in result.stderr) == ("+" not in value and "Z" not in value), said


@pytest.mark.parametrize("value", ["12/03/2024", "Mar 12 08:00", "yesterday", "2024-03-12 8:00", "12.03.2024 08:00"])
@pytest.mark.parametrize("option", ["--start", "--end", "--onset"])
def test_a_time_that_is_not_iso_8601_is_a_one_line_error(option: str, value: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(SAMPLE_LOGS / "edge"), option, value, "-o", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {option}: ")
    assert "is not an ISO 8601 time" in result.output
    assert "YYYY-MM-DD" in result.output
    assert len(result.output.splitlines()) == 1
    assert not out.exists()


def test_a_naive_phase_time_means_the_same_in_onset_and_incident_toml(tmp_path: Path) -> None:
    """--onset, incident.toml given to build, and incident.toml edited before `report`: all read
    a time without zone in --tz (the toml's own tz key, written by build, says which)."""
    inputs = [str(SAMPLE_LOGS / "edge"), str(SAMPLE_LOGS / "alerts")]
    zone = ["--tz", "Europe/Amsterdam", "--no-images"]
    by_option = tmp_path / "by_option"
    result = CliRunner().invoke(
        cli, ["build", *inputs, *zone, "--onset", "2024-03-12 09:51:12", "-o", str(by_option)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "--onset 2024-03-12 09:51:12 read in Europe/Amsterdam (--tz)" in result.stderr
    incident = json.loads((by_option / "incident.json").read_text())
    assert incident["phases"]["onset"] == "2024-03-12T08:51:12Z"
    assert 'tz = "Europe/Amsterdam"' in (by_option / "incident.toml").read_text()

    toml = tmp_path / "given.toml"
    toml.write_text('[phases]\nonset = "2024-03-12 09:51:12"\n', encoding="utf-8")
    by_file = tmp_path / "by_file"
    result = CliRunner().invoke(
        cli, ["build", *inputs, *zone, "--incident-toml", str(toml), "-o", str(by_file)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads((by_file / "incident.json").read_text())["phases"] == incident["phases"]

    # Edited after the build (the written tz line kept), then `report`: the same reading.
    written = (by_option / "incident.toml").read_text()
    (by_option / "incident.toml").write_text(
        written.replace("[phases]", '[phases]\nonset = "2024-03-12T09:52:00"'), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["report", str(by_option), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((by_option / "incident.json").read_text())["phases"]["onset"] == "2024-03-12T08:52:00Z"
    # A toml's own tz wins over --tz; a bad one is refused.
    toml.write_text('tz = "UTC"\n[phases]\nonset = "2024-03-12 08:51:12"\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["build", *inputs, *zone, "--incident-toml", str(toml), "-o", str(by_file)], catch_exceptions=False
    )
    assert json.loads((by_file / "incident.json").read_text())["phases"]["onset"] == "2024-03-12T08:51:12Z"
    toml.write_text('tz = "Mars/Base"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", *inputs, "--incident-toml", str(toml), "-o", str(by_file)])
    assert result.exit_code == 1
    assert "unknown time zone" in result.output
