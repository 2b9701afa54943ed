"""The interactive incident chart (``timeline.html``) and its static images (PNG, SVG).

:func:`timeline_figure` builds a Plotly figure with two linked rows sharing the time axis:

* **swimlanes**, one per service (or source where an event has no service): events as dots coloured
  by level, changes as diamonds, alerts as thick firing-to-resolved spans, and the incident phases
  as labelled shaded regions with a vertical line at each phase;
* **signals**: failed requests (or errors) per ``config.bucket`` as bars, and the error rate as a
  line on a second axis, rolled up from the per-bucket counts.

Log text is untrusted. Every string from a log goes through :func:`pmtimeline.escaping.plotly_text`
(plotly.js renders a pseudo-HTML subset in labels and hover text) and reaches hover labels only
through ``customdata``: the ``hovertemplate`` strings are constants of this module, because
plotly.js interprets ``%{...}`` in them.

The HTML embeds plotly.js so that it works offline: the vendored "basic" partial bundle (1.2 MB,
``pmtimeline/vendor``) when it matches the installed plotly.py, else plotly.py's full 4.8 MB bundle.
A chart file stays under 5 MB whatever the input: events are plotted individually up to
``config.chart_max_points`` *and* the bytes left, errors first; when some are left out, every event
is also shown as a count per bucket and lane. Times are sent as numbers (milliseconds since the epoch, UTC) so that
Plotly encodes them as compact typed arrays.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
import pyarrow.compute as pc
from plotly.subplots import make_subplots

from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.errors import OutputError
from pmtimeline.escaping import plotly_text, plotly_texts, shorten
from pmtimeline.incident import Incident
from pmtimeline.schema import STRING

#: The whole HTML file stays under this size (bytes).
HTML_SIZE_LIMIT: Final = 5_000_000
#: Kept free for the HTML around the figure and the error of the per-point estimate (bytes).
_SAFETY_MARGIN: Final = 40_000
#: Estimated bytes per plotted event besides its hover strings (x, y, JSON punctuation).
_POINT_OVERHEAD: Final = 40
#: At most this many lanes; the rest are drawn in one "other" lane.
MAX_LANES: Final = 24
#: At most this many changes plotted individually.
MAX_CHANGES: Final = 200
#: At most this many density cells (bucket x lane) and signal buckets.
MAX_DENSITY_CELLS: Final = 1_500
MAX_SIGNAL_BUCKETS: Final = 1_500
HOVER_MESSAGE_LIMIT: Final = 100
LABEL_LIMIT: Final = 40

#: Level groups: (trace name, levels, colour), most severe first.
LEVEL_GROUPS: Final[tuple[tuple[str, frozenset[str], str], ...]] = (
    ("critical", frozenset({"critical", "alert", "emergency"}), "#7b0000"),
    ("error", frozenset({"error"}), "#d62728"),
    ("warning", frozenset({"warning"}), "#ff9f1c"),
    ("info", frozenset({"info", "notice"}), "#4c78a8"),
    ("debug", frozenset({"debug", "trace"}), "#9d9d9d"),
    ("no level", frozenset(), "#b8b8b8"),
)
#: Fill of the region that starts at each phase.
PHASE_FILL: Final = {
    "onset": "rgba(214, 39, 40, 0.14)",
    "detected": "rgba(255, 127, 14, 0.14)",
    "mitigated": "rgba(255, 205, 0, 0.16)",
    "recovered": "rgba(44, 160, 44, 0.12)",
    "resolved": "rgba(44, 160, 44, 0.08)",
}
PHASE_LINE_COLOURS: Final = {
    "onset": "#b30000",
    "detected": "#e06000",
    "mitigated": "#b08800",
    "recovered": "#2c8c2c",
    "resolved": "#1f5f1f",
}
CHANGE_COLOUR: Final = "#6a3d9a"
#: Alert spans are drawn this far above their lane (lanes are 1 apart).
ALERT_OFFSET: Final = 0.3
ALERT_STACK_STEP: Final = 0.17
#: Alert spans are labelled with their name up to this many alerts.
MAX_ALERT_LABELS: Final = 12
ALERT_COLOUR: Final = "rgba(214, 39, 40, 0.55)"
DENSITY_COLOUR: Final = "rgba(120, 120, 120, 0.45)"

# Constant hover templates: data only ever enters through customdata (see the module docstring).
_EVENT_HOVER: Final = "<b>%{customdata[0]}</b><br>%{x|%Y-%m-%d %H:%M:%S.%L} UTC<br>%{customdata[1]}<br>%{customdata[2]}"
_CHANGE_HOVER: Final = (
    "<b>change: %{customdata[0]}</b><br>%{x|%Y-%m-%d %H:%M:%S} UTC<br>%{customdata[1]}<br>%{customdata[2]}"
)
_ALERT_HOVER: Final = "<b>alert %{customdata[0]}</b><br>%{customdata[1]} %{x|%Y-%m-%d %H:%M:%S} UTC<br>%{customdata[2]}"
_DENSITY_HOVER: Final = (
    "%{x|%Y-%m-%d %H:%M} UTC<br>%{customdata[0]} events in this %{customdata[1]} bucket<extra></extra>"
)
#: The columns of an event frame that the event traces and the density read.
_EVENT_TRACE_COLUMNS: Final = ("timestamp", "source", "line", "service", "level", "http_status", "message")
_SIGNAL_HOVER: Final = "%{x|%Y-%m-%d %H:%M} UTC<br>%{y}<extra>%{fullData.name}</extra>"


def timeline_figure(
    incident: Incident,
    notable: pd.DataFrame,
    counts: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
) -> go.Figure:
    """The incident timeline as a Plotly figure (see the module docstring for what it shows).

    Args:
        incident: phases and title.
        notable: the notable events (an event frame); any size, the figure stays bounded.
        counts: per-bucket counts (:data:`pmtimeline.schema.COUNT_COLUMNS`), rolled up to ``config.bucket``.
        config: ``bucket`` and ``chart_max_points`` are read from it.
        intervals: alert intervals; derived from the alert events of ``notable`` when None.
    """
    if intervals is None:
        intervals = alert_intervals(notable) if not notable.empty else None
    title = plotly_text(incident.title, 120)
    has_events = not notable.empty
    has_counts = not counts.empty and int(counts["events"].sum()) > 0
    has_phases = any(incident.phase(p) is not None for p in PHASES)
    if not (has_events or has_counts or has_phases):
        return _empty_figure(title)

    lanes = _Lanes.of(notable, intervals)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.72, 0.28],
        specs=[[{}], [{"secondary_y": True}]],
    )
    if has_events:
        # Only the columns the event traces read: copying the others' rows was a large part of the cost.
        ordinary = ~notable["kind"].isin(["alert", "change"]).fillna(False)
        events = notable.loc[ordinary, [c for c in _EVENT_TRACE_COLUMNS if c in notable.columns]]
    else:
        events = notable
    span_end = _span_end(incident, notable, counts)
    if has_events:
        _add_changes(fig, notable[notable["kind"].eq("change").fillna(False)], lanes)
    if intervals is not None and not intervals.empty:
        _add_alerts(fig, intervals, lanes, span_end)
    _add_signals(fig, counts, config.bucket)
    _add_phases(fig, incident, span_end)
    _layout(fig, incident, title, lanes, has_counts)
    _add_events(fig, events, lanes, config)
    # Draw order: density at the back, then alert spans, events, and changes on top.
    rank = {"density": 0, "alerts": 1, "events": 2, "changes": 3, "signals": 4}
    fig.data = tuple(sorted(fig.data, key=lambda t: rank.get(str(t.meta), 2)))
    return fig


def _add_events(fig: go.Figure, events: pd.DataFrame, lanes: _Lanes, config: TimelineConfig) -> None:
    """Events one by one as far as the file budget allows; when some are left out, a density of all."""
    if events.empty:
        return
    room = HTML_SIZE_LIMIT - _SAFETY_MARGIN - _plotlyjs_size() - len(pio.to_json(fig, validate=False))
    ranked, cost = _ranked_points(events, config.chart_max_points)
    keep = int(np.searchsorted(cost, room, side="right"))
    if keep < len(events):
        density = _density_trace(events, lanes, config.bucket)
        fig.add_trace(density, row=1, col=1)
        room -= _json_size([density])
        keep = int(np.searchsorted(cost, max(room, 0), side="right"))
    traces = _event_traces(ranked.iloc[:keep], lanes)
    # The estimate guides; the serialized size decides (escaping and JSON escapes vary by text).
    for _ in range(5):
        size = _json_size(traces)
        if size <= room or keep == 0:
            break
        keep = int(keep * room / size * 0.95)
        traces = _event_traces(ranked.iloc[:keep], lanes)
    for t in traces:
        fig.add_trace(t, row=1, col=1)


def _json_size(traces: list[go.Scatter]) -> int:
    """Bytes that ``traces`` add to the figure's JSON (what ``pio.to_json`` of a figure holding them
    adds to an empty figure's).

    Serialized from the traces' own properties as plotly's ``Figure.to_dict`` would (numeric arrays
    as base64 typed arrays, no uid), but without its deep copies: those copy every hover string of
    every point one by one, twice, and dominated the chart's cost.
    """
    if not traces:
        return 0
    try:
        from plotly.basedatatypes import convert_to_base64  # what Figure.to_dict applies

        data = [_copy_containers(trace._props) for trace in traces]
    except (ImportError, AttributeError):  # another plotly layout: the public (slower) path
        return len(pio.to_json(go.Figure(data=traces), validate=False)) - _empty_figure_json()
    for trace in data:
        trace.pop("uid", None)
    convert_to_base64(data)
    return len(pio.json.to_json_plotly(data)) - len("[]")


def _copy_containers(value: Any) -> Any:
    """``value`` with its dicts and lists copied and everything else shared (arrays are replaced,
    never modified, by the base64 conversion)."""
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_containers(v) for v in value]
    return value


def figure_html(fig: go.Figure) -> str:
    """The figure as one self-contained HTML page: plotly.js inline, no MathJax, no CDN, works offline."""
    page = str(
        pio.to_html(
            fig,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=True,
            config={"displaylogo": False, "responsive": True, "scrollZoom": True},
        )
    )
    # Inline the bundle in <head>, as include_plotlyjs=True would, but the smaller one when it fits.
    script = f'<script type="text/javascript">{plotlyjs_bundle()}</script>'
    head_end = page.index("</head>")
    return page[:head_end] + script + page[head_end:]


def plotlyjs_bundle() -> str:
    """The plotly.js that :func:`figure_html` inlines: the vendored "basic" partial bundle (scatter,
    bar, shapes, annotations, range slider; 1.2 MB) when its major version matches the plotly.js of
    the installed plotly.py, else plotly.py's full bundle (4.8 MB)."""
    return _plotlyjs_bundle()


