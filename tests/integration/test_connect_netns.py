"""Arctern Connect across real network paths: three hosts in three network namespaces.

The deployment (``arctern serve``) runs on one host, a listening DTN agent on a second and a
``--no-listen`` laptop agent on a third, all joined by a private bridge; the agents' links are
rate-limited with ``tbf``. Transfers between the two agents, both directions, must move their
bytes directly between the agents' hosts: the byte counters of the deployment host's
interface grow by control traffic only, while the agents' interfaces carry the data.

Needs root (network namespaces); skipped elsewhere, run in CI. The server uses SQLite here
even in the PostgreSQL pass: the test PostgreSQL listens on the root namespace's loopback.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest

from tests.integration.test_connect import Agent, create_endpoint, serves, wait_for
from tests.integration.test_connect_transfers import size_of, tree, wait_task
from tests.integration.test_transfer_api import Account, login
from tests.support import netns
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(netns.available() is not None, reason=str(netns.available())),
]

DATA_PORT = 50500
PAYLOAD = 48 << 20


@dataclass
class Sites:
    server: LiveServer
    api: netns.Host
    dtn_host: netns.Host
    laptop_host: netns.Host
    owner: Account
    dtn_collection: str
    laptop_collection: str
    dtn_root: Path
    laptop_root: Path


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    network = netns.Network().create()
    agents: list[Agent] = []
    server: LiveServer | None = None
    try:
        api = network.add_host("api")
        dtn_host = network.add_host("dtn")
        laptop_host = network.add_host("lap")
        for host in (dtn_host, laptop_host):
            host.limit_rate("400mbit")
        server = start_server(
            tmp_path_factory.mktemp("netns-server"), host=api.address, launcher=api.launcher
        )
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        roots, collections = [], []
        for host, label, args in (
            (dtn_host, "DTN", ["--listen", f"{dtn_host.address}:{DATA_PORT}"]),
            (laptop_host, "Laptop", ["--no-listen"]),
        ):
            root = tmp_path_factory.mktemp(f"{label.lower()}-data")
            agent = Agent(
                server,
                tmp_path_factory.mktemp(label.lower()) / "home",
                run_args=args,
                launcher=host.launcher,
            )
            _, key = create_endpoint(server, label)
            assert agent.setup(key, label).returncode == 0
            made = agent.connect("collection", "create", "--name", label, "--posix", str(root))
            assert made.returncode == 0, made.stderr
            (root / "hello.txt").write_text(f"hello from {label}\n")
            agent.start()
            agents.append(agent)
            roots.append(root)
            collections.append(made.stdout.split()[0])
        for collection in collections:
            wait_for(lambda c=collection: serves(owner.tc, c), "the agents to serve")
        yield Sites(
            server,
            api,
            dtn_host,
            laptop_host,
            owner,
            collections[0],
            collections[1],
            roots[0],
            roots[1],
        )
    finally:
        for agent in agents:
            if agent.process is not None and agent.process.poll() is None:
                agent.stop()
        if server is not None:
            server.stop()
        network.destroy()


@pytest.mark.parametrize("direction", ["laptop-to-dtn", "dtn-to-laptop"])
def test_bytes_flow_between_the_agents_hosts_not_through_the_deployment(
    sites: Sites, direction: str
) -> None:
    if direction == "laptop-to-dtn":
        src, dst = sites.laptop_collection, sites.dtn_collection
        src_root, dst_root = sites.laptop_root, sites.dtn_root
    else:
        src, dst = sites.dtn_collection, sites.laptop_collection
        src_root, dst_root = sites.dtn_root, sites.laptop_root
    folder = src_root / f"set-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(PAYLOAD))
    for i in range(20):
        (folder / f"small-{i}.txt").write_bytes(os.urandom(2000))

    api_before = sum(sites.api.counters())
    laptop_before = sum(sites.laptop_host.counters())
    tdata = globus_sdk.TransferData(
        source_endpoint=src, destination_endpoint=dst, verify_checksum=True, label=direction
    )
    tdata.add_item(f"/{folder.name}/", f"/in/{folder.name}/", recursive=True)
    task = wait_task(sites.owner.tc, sites.owner.tc.submit_transfer(tdata)["task_id"], 300)
    assert task["status"] == "SUCCEEDED", task
    assert tree(dst_root / "in" / folder.name) == tree(folder)

    moved = size_of(folder)
    api_traffic = sum(sites.api.counters()) - api_before
    laptop_traffic = sum(sites.laptop_host.counters()) - laptop_before
    print(f"{direction}: moved {moved} B; laptop link {laptop_traffic} B; API host {api_traffic} B")
    # The data crossed the laptop's link (it is one end of the transfer) ...
    assert laptop_traffic >= moved, (laptop_traffic, moved)
    # ... and not the deployment's: only control traffic there (polls, leases, progress).
    assert api_traffic < moved / 8, (api_traffic, moved)
