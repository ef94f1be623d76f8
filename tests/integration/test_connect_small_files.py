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
import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arctern.connect import dataserver
from arctern.connect.agent.home import AgentConfig, AgentHome, LocalCollection
from arctern.connect.dataserver import DataServer
from arctern.connect.links import Link, LinkPool
from arctern.connect.remote_connector import RemoteConnector
from arctern.connectors.base import Connector
from arctern.connectors.errors import PermissionDenied, TransientError
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.copier import Copier, CopyResult, FileFailed, Resume, RetryPolicy
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


def roots(channel: Channel, push: bool) -> tuple[Path, Path]:
    """The source and destination roots of a push (local to remote) or a pull."""
    if push:
        return channel.local_root, channel.remote_root
    return channel.remote_root, channel.local_root


def copier_for(
    channel: Channel, *, push: bool, sink: MemorySink, sync_level: int | None = None
) -> Copier:
    remote = RemoteConnector(channel.address, channel.fingerprint, "adt_good", streams=4)
    local = PosixConnector(str(channel.local_root))
    source, destination = (local, remote) if push else (remote, local)
    return Copier(
        source,
        destination,
        TransferOptions(verify_checksum=True, preserve_timestamp=True, sync_level=sync_level),
        sink,
        CancelToken(),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )


@pytest.mark.parametrize("push", [True, False], ids=["push", "pull"])
async def test_a_group_of_small_files_costs_one_frame_each_way(
    channel: Channel, push: bool
) -> None:
    source_root, destination_root = roots(channel, push)
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


@pytest.mark.parametrize("push", [True, False], ids=["push", "pull"])
async def test_a_sync_looks_up_a_groups_destinations_at_once(channel: Channel, push: bool) -> None:
    """Sync level 2 (size and modification time): the group's destinations are looked up
    together (pipelined on the links, not a round trip each), files found current are left
    untouched and reported as skipped, and the others still travel as one group."""
    source_root, destination_root = roots(channel, push)
    files = dataset(source_root, 12)
    copy = destination_root / "copy" / "set"
    copy.mkdir(parents=True)
    current = {"set/f001.dat", "set/f004.dat", "set/f009.dat"}
    for name in current:  # same size and time, other bytes: only a sync skip leaves them so
        (destination_root / "copy" / name).write_bytes(b"\0" * len(files[name]))
        when = (source_root / name).stat().st_mtime
        os.utime(destination_root / "copy" / name, (when, when))
    (copy / "f002.dat").write_bytes(b"\0" * len(files["set/f002.dat"]))  # same size, older
    os.utime(copy / "f002.dat", (1_000_000, 1_000_000))
    (copy / "f003.dat").write_bytes(b"short")  # other size
    sink = MemorySink()
    copier = copier_for(channel, push=push, sink=sink, sync_level=2)
    try:
        outcomes = await copy_all(copier, jobs_for(files, source_root))
    finally:
        await copier.source.close()
        await copier.destination.close()

    statuses = {
        name: o.status if isinstance(o, CopyResult) else repr(o)
        for name, o in zip(files, outcomes, strict=True)
    }
    assert statuses == {name: "skipped" if name in current else "done" for name in files}
    for name, data in files.items():
        landed = (destination_root / "copy" / name).read_bytes()
        assert landed == (b"\0" * len(data) if name in current else data), name
    assert sink.bytes_transferred == sum(len(files[name]) for name in set(files) - current)
    if push:  # a lookup of each destination, then the files to copy as one group
        assert sorted(channel.requests) == ["stat"] * 12 + ["write_small"]
    else:
        assert channel.requests == ["read_small"]


