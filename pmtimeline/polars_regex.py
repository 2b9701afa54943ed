"""RE2 patterns run in polars (Rust's ``regex`` crate) with the meaning they have in RE2.

The project's patterns are written for RE2, the engine of Arrow's regex kernels, and the two engines
share a syntax. They differ in what the Perl classes and word boundaries mean: RE2's ``\\d``, ``\\w``,
``\\s`` and ``\\b`` are ASCII-only (its ``\\s`` is ``[\\t\\n\\f\\r ]``, without ``\\v``), Rust's are
Unicode, which is slower and would take other scripts' digits for digits. :func:`polars_pattern`
spells them out so that a pattern means in polars exactly what it means in RE2.

Why polars at all: for the capture and replace-heavy work of parsing and templating, its engine
takes 2-3x less CPU than RE2 through Arrow (bench/parse_engines.py, bench/README.md).

Both engines run in time linear in the text, whatever the pattern. Patterns that come from users
(``--format-file``) are checked with :func:`linear_time_problem` when they are loaded, so that a
construct only a backtracking engine has (look-around, backreferences, possessive quantifiers,
atomic groups, conditionals) is refused with a rewrite hint instead of running in Python's ``re``,
where one pattern can take minutes on a few short lines.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline import _core

#: Raised by polars for a pattern its engine refuses (look-around, backreferences, syntax errors).
POLARS_PATTERN_ERRORS: Final = (pl.exceptions.ComputeError,)

_ASCII_CLASSES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
#: Word boundaries, ASCII as in RE2 (``(?-u:...)`` is allowed for assertions in a Unicode pattern).
_ASCII_ASSERTIONS: Final = {"b": "(?-u:\\b)", "B": "(?-u:\\B)"}


@functools.lru_cache(maxsize=4096)  # a pure function of a few hundred distinct patterns, called per chunk
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


#: Group openings of backtracking engines (Python's ``re``, PCRE) that a linear-time engine lacks:
#: (opening, what it is, how to write the pattern without it). Longer openings come first.
_UNSUPPORTED_GROUPS: Final = (
    ("(?<=", "lookbehind `(?<=...)`", "match the preceding text as part of the pattern, outside the group"),
    (
        "(?<!",
        "negative lookbehind `(?<!...)`",
        "match what may precede with a character class such as `[^x]`, or filter the events after parsing",
    ),
    ("(?=", "lookahead `(?=...)`", "match the text and capture around it instead"),
    (
        "(?!",
        "negative lookahead `(?!...)`",
        "match what may follow with a character class such as `[^x]`, or filter the events after parsing",
    ),
    ("(?>", "atomic group `(?>...)`", "write a plain group `(?:...)`: this engine never backtracks"),
    ("(?P=", "backreference `(?P=name)`", "capture both places and compare the fields after parsing"),
    ("(?P>", "recursion `(?P>name)`", "spell out the nesting levels the logs have"),
    ("(?&", "recursion `(?&name)`", "spell out the nesting levels the logs have"),
    ("(?R)", "recursion `(?R)`", "spell out the nesting levels the logs have"),
    ("(?(", "conditional `(?(...)...)`", "write an alternation `(?:...|...)` instead"),
    ("(?#", "inline comment `(?#...)`", "remove it, or use `(?x)` and `#` comments"),
    ("(?|", "branch reset `(?|...)`", "give each alternative's groups their own names"),
)
_BACKREFERENCE_HINT: Final = "capture both places and compare the fields after parsing"
_COUNTED: Final = re.compile(r"\{(?:\d+(?:,\d*)?|,\d+)\}")
#: A pattern whose leading flags include ``x``: ``#`` starts a comment outside classes.
_VERBOSE: Final = re.compile(r"\(\?[a-zA-Z]*x[a-zA-Z]*\)")
_ENGINE_MESSAGE: Final = re.compile(r"^error: (.+)$", re.MULTILINE)


def linear_time_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot run in a linear-time engine (one line naming the construct, its
    position counted in characters from 1, and a rewrite hint), or None when the engine runs it
    (the Rust core's ``regex``, which polars runs too).

    The check reads the pattern, never any text, so it takes microseconds: call it where patterns
    are loaded.
    """
    found = _backtracking_construct(pattern)
    if found is not None:
        what, at, hint = found
        return f"{what} at character {at + 1} is not supported (patterns run in a linear-time engine): {hint}"
    return _engine_refusal(pattern)


