"""What produced an output: code version, command, config, date. Recorded in everything we write."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from pathlib import Path

import handflow


def code_version() -> str:
    """Package version plus the git commit when running from a checkout (``0.1.0+g1a2b3c4``)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{handflow.__version__}+g{commit}" if commit else handflow.__version__


def provenance(config: dict | None = None, **extra) -> dict:
    """A JSON-able record: version, command line, UTC date, Python/torch versions, config and extras."""
    import torch

    record = {
        "version": code_version(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if config is not None:
        record["config"] = config
    record.update(extra)
    return record
