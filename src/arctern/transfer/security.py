"""Bearer-token authentication for the Transfer API: the token must carry the transfer scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from arctern.auth.client_identities import client_identity
from arctern.auth.verifier import TokenVerifier
from arctern.errors import Unauthorized
from arctern.transfer.services.common import Caller

TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def make_authenticator(verifier: TokenVerifier) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency resolving the calling identity, or raising a 401/403."""

    async def authenticate(request: Request) -> Caller:
        token = bearer_token(request)
        if token is None:
            raise Unauthorized(
                "No bearer token was provided", code="ClientError.AuthenticationFailed"
            )
        grant = await verifier.verify(token)
        if grant is None:
            raise Unauthorized(
                "The access token is invalid, expired or revoked",
                code="ClientError.AuthenticationFailed",
            )
        if grant.resource_server != TRANSFER_RESOURCE_SERVER or TRANSFER_SCOPE not in grant.scopes:
            raise Unauthorized(
                "The access token is not valid for the Transfer API",
                code="ClientError.AuthenticationFailed",
            )
        if grant.identity_id is None:
            # client_credentials: the client acts as itself, as on Globus (service accounts).
            identity = await client_identity(verifier.ctx, grant.client_id)
            if identity is None:
                raise Unauthorized(
                    "The client of this token no longer exists",
                    code="ClientError.AuthenticationFailed",
                )
            return Caller(identity_id=identity.id, username=identity.username)
        return Caller(identity_id=grant.identity_id, username=grant.username or "")

    return authenticate
