"""Regret, ambiguity ranks, keep/drop selection and ranker comparison (definitions: README.md, section "`rank` output").

Input: one row per (sequence, camera) with columns

==================  ===========================================================
sequence            sequence name (any hashable; e.g. ``Capture0/ROM04_...``)
camera              camera id (str or int)
ambiguity_mm        HandFlowNet's ambiguity (viewselect.engine.scoring: the modes' spread over test-time crops, RR), mm
mpjpe_global_mm     MPJPE of the mode prediction, Global alignment, mm
mpjpe_rrr_mm        same, RRR alignment
mpjpe_rr_mm         same, RR alignment
visible_fraction    fraction of the 42 joints visible in the image, in [0, 1]
ambiguity_global_mm (optional) the same spread without alignment, mm
ambiguity_rrr_mm    (optional) the same spread after the RRR alignment, mm
flow_spread_mm      (optional) the spread of the poses sampled from the flow, mm
baseline_spread_mm  (optional) a baseline model's spread, mm
==================  ===========================================================

Other columns (camera position, azimuth/elevation, …) are carried through; those constant per
camera also reach the camera-level table.

Definitions:

* ``regret_<a>_mm = mpjpe_<a>_mm − min over cameras of the same sequence`` (alignment ``a``).
* ``ambiguity_rank`` within a sequence: 1 = least ambiguous; ties share the lowest rank ("min").
* **Camera-level ranking** over the whole selection: a camera's score is the mean of its ambiguity
  over the sequences it appears in (each sequence weighted equally); its MPJPE/regret columns are
  means the same way. Ties in the selection are broken by camera id, so results are deterministic.
* **Selection** (mutually exclusive): ``drop=K`` drops the K most ambiguous cameras (0 ≤ K < C);
  ``keep=K`` keeps the K least ambiguous (1 ≤ K ≤ C); ``max_ambiguity_mm=MM`` keeps cameras whose
  score is ≤ MM (at least one must pass). None given keeps every camera. The per-sequence table gets
  the same rule applied within each sequence (``keep_in_sequence``), K clipped to that sequence's
  camera count.
* **Ranker summary**, per sequence: a ranker orders cameras by a score (lower = better). "best" is
  the regret of its top camera, "worst" of its bottom camera — when several cameras tie for top
  (bottom) the mean of their regrets, i.e. the expected value under random tie-breaking.
  "mean" is the average regret over all cameras (the same for every ranker; paper: 10.7 mm),
  ``spearman`` the rank correlation between the score (oriented lower = better, so positive means
  the ranker agrees with the MPJPE) and the MPJPE (NaN when either is constant).
  Rankers: ``ambiguity`` (HandFlowNet's ambiguity), ``aligned_ambiguity`` (the spread after the alignment
  of the MPJPE it is set against: ``records.ambiguity_field(a)``; if the columns are present), ``flow_spread`` (the flow's sample spread, the HandFlow paper's ambiguity; if the column is
  present), ``random`` (expected values: best = worst = mean, Spearman 0), ``visible_fraction`` (more
  visible joints = better), ``baseline_spread`` (if the column is present), ``oracle`` (ranks by the
  MPJPE itself: best regret 0, Spearman 1).
  The ``overall`` rows are means over sequences (Spearman: mean over sequences where defined).

Tables: the group-wise computations (regret and ranks within a sequence, the camera-level means,
the overall rows, the per-sequence selection) run in polars. pandas stays at the boundary, where it
serves better: the input table is validated as a pandas frame (``pd.to_numeric`` takes any column a
caller hands in) and :class:`RankResult` holds pandas frames, because its readers (the report and
figures, the bootstrap, coverage, subsets, the terminal and the openpyxl writer) index by label.
The two meet through NumPy columns (:func:`to_polars`, :func:`to_pandas`): polars' own
``from_pandas`` / ``to_pandas`` would need pyarrow, which is no longer a dependency.

Longer than most modules: the ranking statistics are one table pipeline (regret -> ranks -> rankers -> summary -> selection) whose steps share the polars frames; split, each part would pass the same frames around.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from handflow.errors import HandflowError
from viewselect.records import RANKED_ALIGNMENT, ambiguity_field

ALIGNMENTS = ("global", "rrr", "rr")
# how each ranker is named in terminal tables and reports
RANKER_LABELS = {
    "ambiguity": "HandFlowNet ambiguity",
    "aligned_ambiguity": "HandFlowNet ambiguity, same alignment",
    "flow_spread": "flow sample spread (paper)",
    "random": "random (expected)",
    "visible_fraction": "visible joints",
    "baseline_spread": "baseline spread",
    "oracle": "oracle (by MPJPE)",
}
REQUIRED_COLUMNS = (
    "sequence",
    "camera",
    "ambiguity_mm",
    "mpjpe_global_mm",
    "mpjpe_rrr_mm",
    "mpjpe_rr_mm",
    "visible_fraction",
)
BASELINE_COLUMN = "baseline_spread_mm"
ALIGNED_COLUMNS = tuple(ambiguity_field(a) for a in ALIGNMENTS if a != RANKED_ALIGNMENT)  # optional
FLOW_COLUMN = "flow_spread_mm"  # optional: the flow's sample spread
OVERALL = "overall"
SUMMARY_COLUMNS = (
    "sequence",
    "ranker",
    "alignment",
    "best_regret_mm",
    "worst_regret_mm",
    "mean_regret_mm",
    "spearman",
    "n_cameras",
)


def mpjpe_col(alignment: str) -> str:
    return f"mpjpe_{alignment}_mm"


def regret_col(alignment: str) -> str:
    return f"regret_{alignment}_mm"


def to_polars(df: pd.DataFrame) -> pl.DataFrame:
    """A pandas frame as polars, column by column through NumPy (no pyarrow)."""
    return pl.DataFrame({str(c): pl.Series(str(c), df[c].to_numpy(), strict=False) for c in df.columns})


def to_pandas(df: pl.DataFrame) -> pd.DataFrame:
    """A polars frame as pandas, column by column through NumPy (no pyarrow)."""
    return pd.DataFrame({c: df[c].to_numpy() for c in df.columns})


# ---------------------------------------------------------------- validation


def validate_table(table: pd.DataFrame) -> pd.DataFrame:
    """Check the per-(sequence, camera) table; returns a copy sorted by (sequence, camera)."""
    if not isinstance(table, pd.DataFrame):
        raise HandflowError(f"ranking table: expected a pandas DataFrame, found {type(table).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise HandflowError(f"ranking table: missing column(s) {', '.join(missing)}")
    if len(table) == 0:
        raise HandflowError("ranking table: no rows")
    dup = table.duplicated(["sequence", "camera"])
    if dup.any():
        row = table.loc[dup].iloc[0]
        raise HandflowError(
            f"ranking table: duplicate row for sequence {row['sequence']!r} camera {row['camera']!r}"
        )
    numeric = [c for c in REQUIRED_COLUMNS[2:]] + [c for c in (BASELINE_COLUMN, FLOW_COLUMN, *ALIGNED_COLUMNS) if c in table.columns]
    for col in numeric:
        try:
            values = pd.to_numeric(table[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as err:
            raise HandflowError(f"ranking table: column {col} is not numeric") from err
        if not np.all(np.isfinite(values)):
            raise HandflowError(f"ranking table: non-finite value in column {col}")
        if col != "visible_fraction" and np.any(values < 0):
            raise HandflowError(f"ranking table: negative value in column {col}")
    vf = table["visible_fraction"].to_numpy(dtype=np.float64)
    if np.any((vf < 0) | (vf > 1)):
        raise HandflowError("ranking table: visible_fraction outside [0, 1]")
    out = table.copy()
    for col in numeric:
        out[col] = out[col].astype(np.float64)
    return out.sort_values(["sequence", "camera"], kind="stable").reset_index(drop=True)


def _check_count(name: str, k, n: int, clip: bool) -> int:
    """Validate K for ``--drop`` (0 ≤ K < n) or ``--keep`` (1 ≤ K ≤ n); ``clip`` clips instead of raising."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise HandflowError(f"--{name} expects a whole number of cameras, found {k!r}")
    k = int(k)
    lo, hi = (0, n - 1) if name == "drop" else (1, n)
    if k < lo:
        raise HandflowError(f"--{name} {k} is out of range: must be at least {lo}")
    if k > hi:
        if clip:
            return hi
        raise HandflowError(f"--{name} {k} is out of range: must be between {lo} and {hi} for {n} cameras")
    return k


