"""Held-out figures of a model on a split: the mode's MPJPE against a constant predictor, sample spread.

    python -m handflow.evaluate --model viewselect/models/default.pt --split test

The constant (mean-pose) predictor outputs the training set's mean ``y`` (the model's ``y_mean``
buffer) for every image, lifted with that image's crop camera: the floor a model must beat.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from handflow.metrics import mpjpe, sample_std

ALIGNMENTS = ("global", "rrr", "rr")


@torch.no_grad()
def evaluate_split(model, data: dict, n_samples: int = 100, batch: int = 64, seed: int = 0) -> dict:
    """``data``: a preloaded split (``handflow.data.preload``). Means over images, mm.

    Runs on the model's device and leaves the model in the train/eval mode it had.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, list[torch.Tensor]] = {}

    def add(key, value):
        sums.setdefault(key, []).append(value)

    for a in range(0, len(data["image"]), batch):
        sl = slice(a, a + batch)
        images = data["image"][sl].to(device).float() / 255.0
        K = data["K_crop"][sl].to(device)
        gt, valid = data["joints_cam_mm"][sl].to(device), data["joint_valid"][sl].to(device)
        z = torch.randn(images.shape[0], n_samples, model.y_mean.numel(), generator=gen).to(device)
        out = model.predict(images, K, n_samples=n_samples, z=z)
        const = model.lift(model.y_mean.expand(images.shape[0], -1), K)
        for al in ALIGNMENTS:
            add(f"mode_mpjpe_{al}_mm", mpjpe(out["mode_joints"], gt, valid, al))
            add(f"constant_mpjpe_{al}_mm", mpjpe(const, gt, valid, al))
        add("sample_std_mm", sample_std(out["samples_joints"]))
        add("sample_std_rr_mm", sample_std(out["samples_joints"], alignment="rr"))
    model.train(was_training)
    res = {}
    for k, v in sums.items():
        t = torch.cat(v)
        res[k] = float(t[torch.isfinite(t)].mean())
    res["images"] = int(len(data["image"]))
    res["samples_per_image"] = n_samples
    return res


def main(argv: list[str] | None = None) -> None:
    from handflow.data.preload import preload_split
    from handflow.data.synth import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--data-root", default=None)
    p.add_argument("--mano-dir", default=None)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--max-images", type=int, default=None)
    a = p.parse_args(argv)
    hm = HandModel.from_dir(a.mano_dir)
    model, _ = load_model(a.model, hm)
    root = Path(a.data_root) if a.data_root else ensure_default_data()
    data = preload_split(root, a.split, model.cfg.crop_px, hm, max_images=a.max_images)
    print(json.dumps(evaluate_split(model, data, a.samples), indent=2))


if __name__ == "__main__":
    main()
