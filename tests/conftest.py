"""Shared fixtures: the CLI runner, paths to sample data, small event frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = REPO / "sample_logs"
#: Reference data beside the project's root; absent in a user's clone.
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled core older than its sources (an editable install is not rebuilt by
    editing core/src: run `pip install -e .` again)."""
    import pmtimeline._core as core

    built = Path(core.__file__ or "")
    if REPO not in built.parents:
        return  # installed from a wheel: no sources to compare with
    sources = [REPO / "core" / "Cargo.toml", *(REPO / "core" / "src").rglob("*.rs")]
    newest = max(path.stat().st_mtime for path in sources)
    if built.stat().st_mtime < newest:
        pytest.exit(f"{built.name} is older than core/src: run `pip install -e .` to rebuild it", returncode=4)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def sample_logs() -> Path:
    return SAMPLE_LOGS


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (only present beside the development checkout)")
    return SHARED_DATA


@pytest.fixture
def small_events() -> pd.DataFrame:
    """Ten minutes of a healthy service, then five minutes of errors, as a raw frame."""
    times = pd.date_range("2024-03-01T10:00:00Z", periods=15 * 6, freq="10s")
    frame = pd.DataFrame({"timestamp": times, "message": "ok", "level": "info", "service": "api"})
    frame.loc[60:, ["message", "level"]] = ["db timeout", "error"]
    return frame
