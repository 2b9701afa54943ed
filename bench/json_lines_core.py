"""The JSON-lines reading of the Rust core against the pre-Rust implementation, on the whole corpus file.

Reads the corpus's ``app.jsonl`` (400 k lines in the 2 M-line corpus) in blocks, parses each block with
``LOG_FORMATS["json_lines"]`` (the core) and with the frozen pre-Rust parser
(``tests/reference_json_lines.py``), checks that the frames are identical and prints the wall time of
each (best of ``--repeat``), so the parity claim and the speed-up come from one run.

Usage::

    python bench/generate_corpus.py --lines 2000000 --out /tmp/corpus
    python bench/json_lines_core.py --corpus /tmp/corpus
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pandas.testing import assert_frame_equal

from pmtimeline.connectors.log_formats import LOG_FORMATS
from pmtimeline.schema import STRING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.reference_json_lines import REFERENCE_PARSERS


def _best(
    parse: Callable[[pd.Series], pd.DataFrame], blocks: list[pd.Series], repeat: int
) -> tuple[float, list[pd.DataFrame]]:
    best = float("inf")
    frames: list[pd.DataFrame] = []
    for _ in range(repeat):
        start = time.perf_counter()
        frames = [parse(block) for block in blocks]
        best = min(best, time.perf_counter() - start)
    return best, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument("--block", type=int, default=100_000, help="lines per block (default 100000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines = (args.corpus / "app.jsonl").read_text(encoding="utf-8").splitlines()
    blocks = [
        pd.Series(lines[i : i + args.block], dtype=STRING).reset_index(drop=True)
        for i in range(0, len(lines), args.block)
    ]
    core_s, core = _best(LOG_FORMATS["json_lines"].parse, blocks, args.repeat)
    old_s, old = _best(REFERENCE_PARSERS["json_lines"], blocks, args.repeat)
    for mine, theirs in zip(core, old, strict=True):
        assert_frame_equal(mine, theirs, check_exact=True)
    print(f"{len(lines)} lines in {len(blocks)} blocks: identical frames")
    print(f"pre-Rust (pyarrow NDJSON + pandas): {old_s:.3f} s  ({len(lines) / old_s:,.0f} lines/s)")
    print(f"Rust core:                          {core_s:.3f} s  ({len(lines) / core_s:,.0f} lines/s)")
    print(f"speed-up: {old_s / core_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
