"""The pre-Rust line reader (``pmtimeline/connectors/rawio.py`` at commit 1051d5e), kept as the differential oracle.

Before the package switched to the compiled reader (``core/src/open.rs``, ``lines.rs``,
``line_blocks.rs``), this was :class:`~pmtimeline.connectors.rawio.LineReader`: large binary reads split
and decoded with pyarrow and ``bytes`` methods. ``tests/connectors/test_rawio_parity.py`` reads the same
inputs with both and demands the same blocks. Only the reading itself is kept here; the helpers the
package still has (``check_readable``, ``StreamedPath``, ``iter_line_ranges``, ...) come from it.
"""

from __future__ import annotations

import bz2
import codecs
import lzma
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.rawio import MemberStream, StreamedPath, _open_regular, check_readable
from pmtimeline.escaping import escape_terminal

#: Bytes read from disk (or from a decompressor) per step; lines are split once per step.
READ_SIZE: Final = 16 << 20
#: Compressed bytes of a gzip file given to zlib per step.
GZIP_INPUT_SIZE: Final = 2 << 20
#: The compression-ratio guard never stops a file before this many decompressed bytes.
RATIO_CAP_FLOOR: Final = 64 << 20

#: Reasons in ``LineBlock.io_reject``.
REJECT_NUL_BYTES: Final = "nul_bytes"
REJECT_TRUNCATED_ARCHIVE: Final = "truncated_archive"
REJECT_SIZE_CAP: Final = "decompressed_size_cap"
REJECT_READ_ERROR: Final = "read_error"

_UTF8_BOM: Final = codecs.BOM_UTF8
#: Byte order marks of the encodings transcoded to UTF-8, UTF-32 first: its LE mark begins with UTF-16's.
_WIDE_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_REPLACEMENT: Final = "\ufffd".encode()
_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
# Errors a decompressor raises on corrupt input (EOFError, for truncation, is handled apart).
_CORRUPT_STREAM_ERRORS: Final = (OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError, ValueError)


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


@dataclass
class _DecodedLines:
    text: pa.Array
    reject: pa.Array
    truncated: np.ndarray
    decode_errors: np.ndarray


class _Prefixed:
    """``head`` followed by the rest of ``stream``: the bytes read to find the magic are not lost."""

    def __init__(self, head: bytes, stream: MemberStream) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            cut = len(self._head) if size < 0 else min(size, len(self._head))
            data, self._head = self._head[:cut], self._head[cut:]
            return data
        return self._stream.read(size)

    def tell(self) -> int:
        return self._stream.tell() - len(self._head)


def _compression_of(magic: bytes) -> str | None:
    for prefix, name in _MAGIC:
        if magic.startswith(prefix):
            return name
    return None


def _one_line_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return escape_terminal(" ".join(text.split()), limit=200)


def _zstd_frames_complete(fd: int, size: int) -> bool:
    """Whether every zstd frame of the file ends properly.

    python-zstandard's streaming reader returns a silent EOF on a truncated frame (gzip, bz2 and xz
    raise EOFError), so walk the frame and block headers: a few bytes read per 128 KiB block.
    """
    pos = 0
    while pos < size:
        magic = os.pread(fd, 4, pos)
        if len(magic) < 4:
            return False
        number = int.from_bytes(magic, "little")
        if 0x184D2A50 <= number <= 0x184D2A5F:  # skippable frame: 4-byte length, then data
            length = os.pread(fd, 4, pos + 4)
            if len(length) < 4:
                return False
            pos += 8 + int.from_bytes(length, "little")
            continue
        if number != 0xFD2FB528:
            return False
        descriptor = os.pread(fd, 1, pos + 4)
        if not descriptor:
            return False
        fhd = descriptor[0]
        single_segment = (fhd >> 5) & 1
        content_size_bytes = (1 if single_segment else 0, 2, 4, 8)[fhd >> 6]
        pos += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3] + content_size_bytes
        last = False
        while not last:
            header = os.pread(fd, 3, pos)
            if len(header) < 3:
                return False
            value = int.from_bytes(header, "little")
            last, block_type, block_size = bool(value & 1), (value >> 1) & 3, value >> 3
            if block_type == 3:
                return False
            pos += 3 + (1 if block_type == 1 else block_size)
        pos += 4 if fhd & 4 else 0
        if pos > size:
            return False
    return pos == size


