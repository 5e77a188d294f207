"""A split's decoded crops and training targets on disk, read by batch.

Training reads the same crops every epoch. Decoding the JPEGs and cropping once, into one flat file per
column, keeps the training loop busy with the network; reading each batch's rows with ``os.pread`` (not a
memory map, whose touched pages count as the process's resident memory) keeps the trainer's memory flat
whatever the split's size: a batch costs its own rows, nothing else.

Layout of a store folder (written into a temporary folder and renamed into place, so a store is complete or
absent)::

    meta.json        {"version", "count", "columns": {name: {"dtype", "shape"}}, "skipped_no_mano", ...}
    <column>.bin     count rows of that column, C order, no header

Columns (``S`` = crop size, ``A`` = annotations per image when MultiHands annotations are loaded):

=====================  ===================  ==========================================================
``image``              ``(3, S, S)`` uint8  the crop, RGB
``y``                  ``(218,)``           ground-truth pose parameters (``handflow.model.pose_params``)
``K_crop``             ``(3, 3)``           crop intrinsics, px
``joints_cam_mm``      ``(42, 3)``          ground-truth keypoints, camera frame, mm
``joints_crop_px``     ``(42, 2)``          ground-truth 2D keypoints in the crop, px
``joint_valid``        ``(42,)``            1 = annotated and inside the image
``joint_visible``      ``(42,)``            1 = seen (not occluded)
``R``, ``campos_mm``   ``(3, 3)``, ``(3,)``  the camera (world -> camera ``R (X - campos)``)
``mano_*``             ``(2, 48)`` ...       MANO parameters of both hands (NeuralAnnot convention)
``ann_y``              ``(A, 218)``         MultiHands annotations (ground truth first); padding repeats it
``ann_joints_cam_mm``  ``(A, 42, 3)``       their keypoints, camera frame, mm
``ann_mask``           ``(A,)`` bool        valid annotations
=====================  ===================  ==========================================================
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from handflow.errors import HandflowError
from handflow.io import publish_dir

__all__ = ["CropStore", "StoreWriter", "STORE_VERSION"]

STORE_VERSION = 1
META = "meta.json"


class StoreWriter:
    """Appends rows column by column into a temporary folder; :meth:`finish` renames it to ``path``.

    Arguments:
        path: the store folder to create (must not exist, or is replaced atomically by ``finish``).

    Example:
        >>> w = StoreWriter(path)
        >>> w.append({"image": images_uint8, "y": y})      # (n, 3, S, S), (n, 218)
        >>> store = w.finish({"skipped_no_mano": 0})
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        self.columns: dict[str, dict] = {}
        self.files: dict[str, object] = {}
        self.count = 0

    def append(self, rows: dict[str, torch.Tensor | np.ndarray]) -> None:
        """Append ``n`` rows: every column of the store, each ``(n, *shape)``."""
        n = {len(v) for v in rows.values()}
        if len(n) != 1:
            raise HandflowError(f"store rows: columns of different lengths {sorted(n)}")
        if self.columns and set(rows) != set(self.columns):
            raise HandflowError(f"store rows: columns {sorted(rows)} differ from {sorted(self.columns)}")
        for name, v in rows.items():
            a = np.ascontiguousarray(v.numpy() if isinstance(v, torch.Tensor) else v)
            spec = {"dtype": a.dtype.str, "shape": list(a.shape[1:])}
            if name not in self.columns:
                self.columns[name] = spec
                self.files[name] = open(self.tmp / f"{name}.bin", "wb")
            elif self.columns[name] != spec:
                raise HandflowError(f"store column {name}: rows {spec} differ from {self.columns[name]}")
            self.files[name].write(a.tobytes())
        self.count += n.pop()

    def finish(self, extra: dict | None = None) -> "CropStore":
        for f in self.files.values():
            f.close()
        meta = {"version": STORE_VERSION, "count": self.count, "columns": self.columns, **(extra or {})}
        (self.tmp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return CropStore(publish_dir(self.tmp, self.path, META))

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class CropStore:
    """A finished store folder (see the module doc), read by rows.

    Arguments:
        path: the store folder.

    Example:
        >>> store = CropStore(path)
        >>> batch = store.rows(torch.tensor([5, 1, 9]))   # {"image": (3, 3, S, S) uint8, "y": (3, 218), ...}
        >>> y = store.column("y")                           # (N, 218), the whole column in memory
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.meta = json.loads((self.path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise HandflowError(f"crop store {self.path}: unreadable {META} ({err})") from err
        if self.meta.get("version") != STORE_VERSION:
            raise HandflowError(f"crop store {self.path}: version {self.meta.get('version')} is not {STORE_VERSION}")
        self.count = int(self.meta["count"])
        self._spec = {k: (np.dtype(v["dtype"]), tuple(v["shape"])) for k, v in self.meta["columns"].items()}
        for name, (dt, shape) in self._spec.items():
            size = (self.path / f"{name}.bin").stat().st_size if (self.path / f"{name}.bin").is_file() else -1
            if size != self.count * dt.itemsize * int(np.prod(shape)):
                raise HandflowError(f"crop store {self.path}: {name}.bin holds {size} bytes, "
                                    f"expected {self.count} rows of {shape} {dt}")
        self._fds: dict[str, int] = {}

    def __len__(self) -> int:
        return self.count

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._spec)

    def _fd(self, name: str) -> int:
        if name not in self._fds:
            self._fds[name] = os.open(self.path / f"{name}.bin", os.O_RDONLY)
        return self._fds[name]

    def _row_bytes(self, name: str) -> int:
        dt, shape = self._spec[name]
        return dt.itemsize * int(np.prod(shape))

    def rows(self, idx, columns: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """The rows ``idx`` (any order, ``(n,)``) of ``columns`` (default: all), each ``(n, *shape)``."""
        idx = np.asarray(torch.as_tensor(idx).cpu().numpy(), dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.count):
            raise HandflowError(f"crop store {self.path}: row index out of range 0..{self.count - 1}")
        out = {}
        for name in columns or self.columns:
            dt, shape = self._spec[name]
            nb = self._row_bytes(name)
            buf = bytearray(nb * idx.size)
            fd = self._fd(name)
            for j, i in enumerate(idx.tolist()):
                buf[j * nb:(j + 1) * nb] = os.pread(fd, nb, i * nb)
            out[name] = torch.from_numpy(np.frombuffer(buf, dtype=dt).reshape(idx.size, *shape))
        return out

    def column(self, name: str) -> torch.Tensor:
        """One whole column ``(N, *shape)`` in memory (for the small ones: ``y``, ``ann_mask``)."""
        dt, shape = self._spec[name]
        a = np.fromfile(self.path / f"{name}.bin", dtype=dt).reshape(self.count, *shape)
        return torch.from_numpy(a)

    def load(self) -> dict[str, torch.Tensor]:
        """Every column in memory (small splits: validation, evaluation) plus ``skipped_no_mano``."""
        out = {name: self.column(name) for name in self.columns}
        out["skipped_no_mano"] = torch.tensor(int(self.meta.get("skipped_no_mano", 0)))
        if "no_multihands" in self.meta:
            out["no_multihands"] = torch.tensor(int(self.meta["no_multihands"]))
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
