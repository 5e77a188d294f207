"""Does a model's sample spread track its own error? The diagnostics behind ``reports/ambiguity.md``.

    python -m benchmarks.ambiguity --models shipped=viewselect/models/default.pt,NAME=PATH,... [--samples 30]

For every model, on the default test captures (every image of Capture0-1, ``--samples`` poses each, seed 0):

* the mode's MPJPE (Global, RR), the mean flow spread (``handflow.metrics.sample_std`` of the sampled
  poses, mm: the HandFlow paper's ambiguity) and the mean ambiguity ``viewselect rank`` ranks by (the
  modes' spread over the test-time crops of :mod:`handflow.geometry.recrop`, mm);
* per image: Spearman of the Global error with the mode's absolute root-depth error (how much of the Global
  error is depth), with the flow spread and with the crop ambiguity;
* per camera (mean over its frames), Spearman within each sequence, averaged over sequences — the statistic
  ``viewselect rank`` reports: flow spread vs Global MPJPE, the flow's articulation spread (each hand at its
  wrist) vs RR MPJPE, the crop ambiguity vs Global MPJPE and (after the RR alignment) vs RR MPJPE, the
  visible-joint fraction vs RR MPJPE (the simple ranker, for scale; negative = more visible joints, lower
  error), and the camera's distance to the hands (mean ground-truth joint depth) vs Global MPJPE;
* split-half ρ: each camera's Global MPJPE on every other frame of a sequence against the other frames (per
  sequence, averaged). How much of a camera's error is a property of the camera rather than of the frames —
  the ceiling for any ranker;
* the articulation spread on occluded ÷ visible joints, the wrists left out (as ``viewselect evaluate-model``).

``--probe NAME,...`` also fits a small error predictor on that model's frozen image features: a 2-layer MLP
from the encoder's output to the log of the mode's Global (or RR) error, trained on the embedded capture's
training split (images the shipped model never saw), scored on the test captures like a ranker. It asks
whether the features carry the error at all, whatever a flow makes of them.

The tables between the markers of ``reports/ambiguity.md`` are rewritten; the prose around them is not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from handflow.data.interhand import InterHandDataset
from handflow.synth.capture import ensure_default_data
from handflow.evaluate import predictions
from handflow.geometry.recrop import TEST_TIME_CROPS, recrop
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.io import write_text
from handflow.metrics import articulation_masks, joint_sample_std, mpjpe, sample_std
from handflow.model.pose_params import Y_DIM
from handflow.model.registry import load_model
from handflow.preload import preload_split

REPORT = Path(__file__).resolve().parent.parent / "reports" / "ambiguity.md"
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"
PROBE_BEGIN, PROBE_END = "<!-- probe:begin -->", "<!-- probe:end -->"


@torch.no_grad()
def per_image(model, data: dict, items: list[dict], n_samples: int, seed: int = 0, batch: int = 64) -> pd.DataFrame:
    """One row per image: sequence, camera, errors (mm), ambiguity and articulation spread (mm), root-depth
    error (mm), visible fraction, and the pooled visible / occluded joint spreads (sums and counts)."""
    rows = []
    for sl, device, K, out in predictions(model, data, n_samples, batch, seed):
        a = sl.start
        mode, samples = out["mode_joints"], out["samples_joints"]
        gt, valid = data["joints_cam_mm"][sl], data["joint_valid"][sl]
        shown = data["joint_visible"][sl].bool()
        vis, occ = articulation_masks(shown, valid)  # no wrists (0 after the alignment)
        e_global, e_rr = mpjpe(mode, gt, valid, "global"), mpjpe(mode, gt, valid, "rr")
        js = joint_sample_std(samples, alignment="rr")  # (b, 42)
        amb, art = sample_std(samples), js.mean(-1)
        images = data["image"][sl].to(device).float() / 255.0
        modes = torch.stack([mode] + [model.predict(*recrop(images, K, j), n_samples=2)["mode_joints"]
                                      for j in TEST_TIME_CROPS[1:]], dim=1)  # (b, crops, 42, 3)
        crop, crop_rr = sample_std(modes), sample_std(modes, "rr")
        w = valid.float()
        depth_err = ((mode[..., 2] - gt[..., 2]) * w).sum(-1).abs() / w.sum(-1).clamp(min=1)
        distance = (gt[..., 2] * w).sum(-1) / w.sum(-1).clamp(min=1)
        for i in range(mode.shape[0]):
            it = items[a + i]
            rows.append({
                "sequence": f"Capture{it['capture']}/{it['seq']}", "camera": str(it["camera"]), "frame": int(it["frame"]),
                "mpjpe_global_mm": float(e_global[i]), "mpjpe_rr_mm": float(e_rr[i]),
                "ambiguity_mm": float(amb[i]), "articulation_mm": float(art[i]), "depth_err_mm": float(depth_err[i]),
                "crop_mm": float(crop[i]), "crop_rr_mm": float(crop_rr[i]),
                "distance_mm": float(distance[i]),
                "visible_fraction": float((shown[i] & valid[i].bool()).sum() / valid[i].sum().clamp(min=1)),
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
        "ambiguity_mm": df["ambiguity_mm"].mean(), "crop_mm": df["crop_mm"].mean(),
        "img_depth_vs_global": _rho(df, "depth_err_mm", "mpjpe_global_mm"),
        "img_ambiguity_vs_global": _rho(df, "ambiguity_mm", "mpjpe_global_mm"),
        "img_crop_vs_global": _rho(df, "crop_mm", "mpjpe_global_mm"),
        "cam_crop_vs_global": per_seq("crop_mm", "mpjpe_global_mm"),
        "cam_crop_rr_vs_rr": per_seq("crop_rr_mm", "mpjpe_rr_mm"),
        "cam_ambiguity_vs_global": per_seq("ambiguity_mm", "mpjpe_global_mm"),
        "cam_articulation_vs_rr": per_seq("articulation_mm", "mpjpe_rr_mm"),
        "cam_visible_vs_rr": per_seq("visible_fraction", "mpjpe_rr_mm"),
        "cam_distance_vs_global": per_seq("distance_mm", "mpjpe_global_mm"),
        "occluded_vs_visible": occ / vis if vis > 0 else float("nan"),
        "cam_split_half_global": split_half,
    }


@torch.no_grad()
def features_and_errors(model, data: dict, batch: int = 128) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(ctx (N, C), {"global": (N,), "rr": (N,)} mm)``: the encoder's output and the mode's errors."""
    ctx_all, errs = [], {"global": [], "rr": []}
    for a in range(0, len(data["image"]), batch):
        sl = slice(a, a + batch)
        ctx = model.encode(data["image"][sl].float() / 255.0)
        mode = model.predict_joints(ctx, data["K_crop"][sl], ctx.new_zeros(len(ctx), 1, Y_DIM))[:, 0]
        ctx_all.append(ctx)
        for al in errs:
            errs[al].append(mpjpe(mode, data["joints_cam_mm"][sl], data["joint_valid"][sl], al))
    return torch.cat(ctx_all), {al: torch.cat(v) for al, v in errs.items()}


