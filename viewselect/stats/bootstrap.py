"""How sure is each camera's place? Bootstrap intervals over sequences, frames and test-time crops.

The engine keeps, per view (sequence × camera), the per-frame statistics the camera-level figures
are means of: each frame's ambiguity (all N test-time crops, :mod:`viewselect.engine.scoring`), the same
ambiguity on G disjoint groups of N/G crops, and each frame's mode MPJPE (three alignments). From those, one bootstrap
resample — without running the model again — is drawn as:

1. **sequences**: S sequences drawn with replacement (each sequence weighs equally, as in
   :func:`viewselect.stats.ranking.camera_ranking`);
2. **frames**: within each drawn sequence, its F frames drawn with replacement — the same frames
   for every camera (paired), so a hard frame is hard for all cameras at once;
3. **crops**: for every (view, frame), its G crop groups drawn with replacement; the
   frame's ambiguity moves by the mean of the drawn groups' ambiguities minus the mean of all G.
   The mean of G group estimates, each from N/G crops, varies about as much as one estimate from
   N crops, so this shift has the sampling spread of the full-N ambiguity while staying centred
   on it (a group of 2 crops underestimates a spread; only differences are used).
   Group g holds the same re-crops for every camera (``paired_groups``, as ``rank`` calls it), so the
   same groups are drawn for every camera of a frame — paired, as the frames are; drawn apart, they
   would add noise between cameras that the run does not have.

In each resample a camera's ambiguity is the mean over the drawn sequences of its mean over the
drawn frames; its regret the same mean of ``MPJPE − the best camera's MPJPE in that sequence``
(the best camera re-chosen inside the resample). Intervals are percentile intervals (default 95 %,
``n_resamples`` = 1000). Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed
gives the same intervals.

**Consensus** of a drop list of K cameras: for each camera, the share of resamples in which it is
among the K most ambiguous cameras of that resample (ties by camera id) — how often the same data,
drawn again, would drop it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handflow.errors import HandflowError

ALIGNMENTS = ("global", "rrr", "rr")
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class ViewStats:
    """Per-frame statistics of every view, aligned on (sequence, camera, frame); NaN where a
    sequence lacks the camera or a view lacks the frame.

    ambiguity_mm (S, C, F); group_ambiguity_mm (S, C, F, G); mpjpe_mm (3, S, C, F) for the
    alignments :data:`ALIGNMENTS`; n_frames (S,) frames of each sequence (the first n_frames[s]
    slots; the rest padding); visible (S, C, F, 42) bool, whether a camera sees each joint.
    """

    sequences: list[str]
    cameras: list[str]
    ambiguity_mm: np.ndarray
    group_ambiguity_mm: np.ndarray
    mpjpe_mm: np.ndarray
    n_frames: np.ndarray
    visible: np.ndarray

    def point_ambiguity(self) -> np.ndarray:
        """(C,) camera-level ambiguity, mm: mean over sequences of the mean over frames."""
        with np.errstate(invalid="ignore"), _quiet():
            return np.nanmean(np.nanmean(self.ambiguity_mm, axis=2), axis=0)


class _quiet:
    """Silences numpy's 'mean of empty slice' for NaN-padded cells (they stay NaN on purpose)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _arr(values) -> np.ndarray:
    """Floats with None (not finite when recorded) as NaN."""
    return np.array([[np.nan if v is None else v for v in row] if isinstance(row, list) else
                     (np.nan if row is None else row) for row in values], dtype=float)


