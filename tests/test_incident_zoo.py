"""The incident zoo (tests/incident_zoo.py) built through the public library, against its truth.

Issue 15's acceptance thresholds: every phase within its tolerance; the root cause first in at least 10
of the 12 incidents and in the top 3 of all; detection from the incident's alert (whose labels name the
service differently from the logs); the breach's exposure; action items in every draft. The zoo itself
is checked first, independently of the analysis: deterministic, small, every truth citation is the line
it claims, every file read in the format it is written in, compressed sources inside the window read.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from citation_check import Corpus, problems_of, read_claims
from click.testing import CliRunner
from incident_zoo import (
    INCIDENTS,
    PHASES,
    Score,
    ZooIncident,
    analyze,
    build_incident,
    build_zoo,
    expected_format,
    loose_match,
    score,
    scoreboard,
)

from pmtimeline.cli import cli

NAMES = sorted(INCIDENTS)
#: Issue 15: the root cause first in at least this many of the 12 incidents (and in the top 3 of all).
FIRST_AT_LEAST = 10


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ZooIncident]:
    root = tmp_path_factory.mktemp("zoo")
    return {inc.name: inc for inc in build_zoo(root)}


class _Analyses:
    """Each incident analyzed once per module (a few seconds each), on first use."""

    def __init__(self, zoo: dict[str, ZooIncident]) -> None:
        self.zoo = zoo
        self._timelines: dict[str, Any] = {}

    def timeline(self, name: str) -> Any:
        if name not in self._timelines:
            self._timelines[name] = analyze(self.zoo[name])
        return self._timelines[name]

    def score(self, name: str) -> Score:
        return score(self.zoo[name], self.timeline(name))


@pytest.fixture(scope="module")
def analyses(zoo: dict[str, ZooIncident]) -> _Analyses:
    return _Analyses(zoo)


# ------------------------------------------------------------------------------------------------
# The zoo itself (fast; no analysis)
# ------------------------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8").splitlines()


def test_zoo_has_twelve_shapes_from_public_postmortems(zoo: dict[str, ZooIncident]) -> None:
    assert len(zoo) >= 12
    for inc in zoo.values():
        assert inc.truth.reference.startswith("https://"), inc.name
        assert inc.truth.mechanism, inc.name
        assert inc.truth.cause.evidence, inc.name


def test_zoo_is_deterministic(zoo: dict[str, ZooIncident], tmp_path: Path) -> None:
    for name in ("credential_stuffing_breach", "aws_s3_2017_capacity_command"):
        again = build_incident(name, tmp_path)
        first = zoo[name]
        files = sorted(p.relative_to(first.folder) for p in first.folder.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(again.folder) for p in again.folder.rglob("*") if p.is_file())
        for rel in files:
            assert (first.folder / rel).read_bytes() == (again.folder / rel).read_bytes(), rel
        assert again.truth.to_dict() == first.truth.to_dict()


def test_zoo_is_small(zoo: dict[str, ZooIncident]) -> None:
    for inc in zoo.values():
        total = sum(len(_lines(p)) for p in inc.folder.rglob("*") if p.is_file())
        assert 1000 < total < 6000, (inc.name, total)


def test_every_truth_citation_is_the_line_it_claims(zoo: dict[str, ZooIncident]) -> None:
    for inc in zoo.values():
        truth = inc.truth
        cited = [*truth.phase_evidence.values(), truth.cause.at]
        if truth.detection is not None:
            cited.append(truth.detection.fired)
        for cit in cited:
            line = _lines(inc.folder / cit.file)[cit.line - 1]
            assert line.startswith(cit.text) or cit.text in line, (inc.name, cit)
        assert truth.cause.evidence in truth.cause.at.text


@pytest.mark.parametrize("variant", [1, 2])
def test_held_out_wording_changes_only_the_trigger_lines(
    zoo: dict[str, ZooIncident], tmp_path: Path, variant: int
) -> None:
    """``variant=1`` and ``variant=2`` word each trigger otherwise (for ``--score --variant N``); the rest
    is the same zoo."""
    for inc in build_zoo(tmp_path, variant=variant):
        base = zoo[inc.name].truth
        assert inc.truth.cause.evidence in inc.truth.cause.at.text
        assert inc.truth.cause.evidence not in base.cause.at.text, inc.name
        assert (inc.truth.cause.at.file, inc.truth.cause.at.line) == (base.cause.at.file, base.cause.at.line)
        assert inc.truth.phases == base.phases, inc.name


def test_truth_phases_are_ordered_and_inside_the_window(zoo: dict[str, ZooIncident]) -> None:
    for inc in zoo.values():
        p = inc.truth.phases
        start, end = inc.truth.window
        assert all(t is None or start <= t < end for t in p.values()), inc.name
        onset, recovered = p["onset"], p["recovered"]
        assert onset is not None
        assert recovered is not None
        assert inc.truth.cause.at.time <= onset, inc.name  # a trigger comes first
        for later in ("detected", "mitigated"):
            t = p[later]
            assert t is None or onset <= t <= recovered + pd.Timedelta("1min"), (inc.name, later)
        resolved = p["resolved"]
        assert resolved is None or resolved >= onset


def test_alert_labels_name_services_differently_from_the_logs(zoo: dict[str, ZooIncident]) -> None:
    """The detecting alert's labels never spell the service as the logs do, but issue 15's loose rules
    (``payments`` matches ``payments-api``, any case; a ``kube_deployment:`` tag names the deployment) tie
    them to an affected service."""
    for inc in zoo.values():
        det = inc.truth.detection
        assert det is not None
        assert det.label_service, inc.name
        assert det.label_service not in inc.truth.affected, inc.name
        assert loose_match(det.label_service.rpartition(":")[2], inc.truth.affected), inc.name


def test_compressed_sources_predate_their_window(zoo: dict[str, ZooIncident]) -> None:
    """Rotated, compressed sources whose modification time is older than their content (issue 12's
    pruning must not skip them: see test_every_file_is_read_whole_in_its_format)."""
    compressed = [(inc, rel) for inc in zoo.values() for rel in inc.truth.compressed]
    assert len(compressed) >= 2
    for inc, rel in compressed:
        path = inc.folder / rel
        assert path.stat().st_mtime < inc.truth.window[0].timestamp(), rel
        assert _lines(path), rel


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_file_is_read_whole_in_its_format(analyses: _Analyses, name: str) -> None:
    """Each source in the format it is written in, no line rejected, none outside the window, and the
    gzip-compressed ones (older mtime than content) read whole."""
    inc = analyses.zoo[name]
    seen = {}
    for acc in analyses.timeline(name).accounting:
        rel = Path(acc.path or acc.name).relative_to(inc.folder).as_posix()
        seen[rel] = acc
    assert sorted(seen) == sorted(inc.truth.files)
    for rel, description in inc.truth.files.items():
        acc = seen[rel]
        assert acc.format == expected_format(description), (rel, acc.format)
        assert acc.skipped_reason is None, (rel, acc.skipped_reason)
        assert acc.rejected_total == 0, (rel, acc.rejected)
        assert acc.outside_window == 0, rel
        assert acc.events > 0, rel
        if rel in inc.truth.compressed:
            lines = len(_lines(inc.folder / rel))
            assert acc.lines_read == lines, (rel, acc.lines_read, lines)
            assert acc.events == lines, (rel, acc.events, lines)


# ------------------------------------------------------------------------------------------------
# The analysis against the truth (slow: every incident is built once per module)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_phases_within_tolerance(analyses: _Analyses, name: str) -> None:
    s = analyses.score(name)
    truth = analyses.zoo[name].truth
    wrong = {p: (truth.phases[p], s.phase_errors[p]) for p in PHASES if p in s.phase_ok and not s.phase_ok[p]}
    assert not wrong, f"{name}: phases off (truth, found - truth in s): {wrong}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_detection_comes_from_the_incident_alert(analyses: _Analyses, name: str) -> None:
    s = analyses.score(name)
    det = analyses.zoo[name].truth.detection
    assert det is not None
    found = analyses.timeline(name).incident.phase_evidence.get("detected", ())
    assert s.detection_ok, f"{name}: want {det.alert!r} ({det.file}, fired {det.fired.time}), found {found[:1]}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_root_cause_in_top_3(analyses: _Analyses, name: str) -> None:
    s = analyses.score(name)
    cause = analyses.zoo[name].truth.cause
    assert (s.cause_rank or 99) <= 3, (
        f"{name}: the trigger ({cause.services[0]}: {cause.evidence!r} at {cause.at.time}) ranks "
        f"{s.cause_rank}; candidates {s.candidates}"
    )


@pytest.mark.slow
def test_root_cause_first_in_ten_of_twelve(analyses: _Analyses) -> None:
    scores = [analyses.score(name) for name in NAMES]
    first = [s.name for s in scores if s.cause_rank == 1]
    assert len(first) >= FIRST_AT_LEAST, scoreboard(scores)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_mechanism_is_named(analyses: _Analyses, name: str) -> None:
    s = analyses.score(name)
    assert s.mechanism_named, f"{name}: none of {analyses.zoo[name].truth.mechanism} among the first candidates"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_citation_points_at_its_own_line(analyses: _Analyses, name: str) -> None:
    """Issue 15, item 6, beyond the sample: each phase's, candidate's and data operation's ``source:line``
    is a line that says what the evidence says (alert state changes included)."""
    incident = analyses.timeline(name).incident
    evidence = [
        *(e for ev in incident.phase_evidence.values() for e in ev),
        *(e for c in incident.root_cause_candidates for e in c.evidence),
        *incident.exposure.data_operations,
    ]
    files: dict[str, list[str]] = {}
    for ev in evidence:
        if ev.line is None:
            continue
        if ev.source not in files:
            files[ev.source] = _lines(Path(ev.source))
        line = files[ev.source][ev.line - 1]
        head = ev.message.split("\n", 1)[0][:60]
        assert head in line or json.dumps(head)[1:-1] in line, (ev.citation(), head, line[:200])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_unknown_is_not_zero(analyses: _Analyses, name: str) -> None:
    """Issue 15, item 5: without request logs the request counts are unknown (null), never 0; no draft
    writes "Users affected: 0"."""
    truth = analyses.zoo[name].truth
    timeline = analyses.timeline(name)
    metrics = timeline.incident.metrics
    if not any(expected_format(d).startswith("access_") for d in truth.files.values()):
        assert metrics.requests_total is None, metrics.requests_total
        assert metrics.requests_failed is None, metrics.requests_failed
    assert "Users affected: 0" not in timeline.postmortem()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_citation_of_the_draft_holds_what_it_says(analyses: _Analyses, name: str) -> None:
    """Issue 15, item 6, on formats unlike the sample's: each source:line of the draft holds the time,
    words, alert state or age the draft gives it (tests/citation_check.py states the checks)."""
    checks = read_claims(analyses.timeline(name).postmortem())
    window = analyses.zoo[name].truth.window
    problems = problems_of(checks, Corpus((window[0].to_pydatetime(), window[1].to_pydatetime())))
    assert checks.seen
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_breach_exposure(analyses: _Analyses) -> None:
    name = "credential_stuffing_breach"
    s = analyses.score(name)
    assert s.exposure_ok, f"{name}: {s.exposure_detail}"
    breach = analyses.zoo[name].truth.breach
    assert breach is not None
    # The data operations cited are the accounts service's, during the attack (customers' own exports
    # before it are not).
    onset, mitigated = analyses.zoo[name].truth.phases["onset"], analyses.zoo[name].truth.phases["mitigated"]
    assert onset is not None
    assert mitigated is not None
    for op in analyses.timeline(name).incident.exposure.data_operations:
        assert "accounts-api" in op.source, op
        assert onset <= op.time <= mitigated, op


@pytest.mark.slow
def test_no_breach_exposure_where_there_is_none(analyses: _Analyses) -> None:
    for name in NAMES:
        if analyses.zoo[name].truth.breach is None:
            exposure = analyses.timeline(name).incident.exposure
            assert not exposure.actors, (name, exposure.actors[:3])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_draft_carries_action_items(analyses: _Analyses, name: str) -> None:
    draft = analyses.timeline(name).postmortem()
    section = draft[draft.index("## Action items") :]
    section = section[: section.find("\n## ", 5) if "\n## " in section[5:] else None]
    rows = [ln for ln in section.splitlines() if ln.startswith("|") and not set(ln) <= set("|-: ")][1:]
    assert rows, f"{name}: no action item\n{section}"
    for row in rows:
        fact = row.rstrip().rstrip("|").rsplit("|", 1)[-1]
        # The fact it comes from, with that fact's evidence: at least one `source:line`.
        assert re.search(r"`[^`]+:\d+`", fact), f"{name}: an action item without the fact it comes from: {row}"


@pytest.fixture(scope="module")
def reworded(tmp_path_factory: pytest.TempPathFactory) -> _Analyses:
    """The zoo with its triggers worded as variant 2 (:data:`incident_zoo.PARAPHRASES_2`): phrasings
    written without looking at what the analysis matches, so recognition must rest on more than words."""
    root = tmp_path_factory.mktemp("zoo-variant-2")
    return _Analyses({inc.name: inc for inc in build_zoo(root, variant=2)})


@pytest.mark.slow
def test_root_cause_holds_on_held_out_wording(reworded: _Analyses) -> None:
    """Issue 15's thresholds hold when every trigger is worded otherwise: first in at least 10 of 12, in
    the top 3 of all."""
    scores = [reworded.score(name) for name in NAMES]
    first = [s.name for s in scores if s.cause_rank == 1]
    top3 = [s.name for s in scores if s.cause_rank is not None and s.cause_rank <= 3]
    assert len(first) >= FIRST_AT_LEAST, scoreboard(scores)
    assert len(top3) == len(NAMES), scoreboard(scores)


@pytest.mark.slow
def test_cli_builds_a_zoo_incident(zoo: dict[str, ZooIncident], tmp_path: Path) -> None:
    inc = zoo["bad_deploy_pool_exhaustion"]
    start, end = (t.isoformat() for t in inc.truth.window)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["build", str(inc.folder), "--start", start, "--end", end, "-o", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert (out / "postmortem.md").is_file()
    data = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    onset, want = pd.Timestamp(data["phases"]["onset"]), inc.truth.phases["onset"]
    assert want is not None
    assert abs(onset - want) <= inc.truth.tolerance["onset"]
    read = {Path(s["path"]).name for s in data["sources"] if s.get("path")}
    assert {Path(f).name for f in inc.truth.files} <= read
