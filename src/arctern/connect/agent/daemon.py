"""``arctern connect run``: keep a long poll open to the deployment and answer what arrives.

The agent connects out only. Each poll returns the relayed operations waiting for it (or
nothing when the hold ends); each runs as its own task so a slow one does not hold up the
next poll. A refused credential stops the agent with a clear message (exit code 3): it was
revoked by ``arctern endpoint delete`` or ``rotate-credentials`` and retrying cannot help.
An unreachable deployment is retried with backoff. The last state is kept in
``status.json`` for ``arctern connect status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from arctern.clock import Clock
from arctern.config import Settings
from arctern.connect.agent.client import AgentApiError, AsyncAgentClient, CredentialRefused
from arctern.connect.agent.credentials import CredentialChecks
from arctern.connect.agent.home import AgentHome
from arctern.connect.agent.operations import execute
from arctern.connect.agent.work_source import HttpWorkSource
from arctern.connect.dataserver import DataServer
from arctern.connect.links import LinkPool
from arctern.connect.remote_connector import RemoteConnector
from arctern.connect.wire import guard_of
from arctern.connectors.access import with_guard
from arctern.connectors.base import Connector
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.connectors.posix.connector import PosixConnector
from arctern.heap import settle_heap
from arctern.worker.executor import ConnectorFactory, WorkerConfig
from arctern.worker.pool import WorkerPool

STATUS_FILE = "status.json"
EXIT_CREDENTIAL_REFUSED = 3
MAX_BACKOFF = 30.0
# How often an idle agent asks for work (each ask is one HTTP request).
IDLE_POLL_SECONDS = 1.0


def write_status(home: AgentHome, state: str, message: str) -> None:
    data = {"state": state, "message": message, "pid": os.getpid(), "time": time.time()}
    target = home.path / STATUS_FILE
    temp = home.path / f".{STATUS_FILE}.{os.getpid()}"
    temp.write_text(json.dumps(data) + "\n")
    os.chmod(temp, 0o600)
    os.replace(temp, target)


def read_status(home: AgentHome) -> dict[str, Any] | None:
    try:
        data = json.loads((home.path / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Agent:
    def __init__(
        self,
        home: AgentHome,
        *,
        poll_hold: float,
        say: Callable[[str], None],
        listen: str | None = None,
        data_address: str | None = None,
    ) -> None:
        self.home = home
        self.listen = listen
        self.data_address = data_address
        self.data_server: DataServer | None = None
        self.announced: str | None = None
        self.poll_hold = poll_hold
        self.say = say
        self.stop = asyncio.Event()
        self.refused: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.pool: WorkerPool | None = None
        # Data connections to peers, shared by the jobs of a task.
        self.links = LinkPool()

    async def _start_data_server(self, client: AsyncAgentClient) -> None:
        """Accept data connections from peer agents (``--listen``)."""
        assert self.listen is not None

        async def ask(token: str) -> dict[str, Any] | None:
            try:
                return await client.verify_data_token(token)
            except (httpx.HTTPError, AgentApiError, CredentialRefused):
                return None

        checks = CredentialChecks(ask)

        async def open_collection(token: str) -> Connector | None:
            """The deployment says what the credential opens; only roots configured here
            can be opened, under the task owner's grants."""
            answer = await checks.check(token)
            if answer is None:
                return None
            root = self.home.load_config().root_of(str(answer.get("collection_id")))
            if root is None:
                return None
            return with_guard(PosixConnector(root), guard_of(answer.get("guard")))

        host, _, port = self.listen.rpartition(":")
        server = DataServer(open_collection, *self.home.data_certificate())
        bound = await server.start(host.strip("[]") or "0.0.0.0", int(port))
        self.data_server = server
        self.announced = self.data_address or bound
        self.say(f"accepting data connections on {bound} (announced as {self.announced})")

    def _start_pool(self, client: AsyncAgentClient, description: dict[str, Any]) -> WorkerPool:
        """The engine's worker pool, leasing this endpoint's transfers over HTTP."""
        settings = Settings()
        lease = float(description.get("lease_seconds") or settings.lease_seconds)
        flush = float(description.get("progress_flush_seconds") or settings.progress_flush_seconds)
        name = worker_name()
        config = WorkerConfig(
            name=name,
            lease=timedelta(seconds=lease),
            flush_seconds=flush,
            batch_files=settings.worker_batch_files,
        )
        return WorkerPool(
            None,
            settings=settings,
            clock=Clock(),
            config=config,
            source=HttpWorkSource(client.http, name, compress=client.compress),
            connector_factory=local_connectors(self.home, self.links),
            poll_interval=IDLE_POLL_SECONDS,
        )

    async def _handle(self, client: AsyncAgentClient, request: dict[str, Any]) -> None:
        # Re-read the configuration: a collection added while running is served at once.
        config = self.home.load_config()
        answer = await execute(config, request)
        try:
            await client.answer(str(request.get("id")), answer)
        except CredentialRefused as exc:
            self._refuse(str(exc))
        except (httpx.HTTPError, AgentApiError) as exc:
            self.say(f"could not send an answer: {exc}")

    def _refuse(self, message: str) -> None:
        self.refused = message
        self.stop.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def run(self) -> int:
        config = self.home.load_config()
        client = AsyncAgentClient(
            config.deployment_url, self.home.load_credential(), self.poll_hold
        )
        # Before connecting: once connected, the agent counts as present only while it polls.
        settle_heap()
        backoff = 0.5
        connected = False
        try:
            while not self.stop.is_set():
                if not connected:
                    # Check the credential first: a refused one is reported at once, not
                    # after a first poll's hold.
                    try:
                        description = await client.endpoint()
                    except CredentialRefused as exc:
                        self._refuse(str(exc))
                        break
                    except (httpx.HTTPError, AgentApiError) as exc:
                        message = f"deployment unreachable ({exc}); retrying in {backoff:g}s"
                        write_status(self.home, "unreachable", message)
                        self.say(message)
                        await self._pause(backoff)
                        backoff = min(backoff * 2, MAX_BACKOFF)
                        continue
                    connected = True
                    message = (
                        f"connected to {config.deployment_url} as endpoint "
                        f"'{config.display_name}' ({config.endpoint_id})"
                    )
                    write_status(self.home, "connected", message)
                    self.say(message)
                    if self.listen and self.data_server is None:
                        await self._start_data_server(client)
                    if self.data_server is not None:
                        await client.announce(self.announced, self.data_server.fingerprint)
                    if self.pool is None:
                        self.pool = self._start_pool(client, description)
                        await self.pool.start()
                poll = asyncio.ensure_future(client.poll())
                stopping = asyncio.ensure_future(self.stop.wait())
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(BaseException):
                        await poll
                    break
                try:
                    requests, work = poll.result()
                except CredentialRefused as exc:
                    self._refuse(str(exc))
                    break
                except (httpx.HTTPError, AgentApiError) as exc:
                    connected = False
                    message = f"deployment unreachable ({exc}); retrying in {backoff:g}s"
                    write_status(self.home, "unreachable", message)
                    self.say(message)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                backoff = 0.5
                if work and self.pool is not None:
                    self.pool.wake()  # claim the new work now, not at the next poll
                for request in requests:
                    task = asyncio.ensure_future(self._handle(client, request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            if self.data_server is not None:
                await self.data_server.stop()
                if self.refused is None:
                    with contextlib.suppress(Exception):
                        await client.announce(None, None)
            if self.pool is not None:
                # Drain: running jobs persist their progress and hand their leases back.
                with contextlib.suppress(Exception):
                    await self.pool.stop()
            await self.links.close()
            for task in list(self._tasks):
                task.cancel()
            if self.refused is None:
                with contextlib.suppress(Exception):
                    await client.offline()
            await client.close()
        if self.refused is not None:
            message = (
                f"the deployment refused this endpoint's credential (HTTP 401: {self.refused}). "
                "Get a new setup key from the administrator (`arctern endpoint "
                "rotate-credentials`) and run `arctern connect setup` again."
            )
            write_status(self.home, "credential-refused", message)
            self.say(f"Error: {message}")
            return EXIT_CREDENTIAL_REFUSED
        write_status(self.home, "stopped", "the agent was stopped")
        self.say("stopped")
        return 0


def worker_name() -> str:
    """This process's worker name: leases it holds die with it (a restarted agent takes
    them over when they expire and resumes from the last durable point)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "agent"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def local_connectors(home: AgentHome, links: LinkPool | None = None) -> ConnectorFactory:
    """Opens this agent's own collections, from its own configuration only: whatever the
    deployment names, nothing outside the roots configured here can be reached. Peers'
    collections are reached over the data channel (sharing ``links`` between jobs)."""

    def factory(kind: str, root: str, options: dict[str, Any]) -> Connector:
        if kind == "remote":  # a peer's collection, over the data channel
            return RemoteConnector.from_options(options, links)
        if kind != "agent":
            raise ConnectorError("this agent reaches only its own collections")
        local = home.load_config().root_of(root)
        if local is None:
            raise ObjectNotFound(f"this agent does not serve collection {root}")
        return PosixConnector(local)

    return factory


def run_agent(
    home: AgentHome,
    *,
    poll_hold: float,
    say: Callable[[str], None],
    listen: str | None = None,
    data_address: str | None = None,
) -> int:
    async def main() -> int:
        agent = Agent(home, poll_hold=poll_hold, say=say, listen=listen, data_address=data_address)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, agent.stop.set)
        return await agent.run()

    return asyncio.run(main())
