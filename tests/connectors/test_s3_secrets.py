"""Encryption at rest of S3 collection credentials, and its use by the connector."""

from __future__ import annotations

import pytest

from arctern.connectors.errors import ConnectorError, PermissionDenied
from arctern.connectors.s3.admin import prepare_s3_collection
from arctern.connectors.s3.connector import S3Connector
from arctern.connectors.s3.secrets import (
    CredentialsUnreadable,
    clean_options,
    decrypt_options,
    encrypt_options,
    redact_options,
)
from arctern.errors import InvalidRequest
from tests.connectors.conftest import make_bucket, put, s3_options

KEY = "server-secret-key-for-tests"
PLAIN = {
    "endpoint_url": "http://127.0.0.1:9000",
    "region": "eu-west-1",
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def test_round_trip_encrypts_only_secrets() -> None:
    stored = encrypt_options(PLAIN, KEY)
    assert stored["secret_access_key"].startswith("fernet:")
    assert PLAIN["secret_access_key"] not in repr(stored)
    assert {k: v for k, v in stored.items() if k != "secret_access_key"} == {
        k: v for k, v in PLAIN.items() if k != "secret_access_key"
    }
    assert encrypt_options(stored, KEY) == stored  # never double-encrypted
    assert decrypt_options(stored, KEY) == PLAIN
    assert decrypt_options(PLAIN, KEY) == PLAIN  # plain values pass through
    assert PLAIN["secret_access_key"] not in repr(redact_options(PLAIN))


def test_wrong_key_is_a_clear_error() -> None:
    stored = encrypt_options(PLAIN, KEY)
    with pytest.raises(CredentialsUnreadable, match="secret key"):
        decrypt_options(stored, "another-key")


def test_clean_options_refuses_typos_and_half_credentials() -> None:
    assert clean_options({**PLAIN, "region": ""}) == {
        k: v for k, v in PLAIN.items() if k != "region"
    }
    with pytest.raises(ValueError, match="unknown"):
        clean_options({"endpoint": "http://x"})
    with pytest.raises(ValueError, match="both"):
        clean_options({"access_key_id": "AKID"})
    with pytest.raises(ValueError, match="http"):
        clean_options({"endpoint_url": "127.0.0.1:9000"})


def test_connector_refuses_encrypted_credentials() -> None:
    with pytest.raises(PermissionDenied, match="decrypt_options"):
        S3Connector("bucket", encrypt_options(PLAIN, KEY))
    with pytest.raises(ConnectorError):
        S3Connector("bucket", {**PLAIN, "part_size": "lots"})


async def test_stored_options_open_a_working_connector(moto_endpoint: str) -> None:
    bucket = await make_bucket(moto_endpoint)
    stored = encrypt_options(clean_options(s3_options(moto_endpoint)), KEY)
    connector = S3Connector(f"{bucket}/p", decrypt_options(stored, KEY))
    try:
        await put(connector, "/hello", b"encrypted at rest, plain in use")
        assert await connector.read("/hello", 0, 100) == b"encrypted at rest, plain in use"
    finally:
        await connector.close()


async def test_prepare_s3_collection(moto_endpoint: str) -> None:
    bucket = await make_bucket(moto_endpoint)
    root, stored = await prepare_s3_collection(
        f"s3://{bucket}//data/./set/", s3_options(moto_endpoint), KEY
    )
    assert root == f"{bucket}/data/set"
    assert stored["secret_access_key"].startswith("fernet:")
    assert decrypt_options(stored, KEY) == s3_options(moto_endpoint)
    with pytest.raises(InvalidRequest, match="Cannot use S3 bucket"):
        await prepare_s3_collection("arctern-missing-bucket", s3_options(moto_endpoint), KEY)
    with pytest.raises(InvalidRequest, match="unknown"):
        await prepare_s3_collection(bucket, {"endpoint": moto_endpoint}, KEY)
    with pytest.raises(InvalidRequest):
        await prepare_s3_collection("", s3_options(moto_endpoint), KEY)
    unchecked_root, _ = await prepare_s3_collection(
        "arctern-missing-bucket/x", s3_options(moto_endpoint), KEY, probe=False
    )
    assert unchecked_root == "arctern-missing-bucket/x"
