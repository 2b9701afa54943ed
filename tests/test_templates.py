"""Message templates: variable parts masked, vectorized."""

from __future__ import annotations

import pandas as pd
import pytest

from pmtimeline.schema import STRING
from pmtimeline.templates import MAX_TEMPLATE_CHARS, message_templates, regex_mask


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
