"""Does a model's sample spread track its own error? The diagnostics behind ``reports/ambiguity.md``.

    python -m benchmarks.ambiguity --models shipped=viewselect/models/default.pt,NAME=PATH,... [--samples 30]

For every model, on the default test captures (every image of Capture0-1, ``--samples`` poses each, seed 0):

* the mode's MPJPE (Global, RR) and the mean ambiguity (``handflow.metrics.sample_std``, mm);
* per image: Spearman of the Global error with the mode's absolute root-depth error (how much of the Global
  error is depth) and with the ambiguity;
* per camera (mean over its frames), Spearman within each sequence, averaged over sequences — the statistic
  ``viewselect rank`` reports: ambiguity vs Global MPJPE, articulation spread (each hand at its wrist) vs RR
  MPJPE, the visible-joint fraction vs RR MPJPE (the simple ranker, for scale; negative = more visible
  joints, lower error), and the camera's distance to the hands (mean ground-truth joint depth) vs Global MPJPE;
* split-half ρ: each camera's Global MPJPE on every other frame of a sequence against the other frames (per
  sequence, averaged). How much of a camera's error is a property of the camera rather than of the frames —
  the ceiling for any ranker;
* the articulation spread on occluded ÷ visible joints (as ``viewselect evaluate-model``).

The table between the markers of ``reports/ambiguity.md`` is rewritten; the prose around it is not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from handflow.data.interhand import InterHandDataset
from handflow.synth.capture import ensure_default_data
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.io import write_text
from handflow.metrics import joint_sample_std, mpjpe, sample_std
from handflow.model.pose_params import Y_DIM
from handflow.model.registry import load_model
from handflow.preload import preload_split

REPORT = Path(__file__).resolve().parent.parent / "reports" / "ambiguity.md"
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


@torch.no_grad()
def per_image(model, data: dict, items: list[dict], n_samples: int, seed: int = 0, batch: int = 64) -> pd.DataFrame:
    """One row per image: sequence, camera, errors (mm), ambiguity and articulation spread (mm), root-depth
    error (mm), visible fraction, and the pooled visible / occluded joint spreads (sums and counts)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for a in range(0, len(data["image"]), batch):
        sl = slice(a, a + batch)
        images = data["image"][sl].float() / 255.0
        z = torch.randn(images.shape[0], n_samples, Y_DIM, generator=gen)
        out = model.predict(images, data["K_crop"][sl], n_samples=n_samples, z=z)
        mode, samples = out["mode_joints"], out["samples_joints"]
        gt, valid = data["joints_cam_mm"][sl], data["joint_valid"][sl]
        vis = data["joint_visible"][sl].bool() & valid.bool()
        occ = ~data["joint_visible"][sl].bool() & valid.bool()
        e_global, e_rr = mpjpe(mode, gt, valid, "global"), mpjpe(mode, gt, valid, "rr")
        amb, art = sample_std(samples), sample_std(samples, alignment="rr")
        js = joint_sample_std(samples, alignment="rr")  # (b, 42)
        w = valid.float()
        depth_err = ((mode[..., 2] - gt[..., 2]) * w).sum(-1).abs() / w.sum(-1).clamp(min=1)
        distance = (gt[..., 2] * w).sum(-1) / w.sum(-1).clamp(min=1)
        for i in range(images.shape[0]):
            it = items[a + i]
            rows.append({
                "sequence": f"Capture{it['capture']}/{it['seq']}", "camera": str(it["camera"]), "frame": int(it["frame"]),
                "mpjpe_global_mm": float(e_global[i]), "mpjpe_rr_mm": float(e_rr[i]),
                "ambiguity_mm": float(amb[i]), "articulation_mm": float(art[i]), "depth_err_mm": float(depth_err[i]),
                "distance_mm": float(distance[i]),
                "visible_fraction": float(vis[i].sum() / valid[i].sum().clamp(min=1)),
                "vis_sum": float(js[i][vis[i]].sum()), "vis_n": int(vis[i].sum()),
                "occ_sum": float(js[i][occ[i]].sum()), "occ_n": int(occ[i].sum()),
            })
    return pd.DataFrame(rows)


def _rho(df: pd.DataFrame, x: str, y: str) -> float:
    return float(df[[x, y]].corr("spearman").iloc[0, 1])


