"""The ``arctern worker`` command: a standalone transfer worker sharing the server's database."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from arctern.config import Settings


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
) -> None:
    """Run transfer workers until SIGTERM/SIGINT, then drain (progress kept, leases released)."""
    from arctern.cli.main import prepare

    settings = prepare(home, database, worker_concurrency=concurrency, worker_name=name)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from arctern.context import AppContext
    from arctern.worker.pool import WorkerPool

    ctx = AppContext.from_settings(settings)
    pool = WorkerPool(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ctx.db.listen()  # new work stored by API hosts or other workers wakes this one
    await pool.start()
    typer.echo(
        f"Worker {pool.name} running {pool.concurrency} job(s) at a time on "
        f"{settings.resolved_database_url}",
    )
    try:
        await stop.wait()
        typer.echo("Draining: saving progress and releasing leases…")
        await pool.stop()
    finally:
        await ctx.db.dispose()
    typer.echo("Worker stopped.")
