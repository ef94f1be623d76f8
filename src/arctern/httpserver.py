"""The HTTP/1.1 protocol ``arctern serve`` runs: uvicorn's httptools protocol with a bound on the
request head (request line plus headers), which httptools itself does not have.

A head larger than ``MAX_REQUEST_HEAD`` is answered ``431 Request Header Fields Too Large``
(a JSON error body) as soon as that many bytes of it have arrived, or as soon as it is parsed
when it arrived whole, and the connection is closed. uvicorn's h11 protocol has a bound too
(``h11_max_incomplete_event_size``), but it answers uvicorn's generic plain-text 400, lets a
head that arrives in one read (up to 256 KiB) through, and closes the socket with the rest of
the client's head unread, which resets the connection: a client sending a 1 MiB header got
ECONNRESET instead of the answer. Here the refusal is followed by a lingering close: the write
side is shut down and what the client still sends is read and discarded (for at most
``LINGER_SECONDS`` or ``LINGER_BYTES``). The bound costs nothing measurable, while h11 takes
13 % off ``get_task`` throughput (docs/reliability.md).

It also bounds the time a request head may take: uvicorn has no such limit (its keep-alive
timer is cancelled by the first byte that arrives), so a client trickling one header line
every few seconds held its connection, and its slot, forever. Here a connection that has not
delivered a complete head ``head_timeout`` seconds after it opened, or after its previous
response was sent, is closed; this is also the idle limit of a keep-alive connection.

And it bounds open connections: one over ``max_connections`` is answered ``503`` (a JSON
error body) at once and closed, so slow clients cannot pile up sockets and memory without
limit. (uvicorn's ``limit_concurrency`` would answer its plain-text 503 only once a request
head has arrived, which a trickling client never completes.) ``with_limits`` makes the class
``arctern serve`` hands uvicorn.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Request line plus headers, in bytes: room for long cookies and tokens, nothing more.
MAX_REQUEST_HEAD = 64 << 10
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 << 20
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1000


def _error(status: int, code: str, error: str, message: str) -> bytes:
    return json.dumps(
        {"code": code, "error": error, "message": message, "http_status": status}
    ).encode()


_HEAD_TOO_LARGE = (
    b"431 Request Header Fields Too Large",
    _error(
        431,
        "RequestHeaderFieldsTooLarge",
        "request_header_fields_too_large",
        f"The request line and headers exceed {MAX_REQUEST_HEAD} bytes.",
    ),
)
_TOO_MANY_CONNECTIONS = (
    b"503 Service Unavailable",
    _error(
        503,
        "ServiceUnavailable",
        "service_unavailable",
        "The server has too many open connections. Try again.",
    ),
)


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing request heads over ``MAX_REQUEST_HEAD`` bytes, closing
    connections whose head takes longer than ``head_timeout`` seconds, and refusing
    connections beyond ``max_connections``."""

    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_received: int | None = None  # bytes received since this head began
        self._head_size = 0  # request line plus headers parsed so far
        self._draining: int | None = None  # bytes still read and discarded after a refusal
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(*_TOO_MANY_CONNECTIONS)
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again (unless a pipelined request is already parsed and now runs).
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._draining is not None:
            self._draining -= len(data)
            if self._draining <= 0:
                self.transport.close()
            return
        super().data_received(data)
        # A head still incomplete after this many bytes is too large, whatever follows.
        if (
            self._head_received is not None
            and self._draining is None
            and not self.transport.is_closing()
        ):
            self._head_received += len(data)
            if self._head_received > MAX_REQUEST_HEAD:
                self._refuse(*_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_received = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_received = None
        if self._head_size > MAX_REQUEST_HEAD:  # a whole oversized head in one read
            raise _HeadTooLarge  # the parser raises HttpParserCallbackError: see below
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_size > MAX_REQUEST_HEAD:
            self._refuse(*_HEAD_TOO_LARGE)
        else:
            super().send_400_response(msg)

    def _refuse(self, status_line: bytes, body: bytes) -> None:
        self._cancel_head_timer()
        self._head_received = None
        content = [b"HTTP/1.1 " + status_line + b"\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._draining = LINGER_BYTES
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def with_limits(*, head_timeout: float, max_connections: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these limits (uvicorn instantiates the class itself)."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"head_timeout": head_timeout, "max_connections": max_connections},
    )
