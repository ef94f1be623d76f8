"""Guest collections through the Transfer API (``create_shared_endpoint``, as older scripts
make them), against a live server with the unmodified globus-sdk.

The demo owner shares ``/lab/`` of Demo Collection 1 with a researcher (rw); the researcher
makes a guest collection there and shares it with a group. A member lists it and copies a
file out of it; a non-member is refused; the guest root is a hard boundary (``..`` and a
symbolic link out of it); removing the member, or the researcher's own access to the mapped
collection, takes the access away.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_groups import groups_client
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)


@dataclass
class Lab:
    server: LiveServer
    owner: Account
    creator: Account
    creator_password: str
    member: Account
    stranger: Account
    mapped: str
    rule_id: str


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    server = start_server(tmp_path_factory.mktemp("guests"), extra_args=_database_args(request))
    try:
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        creator_name, creator_password = make_user(server, "creator")
        creator = login(server, creator_name, creator_password)
        member = login(server, *make_user(server, "member"))
        stranger = login(server, *make_user(server, "stranger"))
        mapped = str(
            next(
                c["id"]
                for c in owner.tc.endpoint_search("Demo Collection 1")
                if c["display_name"] == "Demo Collection 1"
            )
        )
        root = server.home / "demo" / "collection1"
        (root / "lab" / "results").mkdir(parents=True)
        (root / "lab" / "results" / "run1.csv").write_text("a,b\n1,2\n")
        (root / "private").mkdir()
        (root / "private" / "secret.txt").write_text("not for guests")
        os.symlink(root / "private", root / "lab" / "shortcut")
        os.symlink(root / "private", root / "linked-lab")
        rule_id = owner.tc.add_endpoint_acl_rule(
            mapped,
            {"DATA_TYPE": "access", "principal_type": "identity",
             "principal": creator.identity_id, "path": "/lab/", "permissions": "rw"},
        )["access_id"]  # fmt: skip
        yield Lab(server, owner, creator, creator_password, member, stranger, mapped, rule_id)
    finally:
        server.stop()


def ls(account: Account, collection: str, path: str = "/") -> list[str]:
    return sorted(e["name"] for e in account.tc.operation_ls(collection, path=path))


def status_of(call: Callable[..., object], *args: object, **kwargs: object) -> int:
    with pytest.raises(globus_sdk.TransferAPIError) as caught:
        call(*args, **kwargs)
    return int(caught.value.http_status)


def test_a_guest_collection_shared_with_a_group(lab: Lab) -> None:
    name = f"Lab share {uuid.uuid4().hex[:6]}"
    guest = lab.creator.tc.create_shared_endpoint(
        {"DATA_TYPE": "shared_endpoint", "host_endpoint": lab.mapped, "host_path": "/lab/",
         "display_name": name, "description": "our runs"}
    )["id"]  # fmt: skip
    doc = lab.creator.tc.get_endpoint(guest)
    assert doc["entity_type"] == "GCSv5_guest_collection" and doc["display_name"] == name
    assert doc["mapped_collection_id"] == lab.mapped and doc["host_path"] == "/lab/"
    assert doc["mapped_collection_display_name"] == "Demo Collection 1"
    mine = list(lab.creator.tc.my_shared_endpoint_list(lab.mapped))
    assert [d["id"] for d in mine] == [guest]
    assert ls(lab.creator, guest) == ["results", "shortcut"]
    # The root is a hard boundary: no way up, and a link out of it leads nowhere.
    assert status_of(lab.creator.tc.operation_ls, guest, path="/../private/") in (400, 403, 404)
    assert status_of(lab.creator.tc.operation_ls, guest, path="/shortcut/") in (403, 404)

    groups = groups_client(lab.server, lab.creator.username, lab.creator_password)
    gid = groups.create_group({"name": f"Lab {uuid.uuid4().hex[:6]}"})["id"]
    groups.batch_membership_action(
        gid, {"add": [{"identity_id": lab.member.identity_id, "role": "member"}]}
    )
    lab.creator.tc.add_endpoint_acl_rule(
        guest,
        {"DATA_TYPE": "access", "principal_type": "group", "principal": gid,
         "path": "/results/", "permissions": "r"},
    )  # fmt: skip
    assert ls(lab.member, guest, "/results/") == ["run1.csv"]
    # ... and copies a file out of it into their own folder of Demo Collection 2.
    dest = str(
        next(
            c["id"]
            for c in lab.owner.tc.endpoint_search("Demo Collection 2")
            if c["display_name"] == "Demo Collection 2"
        )
    )
    drop = f"/drop-{uuid.uuid4().hex[:6]}/"
    lab.owner.tc.operation_mkdir(dest, drop)
    lab.owner.tc.add_endpoint_acl_rule(
        dest,
        {"DATA_TYPE": "access", "principal_type": "identity",
         "principal": lab.member.identity_id, "path": drop, "permissions": "rw"},
    )  # fmt: skip
    data = globus_sdk.TransferData(source_endpoint=guest, destination_endpoint=dest)
    data.add_item("/results/run1.csv", f"{drop}run1.csv")
    task = lab.member.tc.submit_transfer(data)["task_id"]
    assert lab.member.tc.task_wait(task, timeout=120, polling_interval=1)
    assert lab.member.tc.get_task(task)["status"] == "SUCCEEDED"
    copied = lab.server.home / "demo" / "collection2" / drop.strip("/") / "run1.csv"
    assert copied.read_text() == "a,b\n1,2\n"
    # Guests do not see the rest of the mapped collection, nor write here.
    assert status_of(lab.member.tc.operation_ls, lab.mapped, path="/lab/") in (403, 404)
    assert status_of(lab.member.tc.operation_mkdir, guest, "/results/new/") == 403
    assert status_of(lab.stranger.tc.operation_ls, guest, path="/results/") in (403, 404)
    assert status_of(lab.stranger.tc.operation_ls, guest, path="/") in (403, 404)

    # Removing the member from the group ends their access.
    groups.batch_membership_action(gid, {"remove": [{"identity_id": lab.member.identity_id}]})
    assert status_of(lab.member.tc.operation_ls, guest, path="/results/") in (403, 404)
    groups.batch_membership_action(
        gid, {"add": [{"identity_id": lab.member.identity_id, "role": "member"}]}
    )
    assert ls(lab.member, guest, "/results/") == ["run1.csv"]

    # The creator losing access to the mapped collection ends everyone's.
    lab.owner.tc.delete_endpoint_acl_rule(lab.mapped, lab.rule_id)
    assert status_of(lab.member.tc.operation_ls, guest, path="/results/") == 403
    assert status_of(lab.creator.tc.operation_ls, guest, path="/") == 403
    lab.rule_id = lab.owner.tc.add_endpoint_acl_rule(
        lab.mapped,
        {"DATA_TYPE": "access", "principal_type": "identity",
         "principal": lab.creator.identity_id, "path": "/lab/", "permissions": "rw"},
    )["access_id"]  # fmt: skip
    assert ls(lab.member, guest, "/results/") == ["run1.csv"]

    # Only the creator deletes it.
    assert status_of(lab.member.tc.delete_endpoint, guest) == 403
    assert lab.creator.tc.delete_endpoint(guest)["code"] == "Deleted"
    assert status_of(lab.member.tc.operation_ls, guest, path="/results/") == 404


def test_guest_collections_refused_where_they_cannot_be(lab: Lab) -> None:
    def make(host_path: str, host: str | None = None) -> int:
        return status_of(
            lab.creator.tc.create_shared_endpoint,
            {"DATA_TYPE": "shared_endpoint", "host_endpoint": host or lab.mapped,
             "host_path": host_path, "display_name": f"x {uuid.uuid4().hex[:6]}"},
        )  # fmt: skip

    assert make("/private/") == 403  # not the creator's to share
    assert make("/linked-lab/") == 403  # a symbolic link (into a private folder)
    assert make("/lab/results/run1.csv") == 400  # not a folder
    assert make("/lab/nowhere/") == 400
    assert make("/lab/", host=str(uuid.uuid4())) == 404
    assert status_of(lab.creator.tc.delete_endpoint, lab.mapped) == 403
