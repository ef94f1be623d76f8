"""Access control: a second user can neither list, read nor write a collection without an access
rule, can with one, and never sees another user's tasks; only owners manage rules."""

from __future__ import annotations

import uuid

import globus_sdk
import pytest

from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer


def status_of(call: object, *args: object, **kwargs: object) -> int:
    """The HTTP status of a Transfer call that must fail."""
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        call(*args, **kwargs)  # type: ignore[operator]
    return excinfo.value.http_status


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Account:
    return login(server, DEMO_USERNAME, DEMO_PASSWORD)


@pytest.fixture(scope="module")
def ids(owner: Account) -> tuple[str, str]:
    found = {e["display_name"]: e["id"] for e in owner.tc.endpoint_search("Demo Collection")}
    return found["Demo Collection 1"], found["Demo Collection 2"]


def test_rules_grant_read_then_write_and_tasks_stay_private(
    server: LiveServer, owner: Account, ids: tuple[str, str]
) -> None:
    c1, c2 = ids
    username, password = make_user(server, "bob")
    bob = login(server, username, password)
    scratch = f"/bob-{uuid.uuid4().hex[:6]}/"
    owner.tc.operation_mkdir(c2, scratch)

    # Public collections are found, but nothing inside is readable or writable.
    assert {e["id"] for e in bob.tc.endpoint_search("Demo Collection")} == {c1, c2}
    assert bob.tc.get_endpoint(c1)["display_name"] == "Demo Collection 1"
    assert status_of(bob.tc.operation_ls, c1) == 403
    assert status_of(bob.tc.operation_ls, c1, path="/nested/") == 403
    assert status_of(bob.tc.operation_stat, c1, "/hello.txt") == 403
    assert status_of(bob.tc.operation_mkdir, c2, scratch + "new/") == 403
    assert status_of(bob.tc.operation_rename, c2, scratch, "/renamed/") == 403
    tdata = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    tdata.add_item("/nested/dir/file.txt", scratch + "file.txt")
    assert status_of(bob.tc.submit_transfer, tdata) == 403
    ddata = globus_sdk.DeleteData(endpoint=c1)
    ddata.add_item("/hello.txt")
    assert status_of(bob.tc.submit_delete, ddata) == 403
    assert status_of(bob.tc.endpoint_acl_list, c1) == 403
    rule_doc = {
        "DATA_TYPE": "access",
        "principal_type": "identity",
        "principal": bob.identity_id,
        "path": "/nested/",
        "permissions": "rw",
    }
    assert status_of(bob.tc.add_endpoint_acl_rule, c1, rule_doc) == 403

    # Read access beneath /nested/ on collection 1.
    created = owner.tc.add_endpoint_acl_rule(c1, {**rule_doc, "permissions": "r"})
    assert created.http_status == 201
    assert created["code"] == "Created" and created["DATA_TYPE"] == "access_create_result"
    read_rule = created["access_id"]
    rule = owner.tc.get_endpoint_acl_rule(c1, read_rule)
    assert rule["principal"] == bob.identity_id and rule["path"] == "/nested/"
    assert rule["permissions"] == "r"
    assert read_rule in [r["id"] for r in owner.tc.endpoint_acl_list(c1)]
    assert {f["name"] for f in bob.tc.operation_ls(c1, path="/nested/")} >= {"dir", "top.txt"}
    assert [f["name"] for f in bob.tc.operation_ls(c1, path="/~/nested/dir")] == [
        "another.txt",
        "file.txt",
    ]
    assert bob.tc.operation_stat(c1, "/nested/dir/file.txt")["type"] == "file"
    assert status_of(bob.tc.operation_ls, c1, path="/") == 403
    assert status_of(bob.tc.operation_ls, c1, path="/nested/../data/") == 403
    assert status_of(bob.tc.operation_mkdir, c1, "/nested/bobdir/") == 403

    # Write access to a scratch directory on collection 2: now the transfer is accepted.
    write_rule = owner.tc.add_endpoint_acl_rule(
        c2,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": bob.identity_id,
            "path": scratch,
            "permissions": "rw",
        },
    )["access_id"]
    assert bob.tc.operation_mkdir(c2, scratch + "made-by-bob/")["code"] == "DirectoryCreated"
    accepted = bob.tc.submit_transfer(tdata)
    assert accepted["code"] == "Accepted"
    bob_task = accepted["task_id"]
    outside = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    outside.add_item("/nested/dir/file.txt", "/not-bobs/file.txt")
    assert status_of(bob.tc.submit_transfer, outside) == 403
    from_unreadable = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    from_unreadable.add_item("/hello.txt", scratch + "hello.txt")
    assert status_of(bob.tc.submit_transfer, from_unreadable) == 403

    # Tasks are private to their owner, in both directions.
    owner_data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    owner_data.add_item("/hello.txt", scratch + "owner-copy.txt")
    owner_task = owner.tc.submit_transfer(owner_data)["task_id"]
    assert [t["task_id"] for t in bob.tc.task_list()] == [bob_task]
    assert bob_task not in [t["task_id"] for t in owner.tc.task_list(limit=1000)]
    for tc, foreign in ((bob.tc, owner_task), (owner.tc, bob_task)):
        assert status_of(tc.get_task, foreign) == 404
        assert status_of(tc.cancel_task, foreign) == 404
        assert status_of(tc.update_task, foreign, {"label": "mine now"}) == 404
        assert status_of(tc.task_event_list, foreign) == 404
        assert status_of(tc.task_successful_transfers, foreign) == 404

    # Upgrading the rule to rw allows writes; deleting it removes access again.
    assert (
        owner.tc.update_endpoint_acl_rule(c1, read_rule, {"permissions": "rw"})["code"] == "Updated"
    )
    bob_dir = f"/nested/bob-{uuid.uuid4().hex[:4]}"
    assert bob.tc.operation_mkdir(c1, bob_dir)["code"] == "DirectoryCreated"
    # Leave the shared demo data as other tests expect it.
    (server.home / "demo" / "collection1" / bob_dir.strip("/")).rmdir()
    assert owner.tc.delete_endpoint_acl_rule(c1, read_rule)["code"] == "Deleted"
    assert status_of(bob.tc.operation_ls, c1, path="/nested/") == 403
    assert status_of(owner.tc.get_endpoint_acl_rule, c1, read_rule) == 404
    owner.tc.delete_endpoint_acl_rule(c2, write_rule)
    assert status_of(bob.tc.operation_mkdir, c2, scratch + "again/") == 403


