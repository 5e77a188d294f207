"""Rank throughput: camera-images/s of the whole per-view pipeline vs. the encoder alone.

Workload: the shipped default model (or ``configs/default.toml``'s architecture untrained when no
model is shipped) on 16 views (96 images) of the default synthetic capture's test split when it is
in the cache (the tiny capture otherwise). "rank" is ``viewselect.engine.scoring.evaluate_batch`` on decoded
views: encoder once per image, 100 samples + the mode through the flow, lifting, spread statistics,
mode MPJPE. The reference is the encoder forward alone on the same images (both on the inference
path: ``torch.inference_mode``, BatchNorm folded, channels-last).

Besides the ratio the section reports where the time goes (stages and the top operators of a
``torch.profiler`` run), the FLOPs of rank vs. the encoder (``torch.utils.flop_counter``): at equal
arithmetic efficiency the ratio cannot exceed ``encoder FLOPs / rank FLOPs``, the plain
(pre-plan) path for comparison, and the data loading: JPEG decode + crop per image and the
end-to-end ``evaluate_views`` rate with loading overlapped in a thread.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

REPO = Path(__file__).resolve().parent.parent


def _setup(n_views: int):
    from handflow.data.interhand import InterHandDataset
    from handflow.synth.capture import MANIFEST, default_data_root, load_synth_config, synthesize
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import build_model, load_model
    from handflow.train import load_train_config
    from viewselect.ranking.pipeline import DEFAULT_MODEL

    hm = HandModel.from_dir(default_mano_dir())
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
    return model, ds, capture, seqs[0], cams, tmp


def run(n_views: int = 16, repeats: int = 3, samples: int | None = None) -> dict:
    from torch.profiler import profile
    from torch.utils.flop_counter import FlopCounterMode

    from handflow.model.pose_params import Y_DIM
    from viewselect.engine.scoring import RankConfig, evaluate_batch, evaluate_views

    import os

    os.environ["VIEWSELECT_PROGRESS"] = "0"
    model, ds, capture, seq, cams, tmp = _setup(n_views)
    cfg = RankConfig() if samples is None else RankConfig(samples=samples)  # the default count and scheme
    samples = cfg.samples
    t0 = time.perf_counter()
    views = [ds.load_view(capture, seq, c) for c in cams]
    load_s = time.perf_counter() - t0
    images = torch.cat([v["image"] for v in views])
    K = torch.cat([v["K_crop"] for v in views])
    n = images.shape[0]
    z = torch.randn(n, samples + 1, Y_DIM, generator=torch.Generator().manual_seed(0))

    def plain():
        model.fast_inference = False
        try:
            evaluate_batch(model, views, cfg)
        finally:
            model.fast_inference = True

    with torch.inference_mode():
        ctx = model.encode(images)
        y = model.inverse(z, ctx)[0]
        paths = {
            "rank": lambda: evaluate_batch(model, views, cfg),
            "encoder": lambda: model.encode(images),
            "flow": lambda: model.inverse(z, ctx),
            "lift": lambda: model.lift(y, K),
            "plain": plain,
        }
        for fn in paths.values():
            fn()
        best = {k: float("inf") for k in paths}
        for _ in range(repeats):  # interleaved best-of-N
            for k, fn in paths.items():
                best[k] = min(best[k], best_time(fn, 1))
        with FlopCounterMode(display=False) as fc_rank:
            evaluate_batch(model, views, cfg)
        with FlopCounterMode(display=False) as fc_enc:
            model.encode(images)
        with profile() as prof:
            evaluate_batch(model, views, cfg)
    top = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:6]

    with tempfile.TemporaryDirectory() as cache:  # end to end: loading overlapped with compute, no cache hits
        t0 = time.perf_counter()
        evaluate_views(model, "bench", ds, [(capture, seq)], cfg, Path(cache), cameras=cams)
        e2e_s = time.perf_counter() - t0
    if tmp is not None:
        tmp.cleanup()
    rank_flop, enc_flop = fc_rank.get_total_flops(), fc_enc.get_total_flops()
    ms = lambda t: 1000.0 * t / n  # noqa: E731  per image
    out = {
        "images": n,
        "samples_per_image": samples,
        "sampling": cfg.sampling,
        "rank_camera_images_per_s": n / best["rank"],
        "encoder_only_images_per_s": n / best["encoder"],
        "rank_vs_encoder_ratio": best["encoder"] / best["rank"],
        "plain_path_rank_images_per_s": n / best["plain"],
        "inference_plan_speedup": best["plain"] / best["rank"],
        "encoder_ms_per_image": ms(best["encoder"]),
        "flow_ms_per_image": ms(best["flow"]),
        "lift_ms_per_image": ms(best["lift"]),
        "rest_ms_per_image": ms(best["rank"] - best["encoder"] - best["flow"] - best["lift"]),
        "encoder_gflop_per_image": enc_flop / n / 1e9,
        "rank_gflop_per_image": rank_flop / n / 1e9,
        "flop_bound_ratio": enc_flop / rank_flop,
        "rank_gflops": rank_flop / best["rank"] / 1e9,
        "encoder_gflops": enc_flop / best["encoder"] / 1e9,
        "load_view_ms_per_image": ms(load_s),
        "end_to_end_images_per_s": n / e2e_s,
        "end_to_end_vs_rank_ratio": best["rank"] / e2e_s,
    }
    for e in top:
        out[f"profile_{e.key.replace('aten::', '')}_ms"] = e.self_cpu_time_total / 1000.0
    return out


def notes(f: dict) -> str:
    r, bound = f["rank_vs_encoder_ratio"], f["flop_bound_ratio"]
    met = "met" if r >= 0.5 else "**not met**"
    prof = ", ".join(f"{k[len('profile_'):-3]} {v:.0f} ms" for k, v in f.items() if k.startswith("profile_"))
    return f"""Target: `rank` camera-images/s >= 0.5 of the encoder-only forward on the same images, at the default
{f['samples_per_image']} samples per image ({f['sampling']} base noise; `benchmarks samples` says why that count): {r:.2f} ({met}).
The inference plan (folded BatchNorm, channels-last, precomputed LU/ActNorm inverses, context once per
image, padded GEMM widths, no per-step gathers, spread in camera coordinates) makes the whole
per-view pipeline {f['inference_plan_speedup']:.2f}x faster than the plain path.

