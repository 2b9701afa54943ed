"""The Rust reading core as a crate: formatted, clippy-clean, its own tests (with the property tests,
bounded by PROPTEST_CASES) passing, and panics reaching Python as ``CoreFaultError``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import REPO

from pmtimeline import _core
from pmtimeline.errors import CoreFaultError, PmtimelineError

CRATE = REPO / "core"


def _cargo(*args: str) -> subprocess.CompletedProcess[str]:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is not installed: the reading core is Rust (see README, 'Set-up')")
    env = {**os.environ, "PROPTEST_CASES": os.environ.get("PROPTEST_CASES", "2000")}
    return subprocess.run([cargo, *args], cwd=CRATE, capture_output=True, text=True, check=False, env=env)


def test_rustfmt_is_clean() -> None:
    result = _cargo("fmt", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_clippy_is_clean() -> None:
    result = _cargo("clippy", "--release", "--all-targets", "--quiet", "--", "-D", "warnings")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_cargo_test_passes() -> None:
    # --release shares the dependencies maturin already compiled for `pip install -e .`.
    result = _cargo("test", "--release", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test result: ok" in result.stdout
    assert "FAILED" not in result.stdout


def test_a_panic_becomes_a_pmtimeline_error_naming_the_source() -> None:
    with pytest.raises(CoreFaultError, match=r"reading broken\.log: deliberate panic") as caught:
        _core._panic_for_test("broken.log")
    assert isinstance(caught.value, PmtimelineError)


def test_the_core_is_the_version_of_its_crate() -> None:
    manifest = (CRATE / "Cargo.toml").read_text(encoding="utf-8")
    assert f'version = "{_core.core_version()}"' in manifest
