"""A collection on the local filesystem, confined beneath its root directory.

Confinement does not rely on string checks alone: every path is walked from the root one
component at a time with ``openat``-style calls (``dir_fd`` + ``O_NOFOLLOW``), so a symlink
or a concurrent rename can never lead an operation outside the root. Symlinks whose target
stays inside the root are followed by re-walking the resolved path from the root.

For a caller who is not the collection's owner, an access guard (``connectors/access.py``)
is applied to the *resolved* location of every path an operation opens, lists, creates,
renames or deletes: the components ``_resolve`` actually walked (each directory opened
``O_NOFOLLOW`` from the one before), so a symlink from a shared directory into a private one
is refused, and one swapped in after the check is never followed.

Names: paths come in and go out as text in the escaped form of ``arctern.connectors.names``
(a name that is not valid UTF-8 shows its odd bytes as ``\\xHH``). Inside, components are in
the ``os`` module's form (``os.fsdecode`` of the bytes), converted by ``_os_parts`` on the way
in and by ``_info``/``_shown_path`` on the way out.

Data is only ever read from regular files: see ``open_read_blocking``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import grp
import os
import pwd
import shutil
import stat as stat_mod
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from arctern.connectors.access import AccessGuard, Need
from arctern.connectors.base import Capabilities, FileInfo, FileType, WriteState
from arctern.connectors.errors import (
    AlreadyExists,
    ConnectorError,
    DirectoryNotEmpty,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotARegularFile,
    ObjectNotFound,
    PathOutsideRoot,
    PermissionDenied,
    QuotaExceeded,
    TransientError,
)
from arctern.connectors.names import os_name, shown_name
from arctern.connectors.paths import join_path, split_path
from arctern.connectors.posix.beneath import BeneathOpener
from arctern.connectors.posix.writeback import start_writeback

T = TypeVar("T")

TEMP_PREFIX = ".arctern-"
TEMP_SUFFIX = ".part"
_PROC_FD = "/proc/self/fd"
_MAX_SYMLINKS = 40
_LIST_BATCH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Opening a file for data: O_NONBLOCK so that a named pipe without a writer cannot block the
# open (it would hold a worker thread forever, out of reach of cancel), O_NOCTTY so that a
# terminal device never becomes the process's controlling terminal. The fd is checked with
# fstat before a byte is read, and O_NONBLOCK is cleared again for regular files.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def map_os_error(exc: OSError, path: str) -> ConnectorError:
    """Translate an OSError into the connector error the engine understands."""
    code = exc.errno
    text = f"{os.strerror(code) if code else exc}: {path}"
    if code == errno.ENOENT:
        return ObjectNotFound(text)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(text)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return QuotaExceeded(text)
    if code == errno.ENOTDIR:
        return NotADirectory(text)
    if code == errno.EISDIR:
        return IsADirectory(text)
    if code == errno.EEXIST:
        return AlreadyExists(text)
    if code == errno.ENOTEMPTY:
        return DirectoryNotEmpty(text)
    if code in (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ):
        return InvalidPath(text)
    if code == errno.ELOOP:
        return PathOutsideRoot(f"symbolic link refused: {path}")
    if code in (errno.ENXIO, errno.ENODEV):
        # open() of a socket, or of a device without a driver: retrying cannot help.
        return NotARegularFile(f"Not a regular file (socket or device): {path}")
    return TransientError(text)


def _os_parts(path: str) -> list[str]:
    """The components of a collection path in the ``os`` module's form (escapes decoded;
    a name in a non-canonical spelling is refused with ``InvalidPath``)."""
    parts = split_path(path)
    if path.isascii() and "\\" not in path:
        return parts  # already the os form: nothing to decode
    return [os_name(part) for part in parts]


def _shown_path(parts: Sequence[str]) -> str:
    """The collection path (escaped text) of ``os``-form components."""
    return join_path([shown_name(part) for part in parts])


_SPECIAL_KINDS: tuple[tuple[Callable[[int], bool], FileType, str], ...] = (
    (stat_mod.S_ISFIFO, "pipe", "named pipe"),
    (stat_mod.S_ISCHR, "chr", "character device"),
    (stat_mod.S_ISBLK, "blk", "block device"),
    (stat_mod.S_ISSOCK, "other", "socket"),
)


def _special_kind(mode: int) -> tuple[FileType, str]:
    """Globus's type name and a description of a file that is not regular, a directory or
    a symlink."""
    for test, kind, words in _SPECIAL_KINDS:
        if test(mode):
            return kind, words
    return "other", "special file"


def refuse_special(st: os.stat_result, path: str) -> None:
    """Raise ``NotARegularFile`` unless ``st`` is a regular file (or a directory, which the
    callers report as such)."""
    mode = st.st_mode
    if stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode):
        return
    _, words = _special_kind(mode)
    raise NotARegularFile(f"Not a regular file ({words}): {path}")


@lru_cache(maxsize=256)
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=256)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _info(name: str, path: str, st: os.stat_result, link_target: str | None = None) -> FileInfo:
    """The ``FileInfo`` of the entry named ``name`` at collection path ``path`` (both already
    text: ``shown_name``)."""
    mode = st.st_mode
    kind: FileType
    if stat_mod.S_ISLNK(mode):
        kind = "link"
    elif stat_mod.S_ISDIR(mode):
        kind = "dir"
    elif stat_mod.S_ISREG(mode):
        kind = "file"
    else:
        kind = _special_kind(mode)[0]
    return FileInfo(
        name=name,
        path=path,
        type=kind,
        size=st.st_size,
        mtime=st.st_mtime,
        permissions=stat_mod.S_IMODE(mode),
        user=_user_name(st.st_uid),
        group=_group_name(st.st_gid),
        link_target=None if link_target is None else shown_name(link_target),
    )


class PosixConnector:
    """Implements ``arctern.connectors.base.Connector`` for a local directory."""

    capabilities = Capabilities(
        write_at_offset=True,
        rename=True,
        native_checksums=(),
        set_mtime=True,
        local_path=True,
    )

    def __init__(
        self, root: str, *, create_root: bool = False, guard: AccessGuard | None = None
    ) -> None:
        if "\x00" in root or not os.path.isabs(root):
            raise InvalidPath(f"collection root must be an absolute path: {root!r}")
        if create_root:
            os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self._beneath = BeneathOpener()
        # The root, opened once for the one-call lookups (a path lookup of the root per
        # operation was a third of the system calls of a small-file copy).
        self._root_fd = -1
        self._root_lock = threading.Lock()
        self._guard = guard

    # -- access guard --------------------------------------------------------------------

    @property
    def guard(self) -> AccessGuard | None:
        return self._guard

    def use_guard(self, guard: AccessGuard | None) -> None:
        """Enforce ``guard`` on the resolved location of every later operation."""
        self._guard = guard

    def _check_access(self, comps: Sequence[str], need: Need | None) -> None:
        guard = self._guard
        if guard is not None and need is not None:
            # Rules name paths in the escaped text form, as the API shows them.
            guard.check(_shown_path(comps), need)

    # -- confinement ---------------------------------------------------------------------

    def _held_root(self) -> int:
        if self._root_fd < 0:
            with self._root_lock:
                if self._root_fd < 0:
                    self._root_fd = self._open_root()
        return self._root_fd

    def release(self) -> None:
        """Close the held root directory (``close`` without the await; reopened on use)."""
        fd, self._root_fd = self._root_fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()

    def _open_root(self) -> int:
        try:
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise map_os_error(exc, "/") from exc

    def _link_components(self, stack: list[str], target: str, shown: str) -> list[str]:
        """Components (from the root) that a symlink in directory ``stack`` points at."""
        if target.startswith("/"):
            real = os.path.normpath(target)
            if real == self.root:
                base: list[str] = []
                rest = ""
            elif real.startswith(self.root.rstrip("/") + "/"):
                base = []
                rest = real[len(self.root.rstrip("/")) + 1 :]
            else:
                raise PathOutsideRoot(f"symbolic link points outside the collection: {shown}")
        else:
            base = list(stack)
            rest = target
        for part in rest.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not base:
                    raise PathOutsideRoot(f"symbolic link points outside the collection: {shown}")
                base.pop()
            else:
                base.append(part)
        return base

    def _resolve_beneath(self, parts: list[str], *, follow_last: bool) -> int | None:
        """The parent directory fd of ``parts`` in one ``openat2`` call when no symlink is on
        the way (nor, with ``follow_last``, at the end); None to walk the path instead."""
        if not parts or not self._beneath.available:
            return None
        root = self._held_root()
        try:
            if len(parts) == 1:
                fd = os.dup(root)
            else:
                opened = self._beneath.open(root, "/".join(parts[:-1]), _DIR_FLAGS)
                if opened is None:
                    return None
                fd = opened
        except OSError as exc:
            raise map_os_error(exc, join_path(parts)) from exc
        if follow_last:
            try:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return fd
            except OSError:
                os.close(fd)
                return None
            if stat_mod.S_ISLNK(st.st_mode):
                os.close(fd)
                return None
        return fd

    @contextmanager
    def _resolve(
        self, path: str, *, follow_last: bool, need: Need | None
    ) -> Iterator[tuple[int, str, list[str]]]:
        """Yield ``(parent_fd, name, components)`` for ``path``; the fd is closed afterwards.

        ``components`` is where ``path`` resolved to inside the root; the access guard must
        grant ``need`` there (``None``: no check, for removing our own temporary files).

        ``name`` is "." with ``parent_fd`` the root itself when ``path`` is the root.
        Intermediate directories are opened with ``O_NOFOLLOW``; symlinks met on the way (and
        the last component when ``follow_last``) are resolved and re-walked from the root.
        """
        todo = _os_parts(path)
        fast = self._resolve_beneath(todo, follow_last=follow_last)
        if fast is not None:
            try:
                self._check_access(todo, need)
                yield fast, todo[-1], todo
            except OSError as exc:
                raise map_os_error(exc, path) from exc
            finally:
                os.close(fast)
            return
        fd = self._open_root()
        stack: list[str] = []
        links = 0
        try:
            while todo:
                name = todo[0]
                last = len(todo) == 1
                if last and not follow_last:
                    break
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        break
                    # Refused first: whether a path outside the grant exists is not told.
                    self._check_access([*stack, name], need)
                    raise ObjectNotFound(f"No such file or directory: {path}") from None
                if stat_mod.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_SYMLINKS:
                        raise PathOutsideRoot(f"too many levels of symbolic links: {path}")
                    target = os.readlink(name, dir_fd=fd)
                    todo = self._link_components(stack, target, path) + todo[1:]
                    os.close(fd)
                    fd = -1
                    fd = self._open_root()
                    stack = []
                    continue
                if last:
                    break
                if not stat_mod.S_ISDIR(st.st_mode):
                    self._check_access([*stack, name], need)
                    raise NotADirectory(f"Not a directory: {join_path([*stack, name])}")
                # O_NOFOLLOW: if the entry was swapped for a symlink since the stat, fail.
                new_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = new_fd
                stack.append(name)
                todo = todo[1:]
            if not todo:
                self._check_access(stack, need)
                yield fd, ".", stack
            else:
                resolved = [*stack, todo[0]]
                self._check_access(resolved, need)
                yield fd, todo[0], resolved
        except ConnectorError:
            raise
        except OSError as exc:
            raise map_os_error(exc, path) from exc
        finally:
            if fd >= 0:
                os.close(fd)

    async def _run(self, func: Callable[[], T], path: str) -> T:
        try:
            return await asyncio.to_thread(func)
        except ConnectorError:
            raise
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    # -- metadata ------------------------------------------------------------------------

    async def stat(self, path: str) -> FileInfo:
        def run() -> FileInfo:
            with self._resolve(path, follow_last=True, need="r") as (fd, name, comps):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                return _info(shown_name(comps[-1]) if comps else "", _shown_path(comps), st)

        return await self._run(run, path)

    async def lstat(self, path: str) -> FileInfo:
        """Like ``stat`` but reports a symlink itself (type "link") instead of its target."""

        def run() -> FileInfo:
            with self._resolve(path, follow_last=False, need="r") as (fd, name, comps):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                target = os.readlink(name, dir_fd=fd) if stat_mod.S_ISLNK(st.st_mode) else None
                name = shown_name(comps[-1]) if comps else ""
                return _info(name, _shown_path(comps), st, target)

        return await self._run(run, path)

    def _scan(self, path: str) -> Generator[list[FileInfo], None, None]:
        with self._resolve(path, follow_last=True, need="r") as (pfd, name, comps):
            dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            base = _shown_path(comps).rstrip("/") + "/"
            try:
                batch: list[FileInfo] = []
                with os.scandir(dfd) as it:
                    for entry in it:
                        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
                            continue  # in-flight writes are invisible
                        try:
                            st = entry.stat(follow_symlinks=False)
                            target = (
                                os.readlink(entry.name, dir_fd=dfd) if entry.is_symlink() else None
                            )
                        except FileNotFoundError:
                            continue
                        shown = shown_name(entry.name)
                        batch.append(_info(shown, base + shown, st, target))
                        if len(batch) >= _LIST_BATCH:
                            yield batch
                            batch = []
                if batch:
                    yield batch
            finally:
                os.close(dfd)

    async def list(self, path: str) -> AsyncIterator[FileInfo]:
        info = await self.stat(path)
        if info.type != "dir":
            raise NotADirectory(f"Not a directory: {path}")
        gen = self._scan(path)
        sentinel: list[FileInfo] = []

        def step() -> list[FileInfo]:
            return next(gen, sentinel)

        try:
            while True:
                batch = await self._run(step, path)
                if batch is sentinel:
                    return
                for item in batch:
                    yield item
        finally:
            gen.close()

    # -- namespace changes ---------------------------------------------------------------

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        def make(p: str, parents: bool, exist_ok: bool) -> None:
            try:
                with self._resolve(p, follow_last=False, need="rw") as (fd, name, _comps):
                    if name == ".":
                        if exist_ok:
                            return
                        raise AlreadyExists("the collection root already exists")
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        if not exist_ok:
                            raise AlreadyExists(f"File exists: {p}") from None
                        # re-resolve so an existing symlink is only followed inside the root
                        with self._resolve(p, follow_last=True, need="rw") as (fd2, name2, _c):
                            st = os.stat(name2, dir_fd=fd2, follow_symlinks=False)
                        if not stat_mod.S_ISDIR(st.st_mode):
                            raise AlreadyExists(f"File exists: {p}") from None
            except ObjectNotFound:
                comps = split_path(p)
                if not parents or len(comps) <= 1:
                    raise
                make(join_path(comps[:-1]), True, True)
                make(p, False, exist_ok)

        await self._run(lambda: make(path, parents, exist_ok), path)

    async def rename(self, old: str, new: str) -> None:
        def run() -> None:
            with (
                self._resolve(old, follow_last=False, need="rw") as (ofd, oname, ocomps),
                self._resolve(new, follow_last=False, need="rw") as (nfd, nname, ncomps),
            ):
                if oname == "." or nname == ".":
                    raise PermissionDenied("the collection root cannot be renamed")
                if ncomps[: len(ocomps)] == ocomps:
                    raise InvalidPath("cannot move a directory into itself")
                os.stat(oname, dir_fd=ofd, follow_symlinks=False)
                try:
                    os.stat(nname, dir_fd=nfd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                else:
                    raise AlreadyExists(f"File exists: {new}")
                os.rename(oname, nname, src_dir_fd=ofd, dst_dir_fd=nfd)

        await self._run(run, old)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        def run() -> None:
            with self._resolve(path, follow_last=False, need="rw") as (fd, name, _comps):
                if name == ".":
                    raise PermissionDenied("the collection root cannot be deleted")
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat_mod.S_ISDIR(st.st_mode):
                    if recursive:
                        # fd-based rmtree never follows symlinks (3.11+: dir_fd supported)
                        shutil.rmtree(name, dir_fd=fd)
                    else:
                        os.rmdir(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)

        await self._run(run, path)

    # -- data ----------------------------------------------------------------------------

    def open_read_fd(self, path: str) -> int:
        """A read-only fd for a regular file (blocking; callers run it in a thread)."""
        return self.open_read_blocking(path)[0]

    def open_read_blocking(self, path: str) -> tuple[int, os.stat_result]:
        """A read-only fd for a regular file and its ``fstat`` (blocking).

        Anything else raises (``IsADirectory``, ``NotARegularFile``) before a byte is read:
        the planner already leaves special files out, and this check on the open fd closes
        the race of a file replaced by a named pipe after it was listed.
        """
        try:
            fd = self._open_beneath(path, _READ_FLAGS, need="r")
            if fd is None:
                fd = self._open_read_walking(path)
            try:
                st = os.fstat(fd)
                if stat_mod.S_ISDIR(st.st_mode):
                    raise IsADirectory(f"Is a directory: {path}")
                refuse_special(st, path)
                # Back to blocking reads (the only status flag set was O_NONBLOCK): FUSE and
                # network filesystems may honour it for regular files too.
                fcntl.fcntl(fd, fcntl.F_SETFL, 0)
            except BaseException:
                os.close(fd)
                raise
            return fd, st
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    def _open_beneath(self, path: str, flags: int, mode: int = 0, *, need: Need) -> int | None:
        """``path`` opened in one ``openat2`` call if no symlink is on the way, else None."""
        parts = _os_parts(path)
        if not parts or not self._beneath.available:
            return None
        # openat2 refuses every symlink, so what it opens is the logical path itself.
        self._check_access(parts, need)
        return self._beneath.open(self._held_root(), "/".join(parts), flags, mode)

    def _open_read_walking(self, path: str) -> int:
        try:
            with self._resolve(path, follow_last=True, need="r") as (pfd, name, _comps):
                if name == ".":
                    raise IsADirectory(f"Is a directory: {path}")
                return os.open(name, _READ_FLAGS | os.O_NOFOLLOW, dir_fd=pfd)
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    def open_write_fd(self, state: WriteState, *, readable: bool = False) -> int:
        """A writable (and ``readable``: for reading back) fd on the temporary file of
        ``state`` (blocking)."""
        access = os.O_RDWR if readable else os.O_WRONLY
        try:
            with self._resolve(state.temp_path, follow_last=False, need="rw") as (pfd, name, _c):
                return os.open(name, access | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        except OSError as exc:
            raise map_os_error(exc, state.temp_path) from exc

    async def read(self, path: str, offset: int, length: int) -> bytes:
        def run() -> bytes:
            fd = self.open_read_fd(path)
            try:
                chunks: list[bytes] = []
                remaining = length
                pos = offset
                while remaining > 0:
                    data = os.pread(fd, remaining, pos)
                    if not data:
                        break
                    chunks.append(data)
                    pos += len(data)
                    remaining -= len(data)
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            finally:
                os.close(fd)

        return await self._run(run, path)

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        def run() -> WriteState:
            with self._resolve(path, follow_last=False, need="rw") as (pfd, name, comps):
                self._refuse_directory(pfd, name, path)
                if resume is not None and resume.temp_path:
                    rparts = _os_parts(resume.temp_path)
                    if rparts[:-1] == comps[:-1]:
                        try:
                            st = os.stat(rparts[-1], dir_fd=pfd, follow_symlinks=False)
                            if stat_mod.S_ISREG(st.st_mode):
                                return resume
                        except FileNotFoundError:
                            pass
                state, fd = self._create_temp(pfd, comps, temp_key, os.O_WRONLY)
                os.close(fd)
                return state

        return await self._run(run, path)

    def create_temp_blocking(
        self, path: str, temp_key: str | None, held: HeldDirectories | None = None
    ) -> LocalTempFile:
        """A fresh temporary file beside ``path``, held open with its directory (blocking).

        The engine's one-call path for small local files writes, reads back and commits it
        with plain system calls relative to the held directory, with no further lookups.
        With ``held``, the directory is looked up once per group of files, not per file.
        """
        try:
            if held is not None:
                parts = _os_parts(path)
                pfd = self._held_parent(parts, held)
                if pfd is not None:
                    name = parts[-1]
                    self._check_access(parts, "rw")
                    unnamed = _open_unnamed_temp(pfd, held)
                    if unnamed is not None:
                        return LocalTempFile(path, None, pfd, name, unnamed, owns_directory=False)
                    state, fd = self._create_temp(pfd, parts, temp_key, os.O_RDWR)
                    return LocalTempFile(path, state, pfd, name, fd, owns_directory=False)
            with self._resolve(path, follow_last=False, need="rw") as (pfd, name, comps):
                # No directory check here: the final rename refuses to replace one (EISDIR).
                _refuse_root(name)
                state, fd = self._create_temp(pfd, comps, temp_key, os.O_RDWR)
                try:
                    directory = os.dup(pfd)
                except OSError:
                    os.close(fd)
                    raise
                return LocalTempFile(path, state, directory, name, fd)
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    def _held_parent(self, parts: Sequence[str], held: HeldDirectories) -> int | None:
        """The parent directory of ``parts`` from ``held``, opened there on first use (one
        ``openat2``, which refuses symlinks); None when there is a symlink on the way (the
        caller then walks the path) or ``parts`` names the root."""
        if not parts or not self._beneath.available:
            return None
        if len(parts) == 1:
            return self._held_root()
        key = "/".join(parts[:-1])
        fd = held.get(key)
        if fd is None:
            fd = self._beneath.open(self._held_root(), key, _DIR_FLAGS)
            if fd is None:
                return None
            held.keep(key, fd)
        return fd

    @staticmethod
    def _refuse_directory(pfd: int, name: str, path: str) -> None:
        _refuse_root(name)
        with contextlib.suppress(FileNotFoundError):
            if stat_mod.S_ISDIR(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode):
                raise IsADirectory(f"Is a directory: {path}")

    @staticmethod
    def _create_temp(
        pfd: int, comps: Sequence[str], temp_key: str | None, access: int
    ) -> tuple[WriteState, int]:
        temp = f"{TEMP_PREFIX}{temp_key or uuid.uuid4().hex}{TEMP_SUFFIX}"
        # A keyed name may hold a crashed predecessor's bytes: start it afresh.
        reuse = os.O_TRUNC if temp_key else os.O_EXCL
        fd = os.open(
            temp, access | os.O_CREAT | reuse | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd
        )
        # The state is persisted: its path is text in escaped form, like every other path.
        return WriteState(temp_path=_shown_path([*comps[:-1], temp])), fd

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        def run() -> None:
            fd = self.open_write_fd(state)
            try:
                _pwrite_all(fd, data, offset)
            finally:
                os.close(fd)

        await self._run(run, state.temp_path)

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        await self._run(lambda: self.commit_write_blocking(state, path, mtime=mtime), path)

    def commit_write_blocking(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        """Give the temporary file of ``state`` its final name (blocking)."""
        try:
            with (
                self._resolve(state.temp_path, follow_last=False, need="rw") as (tfd, tname, _t),
                self._resolve(path, follow_last=False, need="rw") as (dfd, dname, _d),
            ):
                self._refuse_directory(dfd, dname, path)
                if mtime is not None:
                    os.utime(tname, (mtime, mtime), dir_fd=tfd, follow_symlinks=False)
                os.replace(tname, dname, src_dir_fd=tfd, dst_dir_fd=dfd)
        except OSError as exc:
            raise map_os_error(exc, path) from exc

    async def abort_write(self, state: WriteState) -> None:
        await self._run(lambda: self.abort_write_blocking(state), state.temp_path)

    def abort_write_blocking(self, state: WriteState) -> None:
        """Remove the temporary file of ``state`` if it exists (blocking).

        Not access-checked, so that a revoked grant does not leave half-written files behind;
        under a guard only an engine temporary name may be removed this way."""
        if self._guard is not None and not _is_temp_name(state.temp_path.rsplit("/", 1)[-1]):
            raise PermissionDenied(f"not a temporary file: {state.temp_path}")
        try:
            with (
                contextlib.suppress(ObjectNotFound, FileNotFoundError),
                self._resolve(state.temp_path, follow_last=False, need=None) as (fd, name, _c),
            ):
                os.unlink(name, dir_fd=fd)
        except OSError as exc:
            raise map_os_error(exc, state.temp_path) from exc

    async def set_mtime(self, path: str, mtime: float) -> None:
        def run() -> None:
            with self._resolve(path, follow_last=True, need="rw") as (fd, name, _c):
                os.utime(name, (mtime, mtime), dir_fd=fd, follow_symlinks=False)

        await self._run(run, path)

    async def checksum(self, path: str, algorithm: str) -> str | None:
        return None

    async def close(self) -> None:
        self.release()


class HeldDirectories:
    """Directories kept open while one thread writes a group of small files into them.

    A group's files mostly share a directory: looking it up once instead of once per file
    saves a path lookup, a ``dup`` and two ``close`` calls per file. Held only for one group
    (milliseconds), like the single directory a write holds between its lookup and its
    rename. ``close`` (always call it) closes them all.

    ``unnamed_temps``: whether the group's files may be written as unnamed temporary files
    (``_open_unnamed_temp``); cleared at the first file system that has none.
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        # An unnamed file is given its name through /proc/self/fd (see LocalTempFile.commit).
        self.unnamed_temps = os.path.isdir(_PROC_FD)

    def get(self, key: str) -> int | None:
        return self._fds.get(key)

    def keep(self, key: str, fd: int) -> None:
        self._fds[key] = fd

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)


