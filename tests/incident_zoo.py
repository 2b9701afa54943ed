"""The incident zoo: incidents reconstructed from public postmortems, written as log files with their truth.

Not a test module: ``tests/test_incident_zoo.py`` imports it, and it runs as a script::

    python tests/incident_zoo.py OUTDIR        # write every incident to OUTDIR/<name>/logs/ and its truth.json
    python tests/incident_zoo.py --score       # build each one with pmtimeline and print the scoreboard
    python tests/incident_zoo.py --score --reseed 1    # the same shapes with other random noise
    python tests/incident_zoo.py --score --variant 1   # held out: every trigger worded otherwise
    python tests/incident_zoo.py --score --variant 2   # held out again: a second, freer wording

Each incident is the *shape* of a published outage (see ``REFERENCE`` of each, and
``../shared/reference/postmortems.md``): its trigger, its mechanism, how it was detected and mitigated,
with realistic noise around it (background errors, an unrelated change long before onset, routine
restarts, an unrelated alert that fires and resolves before onset). The logs are written in formats
unlike the bundled sample's: Spring Boot without an application name, log4j, Kubernetes container (CRI)
logs holding JSON, syslog (RFC 3164 and 5424), JSON lines without ECS names, logfmt, access logs, and
Grafana, Opsgenie, Datadog and PagerDuty alert payloads whose labels name the services differently from
the logs. Some sources are gzip-compressed with a modification time older than their first line.
HAProxy and Envoy access logs are not supported by the reader yet: the proxies here write the
nginx/Apache combined layout instead.

The truth is *derived from the generated records*, never typed by hand: every record that matters is
tagged while it is generated (``bad`` for the incident's error events, ``cause``, ``mitigate``, and the
detecting alert's ``fired``/``resolved`` payloads), and after the files are written the phases are read
from the tagged records: onset = the first ``bad`` record, recovered = the last one, detected/resolved =
the detecting alert's firing and resolution, mitigated = the ``mitigate`` record. Each record's file and
line are known, so the truth cites them. Long recoveries are compressed (noted in ``notes``); the
order of events, their wording and their shape follow the postmortems.

Everything is seeded: the same incident is written byte for byte the same every time.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Phase tolerances (the truth is exact; the analysis works in one-minute buckets).
TOLERANCE: dict[str, pd.Timedelta] = {
    "onset": pd.Timedelta("2min"),
    "detected": pd.Timedelta("1min"),
    "mitigated": pd.Timedelta("2min"),
    "recovered": pd.Timedelta("5min"),
    "resolved": pd.Timedelta("2min"),
}
#: How far the root-cause candidate's time may be from the trigger's.
CAUSE_TOLERANCE = pd.Timedelta("2min")
PHASES = ("onset", "detected", "mitigated", "recovered", "resolved")


# ------------------------------------------------------------------------------------------------
# Truth
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Citation:
    """A generated record: its file, line (1-based, the first line of a multi-line record), time, text."""

    file: str
    line: int
    time: pd.Timestamp
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "time": _iso(self.time), "text": self.text}


@dataclass(frozen=True)
class Cause:
    """The root-cause trigger: the service(s) it concerns (any of these names, compared loosely), its
    time, and a substring of its evidence line."""

    services: tuple[str, ...]
    kind: str  # "change" or "external" (expiry, limit, dependency outage, attack, ...)
    evidence: str
    at: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"services": list(self.services), "kind": self.kind, "evidence": self.evidence, "at": self.at.to_dict()}


@dataclass(frozen=True)
class Detection:
    """The alert that detected the incident: its name, the file it is in, and what its labels call the service."""

    alert: str
    file: str
    label_service: str | None
    fired: Citation
    resolved: Citation | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "file": self.file,
            "label_service": self.label_service,
            "fired": self.fired.to_dict(),
            "resolved": self.resolved.to_dict() if self.resolved else None,
        }


@dataclass(frozen=True)
class Breach:
    """A breach's exposure: the attacker's source addresses, the accounts taken over, the data operations
    those accounts made after the take-over."""

    attacker_ips: tuple[str, ...]
    attacker_ranges: tuple[str, ...]
    compromised: tuple[str, ...]
    data_operations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacker_ips": list(self.attacker_ips),
            "attacker_ranges": list(self.attacker_ranges),
            "compromised_accounts": list(self.compromised),
            "data_operations": self.data_operations,
        }


@dataclass(frozen=True)
class ZooTruth:
    """What really happened in one zoo incident."""

    name: str
    title: str
    reference: str
    window: tuple[pd.Timestamp, pd.Timestamp]
    phases: dict[str, pd.Timestamp | None]
    phase_evidence: dict[str, Citation]
    cause: Cause
    mechanism: tuple[str, ...]  # words of the mechanism (any one names it)
    affected: tuple[str, ...]  # services (as the logs name them) that fail
    detection: Detection | None
    breach: Breach | None
    files: dict[str, str]  # path -> format description
    compressed: tuple[str, ...]
    notes: str = ""
    seed: int = 0
    variant: int = 0
    tolerance: dict[str, pd.Timedelta] = field(default_factory=lambda: dict(TOLERANCE))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "reference": self.reference,
            "window": {"start": _iso(self.window[0]), "end": _iso(self.window[1])},
            "phases": {p: _iso(self.phases.get(p)) for p in PHASES},
            "tolerance_s": {p: t.total_seconds() for p, t in self.tolerance.items()},
            "phase_evidence": {p: c.to_dict() for p, c in self.phase_evidence.items()},
            "root_cause": self.cause.to_dict(),
            "mechanism": list(self.mechanism),
            "affected_services": list(self.affected),
            "detection": self.detection.to_dict() if self.detection else None,
            "breach": self.breach.to_dict() if self.breach else None,
            "files": self.files,
            "compressed": list(self.compressed),
            "notes": self.notes,
            "seed": self.seed,
            "variant": self.variant,
        }


#: The registered format each file description is written in (the first prefix that matches).
FORMAT_OF_DESCRIPTION: tuple[tuple[str, str], ...] = (
    ("syslog RFC 3164", "syslog_rfc3164"),
    ("syslog RFC 5424", "syslog_rfc5424"),
    ("JSON lines", "json_lines"),
    ("logfmt", "logfmt"),
    ("log4j", "log4j"),
    ("Spring Boot", "spring_boot"),
    ("Python logging", "python_logging"),
    ("Kubernetes CRI", "kubernetes_cri"),
    ("nginx combined + request time", "access_combined_extra"),
    ("Apache combined + request time", "access_combined_extra"),
    ("nginx combined", "access_combined"),
    ("PagerDuty", "pagerduty"),
    ("Opsgenie", "opsgenie"),
    ("Datadog", "datadog"),
    ("Grafana", "grafana"),
)


def expected_format(description: str) -> str:
    """The registered format name of a file of the zoo, from its description."""
    for prefix, name in FORMAT_OF_DESCRIPTION:
        if description.startswith(prefix):
            return name
    raise KeyError(description)


def _iso(ts: pd.Timestamp | None) -> str | None:
    if ts is None:
        return None
    return pd.Timestamp(ts).tz_convert("UTC").isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------
# Writing records
# ------------------------------------------------------------------------------------------------


@dataclass
class _Record:
    time: pd.Timestamp
    text: str
    order: int
    tag: str | None


class Story:
    """The records of one incident, per file; written sorted by time, with the tagged records located."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.files: dict[str, list[_Record]] = {}
        self.formats: dict[str, str] = {}
        self.gzip: set[str] = set()
        self.paraphrases: tuple[tuple[str, str], ...] = ()
        self._order = 0

    def file(self, path: str, description: str, *, gz: bool = False) -> str:
        self.files.setdefault(path, [])
        self.formats[path + (".gz" if gz else "")] = description
        if gz:
            self.gzip.add(path)
        return path

    def put(self, path: str, t: pd.Timestamp, text: str, tag: str | None = None) -> None:
        self._order += 1
        self.files[path].append(_Record(pd.Timestamp(t), text, self._order, tag))

    def times(self, per_minute: float, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
        """Poisson arrivals at ``per_minute`` in [start, end), to the millisecond."""
        span_ms = int((end - start).total_seconds() * 1000)
        if span_ms <= 0 or per_minute <= 0:
            return []
        n = int(self.rng.poisson(per_minute * span_ms / 60_000))
        offsets = np.sort(self.rng.integers(0, span_ms, size=n))
        return [start + pd.Timedelta(int(o), "ms") for o in offsets]

    def ramp(self, start: pd.Timestamp, end: pd.Timestamp, rates: Sequence[tuple[str, float]]) -> list[pd.Timestamp]:
        """Arrivals whose rate changes at the given offsets from ``start`` (``("10min", 5.0)`` = 5/min from +10 min)."""
        out: list[pd.Timestamp] = []
        marks = [(start + pd.Timedelta(off), rate) for off, rate in rates] + [(end, 0.0)]
        for (a, rate), (b, _) in itertools.pairwise(marks):
            out.extend(self.times(rate, a, min(b, end)))
        return out

    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.rng.integers(0, len(items)))]

    def ms(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi))

    def write(self, folder: Path) -> dict[str, list[Citation]]:
        """Write every file under ``folder``; return the tagged records by tag, earliest first."""
        tagged: dict[str, list[Citation]] = {}
        for path, records in self.files.items():
            records.sort(key=lambda r: (r.time.value, r.order))
            lines: list[str] = []
            for rec in records:
                for old, new in self.paraphrases:
                    rec.text = rec.text.replace(old, new)
                for tag in rec.tag.split(",") if rec.tag else ():
                    shown = path + (".gz" if path in self.gzip else "")
                    first = rec.text.split("\n", 1)[0]
                    tagged.setdefault(tag, []).append(Citation(shown, len(lines) + 1, rec.time, first))
                lines.extend(rec.text.split("\n"))
            data = ("\n".join(lines) + "\n").encode("utf-8")
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if path in self.gzip:
                target = target.with_name(target.name + ".gz")
                target.write_bytes(gzip.compress(data, mtime=0))
                # Rotated and shipped later: the file's mtime predates its content (issue 15).
                stamp = records[0].time.timestamp() - 86_400 if records else 0
                os.utime(target, (stamp, stamp))
            else:
                target.write_bytes(data)
                if records:
                    stamp = records[-1].time.timestamp() + 5
                    os.utime(target, (stamp, stamp))
        for items in tagged.values():
            items.sort(key=lambda c: c.time.value)
        return tagged


# ------------------------------------------------------------------------------------------------
# Line layouts
# ------------------------------------------------------------------------------------------------


def _utc(t: pd.Timestamp) -> pd.Timestamp:
    return t.tz_convert("UTC")


def iso_z(t: pd.Timestamp, digits: int = 3) -> str:
    base = _utc(t).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{_utc(t).microsecond:06d}{_utc(t).nanosecond:03d}"[:digits]
    return f"{base}.{frac}Z" if digits else base + "Z"


def spring(t: pd.Timestamp, level: str, logger: str, msg: str, thread: str = "http-nio-8080-exec-1") -> str:
    """Spring Boot's default layout without an application name (Boot 2/3, no Sleuth)."""
    ts = _utc(t).strftime("%Y-%m-%d %H:%M:%S.") + f"{_utc(t).microsecond // 1000:03d}"
    return f"{ts} {level:>5} 1 --- [{thread[-15:]:>15}] {logger:<40} : {msg}"


def log4j(t: pd.Timestamp, level: str, thread: str, logger: str, msg: str) -> str:
    """log4j ``%d %-5p [%t] %c: %m`` (naive UTC)."""
    ts = _utc(t).strftime("%Y-%m-%d %H:%M:%S,") + f"{_utc(t).microsecond // 1000:03d}"
    return f"{ts} {level:<5} [{thread}] {logger}: {msg}"


def pylog(t: pd.Timestamp, level: str, logger: str, msg: str) -> str:
    """Python logging ``%(asctime)s - %(name)s - %(levelname)s - %(message)s`` (naive UTC)."""
    ts = _utc(t).strftime("%Y-%m-%d %H:%M:%S,") + f"{_utc(t).microsecond // 1000:03d}"
    return f"{ts} - {logger} - {level} - {msg}"


_SYSLOG_SEVERITY = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def syslog3164(t: pd.Timestamp, host: str, program: str, pid: int | None, msg: str, sev: str = "info") -> str:
    """BSD syslog with a priority (facility daemon), no year, naive UTC."""
    pri = 3 * 8 + _SYSLOG_SEVERITY[sev]
    u = _utc(t)
    tag = f"{program}[{pid}]" if pid is not None else program
    return f"<{pri}>{u.strftime('%b')} {u.day:>2} {u.strftime('%H:%M:%S')} {host} {tag}: {msg}"


def syslog5424(t: pd.Timestamp, host: str, app: str, pid: int, msg: str, sev: str = "info", msgid: str = "-") -> str:
    pri = 3 * 8 + _SYSLOG_SEVERITY[sev]
    return f"<{pri}>1 {iso_z(t, 6)} {host} {app} {pid} {msgid} - {msg}"


def jline(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def cri(t: pd.Timestamp, inner: str, stream: str = "stdout") -> str:
    """A Kubernetes CRI container log line (nanosecond RFC 3339 time, stream, full-line tag)."""
    return f"{iso_z(t, 9)} {stream} F {inner}"


def logfmt(**fields: Any) -> str:
    parts = []
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\t'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def access(
    t: pd.Timestamp,
    ip: str,
    method: str,
    path: str,
    status: int,
    size: int,
    agent: str,
    seconds: float | None = None,
    offset: str = "+0000",
    user: str = "-",
) -> str:
    """nginx/Apache combined (plus the request time when ``seconds`` is given), in the zone ``offset``."""
    sign = -1 if offset[0] == "-" else 1
    local = _utc(t) + sign * pd.Timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    ts = local.strftime("%d/%b/%Y:%H:%M:%S") + f" {offset}"
    line = f'{ip} - {user} [{ts}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}"'
    return line if seconds is None else f"{line} {seconds:.3f}"


# Alert payloads, one JSON document per line.


def grafana(t: pd.Timestamp, status: str, name: str, labels: dict[str, str], summary: str, fired: pd.Timestamp) -> str:
    alert = {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": summary},
        "startsAt": iso_z(fired),
        "endsAt": iso_z(t) if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "https://grafana.example.net/alerting/grafana/x/view",
        "fingerprint": f"{abs(hash_text(name + json.dumps(labels, sort_keys=True))):016x}"[:16],
        "silenceURL": "https://grafana.example.net/alerting/silence/new",
        "valueString": f"[ var='B' labels={{}} value={1 if status == 'firing' else 0} ]",
    }
    return jline(
        receiver="oncall-webhook",
        status=status,
        orgId=1,
        alerts=[alert],
        groupLabels={"alertname": name},
        commonLabels=alert["labels"],
        commonAnnotations=alert["annotations"],
        externalURL="https://grafana.example.net/",
        version="1",
        groupKey=f'{{}}:{{alertname="{name}"}}',
        truncatedAlerts=0,
        title=f"[{status.upper()}:1] {name}",
        state="alerting" if status == "firing" else "ok",
        message=summary,
    )


def pagerduty(t: pd.Timestamp, event: str, incident: str, number: int, title: str, service: str, who: str) -> str:
    status = event.split(".", 1)[1]
    return jline(
        event={
            "id": f"01{hash_text(incident + event) % 10**12:012d}",
            "event_type": event,
            "resource_type": "incident",
            "occurred_at": iso_z(t),
            "agent": {"id": "PAGENT1", "summary": who, "type": "user_reference"},
            "client": None,
            "data": {
                "id": incident,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident}",
                "html_url": f"https://example.pagerduty.com/incidents/{incident}",
                "number": number,
                "status": status,
                "incident_key": f"{incident.lower()}-key",
                "created_at": iso_z(t),
                "title": title,
                "service": {"id": "PSVC" + incident[-3:], "summary": service, "type": "service_reference"},
                "assignees": [{"id": "PUSER1", "summary": "On-call engineer", "type": "user_reference"}],
                "escalation_policy": {"id": "PEP1", "summary": "Default", "type": "escalation_policy_reference"},
                "teams": [],
                "priority": None,
                "urgency": "high",
                "resolve_reason": None,
            },
        }
    )


