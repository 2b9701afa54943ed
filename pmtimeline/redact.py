"""Redaction of secrets and personal data in shared outputs: one module, every pattern in one place.

What is redacted (applied to free text: messages, URL paths, structured fields, evidence):

========================  ====================================================================
what                      replaced by
========================  ====================================================================
private key blocks        ``[PRIVATE KEY]``
JWTs                      ``[JWT]``
authorization headers     ``Authorization: Bearer [REDACTED]`` (bearer, basic, apikey, token, x-api-key)
cookies                   ``Cookie: session=[REDACTED]`` (names kept, values dropped)
passwords in URLs         ``https://alice:[REDACTED]@db.example/``
secrets in query strings  ``?password=[REDACTED]`` (password, token, api_key, secret, sig, session, code, ...)
key=value secrets         ``password=[REDACTED]`` (also URL-encoded ``password%3D...`` and JSON ``"password": "..."``)
AWS / vendor keys         ``[AWS KEY]``, ``[TOKEN]`` (GitHub, Slack, Stripe, Google API keys)
card numbers              ``[CARD …1111]`` (only when the Luhn check passes: 4111111111111112 is not a card)
IBANs                     ``[IBAN GB…32]`` (only when the mod-97 check passes)
e-mail addresses          ``user_3f2a9c1d@example.com`` (keyed pseudonym, domain kept)
IPv4 / IPv6 addresses     ``ip_5f3a9c1d`` (keyed pseudonym; validated with :mod:`ipaddress`)
user identities           ``user_1a2b3c4d`` in the ``user`` column, and wherever that value appears in text
========================  ====================================================================

Pseudonyms are a keyed BLAKE2b hash (BLAKE2's own MAC mode: a third of HMAC-SHA256's cost, which
counted on a 2 M-line build) of the value under a key made for each :class:`Redactor` (one per
report) and never stored, so the same IP or user maps to the same token throughout one report (the
breach analysis still joins) and to different tokens across reports.

No library fits: Presidio needs a spaCy model that cannot be installed offline here, scrubadub is
stale and heavy, detect-secrets targets source code (see shared reference robustness.md §4.1); the
patterns below follow its plugin inventory, with validators (Luhn, IBAN mod 97, ipaddress) to keep
false positives down.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import ahocorasick
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.incident import Evidence, Exposure, Incident, Metrics
from pmtimeline.schema import STRING

REDACTED: Final = "[REDACTED]"

_SECRET_KEYS: Final = (
    r"password|passwd|pwd|secret|client_secret|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|"
    r"auth[_-]?token|token|private[_-]?key|session[_-]?id|sessionid|sid|signature|sig"
)
_EQ: Final = r"(?:=|%3[dD]|:)"
# A key starts at a word boundary, or right after a URL-encoded delimiter (``%3Fpassword%3D...``),
# where ``\b`` sees no boundary between the hex digit and the key.
_KEY_START: Final = r"(?:(?<=%[0-9A-Fa-f]{2})|\b)"
# An optional quote before a value, also JSON-escaped inside a JSON string (``password=\"x\"``).
_QUOTE: Final = r"(?:\\?[\"'])"
# An unquoted value: stops at quotes, separators and backslashes, but takes JSON escape pairs
# (``\\``, ``\/``) whole, so that redacting inside a JSON string never leaves a dangling escape.
_BARE_VALUE: Final = r"(?:[^\s\"',;&}\\]|\\[\\/])+"

# (name, pattern, replacement) applied in order; replacements keep the structure readable.
_SECRET_PATTERNS: Final[tuple[tuple[str, re.Pattern[str], str], ...]] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
        "[PRIVATE KEY]",
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[JWT]"),
    (
        "auth_header",
        re.compile(
            r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*[\"']?\s*(?:bearer|basic|apikey|api-key|token|digest|negotiate)"
            r"\s+)[^\s\"',;]+"
        ),
        r"\1" + REDACTED,
    ),
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + REDACTED),
    ("api_key_header", re.compile(r"(?i)\b(x-api-key\s*[:=]\s*)[^\s\"',;]+"), r"\1" + REDACTED),
    ("cookie", re.compile(r"(?i)\b((?:set-)?cookie\s*:\s*)([^\r\n\\]+)"), ""),  # values handled in _cookie
    ("url_password", re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
    (
        "query_secret",
        re.compile(
            r"(?i)((?:[?&;]|%3[fF]|%26)(?:password|passwd|pwd|token|access_token|refresh_token|id_token|api_key|apikey|key|secret|"
            r"client_secret|sig|signature|session|sid|code|auth)(?:=|%3[dD]))[^&\s#\"']+"
        ),
        r"\1" + REDACTED,
    ),
    (
        # A quoted value is redacted whole, up to its closing quote (``"password": "two words"``).
        "key_quoted_value",
        re.compile(
            rf"(?i)({_KEY_START}(?:{_SECRET_KEYS})\b{_QUOTE}?\s*{_EQ}\s*)(\\?[\"'])(?!\[REDACTED\])"
            r"(?:[^\\\r\n]|\\.){0,1000}?(\2)"
        ),
        r"\1\2" + REDACTED + r"\3",
    ),
    (
        "key_value",
        re.compile(
            rf"(?i)({_KEY_START}(?:{_SECRET_KEYS})\b{_QUOTE}?\s*{_EQ}\s*{_QUOTE}?)(?!\[REDACTED\]){_BARE_VALUE}"
        ),
        r"\1" + REDACTED,
    ),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), "[AWS KEY]"),
    (
        "aws_secret",
        re.compile(r"(?i)(aws_?secret_?access_?key\s*[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        r"\1" + REDACTED,
    ),
    (
        "vendor_token",
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[0-9a-zA-Z]{24,}|"
            r"rk_live_[0-9a-zA-Z]{24,}|AIza[0-9A-Za-z_-]{35}|glpat-[0-9A-Za-z_-]{20})"
        ),
        "[TOKEN]",
    ),
)
_EMAIL_RE: Final = re.compile(r"\b([A-Za-z0-9._%+-]+)(?:@|\\u0040|%40|&#64;)([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# Card numbers start with 2-6 (IIN ranges); epoch milliseconds (starting with 1) never match.
_CARD_RE: Final = re.compile(r"(?<![\d-])(?=[2-6])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN_RE: Final = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4_RE: Final = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# Never inside a word: "::" and "d::" are valid IPv6 addresses, and Ruby's and C++'s ``Mysql2::Error``,
# ``ActiveRecord::StatementInvalid`` and ``std::vector`` are words to keep as written.
_IPV6_RE: Final = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# Cookie values hold no space, quote, comma, semicolon or backslash (RFC 6265), except quoted ones;
# stopping there keeps a cookie header inside a JSON string from eating the string's end.
_COOKIE_PAIR_RE: Final = re.compile(r"([^=;,\s\"]+)=(\"[^\"\r\n]*\"|[^;,\s\"\\]*)")

_PERCENT_RE: Final = re.compile(r"%[0-9A-Fa-f]{2}")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")

#: Free-text event columns that are redacted; identity columns are pseudonymized whole.
TEXT_COLUMNS: Final = ("message", "url_path", "fields", "alert_name")
PSEUDONYM_COLUMNS: Final = {"user": "user", "client_ip": "ip"}
#: Columns that hold a JSON object per row; redaction keeps them valid JSON.
JSON_COLUMNS: Final = ("fields",)
# A JSON key naming a secret: its value is replaced whole (``user.password``, ``client_secret``).
_SECRET_KEY_RE: Final = re.compile(rf"(?i)(?:^|[._-])(?:{_SECRET_KEYS}|authorization|cookie|set-cookie)$")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """True when ``text`` (spaces allowed) passes the IBAN mod-97 check."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


