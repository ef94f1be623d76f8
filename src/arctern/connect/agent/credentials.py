"""A listening agent's checks of the task credentials its peers present.

Every data connection a peer opens carries its task's credential, and the agent asks the
deployment what that credential opens: one round trip to the deployment per connection. A
task's jobs open their connections together (a batch opens one per parallel group), so
checks of one credential that overlap share a single request, and a valid answer is reused
for ``reuse_seconds``. The cost of reuse is bounded: a credential whose task has ended, or
whose access rule was deleted, still opens new connections for at most that long (the
connections already open live on until they close in any case; every file operation is
still confined by the answer's access guard).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

Answer = dict[str, Any]


class CredentialChecks:
    """``check(token)``: the deployment's answer for a credential, or None if it is not
    valid (or the deployment could not be asked: that is not remembered)."""

    def __init__(
        self,
        ask: Callable[[str], Awaitable[Answer | None]],
        *,
        reuse_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self.reuse_seconds = reuse_seconds
        self._clock = clock
        self._valid: dict[str, tuple[float, Answer]] = {}
        self._asking: dict[str, asyncio.Future[Answer | None]] = {}

    async def check(self, token: str) -> Answer | None:
        # Keyed by a digest: the table never holds the credentials themselves.
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        self._forget_expired(now)
        known = self._valid.get(key)
        if known is not None:
            return known[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask_once(key, token))
            self._asking[key] = asking
        # Shielded: one waiter's cancellation (its connection dropped) must not cancel the
        # request the others wait for.
        return await asyncio.shield(asking)

    async def _ask_once(self, key: str, token: str) -> Answer | None:
        try:
            answer = await self._ask(token)
        finally:
            del self._asking[key]
        if answer is not None and answer.get("valid"):
            self._valid[key] = (self._clock() + self.reuse_seconds, answer)
            return answer
        return None

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, (until, _answer) in self._valid.items() if until <= now]:
            del self._valid[key]
