"""Kept vs full vs random rigs over the sequences of a ranking: one aggregation, one stream of random rigs.

Over a ranking's :class:`~viewselect.rig.triangulation.Scene` list, :func:`triangulate_kept` (means over the
sequences) and :func:`random_subsets` (the random K-subsets) serve ``summary.json``'s triangulation
comparison (:func:`kept_summary`), the error-vs-cameras table (:mod:`viewselect.rig.subsets`) and ``plan``
(through the ranking's comparison), so a figure that says "random" means the same draws wherever it
appears, and ``summary.json``'s random row equals ``error_vs_cameras.csv``'s at the same K.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from handflow.errors import HandflowError
from viewselect.rig.triangulation import DEFAULT_PIXEL_NOISE_PX, Scene

DEFAULT_RANDOM = 20  # random K-subsets behind every "random" figure (random_subsets)
BAND = (0.1, 0.9)  # the random rigs' band: 10th-90th percentile over the draws


def random_subsets(camera_ids: Sequence, k: int, n_random: int = DEFAULT_RANDOM, seed: int = 0) -> list[list]:
    """The one stream of random rigs behind every figure that says "random": ``n_random`` random
    K-subsets of ``camera_ids`` (drawn without replacement from ``default_rng([seed, 2, k])``, in the
    order given), the whole rig once when ``k`` is all of it. The same K gives the same draws in
    ``summary.json`` and in ``error_vs_cameras.csv``."""
    ids = list(camera_ids)
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1:
        raise HandflowError(f"triangulation: n_random must be a positive integer, found {n_random!r}")
    if not 1 <= k <= len(ids):
        raise HandflowError(f"triangulation: cannot draw {k} of {len(ids)} cameras")
    rng = np.random.default_rng([seed, 2, k])
    return [list(rng.choice(ids, size=k, replace=False)) for _ in range(n_random if k < len(ids) else 1)]


def _runs(scenes: list[Scene], subsets: list, noise_px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(len(subsets), len(scenes))`` error mm and failed fraction of each subset of camera ids in each
    scene, each triangulated once; NaN where the scene holds none of the subset (and an error of NaN
    where every joint failed)."""
    err = np.full((len(subsets), len(scenes)), math.nan)
    fail = np.full((len(subsets), len(scenes)), math.nan)
    for i, kept in enumerate(subsets):
        for j, s in enumerate(scenes):
            idx = s.indices(kept)
            if idx:
                r = s.error(idx, noise_px, seed)
                err[i, j], fail[i, j] = r.mean_error_mm, r.failed_fraction
    return err, fail


def _mean(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.mean(v)) if v.size else math.nan


def triangulate_kept(scenes: list[Scene], kept, noise_px: float = DEFAULT_PIXEL_NOISE_PX,
                     seed: int = 0) -> tuple[float, float]:
    """(mean error mm, failed fraction) of the cameras ``kept`` (ids), means over the scenes holding
    a kept camera (a scene with one fails every joint); the error over the scenes where any joint was
    triangulated. NaN, NaN when no scene holds a kept camera."""
    err, fail = _runs(scenes, [kept], noise_px, seed)
    return _mean(err[0]), _mean(fail[0])


def band(values) -> dict:
    """Mean and the BAND percentiles of the finite values (NaN when none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": math.nan, "low": math.nan, "high": math.nan}
    return {"mean": float(v.mean()), "low": float(np.quantile(v, BAND[0])), "high": float(np.quantile(v, BAND[1]))}


def _random_row(err: np.ndarray, fail: np.ndarray) -> dict:
    """The random rigs' figures from ``(draws, scenes)`` runs: each draw over the scenes
    (:func:`triangulate_kept`'s means), then over the draws."""
    e = band([_mean(row) for row in err])
    return {"triangulation_error_mm": e["mean"], "triangulation_error_low_mm": e["low"],
            "triangulation_error_high_mm": e["high"], "failed_fraction": band([_mean(row) for row in fail])["mean"]}


def random_triangulation(scenes: list[Scene], draws: list[list], noise_px: float = DEFAULT_PIXEL_NOISE_PX,
                         seed: int = 0) -> dict:
    """The random rigs' row: :func:`triangulate_kept` of each draw (:func:`random_subsets`), then over the
    draws ``triangulation_error_mm`` (mean of the finite ones) with ``_low_mm`` / ``_high_mm`` (the BAND
    percentiles) and ``failed_fraction`` (mean)."""
    return _random_row(*_runs(scenes, draws, noise_px, seed))


def kept_summary(scenes: list[Scene], kept: list[str], rig_ids: list[str],
                 pixel_noise_px: float = DEFAULT_PIXEL_NOISE_PX, n_random: int = DEFAULT_RANDOM,
                 seed: int = 0) -> dict:
    """Triangulation error of the kept cameras vs the full rig vs random subsets of the same size drawn
    from ``rig_ids`` (:func:`random_subsets`: the draws of ``error_vs_cameras.csv`` at this K, so its
    random row and this one agree), over the sequences (:func:`triangulate_kept`'s means); ``{}`` when
    no sequence has a kept camera. ``per_sequence`` holds each sequence's kept / full / random figures;
    every subset is triangulated once per sequence, for both."""
    draws = random_subsets(rig_ids, len(kept), n_random, seed)
    (k_err, k_fail), (f_err, f_fail) = (_runs(scenes, [ids], pixel_noise_px, seed) for ids in (kept, rig_ids))
    r_err, r_fail = _runs(scenes, draws, pixel_noise_px, seed)
    per_seq = {}
    for j, sc in enumerate(scenes):
        subset = sc.indices(kept)
        if subset:
            n_points = int(np.prod(sc.joints_world_mm.shape[:2]))
            per_seq[sc.name] = {
                "n_cameras": len(sc.cameras), "n_kept": len(subset), "pixel_noise_px": float(pixel_noise_px),
                "kept": {"mean_error_mm": float(k_err[0, j]), "failed_fraction": float(k_fail[0, j]),
                         "n_points": n_points},
                "full": {"mean_error_mm": float(f_err[0, j]), "failed_fraction": float(f_fail[0, j]),
                         "n_points": n_points},
                "random": {"mean_error_mm": band(r_err[:, j])["mean"], "failed_fraction": _mean(r_fail[:, j]),
                           "n_subsets": len(draws)},
            }
    if not per_seq:
        return {}
    rnd = _random_row(r_err, r_fail)
    return {
        "pixel_noise_px": pixel_noise_px, "n_kept": len(kept), "n_random_subsets": len(draws),
        "kept_error_mm": _mean(k_err[0]), "full_error_mm": _mean(f_err[0]),
        "random_error_mm": rnd["triangulation_error_mm"], "kept_failed_fraction": _mean(k_fail[0]),
        "full_failed_fraction": _mean(f_fail[0]), "random_failed_fraction": rnd["failed_fraction"],
        "per_sequence": per_seq,
    }
