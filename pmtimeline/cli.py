"""The ``pmtimeline`` command line: options in, library calls, results out.

Every command only translates options into the library calls a notebook makes (see
:mod:`pmtimeline.api`) and writes the results. A :class:`~pmtimeline.errors.PmtimelineError`
becomes ``Error: ...`` and exit code 1; log-derived text is escaped before it reaches the terminal.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from pmtimeline.config import ISO_TIME_FORM, PHASES, TimelineConfig, check_source_globs, is_naive_time
from pmtimeline.errors import NoEventsError, PmtimelineError
from pmtimeline.escaping import escape_terminal
from pmtimeline.output_files import OutputTransaction
from pmtimeline.sources import Reject, SourceAccounting

F = TypeVar("F", bound=Callable[..., Any])


# -- shared options ------------------------------------------------------------------------------


def window_options(func: F) -> F:
    """Options of every command that reads logs: window, zones, years, formats, limits."""
    options = [
        click.option(
            "--start", metavar="TIME", help=f"Keep events at or after this time: {ISO_TIME_FORM}; no zone = --tz."
        ),
        click.option("--end", metavar="TIME", help="Keep events before this time (as --start)."),
        click.option("--tz", default="UTC", show_default=True, help="Zone of timestamps written without one."),
        click.option(
            "--source-tz",
            multiple=True,
            metavar="GLOB=ZONE",
            help="Zone of naive timestamps for sources matching GLOB (repeatable), e.g. 'ledger/*=Europe/Amsterdam'. "
            "A GLOB matches a path as given, relative to an INPUT, or a file name; one matching nothing is an error.",
        ),
        click.option("--year", type=int, help="Year of year-less timestamps (syslog); inferred when omitted."),
        click.option(
            "--offset",
            "source_offset",
            multiple=True,
            metavar="GLOB=DURATION",
            help="Correct clock skew of sources matching GLOB (repeatable, as --source-tz), e.g. 'hosts/*=-5min'.",
        ),
        click.option(
            "--service",
            "source_service",
            multiple=True,
            metavar="GLOB=NAME",
            help="Service of sources matching GLOB (as --source-tz), for lines naming none, e.g. 'edge/*=checkout'.",
        ),
        click.option("--format", "format_name", help="Force this log format (see `pmtimeline formats`)."),
        click.option("--format-file", type=click.Path(dir_okay=False), help="TOML file of user-defined formats."),
        click.option("--rejects", type=click.Path(dir_okay=False), help="Write rejected lines (CSV) here."),
        click.option("--workers", type=int, default=1, show_default=True, help="Parsing processes (0 = one per core)."),
        click.option(
            "--no-prune",
            is_flag=True,
            help="Read every line and apply --start/--end line by line; by default files (and parts of them) "
            "that samples show to lie wholly outside the window are skipped unread, their lines counted.",
        ),
        click.option("--max-events", type=int, help="Stop after this many events (the run is marked partial)."),
        click.option("--strict", is_flag=True, help="Exit non-zero when any line was rejected or any source partial."),
        click.option("--es", "es_url", metavar="URL", help="Also read from this Elasticsearch cluster."),
        click.option("--es-index", default="logs-*", show_default=True, help="Index pattern to read."),
        click.option("--es-query", help="Lucene query string, ANDed with the window."),
        click.option("--es-time-field", default="@timestamp", show_default=True, help="Time field of the documents."),
        click.option("--es-page-size", type=int, default=1000, show_default=True, help="Documents per page."),
        click.option(
            "--es-max-events", type=int, default=1_000_000, show_default=True, help="Cap on pulled documents."
        ),
        click.option(
            "--es-mode",
            type=click.Choice(["auto", "documents", "pushdown"]),
            default="auto",
            show_default=True,
            help="Pull every document, or push the signal down as aggregations.",
        ),
        click.option("--es-cloud-id", envvar="PMTIMELINE_ES_CLOUD_ID", help="Elastic Cloud id."),
        click.option("--es-api-key", envvar="PMTIMELINE_ES_API_KEY", help="API key (or PMTIMELINE_ES_API_KEY)."),
        click.option("--es-username", envvar="PMTIMELINE_ES_USERNAME", help="Basic auth user."),
        click.option("--es-password", envvar="PMTIMELINE_ES_PASSWORD", help="Basic auth password (env preferred)."),
        click.option("--es-bearer", envvar="PMTIMELINE_ES_BEARER", help="Bearer token (or PMTIMELINE_ES_BEARER)."),
        click.option("--es-ca-file", type=click.Path(dir_okay=False), help="CA bundle to verify the cluster."),
        click.option("--es-insecure", is_flag=True, help="Do not verify TLS certificates (not recommended)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def analysis_options(func: F) -> F:
    """Options of commands that analyze and report."""
    options = [
        click.option("--title", default="Incident", show_default=True, help="Title of the incident."),
        click.option("--bucket", default="1min", show_default=True, help="Signal bucket width (e.g. 30s, 5min)."),
        *[
            click.option(f"--{p}", f"phase_{p}", metavar="TIME", help=f"Set the {p} phase by hand (as --start).")
            for p in PHASES
        ],
        click.option(
            "--incident-toml",
            type=click.Path(dir_okay=False),
            help="Title and phase overrides (TOML); times without zone are read in its tz key, else --tz.",
        ),
        click.option("--slo", type=float, help="Availability objective in percent, e.g. 99.9, for budget burn."),
        click.option("--cost-per-failed-request", type=float, help="Cost model: money per failed request."),
        click.option("--revenue-per-minute", type=float, help="Cost model: revenue lost per minute of impact."),
        click.option("--display-tz", help="Also show times in this zone in the draft."),
        click.option("--template", type=click.Path(dir_okay=False), help="Jinja2 template replacing the draft's."),
        click.option("--no-redact", is_flag=True, help="Do not redact secrets and personal data in outputs."),
        click.option("--keep-raw", is_flag=True, help="Keep unredacted values in events.parquet."),
        click.option("--no-images", is_flag=True, help="Skip the PNG/SVG export (needs Chromium)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def translate_errors(func: F) -> F:
    """Turn a PmtimelineError into click's one-line ``Error: ...`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NoEventsError as exc:
            # The reasons come before the error that points at them (the run stopped before the
            # command could print its summary).
            if exc.sources:
                click.echo(summary_table(exc.sources))
            raise click.ClickException(escape_terminal(str(exc))) from exc
        except PmtimelineError as exc:
            raise click.ClickException(escape_terminal(str(exc))) from exc

    return wrapper  # type: ignore[return-value]


