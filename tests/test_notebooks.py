"""Every notebook in notebooks/ runs top to bottom on a real Jupyter kernel, and is stored stripped.

The kernel is this test run's interpreter (the project's virtualenv), whatever kernels the machine
has installed: the test writes a kernelspec for ``sys.executable`` into a temporary directory and
runs each notebook from ``notebooks/``, as a user would. A notebook must not write into the
repository; the test checks that the notebook and sample folders are unchanged afterwards.

02_elasticsearch reads the test server of tests/esstub.py, or, when ``PMTIMELINE_ES_URL`` is set (the
opt-in of the live connector tests too), that cluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
#: Seconds a single cell may take (loading the sample and pushing counts down are the slow ones).
CELL_TIMEOUT = 600
#: Folders a notebook reads and must leave as they were.
WATCHED = (NOTEBOOKS, REPO / "sample_logs")


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOK_PATHS} >= {"01_explore_incident.ipynb", "02_elasticsearch.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"code cell {i} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
    assert book.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernelspec ``python3`` that starts this interpreter's ipykernel (not whatever ``python`` is
    first on PATH, nor a kernel installed elsewhere on the machine)."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / "python3"
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pmtimeline test kernel",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    manager = KernelSpecManager()
    manager.kernel_dirs = [str(root)]
    manager.ensure_native_kernel = False
    return manager


def _snapshot() -> dict[str, int]:
    return {
        str(p.relative_to(REPO)): p.stat().st_mtime_ns
        for folder in WATCHED
        for p in folder.rglob("*")
        if p.is_file() and ".ipynb_checkpoints" not in p.parts
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_notebook_runs_without_errors(path: Path, kernel_specs: KernelSpecManager) -> None:
    book = nbformat.read(path, as_version=4)
    # A first cell, added only for this run, that records which interpreter the kernel runs.
    book.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    before = _snapshot()
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        book,
        km=manager,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}")
    first = "".join(o.get("text", "") for o in book.cells[0].outputs)
    assert Path(first.strip()) == Path(sys.executable), "the kernel does not run this interpreter"
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    last_code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in last_code), "a code cell did not run"
    assert _snapshot() == before, "the notebook wrote into the repository"
