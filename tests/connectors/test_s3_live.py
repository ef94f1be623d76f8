"""An S3 collection served by a live Arctern server, driven by the unmodified globus-sdk.

The bucket lives in the moto server of this test process; the Arctern server (a separate
process) reaches it over loopback exactly as it would reach a real S3 endpoint.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import globus_sdk
import pytest

from arctern.config import Settings, ensure_home
from arctern.connectors.s3.admin import prepare_s3_collection
from arctern.context import AppContext
from arctern.transfer.services import collections as collection_service
from tests.connectors.conftest import make_bucket, s3_options
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_USERNAME, LiveServer, start_server


@dataclass
class S3Env:
    tc: globus_sdk.TransferClient
    collection: str
    bucket: str
    endpoint: str


def _database_url(server: LiveServer) -> str:
    if "--database" in server.extra_args:
        return server.extra_args[server.extra_args.index("--database") + 1]
    return f"sqlite+aiosqlite:///{server.home / 'arctern.db'}"


def _create_s3_collection(server: LiveServer, name: str, root: str, options: dict[str, Any]) -> str:
    async def run() -> str:
        ctx = AppContext.from_settings(
            Settings(home=server.home, database_url=_database_url(server))
        )
        try:
            collection = await collection_service.create_collection(
                ctx,
                name=name,
                root=root,
                owner_username=DEMO_USERNAME,
                connector="s3",
                options=options,
            )
            return str(collection.id)
        finally:
            await ctx.db.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A private demo server: these tests compare whole collections, so no other test may
    change Demo Collection 1 underneath them."""
    live = start_server(tmp_path_factory.mktemp("s3-live-home"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def s3_env(server: LiveServer, moto_endpoint: str) -> Iterator[S3Env]:
    bucket = asyncio.run(make_bucket(moto_endpoint))
    # What the admin command does: validate, probe the bucket, encrypt the secret.
    secret_key = ensure_home(Settings(home=server.home)).secret_key or ""
    root, options = asyncio.run(
        prepare_s3_collection(f"{bucket}/data", s3_options(moto_endpoint), secret_key)
    )
    assert options["secret_access_key"].startswith("fernet:")
    collection = _create_s3_collection(server, f"S3 Test {uuid.uuid4().hex[:6]}", root, options)
    tokens = native_tokens(server)
    token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token),
        base_url=f"{server.url}/transfer/",
    )
    yield S3Env(tc, collection, bucket, moto_endpoint)


def _names(tc: globus_sdk.TransferClient, collection: str, path: str) -> list[str]:
    return sorted(entry["name"] for entry in tc.operation_ls(collection, path=path))