def config_from_options(
    opts: dict[str, Any], inputs: Sequence[str] = (), outputs: Sequence[str] = ()
) -> TimelineConfig:
    """The :class:`TimelineConfig` of a command's options and INPUT paths, built by
    :func:`pmtimeline.api.make_config` as a notebook's is. Says on stderr which times given without
    zone were read in ``--tz``. ``outputs`` (the ``-o`` path) and ``--rejects`` are never read back
    as input."""
    from pmtimeline.api import make_config, with_inputs

    tz = opts.get("tz") or "UTC"
    title = opts.get("title") or "Incident"
    overrides: dict[str, Any] = {}
    toml_path = opts.get("incident_toml")
    if toml_path:
        from pmtimeline.timeline import read_overrides

        from_file = read_overrides(toml_path, tz)
        file_title = from_file.pop("title", None)
        if file_title and title == "Incident":
            title = file_title
        overrides.update(from_file)
    given = {f"--{p}": opts.get(f"phase_{p}") for p in PHASES}
    overrides.update({name[2:]: value for name, value in given.items() if value})
    config = make_config(
        start=opts.get("start") or None,
        end=opts.get("end") or None,
        tz=tz,
        source_tz=opts.get("source_tz") or None,
        source_offsets=opts.get("source_offset") or None,
        source_services=opts.get("source_service") or None,
        year=opts.get("year"),
        format_name=opts.get("format_name"),
        format_file=opts.get("format_file"),
        workers=opts.get("workers"),
        prune=False if opts.get("no_prune") else None,
        own_outputs=tuple(path for path in (*outputs, opts.get("rejects")) if path) or None,
        max_events=opts.get("max_events") or None,
        title=title,
        phase_overrides=overrides or None,
        bucket=opts.get("bucket"),
        slo=opts.get("slo"),
        cost_per_failed_request=opts.get("cost_per_failed_request"),
        revenue_per_minute=opts.get("revenue_per_minute"),
        display_tz=opts.get("display_tz"),
        template=opts.get("template"),
        redact=False if opts.get("no_redact") else None,
        keep_raw=True if opts.get("keep_raw") else None,
    )
    for option, value in {"--start": opts.get("start"), "--end": opts.get("end"), **given}.items():
        if value and is_naive_time(value):
            click.echo(f"{option} {escape_terminal(str(value), 80)} read in {escape_terminal(tz)} (--tz)", err=True)
    return with_inputs(config, inputs)


