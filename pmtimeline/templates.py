"""Message templates: a message with its variable parts masked, so that lines of one kind group.

``"timeout after 3000 ms connecting to 10.0.0.7:5432 (req 9f1c2a7b)"`` becomes
``"timeout after <DUR> connecting to <IP> (req <HEX>)"``. Only the first line of a multi-line
message (the exception line of a stack trace) is used, cut to :data:`MAX_TEMPLATE_CHARS`.

Drain3 mines templates line by line with a parse tree, which suits an online miner but not a
vectorized stage; a fixed chain of masks evaluated by Arrow (RE2) over the whole column is fast and
predictable, and that is all the analysis needs (comparing the templates of two windows).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    # Log text repeats (paths, messages of one kind): match each distinct value once.
    encoded = pc.dictionary_encode(arrow_text(values))
    found = pc.fill_null(pc.match_substring_regex(encoded.dictionary, pattern, ignore_case=True), False)
    matches = np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    valid = ~np.isnan(indices) if indices.dtype.kind == "f" else np.ones(len(indices), dtype=bool)
    out = np.zeros(len(indices), dtype=bool)
    out[valid] = matches[indices[valid].astype("int64")]
    return out


def message_templates(messages: pd.Series) -> pd.Series:
    """The template of each message (same index; nulls stay null)."""
    if messages.empty:
        return pd.Series([], index=messages.index, dtype=STRING)
    # Messages repeat: mask each distinct message once, then spread the templates back.
    encoded = pc.dictionary_encode(arrow_text(messages))
    text = encoded.dictionary
    text = pc.replace_substring_regex(text, r"[\r\n].*", "")
    text = pc.utf8_slice_codeunits(text, 0, 4 * MAX_TEMPLATE_CHARS)
    for pattern, replacement in MASKS:
        text = pc.replace_substring_regex(text, pattern, replacement)
    text = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(text, 0, MAX_TEMPLATE_CHARS))
    return pd.Series(pd.array(pc.take(text, encoded.indices), dtype=STRING), index=messages.index, name="template")
