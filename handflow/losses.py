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

import torch

from handflow.errors import HandflowError
from handflow.model.objective import LossConfig, LossTargets, orthonormal_penalty, pose_terms, rr_keypoints
from handflow.model.pose_params import Y_DIM

__all__ = ["LossConfig", "LossTargets", "handflow_loss", "pose_terms", "orthonormal_penalty", "rr_keypoints"]


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
