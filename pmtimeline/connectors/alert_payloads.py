"""Readers of the payloads that alerting and incident tools send: one small function per tool.

Each reader takes one decoded JSON payload (a dict; a CSV row is turned into one) and returns the
alert state changes it holds as :class:`AlertEvent` records, or raises :class:`PayloadRejectedError` with a
reason key (``unknown_payload``, ``no_timestamp``, ``not_an_alert``) when it holds none. The
connector (:mod:`pmtimeline.connectors.alerts`) turns the records into event frames.

Alert files are small (one webhook delivery is a few KiB, an export a few thousand alerts), so these
readers work per payload in plain Python; the log hot path (millions of lines) stays vectorized in
the log connectors.

Time traps handled here (see ``reference/formats.md`` section 2):

* RFC 3339 with up to 9 fractional digits and any offset (``pandas.Timestamp`` keeps nanoseconds);
* Alertmanager's ``endsAt`` of ``0001-01-01T00:00:00Z`` (Go zero time) means "not ended", never a time;
* epoch numbers in seconds, milliseconds, microseconds or nanoseconds, as numbers or strings (Opsgenie
  sends ``createdAt`` in ms and ``updatedAt`` in ns; Datadog sends ``$DATE`` in ms as a string): the
  unit follows from the magnitude, which is unambiguous for any date between 1973 and 5138.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from pmtimeline.schema import LEVEL_ALIASES

#: Alert states of the schema, in the order an episode goes through them.
FIRING: Final = "firing"
ACKNOWLEDGED: Final = "acknowledged"
RESOLVED: Final = "resolved"

#: Longest summary kept in an event's one-line message.
SUMMARY_LIMIT: Final = 300


class PayloadRejectedError(Exception):
    """A payload holds no usable alert event; ``reason`` is the accounting key, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class AlertEvent:
    """One alert state change read from a payload (the connector adds source, line and format)."""

    timestamp: pd.Timestamp
    ts_raw: str
    alert_id: str
    alert_name: str | None
    alert_state: str | None  # firing | acknowledged | resolved, or None for annotations (notes, escalations)
    level: str | None
    service: str | None = None
    host: str | None = None
    summary: str | None = None
    tz_assumed: str | None = None
    #: What made this a separate notification (PagerDuty/Opsgenie event type); part of the dedup key, so a
    #: priority change at the same instant as the trigger is not mistaken for a resend of it.
    transition: str = ""
    #: Tag of the one-line message when it is not the state (``PRIORITY_UPDATED``, ``ADDNOTE``).
    label: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    #: Alert states of the payload that had no usable time (kept for the accounting notes).
    untimed: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Values: severities, states, times
# --------------------------------------------------------------------------------------------------

#: Alert severities and priorities (lower-cased) beyond the log level aliases of the schema.
ALERT_SEVERITY_ALIASES: Final[Mapping[str, str]] = {
    **LEVEL_ALIASES,
    "page": "critical",
    "disaster": "critical",
    "sev1": "critical",
    "sev-1": "critical",
    "s1": "critical",
    "p1": "critical",
    "high": "error",
    "major": "error",
    "sev2": "error",
    "sev-2": "error",
    "s2": "error",
    "p2": "error",
    "average": "warning",
    "medium": "warning",
    "moderate": "warning",
    "minor": "warning",
    "sev3": "warning",
    "sev-3": "warning",
    "s3": "warning",
    "p3": "warning",
    "low": "info",
    "informational": "info",
    "none": "info",
    "ok": "info",
    "success": "info",
    "sev4": "info",
    "s4": "info",
    "p4": "info",
    "p5": "info",
}


def normalize_severity(raw: object) -> str | None:
    """The schema level of an alert severity or priority (``major`` -> ``error``, ``P1`` -> ``critical``)."""
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    token = str(raw).strip().strip("[]").lower()
    return ALERT_SEVERITY_ALIASES.get(token)


