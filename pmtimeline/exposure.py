"""Breach exposure: suspicious actors, the accounts they touched and what they did afterwards.

Credential stuffing and password spraying look alike in logs: a burst of failed logins (warnings,
HTTP 401/403) from a few client IPs across many accounts, a few successes among them, and then data
operations (exports, bulk reads, credential or e-mail changes, API keys) by the accounts taken over.

From the per-bucket actor table of :class:`pmtimeline.aggregate.Aggregates`, an actor (a client IP,
or a user when no IP is known) is *suspicious* when, within the incident (from onset to recovery):

* its failures are many: at least :data:`MIN_ACTOR_FAILURES` and at least
  :data:`MIN_FAILURE_SHARE` of all authentication failures of the incident;
* they depart from its own baseline: more than :data:`BASELINE_FACTOR` times its failure rate
  before onset (an office NAT that always fails a little is not an attacker);
* failures dominate its outcomes, and a client IP touches at least :data:`MIN_ACCOUNTS` accounts.

``Actor.accounts`` lists the accounts the actor logged into successfully (taken over);
``Exposure.accounts_touched`` every account the suspicious actors tried; ``Exposure.data_operations``
the data operations by the suspicious IPs or the taken-over accounts after the first success.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

import pandas as pd

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
#: Data operations worth listing after an account take-over: exports, bulk reads, downloads,
#: credential, e-mail and payee changes, API keys and personal tokens (message or request path).
DATA_OPERATION: Final = (
    r"(\bexport\w*|\bdownload\w*|\bbulk|\bdump\b|/reports?\b|/transactions?/(all|export|bulk)|"
    r"(change|reset|update|updat\w+|chang\w+)[ _-]?(password|email|e-mail|phone|mfa|2fa|payee|beneficiary)|"
    r"(password|email|e-mail|phone|payee|beneficiary)[ _-]?(change\w*|reset|update\w*)|"
    r"api[ _/-]?keys?|personal[ _-]?(access[ _-]?)?tokens?|(add|creat)\w*[ _-]?(payee|beneficiary|api[ _-]?key))"
)

MIN_ACTOR_FAILURES: Final = 10
MIN_FAILURE_SHARE: Final = 0.05
BASELINE_FACTOR: Final = 5.0
MIN_ACCOUNTS: Final = 3
MAX_ACTORS: Final = 50
MAX_DATA_OPERATIONS: Final = 100


def detect_exposure(
    aggregates: Aggregates,
    onset: pd.Timestamp | None,
    recovered: pd.Timestamp | None,
    config: TimelineConfig,
) -> Exposure:
    """The breach exposure of the incident [onset, recovered], or an empty :class:`Exposure`."""
    actors = aggregates.actors
    if onset is None or actors.empty:
        return Exposure()
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
    stats = during.groupby(keys).agg(
        failures=("failures", "sum"), successes=("successes", "sum"), accounts=("account", "nunique")
    )
    base = before.groupby(keys)["failures"].sum().reindex(stats.index, fill_value=0)
    expected = base.to_numpy(dtype="float64") / n_before * n_during
    total_failures = float(stats["failures"].sum())
    failures = stats["failures"].to_numpy(dtype="float64")
    successes = stats["successes"].to_numpy(dtype="float64")
    is_ip = stats.index.get_level_values("actor_kind") == "client_ip"
    suspicious = (
        (failures >= max(MIN_ACTOR_FAILURES, MIN_FAILURE_SHARE * total_failures))
        & (failures > BASELINE_FACTOR * expected + config.anomaly_min_count)
        & (failures >= successes)
        & (~is_ip | (stats["accounts"].to_numpy() >= MIN_ACCOUNTS))
    )
    flagged = stats.loc[suspicious].sort_values("failures", ascending=False).head(MAX_ACTORS)
    if flagged.empty:
        return Exposure()

    since_onset = actors.loc[actors["bucket"] >= start]
    index = pd.MultiIndex.from_frame(since_onset[keys])
    mine = since_onset.loc[index.isin(flagged.index)]
    taken = mine.loc[(mine["successes"] > 0) & (mine["account"] != "")]
    first_success = taken.groupby(keys)["bucket"].min()
    notable = aggregates.notable
    spans = aggregates.event_details(config).actor_spans
    result_actors: list[Actor] = []
    for key, row in flagged.iterrows():
        kind, name = cast(tuple[str, str], key)
        column = "client_ip" if kind == "client_ip" else "user"
        # The actor's notable events: their span from the details, and the ordinary events kept.
        span = spans.loc[((spans["actor_kind"] == column) & (spans["actor"] == name)).to_numpy(dtype=bool)]
        own = pd.concat(
            [
                notable.loc[(notable[column] == name).to_numpy(dtype=bool, na_value=False), "timestamp"],
                span["first"],
                span["last"],
            ]
        )
        rows = actors.loc[(actors["actor_kind"] == kind) & (actors["actor"] == name), "bucket"]
        first = own.min() if not own.empty else rows.min()
        last = own.max() if not own.empty else rows.max()
        won = taken.loc[(taken["actor_kind"] == kind) & (taken["actor"] == name), "account"]
        result_actors.append(
            Actor(
                actor=str(name),
                actor_kind=str(kind),
                failures=int(row["failures"]),
                successes=int(row["successes"]),
                accounts=tuple(sorted(set(won.astype(str)))),
                first_seen=pd.Timestamp(first),
                last_seen=pd.Timestamp(last),
            )
        )
    touched = sorted(set(mine.loc[mine["account"] != "", "account"].astype(str)))
    compromised = sorted({a for actor in result_actors for a in actor.accounts})
    operations: tuple[Evidence, ...] = ()
    if not first_success.empty:
        since = first_success.min()
        ips = [str(a.actor) for a in result_actors if a.actor_kind == "client_ip"]
        users = compromised + [str(a.actor) for a in result_actors if a.actor_kind == "user"]
        after = notable.loc[notable["timestamp"] >= since]
        by_them = after["client_ip"].isin(ips).to_numpy(dtype=bool, na_value=False) | after["user"].isin(
            users
        ).to_numpy(dtype=bool, na_value=False)
        after = after.loc[by_them]
        is_op = regex_mask(after["message"], DATA_OPERATION) | regex_mask(after["url_path"], DATA_OPERATION)
        ops = after.loc[is_op].head(MAX_DATA_OPERATIONS)
        operations = tuple(Evidence.from_row(r) for r in ops.itertuples(index=False))
    return Exposure(actors=tuple(result_actors), accounts_touched=tuple(touched), data_operations=operations)
