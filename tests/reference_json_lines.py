"""The JSON-lines reading of ``connectors/log_formats.py`` before the Rust core (commit 1051d5e), frozen.

This is the pre-Rust implementation, kept as the differential oracle of
``tests/connectors/test_json_parity.py``: the package now decodes JSON lines in ``core/src/json_lines.rs``,
and the parity test compares the two on every input it has. Do not change this module to follow the
package: it records what the package did. Generic building blocks that the Rust core did not replace
(``assemble``, ``json_quote``, ``fields_json``, the time parsers, the inner reparse of container lines)
are imported from the package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pmtimeline.connectors.log_formats import (
    _reparse_inner,
    _text,
    assemble,
    fields_json,
    json_quote,
)
from pmtimeline.connectors.timeformats import (
    arrow_strings,
    extract_groups,
    match_text,
    parse_iso8601,
    parse_timestamp_text,
)
from pmtimeline.schema import ECS_FIELD_MAP, FIELD_ALIASES, KUBERNETES_FIELD_MAP, STRING, normalize_levels

#: Lower-cased alias -> (priority, column): ECS dotted names first, then the common aliases, then the
#: Kubernetes metadata of log shippers.
_KEY_TARGETS: Final[dict[str, tuple[int, str]]] = {
    **{
        key.lower(): (i, col)
        for i, (key, col) in enumerate(KUBERNETES_FIELD_MAP.items(), start=len(ECS_FIELD_MAP) + len(FIELD_ALIASES))
    },
    **{key.lower(): (i, col) for i, (key, col) in enumerate(FIELD_ALIASES.items(), start=len(ECS_FIELD_MAP))},
    **{key.lower(): (i, col) for i, (key, col) in enumerate(ECS_FIELD_MAP.items())},
}
_REQUEST_COLUMNS: Final = ("http_status", "http_method", "url_path")
#: Numeric levels of pino and bunyan (JSON loggers for Node.js).
_PINO_LEVELS: Final = {"10": "trace", "20": "debug", "30": "info", "40": "warning", "50": "error", "60": "critical"}


def _as_key_text(values: pd.Series) -> pd.Series:
    """Any column (str, numbers, bools, mixed objects) as text: 500, "500" -> "500"; None -> NA."""
    if pd.api.types.is_float_dtype(values.dtype):
        # Whole numbers print as integers up to the int64 range, so an epoch in nanoseconds read into a
        # float column (beside a fractional epoch) stays "1709251200000000000", not "1.7092512e+18".
        whole = values.notna() & (values == np.floor(values)) & (values.abs() < 2**63)
        as_int = values.where(whole).astype("Int64").astype(STRING)
        return as_int.where(whole, values.astype(STRING)).astype(STRING)
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"}).astype(STRING)
    if values.dtype == object:
        return values.map(_scalar_text, na_action="ignore").astype(STRING)
    return values.astype(STRING)


def _scalar_text(value: object) -> str | None:
    # Only used on the per-line fallback path (object columns from json.loads).
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    return str(value)


def _json_value(values: pd.Series) -> pd.Series:
    """Encoded JSON values of a column (strings quoted, numbers and bools bare)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"}).astype(STRING)
    if pd.api.types.is_numeric_dtype(values.dtype):
        text = _as_key_text(values)
        return text.where(~text.isin(["nan", "inf", "-inf", "NaN"]), pd.NA)
    if values.dtype == object:
        return values.map(lambda v: json.dumps(v, ensure_ascii=False, default=str), na_action="ignore").astype(STRING)
    return json_quote(values.astype(STRING))


_NUMERIC_TARGETS: Final = frozenset({"http_status", "duration_ms"})


