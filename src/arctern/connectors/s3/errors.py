"""Translation of botocore/aiohttp failures into the connector error vocabulary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from arctern.connectors.errors import (
    ConnectorError,
    ObjectNotFound,
    PermissionDenied,
    QuotaExceeded,
    TransientError,
)

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket", "NoSuchUpload"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidSecurity",
        "ExpiredToken",
        "InvalidToken",
    }
)
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
        "OperationAborted",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
_QUOTA = frozenset({"EntityTooLarge", "QuotaExceeded", "ServiceQuotaExceeded"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def translate(exc: BaseException, what: str) -> ConnectorError:
    """The connector error for a failed S3 call about ``what`` (a collection path or bucket)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = http_status(exc)
        message = exc.response.get("Error", {}).get("Message") or code or str(exc)
        if code in _NOT_FOUND or status == 404:
            return ObjectNotFound(f"{what}: not found ({code or status})")
        if code in _DENIED or status == 403:
            return PermissionDenied(f"{what}: access denied by the object store ({code})")
        if code in _QUOTA:
            return QuotaExceeded(f"{what}: {message}")
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientError(f"{what}: object store is unavailable ({code or status})")
        return ConnectorError(f"{what}: object store error {code or status}: {message}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return PermissionDenied(f"{what}: no usable credentials for the object store")
    if isinstance(
        exc,
        BotoConnectionError
        | HTTPClientError
        | ResponseStreamingError
        | aiohttp.ClientError
        | asyncio.TimeoutError
        | ConnectionError,
    ):
        return TransientError(f"{what}: connection to the object store failed: {exc}")
    if isinstance(exc, BotoCoreError):
        return ConnectorError(f"{what}: {exc}")
    return ConnectorError(f"{what}: unexpected object store failure: {exc!r}")


@contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise S3 client failures inside the block as connector errors."""
    try:
        yield
    except ConnectorError:
        raise
    except (TimeoutError, ClientError, BotoCoreError, aiohttp.ClientError, ConnectionError) as exc:
        raise translate(exc, what) from exc