#: Status words of alert exports and tools, and the schema state each means.
STATE_ALIASES: Final[Mapping[str, str]] = {
    "firing": FIRING,
    "alerting": FIRING,
    "alert": FIRING,
    "triggered": FIRING,
    "trigger": FIRING,
    "open": FIRING,
    "opened": FIRING,
    "active": FIRING,
    "fired": FIRING,
    "problem": FIRING,
    "raised": FIRING,
    "reopened": FIRING,
    "unacknowledged": FIRING,
    "acknowledged": ACKNOWLEDGED,
    "acked": ACKNOWLEDGED,
    "ack": ACKNOWLEDGED,
    "resolved": RESOLVED,
    "resolve": RESOLVED,
    "recovered": RESOLVED,
    "ok": RESOLVED,
    "closed": RESOLVED,
    "close": RESOLVED,
    "normal": RESOLVED,
    "inactive": RESOLVED,
    "cleared": RESOLVED,
    "clear": RESOLVED,
}


def normalize_state(raw: object) -> str | None:
    """The schema alert state of a status word (``alerting`` -> ``firing``, ``OK`` -> ``resolved``)."""
    if not isinstance(raw, str):
        return None
    return STATE_ALIASES.get(raw.strip().lower())


#: Go's zero time, which Alertmanager and Grafana write as ``endsAt`` of an alert that has not ended.
GO_ZERO_TIME_PREFIX: Final = "0001-01-01"
_NUMERIC_RE: Final = re.compile(r"^\s*[+-]?\d+(\.\d+)?\s*$")


def epoch_to_timestamp(value: float | int | str) -> pd.Timestamp | None:
    """A UTC time from an epoch number in s, ms, us or ns (the unit follows from the magnitude)."""
    number = float(value) if isinstance(value, str) else value
    magnitude = abs(number)
    if magnitude < 1e11:  # seconds up to year 5138
        unit = "s"
    elif magnitude < 1e14:  # milliseconds (1973 onward)
        unit = "ms"
    elif magnitude < 1e17:
        unit = "us"
    else:
        unit = "ns"
    try:
        if isinstance(value, str) and "." not in value:
            ts = pd.Timestamp(int(value), unit=unit, tz="UTC")  # int keeps the ns digits exact
        else:
            ts = pd.Timestamp(number, unit=unit, tz="UTC")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None
    # 99999999999999 ms is the year 5138: a Timestamp, but none the event table (ns) can hold
    return _in_ns_range(ts)


def parse_alert_time(value: object, tz: str = "UTC") -> tuple[pd.Timestamp, str, str | None] | None:
    """Parse an alert time: RFC 3339 / ISO 8601 text or an epoch number (also as a string).

    Returns ``(utc_timestamp, text_used, zone_assumed)`` or None when the value is not a usable time
    (missing, empty, Go zero time, an unsubstituted template variable such as ``$DATE``). A naive
    time is read in ``tz`` and the zone is returned as assumed.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        ts = epoch_to_timestamp(value)
        return (ts, str(value), None) if ts is not None else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text.startswith(GO_ZERO_TIME_PREFIX):
        return None
    if _NUMERIC_RE.match(text):
        ts = epoch_to_timestamp(text)
        return (ts, text, None) if ts is not None else None
    try:
        # typed as object: pandas returns NaT (not a Timestamp) for some inputs
        parsed: object = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return None
    if not isinstance(parsed, pd.Timestamp):
        return None
    if parsed.tzinfo is None:
        try:
            localized: object = parsed.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except (ValueError, TypeError):
            return None
        if not isinstance(localized, pd.Timestamp):
            return None
        utc, assumed = _in_ns_range(localized), tz
    else:
        utc, assumed = _in_ns_range(parsed), None
    return (utc, text, assumed) if utc is not None else None


def _in_ns_range(ts: pd.Timestamp) -> pd.Timestamp | None:
    """``ts`` in UTC with nanosecond resolution, or None outside 1677-2262 (pandas parses
    ``9999-12-31`` at a coarser unit, which the event table cannot hold)."""
    try:
        return ts.tz_convert("UTC").as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        return None


def stable_id(prefix: str, parts: Mapping[str, object]) -> str:
    """A stable identity from key/value parts (sorted), for alerts without a fingerprint or id."""
    canonical = json.dumps({k: str(v) for k, v in parts.items()}, sort_keys=True, ensure_ascii=False)
    return f"{prefix}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _text(value: object) -> str | None:
    """A non-empty stripped string, or None."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _first(mapping: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        found = _text(mapping.get(key))
        if found:
            return found
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _summary_line(text: str | None) -> str | None:
    """One line: the first non-empty line, whitespace collapsed (alert bodies are often Markdown)."""
    if not text:
        return None
    for line in text.replace("%%%", "\n").splitlines():
        cleaned = " ".join(line.split()).strip("*# ")
        if cleaned:
            return cleaned[:SUMMARY_LIMIT]
    return None


