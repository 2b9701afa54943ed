"""Timeline: every method on the sample incident (sample_logs/, facts in sample_logs/truth.json)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SAMPLE_LOGS

import pmtimeline
from pmtimeline.config import PHASES
from pmtimeline.errors import ConfigError
from pmtimeline.timeline import (
    CHART_FILE,
    DATA_DIR,
    EVENTS_FILE,
    INCIDENT_FILE,
    OVERRIDES_FILE,
    POSTMORTEM_FILE,
    SavedOutputs,
    Timeline,
    preload_outputs,
)

# Every test works on the analyzed sample incident (loaded once per module).
pytestmark = pytest.mark.slow

TRUTH = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
BUCKET = pd.Timedelta("1min")
#: Values of the sample that redaction must hide in every shared output (sample_logs/README.md).
SECRETS = ("4111 1111 1111 1111", "4111111111111111", "hunter2")
EDGE = "edge/nginx_access.log"


def sample_inputs() -> list[Path]:
    """The log folders of the sample (not its README.md and truth.json)."""
    return sorted(p for p in SAMPLE_LOGS.iterdir() if p.is_dir())


def truth_time(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return pmtimeline.load(sample_inputs(), source_tz=TRUTH["source_tz"], title=TRUTH["title"])


@pytest.fixture(scope="module")
def saved(timeline: Timeline, tmp_path_factory: pytest.TempPathFactory) -> SavedOutputs:
    return timeline.save(tmp_path_factory.mktemp("out") / "build", images=False)


def edge_requests(tl: Timeline, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The edge's requests in [start, end], counted from the event table itself."""
    ev = tl.events
    mask = ev["source"].str.endswith(EDGE).fillna(False) & (ev["timestamp"] >= start) & (ev["timestamp"] <= end)
    return ev.loc[mask.to_numpy(dtype=bool)]


# -- what was read ------------------------------------------------------------------------------------


def test_events_are_time_ordered_and_every_source_is_accounted(timeline: Timeline) -> None:
    ev = timeline.events
    assert ev["timestamp"].is_monotonic_increasing
    src = timeline.sources
    assert set(src.columns) >= {"name", "format", "lines_read", "events", "rejected", "time_zone"}
    names = [Path(name).relative_to(SAMPLE_LOGS).as_posix() for name in src["name"]]
    read = dict(zip(names, src["lines_read"].astype(int), strict=True))
    assert read == {name: facts["lines"] for name, facts in TRUTH["files"].items()}
    assert int(src["lines_read"].sum()) == TRUTH["total_lines"]
    ledger = src.loc[src["name"].str.endswith("ledger.log")]
    assert ledger["time_zone"].tolist() == ["Europe/Amsterdam"]


def test_phases_match_the_truth_within_one_bucket(timeline: Timeline) -> None:
    for phase in PHASES:
        found = timeline.incident.phase(phase)
        assert found is not None, phase
        assert abs(found - truth_time(TRUTH["phases"][phase])) <= BUCKET, phase


def test_incident_is_a_dataclass_with_a_json_form(timeline: Timeline) -> None:
    inc = timeline.incident
    assert dataclasses.is_dataclass(inc)
    doc = inc.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["title"] == TRUTH["title"]
    assert doc["metrics"]["requests_total"] == TRUTH["metrics"]["requests_total"]
    assert doc["metrics"]["requests_failed"] == TRUTH["metrics"]["requests_failed"]


def test_intervals_hold_the_detection_alert(timeline: Timeline) -> None:
    intervals = timeline.intervals
    fired = truth_time(TRUTH["detection_alert"]["fired"])
    high = intervals.loc[intervals["alert_name"] == TRUTH["detection_alert"]["name"]]
    assert (high["fired"] == fired).any()


# -- exploring ---------------------------------------------------------------------------------------


