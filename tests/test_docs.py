"""The written documentation stays complete: every schema column, phase and CLI command is described."""

from __future__ import annotations

import re

from click.testing import CliRunner
from conftest import REPO

from pmtimeline.cli import cli
from pmtimeline.config import PHASES
from pmtimeline.schema import EVENT_COLUMNS


def test_schema_doc_lists_every_column() -> None:
    text = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE)
    assert documented == list(EVENT_COLUMNS)


def test_incident_json_doc_lists_every_key() -> None:
    from pmtimeline.incident import Incident

    text = (REPO / "docs" / "incident-json.md").read_text(encoding="utf-8")
    keys = Incident(title="t", window_start=None, window_end=None, phases={}).to_dict()
    for key in keys:
        assert f"`{key}`" in text, key
    for phase in PHASES:
        assert f"`{phase}`" in text


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name, command in cli.commands.items():
        assert command.help, name
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output, name


def test_readme_holds_the_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in ci.splitlines() if "pytest" in line and not line.startswith("#"))
    assert test_command.strip() in readme
    assert "pmtimeline build sample_logs" in readme
