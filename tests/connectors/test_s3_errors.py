"""Unit tests of the botocore → connector error translation."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from arctern.connectors.errors import (
    ConnectorError,
    ObjectNotFound,
    PermissionDenied,
    QuotaExceeded,
    TransientError,
)
from arctern.connectors.s3.errors import mapped, translate


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFound),
        ("404", 404, ObjectNotFound),
        ("NoSuchBucket", 404, ObjectNotFound),
        ("AccessDenied", 403, PermissionDenied),
        ("403", 403, PermissionDenied),
        ("InvalidAccessKeyId", 403, PermissionDenied),
        ("SignatureDoesNotMatch", 403, PermissionDenied),
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("Whatever", 502, TransientError),
        ("TooManyRequests", 429, TransientError),
        ("EntityTooLarge", 400, QuotaExceeded),
        ("InvalidArgument", 400, ConnectorError),
    ],
)
def test_client_errors(code: str, status: int, expected: type[ConnectorError]) -> None:
    error = translate(client_error(code, status), "/p")
    assert type(error) is expected
    assert "/p" in str(error)
    assert error.retryable is (expected is TransientError)


def test_connection_failures_are_transient() -> None:
    assert isinstance(
        translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "/p"),
        TransientError,
    )
    assert isinstance(translate(TimeoutError(), "/p"), TransientError)
    assert isinstance(translate(ConnectionResetError(), "/p"), TransientError)
    assert isinstance(translate(NoCredentialsError(), "/p"), PermissionDenied)


def test_mapped_reraises_with_cause() -> None:
    original = client_error("AccessDenied", 403)
    with pytest.raises(PermissionDenied) as info, mapped("/secret"):
        raise original
    assert info.value.__cause__ is original
    with pytest.raises(ObjectNotFound), mapped("/x"):
        raise ObjectNotFound("already translated")
