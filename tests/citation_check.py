"""Reading a postmortem draft's ``source:line`` citations against the records they cite (a test helper).

:func:`read_claims` reads what a draft says beside each citation, :func:`problems_of` checks it.
Each citation is resolved to the record it cites (the line, and for a record that spans lines, such
as a stack trace or an element of a pretty-printed JSON array, the lines up to the next record); the
record is read with this module's own small parsers, not with pmtimeline. What is checked depends on
what the draft says beside the citation:

* every citation: the file exists, the line is in it and starts a record (a line inside a record,
  such as a stack trace's ``Caused by:``, only for words quoted from that very line), and the record
  holds a time in the corpus's window;
* a time the draft states for it (a timeline row, ``<time> UTC (`src:n`)``, ``<time> UTC, `src:n```):
  the record holds that time, to the second; the further citations of a group (a phase's second
  piece of evidence) lie within one bucket of it;
* a message the draft quotes for it (``src:n`: `message``, ``: `message` (`src:n`)``, the message of
  a timeline row): the record holds the message's words (what redaction, truncation and
  defanging left of them);
* an alert row (``Alert `name` fired | acknowledged | resolved``): the record holds the alert's
  name, that state as its tool writes it, and the row's time;
* ``deploy in x 1 min 42 s before onset`` before it: the record is that long before the onset the
  timeline states;
* a data operation of a breach (``export: 40 (`src:n`, ...)``): the record shows one of that kind;
* a citation after a phase's name (``onset `src:n```): it is among that phase's citations;
* any other citation is also cited where one of the checks above holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import functools
import gzip
import json
import re
import tarfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

BUCKET = dt.timedelta(minutes=1)  # the default bucket: a phase's evidence lies within one of its time

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# A code span: a run of backticks, content, the same run (markdown_code's fences).
CODE_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
CITE_RE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, start=1)}

# Timestamps as logs write them (ISO 8601 with or without an offset, Apache/nginx and HAProxy, BSD
# syslog with or without a priority); a naive one is in its source's zone (Corpus.zones), else UTC.
ISO_RE = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)?")
CLF_RE = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?: ([+-]\d{4}))?\]")
SYSLOG_RE = re.compile(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) ")
# Epoch numbers in alert payloads (Opsgenie's createdAt in ms and updatedAt in ns, Datadog's DATE):
# seconds, milliseconds, microseconds or nanoseconds by their number of digits.
EPOCH_RE = re.compile(r"(?<![\d.])(1\d{9}(?:\d{3}){0,3})(?![\d.])")
# A line that starts a new record (log event): a time at its start, an access-log line, a JSON value.
RECORD_START_RE = re.compile(
    r"^(?:<\d{1,3}>(?:1 )?)?"  # a syslog priority (and RFC 5424's version)
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d \d\d:|\S+ \S+ \S+ \[\d\d/|time=|\s*[{\[])"
)
# How each tool writes an alert state: Alertmanager and Grafana statuses, PagerDuty event types,
# Opsgenie actions, Datadog transitions.
STATE_WORDS = {
    "fired": re.compile(r"\b(firing|alerting|triggered|trigger|create|warn|re-triggered)\b", re.IGNORECASE),
    "acknowledged": re.compile(r"\backnowledged?\b", re.IGNORECASE),
    "resolved": re.compile(r"\b(resolved|recovered|close|closed)\b", re.IGNORECASE),
}
BEFORE_ONSET_RE = re.compile(r"(?:(\d+) h)? ?(?:(\d+) min)? ?(?:(\d+) s)? before onset$")
# The words that show a data operation of each kind in a record (kinds not listed are not checked).
OPERATION_WORDS = {
    "export": re.compile(r"export|download", re.IGNORECASE),
    "contact change": re.compile(r"e-?mail|phone", re.IGNORECASE),
    "transfer": re.compile(r"transfer|payment|payout", re.IGNORECASE),
    "password change": re.compile(r"password", re.IGNORECASE),
}
# What redaction, the people filter and shortening put in place of a message's own words.
PLACEHOLDER_RE = re.compile(r"\[[A-Za-z][^\]]*\]|\b(?:user|ip)_[0-9a-f]{8}\b")


# -- the cited files, read independently ------------------------------------------------------------


@functools.cache
def file_lines(path: str) -> tuple[str, ...]:
    """The lines of a cited file, or of a cited archive member (``bundle.tgz!var/log/app.log``)."""
    data = _member_bytes(path) if not Path(path).is_file() and "!" in path else Path(path).read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    return tuple(text.splitlines())


def _is_member(path: str) -> bool:
    """Whether ``path`` names a member of an archive file: ``<archive>!<member path>``."""
    parts = path.split("!")
    return any(Path("!".join(parts[:i])).is_file() for i in range(1, len(parts)))


def _member_bytes(path: str) -> bytes:
    """The bytes of member ``name`` of the archive in ``<archive>!<name>`` (tar, compressed or not, or zip)."""
    archive, name = path.split("!", 1)
    while not Path(archive).is_file():  # the archive's own path may hold a "!"
        more, name = name.split("!", 1)
        archive = f"{archive}!{more}"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(name)
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        assert member is not None, f"{name} is not a regular file of {archive}"
        return member.read()


def record_start(path: str, number: int) -> int:
    """The first line of the record that holds line ``number``: the line itself, or for a line
    inside a stack trace the line of the event it belongs to."""
    lines = file_lines(path)
    start = number
    while start > 1 and number - start < 500 and not RECORD_START_RE.match(lines[start - 1]):
        start -= 1
    return start


def record(path: str, number: int) -> str:
    """The text of the record that starts at line ``number`` (1-based)."""
    lines = file_lines(path)
    first = lines[number - 1]
    if first.lstrip().startswith(("{", "[")):
        rest = "\n".join(lines[number - 1 :])
        try:
            _, end = json.JSONDecoder().raw_decode(rest, len(rest) - len(rest.lstrip()))
        except json.JSONDecodeError:
            return first
        return rest[:end]
    end = number
    while end < len(lines) and end - number < 500 and not RECORD_START_RE.match(lines[end]):
        end += 1
    return "\n".join(lines[number - 1 : end])


@dataclass(frozen=True)
class Corpus:
    """What the reader of a corpus's citations knows of it: the zones of its naive times (the
    ``--source-tz`` given), its window (also the year of times written without one)."""

    window: tuple[dt.datetime, dt.datetime]
    zones: tuple[tuple[str, str], ...] = ()

    def zone_of(self, path: str) -> ZoneInfo:
        return ZoneInfo(next((zone for glob, zone in self.zones if fnmatch.fnmatch(path, glob)), "UTC"))


def record_times(path: str, text: str, corpus: Corpus) -> set[dt.datetime]:
    """Every time written in the record, in UTC, to the second."""
    zone = corpus.zone_of(path)
    times = set()
    for day, clock, offset in ISO_RE.findall(text):
        naive = dt.datetime.fromisoformat(f"{day}T{clock}")
        if offset:
            aware = dt.datetime.fromisoformat(f"{day}T{clock}{'+00:00' if offset == 'Z' else offset}")
        else:
            aware = naive.replace(tzinfo=zone)
        times.add(aware.astimezone(dt.UTC))
    for day, month, year, h, m, s, offset in CLF_RE.findall(text):
        clock = dt.datetime(int(year), MONTHS[month], int(day), int(h), int(m), int(s), tzinfo=zone)
        if offset:
            clock = dt.datetime.fromisoformat(f"{clock:%Y-%m-%dT%H:%M:%S}{offset[:3]}:{offset[3:]}")
        times.add(clock.astimezone(dt.UTC))
    if text.lstrip().startswith("{"):
        for digits in EPOCH_RE.findall(text):
            seconds = int(digits) / 1000 ** ((len(digits) - 10) // 3)
            times.add(dt.datetime.fromtimestamp(seconds, dt.UTC))
    for line in text.splitlines():
        if m := SYSLOG_RE.match(line):
            month, day, hh, mm, ss = m.groups()
            local = dt.datetime(corpus.window[0].year, MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=zone)
            times.add(local.astimezone(dt.UTC))
    return times


def record_texts(text: str) -> str:
    """The record as written, and, for JSON, its decoded strings (a message with escaped quotes)."""
    strings: list[str] = [text]

    def walk(value: object) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    with contextlib.suppress(json.JSONDecodeError):
        walk(json.loads(text))
    return "\n".join(strings)


# -- what the draft says ---------------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def code_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each code span; the padding space of a span is removed."""
    out = []
    for m in CODE_RE.finditer(text):
        content = m.group(2)
        if len(content) > 2 and content[0] == " " and content[-1] == " " and content.strip():
            content = content[1:-1]
        out.append((m.start(), m.end(), content))
    return out


