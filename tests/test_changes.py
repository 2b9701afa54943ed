"""Change recognition in log messages: positive and negative vocabulary, what is never reclassified."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from synthetic_incidents import make_events

from pmtimeline.changes import (
    DEFAULT_CHANGE_VOCABULARY,
    change_details,
    change_vocabulary,
    classify_changes,
    describe_change,
)
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.logfile import LogFileConnector
from pmtimeline.errors import ConfigError
from pmtimeline.schema import CHANGE_TYPES

FORMATS_DIR = Path(__file__).parent / "data" / "formats"


def _classify(message: str, **fields: object) -> tuple[str, str | None]:
    frame = classify_changes(make_events([{"time": "2024-03-05T08:00:00Z", "message": message, **fields}]))
    change_type = frame["change_type"].iloc[0]
    return str(frame["kind"].iloc[0]), None if pd.isna(change_type) else str(change_type)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Deployed payments v2.4.0 (build 8812) to production", "deploy"),
        ("Starting deployment of payments-api version 2.4.0", "deploy"),
        ("rollout of checkout v3 complete", "deploy"),
        ("Released v1.8.2 to production", "deploy"),
        ("upgraded ledger to v5.1", "deploy"),
        ("Rolled back payments to v2.3.9", "rollback"),
        ("Reverted commit 3f2a1c: 'use new pool size'", "rollback"),
        ("rollback of deploy 42 started", "rollback"),
        ("Restarted reports worker after memory limit", "restart"),
        ("systemd: payments.service restarting", "restart"),
        ("node pay-2 rebooted", "restart"),
        ("configuration reloaded from /etc/payments.yaml", "config"),
        ("kubectl apply -f payments-config.yaml", "config"),
        ("applied migration 0042_add_index", "migration"),
        ("database failed over to replica db-2", "failover"),
        ("promoted standby db-2 to primary", "failover"),
        ("traffic shifted to eu-west-1", "reroute"),
        ("rerouted checkout traffic to the blue pool", "reroute"),
        ("scaled up payments to 12 replicas", "scale"),
        ("autoscaler added 3 nodes", "scale"),
        ("Blocked IP 203.0.113.7 after repeated failures", "block"),
        ("WAF rule 1002 enabled for /login", "block"),
        ("certificate renewed for api.bank.example", "certificate"),
        ("installed new TLS certificate for edge", "certificate"),
        ("feature flag new_checkout disabled", "feature_flag"),
    ],
)
def test_changes_are_recognized_with_their_type(message: str, expected: str) -> None:
    assert _classify(message, level="info", service="payments") == ("change", expected)


@pytest.mark.parametrize(
    "message",
    [
        "failed to restart worker: permission denied",
        "could not restart payments",
        "deploy failed: image not found",
        "migration 0042 failed",
        "rollback aborted",
        "Released lock 42",
        "user logged in",
        "restarting the request timed out",
        "payment processed for release of funds",
        "GET /api/v1/deployments 200",
        "deploys locked by incident commander",
        "Started Session 12 of User deploy.",
        "New session 3 of user deploy.",
        "Started Session of user deploy.",
        "Deployments are frozen until the incident is resolved",
        "code freeze starts at 18:00",
    ],
)
def test_failures_and_lookalikes_are_not_changes(message: str) -> None:
    assert _classify(message, level="info")[0] == "log"


@pytest.mark.parametrize(
    "message",
    [
        "sudo:    admin : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/bin/rm -fr /srv/mysql/datadir",
        "COMMAND=/usr/bin/rm --recursive --force /data/kafka",
        "executing: rm -v -R /var/lib/elasticsearch/nodes ",
        "statement: DROP TABLE ledger_entries;",
        "psql -c 'TRUNCATE TABLE payments'",
        "query: DELETE FROM sessions;",
        "aws ec2 terminate-instances --instance-ids i-0abc123 i-0def456",
        "kubectl -n prod delete deployment checkout",
        "terraform destroy -auto-approve -target=module.db",
        "redis-cli FLUSHALL",
    ],
)
def test_destructive_commands_are_changes_of_their_own_type(message: str) -> None:
    """Issue 15: a command that destroys data or capacity is a change, whatever program logged it
    (the GitLab deletion was a notice-level sudo line); none of these is a zoo incident's wording."""
    assert _classify(message, level="notice", service="sudo") == ("change", "destructive")


