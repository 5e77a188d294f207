"""A split decoded once into a crop store on disk (:mod:`handflow.data.store`), read by batch or whole.

Training reads the same crops every epoch; JPEG decoding and cropping once (keyed by the data manifest
and crop size) keeps the training loop busy with the network instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from handflow.data.index import annotation_digest
from handflow.data.interhand import InterHandDataset
from handflow.cache import cache_dir
from handflow.data.store import CropStore, StoreWriter
from handflow.multihands.store import AnnotationReader, multihands_dir
from handflow.errors import HandflowError
from handflow.hand.model import hand_model_digest
from handflow.model.pose_params import y_from_mano
from handflow.progress import track

KEYS = ("image", "K_crop", "joints_cam_mm", "joints_crop_px", "joint_valid", "joint_visible", "R", "campos_mm",
        "mano_pose", "mano_shape", "mano_trans_m")
# bump whenever the stored ground truth y, or which images a key selects, changes meaning
# (4: --frames / max_frames picks N evenly spaced frames per sequence, no longer the first N)
PRELOAD_VERSION = 4


def _multihands_digest(root: Path, split: str) -> str:
    from handflow.io import file_digest

    files = sorted(multihands_dir(root, split).glob("Capture*/*.npz"))
    return hashlib.sha256("".join(f"{p.parent.name}/{p.name}:{file_digest(p)}" for p in files).encode()).hexdigest()[:16]


def _data_key(root: Path, split: str, crop_px: int, hand_model, selection: str | None, max_images: int | None,
              annotations: int = 1, max_frames: int | None = None) -> str:
    """The store's name: the data, the selection and the hand model (``y``, the annotations' joints and any
    computed visibility are lifted through it)."""
    extra = [annotations, _multihands_digest(root, split), max_frames] if annotations > 1 or max_frames else []
    blob = json.dumps([PRELOAD_VERSION, str(root.resolve()), split, crop_px, selection, max_images,
                       annotation_digest(root, split), hand_model_digest(hand_model), *extra])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def open_split(root: str | Path, split: str, crop_px: int, hand_model, selection: str | None = None,
               max_images: int | None = None, annotations: int = 1, max_frames: int | None = None,
               chunk: int = 256) -> CropStore:
    """Every usable image of a split as a :class:`~handflow.data.store.CropStore` on disk (built on first use).

    The store holds ``image (N,3,S,S) uint8``, ``y (N,218)`` ground truth and the geometry (columns:
    :mod:`handflow.data.store`). It is built streaming, ``chunk`` images at a time, so building and training
    take memory for a chunk or a batch, never for the split. Images where a hand has no MANO parameters
    cannot give a ground-truth ``y`` and are skipped (``meta["skipped_no_mano"]``). ``max_images`` takes an
    evenly spaced subset, ``max_frames`` N evenly spaced frames of each sequence (``--frames``).

    ``annotations > 1`` also stores up to that many MultiHands annotations per image (``viewselect
    annotate``; ground truth first): ``ann_y (N,A,218)``, ``ann_joints_cam_mm (N,A,42,3)`` and ``ann_mask (N,A)``
    (padding rows repeat the ground truth and are masked). Images of sequences without a MultiHands file
    keep their ground truth only (``meta["no_multihands"]``). A split with no MultiHands file at all
    is an error (annotate it first).

    The store is keyed by the data manifest, crop size and selection: a changed dataset gets a new store.
    """
    root = Path(root)
    if annotations > 1:
        if not any(multihands_dir(root, split).glob("Capture*/*.npz")):
            raise HandflowError(f"no MultiHands annotations for split {split!r} under {root}: run "
                                f"`viewselect annotate --split {split}` first")
    key = _data_key(root, split, crop_px, hand_model, selection, max_images, annotations, max_frames)
    path = cache_dir() / "crops" / f"{split}-{key}"
    if (path / "meta.json").is_file():
        try:
            return CropStore(path)
        except HandflowError:  # a damaged store is rebuilt, never trusted
            shutil.rmtree(path, ignore_errors=True)
    # visibility, where the capture stores none, from the MANO files of the hand model in use
    ds = InterHandDataset(root, split, selection=selection, crop_px=crop_px, max_frames=max_frames,
                          mano_dir=getattr(hand_model, "mano_dir", None))
    if len(ds) == 0:
        raise HandflowError(f"split {split!r} under {root} holds no images")
    idx = list(range(len(ds)))
    if max_images is not None and max_images < len(idx):
        idx = torch.linspace(0, len(ds) - 1, max_images).round().long().tolist()
    writer = StoreWriter(path)
    try:
        skipped = missing = 0
        rows = {k: [] for k in KEYS}
        ann_rows: list[dict | None] = []

        def flush():
            nonlocal missing
            if not rows["image"]:
                return
            out = {k: torch.stack(v) for k, v in rows.items()}
            # to uint8 at once: a float copy of a whole split's crops does not fit in memory at scale
            out["image"] = (out["image"] * 255).round().to(torch.uint8)
            with torch.no_grad():
                out["y"] = y_from_mano(out["mano_pose"], out["mano_shape"], out["mano_trans_m"], out["R"],
                                       out["campos_mm"], out["K_crop"], crop_px, hand_model).float()
            if annotations > 1:
                ann = _annotation_tensors(out, ann_rows, annotations, crop_px, hand_model)
                missing += int(ann.pop("no_multihands"))
                out.update(ann)
            writer.append(out)
            for v in rows.values():
                v.clear()
            ann_rows.clear()

        reader = AnnotationReader(root, split, hand_model) if annotations > 1 else None
        for i in track(idx, f"decoding {split} images"):
            s = ds[i]
            if float(s["mano_valid"].min()) < 1:
                skipped += 1
                continue
            for k in KEYS:
                rows[k].append(s[k])
            if reader is not None:
                it = ds.items[i]
                ann_rows.append(reader.of(it["capture"], it["seq"], it["camera"], it["frame"]))
            if len(rows["image"]) >= chunk:
                flush()
        flush()
        if writer.count == 0:
            raise HandflowError(f"split {split!r} under {root}: no image has MANO parameters for both hands")
        extra = {"skipped_no_mano": skipped, "root": str(root), "split": split, "crop_px": crop_px}
        if annotations > 1:
            extra["no_multihands"] = missing
        return writer.finish(extra)
    except BaseException:
        writer.abort()
        raise


def preload_split(root: str | Path, split: str, crop_px: int, hand_model, selection: str | None = None,
                  max_images: int | None = None, annotations: int = 1,
                  max_frames: int | None = None) -> dict[str, torch.Tensor]:
    """:func:`open_split` read whole into memory: ``{column: (N, ...) tensor}`` plus ``skipped_no_mano``
    (and ``no_multihands``). For splits that fit in memory (validation, evaluation); training reads by batch."""
    return open_split(root, split, crop_px, hand_model, selection, max_images, annotations, max_frames).load()


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
