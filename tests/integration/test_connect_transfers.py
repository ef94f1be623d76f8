"""Arctern Connect: transfers run by the agent itself, through the engine's own jobs.

A live ``arctern serve`` and a real ``arctern connect run`` process with two collections on
its host. The agent leases the transfer between them over ``/agent/v1/work`` (it has no
database), plans and copies it locally with the same PlanJob/BatchJob as ``arctern worker``,
and reports progress and events through the API, where globus-sdk and globus-cli read them.
Covered: a recursive transfer with verification (identical bytes, events, counters, the task
in ``globus task list``); a transfer the owner's rules do not allow for a guest; an agent
SIGKILLed mid-transfer → the task stays ACTIVE with ``GC_NOT_CONNECTED``, then SUCCEEDED with
identical data and no temporary file left once the agent is back; cancel while the agent is
away; transfers between an agent and another endpoint still refused with a clear error.
"""

from __future__ import annotations

import hashlib
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import globus, globus_login
from tests.integration.test_connect import (
    Agent,
    api_error,
    create_endpoint,
    serves,
    wait_for,
)
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(400)

LEASE_SECONDS = "4"


@dataclass
class Host:
    server: LiveServer
    owner: Account
    agent: Agent
    raw: str  # collection ids
    results: str
    raw_root: Path
    results_root: Path
    central: str


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Host]:
    server = start_server(
        tmp_path_factory.mktemp("connect-transfer-server"),
        extra_args=_database_args(request),
        # Short leases: a SIGKILLed agent's work is taken over within seconds.
        extra_env={"ARCTERN_LEASE_SECONDS": LEASE_SECONDS},
    )
    agent = Agent(server, tmp_path_factory.mktemp("dtn") / "connect-home")
    raw_root = tmp_path_factory.mktemp("instrument-raw")
    results_root = tmp_path_factory.mktemp("instrument-results")
    try:
        _, setup_key = create_endpoint(server, "Instrument PC")
        assert agent.setup(setup_key, "Instrument PC").returncode == 0
        ids = []
        for name, root in (("Raw data", raw_root), ("Results", results_root)):
            made = agent.connect("collection", "create", "--name", name, "--posix", str(root))
            assert made.returncode == 0, made.stderr
            ids.append(made.stdout.split()[0])
        (raw_root / "hello.txt").write_text("hello from the instrument\n")
        agent.start()
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        wait_for(lambda: serves(owner.tc, ids[0]), "the agent to serve")
        central = next(iter(owner.tc.endpoint_search("Demo Collection 1")))["id"]
        yield Host(server, owner, agent, ids[0], ids[1], raw_root, results_root, central)
    finally:
        if agent.process is not None and agent.process.poll() is None:
            agent.stop()
        server.stop()


def wait_task(tc: globus_sdk.TransferClient, task_id: str, timeout: float = 180) -> dict:
    def finished() -> dict | None:
        doc = tc.get_task(task_id).data
        return doc if doc["status"] in ("SUCCEEDED", "FAILED") else None

    return wait_for(finished, f"task {task_id} to finish", timeout)


def test_agent_copies_between_its_collections(host: Host, tmp_path: Path) -> None:
    run = host.raw_root / f"run-{uuid.uuid4().hex[:6]}"
    (run / "frames").mkdir(parents=True)
    for i in range(60):
        (run / "frames" / f"f{i:03}.dat").write_bytes(os.urandom(1000 + 37 * i))
    (run / "big.bin").write_bytes(os.urandom(24 << 20))  # several windows of the copier
    (run / "empty").write_bytes(b"")
    tdata = globus_sdk.TransferData(
        source_endpoint=host.raw,
        destination_endpoint=host.results,
        label="nightly frames",
        verify_checksum=True,
    )
    tdata.add_item(f"/{run.name}/", f"/copies/{run.name}/", recursive=True)
    task_id = host.owner.tc.submit_transfer(tdata)["task_id"]
    task = wait_task(host.owner.tc, task_id)
    assert task["status"] == "SUCCEEDED", task
    assert tree(host.results_root / "copies" / run.name) == tree(run)
    assert task["files"] == 62 and task["files_transferred"] == 62
    assert task["bytes_transferred"] == size_of(run)
    assert task["bytes_checksummed"] > 0  # verified end to end by the agent
    events = [e["code"] for e in host.owner.tc.task_event_list(task_id)]
    assert "STARTED" in events and "SUCCEEDED" in events
    # Per-file records came back from the agent too.
    successful = list(host.owner.tc.task_successful_transfers(task_id))
    assert len(successful) == 62
    # No temporary file is left at the destination.
    assert not [p for p in (host.results_root / "copies").rglob("*") if ".arctern" in p.name]

    # globus-cli sees the task like any other.
    cli_home = tmp_path / "cli"
    assert globus_login(host.server, cli_home).returncode == 0
    listed = globus(host.server, cli_home, "task", "list", "--filter-status", "SUCCEEDED")
    assert listed.returncode == 0 and task_id in listed.stdout, listed.stderr