@pytest.mark.parametrize(
    "message",
    [
        "rm -f /tmp/app.lock",
        "DELETE FROM sessions WHERE expires_at < now()",
        "dropped 3 frames while rendering",
        "message truncated to 1024 bytes",
        "deleted 12 expired sessions",
    ],
)
def test_ordinary_deletes_are_not_destructive_changes(message: str) -> None:
    assert _classify(message, level="info", service="app") == ("log", None)


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ("ruleset edge-core v7 published to all regions", {"source": "deploy/console.jsonl", "service": "console"}),
        ("tenant t-93 enabled strict routing mode", {"source": "cfg/tenants.log", "service": "config-service"}),
        ("disabled health checks on lb-3", {"source": "netops/automation.log", "service": "netops"}),
        ("40 of 120 workers pulled out of rotation", {"source": "ops/audit.log", "service": "batch"}),
        ("withdrew prefix 203.0.113.0/24 from peers", {"source": "net/router.log", "actor": "jdoe"}),
    ],
)
def test_operator_actions_on_operational_sources_are_changes(message: str, where: dict[str, str]) -> None:
    """An operator's action on an object counts on an operational source (deploy or config tool,
    audit log, automation, network operations, or a line that names its actor)."""
    fields = {"fields": json.dumps({"actor": where.pop("actor")})} if "actor" in where else {}
    assert _classify(message, level="info", **where, **fields) == ("change", "operation")


@pytest.mark.parametrize(
    "message",
    [
        "published event OrderCreated to topic orders",
        "applied coupon SAVE10 to cart 991",
        "removed item sku-12 from cart",
        "enabled gzip for response",
    ],
)
def test_application_verbs_are_not_operations(message: str) -> None:
    """The same verbs in an application's own log describe its work, not an operator's change."""
    assert _classify(message, level="info", source="orders/app.log", service="orders") == ("log", None)


def test_error_events_mentioning_a_change_stay_errors() -> None:
    assert _classify("Restarted payments", level="error") == ("log", None)


@pytest.mark.parametrize("kind", ["alert", "request"])
def test_alerts_and_requests_are_never_reclassified(kind: str) -> None:
    assert _classify("Deployed payments v2.4.0", kind=kind)[0] == kind


def test_change_events_keep_their_kind_and_get_a_type() -> None:
    assert _classify("Rolled back payments to v2.3.9", kind="change") == ("change", "rollback")
    assert _classify("pipeline #88 finished", kind="change", change_type="deploy") == ("change", "deploy")


def test_service_is_kept_for_attribution() -> None:
    frame = classify_changes(
        make_events([{"time": "2024-03-05T08:00:00Z", "message": "Deployed v2", "service": "ledger"}])
    )
    assert frame["service"].iloc[0] == "ledger"


def test_vocabulary_is_configurable() -> None:
    frame = make_events([{"time": "2024-03-05T08:00:00Z", "message": "shipit: payments #551 live"}])
    assert classify_changes(frame)["kind"].iloc[0] == "log"
    custom = classify_changes(frame, {"deploy": r"\bshipit\b"})
    assert (custom["kind"].iloc[0], custom["change_type"].iloc[0]) == ("change", "deploy")


def test_vocabulary_covers_every_change_type() -> None:
    assert set(DEFAULT_CHANGE_VOCABULARY) == set(CHANGE_TYPES)


