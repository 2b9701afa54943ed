"""Read an outage window from Elasticsearch, and push the per-bucket counting down to the cluster.

Two ways of reading, chosen by :attr:`EsSettings.mode`:

* ``documents``: every document of the window is pulled (point in time + ``search_after``), mapped
  to events, and counted locally like any file. Cost: one request per ``page_size`` documents,
  and the documents' size over the network. Right for up to a few hundred thousand documents.
* ``pushdown``: the per-bucket signal (events, errors, warnings, requests, failed requests per
  bucket and service) is computed *in* Elasticsearch with ``composite`` aggregations
  (:meth:`ElasticsearchConnector.counts`), and ``read()`` pulls only the notable documents
  (warnings and worse, 5xx responses, alerts, change-like messages) plus a bounded sample of
  ordinary ones. Cost: one aggregation request per ``page_size`` (bucket, service) pairs, whatever
  the number of documents; the cluster does the work.
* ``auto`` (default): a cheap ``_count`` of the window first; ``pushdown`` when it exceeds
  ``pushdown_threshold``, else ``documents``.

Every request goes through one retry loop (exponential backoff with full jitter on 429/502/503/504,
dropped connections and timeouts; bounded attempts and a deadline; after a timeout the next attempt
waits twice as long, since a busy cluster that needs 6 s never answers within 5 s however often it
is asked), and every failure becomes a
:class:`~pmtimeline.errors.SearchBackendError` with a one-line message that never contains a
credential. The ``elasticsearch`` package is imported on first connection only.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from pmtimeline.config import TimelineConfig
from pmtimeline.errors import ConfigError, SearchBackendError
from pmtimeline.escaping import escape_terminal
from pmtimeline.schema import (
    COUNT_DTYPES,
    ECS_FIELD_MAP,
    EDGE_FORMAT_PREFIX,
    ERROR_LEVELS,
    FIELD_ALIASES,
    LEVEL_ALIASES,
    STRING,
    conform_events,
    empty_counts,
    normalize_levels,
    severity_numbers,
)
from pmtimeline.sources import Reject, SourceAccounting

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

#: Format name of events read from Elasticsearch; access-log documents get the edge variant.
FORMAT: Final = "elasticsearch"
EDGE_FORMAT: Final = f"{EDGE_FORMAT_PREFIX}.elasticsearch"
#: HTTP statuses worth a retry: rate limiting and gateways/unavailable nodes.
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
#: Sort values Elasticsearch gives documents without the sort field.
MISSING_SORT_VALUES: Final = frozenset({2**63 - 1, -(2**63)})
#: How long a point in time is kept alive between two pages.
PIT_KEEP_ALIVE: Final = "5m"
#: Reopened points in time after expiry, before the read gives up (partial).
MAX_PIT_REOPENS: Final = 3
#: pushdown: the ordinary-document sample is taken from this many equal slices of the window.
SAMPLE_SLICES: Final = 10
#: Composite aggregation buckets per request (each carries six filter sub-buckets; the default
#: ``search.max_buckets`` is 65,536).
MAX_COMPOSITE_PAGE: Final = 5_000
#: Words that mark a change in a message (pushdown: such documents are always pulled). Wildcards
#: catch inflections (deployed, deploying, deployment, ...).
CHANGE_TERMS: Final[tuple[str, ...]] = (
    "deploy*",
    "rollback*",
    "rolled",
    "revert*",
    "restart*",
    "failover*",
    "reroute*",
    "scale*",
    "scaling",
    "config*",
    "migrat*",
    "certificate*",
    "block*",
)
#: Event columns whose presence makes a document a request (as for JSON-lines logs).
REQUEST_COLUMNS: Final = ("http_status", "http_method", "url_path")
#: pushdown: messages of identified users/clients with these words are pulled too (data operations:
#: exports, bulk downloads, credential and payee changes), as the exposure analysis needs them.
DATA_OPERATION_TERMS: Final[tuple[str, ...]] = (
    "export*",
    "download*",
    "bulk",
    "dump",
    "report*",
    "password*",
    "email*",
    "phone",
    "mfa",
    "2fa",
    "payee*",
    "beneficiar*",
    "api*key*",
    "token*",
)
#: Raw level tokens at warning or worse, and at error or worse (for the cluster-side filters).
_WARNING_TOKENS: Final = tuple(sorted(t for t, lvl in LEVEL_ALIASES.items() if lvl == "warning"))
_ERROR_TOKENS: Final = tuple(sorted(t for t, lvl in LEVEL_ALIASES.items() if lvl in ERROR_LEVELS))
#: Alert document fields, first present wins.
_ALERT_NAME_FIELDS: Final = ("kibana.alert.rule.name", "rule.name", "alert.name", "labels.alertname", "alertname")
_ALERT_STATE_FIELDS: Final = ("kibana.alert.status", "event.action", "status")
#: Kibana's triage state; "acknowledged" there overrides an active status.
_ALERT_WORKFLOW_FIELD: Final = "kibana.alert.workflow_status"
_ALERT_ID_FIELDS: Final = ("kibana.alert.uuid", "kibana.alert.instance.id", "event.id")
_ALERT_STATES: Final[Mapping[str, str]] = {
    "active": "firing",
    "firing": "firing",
    "open": "firing",
    "triggered": "firing",
    "flapping": "firing",
    "acknowledged": "acknowledged",
    "recovered": "resolved",
    "resolved": "resolved",
    "closed": "resolved",
    "untracked": "resolved",
}
_SECRET_FIELDS: Final = ("api_key", "password", "bearer")


@dataclass(frozen=True)
class EsSettings:
    """Where and how to read: the cluster, the index pattern, the query, auth, retries and the mode.

    Secrets (``api_key``, ``password``, ``bearer``) never appear in ``repr`` or in messages.
    """

    url: str | None = None
    cloud_id: str | None = None
    index: str = "logs-*"
    query: str | None = None
    time_field: str = "@timestamp"
    page_size: int = 1000
    max_events: int = 1_000_000
    mapping: Mapping[str, str] | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    bearer: str | None = None
    ca_file: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    mode: str = "auto"
    pushdown_threshold: int = 200_000
    #: pushdown: ordinary (not notable) documents pulled as a sample, first in time order.
    sample_size: int = 1000
    #: give up retrying a request after this many seconds in total.
    retry_deadline: float = 300.0

    def __post_init__(self) -> None:
        if not self.url and not self.cloud_id:
            raise ConfigError(
                "Elasticsearch needs a URL (--es or PMTIMELINE_ES_URL) or a cloud id (PMTIMELINE_ES_CLOUD_ID)"
            )
        if self.mode not in ("auto", "documents", "pushdown"):
            raise ConfigError(f"Elasticsearch mode must be auto, documents or pushdown, not {self.mode!r}")
        if self.page_size < 1 or self.max_events < 1 or self.max_attempts < 1:
            raise ConfigError("Elasticsearch page size, event cap and attempts must be positive")
        if self.page_size > 10_000:
            raise ConfigError("Elasticsearch page size is at most 10000 (index.max_result_window)")

    @classmethod
    def from_env(cls, **overrides: Any) -> EsSettings:
        """Settings from ``PMTIMELINE_ES_*`` environment variables; ``overrides`` (not None) win.

        Variables: ``PMTIMELINE_ES_URL``, ``PMTIMELINE_ES_CLOUD_ID``, ``PMTIMELINE_ES_API_KEY``,
        ``PMTIMELINE_ES_USERNAME``, ``PMTIMELINE_ES_PASSWORD``, ``PMTIMELINE_ES_BEARER``,
        ``PMTIMELINE_ES_CA_FILE``.
        """
        env = {
            "url": "PMTIMELINE_ES_URL",
            "cloud_id": "PMTIMELINE_ES_CLOUD_ID",
            "api_key": "PMTIMELINE_ES_API_KEY",
            "username": "PMTIMELINE_ES_USERNAME",
            "password": "PMTIMELINE_ES_PASSWORD",
            "bearer": "PMTIMELINE_ES_BEARER",
            "ca_file": "PMTIMELINE_ES_CA_FILE",
        }
        values: dict[str, Any] = {key: os.environ[var] for key, var in env.items() if os.environ.get(var)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value is not None:
                shown.append(f"{f.name}='***'")
            elif f.name == "url" and value is not None:
                shown.append(f"url={redact_url(value)!r}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"EsSettings({', '.join(shown)})"

    @property
    def target(self) -> str:
        """The cluster as shown in messages: the URL without credentials, or the cloud id's name."""
        if self.url:
            return redact_url(self.url)
        return f"Elastic Cloud deployment {str(self.cloud_id).split(':', 1)[0]!r}"