def test_around_returns_exactly_the_window(timeline: Timeline) -> None:
    detected = truth_time(TRUTH["phases"]["detected"])
    near = timeline.around(TRUTH["phases"]["detected"], minutes=2)
    lo, hi = detected - pd.Timedelta(minutes=2), detected + pd.Timedelta(minutes=2)
    assert len(near) > 0
    assert near["timestamp"].between(lo, hi).all()
    ev = timeline.events
    assert len(near) == int(((ev["timestamp"] >= lo) & (ev["timestamp"] <= hi)).sum())
    assert (near["alert_name"] == TRUTH["detection_alert"]["name"]).any()
    # A datetime without zone is read in the run's zone (UTC here), like ISO text.
    naive = timeline.around(detected.tz_localize(None).to_pydatetime(), minutes=2)
    assert len(naive) == len(near)
    with pytest.raises(ConfigError):
        timeline.around("yesterday-ish")
    with pytest.raises(ConfigError):
        timeline.around(detected, minutes=0)


def test_for_trace_follows_a_failing_request_across_services(timeline: Timeline) -> None:
    traces = timeline.traces(errors_only=True)
    assert traces["error"].all()
    ids_by_service = timeline.events.dropna(subset=["service"]).groupby("service")["trace_id"].count()
    if (ids_by_service > 0).sum() < 2:
        # sample_logs/README.md: nginx's trailing request id is payments-api's trace id and
        # ledger-service's Sleuth trace id; until the readers extract those, only one service has ids.
        pytest.xfail(f"trace ids are read from one service only: {ids_by_service[ids_by_service > 0].to_dict()}")
    spanning = traces.loc[traces["services"].map(len) >= 2]
    assert len(spanning) > 0, "no failing request carries its id into a second service"
    trace_id = str(spanning["correlation_id"].iloc[0])
    path = timeline.for_trace(trace_id)
    assert path["timestamp"].is_monotonic_increasing
    assert path["service"].dropna().nunique() >= 2
    assert ((path["trace_id"] == trace_id) | (path["request_id"] == trace_id)).any()
    assert timeline.for_trace("no-such-request-id").empty
    with pytest.raises(ConfigError):
        timeline.for_trace("  ")


def test_templates_mark_the_new_error_templates(timeline: Timeline) -> None:
    tmpl = timeline.templates()
    assert list(tmpl.columns) == ["template", "count", "before", "during", "errors", "first_seen", "new"]
    new = tmpl.loc[tmpl["new"]]
    assert len(new) > 0
    assert (new["before"] == 0).all()
    assert (new["errors"] > 0).all()
    onset = timeline.incident.phase("onset")
    assert onset is not None
    assert (new["first_seen"] >= onset).all()
    # The incident's own failure is new; the FX provider failed before onset too, so it is not.
    assert new["template"].str.contains("could not obtain a database connection").any()
    fx = tmpl.loc[tmpl["template"].str.contains("FX rate refresh failed")]
    assert len(fx) > 0
    assert not fx["new"].any()
    assert (fx["before"] > 0).all()
    # Ordinary successful traffic during the incident is never a new error template.
    assert not tmpl.loc[tmpl["errors"] == 0, "new"].any()
    assert tmpl["count"].sum() <= len(timeline.events)


# -- overriding phases ----------------------------------------------------------------------------------


def test_with_phases_moves_every_duration(timeline: Timeline) -> None:
    onset = truth_time(TRUTH["phases"]["onset"])
    later = timeline.with_phases(detected=onset + pd.Timedelta(minutes=5))
    assert later is not timeline
    assert later.incident.metrics.time_to_detect_s == pytest.approx(300.0)
    assert "detected" in later.incident.phase_overridden
    assert timeline.incident.metrics.time_to_detect_s == pytest.approx(TRUTH["metrics"]["time_to_detect_s"], abs=60)
    mitigated = later.with_phases(mitigated="2024-03-12T09:20:00Z")
    mitigated_at = pd.Timestamp("2024-03-12T09:20:00Z")
    assert mitigated.incident.metrics.time_to_mitigate_s == pytest.approx((mitigated_at - onset).total_seconds())
    assert mitigated.incident.metrics.time_to_detect_s == pytest.approx(300.0)  # earlier override kept
    back = mitigated.with_phases(detected=None)
    assert "detected" not in back.incident.phase_overridden
    assert back.incident.phase("detected") == timeline.incident.phase("detected")
    with pytest.raises(ConfigError, match="unknown phase"):
        timeline.with_phases(started="2024-03-12T09:00:00Z")


