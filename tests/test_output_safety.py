"""Output safety end to end (robustness.md §6.7, O1-O5): attacker text and secrets in, nothing live out.

Every payload of §3.1-3.4 and the secrets corpus of §4.2 is written into real log files (an access
log through the user agent, URL and user; JSON lines through the message, user, URL and user agent;
a Python-logging file through the message; an Alertmanager payload through the alert name and
summary), together with an error burst so that the analysis cites them as evidence. Then
``pmtimeline build``, ``ingest -o .csv/.jsonl``, ``export`` and ``--rejects`` run through the CLI, and
every file they write, and their terminal output, is checked: no raw secret anywhere, pseudonyms
consistent within a report and different across reports, no live link, script, image, heading or
formula from log data, no terminal control bytes.

O4 puts control, bidi and invisible characters in file names, log lines and the title, runs every command
that writes or prints, and scans every byte of every output; O5 checks that ``sniff`` redacts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from incident_sample import CSV_PAYLOADS, HTML_PAYLOADS, MARKDOWN_PAYLOADS
from markdown_it import MarkdownIt

from pmtimeline.cli import cli
from pmtimeline.redact import Redactor

pytestmark = pytest.mark.slow  # builds reports / many examples: tens of seconds

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
#: §3.4: terminal payloads.
TERMINAL_PAYLOADS = (
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "\x1b]8;;https://evil.example\x1b\\text\x1b]8;;\x1b\\",
    "\x1b]52;c;aHVudGVy\x07",
    "\x1b[8m hidden",
    "OK\rFAIL",
    "back\x08\x08space",
    "\x9b31m csi",
)
#: §3.1-3.4: chart, Markdown, CSV and terminal payloads (the 100 000-character one stays in the chart tests).
PAYLOADS = (
    *(p for p in HTML_PAYLOADS if len(p) < 1000),
    *MARKDOWN_PAYLOADS,
    *CSV_PAYLOADS,
    *TERMINAL_PAYLOADS,
)
#: §4.2 secrets corpus, with the raw values that must never appear in any output.
SECRET_TEXTS = (
    "card 4111 1111 1111 1111 charged",
    "card=4111111111111111",
    "card 4242424242424242 declined",
    "iban GB82 WEST 1234 5698 7654 32 debited",
    "iban DE89370400440532013000",
    "key AKIAIOSFODNN7EXAMPLE secret aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    f"token {JWT}",
    "connect https://alice:hunter2@db.example/",
    "GET /login?user=bob&password=hunter2",
    "body password%3Dhunter2&x=1",
    "mail alice@bank.example about it",
    "json alice\\u0040bank.example",
    "Authorization: Basic YWxpY2U6aHVudGVyMg==",
    "Authorization: Bearer abcdef0123456789xyz",
    "Cookie: session=s3ss10nsecret; theme=dark",
    "github ghp_0123456789abcdefghijABCDEFGHIJ0123456789",
)
RAW_SECRETS = (
    "hunter2",
    "4111111111111111",
    "4111 1111 1111 1111",
    "4242424242424242",
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    JWT,
    "alice@bank.example",
    "alice\\u0040bank.example",
    "YWxpY2U6aHVudGVyMg==",
    "abcdef0123456789xyz",
    "s3ss10nsecret",
    "ghp_0123456789abcdefghijABCDEFGHIJ0123456789",
)
#: IPs and users that must be pseudonymized (they are not secrets, but identities).
ATTACKER_IP = "203.0.113.66"
VICTIM_USER = "mallory.customer"
#: Bytes that drive a terminal.
TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\x08")
MD = MarkdownIt("commonmark").enable("table")  # commonmark passes raw HTML through: the strict case


def _time(second: int) -> pd.Timestamp:
    return pd.Timestamp("2024-03-01T10:00:00Z") + pd.Timedelta(seconds=second)


def _clf(ts: pd.Timestamp) -> str:
    return ts.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _access_escape(text: str) -> str:
    """As nginx writes a field: quotes, backslashes and control bytes hex-escaped."""
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


WORKER_FORMULAS = (
    '=HYPERLINK("https://attacker.example/worker","open")',
    '=IMPORTXML("https://attacker.example/worker","//a")',
)


def write_corpus(root: Path) -> None:
    """An incident with payloads and secrets in every field an attacker controls."""
    root.mkdir()
    texts = [*PAYLOADS, *SECRET_TEXTS]
    # Access log: 20 minutes of healthy traffic, then 10 minutes of 500s carrying the payloads.
    access: list[str] = []
    for i in range(900):
        failing = i >= 600
        text = texts[i % len(texts)]
        path = "/pay?q=" + urllib.parse.quote(text, safe="=&%?/") if failing else f"/pay/{i}"
        status = 500 if failing else 200
        access.append(
            f"{ATTACKER_IP if failing else '198.51.100.7'} - {VICTIM_USER} [{_clf(_time(i))}] "
            f'"GET {path} HTTP/1.1" {status} 12 "-" "{_access_escape(text if failing else "curl/8")}"'
        )
    (root / "access.log").write_text("\n".join(access) + "\n", encoding="utf-8")
    # JSON lines: the payloads and secrets as message, user, URL and user agent of error events.
    rows = []
    for i in range(900):
        failing = i >= 600
        text = texts[i % len(texts)]
        rows.append(
            {
                "@timestamp": _time(i).isoformat(),
                "log.level": "error" if failing else "info",
                "service.name": "payments-api",
                "message": text if failing else "charge ok",
                "user.name": VICTIM_USER if i % 2 else text,
                "url.path": "/charge",
                "user_agent.original": text,
                "client.ip": ATTACKER_IP,
                "password": "hunter2",
                "labels": {"email": "alice@bank.example", "card": "4111111111111111"},
            }
        )
    (root / "payments.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    # Python logging: messages, one per payload, during the incident, and one bad line for --rejects.
    py = ["garbage before any event password=hunter2 4111111111111111 \x1b[2J alice@bank.example"]
    for i, text in enumerate(texts):
        one_line = text.replace("\n", " ")
        py.append(f"{_time(650 + i).strftime('%Y-%m-%d %H:%M:%S')},000 - worker - ERROR - {one_line}")
    # Formulas of the worker's own, named by no user: the user names above are the payloads, and a
    # known user name is pseudonymized wherever it stands, also in worker.log's lines when they share
    # a chunk with payments.jsonl's (small files are read together), so these keep formulas in the CSV.
    for i, formula in enumerate(WORKER_FORMULAS):
        py.append(f"{_time(700 + i).strftime('%Y-%m-%d %H:%M:%S')},000 - worker - ERROR - {formula}")
    (root / "worker.log").write_text("\n".join(py) + "\n", encoding="utf-8")
    # An Alertmanager payload whose name and summary carry payloads and secrets.
    alert = {
        "status": "firing",
        "version": "4",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": PAYLOADS[0], "severity": "critical", "service": "payments-api"},
                "annotations": {"summary": f"{PAYLOADS[1]} {SECRET_TEXTS[0]} {SECRET_TEXTS[7]}"},
                "startsAt": _time(630).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }
    (root / "alertmanager.json").write_text(json.dumps(alert) + "\n", encoding="utf-8")


def cli_run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exit_code == 0, output
    for ch in TERMINAL_CONTROLS:
        assert ch not in output, (repr(ch), output)
    for secret in RAW_SECRETS:
        assert secret not in output, secret
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The corpus built twice (two reports) plus ingests, exports and rejects, once per module."""
    root = tmp_path_factory.mktemp("safety")
    old = Path.cwd()
    os.chdir(root)
    try:
        write_corpus(root / "logs")
        outputs = []
        outputs.append(cli_run("build", "logs", "-o", "out", "--rejects", "rejects-build.csv"))
        outputs.append(cli_run("build", "logs", "-o", "out2", "--no-images"))
        outputs.append(cli_run("ingest", "logs", "-o", "events.csv", "--rejects", "rejects.csv"))
        outputs.append(cli_run("ingest", "logs", "-o", "events.jsonl"))
        outputs.append(cli_run("export", "out", "-o", "export.csv"))
        outputs.append(cli_run("export", "out", "-o", "export.timesketch.jsonl"))
        controls = [p for p in PAYLOADS if any(ch in p for ch in TERMINAL_CONTROLS)]
        (root / "ctl.log").write_text(
            "".join(f"2024-03-01T10:00:0{i}Z ERROR api: {p}\n" for i, p in enumerate(controls[:8])), encoding="utf-8"
        )
        outputs.append(cli_run("sniff", "ctl.log", "--rows", "8"))
        (root / "terminal.txt").write_text("".join(r.stdout + r.stderr for r in outputs), encoding="utf-8")
        yield root
    finally:
        os.chdir(old)


