"""The incident chart: traces and phases, escaping, bounded size, images, and a real headless browser."""

from __future__ import annotations

import copy
import dataclasses
import html as html_lib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pytest
from browser import ARTIFACTS, chromium_path, missing, open_page
from incident_sample import HTML_PAYLOADS, T0, sample_counts, sample_incident, sample_intervals, sample_notable, ts

import pmtimeline.chart as chart
from pmtimeline.chart import figure_html, figure_image, plotlyjs_bundle, timeline_figure
from pmtimeline.config import TimelineConfig
from pmtimeline.errors import OutputError
from pmtimeline.incident import Incident
from pmtimeline.schema import EVENT_DTYPES, empty_counts, empty_events

HOVER_TEMPLATES = {chart._EVENT_HOVER + f"<extra>{name}</extra>" for name, _, _ in chart.LEVEL_GROUPS} | {
    chart._CHANGE_HOVER + "<extra>change</extra>",
    chart._ALERT_HOVER + "<extra>alert</extra>",
    chart._DENSITY_HOVER,
    chart._SIGNAL_HOVER,
}


@pytest.fixture(scope="module")
def figure() -> go.Figure:
    return timeline_figure(
        sample_incident(), sample_notable(), sample_counts(), TimelineConfig(), intervals=sample_intervals()
    )


def trace(fig: go.Figure, name: str) -> Any:
    return next(t for t in fig.data if t.name == name)


def lane_y(fig: go.Figure, lane: str) -> int:
    axis = fig.layout.yaxis
    return int(axis.tickvals[list(axis.ticktext).index(lane)])


def as_times(values: Any) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(values, dtype="float64"), unit="ms", utc=True)


def test_traces_swimlanes_alerts_changes_and_signals(figure: go.Figure) -> None:
    names = [t.name for t in figure.data]
    for expected in ("error", "warning", "info", "changes", "alerts (firing → resolved)", "error rate (%)"):
        assert expected in names
    assert "failed requests per 1 min" in names
    assert sorted(figure.layout.yaxis.ticktext) == ["api-gateway", "db", "payments"]
    # Changes sit in their service's lane at their time.
    changes = trace(figure, "changes")
    assert list(as_times(changes.x)) == [ts("09:58:12"), ts("10:20:05")]
    assert set(np.asarray(changes.y)) == {lane_y(figure, "payments")}
    # Every event of the sample is plotted (it is small), in its lane.
    notable = sample_notable()
    plotted = sum(len(t.x) for t in figure.data if t.meta == "events")
    assert plotted == int((~notable["kind"].isin(["alert", "change"])).sum())
    error = trace(figure, "error")
    assert {row[0] for row in error.customdata} == {"payments", "api-gateway", "db"}


def test_alert_spans_run_from_firing_to_resolution(figure: go.Figure) -> None:
    alerts = trace(figure, "alerts (firing → resolved)")
    x = as_times(alerts.x)
    # Two spans: start, end, gap each.
    assert len(x) == 6
    assert (x[0], x[1]) == (ts("10:09:00"), ts("10:40:00"))
    # The open alert runs to the end of the window.
    assert (x[3], x[4]) == (ts("10:15:00"), ts("11:00:00"))
    y = np.asarray(alerts.y, dtype="float64")
    assert y[0] == pytest.approx(lane_y(figure, "payments") + chart.ALERT_OFFSET)
    assert y[3] == pytest.approx(lane_y(figure, "db") + chart.ALERT_OFFSET)
    assert alerts.customdata[4][1] == "still firing at"
    assert alerts.customdata[0][2] == "alerts.json:3"
    # each end of a span cites the notification that reported it; an open span's end, its firing
    assert alerts.customdata[1][2] == "alerts.json:9"
    assert alerts.customdata[4][2] == "alerts.json:6"


def test_phases_are_shaded_labelled_regions_and_lines(figure: go.Figure) -> None:
    regions = [s for s in figure.layout.shapes if s.type == "rect"]
    assert [s.name for s in regions] == [
        "onset → detected",
        "detected → mitigated",
        "mitigated → recovered",
        "recovered → resolved",
    ]
    assert [pd.Timestamp(s.x0, tz="UTC") for s in regions] == [
        ts("10:00:30"),
        ts("10:09:00"),
        ts("10:20:05"),
        ts("10:24:00"),
    ]
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(lines) == 5
    texts = [a.text for a in figure.layout.annotations]
    for label in ("<b>onset</b> 10:00:30", "<b>detected</b> 10:09:00", "<b>resolved</b> 10:40:00"):
        assert label in texts
    assert "<i>onset → detected</i>" in texts