class _ByteStream(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...
    def close(self) -> None: ...


class _GzipMembers:
    """Every member of a gzip file, inflated by zlib straight into large output chunks.

    The gzip module's reader moves 128 KiB steps through Python-level buffers and copies them
    again; this reader returns up to ``size`` bytes per zlib call. Like the gzip module it skips
    zero padding between members, raises EOFError when the last member is cut short, and zlib.error
    on corrupt data (zlib checks each member's CRC and length).
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._inflate = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._data = b""  # compressed bytes read but not yet given to zlib
        self._in_member = False

    def read1(self, size: int = READ_SIZE, /) -> bytes:
        while True:
            at_end = False
            if not self._data:
                self._data = self._file.read(GZIP_INPUT_SIZE)
                at_end = not self._data
            if not self._in_member:
                self._data = self._data.lstrip(b"\0")
                if not self._data:
                    if at_end:
                        return b""
                    continue
                self._in_member = True
            # At the end of the input, decompress(b"") still flushes output zlib holds back.
            out = self._inflate.decompress(self._data, size)
            if self._inflate.eof:
                self._data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                self._in_member = False
            else:
                self._data = self._inflate.unconsumed_tail
            if out:
                return out
            if at_end:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    def close(self) -> None:
        self._data = b""


def _open_decompressor(compression: str | None, file: IO[bytes]) -> _ByteStream:
    """A streaming decompressor over ``file``; closing it leaves ``file`` open."""
    if compression == "gzip":
        return _GzipMembers(file)
    if compression == "bz2":
        return bz2.BZ2File(file, mode="rb")  # every stream of a multi-stream file
    if compression == "xz":
        return lzma.LZMAFile(file, mode="rb")
    return zstandard.ZstdDecompressor().stream_reader(file, read_across_frames=True, closefd=False)


def _region(buf: bytes, start: int, end: int, binary: bool = True) -> pa.Array:
    """``buf[start:end]`` as a one-element large_binary (or large_string) array, without copying."""
    offsets = pa.py_buffer(np.array([start, end], dtype=np.int64))
    return pa.Array.from_buffers(
        pa.large_binary() if binary else pa.large_string(), 1, [None, offsets, pa.py_buffer(buf)]
    )


def _split(buf: bytes, start: int, end: int) -> pa.Array:
    """The lines of ``buf[start:end]`` (split on ``\\n``; a final ``\\n`` ends the last line) as large_binary."""
    parts = pc.split_pattern(_region(buf, start, end), pattern=b"\n").flatten()
    return parts.slice(0, len(parts) - 1) if end > start and buf[end - 1] == 0x0A else parts


def _is_utf8(buf: bytes, start: int, end: int) -> bool:
    try:
        _region(buf, start, end, binary=False).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _cut_long_lines(buf: bytes, lengths: np.ndarray, limit: int) -> bytes:
    """``buf`` with every line longer than ``limit`` bytes cut to ``limit``, on a UTF-8 boundary."""
    starts = np.concatenate(([0], np.cumsum(lengths[:-1] + 1)))
    pieces = []
    kept_from = 0
    # A loop over the over-long lines only: at most READ_SIZE / max_line_bytes of them per step.
    for index in np.flatnonzero(lengths > limit):
        start = int(starts[index])
        cut = start + limit
        # buf[cut] is the first byte dropped; if it continues a character, drop that character whole.
        while cut > start and cut > start + limit - 3 and buf[cut] & 0xC0 == 0x80:
            cut -= 1
        pieces.append(buf[kept_from:cut])
        kept_from = start + int(lengths[index])
    pieces.append(buf[kept_from:])
    return b"".join(pieces)


class LineReader:
    """Read one log file as numbered, decoded lines, in blocks of at most ``config.chunk_lines``.

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
        self._next_line = 1
        self._pending_decode_errors = 0

    def blocks(self) -> Iterator[LineBlock]:
        """Yield the file's lines in contiguous blocks; an empty file yields no block.

        Raises:
            SourceError: the file cannot be read at all (see :func:`check_readable`).
        """
        check_readable(self.path)
        self.compression, self.encoding, self.stop_reason = None, "utf-8", None
        self.bytes_in = self.bytes_out = self._pending_decode_errors = 0
        self._next_line = self.byte_range[2] if self.byte_range else 1
        if isinstance(self.path, StreamedPath):
            if self.byte_range is not None:
                raise ValueError("byte ranges apply to files only; read an archive member whole")
            stream = self.path.open_stream()
            try:
                yield from self._line_blocks(self._utf8_chunks(self._stream_chunks(stream), detect_bom=True))
            finally:
                stream.close()
            return
        with _open_regular(self.path) as file:
            chunks = self._file_chunks(file)
            yield from self._line_blocks(
                self._utf8_chunks(chunks, detect_bom=not self.byte_range or not self.byte_range[0])
            )

    # -- bytes from disk or from a decompressor --------------------------------------------------

    def _file_chunks(self, file: IO[bytes]) -> Iterator[bytes]:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        try:
            self.compression = _compression_of(os.pread(fd, 6, 0))
        except OSError as exc:
            self.stop_reason = f"read_error: {_one_line_reason(exc)}"
            return
        if self.compression is None:
            start, end = (self.byte_range[0], self.byte_range[1]) if self.byte_range else (0, None)
            yield from self._plain_chunks(file, start, end)
            return
        if self.byte_range and (self.byte_range[0] != 0 or self.byte_range[1] < size):
            raise ValueError("byte ranges apply to uncompressed files only; read a compressed file whole")
        yield from self._decompressed_chunks(file, size)

    def _stream_chunks(self, stream: MemberStream) -> Iterator[bytes]:
        """The bytes of a :class:`StreamedPath`, decompressed when they are compressed (one level)."""
        head = b""
        try:
            while len(head) < 6 and (data := stream.read(6 - len(head))):
                head += data
        except OSError as exc:
            self.stop_reason = f"read_error: {_one_line_reason(exc)}"
            return
        self.compression = _compression_of(head)
        prefixed = _Prefixed(head, stream)
        if self.compression is not None:
            yield from self._decompressed_chunks(prefixed, stream.stored_size)  # type: ignore[arg-type]
        else:
            # A member inflated by its container (zip) is held to the same caps as a compressed file.
            cap = min(
                self.config.max_decompressed_bytes,
                max(self.config.max_compression_ratio * stream.stored_size, RATIO_CAP_FLOOR),
            )
            cap_reason = REJECT_SIZE_CAP
            if self._read_limit is not None and self._read_limit < cap:
                cap, cap_reason = self._read_limit, "read_limit"
            try:
                while data := prefixed.read(min(READ_SIZE, cap + 1 - self.bytes_out)):
                    if self.bytes_out + len(data) > cap:
                        data = data[: cap - self.bytes_out]
                        self.stop_reason = cap_reason
                    self.bytes_in = self.bytes_out = self.bytes_out + len(data)
                    if data:
                        yield data
                    if self.stop_reason:
                        break
            except OSError as exc:
                self.stop_reason = f"read_error: {_one_line_reason(exc)}"
        if stream.stopped and self.stop_reason != "read_limit":
            self.stop_reason = stream.stopped  # the container's cap or damage is the cause

    def _plain_chunks(self, file: IO[bytes], start: int, end: int | None) -> Iterator[bytes]:
        limit_reached = False
        if self._read_limit is not None and (end is None or end - start > self._read_limit):
            end, limit_reached = start + self._read_limit, True
        pos = start
        try:
            file.seek(start)
            while end is None or pos < end:
                data = file.read(READ_SIZE if end is None else min(READ_SIZE, end - pos))
                if not data:
                    return
                pos += len(data)
                self.bytes_in += len(data)
                self.bytes_out += len(data)
                yield data
        except OSError as exc:
            self.stop_reason = f"read_error: {_one_line_reason(exc)}"
            return
        if limit_reached:
            self.stop_reason = "read_limit"

    def _decompressed_chunks(self, file: IO[bytes], compressed_size: int) -> Iterator[bytes]:
        cap = min(
            self.config.max_decompressed_bytes,
            max(self.config.max_compression_ratio * compressed_size, RATIO_CAP_FLOOR),
        )
        cap_reason = REJECT_SIZE_CAP
        if self._read_limit is not None and self._read_limit < cap:
            cap, cap_reason = self._read_limit, "read_limit"
        stream = _open_decompressor(self.compression, file)
        step = min(READ_SIZE, cap + 1)
        pending: list[bytes] = []
        pending_size = 0
        try:
            while True:
                # read1: a truncated stream raises only after returning what it could decompress.
                data = stream.read1(min(step, cap + 1 - self.bytes_out))
                self.bytes_in = file.tell()
                if not data:
                    break
                if self.bytes_out + len(data) > cap:
                    data = data[: cap - self.bytes_out]
                    self.stop_reason = cap_reason
                self.bytes_out += len(data)
                pending.append(data)
                pending_size += len(data)
                if self.stop_reason:
                    break
                if pending_size >= step // 2:  # one large piece is yielded as is, without a copy
                    yield b"".join(pending)
                    pending, pending_size = [], 0
        except EOFError:
            self.stop_reason = REJECT_TRUNCATED_ARCHIVE
        except _CORRUPT_STREAM_ERRORS as exc:
            self.stop_reason = f"read_error: {_one_line_reason(exc)}"
        finally:
            stream.close()
        # (A zstd archive member cannot be checked so: no file descriptor to walk its frames.)
        if self.compression == "zstd" and self.stop_reason is None and not isinstance(self.path, StreamedPath):
            try:
                complete = _zstd_frames_complete(file.fileno(), compressed_size)
            except OSError:
                complete = False
            if not complete:
                self.stop_reason = REJECT_TRUNCATED_ARCHIVE
        if pending:
            yield b"".join(pending)

    # -- byte order marks, UTF-16 and UTF-32 ---------------------------------------------------

    def _utf8_chunks(self, chunks: Iterator[bytes], *, detect_bom: bool) -> Iterator[bytes]:
        first = b""
        if detect_bom:
            for chunk in chunks:
                first += chunk
                if len(first) >= 4:
                    break
            if first.startswith(_UTF8_BOM):
                first = first[3:]
            else:
                for bom, encoding in _WIDE_BOMS:
                    if first.startswith(bom):
                        self.encoding, first = encoding, first[len(bom) :]
                        break
        if self.encoding == "utf-8":
            if first:
                yield first
            yield from chunks
            return
        unit = 4 if self.encoding.startswith("utf-32") else 2
        carry = first
        for chunk in chunks:
            data = carry + chunk
            cut = len(data) - len(data) % unit
            # UTF-16: keep a high surrogate for the next step, its pair may start the next chunk.
            if unit == 2 and cut >= 2 and 0xD8 <= data[cut - 1 if self.encoding == "utf-16-le" else cut - 2] <= 0xDB:
                cut -= 2
            carry = data[cut:]
            if cut:
                yield self._wide_to_utf8(data[:cut])
        if carry:
            yield self._wide_to_utf8(carry)

    def _wide_to_utf8(self, data: bytes) -> bytes:
        text = data.decode(self.encoding, errors="replace")
        if "\ufffd" in text:
            literal = data.decode(self.encoding, errors="ignore").count("\ufffd")
            self._pending_decode_errors += text.count("\ufffd") - literal
        return text.encode("utf-8")

    # -- lines ------------------------------------------------------------------------------------

    def _line_blocks(self, chunks: Iterator[bytes]) -> Iterator[LineBlock]:
        limit = self.config.max_line_bytes
        pending = b""  # the start of a line continued by the next chunk
        discarding = False  # inside an over-long line: its first limit+1 bytes are kept in pending
        for chunk in chunks:
            first = chunk.find(b"\n")
            if first < 0:
                if not discarding:
                    pending += chunk
                    if len(pending) > limit:
                        # limit+1 bytes: the line still counts as longer than the limit when it is cut.
                        pending, discarding = pending[: limit + 1], True
                continue
            # The line that straddles the previous chunk is decoded apart, so the (large) chunk is
            # never copied: its whole lines are split straight from the buffer.
            bridge = pending + (b"\n" if discarding else chunk[: first + 1])
            parts = [self._decode(bridge, 0, len(bridge), tail_reason=None)]
            last = chunk.rfind(b"\n")
            if last > first:
                parts.append(self._decode(chunk, first + 1, last + 1, tail_reason=None))
            pending, discarding = chunk[last + 1 :], False
            if len(pending) > limit:
                pending, discarding = pending[: limit + 1], True
            yield from self._emit(parts)
        if pending:
            tail_reason = self.stop_reason
            if tail_reason and tail_reason.startswith("read_error"):
                tail_reason = REJECT_READ_ERROR
            yield from self._emit([self._decode(pending, 0, len(pending), tail_reason=tail_reason)])

    def _decode(self, buf: bytes, start: int, end: int, *, tail_reason: str | None) -> _DecodedLines:
        """Decode the lines of ``buf[start:end]``: whole lines, of which only the file's last may lack ``\\n``."""
        terminated = buf[end - 1] == 0x0A
        if buf.find(b"\r", start, end) >= 0:
            buf = buf[start:end].replace(b"\r\n", b"\n")
            if not terminated and buf.endswith(b"\r"):
                buf = buf[:-1]
            start, end = 0, len(buf)
        lines = _split(buf, start, end)
        lengths = pc.binary_length(lines).to_numpy()
        long_mask = lengths > self.config.max_line_bytes
        if long_mask.any():
            buf = _cut_long_lines(buf[start:end], lengths, self.config.max_line_bytes)
            start, end = 0, len(buf)
            lines = _split(buf, start, end)
        nul_only: np.ndarray | None = None
        if buf.find(b"\0", start, end) >= 0:
            lengths_after_cut = pc.binary_length(lines)
            nuls = pc.count_substring(lines, b"\0")
            nul_only = pc.and_(pc.equal(nuls, lengths_after_cut), pc.greater(lengths_after_cut, 0)).to_numpy(
                zero_copy_only=False
            )
            long_mask &= ~nul_only  # a NUL-only line is rejected, not parsed as cut
            buf = buf[start:end].replace(b"\0", b"")
            start, end = 0, len(buf)
            lines = _split(buf, start, end)
        errors: np.ndarray | None = None
        if not _is_utf8(buf, start, end):
            literal = pc.count_substring(lines, _REPLACEMENT)
            buf = buf[start:end].decode("utf-8", errors="replace").encode("utf-8")
            start, end = 0, len(buf)
            lines = _split(buf, start, end)
            errors = pc.subtract(pc.count_substring(lines, _REPLACEMENT), literal).to_numpy()
        return _DecodedLines(
            text=lines.view(pa.large_string()),
            reject=self._rejects(len(lines), nul_only, None if terminated else tail_reason),
            truncated=long_mask,
            decode_errors=errors if errors is not None else np.zeros(len(lines), dtype=np.int64),
        )

    def _emit(self, parts: list[_DecodedLines]) -> Iterator[LineBlock]:
        """Cut decoded lines into LineBlocks of at most ``config.chunk_lines`` lines."""
        text = pa.chunked_array([part.text for part in parts], type=pa.large_string())
        reject = pa.chunked_array([part.reject for part in parts], type=pa.large_string())
        truncated = np.concatenate([part.truncated for part in parts])
        errors = np.concatenate([part.decode_errors for part in parts])
        count = len(text)
        for start in range(0, count, self.config.chunk_lines):
            stop = min(start + self.config.chunk_lines, count)
            decode_errors = int(errors[start:stop].sum()) + self._pending_decode_errors
            self._pending_decode_errors = 0
            yield LineBlock(
                first_line=self._next_line,
                lines=pd.Series(pd.arrays.ArrowStringArray(text.slice(start, stop - start))),
                io_reject=pd.Series(pd.arrays.ArrowStringArray(reject.slice(start, stop - start))),
                truncated_lines=int(truncated[start:stop].sum()),
                decode_errors=decode_errors,
            )
            self._next_line += stop - start

    @staticmethod
    def _rejects(count: int, nul_only: np.ndarray | None, tail_reason: str | None) -> pa.Array:
        has_nul = nul_only is not None and bool(nul_only.any())
        if not has_nul and tail_reason is None:
            return pa.nulls(count, pa.large_string())
        reasons = np.full(count, None, dtype=object)
        if has_nul:
            reasons[nul_only] = REJECT_NUL_BYTES
        if tail_reason is not None:
            reasons[-1] = tail_reason
        return pa.array(reasons, type=pa.large_string())
