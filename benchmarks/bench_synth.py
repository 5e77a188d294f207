"""Synthetic-capture generation speed: the z-buffer per image and whole-pipeline images per second.

    python -m benchmarks.bench_synth           # prints a Markdown snippet
    python -m benchmarks synth                 # updates reports/benchmarks.md

Workload: one two-hand frame (``0003_cover_hand``) seen by 35 dome cameras at the default image
size (256 x 168) — rasterisation alone, and the full render (raster + shading + background +
visibility) and JPEG encoding per image; then ``synthesize`` of a reduced config (35 test cameras,
2 frames per test sequence, one small training and validation capture) end to end, including
annotation writing, as images per second: in one process, and in as many rendering processes as
``synthesize`` uses by default (one per CPU), alternated in the same run (best of ``repeats`` each).
Torch runs single-threaded, as ``synthesize`` does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from handflow.synth import motions
from handflow.data.raster import rasterize
from handflow.synth.rig import dome_rig
from handflow.synth.capture import (SynthConfig, jpeg_bytes, make_subject, n_images as capture_images, render_views,
                                    render_workers, synthesize)
from handflow.keypoints import JOINT_HAND

from benchmarks.timing import best_time, print_figures




def run(n_cameras: int = 35, repeats: int = 3) -> dict:
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        hm = HandModel.from_dir(default_mano_dir())
        cfg = SynthConfig()
        rig = dome_rig(cfg.image_hw, cfg.test_cameras)
        cams = [rig.cameras[c] for c in rig.ids[:: max(1, len(rig.ids) // n_cameras)][:n_cameras]]
        mf = motions.test_motion(hm, 0, "0003_cover_hand", 3, seed=0)
        with torch.no_grad():
            verts = hm.mesh_from_mano(*(torch.as_tensor(a[1:2]) for a in (mf.pose, mf.shape, mf.trans_m)))[0].double()
        faces = np.asarray(hm.faces)
        V = verts.shape[1]
        subject = make_subject(np.random.default_rng(0), V)
        R = torch.as_tensor(np.stack([c.R for c in cams]))
        t = torch.as_tensor(np.stack([c.campos_mm for c in cams]))
        K = torch.as_tensor(np.stack([c.K for c in cams]), dtype=torch.float32)
        vc = ((torch.cat([verts[0], verts[1]])[None] - t[:, None]) @ R.transpose(1, 2)).float()
        fs = torch.as_tensor(np.concatenate([faces[0], faces[1] + V]))
        labels = torch.as_tensor(np.repeat([0, 1], faces.shape[1]))
        t_raster = best_time(lambda: rasterize(vc, fs, K, cfg.image_hw, labels), repeats)
        rngs = lambda: [np.random.default_rng(i) for i in range(len(cams))]  # noqa: E731
        imgs = None

        def render():
            nonlocal imgs
            imgs, _ = render_views(verts.numpy(), faces, cams, cfg.image_hw, subject.albedo, rngs(), mf.keypoints_mm[1])

        t_render = best_time(render, repeats)
        t_jpeg = best_time(lambda: [jpeg_bytes(im, cfg.jpeg_quality) for im in imgs], repeats)
        small = SynthConfig(test_cameras=n_cameras, test_frames=2, train_captures=1, train_sequences=2,
                            train_frames=10, train_cameras_per_frame=6, val_sequences=1, val_frames=10,
                            val_cameras_per_frame=6)
        workers = render_workers(capture_images(small))
        t_synth = {1: float("inf"), workers: float("inf")}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(repeats):
                for w in t_synth:
                    t0 = time.perf_counter()
                    root = synthesize(small, Path(tmp) / f"synth-{r}-{w}", workers=w)
                    t_synth[w] = min(t_synth[w], time.perf_counter() - t0)
            n_images = sum(1 for _ in (root / "images").rglob("*.jpg"))
    finally:
        torch.set_num_threads(threads)
    return {
        "synth_image_hw": f"{cfg.image_hw[0]}x{cfg.image_hw[1]}",
        "synth_faces_per_frame": int(fs.shape[0]),
        "synth_raster_ms_per_image": 1e3 * t_raster / len(cams),
        "synth_render_ms_per_image": 1e3 * t_render / len(cams),
        "synth_jpeg_ms_per_image": 1e3 * t_jpeg / len(cams),
        "synth_pipeline_images": n_images,
        "synth_pipeline_s": t_synth[1],
        "synth_images_per_s": n_images / t_synth[1],
        "synth_workers": workers,
        "synth_pipeline_s_workers": t_synth[workers],
        "synth_images_per_s_workers": n_images / t_synth[workers],
        "synth_workers_speedup": t_synth[1] / t_synth[workers],
        "synth_joints_per_image": len(JOINT_HAND),
    }


if __name__ == "__main__":
    print_figures(run())
