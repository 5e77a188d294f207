"""Overlay of the ground-truth keypoints on a capture image (a quick look at data and annotations)."""

from __future__ import annotations

import os

from handflow.data.interhand import InterHandDataset
from handflow.keypoints import HAND_SLICES, HANDS, JOINT_HAND, SKELETON
from handflow.io import atomic_path

HAND_COLORS = {0: "#ff3b30", 1: "#1e90ff"}  # right red, left blue


def render_overlay(dataset: InterHandDataset, capture: int, seq: str, cam_id: str, frame: int,
                   out_png: str | os.PathLike, dpi: int = 100) -> None:
    """Write ``out_png``: the full image with both hands' skeletons (right red, left blue); visible
    joints are filled dots, occluded joints hollow circles with an ``x``; invalid joints are not drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    i = dataset.index_of(capture, seq, cam_id, frame)
    img = dataset.load_full_image(i)
    H, W = img.shape[:2]
    g = dataset.geometry(i, (H, W))
    uv, valid, vis = g["img"], g["valid"] > 0, g["visible"] > 0
    scale = max(1.0, 640.0 / H)
    fig = plt.figure(figsize=(W * scale / dpi, H * scale / dpi), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, interpolation="nearest")
    for j, p in SKELETON:
        if valid[j] and valid[p]:
            ax.plot(uv[[j, p], 0], uv[[j, p], 1], "-", color=HAND_COLORS[JOINT_HAND[j]], lw=1.5, alpha=0.8)
    for j in range(len(uv)):
        if not valid[j]:
            continue
        c = HAND_COLORS[JOINT_HAND[j]]
        if vis[j]:
            ax.plot(uv[j, 0], uv[j, 1], "o", ms=5, mfc=c, mec="white", mew=0.8)
        else:
            ax.plot(uv[j, 0], uv[j, 1], "o", ms=7, mfc="none", mec=c, mew=1.2)
            ax.plot(uv[j, 0], uv[j, 1], "x", ms=4, color=c, mew=1.0)
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.axis("off")
    ax.text(2, 8 / scale * 1.5, f"Capture{capture}/{seq} cam{cam_id} frame {frame}", color="white", fontsize=7,
            bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def render_annotations(dataset: InterHandDataset, capture: int, seq: str, cam_id: str, frame: int, ann: dict,
                       out_png: str | os.PathLike, dpi: int = 100) -> int:
    """Write ``out_png``, the frame's MultiHands annotations ``ann`` (``joints_world_mm (K,42,3)``,
    ground truth first; read by the caller through ``handflow.multihands.store``) side by side, like
    the paper's Figure 3: left, every annotation's skeleton projected on the full image, transparent,
    the ground truth (annotation 0) opaque and outlined in white; right, the same 3D joints from a novel
    viewpoint, the camera turned 90° about its vertical (image y) axis through the ground truth's
    centre, orthographic — so the spread along the camera's rays, which the image barely constrains,
    lies across the panel. Returns the number of annotations drawn (ground truth included)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.collections import LineCollection

    i = dataset.index_of(capture, seq, cam_id, frame)
    img = dataset.load_full_image(i)
    H, W = img.shape[:2]
    cam = dataset.camera(capture, cam_id)
    jc = cam.world_to_cam(ann["joints_world_mm"].double().numpy())  # (K,42,3) camera mm
    uv = cam.project(jc)
    n = len(jc)
    alpha = float(np.clip(4.0 / max(n - 1, 1), 0.06, 0.5))  # many annotations: fainter, so density shows
    bones = np.array(SKELETON)
    side = np.stack([jc[..., 2] - jc[0, :, 2].mean(), jc[..., 1]], -1)  # (K,42,2): depth across, camera y down
    side[..., 1] -= jc[0, :, 1].mean()

    scale = max(1.0, 480.0 / H)
    wl, wr = W * scale, H * scale  # left panel: the image; right panel: square, as tall as the image
    fig = plt.figure(figsize=((wl + wr * 1.25) / dpi, H * scale * 1.08 / dpi), dpi=dpi)
    total = wl + wr * 1.25
    ax = fig.add_axes([0, 0, wl / total, 1 / 1.08])
    ax3 = fig.add_axes([(wl + wr * 0.2) / total, 0.1, wr * 0.95 / total, 0.8])
    ax.imshow(img, interpolation="nearest")
    for a, pts in ((ax, uv), (ax3, side)):
        for h in (0, 1):
            hb = bones[JOINT_HAND[bones[:, 0]] == h]
            segs = pts[1:][:, hb].reshape(-1, 2, 2)  # every walked annotation's bones of hand h
            a.add_collection(LineCollection(segs, colors=HAND_COLORS[h], linewidths=1.0, alpha=alpha))
            gt = LineCollection(pts[0][hb], colors=HAND_COLORS[h], linewidths=2.0,
                                path_effects=[pe.Stroke(linewidth=3.6, foreground="white"), pe.Normal()])
            a.add_collection(gt)
            a.plot(pts[0, HAND_SLICES[HANDS[h]], 0], pts[0, HAND_SLICES[HANDS[h]], 1], "o", ms=3.5,
                   mfc=HAND_COLORS[h], mec="white", mew=0.6)
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.axis("off")
    ax3.set_aspect("equal", adjustable="datalim")
    ax3.autoscale_view()
    ax3.invert_yaxis()  # camera y points down the image; keep "up" up
    ax3.set_xlabel("depth along the optical axis (mm)", fontsize=7)
    ax3.set_ylabel("camera y (mm)", fontsize=7)
    ax3.tick_params(labelsize=6)
    ax3.set_title("novel view: 90° about the vertical, orthographic", fontsize=7)
    fig.text(0.005, 1 - 0.03, f"Capture{capture}/{seq} cam{cam_id} frame {frame}: {n} annotations "
             "(ground truth outlined)", fontsize=7, va="top")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return n
