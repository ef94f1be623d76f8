"""A connector for a collection on another agent, reached over the data channel.

The agent running a transfer's job opens the other side's collection with this connector:
TLS to the peer's announced address, its certificate pinned by fingerprint, a task
credential on every connection. Up to ``streams`` connections are open at once, so the
copier's parallel chunks of a large file travel over parallel TCP streams, and calls are
pipelined on them (``connect/links.py``). A broken connection is a transient error: the
copier retries, and resumes from its last durable point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator
from typing import Any

from arctern.connect.agent_connector import file_info_from
from arctern.connect.datachannel import (
    ChannelError,
    failure_from_wire,
    fingerprint_of,
    job_to_wire,
    read_frame,
    use_congestion_control,
    write_frame,
)
from arctern.connect.links import CALL_TIMEOUT, Link, LinkPool
from arctern.connect.relay import ERROR_KINDS
from arctern.connectors.base import Capabilities, FileInfo, WriteState
from arctern.connectors.errors import ConnectorError, PermissionDenied, TransientError
from arctern.engine.checksums import ALGORITHMS
from arctern.engine.local import SmallRead, SmallWrite
from arctern.engine.options import FileJob

# Module-level names: inside the class, ``list`` is the listing method.
ReadWork = list[tuple[FileJob, str | None]]
ReadOutcomes = list[SmallRead | BaseException]
WriteWork = list[SmallWrite]
WriteOutcomes = list[BaseException | None]
Spans = list[tuple[int, int]]
Fingerprints = list[bytes]

CONNECT_TIMEOUT = 20.0


# Calls that move file data: at most ``streams`` of a connector's run at once (each may hold
# a chunk in memory on both ends). The others (mkdir, stat, checksum, ...) carry little and
# are pipelined on the links without that bound, which their callers set: a plan's mkdirs
# (``worker.executor.DIRECTORIES_IN_FLIGHT``) or a group's sync checks would otherwise take a
# round trip per four.
_DATA_OPERATIONS = frozenset({"read", "write", "read_small", "write_small", "fingerprints"})


class RemoteConnector:
    # The peer computes a checksum on its own disk (``dataserver``): a sync at level 3 does
    # not bring the file across. A peer from before that answers None, and the copier reads.
    # Only for files it reads well within a call's time limit (``CALL_TIMEOUT``), even with
    # a few such calls queued on the link before it; larger ones are read chunk by chunk.
    capabilities = Capabilities(
        write_at_offset=True,
        rename=True,
        set_mtime=True,
        local_path=False,
        native_checksums=ALGORITHMS,
        native_checksum_max_size=256 << 20,
    )

    def __init__(
        self,
        address: str,
        fingerprint: str,
        token: str,
        streams: int = 4,
        *,
        small_files: bool = True,
        links: LinkPool | None = None,
        link_key: str | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.fingerprint = fingerprint
        self.token = token
        # Whether the peer takes groups of small files per frame (its collection is POSIX).
        self.small_files = small_files
        self._streams = max(1, streams)
        self._slots = asyncio.Semaphore(self._streams)
        # Links shared with the task's other jobs under the grant's key (see ``LinkPool``),
        # or this connector's own.
        shared = links if link_key else None
        self._pool = shared or LinkPool()
        self._own_pool = shared is None
        self._pool_key = f"{self.host}:{self.port}/{fingerprint}/{link_key}"

    @classmethod
    def from_options(
        cls, options: dict[str, Any], links: LinkPool | None = None
    ) -> RemoteConnector:
        """From the options of a ``remote`` collection view (``connect.work.as_seen_from``);
        ``links``: the pool to share data connections in with the task's other jobs."""
        key = options.get("link_key")
        return cls(
            str(options["address"]),
            str(options["fingerprint"]),
            str(options["token"]),
            int(options.get("streams", 4)),
            small_files=bool(options.get("small_files", True)),
            links=links,
            link_key=key if isinstance(key, str) and key else None,
        )

    async def _open(self) -> Link:
        # The peer's self-signed certificate is pinned below, by the fingerprint the
        # deployment relayed from it; there is no certificate authority to check names. A
        # bare context, not ``create_default_context``: that loads the system's CA store
        # (~20 ms of this event loop's time per connection) for nothing.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=context), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            where = f"{self.host}:{self.port}"
            raise TransientError(f"cannot reach the peer agent at {where}: {exc}") from None
        link = Link(reader, writer)
        use_congestion_control(writer)  # this side sends when it pushes
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der or fingerprint_of(der) != self.fingerprint:
            await link.close()
            raise PermissionDenied("the peer agent's certificate is not the one it announced")
        try:
            await write_frame(writer, {"op": "hello", "token": self.token})
            answer, _ = await asyncio.wait_for(read_frame(reader), CONNECT_TIMEOUT)
        except (ChannelError, OSError, TimeoutError) as exc:
            await link.close()
            raise TransientError(f"the peer agent closed the data connection: {exc}") from None
        if "error" in answer:
            await link.close()
            raise PermissionDenied("the peer agent refused this task's data credential")
        return link

    async def _call(
        self, op: str, payload: bytes | memoryview = b"", **args: Any
    ) -> tuple[Any, bytes]:
        if op in _DATA_OPERATIONS:
            async with self._slots:
                return await self._exchange(op, payload, args)
        return await self._exchange(op, payload, args)

    async def _exchange(
        self, op: str, payload: bytes | memoryview, args: dict[str, Any]
    ) -> tuple[Any, bytes]:
        link = await self._pool.acquire(self._pool_key, self._open, limit=self._streams)
        try:
            answer, data = await link.call({"op": op, **args}, payload, timeout=CALL_TIMEOUT)
        except ChannelError as exc:
            raise TransientError(f"data connection to the peer agent failed: {exc}") from None
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            cls = ERROR_KINDS.get(str(error.get("kind")), ConnectorError)
            raise cls(str(error.get("message", "")))
        return answer.get("ok"), data

    async def stat(self, path: str) -> FileInfo:
        result, _ = await self._call("stat", path=path)
        return file_info_from(result)

    async def list(self, path: str) -> AsyncIterator[FileInfo]:
        result, _ = await self._call("list", path=path)
        if not isinstance(result, list):
            raise ConnectorError("the peer agent sent a malformed listing")
        for raw in result:
            yield file_info_from(raw)

    async def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        await self._call("mkdir", path=path, parents=parents, exist_ok=exist_ok)

    async def rename(self, old: str, new: str) -> None:
        await self._call("rename", old=old, new=new)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        await self._call("delete", path=path, recursive=recursive)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        _, data = await self._call("read", path=path, offset=offset, length=length)
        return data

    async def begin_write(
        self,
        path: str,
        size: int,
        *,
        resume: WriteState | None = None,
        temp_key: str | None = None,
    ) -> WriteState:
        result, _ = await self._call(
            "begin_write",
            path=path,
            size=size,
            resume=dataclasses.asdict(resume) if resume else None,
            temp_key=temp_key,
        )
        try:
            return WriteState(**result)
        except TypeError:
            raise ConnectorError("the peer agent sent a malformed write state") from None

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        await self._call("write", data, state=dataclasses.asdict(state), offset=offset)

    async def commit_write(
        self, state: WriteState, path: str, *, mtime: float | None = None
    ) -> None:
        await self._call("commit_write", state=dataclasses.asdict(state), path=path, mtime=mtime)

    async def abort_write(self, state: WriteState) -> None:
        with contextlib.suppress(TransientError):
            await self._call("abort_write", state=dataclasses.asdict(state))

    # -- groups of small files (``arctern.engine.small.SmallFileEnd``): one frame each way --

    async def read_small(self, work: ReadWork) -> ReadOutcomes:
        files = [job_to_wire(job, algorithm) for job, algorithm in work]
        answers, payload = await self._call("read_small", files=files)
        if not isinstance(answers, list) or len(answers) != len(work):
            raise ConnectorError("the peer agent sent a malformed group of files")
        outcomes: ReadOutcomes = []
        at = 0
        for answer in answers:
            if not isinstance(answer, dict):
                raise ConnectorError("the peer agent sent a malformed group of files")
            if "error" in answer:
                outcomes.append(failure_from_wire(answer["error"], ERROR_KINDS))
                continue
            size = int(answer.get("size", -1))
            if size < 0 or at + size > len(payload):
                raise ConnectorError("the peer agent sent a malformed group of files")
            checksum = answer.get("checksum")
            outcomes.append((payload[at : at + size], None if checksum is None else str(checksum)))
            at += size
        return outcomes

    async def write_small(
        self, work: WriteWork, *, verify: bool, preserve_timestamp: bool
    ) -> WriteOutcomes:
        files = [
            job_to_wire(job, algorithm, checksum=checksum) for job, _d, algorithm, checksum in work
        ]
        payload = b"".join(data for _job, data, _algorithm, _checksum in work)
        answers, _ = await self._call(
            "write_small",
            payload,
            files=files,
            verify=verify,
            preserve_timestamp=preserve_timestamp,
        )
        if not isinstance(answers, list) or len(answers) != len(work):
            raise ConnectorError("the peer agent sent a malformed group of files")
        return [
            None
            if answer is None
            else failure_from_wire(
                answer.get("error") if isinstance(answer, dict) else None, ERROR_KINDS
            )
            for answer in answers
        ]

    async def fingerprints(self, path: str, spans: Spans) -> Fingerprints:
        """Read-back fingerprints of written ranges, computed by the peer on its own disk
        (``engine.copier.RangeFingerprints``): verification does not send the data back."""
        result, _ = await self._call("fingerprints", path=path, spans=[list(s) for s in spans])
        if not isinstance(result, list) or not all(isinstance(h, str) for h in result):
            raise ConnectorError("the peer agent sent malformed fingerprints")
        try:
            return [bytes.fromhex(h) for h in result]
        except ValueError:
            raise ConnectorError("the peer agent sent malformed fingerprints") from None

    def use_guard(self, guard: object) -> None:
        """Nothing to add here: the serving side enforces the grants the task credential
        carries (the same guard), on the paths as it resolves them."""

    async def checksum(self, path: str, algorithm: str) -> str | None:
        result, _ = await self._call("checksum", path=path, algorithm=algorithm)
        return None if result is None else str(result)

    async def close(self) -> None:
        # Shared links stay in the task's pool for its next job (they close when idle).
        if self._own_pool:
            await self._pool.close()
