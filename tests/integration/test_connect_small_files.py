"""Small files over the data channel travel in groups: one frame each way per group.

A real ``DataServer`` (TLS on loopback, its certificate pinned) serves a POSIX root; the
engine's ``Copier`` copies between it and a local POSIX root through ``RemoteConnector``,
pushing and pulling. The number of requests the server answers shows the pipelining: a
hundred small files cost a handful of frames, not several per file. Failures stay per file:
an unreadable source file or an unwritable destination fails that file alone (and is
retried one by one, as the engine does), and bytes corrupted in transit are caught.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arctern.connect import dataserver
from arctern.connect.agent.home import AgentConfig, AgentHome, LocalCollection
from arctern.connect.dataserver import DataServer
from arctern.connect.remote_connector import LinkPool, RemoteConnector
from arctern.connectors.base import Connector
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.copier import Copier, CopyResult, FileFailed, RetryPolicy
from arctern.engine.errors import CancelToken
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink

COLLECTION = "c0ffee00-0000-4000-8000-000000000001"
FILES = 100


@dataclass
class Channel:
    remote_root: Path
    local_root: Path
    address: str
    fingerprint: str
    requests: list[str]
    connections: list[str]  # the credential of each data connection the server accepted


@pytest.fixture
async def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Channel]:
    remote_root, local_root = tmp_path / "remote", tmp_path / "local"
    remote_root.mkdir()
    local_root.mkdir()
    home = AgentHome(tmp_path / "home")
    home.create()
    home.save_config(
        AgentConfig(
            deployment_url="https://deployment.invalid",
            endpoint_id="e",
            display_name="DTN",
            owner="owner@example.edu",
            collections=[LocalCollection(COLLECTION, "data", str(remote_root))],
        )
    )

    connections: list[str] = []

    async def open_collection(token: str) -> Connector | None:
        connections.append(token)
        return PosixConnector(str(remote_root)) if token.startswith("adt_good") else None

    requests: list[str] = []
    run = dataserver._run

    async def counting(connector: Any, request: dict[str, Any], payload: bytes) -> Any:
        requests.append(str(request.get("op")))
        return await run(connector, request, payload)

    monkeypatch.setattr(dataserver, "_run", counting)
    server = DataServer(open_collection, *home.data_certificate())
    address = await server.start("127.0.0.1", 0)
    yield Channel(remote_root, local_root, address, server.fingerprint, requests, connections)
    await server.stop()


def dataset(root: Path, count: int = FILES) -> dict[str, bytes]:
    (root / "set").mkdir()
    files = {f"set/f{i:03}.dat": os.urandom(100 + 37 * i) for i in range(count)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def jobs_for(files: dict[str, bytes], root: Path) -> list[FileJob]:
    return [
        FileJob(
            f"/{name}",
            f"/copy/{name}",
            len(data),
            (root / name).stat().st_mtime,
            checksum_algorithm="MD5",
            key=index,
        )
        for index, (name, data) in enumerate(files.items())
    ]


async def copy_all(
    copier: Copier, jobs: list[FileJob]
) -> list[CopyResult | FileFailed | BaseException]:
    assert all(copier.groupable(job, None) for job in jobs)
    assert copier.group_parallelism
    return list(await copier.copy_group(jobs))


def copier_for(channel: Channel, *, push: bool, sink: MemorySink) -> Copier:
    remote = RemoteConnector(channel.address, channel.fingerprint, "adt_good", streams=4)
    local = PosixConnector(str(channel.local_root))
    source, destination = (local, remote) if push else (remote, local)
    return Copier(
        source,
        destination,
        TransferOptions(verify_checksum=True, preserve_timestamp=True),
        sink,
        CancelToken(),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )


@pytest.mark.parametrize("push", [True, False], ids=["push", "pull"])
async def test_a_group_of_small_files_costs_one_frame_each_way(
    channel: Channel, push: bool
) -> None:
    source_root, destination_root = (
        (channel.local_root, channel.remote_root)
        if push
        else (channel.remote_root, channel.local_root)
    )
    (destination_root / "copy" / "set").mkdir(parents=True)
    files = dataset(source_root)
    sink = MemorySink()
    copier = copier_for(channel, push=push, sink=sink)
    try:
        outcomes = await copy_all(copier, jobs_for(files, source_root))
    finally:
        await copier.source.close()
        await copier.destination.close()

    assert all(isinstance(o, CopyResult) and o.status == "done" for o in outcomes), outcomes
    assert [o.checksum for o in outcomes if isinstance(o, CopyResult)] == [
        __import__("hashlib").md5(data).hexdigest() for data in files.values()
    ]
    for name, data in files.items():
        copied = destination_root / "copy" / name
        assert copied.read_bytes() == data
        assert copied.stat().st_mtime == pytest.approx((source_root / name).stat().st_mtime)
    assert not [p for p in (destination_root / "copy" / "set").iterdir() if p.name[0] == "."]
    assert sink.bytes_transferred == sum(map(len, files.values()))
    # One frame for the whole group (plus the connection's greeting, not counted here).
    assert channel.requests == ["write_small" if push else "read_small"]


async def test_failures_stay_per_file(channel: Channel) -> None:
    """Pull: after planning, one source file shrinks and one disappears; push: one
    destination name is a directory. The others arrive; the failed ones are retried alone
    and fail with their own codes."""
    files = dataset(channel.remote_root, 10)
    jobs = jobs_for(files, channel.remote_root)
    (channel.remote_root / "set" / "f003.dat").write_bytes(b"shorter")
    (channel.remote_root / "set" / "f005.dat").unlink()
    (channel.local_root / "copy" / "set").mkdir(parents=True)
    sink = MemorySink()
    copier = copier_for(channel, push=False, sink=sink)
    try:
        outcomes = await copy_all(copier, jobs)
    finally:
        await copier.source.close()
    failed = {
        job: o.code for job, o in zip(files, outcomes, strict=True) if isinstance(o, FileFailed)
    }
    assert failed == {"set/f003.dat": "FILE_SIZE_CHANGED", "set/f005.dat": "FILE_NOT_FOUND"}
    for name in set(files) - set(failed):
        assert (channel.local_root / "copy" / name).read_bytes() == files[name]
    assert all(o.source_side for o in outcomes if isinstance(o, FileFailed))

    # Push: the destination name of one file is taken by a directory.
    channel.requests.clear()
    pushed = {f"set/f{i:03}.dat": os.urandom(64) for i in range(20, 25)}
    (channel.local_root / "set").mkdir()
    for name, data in pushed.items():
        (channel.local_root / name).write_bytes(data)
    (channel.remote_root / "copy" / "set" / "f022.dat").mkdir(parents=True)
    copier = copier_for(channel, push=True, sink=MemorySink())
    try:
        outcomes = await copy_all(copier, jobs_for(pushed, channel.local_root))
    finally:
        await copier.destination.close()
    assert [type(o).__name__ for o in outcomes] == [
        "CopyResult",
        "CopyResult",
        "FileFailed",
        "CopyResult",
        "CopyResult",
    ], outcomes
    assert channel.requests[0] == "write_small"
    assert len(channel.requests) > 1  # the failed file was tried again on its own


async def test_bytes_changed_in_transit_are_caught(
    channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that alters the bytes it sends (while reporting the source's checksum) is
    caught before anything is renamed into place; the file is sent again one by one."""
    files = dataset(channel.remote_root, 5)
    (channel.local_root / "copy" / "set").mkdir(parents=True)
    honest = RemoteConnector.read_small
    tampered: list[int] = []

    async def tampering(self: RemoteConnector, work: Any) -> Any:
        outcomes = await honest(self, work)
        data, checksum = outcomes[2]
        tampered.append(1)
        outcomes[2] = (bytes([data[0] ^ 0xFF]) + data[1:], checksum)
        return outcomes

    monkeypatch.setattr(RemoteConnector, "read_small", tampering)
    sink = MemorySink()
    copier = copier_for(channel, push=False, sink=sink)
    try:
        outcomes = await copy_all(copier, jobs_for(files, channel.remote_root))
    finally:
        await copier.source.close()
    assert tampered == [1]
    assert all(isinstance(o, CopyResult) for o in outcomes), outcomes
    assert "VERIFY_CHECKSUM" in sink.fault_codes
    for name, data in files.items():
        assert (channel.local_root / "copy" / name).read_bytes() == data


