"""HandFlowNet training losses (the HandFlow paper's §3.2.3, with a root-relative 3D term added).

``L = w_nll*L_nll + w_detmag*L_DetMag + w_y*L_y + w_j3d*L_J3D``
``    + w_j2d*L_J2D(mode) + w_j2d_samples*L_J2D(samples) + w_q*L_q``

Every term is a mean over the images of the batch (and over annotations / samples where there are
several), of the per-image quantity below.

* ``L_nll = -ln p(y*|v)``, mean over the image's valid annotations (MultiHands: all K of them; ``mask``).
  As ProHMR, ``y*`` gets Gaussian noise first, ``nll_noise`` standard deviations of the dataset's
  ``y`` normalisation (``y_std``), i.e. 0.005 σ per dimension by default.
* ``L_DetMag = -ln|det ∂f_v(z)/∂z|``. ``detmag_at = "annotations"`` (default): at ``z* = f_v⁻¹(y*)`` of the
  same noisy annotations as ``L_nll``; ``"samples"``: at base samples ``z ~ N(0, I)`` (the ones used for
  ``L_J2D``). Computed in a separate pass through the flow with the context DETACHED
  (``detach_context=True``), so this term trains the flow but never the image encoder. Note that
  ``L_nll = ½||z*||² + L_DetMag(z*) + const`` at the annotations: the DetMag term with its own weight
  counteracts (part of) the NLL's determinant pull on the flow while the encoder still sees the full NLL.
* ``L_y = ||f_v(0) - y*||²`` with ``y* = y[b, mode_index[b]]`` (one annotation per image, fixed by the
  caller for the whole run), summed over the 218 dims in *normalised* units (``(f_v(0) - y*) / y_std``;
  identical to the raw formula while the normalisation is the identity).
* ``L_J3D = Σ_j ||J(f_v(0))_j - P3D_j||²`` over valid joints, in the camera frame (``J`` places the hands
  with ``t`` and ``s``, as in the paper), in metres. An earlier wrist-relative form left the absolute
  depth to ``L_y`` alone; on the default data the mode then sat ~50 % too far away (Global MPJPE
  ~900 mm against 305 mm for a constant mean-pose predictor), so the absolute form is used.
* ``L_J2D = Σ_j h_j ||P(J(y))_j - P2D_j||²`` over visible joints, crop pixels divided by the crop size S
  (so 1 = one crop width), for the mode (``w_j2d``) and ``n_samples`` samples (``w_j2d_samples``, mean over
  samples). Depths are clamped at ``min_depth_mm`` for the projection so a wild sample cannot divide by 0.
* ``L_q = Σ_{A∈q} ||AᵀA - I||²_F`` over the 32 6D blocks, mean over the mode and the samples.

Default weights start from ProHMR's (``prohmr.yaml``: keypoints_3d 0.05, keypoints_2d 0.01 mode /
0.001 samples, orthonormal 0.1, pose params 0.001, NLL 0.001), rescaled for these units: ProHMR's
keypoint losses are L1 sums (3D in metres, 2D in crop-normalised [-0.5, 0.5] coordinates) while here
they are squared L2 sums (paper eqs. 7-8). At the typical early error (20 mm per joint in 3D, 5 % of
the crop in 2D) the squared forms are ~1/80 (3D) and ~1/40 (2D) of the L1 forms, hence ``w_j3d = 5``
(0.05 x 100) and ``w_j2d = 0.5 / 0.05`` (0.01 / 0.001 x 50). ``w_y = 0.001`` (ProHMR's pose-parameter
weight; in normalised units). ``w_detmag = 0.0005`` = half of ``w_nll``: it counteracts half of the
NLL's determinant pull on the flow (the ablation knob; equal to ``w_nll`` cancels it entirely, leaving
``½||z*||²`` for the flow). These are starting values, not tuned results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from handflow.errors import HandflowError
from handflow.geometry.rotation import rot6d_as_pair
from handflow.model.pose_params import WRIST, Y_DIM, split_y

__all__ = ["LossConfig", "LossTargets", "handflow_loss", "pose_terms", "orthonormal_penalty", "rr_keypoints"]


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


def orthonormal_penalty(y: torch.Tensor) -> torch.Tensor:
    """``Σ ||AᵀA - I||²_F`` over the 32 6D blocks of ``y (...,218)`` -> ``(...)``."""
    A = rot6d_as_pair(split_y(y)["q"])  # (...,2,16,3,2)
    eye = torch.eye(2, dtype=y.dtype, device=y.device)
    return ((A.transpose(-1, -2) @ A - eye) ** 2).sum((-1, -2, -3, -4))


def rr_keypoints(joints: torch.Tensor) -> torch.Tensor:
    """``(...,42,3)`` -> each hand relative to its own wrist (InterHand 20 / 41)."""
    r, l = joints[..., :21, :], joints[..., 21:, :]
    return torch.cat([r - joints[..., WRIST[0] : WRIST[0] + 1, :], l - joints[..., WRIST[1] : WRIST[1] + 1, :]], -2)


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


def handflow_loss(model, ctx: torch.Tensor, tg: LossTargets, cfg: LossConfig | None = None):
    """Total loss and its parts. ``model``: a ``HandFlowNet``; ``ctx = model.encode(images)``.

    Returns ``(total (scalar tensor), parts: dict[str, float])`` with the unweighted terms
    (``nll``, ``detmag``, ``y``, ``j3d``, ``j2d_mode``, ``j2d_samples``, ``q``), ``total`` and, for logging,
    ``mpjpe_rr_mm`` of the mode.
    """
    cfg = cfg or LossConfig()
    y = tg.y
    if y.dim() != 3 or y.shape[-1] != Y_DIM:
        raise HandflowError(f"loss targets: y must be (B, K, {Y_DIM}), found {tuple(y.shape)}")
    B, K, _ = y.shape
    dtype = ctx.dtype
    y = y.to(dtype)
    mask = torch.ones(B, K, dtype=torch.bool, device=y.device) if tg.mask is None else tg.mask.to(torch.bool)
    if not bool(mask.any(1).all()):
        raise HandflowError("loss targets: every image needs at least one valid annotation")
    n_valid = mask.sum(1).to(dtype)

    # --- likelihood terms ---------------------------------------------------------------------------
    y_noisy = y + cfg.nll_noise * model.y_std * torch.randn_like(y) if cfg.nll_noise > 0 else y
    _, _, logp = model.latents(y_noisy, ctx, tg.mask)
    nll = (-(logp * mask).sum(1) / n_valid).mean()

    # --- mode + samples in one f_v pass (row 0: z = 0) --------------------------------------------------
    ns = cfg.n_samples
    z_s = torch.randn(B, ns, Y_DIM, dtype=dtype, device=ctx.device)
    z_all = torch.cat([z_s.new_zeros(B, 1, Y_DIM), z_s], 1)
    y_all, _ = model.sample(ctx, 1 + ns, z_all)

    if cfg.detmag_at == "annotations":
        _, logdet, _ = model.latents(y_noisy, ctx, tg.mask, detach_context=True)
        detmag = (-(logdet * mask).sum(1) / n_valid).mean()
    else:
        z_dm = z_s if ns > 0 else torch.randn(B, 1, Y_DIM, dtype=dtype, device=ctx.device)
        _, logdet = model.inverse(z_dm, ctx, detach_context=True)
        detmag = (-logdet).mean()

    t = pose_terms(model, y_all, tg, cfg)
    l_y, j3d, j3d_rr, j2d_mode, j2d_samples, l_q = (
        t[k] for k in ("y", "j3d", "j3d_rr", "j2d_mode", "j2d_samples", "q"))
    mpjpe = t["mpjpe_rr_mm"]

    total = (
        cfg.w_nll * nll
        + cfg.w_detmag * detmag
        + cfg.w_y * l_y
        + cfg.w_j3d * j3d
        + cfg.w_j3d_rr * j3d_rr
        + cfg.w_j2d * j2d_mode
        + cfg.w_j2d_samples * j2d_samples
        + cfg.w_q * l_q
    )
    parts = {
        "nll": float(nll.detach()),
        "detmag": float(detmag.detach()),
        "y": float(l_y.detach()),
        "j3d": float(j3d.detach()),
        "j3d_rr": float(j3d_rr.detach()),
        "j2d_mode": float(j2d_mode.detach()),
        "j2d_samples": float(j2d_samples.detach()),
        "q": float(l_q.detach()),
        "total": float(total.detach()),
        "mpjpe_rr_mm": float(mpjpe),
    }
    return total, parts
