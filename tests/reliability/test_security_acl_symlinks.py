"""Issue #10 item 1: a symlink inside a collection must not carry a shared user across the
access-rule boundary.

The owner's collection holds ``/shared/`` (granted to other users) and ``/private/`` (not),
and ``/shared/link -> ../private`` (plus an absolute link and a link to a single file). Before
the fix the rules were checked on the logical path only, so a user with ``r`` on ``/shared/``
could list and copy ``/private`` through the link and a user with ``rw`` could write, rename
and delete there. Every operation is now checked again by the connector at the location the
path resolves to. The owner's own access through the link is unchanged; a link that stays
inside the grant keeps working.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from tests.reliability.conftest import Session, create_collection, login, make_user
from tests.support.server import LiveServer

SECRET = b"PRIVATE-" + uuid.uuid4().hex.encode()


@dataclass
class Shared:
    root: Path
    collection: str
    owner: Session
    reader: Session  # r on /shared/, rw on /out/
    writer: Session  # rw on /shared/ and /out/

    @property
    def private(self) -> Path:
        return self.root / "private"

    def private_snapshot(self) -> dict[str, bytes | None]:
        return {
            str(p.relative_to(self.private)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(self.private.rglob("*"))
        }


def _grant(owner: Session, collection: str, who: Session, path: str, permissions: str) -> str:
    return str(
        owner.tc.add_endpoint_acl_rule(
            collection,
            {
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": who.identity_id,
                "path": path,
                "permissions": permissions,
            },
        )["access_id"]
    )


@pytest.fixture(scope="module")
def world(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("acl-links") / "root"
    (root / "private" / "deep").mkdir(parents=True)
    (root / "private" / "secret.txt").write_bytes(SECRET)
    (root / "private" / "deep" / "more.txt").write_bytes(SECRET + b"-deep")
    (root / "shared" / "sub").mkdir(parents=True)
    (root / "shared" / "ok.txt").write_bytes(b"shared data")
    (root / "shared" / "sub" / "inner.txt").write_bytes(b"inner")
    (root / "out").mkdir()
    os.symlink("../private", root / "shared" / "link")
    os.symlink(str(root / "private"), root / "shared" / "abslink")
    os.symlink("../private/secret.txt", root / "shared" / "filelink")
    os.symlink("sub", root / "shared" / "inlink")  # stays inside the grant
    collection = create_collection(server, f"ACL links {uuid.uuid4().hex[:6]}", root)
    owner = login(server)
    reader = login(server, *make_user(server, "reader"))
    writer = login(server, *make_user(server, "writer"))
    _grant(owner, collection, reader, "/shared/", "r")
    _grant(owner, collection, reader, "/out/", "rw")
    _grant(owner, collection, writer, "/shared/", "rw")
    _grant(owner, collection, writer, "/out/", "rw")
    return Shared(root, collection, owner, reader, writer)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> globus_sdk.TransferAPIError:
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


def assert_permission_denied(error: globus_sdk.TransferAPIError, *, direct: bool = False) -> None:
    assert error.http_status == 403, (error.http_status, error.code, error.message)
    assert error.code == "PermissionDenied", error.code
    if not direct:  # where a link leads is not told
        assert "private" not in str(error.message), error.message


def failed_codes(session: Session, task_id: str) -> list[str]:
    return [e["code"] for e in session.tc.task_event_list(task_id, limit=1000) if e["is_error"]]


# -- ls / stat ----------------------------------------------------------------------------


def test_ls_through_a_link_into_private_is_refused(world: Shared) -> None:
    c, reader = world.collection, world.reader
    for path in (
        "/shared/link/",
        "/shared/link/deep/",
        "/shared/abslink/",
        "/shared/link/../link/",
    ):
        assert_permission_denied(refused(reader.tc.operation_ls, c, path=path))
    # A direct listing was always refused; it still is.
    assert_permission_denied(refused(reader.tc.operation_ls, c, path="/private/"), direct=True)
    # Listing /shared/ shows the links as links, never what is behind them.
    entries = {e["name"]: e for e in reader.tc.operation_ls(c, path="/shared/")}
    assert entries["ok.txt"]["type"] == "file"
    for name in ("link", "abslink", "filelink"):
        assert entries[name]["type"] == "invalid_symlink", entries[name]
        # The link itself (its target's length), never the size of what it points to.
        target = os.readlink(world.root / "shared" / name)
        assert entries[name]["size"] == len(os.fsencode(target)), entries[name]
    # A link that stays inside the grant is followed as before.
    assert [e["name"] for e in reader.tc.operation_ls(c, path="/shared/inlink/")] == ["inner.txt"]


def test_stat_through_a_link_is_refused(world: Shared) -> None:
    c, reader = world.collection, world.reader
    for path in ("/shared/link/secret.txt", "/shared/filelink", "/shared/abslink/deep"):
        assert_permission_denied(refused(reader.tc.operation_stat, c, path))
    assert reader.tc.operation_stat(c, "/shared/inlink/inner.txt")["size"] == len(b"inner")


# -- mkdir / rename -------------------------------------------------------------------------


def test_mkdir_through_a_link_is_refused(world: Shared) -> None:
    c, writer = world.collection, world.writer
    before = world.private_snapshot()
    for path in ("/shared/link/planted/", "/shared/abslink/deep/planted/"):
        assert_permission_denied(refused(writer.tc.operation_mkdir, c, path))
    assert world.private_snapshot() == before
    made = f"/shared/inlink/made-{uuid.uuid4().hex[:6]}/"
    assert writer.tc.operation_mkdir(c, made)["code"] == "DirectoryCreated"


def test_rename_out_of_and_into_private_through_a_link_is_refused(world: Shared) -> None:
    c, writer = world.collection, world.writer
    before = world.private_snapshot()
    # Out: a private file pulled into the shared directory.
    assert_permission_denied(
        refused(writer.tc.operation_rename, c, "/shared/link/secret.txt", "/shared/stolen.txt")
    )
    assert_permission_denied(
        refused(writer.tc.operation_rename, c, "/shared/abslink/deep", "/shared/stolen-dir")
    )
    # In: a shared file pushed into the private directory.
    assert_permission_denied(
        refused(writer.tc.operation_rename, c, "/shared/ok.txt", "/shared/link/planted.txt")
    )
    assert world.private_snapshot() == before
    assert not (world.root / "shared" / "stolen.txt").exists()
    assert (world.root / "shared" / "ok.txt").read_bytes() == b"shared data"


# -- delete and transfer tasks ------------------------------------------------------------


def test_delete_through_a_link_fails_with_permission_denied(world: Shared) -> None:
    c, writer = world.collection, world.writer
    before = world.private_snapshot()
    data = globus_sdk.DeleteData(endpoint=c, recursive=True)
    data.add_item("/shared/link/secret.txt")
    data.add_item("/shared/abslink/deep")
    task_id = str(writer.tc.submit_delete(data)["task_id"])
    doc = writer.wait(task_id)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == "PERMISSION_DENIED", doc["fatal_error"]
    assert failed_codes(writer, task_id).count("PERMISSION_DENIED") >= 2
    assert world.private_snapshot() == before


def test_transfer_out_through_a_link_fails_with_permission_denied(world: Shared) -> None:
    c, reader = world.collection, world.reader
    dest = f"/out/{uuid.uuid4().hex[:6]}"
    task_id = reader.transfer(
        c,
        c,
        [
            ("/shared/link/secret.txt", f"{dest}/secret.txt", False),
            ("/shared/filelink", f"{dest}/filelink.txt", False),
            ("/shared/abslink/deep/", f"{dest}/deep/", True),
            ("/shared/ok.txt", f"{dest}/ok.txt", False),
        ],
    )
    doc = reader.wait(task_id)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == "PERMISSION_DENIED", doc["fatal_error"]
    assert failed_codes(reader, task_id).count("PERMISSION_DENIED") >= 3
    out = world.root / dest.strip("/")
    copied = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert copied == {"ok.txt"}, copied
    assert not list(out.rglob(".arctern-*"))


def test_transfer_into_private_through_a_link_fails_with_permission_denied(
    world: Shared,
) -> None:
    c, writer = world.collection, world.writer
    before = world.private_snapshot()
    task_id = writer.transfer(
        c,
        c,
        [
            ("/shared/ok.txt", "/shared/link/planted.txt", False),
            ("/shared/ok.txt", "/shared/link/secret.txt", False),  # overwrite attempt
            ("/shared/sub/", "/shared/abslink/planted-dir/", True),
        ],
    )
    doc = writer.wait(task_id)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == "PERMISSION_DENIED", doc["fatal_error"]
    assert world.private_snapshot() == before
    assert not list(world.private.rglob(".arctern-*"))


def test_recursive_transfer_of_shared_never_copies_the_link_target(world: Shared) -> None:
    """``recursive_symlinks=copy`` follows links: the ones leading out of the grant fail as
    PERMISSION_DENIED; the in-grant link and the regular files are copied. (With the
    default ``ignore`` every link is skipped, as before.)"""
    c, reader = world.collection, world.reader
    dest = f"/out/tree-{uuid.uuid4().hex[:6]}/"
    follow = globus_sdk.TransferData(
        source_endpoint=c,
        destination_endpoint=c,
        additional_fields={"recursive_symlinks": "copy"},
    )
    follow.add_item("/shared/", dest, recursive=True)
    task_id = str(reader.tc.submit_transfer(follow)["task_id"])
    doc = reader.wait(task_id)
    assert doc["status"] == "FAILED", doc
    assert failed_codes(reader, task_id).count("PERMISSION_DENIED") >= 3  # link, abslink, filelink
    out = world.root / dest.strip("/")
    copied = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert copied == {"ok.txt", "sub/inner.txt", "inlink/inner.txt"}, copied

    plain = f"/out/plain-{uuid.uuid4().hex[:6]}/"
    task_id = reader.transfer(c, c, [("/shared/", plain, True)])
    doc = reader.wait(task_id)
    assert doc["status"] == "SUCCEEDED", doc
    out = world.root / plain.strip("/")
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == {
        "ok.txt",
        "sub/inner.txt",
    }


# -- the owner ------------------------------------------------------------------------------


def test_owner_still_goes_through_the_link(world: Shared) -> None:
    c, owner = world.collection, world.owner
    assert {e["name"] for e in owner.tc.operation_ls(c, path="/shared/link/")} == {
        "deep",
        "secret.txt",
    }
    assert owner.tc.operation_stat(c, "/shared/filelink")["size"] == len(SECRET)
    dest = f"/out/owner-{uuid.uuid4().hex[:6]}.txt"
    task_id = owner.transfer(c, c, [("/shared/link/secret.txt", dest, False)])
    assert owner.wait(task_id)["status"] == "SUCCEEDED"
    assert (world.root / dest.strip("/")).read_bytes() == SECRET
