"""Where each time came from, and zones and clock skew found from evidence shared between sources:
end to end through the CLI, on the sample incident and on shapes unlike it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from pmtimeline.cli import cli
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.sources import SourceAccounting
from pmtimeline.time_inference import (
    TimeEvidence,
    account_times,
    apply_estimates,
    duration_text,
    estimate_offsets,
    utc_offset_text,
)

TRUTH: dict[str, Any] = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))


def _build(args: list[str], out: Path) -> tuple[dict[str, Any], str, str]:
    result = CliRunner().invoke(cli, ["build", *args, "-o", str(out), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    incident = json.loads((out / "incident.json").read_text())
    return incident, result.stdout, result.stderr


def _data_quality(out: Path) -> str:
    """The draft's Data quality section, Markdown escapes removed."""
    draft = (out / "postmortem.md").read_text()
    return draft.split("## Data quality", 1)[1].split("\n## ", 1)[0].replace("\\", "")


def _by_name(incident: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(s["name"]).name: s for s in incident["sources"]}


# -- the sample: the ledger is written in local time (UTC+1), nginx carries +0100, JSON carries Z ----


@pytest.fixture(scope="module")
def sample_default(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("default") / "out"
    incident, _, err = _build([str(SAMPLE_LOGS)], out)
    return incident, err, out


@pytest.fixture(scope="module")
def sample_auto(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("auto") / "out"
    incident, _, err = _build([str(SAMPLE_LOGS), "--auto-time"], out)
    return incident, err, out


def test_sample_sources_say_where_their_times_came_from(sample_default: tuple[dict[str, Any], str, Path]) -> None:
    incident, _, out = sample_default
    sources = _by_name(incident)
    events = pd.read_parquet(out / "events.parquet", columns=["source", "tz_assumed"])
    for name, source in sources.items():
        mine = events[events["source"].map(lambda s, n=name: Path(s).name == n)]
        with_offset = int(mine["tz_assumed"].isna().sum())
        assert source["times_with_offset"] == with_offset, name
        assert sum(source["times_in_zone"].values()) == len(mine) - with_offset, name
    assert sources["nginx_access.log"]["time_account"] == ["offset in the data"]
    assert sources["payments-api.jsonl"]["time_account"] == ["offset in the data"]
    assert sources["ledger.log"]["time_account"] == ["zone assumed (--tz default UTC)"]
    syslog = sources["syslog"]["time_account"]
    assert syslog[0] == "zone assumed (--tz default UTC)"
    assert syslog[1] == "year 2024 inferred from other sources of this run"
    # The draft: only the sources without offsets count as assumed, and nginx is not "UTC (assumed)".
    draft = _data_quality(out)
    naive = [n for n, s in sources.items() if s["times_in_zone"]]
    assert len(naive) == 4
    assert f"Time zones were assumed for {len(naive)} source(s)" in draft
    nginx_row = next(line for line in draft.splitlines() if "nginx_access.log" in line and line.startswith("|"))
    assert "offset in the data" in nginx_row
    assert "assumed" not in nginx_row


def test_sample_reports_the_ledger_zone_by_default_and_applies_nothing(
    sample_default: tuple[dict[str, Any], str, Path],
) -> None:
    incident, err, out = sample_default
    (estimate,) = [e for e in incident["time_inference"]["estimates"] if e["kind"] != "agrees"]
    assert Path(estimate["source"]).name == "ledger.log"
    assert estimate["kind"] == "zone"
    assert estimate["zone_offset_s"] == 3600
    assert estimate["method"] == "shared ids"
    assert estimate["evidence"] == 104
    assert 3600 <= estimate["q1_s"] <= estimate["offset_s"] <= estimate["q3_s"] < 3600 + 120
    assert estimate["applied"] is None
    assert incident["time_inference"]["auto_time"] is False
    assert "ledger.log looks like local time UTC+1 (104 shared requests, median offset +1 h 00 m" in err
    assert "--source-tz 'ledger.log=+01:00'" in err
    assert "--auto-time" in err
    # The ledger's 30 s pool timeouts come after the callers gave up: reported, never applied as skew.
    assert "not applied" in err
    assert "ledger.log looks like local time UTC+1 (104 shared requests" in _data_quality(out)
    # Left in UTC, the ledger lands an hour late: the phases still come from the edge, but not all facts.
    events = pd.read_parquet(out / "events.parquet", columns=["source", "timestamp"])
    ledger = events[events["source"].str.endswith("ledger.log")]["timestamp"]
    assert ledger.min() >= pd.Timestamp("2024-03-12T09:00:00Z")


def test_sample_builds_right_with_auto_time_and_no_source_tz(sample_auto: tuple[dict[str, Any], str, Path]) -> None:
    incident, err, out = sample_auto
    for phase in PHASES:
        got, want = pd.Timestamp(incident["phases"][phase]), pd.Timestamp(TRUTH["phases"][phase])
        assert abs(got - want) <= pd.Timedelta("1min"), (phase, got, want)
    metrics, truth = incident["metrics"], TRUTH["metrics"]
    for key in ("requests_total", "requests_failed", "affected_users", "error_events"):
        assert metrics[key] == truth[key], key
    assert set(truth["affected_services"]) <= set(metrics["affected_services"])
    (estimate,) = [e for e in incident["time_inference"]["estimates"] if e["kind"] != "agrees"]
    assert estimate["applied"].startswith("read in fixed offset +01:00")
    assert "daylight-saving changes not modelled" in estimate["applied"]
    assert "[applied: read in fixed offset +01:00" in err
    ledger = _by_name(incident)["ledger.log"]
    assert ledger["zone_origin"] == "--auto-time"
    assert ledger["time_account"] == ["zone found from shared evidence (--auto-time): fixed offset +01:00"]
    # The events written are those of the second read: the ledger in UTC+1, as with --source-tz.
    events = pd.read_parquet(out / "events.parquet", columns=["source", "timestamp", "tz_assumed"])
    mine = events[events["source"].str.endswith("ledger.log")]
    assert set(mine["tz_assumed"].dropna()) == {"+01:00"}
    assert mine["timestamp"].min() < pd.Timestamp("2024-03-12T08:01:00Z")


def test_a_given_zone_is_given_not_assumed(tmp_path: Path) -> None:
    zone = next(z for g, z in TRUTH["source_tz"] if g == "*ledger.log")
    incident, _, err = _build([str(SAMPLE_LOGS), f"--source-tz=ledger/*={zone}"], tmp_path / "out")
    ledger = _by_name(incident)["ledger.log"]
    assert ledger["time_account"] == [f"zone given (--source-tz): {zone}"]
    assert "looks like local time" not in err
    draft = _data_quality(tmp_path / "out")
    assert "Time zones were given (--source-tz)" in draft
    assert "Time zones were assumed for 3 source(s)" in draft


# -- shapes unlike the sample ------------------------------------------------------------------------


def _edge_and_app(
    folder: Path, *, app_shift: pd.Timedelta, start: str = "2024-06-01T10:00:00Z", n: int = 200, app_zone: str = "UTC"
) -> None:
    """An edge writing ISO times with Z and a request id; an app writing naive times (in ``app_zone``,
    its clock off by ``app_shift``) for the same requests, 200 ms after the edge saw them."""
    rng = np.random.default_rng(7)
    times = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, 3 * 3600, n)), unit="s")
    ids = [f"{rng.integers(1 << 62):016x}" for _ in range(n)]
    edge = [
        json.dumps({"@timestamp": t.isoformat().replace("+00:00", "Z"), "message": "GET /x", "request_id": i})
        for t, i in zip(times, ids, strict=True)
    ]
    (folder / "edge.jsonl").write_text("\n".join(edge) + "\n")
    local = (times + pd.Timedelta("200ms") + app_shift).tz_convert(app_zone).tz_localize(None)
    app = [
        f'time="{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}" level=info msg="handled" request_id={i}'
        for t, i in zip(local, ids, strict=True)
    ]
    (folder / "app.log").write_text("\n".join(app) + "\n")


