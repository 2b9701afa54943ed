"""Recognize change events (deploys, rollbacks, restarts, config changes, ...) in log messages.

:func:`classify_changes` is a pure stage applied to every chunk of events before aggregation. A log
line whose message matches the change vocabulary becomes ``kind="change"`` with a ``change_type``
from :data:`pmtimeline.schema.CHANGE_TYPES`; its service is kept, so the change is attributed to the
service that logged it.

What is *not* a change:

* alerts and requests are never reclassified;
* an event of level error or worse ("deploy failed", "failed to restart") is an error, not a change:
  the action did not happen, and the line already counts as an error signal;
* a message that reports a failure or refusal of the action ("could not restart", "rollback aborted",
  "migration error") at any level.

Each change type is a case-insensitive regular expression (RE2 syntax, evaluated by Arrow over the
whole column). When several types match, the most specific wins, in the order of
:data:`CHANGE_PRIORITY` (a "rollback of deploy 42" is a rollback, not a deploy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.errors import ConfigError
from pmtimeline.polars_regex import search_ignoring_case
from pmtimeline.schema import CHANGE_TYPES, ERROR_LEVELS, STRING
from pmtimeline.templates import arrow_text

#: Change type -> case-insensitive regex (RE2) over the message. Configurable with
#: ``TimelineConfig.change_vocabulary`` (a partial mapping replaces the named types only).
DEFAULT_CHANGE_VOCABULARY: Final[Mapping[str, str]] = {
    "rollback": (
        r"\b(roll(ed|ing)?[ -]?back|rollback|revert(ed|ing|s)?|downgrad(e|ed|ing)|undo(ing)? (the )?(deploy|release))\b"
    ),
    "failover": (
        r"\b(fail(ed|ing)?[ -]?over|failover|switch(ed|ing)?[ -]?over|"
        r"promot(e|ed|ing) (the )?(replica|standby|secondary|follower))\b"
    ),
    "reroute": (
        r"\b(re-?rout(e|ed|ing)|traffic (shift(ed)?|moved|drained|switched|diverted)|"
        r"(shift(ed|ing)?|mov(ed|ing)|divert(ed|ing)|drain(ed|ing)?) traffic|"
        r"drain(ed|ing)? (node|host|instance|region|zone)|dns (switch|cutover|change)|cut ?over)\b"
    ),
    "block": (
        r"\b(block(ed|ing)? (ip|ips|user|users|address|addresses|client|clients|account|accounts|range|cidr|asn)|"
        r"(ip|user|address|client|account)s? \S+ (was |has been )?(blocked|banned|blacklisted|blocklisted)|"
        r"ban(ned|ning)? (ip|user|client)|waf rule|(add(ed)?|updat(ed|ing)) (to )?(the )?(deny|block|black) ?list|"
        r"deny ?list(ed)?|block ?list(ed)?|blacklist(ed)?|rate[- ]limit(ing)? (enabled|applied|added|tightened))\b"
    ),
    "certificate": (
        r"\b(cert(ificate)?s? (install|renew|rotat|replac|updat|deploy|reissu)\w*|"
        r"(install|renew|rotat|replac|reissu)\w* (the |a |new |tls |ssl |x509 )*cert(ificate)?s?)"
    ),
    "migration": r"\b(migrat(ion|ions|ed|ing)|schema (change|update|upgrade)|alembic upgrade|flyway|liquibase)\b",
    "scale": (
        r"\b(scal(e|ed|ing)[ -]?(up|out|down|in|to)|autoscal\w*|"
        r"(replicas?|instances?|nodes?|capacity) (set|increased|decreased|changed|raised) (to|from)|"
        r"add(ed|ing)? \d+ (more )?(nodes|instances|replicas|pods|workers))\b"
    ),
    "restart": (
        r"\b(restart(ed|ing|s)?|reboot(ed|ing|s)?|respawn(ed|ing)?|bounc(e|ed|ing) (the )?"
        r"(service|pod|process|server|app|node)s?|(service|process|server|daemon|application|app|pod|container)s? "
        r"(was |were |has been )?re-?started)\b"
    ),
    "feature_flag": (
        r"\b(feature[ -]?flag|feature toggle|kill ?switch|flag \S+ (enabled|disabled|turned|set|flipped|toggled)|"
        r"(enabl|disabl)(e|ed|ing) (the )?(feature|flag)|toggl(e|ed|ing) (the )?(feature|flag))"
    ),
    "config": (
        r"\b(config(uration)? (change|changed|update|updated|reload|reloaded|applied|push|pushed|deployed|rollout)|"
        r"(updat|chang|reload|appl|push)(e|ed|ing|ied|y) (the |new )?config(uration)?|"
        r"kubectl (apply|patch|edit|set)|helm upgrade|terraform apply|sysctl -w)"
    ),
    "deploy": (
        r"\b(deploy(ed|ing|s)?|deployment (started|finished|complete|completed|succeeded|of)|"
        r"roll(ed|ing)?[ -]?out|rollout|releas(e|ed|ing) v?\d|new release|release (started|finished|complete)|"
        r"version bump|bump(ed|ing)? (the )?version|upgrad(e|ed|ing) (\S+ )?to v?\d|now running v(ersion )?\d)\b"
    ),
}

#: The order in which types win when several match: the most specific first.
CHANGE_PRIORITY: Final[tuple[str, ...]] = (
    "rollback",
    "failover",
    "reroute",
    "block",
    "certificate",
    "feature_flag",
    "migration",
    "scale",
    "restart",
    "config",
    "deploy",
)

#: Words that report the failure or refusal of an action: such a message is not a change. RE2 has no
#: look-ahead, so "failed over" is rewritten to "failover" before this test.
FAILURE_WORDS: Final = (
    r"\b(fail|fails|failed|failing|failure|error|errors|exception|unable|could ?not|couldn't|can ?not|can't|"
    r"timed? ?out|refused|denied|aborted|aborting|panic|crash(ed|ing)?|unsuccessful|invalid|will retry|retrying)\b"
)
_FAILED_OVER: Final = r"(?i)\bfail(ed|ing)?[ -]?over\b"

#: Change types that can mitigate an incident (``phases`` uses them for ``mitigated``). A plain
#: deploy after onset also counts when it lands in an affected service (a fix forward).
MITIGATING_CHANGE_TYPES: Final[frozenset[str]] = frozenset(
    {"rollback", "restart", "failover", "reroute", "scale", "block", "certificate", "config", "feature_flag"}
)


def change_vocabulary(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in vocabulary with ``overrides`` applied (change type -> regex).

    Raises:
        ConfigError: for an unknown change type or a regex that does not compile.
    """
    vocabulary = dict(DEFAULT_CHANGE_VOCABULARY)
    for name, pattern in (overrides or {}).items():
        if name not in CHANGE_TYPES:
            raise ConfigError(f"unknown change type {name!r}; use one of {', '.join(CHANGE_TYPES)}")
        try:
            pc.match_substring_regex(pa.array(["x"]), pattern, ignore_case=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ConfigError(f"change vocabulary for {name!r} is not a valid regex: {exc}") from exc
        vocabulary[name] = pattern
    return vocabulary


def classify_changes(events: pd.DataFrame, vocabulary: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Mark the change events of ``events`` (an event-schema frame) and return a new frame.

    Log events whose message matches the vocabulary get ``kind="change"`` and ``change_type``;
    events that already are ``kind="change"`` keep it and get a ``change_type`` when they lack one.
    Alerts and requests are untouched, as are errors and messages that report a failure.
    """
    if events.empty:
        return events
    vocab = change_vocabulary(vocabulary)
    kind = events["kind"]
    candidate = (
        kind.isin(["log", "change"]).to_numpy(dtype=bool, na_value=False)
        & events["message"].notna().to_numpy(dtype=bool)
        & ~events["level"].isin(list(ERROR_LEVELS)).to_numpy(dtype=bool, na_value=False)
    )
    has_type = events["change_type"].notna().to_numpy()
    todo = np.flatnonzero(candidate & ~has_type)
    if todo.size == 0:
        return events
    messages = arrow_text(events["message"].iloc[todo])
    # One pass with the union of all types first: most lines match nothing.
    union = "|".join(f"(?:{vocab[name]})" for name in CHANGE_PRIORITY)
    hit = search_ignoring_case(messages, union)
    if not hit.any():
        return events
    todo, messages = todo[hit], messages.filter(pa.array(hit))
    cleaned = pc.replace_substring_regex(messages, _FAILED_OVER, "failover")
    ok = ~search_ignoring_case(cleaned, FAILURE_WORDS)
    todo, messages = todo[ok], messages.filter(pa.array(ok))
    if todo.size == 0:
        return events
    masks = [search_ignoring_case(messages, vocab[name]) for name in CHANGE_PRIORITY]
    types = np.select(masks, list(CHANGE_PRIORITY), default="")
    found = types != ""
    out = events.copy()
    rows = todo[found]
    kind_values = out["kind"].astype(object).to_numpy(copy=True)
    kind_values[rows] = "change"
    type_values = out["change_type"].astype(object).to_numpy(copy=True)
    type_values[rows] = types[found]
    out["kind"] = pd.Series(kind_values, index=out.index, dtype=STRING)
    out["change_type"] = pd.Series(type_values, index=out.index, dtype=STRING)
    return out
