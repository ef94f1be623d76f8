"""Request-body limits for every mounted application, enforced before a body is read whole.

``BodyLimit`` is an ASGI middleware: a ``Content-Length`` above the limit is answered at once,
and a body without one (chunked) is counted as it streams, so a route never holds more than
the limit plus one chunk. The 413 is rendered by the application's own error format (a
``TooLargeRenderer``), so Transfer, Auth and the web pages each answer in their dialect.
"""

from __future__ import annotations

import re
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
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # a streaming route already answered; nothing sensible to add
                raise
            await self.render(Request(scope), limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
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
