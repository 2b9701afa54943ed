"""Write the files of one run safely: staged beside their targets, then moved into place together.

Every file a command writes (``build``'s folder, ``ingest -o``, ``export -o``, ``--rejects``, the
chart) goes through one :class:`OutputTransaction`::

    with OutputTransaction(outdir) as outputs:
        outputs.write_text(Path(outdir) / "postmortem.md", draft)
        with outputs.open(Path(outdir) / "events.parquet") as fh:
            ...
    # here every file is in place; on an exception none of them replaced anything

**Where.** Files are written into a private temporary folder beside their target, on the same file
system: ``<root>/.pmtimeline-tmp-<random>/`` for the files under the transaction's root (the output
folder), ``<parent>/.pmtimeline-tmp-<random>/`` for a file elsewhere (``--rejects``, ``-o FILE``).
The folder is created with mode 0700 under a fresh random name (``mkdir`` fails on any existing
name, link or not), so nobody else can plant anything in it.

**Together.** :meth:`OutputTransaction.commit` first checks every target (a directory or a
non-directory in the way fails the run before anything moves), then renames the staged files into
place one by one with ``os.replace`` (in the order they were staged) and removes the temporary
folders. The renames take milliseconds and need no space, so a failure of the run (an exception,
a full disk, a read-only folder, Ctrl-C) while the files are being written leaves every previous
output exactly as it was and removes every partial one. It is not one atomic step: a crash or
power loss in the middle of the renames can leave some files new and others old (each file is
always whole, either the old one or the new one).

**Links.** A symbolic link at an output path is never written through: ``os.replace`` replaces the
link itself, and the file it pointed to is left unchanged. A link in place of a folder inside the
output folder (``data/``) is removed and a real folder made. Only the paths the user named (the
output folder, the folder of ``-o FILE``) are followed when they are links: the user chose them.

**Modes.** New files get the usual ``0666`` less the umask, or the ``mode`` given (``0600`` for the
rejects file); since the file is always a new one, an existing target's mode is never kept.

**Errors.** Every failure is an :class:`~pmtimeline.errors.OutputError` of one line,
``cannot write <path>: <reason>`` (``read-only file system``, ``not a directory``, ``no space left
on device``, ...), naming the target, never the temporary file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

from pmtimeline.errors import OutputError

__all__ = ["STAGING_PREFIX", "OutputTransaction", "output_error"]

#: Name prefix of the temporary folders (hidden; input discovery must skip them).
STAGING_PREFIX: Final = ".pmtimeline-tmp-"

_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """The one-line ``cannot write PATH: reason`` error of an ``OSError`` (reason in lower case)."""
    reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    return OutputError(f"cannot write {os.fspath(path)}: {reason[:1].lower()}{reason[1:]}")


class OutputTransaction:
    """The files of one run, staged beside their targets and moved into place together.

    Args:
        root: the output folder, created when missing (with its parents); files under it share
            one temporary folder inside it, so that subfolders (``data/``) move too. Without a
            root, each target's own folder must exist.

    Use as a context manager (commit on success, :meth:`abort` on any exception, Ctrl-C included),
    or call :meth:`commit`/:meth:`abort` yourself. Staging a target twice replaces the first copy.

    Raises:
        OutputError: a folder or file cannot be created, written or moved into place.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(os.path.abspath(root)) if root is not None else None
        self._staging: dict[Path, Path] = {}  # target base folder -> its temporary folder
        self._files: dict[Path, Path] = {}  # target (absolute) -> staged file, in staging order
        self._shown: dict[Path, Path] = {}  # target (absolute) -> the path as the caller gave it
        self._created: list[Path] = []  # folders this transaction made (removed again on abort)
        self._committed: tuple[Path, ...] = ()
        self._open = True
        if root is not None and self.root is not None:
            self._make_root(self.root, root)
            try:
                self._staging_folder(self.root, shown=root)
            except OutputError:
                self.abort()  # the folder made just now goes again
                raise

    # -- staging -----------------------------------------------------------------------------------

    def stage(self, target: str | os.PathLike[str], mode: int = 0o666) -> Path:
        """Create (empty) and return the temporary file that will become ``target`` on commit.

        ``mode`` is that of the new file (less the umask).
        """
        staged, fd = self._create(target, mode)
        os.close(fd)
        return staged

    def open(self, target: str | os.PathLike[str], mode: int = 0o666) -> BinaryIO:
        """A binary file to write ``target``'s content to (see :meth:`stage`); close it before commit."""
        _staged, fd = self._create(target, mode)
        return os.fdopen(fd, "wb")

    def write_bytes(self, target: str | os.PathLike[str], data: bytes, mode: int = 0o666) -> None:
        """Stage ``target`` with the content ``data``."""
        fh = self.open(target, mode)
        try:
            with fh:  # closing flushes: a full disk can show only there
                fh.write(data)
        except OSError as exc:
            raise output_error(target, exc) from exc

    def write_text(self, target: str | os.PathLike[str], text: str, mode: int = 0o666) -> None:
        """Stage ``target`` with ``text`` encoded as UTF-8 (line ends as given)."""
        self.write_bytes(target, text.encode("utf-8"), mode)

    def discard(self, target: str | os.PathLike[str]) -> None:
        """Remove ``target``'s staged file: it will not be moved into place."""
        staged = self._files.pop(Path(os.path.abspath(target)), None)
        if staged is not None:
            staged.unlink(missing_ok=True)

    @property
    def targets(self) -> tuple[Path, ...]:
        """The staged targets (after :meth:`commit`: the committed ones), as given, in staging order."""
        return self._committed or tuple(self._shown[k] for k in self._files)

    # -- commit and abort ----------------------------------------------------------------------------

    def commit(self) -> tuple[Path, ...]:
        """Move every staged file into place (see the module docstring); returns the targets.

        On a failure the staged files are removed and an :class:`OutputError` raised; files
        already moved stay moved.
        """
        if not self._open:
            return self.targets
        try:
            for key in self._files:
                self._check_target(key)
            for key, staged in self._files.items():
                self._make_parents(key)
                try:
                    os.replace(staged, key)
                except OSError as exc:
                    raise output_error(self._shown[key], exc) from exc
        except BaseException:
            self.abort()
            raise
        self._committed = self.targets
        self._open = False
        self._remove_staging()
        return self._committed

    def abort(self) -> None:
        """Remove every staged file and temporary folder (and the output folder when this run made
        it and it is still empty); the targets are left as they were. Aborting twice is harmless."""
        self._open = False
        self._remove_staging()
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (or gone): what lies above it stays too

    def __enter__(self) -> OutputTransaction:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    # -- helpers -------------------------------------------------------------------------------------

    def _create(self, target: str | os.PathLike[str], mode: int) -> tuple[Path, int]:
        if not self._open:
            raise OutputError(f"cannot write {os.fspath(target)}: the outputs were already committed or aborted")
        key = Path(os.path.abspath(target))
        base, relative = self._base_of(key)
        staged = self._staging_folder(base, shown=target) / relative
        try:
            if key in self._files:
                self._files.pop(key).unlink(missing_ok=True)
            staged.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(staged, _CREATE_FLAGS, mode)
        except OSError as exc:
            raise output_error(target, exc) from exc
        self._files[key] = staged
        self._shown[key] = Path(target)
        return staged, fd

    def _base_of(self, key: Path) -> tuple[Path, Path]:
        """The folder whose temporary folder holds ``key``, and ``key`` relative to it."""
        if self.root is not None and key != self.root and key.is_relative_to(self.root):
            return self.root, key.relative_to(self.root)
        return key.parent, Path(key.name)

    def _staging_folder(self, base: Path, shown: str | os.PathLike[str] | None = None) -> Path:
        folder = self._staging.get(base)
        if folder is None:
            try:
                # mkdtemp: mode 0700, a fresh random name, fails rather than reuse anything there.
                folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
            except OSError as exc:
                raise output_error(shown if shown is not None else base, exc) from exc
            self._staging[base] = folder
        return folder

    def _make_root(self, root: Path, shown: str | os.PathLike[str]) -> None:
        missing: list[Path] = []
        for folder in (root, *root.parents):
            if os.path.lexists(folder):
                break
            missing.append(folder)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(shown, exc) from exc
        self._created = list(reversed(missing))

    def _check_target(self, key: Path) -> None:
        """Fail before anything moves when a target cannot be replaced (a folder in its place, or a
        file in place of a folder between the root and it)."""
        if self.root is not None and key.is_relative_to(self.root):
            folder = self.root
            for part in key.relative_to(self.root).parts[:-1]:
                folder = folder / part
                if os.path.lexists(folder) and not os.path.islink(folder) and not folder.is_dir():
                    raise output_error(folder, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
        try:
            st = os.lstat(key)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise output_error(self._shown[key], exc) from exc
        if stat.S_ISDIR(st.st_mode):
            raise output_error(self._shown[key], OSError(errno.EISDIR, os.strerror(errno.EISDIR)))

    def _make_parents(self, key: Path) -> None:
        """Make the folders between the root and ``key``; a link in their place is replaced by a
        real folder, never followed."""
        if self.root is None or not key.is_relative_to(self.root):
            return
        folder = self.root
        for part in key.relative_to(self.root).parts[:-1]:
            folder = folder / part
            try:
                if os.path.islink(folder):
                    folder.unlink()
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise output_error(folder, exc) from exc
            if not folder.is_dir():
                raise output_error(folder, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))

    def _remove_staging(self) -> None:
        for folder in self._staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        self._staging.clear()
        self._files.clear()
