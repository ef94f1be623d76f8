"""The ``arctern worker`` command: a standalone transfer worker sharing the server's database."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from arctern.config import Settings

DataListenOption = Annotated[
    str | None,
    typer.Option(
        "--data-listen",
        envvar="ARCTERN_DATA_LISTEN",
        help=(
            "HOST:PORT where the workers accept data connections from Arctern Connect agents "
            "run with --no-listen, for their transfers with central POSIX storage."
        ),
    ),
]
DataAddressOption = Annotated[
    str | None,
    typer.Option(
        "--data-address",
        envvar="ARCTERN_DATA_ADDRESS",
        help="HOST:PORT agents connect to, when not the --data-listen address (NAT).",
    ),
]


def worker(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="ARCTERN_HOME", help="State directory (default ~/.arctern)."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            envvar="ARCTERN_DATABASE_URL",
            help="SQLAlchemy URL of the server's database.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs (plans or file batches) run at once.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Worker name shown in leases.")] = None,
    data_listen: DataListenOption = None,
    data_address: DataAddressOption = None,
) -> None:
    """Run transfer workers until SIGTERM/SIGINT, then drain (progress kept, leases released)."""
    from arctern.cli.main import prepare

    settings = prepare(
        home,
        database,
        worker_concurrency=concurrency,
        worker_name=name,
        data_listen=data_listen,
        data_address=data_address,
    )
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from arctern.context import AppContext
    from arctern.heap import settle_heap
    from arctern.worker.pool import WorkerPool

    ctx = AppContext.from_settings(settings)
    pool = WorkerPool(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ctx.db.listen()  # new work stored by API hosts or other workers wakes this one
    await pool.start()
    settle_heap()
    typer.echo(
        f"Worker {pool.name} running {pool.concurrency} job(s) at a time on "
        f"{settings.resolved_database_url}",
    )
    if pool.data_listener is not None:
        typer.echo(
            f"Accepting data connections from Connect agents on {pool.data_listener.address}"
        )
    try:
        await stop.wait()
        typer.echo("Draining: saving progress and releasing leases…")
        await pool.stop()
    finally:
        await ctx.db.dispose()
    typer.echo("Worker stopped.")