def test_missing_source_fails_the_task_with_the_agent_error(host: Host) -> None:
    tdata = globus_sdk.TransferData(source_endpoint=host.raw, destination_endpoint=host.results)
    tdata.add_item("/no-such-file.txt", "/never.txt")
    task_id = host.owner.tc.submit_transfer(tdata)["task_id"]
    task = wait_task(host.owner.tc, task_id)
    assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "FILE_NOT_FOUND"
    assert not (host.results_root / "never.txt").exists()


def test_guest_without_access_to_the_destination_is_refused(host: Host) -> None:
    username, password = make_user(host.server, "visitor")
    guest = login(host.server, username, password)
    (host.raw_root / "public").mkdir(exist_ok=True)
    (host.raw_root / "public" / "notes.txt").write_text("shared notes")
    host.owner.tc.add_endpoint_acl_rule(
        host.raw,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": guest.identity_id,
            "path": "/public/",
            "permissions": "r",
        },
    )
    tdata = globus_sdk.TransferData(source_endpoint=host.raw, destination_endpoint=host.results)
    tdata.add_item("/public/notes.txt", "/guest/notes.txt")
    error = api_error(guest.tc.submit_transfer, tdata)
    assert error.http_status in (403, 404)
    assert not (host.results_root / "guest").exists()


def test_agent_killed_mid_transfer_resumes_when_it_returns(host: Host) -> None:
    tc = host.owner.tc
    name = f"large-{uuid.uuid4().hex[:6]}"
    (host.raw_root / name).mkdir()
    for i in range(3):
        (host.raw_root / name / f"part{i}.bin").write_bytes(os.urandom(96 << 20))
    tdata = globus_sdk.TransferData(
        source_endpoint=host.raw, destination_endpoint=host.results, verify_checksum=True
    )
    tdata.add_item(f"/{name}/", f"/{name}/", recursive=True)
    task_id = tc.submit_transfer(tdata)["task_id"]
    wait_for(lambda: tc.get_task(task_id)["bytes_transferred"] > 0, "copying to start")
    assert host.agent.stop(signal.SIGKILL) == -signal.SIGKILL

    # Away: the task stays ACTIVE and says why.
    def not_connected() -> bool:
        doc = tc.get_task(task_id)
        assert doc["status"] == "ACTIVE", doc.data
        return doc["nice_status"] == "GC_NOT_CONNECTED"

    wait_for(not_connected, "the task to report GC_NOT_CONNECTED", timeout=60)
    host.agent.start()
    task = wait_task(tc, task_id)
    assert task["status"] == "SUCCEEDED", task
    assert tree(host.results_root / name) == tree(host.raw_root / name)
    assert task["files_transferred"] == 3
    leftovers = [p for p in (host.results_root / name).iterdir() if p.name.startswith(".")]
    assert not leftovers