def test_unrecovered_incident_shades_to_the_end_of_data() -> None:
    incident = sample_incident(phases={"onset": ts("10:00:30"), "detected": ts("10:09:00")})
    fig = timeline_figure(incident, sample_notable(), sample_counts(), TimelineConfig())
    regions = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [s.name for s in regions] == ["onset → detected", "detected → end of data"]
    assert pd.Timestamp(regions[-1].x1, tz="UTC") == ts("11:00:00")


def test_signals_without_requests_plot_no_invented_rate() -> None:
    # A syslog-like window: no request at all, and a silent half hour. The rate is the share of
    # error events, named so, and a bucket with no event has no rate (a gap), not 0 %.
    counts = sample_counts().assign(requests=0, failed_requests=0, edge_requests=0, failed_edge_requests=0)
    silent = (counts["bucket"] >= ts("10:30:00")).to_numpy()
    counts.loc[silent, ["events", "errors"]] = 0
    fig = timeline_figure(sample_incident(), sample_notable(), counts, TimelineConfig())
    names = {t.name for t in fig.data}
    assert "error rate (%)" not in names
    rate = trace(fig, "error events (% of events)")
    x, y = as_times(rate.x), np.asarray(rate.y, dtype="float64")
    during = int(np.flatnonzero(x == ts("10:05:30"))[0])
    share = counts.loc[counts["bucket"].dt.floor("1min") == ts("10:05:00"), ["errors", "events"]].sum()
    assert y[during] == pytest.approx(100 * share["errors"] / share["events"], abs=0.01)
    assert np.isnan(y[x >= ts("10:30:00")]).all()
    assert (y[x < ts("10:30:00")] >= 0).all()


def test_signals_roll_up_counts_to_the_bucket(figure: go.Figure) -> None:
    bars = trace(figure, "failed requests per 1 min")
    rate = trace(figure, "error rate (%)")
    x = as_times(bars.x)
    assert len(x) == 120
    # At the edge (api-gateway access log): 10 of 20 requests per second fail during the incident.
    at = int(np.flatnonzero(x == ts("10:05:30"))[0])
    assert np.asarray(bars.y)[at] == 600
    assert np.asarray(rate.y)[at] == pytest.approx(50.0)
    before = int(np.flatnonzero(x == ts("09:30:30"))[0])
    assert np.asarray(bars.y)[before] == 0


def test_alerts_come_from_the_events_without_intervals() -> None:
    fig = timeline_figure(sample_incident(), sample_notable(), sample_counts(), TimelineConfig())
    x = as_times(trace(fig, "alerts (firing → resolved)").x)
    assert ts("10:09:00") in x
    assert ts("10:40:00") in x


def test_hovertemplates_are_constants(figure: go.Figure) -> None:
    for t in figure.data:
        assert t.hovertemplate in HOVER_TEMPLATES or (t.hovertemplate is None and t.hoverinfo == "skip"), t.name


def test_alerts_sharing_a_lane_are_stacked() -> None:
    intervals = pd.concat([sample_intervals(), sample_intervals().iloc[[0]].assign(alert_name="Second")])
    fig = timeline_figure(sample_incident(), sample_notable(), sample_counts(), TimelineConfig(), intervals=intervals)
    y = np.asarray(trace(fig, "alerts (firing → resolved)").y, dtype="float64")[0::3]
    payments = lane_y(fig, "payments")
    offset, step = chart.ALERT_OFFSET, chart.ALERT_STACK_STEP
    assert y.tolist() == pytest.approx([payments + offset, lane_y(fig, "db") + offset, payments + offset + step])


def test_alert_spans_are_labelled_with_their_names(figure: go.Figure) -> None:
    labels = trace(figure, "alert names")
    assert list(labels.text) == ["PaymentsHighErrorRate", "DbConnectionsHigh"]
    assert list(as_times(labels.x)) == [ts("10:09:00"), ts("10:15:00")]


