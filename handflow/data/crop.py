"""Square crops around the two-hand box, with the crop's own intrinsics.

The box: the tight box of the valid ground-truth 2D joints, its longer side times
:data:`CROP_PAD` (1.3, i.e. 15 % margin on each side of the longer side, comparable to the
InterHand2.6M toolkit's 1.25 box expansion) but at least :data:`MIN_SIDE_PX`, made square around
the box centre and snapped to whole pixels (``left``, ``top``, ``side`` integers) so the crop is an
exact pixel slice of the (zero-padded) image, resized to ``S x S`` with antialiased bilinear
interpolation (``align_corners=False``). Without valid joints the box is the largest centred square.

Pixel centres sit at integer coordinates (OpenCV / InterHand convention). With ``s = S / side`` the
crop is the affine map ``u' = s * (u - left + 0.5) - 0.5`` (same for ``v`` with ``top``), i.e.
``A = [[s, 0, s*(0.5-left) - 0.5], [0, s, s*(0.5-top) - 0.5], [0, 0, 1]]`` on homogeneous pixels, and
the crop's intrinsics are ``K_crop = A @ K``: projecting a camera point with ``K_crop`` lands exactly
on the crop pixel that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CROP_PAD = 1.3
MIN_SIDE_PX = 32


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    side: int


def crop_box(joints_img_px, joint_valid, image_hw: tuple[int, int], pad: float = CROP_PAD,
             min_side: int = MIN_SIDE_PX) -> CropBox:
    """Square integer box around the valid 2D joints ``(J,2)`` (valid ``(J,)``)."""
    uv = np.asarray(joints_img_px, dtype=np.float64).reshape(-1, 2)
    valid = np.asarray(joint_valid).reshape(-1) > 0
    H, W = image_hw
    if valid.any():
        pts = uv[valid]
        lo, hi = pts.min(0), pts.max(0)
        centre = (lo + hi) / 2.0
        side = max(float((hi - lo).max()) * pad, float(min_side))
    else:
        centre = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
        side = float(min(H, W))
    side_i = max(int(np.ceil(side)), 1)
    left = int(np.floor(centre[0] - side_i / 2.0 + 0.5))
    top = int(np.floor(centre[1] - side_i / 2.0 + 0.5))
    return CropBox(left, top, side_i)


def crop_affine(box: CropBox, size: int) -> np.ndarray:
    """(3,3) map from image pixels to crop pixels (see module docstring)."""
    s = size / box.side
    return np.array(
        [[s, 0.0, s * (0.5 - box.left) - 0.5], [0.0, s, s * (0.5 - box.top) - 0.5], [0.0, 0.0, 1.0]]
    )


def apply_affine(A, uv):
    """(3,3) affine, (...,2) points -> (...,2) (numpy or torch)."""
    if isinstance(uv, torch.Tensor):
        A = torch.as_tensor(A, dtype=uv.dtype, device=uv.device)
        return uv @ A[:2, :2].T + A[:2, 2]
    A = np.asarray(A, dtype=np.float64)
    return np.asarray(uv) @ A[:2, :2].T + A[:2, 2]


def image_to_crop(uv, A):
    return apply_affine(A, uv)


def crop_to_image(uv, A):
    """Inverse map of :func:`image_to_crop`."""
    if isinstance(uv, torch.Tensor):
        return apply_affine(torch.linalg.inv(torch.as_tensor(A, dtype=torch.float64)).to(uv.dtype), uv)
    return apply_affine(np.linalg.inv(np.asarray(A, dtype=np.float64)), uv)


def crop_K(K, A):
    """``K_crop = A @ K``."""
    if isinstance(K, torch.Tensor):
        return torch.as_tensor(A, dtype=K.dtype, device=K.device) @ K
    return np.asarray(A, dtype=np.float64) @ np.asarray(K, dtype=np.float64)


def crop_image(image: torch.Tensor, box: CropBox, size: int) -> torch.Tensor:
    """``image (C,H,W)`` or ``(B,C,H,W)`` float -> ``(…,C,size,size)``; outside the image is zero."""
    squeeze = image.dim() == 3
    img = image[None] if squeeze else image
    _, C, H, W = img.shape
    l, t, s = box.left, box.top, box.side
    out = img.new_zeros((img.shape[0], C, s, s))
    x0, y0 = max(l, 0), max(t, 0)
    x1, y1 = min(l + s, W), min(t + s, H)
    if x1 > x0 and y1 > y0:
        out[:, :, y0 - t:y1 - t, x0 - l:x1 - l] = img[:, :, y0:y1, x0:x1]
    if s != size:
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False, antialias=s > size)
    return out[0] if squeeze else out


def crop(image: torch.Tensor, joints_img_px, joint_valid, K, size: int, pad: float = CROP_PAD):
    """One call: (crop image (C,size,size), K_crop (3,3) numpy, A (3,3), box)."""
    H, W = image.shape[-2:]
    box = crop_box(joints_img_px, joint_valid, (H, W), pad)
    A = crop_affine(box, size)
    return crop_image(image, box, size), crop_K(K, A), A, box
