"""Admin commands for users and identity providers."""

from __future__ import annotations

import typer

user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
idp_app = typer.Typer(help="Manage identity providers (institutions).", no_args_is_help=True)
