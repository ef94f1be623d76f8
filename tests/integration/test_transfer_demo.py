"""Demo seeding creates the institution, the user and two collections, and is idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from arctern.config import Settings
from arctern.db.migrate import upgrade
from arctern.demo import LARGE_FILE_BYTES, seed_demo


def test_seed_demo_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, demo_password=None, argon2_time_cost=1, argon2_memory_cost=8192
    )
    upgrade(settings.resolved_database_url)
    first = asyncio.run(seed_demo(settings))
    second = asyncio.run(seed_demo(settings))
    assert first == second
    lines = dict(line.split(": ", 1) for line in first)
    assert lines["Demo user"] == "researcher@example.edu"
    assert lines["Demo password"] == (tmp_path / "demo-password").read_text().strip()
    assert lines["Demo Collection 1"] != lines["Demo Collection 2"]
    root = tmp_path / "demo" / "collection1"
    assert (root / "nested" / "dir" / "file.txt").is_file()
    assert (root / "large.bin").stat().st_size == LARGE_FILE_BYTES
    assert (tmp_path / "demo" / "collection2").is_dir()
