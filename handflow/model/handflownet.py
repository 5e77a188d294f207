"""HandFlowNet: ResNet image encoder -> image feature ``v`` -> conditional GLOW over the 218-d ``y``.

``encode(images) -> ctx`` returns the pooled ResNet feature ``v`` (``ctx``; 512-d for ResNet-18/34,
2048-d for ResNet-50); the flow embeds it once per call (``ConditionalGlow``) and shares it over all
samples/annotations of an image. Images are float RGB in ``[0, 1]``, ``(B, 3, S, S)``; the ImageNet
normalisation (torchvision's mean/std) happens inside ``encode``.

``y`` normalisation (buffers ``y_mean``, ``y_std``, 218 each; identity until set): the flow models
``ŷ = (y - y_mean) / y_std``. The components of ``y`` live on very different scales (6D entries in
[-1, 1], ``s`` around 5-10, ``t`` in [-1, 1]); a fixed per-dimension standardisation from the training
set (set once by the trainer via :meth:`set_y_normalization`, saved with the state dict) lets one
noise scale, one coupling clamp and ``L_y`` treat all dimensions alike and keeps ActNorm's data
initialisation well conditioned. It is an affine map, so every density, log-determinant and mode
below is reported for ``y`` itself: ``log p(y) = log p(ŷ) - Σ log y_std`` and
``log|det ∂y/∂z| = log|det ∂ŷ/∂z| + Σ log y_std``; the mode ``f_v(0)`` is still the image of ``z = 0``.

``detach_context``: HandFlow's ``L_DetMag`` must not reach the image encoder. Methods taking
``detach_context=True`` use ``ctx.detach()``, so that term's gradient stops at ``v`` and only trains
the flow (its context embedding included).

The hand model (``handflow.hand.model.HandModel``) is used for lifting only. It is *not* a submodule:
its buffers stay out of checkpoints (the MANO files are the user's, under their licence), but ``.to()`` /
``.double()`` on the network also move it.

Inference path: in eval mode with gradients off (``torch.no_grad`` / ``torch.inference_mode``),
``encode``, ``inverse``, ``sample``, ``mode``, ``predict`` and ``predict_joints`` run an
:class:`~handflow.model.inference.InferencePlan` built from the current weights: the encoder with BatchNorm folded into its
convolutions in channels-last layout and a ``GlowSampler`` (LU and
ActNorm inverses precomputed, ``y`` de-normalisation folded in). Results equal the plain path within
float rounding. The plan lives outside the module's state (never in ``state_dict``, so checkpoints
and weight digests are unchanged) and is rebuilt whenever a parameter or buffer changes (keyed on
their storage and version counters). Training mode or autograd always takes the plain path;
``net.fast_inference = False`` forces it too.
"""

from __future__ import annotations

import torch
from torch import nn

from handflow.errors import HandflowError
from handflow.model.config import ModelConfig
from handflow.model.flow import ConditionalGlow
from handflow.model.inference import InferencePlan, state_key
from handflow.model.pose_params import Y_DIM, lift_y
from handflow.model.resnet import ResNet, load_backbone_weights

