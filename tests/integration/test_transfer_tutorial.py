"""The tutorial, step by step, with the unmodified globus-sdk pointed at Arctern through its
environment variables: log in, find the demo collections, copy a directory, watch the task,
list tasks by status, cancel a long-running task, and fail to cancel a finished one."""

from __future__ import annotations

import filecmp
import time
import uuid
from pathlib import Path

import globus_sdk
import pytest

from tests.integration.test_transfer_api import login, make_user
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

TEMP_MARKER = ".arctern-"


def wait_for(tc: globus_sdk.TransferClient, task_id: str, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = tc.get_task(task_id)
        if task["status"] != "ACTIVE":
            return task.data
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} still ACTIVE after {timeout}s")


def same_tree(left: Path, right: Path) -> bool:
    cmp = filecmp.dircmp(left, right)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / d, right / d) for d in cmp.common_dirs)


def test_tutorial_with_the_unmodified_sdk(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "arctern")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"{server.url}/auth/")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", f"{server.url}/transfer/")
    # A fresh user, so task_list answers exactly with this test's tasks; the demo owner
    # shares a read area and a write area with them.
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    username, password = make_user(server, "tutorial")
    account = login(server, username, password)
    tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(account.token))

    found = {e["display_name"]: e["id"] for e in tc.endpoint_search("Demo Collection")}
    assert set(found) == {"Demo Collection 1", "Demo Collection 2"}
    c1, c2 = found["Demo Collection 1"], found["Demo Collection 2"]
    area = f"/tutorial-{uuid.uuid4().hex[:6]}/"
    owner.tc.operation_mkdir(c2, area)
    for collection, path, permissions in ((c1, "/", "r"), (c2, area, "rw")):
        owner.tc.add_endpoint_acl_rule(
            collection,
            {
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": account.identity_id,
                "path": path,
                "permissions": permissions,
            },
        )
    c1_root = server.home / "demo" / "collection1"
    c2_area = server.home / "demo" / "collection2" / area.strip("/")

    # Copy a directory recursively; the data arrives byte-identical.
    tdata = globus_sdk.TransferData(
        source_endpoint=c1, destination_endpoint=c2, label="tutorial copy", verify_checksum=True
    )
    tdata.add_item("/nested/", f"{area}nested/", recursive=True)
    tdata.add_item("/large.bin", f"{area}large.bin")
    submitted = tc.submit_transfer(tdata)
    assert submitted["code"] == "Accepted"
    copied = submitted["task_id"]
    done = wait_for(tc, copied)
    assert done["status"] == "SUCCEEDED", done
    assert done["completion_time"] and done["nice_status"] is None
    assert done["files_transferred"] == 4
    assert done["bytes_transferred"] >= 20 * 1024 * 1024
    assert same_tree(c1_root / "nested", c2_area / "nested")
    assert filecmp.cmp(c1_root / "large.bin", c2_area / "large.bin", shallow=False)
    transfers = list(tc.paginated.task_successful_transfers(copied).items())
    assert sorted(t["destination_path"] for t in transfers) == sorted(
        [
            f"{area}nested/top.txt",
            f"{area}nested/dir/file.txt",
            f"{area}nested/dir/another.txt",
            f"{area}large.bin",
        ]
    )

    # A task that fails: its source does not exist.
    broken = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    broken.add_item("/does/not/exist.txt", f"{area}never.txt")
    failed = tc.submit_transfer(broken)["task_id"]
    failed_doc = wait_for(tc, failed)
    assert failed_doc["status"] == "FAILED" and failed_doc["fatal_error"]

    # A long-running task, cancelled while active: FAILED/CANCELED, no partial files. The
    # source is a sparse 4 GiB file: free to create, seconds of work to copy and checksum.
    huge = c2_area / "huge.bin"
    with huge.open("wb") as handle:
        handle.truncate(4 * 1024**3)
    slow = globus_sdk.TransferData(
        source_endpoint=c2, destination_endpoint=c2, label="to cancel", verify_checksum=True
    )
    slow.add_item(f"{area}huge.bin", f"{area}huge-copy.bin")
    slow_id = tc.submit_transfer(slow)["task_id"]

    active = tc.task_list(filter={"status": "ACTIVE"})
    assert [t["task_id"] for t in active] == [slow_id]
    succeeded = tc.task_list(filter={"status": "SUCCEEDED"})
    assert [t["task_id"] for t in succeeded] == [copied]
    assert [t["task_id"] for t in tc.task_list(filter={"status": "FAILED"})] == [failed]

    cancel = tc.cancel_task(slow_id)
    assert cancel["code"] == "Canceled", cancel.data
    canceled = tc.get_task(slow_id)
    assert canceled["status"] == "FAILED"
    assert canceled["fatal_error"]["code"] == "CANCELED"
    assert not (c2_area / "huge-copy.bin").exists()
    assert [p.name for p in c2_area.iterdir() if TEMP_MARKER in p.name] == []
    assert [t["task_id"] for t in tc.task_list(filter={"status": "ACTIVE"})] == []
    assert sorted(t["task_id"] for t in tc.task_list(filter={"status": "FAILED"})) == sorted(
        [failed, slow_id]
    )
    events = [e["code"] for e in tc.task_event_list(slow_id)]
    assert "CANCELED" in events

    huge.unlink()

    # A finished task cannot be cancelled; nothing changes.
    finished = tc.cancel_task(copied)
    assert finished["code"] == "TaskComplete"
    assert tc.get_task(copied)["status"] == "SUCCEEDED"
