"""The bundled sample incident (sample_logs/) as data: reproducible, consistent with its README, well formed.

These tests read the files with their own small parsers (regexes and the standard library), not with
pmtimeline, so the truth is checked independently of the code under test elsewhere.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, SAMPLE_LOGS

GENERATOR = REPO / "bench" / "make_sample_incident.py"
TRUTH: dict[str, Any] = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

#: One regex per text file for the head line of an event, and one for continuation lines (or None).
LINE_PATTERNS: dict[str, tuple[str, str | None]] = {
    "edge/nginx_access.log": (
        r'^\d{1,3}(\.\d{1,3}){3} - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0100\] "(GET|POST) \S+ HTTP/1\.1" '
        r'\d{3} \d+ "[^"]*" "[^"]+" \d+\.\d{3} [0-9a-f]{32}$',
        None,
    ),
    "ledger/ledger.log": (
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +(INFO|WARN|ERROR) \[ledger-service,([0-9a-f]{32})?,([0-9a-f]{16})?\] "
        r"1 --- \[[ \S]{15}\] \S+ +: .+$",
        r"^(\t(at |\.\.\. )|Caused by: |[a-z]+(\.[a-z]+)+\.[A-Za-z]+(Exception|Error): )",
    ),
    "workers/settlement-worker.log": (
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - settlement-worker - (INFO|WARNING|ERROR) - .+$",
        r"^(Traceback \(most recent call last\):|  File \"[^\"]+\", line \d+, in \w+|    \S.*|\w+(\.\w+)*: .+)$",
    ),
    "hosts/syslog": (r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [a-z0-9-]+ [\w-]+(\[\d+\])?: .+$", None),
    "hosts/syslog.1.gz": (r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [a-z0-9-]+ [\w-]+(\[\d+\])?: .+$", None),
    "deploy/argocd.logfmt": (
        r'^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=info msg="[^"]+" app=[a-z-]+( [a-z-]+=\S+)*$',
        None,
    ),
}


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], check=True, capture_output=True)
    return out


def error_times() -> list[tuple[dt.datetime, str]]:
    """(UTC time, file) of every error event in the log files, found with the issue's definition."""
    found: list[tuple[dt.datetime, str]] = []
    for line in read_text(SAMPLE_LOGS / "edge/nginx_access.log").splitlines():
        match = re.search(r'\[([^\]]+)\] "[^"]*" (\d{3}) ', line)
        assert match, line
        if int(match[2]) >= 500:
            found.append((dt.datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z"), "edge"))
    for line in read_text(SAMPLE_LOGS / "payments/payments-api.jsonl").splitlines():
        doc = json.loads(line)
        if doc["log.level"] in ("ERROR", "FATAL") or doc.get("http.response.status_code", 0) >= 500:
            found.append((utc(doc["@timestamp"]), "payments"))
    for line in read_text(SAMPLE_LOGS / "ledger/ledger.log").splitlines():
        if re.match(r"^\S+ \S+ ERROR ", line):
            local = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=AMSTERDAM)
            found.append((local.astimezone(dt.UTC), "ledger"))
    for line in read_text(SAMPLE_LOGS / "workers/settlement-worker.log").splitlines():
        if " - ERROR - " in line:
            found.append((dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.UTC), "worker"))
    return sorted(found)


def test_regenerating_reproduces_the_committed_files(regenerated: Path) -> None:
    committed = sorted(p.relative_to(SAMPLE_LOGS) for p in SAMPLE_LOGS.rglob("*") if p.is_file())
    written = sorted(p.relative_to(regenerated) for p in regenerated.rglob("*") if p.is_file())
    assert written == committed
    for relative in committed:
        if relative.suffix == ".gz":
            # The gzip header is fixed (mtime 0, no name); compare the content, since zlib builds may differ.
            assert gzip.decompress((regenerated / relative).read_bytes()) == gzip.decompress(
                (SAMPLE_LOGS / relative).read_bytes()
            ), relative
        else:
            assert (regenerated / relative).read_bytes() == (SAMPLE_LOGS / relative).read_bytes(), relative


