"""Alert intervals: the firing episodes of each alert, from the alert events of any source.

The incident analysis reads detection and resolution from these intervals. Each row is one alert
identity (``alert_id``) and one firing episode:

===================  =====================  ========================================================================
column               dtype                  meaning
===================  =====================  ========================================================================
alert_id             string                 the alert's stable identity (fingerprint, incident id, labels)
alert_name           string                 the alert or incident name
service              string                 the service it is about, where known
severity             string                 the most severe level seen during the episode (schema levels)
fired                datetime64[ns, UTC]    first firing event of the episode; NaT when only its
                                            acknowledgement or resolution was captured
acknowledged         datetime64[ns, UTC]    first acknowledgement in the episode, or NaT
resolved             datetime64[ns, UTC]    first resolution in the episode, or NaT while still open
source               string                 source of the firing event (else of the first event)
line                 Int64                  line of that event in its source
summary              string                 the one-line summary of that event, without its state tag
fired_source         string                 source of the event that set ``fired``, or NA
fired_line           Int64                  its line (where its payload or record starts), or NA
acknowledged_source  string                 source of the event that set ``acknowledged``, or NA
acknowledged_line    Int64                  its line, or NA
resolved_source      string                 source of the event that set ``resolved``, or NA
resolved_line        Int64                  its line, or NA
===================  =====================  ========================================================================

Each state change is cited where it was reported: the acknowledgement of a PagerDuty incident cites
the delivery that acknowledged it, the resolution of an Alertmanager alert the notification that
resolved it, never the line where the alert fired. A record that spans several lines (an element of
a pretty-printed JSON array) is cited at the line where it starts, as a multi-line log event is.

An episode starts at the first event of an alert and at every firing event that follows a
resolution (a re-fire); acknowledgements and repeated firing or resolved notifications belong to
the episode they fall in. Events without a state (notes, priority changes without a status) do not
shape episodes. Ties at the same instant are ordered firing, acknowledged, resolved.
"""

from __future__ import annotations

import json
from typing import Final

import pandas as pd

from pmtimeline.schema import SEVERITY_NUMBER, STRING, TIMESTAMP

#: Columns of the intervals frame, in order, with their dtypes.
INTERVAL_DTYPES: Final[dict[str, object]] = {
    "alert_id": STRING,
    "alert_name": STRING,
    "service": STRING,
    "severity": STRING,
    "fired": TIMESTAMP,
    "acknowledged": TIMESTAMP,
    "resolved": TIMESTAMP,
    "source": STRING,
    "line": "Int64",
    "summary": STRING,
    "fired_source": STRING,
    "fired_line": "Int64",
    "acknowledged_source": STRING,
    "acknowledged_line": "Int64",
    "resolved_source": STRING,
    "resolved_line": "Int64",
}
INTERVAL_COLUMNS: Final[tuple[str, ...]] = tuple(INTERVAL_DTYPES)

_STATE_RANK: Final = {"firing": 0, "acknowledged": 1, "resolved": 2}
#: The interval column of the time each alert state sets.
STATE_COLUMN: Final = {"firing": "fired", "acknowledged": "acknowledged", "resolved": "resolved"}
_STATE_TAG_RE: Final = r"^\[[A-Z_ ]+\]\s*"


