"""The security-headers middleware: anti-framing and friends on every answer, HSTS only
behind an https public URL, and a header a response set itself is left alone."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from arctern.security_headers import SecurityHeadersMiddleware


async def page(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def own_policy(_request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Referrer-Policy": "same-origin"})


def client(*, https: bool) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", page), Route("/own", own_policy)])
    app.add_middleware(SecurityHeadersMiddleware, https=https)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_plain_http_gets_every_header_but_hsts() -> None:
    async with client(https=False) as http:
        response = await http.get("/")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


async def test_https_public_url_adds_hsts() -> None:
    async with client(https=True) as http:
        response = await http.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-frame-options"] == "DENY"


async def test_errors_carry_the_headers_and_own_values_win() -> None:
    async with client(https=True) as http:
        missing = await http.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["x-frame-options"] == "DENY"
        assert (await http.get("/own")).headers["referrer-policy"] == "same-origin"