# --------------------------------------------------------------------------------------------------
# Prometheus Alertmanager and Grafana Alerting
# --------------------------------------------------------------------------------------------------

#: Labels that name the service an alert is about, in three tiers, best first (docs/alerts.md):
#: the application's own name, the Kubernetes workload, then what only hints at it (a pod's
#: workload, its container). ``job`` (the scrape job) and ``app_kubernetes_io_name`` come late
#: because on an alert of an exporter such as kube-state-metrics they name the exporter.
DIRECT_SERVICE_LABELS: Final = ("service", "service_name", "app", "application", "k8s_app", "exported_service")
WORKLOAD_LABELS: Final = ("deployment", "statefulset", "daemonset", "cronjob", "job_name")
HINT_SERVICE_LABELS: Final = ("pod", "container", "app_kubernetes_io_name", "job", "exported_job", "namespace")
SERVICE_LABELS: Final = DIRECT_SERVICE_LABELS + WORKLOAD_LABELS + HINT_SERVICE_LABELS
HOST_LABELS: Final = ("host", "hostname", "nodename", "node", "instance")
SUMMARY_KEYS: Final = ("summary", "description", "message")

# The generated suffixes of a pod's name: a Deployment's pod template hash and pod id
# (``payments-api-7d9f8b6c4-x2x9z``), a DaemonSet's or Job's pod id (``fluent-bit-x2x9z``), a
# StatefulSet's ordinal (``postgres-0``). Kubernetes writes the random parts in an alphabet without
# vowels (and without 0, 1, 3), so a name's own last word (``my-app-nginx``) is never taken for one.
_K8S_RANDOM: Final = "[bcdfghjklmnpqrstvwxz2456789]"
_POD_SUFFIX_RE: Final = re.compile(rf"(?:-{_K8S_RANDOM}{{6,10}})?-{_K8S_RANDOM}{{5}}$|-\d+$")


def workload_of_pod(pod: str) -> str:
    """The workload a pod belongs to, from its generated name: ``payments-api-7d9f8b6c4-x2x9z`` ->
    ``payments-api``; a name without such a suffix is returned as it is."""
    base = _POD_SUFFIX_RE.sub("", pod)
    return base or pod


def _label_service(labels: Mapping[str, Any]) -> str | None:
    found = _first(labels, DIRECT_SERVICE_LABELS) or _first(labels, WORKLOAD_LABELS)
    if found:
        return found
    for key in HINT_SERVICE_LABELS:
        value = _text(labels.get(key))
        if value:
            return workload_of_pod(value) if key == "pod" else value
    return None


