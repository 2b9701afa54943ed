"""Template mining: the masks of :mod:`pmtimeline.templates`, then a clustering of what they leave.

The masks alone split one kind of line into many templates wherever a variable has no shape a mask
knows (a user name, a host name, ``attempt_1445144423722_0020_m_000000_0``), and then every template
of an incident looks new. :func:`mine_templates` masks first, then clusters the *distinct* masked
messages over their tokens; a message's template is its cluster's: the tokens all members share,
``<*>`` where they differ. A message alone in its cluster keeps its masked template unchanged.

The clustering (our own code, in the spirit of Brain's frequency idea):

1. *Tokens.* A masked message is split on white space. For comparison, a token holding a mask
   (``<NUM>``, ``blk_<ID>``) has its masks written ``<*>``; a token holding a digit, a weekday or a
   month name is ``<*>`` whole; a run of equal tokens holding ``<*>`` (``blk_<*> blk_<*> ...``) counts
   as one, so lists of any length compare equal, and so does the last word of a template cut at
   :data:`~pmtimeline.templates.MAX_TEMPLATE_CHARS` with the token before it. The original tokens
   stay for the output.
2. *Roots.* Messages of equal token count are compared; every (position, token) gets its
   frequency: the events that have it, summed over the messages. The constant words of one kind of
   line occur in all of its events, so they share one frequency, while its variables are spread
   thinner and words common to several kinds are more frequent. A message's root is its words
   (tokens without ``<*>``) with the frequency that most of them share (the larger one on a tie);
   messages with the same root form a group.
3. *Splits.* Within a group, a position whose words differ is split on (each word its own
   sub-group) when it holds at most :data:`MAX_SPLIT_WORDS` distinct words, or only upper-case
   names (states such as ``NEW``, ``RUNNING``), or when fewer than :data:`MIN_CONSTANT_WORDS` words
   of the group are constant; otherwise it is a variable. A position where every word holds ``<*>``
   is never split on. Splitting repeats within each sub-group, the position with the fewest
   distinct words first.

It works on distinct masked messages, never line by line, and its result depends only on the set
of distinct messages and their counts, not on their order. Where counts come from matters little:
:mod:`pmtimeline.aggregate` keeps masked templates as keys chunk by chunk (a global clustering
cannot run on one chunk of a stream), and the analysis clusters the distinct templates the
aggregates hold, with their event counts, through :func:`template_clusters`.

Measured with logpai's grouping accuracy on six Loghub-2k systems (see bench/template_accuracy.py
and :func:`grouping_accuracy`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

import pandas as pd
import polars as pl

from pmtimeline.schema import STRING
from pmtimeline.templates import MAX_TEMPLATE_CHARS, message_templates

#: What a mined template writes where the messages of its cluster differ.
WILDCARD: Final = "<*>"
#: A position with at most this many distinct words in a group is split on rather than a variable:
#: two or three words there name different kinds of line ("connection refused" / "connection reset"),
#: more are values (user names, host names).
MAX_SPLIT_WORDS: Final = 3
#: ... unless fewer words than this would stay constant: then any number of words there are kinds
#: ("connection refused", "connection reset", "connection aborted", ... never become "connection <*>").
MIN_CONSTANT_WORDS: Final = 2

_MASK = re.compile(r"<[A-Z]+>")
_DIGIT = re.compile(r"\d")
_UPPER_NAME = re.compile(r"[A-Z][A-Z_]+")
_DATE_WORDS: Final = frozenset(
    {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    | {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)
_PUNCTUATION: Final = "()[]{},;:.'\""


def mine_templates(messages: pd.Series) -> pd.Series:
    """The mined template of each message (same index; nulls stay null).

    ``"Invalid user admin from 10.0.0.1"`` and ``"Invalid user oracle from 10.0.0.2"`` both get
    ``"Invalid user <*> from <IP>"``: the masks of :func:`pmtimeline.templates.message_templates`
    first, then a clustering of the distinct masked messages (see the module docstring). Only the
    first line of a message counts.
    """
    masked = message_templates(messages)
    counts = masked.value_counts(dropna=True)
    mined = template_clusters(counts)
    out = masked.map(mined) if len(mined) else masked
    return out.astype(STRING).rename("template")


def template_clusters(counts: pd.Series) -> pd.Series:
    """The mined template of each masked template: ``counts`` holds events per distinct masked
    template (its index); the result has the same index, and the cluster's template as values.

    The analysis passes the templates the aggregates hold, so that templates masked chunk by chunk
    are merged by kind across the whole window.
    """
    if counts.empty:
        return pd.Series([], index=counts.index, dtype=STRING)
    labels: list[str] = counts.index.astype(str).tolist()
    weights: dict[str, int] = {}
    for template, count in zip(labels, counts.to_numpy(dtype="int64").tolist(), strict=True):
        weights[template] = weights.get(template, 0) + count
    distinct = sorted(weights)
    keys, groups = _token_lists(distinct)
    # Messages equal once compared token by token are one message for the clustering.
    members: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, shape in enumerate(keys):
        members[shape].append(i)
    shapes = sorted(members)
    shape_weights = [sum(weights[distinct[i]] for i in members[s]) for s in shapes]
    mined: dict[str, str] = {}
    for cluster in _clusters(shapes, shape_weights):
        rows = [i for s in cluster for i in members[shapes[s]]]
        columns = zip(*(groups[i] for i in rows), strict=True)
        template = " ".join(c[0] if len(set(c)) == 1 else WILDCARD for c in columns)
        for i in rows:
            mined[distinct[i]] = template
    return pd.Series(pd.array([mined[t] for t in labels], dtype=STRING), index=counts.index)


def regeneralized(mined: str, masked: str, other: str) -> str | None:
    """``other`` (a masked template) with ``<*>`` where ``mined`` has it in place of ``masked``'s words.

    For re-making a quoted template from another version of its message (a redacted one): None when
    ``mined`` is not a generalization of ``masked`` or ``other`` does not line up with it token for token.
    """
    _, groups = _tokens(masked)
    _, others = _tokens(other)
    if len(groups) != len(others):
        return None
    out: list[str] = []
    rest = mined
    for group, alternative in zip(groups, others, strict=True):
        for word, kept in ((group, alternative), (WILDCARD, WILDCARD)):
            if rest == word or rest.startswith(word + " "):
                out.append(kept)
                rest = rest[len(word) + 1 :]
                break
        else:
            return None
    return " ".join(out) if not rest else None


def requoted(text: str, masked: str, other: str) -> str:
    """``text`` with every quote of a template mined from ``masked`` (``masked`` with some of its words
    written ``<*>``) replaced by the same template made from ``other``, another version of the
    message's masked template (e.g. that of the redacted message). Quotes that do not line up stay.
    """
    _, groups = _tokens(masked)
    if not groups:
        return text
    quote = re.compile(" ".join(f"(?:{re.escape(group)}|{re.escape(WILDCARD)})" for group in groups))

    def swap(found: re.Match[str]) -> str:
        again = regeneralized(found.group(0), masked, other)
        return found.group(0) if again is None else again

    return quote.sub(swap, text)


def grouping_accuracy(truth: Sequence[object], parsed: Sequence[object]) -> float:
    """logpai's grouping accuracy (GA) of ``parsed`` templates against ``truth`` event ids.

    A message counts as right only when the messages sharing its parsed template are exactly those
    sharing its true id. Rows with a missing or empty true id are left out, as logpai's evaluator
    does; the two sequences are aligned by position.
    """
    if len(truth) != len(parsed):
        raise ValueError(f"truth has {len(truth)} rows, parsed {len(parsed)}")
    frame = pd.DataFrame({"truth": list(truth), "parsed": list(parsed)})
    frame = frame.loc[frame["truth"].notna() & (frame["truth"].astype(str) != "")]
    if frame.empty:
        return float("nan")
    frame = frame.assign(parsed=frame["parsed"].astype(object).where(frame["parsed"].notna(), "\x00null"))
    truth_sizes = frame.groupby("truth").size()
    per_parsed = frame.groupby("parsed").agg(ids=("truth", "nunique"), first=("truth", "first"), size=("truth", "size"))
    exact = (per_parsed["ids"] == 1) & (truth_sizes.reindex(per_parsed["first"]).to_numpy() == per_parsed["size"])
    return float(per_parsed.loc[exact, "size"].sum() / len(frame))


def _tokens(template: str) -> tuple[tuple[str, ...], list[str]]:
    """The comparison keys of one masked template's tokens, and the original text of each."""
    keys, groups = _token_lists([template])
    return keys[0], groups[0]


