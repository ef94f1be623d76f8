"""Real HTTP failures between the connector and the store: throttling, server errors, denial.

A small reverse proxy in front of moto answers chosen requests itself with an S3 error body
and forwards the rest, so the connector sees exactly what a struggling S3 endpoint sends.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from arctern.connectors.errors import ObjectNotFound, PermissionDenied, TransientError
from arctern.connectors.s3.connector import MiB, S3Connector
from tests.connectors.conftest import make_bucket, put, s3_options

PART = 5 * MiB

# (method, path, query) -> (status, S3 error code) to answer instead of forwarding, or None.
Rule = Callable[[str, str, str], tuple[int, str] | None]


@dataclass
class FaultProxy:
    url: str
    rule: Rule | None = None
    seen: list[tuple[str, str, str, int]] = field(default_factory=list)


def _error_body(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>injected {code}</Message><RequestId>test</RequestId></Error>"
    ).encode()


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    state = FaultProxy(url="")
    upstream = aiohttp.ClientSession(auto_decompress=False)

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        decision = (
            state.rule(request.method, request.path, request.query_string) if (state.rule) else None
        )
        if decision is not None:
            status, code = decision
            state.seen.append((request.method, request.path, request.query_string, status))
            return web.Response(
                status=status, body=_error_body(code), content_type="application/xml"
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with upstream.request(
            request.method,
            moto_endpoint + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            state.seen.append((request.method, request.path, request.query_string, answer.status))
            skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
            return web.Response(
                status=answer.status,
                body=payload,
                headers={k: v for k, v in answer.headers.items() if k.lower() not in skip},
            )

    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()
    await upstream.close()


@pytest.fixture
async def opened() -> AsyncIterator[list[S3Connector]]:
    connectors: list[S3Connector] = []
    yield connectors
    for connector in connectors:
        await connector.close()


def through(
    proxy: FaultProxy, opened: list[S3Connector], root: str, **extra: object
) -> S3Connector:
    connector = S3Connector(root, s3_options(proxy.url, part_size=PART, **extra))
    opened.append(connector)
    return connector


async def test_throttled_part_upload_is_retried_by_the_client(
    moto_endpoint: str, proxy: FaultProxy, opened: list[S3Connector]
) -> None:
    bucket = await make_bucket(moto_endpoint)
    connector = through(proxy, opened, bucket)
    failures = {"left": 2}

    def slow_down_first_parts(method: str, path: str, query: str) -> tuple[int, str] | None:
        if method == "PUT" and "partNumber=" in query and failures["left"]:
            failures["left"] -= 1
            return 503, "SlowDown"
        return None

    proxy.rule = slow_down_first_parts
    data = os.urandom(PART + 100)
    state = await connector.begin_write("/f", len(data))
    await connector.write(state, 0, data[:PART])
    await connector.write(state, PART, data[PART:])
    await connector.commit_write(state, "/f")
    assert await connector.read("/f", 0, len(data)) == data
    assert [s for *_, s in proxy.seen].count(503) == 2


async def test_persistent_server_errors_become_transient_errors(
    moto_endpoint: str, proxy: FaultProxy, opened: list[S3Connector]
) -> None:
    bucket = await make_bucket(moto_endpoint)
    connector = through(proxy, opened, bucket, max_attempts=1)
    await put(connector, "/f", b"data")
    proxy.rule = lambda method, path, query: (500, "InternalError")
    with pytest.raises(TransientError) as caught:
        await connector.read("/f", 0, 4)
    assert caught.value.retryable
    proxy.rule = lambda method, path, query: (503, "ServiceUnavailable")
    with pytest.raises(TransientError):
        [i async for i in connector.list("/")]


async def test_denied_and_missing_objects(
    moto_endpoint: str, proxy: FaultProxy, opened: list[S3Connector]
) -> None:
    bucket = await make_bucket(moto_endpoint)
    connector = through(proxy, opened, bucket, max_attempts=1)
    await put(connector, "/secret", b"data")
    proxy.rule = lambda method, path, query: (403, "AccessDenied") if method == "GET" else None
    with pytest.raises(PermissionDenied):
        await connector.read("/secret", 0, 4)
    proxy.rule = lambda method, path, query: (
        (404, "NoSuchKey") if method == "GET" and path.endswith("/secret") else None
    )
    with pytest.raises(ObjectNotFound):
        await connector.read("/secret", 0, 4)
