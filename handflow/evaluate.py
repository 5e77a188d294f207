"""Held-out figures of a model on a split: the mode's MPJPE against a constant predictor, sample spread
(``viewselect evaluate-model``), and the figures against MultiHands annotations (``viewselect evaluate``).

The constant (mean-pose) predictor outputs the training set's mean ``y`` (the model's ``y_mean``
buffer) for every image, lifted with that image's crop camera: the floor a model must beat.
"""

from __future__ import annotations

import math

import torch

from handflow.errors import HandflowError
from handflow.metrics import (DEFAULT_BANDWIDTHS_MM, articulation_masks, closest_farthest, joint_sample_std, mmd, mpjpe,
                              mpjpe_occluded, sample_std)
from handflow.model.pose_params import Y_DIM

ALIGNMENTS = ("global", "rrr", "rr")


class _Means:
    """Per-image values collected over batches; :meth:`result` gives the mean of the finite ones per key."""

    def __init__(self):
        self.parts: dict[str, list[torch.Tensor]] = {}

    def add(self, key: str, value: torch.Tensor) -> None:
        self.parts.setdefault(key, []).append(value.detach().cpu().reshape(-1))

    def result(self) -> dict:
        res = {}
        for k, v in self.parts.items():
            t = torch.cat(v)
            t = t[torch.isfinite(t)]
            res[k] = float(t.mean()) if t.numel() else float("nan")
        return res


def predictions(model, data: dict, n_samples: int, batch: int, seed: int):
    """``(batch slice, device, K_crop, model.predict output)`` over a preloaded split, in eval mode (restored
    afterwards); the noise comes from one generator seeded by ``seed``, drawn in image order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    try:
        for a in range(0, len(data["image"]), batch):
            sl = slice(a, a + batch)
            images = data["image"][sl].to(device).float() / 255.0
            K = data["K_crop"][sl].to(device)
            z = torch.randn(images.shape[0], n_samples, Y_DIM, generator=gen).to(device)
            yield sl, device, K, model.predict(images, K, n_samples=n_samples, z=z)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_split(model, data: dict, n_samples: int = 100, batch: int = 64, seed: int = 0) -> dict:
    """``data``: a preloaded split (``handflow.preload``). Means over images, mm.

    Runs on the model's device and leaves the model in the train/eval mode it had.
    """
    m = _Means()
    for sl, device, K, out in predictions(model, data, n_samples, batch, seed):
        gt, valid = data["joints_cam_mm"][sl].to(device), data["joint_valid"][sl].to(device)
        const = model.lift(model.y_mean.expand(K.shape[0], -1), K)
        for al in ALIGNMENTS:
            m.add(f"mode_mpjpe_{al}_mm", mpjpe(out["mode_joints"], gt, valid, al))
            m.add(f"constant_mpjpe_{al}_mm", mpjpe(const, gt, valid, al))
        m.add("sample_std_mm", sample_std(out["samples_joints"]))
        # articulation spread on the joints the image hides vs those it shows (pooled over joints, no wrists)
        js = joint_sample_std(out["samples_joints"], alignment="rr")  # (b,42)
        m.add("sample_std_rr_mm", js.mean(-1))  # = sample_std(..., alignment="rr")
        vis, occ = articulation_masks(data["joint_visible"][sl].to(device), valid)
        m.add("sample_std_rr_visible_mm", js[vis])
        m.add("sample_std_rr_occluded_mm", js[occ])
    res = m.result()
    vis = res["sample_std_rr_visible_mm"]  # 0 for a model without spread (the regressor): no ratio
    res["occluded_vs_visible_spread"] = res["sample_std_rr_occluded_mm"] / vis if vis > 0 else math.nan
    return {**res, "images": int(len(data["image"])), "samples_per_image": n_samples}


@torch.no_grad()
def evaluate_annotations(model, data: dict, n_samples: int = 100, batch: int = 32, seed: int = 0,
                         bandwidths_mm=DEFAULT_BANDWIDTHS_MM) -> dict:
    """The paper's Tables 1–2 on a preloaded split with MultiHands annotations (``preload_split(...,
    annotations=K)``): per-image figures averaged over images, mm (MMD dimensionless).

    * ``mode_mpjpe_{global,rrr,rr}_mm`` and ``mode_rr_occluded_mm`` (RR*): the mode against the ground truth;
    * ``{closest,farthest}_{global,rrr}_mm``, ``{closest,farthest}_rr_occluded_mm``: the mode against its
      closest / farthest plausible annotation (Table 1; RR* over images with an occluded joint);
    * ``mmd_{global,rrr,rr}``: MMD (not squared) between ``n_samples`` samples and the annotations, Gaussian
      kernels averaged over ``bandwidths_mm`` (Table 2, :func:`handflow.metrics.mmd`);
    * ``sample_std_mm`` / ``sample_std_rr_mm``: mean per-joint sample std; ``annotation_std_mm``: the same
      for the annotations (how much room the images leave).

    Noise comes from one generator seeded by ``seed`` and drawn in image order (deterministic).
    """
    if "ann_joints_cam_mm" not in data:
        raise HandflowError("evaluate_annotations needs MultiHands annotations (preload_split(..., annotations=K))")
    m = _Means()
    add = m.add
    for sl, device, K, out in predictions(model, data, n_samples, batch, seed):
        gt, valid = data["joints_cam_mm"][sl].to(device), data["joint_valid"][sl].to(device) > 0
        visible = data["joint_visible"][sl].to(device) > 0
        ann, amask = data["ann_joints_cam_mm"][sl].to(device), data["ann_mask"][sl].to(device)
        mode, samples = out["mode_joints"], out["samples_joints"]
        for al in ALIGNMENTS:
            add(f"mode_mpjpe_{al}_mm", mpjpe(mode, gt, valid, al))
            add(f"mmd_{al}", mmd(samples, ann, al, bandwidths_mm, annotation_mask=amask, valid=valid, squared=False))
        add("mode_rr_occluded_mm", mpjpe_occluded(mode, gt, visible, valid))
        for al in ("global", "rrr"):
            lo, hi = closest_farthest(mode, ann, amask, al, valid)
            add(f"closest_{al}_mm", lo)
            add(f"farthest_{al}_mm", hi)
        occ = articulation_masks(visible, valid)[1]  # RR*'s joints: hidden, valid, no wrists
        has = occ.any(-1)
        if bool(has.any()):
            lo, hi = closest_farthest(mode[has], ann[has], amask[has], "rr", occ[has])
            add("closest_rr_occluded_mm", lo)
            add("farthest_rr_occluded_mm", hi)
        add("sample_std_mm", sample_std(samples))
        add("sample_std_rr_mm", sample_std(samples, alignment="rr"))
        full = amask.all(-1)  # the annotation spread only where an image has its full set (no padding)
        if bool(full.any()):
            add("annotation_std_mm", sample_std(ann[full]))
    res = m.result()
    res["images"] = int(len(data["image"]))
    res["samples_per_image"] = n_samples
    res["annotations_per_image"] = float(data["ann_mask"].sum(1).float().mean())
    res["bandwidths_mm"] = list(bandwidths_mm)
    return res