__all__ = ["HandFlowNet", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Y_STD_FLOOR = 1e-3
# Images are [0, 1]; anything beyond this is clamped so no finite input can overflow the encoder to inf/NaN
# (a 1e38 pixel did: reliability catalogue).
IMAGE_LIMIT = 1e4


class HandFlowNet(nn.Module):
    kind = "handflow"

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        self.encoder = ResNet(cfg.backbone_depth, width=cfg.backbone_width)
        self.flow = ConditionalGlow(
            Y_DIM,
            cfg.feature_dim,
            context_dim=cfg.context_dim,
            num_steps=cfg.flow_steps,
            hidden=cfg.flow_hidden,
            num_blocks=cfg.flow_blocks,
            max_log_scale=cfg.max_log_scale,
        )
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("y_mean", torch.zeros(Y_DIM))
        self.register_buffer("y_std", torch.ones(Y_DIM))
        self.__dict__["hand_model"] = hand_model  # deliberately not a submodule (see module doc)
        self.__dict__["fast_inference"] = True
        self.__dict__["_plan"] = None  # InferencePlan; outside the module state on purpose
        if cfg.backbone_weights:
            load_backbone_weights(self.encoder, cfg.backbone_weights)

    # ------------------------------------------------------------ bookkeeping
    def _apply(self, fn, *args, **kwargs):
        nn.Module._apply(self, fn, *args, **kwargs)  # explicit: the baselines share this method
        hm = self.__dict__.get("hand_model")
        if isinstance(hm, nn.Module):
            hm._apply(fn, *args, **kwargs)
        return self

    def set_hand_model(self, hand_model) -> None:
        self.__dict__["hand_model"] = hand_model

    @torch.no_grad()
    def set_y_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the fixed standardisation of ``y`` (e.g. mean/std over the training set); std floored at 1e-3."""
        mean = torch.as_tensor(mean, dtype=self.y_mean.dtype, device=self.y_mean.device).reshape(-1)
        std = torch.as_tensor(std, dtype=self.y_std.dtype, device=self.y_std.device).reshape(-1)
        if mean.numel() != Y_DIM or std.numel() != Y_DIM:
            raise HandflowError(f"y normalisation needs {Y_DIM} means and stds, found {mean.numel()} and {std.numel()}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise HandflowError("y normalisation holds non-finite values")
        self.y_mean.copy_(mean)
        self.y_std.copy_(std.abs().clamp_min(Y_STD_FLOOR))

    def normalize_y(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.y_mean) / self.y_std

    def denormalize_y(self, y_hat: torch.Tensor) -> torch.Tensor:
        return y_hat * self.y_std + self.y_mean

    def _log_std(self) -> torch.Tensor:
        return torch.log(self.y_std).sum()

    @staticmethod
    def _ctx(ctx: torch.Tensor, detach_context: bool) -> torch.Tensor:
        return ctx.detach() if detach_context else ctx

    def inference_plan(self) -> InferencePlan | None:
        """The plan for the current weights when on the inference path (eval, no autograd), else ``None``."""
        if self.training or torch.is_grad_enabled() or not self.__dict__.get("fast_inference", True):
            return None
        key = state_key(self)
        plan = self.__dict__.get("_plan")
        if plan is None or plan.key != key:
            with torch.no_grad():
                plan = InferencePlan(self, key)
            self.__dict__["_plan"] = plan
        return plan

    # ------------------------------------------------------------ encoder
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B,3,S,S)`` in [0,1] -> ``ctx = v (B, feature_dim)``."""
        x = (images.clamp(-IMAGE_LIMIT, IMAGE_LIMIT) - self.img_mean) / self.img_std
        plan = self.inference_plan()
        if plan is not None:
            return plan.encoder(x.contiguous(memory_format=torch.channels_last))
        return self.encoder(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)

    # ------------------------------------------------------------ flow, in y units
    def latents(self, y: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None,
                detach_context: bool = False):
        """``f_v^{-1}`` on annotations ``y (B,K,218)``: ``(z (B,K,218), log|det ∂f_v/∂z| (B,K), log p(y|v) (B,K))``.

        ``mask (B,K)`` (True = valid): masked entries are 0 in all three outputs.
        """
        z, logdet, logp = self.flow.latents_multi(self.normalize_y(y), self._ctx(ctx, detach_context), mask)
        c = self._log_std()
        if mask is None:
            return z, logdet + c, logp - c
        m = mask.to(logdet.dtype)
        return z, logdet + c * m, logp - c * m

    def log_prob(self, y: torch.Tensor, ctx: torch.Tensor, detach_context: bool = False) -> torch.Tensor:
        """``log p(y | v)``: ``y (B,218)`` -> ``(B,)``."""
        return self.flow.log_prob(self.normalize_y(y), self._ctx(ctx, detach_context)) - self._log_std()

    def log_prob_multi(self, y: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None,
                       detach_context: bool = False) -> torch.Tensor:
        """``y (B,K,218)`` -> ``(B,K)``; masked entries 0."""
        return self.latents(y, ctx, mask, detach_context)[2]

    def _fast_inverse(self, z: torch.Tensor, ctx: torch.Tensor, with_logdet: bool = True):
        """The plan's ``f_v`` in y units, or ``None`` off the inference path. ``z (B,218)|(B,n,218)``."""
        plan = self.inference_plan()
        if plan is None or plan.sampler is None:
            return None
        self.flow._rows(z, ctx.shape[0])  # same shape checks as the plain path
        if ctx.dim() != 2 or ctx.shape[1] != self.flow.context_features:
            raise HandflowError(f"flow context must be (B, {self.flow.context_features}), found {tuple(ctx.shape)}")
        zz = z if z.dim() == 3 else z[:, None]
        y, logdet = plan.sampler(zz, plan.sampler.condition(ctx), with_logdet=with_logdet)
        if logdet is not None:
            logdet = logdet + plan.log_std
        if z.dim() == 2:
            y, logdet = y[:, 0], (logdet[:, 0] if logdet is not None else None)
        return y, logdet

    def inverse(self, z: torch.Tensor, ctx: torch.Tensor, detach_context: bool = False):
        """``f_v``: ``z (B,218)|(B,n,218)`` -> ``(y, log|det ∂f_v(z)/∂z|)`` in y units."""
        fast = self._fast_inverse(z, ctx)
        if fast is not None:
            return fast
        y_hat, logdet = self.flow.inverse(z, self._ctx(ctx, detach_context))
        return self.denormalize_y(y_hat), logdet + self._log_std()

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None, detach_context: bool = False):
        """``n`` poses per image: ``(y (B,n,218), log p(y|v) (B,n))``; ``z (B,n,218)`` optional noise."""
        if z is None:
            z = torch.randn(ctx.shape[0], n, Y_DIM, dtype=ctx.dtype, device=ctx.device)
        elif z.shape != (ctx.shape[0], n, Y_DIM):
            raise HandflowError(f"sample noise must be ({ctx.shape[0]}, {n}, {Y_DIM}), found {tuple(z.shape)}")
        fast = self._fast_inverse(z, ctx)
        if fast is not None:
            return fast[0], self.flow.log_normal(z) - fast[1]
        y_hat, logp = self.flow.sample(self._ctx(ctx, detach_context), n, z)
        return self.denormalize_y(y_hat), logp - self._log_std()

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """``f_v(0)``: ``(B, 218)``."""
        fast = self._fast_inverse(ctx.new_zeros(ctx.shape[0], Y_DIM), ctx, with_logdet=False)
        if fast is not None:
            return fast[0]
        return self.denormalize_y(self.flow.mode(ctx))

    @torch.no_grad()
    def data_init(self, y: torch.Tensor, ctx: torch.Tensor) -> None:
        """Initialise the flow's ActNorms from one batch of ground truth ``y (B,218)|(B,K,218)``."""
        self.flow.data_init(self.normalize_y(y), ctx)

    # ------------------------------------------------------------ geometry
    def lift(self, y: torch.Tensor, K_crop: torch.Tensor, crop_px: int | None = None, return_parts: bool = False):
        """``y (...,218)`` -> camera-space keypoints ``(...,42,3)`` mm (see ``pose_params.lift_y``)."""
        hm = self.__dict__.get("hand_model")
        if hm is None:
            raise HandflowError("HandFlowNet has no hand model: pass one to lift poses to 3D")
        return lift_y(y, K_crop, crop_px or self.cfg.crop_px, hm, return_parts=return_parts)

    @torch.no_grad()
    def predict_joints(self, ctx: torch.Tensor, K_crop: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Camera-frame keypoints of ``f_v(z)``: ``ctx (B,C)``, ``K_crop (B,3,3)``, ``z (B,n,218)`` -> ``(B,n,42,3)`` mm.

        No densities: what ``rank`` needs per chunk of samples (``z = 0`` gives the mode).
        """
        fast = self._fast_inverse(z, ctx, with_logdet=False)
        y = fast[0] if fast is not None else self.inverse(z, ctx)[0]
        return self.lift(y, K_crop)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, K_crop: torch.Tensor, n_samples: int = 100, z: torch.Tensor | None = None):
        """Inference in one call: encoder once, then the mode and ``n_samples`` samples per image.

        Returns ``{'mode_y' (B,218), 'mode_joints' (B,42,3), 'samples_y' (B,n,218),
        'samples_joints' (B,n,42,3), 'samples_logp' (B,n)}`` (camera frame, mm).
        """
        ctx = self.encode(images)
        B = ctx.shape[0]
        if z is None:
            z = torch.randn(B, n_samples, Y_DIM, dtype=ctx.dtype, device=ctx.device)
        z_all = torch.cat([z.new_zeros(B, 1, Y_DIM), z], dim=1)  # row 0 = mode
        y, logp = self.sample(ctx, z_all.shape[1], z_all)
        joints = self.lift(y, K_crop)
        return {
            "mode_y": y[:, 0],
            "mode_joints": joints[:, 0],
            "samples_y": y[:, 1:],
            "samples_joints": joints[:, 1:],
            "samples_logp": logp[:, 1:],
        }
