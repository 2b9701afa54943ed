"""Action items: each from one fact of the analysis, typed, prioritized, citing that fact's evidence; no filler."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from incident_sample import breach_exposure, sample_incident, sample_intervals, ts

from pmtimeline.action_items import derive_action_items
from pmtimeline.alert_intervals import alert_intervals, empty_intervals
from pmtimeline.analysis import apply_overrides
from pmtimeline.cli import cli
from pmtimeline.config import PHASES, TimelineConfig
from pmtimeline.escaping import markdown_text
from pmtimeline.incident import ACTION_TYPES, Evidence, Incident, Mechanism, RootCauseCandidate
from pmtimeline.postmortem import render_postmortem
from pmtimeline.schema import empty_events

ONSET = ts("10:00:30")


def evidence(time: str, source: str, line: int, message: str) -> Evidence:
    return Evidence(ts(time), source, line, message)


def bare(**changes: object) -> Incident:
    """An incident with an onset and recovery only: nothing else to derive an item from."""
    base = Incident(
        title="t",
        window_start=ts("09:00:00"),
        window_end=ts("11:00:00"),
        phases={p: None for p in PHASES} | {"onset": ONSET, "recovered": ts("10:04:00")},
        phase_evidence={"onset": (evidence("10:00:30", "app.log", 7, "boom"),)},
    )
    return dataclasses.replace(base, **changes)


def test_no_fact_no_item() -> None:
    # Quick detection by an alert, no mechanism, no change, no breach, complete data: nothing to write.
    incident = bare(
        phases={p: None for p in PHASES} | {"onset": ONSET, "detected": ts("10:02:00"), "recovered": ts("10:04:00")}
    )
    fired = sample_intervals().assign(fired=[ts("10:01:00"), ts("10:30:00")])
    assert derive_action_items(incident, fired) == ()
    # Without an onset there is no incident, whatever else is known.
    assert derive_action_items(bare(phases={p: None for p in PHASES}), empty_intervals()) == ()


def test_every_item_is_typed_prioritized_and_cites_its_fact() -> None:
    items = derive_action_items(sample_incident(exposure=breach_exposure()), sample_intervals())
    assert items
    assert all(a.type in ACTION_TYPES for a in items)
    assert [a.priority for a in items] == sorted(a.priority for a in items)
    assert all(a.owner == "TBD" and a.fact for a in items)
    # Facts about data quality cite the Data quality section; every other item cites log lines.
    assert all(a.evidence for a in items if a.type != "process" or "data operation" in a.fact)


def test_a_detection_gap_asks_for_an_alert_on_what_moved_first() -> None:
    incident = bare()
    (item,) = derive_action_items(incident, empty_intervals())
    assert (item.type, item.priority) == ("detect", "P1")
    assert item.fact == "no alert fired during the incident"
    assert item.evidence == incident.phase_evidence["onset"]
    # Alerts unknown: no gap is claimed.
    assert derive_action_items(incident) == ()
    # Slow detection by an alert: a P2 with both ends cited.
    slow = bare(
        phases={p: None for p in PHASES} | {"onset": ONSET, "detected": ts("10:09:00")},
        phase_evidence={
            "onset": (evidence("10:00:30", "app.log", 7, "boom"),),
            "detected": (evidence("10:09:00", "alerts.json", 3, "HighErrorRate"),),
        },
    )
    fired = sample_intervals().assign(fired=[ts("10:09:00"), ts("10:30:00")])
    (item,) = derive_action_items(slow, fired)
    assert (item.type, item.priority) == ("detect", "P2")
    assert item.fact == "detection took 8 min 30 s after onset"
    assert [e.citation() for e in item.evidence] == ["app.log:7", "alerts.json:3"]


def test_slow_mitigation_by_rollback_asks_for_rollback_automation() -> None:
    phases = {p: None for p in PHASES} | {"onset": ONSET, "detected": ts("10:02:00"), "mitigated": ts("10:30:00")}
    rollback = evidence("10:30:00", "deploy.log", 88, "rollback to v2.3.0 started")
    incident = bare(phases=phases, phase_evidence={"mitigated": (rollback,)})
    fired = sample_intervals().assign(fired=[ts("10:02:00"), ts("10:40:00")])
    (item,) = derive_action_items(incident, fired)
    assert (item.type, item.priority) == ("mitigate", "P2")
    assert "rollback" in item.action.lower()
    assert item.fact == "the first mitigating change came 28 min after detection (a rollback)"
    assert item.evidence == (rollback,)
    # Another mitigation: a runbook.
    restart = dataclasses.replace(rollback, message="restarted the pods")
    (item,) = derive_action_items(dataclasses.replace(incident, phase_evidence={"mitigated": (restart,)}), fired)
    assert "runbook" in item.action


def test_the_mechanism_gets_its_specific_guard() -> None:
    line = evidence("10:01:00", "db.log", 70, "FATAL: sorry, too many clients already")
    guards = {
        "db_connections_exhausted": "max_connections",
        "file_descriptors": "file-descriptor limit",
        "certificate_expired": "certificate expiry",
        "quota_exceeded": "quota",
    }
    for signature, words in guards.items():
        mechanism = Mechanism(signature, "label", 305, 0, line)
        items = derive_action_items(bare(mechanism=mechanism))
        (item,) = items
        assert words in item.action
        assert item.evidence == (line,)
        assert "305 error events" in item.fact


def test_a_change_without_progressive_rollout_asks_for_a_canary() -> None:
    deploy = evidence("09:58:12", "deploy.log", 41, "deploy payments v2.3.1 started")
    candidate = RootCauseCandidate(1, "change", deploy.time, "payments", "deploy", 0.99, (deploy,), trigger="deploy")
    (item,) = derive_action_items(bare(root_cause_candidates=(candidate,)))
    assert (item.type, item.priority) == ("prevent", "P1")
    assert "canary" in item.action
    assert item.evidence == (deploy,)
    # A canary already in the change's lines, a restart, or a change ruled out as noise: no item.
    canary = dataclasses.replace(deploy, message="canary step 1/4: 10% of traffic")
    for other in (
        dataclasses.replace(candidate, evidence=(canary,)),
        dataclasses.replace(candidate, trigger="restart"),
        dataclasses.replace(candidate, noise=True),
    ):
        assert derive_action_items(bare(root_cause_candidates=(other,))) == ()


def test_a_flapping_alert_asks_for_tuning() -> None:
    times = [ts("09:10:00"), ts("09:20:00"), ts("09:30:00")]
    flapping = pd.concat([sample_intervals().iloc[[0]]] * 3, ignore_index=True).assign(fired=times)
    items = [a for a in derive_action_items(bare(), flapping) if a.type == "detect" and "Tune" in a.action]
    (item,) = items
    assert item.priority == "P3"
    assert "fired 3 times" in item.fact
    assert [e.time for e in item.evidence] == times


def test_a_breach_asks_for_credentials_and_access_follow_ups() -> None:
    exposure = breach_exposure()
    items = derive_action_items(bare(exposure=exposure))
    actions = " ".join(a.action for a in items)
    assert "Reset the credentials" in actions
    assert "Review what the accounts touched" in actions
    assert "lock out repeated failed logins" in actions
    assert all(a.evidence == exposure.data_operations[:3] for a in items)
    assert any(f"{sum(a.failures for a in exposure.actors):,} failed attempts" in a.fact for a in items)


def test_a_surge_is_acted_on_only_as_the_trigger() -> None:
    request = evidence("10:01:00", "edge.log", 5, "GET /")
    surge = RootCauseCandidate(
        1, "external", request.time, None, "traffic surge", 0.8, (request,), trigger="traffic_surge"
    )
    (item,) = derive_action_items(bare(root_cause_candidates=(surge,)))
    assert (item.type, item.priority, item.evidence) == ("prevent", "P2", (request,))
    # Behind an attack (the attack's own load), or without a line to cite: no item.
    attack = dataclasses.replace(surge, trigger="attack", summary="attack", evidence=())
    behind = (attack, dataclasses.replace(surge, rank=2))
    assert not [a for a in derive_action_items(bare(root_cause_candidates=behind)) if "Load-test" in a.action]
    assert derive_action_items(bare(root_cause_candidates=(dataclasses.replace(surge, evidence=()),))) == ()


def test_a_destructive_command_asks_for_a_guard_and_an_operation_for_a_canary() -> None:
    """Issue 15: the GitLab shape (rm -rf through sudo) gets a guard on destructive commands citing the
    command; an operator's action pushed everywhere (an ``operation``) gets the progressive rollout item."""
    command = evidence("10:00:01", "db/syslog", 71, "ops : USER=root ; COMMAND=/bin/rm -rf /srv/pgdata")
    summary = "destructive in postgres 3 s before onset (logged by sudo)"
    candidate = RootCauseCandidate(1, "change", command.time, "postgres", summary, 0.99, (command,))
    (item,) = derive_action_items(bare(root_cause_candidates=(dataclasses.replace(candidate, trigger="destructive"),)))
    assert (item.type, item.priority, item.evidence) == ("prevent", "P1", (command,))
    assert "Guard destructive commands" in item.action
    assert item.fact == f"the likeliest trigger is a destructive command ({summary})"
    assert "rm -rf" not in item.fact  # the command's words stay in its cited line
    push = evidence("10:00:01", "config-api/api.jsonl", 75, "customer c-1 activated version 42 of service svc-9")
    operation = RootCauseCandidate(1, "change", push.time, "cache", "operation", 0.9, (push,), trigger="operation")
    (item,) = derive_action_items(bare(root_cause_candidates=(operation,)))
    assert "canary" in item.action
    # Noise is no fact to act on.
    noise = dataclasses.replace(candidate, trigger="destructive", noise=True)
    assert derive_action_items(bare(root_cause_candidates=(noise,))) == ()


