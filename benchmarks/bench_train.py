"""Training throughput: a full HandFlowNet step vs. the encoder alone (forward + backward).

Workload: ``configs/default.toml``'s model and batch size on images and targets from the tiny
synthetic capture (generated into a temporary cache). The training step includes the flow's
NLL/DetMag passes, the mode and 2 samples lifted through the hand model, and the optimiser; the
reference is the encoder's forward + backward + optimiser on the same batch.

Data loading: ``train`` decodes the split once into the crop store (``handflow.preload.open_split``:
JPEG decode + crop done once, uint8 crops on disk); here the split is read whole (``preload_split``) and
each step only indexes those tensors (``_targets``: gather + uint8 -> float); ``bench_store`` measures
reading every batch from the store instead. ``batch_fetch_ms`` measures that per step and
``data_fraction_of_step`` its share of a step: the CPU never waits for JPEG decode during
training, so worker processes would only add inter-process copies. ``preload_ms_per_image`` is
the one-time decode + crop cost per image.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

REPO = Path(__file__).resolve().parent.parent


def run(repeats: int = 5) -> dict:
    from handflow.preload import preload_split
    from handflow.synth.capture import load_synth_config, synthesize
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import build_model
    from handflow.train import _TrainStep, _targets, load_train_config

    cfg = load_train_config(REPO / "configs" / "default.toml")
    B = cfg.optim.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("VIEWSELECT_CACHE")
        os.environ["VIEWSELECT_CACHE"] = tmp
        try:
            root = synthesize(load_synth_config(REPO / "configs" / "synth" / "tiny.toml"), Path(tmp) / "tiny")
            hm = HandModel.from_dir(default_mano_dir())
            t0 = time.perf_counter()
            data = preload_split(root, "train", cfg.model.crop_px, hm)
            preload_s = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("VIEWSELECT_CACHE")
            else:
                os.environ["VIEWSELECT_CACHE"] = old
        torch.manual_seed(0)
        model = build_model(cfg.model, hm)
        model.set_y_normalization(data["y"].mean(0), data["y"].std(0) + 1e-3)
        idx = torch.arange(B) % len(data["image"])
        images, tg = _targets(data, idx, "cpu")
        with torch.no_grad():
            model.data_init(tg.y[:, 0], model.encode(images))
        step = _TrainStep(model, cfg.loss, amp=False)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def full():
            total, _ = step(images, tg)
            opt.zero_grad()
            total.backward()
            opt.step()

        enc_opt = torch.optim.AdamW(model.encoder.parameters(), lr=1e-5)

        def encoder_only():
            feat = model.encode(images)
            enc_opt.zero_grad()
            feat.square().mean().backward()
            enc_opt.step()

        full(), encoder_only()
        t_full = best_time(full, repeats)
        t_enc = best_time(encoder_only, repeats)
        order = torch.randperm(len(data["image"]), generator=torch.Generator().manual_seed(0))
        t_fetch = best_time(lambda: _targets(data, order[:B] if len(order) >= B else idx, "cpu"), repeats)
    return {
        "batch": B,
        "preload_ms_per_image": 1000.0 * preload_s / len(data["image"]),
        "batch_fetch_ms": 1000.0 * t_fetch,
        "data_fraction_of_step": t_fetch / t_full,
        "train_step_images_per_s": B / t_full,
        "encoder_fwd_bwd_images_per_s": B / t_enc,
        "train_vs_encoder_ratio": t_enc / t_full,
    }


def notes(f: dict) -> str:
    r = f["train_vs_encoder_ratio"]
    met = "met" if r >= 0.75 else "**not met**"
    return (f"Target: training step images/s >= 0.75 of the encoder's forward + backward: {r:.2f} ({met}). "
            f"Data loading takes {f['data_fraction_of_step']:.1%} of a step ({f['batch_fetch_ms']:.1f} ms per batch): "
            "`train` decodes and crops every image once (`open_split`, "
            f"{f['preload_ms_per_image']:.1f} ms per image, cached on disk) and a step only indexes uint8 tensors, "
            "so the CPU never waits for JPEG decode and worker processes would add nothing but copies.")


if __name__ == "__main__":
    print_figures(run())