def output_files(root: Path) -> list[Path]:
    inputs = {"logs", "ctl.log"}
    return sorted(p for p in root.rglob("*") if p.is_file() and not inputs & set(p.relative_to(root).parts))


def test_every_expected_output_was_written(run: Path) -> None:
    names = {p.relative_to(run).as_posix() for p in output_files(run)}
    expected = {"postmortem.md", "incident.json", "timeline.html", "events.parquet"}
    assert {f"out/{n}" for n in expected} <= names
    assert {"events.csv", "events.jsonl", "export.csv", "export.timesketch.jsonl", "rejects.csv"} <= names


def _texts_of(path: Path) -> str:
    """Everything a reader could see in a file: its bytes as text, and for Parquet every cell."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_csv(index=False)
    return path.read_bytes().decode("utf-8", errors="replace")


def test_o2_no_raw_secret_in_any_output(run: Path) -> None:
    files = output_files(run)
    assert len(files) >= 12
    leaks = [(p.relative_to(run).as_posix(), s) for p in files for s in RAW_SECRETS if s in _texts_of(p)]
    assert leaks == []


def test_o2_identities_are_pseudonymized_everywhere(run: Path) -> None:
    for path in output_files(run):
        text = _texts_of(path)
        assert ATTACKER_IP not in text, path
        assert VICTIM_USER not in text, path


def test_o2_pseudonyms_consistent_within_a_report_and_different_across(run: Path) -> None:
    events = pd.read_csv(run / "events.csv", dtype=str, keep_default_na=False)
    # The attacker's IP is the client of both the access log and the JSON log: one token in this report.
    ips = set(events.loc[events["client_ip"].str.startswith("ip_"), "client_ip"])
    assert len(ips) == 2  # the attacker and the healthy client
    attacker_tokens = set(events.loc[events["http_status"] == "500", "client_ip"])
    assert len(attacker_tokens) == 1
    victim = set(events.loc[events["format"].str.startswith("access"), "user"])
    assert len(victim) == 1
    assert re.fullmatch(r"user_[0-9a-f]{8}", victim.pop())
    # Two builds of the same logs are two reports: the keys, and so the tokens, differ.
    pattern = r"(?:ip|user)_[0-9a-f]{8}"

    def tokens(outdir: str) -> set[str]:
        files = ("incident.json", "events.parquet", "postmortem.md")
        return {t for name in files for t in re.findall(pattern, _texts_of(run / outdir / name))}

    first, second = tokens("out"), tokens("out2")
    assert first
    assert second
    assert not first & second
    # Within one report the draft uses the tokens of its own event table.
    in_draft = set(re.findall(pattern, (run / "out" / "postmortem.md").read_text()))
    assert in_draft
    assert in_draft <= set(re.findall(pattern, _texts_of(run / "out" / "events.parquet")))


def test_o1_html_has_no_live_markup_from_data(run: Path) -> None:
    html = (run / "out" / "timeline.html").read_text(encoding="utf-8")
    for raw in (
        '<a href="javascript:alert(1)">',
        '<a href="https://evil.example/">',
        "<img src=x onerror",
        "<script>alert(1)</script>",
        '<span style="font-size:300px',
        "<details open>",
        "\\href{javascript",
    ):
        assert raw not in html, raw
    # plotly.js decodes only &lt; &gt; &amp; back to text: the payload is there, escaped.
    figure = html[html.rfind("Plotly.newPlot") :]
    assert "evil.example" in figure or "alert(1)" in figure
    assert "\\u003ca href=\\u0022javascript" not in figure  # not even as JSON-escaped live markup
    assert "%{x}%{y:$.2f}" not in figure.split('"hovertemplate"')[-1][:200] or "customdata" in figure


def test_o1_markdown_renders_no_markup_from_data(run: Path) -> None:
    draft = (run / "out" / "postmortem.md").read_text(encoding="utf-8")
    rendered = MD.render(draft)
    images = re.findall(r'<img src="([^"]*)"', rendered)
    assert set(images) <= {"timeline.png"}  # only the chart the build wrote
    assert "<details" not in rendered
    assert "<script" not in rendered
    links = re.findall(r'<a href="([^"]*)"', rendered)
    assert not [link for link in links if "evil" in link or "attacker" in link or "javascript" in link]
    headings = re.findall(r"<h[1-6]>(.*?)</h[1-6]>", rendered)
    assert not [h for h in headings if "Fake section" in h or "the intern" in h]
    assert "@everyone" not in re.sub(r"<code>.*?</code>", "", rendered, flags=re.DOTALL)
    assert "<!--" not in rendered.replace("&lt;!--", "")
    for ch in TERMINAL_CONTROLS:
        assert ch not in draft
    assert "Redaction was **on**" in draft


def test_o1_csv_formula_cells_are_neutralized(run: Path) -> None:
    for name in ("events.csv", "export.csv"):
        with (run / name).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        assert len(body) > 1500
        cells = [cell for row in body for cell in row]
        formulas = [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))]
        assert formulas == []
        minus = [c for c in cells if c.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", c)]
        assert minus == []
        message = header.index("message")
        prefixed = [row[message] for row in body if row[message].startswith("'=")]
        assert any("HYPERLINK" in m for m in prefixed)
        assert any("IMPORTXML" in m for m in prefixed)


def test_o1_terminal_output_has_no_control_bytes(run: Path) -> None:
    data = (run / "terminal.txt").read_bytes()
    for raw in (b"\x1b", b"\x07", b"\xc2\x9b", "\u202e".encode()):
        assert raw not in data
    assert b"\\x1b" in data  # the sniff rows show the escapes


def test_rejects_files_are_redacted_escaped_and_private(run: Path) -> None:
    for name in ("rejects.csv", "rejects-build.csv"):
        path = run / name
        assert path.stat().st_mode & 0o777 == 0o600
        text = path.read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows
        assert any(r["source"].endswith("worker.log") and r["line"] == "1" for r in rows)
        assert "\x1b" not in text
        assert "\\x1b" in text


def test_png_and_svg_hold_no_secret_or_identity(run: Path) -> None:
    images = [run / "out" / n for n in ("timeline.png", "timeline.svg") if (run / "out" / n).exists()]
    if not images:
        pytest.skip("no browser for kaleido here: timeline.png/svg not written (the HTML is checked)")
    for path in images:
        data = path.read_bytes()
        for secret in (*RAW_SECRETS, ATTACKER_IP, VICTIM_USER):
            assert secret.encode() not in data, (path.name, secret)


def test_no_redact_says_so_in_the_draft(run: Path) -> None:
    cli_run("report", "out2", "--no-redact", "--no-images")
    draft = (run / "out2" / "postmortem.md").read_text(encoding="utf-8")
    assert "Redaction was **off**" in draft


# -- O3: encoded secrets, and fields that stay JSON --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("body password%3Dhunter2&x=1", "hunter2"),
        ("url=%2Flogin%3Fpassword%3Dhunter2%26x%3D1", "hunter2"),
        ("next=https%3A%2F%2Falice%3Ahunter2%40db.example%2F", "hunter2"),
        ("GET /pay?x=%204111111111111111", "4111111111111111"),
        ("to=alice%40bank.example", "alice"),
        ("json alice\\u0040bank.example", "alice"),
        ('{"msg":"login password=\\"hunter2\\" ok"}', "hunter2"),
        ('{"password": "hunter 2 words"}', "hunter 2"),
        ("Authorization: Basic YWxpY2U6aHVudGVyMg==", "YWxpY2U6aHVudGVyMg=="),
        ("Proxy-Authorization: Basic YWxpY2U6aHVudGVyMg==", "YWxpY2U6aHVudGVyMg=="),
    ],
)
def test_o3_encoded_secrets_are_redacted(text: str, secret: str) -> None:
    out = Redactor().redact_text(text)
    assert secret not in out
    assert out != text


def test_o3_fields_stay_valid_json_after_redaction() -> None:
    fields: list[dict[str, Any]] = [
        {"password": "hunter 2", "user.password": 123, "note": 'login password="hunter2" card 4111111111111111'},
        {"headers": {"authorization": "Basic YWxpY2U6aHVudGVyMg==", "cookie": "a=b\\"}, "ip": "10.0.0.1"},
        {"cookie_header": "Cookie: a=b", "x": 1, "email": "alice@bank.example", "n": 12345678901234567890123},
        {"msg": 'password=abc\\"def', "list": ["alice@bank.example", {"token": "abc"}]},
    ]
    frame = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2024-03-01", tz="UTC"),
            "message": "x",
            "fields": [json.dumps(f, ensure_ascii=False) for f in fields],
        }
    )
    redacted = Redactor().redact_events(frame)["fields"]
    for before, text in zip(fields, redacted, strict=True):
        after = json.loads(text)
        assert set(after) == set(before)  # same keys: only values change
        for secret in ("hunter2", "hunter 2", "4111111111111111", "YWxpY2U6aHVudGVyMg==", "alice@bank.example"):
            assert secret not in text
    assert json.loads(redacted.iloc[2])["n"] == 12345678901234567890123  # numbers kept exactly


def test_keep_raw_keeps_only_events_parquet_raw(run: Path, tmp_path: Path) -> None:
    out, export = tmp_path / "raw", tmp_path / "raw-export.csv"  # apart from the outputs checked above
    cli_run("build", str(run / "logs" / "payments.jsonl"), "-o", str(out), "--keep-raw", "--no-images")
    cli_run("export", str(out), "-o", str(export))
    raw_events = _texts_of(out / "events.parquet")
    assert "hunter2" in raw_events  # asked for: the working table keeps the values as logged
    assert ATTACKER_IP in raw_events
    for path in [out / "postmortem.md", out / "incident.json", out / "timeline.html", export]:
        text = _texts_of(path)
        assert not [s for s in RAW_SECRETS if s in text], path.name
        assert ATTACKER_IP not in text, path.name


# -- O4: control and bidi characters escaped in every output, file names included (issue 17 items 7, 10) --

#: Characters that drive a terminal or reorder/hide text (C0 but TAB/LF, DEL, C1, bidi marks,
#: overrides and isolates, zero-width and invisible format characters, line/paragraph separators,
#: tag characters), listed here independently of pmtimeline.escaping.
HOSTILE = (
    "\x1b[31m\x07\r\x01\x02\x7f\x85\x9b\u202e\u2066\u2069\u200e\u200f\u061c\u200b\u2060\ufeff\u2028\u2029\U000e0041"
)
RAW_CONTROL_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
#: File names carrying them (every byte but NUL and "/" may name a file).
TEXT_LOG = "api\x1b]0;pwned\x07\r\u202e\x01gol.log"
TEXT_LOG_SHOWN = "api\\x1b]0;pwned\\x07\\x0d\\u202e\\x01gol.log"  # as every output shows it
JSON_LOG = "pay\u2066\x1b[2J\x7f\u200f.jsonl"
ALERT_FILE = "alerts\u202e\x07.json"
TITLE = "Outage\x1b]0;x\x07\u202e\u2066 😀"


def write_hostile_logs(root: Path) -> None:
    """Logs whose names and contents hold the hostile characters, with secrets beside them and an
    error burst, so the analysis cites them in every output."""
    root.mkdir()
    text = ["garbage before any event " + HOSTILE + " password=hunter2"]  # a reject, for --rejects
    for i in range(240):
        level = "ERROR" if i >= 160 else "INFO"
        text.append(
            f"{_time(i).strftime('%Y-%m-%dT%H:%M:%SZ')} {level} api{HOSTILE}: upstream {HOSTILE} failed "
            "password=hunter2 card 4111111111111111 mail alice@bank.example"
            if level == "ERROR"
            else f"{_time(i).strftime('%Y-%m-%dT%H:%M:%SZ')} INFO api: ok"
        )
    (root / TEXT_LOG).write_text("\n".join(text) + "\n", encoding="utf-8")
    rows = [
        {
            "@timestamp": _time(i).isoformat(),
            "log.level": "error" if i >= 160 else "info",
            "service.name": "payments" + (HOSTILE if i >= 160 else ""),
            "message": f"charge failed {HOSTILE} db timeout" if i >= 160 else "charge ok",
            "user.name": f"bob{HOSTILE}",
            "url.path": f"/charge/{HOSTILE}",
        }
        for i in range(240)
    ]
    (root / JSON_LOG).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    alert = {
        "status": "firing",
        "version": "4",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"HighErrors{HOSTILE}", "severity": "critical", "service": "payments"},
                "annotations": {"summary": f"errors {HOSTILE} up"},
                "startsAt": _time(170).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }
    (root / ALERT_FILE).write_text(json.dumps(alert, ensure_ascii=False) + "\n", encoding="utf-8")


def cli_any(*args: str, exit_code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == exit_code, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Every command that writes or prints, on the hostile logs; their files and terminal output."""
    root = tmp_path_factory.mktemp("hostile")
    old = Path.cwd()
    os.chdir(root)
    try:
        write_hostile_logs(root / "logs")
        runs = [
            cli_any("build", "logs", "-o", "out", "--title", TITLE, "--rejects", "rejects-build.csv"),
            cli_any("report", "out", "--no-images"),
            cli_any("chart", "out", "--no-images"),
            cli_any("ingest", "logs", "-o", "events.csv", "--rejects", "rejects.csv"),
            cli_any("ingest", "logs", "-o", "events.jsonl"),
            cli_any("ingest", "logs", "-o", "events.timesketch.csv"),
            cli_any("export", "out", "-o", "export.csv"),
            cli_any("export", "out", "-o", "export.jsonl"),
            cli_any("export", "out", "-o", "export.timesketch.jsonl"),
            cli_any("sniff", f"logs/{TEXT_LOG}", "--rows", "10"),
            cli_any("sniff", f"logs/{JSON_LOG}", "--rows", "10"),
            cli_any("sniff", f"logs/{ALERT_FILE}"),
            cli_any("sniff", f"logs/missing{HOSTILE}.log", exit_code=1),
            cli_any("build", "logs", "-o", "bad", "--tz", f"Mars/{HOSTILE}", exit_code=1),
        ]
        yield root, "".join(r.stdout + r.stderr for r in runs)
    finally:
        os.chdir(old)


