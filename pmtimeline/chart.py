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

The figure is built as Plotly's figure dictionary (:func:`timeline_spec`: ``{"data": [...],
"layout": {...}}``, what ``go.Figure.to_dict()`` holds) and written by :func:`figure_html` with
plotly.py's own JSON conventions (numeric arrays as base64 typed arrays, ``< > /`` escaped).
Building it through ``plotly.graph_objects`` validated, deep-copied and imported hundreds of
validator classes for every trace: most of the cost of a report. :func:`timeline_figure` still
returns a ``go.Figure`` (validated) for notebooks.

The HTML embeds plotly.js so that it works offline: the vendored "basic" partial bundle (1.2 MB,
``pmtimeline/vendor``) when it matches the installed plotly.py, else plotly.py's full 4.8 MB bundle.
A chart file stays under 5 MB whatever the input: events are plotted individually up to
``config.chart_max_points`` *and* the bytes left, errors first; when some are left out, every event
is also shown as a count per bucket and lane. Times are sent as numbers (milliseconds since the epoch, UTC) so that
Plotly encodes them as compact typed arrays.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import itertools
import json
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.errors import OutputError
from pmtimeline.escaping import plotly_text, plotly_texts, shorten
from pmtimeline.incident import Incident
from pmtimeline.schema import STRING
from pmtimeline.service_names import matching_services

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: A trace or a layout as Plotly's figure dictionary holds it.
Trace = dict[str, Any]

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

#: The HTML page's plotly.js options.
PLOTLY_CONFIG: Final = {"displaylogo": False, "responsive": True, "scrollZoom": True}
#: The axes of the two rows as ``plotly.subplots.make_subplots(rows=2, cols=1, shared_xaxes=True,
#: vertical_spacing=0.07, row_heights=[0.72, 0.28], specs=[[{}], [{"secondary_y": True}]])`` lays
#: them out (a test holds them equal): swimlanes on x/y, signals on x2/y2 with the rate on y3.
_SUBPLOT_AXES: Final[Mapping[str, Mapping[str, Any]]] = {
    "xaxis": {"anchor": "y", "domain": [0.0, 0.94], "matches": "x2", "showticklabels": False},
    "yaxis": {"anchor": "x", "domain": [0.3304, 1.0]},
    "xaxis2": {"anchor": "y2", "domain": [0.0, 0.94]},
    "yaxis2": {"anchor": "x2", "domain": [0.0, 0.2604]},
    "yaxis3": {"anchor": "x2", "overlaying": "y2", "side": "right"},
}
#: Where a trace of each row is drawn (``add_trace(row=..., secondary_y=...)``).
_ROW_AXES: Final = {"events": ("x", "y"), "signals": ("x2", "y2"), "rate": ("x2", "y3")}
#: Keys whose values plotly.py never turns into typed arrays (``_plotly_utils.utils.is_skipped_key``).
_UNTYPED_KEYS: Final = frozenset({"geojson", "layer", "layers", "range"})
#: numpy dtypes plotly.js reads as typed arrays, by their short names.
_TYPED_ARRAYS: Final = {
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "float32": "f4",
    "float64": "f8",
}


