"""Arctern Connect, slice 1: a live ``arctern serve`` and real ``arctern connect`` agent
processes on loopback, driven with the unmodified globus-sdk and globus-cli.

Covered: setup-key exchange and the credential file's mode; the agent's collection found as a
GCSv5 mapped collection; ls/stat/mkdir/rename/delete relayed and effective on the agent's
disk; confinement (``..``, a symlink out of the root) and a non-owner's access rules enforced
by the agent; a stopped or SIGKILLed agent answered with Globus's disconnected error within
seconds, and working again once restarted; a second API process relaying to an agent whose
long poll the first one holds; rotated or deleted credentials refused (401) and the agent
stopping with a clear message; transfers between an agent and the deployment's own storage
refused at submission while the agent does not listen for data connections (transfers:
``test_connect_transfers.py``, ``test_connect_peers.py``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import globus_sdk
import httpx
import pytest
import typer

from arctern.cli.main import app
from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import globus, globus_login
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.server import (
    ARCTERN,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LiveServer,
    free_port,
    start_server,
)

pytestmark = pytest.mark.timeout(300)

# Short holds so a test never waits out a long poll; the deployment default is 20 s.
POLL_HOLD = "3"
DISCONNECTED = "ExternalError.DirListingFailed.GCDisconnected"


def agent_env() -> dict[str, str]:
    """The agent's environment has no database and no deployment home: it cannot cheat."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ARCTERN_")}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Agent:
    server: LiveServer
    home: Path
    process: subprocess.Popen[str] | None = None
    logs: list[str] = field(default_factory=list)
    run_args: list[str] = field(default_factory=list)  # e.g. --listen HOST:PORT
    launcher: list[str] = field(default_factory=list)  # e.g. ip netns exec HOST

    def connect(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ARCTERN, "connect", *args, "--home", str(self.home)],
            env=agent_env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def setup(self, setup_key: str, name: str) -> subprocess.CompletedProcess[str]:
        return self.connect(
            "setup", self.server.url, "--name", name, "--setup-key-stdin", input=setup_key + "\n"
        )

    def start(self) -> None:
        # A killed agent leaves its last state behind.
        (self.home / "status.json").unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                *self.launcher,
                ARCTERN,
                "connect",
                "run",
                "--home",
                str(self.home),
                "--poll-hold",
                POLL_HOLD,
                *self.run_args,
            ],
            env=agent_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(
            lambda: self.status_state() == "connected" or self.process.poll() is not None,  # type: ignore[union-attr]
            "the agent to connect",
        )
        assert self.process.poll() is None, self.output()

    def status_state(self) -> str | None:
        try:
            return str(json.loads((self.home / "status.json").read_text())["state"])
        except (OSError, ValueError, KeyError):
            return None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self.output()
        return code

    def output(self) -> str:
        """Everything the agent printed (once it has exited)."""
        if self.process is not None and self.process.poll() is not None and self.process.stdout:
            self.logs.append(self.process.stdout.read())
            self.process.stdout.close()
            self.process.stdout = None
        return "".join(self.logs)

    def credential(self) -> str:
        return str(json.loads((self.home / "credential.json").read_text())["credential"])


def create_endpoint(server: LiveServer, name: str) -> tuple[str, str]:
    made = server.admin("endpoint", "create", name, "--owner", DEMO_USERNAME)
    assert made.returncode == 0, made.stderr
    endpoint_id = made.stdout.split("Endpoint: ")[1].split()[0]
    setup_key = made.stdout.split("Setup key")[1].split(": ")[1].split()[0]
    return endpoint_id, setup_key


def setup_key_of(output: str) -> str:
    return output.split("Setup key")[1].split(": ")[1].split()[0]


@dataclass
class Site:
    server: LiveServer
    owner: Account
    agent: Agent
    endpoint_id: str
    collection_id: str
    root: Path
    central: str  # a central demo collection


def ls_names(tc: globus_sdk.TransferClient, collection: str, path: str = "/") -> set[str]:
    return {entry["name"] for entry in tc.operation_ls(collection, path=path)}


