"""MultiHands files: one ``.npz`` per sequence beside the split's annotations.

Layout (``root`` is the dataset root)::

    annotations/<split>/InterHand2.6M_<split>_MultiHands/Capture<c>/<sequence>.npz

Arrays (``n`` annotated images of the sequence, ``K`` = the most annotations of any of them):

=================  ================  =========================================================
``camera``         (n,) str          camera id
``frame``          (n,) int64        frame index
``count``          (n,) int32        annotations of the image (1 <= count <= K); rows past it are 0
``pose``           (n,K,2,48) f32    MANO axis-angle, rad, world frame, ``flat_hand_mean=False``
``shape``          (n,K,2,10) f32    MANO betas
``trans``          (n,K,2,3) f32     MANO translation, metres
``meta``           () str            JSON: format, version, config, key, counts, skipped images
=================  ================  =========================================================

Annotation 0 of every image is its ground truth; the rest come from the random walk. Parameters follow
InterHand2.6M's ``MANO_NeuralAnnot`` (right hand index 0, left 1), so any MANO tool reads them. The
files hold plain arrays (``np.load(..., allow_pickle=False)``) and are written atomically: a file either
holds a whole sequence or does not exist.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from handflow.errors import HandflowError
from handflow.io import atomic_path, safe_name

FORMAT = "handflow-multihands/1"
ARRAYS = {"pose": (2, 48), "shape": (2, 10), "trans": (2, 3)}


def multihands_dir(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / split / f"InterHand2.6M_{split}_MultiHands"


def sequence_path(root: str | Path, split: str, capture: int, seq: str) -> Path:
    return multihands_dir(root, split) / f"Capture{int(capture)}" / f"{safe_name(seq)}.npz"


def write_sequence(path: str | Path, camera: list[str], frame: list[int], annotations: list[dict], meta: dict) -> None:
    """``annotations[i]``: ``pose (K_i,2,48)``, ``shape (K_i,2,10)``, ``trans (K_i,2,3)`` of image i."""
    n = len(camera)
    K = max([len(a["pose"]) for a in annotations], default=1)
    out = {"camera": np.asarray(camera, dtype=str).reshape(n), "frame": np.asarray(frame, dtype=np.int64).reshape(n),
           "count": np.asarray([len(a["pose"]) for a in annotations], dtype=np.int32).reshape(n)}
    for k, shp in ARRAYS.items():
        arr = np.zeros((n, K, *shp), dtype=np.float32)
        for i, a in enumerate(annotations):
            arr[i, : len(a[k])] = np.asarray(a[k], dtype=np.float32)
        out[k] = arr
    out["meta"] = np.asarray(json.dumps({"format": FORMAT, **meta}, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **out)


def read_sequence(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and meta of one file, validated (one-line :class:`HandflowError` naming the file otherwise)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise HandflowError(f"missing MultiHands file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise HandflowError(f"{path}: not a readable MultiHands file ({str(err)[:80]})") from None
    missing = [k for k in ("camera", "frame", "count", "meta", *ARRAYS) if k not in arrays]
    if missing:
        raise HandflowError(f"{path}: missing array {missing[0]!r}")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except ValueError:
        raise HandflowError(f"{path}: 'meta' is not JSON") from None
    if meta.get("format") != FORMAT:
        raise HandflowError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    n = arrays["camera"].shape[0]
    K = arrays["pose"].shape[1] if arrays["pose"].ndim == 4 else -1
    for k, shp in ARRAYS.items():
        if arrays[k].shape != (n, K, *shp) or not np.all(np.isfinite(arrays[k])):
            raise HandflowError(f"{path}: array {k!r} has shape {arrays[k].shape} or non-finite values, "
                                f"expected {(n, K, *shp)}")
    c = arrays["count"]
    if arrays["frame"].shape != (n,) or c.shape != (n,) or (n and (c.min() < 1 or c.max() > K)):
        raise HandflowError(f"{path}: 'frame'/'count' do not match {n} images of at most {K} annotations")
    return arrays, meta


class AnnotationReader:
    """The MultiHands annotations of single images of a split, one sequence file read once.

    ``of(capture, seq, camera, frame)``: ground truth first, ``pose (K,2,48)`` rad, ``shape (K,2,10)``,
    ``trans (K,2,3)`` m (world frame, NeuralAnnot semantics) and ``joints_world_mm (K,42,3)`` through
    ``hand_model``; None when the sequence has no file or the file lacks the image (the walk skips
    images without MANO parameters for both hands).
    """

    def __init__(self, root: str | Path, split: str, hand_model):
        self.root, self.split, self.hand_model = Path(root), split, hand_model
        self._files: dict[tuple[int, str], tuple[dict, dict] | None] = {}

    def path(self, capture: int, seq: str) -> Path:
        return sequence_path(self.root, self.split, capture, seq)

    def of(self, capture: int, seq: str, camera: str, frame: int) -> dict | None:
        import torch

        key = (capture, seq)
        if key not in self._files:
            path = self.path(capture, seq)
            if path.is_file():
                arrays, _ = read_sequence(path)
                rows = {(str(c), int(f)): r for r, (c, f) in enumerate(zip(arrays["camera"], arrays["frame"]))}
                self._files[key] = (arrays, rows)
            else:
                self._files[key] = None
        if self._files[key] is None:
            return None
        arrays, rows = self._files[key]
        r = rows.get((str(camera), int(frame)))
        if r is None:
            return None
        n = int(arrays["count"][r])
        out = {k: torch.from_numpy(arrays[k][r, :n].copy()) for k in ("pose", "shape", "trans")}
        with torch.no_grad():
            out["joints_world_mm"] = self.hand_model.keypoints_from_mano(out["pose"], out["shape"], out["trans"]).float()
        return out
