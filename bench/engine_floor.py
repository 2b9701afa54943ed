"""The floor: how fast the fastest engines a Python tool can use here read the benchmark corpus.

``pmtimeline ingest`` parses with polars (Rust's regex crate and chrono), Arrow and pandas. This
script measures what those engines cost with none of pmtimeline's work around them, on the same
corpus and in the same run as lnav, so the speed targets can be judged against what is possible:

- start-up: importing polars and pyarrow (pmtimeline also needs pandas);
- parse: each file's lines split, its fields captured by one regular expression per format and its
  time stamps parsed by one fixed layout (JSON lines by polars' own NDJSON reader), the five files
  at once on both cores (``polars.collect_all``);
- write: the parsed columns to Parquet (zstd), one file each.

What the floor leaves out, and pmtimeline must do: format detection, stack traces folded into their
event (here a trace line is just a line that does not match), lines that match no pattern kept as
counted rejects, zones and year-less time stamps resolved, one normalized event schema (levels,
kinds, ids, fields), the per-source accounting, progress, and streaming in bounded memory (the
floor holds every file whole). So the floor is a lower bound that no correct ingest on these engines
reaches, not a design.

Usage::

    python bench/engine_floor.py --corpus bench/corpus

It prints the floor's wall and CPU time beside lnav's, and the ratios the targets are about.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: The corpus files (bench/generate_corpus.py) and how the floor reads each.
_ACCESS = (
    r"^(?P<client_ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r' "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)" (?P<extra>.*\S)\s*$'
)
_SYSLOG = (
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<service>[^\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<message>.*)$"
)
_LOG4J = (
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<level>[A-Z]+) +"
    r"\[(?P<thread>[^\]]*)\] (?P<logger>\S+) - (?P<message>.*)$"
)
_PYTHON = r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (?P<logger>\S+) - (?P<level>[A-Z]+) - (?P<message>.*)$"
REGEX_FILES = {
    # file: (pattern, time layout (chrono), has a zone)
    "access.log": (_ACCESS, "%d/%b/%Y:%H:%M:%S %z", True),
    "syslog": (_SYSLOG, "%b %d %H:%M:%S", False),
    "service.log": (_LOG4J, "%Y-%m-%d %H:%M:%S,%3f", False),
    "worker.log": (_PYTHON, "%Y-%m-%d %H:%M:%S,%3f", False),
}
JSON_FILES = {"app.jsonl": ("@timestamp", "%Y-%m-%dT%H:%M:%S%.fZ")}


def floor_run(corpus: Path, out: Path) -> dict[str, float]:
    """Parse and write the corpus with bare engines; returns the seconds of each step."""
    started = time.perf_counter()
    import polars as pl
    import pyarrow  # noqa: F401 - part of the start-up any Arrow-based tool pays

    imported = time.perf_counter()
    plans = []
    for name, (pattern, layout, zoned) in REGEX_FILES.items():
        # One string column of lines: no separator or quote can split a line.
        lines = pl.scan_csv(
            corpus / name, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String}
        )
        dtype = pl.Datetime("ns", "UTC") if zoned else pl.Datetime("ns")
        plans.append(
            lines.with_row_index("line_number")
            .with_columns(pl.col("line").str.extract_groups(pattern).alias("fields"))
            .unnest("fields")
            .with_columns(pl.col("ts").str.strptime(dtype, layout, strict=False).alias("timestamp"))
            .drop("line")
        )
    for name, (field, layout) in JSON_FILES.items():
        plans.append(
            pl.scan_ndjson(corpus / name, infer_schema_length=1000).with_columns(
                pl.col(field).str.to_datetime(layout, time_unit="ns", time_zone="UTC", strict=False).alias("timestamp")
            )
        )
    frames = pl.collect_all(plans)
    parsed = time.perf_counter()
    rows = 0
    for name, frame in zip([*REGEX_FILES, *JSON_FILES], frames, strict=True):
        frame.write_parquet(out / f"{name}.parquet", compression="zstd")
        rows += len(frame)
    written = time.perf_counter()
    return {
        "import_s": imported - started,
        "parse_s": parsed - imported,
        "write_s": written - parsed,
        "total_s": written - started,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--runs", type=int, default=2, help="runs of each command (the best is kept)")
    parser.add_argument("--skip-lnav", action="store_true", help="time the floor alone")
    parser.add_argument("--child-steps", type=Path, help=argparse.SUPPRESS)  # run the floor, write its steps here
    args = parser.parse_args()
    if args.child_steps:
        with tempfile.TemporaryDirectory() as tmp:
            args.child_steps.write_text(json.dumps(floor_run(args.corpus, Path(tmp))))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_bench import LNAV_QUERY, corpus_files, count_lines, ensure_lnav, measure

    files = corpus_files(args.corpus)
    missing = [n for n in [*REGEX_FILES, *JSON_FILES] if not (args.corpus / n).is_file()]
    if missing:
        print(f"{args.corpus} is not a benchmark corpus (missing {', '.join(missing)})", file=sys.stderr)
        return 2
    lines = count_lines(files)
    lnav = None if args.skip_lnav else ensure_lnav()
    print(f"corpus: {args.corpus} — {len(files)} files, {lines:,} lines; machine: {os.cpu_count()} cores")
    best: dict[str, tuple[float, float]] = {}
    steps: dict[str, float] = {}
    for _ in range(args.runs):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            argv = [sys.executable, __file__, "--corpus", str(args.corpus), "--child-steps", out.name]
            floor = measure("floor", argv)
            if floor.exit_code != 0:
                return 1
            if "floor" not in best or floor.seconds < best["floor"][0]:
                best["floor"] = (floor.seconds, floor.cpu_seconds)
                steps = json.loads(Path(out.name).read_text())
        if lnav:
            run = measure("lnav", [lnav, "-n", "-c", LNAV_QUERY, *files])
            if "lnav" not in best or run.seconds < best["lnav"][0]:
                best["lnav"] = (run.seconds, run.cpu_seconds)
    wall, cpu = best["floor"]
    print(f"floor: {wall:.2f} s wall, {cpu:.1f} s CPU, {lines / wall:,.0f} lines/s")
    print(
        "  of one run: import {import_s:.2f} s, parse {parse_s:.2f} s, write {write_s:.2f} s, {rows:,.0f} rows".format(
            **steps
        )
    )
    if "lnav" in best:
        lnav_s = best["lnav"][0]
        print(f"lnav: {lnav_s:.2f} s wall, {best['lnav'][1]:.1f} s CPU, {lines / lnav_s:,.0f} lines/s")
        print(f"floor / lnav: {wall / lnav_s:.2f} (ingest target <= 0.6, build target <= 1.0)")
    print(f"floor vs the 0.5 M lines/s ingest target: {lines / wall / 500_000:.2f}x of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