def fit_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, seed: int = 0,
              steps: int = 2000) -> torch.Tensor:
    """Predictions for ``x_test (M, C)`` of a 2-layer MLP (64 hidden) fitted to ``y_train (N,)`` on
    ``x_train (N, C)`` (features standardised on the training rows; AdamW, batches of 256, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xs, xt = (x_train - mu) / sd, (x_test - mu) / sd
    head = torch.nn.Sequential(torch.nn.Linear(xs.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(0, len(xs), (256,), generator=gen)
            loss = (head(xs[idx])[:, 0] - y_train[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return head(xt)[:, 0]


def probe(model, train: dict, test: dict, items: list[dict]) -> dict:
    """Spearman of a feature probe's predicted error with the actual error, per image and per camera."""
    x_tr, e_tr = features_and_errors(model, train)
    x_te, e_te = features_and_errors(model, test)
    out = {"train_images": 0}
    for al in ("global", "rr"):
        ok = torch.isfinite(e_tr[al]) & (e_tr[al] > 0)  # images without a valid joint have no error
        out["train_images"] = int(ok.sum())
        pred = fit_probe(x_tr[ok], e_tr[al][ok].log(), x_te)
        df = pd.DataFrame({"sequence": [f"Capture{it['capture']}/{it['seq']}" for it in items],
                           "camera": [str(it["camera"]) for it in items], "p": pred.numpy(), "e": e_te[al].numpy()})
        cams = df.groupby(["sequence", "camera"]).mean(numeric_only=True).reset_index()
        out[f"img_{al}"] = _rho(df, "p", "e")
        out[f"cam_{al}"] = float(sum(_rho(g, "p", "e") for _, g in cams.groupby("sequence")) / cams["sequence"].nunique())
    return out


