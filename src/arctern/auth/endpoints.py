"""OAuth2/OIDC machine endpoints: token, revoke, introspect, validate, userinfo, discovery, JWKS."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from arctern.auth import identity_sets
from arctern.auth.oauth import (
    DEPENDENT_TOKEN_GRANT,
    ArcternAuthorizationServer,
    identity_claims,
    malformed_parameter,
    oauth_error_body,
)
from arctern.auth.scopes import AUTH_RS, OIDC_SCOPES
from arctern.auth.service import AuthService
from arctern.auth.verifier import AccessGrant, TokenVerifier
from arctern.db.models.auth import Identity, OAuthClient

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def globus_error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """The Globus Auth error document (``errors`` list plus the OAuth-style keys)."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "errors": [
            {
                "status": str(status),
                "id": str(uuid.uuid4()),
                "code": code,
                "title": title,
                "detail": detail,
            }
        ],
        "error": code.lower(),
        "error_description": detail,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": 'Bearer realm="arctern"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def invalid_request(description: str) -> JSONResponse:
    """An RFC 6749 ``invalid_request`` (with the Globus ``errors`` list) for /token and kin."""
    body = oauth_error_body({"error": "invalid_request", "error_description": description}, 400)
    return JSONResponse(body, status_code=400, headers=NO_STORE)


async def bearer_grant(request: Request, verifier: TokenVerifier) -> AccessGrant | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await verifier.verify(token.strip())


def create_endpoints_router(service: AuthService, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter()
    ctx = service.ctx

    @router.post("/v2/oauth2/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        oreq = await service.http_request(request)
        problem = malformed_parameter(oreq)
        if problem is not None:
            response = invalid_request(problem)
        else:
            response = await service.run(
                request,
                lambda server: server.create_token_response(server.current_request),
                oauth_request=oreq,
            )
        response.headers.update(NO_STORE)
        return response

    def endpoint(name: str) -> Any:
        async def handler(request: Request) -> Response:
            def action(server: ArcternAuthorizationServer) -> Response:
                return server.create_endpoint_response(name, server.current_request)

            oreq = await service.http_request(request)
            problem = malformed_parameter(oreq)
            if problem is not None:
                return invalid_request(problem)
            return await service.run(request, action, oauth_request=oreq)

        return handler

    router.add_api_route(
        "/v2/oauth2/token/revoke", endpoint("revocation"), methods=["POST"], include_in_schema=False
    )
    router.add_api_route(
        "/v2/oauth2/token/introspect",
        endpoint("introspection"),
        methods=["POST"],
        include_in_schema=False,
    )
    router.add_api_route(
        "/v2/oauth2/token/validate",
        endpoint("validation"),
        methods=["POST"],
        include_in_schema=False,
    )

    async def client_identity_claims(client_id: uuid.UUID) -> dict[str, Any]:
        """A client acting as itself (client credentials) has a Globus-style client identity."""
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, client_id)
        username = f"{client_id}@clients.auth.globus.org"
        name = client.name if client is not None else str(client_id)
        member = {"sub": str(client_id), "username": username, "name": name, "email": None}
        return {
            "sub": str(client_id),
            "preferred_username": username,
            "name": name,
            "email": None,
            "identity_set": [member],
        }

    @router.api_route("/v2/oauth2/userinfo", methods=["GET", "POST"], include_in_schema=False)
    async def userinfo(request: Request) -> Response:
        grant = await bearer_grant(request, verifier)
        if grant is None:
            return globus_error(401, "UNAUTHORIZED", "Call must be authenticated")
        if grant.resource_server != AUTH_RS:
            return globus_error(403, "FORBIDDEN", "This token cannot be used for userinfo")
        if "openid" not in grant.scopes:
            return globus_error(403, "FORBIDDEN", "userinfo requires the openid scope")
        if grant.identity_id is None:
            return JSONResponse(await client_identity_claims(grant.client_id))
        async with ctx.db.session() as session:
            identity = await session.get(Identity, grant.identity_id)
            linked = await identity_sets.members(session, grant.identity_id)
        if identity is None:
            return globus_error(401, "UNAUTHORIZED", "The identity no longer exists")
        claims = identity_claims(identity, ctx.clock.now(), linked)
        if "email" not in grant.scopes:
            claims.pop("email", None)
        if "profile" not in grant.scopes:
            for key in ("name", "preferred_username", "organization"):
                claims.pop(key, None)
            # The CLI reads preferred_username unguarded; Globus always includes it with openid.
            claims["preferred_username"] = identity.username
        return JSONResponse(claims)

    @router.get("/.well-known/openid-configuration", include_in_schema=False)
    async def discovery(request: Request) -> Response:
        base = service.auth_base(request)
        return JSONResponse(
            {
                "issuer": service.issuer(request),
                "authorization_endpoint": base + "v2/oauth2/authorize",
                "token_endpoint": base + "v2/oauth2/token",
                "userinfo_endpoint": base + "v2/oauth2/userinfo",
                "revocation_endpoint": base + "v2/oauth2/token/revoke",
                "introspection_endpoint": base + "v2/oauth2/token/introspect",
                "jwks_uri": base + "jwk.json",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": [
                    "authorization_code",
                    "client_credentials",
                    "refresh_token",
                    DEPENDENT_TOKEN_GRANT,
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": sorted(OIDC_SCOPES),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "at_hash",
                    "preferred_username",
                    "name",
                    "email",
                    "organization",
                    "identity_provider",
                    "identity_provider_display_name",
                    "last_authentication",
                    "identity_set",
                ],
            }
        )

    @router.get("/jwk.json", include_in_schema=False)
    async def jwks() -> Response:
        return JSONResponse(service.signing_key.jwks())

    return router
