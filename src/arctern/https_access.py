"""HTTPS access to collections, as Globus Connect Server offers it: GET downloads a file,
PUT uploads one, under the same access rules as everything else.

Every collection has an ``https_server`` (``<base_url>/https/<collection id>``). For a
collection on an Arctern Connect agent the deployment reaches the agent over its data channel
(TLS to its pinned certificate, a credential for that one request carrying the caller's
grants, enforced by the agent on its own roots): the agent needs no web server and no
certificate a browser trusts, but it must accept data connections (``--listen``).

A client calls ``GET|HEAD|PUT <https_server>/<path>`` with a bearer token for the scope
``https://auth.globus.org/scopes/<collection id>/https``, which globus-sdk builds with
``globus_sdk.scopes.GCSCollectionScopes(collection_id).https``. The web file manager calls the same
functions with its session (``web`` routes), so Download and Upload follow one code path.

Uploads are written to a hidden temporary file and renamed into place only when complete:
an interrupted or refused upload never leaves a partial file under the final name, and never
touches the file it would have replaced. Downloads stream (single ``Range`` supported).
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.auth.verifier import TokenVerifier
from arctern.connect.datachannel import REQUEST_TOKEN_LIFETIME_SECONDS, DataGrant, issue_token
from arctern.connect.endpoints import is_connected
from arctern.connect.remote_connector import RemoteConnector
from arctern.connectors.access import AccessGuard
from arctern.connectors.base import Connector
from arctern.connectors.errors import (
    ConnectorError,
    IsADirectory,
    ObjectNotFound,
    PathOutsideRoot,
    PermissionDenied,
    QuotaExceeded,
)
from arctern.context import AppContext
from arctern.db.models.connect import Endpoint
from arctern.db.models.transfer import Collection
from arctern.errors import ArcternError
from arctern.transfer.paths import normalize_path
from arctern.transfer.security import bearer_token
from arctern.transfer.services.acl import require_access, visible_collection
from arctern.transfer.services.common import Caller, open_storage

READ_CHUNK = 4 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class HttpsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def https_scope(collection_id: uuid.UUID | str) -> str:
    return f"https://auth.globus.org/scopes/{collection_id}/https"


def _from_connector(exc: ConnectorError) -> HttpsError:
    if isinstance(exc, ObjectNotFound):
        return HttpsError(404, "NotFound", str(exc) or "No such file")
    if isinstance(exc, PermissionDenied | PathOutsideRoot):
        return HttpsError(403, "PermissionDenied", str(exc) or "Permission denied")
    if isinstance(exc, IsADirectory):
        return HttpsError(409, "IsADirectory", str(exc))
    if isinstance(exc, QuotaExceeded):
        return HttpsError(507, "QuotaExceeded", str(exc))
    return HttpsError(502, "StorageError", str(exc) or "The storage failed")


@contextlib.asynccontextmanager
async def _opened(
    ctx: AppContext, caller: Caller, collection_id: str, path: str, need: Literal["r", "rw"]
) -> AsyncIterator[tuple[Connector, str]]:
    """The collection's connector under the caller's access, and the canonical path."""
    now = ctx.clock.now()
    try:
        canonical = normalize_path(path)
        async with ctx.db.session() as session:
            collection = await visible_collection(session, caller, collection_id, now)
            guard = await require_access(session, caller, collection, canonical, need, now)
            agent = (
                await _agent_storage(ctx, session, collection, guard)
                if collection.connector == "agent"
                else None
            )
    except ArcternError as exc:
        status = 403 if exc.status == 403 else (404 if exc.status == 404 else exc.status)
        raise HttpsError(status, exc.code, exc.message) from None
    if agent is not None:
        try:
            yield agent, canonical
        finally:
            await agent.close()
        return
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        yield storage, canonical


async def serves_https(ctx: AppContext, collection: Collection) -> bool:
    """Whether HTTPS access can reach the collection now (an agent's only when it listens)."""
    if collection.connector != "agent":
        return True
    if collection.endpoint_id is None:
        return False
    async with ctx.db.session() as session:
        endpoint = await session.get(Endpoint, collection.endpoint_id)
    return endpoint is not None and bool(endpoint.data_address)


async def _agent_storage(
    ctx: AppContext, session: AsyncSession, collection: Collection, guard: AccessGuard | None
) -> Connector:
    """A collection on a Connect agent, reached over its data channel with a credential for
    this request alone; the agent enforces ``guard`` on its own roots, as for transfers."""
    endpoint = (
        await session.get(Endpoint, collection.endpoint_id) if collection.endpoint_id else None
    )
    if endpoint is None:
        raise HttpsError(404, "NotFound", "The collection's endpoint no longer exists")
    if not endpoint.data_address or not endpoint.data_fingerprint:
        raise HttpsError(
            409,
            "NotSupported",
            f"'{collection.display_name}' is on an Arctern Connect endpoint that does not "
            "accept data connections: HTTPS access needs its agent to run with --listen",
        )
    if not is_connected(endpoint, ctx.clock.now()):
        raise HttpsError(
            502,
            "GCDisconnected",
            f"The Arctern Connect endpoint '{endpoint.display_name}' of this collection is "
            "not connected",
        )
    token = issue_token(
        ctx.settings.secret_key or "",
        DataGrant(
            task_id=None,
            collection_id=collection.id,
            endpoint_id=endpoint.id,
            guard=guard,
            expires=ctx.clock.now().timestamp() + REQUEST_TOKEN_LIFETIME_SECONDS,
        ),
    )
    return RemoteConnector(endpoint.data_address, endpoint.data_fingerprint, token, streams=1)


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive of a single ``bytes=`` range; None for the whole file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise HttpsError(416, "RangeNotSatisfiable", "Only one 'bytes=' range is supported")
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise HttpsError(416, "RangeNotSatisfiable", f"The file has {size} bytes")
    return start, end


async def download(
    ctx: AppContext,
    caller: Caller,
    collection_id: str,
    path: str,
    *,
    range_header: str | None = None,
    head: bool = False,
    attachment: bool = False,
) -> Response:
    stack = contextlib.AsyncExitStack()
    try:
        storage, canonical = await stack.enter_async_context(
            _opened(ctx, caller, collection_id, path, "r")
        )
        try:
            info = await storage.stat(canonical)
        except ConnectorError as exc:
            raise _from_connector(exc) from None
        if info.type == "dir":
            raise HttpsError(409, "IsADirectory", f"'{canonical}' is a directory")
        if info.type != "file":
            raise HttpsError(403, "NotARegularFile", f"'{canonical}' is not a regular file")
        span = _range(range_header, info.size)
        start, end = span if span else (0, info.size - 1)
        length = max(0, end - start + 1)
        name = canonical.rsplit("/", 1)[-1]
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(length),
            "Last-Modified": format_datetime(datetime.fromtimestamp(info.mtime, UTC), usegmt=True),
            "ETag": f'"{info.size:x}-{int(info.mtime * 1000):x}"',
        }
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        if attachment:
            quoted = name.replace("\\", "_").replace('"', "_")
            headers["Content-Disposition"] = f'attachment; filename="{quoted}"'
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        status = 206 if span else 200
        if head or length == 0:
            await stack.aclose()
            return Response(status_code=status, headers=headers, media_type=media)
    except BaseException:
        await stack.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            offset = start
            while offset <= end:
                data = await storage.read(canonical, offset, min(READ_CHUNK, end - offset + 1))
                if not data:
                    break
                offset += len(data)
                yield data
        finally:
            await stack.aclose()

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=media)


