"""The ``viewselect`` command line: parses arguments and calls library functions, nothing more.

Every user-facing failure is a ``HandflowError``: printed as one ``error: ...`` line on stderr,
exit code 2. Ctrl-C exits 130 (work already cached or checkpointed stays valid). A command that
finished but skipped some unreadable inputs (``rank`` with missing or truncated images) writes its
outputs, prints one ``warning: ...`` line on stderr and exits 3 (``EXIT_SKIPPED``).

This module: the typer apps, the options several commands share, the exit codes and
``main``; the commands live beside it by group (``data``, ``rank``, ``multihands``, ``train``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from handflow.errors import HandflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which cameras of a hand-capture rig earn their place.")
data_app = typer.Typer(no_args_is_help=True, help="The capture data: synthesise the embedded default, look at frames.")
app.add_typer(data_app, name="data")
hand_app = typer.Typer(no_args_is_help=True, help="The MANO hand model files.")
app.add_typer(hand_app, name="hand")
EXIT_ERROR = 2  # a HandflowError: bad input, nothing (half-)written
EXIT_SKIPPED = 3  # completed, but some inputs were unreadable and skipped (counted in the outputs)
# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def configs_dir() -> Path:
    """The shipped configs: ``configs/`` of the source tree, reached as the package's ``configs``
    (a link in the source tree, a folder in an installed wheel), so any working folder finds them."""
    from importlib import resources

    return Path(str(resources.files("viewselect") / "configs"))

# ---------------------------------------------------------------- options shared by several commands
# Declared once here; a command names its option by its type. Defaults stay with the parameter.
Sequence = Annotated[str, typer.Option(help="Capture0-1, Capture3, Capture0/SEQ_NAME or a comma list.")]
SequenceOrAll = Annotated[Optional[str], typer.Option(
    "--sequence", help="Sequences, e.g. Capture0-1 or Capture0/SEQ (default: the whole split).")]
DataRoot = Annotated[Optional[Path], typer.Option(
    "--data-root", help="InterHand2.6M-layout root (default: the embedded synthetic capture).")]
Split = Annotated[str, typer.Option(help="Split: train, val or test.")]
ModelPath = Annotated[Optional[Path], typer.Option("--model", help="Model checkpoint (default: the shipped model).")]
CompareModel = Annotated[Optional[Path], typer.Option(
    "--compare-model", help="A baseline model whose spread is ranked alongside.")]
ManoDir = Annotated[Optional[Path], typer.Option(
    "--mano-dir", help="Folder with MANO_RIGHT/MANO_LEFT (.pkl or .npz; default: the synthetic MANO).")]
# --frames means one thing everywhere (handflow.data.selection.pick_frames)
Frames = Annotated[Optional[int], typer.Option("--frames", help="N evenly spaced frames per sequence, first and last "
                                               "included (N=1: the first frame; default: all).")]
Cameras = Annotated[Optional[str], typer.Option("--cameras", help="Comma list of camera ids to score (default: all).")]
Drop = Annotated[Optional[int], typer.Option("--drop", help="Drop the K most ambiguous cameras.")]
Keep = Annotated[Optional[int], typer.Option("--keep", help="Keep K cameras.")]
MaxAmbiguity = Annotated[Optional[float], typer.Option(
    "--max-ambiguity", help="Keep cameras whose ambiguity is at most MM.")]
Strategy = Annotated[str, typer.Option(
    help="With --keep: ambiguity (least ambiguous) or coverage (also spread directions).")]
RankSamples = Annotated[int, typer.Option(
    "--samples", help="Poses sampled per image (the same value reuses rank's per-view cache).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the pose samples (and of rank's bootstrap).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu or cuda (default: cuda when available).")]


def print_notes(notes: list[str], prefix: str = "") -> None:
    """One ``note: ...`` line on stderr for each thing a run could not do as asked (``RankOutcome.notes``: what
    the rig cannot define; ``train-model``: a precision this CPU does not run); the exit code stays 0."""
    for note in notes:
        err_console.print(f"note: {prefix}{note}", markup=False, highlight=False, soft_wrap=True)


def config_path(config: str) -> Path:
    """``NAME`` means the shipped ``configs/NAME.toml``; anything else is a path."""
    p = Path(config)
    if p.suffix == "" and not p.exists():
        p = configs_dir() / f"{config}.toml"
    return p


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except HandflowError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_ERROR)
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
    if isinstance(rc, int) and rc:  # typer.Exit(code) inside a command returns the code here
        sys.exit(rc)