def test_a_host_whose_clock_is_90_s_behind_is_found_and_corrected(tmp_path: Path) -> None:
    _edge_and_app(tmp_path, app_shift=pd.Timedelta("-90s"))
    incident, _, err = _build([str(tmp_path), "--auto-time"], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert estimate["kind"] == "skew"
    assert estimate["evidence"] == 200
    assert abs(estimate["skew_s"] + 90) < 1
    assert estimate["zone_offset_s"] is None
    assert "app.log's clock looks behind by 1 m 30 s (200 shared requests" in err
    assert estimate["applied"].startswith("shifted by +1 m 30 s")
    events = pd.read_parquet(tmp_path / "out" / "events.parquet", columns=["source", "timestamp", "request_id"])
    app = events[events["source"].str.endswith("app.log")].set_index("request_id")["timestamp"]
    edge = events[events["source"].str.endswith("edge.jsonl")].set_index("request_id")["timestamp"]
    gap = (app - edge.reindex(app.index)).dt.total_seconds()
    assert gap.between(0, 1).all()


def test_a_host_90_s_ahead_is_reported_but_not_applied(tmp_path: Path) -> None:
    _edge_and_app(tmp_path, app_shift=pd.Timedelta("90s"))
    incident, _, err = _build([str(tmp_path), "--auto-time"], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    # Lines after the requests ended elsewhere: a clock ahead, or work that went on: the ids cannot tell.
    assert estimate["kind"] == "late"
    assert estimate["applied"] is None
    assert "the shared requests cannot tell" in err


def test_a_source_a_year_away_is_no_zone(tmp_path: Path) -> None:
    _edge_and_app(tmp_path, app_shift=pd.Timedelta(days=366))
    incident, _, err = _build([str(tmp_path), "--auto-time"], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert estimate["kind"] == "far"
    assert estimate["applied"] is None
    assert "more than any zone; a wrong year or date?" in err


def test_local_time_half_hour_zone_is_named(tmp_path: Path) -> None:
    _edge_and_app(tmp_path, app_shift=pd.Timedelta(0), app_zone="Asia/Kolkata")
    incident, _, err = _build([str(tmp_path)], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert estimate["kind"] == "zone"
    assert estimate["zone_offset_s"] == 5 * 3600 + 1800
    assert "app.log looks like local time UTC+5:30" in err
    assert "--source-tz 'app.log=+05:30'" in err


def _without_ids(app: Path) -> None:
    app.write_text("".join(line.split(" request_id=")[0] + "\n" for line in app.read_text().splitlines()))


def test_shared_clients_alone_find_a_zone(tmp_path: Path) -> None:
    # No id anywhere: the edge and the app name the same clients, the app in local time UTC+2.
    rng = np.random.default_rng(3)
    times = pd.Timestamp("2024-06-01T10:00:00Z") + pd.to_timedelta(np.sort(rng.uniform(0, 7200, 60)), unit="s")
    clients = [f"198.51.100.{i}" for i in range(60)]
    edge = [
        json.dumps({"@timestamp": t.isoformat().replace("+00:00", "Z"), "message": "GET /", "client.ip": c})
        for t, c in zip(times, clients, strict=True)
    ]
    (tmp_path / "edge.jsonl").write_text("\n".join(edge) + "\n")
    local = (times + pd.Timedelta("2h") + pd.Timedelta("300ms")).tz_localize(None)
    app = [
        f'time="{t:%Y-%m-%dT%H:%M:%S}" level=info msg="hello" client_ip={c}'
        for t, c in zip(local, clients, strict=True)
    ]
    (tmp_path / "app.log").write_text("\n".join(app) + "\n")
    incident, _, err = _build([str(tmp_path)], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert (estimate["method"], estimate["kind"], estimate["zone_offset_s"]) == (
        "shared users or clients",
        "zone",
        7200,
    )
    assert estimate["evidence"] == 60
    assert "app.log looks like local time UTC+2 (60 shared users or clients" in err


def test_rate_curves_alone_find_a_zone(tmp_path: Path) -> None:
    # No id in the app's lines, but the same bursts of events three hours apart.
    _edge_and_app(tmp_path, app_shift=pd.Timedelta(0), app_zone="Etc/GMT-3")
    _without_ids(tmp_path / "app.log")
    incident, _, err = _build([str(tmp_path)], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert (estimate["method"], estimate["kind"], estimate["zone_offset_s"]) == ("rate curves", "zone", 3 * 3600)
    assert estimate["correlation"] > 0.5
    assert "200 events in rate curves" in err


def test_no_shared_evidence_claims_nothing(tmp_path: Path) -> None:
    _edge_and_app(tmp_path, app_shift=pd.Timedelta("3h"))
    # The app's lines name no request, and come at times of their own: nothing ties the sources.
    rng = np.random.default_rng(99)
    times = pd.Timestamp("2024-06-01T13:00:00") + pd.to_timedelta(np.sort(rng.uniform(0, 3 * 3600, 200)), unit="s")
    lines = [f'time="{t:%Y-%m-%dT%H:%M:%S}" level=info msg="tick"' for t in times]
    (tmp_path / "app.log").write_text("\n".join(lines) + "\n")
    incident, _, err = _build([str(tmp_path), "--auto-time"], tmp_path / "out")
    assert incident["time_inference"]["estimates"] == []
    assert "looks like" not in err
    assert "clock" not in err
    assert _by_name(incident)["app.log"]["time_account"] == ["zone assumed (--tz default UTC)"]


def test_dst_ambiguous_local_hours_are_named_not_fixed(tmp_path: Path) -> None:
    # Europe/Amsterdam leaves summer time at 01:00 UTC on 27 October 2024: 02:00-03:00 local happens twice.
    _edge_and_app(tmp_path, app_shift=pd.Timedelta(0), start="2024-10-26T23:30:00Z", app_zone="Europe/Amsterdam")
    incident, _, err = _build([str(tmp_path), "--auto-time"], tmp_path / "out")
    (estimate,) = incident["time_inference"]["estimates"]
    assert estimate["kind"] == "dst"
    assert estimate["applied"] is None
    assert "daylight-saving change" in err
    assert "--source-tz 'app.log=ZONE'" in err
    # With the zone named, the repeated hour is resolved by line order and the sources agree.
    given, _, err = _build([str(tmp_path), "--source-tz=app.log=Europe/Amsterdam"], tmp_path / "given")
    assert [e["kind"] for e in given["time_inference"]["estimates"]] == ["agrees"]
    assert "looks like" not in err


def test_a_source_mixing_offsets_and_naive_times_gives_counts(tmp_path: Path) -> None:
    lines = [
        json.dumps({"@timestamp": "2024-06-01T10:00:00Z", "message": "a"}),
        json.dumps({"@timestamp": "2024-06-01T10:00:01", "message": "b"}),
        json.dumps({"@timestamp": "2024-06-01T10:00:02", "message": "c"}),
    ]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    incident, _, _ = _build([str(tmp_path / "mixed.jsonl")], tmp_path / "out")
    (source,) = incident["sources"]
    assert source["time_account"] == ["offset in the data: 1 events", "zone assumed (--tz default UTC): 2 events"]


# -- the pure functions -------------------------------------------------------------------------------


def test_texts() -> None:
    assert duration_text(3602.4) == "+1 h 00 m 02 s"
    assert duration_text(-90) == "-1 m 30 s"
    assert utc_offset_text(-(3 * 3600 + 2700)) == "UTC-3:45"


def test_estimates_are_pure_and_apply_as_config() -> None:
    times = pd.date_range("2024-06-01T10:00Z", periods=50, freq="37s")
    frame = pd.DataFrame(
        {
            "timestamp": list(times) + list(times + pd.Timedelta("2h")),
            "source": ["ref"] * 50 + ["s"] * 50,
            "tz_assumed": [None] * 50 + ["UTC"] * 50,
            "year_inferred": [False] * 100,
            "trace_id": [f"t{i}" for i in range(50)] * 2,
            "request_id": [None] * 100,
            "user": [None] * 100,
            "client_ip": [None] * 100,
            "level": ["info"] * 100,
            "http_status": pd.array([None] * 100, dtype="Int64"),
        }
    ).astype({"source": "string[pyarrow]", "tz_assumed": "string[pyarrow]", "trace_id": "string[pyarrow]"})
    evidence = TimeEvidence()
    evidence.add(frame.iloc[:60])
    evidence.add(frame.iloc[60:])
    (estimate,) = estimate_offsets(evidence)
    assert (estimate.kind, estimate.zone_offset_s, estimate.evidence) == ("zone", 7200, 50)
    config, (applied,) = apply_estimates(TimelineConfig(), [estimate])
    assert config.source_tz == (("s", "+02:00"),)
    assert applied.applied is not None
    (acc,) = account_times([SourceAccounting(name="s", time_zone="UTC")], evidence, TimelineConfig())
    assert acc.times_in_zone == {"UTC": 50}
    assert acc.zone_origin == "--tz"


def test_evidence_of_one_chunk_holding_two_sources_is_that_of_each_alone(tmp_path: Path) -> None:
    """The pipeline gathers small chunks (many one-line files) into one: a chunk holding a source of
    naive times (a zone assumed) and one carrying offsets (no zone) gives each its own evidence."""
    _edge_and_app(tmp_path, app_shift=pd.Timedelta("-90s"), n=40)
    from pmtimeline.api import open_sources
    from pmtimeline.pipeline import stream_chunks

    config = TimelineConfig()
    chunks = [chunk for _source, chunk in stream_chunks(open_sources([tmp_path], config), config)]
    assert len(chunks) == 2
    assert {bool(c["tz_assumed"].isna().all()) for c in chunks} == {True, False}
    apart, together = TimeEvidence(), TimeEvidence()
    for chunk in chunks:
        apart.add(chunk)
    together.add(pd.concat(chunks, ignore_index=True))

    def counts(evidence: TimeEvidence) -> list[tuple[str, str, int]]:
        merged = evidence.merged().counts[0]
        return sorted(zip(merged["source"], merged["zone"], merged["events"].astype(int), strict=True))

    assert counts(together) == counts(apart)
    assert {zone for _, zone, _ in counts(together)} == {"", "UTC"}
