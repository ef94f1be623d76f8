"""Access guards in the connectors: the POSIX connector checks the location a path resolves
to (symlinks followed), the memory/S3 wrapper checks the logical path, guards pickle for the
copy helpers and can be narrowed while a connector is in use."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arctern.connectors.access import AccessDenied, AccessGuard, GuardedConnector, with_guard
from arctern.connectors.base import Connector
from arctern.connectors.errors import ConnectorError, PermissionDenied
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.local import JobFields, copy_group_local
from arctern.engine.options import FileJob

SECRET = b"private bytes"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "private").mkdir(parents=True)
    (base / "private" / "secret.txt").write_bytes(SECRET)
    (base / "shared" / "sub").mkdir(parents=True)
    (base / "shared" / "ok.txt").write_bytes(b"ok")
    os.symlink("../private", base / "shared" / "link")
    os.symlink("sub", base / "shared" / "inlink")
    return base


def guard_r() -> AccessGuard:
    return AccessGuard(readable=["/shared/"])


def guard_rw() -> AccessGuard:
    return AccessGuard(readable=["/shared/"], writable=["/shared/"])


def test_guard_prefixes() -> None:
    guard = AccessGuard(readable=["/a/"], writable=["/b"])
    assert guard("/a", "r") and guard("/a/x/y", "r") and not guard("/a/x", "rw")
    assert guard("/b/x", "rw") and guard("/b/x", "r")  # rw implies r
    assert not guard("/ab", "r") and not guard("/", "r")
    clone = pickle.loads(pickle.dumps(guard))
    assert clone.readable == guard.readable and clone.writable == guard.writable
    guard.replace((), ())
    assert not guard("/a/x", "r")


def test_denied_prefixes_win_and_survive_the_wire() -> None:
    guard = AccessGuard(readable=["/data/"], writable=["/data/"], denied=["/data/secret"])
    assert guard("/data/x", "rw") and guard("/data/secrets", "r")
    assert not guard("/data/secret", "r") and not guard("/data/secret/a/b", "rw")
    for clone in (pickle.loads(pickle.dumps(guard)), AccessGuard.from_doc(guard.to_doc())):
        assert not clone("/data/secret/a", "r") and clone("/data/x", "rw")
    # A guard pickled before deny lists existed still loads (no denial).
    old = AccessGuard.__new__(AccessGuard)
    old.__setstate__((("/a/",), ()))
    assert old("/a/x", "r") and old.denied == ()
    with pytest.raises(ValueError):
        AccessGuard.from_doc({"readable": "/a/"})
    with pytest.raises(ValueError):
        AccessGuard.from_doc(["/a/"])


async def refused(call: Callable[[], Any]) -> None:
    with pytest.raises(AccessDenied):
        await call()


async def test_posix_refuses_every_operation_through_a_link(root: Path) -> None:
    conn = PosixConnector(str(root), guard=guard_rw())
    try:
        await refused(lambda: conn.stat("/shared/link/secret.txt"))
        await refused(lambda: conn.stat("/shared/link"))
        await refused(lambda: conn.lstat("/shared/link/secret.txt"))
        await refused(lambda: _drain(conn, "/shared/link"))
        await refused(lambda: conn.read("/shared/link/secret.txt", 0, 100))
        await refused(lambda: conn.mkdir("/shared/link/new"))
        await refused(lambda: conn.mkdir("/shared/link/a/b", parents=True))
        await refused(lambda: conn.rename("/shared/link/secret.txt", "/shared/x"))
        await refused(lambda: conn.rename("/shared/ok.txt", "/shared/link/x"))
        await refused(lambda: conn.delete("/shared/link/secret.txt"))
        await refused(lambda: conn.begin_write("/shared/link/new.txt", 3))
        await refused(lambda: conn.set_mtime("/shared/link/secret.txt", 0))
        # A missing path behind the link is refused, not reported missing.
        await refused(lambda: conn.stat("/shared/link/nope/deeper"))
        # Inside the grant, links and plain paths work; the link itself may be listed.
        assert (await conn.stat("/shared/inlink")).type == "dir"
        names = {i.name: i.type async for i in conn.list("/shared")}
        assert names["link"] == "link"
        await conn.mkdir("/shared/inlink/made")
        assert (root / "shared" / "sub" / "made").is_dir()
        # Outside the grant without links: refused as well (the API checks this first).
        await refused(lambda: conn.stat("/private/secret.txt"))
    finally:
        await conn.close()
    assert (root / "private" / "secret.txt").read_bytes() == SECRET
    assert sorted(os.listdir(root / "private")) == ["secret.txt"]


async def test_read_only_guard_refuses_writes(root: Path) -> None:
    conn = PosixConnector(str(root), guard=guard_r())
    try:
        assert await conn.read("/shared/ok.txt", 0, 10) == b"ok"
        await refused(lambda: conn.mkdir("/shared/new"))
        await refused(lambda: conn.delete("/shared/ok.txt"))
        await refused(lambda: conn.begin_write("/shared/new.txt", 1))
    finally:
        await conn.close()


async def test_a_symlink_swapped_in_after_the_check_is_not_followed(root: Path) -> None:
    """The check passes for a regular file, then the file becomes a link to the secret before
    the open: the connector opens what it checked (O_NOFOLLOW / openat2) or refuses."""
    conn = PosixConnector(str(root), guard=guard_r())
    original = conn._check_access
    swapped = False

    def check_then_swap(comps: Any, need: Any) -> None:
        nonlocal swapped
        original(comps, need)
        if not swapped and list(comps) == ["shared", "ok.txt"]:
            swapped = True
            os.unlink(root / "shared" / "ok.txt")
            os.symlink("../private/secret.txt", root / "shared" / "ok.txt")

    conn._check_access = check_then_swap  # type: ignore[method-assign]
    try:
        with pytest.raises(ConnectorError):
            data = await conn.read("/shared/ok.txt", 0, 100)
            assert SECRET not in data
    finally:
        await conn.close()
    assert swapped


async def test_live_guard_narrowing_applies_to_the_next_operation(root: Path) -> None:
    guard = guard_r()
    conn = PosixConnector(str(root), guard=guard)
    try:
        assert (await conn.stat("/shared/ok.txt")).size == 2
        guard.replace((), ())
        await refused(lambda: conn.stat("/shared/ok.txt"))
    finally:
        await conn.close()


def test_copy_helpers_apply_the_pickled_guard(root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    jobs: list[tuple[JobFields, str | None]] = [
        (FileJob("/shared/link/secret.txt", "/out.txt", len(SECRET), 0.0).fields(), None),
        (FileJob("/shared/ok.txt", "/ok.txt", 2, 0.0).fields(), None),
    ]
    guard = pickle.loads(pickle.dumps(guard_r()))
    outcomes = copy_group_local(
        str(root), str(dest), jobs, verify=False, preserve_timestamp=False, source_guard=guard
    )
    assert isinstance(outcomes[0], PermissionDenied), outcomes
    assert outcomes[1] is None
    assert sorted(os.listdir(dest)) == ["ok.txt"]


async def test_stores_without_links_are_wrapped() -> None:
    inner = MemoryConnector()
    await inner.mkdir("/shared")
    await inner.mkdir("/private")
    conn = with_guard(inner, guard_rw())
    assert isinstance(conn, GuardedConnector)
    await conn.mkdir("/shared/a")
    await refused(lambda: conn.mkdir("/private/a"))
    await refused(lambda: conn.stat("/private"))
    await refused(lambda: conn.rename("/shared/a", "/private/a"))
    state = await conn.begin_write("/shared/f", 1)
    await conn.write(state, 0, b"x")
    await conn.commit_write(state, "/shared/f")
    assert (await conn.stat("/shared/f")).size == 1
    assert with_guard(inner, None) is inner
    await conn.close()


async def _drain(conn: Connector, path: str) -> None:
    async for _ in conn.list(path):
        pass


async def test_wrapper_checks_canonical_paths() -> None:
    inner = MemoryConnector()
    await inner.mkdir("/private")
    conn = with_guard(inner, guard_rw())
    with pytest.raises(ConnectorError):  # '..' is malformed, never matched against a grant
        await conn.stat("/shared/../private")
    await refused(lambda: conn.stat("//private/./"))
    await conn.close()