def read_alertmanager(payload: Mapping[str, Any], tz: str = "UTC") -> list[AlertEvent]:
    """Alertmanager (``version`` "4") and Grafana (``version`` "1") webhook payloads.

    A firing alert gives a firing event at ``startsAt``. A resolved alert gives a firing event at
    ``startsAt`` and a resolved event at ``endsAt``, so a capture of only the resolved notification
    still places the alert; when the firing notification was captured too, its copy is dropped as a
    duplicate. A resolved alert whose ``endsAt`` is the Go zero time has no resolution time: only its
    firing event is kept and the missing time is reported.
    """
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadRejectedError("unknown_payload", "webhook payload without an alerts[] list")
    group_status = payload.get("status")
    common = {k: payload[k] for k in ("receiver", "groupKey", "version", "externalURL", "orgId") if k in payload}
    events: list[AlertEvent] = []
    untimed: list[str] = []
    for alert in alerts:
        if not isinstance(alert, dict):
            untimed.append("unknown")
            continue
        labels = {str(k): v for k, v in _dict(alert.get("labels")).items()}
        annotations = {str(k): v for k, v in _dict(alert.get("annotations")).items()}
        alert_id = _text(alert.get("fingerprint")) or stable_id("labels", labels)
        name = _text(labels.get("alertname"))
        status = normalize_state(alert.get("status")) or normalize_state(group_status) or FIRING
        summary = _first(annotations, SUMMARY_KEYS) or _first(labels, SUMMARY_KEYS)
        rest_labels = {
            k: v
            for k, v in labels.items()
            if k not in ("alertname", "severity") and not (k == "summary" and v == summary)
        }
        extra = {
            k: v
            for k, v in alert.items()
            if k not in ("status", "labels", "annotations", "startsAt", "endsAt", "fingerprint")
        }
        fields: dict[str, Any] = {
            **common,
            "labels": rest_labels,
            "annotations": annotations,
            **extra,
            "startsAt": alert.get("startsAt"),
            "endsAt": alert.get("endsAt"),
        }
        base: dict[str, Any] = {
            "alert_id": alert_id,
            "alert_name": name,
            "level": normalize_severity(labels.get("severity")),
            "service": _label_service(labels),
            "host": _first(labels, HOST_LABELS),
            "summary": summary,
            "fields": fields,
        }
        started = parse_alert_time(alert.get("startsAt"), tz)
        if started is not None:
            events.append(AlertEvent(timestamp=started[0], ts_raw=started[1], alert_state=FIRING, **base))
        else:
            untimed.append(FIRING)
        if status == RESOLVED:
            ended = parse_alert_time(alert.get("endsAt"), tz)
            if ended is not None:
                events.append(AlertEvent(timestamp=ended[0], ts_raw=ended[1], alert_state=RESOLVED, **base))
            else:
                untimed.append(RESOLVED)
    if events:
        events[0].untimed = untimed
        return events
    raise PayloadRejectedError("no_timestamp", f"{len(alerts)} alert(s) without a usable startsAt/endsAt")


# --------------------------------------------------------------------------------------------------
# PagerDuty webhooks v3
# --------------------------------------------------------------------------------------------------

PAGERDUTY_EVENT_STATES: Final[Mapping[str, str]] = {
    "incident.triggered": FIRING,
    "incident.reopened": FIRING,
    "incident.unacknowledged": FIRING,
    "incident.acknowledged": ACKNOWLEDGED,
    "incident.resolved": RESOLVED,
}
PAGERDUTY_STATUS_STATES: Final[Mapping[str, str]] = {
    "triggered": FIRING,
    "acknowledged": ACKNOWLEDGED,
    "resolved": RESOLVED,
}
_PAGERDUTY_DATA_TYPES: Final = frozenset({"incident", "incident_note", "incident_status_update", "incident_responder"})


