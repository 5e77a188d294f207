"""The objective every pose model trains with: its configuration, one batch of supervision, and the geometric
terms shared by HandFlowNet and the baselines (definitions and weights: :mod:`handflow.losses`).

It sits in the model package so that the baselines, which carry their own loss, use these terms without
importing the training losses above them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

from handflow.errors import HandflowError
from handflow.geometry.rotation import rot6d_as_pair
from handflow.metrics import align
from handflow.model.pose_params import WRIST, Y_DIM, split_y

__all__ = ["LossConfig", "LossTargets", "pose_terms", "orthonormal_penalty", "rr_keypoints"]


@dataclass
class LossConfig:
    w_nll: float = 1e-3
    w_detmag: float = 5e-4
    w_y: float = 1e-3
    w_j3d: float = 5.0
    w_j3d_rr: float = 0.0
    w_j2d: float = 0.5
    w_j2d_samples: float = 0.05
    w_q: float = 0.1
    n_samples: int = 2
    detmag_at: Literal["annotations", "samples"] = "annotations"
    nll_noise: float = 0.005
    min_depth_mm: float = 10.0

    def __post_init__(self):
        if self.detmag_at not in ("annotations", "samples"):
            raise HandflowError(f"loss.detmag_at: {self.detmag_at!r} is not 'annotations' or 'samples'")
        if self.n_samples < 0:
            raise HandflowError(f"loss.n_samples must be >= 0, found {self.n_samples}")
        for name in ("w_nll", "w_detmag", "w_y", "w_j3d", "w_j3d_rr", "w_j2d", "w_j2d_samples", "w_q", "nll_noise"):
            if getattr(self, name) < 0:
                raise HandflowError(f"loss.{name} must be >= 0, found {getattr(self, name)}")


@dataclass
class LossTargets:
    """One batch of supervision (B images, K annotations each).

    ``y (B,K,218)`` annotations (GT + MultiHands); ``mask (B,K)`` valid annotations (None = all);
    ``mode_index (B,)`` the annotation ``L_y`` uses; ``joints_cam_mm (B,42,3)`` 3D keypoints (camera frame)
    of that annotation; ``joints_valid (B,42)`` (None = all); ``joints2d_px (B,42,2)`` in crop pixels;
    ``visible (B,42)``; ``K_crop (B,3,3)``.
    """

    y: torch.Tensor
    mode_index: torch.Tensor
    joints_cam_mm: torch.Tensor
    joints2d_px: torch.Tensor
    visible: torch.Tensor
    K_crop: torch.Tensor
    mask: torch.Tensor | None = None
    joints_valid: torch.Tensor | None = None

    def shifted(self, shift_px: torch.Tensor, K_crop: torch.Tensor, crop_px: int) -> "LossTargets":
        """The same supervision for crops shifted by ``shift_px (B, 2)`` pixels, whose intrinsics are now
        ``K_crop (B, 3, 3)`` (both from ``handflow.geometry.recrop.shift_crops``).

        The camera frame does not move: only what is in crop pixels does. Each annotation's wrist ``t``
        (``2 uv / S - 1``) moves by ``2 d / S`` and the 2D keypoints by ``d``; the depth term ``s`` and the
        rotations stay. A keypoint shifted out of the crop is no longer visible.
        """
        d = shift_px.to(self.joints2d_px.dtype)
        y = self.y.clone()
        split_y(y)["t"].add_((2.0 * d / crop_px).to(y.dtype)[:, None, None])  # a view: both hands, every annotation
        uv = self.joints2d_px + d[:, None]
        inside = ((uv >= -0.5) & (uv <= crop_px - 0.5)).all(-1)
        return replace(self, y=y, joints2d_px=uv, visible=self.visible * inside.to(self.visible.dtype), K_crop=K_crop)


def orthonormal_penalty(y: torch.Tensor) -> torch.Tensor:
    """``Σ ||AᵀA - I||²_F`` over the 32 6D blocks of ``y (...,218)`` -> ``(...)``."""
    A = rot6d_as_pair(split_y(y)["q"])  # (...,2,16,3,2)
    eye = torch.eye(2, dtype=y.dtype, device=y.device)
    return ((A.transpose(-1, -2) @ A - eye) ** 2).sum((-1, -2, -3, -4))


def rr_keypoints(joints: torch.Tensor) -> torch.Tensor:
    """``(...,42,3)`` -> each hand relative to its own wrist (InterHand 20 / 41): the metrics' RR alignment."""
    return align(joints, "rr")


