"""Admin commands for collections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from arctern.cli.identity import DatabaseOption, HomeOption, run_admin
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.errors import InvalidRequest
from arctern.transfer.services import collections as service

app = typer.Typer(help="Manage collections (storage exposed to users).", no_args_is_help=True)


async def _default_owner(ctx: AppContext) -> str:
    async with ctx.db.session() as session:
        users = list(await session.scalars(select(Identity.username).limit(2)))
    if len(users) != 1:
        raise InvalidRequest("Say who owns the collection with --owner USERNAME")
    return users[0]


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Display name users see.")],
    posix: Annotated[
        Path, typer.Option("--posix", help="Directory exposed as the collection's root.")
    ],
    owner: Annotated[
        str | None, typer.Option("--owner", help="Username of the owner (full access).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Shown in search.")] = "",
    private: Annotated[
        bool, typer.Option("--private", help="Hide from users without an access rule.")
    ] = False,
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create a collection on a local directory and print its UUID."""

    async def action(ctx: AppContext) -> str:
        owner_username = owner or await _default_owner(ctx)
        collection = await service.create_collection(
            ctx,
            name=name,
            root=str(posix.expanduser().absolute()),
            owner_username=owner_username,
            description=description,
            public=not private,
        )
        return str(collection.id)

    typer.echo(run_admin(home, database, action))


@app.command("list")
def list_(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List every collection: UUID, name, owner, storage."""

    async def action(ctx: AppContext) -> list[service.CollectionView]:
        return await service.list_collections(ctx)

    for view in run_admin(home, database, action):
        c = view.collection
        typer.echo(f"{c.id}\t{c.display_name}\t{view.owner_username}\t{c.connector}:{c.root}")
