"""What the analysis alone adds to an ingest (issue 4, item 12), apart from the report and redaction.

``pmtimeline build`` does more than issue 4's analysis. It also redacts ``events.parquet``, a
shared output (issue 8), and it writes the draft and the chart (issue 5). ``run_bench.py`` times
that whole command. This script times the two runs that differ by the analysis alone, through the
library the CLI calls, alternated in each round, each in a fresh process:

- ``ingest``: ``pipeline.ingest`` of the planned sources, the event table written by an
  ``EventSink`` (not redacted), as ``pmtimeline ingest -o events.parquet`` does;
- ``analysis``: ``pipeline.build`` of the same sources into the same sink (the aggregation on its
  thread, then the analysis), then ``incident.json`` written, as issue 4's ``build`` asked.

Usage::

    python bench/analysis_cost.py --corpus bench/corpus --workers 1 --rounds 4

It prints each round's wall times and the ratio, then the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(step: str, corpus: str, workers: int, out: Path) -> None:
    """One ``step`` ("ingest" or "analysis") in this process."""
    from pmtimeline.api import make_config, open_sources, planned_sources
    from pmtimeline.event_sink import EventSink
    from pmtimeline.pipeline import build, ingest

    config = make_config(None, workers=workers)
    sources = planned_sources(open_sources([corpus], config), config)
    with EventSink(out / "events.parquet", "parquet") as sink:
        if step == "ingest":
            ingest(sources, config, keep_events=False, on_chunk=sink)
            return
        result = build(sources, config, keep_events=False, on_chunk=sink)
    text = json.dumps(result.incident.to_dict(), indent=2, ensure_ascii=False)
    (out / "incident.json").write_text(text + "\n", encoding="utf-8")


def timed(step: str, corpus: str, workers: int) -> float:
    """Wall seconds of one ``step`` in a fresh interpreter (imports included, as for the CLI)."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, __file__, "--one", step, "--corpus", corpus, "--workers", str(workers), "--out", tmp]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        raise SystemExit(f"{step} failed: {last}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="bench/corpus")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", choices=["ingest", "analysis"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not Path(args.corpus).is_dir():
        parser.error(f"{args.corpus} is not a folder (make one with bench/generate_corpus.py)")
    if args.one:
        run_once(args.one, args.corpus, args.workers, args.out)
        return 0
    ingests: list[float] = []
    analyses: list[float] = []
    for round_number in range(1, args.rounds + 1):
        ingest_s = timed("ingest", args.corpus, args.workers)
        analysis_s = timed("analysis", args.corpus, args.workers)
        ingests.append(ingest_s)
        analyses.append(analysis_s)
        print(
            f"round {round_number}: ingest {ingest_s:.2f} s, ingest + analysis {analysis_s:.2f} s, "
            f"the analysis adds {analysis_s / ingest_s - 1:.0%}",
            flush=True,
        )
    ingest_m, analysis_m = statistics.median(ingests), statistics.median(analyses)
    print(
        f"medians ({args.workers} worker(s)): ingest {ingest_m:.2f} s, ingest + analysis {analysis_m:.2f} s, "
        f"the analysis adds {analysis_m / ingest_m - 1:.0%} (target <= 30%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