class LocalTempFile:
    """An open temporary file and its directory; ``commit`` gives it its final name.

    The file is either named (``state`` says where; ``close`` removes it unless committed)
    or unnamed (``state`` is None: an ``O_TMPFILE`` file that vanishes with its descriptor,
    even if the process is killed). Used from one thread at a time. ``close`` (always call
    it) closes the directory too unless that belongs to someone else (``owns_directory=False``:
    held for a group, or the connector's root).
    """

    def __init__(
        self,
        path: str,
        state: WriteState | None,
        dir_fd: int,
        name: str,
        fd: int,
        *,
        owns_directory: bool = True,
    ) -> None:
        self.path = path
        self._dir_fd = dir_fd
        self._owns_directory = owns_directory
        self._name = name
        self._temp = None if state is None else state.temp_path.rsplit("/", 1)[-1]
        self._fd = fd
        self._committed = False

    def write(self, data: bytes) -> None:
        try:
            _pwrite_all(self._fd, data, 0)
        except OSError as exc:
            raise map_os_error(exc, self.path) from exc

    def read_back(self, size: int) -> bytes:
        try:
            return os.pread(self._fd, size, 0)
        except OSError as exc:
            raise map_os_error(exc, self.path) from exc

    def commit(self, mtime: float | None) -> None:
        """Set the modification time and put the file under its final name, atomically
        (EISDIR if a directory stands there, which is reported, not replaced)."""
        try:
            if mtime is not None:
                os.utime(self._fd, (mtime, mtime))
            if self._temp is None:
                self._link_into_place()
            else:
                os.replace(self._temp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            raise map_os_error(exc, self.path) from exc
        self._committed = True

    def _link_into_place(self) -> None:
        """Name an unnamed file: one ``linkat`` where the name is free (the common case of a
        new copy, and cheaper than creating a named file and renaming it); where it is taken,
        a temporary name first and a rename over the old file, as for a named file."""
        data = f"{_PROC_FD}/{self._fd}"
        try:
            os.link(data, self._name, dst_dir_fd=self._dir_fd, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        temp = f"{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}"
        os.link(data, temp, dst_dir_fd=self._dir_fd, follow_symlinks=True)
        try:
            os.replace(temp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self._dir_fd)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dir_fd >= 0:
            if not self._committed and self._temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._temp, dir_fd=self._dir_fd)
            if self._owns_directory:
                os.close(self._dir_fd)
            self._dir_fd = -1


def _open_unnamed_temp(dir_fd: int, held: HeldDirectories) -> int | None:
    """An unnamed temporary file (``O_TMPFILE``) in the directory ``dir_fd``, or None where
    the file system has none (``held.unnamed_temps`` is then cleared for the group)."""
    if not held.unnamed_temps:
        return None
    try:
        return os.open(".", os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        # EOPNOTSUPP: no O_TMPFILE on this file system; EISDIR: a kernel without it at all.
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            held.unnamed_temps = False
            return None
        raise


def _is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _refuse_root(name: str) -> None:
    if name == ".":
        raise IsADirectory("cannot write over the collection root")


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write less than asked), and start
    writing it to disk if it is large (``start_writeback``)."""
    view = memoryview(data)
    start, length = offset, len(view)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
    start_writeback(fd, start, length)
