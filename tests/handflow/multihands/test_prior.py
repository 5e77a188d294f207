"""The pose-PCA prior: closed-form log-likelihood, coefficient round trip, quantile threshold, bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from handflow.errors import HandflowError
from handflow.multihands.prior import PosePrior


def _orthonormal(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(45, 45)))
    return q


def test_log_likelihood_is_the_diagonal_gaussian_closed_form():
    # Identity components (coefficients = finger pose), samples ±1 around a known mean: with numpy's
    # population std the fitted Gaussian has exactly that mean and std = scale.
    mean = np.stack([np.linspace(-0.3, 0.3, 45), np.linspace(0.2, -0.1, 45)])  # (2,45)
    scale = np.stack([np.linspace(0.05, 0.5, 45), np.full(45, 0.1)])
    signs = np.array([1.0, -1.0] * 5)[:, None]  # (10,1)
    coeffs = mean[:, None] + signs[None] * scale[:, None]  # (2,10,45)
    prior = PosePrior(np.stack([np.eye(45)] * 2), coeffs)
    assert np.allclose(prior.mean.numpy(), mean, atol=1e-6) and np.allclose(prior.std.numpy(), scale, atol=1e-6)
    p = torch.tensor(np.random.default_rng(0).normal(size=(3, 2, 45)) * 0.2, dtype=torch.float32)
    ll = prior.log_likelihood(p).double().numpy()  # (3,2)
    x = p.double().numpy()
    expect = (-0.5 * ((x - mean) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert ll.shape == (3, 2)
    assert np.allclose(ll, expect, rtol=1e-5, atol=1e-3)
    # at the mean: the density's peak, -sum(log σ) - 45/2 log 2π
    peak = prior.log_likelihood(torch.tensor(mean, dtype=torch.float32)).double().numpy()
    assert np.allclose(peak, -np.log(scale).sum(-1) - 22.5 * math.log(2 * math.pi), atol=1e-3)


def test_coefficients_and_finger_pose_round_trip():
    comps = np.stack([_orthonormal(1), _orthonormal(2)])
    prior = PosePrior(comps, np.random.default_rng(3).normal(size=(2, 50, 45)))
    p = torch.randn(4, 2, 45, generator=torch.Generator().manual_seed(0))
    c = prior.coefficients(p)
    assert torch.allclose(c[:, 1], p[:, 1] @ torch.as_tensor(comps[1], dtype=torch.float32).T, atol=1e-5)
    assert torch.allclose(prior.finger_pose(c), p, atol=1e-5)
    assert torch.allclose(prior.coefficients(prior.finger_pose(c)), c, atol=1e-5)


def test_threshold_is_the_quantile_of_the_samples():
    comps = np.stack([_orthonormal(4), _orthonormal(5)])
    coeffs = np.random.default_rng(6).normal(size=(2, 1000, 45)) * np.linspace(0.1, 1.0, 45)
    prior = PosePrior(comps, coeffs)
    ll = prior.log_likelihood(prior.finger_pose(torch.as_tensor(coeffs, dtype=torch.float32).transpose(0, 1)))  # (N,2)
    for q in (0.01, 0.1, 0.5):
        thr = prior.threshold(q)
        assert thr.shape == (2,)
        assert torch.allclose(thr, torch.quantile(ll, q, dim=0), atol=1e-3)
        below = (ll < thr).double().mean(0)
        assert torch.all((below - q).abs() <= 1.0 / 1000 + 1e-9)


def test_the_synthetic_mano_prior_peaks_at_the_mean(hand_model):
    prior = PosePrior.from_hand_model(hand_model)
    at_mean = prior.log_likelihood(prior.finger_pose(prior.mean))
    assert torch.all(at_mean > prior.threshold(0.99))


def test_bad_prior_input_is_one_line_error():
    with pytest.raises(HandflowError, match=r"components \(2,45,45\)"):
        PosePrior(np.zeros((45, 45)), np.zeros((2, 20, 45)))
    with pytest.raises(HandflowError, match="at least 10 prior samples"):
        PosePrior(np.stack([np.eye(45)] * 2), np.zeros((2, 5, 45)))
    with pytest.raises(HandflowError, match="/models/mano.*hands_coeffs") as err:
        PosePrior.from_hand_model(SimpleNamespace(hands_coeffs=None, hands_components=None, mano_dir="/models/mano"))
    assert "\n" not in str(err.value)
