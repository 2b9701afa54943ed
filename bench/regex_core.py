"""Time ``pmtimeline ingest`` with the regex extraction and time layouts in the Rust core, against the
pre-Rust implementation (polars regex, RE2 fallback, polars strptime) kept in
``tests/reference_timeformats.py``, everything else the same, in one process per run.

It also checks that both give the same events: the Parquet files of the two engines must be equal.

Usage::

    python bench/generate_corpus.py --lines 2000000 --out /tmp/corpus
    python bench/regex_core.py --corpus /tmp/corpus --runs 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The functions of timeformats the parsers call; ``before`` puts the oracle's in their place.
SWAPPED = (
    "extract_groups",
    "match_text",
    "parse_access_time",
    "parse_compact_date_time",
    "parse_ctime",
    "parse_epoch",
    "parse_iso8601",
    "parse_syslog_time",
    "parse_timestamp_text",
    "parse_with_format",
    "parse_with_formats",
)


def _one_run(engine: str, corpus: Path, out: Path) -> dict[str, float]:
    """Ingest ``corpus`` in this process with ``engine`` (``before`` or ``after``)."""
    from pmtimeline.cli import cli
    from pmtimeline.connectors import log_formats, timeformats, user_formats

    if engine == "before":
        sys.path.insert(0, str(ROOT / "tests"))
        import reference_timeformats as reference

        for module in (log_formats, user_formats, timeformats):
            for name in SWAPPED:
                if hasattr(module, name):
                    setattr(module, name, getattr(reference, name))
    started = time.perf_counter()
    try:
        cli.main(["ingest", str(corpus), "--workers", "1", "-o", str(out)], standalone_mode=False)
    finally:
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/regex_core_bench"))
    parser.add_argument("--one", choices=("before", "after"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one_run(args.one, args.corpus, args.out)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.runs):
        for engine in ("before", "after"):
            target = args.out / f"{engine}.parquet"
            done = subprocess.run(
                [sys.executable, __file__, "--one", engine, "--corpus", str(args.corpus), "--out", str(target)],
                check=True,
                capture_output=True,
                text=True,
            )
            results[engine].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'engine':<8} {'wall s':>8} {'user s':>8}   (medians of {args.runs})")
    for engine, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        user = statistics.median(r["user"] for r in runs)
        print(f"{engine:<8} {wall:>8.2f} {user:>8.2f}")
    import pandas as pd

    before = pd.read_parquet(args.out / "before.parquet")
    after = pd.read_parquet(args.out / "after.parquet")
    pd.testing.assert_frame_equal(before, after)
    print(f"same events: {len(after)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
