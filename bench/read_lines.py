"""Time reading a corpus through ``LineReader`` (numbered, decoded lines; no parsing), in lines per second.

    python bench/read_lines.py --corpus /tmp/corpus [--repeat 3] [--reader rust|python] [--compare]

``--reader python`` reads with the pre-Rust Python reader kept as the differential oracle in
``tests/reference_rawio.py`` (the "before" figure); the default is the package's reader. Each file is
read whole, every block's lines touched as pandas Series; the median of ``--repeat`` runs is printed,
wall-clock and CPU time (the CPU time is the steadier figure on a shared machine).

``--compare`` reads the whole corpus with both readers instead and checks that every block is the same
(first line, lines, rejects, truncated lines, decode errors) and so are compression, encoding, stop
reason and bytes out: the differential test of ``tests/connectors/test_rawio_parity.py``, at full size.
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


def compare(files: list[Path]) -> int:
    from pmtimeline.config import TimelineConfig

    config = TimelineConfig()
    new_class, old_class = reader_class("rust"), reader_class("python")
    total = 0
    for path in files:
        new, old = new_class(path, config), old_class(path, config)
        blocks = 0
        for a, b in zip(new.blocks(), old.blocks(), strict=True):
            assert (a.first_line, a.truncated_lines, a.decode_errors) == (
                b.first_line,
                b.truncated_lines,
                b.decode_errors,
            )
            assert a.lines.equals(b.lines), (path, a.first_line)
            assert a.io_reject.isna().equals(b.io_reject.isna()), (path, a.first_line)
            assert a.io_reject.dropna().tolist() == b.io_reject.dropna().tolist(), (path, a.first_line)
            total += len(a.lines)
            blocks += 1
        attributes = ("compression", "encoding", "stop_reason", "bytes_out")
        assert [getattr(new, name) for name in attributes] == [getattr(old, name) for name in attributes], path
        print(f"{path.name}: {blocks} blocks identical")
    print(f"compare: {total:,} lines in {len(files)} files, identical block by block")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reader", choices=["rust", "python"], default="rust")
    parser.add_argument("--compare", action="store_true", help="check both readers agree, block by block")
    args = parser.parse_args()
    files = sorted(path for path in args.corpus.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        print(f"no files in {args.corpus}", file=sys.stderr)
        return 1
    if args.compare:
        return compare(files)
    reader = reader_class(args.reader)
    times, cpu_times = [], []
    lines = nbytes = 0
    for _ in range(max(1, args.repeat)):
        start, cpu_start = time.perf_counter(), time.process_time()
        lines, nbytes = read_corpus(reader, files)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    median, cpu = statistics.median(times), statistics.median(cpu_times)
    print(
        f"{args.reader}: {lines:,} lines, {nbytes / 1e6:,.0f} MB in {median:.3f} s wall, {cpu:.3f} s CPU "
        f"(medians of {len(times)}): {lines / median / 1e6:.2f} M lines/s wall, {lines / cpu / 1e6:.2f} M lines/s CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
