"""Roles and endpoint administration with the unmodified globus-sdk: ``add_endpoint_role``,
``endpoint_role_list``, the ``endpoint_manager_*`` calls, and what each role allows.

This server runs no worker (``--no-worker``), so a transfer stays ACTIVE, queued, for as
long as the test needs: another user's task for the administrators to see, hold and
cancel. A standalone worker started afterwards carries the cancel out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    server: LiveServer
    owner: Account
    c1: str
    c2: str


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(
        tmp_path_factory.mktemp("admin"),
        extra_args=[*_database_args(request), "--no-worker"],
    )
    try:
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        ids = {
            c["display_name"]: c["id"]
            for c in owner.tc.endpoint_search("Demo Collection")
            if c["display_name"] in ("Demo Collection 1", "Demo Collection 2")
        }
        yield Site(server, owner, ids["Demo Collection 1"], ids["Demo Collection 2"])
    finally:
        server.stop()


def status_of(call: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(globus_sdk.TransferAPIError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return int(caught.value.http_status)


def role(site: Site, collection: str, who: Account, name: str) -> str:
    made = site.owner.tc.add_endpoint_role(
        collection, {"DATA_TYPE": "role", "principal_type": "identity",
                     "principal": who.identity_id, "role": name},
    )  # fmt: skip
    return str(made["id"])


def test_an_activity_manager_cancels_another_users_task(site: Site) -> None:
    tc = site.owner.tc
    researcher = login(site.server, *make_user(site.server, "researcher"))
    manager = login(site.server, *make_user(site.server, "manager"))
    monitor = login(site.server, *make_user(site.server, "monitor"))
    nobody = login(site.server, *make_user(site.server, "nobody"))
    folder = f"/admin-{uuid.uuid4().hex[:6]}/"
    tc.operation_mkdir(site.c1, folder)
    (site.server.home / "demo" / "collection1" / folder.strip("/") / "f.bin").write_bytes(
        b"x" * 4096
    )
    for collection in (site.c1, site.c2):
        tc.add_endpoint_acl_rule(
            collection,
            {"DATA_TYPE": "access", "principal_type": "identity",
             "principal": researcher.identity_id, "path": folder, "permissions": "rw"},
        )  # fmt: skip
    tc.operation_mkdir(site.c2, folder)
    data = globus_sdk.TransferData(source_endpoint=site.c1, destination_endpoint=site.c2)
    data.add_item(f"{folder}f.bin", f"{folder}f.bin")
    task_id = researcher.tc.submit_transfer(data)["task_id"]

    manager_role = role(site, site.c1, manager, "activity_manager")
    role(site, site.c2, monitor, "activity_monitor")
    listed = {r["role"] for r in tc.endpoint_role_list(site.c1)}
    assert listed == {"administrator", "activity_manager"}
    assert tc.get_endpoint_role(site.c1, manager_role)["principal"] == manager.identity_id
    # Only administrators grant roles.
    assert status_of(
        manager.tc.add_endpoint_role, site.c1,
        {"DATA_TYPE": "role", "principal_type": "identity",
         "principal": nobody.identity_id, "role": "administrator"},
    ) == 403  # fmt: skip

    # Monitors and managers see the researcher's task; others do not.
    for who in (manager, monitor):
        found = [t["task_id"] for t in who.tc.endpoint_manager_task_list()]
        assert task_id in found
        shown = who.tc.endpoint_manager_get_task(task_id)
        assert shown["owner_id"] == researcher.identity_id
        assert shown["username"] == researcher.username
    monitored = {e["id"] for e in monitor.tc.endpoint_manager_monitored_endpoints()}
    assert monitored == {site.c2}
    assert list(nobody.tc.endpoint_manager_task_list()) == []
    assert status_of(nobody.tc.endpoint_manager_get_task, task_id) == 404
    assert status_of(researcher.tc.endpoint_manager_get_task, task_id) == 404

    # The manager holds the task, then lets it go.
    paused = manager.tc.endpoint_manager_pause_tasks([task_id], "Checking the storage")
    assert paused["code"] == "PauseAccepted" and paused["task_id_list"] == [task_id]
    held = researcher.tc.get_task(task_id)
    assert held["is_paused"] is True and held["nice_status"] == "PAUSED_BY_ADMIN"
    info = researcher.tc.task_pause_info(task_id)
    assert [r["message"] for r in info["pause_rules"]] == ["Checking the storage"]
    assert manager.tc.endpoint_manager_resume_tasks([task_id])["task_id_list"] == [task_id]
    assert researcher.tc.get_task(task_id)["is_paused"] is False
    assert researcher.tc.task_pause_info(task_id)["pause_rules"] == []
    assert monitor.tc.endpoint_manager_pause_tasks([task_id], "no")["task_id_list"] == []

    # A monitor cannot cancel; the manager can.
    skipped = monitor.tc.endpoint_manager_cancel_tasks([task_id], "monitoring only")
    assert skipped["canceled_task_id_list"] == []
    assert researcher.tc.get_task(task_id)["status"] == "ACTIVE"
    done = manager.tc.endpoint_manager_cancel_tasks([task_id], "Storage maintenance tonight")
    assert done["canceled_task_id_list"] == [task_id]
    with site.server.worker():
        deadline = time.monotonic() + 120
        while researcher.tc.get_task(task_id)["status"] == "ACTIVE":
            assert time.monotonic() < deadline, "the cancelled task did not stop"
            time.sleep(0.5)
    ended = researcher.tc.get_task(task_id)
    assert ended["status"] == "FAILED" and ended["fatal_error"]["code"] == "CANCELED"
    events = [e["code"] for e in manager.tc.endpoint_manager_task_event_list(task_id)]
    assert "CANCELED_BY_ADMIN" in events
    details = [e["details"] for e in researcher.tc.task_event_list(task_id)]
    assert "Storage maintenance tonight" in details

    # Removing the role takes the view away.
    tc.delete_endpoint_role(site.c1, manager_role)
    assert status_of(manager.tc.endpoint_manager_get_task, task_id) == 404


def test_an_access_manager_manages_rules_but_not_roles(site: Site) -> None:
    keeper = login(site.server, *make_user(site.server, "keeper"))
    guest = login(site.server, *make_user(site.server, "guest"))
    role(site, site.c2, keeper, "access_manager")
    rule = keeper.tc.add_endpoint_acl_rule(
        site.c2,
        {"DATA_TYPE": "access", "principal_type": "identity", "principal": guest.identity_id,
         "path": "/", "permissions": "r"},
    )["access_id"]  # fmt: skip
    assert rule in {r["id"] for r in keeper.tc.endpoint_acl_list(site.c2)}
    keeper.tc.delete_endpoint_acl_rule(site.c2, rule)
    assert status_of(keeper.tc.endpoint_role_list, site.c2) == 403
    assert status_of(keeper.tc.endpoint_role_list, "not-an-endpoint") == 404
    assert status_of(keeper.tc.endpoint_acl_list, site.c1) == 403


def test_update_endpoint_by_its_administrators(site: Site) -> None:
    tc = site.owner.tc
    assert (
        tc.update_endpoint(site.c2, {"description": "Scratch space", "keywords": "scratch,tmp"})[
            "code"
        ]
        == "Updated"
    )
    doc = tc.get_endpoint(site.c2)
    assert doc["description"] == "Scratch space" and doc["keywords"] == "scratch,tmp"
    outsider = login(site.server, *make_user(site.server, "outsider"))
    assert status_of(outsider.tc.update_endpoint, site.c2, {"description": "mine now"}) == 403
    assert status_of(tc.update_endpoint, site.c2, {"root": "/etc"}) == 400
    assert status_of(tc.update_endpoint, site.c2, {"display_name": "Demo Collection 1"}) == 409
    assert tc.get_endpoint(site.c2)["description"] == "Scratch space"


def test_monitors_see_collections_guests_rules_and_file_records(site: Site) -> None:
    tc = site.owner.tc
    watcher = login(site.server, *make_user(site.server, "watcher"))
    researcher = login(site.server, *make_user(site.server, "records"))
    nobody = login(site.server, *make_user(site.server, "unrelated"))
    folder = f"/watched-{uuid.uuid4().hex[:6]}/"
    tc.operation_mkdir(site.c1, folder)
    (site.server.home / "demo" / "collection1" / folder.strip("/") / "w.bin").write_bytes(
        b"w" * 2048
    )
    rule = tc.add_endpoint_acl_rule(
        site.c1,
        {"DATA_TYPE": "access", "principal_type": "identity",
         "principal": researcher.identity_id, "path": folder, "permissions": "rw"},
    )["access_id"]  # fmt: skip
    guest = tc.create_shared_endpoint(
        {"DATA_TYPE": "shared_endpoint", "host_endpoint": site.c1, "host_path": folder,
         "display_name": f"Watched share {folder.strip('/')}"}
    )["id"]  # fmt: skip
    role(site, site.c1, watcher, "activity_monitor")

    assert watcher.tc.endpoint_manager_get_endpoint(site.c1)["display_name"] == "Demo Collection 1"
    hosted = {e["id"] for e in watcher.tc.endpoint_manager_hosted_endpoint_list(site.c1)}
    assert guest in hosted
    assert rule in {r["id"] for r in watcher.tc.endpoint_manager_acl_list(site.c1)}
    for call in (
        nobody.tc.endpoint_manager_get_endpoint,
        nobody.tc.endpoint_manager_hosted_endpoint_list,
        nobody.tc.endpoint_manager_acl_list,
    ):
        assert status_of(call, site.c1) == 404

    data = globus_sdk.TransferData(source_endpoint=site.c1, destination_endpoint=site.c1)
    data.add_item(f"{folder}w.bin", f"{folder}copy.bin")
    task_id = researcher.tc.submit_transfer(data)["task_id"]
    with site.server.worker():
        assert researcher.tc.task_wait(task_id, timeout=120, polling_interval=1)
    done = list(watcher.tc.endpoint_manager_task_successful_transfers(task_id))
    assert [(d["destination_path"], d["size"]) for d in done] == [(f"{folder}copy.bin", 2048)]
    assert list(watcher.tc.endpoint_manager_task_skipped_errors(task_id)) == []
    assert status_of(nobody.tc.endpoint_manager_task_successful_transfers, task_id) == 404
