"""The 218-d pose vector ``y`` of HandFlowNet: ground truth from MANO, and lifting ``y`` to 3D.

Layout (per hand, 109 values; right hand first, then left: ``y = [y_right, y_left]``)::

    q     96  = 16 x 6   6D (Zhou et al.; first two matrix columns, see handflow.geometry.rotation)
                         of the *effective* joint rotations: index 0 = global orientation expressed
                         in the CAMERA frame, 1..15 = finger joints with MANO's hands_mean included
                         (smplx ``flat_hand_mean=False``: R_j = Rodrigues(pose_j + hands_mean_j)).
    beta  10             MANO shape.
    t      2             wrist (root keypoint, InterHand index 20 / 41) in crop pixels, normalised:
                         t = 2 * uv_crop / S - 1   (S = crop size in px; pixel centres at integers).
    s      1             log perspective scale: s = ln((fx_crop / S) * 1000 / Z_root_mm), the log of the
                         normalised focal length over the root depth in metres.
                         Inverse: Z_root_mm = 1000 * fx_crop / (S * exp(s)).

``t`` and ``s`` with ``K_crop`` give the camera-space wrist by back-projection, so lifting ``y`` and
projecting its wrist with ``K_crop`` returns ``t`` exactly (up to float rounding).

Why the log: with the scale itself in ``y``, samples from the flow's tails reached ``s <= 0`` (a hand
at or behind the camera) or near it, i.e. depths of tens of metres, and a handful of those dominated the
sample spread that ranks cameras (validation spread jumped between 0.3 m and 38 m from epoch to epoch).
In log form every sample has a positive depth and a tail of k standard deviations scales the depth by a
bounded factor. :func:`lift_y` still clamps ``s`` to ``[ln 0.1, ln 100]`` (:data:`LOG_S_RANGE`; depths of
``1e4 * fx_crop / S`` to ``10 * fx_crop / S`` mm) so no float overflows; the clamp's gradient is zero
outside. A clamped sample stays on the ray through ``t``, so its projection is still ``t``.

Keypoints are millimetres, camera frame ``X_cam = R @ (X_world - campos)`` (InterHand convention),
42 keypoints in InterHand order (right 0-20, left 21-41, wrist = 20 / 41).
"""

from __future__ import annotations

import torch

from handflow.errors import HandflowError
from handflow.geometry.rotation import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from handflow.keypoints import HAND_SLICES, N_JOINTS
from handflow.keypoints import WRIST as KP_WRIST

__all__ = [
    "Y_DIM", "HAND_DIM", "LOG_S_RANGE", "WRIST", "split_y", "join_y", "rotmats_from_y", "root_from_ts",
    "ts_from_root", "y_from_rotmats", "y_from_mano", "lift_y", "project_crop", "joints_to_world",
    "effective_rotmats", "hands_mean_of",
]

HAND_DIM = 16 * 6 + 10 + 2 + 1  # 109
Y_DIM = 2 * HAND_DIM  # 218
LOG_S_RANGE = (-2.302585092994046, 4.605170185988092)  # ln 0.1, ln 100
WRIST = KP_WRIST  # (20, 41): right and left wrist among the 42 keypoints

_Q = slice(0, 96)
_BETA = slice(96, 106)
_T = slice(106, 108)
_S = 108


def _check_y(y: torch.Tensor) -> None:
    if y.shape[-1] != Y_DIM:
        raise HandflowError(f"pose vector y must have {Y_DIM} values in its last axis, found shape {tuple(y.shape)}")


def split_y(y: torch.Tensor) -> dict[str, torch.Tensor]:
    """``y (..., 218)`` -> ``{'q': (...,2,16,6), 'betas': (...,2,10), 't': (...,2,2), 's': (...,2)}`` (views)."""
    _check_y(y)
    h = y.reshape(*y.shape[:-1], 2, HAND_DIM)
    return {
        "q": h[..., _Q].reshape(*y.shape[:-1], 2, 16, 6),
        "betas": h[..., _BETA],
        "t": h[..., _T],
        "s": h[..., _S],
    }


