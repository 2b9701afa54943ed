"""The one event schema that every stage after normalization relies on.

An *event* is one row of a pandas DataFrame with exactly the columns of :data:`EVENT_COLUMNS`, in
that order, with the dtypes of :data:`EVENT_DTYPES`. Connectors produce such frames (use
:func:`empty_events` and :func:`conform_events` to get the columns and dtypes right); the pipeline
validates them with :func:`validate_events`.

Columns (all strings are nullable ``string[pyarrow]``; missing values are ``<NA>``):

==================  =====================  ===============================================================
column              dtype                  meaning
==================  =====================  ===============================================================
timestamp           datetime64[ns, UTC]    when the event happened, in UTC, nanosecond resolution
source              string                 the input path as given, or a connector id (``es:logs-*``)
line                Int64                  1-based line of the event's first line in its source; null
                                           for non-file sources
format              string                 name of the format that parsed it (``nginx_combined``, ...)
host                string                 host name, as written
service             string                 the application the event belongs to (see below)
logger              string                 the logger, class or component inside the application that
                                           wrote the line (``c.e.bank.PoolStats``, ``search.handler``)
level               string                 one of :data:`LEVELS`, or null where the source has none
severity_number     Int64                  OpenTelemetry severity number 1-24 (null where no level)
message             string                 the message; multi-line events keep all their lines
kind                string                 one of :data:`KINDS`
http_status         Int64                  HTTP status code of a request event
http_method         string                 HTTP method
url_path            string                 request path (query string kept, redacted on output)
duration_ms         float64                request or operation duration in milliseconds
trace_id            string                 distributed trace id
request_id          string                 request / correlation id
user                string                 user identity (user.id, user.name, customer_id, ...)
client_ip           string                 client / source IP address
alert_name          string                 alerts: the alert or incident name
alert_state         string                 alerts: one of :data:`ALERT_STATES`
alert_id            string                 alerts: stable identity (fingerprint, incident id, labels)
change_type         string                 changes: one of :data:`CHANGE_TYPES` (set by the analysis)
ts_raw              string                 the timestamp text exactly as written in the source
tz_assumed          string                 the zone assumed for a naive timestamp; null when the text
                                           carried its own offset
year_inferred       boolean                True when the year was not written and was inferred
fields              string                 remaining fields of structured sources, as a JSON object
==================  =====================  ===============================================================

Per-bucket signal counts (see :data:`COUNT_COLUMNS`) are the aggregate form that streaming
ingestion and the Elasticsearch push-down both produce, and from which the analysis works. Request
events of access logs (formats whose name starts with ``access``) are *edge* requests: when a window
has any, requests are counted at the edge only, so a request logged by several layers counts once.

``service`` is the application, taken from the first of these that exists: the line's own app field
(ECS ``service.name``; JSON ``service``/``app``/``application``/``app_name``; syslog APP-NAME or
program; Spring Boot's ``[app,trace,span]``; Kubernetes labels ``app.kubernetes.io/name``, ``app``,
``k8s-app``, or the container name), then a ``--service GLOB=NAME`` naming the source, then a stable
name from the source's path (see :func:`pmtimeline.connectors.logfile.service_from_path`). A logger or
class name is never the service: it goes to ``logger``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pandas as pd

from pmtimeline.errors import SchemaError

#: The nullable, Arrow-backed string dtype used for every text column.
STRING: Final = pd.StringDtype("pyarrow")
#: The timestamp dtype: tz-aware UTC with nanosecond resolution.
TIMESTAMP: Final = pd.DatetimeTZDtype("ns", "UTC")

EVENT_DTYPES: Final[Mapping[str, object]] = {
    "timestamp": TIMESTAMP,
    "source": STRING,
    "line": "Int64",
    "format": STRING,
    "host": STRING,
    "service": STRING,
    "logger": STRING,
    "level": STRING,
    "severity_number": "Int64",
    "message": STRING,
    "kind": STRING,
    "http_status": "Int64",
    "http_method": STRING,
    "url_path": STRING,
    "duration_ms": "float64",
    "trace_id": STRING,
    "request_id": STRING,
    "user": STRING,
    "client_ip": STRING,
    "alert_name": STRING,
    "alert_state": STRING,
    "alert_id": STRING,
    "change_type": STRING,
    "ts_raw": STRING,
    "tz_assumed": STRING,
    "year_inferred": "boolean",
    "fields": STRING,
}
#: The event columns, in order.
EVENT_COLUMNS: Final[tuple[str, ...]] = tuple(EVENT_DTYPES)
#: Columns that must never be null.
REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("timestamp", "source", "kind")

#: Normalized levels, least to most severe (syslog names, as the OpenTelemetry appendix maps them).
LEVELS: Final[tuple[str, ...]] = (
    "trace",
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
#: OpenTelemetry SeverityNumber of each normalized level (data-model appendix, syslog column).
SEVERITY_NUMBER: Final[Mapping[str, int]] = {
    "trace": 1,
    "debug": 5,
    "info": 9,
    "notice": 10,
    "warning": 13,
    "error": 17,
    "critical": 18,
    "alert": 19,
    "emergency": 21,
}
#: Levels that count as errors (OpenTelemetry: SeverityNumber >= 17 is "erroneous").
ERROR_LEVELS: Final[frozenset[str]] = frozenset({"error", "critical", "alert", "emergency"})

#: Raw level tokens (lower-cased) of common sources and the normalized level each maps to.
LEVEL_ALIASES: Final[Mapping[str, str]] = {
    **{name: name for name in LEVELS},
    "trc": "trace",
    "finest": "trace",
    "verbose": "trace",
    "dbg": "debug",
    "debug2": "debug",
    "fine": "debug",
    "finer": "debug",
    "config": "debug",
    "d": "debug",
    "information": "info",
    "informational": "info",
    "inf": "info",
    "i": "info",
    "warn": "warning",
    "wrn": "warning",
    "w": "warning",
    "err": "error",
    "erro": "error",
    "eror": "error",
    "severe": "error",
    "e": "error",
    "fail": "error",
    "failure": "error",
    "crit": "critical",
    "fatal": "critical",
    "dpanic": "critical",
    "f": "critical",
    "c": "critical",
    "panic": "alert",
    "emerg": "emergency",
}

#: Event kinds. ``log``: an ordinary log line; ``request``: one served request (access logs, request
#: events); ``alert``: an alert or page state change; ``change``: a deploy, rollback, restart,
#: config change and the like.
KINDS: Final[tuple[str, ...]] = ("log", "request", "alert", "change")
#: States of an alert event.
ALERT_STATES: Final[tuple[str, ...]] = ("firing", "acknowledged", "resolved")
#: Kinds of change recognized by the analysis; ``mitigation`` types are those that can mitigate.
CHANGE_TYPES: Final[tuple[str, ...]] = (
    "deploy",
    "rollback",
    "restart",
    "config",
    "migration",
    "failover",
    "reroute",
    "scale",
    "block",
    "certificate",
    "feature_flag",
    "destructive",
    "operation",
)

#: Prefix of the names of access-log formats, whose request events are edge requests.
EDGE_FORMAT_PREFIX: Final = "access"

#: Columns of the per-bucket signal counts: one row per (bucket start, service).
COUNT_DTYPES: Final[Mapping[str, object]] = {
    "bucket": TIMESTAMP,  # start of the bucket (floor of the event time), UTC
    "service": STRING,  # service, or "" where unknown
    "events": "int64",  # all events
    "errors": "int64",  # error events: level error or worse, or http_status >= 500
    "warnings": "int64",  # level warning (not counted in errors)
    "requests": "int64",  # request events (kind == "request")
    "failed_requests": "int64",  # request events with http_status >= 500
    "edge_requests": "int64",  # request events of access logs (format starting with "access")
    "failed_edge_requests": "int64",  # of those, http_status >= 500
}
COUNT_COLUMNS: Final[tuple[str, ...]] = tuple(COUNT_DTYPES)

#: ECS (dotted) field names and the event column each maps to; used by the JSON-lines format and
#: the Elasticsearch connector alike. Earlier keys win when a document has several.
ECS_FIELD_MAP: Final[Mapping[str, str]] = {
    "@timestamp": "timestamp",
    "message": "message",
    "log.level": "level",
    "log.syslog.severity.name": "level",
    "service.name": "service",
    "log.logger": "logger",
    "host.name": "host",
    "host.hostname": "host",
    "trace.id": "trace_id",
    "transaction.id": "request_id",
    "http.request.id": "request_id",
    "http.response.status_code": "http_status",
    "http.request.method": "http_method",
    "url.path": "url_path",
    "url.original": "url_path",
    "user.id": "user",
    "user.name": "user",
    "client.user.id": "user",
    "source.ip": "client_ip",
    "client.ip": "client_ip",
    "event.duration": "duration_ms",  # nanoseconds in ECS: divide by 1e6
}
#: Common non-ECS aliases (lower-cased keys) and the event column each maps to.
FIELD_ALIASES: Final[Mapping[str, str]] = {
    "time": "timestamp",
    "ts": "timestamp",
    "timestamp": "timestamp",
    "date": "timestamp",
    "datetime": "timestamp",
    "@t": "timestamp",
    "msg": "message",
    "message": "message",
    "@m": "message",
    "@mt": "message",
    "text": "message",
    "log": "message",  # Fluentd's and Fluent Bit's copies of container logs
    "level": "level",
    "severity": "level",
    "lvl": "level",
    "loglevel": "level",
    "log_level": "level",
    "levelname": "level",
    "@l": "level",
    "service": "service",
    "app": "service",
    "application": "service",
    "app_name": "service",
    "appname": "service",
    "application_name": "service",
    "service_name": "service",
    "component": "service",
    "logger": "logger",
    "logger_name": "logger",
    "loggername": "logger",
    "sourcecontext": "logger",  # Serilog
    "log.logger": "logger",
    "host": "host",
    "hostname": "host",
    "trace_id": "trace_id",
    "traceid": "trace_id",
    "trace": "trace_id",
    "request_id": "request_id",
    "requestid": "request_id",
    "req_id": "request_id",
    "correlation_id": "request_id",
    "status": "http_status",
    "status_code": "http_status",
    "http_status": "http_status",
    "method": "http_method",
    "path": "url_path",
    "url": "url_path",
    "uri": "url_path",
    "duration_ms": "duration_ms",
    "latency_ms": "duration_ms",
    "elapsed_ms": "duration_ms",
    "user": "user",
    "user_id": "user",
    "userid": "user",
    "username": "user",
    "customer_id": "user",
    "account_id": "user",
    "client_id": "user",
    "client_ip": "client_ip",
    "remote_addr": "client_ip",
    "ip": "client_ip",
    # Auth and audit logs name the account and the address in their own ways.
    "account": "user",
    "account_name": "user",
    "login_name": "user",
    "src_ip": "client_ip",
    "source_ip": "client_ip",
    "remote_ip": "client_ip",
    "clientip": "client_ip",
    "client_address": "client_ip",
    "ip_address": "client_ip",
}

#: Kubernetes metadata that log shippers (Fluent Bit, Filebeat, Vector) add to a container's lines,
#: nested or dotted, with or without their dots replaced, and the event column each maps to: the app
#: labels first, the container name last. Read from log files after :data:`FIELD_ALIASES` (a line's
#: own app field wins); not used by the Elasticsearch connector (give ``--es`` a field mapping).
KUBERNETES_FIELD_MAP: Final[Mapping[str, str]] = {
    "kubernetes.labels.app.kubernetes.io/name": "service",
    "kubernetes.labels.app_kubernetes_io/name": "service",
    "kubernetes.labels.app_kubernetes_io_name": "service",
    "kubernetes.labels.app": "service",
    "kubernetes.labels.k8s-app": "service",
    "kubernetes.labels.k8s_app": "service",
    "kubernetes.container_name": "service",
    "kubernetes.container.name": "service",
    "container.name": "service",
    "container_name": "service",
}


def empty_events() -> pd.DataFrame:
    """Return an empty frame with the event columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in EVENT_DTYPES.items()})  # type: ignore[call-overload]


