"""Breach exposure: suspicious actors, the accounts they took over and what they did afterwards.

Credential stuffing and password spraying look alike in logs: a burst of failed logins (warnings,
HTTP 401/403, ``"outcome":"failure"``) from a few client addresses across many accounts, a few
successes among them, and then data operations (exports, bulk reads, transfers, credential or
e-mail changes, API keys) by the accounts taken over.

From the per-bucket actor table of :class:`pmtimeline.aggregate.Aggregates`, within the incident
(from onset to recovery):

* a client address is *attack-like* when at least :data:`MIN_MEMBER_FAILURES` of its logins failed,
  failures dominate its outcomes and depart from its own baseline (more than
  :data:`BASELINE_FACTOR` times its failure rate before onset);
* attack-like addresses of one network (an IPv4 /24, an IPv6 /64) are one *range* actor when there
  are at least :data:`MIN_RANGE_MEMBERS` of them: attackers rotate through the addresses they rent,
  and each alone may look small;
* addresses spread over many networks, each failing a few logins, are one *distributed* actor
  (``client_set``, a botnet) when at least :data:`MIN_SPREAD_SOURCES` of them, never seen before onset
  and failing more than they succeed, mostly one per network, together try at least
  :data:`MIN_SPREAD_ACCOUNTS` accounts and carry at least half of the incident's failures, far above
  the window's background (:data:`BASELINE_FACTOR`); in an outage, the clients that fail are the
  usual ones, seen before onset, so an outage of the login is no botnet;
* an actor (a range, a single address, or a user when no address is known) is *suspicious* when its
  failures are many (at least :data:`MIN_ACTOR_FAILURES` and :data:`MIN_FAILURE_SHARE` of all
  authentication failures of the incident), depart from its baseline, dominate its outcomes, and,
  for addresses whose logs name accounts, span at least :data:`MIN_ACCOUNTS` of them. An office NAT
  that always fails a little, or one customer mistyping a password, is not. A user whose failures
  came mostly from suspicious addresses is their target (``root`` in an SSH brute force), not an
  actor.

Without an onset (failed logins are often written at level info, and 401s are no server errors, so
a breach may raise no anomaly), the window is the burst of authentication failures, if any.

``Actor.accounts`` lists the accounts *compromised* by the actor: a successful login from it at or
after its first failure. ``Exposure.accounts_touched`` lists every account the suspicious actors
tried; ``Exposure.data_operations`` the data operations (not changes: a forced password reset is the
response, not the attack) by the suspicious addresses from the first compromise on, or by a
compromised account from its own compromise on (before it, they are its owner's), and
``Exposure.operation_counts`` how many of each kind (:data:`OPERATION_KINDS`; an
operation logged by several layers, the edge and the application, counts once: each kind counts as
many as the source that logged most of them).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd

from pmtimeline.config import PHASES
from pmtimeline.incident import Actor, Evidence, Exposure
from pmtimeline.templates import regex_mask

if TYPE_CHECKING:
    from pmtimeline.aggregate import Aggregates
    from pmtimeline.config import TimelineConfig

#: Request paths of authentication endpoints (case-insensitive RE2).
AUTH_PATH: Final = r"/(login|logon|signin|sign-in|sign_in|auth|authenticate|session|sessions|token|oauth2?|sso)\b"
#: Messages of authentication events.
AUTH_MESSAGE: Final = (
    r"\b(log ?in|logon|log-in|sign ?in|sign-in|authenticat\w*|auth (failed|failure|succeeded|ok)|"
    r"invalid (password|credentials?)|bad (password|credentials?)|wrong password|password (mismatch|incorrect)|"
    r"accepted (password|publickey)|failed password|mfa|2fa|otp)\b"
)
#: Messages of failed authentication.
FAILURE_MESSAGE: Final = (
    r"\b(fail\w*|invalid|denied|incorrect|wrong|bad (password|credentials?)|unauthori[sz]ed|rejected|"
    r"locked|mismatch|unknown user|no such user|expired)\b"
)
#: Messages of successful authentication.
SUCCESS_MESSAGE: Final = (
    r"\b(success\w*|succeeded|authenticated|logged ?in|granted|accepted|welcome|session (created|started)|ok)\b"
)
# Structured records name what happened and how it ended in keys of their own, which stay in the
# ``fields`` JSON when they map to no event column: ``"event":"login","outcome":"failure"`` (ECS
# ``event.action``/``event.outcome``), ``"action":"export"``. The patterns anchor on such keys, so a
# user agent or a referer that happens to hold a word never counts.
_WHAT_KEYS: Final = r'"(?:event|event\.action|event\.type|event_type|event_name|action|activity|operation|op|type)"'
_OUTCOME_KEYS: Final = r'"(?:outcome|event\.outcome|result|status|auth_result|login_result|state)"'
#: ``fields`` of authentication events: the action key names a login.
AUTH_FIELD: Final = _WHAT_KEYS + r':"[^"]*(login|logon|signin|sign_in|sign-in|authenticat|auth)'
#: ``fields`` of failed authentication: the outcome key says so, or an action key does (``login_failed``).
FAILURE_FIELD: Final = (
    _OUTCOME_KEYS
    + r':"(fail\w*|failed|denied|invalid|rejected|unauthori[sz]ed|error|bad_credentials|false)"|'
    + _WHAT_KEYS
    + r':"[^"]*(fail|denied|invalid|reject)'
)
#: ``fields`` of successful authentication.
SUCCESS_FIELD: Final = (
    _OUTCOME_KEYS
    + r':"(success\w*|succeeded|ok|allowed|granted|true|authenticated)"|'
    + _WHAT_KEYS
    + r':"[^"]*(success|succeeded)'
)
#: The client address in the text of auth daemons' messages (OpenSSH ``from 203.0.113.7 port 22``,
#: PAM ``rhost=203.0.113.7``), and the account (``for invalid user admin from``, ``for root from``,
#: ``user=root``), read where the event names neither (syslog lines have no such fields).
MESSAGE_ADDRESS: Final = r"(?:\bfrom\s+\[?|\brhost=)((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{2,})"
MESSAGE_ACCOUNT: Final = (
    r"(?i)(?:\bfor (?:invalid |illegal )?(?:user )?|\binvalid user |\buser=)([^\s;,=]+)(?:\s+from\b|\s*$)"
)
#: Data operations worth listing after an account take-over: exports, bulk reads, downloads,
#: transfers, credential, e-mail and payee changes, API keys and personal tokens (message or path).
DATA_OPERATION: Final = (
    r"(\bexport\w*|\bdownload\w*|\bbulk|\bdump\b|/reports?\b|/transactions?/(all|export|bulk)|"
    r"\btransfer(s|red|ring)?\b|\bwire[ _-]?transfer|\bpayouts?\b|\bwithdrawals?\b|"
    r"(change|reset|update|updat\w+|chang\w+)[ _-]?(password|email|e-mail|phone|mfa|2fa|payee|beneficiary)|"
    r"(password|email|e-mail|phone|payee|beneficiary)[ _-]?(change\w*|reset|update\w*)|"
    r"api[ _/-]?keys?|personal[ _-]?(access[ _-]?)?tokens?|(add|creat)\w*[ _-]?(payee|beneficiary|api[ _-]?key))"
)
#: ``fields`` of data operations: an action key names one (``"action":"export"``).
DATA_OPERATION_FIELD: Final = _WHAT_KEYS + r':"[^"]*' + DATA_OPERATION
#: Kinds of data operation, counted in :attr:`Exposure.operation_counts`; the first that matches wins.
OPERATION_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("credential change", r"(password|mfa|2fa|api[ _/-]?keys?|personal[ _-]?(access[ _-]?)?tokens?)"),
    ("contact change", r"(email|e-mail|phone)"),
    ("transfer", r"(transfer|payout|withdraw|payee|beneficiary)"),
    ("export", r"(export|download|dump|/reports?\b|bulk)"),
)

MIN_ACTOR_FAILURES: Final = 10
MIN_FAILURE_SHARE: Final = 0.05
BASELINE_FACTOR: Final = 5.0
MIN_ACCOUNTS: Final = 3
#: Failures from one address before it can be a member of a range actor.
MIN_MEMBER_FAILURES: Final = 3
#: Attack-like addresses of one network that make it a range actor.
MIN_RANGE_MEMBERS: Final = 2
#: Prefix lengths of a range: IPv4 /24, IPv6 /64.
RANGE_PREFIX_V4: Final = 24
RANGE_PREFIX_V6: Final = 64
MAX_ACTORS: Final = 50
#: A distributed attack (a botnet, one address per network): at least this many addresses never seen
#: before onset, failing more than they succeed, ...
MIN_SPREAD_SOURCES: Final = 20
#: ... trying at least this many accounts (where the logs name accounts).
MIN_SPREAD_ACCOUNTS: Final = 20
# Joins an actor's kind and name into one key (a control character: no address or account holds it).
_SEP: Final = "\x1f"
MAX_DATA_OPERATIONS: Final = 100


def address_range(address: str) -> str | None:
    """The network an address belongs to for grouping (``203.0.113.7`` -> ``203.0.113.0/24``), or
    None when it is not an IP address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = RANGE_PREFIX_V4 if ip.version == 4 else RANGE_PREFIX_V6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def operation_kind(texts: pd.Series) -> pd.Series:
    """The kind of each data operation (:data:`OPERATION_KINDS`), ``"other"`` where none matches."""
    kinds = pd.Series("other", index=texts.index, dtype=object)
    decided = np.zeros(len(texts), dtype=bool)
    for name, pattern in OPERATION_KINDS:
        hit = regex_mask(texts, pattern) & ~decided
        kinds[hit] = name
        decided |= hit
    return kinds


