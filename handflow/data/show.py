"""Overlay of the ground-truth keypoints on a capture image (a quick look at data and annotations)."""

from __future__ import annotations

import os

from handflow.data.interhand import SKELETON, InterHandDataset
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
            ax.plot(uv[[j, p], 0], uv[[j, p], 1], "-", color=HAND_COLORS[j // 21], lw=1.5, alpha=0.8)
    for j in range(len(uv)):
        if not valid[j]:
            continue
        c = HAND_COLORS[j // 21]
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
