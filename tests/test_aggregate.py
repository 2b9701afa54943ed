"""Streaming aggregation: counts, notable events, latency histograms, actors; chunking changes nothing."""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from synthetic_incidents import credential_stuffing, make_events, outage

from pmtimeline.aggregate import (
    BAD_EVENTS_PER_BUCKET,
    BUCKET_WIDTHS,
    DETAIL_KEYS,
    MAX_BUCKETS,
    SAMPLE_PER_TEMPLATE,
    TRAIL_REQUESTS,
    Aggregates,
    Aggregator,
    EventDetails,
    adapted_bucket,
    aggregate,
    bin_value,
    count_signals,
    dense_span,
    densest_half,
    endpoint_of,
    error_mask,
    in_window,
    latency_bins,
)
from pmtimeline.api import make_config, open_sources
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.impact import compute_metrics
from pmtimeline.pipeline import stream_chunks
from pmtimeline.schema import COUNT_COLUMNS, ERROR_LEVELS, conform_events

CONFIG = TimelineConfig()


@cache
def events() -> pd.DataFrame:
    return classify_changes(outage(31, minutes=75, rate_per_min=40).events)


def chunked(frame: pd.DataFrame, chunks: int) -> Aggregates:
    aggregator = Aggregator(CONFIG)
    for part in np.array_split(np.arange(len(frame)), chunks):
        aggregator.add(frame.iloc[part])
    return aggregator.result()


def test_count_signals_match_direct_counts() -> None:
    frame = events()
    counts = count_signals(frame, "1s")
    assert tuple(counts.columns) == COUNT_COLUMNS
    assert int(counts["events"].sum()) == len(frame)
    is_error = frame["level"].isin(["error", "critical"]).fillna(False) | (frame["http_status"] >= 500).fillna(False)
    assert int(counts["errors"].sum()) == int(is_error.sum())
    edge = (frame["kind"] == "request") & frame["format"].str.startswith("access")
    assert int(counts["edge_requests"].sum()) == int(edge.sum())
    assert int(counts["failed_edge_requests"].sum()) == int((edge & (frame["http_status"] >= 500)).sum())
    assert int(counts["requests"].sum()) > int(counts["edge_requests"].sum())  # payments logs requests too
    payments = counts.loc[counts["service"] == "payments", "events"].sum()
    assert payments == int((frame["service"] == "payments").sum())
    assert (counts["bucket"] == counts["bucket"].dt.floor("1s")).all()


@pytest.mark.parametrize("chunks", [2, 7])
def test_chunks_give_the_same_aggregates(chunks: int) -> None:
    whole, parts = chunked(events(), 1), chunked(events(), chunks)
    pd.testing.assert_frame_equal(whole.counts, parts.counts)
    pd.testing.assert_frame_equal(whole.latency, parts.latency)
    pd.testing.assert_frame_equal(whole.actors, parts.actors)
    assert (whole.window_start, whole.window_end) == (parts.window_start, parts.window_end)
    kept = whole.notable
    important = kept["level"].isin(["warning", "error"]).fillna(False) | kept["kind"].isin(["change", "alert"])
    pd.testing.assert_frame_equal(
        kept.loc[important].reset_index(drop=True),
        parts.notable.loc[
            parts.notable["level"].isin(["warning", "error"]).fillna(False)
            | parts.notable["kind"].isin(["change", "alert"])
        ].reset_index(drop=True),
    )


