"""The one cache folder: ``$VIEWSELECT_CACHE``, or ``~/.cache/viewselect`` when it is unset or empty.

Everything cached lives in a named sub-folder of it: ``mano/`` (the generated synthetic MANO files),
``data/`` (the synthetic capture), ``index/`` (the columnar annotation indexes), ``crops/`` (training
preloads), ``features/`` (a frozen encoder's features of a preload), ``plan/`` (rigs rendered for ``viewselect plan``) and ``rank/`` (per-view records). Each
owner keys its own entries; this module only says where the cache is.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: ``$VIEWSELECT_CACHE`` (``~`` expanded) or ``~/.cache/viewselect``."""
    env = os.environ.get("VIEWSELECT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "viewselect"
