"""RE2 patterns run in polars (Rust's ``regex`` crate) with the meaning they have in RE2.

The project's patterns are written for RE2, the engine of Arrow's regex kernels, and the two engines
share a syntax. They differ in what the Perl classes and word boundaries mean: RE2's ``\\d``, ``\\w``,
``\\s`` and ``\\b`` are ASCII-only (its ``\\s`` is ``[\\t\\n\\f\\r ]``, without ``\\v``), Rust's are
Unicode, which is slower and would take other scripts' digits for digits. :func:`polars_pattern`
spells them out so that a pattern means in polars exactly what it means in RE2.

Why polars at all: for the capture and replace-heavy work of parsing and templating, its engine
takes 2-3x less CPU than RE2 through Arrow (bench/parse_engines.py, bench/README.md).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

#: Raised by polars for a pattern its engine refuses (look-around, backreferences, syntax errors).
POLARS_PATTERN_ERRORS: Final = (pl.exceptions.ComputeError,)

_ASCII_CLASSES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
#: Word boundaries, ASCII as in RE2 (``(?-u:...)`` is allowed for assertions in a Unicode pattern).
_ASCII_ASSERTIONS: Final = {"b": "(?-u:\\b)", "B": "(?-u:\\B)"}


def polars_pattern(pattern: str) -> str:
    """``pattern`` (RE2) with ``\\d``, ``\\w``, ``\\s`` (and negations) spelled as ASCII classes and
    ``\\b``/``\\B`` as ASCII word boundaries, for polars' ``str`` regex methods."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            code = pattern[i + 1]
            spelled = _ASCII_CLASSES.get(code.lower())
            if not in_class and code in _ASCII_ASSERTIONS:
                out.append(_ASCII_ASSERTIONS[code])
            elif spelled is None:
                out.append(pattern[i : i + 2])
            elif in_class:
                # A negated class inside brackets cannot be spelled out; it keeps polars' meaning.
                out.append(spelled if code.islower() else pattern[i : i + 2])
            else:
                out.append(f"[{spelled}]" if code.islower() else f"[^{spelled}]")
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            i += 1
            # A ']' right after '[' or '[^' is a literal member of the class.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


def polars_replacement(replacement: str) -> str:
    """An RE2 replacement (``\\1`` refers to a group) in polars' syntax (``${1}``; ``$`` escaped)."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        char = replacement[i]
        if char == "\\" and i + 1 < len(replacement):
            follower = replacement[i + 1]
            out.append(f"${{{follower}}}" if follower.isdigit() else follower)
            i += 2
            continue
        out.append("$$" if char == "$" else char)
        i += 1
    return "".join(out)


def polars_strings(text: Any) -> pl.Series:
    """An Arrow string array (or chunked array) as a polars String series."""
    return pl.Series(text.cast(pa.large_string()))


def search_ignoring_case(text: Any, pattern: str) -> np.ndarray:
    """Boolean mask of case-insensitive RE2 matches of ``pattern`` anywhere in each value of the
    Arrow string array ``text`` (nulls are False); RE2 runs a pattern that polars refuses."""
    try:
        # A search without captures runs as a DFA in polars: 1.8 M messages in 0.2 s, faster than
        # RE2 through Arrow, and faster than finding the distinct values first.
        found = polars_strings(text).str.contains(f"(?i){polars_pattern(pattern)}").fill_null(False)
        return np.asarray(found.to_numpy(), dtype=bool)
    except POLARS_PATTERN_ERRORS:
        re2 = pc.fill_null(pc.match_substring_regex(text, pattern, ignore_case=True), False)
        return np.asarray(re2.to_numpy(zero_copy_only=False), dtype=bool)


__all__ = ["POLARS_PATTERN_ERRORS", "polars_pattern", "polars_replacement", "polars_strings", "search_ignoring_case"]
