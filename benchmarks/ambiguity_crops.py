"""Which test-time crops should the ambiguity use? The camera ranking of every subset of a candidate set.

    python -m benchmarks.ambiguity_crops dump crops.npz [MODEL] [b.npz MODEL_B ...]  # every test image, ~10 min on 2 quiet cores
    python -m benchmarks.ambiguity_crops score crops.npz            # the table of reports/ambiguity.md
    python -m benchmarks.ambiguity_crops halves crops.npz           # its Spearman columns on odd / even frames
    python -m benchmarks.ambiguity_crops pool crops.npz b.npz [c.npz ...]  # pooled heads: the dumps' modes together

``dump`` runs the shipped model (seed-free: modes only) on every image of the default capture's test split
under each crop of :data:`CANDIDATES` (the former 8-crop set of ``rank``, which holds
:data:`~handflow.geometry.recrop.TEST_TIME_CROPS`, then larger zooms, a zoom-out and larger shifts) and stores the modes ``(N, crops, 42, 3)`` mm in the camera
frame with the ground truth. ``score`` then forms, for named subsets of the crops, each image's spread of
the modes after an alignment (``handflow.metrics.sample_std``, the statistic ``rank`` ranks by), averages
images per (sequence, camera), and prints what ``rank``'s ranker summary prints: per sequence the Spearman
correlation over its cameras of the spread and the camera's MPJPE (mean over the sequences), and the
best-ranked and worst-ranked camera's regret (its MPJPE above the sequence's best camera) as a ratio of the
average camera's (each averaged over the sequences, then the ratio, as ``rank``'s summary), for Global and
RR, plus the cost in encoder passes per image and the articulation spread (each joint's, each hand at its
wrist) on occluded ÷ visible joints, pooled over images and over the joints but the wrists
(:func:`handflow.metrics.articulation_masks`), beside the same ratio of the plain crop's mode's
error (what a spread that followed the error joint by joint would show). The MPJPE is always the plain crop's
mode's.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from handflow.geometry.recrop import TEST_TIME_CROPS, CropJitter

# the plain crop, then the former default set of rank (before this measurement chose four shifts of 5 %),
# then larger zooms, a zoom-out and larger shifts
CANDIDATES = (
    CropJitter(), CropJitter(1.12), CropJitter(1.0, 0.05, 0.0), CropJitter(1.0, -0.05, 0.0),
    CropJitter(1.0, 0.0, 0.05), CropJitter(1.0, 0.0, -0.05), CropJitter(1.12, 0.04, 0.04), CropJitter(1.12, -0.04, -0.04),
    CropJitter(1.25), CropJitter(0.9), CropJitter(1.0, 0.10, 0.0), CropJitter(1.0, 0.0, -0.10),
    CropJitter(1.25, 0.04, -0.04), CropJitter(1.25, -0.04, 0.04),
)
assert set(TEST_TIME_CROPS) <= set(CANDIDATES)  # rank's own set is among those scored

RANK_SUBSET = "4 shifts of 0.05 (rank's set)"
# subsets scored by `score` (indices into CANDIDATES; 0, the plain crop, is always in)
SUBSETS = {
    "former 8 (zoom 1.12, shifts 0.05, zoom + diagonal)": list(range(8)),
    "first 4 (zoom, +-x shift, +y)": [0, 1, 2, 3],
    "zoom + 4 shifts": [0, 1, 2, 3, 4, 5],
    "zooms only (1.12, 1.25, 0.9)": [0, 1, 8, 9],
    RANK_SUBSET: [CANDIDATES.index(j) for j in TEST_TIME_CROPS],
    "x shifts only": [0, 2, 3],
    "y shifts only": [0, 4, 5],
    "4 shifts + 2 shifts of 0.10": [0, 2, 3, 4, 5, 10, 11],
    "2 shifts of 0.10": [0, 10, 11],
    "zooms 1.12 + 1.25 with diagonals": [0, 1, 6, 7, 8, 12, 13],
    "large (1.25 zooms, 0.10 shifts)": [0, 8, 10, 11, 12, 13],
    "all 14": list(range(len(CANDIDATES))),
}


def load_test_split(crop_px: int, hand_model) -> tuple[dict, dict]:
    """The default capture's test split: its preloaded columns (``handflow.preload.preload_split``) and the
    arrays every dump stores beside its modes (ground truth, masks, sequence / camera / frame labels)."""
    from handflow.data.interhand import InterHandDataset
    from handflow.preload import preload_split
    from handflow.synth.capture import ensure_default_data

    root = ensure_default_data()
    data = preload_split(root, "test", crop_px, hand_model)
    items = InterHandDataset(root, "test", crop_px=crop_px).items
    stored = {"gt": data["joints_cam_mm"].numpy(), "valid": data["joint_valid"].numpy(),
              "visible": data["joint_visible"].numpy(),
              "sequence": np.array([f"Capture{it['capture']}/{it['seq']}" for it in items]),
              "camera": np.array([str(it["camera"]) for it in items]),
              "frame": np.array([int(it["frame"]) for it in items])}
    return data, stored


def split_batches(data: dict, batch: int):
    """``load_test_split``'s images in batches, with a progress line every 10: yields ``(start, images, K, y0)``,
    images ``(B, 3, S, S)`` in [0, 1], ``K`` the crops' ``(B, 3, 3)`` intrinsics, ``y0`` the flow's zero latent
    ``(B, 1, Y_DIM)`` (its mode)."""
    from handflow.model.pose_params import Y_DIM

    N, t0 = len(data["image"]), time.time()
    for a in range(0, N, batch):
        img = data["image"][a:a + batch].float() / 255.0
        yield a, img, data["K_crop"][a:a + batch], img.new_zeros(len(img), 1, Y_DIM)
        if a % (batch * 10) == 0:
            print(f"{a}/{N} images, {time.time() - t0:.0f} s", flush=True)


def dump(*pairs: str, batch: int = 128) -> None:
    """``dump OUT [MODEL] [OUT2 MODEL2 ...]``: one dump per model, the shipped model where ``MODEL`` is left out.

    Heads on one frozen encoder (the same encoder weights and BatchNorm statistics, as the ``configs/recipe``
    fine-tunes and fresh heads) share one encoder pass per crop: a dump of three such heads costs about one.
    """
    from handflow.geometry.recrop import recrop
    from handflow.hand.model import HandModel
    from handflow.model.registry import encoder_hash, load_model
    from handflow.synth.mano import default_mano_dir

    if len(pairs) == 1:
        pairs = (pairs[0], "viewselect/models/default.pt")
    if len(pairs) % 2:
        raise SystemExit("dump: give OUT.npz MODEL pairs (one OUT alone dumps the shipped model)")
    outs, paths = pairs[0::2], pairs[1::2]
    hm = HandModel.from_dir(default_mano_dir())
    models = [load_model(p, hm)[0].eval() for p in paths]
    keys = [encoder_hash(m).hexdigest() for m in models]
    encoders = {k: models[keys.index(k)] for k in dict.fromkeys(keys)}  # first model of each distinct encoder
    sizes = {m.cfg.crop_px for m in models}
    if len(sizes) != 1:
        raise SystemExit(f"dump: the models crop to different sizes {sorted(sizes)}")
    data, stored = load_test_split(sizes.pop(), hm)
    N = len(data["image"])
    modes = np.zeros((len(models), N, len(CANDIDATES), 42, 3), np.float32)
    print(f"{len(models)} models, {len(encoders)} distinct encoder(s)", flush=True)
    t0 = time.time()
    with torch.inference_mode():
        for a, img, K, zero in split_batches(data, batch):
            for c, jitter in enumerate(CANDIDATES):
                im, Kc = recrop(img, K, jitter)
                ctx = {k: enc.encode(im) for k, enc in encoders.items()}
                for h, model in enumerate(models):
                    modes[h, a:a + batch, c] = model.predict_joints(ctx[keys[h]], Kc, zero)[:, 0].numpy()
    for h, (out, path) in enumerate(zip(outs, paths)):
        np.savez(out, modes=modes[h], **stored, crops=np.array([[j.zoom, j.dx, j.dy] for j in CANDIDATES]), model=path)
        print(f"wrote {out}: {N} images x {len(CANDIDATES)} crops of {path}")
    print(f"{len(models)} models in {time.time() - t0:.0f} s")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = (np.argsort(np.argsort(v)).astype(float) for v in (x, y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def _per_joint_ratio(per_joint: torch.Tensor, shown: torch.Tensor, hidden: torch.Tensor) -> float:
    """Occluded ÷ visible of each joint on its own (its mean where hidden ÷ its mean where shown), averaged
    over the joints weighted by how often each is hidden: the pooled ratio without the joints' mix (a
    fingertip errs more than a knuckle whether it is hidden or not). per_joint, shown, hidden: ``(N, 42)``."""
    ratios, weights = [], []
    for j in range(per_joint.shape[1]):
        s, h = shown[:, j], hidden[:, j]
        if s.any() and h.any() and per_joint[s, j].mean() > 0:
            ratios.append(float(per_joint[h, j].mean() / per_joint[s, j].mean()))
            weights.append(int(h.sum()))
    return float(np.average(ratios, weights=weights)) if ratios else float("nan")


def table(path, subsets: dict[str, list[int]] = SUBSETS) -> list[dict]:
    """One row per (subset, spread alignment): ``crops``, ``spread`` ("rr" or "global"), ``rho_global``,
    ``best_global``, ``worst_global``, ``rho_rr``, ``best_rr``, ``worst_rr`` (ratios to the average camera's
    regret), ``occluded_vs_visible`` and ``error_occluded_vs_visible`` (the same ratio of the plain crop's
    mode's per-joint error, each hand at its wrist: what a spread that matched the error would show); see the
    module docstring. ``path``: a dump, or its arrays as a dict."""
    import pandas as pd

    from handflow.metrics import articulation_masks, joint_errors, joint_sample_std, mpjpe, sample_std

    d = path if isinstance(path, dict) else np.load(path)
    modes, gt, valid = (torch.from_numpy(d[k]) for k in ("modes", "gt", "valid"))
    vis, occ = articulation_masks(torch.from_numpy(d["visible"]), valid)  # no wrists (0 after the alignment)
    err = {a: mpjpe(modes[:, 0], gt, valid, a).numpy() for a in ("global", "rr")}
    joint_err = joint_errors(modes[:, 0], gt, "rr")  # (N, 42) mm
    err_occ_vis = float(joint_err[occ].mean() / joint_err[vis].mean()) if occ.any() and vis.any() else float("nan")
    err_per_joint = _per_joint_ratio(joint_err, vis, occ)
    base = pd.DataFrame({"sequence": d["sequence"], "camera": d["camera"], "global": err["global"], "rr": err["rr"]})
    rows = []
    for name, subset in subsets.items():
        m = modes[:, subset]
        js = joint_sample_std(m, "rr")  # (N, 42): each joint's spread, each hand at its wrist (articulation)
        occ_vis = float(js[occ].mean() / js[vis].mean()) if occ.any() and vis.any() else float("nan")
        occ_vis_joint = _per_joint_ratio(js, vis, occ)
        for spread_alignment in ("rr", "global"):
            df = base.assign(spread=sample_std(m, spread_alignment).numpy())
            cams = df.groupby(["sequence", "camera"]).mean(numeric_only=True).reset_index()
            row = {"subset": name, "crops": len(subset), "spread": spread_alignment, "occluded_vs_visible": occ_vis,
                   "occluded_vs_visible_per_joint": occ_vis_joint, "error_occluded_vs_visible": err_occ_vis,
                   "error_occluded_vs_visible_per_joint": err_per_joint}
            for e in ("global", "rr"):
                rho, best, worst, avg = [], [], [], []
                for _, g in cams.groupby("sequence"):
                    s, y = g["spread"].to_numpy(), g[e].to_numpy()
                    regret = y - y.min()  # rank's regret: the camera's MPJPE above the sequence's best camera
                    rho.append(_spearman(s, y))
                    best.append(regret[s == s.min()].mean())
                    worst.append(regret[s == s.max()].mean())
                    avg.append(regret.mean())
                # as rank's summary: each figure averaged over the sequences, then the ratio
                mean = float(np.mean(avg)) or float("nan")  # every camera equal: no ratio
                row.update({f"rho_{e}": float(np.mean(rho)), f"best_{e}": float(np.mean(best)) / mean,
                            f"worst_{e}": float(np.mean(worst)) / mean})
            rows.append(row)
    return rows


def score(path: str) -> None:
    d = np.load(path)
    print(f"{len(d['camera'])} images x {d['modes'].shape[1]} crops, model {d['model']}")
    rows = table(path)
    print(f"the plain crop's mode's per-joint error (each hand at its wrist), occluded ÷ visible joints: "
          f"{rows[0]['error_occluded_vs_visible']:.2f} pooled, {rows[0]['error_occluded_vs_visible_per_joint']:.2f} "
          f"joint by joint")
    ranked = next(r for r in rows if r["subset"] == RANK_SUBSET and r["spread"] == "rr")
    print(f"{RANK_SUBSET}: its spread, occluded ÷ visible joints: {ranked['occluded_vs_visible']:.2f} "
          f"pooled, {ranked['occluded_vs_visible_per_joint']:.2f} joint by joint")
    print("| crops | passes/image | spread after | Global ρ | best ÷ avg | worst ÷ avg | RR ρ | best ÷ avg | worst ÷ avg "
          "| occluded ÷ visible |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['subset']} | {r['crops']} | {r['spread']} | {r['rho_global']:+.3f} | {r['best_global']:.2f} "
              f"| {r['worst_global']:.2f} | {r['rho_rr']:+.3f} | {r['best_rr']:.2f} | {r['worst_rr']:.2f} "
              f"| {r['occluded_vs_visible']:.2f} |")


def _halves(d: dict) -> list[dict]:
    """``d`` split by frames: even-index frames of each sequence, then odd-index ones."""
    order = {f: i for i, f in enumerate(sorted(set(d["frame"].tolist())))}
    n = len(d["frame"])
    parts = []
    for half in (0, 1):
        sel = np.array([order[f] % 2 == half for f in d["frame"].tolist()])
        parts.append({k: (v[sel] if v.ndim and len(v) == n else v) for k, v in d.items()})
    return parts


def halves(path: str) -> None:
    """The Spearman columns of :func:`score` on odd and on even frames of each sequence separately: does a
    subset's order hold on both halves of the frames, or is it noise of one?"""
    for half, part in enumerate(_halves(dict(np.load(path)))):
        print(f"frames with even index = {half == 0}: {len(part['frame'])} images")
        for r in table(part):
            if r["spread"] == "rr":
                print(f"| {r['subset']} | Global ρ {r['rho_global']:+.3f} | RR ρ {r['rho_rr']:+.3f} |")


def pooled(path: str, *others: str) -> dict:
    """Dumps of the same images by several models (flow heads on one frozen encoder, say) as one dump whose
    crops are ``path``'s, then each of ``others``'s: a subset across them is a spread pooled over the heads.
    The error stays ``path``'s plain crop's mode's, the model ``rank`` would report."""
    a = dict(np.load(path))
    modes = [a["modes"]]
    for other in others:
        b = np.load(other)
        for k in ("gt", "valid", "sequence", "camera", "frame"):
            if not np.array_equal(a[k], b[k]):
                raise SystemExit(f"{other}: its {k} differs from {path}'s: not dumps of the same images")
        modes.append(b["modes"])
    return {**a, "modes": np.concatenate(modes, axis=1)}


def pool(path: str, *others: str) -> None:
    n, heads = len(CANDIDATES), 1 + len(others)
    rank_set = [CANDIDATES.index(j) for j in TEST_TIME_CROPS]
    subsets = {f"head {h + 1} alone, rank's 5 crops": [h * n + i for i in rank_set] for h in range(heads)}
    subsets[f"{heads} heads, plain crop ({heads} modes)"] = [h * n for h in range(heads)]
    subsets[f"{heads} heads, rank's 5 crops ({5 * heads} modes)"] = [h * n + i for h in range(heads) for i in rank_set]
    d = pooled(path, *others)
    print(f"{len(d['camera'])} images; heads " + ", ".join(f"{h + 1}: {np.load(p)['model']}" for h, p in
          enumerate((path, *others))) + "; error: head 1's plain crop")
    by_half = [table(part, subsets) for part in _halves(d)]
    rows = table(d, subsets)
    print(f"head 1's plain-crop per-joint error (each hand at its wrist), occluded ÷ visible joints: "
          f"{rows[0]['error_occluded_vs_visible']:.2f}")
    print("| modes | count | spread after | Global ρ | best ÷ avg | worst ÷ avg | RR ρ | best ÷ avg | worst ÷ avg "
          "| occluded ÷ visible | Global ρ, even / odd frames | RR ρ, even / odd frames |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r, e, o in zip(rows, *by_half):
        print(f"| {r['subset']} | {r['crops']} | {r['spread']} | {r['rho_global']:+.3f} | {r['best_global']:.2f} "
              f"| {r['worst_global']:.2f} | {r['rho_rr']:+.3f} | {r['best_rr']:.2f} | {r['worst_rr']:.2f} "
              f"| {r['occluded_vs_visible']:.2f} | {e['rho_global']:+.3f} / {o['rho_global']:+.3f} "
              f"| {e['rho_rr']:+.3f} / {o['rho_rr']:+.3f} |")


if __name__ == "__main__":
    commands = {"dump": lambda: dump(*sys.argv[2:]), "score": lambda: score(sys.argv[2]),
                "halves": lambda: halves(sys.argv[2]), "pool": lambda: pool(*sys.argv[2:])}
    if len(sys.argv) < 3 + (sys.argv[1:2] == ["pool"]) or sys.argv[1] not in commands:
        raise SystemExit(__doc__.strip().splitlines()[0] + "\nusage: python -m benchmarks.ambiguity_crops "
                         "dump FILE.npz [MODEL] [FILE2.npz MODEL2 ...] | score|halves FILE.npz | pool FILE.npz OTHER.npz [...]")
    commands[sys.argv[1]]()
