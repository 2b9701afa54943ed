"""Connector basics: the source protocol and accounting (defined in :mod:`pmtimeline.sources`),
and :class:`FrameSource` for in-memory frames."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from pmtimeline.schema import conform_events
from pmtimeline.sources import AccountedSource, Reject, Source, SourceAccounting

__all__ = ["AccountedSource", "FrameSource", "Reject", "Source", "SourceAccounting"]


class FrameSource:
    """An in-memory DataFrame as a source, for notebooks and tests.

    The frame needs at least ``timestamp`` and ``message``; other event columns are optional.
    ``source`` defaults to ``name`` and ``kind`` to ``log``.
    """

    def __init__(self, frame: pd.DataFrame, name: str = "frame") -> None:
        self.name = name
        self._frame = frame

    def read(self) -> Iterator[pd.DataFrame]:
        frame = self._frame.copy()
        if "source" not in frame.columns:
            frame["source"] = self.name
        if "kind" not in frame.columns:
            frame["kind"] = "log"
        frame["source"] = frame["source"].fillna(self.name)
        frame["kind"] = frame["kind"].fillna("log")
        yield conform_events(frame)

    def accounting(self) -> list[SourceAccounting]:
        n = len(self._frame)
        return [SourceAccounting(name=self.name, format="frame", lines_read=n, event_lines=n, events=n)]

    def rejects(self) -> list[Reject]:
        return []