def sources_from_options(inputs: Sequence[str], opts: dict[str, Any], config: TimelineConfig) -> list[Any]:
    """Connector objects for the INPUT paths plus the cluster named by ``--es``; a source glob
    matching none of them is an error (:func:`pmtimeline.api.open_sources`)."""
    from pmtimeline.api import open_sources, planned_sources

    if not inputs and not opts.get("es_url") and not opts.get("es_cloud_id"):
        raise click.UsageError("give at least one INPUT (file, directory or glob) or --es URL")
    items: list[Any] = list(inputs)
    if opts.get("es_url") or opts.get("es_cloud_id"):
        from pmtimeline.connectors.elasticsearch import EsSettings

        items.append(
            EsSettings(
                url=opts.get("es_url"),
                cloud_id=opts.get("es_cloud_id"),
                index=opts["es_index"],
                query=opts.get("es_query"),
                time_field=opts["es_time_field"],
                page_size=opts["es_page_size"],
                max_events=opts["es_max_events"],
                mode=opts["es_mode"],
                api_key=opts.get("es_api_key"),
                username=opts.get("es_username"),
                password=opts.get("es_password"),
                bearer=opts.get("es_bearer"),
                ca_file=opts.get("es_ca_file"),
                verify_certs=not opts.get("es_insecure"),
            )
        )
    # --workers and --start/--end: log files parsed on several processes, what lies wholly outside
    # the window skipped (same events and accounting as a sequential run); the cluster is kept as is.
    return planned_sources(open_sources(items, config), config)


# -- output helpers ------------------------------------------------------------------------------


def progress_bar(sources: int | None = None) -> tuple[Any, Callable[[], None]]:
    """A progress callback drawing on stderr (only when stderr is a terminal): events read, and the
    files (sources) reached out of ``sources``, which is what moves in a run of many small files."""
    from tqdm import tqdm

    bar = tqdm(unit=" events", file=sys.stderr, disable=None, mininterval=0.5, desc="reading")
    reached: set[str] = set()
    total = f"/{sources:,}" if sources else ""

    def update(source: str, events: int, chunk: int) -> None:
        if source not in reached:
            reached.add(source)
            bar.set_postfix_str(f"file {len(reached):,}{total}", refresh=False)
        bar.update(chunk)

    return update, bar.close


