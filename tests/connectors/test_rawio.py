"""Raw log file reading: numbering, line ends, encodings, NUL bytes, long lines, compression, faults.

Inputs are generated in ``tmp_path``. Expected lines come from :func:`reference_lines`, a plain
per-line Python reading of the documented rules (never from the code under test), and expected
decompressed bytes from the standard library's one-shot decompressors.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import itertools
import lzma
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtimeline.cli import cli
from pmtimeline.config import TimelineConfig
from pmtimeline.connectors import rawio
from pmtimeline.connectors.logfile import LogFileConnector
from pmtimeline.connectors.rawio import (
    LineReader,
    check_readable,
    file_mtime,
    head_lines,
    iter_line_ranges,
    read_head,
)
from pmtimeline.errors import SourceError
from pmtimeline.schema import STRING

FFFD = "\ufffd"


def config(**changes: object) -> TimelineConfig:
    return dataclasses.replace(TimelineConfig(), **changes)  # type: ignore[arg-type]


def reference_lines(data: bytes, max_line_bytes: int) -> tuple[list[str], list[str | None], int, int]:
    """The documented rules, applied line by line: (lines, rejects, truncated, decode_errors)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    lines: list[str] = []
    rejects: list[str | None] = []
    truncated = errors = 0
    for raw in parts:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        cut = len(raw) > max_line_bytes
        if cut:
            end = max_line_bytes
            while end > max_line_bytes - 3 and raw[end] & 0xC0 == 0x80:
                end -= 1
            raw = raw[:end]
        nul_only = raw != b"" and raw.count(b"\0") == len(raw)
        kept = raw.replace(b"\0", b"")
        text = kept.decode("utf-8", errors="replace")
        errors += text.count(FFFD) - kept.decode("utf-8", errors="ignore").count(FFFD)
        truncated += cut and not nul_only
        lines.append(text)
        rejects.append("nul_bytes" if nul_only else None)
    return lines, rejects, truncated, errors


@dataclasses.dataclass
class ReadResult:
    reader: LineReader
    lines: list[str]
    rejects: list[str | None]
    truncated: int
    decode_errors: int
    block_sizes: list[int]


def read_all(path: Path, cfg: TimelineConfig, byte_range: tuple[int, int, int] | None = None) -> ReadResult:
    """Read every block, checking the block invariants on the way."""
    reader = LineReader(path, cfg, byte_range=byte_range)
    lines: list[str] = []
    rejects: list[str | None] = []
    truncated = decode_errors = 0
    sizes = []
    expected_first = byte_range[2] if byte_range else 1
    for block in reader.blocks():
        assert block.first_line == expected_first
        assert 0 < len(block.lines) <= cfg.chunk_lines
        assert block.lines.dtype == STRING
        assert block.io_reject.dtype == STRING
        assert len(block.io_reject) == len(block.lines)
        assert isinstance(block.lines.index, pd.RangeIndex)
        assert block.lines.index.equals(pd.RangeIndex(len(block.lines)))
        assert not block.lines.isna().any()
        expected_first += len(block.lines)
        lines.extend(block.lines.tolist())
        rejects.extend(None if pd.isna(r) else r for r in block.io_reject.tolist())
        truncated += block.truncated_lines
        decode_errors += block.decode_errors
        sizes.append(len(block.lines))
    return ReadResult(reader, lines, rejects, truncated, decode_errors, sizes)


def assert_matches_reference(result: ReadResult, data: bytes, max_line_bytes: int) -> None:
    lines, rejects, truncated, errors = reference_lines(data, max_line_bytes)
    assert result.lines == lines
    assert result.rejects == rejects
    assert result.truncated == truncated
    assert result.decode_errors == errors


