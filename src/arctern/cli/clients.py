"""Admin commands for OAuth client applications."""

from __future__ import annotations

from typing import Annotated

import typer

from arctern.cli.identity import DatabaseOption, HomeOption, run_admin

app = typer.Typer(help="Manage OAuth client applications.", no_args_is_help=True)


@app.command("create")
def client_create(
    name: Annotated[str, typer.Argument(help="Application name shown on the consent page.")],
    owner: Annotated[str, typer.Option("--owner", help="Username of the owning user.")],
    native: Annotated[
        bool,
        typer.Option(
            "--native/--confidential",
            help="Native (public, PKCE) app, or confidential app with a client secret.",
        ),
    ] = True,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="Allowed redirect URI (repeatable)."),
    ] = None,
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Register an application; prints its client id (and, once, its secret)."""
    from arctern.auth.admin import create_client

    client, secret = run_admin(
        home,
        database,
        lambda ctx: create_client(
            ctx,
            name=name,
            owner_username=owner,
            native=native,
            redirect_uris=list(redirect_uri or []),
        ),
    )
    typer.echo(f"client_id: {client.id}")
    if secret is not None:
        typer.echo(f"client_secret: {secret}")
        typer.echo("Store the secret now: it is not shown again.", err=True)


@app.command("list")
def client_list(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List registered applications (id, type, name, owner)."""
    from sqlalchemy import select

    from arctern.context import AppContext
    from arctern.db.models.auth import Identity, OAuthClient

    async def action(ctx: AppContext) -> list[tuple[OAuthClient, str | None]]:
        async with ctx.db.session() as session:
            rows = await session.execute(
                select(OAuthClient, Identity.username)
                .outerjoin(Identity, Identity.id == OAuthClient.owner_id)
                .order_by(OAuthClient.created_at)
            )
            return [(client, owner) for client, owner in rows]

    for client, owner in run_admin(home, database, action):
        kind = "native" if client.is_public else "confidential"
        typer.echo(f"{client.id}  {kind:<12} {client.name}  ({owner or 'no owner'})")


@app.command("delete")
def client_delete(
    client_id: Annotated[str, typer.Argument(help="The client id to delete.")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Delete an application and everything issued to it (tokens, codes, consents, secrets)."""
    import uuid

    from arctern.auth import registry
    from arctern.context import AppContext
    from arctern.db.models.auth import OAuthClient
    from arctern.errors import InvalidRequest, NotFound

    async def action(ctx: AppContext) -> None:
        try:
            key = uuid.UUID(client_id)
        except ValueError:
            raise InvalidRequest(f"{client_id!r} is not a client id") from None
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {client_id}")
            await registry.delete_client(session, client)

    run_admin(home, database, action)
    typer.echo(f"Deleted client {client_id}")
