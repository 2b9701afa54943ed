"""Time pmtimeline against its peers on one corpus, in one run, and print the ratios.

Measures, on the same files and the same machine:

- ``wc -l`` over every file: the floor (reading the bytes);
- ``pmtimeline ingest CORPUS -o events.parquet``: lines/s and peak memory (the sum of the RSS of
  the whole process tree, sampled every 50 ms, so parsing workers count);
- ``pmtimeline build CORPUS -o OUTDIR``: with the draft and the chart (PNG skipped unless
  ``--images``), plus the size of ``timeline.html``;
- the Logfile Navigator (Debian's ``lnav``, installed here when missing), headless, answering the
  same question pmtimeline answers first: errors per minute over all files.

Usage::

    python bench/generate_corpus.py --lines 2000000 --out bench/corpus
    python bench/run_bench.py --corpus bench/corpus --workers 2

- ``pmtimeline ingest CORPUS --start T --end T+10min``: a 10-minute window inside the corpus's two
  hours (08:55-09:05 UTC, inside the incident), which pruning should make cheap.

``--repeat N`` runs the steps N times, alternating, and reports the medians (the machine is shared).

Targets on a 2-core machine (issue 18, medians of 3 in one run): ``ingest`` in at most 0.5 x lnav's
time; ``build --no-images`` in at most 0.8 x; the 10-minute window in at most 0.1 x the full ingest;
20 M lines built in under 1 GB of peak memory; ``timeline.html`` < 5 MB at every size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LNAV_QUERY = (
    ";SELECT strftime('%Y-%m-%d %H:%M', log_time) AS minute, count(*) AS errors "
    "FROM all_logs WHERE log_level >= 'error' GROUP BY minute"
)


@dataclass
class Measurement:
    name: str
    seconds: float
    peak_rss_mb: float
    exit_code: int
    cpu_seconds: float = 0.0  # user + system time of the process and the children it waited for
    load_before: float = 0.0  # 1-minute load average when the command started (the machine is shared)
    peak_pss_mb: float = 0.0  # peak of the summed proportional set size of the process tree


@dataclass
class _TreeSample:
    rss: int  # bytes, summed over the tree (pages shared between processes count in each)
    pss: int  # bytes, summed proportional set size (a shared page is split among its sharers)
    cpu: dict[int, float]  # seconds of user + system time, per process seen


def _sample_tree(pid: int, *, pss: bool) -> _TreeSample:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return _TreeSample(0, 0, {})
    sample = _TreeSample(0, 0, {})
    for p in procs:
        with contextlib.suppress(psutil.Error):
            # PSS needs the kernel to walk every mapping (/proc/PID/smaps): sampled less often, so
            # that the sampler does not take CPU from the command it measures.
            if pss:
                memory = p.memory_full_info()
                sample.pss += getattr(memory, "pss", memory.rss)
            else:
                memory = p.memory_info()
            sample.rss += memory.rss
            times = p.cpu_times()
            sample.cpu[p.pid] = times.user + times.system
    return sample


def measure(name: str, argv: list[str], *, stdout: int | None = subprocess.DEVNULL) -> Measurement:
    """Run ``argv`` once: wall time, peak memory and CPU time of its whole process tree.

    Memory is sampled as the sum of RSS every 50 ms (it counts the pages that forked workers share
    with their parent once per process) and the sum of PSS every 500 ms (it splits them). CPU time is
    the larger of what the kernel reports for the children this process waited for and the sum of
    the last sample of every process of the tree (workers started by a fork server are not waited
    for by the command itself).
    """
    peak = peak_pss = 0
    cpu_seen: dict[int, float] = {}
    load_before = os.getloadavg()[0]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        tick = 0
        while not done.is_set():
            tree = _sample_tree(proc.pid, pss=tick % 10 == 0)
            peak, peak_pss = max(peak, tree.rss), max(peak_pss, tree.pss)
            cpu_seen.update(tree.cpu)
            tick += 1
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    cpu = max(cpu, sum(cpu_seen.values()))
    if proc.returncode != 0:
        sys.stderr.write(f"{name} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}\n")
    return Measurement(name, seconds, peak / 2**20, proc.returncode, cpu, load_before, peak_pss / 2**20)


#: Ten minutes inside the generated corpus's two hours (bench/generate_corpus.py: 08:00-10:00 UTC).
WINDOW: tuple[str, str] = ("2024-03-12T08:55:00Z", "2024-03-12T09:05:00Z")


def _median(name: str, runs: list[Measurement]) -> Measurement:
    """The run of median wall time (its own memory and CPU figures; a failed run wins, to be seen)."""
    failed = [m for m in runs if m.exit_code != 0]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda m: m.seconds)
    return ordered[len(ordered) // 2]


def corpus_files(corpus: Path) -> list[str]:
    return sorted(str(p) for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))


def count_lines(files: list[str]) -> int:
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(1 << 24):
                total += block.count(b"\n")
    return total


def ensure_lnav() -> str | None:
    found = shutil.which("lnav")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "lnav"], check=False, capture_output=True)
    return shutil.which("lnav")


def compile_sources() -> None:
    """Byte-compile pmtimeline as an installed package is (pip compiles on install), so that an
    editable install under PYTHONDONTWRITEBYTECODE does not compile ~40 modules in every timed run."""
    import importlib.util

    for name in ("pmtimeline", "pmtimeline.connectors"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(spec.origin).parent)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--lines", type=int, default=2_000_000, help="corpus size when it must be generated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", action="store_true", help="also export PNG/SVG in build")
    parser.add_argument(
        "--keep-raw", action="store_true", help="build without redacting events.parquet (draft and chart stay redacted)"
    )
    parser.add_argument("--skip-lnav", action="store_true")
    parser.add_argument(
        "--steps",
        default="wc,ingest,window,build,lnav",
        help="comma-separated subset of wc,ingest,window,build,lnav to run",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run the steps this many times; report medians")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--out", type=Path, help="keep the outputs here (default: a temporary directory)")
    args = parser.parse_args()

    if not args.corpus.exists():
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("generate_corpus.py")),
                "--lines",
                str(args.lines),
                "--out",
                str(args.corpus),
            ],
            check=True,
        )
    compile_sources()
    files = corpus_files(args.corpus)
    lines = count_lines(files)
    size_mb = sum(os.path.getsize(f) for f in files) / 2**20
    exe = shutil.which("pmtimeline") or str(Path(sys.executable).with_name("pmtimeline"))
    runs: dict[str, list[Measurement]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.out) if args.out else scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        steps = set(args.steps.split(","))
        build_argv = [exe, "build", str(args.corpus), "-o", f"{tmp}/out", "--workers", str(args.workers)]
        if not args.images:
            build_argv.append("--no-images")
        if args.keep_raw:
            build_argv.append("--keep-raw")
        lnav = None if args.skip_lnav or "lnav" not in steps else ensure_lnav()
        ingest_argv = [exe, "ingest", str(args.corpus), "-o", f"{tmp}/events.parquet", "--workers", str(args.workers)]
        commands: list[tuple[str, list[str]]] = []
        if "wc" in steps:
            commands.append(("wc -l", ["wc", "-l", *files]))
        if "ingest" in steps:
            commands.append(("pmtimeline ingest", ingest_argv))
        if "window" in steps:
            window = ["--start", WINDOW[0], "--end", WINDOW[1]]
            window_argv = [*ingest_argv[:3], "-o", f"{tmp}/window.parquet", *ingest_argv[5:]]
            commands.append(("ingest 10-min window", [*window_argv, *window]))
        if "build" in steps:
            commands.append(("pmtimeline build", build_argv))
        if lnav:
            commands.append(("lnav errors/minute", [lnav, "-n", "-c", LNAV_QUERY, "-c", ":write-csv-to -", *files]))
        for _ in range(max(1, args.repeat)):
            for name, argv in commands:
                runs.setdefault(name, []).append(measure(name, argv))
        html = Path(tmp) / "out" / "timeline.html"
        html_mb = html.stat().st_size / 2**20 if html.exists() else float("nan")
    results = [_median(name, measured) for name, measured in runs.items()]

    print(f"corpus: {args.corpus} — {len(files)} files, {lines:,} lines, {size_mb:,.0f} MB")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load now {os.getloadavg()[0]:.1f}")
    print(f"{'command':<22} {'seconds':>9} {'cpu s':>8} {'lines/s':>12} {'peak MB':>9} {'PSS MB':>8} {'load':>5}")
    for m in results:
        rate = lines / m.seconds if m.seconds else float("nan")
        flag = "" if m.exit_code == 0 else f"  (exit {m.exit_code})"
        print(
            f"{m.name:<22} {m.seconds:>9.2f} {m.cpu_seconds:>8.1f} {rate:>12,.0f} {m.peak_rss_mb:>9.0f}"
            f" {m.peak_pss_mb:>8.0f} {m.load_before:>5.1f}{flag}"
        )
    print(f"timeline.html: {html_mb:.2f} MB")
    by_name = {m.name: m for m in results}
    if args.repeat > 1:
        print(f"(medians of {args.repeat} runs, steps alternated)")
    if {"lnav errors/minute", "pmtimeline ingest", "pmtimeline build"} <= set(by_name):
        lnav_s = by_name["lnav errors/minute"].seconds
        print(f"ingest / lnav: {by_name['pmtimeline ingest'].seconds / lnav_s:.2f} (target <= 0.5)")
        print(f"build  / lnav: {by_name['pmtimeline build'].seconds / lnav_s:.2f} (target <= 0.8)")
    if {"ingest 10-min window", "pmtimeline ingest"} <= set(by_name):
        ratio = by_name["ingest 10-min window"].seconds / by_name["pmtimeline ingest"].seconds
        print(f"window / ingest: {ratio:.2f} (target <= 0.1)")
    if "pmtimeline ingest" in by_name and "pmtimeline build" in by_name:
        ingest_s = by_name["pmtimeline ingest"].seconds
        extra = by_name["pmtimeline build"].seconds / ingest_s - 1 if ingest_s else float("nan")
        print(f"build adds {extra:.0%} to ingest (target <= 30%)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"lines": lines, "megabytes": size_mb, "html_mb": html_mb, "results": [asdict(m) for m in results]},
                indent=2,
            )
        )
    return 0 if all(m.exit_code == 0 for m in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