def empty_intervals() -> pd.DataFrame:
    """An intervals frame without rows."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in INTERVAL_DTYPES.items()})  # type: ignore[call-overload]


def _summary_of(fields: object) -> str | None:
    if not isinstance(fields, str) or '"summary"' not in fields:
        return None
    try:
        value = json.loads(fields).get("summary")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _summaries(head: pd.DataFrame) -> pd.Series:
    """The ``summary`` of each representative event's fields, else its message without the state tag.

    One JSON parse per episode (not per event): episodes are few.
    """
    from_fields = head["fields"].map(_summary_of).astype(STRING) if "fields" in head else None
    from_message = head["message"].astype(STRING).str.replace(_STATE_TAG_RE, "", regex=True)
    return from_message if from_fields is None else from_fields.fillna(from_message)


def alert_intervals(events: pd.DataFrame) -> pd.DataFrame:
    """One row per alert identity and firing episode, from the alert events (``kind == "alert"``).

    Args:
        events: an event frame (see :mod:`pmtimeline.schema`) of any sources; non-alert events and
            alert events without a state are ignored; an alert without ``alert_id`` is identified
            by its name (``name:<alert_name>``), and one without either is ignored.

    Returns:
        The intervals frame described in the module docstring, ordered by when each episode began.
    """
    needed = {"timestamp", "kind", "alert_id", "alert_state"}
    if events.empty or not needed <= set(events.columns):
        return empty_intervals()
    mask = (events["kind"] == "alert") & events["alert_state"].isin(list(_STATE_RANK))
    alerts = events.loc[mask.fillna(False).astype(bool)].copy()
    for column in ("alert_name", "service", "level", "source", "line", "message"):
        if column not in alerts.columns:
            alerts[column] = pd.NA
    # Sources without an identity (an alert index searched in Elasticsearch) pair by name.
    alerts["alert_id"] = alerts["alert_id"].astype(STRING).fillna("name:" + alerts["alert_name"].astype(STRING))
    alerts = alerts.loc[alerts["alert_id"].notna()]
    if alerts.empty:
        return empty_intervals()
    alerts["rank"] = alerts["alert_state"].map(_STATE_RANK).astype("int64")
    alerts = alerts.sort_values(["alert_id", "timestamp", "rank"], kind="stable").reset_index(drop=True)

    # A re-fire is a firing event after a resolution of the same alert: the last firing-or-resolved
    # state before each row (acknowledgements do not count) decides.
    boundary_state = alerts["alert_state"].where(alerts["alert_state"] != "acknowledged")
    previous = boundary_state.groupby(alerts["alert_id"]).shift().groupby(alerts["alert_id"]).ffill()
    first_of_alert = ~alerts["alert_id"].duplicated()
    refire = (alerts["alert_state"] == "firing") & (previous == "resolved")
    alerts["episode"] = (first_of_alert | refire.fillna(False)).astype("int64").cumsum()

    grouped = alerts.groupby("episode", sort=False)
    times = {
        column: alerts["timestamp"].where(alerts["alert_state"] == state).groupby(alerts["episode"]).min()
        for state, column in STATE_COLUMN.items()
    }
    # The event that set each state's time: rows are in time order (then state rank) within an
    # alert, so the first row of each (episode, state) is the earliest, the one that time comes from.
    setters = alerts.drop_duplicates(["episode", "alert_state"]).set_index("episode")
    cited: dict[str, pd.Series] = {}
    for state, column in STATE_COLUMN.items():
        of_state = setters.loc[setters["alert_state"] == state]
        cited[f"{column}_source"] = of_state["source"]
        cited[f"{column}_line"] = of_state["line"]
    # The row that represents the episode: its first firing event, else its first event.
    representative = alerts.assign(is_firing=alerts["alert_state"] != "firing").sort_values(
        ["episode", "is_firing", "timestamp"], kind="stable"
    )
    head = representative.drop_duplicates("episode").set_index("episode")
    firsts = grouped[["alert_name", "service"]].first()  # first non-null per episode
    leveled = alerts.assign(number=alerts["level"].map(SEVERITY_NUMBER)).dropna(subset=["number"])
    worst = leveled.sort_values(["episode", "number"], ascending=[True, False]).drop_duplicates("episode")
    severity = worst.set_index("episode")["level"].reindex(head.index)

    out = pd.DataFrame(
        {
            "alert_id": head["alert_id"],
            "alert_name": head["alert_name"].fillna(firsts["alert_name"]),
            "service": head["service"].fillna(firsts["service"]),
            "severity": severity,
            "fired": times["fired"].reindex(head.index),
            "acknowledged": times["acknowledged"].reindex(head.index),
            "resolved": times["resolved"].reindex(head.index),
            "source": head["source"],
            "line": head["line"],
            "summary": _summaries(head),
            **{name: values.reindex(head.index) for name, values in cited.items()},
        }
    )
    begin = out["fired"].fillna(grouped["timestamp"].min().reindex(head.index))
    out = out.assign(_begin=begin).sort_values(["_begin", "alert_id"], kind="stable").drop(columns="_begin")
    return out.reset_index(drop=True).astype(INTERVAL_DTYPES)  # type: ignore[arg-type]
