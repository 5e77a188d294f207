"""``viewselect evaluate``: the paper's Tables 1–2 and the ablation table for a set of trained models.

Every model is scored on the same preloaded images with the same noise (see
:func:`handflow.evaluate.evaluate_annotations`); the tables are written as CSV and one Markdown page
(``evaluation.md``) that names the checkpoints (path, weights digest, training config) and the command.
All files are written to a temporary folder and renamed into place together.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from handflow.errors import HandflowError
from handflow.progress import track

MODEL_LABELS = {"handflow": "HandFlowNet", "regressor": "Deterministic regressor", "mc_dropout": "MC-dropout",
                "gaussian": "Gaussian", "cvae": "Conditional VAE"}


@dataclass(frozen=True)
class EvaluationRequest:
    models: tuple[tuple[str, Path], ...]  # (name, checkpoint)
    split: str = "test"
    sequence: str | None = None
    frames: int | None = None
    data_root: Path | None = None
    mano_dir: Path | None = None  # None: the synthetic MANO (viewselect.manodir)
    samples: int = 100
    annotations: int = 100
    seed: int = 0


def parse_models(spec: str) -> tuple[tuple[str, Path], ...]:
    """``NAME=PATH,NAME=PATH`` or plain ``PATH,PATH`` (the name is then the file's parent folder)."""
    out = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        name, _, path = part.rpartition("=") if "=" in part else ("", "", part)
        p = Path(path)
        out.append((name or (p.parent.name if p.stem in ("model", "last") else p.stem), p))
    if not out:
        raise HandflowError("--models: name at least one checkpoint (NAME=PATH,...)")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise HandflowError(f"--models: duplicate model name in {names}")
    return tuple(out)


def run_evaluation(req: EvaluationRequest) -> dict:
    """Results per model (``{"models": {name: {...figures, checkpoint info}}, "data": {...}}``)."""
    from handflow.preload import preload_split
    from handflow.synth.capture import ensure_default_data
    from handflow.evaluate import evaluate_annotations
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model, model_digest
    from viewselect.manodir import mano_folder

    hm = HandModel.from_dir(mano_folder(req.mano_dir))
    loaded = []
    for name, path in req.models:
        model, meta = load_model(path, hm)
        loaded.append((name, path, model, meta))
    crops = {m.cfg.crop_px for _, _, m, _ in loaded}
    if len(crops) != 1:
        raise HandflowError(f"--models use different crop sizes {sorted(crops)}; evaluate them separately")
    root = req.data_root or ensure_default_data()
    data = preload_split(root, req.split, crops.pop(), hm, selection=req.sequence, annotations=req.annotations,
                         max_frames=req.frames)
    results = {}
    for name, path, model, meta in track(loaded, "evaluating models"):
        res = evaluate_annotations(model, data, req.samples, seed=req.seed)
        cfg = meta.get("config", {}) if isinstance(meta.get("config"), dict) else {}
        results[name] = {**res, "kind": model.kind, "checkpoint": str(path), "weights_digest": model_digest(model),
                         "train_annotations": cfg.get("data", {}).get("annotations", 1),
                         "w_detmag": cfg.get("loss", {}).get("w_detmag"),
                         "train_epochs": cfg.get("optim", {}).get("epochs"), "version": meta.get("version")}
    info = {"root": str(root), "split": req.split, "sequence": req.sequence, "frames": req.frames,
            "images": int(len(data["image"])), "skipped_no_mano": int(data.get("skipped_no_mano", 0)),
            "images_without_multihands": int(data.get("no_multihands", 0)),
            "annotations_per_image": float(data["ann_mask"].sum(1).float().mean())}
    return {"models": results, "data": info}


def tables(results: dict) -> dict[str, pd.DataFrame]:
    rows = results["models"]
    t1 = pd.DataFrame([{
        "model": n, "method": MODEL_LABELS.get(r["kind"], r["kind"]),
        "global_min_mm": r["closest_global_mm"], "global_max_mm": r["farthest_global_mm"],
        "rrr_min_mm": r["closest_rrr_mm"], "rrr_max_mm": r["farthest_rrr_mm"],
        "rr_occluded_min_mm": r.get("closest_rr_occluded_mm", math.nan),
        "rr_occluded_max_mm": r.get("farthest_rr_occluded_mm", math.nan),
        "gt_global_mm": r["mode_mpjpe_global_mm"], "gt_rrr_mm": r["mode_mpjpe_rrr_mm"],
        "gt_rr_occluded_mm": r["mode_rr_occluded_mm"],
    } for n, r in rows.items()])
    t2 = pd.DataFrame([{
        "model": n, "method": MODEL_LABELS.get(r["kind"], r["kind"]), "mmd_global": r["mmd_global"],
        "mmd_rrr": r["mmd_rrr"], "mmd_rr": r["mmd_rr"], "sample_std_mm": r["sample_std_mm"],
        "sample_std_rr_mm": r["sample_std_rr_mm"],
    } for n, r in rows.items()])
    abl = pd.DataFrame([{
        "model": n, "w_detmag": r["w_detmag"], "train_annotations": r["train_annotations"],
        "mmd_global": r["mmd_global"], "mmd_rrr": r["mmd_rrr"], "mmd_rr": r["mmd_rr"],
        "sample_std_mm": r["sample_std_mm"], "mode_mpjpe_global_mm": r["mode_mpjpe_global_mm"],
        "mode_mpjpe_rr_mm": r["mode_mpjpe_rr_mm"],
    } for n, r in rows.items() if r["kind"] == "handflow"])
    return {"table1": t1, "table2": t2, "ablation": abl}


def _md(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "–"
            if 0 < abs(v) < 0.01:  # a loss weight such as 5e-4 would otherwise read 0.001
                return f"{v:g}"
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v).replace("|", "\\|")
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in r) + " |\n" for r in df.itertuples(index=False))