def test_sample_stays_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE_LOGS.rglob("*") if p.is_file())
    assert total < 3_000_000


def test_line_counts_in_truth_match_the_files() -> None:
    for relative, entry in TRUTH["files"].items():
        text = read_text(SAMPLE_LOGS / relative)
        assert text.endswith("\n")
        assert text.count("\n") == entry["lines"], relative
        assert entry["lines"] > 0
    assert TRUTH["total_lines"] == sum(entry["lines"] for entry in TRUTH["files"].values())


@pytest.mark.parametrize("relative", sorted(LINE_PATTERNS))
def test_every_line_has_the_shape_of_its_format(relative: str) -> None:
    head, continuation = LINE_PATTERNS[relative]
    heads = continued = 0
    for number, line in enumerate(read_text(SAMPLE_LOGS / relative).splitlines(), start=1):
        if re.match(head, line):
            heads += 1
        else:
            assert continuation is not None, f"{relative}:{number}: {line!r}"
            assert heads > 0, f"{relative}:{number}: continuation before any event"
            assert re.match(continuation, line), f"{relative}:{number}: {line!r}"
            continued += 1
    assert heads == TRUTH["files"][relative]["records"]
    assert continued == TRUTH["files"][relative]["continuation_lines"]


def test_payments_json_is_ecs() -> None:
    lines = read_text(SAMPLE_LOGS / "payments/payments-api.jsonl").splitlines()
    docs = [json.loads(line) for line in lines]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["@timestamp"]) for d in docs)
    assert {d["service.name"] for d in docs} == {"payments-api"}
    assert {d["log.level"] for d in docs} == {"INFO", "WARN", "ERROR"}
    requests = [d for d in docs if "http.response.status_code" in d]
    assert all(d["trace.id"] == d["http.request.id"] and isinstance(d["event.duration"], int) for d in requests)
    assert any("\n\tat com.zaxxer.hikari" in d.get("error.stack_trace", "") for d in docs)
    messages = [d["message"] for d in docs]
    assert "Deploying payments-api version 2.14.0" in messages
    assert "Rolling back payments-api to 2.13.4" in messages
    assert any(m.startswith("Started payments-api v2.14.0") for m in messages)


