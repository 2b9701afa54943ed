"""Archives as sources (connectors/archives.py), through the CLI on archives built here.

Each member is a source of its own, ``<archive>!<member path>``, with its own format and accounting;
nothing is extracted to disk; the caps of files hold per member and per archive.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import json
import lzma
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import zstandard
from citation_check import Corpus, problems_of, read_claims
from click.testing import CliRunner
from conftest import SAMPLE_LOGS

from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.archives import ArchiveMember, archive_kind, open_archive

SYSLOG_ISO = "".join(f"2024-03-12T08:{m:02d}:00Z web-1 api[42]: request {m} served in 12 ms\n" for m in range(10))
JSON_LINES = "".join(
    json.dumps({"ts": f"2024-03-12T08:{m:02d}:30Z", "level": "error" if m % 3 == 0 else "info", "msg": f"job {m}"})
    + "\n"
    for m in range(7)
)
MEMBERS = {"var/log/api.log": SYSLOG_ISO, "var/log/jobs/worker.jsonl": JSON_LINES}


def _tar_bytes(members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_dir_info("var"))
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1710230400
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def _archive(path: Path, kind: str, members: dict[str, bytes]) -> Path:
    """Write ``members`` as an archive of ``kind`` at ``path`` (named without a telling extension)."""
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    raw = _tar_bytes(members)
    compress = {
        "tar": lambda b: b,
        "tgz": gzip.compress,
        "tar.bz2": bz2.compress,
        "tar.xz": lzma.compress,
        "tar.zst": zstandard.ZstdCompressor().compress,
    }[kind]
    path.write_bytes(compress(raw))
    return path


def _build(tmp_path: Path, *args: str) -> tuple[dict[str, Any], pd.DataFrame, str]:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", *args, "-o", str(out), "--no-images"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    incident = json.loads((out / "incident.json").read_text(encoding="utf-8"))
    events = pd.read_parquet(out / "events.parquet") if (out / "events.parquet").exists() else pd.DataFrame()
    return incident, events, result.output


def _sources(incident: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {source["name"]: source for source in incident["sources"]}


def _balanced(source: dict[str, Any]) -> bool:
    accounted = source["event_lines"] + source["continuation_lines"] + source["rejected"] + source["outside_window"]
    return bool(source["lines_read"] == accounted)


@pytest.mark.parametrize("kind", ["tgz", "tar", "zip", "tar.bz2", "tar.xz", "tar.zst"])
def test_each_member_is_a_source_with_its_own_format_and_every_line(tmp_path: Path, kind: str) -> None:
    """Detected from bytes (the archive has no extension); the first line of each member is kept."""
    archive = _archive(tmp_path / "support-bundle", kind, {k: v.encode() for k, v in MEMBERS.items()})
    incident, events, output = _build(tmp_path, str(archive))
    sources = _sources(incident)
    api, worker = f"{archive}!var/log/api.log", f"{archive}!var/log/jobs/worker.jsonl"
    assert set(sources) == {api, worker}
    assert sources[worker]["format"] == "json_lines"
    assert sources[api]["format"] != "json_lines"
    for name, text in ((api, SYSLOG_ISO), (worker, JSON_LINES)):
        lines = text.count("\n")
        assert sources[name]["lines_read"] == lines, name
        assert sources[name]["events"] == lines, name
        assert _balanced(sources[name])
        assert not sources[name]["partial"]
        cited = events[events["source"] == name]
        assert sorted(cited["line"].tolist()) == list(range(1, lines + 1))  # line 1 of each member too
    first = events[(events["source"] == api) & (events["line"] == 1)]
    assert "request 0 served" in first["message"].iloc[0]
    assert f"{archive}!var/log/api.log" in output


def test_a_compressed_member_inside_a_tar_is_decompressed(tmp_path: Path) -> None:
    rotated = gzip.compress(SYSLOG_ISO.encode())
    archive = tmp_path / "bundle.tar"
    archive.write_bytes(_tar_bytes({"var/log/api.log.1.gz": rotated, "var/log/api.log": SYSLOG_ISO[:80].encode()}))
    incident, events, _ = _build(tmp_path, str(archive))
    member = _sources(incident)[f"{archive}!var/log/api.log.1.gz"]
    assert member["events"] == SYSLOG_ISO.count("\n")
    assert _balanced(member)
    assert "gzip-compressed" in member["notes"]
    assert events[events["source"] == f"{archive}!var/log/api.log.1.gz"]["line"].min() == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_member_outside_the_window_counts_its_lines_outside(tmp_path: Path, workers: str) -> None:
    old = SYSLOG_ISO.replace("2024-03-12", "2023-01-05")
    members = {"old/api.log": old.encode(), "new/api.log": SYSLOG_ISO.encode()}
    archive = _archive(tmp_path / "bundle.tgz", "tgz", members)
    window = ("--start", "2024-03-12T08:00:00Z", "--end", "2024-03-12T09:00:00Z")
    incident, events, _ = _build(tmp_path, str(archive), *window, "--workers", workers)
    sources = _sources(incident)
    outside, inside = sources[f"{archive}!old/api.log"], sources[f"{archive}!new/api.log"]
    assert outside["lines_read"] == outside["outside_window"] == old.count("\n")
    assert outside["events"] == 0
    assert _balanced(outside)
    assert inside["events"] == SYSLOG_ISO.count("\n")
    assert inside["outside_window"] == 0
    assert set(events["source"]) == {f"{archive}!new/api.log"}


def test_a_zip_bomb_member_stops_at_its_cap_and_the_members_after_it_are_read(tmp_path: Path) -> None:
    """The member's cap (200x its compressed size, never below 64 MiB) stops it; the archive's own
    cap (from the archive's size, with 1 MiB of incompressible padding) is not reached."""
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(".padding", os.urandom(1 << 20), zipfile.ZIP_STORED)  # hidden: passed over
        zf.writestr("bomb.log", b"\0" * (100 << 20), zipfile.ZIP_DEFLATED)
        zf.writestr("after.log", SYSLOG_ISO, zipfile.ZIP_DEFLATED)
    incident, _, _ = _build(tmp_path, str(archive))
    sources = _sources(incident)
    bomb = sources[f"{archive}!bomb.log"]
    assert bomb["partial"]
    assert "decompressed-size cap" in bomb["partial_reason"]
    assert bomb["reject_reasons"].get("decompressed_size_cap") == 1
    assert _balanced(bomb)
    assert sources[f"{archive}!after.log"]["events"] == SYSLOG_ISO.count("\n")
    assert f"{archive}!.padding" not in sources
    assert incident["partial"]


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_an_archive_past_its_cap_stops_there_and_says_what_was_not_read(tmp_path: Path, kind: str) -> None:
    """A tar with a huge member (or a zip whose members add up past the cap): the member is cut at the
    archive's cap, partial; the members after it are not read, and an entry named after the archive says so."""
    members = {"first.log": SYSLOG_ISO.encode(), "huge.log": b"\0" * (100 << 20), "after.log": SYSLOG_ISO.encode()}
    archive = _archive(tmp_path / f"bundle.{kind}", kind, members)
    incident, _, output = _build(tmp_path, str(archive))
    sources = _sources(incident)
    assert sources[f"{archive}!first.log"]["events"] == SYSLOG_ISO.count("\n")
    huge = sources[f"{archive}!huge.log"]
    assert huge["partial"]
    assert "decompressed-size cap" in huge["partial_reason"]
    assert _balanced(huge)
    assert f"{archive}!after.log" not in sources
    whole = sources[str(archive)]
    assert whole["partial"]
    assert "decompressed-size cap" in whole["skipped_reason"]
    assert "not read after huge.log" in whole["skipped_reason"]
    assert "not read after huge.log" in output


def test_links_devices_and_escaping_names_are_never_extracted(tmp_path: Path) -> None:
    """Members at ``..`` and absolute paths are read in memory (nothing is written); links are never
    followed, devices and FIFOs never read; each skip says why."""
    secret = tmp_path / "secret.txt"
    secret.write_text("2024-03-12T08:00:00Z host sshd[1]: SECRET-CONTENT\n")
    extra = []
    for name, kind, target in (
        ("var/log/link.log", tarfile.SYMTYPE, str(secret)),
        ("var/log/hard.log", tarfile.LNKTYPE, "var/log/api.log"),
        ("var/log/tty", tarfile.CHRTYPE, ""),
        ("var/log/pipe", tarfile.FIFOTYPE, ""),
    ):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        extra.append(info)
    data = {"../../escape.log": SYSLOG_ISO.encode(), "/etc/evil.log": SYSLOG_ISO.encode()}
    data["var/log/api.log"] = SYSLOG_ISO.encode()
    archive = tmp_path / "work" / "bundle.tar"
    archive.parent.mkdir()
    archive.write_bytes(_tar_bytes(data, extra))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    incident, events, _ = _build(tmp_path, str(archive))
    sources = _sources(incident)
    for name in ("../../escape.log", "/etc/evil.log", "var/log/api.log"):
        assert sources[f"{archive}!{name}"]["events"] == SYSLOG_ISO.count("\n"), name
    assert sources[f"{archive}!var/log/link.log"]["skipped_reason"] == f"symbolic link to {secret}: not followed"
    assert sources[f"{archive}!var/log/hard.log"]["skipped_reason"] == "hard link to var/log/api.log: not followed"
    assert "a device" in sources[f"{archive}!var/log/tty"]["skipped_reason"]
    assert "a FIFO" in sources[f"{archive}!var/log/pipe"]["skipped_reason"]
    assert not events["message"].str.contains("SECRET-CONTENT").any()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts)
    assert after == before  # nothing extracted anywhere
    assert not Path("/etc/evil.log").exists()


