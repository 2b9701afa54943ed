"""Every ``source:line`` of the sample's postmortem draft holds what the draft says of it.

The sample is built once through the CLI and its draft read with :mod:`citation_check` (the rules are
stated there), which reads the cited files with its own small parsers, not with pmtimeline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from citation_check import Corpus, problems_of, read_claims
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from pmtimeline.cli import cli

TRUTH: dict[str, Any] = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
ZONES: list[tuple[str, str]] = [(glob, zone) for glob, zone in TRUTH["source_tz"]]
WINDOW = tuple(dt.datetime.fromisoformat(TRUTH["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
SAMPLE = Corpus((WINDOW[0], WINDOW[1]), tuple(ZONES))


@pytest.fixture(scope="module")
def draft(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("citations") / "out"
    zones = [f"--source-tz={glob}={zone}" for glob, zone in ZONES]
    result = CliRunner().invoke(
        cli, ["build", str(SAMPLE_LOGS), *zones, "-o", str(out), "--no-images"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return (out / "postmortem.md").read_text(encoding="utf-8")


def _show(cite: tuple[str, int]) -> str:
    return f"{Path(cite[0]).relative_to(SAMPLE_LOGS.parent)}:{cite[1]}"


def test_every_citation_of_the_draft_holds_what_the_draft_says(draft: str) -> None:
    checks = read_claims(draft)
    assert len(checks.seen) >= 15, "the sample's draft cites its evidence"
    problems = problems_of(checks, SAMPLE)
    assert not problems, "\n".join(problems)


def test_alert_state_changes_cite_the_payload_that_reported_them(draft: str) -> None:
    """The sample's alert rows: the acknowledgement and resolution of each alert cite their own
    notifications (they were once cited at the line where the alert fired)."""
    checks = read_claims(draft)
    cited = {
        (name, state): sorted(_show(c) for c, claims in checks.alerts.items() if (name, state) in claims)
        for claims in checks.alerts.values()
        for name, state in claims
    }
    assert cited[("HighErrorRate", "fired")] == ["sample_logs/alerts/alertmanager.json:3"]
    assert cited[("HighErrorRate", "resolved")] == ["sample_logs/alerts/alertmanager.json:5"]
    pagerduty = "[FIRING:1] HighErrorRate payments-api (critical)"
    assert cited[(pagerduty, "fired")] == ["sample_logs/alerts/pagerduty.json:2"]
    assert cited[(pagerduty, "acknowledged")] == ["sample_logs/alerts/pagerduty.json:60"]
    assert cited[(pagerduty, "resolved")] == ["sample_logs/alerts/pagerduty.json:122"]
    assert [_show(c) for c in checks.phases["resolved"]] == ["sample_logs/alerts/alertmanager.json:5"]


def test_each_phase_cites_the_line_the_truth_names(draft: str) -> None:
    """truth.json names the line that shows each phase (the resolution: the notification that
    resolved the detecting alert); the timeline's phase rows cite it first."""
    phases = read_claims(draft).phases
    for phase, truth in TRUTH["phase_evidence"].items():
        assert phases[phase][0] == (str(SAMPLE_LOGS / truth["file"]), truth["line"]), phase


@pytest.mark.parametrize(
    ("right", "wrong", "expected"),
    [
        # the old defect: an acknowledgement and a resolution cited where the alert fired
        ("pagerduty.json:60`", "pagerduty.json:2`", "pagerduty.json:2: cited for the alert's acknowledged state"),
        ("alertmanager.json:5`", "alertmanager.json:3`", "alertmanager.json:3: cited for 09:23:32"),
        # the onset's evidence one line off: another request, a second later
        ("nginx_access.log:1417`", "nginx_access.log:1418`", "nginx_access.log:1418: cited for 08:51:12"),
        # the recovery's evidence on its stack trace's first line, which quotes nothing of it
        ("ledger.log:1632`", "ledger.log:1633`", "ledger.log:1633: inside the record of line 1632"),
        # the deploy's own line one off: the same kind of line, a second earlier
        ("payments-api.jsonl:681`", "payments-api.jsonl:680`", "payments-api.jsonl:680: cited for 08:49:31"),
    ],
)
def test_the_checks_catch_a_wrong_line(draft: str, right: str, wrong: str, expected: str) -> None:
    """The checks are not vacuous: the sample's draft with one citation moved fails them."""
    assert right in draft
    problems = problems_of(read_claims(draft.replace(right, wrong)), SAMPLE)
    assert any(expected in p for p in problems), problems
