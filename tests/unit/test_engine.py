"""Engine behaviour with in-memory connectors: planning, sync levels, filters, integrity."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import PermissionDenied, TransientError
from arctern.connectors.faults import FaultInjectingConnector, FaultSpec
from arctern.connectors.memory.connector import MemoryConnector, MemoryStore
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.checksums import digest
from arctern.engine.copier import Copier, Resume, RetryPolicy
from arctern.engine.errors import CancelToken, FileFailed
from arctern.engine.options import DeleteOptions, FileJob, ItemSpec, TransferOptions
from arctern.engine.planner import (
    LISTINGS_AHEAD,
    SUBDIRECTORIES_AHEAD,
    CopyFile,
    MakeDir,
    PlanError,
    Planner,
)
from arctern.engine.runner import MemorySink, run_delete, run_transfer

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)


async def put(conn: Connector, path: str, data: bytes, mtime: float | None = None) -> None:
    parent = path.rsplit("/", 1)[0] or "/"
    await conn.mkdir(parent, parents=True, exist_ok=True)
    state = await conn.begin_write(path, len(data))
    if data:
        await conn.write(state, 0, data)
    await conn.commit_write(state, path, mtime=mtime)


async def read_all(conn: Connector, path: str) -> bytes:
    info = await conn.stat(path)
    return await conn.read(path, 0, info.size)


async def tree(conn: Connector, path: str = "/") -> dict[str, bytes | None]:
    result: dict[str, bytes | None] = {}
    async for info in conn.list(path):
        if info.type == "dir":
            result[info.path + "/"] = None
            result.update(await tree(conn, info.path))
        else:
            result[info.path] = await read_all(conn, info.path)
    return result


async def transfer(
    src: Connector,
    dst: Connector,
    items: list[ItemSpec],
    sink: MemorySink | None = None,
    cancel: CancelToken | None = None,
    **options: Any,
) -> Any:
    return await run_transfer(
        src,
        dst,
        items,
        TransferOptions.from_dict(options),
        sink or MemorySink(),
        cancel or CancelToken(),
        chunk_size=1024,
        retry=FAST_RETRY,
    )


@pytest.fixture
async def source() -> MemoryConnector:
    conn = MemoryConnector()
    await put(conn, "/data/a.txt", b"alpha")
    await put(conn, "/data/b.log", b"bravo!")
    await put(conn, "/data/nested/deep/c.txt", b"charlie" * 1000)
    await put(conn, "/data/nested/d.tmp", b"delta")
    await conn.mkdir("/data/empty")
    return conn


async def test_recursive_copies_contents_into_destination(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    summary = await transfer(source, dst, [ItemSpec("/data", "/out/copy", recursive=True)])
    assert await tree(dst, "/out/copy") == {
        "/out/copy/a.txt": b"alpha",
        "/out/copy/b.log": b"bravo!",
        "/out/copy/empty/": None,
        "/out/copy/nested/": None,
        "/out/copy/nested/d.tmp": b"delta",
        "/out/copy/nested/deep/": None,
        "/out/copy/nested/deep/c.txt": b"charlie" * 1000,
    }
    assert summary.files == 4 and summary.files_transferred == 4
    assert summary.directories == 4  # the item's root, empty, nested, deep
    assert not summary.failed
    assert dst.temp_files() == []


async def test_file_item_creates_intermediate_dirs(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    sink = MemorySink()
    await transfer(source, dst, [ItemSpec("/data/a.txt", "/x/y/z.txt")], sink)
    assert await read_all(dst, "/x/y/z.txt") == b"alpha"
    assert sink.bytes_transferred == 5


async def test_home_prefix_maps_to_root(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    await transfer(source, dst, [ItemSpec("/~/data/a.txt", "/~/a.txt")])
    assert await read_all(dst, "/a.txt") == b"alpha"


@pytest.mark.parametrize(
    ("level", "expected_copied"),
    [
        (0, {"/new"}),
        (1, {"/new", "/size"}),
        (2, {"/new", "/size", "/newer"}),
        (3, {"/new", "/size", "/newer", "/content"}),
    ],
)
async def test_sync_levels(level: int, expected_copied: set[str]) -> None:
    src, dst = MemoryConnector(), MemoryConnector()
    t0 = 1_700_000_000.0
    await put(src, "/new", b"N", t0)
    await put(src, "/same", b"same", t0)
    await put(dst, "/same", b"same", t0)
    await put(src, "/size", b"longer", t0)
    await put(dst, "/size", b"short", t0)
    await put(src, "/newer", b"1234", t0 + 100)  # same size, newer source
    await put(dst, "/newer", b"abcd", t0)
    await put(src, "/content", b"AAAA", t0)  # same size, older source, other bytes
    await put(dst, "/content", b"BBBB", t0 + 100)
    summary = await transfer(src, dst, [ItemSpec("/", "/", recursive=True)], sync_level=level)
    copied = {o.source_path for o in summary.outcomes if o.state == "done"}
    assert copied == expected_copied
    assert summary.files_skipped == 5 - len(expected_copied)
    for path in expected_copied:
        assert await read_all(dst, path) == await read_all(src, path)


async def test_filter_rules_first_match_wins(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    rules = [
        {"DATA_TYPE": "filter_rule", "method": "include", "name": "c.txt", "type": "file"},
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.txt", "type": "file"},
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "empty", "type": "dir"},
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.tmp"},
    ]
    await transfer(source, dst, [ItemSpec("/data", "/o", recursive=True)], filter_rules=rules)
    assert sorted(await tree(dst, "/o")) == [
        "/o/b.log",
        "/o/nested/",
        "/o/nested/deep/",
        "/o/nested/deep/c.txt",
    ]


async def test_delete_destination_extra(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    await put(dst, "/o/a.txt", b"old")
    await put(dst, "/o/extra.txt", b"gone")
    await put(dst, "/o/keep.tmp", b"excluded by filter: kept")
    await put(dst, "/o/olddir/f", b"gone too")
    await put(dst, "/o/nested/stale", b"gone")
    summary = await transfer(
        source,
        dst,
        [ItemSpec("/data", "/o", recursive=True)],
        delete_destination_extra=True,
        filter_rules=[{"method": "exclude", "name": "*.tmp"}],
    )
    files = await tree(dst, "/o")
    assert "/o/extra.txt" not in files and "/o/olddir/" not in files
    assert "/o/nested/stale" not in files
    assert files["/o/keep.tmp"] == b"excluded by filter: kept"
    assert files["/o/a.txt"] == b"alpha"
    assert sorted(summary.deleted_extra) == ["/o/extra.txt", "/o/nested/stale", "/o/olddir"]


class FlipFirstWrites:
    """Corrupts the first ``count`` chunks written (a flaky network/disk)."""

    def __init__(self, inner: Connector, count: int) -> None:
        self.inner = inner
        self.left = count
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write(self, state: WriteState, offset: int, data: bytes | memoryview) -> None:
        if self.left > 0 and len(data):
            self.left -= 1
            data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
        await self.inner.write(state, offset, data)


async def test_checksum_mismatch_is_detected_retried_and_counted(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    sink = MemorySink()
    flaky: Any = FlipFirstWrites(dst, 1)
    summary = await transfer(
        source, flaky, [ItemSpec("/data/a.txt", "/a.txt")], sink, verify_checksum=True
    )
    assert await read_all(dst, "/a.txt") == b"alpha"
    assert sink.fault_codes == ["VERIFY_CHECKSUM"]
    assert summary.outcomes[0].checksum == hashlib.md5(b"alpha").hexdigest()
    assert sink.bytes_checksummed >= 5
    assert dst.temp_files() == []


async def test_persistent_mismatch_fails_without_partial_files(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    sink = MemorySink()
    flaky: Any = FlipFirstWrites(dst, 100)
    summary = await transfer(
        source, flaky, [ItemSpec("/data/a.txt", "/a.txt")], sink, verify_checksum=True
    )
    assert [(o.state, o.code) for o in summary.outcomes] == [("failed", "VERIFY_CHECKSUM")]
    assert sink.faults == RetryPolicy().checksum_attempts
    assert dst.temp_files() == []
    assert "/a.txt" not in await tree(dst)


async def test_without_verification_corruption_goes_unnoticed(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    flaky: Any = FlipFirstWrites(dst, 1)
    await transfer(source, flaky, [ItemSpec("/data/a.txt", "/a.txt")], verify_checksum=False)
    assert await read_all(dst, "/a.txt") != b"alpha"


@pytest.mark.parametrize("algorithm", ["md5", "SHA256", "sha1", "sha512", "adler32", "crc32c"])
async def test_external_checksum(source: MemoryConnector, algorithm: str) -> None:
    dst = MemoryConnector()
    good = digest(algorithm, b"alpha")
    items = [
        ItemSpec("/data/a.txt", "/good", external_checksum=good, checksum_algorithm=algorithm),
        ItemSpec(
            "/data/a.txt", "/bad", external_checksum="0" * len(good), checksum_algorithm=algorithm
        ),
    ]
    summary = await transfer(source, dst, items)
    states = {o.destination_path: (o.state, o.code) for o in summary.outcomes}
    assert states == {"/good": ("done", None), "/bad": ("failed", "EXTERNAL_CHECKSUM_MISMATCH")}
    assert "/bad" not in await tree(dst)


def test_checksum_vectors() -> None:
    assert digest("md5", b"abc") == "900150983cd24fb0d6963f7d28e17f72"
    assert digest("sha256", b"abc").startswith("ba7816bf")
    assert digest("crc32", b"123456789") == "cbf43926"
    assert digest("crc32c", b"123456789") == "e3069283"
    assert digest("adler32", b"Wikipedia") == "11e60398"


async def test_transient_errors_are_retried_and_counted(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    sink = MemorySink()
    noisy: Any = FaultInjectingConnector(source, FaultSpec(read_error=0.1, seed=1))
    summary = await transfer(noisy, dst, [ItemSpec("/data", "/o", recursive=True)], sink)
    assert not summary.failed
    assert await read_all(dst, "/o/nested/deep/c.txt") == b"charlie" * 1000
    assert 0 < sink.faults <= noisy.injected_read_errors
    assert set(sink.fault_codes) == {"TRANSIENT"}


async def test_source_errors_fail_or_skip(source: MemoryConnector) -> None:
    dst = MemoryConnector()
    items = [ItemSpec("/missing", "/m"), ItemSpec("/data/a.txt", "/a")]
    summary = await transfer(source, dst, items)
    assert [(o.state, o.code) for o in summary.outcomes] == [
        ("failed", "FILE_NOT_FOUND"),
        ("done", None),
    ]
    summary = await transfer(source, dst, items, skip_source_errors=True)
    assert summary.outcomes[0].state == "skipped"


async def test_quota_errors_fail_the_task_when_asked(source: MemoryConnector) -> None:
    dst = MemoryConnector(MemoryStore(quota_bytes=100))
    summary = await transfer(
        source, dst, [ItemSpec("/data", "/o", recursive=True)], fail_on_quota_errors=True
    )
    assert summary.fatal_error is not None and summary.fatal_error[0] == "QUOTA_EXCEEDED"
    assert dst.temp_files() == []


class SlowReads:
    def __init__(self, inner: Connector, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.capabilities = inner.capabilities
        self.offsets: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        self.offsets.append(offset)
        await asyncio.sleep(self.delay)
        return await self.inner.read(path, offset, length)


async def test_cancel_stops_quickly_and_removes_partial_files() -> None:
    src, dst = MemoryConnector(), MemoryConnector()
    await put(src, "/big", os.urandom(200 * 1024))
    await put(src, "/big2", os.urandom(200 * 1024))
    slow: Any = SlowReads(src, 0.01)
    cancel = CancelToken()
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, cancel.cancel)
    started = loop.time()
    summary = await transfer(slow, dst, [ItemSpec("/", "/o", recursive=True)], cancel=cancel)
    assert loop.time() - started < 1.0
    assert {o.state for o in summary.outcomes} == {"canceled"}
    assert dst.temp_files() == []
    assert await tree(dst, "/o") == {}


class Crash(Exception):
    pass


class CrashingSink(MemorySink):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        super().checkpoint(job, bytes_done, state)
        if len(self.checkpoints) and bytes_done >= self.after:
            raise Crash  # the worker process dies right after persisting progress


@pytest.mark.parametrize("verify", [False, True])
async def test_large_file_resumes_from_persisted_offset(verify: bool) -> None:
    src, dst = MemoryConnector(), MemoryConnector()
    data = os.urandom(10_000)
    await put(src, "/big", data)
    info = await src.stat("/big")
    job = FileJob("/big", "/copy", info.size, info.mtime)
    options = TransferOptions(verify_checksum=verify)
    sink = CrashingSink(after=4096)
    first = Copier(src, dst, options, sink, CancelToken(), chunk_size=1024, parallel_chunks=2)
    with pytest.raises(Crash):
        await first.copy(job)
    done, state = sink.checkpoints["/copy"]
    assert done == 4096 and state is not None
    assert len(dst.temp_files()) == 1

    slow: Any = SlowReads(src, 0)
    sink2 = MemorySink()
    second = Copier(slow, dst, options, sink2, CancelToken(), chunk_size=1024, parallel_chunks=2)
    result = await second.copy(job, Resume(done, state))
    assert await read_all(dst, "/copy") == data
    assert sink2.bytes_transferred == len(data) - done
    copy_reads = [o for o in slow.offsets if o >= done]
    assert min(copy_reads) == done
    if verify:
        assert result.checksum == hashlib.md5(data).hexdigest()
    assert dst.temp_files() == []


async def test_preserve_timestamp(source: MemoryConnector) -> None:
    await put(source, "/old", b"x", 1_000_000_000.0)
    dst = MemoryConnector()
    await transfer(source, dst, [ItemSpec("/old", "/keep")], preserve_timestamp=True)
    await transfer(source, dst, [ItemSpec("/old", "/fresh")])
    assert (await dst.stat("/keep")).mtime == 1_000_000_000.0
    assert (await dst.stat("/fresh")).mtime > 1_000_000_000.0


async def test_posix_fast_path_copies_and_falls_back(tmp_path: Path) -> None:
    (tmp_path / "a" / "d").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    payload = os.urandom(300_000)
    (tmp_path / "a" / "d" / "f.bin").write_bytes(payload)
    src, dst = PosixConnector(str(tmp_path / "a")), PosixConnector(str(tmp_path / "b"))
    sink = MemorySink()
    summary = await transfer(src, dst, [ItemSpec("/d", "/e", recursive=True)], sink)
    assert not summary.failed
    assert (tmp_path / "b" / "e" / "f.bin").read_bytes() == payload
    assert sink.bytes_transferred == len(payload)
    assert [p.name for p in (tmp_path / "b" / "e").iterdir()] == ["f.bin"]


async def test_retry_gives_up_on_persistent_transient_errors(source: MemoryConnector) -> None:
    class AlwaysFails:
        capabilities = source.capabilities

        def __getattr__(self, name: str) -> Any:
            return getattr(source, name)

        async def read(self, path: str, offset: int, length: int) -> bytes:
            raise TransientError("network down")

    sink = MemorySink()
    info = await source.stat("/data/a.txt")
    copier = Copier(
        AlwaysFails(),  # type: ignore[arg-type]
        MemoryConnector(),
        TransferOptions(),
        sink,
        CancelToken(),
        retry=FAST_RETRY,
    )
    with pytest.raises(FileFailed) as caught:
        await copier.copy(FileJob("/data/a.txt", "/a", info.size, info.mtime))
    assert caught.value.code == "TRANSIENT"
    assert sink.faults == FAST_RETRY.max_attempts - 1


class FailingReads:
    """Raises TransientError on the first ``count`` reads of paths ``matching`` selects."""

    def __init__(self, inner: Connector, count: int, matching: Any = lambda path: True) -> None:
        self.inner = inner
        self.left = count
        self.matching = matching
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if self.left > 0 and self.matching(path):
            self.left -= 1
            raise TransientError(f"injected read error: {path}")
        return await self.inner.read(path, offset, length)


async def test_a_failed_attempt_that_made_progress_does_not_use_up_the_retries(
    source: MemoryConnector,
) -> None:
    # Attempt 1: the source read fails (no progress). Attempt 2 writes the whole file, then
    # reading it back for verification fails: that attempt moved the file forward, so it
    # must not be the one that exhausts a budget of two stalled attempts.
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)
    dst = MemoryConnector()
    src: Any = FailingReads(source, 1)
    readback: Any = FailingReads(dst, 1, matching=lambda path: path != "/a")
    sink = MemorySink()
    info = await source.stat("/data/nested/deep/c.txt")
    copier = Copier(
        src, readback, TransferOptions(verify_checksum=True), sink, CancelToken(), retry=retry
    )
    result = await copier.copy(FileJob("/data/nested/deep/c.txt", "/a", info.size, info.mtime))
    assert result.status == "done"
    assert await read_all(dst, "/a") == b"charlie" * 1000
    assert sink.fault_codes == ["TRANSIENT", "TRANSIENT"]
    assert src.left == 0 and readback.left == 0
    assert dst.temp_files() == []


async def test_delete_recursive_globs_and_missing() -> None:
    conn = MemoryConnector()
    await put(conn, "/d/one.txt", b"1")
    await put(conn, "/d/two.txt", b"2")
    await put(conn, "/d/keep.dat", b"3")
    await put(conn, "/tree/a/b/c", b"4")
    globs = DeleteOptions(recursive=False, ignore_missing=False, interpret_globs=True)
    summary = await run_delete(conn, ["/d/*.txt"], globs, CancelToken())
    assert summary.files == 2 and not summary.errors
    assert sorted(await tree(conn, "/d")) == ["/d/keep.dat"]

    summary = await run_delete(conn, ["/tree"], DeleteOptions(), CancelToken())
    assert [e.code for e in summary.errors] == ["IS_A_DIRECTORY"]
    summary = await run_delete(conn, ["/tree"], DeleteOptions(recursive=True), CancelToken())
    assert (summary.files, summary.directories) == (1, 3)
    assert "/tree/" not in await tree(conn)

    summary = await run_delete(conn, ["/nope"], DeleteOptions(), CancelToken())
    assert [e.code for e in summary.errors] == ["FILE_NOT_FOUND"]
    summary = await run_delete(conn, ["/nope"], DeleteOptions(ignore_missing=True), CancelToken())
    assert not summary.errors
    literal = DeleteOptions(interpret_globs=False)
    summary = await run_delete(conn, ["/d/*.dat"], literal, CancelToken())
    assert [e.code for e in summary.errors] == ["FILE_NOT_FOUND"]


async def test_copying_a_directory_into_itself_is_refused() -> None:
    conn = MemoryConnector()
    await put(conn, "/a/f", b"1")
    summary = await run_transfer(
        conn,
        conn,
        [ItemSpec("/a", "/a/inside", recursive=True)],
        TransferOptions(),
        MemorySink(),
        CancelToken(),
        same_storage=True,
    )
    assert [(o.state, o.code) for o in summary.outcomes] == [("failed", "INVALID_PATH_NAME")]
    assert sorted(await tree(conn)) == ["/a/", "/a/f"]


class DeniesWrites:
    """A destination that refuses to create one particular file."""

    def __init__(self, inner: Connector, denied: str) -> None:
        self.inner = inner
        self.denied = denied
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def begin_write(
        self, path: str, size: int, *, resume: Any = None, temp_key: str | None = None
    ) -> WriteState:
        if path == self.denied:
            raise PermissionDenied(f"Permission denied: {path}")
        return await self.inner.begin_write(path, size, resume=resume)


async def test_skip_source_errors_never_skips_destination_failures(
    source: MemoryConnector,
) -> None:
    dst: Any = DeniesWrites(MemoryConnector(), "/denied")
    items = [
        ItemSpec("/missing", "/m"),
        ItemSpec("/data/a.txt", "/denied"),
        ItemSpec("/data/b.log", "/ok"),
    ]
    summary = await transfer(source, dst, items, skip_source_errors=True)
    assert {o.destination_path: (o.state, o.code) for o in summary.outcomes} == {
        "/m": ("skipped", "FILE_NOT_FOUND"),
        "/denied": ("failed", "PERMISSION_DENIED"),
        "/ok": ("done", None),
    }


@pytest.mark.parametrize("mode", ["ignore", "copy"])
async def test_recursive_symlinks(tmp_path: Path, mode: str) -> None:
    src_root = tmp_path / "src"
    (src_root / "d" / "sub").mkdir(parents=True)
    (src_root / "d" / "sub" / "f.txt").write_bytes(b"f")
    (src_root / "other").mkdir()
    (src_root / "other" / "o.txt").write_bytes(b"o")
    os.symlink("sub/f.txt", src_root / "d" / "file-link")
    os.symlink("../../other", src_root / "d" / "sub" / "dir-link")
    os.symlink("..", src_root / "d" / "sub" / "loop")  # back up the tree
    os.symlink(str(tmp_path), src_root / "d" / "outside")  # out of the collection
    (tmp_path / "dst").mkdir()
    src, dst = PosixConnector(str(src_root)), PosixConnector(str(tmp_path / "dst"))
    summary = await transfer(
        src, dst, [ItemSpec("/d", "/d", recursive=True)], recursive_symlinks=mode
    )
    copied = sorted(
        str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst").rglob("*") if p.is_file()
    )
    if mode == "ignore":
        assert copied == ["d/sub/f.txt"]
        assert summary.symlinks == 4
    else:
        assert copied == ["d/file-link", "d/sub/dir-link/o.txt", "d/sub/f.txt"]
        assert summary.symlinks == 1  # the loop
        assert [o.code for o in summary.failed] == ["PERMISSION_DENIED"]  # the escape


async def test_a_recursive_items_checksum_algorithm_applies_to_every_file(
    source: MemoryConnector,
) -> None:
    planner = Planner(source, MemoryConnector(), TransferOptions(verify_checksum=True))
    item = ItemSpec("/data", "/out", recursive=True, checksum_algorithm="SHA256")
    jobs = [e.job async for e in planner.plan_item(item) if isinstance(e, CopyFile)]
    assert len(jobs) == 4
    assert {job.checksum_algorithm for job in jobs} == {"SHA256"}


async def walk(planner: Planner) -> list[str]:
    """The entries of a walk of ``/t`` into ``/o``, in order, as short labels."""
    walked = []
    async for entry in planner.plan_item(ItemSpec("/t", "/o", recursive=True)):
        if isinstance(entry, MakeDir):
            walked.append(f"dir {entry.path}")
        elif isinstance(entry, CopyFile):
            walked.append(entry.job.destination_path)
        elif isinstance(entry, PlanError):
            walked.append(f"error {entry.source_path} {entry.code}")
    return walked


async def test_the_walk_is_depth_first_with_a_directorys_files_before_its_subdirectories() -> None:
    """The order an interrupted plan resumes by (it counts entries): fixed, whatever the
    listing order, and the same at any depth."""
    conn = MemoryConnector()
    for path in (
        "/t/z.txt",
        "/t/b/y.txt",
        "/t/b/a/x.txt",
        "/t/b/a/deeper/w.txt",
        "/t/a/v.txt",
        "/t/m.txt",
        "/t/c/u.txt",
    ):
        await put(conn, path, b"x")
    await conn.mkdir("/t/b/empty")
    walked = await walk(Planner(conn, MemoryConnector(), TransferOptions()))
    assert walked == [
        "dir /o",
        "/o/m.txt",
        "/o/z.txt",
        "dir /o/a",
        "/o/a/v.txt",
        "dir /o/b",
        "/o/b/y.txt",
        "dir /o/b/a",
        "/o/b/a/x.txt",
        "dir /o/b/a/deeper",
        "/o/b/a/deeper/w.txt",
        "dir /o/b/empty",
        "dir /o/c",
        "/o/c/u.txt",
    ]


class _SlowListings(MemoryConnector):
    """A source whose listings take a while (a remote agent's, or object storage's): counts
    how many are in flight at once; listing ``/t/d07`` is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most = 0

    async def list(self, path: str):  # type: ignore[no-untyped-def]
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if path == "/t/d07":
                raise PermissionDenied(f"Permission denied: {path}")
            entries = [info async for info in super().list(path)]
        finally:
            self.in_flight -= 1
        for info in entries:
            yield info