def payload_inputs(payload: str) -> tuple[Incident, pd.DataFrame, pd.DataFrame]:
    notable = sample_notable(background=60)
    errors = notable["level"].eq("error").fillna(False)
    for column in ("message", "service", "source"):
        notable.loc[errors, column] = payload
    notable.loc[notable["kind"].eq("change"), "message"] = payload
    notable.loc[notable["kind"].eq("change"), "change_type"] = payload
    intervals = sample_intervals().assign(alert_name=payload, source=payload)
    return dataclasses.replace(sample_incident(), title=payload), notable, intervals


@pytest.mark.parametrize("payload", HTML_PAYLOADS)
def test_payloads_are_escaped_everywhere(payload: str) -> None:
    incident, notable, intervals = payload_inputs(payload)
    fig = timeline_figure(incident, notable, sample_counts(), TimelineConfig(), intervals=intervals)
    strings: list[str] = [fig.layout.title.text, *fig.layout.yaxis.ticktext]
    for t in fig.data:
        assert t.hovertemplate in HOVER_TEMPLATES or t.hoverinfo == "skip"
        assert payload not in str(t.name)
        if t.customdata is not None:
            strings.extend(str(v) for row in t.customdata for v in row)
        if t.text is not None and not isinstance(t.text, str):
            strings.extend(str(v) for v in t.text)
    strings.extend(str(a.text) for a in fig.layout.annotations)
    for text in strings:
        body = text.removeprefix("<b>").removesuffix("</b>")
        body = re.sub(r"<br><span style='font-size:13px;color:#555'>[^<]*</span>$", "", body)
        body = re.sub(r"^</?[bi]>|</?[bi]>$", "", body)
        assert "<" not in re.sub(r"</?[bi]>", "", body), text
        assert not any(ch in body for ch in "\u202e\u202a"), text
        assert len(html_lib.unescape(body)) <= 210
    shown = {html_lib.unescape(s) for s in strings}
    short = payload if len(payload) <= 100 else payload[:99] + "…"
    assert short.replace("\u202e", "\\u202e") in shown or payload.startswith("A")


def html_without_plotlyjs(text: str) -> str:
    bundle = plotlyjs_bundle()
    assert bundle in text
    return text.replace(bundle, "")


def test_html_is_offline_and_inert() -> None:
    incident, notable, intervals = payload_inputs('<a href="https://evil.example/">click</a>')
    text = figure_html(timeline_figure(incident, notable, sample_counts(), TimelineConfig(), intervals=intervals))
    rest = html_without_plotlyjs(text)
    assert rest.count("<a ") == 0
    assert "</script><script>" not in rest
    assert "evil.example" in html_lib.unescape(rest.replace("\\u002f", "/").replace("\\u003c", "<"))
    assert "https://cdn" not in rest
    assert "<script src=" not in rest.lower()
    # Only plotly's "MathJaxConfig: 'local'" hint: no MathJax script is loaded.
    assert "mathjax.js" not in rest.lower()
    assert "tex-svg" not in rest.lower()
    for payload in (HTML_PAYLOADS[0], HTML_PAYLOADS[2], HTML_PAYLOADS[3]):
        incident, notable, intervals = payload_inputs(payload)
        page = html_without_plotlyjs(
            figure_html(timeline_figure(incident, notable, sample_counts(), TimelineConfig(), intervals=intervals))
        )
        assert page.count("<a ") == 0
        assert "</script><script>" not in page
        assert "<img" not in page


def arrow_strings(codes: np.ndarray, choices: list[str]) -> pd.Series:
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(choices))
    return pd.Series(pd.arrays.ArrowStringArray(dictionary.cast(pa.string())))