class Redactor:
    """Redacts text and pseudonymizes identities with a key made for this instance (one report).

    Example:
        >>> r = Redactor()
        >>> r.redact_text("login alice@bank.example from 10.0.0.1 password=hunter2")
        'login user_…@bank.example from ip_… password=[REDACTED]'
    """

    def __init__(self, key: bytes | None = None) -> None:
        # BLAKE2b takes keys of at most 64 bytes: a longer one given is hashed to 64.
        if key is not None and len(key) > 64:
            key = hashlib.blake2b(key).digest()
        self._key = key if key is not None else os.urandom(32)
        self._cache: dict[tuple[str, str], str] = {}
        # Redacted texts of recent columns: the same suspect values recur chunk after chunk.
        self._texts: dict[str, str] = {}
        # Every user name pseudonymized so far in this report (value -> token): also replaced where it
        # appears in text later, in the incident's quoted lines and the templates (those carry no user
        # column to say which names they hold). One automaton finds them all, however many.
        self._users: dict[str, str] = {}
        self._users_found: tuple[int, _KnownNames] = (0, _KnownNames({}))  # (names in it, automaton)

    def __repr__(self) -> str:
        return "Redactor(key=<per-report, not stored>)"

    def pseudonym(self, value: str, kind: str) -> str:
        """A stable token for ``value`` within this report: ``<kind>_<8 hex>``."""
        cache_key = (kind, value)
        token = self._cache.get(cache_key)
        if token is None:
            digest = hashlib.blake2b(f"{kind}\0{value}".encode(), key=self._key, digest_size=4).hexdigest()
            token = f"{kind}_{digest}"
            self._cache[cache_key] = token
        return token

    # -- text ------------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """Redact one string (see the module docstring for what is replaced).

        URL-encoded text is checked twice: when its decoded form still shows a secret that the
        encoding hid (``https%3A%2F%2Falice%3Ahunter2%40db``, a card number after ``%20``), the
        decoded form is redacted and returned instead, trading the original encoding for safety.
        """
        if not text:
            return text
        out = self._redact_once(text)
        if _PERCENT_RE.search(out):
            decoded = urllib.parse.unquote(out, errors="replace")
            if self._secrets(decoded) != decoded:
                out = self._redact_once(urllib.parse.unquote(text, errors="replace"))
        return out

    def _redact_text_cached(self, text: str) -> str:
        out = self._texts.get(text)
        if out is None:
            if len(self._texts) >= _TEXT_CACHE_SIZE:
                self._texts.clear()
            out = self._texts[text] = self.redact_text(text)
        return out

    def _secrets(self, text: str) -> str:
        """``text`` with secrets, cards and IBANs replaced (no pseudonyms)."""
        for name, pattern, repl in _SECRET_PATTERNS:
            if name == "cookie":
                text = pattern.sub(self._cookie, text)
            else:
                text = pattern.sub(repl, text)
        text = _CARD_RE.sub(self._card, text)
        return _IBAN_RE.sub(self._iban, text)

    def _redact_once(self, text: str) -> str:
        text = self._secrets(text)
        text = _EMAIL_RE.sub(self._email, text)
        text = _IPV4_RE.sub(self._ip, text)
        if ":" in text:
            text = _IPV6_RE.sub(self._ip, text)
        return text

    def redact_json(self, text: str, replace_known: Callable[[str], str] = lambda s: s) -> str:
        """Redact a JSON document (the ``fields`` column) so that it stays valid JSON.

        Every string (keys and values) is redacted as text, and the value of a key that names a
        secret (``password``, ``api_key``, ``user.password``, ...) is replaced whole, whatever its
        type. Text that is not JSON is redacted as plain text.
        """
        try:
            data = json.loads(text)
        except ValueError:
            return replace_known(self.redact_text(text))
        except RecursionError:  # absurdly deep nesting: keep nothing of it
            return json.dumps(REDACTED)
        changed = False

        def walk(value: object) -> object:
            nonlocal changed
            if isinstance(value, str):
                out = replace_known(self.redact_text(value))
                changed = changed or out != value
                return out
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, dict):
                result: dict[str, object] = {}
                for key, item in value.items():
                    new_key = walk(key)
                    assert isinstance(new_key, str)
                    if _SECRET_KEY_RE.search(key) and item is not None and not isinstance(item, dict | list):
                        changed = changed or item != REDACTED
                        result[new_key] = REDACTED
                    else:
                        result[new_key] = walk(item)
                return result
            return value

        try:
            redacted = walk(data)
        except RecursionError:
            return json.dumps(REDACTED)
        if not changed:
            return text
        try:
            out = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN/Infinity in the input: not strict JSON to begin with
            return replace_known(self.redact_text(text))
        if _SURROGATE_RE.search(out):
            # An escaped lone surrogate ("\\ud800") decodes to a str that UTF-8 cannot store: keep it escaped.
            out = json.dumps(redacted, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return out

    def redact_templates(self, templates: pd.Series) -> pd.Series:
        """Redact a column of message templates (messages with their variable parts masked).

        Masking can hide a secret from the patterns (``alice%3Ahunter2%40db`` becomes
        ``alice%3Ahunter2%<HEX>db``, whose ``%40`` no longer reads as the ``@`` of a URL password),
        so a template that still looks suspect after redaction is replaced whole by a token of this
        report (``<template 1a2b3c4d>``): equal templates get equal tokens, so counts and the
        comparison of templates across time hold.
        """
        redacted = self._redact_column(templates, self._known(), as_json=False)
        if redacted.empty:
            return redacted
        suspect = _matches(pa.array(redacted.fillna(""), type=pa.large_string()), _SUSPECT_RE2)
        if not suspect.any():
            return redacted
        flagged = redacted[suspect]
        tokens = {value: f"<{self.pseudonym(value, 'template')}>" for value in flagged.dropna().unique()}
        return redacted.mask(pd.Series(suspect, index=redacted.index), flagged.map(tokens)).astype(STRING)

    def redact_series(
        self, values: pd.Series, known: Iterable[tuple[str, str]] = (), *, as_json: bool = False
    ) -> pd.Series:
        """Redact a column of text. ``known`` (value, token) pairs, e.g. user names, are replaced
        wherever they appear in the text as whole words. ``as_json`` redacts each value with
        :meth:`redact_json`, so a column of JSON objects stays valid JSON.

        Vectorized: one RE2 pass over the column, and one Aho–Corasick pass for the known values,
        find the few values that might hold something to redact; only their distinct values go
        through the patterns and validators. The cost grows with the text, not with the number of
        known values.
        """
        return self._redact_column(values, self._known(dict(known)), as_json=as_json)

    def _known(self, extra: Mapping[str, str] | None = None) -> _KnownNames:
        """The known names: the users pseudonymized so far in this report, and ``extra``."""
        if extra and any(self._users.get(value) != token for value, token in extra.items()):
            return _KnownNames({**self._users, **extra})
        if self._users_found[0] != len(self._users):  # names are only ever added
            self._users_found = (len(self._users), _KnownNames(self._users))
        return self._users_found[1]

    def _redact_column(self, values: pd.Series, known: _KnownNames, *, as_json: bool) -> pd.Series:
        text = values.astype(STRING)
        if text.empty:
            return text
        column = _arrow_strings(text)
        if column.null_count == len(column):
            return text
        suspect = _suspects(column, known)
        if not pc.any(suspect).as_py():
            return text
        flagged = column.filter(suspect)
        distinct = pc.unique(flagged)
        replace_known = known.replace
        # A value flagged only for a known name holds nothing the patterns change (the filter is a
        # superset of what they change): the name is all there is to replace.
        patterned = _matches(distinct, _SUSPECT_RE2) if known else np.ones(len(distinct), dtype=bool)
        redacted = [
            (
                self.redact_json(s, replace_known)
                if as_json
                else replace_known(self._redact_text_cached(s) if pattern else s)
            )
            if s is not None
            else None
            for s, pattern in zip(distinct.to_pylist(), patterned.tolist(), strict=True)
        ]
        new_distinct = pa.array(redacted, type=column.type)
        if new_distinct.equals(distinct):
            return text
        replacements = pc.take(new_distinct, pc.index_in(flagged, distinct))
        out = pc.replace_with_mask(column, suspect, replacements)
        return pd.Series(pd.array(out, dtype=STRING), index=text.index, name=text.name)

    def pseudonymize_series(self, values: pd.Series, kind: str) -> tuple[pd.Series, dict[str, str]]:
        """Each value of an identity column replaced by its pseudonym (empty values become null),
        with the (value, token) mapping of its distinct values; computed once per distinct value."""
        text = values.astype(STRING)
        column = _arrow_strings(text)
        if text.empty or column.null_count == len(column):
            return text, {}
        encoded = pc.dictionary_encode(column)
        distinct = encoded.dictionary.to_pylist()
        tokens = {v: self.pseudonym(v, kind) for v in distinct if v}
        mapped = pa.array([tokens.get(v) for v in distinct], type=column.type)
        out = pc.take(mapped, encoded.indices)
        return pd.Series(pd.array(out, dtype=STRING), index=text.index, name=text.name), tokens

    # -- frames and incidents ----------------------------------------------------------------------

    def redact_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """A redacted copy of an event frame: text columns redacted, ``user`` and ``client_ip``
        pseudonymized (also where their values appear inside messages)."""
        if events.empty:
            return events
        out = events.copy()
        known: dict[str, str] = {}
        for column, kind in PSEUDONYM_COLUMNS.items():
            if column in out.columns:
                out[column], tokens = self.pseudonymize_series(out[column], kind)
                if column == "user":
                    known.update(tokens)
        self._users.update(known)
        # The frame's own users only: a name is replaced in the text of the events that name it as
        # their user (the incident and the templates, which name none, get every user of the report).
        names = _KnownNames(known)  # one automaton for all the text columns
        for column in TEXT_COLUMNS:
            if column in out.columns:
                out[column] = self._redact_column(out[column], names, as_json=column in JSON_COLUMNS)
        return out

    def redact_actors(self, actors: pd.DataFrame) -> pd.DataFrame:
        """Pseudonymize the identity columns of an actors table (client IPs, users, accounts)."""
        if actors.empty:
            return actors
        out = actors.copy()
        kind_of = out["actor_kind"] if "actor_kind" in out.columns else None
        for column in out.columns:
            if column in ("actor", "client_ip", "user", "account", "accounts"):
                if column == "actor" and kind_of is not None:
                    out[column] = [
                        self.pseudonym(str(v), "ip" if k == "client_ip" else "user") if isinstance(v, str) else v
                        for v, k in zip(out[column], kind_of, strict=True)
                    ]
                else:
                    kind = "ip" if column == "client_ip" else "user"
                    out[column] = out[column].map(lambda v, k=kind: self._pseudonym_any(v, k))
        return out

    def redact_incident(self, incident: Incident) -> Incident:
        """A redacted copy of an incident: evidence messages, summaries, the mechanism, action items,
        actors, accounts, endpoints."""
        known: dict[str, str] = {}
        for actor in incident.exposure.actors:
            kind = {"client_ip": "ip", "client_range": "net"}.get(actor.actor_kind, "user")
            if actor.actor_kind != "client_set":  # "500 addresses in 480 networks" names no one
                known[actor.actor] = self.pseudonym(actor.actor, kind)
            for account in actor.accounts:
                known[account] = self.pseudonym(account, "user")
        for account in incident.exposure.accounts_touched:
            known[account] = self.pseudonym(account, "user")
        replace_known = self._known(known).replace

        def text(value: str) -> str:
            return replace_known(self.redact_text(value))

        def evidence(items: Iterable[Evidence]) -> tuple[Evidence, ...]:
            return tuple(dataclasses.replace(e, message=text(e.message)) for e in items)

        exposure = Exposure(
            actors=tuple(
                dataclasses.replace(
                    a, actor=known.get(a.actor, a.actor), accounts=tuple(known.get(x, x) for x in a.accounts)
                )
                for a in incident.exposure.actors
            ),
            accounts_touched=tuple(known.get(x, x) for x in incident.exposure.accounts_touched),
            data_operations=evidence(incident.exposure.data_operations),
            operation_counts=incident.exposure.operation_counts,
        )
        candidates = tuple(
            dataclasses.replace(
                c,
                summary=text(_retemplated(c.summary, c.evidence, text)),
                evidence=evidence(c.evidence),
                why=text(c.why),
                new_errors=tuple(
                    dataclasses.replace(n, template=text(n.template), evidence=evidence((n.evidence,))[0])
                    for n in c.new_errors
                ),
            )
            for c in incident.root_cause_candidates
        )
        # The mechanism and the action items quote log lines too (a signature, the facts' evidence).
        mechanism = incident.mechanism
        if mechanism is not None:
            mechanism = dataclasses.replace(
                mechanism,
                signature=text(mechanism.signature),
                label=text(mechanism.label),
                first=evidence((mechanism.first,))[0],
            )
        action_items = (
            None
            if incident.action_items is None
            else tuple(
                dataclasses.replace(a, action=text(a.action), fact=text(a.fact), evidence=evidence(a.evidence))
                for a in incident.action_items
            )
        )
        endpoints = incident.metrics.affected_endpoints
        metrics: Metrics = dataclasses.replace(
            incident.metrics,
            affected_endpoints=tuple((text(p), n) for p, n in endpoints) if endpoints is not None else None,
        )
        return dataclasses.replace(
            incident,
            phase_evidence={p: evidence(ev) for p, ev in incident.phase_evidence.items()},
            root_cause_candidates=candidates,
            mechanism=mechanism,
            action_items=action_items,
            exposure=exposure,
            metrics=metrics,
            redacted=True,
        )

    # -- replacement callbacks -----------------------------------------------------------------------

    def _pseudonym_any(self, value: object, kind: str) -> object:
        if isinstance(value, str):
            return self.pseudonym(value, kind)
        if isinstance(value, list | tuple):
            return [self.pseudonym(str(v), kind) for v in value]
        if hasattr(value, "tolist"):
            return [self.pseudonym(str(v), kind) for v in value.tolist()]
        return value

    def _cookie(self, m: re.Match[str]) -> str:
        return m.group(1) + _COOKIE_PAIR_RE.sub(lambda p: f"{p.group(1)}={REDACTED}", m.group(2))

    def _card(self, m: re.Match[str]) -> str:
        # The pattern is greedy: a card followed by more digits ("4111 1111 1111 1111 2024") matches
        # as a whole and fails Luhn, so the longest valid prefix (13-19 digits) is looked for.
        raw = m.group(0)
        for end in _prefix_ends(raw, 13, 19, str.isdigit):
            digits = re.sub(r"[ -]", "", raw[:end])
            if luhn_valid(digits):
                return f"[CARD …{digits[-4:]}]" + raw[end:]
        return raw

    def _iban(self, m: re.Match[str]) -> str:
        # Greedy too: "DE89370400440532013000 HTTP" fails mod 97 as a whole; try shorter prefixes.
        raw = m.group(0)
        for end in _prefix_ends(raw, 15, 34, str.isalnum):
            if iban_valid(raw[:end]):
                compact = raw[:end].replace(" ", "")
                return f"[IBAN {compact[:2]}…{compact[-2:]}]" + raw[end:]
        return raw

    def _email(self, m: re.Match[str]) -> str:
        return f"{self.pseudonym(m.group(1).lower(), 'user')}@{m.group(2)}"

    def _ip(self, m: re.Match[str]) -> str:
        raw = m.group(0)
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            return raw
        return self.pseudonym(raw, "ip")


def _prefix_ends(raw: str, shortest: int, longest: int, counts: Callable[[str], bool]) -> list[int]:
    """End positions of the prefixes of ``raw`` holding ``shortest``..``longest`` counted characters,
    longest first. A prefix ends at the end of ``raw`` or before a separator (space or dash): a run
    of digits is never split, so a long numeric id is not mistaken for a card it starts with."""
    ends: list[int] = []
    n = 0
    for i, ch in enumerate(raw):
        if counts(ch):
            n += 1
            if shortest <= n <= longest and (i + 1 == len(raw) or raw[i + 1] in " -"):
                ends.append(i + 1)
    return ends[::-1]


# Python's \d, \w and \s (str patterns) are Unicode-aware, RE2's are ASCII-only: these RE2 classes
# contain Python's (a "password\u00a0=..." or a card in other scripts' digits still trips the filter).
_RE2_DIGIT: Final = r"\p{Nd}"
_RE2_WORD_CHARS: Final = r"\p{L}\p{N}_"
_RE2_SPACE: Final = r"[\s\x{b}\x{1c}-\x{1f}\x{85}\p{Z}]"


def _re2_caseless(words: str) -> str:
    """``words`` for an RE2 ``(?i:...)`` group matching all that Python's ``(?i)`` does: RE2 folds
    case by Unicode's simple folding, Python also matches "İ" and "ı" for "i"."""
    return words.replace("i", "[iİı]")


