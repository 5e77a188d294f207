"""Pose samples per image: ranking stability vs. speed (issue 16, performance item).

Two measurements, one run, the shipped model on the default synthetic capture (all 7 test sequences,
140 cameras, 5,880 images):

* **stability** — the engine (``evaluate_views``) with 25 / 50 / 100 / 200 / 400 samples per image;
  Kendall's τ-b of each ranking against the 400-sample one (:mod:`viewselect.stats.stability`), camera
  level and per sequence, and the overlap of the 20 most ambiguous cameras. The same for the flow's
  inverse in bfloat16 (:func:`bf16_flow`; this CPU has AVX512-BF16) against float32 at 100 samples.
  Per-view results go to ``rank``'s own cache (keyed by the model digest and the sample count; the
  bfloat16 runs under their own key), so a re-run after the first is seconds, and a retrained model
  is measured afresh automatically.
* **speed** — camera-images/s of ``evaluate_batch`` on 96 images (16 views, decoded once) at each
  sample count, float32 and bfloat16 flow, against the encoder-only forward on the same images: the
  ratio the issue asks to reach 0.8 (best of 3, interleaved).

Re-run after the model is retrained::

    nice -n 15 python -m benchmarks samples          # table into reports/benchmarks.md
    nice -n 15 python -m benchmarks.bench_samples    # figures on stdout only
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

COUNTS = (25, 50, 100, 200, 400)
REFERENCE = 400
SPEED_COUNTS = (25, 50, 100)


@contextlib.contextmanager
def bf16_flow(model):
    """The flow's inverse run in bfloat16 (its GEMMs and, with them, the coupling arithmetic between
    them; the context embedding, lifting and statistics stay float32): a copy of the inference
    plan's sampler with every step tensor in bfloat16, swapped in for the duration. Rounding in the
    elementwise steps too makes this a harsher test of the ranking than bfloat16 GEMMs alone."""
    import copy

    from handflow.model.inference import GlowSampler

    with torch.no_grad():  # the plan exists on the inference path only
        plan = model.inference_plan()
    sampler = plan.sampler
    bf = copy.copy(sampler)
    cast = lambda t: t.to(torch.bfloat16) if torch.is_tensor(t) and t.is_floating_point() else t  # noqa: E731
    bf.steps = [{k: ([tuple(cast(t) for t in blk) for blk in v] if k == "blocks" else cast(v)) for k, v in st.items()}
                for st in sampler.steps]
    bf.logdet_const = cast(sampler.logdet_const)

    def inverse(z, ctx, with_logdet=True):
        cond = [(h.bfloat16(), [g.bfloat16() for g in gates]) for h, gates in sampler.condition(ctx)]
        zz = z if z.dim() == 3 else z[:, None]
        y, lad = GlowSampler.__call__(bf, zz.bfloat16(), cond, with_logdet)
        y = y.float()
        lad = lad.float() + plan.log_std if lad is not None else None
        if z.dim() == 2:
            y, lad = y[:, 0], (lad[:, 0] if lad is not None else None)
        return y, lad

    model._fast_inverse = inverse
    try:
        yield model
    finally:
        del model._fast_inverse  # back to the class's method


def _setup():
    from handflow.data.interhand import InterHandDataset
    from handflow.synth.capture import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import load_model, model_digest
    from viewselect.ranking.pipeline import DEFAULT_MODEL

    model, _ = load_model(DEFAULT_MODEL, HandModel.from_dir(default_mano_dir()), torch.device("cpu"))
    root = ensure_default_data()
    ds = InterHandDataset(root, "test", crop_px=model.cfg.crop_px, skip_bad_images=True)
    return model, model_digest(model), ds, ds.sequences()


def stability(model, key, ds, pairs) -> dict:
    from viewselect.engine.scoring import RankConfig, evaluate_views, view_table
    from viewselect.stats.stability import smallest_stable, stability_table
    from viewselect.engine.viewcache import default_cache_root

    tables = {}
    for n in COUNTS:
        recs = evaluate_views(model, key, ds, pairs, RankConfig(samples=n), default_cache_root(), label=f"{n} samples")
        tables[n] = view_table(recs, ds)
    out = {}
    table = stability_table(tables, REFERENCE)
    for r in table.itertuples():
        out[f"tau_cameras_{r.samples}_vs_{REFERENCE}"] = r.kendall_tau_cameras
        out[f"tau_sequences_mean_{r.samples}_vs_{REFERENCE}"] = r.kendall_tau_sequences_mean
        out[f"top20_overlap_{r.samples}_vs_{REFERENCE}"] = r.top_k_overlap
    stable = smallest_stable(table)
    out["smallest_samples_tau_ge_0.95"] = stable if stable is not None else "none"
    with bf16_flow(model):
        recs = evaluate_views(model, key + "-bf16flow", ds, pairs, RankConfig(samples=100), default_cache_root(),
                              label="100 samples, bf16 flow")
    bf = stability_table({100: tables[100], -1: view_table(recs, ds)}, 100).iloc[0]
    out["tau_cameras_bf16_vs_f32_at_100"] = bf.kendall_tau_cameras
    out["tau_sequences_mean_bf16_vs_f32_at_100"] = bf.kendall_tau_sequences_mean
    out["top20_overlap_bf16_vs_f32_at_100"] = bf.top_k_overlap
    return out


def speed(model, ds, pairs, n_views: int = 16, repeats: int = 3) -> dict:
    from viewselect.engine.scoring import RankConfig, evaluate_batch

    capture, seq = pairs[0]
    views = [ds.load_view(capture, seq, c) for c in ds.camera_ids(capture, seq)[:n_views]]
    images = torch.cat([v["image"] for v in views])
    n = images.shape[0]
    paths = {"encoder": lambda: model.encode(images)}
    for s in SPEED_COUNTS:
        paths[f"f32_{s}"] = lambda s=s: evaluate_batch(model, views, RankConfig(samples=s))

        def bf(s=s):
            with bf16_flow(model):
                evaluate_batch(model, views, RankConfig(samples=s))
        paths[f"bf16_{s}"] = bf
    with torch.inference_mode():
        for fn in paths.values():
            fn()
        best = {k: float("inf") for k in paths}
        for _ in range(repeats):  # interleaved best-of-N: slow phases of a shared machine hit all paths alike
            for k, fn in paths.items():
                best[k] = min(best[k], best_time(fn, 1))
    out = {"speed_images": n, "encoder_only_images_per_s": n / best["encoder"]}
    for s in SPEED_COUNTS:
        for kind in ("f32", "bf16"):
            out[f"rank_{kind}_{s}_images_per_s"] = n / best[f"{kind}_{s}"]
            out[f"rank_{kind}_{s}_vs_encoder"] = best["encoder"] / best[f"{kind}_{s}"]
    return out


def run() -> dict:
    os.environ.setdefault("VIEWSELECT_PROGRESS", "0")
    model, key, ds, pairs = _setup()
    return {**stability(model, key, ds, pairs), **speed(model, ds, pairs)}


def notes(f: dict) -> str:
    taus = ", ".join(f"{n}: {f[f'tau_cameras_{n}_vs_{REFERENCE}']:.3f}" for n in COUNTS if n != REFERENCE)
    ratios = ", ".join(f"{s} samples {f[f'rank_f32_{s}_vs_encoder']:.2f} (bf16 flow {f[f'rank_bf16_{s}_vs_encoder']:.2f})"
                       for s in SPEED_COUNTS)
    return f"""Kendall's τ of the camera ranking against {REFERENCE} samples per image: {taus}; smallest count
with τ ≥ 0.95 (and every larger count too): {f['smallest_samples_tau_ge_0.95']}. The bfloat16 flow at 100 samples
ranks with τ {f['tau_cameras_bf16_vs_f32_at_100']:.3f} against float32. `rank` camera-images/s as a share of the
encoder-only forward (target ≥ 0.8): {ratios}. The default stays 100 samples unless a count below it keeps
τ ≥ 0.95 on the model being shipped; re-run this after retraining (`nice -n 15 python -m benchmarks samples`)."""


if __name__ == "__main__":
    print_figures(run())
