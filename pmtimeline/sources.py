"""What a source is, and the accounting every source keeps.

A connector is any object with a ``name`` and a ``read()`` that yields event frames (chunks that
follow :mod:`pmtimeline.schema`). Connectors that read lines also keep a :class:`SourceAccounting`
per source, so that nothing is lost silently::

    lines_read == event_lines + continuation_lines + sum(rejected.values()) + outside_window

and a bounded list of :class:`Reject` records (the ``--rejects`` file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class Source(Protocol):
    """Anything that yields event frames: files, alert exports, a cluster, an in-memory frame."""

    name: str

    def read(self) -> Iterator[pd.DataFrame]:
        """Yield event frames (chunks) that follow the event schema."""
        ...


@dataclass
class Reject:
    """One line that did not become part of an event, and why."""

    source: str
    line: int | None
    reason: str
    excerpt: str  # at most 512 characters, control characters escaped; redacted on output


@dataclass
class SourceAccounting:
    """What became of every line of one source.

    ``event_lines`` are the lines that started a kept event; ``events`` the events produced from them
    (equal for log files; an alert payload line can hold several alerts, and duplicates of an
    alert notification are dropped and counted in ``duplicates``).
    """

    name: str
    path: str | None = None
    format: str | None = None
    format_reason: str = ""
    lines_read: int = 0
    event_lines: int = 0
    events: int = 0
    continuation_lines: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    outside_window: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    out_of_order: int = 0
    truncated_lines: int = 0  # lines longer than the cap, cut to it (kept, so not rejects)
    time_zone: str | None = None
    year_inferred: bool = False
    # Where the times came from, counted over the events (see pmtimeline.time_inference.account_times):
    times_with_offset: int = 0  # events whose text carried its own offset or Z
    times_in_zone: dict[str, int] = field(default_factory=dict)  # zone -> events read in it (naive)
    times_year_inferred: int = 0  # events whose year was not written
    zone_origin: str | None = None  # "--source-tz", "--auto-time", "format" or "--tz", for the naive ones
    year_origin: str | None = None  # "year 2024 inferred from ...", "nothing: year 2024 assumed"
    partial: bool = False
    partial_reason: str | None = None
    skipped_reason: str | None = None  # set when the whole source was skipped (e.g. outside the window)
    # The skip follows a rule (outside the window, documentation in a walk, pmtimeline's own outputs),
    # not a failure: --strict does not count it as a problem.
    skipped_by_rule: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def balanced(self) -> bool:
        """True when every line read is accounted for."""
        accounted = self.event_lines + self.continuation_lines + self.rejected_total + self.outside_window
        return self.lines_read == accounted

    def merge(self, other: SourceAccounting) -> None:
        """Add the counts of ``other`` (a later chunk of the same source) to this one."""
        for name in (
            "lines_read",
            "event_lines",
            "events",
            "continuation_lines",
            "outside_window",
            "duplicates",
            "decode_errors",
            "out_of_order",
            "truncated_lines",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected.update(other.rejected)
        self.year_inferred = self.year_inferred or other.year_inferred
        self.times_with_offset += other.times_with_offset
        self.times_year_inferred += other.times_year_inferred
        for zone, n in other.times_in_zone.items():
            self.times_in_zone[zone] = self.times_in_zone.get(zone, 0) + n
        if other.partial:
            self.partial = True
            self.partial_reason = self.partial_reason or other.partial_reason
        self.notes.extend(n for n in other.notes if n not in self.notes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``sources[]`` entries of ``incident.json``)."""
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "format_reason": self.format_reason,
            "lines_read": self.lines_read,
            "event_lines": self.event_lines,
            "events": self.events,
            "continuation_lines": self.continuation_lines,
            "rejected": self.rejected_total,
            "reject_reasons": dict(sorted(self.rejected.items())),
            "outside_window": self.outside_window,
            "duplicates": self.duplicates,
            "decode_errors": self.decode_errors,
            "out_of_order": self.out_of_order,
            "truncated_lines": self.truncated_lines,
            "time_zone": self.time_zone,
            "year_inferred": self.year_inferred,
            "times_with_offset": self.times_with_offset,
            "times_in_zone": dict(self.times_in_zone),
            "times_year_inferred": self.times_year_inferred,
            "zone_origin": self.zone_origin,
            "year_origin": self.year_origin,
            "time_account": self.time_account(),
            "partial": self.partial,
            "partial_reason": self.partial_reason,
            "skipped_reason": self.skipped_reason,
            "notes": list(self.notes),
        }

    def time_account(self) -> list[str]:
        """Where this source's times came from, one phrase per origin, with counts when it mixes:
        ``offset in the data``, ``zone given (--source-tz)``, ``zone assumed (--tz default UTC)``,
        ``zone of the format``, and where a year came from. Empty when no event was counted."""
        out: list[str] = []
        mixed = bool(self.times_with_offset) + len(self.times_in_zone) > 1

        def counted(text: str, n: int) -> str:
            return f"{text}: {n:,} events" if mixed else text

        if self.times_with_offset:
            out.append(counted("offset in the data", self.times_with_offset))
        for zone, n in sorted(self.times_in_zone.items()):
            if self.zone_origin == "--source-tz":
                text = f"zone given (--source-tz): {zone}"
            elif self.zone_origin == "--auto-time":
                text = f"zone found from shared evidence (--auto-time): fixed offset {zone}"
            elif self.zone_origin == "format":
                text = f"zone of the format: {zone}"
            else:
                text = f"zone assumed (--tz {'default ' if zone == 'UTC' else ''}{zone})"
            out.append(counted(text, n))
        if self.year_origin:
            year = self.year_origin
            if self.times_year_inferred and (self.times_year_inferred < self.events or mixed):
                year += f" ({self.times_year_inferred:,} events)"
            out.append(year)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceAccounting:
        """Rebuild from :meth:`to_dict` output."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "rejected"}
        acc = cls(**known)
        acc.rejected = Counter(data.get("reject_reasons", {}))
        return acc


@runtime_checkable
class AccountedSource(Source, Protocol):
    """A source that also accounts for every line it read (files, alert exports, Elasticsearch)."""

    def accounting(self) -> list[SourceAccounting]:
        """Per-source accounting; complete once ``read()`` is exhausted."""
        ...

    def rejects(self) -> list[Reject]:
        """Rejected lines kept so far (bounded; every reject is counted in the accounting)."""
        ...


@runtime_checkable
class CountingSource(Source, Protocol):
    """A source that computes the per-bucket counts of *all* its events itself (Elasticsearch
    aggregations), so that ``read()`` needs to yield only the notable events."""

    def counts(self, resolution: str) -> pd.DataFrame:
        """Per-bucket counts with the columns of :data:`pmtimeline.schema.COUNT_COLUMNS`."""
        ...
