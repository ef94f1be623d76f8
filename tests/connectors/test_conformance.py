"""Behaviour every connector must share: metadata, namespace changes, writes, confinement."""

from __future__ import annotations

from pathlib import Path

import pytest

from arctern.connectors.base import Connector
from arctern.connectors.errors import (
    AlreadyExists,
    ConnectorError,
    DirectoryNotEmpty,
    IsADirectory,
    NotADirectory,
    ObjectNotFound,
    PathOutsideRoot,
)
from tests.connectors.conftest import names, put


async def test_root_is_an_empty_directory(connector: Connector) -> None:
    info = await connector.stat("/")
    assert info.type == "dir"
    assert await names(connector, "/") == []


async def test_write_commit_then_read_and_stat(connector: Connector) -> None:
    await put(connector, "/a.txt", b"hello world", mtime=1_600_000_000.0)
    info = await connector.stat("/a.txt")
    assert (info.name, info.path, info.type, info.size) == ("a.txt", "/a.txt", "file", 11)
    if connector.capabilities.set_mtime:  # object stores keep their own upload time
        assert info.mtime == pytest.approx(1_600_000_000.0, abs=1)
    assert await connector.read("/a.txt", 0, 100) == b"hello world"
    assert await connector.read("/a.txt", 6, 3) == b"wor"
    assert await connector.read("/a.txt", 11, 5) == b""


async def test_writes_at_offsets_out_of_order(connector: Connector) -> None:
    state = await connector.begin_write("/big.bin", 12)
    await connector.write(state, 8, b"IJKL")
    await connector.write(state, 0, b"ABCD")
    await connector.write(state, 4, memoryview(b"EFGH"))
    await connector.commit_write(state, "/big.bin")
    assert await connector.read("/big.bin", 0, 12) == b"ABCDEFGHIJKL"


async def test_uncommitted_write_is_invisible_and_abort_cleans_up(connector: Connector) -> None:
    state = await connector.begin_write("/partial.bin", 4)
    await connector.write(state, 0, b"data")
    assert await names(connector, "/") == []
    with pytest.raises(ObjectNotFound):
        await connector.stat("/partial.bin")
    await connector.abort_write(state)
    await connector.abort_write(state)  # idempotent
    assert await names(connector, "/") == []


async def test_commit_replaces_existing_file(connector: Connector) -> None:
    await put(connector, "/f", b"old contents")
    await put(connector, "/f", b"new")
    assert await connector.read("/f", 0, 100) == b"new"


async def test_resume_write_keeps_temp_file(connector: Connector) -> None:
    state = await connector.begin_write("/r.bin", 8)
    await connector.write(state, 0, b"1234")
    again = await connector.begin_write("/r.bin", 8, resume=state)
    assert again.temp_path == state.temp_path
    await connector.write(again, 4, b"5678")
    await connector.commit_write(again, "/r.bin")
    assert await connector.read("/r.bin", 0, 8) == b"12345678"


async def test_mkdir_semantics(connector: Connector) -> None:
    await connector.mkdir("/d")
    assert (await connector.stat("/d")).type == "dir"
    with pytest.raises(AlreadyExists):
        await connector.mkdir("/d")
    await connector.mkdir("/d", exist_ok=True)
    with pytest.raises(ObjectNotFound):
        await connector.mkdir("/x/y/z")
    await connector.mkdir("/x/y/z", parents=True)
    assert (await connector.stat("/x/y/z")).type == "dir"
    await put(connector, "/file", b"1")
    with pytest.raises(AlreadyExists):
        await connector.mkdir("/file", exist_ok=True)
    with pytest.raises(NotADirectory):
        await connector.mkdir("/file/sub", parents=True)


async def test_list_reports_types_and_sizes(connector: Connector) -> None:
    await connector.mkdir("/d")
    await put(connector, "/d/one", b"1")
    await put(connector, "/d/two", b"22")
    await connector.mkdir("/d/sub")
    entries = {i.name: i async for i in connector.list("/d")}
    assert sorted(entries) == ["one", "sub", "two"]
    assert entries["two"].size == 2 and entries["two"].type == "file"
    assert entries["two"].path == "/d/two"
    assert entries["sub"].type == "dir"
    with pytest.raises(ObjectNotFound):
        [i async for i in connector.list("/missing")]
    with pytest.raises(NotADirectory):
        [i async for i in connector.list("/d/one")]