def test_nested_archives_and_repeated_names_are_reported(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("app.log", SYSLOG_ISO)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("inner.zip", inner.getvalue()), ("app.log", SYSLOG_ISO.encode()), ("app.log", b"x\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "outer.tgz"
    archive.write_bytes(gzip.compress(raw.getvalue()))
    incident, _, _ = _build(tmp_path, str(archive))
    sources = _sources(incident)
    assert "a zip archive inside an archive" in sources[f"{archive}!inner.zip"]["skipped_reason"]
    first, second = (s for s in incident["sources"] if s["name"] == f"{archive}!app.log")
    assert first["events"] == SYSLOG_ISO.count("\n")  # the first of the two is read
    assert second["skipped_reason"] == "a second member of the same name: not read (the first one is)"


def test_a_year_less_member_takes_its_year_from_the_alerts_beside_it(tmp_path: Path) -> None:
    """Not from the member's modification time in the archive (late 2026 here)."""
    members = {
        "hosts/syslog": (SAMPLE_LOGS / "hosts" / "syslog").read_bytes(),
        "alerts/alertmanager.json": (SAMPLE_LOGS / "alerts" / "alertmanager.json").read_bytes(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1796000000  # 2026-11-30
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "bundle.tgz"
    archive.write_bytes(gzip.compress(raw.getvalue()))
    _, events, _ = _build(tmp_path, str(archive))
    syslog = events[events["source"] == f"{archive}!hosts/syslog"]
    assert len(syslog) > 0
    assert set(syslog["timestamp"].dt.year) == {2024}


def test_an_empty_archive_is_listed_as_holding_no_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    log = tmp_path / "api.log"
    log.write_text(SYSLOG_ISO)
    incident, _, _ = _build(tmp_path, str(empty), str(log))
    sources = _sources(incident)
    assert sources[str(empty)]["skipped_reason"] == "an empty zip archive: no file in it"
    assert sources[str(log)]["events"] == SYSLOG_ISO.count("\n")


def test_a_truncated_archive_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    big = "".join(f"2024-03-12T08:{m // 60:02d}:{m % 60:02d}Z web-1 api[42]: request {m} ok\n" for m in range(3000))
    whole = gzip.compress(_tar_bytes({"a.log": SYSLOG_ISO.encode(), "b.log": big.encode()}))
    archive = tmp_path / "cut.tgz"
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    incident, _, _ = _build(tmp_path, str(archive))
    sources = _sources(incident)
    assert sources[f"{archive}!a.log"]["events"] == SYSLOG_ISO.count("\n")
    cut = sources[f"{archive}!b.log"]
    assert cut["partial"]
    assert 0 < cut["events"] < 3000
    assert _balanced(cut)
    assert "truncated" in cut["partial_reason"]


def test_source_globs_match_a_members_provenance_and_its_own_path(tmp_path: Path) -> None:
    naive = SYSLOG_ISO.replace("Z ", " ")
    archive = _archive(tmp_path / "bundle.tgz", "tgz", {"var/log/api.log": naive.encode(), "var/log/x.jsonl": b""})
    zone, service = "bundle.tgz!var/log/*.log=Europe/Amsterdam", "var/log/api.log=checkout"
    incident, events, _ = _build(tmp_path, str(archive), "--source-tz", zone, "--service", service)
    member = _sources(incident)[f"{archive}!var/log/api.log"]
    assert member["time_zone"] == "Europe/Amsterdam"
    mine = events[events["source"] == f"{archive}!var/log/api.log"]
    assert set(mine["service"]) == {"checkout"}
    assert mine["timestamp"].min() == pd.Timestamp("2024-03-12T07:00:00Z")  # 08:00 in Amsterdam


def test_the_sample_incident_in_a_tgz_gives_its_phases_and_citations_that_resolve(tmp_path: Path) -> None:
    truth = json.loads((SAMPLE_LOGS / "truth.json").read_text(encoding="utf-8"))
    archive = tmp_path / "sample.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SAMPLE_LOGS, arcname="sample_logs")
    zones = [f"--source-tz={glob}={zone}" for glob, zone in truth["source_tz"]]
    incident, _, _ = _build(tmp_path, str(archive), *zones)
    for phase, when in truth["phases"].items():
        assert pd.Timestamp(incident["phases"][phase]) == pd.Timestamp(when), phase
    draft = (tmp_path / "out" / "postmortem.md").read_text(encoding="utf-8")
    checks = read_claims(draft)
    assert len(checks.seen) >= 15
    assert all(path.startswith(f"{archive}!sample_logs/") for path, _ in checks.seen)
    window = tuple(dt.datetime.fromisoformat(truth["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    corpus = Corpus((window[0], window[1]), tuple((glob, zone) for glob, zone in truth["source_tz"]))
    assert problems_of(checks, corpus) == []


def test_sniff_shows_a_member_and_names_one_for_an_archive(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "bundle.zip", "zip", {"logs/worker.jsonl": JSON_LINES.encode()})
    result = CliRunner().invoke(cli, ["sniff", str(archive)], catch_exceptions=False)
    assert result.exit_code == 1
    said = "is a zip archive: `pmtimeline build` reads each of its files as a source; sniff one of them as"
    assert f"{said} '{archive}!logs/worker.jsonl'" in result.output
    member = CliRunner().invoke(cli, ["sniff", f"{archive}!logs/worker.jsonl"], catch_exceptions=False)
    assert member.exit_code == 0, member.output
    assert "json_lines" in member.output
    assert "job 0" in member.output
    missing = CliRunner().invoke(cli, ["sniff", f"{archive}!logs/nope.log"], catch_exceptions=False)
    assert missing.exit_code == 1
    assert f"{archive} holds no file logs/nope.log" in missing.output


def test_archives_are_told_from_their_bytes_not_their_names(tmp_path: Path) -> None:
    fake = tmp_path / "logs.zip"
    fake.write_text("PK is not at the start\n")
    text = tmp_path / "app.tar.gz"
    text.write_bytes(gzip.compress(SYSLOG_ISO.encode()))  # a gzip log, not a tar
    real = _archive(tmp_path / "x", "tar.xz", {"a.log": SYSLOG_ISO.encode()})
    assert archive_kind(str(fake)) is None
    assert archive_kind(str(text)) is None
    assert archive_kind(str(real)) == "tar"
    listing = open_archive(str(real), "tar", TimelineConfig())
    assert [str(m) for m in listing.members] == [f"{real}!a.log"]
    member = listing.members[0]
    assert isinstance(member, ArchiveMember)
    assert member.member == "a.log"
    assert member.size == len(SYSLOG_ISO)


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_member_streams_start_over_and_run_side_by_side(tmp_path: Path, kind: str) -> None:
    """A member read again from its start (a head, then the whole), two streams of one member open at
    once (the whole file read again to choose a year), then an earlier member: the same bytes each time."""
    data = {"a.log": b"x\n" * 10, "b.log": b"y\n" * 100_000}
    archive = _archive(tmp_path / "bundle", kind, data)
    first, second = open_archive(str(archive), "tar" if kind == "tgz" else "zip", TimelineConfig()).members

    def whole(stream: Any, chunk: int = 1 << 20) -> bytes:
        parts = []
        while piece := stream.read(chunk):
            parts.append(piece)
        stream.close()
        return b"".join(parts)

    head = first.open_stream()
    assert head.read(5) == b"x\nx\nx"
    head.close()
    assert whole(first.open_stream(), 3) == data["a.log"]
    outer = second.open_stream()
    assert outer.read(10) == data["b.log"][:10]
    assert whole(second.open_stream()) == data["b.log"]
    assert whole(outer) == data["b.log"][10:]
    assert outer.stopped is None
    assert whole(first.open_stream()) == data["a.log"]