def test_cancel_while_the_agent_is_away(host: Host) -> None:
    tc = host.owner.tc
    assert host.agent.stop(signal.SIGTERM) == 0
    try:
        tdata = globus_sdk.TransferData(source_endpoint=host.raw, destination_endpoint=host.results)
        tdata.add_item("/hello.txt", "/cancelled/hello.txt")
        task_id = tc.submit_transfer(tdata)["task_id"]
        wait_for(
            lambda: tc.get_task(task_id)["nice_status"] == "GC_NOT_CONNECTED",
            "the task to wait for its agent",
        )
        # The agent's owner sees the waiting task on the host itself.
        status = host.agent.connect("status")
        assert "Active transfers: 1" in status.stdout, status.stdout
        assert task_id in status.stdout and "GC_NOT_CONNECTED" in status.stdout
        assert "not listening" in status.stdout
        assert tc.cancel_task(task_id)["code"] == "Canceled"
        task = wait_task(tc, task_id, timeout=60)
        assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "CANCELED"
    finally:
        host.agent.start()
        # Connected is not yet polling: the next test needs it present.
        wait_for(lambda: serves(tc, host.raw), "the agent to serve again")
    assert not (host.results_root / "cancelled").exists()


def test_transfers_with_an_agent_that_does_not_listen_are_refused(host: Host) -> None:
    for source, destination in ((host.central, host.raw), (host.results, host.central)):
        tdata = globus_sdk.TransferData(source_endpoint=source, destination_endpoint=destination)
        tdata.add_item("/hello.txt", f"/copy-{uuid.uuid4().hex[:6]}.txt")
        error = api_error(host.owner.tc.submit_transfer, tdata)
        assert error.http_status == 409 and error.code == "ClientError.NotSupported"
        assert "--listen" in error.message


def test_a_guest_collection_on_an_agent_collection(host: Host) -> None:
    """Shared from a folder of the agent's collection: the agent serves only that folder
    (relayed listing, a transfer the agent runs from it), also when a link replaces it."""
    tc = host.owner.tc
    folder = f"share-{uuid.uuid4().hex[:6]}"
    (host.raw_root / folder / "run1").mkdir(parents=True)
    (host.raw_root / folder / "run1" / "a.dat").write_bytes(b"a" * 5000)
    (host.raw_root / folder / "out").symlink_to(host.raw_root)
    (host.raw_root / f"{folder}-private.txt").write_text("not shared\n")
    guest = tc.create_shared_endpoint(
        {"DATA_TYPE": "shared_endpoint", "host_endpoint": host.raw, "host_path": f"/{folder}/",
         "display_name": f"Instrument share {folder}"}
    )["id"]  # fmt: skip
    doc = tc.get_endpoint(guest)
    assert doc["entity_type"] == "GCSv5_guest_collection" and doc["host_path"] == f"/{folder}/"
    assert {e["name"] for e in tc.operation_ls(guest, path="/")} == {"run1", "out"}
    assert [e["name"] for e in tc.operation_ls(guest, path="/run1/")] == ["a.dat"]
    assert api_error(tc.operation_ls, guest, path="/out/").http_status in (403, 404)

    reader = login(host.server, *make_user(host.server, "agent-guest"))
    tc.add_endpoint_acl_rule(
        guest,
        {"DATA_TYPE": "access", "principal_type": "identity",
         "principal": reader.identity_id, "path": "/run1/", "permissions": "r"},
    )  # fmt: skip
    assert [e["name"] for e in reader.tc.operation_ls(guest, path="/run1/")] == ["a.dat"]
    assert api_error(reader.tc.operation_ls, host.raw, path="/").http_status in (403, 404)

    # The agent runs a transfer out of the guest collection into its other collection.
    copy = globus_sdk.TransferData(source_endpoint=guest, destination_endpoint=host.results)
    copy.add_item("/run1/", f"/from-guest-{folder}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(copy)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert (host.results_root / f"from-guest-{folder}" / "a.dat").read_bytes() == b"a" * 5000

    # A link put in place of the shared folder later leads nowhere.
    moved = host.raw_root / f"{folder}-moved"
    (host.raw_root / folder).rename(moved)
    (host.raw_root / folder).symlink_to(host.raw_root)
    assert api_error(tc.operation_ls, guest, path="/").http_status in (403, 404)