def opsgenie(t: pd.Timestamp, action: str, alert_id: str, message: str, tags: list[str], created: pd.Timestamp) -> str:
    return jline(
        source={"name": "", "type": "web"},
        alert={
            "alertId": alert_id,
            "message": message,
            "tags": tags,
            "tinyId": str(hash_text(alert_id) % 1000),
            "alias": alert_id + "-alias",
            "source": "monitoring",
            "entity": "",
            "priority": "P1",
            "username": "System",
            "createdAt": int(_utc(created).value // 1_000_000),
            "updatedAt": int(_utc(t).value),
        },
        action=action,
        integrationId="int-zoo",
        integrationName="Webhook",
    )


def datadog(t: pd.Timestamp, transition: str, cycle: str, name: str, scope: str, tags: str, host: str) -> str:
    kind = {"Triggered": "error", "Recovered": "success", "Warn": "warning"}[transition]
    return jline(
        ALERT_ID=str(hash_text(name) % 10**7),
        ALERT_CYCLE_KEY=cycle,
        ALERT_TRANSITION=transition,
        ALERT_TYPE=kind,
        ALERT_PRIORITY="P1",
        DATE=str(int(_utc(t).value // 1_000_000)),
        EVENT_TITLE=f"[{transition} on {{{scope}}}] {name}",
        EVENT_MSG=f"%%%\n{name}\n%%%",
        HOSTNAME=host,
        TAGS=tags,
    )


def hash_text(text: str) -> int:
    """A stable hash (Python's ``hash`` of a str changes between runs)."""
    value = 1469598103934665603
    for ch in text.encode("utf-8"):
        value = ((value ^ ch) * 1099511628211) % (1 << 64)
    return value


# ------------------------------------------------------------------------------------------------
# Shared pieces of every incident
# ------------------------------------------------------------------------------------------------

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_5) AppleWebKit/605.1.15 Version/16.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
)


#: Customers' networks: documentation and shared address space only (RFC 5737, RFC 6598), never real ones.
CLIENT_NETS = ("192.0.2", "198.51.100", "203.0.113", "100.64.12", "100.72.40", "100.96.3")


def client_ip(story: Story) -> str:
    return f"{story.pick(CLIENT_NETS)}.{story.ms(1, 254)}"


def edge_traffic(
    story: Story,
    path: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    per_minute: float,
    endpoints: Sequence[tuple[str, str]],
    failing: Callable[[pd.Timestamp, str], int | None],
    *,
    offset: str = "+0000",
    timed: bool = True,
) -> None:
    """Access-log traffic; ``failing(t, endpoint)`` gives the status of a failing request (tagged ``bad``)
    or None for a healthy one."""
    for t in story.times(per_minute, start, end):
        method, url = story.pick(endpoints)
        status = failing(t, url)
        bad = status is not None
        code: int = status if status is not None else story.pick((200, 200, 200, 200, 204, 301, 404))
        seconds = (story.ms(2000, 30000) if bad else story.ms(5, 400)) / 1000
        line = access(
            t,
            client_ip(story),
            method,
            url,
            code,
            story.ms(120, 9000),
            story.pick(USER_AGENTS),
            seconds if timed else None,
            offset,
        )
        story.put(path, t, line, "bad" if bad and code >= 500 else None)


def hosts_syslog(story: Story, path: str, start: pd.Timestamp, end: pd.Timestamp, hosts: Sequence[str]) -> None:
    """Routine host noise: cron runs, sshd logins and one routine restart of the log shipper."""
    for t in story.times(0.5, start, end):
        host = story.pick(hosts)
        kind = story.ms(0, 3)
        if kind == 0:
            story.put(path, t, syslog3164(t, host, "CRON", story.ms(1000, 9000), "(root) CMD (/usr/lib/sa/sa1 1 1)"))
        elif kind == 1:
            addr = f"10.0.{story.ms(0, 9)}.{story.ms(2, 250)}"
            msg = f"Accepted publickey for deploy from {addr} port {story.ms(30000, 60000)} ssh2"
            story.put(path, t, syslog3164(t, host, "sshd", story.ms(1000, 9000), msg))
        else:
            story.put(path, t, syslog3164(t, host, "systemd", 1, "Started Session of user deploy."))
    # Well before every incident's onset (all start 30 minutes or more into their window).
    t = start + pd.Timedelta("6min")
    story.put(path, t, syslog3164(t, hosts[0], "systemd", 1, "Stopping Fluent Bit log processor..."))
    story.put(
        path,
        t + pd.Timedelta("2s"),
        syslog3164(t + pd.Timedelta("2s"), hosts[0], "systemd", 1, "fluent-bit.service: restarted (logrotate)"),
    )


# ------------------------------------------------------------------------------------------------
# The incidents
# ------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What an incident generator returns besides its records: what to read from the tags."""

    title: str
    reference: str
    window: tuple[pd.Timestamp, pd.Timestamp]
    cause_services: tuple[str, ...]
    cause_kind: str
    cause_evidence: str
    mechanism: tuple[str, ...]
    affected: tuple[str, ...]
    detection: tuple[str, str, str | None] | None  # alert name, file, what its labels call the service
    breach: Breach | None = None
    notes: str = ""


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if pd.Timestamp(text).tzinfo else pd.Timestamp(text, tz="UTC")


def gitlab_2017(story: Story) -> Plan:
    """GitLab.com, 2017-01-31: ``rm -rf`` of the primary's data directory while re-seeding a replica."""
    w0, w1 = _ts("2017-01-31T21:30:00Z"), _ts("2017-02-01T01:30:00Z")
    onset_cmd = _ts("2017-01-31T23:00:41Z")
    restore = _ts("2017-02-01T00:19:12Z")
    db = story.file("db/syslog", "syslog RFC 3164 with priority, hosts db1/db2 (postgres, sudo, CRON)")
    rails = story.file("rails/production.json", "JSON lines, no ECS names (time/severity/message/component)")
    lb = story.file("lb/nginx_access.log", "nginx combined + request time")
    pd_file = story.file("alerts/pagerduty.ndjson", "PagerDuty v3 webhooks, NDJSON; service 'gitlab-rails-production'")
    hosts_syslog(story, db, w0, w1, ("db1.cluster.gitlab.com", "db2.cluster.gitlab.com"))
    # The evening before: replication lag, pg_basebackup on db2, max_wal_senders raised on db1.
    for t in story.times(0.6, _ts("2017-01-31T21:55:00Z"), _ts("2017-01-31T22:40:00Z")):
        story.put(
            db,
            t,
            syslog3164(
                t,
                "db2.cluster.gitlab.com",
                "postgres",
                4121,
                "LOG:  requested WAL segment 000000010000E59B00000034 has already been removed",
                "warning",
            ),
        )
    t = _ts("2017-01-31T22:31:05Z")
    story.put(
        db,
        t,
        syslog3164(
            t,
            "db2.cluster.gitlab.com",
            "postgres",
            4190,
            "FATAL:  number of requested standby connections exceeds max_wal_senders (currently 3)",
            "warning",
        ),
    )
    t = _ts("2017-01-31T22:36:40Z")
    story.put(
        db,
        t,
        syslog3164(
            t,
            "db1.cluster.gitlab.com",
            "postgres",
            2215,
            'LOG:  parameter "max_wal_senders" changed to "32"; configuration reloaded',
        ),
    )
    t = _ts("2017-01-31T22:37:02Z")
    story.put(
        db,
        t,
        syslog3164(
            t, "db1.cluster.gitlab.com", "systemd", 1, "postgresql.service: restarted to apply max_connections=8000"
        ),
    )
    # The trigger: meant for db2, run on db1.
    cmd = "ops : TTY=pts/3 ; PWD=/var/opt/gitlab ; USER=root ; COMMAND=/bin/rm -rf /var/opt/gitlab/postgresql/data"
    story.put(db, onset_cmd, syslog3164(onset_cmd, "db1.cluster.gitlab.com", "sudo", None, cmd, "notice"), "cause")
    first_panic = onset_cmd + pd.Timedelta("3.2s")
    story.put(
        db,
        first_panic,
        syslog3164(
            first_panic,
            "db1.cluster.gitlab.com",
            "postgres",
            2230,
            'PANIC:  could not open file "global/pg_control": No such file or directory',
            "crit",
        ),
        "bad",
    )
    for t in story.times(1.5, first_panic + pd.Timedelta("5s"), restore):
        story.put(
            db,
            t,
            syslog3164(
                t,
                "db1.cluster.gitlab.com",
                "postgres",
                story.ms(2300, 9000),
                'FATAL:  could not open file "global/pg_control": No such file or directory',
                "err",
            ),
            "bad",
        )
    t = _ts("2017-01-31T23:27:10Z")
    story.put(
        db,
        t,
        syslog3164(
            t,
            "db1.cluster.gitlab.com",
            "sudo",
            None,
            "ops : TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/bin/kill -INT 31044",
            "notice",
        ),
    )
    story.put(
        db,
        restore,
        syslog3164(
            restore,
            "db1.cluster.gitlab.com",
            "systemd",
            1,
            "postgresql.service: restarted with data restored from the 17:20 LVM snapshot",
        ),
        "mitigate",
    )
    # Rails: healthy requests, background errors, then no database.
    for t in story.times(5, w0, w1):
        down = first_panic <= t < restore + pd.Timedelta("40s")
        if down:
            story.put(
                rails,
                t,
                jline(
                    time=iso_z(t),
                    severity="ERROR",
                    component="gitlab-rails",
                    message="PG::ConnectionBad: could not connect to server: Connection refused "
                    "(db1.cluster.gitlab.com:5432)",
                    correlation_id=f"{story.ms(0, 1 << 30):08x}",
                ),
                "bad",
            )
        else:
            story.put(
                rails,
                t,
                jline(
                    time=iso_z(t),
                    severity="INFO",
                    component="gitlab-rails",
                    message=f"Completed 200 OK in {story.ms(20, 400)}ms (Views: {story.ms(5, 90)}ms | "
                    f"ActiveRecord: {story.ms(1, 60)}ms)",
                    correlation_id=f"{story.ms(0, 1 << 30):08x}",
                ),
            )
    for t in story.times(0.05, w0, w1):
        story.put(
            rails,
            t,
            jline(
                time=iso_z(t),
                severity="ERROR",
                component="gitlab-rails",
                message="Gitlab::Git::CommandError: 4:Deadline Exceeded (gitaly)",
            ),
        )
    t = _ts("2017-01-31T21:41:00Z")
    story.put(
        rails,
        t,
        jline(
            time=iso_z(t),
            severity="INFO",
            component="sidekiq",
            message="Deployed sidekiq-cluster config 9.0.1 (spam job limits)",
        ),
    )

    def lb_fail(t: pd.Timestamp, url: str) -> int | None:
        return 503 if first_panic + pd.Timedelta("1s") <= t < restore + pd.Timedelta("40s") else None

    edge_traffic(
        story,
        lb,
        w0,
        w1,
        6,
        (
            ("GET", "/"),
            ("GET", "/gitlab-org/gitlab-ce"),
            ("POST", "/api/v4/projects/13083/issues"),
            ("GET", "/users/sign_in"),
        ),
        lb_fail,
    )
    # Alerts: the evening's replication-lag page (resolved before the trigger), then the outage page.
    lag_fired, lag_res = _ts("2017-01-31T22:00:12Z"), _ts("2017-01-31T22:44:30Z")
    story.put(
        pd_file,
        lag_fired,
        pagerduty(
            lag_fired,
            "incident.triggered",
            "Q1LAG",
            4101,
            "Replication lag on db2 above 4 GB",
            "postgresql-replication",
            "PagerDuty",
        ),
    )
    story.put(
        pd_file,
        lag_res,
        pagerduty(
            lag_res,
            "incident.resolved",
            "Q1LAG",
            4101,
            "Replication lag on db2 above 4 GB",
            "postgresql-replication",
            "Ops Engineer",
        ),
    )
    fired = first_panic + pd.Timedelta("2min 31.4s")
    story.put(
        pd_file,
        fired,
        pagerduty(
            fired,
            "incident.triggered",
            "Q2DOWN",
            4102,
            "GitLab.com 5xx error ratio above 20%",
            "gitlab-rails-production",
            "PagerDuty",
        ),
        "fired",
    )
    ack = fired + pd.Timedelta("1min 10s")
    story.put(
        pd_file,
        ack,
        pagerduty(
            ack,
            "incident.acknowledged",
            "Q2DOWN",
            4102,
            "GitLab.com 5xx error ratio above 20%",
            "gitlab-rails-production",
            "Ops Engineer",
        ),
    )
    res = restore + pd.Timedelta("4min 2s")
    story.put(
        pd_file,
        res,
        pagerduty(
            res,
            "incident.resolved",
            "Q2DOWN",
            4102,
            "GitLab.com 5xx error ratio above 20%",
            "gitlab-rails-production",
            "Ops Engineer",
        ),
        "resolved",
    )
    return Plan(
        title="GitLab.com: rm -rf on the primary's PostgreSQL data directory",
        reference="https://about.gitlab.com/blog/2017/02/10/postmortem-of-database-outage-of-january-31/",
        window=(w0, w1),
        cause_services=("postgresql", "postgres", "db1"),
        cause_kind="change",
        cause_evidence="rm -rf /var/opt/gitlab/postgresql/data",
        mechanism=("pg_control",),
        affected=("postgres", "gitlab-rails", "lb"),
        detection=("GitLab.com 5xx error ratio above 20%", pd_file, "gitlab-rails-production"),
        notes="The 18 h restore is compressed to 78 minutes; the command's service is the one it deletes (postgresql), "
        "though sudo logs it. The evening's max_wal_senders change and restart on db1 are real red herrings.",
    )


def aws_s3_2017(story: Story) -> Plan:
    """AWS S3 us-east-1, 2017-02-28: a playbook's capacity removal with one input wrong took out the index subsystem."""
    w0, w1 = _ts("2017-02-28T09:00:00-08:00"), _ts("2017-02-28T14:30:00-08:00")
    trigger = _ts("2017-02-28T09:37:02-08:00")
    index_back = _ts("2017-02-28T12:26:00-08:00")
    placement_back = _ts("2017-02-28T13:54:00-08:00")
    audit = story.file("ops/audit.logfmt", "logfmt (ops playbook audit, -08:00 offsets)")
    index = story.file("s3-index/index.log", "log4j, naive UTC")
    front = story.file(
        "s3-frontend/access.log", "nginx combined + request time, -0800, rotated and gzip-compressed", gz=True
    )
    ec2 = story.file("ec2-api/application.log", "Spring Boot without an application name, naive UTC")
    dd = story.file("alerts/datadog.ndjson", "Datadog monitor webhooks, NDJSON; tag service:s3")
    t = _ts("2017-02-28T09:05:13-08:00")
    story.put(
        audit,
        t,
        logfmt(
            ts=t.tz_convert("-08:00").isoformat(),
            level="info",
            service="billing",
            actor="deploy-bot",
            msg="deployed billing version 2017.02.27-3",
        ),
    )
    story.put(
        audit,
        trigger,
        logfmt(
            ts=trigger.tz_convert("-08:00").isoformat(),
            level="info",
            service="s3-index",
            actor="billing-oncall",
            tool="playbook",
            msg="capacity decreased from 2400 to 620 hosts (remove-capacity --subsystem index --count 1780)",
        ),
        "cause",
    )
    story.put(
        audit,
        index_back,
        logfmt(
            ts=index_back.tz_convert("-08:00").isoformat(),
            level="info",
            service="s3-index",
            actor="s3-oncall",
            msg="s3-index restarted: serving GET, LIST and DELETE",
        ),
        "mitigate",
    )
    story.put(
        audit,
        placement_back,
        logfmt(
            ts=placement_back.tz_convert("-08:00").isoformat(),
            level="info",
            service="s3-placement",
            actor="s3-oncall",
            msg="s3-placement restarted: PUT allocation serving",
        ),
    )
    first = trigger + pd.Timedelta("1.6s")
    for t in [first, *story.times(3, first + pd.Timedelta("1s"), index_back)]:
        story.put(
            index,
            t,
            log4j(
                t,
                "ERROR",
                "lookup-7",
                "com.amazon.s3.index.PartitionLookup",
                "GET metadata lookup failed: index partition unavailable (no quorum, 0/3 hosts)",
            ),
            "bad",
        )
    for k, t in enumerate(story.times(0.1, trigger + pd.Timedelta("20min"), index_back)):
        story.put(
            index,
            t,
            log4j(
                t,
                "INFO",
                "recovery",
                "com.amazon.s3.index.Recovery",
                f"metadata integrity check {min(99, 3 + k)}% complete",
            ),
        )
    for t in story.times(2, w0, w1):
        if trigger <= t < index_back:
            continue
        story.put(
            index,
            t,
            log4j(
                t,
                "INFO",
                "lookup-3",
                "com.amazon.s3.index.PartitionLookup",
                f"partition map refreshed ({story.ms(4000, 4100)} partitions)",
            ),
        )
    for t in story.times(0.04, w0, w1):
        story.put(index, t, log4j(t, "WARN", "gc", "com.amazon.s3.index.Heap", "GC pause 612ms exceeds 500ms target"))
    t = w0 + pd.Timedelta("12min")
    story.put(index, t, log4j(t, "INFO", "main", "com.amazon.s3.index.Node", "index-node-14 restarted (kernel patch)"))
    for t in story.times(0.05, w0, w1):
        story.put(ec2, t, spring(t, "ERROR", "c.a.e.image.DescribeImagesHandler", "DescribeImages failed: Throttling"))

    def front_fail(t: pd.Timestamp, url: str) -> int | None:
        if trigger + pd.Timedelta("1s") <= t < index_back:
            return 503
        if index_back <= t < placement_back and url.startswith("/bucket-uploads/"):
            return 503
        return None

    # Uploads (PUT) are half the traffic: their failures until placement recovers are plain to see.
    endpoints = (
        ("GET", "/bucket-media/img/a.png"),
        ("GET", "/bucket-logs/?list-type=2"),
        ("PUT", "/bucket-uploads/part-1"),
        ("PUT", "/bucket-uploads/part-2"),
        ("PUT", "/bucket-uploads/part-3"),
        ("DELETE", "/bucket-tmp/x"),
    )
    edge_traffic(story, front, w0, w1, 9, endpoints, front_fail, offset="-0800")
    for t in story.times(2, w0, w1):
        down = trigger + pd.Timedelta("2s") <= t < index_back
        if down:
            story.put(
                ec2,
                t,
                spring(
                    t,
                    "ERROR",
                    "c.a.e.launch.RunInstancesHandler",
                    "RunInstances failed: S3 dependency unavailable (503 Service Unavailable)",
                )
                + "\ncom.amazonaws.services.s3.model.AmazonS3Exception: Service Unavailable (Status Code: 503)"
                "\n\tat com.amazonaws.http.AmazonHttpClient.execute(AmazonHttpClient.java:1640)",
                "bad",
            )
        else:
            story.put(
                ec2,
                t,
                spring(t, "INFO", "c.a.e.launch.RunInstancesHandler", f"RunInstances ok: {story.ms(1, 20)} instances"),
            )
    # Noise: the billing slowness the engineer was debugging, an alert that resolved before the trigger.
    b0, b1 = _ts("2017-02-28T09:02:00-08:00"), _ts("2017-02-28T09:24:00-08:00")
    story.put(
        dd,
        b0,
        datadog(
            b0,
            "Triggered",
            "cyc-bill",
            "Billing p99 latency above 2s",
            "service:billing",
            "service:billing,env:prod",
            "billing-7",
        ),
    )
    story.put(
        dd,
        b1,
        datadog(
            b1,
            "Recovered",
            "cyc-bill",
            "Billing p99 latency above 2s",
            "service:billing",
            "service:billing,env:prod",
            "billing-7",
        ),
    )
    fired = trigger + pd.Timedelta("2min 4s")
    story.put(
        dd,
        fired,
        datadog(
            fired,
            "Triggered",
            "cyc-s3",
            "S3 5xx ratio above 5%",
            "service:s3",
            "service:s3,region:us-east-1",
            "s3-fe-01",
        ),
        "fired",
    )
    res = placement_back + pd.Timedelta("6min")
    story.put(
        dd,
        res,
        datadog(
            res, "Recovered", "cyc-s3", "S3 5xx ratio above 5%", "service:s3", "service:s3,region:us-east-1", "s3-fe-01"
        ),
        "resolved",
    )
    return Plan(
        title="AWS S3 us-east-1: a mistyped capacity-removal command takes out the index subsystem",
        reference="https://aws.amazon.com/message/41926/",
        window=(w0, w1),
        cause_services=("s3-index", "s3"),
        cause_kind="change",
        cause_evidence="remove-capacity --subsystem index",
        mechanism=("index partition unavailable",),
        affected=("s3-index", "s3-frontend", "ec2-api"),
        detection=("S3 5xx ratio above 5%", dd, "s3"),
        notes="Published times (PST). GET/LIST/DELETE recover when the index restarts (12:26), "
        "PUT when placement does (13:54).",
    )


def cloudflare_waf_2019(story: Story) -> Plan:
    """Cloudflare, 2019-07-02: a WAF managed rule with a backtracking regex pins the edge CPUs."""
    w0, w1 = _ts("2019-07-02T12:50:00Z"), _ts("2019-07-02T15:10:00Z")
    deploy_t = _ts("2019-07-02T13:42:00.412Z")
    kill = _ts("2019-07-02T14:07:03Z")
    back = _ts("2019-07-02T14:09:00Z")
    qs = story.file("deploy/quicksilver.jsonl", "JSON lines, no ECS names (ts/level/app/msg)")
    edge = story.file("edge/syslog", "syslog RFC 5424, hosts edge-*, apps fl and waf")
    acc = story.file("edge/access.log", "nginx combined + request time")
    pdf = story.file("alerts/pagerduty.ndjson", "PagerDuty v3 webhooks, NDJSON; service 'WAF'")
    og = story.file("alerts/opsgenie.ndjson", "Opsgenie webhook actions, NDJSON; tags service:edge")
    for t, msg in (
        (_ts("2019-07-02T12:58:10Z"), "deployed dns-resolver release 2019.07.02-1 to canary PoPs"),
        (_ts("2019-07-02T13:31:20Z"), "merged pull request #4412: WAF managed rule 100.1 (XSS) in simulate mode"),
        (_ts("2019-07-02T13:37:05Z"), "CI pipeline 88213 passed for waf-rules"),
    ):
        story.put(qs, t, jline(ts=iso_z(t), level="info", app="quicksilver", msg=msg))
    story.put(
        qs,
        deploy_t,
        jline(
            ts=iso_z(deploy_t),
            level="info",
            app="quicksilver",
            target="waf",
            msg="deployed WAF managed rules release 2019-07-02.1 (simulate) to all PoPs",
        ),
        "cause",
    )
    story.put(
        qs,
        kill,
        jline(
            ts=iso_z(kill),
            level="info",
            app="quicksilver",
            target="waf",
            msg="waf global kill switch engaged: managed rules disabled on all PoPs",
        ),
        "mitigate",
    )
    t = _ts("2019-07-02T14:52:00Z")
    story.put(
        qs,
        t,
        jline(
            ts=iso_z(t),
            level="info",
            app="quicksilver",
            target="waf",
            msg="waf managed rules re-enabled after single-city tests (rule 100.1 removed)",
        ),
    )
    pops = ("edge-ams01", "edge-sjc02", "edge-sin03", "edge-gru01", "edge-lhr04")
    first = deploy_t + pd.Timedelta("2.1s")
    for i, t in enumerate([first, *story.times(8, first + pd.Timedelta("1s"), kill + pd.Timedelta("20s"))]):
        host = story.pick(pops)
        if i % 2 == 0:
            story.put(
                edge,
                t,
                syslog5424(
                    t,
                    host,
                    "waf",
                    3112,
                    "rule 100.1 regex evaluation exceeded CPU budget (catastrophic backtracking in .*(?:.*=.*))",
                    "err",
                ),
                "bad",
            )
        else:
            story.put(
                edge,
                t,
                syslog5424(
                    t,
                    host,
                    "fl",
                    2210,
                    f"cpu_http={story.ms(970, 1000) / 10:.1f}% request queue full; returning 502",
                    "err",
                ),
                "bad",
            )
    for t in story.times(3, w0, w1):
        story.put(
            edge,
            t,
            syslog5424(
                t, story.pick(pops), "fl", 2210, f"cpu_http={story.ms(150, 450) / 10:.1f}% workers={story.ms(60, 64)}"
            ),
        )
    for t in story.times(0.06, w0, w1):
        story.put(
            edge,
            t,
            syslog5424(
                t,
                story.pick(pops),
                "fl",
                2210,
                "upstream prematurely closed connection while reading response header from origin",
                "err",
            ),
        )
    t = w0 + pd.Timedelta("9min")
    story.put(edge, t, syslog5424(t, "edge-lhr04", "systemd", 1, "fl.service: restarted (scheduled binary reload)"))

    def acc_fail(t: pd.Timestamp, url: str) -> int | None:
        return 502 if deploy_t + pd.Timedelta("3s") <= t < back and story.rng.random() < 0.8 else None

    edge_traffic(
        story,
        acc,
        w0,
        w1,
        12,
        (("GET", "/"), ("GET", "/cdn-cgi/trace"), ("POST", "/api/v4/zones"), ("GET", "/static/app.js")),
        acc_fail,
    )
    d0, d1 = _ts("2019-07-02T13:05:00Z"), _ts("2019-07-02T13:21:00Z")
    story.put(
        og, d0, opsgenie(d0, "Create", "og-disk", "Disk 90% full on log-01", ["service:logging", "host:log-01"], d0)
    )
    story.put(
        og, d1, opsgenie(d1, "Close", "og-disk", "Disk 90% full on log-01", ["service:logging", "host:log-01"], d0)
    )
    fired = deploy_t + pd.Timedelta("2min 48s")
    story.put(
        pdf,
        fired,
        pagerduty(fired, "incident.triggered", "P7WAF", 2201, "WAF synthetic test FAILED", "WAF", "PagerDuty"),
        "fired",
    )
    t2 = fired + pd.Timedelta("2min")
    story.put(og, t2, opsgenie(t2, "Create", "og-traffic", "Global traffic drop > 50%", ["service:edge"], t2))
    ack = fired + pd.Timedelta("1min 30s")
    story.put(
        pdf,
        ack,
        pagerduty(ack, "incident.acknowledged", "P7WAF", 2201, "WAF synthetic test FAILED", "WAF", "SRE on call"),
    )
    res = back + pd.Timedelta("3min 20s")
    story.put(
        og,
        res - pd.Timedelta("1min"),
        opsgenie(res - pd.Timedelta("1min"), "Close", "og-traffic", "Global traffic drop > 50%", ["service:edge"], t2),
    )
    story.put(
        pdf,
        res,
        pagerduty(res, "incident.resolved", "P7WAF", 2201, "WAF synthetic test FAILED", "WAF", "SRE on call"),
        "resolved",
    )
    return Plan(
        title="Cloudflare: a WAF rule's backtracking regex exhausts edge CPU worldwide",
        reference="https://blog.cloudflare.com/details-of-the-cloudflare-outage-on-july-2-2019/",
        window=(w0, w1),
        cause_services=("waf",),
        cause_kind="change",
        cause_evidence="deployed WAF managed rules",
        mechanism=("catastrophic backtracking", "CPU budget"),
        affected=("waf", "fl", "edge"),
        detection=("WAF synthetic test FAILED", pdf, "WAF"),
        notes="The deploy system (quicksilver) logs the deploy; its target is the WAF.",
    )


def fastly_2021(story: Story) -> Plan:
    """Fastly, 2021-06-08: one customer's valid config push triggers a latent bug; 85% of the network errors."""
    w0, w1 = _ts("2021-06-08T09:00:00Z"), _ts("2021-06-08T11:40:00Z")
    push = _ts("2021-06-08T09:47:03Z")
    disable = _ts("2021-06-08T10:36:10Z")
    healed = _ts("2021-06-08T10:58:30Z")
    api = story.file("config-api/api.jsonl", "JSON lines, no ECS names (time/lvl/application/message)")
    cache = story.file("cache/syslog", "syslog RFC 5424, hosts cache-*, app cache-node")
    acc = story.file("edge/access.log", "nginx combined (no request time)")
    gf = story.file(
        "alerts/grafana.ndjson", "Grafana Alerting webhooks, NDJSON; labels namespace=edge, deployment=cache"
    )
    for t in story.times(1.5, w0, w1):
        story.put(
            api,
            t,
            jline(
                time=iso_z(t),
                lvl="info",
                application="config-api",
                message=f"GET /service/svc-{story.ms(100, 999)}/version 200",
            ),
        )
    t = _ts("2021-06-08T09:12:30Z")
    story.put(
        api, t, jline(time=iso_z(t), lvl="info", application="billing-api", message="deployed billing-api v7.3.1")
    )
    story.put(
        api,
        push,
        jline(
            time=iso_z(push),
            lvl="info",
            application="config-api",
            customer="cust-4471",
            message="config pushed for customer service svc-7Xy2 version 42 to all POPs",
        ),
        "cause",
    )
    story.put(
        api,
        disable,
        jline(
            time=iso_z(disable),
            lvl="info",
            application="config-api",
            message="svc-7Xy2 config rolled back to version 41 on all POPs",
        ),
        "mitigate",
    )
    pops = ("cache-lon1", "cache-fra2", "cache-nyc3", "cache-tyo1", "cache-syd2", "cache-sjc1")
    first = push + pd.Timedelta("4.3s")
    heal = [(pops[k], disable + (healed - disable) * (k + 1) / len(pops)) for k in range(len(pops))]
    for t in [first, *story.times(10, first + pd.Timedelta("1s"), healed)]:
        host = story.pick(pops)
        if t >= dict(heal)[host]:
            continue
        story.put(
            cache,
            t,
            syslog5424(
                t,
                host,
                "cache-node",
                811,
                "worker panicked: unexpected VCL state while compiling svc-7Xy2 v42; 503 to clients",
                "err",
            ),
            "bad",
        )
    for t in story.times(2, w0, w1):
        story.put(
            cache,
            t,
            syslog5424(
                t,
                story.pick(pops),
                "cache-node",
                811,
                f"hit ratio {story.ms(900, 990) / 10:.1f}% objects={story.ms(10**6, 2 * 10**6)}",
            ),
        )
    for t in story.times(0.05, w0, w1):
        story.put(
            cache,
            t,
            syslog5424(
                t, story.pick(pops), "cache-node", 811, "origin fetch failed: connect timeout (origin 10.20.0.5)", "err"
            ),
        )
    t = w0 + pd.Timedelta("20min")
    story.put(
        cache, t, syslog5424(t, "cache-fra2", "systemd", 1, "cache-node.service: restarted (weekly binary refresh)")
    )

    def acc_fail(t: pd.Timestamp, url: str) -> int | None:
        if not push + pd.Timedelta("5s") <= t < healed:
            return None
        share = 0.85 if t < disable else 0.85 * (healed - t) / (healed - disable)
        return 503 if story.rng.random() < share else None

    edge_traffic(
        story,
        acc,
        w0,
        w1,
        10,
        (("GET", "/"), ("GET", "/news/live"), ("GET", "/assets/main.css"), ("GET", "/api/stream")),
        acc_fail,
        timed=False,
    )
    c0, c1 = _ts("2021-06-08T09:20:00Z"), _ts("2021-06-08T09:31:00Z")
    story.put(
        gf,
        c0,
        grafana(
            c0,
            "firing",
            "CertExpirySoon",
            {"service": "billing-api", "severity": "warning"},
            "billing-api certificate expires in 13 days",
            c0,
        ),
    )
    story.put(
        gf,
        c1,
        grafana(
            c1,
            "resolved",
            "CertExpirySoon",
            {"service": "billing-api", "severity": "warning"},
            "billing-api certificate expires in 13 days",
            c0,
        ),
    )
    fired = push + pd.Timedelta("58s")
    labels = {"namespace": "edge", "deployment": "cache", "severity": "critical"}
    story.put(
        gf,
        fired,
        grafana(fired, "firing", "Global5xxRatioHigh", labels, "5xx above 80% of requests on edge", fired),
        "fired",
    )
    res = healed + pd.Timedelta("4min 10s")
    story.put(
        gf,
        res,
        grafana(res, "resolved", "Global5xxRatioHigh", labels, "5xx above 80% of requests on edge", fired),
        "resolved",
    )
    return Plan(
        title="Fastly: a customer's config push triggers a latent bug; 85% of the network returns errors",
        reference="https://www.fastly.com/blog/summary-of-june-8-outage",
        window=(w0, w1),
        cause_services=("config-api", "cache-node", "cache"),
        cause_kind="change",
        cause_evidence="config pushed for customer service svc-7Xy2",
        mechanism=("worker panicked",),
        affected=("cache-node", "edge"),
        detection=("Global5xxRatioHigh", gf, "cache"),
        notes="The latent bug shipped on May 12 is outside the window; the POPs heal one by one after the rollback.",
    )


def facebook_2021(story: Story) -> Plan:
    """Facebook, 2021-10-04: a backbone maintenance command drops every link; DNS withdraws its routes."""
    w0, w1 = _ts("2021-10-04T15:00:00Z"), _ts("2021-10-04T21:40:00Z")
    push = _ts("2021-10-04T15:39:08Z")
    restore = _ts("2021-10-04T20:50:12Z")
    dns_back = _ts("2021-10-04T21:05:00Z")
    auto = story.file("backbone/automation.logfmt", "logfmt (network automation)")
    routers = story.file("routers/syslog", "syslog RFC 3164 with priority, hosts bb-r*, program bgpd")
    dns = story.file("dns/edge-dns.log", "syslog RFC 5424, hosts edge-dns-*, app dns-edge")
    res_log = story.file("resolvers/resolver.jsonl", "JSON lines, no ECS names (time/level/app/message)")
    og = story.file("alerts/opsgenie.ndjson", "Opsgenie webhook actions, NDJSON; tags service:dns")
    t = _ts("2021-10-04T15:07:40Z")
    story.put(
        auto,
        t,
        logfmt(
            time=iso_z(t),
            level="info",
            service="edge-lb",
            job="release",
            msg="deployed edge-lb 2021.10.04-2 to 14 PoPs",
        ),
    )
    t = push - pd.Timedelta("14s")
    story.put(
        auto,
        t,
        logfmt(
            time=iso_z(t),
            level="info",
            service="backbone",
            job="capacity-assessment",
            msg="audit check passed for maintenance command",
        ),
    )
    story.put(
        auto,
        push,
        logfmt(
            time=iso_z(push),
            level="info",
            service="backbone",
            job="capacity-assessment",
            msg="configuration pushed to 96 backbone routers: assess global backbone capacity",
        ),
        "cause",
    )
    story.put(
        auto,
        restore,
        logfmt(
            time=iso_z(restore),
            level="info",
            service="backbone",
            job="manual",
            msg="backbone configuration rolled back on site; BGP sessions re-established",
        ),
        "mitigate",
    )
    routers_h = [f"bb-r{k:02d}" for k in range(1, 13)]
    first = push + pd.Timedelta("2.5s")
    for k, t in enumerate([first, *sorted(story.times(30, first + pd.Timedelta("1s"), first + pd.Timedelta("90s")))]):
        host = routers_h[k % len(routers_h)]
        story.put(
            routers,
            t,
            syslog3164(t, host, "bgpd", 812, f"BGP neighbor 10.{k % 250}.3.2 (AS32934) Down: interface down", "err"),
            "bad",
        )
    for t in story.times(0.3, w0, w1):
        story.put(routers, t, syslog3164(t, story.pick(routers_h), "bgpd", 812, "BGP keepalive statistics: 0 drops"))
    hosts_syslog(story, routers, w0, w1, routers_h)
    dns_hosts = [f"edge-dns-{k}" for k in ("ams", "iad", "sin", "gru")]
    for t in story.times(2.5, push + pd.Timedelta("20s"), restore):
        story.put(
            dns,
            t,
            syslog5424(
                t,
                story.pick(dns_hosts),
                "dns-edge",
                77,
                "backbone unreachable: health check failed, withdrawing prefix 129.134.30.0/24",
                "err",
            ),
            "bad",
        )
    for t in story.times(1, w0, w1):
        if push <= t < restore:
            continue
        story.put(
            dns,
            t,
            syslog5424(
                t,
                story.pick(dns_hosts),
                "dns-edge",
                77,
                f"answered {story.ms(90000, 120000)} queries/s; prefixes announced",
            ),
        )
    for t in story.times(5, w0, w1):
        if push + pd.Timedelta("40s") <= t < dns_back:
            story.put(
                res_log,
                t,
                jline(
                    time=iso_z(t),
                    level="error",
                    app="resolver",
                    message=f"SERVFAIL {story.pick(('facebook.com', 'instagram.com', 'whatsapp.net'))} A: "
                    "no reachable authority",
                ),
                "bad",
            )
        else:
            story.put(
                res_log,
                t,
                jline(
                    time=iso_z(t),
                    level="info",
                    app="resolver",
                    message=f"NOERROR {story.pick(('facebook.com', 'example.org', 'wikipedia.org'))} "
                    f"A {story.ms(1, 40)}ms",
                ),
            )
    for t in story.times(0.05, w0, w1):
        story.put(
            res_log,
            t,
            jline(
                time=iso_z(t),
                level="error",
                app="resolver",
                message="SERVFAIL broken-dnssec.example: DNSSEC validation failed",
            ),
        )
    n0, n1 = _ts("2021-10-04T15:10:00Z"), _ts("2021-10-04T15:22:00Z")
    story.put(
        og, n0, opsgenie(n0, "Create", "og-ntp", "NTP offset above 100ms on bb-r07", ["service:ntp", "host:bb-r07"], n0)
    )
    story.put(
        og, n1, opsgenie(n1, "Close", "og-ntp", "NTP offset above 100ms on bb-r07", ["service:ntp", "host:bb-r07"], n0)
    )
    fired = _ts("2021-10-04T15:51:00Z")
    story.put(
        og,
        fired,
        opsgenie(
            fired,
            "Create",
            "og-servfail",
            "Facebook DNS lookup returning SERVFAIL",
            ["service:dns", "team:traffic"],
            fired,
        ),
        "fired",
    )
    ack = fired + pd.Timedelta("3min")
    story.put(
        og,
        ack,
        opsgenie(
            ack,
            "Acknowledge",
            "og-servfail",
            "Facebook DNS lookup returning SERVFAIL",
            ["service:dns", "team:traffic"],
            fired,
        ),
    )
    closed = dns_back + pd.Timedelta("9min")
    story.put(
        og,
        closed,
        opsgenie(
            closed,
            "Close",
            "og-servfail",
            "Facebook DNS lookup returning SERVFAIL",
            ["service:dns", "team:traffic"],
            fired,
        ),
        "resolved",
    )
    return Plan(
        title="Facebook: a backbone maintenance command drops every link; DNS withdraws its prefixes",
        reference="https://engineering.fb.com/2021/10/05/networking-traffic/outage-details/",
        window=(w0, w1),
        cause_services=("backbone", "bgpd"),
        cause_kind="change",
        cause_evidence="configuration pushed to 96 backbone routers",
        mechanism=("BGP neighbor", "withdrawing prefix"),
        affected=("bgpd", "dns-edge", "resolver"),
        detection=("Facebook DNS lookup returning SERVFAIL", og, "dns"),
        notes="Recovery times are secondary-source (Wikipedia): routes back ~20:50, DNS ~21:05.",
    )


def github_2018(story: Story) -> Plan:
    """GitHub, 2018-10-21: 43 s of partition between East hub and DC; Orchestrator promotes West primaries."""
    w0, w1 = _ts("2018-10-21T22:20:00Z"), _ts("2018-10-22T01:40:00Z")
    cut = _ts("2018-10-21T22:52:00.310Z")
    pause = _ts("2018-10-21T23:19:05Z")
    healed = _ts("2018-10-22T01:08:00Z")
    net = story.file("network/syslog", "syslog RFC 3164 with priority (switch and netops)")
    orch = story.file("orchestrator/orchestrator.log", "log4j, naive UTC")
    app = story.file("github/app.logfmt", "logfmt (time/level/app/msg)")
    hook = story.file("hookshot/worker.log", "Python logging, logger names hookshot.*")
    mysql = story.file("mysql/syslog", "syslog RFC 3164 with priority, mysqld")
    gf = story.file("alerts/grafana.ndjson", "Grafana Alerting webhooks, NDJSON; label app=github-web")
    hosts_syslog(story, net, w0, w1, ("east-hub-sw1", "east-hub-sw2"))
    t = cut - pd.Timedelta("9s")
    story.put(
        net,
        t,
        syslog3164(
            t,
            "east-hub-sw1",
            "netops",
            None,
            "maintenance CHG-3311: replacing failing 100G optic on Ethernet49/1",
            "notice",
        ),
    )
    story.put(
        net,
        cut,
        syslog3164(
            cut, "east-hub-sw1", "Ebra", 2011, "%LINK-3-UPDOWN: Interface Ethernet49/1, changed state to down", "err"
        ),
        "cause",
    )
    t = cut + pd.Timedelta("43s")
    story.put(
        net,
        t,
        syslog3164(
            t, "east-hub-sw1", "Ebra", 2011, "%LINK-3-UPDOWN: Interface Ethernet49/1, changed state to up", "notice"
        ),
    )
    t = cut + pd.Timedelta("30s")
    story.put(
        orch,
        t,
        log4j(
            t,
            "INFO",
            "raft",
            "orchestrator.topology",
            "DeadMaster detected on mysql-east-1; promoting replica mysql-west-3",
        ),
    )
    story.put(
        orch,
        t + pd.Timedelta("4s"),
        log4j(
            t + pd.Timedelta("4s"),
            "INFO",
            "raft",
            "orchestrator.topology",
            "failover complete: mysql-west-3 is the primary of cluster-a",
        ),
    )
    t = _ts("2018-10-21T23:07:00Z")
    story.put(orch, t, log4j(t, "INFO", "main", "orchestrator.http", "deploys locked by incident commander"))
    for t in story.times(0.5, w0, w1):
        story.put(
            orch, t, log4j(t, "INFO", "main", "orchestrator.discovery", f"discovered {story.ms(120, 130)} instances")
        )
    first = cut + pd.Timedelta("1.1s")
    for t in [first, *story.times(3, first + pd.Timedelta("1s"), healed)]:
        story.put(
            mysql,
            t,
            syslog3164(
                t,
                f"mysql-east-{story.ms(2, 6)}",
                "mysqld",
                3306,
                "[ERROR] Slave I/O: error connecting to master 'repl@mysql-east-1:3306' - retry-time: 60",
                "err",
            ),
            "bad",
        )
    for t in story.times(6, w0, w1):
        if cut + pd.Timedelta("2s") <= t < healed:
            msg = story.pick(
                (
                    "Mysql2::Error: Lock wait timeout exceeded; try restarting transaction",
                    "ActiveRecord::StatementInvalid: write to cluster-a primary timed out (cross-country)",
                )
            )
            story.put(
                app,
                t,
                logfmt(time=iso_z(t), level="error", app="github", msg=msg, request_id=f"{story.ms(0, 1 << 30):08X}"),
                "bad",
            )
        else:
            story.put(
                app,
                t,
                logfmt(
                    time=iso_z(t), level="info", app="github", msg="Completed 200 OK", duration_ms=story.ms(20, 300)
                ),
            )
    for t in story.times(0.05, w0, w1):
        story.put(
            app,
            t,
            logfmt(time=iso_z(t), level="error", app="github", msg="Faraday::TimeoutError: api.gravatar.com timed out"),
        )
    t = _ts("2018-10-21T22:27:00Z")
    story.put(app, t, logfmt(time=iso_z(t), level="info", app="gist", msg="deployed gist 7c1e3a0 to production"))
    for t in story.times(3, w0, w1):
        if cut + pd.Timedelta("3s") <= t < pause:
            story.put(
                hook,
                t,
                pylog(
                    t,
                    "ERROR",
                    "hookshot.delivery",
                    "webhook delivery failed: write to cluster-a primary timed out after 30s",
                ),
                "bad",
            )
        elif pause <= t < healed:
            continue
        else:
            story.put(
                hook,
                t,
                pylog(
                    t,
                    "INFO",
                    "hookshot.delivery",
                    f"delivered webhook {story.ms(10**8, 10**9)} in {story.ms(30, 900)}ms",
                ),
            )
    story.put(
        hook,
        pause,
        pylog(pause, "WARNING", "hookshot.control", "feature flag webhook_delivery disabled; Pages builds paused"),
        "mitigate",
    )
    t = healed + pd.Timedelta("2min")
    story.put(
        hook,
        t,
        pylog(
            t, "WARNING", "hookshot.control", "feature flag webhook_delivery enabled; draining backlog of 5.1M webhooks"
        ),
    )
    for t in story.times(3, healed + pd.Timedelta("2min"), w1):
        story.put(
            hook,
            t,
            pylog(
                t, "INFO", "hookshot.delivery", f"delivered webhook {story.ms(10**8, 10**9)} in {story.ms(30, 900)}ms"
            ),
        )
    g0, g1 = _ts("2018-10-21T22:31:00Z"), _ts("2018-10-21T22:38:00Z")
    story.put(
        gf,
        g0,
        grafana(
            g0,
            "firing",
            "PagesBuildQueueHigh",
            {"app": "pages-builder", "severity": "warning"},
            "Pages build queue above 500",
            g0,
        ),
    )
    story.put(
        gf,
        g1,
        grafana(
            g1,
            "resolved",
            "PagesBuildQueueHigh",
            {"app": "pages-builder", "severity": "warning"},
            "Pages build queue above 500",
            g0,
        ),
    )
    fired = cut + pd.Timedelta("1min 52s")
    labels = {"app": "github-web", "severity": "critical", "team": "database-infrastructure"}
    story.put(
        gf,
        fired,
        grafana(
            fired,
            "firing",
            "MySQLReplicationBroken",
            labels,
            "replication broken on cluster-a; error rate rising",
            fired,
        ),
        "fired",
    )
    res = healed + pd.Timedelta("7min")
    story.put(
        gf,
        res,
        grafana(
            res,
            "resolved",
            "MySQLReplicationBroken",
            labels,
            "replication broken on cluster-a; error rate rising",
            fired,
        ),
        "resolved",
    )
    return Plan(
        title="GitHub: a 43 s network partition; Orchestrator promotes West primaries and writes diverge",
        reference="https://github.blog/news-insights/company-news/oct21-post-incident-analysis/",
        window=(w0, w1),
        cause_services=("network", "ebra", "netops", "east-hub-sw1"),
        cause_kind="external",
        cause_evidence="Ethernet49/1",
        mechanism=("error connecting to master", "cross-country"),
        affected=("mysqld", "github", "hookshot"),
        detection=("MySQLReplicationBroken", gf, "github-web"),
        notes="The 24 h recovery is compressed to 2 h 16 min. Orchestrator's failover is part of the mechanism, not a "
        "mitigation; the first mitigating act is pausing webhooks and Pages (23:19).",
    )


def slack_2021(story: Story) -> Plan:
    """Slack, 2021-01-04: Transit Gateway packet loss; provision-service hits its open-files limit and a quota."""
    w0, w1 = _ts("2021-01-04T05:35:00-08:00"), _ts("2021-01-04T09:00:00-08:00")
    loss = _ts("2021-01-04T06:00:14-08:00")
    fix = _ts("2021-01-04T07:22:40-08:00")
    scaled = _ts("2021-01-04T07:41:00-08:00")
    healed = _ts("2021-01-04T08:15:00-08:00")
    netmon = story.file("network/netmon.jsonl", "JSON lines, no ECS names (time/level/app/message)")
    web = story.file("slack-web/access.log", "Apache combined + request time")
    prov = story.file("provision-service/provision.log", "Python logging, logger provision.api")
    asg = story.file("asg/autoscaling.logfmt", "logfmt (autoscaler)")
    dd = story.file("alerts/datadog.ndjson", "Datadog monitor webhooks, NDJSON; tag service:slack")
    story.put(
        netmon,
        loss,
        jline(
            time=iso_z(loss),
            level="warn",
            app="netmon",
            message="transit gateway tgw-0a1b packet loss 3.8% on web->backend paths",
        ),
        "cause",
    )
    for t in story.times(0.5, loss + pd.Timedelta("1min"), healed):
        story.put(
            netmon,
            t,
            jline(
                time=iso_z(t),
                level="warn",
                app="netmon",
                message=f"transit gateway tgw-0a1b packet loss {story.ms(20, 120) / 10:.1f}% on web->backend paths",
            ),
        )
    for t in story.times(0.5, w0, w1):
        if not loss <= t < healed:
            story.put(
                netmon,
                t,
                jline(time=iso_z(t), level="info", app="netmon", message="transit gateway tgw-0a1b packet loss 0.0%"),
            )

    def web_fail(t: pd.Timestamp, url: str) -> int | None:
        if not loss + pd.Timedelta("30s") <= t < healed:
            return None
        # Timeouts from the first packet loss, a collapse from 06:57, half as bad after the scale-up.
        p = 0.3 if t < _ts("2021-01-04T06:57:00-08:00") else 0.7 if t < scaled else 0.35
        return story.pick((502, 503, 504)) if story.rng.random() < p else None

    edge_traffic(
        story,
        web,
        w0,
        w1,
        20,
        (
            ("POST", "/api/chat.postMessage"),
            ("GET", "/api/conversations.history"),
            ("GET", "/api/users.info"),
            ("POST", "/api/rtm.connect"),
        ),
        web_fail,
        offset="-0800",
    )
    for k, t in enumerate(story.times(0.3, loss + pd.Timedelta("20min"), _ts("2021-01-04T06:58:00-08:00"))):
        story.put(
            asg,
            t,
            logfmt(
                time=t.tz_convert("-08:00").isoformat(),
                level="info",
                app="autoscaler",
                group="webapp",
                msg=f"scale-in: desired capacity decreased from {900 - 20 * k} to {880 - 20 * k} (low CPU)",
            ),
        )
    t = _ts("2021-01-04T05:41:00-08:00")
    story.put(
        asg,
        t,
        logfmt(
            time=t.tz_convert("-08:00").isoformat(),
            level="info",
            app="deployer",
            msg="deployed search-indexer v2021.01.03 to production",
        ),
    )
    story.put(
        asg,
        scaled,
        logfmt(
            time=scaled.tz_convert("-08:00").isoformat(),
            level="info",
            app="autoscaler",
            group="webapp",
            msg="scaled up webapp: added 1200 instances",
        ),
    )
    for t in story.times(1, w0, w1):
        story.put(
            prov,
            t,
            pylog(
                t, "INFO", "provision.api", f"instance i-{story.ms(10**7, 10**8):x} provisioned in {story.ms(40, 90)}s"
            ),
        )
    p0 = _ts("2021-01-04T07:01:10-08:00")
    for t in story.times(6, p0, fix):
        msg = story.pick(
            (
                "accept: too many open files (EMFILE); dropping provisioning request",
                "ec2 RunInstances: RequestLimitExceeded (account quota), provisioning request rejected",
            )
        )
        story.put(prov, t, pylog(t, "ERROR", "provision.api", msg), "bad")
    story.put(
        prov,
        fix,
        pylog(fix, "INFO", "provision.api", "sysctl -w fs.file-max=2097152; open files limit raised to 1048576"),
        "mitigate",
    )
    for t in story.times(0.03, w0, w1):
        story.put(prov, t, pylog(t, "ERROR", "provision.api", "consul lookup for vault.service.consul timed out"))
    t = w0 + pd.Timedelta("15min")
    story.put(prov, t, pylog(t, "INFO", "provision.supervisor", "provision-service worker restarted (daily recycle)"))
    fired = _ts("2021-01-04T06:44:50-08:00")
    scope = "service:slack,env:prod"
    story.put(
        dd,
        _ts("2021-01-04T05:50:00-08:00"),
        datadog(
            _ts("2021-01-04T05:50:00-08:00"),
            "Triggered",
            "cyc-cron",
            "Nightly export job late",
            "service:exports",
            "service:exports",
            "batch-3",
        ),
    )
    story.put(
        dd,
        _ts("2021-01-04T05:58:00-08:00"),
        datadog(
            _ts("2021-01-04T05:58:00-08:00"),
            "Recovered",
            "cyc-cron",
            "Nightly export job late",
            "service:exports",
            "service:exports",
            "batch-3",
        ),
    )
    story.put(
        dd,
        fired,
        datadog(
            fired, "Triggered", "cyc-send", "Message send success below 99.9%", "service:slack", scope, "synthetics-ext"
        ),
        "fired",
    )
    res = healed + pd.Timedelta("9min")
    story.put(
        dd,
        res,
        datadog(
            res, "Recovered", "cyc-send", "Message send success below 99.9%", "service:slack", scope, "synthetics-ext"
        ),
        "resolved",
    )
    return Plan(
        title="Slack: Transit Gateway packet loss; provision-service hits its open-files limit during the scale-up",
        reference="https://slack.engineering/slacks-outage-on-january-4th-2021/",
        window=(w0, w1),
        cause_services=("netmon", "tgw", "transit-gateway", "network"),
        cause_kind="external",
        cause_evidence="packet loss",
        mechanism=("too many open files", "RequestLimitExceeded"),
        affected=("slack-web", "provision-service"),
        detection=("Message send success below 99.9%", dd, "slack"),
        notes="Published times (PST). The autoscaler's scale-in under low CPU worsens it; the mitigation is the raised "
        "open-files limit, then the scale-up.",
    )


CERT_FAILURE = "transfer certificate creation failed: invalid date 2013-02-29 (valid-to = valid-from + 1 year)"


def leap_day_2012(story: Story) -> Plan:
    """Azure, 2012-02-29: transfer certificates valid to 2013-02-29 cannot be created; hosts marked HumanInvestigate."""
    w0, w1 = _ts("2012-02-28T23:00:00Z"), _ts("2012-02-29T04:00:00Z")
    midnight = _ts("2012-02-29T00:00:00.184Z")
    flag = _ts("2012-02-29T02:55:20Z")
    ga = story.file("guest-agent/agent.jsonl", "JSON lines, no ECS names (timestamp/level/application/host/message)")
    ha = story.file("host-agent/syslog", "syslog RFC 5424, app host-agent")
    fc = story.file("fabric/fc.log", "log4j, naive UTC")
    gf = story.file(
        "alerts/grafana.ndjson", "Grafana Alerting webhooks, NDJSON; labels namespace=compute, deployment=guest"
    )
    for t in story.times(4, w0, w1):
        vm = f"vm-{story.ms(10**5, 10**6):x}"
        if midnight <= t < flag:
            story.put(
                ga,
                t,
                jline(
                    timestamp=iso_z(t),
                    level="error",
                    application="guest-agent",
                    host=vm,
                    message=CERT_FAILURE,
                ),
                "bad",
            )
        else:
            story.put(
                ga,
                t,
                jline(
                    timestamp=iso_z(t),
                    level="info",
                    application="guest-agent",
                    host=vm,
                    message="transfer certificate created; guest ready",
                ),
            )
    first = midnight
    story.put(
        ga,
        first,
        jline(
            timestamp=iso_z(first),
            level="error",
            application="guest-agent",
            host="vm-1c2f0a",
            message=CERT_FAILURE,
        ),
        "bad,cause",
    )
    for t in story.times(2, midnight + pd.Timedelta("25min"), flag + pd.Timedelta("6min")):
        story.put(
            ha,
            t,
            syslog5424(
                t,
                f"nd-{story.ms(10, 99)}",
                "host-agent",
                900,
                f"heartbeat timeout 25m for guest vm-{story.ms(10**5, 10**6):x}; "
                f"reinitializing VM (attempt {story.ms(1, 4)}/3)",
                "err",
            ),
            "bad",
        )
    for t in story.times(1.5, midnight + pd.Timedelta("75min"), flag + pd.Timedelta("6min")):
        story.put(
            ha,
            t,
            syslog5424(
                t,
                f"nd-{story.ms(10, 99)}",
                "host-agent",
                900,
                "3 VM reinitializations failed; node marked HumanInvestigate",
                "crit",
            ),
            "bad",
        )
    for t in story.times(1, w0, w1):
        story.put(ha, t, syslog5424(t, f"nd-{story.ms(10, 99)}", "host-agent", 900, "heartbeat ok for 12 guests"))
    for t in story.times(1, w0, w1):
        story.put(
            fc,
            t,
            log4j(
                t,
                "INFO",
                "healing",
                "fabric.controller.ServiceHealing",
                f"migrating {story.ms(1, 6)} VMs from nd-{story.ms(10, 99)}",
            ),
        )
    t = _ts("2012-02-29T02:10:00Z")
    story.put(
        fc,
        t,
        log4j(
            t,
            "ERROR",
            "healing",
            "fabric.controller.ServiceHealing",
            "HumanInvestigate threshold reached in cluster c-112; service healing halted",
        ),
    )
    t = _ts("2012-02-28T23:14:00Z")
    story.put(
        fc,
        t,
        log4j(t, "INFO", "deploy", "fabric.controller.Rollout", "deployed host OS update 2012.02.2 to cluster c-301"),
    )
    story.put(
        fc,
        flag,
        log4j(flag, "INFO", "ops", "fabric.controller.Flags", "feature flag service_management disabled worldwide"),
        "mitigate",
    )
    for t in story.times(0.04, w0, w1):
        story.put(
            fc, t, log4j(t, "ERROR", "rdfe", "fabric.controller.Rdfe", "storage account throttled: 503 ServerBusy")
        )
    t = w0 + pd.Timedelta("8min")
    story.put(ha, t, syslog5424(t, "nd-12", "host-agent", 900, "host-agent restarted on nd-12 (routine update)"))
    a0, a1 = _ts("2012-02-28T23:20:00Z"), _ts("2012-02-28T23:34:00Z")
    story.put(
        gf,
        a0,
        grafana(
            a0,
            "firing",
            "StorageLatencyHigh",
            {"service": "xstore", "severity": "warning"},
            "storage p99 latency above 200ms",
            a0,
        ),
    )
    story.put(
        gf,
        a1,
        grafana(
            a1,
            "resolved",
            "StorageLatencyHigh",
            {"service": "xstore", "severity": "warning"},
            "storage p99 latency above 200ms",
            a0,
        ),
    )
    fired = _ts("2012-02-29T01:15:30Z")
    labels = {"namespace": "compute", "deployment": "guest", "severity": "critical"}
    story.put(
        gf,
        fired,
        grafana(
            fired, "firing", "VMProvisioningFailures", labels, "new VMs fail to initialize in several clusters", fired
        ),
        "fired",
    )
    res = flag + pd.Timedelta("16min")
    story.put(
        gf,
        res,
        grafana(
            res, "resolved", "VMProvisioningFailures", labels, "new VMs fail to initialize in several clusters", fired
        ),
        "resolved",
    )
    return Plan(
        title="Azure leap day: transfer certificates valid to 2013-02-29 cannot be created",
        reference="https://azure.microsoft.com/en-us/blog/summary-of-windows-azure-service-disruption-on-feb-29th-2012/",
        window=(w0, w1),
        cause_services=("guest-agent", "guest"),
        cause_kind="external",
        cause_evidence="invalid date 2013-02-29",
        mechanism=("transfer certificate", "invalid date"),
        affected=("guest-agent", "host-agent"),
        detection=("VMProvisioningFailures", gf, "guest"),
        notes="Disabling service management worldwide stops new VM creation, so the certificate errors stop; the fix "
        "and the secondary network-plugin outage are outside this window.",
    )


def retry_storm(story: Story) -> Plan:
    """A retry storm: a cache TTL cut makes inventory slow; checkout's retries without backoff keep it down."""
    w0, w1 = _ts("2023-05-16T13:00:00Z"), _ts("2023-05-16T15:30:00Z")
    change = _ts("2023-05-16T14:02:11Z")
    storm = change + pd.Timedelta("3min 40s")
    limit = _ts("2023-05-16T14:38:30Z")
    calm = limit + pd.Timedelta("3min")
    inv = story.file(
        "containers/inventory-6d5f8b7c9-x2lq4_shop_inventory-3b1f9a7c2d4e.log",
        "Kubernetes CRI container log, JSON inside (ts/level/msg)",
    )
    chk = story.file("checkout/application.log", "Spring Boot without an application name")
    ing = story.file(
        "ingress/access.log", "nginx combined + request time (the mesh ingress; Envoy's layout is not supported)"
    )
    og = story.file("alerts/opsgenie.ndjson", "Opsgenie webhook actions, NDJSON; tags service:inventory-api")
    nodes = story.file("nodes/syslog", "syslog RFC 3164 with priority (nodes, helm)")
    hosts_syslog(story, nodes, w0, w1, ("node-a1", "node-a2"))
    t = _ts("2023-05-16T13:10:30Z")
    helm = "helm upgrade promotions charts/promotions --version 1.8.0 --namespace shop"
    story.put(nodes, t, syslog3164(t, "node-a1", "helm", 4410, helm))
    t = _ts("2023-05-16T13:09:00Z")
    story.put(
        chk,
        t,
        spring(
            t,
            "INFO",
            "o.s.b.StartupInfoLogger",
            "Started CheckoutApplication in 9.2 seconds (process running for 10.1)",
        ),
    )
    story.put(
        inv,
        change,
        cri(
            change,
            jline(
                ts=iso_z(change),
                level="info",
                msg="config reloaded: cache ttl changed from 300s to 5s (configmap inventory-cache)",
            ),
        ),
        "cause",
    )
    for t in story.times(4, w0, w1):
        if storm <= t < calm:
            story.put(
                inv,
                t,
                cri(
                    t,
                    jline(
                        ts=iso_z(t),
                        level="error",
                        msg="rejecting request: request queue full (in-flight 2048/2048)",
                        path=f"/stock/sku-{story.ms(100, 999)}",
                    ),
                ),
                "bad",
            )
        else:
            latency = story.ms(300, 1900) if change <= t < storm else story.ms(3, 40)
            story.put(
                inv,
                t,
                cri(t, jline(ts=iso_z(t), level="info", msg=f"GET /stock/sku-{story.ms(100, 999)} 200 {latency}ms")),
            )
    for t in story.times(0.04, w0, w1):
        story.put(
            inv,
            t,
            cri(t, jline(ts=iso_z(t), level="error", msg="redis: connection reset by peer (replica resync)"), "stderr"),
        )
    t = _ts("2023-05-16T13:14:00Z")
    story.put(
        inv,
        t,
        cri(
            t, jline(ts=iso_z(t), level="info", msg="inventory container restarted by kubelet (liveness probe tuning)")
        ),
    )
    for t in story.times(6, w0, w1):
        if storm <= t < calm:
            if story.rng.random() < 0.6:
                story.put(
                    chk,
                    t,
                    spring(
                        t,
                        "WARN",
                        "c.s.c.client.InventoryClient",
                        f"inventory call timed out after 2000ms, retrying (attempt {story.ms(2, 4)}/3)",
                    ),
                )
            else:
                story.put(
                    chk,
                    t,
                    spring(
                        t,
                        "ERROR",
                        "c.s.c.api.CheckoutController",
                        "checkout failed: inventory unavailable after 3 attempts",
                    )
                    + "\norg.springframework.web.client.ResourceAccessException: I/O error on GET request for "
                    '"http://inventory/stock": Read timed out'
                    "\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)",
                    "bad",
                )
        else:
            story.put(
                chk, t, spring(t, "INFO", "c.s.c.api.CheckoutController", f"order {story.ms(10**6, 10**7)} placed")
            )
    story.put(
        chk,
        limit,
        spring(
            limit,
            "INFO",
            "c.s.c.config.Resilience",
            "rate limit applied: checkout->inventory 200 rps; retries now use exponential backoff",
        ),
        "mitigate",
    )
    for t in story.times(0.03, w0, w1):
        story.put(
            chk, t, spring(t, "ERROR", "c.s.c.client.TaxClient", "tax quote failed: 400 Bad Request (invalid postcode)")
        )

    def ing_fail(t: pd.Timestamp, url: str) -> int | None:
        return (
            503
            if storm + pd.Timedelta("5s") <= t < calm and url.startswith("/api/checkout") and story.rng.random() < 0.7
            else None
        )

    edge_traffic(
        story,
        ing,
        w0,
        w1,
        8,
        (("POST", "/api/checkout"), ("GET", "/api/cart"), ("GET", "/api/products"), ("POST", "/api/checkout/confirm")),
        ing_fail,
    )
    d0, d1 = _ts("2023-05-16T13:25:00Z"), _ts("2023-05-16T13:37:00Z")
    story.put(og, d0, opsgenie(d0, "Create", "og-search", "search p95 latency above 1s", ["service:search"], d0))
    story.put(og, d1, opsgenie(d1, "Close", "og-search", "search p95 latency above 1s", ["service:search"], d0))
    fired = storm + pd.Timedelta("2min 5s")
    tags = ["service:inventory-api", "team:shop"]
    story.put(og, fired, opsgenie(fired, "Create", "og-inv", "inventory 5xx above 10%", tags, fired), "fired")
    story.put(
        og,
        fired + pd.Timedelta("2min"),
        opsgenie(fired + pd.Timedelta("2min"), "Acknowledge", "og-inv", "inventory 5xx above 10%", tags, fired),
    )
    res = calm + pd.Timedelta("5min")
    story.put(og, res, opsgenie(res, "Close", "og-inv", "inventory 5xx above 10%", tags, fired), "resolved")
    return Plan(
        title="Retry storm: a cache TTL cut slows inventory, and checkout's retries keep it down",
        reference="https://sre.google/sre-book/addressing-cascading-failures/",
        window=(w0, w1),
        cause_services=("inventory",),
        cause_kind="change",
        cause_evidence="cache ttl changed from 300s to 5s",
        mechanism=("request queue full",),
        affected=("inventory", "checkout", "ingress"),
        detection=("inventory 5xx above 10%", og, "inventory-api"),
        notes="A composite shape (SRE book, cascading failures): retries without backoff amplify a slowdown "
        "into an overload.",
    )


def memory_leak(story: Story) -> Plan:
    """A memory leak shipped in a release: OOM kills begin 80 minutes later; rolled back."""
    w0, w1 = _ts("2022-09-13T07:00:00Z"), _ts("2022-09-13T10:30:00Z")
    deploy = _ts("2022-09-13T07:41:30Z")
    first_oom = _ts("2022-09-13T09:01:47Z")
    rollback = _ts("2022-09-13T09:27:15Z")
    settled = rollback + pd.Timedelta("2min 30s")
    ci = story.file("deploy/ci.logfmt", "logfmt (CI runner)")
    rec = story.file("recommender/recommender.log", "log4j, naive UTC, stack traces")
    nodes = story.file("nodes/syslog", "syslog RFC 3164 with priority (kernel, kubelet)")
    gw = story.file("gateway/access.log", "nginx combined + request time")
    dd = story.file(
        "alerts/datadog.ndjson", "Datadog monitor webhooks, NDJSON; tags kube_namespace/kube_deployment only"
    )
    t = _ts("2022-09-13T07:12:00Z")
    story.put(
        ci,
        t,
        logfmt(
            time=iso_z(t),
            level="info",
            app="ci-runner",
            msg="helm upgrade search charts/search --version 2.8.1 --namespace web",
        ),
    )
    story.put(
        ci,
        deploy,
        logfmt(
            time=iso_z(deploy),
            level="info",
            app="ci-runner",
            pipeline="recommender-cd#913",
            msg="helm upgrade recommender charts/recommender --version 5.2.0 --namespace ml",
        ),
        "cause",
    )
    story.put(
        ci,
        rollback,
        logfmt(
            time=iso_z(rollback),
            level="info",
            app="ci-runner",
            msg="helm rollback recommender 41 --namespace ml (back to 5.1.3)",
        ),
        "mitigate",
    )
    pods = ("recommender-5c9-abcde", "recommender-5c9-fghij", "recommender-5c9-klmno")
    for t in story.times(2, w0, w1):
        heap = 35 + (60 * min(1.0, max(0.0, (t - deploy) / (first_oom - deploy))) if deploy <= t < settled else 0)
        story.put(
            rec,
            t,
            log4j(
                t,
                "INFO",
                "metrics",
                "com.shop.recs.HeapReporter",
                f"heap used {heap + story.ms(0, 4):.0f}% of 2048m after GC",
            ),
        )
    ooms = [first_oom, *story.times(1.2, first_oom + pd.Timedelta("20s"), settled)]
    for t in ooms:
        pod = story.pick(pods)
        story.put(
            rec,
            t,
            log4j(
                t,
                "ERROR",
                "http-nio-8080-exec-4",
                "com.shop.recs.ScoringService",
                "request failed: java.lang.OutOfMemoryError: Java heap space",
            )
            + "\njava.lang.OutOfMemoryError: Java heap space\n\tat com.shop.recs.FeatureCache.put(FeatureCache.java:88)"
            "\n\tat com.shop.recs.ScoringService.score(ScoringService.java:142)",
            "bad",
        )
        k = t + pd.Timedelta(f"{story.ms(800, 3000)}ms")
        story.put(
            nodes,
            k,
            syslog3164(
                k,
                f"node-{story.ms(1, 6)}",
                "kernel",
                None,
                f"Out of memory: Killed process {story.ms(2000, 9000)} (java) total-vm:4194304kB, anon-rss:2097152kB",
                "err",
            ),
            "bad",
        )
        k2 = k + pd.Timedelta("1.5s")
        story.put(
            nodes,
            k2,
            syslog3164(
                k2,
                f"node-{story.ms(1, 6)}",
                "kubelet",
                1290,
                f"Back-off restarting failed container recommender in pod {pod}",
                "warning",
            ),
        )
    hosts_syslog(story, nodes, w0, w1, ("node-1", "node-2", "node-3"))

    def gw_fail(t: pd.Timestamp, url: str) -> int | None:
        return (
            503
            if first_oom + pd.Timedelta("1s") <= t < settled
            and url.startswith("/api/recommendations")
            and story.rng.random() < 0.45
            else None
        )

    edge_traffic(
        story,
        gw,
        w0,
        w1,
        10,
        (
            ("GET", "/api/recommendations/home"),
            ("GET", "/api/recommendations/cart"),
            ("GET", "/api/products"),
            ("GET", "/"),
        ),
        gw_fail,
    )
    for t in story.times(0.04, w0, w1):
        story.put(
            rec,
            t,
            log4j(
                t,
                "ERROR",
                "kafka-consumer",
                "com.shop.recs.EventConsumer",
                "offset commit failed: rebalance in progress",
            ),
        )
    d0, d1 = _ts("2022-09-13T07:20:00Z"), _ts("2022-09-13T07:33:00Z")
    story.put(
        dd,
        d0,
        datadog(d0, "Triggered", "cyc-disk", "Disk usage above 85%", "host:node-2", "host:node-2,env:prod", "node-2"),
    )
    story.put(
        dd,
        d1,
        datadog(d1, "Recovered", "cyc-disk", "Disk usage above 85%", "host:node-2", "host:node-2,env:prod", "node-2"),
    )
    fired = first_oom + pd.Timedelta("2min 12s")
    tags = "kube_namespace:ml,kube_deployment:recommender,env:prod"
    story.put(
        dd,
        fired,
        datadog(
            fired,
            "Triggered",
            "cyc-oom",
            "Recommender containers OOMKilled",
            "kube_deployment:recommender",
            tags,
            "node-1",
        ),
        "fired",
    )
    res = settled + pd.Timedelta("5min")
    story.put(
        dd,
        res,
        datadog(
            res,
            "Recovered",
            "cyc-oom",
            "Recommender containers OOMKilled",
            "kube_deployment:recommender",
            tags,
            "node-1",
        ),
        "resolved",
    )
    return Plan(
        title="Memory leak: recommender 5.2.0 leaks its feature cache; OOM kills 80 minutes after the deploy",
        reference="https://github.com/dastergon/postmortem-templates (composite: OOM after a release)",
        window=(w0, w1),
        cause_services=("recommender",),
        cause_kind="change",
        cause_evidence="helm upgrade recommender",
        mechanism=("OutOfMemoryError", "Out of memory"),
        affected=("recommender", "kernel", "gateway"),
        detection=("Recommender containers OOMKilled", dd, "kube_deployment:recommender"),
        notes="The deploy is 80 minutes before the first OOM kill: inside the default 2 h change look-back.",
    )


def credential_stuffing(story: Story) -> Plan:
    """A credential-stuffing breach (after 23andMe 2023): failed logins from a few ranges, take-overs, exports."""
    w0, w1 = _ts("2023-10-01T01:00:00Z"), _ts("2023-10-01T03:30:00Z")
    attack0 = _ts("2023-10-01T01:52:07Z")
    block = _ts("2023-10-01T02:31:40Z")
    auth = story.file(
        "containers/auth-7c9d5f8b6-q8w2e_bank_auth-9e8d7c6b5a41.log", "Kubernetes CRI container log, JSON inside"
    )
    acct = story.file(
        "containers/accounts-api-58b7c9d4f-z7x6c_bank_accounts-api-1a2b3c4d5e6f.log",
        "Kubernetes CRI container log, JSON inside",
    )
    ing = story.file("ingress/access.log.1", "nginx combined + request time, rotated and gzip-compressed", gz=True)
    pdf = story.file("alerts/pagerduty.ndjson", "PagerDuty v3 webhooks, NDJSON; service 'auth-service'")
    users = [f"u{100000 + k}" for k in range(4000)]
    ranges = ("198.18.7", "198.18.44", "198.19.201")  # benchmarking space (RFC 2544), never real networks
    attackers = [f"{r}.{h}" for r in ranges for h in (11, 23, 37, 52, 68, 91)]
    ua_bot = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/117.0 Safari/537.36"

    def login(t: pd.Timestamp, user: str, ip: str, ok: bool, tag: str | None) -> None:
        inner = jline(
            time=iso_z(t),
            level="info" if ok else "warn",
            msg="login succeeded" if ok else "login failed: invalid password",
            event="login",
            outcome="success" if ok else "failure",
            user=user,
            ip=ip,
        )
        story.put(auth, t, cri(t, inner), tag)
        story.put(
            ing,
            t,
            access(
                t,
                ip,
                "POST",
                "/api/v2/session",
                200 if ok else 401,
                story.ms(200, 900),
                ua_bot if tag else story.pick(USER_AGENTS),
                story.ms(30, 300) / 1000,
            ),
        )

    t = w0 + pd.Timedelta("7min")
    story.put(auth, t, cri(t, jline(time=iso_z(t), level="info", msg="auth container restarted after node drain")))
    # Baseline: customers log in, a few mistype their password.
    for t in story.times(4, w0, w1):
        login(t, story.pick(users[:3000]), client_ip(story), story.rng.random() > 0.06, None)
    # The attack: ~40 minutes from 18 addresses in 3 ranges, leaked credentials of 3,000 accounts.
    compromised: dict[str, tuple[pd.Timestamp, str]] = {}
    times = [attack0, *story.times(45, attack0 + pd.Timedelta("1s"), block)]
    for t in times:
        ip = story.pick(attackers)
        user = story.pick(users)
        ok = story.rng.random() < 0.02 and user not in compromised
        if ok:
            compromised[user] = (t, ip)
        login(t, user, ip, ok, "attack_ok" if ok else "bad,cause" if t == attack0 else "bad")
    for t in story.times(4, block, block + pd.Timedelta("2min")):
        ip = story.pick(attackers)
        story.put(ing, t, access(t, ip, "POST", "/api/v2/session", 403, 150, ua_bot, 0.001))
    story.put(
        auth,
        block,
        cri(
            block,
            jline(
                time=iso_z(block),
                level="info",
                msg="blocked IP ranges 198.18.7.0/24, 198.18.44.0/24, 198.19.201.0/24 at the WAF",
            ),
        ),
        "mitigate",
    )
    t = block + pd.Timedelta("6min")
    story.put(
        auth,
        t,
        cri(
            t,
            jline(
                time=iso_z(t),
                level="info",
                msg=f"forced password reset for {len(compromised)} accounts; sessions revoked",
            ),
        ),
    )
    # What the taken-over accounts did: statement exports and e-mail changes, from the attacker's addresses.
    ops = 0
    for user, (t_ok, ip) in sorted(compromised.items(), key=lambda kv: kv[1][0].value):
        for k in range(1 + int(story.rng.random() < 0.5)):
            t = t_ok + pd.Timedelta(seconds=40 + 90 * k + story.ms(0, 60))
            if t >= block:
                break
            if k == 0:
                inner = jline(
                    time=iso_z(t),
                    level="info",
                    msg="statement export created",
                    action="export",
                    user=user,
                    ip=ip,
                    path="/api/v1/statements/export",
                    rows=story.ms(200, 5000),
                )
            else:
                inner = jline(
                    time=iso_z(t), level="info", msg="email address changed", action="change_email", user=user, ip=ip
                )
            story.put(acct, t, cri(t, inner), "data_op")
            ops += 1
    # Customers export statements too (never a taken-over account: its owner's exports would be ambiguous).
    customers = [u for u in users[:3000] if u not in compromised]
    for t in story.times(0.3, w0, w1):
        inner = jline(
            time=iso_z(t),
            level="info",
            msg="statement export created",
            action="export",
            user=story.pick(customers),
            ip=client_ip(story),
            path="/api/v1/statements/export",
            rows=story.ms(10, 300),
        )
        story.put(acct, t, cri(t, inner))
    for t in story.times(3, w0, w1):
        story.put(
            acct,
            t,
            cri(
                t,
                jline(
                    time=iso_z(t), level="info", msg="GET /api/v1/accounts/summary 200", user=story.pick(users[:3000])
                ),
            ),
        )
    for t in story.times(0.05, w0, w1):
        story.put(
            acct, t, cri(t, jline(time=iso_z(t), level="error", msg="ledger call failed: deadline exceeded"), "stderr")
        )
    t = _ts("2023-10-01T01:08:00Z")
    story.put(acct, t, cri(t, jline(time=iso_z(t), level="info", msg="Deploying accounts-api version 4.11.2")))
    b0, b1 = _ts("2023-10-01T01:15:00Z"), _ts("2023-10-01T01:29:00Z")
    story.put(
        pdf,
        b0,
        pagerduty(
            b0, "incident.triggered", "Q9BATCH", 881, "Nightly statement batch late", "statements-batch", "PagerDuty"
        ),
    )
    story.put(
        pdf,
        b1,
        pagerduty(
            b1, "incident.resolved", "Q9BATCH", 881, "Nightly statement batch late", "statements-batch", "Batch on call"
        ),
    )
    fired = attack0 + pd.Timedelta("4min 40s")
    story.put(
        pdf,
        fired,
        pagerduty(
            fired, "incident.triggered", "Q9AUTH", 882, "Login failure ratio above 30%", "auth-service", "PagerDuty"
        ),
        "fired",
    )
    ack = fired + pd.Timedelta("3min")
    story.put(
        pdf,
        ack,
        pagerduty(
            ack,
            "incident.acknowledged",
            "Q9AUTH",
            882,
            "Login failure ratio above 30%",
            "auth-service",
            "Security on call",
        ),
    )
    res = block + pd.Timedelta("8min")
    story.put(
        pdf,
        res,
        pagerduty(
            res, "incident.resolved", "Q9AUTH", 882, "Login failure ratio above 30%", "auth-service", "Security on call"
        ),
        "resolved",
    )
    breach = Breach(
        attacker_ips=tuple(sorted({ip for ip in attackers})),
        attacker_ranges=tuple(f"{r}.0/24" for r in ranges),
        compromised=tuple(sorted(compromised)),
        data_operations=ops,
    )
    return Plan(
        title="Credential stuffing: failed logins from three ranges, account take-overs, statement exports",
        reference="https://www.itpro.com/security/23andme-failed-to-take-basic-steps-to-safeguard-customer-data",
        window=(w0, w1),
        cause_services=("auth",),
        cause_kind="external",
        cause_evidence="login failed",
        mechanism=("login failed", "invalid password"),
        affected=("auth",),
        detection=("Login failure ratio above 30%", pdf, "auth-service"),
        breach=breach,
        notes="The attack is the trigger. Every attacker address sends failures; data operations count only "
        "those of the "
        "taken-over accounts after their take-over (legitimate customers export statements too).",
    )


def bad_deploy_pool(story: Story) -> Plan:
    """A bad deploy (Spinnaker) of orders-api leaks JDBC connections; HikariCP's pool runs dry; rolled back."""
    w0, w1 = _ts("2024-06-18T12:00:00Z"), _ts("2024-06-18T14:30:00Z")
    deploy = _ts("2024-06-18T13:04:12Z")
    live = deploy + pd.Timedelta("1min 35s")
    exhausted = live + pd.Timedelta("4min 10s")
    rollback = _ts("2024-06-18T13:33:50Z")
    healed = rollback + pd.Timedelta("1min 50s")
    spk = story.file("deploy/spinnaker.jsonl", "JSON lines, no ECS names (timestamp/level/application/message)")
    app = story.file("orders-api/application.log", "Spring Boot without an application name, Java stack traces")
    gw = story.file("gateway/access.log", "nginx combined + request time")
    gf = story.file(
        "alerts/grafana.ndjson", "Grafana Alerting webhooks, NDJSON; labels namespace=shop, deployment=orders"
    )
    t = _ts("2024-06-18T12:07:00Z")
    story.put(
        spk,
        t,
        jline(
            timestamp=iso_z(t),
            level="INFO",
            application="spinnaker",
            message="Deploying search-api version 8.4.0 to prod-eu (pipeline search-cd #77)",
        ),
    )
    story.put(
        spk,
        deploy,
        jline(
            timestamp=iso_z(deploy),
            level="INFO",
            application="spinnaker",
            message="Deploying orders-api version 3.2.0 to prod-eu (pipeline orders-cd #512)",
        ),
        "cause",
    )
    story.put(
        spk,
        rollback,
        jline(
            timestamp=iso_z(rollback),
            level="INFO",
            application="spinnaker",
            message="Rolling back orders-api to version 3.1.4 (pipeline orders-cd #513)",
        ),
        "mitigate",
    )
    story.put(
        app,
        live,
        spring(
            live,
            "INFO",
            "c.s.o.OrdersApiApplication",
            "Started OrdersApiApplication in 8.1 seconds (version 3.2.0)",
            "main",
        ),
    )
    for t in story.times(0.8, live, exhausted):
        story.put(
            app,
            t,
            spring(
                t,
                "WARN",
                "com.zaxxer.hikari.pool.ProxyLeakTask",
                f"Connection leak detection triggered for com.mysql.cj.jdbc.ConnectionImpl@"
                f"{story.ms(1 << 20, 1 << 24):x} on thread http-nio-8080-exec-{story.ms(1, 50)}",
                "housekeeper",
            ),
        )
    first = exhausted + pd.Timedelta("0.8s")
    for t in [first, *story.times(9, first + pd.Timedelta("1s"), healed)]:
        story.put(
            app,
            t,
            spring(
                t,
                "ERROR",
                "c.s.o.api.OrderController",
                "order lookup failed: HikariPool-1 - Connection is not available, request timed out after 30000ms.",
            )
            + "\njava.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
            "request timed out after 30000ms."
            "\n\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)"
            "\n\tat com.shop.orders.repo.OrderRepository.find(OrderRepository.java:41)",
            "bad",
        )
    for t in story.times(8, w0, w1):
        if not first <= t < healed:
            story.put(
                app,
                t,
                spring(
                    t,
                    "INFO",
                    "c.s.o.api.OrderController",
                    f"order {story.ms(10**6, 10**7)} served in {story.ms(5, 80)}ms",
                ),
            )
    for t in story.times(0.04, w0, w1):
        story.put(
            app, t, spring(t, "ERROR", "c.s.o.client.PricingClient", "pricing call failed: 404 Not Found for sku-00000")
        )
    t = w0 + pd.Timedelta("25min")
    story.put(
        app,
        t,
        spring(
            t,
            "INFO",
            "o.s.b.w.e.tomcat.GracefulShutdown",
            "Tomcat restarted after node drain (routine node upgrade)",
            "main",
        ),
    )

    def gw_fail(t: pd.Timestamp, url: str) -> int | None:
        return (
            story.pick((500, 503))
            if first <= t < healed and url.startswith("/api/orders") and story.rng.random() < 0.75
            else None
        )

    edge_traffic(
        story,
        gw,
        w0,
        w1,
        10,
        (
            ("GET", "/api/orders/recent"),
            ("POST", "/api/orders"),
            ("GET", "/api/search"),
            ("GET", "/api/orders/42/status"),
        ),
        gw_fail,
    )
    s0, s1 = _ts("2024-06-18T12:15:00Z"), _ts("2024-06-18T12:26:00Z")
    story.put(
        gf,
        s0,
        grafana(
            s0,
            "firing",
            "SearchLatencyHigh",
            {"namespace": "shop", "deployment": "search-api", "severity": "warning"},
            "search p95 above 800ms",
            s0,
        ),
    )
    story.put(
        gf,
        s1,
        grafana(
            s1,
            "resolved",
            "SearchLatencyHigh",
            {"namespace": "shop", "deployment": "search-api", "severity": "warning"},
            "search p95 above 800ms",
            s0,
        ),
    )
    fired = first + pd.Timedelta("2min 30s")
    labels = {"namespace": "shop", "deployment": "orders", "severity": "critical"}
    story.put(
        gf, fired, grafana(fired, "firing", "OrdersErrorRateHigh", labels, "orders 5xx above 5% for 2m", fired), "fired"
    )
    res = healed + pd.Timedelta("4min")
    story.put(
        gf,
        res,
        grafana(res, "resolved", "OrdersErrorRateHigh", labels, "orders 5xx above 5% for 2m", fired),
        "resolved",
    )
    return Plan(
        title="Bad deploy: orders-api 3.2.0 leaks JDBC connections until HikariCP's pool is empty",
        reference="https://github.com/danluu/post-mortems (composite: connection leak after a release)",
        window=(w0, w1),
        cause_services=("orders-api", "orders"),
        cause_kind="change",
        cause_evidence="Deploying orders-api version 3.2.0",
        mechanism=("Connection is not available",),
        affected=("orders-api", "gateway"),
        detection=("OrdersErrorRateHigh", gf, "orders"),
        notes="Spinnaker logs the deploy of another service; the pool runs dry at the application, "
        "not at the database.",
    )


#: Variant 1 of each incident: its trigger line as other tools and people word it (old -> new text), the
#: trigger's evidence substring in that wording, and the mechanism's words when they change too.
PARAPHRASES: dict[str, tuple[tuple[tuple[str, str], ...], str, tuple[str, ...] | None]] = {
    "gitlab_2017_db_deletion": (
        (
            (
                "COMMAND=/bin/rm -rf /var/opt/gitlab/postgresql/data",
                "COMMAND=/usr/bin/rm -r -f /var/opt/gitlab/postgresql/data/",
            ),
        ),
        "rm -r -f /var/opt/gitlab/postgresql/data/",
        None,
    ),
    "aws_s3_2017_capacity_command": (
        (
            (
                "capacity decreased from 2400 to 620 hosts (remove-capacity --subsystem index --count 1780)",
                "playbook remove-capacity: 1780 of 2400 index hosts taken out of service",
            ),
        ),
        "1780 of 2400 index hosts taken out of service",
        None,
    ),
    "cloudflare_2019_waf_regex": (
        (
            (
                "deployed WAF managed rules release 2019-07-02.1 (simulate) to all PoPs",
                "published managed ruleset 2019-07-02.1 for the WAF to every PoP (mode=simulate)",
            ),
        ),
        "published managed ruleset",
        None,
    ),
    "fastly_2021_config_push": (
        (
            (
                "config pushed for customer service svc-7Xy2 version 42 to all POPs",
                "customer cust-4471 activated version 42 of service svc-7Xy2 (global)",
            ),
        ),
        "activated version 42 of service svc-7Xy2",
        None,
    ),
    "facebook_2021_bgp_withdrawal": (
        (
            (
                "configuration pushed to 96 backbone routers: assess global backbone capacity",
                "maintenance command applied on 96 backbone routers: assess global backbone capacity",
            ),
        ),
        "maintenance command applied on 96 backbone routers",
        None,
    ),
    "github_2018_partition": (
        (
            (
                "%LINK-3-UPDOWN: Interface Ethernet49/1, changed state to down",
                "Ethernet49/1 is down, line protocol is down (notconnect)",
            ),
        ),
        "Ethernet49/1 is down",
        None,
    ),
    "slack_2021_capacity": (
        (
            (
                "transit gateway tgw-0a1b packet loss 3.8% on web->backend paths",
                "tgw-0a1b: 3.8% of packets dropped between web and backend subnets",
            ),
        ),
        "3.8% of packets dropped",
        None,
    ),
    "azure_2012_leap_day_certificate": (
        ((CERT_FAILURE, "cannot create transfer certificate: 2013-02-29 is not a valid date (valid-from year + 1)"),),
        "2013-02-29 is not a valid date",
        ("transfer certificate", "not a valid date"),
    ),
    "retry_storm": (
        (
            (
                "config reloaded: cache ttl changed from 300s to 5s (configmap inventory-cache)",
                "applied configmap inventory-cache: ttl 300s -> 5s",
            ),
        ),
        "ttl 300s -> 5s",
        None,
    ),
    "memory_leak_oom": (
        (
            (
                "helm upgrade recommender charts/recommender --version 5.2.0 --namespace ml",
                "kubectl set image deployment/recommender recommender=registry.example.net/ml/recommender:5.2.0 -n ml",
            ),
        ),
        "kubectl set image deployment/recommender",
        None,
    ),
    "credential_stuffing_breach": (
        (("login failed: invalid password", "authentication failed: bad credentials"),),
        "authentication failed",
        ("authentication failed", "bad credentials"),
    ),
    "bad_deploy_pool_exhaustion": (
        (
            (
                "Deploying orders-api version 3.2.0 to prod-eu (pipeline orders-cd #512)",
                "Starting deployment of orders-api 3.2.0 to prod-eu (pipeline orders-cd #512)",
            ),
        ),
        "deployment of orders-api 3.2.0",
        None,
    ),
}

#: Variant 2: a second held-out wording of each trigger, written without looking at what the analysis
#: matches, with other verbs, word orders and tools' phrasings than variant 1's (same layout as
#: :data:`PARAPHRASES`). The new text is pasted into the written line, so it holds no double quote or backslash.
PARAPHRASES_2: dict[str, tuple[tuple[tuple[str, str], ...], str, tuple[str, ...] | None]] = {
    "gitlab_2017_db_deletion": (
        (
            (
                "COMMAND=/bin/rm -rf /var/opt/gitlab/postgresql/data",
                "COMMAND=/usr/bin/find /var/opt/gitlab/postgresql/data -mindepth 1 -delete",
            ),
        ),
        "find /var/opt/gitlab/postgresql/data -mindepth 1 -delete",
        None,
    ),
    "aws_s3_2017_capacity_command": (
        (
            (
                "capacity decreased from 2400 to 620 hosts (remove-capacity --subsystem index --count 1780)",
                "runbook step 4 done on s3-index: 1780 hosts drained, 620 left in rotation",
            ),
        ),
        "1780 hosts drained, 620 left in rotation",
        None,
    ),
    "cloudflare_2019_waf_regex": (
        (
            (
                "deployed WAF managed rules release 2019-07-02.1 (simulate) to all PoPs",
                "WAF managed rules 2019-07-02.1 now serving on every PoP (simulate)",
            ),
        ),
        "now serving on every PoP",
        None,
    ),
    "fastly_2021_config_push": (
        (
            (
                "config pushed for customer service svc-7Xy2 version 42 to all POPs",
                "customer cust-4471 promoted svc-7Xy2 to v42 across the edge",
            ),
        ),
        "promoted svc-7Xy2 to v42",
        None,
    ),
    "facebook_2021_bgp_withdrawal": (
        (
            (
                "configuration pushed to 96 backbone routers: assess global backbone capacity",
                "job capacity-assessment kicked off against 96 backbone routers (assess global backbone capacity)",
            ),
        ),
        "kicked off against 96 backbone routers",
        None,
    ),
    "github_2018_partition": (
        (
            (
                "%LINK-3-UPDOWN: Interface Ethernet49/1, changed state to down",
                "%PORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet49/1 is down (Link failure)",
            ),
        ),
        "IF_DOWN_LINK_FAILURE",
        None,
    ),
    "slack_2021_capacity": (
        (
            (
                "transit gateway tgw-0a1b packet loss 3.8% on web->backend paths",
                "tgw-0a1b: web->backend path degraded, loss=3.8% over 60s",
            ),
        ),
        "web->backend path degraded",
        None,
    ),
    "azure_2012_leap_day_certificate": (
        ((CERT_FAILURE, "failed to issue transfer cert: 2013-02-29 out of range for date (expiry = issue + 1y)"),),
        "2013-02-29 out of range for date",
        ("transfer cert", "out of range for date"),
    ),
    "retry_storm": (
        (
            (
                "config reloaded: cache ttl changed from 300s to 5s (configmap inventory-cache)",
                "inventory-cache settings updated: cache.ttl=5s (was 300s)",
            ),
        ),
        "cache.ttl=5s (was 300s)",
        None,
    ),
    "memory_leak_oom": (
        (
            (
                "helm upgrade recommender charts/recommender --version 5.2.0 --namespace ml",
                "release recommender@5.2.0 promoted to ml (prod)",
            ),
        ),
        "release recommender@5.2.0 promoted",
        None,
    ),
    "credential_stuffing_breach": (
        (("login failed: invalid password", "sign-in rejected: password mismatch"),),
        "password mismatch",
        ("sign-in rejected", "password mismatch"),
    ),
    "bad_deploy_pool_exhaustion": (
        (
            (
                "Deploying orders-api version 3.2.0 to prod-eu (pipeline orders-cd #512)",
                "Pipeline orders-cd #512 finished stage prod-eu: orders-api 3.2.0",
            ),
        ),
        "finished stage prod-eu: orders-api 3.2.0",
        None,
    ),
}
#: The held-out wordings, by variant number.
VARIANTS = {1: PARAPHRASES, 2: PARAPHRASES_2}

#: The zoo, by name: generator and seed.
INCIDENTS: dict[str, tuple[Callable[[Story], Plan], int]] = {
    "gitlab_2017_db_deletion": (gitlab_2017, 2017_01_31),
    "aws_s3_2017_capacity_command": (aws_s3_2017, 2017_02_28),
    "cloudflare_2019_waf_regex": (cloudflare_waf_2019, 2019_07_02),
    "fastly_2021_config_push": (fastly_2021, 2021_06_08),
    "facebook_2021_bgp_withdrawal": (facebook_2021, 2021_10_04),
    "github_2018_partition": (github_2018, 2018_10_21),
    "slack_2021_capacity": (slack_2021, 2021_01_04),
    "azure_2012_leap_day_certificate": (leap_day_2012, 2012_02_29),
    "retry_storm": (retry_storm, 2023_05_16),
    "memory_leak_oom": (memory_leak, 2022_09_13),
    "credential_stuffing_breach": (credential_stuffing, 2023_10_01),
    "bad_deploy_pool_exhaustion": (bad_deploy_pool, 2024_06_18),
}


@dataclass(frozen=True)
class ZooIncident:
    """One written incident: its folder and its truth."""

    name: str
    folder: Path
    truth: ZooTruth


def build_incident(name: str, root: Path, reseed: int = 0, variant: int = 0) -> ZooIncident:
    """Write incident ``name`` to ``root/name`` (its logs in ``logs/``, and ``truth.json``) and return it."""
    generate, seed = INCIDENTS[name]
    story = Story(name, seed + reseed)
    plan = generate(story)
    if variant:
        story.paraphrases, plan.cause_evidence, mechanism = VARIANTS[variant][name]
        plan.mechanism = mechanism or plan.mechanism
    # The truth sits beside the logs, not among them: the analysis reads only logs/.
    folder = root / name / "logs"
    tagged = story.write(folder)
    truth = replace(_truth(name, plan, story, tagged), seed=seed + reseed, variant=variant)
    (root / name / "truth.json").write_text(json.dumps(truth.to_dict(), indent=2) + "\n", encoding="utf-8")
    return ZooIncident(name, folder, truth)


def build_zoo(root: Path, names: Iterable[str] | None = None, reseed: int = 0, variant: int = 0) -> list[ZooIncident]:
    """Write every incident (or those named) under ``root``. ``reseed`` shifts every seed: the same shapes
    with other random noise, to check that a result does not hang on one draw. ``variant=1`` words each
    trigger as other tools and people write it (:data:`PARAPHRASES`), ``variant=2`` otherwise again
    (:data:`PARAPHRASES_2`): held-out checks that the analysis was not fitted to the zoo's own wording."""
    return [build_incident(n, root, reseed, variant) for n in (names or INCIDENTS)]


def _truth(name: str, plan: Plan, story: Story, tagged: dict[str, list[Citation]]) -> ZooTruth:
    def first(tag: str) -> Citation | None:
        items = tagged.get(tag, [])
        return items[0] if items else None

    bad = tagged["bad"]
    fired, resolved, mitigate, cause = first("fired"), first("resolved"), first("mitigate"), first("cause")
    if cause is None:
        raise AssertionError(f"{name}: no cause record")
    evidence: dict[str, Citation] = {"onset": bad[0], "recovered": bad[-1]}
    for phase, cit in (("detected", fired), ("mitigated", mitigate), ("resolved", resolved)):
        if cit is not None:
            evidence[phase] = cit
    phases: dict[str, pd.Timestamp | None] = {p: (evidence[p].time if p in evidence else None) for p in PHASES}
    detection = None
    if plan.detection is not None and fired is not None:
        detection = Detection(plan.detection[0], plan.detection[1], plan.detection[2], fired, resolved)
    if cause.text.find(plan.cause_evidence) < 0:
        raise AssertionError(f"{name}: the cause's evidence substring is not in its line")
    return ZooTruth(
        name=name,
        title=plan.title,
        reference=plan.reference,
        window=plan.window,
        phases=phases,
        phase_evidence=evidence,
        cause=Cause(plan.cause_services, plan.cause_kind, plan.cause_evidence, cause),
        mechanism=plan.mechanism,
        affected=plan.affected,
        detection=detection,
        breach=plan.breach,
        files=dict(sorted(story.formats.items())),
        compressed=tuple(sorted(p + ".gz" for p in story.gzip)),
        notes=plan.notes,
    )


# ------------------------------------------------------------------------------------------------
# Scoring an analysis against the truth
# ------------------------------------------------------------------------------------------------


def loose_match(a: str | None, names: Iterable[str]) -> bool:
    """``payments`` matches ``payments-api`` (a name is a prefix of the other, up to a separator), any case."""
    if not a:
        return False
    x = a.strip().lower()
    for name in names:
        y = name.strip().lower()
        if x == y or any(x.startswith(y + s) or y.startswith(x + s) for s in "-_./: "):
            return True
    return False


@dataclass(frozen=True)
class Score:
    """How an analysis compares with an incident's truth."""

    name: str
    phase_errors: dict[str, float | None]  # seconds off (None = not found); phases the truth lacks are absent
    phase_ok: dict[str, bool]
    cause_rank: int | None  # 1-based rank of the first candidate that is the trigger
    candidates: tuple[str, ...]  # the first candidates, for the report
    mechanism_named: bool
    summary: (
        str  # what the draft's Summary holds: T = the trigger's line cited, M = a mechanism word, F = the fix cited
    )
    detection_ok: bool | None  # None when the truth has no detecting alert
    exposure_ok: bool | None  # None when there is no breach
    exposure_detail: str
    action_items: int
    seconds: float

    @property
    def phases_ok(self) -> bool:
        return all(self.phase_ok.values())


#: Candidate kinds that describe symptoms: where errors began, which errors are new. Their evidence can
#: hold the trigger's line (an expiry is its own first error), but they do not name a trigger.
SYMPTOM_KINDS = frozenset({"first_failing_service", "new_error_template"})


def candidate_is_cause(candidate: Any, cause: Cause) -> bool:
    """The candidate names the trigger: a trigger (a change, or an external cause), not a symptom; close in
    time; the trigger's line among its evidence (or in its summary); a service that is the trigger's
    (loosely; an external cause may have none)."""
    if candidate.kind in SYMPTOM_KINDS:
        return False
    texts = [e.message for e in candidate.evidence] + [candidate.summary]
    times = [e.time for e in candidate.evidence] + ([candidate.time] if candidate.time is not None else [])
    near = any(abs(pd.Timestamp(t) - cause.at.time) <= CAUSE_TOLERANCE for t in times)
    cited = any(cause.evidence.lower() in (text or "").lower() for text in texts)
    service = loose_match(candidate.service, cause.services) or any(
        loose_match(e.service, cause.services)
        for e in candidate.evidence
        if cause.evidence.lower() in e.message.lower()
    )
    return near and cited and (service or (candidate.service is None and cause.kind == "external"))


def action_item_count(markdown: str) -> int:
    """Rows of the draft's "Action items" table (or bullets of that section)."""
    start = markdown.find("## Action items")
    if start < 0:
        return 0
    end = markdown.find("\n## ", start + 5)
    section = markdown[start : end if end > 0 else None].splitlines()[1:]
    rows = [ln for ln in section if ln.startswith("|") and not set(ln) <= set("|-: ")]
    bullets = [ln for ln in section if ln.lstrip().startswith(("- ", "* ")) or ln.lstrip()[:3].rstrip(".").isdigit()]
    return max(len(rows) - 1, 0) + len(bullets) if rows else len(bullets)


def _exposure_score(exposure: Any, breach: Breach) -> tuple[bool, str]:
    actors = list(getattr(exposure, "actors", ()))
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network | None] = []
    for actor in actors:
        try:
            nets.append(ipaddress.ip_network(str(actor.actor), strict=False))
        except ValueError:
            nets.append(None)
    truth_ips = [ipaddress.ip_address(ip) for ip in breach.attacker_ips]
    covered = sum(any(n is not None and ip in n for n in nets) for ip in truth_ips)
    false_actors = sum(n is None or not any(ip in n for ip in truth_ips) for n in nets)
    accounts = {a for actor in actors for a in actor.accounts}
    want = set(breach.compromised)
    counts = dict(getattr(exposure, "operation_counts", ()) or ())
    ops = sum(counts.values()) if counts else len(getattr(exposure, "data_operations", ()))
    ok = covered == len(truth_ips) and false_actors == 0 and accounts == want and ops == breach.data_operations
    detail = (
        f"sources {covered}/{len(truth_ips)} (+{false_actors} wrong), accounts {len(accounts & want)}/{len(want)}"
        f" (+{len(accounts - want)} wrong), data ops {ops}/{breach.data_operations}"
    )
    return ok, detail