def test_rule_validation_and_all_authenticated_users(
    server: LiveServer, owner: Account, ids: tuple[str, str]
) -> None:
    c1, _ = ids
    username, password = make_user(server, "carol")
    carol = login(server, username, password)
    bad_rules = [
        {
            "principal_type": "identity",
            "principal": str(uuid.uuid4()),
            "path": "/",
            "permissions": "r",
        },
        {
            "principal_type": "identity",
            "principal": carol.identity_id,
            "path": "/",
            "permissions": "rwx",
        },
        {
            "principal_type": "group",
            "principal": str(uuid.uuid4()),
            "path": "/",
            "permissions": "r",
        },
        {
            "principal_type": "all_authenticated_users",
            "principal": "",
            "path": "/../",
            "permissions": "r",
        },
    ]
    for doc in bad_rules:
        assert status_of(owner.tc.add_endpoint_acl_rule, c1, {"DATA_TYPE": "access", **doc}) in (
            400,
            403,
        )
    everyone = owner.tc.add_endpoint_acl_rule(
        c1,
        {
            "DATA_TYPE": "access",
            "principal_type": "all_authenticated_users",
            "principal": "",
            "path": "/data",
            "permissions": "r",
        },
    )["access_id"]
    try:
        assert owner.tc.get_endpoint_acl_rule(c1, everyone)["path"] == "/data/"
        names = {f["name"] for f in carol.tc.operation_ls(c1, path="/data/")}
        assert "numbers.csv" in names
        assert status_of(carol.tc.operation_ls, c1, path="/nested/") == 403
        duplicate = {
            "DATA_TYPE": "access",
            "principal_type": "all_authenticated_users",
            "principal": "",
            "path": "/data/",
            "permissions": "r",
        }
        assert status_of(owner.tc.add_endpoint_acl_rule, c1, duplicate) == 409
    finally:
        owner.tc.delete_endpoint_acl_rule(c1, everyone)
    assert status_of(carol.tc.operation_ls, c1, path="/data/") == 403


def test_private_collection_is_invisible_without_a_rule(
    server: LiveServer, owner: Account, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("private-root")
    (root / "secret.txt").write_text("classified")
    name = f"Private {uuid.uuid4().hex[:6]}"
    created = server.admin(
        "collection",
        "create",
        "--name",
        name,
        "--posix",
        str(root),
        "--owner",
        DEMO_USERNAME,
        "--private",
    )
    assert created.returncode == 0, created.stderr
    collection_id = created.stdout.strip()
    uuid.UUID(collection_id)
    listed = server.admin("collection", "list")
    assert collection_id in listed.stdout and name in listed.stdout

    username, password = make_user(server, "dave")
    dave = login(server, username, password)
    assert collection_id not in [e["id"] for e in dave.tc.endpoint_search(name)]
    assert status_of(dave.tc.get_endpoint, collection_id) == 404
    assert [e["id"] for e in owner.tc.endpoint_search(name)] == [collection_id]
    assert [f["name"] for f in owner.tc.operation_ls(collection_id)] == ["secret.txt"]
    owner.tc.add_endpoint_acl_rule(
        collection_id,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": dave.identity_id,
            "path": "/",
            "permissions": "r",
        },
    )
    assert [e["id"] for e in dave.tc.endpoint_search(name)] == [collection_id]
    shared = dave.tc.endpoint_search(filter_scope="shared-with-me")
    assert collection_id in [e["id"] for e in shared]
    assert [f["name"] for f in dave.tc.operation_ls(collection_id, path="/~/")] == ["secret.txt"]
