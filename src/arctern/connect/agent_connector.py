"""A connector for a collection served by an agent: each operation is relayed to it.

Only the metadata operations of the control channel exist in this slice (stat, list, mkdir,
rename, delete); reading and writing file data needs the data channel, which is not built
yet, so transfers involving agent collections are refused at submission.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

from arctern.connect.relay import relay
from arctern.connectors.access import AccessGuard
from arctern.connectors.base import Capabilities, FileInfo, WriteState
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext

DATA_PLANE_MISSING = "moving file data to or from an Arctern Connect endpoint is not available yet"


class DataPlaneUnavailable(ConnectorError):
    code = "NOT_SUPPORTED"


def file_info_from(raw: dict[str, Any]) -> FileInfo:
    fields = {f.name for f in dataclasses.fields(FileInfo)}
    try:
        return FileInfo(**{k: v for k, v in raw.items() if k in fields})
    except TypeError as exc:
        raise ConnectorError(f"The agent sent a malformed file entry: {exc}") from None


class AgentConnector:
    capabilities = Capabilities(
        write_at_offset=False, rename=True, set_mtime=False, local_path=False
    )

    def __init__(self, ctx: AppContext, collection_id: uuid.UUID) -> None:
        self.ctx = ctx
        self.collection_id = collection_id
        self.guard: AccessGuard | None = None

    def use_guard(self, guard: AccessGuard) -> None:
        """The caller's grants travel with every relayed operation; the agent enforces them
        on the location each path resolves to, as the POSIX connector does centrally."""
        self.guard = guard

    async def _call(self, op: str, **args: Any) -> Any:
        guard = None if self.guard is None else self.guard.to_doc()
        return await relay(self.ctx, self.collection_id, {"op": op, "guard": guard, **args})

    async def stat(self, path: str) -> FileInfo:
        return file_info_from(await self._call("stat", path=path))

    async def list(self, path: str) -> AsyncIterator[FileInfo]:
        entries = await self._call("list", path=path)
        if not isinstance(entries, list):
            raise ConnectorError("The agent sent a malformed listing")
        for raw in entries:
            yield file_info_from(raw)

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        await self._call("mkdir", path=path, parents=parents, exist_ok=exist_ok)

    async def rename(self, old: str, new: str) -> None:
        await self._call("rename", old=old, new=new)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        await self._call("delete", path=path, recursive=recursive)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        raise DataPlaneUnavailable(DATA_PLANE_MISSING)

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        raise DataPlaneUnavailable(DATA_PLANE_MISSING)

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        raise DataPlaneUnavailable(DATA_PLANE_MISSING)

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        raise DataPlaneUnavailable(DATA_PLANE_MISSING)

    async def abort_write(self, state: WriteState) -> None:
        return None

    async def checksum(self, path: str, algorithm: str) -> str | None:
        return None

    async def close(self) -> None:
        return None
