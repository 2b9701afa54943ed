"""Outputs are written safely, and the reason reaches the user (issue 17 items 6, 7's links and 8).

:class:`~pmtimeline.output_files.OutputTransaction` on its own, then through the CLI on inputs built
here: planted symbolic links at every output path, an existing rejects file of mode 0644, a full
disk (a real ``EFBIG`` from ``RLIMIT_FSIZE`` in a subprocess), a read-only file system (a real
read-only bind mount in a user namespace), outputs under a regular file, Ctrl-C (a real ``SIGINT``),
and runs where every source fails (one empty file, Elasticsearch answering 503, a refused connection).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from esstub import EsStub

from pmtimeline.cli import cli
from pmtimeline.errors import OutputError
from pmtimeline.output_files import STAGING_PREFIX, OutputTransaction

WINDOW = ("2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z")
#: The files of a build folder that symlinks are planted at (incident.toml is only written when absent).
BUILD_FILES = ("events.parquet", "incident.json", "postmortem.md", "timeline.html")


def incident_log(n: int = 1200) -> str:
    """A service log: steady requests, then a burst of errors in the middle."""
    lines = []
    for i in range(n):
        level, what = ("ERROR", "payment failed: upstream timeout") if n // 2 <= i < n // 2 + 60 else ("INFO", "ok")
        lines.append(f"2024-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z {level} api: request {i} {what} user=u{i % 7}")
    return "\n".join(lines) + "\n"


def run(*args: str, expect_exit: int = 0) -> Result:
    """``pmtimeline ARGS`` in the current folder; never a traceback; errors are one ``Error:`` line."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    assert result.exit_code == expect_exit, result.output
    if expect_exit:
        assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1, result.stderr
    return result


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) with the hash of its bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def staging_left(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(f"{STAGING_PREFIX}*")]