def score(incident: ZooIncident, timeline: Any, seconds: float = 0.0) -> Score:
    """Compare a built :class:`pmtimeline.Timeline` with the incident's truth."""
    truth = incident.truth
    found = timeline.incident
    errors: dict[str, float | None] = {}
    ok: dict[str, bool] = {}
    for phase in PHASES:
        want = truth.phases.get(phase)
        if want is None:
            continue
        got = found.phases.get(phase)
        errors[phase] = None if got is None else (pd.Timestamp(got) - want).total_seconds()
        ok[phase] = got is not None and abs(pd.Timestamp(got) - want) <= truth.tolerance[phase]
    draft = timeline.postmortem()
    rank = None
    for i, cand in enumerate(found.root_cause_candidates, start=1):
        if candidate_is_cause(cand, truth.cause):
            rank = i
            break
    texts = " ".join(
        [c.summary for c in found.root_cause_candidates[:5]]
        + [e.message for c in found.root_cause_candidates[:5] for e in c.evidence]
    ).lower()
    mechanism = any(word.lower() in texts for word in truth.mechanism)
    detection_ok: bool | None = None
    if truth.detection is not None:
        ev = found.phase_evidence.get("detected", ())
        detected = found.phases.get("detected")
        detection_ok = bool(
            ev
            and detected is not None
            and ev[0].source.replace("\\", "/").endswith(truth.detection.file)
            and abs(pd.Timestamp(detected) - truth.detection.fired.time) <= truth.tolerance["detected"]
        )
    exposure_ok: bool | None = None
    detail = ""
    if truth.breach is not None:
        exposure_ok, detail = _exposure_score(found.exposure, truth.breach)
    return Score(
        name=truth.name,
        phase_errors=errors,
        phase_ok=ok,
        cause_rank=rank,
        candidates=tuple(f"{c.kind}:{c.service}" for c in found.root_cause_candidates[:5]),
        mechanism_named=mechanism,
        summary=summary_contents(draft, truth),
        detection_ok=detection_ok,
        exposure_ok=exposure_ok,
        exposure_detail=detail,
        action_items=action_item_count(draft),
        seconds=seconds,
    )


