"""The ``viewselect`` command line: parses arguments and calls library functions, nothing more.

Every user-facing failure is a ``HandflowError``: printed as one ``error: ...`` line on stderr,
exit code 2. Ctrl-C exits 130 (work already cached or checkpointed stays valid).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from handflow.errors import HandflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which cameras of a hand-capture rig earn their place.")
data_app = typer.Typer(no_args_is_help=True, help="The capture data: synthesise the embedded default, look at frames.")
app.add_typer(data_app, name="data")
console = Console()
err_console = Console(stderr=True)


def main() -> None:
    try:
        app(standalone_mode=False)
    except HandflowError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished work is kept; run the same command again to resume", markup=False)
        sys.exit(130)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
