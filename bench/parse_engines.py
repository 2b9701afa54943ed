"""Compare the engines behind the parsers, per line, on lines of the benchmark corpus.

Why the Rust core runs the regular expressions and the common time layouts
(``connectors/timeformats.py``, ``core/src/extract.rs``, ``core/src/times.rs``): this prints the CPU
time per line of the pre-Rust implementation (polars' ``str.extract_groups`` and strptime, kept in
``tests/reference_timeformats.py``) against the core, for the access-log and log4j patterns and their
timestamps, on the same lines. CPU time of this process, best of five runs, so other load on the
machine matters less (the core uses every core: run with ``RAYON_NUM_THREADS=1`` for one).

Usage::

    python bench/generate_corpus.py --lines 2000000 --out bench/corpus
    POLARS_MAX_THREADS=1 RAYON_NUM_THREADS=1 python bench/parse_engines.py --corpus bench/corpus
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pmtimeline.connectors import log_formats, timeformats
from pmtimeline.schema import STRING

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_timeformats as before


def _lines(path: Path, count: int) -> pd.Series:
    with open(path, "rb") as fh:
        text = fh.read(count * 400).decode("utf-8", errors="replace")
    return pd.Series(text.splitlines()[:count], dtype=STRING)


def _per_line(run: Callable[[], object], rows: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best * 1e6 / rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()

    access = _lines(args.corpus / "access.log", args.lines)
    service = _lines(args.corpus / "service.log", args.lines)
    access_pattern = log_formats._ACCESS_COMBINED + r"(?P<extra>.*)$"
    log4j_pattern = log_formats._LOG4J_PATTERNS[0]
    rows: list[tuple[str, float, float]] = []
    for name, lines, pattern in (("access log regex", access, access_pattern), ("log4j regex", service, log4j_pattern)):
        old = _per_line(lambda x=lines, p=pattern: before.extract_groups(x, p), len(lines))
        new = _per_line(lambda x=lines, p=pattern: timeformats.extract_groups(x, p), len(lines))
        rows.append((name, old, new))

    stamps = timeformats.extract_groups(service, log4j_pattern)["ts"].dropna()
    old = _per_line(lambda: before.parse_iso8601(stamps), len(stamps))
    new = _per_line(lambda: timeformats.parse_iso8601(stamps), len(stamps))
    rows.append(("ISO 8601 times (log4j)", old, new))
    access_times = timeformats.extract_groups(access, access_pattern)["ts"].dropna()
    old = _per_line(lambda: before.parse_access_time(access_times), len(access_times))
    new = _per_line(lambda: timeformats.parse_access_time(access_times), len(access_times))
    rows.append(("access-log times", old, new))

    print(f"{'what':<24} {'polars us/line':>15} {'core us/line':>15} {'ratio':>6}")
    for name, old, new in rows:
        print(f"{name:<24} {old:>15.2f} {new:>15.2f} {old / new:>6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
