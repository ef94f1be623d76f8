"""POSIX-only confinement: symlinks may be followed inside the root, never out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arctern.connectors.errors import ConnectorError, PathOutsideRoot
from arctern.connectors.posix.connector import PosixConnector
from tests.connectors.conftest import names, put


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, float]]:
    result = {}
    for path in sorted(directory.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        result[str(path)] = (data, st.st_mode, st.st_mtime)
    result["."] = (b"", directory.stat().st_mode, directory.stat().st_mtime)
    return result


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "file.txt").write_bytes(b"inside data")
    outside.mkdir()
    (outside / "secret").write_bytes(b"SECRET")
    (outside / "dir").mkdir()
    os.symlink(str(outside), root / "out_abs")
    os.symlink("../outside", root / "out_rel")
    os.symlink(str(outside / "secret"), root / "out_file")
    os.symlink("../../../outside/secret", root / "sub" / "deep" / "out_deep")
    os.symlink("..", root / "up")  # the parent of the root: outside
    os.symlink("loop", root / "loop")
    os.symlink("sub", root / "in_rel")
    os.symlink(str(root / "sub"), root / "in_abs")
    os.symlink("../file.txt", root / "sub" / "deep" / "in_file")
    os.symlink("..", root / "sub" / "to_root")  # resolves to the root itself: inside
    return root, outside


OUTSIDE_PATHS = [
    "/out_abs",
    "/out_abs/secret",
    "/out_abs/dir",
    "/out_rel/secret",
    "/out_file",
    "/sub/deep/out_deep",
    "/up",
    "/up/outside/secret",
    "/sub/to_root/up/outside",
    "/loop",
    "/loop/x",
]


@pytest.mark.parametrize("path", OUTSIDE_PATHS)
async def test_symlinks_out_of_root_are_never_followed(
    layout: tuple[Path, Path], path: str
) -> None:
    root, outside = layout
    before = snapshot(outside)
    conn = PosixConnector(str(root))
    with pytest.raises(PathOutsideRoot):
        await conn.stat(path)
    with pytest.raises(PathOutsideRoot):
        await conn.read(path, 0, 10)
    with pytest.raises(PathOutsideRoot):
        [i async for i in conn.list(path)]
    for op in (
        conn.mkdir(path + "/new", parents=True),
        conn.begin_write(path + "/new", 1),
        conn.delete(path + "/secret", recursive=True),
        conn.rename("/sub/file.txt", path + "/moved"),
    ):
        with pytest.raises(ConnectorError):
            await op
    assert snapshot(outside) == before
    assert (root / "sub" / "file.txt").read_bytes() == b"inside data"


async def test_links_are_listed_as_links(layout: tuple[Path, Path]) -> None:
    root, _outside = layout
    conn = PosixConnector(str(root))
    entries = {i.name: i async for i in conn.list("/")}
    assert entries["out_abs"].type == "link"
    assert entries["in_rel"].type == "link"
    assert entries["in_rel"].link_target == "sub"
    assert entries["sub"].type == "dir"


async def test_links_inside_root_are_followed(layout: tuple[Path, Path]) -> None:
    root, _outside = layout
    conn = PosixConnector(str(root))
    assert await conn.read("/in_rel/file.txt", 0, 100) == b"inside data"
    assert await conn.read("/in_abs/file.txt", 0, 100) == b"inside data"
    assert await conn.read("/sub/deep/in_file", 0, 100) == b"inside data"
    assert (await conn.stat("/in_rel")).type == "dir"
    assert (await conn.stat("/in_rel")).path == "/sub"
    assert "file.txt" in await names(conn, "/in_abs")
    assert "sub" in await names(conn, "/sub/to_root")
    await put(conn, "/in_rel/new.txt", b"via link")
    assert (root / "sub" / "new.txt").read_bytes() == b"via link"


async def test_deleting_a_link_removes_the_link_not_the_target(
    layout: tuple[Path, Path],
) -> None:
    root, outside = layout
    before = snapshot(outside)
    conn = PosixConnector(str(root))
    await conn.delete("/out_abs", recursive=True)
    await conn.delete("/out_file")
    assert not (root / "out_abs").exists()
    assert snapshot(outside) == before


async def test_committing_over_an_outside_link_replaces_the_link(
    layout: tuple[Path, Path],
) -> None:
    root, outside = layout
    conn = PosixConnector(str(root))
    await put(conn, "/out_file", b"replaced")
    assert (outside / "secret").read_bytes() == b"SECRET"
    assert not (root / "out_file").is_symlink()
    assert (root / "out_file").read_bytes() == b"replaced"


async def test_root_behind_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_bytes(b"x")
    os.symlink(str(real), tmp_path / "alias")
    conn = PosixConnector(str(tmp_path / "alias"))
    assert await conn.read("/f", 0, 1) == b"x"


async def test_errno_mapping(tmp_path: Path) -> None:
    from arctern.connectors.errors import ObjectNotFound, PermissionDenied

    root = tmp_path / "r"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "f").write_bytes(b"1")
    conn = PosixConnector(str(root))
    with pytest.raises(ObjectNotFound):
        await conn.stat("/nope")
    if os.geteuid() != 0:
        (root / "locked").chmod(0)
        try:
            with pytest.raises(PermissionDenied):
                await conn.read("/locked/f", 0, 1)
        finally:
            (root / "locked").chmod(0o755)
