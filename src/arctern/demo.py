"""Demo data so the tutorial works at once: an institution, a user, two collections."""

from __future__ import annotations

from arctern.config import Settings


async def seed_demo(settings: Settings) -> list[str]:
    """Create what is missing; return lines to print (credentials, collection ids)."""
    return []
