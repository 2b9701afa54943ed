"""esstub: a protocol-level Elasticsearch test server for the tests.

It speaks enough of the Elasticsearch REST API, over real HTTP/1.1 on 127.0.0.1, for the real
``elasticsearch`` client to be exercised unchanged (``../shared/reference/elasticsearch.md`` §1.7):
the product header and compatibility-header rules of an 8.x or 9.x server, in-memory indices with
mappings, ``_bulk`` loading, points in time with frozen snapshots, ``search_after`` paging, the
query subset the connector uses, aggregations (``date_histogram``, ``terms``, ``composite``,
``filter``, ``filters``), ``_count``, ``_field_caps`` and scrolls. Every request is recorded, and
:class:`Fault` switches make a route misbehave on chosen calls.

Simplifications (the real server does more; the opt-in live tests catch drift):

* one shard; ``_shard_doc`` is the position of the document in the point-in-time snapshot;
* dynamic mapping: strings that look like ISO dates become ``date``, other strings ``text`` with a
  ``.keyword`` sub-field (as Elasticsearch does); ints ``long``, floats ``double``, bools ``boolean``;
* text analysis: lower-cased word tokens (``\\w+``), no stemming;
* ``query_string``: ``field:value``, bare terms (searched in ``fields``/``default_field``, else in every
  text and keyword field), quoted phrases, ``*``/``?`` wildcards, ``AND``/``OR``/``NOT``/``&&``/
  ``||``/``!``/``-``, parentheses, ``field:>=N`` style ranges; the default operator is OR;
* date maths (``now-1h``) is not supported.

Use it from a pytest fixture::

    with EsStub(emulate_major=9) as stub:
        es = Elasticsearch(stub.url)
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import gzip
import itertools
import json
import math
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

#: Sort value Elasticsearch gives a document without the sort field (ascending / descending).
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)

_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_COMPAT = re.compile(r"compatible-with\s*=\s*(\d+)")
_TOKEN = re.compile(r"\w+")
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TYPE_FAMILY = {"date_nanos": "date", "ip": "keyword", "constant_keyword": "keyword", "match_only_text": "text"}
_CALENDAR = {"minute": "1m", "1m": "1m", "hour": "1h", "1h": "1h", "day": "1d", "1d": "1d"}


class EsError(Exception):
    """An error answer: HTTP status and the Elasticsearch error envelope."""

    def __init__(self, status: int, etype: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.body: dict[str, Any] = {
            "error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason, **extra},
            "status": status,
        }


@dataclass
class Fault:
    """Make ``route`` misbehave on its calls number ``first_call`` .. ``first_call + times - 1`` (1-based).

    ``times=None`` means forever. Routes: ``info``, ``search`` (any search, PIT or not), ``pit_open``,
    ``pit_close``, ``count``, ``field_caps``, ``bulk``, ``scroll``, ``index`` (index admin), or ``*``.

    Actions:
        ``status``: answer ``status`` (429, 500, 502, 503, 504) with an error envelope;
        ``delay``: sleep ``delay`` seconds, then answer normally (past the client's timeout);
        ``drop``: close the connection without answering;
        ``truncate``: announce a longer ``Content-Length`` than the bytes sent, then close;
        ``invalid_json``: a 200 whose body is not JSON;
        ``html_502``: a proxy's ``text/html`` 502 page;
        ``no_product_header``: the normal answer without ``X-Elastic-Product``;
        ``partial_shards``: a normal search answer with ``_shards.failed: 1`` and ``failures``;
        ``timed_out``: a normal search answer with ``timed_out: true``;
        ``pit_expired``: the point in time (or scroll) is gone: 404 ``search_context_missing_exception``;
        ``warning``: the normal answer with a ``Warning: 299 Elasticsearch-...`` deprecation header;
        ``unauthorized`` / ``forbidden``: 401 / 403 security exceptions.

    Duplicate sort values across a page boundary need no switch: load documents that share a
    timestamp (the ``_shard_doc`` tie-breaker keeps them apart, as in Elasticsearch).
    """

    route: str
    action: str
    first_call: int = 1
    times: int | None = 1
    status: int = 503
    delay: float = 2.0

    def applies(self, route: str, call: int) -> bool:
        if self.route not in ("*", route) or call < self.first_call:
            return False
        return self.times is None or call < self.first_call + self.times


@dataclass
class RecordedRequest:
    """One request as the stub received it (header names lower-cased; body decoded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    route: str


@dataclass
class _Doc:
    id: str
    source: Any
    index: str


@dataclass
class _Index:
    mappings: dict[str, str] = field(default_factory=dict)  # flattened field -> type
    docs: dict[str, _Doc] = field(default_factory=dict)


@dataclass
class _Context:
    """A point in time or a scroll: a frozen snapshot of documents with an expiry."""

    docs: list[_Doc]
    mappings: dict[str, str]
    expires: float
    body: dict[str, Any] | None = None  # scrolls: the search body
    offset: int = 0  # scrolls: the next hit
    #: points in time: the sorted hits of each query and sort already run on the frozen snapshot, so a
    #: page after the first does not evaluate the query on every document again (the stub's cost)
    sorted_hits: dict[str, list[Any]] = field(default_factory=dict)


def _flatten_mapping(properties: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out.update(_flatten_mapping(spec["properties"], path + "."))
        else:
            out[path] = spec.get("type", "object")
            for sub, subspec in spec.get("fields", {}).items():
                out[f"{path}.{sub}"] = subspec.get("type", "keyword")
    return out


def _dynamic_types(source: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(source, dict):
        return out
    for key, value in source.items():
        path = f"{prefix}{key}"
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                out.update(_dynamic_types(item, path + "."))
            elif isinstance(item, bool):
                out.setdefault(path, "boolean")
            elif isinstance(item, int):
                out.setdefault(path, "long")
            elif isinstance(item, float):
                out.setdefault(path, "double")
            elif isinstance(item, str):
                if _DATE_LIKE.match(item):
                    out.setdefault(path, "date")
                else:
                    out.setdefault(path, "text")
                    out.setdefault(path + ".keyword", "keyword")
    return out


def field_values(source: Any, path: str) -> list[Any]:
    """The leaf values at a dotted ``path`` of a document, through nested objects and dotted keys."""
    if not isinstance(source, dict):
        return []
    parts = path.split(".")
    out: list[Any] = []
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key not in source:
            continue
        value = source[key]
        rest = ".".join(parts[i:])
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not rest:
                if item is not None and not isinstance(item, dict):
                    out.append(item)
            else:
                out.extend(field_values(item, rest))
    return out


def _to_nanos(value: Any, fmt: str | None = None) -> int | None:
    """A date value (ISO string or epoch millis) as epoch nanoseconds."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _to_nanos_cached(value, fmt)
    return None


@functools.lru_cache(maxsize=65536)
def _to_nanos_cached(value: Any, fmt: str | None) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if fmt == "epoch_second":
            return int(value * 1_000_000_000)
        return int(value * 1_000_000)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text) and (fmt in (None, "epoch_millis") or not _DATE_LIKE.match(text)):
        return int(text) * 1_000_000
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if pd.isna(ts):
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


def _format_nanos(nanos: int) -> str:
    seconds, frac = divmod(nanos, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    return f"{base}.{frac:09d}Z"


def _tokens(value: Any) -> list[str]:
    return list(_text_tokens(str(value)))


@functools.lru_cache(maxsize=65536)
def _text_tokens(text: str) -> tuple[str, ...]:
    # Cached: a query_string of 30 terms tokenizes every message once per term and per page, which
    # made one push-down search of the sample incident take 10 s on a loaded machine.
    return tuple(_TOKEN.findall(text.lower()))


class _QueryStringParser:
    """Recursive-descent parser for the query_string subset; returns a predicate on a document."""

    _LEX = re.compile(r'\s*(\(|\)|&&|\|\||!|"(?:[^"\\]|\\.)*"|(?:[^\s()"\\]|\\.)+)')

    def __init__(self, query: str, fields: list[str] | None, default_and: bool, stub_search: _Search) -> None:
        self.tokens = [m for m in self._LEX.findall(query) if m]
        self.pos = 0
        self.fields = fields
        self.default_and = default_and
        self.search = stub_search

    def parse(self) -> Callable[[_Doc], bool]:
        if not self.tokens:
            return lambda _doc: True
        pred = self._or()
        if self.pos < len(self.tokens):
            raise EsError(400, "query_shard_exception", f"Failed to parse query [{' '.join(self.tokens)}]")
        return pred

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Callable[[_Doc], bool]:
        parts = [self._and()]
        while self._peek() in ("OR", "||"):
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda doc: any(p(doc) for p in parts)

    def _and(self) -> Callable[[_Doc], bool]:
        parts = [self._unary()]
        explicit_and = False
        implicit: list[Callable[[_Doc], bool]] = []
        while (tok := self._peek()) is not None and tok not in ("OR", "||", ")"):
            if tok in ("AND", "&&"):
                self.pos += 1
                explicit_and = True
                parts.append(self._unary())
            else:
                implicit.append(self._unary())
        if implicit and not self.default_and:
            required = parts

            def default_or(doc: _Doc) -> bool:
                return all(p(doc) for p in required) or any(p(doc) for p in implicit)

            return default_or if not explicit_and else (lambda doc: all(p(doc) for p in required + implicit))
        parts += implicit
        if len(parts) == 1:
            return parts[0]
        return lambda doc: all(p(doc) for p in parts)

    def _unary(self) -> Callable[[_Doc], bool]:
        tok = self._peek()
        if tok in ("NOT", "!"):
            self.pos += 1
            inner = self._unary()
            return lambda doc: not inner(doc)
        if tok is not None and tok.startswith("-") and len(tok) > 1:
            self.tokens[self.pos] = tok[1:]
            inner = self._unary()
            return lambda doc: not inner(doc)
        return self._primary()

    def _primary(self) -> Callable[[_Doc], bool]:
        tok = self._peek()
        if tok is None:
            raise EsError(400, "query_shard_exception", "Failed to parse query: unexpected end")
        self.pos += 1
        if tok == "(":
            inner = self._or()
            if self._peek() != ")":
                raise EsError(400, "query_shard_exception", "Failed to parse query: missing )")
            self.pos += 1
            return inner
        fld: str | None = None
        term = tok
        m = re.match(r"^((?:[^:\\]|\\.)+):(.*)$", tok)
        if m and not tok.startswith('"'):
            fld, term = m.group(1).replace("\\", ""), m.group(2)
            if term == "" and self._peek() is not None:
                term = self._peek() or ""
                self.pos += 1
                if term == "(":
                    self.pos -= 1
                    saved = self.fields
                    self.fields = [fld]
                    inner = self._primary()
                    self.fields = saved
                    return inner
        fields = [fld] if fld else self.fields
        return self.search.string_match(fields, term)


class _Search:
    """Query evaluation, sorting and aggregations over a list of documents."""

    def __init__(self, mappings: Mapping[str, str]) -> None:
        self.mappings = mappings

    def ftype(self, name: str) -> str | None:
        ftype = self.mappings.get(name)
        return _TYPE_FAMILY.get(ftype, ftype) if ftype is not None else None

    def values(self, doc: _Doc, name: str) -> list[Any]:
        if name.endswith(".keyword") and self.ftype(name[: -len(".keyword")]) == "text":
            return [v for v in field_values(doc.source, name[: -len(".keyword")]) if isinstance(v, str)]
        return field_values(doc.source, name)

    # -- queries --------------------------------------------------------------------------------
    def compile(self, query: Mapping[str, Any] | None) -> Callable[[_Doc], bool]:
        if not query:
            return lambda _doc: True
        if len(query) != 1:
            raise EsError(400, "parsing_exception", "[_na] query malformed, no start_object after query name")
        ((kind, spec),) = query.items()
        if kind == "match_all":
            return lambda _doc: True
        if kind == "match_none":
            return lambda _doc: False
        if kind == "bool":
            return self._bool(spec)
        if kind in ("term", "terms"):
            ((name, wanted),) = ((k, v) for k, v in spec.items() if k != "boost")
            if kind == "term":
                wanted = [wanted["value"] if isinstance(wanted, dict) else wanted]
            return lambda doc: any(self._equals(name, v, w) for v in self.values(doc, name) for w in wanted)
        if kind == "exists":
            name = spec["field"]
            return lambda doc: bool(self.values(doc, name))
        if kind == "range":
            ((name, bounds),) = spec.items()
            return self._range(name, bounds)
        if kind in ("prefix", "wildcard"):
            ((name, pat),) = spec.items()
            value = pat["value"] if isinstance(pat, dict) else pat
            insensitive = isinstance(pat, dict) and pat.get("case_insensitive", False)
            pattern = value + "*" if kind == "prefix" else value
            return lambda doc: any(self._wild(pattern, str(v), bool(insensitive)) for v in self.values(doc, name))
        if kind == "match":
            ((name, spec2),) = spec.items()
            text = spec2["query"] if isinstance(spec2, dict) else spec2
            op_and = isinstance(spec2, dict) and str(spec2.get("operator", "or")).lower() == "and"
            wanted_tokens = _tokens(text)

            def match(doc: _Doc) -> bool:
                have = {t for v in self.values(doc, name) for t in _tokens(v)}
                hits = [t in have for t in wanted_tokens]
                return all(hits) if op_and else any(hits)

            return match
        if kind == "query_string":
            fields = spec.get("fields") or ([spec["default_field"]] if "default_field" in spec else None)
            if fields == ["*"]:
                fields = None
            default_and = str(spec.get("default_operator", "or")).lower() == "and"
            return _QueryStringParser(str(spec["query"]), fields, default_and, self).parse()
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]")

    def _bool(self, spec: Mapping[str, Any]) -> Callable[[_Doc], bool]:
        def clauses(key: str) -> list[Callable[[_Doc], bool]]:
            raw = spec.get(key, [])
            return [self.compile(q) for q in (raw if isinstance(raw, list) else [raw])]

        must = clauses("must") + clauses("filter")
        must_not = clauses("must_not")
        should = clauses("should")
        msm = spec.get("minimum_should_match", 1 if should and not must else 0)
        msm = int(msm)

        def pred(doc: _Doc) -> bool:
            if not all(p(doc) for p in must) or any(p(doc) for p in must_not):
                return False
            return msm == 0 or sum(1 for p in should if p(doc)) >= msm

        return pred

    def _equals(self, name: str, value: Any, wanted: Any) -> bool:
        ftype = self.ftype(name)
        if ftype == "text":
            return str(wanted) in _tokens(value)
        if ftype == "date":
            return _to_nanos(value) == _to_nanos(wanted)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value) == float(wanted)
            except (TypeError, ValueError):
                return False
        if isinstance(value, bool):
            return str(value).lower() == str(wanted).lower()
        return str(value) == str(wanted)

    def _range(self, name: str, bounds: Mapping[str, Any]) -> Callable[[_Doc], bool]:
        fmt = bounds.get("format")
        is_date = self.ftype(name) == "date"
        ops = {
            "gte": lambda a, b: a >= b,
            "gt": lambda a, b: a > b,
            "lte": lambda a, b: a <= b,
            "lt": lambda a, b: a < b,
        }
        checks: list[tuple[Callable[[Any, Any], bool], Any]] = []
        for op, bound in bounds.items():
            if op not in ops or bound is None:
                continue
            if is_date:
                nanos = _to_nanos(bound, fmt)
                if nanos is None:
                    raise EsError(400, "parse_exception", f"failed to parse date field [{bound}]")
                checks.append((ops[op], nanos))
            else:
                checks.append((ops[op], bound))

        def key(value: Any) -> Any:
            if is_date:
                return _to_nanos(value)
            return value

        def pred(doc: _Doc) -> bool:
            for value in self.values(doc, name):
                k = key(value)
                if k is None:
                    continue
                try:
                    if all(op(_num(k), _num(b)) for op, b in checks):
                        return True
                except TypeError:
                    continue
            return False

        return pred

    @staticmethod
    def _wild(pattern: str, value: str, insensitive: bool) -> bool:
        if insensitive:
            pattern, value = pattern.lower(), value.lower()
        return fnmatch.fnmatchcase(value, pattern)

    def string_match(self, fields: list[str] | None, term: str) -> Callable[[_Doc], bool]:
        phrase = term.startswith('"') and term.endswith('"') and len(term) >= 2
        text = term[1:-1] if phrase else term.replace("\\", "")
        range_m = re.match(r"^(>=|<=|>|<)(.+)$", text) if not phrase else None

        def match_value(name: str, value: Any) -> bool:
            ftype = self.ftype(name) or ("text" if isinstance(value, str) else "long")
            if range_m:
                op, bound = range_m.groups()
                rng = self._range(name, {{">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]: _coerce(bound)})
                return rng(_Doc("", {name: value}, ""))
            if ftype == "text":
                have = _tokens(value)
                if phrase:
                    wanted = _tokens(text)
                    n = len(wanted)
                    return any(have[i : i + n] == wanted for i in range(len(have) - n + 1)) if n else False
                if any(c in text for c in "*?"):
                    return any(fnmatch.fnmatchcase(t, text.lower()) for t in have)
                return all(t in have for t in _tokens(text)) and bool(_tokens(text))
            if any(c in text for c in "*?") and not phrase:
                return fnmatch.fnmatchcase(str(value), text)
            return self._equals(name, value, text)

        def pred(doc: _Doc) -> bool:
            names = fields if fields is not None else [f for f, t in self.mappings.items() if t in ("text", "keyword")]
            for name in names:
                pattern_names = [n for n in self.mappings if fnmatch.fnmatchcase(n, name)] if "*" in name else [name]
                for n in pattern_names:
                    if any(match_value(n, v) for v in self.values(doc, n)):
                        return True
            return False

        return pred

    # -- sorting ----------------------------------------------------------------------------------
    def sort_specs(self, sort: Any) -> list[tuple[str, str, str | None, Any]]:
        """(field, order, format, missing) per sort clause."""
        items = sort if isinstance(sort, list) else [sort]
        out: list[tuple[str, str, str | None, Any]] = []
        for item in items:
            if isinstance(item, str):
                name, _, order = item.partition(":")
                out.append((name, order or ("desc" if name == "_score" else "asc"), None, None))
            else:
                ((name, spec),) = item.items()
                if isinstance(spec, str):
                    out.append((name, spec, None, None))
                else:
                    out.append((name, spec.get("order", "asc"), spec.get("format"), spec.get("missing")))
        for name, _order, _fmt, _missing in out:
            if name not in ("_shard_doc", "_doc", "_score") and self.ftype(name) == "text":
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Text fields are not optimised for operations that require per-document field data like "
                    f"aggregations and sorting, so these operations are disabled by default. Please use a keyword "
                    f"field instead. Alternatively, set fielddata=true on [{name}] in order to load field data by "
                    f"uninverting the inverted index.",
                )
        return out

    def sort_values(self, doc: _Doc, position: int, specs: list[tuple[str, str, str | None, Any]]) -> list[Any]:
        """The sort values of ``doc`` as the response shows them."""
        out: list[Any] = []
        for name, order, fmt, missing in specs:
            if name in ("_shard_doc", "_doc"):
                out.append(position)
                continue
            if name == "_score":
                out.append(None)
                continue
            values = self.values(doc, name)
            if self.ftype(name) == "date":
                nanos = [n for n in (_to_nanos(v) for v in values) if n is not None]
                if not nanos:
                    out.append(LONG_MAX if (missing or "_last") == "_last" and order == "asc" else LONG_MIN)
                    continue
                pick = min(nanos) if order == "asc" else max(nanos)
                if (fmt and "nanos" in fmt) or fmt == "strict_date_optional_time":
                    out.append(_format_nanos(pick))
                else:
                    out.append(pick // 1_000_000)
            else:
                if not values:
                    numeric = self.ftype(name) in ("long", "integer", "double", "float")
                    out.append((LONG_MAX if order == "asc" else LONG_MIN) if numeric else None)
                    continue
                out.append(min(values) if order == "asc" else max(values))
        return out

    def sort_key(self, values: list[Any], specs: list[tuple[str, str, str | None, Any]]) -> list[Any]:
        """Comparable keys of sort values (dates as nanoseconds, sentinels kept)."""
        keys: list[Any] = []
        for value, (name, _order, fmt, _missing) in zip(values, specs, strict=False):
            if name not in ("_shard_doc", "_doc") and self.ftype(name) == "date":
                if isinstance(value, int) and value in (LONG_MAX, LONG_MIN):
                    keys.append(value)
                elif isinstance(value, int) and not (fmt and "nanos" in fmt):
                    keys.append(value * 1_000_000)
                else:
                    keys.append(_to_nanos(value))
            else:
                keys.append(value)
        return keys

    @staticmethod
    def compare(a: list[Any], b: list[Any], specs: list[tuple[str, str, str | None, Any]]) -> int:
        for x, y, (_n, order, _f, _m) in zip(a, b, specs, strict=False):
            if x == y:
                continue
            if x is None:
                return 1
            if y is None:
                return -1
            try:
                less = x < y
            except TypeError:
                less = str(x) < str(y)
            result = -1 if less else 1
            return result if order == "asc" else -result
        return 0

    # -- aggregations -----------------------------------------------------------------------------
    def aggregate(self, aggs: Mapping[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in aggs.items():
            sub = spec.get("aggs") or spec.get("aggregations") or {}
            kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
            if len(kinds) != 1:
                raise EsError(400, "parsing_exception", f"Expected one aggregation type in [{name}]")
            kind = kinds[0]
            body = spec[kind]
            if kind == "filter":
                matched = [d for d in docs if self.compile(body)(d)]
                out[name] = {"doc_count": len(matched), **self.aggregate(sub, matched)}
            elif kind == "filters":
                buckets = {}
                for key, query in body["filters"].items():
                    matched = [d for d in docs if self.compile(query)(d)]
                    buckets[key] = {"doc_count": len(matched), **self.aggregate(sub, matched)}
                out[name] = {"buckets": buckets}
            elif kind == "terms":
                out[name] = self._terms(body, sub, docs)
            elif kind == "date_histogram":
                out[name] = self._date_histogram(body, sub, docs)
            elif kind == "composite":
                out[name] = self._composite(body, sub, docs)
            elif kind in ("min", "max", "value_count"):
                vals = [v for d in docs for v in self.values(d, body["field"])]
                nums = [_to_nanos(v) // 1_000_000 if self.ftype(body["field"]) == "date" else v for v in vals]  # type: ignore[operator]
                if kind == "value_count":
                    out[name] = {"value": len(nums)}
                else:
                    out[name] = {"value": (min(nums) if kind == "min" else max(nums)) if nums else None}
            else:
                raise EsError(400, "parsing_exception", f"Unknown aggregation type [{kind}]")
        return out

    def _check_aggregatable(self, name: str) -> None:
        if self.ftype(name) == "text":
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Fielddata is disabled on [{name}] in [stub]. Text fields are not optimised for operations that "
                f"require per-document field data like aggregations and sorting. Please use a keyword field instead.",
            )

    def _terms(self, body: Mapping[str, Any], sub: Mapping[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        name = body["field"]
        self._check_aggregatable(name)
        groups: dict[Any, list[_Doc]] = {}
        for d in docs:
            for v in set(map(_hashable, self.values(d, name))):
                groups.setdefault(v, []).append(d)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
        size = int(body.get("size", 10))
        shown = ordered[:size]
        return {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(len(v) for _k, v in ordered[size:]),
            "buckets": [{"key": k, "doc_count": len(v), **self.aggregate(sub, v)} for k, v in shown],
        }

    def _interval_ms(self, body: Mapping[str, Any]) -> int:
        raw = body.get("fixed_interval") or _CALENDAR.get(str(body.get("calendar_interval", "")))
        if raw is None:
            raise EsError(400, "illegal_argument_exception", "Invalid interval specified, must be non-null")
        m = _INTERVAL.match(str(raw))
        if not m:
            raise EsError(400, "illegal_argument_exception", f"failed to parse setting [fixed_interval] [{raw}]")
        return int(m.group(1)) * _UNIT_MS[m.group(2)]

    @staticmethod
    def _offset_ms(body: Mapping[str, Any]) -> int:
        zone = str(body.get("time_zone", "UTC"))
        if zone.upper() in ("UTC", "Z", "GMT", "+00:00"):
            return 0
        m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", zone)
        if not m:
            raise EsError(400, "illegal_argument_exception", f"stub supports only fixed offsets, not [{zone}]")
        sign = -1 if m.group(1) == "-" else 1
        return sign * (int(m.group(2)) * 60 + int(m.group(3))) * 60_000

    def _bucket_key(self, doc: _Doc, name: str, interval: int, offset: int) -> int | None:
        nanos = [n for n in (_to_nanos(v) for v in self.values(doc, name)) if n is not None]
        if not nanos:
            return None
        ms = nanos[0] // 1_000_000
        return (ms + offset) // interval * interval - offset

    def _date_histogram(self, body: Mapping[str, Any], sub: Mapping[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        interval, offset = self._interval_ms(body), self._offset_ms(body)
        groups: dict[int, list[_Doc]] = {}
        for d in docs:
            key = self._bucket_key(d, body["field"], interval, offset)
            if key is not None:
                groups.setdefault(key, []).append(d)
        min_count = int(body.get("min_doc_count", 0))
        keys = sorted(groups)
        if min_count == 0:
            bounds = body.get("extended_bounds") or {}
            lo = [k for k in (keys[:1] or [])]
            hi = [k for k in (keys[-1:] or [])]
            for edge, target in (("min", lo), ("max", hi)):
                if edge in bounds:
                    nanos = _to_nanos(bounds[edge], body.get("format"))
                    if nanos is not None:
                        ms = nanos // 1_000_000
                        target.append((ms + offset) // interval * interval - offset)
            if lo and hi:
                keys = list(range(min(lo), max(hi) + 1, interval))
        buckets = []
        for key in keys:
            members = groups.get(key, [])
            if len(members) < min_count:
                continue
            buckets.append(
                {
                    "key_as_string": _format_nanos(key * 1_000_000),
                    "key": key,
                    "doc_count": len(members),
                    **self.aggregate(sub, members),
                }
            )
        return {"buckets": buckets}

    def _composite(self, body: Mapping[str, Any], sub: Mapping[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        sources: list[tuple[str, str, Mapping[str, Any]]] = []
        for item in body["sources"]:
            ((sname, sspec),) = item.items()
            ((skind, sbody),) = sspec.items()
            if skind not in ("terms", "date_histogram"):
                raise EsError(400, "illegal_argument_exception", f"stub composite: unsupported source [{skind}]")
            if skind == "terms":
                self._check_aggregatable(sbody["field"])
            sources.append((sname, skind, sbody))
        groups: dict[tuple[Any, ...], list[_Doc]] = {}
        for d in docs:
            per_source: list[list[Any]] = []
            for _sname, skind, sbody in sources:
                if skind == "terms":
                    vals: list[Any] = sorted(set(map(_hashable, self.values(d, sbody["field"]))), key=str)
                else:
                    key = self._bucket_key(d, sbody["field"], self._interval_ms(sbody), self._offset_ms(sbody))
                    vals = [] if key is None else [key]
                if not vals and sbody.get("missing_bucket"):
                    vals = [None]
                per_source.append(vals)
            for combo in itertools.product(*per_source):
                groups.setdefault(combo, []).append(d)

        def order_key(combo: tuple[Any, ...]) -> tuple[Any, ...]:
            # missing (null) keys sort first in ascending order, as in Elasticsearch
            return tuple((0, "") if v is None else (1, v) for v in combo)

        ordered = sorted(groups, key=order_key)
        after = body.get("after")
        if after:
            after_combo = tuple(after.get(sname) for sname, _k, _b in sources)
            ordered = [c for c in ordered if order_key(c) > order_key(after_combo)]
        page = ordered[: int(body.get("size", 10))]
        names = [sname for sname, _k, _b in sources]
        buckets = [
            {
                "key": dict(zip(names, combo, strict=True)),
                "doc_count": len(groups[combo]),
                **self.aggregate(sub, groups[combo]),
            }
            for combo in page
        ]
        out: dict[str, Any] = {"buckets": buckets}
        if buckets:
            out["after_key"] = buckets[-1]["key"]
        return out


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def _num(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


_SEARCH_KEYS = {
    "query",
    "size",
    "from",
    "sort",
    "search_after",
    "pit",
    "track_total_hits",
    "_source",
    "aggs",
    "aggregations",
    "timeout",
    "fields",
    "stored_fields",
    "version",
    "seq_no_primary_term",
    "explain",
    "min_score",
    "post_filter",
    "terminate_after",
    "runtime_mappings",
}


class EsStub:
    """An in-memory Elasticsearch over real HTTP. Start with ``with EsStub() as stub:`` or start()/stop().

    Args:
        emulate_major: the server major version (8 or 9; 10 stands for a server too new for client 8).
        product_header: send ``X-Elastic-Product: Elasticsearch`` (False: the client must refuse us).
        rotate_pit_id: answer each PIT search with a new ``pit_id`` (the old one stays valid).
        plain_json: always answer ``Content-Type: application/json``.
        expected_authorization: when set, requests whose ``Authorization`` header differs get a 401.
        pit_keep_alive_factor: multiply keep-alive durations (0 makes every PIT expire at once).
        reorder_snapshots: every point in time opened after the first sees the documents in reverse
            order, so their ``_shard_doc`` differs between points in time (as after a segment merge).
    """

    def __init__(
        self,
        *,
        emulate_major: int = 8,
        product_header: bool = True,
        rotate_pit_id: bool = False,
        plain_json: bool = False,
        expected_authorization: str | None = None,
        pit_keep_alive_factor: float = 1.0,
        reorder_snapshots: bool = False,
    ) -> None:
        self.emulate_major = emulate_major
        self.product_header = product_header
        self.rotate_pit_id = rotate_pit_id
        self.plain_json = plain_json
        self.expected_authorization = expected_authorization
        self.pit_keep_alive_factor = pit_keep_alive_factor
        self.reorder_snapshots = reorder_snapshots
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.indices: dict[str, _Index] = {}
        self.contexts: dict[str, _Context] = {}
        #: Every point-in-time id handed out (opened or rotated), in order.
        self.pit_ids_issued: list[str] = []
        self._calls: dict[str, int] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("esstub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> EsStub:
        handler = functools.partial(_Handler, self)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="esstub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EsStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers -----------------------------------------------------------------------------
    def add_fault(self, route: str, action: str, **kwargs: Any) -> Fault:
        """Add a :class:`Fault`; see there for routes and actions."""
        fault = Fault(route, action, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def create_index(self, name: str, mappings: Mapping[str, Any] | None = None) -> None:
        """Create an index directly (without HTTP)."""
        with self._lock:
            self.indices[name] = _Index(_flatten_mapping((mappings or {}).get("properties", {})))

    def add_documents(self, index: str, sources: list[Any], ids: list[str] | None = None) -> None:
        """Add documents directly (without HTTP), creating the index if needed."""
        with self._lock:
            idx = self.indices.setdefault(index, _Index())
            for i, source in enumerate(sources):
                doc_id = ids[i] if ids else str(len(idx.docs))
                idx.docs[doc_id] = _Doc(doc_id, source, index)
                for name, ftype in _dynamic_types(source).items():
                    idx.mappings.setdefault(name, ftype)

    def calls(self, route: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests of ``route`` (optionally of one HTTP method)."""
        with self._lock:
            return [r for r in self.requests if r.route == route and (method is None or r.method == method)]

    def open_contexts(self) -> int:
        """Points in time and scrolls that are still open."""
        with self._lock:
            return len(self.contexts)

    # -- dispatch ---------------------------------------------------------------------------------
    def route_of(self, method: str, parts: list[str]) -> str:
        last = parts[-1] if parts else ""
        if not parts:
            return "info"
        if last == "_bulk":
            return "bulk"
        if last == "_pit":
            return "pit_open" if method == "POST" else "pit_close"
        if parts[:2] == ["_search", "scroll"] or (parts[:1] == ["_search"] and len(parts) > 1):
            return "scroll"
        if last == "_search":
            return "search"
        if last == "_count":
            return "count"
        if last == "_field_caps":
            return "field_caps"
        return "index"

    def next_call(self, route: str) -> tuple[int, Fault | None]:
        with self._lock:
            n = self._calls[route] = self._calls.get(route, 0) + 1
            for fault in self.faults:
                if fault.applies(route, n):
                    return n, fault
            return n, None

    def handle(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Answer one request: (status, JSON body or None)."""
        route = self.route_of(method, parts)
        with self._lock:
            if route == "info":
                if method == "HEAD":
                    return 200, None
                return 200, self._info()
            if route == "bulk":
                return 200, self._bulk(parts[0] if len(parts) == 2 else None, body, query)
            if route == "pit_open":
                return 200, self._open_pit(parts[0], query)
            if route == "pit_close":
                return self._close(str((body or {}).get("id", "")))
            if route == "scroll":
                if method == "DELETE":
                    ids = (body or {}).get("scroll_id") or query.get("scroll_id", "")
                    return self._close(ids if isinstance(ids, str) else ids[0])
                scroll_id = (body or {}).get("scroll_id") or query.get("scroll_id", "")
                return 200, self._scroll_next(
                    str(scroll_id), str((body or {}).get("scroll", query.get("scroll", "1m")))
                )
            if route == "search":
                return 200, self._search(parts[0] if len(parts) == 2 else None, body or {}, query)
            if route == "count":
                docs, mappings = self._docs(parts[0] if len(parts) == 2 else "_all")
                pred = _Search(mappings).compile((body or {}).get("query"))
                return 200, {"count": sum(1 for d in docs if pred(d)), "_shards": _shards()}
            if route == "field_caps":
                return 200, self._field_caps(parts[0] if len(parts) == 2 else "_all", body, query)
            # index admin
            if len(parts) == 2 and parts[1] == "_refresh":
                self._resolve(parts[0])
                return 200, {"_shards": _shards()}
            if len(parts) == 1:
                name = parts[0]
                if method == "PUT":
                    if name in self.indices:
                        raise EsError(
                            400, "resource_already_exists_exception", f"index [{name}/stub] already exists", index=name
                        )
                    self.create_index(name, (body or {}).get("mappings"))
                    return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
                if method == "HEAD":
                    return (200 if self._resolve(name, strict=False) else 404), None
                if method == "DELETE":
                    for n in self._resolve(name):
                        del self.indices[n]
                    return 200, {"acknowledged": True}
                if method == "GET":
                    return 200, {n: {"mappings": {}, "settings": {}} for n in self._resolve(name)}
            raise EsError(400, "illegal_argument_exception", f"stub: unsupported request {method} /{'/'.join(parts)}")

    def _info(self) -> dict[str, Any]:
        return {
            "name": "esstub",
            "cluster_name": "esstub",
            "cluster_uuid": "esstub-uuid",
            "version": {
                "number": f"{self.emulate_major}.0.0",
                "build_flavor": "default",
                "lucene_version": "10.0.0" if self.emulate_major >= 9 else "9.12.0",
                "minimum_wire_compatibility_version": f"{self.emulate_major - 1}.18.0",
                "minimum_index_compatibility_version": f"{self.emulate_major - 1}.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def _resolve(self, expr: str, strict: bool = True) -> list[str]:
        names: list[str] = []
        for part in expr.split(","):
            if part in ("_all", "*"):
                names.extend(sorted(self.indices))
            elif "*" in part:
                names.extend(sorted(n for n in self.indices if fnmatch.fnmatchcase(n, part)))
            elif part in self.indices:
                names.append(part)
            elif strict:
                raise EsError(
                    404,
                    "index_not_found_exception",
                    f"no such index [{part}]",
                    **{"resource.type": "index_or_alias", "resource.id": part, "index": part},
                )
        return names

    def _docs(self, expr: str) -> tuple[list[_Doc], dict[str, str]]:
        docs: list[_Doc] = []
        mappings: dict[str, str] = {}
        for name in self._resolve(expr):
            docs.extend(self.indices[name].docs.values())
            for f, t in self.indices[name].mappings.items():
                mappings.setdefault(f, t)
        return docs, mappings

    def _new_id(self, prefix: str) -> str:
        return base64.b64encode(f"{prefix}-{next(self._ids)}".encode()).decode()

    def _keep_alive(self, text: str) -> float:
        m = _INTERVAL.match(text or "1m")
        seconds = int(m.group(1)) * _UNIT_MS[m.group(2)] / 1000 if m else 60.0
        return time.monotonic() + seconds * self.pit_keep_alive_factor

    def _open_pit(self, expr: str, query: Mapping[str, str]) -> dict[str, Any]:
        if "keep_alive" not in query:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not set;")
        docs, mappings = self._docs(expr)
        if self.reorder_snapshots and self.pit_ids_issued:
            docs = docs[::-1]
        pit_id = self._new_id("pit")
        self.contexts[pit_id] = _Context(list(docs), mappings, self._keep_alive(query["keep_alive"]))
        self.pit_ids_issued.append(pit_id)
        return {"id": pit_id, "_shards": _shards()}

    def _close(self, context_id: str) -> tuple[int, Any]:
        ctx = self.contexts.pop(context_id, None)
        if ctx is None:
            return 404, {"succeeded": True, "num_freed": 0}
        for other in [k for k, v in self.contexts.items() if v is ctx]:
            del self.contexts[other]  # rotated ids of the same point in time
        return 200, {"succeeded": True, "num_freed": 1}

    def _context(self, context_id: str) -> _Context:
        ctx = self.contexts.get(context_id)
        if ctx is None or ctx.expires < time.monotonic():
            self.contexts.pop(context_id, None)
            raise EsError(
                404,
                "search_context_missing_exception",
                f"No search context found for id [{context_id}]",
            )
        return ctx

    def expire_contexts(self) -> None:
        """Drop every open point in time and scroll, as a keep-alive lapse would."""
        with self._lock:
            self.contexts.clear()

    def _field_caps(self, expr: str, body: Any, query: Mapping[str, str]) -> dict[str, Any]:
        names = self._resolve(expr)
        raw = query.get("fields") or ((body or {}).get("fields", []) if isinstance(body, dict) else [])
        wanted = raw if isinstance(raw, str) else ",".join(raw)
        patterns = [p for p in wanted.split(",") if p]
        fields: dict[str, Any] = {}
        for name in names:
            for fname, ftype in self.indices[name].mappings.items():
                if any(fnmatch.fnmatchcase(fname, p) for p in patterns):
                    entry = fields.setdefault(fname, {}).setdefault(
                        ftype,
                        {"type": ftype, "metadata_field": False, "searchable": True, "aggregatable": ftype != "text"},
                    )
                    entry.setdefault("indices", []).append(name)
        for caps in fields.values():
            if len(caps) == 1:
                for entry in caps.values():
                    entry.pop("indices", None)
        return {"indices": names, "fields": fields}

    def _bulk(self, default_index: str | None, lines: Any, query: Mapping[str, str]) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        rows = list(lines or [])
        i = 0
        while i < len(rows):
            action = rows[i]
            i += 1
            ((op, meta),) = action.items()
            index = meta.get("_index", default_index)
            if index is None:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
            idx = self.indices.setdefault(index, _Index())
            doc_id = str(meta.get("_id") or self._new_id("doc"))
            item: dict[str, Any] = {"_index": index, "_id": doc_id}
            if op == "delete":
                found = idx.docs.pop(doc_id, None)
                item.update(status=200 if found else 404, result="deleted" if found else "not_found")
            else:
                source = rows[i] if i < len(rows) else None
                i += 1
                if not isinstance(source, dict):
                    item.update(
                        status=400,
                        error={"type": "document_parsing_exception", "reason": "[1:1] failed to parse: not an object"},
                    )
                elif op == "create" and doc_id in idx.docs:
                    item.update(
                        status=409,
                        error={
                            "type": "version_conflict_engine_exception",
                            "reason": f"[{doc_id}]: version conflict, document already exists",
                        },
                    )
                else:
                    created = doc_id not in idx.docs
                    idx.docs[doc_id] = _Doc(doc_id, source, index)
                    for name, ftype in _dynamic_types(source).items():
                        idx.mappings.setdefault(name, ftype)
                    item.update(
                        _version=1,
                        result="created" if created else "updated",
                        status=201 if created else 200,
                        _shards={"total": 1, "successful": 1, "failed": 0},
                        _seq_no=0,
                        _primary_term=1,
                    )
            items.append({op: item})
        return {"took": 1, "errors": any("error" in next(iter(it.values())) for it in items), "items": items}

    def _search(self, expr: str | None, body: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
        unknown = set(body) - _SEARCH_KEYS
        if unknown:
            raise EsError(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{sorted(unknown)[0]}].")
        pit = body.get("pit")
        if pit and expr:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with "
                "point in time.;",
            )
        if "search_after" in body and "sort" not in body:
            raise EsError(
                400, "action_request_validation_exception", "Validation Failed: 1: [search_after] requires sort;"
            )
        size = int(body.get("size", query.get("size", 10)))
        start = int(body.get("from", 0))
        if start + size > 10_000:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Result window is too large, from + size must be less than or equal to: [10000] but was "
                f"[{start + size}].",
            )
        pit_id: str | None = None
        if pit:
            ctx = self._context(str(pit["id"]))
            ctx.expires = max(ctx.expires, self._keep_alive(str(pit.get("keep_alive", "1m"))))
            docs, mappings = ctx.docs, ctx.mappings
            pit_id = str(pit["id"])
            if self.rotate_pit_id:
                pit_id = self._new_id("pit")
                self.contexts[pit_id] = ctx
                self.pit_ids_issued.append(pit_id)
        else:
            docs, mappings = self._docs(expr or "_all")
        try:
            result = self._run_search(docs, mappings, body, pit=bool(pit), cache=ctx.sorted_hits if pit else None)
        except EsError as exc:
            cause = exc.body["error"]
            if cause["type"] not in ("query_shard_exception", "parse_exception"):
                raise
            # Shard-level failures come back wrapped, as Elasticsearch does.
            wrapped = EsError(400, "search_phase_execution_exception", "all shards failed", phase="query", grouped=True)
            wrapped.body["error"]["root_cause"] = [{"type": cause["type"], "reason": cause["reason"]}]
            wrapped.body["error"]["failed_shards"] = [{"shard": 0, "index": expr or "pit", "reason": cause}]
            raise wrapped from exc
        if pit_id is not None:
            result = {"pit_id": pit_id, **result}
        if "scroll" in query:
            scroll_id = self._new_id("scroll")
            self.contexts[scroll_id] = _Context(
                list(docs), mappings, self._keep_alive(query["scroll"]), dict(body), size
            )
            result = {"_scroll_id": scroll_id, **result}
        return result

    def _run_search(
        self,
        docs: list[_Doc],
        mappings: Mapping[str, str],
        body: Mapping[str, Any],
        pit: bool,
        cache: dict[str, list[Any]] | None = None,
    ) -> dict[str, Any]:
        search = _Search(mappings)
        if "sort" not in body or body.get("aggs") or body.get("aggregations"):
            cache = None
        key = json.dumps([body.get("query"), body.get("sort")], sort_keys=True, default=str)
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            pred = search.compile(body.get("query"))
            matched = [(pos, d) for pos, d in enumerate(docs) if pred(d)]
        hits_out: list[dict[str, Any]] = []
        size = int(body.get("size", 10))
        start = int(body.get("from", 0))
        if "sort" in body:
            specs = search.sort_specs(body["sort"])
            if pit and not any(name == "_shard_doc" for name, *_ in specs):
                specs.append(("_shard_doc", "asc", None, None))
            if cached is None:
                rows = [(search.sort_values(d, pos, specs), d) for pos, d in matched]
                keyed = [(search.sort_key(vals, specs), vals, d) for vals, d in rows]
                keyed.sort(key=functools.cmp_to_key(lambda a, b: _Search.compare(a[0], b[0], specs)))
                if cache is not None:
                    cache[key] = keyed
            else:
                keyed = cached
                matched = [(0, d) for _k, _v, d in keyed]
            if "search_after" in body:
                after = list(body["search_after"])
                if len(after) != len(specs):
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        f"search_after has {len(after)} value(s) but sort has {len(specs)}.",
                    )
                after_key = search.sort_key(after, specs)
                keyed = [k for k in keyed if _Search.compare(k[0], after_key, specs) > 0]
            page = keyed[start : start + size]
            for _key, vals, d in page:
                hits_out.append(self._hit(d, body, vals))
        else:
            for _pos, d in matched[start : start + size]:
                hits_out.append(self._hit(d, body, None))
        result: dict[str, Any] = {"took": 1, "timed_out": False, "_shards": _shards()}
        hits: dict[str, Any] = {"max_score": None, "hits": hits_out}
        tth = body.get("track_total_hits", 10_000)
        if tth is not False:
            limit = math.inf if tth is True else int(tth)
            total = len(matched)
            hits = {
                "total": {"value": min(total, limit), "relation": "gte" if total > limit else "eq"},  # type: ignore[type-var]
                **hits,
            }
        result["hits"] = hits
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            result["aggregations"] = search.aggregate(aggs, [d for _p, d in matched])
        return result

    @staticmethod
    def _hit(doc: _Doc, body: Mapping[str, Any], sort_values: list[Any] | None) -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": doc.index, "_id": doc.id, "_score": None}
        wanted = body.get("_source", True)
        if wanted is True or wanted is None:
            hit["_source"] = doc.source
        elif wanted is not False and isinstance(doc.source, dict):
            includes = wanted if isinstance(wanted, list) else wanted.get("includes", [])
            includes = [includes] if isinstance(includes, str) else includes
            hit["_source"] = {
                k: v
                for k, v in doc.source.items()
                if any(k == p or fnmatch.fnmatchcase(k, p) or p.startswith(k + ".") for p in includes)
            }
        if sort_values is not None:
            hit["sort"] = sort_values
        return hit

    def _scroll_next(self, scroll_id: str, keep_alive: str) -> dict[str, Any]:
        ctx = self._context(scroll_id)
        ctx.expires = self._keep_alive(keep_alive)
        body = dict(ctx.body or {})
        body["from"] = ctx.offset
        body.pop("aggs", None)
        body.pop("aggregations", None)
        result = self._run_search(ctx.docs, ctx.mappings, body, pit=False)
        ctx.offset += int(body.get("size", 10))
        return {"_scroll_id": scroll_id, **result}


def _shards(failed: int = 0) -> dict[str, int]:
    return {"total": 1 + failed, "successful": 1, "skipped": 0, "failed": failed}


def _media_error(found: str, major: int) -> dict[str, Any]:
    return {
        "error": {
            "root_cause": [
                {
                    "type": "media_type_header_exception",
                    "reason": "Invalid media-type value on headers [Accept, Content-Type]",
                }
            ],
            "type": "media_type_header_exception",
            "reason": "Invalid media-type value on headers [Accept, Content-Type]",
            "caused_by": {
                "type": "status_exception",
                "reason": f"Accept version must be either version {major} or {major - 1}, but found {found}. "
                f"Accept=application/vnd.elasticsearch+json; compatible-with={found}",
            },
        },
        "status": 400,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, stub: EsStub, *args: Any, **kwargs: Any) -> None:
        self.stub = stub
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests assert on the recorded requests instead

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        stub = self.stub
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/") if p]
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(headers.get("content-length", "0") or 0))
        if headers.get("content-encoding") == "gzip" and raw:
            raw = gzip.decompress(raw)
        route = stub.route_of(self.command, parts)
        body: Any = None
        parse_error: str | None = None
        if raw:
            text = raw.decode("utf-8", errors="replace")
            try:
                if route == "bulk":
                    body = [json.loads(line) for line in text.splitlines() if line.strip()]
                else:
                    body = json.loads(text)
            except json.JSONDecodeError as exc:
                body, parse_error = text, str(exc)
        with stub._lock:
            stub.requests.append(RecordedRequest(self.command, split.path, query, headers, body, route))
        _n, fault = stub.next_call(route)
        compat = self._compat_check(headers, bool(raw))
        if compat is not None:
            self._send(*compat, compat_major=None)
            return
        accept_m = _COMPAT.search(headers.get("accept", ""))
        compat_major = int(accept_m.group(1)) if accept_m and not stub.plain_json else None
        if stub.expected_authorization is not None and headers.get("authorization") != stub.expected_authorization:
            fault = Fault(route, "unauthorized")
        extra_headers: dict[str, str] = {}
        product = stub.product_header
        if fault is not None:
            action = fault.action
            if action == "status":
                names = {
                    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
                    500: ("internal_server_error", "stub: internal error"),
                    502: ("bad_gateway", "stub: bad gateway"),
                    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
                    504: ("gateway_timeout", "stub: gateway timeout"),
                }
                etype, reason = names.get(fault.status, ("status_exception", "stub fault"))
                self._send(fault.status, EsError(fault.status, etype, reason).body, compat_major)
                return
            if action == "delay":
                time.sleep(fault.delay)
            elif action == "drop":
                self.close_connection = True
                with contextlib_suppress():
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            elif action == "unauthorized":
                err = EsError(
                    401,
                    "security_exception",
                    "unable to authenticate user [stub] for REST request [/]",
                    header={"WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]},
                )
                self._send(401, err.body, compat_major, {"WWW-Authenticate": 'Basic realm="security"'})
                return
            elif action == "forbidden":
                err = EsError(403, "security_exception", "action [indices:data/read/search] is unauthorized for user")
                self._send(403, err.body, compat_major)
                return
            elif action == "html_502":
                page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
                self._send_raw(502, page, "text/html", product=False)
                return
            elif action == "invalid_json":
                self._send_raw(200, b'{"took": 1, "timed_out": false, "hits": {"hits": [', "application/json", True)
                return
            elif action == "no_product_header":
                product = False
            elif action == "warning":
                extra_headers["Warning"] = (
                    f'299 Elasticsearch-{stub.emulate_major}.0.0-stub "[stub] this request uses a deprecated feature"'
                )
            elif action == "pit_expired":
                pit = (body or {}).get("pit") if isinstance(body, dict) else None
                if pit:
                    with stub._lock:
                        stub.contexts.pop(str(pit.get("id")), None)
                err = EsError(404, "search_context_missing_exception", "No search context found for id [stub]")
                self._send(404, err.body, compat_major)
                return
        if parse_error is not None:
            err = EsError(400, "x_content_parse_exception", f"[1:1] failed to parse JSON: {parse_error}")
            self._send(400, err.body, compat_major)
            return
        try:
            status, payload = stub.handle(self.command, parts, query, body)
        except EsError as exc:
            self._send(exc.status, exc.body, compat_major)
            return
        except Exception as exc:  # a stub bug must show as a 500, not as a dropped connection
            traceback.print_exc()
            self._send(500, EsError(500, "stub_exception", repr(exc)).body, compat_major)
            return
        if fault is not None and isinstance(payload, dict):
            if fault.action == "partial_shards" and "_shards" in payload:
                payload["_shards"] = {
                    **_shards(failed=1),
                    "failures": [
                        {
                            "shard": 1,
                            "index": "stub",
                            "node": "stub-node",
                            "reason": {
                                "type": "node_not_connected_exception",
                                "reason": "[stub-node] Node not connected",
                            },
                        }
                    ],
                }
            elif fault.action == "timed_out":
                payload["timed_out"] = True
        if fault is not None and fault.action == "truncate":
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data) + 100))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib_suppress():
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, payload, compat_major, extra_headers, product=product)

    def _compat_check(self, headers: Mapping[str, str], has_body: bool) -> tuple[int, Any] | None:
        major = self.stub.emulate_major
        accept = headers.get("accept", "")
        ctype = headers.get("content-type", "") if has_body else ""
        a = _COMPAT.search(accept)
        c = _COMPAT.search(ctype)
        for m in (a, c):
            if m and int(m.group(1)) not in (major, major - 1):
                return 400, _media_error(m.group(1), major)
        if has_body and (a is None) != (c is None):
            return 400, {
                "error": {
                    "root_cause": [{"type": "media_type_header_exception", "reason": "Invalid media-type value"}],
                    "type": "media_type_header_exception",
                    "reason": "Invalid media-type value on headers [Accept, Content-Type]",
                    "caused_by": {
                        "type": "status_exception",
                        "reason": "A compatible version is required on both Content-Type and Accept headers if either "
                        "one has requested a compatible version.",
                    },
                },
                "status": 400,
            }
        if has_body:
            base = ctype.split(";")[0].strip().lower()
            if base not in (
                "application/json",
                "application/x-ndjson",
                "application/vnd.elasticsearch+json",
                "application/vnd.elasticsearch+x-ndjson",
            ):
                return 406, {"error": f"Content-Type header [{ctype}] is not supported", "status": 406}
        return None

    def _send(
        self,
        status: int,
        payload: Any,
        compat_major: int | None,
        extra_headers: Mapping[str, str] | None = None,
        product: bool | None = None,
    ) -> None:
        ctype = (
            f"application/vnd.elasticsearch+json;compatible-with={compat_major}"
            if compat_major is not None
            else "application/json"
        )
        data = b"" if payload is None else json.dumps(payload).encode()
        self._send_raw(status, data, ctype, self.stub.product_header if product is None else product, extra_headers)

    def _send_raw(
        self,
        status: int,
        data: bytes,
        ctype: str,
        product: bool,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if product:
                self.send_header("X-Elastic-Product", "Elasticsearch")
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to answer


class contextlib_suppress:  # noqa: N801
    """Suppress OSError while tearing down a socket on purpose."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)


# -- loading event frames --------------------------------------------------------------------------

#: Explicit ECS mappings used by :func:`load_events`, so that keyword fields aggregate as in a
#: real ``logs-*`` data stream.
ECS_MAPPINGS: dict[str, Any] = {
    "properties": {
        "@timestamp": {"type": "date_nanos"},
        "message": {"type": "text"},
        "log": {"properties": {"level": {"type": "keyword"}}},
        "service": {"properties": {"name": {"type": "keyword"}}},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "trace": {"properties": {"id": {"type": "keyword"}}},
        "transaction": {"properties": {"id": {"type": "keyword"}}},
        "http": {
            "properties": {
                "request": {"properties": {"method": {"type": "keyword"}}},
                "response": {"properties": {"status_code": {"type": "long"}}},
            }
        },
        "url": {"properties": {"path": {"type": "keyword"}}},
        "user": {"properties": {"id": {"type": "keyword"}}},
        "client": {"properties": {"ip": {"type": "ip"}}},
        "event": {
            "properties": {
                "kind": {"type": "keyword"},
                "dataset": {"type": "keyword"},
                "duration": {"type": "long"},
                "action": {"type": "keyword"},
                "id": {"type": "keyword"},
            }
        },
        "rule": {"properties": {"name": {"type": "keyword"}}},
    }
}

#: Event column -> ECS field written by :func:`events_to_documents`.
_COLUMN_TO_ECS: dict[str, str] = {
    "message": "message",
    "level": "log.level",
    "service": "service.name",
    "host": "host.name",
    "trace_id": "trace.id",
    "request_id": "transaction.id",
    "http_status": "http.response.status_code",
    "http_method": "http.request.method",
    "url_path": "url.path",
    "user": "user.id",
    "client_ip": "client.ip",
    "alert_name": "rule.name",
    "alert_id": "event.id",
}


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *heads, last = key.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


def events_to_documents(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Event rows as nested ECS documents (the inverse of the connector's mapping).

    Requests of access-log formats get ``event.dataset`` set to their format name, so the connector
    keeps them as edge requests; alerts get ``event.kind: alert``, ``rule.name`` and
    ``kibana.alert.status`` (active/recovered).
    """
    frame = events.reset_index(drop=True)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    flat = pd.DataFrame(index=frame.index)
    fraction = (ts.dt.microsecond * 1000 + ts.dt.nanosecond).astype(str).str.zfill(9)
    flat["@timestamp"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"  # nanoseconds kept
    for column, ecs in _COLUMN_TO_ECS.items():
        if column in frame.columns:
            flat[ecs] = frame[column].astype(object).where(frame[column].notna(), None)
    if "duration_ms" in frame.columns:
        dur = (frame["duration_ms"] * 1e6).round()
        flat["event.duration"] = dur.astype(object).where(dur.notna(), None)
    if "kind" in frame.columns:
        is_alert = frame["kind"] == "alert"
        flat["event.kind"] = pd.Series("event", index=frame.index).where(~is_alert.fillna(False), "alert")
        if "alert_state" in frame.columns:
            state = frame["alert_state"].map({"firing": "active", "resolved": "recovered", "acknowledged": "active"})
            flat["kibana.alert.status"] = state.astype(object).where(is_alert.fillna(False) & state.notna(), None)
            acked = (frame["alert_state"] == "acknowledged").fillna(False).astype(bool)
            flat["kibana.alert.workflow_status"] = pd.Series("acknowledged", index=frame.index).where(acked, None)
    if "format" in frame.columns:
        fmt = frame["format"].astype(object)
        edge = fmt.fillna("").astype(str).str.startswith("access")
        flat["event.dataset"] = fmt.where(edge, None)
    records = flat.to_dict(orient="records")
    return [_nest({k: v for k, v in rec.items() if v is not None and v == v}) for rec in records]


def load_events(url: str, index: str, events_frame: pd.DataFrame, **client_options: Any) -> int:
    """Bulk-load an event frame into ``index`` as ECS documents through the real client's ``helpers.bulk``.

    Creates the index with :data:`ECS_MAPPINGS` first when it does not exist. Returns the number of
    documents indexed. Works against the stub and against a real cluster.
    """
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch(url, **client_options)
    try:
        if not es.indices.exists(index=index):
            es.indices.create(index=index, mappings=ECS_MAPPINGS)
        docs = events_to_documents(events_frame)
        actions: Iterator[dict[str, Any]] = ({"_index": index, "_id": str(i), "_source": d} for i, d in enumerate(docs))
        ok, _errors = helpers.bulk(es, actions, refresh="wait_for")
        return int(ok)
    finally:
        es.close()