def test_notable_keeps_what_the_analysis_cites_and_little_else() -> None:
    frame = events()
    result = aggregate(frame, CONFIG)
    notable = result.notable
    # Every change and alert, whole.
    assert set(notable.loc[notable["kind"] == "change", "change_type"]) == {"deploy", "restart", "rollback"}
    assert int((notable["kind"] == "alert").sum()) == int((frame["kind"] == "alert").sum())
    # The first and last three errors of every (minute, service, source), whole.
    errors = frame.loc[error_mask(frame)].sort_values(["timestamp", "source", "line"], kind="stable")
    group = [errors["timestamp"].dt.floor(CONFIG.bucket), errors["service"].fillna(""), errors["source"]]
    ends = pd.concat([errors.groupby(group).head(3), errors.groupby(group).tail(3)]).drop_duplicates()
    kept = notable.merge(ends[["timestamp", "source", "line", "message"]], how="inner")
    assert len(kept) == len(ends)
    ordinary = notable.loc[
        ~(notable["level"].isin(["warning", "error"]).fillna(False)) & notable["kind"].isin(["log", "request"])
    ]
    assert len(ordinary) < 0.05 * len(frame)
    # The first and last event of every service are kept.
    for service, group_frame in frame.groupby("service"):
        own = notable.loc[notable["service"] == service, "timestamp"]
        assert own.min() == group_frame["timestamp"].min()
        assert own.max() == group_frame["timestamp"].max()
    assert notable["timestamp"].is_monotonic_increasing
    assert (result.window_start, result.window_end) == (frame["timestamp"].min(), frame["timestamp"].max())


def _flood(n: int, chunks: int) -> Aggregates:
    """``n`` error events of one kind (one stack trace, 500 users, 30 hosts, 40 endpoints) over ten
    minutes, fed in ``chunks`` chunks, beside a deploy and a few warnings."""
    rng = np.random.default_rng(7)
    times = T0 + pd.to_timedelta(np.sort(rng.integers(0, 600_000, n)), unit="ms")
    trace = (
        "java.sql.SQLTransientConnectionException: pool exhausted\n" + "\tat com.example.Pool.get(Pool.java:42)\n" * 30
    )
    frame = conform_events(
        pd.DataFrame(
            {
                "timestamp": times,
                "source": "service.log",
                "line": np.arange(1, n + 1),
                "service": np.where(rng.random(n) < 0.7, "payments", "ledger"),
                "host": [f"app-{i:02d}" for i in rng.integers(0, 30, n)],
                "level": "error",
                "message": trace,
                "kind": np.where(rng.random(n) < 0.5, "request", "log"),
                "http_status": 503,
                "url_path": [f"/api/v1/pay/{i}" if i % 2 else f"/api/v{i % 40}/x" for i in rng.integers(0, 80, n)],
                "user": [f"user{i:04d}" for i in rng.integers(0, 500, n)],
                "trace_id": [f"{i:016x}" for i in rng.integers(0, 2**62, n)],
            }
        )
    )
    extra = make_events(
        [
            {"time": "2024-03-05T08:00:30Z", "message": "Deploying payments v2.3.1", "service": "payments"},
            {"time": "2024-03-05T08:04:00Z", "message": "slow query", "level": "warning", "service": "ledger"},
        ]
    )
    whole = classify_changes(pd.concat([frame, extra], ignore_index=True).sort_values("timestamp", kind="stable"))
    aggregator = Aggregator(CONFIG)
    for part in np.array_split(np.arange(len(whole)), chunks):
        aggregator.add(whole.iloc[part])
    result = aggregator.result()
    result.details = result.event_details(CONFIG)
    _FLOODS[n] = whole
    return result


_FLOODS: dict[int, pd.DataFrame] = {}
T0 = pd.Timestamp("2024-03-05T08:00:00Z")


