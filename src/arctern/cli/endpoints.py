"""Admin commands for Arctern Connect endpoints (agents on other hosts)."""

from __future__ import annotations

from typing import Annotated

import typer

from arctern.cli.identity import DatabaseOption, HomeOption, run_admin
from arctern.connect import endpoints as service
from arctern.context import AppContext
from arctern.transfer.services import gateways, roles

app = typer.Typer(
    help="Manage Arctern Connect endpoints (agents on other hosts).", no_args_is_help=True
)

EndpointArg = Annotated[str, typer.Argument(help="Endpoint UUID or name.")]


def _print_setup_key(key: str) -> None:
    typer.echo(f"Setup key (shown once, valid {service.SETUP_KEY_LIFETIME.days} day): {key}")
    typer.echo("On the data host run:")
    typer.echo("  arctern connect setup URL --name NAME --home DIR --setup-key-stdin")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name of the endpoint.")],
    owner: Annotated[str, typer.Option("--owner", help="Username of the endpoint's owner.")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create an endpoint and print its UUID and a one-time setup key for the agent."""

    async def action(ctx: AppContext) -> tuple[str, str]:
        endpoint, key = await service.create_endpoint(ctx, name, owner)
        return str(endpoint.id), key

    endpoint_id, key = run_admin(home, database, action)
    typer.echo(f"Endpoint: {endpoint_id}")
    _print_setup_key(key)


@app.command("list")
def list_(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List endpoints: UUID, name, owner, connected, collections."""

    async def action(ctx: AppContext) -> list[service.EndpointView]:
        return await service.list_endpoints(ctx)

    for view in run_admin(home, database, action):
        e = view.endpoint
        state = "connected" if view.connected else "not connected"
        typer.echo(
            f"{e.id}\t{e.display_name}\t{view.owner_username}\t{state}\t{len(view.collections)}"
        )


@app.command("listeners")
def listeners(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List this deployment's workers that accept data connections (ARCTERN_DATA_LISTEN):
    worker, address, certificate fingerprint, live or ended. Agents run with --no-listen
    exchange data with central storage through a live one."""
    from arctern.connect.central_data import list_listeners

    async def action(ctx: AppContext) -> list[tuple[str, str, str, bool]]:
        return await list_listeners(ctx)

    found = run_admin(home, database, action)
    if not found:
        typer.echo("No worker accepts data connections: set ARCTERN_DATA_LISTEN to enable it.")
    for worker, address, fingerprint, live in found:
        typer.echo(f"{worker}\t{address}\t{fingerprint}\t{'live' if live else 'ended'}")


@app.command("show")
def show(endpoint: EndpointArg, home: HomeOption = None, database: DatabaseOption = None) -> None:
    """Show one endpoint and its collections."""

    async def action(ctx: AppContext) -> service.EndpointView:
        return await service.show_endpoint(ctx, endpoint)

    view = run_admin(home, database, action)
    e = view.endpoint
    typer.echo(f"ID:          {e.id}")
    typer.echo(f"Name:        {e.display_name}")
    typer.echo(f"Owner:       {view.owner_username}")
    typer.echo(f"Connected:   {'yes' if view.connected else 'no'}")
    credential = "active" if e.credential_hash else "none (setup key not used yet)"
    typer.echo(f"Credential:  {credential}")
    typer.echo(f"Created:     {e.created_at.isoformat()}")
    typer.echo(f"Parallelism: {e.data_streams or 'deployment default'}")
    typer.echo("Collections:")
    for c in view.collections:
        typer.echo(f"  {c.id}\t{c.display_name}")


@app.command("update")
def update(
    endpoint: EndpointArg,
    parallelism: Annotated[
        int,
        typer.Option(
            "--parallelism",
            min=0,
            max=service.MAX_PARALLELISM,
            help=(
                "Parallel TCP connections of transfers with this endpoint (Globus's preferred "
                "parallelism; the smaller of the two endpoints' applies). 0: the deployment "
                "default (ARCTERN_CONNECT_DATA_STREAMS)."
            ),
        ),
    ],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Change an endpoint's settings."""

    async def action(ctx: AppContext) -> str:
        changed = await service.set_parallelism(ctx, endpoint, parallelism or None)
        return changed.display_name

    name = run_admin(home, database, action)
    shown = parallelism or "the deployment default"
    typer.echo(f"Transfers with endpoint '{name}' use {shown} parallel connections.")


@app.command("delete")
def delete(endpoint: EndpointArg, home: HomeOption = None, database: DatabaseOption = None) -> None:
    """Delete an endpoint: its credential stops working at once, its collections go."""

    async def action(ctx: AppContext) -> str:
        return (await service.delete_endpoint(ctx, endpoint)).display_name

    typer.echo(f"Deleted endpoint '{run_admin(home, database, action)}'")


@app.command("rotate-credentials")
def rotate_credentials(
    endpoint: EndpointArg, home: HomeOption = None, database: DatabaseOption = None
) -> None:
    """Revoke the endpoint's credential now and print a new one-time setup key."""

    async def action(ctx: AppContext) -> tuple[str, str]:
        e, key = await service.rotate_credentials(ctx, endpoint)
        return e.display_name, key

    name, key = run_admin(home, database, action)
    typer.echo(f"The credential of endpoint '{name}' is revoked.")
    _print_setup_key(key)


@app.command("grant-role")
def grant_role(
    endpoint: Annotated[
        str, typer.Argument(help="'builtin' (this deployment's own storage) or an endpoint id.")
    ],
    username: Annotated[str, typer.Argument(help="Username of the identity to grant it to.")],
    role: Annotated[
        str,
        typer.Argument(help="administrator, access_manager, activity_manager or activity_monitor."),
    ],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Grant a role on an endpoint (all its collections): how the built-in endpoint, which
    no user owns, gets administrators. Roles on collections are granted over the API."""

    async def action(ctx: AppContext) -> str:
        target = await gateways.endpoint_named(ctx, endpoint)
        row = await roles.grant_role(ctx, target, username, role)
        return str(row.id)

    role_id = run_admin(home, database, action)
    typer.echo(f"Role {role_id}: {username} is {role} of endpoint {endpoint}.")
