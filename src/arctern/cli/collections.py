"""Admin commands for collections."""

from __future__ import annotations

import sys
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
        Path | None, typer.Option("--posix", help="Directory exposed as the collection's root.")
    ] = None,
    s3: Annotated[
        str | None,
        typer.Option("--s3", help="S3 bucket (optionally BUCKET/PREFIX) exposed as the root."),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="S3 endpoint URL (default: AWS for the region)."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="S3 region.")] = None,
    access_key_id: Annotated[
        str | None, typer.Option("--access-key-id", help="S3 access key id.")
    ] = None,
    secret_access_key_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-access-key-stdin",
            help="Read the S3 secret access key from the first line of standard input.",
        ),
    ] = False,
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
    """Create a collection on a local directory or an S3 bucket and print its UUID.

    S3 credentials are stored encrypted with the server's secret key and never returned.
    """
    if (posix is None) == (s3 is None):
        typer.echo("Error: give exactly one of --posix DIRECTORY or --s3 BUCKET[/PREFIX]", err=True)
        raise typer.Exit(2)
    if posix is not None and (endpoint_url or region or access_key_id or secret_access_key_stdin):
        typer.echo("Error: S3 options need --s3", err=True)
        raise typer.Exit(2)
    secret = sys.stdin.readline().rstrip("\r\n") if secret_access_key_stdin else None

    async def action(ctx: AppContext) -> str:
        owner_username = owner or await _default_owner(ctx)
        if s3 is not None:
            from arctern.connectors.s3.admin import prepare_s3_collection

            root, options = await prepare_s3_collection(
                s3,
                {
                    "endpoint_url": endpoint_url,
                    "region": region,
                    "access_key_id": access_key_id,
                    "secret_access_key": secret,
                },
                ctx.settings.secret_key or "",
            )
            collection = await service.create_collection(
                ctx,
                name=name,
                root=root,
                connector="s3",
                options=options,
                owner_username=owner_username,
                description=description,
                public=not private,
            )
        else:
            assert posix is not None
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
