"""The public API of ``pmtimeline``: a short, sorted ``__all__`` that is complete and resolvable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import pmtimeline
from pmtimeline.errors import PmtimelineError

SUBMODULES = {p.stem for p in (REPO / "pmtimeline").glob("*.py")} | {"connectors"}


def test_all_is_sorted_and_unique() -> None:
    assert pmtimeline.__all__ == sorted(pmtimeline.__all__)
    assert len(set(pmtimeline.__all__)) == len(pmtimeline.__all__)


@pytest.mark.parametrize("name", pmtimeline.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(pmtimeline, name)
    assert value is not None
    assert getattr(value, "__name__", name) == name
    assert getattr(value, "__module__", "").startswith("pmtimeline")


def test_every_lazy_name_is_exported_and_comes_from_its_module() -> None:
    lazy: dict[str, str] = pmtimeline._LAZY
    assert set(lazy) <= set(pmtimeline.__all__)
    for name, module in lazy.items():
        assert getattr(pmtimeline, name).__module__ == module


def test_nothing_public_is_missing_from_all() -> None:
    defined_here = {
        name
        for name, value in vars(pmtimeline).items()
        if not name.startswith("_")
        and name not in SUBMODULES
        and getattr(value, "__module__", "").startswith("pmtimeline")
    }
    assert defined_here <= set(pmtimeline.__all__)
    assert set(pmtimeline.__all__) <= set(dir(pmtimeline))


def test_the_error_root_and_its_direct_children_are_exported() -> None:
    for error in (PmtimelineError, *PmtimelineError.__subclasses__()):
        assert error.__name__ in pmtimeline.__all__


def test_the_notebook_entry_points_are_exported() -> None:
    assert {"load", "read_events", "open_outputs", "Timeline", "Incident", "TimelineConfig"} <= set(pmtimeline.__all__)


def test_every_name_the_notebooks_use_is_exported() -> None:
    used: set[str] = set()
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        used |= set(re.findall(r"\bpmtimeline\.([A-Za-z_]\w*)", code))
    used -= SUBMODULES
    assert used, "the notebooks use no pmtimeline names"
    assert used <= set(pmtimeline.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from pmtimeline import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(pmtimeline.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'lod'"):
        _ = pmtimeline.lod  # type: ignore[attr-defined]


def test_import_stays_light() -> None:
    # `pmtimeline --help` imports the package: the timeline, the chart and the connectors load on first use.
    code = (
        "import sys, pmtimeline; "
        "print([m for m in ('plotly', 'elasticsearch', 'pmtimeline.timeline', 'pmtimeline.connectors') "
        "if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path("/"))
    assert result.stdout.strip() == "[]"
