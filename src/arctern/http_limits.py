"""Request-body limits for every mounted application, enforced before a body is read whole.

``BodyLimit`` is an ASGI middleware: a ``Content-Length`` above the limit is answered at once,
and a body without one (chunked) is counted as it streams, so a route never holds more than
the limit plus one chunk. The 413 is rendered by the application's own error format (a
``TooLargeRenderer``), so Transfer, Auth and the web pages each answer in their dialect.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
DEFAULT_BODY_LIMIT = 1 * MIB

# Renders the 413 for one request: (request, limit in bytes) -> response.
TooLargeRenderer = Callable[[Request, int], Response]


@dataclass(frozen=True)
class RouteLimit:
    """A larger (or smaller) limit for requests whose method and path match."""

    method: str
    path: re.Pattern[str]
    limit: int


class _BodyTooLarge(Exception):
    """Raised from the wrapped ``receive`` once the streamed body passes the limit."""


class BodyLimit:
    """Refuses request bodies larger than the limit for their route, announced or streamed.

    ``skip_prefixes`` leaves paths to mounted applications that enforce their own limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        render: TooLargeRenderer,
        limit: int = DEFAULT_BODY_LIMIT,
        routes: Sequence[RouteLimit] = (),
        skip_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.render = render
        self.limit = limit
        self.routes = tuple(routes)
        self.skip_prefixes = tuple(skip_prefixes)

    def limit_for(self, method: str, path: str) -> int:
        for route in self.routes:
            if route.method == method and route.path.fullmatch(path):
                return route.limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _app_path(scope)
        if self.skip_prefixes and path.startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", "GET"), path)
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await self.render(Request(scope), limit)(scope, receive, send)
            return

        seen = 0
        watch = _ResponseWatch(send)

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, watch.send)
        except _BodyTooLarge:
            if watch.started:  # a streaming route already answered; nothing sensible to add
                raise
            await self.render(Request(scope), limit)(scope, receive, send)


class _ResponseWatch:
    """Passes a response on and notes whether it has begun (a refusal can no longer be
    sent once it has)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _app_path(scope: Scope) -> str:
    """The path below the application's mount point (Starlette keeps the full path)."""
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def too_large_message(limit: int) -> str:
    if limit % MIB == 0:
        return f"The request body exceeds the limit of {limit // MIB} MiB"
    return f"The request body exceeds the limit of {limit} bytes"


# Renders a refused request body: (request, status, message) -> response.
BodyErrorRenderer = Callable[[Request, int, str], Response]
# Inflated bytes handed on per message: the limit below counts them as they stream.
_INFLATE_STEP = 256 * 1024


class _InvalidEncoding(Exception):
    """Raised from the wrapped ``receive`` when a compressed body cannot be inflated."""


class InflateRequests:
    """Accepts request bodies sent with ``Content-Encoding: gzip``, inflating them as they
    stream. Place it outside ``BodyLimit``: the limit then counts inflated bytes, and a small
    body that inflates without end is refused once it passes the limit, never held whole.
    Any other encoding is refused with 415, a corrupt stream with 400.
    """

    def __init__(self, app: ASGIApp, *, render: BodyErrorRenderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = _header(scope, b"content-encoding")
        coding = encoding.strip().lower() if encoding is not None else b"identity"
        if coding == b"identity":
            await self.app(scope, receive, send)
            return
        if coding != b"gzip":
            message = f"Unsupported request Content-Encoding: {coding.decode('latin-1')}"
            await self.render(Request(scope), 415, message)(scope, receive, send)
            return
        # The inflated body's length is not known: the application counts it as it comes.
        headers = [
            (name, value)
            for name, value in scope.get("headers", [])
            if name not in (b"content-encoding", b"content-length")
        ]
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = b""  # compressed input not yet inflated (held back by the step size)
        more = True  # the client has more of the body to send
        watch = _ResponseWatch(send)

        async def inflating_receive() -> Message:
            nonlocal pending, more
            while True:
                if pending:
                    try:
                        chunk = inflater.decompress(pending, _INFLATE_STEP)
                    except zlib.error as exc:
                        raise _InvalidEncoding(str(exc)) from None
                    pending = inflater.unconsumed_tail
                    if chunk:
                        return {"type": "http.request", "body": chunk, "more_body": True}
                if not more:
                    if not inflater.eof:
                        raise _InvalidEncoding("the gzip stream ends early")
                    return {"type": "http.request", "body": b"", "more_body": False}
                message = await receive()
                if message["type"] != "http.request":
                    return message  # a disconnect
                pending += message.get("body", b"")
                more = bool(message.get("more_body", False))

        try:
            await self.app({**scope, "headers": headers}, inflating_receive, watch.send)
        except _InvalidEncoding as exc:
            if watch.started:
                raise
            message = f"The request body is not valid gzip: {exc}"
            await self.render(Request(scope), 400, message)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None
