"""Browser pages of the auth service: login, authorize + consent, and the auth-code page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from arctern.auth import sessions
from arctern.auth.admin import DISABLED
from arctern.auth.client_identities import CLIENTS_KIND
from arctern.auth.consents import has_consented, record_consents
from arctern.auth.csrf import csrf_ok, csrf_token
from arctern.auth.hashing import digest
from arctern.auth.ldap import DirectoryUnavailable, LdapSettings
from arctern.auth.ldap import authenticate as ldap_authenticate
from arctern.auth.oauth import ArcternAuthorizationServer, HttpRequest, malformed_parameter
from arctern.auth.scope_registry import registered_labels, with_registered_dependencies
from arctern.auth.scopes import ScopeError, ScopeNode, describe, parse_scopes, served_here
from arctern.auth.service import AuthService
from arctern.auth.session_requirements import (
    RequirementError,
    SessionRequirements,
    Shortfall,
    shortfall,
)
from arctern.auth.throttle import LoginThrottle
from arctern.auth.upstream import (
    OIDC_KIND,
    PENDING_KEY,
    UpstreamLoginError,
    UpstreamLogins,
    UpstreamUser,
)
from arctern.db.models.auth import AuthorizationCode, Identity, IdentityProvider, OAuthClient


@dataclass(frozen=True)
class ConsentNeeded:
    """The authorize request is valid and the user is known, but must approve the scopes."""

    client: OAuthClient
    nodes: list[ScopeNode]
    # What registered client scopes among them are called (their own descriptions).
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionUpdateNeeded:
    """The user must log in with another identity (or domain) first; what the login page
    says and pre-selects."""

    hint: str
    provider_id: str | None
    username: str


AuthorizeOutcome = Response | ConsentNeeded | SessionUpdateNeeded | None
# The login page's sentence for a session update, valid for the ``next`` it was made for.
LOGIN_HINT_KEY = "login_hint"

# What the auth-code page says for an ``error=`` redirect: fixed texts by OAuth error code.
AUTH_CODE_FAILURES = {
    "access_denied": "You did not allow the application access.",
    "invalid_scope": "The application asked for access this server does not offer.",
    "invalid_request": "The application's sign-in request was not valid.",
    "unauthorized_client": "The application may not sign in this way.",
    "server_error": "The server could not complete the sign-in.",
    "temporarily_unavailable": "The server is busy. Try again in a moment.",
}
AUTH_CODE_FAILURE_DEFAULT = "The sign-in could not be completed."


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths, so ``next`` cannot become an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return default
    return target


def wrong_password(
    chosen: IdentityProvider, username: str, providers: list[IdentityProvider]
) -> str:
    """The wrong-password message, with a hint when the username names the domain of
    another institution than the one chosen (the commonest mix-up with several)."""
    _, at, domain = username.partition("@")
    other = next(
        (p for p in providers if at and p.domain == domain.lower() and p.id != chosen.id), None
    )
    if other is None:
        return "Incorrect username or password."
    return (
        f"Incorrect username or password. {username} is an account of {other.name}: choose "
        f"{other.name} as your institution."
    )


def login_url(next_url: str) -> str:
    return "/auth/login?" + urlencode({"next": next_url})


def create_pages_router(service: AuthService) -> APIRouter:
    router = APIRouter()
    ctx = service.ctx
    templates = service.templates

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("current_user", None)
        context["request"] = request
        context["csrf_token"] = csrf_token(request)
        return templates.TemplateResponse(request, name, context, status_code=status)

    throttle = LoginThrottle(ctx)
    upstream = UpstreamLogins(ctx.settings.secret_key or "", ctx.settings.base_url)

    async def providers() -> list[IdentityProvider]:
        async with ctx.db.session() as session:
            return list(
                await session.scalars(
                    select(IdentityProvider)
                    .where(IdentityProvider.kind != CLIENTS_KIND, IdentityProvider.enabled)
                    .order_by("name")
                )
            )

    # ------------------------------------------------------------------ login

    @router.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str | None = None) -> Response:
        identity = await sessions.current_identity(request, ctx)
        next_url = safe_next(next)
        hint = request.session.get(LOGIN_HINT_KEY)
        if not isinstance(hint, dict) or hint.get("next") != next_url:
            hint = {}
        return page(
            request,
            "login.html",
            providers=await providers(),
            next=next_url,
            selected_idp=hint.get("idp"),
            username=hint.get("username", ""),
            notice=hint.get("text"),
            current_user=identity.username if identity else None,
        )

    @router.post("/login", include_in_schema=False)
    async def login_submit(request: Request) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        next_url = safe_next(values.get("next"))
        idp_id = values.get("idp", "")
        username = values.get("username", "").strip()
        password = values.get("password", "")
        all_providers = await providers()

        def again(message: str, status: int) -> Response:
            return page(
                request,
                "login.html",
                status,
                providers=all_providers,
                next=next_url,
                selected_idp=idp_id,
                username=username,
                error=message,
            )

        if not csrf_ok(request, values):
            return again("Your login form expired. Please try again.", 403)
        provider = next((p for p in all_providers if str(p.id) == idp_id), None)
        if provider is not None and provider.kind == OIDC_KIND:
            # The institution asks for the password itself, on its own site.
            try:
                return await upstream.begin(request, provider, next_url)
            except UpstreamLoginError as exc:
                return again(exc.message, exc.status)
        if provider is None or not username or not password:
            return again("Choose your institution and enter your username and password.", 400)
        full_name = username if "@" in username else f"{username}@{provider.domain}"
        address = request.client.host if request.client else "unknown"
        reservation = await throttle.reserve(full_name, address)
        if isinstance(reservation, str):
            return again(
                "Too many failed login attempts. Wait a minute and try again."
                if reservation == "global"
                else "Too many failed login attempts for this account. Wait a minute and try "
                "again.",
                429,
            )
        if provider.kind == "ldap":
            try:
                identity = await directory_login(provider, full_name, password)
            except DirectoryUnavailable:
                await throttle.failed()
                return again(
                    f"The directory of {provider.name} cannot be reached right now. Please try "
                    "again in a few minutes.",
                    503,
                )
            if identity is None:
                await throttle.failed()
                return again(wrong_password(provider, username, all_providers), 401)
            await throttle.succeeded(reservation)
            await sessions.log_in(request, ctx, identity)
            return RedirectResponse(next_url, status_code=303)
        async with ctx.db.session() as session:
            identity = await session.scalar(
                select(Identity).where(
                    Identity.username == full_name, Identity.provider_id == provider.id
                )
            )
        password_hash = identity.password_hash if identity is not None else None
        verified = await throttle.check_password(password, password_hash)
        if not verified or identity is None or not identity.active:
            await throttle.failed()
            return again(wrong_password(provider, username, all_providers), 401)
        await throttle.succeeded(reservation)
        await sessions.log_in(request, ctx, identity)
        return RedirectResponse(next_url, status_code=303)

    @router.get("/login/oidc/callback", include_in_schema=False)
    async def upstream_callback(request: Request) -> Response:
        """The browser back from an institution's OpenID provider."""
        all_providers = await providers()
        pending = request.session.get(PENDING_KEY)
        next_url = safe_next(pending.get("next") if isinstance(pending, dict) else None)
        try:
            provider, user, _ = await upstream.finish(
                request, {str(p.id): p for p in all_providers if p.kind == OIDC_KIND}
            )
            identity = await upstream_identity(provider, user)
        except UpstreamLoginError as exc:
            return page(
                request,
                "login.html",
                exc.status,
                providers=all_providers,
                next=next_url,
                selected_idp=str(pending.get("idp")) if isinstance(pending, dict) else None,
                username="",
                error=exc.message,
            )
        await sessions.log_in(request, ctx, identity)
        return RedirectResponse(next_url, status_code=303)

    async def upstream_identity(provider: IdentityProvider, user: UpstreamUser) -> Identity:
        """The identity for a user an OpenID provider vouched for: made on first login and
        bound to the provider's subject from then on."""
        async with ctx.db.session() as session:
            identity = await session.scalar(
                select(Identity).where(Identity.username == user.username)
            )
            if identity is None:
                identity = Identity(
                    provider_id=provider.id,
                    username=user.username,
                    name=user.name,
                    email=user.email,
                    password_hash=None,
                    status="used",
                    created_at=ctx.clock.now(),
                    external_subject=user.subject,
                )
                session.add(identity)
            elif identity.provider_id != provider.id or identity.status == DISABLED:
                raise UpstreamLoginError(f"The account {user.username} cannot log in here.", 403)
            elif identity.external_subject not in (None, user.subject):
                raise UpstreamLoginError(
                    f"The account {user.username} belongs to another person at "
                    f"{provider.name}. Ask an administrator to look into it.",
                    403,
                )
            else:
                # Provisioned by a lookup before the first login, or logging in again.
                identity.external_subject = user.subject
                identity.status = "used"
                identity.name = user.name or identity.name
                identity.email = user.email or identity.email
            await session.flush()
            await session.refresh(identity, ["provider"])
            return identity

    async def directory_login(
        provider: IdentityProvider, full_name: str, password: str
    ) -> Identity | None:
        """Check the password with the provider's directory; the identity (made on first
        login) or None. The password is never stored."""
        local, _, domain = full_name.partition("@")
        if domain != provider.domain:
            return None
        settings = LdapSettings.from_stored(provider.settings or {})
        user = await run_in_threadpool(
            ldap_authenticate, settings, ctx.settings.secret_key or "", local, password
        )
        if user is None:
            return None
        async with ctx.db.session() as session:
            identity = await session.scalar(select(Identity).where(Identity.username == full_name))
            if identity is None:
                identity = Identity(
                    provider_id=provider.id,
                    username=full_name,
                    name=user.name,
                    email=user.email,
                    password_hash=None,
                    status="used",
                    created_at=ctx.clock.now(),
                )
                session.add(identity)
                await session.flush()
            elif identity.provider_id != provider.id or identity.status == DISABLED:
                return None
            elif identity.status != "used":  # provisioned by a lookup before first login
                identity.status = "used"
            await session.flush()
            await session.refresh(identity, ["provider"])
            return identity

    # ------------------------------------------------------------------ authorize

    def error_page(request: Request, title: str, message: str, status: int = 400) -> Response:
        return page(request, "error.html", status, title=title, message=message)

    def oauth_error(
        request: Request, server: ArcternAuthorizationServer, oreq: HttpRequest, error: OAuth2Error
    ) -> Response:
        if error.redirect_uri:
            error.state = oreq.payload.state
            return server.handle_error_response(oreq, error)
        message = error.description or error.error or "Invalid request"
        return error_page(request, "This sign-in request cannot be completed", message)

    def authorize_view(
        request: Request,
        oreq: HttpRequest,
        login: sessions.Login | None,
        decision: str | None,
    ) -> Callable[[ArcternAuthorizationServer], AuthorizeOutcome]:
        """Sync body of the authorize endpoint (runs inside the Authlib session).

        The outcome is a response (redirect with a code or an error, or an error page), a
        ``ConsentNeeded``, or None when the user must log in first.
        """

        identity = login.identity if login is not None else None

        def action(server: ArcternAuthorizationServer) -> AuthorizeOutcome:
            try:
                grant = server.get_consent_grant(oreq, end_user=identity)
            except OAuth2Error as error:
                return oauth_error(request, server, oreq, error)
            if login is None or identity is None:
                return None
            client = grant.request.client
            try:
                # A registered client scope brings its dependent scopes along: the user
                # sees and grants them with it.
                nodes = with_registered_dependencies(
                    server.session, parse_scopes(oreq.payload.scope)
                )
            except ScopeError as exc:  # already rejected by validation; belt and braces
                return error_page(request, "Invalid scope", str(exc))
            try:
                requirements = SessionRequirements.of_request(
                    oreq.payload.data, server.session, nodes
                )
            except RequirementError as exc:
                return error_page(request, "This sign-in request cannot be completed", str(exc))
            missing = shortfall(server.session, identity, login.authentications, requirements)
            if missing is not None:
                return session_update(request, server, missing)
            if decision == "deny":
                return server.create_authorization_response(oreq, grant_user=None, grant=grant)
            if decision == "allow":
                record_consents(server.session, identity.id, client.id, nodes, server.now)
                return server.create_authorization_response(oreq, grant_user=identity, grant=grant)
            prompts = (oreq.payload.data.get("prompt") or "").split()
            if "consent" not in prompts and has_consented(
                server.session, identity.id, client.id, nodes
            ):
                return server.create_authorization_response(oreq, grant_user=identity, grant=grant)
            return ConsentNeeded(client.row, nodes, registered_labels(server.session, nodes))

        return action

    def session_update(
        request: Request, server: ArcternAuthorizationServer, missing: Shortfall
    ) -> AuthorizeOutcome:
        if missing.strangers:
            return error_page(
                request,
                "This sign-in request cannot be completed",
                "The application asks you to log in with an identity that is not linked to "
                "yours. Link it on your account page first, or log in with that identity.",
                403,
            )
        if missing.identities:
            wanted = missing.identities[0]
            return SessionUpdateNeeded(
                missing.login_hint(), str(wanted.provider_id), wanted.username
            )
        domains = missing.domain_groups[0]
        provider = server.session.scalar(
            select(IdentityProvider).where(
                IdentityProvider.domain.in_(domains), IdentityProvider.enabled
            )
        )
        return SessionUpdateNeeded(
            missing.login_hint(), str(provider.id) if provider is not None else None, ""
        )

    def without_prompt_login(request: Request) -> str:
        items = [
            (k, v)
            for k, v in request.query_params.multi_items()
            if not (k == "prompt" and "login" in v.split())
        ]
        return f"{request.url.path}?{urlencode(items)}"

    async def authorize(request: Request, decision: str | None) -> Response:
        oreq = await service.http_request(request)
        identity = await sessions.current_identity(request, ctx)
        prompts = (oreq.payload.data.get("prompt") or "").split()
        if decision is not None and not csrf_ok(request, oreq.form):
            return error_page(
                request,
                "This form has expired",
                "Go back to the application and start the sign-in again.",
                403,
            )
        problem = malformed_parameter(oreq)
        if problem is not None:
            # Authlib cannot even build an error description from such values.
            return error_page(request, "This sign-in request cannot be completed", problem)
        if decision is None and "login" in prompts:
            # Forced re-authentication: validate first, then show the login form.
            identity = None
        login = await sessions.current_login(request, ctx) if identity is not None else None
        result = await service.run(
            request,
            authorize_view(request, oreq, login, decision),
            oauth_request=oreq,
            auth_time=login.auth_time if login is not None else None,
            authentications=login.authentications if login is not None else None,
        )
        if result is None:
            return RedirectResponse(login_url(without_prompt_login(request)), status_code=303)
        if isinstance(result, SessionUpdateNeeded):
            next_url = without_prompt_login(request)
            request.session[LOGIN_HINT_KEY] = {
                "next": next_url,
                "text": result.hint,
                "idp": result.provider_id,
                "username": result.username,
            }
            return RedirectResponse(login_url(next_url), status_code=303)
        if isinstance(result, Response):
            return result
        return consent_page(request, identity, result.client, result.nodes, result.labels)

    def consent_page(
        request: Request,
        identity: Identity | None,
        client: OAuthClient,
        nodes: list[ScopeNode],
        labels: dict[str, str],
    ) -> Response:
        items = []
        for node in nodes:
            items.append(
                {
                    "scope": node.name,
                    "text": labels.get(node.name) or describe(node.name),
                    "dependencies": [
                        labels.get(dep.name) or describe(dep.name) for dep in node.dependencies
                    ],
                    "served": served_here(node.name),
                }
            )
        return page(
            request,
            "consent.html",
            client=client,
            scopes=items,
            action=str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
            current_user=identity.username if identity else None,
        )

    @router.get("/v2/oauth2/authorize", include_in_schema=False)
    async def authorize_get(request: Request) -> Response:
        return await authorize(request, None)

    @router.post("/v2/oauth2/authorize", include_in_schema=False)
    async def authorize_post(request: Request) -> Response:
        form = await request.form()
        decision = form.get("decision")
        return await authorize(request, "allow" if decision == "allow" else "deny")

    # ------------------------------------------------------------------ auth code page

    @router.get("/v2/web/auth-code", include_in_schema=False)
    async def auth_code_page(request: Request) -> Response:
        # Anyone can link to this page with any query, and it looks like ours: it shows only
        # a code this server issued and nobody has used yet, and fixed texts for errors,
        # never text from the URL (a "code" or "error_description" could be a phishing line).
        params = request.query_params
        error = params.get("error")
        if error:
            return page(
                request,
                "auth_code.html",
                400,
                code=None,
                failure=AUTH_CODE_FAILURES.get(error, AUTH_CODE_FAILURE_DEFAULT),
            )
        code = params.get("code")
        if not code or not await is_pending_code(code):
            return error_page(
                request,
                "No authorization code",
                "This page shows the code an application asks you to copy. The link you "
                "followed has no valid code (codes work once and expire). Start the sign-in "
                "from your application to get one.",
            )
        minutes = max(1, ctx.settings.authorization_code_lifetime // 60)
        return page(request, "auth_code.html", code=code, failure=None, minutes=minutes)

    async def is_pending_code(code: str) -> bool:
        if len(code) > 200:
            return False
        async with ctx.db.session() as session:
            row = await session.scalar(
                select(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code))
            )
        return row is not None and not row.used and row.expires_at > ctx.clock.now()

    return router
