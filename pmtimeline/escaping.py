"""Escaping of untrusted log text for each output: terminal, Markdown, Plotly's HTML subset, CSV.

Log lines are written by attackers as much as by services. Nothing taken from a log may become a
live link, script, heading, mention, formula or terminal control sequence in any output, so every
output path passes log-derived text through exactly one of these functions.

=================  ==========================================================================
output             escaper
=================  ==========================================================================
terminal           :func:`escape_terminal` (controls shown as ``\\x1b``, ``\\u202e``, newline ``⏎``)
Markdown           :func:`markdown_code`, :func:`markdown_cell`, :func:`markdown_text`
Plotly (HTML)      :func:`plotly_text`, :func:`plotly_texts`
HTML               :func:`html_text` (notebook summaries)
CSV                :func:`csv_cell`, :func:`csv_column` (controls escaped, newlines and tabs kept)
JSON, JSON lines   :func:`json_safe` over the serialized document (controls as JSON ``\\u`` escapes,
                   so readers get the data back unchanged)
TOML               :func:`toml_string`
=================  ==========================================================================

"Controls" (:data:`CONTROL_RANGES`) are the C0 and C1 control characters (ESC, BEL, CR, backspace,
NUL, ...; not TAB), DEL, the bidirectional marks, embeddings, overrides and isolates (U+061C,
U+200E/F, U+202A-202E, U+2066-2069), the zero-width and other invisible format characters (U+200B-200D,
U+2060-2064, U+206A-206F, U+FEFF, U+180E, U+FFF9-FFFB), the line and paragraph separators U+2028/9 and
the invisible tag characters U+E0000-E007F: everything that can drive a terminal, reorder or hide text.
"""

from __future__ import annotations

import html
import re
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Code point ranges of the characters every output shows escaped (see the module docstring): C0
#: controls but TAB, DEL, C1 controls, bidi marks/overrides/isolates, invisible format characters,
#: the line and paragraph separators and the tag characters.
CONTROL_RANGES: Final = (
    (0x00, 0x08),
    (0x0A, 0x1F),
    (0x7F, 0x9F),
    (0x061C, 0x061C),  # ARABIC LETTER MARK: a bidi mark
    (0x180E, 0x180E),  # MONGOLIAN VOWEL SEPARATOR: invisible
    (0x200B, 0x200F),  # zero-width space/joiners, LRM, RLM
    (0x2028, 0x202E),  # line/paragraph separators (line breaks to JavaScript and editors), embeddings, overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # isolates, deprecated shaping controls
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFF9, 0xFFFB),  # interlinear annotation controls
    (0xE0000, 0xE007F),  # tag characters: invisible ASCII look-alikes
)


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"


_CONTROL_RE: Final = re.compile(_char_class(CONTROL_RANGES))
# The same class in RE2 syntax (Arrow's regex kernels), for column-wise checks.
_CONTROL_RE2: Final = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in CONTROL_RANGES) + "]"
# CSV keeps line feeds (RFC 4180 quoting carries them; stack traces are multi-line) and tabs; a CR
# is escaped, as `OK\rFAIL` overwrites a line when the file is shown on a terminal.
_CSV_RANGES: Final = ((0x00, 0x08), (0x0B, 0x1F), *CONTROL_RANGES[2:])
_CSV_CONTROL_RE: Final = re.compile(_char_class(_CSV_RANGES))
_CSV_CONTROL_RE2: Final = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _CSV_RANGES) + "]"
# In serialized JSON, TAB, LF and CR can only be whitespace between tokens (inside strings the
# serializer escapes them); every other control is inside a string, where a \u escape means the same.
_JSON_CONTROL_RE: Final = re.compile(_char_class(((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), *CONTROL_RANGES[2:])))
_MD_SPECIAL_RE: Final = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~@:])")
_CSV_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\x00")


def _visible_char(code: int) -> str:
    if code == 0x0A:
        return "⏎"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _visible(match: re.Match[str]) -> str:
    return _visible_char(ord(match.group(0)))


#: Every character _CONTROL_RE matches, with its visible escape (for multi-pattern replacement).
_CONTROL_CHARS: Final = {chr(c): _visible_char(c) for a, b in CONTROL_RANGES for c in range(a, b + 1)}


def strip_controls(text: str) -> str:
    """Replace control, bidi and invisible characters with visible escapes (``\\x1b``, ``\\u202e``)."""
    return _CONTROL_RE.sub(_visible, text)


