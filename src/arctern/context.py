"""The dependencies every service is built from, created once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from arctern.clock import Clock
from arctern.config import Settings
from arctern.db.engine import Database


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            clock=Clock(settings.clock_offset_file),
        )