def serves(tc: globus_sdk.TransferClient, collection: str) -> bool:
    """Whether an ls succeeds; False while the agent is (re)connecting."""
    try:
        return "hello.txt" in ls_names(tc, collection)
    except globus_sdk.TransferAPIError as exc:
        if exc.code != DISCONNECTED:
            raise
        return False


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> globus_sdk.TransferAPIError:
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(
        tmp_path_factory.mktemp("connect-server"), extra_args=_database_args(request)
    )
    agent = Agent(server, tmp_path_factory.mktemp("agent-host") / "connect-home")
    root = tmp_path_factory.mktemp("agent-data")
    (root / "hello.txt").write_text("hello from the lab\n")
    (root / "results").mkdir()
    (root / "results" / "run1.csv").write_text("a,b\n1,2\n")
    try:
        endpoint_id, setup_key = create_endpoint(server, "Lab DTN")
        done = agent.setup(setup_key, "Lab DTN")
        assert done.returncode == 0, done.stderr
        created = agent.connect("collection", "create", "--name", "Lab data", "--posix", str(root))
        assert created.returncode == 0, created.stderr
        collection_id = created.stdout.split()[0]
        agent.start()
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        wait_for(lambda: serves(owner.tc, collection_id), "the agent to serve")
        central = next(iter(owner.tc.endpoint_search("Demo Collection 1")))["id"]
        yield Site(server, owner, agent, endpoint_id, collection_id, root, central)
    finally:
        if agent.process is not None and agent.process.poll() is None:
            agent.stop()
        server.stop()


def test_setup_key_gives_a_private_credential_once(site: Site, tmp_path: Path) -> None:
    home = site.agent.home
    assert (home.stat().st_mode & 0o777) == 0o700
    assert (home / "credential.json").stat().st_mode & 0o777 == 0o600
    assert (home / "agent.json").stat().st_mode & 0o777 == 0o600
    assert site.agent.credential().startswith("acc_")
    # The collection root is in the agent's own configuration only.
    config = json.loads((home / "agent.json").read_text())
    assert config["collections"][0]["root"] == os.path.realpath(site.root)
    shown = site.server.admin("endpoint", "show", "Lab DTN")
    assert "Connected:   yes" in shown.stdout and site.collection_id in shown.stdout
    assert str(site.root) not in shown.stdout

    # A setup key is spent by its first use; a made-up one is refused too.
    _, key = create_endpoint(site.server, f"Spare {uuid.uuid4().hex[:6]}")
    other = Agent(site.server, tmp_path / "other-home")
    assert other.setup(key, "Spare").returncode == 0
    again = Agent(site.server, tmp_path / "again-home")
    reused = again.setup(key, "Spare")
    assert reused.returncode == 1 and "refused the setup key" in reused.stderr
    assert not (tmp_path / "again-home" / "credential.json").exists()
    invalid = again.setup("acs_" + "x" * 43, "Spare")
    assert invalid.returncode == 1 and "not valid" in invalid.stderr


def test_agent_collection_is_a_gcsv5_mapped_collection(site: Site, tmp_path: Path) -> None:
    found = list(
        site.owner.tc.endpoint_search("Lab data", filter_entity_type="GCSv5_mapped_collection")
    )
    assert [doc["id"] for doc in found] == [site.collection_id]
    doc = site.owner.tc.get_endpoint(site.collection_id)
    assert doc["entity_type"] == "GCSv5_mapped_collection"
    assert doc["host_endpoint_id"] == site.endpoint_id
    assert doc["owner_string"] == DEMO_USERNAME
    assert doc["gcs_version"].startswith("5.")
    assert doc["https_server"] == f"{site.server.url}/https/{site.collection_id}"
    # The host endpoints are GCSv5 endpoints: the agent's, and the built-in one of the
    # deployment's own collections.
    host = site.owner.tc.get_endpoint(site.endpoint_id)
    assert host["entity_type"] == "GCSv5_endpoint" and host["display_name"] == "Lab DTN"
    assert host["owner_string"] == DEMO_USERNAME
    central = site.owner.tc.get_endpoint(site.central)
    builtin = site.owner.tc.get_endpoint(central["host_endpoint_id"])
    assert builtin["entity_type"] == "GCSv5_endpoint" and builtin["owner_id"] is None
    hosts = site.owner.tc.endpoint_search("Lab", filter_entity_type="GCSv5_endpoint")
    assert [h["id"] for h in hosts] == [site.endpoint_id]

    # globus-cli finds it (and the central collections) with the same filter.
    cli_home = tmp_path / "cli"
    assert globus_login(site.server, cli_home).returncode == 0
    listed = globus(
        site.server,
        cli_home,
        "endpoint",
        "search",
        "Lab",
        "--filter-entity-type",
        "GCSv5_mapped_collection",
        "-F",
        "json",
    )
    assert listed.returncode == 0, listed.stderr
    assert site.collection_id in {e["id"] for e in json.loads(listed.stdout)["DATA"]}
    shown = globus(site.server, cli_home, "endpoint", "show", site.endpoint_id)
    assert shown.returncode == 0 and "Lab DTN" in shown.stdout, shown.stderr
    names = globus(site.server, cli_home, "ls", f"{site.collection_id}:/")
    assert names.returncode == 0, names.stderr
    assert set(names.stdout.split()) == {"hello.txt", "results/"}


