"""Pause rules with the unmodified globus-sdk and globus-cli: an endpoint administrator
holds writes to a collection; a researcher's transfer waits, ACTIVE and paused, while an
unheld transfer runs; the researcher sees why (``task_pause_info``, ``globus task
pause-info``, ``my_effective_pause_rule_list``); held ``mkdir``/``ls`` calls are refused;
changing the rule releases the task, which then completes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import globus, globus_login
from tests.integration.test_transfer_api import Account, login, make_user, wait_done
from tests.integration.test_web_pages import log_in, texts
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)

ONLY_WRITES_AND_MKDIR = {
    "pause_ls": False,
    "pause_mkdir": True,
    "pause_rename": False,
    "pause_task_delete": False,
    "pause_task_transfer_write": True,
    "pause_task_transfer_read": False,
}


@dataclass
class Site:
    server: LiveServer
    owner: Account
    cli_home: Path
    c1: str
    c2: str


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("pause"), extra_args=_database_args(request))
    try:
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        home = tmp_path_factory.mktemp("cli")
        logged = globus_login(server, home)
        assert logged.returncode == 0, logged.stderr
        ids = {
            c["display_name"]: c["id"]
            for c in owner.tc.endpoint_search("Demo Collection")
            if c["display_name"] in ("Demo Collection 1", "Demo Collection 2")
        }
        yield Site(server, owner, home, ids["Demo Collection 1"], ids["Demo Collection 2"])
    finally:
        server.stop()


def error_of(call: object, *args: object, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(globus_sdk.TransferAPIError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return int(caught.value.http_status), str(caught.value.code)


def shared_folder(site: Site, who: Account) -> str:
    """A folder with a file in collection 1 and an empty one in collection 2, both
    read-write for ``who``."""
    folder = f"/pause-{uuid.uuid4().hex[:6]}/"
    site.owner.tc.operation_mkdir(site.c1, folder)
    site.owner.tc.operation_mkdir(site.c2, folder)
    source = site.server.home / "demo" / "collection1" / folder.strip("/")
    (source / "f.bin").write_bytes(b"p" * 65536)
    for collection in (site.c1, site.c2):
        site.owner.tc.add_endpoint_acl_rule(
            collection,
            {"DATA_TYPE": "access", "principal_type": "identity",
             "principal": who.identity_id, "path": folder, "permissions": "rw"},
        )  # fmt: skip
    return folder


def copy(who: Account, source: str, destination: str, folder: str, name: str) -> str:
    data = globus_sdk.TransferData(source_endpoint=source, destination_endpoint=destination)
    data.add_item(f"{folder}f.bin", f"{folder}{name}")
    return str(who.tc.submit_transfer(data)["task_id"])


def test_a_pause_rule_holds_writes_until_it_is_changed(site: Site) -> None:
    tc = site.owner.tc
    researcher_name, researcher_password = make_user(site.server, "held")
    researcher = login(site.server, researcher_name, researcher_password)
    manager = login(site.server, *make_user(site.server, "keeper"))
    bystander = login(site.server, *make_user(site.server, "bystander"))
    tc.add_endpoint_role(
        site.c2, {"DATA_TYPE": "role", "principal_type": "identity",
                  "principal": manager.identity_id, "role": "activity_manager"},
    )  # fmt: skip
    folder = shared_folder(site, researcher)

    message = "Storage array maintenance until 18:00"
    rule_body = {"DATA_TYPE": "pause_rule", "endpoint_id": site.c2, "message": message,
                 **ONLY_WRITES_AND_MKDIR}  # fmt: skip
    # Only those who manage the collection's activity make rules; a rule needs a message.
    assert error_of(researcher.tc.endpoint_manager_create_pause_rule, rule_body) == (
        403, "PermissionDenied",
    )  # fmt: skip
    assert (
        error_of(manager.tc.endpoint_manager_create_pause_rule, {**rule_body, "message": ""})[0]
        == 400
    )
    assert (
        error_of(
            manager.tc.endpoint_manager_create_pause_rule, {**rule_body, "identity_id": "nobody"}
        )[0]
        == 400
    )
    rule = manager.tc.endpoint_manager_create_pause_rule(rule_body)
    assert rule["DATA_TYPE"] == "pause_rule" and rule["editable"] is True
    assert rule["endpoint_id"] == site.c2 and rule["identity_id"] is None
    assert rule["modified_by_id"] == manager.identity_id
    assert rule["pause_task_transfer_write"] is True and rule["pause_ls"] is False
    rule_id = rule["id"]

    held = copy(researcher, site.c1, site.c2, folder, "held.bin")
    unheld = copy(researcher, site.c2, site.c1, folder, "unheld.bin")
    # Reads from the paused collection still run while the write into it waits.
    (site.server.home / "demo" / "collection2" / folder.strip("/") / "f.bin").write_bytes(b"u")
    assert wait_done(researcher.tc, unheld, timeout=120)["status"] == "SUCCEEDED"
    task = researcher.tc.get_task(held)
    assert task["status"] == "ACTIVE" and task["is_paused"] is True
    assert task["nice_status"] == "PAUSED_BY_ADMIN" and task["bytes_transferred"] == 0
    assert not (site.server.home / "demo" / "collection2" / folder.strip("/") / "held.bin").exists()

    info = researcher.tc.task_pause_info(held)
    assert [(r["id"], r["message"]) for r in info["pause_rules"]] == [
        (rule_id, "Storage array maintenance until 18:00")
    ]
    assert info["pause_rules"][0]["DATA_TYPE"] == "pause_rule_limited"
    assert "modified_by_id" not in info["pause_rules"][0]
    # The web app says so too.
    with httpx.Client(base_url=site.server.url, timeout=30) as web:
        log_in(web, researcher_name, researcher_password)
        page = web.get(f"/activity/{held}").text
    assert texts(page, "task-nice-status") == ["Paused by an administrator"]
    effective = researcher.tc.my_effective_pause_rule_list(site.c2)
    assert [r["id"] for r in effective] == [rule_id]
    assert list(researcher.tc.my_effective_pause_rule_list(site.c1)) == []
    assert manager.tc.endpoint_manager_task_pause_info(held)["pause_rules"][0]["id"] == rule_id

    # Held synchronous operations are refused with the message; others go on.
    status, code = error_of(researcher.tc.operation_mkdir, site.c2, f"{folder}new/")
    assert (status, code) == (409, "EndpointPaused")
    assert "f.bin" in {e["name"] for e in researcher.tc.operation_ls(site.c2, path=folder)}

    # Administrators see and list the rule; others may not.
    assert [
        r["id"] for r in manager.tc.endpoint_manager_pause_rule_list(filter_endpoint=site.c2)
    ] == [rule_id]
    assert rule_id in {r["id"] for r in tc.endpoint_manager_pause_rule_list()}
    assert error_of(bystander.tc.endpoint_manager_pause_rule_list)[0] == 403
    assert error_of(bystander.tc.endpoint_manager_get_pause_rule, rule_id)[0] == 403
    assert error_of(bystander.tc.endpoint_manager_delete_pause_rule, rule_id)[0] == 403

    # The CLI shows the owner why their own task waits.
    own = copy(site.owner, site.c1, site.c2, folder, "own.bin")
    shown = globus(site.server, site.cli_home, "task", "pause-info", own)
    assert shown.returncode == 0, shown.stderr
    assert "Storage array maintenance until 18:00" in shown.stdout and "write" in shown.stdout

    # Narrowing the rule to another identity releases the researcher's task.
    updated = manager.tc.endpoint_manager_update_pause_rule(
        rule_id, {"identity_id": bystander.identity_id, "message": "Only the bystander now"}
    )
    assert updated["identity_id"] == bystander.identity_id
    assert (
        manager.tc.endpoint_manager_get_pause_rule(rule_id)["message"] == "Only the bystander now"
    )
    assert wait_done(researcher.tc, held, timeout=120)["status"] == "SUCCEEDED"
    assert wait_done(tc, own, timeout=120)["status"] == "SUCCEEDED"
    assert researcher.tc.task_pause_info(held)["pause_rules"] == []

    deleted = manager.tc.endpoint_manager_delete_pause_rule(rule_id)
    assert deleted["code"] == "Deleted"
    assert error_of(manager.tc.endpoint_manager_get_pause_rule, rule_id) == (
        404, "PauseRuleNotFound",
    )  # fmt: skip


def test_a_rule_on_a_mapped_collection_covers_its_guest_collections(site: Site) -> None:
    tc = site.owner.tc
    folder = f"/guest-pause-{uuid.uuid4().hex[:6]}/"
    tc.operation_mkdir(site.c1, folder)
    guest = tc.create_shared_endpoint(
        {"DATA_TYPE": "shared_endpoint", "host_endpoint": site.c1, "host_path": folder,
         "display_name": f"Paused share {folder.strip('/')}"}
    )["id"]  # fmt: skip
    later = datetime.now(UTC) + timedelta(days=1)
    rule = tc.endpoint_manager_create_pause_rule(
        {"DATA_TYPE": "pause_rule", "endpoint_id": site.c1, "message": "Listing paused",
         "start_time": later.isoformat(), "pause_ls": True}
    )  # fmt: skip
    try:
        # Not yet in force: listing works.
        tc.operation_ls(guest)
        tc.endpoint_manager_update_pause_rule(rule["id"], {"start_time": None})
        assert error_of(tc.operation_ls, guest) == (409, "EndpointPaused")
        assert error_of(tc.operation_ls, site.c1) == (409, "EndpointPaused")
        tc.operation_ls(site.c2)
    finally:
        tc.endpoint_manager_delete_pause_rule(rule["id"])
    tc.operation_ls(guest)
