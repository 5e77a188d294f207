"""Figures of the ``viewselect report`` (see ``viewselect/outputs/report.py``), each returned as PNG bytes (matplotlib, Agg backend).

Every function takes plain tables/arrays and returns ``bytes`` of a PNG, so the report can embed
them (HTML data URIs) or write them beside a Markdown file. No figure opens a window.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from handflow.keypoints import JOINT_HAND

HAND_COLORS = ("#e8412c", "#1f77d4")  # right hand, left hand
DPI = 100


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _amb_norm(values):
    import matplotlib.colors as mcolors

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    return mcolors.Normalize(lo, hi if hi > lo else lo + 1e-6)


def _unplaced(placed: np.ndarray) -> str:
    """The title's word on cameras left out because the rig's frame gives them no angle."""
    n = int((~placed).sum())
    return f"\n{n} of {len(placed)} cameras not drawn: the rig's frame gives them no angle" if n else ""


def dome_3d(cameras: pd.DataFrame) -> bytes:
    """Camera positions in 3D coloured by ambiguity, in the rig's frame (hands at the origin, the rig's up
    axis vertical, azimuth 0 along x; from the table's azimuth, elevation and distance); dropped cameras
    carry a red cross."""
    plt = _plt()
    fig = plt.figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot(projection="3d")
    az, el = (np.radians(cameras[c].to_numpy(float)) for c in ("azimuth_deg", "elevation_deg"))
    r = cameras["distance_mm"].to_numpy(float)
    xyz = np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)], axis=1)
    amb = cameras["ambiguity_mm"].to_numpy(float)
    norm = _amb_norm(amb)
    sc = ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=amb, cmap="viridis", norm=norm, s=38,
                    edgecolors="k", linewidths=0.3, depthshade=False)
    drop = ~cameras["keep"].to_numpy(bool)
    if drop.any():
        ax.scatter(xyz[drop, 0], xyz[drop, 1], xyz[drop, 2], marker="x", c="#d62728", s=60, linewidths=1.4,
                   depthshade=False, label="dropped")
        ax.legend(loc="upper left", fontsize=8)
    ax.scatter([0.0], [0.0], [0.0], marker="*", c="#ff9f1c", s=160, edgecolors="k", depthshade=False)
    ax.set_xlabel("x (mm)", fontsize=8)
    ax.set_ylabel("y (mm)", fontsize=8)
    ax.set_zlabel("up (mm)", fontsize=8)
    ax.tick_params(labelsize=6)
    placed = np.isfinite(xyz).all(axis=1)  # a camera whose angles the rig cannot define has no place here
    pts = np.vstack([xyz[placed], np.zeros((1, 3))])
    span = np.ptp(pts, axis=0).max() / 2 or 1.0
    mid = (pts.max(0) + pts.min(0)) / 2
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid):
        setter(m - span, m + span)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=25, azim=-60)
    fig.colorbar(sc, ax=ax, shrink=0.65, pad=0.1, label="ambiguity (mm)")
    ax.set_title("Camera dome (star: hands)" + _unplaced(placed), fontsize=10)
    return _png(fig)


def dome_map(cameras: pd.DataFrame) -> bytes:
    """Top-down azimuth/elevation map of the cameras coloured by ambiguity (dropped: red cross)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    az = cameras["azimuth_deg"].to_numpy(float)
    el = cameras["elevation_deg"].to_numpy(float)
    amb = cameras["ambiguity_mm"].to_numpy(float)
    sc = ax.scatter(az, el, c=amb, cmap="viridis", norm=_amb_norm(amb), s=55, edgecolors="k", linewidths=0.3)
    drop = ~cameras["keep"].to_numpy(bool)
    if drop.any():
        ax.scatter(az[drop], el[drop], marker="x", c="#d62728", s=70, linewidths=1.4, label="dropped")
        ax.legend(loc="lower right", fontsize=8)
    placed = np.isfinite(az) & np.isfinite(el)
    if placed.any():
        best = int(np.nanargmin(np.where(placed, amb, np.nan)))
        ax.annotate(str(cameras["camera"].iloc[best]), (az[best], el[best]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel("azimuth (deg)")
    ax.set_ylabel("elevation (deg)")
    ax.set_xlim(-5, 365)
    ax.set_xticks(range(0, 361, 45))
    ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=ax, label="ambiguity (mm)")
    ax.set_title("Cameras by viewing direction" + _unplaced(placed), fontsize=10)
    return _png(fig)


def ranking_bars(cameras: pd.DataFrame) -> bytes:
    """Cameras sorted by ambiguity (least first); bars of dropped cameras in red."""
    plt = _plt()
    cams = cameras.sort_values(["ambiguity_mm", "camera"], kind="stable")
    n = len(cams)
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.11 * n + 2)), 3.8))
    keep = cams["keep"].to_numpy(bool)
    colors = np.where(keep, "#2c7fb8", "#d62728")
    x = np.arange(n)
    ax.bar(x, cams["ambiguity_mm"].to_numpy(float), color=colors, width=0.85)
    step = max(1, int(np.ceil(n / 70)))
    ax.set_xticks(x[::step])
    ax.set_xticklabels([str(c) for c in cams["camera"].iloc[::step]], rotation=90, fontsize=6 if n > 30 else 8)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylabel("ambiguity (mm)")
    ax.set_xlabel("camera (least ambiguous first)" + (f"; one label per {step} cameras" if step > 1 else ""))
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#2c7fb8", label="keep"), Patch(color="#d62728", label="drop")], fontsize=8,
              loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Camera ranking by HandFlowNet ambiguity", fontsize=10)
    return _png(fig)