def test_with_phases_onset_changes_the_impact_counts(timeline: Timeline) -> None:
    # Later, but still before the detection (a detection before onset would not be one).
    new_onset = truth_time(TRUTH["phases"]["onset"]) + pd.Timedelta(minutes=2)
    moved = timeline.with_phases(onset=new_onset)
    recovered = moved.incident.phase("recovered")
    detected = moved.incident.phase("detected")
    assert recovered is not None
    assert detected is not None
    assert moved.incident.metrics.time_to_detect_s == pytest.approx((detected - new_onset).total_seconds())
    assert moved.incident.metrics.time_to_recover_s == pytest.approx((recovered - new_onset).total_seconds())
    requests = edge_requests(timeline, new_onset, recovered)
    assert moved.incident.metrics.requests_total == len(requests)
    assert moved.incident.metrics.requests_failed == int((requests["http_status"] >= 500).sum())
    assert moved.incident.metrics.requests_total < (timeline.incident.metrics.requests_total or 0)
    # The draft follows the override.
    assert "08:53:12" in moved.postmortem()


def test_with_title(timeline: Timeline) -> None:
    retitled = timeline.with_title("Payments down")
    assert retitled.incident.title == "Payments down"
    assert retitled.config.title == "Payments down"
    assert timeline.incident.title == TRUTH["title"]


# -- shared outputs: redacted by default ----------------------------------------------------------------


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_the_logs_hold_the_secrets_that_outputs_must_hide(timeline: Timeline) -> None:
    messages = "\n".join(timeline.events["message"].dropna())
    assert "4111 1111 1111 1111" in messages
    assert "hunter2" in messages


def test_postmortem_chart_and_exports_are_redacted(timeline: Timeline) -> None:
    draft = timeline.postmortem()
    assert draft.startswith("#")
    assert "connections; payments fail until rollback" in draft  # the title (Markdown-escaped)
    _no_secret(draft)
    fig = timeline.chart()
    assert len(fig.data) > 0
    _no_secret(fig.to_json())
    for fmt in ("csv", "jsonl", "timesketch-jsonl"):
        _no_secret(timeline.export(fmt).decode("utf-8"))
    unredacted = dataclasses.replace(timeline, config=dataclasses.replace(timeline.config, redact=False))
    assert "hunter2" in unredacted.export("csv").decode("utf-8")


def test_save_writes_every_file_of_build(saved: SavedOutputs) -> None:
    out = saved.outdir
    names = {p.relative_to(out).as_posix() for p in saved.written}
    expected = {EVENTS_FILE, INCIDENT_FILE, POSTMORTEM_FILE, CHART_FILE, OVERRIDES_FILE}
    expected |= {f"{DATA_DIR}/{n}" for n in ("notable.parquet", "counts.parquet", "latency.parquet", "actors.parquet")}
    expected |= {f"{DATA_DIR}/settings.json"}
    assert expected <= names
    assert all((out / n).stat().st_size > 0 for n in expected)


def test_saved_report_is_what_the_methods_give(timeline: Timeline, saved: SavedOutputs) -> None:
    # save() makes the redacted incident, the alert intervals and the chart once for the draft,
    # the chart and incident.json; each file holds what the public method alone gives.
    from plotly.io.json import to_json_plotly

    out = saved.outdir
    assert (out / POSTMORTEM_FILE).read_text(encoding="utf-8") == timeline.postmortem()
    assert (out / INCIDENT_FILE).read_text(encoding="utf-8") == timeline.shared_incident().to_json()
    data, layout = newplot_arguments((out / CHART_FILE).read_text(encoding="utf-8"))
    figure = timeline.chart().to_dict()  # validated by plotly.py, written by plotly.py
    assert data == json.loads(to_json_plotly(figure["data"]))
    assert layout == json.loads(to_json_plotly(figure["layout"]))


