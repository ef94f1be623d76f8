"""``arctern collection create --s3`` through the real CLI on a multi-process deployment.

The collection is created by the admin command on an API host, used by a worker process on
another "host" (its own home; same database and secret key), and its secret never leaves
the database in plain text nor through any API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import globus_sdk
import pytest

from tests.connectors.conftest import make_bucket
from tests.scale.conftest import Deployment
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_USERNAME

SECRET = "arctern-test-secret"
TRANSFER_RS = "transfer.api.globus.org"

pytestmark = pytest.mark.timeout(180)


def _transfer_client(server_url: str, token: str) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token), base_url=f"{server_url}/transfer/"
    )


def _wait(tc: globus_sdk.TransferClient, task_id: str, timeout: float = 60) -> dict[str, object]:
    end = time.monotonic() + timeout
    while True:
        doc = tc.get_task(task_id).data
        if doc["status"] in ("SUCCEEDED", "FAILED"):
            return dict(doc)
        assert time.monotonic() < end, f"task still {doc['status']}: {doc}"
        time.sleep(0.2)


def test_s3_collection_created_by_cli_is_used_by_a_remote_worker_and_hides_its_secret(
    deployment: Callable[[], Deployment], moto_endpoint: str
) -> None:
    deploy = deployment()
    api = deploy.api(demo=True)
    deploy.worker("s3-worker", concurrency=2)
    bucket = asyncio.run(make_bucket(moto_endpoint))

    created = api.admin(
        "collection",
        "create",
        "--name",
        "Lab Bucket",
        "--s3",
        f"{bucket}/lab/data",
        "--endpoint-url",
        moto_endpoint,
        "--region",
        "us-east-1",
        "--access-key-id",
        "arctern-test",
        "--secret-access-key-stdin",
        "--owner",
        DEMO_USERNAME,
        "--description",
        "Object storage of the lab",
        input=SECRET + "\n",
    )
    assert created.returncode == 0, created.stderr
    collection_id = created.stdout.strip().splitlines()[-1]

    listed = api.admin("collection", "list")
    assert f"s3:{bucket}/lab/data" in listed.stdout
    assert SECRET not in listed.stdout

    token = native_tokens(api).by_resource_server[TRANSFER_RS]["access_token"]
    tc = _transfer_client(api.url, token)
    endpoint = tc.get_endpoint(collection_id).data
    assert endpoint["display_name"] == "Lab Bucket"
    found = tc.endpoint_search("Lab Bucket", filter_scope="all").data
    documents = json.dumps(endpoint) + json.dumps(found)
    assert SECRET not in documents
    assert "fernet:" not in documents
    assert "secret_access_key" not in documents and "arctern-test" not in documents
    assert any(doc["id"] == collection_id for doc in found["DATA"])

    # Data goes POSIX -> S3 -> POSIX through the worker process, which decrypts the stored
    # secret with the shared key.
    demo = {doc["display_name"]: doc["id"] for doc in tc.endpoint_search("Demo Collection")}
    c1, c2 = demo["Demo Collection 1"], demo["Demo Collection 2"]
    source = api.home / "demo" / "collection1"
    (source / "s3cli").mkdir()
    payload = {f"f{i}.txt": (b"object %d " % i) * (1 + 97 * i) for i in range(6)}
    for name, data in payload.items():
        (source / "s3cli" / name).write_bytes(data)
    up = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=collection_id)
    up.add_item("/s3cli/", "/in/", recursive=True)
    doc = _wait(tc, str(tc.submit_transfer(up)["task_id"]))
    assert doc["status"] == "SUCCEEDED", doc
    assert sorted(e["name"] for e in tc.operation_ls(collection_id, path="/in/")) == sorted(payload)
    down = globus_sdk.TransferData(source_endpoint=collection_id, destination_endpoint=c2)
    down.add_item("/in/", "/from-s3/", recursive=True)
    doc = _wait(tc, str(tc.submit_transfer(down)["task_id"]))
    assert doc["status"] == "SUCCEEDED", doc
    target = api.home / "demo" / "collection2" / "from-s3"
    assert {p.name: p.read_bytes() for p in target.iterdir()} == payload


def test_collection_create_needs_exactly_one_storage_and_working_credentials(
    deployment: Callable[[], Deployment], moto_endpoint: str
) -> None:
    deploy = deployment()
    api = deploy.api(demo=True)
    neither = api.admin("collection", "create", "--name", "Nothing")
    assert neither.returncode == 2 and "exactly one of --posix" in neither.stderr
    both = api.admin(
        "collection", "create", "--name", "Both", "--posix", str(api.home), "--s3", "bucket"
    )
    assert both.returncode == 2 and "exactly one of --posix" in both.stderr
    missing = api.admin(
        "collection",
        "create",
        "--name",
        "Missing Bucket",
        "--s3",
        "no-such-bucket-arctern",
        "--endpoint-url",
        moto_endpoint,
        "--access-key-id",
        "arctern-test",
        "--secret-access-key-stdin",
        input=SECRET + "\n",
    )
    assert missing.returncode == 1, missing.stdout
    assert "no-such-bucket-arctern" in missing.stderr
    half = api.admin(
        "collection", "create", "--name", "Half", "--s3", "bucket", "--access-key-id", "x"
    )
    assert half.returncode == 1 and "secret access key" in half.stderr
    assert "Missing Bucket" not in api.admin("collection", "list").stdout
