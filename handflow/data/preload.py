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


def _multihands_digest(root: Path, split: str) -> str:
    from handflow.io import file_digest
    from handflow.multihands.store import multihands_dir

    files = sorted(multihands_dir(root, split).glob("Capture*/*.npz"))
    return hashlib.sha256("".join(f"{p.parent.name}/{p.name}:{file_digest(p)}" for p in files).encode()).hexdigest()[:16]


def _data_key(root: Path, split: str, crop_px: int, selection: str | None, max_images: int | None,
              annotations: int = 1, max_frames: int | None = None) -> str:
    extra = [annotations, _multihands_digest(root, split), max_frames] if annotations > 1 or max_frames else []
    blob = json.dumps([PRELOAD_VERSION, str(root.resolve()), split, crop_px, selection, max_images,
                       annotation_digest(root, split), *extra])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def preload_split(root: str | Path, split: str, crop_px: int, hand_model, selection: str | None = None,
                  max_images: int | None = None, use_cache: bool = True, annotations: int = 1,
                  max_frames: int | None = None) -> dict[str, torch.Tensor]:
    """Every usable image of a split: ``image (N,3,S,S) uint8``, ``y (N,218)`` ground truth, geometry.

    Images where a hand has no MANO parameters cannot give a ground-truth ``y`` and are skipped;
    their count is returned as ``skipped_no_mano``. ``max_images`` takes an evenly spaced subset,
    ``max_frames`` the first frames of each sequence.

    ``annotations > 1`` also loads up to that many MultiHands annotations per image (``viewselect
    annotate``; ground truth first): ``ann_y (N,A,218)``, ``ann_joints_cam_mm (N,A,42,3)`` and ``ann_mask (N,A)``
    (padding rows repeat the ground truth and are masked). Images of sequences without a MultiHands file
    keep their ground truth only; ``no_multihands`` counts them. A split with no MultiHands file at all
    is an error (annotate it first).
    """
    root = Path(root)
    if annotations > 1:
        from handflow.multihands.store import multihands_dir

        if not any(multihands_dir(root, split).glob("Capture*/*.npz")):
            raise HandflowError(f"no MultiHands annotations for split {split!r} under {root}: run "
                                f"`viewselect annotate --split {split}` first")
    key = _data_key(root, split, crop_px, selection, max_images, annotations, max_frames)
    cache = cache_dir() / "preload" / f"{split}-{key}.pt"
    if use_cache and cache.is_file():
        try:
            return torch.load(cache, weights_only=True)
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    ds = InterHandDataset(root, split, selection=selection, crop_px=crop_px, max_frames=max_frames)
    if len(ds) == 0:
        raise HandflowError(f"split {split!r} under {root} holds no images")
    idx = list(range(len(ds)))
    if max_images is not None and max_images < len(idx):
        idx = torch.linspace(0, len(ds) - 1, max_images).round().long().tolist()
    rows = {k: [] for k in KEYS}
    ann_rows: list[dict | None] = []
    skipped = 0
    for i in track(idx, f"decoding {split} images"):
        s = ds[i]
        if float(s["mano_valid"].min()) < 1:
            skipped += 1
            continue
        for k in KEYS:
            rows[k].append(s[k])
        if annotations > 1:
            ann_rows.append(ds.annotations(i))
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
    if annotations > 1:
        out.update(_annotation_tensors(out, ann_rows, annotations, crop_px, hand_model))
    out["skipped_no_mano"] = torch.tensor(skipped)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            torch.save(out, tmp)
    return out


@torch.no_grad()
def _annotation_tensors(out: dict, ann_rows: list[dict | None], A: int, crop_px: int, hand_model) -> dict:
    """``ann_y``, ``ann_joints_cam_mm``, ``ann_mask`` for the images of ``out`` (see :func:`preload_split`)."""
    N = len(out["y"])
    pose = out["mano_pose"][:, None].repeat(1, A, 1, 1)
    shape = out["mano_shape"][:, None].repeat(1, A, 1, 1)
    trans = out["mano_trans_m"][:, None].repeat(1, A, 1, 1)
    mask = torch.zeros(N, A, dtype=torch.bool)
    mask[:, 0] = True
    missing = 0
    for n, a in enumerate(ann_rows):
        if a is None:
            missing += 1
            continue
        k = min(A, len(a["pose"]))
        pose[n, :k], shape[n, :k], trans[n, :k] = a["pose"][:k], a["shape"][:k], a["trans"][:k]
        mask[n, :k] = True
    ys, js = [], []
    for a in range(0, N, 64):
        sl = slice(a, a + 64)
        b = len(out["y"][sl])
        rep = lambda t: t[sl].repeat_interleave(A, 0)  # noqa: E731  per-image geometry for each annotation
        p, s_, t = (x[sl].reshape(b * A, *x.shape[2:]) for x in (pose, shape, trans))
        ys.append(y_from_mano(p, s_, t, rep(out["R"]), rep(out["campos_mm"]), rep(out["K_crop"]), crop_px,
                              hand_model).reshape(b, A, -1))
        kw = hand_model.keypoints_from_mano(p, s_, t)  # (b*A,42,3) world mm
        kc = (kw - rep(out["campos_mm"])[:, None]) @ rep(out["R"]).transpose(1, 2)
        js.append(kc.reshape(b, A, 42, 3))
    return {"ann_y": torch.cat(ys).float(), "ann_joints_cam_mm": torch.cat(js).float(), "ann_mask": mask,
            "no_multihands": torch.tensor(missing)}