def _project(joints: torch.Tensor, K: torch.Tensor, min_depth: float) -> torch.Tensor:
    """``joints (B,m,42,3)``, ``K (B,3,3)`` -> ``(B,m,42,2)`` px, depth clamped."""
    K = K[:, None, None]
    Z = joints[..., 2].clamp_min(min_depth)
    u = K[..., 0, 0] * joints[..., 0] / Z + K[..., 0, 2]
    v = K[..., 1, 1] * joints[..., 1] / Z + K[..., 1, 2]
    return torch.stack([u, v], -1)


def pose_terms(model, y_all: torch.Tensor, tg: LossTargets, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The geometric terms every model kind trains with, on ``y_all (B,1+m,218)``: row 0 the mode, 1.. samples.

    Returns the unweighted scalar tensors ``y``, ``j3d``, ``j2d_mode``, ``j2d_samples`` (0 when m = 0), ``q``
    (definitions in the module doc) and ``mpjpe_rr_mm`` of the mode (no gradient). ``model`` supplies
    ``y_std``, ``lift`` and ``cfg.crop_px``; shared by ``handflow_loss`` and the baselines.
    """
    B, dtype = y_all.shape[0], y_all.dtype
    y = tg.y.to(dtype)
    S = float(model.cfg.crop_px)
    y_mode = y_all[:, 0]

    # --- mode supervision -------------------------------------------------------------------------------
    idx = tg.mode_index.to(torch.long).to(y.device)
    y_star = y[torch.arange(B, device=y.device), idx]
    l_y = (((y_mode - y_star) / model.y_std) ** 2).sum(-1).mean()

    joints, rel, _ = model.lift(y_all, tg.K_crop.to(dtype), return_parts=True)  # (B,1+m,42,3)
    gt_cam = tg.joints_cam_mm.to(dtype)
    gt_rel = rr_keypoints(gt_cam)
    jv = torch.ones(B, 42, dtype=dtype, device=y.device) if tg.joints_valid is None else tg.joints_valid.to(dtype)
    d3 = ((joints[:, 0] - gt_cam) / 1000.0) ** 2  # metres², camera frame
    j3d = (d3.sum(-1) * jv).sum(-1).mean()
    # Each hand at its own wrist: the articulation alone. The camera-frame term above is dominated by the
    # root depth error (hundreds of mm early on), which leaves the fingers almost no gradient.
    jv_rr = jv * jv[:, list(WRIST)].repeat_interleave(21, 1)  # a joint counts when it and its wrist are valid
    d3_rr = ((rel[:, 0] - gt_rel) / 1000.0) ** 2
    j3d_rr = (d3_rr.sum(-1) * jv_rr).sum(-1).mean()
    with torch.no_grad():
        mpjpe = ((rel[:, 0] - gt_rel).norm(dim=-1) * jv).sum() / jv.sum().clamp_min(1)

    uv = _project(joints, tg.K_crop.to(dtype), cfg.min_depth_mm)  # (B,1+m,42,2)
    vis = tg.visible.to(dtype)[:, None]
    e2 = (((uv - tg.joints2d_px.to(dtype)[:, None]) / S) ** 2).sum(-1) * vis  # (B,1+m,42)
    e2 = e2.sum(-1)
    j2d_mode = e2[:, 0].mean()
    j2d_samples = e2[:, 1:].mean() if y_all.shape[1] > 1 else e2.new_zeros(())

    l_q = orthonormal_penalty(y_all).mean()
    return {"y": l_y, "j3d": j3d, "j3d_rr": j3d_rr, "j2d_mode": j2d_mode, "j2d_samples": j2d_samples, "q": l_q, "mpjpe_rr_mm": mpjpe}
