"""The agent API under ``/agent/v1``: what Connect agents call, outbound, over HTTP(S).

Agents authenticate with ``Authorization: Bearer <endpoint credential>``; the credential is
checked against the database on every call (and during a held long poll), so deleting the
endpoint or rotating its credentials refuses the agent at once with 401. Errors are Globus
error documents, as in the Transfer API.

Routes:
  POST /agent/v1/setup                      setup key -> endpoint credential (no auth)
  POST /agent/v1/register                   a user's Transfer token -> a new endpoint they
                                            own and its credential (login-link setup)
  GET  /agent/v1/endpoint                   the endpoint and its collections
  POST /agent/v1/collections                announce a collection (name only)
  POST /agent/v1/poll                       long poll: relayed file operations to run
  POST /agent/v1/requests/{id}/answer       the result of one of them
  POST /agent/v1/work/lease                 the next job of this endpoint (transfers between
                                            two of its own collections), or null
  POST /agent/v1/work/renew                 heartbeat of a held lease; says whether to stop
  POST /agent/v1/work/release               hand a held lease back (drain)
  POST /agent/v1/data/announce              the agent's data address and certificate fingerprint
  POST /agent/v1/data/verify                what a peer's task credential opens on this agent
  POST /agent/v1/work/job/{op}              the rest of a held job's work source: read its
                                            task, plan or files, heartbeat with progress,
                                            commit plan output, finish, fail, stop
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import select
from starlette.middleware.gzip import GZipMiddleware

from arctern import __version__
from arctern.auth.verifier import TokenVerifier
from arctern.connect import endpoints, relay, work
from arctern.connect.secrets import secret_hash
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.connect import Endpoint
from arctern.errors import PermissionDenied, Unauthorized
from arctern.http_limits import BodyLimit, InflateRequests, RouteLimit
from arctern.limits import bounded_text
from arctern.transfer.app import (
    body_error_response,
    install_error_handlers,
    too_large_response,
)
from arctern.transfer.filters import bad_request
from arctern.transfer.http import json_body
from arctern.transfer.security import TRANSFER_RESOURCE_SERVER, TRANSFER_SCOPE, bearer_token

# A listing of a large directory comes back in one answer; a job's call carries up to a
# plan commit's or a batch's worth of files (a thousand paths of up to 4 KiB each); every
# other agent call is small and keeps the default limit. Limits count inflated bytes.
MAX_AGENT_ANSWER_BODY = 256 * 1024 * 1024
MAX_AGENT_JOB_BODY = 64 * 1024 * 1024
AGENT_BODY_ROUTES = (
    RouteLimit("POST", re.compile(r"/v1/requests/[^/]+/answer/?"), MAX_AGENT_ANSWER_BODY),
    RouteLimit("POST", re.compile(r"/v1/work/job/[^/]+/?"), MAX_AGENT_JOB_BODY),
)
# Bodies of job calls and answers are lists of paths: gzip makes a thousand files' worth
# (~220 KB of JSON) about 20 KB, which a connection fresh out of idle (initial congestion
# window: ten packets) carries in one or two round trips instead of four or five.
GZIP_MIN_BYTES = 8 * 1024
GZIP_LEVEL = 1
REQUEST_ENCODINGS = ["gzip"]
API_VERSION = "v1"


def _credential(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("An endpoint credential is required (Authorization: Bearer ...)")
    return value.strip()


def create_agent_app(ctx: AppContext, verifier: TokenVerifier | None = None) -> FastAPI:
    app = FastAPI(title="Arctern agent API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, render=too_large_response, routes=AGENT_BODY_ROUTES)
    # Outside the limit, so that it counts inflated bytes.
    app.add_middleware(InflateRequests, render=body_error_response)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    install_error_handlers(app)
    prefix = f"/{API_VERSION}"
    verifier = verifier or TokenVerifier(ctx)

    async def authenticated(request: Request) -> tuple[Endpoint, str]:
        credential = _credential(request)
        async with ctx.db.session() as session:
            endpoint = await endpoints.authenticate(session, credential)
        return endpoint, secret_hash(credential)

    async def describe(endpoint_id: uuid.UUID) -> dict[str, Any]:
        view = await endpoints.show_endpoint(ctx, str(endpoint_id))
        return {
            "endpoint_id": str(view.endpoint.id),
            "display_name": view.endpoint.display_name,
            "owner": view.owner_username,
            "connected": view.connected,
            "collections": [
                {"id": str(c.id), "display_name": c.display_name} for c in view.collections
            ],
            "server_version": __version__,
            "data_address": view.endpoint.data_address,
            "data_fingerprint": view.endpoint.data_fingerprint,
            "active_transfers": await endpoints.active_transfers(
                ctx, [c.id for c in view.collections]
            ),
            # The agent's worker heartbeats at the deployment's pace.
            "lease_seconds": ctx.settings.lease_seconds,
            "progress_flush_seconds": ctx.settings.progress_flush_seconds,
            # Request bodies the agent may compress (servers before this accepted none).
            "request_encodings": REQUEST_ENCODINGS,
        }

    @app.post(f"{prefix}/setup")
    async def setup(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        key = body.get("setup_key")
        if not isinstance(key, str) or not key:
            raise bad_request("'setup_key' is required")
        endpoint, credential = await endpoints.exchange_setup_key(ctx, key)
        return {**await describe(endpoint.id), "credential": credential}

    @app.post(f"{prefix}/register")
    async def register(request: Request) -> dict[str, Any]:
        """``arctern connect setup`` with a login link: a user's Transfer token registers a
        new endpoint they own and receives its credential at once."""
        token = bearer_token(request)
        grant = await verifier.verify(token) if token else None
        if (
            grant is None
            or grant.identity_id is None
            or grant.resource_server != TRANSFER_RESOURCE_SERVER
            or TRANSFER_SCOPE not in grant.scopes
        ):
            raise Unauthorized("A user's Transfer access token is required to register")
        if not ctx.settings.connect_self_service:
            raise PermissionDenied(
                "This deployment does not let users register endpoints: ask an administrator "
                "for a setup key (`arctern endpoint create`)"
            )
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("'name' is required")
        async with ctx.db.session() as session:
            username = await session.scalar(
                select(Identity.username).where(Identity.id == grant.identity_id)
            )
        assert username is not None
        _, setup_key = await endpoints.create_endpoint(
            ctx, bounded_text(name.strip(), "name", 300), username
        )
        endpoint, credential = await endpoints.exchange_setup_key(ctx, setup_key)
        return {**await describe(endpoint.id), "credential": credential}

    @app.get(f"{prefix}/endpoint")
    async def endpoint_info(request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        return await describe(endpoint.id)

    @app.post(f"{prefix}/collections")
    async def add_collection(request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise bad_request("'name' is required")
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise bad_request("'description' must be a string")
        collection = await endpoints.register_collection(ctx, endpoint.id, name, description)
        async with ctx.db.session() as session:
            owner = await session.scalar(
                select(Identity.username).where(Identity.id == collection.owner_id)
            )
        return {"id": str(collection.id), "display_name": collection.display_name, "owner": owner}

    @app.post(f"{prefix}/poll")
    async def poll(request: Request) -> dict[str, Any]:
        endpoint, credential_hash = await authenticated(request)
        # The agent may ask for a shorter hold (tests, networks that cut idle connections).
        wanted = request.query_params.get("hold")
        hold = ctx.settings.connect_poll_hold_seconds
        if wanted is not None:
            try:
                hold = min(hold, max(0.0, float(wanted)))
            except ValueError:
                raise bad_request("'hold' must be a number of seconds") from None
        taken, work = await relay.take(
            ctx, endpoint.id, credential_hash, hold=hold, gone=request.is_disconnected
        )
        return {"requests": taken, "work": work}

    @app.post(f"{prefix}/requests/{{request_id}}/answer")
    async def answer(request_id: str, request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            raise bad_request("Invalid request id") from None
        body = await json_body(request)
        if ("ok" in body) == ("error" in body):
            raise bad_request("An answer has exactly one of 'ok' and 'error'")
        accepted = await relay.answer(ctx, endpoint.id, key, body)
        return {"accepted": accepted}

    @app.post(f"{prefix}/offline")
    async def offline(request: Request) -> dict[str, Any]:
        """The agent is stopping: report it disconnected now rather than at the poll's end."""
        endpoint, _ = await authenticated(request)
        await relay.went_offline(ctx, endpoint.id)
        return {"offline": True}

    @app.post(f"{prefix}/work/lease")
    async def work_lease(request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        return await work.lease(ctx, work.worker_of(endpoint.id, body))

    @app.post(f"{prefix}/work/renew")
    async def work_renew(request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        return await work.renew(ctx, work.worker_of(endpoint.id, body), work.claim_of(body))

    @app.post(f"{prefix}/work/release")
    async def work_release(request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        return await work.release(ctx, work.worker_of(endpoint.id, body), work.claim_of(body))

    @app.post(f"{prefix}/data/announce")
    async def data_announce(request: Request) -> dict[str, Any]:
        """Where this agent accepts data connections (or ``address`` null: it does not)."""
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        return await work.announce(ctx, endpoint.id, body)

    @app.post(f"{prefix}/data/verify")
    async def data_verify(request: Request) -> dict[str, Any]:
        """A peer presented a task credential to this agent: what does it open?"""
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        return await work.verify_data_token(ctx, endpoint.id, body)

    @app.post(prefix + "/work/job/{op}")
    async def work_job(op: str, request: Request) -> dict[str, Any]:
        endpoint, _ = await authenticated(request)
        body = await json_body(request)
        who, claim = work.worker_of(endpoint.id, body), work.claim_of(body)
        return await work.job_operation(ctx, who, claim, op, body)

    return app
