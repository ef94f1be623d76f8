"""Authlib's framework-neutral OAuth2/OIDC core bound to our database and Globus conventions.

Concurrency model: Authlib's grant callbacks are synchronous. Each HTTP request opens one async
session and runs the whole Authlib call inside ``await session.run_sync(fn)``; ``fn`` receives a
sync ``Session`` that talks to the same async driver through SQLAlchemy's greenlet bridge. A
fresh, cheap ``ArcternAuthorizationServer`` is built per request around that session (Authlib's
``query_client`` has no request argument, so the session must live on the server object).

Globus specifics handled here: tokens are split per resource server (``other_tokens``), refresh
tokens rotate, PKCE S256 is mandatory for public clients at /authorize, native and CLI-templated
clients may redirect to any loopback port and to the auth-code page, and the CLI may revoke
tokens of its templated client using the template's client id.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    BaseGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    TokenEndpointMixin,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from arctern.auth import identity_sets, scope_registry
from arctern.auth.hashing import digest, new_secret, same_digest
from arctern.auth.keys import ALGORITHM, SigningKey
from arctern.auth.registry import BUILTIN_NATIVE_CLIENTS, CLI_TEMPLATE_ID, PUBLIC
from arctern.auth.scopes import (
    AUTH_RS,
    ScopeError,
    parse_scopes,
    resource_server_of,
    root_scopes,
    split_by_resource_server,
)
from arctern.auth.verifier import TOKENS_REVOKED
from arctern.config import Settings
from arctern.db.engine import mark_changed
from arctern.db.models.auth import (
    AuthorizationCode,
    ClientCredential,
    Consent,
    Identity,
    OAuthClient,
    OAuthToken,
)
from arctern.limits import MAX_NONCE, MAX_OAUTH_PARAMETER, MAX_URI

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


# --------------------------------------------------------------------------- requests


class _Payload:
    """Query and form parameters merged (form wins), as Authlib's payload interface wants."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = {}
        for key, value in items:
            self._datalist.setdefault(key, []).append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist

    client_id = property(lambda self: self._data.get("client_id"))
    grant_type = property(lambda self: self._data.get("grant_type"))
    redirect_uri = property(lambda self: self._data.get("redirect_uri"))
    scope = property(lambda self: self._data.get("scope"))
    state = property(lambda self: self._data.get("state"))

    @property
    def response_type(self) -> str | None:
        value = self._data.get("response_type")
        return " ".join(sorted(value.split())) if value and " " in value else value


