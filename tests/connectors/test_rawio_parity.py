"""Differential test: the compiled line reader (``LineReader`` over ``_core.LineBlocks``) against the
pre-Rust Python reader kept in ``tests/reference_rawio.py``.

Both read the same inputs with the same settings; the blocks must agree (first line, lines, rejects,
truncated lines, decode errors) and so must compression, encoding, stop reason and decompressed bytes.

Documented differences, each tested here:

* a ``read_error`` reason's words come from the decompression library (zlib's or flate2's wording), so
  only the ``read_error`` prefix is compared;
* block boundaries inside decompressed text of half a read step or more depend on how much each
  decompressor hands out per call: there the lines, rejects and counts are compared as one sequence;
* a truncated zstd archive *member* was not noticed by the Python reader (python-zstandard returns a
  silent end of stream, and a member has no file descriptor for its frame walk): the compiled reader
  reports ``truncated_archive`` and rejects the partial last line, as for every other format.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import io
import lzma
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors import rawio
from pmtimeline.connectors.archives import archive_kind, open_archive
from pmtimeline.connectors.rawio import LineReader, iter_line_ranges
from tests import reference_rawio

REPO = Path(__file__).resolve().parents[2]
SAMPLE_LOGS = REPO / "sample_logs"
SHARED_DATA = REPO.parent / "shared" / "data"
CORPUS = Path("/tmp/corpus")

Block = tuple[int, list[str], list[str | None], int, int]


def config(**changes: object) -> TimelineConfig:
    return dataclasses.replace(TimelineConfig(), **changes)  # type: ignore[arg-type]


@dataclasses.dataclass
class Reading:
    blocks: list[Block]
    compression: str | None
    encoding: str
    stop_reason: str | None
    bytes_out: int

    def flat(self) -> tuple[list[int], list[str], list[str | None], int, int]:
        firsts = [block[0] for block in self.blocks]
        lines = [line for block in self.blocks for line in block[1]]
        rejects = [reject for block in self.blocks for reject in block[2]]
        return firsts[:1], lines, rejects, sum(b[3] for b in self.blocks), sum(b[4] for b in self.blocks)


def _reason(stop: str | None) -> str | None:
    return "read_error" if stop is not None and stop.startswith("read_error") else stop


def read(
    reader_class: type[LineReader] | type[reference_rawio.LineReader],
    path: str | Path,
    cfg: TimelineConfig,
    byte_range: tuple[int, int, int] | None = None,
    read_limit: int | None = None,
) -> Reading:
    reader = reader_class(path, cfg, byte_range=byte_range)
    reader._read_limit = read_limit
    blocks = []
    expected_first = byte_range[2] if byte_range else 1
    for block in reader.blocks():
        assert block.first_line == expected_first
        expected_first += len(block.lines)
        rejects = [None if pd.isna(reject) else str(reject) for reject in block.io_reject.tolist()]
        blocks.append((block.first_line, block.lines.tolist(), rejects, block.truncated_lines, block.decode_errors))
    return Reading(blocks, reader.compression, reader.encoding, _reason(reader.stop_reason), reader.bytes_out)


def set_read_size(size: int) -> None:
    rawio.READ_SIZE = size  # type: ignore[misc]
    reference_rawio.READ_SIZE = size  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _default_read_size() -> Iterator[None]:
    yield
    set_read_size(16 << 20)


def assert_same(
    path: str | Path,
    cfg: TimelineConfig,
    byte_range: tuple[int, int, int] | None = None,
    read_limit: int | None = None,
) -> Reading:
    new = read(LineReader, path, cfg, byte_range, read_limit)
    old = read(reference_rawio.LineReader, path, cfg, byte_range, read_limit)
    assert (new.compression, new.encoding, new.stop_reason, new.bytes_out) == (
        old.compression,
        old.encoding,
        old.stop_reason,
        old.bytes_out,
    ), path
    if new.compression is not None and new.bytes_out >= rawio.READ_SIZE // 2:
        assert new.flat() == old.flat(), path  # decompressor piece sizes place the block boundaries
    else:
        assert new.blocks == old.blocks, path
    return new


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# -- real inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_lines", [250_000, 7])
def test_sample_logs(chunk_lines: int) -> None:
    paths = files_under(SAMPLE_LOGS)
    assert paths
    for path in paths:
        assert_same(path, config(chunk_lines=chunk_lines))


def test_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    lines = 0
    for path in files_under(SHARED_DATA):
        lines += sum(len(block[1]) for block in assert_same(path, config(chunk_lines=10_000)).blocks)
        assert_same(path, config(chunk_lines=3, max_line_bytes=80), read_limit=4096)
    assert lines > 10_000


def test_corpus_slices() -> None:
    """The first 4 MiB range of every bench corpus file, and its head up to a read limit."""
    if not CORPUS.is_dir():
        pytest.skip(f"bench corpus not found at {CORPUS} (bench/generate_corpus.py makes it)")
    for path in files_under(CORPUS):
        ranges = iter_line_ranges(path, config(), 4 << 20)
        assert_same(path, config(), byte_range=ranges[0])
        if len(ranges) > 1:
            assert_same(path, config(chunk_lines=5000), byte_range=ranges[1])
        assert_same(path, config(), read_limit=1 << 20)


# -- compressed, wide and damaged files ----------------------------------------------------------


def text_lines(count: int) -> bytes:
    return b"".join(
        b"2024-03-01T10:00:%02d host app[%d]: line %d \xc3\xa9 %s\n" % (i % 60, i, i, b"x" * (i % 97))
        for i in range(count)
    )


def compress(kind: str, data: bytes) -> bytes:
    half = len(data) // 2
    if kind == "gzip":  # two members, zero padding between them
        return gzip.compress(data[:half]) + b"\0\0" + gzip.compress(data[half:])
    if kind == "bz2":
        return bz2.compress(data[:half]) + bz2.compress(data[half:])
    if kind == "xz":
        return lzma.compress(data[:half]) + lzma.compress(data[half:])
    compressor = zstandard.ZstdCompressor()
    return compressor.compress(data[:half]) + compressor.compress(data[half:])  # two frames


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zstd"])
def test_compressed_whole_and_truncated(tmp_path: Path, kind: str) -> None:
    data = text_lines(3000) + b"last line without newline"
    packed = compress(kind, data)
    path = tmp_path / f"app.{kind}"
    path.write_bytes(packed)
    whole = assert_same(path, config(chunk_lines=1000))
    assert (whole.stop_reason, whole.bytes_out) == (None, len(data))
    for cut in (len(packed) - 1, len(packed) - 9, len(packed) * 2 // 3, len(packed) // 3, 20):
        path.write_bytes(packed[:cut])
        assert assert_same(path, config(chunk_lines=1000)).stop_reason in ("truncated_archive", "read_error")
    path.write_bytes(packed)
    assert assert_same(path, config(), read_limit=50_000).stop_reason == "read_limit"


def test_compressed_text_past_half_a_read_step(tmp_path: Path) -> None:
    set_read_size(64 << 10)
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(text_lines(20_000)))
    assert assert_same(path, config(chunk_lines=777)).bytes_out > 1 << 20


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(b"a" * 100 + b"\n" + b"b" * (70 << 20)))
    reading = assert_same(path, config(max_line_bytes=1 << 10))
    assert reading.stop_reason == "decompressed_size_cap"


@pytest.mark.parametrize("bom", ["utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("read_size", [3, 4099, 16 << 20])
def test_wide_encodings(tmp_path: Path, bom: str, read_size: int) -> None:
    set_read_size(read_size)
    marks = {
        "utf-8-sig": codecs.BOM_UTF8,
        "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE,
        "utf-32-le": codecs.BOM_UTF32_LE,
        "utf-32-be": codecs.BOM_UTF32_BE,
    }
    text = "".join(f"2024-03-01 10:00:{i:02d} héllo 😀 \ufffd {i}\r\n" for i in range(300)) + "last 😀"
    encoding = bom.replace("-sig", "")
    data = marks[bom] + text.encode(encoding)
    path = tmp_path / "wide.log"
    path.write_bytes(data)
    assert_same(path, config(chunk_lines=41))
    path.write_bytes(data[:-1] + b"\x00\xd8"[: 1 if encoding == "utf-8" else 2])  # damaged end
    assert_same(path, config(chunk_lines=41, max_line_bytes=64))


# -- archive members -----------------------------------------------------------------------------


def make_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def members_of(path: Path) -> list[str]:
    kind = archive_kind(str(path))
    assert kind is not None
    return list(open_archive(str(path), kind, config()).members)


def test_archive_members(tmp_path: Path) -> None:
    text = text_lines(2000) + b"\0\0\0\nbad \xff utf-8\r\nno newline"
    packed = compress("gzip", text)
    tar = tmp_path / "bundle.tgz"
    make_tar(tar, {"var/log/app.log": text, "var/log/app.log.1.gz": packed, "cut.gz": packed[: len(packed) // 2]})
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
        zip_file.writestr("app.log", text)
        zip_file.writestr("wide.log", codecs.BOM_UTF16_LE + text.decode("utf-8", "replace").encode("utf-16-le"))
        zip_file.writestr("app.log.bz2", compress("bz2", text))
    for member in members_of(tar) + members_of(archive):
        assert_same(member, config(chunk_lines=333))
        assert_same(member, config(chunk_lines=333), read_limit=10_000)


def test_truncated_zstd_member_is_reported(tmp_path: Path) -> None:
    """Where the compiled reader is right: the Python reader took a cut zstd member for a whole one."""
    packed = zstandard.ZstdCompressor().compress(text_lines(6000))  # one frame of several 128 KiB blocks
    tar = tmp_path / "bundle.tgz"
    make_tar(tar, {"cut.zst": packed[: len(packed) * 3 // 4]})
    (member,) = members_of(tar)
    new = read(LineReader, member, config())
    old = read(reference_rawio.LineReader, member, config())
    assert (new.stop_reason, old.stop_reason) == ("truncated_archive", None)
    assert new.flat()[1] == old.flat()[1] != []  # the same lines ...
    assert (new.flat()[2][-1], old.flat()[2][-1]) == ("truncated_archive", None)  # ... the partial last one rejected
    assert new.flat()[2][:-1] == old.flat()[2][:-1]


# -- generated inputs ----------------------------------------------------------------------------

PIECES = (
    st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\0", b"\0\0\0", b"\xff", b"\xc3", b"\xa9", b"\xed\xa0"])
    | st.sampled_from(["é", "€", "😀", "\ufffd"]).map(str.encode)
    | st.sampled_from([b"x" * 63, b"y" * 64, b"z" * 65, "é".encode() * 33])
    | st.binary(max_size=8)
)


@settings(max_examples=300, deadline=None)
@given(
    head=st.sampled_from(
        [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE]
    ),
    parts=st.lists(PIECES, max_size=60),
    chunk_lines=st.integers(1, 5),
    read_size=st.sampled_from([1, 2, 3, 5, 7, 64, 16 << 20]),
    read_limit=st.none() | st.integers(1, 300),
)
def test_generated_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    head: bytes,
    parts: list[bytes],
    chunk_lines: int,
    read_size: int,
    read_limit: int | None,
) -> None:
    path = tmp_path_factory.mktemp("any") / "any.log"
    path.write_bytes(head + b"".join(parts))
    set_read_size(read_size)
    assert_same(path, config(chunk_lines=chunk_lines, max_line_bytes=64), read_limit=read_limit)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["gzip", "bz2", "xz", "zstd"]),
    parts=st.lists(PIECES, min_size=1, max_size=40),
    cut=st.floats(0, 1),
    chunk_lines=st.integers(1, 4),
)
def test_generated_compressed(
    tmp_path_factory: pytest.TempPathFactory, kind: str, parts: list[bytes], cut: float, chunk_lines: int
) -> None:
    packed = compress(kind, b"".join(parts))
    path = tmp_path_factory.mktemp("packed") / "any.bin"
    path.write_bytes(packed[: max(7, int(len(packed) * cut))])
    assert_same(path, config(chunk_lines=chunk_lines, max_line_bytes=64))


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(PIECES, max_size=60), pieces=st.integers(1, 6), read_size=st.sampled_from([1, 3, 64, 16 << 20]))
def test_generated_byte_ranges(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], pieces: int, read_size: int
) -> None:
    data = b"_" + b"".join(parts)
    path = tmp_path_factory.mktemp("ranges") / "ranged.log"
    path.write_bytes(data)
    set_read_size(read_size)
    for byte_range in iter_line_ranges(path, config(), max(1, len(data) // pieces)):
        assert_same(path, config(chunk_lines=3, max_line_bytes=64), byte_range=byte_range)