def summarize(df: pd.DataFrame) -> dict:
    """The figures of one model's row (see the module docstring)."""
    cams = df.groupby(["sequence", "camera"]).mean(numeric_only=True).reset_index()

    def per_seq(x: str, y: str) -> float:
        return float(sum(_rho(g, x, y) for _, g in cams.groupby("sequence")) / cams["sequence"].nunique())

    # how stable a camera's error is: its mean over every other frame of the sequence against the rest
    order = df.groupby("sequence")["frame"].rank(method="dense").astype(int)
    halves = (df.assign(half=order % 2).groupby(["sequence", "camera", "half"])["mpjpe_global_mm"].mean()
              .unstack("half").dropna().reset_index())
    split_half = float(sum(_rho(g, 0, 1) for _, g in halves.groupby("sequence")) / halves["sequence"].nunique())
    vis = df["vis_sum"].sum() / max(1, df["vis_n"].sum())
    occ = df["occ_sum"].sum() / max(1, df["occ_n"].sum())
    return {
        "images": len(df), "mpjpe_global_mm": df["mpjpe_global_mm"].mean(), "mpjpe_rr_mm": df["mpjpe_rr_mm"].mean(),
        "ambiguity_mm": df["ambiguity_mm"].mean(),
        "img_depth_vs_global": _rho(df, "depth_err_mm", "mpjpe_global_mm"),
        "img_ambiguity_vs_global": _rho(df, "ambiguity_mm", "mpjpe_global_mm"),
        "cam_ambiguity_vs_global": per_seq("ambiguity_mm", "mpjpe_global_mm"),
        "cam_articulation_vs_rr": per_seq("articulation_mm", "mpjpe_rr_mm"),
        "cam_visible_vs_rr": per_seq("visible_fraction", "mpjpe_rr_mm"),
        "cam_distance_vs_global": per_seq("distance_mm", "mpjpe_global_mm"),
        "occluded_vs_visible": occ / vis if vis > 0 else float("nan"),
        "cam_split_half_global": split_half,
    }


def table(results: dict[str, dict], samples: int) -> str:
    head = ("| model | Global (mm) | RR (mm) | ambiguity (mm) | image: ρ(depth err, Global) | image: ρ(ambiguity, Global) "
            "| camera: ρ(ambiguity, Global) | camera: ρ(articulation, RR) | camera: ρ(visible, RR) "
            "| camera: ρ(distance, Global) | camera: split-half ρ of Global | occluded ÷ visible spread |")
    lines = [head, "| --- |" + " ---: |" * 11]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['mpjpe_global_mm']:.1f} | {r['mpjpe_rr_mm']:.1f} | {r['ambiguity_mm']:.1f} "
            f"| {r['img_depth_vs_global']:+.2f} | {r['img_ambiguity_vs_global']:+.2f} | {r['cam_ambiguity_vs_global']:+.2f} "
            f"| {r['cam_articulation_vs_rr']:+.2f} | {r['cam_visible_vs_rr']:+.2f} | {r['cam_distance_vs_global']:+.2f} "
            f"| {r['cam_split_half_global']:+.2f} | {r['occluded_vs_visible']:.2f} |")
    n = next(iter(results.values()))["images"]
    lines.append("")
    lines.append(f"{n:,} test images, {samples} samples each, seed 0. ρ: Spearman; camera columns: within each "
                 "sequence over its 140 cameras, averaged over the 7 sequences.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="NAME=PATH,... (checkpoints)")
    ap.add_argument("--samples", type=int, default=30)
    args = ap.parse_args(argv)
    hand_model = HandModel.from_dir(default_mano_dir())
    root = ensure_default_data()
    results = {}
    for spec in args.models.split(","):
        name, path = spec.split("=", 1)
        model, _ = load_model(path, hand_model)
        model.eval()
        data = preload_split(root, "test", model.cfg.crop_px, hand_model)
        items = InterHandDataset(root, "test", crop_px=model.cfg.crop_px).items
        if len(items) != len(data["image"]):
            raise SystemExit(f"{path}: {len(data['image'])} test crops but {len(items)} test images (some skipped)")
        results[name] = summarize(per_image(model, data, items, args.samples))
        print(name, {k: round(v, 3) for k, v in results[name].items()})
    text = REPORT.read_text() if REPORT.is_file() else f"# Ambiguity diagnostics\n\n{BEGIN}\n{END}\n"
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1]
    write_text(REPORT, f"{pre}{BEGIN}\n{table(results, args.samples)}\n{END}{post}")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
