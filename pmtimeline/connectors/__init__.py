"""Sources of events: log files, alert exports, Elasticsearch, in-memory frames.

Installed as ``pmtimeline.connectors``. Each connector is a small class whose ``read()`` yields event
frames; see :mod:`pmtimeline.sources` for the protocol and the accounting. The Elasticsearch client
is imported only by :mod:`pmtimeline.connectors.elasticsearch`, on first use.
"""

from __future__ import annotations

from pmtimeline.connectors.base import AccountedSource, FrameSource, Reject, Source, SourceAccounting

__all__ = ["AccountedSource", "FrameSource", "Reject", "Source", "SourceAccounting"]