def summary_contents(draft: str, truth: ZooTruth) -> str:
    """Which of the trigger (its line cited), the mechanism (a word of it) and the mitigation (its line
    cited) the draft's Summary states: ``TMF`` when all three, ``-`` for each missing."""
    start = draft.find("## Summary")
    if start < 0:
        return "---"
    end = draft.find("\n## ", start + 5)
    text = draft[start : end if end > 0 else None]
    mitigation = truth.phase_evidence.get("mitigated")
    return "".join(
        (
            "T" if f"{truth.cause.at.file}:{truth.cause.at.line}`" in text else "-",
            "M" if any(w.lower() in text.lower() for w in truth.mechanism) else "-",
            "F" if mitigation is not None and f"{mitigation.file}:{mitigation.line}`" in text else "-",
        )
    )


def analyze(incident: ZooIncident, **options: Any) -> Any:
    """Build the incident with the public library, as a user would: the folder and its window."""
    import pmtimeline

    start, end = incident.truth.window
    return pmtimeline.load(str(incident.folder), start=start, end=end, title=incident.truth.title, **options)


def _fmt_error(seconds: float | None, good: bool) -> str:
    if seconds is None:
        return "missing"
    mark = "" if good else "!"
    return f"{seconds:+.0f}s{mark}"


def scoreboard(scores: Sequence[Score]) -> str:
    """The per-incident table that ``--score`` prints."""
    head = ["incident", *PHASES, "cause rank", "mechanism", "summary", "detection", "exposure", "actions", "secs"]
    rows = []
    for s in scores:
        cells = [s.name]
        for p in PHASES:
            cells.append(_fmt_error(s.phase_errors[p], s.phase_ok[p]) if p in s.phase_errors else "n/a")
        cells.append(str(s.cause_rank) if s.cause_rank else "-")
        cells.append("yes" if s.mechanism_named else "no")
        cells.append(s.summary)
        cells.append({None: "n/a", True: "ok", False: "WRONG"}[s.detection_ok])
        cells.append({None: "n/a", True: "ok", False: "WRONG"}[s.exposure_ok])
        cells.append(str(s.action_items))
        cells.append(f"{s.seconds:.1f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = sum(1 for s in scores if s.cause_rank == 1)
    top3 = sum(1 for s in scores if s.cause_rank is not None and s.cause_rank <= 3)
    phases_ok = sum(1 for s in scores if s.phases_ok)
    lines.append("")
    lines.append(
        f"root cause first: {first}/{len(scores)} (need >= 10 of 12); top 3: {top3}/{len(scores)} (need all); "
        f"phases within tolerance: {phases_ok}/{len(scores)}; "
        f"detection ok: {sum(1 for s in scores if s.detection_ok)}/"
        f"{sum(1 for s in scores if s.detection_ok is not None)}; "
        f"drafts with action items: {sum(1 for s in scores if s.action_items)}/{len(scores)}"
    )
    for s in scores:
        if s.exposure_detail:
            lines.append(f"{s.name} exposure: {s.exposure_detail}")
        if s.cause_rank != 1:
            lines.append(f"{s.name} candidates: {', '.join(s.candidates) or '(none)'}")
    lines.append(
        "(summary: T = the trigger's line cited, M = the mechanism named, F = the mitigation cited; "
        "mechanism: named among the first 5 candidates)"
    )
    lines.append(
        "(phase errors are found - true; ! = outside tolerance; tolerances: "
        + ", ".join(f"{p} {int(t.total_seconds())}s" for p, t in TOLERANCE.items())
        + ")"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", nargs="?", help="write the zoo here (default: a temporary folder with --score)")
    parser.add_argument(
        "--score", action="store_true", help="build each incident with pmtimeline and print the scoreboard"
    )
    parser.add_argument("--only", action="append", choices=sorted(INCIDENTS), help="only this incident (repeatable)")
    parser.add_argument("--reseed", type=int, default=0, help="shift every seed (other noise, same shapes)")
    parser.add_argument(
        "--variant", type=int, choices=(0, *VARIANTS), default=0, help="1, 2: the triggers worded otherwise"
    )
    args = parser.parse_args(argv)
    if not args.outdir and not args.score:
        parser.error("give OUTDIR, --score, or both")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pmtimeline-zoo-") as tmp:
        root = Path(args.outdir or tmp)
        incidents = build_zoo(root, args.only, args.reseed, args.variant)
        if not args.score:
            for inc in incidents:
                print(f"{inc.folder}: {len(inc.truth.files)} files")
            return 0
        scores = []
        for inc in incidents:
            t0 = time.perf_counter()
            timeline = analyze(inc)
            scores.append(score(inc, timeline, time.perf_counter() - t0))
        print(scoreboard(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