def shorten(text: str, limit: int = 200) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def escape_terminal(text: object, limit: int | None = None) -> str:
    """Text safe to print on a terminal: no ESC, BEL, CSI, CR, backspace or bidi override."""
    out = strip_controls(str(text))
    return shorten(out, limit) if limit else out


#: Top-level labels that make a bare dotted token a host name (``fx-rates.example.net``). Curated, not
#: the whole root zone: ccTLDs that are also words, file extensions or identifiers (``.py``, ``.sh``,
#: ``.ms``, ``.id``, ``.is``, ``.to``, ``.in``, ``.it``, ``.es``, ``.pl``, ``.md``), and generic ones
#: that name logger methods (``logger.info``) or types (``np.int``), would turn code into "hosts".
_GENERIC_TLDS: Final = "com net org edu gov mil biz io co ai xyz onion tv ly"
_COUNTRY_TLDS: Final = "uk eu de fr nl ch se dk fi ru cn jp kr au nz br mx za sg hk tw ie ua cz hu ro bg gr tr il ar cl"
HOST_TLDS: Final = frozenset(f"{_GENERIC_TLDS} {_COUNTRY_TLDS}".split())
#: Labels that make a host name only after two or more others (``api.payments.example``,
#: ``db.corp.internal``): on their own (``config.example``) they are file names or attributes.
_DEEP_HOST_TLDS: Final = frozenset({"example", "arpa", "internal", "localhost"})
_URL_SCHEME_HOST_RE: Final = re.compile(
    r"\b(?P<scheme>https?|ftp)://(?P<userinfo>[^\s/@`]*@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/?#:@`'\"<>\[\]]+)",
    re.IGNORECASE,
)
# A whole dotted token: never a piece of a longer one (java.net out of java.net.NoRouteToHostException).
_DOTTED_TOKEN_RE: Final = re.compile(r"(?<![\w.\-\[])[A-Za-z0-9][\w-]*(?:\.[\w-]+)+")
_MIXED_CASE_RE: Final = re.compile(r"[a-z][A-Z]|[A-Z][a-z]")


def is_host_name(token: str) -> bool:
    """True when a bare dotted token reads as a host name, not as code, a file or a version.

    ``sftp.clearing.example.net``, ``www.example.org`` and ``evil.io`` are host names;
    ``java.net.NoRouteToHostException``, ``org.apache.kafka.common``, ``c.b.x.idp.SomeClient``,
    ``search.handler``, ``psycopg2.OperationalError``, ``worker.py``, ``logger.info``, ``System.IO``
    and ``2.14.0`` are not. The last label must be one of :data:`HOST_TLDS` (``example``,
    ``internal``, ``arpa`` and ``localhost`` after two other labels, ``*.svc.cluster.local``); no
    label may hold ``_`` or mix cases the way class names do (``System``, ``NoRoute``).
    """
    labels = token.split(".")
    if len(labels) < 2 or any(
        not label or "_" in label or label[0] == "-" or label[-1] == "-" or _MIXED_CASE_RE.search(label)
        for label in labels
    ):
        return False
    tld = labels[-1].lower()
    if tld in HOST_TLDS:
        return True
    if len(labels) >= 3 and (tld in _DEEP_HOST_TLDS or token.lower().endswith(".svc.cluster.local")):
        return True
    return labels[0].lower() == "www" and len(labels) >= 3 and tld.isalpha()


def defang_urls(text: str) -> str:
    """Defang URLs and host names so no renderer or chat tool turns them into live links.

    ``https://evil.example/login`` -> ``hxxps://evil[.]example/login`` (the scheme, and the dots of
    the host only: the path keeps its words); a bare host name (:func:`is_host_name`) such as
    ``sftp.clearing.example.net`` -> ``sftp[.]clearing[.]example[.]net``. Nothing else changes:
    ``java.net.NoRouteToHostException``, ``worker.py``, ``2.14.0`` and IP addresses stay as written.
    """
    if "." not in text and "://" not in text:
        return text  # fail fast: called for every quoted message of a report

    def url(m: re.Match[str]) -> str:
        scheme = m.group("scheme").lower().replace("t", "x", 2)
        return f"{scheme}://{m.group('userinfo') or ''}{m.group('host').replace('.', '[.]')}"

    def host(m: re.Match[str]) -> str:
        token = m.group(0)
        return token.replace(".", "[.]") if is_host_name(token) else token

    return _DOTTED_TOKEN_RE.sub(host, _URL_SCHEME_HOST_RE.sub(url, text))


