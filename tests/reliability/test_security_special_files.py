"""Named pipes, sockets and devices in a POSIX collection (issue #10, item 4).

Reading a FIFO without a writer blocks forever: a transfer of one used to hang a worker
(thread or helper process) for good, out of reach of cancel, with every other user's small
files queued behind it. Special files are now listed under Globus's own types (``pipe``,
``chr``, ``blk``, ``other``), left out of transfers with a per-file ``NOT_A_REGULAR_FILE``
error (skipped with ``skip_source_errors``), and the open itself is non-blocking and checked
with ``fstat`` (the race of a file replaced by a pipe after it was listed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.conftest import Session, create_collection, login, make_user

pytestmark = pytest.mark.timeout(300)

CODE = "NOT_A_REGULAR_FILE"


@dataclass
class Specials:
    """A directory of collection 1 with regular files and special ones."""

    path: str  # collection path, ends with "/"
    root: Path
    kinds: dict[str, str]  # special file name -> expected Globus type


def _make_socket(target: Path) -> bool:
    """A unix socket file at ``target`` (bound in a short temporary directory, since socket
    paths are limited to 108 bytes, then moved). False where that is impossible."""
    short = tempfile.mkdtemp(prefix="s", dir="/tmp")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(os.path.join(short, "s"))
        try:
            os.rename(os.path.join(short, "s"), target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
        return True
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _release_readers(fifo: Path) -> None:
    """Give any process blocked reading ``fifo`` its end of file (the old code's hang), so a
    failing run can still stop its server."""
    for _ in range(20):
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # ENXIO: no reader left
        os.close(fd)
        time.sleep(0.05)


@pytest.fixture
def specials(shared: Session) -> Iterator[Specials]:
    name = f"special-{uuid.uuid4().hex[:8]}"
    root = shared.c1_root / name
    root.mkdir()
    (root / "a.txt").write_bytes(b"regular file a\n")
    (root / "b.txt").write_bytes(b"regular file b\n" * 100)
    os.mkfifo(root / "fifo")
    kinds = {"fifo": "pipe"}
    if _make_socket(root / "sock"):
        kinds["sock"] = "other"
    with contextlib.suppress(PermissionError):
        # /dev/zero's numbers: read, it never ends (needs root, as CI runs).
        os.mknod(root / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        kinds["zero"] = "chr"
    try:
        yield Specials(f"/{name}/", root, kinds)
    finally:
        _release_readers(root / "fifo")
        shutil.rmtree(root, ignore_errors=True)


def test_ls_shows_special_files_with_their_globus_types(
    shared: Session, specials: Specials
) -> None:
    listing = shared.tc.operation_ls(shared.c1, path=specials.path)
    types = {entry["name"]: entry["type"] for entry in listing}
    assert types == {"a.txt": "file", "b.txt": "file", **specials.kinds}, types
    print(f"RELIABILITY special-ls types={types}")


def test_transfer_of_a_fifo_alone_fails_at_once(
    shared: Session, specials: Specials, scratch: str
) -> None:
    me = shared
    started = time.monotonic()
    task_id = me.transfer(me.c1, me.c2, [(f"{specials.path}fifo", f"{scratch}fifo", False)])
    doc = me.wait(task_id, timeout=60)
    took = time.monotonic() - started
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == CODE, doc["fatal_error"]
    assert "named pipe" in doc["fatal_error"]["description"], doc["fatal_error"]
    assert CODE in me.event_codes(task_id)
    assert not (me.c2_root / scratch.strip("/") / "fifo").exists()
    print(f"RELIABILITY special-fifo-alone status={doc['status']} took={took:.2f}s")


def test_recursive_transfer_skips_special_files_with_skip_source_errors(
    shared: Session, specials: Specials, scratch: str
) -> None:
    me = shared
    task_id = me.transfer(
        me.c1,
        me.c2,
        [(specials.path, f"{scratch}copy/", True)],
        skip_source_errors=True,
    )
    doc = me.wait(task_id, timeout=60)
    assert doc["status"] == "SUCCEEDED", doc
    skipped = {s["source_path"]: s["error_code"] for s in me.tc.task_skipped_errors(task_id)}
    assert skipped == {f"{specials.path}{name}": CODE for name in specials.kinds}, skipped
    copy = me.c2_root / scratch.strip("/") / "copy"
    assert sorted(os.listdir(copy)) == ["a.txt", "b.txt"]
    for name in ("a.txt", "b.txt"):
        assert (copy / name).read_bytes() == (specials.root / name).read_bytes()
    print(f"RELIABILITY special-skip skipped={len(skipped)} copied=2 files={doc['files']}")


def test_without_skip_the_task_fails_and_other_users_are_not_blocked(
    shared: Session, specials: Specials, scratch: str, tmp_path: Path
) -> None:
    me = shared
    started = time.monotonic()
    # More FIFO tasks than a worker has helper processes and task slots: each one used to
    # hold one of them forever.
    recursive = me.transfer(me.c1, me.c2, [(specials.path, f"{scratch}r/", True)])
    singles = [
        me.transfer(me.c1, me.c2, [(f"{specials.path}fifo", f"{scratch}f{i}", False)])
        for i in range(4)
    ]
    canceled = me.transfer(me.c1, me.c2, [(f"{specials.path}fifo", f"{scratch}c", False)])
    me.tc.cancel_task(canceled)

    # Another user, on a collection of their own, copies regular files meanwhile.
    username, password = make_user(me.server, "other")
    own = tmp_path / "other-user"
    (own / "data").mkdir(parents=True)
    for i in range(20):
        (own / "data" / f"small-{i}.dat").write_bytes(os.urandom(1000))
    other = login(me.server, username, password)
    collection = create_collection(me.server, f"Other {uuid.uuid4().hex[:6]}", own, username)
    theirs = other.transfer(collection, collection, [("/data/", "/copy/", True)])
    their_doc = other.wait(theirs, timeout=120)
    assert their_doc["status"] == "SUCCEEDED", their_doc
    assert sorted(os.listdir(own / "copy")) == sorted(f"small-{i}.dat" for i in range(20))

    doc = me.wait(recursive, timeout=60)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == CODE, doc["fatal_error"]
    for task_id in singles:
        single = me.wait(task_id, timeout=60)
        assert single["status"] == "FAILED" and single["fatal_error"]["code"] == CODE, single
    stopped = me.wait(canceled, timeout=60)
    assert stopped["status"] == "FAILED", stopped
    assert stopped["fatal_error"]["code"] in ("CANCELED", CODE), stopped
    took = time.monotonic() - started
    print(
        f"RELIABILITY special-no-skip fifo_tasks={len(singles) + 2} all FAILED "
        f"({CODE}), other user's task SUCCEEDED; took={took:.1f}s"
    )