def big_notable(n: int) -> pd.DataFrame:
    """``n`` events over two hours in 6 services, mostly info, with long, markup-heavy messages."""
    rng = np.random.default_rng(1)
    stamps = np.sort(T0.value + rng.integers(0, 2 * 3600 * 10**9, n))
    service = rng.integers(0, 6, n)
    services = ["api-gateway", "payments", "db", "auth", "search", "cache"]
    level = rng.choice(4, n, p=[0.9, 0.07, 0.029, 0.001])
    messages = [f"<b>request {i}</b> failed & retried: " + "x" * 150 for i in range(40)]
    columns: dict[str, Any] = {
        "timestamp": pd.Series(pd.to_datetime(stamps, utc=True)),
        "source": arrow_strings(service, [f"/var/log/{s}/{s}.log" for s in services]),
        "line": pd.Series(np.arange(1, n + 1), dtype="Int64"),
        "service": arrow_strings(service, services),
        "level": arrow_strings(level, ["info", "warning", "error", "critical"]),
        "message": arrow_strings(rng.integers(0, 40, n), messages),
        "kind": arrow_strings(np.zeros(n, dtype="int32"), ["log"]),
    }
    nulls = np.ones(n, dtype=bool)
    for name, dtype in EVENT_DTYPES.items():
        if name in columns:
            continue
        if dtype == "Int64":
            columns[name] = pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), nulls))
        elif dtype == "boolean":
            columns[name] = pd.Series(pd.arrays.BooleanArray(np.zeros(n, dtype=bool), nulls))
        elif dtype == "float64":
            columns[name] = pd.Series(np.full(n, np.nan))
        else:
            columns[name] = pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.string())))
    frame = pd.DataFrame(columns)[list(EVENT_DTYPES)]
    assert frame.dtypes.astype(str).tolist() == [str(d) for d in EVENT_DTYPES.values()]
    return frame


@pytest.mark.slow
def test_two_million_events_stay_under_5_mb() -> None:
    notable = big_notable(2_000_000)
    errors = int(notable["level"].isin(["error", "critical"]).sum())
    fig = timeline_figure(sample_incident(), notable, sample_counts(), TimelineConfig(), intervals=sample_intervals())
    text = figure_html(fig)
    assert len(text.encode("utf-8")) < chart.HTML_SIZE_LIMIT
    points = {t.name: len(t.x) for t in fig.data if t.meta == "events"}
    assert 0 < sum(points.values()) <= TimelineConfig().chart_max_points
    # The most severe come first: a level is plotted only once every more severe event is.
    totals = notable["level"].value_counts()
    order = ["critical", "error", "warning", "info"]
    for more, less in itertools.pairwise(order):
        if points.get(less):
            assert points.get(more) == totals[more], (more, points)
    assert errors > sum(points.values())  # so the cut happened among the most severe
    # Those plotted are spread over the whole window, not its first minutes.
    plotted_x = np.concatenate([np.asarray(t.x) for t in fig.data if t.meta == "events"])
    spread = as_times([plotted_x.min(), plotted_x.max()])
    assert spread[1] - spread[0] > pd.Timedelta("100min")
    density = next(t for t in fig.data if t.meta == "density")
    assert int(np.asarray(density.customdata)[:, 0].astype(int).sum()) == len(notable)


def spec_of(notable: pd.DataFrame | None = None, config: TimelineConfig | None = None) -> dict[str, Any]:
    return chart.timeline_spec(
        sample_incident(),
        sample_notable() if notable is None else notable,
        sample_counts(),
        config or TimelineConfig(),
        intervals=sample_intervals(),
    )


def plotly_json(value: Any) -> str:
    from plotly.io.json import to_json_plotly

    return str(to_json_plotly(value))


def test_trace_json_size_is_what_the_traces_add_to_the_figure_json() -> None:
    # The budget decides how many events are plotted; its size must be plotly's own, exactly.
    import plotly.io as pio

    data = [{k: v for k, v in t.items() if k not in ("xaxis", "yaxis")} for t in spec_of()["data"]]
    empty = len(pio.to_json(go.Figure(), validate=False))
    for traces in (data[:1], data, [t for t in data if t["meta"] in ("events", "alerts")]):
        expected = len(pio.to_json(go.Figure(data=traces), validate=False)) - empty
        assert chart._json_size(traces) == expected
    assert chart._json_size([]) == 0


@pytest.mark.parametrize("payload", [None, *HTML_PAYLOADS])
def test_the_figure_dictionary_is_what_plotly_validates_and_writes(payload: str | None) -> None:
    # go.Figure validates the dictionary and changes nothing, and figure_json writes what plotly.py
    # writes: the same values (key order aside) in exactly as many bytes.
    if payload is None:
        spec = spec_of()
    else:
        incident, notable, intervals = payload_inputs(payload)
        spec = chart.timeline_spec(incident, notable, sample_counts(), TimelineConfig(), intervals=intervals)
    validated = go.Figure(spec).to_dict()
    ours, theirs = chart.figure_json(spec), plotly_json(validated)
    assert json.loads(ours) == json.loads(theirs)
    assert len(ours) == len(theirs)