def _hostile_outputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "logs" not in p.relative_to(root).parts)


def test_o4_no_raw_control_character_in_any_output_file(hostile: tuple[Path, str]) -> None:
    root, _ = hostile
    files = _hostile_outputs(root)
    names = {p.relative_to(root).as_posix() for p in files}
    assert {"out/incident.json", "out/postmortem.md", "out/timeline.html", "out/incident.toml"} <= names
    assert {"rejects.csv", "rejects-build.csv", "events.csv", "events.jsonl", "export.timesketch.jsonl"} <= names
    # Parquet (events.parquet, data/*.parquet) is data: it keeps the text as logged (redacted) for
    # the tools that read it, which show it their own way; PNG holds pixels, not text. Every other
    # byte of every file is checked: SVG, HTML, JSON, TOML, Markdown and CSV alike.
    scanned = [p for p in files if p.suffix not in (".parquet", ".png")]
    assert len(scanned) >= 14
    for path in scanned:
        text = path.read_bytes().decode("utf-8")  # strict: every output is valid UTF-8
        if path.suffix == ".csv":
            text = text.replace("\r\n", "\n")  # RFC 4180's record separator is the one CR allowed
        leaks = [(m.group(), text[max(m.start() - 40, 0) : m.start()]) for m in RAW_CONTROL_RE.finditer(text)]
        assert leaks == [], (path.relative_to(root).as_posix(), leaks[:3])


