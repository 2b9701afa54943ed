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
ZONE = [f"--source-tz={glob}={zone}" for glob, zone in TRUTH["source_tz"]]


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