def regret_curve(ambiguity: pd.DataFrame, random: pd.DataFrame) -> bytes:
    """Average and best-kept regret vs number of cameras dropped: ambiguity order vs random order."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(ambiguity["n_dropped"], ambiguity["mean_regret_mm"], "-", color="#2c7fb8",
            label="average kept camera, ambiguity order")
    ax.plot(random["n_dropped"], random["mean_regret_mm"], "--", color="#7f7f7f",
            label="average kept camera, random order (expected)")
    ax.plot(ambiguity["n_dropped"], ambiguity["best_regret_mm"], "-", color="#31a354",
            label="best kept camera, ambiguity order")
    ax.plot(random["n_dropped"], random["best_regret_mm"], ":", color="#31a354",
            label="best kept camera, random order (expected)")
    ax.set_xlabel("cameras dropped")
    ax.set_ylabel("regret (mm, Global MPJPE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Regret as the most ambiguous cameras are dropped", fontsize=10)
    return _png(fig)


ALIGNMENT_TITLES = {"global": "Global (no alignment)", "rrr": "RRR (right wrist)", "rr": "RR (each wrist)"}


def reliability(curves) -> bytes:
    """One panel per alignment: mean realised MPJPE against mean predicted spread of each group of images
    (:class:`viewselect.stats.calibration.ReliabilityCurve`), with the ideal line error = spread."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(3.8 * len(curves), 3.6), squeeze=False)
    for ax, c in zip(axes[0], curves):
        ax.plot(c.spread_mm, c.error_mm, "-o", color="#2c7fb8", ms=4, label="images binned by spread")
        hi = max([*c.spread_mm, *c.error_mm, 1.0]) * 1.05
        ax.plot([0, hi], [0, hi], "--", color="#7f7f7f", lw=1, label="ideal: error = spread")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.set_aspect("equal")
        rho = "–" if not np.isfinite(c.spearman) else f"{c.spearman:+.2f}"
        ax.set_title(f"{ALIGNMENT_TITLES.get(c.alignment, c.alignment)}; image ρ {rho}", fontsize=9)
        ax.set_xlabel("predicted spread (mm)")
        ax.set_ylabel("realised MPJPE (mm)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Reliability of the ambiguity", fontsize=10)
    return _png(fig)


SUBSET_STYLES = {"ambiguity": ("-o", "#2c7fb8", "least ambiguous"), "coverage": ("-s", "#ff7f0e", "coverage rule"),
                 "uniform": ("-D", "#31a354", "uniform spacing"), "random": ("--", "#7f7f7f", "random (mean, 10–90 %)")}


def error_vs_cameras(rows: pd.DataFrame) -> bytes:
    """Triangulation error and mean regret of the kept set vs number of cameras, one line per
    strategy (:func:`viewselect.rig.subsets.subset_curves`' table); random draws as a band."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0))
    panels = (("triangulation_error", "triangulation error (mm)"), ("mean_regret", "mean regret of kept cameras (mm)"))
    for ax, (stem, ylabel) in zip(axes, panels):
        for strategy, (fmt, color, label) in SUBSET_STYLES.items():
            r = rows[rows["strategy"] == strategy].sort_values("n_cameras")
            if not len(r) or not r[f"{stem}_mm"].notna().any():
                continue
            ax.plot(r["n_cameras"], r[f"{stem}_mm"], fmt, color=color, label=label, ms=3)
            if strategy == "random" and f"{stem}_low_mm" in r:
                ax.fill_between(r["n_cameras"], r[f"{stem}_low_mm"], r[f"{stem}_high_mm"], color=color, alpha=0.2, lw=0)
        ax.set_xscale("log", base=2)
        ks = sorted(rows["n_cameras"].unique())
        ticks = [k for k in ks if k in (2, 4, 8, 16, 32, 64, 128) or k == ks[-1]]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(k) for k in ticks])
        ax.set_xlabel("cameras kept")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("Error against the number of cameras", fontsize=10)
    return _png(fig)


def _segments(joints: np.ndarray, skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(..., J, D) joints -> (M, 2, D) segments and (M,) hand index, over every leading sample."""
    j = np.asarray(joints, float).reshape(-1, joints.shape[-2], joints.shape[-1])
    a = np.array([e[0] for e in skeleton])
    b = np.array([e[1] for e in skeleton])
    seg = np.stack([j[:, a], j[:, b]], axis=2).reshape(-1, 2, j.shape[-1])
    hand = np.tile(JOINT_HAND[a], j.shape[0])
    return seg, hand


