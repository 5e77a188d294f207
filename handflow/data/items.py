"""The annotated images of a split as selected rows, columnar (a million rows cost tens of MB, not GB).

Built by :class:`handflow.data.interhand.InterHandDataset` from the split's columnar index
(:mod:`handflow.data.index`): one row per annotated image, sorted by ``(capture, seq, frame, camera)``,
so each sequence is one contiguous slice. ``valid`` and ``visible`` are ``(n, 42)`` float32 in the
42-joint layout of :mod:`handflow.keypoints` (``visible`` only where the capture stores it: the
synthetic capture's ``joint_visible``).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from handflow.keypoints import N_JOINTS


class Items:
    """The dataset's annotated images, columnar (a million rows cost tens of MB, not GB): ``items[i]`` is a
    dict ``capture, seq, camera, frame, file_name, width, height, ann_id, hand_type, valid (42,)``,
    ``visible (42,) | None``, rows sorted by ``(capture, seq, frame, camera)``."""

    _SCALARS = ("capture", "seq", "camera", "frame", "file_name", "width", "height", "ann_id", "hand_type")

    def __init__(self, rows: pl.DataFrame):
        self._n = len(rows)
        self._cols = {k: rows[k].to_numpy() if k in ("capture", "frame") else np.asarray(rows[k].to_list(), dtype=object)
                      for k in self._SCALARS}
        self._valid = _matrix(rows["valid"])  # (n,42) float32
        self._has_visible = rows["visible"].is_not_null().to_numpy()
        self._visible = _matrix(rows["visible"])  # NaN rows where not stored
        self._index_sequences()

    def _index_sequences(self) -> None:
        """Rows of each sequence: a contiguous slice, as rows are sorted."""
        cap, seq = self._cols["capture"], self._cols["seq"]
        starts = np.flatnonzero((cap[1:] != cap[:-1]) | (seq[1:] != seq[:-1])) + 1 if self._n else np.zeros(0, int)
        bounds = [0, *starts.tolist(), self._n]
        self._slices = {(int(cap[a]), str(seq[a])): (a, b) for a, b in zip(bounds, bounds[1:])} if self._n else {}
        self._lookup: dict[tuple[int, str], dict] = {}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict:
        if not -self._n <= i < self._n:
            raise IndexError(i)
        c = self._cols
        return {
            "capture": int(c["capture"][i]), "seq": c["seq"][i], "camera": c["camera"][i], "frame": int(c["frame"][i]),
            "file_name": c["file_name"][i], "width": c["width"][i], "height": c["height"][i],
            "ann_id": json.loads(c["ann_id"][i]), "hand_type": c["hand_type"][i],
            "valid": self._valid[i].astype(np.float64),
            "visible": self._visible[i].astype(np.float64) if self._has_visible[i] else None,
        }

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def file_name(self, i: int) -> str:
        return self._cols["file_name"][i]

    def sequences(self) -> list[tuple[int, str]]:
        return list(self._slices)

    def rows_of(self, capture: int, seq: str) -> range:
        """Rows of one sequence (empty when absent)."""
        return range(*self._slices.get((int(capture), str(seq)), (0, 0)))

    def column(self, name: str, capture: int, seq: str) -> np.ndarray:
        a, b = self._slices.get((int(capture), str(seq)), (0, 0))
        return self._cols[name][a:b]

    def find(self, capture: int, seq: str, camera: str, frame: int) -> int | None:
        """Row of one image (the last annotation of it, as the JSON reader kept), or None."""
        key = (capture, seq)
        if key not in self._lookup:
            a, b = self._slices.get(key, (0, 0))
            cams, frames = self._cols["camera"], self._cols["frame"]
            self._lookup[key] = {(cams[i], int(frames[i])): i for i in range(a, b)}
        return self._lookup[key].get((camera, frame))

    def frame_keys(self) -> set[tuple[int, int]]:
        return set(zip(self._cols["capture"].tolist(), self._cols["frame"].tolist()))

    def take(self, rows: list[int]) -> "Items":
        """The given rows (in order) as a new :class:`Items`."""
        idx = np.asarray(rows, dtype=np.int64)
        out = object.__new__(Items)
        out._n = len(idx)
        out._cols = {k: v[idx] for k, v in self._cols.items()}
        out._valid, out._has_visible, out._visible = self._valid[idx], self._has_visible[idx], self._visible[idx]
        out._index_sequences()
        return out


def _matrix(col: pl.Series) -> np.ndarray:
    """An ``Array(Float32, 42)`` column as ``(n, 42)`` float32 (null rows: NaN)."""
    return col.to_numpy().reshape(len(col), N_JOINTS).astype(np.float32) if len(col) else np.zeros((0, N_JOINTS), np.float32)
