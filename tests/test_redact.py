"""Redaction: what must be replaced, what must not, and pseudonyms that still join within a report."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pmtimeline.incident import Actor, Evidence, Exposure, Incident, Metrics
from pmtimeline.redact import Redactor, iban_valid, luhn_valid
from pmtimeline.schema import STRING, conform_events

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(key=b"k" * 32)


SECRET_CASES: list[tuple[str, str]] = [
    ("paid with 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("card=4242424242424242", "4242424242424242"),
    ("iban GB82 WEST 1234 5698 7654 32 debited", "GB82 WEST 1234 5698 7654 32"),
    ("to DE89370400440532013000", "DE89370400440532013000"),
    ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    (f"token {JWT}", JWT),
    ("connect https://alice:hunter2@db.example/", "hunter2"),
    ("GET /login?user=bob&password=hunter2 HTTP/1.1", "hunter2"),
    ("body password%3Dhunter2&x=1", "hunter2"),
    ('{"password": "hunter2"}', "hunter2"),
    ("Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
    ("Authorization: Basic YWxpY2U6aHVudGVyMg==", "YWxpY2U6aHVudGVyMg=="),
    ("x-api-key: 0123456789abcdef", "0123456789abcdef"),
    ("Cookie: session=abc123secret; theme=dark", "abc123secret"),
    ("client_secret=s3cr3tvalue", "s3cr3tvalue"),
    ("github ghp_0123456789abcdefghijABCDEFGHIJ0123456789", "ghp_0123456789abcdefghijABCDEFGHIJ0123456789"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ("mail alice@bank.example now", "alice@bank.example"),
    ("json alice\\u0040bank.example", "alice\\u0040bank.example"),
    ("from 203.0.113.7 port 22", "203.0.113.7"),
    ("from 2001:db8::1 port 22", "2001:db8::1"),
    ("listening on [fe80::1]:8080", "fe80::1"),
    ("peer=2001:db8::7,", "2001:db8::7"),
    ("login password\u00a0=hunter2 ok", "hunter2"),  # a no-break space: Python's \\s, not RE2's
]


@pytest.mark.parametrize(("text", "secret"), SECRET_CASES)
def test_secrets_are_redacted(redactor: Redactor, text: str, secret: str) -> None:
    out = redactor.redact_text(text)
    assert secret not in out
    assert out != text


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # fails Luhn: not a card
        "epoch 1709251200000 ms",  # 13 digits, starts with 1
        "GB00 WEST 1234 5698 7654 32 is no IBAN",  # fails mod 97
        "at 10:00:00 the job ran",  # a time, not an IPv6 address
        "version 1.2.3.4000 released",  # not an IP
        "check pass; user unknown",
        "Invalid password for user admin",
        # "::" and "d::" are valid IPv6 addresses, but inside words they are Ruby and C++ names
        "Faraday::TimeoutError: api.gravatar.com timed out",
        "Mysql2::Error: Lock wait timeout exceeded",
        "ActiveRecord::StatementInvalid: write timed out",
        "std::vector<int> grew",
    ],
)
def test_look_alikes_are_kept(redactor: Redactor, text: str) -> None:
    assert redactor.redact_text(text) == text


def test_validators() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_pseudonyms_are_stable_within_a_report_and_differ_across(redactor: Redactor) -> None:
    a = redactor.redact_text("from 203.0.113.7")
    b = redactor.redact_text("again 203.0.113.7")
    assert a.split()[-1] == b.split()[-1]
    other = Redactor().redact_text("from 203.0.113.7")
    assert other.split()[-1] != a.split()[-1]
    assert "key" not in repr(redactor).replace("key=<per-report", "")


def test_pseudonyms_are_keyed_hashes_of_the_value_and_its_kind() -> None:
    # Pseudonyms are keyed BLAKE2b of "kind\0value": computed here independently of the module.
    key = b"k" * 32
    expected = hashlib.blake2b(b"ip\x00203.0.113.7", key=key, digest_size=4).hexdigest()
    assert Redactor(key=key).pseudonym("203.0.113.7", "ip") == f"ip_{expected}"
    assert Redactor(key=key).pseudonym("203.0.113.7", "user") != f"user_{expected}"
    # A key longer than BLAKE2b takes still works, and still keys the tokens.
    long_a, long_b = Redactor(key=b"a" * 100), Redactor(key=b"b" * 100)
    assert long_a.pseudonym("alice", "user") != long_b.pseudonym("alice", "user")
    assert long_a.pseudonym("alice", "user") == Redactor(key=b"a" * 100).pseudonym("alice", "user")


def test_redact_events_pseudonymizes_users_everywhere(redactor: Redactor) -> None:
    frame = conform_events(
        pd.DataFrame(
            {
                "timestamp": pd.to_datetime(["2024-03-01T10:00:00Z"] * 3),
                "source": "app.log",
                "kind": "log",
                "user": ["cust-00042", "cust-00042", None],
                "client_ip": ["198.51.100.4", "198.51.100.5", None],
                "message": ["login failed for cust-00042", "card 4111111111111111", "plain"],
            }
        )
    )
    out = redactor.redact_events(frame)
    assert out["user"].iloc[0] == out["user"].iloc[1]
    assert out["user"].iloc[0].startswith("user_")
    assert "cust-00042" not in " ".join(out["message"].astype(str))
    assert out["user"].iloc[0] in out["message"].iloc[0]
    assert out["client_ip"].iloc[0] != out["client_ip"].iloc[1]
    assert "4111111111111111" not in out["message"].iloc[1]
    assert out["message"].iloc[2] == "plain"
    assert pd.isna(out["user"].iloc[2])
    assert str(out["message"].dtype) == str(frame["message"].dtype)
    # the input frame is not modified
    assert frame["user"].iloc[0] == "cust-00042"


def test_redact_incident_covers_evidence_and_exposure(redactor: Redactor) -> None:
    t = pd.Timestamp("2024-03-01T10:00:00Z")
    ev = Evidence(time=t, source="a.log", line=3, message="password=hunter2 from 203.0.113.9 user bob77")
    incident = Incident(
        title="t",
        window_start=t,
        window_end=t,
        phases={"onset": t},
        phase_evidence={"onset": (ev,)},
        metrics=Metrics(affected_endpoints=(("/pay?token=abc", 3),)),
        exposure=Exposure(
            actors=(Actor(actor="203.0.113.9", actor_kind="client_ip", failures=50, successes=2, accounts=("bob77",)),),
            accounts_touched=("bob77",),
            data_operations=(ev,),
        ),
    )
    out = redactor.redact_incident(incident)
    text = str(out.to_dict())
    for secret in ("hunter2", "203.0.113.9", "bob77", "token=abc"):
        assert secret not in text
    assert out.exposure.actors[0].actor == redactor.pseudonym("203.0.113.9", "ip")
    assert out.exposure.accounts_touched[0] == redactor.pseudonym("bob77", "user")
    assert out.redacted


def test_redact_incident_covers_the_mechanism_action_items_and_new_errors(redactor: Redactor) -> None:
    from pmtimeline.incident import ActionItem, Mechanism, NewError, RootCauseCandidate

    t = pd.Timestamp("2024-03-01T10:00:00Z")
    ev = Evidence(time=t, source="a.log", line=3, message="iban DE89370400440532013000 from 203.0.113.9")
    candidate = RootCauseCandidate(
        1,
        "change",
        t,
        "api",
        "deploy in api",
        0.9,
        (ev,),
        why="it came right before the card 4111111111111111 errors",
        new_errors=(NewError(template="card declined password=hunter2", count=3, evidence=ev),),
    )
    incident = Incident(
        title="t",
        window_start=t,
        window_end=t,
        phases={},
        root_cause_candidates=(candidate,),
        mechanism=Mechanism(signature="auth failed for token=abc", label="x", count=3, before_onset=0, first=ev),
        action_items=(ActionItem("detect", "P1", "alert on password=hunter2", "seen from 203.0.113.9", (ev,)),),
    )
    text = str(redactor.redact_incident(incident).to_dict())
    for secret in ("DE89370400440532013000", "203.0.113.9", "4111111111111111", "hunter2", "token=abc"):
        assert secret not in text, secret


def test_every_redacted_value_passes_the_prefilter(redactor: Redactor) -> None:
    import pyarrow as pa

    from pmtimeline.redact import _KnownNames, _suspects

    texts = [text for text, _secret in SECRET_CASES]
    mask = _suspects(pa.array(texts, type=pa.large_string())).to_pylist()
    assert all(mask), [t for t, m in zip(texts, mask, strict=True) if not m]
    quiet = ["GET /static/app.js HTTP/1.1", "Posted 13 journal entries in the last 60s"]
    assert _suspects(pa.array(quiet, type=pa.large_string())).to_pylist() == [False, False]
    known = _KnownNames({"cust-00042": "u"})
    assert _suspects(pa.array(["hello cust-00042"], type=pa.large_string()), known).to_pylist() == [True]


def test_redact_series_leaves_quiet_values_untouched_and_is_fast_on_them(redactor: Redactor) -> None:
    values = pd.Series([f"GET /static/{i}.js HTTP/1.1" for i in range(50_000)] + ["pwd=hunter2"], dtype="string")
    out = redactor.redact_series(values)
    assert out.iloc[0] == values.iloc[0]
    assert "hunter2" not in out.iloc[-1]


def test_template_summaries_are_rebuilt_from_redacted_messages(redactor: Redactor) -> None:
    from pmtimeline.incident import RootCauseCandidate
    from pmtimeline.templates import message_templates

    t = pd.Timestamp("2024-03-01T10:00:00Z")
    message = "GET //alice%3Ahunter2%40db.example/ HTTP/1.1"
    template = message_templates(pd.Series([message], dtype="string")).iloc[0]
    assert "hunter2" in template  # the masking hides the '@' that the URL pattern needs
    candidate = RootCauseCandidate(
        1,
        "new_error_template",
        t,
        None,
        f"new error: {template} (6 events)",
        0.5,
        (Evidence(time=t, source="a.log", line=1, message=message),),
    )
    incident = Incident(title="t", window_start=t, window_end=t, phases={}, root_cause_candidates=(candidate,))
    out = redactor.redact_incident(incident)
    assert "hunter2" not in out.root_cause_candidates[0].summary
    assert out.root_cause_candidates[0].summary.startswith("new error: ")


def test_redact_series_equals_redacting_each_value(redactor: Redactor) -> None:
    # The vectorized path (prefilter, distinct values, Arrow replacement) must give what the
    # scalar redaction gives for every row, duplicates, nulls and index included.
    texts = [t for t, _ in SECRET_CASES] + ["plain", "", "GET /static/app.js HTTP/1.1"]
    values = pd.Series([*texts, *texts[::-1], None], index=range(100, 100 + 2 * len(texts) + 1), dtype="string")
    out = redactor.redact_series(values)
    expected = [None if pd.isna(v) else redactor.redact_text(v) for v in values.tolist()]
    assert [None if pd.isna(v) else v for v in out.tolist()] == expected
    assert sum(a != b for a, b in zip(expected, values.tolist(), strict=True) if a is not None) >= len(SECRET_CASES)
    assert out.index.equals(values.index)
    assert str(out.dtype) == str(values.astype("string[pyarrow]").dtype)


def test_redact_series_replaces_known_identities_only_as_whole_words(redactor: Redactor) -> None:
    values = pd.Series(["bye cust-00042", "cust-000421 left", None], dtype="string")
    out = redactor.redact_series(values, [("cust-00042", "user_x")])
    assert out.tolist()[:2] == ["bye user_x", "cust-000421 left"]
    assert pd.isna(out.iloc[2])


def test_pseudonymize_series_maps_each_distinct_value_and_empties_to_null(redactor: Redactor) -> None:
    values = pd.Series(["10.0.0.1", "", None, "10.0.0.1", "10.0.0.2"], index=list("abcde"), dtype="string")
    out, tokens = redactor.pseudonymize_series(values, "ip")
    assert tokens == {v: redactor.pseudonym(v, "ip") for v in ("10.0.0.1", "10.0.0.2")}
    assert out.tolist()[0] == out.tolist()[3] == tokens["10.0.0.1"]
    assert out.isna().tolist() == [False, True, True, False, False]
    assert list(out.index) == list("abcde")


def test_json_with_an_escaped_lone_surrogate_stays_storable(redactor: Redactor) -> None:
    import json

    values = pd.Series(['{"note": "\\ud800 \u00e9", "password": "hunter2"}'], dtype="string")
    out = redactor.redact_series(values, as_json=True).iloc[0]
    assert "hunter2" not in out
    assert json.loads(out) == {"note": "\ud800 \u00e9", "password": "[REDACTED]"}
    out.encode("utf-8")  # no lone surrogate left raw


def test_prefilter_classes_contain_pythons_unicode_classes() -> None:
    # The patterns run in Python, whose \\d, \\w and \\s and case-insensitive letters are Unicode-aware;
    # the RE2 prefilter must match every character they do, or a secret could slip past it.
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    from pmtimeline.redact import _RE2_DIGIT, _RE2_SPACE, _RE2_WORD_CHARS, _re2_caseless

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    every = "".join(chars)
    column = pa.array(chars)

    def re2(pattern: str) -> set[str]:
        mask = pc.match_substring_regex(column, f"^(?:{pattern})$").to_numpy(zero_copy_only=False)
        return {ch for ch, hit in zip(chars, mask, strict=True) if hit}

    for python, ours in ((r"\d", _RE2_DIGIT), (r"[\w.-]", f"[{_RE2_WORD_CHARS}.-]"), (r"\s", _RE2_SPACE)):
        assert set(re.findall(python, every)) <= re2(ours), python
    for letter in "abcdefghijklmnopqrstuvwxyz":
        assert set(re.findall(f"(?i){letter}", every)) <= re2(f"(?i:{_re2_caseless(letter)})"), letter


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 129, 3000])
def test_blockwise_prefilter_flags_exactly_the_values_a_per_value_search_flags(size: int) -> None:
    import random

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from pmtimeline.redact import _SUSPECT_RE2, _matches

    rng = random.Random(size)
    # Values that match, values that match only when joined to a neighbour ("password" + "=x"),
    # nulls, empties and line breaks, at every position of a block.
    pool = [t for t, _ in SECRET_CASES] + ["plain", "password", "=x", None, "", "x\ny", "épée", "GET /a HTTP/1.1"]
    values = pa.array([rng.choice(pool) for _ in range(size + 5)], type=pa.large_string()).slice(5)
    expected = np.asarray(pc.fill_null(pc.match_substring_regex(values, _SUSPECT_RE2), False), dtype=bool)
    assert _matches(values, _SUSPECT_RE2).tolist() == expected.tolist()


def test_redacted_texts_are_remembered_within_a_bound(redactor: Redactor, monkeypatch: pytest.MonkeyPatch) -> None:
    import pmtimeline.redact as redact

    monkeypatch.setattr(redact, "_TEXT_CACHE_SIZE", 10)
    values = pd.Series([f"from 203.0.113.{i} port 22" for i in range(25)], dtype="string")
    first = redactor.redact_series(values)
    assert len(redactor._texts) <= 10
    again = redactor.redact_series(values)  # partly from memory: the same result
    assert again.tolist() == first.tolist() == [redactor.redact_text(v) for v in values]


def test_templates_that_masking_made_unreadable_to_the_patterns_become_tokens() -> None:
    redactor = Redactor()
    templates = pd.Series(
        [
            "GET <PATH>/alice%3Ahunter2%<HEX>.example/ HTTP/<NUM>",  # "%40" (@) masked as "%<HEX>"
            "Invalid password for user <*>",
            None,
            "GET <PATH>/alice%3Ahunter2%<HEX>.example/ HTTP/<NUM>",
        ],
        dtype=STRING,
    )
    out = redactor.redact_templates(templates)
    assert "hunter2" not in " ".join(out.dropna())
    assert out.iloc[0] == out.iloc[3]  # equal templates, equal tokens
    assert str(out.iloc[0]).startswith("<template_")
    assert out.iloc[1] == "Invalid password for user <*>"  # nothing suspect: kept as it reads
    assert pd.isna(out.iloc[2])


# -- known names: linear in the text, whatever their number (issue 17, item 9) -------------------------


def _reference_replace(text: str, known: dict[str, str]) -> str:
    """The former definition of replacing known names, as one regular expression (the oracle)."""
    import re

    values = sorted((v for v in known if len(v) >= 3), key=len, reverse=True)
    if not values:
        return text
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(v) for v in values) + r")(?![\w-])")
    return pattern.sub(lambda m: known[m.group(1)], text)


def test_known_names_replace_as_the_regular_expression_did() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pmtimeline.redact import _KnownNames

    # A small alphabet so that names overlap, nest, touch word characters, dots and dashes.
    alphabet = st.sampled_from([*"ab-._ 1é", "\U0001f600"])
    name = st.text(alphabet, min_size=1, max_size=6)

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.lists(name, max_size=6, unique=True), st.text(alphabet, max_size=40))
    def check(names: list[str], text: str) -> None:
        known = {n: f"<{i}>" for i, n in enumerate(names)}
        assert _KnownNames(known).replace(text) == _reference_replace(text, known)

    check()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bye cust-00042", "bye U42"),
        ("cust-000421 left", "U421 left"),  # the longest name at a place wins
        ("cust-00042.done", "U42.done"),  # a dot after a name ends it; before one, it is a path
        ("x.cust-00042 y_cust-00042 cust-00042-b", "x.cust-00042 y_cust-00042 cust-00042-b"),
        ("cust-00042cust-00042 cust-00042", "cust-00042cust-00042 U42"),
        ("名cust-00042 (cust-00042)", "名cust-00042 (U42)"),  # Unicode word characters count as words
    ],
)
def test_known_names_only_whole_words_longest_first(text: str, expected: str) -> None:
    from pmtimeline.redact import _KnownNames

    assert _KnownNames({"cust-00042": "U42", "cust-000421": "U421", "ab": "never"}).replace(text) == expected


def test_redact_events_with_many_identities_costs_the_text_not_the_names(redactor: Redactor) -> None:
    # A credential-stuffing shape: every message names one of 40,000 distinct accounts. The former
    # alternation of every name over every suspect message took minutes here.
    import random
    import time

    rng = random.Random(17)
    users = [f"{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz', k=8))}{i}" for i in range(40_000)]
    rows = [users[i] for i in range(40_000)]
    frame = conform_events(
        pd.DataFrame(
            {
                "timestamp": pd.Timestamp("2024-03-01T10:00:00Z"),
                "user": pd.Series(rows, dtype=STRING),
                "message": pd.Series([f"login failed for {u} (bad password) #{i}" for i, u in enumerate(rows)]),
            }
        )
    )
    started = time.perf_counter()
    out = redactor.redact_events(frame)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, elapsed  # about 1 s on a quiet machine
    tokens = out["user"].tolist()
    assert out["message"].tolist()[:3] == [
        f"login failed for {t} (bad password) #{i}" for i, t in enumerate(tokens[:3])
    ]
    assert not any(u in m for u, m in zip(rows, out["message"].tolist(), strict=True))


def test_the_incident_and_templates_name_no_user_seen_in_the_reports_events(redactor: Redactor) -> None:
    # An onset line quoting an account that is no actor of the exposure (thousands fail to log in,
    # a few are named in evidence): its name was left in the draft and incident.json.
    t = pd.Timestamp("2024-03-01T10:00:00Z")
    names = [f"acct{i:05d}x" for i in range(5000)]
    frame = conform_events(
        pd.DataFrame(
            {
                "timestamp": t,
                "user": pd.Series(names, dtype=STRING),
                "message": pd.Series([f"login failed for {n}" for n in names], dtype=STRING),
            }
        )
    )
    events = redactor.redact_events(frame)
    quoted = Evidence(time=t, source="auth.log", line=1, message="login failed for acct00042x: bad password")
    incident = Incident(title="t", window_start=t, window_end=t, phases={}, phase_evidence={"onset": (quoted,)})
    out = redactor.redact_incident(incident)
    token = events["user"].iloc[42]
    assert out.phase_evidence["onset"][0].message == f"login failed for {token}: bad password"
    templates = redactor.redact_templates(pd.Series(["login failed for acct04999x", "disk full"], dtype=STRING))
    assert templates.tolist() == [f"login failed for {events['user'].iloc[4999]}", "disk full"]
