"""``python -m pmtimeline`` runs the CLI."""

from pmtimeline.cli import cli

cli()
