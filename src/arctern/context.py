"""The dependencies every service is built from, created once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from arctern.clock import Clock
from arctern.config import Settings
from arctern.db.engine import Database
from arctern.ratelimit import RateLimiter


class WorkNotifier:
    """In-process signal from the API to embedded workers that new work was stored.

    Workers in other processes do not hear it and find the work at their next poll.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self) -> None:
        for listener in self._listeners:
            listener()


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    new_work: WorkNotifier = field(default_factory=WorkNotifier)
    # Anonymous globus-cli template clients per client address (in-process counts).
    template_clients: RateLimiter | None = None
    # Identities provisioned through the identities API per user (in-process counts).
    identity_provisions: RateLimiter | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        clock = Clock(settings.clock_offset_file)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            clock=clock,
            template_clients=RateLimiter(
                settings.template_clients_per_address_per_hour, 3600.0, clock.timestamp
            ),
            identity_provisions=RateLimiter(
                settings.identity_provisions_per_hour, 3600.0, clock.timestamp
            ),
        )