def test_notable_events_stay_bounded_while_the_metrics_stay_exact() -> None:
    medium, large = _flood(10_000, 2), _flood(100_000, 10)
    # Ten times the errors: as many rows kept whole (ten minutes, two services, one source).
    bound = 10 * 2 * 4 * (2 * BAD_EVENTS_PER_BUCKET) + 600 * 2 * 4 + TRAIL_REQUESTS * 2 + 10
    assert len(large.notable) <= bound
    assert len(large.notable) < 1.1 * len(medium.notable)
    assert (large.notable["kind"] == "change").sum() == 1
    assert (large.notable["level"] == "warning").sum() == 1
    # The numbers the analysis reports come from the details, equal to a count over every event.
    frame = _FLOODS[100_000]
    start, end = T0 + pd.Timedelta("2min"), T0 + pd.Timedelta("7min")
    phases = {"onset": start, "recovered": end}
    metrics = compute_metrics(phases, large, CONFIG, "errors", ("payments", "ledger"))
    t = frame["timestamp"]
    inside = frame.loc[(t >= start) & (t <= end) & error_mask(frame)]
    assert metrics.affected_users == inside["user"].nunique() == 500
    hosts = inside["host"].value_counts()
    assert set(metrics.affected_hosts) == set(hosts.index[:20]) | set(hosts.index[hosts >= hosts.iloc[19]]) & set(
        metrics.affected_hosts
    )
    assert [hosts[h] for h in metrics.affected_hosts] == sorted(
        (hosts[h] for h in metrics.affected_hosts), reverse=True
    )
    endpoints = endpoint_of(inside.loc[inside["kind"] == "request", "url_path"]).value_counts()
    assert dict(metrics.affected_endpoints) == {p: int(endpoints[p]) for p, _ in metrics.affected_endpoints}
    assert [n for _, n in metrics.affected_endpoints] == list(endpoints.iloc[: len(metrics.affected_endpoints)])
    templates = large.details.templates if large.details is not None else None
    assert templates is not None
    assert int(templates.loc[templates["level"] == "error", "count"].sum()) == int(error_mask(frame).sum())


def test_details_of_chunks_equal_the_details_of_the_whole() -> None:
    frame = events()
    whole, parts = chunked(frame, 1).event_details(CONFIG), chunked(frame, 7).event_details(CONFIG)
    for name, table in whole.frames().items():
        other = parts.frames()[name]
        keys = [c for c in table.columns if c not in ("count", "first", "last")]
        pd.testing.assert_frame_equal(
            table.sort_values(keys, kind="stable").reset_index(drop=True),
            other.sort_values(keys, kind="stable").reset_index(drop=True),
            check_dtype=False,
        )
    assert len(whole.users)
    assert len(whole.hosts)
    assert len(whole.templates)


def test_details_survive_a_parquet_round_trip(tmp_path: Path) -> None:
    details = aggregate(events(), CONFIG).event_details(CONFIG)
    saved = {}
    for name, table in details.frames().items():
        table.to_parquet(tmp_path / f"{name}.parquet")
        saved[name] = pd.read_parquet(tmp_path / f"{name}.parquet")
    again = EventDetails.from_frames(saved)
    for name, table in details.frames().items():
        pd.testing.assert_frame_equal(table.reset_index(drop=True), again.frames()[name].reset_index(drop=True))


def test_in_window_counts_boundary_buckets_by_their_event_times() -> None:
    table = pd.DataFrame(
        {
            "bucket": pd.to_datetime(["2024-03-05T08:00:00Z"] * 3, utc=True),
            "first": pd.to_datetime(
                ["2024-03-05T08:00:00.100Z", "2024-03-05T08:00:00.600Z", "2024-03-05T08:00:00.200Z"], utc=True
            ),
            "last": pd.to_datetime(
                ["2024-03-05T08:00:00.300Z", "2024-03-05T08:00:00.900Z", "2024-03-05T08:00:00.800Z"], utc=True
            ),
        }
    )
    inside = in_window(table, pd.Timestamp("2024-03-05T08:00:00.500Z"), pd.Timestamp("2024-03-05T09:00:00Z"))
    # All before the bound, all after it, and one row across it (counted whole).
    assert inside.tolist() == [False, True, True]


def test_sample_is_bounded_per_template() -> None:
    frame = make_events(
        [
            {"time": f"2024-03-05T08:00:{i % 60:02d}Z", "message": f"cache hit for key {i}", "service": "api"}
            for i in range(50)
        ]
    )
    notable = aggregate(frame, CONFIG).notable
    # One template: its first SAMPLE_PER_TEMPLATE events, plus the service's last event.
    assert len(notable) == SAMPLE_PER_TEMPLATE + 1
    assert notable["message"].iloc[-1] == "cache hit for key 49"


