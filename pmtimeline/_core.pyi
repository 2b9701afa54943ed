"""Type stubs of the compiled reading core (core/src, built by maturin)."""

from collections.abc import Mapping, Sequence
from typing import Any

def core_version() -> str: ...
def _panic_for_test(source: str) -> None: ...

class ArrowBatch:
    """One record batch, exported once through the Arrow PyCapsule interface."""

    def __len__(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...

# JSON lines (core/src/json_lines.rs)
def parse_json_lines(
    lines: Any,
    source: str,
    targets: Mapping[str, tuple[int, str]] | None = None,
    numeric: Sequence[str] = ...,
    divisors: Mapping[str, float] = ...,
    keys: Sequence[str] = ...,
) -> ArrowBatch: ...
