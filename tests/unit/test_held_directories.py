"""A group of small writes looks each directory up once, and stays confined and guarded."""

from __future__ import annotations

import os
from pathlib import Path

from arctern.connectors.access import AccessGuard
from arctern.connectors.errors import IsADirectory, PathOutsideRoot, PermissionDenied
from arctern.connectors.posix.connector import TEMP_PREFIX, HeldDirectories, PosixConnector
from arctern.engine.local import write_small_many
from arctern.engine.options import FileJob


def work(paths: list[str]) -> list[tuple[FileJob, bytes, str | None, str | None]]:
    return [
        (FileJob(f"/src{p}", p, len(p.encode()), 1_600_000_000.0), p.encode(), None, None)
        for p in paths
    ]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_group_writes_into_several_directories_and_closes_them(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for folder in ("a", "b/c"):
        (root / folder).mkdir(parents=True)
    connector = PosixConnector(str(root))
    paths = [f"/a/f{i}" for i in range(5)] + ["/b/c/g", "/top", "/a/f5"]
    connector.release()
    before = open_fds()
    outcomes = write_small_many(connector, work(paths), verify=True, preserve_timestamp=True)
    connector.release()  # the root it held; the group's directories are closed already
    assert outcomes == [None] * len(paths)
    assert open_fds() == before
    for p in paths:
        assert (root / p.lstrip("/")).read_bytes() == p.encode()
        assert (root / p.lstrip("/")).stat().st_mtime == 1_600_000_000.0
    assert not [n for n in os.listdir(root / "a") if n.startswith(TEMP_PREFIX)]


def test_a_directory_replaced_by_a_symlink_out_of_the_root_is_not_followed(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "away")
    os.symlink("d", root / "inside")  # a symlink that stays in the root is followed
    connector = PosixConnector(str(root))
    outcomes = write_small_many(
        connector, work(["/d/x", "/away/y", "/inside/z"]), verify=False, preserve_timestamp=False
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PathOutsideRoot), outcomes
    assert outcomes[2] is None
    assert os.listdir(outside) == []
    assert sorted(os.listdir(root / "d")) == ["x", "z"]


def test_the_guard_is_checked_for_every_file_of_a_held_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "shared").mkdir(parents=True)
    guard = AccessGuard(readable=["/shared/"], writable=["/shared/"], denied=["/shared/secret"])
    connector = PosixConnector(str(root), guard=guard)
    outcomes = write_small_many(
        connector,
        work(["/shared/ok", "/shared/secret", "/shared/ok2"]),
        verify=False,
        preserve_timestamp=False,
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], PermissionDenied), outcomes
    assert sorted(os.listdir(root / "shared")) == ["ok", "ok2"]


def test_a_group_replaces_existing_files_and_refuses_a_directory_in_the_way(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    (root / "d" / "taken_by_dir").mkdir(parents=True)
    (root / "d" / "old").write_bytes(b"previous contents")
    other = root / "d" / "other-name"
    other.write_bytes(b"linked")
    os.link(other, root / "d" / "hardlinked")
    connector = PosixConnector(str(root))
    outcomes = write_small_many(
        connector,
        work(["/d/old", "/d/taken_by_dir", "/d/hardlinked", "/d/new"]),
        verify=True,
        preserve_timestamp=True,
    )
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], IsADirectory), outcomes
    assert (root / "d" / "old").read_bytes() == b"/d/old"
    assert (root / "d" / "new").read_bytes() == b"/d/new"
    # The name was replaced, not written through: the other link keeps its data.
    assert (root / "d" / "hardlinked").read_bytes() == b"/d/hardlinked"
    assert other.read_bytes() == b"linked"
    assert (root / "d" / "taken_by_dir").is_dir()
    assert sorted(os.listdir(root / "d")) == [
        "hardlinked",
        "new",
        "old",
        "other-name",
        "taken_by_dir",
    ]


def test_a_file_being_written_has_no_name_until_it_is_committed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    connector = PosixConnector(str(root))
    held = HeldDirectories()
    try:
        temp = connector.create_temp_blocking("/d/f", "file7", held)
        try:
            temp.write(b"data")
            assert os.listdir(root / "d") == []
        finally:
            temp.close()  # not committed: nothing is left behind
        assert os.listdir(root / "d") == []
    finally:
        held.close()
        connector.release()


def test_without_unnamed_files_a_group_uses_named_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    connector = PosixConnector(str(root))
    held = HeldDirectories()
    held.unnamed_temps = False  # as on a file system without O_TMPFILE, or without /proc
    try:
        temp = connector.create_temp_blocking("/d/f", "file7", held)
        temp.write(b"data")
        assert os.listdir(root / "d") == [f"{TEMP_PREFIX}file7.part"]
        temp.commit(None)
        temp.close()
        assert os.listdir(root / "d") == ["f"]
        assert (root / "d" / "f").read_bytes() == b"data"
    finally:
        held.close()
        connector.release()
