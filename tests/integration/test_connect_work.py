"""The agent's work source over ``/agent/v1/work``: an agent leases only transfers between
collections of its own endpoint, renews and hands back only its own leases, and learns of a
cancel through its heartbeat; central workers never lease that work.

Runs the agent API in process (ASGI) against migrated SQLite and PostgreSQL databases, so
tasks of every topology can be made directly (submission still refuses all agent transfers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from arctern.config import Settings
from arctern.connect import endpoints
from arctern.connect.agent.client import CredentialRefused
from arctern.connect.agent.work_source import HttpWorkSource
from arctern.connect.api import create_agent_app
from arctern.context import AppContext
from arctern.db.migrate import upgrade
from arctern.db.models.transfer import Task
from arctern.worker.leases import Claim, Limits
from arctern.worker.source import DatabaseWorkSource
from tests.integration.test_worker_scope import collection, task
from tests.scale.test_fair_share import user

LEASE = timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'work.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, database_url: str) -> AsyncIterator[AppContext]:
    settings = Settings(home=tmp_path, database_url=database_url, secret_key="t")
    context = AppContext.from_settings(settings)
    yield context
    await context.db.dispose()


@dataclass
class AgentSide:
    endpoint_id: uuid.UUID
    collections: list[uuid.UUID]
    http: httpx.AsyncClient

    def source(self, worker: str = "w1") -> HttpWorkSource:
        return HttpWorkSource(self.http, worker)


async def agent(ctx: AppContext, name: str, owner: str, collections: int) -> AgentSide:
    endpoint, setup_key = await endpoints.create_endpoint(ctx, name, owner)
    _, credential = await endpoints.exchange_setup_key(ctx, setup_key)
    ids = [
        (await endpoints.register_collection(ctx, endpoint.id, f"{name} {i}", "")).id
        for i in range(collections)
    ]
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_agent_app(ctx)),
        base_url="http://deployment/v1",
        headers={"Authorization": f"Bearer {credential}"},
    )
    return AgentSide(endpoint.id, ids, http)


async def drain(source: HttpWorkSource | DatabaseWorkSource) -> list[Claim]:
    claims = []
    while (claim := await source.claim()) is not None:
        claims.append(claim)
    return claims


async def test_an_agent_leases_only_its_own_endpoints_work(ctx: AppContext) -> None:
    owner = await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 2)
    other = await agent(ctx, "Other DTN", "alice@alice.edu", 1)
    central = await collection(ctx, owner)
    try:
        local = await task(ctx, owner, lab.collections[0], lab.collections[1], batches=1)
        cross_agents = await task(ctx, owner, lab.collections[0], other.collections[0])
        to_central = await task(ctx, owner, lab.collections[0], central)

        # The other agent sees none of the lab's work, nor the transfer needing both hosts.
        assert await drain(other.source()) == []
        # Central workers never lease a transfer touching an agent collection.
        central_source = DatabaseWorkSource(ctx, worker="central", lease=LEASE, limits=Limits())
        assert await drain(central_source) == []

        claims = await drain(lab.source())
        assert [(c.kind, c.task_id) for c in claims] == [("batch", local)]
        held = claims[0]
        assert {cross_agents, to_central}.isdisjoint(c.task_id for c in claims)

        # Another endpoint's credential cannot renew or hand back the lab's lease ...
        assert await other.source("w1").renew(held) == "LEASE_LOST"
        await other.source("w1").release(held)
        # ... nor can another worker name of the same agent.
        assert await lab.source("w2").renew(held) == "LEASE_LOST"
        assert await lab.source().renew(held) is None
        assert await drain(lab.source("w2")) == []

        # A cancel reaches the holder through its heartbeat.
        async with ctx.db.session() as session:
            await session.execute(
                update(Task).where(Task.id == local).values(cancel_requested=True)
            )
        assert await lab.source().renew(held) == "CANCELED"

        # Drain: the lease handed back is claimable at once (once the cancel is withdrawn).
        await lab.source().release(held)
        async with ctx.db.session() as session:
            await session.execute(
                update(Task).where(Task.id == local).values(cancel_requested=False)
            )
        again = await drain(lab.source("w2"))
        assert [(c.kind, c.batch_id) for c in again] == [("batch", held.batch_id)]
    finally:
        await lab.http.aclose()
        await other.http.aclose()


async def test_the_work_routes_refuse_bad_credentials_and_bodies(ctx: AppContext) -> None:
    await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 1)
    try:
        credential = lab.http.headers["Authorization"]
        lab.http.headers["Authorization"] = "Bearer not-a-credential"
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
        lab.http.headers.pop("Authorization")
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
        lab.http.headers["Authorization"] = credential
        for path, body in (
            ("/work/lease", {}),
            ("/work/lease", {"worker": "a b/../c"}),
            ("/work/renew", {"worker": "w1"}),
            ("/work/renew", {"worker": "w1", "claim": {"kind": "plan", "task_id": "x"}}),
            (
                "/work/release",
                {"worker": "w1", "claim": {"kind": "batch", "task_id": str(uuid.uuid4())}},
            ),
        ):
            response = await lab.http.post(path, json=body)
            assert response.status_code == 400, (path, body, response.text)
            doc = response.json()
            assert set(doc) >= {"code", "message", "request_id"}
        assert await lab.source().claim() is None
        # A revoked credential is refused on the work routes as on every agent route.
        await endpoints.rotate_credentials(ctx, str(lab.endpoint_id))
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
    finally:
        await lab.http.aclose()
