"""Arctern Connect: an agent that does not listen exchanges data with central storage.

A live ``arctern serve`` whose workers accept data connections (``ARCTERN_DATA_LISTEN``) and
a real ``--no-listen`` laptop agent. The laptop cannot be connected to, so the transfer is its
job: it connects to the deployment worker's data channel (TLS, pinned certificate, a task
credential) and pushes or pulls. Covered: a folder of small and large files laptop → central
→ laptop with verification, byte for byte; the listener's announcement (``arctern endpoint
listeners``); a forged or missing credential refused by the central listener; without a
listening worker, such a transfer refused at submission with what to do.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest

from arctern.connect.remote_connector import RemoteConnector
from arctern.connectors.errors import PermissionDenied
from tests.conftest import _database_args
from tests.integration.test_connect import Agent, api_error, serves, wait_for
from tests.integration.test_connect_peers import add_agent
from tests.integration.test_connect_transfers import tree, wait_task
from tests.integration.test_transfer_api import Account, login
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(400)


@dataclass
class Site:
    server: LiveServer
    owner: Account
    laptop: Agent
    laptop_collection: str
    laptop_root: Path
    central: str


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(
        tmp_path_factory.mktemp("central-listener-server"),
        extra_args=_database_args(request),
        extra_env={"ARCTERN_DATA_LISTEN": "127.0.0.1:0"},
    )
    root = tmp_path_factory.mktemp("laptop-data")
    laptop: Agent | None = None
    try:
        laptop, collection = add_agent(
            server, tmp_path_factory.mktemp("laptop") / "home", root, "Laptop", ["--no-listen"]
        )
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        wait_for(lambda: serves(owner.tc, collection), "the laptop to serve")
        central = next(iter(owner.tc.endpoint_search("Demo Collection 1")))["id"]
        yield Site(server, owner, laptop, collection, root, central)
    finally:
        if laptop is not None and laptop.process is not None and laptop.process.poll() is None:
            laptop.stop()
        server.stop()


def listeners(site: Site) -> list[list[str]]:
    shown = site.server.admin("endpoint", "listeners")
    assert shown.returncode == 0, shown.stderr
    return [line.split("\t") for line in shown.stdout.splitlines() if "\t" in line]


def dataset(root: Path) -> Path:
    folder = root / f"set-{uuid.uuid4().hex[:6]}"
    (folder / "small").mkdir(parents=True)
    (folder / "large.bin").write_bytes(os.urandom(20 << 20))
    for i in range(150):
        (folder / "small" / f"f{i:03}.txt").write_bytes(os.urandom(1000 + i))
    return folder


def test_a_no_listen_agent_sends_to_and_receives_from_central_storage(site: Site) -> None:
    tc = site.owner.tc
    folder = dataset(site.laptop_root)
    out = globus_sdk.TransferData(
        source_endpoint=site.laptop_collection,
        destination_endpoint=site.central,
        verify_checksum=True,
        label="laptop to central",
    )
    out.add_item(f"/{folder.name}/", f"/from-laptop/{folder.name}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(out)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert task["files_transferred"] == 151

    back = globus_sdk.TransferData(
        source_endpoint=site.central,
        destination_endpoint=site.laptop_collection,
        verify_checksum=True,
        label="central to laptop",
    )
    back.add_item(f"/from-laptop/{folder.name}/", f"/round-trip/{folder.name}/", recursive=True)
    task_id = tc.submit_transfer(back)["task_id"]
    task = wait_task(tc, task_id)
    assert task["status"] == "SUCCEEDED", task
    assert tree(site.laptop_root / "round-trip" / folder.name) == tree(folder)


def test_the_central_listener_refuses_foreign_and_forged_credentials(site: Site) -> None:
    (row,) = listeners(site)
    _, address, fingerprint, state = row
    assert state == "live"

    async def attempt(token: str) -> None:
        connector = RemoteConnector(address, fingerprint, token)
        try:
            await connector.stat("/")
        finally:
            await connector.close()

    for token in ("adt_forged.signature", ""):
        with pytest.raises(PermissionDenied, match="credential"):
            asyncio.run(attempt(token))


def test_without_a_listening_worker_such_transfers_are_refused_at_submission(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = start_server(tmp_path / "server", extra_args=_database_args(request))
    agent: Agent | None = None
    try:
        (tmp_path / "data").mkdir()
        agent, collection = add_agent(
            server, tmp_path / "home", tmp_path / "data", "Tablet", ["--no-listen"]
        )
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        wait_for(lambda: serves(owner.tc, collection), "the tablet to serve")
        central = next(iter(owner.tc.endpoint_search("Demo Collection 1")))["id"]
        tdata = globus_sdk.TransferData(source_endpoint=central, destination_endpoint=collection)
        tdata.add_item("/", "/copy/", recursive=True)
        error = api_error(owner.tc.submit_transfer, tdata)
        assert error.http_status == 409 and error.code == "ClientError.NotSupported"
        assert "--listen" in error.message and "ARCTERN_DATA_LISTEN" in error.message
    finally:
        if agent is not None and agent.process is not None and agent.process.poll() is None:
            agent.stop()
        server.stop()
