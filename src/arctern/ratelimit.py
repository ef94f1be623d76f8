"""A small in-process sliding-window rate limiter.

Counts are per API process: with N API processes behind a proxy, a client may reach N times
the limit. That is enough to stop one address from filling the database through an anonymous
call; it is not an accounting mechanism.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key (0 = unlimited)."""

    # Keys idle for a whole window are dropped when the table grows past this.
    _PRUNE_AT = 10_000

    def __init__(self, limit: int, window: float, now: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, count: int = 1) -> float | None:
        """Record ``count`` events for ``key``; None when allowed, else seconds to wait.

        Refused events are not recorded. Check and record happen under one lock, so concurrent
        requests cannot both take the last slot.
        """
        if self.limit <= 0:
            return None
        now = self._now()
        with self._lock:
            if len(self._events) > self._PRUNE_AT:
                self._prune(now)
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) + count > self.limit:
                if not events:
                    return self.window
                return max(1.0, math.ceil(events[0] + self.window - now))
            events.extend([now] * count)
            return None

    def _prune(self, now: float) -> None:
        idle = [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]
        for key in idle:
            del self._events[key]