#: A superset of what the patterns above can change, as one RE2 pattern: a value that does not match
#: it is returned unchanged without running them. Keep it in step with the patterns (the tests check
#: every redaction test value against it). Arrow's RE2 rather than polars (about a fifth faster here):
#: redaction runs in whatever process calls it, and one that has run polars can no longer fork() workers
#: that use polars (its thread pool does not survive fork).
_SUSPECT_RE2: Final = (
    # a secret-looking key followed by a separator (key=value, "key": value, key%3Dvalue)
    "(?i:(?:"
    + _re2_caseless("password|passwd|pwd|secret|token|api.?key|session|sid|sig|signature|key|code|cookie|private.?key")
    + rf"|auth[{_RE2_WORD_CHARS}]*)[{_RE2_WORD_CHARS}.-]*\\?[\"']?{_RE2_SPACE}*(?:=|:|%3[dD]))"
    + "|(?i:"
    + _re2_caseless("bearer|cookie|private key|akia|asia|abia|acca|xox[abprs]-|sk_live|rk_live|aiza|glpat-|gh[pousr]_")
    + ")"
    + r"|eyJ|://[^/\s]*@|%[0-9A-Fa-f]{2}|@|\\u0040|&#64;"
    + rf"|(?:{_RE2_DIGIT}[ -]?){{12,18}}{_RE2_DIGIT}|[A-Z]{{2}}{_RE2_DIGIT}{{2}}(?: ?[A-Z0-9]){{11,}}"
    + rf"|{_RE2_DIGIT}{{1,3}}\.{_RE2_DIGIT}{{1,3}}\.{_RE2_DIGIT}{{1,3}}\.{_RE2_DIGIT}{{1,3}}"
    + r"|::|(?:[0-9A-Fa-f]{1,4}:){7}"
)
_KNOWN_MIN_CHARS: Final = 3
# What may not touch a known value found in text (it would be part of a longer word, name or path).
_NAME_BEFORE: Final = re.compile(r"[\w.-]")
_NAME_AFTER: Final = re.compile(r"[\w-]")
_TEXT_CACHE_SIZE: Final = 20_000
_BLOCK_ROWS: Final = 64


