"""Failure signatures: the words by which logs name a trigger or a failure mechanism.

A *signature* is a named, case-insensitive RE2 pattern searched in an error's whole text (its
message, stack trace included, and its structured ``fields``, where ECS puts ``error.stack_trace``).
The analysis counts the error and warning events of each signature exactly, in the aggregates'
``signatures`` table (see :class:`pmtimeline.aggregate.EventDetails`), and keeps the first event
of each whole, so that :mod:`pmtimeline.root_cause` can name the mechanism of an incident ("FATAL:
sorry, too many clients already", 305 events) and recognize external triggers (an expired
certificate, a quota) when no change explains the incident.

An event gets the first signature of :data:`SIGNATURES` that its text matches: the specific
mechanisms come before the generic symptoms (a pool timeout whose cause is "too many clients" is
counted as "too many clients").

=========================  ==============================  ===================================
signature                  trigger                         typical words
=========================  ==============================  ===================================
certificate_expired        certificate_expiry              certificate has expired, PKIX path
                                                           validation failed, CERTIFICATE_VERIFY_FAILED
date_edge                  calendar                        invalid date, day is out of range for month
quota_exceeded             quota                           RequestLimitExceeded, quota exceeded,
                                                           rate limit, 429 Too Many Requests
memory_exhausted           resource_exhaustion             OutOfMemoryError, OOMKilled, Killed process
disk_full                  resource_exhaustion             No space left on device
file_descriptors           resource_exhaustion             Too many open files
db_connections_exhausted   resource_exhaustion             too many clients, too many connections
connection_pool_exhausted  (a symptom)                     Connection is not available, pool exhausted
network_partition          network                         changed state to down, packet loss
dependency_unreachable     dependency_outage               Connection refused, No route to host,
                                                           connect timed out, no healthy upstream
=========================  ==============================  ===================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.polars_regex import search_ignoring_case
from pmtimeline.schema import STRING
from pmtimeline.templates import arrow_text


@dataclass(frozen=True)
class Signature:
    """A named pattern of failure words.

    ``trigger`` is the kind of external trigger the words point to (None for a symptom that never
    starts an incident by itself); ``label`` is how the draft names the mechanism.
    """

    name: str
    trigger: str | None
    label: str
    pattern: str


#: In matching order: the first signature an event's text matches is its signature.
SIGNATURES: Final[tuple[Signature, ...]] = (
    Signature(
        "certificate_expired",
        "certificate_expiry",
        "an expired or not yet valid TLS certificate",
        r"certificate (has )?expired|certificate is not yet valid|x509: certificate has expired"
        r"|PKIX path validation failed|CERTIFICATE_VERIFY_FAILED|CertificateExpiredException"
        r"|certificate verify failed: certificate has expired"
        r"|certificate (creation|generation|issuance|renewal|validation) failed",
    ),
    Signature(
        "date_edge",
        "calendar",
        "a calendar edge (a leap day or second, a new year, a daylight-saving change)",
        r"invalid date|not a valid date|day is out of range for month|date out of range|leap (day|second)"
        r"|year \d+ is out of range",
    ),
    Signature(
        "quota_exceeded",
        "quota",
        "a quota or rate limit reached",
        r"RequestLimitExceeded|quota exceeded|QuotaExceeded|exceeded (your|the) quota|rate limit(ed| exceeded)?"
        r"|ThrottlingException|Throttling: Rate exceeded|429 Too Many Requests|HTTP 429|status(code)?[ =:]+429\b",
    ),
    Signature(
        "memory_exhausted",
        "resource_exhaustion",
        "memory exhaustion",
        r"OutOfMemoryError|OOMKilled|Out of memory: Kill|Killed process \d+|oom-kill|Cannot allocate memory"
        r"|\bMemoryError\b|memory limit exceeded",
    ),
    Signature("disk_full", "resource_exhaustion", "a full disk", r"No space left on device|ENOSPC|disk (is )?full"),
    Signature("file_descriptors", "resource_exhaustion", "file descriptor exhaustion", r"Too many open files|EMFILE"),
    Signature(
        "db_connections_exhausted",
        "resource_exhaustion",
        "the database's connection limit",
        r"too many clients|too many connections|remaining connection slots are reserved"
        r"|max_connections|ER_CON_COUNT_ERROR",
    ),
    Signature(
        "connection_pool_exhausted",
        None,
        "an exhausted connection pool",
        r"Connection is not available, request timed out|pool (is )?exhausted|could not obtain a (database )?connection"
        r"|Timeout waiting for connection from pool|QueuePool limit",
    ),
    Signature(
        "network_partition",
        "network",
        "a network failure (a link down, packet loss)",
        r"changed state to down|%LINK-\d-UPDOWN|\blink\b[^.;]{0,24}\bdown\b|carrier lost|packet loss|packets? dropped"
        # An interface, port or line protocol going down, as network devices word it (Cisco, Arista,
        # Juniper, Linux), and a routing adjacency lost (a BGP or OSPF neighbour down).
        r"|\b(interface|port|line protocol|(ethernet|eth|xe-|ge-|et-|te|gi|swp|bond|port-channel)[\d/.:-]*)"
        r"\b[^.;]{0,40}\b(is|went|goes|changed state to) (administratively )?down\b"
        r"|\b(bgp|ospf|isis)\b.{0,60}\b(neighbou?r|peer|session|adjacency)\b.{0,40}\b(down|lost|closed|reset)\b"
        r"|%BGP-\d-ADJCHANGE.{0,80}\bdown\b"
        r"|network (is )?unreachable|network partition|split[- ]brain",
    ),
    Signature(
        "dependency_unreachable",
        "dependency_outage",
        "an unreachable dependency",
        r"Connection refused|ECONNREFUSED|No route to host|NoRouteToHostException|connect timed out"
        r"|Connection timed out|UnknownHostException|Name or service not known|no healthy upstream"
        r"|upstream connect error|Temporary failure in name resolution|ECONNRESET|Connection reset by peer",
    ),
)
#: Signatures by name.
SIGNATURE_BY_NAME: Final[Mapping[str, Signature]] = {s.name: s for s in SIGNATURES}
_ANY: Final = "|".join(f"(?:{s.pattern})" for s in SIGNATURES)


def _distinct_signatures(text: pa.Array) -> np.ndarray:
    """The signature index (into :data:`SIGNATURES`) of each of distinct texts that match one."""
    out = np.full(len(text), -1, dtype="int64")
    left = np.arange(len(text))
    for index, signature in enumerate(SIGNATURES):
        if not left.size:
            break
        hit = search_ignoring_case(text.take(pa.array(left)), signature.pattern)
        out[left[hit]] = index
        left = left[~hit]
    return out


def _codes(values: pd.Series) -> np.ndarray:
    """The signature index of each value's text (-1 for none)."""
    text = arrow_text(values)
    out = np.full(len(text), -1, dtype="int64")
    # Most error texts match nothing: one pass of every pattern at once over the column (a DFA in
    # polars, cheaper than finding the distinct texts first) leaves the few that need a name, and
    # each distinct one of those is named once.
    hit = np.flatnonzero(search_ignoring_case(text, _ANY))
    if hit.size:
        encoded = pc.dictionary_encode(text.take(pa.array(hit)))
        found = _distinct_signatures(encoded.dictionary)
        out[hit] = found[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype="int64")]
    return out


