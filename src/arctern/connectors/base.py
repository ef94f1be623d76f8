"""The connector protocol every storage backend implements, and the types it speaks.

Paths given to a connector are collection paths: absolute, ``/``-separated, relative to the
collection root (``/`` is the root). A connector must never touch anything outside its root.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FileType = Literal["file", "dir", "link", "pipe", "chr", "blk", "other"]
# Named pipes, character and block devices, and anything else that is not a regular file,
# a directory or a symlink (sockets): listed under Globus's own type names, never read.
SPECIAL_TYPES: frozenset[str] = frozenset({"pipe", "chr", "blk", "other"})


# Not frozen, like the engine's other per-file values: a frozen dataclass's ``__init__``
# sets each field through ``object.__setattr__`` (2.4 µs for this one, against 0.4), and a
# listing makes one per entry. Treated as a value all the same: nothing changes one.
@dataclass(slots=True)
class FileInfo:
    # Text: a name that is not valid UTF-8 is in the escaped form of
    # ``arctern.connectors.names`` (never a lone surrogate).
    name: str
    path: str
    type: FileType
    size: int
    mtime: float  # seconds since the epoch, UTC
    permissions: int = 0o644
    user: str = ""
    group: str = ""
    link_target: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; the engine falls back where it cannot."""

    write_at_offset: bool = True  # random-access writes (POSIX); else multipart parts (S3)
    rename: bool = True  # atomic rename; S3 emulates with copy + delete
    native_checksums: tuple[str, ...] = ()  # algorithms the store computes itself
    # Largest file it computes them for (None: any); a bigger one is read and hashed here.
    native_checksum_max_size: int | None = None
    set_mtime: bool = True
    local_path: bool = False  # exposes real filesystem paths (copy_file_range fast path)
    min_part_size: int = 0
    max_parts: int = 0


@dataclass(slots=True)
class WriteState:
    """Resumable state of an open write, persisted by the worker between chunks."""

    temp_path: str
    upload_id: str | None = None
    parts: dict[int, str] = field(default_factory=dict)  # part number -> etag
    # Multipart stores (write_at_offset False): part n = offset // part_size + 1, so the
    # engine should write whole parts (pieces of a part are assembled in memory and lost on
    # a crash). 0 when the connector writes at arbitrary offsets or buffers the whole
    # (small) file. A resumed state whose temp_path differs from the one passed in means
    # the earlier bytes are gone and the copy must start again at offset 0.
    part_size: int = 0
    size: int = -1  # the size declared to begin_write (-1 when unknown)
    # Stores whose pending upload is bound to its final name (S3): that collection path.
    target: str = ""


@runtime_checkable
class Connector(Protocol):
    """One collection's storage. Errors raised are from ``arctern.connectors.errors``."""

    capabilities: Capabilities

    async def stat(self, path: str) -> FileInfo: ...

    def list(self, path: str) -> AsyncIterator[FileInfo]: ...

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None: ...

    async def rename(self, old: str, new: str) -> None: ...

    async def delete(self, path: str, *, recursive: bool = False) -> None: ...

    async def read(self, path: str, offset: int, length: int) -> bytes: ...

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        """Prepare a hidden temporary object for ``path``; resume a previous one if given.

        ``temp_key`` names the temporary object deterministically (the worker passes the
        file record's id): a successor of a worker killed before it could persist the
        temporary name then reuses that object instead of leaving it behind.
        """
        ...

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None: ...

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        """Make the temporary object visible under ``path`` atomically (rename into place)."""
        ...

    async def abort_write(self, state: WriteState) -> None: ...

    async def checksum(self, path: str, algorithm: str) -> str | None:
        """The store's own checksum when it has one for ``algorithm``; else None."""
        ...

    async def close(self) -> None: ...
