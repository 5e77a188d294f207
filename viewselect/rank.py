"""``viewselect rank``: evaluate every camera of the selected sequences, rank, choose, write tables."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from handflow.data.interhand import InterHandDataset
from handflow.data.selection import select_sequences
from handflow.errors import HandflowError
from handflow.provenance import provenance
from viewselect.engine import RankConfig, default_cache_root, evaluate_views, triangulation_summary, view_table
from viewselect.ranking import ALIGNMENTS, RankResult, rank_views

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.pt"


@dataclass
class RankRequest:
    sequence: str = "Capture0-1"
    data_root: str | None = None  # None: the embedded synthetic capture (generated when missing)
    split: str = "test"
    model: str | None = None  # None: the shipped default model
    compare_model: str | None = None  # a baseline whose spread becomes a ranker
    mano_dir: str | None = None
    cameras: list[str] | None = None
    drop: int | None = None
    keep: int | None = None
    max_ambiguity_mm: float | None = None
    strategy: str = "ambiguity"
    alignment: str = "global"
    pixel_noise_px: float = 1.0
    rank: RankConfig = RankConfig()
    device: str | None = None


@dataclass
class RankOutcome:
    result: RankResult
    views: pd.DataFrame
    triangulation: dict
    provenance: dict
    records: list[dict]


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
    import torch

    from handflow.data.synth import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model, model_digest

    _check(req)
    model_path = resolve_model_path(req.model)
    device = torch.device(req.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    hand_model = HandModel.from_dir(req.mano_dir)
    model, meta = load_model(model_path, hand_model, device)
    if req.data_root is not None and not Path(req.data_root).is_dir():
        raise HandflowError(f"data root does not exist: {req.data_root}")
    root = Path(req.data_root) if req.data_root else ensure_default_data()
    crop_px = model.cfg.crop_px
    ds = InterHandDataset(root, req.split, crop_px=crop_px, mano_dir=req.mano_dir, skip_bad_images=True)
    pairs = select_sequences(req.sequence, ds.available())
    key = model_digest(model)
    records = evaluate_views(model, key, ds, pairs, req.rank, default_cache_root(), cameras=req.cameras)
    table = view_table(records, ds)
    if req.compare_model:
        base, _ = load_model(resolve_model_path(req.compare_model), hand_model, device)
        if base.cfg.crop_px != crop_px:
            ds_base = InterHandDataset(root, req.split, crop_px=base.cfg.crop_px, mano_dir=req.mano_dir,
                                       skip_bad_images=True)
        else:
            ds_base = ds
        brec = evaluate_views(base, model_digest(base), ds_base, pairs, req.rank, default_cache_root(),
                              cameras=req.cameras, label="baseline")
        table["baseline_spread_mm"] = [r["ambiguity_mm"] for r in brec]
    result = rank_views(table, drop=req.drop, keep=req.keep if req.strategy == "ambiguity" else None,
                        max_ambiguity_mm=req.max_ambiguity_mm)
    if req.strategy == "coverage":
        result = _coverage(result, req.keep, ds, pairs)
    tri = {}
    if req.drop is not None or req.keep is not None or req.max_ambiguity_mm is not None:
        kept = result.cameras.loc[result.cameras["keep"], "camera"].tolist()
        tri = triangulation_summary(records, ds, kept, pixel_noise_px=req.pixel_noise_px, seed=req.rank.seed)
    skipped = sum(len(r.get("skipped_images", [])) for r in records)
    prov = provenance(
        {"request": {**asdict(replace(req, rank=None)), "rank": asdict(req.rank)}},
        model=str(model_path), model_digest=key, model_config=meta.get("config", {}).get("model"),
        model_version=meta.get("version"), data_root=str(root), split=req.split,
        sequences=[f"Capture{c}/{s}" for c, s in pairs], skipped_images=skipped,
    )
    return RankOutcome(result=result, views=table, triangulation=tri, provenance=prov, records=records)


def _coverage(result: RankResult, keep: int, ds: InterHandDataset, pairs) -> RankResult:
    """Re-select the kept cameras with the direction-spreading rule of ``viewselect.coverage``."""
    from viewselect.coverage import keep_cameras, viewing_directions

    cams = {}
    for capture, _ in pairs:
        cams.update(ds.cameras(capture))
    dirs = viewing_directions({c: cams[c] for c in result.cameras["camera"]})
    kept = set(keep_cameras(result.cameras, keep, strategy="coverage", directions=dirs))
    cameras = result.cameras.copy()
    cameras["keep"] = cameras["camera"].isin(kept)
    drop_list = cameras.loc[~cameras["keep"], "camera"].tolist()
    return RankResult(cameras=cameras, sequences=result.sequences, summary=result.summary, drop_list=drop_list)
