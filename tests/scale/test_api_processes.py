"""Several ``arctern serve --no-worker`` processes on one PostgreSQL database, plus a separate
``arctern worker``: tokens, tasks and cancels work through any API process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import globus_sdk
import httpx
import pytest

from tests.scale.conftest import Deployment
from tests.scale.proxy import RoundRobinProxy
from tests.support.auth_flow import create_native_client, native_auth_client, native_tokens
from tests.support.server import LiveServer

TRANSFER_RS = "transfer.api.globus.org"
AUTH_RS = "auth.globus.org"

pytestmark = pytest.mark.timeout(180)


def transfer_client(server: LiveServer, token: str) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token), base_url=f"{server.url}/transfer/"
    )


def wait(
    tc: globus_sdk.TransferClient, task_id: str, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    end = time.monotonic() + 60
    while True:
        doc = dict(tc.get_task(task_id).data)
        if until(doc):
            return doc
        assert time.monotonic() < end, f"task {task_id}: {doc}"
        time.sleep(0.2)


def finished(doc: dict[str, Any]) -> bool:
    return doc["status"] in ("SUCCEEDED", "FAILED")


def test_two_api_processes_and_a_worker_share_tokens_tasks_and_cancels(
    deployment: Callable[[], Deployment],
) -> None:
    deploy = deployment()
    first = deploy.api(demo=True)
    second = deploy.api()
    deploy.worker("w1", concurrency=2)

    # Log in through the first process; every token works on the second.
    client_id = create_native_client(first)
    tokens = native_tokens(first, client_id=client_id)
    transfer = tokens.by_resource_server[TRANSFER_RS]
    tc1 = transfer_client(first, transfer["access_token"])
    tc2 = transfer_client(second, transfer["access_token"])
    me = httpx.get(
        f"{second.url}/auth/v2/oauth2/userinfo",
        headers={"Authorization": f"Bearer {tokens.by_resource_server[AUTH_RS]['access_token']}"},
    )
    assert me.status_code == 200, me.text
    assert me.json()["preferred_username"] == "researcher@example.edu"

    # A refresh token issued by one process is redeemed by the other.
    refreshed = native_auth_client(second, client_id).oauth2_refresh_token(
        transfer["refresh_token"]
    )
    tc2 = transfer_client(second, refreshed.by_resource_server[TRANSFER_RS]["access_token"])
    demo = {d["display_name"]: d["id"] for d in tc2.endpoint_search("Demo Collection")}
    c1, c2 = demo["Demo Collection 1"], demo["Demo Collection 2"]

    # Submit on one process, follow the task on the other.
    data = globus_sdk.TransferData(
        source_endpoint=c1, destination_endpoint=c2, label="across processes"
    )
    data.add_item("/nested/", "/copied-nested/", recursive=True)
    task_id = str(tc1.submit_transfer(data)["task_id"])
    doc = wait(tc2, task_id, finished)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["label"] == "across processes"
    assert doc["files_transferred"] == doc["files"] > 0
    assert len(list(tc2.task_successful_transfers(task_id))) == doc["files"]
    assert task_id in [t["task_id"] for t in tc1.task_list(limit=100)]
    assert "SUCCEEDED" in [e["code"] for e in tc2.task_event_list(task_id)]

    # A long task submitted on the second process is canceled through the first.
    source = first.home / "demo" / "collection1" / "sparse.bin"
    with source.open("wb") as handle:
        handle.truncate(4 * 1024**3)
    big = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    big.add_item("/sparse.bin", "/sparse-copy.bin")
    big_id = str(tc2.submit_transfer(big)["task_id"])
    wait(tc1, big_id, lambda d: d["bytes_transferred"] > 0 or finished(d))
    canceled = tc1.cancel_task(big_id)
    assert canceled["code"] == "Canceled", canceled.data
    doc = tc2.get_task(big_id).data
    assert doc["status"] == "FAILED"
    assert doc["fatal_error"]["code"] == "CANCELED"
    target = second.home.parent / "api0" / "demo" / "collection2"
    assert not (target / "sparse-copy.bin").exists()
    assert not list(target.glob(".arctern-*"))

    # Logging out of the Auth service on one process revokes the token everywhere.
    auth = native_auth_client(first, client_id)
    auth.oauth2_revoke_token(tokens.by_resource_server[TRANSFER_RS]["access_token"])
    with pytest.raises(globus_sdk.TransferAPIError) as denied:
        transfer_client(second, transfer["access_token"]).get_task(task_id)
    assert denied.value.http_status == 401


def test_login_and_transfers_through_a_round_robin_proxy(
    deployment: Callable[[], Deployment],
) -> None:
    """Every request goes to the other API process: the login form and its POST, the token
    exchange, the JWKS used to check the id_token, submissions and task polling."""
    proxy = RoundRobinProxy().start()
    try:
        deploy = deployment()
        first = deploy.api(demo=True, public_url=proxy.url)
        second = deploy.api(public_url=proxy.url)
        proxy.backends = [first.url, second.url]
        deploy.worker("w1", concurrency=2)
        front = LiveServer(
            home=first.home,
            port=proxy.port,
            extra_env=deploy.shared_env(),
            extra_args=["--database", deploy.database_url],
        )

        client_id = create_native_client(front)
        tokens = native_tokens(front, client_id=client_id)
        claims = tokens.decode_id_token()
        assert claims["preferred_username"] == "researcher@example.edu"
        assert claims["iss"] == f"{proxy.url}/auth"
        discovery = httpx.get(f"{proxy.url}/auth/.well-known/openid-configuration").json()
        assert discovery["issuer"] == claims["iss"]
        # Both processes publish the one key from the database, though their homes differ.
        jwks_path = discovery["jwks_uri"].removeprefix(proxy.url)
        first_keys = httpx.get(f"{first.url}{jwks_path}").json()
        assert first_keys == httpx.get(f"{second.url}{jwks_path}").json()

        tc = transfer_client(front, tokens.by_resource_server[TRANSFER_RS]["access_token"])
        demo = {d["display_name"]: d["id"] for d in tc.endpoint_search("Demo Collection")}
        data = globus_sdk.TransferData(
            source_endpoint=demo["Demo Collection 1"],
            destination_endpoint=demo["Demo Collection 2"],
        )
        data.add_item("/nested/", "/via-proxy/", recursive=True)
        task_id = str(tc.submit_transfer(data)["task_id"])
        doc = wait(tc, task_id, finished)
        assert doc["status"] == "SUCCEEDED", doc
        names = [e["name"] for e in tc.operation_ls(demo["Demo Collection 2"], path="/via-proxy/")]
        assert names
        assert proxy.served[first.url] > 5 and proxy.served[second.url] > 5
    finally:
        proxy.stop()