def join_y(q: torch.Tensor, betas: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_y`.

    ``q (...,2,16,6)``, ``betas (...,2,10)``, ``t (...,2,2)``, ``s (...,2)`` -> ``(..., 218)``.
    """
    lead = q.shape[:-3]
    h = torch.cat([q.reshape(*lead, 2, 96), betas, t, s[..., None]], dim=-1)
    return h.reshape(*lead, Y_DIM)


def rotmats_from_y(y: torch.Tensor) -> torch.Tensor:
    """``(..., 218)`` -> effective rotation matrices ``(..., 2, 16, 3, 3)`` (Gram-Schmidt of the 6D blocks)."""
    return rot6d_to_matrix(split_y(y)["q"])


def _expand_K(K_crop: torch.Tensor, lead: tuple) -> torch.Tensor:
    """Broadcast ``K_crop (*k, 3, 3)`` whose batch shape is a prefix of ``lead`` to ``(*lead, 3, 3)``."""
    if K_crop.shape[-2:] != (3, 3):
        raise HandflowError(f"K_crop must be (..., 3, 3), found {tuple(K_crop.shape)}")
    k = tuple(K_crop.shape[:-2])
    if tuple(lead[: len(k)]) != k:
        raise HandflowError(f"K_crop batch shape {k} does not match the pose batch shape {tuple(lead)}")
    K = K_crop.reshape(*k, *([1] * (len(lead) - len(k))), 3, 3)
    return K.expand(*lead, 3, 3)


def root_from_ts(t: torch.Tensor, s: torch.Tensor, K_crop: torch.Tensor, crop_px: int) -> torch.Tensor:
    """Camera-space wrists ``(..., 2, 3)`` mm from ``t (...,2,2)``, ``s (...,2)`` and ``K_crop (...,3,3)``."""
    S = float(crop_px)
    K = _expand_K(K_crop, tuple(t.shape[:-2]))[..., None, :, :]  # (..., 1, 3, 3)
    fx, fy, cx, cy = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]
    Z = 1000.0 * fx / (S * torch.exp(s.clamp(*LOG_S_RANGE)))
    u = (t[..., 0] + 1.0) * (S / 2.0)
    v = (t[..., 1] + 1.0) * (S / 2.0)
    return torch.stack([(u - cx) / fx * Z, (v - cy) / fy * Z, Z], dim=-1)


def ts_from_root(root_cam_mm: torch.Tensor, K_crop: torch.Tensor, crop_px: int):
    """Inverse of :func:`root_from_ts`: ``root (...,2,3)`` mm -> ``(t (...,2,2), s (...,2))``."""
    S = float(crop_px)
    K = _expand_K(K_crop, tuple(root_cam_mm.shape[:-2]))[..., None, :, :]
    Z = root_cam_mm[..., 2]
    if torch.any(Z <= 0):
        raise HandflowError("a hand root lies at or behind the camera (Z <= 0): cannot build its pose vector")
    u = K[..., 0, 0] * root_cam_mm[..., 0] / Z + K[..., 0, 2]
    v = K[..., 1, 1] * root_cam_mm[..., 1] / Z + K[..., 1, 2]
    t = torch.stack([2.0 * u / S - 1.0, 2.0 * v / S - 1.0], dim=-1)
    s = torch.log((K[..., 0, 0] / S) * 1000.0 / Z)
    return t, s


def y_from_rotmats(
    rotmats: torch.Tensor, betas: torch.Tensor, root_cam_mm: torch.Tensor, K_crop: torch.Tensor, crop_px: int
) -> torch.Tensor:
    """``y`` from effective rotations ``(...,2,16,3,3)`` (global already in camera frame), ``betas (...,2,10)``,
    camera-space wrists ``(...,2,3)`` mm."""
    t, s = ts_from_root(root_cam_mm, K_crop, crop_px)
    return join_y(matrix_to_rot6d(rotmats), betas, t, s)


def hands_mean_of(hand_model, dtype=None, device=None) -> torch.Tensor:
    """``(2, 45)`` MANO hands_mean (right, left) of ``hand_model`` (attribute, buffer or method)."""
    hm = getattr(hand_model, "hands_mean", None)
    if hm is None:
        raise HandflowError("the hand model exposes no hands_mean")
    if callable(hm) and not isinstance(hm, torch.Tensor):
        hm = hm()
    if isinstance(hm, (list, tuple)):
        hm = torch.stack([torch.as_tensor(h) for h in hm])
    hm = torch.as_tensor(hm)
    if hm.numel() != 90:
        raise HandflowError(f"hands_mean must hold 2 x 45 values, found shape {tuple(hm.shape)}")
    return hm.reshape(2, 45).to(dtype=dtype, device=device)


def effective_rotmats(pose: torch.Tensor, hands_mean: torch.Tensor, R_cam: torch.Tensor | None = None) -> torch.Tensor:
    """MANO axis-angle ``pose (B,2,48)`` -> effective rotations ``(B,2,16,3,3)``.

    Fingers: ``Rodrigues(pose[3:] + hands_mean)`` (``flat_hand_mean=False``); global: ``Rodrigues(pose[:3])``,
    left-multiplied by ``R_cam (B,3,3)`` when given (world -> camera frame).
    """
    B = pose.shape[0]
    aa = pose.reshape(B, 2, 16, 3).clone()
    aa[:, :, 1:] = aa[:, :, 1:] + hands_mean.reshape(1, 2, 15, 3).to(aa)
    R = axis_angle_to_matrix(aa)
    if R_cam is not None:
        glob = R_cam.to(R)[:, None] @ R[:, :, 0]
        R = torch.cat([glob[:, :, None], R[:, :, 1:]], dim=2)
    return R


def y_from_mano(
    pose: torch.Tensor,
    betas: torch.Tensor,
    trans_m: torch.Tensor,
    R_cam: torch.Tensor,
    campos_mm: torch.Tensor,
    K_crop: torch.Tensor,
    crop_px: int,
    hand_model,
) -> torch.Tensor:
    """Ground-truth ``y (B, 218)`` from world-frame MANO parameters (InterHand NeuralAnnot semantics).

    ``pose (B,2,48)`` rad axis-angle, ``betas (B,2,10)``, ``trans_m (B,2,3)`` metres (right, left);
    camera ``R_cam (B,3,3)``, ``campos_mm (B,3)``; crop intrinsics ``K_crop (B,3,3)``, crop size ``crop_px``.
    The root is each hand's wrist keypoint from ``hand_model.keypoints_from_mano`` moved to camera coords.
    """
    if pose.shape[-2:] != (2, 48) or betas.shape[-2:] != (2, 10) or trans_m.shape[-2:] != (2, 3):
        raise HandflowError(
            f"y_from_mano expects pose (B,2,48), betas (B,2,10), trans (B,2,3); found "
            f"{tuple(pose.shape)}, {tuple(betas.shape)}, {tuple(trans_m.shape)}"
        )
    hm = hands_mean_of(hand_model, dtype=pose.dtype, device=pose.device)
    rot = effective_rotmats(pose, hm, R_cam)
    kp_world = hand_model.keypoints_from_mano(pose, betas, trans_m)  # (B,42,3) mm, world
    wrists = kp_world[:, list(WRIST)]  # (B,2,3)
    R = R_cam.to(wrists)
    root_cam = (wrists - campos_mm.to(wrists)[:, None]) @ R.transpose(-1, -2)
    return y_from_rotmats(rot, betas.to(rot), root_cam, K_crop.to(rot), crop_px)


def lift_y(y: torch.Tensor, K_crop: torch.Tensor, crop_px: int, hand_model, return_parts: bool = False):
    """``y (..., 218)`` -> camera-space keypoints ``(..., 42, 3)`` mm.

    ``K_crop`` is ``(*k, 3, 3)`` with ``k`` a prefix of ``y``'s batch shape (e.g. ``y (B,n,218)`` with
    ``K_crop (B,3,3)``). With ``return_parts`` also returns the root-relative keypoints ``(...,42,3)``
    (each hand's wrist at the origin, straight from ``hand_model.keypoints_from_rotmats``) and the
    wrists ``(..., 2, 3)``.
    """
    _check_y(y)
    lead = tuple(y.shape[:-1])
    _expand_K(K_crop, lead)  # validate before the hand model runs
    parts = split_y(y)
    N = 1
    for d in lead:
        N *= d
    rot = rot6d_to_matrix(parts["q"]).reshape(N, 2, 16, 3, 3)
    rel = hand_model.keypoints_from_rotmats(rot, parts["betas"].reshape(N, 2, 10)).reshape(*lead, N_JOINTS, 3)
    roots = root_from_ts(parts["t"], parts["s"], K_crop.to(y), crop_px)  # (..., 2, 3)
    r, l = HAND_SLICES["right"], HAND_SLICES["left"]
    joints = torch.cat([rel[..., r, :] + roots[..., 0:1, :], rel[..., l, :] + roots[..., 1:2, :]], dim=-2)
    if return_parts:
        return joints, rel, roots
    return joints


def project_crop(joints_cam_mm: torch.Tensor, K_crop: torch.Tensor) -> torch.Tensor:
    """``(..., J, 3)`` camera mm -> crop pixels ``(..., J, 2)`` with ``K_crop (*k,3,3)`` (k a prefix of ``...``)."""
    K = _expand_K(K_crop.to(joints_cam_mm), tuple(joints_cam_mm.shape[:-2]))[..., None, :, :]
    Z = joints_cam_mm[..., 2]
    u = K[..., 0, 0] * joints_cam_mm[..., 0] / Z + K[..., 0, 2]
    v = K[..., 1, 1] * joints_cam_mm[..., 1] / Z + K[..., 1, 2]
    return torch.stack([u, v], dim=-1)


def joints_to_world(joints_cam_mm: torch.Tensor, R: torch.Tensor, campos_mm: torch.Tensor) -> torch.Tensor:
    """Camera -> world, ``X_world = R^T X_cam + campos`` (``handflow.geometry.camera.cam_to_world``), batched.

    ``joints (..., J, 3)``; ``R (*k, 3, 3)`` and ``campos (*k, 3)`` with ``k`` a prefix of ``...`` (or unbatched).
    """
    lead = tuple(joints_cam_mm.shape[:-2])
    R = _expand_K(R.to(joints_cam_mm), lead)
    k = tuple(campos_mm.shape[:-1])
    c = campos_mm.to(joints_cam_mm).reshape(*k, *([1] * (len(lead) - len(k))), 3).expand(*lead, 3)
    return joints_cam_mm @ R + c[..., None, :]
