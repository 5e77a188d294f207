"""Keep K cameras: the least ambiguous ones, or low-ambiguity ones that also cover many directions.

``--keep K --strategy ambiguity|coverage``:

* ``ambiguity`` keeps the K cameras with the lowest (camera-level) ambiguity, ties by camera id —
  the same rule as ``keep=K`` in :mod:`viewselect.stats.ranking`.
* ``coverage`` is a deterministic greedy rule. Start with the least ambiguous camera; then
  repeatedly add the camera minimising

      cost(c) = ambiguity_mm(c) + mm_per_deg · max(0, radius_deg − θ(c))

  where θ(c) is the angle (degrees) between c's viewing direction and the nearest already-kept
  camera's. A camera more than ``radius_deg`` away from every kept camera pays nothing; one inside
  pays ``mm_per_deg`` mm of ambiguity per degree it lies inside — up to
  ``mm_per_deg · radius_deg`` mm for a camera right beside a kept one (defaults: 20°, 0.5 mm/deg →
  at most 10 mm). So a near-duplicate view is kept only if it is that much less ambiguous than the
  alternatives. Cost ties go to the less ambiguous camera, then the lower camera id.
  ``mm_per_deg = 0`` reduces to ``ambiguity``.

Viewing directions are unit vectors pointing from the scene to the camera; see
:func:`viewing_directions`.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera

STRATEGIES = ("ambiguity", "coverage")
DEFAULT_RADIUS_DEG = 20.0
DEFAULT_MM_PER_DEG = 0.5


def viewing_directions(cameras: Mapping[object, Camera], target_mm=None) -> dict:
    """Unit direction (3,) from the scene to each camera, world frame.

    With ``target_mm`` (3,) (e.g. the mean ground-truth hand position) the direction is
    ``campos − target``, normalised; without it, minus the optical axis (the camera looks along +Z).
    """
    out = {}
    for cam_id, cam in cameras.items():
        if target_mm is None:
            d = -np.asarray(cam.optical_axis_world, float)
        else:
            d = np.asarray(cam.campos_mm, float) - np.asarray(target_mm, float)
        n = float(np.linalg.norm(d))
        if n == 0:
            raise HandflowError(f"camera {cam_id}: position coincides with the target")
        out[cam_id] = d / n
    return out


def keep_cameras(
    cameras: pd.DataFrame,
    keep: int,
    strategy: str = "ambiguity",
    directions: Mapping[object, np.ndarray] | None = None,
    radius_deg: float = DEFAULT_RADIUS_DEG,
    mm_per_deg: float = DEFAULT_MM_PER_DEG,
) -> list:
    """Camera ids to keep, in the order they were chosen (best first).

    cameras: camera-level table with columns ``camera`` and ``ambiguity_mm`` (e.g.
    :func:`viewselect.stats.ranking.camera_ranking`). directions: camera id -> (3,) vector, required for
    ``coverage``. ``keep`` must be in 1..C.
    """
    if strategy not in STRATEGIES:
        raise HandflowError(f"unknown --strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    for col in ("camera", "ambiguity_mm"):
        if col not in cameras.columns:
            raise HandflowError(f"camera table: missing column {col}")
    n = len(cameras)
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 1 <= keep <= n:
        raise HandflowError(f"--keep {keep!r} is out of range: must be between 1 and {n} for {n} cameras")
    table = cameras.sort_values(["ambiguity_mm", "camera"], kind="stable").reset_index(drop=True)
    ids = table["camera"].tolist()
    if strategy == "ambiguity":
        return ids[:keep]

    if not (math.isfinite(radius_deg) and radius_deg >= 0 and math.isfinite(mm_per_deg) and mm_per_deg >= 0):
        raise HandflowError(
            f"coverage: radius_deg and mm_per_deg must be non-negative, found {radius_deg}, {mm_per_deg}"
        )
    if directions is None:
        raise HandflowError("--strategy coverage needs each camera's viewing direction")
    missing = [c for c in ids if c not in directions]
    if missing:
        raise HandflowError(f"coverage: no viewing direction for camera {missing[0]!r}")
    d = np.stack([np.asarray(directions[c], float) for c in ids])
    norms = np.linalg.norm(d, axis=1, keepdims=True)
    if d.shape[1] != 3 or not np.all(np.isfinite(d)) or np.any(norms == 0):
        raise HandflowError("coverage: viewing directions must be finite non-zero 3-vectors")
    d = d / norms
    angle = np.degrees(np.arccos(np.clip(d @ d.T, -1.0, 1.0)))  # (C, C) pairwise angles
    amb = table["ambiguity_mm"].to_numpy(float)

    chosen = [0]  # rows are sorted by (ambiguity, id): row 0 is the least ambiguous
    nearest = angle[0].copy()  # angle from each camera to its nearest kept camera
    available = np.ones(n, bool)
    available[0] = False
    while len(chosen) < keep:
        cost = amb + mm_per_deg * np.maximum(0.0, radius_deg - nearest)
        cost[~available] = np.inf
        # Rows are in (ambiguity, id) order, so argmin's first minimum breaks cost ties by the
        # lower ambiguity, then the camera id.
        i = int(np.argmin(cost))
        chosen.append(i)
        available[i] = False
        nearest = np.minimum(nearest, angle[i])
    return [ids[i] for i in chosen]