def test_alert_files_hold_the_alerts_of_the_story() -> None:
    payloads = [json.loads(line) for line in read_text(SAMPLE_LOGS / "alerts/alertmanager.json").splitlines()]
    assert all(p["version"] == "4" for p in payloads)
    high = [p for p in payloads if p["alerts"][0]["labels"]["alertname"] == "HighErrorRate"]
    firing = [p for p in high if p["status"] == "firing"]
    assert len(firing) == 2
    assert firing[0] == firing[1], "the repeated notification is an exact duplicate"
    assert firing[0]["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    (resolved,) = (p for p in high if p["status"] == "resolved")
    assert utc(firing[0]["alerts"][0]["startsAt"]) == utc(TRUTH["phases"]["detected"])
    assert utc(resolved["alerts"][0]["endsAt"]) == utc(TRUTH["phases"]["resolved"])
    pages = json.loads(read_text(SAMPLE_LOGS / "alerts/pagerduty.json"))
    assert [p["event"]["event_type"] for p in pages] == [
        "incident.triggered",
        "incident.acknowledged",
        "incident.resolved",
    ]
    assert all(p["event"]["data"]["service"]["summary"] == "payments-api" for p in pages)


def test_earlier_alert_fires_and_resolves_before_onset() -> None:
    payloads = [json.loads(line) for line in read_text(SAMPLE_LOGS / "alerts/alertmanager.json").splitlines()]
    disk = [p["alerts"][0] for p in payloads if p["alerts"][0]["labels"]["alertname"] == "DiskSpaceLow"]
    assert {a["status"] for a in disk} == {"firing", "resolved"}
    ends = [utc(a["endsAt"]) for a in disk if a["status"] == "resolved"]
    assert ends
    assert max(ends) < utc(TRUTH["phases"]["onset"])
    assert utc(TRUTH["noise"]["earlier_alert"]["resolved"]) == max(ends)


def test_phases_follow_from_the_error_events() -> None:
    """Onset/recovered are the first/last error of the burst, with quiet before and after; noise is rare."""
    phases = {name: utc(value) for name, value in TRUTH["phases"].items()}
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset < phases["detected"] < phases["mitigated"] < recovered < phases["resolved"]
    times = [t for t, _ in error_times()]
    assert onset in times
    assert recovered in times
    quiet = dt.timedelta(minutes=10)
    assert not [t for t in times if onset - quiet <= t < onset]
    assert not [t for t in times if recovered < t <= recovered + quiet]
    outside = [t for t in times if not onset <= t <= recovered]
    assert len(outside) < (120 - (recovered - onset).total_seconds() / 60) / 5, "background: < 1 error per 5 min"
    start, end = utc(TRUTH["window"]["start"]), utc(TRUTH["window"]["end"])
    assert start + (end - start) / 4 < onset < start + (end - start) * 3 / 4, "onset mid-window"


def test_edge_counts_and_users_recomputed_from_the_files() -> None:
    onset, recovered = utc(TRUTH["phases"]["onset"]), utc(TRUTH["phases"]["recovered"])
    total = failed = 0
    for line in read_text(SAMPLE_LOGS / "edge/nginx_access.log").splitlines():
        match = re.search(r'\[([^\]]+)\] "[^"]*" (\d{3}) ', line)
        assert match
        if onset <= dt.datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z") <= recovered:
            total += 1
            failed += int(match[2]) >= 500
    users = set()
    for line in read_text(SAMPLE_LOGS / "payments/payments-api.jsonl").splitlines():
        doc = json.loads(line)
        failing = doc["log.level"] == "ERROR" or doc.get("http.response.status_code", 0) >= 500
        if failing and "user.id" in doc and onset <= utc(doc["@timestamp"]) <= recovered:
            users.add(doc["user.id"])
    metrics = TRUTH["metrics"]
    assert (metrics["requests_total"], metrics["requests_failed"]) == (total, failed)
    assert metrics["affected_users"] == len(users)
    assert metrics["error_events"] == sum(onset <= t <= recovered for t, _ in error_times())
    for name in ("detected", "mitigated", "recovered", "resolved"):
        key = {"detected": "detect", "mitigated": "mitigate", "recovered": "recover", "resolved": "resolve"}[name]
        expected = (utc(TRUTH["phases"][name]) - onset).total_seconds()
        assert metrics[f"time_to_{key}_s"] == pytest.approx(expected, abs=1e-3)


def test_alert_state_changes_during_the_impact() -> None:
    onset, recovered = utc(TRUTH["phases"]["onset"]), utc(TRUTH["phases"]["recovered"])
    changes = set()
    for line in read_text(SAMPLE_LOGS / "alerts/alertmanager.json").splitlines():
        for alert in json.loads(line)["alerts"]:
            at = alert["startsAt"] if alert["status"] == "firing" else alert["endsAt"]
            changes.add((alert["fingerprint"], alert["status"], utc(at)))  # a repeat is the same change
    for page in json.loads(read_text(SAMPLE_LOGS / "alerts/pagerduty.json")):
        changes.add((page["event"]["data"]["id"], page["event"]["event_type"], utc(page["event"]["occurred_at"])))
    inside = [change for change in changes if onset <= change[2] <= recovered]
    assert TRUTH["metrics"]["alert_events"] == len(inside)


def test_phase_evidence_points_at_real_lines() -> None:
    for name, evidence in TRUTH["phase_evidence"].items():
        lines = read_text(SAMPLE_LOGS / evidence["file"]).splitlines()
        line = lines[evidence["line"] - 1]
        assert evidence["message"][:60] in line or evidence["file"].startswith("alerts/"), name
    for evidence in TRUTH["root_cause"]["evidence"]:
        line = read_text(SAMPLE_LOGS / evidence["file"]).splitlines()[evidence["line"] - 1]
        assert "2.14.0" in line
        assert "deploying" in line.lower()
    assert utc(TRUTH["root_cause"]["time"]) < utc(TRUTH["phases"]["onset"])


def test_one_failing_request_can_be_followed_across_services() -> None:
    ledger = read_text(SAMPLE_LOGS / "ledger/ledger.log")
    payments = read_text(SAMPLE_LOGS / "payments/payments-api.jsonl")
    failing_ids = re.findall(
        r'" 500 \d+ "[^"]*" "[^"]+" \S+ ([0-9a-f]{32})$', read_text(SAMPLE_LOGS / "edge/nginx_access.log"), re.M
    )
    assert failing_ids
    followed = [rid for rid in failing_ids if f'"trace.id":"{rid}"' in payments and f"[ledger-service,{rid}," in ledger]
    assert followed == failing_ids


def test_values_that_must_be_redacted_are_present() -> None:
    every = "".join(read_text(p) for p in SAMPLE_LOGS.rglob("*") if p.is_file() and p.name not in ("README.md",))
    assert "4111 1111 1111 1111" in every
    assert "payments:hunter2@db-primary" in every
    assert re.search(r"Authorization: Bearer eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+", every)
    assert re.search(r"\b[a-z.]+@example\.com\b", every)
    assert not re.search(r"\bcust-\d{5}@", every), "users are ids, not real addresses"


def _readme_table(text: str, header: str) -> dict[str, str]:
    """First cell -> second cell of the Markdown table whose header row starts with ``header``."""
    block = text[text.index(header) :].split("\n\n", 1)[0]
    rows = [row.strip("|").split("|") for row in block.splitlines()[2:]]
    return {cells[0].strip(): cells[1].strip() for cells in rows}


def test_readme_states_the_truth() -> None:
    text = (SAMPLE_LOGS / "README.md").read_text(encoding="utf-8")
    phases = _readme_table(text, "| phase |")
    assert {name: value.strip("`") for name, value in phases.items()} == TRUTH["phases"]
    metrics = _readme_table(text, "| metric |")
    expected = TRUTH["metrics"]
    assert metrics["requests_total (edge, [onset, recovered])"] == str(expected["requests_total"])
    assert metrics["requests_failed (status >= 500)"] == str(expected["requests_failed"])
    assert metrics["affected_users (`user.id` on error events)"] == str(expected["affected_users"])
    assert metrics["affected_services"] == ", ".join(expected["affected_services"])
    assert metrics["error_events in [onset, recovered]"].startswith(f"{expected['error_events']} ")
    assert metrics["time to detect"].startswith(f"{expected['time_to_detect_s']} s")
    assert metrics["time to recover (impact duration)"].startswith(f"{expected['time_to_recover_s']} s")
    assert TRUTH["root_cause"]["time"] in metrics["root cause"]
    files = _readme_table(text, "| file |")
    assert set(files) == {f"`{path}`" for path in TRUTH["files"]}
    for path, entry in TRUTH["files"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{path}` |"))
        assert row.rstrip(" |").endswith(str(entry["lines"]))
    assert "--source-tz '*ledger.log=Europe/Amsterdam'" in text


def test_ledger_writes_amsterdam_wall_clock_time() -> None:
    """A failed posting is logged by the ledger 30 s after the edge's 500, in local time (UTC+1)."""
    edge = read_text(SAMPLE_LOGS / "edge/nginx_access.log")
    ledger = read_text(SAMPLE_LOGS / "ledger/ledger.log")
    match = re.search(r'\[([^\]]+)\] "POST [^"]*" 500 \d+ "[^"]*" "[^"]+" \S+ ([0-9a-f]{32})$', edge, re.M)
    assert match
    edge_time = dt.datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z")
    ledger_line = re.search(rf"^(\S+ \S+) ERROR \[ledger-service,{match[2]},", ledger, re.M)
    assert ledger_line
    local = dt.datetime.strptime(ledger_line[1], "%Y-%m-%d %H:%M:%S.%f")
    assert local.replace(tzinfo=AMSTERDAM).utcoffset() == dt.timedelta(hours=1)
    lag = local.replace(tzinfo=AMSTERDAM) - edge_time
    assert dt.timedelta(seconds=20) < lag < dt.timedelta(seconds=40)