def stats_from_records(records: list) -> ViewStats:
    """:class:`ViewStats` from the engine's :class:`~viewselect.records.ViewRecord` list."""
    if not records:
        raise HandflowError("bootstrap: no views")
    seqs = sorted({r.sequence for r in records})
    cams = sorted({r.camera for r in records})
    frames = {s: set() for s in seqs}
    for r in records:
        frames[r.sequence].update(r.frames)
    frames = {s: sorted(f) for s, f in frames.items()}
    S, C, F = len(seqs), len(cams), max(len(f) for f in frames.values())
    G = max((len(g) for r in records for g in r.frame_group_ambiguity_mm), default=1)
    amb = np.full((S, C, F), np.nan)
    grp = np.full((S, C, F, G), np.nan)
    mp = np.full((len(ALIGNMENTS), S, C, F), np.nan)
    vis = np.zeros((S, C, F, 42), bool)
    si, ci = {s: i for i, s in enumerate(seqs)}, {c: i for i, c in enumerate(cams)}
    pos = {s: {f: i for i, f in enumerate(fr)} for s, fr in frames.items()}  # frame id -> slot, once per sequence
    for r in records:
        s, c = si[r.sequence], ci[r.camera]
        slot = [pos[r.sequence][f] for f in r.frames]
        amb[s, c, slot] = _arr(r.frame_ambiguity_mm)
        g = _arr(r.frame_group_ambiguity_mm)
        grp[s, c, slot, : g.shape[1]] = g
        for a, name in enumerate(ALIGNMENTS):
            mp[a, s, c, slot] = _arr(getattr(r, f"frame_mpjpe_{name}_mm"))
        vis[s, c, slot] = np.asarray(r.visible, bool)
    return ViewStats(seqs, cams, amb, grp, mp, np.array([len(frames[s]) for s in seqs]), vis)


@dataclass(frozen=True)
class BootstrapResult:
    """Resampled camera-level figures: ``ambiguity_mm (B, C)``, ``regret_mm (3, B, C)`` (alignments
    :data:`ALIGNMENTS`), ``best_view_gain_mm (3, B)``: regret of the camera the ambiguity ranks first,
    minus the average camera's regret (mean over the drawn sequences; < 0: the ranking beats a
    random pick). ``level`` is the interval's coverage."""

    cameras: list[str]
    ambiguity_mm: np.ndarray
    regret_mm: np.ndarray
    best_view_gain_mm: np.ndarray
    level: float
    seed: int

    @property
    def n_resamples(self) -> int:
        return self.ambiguity_mm.shape[0]

    def interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval over resamples (axis 0): ``(low, high)``."""
        q = (1 - self.level) / 2
        with _quiet():
            return np.nanquantile(values, q, axis=0), np.nanquantile(values, 1 - q, axis=0)

    def ambiguity_interval(self) -> tuple[np.ndarray, np.ndarray]:
        return self.interval(self.ambiguity_mm)

    def excess_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Interval of each camera's ambiguity minus the rig's median camera ambiguity, both from the same
        resample (mm, (C,) each): what the default drop rule tests (viewselect.stats.recommend)."""
        with _quiet():
            median = np.nanmedian(self.ambiguity_mm, axis=1, keepdims=True)
        return self.interval(self.ambiguity_mm - median)

    def regret_interval(self, alignment: str = "global") -> tuple[np.ndarray, np.ndarray]:
        return self.interval(self.regret_mm[ALIGNMENTS.index(alignment)])

    def consensus(self, n_drop: int) -> np.ndarray:
        """(C,) share of resamples in which each camera is among the ``n_drop`` most ambiguous."""
        C = len(self.cameras)
        if not 0 <= n_drop <= C:
            raise HandflowError(f"consensus: cannot drop {n_drop} of {C} cameras")
        if n_drop == 0:
            return np.zeros(C)
        # order within each resample by (ambiguity, camera id), as viewselect.stats.ranking.selection_mask:
        # the last n_drop are dropped (of tied cameras, the higher id)
        amb = self.ambiguity_mm
        if np.isnan(amb).any():  # a camera no drawn sequence/frame holds: its mean over the other resamples
            with _quiet():
                amb = np.where(np.isnan(amb), np.nanmean(amb, axis=0, keepdims=True), amb)
        order = np.lexsort((np.arange(C)[None].repeat(self.n_resamples, 0), amb), axis=1)
        top = order[:, C - n_drop:]
        counts = np.bincount(top.ravel(), minlength=C)
        return counts / self.n_resamples


