"""The ``arctern`` command line: ``serve``, ``worker``, ``migrate`` and admin commands."""


def main() -> None:
    """Entry point of the ``arctern`` script.

    The command-line application is imported here rather than at module level: the worker's
    helper processes are spawned, and a spawned child re-imports the parent's ``__main__``
    (this script) — which should cost milliseconds, not the whole web stack.
    """
    from arctern.cli.main import main as run

    run()


__all__ = ["main"]
