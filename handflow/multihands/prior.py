"""The MANO pose prior as a Gaussian in PCA space: criterion 3 of MultiHands ("no extreme articulation").

MANO ships PCA ``hands_components (45,45)`` (rows are directions) and the training poses' coefficients
``hands_coeffs (N,45)``; with smplx's ``flat_hand_mean=False`` a finger pose parameter ``p (45,)`` rad is
already relative to ``hands_mean``, so its coefficients are ``c = p @ components^T`` (rows orthonormal).
The prior is the diagonal Gaussian of those coefficients. The acceptance threshold is a quantile of the
prior's own samples' log-likelihoods (so it means the same for the synthetic and the real MANO files).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from handflow.errors import HandflowError


class PosePrior:
    """Per-hand diagonal Gaussian over the 45 finger-pose PCA coefficients (right = 0, left = 1)."""

    def __init__(self, components: np.ndarray, coeffs: np.ndarray):
        components = np.asarray(components, np.float64)
        coeffs = np.asarray(coeffs, np.float64)
        if components.shape != (2, 45, 45) or coeffs.ndim != 3 or coeffs.shape[0] != 2 or coeffs.shape[2] != 45:
            raise HandflowError(f"pose prior needs components (2,45,45) and coeffs (2,N,45), found "
                                f"{components.shape} and {coeffs.shape}")
        if coeffs.shape[1] < 10:
            raise HandflowError(f"pose prior needs at least 10 prior samples per hand, found {coeffs.shape[1]}")
        self.components = torch.as_tensor(components, dtype=torch.float32)  # (2,45,45)
        self.mean = torch.as_tensor(coeffs.mean(1), dtype=torch.float32)  # (2,45)
        self.std = torch.as_tensor(np.maximum(coeffs.std(1), 1e-6), dtype=torch.float32)  # (2,45)
        self._samples = torch.as_tensor(coeffs, dtype=torch.float32)

    @classmethod
    def from_hand_model(cls, hand_model) -> "PosePrior":
        if hand_model.hands_coeffs is None:
            raise HandflowError(f"MANO folder {hand_model.mano_dir}: no 'hands_coeffs' in the model files, "
                                "so there is no pose prior for MultiHands")
        return cls(hand_model.hands_components, hand_model.hands_coeffs)

    def coefficients(self, finger_pose: torch.Tensor) -> torch.Tensor:
        """``finger_pose (...,2,45)`` rad (relative to hands_mean) -> PCA coefficients ``(...,2,45)``."""
        return torch.einsum("...hp,hkp->...hk", finger_pose.to(self.components), self.components)

    def finger_pose(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`coefficients`."""
        return torch.einsum("...hk,hkp->...hp", coeffs.to(self.components), self.components)

    def log_likelihood(self, finger_pose: torch.Tensor) -> torch.Tensor:
        """``(...,2,45)`` -> per-hand log density ``(...,2)`` of the coefficients."""
        return self._log_density(self.coefficients(finger_pose))

    def _log_density(self, c: torch.Tensor) -> torch.Tensor:
        zs = (c - self.mean) / self.std
        return -0.5 * (zs**2).sum(-1) - torch.log(self.std).sum(-1) - 0.5 * 45 * math.log(2 * math.pi)

    def threshold(self, quantile: float) -> torch.Tensor:
        """``(2,)`` log-likelihood below which only ``quantile`` of the prior's own samples fall."""
        ll = self._log_density(self._samples.transpose(0, 1))  # (N,2)
        return torch.quantile(ll, quantile, dim=0)
