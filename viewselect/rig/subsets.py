"""Error against the number of cameras: K-camera subsets chosen four ways.

For K on a grid from 2 to the whole rig (:func:`camera_counts`), the kept set is chosen by

* ``ambiguity`` — the K least ambiguous cameras (``--keep K``);
* ``coverage`` — :mod:`viewselect.rig.coverage`'s greedy rule (low ambiguity, spread directions);
* ``uniform`` — uniform spacing, blind to the images: farthest-point sampling of the viewing
  directions, starting from the camera nearest the rig's mean viewing direction (ties by id), then
  repeatedly the camera whose nearest already-chosen direction is farthest away;
* ``random`` — ``n_random`` random K-subsets (:func:`viewselect.rig.comparison.random_subsets`, the
  stream ``summary.json``'s random rig uses too), reported as their mean and a band (10th–90th
  percentile over the draws).

For each kept set: the **triangulation error** (mean over the sequences' :class:`Scene` of
:func:`viewselect.rig.triangulation.triangulation_error`: DLT of the ground-truth 2D joints of the kept
cameras that see each joint, + pixel noise; same noise seed for every subset) and its failed fraction,
and the **mean regret** of the kept cameras (camera-level regret, mm: what a single kept view costs
against the best camera of each sequence, averaged over the kept set).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from handflow.errors import HandflowError
from viewselect.rig.coverage import keep_cameras
from viewselect.rig.comparison import DEFAULT_RANDOM, band, random_subsets, random_triangulation, triangulate_kept
from viewselect.rig.triangulation import DEFAULT_PIXEL_NOISE_PX, Scene

STRATEGIES = ("ambiguity", "coverage", "uniform", "random")
_GRID = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128)


def camera_counts(n_cameras: int) -> list[int]:
    """K values: every K up to 8, then a coarser grid, and always the whole rig (``n_cameras``)."""
    if n_cameras < 2:
        return []
    return sorted({k for k in _GRID if k < n_cameras} | {n_cameras})


def uniform_cameras(directions: dict, k: int) -> list:
    """K camera ids spread evenly over viewing directions (farthest-point sampling; module docstring)."""
    ids = sorted(directions)
    if not 1 <= k <= len(ids):
        raise HandflowError(f"uniform spacing: cannot keep {k} of {len(ids)} cameras")
    d = np.stack([np.asarray(directions[c], float) for c in ids])
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    mean = d.mean(0)
    start = int(np.argmax(d @ mean)) if np.linalg.norm(mean) > 1e-9 else 0
    chosen = [start]
    nearest = np.arccos(np.clip(d @ d[start], -1, 1))
    while len(chosen) < k:
        nearest[chosen] = -1.0
        i = int(np.argmax(nearest))  # first maximum: ties by camera id
        chosen.append(i)
        nearest = np.minimum(nearest, np.arccos(np.clip(d @ d[i], -1, 1)))
    return [ids[i] for i in chosen]


def subset_curves(cameras: pd.DataFrame, sequences: list[Scene], directions: dict, *,
                  counts: list[int] | None = None, n_random: int = DEFAULT_RANDOM, pixel_noise_px: float = DEFAULT_PIXEL_NOISE_PX,
                  seed: int = 0, regret_column: str = "regret_global_mm") -> pd.DataFrame:
    """One row per (K, strategy): ``n_cameras, strategy, triangulation_error_mm, failed_fraction,
    mean_regret_mm`` and, for ``random``, ``*_low_mm`` / ``*_high_mm`` band columns (NaN elsewhere).

    cameras: camera-level table (``camera``, ``ambiguity_mm``, ``regret_column``);
    directions: camera id -> (3,) viewing direction (:func:`viewselect.rig.coverage.viewing_directions`).
    """
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1:
        raise HandflowError(f"subset curves: n_random must be a positive integer, found {n_random!r}")
    ids = cameras["camera"].tolist()
    regret = dict(zip(ids, cameras[regret_column].to_numpy(float)))
    counts = camera_counts(len(ids)) if counts is None else counts
    rows = []

    def row(k, strategy, kept):
        err, fail = triangulate_kept(sequences, set(kept), pixel_noise_px, seed)
        return {"n_cameras": k, "strategy": strategy, "triangulation_error_mm": err, "failed_fraction": fail,
                "mean_regret_mm": float(np.mean([regret[c] for c in kept]))}

    for k in counts:
        rows.append(row(k, "ambiguity", keep_cameras(cameras, k, "ambiguity")))
        rows.append(row(k, "coverage", keep_cameras(cameras, k, "coverage", directions=directions)))
        rows.append(row(k, "uniform", uniform_cameras({c: directions[c] for c in ids}, k)))
        draws = random_subsets(ids, k, n_random, seed)
        reg = band([np.mean([regret[c] for c in d]) for d in draws])  # the same draws as the triangulation
        rows.append({"n_cameras": k, "strategy": "random",
                     **random_triangulation(sequences, draws, pixel_noise_px, seed),
                     "mean_regret_mm": reg["mean"], "mean_regret_low_mm": reg["low"], "mean_regret_high_mm": reg["high"]})
    cols = ["n_cameras", "strategy", "triangulation_error_mm", "triangulation_error_low_mm",
            "triangulation_error_high_mm", "failed_fraction", "mean_regret_mm", "mean_regret_low_mm",
            "mean_regret_high_mm"]
    return pd.DataFrame(rows).reindex(columns=cols)
