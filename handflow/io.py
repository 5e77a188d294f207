"""File I/O that never leaves half-written output and fails with one-line errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from handflow.errors import HandflowError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise HandflowError(f"cannot write {path}: {err.strerror or err}") from err
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600; outputs are ordinary files, so honour the user's umask instead
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def publish_dir(tmp: Path, root: Path, manifest: str) -> Path:
    """Rename the finished folder ``tmp`` to ``root`` and return ``root``.

    A ``root`` whose ``manifest`` file equals ``tmp``'s was published by another process that built the same
    thing meanwhile (a ``rank`` and a ``train-model`` started together on an empty cache): it is kept and
    ``tmp`` discarded, because that process, or a third, may already be reading it. Any other ``root``
    (stale: another version or content) is replaced atomically."""
    import shutil

    if _same_file(root / manifest, tmp / manifest):
        shutil.rmtree(tmp, ignore_errors=True)
        return root
    if root.exists():
        old = root.parent / f".{root.name}.old.{os.getpid()}"
        os.replace(root, old)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.replace(tmp, root)
    except OSError:
        if _same_file(root / manifest, tmp / manifest):  # another process finished in between
            shutil.rmtree(tmp, ignore_errors=True)
            return root
        raise
    return root


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False))


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def read_json(path: str | os.PathLike, expect: type | None = dict) -> Any:
    """Parse a JSON file; NaN/Infinity, emptiness, truncation and a wrong top-level type are errors."""
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HandflowError(f"cannot read {path}: {err}") from err
    if not text.strip():
        raise HandflowError(f"empty JSON file: {path}")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as err:
        raise HandflowError(f"corrupt JSON in {path}: {err}") from err
    if expect is not None and not isinstance(obj, expect):
        raise HandflowError(f"{path}: expected a JSON {expect.__name__}, found {type(obj).__name__}")
    return obj


def check_finite(values, where: str) -> None:
    """Raise if any number in a (nested) list/array is NaN or infinite."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise HandflowError(f"non-finite number in {where}")


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """Hex SHA-256 prefix of a file's bytes (cache keys, provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def safe_name(name: str) -> str:
    """A path component made from a data name (sequence, camera) that cannot escape its folder."""
    s = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    return s if s not in ("", ".", "..") else "_"
