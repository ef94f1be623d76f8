"""Arctern Connect: transfers between two agents, bytes flowing host to host.

A live ``arctern serve`` and two real agent processes on loopback: a DTN that listens for
data connections and a laptop that does not (``--no-listen``). Each transfer is run by one
of the two agents (the laptop pushes to the DTN, and pulls from it), over TLS to the DTN's
pinned certificate with a credential for that task alone; the deployment sees control
traffic only. Covered: both directions with verification, identical bytes, the task in the
API; a wrong certificate fingerprint and a forged or foreign credential refused by the data
channel; a transfer between two agents neither of which listens refused at submission; HTTPS
access to the DTN's collection through its data channel, under the access rules.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import httpx
import pytest

from arctern.connect.datachannel import fingerprint_of
from arctern.connect.remote_connector import RemoteConnector
from arctern.connectors.errors import PermissionDenied
from tests.conftest import _database_args
from tests.integration.test_connect import Agent, api_error, create_endpoint, serves, wait_for
from tests.integration.test_connect_transfers import size_of, tree, wait_task
from tests.integration.test_https_access import bearer, https_token
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, free_port, start_server

pytestmark = pytest.mark.timeout(400)


@dataclass
class Peers:
    server: LiveServer
    owner: Account
    dtn: Agent
    laptop: Agent
    dtn_collection: str
    laptop_collection: str
    dtn_root: Path
    laptop_root: Path
    data_address: str


def add_agent(
    server: LiveServer, home: Path, root: Path, name: str, run_args: list[str]
) -> tuple[Agent, str]:
    agent = Agent(server, home, run_args=run_args)
    _, setup_key = create_endpoint(server, name)
    assert agent.setup(setup_key, name).returncode == 0
    made = agent.connect("collection", "create", "--name", f"{name} data", "--posix", str(root))
    assert made.returncode == 0, made.stderr
    (root / "hello.txt").write_text(f"hello from {name}\n")
    agent.start()
    return agent, made.stdout.split()[0]


@pytest.fixture(scope="module")
def peers(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Peers]:
    server = start_server(
        tmp_path_factory.mktemp("peers-server"), extra_args=_database_args(request)
    )
    address = f"127.0.0.1:{free_port()}"
    dtn_root = tmp_path_factory.mktemp("dtn-data")
    laptop_root = tmp_path_factory.mktemp("laptop-data")
    agents: list[Agent] = []
    try:
        dtn, dtn_collection = add_agent(
            server, tmp_path_factory.mktemp("dtn") / "home", dtn_root, "DTN", ["--listen", address]
        )
        agents.append(dtn)
        laptop, laptop_collection = add_agent(
            server,
            tmp_path_factory.mktemp("laptop") / "home",
            laptop_root,
            "Laptop",
            ["--no-listen"],
        )
        agents.append(laptop)
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        for collection in (dtn_collection, laptop_collection):
            wait_for(lambda c=collection: serves(owner.tc, c), "the agents to serve")
        yield Peers(
            server,
            owner,
            dtn,
            laptop,
            dtn_collection,
            laptop_collection,
            dtn_root,
            laptop_root,
            address,
        )
    finally:
        for agent in agents:
            if agent.process is not None and agent.process.poll() is None:
                agent.stop()
        server.stop()


def make_dataset(root: Path) -> Path:
    folder = root / f"set-{uuid.uuid4().hex[:6]}"
    (folder / "small").mkdir(parents=True)
    for i in range(40):
        (folder / "small" / f"s{i:02}.txt").write_bytes(os.urandom(500 + 11 * i))
    (folder / "large.bin").write_bytes(os.urandom(40 << 20))
    return folder


@pytest.mark.parametrize("direction", ["laptop-to-dtn", "dtn-to-laptop"])
def test_transfer_between_agents(peers: Peers, direction: str) -> None:
    if direction == "laptop-to-dtn":  # the laptop pushes to the listening DTN
        src, dst = peers.laptop_collection, peers.dtn_collection
        src_root, dst_root = peers.laptop_root, peers.dtn_root
    else:  # the laptop, which cannot be reached, pulls from the DTN
        src, dst = peers.dtn_collection, peers.laptop_collection
        src_root, dst_root = peers.dtn_root, peers.laptop_root
    folder = make_dataset(src_root)
    tdata = globus_sdk.TransferData(
        source_endpoint=src, destination_endpoint=dst, verify_checksum=True, label=direction
    )
    tdata.add_item(f"/{folder.name}/", f"/received/{folder.name}/", recursive=True)
    task_id = peers.owner.tc.submit_transfer(tdata)["task_id"]
    task = wait_task(peers.owner.tc, task_id)
    assert task["status"] == "SUCCEEDED", task
    assert tree(dst_root / "received" / folder.name) == tree(folder)
    assert task["files_transferred"] == 41
    assert task["bytes_transferred"] == size_of(folder)
    assert not list((dst_root / "received").rglob(".*"))  # no temporary file left


def test_status_shows_the_data_address(peers: Peers) -> None:
    shown = peers.dtn.connect("status")
    assert f"accepting connections at {peers.data_address}" in shown.stdout, shown.stdout
    assert "not listening" in peers.laptop.connect("status").stdout


def test_data_channel_refuses_wrong_certificates_and_credentials(peers: Peers) -> None:
    pem = (peers.dtn.home / "data-cert.pem").read_text()
    real = fingerprint_of(ssl.PEM_cert_to_DER_cert(pem))

    async def attempt(fingerprint: str, token: str) -> None:
        connector = RemoteConnector(peers.data_address, fingerprint, token)
        try:
            await connector.stat("/hello.txt")
        finally:
            await connector.close()

    # A server whose certificate is not the announced one is never sent a credential.
    with pytest.raises(PermissionDenied, match="certificate"):
        asyncio.run(attempt("0" * 64, "adt_whatever"))
    # The right server, with a forged credential, or none: refused.
    for token in ("adt_forged.signature", ""):
        with pytest.raises(PermissionDenied, match="credential"):
            asyncio.run(attempt(real, token))


def test_two_agents_that_do_not_listen_cannot_transfer(peers: Peers, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    other, other_collection = add_agent(
        peers.server, tmp_path / "home", tmp_path / "data", "Tablet", ["--no-listen"]
    )
    try:
        wait_for(lambda: serves(peers.owner.tc, other_collection), "the tablet to serve")
        tdata = globus_sdk.TransferData(
            source_endpoint=peers.laptop_collection, destination_endpoint=other_collection
        )
        tdata.add_item("/hello.txt", "/hello.txt")
        error = api_error(peers.owner.tc.submit_transfer, tdata)
        assert error.http_status == 409 and error.code == "ClientError.NotSupported"
        assert "--listen" in error.message
    finally:
        other.stop()


def test_central_storage_and_a_listening_agent_exchange_data(peers: Peers) -> None:
    """The deployment's own workers connect to the DTN's data channel: a folder goes from
    the DTN to central storage and back, byte for byte. The laptop, which does not listen,
    cannot exchange data with central storage."""
    tc = peers.owner.tc
    central = next(iter(tc.endpoint_search("Demo Collection 1")))["id"]
    folder = make_dataset(peers.dtn_root)
    out = globus_sdk.TransferData(
        source_endpoint=peers.dtn_collection, destination_endpoint=central, verify_checksum=True
    )
    out.add_item(f"/{folder.name}/", f"/from-dtn/{folder.name}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(out)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    back = globus_sdk.TransferData(
        source_endpoint=central, destination_endpoint=peers.dtn_collection, verify_checksum=True
    )
    back.add_item(f"/from-dtn/{folder.name}/", f"/round-trip/{folder.name}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(back)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert tree(peers.dtn_root / "round-trip" / folder.name) == tree(folder)

    refused = globus_sdk.TransferData(
        source_endpoint=central, destination_endpoint=peers.laptop_collection
    )
    refused.add_item(f"/from-dtn/{folder.name}/", "/nope/", recursive=True)
    error = api_error(tc.submit_transfer, refused)
    assert error.http_status == 409 and "--listen" in error.message


def test_https_access_to_agent_collections(peers: Peers) -> None:
    """The DTN's collection has an ``https_server``; GET/HEAD/PUT reach the agent over its
    data channel, byte for byte, under the access rules (enforced by the agent on the
    resolved location, so a link out of a shared folder leads nowhere). The laptop, which
    does not listen, says why it cannot serve HTTPS."""
    server, tc, dtn = peers.server, peers.owner.tc, peers.dtn_collection
    doc = tc.get_endpoint(dtn)
    assert doc["https_server"] == f"{server.url}/https/{dtn}"
    token = https_token(server, dtn, DEMO_USERNAME, DEMO_PASSWORD)
    url = f"{doc['https_server']}/https-{uuid.uuid4().hex[:6]}.bin"
    payload = os.urandom(9 << 20 | 777)

    put = httpx.put(url, content=payload, headers=bearer(token), timeout=120)
    assert put.status_code == 200, put.text
    assert (peers.dtn_root / url.rsplit("/", 1)[1]).read_bytes() == payload
    got = httpx.get(url, headers=bearer(token), timeout=120)
    assert got.status_code == 200 and got.content == payload
    part = httpx.get(url, headers={**bearer(token), "Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == payload[5:10]
    head = httpx.head(url, headers=bearer(token))
    assert head.status_code == 200 and head.headers["content-length"] == str(len(payload))
    missing = httpx.get(f"{doc['https_server']}/no-such-file", headers=bearer(token))
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"

    # A guest: nothing without a rule; read-only inside the shared folder; a link in it that
    # points to a private folder of the same collection is refused.
    shared = peers.dtn_root / f"shared-{uuid.uuid4().hex[:6]}"
    private = peers.dtn_root / f"private-{uuid.uuid4().hex[:6]}"
    shared.mkdir()
    private.mkdir()
    (shared / "paper.txt").write_text("shared paper")
    (private / "secret.txt").write_text("private notes")
    (shared / "sneaky").symlink_to(private)
    username, password = make_user(server, "agent-https-guest")
    guest = https_token(server, dtn, username, password)
    base = f"{doc['https_server']}/{shared.name}"
    assert httpx.get(f"{base}/paper.txt", headers=bearer(guest)).status_code in (403, 404)
    guest_id = native_tokens(server, username=username, password=password).decode_id_token()["sub"]
    rule = {
        "DATA_TYPE": "access",
        "principal_type": "identity",
        "principal": guest_id,
        "path": f"/{shared.name}/",
        "permissions": "r",
    }
    rule_id = tc.add_endpoint_acl_rule(dtn, rule)["access_id"]
    try:
        allowed = httpx.get(f"{base}/paper.txt", headers=bearer(guest))
        assert allowed.status_code == 200 and allowed.text == "shared paper"
        through_link = httpx.get(f"{base}/sneaky/secret.txt", headers=bearer(guest))
        assert through_link.status_code == 403 and b"private notes" not in through_link.content
        write = httpx.put(f"{base}/new.txt", content=b"x", headers=bearer(guest))
        assert write.status_code == 403 and not (shared / "new.txt").exists()
    finally:
        tc.delete_endpoint_acl_rule(dtn, rule_id)

    laptop = tc.get_endpoint(peers.laptop_collection)["https_server"]
    laptop_token = https_token(server, peers.laptop_collection, DEMO_USERNAME, DEMO_PASSWORD)
    refused = httpx.get(f"{laptop}/hello.txt", headers=bearer(laptop_token))
    assert refused.status_code == 409 and "--listen" in refused.json()["message"]


def connections_to(address: str) -> int:
    port = address.rsplit(":", 1)[1]
    shown = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(shown.stdout.splitlines())


def push_counting_connections(peers: Peers, size: int) -> int:
    """Push one file laptop -> DTN; the most data connections the DTN held at once (after
    the laptop closed the idle ones an earlier task's jobs kept for each other)."""
    wait_for(lambda: connections_to(peers.data_address) == 0, "idle data connections to close")
    name = f"par-{uuid.uuid4().hex[:6]}.bin"
    (peers.laptop_root / name).write_bytes(os.urandom(size))
    tc = peers.owner.tc
    tdata = globus_sdk.TransferData(
        source_endpoint=peers.laptop_collection, destination_endpoint=peers.dtn_collection
    )
    tdata.add_item(f"/{name}", f"/{name}")
    task_id = tc.submit_transfer(tdata)["task_id"]
    most, done = 0, threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, connections_to(peers.data_address))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        task = wait_task(tc, task_id)
    finally:
        done.set()
        watcher.join()
    assert task["status"] == "SUCCEEDED", task
    assert (peers.dtn_root / name).read_bytes() == (peers.laptop_root / name).read_bytes()
    return most


