"""The benchmark scripts keep working: a tiny corpus, and run_bench.py timing ingest and build on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run(
        [sys.executable, str(BENCH / "generate_corpus.py"), "--lines", "6000", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_generator_writes_the_requested_lines_in_five_formats(tiny_corpus: Path) -> None:
    manifest = json.loads((tiny_corpus / ".manifest.json").read_text())
    files = sorted(p for p in tiny_corpus.iterdir() if not p.name.startswith("."))
    assert [p.name for p in files] == ["access.log", "app.jsonl", "service.log", "syslog", "worker.log"]
    assert sum(p.read_bytes().count(b"\n") for p in files) == 6000
    assert manifest  # the manifest records the corpus; its content is checked by the generator's own run


def test_run_bench_times_ingest_and_build_and_reports_the_ratios(tiny_corpus: Path, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run_bench.py"),
            "--corpus",
            str(tiny_corpus),
            "--workers",
            "2",
            "--steps",
            "wc,ingest,window,build",
            "--json",
            str(results),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "6,000 lines" in proc.stdout
    assert "build adds" in proc.stdout
    data = json.loads(results.read_text())
    assert data["lines"] == 6000
    names = [r["name"] for r in data["results"]]
    assert names == ["wc -l", "pmtimeline ingest", "ingest 10-min window", "pmtimeline build"]
    assert "window / ingest:" in proc.stdout
    assert all(r["exit_code"] == 0 and r["seconds"] > 0 for r in data["results"])
    assert 0 < data["html_mb"] < 5
    # The outputs are real: the event table holds the corpus's events, the build found the incident.
    import pandas as pd

    events = pd.read_parquet(out / "events.parquet")
    assert 4000 < len(events) <= 6000
    incident = json.loads((out / "out" / "incident.json").read_text())
    assert incident["phases"]["onset"] is not None


def test_run_bench_repeats_and_reports_medians(tiny_corpus: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run_bench.py"), "--corpus", str(tiny_corpus), "--steps", "wc", "--repeat", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(medians of 3 runs, steps alternated)" in proc.stdout
    assert proc.stdout.count("wc -l ") == 1


def _engine_floor(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(BENCH / "engine_floor.py"), *args, "--skip-lnav"]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_engine_floor_reads_every_line_with_the_bare_engines(tiny_corpus: Path) -> None:
    proc = _engine_floor("--corpus", str(tiny_corpus), "--runs", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "6,000 lines" in proc.stdout
    # One row per line: the floor parses every line of the corpus, stack-trace lines included.
    assert "6,000 rows" in proc.stdout
    assert "floor:" in proc.stdout
    assert "lines/s" in proc.stdout


def test_engine_floor_refuses_a_folder_that_is_not_a_corpus(tmp_path: Path) -> None:
    (tmp_path / "other.log").write_text("x\n")
    proc = _engine_floor("--corpus", str(tmp_path))
    assert proc.returncode == 2
    assert "is not a benchmark corpus" in proc.stderr


def test_analysis_cost_times_ingest_against_ingest_plus_analysis(tiny_corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "analysis_cost.py"), "--corpus", str(tiny_corpus), "--rounds", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("round ")]
    assert len(rounds) == 2
    for line in rounds:
        ingest_s, analysis_s = (float(part.split()[-2]) for part in line.split(", ")[:2])
        assert ingest_s > 0
        assert analysis_s > 0
    assert "medians (1 worker(s))" in proc.stdout
    assert "the analysis adds" in proc.stdout.splitlines()[-1]
    # The one-step mode writes what issue 4's build wrote: the event table and incident.json.
    script = str(BENCH / "analysis_cost.py")
    one = subprocess.run(
        [sys.executable, script, "--corpus", str(tiny_corpus), "--one", "analysis", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    import pandas as pd

    assert 4000 < len(pd.read_parquet(tmp_path / "events.parquet")) <= 6000
    assert json.loads((tmp_path / "incident.json").read_text())["phases"]["onset"] is not None


def test_analysis_cost_refuses_a_missing_corpus(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "analysis_cost.py"), "--corpus", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_adversarial_times_each_shape_against_its_ordinary_twin(tmp_path: Path) -> None:
    # Tiny: two shapes at 1/500 of their size (40 files against one; 400 lines naming 200 users).
    results = tmp_path / "adversarial.json"
    argv = [sys.executable, str(BENCH / "adversarial.py"), "--scale", "0.002", "--shapes", "files,users"]
    argv += ["--command", "ingest", "--work", str(tmp_path / "work"), "--json", str(results)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ratio" in proc.stdout
    assert "within 2x and under 1 GB:" in proc.stdout.splitlines()[-1]
    rows = {row["shape"]: row for row in json.loads(results.read_text())["rows"]}
    assert set(rows) == {"files", "users"}
    # The shapes are what they claim: 40 one-line files; both variants hold the same lines.
    adversarial = tmp_path / "work" / "files" / "adversarial" / "logs"
    assert len(list(adversarial.rglob("*.jsonl"))) == rows["files"]["lines"] == 40
    ordinary = tmp_path / "work" / "files" / "ordinary" / "logs"
    assert sum(p.read_bytes().count(b"\n") for p in ordinary.rglob("*.jsonl")) == 40
    import pandas as pd

    for shape in ("files", "users"):
        assert rows[shape]["exit_code"] == rows[shape]["baseline_exit_code"] == 0
        assert rows[shape]["seconds"] > 0
        assert rows[shape]["peak_rss_mb"] > 0
        events = pd.read_parquet(tmp_path / "work" / shape / "adversarial" / "out" / "events.parquet")
        assert len(events) == rows[shape]["lines"]
    users = pd.read_parquet(tmp_path / "work" / "users" / "adversarial" / "out" / "events.parquet")["user"]
    assert users.nunique() == 200


def test_read_lines_times_both_readers_and_compares_them(tiny_corpus: Path) -> None:
    script = str(BENCH / "read_lines.py")
    for args in (["--repeat", "1"], ["--repeat", "1", "--reader", "python"], ["--compare"]):
        proc = subprocess.run(
            [sys.executable, script, "--corpus", str(tiny_corpus), *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "6,000 lines" in proc.stdout
    assert "identical block by block" in proc.stdout