def test_a_density_figure_is_what_plotly_validates_and_writes() -> None:
    spec = spec_of(big_notable(20_000), TimelineConfig(chart_max_points=300))
    assert [t["meta"] for t in spec["data"]].count("density") == 1
    ours, theirs = chart.figure_json(spec), plotly_json(go.Figure(spec).to_dict())
    assert json.loads(ours) == json.loads(theirs)
    assert len(ours) == len(theirs)


def test_the_empty_figure_is_what_plotly_validates_and_writes() -> None:
    incident = Incident(title="Quiet", window_start=None, window_end=None, phases={})
    spec = chart.timeline_spec(incident, empty_events(), empty_counts(), TimelineConfig())
    assert json.loads(chart.figure_json(spec)) == json.loads(plotly_json(go.Figure(spec).to_dict()))


def test_figure_json_writes_plotly_typed_arrays_and_nulls() -> None:
    value = {
        "a": np.array([1, 2, 300], dtype="int64"),  # narrowed to int16, as plotly.py does
        "b": np.array([1.5, np.nan]),
        "c": np.array([["x", 1]], dtype=object),
        "range": np.array([0.0, 1.0]),  # never a typed array
        "d": [float("nan"), "</script>"],
        "e": np.array([2**40], dtype="int64"),  # too big for int32: a list
        "f": np.array([], dtype="float64"),
    }
    # What Figure.to_dict applies before plotly.py writes a figure.
    from _plotly_utils.utils import convert_to_base64

    theirs = copy.deepcopy(value)
    convert_to_base64(theirs)
    assert chart.figure_json(value) == plotly_json(theirs)
    assert json.loads(chart.figure_json(value))["d"] == [None, "</script>"]


def test_subplot_axes_are_those_of_make_subplots() -> None:
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.72, 0.28],
        specs=[[{}], [{"secondary_y": True}]],
    )
    layout = fig.to_dict()["layout"]
    layout.pop("template", None)
    assert layout == chart._SUBPLOT_AXES
    for row, secondary, axes in ((1, False, ("x", "y")), (2, False, ("x2", "y2")), (2, True, ("x2", "y3"))):
        fig.add_trace(go.Scatter(x=[1], y=[1]), row=row, col=1, secondary_y=secondary)
        placed = fig.data[-1]
        assert (placed.xaxis, placed.yaxis) == axes


def test_the_template_is_plotly_white() -> None:
    import plotly.io as pio

    assert chart.plotly_white_template() == pio.templates["plotly_white"].to_plotly_json()


def test_html_page_is_plotly_to_html_with_the_bundle_inlined(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    import plotly.io as pio

    fig = go.Figure(spec_of())
    div = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: div)
    page = figure_html(fig)
    theirs = pio.to_html(
        fig,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=True,
        config=dict(chart.PLOTLY_CONFIG),
        div_id=str(div),
    )
    head_end = theirs.index("</head>")
    assert (
        page == theirs[:head_end] + f'<script type="text/javascript">{plotlyjs_bundle()}</script>' + theirs[head_end:]
    )
    # The figure dictionary itself gives the same page, up to the order of keys.
    assert len(figure_html(spec_of())) == len(page)


@pytest.mark.parametrize("points", [20_000, 300])
def test_timeline_page_is_the_page_of_the_spec(monkeypatch: pytest.MonkeyPatch, points: int) -> None:
    # The page reuses the point traces' JSON that the byte budget made: the same bytes as writing
    # the figure dictionary afresh; the dictionary handed out holds plain traces.
    import uuid

    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=3))
    args = (sample_incident(), big_notable(3_000), sample_counts(), TimelineConfig(chart_max_points=points))
    page, spec = chart.timeline_page(*args, intervals=sample_intervals())
    assert page == figure_html(chart.timeline_spec(*args, intervals=sample_intervals()))
    assert page == figure_html(spec)
    assert all(type(t) is dict for t in spec["data"])
    assert ("density" in [t["meta"] for t in spec["data"]]) == (points < 3_000)


