"""A round-robin HTTP reverse proxy on loopback: one public URL in front of several API
processes, each request going to the next process (as a load balancer without stickiness)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter

from aiohttp import ClientSession, ClientTimeout, web
from multidict import CIMultiDict

from tests.support.server import free_port

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class RoundRobinProxy:
    """Runs in its own thread and event loop; ``backends`` may be filled in after start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.backends: list[str] = []
        self.served: Counter[str] = Counter()
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with ClientSession(timeout=ClientTimeout(total=120), auto_decompress=False) as http:

            async def handle(request: web.Request) -> web.StreamResponse:
                backend = self.backends[next(self._turn) % len(self.backends)]
                self.served[backend] += 1
                headers = CIMultiDict(
                    (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
                )
                headers["X-Forwarded-Proto"] = request.scheme
                body = await request.read()
                async with http.request(
                    request.method,
                    backend + request.rel_url.raw_path_qs,
                    headers=headers,
                    data=body if body else None,
                    allow_redirects=False,
                ) as upstream:
                    content = await upstream.read()
                    reply = CIMultiDict(
                        (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
                    )
                    return web.Response(status=upstream.status, headers=reply, body=content)

            app = web.Application(client_max_size=64 << 20)
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()
