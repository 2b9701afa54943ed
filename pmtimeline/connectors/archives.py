"""Archives as sources: every regular file in a tar or zip archive is a source of its own.

:func:`archive_kind` tells an archive from its bytes, never its name: a tar (``ustar`` at offset
257 of the first 512-byte header, or a valid old-style header checksum), plain or compressed as a
whole (``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``, ``.tar.zst``: the compression is detected by
:mod:`~pmtimeline.connectors.rawio`), or a zip (``PK\\x03\\x04``, or ``PK\\x05\\x06`` when empty).

:func:`open_archive` lists an archive's members. A regular member becomes an :class:`ArchiveMember`:
a :class:`~pmtimeline.connectors.rawio.StreamedPath` named ``bundle.tgz!var/log/app.log``, so that
its events cite ``bundle.tgz!var/log/app.log:123``, it has an accounting of its own, and
``--source-tz``/``--service`` globs match it (as ``bundle.tgz!var/log/*.log``, its own path inside the
archive, or its file name). The log-file connector reads it like a file: format detection, a
compressed member (``app.log.1.gz`` inside a tar) decompressed, the same caps.

The rules:

* **Nothing is written to disk.** Members are read as streams, in memory; a member's name (absolute,
  with ``..``, with control characters) is only a name. Members that are not regular files
  (directories apart) are listed as skipped with the reason and never read: symbolic and hard links
  (never followed), devices and FIFOs; so are encrypted zip members, and a second member of the same
  name (the first is read).
* **Caps.** Each member has the caps of a file, from its stored size: a member inflated past
  ``config.max_compression_ratio`` times its stored size (never below 64 MiB) or past
  ``config.max_decompressed_bytes`` is cut there, rejected ``decompressed_size_cap`` and partial.
  The whole archive has the same caps, from the archive's size: a tar is not inflated past them,
  and a zip's members are read only while their sizes (which zip readers never exceed) stay within
  them. What lies past the cap is reported as one skipped, partial entry named after the archive.
* **Nesting.** One level of compression inside an archive is read (a ``.gz`` member of a tar). An
  archive inside an archive is listed as skipped: extract it and name it.
* **Cost.** A compressed tar has no random access: its members are streamed in order, each archive
  by one reader that moves forward (and replays the start of the member it is in, for a head read
  just before the member is read whole). A run reads a compressed tar about three times (listing,
  format detection, events); a zip or a plain tar is read where needed.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Final, Protocol

import pandas as pd
import zstandard

from pmtimeline.config import TimelineConfig
from pmtimeline.connectors.rawio import (
    RATIO_CAP_FLOOR,
    REJECT_SIZE_CAP,
    REJECT_TRUNCATED_ARCHIVE,
    StreamedPath,
    _compression_of,
    _one_line_reason,
    _open_regular,
    check_readable,
)
from pmtimeline.errors import SourceError
from pmtimeline.escaping import escape_terminal

__all__ = ["ArchiveListing", "ArchiveMember", "archive_kind", "open_archive"]

#: Compressed bytes of a gzip container given to zlib per step.
GZIP_INPUT_SIZE: Final = 2 << 20
#: Decompressed bytes asked of a container's decompressor per step.
READ_SIZE: Final = 16 << 20

#: Separates an archive's path from a member's path in a member's name (its provenance).
MEMBER_SEPARATOR: Final = "!"
#: Bytes of a member kept while it is read, so that reading it again from its start (a head read,
#: then the whole member) needs no second pass over a compressed tar.
REPLAY_BYTES: Final = 8 << 20
_TAR_BLOCK: Final = 512
#: Compressed bytes read to see whether a compressed file holds a tar.
HEAD_COMPRESSED_BYTES: Final = 64 << 10
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
# Errors a decompressor or an archive reader raises on corrupt input (EOFError, truncation, apart).
_CORRUPT: Final = (
    OSError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    ValueError,
    tarfile.TarError,
    zipfile.BadZipFile,
    NotImplementedError,
)


def _is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a tar header: POSIX/GNU magic, or an old-style header whose checksum holds."""
    if len(block) < _TAR_BLOCK or not block[:100].strip(b"\0"):
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        stored = int(block[148:156].strip(b" \0") or b"x", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:_TAR_BLOCK])