def test_parallelism_is_set_per_endpoint(peers: Peers) -> None:
    """``arctern endpoint update --parallelism``: shown in the endpoint document as Globus's
    preferred parallelism, and the number of data connections a transfer with it opens."""
    tc = peers.owner.tc
    dtn_endpoint = tc.get_endpoint(peers.dtn_collection)["host_endpoint_id"]
    assert tc.get_endpoint(dtn_endpoint)["preferred_parallelism"] == 4  # the default
    assert push_counting_connections(peers, 256 << 20) >= 2

    updated = peers.server.admin("endpoint", "update", "DTN", "--parallelism", "1")
    assert updated.returncode == 0, updated.stderr
    try:
        doc = tc.get_endpoint(dtn_endpoint)
        assert doc["preferred_parallelism"] == 1 and doc["network_use"] == "custom"
        assert push_counting_connections(peers, 256 << 20) == 1
    finally:
        peers.server.admin("endpoint", "update", "DTN", "--parallelism", "0")
    refused = peers.server.admin("endpoint", "update", "DTN", "--parallelism", "65")
    assert refused.returncode != 0 and "less than or equal to 64" in refused.stderr


def test_a_guest_collection_on_the_dtn_exchanges_data_with_the_laptop(peers: Peers) -> None:
    """A guest collection in a folder of the listening DTN's collection: the laptop pushes
    into it over the DTN's data channel (the credential names the guest collection; the DTN
    opens only that folder), and central storage reads from it."""
    tc = peers.owner.tc
    folder = f"guest-{uuid.uuid4().hex[:6]}"
    (peers.dtn_root / folder).mkdir()
    guest = tc.create_shared_endpoint(
        {"DATA_TYPE": "shared_endpoint", "host_endpoint": peers.dtn_collection,
         "host_path": f"/{folder}/", "display_name": f"DTN share {folder}"}
    )["id"]  # fmt: skip
    dataset = make_dataset(peers.laptop_root)
    push = globus_sdk.TransferData(
        source_endpoint=peers.laptop_collection, destination_endpoint=guest, verify_checksum=True
    )
    push.add_item(f"/{dataset.name}/", f"/{dataset.name}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(push)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    # Inside the shared folder, not at the root of the DTN's collection.
    assert tree(peers.dtn_root / folder / dataset.name) == tree(dataset)
    assert not (peers.dtn_root / dataset.name).exists()

    central = next(iter(tc.endpoint_search("Demo Collection 1")))["id"]
    pull = globus_sdk.TransferData(source_endpoint=guest, destination_endpoint=central)
    pull.add_item(f"/{dataset.name}/small/", f"/from-guest-{folder}/", recursive=True)
    task = wait_task(tc, tc.submit_transfer(pull)["task_id"])
    assert task["status"] == "SUCCEEDED", task
    landed = peers.server.home / "demo" / "collection1" / f"from-guest-{folder}"
    assert tree(landed) == tree(dataset / "small")
