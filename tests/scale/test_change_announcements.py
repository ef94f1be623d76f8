"""Changes committed by one process reach the others on the same PostgreSQL database at
once (LISTEN/NOTIFY): an idle worker on another host claims new work without waiting for its
next poll, and a token revoked through one API host is refused by every other at once, not
after their verification caches expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import globus_sdk
import httpx
import pytest
from sqlalchemy import text

from arctern.db.engine import RELISTEN_SECONDS, Database, mark_changed
from tests.scale.conftest import Deployment
from tests.support.auth_flow import create_native_client, native_auth_client, native_tokens
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.timeout(180)

TOPIC = "test.topic"
TRANSFER_RS = "transfer.api.globus.org"


@pytest.fixture
async def two_processes(postgres: PostgresCluster) -> AsyncIterator[tuple[Database, Database]]:
    """Two ``Database`` objects on one database: each has its own connections, exactly as two
    processes (or hosts) would."""
    url = postgres.create_database()
    writer, reader = Database(url), Database(url)
    yield writer, reader
    await writer.dispose()
    await reader.dispose()


def counter() -> tuple[list[int], Callable[[], None], asyncio.Event]:
    calls: list[int] = []
    heard = asyncio.Event()

    def listener() -> None:
        calls.append(1)
        heard.set()

    return calls, listener, heard


async def settle(db: Database) -> None:
    """Wait until the listening connection is up (its first act announces every topic)."""
    await db.listen()
    for _ in range(200):
        async with db.engine.connect() as connection:
            listening = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            )
        if listening:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the listening connection never came up")


async def test_a_commit_is_heard_by_another_process_and_a_rollback_is_not(
    two_processes: tuple[Database, Database],
) -> None:
    writer, reader = two_processes
    calls, listener, heard = counter()
    reader.subscribe(TOPIC, listener)
    await settle(reader)
    await asyncio.sleep(0.2)
    heard.clear()
    calls.clear()

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with writer.session() as session:
            mark_changed(session, TOPIC)
            raise Abandon
    # A commit that marks nothing is not announced either.
    async with writer.session() as session:
        await session.execute(text("SELECT 1"))
    await asyncio.sleep(0.5)
    assert calls == []

    async with writer.session() as session:
        mark_changed(session, TOPIC)
        mark_changed(session, "another.topic")
    await asyncio.wait_for(heard.wait(), 10)
    assert calls == [1]

    # Unsubscribed listeners hear nothing more.
    reader.unsubscribe(TOPIC, listener)
    async with writer.session() as session:
        mark_changed(session, TOPIC)
    await asyncio.sleep(0.5)
    assert calls == [1]


async def test_a_lost_listening_connection_is_reopened_and_counts_as_a_change(
    two_processes: tuple[Database, Database],
) -> None:
    writer, reader = two_processes
    _calls, listener, heard = counter()
    reader.subscribe(TOPIC, listener)
    await settle(reader)
    await asyncio.wait_for(heard.wait(), 10)  # listening from scratch announces once
    heard.clear()

    async with writer.session() as session:
        terminated = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )
        )
    assert terminated == 1
    # Changes made while nobody listens are not lost: the reconnection announces them.
    async with writer.session() as session:
        mark_changed(session, TOPIC)
    await asyncio.wait_for(heard.wait(), RELISTEN_SECONDS + 20)
    heard.clear()
    async with writer.session() as session:
        mark_changed(session, TOPIC)
    await asyncio.wait_for(heard.wait(), 10)


def test_a_token_revoked_on_one_host_is_refused_by_another_at_once(
    deployment: Callable[[], Deployment],
) -> None:
    deploy = deployment()
    # Both hosts would trust a verified token for ten minutes without asking the database.
    cache = {"ARCTERN_TOKEN_CACHE_SECONDS": "600"}
    first = deploy.api(demo=True, extra_env=cache)
    second = deploy.api(extra_env=cache)
    client_id = create_native_client(first)
    tokens = native_tokens(first, client_id=client_id)
    access = tokens.by_resource_server[TRANSFER_RS]["access_token"]

    def endpoint_search(server: Any) -> httpx.Response:
        return httpx.get(
            f"{server.url}/transfer/v0.10/endpoint_search",
            params={"filter_fulltext": "Demo"},
            headers={"Authorization": f"Bearer {access}"},
            timeout=30,
        )

    assert endpoint_search(second).status_code == 200  # now in the second host's cache
    native_auth_client(first, client_id).oauth2_revoke_token(access)
    for _ in range(100):
        refused = endpoint_search(second)
        if refused.status_code == 401:
            break
        time.sleep(0.1)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "ClientError.AuthenticationFailed"
    with pytest.raises(globus_sdk.TransferAPIError):
        globus_sdk.TransferClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(access),
            base_url=f"{second.url}/transfer/",
        ).endpoint_search("Demo")