def map_record_columns(records: pd.DataFrame, index: pd.Index) -> dict[str, pd.Series]:
    """Map the columns of structured records (dotted key names) onto event columns.

    Keys are looked up (case-insensitively) in :data:`schema.ECS_FIELD_MAP`, then in
    :data:`schema.FIELD_ALIASES`; where several keys map to one column, the earlier mapping wins
    row by row. Returns the event columns as text (``timestamp`` included, not yet parsed), typed
    columns coerced (``http_status`` "500"/500/null -> 500/500/NA), ``duration_ms`` from ECS
    ``event.duration`` nanoseconds, and ``fields`` with every key that mapped to nothing.
    """
    by_target: dict[str, list[tuple[int, str]]] = {}
    rest: list[str] = []
    # Words under a numeric key ("status": "failed") are kept in ``fields``, not dropped.
    worded: dict[str, pd.Series] = {}
    for name in records.columns:
        mapping = _KEY_TARGETS.get(str(name).lower())
        if mapping is None:
            rest.append(str(name))
        else:
            by_target.setdefault(mapping[1], []).append((mapping[0], str(name)))
    out: dict[str, pd.Series] = {}
    for target, keys in by_target.items():
        combined: pd.Series | None = None
        for _, key in sorted(keys):
            column = records[key]
            text: pd.Series
            if target in _NUMERIC_TARGETS:
                if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
                    # Already numbers (the JSON reader typed them): no round trip through text.
                    text = column.astype("float64").set_axis(index)
                else:
                    raw = _as_key_text(column).set_axis(index)
                    text = pd.to_numeric(raw, errors="coerce").astype("float64").set_axis(index)
                    words = raw.where(text.isna() & raw.notna())
                    if bool(words.notna().any()):
                        worded[key] = json_quote(words)
                if target == "duration_ms" and key.lower() == "event.duration":
                    text = text / 1e6  # ECS: nanoseconds
            else:
                text = _as_key_text(column).set_axis(index)
            combined = text if combined is None else combined.fillna(text)
        assert combined is not None
        out[target] = combined
    if "service" in out:
        # Docker's log drivers write the container name as "/name".
        out["service"] = out["service"].str.removeprefix("/").astype(STRING)
    if "http_status" in out:
        out["http_status"] = pd.to_numeric(out["http_status"], errors="coerce").round().astype("Int64")
    if "duration_ms" in out:
        out["duration_ms"] = pd.to_numeric(out["duration_ms"], errors="coerce").astype("float64")
    if "level" in out:
        raw_level = out["level"]
        # pino/bunyan write numbers (10 trace ... 60 fatal); they are unambiguous, unlike 0-7, which
        # could be syslog severities or something else and are not guessed.
        numeric = raw_level.map(_PINO_LEVELS).astype(STRING)
        out["level"] = numeric.fillna(normalize_levels(raw_level))
    encoded = {key: _json_value(records[key]).set_axis(index) for key in rest}
    out["fields"] = fields_json({**encoded, **worded}, index)
    return out


def _records_frame(
    index: pd.Index, records: pd.DataFrame, ok: pd.Series, reject_reason: pd.Series, *, inner_kind: str = "log"
) -> pd.DataFrame:
    """ParsedLines from structured records aligned with ``index`` (rows where ``ok`` is False are
    rejected with ``reject_reason``)."""
    mapped = map_record_columns(records, index) if len(records.columns) else {}
    ts_text = mapped.pop("timestamp", pd.Series(pd.NA, index=index, dtype=STRING))
    times = parse_timestamp_text(ts_text.where(ok))
    reason = reject_reason.copy()
    blank = ts_text.isna() | (ts_text.str.strip() == "").fillna(True)
    reason = reason.mask(ok & blank, "no_timestamp")
    reason = reason.mask(ok & ~blank & ~times.parsed, "bad_timestamp")
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    head = ok & times.parsed
    request = pd.Series(False, index=index)
    for name in _REQUEST_COLUMNS:
        if name in mapped:
            request |= mapped[name].notna()
    columns: dict[str, pd.Series | str] = dict(mapped)
    columns["kind"] = pd.Series(inner_kind, index=index, dtype=STRING).mask(request, "request")
    return assemble(index, head=head, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)