def read_pagerduty(payload: Mapping[str, Any], tz: str = "UTC") -> list[AlertEvent]:
    """PagerDuty v3 webhook deliveries (``{"event": {...}}``).

    The state is that of the event type (triggered/reopened/unacknowledged -> firing, acknowledged,
    resolved); other incident events (priority_updated, escalated, reassigned ...) keep the
    incident's current ``status`` as their state; notes and status updates, whose data carries no
    status, are alert events without a state (annotations on the timeline).
    """
    event = payload.get("event")
    if not isinstance(event, dict):
        kind = payload.get("type")
        if kind in _PAGERDUTY_DATA_TYPES:
            raise PayloadRejectedError(
                "no_timestamp", f"PagerDuty {kind} data without the webhook envelope (no event.occurred_at)"
            )
        raise PayloadRejectedError("unknown_payload", "PagerDuty payload without an event object")
    event_type = _text(event.get("event_type")) or ""
    data = _dict(event.get("data"))
    data_type = _text(data.get("type")) or _text(event.get("resource_type")) or ""
    if not event_type.startswith("incident.") and data_type not in _PAGERDUTY_DATA_TYPES:
        raise PayloadRejectedError("not_an_alert", f"PagerDuty {event_type or 'event'} is not about an incident")
    when = parse_alert_time(event.get("occurred_at"), tz)
    if when is None:
        raise PayloadRejectedError("no_timestamp", f"PagerDuty {event_type} without a usable occurred_at")
    if data_type == "incident":
        incident = data
        status = _text(data.get("status"))
    else:
        incident = _dict(data.get("incident"))
        status = None
    incident_id = _text(incident.get("id"))
    if not incident_id:
        raise PayloadRejectedError("unknown_payload", f"PagerDuty {event_type} without an incident id")
    state = PAGERDUTY_EVENT_STATES.get(event_type) or PAGERDUTY_STATUS_STATES.get((status or "").lower())
    priority = _text(_dict(incident.get("priority")).get("summary"))
    level = normalize_severity(priority) or normalize_severity(incident.get("urgency"))
    title = _text(incident.get("title")) or _text(incident.get("summary"))
    summary = _text(data.get("content")) or _text(data.get("message")) or title
    agent = _dict(event.get("agent"))
    fields: dict[str, Any] = {
        "event_type": event_type,
        "event_id": event.get("id"),
        "incident_status": status,
        "incident_number": incident.get("number"),
        "incident_key": incident.get("incident_key"),
        "priority": priority,
        "urgency": incident.get("urgency"),
        "agent": agent.get("summary"),
        "html_url": incident.get("html_url"),
        "assignees": [a.get("summary") for a in incident.get("assignees") or [] if isinstance(a, dict)],
        "teams": [t.get("summary") for t in incident.get("teams") or [] if isinstance(t, dict)],
        "escalation_policy": _dict(incident.get("escalation_policy")).get("summary"),
        "resolve_reason": incident.get("resolve_reason"),
        "created_at": incident.get("created_at"),
        "data_type": data_type,
    }
    return [
        AlertEvent(
            timestamp=when[0],
            ts_raw=when[1],
            alert_id=incident_id,
            alert_name=title,
            alert_state=state,
            level=level,
            service=_text(_dict(incident.get("service")).get("summary")),
            summary=summary,
            transition=event_type,
            label=None if event_type in PAGERDUTY_EVENT_STATES else event_type.rsplit(".", 1)[-1].upper(),
            fields={k: v for k, v in fields.items() if v not in (None, [], "")},
        )
    ]


# --------------------------------------------------------------------------------------------------
# Opsgenie webhook alert actions
# --------------------------------------------------------------------------------------------------

OPSGENIE_ACTION_STATES: Final[Mapping[str, str]] = {
    "create": FIRING,
    "unacknowledge": FIRING,
    "snoozeended": FIRING,
    "acknowledge": ACKNOWLEDGED,
    "close": RESOLVED,
}
#: ``key:value`` tags (Datadog, Opsgenie) and Opsgenie ``details`` keys that name the service, best
#: first: the application's own name, then Datadog's Kubernetes tags, the namespace last.
TAG_SERVICE_KEYS: Final = (
    "service",
    "app",
    "application",
    "component",
    "kube_deployment",
    "kube_statefulset",
    "kube_daemonset",
    "kube_service",
    "kube_app_name",
    "kube_container_name",
    "kube_namespace",
)


def _tag_value(tags: Iterable[str], keys: Iterable[str]) -> str | None:
    """The value of the ``key:value`` tag whose key comes first in ``keys`` (``key=value`` too)."""
    found: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not sep:
            key, sep, value = tag.partition("=")
        key, value = key.strip().lower(), value.strip()
        if sep and value and key not in found:
            found[key] = value
    return next((found[key] for key in keys if key in found), None)


