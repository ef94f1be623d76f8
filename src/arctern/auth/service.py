"""Per-process auth state (signing key, templates) and the bridge from Starlette to Authlib."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.requests import Request

from arctern.auth.keys import SigningKey, load_or_create_signing_key
from arctern.auth.oauth import ArcternAuthorizationServer, HttpRequest
from arctern.context import AppContext
from arctern.web.templating import make_templates

T = TypeVar("T")
TEMPLATES_DIR = Path(__file__).parent / "templates"
AUTH_CODE_PATH = "v2/web/auth-code"


class AuthService:
    """What every auth route needs: the context, the signing key and the page templates."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.signing_key: SigningKey = load_or_create_signing_key(ctx.settings.home)
        self.templates: Jinja2Templates = make_templates(TEMPLATES_DIR)

    def auth_base(self, request: Request) -> str:
        """The auth service root with a trailing slash, as clients should address it.

        The Host header is the client's to choose, and this URL becomes the OIDC issuer and an
        allowed redirect target for codes; so it comes from the request only when no public
        URL is configured and the host is one of ``settings.trusted_hosts``.
        """
        settings = self.ctx.settings
        if settings.public_url or not self.trusted_host(request):
            return settings.auth_url
        return self.request_auth_base(request)

    def trusted_host(self, request: Request) -> bool:
        return (request.url.hostname or "").lower() in self.ctx.settings.trusted_hosts

    @staticmethod
    def request_auth_base(request: Request) -> str:
        """``<scheme>://<host>/auth/`` as the client addressed us (mount path from root_path)."""
        origin = f"{request.url.scheme}://{request.url.netloc}"
        return origin + request.scope.get("root_path", "").rstrip("/") + "/"

    def issuer(self, request: Request) -> str:
        return self.auth_base(request).rstrip("/")

    def auth_code_pages(self, request: Request) -> frozenset[str]:
        pages = set()
        for base in {self.ctx.settings.auth_url, self.auth_base(request)}:
            pages.add(base + AUTH_CODE_PATH)
            # GLOBUS_SDK_SERVICE_URL_AUTH without its trailing slash makes clients build
            # ".../authv2/web/auth-code"; the main app redirects that path to the real page.
            pages.add(base.rstrip("/") + AUTH_CODE_PATH)
        return frozenset(pages)

    async def http_request(self, request: Request) -> HttpRequest:
        """Read the body now: Authlib's callbacks are synchronous."""
        form: list[tuple[str, str]] = []
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
                parsed = await request.form()
                form = [(k, v) for k, v in parsed.multi_items() if isinstance(v, str)]
        return HttpRequest(
            request.method,
            str(request.url),
            request.headers,
            list(request.query_params.multi_items()),
            form,
        )

    async def run(
        self,
        request: Request,
        action: Callable[[ArcternAuthorizationServer], T],
        *,
        oauth_request: HttpRequest | None = None,
        auth_time: datetime | None = None,
        authentications: dict[str, int] | None = None,
    ) -> T:
        """Run ``action`` against a request-scoped Authlib server inside one DB transaction."""
        if oauth_request is None:
            oauth_request = await self.http_request(request)
        now = self.ctx.clock.now()
        issuer = self.issuer(request)
        pages = self.auth_code_pages(request)
        settings = self.ctx.settings
        key = self.signing_key

        def in_session(session: Session) -> T:
            server = ArcternAuthorizationServer(
                session,
                settings,
                key,
                now,
                issuer=issuer,
                auth_code_pages=pages,
                auth_time=auth_time,
                authentications=authentications,
            )
            server.current_request = oauth_request
            return action(server)

        async with self.ctx.db.session() as session:
            return await session.run_sync(in_session)


def timestamp_to_datetime(value: object) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None
