"""The ``pmtimeline`` command line: options in, library calls, results out.

Every command only translates options into library calls (the same calls a notebook makes) and
writes the results; a :class:`~pmtimeline.errors.PmtimelineError` becomes ``Error: ...`` and exit 1.
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="pmtimeline")
def cli() -> None:
    """Build an incident timeline, impact metrics and a postmortem draft from logs and alerts."""