def _arrow_strings(text: pd.Series) -> pa.Array:
    """The values of a ``string[pyarrow]`` column as one Arrow array (no copy when it is one chunk)."""
    column = pa.array(text.array)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _suspects(values: pa.Array, known: _KnownNames | None = None) -> pa.Array:
    """Which values might hold something to redact (the patterns' trigger, or a known identity)."""
    mask = _matches(values, _SUSPECT_RE2)
    if known:
        mask |= _blockwise(values, known.found_in)
    return pa.array(mask, type=pa.bool_())


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    """Which values hold a match of the RE2 ``pattern`` (null: no), searched block-wise (:func:`_blockwise`)."""

    def found(block: pa.Array) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.match_substring_regex(block, pattern), False), dtype=bool)

    return _blockwise(values, found)


def _blockwise(values: pa.Array, found: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """Which values hold what ``found`` (a test of each value of an Arrow string array) looks for.

    Most values hold nothing, and the cost is mostly per value searched: the values are first
    searched in blocks of :data:`_BLOCK_ROWS` joined by newlines, and only the values of blocks
    with a hit one by one. What is within a value is within its block, so nothing is missed (the
    tests look for text, never anchors); a hit across two values only costs that second look.
    """
    n = len(values)
    if n <= _BLOCK_ROWS:
        return found(values)
    bounds = np.append(np.arange(0, n, _BLOCK_ROWS, dtype=np.int32), np.int32(n))
    blocks = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(bounds), pc.fill_null(values, "")), pa.scalar("\n", type=values.type)
    )
    hit = np.flatnonzero(found(blocks))
    mask = np.zeros(n, dtype=bool)
    if len(hit):
        rows = (hit[:, None] * _BLOCK_ROWS + np.arange(_BLOCK_ROWS)).ravel()
        rows = rows[rows < n]
        mask[rows[found(values.take(pa.array(rows)))]] = True
    return mask