@pytest.mark.parametrize("bad", [{"deploy": "(unclosed"}, {"teleport": "beam me up"}])
def test_bad_vocabulary_is_a_config_error(bad: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        change_vocabulary(bad)


def test_empty_frame_passes_through() -> None:
    empty = make_events([{"time": "2024-03-05T08:00:00Z", "message": "Deployed v2"}]).iloc[:0]
    assert classify_changes(empty).empty


# --------------------------------------------------------------------------------------------------
# The service a change changes, its version and who made it


def _filed(message: str, service: str | None, fields: str | None = None, **extra: object) -> dict[str, object]:
    frame = classify_changes(
        make_events(
            [{"time": "2024-03-05T08:00:00Z", "message": message, "service": service, "fields": fields, **extra}]
        )
    )
    row = frame.iloc[0]
    assert row["kind"] == "change", message
    parsed = json.loads(row["fields"]) if pd.notna(row["fields"]) else {}
    return {"service": row["service"], "type": row["change_type"], **parsed}


@pytest.mark.parametrize(
    ("tool", "message", "target", "change_type", "version"),
    [
        ("jenkins", "Deploying checkout-api version 3.2.0", "checkout-api", "deploy", "3.2.0"),
        ("jenkins", "Finished: deployed orders v4.1.0 to production", "orders", "deploy", "v4.1.0"),
        ("kubectl", "kubectl rollout restart deployment/checkout", "checkout", "restart", None),
        ("kube-apiserver", "deployment.apps/checkout image updated", "checkout", "deploy", None),
        (
            "kubectl",
            "kubectl set image deployment/checkout checkout=registry.example.com/shop/checkout:3.2.1",
            "checkout",
            "deploy",
            "3.2.1",
        ),
        ("kubectl", 'deployment "search" successfully rolled out', "search", "deploy", None),
        ("deployment-controller", "Scaled up replica set checkout-7d9f8b6c4d to 3", "checkout", "scale", None),
        ("jenkins", "Deploying version 3.2.0 of checkout-api", "checkout-api", "deploy", "3.2.0"),
        ("jenkins", "Upgrading checkout from 3.1.0 to 3.2.0", "checkout", "deploy", "3.2.0"),
        ("jenkins", "deployed checkout-api:3.2.0 to production", "checkout-api", "deploy", "3.2.0"),
        (
            "argocd-application-controller",
            "Initiated automated sync to 'v2.14.0' application=argocd/payments-api dest-namespace=payments",
            "payments-api",
            "deploy",
            "v2.14.0",
        ),
        ("argocd", "Initiated automated sync to 'v1.4.0' application=argocd/checkout", "checkout", "deploy", "v1.4.0"),
        ("argocd", "rollback of application checkout to revision 41 started", "checkout", "rollback", "41"),
        ("helm", 'Release "checkout" has been upgraded. Happy Helming!', "checkout", "deploy", None),
        ("helm", "helm upgrade --install checkout ./charts/checkout --version 1.4.2", "checkout", "deploy", "1.4.2"),
        (
            "helm-controller",
            "Helm upgrade succeeded for release shop/checkout.v5 with chart checkout@1.4.2",
            "checkout",
            "deploy",
            "1.4.2",
        ),
        ("flux", "HelmRelease/checkout.shop - upgrade succeeded", "checkout", "deploy", None),
        ("kustomize-controller", "Deployment/shop/checkout configured; rollout started", "checkout", "deploy", None),
        ("spinnaker", "Deploy of server group checkout-prod-v042 started", "checkout", "deploy", None),
        ("spinnaker", "Rolling back server group checkout-prod-v043 to v042", "checkout", "rollback", None),
        (
            "github-actions",
            "Created deployment 81234 for acme/checkout-api@v3.2.0 in environment production",
            "checkout-api",
            "deploy",
            "v3.2.0",
        ),
        (
            "github-actions",
            "Created deployment of checkout-api@v3.2.0 to production",
            "checkout-api",
            "deploy",
            "v3.2.0",
        ),
        (
            "systemd",
            "fluent-bit.service: Scheduled restart job, restart counter is at 1.",
            "fluent-bit",
            "restart",
            None,
        ),
    ],
)
def test_a_deploy_tool_change_is_filed_under_the_service_it_changes(
    tool: str, message: str, target: str, change_type: str, version: str | None
) -> None:
    filed = _filed(message, tool, level="info")
    assert filed["service"] == target
    assert filed["type"] == change_type
    assert filed["change.target"] == target
    assert filed.get("change.version") == version
    assert filed["change.tool"] == tool
    assert filed["change.actor"] == tool  # no person named: the tool made it


def test_a_flux_line_names_its_target_in_its_fields() -> None:
    fields = '{"controller":"helmrelease","HelmRelease.name":"checkout","HelmRelease.namespace":"shop"}'
    filed = _filed("Helm upgrade succeeded", "helm-controller", fields, level="info")
    assert (filed["service"], filed["type"], filed["change.tool"]) == ("checkout", "deploy", "helm-controller")


def test_the_actor_is_the_person_named_and_kept_apart_from_the_service() -> None:
    filed = _filed("Deploy of server group checkout-prod-v042 started by bob", "spinnaker", level="info")
    assert (filed["service"], filed["change.actor"], filed["change.tool"]) == ("checkout", "bob", "spinnaker")
    # Argo CD's logfmt: the app field is the service, the initiator the actor, the revision the version.
    filed = _filed(
        "sync started: deploying v2.14.0",
        "payments-api",
        '{"revision":"v2.14.0","initiator":"ci-pipeline"}',
        level="info",
    )
    assert filed["service"] == "payments-api"
    assert (filed["change.version"], filed["change.actor"]) == ("v2.14.0", "ci-pipeline")
    assert "change.tool" not in filed
    assert filed["revision"] == "v2.14.0"
    # An audit log's user is the person who made the change.
    filed = _filed("deployment.apps/ledger image updated", "kube-apiserver", user="alice@example.com", level="info")
    assert (filed["service"], filed["change.actor"], filed["change.tool"]) == (
        "ledger",
        "alice@example.com",
        "kube-apiserver",
    )


@pytest.mark.parametrize(
    ("service", "message", "version"),
    [
        ("payments-api", "Deploying payments-api version 2.14.0", "2.14.0"),
        ("payments-api", "sync started: deploying v2.14.0", "v2.14.0"),
        ("payments", "Deployed payments-api v2.4.0 (build 8812)", "v2.4.0"),  # loosely the same service
        ("ledger", "Released v1.8.2 to production", "v1.8.2"),
        (None, "rollout of checkout v3 complete", "v3"),
    ],
)
def test_a_service_s_own_change_keeps_its_service(service: str | None, message: str, version: str) -> None:
    filed = _filed(message, service, level="info")
    assert filed["service"] == (service or "checkout")
    assert filed["change.version"] == version
    assert "change.tool" not in filed


def test_unsafe_names_stay_valid_json_and_lines_that_are_not_changes_are_untouched() -> None:
    events = make_events(
        [
            {
                "time": "2024-03-05T08:00:00Z",
                "message": "Deployed cart v2.0.1",
                "service": 'deploy"er\\bot',
                "level": "info",
            },
            {
                "time": "2024-03-05T08:00:01Z",
                "message": "deploy failed for cart",
                "service": "jenkins",
                "level": "info",
            },
            {"time": "2024-03-05T08:00:02Z", "message": "GET /", "service": "edge", "fields": '{"a":1}'},
        ]
    )
    out = classify_changes(events)
    assert json.loads(out["fields"].iloc[0])["change.tool"] == 'deploy"er\\bot'
    assert out["service"].tolist() == ["cart", "jenkins", "edge"]
    assert pd.isna(out["fields"].iloc[1])
    assert out["fields"].iloc[2] == '{"a":1}'
    # Classifying again changes nothing (the fields are not extended twice).
    again = classify_changes(out)
    assert again["fields"].tolist() == out["fields"].tolist()


def test_change_details_read_back_and_describe_the_change() -> None:
    events = classify_changes(
        make_events(
            [
                {
                    "time": "2024-03-05T08:00:00Z",
                    "message": "Deploying checkout-api version 3.2.0",
                    "service": "jenkins",
                },
                {"time": "2024-03-05T08:00:01Z", "message": "all good", "service": "checkout-api"},
                {
                    "time": "2024-03-05T08:00:02Z",
                    "message": "kubectl rollout restart deployment/cart",
                    "service": "ops",
                },
            ]
        )
    )
    details = change_details(events)
    assert details.index.equals(events.index)
    assert details.loc[0].tolist() == ["checkout-api", "3.2.0", "jenkins", "jenkins"]
    assert details.loc[1].isna().all()
    assert details.loc[2, "target"] == "cart"
    assert pd.isna(details.loc[2, "version"])
    texts = [
        describe_change(row.change_type, row.service, version, actor)
        for row, version, actor in zip(events.itertuples(), details["version"], details["actor"], strict=True)
    ]
    assert texts == ["deploy of checkout-api v3.2.0 by jenkins", "change of checkout-api", "restart of cart by ops"]


def test_kubernetes_audit_writes_are_changes_of_the_object_s_service(tmp_path: Path) -> None:
    """A Kubernetes audit log (kube-apiserver's JSON events) read from a file: writes to a Deployment
    are changes filed under it, the user is the actor; reads and refused writes are not changes."""
    log = tmp_path / "kube-apiserver" / "audit.log"
    log.parent.mkdir()
    log.write_text((FORMATS_DIR / "kubernetes_audit.log").read_text(encoding="utf-8"), encoding="utf-8")
    scale = json.loads((FORMATS_DIR / "kubernetes_audit.log").read_text(encoding="utf-8").splitlines()[1])
    scale["objectRef"]["subresource"] = "scale"
    scale["objectRef"]["name"] = "search"
    scale["user"] = {"username": "carol@example.com"}
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(scale) + "\n")
    events = pd.concat(list(LogFileConnector(str(log), TimelineConfig()).read()), ignore_index=True)
    assert set(events["format"]) == {"kubernetes_audit"}
    out = classify_changes(events)
    assert out["kind"].tolist() == ["log", "change", "log", "change"]  # a read, a patch, a refused delete, a scale
    assert out["change_type"].tolist()[1::2] == ["deploy", "scale"]
    assert out["service"].tolist() == ["kube-apiserver", "checkout", "kube-apiserver", "search"]
    details = change_details(out)
    assert details["actor"].tolist()[1::2] == ["alice@example.com", "carol@example.com"]
    assert details["tool"].tolist()[1::2] == ["kube-apiserver", "kube-apiserver"]


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("orders", "Restarting consumer after rebalance"),
        ("search-api", "Restarted scheduler thread"),
        ("payments", "Restarted reports worker after memory limit"),
    ],
)
def test_an_application_restarting_a_part_of_itself_keeps_its_service(service: str, message: str) -> None:
    filed = _filed(message, service, level="info")
    assert filed["service"] == service
    assert "change.target" not in filed
    assert "change.tool" not in filed


