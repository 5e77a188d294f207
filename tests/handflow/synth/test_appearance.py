"""Shading of rasterised meshes (the synthetic capture's look)."""

import numpy as np
import torch

from handflow.data.raster import rasterize
from handflow.synth.appearance import shade

K = torch.tensor([[200.0, 0.0, 50.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])


def _box(center, size):
    """Closed box mesh: (8,3) vertices, (12,3) faces."""
    c, s = np.asarray(center, float), np.asarray(size, float) / 2
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * s + c
    f = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return torch.tensor(v), torch.tensor(f)


def test_shading_range_and_batch():
    v, f = _box([0, 0, 500], [60, 60, 60])
    verts = torch.stack([v, v + torch.tensor([10.0, 0, 0], dtype=torch.float64)]).float()
    fr = rasterize(verts, f, K, (80, 100))
    rgb = shade(fr, verts, f, torch.full((2, 8, 3), 0.8), torch.tensor([[0.0, 0.0, -1.0]] * 2),
                torch.ones(2, 3), torch.tensor([0.3, 0.3]))
    assert rgb.shape == (2, 80, 100, 3)
    assert rgb[fr.mask].min() >= 0.3 * 0.8 - 1e-5 and rgb.max() <= 1.0
    assert (rgb[~fr.mask] == 0).all()
    # the face looking at the camera under a frontal light is bright
    assert rgb[0, 40, 50].mean() > 0.9