def test_sample_finds_a_new_template_after_the_scans_have_slowed() -> None:
    """Chunks whose scans find only templates that have their samples make the next scans
    smaller; a template that appears later, in 2 % of a chunk's events, is still sampled."""

    def chunk(first: int, n: int, every: int) -> pd.DataFrame:
        rows = [
            {
                "time": f"2024-03-05T08:{(i // 600) % 60:02d}:{(i // 10) % 60:02d}Z",
                "message": f"cache miss for key {i}" if every and i % every == 0 else f"cache hit for key {i}",
                "service": "api",
            }
            for i in range(first, first + n)
        ]
        return make_events(rows)

    aggregator = Aggregator(CONFIG)
    for k in range(8):
        aggregator.add(chunk(k * 4_000, 4_000, every=0))
    aggregator.add(chunk(32_000, 4_000, every=50))
    messages = aggregator.result().notable["message"]
    misses = messages.loc[messages.str.startswith("cache miss")]
    hits = messages.loc[messages.str.startswith("cache hit")]
    assert len(misses) == SAMPLE_PER_TEMPLATE
    # The hits' template keeps its first samples (plus the service's last event, a hit).
    assert hits.tolist()[:SAMPLE_PER_TEMPLATE] == [f"cache hit for key {i}" for i in range(SAMPLE_PER_TEMPLATE)]


def test_latency_histogram_is_within_six_percent() -> None:
    durations = np.random.default_rng(1).lognormal(4, 1, 10_000)
    representative = bin_value(latency_bins(durations))
    assert np.all(np.abs(representative / durations - 1) < 0.06)


def test_pushed_down_counts_are_not_counted_twice() -> None:
    frame = events()
    aggregator = Aggregator(CONFIG)
    aggregator.add_counts(count_signals(frame, CONFIG.count_resolution))
    aggregator.add(frame.loc[frame["level"].isin(["warning", "error"]).fillna(False)], counted=True)
    pushed = aggregator.result()
    pd.testing.assert_frame_equal(pushed.counts, aggregate(frame, CONFIG).counts)
    with pytest.raises(ValueError, match="lack columns"):
        aggregator.add_counts(pd.DataFrame({"bucket": [pd.Timestamp("2024-03-05T08:00:00Z")]}))


def test_actors_count_login_failures_and_successes() -> None:
    synthetic = credential_stuffing(3, minutes=90)
    actors = aggregate(synthetic.events, CONFIG).actors
    attacker = synthetic.truth.attackers[0]
    own = synthetic.events.loc[(synthetic.events["client_ip"] == attacker) & (synthetic.events["service"] == "auth")]
    mine = actors.loc[(actors["actor_kind"] == "client_ip") & (actors["actor"] == attacker)]
    assert int(mine["failures"].sum()) == int((own["level"] == "warning").sum())
    assert int(mine["successes"].sum()) == int((own["level"] == "info").sum())
    assert set(mine["account"]) == set(own["user"])


def test_empty_chunks_and_empty_result() -> None:
    aggregator = Aggregator(CONFIG)
    aggregator.add(events().iloc[:0])
    result = aggregator.result()
    assert result.counts.empty
    assert result.notable.empty
    assert result.window_start is None


SAMPLE_CONFIG = make_config(source_tz={"*ledger.log": "Europe/Amsterdam"})


@cache
def sample_chunks() -> tuple[pd.DataFrame, ...]:
    """The prepared chunks of the bundled sample incident, in the order the pipeline aggregates them
    (source after source: not in time order across sources)."""
    sources = open_sources(Path(__file__).resolve().parents[1] / "sample_logs", SAMPLE_CONFIG)
    return tuple(chunk for _source, chunk in stream_chunks(sources, SAMPLE_CONFIG))