class HttpRequest(OAuth2Request):
    """An already-read Starlette request (Authlib calls are sync, so the body is read first).

    Transport security is the operator's decision (TLS usually ends at a reverse proxy), so
    Authlib's https-only check on the request URI is not applied.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        # Deliberately not calling OAuth2Request.__init__ (see the class docstring).
        self.method = method
        self.uri = uri
        self.headers = headers  # case-insensitive: Authlib reads "Authorization"
        self._body = None
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self._query = dict(query)
        self._form: dict[str, str] = {}
        for key, value in form:
            self._form.setdefault(key, value)
        self.payload = _Payload(list(query) + list(form))  # type: ignore[assignment]
        # Form values must win over query values for duplicated keys.
        for key, value in self._form.items():
            self.payload.data[key] = value  # type: ignore[union-attr]

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


# RFC 6749 appendix A: scope tokens are NQCHAR (%x21 / %x23-5B / %x5D-7E), space separated.
_SCOPE_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# An absolute URI (RFC 3986) is printable ASCII without space, quote, backslash, <>^`{|}.
_URI_TEXT = re.compile(r"[\x21\x23-\x3b\x3d\x3f-\x5b\x5d\x5f\x61-\x7a\x7e]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def malformed_parameter(request: HttpRequest) -> str | None:
    """Why the request's parameters cannot be processed at all, or None.

    Authlib copies ``scope`` and ``redirect_uri`` into its error descriptions and refuses to
    build one holding ``"``, ``\\`` or non-ASCII (a ValueError, i.e. a 500); such values are
    outside the RFC grammar anyway, so they are refused here with a fixed message.
    """
    for key, values in request.payload.datalist.items():
        for value in values:
            if len(key) > MAX_OAUTH_PARAMETER or len(value) > MAX_OAUTH_PARAMETER:
                return f"A parameter is longer than {MAX_OAUTH_PARAMETER} characters."
            if _CONTROL_CHARS.search(key) or _CONTROL_CHARS.search(value):
                return "The request contains control characters."
    data = request.payload.data
    if not _SCOPE_TEXT.fullmatch(data.get("scope", "")):
        return "The scope parameter may only contain printable ASCII other than '\"' and '\\'."
    if not _URI_TEXT.fullmatch(data.get("redirect_uri", "")):
        return "The redirect_uri parameter must be an ASCII URI (percent-encode other characters)."
    if len(data.get("redirect_uri", "")) > MAX_URI:
        return f"The redirect_uri parameter is longer than {MAX_URI} characters."
    if len(data.get("nonce", "")) > MAX_NONCE:
        return f"The nonce parameter is longer than {MAX_NONCE} characters."
    return None


# --------------------------------------------------------------------------- models


@dataclass
class ClientView(ClientMixin):
    """Authlib's view of a client row plus our redirect-URI policy."""

    row: OAuthClient
    secret_hashes: list[str]
    auth_code_pages: frozenset[str]

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def is_public(self) -> bool:
        return self.row.client_type == PUBLIC

    @property
    def may_use_loopback(self) -> bool:
        return self.is_public or self.row.parent_client == CLI_TEMPLATE_ID

    def get_client_id(self) -> str:
        return str(self.row.id)

    def get_default_redirect_uri(self) -> str | None:
        return self.row.redirect_uris[0] if self.row.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        try:
            roots = root_scopes(scope)
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        if not roots:
            raise InvalidScopeError("The 'scope' parameter is required.")
        return " ".join(roots)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in (self.row.redirect_uris or []):
            return True
        if not self.may_use_loopback:
            return False
        if redirect_uri in self.auth_code_pages:
            return True
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.fragment:
            return False
        try:
            _ = parts.port  # rejects malformed ports
        except ValueError:
            return False
        if parts.path in ("", "/"):
            return True
        # A registered loopback URI with a path matches on any port (RFC 8252 section 7.3).
        for registered in self.row.redirect_uris or []:
            reg = urlsplit(registered)
            if reg.hostname in LOOPBACK_HOSTS and reg.path == parts.path:
                return True
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return any(same_digest(client_secret, h) for h in self.secret_hashes)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in ("authorization_code", "refresh_token"):
            return True
        confidential_only = ("client_credentials", DEPENDENT_TOKEN_GRANT)
        return grant_type in confidential_only and not self.is_public


@dataclass
class CodeView(AuthorizationCodeMixin):
    row: AuthorizationCode

    @property
    def code_challenge(self) -> str | None:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:  # type: ignore[override]
        return None

    def get_amr(self) -> list[str] | None:  # type: ignore[override]
        return None


@dataclass
class TokenView(TokenMixin):
    row: OAuthToken
    now: datetime
    matched: str  # "access_token" or "refresh_token"
    template_of: uuid.UUID | None  # the template the token's client was made from

    def check_client(self, client: ClientView) -> bool:
        return client.id == self.row.client_id

    def may_be_handled_by(self, client: ClientView) -> bool:
        """The token's own client, or the template it was instantiated from (globus logout)."""
        return self.check_client(client) or (
            self.template_of is not None and client.id == self.template_of
        )

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        if self.matched == "refresh_token":
            expiry = self.row.refresh_expires_at
            return expiry is not None and expiry <= self.now
        return self.row.expires_at <= self.now

    def is_revoked(self) -> bool:
        if self.matched == "refresh_token":
            return self.row.refresh_revoked
        return self.row.access_revoked

    def get_user(self) -> uuid.UUID | None:
        return self.row.identity_id

    def get_client(self) -> Any:
        return self.row.client_id


