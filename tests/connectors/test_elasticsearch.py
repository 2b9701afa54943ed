"""The Elasticsearch connector against esstub over real HTTP (never a fake client), and live when asked.

Every test talks to the real ``elasticsearch`` client, which talks HTTP/1.1 to ``tests/esstub.py``
on 127.0.0.1; the stub's fault switches stand in for a misbehaving cluster. Set
``PMTIMELINE_ES_URL`` (and the ``PMTIMELINE_ES_*`` credentials) to run the same read and count
scenarios against a live cluster.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from esstub import ECS_MAPPINGS, EsStub, events_to_documents, load_events

from pmtimeline.aggregate import count_signals
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.elasticsearch import ElasticsearchConnector, EsSettings
from pmtimeline.errors import ConfigError, SearchBackendError
from pmtimeline.schema import COUNT_COLUMNS, ERROR_LEVELS, EVENT_COLUMNS, severity_numbers, validate_events
from pmtimeline.sources import AccountedSource, CountingSource

BASE = pd.Timestamp("2024-03-01T10:00:00Z")
WINDOW = TimelineConfig(start=BASE, end=BASE + pd.Timedelta("5min"))
INDEX = "logs-app"


def _iso(offset_s: float) -> str:
    return (BASE + pd.Timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def corpus() -> list[tuple[str, Any]]:
    """(id, _source) pairs: a healthy minute, then errors, with the awkward cases mixed in."""
    docs: list[tuple[str, Any]] = []
    for i in range(24):
        offset = 10 * i
        if i in (3, 4, 5):
            offset = 30  # three documents share a timestamp across a page boundary (page size 2)
        service = "api" if i % 2 == 0 else "db"
        level = "ERROR" if 12 <= i < 18 else "info"
        doc: dict[str, Any] = {
            "@timestamp": _iso(offset),
            "message": f"GET /orders/{i}" if service == "api" else f"query {i} done",
            "log": {"level": level},
            "service": {"name": service},
            "host": {"name": f"node-{i % 3}"},
        }
        if service == "api":
            doc["http"] = {"response": {"status_code": 503 if 14 <= i < 16 else 200}, "request": {"method": "GET"}}
            doc["event"] = {"dataset": "nginx.access", "duration": 1_500_000 * (i + 1)}
        docs.append((f"d{i:02d}", doc))
    docs.append(("warn", {"@timestamp": _iso(95), "message": "slow query", "log.level": "WARN", "service.name": "db"}))
    docs.append(("deploy", {"@timestamp": _iso(100), "message": "deployed checkout v2.3.1", "service.name": "ci"}))
    docs.append(
        (
            "alert-1",
            {
                "@timestamp": _iso(150),
                "event": {"kind": "alert", "action": "open"},
                "kibana.alert.rule.name": "High error rate",
                "kibana.alert.status": "active",
                "kibana.alert.uuid": "a-1",
                "service": {"name": "api"},
            },
        )
    )
    docs.append(
        (
            "alert-2",
            {
                "@timestamp": _iso(250),
                "event": {"kind": "alert"},
                "kibana.alert.rule.name": "High error rate",
                "kibana.alert.status": "recovered",
                "kibana.alert.uuid": "a-1",
                "service": {"name": "api"},
            },
        )
    )
    docs.append(
        ("early", {"@timestamp": "2024-03-01T09:00:00Z", "message": "before the window", "service.name": "api"})
    )
    docs.append(("untimed", {"message": "no time field at all", "service.name": "api"}))
    return docs


def in_window_ids() -> list[str]:
    """Ids of the corpus documents inside WINDOW, in (time, position) order: derived from the corpus."""
    rows = [
        (pd.Timestamp(src["@timestamp"]), pos, doc_id)
        for pos, (doc_id, src) in enumerate(corpus())
        if "@timestamp" in src
    ]
    assert WINDOW.start is not None
    assert WINDOW.end is not None
    return [doc_id for ts, _pos, doc_id in sorted(rows) if WINDOW.start <= ts < WINDOW.end]


def fill(stub: EsStub, index: str = INDEX, *, ecs_mapping: bool = True) -> None:
    docs = corpus()
    if ecs_mapping:
        stub.create_index(index, ECS_MAPPINGS)
    stub.add_documents(index, [src for _id, src in docs], ids=[doc_id for doc_id, _src in docs])


def settings(url: str, **overrides: Any) -> EsSettings:
    base: dict[str, Any] = {
        "url": url,
        "index": "logs-*",
        "page_size": 10,
        "mode": "documents",
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "request_timeout": 5.0,
    }
    base.update(overrides)
    return EsSettings(**base)


def read_all(connector: ElasticsearchConnector) -> pd.DataFrame:
    frames = list(connector.read())
    for frame in frames:
        validate_events(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(EVENT_COLUMNS))


def ids_of(events: pd.DataFrame) -> list[str]:
    return [json.loads(text)["_id"] for text in events["fields"]]


def expected_counts(events: pd.DataFrame, resolution: str) -> pd.DataFrame:
    """The per-bucket counts of an event frame, computed here in pandas, independently of the connector."""
    level = events["level"].astype(object)
    status = events["http_status"].astype("float64")
    errors = level.isin(ERROR_LEVELS) | (status >= 500)
    requests = events["kind"] == "request"
    edge = requests & events["format"].str.startswith("access")
    frame = pd.DataFrame(
        {
            "bucket": events["timestamp"].dt.floor(resolution),
            "service": events["service"].fillna("").astype(object),
            "events": 1,
            "errors": errors.astype(int),
            "warnings": ((level == "warning") & ~errors).astype(int),
            "requests": requests.astype(int),
            "failed_requests": (requests & (status >= 500)).astype(int),
            "edge_requests": edge.astype(int),
            "failed_edge_requests": (edge & (status >= 500)).astype(int),
        }
    )
    out = frame.groupby(["bucket", "service"], as_index=False).sum()
    return out.sort_values(["bucket", "service"]).reset_index(drop=True)


@pytest.fixture(params=[8, 9], ids=["server8", "server9"])
def stub(request: pytest.FixtureRequest) -> Iterator[EsStub]:
    """The corpus on an 8.x and on a 9.x server (protocol-sensitive tests run against both)."""
    with EsStub(emulate_major=request.param) as server:
        fill(server)
        yield server


@pytest.fixture
def stub9() -> Iterator[EsStub]:
    """The corpus on a 9.x server (for tests of mapping and counting, which do not depend on the version)."""
    with EsStub(emulate_major=9) as server:
        fill(server)
        yield server


# -- reading ------------------------------------------------------------------------------------------
def test_reads_the_window_across_pages_without_loss_or_duplicates(stub: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub.url, page_size=2), WINDOW)
    events = read_all(connector)

    assert ids_of(events) == in_window_ids()
    assert events["timestamp"].is_monotonic_increasing
    acc = connector.accounting()[0]
    assert (acc.lines_read, acc.events, acc.rejected_total, acc.duplicates) == (len(in_window_ids()), len(events), 0, 0)
    assert acc.balanced()
    assert not acc.partial
    searches = stub.calls("search")
    assert len(searches) > len(events) // 2  # page size 2: many pages
    body = searches[0].body
    assert body["sort"] == [
        {
            "@timestamp": {
                "order": "asc",
                "format": "strict_date_optional_time_nanos",
                "unmapped_type": "date",
                "numeric_type": "date_nanos",
            }
        },
        {"_shard_doc": "asc"},
    ]
    assert body["track_total_hits"] is False
    assert body["size"] == 2
    assert searches[0].path == "/_search"  # a PIT search names no index
    assert {
        "range": {
            "@timestamp": {
                "gte": "2024-03-01T10:00:00.000000000Z",
                "lt": "2024-03-01T10:05:00.000000000Z",
                "format": "strict_date_optional_time_nanos",
            }
        }
    } in body["query"]["bool"]["filter"]


def test_connector_implements_the_source_protocols(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url), WINDOW)
    assert isinstance(connector, AccountedSource)
    assert isinstance(connector, CountingSource)
    assert connector.name == "es:logs-*"


def test_each_page_continues_from_the_latest_pit_id() -> None:
    with EsStub(rotate_pit_id=True) as server:
        fill(server)
        events = read_all(ElasticsearchConnector(settings(server.url, page_size=4), WINDOW))
        used = [r.body["pit"]["id"] for r in server.calls("search")]
        closed = [r.body["id"] for r in server.calls("pit_close")]
        issued = server.pit_ids_issued
    assert len(events) == len(in_window_ids())
    # the opened id, then each id returned by the page before; the close uses the very last one
    assert used == issued[: len(used)]
    assert closed == [issued[-1]]
    assert len(set(used)) == len(used) > 2


def test_pit_is_closed_on_success_error_and_early_stop(stub: EsStub) -> None:
    read_all(ElasticsearchConnector(settings(stub.url), WINDOW))
    assert len(stub.calls("pit_close", "DELETE")) == 1
    assert stub.open_contexts() == 0

    stub.add_fault("search", "status", status=500, first_call=len(stub.calls("search")) + 3)
    with pytest.raises(SearchBackendError, match="500"):
        read_all(ElasticsearchConnector(settings(stub.url), WINDOW))
    assert len(stub.calls("pit_close", "DELETE")) == 2
    assert stub.open_contexts() == 0

    pages = ElasticsearchConnector(settings(stub.url), WINDOW).read()
    first = next(pages)
    assert len(first) == 10
    pages.close()  # the consumer stops early
    assert len(stub.calls("pit_close", "DELETE")) == 3
    assert stub.open_contexts() == 0


def test_event_cap_marks_the_source_partial(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url, max_events=5), WINDOW)
    events = read_all(connector)
    acc = connector.accounting()[0]
    assert ids_of(events) == in_window_ids()[:5]
    assert acc.partial
    assert acc.partial_reason is not None
    assert "5 documents" in acc.partial_reason


def test_event_cap_equal_to_the_window_is_not_partial(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url, max_events=len(in_window_ids())), WINDOW)
    events = read_all(connector)
    assert len(events) == len(in_window_ids())
    assert not connector.accounting()[0].partial


def test_documents_without_time_field_are_rejected_not_plotted(stub9: EsStub) -> None:
    stub9.add_documents(INDEX, [["not", "an", "object"]], ids=["list-source"])
    connector = ElasticsearchConnector(settings(stub9.url, page_size=50), TimelineConfig())  # no window: all documents
    events = read_all(connector)
    acc = connector.accounting()[0]
    assert "untimed" not in ids_of(events)
    assert "list-source" not in ids_of(events)
    assert events["timestamp"].max() < pd.Timestamp("2100-01-01", tz="UTC")
    assert acc.rejected == {"no_timestamp": 1, "source_not_object": 1}
    assert acc.balanced()
    assert acc.lines_read == len(corpus()) + 1
    assert {r.reason for r in connector.rejects()} == {"no_timestamp", "source_not_object"}


def test_huge_messages_are_cut_and_counted(stub9: EsStub) -> None:
    stub9.add_documents(INDEX, [{"@timestamp": _iso(1), "message": "x" * 5000, "service.name": "api"}], ids=["huge"])
    config = TimelineConfig(start=WINDOW.start, end=WINDOW.end, max_line_bytes=1000)
    connector = ElasticsearchConnector(settings(stub9.url), config)
    events = read_all(connector)
    huge = events[[i == "huge" for i in ids_of(events)]]
    assert huge["message"].str.len().tolist() == [1000]
    assert any("1 message(s) longer than 1000" in note for note in connector.accounting()[0].notes)


# -- mapping ------------------------------------------------------------------------------------------
def test_ecs_document_maps_to_one_fully_expected_row() -> None:
    source = {
        "@timestamp": "2024-03-01T10:00:01.123456789Z",
        "message": "GET /pay failed",
        "log": {"level": "ERROR"},
        "service": {"name": "payments"},
        "host": {"name": "node-7"},
        "trace": {"id": "t-1"},
        "transaction": {"id": "tx-9"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 502}},
        "url": {"path": "/pay?id=3"},
        "user": {"id": "u-42"},
        "client": {"ip": "203.0.113.9"},
        "event": {"duration": 2_500_000, "dataset": "nginx.access"},
        "labels": {"team": "core"},
        "tags": ["a", "b"],
    }
    with EsStub() as server:
        server.create_index(INDEX, ECS_MAPPINGS)
        server.add_documents(INDEX, [source], ids=["doc-1"])
        events = read_all(ElasticsearchConnector(settings(server.url), WINDOW))
    row = events.iloc[0].to_dict()
    expected = {
        "timestamp": pd.Timestamp("2024-03-01T10:00:01.123456789Z"),
        "source": "es:logs-*",
        "line": pd.NA,
        "format": "access.elasticsearch",
        "host": "node-7",
        "service": "payments",
        "level": "error",
        "severity_number": 17,
        "message": "GET /pay failed",
        "kind": "request",
        "http_status": 502,
        "http_method": "POST",
        "url_path": "/pay?id=3",
        "duration_ms": 2.5,
        "trace_id": "t-1",
        "request_id": "tx-9",
        "user": "u-42",
        "client_ip": "203.0.113.9",
        "alert_name": pd.NA,
        "alert_state": pd.NA,
        "alert_id": pd.NA,
        "change_type": pd.NA,
        "ts_raw": "2024-03-01T10:00:01.123456789Z",
        "tz_assumed": pd.NA,
        "year_inferred": False,
        "fields": json.dumps(
            {"_id": "doc-1", "_index": INDEX, "labels.team": "core", "tags": ["a", "b"]}, sort_keys=True
        ),
    }
    assert list(row) == list(EVENT_COLUMNS)
    for column, value in expected.items():
        if value is pd.NA:
            assert pd.isna(row[column]), column
        else:
            assert row[column] == value, column


def test_user_mapping_wins_over_ecs_and_aliases() -> None:
    source = {
        "ts": "2024-03-01T10:00:05Z",
        "app": "billing",
        "svc": "billing-v2",
        "lvl": "WARN",
        "body": {"text": "card declined"},
    }
    mapping = {"body.text": "message", "svc": "service"}
    with EsStub() as server:
        server.add_documents("custom", [source], ids=["c1"])
        connector = ElasticsearchConnector(
            settings(server.url, index="custom", time_field="ts", mapping=mapping), WINDOW
        )
        events = read_all(connector)
    row = events.iloc[0]
    assert (row["message"], row["service"], row["level"], row["timestamp"]) == (
        "card declined",
        "billing-v2",
        "warning",
        pd.Timestamp("2024-03-01T10:00:05Z"),
    )
    assert json.loads(row["fields"]) == {"_id": "c1", "_index": "custom", "app": "billing"}  # the losing alias is kept


def test_alert_documents_become_alert_events(stub9: EsStub) -> None:
    acked = {
        "@timestamp": _iso(200),
        "event.kind": "alert",
        "rule.name": "DiskSpaceLow",
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "acknowledged",
        "event.id": "b-7",
    }
    stub9.add_documents(INDEX, [acked], ids=["alert-ack"])
    events = read_all(ElasticsearchConnector(settings(stub9.url), WINDOW))
    alerts = events[events["kind"] == "alert"]
    assert alerts[["alert_name", "alert_state", "alert_id"]].to_dict("records") == [
        {"alert_name": "High error rate", "alert_state": "firing", "alert_id": "a-1"},
        {"alert_name": "DiskSpaceLow", "alert_state": "acknowledged", "alert_id": "b-7"},
        {"alert_name": "High error rate", "alert_state": "resolved", "alert_id": "a-1"},
    ]
    assert alerts["message"].tolist() == ["High error rate", "DiskSpaceLow", "High error rate"]
    assert events.loc[events["kind"] != "alert", "alert_name"].isna().all()


# -- counts and push-down -----------------------------------------------------------------------------
@pytest.mark.parametrize("ecs_mapping", [True, False], ids=["ecs-mapping", "dynamic-mapping"])
@pytest.mark.parametrize("resolution", ["1min", "10s"])
def test_counts_equal_counts_of_the_documents(ecs_mapping: bool, resolution: str) -> None:
    with EsStub() as server:
        fill(server, ecs_mapping=ecs_mapping)
        events = read_all(ElasticsearchConnector(settings(server.url, page_size=100), WINDOW))
        counts = ElasticsearchConnector(settings(server.url, page_size=3), WINDOW).counts(resolution)
        composite_calls = len(server.calls("search"))
    assert tuple(counts.columns) == COUNT_COLUMNS
    expected = expected_counts(events, resolution)
    pd.testing.assert_frame_equal(counts.astype({"service": object}), expected, check_dtype=False)
    # and equal to what the pipeline counts from the same events itself
    pd.testing.assert_frame_equal(counts, count_signals(events, resolution))
    failed_edge = [d for _i, d in corpus() if d.get("http", {}).get("response", {}).get("status_code", 0) >= 500]
    assert counts["errors"].sum() > 0
    assert counts["failed_edge_requests"].sum() == len(failed_edge) > 0
    assert composite_calls > 2  # paged with after_key


def test_pushdown_pulls_only_notable_documents(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url, mode="pushdown", sample_size=0), WINDOW)
    assert connector.pushdown()
    events = read_all(connector)
    everything = read_all(ElasticsearchConnector(settings(stub9.url), WINDOW))
    notable = everything[
        (everything["severity_number"] >= 13).fillna(False)
        | (everything["http_status"] >= 500).fillna(False)
        | (everything["kind"] == "alert")
        | everything["message"].str.contains("deploy", na=False)
    ]
    assert ids_of(events) == ids_of(notable)
    assert 0 < len(events) < len(everything)


def test_pushdown_adds_a_bounded_sample_of_ordinary_documents(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url, mode="pushdown", sample_size=3), WINDOW)
    events = read_all(connector)
    plain = ElasticsearchConnector(settings(stub9.url, mode="pushdown", sample_size=0), WINDOW)
    notable_ids = ids_of(read_all(plain))
    extra = events[[i not in notable_ids for i in ids_of(events)]]
    assert len(extra) == 3
    assert WINDOW.start is not None
    assert WINDOW.end is not None
    thirds = (extra["timestamp"] - WINDOW.start) // ((WINDOW.end - WINDOW.start) / 3)
    assert sorted(thirds) == [0, 1, 2]  # spread over the window, not all from its start
    assert len(set(ids_of(events))) == len(events)
    assert any("sample" in note for note in connector.accounting()[0].notes)


@pytest.mark.parametrize(("threshold", "expected"), [(5, True), (1000, False)])
def test_auto_mode_counts_first(stub9: EsStub, threshold: int, expected: bool) -> None:
    connector = ElasticsearchConnector(settings(stub9.url, mode="auto", pushdown_threshold=threshold), WINDOW)
    assert connector.pushdown() is expected
    assert connector.pushdown() is expected
    assert len(stub9.calls("count")) == 1
    assert any(f"{len(in_window_ids())} documents" in note for note in connector.accounting()[0].notes)


# -- faults -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"action": "status", "status": 429, "times": 3}, "429"),
        ({"action": "status", "status": 502, "times": 2}, "502"),
        ({"action": "status", "status": 503, "times": 1}, "503"),
        ({"action": "status", "status": 504, "times": 1}, "504"),
        ({"action": "html_502", "times": 1}, "502"),
        ({"action": "drop", "times": 1}, "connection"),
        ({"action": "truncate", "times": 1}, "connection"),
        ({"action": "delay", "delay": 1.5, "times": 1}, "timeout"),
    ],
)
def test_transient_faults_are_retried_and_counted(stub: EsStub, fault: dict[str, Any], label: str) -> None:
    stub.add_fault("search", first_call=3, **fault)
    connector = ElasticsearchConnector(settings(stub.url, request_timeout=0.5), WINDOW)
    events = read_all(connector)
    acc = connector.accounting()[0]
    assert ids_of(events) == in_window_ids()
    retried = [note for note in acc.notes if note.startswith("retried")]
    assert retried, acc.notes
    assert label in retried[0]
    assert not acc.partial
    assert stub.open_contexts() == 0


def test_a_cluster_always_slower_than_the_timeout_is_given_more_time(stub9: EsStub) -> None:
    # Every search takes 1 s and the timeout is 0.4 s. Asked again with the same timeout, a busy cluster
    # fails the same way every time (the push-down test failed so on a loaded machine: no documents,
    # phases from counts only); doubling it (0.4, 0.8, 1.6 s) reads every page, and nothing is lost.
    stub9.add_fault("search", "delay", delay=1.0, times=None)
    connector = ElasticsearchConnector(settings(stub9.url, request_timeout=0.4, page_size=100), WINDOW)
    events = read_all(connector)
    acc = connector.accounting()[0]
    assert ids_of(events) == in_window_ids()
    assert not acc.partial, acc.partial_reason
    pages = len(stub9.calls("search")) // 3
    assert [note for note in acc.notes if note.startswith("retried")] == [
        f"retried {2 * pages} request(s) (timeout x{2 * pages})"
    ]
    assert stub9.open_contexts() == 0


def test_a_cluster_that_never_answers_in_time_gives_up_with_the_last_timeout(stub9: EsStub) -> None:
    stub9.add_fault("search", "delay", delay=2.0, times=None)
    connector = ElasticsearchConnector(settings(stub9.url, request_timeout=0.2, max_attempts=3), WINDOW)
    with pytest.raises(SearchBackendError) as info:
        read_all(connector)
    assert str(info.value) == (
        f"Elasticsearch at {stub9.url} did not answer search within 0.8s (3 attempts from 0.2s, doubling); "
        "raise the request timeout or narrow the window"
    )


def test_unavailable_forever_gives_up_and_closes_the_pit(stub: EsStub) -> None:
    stub.add_fault("search", "status", status=503, first_call=2, times=None)
    connector = ElasticsearchConnector(settings(stub.url, max_attempts=3), WINDOW)
    with pytest.raises(SearchBackendError, match=r"kept answering 503 .* after 3 attempts"):
        read_all(connector)
    assert len(stub.calls("pit_close", "DELETE")) == 1
    assert stub.open_contexts() == 0
    assert len(stub.calls("search")) == 1 + 3


def test_failed_pit_close_is_not_retried_and_does_not_fail_the_read(stub: EsStub) -> None:
    stub.add_fault("pit_close", "status", status=503)
    connector = ElasticsearchConnector(settings(stub.url), WINDOW)
    events = read_all(connector)
    assert len(events) == len(in_window_ids())
    assert len(stub.calls("pit_close")) == 1  # closing is not idempotent: never retried
    assert any("could not close the point in time (503)" in note for note in connector.accounting()[0].notes)


def test_expired_pit_is_reopened_and_resumed_without_duplicates(stub: EsStub) -> None:
    stub.add_fault("search", "pit_expired", first_call=3)
    connector = ElasticsearchConnector(settings(stub.url), WINDOW)
    events = read_all(connector)
    assert ids_of(events) == in_window_ids()
    assert len(stub.calls("pit_open")) == 2
    assert stub.open_contexts() == 0
    assert any("reopened" in note for note in connector.accounting()[0].notes)


def test_a_reopened_point_in_time_loses_no_document_sharing_the_last_time() -> None:
    # Five documents with one time, pages of two, and the point in time lapses after the first page.
    # The new one orders them differently (as after a segment merge): resuming after the old
    # _shard_doc skipped two of them and re-read two; resuming at the time itself reads each once.
    docs = [{"@timestamp": _iso(30), "message": f"same second {i}", "service.name": "api"} for i in range(5)]
    docs.append({"@timestamp": _iso(31), "message": "next second", "service.name": "api"})
    with EsStub(emulate_major=9, reorder_snapshots=True) as server:
        server.add_documents(INDEX, docs, ids=[f"d{i}" for i in range(6)])
        server.add_fault("search", "pit_expired", first_call=2)
        connector = ElasticsearchConnector(settings(server.url, page_size=2), WINDOW)
        events = read_all(connector)
        assert server.open_contexts() == 0
    acc = connector.accounting()[0]
    assert sorted(ids_of(events)) == [f"d{i}" for i in range(6)]
    assert (acc.events, acc.lines_read, acc.duplicates) == (6, 6, 0)
    assert acc.balanced()
    assert not acc.partial


def test_documents_seen_again_after_a_resume_are_deduplicated(stub9: EsStub) -> None:
    connector = ElasticsearchConnector(settings(stub9.url), WINDOW)
    pages = connector.read()
    first = next(pages)
    # Between two pages a document already read is updated to a later time and the PIT lapses:
    # the reopened point in time sees it again.
    stub9.add_documents(
        INDEX, [{"@timestamp": _iso(290), "message": "updated", "service.name": "api"}], ids=[ids_of(first)[0]]
    )
    stub9.expire_contexts()
    rest = pd.concat(list(pages), ignore_index=True)
    events = pd.concat([first, rest], ignore_index=True)
    acc = connector.accounting()[0]
    assert sorted(ids_of(events)) == sorted(in_window_ids())
    assert acc.duplicates == 1
    assert acc.balanced()


@pytest.mark.parametrize(("action", "reason"), [("partial_shards", "1 of 2 shards failed"), ("timed_out", "timed out")])
def test_incomplete_answers_mark_the_source_partial(stub: EsStub, action: str, reason: str) -> None:
    stub.add_fault("search", action, first_call=2)
    connector = ElasticsearchConnector(settings(stub.url), WINDOW)
    events = read_all(connector)
    acc = connector.accounting()[0]
    assert len(events) == len(in_window_ids())
    assert acc.partial
    assert acc.partial_reason is not None
    assert reason in acc.partial_reason


def test_partial_aggregation_marks_counts_partial(stub9: EsStub) -> None:
    stub9.add_fault("search", "partial_shards")
    connector = ElasticsearchConnector(settings(stub9.url), WINDOW)
    connector.counts("1min")
    acc = connector.accounting()[0]
    assert acc.partial
    assert "aggregation" in str(acc.partial_reason)


def test_server_without_product_header_is_refused_clearly() -> None:
    with EsStub(product_header=False) as server:
        fill(server)
        with pytest.raises(SearchBackendError, match=r"is not Elasticsearch \(OpenSearch\?"):
            read_all(ElasticsearchConnector(settings(server.url), WINDOW))


@pytest.mark.parametrize(("action", "status"), [("unauthorized", "401"), ("forbidden", "403")])
def test_auth_errors_are_clear_and_never_echo_the_secret(stub: EsStub, action: str, status: str) -> None:
    stub.add_fault("*", action, times=None)
    secret = "hunter2-very-secret"
    connector = ElasticsearchConnector(settings(stub.url, username="elastic", password=secret), WINDOW)
    with pytest.raises(SearchBackendError) as info:
        read_all(connector)
    message = str(info.value)
    assert status in message
    assert "authentication" in message or "authorization" in message
    assert secret not in message
    assert secret not in repr(connector)


def test_credentials_are_sent() -> None:
    import base64

    expected = "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    with EsStub(expected_authorization=expected) as server:
        fill(server)
        events = read_all(ElasticsearchConnector(settings(server.url, username="elastic", password="s3cret"), WINDOW))
        assert len(events) == len(in_window_ids())
        with pytest.raises(SearchBackendError, match="401"):
            read_all(ElasticsearchConnector(settings(server.url, api_key="wrong-key"), WINDOW))


def test_too_new_server_names_the_client_fix() -> None:
    with EsStub(emulate_major=10) as server:  # accepts compatible-with=10 or 9 only, as ES 8 refuses client 9
        fill(server)
        with pytest.raises(SearchBackendError, match=r'pip install "elasticsearch>=8.13,<9"'):
            read_all(ElasticsearchConnector(settings(server.url), WINDOW))


def test_warning_header_is_surfaced_once(stub: EsStub) -> None:
    stub.add_fault("search", "warning", times=None)
    connector = ElasticsearchConnector(settings(stub.url), WINDOW)
    events = read_all(connector)
    notes = connector.accounting()[0].notes
    assert len(events) == len(in_window_ids())
    assert len([n for n in notes if "deprecated feature" in n]) == 1


def test_invalid_json_is_a_clear_error(stub9: EsStub) -> None:
    stub9.add_fault("search", "invalid_json", first_call=2)
    with pytest.raises(SearchBackendError, match="invalid JSON"):
        read_all(ElasticsearchConnector(settings(stub9.url), WINDOW))
    assert stub9.open_contexts() == 0


def test_connection_refused_is_a_clear_error() -> None:
    connector = ElasticsearchConnector(settings("http://127.0.0.1:9", max_attempts=2), WINDOW)
    with pytest.raises(SearchBackendError, match=r"^cannot connect to http://127.0.0.1:9: connection refused"):
        read_all(connector)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cloud_id": "garbage"}, "invalid Elasticsearch settings for Elastic Cloud deployment 'garbage'"),
        ({"url": "https://127.0.0.1:9", "ca_file": "/nonexistent/ca.pem"}, "CA file not found: /nonexistent/ca.pem"),
    ],
)
def test_bad_connection_settings_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchBackendError, match=message):
        read_all(ElasticsearchConnector(EsSettings(**options), WINDOW))


def test_missing_index_is_a_clear_error(stub9: EsStub) -> None:
    with pytest.raises(SearchBackendError, match=r"index 'nope' not found"):
        read_all(ElasticsearchConnector(settings(stub9.url, index="nope"), WINDOW))


def test_bad_query_string_is_a_clear_error(stub9: EsStub) -> None:
    with pytest.raises(SearchBackendError, match=r"check --es-query\): query_shard_exception: Failed to parse query"):
        read_all(ElasticsearchConnector(settings(stub9.url, query="service.name:(api"), WINDOW))


def test_query_string_narrows_the_read(stub9: EsStub) -> None:
    events = read_all(
        ElasticsearchConnector(settings(stub9.url, query="service.name:db AND NOT log.level:ERROR"), WINDOW)
    )
    assert len(events) > 0
    assert set(events["service"]) == {"db"}
    assert "error" not in set(events["level"].dropna())


# -- settings -----------------------------------------------------------------------------------------
def test_settings_repr_masks_secrets() -> None:
    s = EsSettings(url="https://elastic:pw1@es.example:9200", api_key="key-123", password="pw2", bearer="tok-3")
    text = repr(s)
    for secret in ("pw1", "key-123", "pw2", "tok-3"):
        assert secret not in text
    assert "es.example:9200" in text
    assert "api_key='***'" in text


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMTIMELINE_ES_URL", "https://es.example:9200")
    monkeypatch.setenv("PMTIMELINE_ES_API_KEY", "abc")
    monkeypatch.setenv("PMTIMELINE_ES_CA_FILE", "/etc/ca.pem")
    s = EsSettings.from_env(index="metrics-*", url=None)
    assert (s.url, s.api_key, s.ca_file, s.index) == ("https://es.example:9200", "abc", "/etc/ca.pem", "metrics-*")
    assert EsSettings.from_env(url="http://other:9200").url == "http://other:9200"


# -- round trip through _bulk -------------------------------------------------------------------------
def test_load_events_round_trips_an_event_frame(small_events: pd.DataFrame) -> None:
    frame = small_events.assign(timestamp=pd.to_datetime(small_events["timestamp"], utc=True))
    with EsStub() as server:
        assert load_events(server.url, "loaded", frame) == len(frame)
        assert server.calls("bulk")[0].method == "PUT"
        config = TimelineConfig(start=frame["timestamp"].min(), end=frame["timestamp"].max() + pd.Timedelta("1s"))
        events = read_all(ElasticsearchConnector(settings(server.url, index="loaded", page_size=25), config))
    assert len(events) == len(frame)
    assert events["timestamp"].tolist() == frame["timestamp"].tolist()
    assert events["message"].tolist() == frame["message"].tolist()
    assert events["level"].tolist() == frame["level"].tolist()
    assert events["service"].tolist() == frame["service"].tolist()


ROUND_TRIP_COLUMNS = (
    "timestamp",
    "host",
    "service",
    "level",
    "severity_number",
    "message",
    "kind",
    "http_status",
    "http_method",
    "url_path",
    "duration_ms",
    "trace_id",
    "request_id",
    "user",
    "client_ip",
    "alert_name",
    "alert_state",
    "alert_id",
)


def test_load_events_round_trips_every_mapped_column() -> None:
    t = pd.date_range(BASE, periods=5, freq="7s") + pd.Timedelta(nanoseconds=123_456_789)
    frame = pd.DataFrame(
        {
            "timestamp": t,
            "host": ["web-1", "web-2", None, "db-1", None],
            "service": ["edge", "payments", "payments", "db", "payments"],
            "level": [None, "error", "warning", "info", "critical"],
            "message": ["GET /pay", "pay failed", "slow", "checkpoint", "HighErrorRate"],
            "kind": ["request", "request", "log", "log", "alert"],
            "http_status": pd.array([200, 503, None, None, None], dtype="Int64"),
            "http_method": ["GET", "POST", None, None, None],
            "url_path": ["/pay?x=1", "/pay", None, None, None],
            "duration_ms": [12.5, 30000.0, None, None, None],
            "trace_id": [None, "tr-1", "tr-1", None, None],
            "request_id": [None, "rq-1", None, None, None],
            "user": ["u1", "u2", None, None, None],
            "client_ip": ["198.51.100.7", None, None, None, None],
            "alert_name": [None, None, None, None, "HighErrorRate"],
            "alert_state": [None, None, None, None, "acknowledged"],
            "alert_id": [None, None, None, None, "fp-1"],
            "format": ["access_combined", "json_lines", "json_lines", "logfmt", "alertmanager"],
        }
    )
    frame["severity_number"] = severity_numbers(frame["level"].astype("string"))
    with EsStub() as server:
        load_events(server.url, "rt", frame)
        events = read_all(ElasticsearchConnector(settings(server.url, index="rt"), WINDOW))
    for column in ROUND_TRIP_COLUMNS:
        expected = frame[column].astype(object).where(frame[column].notna(), None).tolist()
        got = events[column].astype(object).where(events[column].notna(), None).tolist()
        assert got == expected, column
    assert events["format"].tolist() == ["access.elasticsearch"] + ["elasticsearch"] * 4


# -- live cluster (opt-in) ----------------------------------------------------------------------------
@pytest.mark.skipif(
    not os.environ.get("PMTIMELINE_ES_URL"), reason="set PMTIMELINE_ES_URL to run against a live cluster"
)
class TestLiveCluster:
    """The read and count scenarios against PMTIMELINE_ES_URL, on a throwaway index."""

    @pytest.fixture
    def live_index(self) -> Iterator[str]:
        from elasticsearch import Elasticsearch

        s = EsSettings.from_env()
        options: dict[str, Any] = {"verify_certs": s.verify_certs}
        if s.ca_file:
            options["ca_certs"] = s.ca_file
        if s.api_key:
            options["api_key"] = s.api_key
        elif s.username is not None:
            options["basic_auth"] = (s.username, s.password or "")
        elif s.bearer:
            options["bearer_auth"] = s.bearer
        index = f"pmtimeline-test-{uuid.uuid4().hex[:8]}"
        es = Elasticsearch(s.url, **options)
        try:
            es.indices.create(index=index, mappings=ECS_MAPPINGS)
            docs = [(doc_id, src) for doc_id, src in corpus() if isinstance(src, dict)]
            from elasticsearch import helpers

            helpers.bulk(es, ({"_index": index, "_id": i, "_source": src} for i, src in docs), refresh="wait_for")
            yield index
        finally:
            es.indices.delete(index=index, ignore_unavailable=True)
            es.close()

    def test_read_pages_the_window(self, live_index: str) -> None:
        connector = ElasticsearchConnector(EsSettings.from_env(index=live_index, page_size=2, mode="documents"), WINDOW)
        events = read_all(connector)
        # documents sharing a timestamp may come in another (shard) order than in the stub
        assert sorted(ids_of(events)) == sorted(in_window_ids())
        assert events["timestamp"].is_monotonic_increasing
        assert not connector.accounting()[0].partial

    def test_counts_equal_counts_of_the_documents(self, live_index: str) -> None:
        events = read_all(ElasticsearchConnector(EsSettings.from_env(index=live_index, mode="documents"), WINDOW))
        counts = ElasticsearchConnector(EsSettings.from_env(index=live_index, page_size=3), WINDOW).counts("1min")
        expected = expected_counts(events, "1min")
        pd.testing.assert_frame_equal(counts.astype({"service": object}), expected, check_dtype=False)

    def test_pushdown_pulls_only_notable_documents(self, live_index: str) -> None:
        connector = ElasticsearchConnector(
            EsSettings.from_env(index=live_index, mode="pushdown", sample_size=0), WINDOW
        )
        events = read_all(connector)
        assert set(ids_of(events)) >= {"deploy", "alert-1", "alert-2", "warn"}


def test_events_to_documents_writes_ecs() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": [BASE],
            "message": ["GET /"],
            "http_status": pd.array([502], dtype="Int64"),
            "format": ["access_combined"],
            "kind": ["request"],
            "duration_ms": [1.5],
        }
    )
    (doc,) = events_to_documents(frame)
    assert doc["http"]["response"]["status_code"] == 502
    assert doc["event"] == {"dataset": "access_combined", "duration": 1_500_000, "kind": "event"}


def test_settings_need_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMTIMELINE_ES_URL", raising=False)
    monkeypatch.delenv("PMTIMELINE_ES_CLOUD_ID", raising=False)
    with pytest.raises(ConfigError, match="needs a URL"):
        EsSettings.from_env()
    with pytest.raises(ConfigError, match="mode"):
        EsSettings(url="http://x:9200", mode="fast")


# -- the sample incident through a cluster ----------------------------------------------------------


def _comparable(incident: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on where the events came from: phases, impact, causes (not provenance)."""
    metrics = {k: v for k, v in incident["metrics"].items() if k != "latency_ms"}
    causes = [(c["kind"], c["service"], c["time"]) for c in incident["root_cause_candidates"]]
    return {"phases": incident["phases"], "metrics": metrics, "causes": causes, "signal": incident["anomaly_signal"]}