def test_html_inlines_the_vendored_basic_bundle_when_it_matches() -> None:
    from plotly.offline import get_plotlyjs_version

    bundle = plotlyjs_bundle()
    assert bundle.startswith("/**\n* plotly.js (basic - minified) v" + get_plotlyjs_version().split(".")[0])
    text = figure_html(timeline_figure(sample_incident(), sample_notable(), sample_counts(), TimelineConfig()))
    assert text.count(bundle) == 1
    assert len(text.encode()) < 2_000_000


def test_chart_max_points_caps_individual_events() -> None:
    fig = timeline_figure(sample_incident(), sample_notable(), sample_counts(), TimelineConfig(chart_max_points=50))
    assert sum(len(t.x) for t in fig.data if t.meta == "events") == 50
    assert any(t.meta == "density" for t in fig.data)
    # Errors (and failed requests) first, then warnings.
    notable = sample_notable()
    ordinary = notable[~notable["kind"].isin(["alert", "change"])]
    errors = int((ordinary["level"].isin(["error"]) | ordinary["http_status"].ge(500).fillna(False)).sum())
    assert len(trace(fig, "error").x) == errors
    assert len(trace(fig, "warning").x) == 50 - errors


def test_empty_input_gives_a_no_data_figure() -> None:
    incident = Incident(title="Quiet <b>night</b>", window_start=None, window_end=None, phases={})
    fig = timeline_figure(incident, empty_events(), empty_counts(), TimelineConfig())
    assert fig.layout.annotations[0].text.startswith("No data")
    assert fig.layout.title.text == "<b>Quiet &lt;b&gt;night&lt;/b&gt;</b>"
    assert "No data" in figure_html(fig)


def test_phases_without_events_still_draw() -> None:
    fig = timeline_figure(sample_incident(), empty_events(), empty_counts(), TimelineConfig())
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 4
    assert any(str(a.text).startswith("no per-bucket counts") for a in fig.layout.annotations)


def test_unknown_image_format_is_an_output_error(figure: go.Figure) -> None:
    with pytest.raises(OutputError, match="unknown image format 'gif'"):
        figure_image(figure, "gif")


def test_missing_browser_is_a_clear_output_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    with pytest.raises(OutputError, match="needs Chromium") as info:
        figure_image(go.Figure(go.Scatter(x=[1, 2], y=[1, 2])), "png")
    assert "apt-get install chromium" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_png_and_svg_export(figure: go.Figure) -> None:
    if chromium_path() is None:
        missing("PNG export needs Chromium: apt-get install chromium (or set BROWSER_PATH)")
    png = figure_image(figure, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
    assert int.from_bytes(png[16:20], "big") == 1600
    assert int.from_bytes(png[20:24], "big") == 900
    # The figure dictionary that save() hands over renders the same way.
    svg = figure_image(spec_of(), "svg", width=1200, height=700)
    assert b"<svg" in svg[:500]
    assert b"Checkout failures after payments deploy" in svg
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "timeline.png").write_bytes(png)


@pytest.mark.browser
def test_timeline_html_renders_in_headless_chromium() -> None:
    incident, notable, intervals = payload_inputs("<img src=x onerror=alert(1)>")
    notable.loc[notable.index[:5], "message"] = '<a href="https://evil.example/">click</a>'
    notable.loc[notable.index[5:10], "message"] = "</script><script>alert(1)</script>"
    incident = dataclasses.replace(incident, title='Checkout <a href="https://evil.example/">outage</a>')
    fig = timeline_figure(incident, notable, sample_counts(), TimelineConfig(), intervals=intervals)
    ARTIFACTS.mkdir(exist_ok=True)
    page_file = ARTIFACTS / "timeline.html"
    page_file.write_text(figure_html(fig), encoding="utf-8")
    with open_page(page_file) as (page, report):
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        legend = page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
        for name in ("error", "info", "changes", "alerts (firing → resolved)", "onset → detected", "error rate (%)"):
            assert name in legend
        assert page.eval_on_selector_all(".scatterlayer .trace", "els => els.length") >= 6
        assert page.eval_on_selector_all(".shapelayer path", "els => els.length") >= 9
        notes = page.eval_on_selector_all(".annotation-text", "els => els.map(e => e.textContent)")
        assert "onset 10:00:30" in notes
        title = page.text_content(".gtitle")
        assert title is not None
        assert 'Checkout <a href="https://evil.example/">outage</a>' in title
        # Hover a point whose message is an <img onerror> payload: the text shows literally.
        hovered = page.evaluate(
            """() => {
                const gd = document.querySelector('.js-plotly-plot');
                for (let c = 0; c < gd.data.length; c++) {
                    const cd = gd.data[c].customdata || [];
                    for (let p = 0; p < cd.length; p++) {
                        if (Array.isArray(cd[p]) && String(cd[p][2]).includes('onerror')) {
                            Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: p}]);
                            const layer = document.querySelector('.hoverlayer');
                            return {text: layer.textContent, imgs: layer.querySelectorAll('img, a, image').length};
                        }
                    }
                }
                return null;
            }"""
        )
        assert hovered is not None
        assert "<img src=x onerror=alert(1)>" in hovered["text"]
        assert hovered["imgs"] == 0
        links = page.eval_on_selector_all("svg a[href]", "els => els.map(e => e.getAttribute('href'))")
        assert not [link for link in links if "evil.example" in link or link.startswith("javascript")]
        page.screenshot(path=str(ARTIFACTS / "timeline-chromium.png"), full_page=True)
    assert report.page_errors == []
    assert report.console_errors == []
    assert report.dialogs == []
    assert report.blocked_requests == []
    assert (ARTIFACTS / "timeline-chromium.png").stat().st_size > 10_000


