"""The ``viewselect`` command line (``viewselect.cli:main``, the console script): the apps and shared options in ``app``, the commands by group. Importing the package registers every command."""

from viewselect.cli import data, rank, multihands, train  # noqa: F401  (each module registers its commands)
from viewselect.cli.app import app, console, err_console, main

__all__ = ["app", "console", "err_console", "main"]