def conform_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with every event column present, in order, cast to the schema dtypes.

    Missing columns are added as nulls and extra columns are dropped (put them in ``fields``
    first). Use this at the end of a connector; it does not check values.
    """
    n = len(frame)
    out: dict[str, pd.Series] = {}
    for name, dtype in EVENT_DTYPES.items():
        if name in frame.columns:
            col = frame[name]
            if name == "timestamp":
                col = pd.to_datetime(col, utc=True).astype(TIMESTAMP)
            elif str(col.dtype) != str(dtype):
                col = col.astype(dtype)  # type: ignore[call-overload]
            out[name] = col.reset_index(drop=True)
        else:
            out[name] = pd.Series(index=pd.RangeIndex(n), dtype=dtype)  # type: ignore[call-overload]
    return pd.DataFrame(out)


def validate_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Check that ``frame`` follows the event schema and return it unchanged.

    Raises:
        SchemaError: naming the missing columns, the columns of the wrong dtype, or the required
            columns that hold nulls.
    """
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"event frame lacks columns: {', '.join(missing)}")
    wrong = [
        f"{c} ({frame[c].dtype}, expected {EVENT_DTYPES[c]})"
        for c in EVENT_COLUMNS
        if str(frame[c].dtype) != str(EVENT_DTYPES[c])
    ]
    if wrong:
        raise SchemaError(f"event frame has wrong dtypes: {'; '.join(wrong)}")
    nulls = [c for c in REQUIRED_COLUMNS if bool(frame[c].isna().any())]
    if nulls:
        raise SchemaError(f"event frame has nulls in required columns: {', '.join(nulls)}")
    bad_levels = set(frame["level"].dropna().unique()) - set(LEVELS)
    if bad_levels:
        raise SchemaError(f"unknown levels: {', '.join(sorted(map(str, bad_levels))[:5])}")
    bad_kinds = set(frame["kind"].dropna().unique()) - set(KINDS)
    if bad_kinds:
        raise SchemaError(f"unknown kinds: {', '.join(sorted(map(str, bad_kinds))[:5])}")
    return frame


def normalize_levels(raw: pd.Series) -> pd.Series:
    """Map raw level tokens (any case, surrounding spaces/brackets) to :data:`LEVELS`; unknown -> NA.

    Vectorized: the distinct tokens are normalized and looked up once, then spread back by code.
    """
    codes, distinct = pd.factorize(raw.astype(STRING))
    tokens = pd.Series(distinct, dtype=STRING).str.strip().str.strip("[]<>").str.lower()
    names = tokens.map(LEVEL_ALIASES).astype(STRING)
    if len(names) == 0:
        return pd.Series(pd.NA, index=raw.index, dtype=STRING)
    # Code -1 (a null token) takes the extra null appended at the end.
    table = pd.concat([names, pd.Series([pd.NA], dtype=STRING)], ignore_index=True)
    return pd.Series(table.array.take(codes), index=raw.index, dtype=STRING)


def severity_numbers(levels: pd.Series) -> pd.Series:
    """The OpenTelemetry severity number of each normalized level (null where the level is)."""
    return levels.map(SEVERITY_NUMBER).astype("Int64")


def empty_counts() -> pd.DataFrame:
    """Return an empty frame with the per-bucket count columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COUNT_DTYPES.items()})  # type: ignore[call-overload]
