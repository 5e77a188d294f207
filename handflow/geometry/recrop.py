"""Re-cropping a network input crop: a zoom about its centre plus a shift, with the intrinsics that follow.

Test-time crops (``viewselect rank``'s ambiguity) run the same image through the encoder several times,
each time framed slightly differently, the way a hand detector's box would wobble. Where the image
pins the pose, the predictions agree; where it does not (depth cues, hidden fingers), they move. The
re-crop is a similarity of the crop's pixel grid, so the crop camera stays a pinhole camera:

    u' = s (u - c) + c + d      (c: the crop's centre pixel, (S - 1) / 2; d: the shift in pixels)
    K' = [[s, 0, (1 - s) c + d_x], [0, s, (1 - s) c + d_y], [0, 0, 1]] @ K

Pixels that come from outside the crop are black (zooms >= 1 and small shifts keep that to a thin edge).

Examples:
    >>> images, K = torch.rand(2, 3, 128, 128), torch.eye(3).repeat(2, 1, 1)
    >>> out, K2 = recrop(images, K, CropJitter(1.12, 0.05, 0.0))  # a zoom and a shift
    >>> out.shape, float(K2[0, 0, 0])
    (torch.Size([2, 3, 128, 128]), 1.12)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from handflow.errors import HandflowError


@dataclass(frozen=True)
class CropJitter:
    """A zoom ``zoom`` (>= 1 magnifies) about the crop's centre, then a shift ``(dx, dy)`` in crop widths."""

    zoom: float = 1.0
    dx: float = 0.0
    dy: float = 0.0


# The fixed set of test-time crops, first = the crop itself, then shifts of 5 % of the crop along each axis.
# Fixed, so the ambiguity has no Monte-Carlo noise. Chosen by measurement (`python -m benchmarks.ambiguity_crops`,
# every test image under 14 candidates): zooms (12 %, 25 %, a 10 % zoom-out) and larger shifts rank the cameras
# no better or worse than these four shifts, which beat the former eight crops (with zooms) at 5/8 of the cost.
TEST_TIME_CROPS = (
    CropJitter(), CropJitter(1.0, 0.05, 0.0), CropJitter(1.0, -0.05, 0.0), CropJitter(1.0, 0.0, 0.05),
    CropJitter(1.0, 0.0, -0.05),
)


def _resample(images: torch.Tensor, K_crop: torch.Tensor, zoom: torch.Tensor, shift_px: torch.Tensor):
    """The similarity ``u' = s (u - c) + c + d`` per image: ``zoom (B,)``, ``shift_px (B, 2)`` -> ``(images', K')``.

    Both matrices are formed in float64 and rounded once to the inputs' dtypes.
    """
    B, _, H, W = images.shape
    s = zoom.to(torch.float64)
    d = shift_px.to(torch.float64)
    # affine_grid maps output to input in normalised coordinates (align_corners=False: pixel centres at
    # (2u + 1) / W - 1, so the centre pixel (W - 1) / 2 is 0): x_in = (x_out - 2 d / W) / s
    theta = s.new_zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
    theta[:, 0, 2], theta[:, 1, 2] = -2 * d[:, 0] / (W * s), -2 * d[:, 1] / (H * s)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    A = s.new_zeros(B, 3, 3)
    A[:, 0, 0] = A[:, 1, 1] = s
    A[:, :2, 2] = (1 - s)[:, None] * s.new_tensor([(W - 1) / 2, (H - 1) / 2]) + d
    A[:, 2, 2] = 1.0
    return out, A.to(K_crop.dtype) @ K_crop


def recrop(images: torch.Tensor, K_crop: torch.Tensor, jitter: CropJitter) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-crop ``images (B, C, S, S)`` (any float range) by ``jitter``; returns ``(images', K' (B, 3, 3))``.

    ``K_crop (B, 3, 3)`` are the crops' intrinsics in crop pixels. The identity jitter returns the inputs.
    """
    if jitter == CropJitter():
        return images, K_crop
    B, _, H, W = images.shape
    zoom = torch.full((B,), float(jitter.zoom), dtype=torch.float64, device=images.device)
    shift = torch.tensor([[float(jitter.dx) * W, float(jitter.dy) * H]], dtype=torch.float64, device=images.device)
    return _resample(images, K_crop, zoom, shift.expand(B, 2))


def shift_crops(images: torch.Tensor, K_crop: torch.Tensor, shift_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each crop by its own ``shift_px (B, 2)`` pixels: ``images (B, C, S, S)`` -> ``(images', K' (B, 3, 3))``.

    :func:`recrop` without a zoom, one shift per image (training's crop jitter): a pixel at ``u`` moves to
    ``u + d`` and ``K'`` is ``K_crop`` with its principal point moved by ``d``; pixels from outside are black.
    """
    B = images.shape[0]
    if shift_px.shape != (B, 2):
        raise HandflowError(f"shift_px must be ({B}, 2), found {tuple(shift_px.shape)}")
    return _resample(images, K_crop, shift_px.new_ones(B), shift_px)


__all__ = ["CropJitter", "TEST_TIME_CROPS", "recrop", "shift_crops"]
