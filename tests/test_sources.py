"""Source accounting: the invariant, merging, and the JSON form."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from pmtimeline.connectors.base import FrameSource
from pmtimeline.sources import AccountedSource, CountingSource, Source, SourceAccounting


def test_invariant_and_merge() -> None:
    a = SourceAccounting(name="x", lines_read=10, event_lines=6, events=6, continuation_lines=2, outside_window=1)
    a.rejected["unparseable"] = 1
    assert a.balanced()
    b = SourceAccounting(name="x", lines_read=5, event_lines=5, events=5, partial=True, partial_reason="cut")
    a.merge(b)
    assert a.lines_read == 15
    assert a.events == 11
    assert a.partial
    assert a.partial_reason == "cut"
    assert a.balanced()
    a.lines_read += 1
    assert not a.balanced()


def test_json_round_trip() -> None:
    a = SourceAccounting(name="x", format="syslog", lines_read=3, event_lines=2, year_inferred=True)
    a.rejected["empty_line"] = 1
    again = SourceAccounting.from_dict(a.to_dict())
    assert again == a
    assert a.to_dict()["reject_reasons"] == {"empty_line": 1}


def test_protocols_are_structural() -> None:
    class Plain:
        name = "plain"

        def read(self) -> Iterator[pd.DataFrame]:
            yield pd.DataFrame()

    assert isinstance(Plain(), Source)
    assert not isinstance(Plain(), AccountedSource)
    assert not isinstance(Plain(), CountingSource)
    frame = FrameSource(pd.DataFrame({"timestamp": ["2024-03-01T00:00:00Z"], "message": ["m"]}))
    assert isinstance(frame, AccountedSource)
    chunk = next(frame.read())
    assert chunk["source"].iloc[0] == "frame"
    assert chunk["kind"].iloc[0] == "log"
    assert frame.accounting()[0].balanced()
