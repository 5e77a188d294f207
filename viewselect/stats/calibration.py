"""How far to trust the ambiguity on a capture: images binned by predicted spread against realised error.

For each alignment ``a`` (``global``, ``rrr``, ``rr``) every scored image (one view, one frame) gives a
pair: its ambiguity after alignment ``a`` (the per-joint spread ``sqrt(trace(cov))`` of the modes over the
test-time crops, averaged over the 42 joints, :mod:`viewselect.engine.scoring`) and the mode's MPJPE under the same alignment. The images are sorted
by spread and cut into ``bins`` groups of (nearly) equal count — deciles by default — and each bin gives
the mean spread, the mean error and its count.

Beside it, :func:`split_half` says how much of a camera's error belongs to the camera at all: each
sequence's frames are split alternately into two halves, every camera's mean MPJPE on one half is ranked
against the other half (Spearman over the cameras), and the sequences' correlations are averaged. It is
the ceiling for any ranker on this capture: when it is low, the frames decide the error, not the camera,
and too few frames are selected to tell cameras apart.

Reading it: a spread that means what it says puts the bins on a rising line near **error = spread** (the
ideal line the report draws). For errors drawn from the predicted distribution, the mean error of a joint
is at most its spread ``sqrt(E|e|²)`` and at least about 0.8 of it (0.80 for errors along one axis, as
along a camera ray; 0.92 isotropic in 3D), so calibrated bins lie on or a little below the line. Bins
that stay flat while the spread grows mean the spread does not say which images are worse; bins far
above the line mean the model is over-confident.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from viewselect.stats.ranking import ALIGNMENTS, spearman
from viewselect.records import ViewRecord, ambiguity_field

DEFAULT_BINS = 10


@dataclass(frozen=True)
class ReliabilityCurve:
    """One alignment's reliability figure: ``bins`` groups of images in ascending spread.

    ``spread_mm`` and ``error_mm`` are the bins' mean predicted spread and mean realised MPJPE (mm),
    ``n_images`` their sizes; ``spearman`` is the image-level rank correlation of spread and error
    (positive: a wider spread goes with a larger error); ``split_half`` is :func:`split_half` of the
    alignment's MPJPE (the ceiling for any camera ranker).
    """

    alignment: str
    spread_mm: list[float]
    error_mm: list[float]
    n_images: list[int]
    spearman: float
    split_half: float

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def image_pairs(records: list[ViewRecord], alignment: str) -> tuple[np.ndarray, np.ndarray]:
    """``(spread (M,), error (M,))`` mm over every frame of every view where both are finite."""
    spread, error = [], []
    for r in records:
        for s, e in zip(getattr(r, ambiguity_field(alignment, frame=True)), getattr(r, f"frame_mpjpe_{alignment}_mm")):
            if s is not None and e is not None and math.isfinite(s) and math.isfinite(e):
                spread.append(s)
                error.append(e)
    return np.asarray(spread, float), np.asarray(error, float)


def binned(spread: np.ndarray, error: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[list, list, list]:
    """Mean spread, mean error and count of ``min(bins, M)`` equal-count groups in ascending spread
    (ties broken by error, then input order, so the bins are deterministic)."""
    if len(spread) == 0:
        return [], [], []
    order = np.lexsort((np.arange(len(spread)), error, spread))
    groups = [g for g in np.array_split(order, min(bins, len(spread))) if len(g)]
    return ([float(spread[g].mean()) for g in groups], [float(error[g].mean()) for g in groups],
            [int(len(g)) for g in groups])


def split_half(records: list[ViewRecord], alignment: str) -> float:
    """Mean over sequences of Spearman(camera's mean MPJPE on even frames, on odd frames); frames are
    numbered by their order in the sequence, so every camera's halves hold the same frames. NaN when no
    sequence has two cameras with both halves."""
    by_seq: dict[tuple, list[ViewRecord]] = {}
    for r in records:
        by_seq.setdefault((r.capture, r.seq), []).append(r)
    rhos = []
    for recs in by_seq.values():
        order = {f: i for i, f in enumerate(sorted({f for r in recs for f in r.frames}))}
        halves = []
        for r in recs:
            sums = [[], []]
            for f, e in zip(r.frames, getattr(r, f"frame_mpjpe_{alignment}_mm")):
                if e is not None and math.isfinite(e):
                    sums[order[f] % 2].append(e)
            if sums[0] and sums[1]:
                halves.append((float(np.mean(sums[0])), float(np.mean(sums[1]))))
        if len(halves) >= 2:
            rho = spearman([h[0] for h in halves], [h[1] for h in halves])
            if math.isfinite(rho):
                rhos.append(rho)
    return float(np.mean(rhos)) if rhos else math.nan


def reliability(records: list[ViewRecord], bins: int = DEFAULT_BINS) -> list[ReliabilityCurve]:
    """One :class:`ReliabilityCurve` per alignment of :data:`~viewselect.stats.ranking.ALIGNMENTS`."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, found {bins}")
    curves = []
    for a in ALIGNMENTS:
        spread, error = image_pairs(records, a)
        s, e, n = binned(spread, error, bins)
        rho = spearman(spread, error) if len(spread) >= 2 else math.nan
        curves.append(ReliabilityCurve(a, s, e, n, rho, split_half(records, a)))
    return curves


__all__ = ["DEFAULT_BINS", "ReliabilityCurve", "binned", "image_pairs", "reliability", "split_half"]