# --------------------------------------------------------------------------- grants


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: ArcternAuthorizationServer

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data = self.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        # OAuth 2.1 / RFC 9700: public clients must use PKCE, and only S256.
        if self.request.client.is_public and not challenge:
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256.",
                redirect_uri=redirect_uri,
            )
        if challenge and method != "S256":
            raise InvalidRequestError(
                "Only code_challenge_method=S256 is supported.", redirect_uri=redirect_uri
            )
        access_type = data.get("access_type", "online")
        if access_type not in ("online", "offline"):
            raise InvalidRequestError(
                "access_type must be online or offline.", redirect_uri=redirect_uri
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        server = self.server
        data = request.payload.data
        user: Identity = request.user
        now = server.now
        server.session.add(
            AuthorizationCode(
                code_hash=digest(code),
                client_id=request.client.id,
                identity_id=user.id,
                redirect_uri=request.payload.redirect_uri or self.redirect_uri,
                scope=request.scope,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                nonce=data.get("nonce"),
                access_type=data.get("access_type", "online"),
                auth_time=server.auth_time or now,
                authentications=server.authentications,
                created_at=now,
                expires_at=now + timedelta(seconds=server.settings.authorization_code_lifetime),
            )
        )
        server.session.flush()

    def query_authorization_code(self, code: str, client: ClientView) -> CodeView | None:
        session = self.server.session
        row = session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code))
        )
        # Each refusal says why in one sentence (a person pasted this code). Authlib turns
        # the error into the response inside create_token_response, so the revocation
        # below still commits.
        if row is None or row.client_id != client.id:
            raise InvalidGrantError(
                "This authorization code is not valid: check that it was copied completely."
            )
        lifetime = self.server.settings.authorization_code_lifetime // 60
        if row.used:
            # RFC 6749 section 4.1.2: a replayed code revokes what it produced.
            session.execute(
                update(OAuthToken)
                .where(OAuthToken.code_id == row.id)
                .values(access_revoked=True, refresh_revoked=True)
            )
            mark_changed(session, TOKENS_REVOKED)
            raise InvalidGrantError(
                "This authorization code was already used; a code works once, and the "
                "tokens it gave were revoked. Log in again for a new code."
            )
        if row.expires_at <= self.server.now:
            expired = row.expires_at.strftime("%H:%M UTC")
            raise InvalidGrantError(
                f"This authorization code expired at {expired}; codes last {lifetime} "
                "minutes. Log in again for a new code."
            )
        return CodeView(row)

    def delete_authorization_code(self, authorization_code: CodeView) -> None:
        # Kept (marked used) rather than deleted, so a replay can be detected.
        authorization_code.row.used = True
        self.server.session.flush()

    def authenticate_user(self, authorization_code: CodeView) -> Identity | None:
        identity = self.server.session.get(Identity, authorization_code.row.identity_id)
        return identity if identity is not None and identity.active else None

    def generate_token(
        self,
        user: Any = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        code = self.request.authorization_code
        offline = code is not None and code.row.access_type == "offline"
        return super().generate_token(
            user=user,
            scope=scope,
            grant_type=grant_type,
            expires_in=expires_in,
            include_refresh_token=include_refresh_token and offline,
        )


class ReusableRefreshGrant(RefreshTokenGrant):
    """Refresh tokens are not rotated, as with Globus Auth: a refresh answers with a new
    access token and the same refresh token, which stays valid. Scripts that saved a refresh
    token once (``RefreshTokenAuthorizer`` without ``on_refresh``) keep working, and clients
    that store whatever the response holds (globus-sdk's token storage) store the same
    string. Each use starts its ``refresh_token_lifetime`` (180 days) again, so a refresh
    token ends when unused that long, when revoked, or when its identity is disabled."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: ArcternAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> TokenView | None:
        view = self.server.find_token(refresh_token, "refresh_token")
        if view is None or view.matched != "refresh_token":
            return None
        if view.is_revoked() or view.is_expired():
            return None
        return view

    def authenticate_user(self, refresh_token: TokenView) -> Identity | None:
        if refresh_token.row.identity_id is None:
            return None
        identity = self.server.session.get(Identity, refresh_token.row.identity_id)
        return identity if identity is not None and identity.active else None

    def issue_token(self, user: Identity, refresh_token: TokenView) -> dict[str, Any]:
        token: dict[str, Any] = super().issue_token(user, refresh_token)
        # The refresh token moves to the new token row (stored hashed, one row per refresh
        # token), and the response carries the string the client already has.
        refresh_token.row.refresh_token_hash = None
        self.server.session.flush()
        token["refresh_token"] = self.request.payload.data.get("refresh_token")
        return token

    def revoke_old_credential(self, refresh_token: TokenView) -> None:
        """Nothing to revoke: the refresh token lives on in the new row; the old access
        token stays valid until it expires, as on Globus."""


def token_entry(
    resource_server: str, scopes: list[str], lifetime: int, *, refresh: bool
) -> dict[str, Any]:
    """One resource server's token in a token response (fresh secrets)."""
    entry: dict[str, Any] = {
        "access_token": new_secret(32),
        "scope": " ".join(scopes),
        "resource_server": resource_server,
        "expires_in": lifetime,
        "token_type": "Bearer",
    }
    if refresh:
        entry["refresh_token"] = new_secret(32)
    return entry


DEPENDENT_TOKEN_GRANT = "urn:globus:auth:grant_type:dependent_token"


class DependentTokenGrant(BaseGrant, TokenEndpointMixin):
    """Globus's dependent-token grant: a confidential client that received a user's token
    for one of its own scopes gets tokens for that scope's dependent scopes, for the same
    user, as far as the user consented to them under it for the app that asked. The answer
    is a list of tokens, one per resource server (``access_type=offline`` adds refresh
    tokens where the dependent scope allows them)."""

    GRANT_TYPE = DEPENDENT_TOKEN_GRANT
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: ArcternAuthorizationServer

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        token = self.request.payload.data.get("token")
        if not token:
            raise InvalidRequestError("The 'token' parameter is required.")
        view = self.server.find_token(str(token), "access_token")
        if view is None or view.matched != "access_token" or view.is_revoked() or view.is_expired():
            raise InvalidGrantError("The token is not active.")
        if view.row.resource_server != client.get_client_id():
            raise InvalidGrantError(
                "The token was issued for another resource server "
                f"({view.row.resource_server}); only tokens for this client's own scopes "
                "give dependent tokens."
            )
        identity = (
            self.server.session.get(Identity, view.row.identity_id)
            if view.row.identity_id is not None
            else None
        )
        if identity is None or not identity.active:
            raise InvalidGrantError("The token's user cannot be acted for.")
        self.request.client = client
        self.request.user = identity
        self.presented = view

    def create_token_response(self) -> tuple[int, Any, list[tuple[str, str]]]:
        view = self.presented
        wanted = set((self.request.payload.data.get("scope") or "").split())
        offline = self.request.payload.data.get("access_type") == "offline"
        granted = self._consented_dependents(view)
        if wanted:
            granted = [(scope, refresh) for scope, refresh in granted if scope in wanted]
        if not granted:
            return 200, [], [("Content-Type", "application/json")]
        lifetime = self.server.settings.access_token_lifetime
        grouped: dict[str, list[str]] = {}
        refreshable: dict[str, bool] = {}
        for scope, allows_refresh in granted:
            rs = resource_server_of(scope)
            grouped.setdefault(rs, []).append(scope)
            refreshable[rs] = refreshable.get(rs, True) and allows_refresh
        entries = [
            token_entry(rs, scopes, lifetime, refresh=offline and refreshable[rs])
            for rs, scopes in grouped.items()
        ]
        self.server.save_token({**entries[0], "other_tokens": entries[1:]}, self.request)
        body = json.dumps(entries)
        return 200, body, [("Content-Type", "application/json"), *self.TOKEN_RESPONSE_HEADER]

    def _consented_dependents(self, view: TokenView) -> list[tuple[str, bool]]:
        """``(dependent scope, allows refresh)`` the user granted under the token's scopes
        to the app the token was issued to."""
        session = self.server.session
        consents = list(
            session.scalars(
                select(Consent).where(
                    Consent.identity_id == view.row.identity_id,
                    Consent.client_id == view.row.client_id,
                    Consent.status == "approved",
                )
            )
        )
        found: list[tuple[str, bool]] = []
        for scope in view.row.scope.split():
            registered = scope_registry.registered_scope(session, scope)
            if registered is None:
                continue
            parents = {c.id for c in consents if c.scope_name == scope}
            under = {c.scope_name for c in consents if c.parent_id in parents}
            for dependent in registered.dependent_scopes:
                name = str(dependent.get("scope"))
                if name in under and all(name != f for f, _ in found):
                    target = scope_registry.registered_scope(session, name)
                    allows = target.allows_refresh_token if target is not None else True
                    found.append((name, allows))
        return found


class ClientCredentialsOnly(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class GlobusOpenID(OpenIDCode):
    """id_token claims as Globus sends them, signed with the home's RSA key."""

    def __init__(self, server_factory: Callable[[], ArcternAuthorizationServer]) -> None:
        super().__init__(require_nonce=False)
        self._server = server_factory

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # Nonces are checked at the authorize step, where the code is not yet stored; a
        # replayed nonce for the same client is refused.
        server = self._server()
        row = server.session.scalar(
            select(AuthorizationCode.id).where(
                AuthorizationCode.nonce == nonce,
                AuthorizationCode.client_id == uuid.UUID(str(request.payload.client_id)),
            )
        )
        return row is not None

    def resolve_client_private_key(self, client: ClientView) -> Any:
        return self._server().signing_key.key

    def get_client_algorithm(self, client: ClientView) -> str:
        return ALGORITHM

    def get_encode_header(self, client: ClientView) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": self._server().signing_key.kid, "typ": "JWT"}

    def get_client_claims(self, client: ClientView) -> dict[str, Any]:
        server = self._server()
        return {"iss": server.issuer, "aud": client.get_client_id()}

    def generate_user_info(self, user: Identity, scope: str) -> dict[str, Any]:
        return self._server().identity_claims(user, scope)


# --------------------------------------------------------------------------- endpoints


class GlobusRevocation(RevocationEndpoint):
    """RFC 7009, answering ``{"active": false}`` like Globus whatever the token was."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: ArcternAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        return self.server.find_token(token_string, token_type_hint)

    def authenticate_token(self, request: OAuth2Request, client: ClientView) -> TokenView | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        # A token of another client is left alone, but the answer is the same (RFC 7009 2.2).
        return token if token is not None and token.may_be_handled_by(client) else None

    def revoke_token(self, token: TokenView, request: OAuth2Request) -> None:
        token.row.access_revoked = True
        if token.matched == "refresh_token":
            token.row.refresh_revoked = True
        mark_changed(self.server.session, TOKENS_REVOKED)
        self.server.session.flush()

    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, Any, list[Any]]:
        status, _body, headers = super().create_endpoint_response(request)
        return status, {"active": False}, headers


class GlobusIntrospection(IntrospectionEndpoint):
    """RFC 7662 with Globus fields (identity_set, session_info on request)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: ArcternAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        return self.server.find_token(token_string, token_type_hint)

    def check_permission(
        self, token: TokenView, client: ClientView, request: OAuth2Request
    ) -> bool:
        # Either audience: the client it was issued to, or the resource server it is for (a
        # portal checking a token presented for its own scope, as with Globus Auth).
        return token.may_be_handled_by(client) or token.row.resource_server == str(client.id)

    def introspect_token(self, token: TokenView) -> dict[str, Any]:
        return self.server.introspection_document(token, self._includes())

    def _includes(self) -> set[str]:
        raw = (
            self.server.current_request.form.get("include", "")
            if self.server.current_request
            else ""
        )
        return {part.strip() for part in raw.split(",") if part.strip()}


class TokenValidation(GlobusIntrospection):
    """Globus's legacy ``token/validate``: only ``{"active": bool}`` (the CLI's login check)."""

    ENDPOINT_NAME = "validation"
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def introspect_token(self, token: TokenView) -> dict[str, Any]:
        return {"active": True}

    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, Any, list[Any]]:
        status, body, headers = super().create_endpoint_response(request)
        return status, {"active": bool(body.get("active"))}, headers


# --------------------------------------------------------------------------- server


class ArcternAuthorizationServer(AuthorizationServer):
    """Authlib's server bound to one sync session for one request."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        signing_key: SigningKey,
        now: datetime,
        *,
        issuer: str,
        auth_code_pages: frozenset[str],
        auth_time: datetime | None = None,
        authentications: dict[str, int] | None = None,
    ) -> None:
        super().__init__(scopes_supported=None)
        self.session = session
        self.settings = settings
        self.signing_key = signing_key
        self.now = now
        self.issuer = issuer
        self.auth_code_pages = auth_code_pages
        self.auth_time = auth_time
        # Every identity the browser session authenticated (``sessions.Login``), for codes.
        self.authentications = authentications
        self.current_request: HttpRequest | None = None
        self.register_token_generator("default", self.generate_globus_token)
        self.register_grant(CodeGrant, [CodeChallenge(required=True), GlobusOpenID(lambda: self)])
        self.register_grant(ReusableRefreshGrant)
        self.register_grant(ClientCredentialsOnly)
        self.register_grant(DependentTokenGrant)
        self.register_endpoint(GlobusRevocation)
        self.register_endpoint(GlobusIntrospection)
        self.register_endpoint(TokenValidation)

    # ---- Authlib framework hooks

    def validate_requested_scope(self, scope: str | None) -> None:
        """Every scope asked for, dependencies included, must exist here (authorize and
        every token grant): ``invalid_scope`` names the first unknown one."""
        try:
            nodes = parse_scopes(scope)
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        pending = list(nodes)
        while pending:
            node = pending.pop()
            if not scope_registry.is_known(self.session, node.name):
                raise InvalidScopeError(f"Unknown scope: {node.name}")
            pending.extend(node.dependencies)

    def query_client(self, client_id: str) -> ClientView | None:
        try:
            key = uuid.UUID(str(client_id))
        except ValueError:
            return None
        row = self.session.get(OAuthClient, key)
        if row is None and key in BUILTIN_NATIVE_CLIENTS:
            row = ensure_builtin_client(self.session, self.now, key)
        if row is None:
            return None
        hashes = list(
            self.session.scalars(
                select(ClientCredential.secret_hash).where(ClientCredential.client_id == key)
            )
        )
        return ClientView(row, hashes, self.auth_code_pages)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        assert isinstance(request, HttpRequest)
        self.current_request = request
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("JSON requests are not used by this server")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        header_map = dict(headers)
        location = header_map.get("Location")
        if location:
            return Response(status_code=status, headers=header_map)
        if isinstance(body, Mapping):
            header_map.pop("Content-Type", None)
            return JSONResponse(oauth_error_body(dict(body), status), status, headers=header_map)
        return Response(body or "", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # ---- tokens

    def generate_globus_token(
        self,
        grant_type: str,
        client: ClientView,
        user: Identity | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """One token per resource server; the auth.globus.org one on top (it carries id_token)."""
        try:
            roots = root_scopes(scope)
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        if not roots:
            raise InvalidScopeError("The 'scope' parameter is required.")
        lifetime = expires_in or self.settings.access_token_lifetime
        tokens = [
            token_entry(resource_server, scopes, lifetime, refresh=include_refresh_token)
            for resource_server, scopes in split_by_resource_server(roots).items()
        ]
        tokens.sort(key=lambda t: t["resource_server"] != AUTH_RS)
        top = dict(tokens[0])
        top["other_tokens"] = tokens[1:]
        state = self.current_request.payload.state if self.current_request else None
        if state and grant_type == "authorization_code":
            top["state"] = state
        return top

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        client: ClientView = request.client
        user: Identity | None = request.user
        auth_time: datetime | None = None
        authentications: dict[str, int] | None = None
        code_id: int | None = None
        if isinstance(request.authorization_code, CodeView):
            auth_time = request.authorization_code.row.auth_time
            authentications = request.authorization_code.row.authentications
            code_id = request.authorization_code.row.id
        elif isinstance(request.refresh_token, TokenView):
            auth_time = request.refresh_token.row.auth_time
            authentications = request.refresh_token.row.authentications
            code_id = request.refresh_token.row.code_id
        refresh_lifetime = timedelta(seconds=self.settings.refresh_token_lifetime)
        entries = [token, *token.get("other_tokens", [])]
        for entry in entries:
            refresh = entry.get("refresh_token")
            self.session.add(
                OAuthToken(
                    access_token_hash=digest(entry["access_token"]),
                    refresh_token_hash=digest(refresh) if refresh else None,
                    client_id=client.id,
                    identity_id=user.id if user is not None else None,
                    resource_server=entry["resource_server"],
                    scope=entry["scope"],
                    issued_at=self.now,
                    expires_at=self.now + timedelta(seconds=int(entry["expires_in"])),
                    refresh_expires_at=self.now + refresh_lifetime if refresh else None,
                    auth_time=auth_time,
                    authentications=authentications,
                    code_id=code_id,
                )
            )
        self.session.flush()

    def find_token(self, token_string: str, hint: str | None) -> TokenView | None:
        if not token_string:
            return None
        hashed = digest(token_string)
        order = (
            ["refresh_token", "access_token"]
            if hint == "refresh_token"
            else [
                "access_token",
                "refresh_token",
            ]
        )
        for kind in order:
            column = (
                OAuthToken.access_token_hash
                if kind == "access_token"
                else OAuthToken.refresh_token_hash
            )
            row = self.session.scalar(select(OAuthToken).where(column == hashed))
            if row is not None:
                client = self.session.get(OAuthClient, row.client_id)
                template = client.parent_client if client is not None else None
                return TokenView(row, self.now, kind, template)
        return None

    # ---- documents

    def identity_claims(self, identity: Identity, scope: str | None = None) -> dict[str, Any]:
        return identity_claims(
            identity,
            self.auth_time or self.now,
            identity_sets.members_sync(self.session, identity.id),
        )

    def introspection_document(self, token: TokenView, includes: set[str]) -> dict[str, Any]:
        row = token.row
        expires = row.refresh_expires_at if token.matched == "refresh_token" else row.expires_at
        document: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "scope": row.scope,
            "client_id": str(row.client_id),
            "exp": int(expires.timestamp()) if expires else None,
            "iat": int(row.issued_at.timestamp()),
            "nbf": int(row.issued_at.timestamp()),
            "aud": [row.resource_server, str(row.client_id)],
            "iss": self.issuer,
        }
        identity = self.session.get(Identity, row.identity_id) if row.identity_id else None
        if identity is not None:
            document.update(
                sub=str(identity.id),
                username=identity.username,
                name=identity.name,
                email=identity.email,
            )
            linked = identity_sets.members_sync(self.session, identity.id)
            if "identity_set" in includes:
                document["identity_set"] = [str(identity.id)] + [
                    str(m.id) for m in linked if m.id != identity.id
                ]
            if "identity_set_detail" in includes:
                document["identity_set_detail"] = self.identity_claims(identity)["identity_set"]
            if "session_info" in includes:
                document["session_info"] = self.session_info(row, identity)
        else:
            document.update(sub=str(row.client_id), username=f"{row.client_id}@clients.auth")
        return document

    def session_info(self, row: OAuthToken, identity: Identity) -> dict[str, Any]:
        """The login session the token came from: each identity it authenticated, when,
        and at which identity provider."""
        auth_time = row.auth_time or row.issued_at
        times = row.authentications or {str(identity.id): int(auth_time.timestamp())}
        # (A Result has keys(), so dict() would take it for a mapping.)
        providers = {
            identity_id: provider_id
            for identity_id, provider_id in self.session.execute(
                select(Identity.id, Identity.provider_id).where(
                    Identity.id.in_([uuid.UUID(key) for key in times])
                )
            )
        }
        return {
            "session_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{identity.id}:{row.code_id}")),
            "authentications": {
                key: {
                    "auth_time": when,
                    "idp": str(providers[uuid.UUID(key)]),
                    "amr": ["password"],
                    "acr": None,
                    "custom_claims": {},
                }
                for key, when in times.items()
                if uuid.UUID(key) in providers
            },
        }


def _member_claims(identity: Identity, last_authentication: int | None) -> dict[str, Any]:
    provider = identity.provider
    return {
        "sub": str(identity.id),
        "username": identity.username,
        "name": identity.name,
        "email": identity.email,
        "identity_provider": str(provider.id),
        "identity_provider_display_name": provider.name,
        "organization": provider.name,
        "last_authentication": last_authentication,
    }


def identity_claims(
    identity: Identity, auth_time: datetime, members: list[Identity] | None = None
) -> dict[str, Any]:
    """The OIDC/userinfo claims Globus sends; ``identity_set`` lists the identities linked to
    this one (``auth/identity_sets.py``), itself first."""
    provider = identity.provider
    last_authentication = int(auth_time.timestamp())
    linked = [m for m in members or [] if m.id != identity.id]
    return {
        "sub": str(identity.id),
        "preferred_username": identity.username,
        "name": identity.name,
        "email": identity.email,
        "organization": provider.name,
        "identity_provider": str(provider.id),
        "identity_provider_display_name": provider.name,
        "last_authentication": last_authentication,
        "identity_set": [
            _member_claims(identity, last_authentication),
            *(_member_claims(m, None) for m in linked),
        ],
    }


def ensure_builtin_client(session: Session, now: datetime, client_id: uuid.UUID) -> OAuthClient:
    """A built-in native client (globus-cli's template, the Connect agent's), created on first
    use: their ids are hard-coded in the programs that log in with them."""
    row = session.get(OAuthClient, client_id)
    if row is None:
        row = OAuthClient(
            id=client_id,
            name=BUILTIN_NATIVE_CLIENTS[client_id],
            client_type=PUBLIC,
            redirect_uris=[],
            visibility="public",
            links={},
            created_at=now,
        )
        try:
            # A savepoint: a concurrent request may have created it first.
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = session.get(OAuthClient, client_id)
            assert existing is not None
            row = existing
    return row


_ERROR_CODES = {
    "invalid_grant": "INVALID_GRANT",
    "invalid_client": "INVALID_CLIENT",
    "invalid_request": "INVALID_REQUEST",
    "invalid_scope": "INVALID_SCOPE",
    "unauthorized_client": "UNAUTHORIZED_CLIENT",
    "unsupported_grant_type": "UNSUPPORTED_GRANT_TYPE",
    "unsupported_token_type": "UNSUPPORTED_TOKEN_TYPE",
    "access_denied": "ACCESS_DENIED",
}


def oauth_error_body(body: dict[str, Any], status: int) -> dict[str, Any]:
    """Add the Globus ``errors`` list to an RFC 6749 error body (the SDK reads both)."""
    error = body.get("error")
    if not isinstance(error, str) or "errors" in body:
        return body
    body.setdefault("error_description", error.replace("_", " "))
    body["errors"] = [
        {
            "status": str(status),
            "id": str(uuid.uuid4()),
            "code": _ERROR_CODES.get(error, error.upper()),
            "title": error,
            "detail": error,
        }
    ]
    return body