def _backtracking_construct(pattern: str) -> tuple[str, int, str] | None:
    """(construct, 0-based position, hint) of the first construct only a backtracking engine has."""
    class_depth = 0
    verbose = _VERBOSE.match(pattern) is not None
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if verbose and not class_depth and char == "#":
            end = pattern.find("\n", i)
            i = len(pattern) if end < 0 else end  # a comment of an ``(?x)`` pattern
            continue
        if char == "\\" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if class_depth == 0:
                if code in "123456789":
                    return f"backreference `\\{code}`", i, _BACKREFERENCE_HINT
                if code in "gk" and pattern.startswith(("<", "{", "'"), i + 2):
                    return f"backreference `\\{code}`", i, _BACKREFERENCE_HINT
                if code == "Z":
                    return "`\\Z`", i, "write `$` (or `\\z`): a line holds no newline"
            i += 2
            continue
        if class_depth:
            # Rust's classes nest (``[[:alpha:]]``, ``[a-z&&[^x]]``); a ']' first in a class is a member.
            if char == "[":
                class_depth += 1
            elif char == "]":
                class_depth -= 1
            i += 1
            continue
        if char == "[":
            class_depth = 1
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1
            continue
        if char == "(":
            for opening, what, hint in _UNSUPPORTED_GROUPS:
                if pattern.startswith(opening, i):
                    return what, i, hint
            i += 1
            if pattern.startswith("?", i):
                i += 1  # a group's flags or name, not a quantifier
            continue
        quantifier = 1 if char in "*+?" else 0
        if char == "{":
            counted = _COUNTED.match(pattern, i)
            quantifier = len(counted.group()) if counted is not None else 0
        if quantifier:
            after = i + quantifier
            if pattern.startswith("+", after):
                spelled = pattern[i:after] + "+"
                return (
                    f"possessive quantifier `{spelled}`",
                    i,
                    f"write `{spelled[:-1]}`: this engine never backtracks",
                )
            i = after + (1 if pattern.startswith("?", after) else 0)  # a lazy quantifier's '?'
            continue
        i += 1
    return None


def _engine_refusal(pattern: str) -> str | None:
    """The Rust core's reason for refusing ``pattern`` as one line (with the position when it gives one)."""
    text = _core.regex_error(polars_pattern(pattern))
    if text is None:
        return None
    if "exceeds size limit" in text:
        return (
            "the pattern is too large for the linear-time engine (its compiled form exceeds 10 MiB): "
            "use smaller counted repetitions"
        )
    message = _ENGINE_MESSAGE.search(text)
    reason = message.group(1).strip() if message is not None else "the linear-time engine refuses it"
    at = _error_position(pattern)
    return f"{reason} at character {at + 1}" if at is not None else reason


def _error_position(pattern: str) -> int | None:
    """0-based position of the engine's error in a one-line ``pattern`` (its caret line), or None."""
    if "\n" in pattern:
        return None
    text = _core.regex_error(pattern)
    if text is None:
        return None  # refused only once spelled in ASCII classes: no position in the user's text
    lines = text.splitlines()
    for shown, caret in itertools.pairwise(lines):
        if shown.strip() == pattern.strip() and caret.strip().startswith("^"):
            return len(caret) - len(caret.lstrip()) - (len(shown) - len(shown.lstrip()))
    return None


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


__all__ = [
    "POLARS_PATTERN_ERRORS",
    "linear_time_problem",
    "polars_pattern",
    "polars_replacement",
    "polars_strings",
    "search_ignoring_case",
]