def timeline_spec(
    incident: Incident,
    notable: pd.DataFrame,
    counts: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The incident timeline as Plotly's figure dictionary (``{"data": [...], "layout": {...}}``, see
    the module docstring for what it shows): what :func:`figure_html` writes and ``go.Figure`` takes.

    Args:
        incident: phases and title.
        notable: the notable events (an event frame); any size, the figure stays bounded.
        counts: per-bucket counts (:data:`pmtimeline.schema.COUNT_COLUMNS`), rolled up to ``config.bucket``.
        config: ``bucket`` and ``chart_max_points`` are read from it.
        intervals: alert intervals; derived from the alert events of ``notable`` when None.
    """
    return _plain(_figure(incident, notable, counts, config, intervals))


def timeline_page(
    incident: Incident,
    notable: pd.DataFrame,
    counts: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
) -> tuple[str, dict[str, Any]]:
    """The chart as :func:`figure_html`'s page and as :func:`timeline_spec`'s dictionary (for the
    images), made together: the point traces are written once, when the byte budget measures them.
    Arguments as for :func:`timeline_spec`."""
    fig = _figure(incident, notable, counts, config, intervals)
    return figure_html(fig), _plain(fig)


def _plain(fig: dict[str, Any]) -> dict[str, Any]:
    """``fig`` with its traces as plain dictionaries, free to change (the written ones carry the
    text they were written as)."""
    return {**fig, "data": [dict(t) for t in fig["data"]]}


def _figure(
    incident: Incident,
    notable: pd.DataFrame,
    counts: pd.DataFrame,
    config: TimelineConfig,
    intervals: pd.DataFrame | None,
) -> dict[str, Any]:
    """:func:`timeline_spec`, with the point traces as :class:`_Written` ones."""
    if intervals is None:
        intervals = alert_intervals(notable) if not notable.empty else None
    title = plotly_text(incident.title, 120)
    has_events = not notable.empty
    has_counts = not counts.empty and int(counts["events"].sum()) > 0
    has_phases = any(incident.phase(p) is not None for p in PHASES)
    if not (has_events or has_counts or has_phases):
        return _empty_figure(title)

    lanes = _Lanes.of(notable, intervals)
    fig: dict[str, Any] = {"data": [], "layout": {name: dict(axis) for name, axis in _SUBPLOT_AXES.items()}}
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
    fig["data"].sort(key=lambda t: rank.get(str(t.get("meta")), 2))
    return fig


def timeline_figure(
    incident: Incident,
    notable: pd.DataFrame,
    counts: pd.DataFrame,
    config: TimelineConfig,
    *,
    intervals: pd.DataFrame | None = None,
) -> go.Figure:
    """The incident timeline as a Plotly figure (``.show()`` in a notebook): :func:`timeline_spec`,
    validated by plotly.py. Arguments as for :func:`timeline_spec`."""
    import plotly.graph_objects as go

    return go.Figure(timeline_spec(incident, notable, counts, config, intervals=intervals))


def _on_axes(trace: Trace, row: str) -> Trace:
    """``trace`` placed on the axes of a row, as ``add_trace(row=..., col=1)`` places it."""
    x, y = _ROW_AXES[row]
    return {**trace, "xaxis": x, "yaxis": y}


def _add_events(fig: dict[str, Any], events: pd.DataFrame, lanes: _Lanes, config: TimelineConfig) -> None:
    """Events one by one as far as the file budget allows; when some are left out, a density of all."""
    if events.empty:
        return
    room = HTML_SIZE_LIMIT - _SAFETY_MARGIN - _plotlyjs_size() - len(figure_json(fig))
    ranked = _ranked_points(events, config.chart_max_points)
    cost = ranked.cost
    keep = int(np.searchsorted(cost, room, side="right"))
    if keep < len(events):
        density = _density_trace(events, lanes, config.bucket)
        fig["data"].append(_on_axes(density, "events"))
        room -= _json_size([density])
        keep = int(np.searchsorted(cost, max(room, 0), side="right"))
    points = _EventPoints.of(ranked, lanes)
    traces = points.traces(keep)
    texts: list[str] | None = None
    # The estimate guides; the serialized size decides (escaping and JSON escapes vary by text).
    for _ in range(5):
        texts = [figure_json(t) for t in traces]
        size = _joined_size(texts)
        if size <= room or keep == 0:
            break
        keep = int(keep * room / size * 0.95)
        traces = points.traces(keep)
        texts = None
    if texts is None:
        texts = [figure_json(t) for t in traces]
    # The texts that measured the traces are the traces' JSON in the page too: writing the point
    # traces is most of the cost of the chart, and they are written once.
    axes = ',"xaxis":"x","yaxis":"y"}'
    fig["data"].extend(_Written(_on_axes(t, "events"), text[:-1] + axes) for t, text in zip(traces, texts, strict=True))


def _json_size(traces: list[Trace]) -> int:
    """Bytes that ``traces`` add to the figure's JSON (what plotly.py's ``pio.to_json`` of a figure
    holding them adds to an empty figure's)."""
    return _joined_size([figure_json(t) for t in traces])


def _joined_size(texts: list[str]) -> int:
    """Bytes that JSON ``texts`` take as items of a JSON list (``,`` between them)."""
    return sum(map(len, texts)) + max(len(texts) - 1, 0)


class _Written(dict[str, Any]):
    """A trace with its JSON (what :func:`figure_json` writes of it), made once to measure it;
    :func:`figure_json` writes that text. Only :func:`_figure` makes them, and they never leave
    this module (:func:`_plain`), so none is changed after its text was made."""

    def __init__(self, trace: Trace, text: str) -> None:
        super().__init__(trace)
        self.text = text


# --------------------------------------------------------------------------------------------------
# JSON and HTML