def probe_table(probes: dict[str, dict]) -> str:
    lines = ["| features of | predicts | image: ρ(predicted, actual) | camera: ρ(predicted, actual) |",
             "| --- | --- | ---: | ---: |"]
    for name, r in probes.items():
        lines += [f"| {name} | Global MPJPE | {r['img_global']:+.2f} | {r['cam_global']:+.2f} |",
                  f"| {name} | RR MPJPE | {r['img_rr']:+.2f} | {r['cam_rr']:+.2f} |"]
    n = next(iter(probes.values()))["train_images"]
    lines += ["", f"Probe fitted on {n:,} training images (seed 0), scored on the test images; camera column as above."]
    return "\n".join(lines)


def _replace_between(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text:
        text = f"{text.rstrip()}\n\n{begin}\n{end}\n"
    pre, rest = text.split(begin, 1)
    return f"{pre}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def table(results: dict[str, dict], samples: int) -> str:
    head = ("| model | Global (mm) | RR (mm) | flow spread (mm) | crop ambiguity (mm) | image: ρ(depth err, Global) "
            "| image: ρ(flow spread, Global) | image: ρ(crop ambiguity, Global) "
            "| camera: ρ(flow spread, Global) | camera: ρ(flow articulation, RR) "
            "| camera: ρ(crop ambiguity, Global) | camera: ρ(crop ambiguity RR, RR) | camera: ρ(visible, RR) "
            "| camera: ρ(distance, Global) | camera: split-half ρ of Global | occluded ÷ visible flow spread |")
    lines = [head, "| --- |" + " ---: |" * 15]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['mpjpe_global_mm']:.1f} | {r['mpjpe_rr_mm']:.1f} | {r['ambiguity_mm']:.1f} | {r['crop_mm']:.1f} "
            f"| {r['img_depth_vs_global']:+.2f} | {r['img_ambiguity_vs_global']:+.2f} | {r['img_crop_vs_global']:+.2f} "
            f"| {r['cam_ambiguity_vs_global']:+.2f} | {r['cam_articulation_vs_rr']:+.2f} "
            f"| {r['cam_crop_vs_global']:+.2f} | {r['cam_crop_rr_vs_rr']:+.2f} "
            f"| {r['cam_visible_vs_rr']:+.2f} | {r['cam_distance_vs_global']:+.2f} "
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
    ap.add_argument("--probe", default="", help="NAME,... of --models: also fit the feature probe on their encoders")
    args = ap.parse_args(argv)
    hand_model = HandModel.from_dir(default_mano_dir())
    root = ensure_default_data()
    results, probed = {}, {}
    wanted = [n for n in args.probe.split(",") if n]
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
        if name in wanted:
            train = preload_split(root, "train", model.cfg.crop_px, hand_model)
            probed[name] = probe(model, train, data, items)
            print("probe", {k: round(v, 3) for k, v in probed[name].items()})
    missing = [n for n in wanted if n not in probed]
    if missing:
        raise SystemExit(f"--probe {missing[0]}: not one of the --models names")
    text = REPORT.read_text() if REPORT.is_file() else "# Ambiguity diagnostics\n"
    text = _replace_between(text, BEGIN, END, table(results, args.samples))
    if probed:
        text = _replace_between(text, PROBE_BEGIN, PROBE_END, probe_table(probed))
    write_text(REPORT, text)
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