def _flatten_table(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    return table


def _flatten_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    # Iterative (an explicit stack), so no input depth can exhaust Python's call stack.
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [("", iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                stack.append((name + ".", iter(value.items())))
                break
            flat[name] = value
        else:
            stack.pop()
    return flat


#: JSON nested deeper than this many objects/arrays is rejected ``too_deep`` before any parser sees it:
#: the decoders (``json``, pyarrow's schema handling) recurse once per level, and no log record needs more.
MAX_JSON_DEPTH: Final = 64
REJECT_TOO_DEEP: Final = "too_deep"
# A JSON string literal (RE2): its brackets do not nest.
_JSON_STRING: Final = r'"(?:[^"\\]|\\.)*"'


def json_too_deep(lines: pd.Series, limit: int = MAX_JSON_DEPTH) -> pd.Series:
    """Where a line's JSON nests objects and arrays more than ``limit`` deep (brackets inside strings
    do not count). Vectorized: only lines with more than ``limit`` opening brackets at all (rare) are
    measured exactly, each in time linear in its length."""
    text = _text(lines)
    openings = pl.Series(arrow_strings(text)).str.count_matches(r"[\[{]").fill_null(0).to_numpy()
    deep = np.zeros(len(text), dtype=bool)
    for position in np.flatnonzero(openings > limit):
        deep[position] = nesting_depth(str(text.iloc[position])) > limit
    return pd.Series(deep, index=text.index, dtype=bool)


def nesting_depth(line: str) -> int:
    """How deep a JSON text nests objects and arrays: a running sum of brackets outside strings."""
    # RE2 (through polars): linear in the line whatever its quotes.
    bare = pl.Series([line]).str.replace_all(_JSON_STRING, '""').item()
    codes = np.frombuffer(str(bare).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    if not len(codes):
        return 0
    step = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS).astype(np.int64)
    return int(np.cumsum(step).max())


_OPENERS: Final = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS: Final = np.frombuffer(b"]}", dtype=np.uint8)


def _loads_object(line: str) -> tuple[dict[str, Any] | None, str | None]:
    if line.count("{") + line.count("[") > MAX_JSON_DEPTH and nesting_depth(line) > MAX_JSON_DEPTH:
        return None, REJECT_TOO_DEEP
    try:
        obj = json.loads(line)
    except RecursionError:  # only reachable with a Python recursion limit below MAX_JSON_DEPTH
        return None, REJECT_TOO_DEEP
    except ValueError:
        return None, "json_decode"
    if not isinstance(obj, dict):
        return None, "json_not_object"
    if "\\ud" in line or "\\uD" in line:
        # A lone surrogate escape ("\ud800") decodes to a str that is not valid Unicode and cannot
        # become Arrow text: keep the value, with U+FFFD in place of the broken code unit.
        text = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        obj = json.loads(text)
    return _flatten_dict(obj), None


def parse_json_records(lines: pd.Series) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Decode JSON-object lines into flattened records (dotted keys), aligned with ``lines``.

    Returns (records, ok, reject_reason). The fast path hands the whole block to
    ``pyarrow.json.read_json`` (multi-threaded C++). pyarrow refuses a whole block when any line is
    malformed or when a key changes type between lines (status "500" here, 500 there), and it does
    not say which line; only then does the block go through ``json.loads`` line by line, so that each
    bad line gets its own reject reason and types are coerced per column afterwards. A line nested
    deeper than :data:`MAX_JSON_DEPTH` is rejected ``too_deep`` without being decoded.
    """
    text = _text(lines)
    index = text.index
    # A line that does not start with "{" and end with "}" cannot be an object: it is decoded on its
    # own (to name the reason) and the rest of the block keeps the fast path.
    objectish = match_text(text, r"^\s*\{") & match_text(text, r"\}\s*$")
    # Too deep for the recursive decoders: rejected ``too_deep`` by _loads_object, never parsed.
    objectish &= ~json_too_deep(text)
    if bool(objectish.any()):
        candidates = text[objectish]
        table = _read_json_block(candidates)
        if table is not None and table.num_rows == len(candidates):
            records = _table_records(table, candidates.index).reindex(index)
            reasons = pd.Series(pd.NA, index=index, dtype=STRING)
            if not bool(objectish.all()):
                others = text[~objectish]
                reasons.loc[others.index] = [_loads_object(line)[1] or "json_not_object" for line in others.fillna("")]
            return records, reasons.isna(), reasons
    decoded = [_loads_object(line) if isinstance(line, str) else (None, "json_decode") for line in text.tolist()]
    objects = [obj if obj is not None else {} for obj, _ in decoded]
    reasons = pd.Series([reason for _, reason in decoded], index=index, dtype=STRING)
    records = pd.DataFrame.from_records(objects, index=index) if objects else pd.DataFrame(index=index)
    records = records.astype(object).where(records.notna(), None)
    return records, reasons.isna(), reasons


#: Lines of a block that pyarrow reads first to infer the schema (see :func:`_read_json_block`).
_JSON_SCHEMA_SAMPLE: Final = 1000


def _without_timestamps(arrow_type: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type) or pa.types.is_time(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([f.with_type(_without_timestamps(f.type)) for f in arrow_type])
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(_without_timestamps(arrow_type.value_type))
    return arrow_type


def _read_json_block(text: pd.Series) -> pa.Table | None:
    """Read JSON-object lines with pyarrow, or None when pyarrow refuses the block.

    pyarrow turns ISO 8601 strings into timestamps on its own (converting offsets to UTC), which
    would lose the text as written; so the schema is inferred on the first lines and read again
    with those columns declared as strings. Timestamp columns that only appear later are cast back
    to text afterwards (their text may then differ in form, but only inside ``fields``).
    """
    # The lines, each with its newline, already sit back to back in the Arrow data buffer: read
    # them from there without building Python strings.
    lines = arrow_strings(text.fillna("") + "\n").combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    start = int(offsets[0])
    data = lines.buffers()[2]
    payload = data.slice(start, int(offsets[-1]) - start)
    sample = data.slice(start, int(offsets[min(len(lines), _JSON_SCHEMA_SAMPLE)]) - start)
    # One block holds the whole payload; a small one for a small payload: pyarrow's fixed cost grows
    # with the block (a 1 MiB block for a one-line file cost 1.3 ms a read, 64 KiB 0.4 ms).
    read_options = pa_json.ReadOptions(block_size=max(1 << 16, payload.size + 1))
    try:
        inferred = pa_json.read_json(pa.BufferReader(sample), read_options=read_options).schema
        schema = pa.schema([f.with_type(_without_timestamps(f.type)) for f in inferred])
        return pa_json.read_json(
            pa.BufferReader(payload),
            read_options=read_options,
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _table_records(table: pa.Table, index: pd.Index) -> pd.DataFrame:
    """Flattened columns (dotted names) of a pyarrow table as pandas columns aligned with ``index``.

    A key written both nested and dotted (``{"log": {"level": ...}}`` and ``{"log.level": ...}``)
    gives two columns of one name: they are merged, the first non-null value winning.
    """
    flat = _flatten_table(table)
    columns: dict[str, pd.Series] = {}
    for name, column in zip(flat.column_names, flat.columns, strict=True):
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = pc.cast(column, pa.string())
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_null(column.type):
            values = pd.Series(column.to_pylist(), index=index, dtype=object)
        else:
            values = pd.Series(column.to_pandas(types_mapper=_types_mapper)).set_axis(index)
        if name in columns:
            first = _as_key_text(columns[name])
            values = first.where(first.notna(), _as_key_text(values))
        columns[name] = values
    return pd.DataFrame(columns, index=index)


def _types_mapper(arrow_type: pa.DataType) -> Any:
    if arrow_type in (pa.string(), pa.large_string()):
        return STRING
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _parse_json_lines(lines: pd.Series) -> pd.DataFrame:
    records, ok, reasons = parse_json_records(lines)
    return _records_frame(_text(lines).index, records, ok, reasons)


def _audit_key(records: pd.DataFrame, name: str) -> pd.Series:
    if name not in records.columns:
        return pd.Series(pd.NA, index=records.index, dtype=STRING)
    return _as_key_text(records[name]).set_axis(records.index)


def _parse_kubernetes_audit(lines: pd.Series) -> pd.DataFrame:
    """An audit event has no message: it is written from its parts, as ``kubectl`` would name the
    object (``patch deployments.apps/checkout in namespace shop by alice via kubectl/v1.29.0``), so
    that a change made through the API reads as one (a failed request says ``failed with 403``). The
    acting user goes to ``user``, the first source address to ``client_ip``; the audit level (a policy
    level, not a severity), the request URI and the response code stay in ``fields``."""
    text = _text(lines)
    index = text.index
    records, ok, reasons = parse_json_records(text)
    key = {
        name: _audit_key(records, name)
        for name in (
            "requestReceivedTimestamp",
            "stageTimestamp",
            "verb",
            "objectRef.resource",
            "objectRef.apiGroup",
            "objectRef.name",
            "objectRef.namespace",
            "objectRef.subresource",
            "user.username",
            "userAgent",
            "responseStatus.code",
            "requestURI",
            "level",
            "stage",
            "auditID",
        )
    }
    ts_text = key["requestReceivedTimestamp"].fillna(key["stageTimestamp"])
    times = parse_timestamp_text(ts_text.where(ok))
    reason = reasons.mask(ok & ts_text.isna(), "no_timestamp").mask(
        ok & ts_text.notna() & ~times.parsed, "bad_timestamp"
    )
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    resource = key["objectRef.resource"] + ("." + key["objectRef.apiGroup"]).fillna("")
    obj = (resource + ("/" + key["objectRef.name"]).fillna("")).fillna(key["requestURI"])
    code = pd.to_numeric(key["responseStatus.code"], errors="coerce").astype("Int64")
    message = (
        key["verb"].fillna("request")
        + (" " + obj).fillna("")
        + (" " + key["objectRef.subresource"]).fillna("")
        + (" in namespace " + key["objectRef.namespace"]).fillna("")
        + (" by " + key["user.username"]).fillna("")
        + (" via " + key["userAgent"].str.split(" ").str[0]).fillna("")
        + (" failed with " + code.where(code >= 400).astype(STRING)).fillna("")
    )
    # sourceIPs is a list: its first address is the client, read from the line's text.
    client = extract_groups(text, r'"sourceIPs"\s*:\s*\[\s*"(?P<ip>[^"]+)"')["ip"]
    encoded = {
        "audit_level": json_quote(key["level"]),
        "stage": json_quote(key["stage"]),
        "request_uri": json_quote(key["requestURI"]),
        "response_code": code.astype(STRING),
        "audit_id": json_quote(key["auditID"]),
    }
    columns: dict[str, pd.Series | str] = {
        "kind": "log",
        "message": message.astype(STRING),
        "user": key["user.username"],
        "client_ip": client,
        "fields": fields_json(encoded, index),
    }
    return assemble(index, head=ok & times.parsed, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)


def _parse_docker_json(lines: pd.Series) -> pd.DataFrame:
    text = _text(lines)
    index = text.index
    records, ok, reasons = parse_json_records(text)
    outer_time = records["time"] if "time" in records.columns else pd.Series(pd.NA, index=index)
    log = records["log"] if "log" in records.columns else pd.Series(pd.NA, index=index)
    ts_text = _as_key_text(outer_time).set_axis(index)
    inner = _as_key_text(log).set_axis(index).str.removesuffix("\n").str.removesuffix("\r")
    times = parse_iso8601(ts_text.where(ok))
    reason = reasons.mask(ok & ts_text.isna(), "no_timestamp").mask(
        ok & ts_text.notna() & ~times.parsed, "bad_timestamp"
    )
    reason = reason.mask(ok & times.out_of_range, "timestamp_out_of_range")
    head = ok & times.parsed
    stream = _as_key_text(records["stream"]).set_axis(index) if "stream" in records.columns else None
    columns: dict[str, pd.Series | str] = {"kind": "log", "message": inner}
    columns["fields"] = fields_json({"stream": json_quote(stream)} if stream is not None else {}, index)
    outer = assemble(index, head=head, times=times, ts_raw=ts_text, reject_reason=reason, columns=columns)
    return _reparse_inner(outer, inner.where(head))


#: The frozen parsers by format name.
REFERENCE_PARSERS: Final = {
    "json_lines": _parse_json_lines,
    "docker_json": _parse_docker_json,
    "kubernetes_audit": _parse_kubernetes_audit,
}
