"""Test-only wrapper that makes a connector misbehave: transient errors and corrupted writes.

Enabled only through ``settings.fault_injection`` (e.g.
``"read_error=0.05,write_error=0.05,flip=0.01,seed=1"``); never in production.

Whether an operation fails is decided by a hash of the seed, the kind of operation, its path
and offset, and how many times that same operation was tried before, so the n-th read of a
given chunk meets the same fate on every run, whatever order concurrent files happen to be
scheduled in. A single random stream does not do: consumed in scheduling order, it handed
the long run of faults to a different file on each run; and the source and destination
injectors, built from the same seed, drew the very same numbers, so one low number failed a
read and then again a write (a seeded test passed on a quiet machine and failed about one
run in ten under load). Here the two sides only share numbers for the same path, and a
file's source path and temporary destination name differ.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.base import Capabilities, Connector, FileInfo, WriteState
from arctern.connectors.errors import TransientError


@dataclass(frozen=True)
class FaultSpec:
    read_error: float = 0.0  # probability that a read raises TransientError
    write_error: float = 0.0  # probability that a write raises TransientError
    flip: float = 0.0  # probability that a written chunk has one byte flipped
    seed: int | None = None


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``key=value,…``; unknown keys are an error so typos do not silently disable."""
    values: dict[str, float] = {}
    seed: int | None = None
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, raw = item.partition("=")
        key = key.strip()
        if key == "seed":
            seed = int(raw)
        elif key in ("read_error", "write_error", "flip"):
            values[key] = float(raw)
        else:
            raise ValueError(f"unknown fault injection key {key!r}")
    return FaultSpec(seed=seed, **values)


class FaultInjectingConnector:
    """Delegates to ``inner``, injecting faults at the configured rates."""

    def __init__(self, inner: Connector, spec: FaultSpec) -> None:
        self.inner = inner
        self.spec = spec
        self.capabilities: Capabilities = inner.capabilities
        self._salt = spec.seed if spec.seed is not None else secrets.randbits(64)
        self._tries: Counter[tuple[str, str, int]] = Counter()
        self.injected_read_errors = 0
        self.injected_write_errors = 0
        self.flipped_writes = 0

    def use_guard(self, guard: AccessGuard) -> None:
        """Guard the wrapped connector itself, so a POSIX one still checks resolved paths."""
        self.inner = with_guard(self.inner, guard)

    def _draw(self, kind: str, path: str, offset: int) -> float:
        """A uniform number in [0, 1) for this try of (``kind``, ``path``, ``offset``)."""
        key = (kind, path, offset)
        tried = self._tries[key]
        self._tries[key] = tried + 1
        text = f"{self._salt}\0{kind}\0{path}\0{offset}\0{tried}"
        value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        return value / 2**64

    def _roll(self, probability: float, kind: str, path: str, offset: int) -> bool:
        return probability > 0 and self._draw(kind, path, offset) < probability

    async def stat(self, path: str) -> FileInfo:
        return await self.inner.stat(path)

    def list(self, path: str) -> AsyncIterator[FileInfo]:
        return self.inner.list(path)

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        await self.inner.mkdir(path, parents=parents, exist_ok=exist_ok)

    async def rename(self, old: str, new: str) -> None:
        await self.inner.rename(old, new)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        await self.inner.delete(path, recursive=recursive)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if self._roll(self.spec.read_error, "read", path, offset):
            self.injected_read_errors += 1
            raise TransientError(f"injected read error: {path}")
        return await self.inner.read(path, offset, length)

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        return await self.inner.begin_write(path, size, resume=resume, temp_key=temp_key)

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        path = state.temp_path
        if self._roll(self.spec.write_error, "write", path, offset):
            self.injected_write_errors += 1
            raise TransientError(f"injected write error: {path}")
        if len(data) and self._roll(self.spec.flip, "flip", path, offset):
            self.flipped_writes += 1
            corrupted = bytearray(data)
            index = int(self._draw("flip-at", path, offset) * len(corrupted))
            corrupted[index] ^= 0xFF
            data = bytes(corrupted)
        await self.inner.write(state, offset, data)

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        await self.inner.commit_write(state, path, mtime=mtime)

    async def abort_write(self, state: WriteState) -> None:
        await self.inner.abort_write(state)

    async def set_mtime(self, path: str, mtime: float) -> None:
        setter = getattr(self.inner, "set_mtime", None)
        if setter is not None:
            await setter(path, mtime)

    async def checksum(self, path: str, algorithm: str) -> str | None:
        return await self.inner.checksum(path, algorithm)

    async def close(self) -> None:
        await self.inner.close()
