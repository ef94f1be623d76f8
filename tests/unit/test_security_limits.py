"""Units behind issue #10's input limits: body-limit routing, the rate limiter, JSON refusals,
date overflow, OAuth parameter grammar and the trusted-host rule."""

from __future__ import annotations

import re

import pytest
from starlette.datastructures import Headers
from starlette.responses import Response

from arctern.auth.oauth import HttpRequest, malformed_parameter
from arctern.config import Settings
from arctern.errors import InvalidRequest
from arctern.http_limits import MIB, BodyLimit, RouteLimit, _app_path
from arctern.json_input import InvalidJson, parse_json
from arctern.ratelimit import RateLimiter
from arctern.transfer.filters import parse_datetime


def test_route_limits_apply_below_the_mount_point() -> None:
    limit = BodyLimit(
        lambda *_: None,  # type: ignore[arg-type,return-value]
        render=lambda _r, _l: Response(status_code=413),
        routes=[RouteLimit("POST", re.compile(r"/v0\.10/(transfer|delete)/?"), 100 * MIB)],
    )
    assert limit.limit_for("POST", "/v0.10/transfer") == 100 * MIB
    assert limit.limit_for("POST", "/v0.10/delete/") == 100 * MIB
    assert limit.limit_for("PUT", "/v0.10/transfer") == MIB
    assert limit.limit_for("POST", "/v0.10/bookmark") == MIB
    scope = {"path": "/transfer/v0.10/transfer", "root_path": "/transfer"}
    assert _app_path(scope) == "/v0.10/transfer"


def test_rate_limiter_counts_per_key_and_reopens_after_the_window() -> None:
    now = [1000.0]
    limiter = RateLimiter(3, 60.0, lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") == 60.0
    assert limiter.acquire("b") is None
    assert limiter.acquire("b", 3) is not None  # refused events are not recorded
    assert limiter.acquire("b", 2) is None
    now[0] += 60.0
    assert limiter.acquire("a") is None
    assert RateLimiter(0, 60.0, lambda: 0.0).acquire("a", 10**6) is None


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": "\\ud800"}', b'["\\uDFFF"]', b"{", b"\xff"],
)
def test_hostile_json_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        parse_json(raw)


def test_paired_surrogates_are_ordinary_text() -> None:
    assert parse_json(b'{"s": "\\ud83d\\ude00"}') == {"s": "\U0001f600"}


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_dates_outside_the_calendar_are_bad_requests(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_datetime(text)


def _oauth(**params: str) -> HttpRequest:
    return HttpRequest("GET", "http://x/", Headers({}), list(params.items()), [])


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"scope": "openid urn:globus:auth:scope:x:all[*y]"}, True),
        ({"redirect_uri": "http://localhost:5000/cb?a=b&c=%20"}, True),
        ({"scope": 'openid"'}, False),
        ({"scope": "openid\\"}, False),
        ({"scope": "openidé"}, False),
        ({"redirect_uri": "http://localhost/\u2603"}, False),
        ({"redirect_uri": "http://localhost/ x"}, False),
        ({"state": "a\nb"}, False),
        ({"nonce": "n" * 256}, False),
        ({"state": "s" * 5000}, False),
    ],
)
def test_oauth_parameter_grammar(params: dict[str, str], ok: bool) -> None:
    assert (malformed_parameter(_oauth(**params)) is None) is ok


def test_trusted_hosts_default_to_the_bind_address_and_loopback() -> None:
    assert Settings(host="10.0.0.5").trusted_hosts == frozenset(
        {"10.0.0.5", "localhost", "127.0.0.1", "::1", "[::1]"}
    )
    assert Settings(allowed_hosts=["Data.Example.EDU"]).trusted_hosts == {"data.example.edu"}