def _selection_mode(drop, keep, max_ambiguity_mm) -> str | None:
    given = [n for n, v in (("drop", drop), ("keep", keep), ("max-ambiguity", max_ambiguity_mm)) if v is not None]
    if len(given) > 1:
        found = ", ".join("--" + g for g in given)
        raise HandflowError(f"choose one of --drop, --keep, --max-ambiguity (found {found})")
    return given[0] if given else None


# ---------------------------------------------------------------- regret and ranks


def _with_regret_and_rank(per: pl.DataFrame) -> pl.DataFrame:
    """``regret_<a>_mm`` (MPJPE minus the sequence's best) and ``ambiguity_rank`` within each sequence."""
    return per.with_columns(
        *[(pl.col(mpjpe_col(a)) - pl.col(mpjpe_col(a)).min().over("sequence")).alias(regret_col(a))
          for a in ALIGNMENTS],
        pl.col("ambiguity_mm").rank("min").over("sequence").cast(pl.Int64).alias("ambiguity_rank"),
    )


def add_regret_and_rank(table: pd.DataFrame) -> pd.DataFrame:
    """Per-(sequence, camera) table plus ``regret_<a>_mm`` for each alignment and ``ambiguity_rank``."""
    return to_pandas(_with_regret_and_rank(to_polars(validate_table(table))))


