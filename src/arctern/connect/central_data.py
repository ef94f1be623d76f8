"""The deployment's workers as data-channel peers of Connect agents that do not listen.

A laptop or a host behind NAT runs its agent with ``--no-listen``: it can only connect out.
For its transfers with the deployment's own storage, a worker of the deployment listens
instead (``ARCTERN_DATA_LISTEN``): the agent leases the job and connects here, exactly as it
would to a listening peer agent — same TLS with a pinned certificate, same task credential,
same frames — and the bytes go between the agent and this worker host, never through the
API hosts.

Each listening worker renews its row in ``connect_central_listeners`` (address, certificate
fingerprint, live until) while it runs; agents are sent to a live one. The certificate is
made afresh at each start: peers learn its fingerprint from that row only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from arctern.connect.datachannel import CENTRAL_SERVED_CONNECTORS
from arctern.connect.dataserver import DataServer, make_certificate
from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID
from arctern.connect.work import running_task_grant
from arctern.connectors.access import with_guard
from arctern.connectors.base import Connector
from arctern.context import AppContext
from arctern.db.models.connect import CentralDataListener
from arctern.db.models.transfer import Collection
from arctern.worker.executor import ConnectorFactory

log = logging.getLogger("arctern.worker")


class DataListener:
    """One worker's data-channel listener and its announcement."""

    def __init__(
        self, ctx: AppContext, factory: ConnectorFactory, worker: str, listen: str
    ) -> None:
        self.ctx = ctx
        self.factory = factory
        self.worker = worker
        self.listen = listen
        self.server: DataServer | None = None
        self.address = ""
        self._renewal: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Listen and announce; returns the announced ``host:port``."""
        with tempfile.TemporaryDirectory(prefix="arctern-data-") as folder:
            cert, key = make_certificate()
            cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert_path.write_bytes(cert)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            server = DataServer(self._open, cert_path, key_path)
            host, _, port = self.listen.rpartition(":")
            bound = await server.start(host.strip("[]") or "0.0.0.0", int(port))
        self.server = server
        self.address = self.ctx.settings.data_address or bound
        await self._announce()
        self._renewal = asyncio.create_task(self._renew())
        log.info("accepting data connections on %s (announced as %s)", bound, self.address)
        return self.address

    async def close(self) -> None:
        """Stop listening and renewing; the announcement runs out by itself (a crash)."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if self.server is not None:
            await self.server.stop()

    async def stop(self) -> None:
        await self.close()
        # Ended, not removed: the row still says the deployment takes such transfers.
        with contextlib.suppress(Exception):
            async with self.ctx.db.session() as session:
                await session.execute(
                    update(CentralDataListener)
                    .where(CentralDataListener.worker == self.worker)
                    .values(live_until=self.ctx.clock.now())
                )

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.lease_seconds)

    async def _announce(self) -> None:
        assert self.server is not None
        live_until = self.ctx.clock.now() + self._lease
        async with self.ctx.db.session() as session:
            row = await session.get(CentralDataListener, self.worker)
            if row is None:
                session.add(
                    CentralDataListener(
                        worker=self.worker,
                        address=self.address,
                        fingerprint=self.server.fingerprint,
                        live_until=live_until,
                    )
                )
            else:
                row.address, row.fingerprint = self.address, self.server.fingerprint
                row.live_until = live_until

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                await self._announce()
            except Exception:  # the database is away: try again at the next round
                log.warning("could not renew the data listener's announcement", exc_info=True)

    async def _open(self, token: str) -> Connector | None:
        """The central collection a task credential opens, under the grants it carries."""
        grant = await running_task_grant(self.ctx, token, BUILTIN_ENDPOINT_ID)
        if grant is None:
            return None
        async with self.ctx.db.session() as session:
            collection = (
                await session.execute(
                    select(Collection.connector, Collection.root, Collection.options).where(
                        Collection.id == grant.collection_id
                    )
                )
            ).first()
        if collection is None or collection.connector not in CENTRAL_SERVED_CONNECTORS:
            return None
        connector = self.factory(
            collection.connector, collection.root, dict(collection.options or {})
        )
        return with_guard(connector, grant.guard)


async def list_listeners(ctx: AppContext) -> list[tuple[str, str, str, bool]]:
    """``(worker, address, fingerprint, live)`` of every worker that announced a listener."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(CentralDataListener).order_by(CentralDataListener.live_until.desc())
        )
        return [(r.worker, r.address, r.fingerprint, r.live_until > now) for r in rows]