@functools.lru_cache(maxsize=1)
def _plotlyjs_bundle() -> str:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    try:
        basic = resources.files("pmtimeline").joinpath("vendor", "plotly-basic.min.js").read_text(encoding="utf-8")
    except OSError:
        return str(get_plotlyjs())
    version = re.search(r"plotly\.js \(basic[^)]*\) v(\d+)\.", basic[:300])
    wanted = str(get_plotlyjs_version()).split(".")[0]
    # A bundle that cannot render the figure JSON of this plotly.py is worse than a bigger file.
    if version is None or version.group(1) != wanted or "</script" in basic.lower():
        return str(get_plotlyjs())
    return basic


def figure_image(fig: go.Figure, fmt: str = "png", *, width: int = 1600, height: int = 900) -> bytes:
    """The figure as a PNG or SVG image, rendered by kaleido in a headless Chromium.

    Raises:
        OutputError: the format is not png/svg, or no Chromium is available (or it failed): the
            message says what to install.
    """
    if fmt not in ("png", "svg"):
        raise OutputError(f"unknown image format {fmt!r}: use png or svg")
    try:
        data = pio.to_image(fig, format=fmt, width=width, height=height, scale=1)
    except Exception as exc:  # kaleido/choreographer raise many types; each means "no image"
        raise OutputError(_image_error(exc)) from exc
    return bytes(data)