def test_an_alert_joins_the_lane_of_the_service_it_names_loosely() -> None:
    # PagerDuty calls the service "Payments API", the logs "payments": one lane, not two
    intervals = sample_intervals().assign(service=["Payments API", "ledger-service"])
    fig = timeline_figure(sample_incident(), sample_notable(), sample_counts(), TimelineConfig(), intervals=intervals)
    ticks = list(fig.layout.yaxis.ticktext)
    assert "Payments API" not in ticks
    assert "ledger-service" in ticks  # a service without events keeps a lane of its own
    alerts = next(t for t in fig.data if t.name == "alerts (firing → resolved)")
    assert alerts.y[0] == pytest.approx(lane_y(fig, "payments") + chart.ALERT_OFFSET)


def test_a_long_window_opens_on_the_incident_with_the_whole_one_click_away(figure: go.Figure) -> None:
    # The sample's incident is most of its window: the chart shows the whole window.
    assert figure.layout.xaxis2.range is None
    assert chart.default_view(sample_incident()) is None
    outlier = {"timestamp": "1970-01-01T00:00:00Z", "source": "payments.log", "line": 7}
    incident = sample_incident(
        window_start=ts("10:00:00") - pd.Timedelta(days=400),
        time_span={"outlier_events": 2, "outliers": [outlier]},
    )
    fig = timeline_figure(incident, sample_notable(), sample_counts(), TimelineConfig(), intervals=sample_intervals())
    low, high = (pd.Timestamp(t, tz="UTC") for t in fig.layout.xaxis2.range)
    phases = [t for t in incident.phases.values() if t is not None]
    # Every phase in view, with some margin, and far less than the window.
    assert low < min(phases) <= max(phases) < high
    assert high - low < pd.Timedelta(hours=2)
    assert {"label": "all", "step": "all"}.items() <= fig.layout.xaxis2.rangeselector.buttons[
        -1
    ].to_plotly_json().items()
    # The outliers are listed, not plotted.
    notes = [a.text for a in fig.layout.annotations if "outlier" in (a.text or "")]
    assert notes == ["2 outlier event(s) off the axis: 1970-01-01T00:00:00Z (see Data quality)"]
    for data in fig.data:
        if data.x is not None and len(data.x):
            assert as_times(data.x).min() > pd.Timestamp("2000-01-01", tz="UTC")


def test_without_phases_the_chart_opens_on_the_densest_half() -> None:
    dense = {"start": "2024-06-01T10:00:00Z", "end": "2024-06-01T11:00:00Z"}
    incident = sample_incident(
        window_start=pd.Timestamp("2020-01-01", tz="UTC"),
        window_end=pd.Timestamp("2025-01-01", tz="UTC"),
        phases=dict.fromkeys(("onset", "detected", "mitigated", "recovered", "resolved")),
        phase_evidence={},
        time_span={"densest_half": dense, "outlier_events": 0},
    )
    view = chart.default_view(incident)
    assert view is not None
    low, high = view
    assert low <= pd.Timestamp(dense["start"]) < pd.Timestamp(dense["end"]) <= high
    assert high - low <= pd.Timedelta(hours=2)
