"""Admin commands for collections."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage collections (storage exposed to users).", no_args_is_help=True)