def _token_lists(templates: Sequence[str]) -> tuple[list[tuple[str, ...]], list[list[str]]]:
    """For each masked template, the comparison keys of its tokens and the original text of each
    (see the module docstring), computed word by word in one polars pass over all of them."""
    words = (
        pl.DataFrame({"text": list(templates)}, schema={"text": pl.String})
        .with_row_index("row")
        .select(
            "row",
            cut=pl.col("text").str.len_chars() >= MAX_TEMPLATE_CHARS,
            word=pl.col("text").str.extract_all(r"\S+"),
        )
        .explode("word")
        .drop_nulls("word")
    )
    # The words of a template are contiguous rows: its last word is followed by another row's.
    row = pl.col("row")
    masked = pl.col("word").str.replace_all(_MASK.pattern, WILDCARD)
    holds_wildcard = masked.str.contains(WILDCARD, literal=True)
    # A template cut at MAX_TEMPLATE_CHARS may end in a cut word (``blk_<NUM> bl``): a variable,
    # part of the token before it, so that cut and whole lists of one kind compare equal.
    cut_word = pl.col("cut") & (row != row.shift(-1)).fill_null(True) & (row == row.shift(1)).fill_null(False)
    variable = (
        cut_word
        | masked.str.contains(_DIGIT.pattern)
        | masked.str.to_lowercase().is_in(sorted(_DATE_WORDS))
        | (holds_wildcard & (masked.str.replace_all(WILDCARD, "", literal=True).str.strip_chars(_PUNCTUATION) == ""))
    )
    words = words.with_columns(key=pl.when(variable).then(pl.lit(WILDCARD)).otherwise(masked))
    # A run of equal keys holding <*> (``blk_<*> blk_<*>``), but not bare <*>, is one token.
    key = pl.col("key")
    joined = (
        (row == row.shift(1)) & (key == key.shift(1)) & (key != WILDCARD) & key.str.contains(WILDCARD, literal=True)
    ) | cut_word
    per_row = (
        words.with_columns(joined=joined.fill_null(False))
        .group_by("row", maintain_order=True)
        .agg("key", "word", "joined")
    )
    keys: list[tuple[str, ...]] = [()] * len(templates)
    groups: list[list[str]] = [[] for _ in templates]
    columns = (per_row[name].to_list() for name in ("row", "key", "word", "joined"))
    for index, row_keys, row_words, row_joined in zip(*columns, strict=True):
        if any(row_joined):
            merged_keys: list[str] = []
            merged: list[str] = []
            for k, word, join in zip(row_keys, row_words, row_joined, strict=True):
                if join:
                    merged[-1] = f"{merged[-1]} {word}"
                else:
                    merged_keys.append(k)
                    merged.append(word)
            row_keys, row_words = merged_keys, merged
        if all(k == WILDCARD for k in row_keys):
            # Nothing constant to cluster on (a number, a JSON blob, a redacted template's token): the
            # template stays its own kind rather than joining every other such one as a bare "<*>".
            template = templates[index]
            keys[index], groups[index] = ("\x00" + template.replace(WILDCARD, "\x01"),), [template]
        else:
            keys[index], groups[index] = tuple(row_keys), row_words
    return keys, groups


