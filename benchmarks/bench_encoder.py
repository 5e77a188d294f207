"""Encoder throughput against the machine: achieved GFLOP/s of the image encoder vs. a float32 matmul.

Workload: ``configs/default.toml``'s encoder (ResNet-18 at half width, 128 px crops; the shipped
model's weights when present), a batch of 96 camera images (``RankConfig.batch_images``), float32.
FLOPs are counted by ``torch.utils.flop_counter`` (2 per multiply-add, convolutions and matmuls
only) and multiplied by the measured images/s. Paths:

* ``plain``: the training module in eval mode (NCHW, separate BatchNorm), ``torch.no_grad``;
* ``inference``: what ``rank`` runs (``HandFlowNet.encode`` under ``torch.inference_mode``):
  BatchNorm folded into the convolutions, channels-last;
* ``compiled``: the inference path through ``torch.compile`` (inductor), measured after compiling;
  it is not used by ``rank`` unless it is faster by a margin worth its compile time.

The yardstick is a 2048x2048 float32 matmul measured in the same run, interleaved with the paths.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

REPO = Path(__file__).resolve().parent.parent


def _model():
    from handflow.model.registry import build_model, load_model
    from handflow.train import load_train_config
    from viewselect.ranking.pipeline import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        return load_model(DEFAULT_MODEL, None)[0]
    return build_model(load_train_config(REPO / "configs" / "default.toml").model, None).eval()


def matmul_gflops(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / best_time(lambda: a @ b, 3) / 1e9


def run(batch: int = 96, repeats: int = 5, compile: bool = True) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    model = _model()
    S = model.cfg.crop_px
    images = torch.rand(batch, 3, S, S, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.encode(images)
    flop_per_image = counter.get_total_flops() / batch

    def plain():
        with torch.no_grad():
            model.fast_inference = False
            try:
                return model.encode(images)
            finally:
                model.fast_inference = True

    def inference():
        with torch.inference_mode():
            return model.encode(images)

    paths = {"plain": plain, "inference": inference}
    compile_s = None
    if compile:
        try:
            with torch.inference_mode():
                plan = model.inference_plan()
                compiled = torch.compile(plan.encoder)
                x = ((images - model.img_mean) / model.img_std).contiguous(memory_format=torch.channels_last)
                t0 = time.perf_counter()
                compiled(x)
                compile_s = time.perf_counter() - t0

            def run_compiled():
                with torch.inference_mode():
                    return compiled(((images - model.img_mean) / model.img_std).contiguous(
                        memory_format=torch.channels_last))

            paths["compiled"] = run_compiled
        except Exception as err:  # no C++ toolchain, unsupported platform: report, do not fail
            print(f"torch.compile unavailable: {str(err).splitlines()[0][:200]}")
    for fn in paths.values():
        fn()
    best = {k: float("inf") for k in paths}
    mm = 0.0
    for _ in range(repeats):  # interleaved: every path gets the same chances at a quiet moment
        mm = max(mm, matmul_gflops())
        for k, fn in paths.items():
            best[k] = min(best[k], best_time(fn, 1))
    with torch.inference_mode():
        err = float((inference() - plain()).abs().max() / plain().abs().max())
    out = {
        "model": f"ResNet-{model.cfg.backbone_depth} (width {model.cfg.backbone_width}) @ {S}px",
        "batch_images": batch,
        "encoder_gflop_per_image": flop_per_image / 1e9,
        "matmul_2048_fp32_gflops": mm,
    }
    for k, t in best.items():
        out[f"{k}_images_per_s"] = batch / t
        out[f"{k}_gflops"] = flop_per_image * batch / t / 1e9
    out["inference_vs_matmul_ratio"] = out["inference_gflops"] / mm
    out["plain_vs_matmul_ratio"] = out["plain_gflops"] / mm
    if "compiled" in best:
        out["compiled_vs_inference_speedup"] = best["inference"] / best["compiled"]
        out["compile_s"] = compile_s
    out["inference_max_rel_diff"] = err
    out["torch_threads"] = torch.get_num_threads()
    return out


def notes(f: dict) -> str:
    r = f["inference_vs_matmul_ratio"]
    met = "met" if r >= 0.5 else "**not met**"
    comp = ""
    if "compiled_vs_inference_speedup" in f:
        comp = (f" `torch.compile` (inductor) of the folded encoder runs at {f['compiled_vs_inference_speedup']:.2f}x the "
                f"eager inference path after {f['compile_s']:.0f} s of compilation, so `rank` does not compile "
                "(oneDNN's channels-last convolutions are already what inductor calls).")
    return (f"Target: encoder at >= 0.5 of the float32 matmul rate. Inference path: {r:.2f} ({met}); the plain "
            f"training module in eval mode: {f['plain_vs_matmul_ratio']:.2f}. Folding BatchNorm removes one pass "
            "over every activation and channels-last lets oneDNN skip layout reorders; results equal the plain "
            f"path to {f['inference_max_rel_diff']:.1e} (relative).{comp}")


if __name__ == "__main__":
    print_figures(run())
