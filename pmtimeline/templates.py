"""Message templates: a message with its variable parts masked, so that lines of one kind group.

``"timeout after 3000 ms connecting to 10.0.0.7:5432 (req 9f1c2a7b)"`` becomes
``"timeout after <DUR> connecting to <IP> (req <HEX>)"``. Only the first line of a multi-line
message (the exception line of a stack trace) is used, cut to :data:`MAX_TEMPLATE_CHARS`.

Drain3 mines templates line by line with a parse tree, which suits an online miner but not a
vectorized stage; a fixed chain of masks (RE2 syntax, run by polars) over the whole column is fast
and predictable, and it is what the streaming aggregation keys its templates by, chunk by chunk.
Masks alone split one kind of line wherever a variable has no shape they know (a user or host
name): :mod:`pmtimeline.template_mining` clusters the distinct masked templates afterwards, and
the analysis compares those mined templates.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.polars_regex import polars_pattern, polars_replacement, polars_strings, search_ignoring_case
from pmtimeline.schema import STRING

MAX_TEMPLATE_CHARS: Final = 200

#: (regex, replacement), applied in order: the specific shapes before the generic number mask.
MASKS: Final[tuple[tuple[str, str], ...]] = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<UUID>"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<EMAIL>"),
    (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "<URL>"),
    (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d{1,5})?\b", "<IP>"),
    (r"\b[0-9a-fA-F]{1,4}(:[0-9a-fA-F]{0,4}){3,7}\b", "<IP>"),
    (r"\"[^\"]*\"", "<STR>"),
    (r"'[^']*'", "<STR>"),
    (r"(^|[\s=:(\[])(/[^\s/]+)+/?", r"\1<PATH>"),
    # prefixed identifiers such as pst_ae402ddc94, ch_3NxY2k, cus_9aB1 (the prefix is kept)
    (r"\b([A-Za-z]{1,12})_[A-Za-z0-9]*[0-9][A-Za-z0-9]*\b", r"\1_<ID>"),
    (r"\b0x[0-9a-fA-F]+\b", "<HEX>"),
    (r"\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b", "<HEX>"),
    (r"\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b", "<HEX>"),
    (r"\b\d+(\.\d+)?\s?(ns|us|µs|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b", "<DUR>"),
    (r"[-+]?\b\d+(\.\d+)?\b", "<NUM>"),
    (r"\s+", " "),
)


def arrow_text(values: pd.Series) -> Any:
    """``values`` as an Arrow string array (nulls stay null), for the regex kernels of Arrow (RE2)."""
    text = pa.array(values.astype(STRING).array)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def regex_mask(values: pd.Series, pattern: str) -> np.ndarray:
    """Boolean mask of case-insensitive RE2 matches of ``pattern`` (nulls are False)."""
    if values.empty:
        return np.zeros(0, dtype=bool)
    return search_ignoring_case(arrow_text(values), pattern)


#: Messages looked at to decide whether to template each distinct message once (see below).
_DISTINCT_PROBE: Final = 1024


@functools.lru_cache(maxsize=1)
def _template_expression() -> pl.Expr:
    """:data:`MASKS` as one polars expression over the column ``text``.

    Polars' engine does this chain of replacements in half the CPU of RE2 through Arrow (measured
    on the benchmark corpus's error messages); the patterns keep RE2's meaning through
    :func:`polars_pattern`.
    """
    # RE2's "[\r\n].*" replaced everywhere leaves the first line: everything from the first break goes.
    text = pl.col("text").str.replace(r"[\r\n][\s\S]*", "").str.slice(0, 4 * MAX_TEMPLATE_CHARS)
    for pattern, replacement in MASKS:
        text = text.str.replace_all(polars_pattern(pattern), polars_replacement(replacement))
    return text.str.slice(0, MAX_TEMPLATE_CHARS).str.strip_chars()


def _templated(text: Any) -> Any:
    masked = pl.DataFrame({"text": polars_strings(text)}).select(_template_expression())["text"]
    return masked.to_arrow(compat_level=pl.CompatLevel.oldest())


def message_templates(messages: pd.Series) -> pd.Series:
    """The template of each message (same index; nulls stay null)."""
    if messages.empty:
        return pd.Series([], index=messages.index, dtype=STRING)
    text = arrow_text(messages)
    # Messages of one kind often repeat word for word: then each distinct one is masked once and the
    # templates spread back. Where most are distinct (ids and numbers in every line), finding the
    # distinct ones costs half as much as masking them all, so a probe of the first ones decides.
    probe = text[:_DISTINCT_PROBE]
    if pc.count_distinct(probe).as_py() <= len(probe) // 2:
        encoded = pc.dictionary_encode(text)
        templates = pc.take(_templated(encoded.dictionary), encoded.indices)
    else:
        templates = _templated(text)
    return pd.Series(pd.array(templates, dtype=STRING), index=messages.index, name="template")