def newplot_arguments(page: str) -> tuple[Any, Any]:
    """The figure's data and layout as a timeline.html page passes them to ``Plotly.newPlot``."""
    decoder = json.JSONDecoder()
    at = page.index('"', page.index("Plotly.newPlot(")) + 1
    at = page.index('"', at) + 1  # past the div id
    data, at = decoder.raw_decode(page, page.index("[", at))
    layout, _ = decoder.raw_decode(page, page.index("{", at))
    return data, layout


def _saved_text(out: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(out.rglob("*")):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            yield path.name, frame.astype(str).to_csv(index=False)
        elif path.is_file():
            yield path.name, path.read_text(encoding="utf-8", errors="replace")


def test_saved_files_never_hold_the_secrets(saved: SavedOutputs) -> None:
    seen = dict(_saved_text(saved.outdir))
    assert EVENTS_FILE in seen
    assert POSTMORTEM_FILE in seen
    for name, text in seen.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {name}"


def test_open_round_trips_the_saved_outputs(timeline: Timeline, saved: SavedOutputs) -> None:
    reopened = Timeline.open(saved.outdir)
    assert reopened.incident.phases == timeline.incident.phases
    assert reopened.incident.metrics == timeline.incident.metrics
    assert reopened.incident.title == timeline.incident.title
    assert len(reopened.events) == len(timeline.events)
    assert reopened.postmortem() == timeline.postmortem()
    same = pmtimeline.open_outputs(saved.outdir)
    assert same.incident.phases == timeline.incident.phases


def test_incident_toml_overrides_apply_on_open(timeline: Timeline, saved: SavedOutputs, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    timeline.save(out, images=False)
    template = (out / OVERRIDES_FILE).read_text(encoding="utf-8")
    assert "# detected" in template  # the detected phases are written commented out, to edit
    onset = truth_time(TRUTH["phases"]["onset"])
    (out / OVERRIDES_FILE).write_text(
        'title = "Payments outage"\n[phases]\ndetected = "2024-03-12T08:56:12Z"\n', encoding="utf-8"
    )
    reopened = Timeline.open(out)
    assert reopened.incident.title == "Payments outage"
    assert reopened.incident.phase("detected") == pd.Timestamp("2024-03-12T08:56:12Z")
    assert reopened.incident.metrics.time_to_detect_s == pytest.approx(
        (pd.Timestamp("2024-03-12T08:56:12Z") - onset).total_seconds()
    )
    assert "detected" in reopened.incident.phase_overridden
    (out / OVERRIDES_FILE).write_text("[phases]\nstarted = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown phase"):
        Timeline.open(out)


def test_open_refuses_a_directory_that_is_not_an_output(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a pmtimeline output directory"):
        Timeline.open(tmp_path)


# -- notebook display ------------------------------------------------------------------------------------


def test_repr_html_escapes_a_malicious_title(timeline: Timeline) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    shown = timeline.with_title(evil)
    for markup in (shown._repr_html_(), shown.incident._repr_html_()):
        assert "<script>" not in markup
        assert "<img" not in markup
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    page = shown._repr_html_()
    for phase in PHASES:
        assert phase in page
    assert f"{len(timeline.events):,} events" in page
    assert "hunter2" not in page


def test_repr_is_one_line(timeline: Timeline) -> None:
    text = repr(timeline)
    assert "\n" not in text
    assert text.startswith("<Timeline")


def test_preload_outputs_compiles_the_draft_template_and_loads_plotlyjs() -> None:
    from pmtimeline.chart import plotlyjs_bundle
    from pmtimeline.postmortem import compile_template, default_template

    thread = preload_outputs()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert thread.daemon
    # What save() asks for next is what the thread made: the same objects, not made again.
    before = compile_template.cache_info().hits
    assert compile_template(default_template()) is compile_template(default_template())
    assert compile_template.cache_info().hits >= before + 2
    assert "plotly" in plotlyjs_bundle()[:300].lower()