def figure_json(value: Any) -> str:
    """A figure (or part of one) as plotly.py's ``to_json_plotly`` writes it: compact, ASCII,
    numeric arrays as base64 typed arrays (``{"dtype": "f8", "bdata": ...}``), other arrays as
    lists, NaN and infinities as null, and ``< > /`` as ``\\u003c \\u003e \\u002f`` (safe in a
    ``<script>``). The same text, so the same size, as plotly.py's: the point budget counts on it.
    """
    if isinstance(value, list) and any(isinstance(v, _Written) for v in value):
        # JSON lists are their items joined by "," (no spaces in compact JSON): the written
        # traces' texts are used as they are.
        return "[" + ",".join(v.text if isinstance(v, _Written) else figure_json(v) for v in value) + "]"
    plain = _typed_arrays(value)
    with _collection_paused():
        try:
            text = json.dumps(plain, separators=(",", ":"), allow_nan=False, default=_json_default)
        except ValueError:  # a NaN or infinity outside the typed arrays: null, as plotly.py writes it
            text = json.dumps(_finite(plain), separators=(",", ":"), default=_json_default)
    for unsafe, safe in (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f")):
        text = text.replace(unsafe, safe)
    return text


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Garbage collection paused while a figure is written. The hover texts become one small list
    per point (the JSON encoder wants lists); those tens of thousands of allocations triggered a
    full collection, which walks every object of the process (aggregates, pandas, numpy) and cost
    as much as the writing. The lists hold only strings and numbers (no cycles) and are freed
    right after, so nothing is left for the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _typed_arrays(value: Any) -> Any:
    """``value`` with the numpy arrays that are dict values replaced by typed-array specs, as
    plotly.py's ``convert_to_base64`` does (containers copied, nothing modified in place)."""
    if isinstance(value, dict):
        return {
            k: v if k in _UNTYPED_KEYS else _typed_array(v) if isinstance(v, np.ndarray) else _typed_arrays(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_typed_arrays(v) for v in value]
    return value


def _typed_array(values: np.ndarray) -> Any:
    """plotly.py's ``to_typed_array_spec``: int64/uint64 narrowed to the smallest type that holds
    them, then base64 when plotly.js has the type; the array itself (written as a list) otherwise."""
    if values.size == 0:
        return values
    if values.dtype == np.int64 or values.dtype == np.uint64:
        low, high = values.min(), values.max()
        for narrow in ("int8", "int16", "int32") if values.dtype == np.int64 else ("uint8", "uint16", "uint32"):
            info = np.iinfo(narrow)
            if info.min <= low and high <= info.max:
                values = values.astype(narrow)
                break
        else:
            return values
    short = _TYPED_ARRAYS.get(str(values.dtype))
    if short is None:
        return values
    spec: dict[str, Any] = {
        "dtype": short,
        "bdata": base64.b64encode(np.ascontiguousarray(values).data).decode("ascii"),
    }
    if values.ndim > 1:
        spec["shape"] = str(values.shape)[1:-1]
    return spec


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if value is pd.NA or value is pd.NaT:
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (floats and arrays written as lists) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def figure_html(fig: go.Figure | Mapping[str, Any]) -> str:
    """The figure (a ``go.Figure`` or :func:`timeline_spec`'s dictionary) as one self-contained HTML
    page: plotly.js inline, no MathJax, no CDN, works offline.

    The page is the one ``plotly.io.to_html(fig, include_plotlyjs=False, include_mathjax=False,
    full_html=True, config=PLOTLY_CONFIG)`` writes (a test holds them equal), with the bundle
    inlined in ``<head>`` as ``include_plotlyjs=True`` would, but the smaller one when it fits.
    """
    spec = fig if isinstance(fig, Mapping) else fig.to_dict()
    layout = spec.get("layout", {})
    template_layout = layout.get("template", {}).get("layout", {})
    width, height = (layout.get(k, template_layout.get(k, "100%")) for k in ("width", "height"))
    width, height = (f"{v}px" if isinstance(v, int | float) else v for v in (width, height))
    div = str(uuid.uuid4())
    script = _PAGE_SCRIPT.format(
        id=div, data=figure_json(spec.get("data", [])), layout=figure_json(layout), config=json.dumps(PLOTLY_CONFIG)
    )
    page = _PAGE.format(div=_PAGE_DIV.format(id=div, width=width, height=height, script=script))
    # The bundle inlined in <head>, as include_plotlyjs=True would, but the smaller one when it fits.
    head_end = page.index("</head>")
    return page[:head_end] + f'<script type="text/javascript">{plotlyjs_bundle()}</script>' + page[head_end:]


# plotly.io.to_html's page (plotly.py 6-7), without plotly.js and MathJax; the whitespace is its own.
_PAGE_SCRIPT: Final = (
    '                if (document.getElementById("{id}")) {{'
    "                    Plotly.newPlot("
    '                        "{id}",'
    "                        {data},"
    "                        {layout},"
    "                        {config}"
    "                    )"
    "                }}"
)
_PAGE_DIV: Final = (
    '<div style="height:{height}; width:{width};">'
    "        "  # MathJax (none)
    "        "  # plotly.js (inlined in <head> instead)
    '            <div id="{id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
    "            <script>"
    "                window.PLOTLYENV=window.PLOTLYENV || {{}};"
    "                {script};"
    "            </script>"
    "        </div>"
)
_PAGE: Final = """<!doctype html>
<html>
<head>
    <meta charset="utf-8" />
    <style>html, body {{height: 100%;}}</style>
</head>
<body>
    {div}
</body>
</html>"""


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


def figure_image(
    fig: go.Figure | Mapping[str, Any], fmt: str = "png", *, width: int = 1600, height: int = 900
) -> bytes:
    """The figure (a ``go.Figure`` or :func:`timeline_spec`'s dictionary) as a PNG or SVG image,
    rendered by kaleido in a headless Chromium.

    Raises:
        OutputError: the format is not png/svg, or no Chromium is available (or it failed): the
            message says what to install.
    """
    if fmt not in ("png", "svg"):
        raise OutputError(f"unknown image format {fmt!r}: use png or svg")
    import plotly.io as pio

    try:
        data = pio.to_image(
            dict(fig) if isinstance(fig, Mapping) else fig, format=fmt, width=width, height=height, scale=1
        )
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
            # An alert joins the lane of the service it names, however its labels spell it.
            alert_lanes = intervals["service"].dropna().astype(str).unique()
            order.extend(s for s in alert_lanes if s not in order and not matching_services(s, order))
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

    def alert_lanes(self, services: pd.Series) -> pd.Series:
        """The lane of each alert: the first lane whose service its service names (loosely), else
        its own; ``alerts`` for an alert without a service."""
        names = [n for n in self.position if n != self.other]
        lane = {
            s: s if s in self.position else next(iter(matching_services(s, names)), s)
            for s in services.dropna().unique()
        }
        return services.map(lane).astype("string").fillna("alerts")

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


def _plotlyjs_size() -> int:
    return len(plotlyjs_bundle().encode("utf-8"))


def _citation(frame: pd.DataFrame) -> pd.Series:
    line = frame["line"].astype("Int64").astype("string")
    source = frame["source"].astype("string")
    return (source + ":" + line).fillna(source)


@dataclass(frozen=True)
class _Ranked:
    """Events in plotting priority, with the cumulative estimated bytes each adds to the HTML and
    their lanes and citations (the points' hover texts are made from the same)."""

    events: pd.DataFrame
    cost: np.ndarray
    lane: pd.Series
    citation: pd.Series


def _ranked_points(events: pd.DataFrame, max_points: int) -> _Ranked:
    """The events in plotting priority (most severe first, spread over time), at most ``max_points``,
    with the cumulative estimated bytes each adds to the HTML."""
    if max_points <= 0:
        none = events.iloc[0:0]
        return _Ranked(none, np.zeros(0, dtype="int64"), lane_of(none), _citation(none))
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
    lane, citation = lane_of(head), _citation(head)
    lane_chars = lane.str.len().clip(upper=LABEL_LIMIT).fillna(6).to_numpy(dtype="int64")
    cite_chars = citation.str.len().fillna(8).to_numpy(dtype="int64")
    message = head["message"].astype("string").fillna("")
    # Escaping can lengthen a message (&lt;), so count the markup characters twice.
    markup = message.str.count(r"[<>&\\\"]").to_numpy(dtype="int64") * 4
    message_chars = message.str.len().clip(upper=HOVER_MESSAGE_LIMIT).to_numpy(dtype="int64")
    cost = _POINT_OVERHEAD + lane_chars + cite_chars + message_chars + np.minimum(markup, 400)
    return _Ranked(head, np.cumsum(cost), lane, citation)


# --------------------------------------------------------------------------------------------------
# traces


def _ms(times: pd.Series) -> np.ndarray:
    """UTC milliseconds since the epoch (Plotly reads numbers on a date axis as these)."""
    values = pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")
    return (values.astype("int64").to_numpy() // 1_000_000).astype("float64")


def _texts(values: pd.Series, limit: int) -> np.ndarray:
    # Bounded by the point budget: at most chart_max_points strings, never the whole input.
    return plotly_texts(values, limit)


@dataclass(frozen=True)
class _EventPoints:
    """The ranked events as plotted: level group, time, lane and hover texts of each, computed once
    for all of them (every value is per event, so the first ``keep`` of them are the same whatever
    ``keep`` the byte budget settles on)."""

    group: np.ndarray  # index into LEVEL_GROUPS, -1 for a level no group draws
    x: np.ndarray
    y: np.ndarray
    customdata: np.ndarray

    @classmethod
    def of(cls, ranking: _Ranked, lanes: _Lanes) -> _EventPoints:
        ranked = ranking.events
        level = ranked["level"].astype("string")
        failed = ranked["http_status"].astype("Float64").ge(500).fillna(False)
        masks = []
        for name, levels, _ in LEVEL_GROUPS:
            if levels:
                mask = level.isin(list(levels)).fillna(False)
                if name == "error":
                    mask = mask | (level.isna() & failed)
            else:
                mask = level.isna() & ~failed
            masks.append(mask.to_numpy(dtype=bool))
        group = np.select(masks, list(range(len(LEVEL_GROUPS))), default=-1) if masks else np.zeros(0, dtype=int)
        lane = ranking.lane
        customdata = np.column_stack(
            [_texts(lane, LABEL_LIMIT), _texts(ranking.citation, 120), _texts(ranked["message"], HOVER_MESSAGE_LIMIT)]
        )
        return cls(group, _ms(ranked["timestamp"]), lanes.y(lane), customdata)

    def traces(self, keep: int) -> list[Trace]:
        """One trace per level group of the first ``keep`` events."""
        traces: list[Trace] = []
        head = self.group[:keep]
        for g, (name, _, colour) in enumerate(LEVEL_GROUPS):
            chosen = np.flatnonzero(head == g)
            if not len(chosen):
                continue
            traces.append(
                {
                    "customdata": self.customdata[chosen],
                    "hovertemplate": _EVENT_HOVER + f"<extra>{name}</extra>",
                    "legendgroup": "levels",
                    "legendgrouptitle": {"text": "events by level"},
                    "marker": {"color": colour, "opacity": 0.85, "size": 7 if name in ("critical", "error") else 6},
                    "meta": "events",
                    "mode": "markers",
                    "name": name,
                    "x": self.x[chosen],
                    "y": self.y[chosen],
                    "type": "scatter",
                }
            )
        return traces


def _density_trace(events: pd.DataFrame, lanes: _Lanes, bucket: str) -> Trace:
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
    return {
        "customdata": np.column_stack([n, np.full(len(n), label, dtype=object)]),
        "hovertemplate": _DENSITY_HOVER,
        "marker": {
            "color": DENSITY_COLOUR,
            "line": {"width": 0},
            "size": np.clip(5 + 3 * np.log10(n), 5, 18).round(1),
            "symbol": "square",
        },
        "meta": "density",
        "mode": "markers",
        "name": f"all events (count per {label})",
        "x": _ms(cells["bucket"] + width / 2),
        "y": cells["y"].to_numpy(dtype="int16"),
        "type": "scatter",
    }


def _add_changes(fig: dict[str, Any], changes: pd.DataFrame, lanes: _Lanes) -> None:
    if changes.empty:
        return
    changes = changes.sort_values("timestamp", kind="stable").head(MAX_CHANGES)
    kind = changes["change_type"].astype("string").fillna("change")
    customdata = np.column_stack(
        [_texts(kind, 40), _texts(_citation(changes), 120), _texts(changes["message"], HOVER_MESSAGE_LIMIT)]
    )
    trace = {
        "customdata": customdata,
        "hovertemplate": _CHANGE_HOVER + "<extra>change</extra>",
        "marker": {"color": CHANGE_COLOUR, "line": {"color": "white", "width": 1.5}, "size": 14, "symbol": "diamond"},
        "meta": "changes",
        "mode": "markers",
        "name": "changes",
        "x": _ms(changes["timestamp"]),
        "y": lanes.y(lane_of(changes)),
        "type": "scatter",
    }
    fig["data"].append(_on_axes(trace, "events"))


def _add_alerts(fig: dict[str, Any], intervals: pd.DataFrame, lanes: _Lanes, span_end: pd.Timestamp | None) -> None:
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
    lane_names = lanes.alert_lanes(frame["service"].astype("string"))
    # Just above the lane's events, so the span does not hide them; alerts sharing a lane are
    # stacked (the k-th one a little higher, up to three levels) so that they don't hide each other.
    base = lanes.y(lane_names)
    level = pd.Series(base).groupby(base).cumcount().to_numpy() % 3
    y = base + ALERT_OFFSET + ALERT_STACK_STEP * level
    name = _texts(frame["alert_name"].astype("string").fillna(frame["alert_id"].astype("string")), 80)
    line = frame["line"].astype("Int64").astype("string")
    cite = _texts((frame["source"].astype("string") + ":" + line).fillna(frame["source"].astype("string")), 120)
    open_ = frame["resolved"].isna().to_numpy()
    end_cite = cite
    if "resolved_line" in frame.columns:
        # A span's end cites the notification that resolved it, not the one that fired it.
        end_source = frame["resolved_source"].astype("string")
        resolved_cite = (end_source + ":" + frame["resolved_line"].astype("Int64").astype("string")).fillna(end_source)
        end_cite = np.where(open_ | resolved_cite.isna().to_numpy(), cite, _texts(resolved_cite.fillna(""), 120))
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
    for k, point_cite in enumerate((cite, end_cite)):  # start and end point of each span
        customdata[k::3, 0] = name
        customdata[k::3, 1] = states[:, k]
        customdata[k::3, 2] = point_cite
    customdata[2::3] = ""
    spans = {
        "connectgaps": False,
        "customdata": customdata,
        "hovertemplate": _ALERT_HOVER + "<extra>alert</extra>",
        "line": {"color": ALERT_COLOUR, "width": 12},
        "marker": {"color": "#b30000", "line": {"color": "#b30000", "width": 2}, "size": 16, "symbol": "line-ns"},
        "meta": "alerts",
        "mode": "lines+markers",
        "name": "alerts (firing → resolved)",
        "x": xs,
        "y": ys,
        "type": "scatter",
    }
    fig["data"].append(_on_axes(spans, "events"))
    if n <= MAX_ALERT_LABELS:
        # The alert's name above the start of its span, while there are few enough to stay legible.
        # A text-only trace: plotly.js draws no text for points after a gap in a lines trace.
        names = {
            "hoverinfo": "skip",
            "meta": "alerts",
            "mode": "text",
            "name": "alert names",
            "showlegend": False,
            "text": [shorten(str(v), 40) for v in name],
            "textfont": {"color": "#8b0000", "size": 10},
            "textposition": "top right",
            "x": xs[0::3],
            "y": ys[0::3],
            "type": "scatter",
        }
        fig["data"].append(_on_axes(names, "events"))


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
    # A bucket with nothing to divide by has no rate (a gap in the line), not a rate of 0 %.
    rate = (failed / total.where(total > 0)).astype("float64") * 100
    out = pd.DataFrame({"failed": failed.astype("int64"), "rate": rate.round(2)}, index=sums.index)
    out.attrs["what"] = what
    out.attrs["rate"] = "error rate (%)" if what == "failed requests" else "error events (% of events)"
    out.attrs["width"] = width
    return out


def _add_signals(fig: dict[str, Any], counts: pd.DataFrame, bucket: str) -> None:
    if counts.empty or int(counts["events"].sum()) == 0:
        return
    signals = _signals(counts, bucket)
    label = _duration_label(signals.attrs["width"])
    x = _ms(signals.index.to_series() + signals.attrs["width"] / 2)
    bars = {
        "hovertemplate": _SIGNAL_HOVER,
        "marker": {"color": "rgba(214, 39, 40, 0.55)", "line": {"width": 0}},
        "meta": "signals",
        "name": f"{signals.attrs['what']} per {label}",
        "x": x,
        "y": signals["failed"].to_numpy(),
        "type": "bar",
    }
    rate = {
        "hovertemplate": _SIGNAL_HOVER,
        "line": {"color": "#222222", "width": 1.8},
        "meta": "signals",
        "mode": "lines",
        "name": signals.attrs["rate"],
        "x": x,
        "y": signals["rate"].to_numpy(),
        "type": "scatter",
    }
    fig["data"].extend([_on_axes(bars, "signals"), _on_axes(rate, "rate")])
    layout = fig["layout"]
    layout["yaxis2"].update(title={"text": f"{signals.attrs['what']} / {label}"}, rangemode="tozero")
    layout["yaxis3"].update(title={"text": "error rate %"}, rangemode="tozero", showgrid=False)


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
    fig: dict[str, Any], known: list[tuple[str, pd.Timestamp]], span_end: pd.Timestamp | None
) -> pd.Timedelta | None:
    """The time span the chart shows at first (the data's x range), to size labels against."""
    lows, highs = [], []
    for trace in fig["data"]:
        x = trace.get("x")
        if x is not None and len(x):
            values = np.asarray(x, dtype="float64")
            if np.isfinite(values).any():
                lows.append(np.nanmin(values))
                highs.append(np.nanmax(values))
    times = [t for _, t in known] + ([span_end] if span_end is not None else [])
    lows.extend(t.value / 1e6 for t in times)
    highs.extend(t.value / 1e6 for t in times)
    if not lows:
        return None
    return pd.Timedelta(milliseconds=max(highs) - min(lows))


def _add_phases(fig: dict[str, Any], incident: Incident, span_end: pd.Timestamp | None) -> None:
    """Shaded regions between consecutive known phases, and a labelled vertical line at each phase."""
    known = [(p, t) for p in PHASES if (t := incident.phase(p)) is not None]
    regions = [(a, b, ta, tb) for (a, ta), (b, tb) in itertools.pairwise(known) if tb > ta]
    if known and known[-1][0] not in ("recovered", "resolved") and span_end is not None and span_end > known[-1][1]:
        regions.append((known[-1][0], "end of data", known[-1][1], span_end))
    visible = _visible_span(fig, known, span_end)
    shapes = fig["layout"].setdefault("shapes", [])
    annotations = fig["layout"].setdefault("annotations", [])
    for a, b, t0, t1 in regions:
        label = f"{a} → {b}"
        shapes.append(
            {
                "fillcolor": PHASE_FILL[a],
                "layer": "below",
                "legendgroup": "phases",
                "legendgrouptitle": {"text": "incident phases"},
                "line": {"width": 0},
                "name": label,
                "showlegend": True,
                "type": "rect",
                "x0": _iso(t0),
                "x1": _iso(t1),
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "paper",
            }
        )
        if visible is None or (t1 - t0) < visible * 0.015:
            continue  # too narrow even for an upright label: the legend and the phase lines name it
        wide = (t1 - t0) >= visible * 0.15
        annotations.append(
            {
                "bgcolor": "rgba(255,255,255,0.6)",
                "font": {"color": "#333333", "size": 11},
                "showarrow": False,
                "text": f"<i>{label}</i>",
                "textangle": 0 if wide else -90,
                "x": _iso(t0 + (t1 - t0) / 2),
                "xref": "x",
                "y": 0.995,
                "yanchor": "top",
                "yref": "y domain",
            }
        )
    for i, (phase, ts) in enumerate(known):
        colour = PHASE_LINE_COLOURS[phase]
        shapes.append(
            {
                "line": {"color": colour, "dash": "dash", "width": 1.5},
                "type": "line",
                "x0": _iso(ts),
                "x1": _iso(ts),
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "paper",
            }
        )
        # Labels alternate between two heights so that close phases stay readable.
        annotations.append(
            {
                "bgcolor": "rgba(255,255,255,0.85)",
                "font": {"color": colour, "size": 12},
                "showarrow": False,
                "text": f"<b>{phase}</b> {ts.tz_convert('UTC').strftime('%H:%M:%S')}",
                "x": _iso(ts),
                "xref": "x",
                "y": 1.06 if i % 2 else 1.015,
                "yanchor": "bottom",
                "yref": "paper",
            }
        )
    if not shapes:
        del fig["layout"]["shapes"]
    if not annotations:
        del fig["layout"]["annotations"]


def _layout(fig: dict[str, Any], incident: Incident, title: str, lanes: _Lanes, has_counts: bool) -> None:
    window = ""
    if incident.window_start is not None and incident.window_end is not None:
        start = incident.window_start.strftime("%Y-%m-%d %H:%M")
        window = f"{start} – {incident.window_end.strftime('%Y-%m-%d %H:%M')} UTC"
    layout = fig["layout"]
    layout.update(
        title={
            "text": f"<b>{title}</b>"
            + (f"<br><span style='font-size:13px;color:#555'>{window}</span>" if window else ""),
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
        },
        template=plotly_white_template(),
        hovermode="closest",
        height=max(620, 330 + 34 * len(lanes.labels)),
        margin={"l": 150, "r": 40, "t": 130, "b": 40},
        legend={"font": {"size": 11}, "groupclick": "toggleitem", "orientation": "v", "x": 1.06, "y": 1.0},
        hoverlabel={"align": "left", "namelength": 20},
        bargap=0.05,
        font={"family": "DejaVu Sans, Arial, sans-serif", "size": 12},
    )
    layout["yaxis"].update(
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
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(type="date", showgrid=True, gridcolor="#f0f0f0")
    layout["xaxis2"].update(
        title={"text": "time (UTC)"},
        rangeslider={"thickness": 0.06, "visible": True},
        rangeselector={
            "buttons": [
                {"count": 15, "label": "15m", "step": "minute", "stepmode": "backward"},
                {"count": 1, "label": "1h", "step": "hour", "stepmode": "backward"},
                {"label": "all", "step": "all"},
            ],
            "font": {"size": 10},
            "x": 0,
            "y": 1.02,
        },
    )
    _default_view(layout, incident)
    if not has_counts:
        layout.setdefault("annotations", []).append(
            {
                "font": {"color": "#888888"},
                "showarrow": False,
                "text": "no per-bucket counts",
                "x": 0.5,
                "xref": "x2 domain",
                "y": 0.5,
                "yref": "y2 domain",
            }
        )


def default_view(incident: Incident) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The x range the chart opens on when the data spans far more than what matters: the incident
    (onset to its last phase, with a quarter of its length on each side), or without one the densest
    half of the data (incident.json ``time_span``); None to show the whole window."""
    if incident.window_start is None or incident.window_end is None:
        return None
    found = [t for p in PHASES if (t := incident.phase(p)) is not None]
    if found:
        low, high = min(found), max(found)
    else:
        dense = incident.time_span.get("densest_half") or {}
        if not dense.get("start") or not dense.get("end"):
            return None
        low, high = pd.Timestamp(dense["start"]), pd.Timestamp(dense["end"])
    pad = max((high - low) / 4, pd.Timedelta("5min"))
    low, high = max(low - pad, incident.window_start), min(high + pad, incident.window_end)
    # A view that is most of the window is the window.
    return (low, high) if (high - low) * 3 < incident.window_end - incident.window_start else None


def _default_view(layout: dict[str, Any], incident: Incident) -> None:
    """Open on :func:`default_view` ("all" in the range selector shows the whole window), and list the
    outlier timestamps left off the axis (they are in no trace: a 1970 line would squash the rest)."""
    view = default_view(incident)
    if view is not None:
        layout["xaxis2"].update(range=[_iso(view[0]), _iso(view[1])], autorange=False)
    outliers = int(incident.time_span.get("outlier_events") or 0)
    if outliers:
        listed = [str(o.get("timestamp")) for o in incident.time_span.get("outliers") or [] if isinstance(o, dict)]
        shown = ", ".join(dict.fromkeys(listed[:3]))
        layout.setdefault("annotations", []).append(
            {
                "font": {"color": "#a33", "size": 11},
                "showarrow": False,
                "text": plotly_text(f"{outliers} outlier event(s) off the axis: {shown} (see Data quality)", 160),
                "x": 1.0,
                "xanchor": "right",
                "xref": "paper",
                "y": 1.0,
                "yanchor": "bottom",
                "yref": "paper",
            }
        )


def _empty_figure(title: str) -> dict[str, Any]:
    return {
        "data": [],
        "layout": {
            "annotations": [
                {
                    "font": {"color": "#666666", "size": 16},
                    "showarrow": False,
                    "text": "No data: no events, counts or phases in the window",
                    "x": 0.5,
                    "xref": "paper",
                    "y": 0.5,
                    "yref": "paper",
                }
            ],
            "height": 400,
            "template": plotly_white_template(),
            "title": {"text": f"<b>{title}</b>", "x": 0.01},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
        },
    }


def plotly_white_template() -> dict[str, Any]:
    """plotly.py's "plotly_white" template as a figure holds it (``layout.template``), read from
    the file plotly.py's template registry loads it from (a test holds them equal): the registry
    builds it through the validators, whose import alone cost more than the whole chart."""
    return dict(json.loads(_plotly_white_text()))


@functools.lru_cache(maxsize=1)
def _plotly_white_text() -> str:
    path = resources.files("plotly").joinpath("package_data", "templates", "plotly_white.json")
    return path.read_text(encoding="utf-8")


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