What limits it: arithmetic, not overhead. Per image the encoder is {f['encoder_gflop_per_image']:.2f} GFLOP and
the whole of rank {f['rank_gflop_per_image']:.2f} GFLOP (the flow's 4 steps x 2 residual blocks of hidden 256 on
{f['samples_per_image'] + 1} rows per image), so at equal arithmetic efficiency the ratio cannot exceed {bound:.2f}. Profile of one batch (top self CPU): {prof}. Stages per image:
encoder {f['encoder_ms_per_image']:.2f} ms, flow {f['flow_ms_per_image']:.2f} ms, lifting {f['lift_ms_per_image']:.2f} ms,
rest (the re-crops' encoder passes and lifting, noise, statistics, MPJPE) {f['rest_ms_per_image']:.2f} ms.

Further cuts: the flow's GEMMs in bfloat16 (on a CPU with bfloat16 instructions, AVX512-BF16 or AMX — elsewhere
they are emulated and slower than float32; it ranks with τ below 0.99 against float32 at the default count,
`benchmarks samples`, so it is not the default), or a GPU,
where the flow's large batched GEMMs are cheap next to the convolutions.

Data loading: decode + crop costs {f['load_view_ms_per_image']:.2f} ms per image serially; `evaluate_views` overlaps it
with compute in a thread: end to end (loading, compute, cache writes) runs at {f['end_to_end_vs_rank_ratio']:.2f} of
the compute-only rate."""


if __name__ == "__main__":
    print_figures(run())