def markdown(results: dict, provenance: dict, notes: str = "") -> str:
    t = tables(results)
    d = results["data"]
    lines = [
        "# Evaluation: Tables 1–2 and ablation",
        "",
        *([notes.strip(), ""] if notes.strip() else []),
        f"Data: split `{d['split']}`, sequences `{d['sequence'] or 'all'}`, frames per sequence "
        f"`{d['frames'] or 'all'}` — {d['images']} images, {d['annotations_per_image']:.1f} MultiHands annotations "
        f"per image on average (ground truth included; {d['images_without_multihands']} images without a "
        f"MultiHands file keep only their ground truth). Root `{d['root']}`.",
        "",
        "## Table 1 — the mode against the closest / farthest plausible annotation (MPJPE, mm)",
        "",
        "RR* is root-relative MPJPE on the joints occluded in the ground truth, the wrists left out (their RR "
        "error is 0 by construction). `gt_*`: against the ground truth.",
        "",
        _md(t["table1"]),
        "## Table 2 — MMD between 100 samples and the annotations (lower is better)",
        "",
        "MMD (not squared), Gaussian kernels on the RMS per-joint distance averaged over bandwidths "
        f"{results['models'][next(iter(results['models']))]['bandwidths_mm']} mm (`handflow.metrics.mmd`). "
        "Sample std: mean per-joint standard deviation of the samples (mm).",
        "",
        _md(t["table2"]),
        "## Ablation (HandFlowNet variants)",
        "",
        _md(t["ablation"]) if len(t["ablation"]) else "(no HandFlowNet model given)\n",
        "## Checkpoints",
        "",
        _md(pd.DataFrame([{"model": n, "checkpoint": r["checkpoint"], "weights digest": r["weights_digest"],
                           "kind": r["kind"], "version": r["version"]} for n, r in results["models"].items()])),
        "## Provenance",
        "",
        "```json",
        json.dumps(provenance, indent=2, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_evaluation(results: dict, out_dir: str | os.PathLike, provenance: dict, notes: str = "") -> list[Path]:
    """``out_dir/{evaluation.md, evaluation-table1.csv, evaluation-table2.csv, evaluation-ablation.csv,
    evaluation.json}``, all or nothing."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".evaluation-", dir=out_dir))
    except OSError as err:
        raise HandflowError(f"cannot write to {out_dir}: {err.strerror or err}") from err
    try:
        names = []
        for key, df in tables(results).items():
            df.to_csv(tmp / f"evaluation-{key}.csv", index=False)
            names.append(f"evaluation-{key}.csv")
        (tmp / "evaluation.json").write_text(json.dumps({**results, "provenance": provenance}, indent=2, default=str))
        (tmp / "evaluation.md").write_text(markdown(results, provenance, notes))
        names += ["evaluation.json", "evaluation.md"]
        for n in names:
            os.replace(tmp / n, out_dir / n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out_dir / n for n in names]
