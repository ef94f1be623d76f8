"""Users' own S3 credentials, as GCS S3 gateways have them, with the unmodified globus-cli
and globus-sdk against a real S3-compatible server (moto) on loopback.

The S3 collection is stored with no access keys at all, and the server has none in its
environment: whatever reaches the bucket does so with a key a user registered with
``globus gcs user-credential create s3``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
from sqlalchemy import select

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.transfer import UserCredential
from tests.conftest import _database_args
from tests.connectors.conftest import make_bucket, moto_endpoint  # noqa: F401
from tests.integration.test_gcs_collections import (
    BUILTIN_ENDPOINT,
    cli_login,
    gcs_token,
    globus,
    trust,
)
from tests.integration.test_transfer_api import database_url, login, make_user, wait_done
from tests.support.server import ARCTERN, DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)
S3_CONNECTOR = "7643e831-5f6c-4b47-a07f-8ee90f401d23"
SECRET = "lab-secret-" + uuid.uuid4().hex
# No credentials from the environment, files or instance metadata: only what users register.
NO_AMBIENT_AWS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/arctern-test",
    "AWS_CONFIG_FILE": "/nonexistent/arctern-test",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert name not in os.environ, f"{name} is set: this test needs no ambient credentials"
    server = start_server(
        tmp_path_factory.mktemp("s3creds"),
        extra_args=_database_args(request),
        extra_env=NO_AMBIENT_AWS,
        tls=True,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def trusting(s3_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    return trust(s3_server, monkeypatch)


def keyless_s3_collection(server: LiveServer, endpoint: str) -> str:
    """An S3 collection stored without keys (the operator's own keys, from this command's
    environment only, check that the bucket exists)."""
    bucket = asyncio.run(make_bucket(endpoint))
    made = subprocess.run(
        [ARCTERN, "collection", "create", "--name", f"Lab bucket {bucket[-6:]}",
         "--s3", f"{bucket}/lab", "--endpoint-url", endpoint, "--region", "us-east-1",
         "--owner", DEMO_USERNAME],
        env={**server.env, "AWS_ACCESS_KEY_ID": "operator", "AWS_SECRET_ACCESS_KEY": "op-secret"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def stored_credential_options(server: LiveServer) -> list[dict[str, str]]:
    """What the database holds of users' credentials (SQLite or PostgreSQL alike)."""

    async def read() -> list[dict[str, str]]:
        ctx = AppContext.from_settings(
            Settings(home=server.home, database_url=database_url(server))
        )
        try:
            async with ctx.db.session() as session:
                return [dict(o) for o in await session.scalars(select(UserCredential.options))]
        finally:
            await ctx.db.dispose()

    return asyncio.run(read())


def error_of(call: object, *args: object, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(globus_sdk.TransferAPIError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return int(caught.value.http_status), str(caught.value.code)


def test_users_reach_an_s3_gateway_with_their_own_keys(
    trusting: LiveServer,
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = trusting
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    bucket_collection = keyless_s3_collection(server, moto_endpoint)
    other = login(server, *make_user(server, "no-keys"))
    owner.tc.add_endpoint_acl_rule(
        bucket_collection,
        {"DATA_TYPE": "access", "principal_type": "identity", "principal": other.identity_id,
         "path": "/", "permissions": "rw"},
    )  # fmt: skip
    # The collection's stored options have no keys: nothing reaches the bucket yet.
    assert error_of(owner.tc.operation_ls, bucket_collection) == (403, "EndpointPermissionDenied")

    cli_login(
        server, tmp_path, DEMO_USERNAME, DEMO_PASSWORD, "--gcs",
        f"{BUILTIN_ENDPOINT}:{bucket_collection}",
    )  # fmt: skip
    listed = globus(
        server, tmp_path, "gcs", "storage-gateway", "list", BUILTIN_ENDPOINT, "-F", "json"
    )
    assert listed.returncode == 0, listed.stderr
    gateway = next(
        g for g in json.loads(listed.stdout)["data"] if g["connector_id"] == S3_CONNECTOR
    )
    assert gateway["policies"]["s3_user_credential_required"] is False
    required = server.admin("gateway", "user-credentials", gateway["id"], "--required")
    assert required.returncode == 0, required.stderr
    gcs = globus_sdk.GCSClient(
        f"{server.url}/gcs/{BUILTIN_ENDPOINT}",
        authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token(tmp_path)),
    )
    assert gcs.get_storage_gateway(gateway["id"])["policies"]["s3_user_credential_required"]

    # Without a credential: a clear refusal, for listing and for submitting.
    status, code = error_of(owner.tc.operation_ls, bucket_collection)
    assert (status, code) == (403, "CredentialRequired")
    source = server.home / "demo" / "collection1" / f"s3keys-{uuid.uuid4().hex[:6]}"
    source.mkdir()
    (source / "run.dat").write_bytes(b"measurements " * 1000)
    c1 = next(
        c["id"]
        for c in owner.tc.endpoint_search("Demo Collection 1")
        if c["display_name"] == "Demo Collection 1"
    )
    upload = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=bucket_collection)
    upload.add_item(f"/{source.name}/run.dat", "/in/run.dat")
    assert error_of(owner.tc.submit_transfer, upload) == (403, "CredentialRequired")

    made = globus(
        server, tmp_path, "gcs", "user-credential", "create", "s3", BUILTIN_ENDPOINT,
        gateway["id"], DEMO_USERNAME, "researcher", "AKIALAB0001", SECRET,
        "--display-name", "lab keys", "-F", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    shown = globus(server, tmp_path, "gcs", "user-credential", "list", BUILTIN_ENDPOINT)
    assert shown.returncode == 0, shown.stderr
    assert "lab keys" in shown.stdout and SECRET not in shown.stdout
    mine = [c for c in gcs.get_user_credential_list() if c["storage_gateway_id"] == gateway["id"]]
    assert [c["policies"]["s3_key_id"] for c in mine] == ["AKIALAB0001"]
    assert "s3_secret_key" not in mine[0]["policies"]
    stored = stored_credential_options(server)
    assert stored and SECRET not in json.dumps(stored)
    assert all(o["secret_access_key"].startswith("fernet:") for o in stored)

    # With it: listing and a transfer run by the worker (with the owner's keys) succeed.
    assert list(owner.tc.operation_ls(bucket_collection)) == []
    task = owner.tc.submit_transfer(upload)["task_id"]
    assert wait_done(owner.tc, task, timeout=120)["status"] == "SUCCEEDED"
    assert [e["name"] for e in owner.tc.operation_ls(bucket_collection, path="/in/")] == ["run.dat"]
    # Another user with access rules but no keys of their own is still refused.
    assert error_of(other.tc.operation_ls, bucket_collection) == (403, "CredentialRequired")

    # One credential per gateway and user; deleting it takes the access away again.
    again = globus(
        server, tmp_path, "gcs", "user-credential", "create", "s3", BUILTIN_ENDPOINT,
        gateway["id"], DEMO_USERNAME, "researcher", "AKIALAB0002", "other-secret",
    )  # fmt: skip
    assert again.returncode != 0
    gcs.delete_user_credential(mine[0]["id"])
    assert error_of(owner.tc.operation_ls, bucket_collection) == (403, "CredentialRequired")
    cleared = server.admin("gateway", "user-credentials", gateway["id"], "--not-required")
    assert cleared.returncode == 0, cleared.stderr
