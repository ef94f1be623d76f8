"""Globus error documents, and the mapping from storage failures to Transfer error codes.

Every failure leaves the Transfer API as ``{"code","message","request_id","resource"}``.
Storage failures are 4xx or 502 with a code containing ``ExternalError``/``EndpointError``,
because the SDK retries any other 5xx five times.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from fastapi.responses import JSONResponse

from arctern.connectors import errors as cerr
from arctern.connectors.access import AccessDenied
from arctern.errors import ArcternError, NotFound, PermissionDenied, StorageError

_ALPHABET = string.ascii_letters + string.digits


def new_request_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))


def error_document(code: str, message: str, resource: str, request_id: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": request_id, "resource": resource}


def error_response(
    status: int, code: str, message: str, resource: str, request_id: str | None = None
) -> JSONResponse:
    return JSONResponse(
        error_document(code, message, resource, request_id or new_request_id()), status_code=status
    )


def globus_code(error: ArcternError) -> str:
    """The wire code of an application error, in Globus's dotted vocabulary."""
    code = error.code
    if error.status == 400 and code == "BadRequest":
        return "ClientError.BadRequest"
    if error.status == 409 and code == "Conflict":
        return "ClientError.Conflict"
    if error.status == 401 and code == "AuthenticationFailed":
        return "ClientError.AuthenticationFailed"
    if error.status == 413 and code == "RequestTooLarge":
        return "ClientError.RequestTooLarge"
    return code


def storage_error(exc: cerr.ConnectorError, operation: str, path: str) -> ArcternError:
    """Translate a connector failure during ``operation`` (e.g. ``DirListing``) on ``path``."""
    detail = str(exc) or exc.code
    if exc.code == "GC_NOT_CONNECTED":
        # An Arctern Connect agent that is offline; Globus answers a disconnected Globus
        # Connect endpoint with 502 ExternalError.DirListingFailed.GCDisconnected.
        return StorageError(detail, code=f"ExternalError.{operation}Failed.GCDisconnected")
    if isinstance(exc, AccessDenied):
        # The path resolved (through a symlink) outside what the access rules grant: the
        # same answer as a refused logical path.
        return PermissionDenied(
            f"You do not have permission to access '{path}': it resolves outside "
            "the paths shared with you",
            code="PermissionDenied",
        )
    if isinstance(exc, cerr.ObjectNotFound):
        return NotFound(f"Path '{path}' not found", code="ClientError.NotFound")
    if isinstance(exc, cerr.PathOutsideRoot):
        # InvalidPath (malformed names) is a subclass: a client error, not a storage fault.
        if exc.code == "INVALID_PATH_NAME":
            return ArcternError(
                f"Invalid path '{path}': {detail}", code="ClientError.BadRequest", status=400
            )
        return PermissionDenied(
            f"Path '{path}' is outside the collection", code="EndpointPermissionDenied"
        )
    if isinstance(exc, cerr.PermissionDenied):
        return PermissionDenied(f"Permission denied on '{path}'", code="EndpointPermissionDenied")
    reason = {
        cerr.NotADirectory: "NotDirectory",
        cerr.IsADirectory: "IsDirectory",
        cerr.AlreadyExists: "Exists",
        cerr.QuotaExceeded: "QuotaExceeded",
    }.get(type(exc))
    if reason is None and exc.code == "DIRECTORY_NOT_EMPTY":
        reason = "DirectoryNotEmpty"
    messages = {
        "NotDirectory": f"Path '{path}' is not a directory",
        "IsDirectory": f"Path '{path}' is a directory",
        "Exists": f"Path '{path}' already exists",
        "QuotaExceeded": "Quota exceeded on the collection",
        "DirectoryNotEmpty": f"Directory '{path}' is not empty",
    }
    if reason is not None:
        return StorageError(messages[reason], code=f"ExternalError.{operation}Failed.{reason}")
    return StorageError(
        f"The collection's storage failed during {operation}: {detail}",
        code=f"ExternalError.{operation}Failed.EndpointError",
    )