def test_a_named_service_of_the_same_events_is_believed_after_a_deploy_verb() -> None:
    events = make_events(
        [
            {"time": "2024-03-05T08:00:00Z", "message": "Restarted reports after memory limit", "service": "ops-bot"},
            {"time": "2024-03-05T08:00:01Z", "message": "report 42 built", "service": "reports"},
        ]
    )
    out = classify_changes(events)
    assert out["service"].tolist() == ["reports", "reports"]
    assert change_details(out)["tool"].iloc[0] == "ops-bot"


@pytest.mark.parametrize(
    ("tool", "message", "target", "version"),
    [
        # A deploy system the patterns do not know by name still deploys what it names.
        ("quicksilver", "deployed dns-resolver release 2019.07.02-1 to canary PoPs", "dns-resolver", "2019.07.02-1"),
        ("quicksilver", "deployed edge-lb 2021.10.04-2 to 14 PoPs", "edge-lb", "2021.10.04-2"),
        ("shipper", "deployed WAF managed rules release 2019-07-02.1 to all PoPs", "WAF", "2019-07-02.1"),
        ("deployer", "deployed search-indexer v2021.01.03 to production", "search-indexer", "v2021.01.03"),
    ],
)
def test_a_deploy_verb_names_its_target_whoever_logs_it(tool: str, message: str, target: str, version: str) -> None:
    filed = _filed(message, tool, level="info")
    assert (filed["service"], filed["change.version"], filed["change.tool"]) == (target, version, tool)


def test_an_application_server_deploying_its_web_application_keeps_its_service() -> None:
    filed = _filed("Deploying web application archive [/opt/tomcat/webapps/ROOT.war]", "tomcat", level="info")
    assert filed["service"] == "tomcat"
    assert "change.tool" not in filed
