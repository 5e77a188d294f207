"""The ``--mano-dir`` option as a folder: the one place the product picks the default MANO files.

The library has no default MANO folder (the hand model and the reader take one); the product's
default, when ``--mano-dir`` is not given, is the generated synthetic MANO, which the shipped model
and the embedded synthetic capture were made with.
"""

from __future__ import annotations

import os
from pathlib import Path


def mano_folder(mano_dir: str | os.PathLike | None) -> Path:
    """``mano_dir`` as a ``Path``, or (None / empty) the synthetic MANO folder, generated on first use."""
    if mano_dir:
        return Path(mano_dir)
    from handflow.synth.mano import default_mano_dir

    return default_mano_dir()