@pytest.fixture(params=[4099, rawio.READ_SIZE], ids=["small-reads", "default-reads"])
def read_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run a test with the default 16 MiB reads and with 4099-byte reads (lines spanning reads)."""
    size: int = request.param
    monkeypatch.setattr(rawio, "READ_SIZE", size)
    return size


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def mixed_lines(count: int) -> bytes:
    """Lines of varied length and content, one of them empty every 17 lines."""
    return b"".join(
        b"\n" if i % 17 == 0 else b"2024-03-01T10:00:%02d line %d %s\n" % (i % 60, i, b"x" * (i % 41))
        for i in range(count)
    )


# -- numbering and line ends ---------------------------------------------------------------------


@pytest.mark.parametrize("chunk_lines", [3, 1000, 250_000])
def test_numbering_is_exact_across_blocks_and_reads(tmp_path: Path, read_size: int, chunk_lines: int) -> None:
    data = mixed_lines(1000)
    path = write(tmp_path, "app.log", data)
    result = read_all(path, config(chunk_lines=chunk_lines))
    assert len(result.lines) == data.count(b"\n") == 1000  # `wc -l`
    assert_matches_reference(result, data, TimelineConfig().max_line_bytes)
    assert result.reader.bytes_in == result.reader.bytes_out == len(data)
    assert result.reader.compression is None
    assert result.reader.encoding == "utf-8"
    assert result.reader.stop_reason is None


def test_crlf_lone_cr_and_missing_final_newline(tmp_path: Path, read_size: int) -> None:
    path = write(tmp_path, "crlf.log", b"a\r\nb\rc\nd\r\r\n\r\nlast\r")
    result = read_all(path, config())
    # One CR before LF (or ending the file) is removed; a lone CR is data, never a line break.
    assert result.lines == ["a", "b\rc", "d\r", "", "last"]
    assert result.rejects == [None] * 5


def test_final_line_without_newline_is_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "tail.log", b"first\nsecond")
    assert read_all(path, config()).lines == ["first", "second"]


def test_empty_file_yields_no_block(tmp_path: Path) -> None:
    result = read_all(write(tmp_path, "empty.log", b""), config())
    assert result.block_sizes == []
    assert result.reader.stop_reason is None
    assert result.reader.bytes_in == 0


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\0", b"\0\0\0", b"\xff", b"\xc3", b"\xa9"])
        | st.sampled_from(["é", "€", "😀", "\ufffd"]).map(str.encode)
        | st.binary(max_size=5),
        max_size=60,
    ),
    chunk_lines=st.integers(1, 5),
    read_size=st.sampled_from([1, 2, 3, 7, 64, rawio.READ_SIZE]),
)
def test_any_bytes_follow_the_documented_rules(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], chunk_lines: int, read_size: int
) -> None:
    data = b"".join(parts)
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or data[:4] == b"\x28\xb5\x2f\xfd" or data[:3] == b"BZh":
        data = b"_" + data  # these magic prefixes select UTF-16 (or UTF-32 LE) or a decompressor
    if data[:4] == codecs.BOM_UTF32_BE:
        data = b"_" + data
    if data[:2] == b"\x1f\x8b" or data[:6] == b"\xfd7zXZ\x00":
        data = b"_" + data
    path = write(tmp_path_factory.mktemp("any"), "any.log", data)
    default_read_size = rawio.READ_SIZE
    rawio.READ_SIZE = read_size  # hypothesis runs many examples per test: no function-scoped monkeypatch
    try:
        result = read_all(path, config(chunk_lines=chunk_lines, max_line_bytes=64))
    finally:
        rawio.READ_SIZE = default_read_size
    assert_matches_reference(result, data, 64)


# -- encodings -----------------------------------------------------------------------------------


def test_utf8_bom_is_stripped_only_at_the_start(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.log", codecs.BOM_UTF8 + "first\nsecond \ufeff kept\n".encode())
    result = read_all(path, config())
    assert result.lines == ["first", "second \ufeff kept"]
    assert result.reader.encoding == "utf-8"


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "utf-16-le"),
        (lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"), "utf-16-be"),
        (lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"), "utf-32-le"),
        (lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"), "utf-32-be"),
    ],
)
def test_utf16_and_utf32_are_detected_from_the_bom_and_decoded(
    tmp_path: Path, read_size: int, encoded: Callable[[str], bytes], encoding: str
) -> None:
    text = "".join(f"2024-03-01 10:00:{i:02d} héllo wörld 😀 {i}\r\n" for i in range(40)) + "last 😀"
    path = write(tmp_path, "windows.log", encoded(text))
    result = read_all(path, config(chunk_lines=9))
    assert result.reader.encoding == encoding
    assert result.lines == text.replace("\r\n", "\n").split("\n")
    assert result.decode_errors == 0


def test_utf16_surrogate_pairs_split_across_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rawio, "READ_SIZE", 3)  # odd: every read splits a code unit or a surrogate pair
    text = "😀a😀\n€😀\r\n😀"
    path = write(tmp_path, "pairs.log", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    result = read_all(path, config())
    assert result.lines == ["😀a😀", "€😀", "😀"]
    assert result.decode_errors == 0


@pytest.mark.parametrize("encoding", ["utf-32-le", "utf-32-be"])
def test_utf32_code_units_split_across_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    monkeypatch.setattr(rawio, "READ_SIZE", 3)  # every read splits a 4-byte code unit
    text = "😀a😀\n€😀\r\n😀"
    bom = codecs.BOM_UTF32_LE if encoding.endswith("le") else codecs.BOM_UTF32_BE
    result = read_all(write(tmp_path, "wide.log", bom + text.encode(encoding)), config())
    assert result.reader.encoding == encoding
    assert result.lines == ["😀a😀", "€😀", "😀"]
    assert result.decode_errors == 0


def test_utf32_with_an_invalid_code_point_counts_a_decode_error(tmp_path: Path) -> None:
    too_large = (0x110000).to_bytes(4, "little")  # past U+10FFFF: no character
    data = codecs.BOM_UTF32_LE + "ok\n".encode("utf-32-le") + too_large + "x\n".encode("utf-32-le")
    result = read_all(write(tmp_path, "bad32.log", data), config())
    assert result.lines == ["ok", FFFD + "x"]
    assert result.decode_errors == 1


@pytest.mark.parametrize("encoding", ["utf-32-le", "utf-32-be", "utf-16-le"])
def test_cli_names_and_decodes_a_utf32_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    # Issue 17 item 13: UTF-32 LE was read as UTF-16 LE (its mark begins with UTF-16 LE's), UTF-32 BE as UTF-8.
    bom = {"utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE, "utf-16-le": codecs.BOM_UTF16_LE}
    text = "".join(f"2024-03-01T10:00:{i:02d}Z ERROR api: payment failed for café {i}\n" for i in range(12))
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "wide.log", bom[encoding] + text.encode(encoding))
    result = CliRunner().invoke(cli, ["ingest", "wide.log", "-o", "events.csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"wide.log: decoded from {encoding}" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("wide.log "))
    assert row.split()[2:6] == ["12", "12", "0", "0"]  # lines, events, continuation, rejected
    events = pd.read_csv(tmp_path / "events.csv")
    assert events["message"].tolist() == [f"api: payment failed for café {i}" for i in range(12)]
    assert events["level"].eq("error").all()


def test_utf16_with_a_lone_surrogate_counts_a_decode_error(tmp_path: Path) -> None:
    data = codecs.BOM_UTF16_LE + "ok\n".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")
    result = read_all(write(tmp_path, "bad16.log", data), config())
    assert result.lines == ["ok", FFFD + "x"]
    assert result.decode_errors == 1


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path, read_size: int) -> None:
    bad = b"2024-03-01T00:00:00Z GET /\xff\xfe\xc3( user=bob"
    literal = "already replaced \ufffd here".encode()
    data = bad + b"\n" + literal + b"\nfine\n"
    result = read_all(write(tmp_path, "bad.log", data), config())
    expected_bad = bad.decode("utf-8", errors="replace")
    assert result.lines == [expected_bad, literal.decode(), "fine"]
    assert result.decode_errors == expected_bad.count(FFFD) == 3  # the literal U+FFFD is not an error
    assert result.lines[0].startswith("2024-03-01T00:00:00Z GET /")


def test_binary_garbage_never_fails(tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    result = read_all(write(tmp_path, "garbage.log", b"_" + data), config(max_line_bytes=4096))
    assert_matches_reference(result, b"_" + data, 4096)
    assert result.decode_errors > 0


# -- NUL bytes and long lines --------------------------------------------------------------------


def test_nul_runs_between_lines_are_rejected_and_neighbours_intact(tmp_path: Path, read_size: int) -> None:
    data = b"before\n" + b"\0" * 4096 + b"\nin\0side\n\n" + b"\0" * 100
    result = read_all(write(tmp_path, "nul.log", data), config())
    assert result.lines == ["before", "", "inside", "", ""]
    assert result.rejects == [None, "nul_bytes", None, None, "nul_bytes"]
    assert result.truncated == 0


@pytest.mark.parametrize("filler", ["x", "é", "😀"])
def test_ten_megabyte_line_is_cut_and_neighbours_intact(tmp_path: Path, read_size: int, filler: str) -> None:
    long_line = (filler * (10_000_000 // len(filler.encode()))).encode()
    data = b"first line\n" + long_line + b"\r\nthird line\n"
    cfg = config()
    result = read_all(write(tmp_path, "long.log", data), cfg)
    assert result.lines[0] == "first line"
    assert result.lines[2] == "third line"
    assert result.truncated == 1
    cut = result.lines[1].encode()
    # Cut on a character boundary, at most max_line_bytes and less than one character short of it.
    assert len(result.lines) == 3
    assert cfg.max_line_bytes - len(filler.encode()) < len(cut) <= cfg.max_line_bytes
    assert set(result.lines[1]) == {filler}
    assert result.decode_errors == 0


def test_long_final_line_without_newline_is_cut(tmp_path: Path, read_size: int) -> None:
    data = b"ok\n" + b"y" * 5000
    result = read_all(write(tmp_path, "tail.log", data), config(max_line_bytes=100))
    assert result.lines == ["ok", "y" * 100]
    assert result.truncated == 1


# -- compression ---------------------------------------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lambda data: lzma.compress(data, preset=1),
    "zstd": zstandard.ZstdCompressor().compress,
}
DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: zlib.decompressobj(wbits=31).decompress(data),
    "bz2": lambda data: bz2.BZ2Decompressor().decompress(data),
    "xz": lambda data: lzma.LZMADecompressor().decompress(data),
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_compressed_files_are_detected_by_magic_not_name(tmp_path: Path, read_size: int, compression: str) -> None:
    data = mixed_lines(3000)
    compressed = COMPRESSORS[compression](data)
    path = write(tmp_path, "app.log", compressed)  # a plain-looking name
    result = read_all(path, config(chunk_lines=500))
    assert result.reader.compression == compression
    assert result.reader.stop_reason is None
    assert result.reader.bytes_in == len(compressed)
    assert result.reader.bytes_out == len(data)
    assert_matches_reference(result, data, TimelineConfig().max_line_bytes)


def test_zstd_frames_with_checksums_are_complete(tmp_path: Path) -> None:
    compress = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False).compress
    path = write(tmp_path, "check.zst", compress(b"one\n") + compress(b"two\n" * 100_000))
    result = read_all(path, config(chunk_lines=200_000))
    assert result.reader.stop_reason is None
    assert result.lines == ["one"] + ["two"] * 100_000


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_concatenated_members_are_all_read(tmp_path: Path, read_size: int, compression: str) -> None:
    first, second = b"one\ntwo\n", b"three\nfour"
    compress = COMPRESSORS[compression]
    path = write(tmp_path, "multi.gz", compress(first) + compress(second))
    result = read_all(path, config())
    assert result.lines == ["one", "two", "three", "four"]
    assert result.reader.stop_reason is None


def test_zero_length_gzip_yields_no_block(tmp_path: Path) -> None:
    result = read_all(write(tmp_path, "empty.gz", gzip.compress(b"")), config())
    assert result.block_sizes == []
    assert result.reader.compression == "gzip"
    assert result.reader.stop_reason is None


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_truncated_archive_keeps_complete_lines(tmp_path: Path, compression: str) -> None:
    data = b"".join(b"%06d %s\n" % (i, bytes(range(48, 48 + i % 60))) for i in range(10_000))
    truncated = COMPRESSORS[compression](data)[:-20]
    recoverable = DECOMPRESSORS[compression](truncated)  # all that a one-shot decompressor recovers
    assert data.startswith(recoverable)
    result = read_all(write(tmp_path, "cut.log", truncated), config(chunk_lines=4096))
    assert result.reader.stop_reason == "truncated_archive"
    complete, _, partial = recoverable.rpartition(b"\n")
    expected = complete.decode().split("\n") if complete else []
    if partial:
        expected.append(partial.decode())
    assert result.lines == expected
    assert result.rejects == [None] * (len(expected) - 1) + ["truncated_archive"] * bool(partial) + (
        [None] if expected and not partial else []
    )


def test_truncated_gzip_marks_the_partial_last_line(tmp_path: Path) -> None:
    data = b"".join(b"line number %d\n" % i for i in range(5000))
    truncated = gzip.compress(data)[:-20]
    recoverable = DECOMPRESSORS["gzip"](truncated)
    assert not recoverable.endswith(b"\n")  # the cut falls inside a line
    result = read_all(write(tmp_path, "cut.gz", truncated), config())
    assert result.lines[:-1] == recoverable.rpartition(b"\n")[0].decode().split("\n")
    assert result.lines[-1] == recoverable.rpartition(b"\n")[2].decode()
    assert result.rejects[-1] == "truncated_archive"
    assert result.rejects[:-1] == [None] * (len(result.lines) - 1)


def test_corrupt_data_after_a_gzip_member_stops_with_a_read_error(tmp_path: Path) -> None:
    path = write(tmp_path, "junk.gz", gzip.compress(b"a\nb\n") + b"not gzip at all")
    result = read_all(path, config())
    assert result.lines == ["a", "b"]
    reason = result.reader.stop_reason
    assert reason is not None
    assert reason.startswith("read_error: ")
    assert "\n" not in reason


def test_gzip_bomb_stops_at_the_decompressed_size_cap(tmp_path: Path) -> None:
    member = gzip.compress(b"\0" * (1 << 24))
    bomb = member * 64  # 1 GiB of NUL bytes in about 1 MB
    cap = 3 << 20
    result = read_all(write(tmp_path, "bomb.log", bomb), config(max_decompressed_bytes=cap))
    assert result.reader.stop_reason == "decompressed_size_cap"
    assert result.reader.bytes_out == cap
    assert result.lines == [""]
    assert result.rejects == ["decompressed_size_cap"]


def test_compression_ratio_guard_stops_a_bomb(tmp_path: Path) -> None:
    line = b"b" * 4000 + b"\n"
    bomb = gzip.compress(line * 5000) * 8  # 160 MB of text in about 160 kB
    result = read_all(write(tmp_path, "bomb.gz", bomb), config(max_compression_ratio=200))
    limit = max(200 * len(bomb), rawio.RATIO_CAP_FLOOR)
    assert limit < 8 * 5000 * len(line)
    assert result.reader.stop_reason == "decompressed_size_cap"
    assert result.reader.bytes_out == limit
    complete_lines, partial = divmod(limit, len(line))
    assert len(result.lines) == complete_lines + 1
    assert set(result.lines[:complete_lines]) == {"b" * 4000}
    assert result.lines[-1] == "b" * partial
    assert result.rejects == [None] * complete_lines + ["decompressed_size_cap"]


def test_small_compressed_files_are_never_capped_by_ratio(tmp_path: Path) -> None:
    data = b"same line again\n" * 100_000  # ratio far above 200, but well under the 64 MiB floor
    result = read_all(write(tmp_path, "small.gz", gzip.compress(data)), config(chunk_lines=100_000))
    assert len(data) / len(gzip.compress(data)) > 200
    assert result.reader.stop_reason is None
    assert len(result.lines) == 100_000


# -- files that cannot be read -------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="FIFO"):
        check_readable(fifo)
    with pytest.raises(SourceError, match="FIFO"):
        list(LineReader(fifo, config()).blocks())
    with pytest.raises(SourceError, match="FIFO"):
        head_lines(fifo, config())


@pytest.mark.timeout(20)
def test_character_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="character device"):
        list(LineReader("/dev/zero", config()).blocks())


def test_directory_missing_file_and_symlink_loop_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory"):
        check_readable(tmp_path)
    with pytest.raises(SourceError, match="no such file"):
        list(LineReader(tmp_path / "missing.log", config()).blocks())
    loop = tmp_path / "loop.log"
    os.symlink(loop, loop)
    with pytest.raises(SourceError, match="symbolic link loop"):
        check_readable(loop)
    with pytest.raises(SourceError, match="symbolic link loop"):
        iter_line_ranges(loop, config(), 1024)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.log", b"x\n")
    path.chmod(0)
    with pytest.raises(SourceError, match="permission denied"):
        check_readable(path)
    with pytest.raises(SourceError, match="permission denied"):
        list(LineReader(path, config()).blocks())


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_read_error_stops_reading_without_a_traceback() -> None:
    # /proc/self/mem is a regular file whose first page is unmapped memory: reading it fails with EIO.
    result = read_all(Path("/proc/self/mem"), config())
    assert result.lines == []
    reason = result.reader.stop_reason
    assert reason is not None
    assert reason.startswith("read_error: ")
    assert "\n" not in reason


def test_error_messages_escape_control_characters_in_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        check_readable(tmp_path / "evil\x1b[2J.log")
    assert "\x1b" not in str(caught.value)
    assert "\n" not in str(caught.value)


# -- helpers for detection and year inference ----------------------------------------------------


def test_head_lines_skips_nul_lines_and_reads_compressed_files(tmp_path: Path) -> None:
    data = b"\0\0\0\nfirst\r\n" + mixed_lines(500)
    expected = ["first", *reference_lines(mixed_lines(500), 1 << 20)[0]][:10]
    assert head_lines(write(tmp_path, "a.log", data), config(), n=10) == expected
    assert head_lines(write(tmp_path, "a.log.gz", gzip.compress(data)), config(), n=10) == expected


def test_head_lines_reads_at_most_max_bytes(tmp_path: Path) -> None:
    data = b"".join(b"line %05d\n" % i for i in range(100_000))  # 11 bytes a line
    for path in (write(tmp_path, "big.log", data), write(tmp_path, "big.gz", gzip.compress(data))):
        lines = head_lines(path, config(), n=1000, max_bytes=100)
        assert lines == [f"line {i:05d}" for i in range(9)]  # the 10th line is cut at byte 100: dropped


def test_read_head_skips_blank_lines_when_asked_and_says_why_it_found_none(tmp_path: Path) -> None:
    text = b"\n  \n" * 100 + b"first\nsecond\n"
    path = write(tmp_path, "late.log", text)
    assert read_head(path, config(), n=10).lines == ["", "  "] * 5  # head_lines' view: blank lines count
    found = read_head(path, config(), n=10, skip_blank=True)
    assert (found.lines, found.stop_reason) == (["first", "second"], None)
    empty = read_head(write(tmp_path, "blank.log", b"\n \n\0\0\n"), config(), skip_blank=True)
    assert (empty.lines, empty.why_no_line()) == ([], "the file is empty or blank")
    long_line = read_head(write(tmp_path, "long.log", b"x" * 3000 + b"\nnext\n"), config(), max_bytes=1024)
    assert long_line.lines == []
    assert long_line.why_no_line() == (
        "no line of text in the first 1 KiB of the file (only blank lines, NUL bytes or the start of a longer line)"
    )
    truncated = read_head(write(tmp_path, "cut.gz", gzip.compress(b"x" * 5000 + b"\n")[:-30]), config())
    assert truncated.why_no_line() == "the compressed file is truncated before its first line"


def test_a_bomb_that_hits_the_size_cap_before_any_line_is_not_called_empty(tmp_path: Path) -> None:
    # A cap below the detection read (1 MiB): the head itself stops at the cap.
    bomb = write(tmp_path, "bomb.log.gz", gzip.compress(b"\n" * (4 << 20)))
    capped = config(max_decompressed_bytes=256 << 10)
    head = read_head(bomb, capped, skip_blank=True)
    assert head.stop_reason == "decompressed_size_cap"
    assert head.why_no_line() == "stopped at the decompressed-size cap (compression bomb guard) before any line"
    connector = LogFileConnector(str(bomb), capped)
    assert connector.choose_format() == (None, head.why_no_line())
    for _ in connector.read():
        pass
    (acc,) = connector.accounting()
    assert acc.partial_reason == "stopped at the decompressed-size cap (compression bomb guard)"
    assert acc.format_reason == head.why_no_line()
    assert acc.lines_read == 256 << 10


@pytest.mark.parametrize("filler", [b"\0", b"\n"])
def test_cli_reports_a_compression_bomb_as_such_never_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filler: bytes
) -> None:
    # Issue 17 item 13: 70 MiB of NUL bytes (or of newlines) in a 70 KiB gzip stops at the 64 MiB floor of
    # the ratio guard; the summary said "the file is empty or blank". Newlines: 2 MiB, a cap of the
    # detection read (1 MiB) without any text (reading 64 million blank lines would take a minute).
    monkeypatch.chdir(tmp_path)
    size = 70 << 20 if filler == b"\0" else 2 << 20
    write(tmp_path, "bomb.log.gz", gzip.compress(filler * size, compresslevel=9))
    result = CliRunner().invoke(cli, ["ingest", "bomb.log.gz", "-o", "events.csv"], catch_exceptions=False)
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert "empty" not in out
    assert (
        "bomb.log.gz: no line of text in the first 1 MiB of decompressed text "
        "(only blank lines, NUL bytes or the start of a longer line)"
    ) in result.stdout
    if filler == b"\0":
        assert "partial bomb.log.gz: stopped at the decompressed-size cap (compression bomb guard)" in result.stdout
        assert result.stderr.splitlines() == [
            "Error: no events could be read from any input "
            "(bomb.log.gz: stopped at the decompressed-size cap (compression bomb guard))"
        ]


def test_file_mtime_is_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "a.log", b"x\n")
    os.utime(path, ns=(1_709_251_200_500_000_000, 1_709_251_200_500_000_000))
    assert file_mtime(path) == pd.Timestamp("2024-03-01T00:00:00.5Z")
    with pytest.raises(SourceError, match="no such file"):
        file_mtime(tmp_path / "missing.log")


# -- byte ranges for parallel parsing ------------------------------------------------------------


@pytest.mark.parametrize("target_bytes", [64, 1000, 1 << 30])
def test_byte_ranges_reassemble_the_full_read(tmp_path: Path, read_size: int, target_bytes: int) -> None:
    data = codecs.BOM_UTF8 + mixed_lines(300) + b"crlf\r\n\0\0\n" + b"z" * 700 + b"\nno newline"
    path = write(tmp_path, "ranges.log", data)
    cfg = config(chunk_lines=13, max_line_bytes=500)
    full = read_all(path, cfg)
    ranges = iter_line_ranges(path, cfg, target_bytes)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(end - start >= min(target_bytes, len(data) - start) for start, end, _ in ranges)
    assert all(data[end - 1 : end] == b"\n" for _, end, _ in ranges[:-1])
    lines: list[str] = []
    rejects: list[str | None] = []
    truncated = 0
    for byte_range in ranges:
        assert byte_range[2] == len(lines) + 1
        part = read_all(path, cfg, byte_range=byte_range)
        lines += part.lines
        rejects += part.rejects
        truncated += part.truncated
    assert lines == full.lines
    assert rejects == full.rejects
    assert truncated == full.truncated == 1


def test_byte_ranges_of_compressed_and_empty_files(tmp_path: Path) -> None:
    compressed = gzip.compress(mixed_lines(100))
    path = write(tmp_path, "a.log", compressed)
    assert iter_line_ranges(path, config(), 10) == [(0, len(compressed), 1)]
    assert read_all(path, config(), byte_range=(0, len(compressed), 1)).lines == read_all(path, config()).lines
    with pytest.raises(ValueError, match="uncompressed"):
        list(LineReader(path, config(), byte_range=(10, len(compressed), 1)).blocks())
    assert iter_line_ranges(write(tmp_path, "empty.log", b""), config(), 10) == []
