"""A connector whose files live in process memory: fast, isolated storage for tests.

A ``MemoryStore`` is the "disk"; any number of connectors can share one. Stores can be
opened by name through ``named_store`` so that the API and the embedded worker of one
process see the same files, exactly as two processes would share a real filesystem.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from arctern.connectors.base import Capabilities, FileInfo, WriteState
from arctern.connectors.errors import (
    AlreadyExists,
    DirectoryNotEmpty,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    ObjectNotFound,
    PermissionDenied,
    QuotaExceeded,
)
from arctern.connectors.paths import join_path, split_path

TEMP_PREFIX = ".arctern-"
TEMP_SUFFIX = ".part"


@dataclass
class _Node:
    is_dir: bool
    mtime: float
    data: bytearray = field(default_factory=bytearray)
    children: dict[str, _Node] = field(default_factory=dict)


class MemoryStore:
    """A tree of directories and byte arrays; optionally with a byte quota."""

    def __init__(self, *, quota_bytes: int | None = None) -> None:
        self.root = _Node(is_dir=True, mtime=time.time())
        self.quota_bytes = quota_bytes

    def used_bytes(self) -> int:
        total = 0
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.is_dir:
                stack.extend(node.children.values())
            else:
                total += len(node.data)
        return total


# Named stores form a process-wide namespace, the in-memory analogue of the filesystem:
# the transfer API and the embedded worker open the same collection independently.
_NAMED_STORES: dict[str, MemoryStore] = {}


def named_store(name: str, *, quota_bytes: int | None = None) -> MemoryStore:
    store = _NAMED_STORES.get(name)
    if store is None:
        store = _NAMED_STORES[name] = MemoryStore(quota_bytes=quota_bytes)
    return store


def _is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


class MemoryConnector:
    """Implements ``arctern.connectors.base.Connector`` over a ``MemoryStore``."""

    capabilities = Capabilities(
        write_at_offset=True, rename=True, native_checksums=(), set_mtime=True
    )

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()

    # -- tree helpers --------------------------------------------------------------------

    def _lookup(self, parts: list[str], path: str) -> _Node:
        node = self.store.root
        for i, part in enumerate(parts):
            if not node.is_dir:
                raise NotADirectory(f"Not a directory: {join_path(parts[:i])}")
            nxt = node.children.get(part)
            if nxt is None:
                raise ObjectNotFound(f"No such file or directory: {path}")
            node = nxt
        return node

    def _parent(self, path: str) -> tuple[_Node, str, list[str]]:
        parts = split_path(path)
        if not parts:
            raise PermissionDenied("operation not allowed on the collection root")
        parent = self._lookup(parts[:-1], path)
        if not parent.is_dir:
            raise NotADirectory(f"Not a directory: {join_path(parts[:-1])}")
        return parent, parts[-1], parts

    @staticmethod
    def _info(name: str, path: str, node: _Node) -> FileInfo:
        return FileInfo(
            name=name,
            path=path,
            type="dir" if node.is_dir else "file",
            size=0 if node.is_dir else len(node.data),
            mtime=node.mtime,
            permissions=0o755 if node.is_dir else 0o644,
        )

    def _check_quota(self, extra: int) -> None:
        quota = self.store.quota_bytes
        if quota is not None and extra > 0 and self.store.used_bytes() + extra > quota:
            raise QuotaExceeded("Disk quota exceeded")

    # -- metadata ------------------------------------------------------------------------

    async def stat(self, path: str) -> FileInfo:
        parts = split_path(path)
        node = self._lookup(parts, path)
        return self._info(parts[-1] if parts else "", join_path(parts), node)

    async def list(self, path: str) -> AsyncIterator[FileInfo]:
        parts = split_path(path)
        node = self._lookup(parts, path)
        if not node.is_dir:
            raise NotADirectory(f"Not a directory: {path}")
        base = join_path(parts).rstrip("/")
        for name, child in list(node.children.items()):
            if not _is_temp(name):
                yield self._info(name, f"{base}/{name}", child)

    # -- namespace changes ---------------------------------------------------------------

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        parts = split_path(path)
        if not parts:
            if exist_ok:
                return
            raise AlreadyExists("the collection root already exists")
        node = self.store.root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = node.children.get(part)
            if nxt is None:
                if not last and not parents:
                    raise ObjectNotFound(f"No such file or directory: {join_path(parts[: i + 1])}")
                nxt = node.children[part] = _Node(is_dir=True, mtime=time.time())
                node.mtime = time.time()
            elif last:
                if not (exist_ok and nxt.is_dir):
                    raise AlreadyExists(f"File exists: {path}")
            elif not nxt.is_dir:
                raise NotADirectory(f"Not a directory: {join_path(parts[: i + 1])}")
            node = nxt

    async def rename(self, old: str, new: str) -> None:
        oparent, oname, oparts = self._parent(old)
        nparent, nname, nparts = self._parent(new)
        if oname not in oparent.children:
            raise ObjectNotFound(f"No such file or directory: {old}")
        if nparts[: len(oparts)] == oparts:
            raise InvalidPath("cannot move a directory into itself")
        if nname in nparent.children:
            raise AlreadyExists(f"File exists: {new}")
        nparent.children[nname] = oparent.children.pop(oname)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        parent, name, _parts = self._parent(path)
        node = parent.children.get(name)
        if node is None:
            raise ObjectNotFound(f"No such file or directory: {path}")
        if node.is_dir and node.children and not recursive:
            raise DirectoryNotEmpty(f"Directory not empty: {path}")
        del parent.children[name]
        parent.mtime = time.time()

    # -- data ----------------------------------------------------------------------------

    async def read(self, path: str, offset: int, length: int) -> bytes:
        parts = split_path(path)
        node = self._lookup(parts, path)
        if node.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        return bytes(node.data[offset : offset + length])

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        parent, name, parts = self._parent(path)
        existing = parent.children.get(name)
        if existing is not None and existing.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        if resume is not None and resume.temp_path:
            rparts = split_path(resume.temp_path)
            temp = parent.children.get(rparts[-1]) if rparts[:-1] == parts[:-1] else None
            if temp is not None and not temp.is_dir:
                return resume
        temp_name = f"{TEMP_PREFIX}{temp_key or uuid.uuid4().hex}{TEMP_SUFFIX}"
        parent.children[temp_name] = _Node(is_dir=False, mtime=time.time())
        return WriteState(temp_path=join_path([*parts[:-1], temp_name]))

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        parent, name, _parts = self._parent(state.temp_path)
        node = parent.children.get(name)
        if node is None or node.is_dir:
            raise ObjectNotFound(f"write target vanished: {state.temp_path}")
        end = offset + len(data)
        self._check_quota(end - len(node.data))
        if len(node.data) < offset:
            node.data.extend(b"\x00" * (offset - len(node.data)))
        node.data[offset:end] = data
        node.mtime = time.time()

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        tparent, tname, _t = self._parent(state.temp_path)
        dparent, dname, _d = self._parent(path)
        node = tparent.children.get(tname)
        if node is None:
            raise ObjectNotFound(f"write target vanished: {state.temp_path}")
        existing = dparent.children.get(dname)
        if existing is not None and existing.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        del tparent.children[tname]
        node.mtime = mtime if mtime is not None else time.time()
        dparent.children[dname] = node

    async def abort_write(self, state: WriteState) -> None:
        try:
            parent, name, _parts = self._parent(state.temp_path)
        except ObjectNotFound:
            return
        parent.children.pop(name, None)

    async def set_mtime(self, path: str, mtime: float) -> None:
        parts = split_path(path)
        self._lookup(parts, path).mtime = mtime

    async def checksum(self, path: str, algorithm: str) -> str | None:
        return None

    async def close(self) -> None:
        return None

    # -- test helpers --------------------------------------------------------------------

    def temp_files(self) -> builtins.list[str]:
        """Collection paths of in-flight temporary files (tests assert none are left)."""
        found: builtins.list[str] = []
        stack: builtins.list[tuple[builtins.list[str], _Node]] = [([], self.store.root)]
        while stack:
            parts, node = stack.pop()
            for name, child in node.children.items():
                if child.is_dir:
                    stack.append(([*parts, name], child))
                elif _is_temp(name):
                    found.append(join_path([*parts, name]))
        return found