def test_o4_no_raw_control_character_on_the_terminal(hostile: tuple[Path, str]) -> None:
    _, terminal = hostile
    assert RAW_CONTROL_RE.findall(terminal) == []
    # The hostile file names and lines are there, escaped: nothing was dropped.
    assert TEXT_LOG_SHOWN in terminal
    assert "pay\\u2066\\x1b[2J\\x7f\\u200f.jsonl" in terminal
    assert "\\U000e0041" in terminal


def test_o4_rejects_csv_shows_file_names_escaped(hostile: tuple[Path, str]) -> None:
    root, _ = hostile
    for name in ("rejects.csv", "rejects-build.csv"):
        with (root / name).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        sources = {r["source"] for r in rows}
        assert f"logs/{TEXT_LOG_SHOWN}" in sources
        assert all("hunter2" not in r["excerpt"] for r in rows)


def test_o4_json_outputs_hold_the_values_unchanged_as_escapes(hostile: tuple[Path, str]) -> None:
    root, _ = hostile
    raw = (root / "out" / "incident.json").read_text(encoding="utf-8")
    assert "\\u202e" in raw  # written as a JSON escape, not as the character
    incident = json.loads(raw)
    assert incident["title"] == TITLE  # the same value for a reader
    assert {s["name"] for s in incident["sources"]} >= {f"logs/{TEXT_LOG}", f"logs/{JSON_LOG}"}
    records = [json.loads(line) for line in (root / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(r["message"] == f"charge failed {HOSTILE} db timeout" for r in records)
    assert any(r["source"] == f"logs/{TEXT_LOG}" for r in records)
    toml = (root / "out" / "incident.toml").read_text(encoding="utf-8")
    import tomllib

    assert tomllib.loads(toml)["title"] == TITLE


def test_o4_markdown_and_chart_show_the_names_escaped(hostile: tuple[Path, str]) -> None:
    root, _ = hostile
    draft = (root / "out" / "postmortem.md").read_text(encoding="utf-8")
    assert "\\u202e" in draft
    assert "\\x1b" in draft
    html = (root / "out" / "timeline.html").read_text(encoding="utf-8")
    assert "\\\\u202e" in html or "\\\\x1b" in html  # the visible escape, inside the figure's JSON


def test_sniff_redacts_like_build_and_no_redact_opts_out(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "".join(
            f"2024-03-01T10:00:0{i}Z ERROR api: login password=hunter2 card 4111111111111111 "
            f"mail alice@bank.example from 203.0.113.66\n"
            for i in range(5)
        ),
        encoding="utf-8",
    )
    shown = cli_any("sniff", str(log)).stdout
    for secret in ("hunter2", "4111111111111111", "alice@bank.example", "203.0.113.66"):
        assert secret not in shown, secret
    assert "password=[REDACTED]" in shown
    assert "[CARD …1111]" in shown
    assert re.search(r"user_[0-9a-f]{8}@bank\.example", shown)
    assert re.search(r"ip_[0-9a-f]{8}", shown)
    assert "rows redacted" in shown
    raw = cli_any("sniff", str(log), "--no-redact").stdout
    assert "password=hunter2" in raw
    assert "alice@bank.example" in raw
    assert "rows not redacted" in raw


def test_o4_notebook_summaries_escape_the_names(hostile: tuple[Path, str]) -> None:
    from pmtimeline.timeline import Timeline

    root, _ = hostile
    timeline = Timeline.open(root / "out")
    for page in (timeline._repr_html_(), timeline.incident._repr_html_()):
        assert RAW_CONTROL_RE.findall(page) == []
        assert "Outage\\x1b]0;x\\x07\\u202e\\u2066 😀" in page  # the title, visible and unreordered