def sample_overlay(panels: list[dict], skeleton, title: str) -> bytes:
    """Figure-5-style panels. Each panel dict: ``label``; either ``image`` (H,W,3 in [0,1]) with
    ``samples_px`` (N,42,2) and ``mode_px`` (42,2) drawn over the crop, or ``samples_world`` (N,42,3)
    and ``gt_world`` (42,3) drawn in a fixed 3D view (a novel viewpoint, world frame)."""
    plt = _plt()
    from matplotlib.collections import LineCollection
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    fig = plt.figure(figsize=(3.1 * len(panels), 3.3))
    for k, p in enumerate(panels):
        if "image" in p:
            ax = fig.add_subplot(1, len(panels), k + 1)
            img = np.clip(np.asarray(p["image"], float), 0, 1)
            H, W = img.shape[:2]
            ax.imshow(img, interpolation="bilinear", extent=(-0.5, W - 0.5, H - 0.5, -0.5))
            seg, hand = _segments(p["samples_px"], skeleton)
            alpha = float(np.clip(12.0 / max(1, len(p["samples_px"])), 0.06, 0.6))
            ax.add_collection(LineCollection(seg, colors=[HAND_COLORS[h] for h in hand], linewidths=1.0,
                                             alpha=alpha))
            mseg, mhand = _segments(p["mode_px"][None], skeleton)
            ax.add_collection(LineCollection(mseg, colors="white", linewidths=1.0, alpha=0.9))
            ax.set_xlim(-0.5, W - 0.5)
            ax.set_ylim(H - 0.5, -0.5)
            ax.axis("off")
        else:
            ax = fig.add_subplot(1, len(panels), k + 1, projection="3d")
            s = np.asarray(p["samples_world"], float)
            gt = np.asarray(p["gt_world"], float)
            seg, hand = _segments(s, skeleton)
            alpha = float(np.clip(6.0 / max(1, len(s)), 0.04, 0.5))
            ax.add_collection3d(Line3DCollection(seg, colors=[HAND_COLORS[h] for h in hand], linewidths=0.7,
                                                 alpha=alpha))
            gseg, _ = _segments(gt[None], skeleton)
            ax.add_collection3d(Line3DCollection(gseg, colors="k", linewidths=1.2))
            center = np.nanmean(gt, axis=0)
            # the box holds the ground truth and the central 96 % of the samples (equal axes)
            lo = np.nanmin(np.vstack([gt, np.nanpercentile(s.reshape(-1, 3), 2, axis=0)[None]]), axis=0)
            hi = np.nanmax(np.vstack([gt, np.nanpercentile(s.reshape(-1, 3), 98, axis=0)[None]]), axis=0)
            center = (lo + hi) / 2
            half = max(90.0, float(np.max(hi - lo)) / 2 * 1.1)
            if p.get("to_camera") is not None:  # the direction the image was taken from
                d = np.asarray(p["to_camera"], float)
                d = d / (np.linalg.norm(d) or 1.0) * half * 0.9
                c0 = np.nanmean(gt, axis=0)
                ax.plot([c0[0], c0[0] + d[0]], [c0[1], c0[1] + d[1]], [c0[2], c0[2] + d[2]], "-", color="#555",
                        lw=1.0)
                ax.text(c0[0] + d[0], c0[1] + d[1], c0[2] + d[2], "camera", fontsize=6, color="#555")
            ax.set_xlim(center[0] - half, center[0] + half)
            ax.set_ylim(center[1] - half, center[1] + half)
            ax.set_zlim(center[2] - half, center[2] + half)
            ax.set_box_aspect((1, 1, 1))
            ax.view_init(elev=20, azim=-60)
            ax.tick_params(labelsize=5)
        ax.set_title(p["label"], fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _png(fig)
