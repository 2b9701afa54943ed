"""Message templates: variable parts masked, vectorized."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.schema import STRING
from pmtimeline.templates import MASKS, MAX_TEMPLATE_CHARS, message_templates, regex_mask


@pytest.mark.parametrize(
    ("message", "template"),
    [
        ("timeout after 3000 ms connecting to 10.0.0.7:5432", "timeout after <DUR> connecting to <IP>"),
        ("GET /api/v1/users/42 took 12ms", "GET <PATH> took <DUR>"),
        ("order 550e8400-e29b-41d4-a716-446655440000 failed", "order <UUID> failed"),
        ("mail to bob@example.com bounced", "mail to <EMAIL> bounced"),
        ('unknown key "payments.pool.size" in config', "unknown key <STR> in config"),
        ("segfault at 0x7ffd3a2b in worker 17", "segfault at <HEX> in worker <NUM>"),
        ("request 9f1c2a7b4e rejected", "request <HEX> rejected"),
        ("fetch https://api.example.com/v1?q=1 failed", "fetch <URL> failed"),
        ("peer fe80::1ff:fe23:4567:890a unreachable", "peer <IP> unreachable"),
        ("retry 3 of 5 in 2.5s", "retry <NUM> of <NUM> in <DUR>"),
    ],
)
def test_variable_parts_are_masked(message: str, template: str) -> None:
    assert message_templates(pd.Series([message], dtype=STRING)).iloc[0] == template


def test_messages_of_one_kind_share_a_template() -> None:
    messages = pd.Series(
        [
            "HikariPool-1 - Connection is not available, request timed out after 3000ms",
            "HikariPool-1 - Connection is not available, request timed out after 30001ms",
            "user 1 logged in from 10.1.1.1",
            "user 22 logged in from 192.168.0.9",
        ],
        dtype=STRING,
    )
    templates = message_templates(messages)
    assert templates.iloc[0] == templates.iloc[1]
    assert templates.iloc[2] == templates.iloc[3]
    assert templates.iloc[0] != templates.iloc[2]


def test_first_line_only_nulls_kept_and_length_bounded() -> None:
    messages = pd.Series(
        ["java.lang.IllegalStateException: pool closed\n\tat com.bank.Pool.get(Pool.java:42)", None, "x " * 500],
        index=[10, 11, 12],
        dtype=STRING,
    )
    templates = message_templates(messages)
    assert list(templates.index) == [10, 11, 12]
    assert templates.iloc[0] == "java.lang.IllegalStateException: pool closed"
    assert pd.isna(templates.iloc[1])
    assert len(templates.iloc[2]) <= MAX_TEMPLATE_CHARS


def test_empty_series() -> None:
    assert message_templates(pd.Series([], dtype=STRING)).empty


def test_regex_mask_is_case_insensitive_and_null_safe() -> None:
    mask = regex_mask(pd.Series(["Export CSV", None, "import"], dtype=STRING), r"\bexport")
    assert mask.tolist() == [True, False, False]


def test_prefixed_identifiers_are_masked_but_keep_their_prefix() -> None:
    out = message_templates(
        pd.Series(
            [
                "Posting pst_ae402ddc94 failed",
                "Posting pst_1303838960 failed",
                "charge ch_3NxY2kL1 ok",
                "config_value unchanged",
            ],
            dtype="string",
        )
    )
    assert out.iloc[0] == out.iloc[1] == "Posting pst_<ID> failed"
    assert out.iloc[2] == "charge ch_<ID> ok"
    assert out.iloc[3] == "config_value unchanged"


def _re2_templates(messages: pd.Series) -> list[object]:
    """The templates as Arrow's RE2 kernels compute them: the meaning MASKS were written for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(messages.astype(STRING).array)
    text = pc.replace_substring_regex(text, r"[\r\n].*", "")
    text = pc.utf8_slice_codeunits(text, 0, 4 * MAX_TEMPLATE_CHARS)
    for pattern, replacement in MASKS:
        text = pc.replace_substring_regex(text, pattern, replacement)
    return list(pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(text, 0, MAX_TEMPLATE_CHARS)).to_pylist())


UNICODE_MESSAGES = [
    "Zahlung 42 für Kunde müller_7 abgelehnt\u00a0nach 3s",
    "٣٤ Arabic-Indic digits and ４２ fullwidth ones are words to RE2, not numbers",
    "naïve_9 café 0xdeadbeef über\u2003em-space 10.0.0.1:80",
    "\u2003 leading and trailing unicode spaces \u3000",
    "emoji 🔥 at 12ms in 'quoted 🔥 text' and \"more\"",
    "line one 1\r\nline two 2",
    "carriage\rreturn 5",
    "é" * 900 + " 7",
    "",
]


def test_polars_templates_equal_re2_on_unicode_and_real_logs(shared_data: Path) -> None:
    messages = list(UNICODE_MESSAGES)
    for path in sorted((shared_data / "loghub").glob("*/*_2k.log_structured.csv")):
        messages += pd.read_csv(path, usecols=["Content"], dtype=str)["Content"].dropna().tolist()
    series = pd.Series([*messages, None], dtype=STRING)
    assert len(series) > 1000
    assert message_templates(series).tolist()[:-1] == _re2_templates(series)[:-1]
    assert pd.isna(message_templates(series).iloc[-1])


def test_polars_templates_equal_re2_on_the_sample_incident() -> None:
    root = Path(__file__).resolve().parents[1] / "sample_logs"
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".gz"]
    lines = [line for path in files for line in path.read_text().splitlines()]
    series = pd.Series(lines + UNICODE_MESSAGES, dtype=STRING)
    assert len(series) > 500
    assert message_templates(series).tolist() == _re2_templates(series)


def test_regex_mask_equals_re2_on_unicode_text() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from pmtimeline.exposure import AUTH_MESSAGE, AUTH_PATH, DATA_OPERATION, FAILURE_MESSAGE, SUCCESS_MESSAGE

    texts = [*UNICODE_MESSAGES, "LOGIN failed for bob", "Exported 3 rows", "/api/Login", "token refresh ok", "ﬁle"]
    for pattern in (AUTH_MESSAGE, AUTH_PATH, FAILURE_MESSAGE, SUCCESS_MESSAGE, DATA_OPERATION, r"\bexport"):
        re2 = pc.match_substring_regex(pa.array(texts), pattern, ignore_case=True).to_pylist()
        assert regex_mask(pd.Series(texts, dtype=STRING), pattern).tolist() == re2, pattern


@pytest.mark.parametrize("repeats", [1, 4])
def test_templates_are_the_same_whether_messages_repeat_or_not(repeats: int) -> None:
    # Mostly distinct messages are masked one by one; repeated ones once per distinct message.
    messages = [f"user {i} failed login from 10.0.{i % 250}.1 after {i}ms" for i in range(600)] * repeats
    series = pd.Series([*messages, None, *UNICODE_MESSAGES], dtype=STRING, index=range(5, 5 + len(messages) + 10))
    templates = message_templates(series)
    assert list(templates.index) == list(series.index)
    assert [None if pd.isna(t) else t for t in templates] == _re2_templates(series)
    assert templates.iloc[0] == "user <NUM> failed login from <IP> after <DUR>"