def _units(stats: pd.DataFrame, attack_like: np.ndarray) -> pd.Series:
    """The actor each (kind, actor) row belongs to: its range for attack-like addresses of a network
    with at least :data:`MIN_RANGE_MEMBERS` of them, else itself (as ``kind`` :data:`_SEP` ``actor``)."""
    kind = stats.index.get_level_values("actor_kind").astype(str).to_numpy(dtype=object)
    name = stats.index.get_level_values("actor").astype(str).to_numpy(dtype=object)
    unit = pd.Series(kind, dtype=object) + _SEP + pd.Series(name, dtype=object)
    candidates = np.flatnonzero(attack_like & (kind == "client_ip"))
    if candidates.size:
        # Per distinct address: a handful during an attack, at most the actor table's bound.
        ranges = pd.Series([address_range(str(name[i])) for i in candidates], index=candidates, dtype=object)
        sizes = ranges.map(ranges.value_counts())
        grouped = ranges[ranges.notna() & (sizes >= MIN_RANGE_MEMBERS)]
        unit.iloc[grouped.index.to_numpy()] = "client_range" + _SEP + grouped.astype(str)
    return unit


def _spread_members(
    stats: pd.DataFrame, during: pd.DataFrame, seen_before: np.ndarray, background: float, config: TimelineConfig
) -> np.ndarray:
    """Which rows of ``stats`` (per actor, during the incident) are the addresses of one distributed
    attack: a botnet spread over many networks, each address failing a few logins, none of them ever
    seen before onset, together far above the window's background of failures (see the module doc).
    All False when they do not add up to one."""
    kind = stats.index.get_level_values("actor_kind").astype(str).to_numpy(dtype=object)
    own = stats["unit"].astype(str).str.startswith("client_ip" + _SEP).to_numpy(dtype=bool)
    failures = stats["failures"].to_numpy(dtype="float64")
    members = (
        (kind == "client_ip")
        & own
        & ~seen_before
        & (failures >= 1)
        & (failures > stats["successes"].to_numpy(dtype="float64"))
    )
    if int(members.sum()) < MIN_SPREAD_SOURCES:
        return np.zeros(len(stats), dtype=bool)
    names = set(stats.index.get_level_values("actor")[members].astype(str))
    tried = during.loc[during["actor"].astype(str).isin(names) & (during["account"] != ""), "account"].nunique()
    networks = len({address_range(a) for a in names})  # per distinct address: the members, a few hundred
    total = float(failures[members].sum())
    all_failures = float(stats.loc[kind == "client_ip", "failures"].sum())
    adds_up = (
        networks * 2 >= len(names)  # spread: mostly one address per network (a /24 holding many is a range)
        and (tried == 0 or tried >= MIN_SPREAD_ACCOUNTS)
        and total >= max(float(MIN_ACTOR_FAILURES), BASELINE_FACTOR * background + config.anomaly_min_count)
        # New addresses carry the burst: in an outage, the usual clients fail (they were seen before).
        and total * 2 >= all_failures
    )
    return members if adds_up else np.zeros(len(stats), dtype=bool)


