"""pmtimeline: from raw logs and alerts to an incident timeline, impact metrics and a postmortem draft."""

from __future__ import annotations

from pmtimeline.config import TimelineConfig
from pmtimeline.errors import PmtimelineError

__all__ = ["PmtimelineError", "TimelineConfig"]