async def test_a_remote_sources_listings_are_fetched_ahead_in_the_walks_order() -> None:
    """Each listing of a remote source is a round trip: the walk fetches those of the next
    directories while it goes on (a bounded number at once), and its order, its entries and
    a refused listing's place in it are those of a walk that lists one at a time."""

    source = _SlowListings()
    for d in range(40):
        await put(source, f"/t/d{d:02}/f.txt", b"x")
        await put(source, f"/t/d{d:02}/sub/g.txt", b"y")

    walked = await walk(Planner(source, MemoryConnector(), TransferOptions()))
    assert 1 < source.most <= LISTINGS_AHEAD * (1 + SUBDIRECTORIES_AHEAD)
    expected = ["dir /o"]
    for d in range(40):
        expected.append(f"dir /o/d{d:02}")
        if d == 7:
            expected.append("error /t/d07 PERMISSION_DENIED")
            continue
        expected += [f"/o/d{d:02}/f.txt", f"dir /o/d{d:02}/sub", f"/o/d{d:02}/sub/g.txt"]
    assert walked == expected

    # A walk given up half way leaves no listing running behind it.
    walking = Planner(source, MemoryConnector(), TransferOptions()).plan_item(
        ItemSpec("/t", "/o", recursive=True)
    )
    async for entry in walking:
        if isinstance(entry, CopyFile) and entry.job.destination_path == "/o/d03/f.txt":
            break
    await walking.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert source.in_flight == 0