def read_opsgenie(payload: Mapping[str, Any], tz: str = "UTC") -> list[AlertEvent]:
    """Opsgenie webhook alert actions (Create, Acknowledge, UnAcknowledge, Close, AddNote, ...).

    The action time is ``alert.updatedAt`` (nanoseconds in Opsgenie's samples), else ``createdAt``
    (milliseconds). Actions that do not change the state (AddNote, Escalate, ...) are alert events
    without a state.
    """
    alert = payload.get("alert")
    action = _text(payload.get("action"))
    if not isinstance(alert, dict) or not action:
        raise PayloadRejectedError("unknown_payload", "Opsgenie payload without alert and action")
    alert_id = _text(alert.get("alertId")) or _text(alert.get("alias"))
    if not alert_id:
        raise PayloadRejectedError("unknown_payload", "Opsgenie alert without alertId or alias")
    when = parse_alert_time(alert.get("updatedAt"), tz) or parse_alert_time(alert.get("createdAt"), tz)
    if when is None:
        raise PayloadRejectedError("no_timestamp", f"Opsgenie {action} without a usable updatedAt/createdAt")
    tags = [str(t) for t in alert.get("tags") or [] if isinstance(t, str | int)]
    source = _text(alert.get("source"))
    details = {str(k).strip().lower(): v for k, v in _dict(alert.get("details")).items()}
    service = (
        _text(alert.get("entity"))
        or _tag_value(tags, TAG_SERVICE_KEYS)
        or _first(details, TAG_SERVICE_KEYS)
        # a source with "@" is the user who created the alert by hand, not a system
        or (source if source and "@" not in source else None)
    )
    created = parse_alert_time(alert.get("createdAt"), tz)
    rest = {
        k: v
        for k, v in alert.items()
        if k not in ("alertId", "message", "updatedAt", "createdAt", "entity", "priority")
    }
    fields: dict[str, Any] = {
        "action": action,
        "alias": alert.get("alias"),
        "created_at": created[0].isoformat() if created else None,
        **rest,
        "integrationName": payload.get("integrationName"),
        "source_type": _dict(payload.get("source")).get("type"),
    }
    return [
        AlertEvent(
            timestamp=when[0],
            ts_raw=when[1],
            alert_id=alert_id,
            alert_name=_text(alert.get("message")),
            alert_state=OPSGENIE_ACTION_STATES.get(action.lower()),
            level=normalize_severity(alert.get("priority")),
            service=service,
            host=_tag_value(tags, ("host", "hostname")),
            summary=_summary_line(_text(alert.get("description"))) or _text(alert.get("message")),
            transition=action,
            label=None if action.lower() in OPSGENIE_ACTION_STATES else action.upper(),
            fields={k: v for k, v in fields.items() if v not in (None, [], "")},
        )
    ]


# --------------------------------------------------------------------------------------------------
# Datadog monitor webhooks
# --------------------------------------------------------------------------------------------------

DATADOG_TRANSITIONS: Final[Mapping[str, tuple[str, str | None]]] = {
    # transition (lower-case) -> (state, level implied when the payload gives no alert_type/priority)
    "triggered": (FIRING, "error"),
    "re-triggered": (FIRING, "error"),
    "renotify": (FIRING, None),
    "warn": (FIRING, "warning"),
    "re-warn": (FIRING, "warning"),
    "no data": (FIRING, "warning"),
    "re-no data": (FIRING, "warning"),
    "recovered": (RESOLVED, None),
}
_DATADOG_TITLE_RE: Final = re.compile(
    r"^\s*\[(?P<transition>[A-Za-z -]+?)(?: on \{(?P<scope>[^}]*)\})?\]\s*(?P<name>.*)$"
)


def datadog_key(key: str) -> str:
    """Datadog variable names compared in any case and spelling: ``ALERT_ID``, ``alertId`` -> ``alertid``."""
    return re.sub(r"[^a-z0-9]", "", key.lower())


