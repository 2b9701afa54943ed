"""Correlation of events across services by trace id and request id."""

from __future__ import annotations

import pandas as pd
from synthetic_incidents import make_events

from pmtimeline.correlate import correlation_ids, follow, link_requests


def frame() -> pd.DataFrame:
    return make_events(
        [
            {"time": "2024-03-05T08:00:00.100Z", "source": "edge.log", "service": "edge", "request_id": "r1"},
            {
                "time": "2024-03-05T08:00:00.200Z",
                "source": "pay.log",
                "service": "payments",
                "trace_id": "t1",
                "request_id": "r1",
            },
            {
                "time": "2024-03-05T08:00:00.300Z",
                "source": "db.log",
                "service": "db",
                "trace_id": "t1",
                "level": "error",
                "message": "deadlock",
            },
            {
                "time": "2024-03-05T08:00:00.400Z",
                "source": "edge.log",
                "service": "edge",
                "request_id": "r1",
                "kind": "request",
                "http_status": 502,
            },
            {"time": "2024-03-05T08:00:01Z", "source": "pay.log", "service": "payments", "trace_id": "t2"},
            {"time": "2024-03-05T08:00:02Z", "source": "pay.log", "service": "payments", "trace_id": "t2"},
            {"time": "2024-03-05T08:00:03Z", "source": "pay.log", "service": "payments", "trace_id": "t3"},
            {"time": "2024-03-05T08:00:04Z", "source": "pay.log", "service": "payments", "trace_id": ""},
            {"time": "2024-03-05T08:00:05Z", "source": "pay.log", "service": "payments", "trace_id": ""},
        ]
    )


def test_correlation_id_prefers_the_trace() -> None:
    ids = correlation_ids(frame())
    assert ids.iloc[:4].tolist() == ["r1", "t1", "t1", "r1"]
    assert pd.isna(ids.iloc[7])


def test_link_requests_lists_ids_shared_by_several_events() -> None:
    links = link_requests(frame())
    assert links["correlation_id"].tolist() == ["r1", "t1", "t2"]
    r1 = links.iloc[0]
    assert (r1["n_events"], r1["n_sources"], r1["services"], bool(r1["error"])) == (2, 1, ("edge",), True)
    t1 = links.iloc[1]
    assert t1["services"] == ("payments", "db")
    assert bool(t1["error"])
    assert not bool(links.iloc[2]["error"])
    assert links.iloc[2]["last"] - links.iloc[2]["first"] == pd.Timedelta(seconds=1)


def test_follow_one_request_across_services_in_time_order() -> None:
    trail = follow(frame(), "t1")
    # The payments event carries both ids, so the edge events of r1 join the trace.
    assert trail["service"].tolist() == ["edge", "payments", "db", "edge"]
    assert trail["timestamp"].is_monotonic_increasing
    assert follow(frame(), "nope").empty


def test_no_ids_no_links() -> None:
    events = frame().assign(trace_id=pd.NA, request_id=pd.NA)
    assert link_requests(events).empty
    assert link_requests(events.iloc[:0]).empty
