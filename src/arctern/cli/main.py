"""Wires the command groups together; each command is a thin call into a service."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from arctern.cli import clients, collections, connect, endpoints, gateways, identity
from arctern.cli import worker as worker_cli
from arctern.cli.worker import DataAddressOption, DataListenOption
from arctern.config import Settings, ensure_home, load_settings
from arctern.db.migrate import upgrade

app = typer.Typer(
    help="Arctern: a self-hosted research data transfer service that speaks the Globus APIs.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(identity.user_app, name="user")
app.add_typer(identity.idp_app, name="idp")
app.add_typer(collections.app, name="collection")
app.add_typer(clients.app, name="client")
app.add_typer(endpoints.app, name="endpoint")
app.add_typer(gateways.app, name="gateway")
app.add_typer(connect.app, name="connect")
app.command(name="worker")(worker_cli.worker)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="ARCTERN_HOME", help="State directory (default ~/.arctern)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="ARCTERN_DATABASE_URL",
        help="SQLAlchemy URL, e.g. postgresql+asyncpg://user:pw@host/db (default: SQLite in home).",
    ),
]


def prepare(home: Path | None, database: str | None, **overrides: object) -> Settings:
    """Settings for a command: the home exists, the schema is current."""
    settings = ensure_home(load_settings(home=home, database_url=database, **overrides))
    upgrade(settings.resolved_database_url)
    return settings


@app.command()
def serve(
    home: HomeOption = None,
    database: DatabaseOption = None,
    # Flags default to None so that the config file and ARCTERN_* variables apply.
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8765).")] = None,
    public_url: Annotated[
        str | None, typer.Option(help="URL clients use, when behind a reverse proxy.")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Create a demo user and demo collections.")
    ] = False,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker", help="Run the embedded transfer workers (default: yes)."
        ),
    ] = None,
    data_listen: DataListenOption = None,
    data_address: DataAddressOption = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this PEM certificate (chain); needs --tls-key."),
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM private key.")] = None,
) -> None:
    """Start the server: Auth, Transfer, the web UI and (by default) transfer workers."""
    from arctern.app import create_app
    from arctern.demo import seed_demo
    from arctern.httpserver import with_limits

    settings = prepare(
        home,
        database,
        host=host,
        port=port,
        public_url=public_url,
        embedded_worker=worker,
        data_listen=data_listen,
        data_address=data_address,
        tls_certificate=tls_cert,
        tls_private_key=tls_key,
    )
    if bool(settings.tls_certificate) != bool(settings.tls_private_key):
        raise typer.BadParameter("HTTPS needs both --tls-cert and --tls-key")
    _require_free_port(settings.host, settings.port)
    asyncio.run(_share_signing_key(settings))
    if demo:
        lines = asyncio.run(seed_demo(settings))
        for line in lines:
            typer.echo(line)
    typer.echo(f"Arctern is serving on {settings.base_url}")
    typer.echo("Point globus-sdk and globus-cli at it with:")
    typer.echo("  export GLOBUS_SDK_ENVIRONMENT=arctern")
    typer.echo(f"  export GLOBUS_SDK_SERVICE_URL_AUTH={settings.auth_url}")
    typer.echo(f"  export GLOBUS_SDK_SERVICE_URL_TRANSFER={settings.transfer_url}")
    typer.echo(f"  export GLOBUS_SDK_SERVICE_URL_GROUPS={settings.base_url}/groups/")
    typer.echo(f"  export GLOBUS_SDK_SERVICE_URL_TIMER={settings.base_url}/timers/")
    typer.echo(f"File Manager:      {settings.base_url}/files")
    typer.echo(f"Activity:          {settings.base_url}/activity")
    typer.echo(f"Developer console: {settings.base_url}/developers")
    typer.echo("Stop with Ctrl-C.")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=True,
        ssl_certfile=str(settings.tls_certificate) if settings.tls_certificate else None,
        ssl_keyfile=str(settings.tls_private_key) if settings.tls_private_key else None,
        # httptools with bounds: oversized heads get 431 at once, slow ones are closed after
        # http_head_timeout seconds, connections over http_max_connections get 503.
        http=with_limits(
            head_timeout=settings.http_head_timeout,
            max_connections=settings.http_max_connections,
        ),
    )


def _require_free_port(host: str, port: int) -> None:
    """Fail with a helpful message before anything is printed or seeded, rather than with a
    bind error after the banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(
                f"Error: port {port} on {host} is in use ({exc.strerror}) — is Arctern already "
                f"running? Stop it, or choose another port: `arctern serve --port {port + 1}` "
                f"(`make demo PORT={port + 1}`).",
                err=True,
            )
            raise typer.Exit(1) from None


async def _share_signing_key(settings: Settings) -> None:
    from arctern.auth.keys import share_signing_key
    from arctern.context import AppContext

    ctx = AppContext.from_settings(settings)
    try:
        await share_signing_key(ctx)
    except RuntimeError as exc:  # e.g. this host's secret key differs from the others'
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        await ctx.db.dispose()


@app.command()
def migrate(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """Apply database migrations (done automatically by serve and worker too)."""
    settings = prepare(home, database)
    typer.echo(f"Database is up to date: {settings.resolved_database_url}")


def main() -> None:
    app()
