"""The pmtimeline exception tree.

Every error that pmtimeline raises on purpose derives from one root, so callers (the CLI, a
notebook) can catch ``PmtimelineError`` once::

    PmtimelineError              base; the CLI catches this one and prints "Error: ..."
    ├── ConfigError              an invalid option, config value or override
    ├── SchemaError              a frame lacks required columns or has the wrong dtypes
    ├── SourceError              a source could not be read at all
    │   ├── UnknownFormatError   no log format matched, or a forced name is not registered
    │   ├── SearchBackendError   an Elasticsearch request failed (raised from the client's error)
    │   └── NoEventsError        no source gave any event; carries every source's accounting
    └── OutputError              an output could not be produced (e.g. PNG export without a browser)
                                 or written ("cannot write PATH: reason")

Third-party errors are translated where they occur, with ``raise ... from exc``, so nobody has to
import ``elasticsearch`` or ``pyarrow`` to catch them. Built-in ``ValueError``/``TypeError`` are kept
for programmer mistakes in arguments.

Messages are single lines meant for a person at 3 a.m.; they never contain raw log bytes (escape
them with :func:`pmtimeline.escaping.escape_terminal`) or credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pmtimeline.sources import SourceAccounting


class PmtimelineError(Exception):
    """Root of every error pmtimeline raises on purpose."""


class ConfigError(PmtimelineError):
    """An option, configuration value or phase override is invalid."""


class SchemaError(PmtimelineError):
    """A frame does not follow the event schema of :mod:`pmtimeline.schema`."""


class SourceError(PmtimelineError):
    """A source (file, directory, cluster) could not be read at all."""


class CoreFaultError(SourceError):
    """The compiled reading core (``pmtimeline._core``) failed on a source: an internal fault, not bad
    input. The message names the source; please report it with that file."""


class UnknownFormatError(SourceError):
    """No registered log format matched, or a forced format name is not registered."""


class SearchBackendError(SourceError):
    """An Elasticsearch request failed; the message says why and what to do."""


class NoEventsError(SourceError):
    """No source gave any event. The message names each source's reason; ``sources`` holds the
    per-source accounting, for the summary a caller prints before the error."""

    def __init__(self, message: str, sources: Sequence[SourceAccounting] = ()) -> None:
        super().__init__(message)
        self.sources: tuple[SourceAccounting, ...] = tuple(sources)


class OutputError(PmtimelineError):
    """An output (chart image, report, export) could not be produced."""