@cache
def sample_aggregates(how: str) -> Aggregates:
    """The sample's aggregates, its events chunked as read, or cut in other ways: each source
    chunk in pieces, or all of them together (in time order) in unequal pieces, or as one."""
    chunks = list(sample_chunks())
    if how == "pieces of each":
        chunks = [c.iloc[p] for c in chunks for p in np.array_split(np.arange(len(c)), 3)]
    elif how != "as read":
        whole = pd.concat(chunks, ignore_index=True).sort_values(["timestamp", "source", "line"], kind="stable")
        bounds = [0, 1, 17, 400, 401, 2_000, len(whole)] if how == "uneven" else [0, len(whole)]
        chunks = [whole.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    aggregator = Aggregator(SAMPLE_CONFIG)
    for chunk in chunks:
        aggregator.add(chunk)
    return aggregator.result()


def _important(notable: pd.DataFrame) -> pd.DataFrame:
    keep = notable["level"].isin(["warning", *ERROR_LEVELS]).fillna(False) | notable["kind"].isin(["change", "alert"])
    return notable.loc[keep.to_numpy(dtype=bool)].reset_index(drop=True)


@pytest.mark.parametrize("how", ["pieces of each", "uneven", "one chunk"])
def test_real_logs_give_the_same_aggregates_however_chunked(how: str) -> None:
    """The sample incident's logs (nginx, JSON lines, syslog, log4j, alerts, deploys) aggregated as
    the pipeline reads them and cut in other ways: counts, histograms, actors, the window, the
    details and the warnings, errors, changes and alerts kept whole are the same."""
    read, other = sample_aggregates("as read"), sample_aggregates(how)
    assert len(read.counts)
    assert len(read.latency)
    for name in ("counts", "latency", "actors"):
        pd.testing.assert_frame_equal(getattr(read, name), getattr(other, name), check_exact=True, obj=name)
    assert (read.window_start, read.window_end) == (other.window_start, other.window_end)
    pd.testing.assert_frame_equal(_important(read.notable), _important(other.notable), check_exact=True)
    assert read.details is not None
    assert other.details is not None
    for name, table in read.details.frames().items():
        keys = [c for c in table.columns if c not in ("count", "first", "last")]
        pd.testing.assert_frame_equal(
            table.sort_values(keys, kind="stable").reset_index(drop=True),
            other.details.frames()[name].sort_values(keys, kind="stable").reset_index(drop=True),
            check_exact=True,
            obj=name,
        )
    assert len(read.details.templates)
    assert len(read.details.hosts)


def test_real_logs_aggregate_to_what_direct_counts_give() -> None:
    """Counts, latency histograms and the ends of every service of the sample incident, aggregated
    chunk by chunk, equal what a groupby over all its events gives."""
    events = pd.concat(sample_chunks(), ignore_index=True)
    result = sample_aggregates("as read")
    second = events["timestamp"].dt.floor(SAMPLE_CONFIG.count_resolution)
    service = events["service"].fillna("")
    errors = error_mask(events)
    direct = (
        pd.DataFrame({"bucket": second, "service": service, "events": 1, "errors": errors.astype("int64")})
        .groupby(["bucket", "service"], as_index=False)
        .sum()
    )
    counts = result.counts
    assert counts["bucket"].tolist() == direct["bucket"].tolist()
    assert counts["service"].tolist() == direct["service"].tolist()
    assert counts["events"].tolist() == direct["events"].tolist()
    assert counts["errors"].tolist() == direct["errors"].tolist()

    timed = events.loc[(events["duration_ms"] >= 0).fillna(False).to_numpy(dtype=bool)]
    edge = ((timed["kind"] == "request") & timed["format"].str.startswith("access")).fillna(False)
    scope = np.where(edge, "edge", np.where((timed["kind"] == "request").fillna(False), "request", "other"))
    bins = np.floor(np.log10(timed["duration_ms"].clip(lower=1e-3).to_numpy(dtype="float64")) * 20).astype("int64")
    histogram = (
        pd.DataFrame(
            {
                "bucket": timed["timestamp"].dt.floor(SAMPLE_CONFIG.count_resolution),
                "service": timed["service"].fillna(""),
                "scope": scope,
                "bin": bins,
            }
        )
        .groupby(["bucket", "service", "scope", "bin"])
        .size()
    )
    assert len(histogram)
    latency = result.latency.set_index(["bucket", "service", "scope", "bin"])["count"]
    assert latency.index.tolist() == histogram.index.tolist()
    assert latency.tolist() == histogram.tolist()

    notable = result.notable
    for name, own in events.groupby(service):
        kept = notable.loc[notable["service"].fillna("") == name, "timestamp"]
        assert (kept.min(), kept.max()) == (own["timestamp"].min(), own["timestamp"].max())
    assert result.details is not None
    templates = result.details.templates
    assert set(DETAIL_KEYS["templates"]) < set(templates.columns)
    assert int(templates.loc[templates["level"] == "error", "count"].sum()) == int(errors.sum())
    warned = (events["level"] == "warning").fillna(False).to_numpy(dtype=bool) & ~errors
    assert int(templates.loc[templates["level"] == "warning", "count"].sum()) == int(warned.sum())


# --- Any time span in bounded cost (issue 16 item 4, issue 17 item 3) ---------------------------------


def _incident_lines(day: str = "2024-03-12") -> list[str]:
    """50 lines: 20 quiet minutes, five minutes of errors, 5 quiet minutes (an incident to analyse)."""
    lines = [f"{day}T08:{m:02d}:10Z INFO checkout-api handled request in 12 ms" for m in range(20)]
    lines += [f"{day}T08:{20 + i // 5:02d}:{10 * (i % 5):02d}Z ERROR checkout-api database timeout" for i in range(25)]
    lines += [f"{day}T08:{m:02d}:10Z INFO checkout-api handled request in 11 ms" for m in range(25, 30)]
    return lines


def _build(tmp_path: Path, name: str, lines: list[str], *args: str) -> tuple[dict[str, Any], str, Path]:
    """Build ``lines`` as one log file through the CLI: (incident.json, stderr, outdir)."""
    import json

    from click.testing import CliRunner

    from pmtimeline.cli import cli

    (tmp_path / name / "checkout").mkdir(parents=True, exist_ok=True)
    log = tmp_path / name / "checkout" / "app.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / f"{name}-out"
    result = CliRunner().invoke(cli, ["build", str(log), "-o", str(out), "--no-images", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "incident.json").read_text(encoding="utf-8")), result.stderr, out


#: What the analysis found: unchanged by an outlier line.
_ANALYSIS_KEYS = ("window", "phases", "phase_evidence", "anomaly_signal", "metrics", "root_cause_candidates")


@pytest.mark.parametrize("years", [("1970",), ("1900",), ("2200",), ("2262",), ("1700", "2250")])
def test_an_outlier_timestamp_is_kept_flagged_and_changes_nothing(tmp_path: Path, years: tuple[str, ...]) -> None:
    # ("1700", "2250"): one chunk spans 550 years, more than int64 nanoseconds can.
    normal = _incident_lines()
    base, base_err, _ = _build(tmp_path, "normal", normal)
    odd = [f"{year}-01-01T00:00:00Z ERROR checkout-api clock reset, cannot reach the time server" for year in years]
    found, stderr, out = _build(tmp_path, "odd", [*normal, *odd])
    assert base["phases"]["onset"] is not None
    for key in _ANALYSIS_KEYS:
        assert json_of(found[key]).replace("/odd/", "/") == json_of(base[key]).replace("/normal/", "/"), key
    # Kept and flagged: listed with its citation, counted, said on stderr and in the draft.
    span = found["time_span"]
    log = tmp_path / "odd" / "checkout" / "app.log"
    assert span["outlier_events"] == len(years)
    assert span["outliers"] == [
        {"timestamp": f"{year}-01-01T00:00:00Z", "source": str(log), "line": 51 + i} for i, year in enumerate(years)
    ]
    assert base["time_span"]["outlier_events"] == 0
    assert "outside the data's dense span" in stderr
    assert "outside the data's dense span" not in base_err
    draft = (out / "postmortem.md").read_text(encoding="utf-8")
    for i, year in enumerate(years):
        assert f"{year}-01-01T00:00:00Z" in stderr
        assert f"`{year}-01-01T00:00:00Z` at `{log}:{51 + i}`" in draft
    # The lines are still in the event table: kept, not dropped.
    events = pd.read_parquet(out / "events.parquet")
    assert len(events) == len(normal) + len(years)
    assert set(years) <= set(events["timestamp"].dt.year.astype(str))


def test_a_timestamp_pandas_cannot_hold_is_a_counted_reject(tmp_path: Path) -> None:
    # Before 1677-09-21 a nanosecond timestamp cannot exist: the reader rejects the line with its reason.
    normal = _incident_lines()
    base, _, _ = _build(tmp_path, "normal", normal)
    found, _, _ = _build(tmp_path, "odd", [*normal, "1677-01-01T00:00:00Z ERROR checkout-api clock reset"])
    for key in _ANALYSIS_KEYS:
        assert json_of(found[key]).replace("/odd/", "/") == json_of(base[key]).replace("/normal/", "/"), key
    (source,) = found["sources"]
    assert source["lines_read"] == len(normal) + 1
    assert source["events"] == len(normal)
    assert source["reject_reasons"] == {"timestamp_out_of_range": 1}


def json_of(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def test_a_multi_year_input_gets_coarse_buckets_and_a_window_to_paste(tmp_path: Path) -> None:
    # Six systems a year or more apart, each with a burst of activity: no outlier, a span of years.
    lines = []
    for year in (2009, 2011, 2012, 2014, 2015, 2016):
        lines += [
            f"{year}-0{year % 9 + 1}-1{year % 7}T{h:02d}:{m:02d}:00Z INFO sys{year} tick"
            for h in range(2)
            for m in range(0, 60, 5)
        ]
    # The densest: a day of many lines in 2015.
    lines += [f"2015-06-01T10:{m:02d}:{s:02d}Z WARN sys2015 retry" for m in range(60) for s in range(0, 60, 10)]
    found, stderr, out = _build(tmp_path, "years", lines)
    span = found["time_span"]
    assert span["outlier_events"] == 0
    width = pd.Timedelta(span["bucket"])
    assert width > pd.Timedelta("1D")
    covered = pd.Timestamp(span["end"]) - pd.Timestamp(span["start"])
    assert covered > pd.Timedelta(days=365 * 6)
    assert covered / width <= MAX_BUCKETS
    assert f"signals use {span['bucket']} buckets" in stderr
    # The suggested window is ISO text that --start/--end accept, around the densest activity.
    start = stderr.split("--start ")[1].split()[0]
    end = stderr.split("--end ")[1].split()[0]
    hour = pd.Timestamp("2015-06-01T10:00:00Z")
    assert hour - pd.Timedelta("1min") <= pd.Timestamp(start) < pd.Timestamp(end) <= hour + pd.Timedelta("61min")
    narrowed, narrow_err, _ = _build(tmp_path, "narrow", lines, "--start", start, "--end", end)
    assert narrowed["time_span"]["bucket"] == "1min"
    assert "signals use" not in narrow_err
    # The chart says the same: settings and draft speak of the widened buckets.
    assert f"per {span['bucket']} bucket" in (out / "postmortem.md").read_text(encoding="utf-8")


def test_adapted_bucket_keeps_the_count_bounded() -> None:
    assert adapted_bucket("1min", pd.Timedelta("1D")) == "1min"
    for years in (1, 10, 100, 500):
        span = pd.Timedelta(days=365 * years)
        width = pd.Timedelta(adapted_bucket("1min", span))
        assert span / width <= MAX_BUCKETS
        # The narrowest that fits: the next narrower one would not.
        narrower = [w for w in BUCKET_WIDTHS if pd.Timedelta(w) < width]
        assert not narrower or span / pd.Timedelta(narrower[-1]) > MAX_BUCKETS


def test_dense_span_sets_apart_the_far_and_keeps_systems_years_apart() -> None:
    day = pd.Timestamp("2024-03-12T08:00:00Z").value
    minute = pd.Timedelta("1min").value
    times = np.sort(np.r_[pd.Timestamp("1970-01-01T00:00:00Z").value, day + minute * np.arange(200)])
    low, high = dense_span(times, np.ones(len(times)))
    assert low > times[0]
    assert high > times[-1]
    assert low < times[1]
    # Six clusters years apart, a sixth of the data each: all inside.
    clusters = np.sort(
        np.concatenate(
            [pd.Timestamp(f"{y}-01-01", tz="UTC").value + minute * np.arange(100) for y in range(2005, 2017, 2)]
        )
    )
    low, high = dense_span(clusters, np.ones(len(clusters)))
    assert low <= clusters[0]
    assert high >= clusters[-1]


def test_densest_half_is_the_shortest_stretch_with_half_the_events() -> None:
    minute = pd.Timedelta("1min").value
    times = np.r_[minute * np.arange(0, 1000, 100), minute * 2000 + np.arange(20)]
    first, last = densest_half(times, np.ones(len(times)))
    assert (first, last) == (int(minute * 2000), int(minute * 2000 + 14))


def test_a_stray_line_years_away_leaves_the_sample_incident_as_it_was(tmp_path: Path) -> None:
    import json
    import shutil

    from click.testing import CliRunner
    from conftest import SAMPLE_LOGS

    from pmtimeline.cli import cli

    copy = tmp_path / "sample_logs"
    shutil.copytree(SAMPLE_LOGS, copy)
    worker = copy / "workers" / "settlement-worker.log"
    lines = worker.read_text(encoding="utf-8").count("\n")
    with worker.open("a", encoding="utf-8") as f:
        f.write("2022-01-01 00:00:00,000 - settlement-worker - ERROR - Settlement batch 1 failed: clock reset\n")
    found = {}
    for name, logs in (("base", SAMPLE_LOGS), ("stray", copy)):
        out = tmp_path / name
        zone = "--source-tz=ledger/*=Europe/Amsterdam"
        result = CliRunner().invoke(
            cli, ["build", str(logs), zone, "-o", str(out), "--no-images"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        text = (out / "incident.json").read_text(encoding="utf-8").replace(str(logs), "LOGS")
        found[name] = json.loads(text)
    base, stray = found["base"], found["stray"]
    for key in base:
        if key not in ("sources", "time_span"):
            assert base[key] == stray[key], key
    assert stray["time_span"]["outliers"] == [
        {"timestamp": "2022-01-01T00:00:00Z", "source": "LOGS/workers/settlement-worker.log", "line": lines + 1}
    ]
    assert stray["time_span"]["bucket"] == base["time_span"]["bucket"] == "1min"


def test_outliers_stay_listed_when_phases_are_set_by_hand(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from pmtimeline.cli import cli

    odd = "1970-01-01T00:00:00Z ERROR checkout-api clock reset"
    found, _, out = _build(tmp_path, "odd", [*_incident_lines(), odd])
    toml = out / "incident.toml"
    text = toml.read_text(encoding="utf-8")
    assert '# onset = "2024-03-12T08:20:00Z"' in text
    toml.write_text(
        text.replace('# onset = "2024-03-12T08:20:00Z"', 'onset = "2024-03-12T08:19:00Z"'), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["report", str(out), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    again = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    assert again["phases"]["onset"] == "2024-03-12T08:19:00Z"
    assert again["time_span"]["outliers"] == found["time_span"]["outliers"]
    assert "`1970-01-01T00:00:00Z`" in (out / "postmortem.md").read_text(encoding="utf-8")


def test_years_of_even_activity_get_coarse_buckets_and_no_claim_of_a_denser_part(tmp_path: Path) -> None:
    days = pd.date_range("2018-01-01T06:00:00Z", "2023-12-31T06:00:00Z", freq="D")
    found, stderr, _ = _build(tmp_path, "even", [f"{t:%Y-%m-%dT%H:%M:%SZ} INFO nightly backup done" for t in days])
    span = found["time_span"]
    assert span["outlier_events"] == 0
    covered = pd.Timestamp(span["end"]) - pd.Timestamp(span["start"])
    assert pd.Timedelta(span["bucket"]) > pd.Timedelta("1D")
    assert covered / pd.Timedelta(span["bucket"]) <= MAX_BUCKETS
    assert f"signals use {span['bucket']} buckets" in stderr
    assert "densest" not in stderr
