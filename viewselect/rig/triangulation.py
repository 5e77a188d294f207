"""Multi-view DLT triangulation: what a reduced rig costs for ground-truth capture.

Dropping cameras is meant to save hardware without hurting the multi-view reconstruction the rig
exists for. This module measures that: project the ground-truth joints into the kept cameras, add
Gaussian pixel noise, triangulate, and compare with the truth.

Conventions: InterHand2.6M cameras, ``X_cam = R (X_world − campos)`` in mm, so the projection
matrix is ``P = K [R | −R campos]`` (3×4) and ``λ (u, v, 1)ᵀ = P (X, 1)ᵀ`` with u, v in pixels.

Noise model: independent Gaussian noise on u and v with σ = ``pixel_noise_px`` (default 1.0 px,
the order of a good 2D keypoint detector / manual annotation error on full-resolution images).

A joint is **failed** when fewer than 2 kept cameras see it (it cannot be triangulated); the mean
3D error is over the joints that did not fail, and the failed fraction is reported beside it.

A :class:`Scene` is one sequence as triangulation sees it; :mod:`viewselect.rig.comparison` compares kept,
full and random rigs over a ranking's scenes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera

DEFAULT_PIXEL_NOISE_PX = 1.0


def projection_matrix(camera: Camera) -> np.ndarray:
    """(3, 4) ``P = K [R | −R campos]`` (world mm -> homogeneous pixels)."""
    Rt = np.concatenate([camera.R, (-camera.R @ camera.campos_mm)[:, None]], axis=1)
    return camera.K @ Rt


def project_points(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """P (V,3,4), X (..., 3) world mm -> (V, ..., 2) pixels."""
    P = np.asarray(P, float)
    Xh = np.concatenate([X, np.ones(X.shape[:-1] + (1,))], axis=-1)
    x = np.einsum("vij,...j->v...i", P, Xh)
    return x[..., :2] / x[..., 2:3]


def _null_vectors(A: np.ndarray) -> np.ndarray:
    """``(J, 4)``: each ``(2V, 4)`` system of ``A (J, 2V, 4)``'s right singular vector of its smallest singular
    value, as the eigenvector of the 4 × 4 ``AᵀA`` with the smallest eigenvalue — one batched numpy ``eigh``.
    No threads: a ranking solves thousands of these small systems, and a threaded solver only spins on a busy
    machine (``benchmarks triangulation``)."""
    return np.linalg.eigh(A.transpose(0, 2, 1) @ A)[1][..., 0]  # eigenvalues ascending


def triangulate_dlt(P, uv, weights) -> np.ndarray:
    """Linear (DLT) triangulation of J points from V views, all points in one batched solve.

    P: (V, 3, 4) projection matrices; uv: (V, J, 2) pixels; weights: (V, J) — a visibility mask
    (bool) or non-negative confidences; weight 0 removes that view's two equations for that point.
    Returns (J, 3) world points (mm); rows of points seen by fewer than 2 views (weight > 0) are NaN.

    Each view contributes ``u P₃ − P₁`` and ``v P₃ − P₂``; rows are scaled to unit norm (so every
    view counts equally and pixels/mm scales do not matter) and then by the weight. The solution
    is the right singular vector of the smallest singular value (via the 4 × 4 ``AᵀA``). The world is
    centred and scaled to ~unit size first (Hartley-style conditioning) so float64 recovers exact data
    to < 1e-6 mm.
    """
    P = np.asarray(P, float)
    uv = np.asarray(uv, float)
    w = np.asarray(weights, float)
    if P.ndim != 3 or P.shape[1:] != (3, 4):
        raise HandflowError(f"triangulate_dlt: P must be (V,3,4), found {P.shape}")
    V = P.shape[0]
    if uv.ndim != 3 or uv.shape[0] != V or uv.shape[2] != 2 or w.shape != uv.shape[:2]:
        raise HandflowError(
            f"triangulate_dlt: expected uv (V,J,2) and weights (V,J) with V={V}, found {uv.shape}, {w.shape}"
        )
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise HandflowError("triangulate_dlt: weights must be finite and non-negative")
    J = uv.shape[1]
    seen = w > 0
    uv = np.where(seen[..., None], uv, 0.0)  # unseen points may be NaN/inf (behind the camera)

    # Conditioning: X = s·X' + c with c, s from the camera centres (null vectors of P).
    null = np.linalg.svd(P)[2][:, -1, :]  # (V, 4) homogeneous camera centres
    finite = np.abs(null[:, 3]) > 1e-12
    c, s = np.zeros(3), 1.0
    if finite.any():
        centres = null[finite, :3] / null[finite, 3:4]
        c = centres.mean(0)
        spread = float(np.mean(np.linalg.norm(centres - c, axis=1)))
        s = spread if spread > 0 else 1.0
    H = np.diag([s, s, s, 1.0])
    H[:3, 3] = c
    Pn = P @ H  # (V, 3, 4)

    # A: each point's 2V rows, scaled to unit norm, times the weight
    rows = np.stack([uv[..., a, None] * Pn[:, None, 2, :] - Pn[:, None, a, :] for a in (0, 1)])  # (2, V, J, 4)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    rows = rows / np.where(norms > 0, norms, 1.0) * w[..., None]
    h = _null_vectors(rows.transpose(2, 0, 1, 3).reshape(J, 2 * V, 4))  # (J, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        Xn = h[:, :3] / h[:, 3:4]
    X = Xn * s + c
    X[seen.sum(0) < 2] = np.nan
    return X


@dataclass(frozen=True)
class TriangulationResult:
    """mean_error_mm over triangulated joints (NaN if every joint failed); failed_fraction of the
    (frame, joint) points seen by fewer than 2 kept cameras; n_points considered."""

    mean_error_mm: float
    failed_fraction: float
    n_points: int

    def as_dict(self) -> dict:
        return asdict(self)


def _camera_list(cameras) -> list[Camera]:
    cams = list(cameras.values()) if isinstance(cameras, dict) else list(cameras)
    if not cams or not all(isinstance(c, Camera) for c in cams):
        raise HandflowError("triangulation: expected a non-empty list of Camera objects")
    return cams


def _subset_indices(cameras, subset) -> np.ndarray:
    """Positions of ``subset`` in ``cameras``: indices, or camera ids when ``cameras`` is a dict."""
    n = len(cameras)
    if subset is None:
        return np.arange(n)
    items = list(subset)
    if isinstance(cameras, dict) and all(c in cameras for c in items):
        pos = {c: i for i, c in enumerate(cameras)}
        items = [pos[c] for c in items]
    bad = [c for c in items if isinstance(c, bool) or not isinstance(c, (int, np.integer))]
    if bad:  # e.g. an id not in the rig (numpy would happily parse "400002" as an index)
        raise HandflowError(f"triangulation: unknown camera {bad[0]!r} in subset")
    idx = np.asarray(items, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= n or len(set(idx.tolist())) != idx.size:
        raise HandflowError(f"triangulation: subset must be distinct cameras (ids or indices 0..{n - 1})")
    return idx


def triangulation_error(
    cameras: Sequence[Camera],
    joints_world_mm,
    visible,
    subset: Sequence[int] | None = None,
    pixel_noise_px: float = DEFAULT_PIXEL_NOISE_PX,
    seed: int = 0,
) -> TriangulationResult:
    """Error of triangulating ground-truth joints from the cameras in ``subset``.

    cameras: V cameras (list, or dict in rig order); joints_world_mm: (F, 42, 3) — any (F, J, 3);
    visible: (V, F, J) bool, whether camera v sees joint j in frame f; subset: indices into
    ``cameras``, or camera ids when ``cameras`` is a dict (None = all). The projections get N(0, pixel_noise_px²) noise per coordinate
    (numpy ``default_rng(seed)``, so a call is deterministic).
    """
    cams = _camera_list(cameras)
    X = np.asarray(joints_world_mm, float)
    vis = np.asarray(visible, bool)
    if X.ndim != 3 or X.shape[-1] != 3:
        raise HandflowError(f"triangulation: joints must be (F, J, 3) mm, found {X.shape}")
    if vis.shape != (len(cams),) + X.shape[:2]:
        expected = (len(cams),) + X.shape[:2]
        raise HandflowError(f"triangulation: visible must be (V, F, J) = {expected}, found {vis.shape}")
    idx = _subset_indices(cameras, subset)

    P = np.stack([projection_matrix(cams[i]) for i in idx])  # (K, 3, 4)
    return _error(P, _projections(P, X), X.reshape(-1, 3), vis[idx].reshape(len(idx), -1), pixel_noise_px, seed)


def _projections(P: np.ndarray, joints_world_mm: np.ndarray) -> np.ndarray:
    """``(V, F*J, 2)`` noise-free pixels of the ``(F, J, 3)`` joints in the cameras ``P (V, 3, 4)``."""
    with np.errstate(divide="ignore", invalid="ignore"):  # points behind a camera: it does not see them
        return project_points(P, joints_world_mm.reshape(-1, 3))


def _error(P, uv, pts, w, pixel_noise_px: float, seed: int) -> TriangulationResult:
    """Triangulate ``pts (N, 3)`` from their noise-free pixels ``uv (K, N, 2)`` in ``P (K, 3, 4)`` seen where
    ``w (K, N)``, after N(0, pixel_noise_px²) noise from ``default_rng(seed)``."""
    if not (math.isfinite(pixel_noise_px) and pixel_noise_px >= 0):
        raise HandflowError(f"triangulation: pixel noise must be >= 0 px, found {pixel_noise_px}")
    rng = np.random.default_rng(seed)
    uv = uv + rng.normal(0.0, pixel_noise_px, size=uv.shape) if pixel_noise_px > 0 else uv
    est = triangulate_dlt(P, uv, w)
    failed = np.isnan(est).any(axis=1)
    err = np.linalg.norm(est[~failed] - pts[~failed], axis=1)
    return TriangulationResult(
        mean_error_mm=float(err.mean()) if err.size else math.nan,
        failed_fraction=float(failed.mean()),
        n_points=int(pts.shape[0]),
    )


# ---------------------------------------------------------------- over the sequences of a ranking


@dataclass(frozen=True)
class Scene:
    """One sequence, as triangulation sees it: the scored cameras (sorted by id), the ground-truth
    joints ``(F, 42, 3)`` mm of the frames every view could read, and ``visible (V, F, 42)`` bool,
    camera v sees valid joint j in frame f."""

    name: str  # Capture<N>/<sequence>
    camera_ids: list[str]
    cameras: list[Camera]
    joints_world_mm: np.ndarray
    visible: np.ndarray

    def indices(self, camera_ids) -> list[int]:
        """Positions of the given camera ids among this scene's cameras (ids it lacks are ignored)."""
        wanted = set(camera_ids)
        return [i for i, c in enumerate(self.camera_ids) if c in wanted]

    @cached_property
    def _projected(self) -> tuple[np.ndarray, np.ndarray]:
        """Every camera's ``P (V, 3, 4)`` and noise-free pixels ``(V, F*42, 2)``: computed once, then sliced by
        each subset a ranking compares (kept, full, 20 random rigs, the error-vs-cameras curve)."""
        P = np.stack([projection_matrix(c) for c in self.cameras])
        return P, _projections(P, np.asarray(self.joints_world_mm, float))

    def error(self, subset, pixel_noise_px: float, seed: int) -> TriangulationResult:
        """:func:`triangulation_error` of the cameras at positions ``subset`` (as :meth:`indices` gives)."""
        idx = _subset_indices(self.cameras, subset)
        P, uv = self._projected
        pts = np.asarray(self.joints_world_mm, float).reshape(-1, 3)
        return _error(P[idx], uv[idx], pts, np.asarray(self.visible, bool)[idx].reshape(len(idx), -1),
                      pixel_noise_px, seed)
