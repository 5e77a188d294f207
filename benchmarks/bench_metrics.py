"""MMD over a batch of images: the vectorised :func:`handflow.metrics.mmd` vs a per-image loop.

    python -m benchmarks.bench_metrics          # prints a Markdown snippet
    python -m benchmarks metrics                # updates reports/benchmarks.md

Workload: B images × 100 samples × 100 annotations × 42 joints, 4 bandwidths, Global alignment
(the ``evaluate`` hot path). The loop is the straightforward implementation (``torch.cdist`` per
image); both must give the same numbers. ``mmd`` returns the input dtype (float32 here), so the
reported difference is float32 rounding of the result (~1e-9 on values ~0.04); in float64 the
two agree to ~1e-14.
"""

from __future__ import annotations

import time

import torch

from handflow.metrics import DEFAULT_BANDWIDTHS_MM, align, mmd
from benchmarks.timing import print_figures


def mmd_loop(samples: torch.Tensor, annotations: torch.Tensor, alignment: str = "global",
             bandwidths_mm=DEFAULT_BANDWIDTHS_MM) -> torch.Tensor:  # fmt: skip
    """Reference: one image at a time, same definition (biased MMD², RMS per-joint distance)."""
    out = []
    for b in range(samples.shape[0]):
        x = align(samples[b], alignment).double().reshape(samples.shape[1], -1)
        y = align(annotations[b], alignment).double().reshape(annotations.shape[1], -1)
        vals = []
        for s in bandwidths_mm:
            def k(p, q):
                return torch.exp(-(torch.cdist(p, q) ** 2) / 42.0 / (2.0 * s * s)).mean()

            vals.append(k(x, x) + k(y, y) - 2.0 * k(x, y))
        out.append(torch.stack(vals).mean().clamp_min(0.0))
    return torch.stack(out)


def _best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run(n_images: int = 200, n_samples: int = 100, n_annotations: int = 100, repeats: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(n_images, 1, 42, 3, generator=g) * 40.0 + torch.tensor([0.0, 0.0, 1000.0])
    samples = gt + torch.randn(n_images, n_samples, 42, 3, generator=g) * 15.0
    annotations = gt + torch.randn(n_images, n_annotations, 42, 3, generator=g) * 10.0
    mmd(samples[:2], annotations[:2])  # warm-up
    t_vec, v = _best_time(lambda: mmd(samples, annotations), repeats)
    t_loop, ref = _best_time(lambda: mmd_loop(samples, annotations), repeats)
    return {
        "mmd_images": n_images,
        "mmd_samples_x_annotations": f"{n_samples}x{n_annotations}",
        "mmd_vectorised_s": t_vec,
        "mmd_loop_s": t_loop,
        "mmd_speedup_x": t_loop / t_vec,
        "mmd_images_per_s": n_images / t_vec,
        # the whole default test split (7 sequences x 140 cameras x 6 frames), 3 alignments as `evaluate` does
        "mmd_all_5880_test_images_3_alignments_s": 3 * 5880 * t_vec / n_images,
        "mmd_all_5880_test_images_3_alignments_loop_s": 3 * 5880 * t_loop / n_images,
        "mmd_max_abs_diff": float((v.double() - ref).abs().max()),
        "mmd_mean": float(v.mean()),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print_figures(run())