def read_datadog(payload: Mapping[str, Any], tz: str = "UTC") -> list[AlertEvent]:
    """Datadog monitor webhooks: user-written JSON with Datadog's ``$VARIABLES`` substituted.

    The variable names are matched in any case (``alert_transition``, ``ALERT_TRANSITION``,
    ``alertTransition``). Identity: ``alert_cycle_key``, else ``alert_id``, else a hash of the
    monitor title and scope (the title without its ``[Triggered on {scope}]`` prefix).
    """
    values = {datadog_key(str(k)): v for k, v in payload.items()}

    def get(*names: str) -> str | None:
        return _first(values, names)

    title = get("alerttitle", "eventtitle", "title")
    match = _DATADOG_TITLE_RE.match(title or "")
    transition = get("alerttransition") or (match.group("transition") if match else None)
    scope = get("alertscope") or (match.group("scope") if match else None)
    name = get("alerttitle") or (match.group("name").strip() if match else title)
    state: str | None
    implied_level: str | None
    if transition and transition.lower() in DATADOG_TRANSITIONS:
        state, implied_level = DATADOG_TRANSITIONS[transition.lower()]
    else:
        alert_type = (get("alerttype") or "").lower()
        state = RESOLVED if alert_type == "success" else FIRING if alert_type in ("error", "warning") else None
        implied_level = None
    if state is None and not transition:
        raise PayloadRejectedError("unknown_payload", "Datadog payload without alert_transition or alert_type")
    raw_time = values.get("date") if values.get("date") not in (None, "") else values.get("lastupdated")
    when = parse_alert_time(raw_time, tz)
    if when is None:
        if isinstance(raw_time, str) and raw_time.startswith("$"):
            raise PayloadRejectedError("no_timestamp", f"Datadog template with unsubstituted variables ({raw_time})")
        raise PayloadRejectedError("no_timestamp", "Datadog payload without a usable date/last_updated")
    tag_text = get("tags", "eventtags") or ""
    tags = [t.strip() for t in tag_text.split(",") if t.strip()]
    scope_tags = [t.strip() for t in (scope or "").split(",") if t.strip()]
    alert_id = (
        get("alertcyclekey") or get("alertid") or stable_id("datadog", {"name": name or "", "scope": scope or ""})
    )
    level = normalize_severity(get("alerttype")) if state != RESOLVED else None
    level = level or normalize_severity(get("alertpriority", "priority")) or implied_level
    known = {
        "alerttransition",
        "alerttitle",
        "eventtitle",
        "title",
        "date",
        "alertcyclekey",
        "alertid",
        "eventmsg",
        "body",
        "hostname",
        "host",
        "tags",
        "eventtags",
    }
    fields: dict[str, Any] = {
        "transition": transition,
        "scope": scope,
        "title": title,
        "tags": tags,
        **{k: v for k, v in payload.items() if datadog_key(str(k)) not in known},
    }
    return [
        AlertEvent(
            timestamp=when[0],
            ts_raw=when[1],
            alert_id=alert_id,
            alert_name=name,
            alert_state=state,
            level=level,
            service=_tag_value(tags + scope_tags, TAG_SERVICE_KEYS),
            host=get("hostname", "host") or _tag_value(scope_tags + tags, ("host",)),
            summary=_summary_line(get("eventmsg", "body")),
            transition=(transition or "").lower(),
            fields={k: v for k, v in fields.items() if v not in (None, [], "")},
        )
    ]


# --------------------------------------------------------------------------------------------------
# Generic alert exports (CSV rows, JSON records)
# --------------------------------------------------------------------------------------------------

#: Column aliases (lower-cased) of generic alert exports, best first.
START_TIME_COLUMNS: Final = (
    "startsat",
    "starts_at",
    "fired_at",
    "firedat",
    "triggered_at",
    "created_at",
    "createdat",
    "start_time",
    "started_at",
    "start",
    "opened_at",
)
EVENT_TIME_COLUMNS: Final = ("time", "timestamp", "@timestamp", "ts", "datetime", "date", "event_time")
ACK_TIME_COLUMNS: Final = ("acknowledged_at", "acked_at", "ack_at", "ack_time")
END_TIME_COLUMNS: Final = (
    "resolved_at",
    "resolvedat",
    "endsat",
    "ends_at",
    "ended_at",
    "end_time",
    "closed_at",
    "recovered_at",
    "end",
)
NAME_COLUMNS: Final = (
    "alertname",
    "alert_name",
    "alert",
    "title",
    "alert_title",
    "rule",
    "rule_name",
    "monitor",
    "name",
)
#: Name columns that say "alert" on their own (a bare ``name`` column is common in logs too).
ALERT_NAME_COLUMNS: Final = frozenset(NAME_COLUMNS) - {"name", "title", "rule", "monitor"}
#: Columns that only alert exports have: their presence beside a status word marks an export.
ALERT_ONLY_COLUMNS: Final = frozenset(
    {"severity", "priority", "alert_severity", "urgency", "alert_id", "alertid", "fingerprint", "incident_id"}
)
STATE_COLUMNS: Final = ("status", "state", "alert_state", "alertstate")
SEVERITY_COLUMNS: Final = ("severity", "priority", "alert_severity", "urgency", "level")
SERVICE_COLUMNS: Final = (
    "service",
    "service_name",
    "app",
    "application",
    "component",
    "deployment",
    "job",
    "namespace",
)
HOST_COLUMNS: Final = ("host", "hostname", "instance", "node")
ID_COLUMNS: Final = ("alert_id", "alertid", "fingerprint", "incident_id", "id", "key", "dedup_key")
SUMMARY_COLUMNS: Final = ("summary", "description", "message", "details")
TIME_COLUMNS: Final = START_TIME_COLUMNS + EVENT_TIME_COLUMNS