def markdown_code(text: object, limit: int | None = 200, defang: bool = True) -> str:
    """Untrusted text as an inline Markdown code span: rendered literally, never as markup.

    The fence is one backtick longer than the longest backtick run inside; the content is padded
    with a space on each side only where CommonMark needs it (content starting or ending with a
    backtick or a space); newlines become ``⏎``; control characters are escaped; URLs and host
    names are defanged unless ``defang`` is False (a ``source:line`` citation must stay the path it
    cites, also under a directory named after a host).
    """
    value = strip_controls(str(text))
    value = defang_urls(value) if defang else value
    if limit:
        value = shorten(value, limit)
    if not value:
        return "` `"
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each side of a span that has other content than spaces.
    pad = " " if value.strip(" ") and (value[0] in "` " or value[-1] in "` ") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def markdown_cell(text: object, limit: int | None = 200, defang: bool = True) -> str:
    """Untrusted text as a code span inside a GFM table cell.

    GFM splits table rows on ``|`` before it parses code spans, so a pipe inside the span must be
    written ``\\|`` to stay in its cell (the table parser removes the backslash again).
    """
    return markdown_code(text, limit, defang).replace("|", "\\|")


def markdown_text(text: object, limit: int | None = 200) -> str:
    """Untrusted text as plain Markdown prose: every markup character backslash-escaped, HTML-escaped."""
    value = defang_urls(strip_controls(str(text)))
    if limit:
        value = shorten(value, limit)
    value = html.escape(value, quote=False)
    return _MD_SPECIAL_RE.sub(r"\\\1", value)


def html_text(text: object, limit: int | None = None) -> str:
    """Untrusted text for an HTML page (a notebook's summary): controls made visible, then
    ``& < > " '`` escaped, so it is never markup nor reordered."""
    value = strip_controls(str(text))
    return html.escape(shorten(value, limit) if limit else value)


def plotly_text(text: object, limit: int | None = 200) -> str:
    """Untrusted text for Plotly labels, hover text and titles.

    plotly.js renders a pseudo-HTML subset (``<a href>``, ``<span style>``, ``<br>``), so ``& < >``
    are escaped; plotly.js shows the escaped entities as the literal characters.
    """
    value = strip_controls(str(text))
    if limit:
        value = shorten(value, limit)
    return html.escape(value, quote=False)


def plotly_texts(values: pd.Series, limit: int | None = 200) -> np.ndarray:
    """:func:`plotly_text` of every value of a column (nulls become ``""``), as an object array.

    Vectorized with Arrow kernels: control characters are replaced in the values that hold any,
    then values are shortened and ``& < >`` escaped column-wise.
    """
    text = values.astype("string[pyarrow]").fillna("")
    column = pa.array(text.array)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if limit:
        # Every character stays at least one character when escaped, so the first limit + 1 decide
        # both the cut and what is kept of a long value (stack traces are long).
        column = pc.utf8_slice_codeunits(column, 0, limit + 1)
    controls = pc.match_substring_regex(column, _CONTROL_RE2)
    if pc.any(controls).as_py():
        # Line breaks (stack traces) are by far the most common: one pass for them, one pass per
        # control character only over the few values that hold others.
        held = pc.replace_substring(column.filter(controls), "\n", _CONTROL_CHARS["\n"])
        others = pc.match_substring_regex(held, _CONTROL_RE2)
        if pc.any(others).as_py():
            rest = held.filter(others)
            # One pass per control character present: the few values holding them, joined, say which.
            items = pa.ListArray.from_arrays(pa.array([0, len(rest)], pa.int32()), rest)
            joined = pc.binary_join(items, pa.scalar("", type=rest.type))
            present = set(joined[0].as_py()) & _CONTROL_CHARS.keys()
            for char in sorted(present):
                rest = pc.replace_substring(rest, char, _CONTROL_CHARS[char])
            held = pc.replace_with_mask(held, others, rest)
        column = pc.replace_with_mask(column, controls, held)
    if limit:
        cut = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(column, 0, max(limit - 1, 0)),
            pa.scalar("…", type=column.type),
            pa.scalar("", type=column.type),
        )
        column = pc.if_else(pc.greater(pc.utf8_length(column), limit), cut, column)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):  # "&" first, as html.escape does
        column = pc.replace_substring(column, char, entity)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet evaluates and no terminal obeys: controls (but line feeds and
    tabs, which CSV quoting carries) are shown escaped (``\\x1b``, ``\\x0d``, ``\\u202e``), then strings
    starting with = + - @ TAB get a ``'``.

    Non-strings (numbers, timestamps) are returned unchanged so numeric columns stay numeric.
    """
    if not isinstance(value, str):
        return value
    value = _CSV_CONTROL_RE.sub(_visible, value)
    return "'" + value if value.startswith(_CSV_TRIGGERS) else value


def csv_column(values: pd.Series) -> pd.Series:
    """:func:`csv_cell` over a whole column, vectorized: string columns only, so numbers stay numbers."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)  # a notebook's categorical text is text too
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return values
    text = values.astype("string")
    # Terminal controls and bidi overrides are shown escaped (a CSV gets cat-ed and opened in
    # viewers too); newlines and tabs stay, RFC 4180 quoting carries them.
    # Found with Arrow's RE2 (Python's re with this class costs four times as much per value), over
    # the whole column at once first: almost every column holds none.
    controls = _matches(text, _CSV_CONTROL_RE2) if _any_match(text, _CSV_CONTROL_RE2) else None
    if controls is not None and bool(controls.any()):
        # Only the values that hold one are rewritten (by position: an index may repeat).
        at = np.flatnonzero(controls.to_numpy())
        escaped = text.iloc[at].str.replace(_CSV_CONTROL_RE, _visible, regex=True).to_numpy()
        values = values.copy()
        values.iloc[at] = escaped
        text = values.astype("string")
    risky = text.str.startswith(_CSV_TRIGGERS).fillna(False)
    if values.dtype == object:
        # An object column may mix strings and numbers: only its strings get the prefix.
        risky &= values.map(lambda v: isinstance(v, str)).astype(bool)
    return values.where(~risky, "'" + text) if bool(risky.any()) else values


