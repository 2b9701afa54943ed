"""Time reading a corpus through ``LineReader`` (numbered, decoded lines; no parsing), in lines per second.

    python bench/read_lines.py --corpus /tmp/corpus [--repeat 3] [--reader rust|python]

``--reader python`` reads with the pre-Rust Python reader kept as the differential oracle in
``tests/reference_rawio.py`` (the "before" figure); the default is the package's reader. Each file is
read whole, every block's lines touched as pandas Series; the median of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def reader_class(kind: str) -> Any:
    if kind == "rust":
        from pmtimeline.connectors.rawio import LineReader

        return LineReader
    spec = importlib.util.spec_from_file_location("reference_rawio", REPO / "tests" / "reference_rawio.py")
    if spec is None or spec.loader is None:
        raise SystemExit("tests/reference_rawio.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.LineReader


def read_corpus(reader: Any, files: list[Path]) -> tuple[int, int]:
    from pmtimeline.config import TimelineConfig

    config = TimelineConfig()
    lines = nbytes = 0
    for path in files:
        source = reader(path, config)
        for block in source.blocks():
            lines += len(block.lines)
        nbytes += source.bytes_out
    return lines, nbytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reader", choices=["rust", "python"], default="rust")
    args = parser.parse_args()
    files = sorted(path for path in args.corpus.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        print(f"no files in {args.corpus}", file=sys.stderr)
        return 1
    reader = reader_class(args.reader)
    times = []
    lines = nbytes = 0
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        lines, nbytes = read_corpus(reader, files)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"{args.reader}: {lines:,} lines, {nbytes / 1e6:,.0f} MB in {median:.3f} s (median of {len(times)}): "
        f"{lines / median / 1e6:.2f} M lines/s, {nbytes / median / 1e6:,.0f} MB/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
