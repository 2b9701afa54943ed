"""``Timeline``: the result of a build, to explore in a notebook and to save as the report files.

A :class:`Timeline` holds the event table (when kept), the aggregates the analysis works from, the
:class:`~pmtimeline.incident.Incident` and the per-source accounting. It is immutable: overriding a
phase returns a new Timeline (:meth:`Timeline.with_phases`). Shared outputs (draft, chart, exports,
saved files) are redacted by default (``config.redact``); the in-memory ``events`` are not, since
whoever holds the notebook holds the logs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import threading
import tomllib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from pmtimeline.aggregate import Aggregates, EventDetails
from pmtimeline.alert_intervals import alert_intervals
from pmtimeline.analysis import apply_overrides
from pmtimeline.config import PHASES, TimelineConfig, check_zone, parse_time
from pmtimeline.correlate import follow, link_requests
from pmtimeline.errors import ConfigError, OutputError
from pmtimeline.escaping import html_text, toml_string
from pmtimeline.export import export_events
from pmtimeline.incident import Incident, iso_utc
from pmtimeline.output_files import OutputTransaction
from pmtimeline.redact import Redactor
from pmtimeline.schema import COUNT_COLUMNS, ERROR_LEVELS, EVENT_COLUMNS, conform_events
from pmtimeline.sources import Reject, SourceAccounting
from pmtimeline.template_mining import mine_templates

#: Files a saved output directory holds (``pmtimeline build`` and :meth:`Timeline.save`).
EVENTS_FILE: Final = "events.parquet"
INCIDENT_FILE: Final = "incident.json"
OVERRIDES_FILE: Final = "incident.toml"
POSTMORTEM_FILE: Final = "postmortem.md"
CHART_FILE: Final = "timeline.html"
IMAGE_FILE: Final = "timeline.png"
SVG_FILE: Final = "timeline.svg"
DATA_DIR: Final = "data"  # aggregates kept so that `report`/`chart` regenerate without the logs

#: A time given by a user: ISO 8601 text, or a datetime/Timestamp (without zone: in ``config.tz``).
TimeLike = str | dt.datetime | pd.Timestamp


@dataclass(frozen=True)
class SavedOutputs:
    """What :meth:`Timeline.save` wrote, and what it could not write (with the reason)."""

    outdir: Path
    written: tuple[Path, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """An analyzed incident: events, aggregates, incident and accounting. Build one with
    :func:`pmtimeline.load` (files, directories, connectors, frames) or :meth:`Timeline.open`
    (a saved output directory)."""

    incident: Incident
    aggregates: Aggregates
    config: TimelineConfig
    accounting: tuple[SourceAccounting, ...] = ()
    rejected: tuple[Reject, ...] = ()
    events_frame: pd.DataFrame | None = None
    _redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)
    # Redacted copies of this Timeline's own frames: redaction is costly, and the draft, the chart,
    # the exports and save() all need the same ones. Not copied by dataclasses.replace (init=False).
    _shared_cache: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -- exploring -------------------------------------------------------------------------------

    @property
    def events(self) -> pd.DataFrame:
        """The event table (time-ordered); the notable events (a bounded set, see
        :func:`pmtimeline.load`) when the full table was not kept."""
        return self.events_frame if self.events_frame is not None else self.aggregates.notable

    @property
    def sources(self) -> pd.DataFrame:
        """Per-source accounting: format, lines read, events, continuation lines, rejects, zone."""
        rows = [a.to_dict() for a in self.accounting]
        return pd.DataFrame(rows)

    @property
    def intervals(self) -> pd.DataFrame:
        """Alert intervals: one row per alert and firing episode (alert_id, alert_name, service,
        severity, fired, acknowledged, resolved, source, line, summary, and the source and line of
        each state change: fired_source, fired_line, ...; see :mod:`pmtimeline.alert_intervals`)."""
        return alert_intervals(self.aggregates.notable)

    def around(self, time: TimeLike, minutes: float = 5) -> pd.DataFrame:
        """Events within ``minutes`` either side of ``time``, time-ordered.

        ``time`` is ISO 8601 text, a datetime or a Timestamp; a time without zone is read in the
        run's zone (``config.tz``, UTC by default).
        """
        if not minutes > 0:
            raise ConfigError(f"minutes must be positive, not {minutes!r}")
        center = self._time(time)
        delta = pd.Timedelta(minutes=minutes)
        ev = self.events
        mask = ((ev["timestamp"] >= center - delta) & (ev["timestamp"] <= center + delta)).to_numpy(dtype=bool)
        return ev.loc[mask].reset_index(drop=True)

    def traces(self, *, errors_only: bool = False) -> pd.DataFrame:
        """Every request or trace id carried by two or more events: how many events, sources and
        services it spans, its first and last time, and whether any of its events is an error.

        Pick one and follow it with :meth:`for_trace`.
        """
        links = link_requests(self.events)
        if errors_only:
            links = links.loc[links["error"].to_numpy(dtype=bool)].reset_index(drop=True)
        return links

    def for_trace(self, correlation_id: str) -> pd.DataFrame:
        """The events of one request or trace (its trace id or request id) across every source,
        time-ordered; empty when no event carries it."""
        if not isinstance(correlation_id, str) or not correlation_id.strip():
            raise ConfigError("for_trace needs a trace or request id (a non-empty string)")
        return follow(self.events, correlation_id.strip())

    def templates(self) -> pd.DataFrame:
        """Message templates (mined: see :func:`pmtimeline.mine_templates`) with their counts before and
        during the incident.

        Columns: ``template``, ``count``, ``before`` (events before onset), ``during`` (from onset
        to recovery), ``errors`` (error events), ``first_seen``, ``new``. ``new`` marks the *error*
        templates of the incident: error events during it, and never seen before onset. New
        templates come first, then by events during the incident.
        """
        ev = self.events
        columns = ["template", "count", "before", "during", "errors", "first_seen", "new"]
        if ev.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        tmpl = mine_templates(ev["message"].fillna("")).fillna("")
        onset = self.incident.phase("onset")
        end = self.incident.phase("recovered") or self.incident.window_end
        stamps = ev["timestamp"]
        if onset is None:
            before = np.ones(len(ev), dtype=bool)
            during = np.zeros(len(ev), dtype=bool)
        else:
            before = (stamps < onset).to_numpy(dtype=bool, na_value=False)
            upper = (stamps <= end) if end is not None else pd.Series(True, index=ev.index)
            during = ((stamps >= onset) & upper).to_numpy(dtype=bool, na_value=False)
        error = ev["level"].isin(list(ERROR_LEVELS)).to_numpy(dtype=bool, na_value=False) | (
            ev["http_status"] >= 500
        ).to_numpy(dtype=bool, na_value=False)
        frame = pd.DataFrame(
            {
                "template": tmpl.to_numpy(),
                "before": before,
                "during": during,
                "error_during": error & during,
                "error": error,
                "timestamp": stamps.to_numpy(),
            }
        )
        frame = frame.loc[frame["template"] != ""]
        out = frame.groupby("template", sort=False).agg(
            count=("template", "size"),
            before=("before", "sum"),
            during=("during", "sum"),
            errors=("error", "sum"),
            errors_during=("error_during", "sum"),
            first_seen=("timestamp", "min"),
        )
        out["first_seen"] = pd.to_datetime(out["first_seen"], utc=True)
        out["new"] = (out["before"] == 0) & (out["errors_during"] > 0)
        out = out.sort_values(["new", "during", "count"], ascending=False, kind="stable").reset_index()
        return out[columns]

    def with_phases(self, **overrides: TimeLike | None) -> Timeline:
        """A new Timeline with phases set by hand, e.g. ``with_phases(onset="2024-03-12T08:50:00Z")``.

        Every metric, candidate and output follows. A time without zone is read in ``config.tz``;
        ``None`` drops an earlier override, so that phase is detected again.
        """
        unknown = set(overrides) - set(PHASES)
        if unknown:
            raise ConfigError(f"unknown phase(s): {', '.join(sorted(unknown))}; use {', '.join(PHASES)}")
        cleared = {k for k, v in overrides.items() if v is None}
        given = {k: self._time(v) for k, v in overrides.items() if v is not None}
        merged = {**{k: v for k, v in self.config.phase_overrides.items() if k not in cleared}, **given}
        config = dataclasses.replace(self.config, phase_overrides=merged)
        # Start from the incident without the cleared overrides, so those phases are detected again.
        base = dataclasses.replace(
            self.incident, phase_overridden=tuple(p for p in self.incident.phase_overridden if p not in cleared)
        )
        incident = apply_overrides(base, given, self.aggregates, config)
        return self._derived(incident=incident, config=config)

    def with_title(self, title: str) -> Timeline:
        """A new Timeline with another incident title."""
        config = dataclasses.replace(self.config, title=title)
        return self._derived(incident=self.incident.with_title(title), config=config)

    def _derived(self, *, incident: Incident, config: TimelineConfig) -> Timeline:
        """A copy with another incident and config; the same frames, so their redacted copies are kept."""
        derived = dataclasses.replace(self, incident=incident, config=config)
        if config.redact == self.config.redact:
            derived._shared_cache.update(self._shared_cache)
        return derived

    # -- shared outputs (redacted by default) -------------------------------------------------------

    def shared_incident(self) -> Incident:
        """The incident as it goes into shared outputs: redacted unless ``config.redact`` is off."""
        if not self.config.redact:
            return dataclasses.replace(self.incident, redacted=False)
        return dataclasses.replace(self._redactor.redact_incident(self.incident), redacted=True)

    def shared_events(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """Events as they go into shared outputs: redacted unless ``config.redact`` is off."""
        frame = self.events if events is None else events
        if not self.config.redact:
            return frame
        cached = self._shared_cache.get(id(frame))
        if cached is not None and cached[0] is frame:
            return cached[1]
        redacted = self._redactor.redact_events(frame)
        if frame is self.events_frame or frame is self.aggregates.notable:
            self._shared_cache[id(frame)] = (frame, redacted)
        return redacted

    def _shared_details(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """A table of the aggregates' details as shared outputs hold it: the columns derived from
        redacted event columns (url paths, messages) redacted, actors pseudonymized."""
        if name == "actor_spans":
            return self._redactor.redact_actors(frame)
        if name == "users" and not frame.empty:
            # Hashes of names can be checked against guessed names: hashed again with a key that is
            # not kept, they still count distinct users but name no one.
            key = secrets.token_hex(8)
            rehashed = pd.util.hash_array(frame["user_hash"].astype(str).to_numpy(dtype=object), hash_key=key)
            return frame.assign(user_hash=rehashed)
        if name == "templates" and not frame.empty:
            return frame.assign(template=self._redactor.redact_templates(frame["template"]))
        if name == "endpoints" and not frame.empty:
            return frame.assign(endpoint=self._redactor.redact_series(frame["endpoint"]))
        return frame

    def postmortem(self, *, chart_image: str | None = None, template_text: str | None = None) -> str:
        """The postmortem draft (Markdown), every claim citing its ``source:line``."""
        return self._postmortem(self.shared_incident(), chart_image=chart_image, template_text=template_text)

    def _postmortem(
        self,
        incident: Incident,
        intervals: pd.DataFrame | None = None,
        *,
        chart_image: str | None = None,
        template_text: str | None = None,
    ) -> str:
        """:meth:`postmortem` of the shared ``incident`` (and the alert ``intervals`` of the shared
        notable events), when the caller has them already."""
        from pmtimeline.postmortem import render_postmortem

        if template_text is None and self.config.template:
            template_text = _read_text(self.config.template, "template")
        notable = self.shared_events(self.aggregates.notable)
        return render_postmortem(
            incident,
            notable,
            self.config,
            intervals=alert_intervals(notable) if intervals is None else intervals,
            chart_image=chart_image,
            template_text=template_text,
        )

    def chart(self) -> Any:
        """The interactive timeline as a Plotly Figure (``.show()`` in a notebook)."""
        import plotly.graph_objects as go

        from pmtimeline.chart import timeline_spec

        notable = self.shared_events(self.aggregates.notable)
        spec = timeline_spec(
            self.shared_incident(), notable, self.aggregates.counts, self.config, intervals=alert_intervals(notable)
        )
        return go.Figure(spec)

    def _chart_page(self, incident: Incident, intervals: pd.DataFrame) -> tuple[str, dict[str, Any]]:
        """The chart's HTML page and figure dictionary (:func:`pmtimeline.chart.timeline_page`)."""
        from pmtimeline.chart import timeline_page

        notable = self.shared_events(self.aggregates.notable)
        return timeline_page(incident, notable, self.aggregates.counts, self.config, intervals=intervals)

    def export(self, fmt: str) -> bytes:
        """The events in an export format (csv, jsonl, parquet, timesketch-jsonl, timesketch-csv)."""
        return export_events(self.shared_events(), fmt)

    # -- saving and reopening ------------------------------------------------------------------------

    def save(
        self, outdir: str | os.PathLike[str], *, images: bool = True, outputs: OutputTransaction | None = None
    ) -> SavedOutputs:
        """Write the same files as ``pmtimeline build``: events.parquet (when the events were kept,
        see ``load(keep_events=...)``), incident.json, postmortem.md,
        timeline.html, timeline.png/.svg (when a browser is available), incident.toml (a template for
        phase overrides) and data/ (the aggregates, so ``report`` and ``chart`` can regenerate).

        The files are staged and moved into place together (:mod:`pmtimeline.output_files`): a
        failure leaves the previous ones as they were, and a link at an output path is replaced,
        never written through. Pass the ``outputs`` of a larger run to move them with its files
        when it commits.

        Raises:
            OutputError: a file cannot be written (``cannot write PATH: reason``).
        """
        from pmtimeline.chart import figure_image

        if outputs is None:
            with OutputTransaction(outdir) as own:
                return self.save(outdir, images=images, outputs=own)
        out = Path(outdir)
        written: list[Path] = []
        warnings: list[str] = []

        def write(name: str, data: bytes | str) -> None:
            path = out / name
            if isinstance(data, str):
                outputs.write_text(path, data)
            else:
                outputs.write_bytes(path, data)
            written.append(path)

        raw = not self.config.redact or self.config.keep_raw
        if self.events_frame is not None:
            events = self.events_frame if raw else self.shared_events(self.events_frame)
            write(EVENTS_FILE, export_events(events, "parquet"))
        shared_notable = self.shared_events(self.aggregates.notable)
        # The tables of data/ are encoded and written on a thread of their own while the chart and
        # the draft are made (Parquet encoding releases the GIL): they need nothing of each other.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmtimeline-save") as pool:
            tables = pool.submit(self._data_tables, self.aggregates.notable if raw else shared_notable, raw)
            shared, intervals, page, fig = self._shared_views(shared_notable)
            for name, data in tables.result():
                write(name, data)
        write(INCIDENT_FILE, shared.to_json())
        if not (out / OVERRIDES_FILE).exists():
            write(OVERRIDES_FILE, overrides_template(self.incident, self.config.tz))
        write(CHART_FILE, page)
        chart_image: str | None = None
        if images:
            try:
                write(IMAGE_FILE, figure_image(fig, "png"))
                write(SVG_FILE, figure_image(fig, "svg"))
                chart_image = IMAGE_FILE
            except OutputError as exc:
                warnings.append(f"{exc} ({CHART_FILE} was still written)")
        write(POSTMORTEM_FILE, self._postmortem(shared, intervals, chart_image=chart_image))
        return SavedOutputs(out, tuple(written), tuple(warnings))

    def _data_tables(self, notable: pd.DataFrame, raw: bool) -> list[tuple[str, bytes]]:
        """The files of data/ (the aggregates, as shared outputs hold them unless ``raw``) as
        (name, Parquet bytes); ``notable`` is the notable events as they are to be written."""
        tables = [
            (f"{DATA_DIR}/notable.parquet", export_events(notable, "parquet")),
            (f"{DATA_DIR}/counts.parquet", _frame_parquet(self.aggregates.counts)),
            (f"{DATA_DIR}/latency.parquet", _frame_parquet(self.aggregates.latency)),
            (
                f"{DATA_DIR}/actors.parquet",
                _frame_parquet(self.aggregates.actors if raw else self._redactor.redact_actors(self.aggregates.actors)),
            ),
        ]
        details = self.aggregates.event_details(self.config)
        for name, frame in details.frames().items():
            shared = frame if raw else self._shared_details(name, frame)
            tables.append((f"{DATA_DIR}/details_{name}.parquet", _frame_parquet(shared)))
        tables.append((f"{DATA_DIR}/settings.json", json.dumps(_settings_of(self.config), indent=2).encode("utf-8")))
        return tables

    def _shared_views(self, shared_notable: pd.DataFrame) -> tuple[Incident, pd.DataFrame, str, dict[str, Any]]:
        """What incident.json, the chart and the draft share: one redacted incident and one set of
        alert intervals (each costs as much to make again as to write), and the chart's page and
        figure dictionary."""
        shared = self.shared_incident()
        intervals = alert_intervals(shared_notable)
        page, fig = self._chart_page(shared, intervals)
        return shared, intervals, page, fig

    @classmethod
    def open(cls, outdir: str | os.PathLike[str], config: TimelineConfig | None = None) -> Timeline:
        """Reopen a saved output directory, applying its ``incident.toml`` (title, phase overrides).

        Nothing is read from the logs: the aggregates under ``data/`` are enough to regenerate the
        draft and the chart.
        """
        out = Path(outdir)
        try:
            incident = Incident.from_dict(json.loads((out / INCIDENT_FILE).read_text(encoding="utf-8")))
            notable = conform_events(pd.read_parquet(out / DATA_DIR / "notable.parquet"))
            counts = pd.read_parquet(out / DATA_DIR / "counts.parquet")
            latency = pd.read_parquet(out / DATA_DIR / "latency.parquet")
            actors = pd.read_parquet(out / DATA_DIR / "actors.parquet")
            # Outputs written before the details existed have none: they are then derived from notable.
            names = EventDetails.empty().frames()
            paths = {name: out / DATA_DIR / f"details_{name}.parquet" for name in names}
            details = (
                EventDetails.from_frames({name: pd.read_parquet(path) for name, path in paths.items()})
                if all(path.exists() for path in paths.values())
                else None
            )
            settings = json.loads((out / DATA_DIR / "settings.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{out} is not a pmtimeline output directory (missing {Path(exc.filename).name})"
            ) from exc
        except (ValueError, OSError) as exc:
            raise ConfigError(f"cannot read {out}: {exc}") from exc
        events = None
        if (out / EVENTS_FILE).exists():
            events = conform_events(pd.read_parquet(out / EVENTS_FILE))
        base = config or TimelineConfig(**_config_kwargs(settings))
        file_overrides = read_overrides(out / OVERRIDES_FILE, base.tz)
        title = file_overrides.pop("title", None) or (base.title if config else incident.title)
        phases = {k: v for k, v in file_overrides.items() if k in PHASES}
        base = dataclasses.replace(base, title=str(title), phase_overrides={**base.phase_overrides, **phases})
        aggregates = Aggregates(
            counts=counts[list(COUNT_COLUMNS)] if set(COUNT_COLUMNS) <= set(counts.columns) else counts,
            notable=notable,
            latency=latency,
            actors=actors,
            window_start=incident.window_start,
            window_end=incident.window_end,
            details=details,
        )
        incident = apply_overrides(incident.with_title(str(title)), dict(base.phase_overrides), aggregates, base)
        return cls(
            incident=incident,
            aggregates=aggregates,
            config=base,
            accounting=incident.sources,
            events_frame=events,
        )

    # -- notebook display ------------------------------------------------------------------------------

    def _time(self, value: TimeLike) -> pd.Timestamp:
        """A user's time as UTC; a time without zone is read in ``config.tz``."""
        return parse_time(value, self.config.tz)

    def _repr_html_(self) -> str:
        """A notebook summary: what was read, then the incident (redacted as shared outputs are,
        since notebooks are shared with their outputs; every value escaped)."""
        esc = html_text
        lines = sum(a.lines_read for a in self.accounting)
        rejected = sum(a.rejected_total for a in self.accounting)
        partial = [a.name for a in self.accounting if a.partial or a.skipped_reason]
        window = " – ".join(iso_utc(t) or "…" for t in (self.incident.window_start, self.incident.window_end))
        read = (
            f"{len(self.events):,} events from {len(self.accounting)} sources ({lines:,} lines, "
            f"{rejected:,} rejected); window {window}"
        )
        warn = f"<p><b>Partial or skipped:</b> {esc(', '.join(partial)[:500])}</p>" if partial else ""
        return (
            f"<div class='pmtimeline-timeline'><p>Timeline: {esc(read)}</p>{warn}"
            f"{self.shared_incident()._repr_html_()}</div>"
        )

    def __repr__(self) -> str:
        onset = iso_utc(self.incident.phase("onset")) or "none"
        return f"<Timeline {self.incident.title!r}: {len(self.events)} events, onset {onset}>"


def overrides_template(incident: Incident, tz: str = "UTC") -> str:
    """The ``incident.toml`` written beside a build: the detected phases, commented out, to edit,
    and the zone ``tz`` (the run's ``--tz``) that a phase time written without zone is read in."""
    lines = [
        "# Edit and run `pmtimeline report OUTDIR` (and `pmtimeline chart OUTDIR`) to regenerate.",
        "# Uncomment a phase to override the detected time (ISO 8601; a time without zone is read in tz).",
        f"title = {toml_string(incident.title)}",
        f"tz = {toml_string(tz)}",
        "",
        "[phases]",
    ]
    for p in PHASES:
        lines.append(f'# {p} = "{iso_utc(incident.phase(p)) or ""}"')
    return "\n".join(lines) + "\n"


def read_overrides(path: str | os.PathLike[str], tz: str = "UTC") -> dict[str, Any]:
    """Read an ``incident.toml``: ``title`` and ``[phases]`` (onset, detected, ...) as UTC times.

    A phase time without zone is read in the file's ``tz`` key, else in ``tz`` (the run's ``--tz``),
    as ``--onset`` is.

    Raises:
        ConfigError: for invalid TOML, unknown keys or times that do not parse.
    """
    p = Path(path)
    if not p.exists():
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    out: dict[str, Any] = {}
    unknown = set(data) - {"title", "tz", "phases"}
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}; expected title, tz and [phases]")
    zone = str(data.get("tz") or tz)
    check_zone(zone)
    if "title" in data:
        out["title"] = str(data["title"])
    phases = data.get("phases", {})
    if not isinstance(phases, Mapping):
        raise ConfigError(f"{p}: [phases] must be a table")
    bad = set(phases) - set(PHASES)
    if bad:
        raise ConfigError(f"{p}: unknown phase(s) {', '.join(sorted(bad))}; use {', '.join(PHASES)}")
    for name, value in phases.items():
        if value in ("", None):
            continue
        out[name] = parse_time(value if isinstance(value, dt.datetime) else str(value), zone, f"{p} [phases] {name}")
    return out