def _camera_ranking(per: pl.DataFrame) -> pl.DataFrame:
    means = ["ambiguity_mm", *map(mpjpe_col, ALIGNMENTS), *map(regret_col, ALIGNMENTS), "visible_fraction"]
    means += [c for c in (*ALIGNED_COLUMNS, FLOW_COLUMN, BASELINE_COLUMN) if c in per.columns]
    # Carry camera attributes (position, azimuth, ...) that do not vary between sequences.
    known = set(means) | {"sequence", "camera", "ambiguity_rank", "keep_in_sequence"}
    extra = [c for c in per.columns if c not in known]
    constant = []
    if extra:
        distinct = per.group_by("camera").agg(pl.col(extra).n_unique())
        constant = [c for c in extra if distinct[c].max() <= 1]
    cams = (per.group_by("camera")
            .agg(pl.len().cast(pl.Int64).alias("n_sequences"), *[pl.col(c).mean() for c in means],
                 *[pl.col(c).first() for c in constant])
            .sort("camera"))
    cams = cams.with_columns(pl.col("ambiguity_mm").rank("min").cast(pl.Int64).alias("ambiguity_rank"))
    return cams.sort("ambiguity_mm", "camera", maintain_order=True)


def camera_ranking(table: pd.DataFrame) -> pd.DataFrame:
    """Camera-level table over the selection: means over the sequences each camera appears in.

    Columns: camera, n_sequences, ambiguity_mm, mpjpe_<a>_mm, regret_<a>_mm, visible_fraction,
    baseline_spread_mm (if present), any extra column constant per camera, ambiguity_rank
    (1 = least ambiguous, ties share the lowest rank). Rows in ranking order (ties by camera id).
    """
    per = to_polars(table) if regret_col("global") in table.columns else _with_regret_and_rank(
        to_polars(validate_table(table)))
    return to_pandas(_camera_ranking(per))


def selection_mask(
    scores: pd.Series,
    cameras: pd.Series,
    *,
    drop: int | None = None,
    keep: int | None = None,
    max_ambiguity_mm: float | None = None,
    clip: bool = False,
) -> np.ndarray:
    """Boolean keep mask for cameras with ambiguity ``scores`` (see module docstring for the rule).

    ``clip=True`` clips K to the number of cameras instead of raising (used per sequence).
    """
    mode = _selection_mode(drop, keep, max_ambiguity_mm)
    n = len(scores)
    order = (pl.DataFrame({"s": np.asarray(scores, float), "c": pl.Series(np.asarray(cameras), strict=False)})
             .with_row_index().sort("s", "c", maintain_order=True)["index"].to_numpy())
    mask = np.ones(n, dtype=bool)
    if mode is None:
        return mask
    if mode == "max-ambiguity":
        try:
            m = float(max_ambiguity_mm)
        except (TypeError, ValueError):
            m = math.nan
        if not math.isfinite(m) or m < 0:
            raise HandflowError(f"--max-ambiguity must be a non-negative number of mm, found {max_ambiguity_mm!r}")
        mask = np.asarray(scores, float) <= m
        if not mask.any() and not clip:
            raise HandflowError(
                f"--max-ambiguity {m:g} mm keeps no camera (the least ambiguous has {float(np.min(scores)):.3g} mm)"
            )
        return mask
    if mode == "drop":
        n_keep = n - _check_count("drop", drop, n, clip)
    else:
        n_keep = _check_count("keep", keep, n, clip)
    mask[:] = False
    mask[order[:n_keep]] = True
    return mask