def redact_url(url: str) -> str:
    """``url`` without user name and password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _PitExpiredError(Exception):
    """The point in time is gone (404 search_context_missing_exception)."""


@dataclass
class _Fields:
    """The document fields that feed each event column, in priority order, as found in the cluster."""

    candidates: dict[str, list[str]]  # event column -> document fields (user mapping, ECS, aliases)
    aggregatable: dict[str, str] = field(default_factory=dict)  # field -> its keyword variant for terms/aggs

    def agg(self, name: str) -> str:
        return self.aggregatable.get(name, name)


class ElasticsearchConnector:
    """Events of one index pattern in one window, read from an Elasticsearch 8.x or 9.x cluster.

    Implements :class:`~pmtimeline.sources.AccountedSource` and
    :class:`~pmtimeline.sources.CountingSource`. ``client`` lets a caller pass a configured
    ``elasticsearch.Elasticsearch``; by default one is created from ``settings`` on first use,
    with the client's own retries off (this connector retries with backoff).
    """

    def __init__(self, settings: EsSettings, config: TimelineConfig, client: Elasticsearch | None = None) -> None:
        self.settings = settings
        self.config = config
        self.name = f"es:{settings.index}"
        self._client = client
        self._fields: _Fields | None = None
        self._pushdown: bool | None = None
        self._acc = SourceAccounting(name=self.name, path=settings.target, format=FORMAT, time_zone="UTC")
        self._rejects: list[Reject] = []
        self._retries: Counter[str] = Counter()
        self._warnings: list[str] = []
        self._notes: list[str] = []
        self._message_truncated = 0

    def __repr__(self) -> str:
        return f"ElasticsearchConnector({self.settings!r})"

    # -- public API ---------------------------------------------------------------------------------
    def pushdown(self) -> bool:
        """True when :meth:`counts` should be used and :meth:`read` yields only notable documents.

        Decided once: by ``mode``, or for ``auto`` by a ``_count`` of the window against
        ``pushdown_threshold``.
        """
        if self._pushdown is None:
            if self.settings.mode == "auto":
                total = self._count(self._base_filters())
                self._pushdown = total > self.settings.pushdown_threshold
                mode = "pushdown" if self._pushdown else "documents"
                self._note(
                    f"the window holds {total:,} documents (_count): {mode} mode "
                    f"(threshold {self.settings.pushdown_threshold:,})"
                )
            else:
                self._pushdown = self.settings.mode == "pushdown"
                self._note(f"{self.settings.mode} mode (forced)")
        return self._pushdown

    def read(self) -> Iterator[pd.DataFrame]:
        """Yield event frames of the window, one per page of documents.

        In pushdown mode only the notable documents, then a sample of at most ``sample_size``
        ordinary ones. The point in time is closed in every case, also when the caller stops early.
        """
        base = self._base_filters()
        if not self.pushdown():
            yield from self._read_documents(base, limit=self.settings.max_events, capped_is_partial=True)
            return
        notable = self._notable_query()
        yield from self._read_documents([*base, notable], limit=self.settings.max_events, capped_is_partial=True)
        if self.settings.sample_size > 0:
            before = self._acc.events
            yield from self._read_sample([*base, {"bool": {"must_not": [notable]}}])
            self._note(
                f"pushdown: pulled {self._acc.events - before:,} ordinary documents as a sample "
                f"(at most {self.settings.sample_size:,}, spread over the window); counts come from aggregations"
            )

    def counts(self, resolution: str) -> pd.DataFrame:
        """Per-bucket counts of every document of the window, computed in Elasticsearch.

        One row per (bucket, service) with the columns of :data:`pmtimeline.schema.COUNT_COLUMNS`;
        ``resolution`` is a pandas duration (``"1s"``, ``"1min"``). Paged with composite
        aggregations, so the cost does not depend on the number of documents.
        """
        interval = _es_interval(resolution)
        fields_ = self._resolve_fields()
        service_fields = fields_.candidates.get("service", [])
        sources: list[dict[str, Any]] = [
            {
                "bucket": {
                    "date_histogram": {
                        "field": self.settings.time_field,
                        "fixed_interval": interval,
                        "time_zone": "UTC",
                    }
                }
            }
        ]
        if service_fields:
            # Composite terms read one field; documents that name their service elsewhere count as "".
            sources.append({"service": {"terms": {"field": fields_.agg(service_fields[0]), "missing_bucket": True}}})
        errors = self._errors_query()
        requests = self._any_present(REQUEST_COLUMNS)
        failed = {"bool": {"filter": [requests, self._status_at_least(500)]}}
        edge = {"bool": {"filter": [requests, self._edge_query()]}}
        sub_aggs = {
            "errors": {"filter": errors},
            "warnings": {"filter": {"bool": {"filter": [self._level_in(_WARNING_TOKENS)], "must_not": [errors]}}},
            "requests": {"filter": requests},
            "failed_requests": {"filter": failed},
            "edge_requests": {"filter": edge},
            "failed_edge_requests": {"filter": {"bool": {"filter": [edge, self._status_at_least(500)]}}},
        }
        query = {"bool": {"filter": self._base_filters()}}
        size = min(self.settings.page_size, MAX_COMPOSITE_PAGE)
        rows: list[dict[str, Any]] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": size, "sources": sources}
            if after is not None:
                composite["after"] = after
            aggs = {"signal": {"composite": composite, "aggs": sub_aggs}}
            resp = self._call(
                "aggregation",
                functools.partial(_search, index=self.settings.index, size=0, query=query, aggs=aggs),
            )
            self._check_completeness(resp, "aggregation")
            agg = (resp.get("aggregations") or {}).get("signal") or {}
            buckets = agg.get("buckets") or []
            rows.extend(
                {
                    "bucket": b["key"]["bucket"],
                    "service": b["key"].get("service"),
                    "events": b["doc_count"],
                    **{name: b[name]["doc_count"] for name in sub_aggs},
                }
                for b in buckets
            )
            after = agg.get("after_key")
            if not buckets or after is None:
                break
        if not rows:
            return empty_counts()
        frame = pd.DataFrame(rows)
        frame["bucket"] = pd.to_datetime(frame["bucket"], unit="ms", utc=True)
        frame["service"] = frame["service"].astype(STRING).fillna("")
        frame = frame.groupby(["bucket", "service"], as_index=False, sort=True).sum()
        return frame.astype(dict(COUNT_DTYPES))[list(COUNT_DTYPES)].reset_index(drop=True)  # type: ignore[arg-type]

    def accounting(self) -> list[SourceAccounting]:
        """The accounting of this source: documents read, kept, rejected; partial flags; notes."""
        acc = self._acc
        notes = list(self._notes)
        if self._retries:
            detail = ", ".join(f"{reason} x{n}" for reason, n in sorted(self._retries.items()))
            notes.append(f"retried {sum(self._retries.values())} request(s) ({detail})")
        if self._message_truncated:
            notes.append(
                f"{self._message_truncated} message(s) longer than {self.config.max_line_bytes} characters cut"
            )
        notes.extend(self._warnings)
        acc.notes = notes
        return [acc]

    def rejects(self) -> list[Reject]:
        """Rejected documents kept so far (bounded by ``config.max_rejects_kept``)."""
        return list(self._rejects)

    # -- connection and retries -----------------------------------------------------------------------
    def _connect(self) -> Elasticsearch:
        if self._client is None:
            try:
                from elasticsearch import Elasticsearch
            except ImportError as exc:  # pragma: no cover - a dependency of pmtimeline
                raise SearchBackendError(
                    'the elasticsearch client is missing: pip install "elasticsearch>=8.13,<9"'
                ) from exc
            s = self.settings
            options: dict[str, Any] = {
                "request_timeout": s.request_timeout,
                "max_retries": 0,  # our own loop retries, with backoff
                "retry_on_timeout": False,
                "verify_certs": s.verify_certs,
            }
            if s.ca_file:
                if not os.path.isfile(s.ca_file):
                    raise SearchBackendError(f"CA file not found: {escape_terminal(s.ca_file, 200)}")
                options["ca_certs"] = s.ca_file
            if s.api_key:
                options["api_key"] = s.api_key
            elif s.username is not None:
                options["basic_auth"] = (s.username, s.password or "")
            elif s.bearer:
                options["bearer_auth"] = s.bearer
            try:
                if s.cloud_id:
                    self._client = Elasticsearch(cloud_id=s.cloud_id, **options)
                else:
                    self._client = Elasticsearch(s.url, **options)
            except (ValueError, TypeError) as exc:
                raise SearchBackendError(f"invalid Elasticsearch settings for {s.target}: {_one_line(exc)}") from exc
        return self._client

    def _call(self, what: str, request: Callable[[Elasticsearch], Any]) -> dict[str, Any]:
        """Run ``request`` (an idempotent read, given the client), retrying transient failures;
        translate every error.

        Opening a point in time is retried too: should a lost answer leave one open, it expires
        after its keep-alive. Each timeout doubles the next attempt's timeout (within the deadline).
        """
        from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, ElasticsearchWarning, TransportError

        s = self.settings
        es = self._connect()
        deadline = time.monotonic() + s.retry_deadline
        timeout = s.request_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ElasticsearchWarning)
                    client = es if timeout == s.request_timeout else es.options(request_timeout=timeout)
                    response = request(client)
                for w in caught:
                    if issubclass(w.category, ElasticsearchWarning):
                        self._warn(str(w.message))
                    else:  # not ours to swallow
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                body = getattr(response, "body", response)
                if not isinstance(body, dict):
                    raise SearchBackendError(f"unexpected answer to {what} from {s.target}: not a JSON object")
                return body
            except ApiError as exc:
                status = _status(exc)
                if status == 404 and _error_type(exc) == "search_context_missing_exception":
                    raise _PitExpiredError from exc
                if status not in RETRY_STATUSES:
                    raise self._translate(what, exc) from exc
                reason = str(status)
                last_exc: Exception = exc
            except ConnectionTimeout as exc:
                reason, last_exc = "timeout", exc
            except ConnectionError as exc:
                if _is_tls_error(exc):
                    raise self._translate(what, exc) from exc
                reason, last_exc = "connection", exc
            except TransportError as exc:  # SerializationError and the like: not transient
                raise self._translate(what, exc) from exc
            delay = random.uniform(0, min(s.backoff_cap, s.backoff_base * 2 ** (attempt - 1)))  # full jitter
            if attempt >= s.max_attempts or time.monotonic() + delay > deadline:
                raise self._exhausted(what, reason, attempt, last_exc, timeout) from last_exc
            self._retries[_RETRY_LABELS.get(reason, reason)] += 1
            time.sleep(delay)
            if reason == "timeout":
                # The cluster may still be working on the abandoned request (the busier it is, the
                # longer): asking again with the same patience would fail the same way.
                timeout = max(timeout, min(2 * timeout, deadline - time.monotonic()))

    def _exhausted(self, what: str, reason: str, attempts: int, exc: Exception, timeout: float) -> SearchBackendError:
        target = self.settings.target
        if reason == "timeout":
            return SearchBackendError(
                f"Elasticsearch at {target} did not answer {what} within {timeout:g}s "
                f"({attempts} attempts from {self.settings.request_timeout:g}s, doubling); "
                "raise the request timeout or narrow the window"
            )
        if reason == "connection":
            return SearchBackendError(f"cannot connect to {target}: {_connection_reason(exc)} ({attempts} attempts)")
        label = _RETRY_LABELS.get(reason, reason)
        return SearchBackendError(
            f"Elasticsearch at {target} kept answering {label} to {what}; gave up after {attempts} attempts "
            f"(try again later, or lower the page size)"
        )

    def _translate(self, what: str, exc: Exception) -> SearchBackendError:
        from elasticsearch import ApiError, ConnectionError, SerializationError, UnsupportedProductError

        s = self.settings
        target = s.target
        if isinstance(exc, UnsupportedProductError):
            return SearchBackendError(
                f"server at {target} is not Elasticsearch (OpenSearch? it does not send the X-Elastic-Product "
                f"header; pmtimeline reads Elasticsearch 8.x and 9.x clusters only)"
            )
        if isinstance(exc, SerializationError):
            return SearchBackendError(f"invalid JSON in the answer to {what} from {target} (a proxy in the way?)")
        if isinstance(exc, ConnectionError):
            if _is_tls_error(exc):
                return SearchBackendError(
                    f"TLS handshake with {target} failed: {_connection_reason(exc)} "
                    f"(give the cluster's CA with --es-ca-file / PMTIMELINE_ES_CA_FILE)"
                )
            return SearchBackendError(f"cannot connect to {target}: {_connection_reason(exc)}")
        if isinstance(exc, ApiError):
            status = _status(exc)
            etype = _error_type(exc)
            if status == 401:
                return SearchBackendError(
                    f"authentication failed at {target} (401): check the {self._auth_kind()} "
                    f"(PMTIMELINE_ES_API_KEY, PMTIMELINE_ES_USERNAME/PASSWORD or PMTIMELINE_ES_BEARER)"
                )
            if status == 403:
                return SearchBackendError(
                    f"authorization failed at {target} (403): the credentials lack the read privilege on {s.index!r}"
                )
            if etype == "index_not_found_exception":
                return SearchBackendError(f"index {s.index!r} not found at {target}")
            if etype == "media_type_header_exception":
                cause = _error_cause(exc)
                return SearchBackendError(
                    f"Elasticsearch at {target} refused this client's API version ({escape_terminal(cause, 160)}); "
                    f'install a matching client: pip install "elasticsearch>=8.13,<9"'
                )
            if status == 406:
                return SearchBackendError(
                    f"server at {target} refused the Elasticsearch media type (406): not Elasticsearch "
                    f"(OpenSearch?); pmtimeline reads Elasticsearch 8.x and 9.x clusters only"
                )
            reason = escape_terminal(_error_reason(exc), 200)
            if etype in ("query_shard_exception", "parse_exception", "query_parsing_exception"):
                return SearchBackendError(f"Elasticsearch rejected the {what} (check --es-query): {etype}: {reason}")
            return SearchBackendError(f"Elasticsearch at {target} failed the {what} ({status} {etype}): {reason}")
        return SearchBackendError(f"Elasticsearch {what} at {target} failed: {escape_terminal(_one_line(exc), 200)}")

    def _auth_kind(self) -> str:
        s = self.settings
        if s.api_key:
            return "API key"
        if s.username is not None:
            return "user name and password"
        if s.bearer:
            return "bearer token"
        return "credentials (none were given)"

    def _warn(self, message: str) -> None:
        text = f"Elasticsearch warning: {escape_terminal(message, 300)}"
        if text not in self._warnings:
            self._warnings.append(text)

    def _note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def _partial(self, reason: str) -> None:
        self._acc.partial = True
        if self._acc.partial_reason is None:
            self._acc.partial_reason = reason
        elif reason not in self._acc.partial_reason:
            self._acc.partial_reason += f"; {reason}"

    def _check_completeness(self, resp: Mapping[str, Any], what: str) -> None:
        shards = resp.get("_shards") or {}
        failed = int(shards.get("failed") or 0)
        if failed:
            failures = shards.get("failures") or []
            why = ""
            if failures and isinstance(failures[0], dict):
                first = failures[0].get("reason") or {}
                why = f": {escape_terminal(first.get('type', ''), 80)} {escape_terminal(first.get('reason', ''), 120)}"
            self._partial(f"{failed} of {shards.get('total', '?')} shards failed during the {what}{why}".rstrip())
        if resp.get("timed_out"):
            self._partial(f"the {what} timed out in Elasticsearch: results are incomplete")

    # -- queries ----------------------------------------------------------------------------------------
    def _base_filters(self) -> list[dict[str, Any]]:
        """The window as a range filter, and the user's query string."""
        filters: list[dict[str, Any]] = []
        window: dict[str, Any] = {}
        if self.config.start is not None:
            window["gte"] = _iso_nanos(self.config.start)
        if self.config.end is not None:
            window["lt"] = _iso_nanos(self.config.end)
        if window:
            window["format"] = "strict_date_optional_time_nanos"
            filters.append({"range": {self.settings.time_field: window}})
        if self.settings.query:
            filters.append({"query_string": {"query": self.settings.query}})
        return filters

    def _first_of(self, column: str, predicate: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """Documents whose ``column`` value (the first present of its fields) satisfies ``predicate``.

        Mirrors the mapping's precedence: field *i* counts only when no earlier field is present.
        """
        names = self._resolve_fields().candidates.get(column, [])
        clauses = []
        for i, name in enumerate(names):
            clause: dict[str, Any] = {"filter": [predicate(name)]}
            if i:
                clause["must_not"] = [{"exists": {"field": earlier}} for earlier in names[:i]]
            clauses.append({"bool": clause})
        if not clauses:
            return {"match_none": {}}
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

    def _level_in(self, tokens: tuple[str, ...]) -> dict[str, Any]:
        variants = sorted({v for t in tokens for v in (t, t.upper(), t.capitalize())})
        fields_ = self._resolve_fields()
        return self._first_of("level", lambda name: {"terms": {fields_.agg(name): variants}})

    def _status_at_least(self, status: int) -> dict[str, Any]:
        return self._first_of("http_status", lambda name: {"range": {name: {"gte": status}}})

    def _any_present(self, columns: tuple[str, ...]) -> dict[str, Any]:
        """Documents with a value for any of ``columns``."""
        candidates = self._resolve_fields().candidates
        names = list(dict.fromkeys(n for column in columns for n in candidates.get(column, [])))
        if not names:
            return {"match_none": {}}
        return {"bool": {"should": [{"exists": {"field": n}} for n in names], "minimum_should_match": 1}}

    def _errors_query(self) -> dict[str, Any]:
        return {
            "bool": {"should": [self._level_in(_ERROR_TOKENS), self._status_at_least(500)], "minimum_should_match": 1}
        }

    def _edge_query(self) -> dict[str, Any]:
        fields_ = self._resolve_fields()
        dataset = fields_.agg("event.dataset")
        return {
            "bool": {
                "should": [{"prefix": {dataset: EDGE_FORMAT_PREFIX}}, {"wildcard": {dataset: "*.access"}}],
                "minimum_should_match": 1,
            }
        }

    def _notable_query(self) -> dict[str, Any]:
        """Warnings and worse, 5xx responses, alerts, change-like messages, data operations of users."""
        fields_ = self._resolve_fields()
        should: list[dict[str, Any]] = [
            self._level_in(_WARNING_TOKENS + _ERROR_TOKENS),
            self._status_at_least(500),
            {"term": {fields_.agg("event.kind"): "alert"}},
        ]
        message_fields = fields_.candidates.get("message", [])
        if message_fields:
            should.append({"query_string": {"query": " OR ".join(CHANGE_TERMS), "fields": message_fields}})
            data_operation = {"query_string": {"query": " OR ".join(DATA_OPERATION_TERMS), "fields": message_fields}}
            should.append({"bool": {"filter": [self._any_present(("user", "client_ip")), data_operation]}})
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _resolve_fields(self) -> _Fields:
        """Which candidate fields exist in the index, and their keyword variants (one _field_caps call)."""
        if self._fields is not None:
            return self._fields
        from elasticsearch import ApiError

        candidates = _candidate_fields(self.settings.mapping)
        names = sorted({n for ns in candidates.values() for n in ns} | {"event.kind", "event.dataset"})
        try:
            resp = self._call(
                "field lookup",
                lambda es: es.field_caps(
                    index=self.settings.index, fields=",".join(names + [f"{n}.keyword" for n in names])
                ),
            )
        except SearchBackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiError) and _status(cause) == 400:
                # Some proxies refuse _field_caps: fall back to the field names as given.
                self._fields = _Fields(candidates)
                return self._fields
            raise
        caps: Mapping[str, Mapping[str, Any]] = resp.get("fields") or {}
        aggregatable: dict[str, str] = {}
        for name in names:
            types = caps.get(name) or {}
            if types and not any(t.get("aggregatable") for t in types.values()) and f"{name}.keyword" in caps:
                aggregatable[name] = f"{name}.keyword"
        present = {col: [n for n in ns if n in caps] for col, ns in candidates.items()}
        self._fields = _Fields(present, aggregatable)
        return self._fields

    def _count(self, filters: list[dict[str, Any]]) -> int:
        resp = self._call("count", lambda es: es.count(index=self.settings.index, query={"bool": {"filter": filters}}))
        self._check_completeness(resp, "count")
        return int(resp.get("count", 0))

    # -- reading ----------------------------------------------------------------------------------------
    def _read_documents(
        self, filters: list[dict[str, Any]], *, limit: int, capped_is_partial: bool
    ) -> Iterator[pd.DataFrame]:
        """Page through the window with a point in time and search_after; close the PIT in every case."""
        self._resolve_fields()
        s = self.settings
        query = {"bool": {"filter": filters}}
        sort = [
            {
                s.time_field: {
                    "order": "asc",
                    "format": "strict_date_optional_time_nanos",
                    # an index pattern may span indices without the field, or with date and
                    # date_nanos mappings: sort them all the same way instead of failing shards
                    "unmapped_type": "date",
                    "numeric_type": "date_nanos",
                }
            },
            {"_shard_doc": "asc"},
        ]
        pit_id = self._open_pit()
        search_after: list[Any] | None = None
        seen: set[str] = set()
        # The documents read with the last page's time: after a reopen they are read again and skipped.
        tie_time: Any = None
        tie_ids: set[str] = set()
        skip: set[str] = set()
        reopens = 0
        kept = 0
        exhausted = False
        try:
            while kept < limit:
                size = min(s.page_size, limit - kept)
                kwargs: dict[str, Any] = {
                    "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
                    "query": query,
                    "sort": sort,
                    "size": size,
                    "track_total_hits": False,
                }
                if search_after is not None:
                    kwargs["search_after"] = search_after
                try:
                    resp = self._call("search", functools.partial(_search, **kwargs))
                except _PitExpiredError:
                    reopens += 1
                    if reopens > MAX_PIT_REOPENS:
                        self._partial(f"the point in time expired {reopens} times; stopped reading")
                        return
                    self._note("the point in time expired mid-read: reopened and resumed at the last document's time")
                    pit_id = self._open_pit()
                    # The old point in time's _shard_doc orders nothing in the new one: resume at the last
                    # time itself, so no document sharing it is skipped, and drop those already read.
                    resume = _resume_before(search_after)
                    if resume is not None:
                        search_after, skip = resume, set(tie_ids)
                    continue
                pit_id = resp.get("pit_id") or pit_id  # always continue from the latest id
                self._check_completeness(resp, "search")
                hits = (resp.get("hits") or {}).get("hits") or []
                if not hits:
                    exhausted = True
                    break
                search_after = hits[-1].get("sort")
                if search_after is None:
                    raise SearchBackendError(f"Elasticsearch at {s.target} returned hits without sort values")
                if search_after[0] != tie_time:
                    tie_time, tie_ids = search_after[0], set()
                tie_ids.update(str(h.get("_id")) for h in hits if (h.get("sort") or [None])[0] == tie_time)
                fresh = [h for h in hits if str(h.get("_id")) not in skip] if skip else hits
                frame = self._map_page(fresh, seen) if fresh else conform_events(pd.DataFrame())
                kept += len(frame)
                if len(frame):
                    yield frame
                if len(hits) < size:  # a short page is the last one: the point in time does not change
                    exhausted = True
                    break
            if capped_is_partial and not exhausted:
                # The cap was reached: claim "partial" only if one more document exists.
                peek = {**kwargs, "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE}, "size": 1}
                peek["search_after"] = search_after
                try:
                    more = self._call("search", functools.partial(_search, **peek))
                    pit_id = more.get("pit_id") or pit_id
                    has_more = bool((more.get("hits") or {}).get("hits"))
                except _PitExpiredError:
                    has_more = True
                if has_more:
                    self._partial(
                        f"stopped after {limit:,} documents (the event cap); the window holds more: narrow the "
                        f"window or the query, or raise the cap"
                    )
        finally:
            self._close_pit(pit_id)

    def _read_sample(self, ordinary: list[dict[str, Any]]) -> Iterator[pd.DataFrame]:
        """At most ``sample_size`` ordinary documents: the first ones of each of up to
        :data:`SAMPLE_SLICES` equal slices of the window, so the sample is not all from its start."""
        n = self.settings.sample_size
        start, end = self.config.start, self.config.end
        if start is None or end is None or n < 2:
            yield from self._read_documents(ordinary, limit=n, capped_is_partial=False)
            return
        slices = min(SAMPLE_SLICES, n)
        edges = pd.date_range(start, end, periods=slices + 1)
        per_slice, extra = divmod(n, slices)
        for i in range(slices):
            window = {
                "gte": _iso_nanos(edges[i]),
                "lt": _iso_nanos(edges[i + 1]),
                "format": "strict_date_optional_time_nanos",
            }
            limit = per_slice + (1 if i < extra else 0)
            part = [*ordinary, {"range": {self.settings.time_field: window}}]
            yield from self._read_documents(part, limit=limit, capped_is_partial=False)

    def _open_pit(self) -> str:
        resp = self._call(
            "point-in-time open",
            lambda es: es.open_point_in_time(index=self.settings.index, keep_alive=PIT_KEEP_ALIVE),
        )
        return str(resp["id"])

    def _close_pit(self, pit_id: str) -> None:
        """Close the point in time; a failure here must not hide the error that got us here."""
        from elasticsearch import ApiError, TransportError

        es = self._connect()
        try:
            es.close_point_in_time(id=pit_id)
        except ApiError as exc:
            if _status(exc) != 404:  # already gone: fine, as helpers.scan treats a cleared scroll
                self._note(
                    f"could not close the point in time ({_status(exc)}); it expires by itself in {PIT_KEEP_ALIVE}"
                )
        except TransportError:
            self._note(f"could not close the point in time (connection); it expires by itself in {PIT_KEEP_ALIVE}")

    def _map_page(self, hits: list[dict[str, Any]], seen: set[str]) -> pd.DataFrame:
        """One page of hits as conformed events; rejects and duplicates counted."""
        ids = [str(h.get("_id")) for h in hits]
        fresh = pd.Series(ids).duplicated(keep="first") | pd.Series(ids).isin(seen)
        dup_count = int(fresh.sum())
        if dup_count:
            self._acc.duplicates += dup_count
            hits = [h for h, dup in zip(hits, fresh.tolist(), strict=True) if not dup]
            ids = [i for i, dup in zip(ids, fresh.tolist(), strict=True) if not dup]
        seen.update(ids)
        self._acc.lines_read += len(hits)
        sources = [h.get("_source") for h in hits]
        sort_time = pd.Series([(h.get("sort") or [None])[0] for h in hits], dtype=object)
        is_object = pd.Series([isinstance(src, dict) for src in sources], dtype=bool)
        no_time = sort_time.isna() | sort_time.isin(MISSING_SORT_VALUES)
        reasons = pd.Series(pd.NA, index=range(len(hits)), dtype=STRING)
        reasons = reasons.mask(~is_object, "source_not_object").mask(is_object & no_time, "no_timestamp")
        bad = reasons.notna()
        if bool(bad.any()):
            self._reject(hits, reasons)
        good = [i for i, b in enumerate(bad.tolist()) if not b]
        if not good:
            return conform_events(pd.DataFrame())
        docs = pd.json_normalize([cast(dict[str, Any], sources[i]) for i in good], max_level=None)
        frame, used = self._map_documents(docs, sort_time.iloc[good].reset_index(drop=True))
        frame["fields"] = _fields_json(docs, used, [ids[i] for i in good], [str(hits[i].get("_index")) for i in good])
        self._acc.event_lines += len(frame)
        self._acc.events += len(frame)
        return conform_events(frame)

    def _reject(self, hits: list[dict[str, Any]], reasons: pd.Series) -> None:
        counts = reasons.dropna().value_counts()
        for reason, n in counts.items():
            self._acc.rejected[str(reason)] += int(n)
        room = self.config.max_rejects_kept - len(self._rejects)
        for i in reasons.dropna().index[: max(room, 0)]:
            excerpt = json.dumps({"_id": hits[i].get("_id"), "_source": hits[i].get("_source")}, default=str)[:512]
            self._rejects.append(Reject(self.name, None, str(reasons[i]), escape_terminal(excerpt, 512)))

    def _map_documents(self, docs: pd.DataFrame, sort_time: pd.Series) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
        """Flattened documents -> event columns (vectorized over the page).

        Also returns, per document field, the rows whose value became part of an event column (the
        rest stays in ``fields``).
        """
        candidates = _candidate_fields(self.settings.mapping)
        by_lower = {c.lower(): c for c in docs.columns}
        used: dict[str, pd.Series] = {}
        index = docs.index

        def pick(column: str, extra: tuple[str, ...] = ()) -> pd.Series:
            """The first present value of the column's fields, per row (earlier fields win)."""
            names = [n if n in docs.columns else by_lower.get(n.lower()) for n in (*candidates.get(column, []), *extra)]
            result: pd.Series | None = None
            for name in dict.fromkeys(n for n in names if n is not None):
                values = docs[name]
                present = values.notna()
                if result is None:
                    taken, result = present, values.astype(object)
                else:
                    taken = present & result.isna()
                    result = result.where(~taken, values.astype(object))
                used[name] = used[name] | taken if name in used else taken
            return result if result is not None else pd.Series(None, index=index, dtype=object)

        out: dict[str, Any] = {"timestamp": pd.to_datetime(sort_time, utc=True, format="ISO8601"), "source": self.name}
        time_col = self.settings.time_field
        if time_col in docs.columns:
            out["ts_raw"] = _as_text(docs[time_col])
            used[time_col] = docs[time_col].notna()
        for column in _TEXT_COLUMNS:
            out[column] = _as_text(pick(column))
        message = _as_text(pick("message"))
        too_long = (message.str.len() > self.config.max_line_bytes).fillna(False).astype(bool)
        if bool(too_long.any()):
            self._message_truncated += int(too_long.sum())
            message = message.where(~too_long, message.str.slice(0, self.config.max_line_bytes))
        levels = normalize_levels(_as_text(pick("level")))
        out["level"] = levels
        out["severity_number"] = severity_numbers(levels)
        status = pd.to_numeric(pick("http_status"), errors="coerce").astype("float64")
        http_status = status.where(status.mod(1) == 0).astype("Int64")
        out["http_status"] = http_status
        ecs_ms = pd.to_numeric(pick("duration_ns", ("event.duration",)), errors="coerce").astype("float64") / 1e6
        plain_ms = pd.to_numeric(pick("duration_ms"), errors="coerce").astype("float64")
        out["duration_ms"] = ecs_ms.fillna(plain_ms)
        is_alert = (_as_text(pick("event_kind", ("event.kind",))).str.lower() == "alert").fillna(False).astype(bool)
        kind = pd.Series("log", index=index, dtype=STRING)
        is_request = http_status.notna() | out["http_method"].notna() | out["url_path"].notna()
        out["kind"] = kind.mask(is_request.astype(bool), "request").mask(is_alert, "alert")
        dataset = _as_text(pick("dataset", ("event.dataset",))).str.lower()
        edge = (dataset.str.startswith(EDGE_FORMAT_PREFIX) | dataset.str.endswith(".access")).fillna(False).astype(bool)
        out["format"] = pd.Series(FORMAT, index=index, dtype=STRING).mask(edge, EDGE_FORMAT)
        if bool(is_alert.any()):
            name = _as_text(pick("alert_name", _ALERT_NAME_FIELDS))
            state = _as_text(pick("alert_state", _ALERT_STATE_FIELDS)).str.strip().str.lower()
            out["alert_name"] = name.where(is_alert)
            workflow = _as_text(pick("alert_workflow", (_ALERT_WORKFLOW_FIELD,))).str.strip().str.lower()
            state = state.map(_ALERT_STATES).astype(STRING).fillna("firing")
            state = state.mask(((workflow == "acknowledged") & (state == "firing")).fillna(False), "acknowledged")
            out["alert_state"] = state.where(is_alert)
            out["alert_id"] = _as_text(pick("alert_id", _ALERT_ID_FIELDS)).where(is_alert)
            message = message.where(~is_alert | message.notna(), name)
        out["message"] = message
        out["year_inferred"] = False
        return pd.DataFrame(out, index=index).reset_index(drop=True), used


def _resume_before(search_after: list[Any] | None) -> list[Any] | None:
    """``search_after`` that resumes *at* its time (one nanosecond before it, past every tie-breaker),
    or None when there is nothing to resume from or the time is not a date string."""
    if not search_after or not isinstance(search_after[0], str):
        return None
    try:
        before = pd.Timestamp(search_after[0]) - pd.Timedelta(1, "ns")
    except ValueError:
        return None
    return [_iso_nanos(before), *[2**63 - 1] * (len(search_after) - 1)]


def _search(es: Elasticsearch, **request: Any) -> Any:
    """``es.search(**request)``, for :meth:`ElasticsearchConnector._call` with ``functools.partial``."""
    return es.search(**request)


_RETRY_LABELS: Final[Mapping[str, str]] = {
    "429": "429 (too many requests)",
    "502": "502 (bad gateway)",
    "503": "503 (service unavailable)",
    "504": "504 (gateway timeout)",
    "timeout": "timeout",
    "connection": "connection error",
}


#: Event columns taken from document fields as text.
_TEXT_COLUMNS: Final = (
    *("host", "service", "logger", "trace_id", "request_id"),
    *("http_method", "url_path", "user", "client_ip"),
)


def _candidate_fields(user_mapping: Mapping[str, str] | None) -> dict[str, list[str]]:
    """Event column -> document fields that feed it: user mapping first, then ECS, then aliases."""
    out: dict[str, list[str]] = {}
    for source in (user_mapping or {}, ECS_FIELD_MAP, FIELD_ALIASES):
        for name, column in source.items():
            if column == "timestamp":
                continue  # the time comes from the time field's sort value
            if column == "duration_ms" and name == "event.duration":
                column = "duration_ns"
            names = out.setdefault(column, [])
            if name not in names:
                names.append(name)
    return out


def _fields_json(docs: pd.DataFrame, used: Mapping[str, pd.Series], ids: list[str], indices: list[str]) -> pd.Series:
    """Per document, the field values no event column took, plus ``_id``/``_index``, as a JSON object."""
    rest = docs.drop(columns=[c for c, mask in used.items() if bool(mask.all())])
    rest = rest.astype(object).where(rest.notna(), None)
    for name, mask in used.items():
        if name in rest.columns:
            rest[name] = rest[name].mask(mask, None)
    records = rest.to_dict(orient="records") if len(rest.columns) else [{}] * len(docs)
    texts = [
        json.dumps(
            {"_id": i, "_index": x, **{k: v for k, v in rec.items() if v is not None}}, default=str, sort_keys=True
        )
        for rec, i, x in zip(records, ids, indices, strict=True)
    ]
    return pd.Series(texts, dtype=STRING)


def _as_text(values: pd.Series) -> pd.Series:
    """Any scalar column as nullable strings (numbers and booleans as their text; lists as JSON)."""
    if values.dtype == object:
        complex_ = values.map(lambda v: isinstance(v, list | dict))
        if bool(complex_.any()):
            values = values.where(~complex_, values[complex_].map(lambda v: json.dumps(v, default=str)))
    return values.astype(STRING)


def _iso_nanos(ts: pd.Timestamp) -> str:
    ts = pd.Timestamp(ts).tz_convert("UTC") if pd.Timestamp(ts).tzinfo else pd.Timestamp(ts).tz_localize("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond * 1000 + ts.nanosecond:09d}Z"


def _es_interval(resolution: str) -> str:
    """A pandas duration as an Elasticsearch fixed_interval (largest exact unit)."""
    try:
        delta = pd.Timedelta(resolution)
    except ValueError as exc:
        raise SearchBackendError(f"not a bucket duration: {resolution!r}") from exc
    ns = int(delta.value)
    if ns <= 0 or ns % 1_000_000:
        raise SearchBackendError(f"bucket resolution {resolution!r} must be a positive whole number of milliseconds")
    ms = ns // 1_000_000
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _status(exc: Any) -> int:
    meta = getattr(exc, "meta", None)
    status = getattr(meta, "status", None)
    return int(status) if isinstance(status, int) else int(getattr(exc, "status_code", 0) or 0)


def _error_body(exc: Any) -> Mapping[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error
    return {}


def _root_cause(exc: Any) -> Mapping[str, Any]:
    """The first root cause of a wrapped error (search_phase_execution_exception: all shards failed)."""
    error = _error_body(exc)
    causes = error.get("root_cause")
    if error.get("type") == "search_phase_execution_exception" and isinstance(causes, list) and causes:
        first = causes[0]
        if isinstance(first, dict):
            return first
    return error


def _error_type(exc: Any) -> str:
    etype = _root_cause(exc).get("type")
    if etype:
        return str(etype)
    message = getattr(exc, "message", "")
    return str(message) if isinstance(message, str) and re.fullmatch(r"[a-z_]+", message or "") else ""


def _error_reason(exc: Any) -> str:
    reason = _root_cause(exc).get("reason")
    if not reason:
        body = getattr(exc, "body", None)
        reason = body if isinstance(body, str) else getattr(exc, "message", "")
        if isinstance(reason, str) and reason.lstrip().startswith("<"):
            reason = "an HTML page (a proxy answered instead of Elasticsearch)"
    return _one_line(reason)


def _error_cause(exc: Any) -> str:
    cause = _error_body(exc).get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        return _one_line(cause["reason"]).split(". Accept=")[0]
    return _error_reason(exc)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _is_tls_error(exc: Exception) -> bool:
    from elasticsearch import SSLError

    return isinstance(exc, SSLError) or "certificate verify failed" in str(exc).lower()


def _connection_reason(exc: Exception) -> str:
    # elastic_transport keeps the low-level cause in .message; str() is only "Connection error".
    text = f"{exc} {getattr(exc, 'message', '')}".lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
        return "host name not found"
    if "certificate verify failed" in text:
        return "certificate verify failed"
    if "remote end closed" in text or "connection aborted" in text or "reset by peer" in text:
        return "the server closed the connection"
    if "incompleteread" in text or "incomplete read" in text:
        return "the answer was cut off"
    if "timed out" in text:
        return "timed out"
    return escape_terminal(_one_line(getattr(exc, "message", "") or exc), 160)
