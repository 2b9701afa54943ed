"""Any log file in, numbered and decoded lines out: the I/O layer under every log format.

:class:`LineReader` turns one file into :class:`LineBlock` objects: contiguous, exactly numbered
lines as pandas ``string[pyarrow]`` Series, read in large binary blocks and decompressed, split and
decoded by the compiled core (``core/src/open.rs``, ``lines.rs``, ``line_blocks.rs``) with the GIL
released; the text reaches pandas as Arrow data, without a copy.

The rules:

* **Compression** is detected from magic bytes, never from the file name: gzip (``1f 8b``, every
  member of a multi-member file), bzip2 (``BZh``), xz (``fd 37 7a 58 5a 00``) and zstd
  (``28 b5 2f fd``, every frame). A truncated archive keeps every complete line; its partial last
  line is rejected ``truncated_archive``. Decompression stops past ``config.max_decompressed_bytes``
  or past ``config.max_compression_ratio`` times the compressed size (never below 64 MiB, so small
  files are never refused); the line cut there is rejected ``decompressed_size_cap``.
* **Encoding**: a UTF-8 byte order mark is removed; a UTF-32 or UTF-16 (LE or BE) byte order mark
  selects that encoding, which is transcoded to UTF-8 (``FF FE 00 00`` is UTF-32 LE, not UTF-16 LE
  starting with a NUL). Everything else is read as UTF-8; invalid byte sequences become U+FFFD and
  are counted in ``decode_errors`` (a U+FFFD already in the text is not counted).
* **Lines** end at ``\\n``. One ``\\r`` just before it (CRLF) is removed, and so is a ``\\r`` ending
  the last line of the file. A lone ``\\r`` inside a line is *kept as data*: it is not a line break,
  so line numbers always agree with ``wc -l`` (plus one for a last line without ``\\n``); outputs
  escape it. A last line without ``\\n`` is a line.
* **NUL bytes** (preallocated or crashed files) are removed. A line made only of NUL bytes stays in
  ``lines`` as ``""`` (so numbering stays contiguous) and is rejected ``nul_bytes``.
* **Long lines**: a line longer than ``config.max_line_bytes`` (its raw bytes, without the line
  terminator, NUL bytes included) is cut to that size, on a UTF-8 character boundary, before NUL
  removal and decoding, and counted in ``truncated_lines``. The excess is discarded while scanning for
  the next ``\\n``, so memory stays bounded even for a 1 GiB line. For UTF-16 and UTF-32 files the
  limit applies to the transcoded UTF-8 bytes.
* **Faults**: an ``OSError`` or a corrupt compressed stream mid-file stops reading with
  ``stop_reason`` ``"read_error: ..."``; the lines read so far are kept and the partial last line is
  rejected ``read_error``. Files that are not regular files (directories, FIFOs, sockets, devices)
  are never opened for reading, so nothing hangs: :func:`check_readable` refuses them with a
  :class:`~pmtimeline.errors.SourceError`.

A source need not be a file of its own: a :class:`StreamedPath` (a member of an archive, see
:mod:`~pmtimeline.connectors.archives`) is a ``str`` (its provenance, ``bundle.tgz!var/log/app.log``)
that :class:`LineReader`, :func:`head_lines`, :func:`check_readable` and :func:`file_mtime` read through
its own stream, with the same rules (a compressed member is decompressed, with the same caps computed
from its stored size). Nothing of it is ever written to disk.

For parallel parsing, :func:`iter_line_ranges` splits an uncompressed file into newline-aligned byte
ranges with their first line numbers, and ``LineReader(path, config, byte_range=...)`` reads one.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from pmtimeline import _core
from pmtimeline.config import TimelineConfig
from pmtimeline.errors import SourceError
from pmtimeline.escaping import escape_terminal

__all__ = [
    "REJECT_NUL_BYTES",
    "REJECT_READ_ERROR",
    "REJECT_SIZE_CAP",
    "REJECT_TRUNCATED_ARCHIVE",
    "FileHead",
    "LineBlock",
    "LineReader",
    "MemberStream",
    "StreamedPath",
    "check_readable",
    "file_mtime",
    "head_lines",
    "iter_line_ranges",
    "read_head",
]

#: Bytes read from disk (or from a decompressor) per step; lines are split once per step.
READ_SIZE: Final = 16 << 20
#: The compression-ratio guard never stops a file before this many decompressed bytes.
RATIO_CAP_FLOOR: Final = 64 << 20

#: Reasons in ``LineBlock.io_reject``.
REJECT_NUL_BYTES: Final = "nul_bytes"
REJECT_TRUNCATED_ARCHIVE: Final = "truncated_archive"
REJECT_SIZE_CAP: Final = "decompressed_size_cap"
#: How a source stopped at the decompressed-size cap is told in the summary.
SIZE_CAP_WORDS: Final = "stopped at the decompressed-size cap (compression bomb guard)"
REJECT_READ_ERROR: Final = "read_error"

#: Byte order marks of the encodings transcoded to UTF-8, UTF-32 first: its LE mark begins with UTF-16's.
_WIDE_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_NON_REGULAR: Final = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
)


@dataclass
class LineBlock:
    """Consecutive lines of one file.

    Attributes:
        first_line: 1-based line number of ``lines[0]``; the blocks of a file are contiguous and
            cover every line.
        lines: decoded text without the line terminator (``string[pyarrow]``, RangeIndex 0..n-1;
            the Arrow data may come in more than one chunk).
        io_reject: NA, or why the line is rejected at the I/O layer (``nul_bytes``,
            ``truncated_archive``, ``decompressed_size_cap``, ``read_error``).
        truncated_lines: lines longer than ``config.max_line_bytes``, cut to that size (kept in
            ``lines``, to be parsed as cut).
        decode_errors: invalid byte sequences replaced by U+FFFD in this block.
    """

    first_line: int
    lines: pd.Series
    io_reject: pd.Series
    truncated_lines: int
    decode_errors: int


class MemberStream(Protocol):
    """The bytes of a :class:`StreamedPath`, as stored (a compressed member is decompressed by the reader).

    ``stopped`` is None, or why the container ended the stream early (``decompressed_size_cap``,
    ``truncated_archive``, ``read_error: ...``): the reader's ``stop_reason`` then.
    """

    stored_size: int  # bytes the member takes in its container: the base of the compression-ratio guard
    stopped: str | None

    def read(self, size: int = ..., /) -> bytes: ...
    def tell(self) -> int: ...
    def close(self) -> None: ...


class StreamedPath(str):
    """A source that is not a file of its own, named by its provenance (``bundle.tgz!var/log/app.log``).

    Being a ``str``, it is the name, the ``source`` column and what ``--source-tz`` globs match, like
    any path; the I/O functions of this module read it through the methods below instead of the
    file system.
    """

    __slots__ = ()

    def check(self) -> None:
        """Raise :class:`SourceError` (one line) when the source cannot be read."""
        raise NotImplementedError

    def open_stream(self) -> MemberStream:
        """The source's bytes from the start (the caller closes the stream)."""
        raise NotImplementedError

    def modification_time(self) -> pd.Timestamp:
        """When the source was last written (UTC), as its container records it."""
        raise NotImplementedError