_SETTINGS_KEYS: Final = (
    "title",
    "bucket",
    "count_resolution",
    "display_tz",
    "redact",
    "keep_raw",
    "slo",
    "cost_per_failed_request",
    "revenue_per_minute",
    "tz",
    "chart_max_points",
)


def preload_outputs() -> threading.Thread:
    """Start loading, on a thread, what :meth:`Timeline.save` needs the first time it writes the
    draft and the chart: the template engine with the built-in template compiled, and plotly.js
    (about 0.4 s in all). ``pmtimeline build`` calls it before it reads the logs, so that its
    report does not wait for them after the analysis. Returns the (daemon) thread; a failure
    here is left for :meth:`Timeline.save` to report."""

    def load() -> None:
        try:
            from pmtimeline.chart import plotlyjs_bundle
            from pmtimeline.postmortem import compile_template, default_template

            compile_template(default_template())
            plotlyjs_bundle()
        except Exception:  # save() loads the same and reports what fails
            pass

    thread = threading.Thread(target=load, name="pmtimeline-preload", daemon=True)
    thread.start()
    return thread


def _settings_of(config: TimelineConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in _SETTINGS_KEYS}


def _config_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k in _SETTINGS_KEYS}


def _frame_parquet(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buf, index=False)
    return buf.getvalue()


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


__all__ = ["EVENT_COLUMNS", "SavedOutputs", "Timeline", "overrides_template", "preload_outputs", "read_overrides"]