@pytest.mark.parametrize("push", [True, False], ids=["push", "pull"])
async def test_a_checksum_sync_compares_each_file_where_it_lies(
    channel: Channel, push: bool
) -> None:
    """Sync level 3: a file whose copy has the same checksum is left alone, one with other
    bytes (same size, same time) is copied. The remote side's checksums are computed by
    the peer on its own disk: no file is read across the link to be compared."""
    source_root, destination_root = roots(channel, push)
    files = dataset(source_root, 8)
    copy = destination_root / "copy" / "set"
    copy.mkdir(parents=True)
    same = {"set/f000.dat", "set/f005.dat"}
    for name, data in files.items():  # every copy has the source's size and time
        landed = destination_root / "copy" / name
        landed.write_bytes(data if name in same else bytes(len(data)))
        when = (source_root / name).stat().st_mtime
        os.utime(landed, (when, when))
    copier = copier_for(channel, push=push, sink=MemorySink(), sync_level=3)
    try:
        outcomes = await copy_all(copier, jobs_for(files, source_root))
    finally:
        await copier.source.close()
        await copier.destination.close()

    statuses = [o.status if isinstance(o, CopyResult) else repr(o) for o in outcomes]
    assert statuses == ["skipped" if name in same else "done" for name in files]
    for name, data in files.items():
        assert (destination_root / "copy" / name).read_bytes() == data
    assert "read" not in channel.requests
    assert channel.requests.count("checksum") == len(files)
    assert channel.requests.count("write_small" if push else "read_small") == 1


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


async def test_a_resumed_push_is_verified_by_the_peer(channel: Channel) -> None:
    """A push resumed after a crash (its first chunk already in the peer's temporary file)
    sends the rest, and the whole temporary file is then checksummed by the peer on its own
    disk: the part written before the crash is not read back across the link."""
    data = os.urandom(12 << 20)
    (channel.local_root / "big.bin").write_bytes(data)
    (channel.remote_root / "copy").mkdir()
    job = FileJob("/big.bin", "/copy/big.bin", len(data), 1.7e9, checksum_algorithm="MD5", key=1)
    first = RemoteConnector(channel.address, channel.fingerprint, "adt_good", streams=1)
    try:  # the job before the crash: one chunk written, its resume point kept
        state = await first.begin_write(job.destination_path, job.size, temp_key="k")
        await first.write(state, 0, data[: 8 << 20])
    finally:
        await first.close()
    channel.requests.clear()
    copier = copier_for(channel, push=True, sink=MemorySink())
    try:
        result = await copier.copy(job, Resume(8 << 20, state))
    finally:
        await copier.destination.close()
    assert isinstance(result, CopyResult) and result.status == "done", result
    assert (channel.remote_root / "copy" / "big.bin").read_bytes() == data
    assert channel.requests.count("write") == 1  # only the rest was sent
    assert "checksum" in channel.requests
    assert "read" not in channel.requests

    # A file larger than the peer checksums within a call's time limit is read back in
    # chunks instead, as before.
    state = await first.begin_write("/copy/again.bin", job.size, temp_key="k2")
    await first.write(state, 0, data[: 8 << 20])
    await first.close()
    channel.requests.clear()
    copier = copier_for(channel, push=True, sink=MemorySink())
    copier.destination.capabilities = dataclasses.replace(
        RemoteConnector.capabilities, native_checksum_max_size=1 << 20
    )
    again = dataclasses.replace(job, destination_path="/copy/again.bin")
    try:
        result = await copier.copy(again, Resume(8 << 20, state))
    finally:
        await copier.destination.close()
    assert isinstance(result, CopyResult) and result.status == "done", result
    assert (channel.remote_root / "copy" / "again.bin").read_bytes() == data
    assert "checksum" not in channel.requests and "read" in channel.requests


