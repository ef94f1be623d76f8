"""Shared page plumbing for the browser UI: rendering, the signed-in user, flashes, CSRF."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from arctern.auth import csrf, sessions
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.transfer.services.common import Caller
from arctern.web.templating import WEB_TEMPLATES, make_templates
from arctern.web.viewfmt import register_filters

_FLASH_KEY = "web_flash"


def caller_of(user: Identity) -> Caller:
    """The logged-in user as the services' caller."""
    return Caller(identity_id=user.id, username=user.username)


class Pages:
    """Renders web templates with what every page needs (user, CSRF token, one-shot notices)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.templates = make_templates(WEB_TEMPLATES / "web")
        register_filters(self.templates.env)

    async def user(self, request: Request) -> Identity | None:
        return await sessions.current_identity(request, self.ctx)

    def render(
        self,
        request: Request,
        template: str,
        *,
        user: Identity | None,
        status_code: int = 200,
        no_store: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        flash = request.session.pop(_FLASH_KEY, None)
        if isinstance(flash, dict):
            context.setdefault("error" if flash.get("error") else "notice", flash.get("text"))
            link = flash.get("link")
            if isinstance(link, list) and len(link) == 2:
                context.setdefault("notice_link", link)
        settings = self.ctx.settings
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "current_user": user.username if user is not None else None,
                "csrf_token": csrf.csrf_token(request),
                "base_url": settings.base_url,
                "auth_url": settings.auth_url,
                "transfer_url": settings.transfer_url,
                **context,
            },
            status_code=status_code,
        )
        if no_store:
            # Pages that may show a secret must not be kept by the browser or a proxy.
            response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def flash(
        request: Request,
        message: str,
        *,
        error: bool = False,
        link: tuple[str, str] | None = None,
    ) -> None:
        """Keep a message (and maybe a link) for the next page this browser renders."""
        request.session[_FLASH_KEY] = {
            "text": message,
            "error": error,
            "link": list(link) if link else None,
        }

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    @staticmethod
    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/auth/login?next={quote(target, safe='')}", status_code=303)

    async def posted_form(self, request: Request) -> tuple[Identity, FormData] | Response:
        """The logged-in user and the posted form, or the response refusing the request
        (a login redirect, or the 403 page when the CSRF token is missing or wrong)."""
        user = await self.user(request)
        if user is None:
            return self.login_redirect(request)
        form = await request.form()
        if (denied := self.csrf_failure(request, form)) is not None:
            return denied
        return user, form

    def csrf_failure(self, request: Request, form: FormData) -> Response | None:
        """None when the form carries this session's CSRF token; otherwise the 403 page."""
        if csrf.csrf_ok(request, form):
            return None
        return self.forbidden(request)

    def forbidden(self, request: Request) -> HTMLResponse:
        return self.render(
            request,
            "message.html",
            user=None,
            status_code=403,
            title="Request rejected",
            heading="This form has expired",
            message="The form was missing its security token or the token did not match your "
            "session. Go back, reload the page and try again.",
        )

    def not_found(self, request: Request, user: Identity | None, what: str) -> HTMLResponse:
        return self.render(
            request,
            "message.html",
            user=user,
            status_code=404,
            title="Not found",
            heading=f"{what} not found",
            message=f"The {what.lower()} does not exist or you do not have access to it.",
        )