async def test_rename(connector: Connector) -> None:
    await put(connector, "/a", b"A")
    await connector.mkdir("/dir")
    await connector.rename("/a", "/dir/b")
    assert await connector.read("/dir/b", 0, 10) == b"A"
    with pytest.raises(ObjectNotFound):
        await connector.stat("/a")
    await put(connector, "/c", b"C")
    with pytest.raises(AlreadyExists):
        await connector.rename("/c", "/dir/b")
    with pytest.raises(ObjectNotFound):
        await connector.rename("/nope", "/other")
    await connector.rename("/dir", "/dir2")
    assert await names(connector, "/dir2") == ["b"]
    with pytest.raises(ConnectorError):
        await connector.rename("/dir2", "/dir2/inside")


async def test_delete(connector: Connector) -> None:
    await connector.mkdir("/d/e", parents=True)
    await put(connector, "/d/e/f", b"x")
    await put(connector, "/g", b"y")
    await connector.delete("/g")
    with pytest.raises(ObjectNotFound):
        await connector.stat("/g")
    with pytest.raises(DirectoryNotEmpty):
        await connector.delete("/d")
    await connector.delete("/d", recursive=True)
    assert await names(connector, "/") == []
    with pytest.raises(ObjectNotFound):
        await connector.delete("/d")
    with pytest.raises(ConnectorError):
        await connector.delete("/")


async def test_read_errors(connector: Connector) -> None:
    await connector.mkdir("/d")
    with pytest.raises(ObjectNotFound):
        await connector.read("/nope", 0, 1)
    with pytest.raises(IsADirectory):
        await connector.read("/d", 0, 1)
    with pytest.raises(IsADirectory):
        await connector.begin_write("/d", 1)


async def test_writes_into_missing_directory_fail(connector: Connector) -> None:
    with pytest.raises(ObjectNotFound):
        await connector.begin_write("/no/such/dir/file", 1)


ESCAPES = [
    "/..",
    "/../etc/passwd",
    "/a/../../x",
    "/a/b/../../../x",
    "../x",
    "x",
    "",
    "/a\x00b",
    "/\x00",
    "/" + "n" * 256,
    "/..//..",
    "/./../x",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_escaping_paths_are_refused(connector: Connector, path: str) -> None:
    await connector.mkdir("/a/b", parents=True)
    with pytest.raises(PathOutsideRoot):
        await connector.stat(path)
    with pytest.raises(PathOutsideRoot):
        [i async for i in connector.list(path)]
    with pytest.raises(PathOutsideRoot):
        await connector.mkdir(path, parents=True)
    with pytest.raises(PathOutsideRoot):
        await connector.delete(path, recursive=True)
    with pytest.raises(PathOutsideRoot):
        await connector.begin_write(path, 1)
    with pytest.raises(PathOutsideRoot):
        await connector.read(path, 0, 1)
    with pytest.raises(PathOutsideRoot):
        await connector.rename("/a/b", path)


@pytest.mark.parametrize("name", ["%2e%2e", "..%2f..", "...", "\u2025", "..\\..", "~"])
async def test_odd_names_stay_inside_root(connector: Connector, name: str) -> None:
    await put(connector, f"/{name}", b"inside")
    assert await connector.read(f"/{name}", 0, 10) == b"inside"
    assert name in await names(connector, "/")


async def test_trailing_slashes_and_dots_are_normalised(connector: Connector) -> None:
    await connector.mkdir("/d/")
    await put(connector, "/d/./f", b"1")
    assert (await connector.stat("//d//f")).path == "/d/f"
    assert await names(connector, "/d/") == ["f"]


async def test_keyed_write_restarted_without_state_reuses_the_temp_file(
    connector: Connector,
) -> None:
    # A worker killed before it persisted its WriteState: the successor knows only the key.
    first = await connector.begin_write("/k.bin", 8, temp_key="file42")
    await connector.write(first, 0, b"stale!")
    again = await connector.begin_write("/k.bin", 8, temp_key="file42")
    await connector.write(again, 0, b"ABCDEFGH")
    await connector.commit_write(again, "/k.bin")
    assert await connector.read("/k.bin", 0, 100) == b"ABCDEFGH"
    assert await names(connector, "/") == ["k.bin"]


async def test_posix_keyed_restart_leaves_no_partial_file(
    posix_connector: Connector, posix_root: Path
) -> None:
    first = await posix_connector.begin_write("/k.bin", 4, temp_key="file7")
    await posix_connector.write(first, 0, b"old!")
    again = await posix_connector.begin_write("/k.bin", 3, temp_key="file7")
    await posix_connector.write(again, 0, b"new")
    await posix_connector.commit_write(again, "/k.bin")
    assert sorted(p.name for p in posix_root.iterdir()) == ["k.bin"]
    assert (posix_root / "k.bin").read_bytes() == b"new"
