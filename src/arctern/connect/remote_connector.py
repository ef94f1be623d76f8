"""A connector for a collection on another agent, reached over the data channel.

The agent running a transfer's job opens the other side's collection with this connector:
TLS to the peer's announced address, its certificate pinned by fingerprint, a task
credential on every connection. Up to ``streams`` connections are open at once, so the
copier's parallel chunks of a large file travel over parallel TCP streams. A broken
connection is a transient error: the copier retries, and resumes from its last durable point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
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
from arctern.connect.relay import ERROR_KINDS
from arctern.connectors.base import Capabilities, FileInfo, WriteState
from arctern.connectors.errors import ConnectorError, PermissionDenied, TransientError
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
CALL_TIMEOUT = 120.0


class _Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class LinkPool:
    """Data connections kept open from one job of a task to the next.

    Each job (a task's plan, each of its batches) opens its own connector; without this pool
    every job would pay a TCP and a TLS handshake and the peer's check of the credential with
    the deployment (0.2-0.4 s across a 50 ms link) and start again in TCP slow start. A link
    is kept under the key of the grant it was opened with (``link_key``: the task, the
    collection, the serving endpoint and the access rules, not the credential's expiry), so
    it is only ever used again with the same authority. A task's next job starts within a
    round trip or two of the last one's end, so idle links close after ``idle_seconds``:
    the peer does not hold the connections of finished tasks for long.
    """

    def __init__(self, idle_seconds: float = 3.0, per_key: int = 8) -> None:
        self.idle_seconds = idle_seconds
        self.per_key = per_key
        self._idle: dict[str, list[tuple[float, _Link]]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def take(self, key: str) -> _Link | None:
        """An idle link opened under ``key`` that still looks open, if any."""
        self._expire()
        entries = self._idle.get(key, [])
        while entries:
            _since, link = entries.pop()
            if not link.reader.at_eof() and not link.writer.is_closing():
                return link
            link.writer.close()
        return None

    def give(self, key: str, links: list[_Link]) -> None:
        """Keep ``links`` (idle, in a known state) for the next job under ``key``."""
        now = time.monotonic()
        entries = self._idle.setdefault(key, [])
        entries.extend((now, link) for link in links)
        while len(entries) > self.per_key:
            _since, extra = entries.pop(0)
            extra.writer.close()
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self.idle_seconds, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self._expire()
        if self._idle:
            self._sweep = asyncio.get_running_loop().call_later(self.idle_seconds, self._swept)

    def _expire(self) -> None:
        limit = time.monotonic() - self.idle_seconds
        for key, entries in list(self._idle.items()):
            for since, link in list(entries):
                if since <= limit:
                    entries.remove((since, link))
                    link.writer.close()
            if not entries:
                del self._idle[key]

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        entries = [link for links in self._idle.values() for _since, link in links]
        self._idle.clear()
        for link in entries:
            await link.close()


class RemoteConnector:
    capabilities = Capabilities(write_at_offset=True, rename=True, set_mtime=True, local_path=False)

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
        self._idle: list[_Link] = []
        self._slots = asyncio.Semaphore(max(1, streams))
        # Links shared with the task's other jobs (see ``LinkPool``), under this key.
        self._pool = links if link_key else None
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

    async def _link(self) -> _Link:
        """An idle link (this connector's, or any of the task's jobs' with a pool), or a new
        one."""
        if self._pool is not None:
            return self._pool.take(self._pool_key) or await self._open()
        return self._idle.pop() if self._idle else await self._open()

    def _put_back(self, link: _Link) -> None:
        # Pooled links go back at once: a job running beside this one (the plan and its
        # first batch) need not open a connection while this one's link sits idle.
        if self._pool is not None:
            self._pool.give(self._pool_key, [link])
        else:
            self._idle.append(link)

    async def _open(self) -> _Link:
        context = ssl.create_default_context()
        # The peer's self-signed certificate is pinned below, by the fingerprint the
        # deployment relayed from it; there is no certificate authority to check names.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=context), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            where = f"{self.host}:{self.port}"
            raise TransientError(f"cannot reach the peer agent at {where}: {exc}") from None
        link = _Link(reader, writer)
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
        async with self._slots:
            link = await self._link()
            try:
                await write_frame(link.writer, {"op": op, **args}, payload)
                answer, data = await asyncio.wait_for(read_frame(link.reader), CALL_TIMEOUT)
            except (ChannelError, OSError, TimeoutError) as exc:
                await link.close()
                raise TransientError(f"data connection to the peer agent failed: {exc}") from None
            self._put_back(link)
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
        links, self._idle = self._idle, []  # pooled links are in the pool already
        for link in links:
            await link.close()