@pytest.mark.parametrize("mode", ["documents", "pushdown"])
def test_sample_incident_through_bulk_equals_the_files(mode: str) -> None:
    from conftest import SAMPLE_LOGS

    import pmtimeline

    truth = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
    zones = dict(truth["source_tz"])
    from_files = pmtimeline.load(str(SAMPLE_LOGS), source_tz=zones, redact=False)
    with EsStub(emulate_major=9) as server:
        loaded = load_events(server.url, "logs-sample", from_files.events)
        assert loaded == len(from_files.events)
        connector = ElasticsearchConnector(
            settings(server.url, index="logs-sample", page_size=500, mode=mode, pushdown_threshold=0),
            TimelineConfig(),
        )
        from_cluster = pmtimeline.load(connector, redact=False)
    # A page lost (e.g. a search that never answered in time) marks the source partial, with the reason.
    (acc,) = connector.accounting()
    assert not acc.partial, acc.partial_reason
    assert acc.events > 0
    files = _comparable(from_files.incident.to_dict())
    cluster = _comparable(from_cluster.incident.to_dict())
    assert cluster["phases"] == files["phases"]
    assert cluster["phases"]["onset"] == truth["phases"]["onset"]
    assert cluster["causes"][0] == files["causes"][0]
    if mode == "documents":
        assert cluster == files
    else:
        # push-down counts every document in the cluster; the request and user counts come out the same
        for key in ("requests_total", "requests_failed", "affected_users", "error_rate_peak"):
            assert cluster["metrics"][key] == files["metrics"][key], key


def test_ecs_logger_goes_to_the_logger_column_not_the_service() -> None:
    source = {
        "@timestamp": "2024-03-01T10:00:05Z",
        "message": "pool exhausted",
        "log": {"level": "ERROR", "logger": "com.zaxxer.hikari.pool.HikariPool"},
        "service": {"name": "ledger-service"},
    }
    with EsStub() as server:
        server.add_documents("ecs", [source], ids=["e1"])
        events = read_all(ElasticsearchConnector(settings(server.url, index="ecs"), WINDOW))
    row = events.iloc[0]
    assert (row["service"], row["level"]) == ("ledger-service", "error")
    assert row["logger"] == "com.zaxxer.hikari.pool.HikariPool"
    assert "log.logger" not in json.loads(row["fields"])