def _retemplated(summary: str, cited: Iterable[Evidence], redact: Callable[[str], str]) -> str:
    """A summary quoting the template of a cited message, with the template of the redacted message.

    Templates mask variable parts (``%40db`` becomes ``%<HEX>``), which can hide a secret from the
    patterns (``https://alice%3Ahunter2%40db.example``); so the template is made again from the
    redacted message instead of redacting the template.
    """
    from pmtimeline.template_mining import requoted
    from pmtimeline.templates import message_templates

    messages = [e.message for e in cited if e.message]
    if not messages:
        return summary
    raw = message_templates(pd.Series(messages, dtype=STRING))
    safe = message_templates(pd.Series([redact(m) for m in messages], dtype=STRING))
    for before, after in zip(raw, safe, strict=True):
        if isinstance(before, str) and before and before in summary:
            summary = summary.replace(before, str(after))
        elif isinstance(before, str) and before and isinstance(after, str):
            # The summary may quote the mined template (some words written <*>): made again alike.
            summary = requoted(summary, before, after)
    return summary


class _KnownNames:
    """Known identities (value -> token, e.g. user names and their pseudonyms) to find in text.

    A value is replaced only as a whole word: not after a word character, dot or dash, not before a
    word character or dash; where several start at one place the longest wins ("cust-00042" never
    eats part of "cust-000421"); values shorter than 3 characters are never looked for. The search is
    an Aho–Corasick automaton of all the values: one pass over the text, whatever their number (a
    regular expression alternating thousands of names costs time per name at every position).
    """

    def __init__(self, known: Mapping[str, str]) -> None:
        self.tokens = {value: token for value, token in known.items() if len(value) >= _KNOWN_MIN_CHARS}
        self._automaton = ahocorasick.Automaton()
        for value in self.tokens:
            self._automaton.add_word(value, len(value))
        if self.tokens:
            self._automaton.make_automaton()

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def found_in(self, values: pa.Array) -> np.ndarray:
        """Which values hold a known value anywhere (also inside a word: a superset of what
        :meth:`replace` replaces); null values hold none."""
        if not self.tokens:
            return np.zeros(len(values), dtype=bool)
        search = self._automaton.iter
        return np.fromiter(
            (text is not None and next(search(text), None) is not None for text in values.to_pylist()),
            dtype=bool,
            count=len(values),
        )

    def replace(self, text: str) -> str:
        """``text`` with each known value found as a whole word replaced by its token."""
        if not self.tokens:
            return text
        spans: list[tuple[int, int]] = []  # (start, -length): by start, the longest first
        for last, length in self._automaton.iter(text):
            start, end = last + 1 - length, last + 1
            if (start and _NAME_BEFORE.match(text, start - 1)) or _NAME_AFTER.match(text, end):
                continue
            spans.append((start, -length))
        if not spans:
            return text
        spans.sort()
        parts: list[str] = []
        position = 0
        # As a regular expression scans: the leftmost start first, then on after the value replaced.
        for start, negative_length in spans:
            if start < position:
                continue
            end = start - negative_length
            parts += (text[position:start], self.tokens[text[start:end]])
            position = end
        parts.append(text[position:])
        return "".join(parts)