def summary_table(sources: Sequence[SourceAccounting]) -> str:
    """The per-source summary printed after reading (escaped for the terminal)."""
    header = ("source", "format", "lines", "events", "cont.", "rejected", "outside", "zone", "year")
    rows = [header]
    for acc in sources:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(acc.rejected.items()))
        rows.append(
            (
                escape_terminal(acc.name, 60),
                escape_terminal(acc.format or "-"),
                f"{acc.lines_read:,}",
                f"{acc.events:,}",
                f"{acc.continuation_lines:,}",
                f"{acc.rejected_total:,}" + (f" ({reasons})" if reasons else ""),
                f"{acc.outside_window:,}",
                escape_terminal(_zone_summary(acc)),
                "inferred" if acc.year_inferred else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    notes = []
    for acc in sources:
        if acc.skipped_reason:
            notes.append(f"skipped {escape_terminal(acc.name)}: {escape_terminal(acc.skipped_reason)}")
        elif acc.partial:
            notes.append(f"partial {escape_terminal(acc.name)}: {escape_terminal(acc.partial_reason or '')}")
        if acc.format_reason:
            notes.append(f"{escape_terminal(acc.name)}: {escape_terminal(acc.format_reason)}")
        notes.extend(f"{escape_terminal(acc.name)}: {escape_terminal(n)}" for n in acc.notes)
    total = sum(a.lines_read for a in sources)
    events = sum(a.events for a in sources)
    rejected = sum(a.rejected_total for a in sources)
    lines.append(f"total: {total:,} lines read, {events:,} events, {rejected:,} rejected")
    return "\n".join(lines + notes)


def _zone_summary(acc: SourceAccounting) -> str:
    """The zone column: ``in data`` for times that carried their offset, else the zone naive times
    were read in (both when a source mixes); the zone alone when the events were not counted."""
    if not acc.times_with_offset and not acc.times_in_zone:
        return acc.time_zone or "-"
    parts = (["in data"] if acc.times_with_offset else []) + sorted(acc.times_in_zone)
    return ", ".join(parts)


def write_rejects(path: str, rejects: Sequence[Reject], redact: bool, outputs: OutputTransaction) -> None:
    """The rejects file: source, line, reason, escaped (and redacted) excerpt; staged in ``outputs``
    as a new file of mode 0600 (so also when one exists: it is replaced, never written through)."""
    from pmtimeline.escaping import csv_cell
    from pmtimeline.redact import Redactor

    redactor = Redactor()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["source", "line", "reason", "excerpt"])
    for r in rejects:
        excerpt = escape_terminal(r.excerpt, 512)
        if redact:
            excerpt = redactor.redact_text(excerpt)
        writer.writerow([csv_cell(r.source), r.line if r.line is not None else "", r.reason, csv_cell(excerpt)])
    outputs.write_text(path, buf.getvalue(), mode=0o600)


def finish(sources: Sequence[SourceAccounting], strict: bool) -> None:
    """Exit codes: 1 when nothing could be read; with --strict also on rejects or partial sources."""
    if not any(a.events for a in sources):
        from pmtimeline.pipeline import nothing_read_message

        raise click.ClickException(escape_terminal(nothing_read_message(sources)))
    if strict:
        problems = [
            a.name for a in sources if a.rejected_total or a.partial or (a.skipped_reason and not a.skipped_by_rule)
        ]
        if problems:
            shown = ", ".join(escape_terminal(p, 80) for p in problems[:5])
            raise click.ClickException(f"--strict: rejected lines or partial sources in {shown}")


# -- commands ------------------------------------------------------------------------------------


@click.group()
@click.version_option(package_name="pmtimeline")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Build an incident timeline, impact metrics and a postmortem draft from logs and alerts."""
    stop_on_sigterm(ctx)


def stop_on_sigterm(ctx: click.Context) -> None:
    """Let SIGTERM (``kill``, ``timeout``, a container stopping) end the command as Ctrl-C does, so
    that its partial outputs are removed and the previous ones kept (:mod:`pmtimeline.output_files`);
    the previous handler is back when the command ends."""
    if threading.current_thread() is not threading.main_thread():
        return  # handlers can only be set from the main thread (e.g. a CliRunner on another thread)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file: .parquet, .csv, .jsonl, .timesketch.jsonl or .timesketch.csv.",
)
@window_options
@click.option("--no-redact", is_flag=True, help="Do not redact secrets in CSV/JSONL exports.")
@translate_errors
def ingest(inputs: tuple[str, ...], output: str, **opts: Any) -> None:
    """Read logs and alerts into one normalized UTC event table.

    The table is written as it is read, so memory stays bounded: rows come source by source, in
    time order within each source (file order, each chunk sorted by time); sort by timestamp on
    read for one global order.

    Example:

        pmtimeline ingest sample_logs --source-tz 'ledger/*=Europe/Amsterdam' -o events.parquet
    """
    from pmtimeline.event_sink import EventSink
    from pmtimeline.export import export_format_for_path
    from pmtimeline.pipeline import ingest as run_ingest
    from pmtimeline.redact import Redactor

    fmt = export_format_for_path(output)
    config = config_from_options(opts, inputs, outputs=[output])
    sources = sources_from_options(inputs, opts, config)
    # Parquet is the working table (raw, like the logs it came from); text exports are for sharing.
    redactor = Redactor() if fmt != "parquet" and not opts.get("no_redact") else None
    update, close = progress_bar(len({source.name for source in sources}))
    # The table and the rejects file are staged and moved into place together at the end; a run
    # that fails, or reads no event at all, leaves the previous ones as they were.
    outputs = OutputTransaction()
    try:
        # Streamed: each chunk is written as it comes (sorted by time within the chunk), so memory
        # stays bounded however many events there are.
        with EventSink(output, fmt, redactor=redactor, outputs=outputs) as sink:
            result = run_ingest(sources, config, keep_events=False, on_chunk=sink, progress=update)
        if opts.get("rejects"):
            write_rejects(opts["rejects"], result.rejects, redact=not opts.get("no_redact"), outputs=outputs)
        read_any = any(a.events for a in result.sources)
        outputs.commit() if read_any else outputs.abort()
    except BaseException:
        outputs.abort()
        raise
    finally:
        close()
    click.echo(summary_table(result.sources))
    if read_any:
        click.echo(f"wrote {sink.rows:,} events to {escape_terminal(output)} in {result.seconds:.1f} s")
    finish(result.sources, opts.get("strict", False))


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@window_options
@analysis_options
@click.option(
    "--auto-time",
    is_flag=True,
    help="Apply the zone and clock-skew offsets found from requests shared between sources (reads them twice).",
)
@translate_errors
def build(inputs: tuple[str, ...], outdir: str, **opts: Any) -> None:
    """Ingest, analyze and write the postmortem draft, the chart and the data behind them.

    Writes OUTDIR/events.parquet, incident.json, postmortem.md, timeline.html, timeline.png and
    .svg (when Chromium is available), and incident.toml to edit phases and title. They are moved
    into place together at the end: a run that fails leaves the previous ones as they were.

    Example:

        pmtimeline build sample_logs --source-tz 'ledger/*=Europe/Amsterdam' --title "Payments outage" -o out
    """
    import pandas as pd

    from pmtimeline.aggregate import span_config
    from pmtimeline.api import build_with_time_inference
    from pmtimeline.event_sink import EventSink
    from pmtimeline.pipeline import build as run_build
    from pmtimeline.redact import Redactor
    from pmtimeline.timeline import EVENTS_FILE, Timeline, preload_outputs

    config = config_from_options(opts, inputs, outputs=[outdir])
    if opts.get("auto_time"):
        config = dataclasses.replace(config, auto_time=True)
    preload_outputs()
    sources = sources_from_options(inputs, opts, config)
    # One redactor for events.parquet and the other outputs, so that their pseudonyms agree.
    redactor = Redactor()
    raw = not config.redact or config.keep_raw
    # Every file of the run (the folder's and --rejects) is staged and moved into place together
    # at the end: a failure at any point leaves the previous outputs as they were.
    outputs = OutputTransaction(outdir)
    update, close = progress_bar(len({source.name for source in sources}))

    def run(run_config: TimelineConfig, evidence: Callable[[pd.DataFrame], None]) -> Any:
        # The first run reads the sources opened above; a second (--auto-time) opens them anew.
        opened = sources if run_config is config else sources_from_options(inputs, opts, run_config)
        # events.parquet is written chunk by chunk; the analysis works from the aggregates, so
        # memory does not grow with the number of ordinary events.
        target = Path(outdir) / EVENTS_FILE
        with EventSink(target, "parquet", redactor=None if raw else redactor, outputs=outputs) as sink:

            def on_chunk(chunk: pd.DataFrame) -> None:
                sink(chunk)
                evidence(chunk)

            return run_build(opened, run_config, keep_events=False, on_chunk=on_chunk, progress=update)

    try:
        try:
            result, config = build_with_time_inference(run, config)
        finally:
            close()
        click.echo(summary_table(result.sources))
        for line in time_inference_lines(result.incident.time_inference):
            click.echo(f"time: {escape_terminal(line, 600)}", err=True)
        if result.aggregates.span is not None:
            for note in result.aggregates.span.notes(config.bucket):
                click.echo(f"warning: {escape_terminal(note)}", err=True)
        timeline = Timeline(
            incident=result.incident,
            aggregates=result.aggregates,
            config=span_config(config, result.aggregates),
            accounting=tuple(result.sources),
            rejected=tuple(result.rejects),
            _redactor=redactor,
        )
        saved = timeline.save(outdir, images=not opts.get("no_images"), outputs=outputs)
        if opts.get("rejects"):
            write_rejects(opts["rejects"], result.rejects, redact=config.redact, outputs=outputs)
        outputs.commit()
    except BaseException:  # Ctrl-C included: the partial outputs go, the previous ones stay
        outputs.abort()
        raise
    for warning in saved.warnings:
        click.echo(f"warning: {escape_terminal(warning)}", err=True)
    click.echo(incident_summary(timeline))
    click.echo(f"wrote {len(saved.written)} files to {escape_terminal(outdir)} in {result.seconds:.1f} s")
    finish(result.sources, opts.get("strict", False))


def time_inference_lines(info: dict[str, Any]) -> list[str]:
    """The zone and clock-skew findings worth a line on stderr, with what --auto-time applied."""
    out = []
    for est in info.get("estimates", []):
        if est.get("kind") == "agrees":
            continue
        line = str(est.get("message", ""))
        if est.get("applied"):
            line += f" [applied: {est['applied']}]"
        out.append(line)
    return out


def incident_summary(timeline: Any) -> str:
    """Phases and headline metrics, for the terminal."""
    from pmtimeline.incident import iso_utc

    inc = timeline.incident
    lines = [f"incident: {escape_terminal(inc.title)}"]
    for p in PHASES:
        mark = " (set by hand)" if p in inc.phase_overridden else ""
        lines.append(f"  {p:<10} {iso_utc(inc.phase(p)) or '-'}{mark}")
    m = inc.metrics
    if all(inc.phase(p) is None for p in PHASES) and not inc.exposure:
        lines.append("  no significant anomaly found in the window: no incident, so no impact metrics")
        totals = {k: v for k, v in m.window_totals.items() if v is not None}
        if totals:
            requests = (
                f"{totals['requests']:,} requests, {totals.get('failed_requests', 0):,} failed"
                if "requests" in totals
                else "requests unknown (no request logs)"
            )
            lines.append(
                f"  looked at         {totals.get('events', 0):,} events: {totals.get('error_events', 0):,} errors, "
                f"{totals.get('warning_events', 0):,} warnings, {requests}"
            )
    else:
        facts = [
            ("time to detect", "time_to_detect_s", "s"),
            ("time to mitigate", "time_to_mitigate_s", "s"),
            ("time to recover", "time_to_recover_s", "s"),
            ("requests failed", "requests_failed", ""),
            ("requests total", "requests_total", ""),
            ("affected users", "affected_users", ""),
        ]
        for label, name, unit in facts:
            value = getattr(m, name)
            # A metric with nothing to count says why (never 0); a phase not found is a plain "-".
            text = f"{value:,.0f}{unit}" if value is not None else escape_terminal(m.unknown_text(name), 80)
            lines.append(f"  {label:<17} {text if value is not None or name in m.unknown_reasons else '-'}")
    if inc.root_cause_candidates:
        top = inc.root_cause_candidates[0]
        lines.append(f"  likely cause      {escape_terminal(top.summary, 120)}")
    return "\n".join(lines)


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, exists=True))
@click.option("--title", help="A new title.")
@click.option("--template", type=click.Path(dir_okay=False), help="Jinja2 template replacing the draft's.")
@click.option("--display-tz", help="Also show times in this zone.")
@click.option("--no-redact", is_flag=True, help="Do not redact (only affects what was kept raw).")
@click.option("--no-images", is_flag=True, help="Skip the PNG/SVG export.")
@translate_errors
def report(outdir: str, **opts: Any) -> None:
    """Regenerate postmortem.md, incident.json and the chart of OUTDIR, without reading the logs.

    Edit OUTDIR/incident.toml (title, phase overrides) or pass --template, then run this.

    Example:

        pmtimeline report out --display-tz Europe/Amsterdam
    """
    timeline = reopen(outdir, opts)
    saved = timeline.save(outdir, images=not opts.get("no_images"))
    for warning in saved.warnings:
        click.echo(f"warning: {escape_terminal(warning)}", err=True)
    click.echo(incident_summary(timeline))
    click.echo(f"regenerated {len(saved.written)} files in {escape_terminal(outdir)}")


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, exists=True))
@click.option("--no-images", is_flag=True, help="Only timeline.html.")
@translate_errors
def chart(outdir: str, **opts: Any) -> None:
    """Regenerate timeline.html (and .png/.svg) of OUTDIR from its saved data.

    Example:

        pmtimeline chart out
    """
    from pmtimeline.chart import figure_html, figure_image
    from pmtimeline.errors import OutputError

    timeline = reopen(outdir, opts)
    fig = timeline.chart()
    out = Path(outdir)
    written = ["timeline.html"]
    with OutputTransaction(outdir) as outputs:
        outputs.write_text(out / "timeline.html", figure_html(fig))
        if not opts.get("no_images"):
            try:
                images = {name: figure_image(fig, name.rsplit(".", 1)[1]) for name in ("timeline.png", "timeline.svg")}
            except OutputError as exc:
                click.echo(f"warning: {escape_terminal(str(exc))} (timeline.html was still written)", err=True)
            else:
                for name, data in images.items():
                    outputs.write_bytes(out / name, data)
                written += list(images)
    click.echo(f"wrote {', '.join(written)} in {escape_terminal(outdir)}")


def reopen(outdir: str, opts: dict[str, Any]) -> Any:
    import dataclasses

    from pmtimeline.timeline import Timeline

    timeline = Timeline.open(outdir)
    changes: dict[str, Any] = {}
    if opts.get("template"):
        changes["template"] = opts["template"]
    if opts.get("display_tz"):
        changes["display_tz"] = opts["display_tz"]
    if opts.get("no_redact"):
        changes["redact"] = False
    if changes:
        timeline = dataclasses.replace(timeline, config=dataclasses.replace(timeline.config, **changes))
    if opts.get("title"):
        timeline = timeline.with_title(opts["title"])
    return timeline


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file: .csv, .jsonl, .parquet, .timesketch.jsonl or .timesketch.csv.",
)
@click.option("--no-redact", is_flag=True, help="Export values as stored (raw only if built with --keep-raw).")
@translate_errors
def export(outdir: str, output: str, no_redact: bool) -> None:
    """Export the events of a build, e.g. for Timesketch.

    Example:

        pmtimeline export out -o events.timesketch.jsonl
    """
    import dataclasses

    from pmtimeline.export import export_format_for_path
    from pmtimeline.timeline import Timeline

    fmt = export_format_for_path(output)
    timeline = Timeline.open(outdir)
    if no_redact:
        timeline = dataclasses.replace(timeline, config=dataclasses.replace(timeline.config, redact=False))
    data = timeline.export(fmt)
    with OutputTransaction() as outputs:
        outputs.write_bytes(output, data)
    click.echo(f"wrote {len(timeline.events):,} events to {escape_terminal(output)}")


@cli.command()
@click.option("--format-file", type=click.Path(dir_okay=False), help="Also list the formats of this TOML file.")
@translate_errors
def formats(format_file: str | None) -> None:
    """List the log formats, in detection order, and the alert payload formats.

    Example:

        pmtimeline formats
    """
    from pmtimeline.connectors.alerts import ALERT_FORMATS
    from pmtimeline.connectors.log_formats import LOG_FORMATS

    registry = dict(LOG_FORMATS)
    if format_file:
        from pmtimeline.connectors.user_formats import load_format_file

        registry = {**load_format_file(format_file), **registry}
    width = max(len(n) for n in registry)
    click.echo("log formats (detection order):")
    for name, fmt in registry.items():
        multi = " [multi-line]" if fmt.multiline else ""
        # A --format-file's names and descriptions are text from a file like any other: escaped.
        click.echo(f"  {escape_terminal(name):<{width}}  {escape_terminal(fmt.description)}{multi}")
    click.echo("alert formats:")
    for name, description in ALERT_FORMATS.items():
        click.echo(f"  {name:<{width}}  {description}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--rows", default=5, show_default=True, help="Parsed rows to show.")
@window_options
@click.option("--no-redact", is_flag=True, help="Show the rows as logged (secrets and identities included).")
@translate_errors
def sniff(file: str, rows: int, **opts: Any) -> None:
    """Show the format chosen for FILE, why, and its first parsed rows.

    The rows are redacted as build's outputs are (secrets replaced, IPs, users and e-mails
    pseudonymized), unless --no-redact.

    Example:

        pmtimeline sniff sample_logs/edge/nginx_access.log
    """
    import pandas as pd

    from pmtimeline.connectors.inputs import sniff as run_sniff

    config = config_from_options(opts, [file])
    check_source_globs(config, [file])
    result = run_sniff(file, config)
    click.echo(f"format: {escape_terminal(result.format)}")
    click.echo(f"why:    {escape_terminal(result.reason)}")
    click.echo(f"zone:   {escape_terminal(result.zone or '-')}")
    frame = result.rows.head(rows)
    # A handful of rows for a person to read: formatting them one by one is fine here.
    for row in frame.to_dict("records"):
        level = row["level"] if isinstance(row["level"], str) else "-"
        service = row["service"] if isinstance(row["service"], str) else "-"
        message = row["message"] if isinstance(row["message"], str) else ""
        click.echo(
            f"  {row['line']}: {pd.Timestamp(row['timestamp']).isoformat()} {escape_terminal(level, 8):<8} "
            f"{escape_terminal(service, 24)} {escape_terminal(message, 120)}"
        )
    if not frame.empty:
        click.echo("rows redacted (--no-redact shows them as logged)" if config.redact else "rows not redacted")
