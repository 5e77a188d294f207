"""Rotation representations: axis-angle, 3x3 matrices and the continuous 6D form (Zhou et al. 2019).

The 6D form of a rotation R is its first two columns, ``[R[:, 0], R[:, 1]]`` flattened as
``(a1x, a1y, a1z, a2x, a2y, a2z)``; ``rot6d_to_matrix`` maps any 6-vector back with
Gram-Schmidt, so ``rot6d_to_matrix(matrix_to_rot6d(R)) == R``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation matrices (columns b1, b2, b3)."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = F.normalize(a1, dim=-1, eps=1e-8)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=1e-8)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rot6d_as_pair(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 2): the matrix A = [a1 a2] whose orthonormality L_q penalises."""
    return torch.stack([x[..., 0:3], x[..., 3:6]], dim=-1)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians) -> (..., 3, 3), Rodrigues' formula, stable at zero."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-24))
    small = theta2 < 1e-12
    # sin(t)/t and (1-cos t)/t^2 with Taylor fallbacks near zero
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(K)
    return eye + a[..., None] * K + b[..., None] * (K @ K)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) axis-angle, valid for angles in [0, pi)."""
    cos = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(cos)
    v = torch.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], dim=-1
    )
    sin = torch.sin(theta)
    scale = torch.where(sin.abs() < 1e-6, 0.5 + theta**2 / 12, theta / (2 * sin.clamp_min(1e-12)))
    return v * scale[..., None]
