"""Arctern Connect across an emulated wide-area link: 50 ms round trips, then 0.1% loss.

Three network namespaces (deployment, listening DTN, ``--no-listen`` laptop) on a bridge;
every host holds each packet it receives for 25 ms (``tests.support.delayline``: NFQUEUE,
since this kernel has no netem), so every path has a 50 ms round trip, control channel
included; the agents' links are rate-limited with ``tbf``. The emulated round trip is
measured first. Many small files must then cross in groups (one frame per group, not several
round trips per file), pushed by the laptop and pulled by it, and a large file must arrive
intact over a lossy link.

Needs root, iptables and netfilterqueue; skipped elsewhere, run in CI.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest

from tests.integration.test_connect import Agent, create_endpoint, serves, wait_for
from tests.integration.test_connect_transfers import tree, wait_task
from tests.integration.test_transfer_api import Account, login
from tests.support import netns
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

UNAVAILABLE = netns.available() or netns.delay_available()
pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE)),
]

DATA_PORT = 50500
ONE_WAY_MS = 25.0
SMALL_FILES = 600


@dataclass
class Wan:
    server: LiveServer
    hosts: list[netns.Host]
    dtn_host: netns.Host
    laptop_host: netns.Host
    owner: Account
    dtn_collection: str
    laptop_collection: str
    dtn_root: Path
    laptop_root: Path

    def set_link(self, loss: float) -> None:
        for queue, host in enumerate(self.hosts, start=7):
            host.stop_helpers()
            subprocess.run([*host.launcher, "iptables-legacy", "-F", "INPUT"], check=True)
            host.add_delay(ONE_WAY_MS, loss=loss, queue=queue)


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wan]:
    network = netns.Network().create()
    agents: list[Agent] = []
    server: LiveServer | None = None
    try:
        api = network.add_host("api")
        dtn_host = network.add_host("dtn")
        laptop_host = network.add_host("lap")
        for queue, host in enumerate((api, dtn_host, laptop_host), start=7):
            host.add_delay(ONE_WAY_MS, queue=queue)
        for host in (dtn_host, laptop_host):
            host.limit_rate("400mbit", burst="1mb")
        server = start_server(
            tmp_path_factory.mktemp("wan-server"), host=api.address, launcher=api.launcher
        )
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        roots, collections = [], []
        for host, label, args in (
            (dtn_host, "DTN", ["--listen", f"{dtn_host.address}:{DATA_PORT}"]),
            (laptop_host, "Laptop", ["--no-listen"]),
        ):
            root = tmp_path_factory.mktemp(f"wan-{label.lower()}-data")
            agent = Agent(
                server,
                tmp_path_factory.mktemp(f"wan-{label.lower()}") / "home",
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
        yield Wan(
            server,
            [api, dtn_host, laptop_host],
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


def ends(wan: Wan, direction: str) -> tuple[str, str, Path, Path]:
    """Source and destination collections and roots: the laptop pushes to the DTN, or pulls
    from it (it runs both transfers: it cannot be reached)."""
    if direction == "push":
        return wan.laptop_collection, wan.dtn_collection, wan.laptop_root, wan.dtn_root
    return wan.dtn_collection, wan.laptop_collection, wan.dtn_root, wan.laptop_root


def test_the_link_has_the_emulated_round_trip(wan: Wan) -> None:
    rtt = wan.laptop_host.round_trip_ms(wan.dtn_host, DATA_PORT)
    print(f"laptop -> DTN round trip {rtt:.1f} ms")
    assert 2 * ONE_WAY_MS * 0.9 <= rtt < 2 * ONE_WAY_MS * 4, rtt


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_many_small_files_cross_in_groups(wan: Wan, direction: str) -> None:
    """The laptop runs both transfers (it cannot be reached): it pushes to the DTN, or pulls
    from it. One round trip per file would take ``files x RTT`` at least; groups take a few."""
    src, dst, src_root, dst_root = ends(wan, direction)
    folder = src_root / f"small-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    for i in range(SMALL_FILES):
        (folder / f"f{i:04}.dat").write_bytes(os.urandom(4096))
    tdata = globus_sdk.TransferData(
        source_endpoint=src, destination_endpoint=dst, verify_checksum=True, label=direction
    )
    tdata.add_item(f"/{folder.name}/", f"/in/{folder.name}/", recursive=True)
    started = time.monotonic()
    task = wait_task(wan.owner.tc, wan.owner.tc.submit_transfer(tdata)["task_id"], 600)
    elapsed = time.monotonic() - started
    assert task["status"] == "SUCCEEDED", task
    assert task["files_transferred"] == SMALL_FILES
    assert tree(dst_root / "in" / folder.name) == tree(folder)
    one_per_file = SMALL_FILES * 2 * ONE_WAY_MS / 1000
    print(
        f"{direction}: {SMALL_FILES} x 4 KiB over a {2 * ONE_WAY_MS:.0f} ms link in "
        f"{elapsed:.1f} s (one round trip per file alone: {one_per_file:.0f} s)"
    )
    # Submission to SUCCEEDED, control channel included, in less than half of what one round
    # trip per file would take by itself (file by file costs four or more per file).
    assert elapsed < one_per_file / 2, elapsed


def test_a_lossy_link_still_delivers_identical_bytes(wan: Wan) -> None:
    wan.set_link(loss=0.001)
    try:
        folder = wan.laptop_root / f"lossy-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        (folder / "big.bin").write_bytes(os.urandom(32 << 20))
        tdata = globus_sdk.TransferData(
            source_endpoint=wan.laptop_collection,
            destination_endpoint=wan.dtn_collection,
            verify_checksum=True,
        )
        tdata.add_item(f"/{folder.name}/", f"/in/{folder.name}/", recursive=True)
        started = time.monotonic()
        task = wait_task(wan.owner.tc, wan.owner.tc.submit_transfer(tdata)["task_id"], 600)
        elapsed = time.monotonic() - started
        assert task["status"] == "SUCCEEDED", task
        assert tree(wan.dtn_root / "in" / folder.name) == tree(folder)
        rate = (32 << 20) * 8 / elapsed / 1e6
        print(f"32 MiB over 50 ms, 0.1% loss: {elapsed:.1f} s ({rate:.0f} Mbit/s end to end)")
    finally:
        wan.set_link(loss=0.0)


TREE_DIRECTORIES = 200


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_tree_crosses_without_a_round_trip_per_directory(wan: Wan, direction: str) -> None:
    """A tree of many directories: pushed, each planned mkdir is a round trip; pulled, each
    listing is. Made one after another they alone would take ``directories x RTT``. Then a
    sync (level 2, size and time) of the same tree finds every file current; file by file,
    its destination lookups alone would take ``files x RTT / 4``."""
    src, dst, src_root, dst_root = ends(wan, direction)
    folder = src_root / f"tree-{uuid.uuid4().hex[:6]}"
    for d in range(TREE_DIRECTORIES):
        (folder / f"d{d:03}" / "sub").mkdir(parents=True)
        for i in range(3):
            (folder / f"d{d:03}" / f"f{i}.dat").write_bytes(os.urandom(512))
    files = 3 * TREE_DIRECTORIES
    rtt = 2 * ONE_WAY_MS / 1000

    def transfer(**options: object) -> tuple[dict[str, object], float]:
        tdata = globus_sdk.TransferData(
            source_endpoint=src, destination_endpoint=dst, verify_checksum=True, **options
        )
        tdata.add_item(f"/{folder.name}/", f"/in/{folder.name}/", recursive=True)
        started = time.monotonic()
        task = wait_task(wan.owner.tc, wan.owner.tc.submit_transfer(tdata)["task_id"], 600)
        return task, time.monotonic() - started

    task, elapsed = transfer(label=f"tree {direction}")
    assert task["status"] == "SUCCEEDED", task
    assert task["files_transferred"] == files
    assert task["directories"] == 2 * TREE_DIRECTORIES + 1
    assert tree(dst_root / "in" / folder.name) == tree(folder)
    assert all((dst_root / "in" / folder.name / f"d{d:03}" / "sub").is_dir() for d in (0, 199))
    print(f"tree {direction}: {TREE_DIRECTORIES * 2} directories in {elapsed:.1f} s")
    assert elapsed < 2 * TREE_DIRECTORIES * rtt / 2, elapsed

    task, elapsed = transfer(label=f"tree sync {direction}", sync_level=2)
    assert task["status"] == "SUCCEEDED", task
    assert (task["files_transferred"], task["files_skipped"]) == (0, files)
    print(f"sync {direction}: {files} files found current in {elapsed:.1f} s")
    assert elapsed < files * rtt / 4, elapsed
