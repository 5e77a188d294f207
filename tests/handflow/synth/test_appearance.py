"""Shading of rasterised meshes (the synthetic capture's look)."""

import torch
from meshes import K, box

from handflow.data.raster import rasterize
from handflow.synth.appearance import shade


def test_shading_range_and_batch():
    v, f = box([0, 0, 500], [60, 60, 60])
    verts = torch.stack([v, v + torch.tensor([10.0, 0, 0], dtype=torch.float64)]).float()
    fr = rasterize(verts, f, K, (80, 100))
    rgb = shade(fr, verts, f, torch.full((2, 8, 3), 0.8), torch.tensor([[0.0, 0.0, -1.0]] * 2),
                torch.ones(2, 3), torch.tensor([0.3, 0.3]))
    assert rgb.shape == (2, 80, 100, 3)
    assert rgb[fr.mask].min() >= 0.3 * 0.8 - 1e-5 and rgb.max() <= 1.0
    assert (rgb[~fr.mask] == 0).all()
    # the face looking at the camera under a frontal light is bright
    assert rgb[0, 40, 50].mean() > 0.9
