"""The security-headers middleware: anti-framing and friends on every answer, HSTS only
behind an https public URL, and a header a response set itself is left alone."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from arctern.security_headers import SecurityHeadersMiddleware


async def page(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def own_policy(_request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Referrer-Policy": "same-origin"})


def client(*, https: bool) -> TestClient:
    app = Starlette(routes=[Route("/", page), Route("/own", own_policy)])
    app.add_middleware(SecurityHeadersMiddleware, https=https)
    return TestClient(app)


def test_plain_http_gets_every_header_but_hsts() -> None:
    response = client(https=False).get("/")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


def test_https_public_url_adds_hsts() -> None:
    response = client(https=True).get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-frame-options"] == "DENY"


def test_errors_carry_the_headers_and_own_values_win() -> None:
    test_client = client(https=True)
    missing = test_client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.headers["x-frame-options"] == "DENY"
    assert test_client.get("/own").headers["referrer-policy"] == "same-origin"