async def test_a_malformed_group_is_refused_without_writing(channel: Channel) -> None:
    """Sizes that do not add up to the payload: the connection is dropped, nothing lands."""
    remote = RemoteConnector(channel.address, channel.fingerprint, "adt_good")
    try:
        with pytest.raises(Exception, match="data connection"):
            await remote._call(
                "write_small",
                b"short",
                files=[
                    {
                        "source_path": "/a",
                        "destination_path": "/a",
                        "size": 100,
                        "mtime": 0.0,
                        "algorithm": None,
                    }
                ],
            )
    finally:
        await remote.close()
    assert not (channel.remote_root / "a").exists()
    await asyncio.sleep(0)


async def test_a_pushed_large_file_is_verified_where_it_lands(
    channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushing with verification, the written chunks are read back and fingerprinted by the
    peer on its own disk: no data comes back over the link; a corrupted chunk there is caught
    and the file sent again."""
    data = os.urandom(20 << 20 | 12345)  # several 8 MiB chunks and a short tail
    (channel.local_root / "big.bin").write_bytes(data)
    (channel.remote_root / "copy").mkdir()
    job = FileJob(
        "/big.bin",
        "/copy/big.bin",
        len(data),
        (channel.local_root / "big.bin").stat().st_mtime,
        checksum_algorithm="MD5",
        key=1,
    )
    # The peer corrupts the first write it receives, once: read back, it differs.
    real_run = dataserver._run
    corrupted: list[int] = []

    async def corrupting(connector: Any, request: dict[str, Any], payload: bytes) -> Any:
        if request.get("op") == "write" and not corrupted:
            corrupted.append(int(request["offset"]))
            payload = bytes([payload[0] ^ 0xFF]) + payload[1:]
        return await real_run(connector, request, payload)

    monkeypatch.setattr(dataserver, "_run", corrupting)
    sink = MemorySink()
    copier = copier_for(channel, push=True, sink=sink)
    try:
        result = await copier.copy(job)
    finally:
        await copier.destination.close()
    assert isinstance(result, CopyResult) and result.status == "done", result
    assert (channel.remote_root / "copy" / "big.bin").read_bytes() == data
    assert corrupted and sink.faults >= 1
    assert "fingerprints" in channel.requests
    assert "read" not in channel.requests  # nothing was sent back to be checked here


async def test_the_jobs_of_a_task_share_their_data_connections(channel: Channel) -> None:
    """Each job's connector opens links only when the pool has none for the same grant."""
    (channel.local_root / "set").mkdir()
    (channel.local_root / "set" / "a.dat").write_bytes(b"a" * 10)
    pool = LinkPool(idle_seconds=30)

    def connector(token: str, grant: str | None, links: LinkPool | None = pool) -> Any:
        options = {"address": channel.address, "fingerprint": channel.fingerprint,
                   "token": token, "streams": 2, "link_key": grant}  # fmt: skip
        return RemoteConnector.from_options(options, links)

    async def one_job(remote: RemoteConnector) -> None:
        await remote.mkdir("/jobs", exist_ok=True)
        await remote.close()

    await one_job(connector("adt_good-1", "grant-A"))
    assert channel.connections == ["adt_good-1"]
    # The next job of the same task (a fresh credential, the same grant) uses the open link.
    await one_job(connector("adt_good-2", "grant-A"))
    assert channel.connections == ["adt_good-1"]
    # Another grant (other task, other rules) or no pool: a connection of its own.
    await one_job(connector("adt_good-3", "grant-B"))
    await one_job(connector("adt_good-4", "grant-A", links=None))
    await one_job(connector("adt_good-5", None))
    assert channel.connections == ["adt_good-1", "adt_good-3", "adt_good-4", "adt_good-5"]
    # A link the peer closed is not handed out again.
    (stale,) = pool._idle[next(k for k in pool._idle if k.endswith("grant-B"))]
    stale[1].writer.close()
    await one_job(connector("adt_good-6", "grant-B"))
    assert channel.connections[-1] == "adt_good-6"
    # Idle links close after the pool's idle time.
    pool.idle_seconds = 0
    assert pool.take(next(iter(pool._idle))) is None
    assert pool._idle == {}
    await pool.close()