async def settled(condition: Any, what: str, timeout: float = 30.0) -> None:
    """Wait for links opened in the background to come up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def links_under(pool: LinkPool, grant: str) -> list[Link]:
    return [link for key in list(pool._links) if key.endswith(grant) for link in pool.links(key)]


def remote(channel: Channel, token: str, grant: str | None, pool: LinkPool | None,
           streams: int) -> RemoteConnector:  # fmt: skip
    options = {"address": channel.address, "fingerprint": channel.fingerprint,
               "token": token, "streams": streams, "link_key": grant}  # fmt: skip
    return RemoteConnector.from_options(options, pool)


async def test_the_jobs_of_a_task_share_their_data_connections(channel: Channel) -> None:
    """Each job's connector opens links only when the pool has none for the same grant; it
    then opens as many as it may use at once (``streams``), for itself and the next job."""
    pool = LinkPool(idle_seconds=30)

    async def one_job(
        token: str, grant: str | None, links: LinkPool | None = pool, streams: int = 2
    ) -> None:
        connector = remote(channel, token, grant, links, streams)
        await connector.mkdir("/jobs", exist_ok=True)
        await connector.close()

    await one_job("adt_good-1", "grant-A")
    await settled(lambda: len(links_under(pool, "grant-A")) == 2, "the second link")
    assert channel.connections == ["adt_good-1"] * 2
    # The next job of the same task (a fresh credential, the same grant) uses the open links.
    await one_job("adt_good-2", "grant-A")
    assert channel.connections == ["adt_good-1"] * 2
    # Another grant (other task, other rules) or no pool: connections of their own.
    await one_job("adt_good-3", "grant-B")
    await settled(lambda: len(links_under(pool, "grant-B")) == 2, "grant B's links")
    # (One stream each: a connector's own links close with it, even those still opening.)
    await one_job("adt_good-4", "grant-A", links=None, streams=1)
    await one_job("adt_good-5", None, streams=1)
    assert channel.connections == ["adt_good-1"] * 2 + ["adt_good-3"] * 2 + [
        "adt_good-4",
        "adt_good-5",
    ]
    # Links the peer closed are not used again.
    for link in links_under(pool, "grant-B"):
        link.writer.close()
    await one_job("adt_good-6", "grant-B")
    assert channel.connections[-1] == "adt_good-6"
    # Idle links close after the pool's idle time.
    await settled(lambda: len(links_under(pool, "grant-B")) == 2, "grant B's new links")
    pool.idle_seconds = 0
    pool.expire()
    assert pool._links == {}
    await pool.close()


async def test_parallel_calls_share_the_links_being_opened(channel: Channel) -> None:
    """Calls that find no idle link use those already being opened instead of each opening
    more: four parallel calls of a four-stream connector make four connections, and the
    next job finds them open."""
    pool = LinkPool(idle_seconds=30)
    first = remote(channel, "adt_good-p", "grant-P", pool, streams=4)
    await asyncio.gather(*(first.mkdir(f"/p{i}", exist_ok=True) for i in range(4)))
    await first.close()
    await settled(lambda: len(links_under(pool, "grant-P")) == 4, "four links")
    assert channel.connections == ["adt_good-p"] * 4
    again = remote(channel, "adt_good-q", "grant-P", pool, streams=4)
    await asyncio.gather(*(again.stat(f"/p{i}") for i in range(8)[:4]))
    assert channel.connections == ["adt_good-p"] * 4
    await pool.close()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> dict[str, asyncio.Event]:
    """Paths whose requests the peer holds until their event is set (or fails on, for a
    path whose event is missing and name ends in ``boom``)."""
    gates: dict[str, asyncio.Event] = {}
    run = dataserver._run

    async def gated(connector: Any, request: dict[str, Any], payload: bytes) -> Any:
        path = str(request.get("path"))
        if path.endswith("boom"):
            raise RuntimeError("the peer agent crashed mid-request")
        if path in gates:
            await gates[path].wait()
        return await run(connector, request, payload)

    monkeypatch.setattr(dataserver, "_run", gated)
    return gates


async def test_calls_are_pipelined_on_a_link(channel: Channel, held: dict[str, Any]) -> None:
    """One stream: further calls are written while the first waits for its answer, each
    gets its own answer, and a caller that gives up does not disturb the others."""
    for name, size in (("a", 1), ("b", 22), ("c", 333)):
        (channel.remote_root / name).write_bytes(b"x" * size)
    pool = LinkPool(idle_seconds=30)
    connector = remote(channel, "adt_good-pipe", "grant-pipe", pool, streams=1)
    # Three connectors of the same task's jobs share the one link.
    others = [remote(channel, "adt_good-pipe", "grant-pipe", pool, streams=1) for _ in "bc"]
    held["/a"] = asyncio.Event()
    calls = [
        asyncio.ensure_future(c.stat(f"/{name}"))
        for c, name in zip([connector, *others], "abc", strict=True)
    ]
    await settled(lambda: sum(link.waiting for link in links_under(pool, "pipe")) == 3,
                  "three calls written on the link")  # fmt: skip
    assert channel.connections == ["adt_good-pipe"]
    calls[1].cancel()  # b gives up while a is held: its answer is read and dropped
    held["/a"].set()
    assert (await calls[0]).size == 1
    assert (await calls[2]).size == 333
    assert calls[1].cancelled()
    assert (await connector.stat("/b")).size == 22
    assert channel.connections == ["adt_good-pipe"]
    await pool.close()


async def test_only_data_calls_wait_for_a_connector_stream(
    channel: Channel, held: dict[str, Any]
) -> None:
    """A one-stream connector reads one file at a time, but its namespace calls (a plan's
    mkdirs, stats) are all written on the link at once: across a wide-area link, one after
    another they would cost a round trip each."""
    for name in "ab":
        (channel.remote_root / name).write_bytes(b"x" * 10)
    pool = LinkPool(idle_seconds=30)
    connector = remote(channel, "adt_good-ns", "grant-ns", pool, streams=1)
    held["/a"] = asyncio.Event()
    stats = [asyncio.ensure_future(connector.stat(f"/{name}")) for name in "aab"]
    mkdir = asyncio.ensure_future(connector.mkdir("/made", exist_ok=True))
    await settled(lambda: sum(link.waiting for link in links_under(pool, "ns")) == 4,
                  "four namespace calls written on the one link")  # fmt: skip
    held["/a"].set()
    assert [info.size for info in await asyncio.gather(*stats)] == [10, 10, 10]
    await mkdir
    assert (channel.remote_root / "made").is_dir()

    held["/a"] = asyncio.Event()
    reads = [asyncio.ensure_future(connector.read(f"/{name}", 0, 10)) for name in "ab"]
    await settled(lambda: sum(link.waiting for link in links_under(pool, "ns")) == 1,
                  "the first read written")  # fmt: skip
    await asyncio.sleep(0.1)
    assert sum(link.waiting for link in links_under(pool, "ns")) == 1  # the second waits
    held["/a"].set()
    assert await asyncio.gather(*reads) == [b"x" * 10, b"x" * 10]
    assert channel.connections == ["adt_good-ns"]
    await pool.close()


async def test_a_broken_link_fails_its_calls_and_is_replaced(
    channel: Channel, held: dict[str, Any]
) -> None:
    """The peer drops the connection mid-request: every call waiting on that link fails as
    a transient error (the copier retries those), and the next call opens a new link."""
    (channel.remote_root / "a").write_bytes(b"a")
    pool = LinkPool(idle_seconds=30)
    jobs = [remote(channel, "adt_good-br", "grant-br", pool, streams=1) for _ in range(2)]
    calls = [
        asyncio.ensure_future(jobs[0].stat("/boom")),
        asyncio.ensure_future(jobs[1].stat("/a")),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in results), results
    assert (await jobs[0].stat("/a")).size == 1
    assert channel.connections == ["adt_good-br"] * 2
    await pool.close()


async def test_a_refused_link_fails_its_call_and_is_not_kept(channel: Channel) -> None:
    """The credential is refused: the call that waited for a link fails with the peer's
    refusal; no link is kept, and a later call tries again."""
    pool = LinkPool(idle_seconds=30)
    connector = remote(channel, "adt_bad", "grant-R", pool, streams=3)
    with pytest.raises(PermissionDenied):
        await connector.mkdir("/refused")
    await settled(lambda: len(channel.connections) == 3 and not pool._opening, "three attempts")
    assert links_under(pool, "grant-R") == []
    with pytest.raises(PermissionDenied):
        await connector.stat("/refused")
    assert len(channel.connections) >= 4
    assert not (channel.remote_root / "refused").exists()
    # Nothing of the failed key is kept once its callers have seen the failure.
    await settled(lambda: not pool._opening, "the second attempts")
    pool.expire()
    assert pool._links == {} and pool._failure == {}
    await pool.close()