def failure_burst(aggregates: Aggregates, config: TimelineConfig) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(first, last) bucket of the window whose authentication failures stand out from the rest:
    more than :data:`BASELINE_FACTOR` times the median bucket's, by at least ``anomaly_min_count``
    and :data:`MIN_ACTOR_FAILURES`; None when no bucket does (steady failures are no attack)."""
    actors = aggregates.actors
    per_bucket = actors.groupby("bucket")["failures"].sum()
    first = aggregates.window_start if aggregates.window_start is not None else per_bucket.index.min()
    last = aggregates.window_end if aggregates.window_end is not None else per_bucket.index.max()
    buckets = pd.date_range(first.floor(config.bucket), last.floor(config.bucket), freq=config.bucket)
    counts = per_bucket.reindex(buckets.union(pd.DatetimeIndex(per_bucket.index)), fill_value=0)
    median = float(counts.median())
    hot = counts.index[
        counts.to_numpy() > max(BASELINE_FACTOR * median, median + config.anomaly_min_count, float(MIN_ACTOR_FAILURES))
    ]
    if hot.empty:
        return None
    return pd.Timestamp(hot.min()), pd.Timestamp(hot.max())


def detect_exposure(
    aggregates: Aggregates,
    onset: pd.Timestamp | None,
    recovered: pd.Timestamp | None,
    config: TimelineConfig,
) -> Exposure:
    """The breach exposure of the incident [onset, recovered], or an empty :class:`Exposure`.

    Without an onset (a breach need raise no error: its failed logins may all be written at level
    info), the window is the burst of authentication failures (:func:`failure_burst`), if any.
    """
    actors = aggregates.actors
    if actors.empty:
        return Exposure()
    if onset is None:
        burst = failure_burst(aggregates, config)
        if burst is None:
            return Exposure()
        onset, recovered = burst
    bucket = pd.Timedelta(config.bucket)
    start = onset.floor(config.bucket)
    end = recovered if recovered is not None else aggregates.window_end
    end = start if end is None else end
    during = actors.loc[(actors["bucket"] >= start) & (actors["bucket"] <= end)]
    if during.empty:
        return Exposure()
    before = actors.loc[actors["bucket"] < start]
    n_during = max(1, int((end.floor(config.bucket) - start) / bucket) + 1)
    window_start = aggregates.window_start if aggregates.window_start is not None else start
    n_before = max(1, int((start - window_start.floor(config.bucket)) / bucket))

    keys = ["actor_kind", "actor"]
    stats = during.groupby(keys).agg(failures=("failures", "sum"), successes=("successes", "sum"))
    base = before.groupby(keys)["failures"].sum().reindex(stats.index, fill_value=0)
    stats["expected"] = base.to_numpy(dtype="float64") / n_before * n_during
    failures = stats["failures"].to_numpy(dtype="float64")
    attack_like = (
        (failures >= MIN_MEMBER_FAILURES)
        & (failures >= stats["successes"].to_numpy(dtype="float64"))
        & (failures > BASELINE_FACTOR * stats["expected"].to_numpy())
    )
    stats["unit"] = _units(stats, attack_like).to_numpy()
    seen_before = before.groupby(keys)[["failures", "successes"]].sum().sum(axis=1).reindex(stats.index, fill_value=0)
    background = float(before.loc[before["actor_kind"] == "client_ip", "failures"].sum()) / n_before * n_during
    spread = _spread_members(stats, during, seen_before.to_numpy() > 0, background, config)
    if spread.any():
        networks = len({address_range(a) for a in stats.index.get_level_values("actor")[spread].astype(str)})
        stats.loc[spread, "unit"] = "client_set" + _SEP + f"{int(spread.sum())} addresses in {networks} networks"
    unit_of = stats["unit"]
    # Accounts per actor: the distinct accounts over all the actor's members.
    during_units = during.assign(unit=unit_of.reindex(pd.MultiIndex.from_frame(during[keys])).to_numpy())
    per_unit = stats.groupby("unit").agg(
        failures=("failures", "sum"), successes=("successes", "sum"), expected=("expected", "sum")
    )
    per_unit["accounts"] = (
        during_units.loc[during_units["account"] != ""].groupby("unit")["account"].nunique().reindex(per_unit.index)
    ).fillna(0)
    per_unit["members"] = unit_of.value_counts().reindex(per_unit.index)
    unit_kind = per_unit.index.str.split(_SEP).str[0]
    total_failures = float(per_unit["failures"].sum())
    unit_failures = per_unit["failures"].to_numpy(dtype="float64")
    is_address = np.asarray(unit_kind != "user", dtype=bool)
    suspicious = (
        (unit_failures >= max(MIN_ACTOR_FAILURES, MIN_FAILURE_SHARE * total_failures))
        & (unit_failures > BASELINE_FACTOR * per_unit["expected"].to_numpy() + config.anomaly_min_count)
        & (unit_failures >= per_unit["successes"].to_numpy(dtype="float64"))
        # Where the logs name accounts, an address must have tried several (an access log names none).
        & (~is_address | (per_unit["accounts"].to_numpy() >= MIN_ACCOUNTS) | (per_unit["accounts"].to_numpy() == 0))
    )
    flagged = per_unit.loc[suspicious]
    # A user whose failures came mostly from suspicious addresses is their target, not an actor
    # (``root`` in an SSH brute force): a user actor is one account failing from many places.
    address_units = flagged.index[np.asarray(flagged.index.str.split(_SEP).str[0] != "user", dtype=bool)]
    by_attackers = (
        during_units.loc[during_units["unit"].isin(address_units) & (during_units["account"] != "")]
        .groupby("account")["failures"]
        .sum()
    )
    user_names = pd.Series(flagged.index.str.split(_SEP).str[1], index=flagged.index)
    targeted = user_names.map(by_attackers).fillna(0).to_numpy() * 2 >= flagged["failures"].to_numpy()
    is_user = np.asarray(flagged.index.str.split(_SEP).str[0] == "user", dtype=bool)
    flagged = flagged.loc[~(is_user & targeted)].sort_values("failures", ascending=False).head(MAX_ACTORS)
    if flagged.empty:
        return Exposure()

    members = stats.loc[stats["unit"].isin(flagged.index), ["unit"]].reset_index()
    since_onset = actors.loc[actors["bucket"] >= start].merge(members, on=keys, how="inner")
    first_failure = since_onset.loc[since_onset["failures"] > 0].groupby("unit")["bucket"].min()
    # Successes after the actor's first failure; those naming no account (an access log) still
    # start the window of data operations.
    taken = since_onset.loc[since_onset["successes"] > 0]
    taken = taken.loc[taken["bucket"].to_numpy() >= first_failure.reindex(taken["unit"]).to_numpy()]
    notable = aggregates.notable
    spans = aggregates.event_details(config).actor_spans
    span_key = pd.MultiIndex.from_frame(spans[["actor_kind", "actor"]].astype(str))
    result_actors: list[Actor] = []
    ips: list[str] = []
    for unit, row in flagged.iterrows():
        kind, name = cast(str, unit).split(_SEP, 1)
        mine = members.loc[members["unit"] == unit]
        names = mine["actor"].astype(str).tolist()
        column = "user" if kind == "user" else "client_ip"
        if column == "client_ip":
            ips.extend(names)
        # The actor's notable events: the spans of its members from the details, and the events kept.
        own_spans = spans.loc[span_key.isin(list(zip([column] * len(names), names, strict=True)))]
        own = pd.concat(
            [
                notable.loc[notable[column].isin(names).to_numpy(dtype=bool, na_value=False), "timestamp"],
                own_spans["first"],
                own_spans["last"],
            ]
        )
        rows = since_onset.loc[since_onset["unit"] == unit]
        if "first" in rows.columns:  # the exact attempts (an actor table saved before they were kept has none)
            own = pd.concat([own, rows["first"].dropna(), rows["last"].dropna()])
        won = taken.loc[(taken["unit"] == unit) & (taken["account"] != ""), "account"]
        result_actors.append(
            Actor(
                actor=name,
                actor_kind=kind,
                failures=int(row["failures"]),
                successes=int(row["successes"]),
                accounts=tuple(sorted(set(won.astype(str)))),
                first_seen=pd.Timestamp(own.min() if not own.empty else rows["bucket"].min()),
                last_seen=pd.Timestamp(own.max() if not own.empty else rows["bucket"].max()),
                members=len(names) if kind in ("client_range", "client_set") else None,
                addresses=tuple(names) if kind == "client_set" else (),
            )
        )
    touched = sorted(set(since_onset.loc[since_onset["account"] != "", "account"].astype(str)))
    if taken.empty:
        return Exposure(actors=tuple(result_actors), accounts_touched=tuple(touched))
    since = taken["bucket"].min()
    after = notable.loc[(notable["timestamp"] >= since).to_numpy(dtype=bool)]
    # An account's operations count from its own compromise on (before it, they are its owner's); a
    # user actor's and a suspicious address's from the first compromise on.
    compromised_at = taken.loc[taken["account"] != ""].groupby("account")["bucket"].min()
    for a in result_actors:
        if a.actor_kind == "user":
            compromised_at[a.actor] = since
    by_account = np.zeros(len(after), dtype=bool)
    if not compromised_at.empty:
        user_since = pd.to_datetime(after["user"].astype(object).map(compromised_at.to_dict()), utc=True)
        by_account = (after["timestamp"] >= user_since).to_numpy(dtype=bool, na_value=False)
    after = after.loc[after["client_ip"].isin(ips).to_numpy(dtype=bool, na_value=False) | by_account]
    after = after.loc[(after["kind"] != "change").to_numpy(dtype=bool, na_value=True)]
    what = after["fields"].fillna("").str.extract(_WHAT_KEYS + r':"([^"]*)"', expand=False).fillna("")
    is_op = (
        regex_mask(after["message"], DATA_OPERATION)
        | regex_mask(after["url_path"], DATA_OPERATION)
        | regex_mask(after["fields"], DATA_OPERATION_FIELD)
    )
    ops = after.loc[is_op].sort_values("timestamp", kind="stable")
    text = what.loc[ops.index].astype(str) + " " + ops["url_path"].fillna("") + " " + ops["message"].fillna("")
    # The same export is often logged by several layers (the edge's access log and the application):
    # each kind counts as many as the source that logged most of them, not their sum.
    kinds = operation_kind(text.astype(object))
    counts = kinds.groupby([kinds, ops["source"].astype(str)]).size().groupby(level=0).max()
    operations = tuple(Evidence.from_row(r) for r in ops.head(MAX_DATA_OPERATIONS).itertuples(index=False))
    return Exposure(
        actors=tuple(result_actors),
        accounts_touched=tuple(touched),
        data_operations=operations,
        operation_counts=tuple((str(k), int(n)) for k, n in counts.sort_values(ascending=False, kind="stable").items()),
    )


def _names_actor(row: Any, addresses: set[str], accounts: set[str]) -> bool:
    """Whether an event row is one of the actors' own: by its address (or that address's range),
    its user, or, where it names neither, the address and account in its text (sshd lines)."""
    ip, user = row.client_ip, row.user
    if not isinstance(ip, str) and not isinstance(user, str) and isinstance(row.message, str):
        found = re.search(MESSAGE_ADDRESS, row.message)
        ip = found.group(1) if found else None
        named = re.search(MESSAGE_ACCOUNT, row.message) if found else None
        user = named.group(1) if named else None
    by_address = isinstance(ip, str) and (ip in addresses or address_range(ip) in addresses)
    return by_address or (isinstance(user, str) and user in accounts)


def breach_phases(
    exposure: Exposure, notable: pd.DataFrame, window_end: pd.Timestamp | None
) -> tuple[dict[str, pd.Timestamp | None], dict[str, tuple[Evidence, ...]]]:
    """The phases of a breach that raised no anomaly, from its exposure: ``onset`` the actors' first
    failed login, ``recovered`` their last one, ``mitigated`` the first containment (a ``block``
    change: an address or range blocked, passwords reset, sessions or tokens revoked, an account
    locked by an admin) from onset to the window's end, since a breach is contained when the
    access is cut, which may come after the attempts stopped. ``detected`` and ``resolved`` stay
    None (no alert concerned it). Evidence is cited where a kept event is the one that time comes from.
    """
    phases: dict[str, pd.Timestamp | None] = dict.fromkeys(PHASES)
    evidence: dict[str, tuple[Evidence, ...]] = {}
    seen = [a for a in exposure.actors if a.first_seen is not None]
    if not seen:
        return phases, evidence
    onset = min(cast(pd.Timestamp, a.first_seen) for a in seen)
    recovered = max(cast(pd.Timestamp, a.last_seen or a.first_seen) for a in seen)
    phases["onset"], phases["recovered"] = onset, recovered
    addresses = {a.actor for a in seen if a.actor_kind != "user"}
    accounts = {a.actor for a in seen if a.actor_kind == "user"}
    for phase, at in (("onset", onset), ("recovered", recovered)):
        rows = notable.loc[(notable["timestamp"] == at).to_numpy(dtype=bool)]
        # A handful of rows at one instant: which of them is the actors' own (by address or range).
        mine = [r for r in rows.itertuples(index=False) if _names_actor(r, addresses, accounts)]
        if mine:
            evidence[phase] = (Evidence.from_row(mine[0]),)
    changes = notable.loc[
        (notable["kind"] == "change").to_numpy(dtype=bool, na_value=False)
        & (notable["change_type"] == "block").to_numpy(dtype=bool, na_value=False)
        & (notable["timestamp"] >= onset).to_numpy(dtype=bool)
        & ((notable["timestamp"] <= window_end).to_numpy(dtype=bool) if window_end is not None else True)
    ].sort_values("timestamp", kind="stable")
    if not changes.empty:
        containment = Evidence.from_row(next(changes.itertuples(index=False)))
        phases["mitigated"] = containment.time
        evidence["mitigated"] = (containment,)
    return phases, evidence
