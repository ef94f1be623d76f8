"""Browser security headers on every response (pages, API answers, errors, static files).

Anti-framing above all: the consent page grants access with one "Allow" click, so no other
site may show any Arctern page in a frame (``X-Frame-Options: DENY`` for old browsers,
``frame-ancestors 'none'`` for current ones). The policy deliberately has no ``form-action``:
browsers apply it to the redirect that follows the consent form, which goes to the
application's own redirect URI, and no ``script-src``: the pages carry small inline scripts.
HSTS is sent only when the public URL is https (over plain http it would be ignored, and a
test or loopback deployment must stay reachable).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(https: bool) -> list[tuple[str, str]]:
    headers = [
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        # Authorization codes and task ids travel in URLs: never send them to other sites.
        ("Referrer-Policy", "no-referrer"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: adds the headers (unless a response set its own) to each reply."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
