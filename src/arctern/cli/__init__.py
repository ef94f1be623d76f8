"""The ``arctern`` command line: ``serve``, ``worker``, ``migrate`` and admin commands."""

from arctern.cli.main import main

__all__ = ["main"]
