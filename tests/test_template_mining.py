"""Template mining: masks, then a clustering of the distinct masked messages; grouping accuracy."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from pmtimeline.schema import STRING
from pmtimeline.template_mining import (
    MAX_SPLIT_WORDS,
    MIN_CONSTANT_WORDS,
    WILDCARD,
    grouping_accuracy,
    mine_templates,
    regeneralized,
    requoted,
    template_clusters,
)
from pmtimeline.templates import MAX_TEMPLATE_CHARS, message_templates

#: The published targets of issue 15 on the six shared Loghub-2k systems.
MEAN_TARGET = 0.95
SYSTEM_TARGET = 0.90
SYSTEMS = ("Apache", "HDFS", "Hadoop", "Linux", "OpenSSH", "Zookeeper")


def _mined(messages: Sequence[str | None]) -> list[object]:
    out = mine_templates(pd.Series(messages, dtype=STRING))
    return [None if pd.isna(t) else t for t in out]


def test_a_variable_without_a_mask_becomes_a_wildcard() -> None:
    users = ["admin", "oracle", "test", "guest", "webmaster", "chen"]
    messages = [f"Invalid user {u} from 10.0.{i}.1" for i, u in enumerate(users)]
    messages += [f"Accepted password for {u} from 10.1.{i}.1 port 22 ssh2" for i, u in enumerate(users)]
    mined = _mined(messages)
    assert set(mined[: len(users)]) == {f"Invalid user {WILDCARD} from <IP>"}
    assert set(mined[len(users) :]) == {f"Accepted password for {WILDCARD} from <IP> port <NUM> ssh2"}


def test_a_few_words_in_one_place_name_different_kinds() -> None:
    # Two or three words at one position are kinds of line, not values: "refused" is not "reset".
    messages = ["connection refused by peer"] * 5 + ["connection reset by peer"] * 3 + ["connection closed by peer"]
    mined = _mined(messages)
    assert mined == messages
    assert MAX_SPLIT_WORDS >= 3
    # Many words where almost nothing else stays constant are kinds too; with enough constant words
    # around them, they are values.
    outcomes = ["refused", "reset", "closed", "aborted", "lost"]
    assert _mined([f"connection {w}" for w in outcomes]) == [f"connection {w}" for w in outcomes]
    names = ["alice", "bob", "carol", "dave", "erin"]
    assert set(_mined([f"unknown user {n}" for n in names])) == {f"unknown user {WILDCARD}"}
    assert MIN_CONSTANT_WORDS == 2


def test_upper_case_states_are_kinds_even_when_many() -> None:
    states = ["NEW", "UNASSIGNED", "ASSIGNED", "RUNNING", "SUCCEEDED", "FAILED"]
    messages = [
        f"attempt_{n:04d}_m_{k:02d} TaskAttempt Transitioned from {a} to {b}"
        for n in range(4)
        for k, (a, b) in enumerate(itertools.pairwise(states))
    ]
    mined = _mined(messages)
    assert len(set(mined)) == len(states) - 1
    assert f"{WILDCARD} TaskAttempt Transitioned from NEW to UNASSIGNED" in mined


def test_ids_glued_to_words_and_lists_of_any_length() -> None:
    messages = [
        "BLOCK* ask 10.250.14.224:50010 to delete blk_-1 blk_22",
        "BLOCK* ask 10.250.11.85:50010 to delete blk_3",
        "BLOCK* ask 10.251.43.115:50010 to delete blk_4 blk_-5 blk_6 blk_7",
        "Received block blk_8 of size 67108864 from /10.250.10.6",
    ]
    mined = _mined(messages)
    assert mined[0] == mined[1] == mined[2] != mined[3]
    assert str(mined[0]).startswith("BLOCK* ask <IP> to delete")


def test_nulls_index_and_lone_messages_are_kept() -> None:
    series = pd.Series(["disk full on /var", None, "", "cache warmed"], index=[7, 3, 9, 1], dtype=STRING)
    out = mine_templates(series)
    assert list(out.index) == [7, 3, 9, 1]
    assert pd.isna(out.loc[3])
    # A message alone of its kind keeps its masked template.
    assert out.loc[7] == message_templates(series).loc[7] == "disk full on <PATH>"
    assert out.loc[9] == ""
    assert out.loc[1] == "cache warmed"
    assert mine_templates(pd.Series([], dtype=STRING)).empty


def test_messages_with_nothing_constant_are_not_merged() -> None:
    messages = ["12345", "0xdeadbeef", '{"a": 1}', "<template_1a2b3c4d>", "<template_9f9f9f9f>"]
    assert _mined(messages) == [message_templates(pd.Series([m], dtype=STRING)).iloc[0] for m in messages]


def test_the_result_does_not_depend_on_row_order() -> None:
    users = ["alice", "bob", "carol", "dave", "erin"]
    messages = [f"session opened for user {u} by (uid={i})" for i, u in enumerate(users)] * 3
    messages += [f"job {i} finished in {i}ms" for i in range(20)] + ["cupsd startup succeeded"] * 2
    rng = random.Random(7)
    shuffled = list(messages)
    rng.shuffle(shuffled)
    first = dict(zip(messages, _mined(messages), strict=True))
    second = dict(zip(shuffled, _mined(shuffled), strict=True))
    assert first == second
    assert first["session opened for user alice by (uid=0)"] == f"session opened for user {WILDCARD} by (uid=<NUM>)"


def test_cut_templates_still_group() -> None:
    messages = [f"delete {' '.join(f'blk_{i * 7 + j}' for j in range(n))}" for i, n in enumerate((40, 60, 80))]
    masked = message_templates(pd.Series(messages, dtype=STRING))
    assert (masked.str.len() == MAX_TEMPLATE_CHARS).any()
    assert len(set(_mined(messages))) == 1


def test_template_clusters_weights_counts_and_keeps_the_index() -> None:
    counts = pd.Series(
        [40, 3, 2, 1],
        index=[
            "Invalid user admin from <IP>",
            "Invalid user oracle from <IP>",
            "Invalid user test from <IP>",
            "Invalid user guest from <IP>",
        ],
    )
    clusters = template_clusters(counts)
    assert list(clusters.index) == list(counts.index)
    assert set(clusters) == {f"Invalid user {WILDCARD} from <IP>"}
    assert template_clusters(pd.Series([], dtype="int64")).empty


def test_regeneralized_rebuilds_a_quoted_template_from_another_version() -> None:
    mined = f"login failed for {WILDCARD} from <IP>"
    assert regeneralized(mined, "login failed for alice from <IP>", "login failed for user_1a2b from <IP>") == mined
    assert regeneralized("payment declined", "payment declined", "payment <EMAIL>") == "payment <EMAIL>"
    assert regeneralized(mined, "login failed for alice from <IP>", "login failed") is None
    assert regeneralized("something else", "login failed", "login failed") is None


def test_grouping_accuracy_counts_exact_groups_only() -> None:
    truth = ["E1", "E1", "E2", "E2", "E3", None, ""]
    assert grouping_accuracy(truth, ["a", "a", "b", "b", "c", "x", "y"]) == 1.0
    # "a" holds E1 and one E2: all three wrong; E2's other message alone in "b" is wrong too.
    assert grouping_accuracy(truth, ["a", "a", "a", "b", "c", "x", "y"]) == pytest.approx(1 / 5)
    # Splitting one true group in two makes both parts wrong.
    assert grouping_accuracy(truth, ["a", "z", "b", "b", "c", "x", "y"]) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="rows"):
        grouping_accuracy(["E1"], [])


def _loghub(shared_data: Path, system: str) -> pd.DataFrame:
    return pd.read_csv(shared_data / "loghub" / system / f"{system}_2k.log_structured.csv", dtype=str)


def test_grouping_accuracy_meets_the_targets_on_loghub(shared_data: Path) -> None:
    scores = {}
    for system in SYSTEMS:
        frame = _loghub(shared_data, system)
        scores[system] = grouping_accuracy(
            frame["EventId"].tolist(), mine_templates(frame["Content"].astype(STRING)).tolist()
        )
    assert min(scores.values()) >= SYSTEM_TARGET, scores
    assert sum(scores.values()) / len(scores) >= MEAN_TARGET, scores
    # The fixed masks alone were far off (issue 15): the clustering is what reaches the targets.
    masks_only = _loghub(shared_data, "HDFS")
    assert grouping_accuracy(masks_only["EventId"].tolist(), message_templates(masks_only["Content"]).tolist()) < 0.5


def test_mining_is_stable_under_shuffling_real_logs(shared_data: Path) -> None:
    frame = _loghub(shared_data, "OpenSSH")
    content = frame["Content"].astype(STRING)
    shuffled = content.sample(frac=1.0, random_state=3)
    assert mine_templates(shuffled).sort_index().tolist() == mine_templates(content).tolist()


def test_requoted_rewrites_a_quoted_mined_template_from_the_redacted_message() -> None:
    masked = "upload to <URL> failed for alice%3Ahunter2%<HEX>db after <DUR>"
    safe = "upload to <URL> failed for <redacted> after <DUR>"
    mined = f"upload to <URL> failed for {WILDCARD} after <DUR>"
    assert requoted(f"new error: {masked} (3 events)", masked, safe) == f"new error: {safe} (3 events)"
    assert requoted(f"new error: {mined} (3 events)", masked, safe) == f"new error: {mined} (3 events)"
    mined_other = f"upload to {WILDCARD} failed for alice%3Ahunter2%<HEX>db after <DUR>"
    assert requoted(f"`{mined_other}`", masked, safe) == f"`upload to {WILDCARD} failed for <redacted> after <DUR>`"
    # Text that quotes no version of the template is left as it is.
    assert requoted("rollback of checkout", masked, safe) == "rollback of checkout"


def test_the_bench_script_prints_the_table(shared_data: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "bench" / "template_accuracy.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--data", str(shared_data / "loghub")],
        capture_output=True,
        text=True,
        check=True,
    )
    cells = [
        [c.strip(" *") for c in line.split("|")[1:-1]] for line in proc.stdout.splitlines() if line.startswith("| ")
    ]
    header, rows = cells[0], {row[0]: row for row in cells[1:]}
    assert set(rows) == {*SYSTEMS, "mean"}
    mined = header.index("GA mined")
    assert float(rows["mean"][mined]) >= MEAN_TARGET
    assert min(float(rows[system][mined]) for system in SYSTEMS) >= SYSTEM_TARGET


def test_root_cause_new_errors_compare_mined_templates() -> None:
    # Before onset, failed logins of some users; during the incident, of other users, and one error
    # truly new. With masks alone every user made a "new error"; mined, only the new one is new.
    from synthetic_incidents import make_events

    from pmtimeline.aggregate import aggregate
    from pmtimeline.changes import classify_changes
    from pmtimeline.config import TimelineConfig
    from pmtimeline.root_cause import _new_templates

    before = ["alice", "bob", "carol", "dave", "erin"]
    during = ["frank", "grace", "heidi", "ivan", "judy"]
    records: list[dict[str, object]] = [
        {"time": f"2024-05-01T10:0{i}:00Z", "level": "error", "service": "auth", "message": f"login failed for {u}"}
        for i, u in enumerate(before)
    ]
    records += [
        {"time": f"2024-05-01T10:3{i}:00Z", "level": "error", "service": "auth", "message": f"login failed for {u}"}
        for i, u in enumerate(during)
    ]
    records.append(
        {"time": "2024-05-01T10:31:30Z", "level": "error", "service": "auth", "message": "token store unreachable"}
    )
    config = TimelineConfig()
    aggregates = aggregate(classify_changes(make_events(records)), config)
    onset, recovered = pd.Timestamp("2024-05-01T10:30:00Z"), pd.Timestamp("2024-05-01T10:40:00Z")
    new, total = _new_templates(aggregates, onset, recovered, config)
    assert total == len(during) + 1
    # (each item: the NewError first, then what root_cause ranks it by)
    assert [item[0].template for item in new] == ["token store unreachable"]
    assert new[0][0].count == 1
    assert new[0][0].evidence.line == len(records)
