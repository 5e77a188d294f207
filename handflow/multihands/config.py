"""``MultiHandsConfig``: the random walk that generates plausible annotations (TOML ``configs/multihands.toml``).

Thresholds are in the units the criteria use: pixels of the full capture image, log-likelihood
quantiles of the MANO pose prior, millimetres. Step sizes are the standard deviations of one
perturbation; finger steps are in units of the prior's own per-component standard deviation, so a
step is equally "large" along every PCA direction (the last components barely vary in real MANO).
"""

from __future__ import annotations

from dataclasses import dataclass

from handflow.errors import HandflowError


@dataclass
class MultiHandsConfig:
    per_image: int = 100  # annotations kept per image, the ground truth (index 0) included
    iterations: int = 10  # perturb-and-check rounds; accepted proposals seed the next round
    proposals: int = 128  # proposals per image per round
    reproj_px: float = 3.0  # criterion 1: visible joints within this many image pixels of the ground truth
    prior_quantile: float = 0.01  # criterion 3: per-hand log-likelihood at least this quantile of the prior's samples
    prior_slack: float = 3.0  # ... or at least the ground truth's own log-likelihood minus this (nats)
    visibility_tol_mm: float = 20.0  # criterion 2: the data's visibility rule (handflow.data.raster)
    spheres_per_bone: int = 3  # criterion 4: sphere proxies along each of the 20 bones of a hand
    step_finger_sigma: float = 0.03  # finger pose step, in prior standard deviations per PCA component
    step_global_rad: float = 0.01  # global orientation step (axis-angle, each component)
    step_depth_mm: float = 15.0  # root translation step along the camera ray through the wrist
    step_lateral_mm: float = 0.5  # root translation step across that ray
    step_shape: float = 0.05  # MANO shape step (each of the 10 betas)
    step_occluded_sigma: float = 0.15  # extra step (prior σ, PCA directions) of finger joints whose distal keypoints are all occluded
    seed: int = 0

    def __post_init__(self):
        if self.per_image < 1:
            raise HandflowError(f"multihands.per_image must be at least 1, found {self.per_image}")
        if self.iterations < 0 or self.proposals < 1 or self.spheres_per_bone < 1:
            raise HandflowError("multihands: iterations must be >= 0, proposals and spheres_per_bone >= 1")
        if not 0.0 <= self.prior_quantile < 1.0:
            raise HandflowError(f"multihands.prior_quantile must be in [0, 1), found {self.prior_quantile}")
        for name in ("reproj_px", "prior_slack", "visibility_tol_mm", "step_finger_sigma", "step_global_rad", "step_depth_mm",
                     "step_lateral_mm", "step_shape", "step_occluded_sigma"):
            if not getattr(self, name) >= 0:
                raise HandflowError(f"multihands.{name} must be >= 0, found {getattr(self, name)}")
