"""Grouping accuracy of ``pmtimeline.mine_templates`` on Loghub-2k, beside Drain's and Brain's figures.

Each system's ``<System>_2k.log_structured.csv`` holds the messages (``Content``) and their true
event ids (``EventId``). The script mines the templates of the messages, scores them with logpai's
grouping accuracy (:func:`pmtimeline.template_mining.grouping_accuracy`), and does the same for the
masks alone (:func:`pmtimeline.templates.message_templates`, what the analysis used before the
miner). Drain's and Brain's columns are their published GA on the same Loghub-2k sets (as gathered
in the shared reference notes, ``template-mining.md``; see bench/README.md), not runs of ours.

Usage::

    python bench/template_accuracy.py --data ../shared/data/loghub

It prints a Markdown table (one row per system found, then the mean) and the time the miner took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from pmtimeline.schema import STRING
from pmtimeline.template_mining import grouping_accuracy, mine_templates
from pmtimeline.templates import message_templates

#: Published grouping accuracy on Loghub-2k: (Drain, Brain).
PUBLISHED = {
    "Apache": (1.0, 1.0),
    "HDFS": (0.9975, 0.9975),
    "Hadoop": (0.9475, 0.949),
    "Linux": (0.690, 0.996),
    "OpenSSH": (0.7875, 1.0),
    "Zookeeper": (0.9665, 0.9875),
}


def score(path: Path) -> tuple[float, float, int, int, float]:
    """(GA of the miner, GA of the masks alone, messages, mined templates, seconds mining) for one
    ``_structured.csv``."""
    frame = pd.read_csv(path, usecols=["Content", "EventId"], dtype=str, keep_default_na=False)
    content = frame["Content"].astype(STRING)
    start = time.perf_counter()
    mined = mine_templates(content)
    seconds = time.perf_counter() - start
    truth = frame["EventId"].tolist()
    masks = message_templates(content)
    return (
        grouping_accuracy(truth, mined.tolist()),
        grouping_accuracy(truth, masks.tolist()),
        len(frame),
        mined.nunique(),
        seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
    parser.add_argument("--data", type=Path, default=default, help=f"folder of Loghub systems (default {default})")
    args = parser.parse_args(argv)
    paths = sorted(args.data.glob("*/*_2k.log_structured.csv"))
    if not paths:
        print(f"no */*_2k.log_structured.csv under {args.data}", file=sys.stderr)
        return 2
    print("| system | messages | true templates | mined templates | GA masks only | GA mined | GA Drain | GA Brain |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    total_seconds = 0.0
    for path in paths:
        system = path.parent.name
        mined_ga, masks_ga, n, templates, seconds = score(path)
        total_seconds += seconds
        true_templates = pd.read_csv(path, usecols=["EventId"], dtype=str)["EventId"].nunique()
        drain, brain = PUBLISHED.get(system, (float("nan"), float("nan")))
        rows.append((masks_ga, mined_ga, drain, brain))
        scores = " | ".join(f"{x:.4f}" for x in (masks_ga, mined_ga, drain, brain))
        print(f"| {system} | {n} | {true_templates} | {templates} | {scores} |")
    means = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
    print(f"| **mean** | | | | {means[0]:.4f} | **{means[1]:.4f}** | {means[2]:.4f} | {means[3]:.4f} |")
    print(f"\nmine_templates: {total_seconds:.2f} s for {len(paths)} systems; lowest GA {min(r[1] for r in rows):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