def _image_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".lower()
    if any(word in text for word in ("chrome", "chromium", "browser", "executable")):
        return (
            "chart image export needs Chromium, which was not found or did not start: "
            "apt-get install chromium (or set BROWSER_PATH to a Chrome/Chromium binary)"
        )
    if "kaleido" in text:
        return "chart image export needs the kaleido package (>= 1.0): pip install kaleido"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"chart image export failed ({plotly_text(first_line, 160)}); it needs kaleido and Chromium"


# --------------------------------------------------------------------------------------------------
# lanes and budget


@dataclass(frozen=True)
class _Lanes:
    """Swimlanes: lane name -> y position (0 at the bottom), and the escaped tick labels."""

    position: dict[str, int]
    labels: list[str]
    other: str | None

    @classmethod
    def of(cls, notable: pd.DataFrame, intervals: pd.DataFrame | None) -> _Lanes:
        names = pd.Series(dtype="object")
        if not notable.empty:
            names = lane_of(notable).value_counts(sort=True)
        order = list(names.index.astype(str))
        if intervals is not None and not intervals.empty:
            alert_lanes = intervals["service"].dropna().astype(str).unique()
            order.extend(s for s in alert_lanes if s not in order)
            if intervals["service"].isna().any():
                order.append("alerts")
        if not order:
            order = ["events"]
        other = None
        if len(order) > MAX_LANES:
            other = "other lanes"
            order = [*order[: MAX_LANES - 1], other]
        # Busiest lane at the top, as people read top-down.
        position = {name: len(order) - 1 - i for i, name in enumerate(order)}
        labels = [plotly_text(name, LABEL_LIMIT) for name in reversed(order)]
        return cls(position, labels, other)

    def y(self, names: pd.Series) -> np.ndarray:
        """The lane position of each name (the "other" lane for names without a lane of their own)."""
        order = list(self.position)
        fallback = order.index(self.other) if self.other else 0
        # pyarrow's hash lookup: a dict .map over millions of strings is many times slower.
        index = pc.index_in(pa.array(names.astype(STRING)), value_set=pa.array(order, type=pa.string()))
        index = pc.fill_null(index, fallback).to_numpy(zero_copy_only=False)
        positions = np.array([self.position[name] for name in order], dtype="int16")
        return positions[index] if len(index) else np.zeros(0, dtype="int16")


