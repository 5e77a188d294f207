"""benchmarks.ambiguity_perturb: a rotated crop is the crop camera turned about its axis; photometric changes."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.ambiguity_perturb import PERTURBATIONS, Perturbation, perturb, subsets


def _project(X, K):
    return (X[..., :2] / X[..., 2:]) * torch.stack([K[0, 0], K[1, 1]]) + K[:2, 2]


def test_rotation_turns_the_camera_and_its_principal_point():
    """Points projected by the perturbed camera (K', R X) land where the turned pixels of the original go."""
    K = torch.tensor([[[150.0, 0.0, 70.0], [0.0, 150.0, 58.0], [0.0, 0.0, 1.0]]])
    images = torch.rand(1, 3, 128, 128)
    X = torch.tensor([[30.0, -20.0, 600.0], [-45.0, 10.0, 550.0], [0.0, 0.0, 700.0]])
    _, K2, R = perturb(images, K, Perturbation("r", "rotate", 10.0))
    t, c = math.radians(10.0), torch.tensor([63.5, 63.5])
    R2 = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    expected = (_project(X, K[0]) - c) @ R2.T + c
    assert torch.allclose(_project(X @ R.T, K2[0]), expected, atol=1e-4)
    assert torch.allclose((X @ R.T) @ R, X, atol=1e-4)  # what dump does to a mode: back to the camera frame
    assert float(R[2, 2]) == 1.0 and torch.allclose(R @ R.T, torch.eye(3), atol=1e-6)


def test_rotation_moves_the_pixels_as_the_camera_says():
    """A bright dot right of the centre turns clockwise on screen (down) by +90°."""
    images = torch.zeros(1, 1, 33, 33)
    images[0, 0, 16, 26] = 1.0  # row 16 (the centre row), column 26: 10 px right of the centre
    out, _, _ = perturb(images, torch.eye(3)[None], Perturbation("r", "rotate", 90.0))
    row, col = divmod(int(out[0, 0].argmax()), 33)
    assert (row, col) == (26, 16)


@pytest.mark.parametrize("kind,value,expected", [
    ("brightness", 1.2, lambda x: (x * 1.2).clamp(0, 1)),
    ("gamma", 0.8, lambda x: x ** 0.8),
    ("contrast", 0.5, lambda x: (x - x.mean()) * 0.5 + x.mean()),
    ("white_balance", 1.1, lambda x: (x * torch.tensor([1.1, 1.0, 1 / 1.1]).view(1, 3, 1, 1)).clamp(0, 1)),
])
def test_photometric_changes_keep_the_camera(kind, value, expected):
    x = torch.rand(1, 3, 8, 8)
    K = torch.eye(3)[None] * 2
    out, K2, R = perturb(x, K, Perturbation("p", kind, value))
    assert torch.allclose(out, expected(x), atol=1e-6) and torch.equal(K2, K) and torch.equal(R, torch.eye(3))


def test_blur_keeps_a_flat_image_and_noise_is_seeded():
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(perturb(flat, torch.eye(3)[None], Perturbation("b", "blur", 0.8))[0], flat, atol=1e-6)
    a = perturb(flat, torch.eye(3)[None], Perturbation("n", "noise", 0.03), seed=3)[0]
    b = perturb(flat, torch.eye(3)[None], Perturbation("n", "noise", 0.03), seed=3)[0]
    assert torch.equal(a, b) and 0.02 < float((a - flat).std()) < 0.04


def test_named_sets_index_the_pooled_dump():
    named = subsets([0, 2, 3, 4, 5], 14)
    assert named["rank's 5 (shifts of 5 %)"] == [0, 2, 3, 4, 5]
    assert named["rotations ±5°"] == [0, 15, 16]
    assert len(named["all 12 photometric"]) == 13 and max(named["all 12 photometric"]) == 14 + len(PERTURBATIONS) - 1
    assert all(i != 14 for s in named.values() for i in s)  # the perturbation dump's own plain crop repeats 0
