"""Type stubs of the compiled reading core (core/src, built by maturin)."""

from collections.abc import Mapping, Sequence
from typing import Any

def core_version() -> str: ...
def _panic_for_test(source: str) -> None: ...

class ArrowBatch:
    """One record batch, exported once through the Arrow PyCapsule interface."""

    def __len__(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...

# -- the line reader (core/src/line_blocks.rs) -----------------------------------------------------

class LineBlocks:
    """A source's numbered, decoded lines: ``(first_line, batch, truncated_lines, decode_errors)`` per block.

    ``batch`` holds the ``large_string`` columns ``line`` and ``io_reject``.
    """

    @staticmethod
    def open(
        fd: int,
        source: str,
        chunk_lines: int,
        max_line_bytes: int,
        max_decompressed_bytes: int,
        max_compression_ratio: int,
        read_size: int,
        byte_range: tuple[int, int, int] | None = None,
        read_limit: int | None = None,
    ) -> LineBlocks: ...
    @staticmethod
    def from_stream(
        stream: Any,
        stored_size: int,
        source: str,
        chunk_lines: int,
        max_line_bytes: int,
        max_decompressed_bytes: int,
        max_compression_ratio: int,
        read_size: int,
        read_limit: int | None = None,
    ) -> LineBlocks: ...
    def __iter__(self) -> LineBlocks: ...
    def __next__(self) -> tuple[int, ArrowBatch, int, int]: ...
    @property
    def compression(self) -> str | None: ...
    @property
    def encoding(self) -> str: ...
    @property
    def stop_reason(self) -> str | None: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...

# generic: the generic reader with a learned timestamp layout (core/src/generic.rs, core/src/layouts.rs).
def generic_layouts() -> list[dict[str, Any]]: ...
def generic_learn(sample: list[str]) -> tuple[str | None, int, int]: ...
def generic_parse(lines: Any, layout: str | None, source: str) -> ArrowBatch: ...
def generic_render(layout: str, ns: int, offset_minutes: int | None = None) -> str | None: ...

# extract / times: regex extraction and the common timestamp layouts (core/src/extract.rs, times.rs).
def extract_groups(lines: Any, pattern: str) -> ArrowBatch: ...
def regex_search(lines: Any, pattern: str) -> ArrowBatch: ...
def regex_error(pattern: str) -> str | None: ...
def regex_group_names(pattern: str) -> list[str]: ...
def parse_layout(text: Any, layout: str) -> ArrowBatch: ...

# JSON lines (core/src/json_lines.rs)
def parse_json_lines(
    lines: Any,
    source: str,
    targets: Mapping[str, tuple[int, str]] | None = None,
    numeric: Sequence[str] = ...,
    divisors: Mapping[str, float] = ...,
    keys: Sequence[str] = ...,
) -> ArrowBatch: ...