def _display(path: str | os.PathLike[str]) -> str:
    return escape_terminal(os.fspath(path), limit=300)


def _refuse_non_regular(mode: int, name: str) -> None:
    for is_kind, reason in _NON_REGULAR:
        if is_kind(mode):
            raise SourceError(f"{name}: {reason}; skipped")
    if not stat.S_ISREG(mode):
        raise SourceError(f"{name}: not a regular file; skipped")


def _source_error(exc: OSError, name: str) -> SourceError:
    if exc.errno == errno.ENOENT:
        return SourceError(f"{name}: no such file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SourceError(f"{name}: permission denied")
    if exc.errno == errno.ELOOP:
        return SourceError(f"{name}: symbolic link loop")
    return SourceError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})")


def check_readable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SourceError` with a one-line reason when ``path`` cannot be read as a log file.

    Refused: a missing file, a directory, a FIFO, socket or device (never opened: they can hang),
    a symbolic link loop, a file without read permission.
    """
    if isinstance(path, StreamedPath):
        path.check()
        return
    name = _display(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise _source_error(exc, name) from exc
    _refuse_non_regular(mode, name)
    if not os.access(path, os.R_OK):
        raise SourceError(f"{name}: permission denied")


def _open_regular_fd(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading, refusing anything that became a non-regular file after the check."""
    name = _display(path)
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since check_readable, open must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _source_error(exc, name) from exc
    try:
        _refuse_non_regular(os.fstat(fd).st_mode, name)
    except SourceError:
        os.close(fd)
        raise
    os.set_blocking(fd, True)
    return fd


def _open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """:func:`_open_regular_fd` as an unbuffered binary file."""
    return os.fdopen(_open_regular_fd(path), "rb", buffering=0)


def _compression_of(magic: bytes) -> str | None:
    for prefix, name in _MAGIC:
        if magic.startswith(prefix):
            return name
    return None


def _one_line_reason(exc: BaseException | str) -> str:
    text = str(exc) or type(exc).__name__
    return escape_terminal(" ".join(text.split()), limit=200)


class LineReader:
    """Read one log file as numbered, decoded lines, in blocks of at most ``config.chunk_lines``.

    The reading is done by the compiled core (``pmtimeline._core.LineBlocks``), with the GIL released;
    the rules are those of this module's docstring.

    Attributes, set as reading progresses and complete once :meth:`blocks` is exhausted:
        compression: "gzip", "bz2", "xz", "zstd" or None, from the magic bytes.
        encoding: "utf-8", "utf-16-le", "utf-16-be", "utf-32-le" or "utf-32-be" (from a byte order mark).
        stop_reason: None, or why reading stopped early ("truncated_archive",
            "decompressed_size_cap", "read_error: <reason>").
        bytes_in: bytes read from disk.
        bytes_out: bytes produced by decompression (equal to ``bytes_in`` for plain files).

    Args:
        byte_range: ``(start, end, first_line)`` from :func:`iter_line_ranges`: read only the bytes
            ``[start, end)`` of an uncompressed file, numbering its first line ``first_line``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: TimelineConfig,
        byte_range: tuple[int, int, int] | None = None,
    ) -> None:
        if byte_range is not None and not 0 <= byte_range[0] <= byte_range[1]:
            raise ValueError(f"invalid byte range {byte_range!r}")
        if byte_range is not None and byte_range[2] < 1:
            raise ValueError("the first line number of a byte range starts at 1")
        self.path = path
        self.config = config
        self.byte_range = byte_range
        self.compression: str | None = None
        self.encoding: str = "utf-8"
        self.stop_reason: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        # Set by head_lines: stop after this many decompressed bytes (reject reason "read_limit").
        self._read_limit: int | None = None

    def blocks(self) -> Iterator[LineBlock]:
        """Yield the file's lines in contiguous blocks; an empty file yields no block.

        Raises:
            SourceError: the file cannot be read at all (see :func:`check_readable`).
        """
        check_readable(self.path)
        self.compression, self.encoding, self.stop_reason = None, "utf-8", None
        self.bytes_in = self.bytes_out = 0
        config = self.config
        caps = (config.chunk_lines, config.max_line_bytes, config.max_decompressed_bytes, config.max_compression_ratio)
        name = _display(self.path)
        if isinstance(self.path, StreamedPath):
            if self.byte_range is not None:
                raise ValueError("byte ranges apply to files only; read an archive member whole")
            stream = self.path.open_stream()
            try:
                core = _core.LineBlocks.from_stream(
                    stream, stream.stored_size, name, *caps, READ_SIZE, read_limit=self._read_limit
                )
                yield from self._blocks(core)
            finally:
                stream.close()
            return
        # The core takes the descriptor over (and closes it).
        core = _core.LineBlocks.open(
            _open_regular_fd(self.path), name, *caps, READ_SIZE, byte_range=self.byte_range, read_limit=self._read_limit
        )
        yield from self._blocks(core)

    def _blocks(self, core: _core.LineBlocks) -> Iterator[LineBlock]:
        while True:
            item = next(core, None)
            self._update(core)
            if item is None:
                return
            first_line, batch, truncated_lines, decode_errors = item
            columns = pa.record_batch(batch)
            yield LineBlock(
                first_line=first_line,
                lines=pd.Series(pd.arrays.ArrowStringArray(columns.column(0)), copy=False),
                io_reject=pd.Series(pd.arrays.ArrowStringArray(columns.column(1)), copy=False),
                truncated_lines=truncated_lines,
                decode_errors=decode_errors,
            )

    def _update(self, core: _core.LineBlocks) -> None:
        self.compression, self.encoding = core.compression, core.encoding
        self.bytes_in, self.bytes_out = core.bytes_in, core.bytes_out
        stop = core.stop_reason
        if stop is not None and stop.startswith("read_error: "):
            stop = f"read_error: {_one_line_reason(stop.removeprefix('read_error: '))}"
        self.stop_reason = stop


def head_lines(
    path: str | os.PathLike[str], config: TimelineConfig, n: int = 64, max_bytes: int = 1 << 20
) -> list[str]:
    """The first ``n`` lines of a file, decoded like :class:`LineReader` does, for format detection.

    Reads at most ``max_bytes`` of (decompressed) text. Lines rejected at the I/O layer (NUL-only,
    a partial last line) are skipped.

    Raises:
        SourceError: like :func:`check_readable`.
    """
    return read_head(path, config, n, max_bytes).lines


@dataclass(frozen=True)
class FileHead:
    """The first lines of a file (see :func:`read_head`) and why reading stopped."""

    lines: list[str]
    #: None when the lines wanted were found or the file ended; else the reader's ``stop_reason``
    #: ("read_limit" once ``max_bytes`` are read, "decompressed_size_cap", "truncated_archive", ...).
    stop_reason: str | None
    max_bytes: int
    compression: str | None

    def why_no_line(self) -> str:
        """Why :attr:`lines` is empty, in words for the per-source summary."""
        stop = self.stop_reason
        if stop == REJECT_SIZE_CAP:
            return f"{SIZE_CAP_WORDS} before any line"
        if stop == "read_limit":
            # Not "empty": a bomb of NUL bytes or newlines, or a first line longer than max_bytes.
            text = "decompressed text" if self.compression else "the file"
            return (
                f"no line of text in the first {_size(self.max_bytes)} of {text} "
                "(only blank lines, NUL bytes or the start of a longer line)"
            )
        if stop == REJECT_TRUNCATED_ARCHIVE:
            return "the compressed file is truncated before its first line"
        if stop:
            return f"{escape_terminal(stop.replace('_', ' ', 1), limit=200)} before the first line"
        return "the file is empty or blank"


def read_head(
    path: str | os.PathLike[str],
    config: TimelineConfig,
    n: int = 64,
    max_bytes: int = 1 << 20,
    *,
    skip_blank: bool = False,
) -> FileHead:
    """Like :func:`head_lines`, with why reading stopped; ``skip_blank`` leaves blank lines out (they
    neither count towards ``n`` nor come back), so a run of blank lines does not hide the text after it.

    Raises:
        SourceError: like :func:`check_readable`.
    """
    reader = LineReader(path, config)
    reader._read_limit = max_bytes
    found: list[str] = []
    for block in reader.blocks():
        kept = block.lines[block.io_reject.isna()]
        if skip_blank:
            kept = kept[kept.str.strip().str.len() > 0]
        found.extend(kept.iloc[: n - len(found)].tolist())
        if len(found) >= n:
            return FileHead(found, None, max_bytes, reader.compression)
    return FileHead(found, reader.stop_reason, max_bytes, reader.compression)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def file_mtime(path: str | os.PathLike[str]) -> pd.Timestamp:
    """The file's modification time, in UTC (used to infer the year of year-less timestamps).

    Raises:
        SourceError: the file cannot be examined.
    """
    if isinstance(path, StreamedPath):
        return path.modification_time()
    try:
        modified = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise _source_error(exc, _display(path)) from exc
    return pd.Timestamp(modified, unit="ns", tz="UTC")


def iter_line_ranges(
    path: str | os.PathLike[str], config: TimelineConfig, target_bytes: int
) -> list[tuple[int, int, int]]:
    """Split a file into ``(start, end, first_line)`` byte ranges of about ``target_bytes``, for parallel parsing.

    Ranges of an uncompressed file end just after a ``\\n`` (the last one at the end of the file);
    ``first_line`` is the 1-based number of the range's first line. A compressed, UTF-16 or UTF-32 file is
    one range covering the whole file; an empty file has no range. Pass each range to
    ``LineReader(path, config, byte_range=...)``.

    Raises:
        SourceError: like :func:`check_readable`.
    """
    del config  # the split depends on the bytes only; kept for a uniform call shape with LineReader
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    check_readable(path)
    ranges: list[tuple[int, int, int]] = []
    with _open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        try:
            head = os.pread(file.fileno(), 6, 0)
        except OSError as exc:
            raise _source_error(exc, _display(path)) from exc
        if not head:
            return []
        if _compression_of(head) or head.startswith(tuple(bom for bom, _ in _WIDE_BOMS)):
            return [(0, size, 1)]
        start, first_line, newlines, pos = 0, 1, 0, 0
        try:
            while chunk := file.read(READ_SIZE):
                counted_to = 0  # newlines of chunk[:counted_to] are already in `newlines`
                while True:
                    # A range closes at the first newline at or after start + target_bytes - 1.
                    newline = chunk.find(b"\n", max(start + target_bytes - 1 - pos, counted_to))
                    if newline < 0:
                        break
                    newlines += _newlines(chunk, counted_to, newline + 1)
                    end = pos + newline + 1
                    ranges.append((start, end, first_line))
                    start, first_line, newlines, counted_to = end, first_line + newlines, 0, newline + 1
                newlines += _newlines(chunk, counted_to, len(chunk))
                pos += len(chunk)
        except OSError as exc:
            raise _source_error(exc, _display(path)) from exc
        if start < pos:
            ranges.append((start, pos, first_line))
    return ranges


def _newlines(data: bytes, start: int, end: int) -> int:
    """``data.count(b"\\n", start, end)``, about twice as fast on large spans (a vectorized compare)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start) == 0x0A))