def _column(record: Mapping[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    for name in names:
        if name in record and record[name] not in (None, ""):
            return name, record[name]
    return None


def read_generic(record: Mapping[str, Any], tz: str = "UTC") -> list[AlertEvent]:
    """One record of a generic alert export: a time column plus name, status, severity, service.

    A start-time column (``startsAt``, ``fired_at``, ``created_at`` ...) is the firing time; a plain
    time column (``time``, ``timestamp``) is the time of the row's ``status``. An end-time column
    (``resolved_at``, ``endsAt`` ...) adds a resolved event, an acknowledge-time column an
    acknowledged event.
    """
    row = {str(k).strip().lower(): v for k, v in record.items()}
    name_col = _column(row, NAME_COLUMNS)
    state_col = _column(row, STATE_COLUMNS)
    start_col = _column(row, START_TIME_COLUMNS)
    time_col = start_col or _column(row, EVENT_TIME_COLUMNS)
    if time_col is None:
        raise PayloadRejectedError("no_timestamp", "alert record without a time column")
    state = normalize_state(state_col[1]) if state_col else None
    end_col = _column(row, END_TIME_COLUMNS)
    # A row with a start or an end column describes an interval: its time column is the firing time.
    # Otherwise the time column is the time of the row's status.
    row_state = FIRING if start_col is not None or end_col is not None or state is None else state
    identity = {k: row.get(k) for k in ("alertname", "alert_name", "alert", "title", "name", "service", "host")}
    id_col = _column(row, ID_COLUMNS)
    alert_id = (_text(id_col[1]) if id_col else None) or stable_id("alert", identity)
    used = {c[0] for c in (name_col, state_col, time_col) if c}
    severity_col = _column(row, SEVERITY_COLUMNS)
    service_col = _column(row, SERVICE_COLUMNS)
    host_col = _column(row, HOST_COLUMNS)
    summary_col = _column(row, SUMMARY_COLUMNS)
    used |= {c[0] for c in (severity_col, service_col, host_col, summary_col) if c}
    base: dict[str, Any] = {
        "alert_id": alert_id,
        "alert_name": _text(name_col[1]) if name_col else None,
        "level": normalize_severity(severity_col[1]) if severity_col else None,
        "service": _text(service_col[1]) if service_col else None,
        "host": _text(host_col[1]) if host_col else None,
        "summary": _summary_line(_text(summary_col[1])) if summary_col else None,
        "fields": {k: v for k, v in record.items() if str(k).strip().lower() not in used and v not in (None, "")},
    }
    events: list[AlertEvent] = []
    untimed: list[str] = []
    stamps: list[tuple[str, tuple[str, Any] | None]] = [(row_state, time_col)]
    stamps.append((ACKNOWLEDGED, _column(row, ACK_TIME_COLUMNS)))
    stamps.append((RESOLVED, end_col))
    for stamp_state, column in stamps:
        if column is None:
            continue
        when = parse_alert_time(column[1], tz)
        if when is None:
            untimed.append(stamp_state)
            continue
        events.append(
            AlertEvent(timestamp=when[0], ts_raw=when[1], alert_state=stamp_state, tz_assumed=when[2], **base)
        )
    if not events:
        raise PayloadRejectedError("no_timestamp", f"alert record whose {time_col[0]} is not a time")
    events[0].untimed = untimed
    return events


#: Reader of each alert format name.
PAYLOAD_READERS: Final[Mapping[str, Callable[[Mapping[str, Any], str], list[AlertEvent]]]] = {
    "alertmanager": read_alertmanager,
    "grafana": read_alertmanager,
    "pagerduty": read_pagerduty,
    "opsgenie": read_opsgenie,
    "datadog": read_datadog,
    "alert_json": read_generic,
    "alert_csv": read_generic,
}
