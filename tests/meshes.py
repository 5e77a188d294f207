"""Hand-made meshes for the rasteriser and shading tests."""

import numpy as np
import torch

# a pinhole camera looking down +z (pixels; principal point off-centre so x and y are not interchangeable)
K = torch.tensor([[200.0, 0.0, 50.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])


def box(center, size):
    """Closed box mesh: (8,3) vertices (float64, mm), (12,3) faces."""
    c, s = np.asarray(center, float), np.asarray(size, float) / 2
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * s + c
    f = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return torch.tensor(v), torch.tensor(f)