def _read_full(stream: IO[bytes] | _MemberReader, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end (a member stream may return less per read)."""
    parts: list[bytes] = []
    while size > 0 and (data := stream.read(size)):
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _first_bytes(stream: IO[bytes] | _MemberReader, size: int) -> tuple[str | None, bytes]:
    """The compression of ``stream`` (None: none) and up to ``size`` bytes of its start, decompressed."""
    first = _read_full(stream, size)
    compression = _compression_of(first[:6])
    if compression is None:
        return None, first
    # A small start of the compressed bytes is enough (and a decompressor reads megabytes ahead).
    start = io.BytesIO(first + _read_full(stream, HEAD_COMPRESSED_BYTES))
    inflated = _open_decompressor(compression, start)
    out = b""
    try:
        while len(out) < size and (data := inflated.read1(size - len(out))):
            out += data
    except (EOFError, *_CORRUPT):
        pass
    finally:
        inflated.close()
    return compression, out


def archive_kind(path: str) -> str | None:
    """``"tar"`` or ``"zip"`` when the file (or archive member) at ``path`` is an archive, from its
    bytes; None otherwise, and for anything that cannot be read (its reader says why)."""
    try:
        if isinstance(path, StreamedPath):
            stream = path.open_stream()
            try:
                compression, head = _first_bytes(stream, _TAR_BLOCK)  # type: ignore[arg-type]
            finally:
                stream.close()
            if isinstance(path, ArchiveMember):
                path.compressed = compression is not None
        else:
            with _open_regular(path) as file:  # refuses what is not a regular file, without hanging
                compression, head = _first_bytes(file, _TAR_BLOCK)
    except (SourceError, EOFError, *_CORRUPT):
        return None
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    return "tar" if _is_tar_header(head[:_TAR_BLOCK]) else None


# -- members ----------------------------------------------------------------------------------------


class ArchiveMember(StreamedPath):
    """A regular file inside an archive, named ``<archive path>!<member path>``.

    Attributes:
        archive: the :class:`ArchiveListing` it belongs to.
        member: its path inside the archive, as stored.
        position: its position among the archive's entries.
        size: its size once extracted, as the archive declares it.
        stored_size: the bytes it takes in the archive (compressed size for a zip member).
        mtime: its modification time as the archive records it (a zip's local time read as UTC).
        limit: bytes it may give before the archive's cap (None: no archive cap within it).
        compressed: whether its own bytes are compressed (known once its head was read).
    """

    archive: ArchiveListing
    member: str
    position: int
    size: int
    stored_size: int
    mtime: pd.Timestamp
    limit: int | None
    compressed: bool

    __slots__ = ("archive", "compressed", "limit", "member", "mtime", "position", "size", "stored_size")

    def __new__(
        cls,
        archive: ArchiveListing,
        member: str,
        position: int,
        size: int,
        stored_size: int,
        mtime: pd.Timestamp,
        limit: int | None = None,
    ) -> ArchiveMember:
        self = super().__new__(cls, f"{archive.path}{MEMBER_SEPARATOR}{member}")
        self.archive, self.member, self.position = archive, member, position
        self.size, self.stored_size, self.mtime, self.limit = size, stored_size, mtime, limit
        self.compressed = False
        return self

    def __reduce__(self) -> tuple[object, ...]:
        args = (self.archive, self.member, self.position, self.size, self.stored_size, self.mtime, self.limit)
        return (ArchiveMember, args)

    def check(self) -> None:
        check_readable(self.archive.path)

    def open_stream(self) -> _MemberReader:
        return self.archive.open_member(self)

    def modification_time(self) -> pd.Timestamp:
        return self.mtime

    def line_bound(self, config: TimelineConfig) -> int:
        """An upper bound on the member's lines (its decompressed bytes, plus one)."""
        cap = min(config.max_decompressed_bytes, max(config.max_compression_ratio * self.stored_size, RATIO_CAP_FLOOR))
        most = cap if self.compressed else min(cap, self.size)
        return (most if self.limit is None else min(most, self.limit)) + 1


def _stop_of(exc: BaseException) -> str:
    """Why reading stopped, as a reject reason: a cut archive is ``truncated_archive``."""
    if isinstance(exc, EOFError) or (isinstance(exc, tarfile.ReadError) and "unexpected end" in str(exc)):
        return REJECT_TRUNCATED_ARCHIVE
    return f"read_error: {_one_line_reason(exc)}"


class _Readable(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


class _Counting:
    """The decompressed bytes of a whole archive, counted; past ``cap`` (and on a corrupt or truncated
    stream) it ends, and says why in ``stopped``, so that the tar reader sees only an early end."""

    def __init__(self, source: _Readable, cap: int) -> None:
        self._source = source
        self.cap = cap
        self.count = 0
        self.stopped: str | None = None

    def read(self, size: int = -1) -> bytes:
        if self.stopped:
            return b""
        want = self.cap + 1 - self.count if size < 0 else min(size, self.cap + 1 - self.count)
        try:
            data = self._source.read1(want) if want > 0 else b""
        except (EOFError, *_CORRUPT) as exc:
            self.stopped = _stop_of(exc)
            return b""
        if self.count + len(data) > self.cap:
            data = data[: self.cap - self.count]
            self.stopped = REJECT_SIZE_CAP
        self.count += len(data)
        return data


class _TarCursor:
    """One forward pass over a tar archive: the entry it is at and the bytes of it read so far."""

    def __init__(self, archive: ArchiveListing) -> None:
        self.file = _open_regular(archive.path)
        compression = _compression_of(os.pread(self.file.fileno(), 6, 0))
        self.inflated = _open_decompressor(compression, self.file) if compression else None
        self.counting = _Counting(self.inflated or io.BufferedReader(self.file), archive.cap)  # type: ignore[type-var]
        try:
            # Stream mode: a compressed tar has no random access; members are read in order.
            self.tar = tarfile.open(fileobj=self.counting, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115
        except BaseException:
            if self.inflated is not None:
                self.inflated.close()
            self.file.close()
            raise
        self.index = -1  # the entry last read (-1: none yet)
        self.info: tarfile.TarInfo | None = None
        self.data: _TarData | None = None  # the current member's data
        self.replay: bytes | None = b""  # what was read of it (None: more than REPLAY_BYTES)

    def next(self) -> tarfile.TarInfo | None:
        self.data, self.replay = None, b""
        info: tarfile.TarInfo | None = self.tar.next()
        self.index += 1
        self.info = info
        return info

    def close(self) -> None:
        self.tar.close()
        if self.inflated is not None:
            self.inflated.close()
        self.file.close()


class _TarData:
    """The data of the tar member the stream is at: ``size`` bytes, or what is left before a cut (then
    the next read raises EOFError)."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size
        self._cut = False

    def read(self, size: int = -1, /) -> bytes:
        if self._cut:
            raise EOFError("the archive ends inside this member")
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._stream.read(want)
        self._left -= len(data)
        self._cut = len(data) < want
        if self._cut and not data:
            raise EOFError("the archive ends inside this member")
        return data

    def close(self) -> None:
        pass


class _ZipReader:
    """A zip archive open for reading (its file closed with it)."""

    def __init__(self, path: str) -> None:
        self.file = _open_regular(path)
        try:
            self.zip = zipfile.ZipFile(self.file)
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        self.zip.close()
        self.file.close()


class _MemberReader:
    """The bytes of one member (see :class:`~pmtimeline.connectors.rawio.MemberStream`)."""

    def __init__(
        self, member: ArchiveMember, head: bytes, data: IO[bytes] | _TarData, cursor: _TarCursor | None
    ) -> None:
        self.stored_size = member.stored_size
        self.stopped: str | None = None
        self._member = member
        self._head = head
        self._data = data
        self._cursor = cursor
        self._given = 0
        self._closed = False

    def read(self, size: int = -1, /) -> bytes:
        if self._closed or self.stopped:
            return b""
        limit = self._member.limit
        if limit is not None:
            size = limit - self._given if size < 0 else min(size, limit - self._given)
            if size <= 0:
                self.stopped = REJECT_SIZE_CAP
                return b""
        if self._head:
            cut = len(self._head) if size < 0 else min(size, len(self._head))
            data, self._head = self._head[:cut], self._head[cut:]
        else:
            try:
                data = self._data.read(size)
            except (EOFError, *_CORRUPT) as exc:
                data, self.stopped = b"", _stop_of(exc)
            if self.stopped and self._cursor is not None and self._cursor.counting.stopped:
                self.stopped = self._cursor.counting.stopped  # the archive's cap or damage is the cause
            cursor = self._cursor
            if cursor is not None and cursor.replay is not None and data:
                cursor.replay = cursor.replay + data if len(cursor.replay) + len(data) <= REPLAY_BYTES else None
        self._given += len(data)
        return data

    def tell(self) -> int:
        return self._given

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._member.archive.release(self._member, self._cursor, self._data, broken=self.stopped is not None)


# -- decompression of a compressed container (tar.gz, tar.zst, ...) -----------------------------------


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


# -- archives ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class ArchiveListing:
    """An archive's members, and what of it is not read.

    Attributes:
        path: the archive, as given.
        kind: "tar" or "zip".
        cap: decompressed bytes the whole archive may give (from its size and the run's caps).
        members: its regular files, in archive order.
        skipped: ``(name, reason)`` of the entries not read (links, devices, nested archives, ...).
        stop_reason: None, or why the archive was not read to its end ("decompressed_size_cap",
            "truncated_archive", "read_error: ...").
        stop_after: the member after which it stopped (None: before any).
    """

    path: str
    kind: str
    cap: int
    members: list[ArchiveMember] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stop_reason: str | None = None
    stop_after: str | None = None
    _idle: _TarCursor | _ZipReader | None = field(default=None, repr=False)
    _zip_readers: int = field(default=0, repr=False)  # member streams of a zip still open

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_idle": None, "_zip_readers": 0}  # an open reader stays in its process

    def __del__(self) -> None:
        self._drop()

    def _drop(self) -> None:
        idle, self._idle = getattr(self, "_idle", None), None
        if idle is not None:
            idle.close()

    def name_of(self, member: str) -> str:
        return f"{self.path}{MEMBER_SEPARATOR}{member}"

    # -- reading members ----------------------------------------------------------------------------

    def open_member(self, member: ArchiveMember) -> _MemberReader:
        """A stream of ``member``'s bytes from its start.

        Raises:
            SourceError: the archive cannot be opened, or no longer holds the member.
        """
        try:
            if self.kind == "zip":
                return self._open_zip_member(member)
            return self._open_tar_member(member)
        except SourceError:
            raise
        except (EOFError, *_CORRUPT) as exc:
            raise SourceError(f"{escape_terminal(member, limit=300)}: cannot read ({_one_line_reason(exc)})") from exc

    def _open_zip_member(self, member: ArchiveMember) -> _MemberReader:
        # Several members of a zip may be open at once: one reader serves them all.
        if not isinstance(self._idle, _ZipReader):
            self._drop()
            self._idle = _ZipReader(self.path)
        info = self._idle.zip.infolist()[member.position]
        reader = _MemberReader(member, b"", self._idle.zip.open(info), None)
        self._zip_readers += 1
        return reader

    def _open_tar_member(self, member: ArchiveMember) -> _MemberReader:
        idle, self._idle = self._idle, None
        cursor = idle if isinstance(idle, _TarCursor) else None
        if cursor is not None and cursor.index == member.position and cursor.data is not None:
            if cursor.replay is not None:
                return _MemberReader(member, cursor.replay, cursor.data, cursor)
            cursor.close()
            cursor = None
        if cursor is None or cursor.index >= member.position:
            if cursor is not None:
                cursor.close()
            cursor = _TarCursor(self)
        info = None
        while cursor.index < member.position:
            info = cursor.next()
            if info is None:
                break
        if info is None or info.name != member.member:
            cursor.close()
            raise SourceError(f"{escape_terminal(member, limit=300)}: no longer in the archive")
        # The member's bytes straight from the tar stream: tarfile's own member reader raises on a cut
        # archive and drops what it read of the last block, where the lines before the cut are wanted.
        data = _TarData(cursor.tar.fileobj, info.size)
        cursor.data = data
        return _MemberReader(member, b"", data, cursor)

    def release(
        self, member: ArchiveMember, cursor: _TarCursor | None, data: IO[bytes] | _TarData, *, broken: bool
    ) -> None:
        """Take back the reader of a closed member stream (kept for the next member, in order)."""
        if cursor is None:  # zip: the member's stream only; the archive stays open for the others
            data.close()
            self._zip_readers -= 1
            last = bool(self.members) and member is self.members[-1]
            if last and not self._zip_readers and isinstance(self._idle, _ZipReader):
                self._drop()
            return
        if broken or (self.members and member.position >= self.members[-1].position):
            cursor.close()
            return
        if self._idle is not None and self._idle is not cursor:
            self._drop()
        self._idle = cursor


def _mtime(seconds: float) -> pd.Timestamp:
    try:
        return pd.Timestamp(int(seconds * 1e9), unit="ns", tz="UTC")
    except (OverflowError, ValueError):
        return pd.Timestamp(0, unit="ns", tz="UTC")


def open_archive(path: str, kind: str, config: TimelineConfig) -> ArchiveListing:
    """List the archive at ``path`` (``kind`` from :func:`archive_kind`): its regular members as
    :class:`ArchiveMember` names, the entries it skips and why, and where it stops early.

    Raises:
        SourceError: the archive cannot be read at all (one line).
    """
    size = os.path.getsize(path)
    cap = min(config.max_decompressed_bytes, max(config.max_compression_ratio * size, RATIO_CAP_FLOOR))
    listing = ArchiveListing(path, kind, cap)
    try:
        if kind == "zip":
            _list_zip(listing)
        else:
            _list_tar(listing)
    except SourceError:
        raise
    except (EOFError, *_CORRUPT) as exc:
        raise SourceError(
            f"{escape_terminal(path, limit=300)}: not a readable {kind} archive ({_one_line_reason(exc)})"
        ) from exc
    return listing


def _add(listing: ArchiveListing, seen: set[str], name: str, reason: str | None) -> bool:
    """Record a skipped entry (``reason``) or a duplicate; True when the entry is to be read."""
    if reason is None and name in seen:
        reason = "a second member of the same name: not read (the first one is)"
    if reason is not None:
        listing.skipped.append((listing.name_of(name), reason))
        return False
    seen.add(name)
    return True


def _list_tar(listing: ArchiveListing) -> None:
    cursor = _TarCursor(listing)
    seen: set[str] = set()
    try:
        while True:
            try:
                info = cursor.next()
            except (EOFError, *_CORRUPT) as exc:
                listing.stop_reason = cursor.counting.stopped or _stop_of(exc)
                break
            if info is None:
                break
            if info.isdir():
                continue
            name = info.name
            if not _add(listing, seen, name, _tar_skip_reason(info)):
                continue
            end = info.offset_data + info.size
            limit = listing.cap - info.offset_data if end > listing.cap else None
            listing.members.append(
                ArchiveMember(listing, name, cursor.index, info.size, info.size, _mtime(info.mtime), limit)
            )
            if limit is not None:
                listing.stop_reason = REJECT_SIZE_CAP
                break
        if listing.stop_reason is None and cursor.counting.stopped:
            listing.stop_reason = cursor.counting.stopped
        elif listing.stop_reason is None and listing.members:
            last = cursor.tar.members[listing.members[-1].position] if listing.members else None
            if last is not None and cursor.counting.count < last.offset_data + last.size:
                listing.stop_reason = REJECT_TRUNCATED_ARCHIVE
    finally:
        cursor.close()
    if listing.stop_reason is not None and listing.members:
        listing.stop_after = listing.members[-1].member


def _tar_skip_reason(info: tarfile.TarInfo) -> str | None:
    if info.issym():
        return f"symbolic link to {escape_terminal(info.linkname, limit=200)}: not followed"
    if info.islnk():
        return f"hard link to {escape_terminal(info.linkname, limit=200)}: not followed"
    if info.ischr() or info.isblk():
        return "a device, not a regular file: not read"
    if info.isfifo():
        return "a FIFO, not a regular file: not read"
    if info.issparse():
        return "a sparse file: not read"
    if not info.isreg():
        return "not a regular file: not read"
    return None


def _list_zip(listing: ArchiveListing) -> None:
    seen: set[str] = set()
    total = 0
    reader = _ZipReader(listing.path)
    try:
        for index, info in enumerate(reader.zip.infolist()):
            if info.is_dir():
                continue
            if not _add(listing, seen, info.filename, _zip_skip_reason(info)):
                continue
            # A zip reader never gives more than the declared size: the sizes bound the archive.
            limit = listing.cap - total if total + info.file_size > listing.cap else None
            mtime = _zip_time(info.date_time)
            listing.members.append(
                ArchiveMember(listing, info.filename, index, info.file_size, info.compress_size, mtime, limit)
            )
            total += info.file_size
            if limit is not None:
                listing.stop_reason = REJECT_SIZE_CAP
                listing.stop_after = info.filename
                break
    finally:
        reader.close()


def _zip_skip_reason(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link: not followed"
    if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "not a regular file: not read"
    if info.flag_bits & 0x1:
        return "encrypted: not read"
    return None


def _zip_time(date_time: tuple[int, int, int, int, int, int]) -> pd.Timestamp:
    try:
        return pd.Timestamp(*date_time, tz="UTC")  # a zip records local time without a zone
    except (ValueError, TypeError):
        return pd.Timestamp(0, unit="ns", tz="UTC")