def _app_log(path: Path) -> None:
    """An hour of a service's steady lines with ten minutes of connection errors in the middle: an
    incident no alert saw (the analysis derives a detection item from that fact)."""
    start = pd.Timestamp("2024-05-02 14:00:00")
    lines = []
    for second in range(0, 3600, 5):
        at = start + pd.Timedelta(seconds=second)
        lines.append(f"{at:%Y-%m-%d %H:%M:%S},000 - orders - INFO - order {second} placed")
        if 1800 <= second < 2400:
            for k in range(3):
                lines.append(f"{at:%Y-%m-%d %H:%M:%S},{k + 1:03d} - orders - ERROR - could not reach stock-db ({k})")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _draft_items(draft: str) -> list[str]:
    """The Action column of the draft's action-item table."""
    section = draft.split("## Action items", 1)[1].split("\n## ", 1)[0]
    return [row.split(" | ")[2] for row in section.splitlines() if re.match(r"\| P\d ", row)]


def test_the_draft_lists_exactly_the_items_of_incident_json_through_build_and_report(tmp_path: Path) -> None:
    _app_log(tmp_path / "orders.log")
    out = tmp_path / "out"
    built = CliRunner().invoke(cli, ["build", str(tmp_path / "orders.log"), "-o", str(out), "--no-images"])
    assert built.exit_code == 0, built.output
    for step in ("build", "report"):
        if step == "report":
            again = CliRunner().invoke(cli, ["report", str(out), "--no-images"])
            assert again.exit_code == 0, again.output
        items = json.loads((out / "incident.json").read_text(encoding="utf-8"))["action_items"]
        assert items, "an incident no alert saw: at least the detection item"
        draft = (out / "postmortem.md").read_text(encoding="utf-8")
        assert _draft_items(draft) == [markdown_text(a["action"], 300).replace("|", "\\|") for a in items], step


def test_the_draft_derives_items_only_for_an_incident_that_has_none_derived() -> None:
    """``action_items`` () means derived, none; None means not derived (an incident made by hand, an
    older incident.json): only then does the draft derive them itself. An incident whose phases were
    moved without the aggregates has no alert intervals, so its alert-based items are not derived;
    the draft, which has the alerts, must not add them back."""
    config = TimelineConfig()
    notable = empty_events()
    gap = derive_action_items(bare(), alert_intervals(notable))
    assert [a.fact for a in gap] == ["no alert fired during the incident"]
    moved = apply_overrides(bare(), {"recovered": ts("10:05:00")})
    assert moved.action_items == ()
    intervals = alert_intervals(notable)
    draft = render_postmortem(moved, notable, config, intervals=intervals)
    assert _draft_items(draft) == []
    assert "The evidence suggests no action item by itself" in draft
    assert _draft_items(render_postmortem(bare(), notable, config, intervals=intervals)) == [gap[0].action]


def test_not_derived_and_none_survive_incident_json() -> None:
    for items in (None, ()):
        incident = bare(action_items=items)
        assert Incident.from_dict(json.loads(json.dumps(incident.to_dict()))).action_items == items
