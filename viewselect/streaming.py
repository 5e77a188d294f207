"""Streaming per-image sample spread, so the samples of an image never need to be held at once."""

from __future__ import annotations

import torch

from handflow.keypoints import N_JOINTS


class SampleSpread:
    """Count, mean and summed squared deviations per joint coordinate, merged over sample chunks
    (Chan et al.'s parallel update)."""

    def __init__(self, n_images: int, device):
        self.n = torch.zeros(n_images, 1, 1, device=device)
        self.mean = torch.zeros(n_images, N_JOINTS, 3, device=device)
        self.m2 = torch.zeros(n_images, N_JOINTS, 3, device=device)

    def add(self, i0: int, i1: int, joints: torch.Tensor) -> None:
        """``joints (b, s, 42, 3)`` mm: ``s`` more samples of images ``i0:i1``."""
        var_b, mean_b = torch.var_mean(joints, dim=1, correction=0)
        s = joints.shape[1]
        n_a = self.n[i0:i1]
        n = n_a + s
        delta = mean_b - self.mean[i0:i1]
        self.mean[i0:i1] += delta * (s / n)
        self.m2[i0:i1] += var_b * s + delta.square() * (n_a * s / n)
        self.n[i0:i1] = n

    def std(self) -> torch.Tensor:
        """``(B,)`` mm, mean over joints of ``sqrt(trace(cov))`` (unbiased), as ``handflow.metrics.sample_std``."""
        return (self.m2 / (self.n - 1)).sum(-1).sqrt().mean(-1)
