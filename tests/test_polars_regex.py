"""RE2 patterns spelled for polars keep RE2's meaning (ASCII classes and word boundaries)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pmtimeline.polars_regex import linear_time_problem, polars_pattern, polars_replacement, search_ignoring_case


@pytest.mark.parametrize(
    ("pattern", "spelled"),
    [
        (r"\d+\s\w", r"[0-9]+[\t\n\f\r ][0-9A-Za-z_]"),
        (r"\D\S\W", r"[^0-9][^\t\n\f\r ][^0-9A-Za-z_]"),
        (r"[\w.$]+", r"[0-9A-Za-z_.$]+"),
        (r"[^\]\s]", r"[^\]\t\n\f\r ]"),
        (r"[]\d]", r"[]0-9]"),
        (r"\\d", r"\\d"),  # an escaped backslash, then a letter d
        (r"[\S]", r"[\S]"),  # a negated class inside brackets keeps its own meaning
        (r"\bx\B", r"(?-u:\b)x(?-u:\B)"),
        (r"[\b]", r"[\b]"),  # inside a class \b is not a word boundary
    ],
)
def test_perl_classes_and_boundaries_are_spelled_as_re2_reads_them(pattern: str, spelled: str) -> None:
    assert polars_pattern(pattern) == spelled


@pytest.mark.parametrize(
    ("replacement", "spelled"),
    [(r"\1<PATH>", "${1}<PATH>"), ("<NUM>", "<NUM>"), ("cost $5", "cost $$5"), (r"a\\b", r"a\b")],
)
def test_replacements_are_spelled_for_polars(replacement: str, spelled: str) -> None:
    assert polars_replacement(replacement) == spelled


TEXTS = [
    "order 42 of 7 failed",
    "٣٤ arabic-indic digits are not digits to RE2",
    "café42 naïve_7 über 9x",
    "tab\there\u00a0nbsp\u2003em-space",
    "",
    "x" * 300 + " 12",
]


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (r"\b\d+\b", "<NUM>"),
        (r"\w+", "W"),
        (r"\s+", " "),
        (r"\b([A-Za-z]{1,12})_[A-Za-z0-9]*[0-9][A-Za-z0-9]*\b", r"\1_<ID>"),
        (r"[^\s]+", "T"),
    ],
)
def test_polars_replaces_as_re2_does_on_unicode_text(pattern: str, replacement: str) -> None:
    re2 = pc.replace_substring_regex(pa.array(TEXTS), pattern, replacement).to_pylist()
    rust = pl.Series(TEXTS).str.replace_all(polars_pattern(pattern), polars_replacement(replacement)).to_list()
    assert rust == re2


@pytest.mark.parametrize("pattern", [r"\bdeploy(ed|ing)?\b", r"\d+\s?ms", r"ÜBER\w*", r"^\s*rollback", r"\C\d"])
def test_search_ignoring_case_matches_as_re2_does(pattern: str) -> None:
    texts = pa.array([*TEXTS, None, "Deployed v2", "DEPLOYING", "redeploy", "über42 ms", "  Rollback", "x7"])
    expected = pc.fill_null(pc.match_substring_regex(texts, pattern, ignore_case=True), False).to_pylist()
    # \C (any byte) is RE2-only: polars refuses it and RE2 runs the pattern.
    assert search_ignoring_case(texts, pattern).tolist() == expected


@pytest.mark.parametrize(
    "pattern",
    [
        r"^(?P<a>\d+) (?:x|y)*? [(?=\]]\(?=x (?<b>\S+)$",  # lazy, classes, escaped parens, (?<name>)
        r"(a+)+$",  # nested quantifiers: slow only in a backtracking engine
        r"[[:alpha:]]+\p{L}{2,5}",
        "(?x) a  # (?=not a lookahead: a comment)\n b",
    ],
)
def test_linear_time_patterns_pass(pattern: str) -> None:
    assert linear_time_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ab(?=c)", "lookahead `(?=...)` at character 3 is not supported"),
        ("[(](?<!c)", "negative lookbehind `(?<!...)` at character 4 is not supported"),
        ("(x)y*+", "possessive quantifier `*+` at character 5 is not supported"),
        ("(?x) a # c\n(?!b)", "negative lookahead `(?!...)` at character 12 is not supported"),
        ("x{3}{9999}{9999}", "the pattern is too large for the linear-time engine"),
        ("ab[c", "unclosed character class at character 3"),
    ],
)
def test_what_the_linear_time_engine_lacks_is_named_with_its_position(pattern: str, expected: str) -> None:
    problem = linear_time_problem(pattern)
    assert problem is not None
    assert problem.startswith(expected)
    assert "\n" not in problem
