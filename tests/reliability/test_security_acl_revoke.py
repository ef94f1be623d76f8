"""Issue #10 item 5: deleting an access rule stops the tasks submitted under it, and task
deadlines have a maximum.

Before the fix the rules were checked once, at submission: a 3,000-file task submitted by a
shared user finished after the owner deleted the rule. Now the worker reads the task owner's
rules when it plans the task, when it leases each batch and at every progress flush; files
the owner may no longer touch fail with PERMISSION_DENIED (the task ends FAILED) and are
never written.

The worker runs as a separate ``arctern worker`` process in its own process group, so the
test can freeze it (SIGSTOP, helpers included) mid-task, delete the rule, and let it go on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import globus_sdk
import httpx
import pytest

from tests.reliability.conftest import (
    Session,
    create_collection,
    database_url,
    login,
    make_user,
)
from tests.support.server import LiveServer

pytestmark = pytest.mark.timeout(300)

FILES = 3000
WORKER_ENV = {
    # Small batches: most of the task is leased after the rule is gone.
    "ARCTERN_WORKER_BATCH_FILES": "100",
    "ARCTERN_WORKER_CONCURRENCY": "2",
    "ARCTERN_PROGRESS_FLUSH_SECONDS": "0.2",
}


@contextmanager
def worker_process(server: LiveServer) -> Iterator[subprocess.Popen[bytes]]:
    """A standalone worker on the server's database, in a process group of its own."""
    log = (server.home / "worker.log").open("ab")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("arctern")),
            "worker",
            "--database",
            database_url(server),
            "--name",
            "revoke-test",
        ],
        env={**server.env, **WORKER_ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with_group(proc, signal.SIGCONT)
        with_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()


def freeze_between_writes(proc: subprocess.Popen[bytes], url: str) -> None:
    """Stop the worker and its copy helpers (SIGSTOP) at a moment when it holds no write
    transaction on a SQLite database: frozen inside one, it would keep every other writer
    (the API deleting the rule) waiting until SQLite's busy timeout. If it is caught inside
    one, it is let go and frozen again a moment later."""
    path = url.split("///", 1)[1] if url.startswith("sqlite") else None
    deadline = time.monotonic() + 60
    while True:
        with_group(proc, signal.SIGSTOP)
        # kill() returns before the signal takes effect: a thread still running could begin
        # a write right after the probe below and be frozen holding it.
        wait_stopped(proc)
        if path is None:
            return
        probe = sqlite3.connect(path, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:
            with_group(proc, signal.SIGCONT)
        finally:
            probe.close()
        assert time.monotonic() < deadline, "the worker never paused between writes"
        time.sleep(0.002)


def wait_stopped(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until every thread of every process in ``proc``'s group is stopped."""
    deadline = time.monotonic() + timeout
    while not all(_stopped(pid) for pid in _group_members(proc.pid)):
        assert time.monotonic() < deadline, "the worker's processes never stopped"
        time.sleep(0.001)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):
                # Fields after the command name, which may itself hold spaces or parentheses.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def _stopped(pid: int) -> bool:
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in threads]
    except OSError:
        return True  # gone
    return all(state in ("T", "t", "Z", "X") for state in states)


def with_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@pytest.fixture
def revocable(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> tuple[LiveServer, Session, Session, str, Path]:
    """A server without an embedded worker, a collection of the demo user with ``/src/``
    holding FILES small files, and a second user."""
    server = server_factory(extra_args=["--no-worker"], extra_env=WORKER_ENV)
    root = tmp_path / "revocable"
    (root / "src").mkdir(parents=True)
    (root / "dst").mkdir()
    for index in range(FILES):
        (root / "src" / f"f{index:05d}.dat").write_bytes(b"x" * 1024)
    collection = create_collection(server, "Revocable", root)
    owner = login(server)
    guest = login(server, *make_user(server, "guest"))
    return server, owner, guest, collection, root


def grant_all(owner: Session, collection: str, guest: Session) -> str:
    return str(
        owner.tc.add_endpoint_acl_rule(
            collection,
            {
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": guest.identity_id,
                "path": "/",
                "permissions": "rw",
            },
        )["access_id"]
    )


def copied(directory: Path) -> set[str]:
    if not directory.exists():
        return set()
    return {p.name for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_rule_deleted_before_planning_fails_every_file(
    revocable: tuple[LiveServer, Session, Session, str, Path],
) -> None:
    server, owner, guest, collection, root = revocable
    rule = grant_all(owner, collection, guest)
    task_id = guest.transfer(collection, collection, [("/src/", "/dst/early/", True)])
    owner.tc.delete_endpoint_acl_rule(collection, rule)
    with worker_process(server):
        doc = guest.wait(task_id, timeout=180)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == "PERMISSION_DENIED", doc["fatal_error"]
    assert doc["files_transferred"] == 0
    assert copied(root / "dst" / "early") == set()


def test_rule_deleted_mid_task_fails_the_remaining_files(
    revocable: tuple[LiveServer, Session, Session, str, Path],
) -> None:
    server, owner, guest, collection, root = revocable
    rule = grant_all(owner, collection, guest)
    task_id = guest.transfer(collection, collection, [("/src/", "/dst/late/", True)])
    target = root / "dst" / "late"
    with worker_process(server) as proc:
        deadline = time.monotonic() + 120
        while not copied(target):
            assert proc.poll() is None, server.home.joinpath("worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never started copying"
            time.sleep(0.005)
        freeze_between_writes(proc, database_url(server))
        at_revocation = len(copied(target))
        owner.tc.delete_endpoint_acl_rule(collection, rule)
        with_group(proc, signal.SIGCONT)
        doc = guest.wait(task_id, timeout=240)
    done = copied(target)
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] == "PERMISSION_DENIED", doc["fatal_error"]
    # Files copied before the rule went away stay; the rest failed and were never written.
    assert at_revocation <= len(done) == doc["files_transferred"] < FILES, (
        at_revocation,
        len(done),
        doc["files_transferred"],
    )
    assert doc["subtasks_failed"] >= FILES - len(done) - 1, doc  # every file not copied
    assert not list(target.rglob(".arctern-*"))
    codes = {e["code"] for e in guest.tc.task_event_list(task_id, limit=100) if e["is_error"]}
    assert "PERMISSION_DENIED" in codes, codes
    print(
        f"copied before revocation: {at_revocation}, copied in all: {len(done)}, "
        f"failed: {doc['subtasks_failed']} of {FILES}"
    )


# -- deadline maximum ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deadline",
    [
        "9999-12-31T23:59:59-14:00",  # cannot even be moved to UTC
        "9999-12-31T23:59:59Z",
        "in-400-days",
    ],
)
def test_deadline_beyond_the_maximum_is_a_clean_400(server: LiveServer, deadline: str) -> None:
    if deadline == "in-400-days":  # computed here: test ids must not depend on the time
        deadline = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    session = login(server)
    for kind, body in (
        (
            "transfer",
            {
                "DATA_TYPE": "transfer",
                "source_endpoint": session.c1,
                "destination_endpoint": session.c2,
                "deadline": deadline,
                "DATA": [
                    {
                        "DATA_TYPE": "transfer_item",
                        "source_path": "/hello.txt",
                        "destination_path": f"/dl-{uuid.uuid4().hex[:6]}.txt",
                    }
                ],
            },
        ),
        (
            "delete",
            {
                "DATA_TYPE": "delete",
                "endpoint": session.c2,
                "deadline": deadline,
                "DATA": [{"DATA_TYPE": "delete_item", "path": "/nothing-here"}],
            },
        ),
    ):
        response = httpx.post(f"{session.api}/{kind}", json=body, headers=session.headers)
        assert response.status_code == 400, (kind, response.status_code, response.text)
        doc = response.json()
        assert doc["code"] == "ClientError.BadRequest", doc
        assert set(doc) >= {"code", "message", "request_id", "resource"}


def test_deadline_within_the_maximum_is_accepted(server: LiveServer) -> None:
    session = login(server)
    data = globus_sdk.TransferData(
        source_endpoint=session.c1,
        destination_endpoint=session.c2,
        deadline=(datetime.now(UTC) + timedelta(days=29)).isoformat(),
    )
    data.add_item("/hello.txt", f"/dl-ok-{uuid.uuid4().hex[:6]}.txt")
    task_id = str(session.tc.submit_transfer(data)["task_id"])
    assert session.wait(task_id)["status"] == "SUCCEEDED"


def test_deadline_update_beyond_the_maximum_is_a_clean_400(
    revocable: tuple[LiveServer, Session, Session, str, Path],
) -> None:
    """``update_task`` may not push a queued task past the maximum either (no worker runs
    here, so the task stays ACTIVE)."""
    _server, owner, _guest, collection, _root = revocable
    task_id = owner.transfer(collection, collection, [("/src/f00000.dat", "/dst/one.dat", False)])
    for deadline in (
        "9999-12-31T23:59:59-14:00",
        (datetime.now(UTC) + timedelta(days=31)).isoformat(),
    ):
        response = httpx.put(
            f"{owner.api}/task/{task_id}",
            json={"DATA_TYPE": "task", "deadline": deadline},
            headers=owner.headers,
        )
        assert response.status_code == 400, (deadline, response.status_code, response.text)
        assert response.json()["code"] == "ClientError.BadRequest"
    fine = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    updated = owner.tc.update_task(task_id, {"DATA_TYPE": "task", "deadline": fine})
    assert updated.http_status == 200
