"""A split decoded once into memory as tensors (crops as uint8), cached on disk.

Training reads the same crops every epoch; JPEG decoding and cropping once (and caching the result
keyed by the data manifest and crop size) keeps the training loop busy with the network instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from handflow.data.interhand import InterHandDataset, annotation_digest
from handflow.data.synth import cache_dir
from handflow.errors import HandflowError
from handflow.io import atomic_path
from handflow.model.pose_params import y_from_mano
from handflow.progress import track

KEYS = ("image", "K_crop", "joints_cam_mm", "joints_crop_px", "joint_valid", "joint_visible", "R", "campos_mm",
        "mano_pose", "mano_shape", "mano_trans_m")
PRELOAD_VERSION = 2  # bump whenever the stored ground truth y changes meaning


def _data_key(root: Path, split: str, crop_px: int, selection: str | None, max_images: int | None) -> str:
    blob = json.dumps([PRELOAD_VERSION, str(root.resolve()), split, crop_px, selection, max_images,
                       annotation_digest(root, split)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def preload_split(root: str | Path, split: str, crop_px: int, hand_model, selection: str | None = None,
                  max_images: int | None = None, use_cache: bool = True) -> dict[str, torch.Tensor]:
    """Every usable image of a split: ``image (N,3,S,S) uint8``, ``y (N,218)`` ground truth, geometry.

    Images where a hand has no MANO parameters cannot give a ground-truth ``y`` and are skipped;
    their count is returned as ``skipped_no_mano``. ``max_images`` takes an evenly spaced subset.
    """
    root = Path(root)
    key = _data_key(root, split, crop_px, selection, max_images)
    cache = cache_dir() / "preload" / f"{split}-{key}.pt"
    if use_cache and cache.is_file():
        try:
            return torch.load(cache, weights_only=True)
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    ds = InterHandDataset(root, split, selection=selection, crop_px=crop_px)
    if len(ds) == 0:
        raise HandflowError(f"split {split!r} under {root} holds no images")
    idx = list(range(len(ds)))
    if max_images is not None and max_images < len(idx):
        idx = torch.linspace(0, len(ds) - 1, max_images).round().long().tolist()
    rows = {k: [] for k in KEYS}
    skipped = 0
    for i in track(idx, f"decoding {split} images"):
        s = ds[i]
        if float(s["mano_valid"].min()) < 1:
            skipped += 1
            continue
        for k in KEYS:
            rows[k].append(s[k])
    if not rows["image"]:
        raise HandflowError(f"split {split!r} under {root}: no image has MANO parameters for both hands")
    out = {k: torch.stack(v) for k, v in rows.items()}
    out["image"] = (out["image"] * 255).round().to(torch.uint8)
    ys = []
    with torch.no_grad():
        for a in range(0, len(out["image"]), 512):
            sl = slice(a, a + 512)
            ys.append(y_from_mano(out["mano_pose"][sl], out["mano_shape"][sl], out["mano_trans_m"][sl], out["R"][sl],
                                  out["campos_mm"][sl], out["K_crop"][sl], crop_px, hand_model))
    out["y"] = torch.cat(ys).float()
    out["skipped_no_mano"] = torch.tensor(skipped)
    if use_cache:
        with atomic_path(cache) as tmp:
            torch.save(out, tmp)
    return out