def bootstrap(stats: ViewStats, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              level: float = DEFAULT_LEVEL, paired_groups: bool = False) -> BootstrapResult:
    """Resample sequences, frames and crop groups (module docstring); deterministic for ``seed``.
    ``paired_groups``: the same groups for every camera of a frame (groups that hold the same crops or the
    same base draws for every camera, as the engine's do)."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise HandflowError(f"bootstrap: n_resamples must be a positive integer, found {n_resamples!r}")
    if not (isinstance(level, float) and 0 < level < 1):
        raise HandflowError(f"bootstrap: level must be in (0, 1), found {level!r}")
    rng = np.random.default_rng([seed, 16])
    S, C, F = stats.ambiguity_mm.shape
    G = stats.group_ambiguity_mm.shape[-1]
    grp = stats.group_ambiguity_mm
    with _quiet():
        grp_mean = np.nanmean(grp, axis=-1)  # (S, C, F)
    amb_out = np.empty((n_resamples, C))
    reg_out = np.empty((len(ALIGNMENTS), n_resamples, C))
    gain_out = np.empty((len(ALIGNMENTS), n_resamples))
    nf = stats.n_frames
    for b in range(n_resamples):
        s_idx = rng.integers(0, S, size=S)
        # frames: for drawn sequence i, F draws among its n_frames (padding slots never drawn)
        f_idx = (rng.random((S, F)) * nf[s_idx][:, None]).astype(np.int64)
        f_idx = np.where(np.arange(F)[None] < nf[s_idx][:, None], f_idx, -1)  # keep each sequence's F
        fi = np.maximum(f_idx, 0)
        take = lambda a: np.take_along_axis(a[s_idx], fi[:, None, :], axis=2)  # noqa: E731  (S, C, F)
        valid = (f_idx >= 0)[:, None, :]  # (S, 1, F)
        amb = take(stats.ambiguity_mm)
        if G > 1:
            g_frames = np.take_along_axis(grp[s_idx], fi[:, None, :, None], axis=2)  # (S, C, F, G)
            picks = rng.integers(0, G, size=(S, 1 if paired_groups else C, F, G))
            g = np.take_along_axis(g_frames, np.broadcast_to(picks, g_frames.shape), axis=3)
            with _quiet():
                amb = amb + (np.nanmean(g, axis=3) - take(grp_mean))
        with _quiet():
            amb_seq = np.nanmean(np.where(valid, amb, np.nan), axis=2)  # (S, C)
            amb_out[b] = np.nanmean(amb_seq, axis=0)
            first = np.nanargmin(np.where(np.isnan(amb_seq), np.inf, amb_seq), axis=1)  # least ambiguous per sequence
            for a in range(len(ALIGNMENTS)):
                mp_seq = np.nanmean(np.where(valid, take(stats.mpjpe_mm[a]), np.nan), axis=2)  # (S, C)
                regret = mp_seq - np.nanmin(mp_seq, axis=1, keepdims=True)
                reg_out[a, b] = np.nanmean(regret, axis=0)
                gain_out[a, b] = float(np.mean(regret[np.arange(S), first] - np.nanmean(regret, axis=1)))
    return BootstrapResult(stats.cameras, amb_out, reg_out, gain_out, level, seed)


def interval_columns(result: BootstrapResult, drop_list: list) -> dict[str, np.ndarray]:
    """Camera-level columns (in ``result.cameras`` order): ambiguity and regret intervals (mm) and,
    with a non-empty drop list, each camera's drop consensus (0–1)."""
    lo, hi = result.ambiguity_interval()
    cols = {"ambiguity_ci_low_mm": lo, "ambiguity_ci_high_mm": hi}
    for a in ALIGNMENTS:
        lo, hi = result.regret_interval(a)
        cols[f"regret_{a}_ci_low_mm"], cols[f"regret_{a}_ci_high_mm"] = lo, hi
    if drop_list:
        cols["drop_consensus"] = result.consensus(len(drop_list))
    return cols


def describe_level(level: float) -> str:
    pct = level * 100
    return f"{pct:.0f} %" if math.isclose(pct, round(pct)) else f"{pct:g} %"