def _clusters(shapes: Sequence[tuple[str, ...]], weights: Sequence[int]) -> list[list[int]]:
    """Clusters of ``shapes`` (distinct token keys, sorted) as lists of their positions."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, shape in enumerate(shapes):
        by_length[len(shape)].append(i)
    out: list[list[int]] = []
    for length in sorted(by_length):
        rows = by_length[length]
        frequency = [Counter[str]() for _ in range(length)]
        for i in rows:
            for position, word in enumerate(shapes[i]):
                frequency[position][word] += weights[i]
        roots: dict[tuple[tuple[int, str], ...], list[int]] = defaultdict(list)
        for i in rows:
            words = [(p, w, frequency[p][w]) for p, w in enumerate(shapes[i]) if WILDCARD not in w]
            shared = Counter(f for _, _, f in words)
            root = max(shared, key=lambda f: (shared[f], f)) if shared else 0
            roots[tuple((p, w) for p, w, f in words if f == root)].append(i)
        for key in sorted(roots):
            out.extend(_split(roots[key], shapes))
    return out


def _split(rows: list[int], shapes: Sequence[tuple[str, ...]]) -> Iterable[list[int]]:
    """``rows`` (a group of one root) split on the positions that name kinds rather than values."""
    if len(rows) == 1:
        return [rows]
    best: tuple[tuple[int, int], dict[str, list[int]]] | None = None
    columns: list[dict[str, list[int]]] = []
    for position in range(len(shapes[rows[0]])):
        parts: dict[str, list[int]] = defaultdict(list)
        for i in rows:
            parts[shapes[i][position]].append(i)
        columns.append(parts)
    constant = sum(1 for parts in columns if len(parts) == 1 and WILDCARD not in next(iter(parts)))
    for position, parts in enumerate(columns):
        if len(parts) == 1 or all(WILDCARD in word for word in parts):
            continue
        if (
            len(parts) > MAX_SPLIT_WORDS
            and not all(_UPPER_NAME.fullmatch(word) for word in parts)
            and constant >= MIN_CONSTANT_WORDS
        ):
            continue
        rank = (len(parts), position)
        if best is None or rank < best[0]:
            best = (rank, parts)
    if best is None:
        return [rows]
    return [cluster for word in sorted(best[1]) for cluster in _split(best[1][word], shapes)]
