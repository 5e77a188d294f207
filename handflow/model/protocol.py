"""What the rest of the code may ask of a pose model: HandFlowNet and every baseline.

Code that needs a capability checks for it by protocol (``isinstance(model, SamplesInChunks)``),
never by probing attribute names. Shapes: images ``(B, 3, S, S)`` in [0, 1], ``ctx (B, C)``,
``y (..., 218)``, ``K_crop (B, 3, 3)`` px, joints ``(..., 42, 3)`` mm in the camera frame.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from handflow.model.config import ModelConfig


@runtime_checkable
class PoseModel(Protocol):
    """A model of ``p(y | image)``: the interface ``rank``, ``evaluate`` and training use."""

    kind: str
    cfg: ModelConfig

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> image feature ``ctx (B, C)``."""

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` poses per image from the noise ``z (B, n, 218)``: ``(y (B, n, 218), log p (B, n))``."""

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """The single best pose ``(B, 218)``."""

    def lift(self, y: torch.Tensor, K_crop: torch.Tensor, crop_px: int | None = None, return_parts: bool = False):
        """``y (..., 218)`` -> camera-frame keypoints ``(..., 42, 3)`` mm."""

    def predict(self, images: torch.Tensor, K_crop: torch.Tensor, n_samples: int = 100,
                z: torch.Tensor | None = None) -> dict:
        """Encoder once, mode and samples: ``mode_y``, ``mode_joints``, ``samples_y``, ``samples_joints``,
        ``samples_logp``."""

    def data_init(self, y: torch.Tensor, ctx: torch.Tensor) -> None:
        """Data-dependent initialisation from one batch of ground truth (a no-op where there is none)."""

    def set_y_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The fixed standardisation of ``y`` (from the training set)."""


@runtime_checkable
class SamplesInChunks(Protocol):
    """A model whose samples are ``f(ctx, z)`` with ``f(ctx, 0)`` the mode (HandFlowNet): ``rank``
    runs any number of samples per image in bounded memory, one chunk of ``z`` at a time."""

    def predict_joints(self, ctx: torch.Tensor, K_crop: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``ctx (B, C)``, ``K_crop (B, 3, 3)``, ``z (B, n, 218)`` -> keypoints ``(B, n, 42, 3)`` mm."""


@runtime_checkable
class OwnLoss(Protocol):
    """A model trained with its own objective (the baselines) instead of HandFlowNet's loss."""

    def loss(self, ctx: torch.Tensor, targets, cfg=None) -> tuple[torch.Tensor, dict]:
        """``(total, parts)`` for one batch."""


__all__ = ["PoseModel", "SamplesInChunks", "OwnLoss"]
