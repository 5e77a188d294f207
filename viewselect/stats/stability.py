"""How many pose samples does the ranking need? Agreement of rankings made with fewer samples.

For sample counts N (e.g. 25 / 50 / 100 / 200) against a reference count (400), Kendall's τ-b
between the cameras' ambiguity scores — camera level (mean over sequences, the ranking ``rank``
reports) and per sequence (mean of the per-sequence τ) — and the overlap of the K most ambiguous
cameras (the cameras a ``--drop K`` would remove). τ = 1: the same order; 0.95 is the bar above
which a smaller N is taken to rank "the same".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from handflow.errors import HandflowError

TAU_BAR = 0.95


def kendall_tau(a, b) -> float:
    """Kendall's τ-b of two score vectors (ties handled); NaN when either is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise HandflowError(f"kendall_tau: expected two vectors of the same length, found {a.shape} and {b.shape}")
    return float(kendalltau(a, b).statistic)


def stability_table(tables: dict[int, pd.DataFrame], reference: int, top_k: int = 20) -> pd.DataFrame:
    """One row per sample count N ≠ ``reference``: ``samples, kendall_tau_cameras,
    kendall_tau_sequences_mean, top_k_overlap`` (share of the reference's ``top_k`` most ambiguous
    cameras that N also puts in its top k).

    tables: N -> per-(sequence, camera) table with ``sequence, camera, ambiguity_mm`` (the engine's
    view table), the same views for every N.
    """
    if reference not in tables:
        raise HandflowError(f"stability: no table for the reference sample count {reference}")
    ref = tables[reference].set_index(["sequence", "camera"])["ambiguity_mm"].sort_index()
    ref_cam = ref.groupby(level="camera").mean()
    k = min(top_k, len(ref_cam))
    ref_top = set(ref_cam.sort_values(kind="stable").index[-k:])
    rows = []
    for n in sorted(tables):
        if n == reference:
            continue
        cur = tables[n].set_index(["sequence", "camera"])["ambiguity_mm"].sort_index()
        if not cur.index.equals(ref.index):
            raise HandflowError(f"stability: the views scored with {n} samples differ from the reference's")
        cam = cur.groupby(level="camera").mean().reindex(ref_cam.index)
        per_seq = [kendall_tau(cur.loc[s].to_numpy(), ref.loc[s].to_numpy()) for s in ref.index.unique("sequence")]
        top = set(cam.sort_values(kind="stable").index[-k:])
        rows.append({"samples": n, "kendall_tau_cameras": kendall_tau(cam.to_numpy(), ref_cam.to_numpy()),
                     "kendall_tau_sequences_mean": float(np.nanmean(per_seq)),
                     "top_k_overlap": len(top & ref_top) / k if k else float("nan")})
    return pd.DataFrame(rows)


def smallest_stable(table: pd.DataFrame, bar: float = TAU_BAR, column: str = "kendall_tau_cameras") -> int | None:
    """The smallest N whose τ reaches ``bar`` (and every larger N's too); None if none does."""
    ok = None
    for n, tau in sorted(zip(table["samples"], table[column]), reverse=True):
        if not tau >= bar:
            break
        ok = int(n)
    return ok
