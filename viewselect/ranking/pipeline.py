"""``viewselect rank``: evaluate every camera of the selected sequences, rank, choose, write tables.

Longer than most modules: it is the one place the rank command's steps meet (request checks, scoring, ranking, bootstrap, rule, triangulation, curves, notes, provenance); each step lives in its own module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from handflow.data.interhand import InterHandDataset
from handflow.errors import HandflowError
from handflow.provenance import provenance
from viewselect.stats.calibration import DEFAULT_BINS, ReliabilityCurve, reliability
from viewselect.stats.bootstrap import DEFAULT_RESAMPLES, BootstrapResult, bootstrap, interval_columns, stats_from_records
from viewselect.engine.scoring import RankConfig, evaluate_views, triangulation_scenes, view_table
from viewselect.stats.ranking import ALIGNMENTS, RankResult, random_order_curve, rank_views, regret_vs_dropped
from viewselect.stats.recommend import DEFAULT_RULE, Recommendation, Verdict, coverage_matrix, recommend_drop, verdict
from viewselect.records import SequenceOverlay, SkippedView, ViewRecord
from viewselect.rig.comparison import kept_summary
from viewselect.engine.viewcache import default_cache_root

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default.pt"  # viewselect/models/


@dataclass
class RankRequest:
    sequence: str = "Capture0-1"
    data_root: str | None = None  # None: the embedded synthetic capture (generated when missing)
    split: str = "test"
    model: str | None = None  # None: the shipped default model
    compare_model: str | None = None  # a baseline whose spread becomes a ranker
    mano_dir: str | None = None  # None: the synthetic MANO (viewselect.manodir), also for the data's visibility
    cameras: list[str] | None = None
    drop: int | None = None
    keep: int | None = None
    max_ambiguity_mm: float | None = None
    strategy: str = "ambiguity"
    alignment: str = "global"
    pixel_noise_px: float = 1.0
    engine: RankConfig = RankConfig()  # samples, frames, batch, seed of the per-view scoring (viewselect.engine.scoring)
    device: str | None = None
    bootstrap_resamples: int = DEFAULT_RESAMPLES  # resamples behind the intervals and the consensus
    error_vs_cameras: bool = False  # triangulation error and regret vs K kept, four ways (viewselect.rig.subsets)
    # what the report draws besides the tables: computed here, so the report only renders
    overlay_samples: int = 0  # poses sampled for each overlay (0: no overlays)
    regret_orders: int = 0  # random camera orders behind the regret-vs-dropped curves (0: no curves)


@dataclass
class RankOutcome:
    result: RankResult
    views: pd.DataFrame
    triangulation: dict  # kept vs full vs random rig (triangulation.kept_summary; nothing dropped: all the whole rig)
    provenance: dict
    records: list[ViewRecord]
    # views left out because none of their images could be read
    skipped_views: list[SkippedView] = field(default_factory=list)
    # this process's rank under torchrun (every process gets the same result; only rank 0 writes)
    process_rank: int = 0
    overlays: list[SequenceOverlay] = field(default_factory=list)  # with RankRequest.overlay_samples
    bootstrap: BootstrapResult | None = None
    # the default drop rule's result (None when --drop / --keep / --max-ambiguity chose the list)
    recommendation: Recommendation | None = None
    verdict: Verdict | None = None
    # viewselect.rig.subsets.subset_curves' table (with RankRequest.error_vs_cameras)
    error_vs_cameras: pd.DataFrame | None = None
    # regret as cameras are dropped most-ambiguous first / in random order (with RankRequest.regret_orders;
    # rank_stats.regret_vs_dropped and random_order_curve)
    regret_curves: tuple[pd.DataFrame, pd.DataFrame] | None = None
    # images binned by predicted spread against realised error, per alignment (viewselect.stats.calibration)
    reliability: list[ReliabilityCurve] = field(default_factory=list)
    # what the run could not do on this rig and did not need to (each said once: the CLI prints them as
    # `note: ...`, summary.json and the report hold them): angles the rig cannot define, a curve not drawn
    notes: list[str] = field(default_factory=list)

    def summary_extra(self) -> dict:
        """What ``summary.json`` holds besides the tables: triangulation, the rule, the verdict."""
        out: dict = {}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.triangulation:
            out["triangulation"] = self.triangulation
        if self.bootstrap is not None:
            out["bootstrap"] = {"n_resamples": self.bootstrap.n_resamples, "level": self.bootstrap.level,
                                "seed": self.bootstrap.seed, "over": ["sequences", "frames", "test-time crop groups"]}
        if self.recommendation is not None:
            rec = self.recommendation
            out["recommendation"] = {"rule": DEFAULT_RULE, "reason": rec.reason, "median_ambiguity_mm": rec.median_mm,
                                     "candidates": rec.candidates, "held_for_coverage": rec.held_for_coverage}
        if self.verdict is not None:
            v = self.verdict
            out["verdict"] = {"text": v.text, "drop_consensus": v.consensus, "min_consensus": v.min_consensus,
                              "best_view_gain_mm": v.best_view_gain_mm,
                              "best_view_gain_ci_mm": list(v.best_view_gain_ci_mm), "beat_random": v.beat_random}
        if self.reliability:
            out["reliability"] = {"bins": "equal-count groups of images in ascending spread",
                                  "ideal": "error = spread", "curves": [c.to_json() for c in self.reliability]}
        return out

    @property
    def skipped_images(self) -> int:
        """Unreadable images skipped in the views that were scored (the skipped views not included)."""
        return sum(len(r.skipped_images) for r in self.records)


def _check(req: RankRequest) -> None:
    given = [n for n, v in (("--drop", req.drop), ("--keep", req.keep), ("--max-ambiguity", req.max_ambiguity_mm))
             if v is not None]
    if len(given) > 1:
        raise HandflowError(f"{' and '.join(given)} conflict: give at most one of --drop, --keep, --max-ambiguity")
    if req.alignment not in ALIGNMENTS:
        raise HandflowError(f"unknown --alignment {req.alignment!r} (expected one of {', '.join(ALIGNMENTS)})")
    if req.strategy not in ("ambiguity", "coverage"):
        raise HandflowError(f"unknown --strategy {req.strategy!r} (expected ambiguity or coverage)")
    if req.strategy == "coverage" and req.keep is None:
        raise HandflowError("--strategy coverage needs --keep K")
    if isinstance(req.bootstrap_resamples, bool) or not isinstance(req.bootstrap_resamples, int) \
            or req.bootstrap_resamples < 1:
        raise HandflowError(f"--bootstrap must be a positive number of resamples, found {req.bootstrap_resamples!r}")
    for name, value, low in (("--drop", req.drop, 0), ("--keep", req.keep, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise HandflowError(f"{name} expects a whole number of cameras, found {value!r}")
        if value is not None and value < low:
            raise HandflowError(f"{name} {value} is out of range: must be at least {low}")
    if req.max_ambiguity_mm is not None:
        m = req.max_ambiguity_mm
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m < 0:
            raise HandflowError(f"--max-ambiguity must be a non-negative number of mm, found {m!r}")
    if not (math.isfinite(req.pixel_noise_px) and req.pixel_noise_px >= 0):
        raise HandflowError(f"pixel noise must be >= 0 px, found {req.pixel_noise_px!r}")
    if req.overlay_samples < 0:
        raise HandflowError(f"--overlay-samples must be at least 1, found {req.overlay_samples}")
    if req.regret_orders < 0:
        raise HandflowError(f"random orders must be at least 0, found {req.regret_orders}")


def check_counts(req: RankRequest, n_cameras: int) -> None:
    """``--drop K`` (0 ≤ K < C) and ``--keep K`` (1 ≤ K ≤ C) against the C cameras to be scored:
    called before any view is scored, so a wrong K costs nothing."""
    if req.drop is not None and req.drop > n_cameras - 1:
        raise HandflowError(f"--drop {req.drop} is out of range: must be between 0 and {n_cameras - 1} "
                            f"for {n_cameras} cameras")
    if req.keep is not None and req.keep > n_cameras:
        raise HandflowError(f"--keep {req.keep} is out of range: must be between 1 and {n_cameras} "
                            f"for {n_cameras} cameras")


def resolve_model_path(model: str | None) -> Path:
    path = Path(model) if model else DEFAULT_MODEL
    if not path.is_file():
        if model:
            raise HandflowError(f"missing model checkpoint: {path}")
        raise HandflowError(
            f"no shipped default model at {path}: train one with `viewselect train-model --config default` "
            "and pass --model runs/default/model.pt"
        )
    return path


def run_rank(req: RankRequest) -> RankOutcome:
    """Score, rank and select; under torchrun the views are sharded over the processes."""
    from viewselect.engine.distributed import ProcessGroup

    proc = ProcessGroup.join(req.device)
    try:
        return _run_rank(req, proc)
    finally:
        proc.leave()


def _scored_cameras(ds: InterHandDataset, pairs, cameras: list[str] | None) -> set[str]:
    """The camera ids that will be scored over the selected sequences (unknown ids are
    reported by :func:`viewselect.engine.scoring.evaluate_views`)."""
    ids = {c for capture, seq in pairs for c in ds.camera_ids(capture, seq)}
    if cameras is None:
        return ids
    unknown = [c for c in cameras if c not in ids]
    if unknown:
        capture, seq = pairs[0]  # an id in no selected sequence is missing from the first one: name it
        raise HandflowError(f"unknown camera {unknown[0]!r} in Capture{capture}/{seq} (--cameras)")
    return set(cameras)


def _view_order(ds: InterHandDataset, pairs) -> dict:
    """(capture, seq, camera) -> position in the single-process evaluation order."""
    order: dict = {}
    for capture, seq in pairs:
        for cam in ds.camera_ids(capture, seq):
            order[(capture, seq, cam)] = len(order)
    return order


def _run_rank(req: RankRequest, proc) -> RankOutcome:
    from handflow.synth.capture import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model, model_digest
    from viewselect.manodir import mano_folder

    _check(req)
    model_path = resolve_model_path(req.model)
    device = proc.device(req.device)
    mano_dir = str(proc.local_first(lambda: mano_folder(req.mano_dir)))  # may generate the synthetic MANO
    hand_model = HandModel.from_dir(mano_dir)
    model, meta = load_model(model_path, hand_model, device)
    if req.data_root is not None and not Path(req.data_root).is_dir():
        raise HandflowError(f"data root does not exist: {req.data_root}")
    root = Path(req.data_root) if req.data_root else proc.local_first(ensure_default_data)
    crop_px = model.cfg.crop_px
    # only the selected sequences' rows are read (the split's annotation index, built on first use)
    ds = InterHandDataset(root, req.split, selection=req.sequence, crop_px=crop_px, mano_dir=mano_dir,
                          skip_bad_images=True)
    pairs = ds.sequences()  # what --sequence resolved to (handflow.data.selection, applied by the dataset)
    check_counts(req, len(_scored_cameras(ds, pairs, req.cameras)))
    key = model_digest(model)
    skipped_views: list[SkippedView] = []
    records = evaluate_views(model, key, ds, pairs, req.engine, default_cache_root(), cameras=req.cameras,
                             skipped_views=skipped_views, shard=proc.shard)
    order = _view_order(ds, pairs)
    by_view = lambda r: order[r.key]  # noqa: E731
    records, skipped_views = proc.gather(records, skipped_views, by_view)
    if not records:
        raise HandflowError(f"no view of --sequence {req.sequence} in {root / 'images' / req.split} could be scored "
                            f"({len(skipped_views)} views skipped; first: {skipped_views[0].reason if skipped_views else '-'})")
    table = view_table(records, ds)
    if req.compare_model:
        base, _ = load_model(resolve_model_path(req.compare_model), hand_model, device)
        if base.cfg.crop_px != crop_px:
            ds_base = InterHandDataset(root, req.split, selection=pairs, crop_px=base.cfg.crop_px,
                                       mano_dir=mano_dir, skip_bad_images=True)
        else:
            ds_base = ds
        brec = evaluate_views(base, model_digest(base), ds_base, pairs, req.engine, default_cache_root(),
                              cameras=req.cameras, label="baseline", skipped_views=[], shard=proc.shard)
        brec, _ = proc.gather(brec, [], by_view)
        spread = {r.key: r.ambiguity_mm for r in brec}
        table["baseline_spread_mm"] = [spread[r.key] for r in records]
    result = rank_views(table, drop=req.drop, keep=req.keep if req.strategy == "ambiguity" else None,
                        max_ambiguity_mm=req.max_ambiguity_mm)
    if req.strategy == "coverage":
        result = _coverage(result, req.keep, ds, pairs)
    stats = stats_from_records(records)
    # crop group g holds the same re-crops for every camera of a frame: drawn paired, as the frames are
    boot = bootstrap(stats, req.bootstrap_resamples, seed=req.engine.seed, paired_groups=True)
    selected = req.drop is not None or req.keep is not None or req.max_ambiguity_mm is not None
    recommendation = None
    if not selected:  # the default: recommend a drop list by the documented rule
        point = result.cameras.set_index("camera")["ambiguity_mm"].reindex(boot.cameras).to_numpy(float)
        recommendation = recommend_drop(boot.cameras, point, boot.excess_interval()[0], coverage_matrix(stats),
                                        level=boot.level)
        result = _with_drop_list(result, recommendation.drop_list)
    result = _with_intervals(result, boot)
    # the kept rig vs the full rig vs random rigs, whatever chose the kept set (nothing dropped: all three
    # are the whole rig); plan reads its full-rig figures from here
    scenes = triangulation_scenes(records, ds)
    kept = result.cameras.loc[result.cameras["keep"], "camera"].tolist()
    tri = kept_summary(scenes, kept, result.cameras["camera"].tolist(), pixel_noise_px=req.pixel_noise_px,
                       seed=req.engine.seed)
    notes = _rig_notes(result.cameras, req)
    curve = None
    if req.error_vs_cameras and len(result.cameras) >= 2:
        curve = _error_vs_cameras(result, scenes, ds, pairs, req)
    overall = result.summary[(result.summary["sequence"] == "overall") & (result.summary["ranker"] == "ambiguity")
                             & (result.summary["alignment"] == "global")].iloc[0]
    share = result.cameras.set_index("camera")["drop_consensus"] if result.drop_list else {}
    verdict_ = verdict(boot, {c: share[c] for c in result.drop_list},
                       float(overall["best_regret_mm"] - overall["mean_regret_mm"]), rule=_rule_words(req))
    overlays = []
    if req.overlay_samples:
        from viewselect.engine.overlays import sample_overlays

        overlays = sample_overlays(model, ds, result.sequences, records, req.overlay_samples, seed=req.engine.seed)
    regret_curves = None
    if req.regret_orders:
        regret_curves = (regret_vs_dropped(result.sequences, result.cameras),
                         random_order_curve(result.sequences, result.cameras, req.regret_orders, seed=req.engine.seed))
    skipped = [m for r in records for m in r.skipped_images]
    prov = provenance(
        {"request": {**asdict(replace(req, engine=None)), "engine": asdict(req.engine)}},
        model=str(model_path), model_digest=key, model_config=meta.get("config", {}).get("model"),
        model_version=meta.get("version"), data_root=str(root), split=req.split,
        sequences=[f"Capture{c}/{s}" for c, s in pairs], skipped_images=len(skipped), skipped_image_errors=skipped[:200],
        skipped_views=[f"{v}: {v.reason}" for v in skipped_views],
    )
    return RankOutcome(result=result, views=table, triangulation=tri, provenance=prov, records=records,
                       skipped_views=skipped_views, process_rank=proc.rank, overlays=overlays,
                       bootstrap=boot, recommendation=recommendation, verdict=verdict_, error_vs_cameras=curve,
                       regret_curves=regret_curves, reliability=reliability(records, DEFAULT_BINS), notes=notes)


def _rig_notes(cameras: pd.DataFrame, req: RankRequest) -> list[str]:
    """One line per thing this rig leaves undefined (NaN angles, no subsets to compare); none on a usual rig."""
    notes = []
    az, el = cameras["azimuth_deg"].isna(), cameras["elevation_deg"].isna()
    if (az | el).any():
        gone = cameras.loc[az | el, "camera"].tolist()
        what = " and ".join(f"the {name} of {int(m.sum())}" for name, m in (("azimuth", az), ("elevation", el))
                            if m.any())
        shown = ", ".join(map(str, gone[:5])) + (" …" if len(gone) > 5 else "")
        notes.append(f"the rig's frame does not define {what} of {len(cameras)} camera(s) ({shown}; no up axis "
                     "where the image-ups cancel, no azimuth for a camera on the up axis): written empty, the "
                     "ranking does not use them")
    if req.error_vs_cameras and len(cameras) < 2:
        notes.append(f"error vs cameras kept not computed: it compares subsets of at least 2 cameras, and "
                     f"{len(cameras)} camera was scored")
    return notes


def _rule_words(req: RankRequest) -> str:
    if req.drop is not None:
        return f"--drop {req.drop}: the most ambiguous"
    if req.keep is not None:
        return f"--keep {req.keep}, strategy {req.strategy}"
    if req.max_ambiguity_mm is not None:
        return f"--max-ambiguity {req.max_ambiguity_mm:g} mm"
    return "the default rule"


def _with_drop_list(result: RankResult, drop: list) -> RankResult:
    """``result`` with ``drop`` as its drop list (``keep`` and ``keep_in_sequence`` follow)."""
    cameras = result.cameras.copy()
    cameras["keep"] = ~cameras["camera"].isin(set(drop))
    sequences = result.sequences.copy()
    sequences["keep_in_sequence"] = ~sequences["camera"].isin(set(drop))
    drop_list = cameras.loc[~cameras["keep"], "camera"].tolist()
    return RankResult(cameras=cameras, sequences=sequences, summary=result.summary, drop_list=drop_list)


def _with_intervals(result: RankResult, boot: BootstrapResult) -> RankResult:
    """The camera table plus the bootstrap intervals (mm) and, with a drop list, each camera's consensus."""
    cameras = result.cameras.copy()
    pos = cameras["camera"].map({c: i for i, c in enumerate(boot.cameras)}).to_numpy()
    for col, values in interval_columns(boot, result.drop_list).items():
        cameras[col] = np.asarray(values, float)[pos]
    return RankResult(cameras=cameras, sequences=result.sequences, summary=result.summary,
                      drop_list=result.drop_list)


def _rig_directions(result: RankResult, ds: InterHandDataset, pairs) -> dict:
    from viewselect.rig.coverage import viewing_directions

    cams = {}
    for capture in sorted({c for c, _ in pairs}):
        cams.update(ds.cameras(capture))
    return viewing_directions({c: cams[c] for c in result.cameras["camera"]})


def _error_vs_cameras(result: RankResult, scenes, ds: InterHandDataset, pairs, req: RankRequest) -> pd.DataFrame:
    """:func:`viewselect.rig.subsets.subset_curves` over this ranking's scenes."""
    from viewselect.rig.subsets import subset_curves

    return subset_curves(result.cameras, scenes, _rig_directions(result, ds, pairs),
                         pixel_noise_px=req.pixel_noise_px, seed=req.engine.seed)


def _coverage(result: RankResult, keep: int, ds: InterHandDataset, pairs) -> RankResult:
    """Re-select the kept cameras with the direction-spreading rule of ``viewselect.rig.coverage``."""
    from viewselect.rig.coverage import keep_cameras

    kept = set(keep_cameras(result.cameras, keep, strategy="coverage", directions=_rig_directions(result, ds, pairs)))
    return _with_drop_list(result, [c for c in result.cameras["camera"] if c not in kept])
