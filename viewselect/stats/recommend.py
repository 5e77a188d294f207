"""The default recommendation: which cameras to drop when the user asks for nothing in particular.

Rule (``rank`` without ``--drop`` / ``--keep`` / ``--max-ambiguity``):

1. **Candidates**: cameras whose bootstrap interval (:mod:`viewselect.stats.bootstrap`, 95 %) of
   ambiguity minus the rig's median camera ambiguity — both from the same resample — lies wholly above
   zero: cameras that are more ambiguous than the typical camera however the sequences, frames and
   crop groups are redrawn. The median is taken inside each resample because a resample moves every
   camera's ambiguity together (the same frames, the same crop groups for all cameras); set against a
   fixed median, that shared movement would widen every interval and hide which cameras stand out.
2. **Coverage cap**: candidates are dropped most ambiguous first, and a candidate is held back when
   dropping it would leave some joint-frame seen by fewer than ``min(3, cameras that see it in the
   full rig)`` kept cameras — so the kept rig still sees every joint from at least 3 cameras
   wherever the full rig did (a joint-frame is a valid joint of one frame of one sequence, "seen"
   by the engine's visibility rule).

The verdict (:func:`verdict`) states what to drop, how sure (the drop list's consensus), and
whether the ambiguity ranking beat random on this data: the regret of the camera it ranks first in
each sequence minus the average camera's regret (which is what a random pick gets on average),
with its bootstrap interval — "beat random" when the whole interval lies below zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewselect.stats.bootstrap import BootstrapResult, ViewStats, describe_level

MIN_VIEWS = 3
DEFAULT_RULE = ("drop the cameras whose ambiguity lies above the rig's median camera ambiguity in the whole 95 % "
                "bootstrap interval (the median re-taken in each resample), most ambiguous first, unless that leaves a joint-frame seen by fewer than "
                "min(3, cameras seeing it in the full rig) kept cameras")


@dataclass(frozen=True)
class Recommendation:
    """``drop_list`` (most ambiguous first); ``candidates``: cameras whose interval lies above the
    median; ``held_for_coverage``: candidates kept by the coverage cap; ``median_mm``: the rig's
    median camera ambiguity; ``reason``: one line saying why."""

    drop_list: list
    candidates: list
    held_for_coverage: list
    median_mm: float
    reason: str


def coverage_matrix(stats: ViewStats) -> np.ndarray:
    """(C, P) bool: camera c sees joint-frame p (all sequences' real frames × 42 joints)."""
    S, C, F = stats.ambiguity_mm.shape
    real = np.arange(F)[None, :] < stats.n_frames[:, None]  # (S, F)
    vis = stats.visible.transpose(1, 0, 2, 3)[:, real]  # (C, real frames, 42)
    return vis.reshape(C, -1)


def recommend_drop(cameras: list, point_mm: np.ndarray, excess_low_mm: np.ndarray, seen: np.ndarray,
                   level: float = 0.95, min_views: int = MIN_VIEWS) -> Recommendation:
    """The default drop list (module docstring). ``point_mm`` (C,) camera ambiguity; ``excess_low_mm``
    (C,) the low end of the interval of its excess over the rig's median
    (:meth:`~viewselect.stats.bootstrap.BootstrapResult.excess_interval`); ``seen (C, P)`` from
    :func:`coverage_matrix`."""
    point = np.asarray(point_mm, float)
    median = float(np.nanmedian(point))
    above = np.asarray(excess_low_mm, float) > 0
    # most ambiguous first; ties by the higher camera id first, as the ranking's selection drops them
    order = sorted(np.flatnonzero(above), key=lambda i: (point[i], str(cameras[i])), reverse=True)
    count = seen.sum(0).astype(np.int64)
    need = np.minimum(min_views, count)
    dropped, held = [], []
    for i in order:
        if np.all(count - seen[i] >= need):
            count = count - seen[i]
            dropped.append(cameras[i])
        else:
            held.append(cameras[i])
    pct = describe_level(level)
    if not order:
        reason = (f"no camera dropped: no camera's ambiguity lies above the rig's median ({median:.1f} mm) in "
                  f"its whole {pct} interval")
    else:
        reason = (f"dropping {len(dropped)} of {len(cameras)} cameras: their ambiguity lies above the rig's "
                  f"median ({median:.1f} mm) in the whole {pct} interval")
        if held:
            reason += (f"; {len(held)} more such camera(s) kept so every joint stays seen by ≥ {min_views} cameras "
                       "wherever the full rig sees it")
    return Recommendation(dropped, [cameras[i] for i in order], held, median, reason)


@dataclass(frozen=True)
class Verdict:
    """The figures the report's opening sentence states (all computed here, none typed in)."""

    n_cameras: int
    drop_list: list
    consensus: dict  # camera -> share of resamples dropping it
    min_consensus: float  # NaN without a drop list
    best_view_gain_mm: float  # point estimate (alignment global), < 0: better than random
    best_view_gain_ci_mm: tuple[float, float]
    beat_random: bool
    level: float
    n_resamples: int
    text: str


def verdict(boot: BootstrapResult, drop_consensus: dict, gain_point_mm: float, rule: str = "") -> Verdict:
    """Sentence and figures: what to drop, how sure, and whether the ambiguity ranking beat random.
    ``drop_consensus``: the drop list (in its order) -> each camera's consensus, as
    :func:`viewselect.stats.bootstrap.interval_columns` put it in the camera table (computed there, once).
    ``gain_point_mm``: the best-ranked camera's regret minus the average camera's, from the full data
    (``ranking.summarize``'s overall ambiguity row: best − mean). ``rule``: how the list was chosen."""
    drop_list = list(drop_consensus)
    cons = {c: float(v) for c, v in drop_consensus.items()}
    lo, hi = boot.interval(boot.best_view_gain_mm[0])
    lo, hi = float(lo), float(hi)
    beat = hi < 0
    pct = describe_level(boot.level)
    n = len(boot.cameras)
    if drop_list:
        shown = ", ".join(f"{c} ({cons[c]:.0%})" for c in drop_list[:12]) + (" …" if len(drop_list) > 12 else "")
        what = (f"Drop {len(drop_list)} of {n} cameras{(' (' + rule + ')') if rule else ''}: {shown}; in "
                f"brackets the share of {boot.n_resamples} bootstrap resamples that drop each one (lowest "
                f"{min(cons.values()):.0%}).")
    else:
        what = f"Keep {'the one camera' if n == 1 else f'all {n} cameras'}{(' (' + rule + ')') if rule else ''}."
    if beat:
        how = (f"The ambiguity ranking beat random on this data: the camera it ranks first in each sequence has "
               f"{-gain_point_mm:.1f} mm less regret than the average camera (a random pick), {pct} interval "
               f"{-hi:.1f} to {-lo:.1f} mm less.")
    else:
        how = (f"The ambiguity ranking did not beat random with confidence on this data: its first-ranked "
               f"camera's regret minus the average camera's is {gain_point_mm:+.1f} mm ({pct} interval "
               f"{lo:+.1f} to {hi:+.1f} mm, which reaches zero or above).")
    return Verdict(n, list(drop_list), cons, min(cons.values()) if cons else float("nan"), float(gain_point_mm),
                   (lo, hi), beat, boot.level, boot.n_resamples, f"{what} {how}")