def lane_of(frame: pd.DataFrame) -> pd.Series:
    """Each event's swimlane: its service, else its source."""
    service = frame["service"].astype(STRING)
    return service.where(service.notna() & service.ne(""), frame["source"].astype(STRING)).fillna("events")


@functools.lru_cache(maxsize=1)
def _empty_figure_json() -> int:
    return len(pio.to_json(go.Figure(), validate=False))


def _plotlyjs_size() -> int:
    return len(plotlyjs_bundle().encode("utf-8"))


def _citation(frame: pd.DataFrame) -> pd.Series:
    line = frame["line"].astype("Int64").astype("string")
    source = frame["source"].astype("string")
    return (source + ":" + line).fillna(source)


def _ranked_points(events: pd.DataFrame, max_points: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The events in plotting priority (most severe first, spread over time), at most ``max_points``,
    with the cumulative estimated bytes each adds to the HTML."""
    if max_points <= 0:
        return events.iloc[0:0], np.zeros(0, dtype="int64")
    level = events["level"].astype(STRING)
    status = events["http_status"].astype("Float64")
    priority = np.select(
        [
            level.isin(["critical", "alert", "emergency"]).fillna(False).to_numpy(dtype=bool),
            (level.eq("error").fillna(False) | status.ge(500).fillna(False)).to_numpy(dtype=bool),
            (level.eq("warning").fillna(False) | status.ge(400).fillna(False)).to_numpy(dtype=bool),
        ],
        [0, 1, 2],
        default=3,
    )
    # Most severe class first; within a class a seeded random sample in random order, so that the
    # byte budget cuts evenly across the window instead of dropping its end. O(n), no full sort.
    rng = np.random.default_rng(0)
    picked: list[np.ndarray] = []
    left = max_points
    for klass in range(4):
        members = np.flatnonzero(priority == klass)
        if left <= 0 or not len(members):
            continue
        take = rng.choice(members, size=min(left, len(members)), replace=False)
        picked.append(take)
        left -= len(take)
    head = events.iloc[np.concatenate(picked)] if picked else events.iloc[0:0]
    lane_chars = lane_of(head).str.len().clip(upper=LABEL_LIMIT).fillna(6).to_numpy(dtype="int64")
    cite_chars = _citation(head).str.len().fillna(8).to_numpy(dtype="int64")
    message = head["message"].astype("string").fillna("")
    # Escaping can lengthen a message (&lt;), so count the markup characters twice.
    markup = message.str.count(r"[<>&\\\"]").to_numpy(dtype="int64") * 4
    message_chars = message.str.len().clip(upper=HOVER_MESSAGE_LIMIT).to_numpy(dtype="int64")
    cost = _POINT_OVERHEAD + lane_chars + cite_chars + message_chars + np.minimum(markup, 400)
    return head, np.cumsum(cost)


# --------------------------------------------------------------------------------------------------
# traces


def _ms(times: pd.Series) -> np.ndarray:
    """UTC milliseconds since the epoch (Plotly reads numbers on a date axis as these)."""
    values = pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")
    return (values.astype("int64").to_numpy() // 1_000_000).astype("float64")


def _texts(values: pd.Series, limit: int) -> np.ndarray:
    # Bounded by the point budget: at most chart_max_points strings, never the whole input.
    return plotly_texts(values, limit)


def _event_traces(chosen: pd.DataFrame, lanes: _Lanes) -> list[go.Scatter]:
    """One trace per level group of the chosen events."""
    traces: list[go.Scatter] = []
    if chosen.empty:
        return traces
    level = chosen["level"].astype("string")
    failed = chosen["http_status"].astype("Float64").ge(500).fillna(False)
    for name, levels, colour in LEVEL_GROUPS:
        if levels:
            mask = level.isin(list(levels)).fillna(False)
            if name == "error":
                mask = mask | (level.isna() & failed)
        else:
            mask = level.isna() & ~failed
        group = chosen[mask.to_numpy(dtype=bool)]
        if group.empty:
            continue
        lane = lane_of(group)
        customdata = np.column_stack(
            [_texts(lane, LABEL_LIMIT), _texts(_citation(group), 120), _texts(group["message"], HOVER_MESSAGE_LIMIT)]
        )
        traces.append(
            go.Scatter(
                x=_ms(group["timestamp"]),
                y=lanes.y(lane),
                mode="markers",
                name=name,
                meta="events",
                legendgroup="levels",
                legendgrouptitle_text="events by level",
                marker={"color": colour, "size": 7 if name in ("critical", "error") else 6, "opacity": 0.85},
                customdata=customdata,
                hovertemplate=_EVENT_HOVER + f"<extra>{name}</extra>",
            )
        )
    return traces


def _density_trace(events: pd.DataFrame, lanes: _Lanes, bucket: str) -> go.Scatter:
    """All ordinary events as a count per (bucket, lane), for when not all can be plotted one by one."""
    width = pd.Timedelta(bucket)
    span = events["timestamp"].max() - events["timestamp"].min()
    lane_count = max(len(lanes.position), 1)
    while span / width * lane_count > MAX_DENSITY_CELLS:
        width *= 2
    cells = (
        pd.DataFrame({"bucket": events["timestamp"].dt.floor(width), "y": lanes.y(lane_of(events))})
        .groupby(["bucket", "y"], sort=True)
        .size()
        .reset_index(name="n")
    )
    n = cells["n"].to_numpy(dtype="int64")
    label = _duration_label(width)
    return go.Scatter(
        x=_ms(cells["bucket"] + width / 2),
        y=cells["y"].to_numpy(dtype="int16"),
        mode="markers",
        name=f"all events (count per {label})",
        meta="density",
        marker={
            "symbol": "square",
            "color": DENSITY_COLOUR,
            "size": np.clip(5 + 3 * np.log10(n), 5, 18).round(1),
            "line": {"width": 0},
        },
        customdata=np.column_stack([n, np.full(len(n), label, dtype=object)]),
        hovertemplate=_DENSITY_HOVER,
    )


def _add_changes(fig: go.Figure, changes: pd.DataFrame, lanes: _Lanes) -> None:
    if changes.empty:
        return
    changes = changes.sort_values("timestamp", kind="stable").head(MAX_CHANGES)
    kind = changes["change_type"].astype("string").fillna("change")
    customdata = np.column_stack(
        [_texts(kind, 40), _texts(_citation(changes), 120), _texts(changes["message"], HOVER_MESSAGE_LIMIT)]
    )
    fig.add_trace(
        go.Scatter(
            x=_ms(changes["timestamp"]),
            y=lanes.y(lane_of(changes)),
            mode="markers",
            name="changes",
            meta="changes",
            marker={"symbol": "diamond", "size": 14, "color": CHANGE_COLOUR, "line": {"width": 1.5, "color": "white"}},
            customdata=customdata,
            hovertemplate=_CHANGE_HOVER + "<extra>change</extra>",
        ),
        row=1,
        col=1,
    )


def _add_alerts(fig: go.Figure, intervals: pd.DataFrame, lanes: _Lanes, span_end: pd.Timestamp | None) -> None:
    """Alerts as thick spans from firing to resolution (still open ones to the end of the data)."""
    frame = intervals.copy()
    start = frame["fired"].fillna(frame["acknowledged"]).fillna(frame["resolved"])
    frame = frame[start.notna()]
    start = start[start.notna()]
    if frame.empty:
        return
    end = frame["resolved"]
    if span_end is not None:
        end = end.fillna(max(span_end, start.max()))
    end = end.fillna(start)
    lane_names = frame["service"].astype("string").fillna("alerts")
    # Just above the lane's events, so the span does not hide them; alerts sharing a lane are
    # stacked (the k-th one a little higher, up to three levels) so that they don't hide each other.
    base = lanes.y(lane_names)
    level = pd.Series(base).groupby(base).cumcount().to_numpy() % 3
    y = base + ALERT_OFFSET + ALERT_STACK_STEP * level
    name = _texts(frame["alert_name"].astype("string").fillna(frame["alert_id"].astype("string")), 80)
    line = frame["line"].astype("Int64").astype("string")
    cite = _texts((frame["source"].astype("string") + ":" + line).fillna(frame["source"].astype("string")), 120)
    open_ = frame["resolved"].isna().to_numpy()
    n = len(frame)
    # Each span: start point, end point, gap (None) so one trace draws every span.
    xs = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = _ms(start), _ms(end)
    ys = np.full(3 * n, np.nan)
    ys[0::3], ys[1::3] = y, y
    states = np.empty((n, 2), dtype=object)
    states[:, 0] = "fired"
    states[:, 1] = np.where(open_, "still firing at", "resolved")
    customdata = np.empty((3 * n, 3), dtype=object)
    for k in range(2):  # start and end point of each span
        customdata[k::3, 0] = name
        customdata[k::3, 1] = states[:, k]
        customdata[k::3, 2] = cite
    customdata[2::3] = ""
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            name="alerts (firing → resolved)",
            meta="alerts",
            line={"color": ALERT_COLOUR, "width": 12},
            marker={"symbol": "line-ns", "size": 16, "color": "#b30000", "line": {"width": 2, "color": "#b30000"}},
            customdata=customdata,
            hovertemplate=_ALERT_HOVER + "<extra>alert</extra>",
            connectgaps=False,
        ),
        row=1,
        col=1,
    )
    if n <= MAX_ALERT_LABELS:
        # The alert's name above the start of its span, while there are few enough to stay legible.
        # A text-only trace: plotly.js draws no text for points after a gap in a lines trace.
        fig.add_trace(
            go.Scatter(
                x=xs[0::3],
                y=ys[0::3],
                mode="text",
                text=[shorten(str(v), 40) for v in name],
                textposition="top right",
                textfont={"size": 10, "color": "#8b0000"},
                name="alert names",
                meta="alerts",
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )


def _signals(counts: pd.DataFrame, bucket: str) -> pd.DataFrame:
    """Counts rolled up over services to ``bucket``: failed requests (or errors) and the error rate."""
    width = pd.Timedelta(bucket)
    span = counts["bucket"].max() - counts["bucket"].min()
    while span / width > MAX_SIGNAL_BUCKETS:
        width *= 2
    sums = counts.groupby(counts["bucket"].dt.floor(width), sort=True)[
        ["events", "errors", "requests", "failed_requests", "edge_requests", "failed_edge_requests"]
    ].sum()
    if int(sums["edge_requests"].sum()) > 0:
        total, failed, what = sums["edge_requests"], sums["failed_edge_requests"], "failed requests"
    elif int(sums["requests"].sum()) > 0:
        total, failed, what = sums["requests"], sums["failed_requests"], "failed requests"
    else:
        total, failed, what = sums["events"], sums["errors"], "error events"
    rate = (failed / total.where(total > 0)).fillna(0.0) * 100
    out = pd.DataFrame({"failed": failed.astype("int64"), "rate": rate.round(2)}, index=sums.index)
    out.attrs["what"] = what
    out.attrs["width"] = width
    return out


def _add_signals(fig: go.Figure, counts: pd.DataFrame, bucket: str) -> None:
    if counts.empty or int(counts["events"].sum()) == 0:
        return
    signals = _signals(counts, bucket)
    label = _duration_label(signals.attrs["width"])
    x = _ms(signals.index.to_series() + signals.attrs["width"] / 2)
    fig.add_trace(
        go.Bar(
            x=x,
            y=signals["failed"].to_numpy(),
            name=f"{signals.attrs['what']} per {label}",
            meta="signals",
            marker={"color": "rgba(214, 39, 40, 0.55)", "line": {"width": 0}},
            hovertemplate=_SIGNAL_HOVER,
        ),
        row=2,
        col=1,
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=signals["rate"].to_numpy(),
            name="error rate (%)",
            meta="signals",
            mode="lines",
            line={"color": "#222222", "width": 1.8},
            hovertemplate=_SIGNAL_HOVER,
        ),
        row=2,
        col=1,
        secondary_y=True,
    )
    fig.update_yaxes(
        title_text=f"{signals.attrs['what']} / {label}", row=2, col=1, secondary_y=False, rangemode="tozero"
    )
    fig.update_yaxes(title_text="error rate %", row=2, col=1, secondary_y=True, rangemode="tozero", showgrid=False)


def _span_end(incident: Incident, notable: pd.DataFrame, counts: pd.DataFrame) -> pd.Timestamp | None:
    """The end of the data: the window end, else the last event or bucket."""
    if incident.window_end is not None:
        return incident.window_end
    ends = [
        notable["timestamp"].max() if not notable.empty else None,
        counts["bucket"].max() if not counts.empty else None,
    ]
    known = [pd.Timestamp(t) for t in ends if t is not None and not pd.isna(t)]
    return max(known) if known else None


def _iso(ts: pd.Timestamp) -> str:
    """A naive UTC ISO time, the form plotly.js reads on a date axis."""
    return str(pd.Timestamp(ts).tz_convert("UTC").tz_localize(None).isoformat())


def _visible_span(
    fig: go.Figure, known: list[tuple[str, pd.Timestamp]], span_end: pd.Timestamp | None
) -> pd.Timedelta | None:
    """The time span the chart shows at first (the data's x range), to size labels against."""
    lows, highs = [], []
    for trace in fig.data:
        if trace.x is not None and len(trace.x):
            values = np.asarray(trace.x, dtype="float64")
            if np.isfinite(values).any():
                lows.append(np.nanmin(values))
                highs.append(np.nanmax(values))
    times = [t for _, t in known] + ([span_end] if span_end is not None else [])
    lows.extend(t.value / 1e6 for t in times)
    highs.extend(t.value / 1e6 for t in times)
    if not lows:
        return None
    return pd.Timedelta(milliseconds=max(highs) - min(lows))


def _add_phases(fig: go.Figure, incident: Incident, span_end: pd.Timestamp | None) -> None:
    """Shaded regions between consecutive known phases, and a labelled vertical line at each phase."""
    known = [(p, t) for p in PHASES if (t := incident.phase(p)) is not None]
    regions = [(a, b, ta, tb) for (a, ta), (b, tb) in itertools.pairwise(known) if tb > ta]
    if known and known[-1][0] not in ("recovered", "resolved") and span_end is not None and span_end > known[-1][1]:
        regions.append((known[-1][0], "end of data", known[-1][1], span_end))
    visible = _visible_span(fig, known, span_end)
    for a, b, t0, t1 in regions:
        label = f"{a} → {b}"
        fig.add_shape(
            type="rect",
            xref="x",
            yref="paper",
            x0=_iso(t0),
            x1=_iso(t1),
            y0=0,
            y1=1,
            fillcolor=PHASE_FILL[a],
            line={"width": 0},
            layer="below",
            name=label,
            showlegend=True,
            legendgroup="phases",
            legendgrouptitle_text="incident phases",
        )
        if visible is None or (t1 - t0) < visible * 0.015:
            continue  # too narrow even for an upright label: the legend and the phase lines name it
        wide = (t1 - t0) >= visible * 0.15
        fig.add_annotation(
            x=_iso(t0 + (t1 - t0) / 2),
            xref="x",
            y=0.995,
            yref="y domain",
            yanchor="top",
            text=f"<i>{label}</i>",
            textangle=0 if wide else -90,
            showarrow=False,
            font={"size": 11, "color": "#333333"},
            bgcolor="rgba(255,255,255,0.6)",
        )
    for i, (phase, ts) in enumerate(known):
        colour = PHASE_LINE_COLOURS[phase]
        fig.add_shape(
            type="line",
            xref="x",
            yref="paper",
            x0=_iso(ts),
            x1=_iso(ts),
            y0=0,
            y1=1,
            line={"color": colour, "width": 1.5, "dash": "dash"},
        )
        # Labels alternate between two heights so that close phases stay readable.
        fig.add_annotation(
            x=_iso(ts),
            xref="x",
            y=1.06 if i % 2 else 1.015,
            yref="paper",
            yanchor="bottom",
            text=f"<b>{phase}</b> {ts.tz_convert('UTC').strftime('%H:%M:%S')}",
            showarrow=False,
            font={"size": 12, "color": colour},
            bgcolor="rgba(255,255,255,0.85)",
        )


def _layout(fig: go.Figure, incident: Incident, title: str, lanes: _Lanes, has_counts: bool) -> None:
    window = ""
    if incident.window_start is not None and incident.window_end is not None:
        start = incident.window_start.strftime("%Y-%m-%d %H:%M")
        window = f"{start} – {incident.window_end.strftime('%Y-%m-%d %H:%M')} UTC"
    fig.update_layout(
        title={
            "text": f"<b>{title}</b>"
            + (f"<br><span style='font-size:13px;color:#555'>{window}</span>" if window else ""),
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
        },
        template="plotly_white",
        hovermode="closest",
        height=max(620, 330 + 34 * len(lanes.labels)),
        margin={"l": 150, "r": 40, "t": 130, "b": 40},
        legend={"orientation": "v", "x": 1.06, "y": 1.0, "groupclick": "toggleitem", "font": {"size": 11}},
        hoverlabel={"align": "left", "namelength": 20},
        bargap=0.05,
        font={"family": "DejaVu Sans, Arial, sans-serif", "size": 12},
    )
    fig.update_yaxes(
        row=1,
        col=1,
        tickmode="array",
        tickvals=list(range(len(lanes.labels))),
        ticktext=lanes.labels,
        range=[-0.6, len(lanes.labels) - 0.2],
        showgrid=True,
        gridcolor="#ececec",
        zeroline=False,
        fixedrange=True,
        automargin=True,
    )
    fig.update_xaxes(type="date", showgrid=True, gridcolor="#f0f0f0")
    fig.update_xaxes(
        row=2,
        col=1,
        title_text="time (UTC)",
        rangeslider={"visible": True, "thickness": 0.06},
        rangeselector={
            "buttons": [
                {"count": 15, "label": "15m", "step": "minute", "stepmode": "backward"},
                {"count": 1, "label": "1h", "step": "hour", "stepmode": "backward"},
                {"step": "all", "label": "all"},
            ],
            "y": 1.02,
            "x": 0,
            "font": {"size": 10},
        },
    )
    if not has_counts:
        fig.add_annotation(
            text="no per-bucket counts",
            xref="x2 domain",
            yref="y2 domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"color": "#888888"},
        )


def _empty_figure(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text="No data: no events, counts or phases in the window",
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#666666"},
    )
    fig.update_layout(
        title={"text": f"<b>{title}</b>", "x": 0.01},
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=400,
    )
    return fig


def _duration_label(width: pd.Timedelta) -> str:
    seconds = int(width.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def chart_summary(fig: go.Figure) -> dict[str, Any]:
    """Trace names and point counts, phase shapes and annotations: what a test or a log line wants to know."""
    return {
        "traces": {t.name: len(t.x) if t.x is not None else 0 for t in fig.data},
        "shapes": [s.name for s in fig.layout.shapes],
        "annotations": [a.text for a in fig.layout.annotations],
    }
