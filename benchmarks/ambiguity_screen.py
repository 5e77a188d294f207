"""Screening of ambiguity levers: which per-image statistic ranks the cameras by the mode's error?

    python -m benchmarks.ambiguity_screen [MODEL] [OUT.csv] [THREADS]      # ~10 min on 2 quiet cores
    python -m benchmarks.ambiguity_screen --score OUT.csv                  # the table of reports/ambiguity.md

One row per test image of the default capture (all 19,600), shipped model by default, seed 0: the mode's
Global / RR error and candidate statistics, each measured one at a time on the same images: the flow's
spread over 30 sampled poses (world / each hand at its wrist), the spread of the modes over 8 re-crops of
the image (the jitter set JIT below: 12 % zoom, 6 px shifts of the 128 px crop, zoom plus a 5 px diagonal
shift), the flow samples pooled over the re-crops (10 per crop), the depth spread of either, the predicted
depth, the visible fraction and the true distance. ``--score`` prints, per statistic, Spearman against
the error per camera (within each sequence over its cameras, mean over sequences) and per image, and the
split-half reliability of the camera errors. This is the measurement that chose ``rank``'s ambiguity;
``rank`` itself then uses :data:`handflow.geometry.recrop.TEST_TIME_CROPS` (5 % / 4 % shifts).
"""
import sys, math, time
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from handflow.data.interhand import InterHandDataset
from handflow.synth.capture import ensure_default_data
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.metrics import joint_sample_std, mpjpe, sample_std
from handflow.model.pose_params import Y_DIM
from handflow.model.registry import load_model
from handflow.preload import preload_split

def score(path):
    df = pd.read_csv(path)
    cams = df.groupby(["sequence", "camera"]).mean(numeric_only=True).reset_index()
    def rho(g, x, y): return g[[x, y]].corr("spearman").iloc[0, 1]
    def per_seq(x, y): return np.mean([rho(g, x, y) for _, g in cams.groupby("sequence")])
    order = df.groupby("sequence")["frame"].rank(method="dense").astype(int)
    for err in ("err_global", "err_rr"):
        h = df.assign(half=order % 2).groupby(["sequence", "camera", "half"])[err].mean().unstack("half").reset_index()
        print(err, "split-half", round(np.mean([rho(g, 0, 1) for _, g in h.groupby("sequence")]), 3), "mean", round(df[err].mean(), 1))
    cols = [c for c in df.columns if c not in ("sequence", "camera", "frame", "err_global", "err_rr")]
    print(f"{'statistic':24s} cam:glob  cam:rr  img:glob img:rr")
    for c in cols:
        print(f"{c:24s} {per_seq(c,'err_global'):+.3f}  {per_seq(c,'err_rr'):+.3f}  {rho(df,c,'err_global'):+.3f}  {rho(df,c,'err_rr'):+.3f}")


if len(sys.argv) > 2 and sys.argv[1] == "--score":
    score(sys.argv[2])
    raise SystemExit
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
path = sys.argv[1] if len(sys.argv) > 1 else "viewselect/models/default.pt"
out_csv = sys.argv[2] if len(sys.argv) > 2 else "ambiguity_screen.csv"
hm = HandModel.from_dir(default_mano_dir())
model, _ = load_model(path, hm); model.eval()
root = ensure_default_data()
data = preload_split(root, "test", model.cfg.crop_px, hm)
items = InterHandDataset(root, "test", crop_px=model.cfg.crop_px).items
N = len(data["image"]); print("images", N, flush=True)

# jitters: (zoom, dx, dy) in crop pixels
P = model.cfg.crop_px
JIT = [(1.0, 0, 0), (1.12, 0, 0), (1.0, 6, 0), (1.0, -6, 0), (1.0, 0, 6), (1.0, 0, -6), (1.12, 5, 5), (1.12, -5, -5)]

def warp(img, K, s, dx, dy):
    B, _, H, W = img.shape
    theta = torch.tensor([[1 / s, 0, -2 * dx / (W * s)], [0, 1 / s, -2 * dy / (H * s)]], dtype=img.dtype).expand(B, 2, 3)
    grid = F.affine_grid(theta, img.shape, align_corners=False)
    out = F.grid_sample(img, grid, align_corners=False, padding_mode="zeros")
    c = (W - 1) / 2
    S = torch.tensor([[s, 0, (1 - s) * c + dx], [0, s, (1 - s) * c + dy], [0, 0, 1]], dtype=K.dtype)
    return out, S @ K

gen = torch.Generator().manual_seed(0)
rows = []
t0 = time.time()
NS = 30
with torch.inference_mode():
    for a in range(0, N, 128):
        sl = slice(a, a + 128)
        img = data["image"][sl].float() / 255.0
        K = data["K_crop"][sl]
        gt, valid = data["joints_cam_mm"][sl], data["joint_valid"][sl]
        vis = data["joint_visible"][sl].bool() & valid.bool()
        B = img.shape[0]
        ctx = model.encode(img)
        mode = model.predict_joints(ctx, K, ctx.new_zeros(B, 1, Y_DIM))[:, 0]
        z = torch.randn(B, NS, Y_DIM, generator=gen)
        samp = model.predict_joints(ctx, K, z)  # (B,NS,42,3)
        modes, pooled = [mode], [samp[:, :10]]
        for s, dx, dy in JIT[1:]:
            wi, wk = warp(img, K, s, dx, dy)
            c2 = model.encode(wi)
            modes.append(model.predict_joints(c2, wk, c2.new_zeros(B, 1, Y_DIM))[:, 0])
            pooled.append(model.predict_joints(c2, wk, z[:, :10]))
        modes = torch.stack(modes, 1)  # (B,J,42,3)
        pooled = torch.cat(pooled, 1)
        e = {al: mpjpe(mode, gt, valid, al) for al in ("global", "rr")}
        tta_mean = modes.mean(1)
        feats = {
            "flow_global": sample_std(samp), "flow_rr": sample_std(samp, "rr"),
            "tta_global": sample_std(modes), "tta_rr": sample_std(modes, "rr"),
            "pool_global": sample_std(pooled), "pool_rr": sample_std(pooled, "rr"),
            "tta_depth": modes[..., 2].mean(-1).std(1),
            "flow_depth": samp[..., 2].mean(-1).std(1),
            "pred_depth": mode[..., 2].mean(-1),
            "tta_mean_err_global": mpjpe(tta_mean, gt, valid, "global"),
            "tta_mean_err_rr": mpjpe(tta_mean, gt, valid, "rr"),
        }
        w = valid.float()
        for i in range(B):
            it = items[a + i]
            r = {"sequence": f"Capture{it['capture']}/{it['seq']}", "camera": str(it["camera"]), "frame": int(it["frame"]),
                 "err_global": float(e["global"][i]), "err_rr": float(e["rr"][i]),
                 "visible_fraction": float(vis[i].sum() / valid[i].sum().clamp(min=1)),
                 "depth_gt": float((gt[i, :, 2] * w[i]).sum() / w[i].sum().clamp(min=1))}
            r.update({k: float(v[i]) for k, v in feats.items()})
            rows.append(r)
        if a % 1280 == 0: print(a, f"{time.time()-t0:.0f}s", flush=True)
df = pd.DataFrame(rows); df.to_csv(out_csv, index=False)
print("done", time.time() - t0)
