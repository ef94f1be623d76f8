"""Demo data so the tutorial works at once: an institution, a user, two collections."""

from __future__ import annotations

import random
import secrets
from pathlib import Path

from sqlalchemy import select

from arctern.auth import admin
from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.auth import IdentityProvider
from arctern.transfer.services.collections import create_collection, find_collection_by_name

DEMO_IDP = "Example University"
DEMO_DOMAIN = "example.edu"
DEMO_USERNAME = "researcher@example.edu"
DEMO_COLLECTIONS = (("Demo Collection 1", "collection1"), ("Demo Collection 2", "collection2"))
LARGE_FILE_BYTES = 20 * 1024 * 1024

SAMPLE_FILES = {
    "README.txt": "Sample data for the Arctern tutorial.\nCopy it to Demo Collection 2!\n",
    "hello.txt": "Hello from Demo Collection 1.\n",
    "data/numbers.csv": "n,square\n" + "".join(f"{n},{n * n}\n" for n in range(1, 101)),
    "data/notes.md": "# Notes\n\nA small markdown file.\n",
    "nested/dir/file.txt": "A file three levels down.\n",
    "nested/dir/another.txt": "Another file in nested/dir.\n",
    "nested/top.txt": "A file in nested/.\n",
}


def _demo_password(settings: Settings) -> str:
    """The configured demo password, else one generated once and kept in the home."""
    if settings.demo_password:
        return settings.demo_password
    stored = settings.home / "demo-password"
    if stored.exists():
        return stored.read_text().strip()
    password = secrets.token_urlsafe(12)
    stored.write_text(password + "\n")
    stored.chmod(0o600)
    return password


def write_sample_data(root: Path) -> None:
    """Fill a directory with the sample tree (existing files are left alone)."""
    for relative, text in SAMPLE_FILES.items():
        target = root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    large = root / "large.bin"
    if not large.exists() or large.stat().st_size != LARGE_FILE_BYTES:
        # Deterministic bytes, so checksums are reproducible across demo installs.
        large.write_bytes(random.Random(20).randbytes(LARGE_FILE_BYTES))


async def _seed(ctx: AppContext) -> list[str]:
    settings = ctx.settings
    async with ctx.db.session() as session:
        provider = await session.scalar(
            select(IdentityProvider).where(IdentityProvider.name == DEMO_IDP)
        )
    if provider is None:
        await admin.create_identity_provider(ctx, DEMO_IDP, DEMO_DOMAIN)
    password = _demo_password(settings)
    if await admin.get_identity_by_username(ctx, DEMO_USERNAME) is None:
        await admin.create_user(
            ctx, DEMO_USERNAME, password, idp_name=DEMO_IDP, name="Researcher", email=DEMO_USERNAME
        )
    else:
        # Keep the printed password true even if the account existed already.
        await admin.set_password(ctx, DEMO_USERNAME, password)
    lines = [
        f"Demo institution: {DEMO_IDP}",
        f"Demo user: {DEMO_USERNAME}",
        f"Demo password: {password}",
    ]
    for name, directory in DEMO_COLLECTIONS:
        root = settings.home / "demo" / directory
        root.mkdir(parents=True, exist_ok=True)
        if directory == "collection1":
            write_sample_data(root)
        collection = await find_collection_by_name(ctx, name)
        if collection is None:
            collection = await create_collection(
                ctx,
                name=name,
                root=str(root),
                owner_username=DEMO_USERNAME,
                description=f"Tutorial collection ({directory}) on this Arctern server",
                options={},
            )
        lines.append(f"{name}: {collection.id}")
    return lines


async def seed_demo(settings: Settings) -> list[str]:
    """Create what is missing; return lines to print (credentials, collection ids)."""
    ctx = AppContext.from_settings(settings)
    try:
        return await _seed(ctx)
    finally:
        await ctx.db.dispose()
