"""Test-time re-crops: the pixels move where the new intrinsics say a 3D point now projects."""

from __future__ import annotations

import pytest
import torch

from handflow.errors import HandflowError
from handflow.geometry.recrop import TEST_TIME_CROPS, CropJitter, recrop, shift_crops


def _blob(S: int, u: float, v: float) -> torch.Tensor:
    """A Gaussian blob centred at pixel (u, v) of an S x S image, (1, 1, S, S)."""
    ys, xs = torch.meshgrid(torch.arange(S, dtype=torch.float64), torch.arange(S, dtype=torch.float64), indexing="ij")
    return torch.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 2.0**2))[None, None]


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    S = img.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(S, dtype=img.dtype), torch.arange(S, dtype=img.dtype), indexing="ij")
    w = img[0, 0]
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


@pytest.mark.parametrize("jitter", [CropJitter(1.12), CropJitter(1.0, 0.05, -0.05), CropJitter(1.12, -0.04, 0.04)])
def test_a_point_lands_where_the_new_intrinsics_project_it(jitter):
    S = 64
    K = torch.tensor([[[80.0, 0.0, 30.0], [0.0, 80.0, 33.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    X = torch.tensor([40.0, -25.0, 500.0], dtype=torch.float64)  # mm, camera frame
    uv = (K[0] @ X / X[2])[:2]
    img, K2 = recrop(_blob(S, float(uv[0]), float(uv[1])), K, jitter)
    uv2 = (K2[0] @ X / X[2])[:2]
    # known answer: u' = s (u - c) + c + d with c = (S - 1) / 2 and d the shift in pixels
    c = (S - 1) / 2
    assert float(uv2[0]) == pytest.approx(jitter.zoom * (float(uv[0]) - c) + c + jitter.dx * S)
    assert float(uv2[1]) == pytest.approx(jitter.zoom * (float(uv[1]) - c) + c + jitter.dy * S)
    cu, cv = _centroid(img)
    assert (cu, cv) == pytest.approx((float(uv2[0]), float(uv2[1])), abs=0.05)


def test_identity_returns_the_inputs_and_the_set_starts_with_it():
    images, K = torch.rand(2, 3, 16, 16), torch.eye(3).repeat(2, 1, 1)
    out, K2 = recrop(images, K, TEST_TIME_CROPS[0])
    assert out is images and K2 is K
    assert TEST_TIME_CROPS[0] == CropJitter() and len(set(TEST_TIME_CROPS)) == len(TEST_TIME_CROPS)


def test_shift_crops_moves_each_image_by_its_own_shift():
    """Known answer: a blob at (u, v) lands at (u + dx, v + dy), where the shifted intrinsics project its 3D point;
    one image's shift equals :func:`recrop` with that shift; the other image gets its own."""
    S = 64
    K = torch.tensor([[80.0, 0.0, 30.0], [0.0, 80.0, 33.0], [0.0, 0.0, 1.0]], dtype=torch.float64).repeat(2, 1, 1)
    X = torch.tensor([40.0, -25.0, 500.0], dtype=torch.float64)
    uv = (K[0] @ X / X[2])[:2]
    img = _blob(S, float(uv[0]), float(uv[1])).repeat(2, 1, 1, 1)
    d = torch.tensor([[3.2, -6.4], [-5.0, 2.0]], dtype=torch.float64)
    out, K2 = shift_crops(img, K, d)
    for b in range(2):
        uv2 = (K2[b] @ X / X[2])[:2]
        assert torch.allclose(uv2, uv + d[b])
        assert _centroid(out[b : b + 1]) == pytest.approx((float(uv2[0]), float(uv2[1])), abs=0.05)
    same, K3 = recrop(img[:1], K[:1], CropJitter(1.0, 3.2 / S, -6.4 / S))
    assert torch.allclose(out[:1], same, atol=1e-9) and torch.allclose(K2[:1], K3)
    assert torch.equal(K[:, 2], K2[:, 2]) and torch.equal(K[:, :2, :2], K2[:, :2, :2])
    with pytest.raises(HandflowError, match=r"shift_px must be \(2, 2\)"):
        shift_crops(img, K, d[:1])