def test_file_operations_are_relayed_to_the_agent(site: Site) -> None:
    tc, cid, root = site.owner.tc, site.collection_id, site.root
    assert ls_names(tc, cid) >= {"hello.txt", "results"}
    listing = tc.operation_ls(cid, path="/results")
    assert listing["path"] == "/results/" and [e["name"] for e in listing] == ["run1.csv"]
    assert tc.operation_stat(cid, "/hello.txt")["size"] == len("hello from the lab\n")

    scratch = f"/ops-{uuid.uuid4().hex[:6]}"
    assert tc.operation_mkdir(cid, scratch)["code"] == "DirectoryCreated"
    assert (root / scratch.lstrip("/")).is_dir()
    exists = api_error(tc.operation_mkdir, cid, scratch)
    assert exists.http_status == 502 and exists.code == "ExternalError.MkdirFailed.Exists"

    (root / scratch.lstrip("/") / "data.bin").write_bytes(b"\x00" * 1000)
    tc.operation_rename(cid, f"{scratch}/data.bin", f"{scratch}/renamed.bin")
    assert (root / scratch.lstrip("/") / "renamed.bin").stat().st_size == 1000
    assert not (root / scratch.lstrip("/") / "data.bin").exists()
    missing = api_error(tc.operation_ls, cid, path="/no-such-dir/")
    assert missing.http_status == 404

    # Delete is a task; the worker's deletions are relayed too.
    ddata = globus_sdk.DeleteData(endpoint=cid, recursive=True)
    ddata.add_item(scratch)
    task_id = tc.submit_delete(ddata)["task_id"]
    assert tc.task_wait(task_id, timeout=60, polling_interval=1)
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED", task.data
    assert not (root / scratch.lstrip("/")).exists()


def test_paths_escaping_the_agent_root_are_refused(site: Site, tmp_path: Path) -> None:
    tc, cid = site.owner.tc, site.collection_id
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not exported")
    (site.root / "escape").symlink_to(outside)
    try:
        for path in ("/escape/", "/../", "/results/../../"):
            error = api_error(tc.operation_ls, cid, path=path)
            assert error.http_status in (400, 403), (path, error.code)
            assert "secret.txt" not in error.message
        error = api_error(tc.operation_mkdir, cid, "/escape/made-here")
        assert error.http_status == 403
        assert not (outside / "made-here").exists()
    finally:
        (site.root / "escape").unlink()


def test_access_rules_travel_with_relayed_operations(site: Site) -> None:
    """A non-owner with read access to /shared/ lists it, nothing else; a symlink from the
    shared directory into a private one is refused by the agent (the guard travels)."""
    tc, cid, root = site.owner.tc, site.collection_id, site.root
    (root / "shared").mkdir(exist_ok=True)
    (root / "shared" / "public.txt").write_text("for everyone")
    (root / "private").mkdir(exist_ok=True)
    (root / "private" / "mine.txt").write_text("owner only")
    link = root / "shared" / "sneaky"
    if not link.is_symlink():
        link.symlink_to(root / "private")
    username, password = make_user(site.server, "guest")
    guest = login(site.server, username, password)
    assert api_error(guest.tc.operation_ls, cid, path="/shared/").http_status == 403
    tc.add_endpoint_acl_rule(
        cid,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": guest.identity_id,
            "path": "/shared/",
            "permissions": "r",
        },
    )
    assert ls_names(guest.tc, cid, "/shared/") == {"public.txt", "sneaky"}
    assert api_error(guest.tc.operation_ls, cid, path="/private/").http_status == 403
    through_link = api_error(guest.tc.operation_ls, cid, path="/shared/sneaky/")
    assert through_link.http_status == 403, through_link.code
    assert api_error(guest.tc.operation_mkdir, cid, "/shared/new").http_status == 403
    assert not (root / "shared" / "new").exists()


