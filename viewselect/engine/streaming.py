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


MAX_SAMPLE_GROUPS = 10


def sample_groups(n_samples: int) -> int:
    """G, the number of disjoint pose-sample groups kept per frame: at most 10, at least 2 samples each
    (1 when N < 4, i.e. no sample-level resampling)."""
    return max(1, min(MAX_SAMPLE_GROUPS, n_samples // 2))


def group_bounds(n_samples: int) -> list[tuple[int, int]]:
    """``[(s0, s1), ...]``: sample index ranges of the :func:`sample_groups` groups (sizes differ by ≤ 1)."""
    g = sample_groups(n_samples)
    edges = [(i * n_samples) // g for i in range(g + 1)]
    return list(zip(edges[:-1], edges[1:]))


class GroupedSpread:
    """One :class:`SampleSpread` per disjoint range of sample indices ``bounds = [(s0, s1), ...]``,
    fed from the same chunks: the per-image spread of each pose-sample group, for the bootstrap."""

    def __init__(self, n_images: int, bounds: list[tuple[int, int]], device):
        self.bounds = list(bounds)
        self.groups = [SampleSpread(n_images, device) for _ in self.bounds]

    def add(self, i0: int, i1: int, s0: int, joints: torch.Tensor) -> None:
        """``joints (b, s, 42, 3)`` mm: samples ``s0 .. s0+s`` of images ``i0:i1``."""
        s1 = s0 + joints.shape[1]
        for (g0, g1), spread in zip(self.bounds, self.groups):
            a, b = max(s0, g0), min(s1, g1)
            if a < b:
                spread.add(i0, i1, joints[:, a - s0 : b - s0])

    def std(self) -> torch.Tensor:
        """``(B, G)`` mm: :meth:`SampleSpread.std` of each group."""
        return torch.stack([g.std() for g in self.groups], dim=-1)

    def total_std(self) -> torch.Tensor:
        """``(B,)`` mm: :meth:`SampleSpread.std` over all samples, merged from the groups (Chan et al.), so
        the samples are reduced once, not once per group and again for the whole."""
        n = sum(g.n for g in self.groups)
        mean = sum(g.n * g.mean for g in self.groups) / n
        m2 = sum(g.m2 + g.n * (g.mean - mean).square() for g in self.groups)
        return (m2 / (n - 1)).sum(-1).sqrt().mean(-1)
