"""Sampling noise per view, independent of batching, chunking and sharding.

View ``v``'s noise is ``randn(frames_v, N, 218)`` from a generator seeded by (seed, capture,
sequence, camera), drawn as one tensor: the same view gets the same samples however the views
are grouped into model calls, split into sample chunks, or spread over processes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from handflow.model.pose_params import Y_DIM


def seed_for(seed: int, capture: int, seq: str, cam: str) -> int:
    """A 63-bit generator seed for one view."""
    blob = f"{seed}|{capture}|{seq}|{cam}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


class ViewNoise:
    """The sampling noise of a batch of views, drawn per view on first use and dropped once consumed."""

    def __init__(self, views: list[dict], samples: int, seed: int):
        self.views, self.samples, self.seed = views, samples, seed
        self.starts = np.cumsum([0] + [len(v["frame"]) for v in views])  # first image of each view
        self.drawn: dict[int, torch.Tensor] = {}

    def take(self, i0: int, i1: int, s0: int, s1: int) -> torch.Tensor:
        """Noise of images ``i0:i1`` (batch indices), samples ``s0:s1``: ``(i1-i0, s1-s0, 218)``."""
        parts = []
        for v in range(len(self.views)):
            a, b = int(self.starts[v]), int(self.starts[v + 1])
            if b <= i0:
                self.drawn.pop(v, None)
                continue
            if a >= i1:
                break
            if v not in self.drawn:
                view = self.views[v]
                gen = torch.Generator().manual_seed(seed_for(self.seed, view["capture"], view["seq"], view["camera"]))
                self.drawn[v] = torch.randn(b - a, self.samples, Y_DIM, generator=gen)
            parts.append(self.drawn[v][max(i0, a) - a : min(i1, b) - a, s0:s1])
        return torch.cat(parts)


def chunks(n_images: int, n_samples: int, max_rows: int):
    """``(i0, i1, s0, s1)`` covering images x samples with at most ``max_rows`` rows each (whole
    images together while one image fits, else one image's samples in slices)."""
    if n_samples <= max_rows:
        per = max_rows // n_samples
        for i0 in range(0, n_images, per):
            yield i0, min(i0 + per, n_images), 0, n_samples
    else:
        for i in range(n_images):
            for s0 in range(0, n_samples, max_rows):
                yield i, i + 1, s0, min(s0 + max_rows, n_samples)
