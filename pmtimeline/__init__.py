"""pmtimeline: from raw logs and alerts to an incident timeline, impact metrics and a postmortem draft.

The notebook API is the library the CLI calls::

    import pmtimeline
    tl = pmtimeline.load("sample_logs", source_tz=(("*ledger*", "Europe/Amsterdam"),))
    tl.incident.phases          # onset, detected, mitigated, recovered, resolved (UTC)
    tl.chart()                  # interactive Plotly figure
    print(tl.postmortem())      # the Markdown draft
    pmtimeline.mine_templates(tl.events["message"])   # one mined template per message
    tl.with_phases(onset="2024-03-01T10:02:00Z").save("out")

Heavy modules (pandas, plotly, the connectors) load on first use, so ``pmtimeline --help`` is quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pmtimeline.config import TimelineConfig
from pmtimeline.errors import ConfigError, OutputError, PmtimelineError, SchemaError, SourceError

if TYPE_CHECKING:
    from pmtimeline.api import load, open_outputs, read_events
    from pmtimeline.connectors.base import FrameSource
    from pmtimeline.incident import Incident
    from pmtimeline.template_mining import mine_templates
    from pmtimeline.timeline import Timeline

__all__ = [
    "ConfigError",
    "FrameSource",
    "Incident",
    "OutputError",
    "PmtimelineError",
    "SchemaError",
    "SourceError",
    "Timeline",
    "TimelineConfig",
    "load",
    "mine_templates",
    "open_outputs",
    "read_events",
]

_LAZY = {
    "FrameSource": "pmtimeline.connectors.base",
    "Incident": "pmtimeline.incident",
    "Timeline": "pmtimeline.timeline",
    "load": "pmtimeline.api",
    "mine_templates": "pmtimeline.template_mining",
    "open_outputs": "pmtimeline.api",
    "read_events": "pmtimeline.api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pmtimeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