def json_safe(document: str) -> str:
    """A serialized JSON document (or JSON lines) with every control character of its strings
    written as a JSON ``\\u`` escape (``\\u202e``, ``\\u001b``, a surrogate pair for a tag character).

    ``json.dumps(..., ensure_ascii=False)`` and pandas' ``to_json(force_ascii=False)`` keep C1
    controls, DEL and bidi overrides raw, which reorder or hide text in a terminal or an editor; the
    escapes are the same JSON value, so a reader gets the data back unchanged.
    """
    if document.isascii():
        # Serializers escape every C0 control inside strings: DEL is all an ASCII document may hold raw.
        return document.replace("\x7f", "\\u007f") if "\x7f" in document else document
    if not _JSON_CONTROL_RE.search(document):
        return document
    return _JSON_CONTROL_RE.sub(_json_escape, document)


def has_controls(values: pd.Series) -> bool:
    """Whether any value of a text column holds a control, bidi or invisible character (one
    vectorized RE2 pass; nulls and non-text columns hold none)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(values.cat.categories)
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object) or values.empty:
        return False
    return _any_match(values, _CONTROL_RE2)


def _arrow_text(values: pd.Series) -> pa.LargeStringArray:
    column = pa.array(values.astype("string[pyarrow]").array)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.large_string()) if column.type != pa.large_string() else column


def _any_match(values: pd.Series, pattern: str) -> bool:
    """Whether any value holds a character of the RE2 class ``pattern``: one pass over the column's
    text buffer seen as one string (each value is whole UTF-8, so a character found there is a
    character of one value; bytes under a null may add a false alarm, never a miss)."""
    column = _arrow_text(values)
    _, offset_buffer, data = column.buffers()
    if len(column) == 0 or offset_buffer is None or data is None:
        return False
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[column.offset : column.offset + len(column) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    if end <= start:
        return False
    whole = pa.LargeStringArray.from_buffers(
        1, pa.py_buffer(np.array([0, end - start], dtype=np.int64)), data.slice(start, end - start)
    )
    return bool(pc.match_substring_regex(whole, pattern)[0].as_py())


def _matches(values: pd.Series, pattern: str) -> pd.Series:
    """Which values match an RE2 ``pattern`` (nulls do not), as a bool Series on ``values``' index."""
    found = pc.fill_null(pc.match_substring_regex(_arrow_text(values), pattern), False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code < 0x10000:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (``"..."``): quotes and backslashes escaped, every control
    character (TOML forbids C0 controls and DEL raw; bidi overrides reorder an editor's line) as a
    ``\\u``/``\\U`` escape, all else as written (``json.dumps`` is no substitute: it writes an astral
    character as a surrogate pair, which TOML refuses)."""
    body = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL_RE.sub(_toml_escape, body) + '"'


def _toml_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
