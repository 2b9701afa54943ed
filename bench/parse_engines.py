"""Compare the engines behind the parsers, per line, on lines of the benchmark corpus.

Why polars runs the regular expressions and the common time layouts (``connectors/timeformats.py``):
this prints the CPU time per line of pyarrow's RE2 ``extract_regex`` against polars'
``str.extract_groups`` (Rust's regex crate) for the access-log and log4j patterns, and of the
general timestamp path (pandas' ISO parser with its checks) against the polars path, on the same
lines. CPU time of this process, best of five runs, so other load on the machine matters less.

Usage::

    python bench/generate_corpus.py --lines 2000000 --out bench/corpus
    POLARS_MAX_THREADS=1 python bench/parse_engines.py --corpus bench/corpus
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from pmtimeline.connectors import log_formats, timeformats
from pmtimeline.schema import STRING


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
        strings = timeformats.arrow_strings(lines)
        re2 = _per_line(lambda s=strings, p=pattern: pc.extract_regex(s, p), len(lines))
        polars = _per_line(lambda x=lines, p=pattern: timeformats.extract_groups(x, p), len(lines))
        rows.append((name, re2, polars))

    stamps = timeformats.extract_groups(service, log4j_pattern)["ts"].dropna()
    general = _per_line(lambda: timeformats._parse_iso8601_general(stamps), len(stamps))
    polars = _per_line(lambda: timeformats.parse_iso8601(stamps), len(stamps))
    rows.append(("ISO 8601 times (log4j)", general, polars))
    access_times = timeformats.extract_groups(access, access_pattern)["ts"].dropna()
    layout = timeformats._PL_ACCESS_LAYOUT
    polars = _per_line(lambda: timeformats.parse_access_time(access_times), len(access_times))
    timeformats._PL_ACCESS_LAYOUT = layout._replace(shape="^never$")  # the general path only
    try:
        general = _per_line(lambda: timeformats.parse_access_time(access_times), len(access_times))
    finally:
        timeformats._PL_ACCESS_LAYOUT = layout
    rows.append(("access-log times", general, polars))

    print(f"{'what':<24} {'before us/line':>15} {'polars us/line':>15} {'ratio':>6}")
    for name, before, after in rows:
        print(f"{name:<24} {before:>15.2f} {after:>15.2f} {before / after:>6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
