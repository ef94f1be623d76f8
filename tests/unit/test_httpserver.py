"""The server's HTTP protocol bounds the request head (httptools alone does not): 431 with a
JSON body once the head passes the limit, delivered whole or in pieces, then a lingering
close; heads under the limit and malformed requests behave as uvicorn's own protocol."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from arctern.httpserver import (
    LINGER_BYTES,
    MAX_REQUEST_HEAD,
    BoundedHttpToolsProtocol,
    with_limits,
)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.eof = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def connect() -> tuple[BoundedHttpToolsProtocol, FakeTransport]:
    config = Config(app=app, log_level="warning", lifespan="off")
    protocol = BoundedHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def assert_refused(transport: FakeTransport) -> None:
    head, _, body = transport.written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "RequestHeaderFieldsTooLarge"
    # Lingering close: the answer is sent and the write side shut, the socket stays open
    # to drain what the client is still sending.
    assert transport.eof and not transport.closed


async def test_a_whole_oversized_head_in_one_read_is_refused() -> None:
    protocol, transport = connect()
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert_refused(transport)


async def test_an_oversized_head_arriving_in_pieces_is_refused_at_the_limit() -> None:
    protocol, transport = connect()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    while not transport.written:
        protocol.data_received(b"h" * 8192)
        sent += 8192
    assert sent <= MAX_REQUEST_HEAD + 8192
    assert_refused(transport)
    answer = transport.written
    # The rest of the client's head is read and discarded, then the connection is closed.
    protocol.data_received(b"h" * (LINGER_BYTES // 2))
    assert transport.written == answer and not transport.closed
    protocol.data_received(b"h" * (LINGER_BYTES // 2))
    assert transport.closed


async def test_heads_under_the_limit_and_malformed_requests_are_unchanged() -> None:
    protocol, transport = connect()
    big = b"X-Fine: " + b"f" * (MAX_REQUEST_HEAD - 200) + b"\r\n"
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.written.startswith(b"HTTP/1.1 200 "), transport.written[:100]

    protocol, transport = connect()
    protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 400 "), transport.written[:100]
    assert transport.closed


def connect_with_limits(
    head_timeout: float, max_connections: int = 100, state: ServerState | None = None
) -> tuple[BoundedHttpToolsProtocol, FakeTransport]:
    config = Config(app=app, log_level="warning", lifespan="off")
    protocol = with_limits(head_timeout=head_timeout, max_connections=max_connections)(
        config=config,
        server_state=state or ServerState(),
        app_state={},
        _loop=asyncio.get_running_loop(),
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_head_trickling_past_the_timeout_is_closed() -> None:
    protocol, transport = connect_with_limits(0.2)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for _ in range(5):  # data keeps arriving, but the head never completes
        await asyncio.sleep(0.1)
        if transport.closed:
            break
        protocol.data_received(b"X-Trickle: a\r\n")
    assert transport.closed


async def test_a_complete_head_stops_the_timer_and_idle_keep_alive_rearms_it() -> None:
    protocol, transport = connect_with_limits(0.3)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(100):
        await asyncio.sleep(0.01)
        if transport.written.endswith(b"0\r\n\r\n"):  # the chunked body ended
            break
    assert transport.written.startswith(b"HTTP/1.1 200")
    assert not transport.closed  # kept alive, now idle: the head timer runs again
    await asyncio.sleep(0.6)
    assert transport.closed


async def test_a_connection_over_the_limit_gets_a_json_503() -> None:
    state = ServerState()
    first, first_transport = connect_with_limits(10, max_connections=2, state=state)
    second, second_transport = connect_with_limits(10, max_connections=2, state=state)
    third, third_transport = connect_with_limits(10, max_connections=2, state=state)
    assert not first_transport.written and not second_transport.written
    head, _, body = third_transport.written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable"), head
    assert json.loads(body)["code"] == "ServiceUnavailable"
    assert third_transport.eof
    third.connection_lost(None)
    first.connection_lost(None)
    fourth, fourth_transport = connect_with_limits(10, max_connections=2, state=state)
    assert not fourth_transport.written  # a slot was free again
    for protocol in (second, fourth):
        protocol.connection_lost(None)
