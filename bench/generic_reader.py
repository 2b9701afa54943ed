"""Time the generic reader on a 400 k-line generic file: the Rust reader against the pre-Rust one.

The pre-Rust reader (eight RE2 patterns over the column, kept as the differential oracle in
tests/reference_generic.py) and the package's reader (pmtimeline._core: a learned layout) parse the
same lines; wall time, median of three runs, after one warm-up. Two files: the first 100 k lines of
each of the corpus's four text logs (layouts the old reader knew), and the six Loghub excerpts of
tests/data/loghub_more repeated to 400 k lines (layouts it did not know).

Usage::

    python bench/generate_corpus.py --lines 2000000 --out /tmp/corpus
    python bench/generic_reader.py --corpus /tmp/corpus

Figures (2026-12-08, 00:10 UTC, the shared 2-core machine, other sessions running):

    corpus text logs: 400000 lines; old 4.10 s (398105 heads), new 1.36 s (398105 heads; layout
        iso8601_space learned from 64 of 64 sample lines); 3.0x
    Loghub excerpts: 400000 lines; old 4.86 s (174358 heads), new 0.87 s (400000 heads; layout
        epoch_s learned from 28 of 64 sample lines); 5.6x

``--differential`` reads the whole corpus's four text logs (1.6 M lines) with both readers
(2026-12-08, 00:15 UTC): every line the old reader read (295402 of service.log, 318504 of worker.log,
all 400000 of syslog and of access.log) reads the same (head, reject reason, time text, UTC and
naive times, year flag, message, level): 0 differ.

Most of the new reader's time is in Rust (1.5 s of 1.6 s in a profile): the lines the learned layout
does not read (a quarter of the first file, access-log lines under an ISO layout) try the catalogue
position by position, and the level word is searched in the whole message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pmtimeline.connectors.log_formats import GENERIC_FORMAT, get_format
from pmtimeline.schema import STRING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from reference_generic import parse_generic as old_generic  # noqa: E402

LINES = 400_000


def _corpus_lines(corpus: Path) -> list[str]:
    lines: list[str] = []
    for name in ("service.log", "worker.log", "syslog", "access.log"):
        with (corpus / name).open(encoding="utf-8", errors="replace") as handle:
            lines.extend(line.rstrip("\n") for _, line in zip(range(LINES // 4), handle, strict=False))
    return lines


def _loghub_lines() -> list[str]:
    excerpts = sorted((REPO / "tests" / "data" / "loghub_more").glob("*_head.log"))
    one = [line for path in excerpts for line in path.read_text(encoding="utf-8").splitlines()]
    return (one * (LINES // len(one) + 1))[:LINES]


def _median(run: Callable[[], object]) -> float:
    run()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    return ((a == b).fillna(False) | (a.isna() & b.isna())).astype(bool)


def differential(corpus: Path, chunk: int = 200_000) -> None:
    """The whole corpus's text logs read by both readers: rows the old reader read must agree."""
    for name in ("service.log", "worker.log", "syslog", "access.log"):
        with (corpus / name).open(encoding="utf-8", errors="replace") as handle:
            lines = [line.rstrip("\n") for line in handle]
        bound = get_format(GENERIC_FORMAT).for_file(lines[:64])
        compared = differ = level_beyond = 0
        for start in range(0, len(lines), chunk):
            series = pd.Series(lines[start : start + chunk], dtype=STRING)
            old, new = old_generic(series), bound.parse(series)
            handled = old["head"] | old["reject_reason"].notna()
            same = pd.Series(True, index=series.index)
            for column in ("head", "reject_reason", "ts_raw", "ts_utc", "ts_naive", "year_missing", "message"):
                same &= _same(old[column], new[column])
            level_same = _same(old["level"], new["level"])
            level_beyond += int((handled & ~level_same & old["level"].isna()).sum())
            same &= level_same | old["level"].isna()
            compared += int(handled.sum())
            differ += int((handled & ~same).sum())
        print(
            f"{name}: {len(lines)} lines, {compared} read by the old reader, {differ} differ; "
            f"{level_beyond} get a level the old reader did not see"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument("--differential", action="store_true", help="compare the readers on the whole corpus")
    args = parser.parse_args()
    if args.differential:
        differential(args.corpus)
        return
    for label, lines in (("corpus text logs", _corpus_lines(args.corpus)), ("Loghub excerpts", _loghub_lines())):
        series = pd.Series(lines, dtype=STRING)
        bound = get_format(GENERIC_FORMAT).for_file(lines[:64])
        old = _median(lambda series=series: old_generic(series))
        new = _median(lambda series=series, bound=bound: bound.parse(series))
        heads_old = int(old_generic(series)["head"].sum())
        heads_new = int(bound.parse(series)["head"].sum())
        print(
            f"{label}: {len(lines)} lines; old {old:.2f} s ({heads_old} heads), "
            f"new {new:.2f} s ({heads_new} heads; {bound.learned}); {old / new:.1f}x"
        )


if __name__ == "__main__":
    main()
