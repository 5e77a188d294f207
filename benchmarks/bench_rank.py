"""Rank throughput: camera-images/s of the whole per-view pipeline vs. the encoder alone.

Workload: the shipped default model (or ``configs/default.toml``'s architecture untrained when no
model is shipped) on views of the default synthetic capture's test split when it is in the cache
(the tiny capture otherwise). "rank" is ``viewselect.engine.evaluate_batch``: encoder once per
image, 100 samples + mode through the flow, lifting, world transform, statistics. The reference is
the encoder forward alone on the same images (already decoded and cropped in both).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

REPO = Path(__file__).resolve().parent.parent




def run(n_views: int = 16, repeats: int = 3, samples: int = 100) -> dict:
    from handflow.data.interhand import InterHandDataset
    from handflow.data.synth import MANIFEST, default_data_root, load_synth_config, synthesize
    from handflow.hand.model import HandModel
    from handflow.model.registry import build_model, load_model
    from handflow.train import load_train_config
    from viewselect.engine import RankConfig, evaluate_batch
    from viewselect.rank import DEFAULT_MODEL

    hm = HandModel.from_dir()
    if DEFAULT_MODEL.is_file():
        model, _ = load_model(DEFAULT_MODEL, hm)
    else:
        model = build_model(load_train_config(REPO / "configs" / "default.toml").model, hm).eval()
    tmp = None
    root = default_data_root()
    if not (root / MANIFEST).is_file():
        tmp = tempfile.TemporaryDirectory()
        root = synthesize(load_synth_config(REPO / "configs" / "synth" / "tiny.toml"), Path(tmp.name) / "tiny")
    ds = InterHandDataset(root, "test", crop_px=model.cfg.crop_px)
    (capture, seqs), = list(ds.available().items())[:1]
    cams = ds.camera_ids(capture, seqs[0])[:n_views]
    views = [ds.load_view(capture, seqs[0], c) for c in cams]
    images = torch.cat([v["image"] for v in views])
    cfg = RankConfig(samples=samples)
    with torch.no_grad():
        evaluate_batch(model, views, cfg)
        t_rank = best_time(lambda: evaluate_batch(model, views, cfg), repeats)
        t_enc = best_time(lambda: model.encode(images), repeats)
    if tmp is not None:
        tmp.cleanup()
    n = images.shape[0]
    return {
        "images": n,
        "samples_per_image": samples,
        "rank_camera_images_per_s": n / t_rank,
        "encoder_only_images_per_s": n / t_enc,
        "rank_vs_encoder_ratio": t_enc / t_rank,
    }


if __name__ == "__main__":
    print_figures(run())
