"""Logging in through an institution's own OpenID Connect provider (Keycloak, CILogon, Azure
AD, Okta, Google, ...), with Authlib's Starlette client.

Choosing such an institution on the login page sends the browser to the provider with an
authorization-code request carrying PKCE (S256), ``state`` and ``nonce`` (kept in the signed
session cookie until the browser comes back). The callback exchanges the code with the
client secret and the PKCE verifier, and Authlib validates the id_token: signature against
the provider's JWKS, ``iss`` (the configured issuer, which the discovery document must
state), ``aud`` (our client id), expiry and ``nonce``. The identity is then
``<username claim>@<domain>``: provisioned on first login and bound to the provider's
``sub``, so a username later reassigned at the institution cannot take the account over.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError

with warnings.catch_warnings():
    # Authlib 1.9 announces a move of its httpx integration to the "httpx2" package; the
    # integration works as before, and the notice would be printed by every command.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from starlette.requests import Request
from starlette.responses import Response

from arctern.db.models.auth import IdentityProvider
from arctern.secretbox import fernet_for

OIDC_KIND = "oidc"
_SECRET_PURPOSE = b"arctern-oidc-client-secret"
# What the part of a username before ``@`` may be (the rest is the provider's domain).
LOCAL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Where the provider sends the browser back, under the auth service.
CALLBACK_PATH = "/auth/login/oidc/callback"
# The login in progress (provider id, where to go afterwards), in the session cookie.
PENDING_KEY = "upstream_login"


class UpstreamLoginError(Exception):
    """The login at the institution did not give a usable identity; ``message`` says why in
    words for the person logging in."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret_encrypted: str
    username_claim: str = "preferred_username"
    scopes: str = "openid profile email"

    def stored(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> OidcSettings:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    @staticmethod
    def encrypt(secret_key: str, secret: str) -> str:
        return fernet_for(secret_key, _SECRET_PURPOSE).encrypt(secret.encode()).decode()

    def client_secret(self, secret_key: str) -> str:
        raw = self.client_secret_encrypted.encode()
        return fernet_for(secret_key, _SECRET_PURPOSE).decrypt(raw).decode()


@dataclass(frozen=True)
class UpstreamUser:
    """Who the provider says logged in."""

    subject: str
    username: str  # local@domain
    name: str
    email: str | None


class UpstreamLogins:
    """The OpenID Connect clients of this deployment, one per provider (metadata and keys
    cached until the provider's settings change)."""

    def __init__(self, secret_key: str, base_url: str) -> None:
        self.secret_key = secret_key
        self.redirect_uri = base_url.rstrip("/") + CALLBACK_PATH
        # provider id -> (its settings as registered, its client)
        self._clients: dict[str, tuple[str, StarletteOAuth2App]] = {}

    def _client(self, provider: IdentityProvider) -> StarletteOAuth2App:
        name = str(provider.id)
        fingerprint = json.dumps(provider.settings, sort_keys=True)
        known = self._clients.get(name)
        if known is not None and known[0] == fingerprint:
            return known[1]
        settings = OidcSettings.from_stored(provider.settings or {})
        registry = OAuth()
        registry.register(
            name=name,
            client_id=settings.client_id,
            client_secret=settings.client_secret(self.secret_key),
            server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.scopes,
                "code_challenge_method": "S256",
                "timeout": 15,
            },
        )
        client = registry.create_client(name)
        assert isinstance(client, StarletteOAuth2App)
        self._clients[name] = (fingerprint, client)
        return client

    async def begin(self, request: Request, provider: IdentityProvider, next_url: str) -> Response:
        """Send the browser to the provider (PKCE, state and nonce kept in the session)."""
        client = self._client(provider)
        try:
            await self._checked_metadata(client, provider)
            response = await client.authorize_redirect(request, self.redirect_uri)
        except (httpx.HTTPError, OAuthError, ValueError) as exc:
            raise UpstreamLoginError(
                f"{provider.name} cannot be reached right now ({_reason(exc)}). Please try "
                "again in a few minutes.",
                503,
            ) from None
        request.session[PENDING_KEY] = {"idp": str(provider.id), "next": next_url}
        return response

    async def finish(
        self, request: Request, providers: dict[str, IdentityProvider]
    ) -> tuple[IdentityProvider, UpstreamUser, str]:
        """The provider, the validated user and where to continue, from the callback."""
        pending = request.session.pop(PENDING_KEY, None)
        provider = providers.get(str((pending or {}).get("idp")))
        if not isinstance(pending, dict) or provider is None:
            raise UpstreamLoginError(
                "This login did not start here or took too long. Please log in again."
            )
        if "error" in request.query_params:
            description = (
                request.query_params.get("error_description") or request.query_params["error"]
            )
            raise UpstreamLoginError(f"{provider.name} did not log you in: {description[:300]}")
        client = self._client(provider)
        try:
            token = await client.authorize_access_token(request)
        except OAuthError as exc:
            raise UpstreamLoginError(
                f"The answer from {provider.name} was not accepted ({_reason(exc)}). Please log "
                "in again."
            ) from None
        except httpx.HTTPError as exc:
            raise UpstreamLoginError(
                f"{provider.name} cannot be reached right now ({_reason(exc)}).", 503
            ) from None
        claims = token.get("userinfo")
        if not claims or not claims.get("sub"):
            raise UpstreamLoginError(f"{provider.name} sent no identity (no id_token).", 502)
        claims = dict(claims)
        settings = OidcSettings.from_stored(provider.settings or {})
        if settings.username_claim not in claims:
            # Many providers put profile claims in the UserInfo response only.
            claims = await self._with_userinfo(client, provider, token, claims)
        return provider, _user_of(provider, settings, claims), str(pending.get("next"))

    async def _with_userinfo(
        self,
        client: StarletteOAuth2App,
        provider: IdentityProvider,
        token: dict[str, Any],
        claims: dict[str, Any],
    ) -> dict[str, Any]:
        """The id_token's claims completed from the UserInfo endpoint, which must describe
        the same subject (OpenID Connect Core 5.3.2); the id_token's claims take precedence."""
        try:
            info = dict(await client.userinfo(token=token))
        except (httpx.HTTPError, OAuthError, ValueError) as exc:
            raise UpstreamLoginError(
                f"{provider.name} did not answer who you are ({_reason(exc)}).", 502
            ) from None
        if info.get("sub") != claims["sub"]:
            raise UpstreamLoginError(
                f"{provider.name} described another person than the one who logged in.", 502
            )
        return {**info, **claims}

    async def _checked_metadata(
        self, client: StarletteOAuth2App, provider: IdentityProvider
    ) -> None:
        """The discovery document must name the configured issuer (OpenID Discovery 4.3):
        otherwise tokens from another issuer could be taken for this one's."""
        metadata = await client.load_server_metadata()
        expected = OidcSettings.from_stored(provider.settings or {}).issuer.rstrip("/")
        if str(metadata.get("issuer", "")).rstrip("/") != expected:
            raise ValueError(f"its discovery document names issuer {metadata.get('issuer')!r}")


def _user_of(
    provider: IdentityProvider, settings: OidcSettings, claims: dict[str, Any]
) -> UpstreamUser:
    raw = claims.get(settings.username_claim)
    if not isinstance(raw, str) or not raw:
        raise UpstreamLoginError(
            f"{provider.name} did not send your username (claim '{settings.username_claim}')."
        )
    local, at, domain = raw.partition("@")
    if at and domain.lower() != provider.domain:
        raise UpstreamLoginError(
            f"{provider.name} logged you in as {raw}, which is not an account of {provider.domain}."
        )
    if not LOCAL_NAME.fullmatch(local):
        raise UpstreamLoginError(f"The username {raw!r} cannot be used here.")
    email = claims.get("email")
    return UpstreamUser(
        subject=str(claims["sub"]),
        username=f"{local.lower()}@{provider.domain}",
        name=str(claims.get("name") or ""),
        email=email if isinstance(email, str) else None,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, OAuthError):
        return exc.description or exc.error or "invalid answer"
    return str(exc) or type(exc).__name__
