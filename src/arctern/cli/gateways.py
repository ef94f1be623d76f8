"""Admin commands for storage gateways: the storage of one kind on an endpoint, and the
path restrictions that bound every collection on it."""

from __future__ import annotations

from typing import Annotated

import typer

from arctern.cli.identity import DatabaseOption, HomeOption, run_admin
from arctern.context import AppContext
from arctern.transfer.services import gateways as service

app = typer.Typer(
    help="Manage storage gateways (each kind of storage of an endpoint) and their path "
    "restrictions.",
    no_args_is_help=True,
)

EndpointOption = Annotated[
    str,
    typer.Option(
        "--endpoint", help="'builtin' (this deployment's own storage) or a Connect endpoint id."
    ),
]


@app.command("list")
def list_(
    endpoint: EndpointOption = "builtin",
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """List an endpoint's storage gateways: UUID, name, restrictions."""

    async def action(ctx: AppContext) -> list[service.GatewayView]:
        return await service.list_gateways(ctx, await service.endpoint_named(ctx, endpoint))

    for view in run_admin(home, database, action):
        restrict = view.restrict_paths
        shown = (
            "unrestricted"
            if restrict is None
            else "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in restrict.items())
        )
        keys = "\tusers' own credentials" if view.user_credentials_required else ""
        typer.echo(f"{view.id}\t{view.display_name}\t{shown}{keys}")


@app.command("restrict")
def restrict(
    gateway: Annotated[str, typer.Argument(help="Storage gateway UUID ('arctern gateway list').")],
    read: Annotated[
        list[str] | None,
        typer.Option("--read", help="Storage path anyone may read beneath (repeatable)."),
    ] = None,
    read_write: Annotated[
        list[str] | None,
        typer.Option("--read-write", help="Storage path anyone may write beneath (repeatable)."),
    ] = None,
    none: Annotated[
        list[str] | None,
        typer.Option("--none", help="Storage path nobody reaches, whatever else allows it."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove all restrictions.")] = False,
    endpoint: EndpointOption = "builtin",
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Bound every collection of a gateway, for everyone including collection owners:
    only paths beneath --read / --read-write are reachable, nothing beneath --none. Paths
    are in the storage's own terms: host directories for POSIX, /BUCKET/PREFIX for S3."""
    if clear and (read or read_write or none):
        typer.echo("Error: --clear takes no paths", err=True)
        raise typer.Exit(2)
    body = {
        "restrict_paths": None
        if clear
        else {"read": read or [], "read_write": read_write or [], "none": none or []}
    }

    async def action(ctx: AppContext) -> service.GatewayView:
        where = await service.endpoint_named(ctx, endpoint)
        return await service.update_gateway(ctx, where, gateway, body)

    view = run_admin(home, database, action)
    if view.restrict_paths is None:
        typer.echo(f"'{view.display_name}' has no path restrictions.")
    else:
        typer.echo(f"'{view.display_name}' restricted:")
        for kind, paths in view.restrict_paths.items():
            typer.echo(f"  {kind}: {', '.join(paths) or '-'}")


@app.command("user-credentials")
def user_credentials(
    gateway: Annotated[str, typer.Argument(help="S3 storage gateway UUID.")],
    required: Annotated[
        bool,
        typer.Option(
            "--required/--not-required",
            help="Whether each user reaches the bucket with S3 access keys of their own "
            "(registered with 'globus gcs user-credential create s3'), instead of the keys "
            "stored with the collection.",
        ),
    ],
    endpoint: EndpointOption = "builtin",
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Require (or stop requiring) users' own S3 credentials on an S3 gateway."""

    async def action(ctx: AppContext) -> service.GatewayView:
        where = await service.endpoint_named(ctx, endpoint)
        body = {"policies": {"s3_user_credential_required": required}}
        return await service.update_gateway(ctx, where, gateway, body)

    view = run_admin(home, database, action)
    if view.user_credentials_required:
        typer.echo(f"'{view.display_name}': users reach it with their own S3 access keys.")
    else:
        typer.echo(f"'{view.display_name}': users reach it with the collections' stored keys.")
