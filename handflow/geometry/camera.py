"""Pinhole cameras in the InterHand2.6M convention.

World -> camera: ``X_cam = R @ (X_world - campos)`` with ``R = camrot`` (3x3), millimetres.
Projection: ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy`` (pixels).
Both match ``world2cam`` / ``cam2pixel`` of the public InterHand2.6M toolkit
(``common/utils/transforms.py``).

The functions accept numpy arrays or torch tensors with any leading batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handflow.errors import HandflowError


@dataclass(frozen=True)
class Camera:
    """One calibrated camera. ``R (3,3)``, ``campos_mm (3,)``, ``focal_px (2,)``, ``princpt_px (2,)``."""

    R: np.ndarray
    campos_mm: np.ndarray
    focal_px: np.ndarray
    princpt_px: np.ndarray

    def __post_init__(self):
        for name, shape in (("R", (3, 3)), ("campos_mm", (3,)), ("focal_px", (2,)), ("princpt_px", (2,))):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise HandflowError(f"camera {name}: expected shape {shape}, found {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise HandflowError(f"camera {name}: non-finite value")
            object.__setattr__(self, name, arr)
        if np.any(self.focal_px <= 0):
            raise HandflowError(f"camera focal must be positive, found {self.focal_px.tolist()}")
        # A rotation's entries lie in [-1, 1]; checking that first keeps det and R R^T of a garbage matrix
        # (a corrupt annotation file) from overflowing before it is rejected.
        if (
            np.abs(self.R).max() > 1.0 + 1e-3
            or abs(np.linalg.det(self.R) - 1.0) > 1e-3
            or not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-3)
        ):
            raise HandflowError("camera rotation is not a rotation matrix (det != 1 or not orthonormal)")

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsic matrix."""
        return np.array(
            [[self.focal_px[0], 0, self.princpt_px[0]], [0, self.focal_px[1], self.princpt_px[1]], [0, 0, 1.0]]
        )

    @property
    def optical_axis_world(self) -> np.ndarray:
        """(3,) unit viewing direction in world coordinates (camera +Z)."""
        return self.R[2]

    def world_to_cam(self, X_world_mm):
        """(..., 3) mm world -> (..., 3) mm camera."""
        return world_to_cam(X_world_mm, self.R, self.campos_mm)

    def cam_to_world(self, X_cam_mm):
        return cam_to_world(X_cam_mm, self.R, self.campos_mm)

    def project(self, X_cam_mm):
        """(..., 3) mm camera -> (..., 2) px."""
        return project(X_cam_mm, self.focal_px, self.princpt_px)


def _like(a, ref):
    """Convert numpy constant ``a`` to the array type/dtype/device of ``ref``."""
    if isinstance(ref, np.ndarray):
        return np.asarray(a, dtype=ref.dtype if ref.dtype.kind == "f" else np.float64)
    import torch

    return torch.as_tensor(np.asarray(a), dtype=ref.dtype, device=ref.device)


def world_to_cam(X_world, R, campos):
    """(..., 3) -> (..., 3): ``R @ (X - campos)``."""
    R, campos = _like(R, X_world), _like(campos, X_world)
    Rt = R.swapaxes(-1, -2) if isinstance(R, np.ndarray) else R.transpose(-1, -2)
    return (X_world - campos) @ Rt


def cam_to_world(X_cam, R, campos):
    """(..., 3) -> (..., 3): ``R^T @ X + campos``."""
    R, campos = _like(R, X_cam), _like(campos, X_cam)
    return X_cam @ R + campos


def project(X_cam, focal, princpt):
    """(..., 3) camera mm -> (..., 2) px."""
    focal, princpt = _like(focal, X_cam), _like(princpt, X_cam)
    return X_cam[..., :2] / X_cam[..., 2:3] * focal + princpt


def backproject(uv, depth, focal, princpt):
    """(..., 2) px and (...,) depth (same unit as output) -> (..., 3) camera coordinates."""
    focal, princpt = _like(focal, uv), _like(princpt, uv)
    xy = (uv - princpt) / focal * depth[..., None]
    if isinstance(uv, np.ndarray):
        return np.concatenate([xy, depth[..., None]], axis=-1)
    import torch

    return torch.cat([xy, depth[..., None]], dim=-1)


def look_at(campos_mm: np.ndarray, target_mm: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Rotation R (world -> camera) of a camera at ``campos`` looking at ``target``.

    Camera axes: +Z forward, +X right, +Y down in the image (OpenCV convention, as InterHand2.6M).
    """
    z = np.asarray(target_mm, float) - np.asarray(campos_mm, float)
    z /= np.linalg.norm(z)
    up = np.asarray(up, float)
    if abs(np.dot(z, up)) > 0.999:
        up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])