def as_citation(content: str) -> tuple[str, int] | None:
    m = CITE_RE.match(content)
    if m is None or not (Path(m.group("path")).is_file() or _is_member(m.group("path"))):
        return None
    return m.group("path"), int(m.group("line"))


def message_words(quoted: str) -> list[str]:
    """The pieces of a quoted message that must be in the cited record: the draft's escaping and
    defanging undone, cut where a line ends (⏎), the quote was shortened (…) or a placeholder stands."""
    text = quoted.replace("\\|", "|")
    text = re.sub(r"\bhxxp(s?)://", r"http\1://", text).replace("fxp://", "ftp://").replace("[.]", ".")
    pieces = []
    for part in text.split("⏎"):
        part = part.split("…")[0]
        pieces.extend(p.strip() for p in PLACEHOLDER_RE.split(part))
    return [p for p in pieces if len(p) >= 3]


@dataclass
class Checks:
    """The claims the draft makes about each citation."""

    times: dict[tuple[str, int], set[dt.datetime]] = field(default_factory=lambda: defaultdict(set))
    near: dict[tuple[str, int], set[dt.datetime]] = field(default_factory=lambda: defaultdict(set))
    messages: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    alerts: dict[tuple[str, int], set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    phases: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    phase_labelled: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    phase_times: dict[str, dt.datetime] = field(default_factory=dict)
    # `deploy in x 31 min 1 s before onset` (`a`): (the citation, how long before onset, the rounding)
    before_onset: list[tuple[tuple[str, int], dt.timedelta, dt.timedelta]] = field(default_factory=list)
    operations: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    seen: set[tuple[str, int]] = field(default_factory=set)

    def checked(self) -> set[tuple[str, int]]:
        claimed = set(self.times) | set(self.near) | set(self.messages) | set(self.alerts) | set(self.operations)
        return claimed | {cite for cite, _, _ in self.before_onset}


def _split_row(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def read_claims(draft: str) -> Checks:
    checks = Checks()
    section = ""
    for raw in draft.splitlines():
        line = raw.rstrip()
        if line.startswith("## "):
            section = line[3:]
        spans = code_spans(line)
        cites = [(s, e, c) for s, e, text in spans if (c := as_citation(text)) is not None]
        checks.seen.update(c for _, _, c in cites)
        if not cites:
            continue
        if section == "Timeline" and re.match(rf"^\| {TIME} \|", line):
            _timeline_row(line, checks)
            continue
        _prose(line, spans, cites, checks)
    return checks


def _timeline_row(line: str, checks: Checks) -> None:
    cells = _split_row(line)
    when, event, evidence = parse_time(cells[0]), cells[-2], cells[-1]
    cites = [c for _, _, text in code_spans(evidence) if (c := as_citation(text)) is not None]
    checks.times[cites[0]].add(when)
    for other in cites[1:]:
        checks.near[other].add(when)
    if alert := re.match(r"^Alert (`+)(.+?)\1(?: on `[^`]*`)? (fired|acknowledged|resolved)$", event):
        for cite in cites:
            checks.alerts[cite].add((alert.group(2).replace("\\|", "|"), alert.group(3)))
        return
    if phase := re.match(r"^\*\*(\w+)\*\*", event):
        checks.phases[phase.group(1).lower()] = cites
        checks.phase_times[phase.group(1).lower()] = when
    quoted = code_spans(event)
    if quoted and event[: quoted[-1][0]].endswith(": "):
        checks.messages[cites[0]].add(quoted[-1][2])


def _prose(
    line: str, spans: list[tuple[int, int, str]], cites: list[tuple[int, int, tuple[str, int]]], checks: Checks
) -> None:
    # <time> UTC (`a`, `b`) and <time> UTC, `a`: the first is at that time, the others near it
    for m in re.finditer(rf"({TIME}) UTC(?:, | \()((?:`[^`]+`(?:, )?)+)", line):
        group = [c for _, _, text in code_spans(m.group(2)) if (c := as_citation(text)) is not None]
        if group:
            checks.times[group[0]].add(parse_time(m.group(1)))
            for other in group[1:]:
                checks.near[other].add(parse_time(m.group(1)))
    # - <time> UTC: ... (`a`): one citation in a bullet that starts with its time
    if (m := re.match(rf"^- ({TIME}) UTC: ", line)) and len(cites) == 1:
        checks.times[cites[0][2]].add(parse_time(m.group(1)))
    # Data operations ...: export: 40 (`a`, `b`); contact change: 19 (`c`): operations of that kind
    if "Data operations" in line:
        for m in re.finditer(r"([a-z][a-z ]*): [\d,]+ \(((?:`[^`]+`(?:, )?)+)\)", line):
            for _, _, text in code_spans(m.group(2)):
                if (op := as_citation(text)) is not None:
                    checks.operations[op].add(m.group(1).strip())
    # `deploy in x 31 min 1 s before onset` ... (`a`): the change the sentence's next citation shows came
    # that long before onset
    for span_start, span_end, text in spans:
        # the next citation of the same sentence
        nxt = [c for s, _, c in cites if s > span_start and ". " not in line[span_end:s]]
        if (ago := BEFORE_ONSET_RE.search(text)) and nxt:
            h, m, sec = (int(x) if x else 0 for x in ago.groups())
            # to the second written (the times it is made of have fractions), else to the minute or hour
            rounding = dt.timedelta(seconds=1) if ago.group(3) else dt.timedelta(minutes=1 if ago.group(2) else 60)
            checks.before_onset.append((nxt[0], dt.timedelta(hours=h, minutes=m, seconds=sec), rounding))
    for start, end, cite in cites:
        # `a`: `message`
        after = [s for s in spans if s[0] == end + 2 and line[end : end + 2] == ": "]
        if after and as_citation(after[0][2]) is None:
            checks.messages[cite].add(after[0][2])
        # ...: `message` (`a`)
        before = [s for s in spans if s[1] == start - 2 and line[start - 2 : start] == " ("]
        if before and as_citation(before[0][2]) is None and line[: before[0][0]].endswith(": "):
            checks.messages[cite].add(before[0][2])
        # onset `a`, `b` / resolved `c`: the citations of that phase
        head = line[:start]
        label = re.search(r"\b(onset|detected|mitigated|recovered|resolved) ((?:`[^`]+`, )*)$", head)
        if label:
            checks.phase_labelled.append((label.group(1), cite))


# -- the checks ------------------------------------------------------------------------------------


def show(cite: tuple[str, int]) -> str:
    """``path:line``, the path relative to the working directory where it is under it."""
    path = Path(cite[0])
    return f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}:{cite[1]}"


def problems_of(checks: Checks, corpus: Corpus) -> list[str]:
    """What is wrong with the citations of a draft, one line each."""
    problems: list[str] = []
    for cite in sorted(checks.seen):
        path, number = cite
        lines = file_lines(path)
        if not 1 <= number <= len(lines):
            problems.append(f"{show(cite)}: the file has {len(lines)} lines")
            continue
        # A record is cited at its first line; a line inside it (a stack trace's "Caused by:") only
        # for words quoted from that very line.
        start = record_start(path, number)
        text = record(path, start)
        if start != number:
            quoted = checks.messages.get(cite, set())
            if not quoted or any(w not in lines[number - 1] for q in quoted for w in message_words(q)[:1]):
                problems.append(f"{show(cite)}: inside the record of line {start}, and quotes nothing of its own line")
        times = {t.replace(microsecond=0) for t in record_times(path, text, corpus)}
        if not any(corpus.window[0] <= t < corpus.window[1] for t in times):
            problems.append(f"{show(cite)}: no time in the incident window in {text[:80]!r}")
        for when in checks.times.get(cite, ()):
            if when not in times:
                problems.append(
                    f"{show(cite)}: cited for {when:%H:%M:%S}, holds {sorted(f'{t:%H:%M:%S}' for t in times)}"
                )
        for when in checks.near.get(cite, ()):
            if not any(abs(t - when) <= BUCKET for t in times):
                problems.append(
                    f"{show(cite)}: cited beside {when:%H:%M:%S}, holds {sorted(f'{t:%H:%M:%S}' for t in times)}"
                )
        searchable = record_texts(text)
        for message in checks.messages.get(cite, ()):
            missing = [w for w in message_words(message) if w not in searchable]
            if missing:
                problems.append(f"{show(cite)}: quoted as {message!r}, but {missing[0]!r} is not there")
        for name, state in checks.alerts.get(cite, ()):
            if name not in searchable:
                problems.append(f"{show(cite)}: alert {name!r} is not in the record")
            if not STATE_WORDS[state].search(text):
                problems.append(f"{show(cite)}: cited for the alert's {state} state, the record says otherwise")
    onset = checks.phase_times.get("onset")
    for cite, ago, rounding in checks.before_onset:
        times = {t.replace(microsecond=0) for t in record_times(cite[0], record(*cite), corpus)}
        if onset is None or not any(abs(onset - ago - t) <= rounding for t in times):
            problems.append(f"{show(cite)}: cited {ago} before onset ({onset}), holds {sorted(map(str, times))}")
    for cite, kinds in checks.operations.items():
        for kind in kinds:
            if kind in OPERATION_WORDS and not OPERATION_WORDS[kind].search(record(*cite)):
                problems.append(f"{show(cite)}: cited as a {kind}, the record shows none")
    for phase, cite in checks.phase_labelled:
        if cite not in checks.phases.get(phase, []):
            problems.append(f"{show(cite)}: cited for {phase}, which the timeline cites as {checks.phases.get(phase)}")
    for cite in sorted(checks.seen - checks.checked()):
        problems.append(f"{show(cite)}: cited with nothing the draft says of it anywhere")
    return problems
