"""Recognize change events (deploys, rollbacks, restarts, config changes, ...) in log messages.

:func:`classify_changes` is a pure stage applied to every chunk of events before aggregation. A log
line whose message matches the change vocabulary becomes ``kind="change"`` with a ``change_type``
from :data:`pmtimeline.schema.CHANGE_TYPES`, and is filed under the service it changes (below).

What is *not* a change:

* alerts and requests are never reclassified;
* an event of level error or worse ("deploy failed", "failed to restart") is an error, not a change:
  the action did not happen, and the line already counts as an error signal;
* a message that reports a failure or refusal of the action ("could not restart", "rollback aborted",
  "migration error") at any level;
* a login whatever the user is called ("Accepted publickey for deploy", "Started Session of user
  deploy"), and a freeze of changes ("deploys locked by incident commander", "code freeze").

Each change type is a case-insensitive regular expression (RE2 syntax, evaluated by Arrow over the
whole column). When several types match, the most specific wins, in the order of
:data:`CHANGE_PRIORITY` (a "rollback of deploy 42" is a rollback, not a deploy).

The service a change changes
    A deploy tool logs about other services: Jenkins writes "Deploying checkout-api version 3.2.0",
    ``kubectl`` ``deployment.apps/checkout image updated``, Helm ``Release "checkout" has been
    upgraded``. :func:`change_targets` reads the target (and the version, and who did it) from the
    message and the structured fields, with the patterns of :data:`TARGET_PATTERNS` (then
    :data:`FIELD_TARGET_PATTERNS`, :data:`DEPLOY_VERB_TARGET_PATTERN`, :data:`VERB_TARGET_PATTERN`), and
    :func:`classify_changes` files the change under its target: ``service`` becomes the target, and
    ``fields`` gain ``change.target``, ``change.version``, ``change.actor`` (the person named, else the
    tool) and ``change.tool`` (the service that logged the line, when it is not the target). A
    service's own change ("payments-api: deploying v2.14.0") keeps its service; names are compared with
    the one loose rule of :mod:`pmtimeline.service_names` (``payments`` is ``payments-api``).
    :func:`change_details` reads these keys back; :func:`describe_change` words a change with them
    (``deploy of checkout-api v3.2.0 by jenkins``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pmtimeline.errors import ConfigError
from pmtimeline.polars_regex import search_ignoring_case
from pmtimeline.schema import CHANGE_TYPES, ERROR_LEVELS, STRING
from pmtimeline.service_names import same_service_mask
from pmtimeline.templates import arrow_text

#: Change type -> case-insensitive regex (RE2) over the message. Configurable with
#: ``TimelineConfig.change_vocabulary`` (a partial mapping replaces the named types only).
DEFAULT_CHANGE_VOCABULARY: Final[Mapping[str, str]] = {
    # Commands that destroy data or capacity, whoever typed them (a sudo or shell audit line, a
    # runbook's log): a recursive rm, dropped or truncated tables, a DELETE without WHERE, terminated
    # instances, kubectl/helm deletes, a destroyed stack. A change of its own kind: it starts incidents.
    "destructive": (
        r"\brm\s+(?:-[a-z-]+\s+)*(?:-[a-z]*r[a-z]*|--recursive)\s|"
        r"\bdrop\s+(?:table|database|schema|keyspace|collection)\b|\btruncate\s+table\b|\bdropdb\s|"
        r"\bdelete\s+from\s+[\w.\"`]+\s*;?\s*(?:$|[\"'])|\bterminate-instances\b|\bkubectl\s+(?:\S+\s+){0,3}delete\s|"
        r"\bhelm\s+(?:uninstall|delete)\s|\bterraform\s+destroy\b|\bdelete-(?:bucket|db-instance|db-cluster|stack|table)\b|"
        r"\bmkfs(?:\.\w+)?\s|\bflush(?:all|db)\b|\bgit\s+push\s+(?:-f|--force)\b"
    ),
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
        r"deny ?list(ed)?|block ?list(ed)?|blacklist(ed)?|rate[- ]limit(ing)? (enabled|applied|added|tightened)|"
        # A breach's containment: credentials reset and sessions revoked by the responders (plural or
        # "all": one user's logout revoking their own token is no change).
        r"password resets? (forced|enforced|required)|forc(e|ed|ing) (a )?password resets?|"
        r"(all )?(sessions|tokens|api keys|credentials|access keys) (were |have been )?revoked|"
        r"revok(e|ed|ing) (all )?(active |the )?(sessions|tokens|api keys|credentials|access keys)|"
        r"locked by (an? )?admin\w*|\] ban \S+)\b"
    ),
    "certificate": (
        r"\b(cert(ificate)?s? (install|renew|rotat|replac|updat|deploy|reissu)\w*|"
        r"(install|renew|rotat|replac|reissu)\w* (the |a |new |tls |ssl |x509 )*cert(ificate)?s?)"
    ),
    "migration": r"\b(migrat(ion|ions|ed|ing)|schema (change|update|upgrade)|alembic upgrade|flyway|liquibase)\b",
    "scale": (
        r"\b(scal(e|ed|ing)[ -]?(up|out|down|in|to)|autoscal\w*|"
        r"(replicas?|instances?|nodes?|capacity) (set|increased|decreased|changed|raised) (to|from)|"
        r"add(ed|ing)? \d+ (more )?(nodes|instances|replicas|pods|workers)|"
        # Kubernetes audit events (see connectors.log_formats): a write to the scale subresource.
        r"(update|patch) \S+/\S+ scale)\b"
    ),
    "restart": (
        r"\b(restart(ed|ing|s)?|reboot(ed|ing|s)?|respawn(ed|ing)?|bounc(e|ed|ing) (the )?"
        r"(service|pod|process|server|app|node)s?|(service|process|server|daemon|application|app|pod|container)s? "
        r"(was |were |has been )?re-?started|delete pods/)\b"
    ),
    "feature_flag": (
        r"\b(feature[ -]?flag|feature toggle|kill ?switch|flag \S+ (enabled|disabled|turned|set|flipped|toggled)|"
        r"(enabl|disabl)(e|ed|ing) (the )?(feature|flag)|toggl(e|ed|ing) (the )?(feature|flag))"
    ),
    "config": (
        r"\b(config(uration)? (change|changed|update|updated|reload|reloaded|applied|push|pushed|deployed|rollout)|"
        r"(updat|chang|reload|appl|push)(e|ed|ing|ied|y) (the |new )?config(uration)?|"
        r"kubectl (apply|patch|edit|set (env|resources|selector|serviceaccount|subject))|terraform apply|"
        r"sysctl -w|"
        r"(create|update|patch) (configmaps|secrets|services|ingresses|horizontalpodautoscalers)(\.[a-z.]+)?/)"
    ),
    "deploy": (
        r"\b(deploy(ed|ing|s)?|deployment (started|finished|complete|completed|succeeded|of)|"
        r"roll(ed|ing)?[ -]?out|rollout|releas(e|ed|ing) v?\d|new release|release (started|finished|complete)|"
        r"version bump|bump(ed|ing)? (the )?version|upgrad(e|ed|ing) (\S+ )?to v?\d|now running v(ersion )?\d|"
        r"upgrad(e|ed|ing) \S+ from \S+ to|(created|creating) deployment|"
        r"deployment \d* ?(created|succeeded|successful)|"
        # kubectl set image, a Deployment's image updated; Argo CD's sync; Helm's and Flux's upgrades.
        r"(create|update|patch) (deployments|statefulsets|daemonsets)(\.apps)?/|"
        r"set image|image (updated|changed|set)|helm (upgrade|install)|initiated (automated )?sync|sync operation to|"
        r"has been (upgraded|installed)|(upgrade|install) (succeeded|completed|complete|successful))\b"
    ),
    # An operator's action on an object (a version activated, a ruleset published, a command applied
    # on routers, hosts taken out of service), believed only on a line of an operational source
    # (:data:`OPERATIONAL_SOURCES`): an application "published" messages and "applied" discounts.
    "operation": (
        r"\b(activat(e|ed|ing)|publish(ed|ing)?|appl(y|ied|ying)|push(ed|ing)?|enabl(e|ed|ing)|disabl(e|ed|ing)|"
        r"remov(e|ed|ing)|drain(ed|ing)?|decommission(ed|ing)?|withdr(ew|awn|awing)|cordon(ed|ing)?|"
        r"execut(e|ed|ing)|invok(e|ed|ing)) (the |a |an |new |version |on )?[\w.-]*[a-z0-9]|"
        r"\S \b(taken|put|placed|pulled|set|brought) (out of (service|rotation)|offline|off ?line|down|"
        r"in(to)? maintenance)\b"
    ),
}

#: Where an ``operation`` is believed (RE2, case-insensitive, searched in the line's service, its
#: source path and the names of its structured fields): deploy and configuration tools, audit and
#: shell logs, automation and runbooks, network operations, or a line that names its actor.
OPERATIONAL_SOURCES: Final = (
    r"jenkins|argo|spinnaker|github|gitlab|flux|helm|kube|ansible|terraform|pulumi|chef|puppet"
    r"|deploy|release|pipeline|rollout|config|audit|sudo|shell|automation|playbook|runbook|admin|console|netops|"
    r"devops|orchestr|maint|(?:^|[^a-z])(?:ops|cli|cd|ci|sre)(?:$|[^a-z])|\"(?:actor|initiator|operator|tool)\":"
)

#: The order in which types win when several match: the most specific first.
CHANGE_PRIORITY: Final[tuple[str, ...]] = (
    "destructive",
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
    "operation",
)

#: Words that report the failure or refusal of an action: such a message is not a change. RE2 has no
#: look-ahead, so "failed over" is rewritten to "failover" before this test.
FAILURE_WORDS: Final = (
    r"\b(fail|fails|failed|failing|failure|error|errors|exception|unable|could ?not|couldn't|can ?not|can't|"
    r"timed? ?out|refused|denied|aborted|aborting|panic|crash(ed|ing)?|unsuccessful|invalid|will retry|retrying)\b"
)
_FAILED_OVER: Final = r"(?i)\bfail(ed|ing)?[ -]?over\b"
#: Authentication lines: never a change, whatever the user is called ("Accepted publickey for deploy").
LOGIN_LINES: Final = (
    r"\b(accepted|failed) (password|publickey|keyboard-interactive\S*|hostbased|none) for\b|"
    r"\bsession (opened|closed) for user\b|\bpam_unix\(|\blog ?in (succeeded|successful|failed) for\b|"
    # systemd and systemd-logind: "Started Session 12 of User deploy.", "New session 3 of user deploy."
    r"\bsession (\S+ )?of user\b"
)
#: A freeze of changes is a decision about changes, not a change ("deploys locked by incident commander").
FREEZE_LINES: Final = (
    r"\b(deploys?|deployments?|releases?|rollouts?|changes?|merges?) (are |were |is |was |have been |has been |now )?"
    r"(locked|frozen|paused|halted|suspended|on hold)\b|\b(deploy|deployment|change|release|code) (freeze|lock)\b"
)

#: Change types that can mitigate an incident (``phases`` uses them for ``mitigated``). A plain
#: deploy after onset also counts when it lands in an affected service (a fix forward).
MITIGATING_CHANGE_TYPES: Final[frozenset[str]] = frozenset(
    {"rollback", "restart", "failover", "reroute", "scale", "block", "certificate", "config", "feature_flag"}
)


def operational_mask(events: pd.DataFrame) -> np.ndarray:
    """Which events come from an operational source (:data:`OPERATIONAL_SOURCES`), searched in the
    event's service, its source's folder and file name, and the names (not the values) of its fields."""
    place = (
        events["service"].fillna("").astype(str)
        + " "
        # The source's folder and file name: the folders above it are the user's, not the log's.
        + events["source"].fillna("").astype(str).str.extract(r"([^/\\]*[/\\]?[^/\\]*)$", expand=False).fillna("")
        + " "
        + events["fields"].fillna("").astype(str).str.replace(r':"(?:[^"\\]|\\.)*"', ":", regex=True)
    )
    return search_ignoring_case(arrow_text(place), OPERATIONAL_SOURCES)


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
    ok = ~search_ignoring_case(cleaned, FAILURE_WORDS) & ~search_ignoring_case(cleaned, LOGIN_LINES)
    ok &= ~search_ignoring_case(cleaned, FREEZE_LINES)
    todo, messages = todo[ok], messages.filter(pa.array(ok))
    if todo.size == 0:
        return events
    masks = [search_ignoring_case(messages, vocab[name]) for name in CHANGE_PRIORITY]
    # An operator's action counts on an operational source only (see OPERATIONAL_SOURCES).
    masks[CHANGE_PRIORITY.index("operation")] &= operational_mask(events.iloc[todo])
    types = np.select(masks, list(CHANGE_PRIORITY), default="")
    found = types != ""
    out = events.copy()
    rows = todo[found]
    out["kind"] = _replace_rows(out["kind"], rows, pa.array(np.full(rows.size, "change"), pa.large_string()))
    out["change_type"] = _replace_rows(out["change_type"], rows, pa.array(types[found], pa.large_string()))
    return _file_under_targets(out, rows)


# --------------------------------------------------------------------------------------------------
# The service a change changes, its version and who made it

_NAME: Final = r"[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]"
_K8S_NAME: Final = r"[a-z0-9][a-z0-9-]*[a-z0-9]"
_VERSION: Final = r"v\d+(?:[.+-][0-9A-Za-z]+)*|\d+\.\d+(?:[.+-][0-9A-Za-z]+)*|\d{4}-\d{2}-\d{2}(?:[.+-][0-9A-Za-z]+)*"
_DEPLOY_VERBS: Final = (
    r"deploy(?:ing|ed)?|deployment of|redeploy(?:ing|ed)?|roll(?:ing|ed)?[ -]?out|rollout of|releas(?:ing|ed)|"
    r"upgrad(?:ing|ed)|roll(?:ing|ed)?[ -]?back|rollback of"
)
_RESTART_VERBS: Final = r"restart(?:ing|ed)?|reboot(?:ing|ed)?|scal(?:ing|ed) (?:up|down|out|in)"
#: Where a change line names the service it changes, most specific first (RE2, case-insensitive).
#: Each has a ``target`` group and may have a ``version`` group.
TARGET_PATTERNS: Final[tuple[str, ...]] = (
    # kubectl and Kubernetes events: deployment.apps/checkout, deployment/checkout, statefulset/db;
    # Flux: HelmRelease/checkout.prod, Kustomization/prod/checkout, Deployment/prod/checkout.
    r"(?i)\b(?:deployments?|deploy|statefulsets?|sts|daemonsets?|ds|cronjobs?|helmreleases?|kustomizations?|"
    rf"applications?)(?:\.[a-z.]+)?/(?:[a-z0-9-]+/)?(?P<target>{_K8S_NAME})",
    rf'(?i)\b(?:deployment|statefulset|daemonset) "(?P<target>{_K8S_NAME})"',
    # The Deployment controller's events: Scaled up replica set checkout-7d9f8b6c4d to 3.
    r"(?i)\breplica ?sets? \"?(?P<target>[a-z0-9][a-z0-9-]*?)-[a-z0-9]{6,10}\"?(?:\s|$)",
    # A pod of a Deployment: <deployment>-<replica set hash>-<5 characters>.
    r"(?i)\bpods?/(?P<target>[a-z0-9][a-z0-9-]*?)-[a-z0-9]{6,10}-[a-z0-9]{5}\b",
    # Helm: Release "checkout" has been upgraded; helm upgrade --install checkout ./chart --version 1.2.3;
    # Flux's helm-controller: release prod/checkout.v5 with chart checkout@1.2.3.
    rf'(?i)\brelease "(?P<target>{_NAME})"',
    rf"(?i)\bhelm (?:upgrade|install|rollback|uninstall)(?: --install| -i)? (?P<target>{_K8S_NAME})",
    rf"(?i)\brelease (?:[a-z0-9-]+/)?(?P<target>{_K8S_NAME})(?:\.v\d+)? with chart [\w.-]+@(?P<version>[\w.+-]+)",
    # Spinnaker: server group checkout-prod-v042 (application-stack-detail-vNNN; the application has no dash).
    r"(?i)\bserver ?group:? ['\"]?(?P<target>[a-z0-9]+)(?:-[\w]+)*-v\d{3}\b",
    # Argo CD, Spinnaker, GitHub: app=checkout, application: checkout, application argocd/checkout.
    rf"(?i)\b(?:app|application)[:=] ?['\"]?(?:[\w-]+/)?(?P<target>{_NAME})",
    rf"(?i)\b(?:repository|repo)[:= ] ?['\"]?(?:[\w-]+/)?(?P<target>{_NAME})",
    rf"(?i)\b(?:of|for) (?:the )?application ['\"]?(?:[\w-]+/)?(?P<target>{_NAME})",
    # Deploying version 3.2.0 of checkout-api.
    rf"(?i)\b(?:{_DEPLOY_VERBS}) (?:version )?(?P<version>{_VERSION}) (?:of|for) (?P<target>{_NAME})",
    # systemd units: fluent-bit.service: Scheduled restart job.
    r"(?i)(?:^|[\s(\[:'\"])(?P<target>[A-Za-z][\w@-]*[A-Za-z0-9])\.service\b",
    # GitHub deployments and others: checkout-api@v3.2.0.
    rf"(?i)(?:^|[\s(\[:'\"/])(?P<target>{_NAME})@(?P<version>v?\d[\w.+-]*[0-9A-Za-z])",
)
#: The least specific places: the word after a verb. After a deploy verb ("Deploying checkout-api
#: version 3.2.0", "Deployed payments v2.4.0", "rolled back payments to v2.3.9") it is taken as the
#: target (an application does not deploy parts of itself); see :data:`VERB_TARGET_PATTERN`.
DEPLOY_VERB_TARGET_PATTERN: Final = (
    rf"(?i)\b(?:{_DEPLOY_VERBS})(?: of)?(?: (?:the|service|app|application|deployment|release))? ['\"]?"
    rf"(?P<target>{_NAME})['\"]?(?: (?:to |version |to version |release )?(?P<version>{_VERSION}))?"
)
#: After a restart or scale verb, the word is believed only when the line's service is unknown, is a
#: deploy tool (:data:`DEPLOY_TOOLS`), or the target is a service of the same events: an application
#: says "Restarting consumer" of a part of itself.
VERB_TARGET_PATTERN: Final = (
    rf"(?i)\b(?:{_RESTART_VERBS})(?: (?:the|service|app|application|deployment))? ['\"]?(?P<target>{_NAME})"
)
#: Services that deploy, restart or configure others (RE2, case-insensitive, searched in the name).
DEPLOY_TOOLS: Final = (
    r"(?i)jenkins|argo|spinnaker|github|gitlab|bitbucket|flux|helm|kube|k8s|systemd|ansible|terraform|pulumi|"
    r"octopus|circleci|buildkite|teamcity|bamboo|codedeploy|harness|tekton|drone|concourse|azure-?devops|"
    r"chef|puppet|salt|nomad|cloudformation|capistrano|deploy|release|pipeline|rollout|operator|controller|"
    r"(?:^|[^a-z])c[id](?:$|[^a-z])"
)
#: Where a change's structured fields name the object changed (JSON text; Flux's ``HelmRelease.name``,
#: a GitHub deployment's ``repository.name``), when its message names none.
FIELD_TARGET_PATTERNS: Final[tuple[str, ...]] = (
    r'(?i)"(?:helmrelease|kustomization|application|app|deployment|release|repository|objectref)\.name":'
    r'"(?:[\w-]+/)?(?P<target>[A-Za-z][\w.-]*[A-Za-z0-9])"',
)
#: Words the patterns above may take for a name but that name no service.
NOT_A_TARGET: Final = frozenset(
    {
        *("to", "the", "a", "an", "new", "version", "release", "build", "production", "prod", "staging", "stage"),
        *("canary", "changes", "change", "config", "configuration", "complete", "completed", "started", "start"),
        *("finished", "succeeded", "successful", "success", "in", "on", "of", "for", "from", "all", "pod", "pods"),
        *("service", "services", "app", "apps", "application", "deployment", "deploy", "rollout", "image", "it"),
        *("this", "now", "job", "jobs", "node", "nodes", "host", "hosts", "cluster", "replica", "replicas"),
        *("instance", "instances", "container", "containers", "environment", "env", "stack", "pipeline", "sync"),
        *("server", "servers", "system", "is", "was", "has", "and", "with", "after", "before", "by", "via"),
        *("scheduled", "requested", "triggered", "initiated", "manual", "automatic", "automated", "latest"),
        *("web", "webapp", "war", "archive", "directory", "descriptor", "context", "bundle", "module", "plugin"),
        *("locked", "unlocked", "frozen", "paused", "resumed", "blocked", "enabled", "disabled", "done"),
    }
)
#: Where a change line names its version, after the target patterns' own (RE2, case-insensitive).
VERSION_PATTERNS: Final[tuple[str, ...]] = (
    # upgrading checkout from 3.1.0 to 3.2.0: the version after "to" is the one deployed.
    r"(?i)\bto (?:version |v)?(?P<version>v?\d+(?:\.\d+)+(?:[-+][\w.]+)?)",
    rf"(?i)\b(?:version|ver|tag|revision|rev|release)[ :=]+['\"]?(?P<version>{_VERSION}|\d+)",
    r"(?i)@(?P<version>v?\d+(?:\.\d+)+(?:[-+][\w.]+)?)",
    r"(?i)[A-Za-z][\w./-]*:(?P<version>v?\d+(?:\.\d+)+(?:[-+][\w.]+)?)",  # an image tag
    r"(?i)\b(?P<version>v\d+(?:\.\d+)+(?:[-+][\w.]+)?)",
    # Structured fields (JSON text): Argo CD revision=, service.version, image.tag, GitHub ref.
    r'"(?:revision|version|service\.version|app\.version|image\.tag|chart_version|chart\.version|'
    r'target_revision|targetrevision|ref)":"(?P<version>(?:[^"\\]|\\.)+)"',
)
#: Where a change line names the person who made it (RE2, case-insensitive).
ACTOR_PATTERNS: Final[tuple[str, ...]] = (
    r'(?i)"(?:initiator|initiated_by|triggered_by|triggeredby|actor|author|deployer|requested_by|user\.name|'
    r'user\.username|username|sender\.login)":"(?P<actor>(?:[^"\\]|\\.)+)"',
    r"(?i)\b(?:by|initiator|deployer)[:= ]+['\"]?(?P<actor>[A-Za-z][\w.@-]*[A-Za-z0-9])",
)
_NOT_AN_ACTOR: Final = frozenset({"the", "a", "an", "user", "default", "system", "unknown"})


def _first_match(text: pa.Array, patterns: tuple[str, ...], group: str) -> pa.Array:
    """Per value of ``text``, the ``group`` of the first pattern that matches (null where none)."""
    found: pa.Array = pa.nulls(len(text), pa.string())
    for pattern in patterns:
        if found.null_count == 0:
            break
        groups = pc.extract_regex(text, pattern)
        value = pc.struct_field(groups, group)
        found = pc.coalesce(found, pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value))
    return found


def _strings(values: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(values, pa.large_string())), dtype=STRING)


def _json_unescaped(values: pa.Array) -> pa.Array:
    """Values taken from inside JSON string literals, with their escapes decoded (the few values that
    hold an escape are decoded one by one)."""
    escaped = pc.fill_null(pc.match_substring(values, "\\"), False).to_numpy(zero_copy_only=False)
    if not escaped.any():
        return values  # most values hold no escape: they are their own text
    rows = np.flatnonzero(escaped)
    decoded = values.to_numpy(zero_copy_only=False).astype(object)
    decoded[rows] = [json.loads(f'"{v}"') for v in decoded[rows]]
    return pa.array(decoded, pa.string())


def _json_text(values: pd.Series) -> pd.Series:
    """Text as the inside of a JSON string literal (quotes, backslashes and control characters escaped)."""
    escaped = values.astype(STRING).str.replace("\\", "\\\\", regex=False).str.replace('"', '\\"', regex=False)
    return escaped.str.replace(r"[\x00-\x1f]", " ", regex=True)


def change_targets(changes: pd.DataFrame) -> pd.DataFrame:
    """The service each change line names as changed, its version and its actor, from the message
    (and the JSON ``fields``); a frame with the index of ``changes`` and the string columns
    ``target``, ``version`` and ``actor`` (null where the line names none), and the boolean
    ``by_verb`` (the target is only the word after a restart verb: see :data:`VERB_TARGET_PATTERN`).
    Vectorized: each pattern is one regex pass over the column."""
    message = arrow_text(changes["message"].fillna(""))
    fields = arrow_text(changes["fields"].fillna(""))
    target: pa.Array = pa.nulls(len(message), pa.string())
    version: pa.Array = pa.nulls(len(message), pa.string())
    searches = [(message, pattern) for pattern in TARGET_PATTERNS]
    searches += [(fields, pattern) for pattern in FIELD_TARGET_PATTERNS]
    searches += [(message, DEPLOY_VERB_TARGET_PATTERN), (message, VERB_TARGET_PATTERN)]
    by_verb: pa.Array = pa.repeat(pa.scalar(False), len(message))
    for text, pattern in searches:
        groups = pc.extract_regex(text, pattern)
        name = pc.struct_field(groups, "target")
        lowered = pc.utf8_lower(name)
        # A word that names no service ("deploying v2.14.0", "restart the job") is no target.
        usable = pc.and_(
            pc.invert(pc.is_in(lowered, pa.array(sorted(NOT_A_TARGET)))),
            pc.invert(pc.match_substring_regex(lowered, r"^v?\d")),
        )
        usable = pc.and_(pc.fill_null(usable, False), pc.is_null(target))
        target = pc.if_else(usable, name, target)
        if pattern is VERB_TARGET_PATTERN:
            by_verb = usable
        if "(?P<version>" in pattern:
            own = pc.struct_field(groups, "version")
            version = pc.if_else(pc.and_(usable, pc.is_null(version)), own, version)
    version = pc.if_else(pc.equal(version, ""), pa.scalar(None, pa.string()), version)
    from_fields = _json_unescaped(_first_match(fields, VERSION_PATTERNS[-1:], "version"))
    version = pc.coalesce(version, _first_match(message, VERSION_PATTERNS[:-1], "version"), from_fields)
    actor = pc.coalesce(
        _json_unescaped(_first_match(fields, ACTOR_PATTERNS[:1], "actor")),
        _first_match(message, ACTOR_PATTERNS[1:], "actor"),
    )
    nobody = pc.fill_null(pc.is_in(pc.utf8_lower(actor), pa.array(sorted(_NOT_AN_ACTOR))), False)
    actor = pc.if_else(nobody, pa.scalar(None, pa.string()), actor)
    frame = pd.DataFrame({"target": _strings(target), "version": _strings(version), "actor": _strings(actor)}).set_axis(
        changes.index
    )
    frame["by_verb"] = np.asarray(by_verb.to_numpy(zero_copy_only=False), dtype=bool)
    if "user" in changes.columns:
        # The user of a change line (an audit log's user.name) is the person who made it.
        frame["actor"] = frame["actor"].fillna(changes["user"].astype(STRING))
    return frame


#: The keys :func:`classify_changes` adds to a change's ``fields`` (see the module docstring).
CHANGE_FIELDS: Final[tuple[str, ...]] = ("change.target", "change.version", "change.actor", "change.tool")


def change_details(changes: pd.DataFrame) -> pd.DataFrame:
    """The :data:`CHANGE_FIELDS` of change events, read back from their ``fields``: a frame with the
    index of ``changes`` and the string columns ``target``, ``version``, ``actor`` and ``tool`` (null
    where the change names none). One regex pass over the column per key."""
    text = arrow_text(changes["fields"].fillna("")) if len(changes) else pa.array([], pa.string())
    out: dict[str, pd.Series] = {}
    for key in CHANGE_FIELDS:
        pattern = '"' + key.replace(".", "\\.") + '":"(?P<value>(?:[^"\\\\]|\\\\.)*)"'
        out[key.removeprefix("change.")] = _strings(_json_unescaped(_first_match(text, (pattern,), "value")))
    return pd.DataFrame(out).set_axis(changes.index)


def describe_change(change_type: object, service: object, version: object, actor: object) -> str:
    """A change in words, for the timeline and the draft: ``deploy of payments-api v2.14.0 by ci-pipeline``
    (the parts that are unknown, None or NA, are left out)."""
    change_type, service, version, actor = (
        v if isinstance(v, str) and v else None for v in (change_type, service, version, actor)
    )
    text = change_type or "change"
    if service:
        text += f" of {service}"
    if version:
        text += f" {version}" if version[:1] in "vV" or not version[:1].isdigit() else f" v{version}"
    if actor and actor != service:
        text += f" by {actor}"
    return text


def _replace_rows(column: pd.Series, rows: np.ndarray, values: pa.Array) -> pd.Series:
    """``column`` (text) with the values at positions ``rows`` (ascending) replaced by ``values``, in
    Arrow: a few rows of a long column are replaced without a Python object per row."""
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    base = pa.array(column.array, type=pa.large_string())
    replaced = pc.replace_with_mask(base, pa.array(mask), values)
    return pd.Series(pd.arrays.ArrowStringArray(replaced), index=column.index, dtype=STRING)


def _file_under_targets(events: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """File the change ``rows`` of ``events`` under the service each names (see the module doc)."""
    if rows.size == 0:
        return events
    changes = events.iloc[rows]
    found = change_targets(changes)
    logged_by = changes["service"].astype(STRING)
    # Argo CD and Flux name applications namespace/name; the service is the name.
    named = logged_by.str.rsplit("/", n=1).str[-1].astype(STRING)
    # The word after a deploy verb names a service only when a tool (or nobody known) logged the line,
    # or when it is a service of these events: "orders: Restarting consumer" restarts part of orders.
    seen = pd.Series(events["service"].dropna().unique()).astype(STRING).str.lower()
    trusted = (
        ~found["by_verb"].to_numpy(dtype=bool)
        | logged_by.isna().to_numpy(dtype=bool)
        | search_ignoring_case(arrow_text(logged_by), DEPLOY_TOOLS)
        | found["target"].str.lower().isin(list(seen)).to_numpy(dtype=bool, na_value=False)
    )
    target = found["target"].where(pd.Series(trusted, index=found.index))
    other = target.notna().to_numpy(dtype=bool) & ~same_service_mask(target, named)
    service = named.where(~pd.Series(other, index=named.index), target)
    tool = logged_by.where(pd.Series(other, index=named.index) & logged_by.notna())
    actor = found["actor"].fillna(tool)
    renamed = (named != logged_by).fillna(False).to_numpy(dtype=bool)
    pieces = {
        "change.target": target.where(pd.Series(other, index=target.index), named.where(target.notna() | renamed)),
        "change.version": found["version"],
        "change.actor": actor,
        "change.tool": tool,
    }
    fragment = pd.Series("", index=changes.index, dtype=STRING)
    for key, value in pieces.items():
        fragment = fragment + ("," + f'"{key}":"' + _json_text(value) + '"').fillna("")
    fragment = fragment.str.slice(1)
    old = changes["fields"].astype(STRING)
    body = old.str.strip().str.removesuffix("}").str.removeprefix("{").fillna("")
    joined = ("{" + body + ("," + fragment).where(body != "", fragment) + "}").astype(STRING)
    fields = old.where(fragment == "", joined)
    out = events.copy()
    out["service"] = _replace_rows(out["service"], rows, pa.array(service.array, pa.large_string()))
    out["fields"] = _replace_rows(out["fields"], rows, pa.array(fields.array, pa.large_string()))
    return out