# ---------------------------------------------------------------- rankers and summary


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties, then Pearson); NaN if either is constant."""
    rx = pl.Series(np.asarray(x, float)).rank("average").to_numpy().astype(float)
    ry = pl.Series(np.asarray(y, float)).rank("average").to_numpy().astype(float)
    if len(rx) != len(ry):
        raise HandflowError(f"spearman: lengths differ ({len(rx)} vs {len(ry)})")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else math.nan


def ranker_scores(per: pd.DataFrame | pl.DataFrame, alignment: str) -> dict[str, np.ndarray | None]:
    """Scores (lower = better) of each ranker for the rows of ``per``; ``None`` marks 'random'."""
    scores: dict[str, np.ndarray | None] = {"ambiguity": np.asarray(per["ambiguity_mm"], dtype=float)}
    if all(c in per.columns for c in ALIGNED_COLUMNS):
        scores["aligned_ambiguity"] = np.asarray(per[ambiguity_field(alignment)], dtype=float)
    if FLOW_COLUMN in per.columns:
        scores["flow_spread"] = np.asarray(per[FLOW_COLUMN], dtype=float)
    scores["random"] = None
    scores["visible_fraction"] = -np.asarray(per["visible_fraction"], dtype=float)
    if BASELINE_COLUMN in per.columns:
        scores["baseline_spread"] = np.asarray(per[BASELINE_COLUMN], dtype=float)
    scores["oracle"] = np.asarray(per[mpjpe_col(alignment)], dtype=float)
    return scores


def _summarise_one(regret: np.ndarray, mpjpe: np.ndarray, score: np.ndarray | None) -> tuple[float, ...]:
    """(best, worst, mean regret, Spearman) of one ranker in one sequence."""
    mean = float(regret.mean())
    if score is None:  # random ranker: expected values
        return mean, mean, mean, 0.0
    best = float(regret[score == score.min()].mean())
    worst = float(regret[score == score.max()].mean())
    return best, worst, mean, spearman(score, mpjpe)


def _summarize(per: pl.DataFrame, alignments=ALIGNMENTS) -> pl.DataFrame:
    rows = []
    for grp in per.sort("sequence", maintain_order=True).partition_by("sequence", maintain_order=True):
        seq = grp["sequence"][0]
        for a in alignments:
            regret, mp = grp[regret_col(a)].to_numpy().astype(float), grp[mpjpe_col(a)].to_numpy().astype(float)
            for name, score in ranker_scores(grp, a).items():
                rows.append((seq, name, a, *_summarise_one(regret, mp, score), len(grp)))
    schema = {"sequence": per.schema["sequence"], "ranker": pl.String, "alignment": pl.String,
              **{c: pl.Float64 for c in SUMMARY_COLUMNS[3:7]}, "n_cameras": pl.Int64}
    df = pl.DataFrame(rows, schema=schema, orient="row")
    overall = (
        df.group_by("ranker", "alignment", maintain_order=True)
        .agg(
            pl.col("best_regret_mm").mean(),
            pl.col("worst_regret_mm").mean(),
            pl.col("mean_regret_mm").mean(),
            pl.col("spearman").fill_nan(None).mean().fill_null(math.nan),  # mean over sequences where defined
            pl.col("n_cameras").sum(),
        )
        .with_columns(pl.lit(OVERALL).alias("sequence"))
    )
    return pl.concat([overall.select(SUMMARY_COLUMNS).cast({"sequence": pl.String}),
                      df.cast({"sequence": pl.String})])


def summarize(per: pd.DataFrame, alignments=ALIGNMENTS) -> pd.DataFrame:
    """Best/worst/mean regret and Spearman per (sequence, ranker, alignment), plus ``overall`` rows.

    ``per`` is the output of :func:`add_regret_and_rank` (computed if absent). Columns:
    :data:`SUMMARY_COLUMNS`; ``sequence`` is the name or ``"overall"`` (rows first), ``n_cameras``
    the sequence's camera count (overall: the sum over sequences, i.e. the number of views scored).
    """
    if regret_col("global") not in per.columns:
        per = add_regret_and_rank(per)
    return to_pandas(_summarize(to_polars(per), alignments))


def _regret_grid(per, alignment: str, order: list) -> np.ndarray:
    """(sequences, cameras in ``order``) regret array; NaN where a sequence lacks the camera."""
    seqs, cams = np.asarray(per["sequence"]), np.asarray(per["camera"])
    regret = np.asarray(per[regret_col(alignment)], dtype=float)
    _, s_idx = np.unique(seqs, return_inverse=True)
    column = {c: j for j, c in enumerate(order)}
    grid = np.full((int(s_idx.max()) + 1 if len(s_idx) else 0, len(order)), np.nan)
    there = np.array([c in column for c in cams], dtype=bool)
    grid[s_idx[there], [column[c] for c in cams[there]]] = regret[there]
    return grid


def regret_vs_dropped(per: pd.DataFrame, cameras: pd.DataFrame, alignment: str = "global") -> pd.DataFrame:
    """Regret as the most ambiguous cameras (camera-level order of ``cameras``) are dropped one by one.

    Rows ``n_dropped = 0 .. C−1`` with ``mean_regret_mm`` (average regret of the kept cameras) and
    ``best_regret_mm`` (regret of the best kept camera, i.e. what the reduced rig can still reach),
    both averaged over sequences; a sequence contributes the cameras it has among the kept ones.
    """
    if regret_col(alignment) not in per.columns:
        per = add_regret_and_rank(per)
    order = list(cameras["camera"])
    vals = _regret_grid(per, alignment, order)  # (S, C) in ranking order, NaN where a sequence lacks the camera
    present = ~np.isnan(vals)
    csum = np.cumsum(np.where(present, vals, 0.0), axis=1)
    ccount = np.cumsum(present, axis=1)
    cmin = np.fmin.accumulate(vals, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prefix_mean = csum / ccount
    n = len(order)
    n_kept = np.arange(n, 0, -1)
    return pd.DataFrame(
        {
            "n_dropped": np.arange(n),
            "n_kept": n_kept,
            "mean_regret_mm": np.nanmean(prefix_mean[:, n_kept - 1], axis=0),
            "best_regret_mm": np.nanmean(cmin[:, n_kept - 1], axis=0),
        }
    )


# ---------------------------------------------------------------- one call


@dataclass(frozen=True)
class RankResult:
    """Everything ``rank`` reports. ``cameras``: camera-level table with ``keep``; ``sequences``:
    per-(sequence, camera) table with regret, ``ambiguity_rank`` and ``keep_in_sequence``;
    ``summary``: :func:`summarize`; ``drop_list``: dropped camera ids in ranking order (best first)."""

    cameras: pd.DataFrame
    sequences: pd.DataFrame
    summary: pd.DataFrame
    drop_list: list


def rank_views(
    table: pd.DataFrame,
    *,
    drop: int | None = None,
    keep: int | None = None,
    max_ambiguity_mm: float | None = None,
) -> RankResult:
    """Regret, ranks, selection and ranker summary for a per-(sequence, camera) table."""
    _selection_mode(drop, keep, max_ambiguity_mm)
    per = _with_regret_and_rank(to_polars(validate_table(table)))
    cams = _camera_ranking(per)
    opts = dict(drop=drop, keep=keep, max_ambiguity_mm=max_ambiguity_mm)
    cams = cams.with_columns(pl.Series("keep", selection_mask(cams["ambiguity_mm"].to_numpy(),
                                                              cams["camera"].to_numpy(), **opts)))
    keep_in_sequence = np.zeros(len(per), dtype=bool)
    rows = per.with_row_index("_row")
    for sub in rows.partition_by("sequence", maintain_order=True):
        keep_in_sequence[sub["_row"].to_numpy()] = selection_mask(
            sub["ambiguity_mm"].to_numpy(), sub["camera"].to_numpy(), clip=True, **opts)
    per = (per.with_columns(pl.Series("keep_in_sequence", keep_in_sequence))
           .sort("sequence", "ambiguity_rank", "camera", maintain_order=True))
    drop_list = cams.filter(~pl.col("keep"))["camera"].to_list()
    return RankResult(cameras=to_pandas(cams), sequences=to_pandas(per), summary=to_pandas(_summarize(per)),
                      drop_list=drop_list)


def random_order_curve(per: pd.DataFrame, cameras: pd.DataFrame, n_orders: int = 200, seed: int = 0) -> pd.DataFrame:
    """:func:`regret_vs_dropped` averaged over ``n_orders`` random camera orders (expected values)."""
    rng = np.random.default_rng(seed)
    ids = cameras["camera"].to_numpy()
    curves = [regret_vs_dropped(per, pd.DataFrame({"camera": ids[rng.permutation(len(ids))]}))
              for _ in range(max(1, n_orders))]
    out = curves[0].copy()
    for col in ("mean_regret_mm", "best_regret_mm"):
        out[col] = np.mean([c[col].to_numpy() for c in curves], axis=0)
    return out