def pmtimeline(
    *args: str, cwd: Path, fsize: int | None = None, wrap: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m pmtimeline ARGS`` in a subprocess, optionally with a file-size limit (``EFBIG``
    on the first write past it, as on a full disk) or under a wrapper command."""

    def limit() -> None:
        if fsize is not None:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    command = [*(wrap or []), sys.executable, "-m", "pmtimeline", *args]
    return subprocess.run(command, cwd=cwd, preexec_fn=limit, capture_output=True, text=True, timeout=300, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [line for line in proc.stderr.splitlines() if line.strip()], proc.stderr
    assert len(errors) == 1, proc.stderr
    assert expected in errors[0], proc.stderr


@pytest.fixture
def here(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding app.log and the build of it in out/ (copied by the tests that change it)."""
    folder = tmp_path_factory.mktemp("built")
    (folder / "app.log").write_text(incident_log())
    proc = pmtimeline("build", "app.log", "-o", "out", "--no-images", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture
def rebuilt(built: Path, tmp_path: Path) -> Path:
    """A private copy of ``built``."""
    shutil.copytree(built, tmp_path / "w")
    return tmp_path / "w"


# -- OutputTransaction ------------------------------------------------------------------------------------


def test_files_appear_only_on_commit_then_all_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputTransaction(out) as outputs:
        outputs.write_text(out / "a.md", "new a\n")
        outputs.write_bytes(out / "data" / "b.bin", b"\x00b")
        outputs.write_text(tmp_path / "rejects.csv", "r\n", mode=0o600)
        assert sorted(p.name for p in out.iterdir()) == [staging_left(out)[0].name]
        (folder,) = staging_left(out)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (out / "a.md").read_text() == "new a\n"
    assert (out / "data" / "b.bin").read_bytes() == b"\x00b"
    assert stat.S_IMODE((tmp_path / "rejects.csv").stat().st_mode) == 0o600
    assert staging_left(tmp_path) == []
    assert outputs.targets == (out / "a.md", out / "data" / "b.bin", tmp_path / "rejects.csv")


@pytest.mark.parametrize("failure", [RuntimeError("analysis failed"), KeyboardInterrupt()])
def test_a_failure_keeps_the_previous_files_and_removes_the_partial_ones(
    tmp_path: Path, failure: BaseException
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.md").write_text("old a\n")

    def failing_run(root: Path) -> None:
        with OutputTransaction(root) as outputs:
            outputs.write_text(root / "a.md", "new a\n")
            outputs.write_text(root / "b.md", "new b\n")
            raise failure

    with pytest.raises(type(failure)):
        failing_run(out)
    assert digest(out) == {"a.md": hashlib.sha256(b"old a\n").hexdigest()}
    assert staging_left(tmp_path) == []
    # A folder the failed run made is removed again.
    with pytest.raises(type(failure)):
        failing_run(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()


def test_links_at_output_paths_are_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.md").symlink_to(victim)
    (out / "data").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "r.csv").symlink_to(victim)
    with OutputTransaction(out) as outputs:
        outputs.write_text(out / "a.md", "new\n")
        outputs.write_text(out / "data" / "t.bin", "t")
        outputs.write_text(tmp_path / "r.csv", "r\n", mode=0o600)
    assert victim.read_text() == "precious\n"
    assert list(elsewhere.iterdir()) == []
    for path in (out / "a.md", out / "data", tmp_path / "r.csv"):
        assert not path.is_symlink()
    assert (out / "a.md").read_text() == "new\n"
    assert (out / "data" / "t.bin").read_text() == "t"


def test_a_folder_in_the_way_fails_before_anything_moves(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "b.md").mkdir(parents=True)
    (out / "a.md").write_text("old\n")
    outputs = OutputTransaction(out)
    outputs.write_text(out / "a.md", "new\n")
    outputs.write_text(out / "b.md", "new\n")
    with pytest.raises(OutputError, match=r"^cannot write .*b\.md: is a directory$"):
        outputs.commit()
    assert (out / "a.md").read_text() == "old\n"
    assert staging_left(out) == []


def test_unwritable_places_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^cannot write .*file/out: not a directory$"):
        OutputTransaction(tmp_path / "file" / "out")
    with pytest.raises(OutputError, match=r"^cannot write .*missing/x\.csv: no such file or directory$"):
        OutputTransaction().write_text(tmp_path / "missing" / "x.csv", "x")


# -- symlinks and modes through the CLI ------------------------------------------------------------------


def test_build_never_writes_through_planted_links(rebuilt: Path) -> None:
    os.chdir(rebuilt)
    victims = {}
    for name in (*BUILD_FILES, "rejects.csv"):
        victim = rebuilt / f"victim-{name}"
        victim.write_text(f"precious {name}\n")
        victims[name] = victim
        link = rebuilt / ("out" if name != "rejects.csv" else ".") / name
        link.unlink(missing_ok=True)
        link.symlink_to(victim)
    shutil.rmtree(rebuilt / "out" / "data")
    (rebuilt / "elsewhere").mkdir()
    (rebuilt / "out" / "data").symlink_to(rebuilt / "elsewhere", target_is_directory=True)
    (rebuilt / "bad.log").write_text("not a log line\n" + incident_log(100))
    run("build", "app.log", "bad.log", "-o", "out", "--no-images", "--rejects", "rejects.csv")
    for name, victim in victims.items():
        assert victim.read_text() == f"precious {name}\n", name
    assert list((rebuilt / "elsewhere").iterdir()) == []
    for name in BUILD_FILES:
        assert not (rebuilt / "out" / name).is_symlink()
    assert not (rebuilt / "out" / "data").is_symlink()
    assert len(pd.read_parquet(rebuilt / "out" / "events.parquet")) == 1300
    assert "payment failed" in (rebuilt / "out" / "postmortem.md").read_text()
    assert "bad.log" in (rebuilt / "rejects.csv").read_text()
    assert staging_left(rebuilt) == []


def test_ingest_export_chart_and_report_never_write_through_links(rebuilt: Path) -> None:
    os.chdir(rebuilt)
    victim = rebuilt / "victim.txt"
    victim.write_text("precious\n")
    for name in ("e.csv", "x.jsonl", "out/timeline.html", "out/postmortem.md"):
        (rebuilt / name).unlink(missing_ok=True)
        (rebuilt / name).symlink_to(victim)
    run("ingest", "app.log", "-o", "e.csv")
    run("export", "out", "-o", "x.jsonl")
    run("chart", "out", "--no-images")
    run("report", "out", "--no-images", "--title", "Retitled")
    assert victim.read_text() == "precious\n"
    assert len(pd.read_csv(rebuilt / "e.csv")) == 1200
    assert (rebuilt / "x.jsonl").read_text().count("\n") == 1200
    assert "Retitled" in (rebuilt / "out" / "postmortem.md").read_text()
    written = ("e.csv", "x.jsonl", "out/timeline.html", "out/postmortem.md")
    assert not any((rebuilt / name).is_symlink() for name in written)


def test_an_existing_rejects_file_becomes_0600(here: Path) -> None:
    (here / "bad.log").write_text("not a log line\n" + incident_log(50))
    for command in (["ingest", "bad.log", "-o", "e.csv"], ["build", "bad.log", "-o", "out", "--no-images"]):
        rejects = here / "rejects.csv"
        rejects.write_text("old\n")
        rejects.chmod(0o644)
        run(*command, "--rejects", "rejects.csv")
        assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
        assert "not a log line" in rejects.read_text()


# -- full disk, read-only, not a directory, Ctrl-C ------------------------------------------------------


@pytest.mark.parametrize(("limit", "failing"), [(20_000, "events.parquet"), (120_000, "timeline.html")])
def test_a_full_disk_keeps_the_previous_outputs(rebuilt: Path, limit: int, failing: str) -> None:
    before = digest(rebuilt / "out")
    proc = pmtimeline("build", "app.log", "-o", "out", "--no-images", "--title", "Changed", cwd=rebuilt, fsize=limit)
    one_error_line(proc, f"Error: cannot write out/{failing}: file too large")
    assert digest(rebuilt / "out") == before
    assert staging_left(rebuilt) == []
    (rebuilt / "e.jsonl").write_text("old\n")
    proc = pmtimeline("ingest", "app.log", "-o", "e.jsonl", cwd=rebuilt, fsize=limit)
    one_error_line(proc, "Error: cannot write e.jsonl: file too large")
    assert (rebuilt / "e.jsonl").read_text() == "old\n"
    assert staging_left(rebuilt) == []


def _read_only_wrapper(folder: Path) -> list[str] | None:
    """A command prefix that runs its command with ``folder`` mounted read-only (a user and mount
    namespace: works as root, where chmod stops nothing); None when the system allows none."""
    if shutil.which("unshare") is None:
        return None
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    wrapper = ["unshare", "-rm", "sh", "-c", script, "sh"]
    probe = subprocess.run([*wrapper, "touch", str(folder / ".probe")], capture_output=True, text=True, check=False)
    if "Read-only file system" not in probe.stderr:
        return None
    return wrapper


def test_a_read_only_folder_is_one_line(rebuilt: Path) -> None:
    before = digest(rebuilt / "out")
    wrapper = _read_only_wrapper(rebuilt)
    if wrapper is None:
        if os.geteuid() == 0:
            pytest.skip("no user namespace to mount a folder read-only, and chmod does not stop root")
        rebuilt.chmod(0o555)
        (rebuilt / "out").chmod(0o555)
    proc = pmtimeline("build", "app.log", "-o", "out", "--no-images", cwd=rebuilt, wrap=wrapper)
    reason = "read-only file system" if wrapper else "permission denied"
    one_error_line(proc, f"Error: cannot write out: {reason}")
    proc = pmtimeline("ingest", "app.log", "-o", "e.csv", cwd=rebuilt, wrap=wrapper)
    one_error_line(proc, f"Error: cannot write e.csv: {reason}")
    if wrapper is None:
        (rebuilt / "out").chmod(0o755)
        rebuilt.chmod(0o755)
    assert digest(rebuilt / "out") == before


def test_an_output_under_a_regular_file_is_one_line(here: Path) -> None:
    (here / "app.log").write_text(incident_log(100))
    result = run("build", "app.log", "-o", "app.log/out", "--no-images", expect_exit=1)
    assert "Error: cannot write app.log/out: not a directory" in result.stderr
    result = run("ingest", "app.log", "-o", "app.log/e.csv", expect_exit=1)
    assert "Error: cannot write app.log/e.csv: not a directory" in result.stderr
    result = run("ingest", "app.log", "-o", "e.csv", "--rejects", "app.log/r.csv", expect_exit=1)
    assert "Error: cannot write app.log/r.csv: not a directory" in result.stderr
    assert not (here / "e.csv").exists()  # all or nothing: the table waits for the rejects file
    run("build", "app.log", "-o", "out", "--no-images")
    result = run("export", "out", "-o", "app.log/x.csv", expect_exit=1)
    assert "Error: cannot write app.log/x.csv: not a directory" in result.stderr
    assert staging_left(here) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_keeps_the_previous_outputs(rebuilt: Path, signum: int) -> None:
    before = digest(rebuilt / "out")
    with EsStub() as stub:
        stub.add_documents(
            "logs-app", [{"@timestamp": f"2024-03-01T10:00:{i:02d}Z", "message": f"doc {i}"} for i in range(12)]
        )
        stub.add_fault("search", "delay", delay=60, first_call=2, times=None)  # page 2 never comes
        args = ["build", "app.log", "--es", stub.url, "--es-mode", "documents", "--es-page-size", "5"]
        command = [
            sys.executable,
            "-m",
            "pmtimeline",
            *args,
            "--start",
            WINDOW[0],
            "--end",
            WINDOW[1],
            "-o",
            "out",
            "--no-images",
        ]
        proc = subprocess.Popen(command, cwd=rebuilt, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list((rebuilt / "out").glob(f"{STAGING_PREFIX}*/events.parquet")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # app.log and the first page are read and written
        proc.send_signal(signum)
        _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "Aborted!" in stderr
    assert digest(rebuilt / "out") == before
    assert staging_left(rebuilt) == []


# -- the reason reaches the user -------------------------------------------------------------------------


def reason_before_error(result: Result, reason: str) -> None:
    """``reason`` is printed (in the summary) before the one ``Error:`` line, which names it too."""
    lines = result.output.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    assert any(reason in line for line in lines[:error]), result.output
    assert lines[0].startswith("source"), result.output  # the summary's header comes first
    assert reason in lines[error]


@pytest.mark.parametrize("command", ["build", "ingest"])
def test_one_empty_file_says_why(here: Path, command: str) -> None:
    (here / "empty.log").write_bytes(b"")
    out = ["-o", "out"] if command == "build" else ["-o", "e.csv"]
    result = run(command, "empty.log", *out, "--no-images" if command == "build" else "--strict", expect_exit=1)
    reason_before_error(result, "the file is empty or blank")
    assert "no events could be read from any input (empty.log: the file is empty or blank)" in result.stderr
    assert not (here / "out").exists()
    assert not (here / "e.csv").exists()


@pytest.mark.parametrize("command", ["build", "ingest"])
@pytest.mark.parametrize("mode", ["auto", "documents"])
def test_elasticsearch_unavailable_forever_says_why(here: Path, command: str, mode: str) -> None:
    with EsStub() as stub:
        stub.add_documents("logs-app", [{"@timestamp": "2024-03-01T10:00:00Z", "message": "hello"}])
        stub.add_fault("*", "status", status=503, times=None)
        out = ["-o", "out", "--no-images"] if command == "build" else ["-o", "e.csv"]
        result = run(
            command, "--es", stub.url, "--es-mode", mode, "--start", WINDOW[0], "--end", WINDOW[1], *out, expect_exit=1
        )
    reason_before_error(result, "kept answering 503 (service unavailable)")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("command", ["build", "ingest"])
def test_a_refused_connection_says_why_and_the_other_sources_still_count(here: Path, command: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    out = ["-o", "out", "--no-images"] if command == "build" else ["-o", "e.csv"]
    window = ["--start", WINDOW[0], "--end", WINDOW[1]]
    result = run(command, "--es", url, *window, *out, expect_exit=1)
    reason_before_error(result, f"cannot connect to {url}: connection refused")
    # With a readable file beside it the run goes on, and the summary still says why the cluster gave nothing.
    (here / "app.log").write_text(incident_log(200))
    result = run(command, "app.log", "--es", url, *window, *out)
    assert f"skipped es:logs-*: cannot connect to {url}: connection refused" in result.output
