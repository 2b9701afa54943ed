"""Adversarial shapes: does the cost follow the size of the logs, whatever their content? (issue 17, item 9)

Each shape is a set of log files whose content is built to make some stage's cost grow with
something other than the bytes; it is timed against the same number of lines and (nearly) the same
bytes in an ordinary shape:

==========  ======================================================  =====================================
shape       adversarial                                             ordinary (baseline)
==========  ======================================================  =====================================
users       200 k ECS lines naming 100 k distinct users             the same lines naming 20 users
templates   200 k lines of 50 k distinct message templates          the same lines of 50 templates
services    200 k lines of 2,000 distinct services                  the same lines of 5 services
files       20,000 files of one line each                           the same 20,000 lines in one file
line        a 100 MB line among 10 k ordinary lines                 the same bytes in ordinary lines
y1970       50 k lines and one stamped 1970-01-01                   the same lines and one stamped as they are
==========  ======================================================  =====================================

All files are ECS JSON lines (``@timestamp``, ``log.level``, ``service.name``, ``user.name``,
``message``) over two hours. Each run is ``pmtimeline build`` (or ``ingest`` with ``--command``)
in a fresh process (``build`` with ``--no-images``: the chart export's Chromium says nothing of
the logs), its wall time and the peaks of the summed RSS and PSS of its process tree measured as
``run_bench.py`` measures them. The table gives both times, their ratio and the adversarial run's
peak memory. Targets: every ratio within 2 and every peak under 1 GB.

Usage::

    python bench/adversarial.py                       # every shape at full size (minutes)
    python bench/adversarial.py --scale 0.01 --shapes users,files --command ingest

``--scale`` multiplies every count (lines, users, templates, services, files, line bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import measure  # a script beside this one, not a package

SHAPES: Final = ("users", "templates", "services", "files", "line", "y1970")
START_S: Final = 1_710_230_400  # 2024-03-12T08:00:00Z
SPAN_S: Final = 2 * 3600
SEED: Final = 1717
LEVELS: Final = ("info", "info", "info", "warn", "error")


@dataclass
class Row:
    shape: str
    lines: int
    bytes: int
    seconds: float
    baseline_seconds: float
    ratio: float
    peak_rss_mb: float
    baseline_peak_rss_mb: float
    peak_pss_mb: float
    cpu_seconds: float  # of the adversarial run's process tree: steadier than wall time on a shared machine
    baseline_cpu_seconds: float
    exit_code: int
    baseline_exit_code: int


def _stamp(i: int, n: int) -> str:
    """An ISO 8601 UTC time, i-th of n spread evenly over the window (millisecond precision)."""
    ms = START_S * 1000 + (i * SPAN_S * 1000) // max(n, 1)
    seconds, millis = divmod(ms, 1000)
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _line(stamp: str, level: str, service: str, user: str, message: str) -> str:
    return json.dumps(
        {"@timestamp": stamp, "log.level": level, "service.name": service, "user.name": user, "message": message},
        separators=(",", ":"),
    )


def _lines(
    n: int, message: Callable[[int], str], *, service: Callable[[int], str] = lambda i: "checkout"
) -> Iterator[str]:
    rng = random.Random(SEED)
    for i in range(n):
        yield _line(_stamp(i, n), rng.choice(LEVELS), service(i), f"u{i % 997:07d}", message(i))


def _write(path: Path, lines: Iterator[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")


def _users(folder: Path, scale: float, distinct: int) -> None:
    n = max(int(200_000 * scale), 10)
    rng = random.Random(SEED)
    names = [f"u{rng.randrange(10_000_000):07d}" for _ in range(max(distinct, 1))]

    def lines() -> Iterator[str]:
        for i in range(n):
            user = names[i % len(names)]
            yield _line(_stamp(i, n), "warn", "auth", user, f"authentication failed for user {user} (bad password)")

    _write(folder / "auth.jsonl", lines())


def _templates(folder: Path, scale: float, distinct: int) -> None:
    n = max(int(200_000 * scale), 10)
    rng = random.Random(SEED)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7)) for _ in range(64)]
    # Distinct word triples: each one a template of its own (the words are not variables).
    triples = [(i // 4096 % 64, i // 64 % 64, i % 64) for i in range(max(distinct, 1))]

    def message(i: int) -> str:
        a, b, c = triples[i % len(triples)]
        return f"{vocabulary[a]} {vocabulary[b]} {vocabulary[c]} failed at stage {i % 10} after {i % 997} ms"

    _write(folder / "app.jsonl", _lines(n, message))


def _services(folder: Path, scale: float, distinct: int) -> None:
    n = max(int(200_000 * scale), 10)
    _write(
        folder / "app.jsonl",
        _lines(n, lambda i: f"request {i} served in {i % 997} ms", service=lambda i: f"svc-{i % max(distinct, 1):04d}"),
    )


def _files(folder: Path, scale: float, *, one_file: bool) -> None:
    n = max(int(20_000 * scale), 2)
    lines = list(_lines(n, lambda i: f"request {i} served in {i % 997} ms"))
    if one_file:
        _write(folder / "all" / "app.jsonl", iter(lines))
        return
    for i, line in enumerate(lines):
        # Spread over folders of 1,000 files, as rotated per-pod or per-job logs are.
        path = folder / f"part{i // 1000:03d}" / f"job-{i:06d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n", encoding="utf-8")


def _long_line(folder: Path, scale: float, *, one_line: bool) -> None:
    n = max(int(10_000 * scale), 10)
    size = max(int(100_000_000 * scale), 1000)
    ordinary = list(_lines(n, lambda i: f"request {i} served in {i % 997} ms"))
    filler = "x" * 120

    def lines() -> Iterator[str]:
        yield from ordinary[: n // 2]
        if one_line:
            yield _line(_stamp(n // 2, n), "error", "checkout", "u0000001", "payload " + "y" * size)
        else:
            # The same bytes in lines of the ordinary length, at the same moment.
            line = _line(_stamp(n // 2, n), "info", "checkout", "u0000001", filler)
            for _ in range(max(size // (len(line) + 1), 1)):
                yield line
        yield from ordinary[n // 2 :]

    _write(folder / "app.jsonl", lines())


def _y1970(folder: Path, scale: float, *, odd: bool) -> None:
    n = max(int(50_000 * scale), 10)

    def lines() -> Iterator[str]:
        for i, line in enumerate(_lines(n, lambda i: f"request {i} served in {i % 997} ms")):
            yield line
            if i == n // 2:
                stamp = "1970-01-01T00:00:00.000Z" if odd else _stamp(i, n)
                yield _line(stamp, "error", "checkout", "u0000001", "clock reset: request served in 1 ms")

    _write(folder / "app.jsonl", lines())


def generate(shape: str, folder: Path, scale: float, *, adversarial: bool) -> None:
    """Write the adversarial or the ordinary variant of ``shape`` into ``folder``."""
    if shape == "users":
        _users(folder, scale, int(100_000 * scale) if adversarial else 20)
    elif shape == "templates":
        _templates(folder, scale, int(50_000 * scale) if adversarial else 50)
    elif shape == "services":
        _services(folder, scale, int(2_000 * scale) if adversarial else 5)
    elif shape == "files":
        _files(folder, scale, one_file=not adversarial)
    elif shape == "line":
        _long_line(folder, scale, one_line=adversarial)
    elif shape == "y1970":
        _y1970(folder, scale, odd=adversarial)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _size(folder: Path) -> tuple[int, int]:
    lines = size = 0
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as data:
                for block in iter(lambda: data.read(1 << 24), b""):
                    lines += block.count(b"\n")
                    size += len(block)
    return lines, size


def run_shape(shape: str, work: Path, scale: float, command: str, exe: str) -> Row:
    """Generate both variants of ``shape`` under ``work`` and time ``command`` on each."""
    timings = []
    for adversarial in (True, False):
        variant = work / shape / ("adversarial" if adversarial else "ordinary")
        shutil.rmtree(variant, ignore_errors=True)
        generate(shape, variant / "logs", scale, adversarial=adversarial)
        out = variant / "out"
        out.mkdir(parents=True)
        argv = [exe, command, str(variant / "logs")]
        # The chart's PNG/SVG export starts Chromium, whose memory and time say nothing of the logs.
        argv += ["-o", str(out / "events.parquet")] if command == "ingest" else ["-o", str(out), "--no-images"]
        timings.append(
            (measure(f"{shape} {'adversarial' if adversarial else 'ordinary'}", argv), _size(variant / "logs"))
        )
    (hard, (lines, size)), (easy, _) = timings
    ratio = hard.seconds / easy.seconds if easy.seconds > 0 else float("inf")
    return Row(
        shape, lines, size, hard.seconds, easy.seconds, ratio, hard.peak_rss_mb, easy.peak_rss_mb, hard.peak_pss_mb,
        hard.cpu_seconds, easy.cpu_seconds, hard.exit_code, easy.exit_code,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count (default 1)")
    parser.add_argument("--command", choices=("build", "ingest"), default="build")
    parser.add_argument(
        "--work", type=Path, help="folder for the generated logs and outputs (default: a temporary one)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes or args.scale <= 0:
        parser.error(f"unknown shape(s) {', '.join(unknown)}" if unknown else "give shapes and a positive scale")
    exe = shutil.which("pmtimeline") or str(Path(sys.executable).with_name("pmtimeline"))
    work = args.work or Path(tempfile.mkdtemp(prefix="pmtimeline-adversarial-"))
    load = os.getloadavg()[0]
    print(f"pmtimeline {args.command}, scale {args.scale:g}, load {load:.1f} on {os.cpu_count()} cores, in {work}")
    header = f"{'shape':<10} {'lines':>9} {'bytes':>12} {'s':>8} {'baseline s':>11} {'ratio':>6}"
    header += f" {'peak RSS MB':>12} {'PSS MB':>7} {'cpu s':>7} {'base cpu s':>10}"
    print(header)
    rows: list[Row] = []
    try:
        for shape in shapes:
            row = run_shape(shape, work, args.scale, args.command, exe)
            rows.append(row)
            flag = "" if row.exit_code == row.baseline_exit_code == 0 else "  (failed)"
            print(
                f"{row.shape:<10} {row.lines:>9,} {row.bytes:>12,} {row.seconds:>8.1f} {row.baseline_seconds:>11.1f}"
                f" {row.ratio:>6.2f} {row.peak_rss_mb:>12.0f} {row.peak_pss_mb:>7.0f}"
                f" {row.cpu_seconds:>7.1f} {row.baseline_cpu_seconds:>10.1f}{flag}",
                flush=True,
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"command": args.command, "scale": args.scale, "load": load,
                                         "rows": [asdict(r) for r in rows]}, indent=2))  # fmt: skip
    met = [r for r in rows if r.ratio <= 2 and r.peak_rss_mb < 1024 and r.exit_code == 0]
    print(f"within 2x and under 1 GB: {len(met)} of {len(rows)}")
    return 0 if all(r.exit_code == r.baseline_exit_code == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