def test_transfers_between_central_and_a_non_listening_agent_are_refused(site: Site) -> None:
    tc = site.owner.tc
    for source, destination in (
        (site.central, site.collection_id),
        (site.collection_id, site.central),
    ):
        tdata = globus_sdk.TransferData(source_endpoint=source, destination_endpoint=destination)
        tdata.add_item("/hello.txt", f"/copy-{uuid.uuid4().hex[:6]}.txt")
        error = api_error(tc.submit_transfer, tdata)
        assert error.http_status == 409 and error.code == "ClientError.NotSupported"
        assert "--listen" in error.message
    tasks = list(tc.task_list(filter="type:TRANSFER"))
    assert site.collection_id not in {t["source_endpoint_id"] for t in tasks} | {
        t["destination_endpoint_id"] for t in tasks
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_offline_agent_gives_the_disconnected_error_then_recovers(site: Site, sig: int) -> None:
    tc, cid = site.owner.tc, site.collection_id
    assert "hello.txt" in ls_names(tc, cid)
    site.agent.stop(sig)

    def disconnected() -> globus_sdk.TransferAPIError | None:
        try:
            tc.operation_ls(cid)
        except globus_sdk.TransferAPIError as exc:
            return exc
        return None

    started = time.monotonic()
    error = wait_for(disconnected, "the disconnected error", timeout=30)
    elapsed = time.monotonic() - started
    assert error.http_status == 502 and error.code == DISCONNECTED, (error.code, error.message)
    assert "Lab DTN" in error.message and "not currently connected" in error.message
    # Once it is known to be offline, each request fails fast instead of hanging.
    started = time.monotonic()
    again = api_error(tc.operation_mkdir, cid, "/while-offline")
    assert again.code == "ExternalError.MkdirFailed.GCDisconnected"
    print(
        f"offline ({signal.Signals(sig).name}): first error after {elapsed:.2f}s, "
        f"next in {time.monotonic() - started:.2f}s"
    )
    assert not (site.root / "while-offline").exists()

    site.agent.start()
    wait_for(lambda: serves(tc, cid), "the agent to serve again")


def test_a_second_api_process_relays_through_the_database(site: Site) -> None:
    """The agent's long poll is held by the first API process; requests arriving at a second
    process (same database) are relayed through the shared rows."""
    second = LiveServer(
        home=site.server.home,
        port=free_port(),
        extra_args=[*site.server.extra_args, "--no-worker"],
    ).start(demo=False)
    try:
        tc2 = globus_sdk.TransferClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(site.owner.token),
            base_url=f"{second.url}/transfer/",
        )
        started = time.monotonic()
        assert "hello.txt" in ls_names(tc2, site.collection_id)
        print(f"ls through the second API process: {time.monotonic() - started:.2f}s")
        scratch = f"/second-{uuid.uuid4().hex[:6]}"
        tc2.operation_mkdir(site.collection_id, scratch)
        assert (site.root / scratch.lstrip("/")).is_dir()
    finally:
        second.stop()


def test_rotated_then_deleted_credentials_are_refused(site: Site, tmp_path: Path) -> None:
    """Runs last in the module: it revokes the shared agent's credential."""
    agent, server = site.agent, site.server
    old = agent.credential()
    poll = f"{server.url}/agent/v1/poll"
    assert (
        httpx.post(
            poll, params={"hold": "0"}, headers={"Authorization": f"Bearer {old}"}
        ).status_code
        == 200
    )

    rotated = server.admin("endpoint", "rotate-credentials", "Lab DTN")
    assert rotated.returncode == 0, rotated.stderr
    # The running agent is refused at its held poll and stops with a clear message.
    assert agent.process is not None
    code = agent.process.wait(30)
    output = agent.output()
    assert code == 3, output
    assert "refused this endpoint's credential" in output and "HTTP 401" in output
    refused = httpx.post(poll, headers={"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "ClientError.AuthenticationFailed"
    status = agent.connect("status")
    assert status.returncode == 3 and "credential is refused" in status.stdout
    error = api_error(site.owner.tc.operation_ls, site.collection_id)
    assert error.code == DISCONNECTED

    # The new setup key restores the same endpoint; its collections stay configured.
    again = agent.setup(setup_key_of(rotated.stdout), "Lab DTN")
    assert again.returncode == 0, again.stderr
    assert agent.credential() != old
    agent.start()
    wait_for(lambda: serves(site.owner.tc, site.collection_id), "the agent to serve again")

    current = agent.credential()
    deleted = server.admin("endpoint", "delete", "Lab DTN")
    assert deleted.returncode == 0, deleted.stderr
    code = agent.process.wait(30)
    assert code == 3 and "HTTP 401" in agent.output()
    gone = httpx.post(poll, headers={"Authorization": f"Bearer {current}"})
    assert gone.status_code == 401
    assert list(site.owner.tc.endpoint_search("Lab data")) == []
    assert "Lab DTN" not in server.admin("endpoint", "list").stdout


def test_the_example_systemd_unit_runs_a_real_command() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs/deploy/arctern-connect.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert exec_start
    argv = shlex.split(exec_start.group(1))
    assert argv[0].endswith("/arctern") and argv[1:3] == ["connect", "run"]
    connect = typer.main.get_command(app).commands["connect"]  # type: ignore[attr-defined]
    command = connect.commands["run"]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    assert {arg for arg in argv[3:] if arg.startswith("--")} <= known
    assert "RestartPreventExitStatus=3" in text