async def upload(
    ctx: AppContext,
    caller: Caller,
    collection_id: str,
    path: str,
    chunks: AsyncIterator[bytes],
    *,
    declared_size: int | None,
) -> dict[str, Any]:
    limit = ctx.settings.https_max_upload_bytes
    too_large = HttpsError(413, "RequestTooLarge", f"Uploads are limited to {limit} bytes")
    if declared_size is not None and declared_size > limit:
        raise too_large
    async with _opened(ctx, caller, collection_id, path, "rw") as (storage, canonical):
        if canonical == "/":
            raise HttpsError(409, "IsADirectory", "The collection root is a directory")
        try:
            with contextlib.suppress(ObjectNotFound):
                if (await storage.stat(canonical)).type == "dir":
                    raise HttpsError(409, "IsADirectory", f"'{canonical}' is a directory")
            state = await storage.begin_write(canonical, declared_size or 0)
        except ConnectorError as exc:
            raise _from_connector(exc) from None
        written = 0
        committed = False
        try:
            # Written in pieces of READ_CHUNK: a storage across a network (a Connect agent)
            # costs a round trip per write, whatever the size the client sent in.
            pending = bytearray()
            async for chunk in chunks:
                if not chunk:
                    continue
                if written + len(pending) + len(chunk) > limit:
                    raise HttpsError(
                        413, "RequestTooLarge", f"Uploads are limited to {limit} bytes"
                    )
                pending += chunk
                if len(pending) >= READ_CHUNK:
                    await storage.write(state, written, bytes(pending))
                    written += len(pending)
                    pending.clear()
            if pending:
                await storage.write(state, written, bytes(pending))
                written += len(pending)
            if declared_size is not None and written != declared_size:
                raise HttpsError(400, "IncompleteUpload", "The upload ended before its length")
            await storage.commit_write(state, canonical)
            committed = True
        except ConnectorError as exc:
            raise _from_connector(exc) from None
        finally:
            if not committed:
                with contextlib.suppress(Exception):
                    await storage.abort_write(state)
    return {"code": "Uploaded", "path": canonical, "size": written}


def error_response(exc: HttpsError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)


def create_https_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    """The HTTPS servers of the deployment's collections, mounted at ``/https``."""
    app = FastAPI(title="Arctern HTTPS access", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HttpsError)
    async def handle(_request: Request, exc: HttpsError) -> JSONResponse:
        return error_response(exc)

    async def authenticate(request: Request, collection_id: str) -> Caller:
        token = bearer_token(request)
        grant = await verifier.verify(token) if token else None
        if grant is None:
            raise HttpsError(401, "AuthenticationFailed", "A valid bearer token is required")
        if https_scope(collection_id) not in grant.scopes or grant.identity_id is None:
            raise HttpsError(
                403,
                "PermissionDenied",
                f"The token does not carry this collection's scope {https_scope(collection_id)}",
            )
        return Caller(identity_id=grant.identity_id, username=grant.username or "")

    @app.api_route("/{collection_id}/{path:path}", methods=["GET", "HEAD"])
    async def get(collection_id: str, path: str, request: Request) -> Response:
        caller = await authenticate(request, collection_id)
        return await download(
            ctx,
            caller,
            collection_id,
            "/" + path,
            range_header=request.headers.get("range"),
            head=request.method == "HEAD",
            attachment=request.query_params.get("download") == "1",
        )

    @app.put("/{collection_id}/{path:path}")
    async def put(collection_id: str, path: str, request: Request) -> dict[str, Any]:
        caller = await authenticate(request, collection_id)
        length = request.headers.get("content-length")
        return await upload(
            ctx,
            caller,
            collection_id,
            "/" + path,
            request.stream(),
            declared_size=int(length) if length and length.isdigit() else None,
        )

    return app