def signatures_of(events: pd.DataFrame) -> pd.Series:
    """The signature name of each event (same index; null where its text matches none).

    The message and the structured ``fields`` are both searched; the first signature of
    :data:`SIGNATURES` found in either wins.
    """
    if events.empty:
        return pd.Series([], index=events.index, dtype=STRING, name="signature")
    codes = _codes(events["message"])
    if "fields" in events.columns:
        # The earlier signature of the two texts wins: a message naming a pool timeout whose stack
        # trace (in the fields) names "too many clients" is a "too many clients".
        more = _codes(events["fields"])
        codes = np.where((more >= 0) & ((codes < 0) | (more < codes)), more, codes)
    # Built by Arrow from the codes, not from one Python object per event.
    names = pa.array([s.name for s in SIGNATURES], type=pa.large_string())
    taken = names.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(taken, dtype=STRING), index=events.index, name="signature")


def matched_line(text: str, signature: Signature) -> tuple[int, str] | None:
    """(0-based line offset, the line) of the first line of ``text`` in which ``signature`` matches.

    Lines are split on real line breaks and on the ``\\n`` escapes of JSON-encoded stack traces.
    """
    pattern = re.compile(signature.pattern, re.IGNORECASE)
    for offset, line in enumerate(text.split("\n")):
        if not pattern.search(line):
            continue
        # A JSON document holds its stack trace on one physical line, with escaped breaks.
        for part in line.split("\\n"):
            if pattern.search(part):
                return offset, part.strip().strip('"').replace("\\t", " ").strip()
        return offset, line.strip()
    return None
