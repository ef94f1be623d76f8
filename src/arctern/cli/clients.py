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
