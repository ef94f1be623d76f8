"""Access guards: which resolved collection paths a non-owner may read or write.

Access rules name *logical* paths, but a symlink inside the collection can make a logical
path in a shared directory resolve to a private one. The API checks the logical path before
it touches storage; the guard is the second check, applied by the connector to the location it
actually resolved and opened, so neither a symlink nor a link swapped between check and use
can carry an operation outside the caller's granted area.

A guard is a plain, picklable object built from precomputed prefixes (no database, no event
loop), so connector threads and the engine's helper processes call it directly. The owner of
a collection has no guard at all. ``replace`` swaps the prefixes of a live guard at once: the
worker re-reads the rules of a running task and a revoked rule takes effect mid-batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from arctern.connectors.base import Capabilities, Connector, FileInfo, WriteState
from arctern.connectors.errors import PermissionDenied
from arctern.connectors.paths import normalize

Need = Literal["r", "rw"]


class AccessDenied(PermissionDenied):
    """The access rules do not grant this operation at the path it resolves to."""


def _prefix(path: str) -> str:
    return path.rstrip("/") + "/"


class AccessGuard:
    """``allows(path, need)``: whether canonical collection ``path`` (``/a/b``) may be read
    (``"r"``) or written (``"rw"``). Rule paths are directory prefixes, as in ``AclRule``;
    nothing at or beneath a ``denied`` prefix is allowed, whatever grants it (a storage
    gateway's ``none`` path restrictions)."""

    __slots__ = ("_rules",)

    def __init__(
        self, readable: Iterable[str] = (), writable: Iterable[str] = (), denied: Iterable[str] = ()
    ) -> None:
        self._rules: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
        self.replace(readable, writable, denied)

    def replace(
        self, readable: Iterable[str], writable: Iterable[str], denied: Iterable[str] = ()
    ) -> None:
        """New grants; one attribute store, so threads see the old or the new set, whole."""
        write = tuple(sorted({_prefix(p) for p in writable}))
        read = tuple(sorted({_prefix(p) for p in readable} | set(write)))
        self._rules = (read, write, tuple(sorted({_prefix(p) for p in denied})))

    @property
    def readable(self) -> tuple[str, ...]:
        return self._rules[0]

    @property
    def writable(self) -> tuple[str, ...]:
        return self._rules[1]

    @property
    def denied(self) -> tuple[str, ...]:
        return self._rules[2]

    def allows(self, path: str, need: Need) -> bool:
        read, write, denied = self._rules
        prefixes = write if need == "rw" else read
        target = _prefix(path)
        if any(target.startswith(prefix) for prefix in denied):
            return False
        return any(target.startswith(prefix) for prefix in prefixes)

    def __call__(self, path: str, need: Need) -> bool:
        return self.allows(path, need)

    def check(self, path: str, need: Need) -> None:
        """Raise ``AccessDenied`` unless ``path`` is granted for ``need``."""
        if not self.allows(path, need):
            verb = "read" if need == "r" else "write"
            raise AccessDenied(f"You do not have permission to {verb} '{path}'")

    def to_doc(self) -> dict[str, list[str]]:
        """The guard as JSON, for agents and data grants (``from_doc`` reads it back)."""
        read, write, denied = self._rules
        return {"readable": list(read), "writable": list(write), "denied": list(denied)}

    @classmethod
    def from_doc(cls, doc: Any) -> AccessGuard:
        """A guard from ``to_doc``'s JSON; ValueError when it is not one."""
        if not isinstance(doc, dict):
            raise ValueError("an access guard is a JSON object")
        lists = [doc.get(name, []) for name in ("readable", "writable", "denied")]
        if not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in lists):
            raise ValueError("an access guard's paths are lists of strings")
        return cls(*lists)

    def __getstate__(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        return self._rules

    def __setstate__(self, state: tuple[tuple[str, ...], ...]) -> None:
        read, write, *rest = state
        self._rules = (read, write, rest[0] if rest else ())

    def __repr__(self) -> str:
        read, write, denied = self._rules
        return f"AccessGuard(readable={read!r}, writable={write!r}, denied={denied!r})"


def with_guard(connector: Connector, guard: AccessGuard | None) -> Connector:
    """``connector`` enforcing ``guard`` (unchanged when None).

    Connectors that resolve links themselves (POSIX) apply it natively through
    ``use_guard``; stores without links (memory, S3) get the logical-path wrapper, since there
    a logical path is its resolved location.
    """
    if guard is None:
        return connector
    use_guard = getattr(connector, "use_guard", None)
    if use_guard is not None:
        use_guard(guard)
        return connector
    return GuardedConnector(connector, guard)


class _LogicalGuard:
    """A guard applied to canonical logical paths (``/a//b/`` and ``/a/./b`` are ``/a/b``;
    ``..`` is refused as a malformed path before any grant is consulted)."""

    def __init__(self, guard: AccessGuard) -> None:
        self.guard = guard

    def check(self, path: str, need: Need) -> None:
        self.guard.check(normalize(path), need)


class GuardedConnector:
    """Checks every path of every operation against a guard, then delegates."""

    def __init__(self, inner: Connector, guard: AccessGuard) -> None:
        self.inner = inner
        self._logical = _LogicalGuard(guard)
        self.capabilities: Capabilities = inner.capabilities

    async def stat(self, path: str) -> FileInfo:
        self._logical.check(path, "r")
        return await self.inner.stat(path)

    async def list(self, path: str) -> AsyncIterator[FileInfo]:
        self._logical.check(path, "r")
        async for info in self.inner.list(path):
            yield info

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        self._logical.check(path, "rw")
        await self.inner.mkdir(path, parents=parents, exist_ok=exist_ok)

    async def rename(self, old: str, new: str) -> None:
        self._logical.check(old, "rw")
        self._logical.check(new, "rw")
        await self.inner.rename(old, new)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        self._logical.check(path, "rw")
        await self.inner.delete(path, recursive=recursive)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        self._logical.check(path, "r")
        return await self.inner.read(path, offset, length)

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        self._logical.check(path, "rw")
        return await self.inner.begin_write(path, size, resume=resume, temp_key=temp_key)

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        # The temporary object sits beside its target (same directory), both logical paths.
        self._logical.check(state.target or state.temp_path, "rw")
        await self.inner.write(state, offset, data)

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        self._logical.check(path, "rw")
        await self.inner.commit_write(state, path, mtime=mtime)

    async def abort_write(self, state: WriteState) -> None:
        # Removing our own temporary object is always allowed: a revoked grant must not
        # leave half-written uploads behind.
        await self.inner.abort_write(state)

    async def set_mtime(self, path: str, mtime: float) -> None:
        self._logical.check(path, "rw")
        setter: Any = getattr(self.inner, "set_mtime", None)
        if setter is not None:
            await setter(path, mtime)

    async def checksum(self, path: str, algorithm: str) -> str | None:
        self._logical.check(path, "r")
        return await self.inner.checksum(path, algorithm)

    async def close(self) -> None:
        await self.inner.close()