def test_file_operations_on_an_s3_collection(s3_env: S3Env) -> None:
    tc, c = s3_env.tc, s3_env.collection
    assert _names(tc, c, "/") == []
    assert tc.operation_mkdir(c, "/results/")["code"] == "DirectoryCreated"
    tc.operation_mkdir(c, "/results/run1/")
    listing = tc.operation_ls(c, path="/results/")
    assert [(e["name"], e["type"]) for e in listing] == [("run1", "dir")]
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_mkdir(c, "/results/")
    assert excinfo.value.http_status == 502
    assert str(excinfo.value.code).endswith("Exists")
    assert tc.operation_rename(c, "/results/run1/", "/results/run2/")["code"] == "FileRenamed"
    assert _names(tc, c, "/results/") == ["run2"]
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_ls(c, path="/no/such/dir/")
    assert (excinfo.value.http_status, excinfo.value.code) == (404, "ClientError.NotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_ls(c, path="/../")
    assert excinfo.value.http_status == 403


def test_objects_written_behind_the_servers_back_are_listed(s3_env: S3Env) -> None:
    async def upload() -> None:
        from arctern.connectors.s3.connector import shared_session

        opts = s3_options(s3_env.endpoint)
        async with shared_session().create_client(
            "s3",
            endpoint_url=s3_env.endpoint,
            region_name=opts["region"],
            aws_access_key_id=opts["access_key_id"],
            aws_secret_access_key=opts["secret_access_key"],
        ) as raw:
            await raw.put_object(Bucket=s3_env.bucket, Key="data/in/a.txt", Body=b"12345")
            await raw.put_object(Bucket=s3_env.bucket, Key="outside.txt", Body=b"hidden")

    asyncio.run(upload())
    listing = {e["name"]: e for e in s3_env.tc.operation_ls(s3_env.collection, path="/in/")}
    assert listing["a.txt"]["type"] == "file"
    assert listing["a.txt"]["size"] == 5
    assert "outside.txt" not in _names(s3_env.tc, s3_env.collection, "/")


def _wait(tc: globus_sdk.TransferClient, task_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = tc.get_task(task_id)
        if doc["status"] != "ACTIVE":
            return dict(doc.data)
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not finish")


def test_transfers_into_and_out_of_s3(server: LiveServer, s3_env: S3Env) -> None:
    tc, c = s3_env.tc, s3_env.collection
    found = {e["display_name"]: e["id"] for e in tc.endpoint_search("Demo Collection")}
    c1, c2 = found["Demo Collection 1"], found["Demo Collection 2"]
    local = server.home / "demo" / "collection1"
    expected = {str(f.relative_to(local)): f.read_bytes() for f in local.rglob("*") if f.is_file()}
    assert "large.bin" in expected

    into = globus_sdk.TransferData(c1, c, label="into S3", verify_checksum=True)
    into.add_item("/", "/copy/", recursive=True)
    done = _wait(tc, tc.submit_transfer(into)["task_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["files_transferred"] == len(expected)

    async def stored() -> dict[str, bytes]:
        from arctern.connectors.s3.connector import shared_session

        opts = s3_options(s3_env.endpoint)
        found: dict[str, bytes] = {}
        async with shared_session().create_client(
            "s3",
            endpoint_url=s3_env.endpoint,
            region_name=opts["region"],
            aws_access_key_id=opts["access_key_id"],
            aws_secret_access_key=opts["secret_access_key"],
        ) as raw:
            pages = raw.get_paginator("list_objects_v2").paginate(
                Bucket=s3_env.bucket, Prefix="data/copy/"
            )
            async for page in pages:
                for obj in page.get("Contents") or []:
                    if obj["Key"].endswith("/"):
                        continue  # directory markers
                    body = await raw.get_object(Bucket=s3_env.bucket, Key=obj["Key"])
                    async with body["Body"] as stream:
                        found[obj["Key"][len("data/copy/") :]] = await stream.read()
        return found

    assert asyncio.run(stored()) == expected

    back = f"/from-s3-{uuid.uuid4().hex[:6]}/"
    out = globus_sdk.TransferData(c, c2, label="out of S3", verify_checksum=True)
    out.add_item("/copy/", back, recursive=True)
    done = _wait(tc, tc.submit_transfer(out)["task_id"])
    assert done["status"] == "SUCCEEDED", done
    target = server.home / "demo" / "collection2" / back.strip("/")
    copied = {str(f.relative_to(target)): f.read_bytes() for f in target.rglob("*") if f.is_file()}
    assert copied == expected


def test_sync_and_delete_on_s3(s3_env: S3Env) -> None:
    tc, c = s3_env.tc, s3_env.collection
    found = {e["display_name"]: e["id"] for e in tc.endpoint_search("Demo Collection")}
    c1 = found["Demo Collection 1"]
    first = globus_sdk.TransferData(c1, c, label="sync 1")
    first.add_item("/", "/synced/", recursive=True)
    done = _wait(tc, tc.submit_transfer(first)["task_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["bytes_transferred"] > 0
    # Same data again with checksum sync: the S3 side is hashed (store MD5 / read-back),
    # nothing is re-sent.
    again = globus_sdk.TransferData(c1, c, label="sync 2", sync_level="checksum")
    again.add_item("/", "/synced/", recursive=True)
    done = _wait(tc, tc.submit_transfer(again)["task_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["bytes_transferred"] == 0

    delete = globus_sdk.DeleteData(endpoint=c, recursive=True, label="clean S3")
    delete.add_item("/synced/")
    done = _wait(tc, tc.submit_delete(delete)["task_id"])
    assert done["status"] == "SUCCEEDED", done
    assert "synced" not in _names(tc, c, "/")
