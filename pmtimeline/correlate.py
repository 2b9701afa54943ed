"""Correlation: events that share a trace id or request id, across sources and services.

An event's *correlation id* is its ``trace_id``, else its ``request_id``. :func:`link_requests`
lists every correlation id carried by two or more events; :func:`follow` returns the events of one
request across services, in time order (including events that carry the request id of an event of
the trace, one hop, so that a proxy logging only ``X-Request-ID`` joins a traced request).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.schema import ERROR_LEVELS, STRING, TIMESTAMP
from pmtimeline.templates import arrow_text

LINK_DTYPES: Final[dict[str, object]] = {
    "correlation_id": STRING,
    "n_events": "int64",
    "n_sources": "int64",
    "services": "object",  # tuple of services in order of first appearance
    "first": TIMESTAMP,
    "last": TIMESTAMP,
    "error": "bool",
}


def correlation_ids(events: pd.DataFrame) -> pd.Series:
    """Each event's correlation id: its trace id, else its request id (null when it has neither)."""
    trace, request = (arrow_text(events[column]) for column in ("trace_id", "request_id"))
    # Connectors leave absent ids null; an empty id is absent too. (Arrow kernels: a third of the
    # time of the same steps on pandas Series, once per chunk.)
    has_trace, has_request = (pc.fill_null(pc.not_equal(ids, ""), False) for ids in (trace, request))
    absent = pa.nulls(len(trace), type=trace.type)
    ids = pc.if_else(has_trace, trace, pc.if_else(has_request, request.cast(trace.type), absent))
    return pd.Series(pd.array(ids, dtype=STRING), index=events.index, name="correlation_id")


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in LINK_DTYPES.items()})  # type: ignore[call-overload]


def link_requests(events: pd.DataFrame) -> pd.DataFrame:
    """One row per correlation id carried by at least two events (see :data:`LINK_DTYPES`).

    ``error`` is True when any of its events is an error (level error or worse, or HTTP 5xx).
    Rows are ordered by ``first``.
    """
    if events.empty:
        return _empty_links()
    ids = correlation_ids(events)
    has = ids.notna().to_numpy(dtype=bool)
    if not has.any():
        return _empty_links()
    sub = events.loc[has, ["timestamp", "source", "service", "level", "http_status"]].assign(
        correlation_id=ids[has].to_numpy()
    )
    sub = sub.sort_values(["correlation_id", "timestamp"], kind="stable")
    sub["is_error"] = sub["level"].isin(list(ERROR_LEVELS)).to_numpy(dtype=bool, na_value=False) | (
        sub["http_status"] >= 500
    ).to_numpy(dtype=bool, na_value=False)
    grouped = sub.groupby("correlation_id", sort=False)
    table = grouped.agg(
        n_events=("timestamp", "size"),
        n_sources=("source", "nunique"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
        error=("is_error", "any"),
    )
    table = table.loc[table["n_events"] >= 2]
    if table.empty:
        return _empty_links()
    shared = grouped["timestamp"].transform("size").to_numpy(dtype="int64") >= 2
    firsts = sub.loc[shared].dropna(subset=["service"])
    firsts = firsts.drop_duplicates(["correlation_id", "service"])
    services = firsts.groupby("correlation_id", sort=False)["service"].agg(list)
    as_tuples = pd.Series([tuple(v) for v in services.astype(object)], index=services.index, dtype=object)
    table["services"] = as_tuples.reindex(table.index)
    out = table.reset_index().sort_values(["first", "correlation_id"], kind="stable").reset_index(drop=True)
    out = out.loc[:, list(LINK_DTYPES)]
    return out.astype({k: v for k, v in LINK_DTYPES.items() if k != "services"})  # type: ignore[misc]


def follow(events: pd.DataFrame, correlation_id: str) -> pd.DataFrame:
    """The events of one request across services, time-ordered (see the module docstring)."""
    trace = events["trace_id"] == correlation_id
    request = events["request_id"] == correlation_id
    direct = (trace | request).to_numpy(dtype=bool, na_value=False)
    linked_requests = events.loc[direct, "request_id"].dropna().unique()
    linked_traces = events.loc[direct, "trace_id"].dropna().unique()
    hop = events["request_id"].isin(linked_requests).to_numpy(dtype=bool, na_value=False) | events["trace_id"].isin(
        linked_traces
    ).to_numpy(dtype=bool, na_value=False)
    rows = events.loc[direct | hop]
    order = np.lexsort((rows["line"].fillna(0).to_numpy(dtype="int64"), rows["timestamp"].array.asi8))
    return rows.iloc[order].reset_index(drop=True)
