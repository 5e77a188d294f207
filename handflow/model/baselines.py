"""The baselines HandFlow compares against (its Table 2), on HandFlowNet's encoder and training loop (``model.kind``).

=================  ==================================================================================
kind               model (an MLP head on the pooled ResNet feature ``v``, ``ModelConfig.head_*``)
=================  ==================================================================================
``regressor``      deterministic regression of ``y`` (InterNet-style; a Dirac distribution)
``mc_dropout``     the regressor with dropout on the head's hidden units, kept on at test time (Gal &
                   Ghahramani 2016); a sample is one dropout mask
``gaussian``       diagonal Gaussian ``N(μ(v), diag σ(v)²)`` over ``y`` (aleatoric, Kendall & Gal 2017)
``cvae``           conditional VAE (Kingma & Welling 2014): decoder ``g(v, l)``, prior ``l ~ N(0, I)``,
                   recognition ``q(l | y, v)``, learned per-dimension decoder std
=================  ==================================================================================

Every kind has HandFlowNet's interface and the parts of it the rest of the code uses: the same ResNet
(``encoder.*``), ImageNet normalisation inside ``encode``, fixed ``y`` standardisation (``y_mean``,
``y_std``, :meth:`set_y_normalization`; the heads work in normalised units ``ŷ = (y - y_mean) / y_std``)
and hand model handling (used for lifting only, never a submodule, moved by ``.to()``). State dict key
names of those parts match HandFlowNet's.

* ``encode(images (B,3,S,S) in [0,1]) -> ctx (B, feature_dim)``
* ``sample(ctx, n, z=None) -> (y (B,n,218), logp (B,n))``. ``z (B,n,218)`` is the noise of each
  (image, sample) (``rank`` seeds it per view; drawn from ``N(0, I)`` when None), and a sample is a
  deterministic function of its image's ``ctx`` and its own ``z`` row only, so results do not depend on
  how images are batched. ``logp = log p(y | v)`` in ``y`` units where the model has a tractable
  density (``gaussian``: exact); NaN otherwise (``regressor``: a Dirac has no density; ``mc_dropout``
  and ``cvae``: the marginal over masks / latents is intractable).
* ``mode(ctx) -> (B,218)``: the single prediction (``regressor``), the network with dropout off
  (``mc_dropout``; the usual inverted-dropout scaling makes that the mean-field prediction), the mean
  ``μ`` (``gaussian``; also its density's mode), the decoder at latent 0 (``cvae``: the prior's mode
  pushed through the decoder, as HandFlowNet's ``f_v(0)``; not the mode of the marginal, which has no
  closed form). Unlike HandFlowNet, ``sample`` at ``z = 0`` is the mode only for ``gaussian``,
  ``regressor`` and ``cvae``, so :meth:`predict` always calls ``mode``.
* ``lift``, ``predict`` (same keys as ``HandFlowNet.predict``), ``data_init`` (a no-op: the heads'
  last layers start near zero, i.e. at the constant predictor ``y_mean``), ``kind``, ``cfg``. There is
  deliberately no ``predict_joints`` (``handflow.model.protocol.SamplesInChunks``): ``rank``'s chunked
  path takes ``z = 0`` as the mode, which is wrong for MC-dropout, so ``viewselect.engine.scoring`` uses
  ``predict`` for these models.
* ``loss(ctx, targets, cfg) -> (total, parts)``, used by ``handflow.train`` in place of
  ``handflow_loss``: the same geometric terms (``handflow.model.objective.pose_terms``: ``L_y`` on the mode row,
  ``L_J3D``, ``L_J2D`` on the mode and ``cfg.n_samples`` samples, ``L_q``) with the same weights, plus
  ``cfg.w_nll`` times the kind's likelihood term where it has one: the Gaussian NLL (``gaussian``) or
  the negative ELBO (``cvae``), each averaged over the image's valid annotations (MultiHands: K per
  image) after ProHMR's ``nll_noise`` jitter (it also keeps a per-dimension σ from collapsing on a
  near-constant dimension). ``w_detmag`` has no counterpart and is ignored. ``regressor`` trains on
  its one prediction (no sample rows); ``mc_dropout`` puts every row, the mode row included, through a
  fresh dropout mask, since MC dropout's objective is the expected loss over masks.

MC-dropout masks from ``z``: each hidden unit ``u`` of the head (``head_layers × head_hidden`` of them)
gets ``g_u = P_u · z`` with a fixed projection ``P`` (rows of unit length drawn once from a constant
seed, not trained, not saved), and is kept when ``g_u > Φ⁻¹(p)``. For ``z ~ N(0, I)`` every ``g_u`` is
exactly ``N(0, 1)``, so each unit is dropped with probability exactly ``p``; two units' ``g`` correlate
by ``P_u · P_w`` (about ``±1/√218`` for random directions), i.e. their drop decisions by a few
percent. The projection is computed in float64 so float rounding, which depends on the batch shape in
float32 matrix products, cannot move a ``g_u`` across the threshold.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from handflow.errors import HandflowError
from handflow.model.objective import LossConfig, LossTargets, pose_terms
from handflow.model.config import ModelConfig
from handflow.model.handflownet import IMAGE_LIMIT, IMAGENET_MEAN, IMAGENET_STD, HandFlowNet
from handflow.model.pose_params import Y_DIM, lift_y
from handflow.model.resnet import ResNet, load_backbone_weights

__all__ = ["BASELINES", "Regressor", "MCDropout", "GaussianBaseline", "CVAE"]

LOG_2PI = math.log(2 * math.pi)
MAX_LOG_STD = 5.0  # σ within e^±5 of the dataset's spread (normalised units); soft bound, see _soft_bound
MASK_SEED = 2016  # MC-dropout's fixed projection (Gal & Ghahramani 2016)


def _soft_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    # a smooth clamp: a hard one has no gradient outside, and an unbounded log σ overflows exp early on
    return bound * torch.tanh(x / bound)


def _log_normal(x: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log N(x; 0, diag exp(log_std)²)`` summed over the last axis; ``x (...,d)``, ``log_std`` broadcastable."""
    return (-0.5 * (x * torch.exp(-log_std)) ** 2 - log_std).sum(-1) - 0.5 * x.shape[-1] * LOG_2PI


class _Head(nn.Module):
    """MLP ``ctx (B,F)`` [+ per-row input ``rows (B,m,R)``] -> ``(B,m,out)`` (m = 1 without rows), ReLU.

    The first layer is split into an image part, computed once per image, and a per-row part, so rows
    (samples, annotations) never recompute the image-dependent product. ``keep (B,m,layers,
    hidden)``: per-row scales of each hidden layer's output (MC-dropout masks).
    """

    def __init__(self, in_dim: int, row_dim: int, hidden: int, layers: int, out_dim: int):
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.row = nn.Linear(row_dim, hidden, bias=False) if row_dim else None
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, out_dim)
        with torch.no_grad():  # start near 0 in normalised units: the constant predictor y_mean, σ = y_std
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()

    def forward(self, ctx: torch.Tensor, rows: torch.Tensor | None = None, keep: torch.Tensor | None = None):
        h = self.inp(ctx)[:, None]
        if rows is not None:
            h = h + self.row(rows)
        h = F.relu(h)
        for i, layer in enumerate(self.hidden):
            if keep is not None:
                h = h * keep[..., i, :]
            h = F.relu(layer(h))
        if keep is not None:
            h = h * keep[..., -1, :]
        return self.out(h)


class _EncoderModel(nn.Module):
    """HandFlowNet's encoder, normalisation buffers, hand model handling, ``predict`` and the shared loss."""

    kind = ""

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__()
        cfg = cfg or ModelConfig(kind=self.kind)
        if cfg.kind != self.kind:
            raise HandflowError(f"model.kind is {cfg.kind!r}, but this is the {self.kind!r} model")
        self.cfg = cfg
        self.encoder = ResNet(cfg.backbone_depth, width=cfg.backbone_width)
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("y_mean", torch.zeros(Y_DIM))
        self.register_buffer("y_std", torch.ones(Y_DIM))
        self.__dict__["hand_model"] = hand_model  # not a submodule: MANO stays out of checkpoints (the user's files)
        if cfg.backbone_weights:
            load_backbone_weights(self.encoder, cfg.backbone_weights)

    # HandFlowNet's bookkeeping, shared rather than copied (they only touch the buffers above)
    set_hand_model = HandFlowNet.set_hand_model
    set_y_normalization = HandFlowNet.set_y_normalization
    normalize_y = HandFlowNet.normalize_y
    denormalize_y = HandFlowNet.denormalize_y
    _apply = HandFlowNet._apply  # moves the hand model (not a submodule) with the network

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B,3,S,S)`` in [0,1] -> ``ctx = v (B, feature_dim)``."""
        return self.encoder((images.clamp(-IMAGE_LIMIT, IMAGE_LIMIT) - self.img_mean) / self.img_std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)

    @torch.no_grad()
    def data_init(self, y: torch.Tensor, ctx: torch.Tensor) -> None:
        """No-op (HandFlowNet initialises ActNorm here); the heads already start at ``y_mean``."""

    def lift(self, y: torch.Tensor, K_crop: torch.Tensor, crop_px: int | None = None, return_parts: bool = False):
        """``y (...,218)`` -> camera-space keypoints ``(...,42,3)`` mm (see ``pose_params.lift_y``)."""
        hm = self.__dict__.get("hand_model")
        if hm is None:
            raise HandflowError(f"the {self.kind} model has no hand model: pass one to lift poses to 3D")
        return lift_y(y, K_crop, crop_px or self.cfg.crop_px, hm, return_parts=return_parts)

    def _noise(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None) -> torch.Tensor:
        """The per-(image, sample) noise ``z (B,n,218)``, drawn when None."""
        B = ctx.shape[0]
        if z is None:
            return torch.randn(B, n, Y_DIM, dtype=ctx.dtype, device=ctx.device)
        if tuple(z.shape) != (B, n, Y_DIM):
            raise HandflowError(f"noise z must have shape ({B}, {n}, {Y_DIM}), found {tuple(z.shape)}")
        return z.to(device=ctx.device, dtype=ctx.dtype)

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        raise NotImplementedError

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, K_crop: torch.Tensor, n_samples: int = 100, z: torch.Tensor | None = None):
        """Inference in one call: encoder once, then the mode and ``n_samples`` samples per image.

        Returns ``{'mode_y' (B,218), 'mode_joints' (B,42,3), 'samples_y' (B,n,218),
        'samples_joints' (B,n,42,3), 'samples_logp' (B,n)}`` (camera frame, mm; logp as in ``sample``).
        """
        ctx = self.encode(images)
        y_mode = self.mode(ctx)
        y, logp = self.sample(ctx, n_samples, z)
        joints = self.lift(torch.cat([y_mode[:, None], y], 1), K_crop)
        return {"mode_y": y_mode, "mode_joints": joints[:, 0], "samples_y": y, "samples_joints": joints[:, 1:],
                "samples_logp": logp}

    # ------------------------------------------------------------ training
    def _fit(self, ctx: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, cfg: LossConfig):
        """Kind-specific part of the loss: ``(nll (scalar) or None, rows y_all (B,1+m,218) with row 0 the
        mode, extra logged scalars)``; ``y (B,K,218)`` annotations, ``mask (B,K)`` valid ones."""
        raise NotImplementedError

    def loss(self, ctx: torch.Tensor, tg: LossTargets, cfg: LossConfig | None = None):
        """``(total (scalar tensor), parts: dict[str, float])`` like ``handflow_loss``; ``ctx = self.encode(images)``.

        ``total = w_nll*nll + w_y*L_y + w_j3d*L_J3D + w_j2d*L_J2D(mode) + w_j2d_samples*L_J2D(samples)
        + w_q*L_q``; ``nll`` (and ``parts['nll']``) only for kinds with a likelihood term.
        """
        cfg = cfg or LossConfig()
        y = tg.y
        if y.dim() != 3 or y.shape[-1] != Y_DIM:
            raise HandflowError(f"loss targets: y must be (B, K, {Y_DIM}), found {tuple(y.shape)}")
        B, K, _ = y.shape
        y = y.to(ctx.dtype)
        mask = torch.ones(B, K, dtype=torch.bool, device=y.device) if tg.mask is None else tg.mask.to(torch.bool)
        if not bool(mask.any(1).all()):
            raise HandflowError("loss targets: every image needs at least one valid annotation")
        # a padded annotation may hold anything (NaN included): masked out of the means, it would still
        # poison the gradients through 0 * NaN, so it becomes y_mean first
        y = torch.where(mask[..., None], y, self.y_mean.to(y.dtype))
        nll, y_all, extra = self._fit(ctx, y, mask, cfg)
        t = pose_terms(self, y_all, tg, cfg)
        total = (cfg.w_y * t["y"] + cfg.w_j3d * t["j3d"] + cfg.w_j3d_rr * t["j3d_rr"] + cfg.w_j2d * t["j2d_mode"]
                 + cfg.w_j2d_samples * t["j2d_samples"] + cfg.w_q * t["q"])
        parts = {}
        if nll is not None:
            total = cfg.w_nll * nll + total
            parts["nll"] = float(nll.detach())
        parts.update({k: float(v.detach()) for k, v in extra.items()})
        parts.update({k: float(t[k].detach()) for k in ("y", "j3d", "j3d_rr", "j2d_mode", "j2d_samples", "q")})
        parts["total"] = float(total.detach())
        parts["mpjpe_rr_mm"] = float(t["mpjpe_rr_mm"])
        return total, parts

    def _noisy(self, y: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
        """ProHMR's jitter of the annotations before a likelihood, ``nll_noise`` σ of the normalisation."""
        return y + cfg.nll_noise * self.y_std * torch.randn_like(y) if cfg.nll_noise > 0 else y

    @staticmethod
    def _mean_valid(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``v (B,K)`` -> mean over images of the mean over each image's valid annotations (scalar)."""
        v = torch.where(mask, v, torch.zeros_like(v))
        return (v.sum(1) / mask.sum(1).to(v.dtype)).mean()


class Regressor(_EncoderModel):
    """Deterministic regressor: ``y = g(v)``; ``sample`` returns it ``n`` times (std 0), logp NaN."""

    kind = "regressor"

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__(cfg, hand_model)
        c = self.cfg
        self.head = _Head(c.feature_dim, 0, c.head_hidden, c.head_layers, Y_DIM)

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """``(B,218)``."""
        return self.denormalize_y(self.head(ctx)[:, 0])

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        """``(y (B,n,218), logp (B,n) NaN)``: the prediction ``n`` times; ``z`` is checked, otherwise unused."""
        if z is not None:
            self._noise(ctx, n, z)
        y = self.mode(ctx)
        return y[:, None].expand(-1, n, -1).contiguous(), ctx.new_full((ctx.shape[0], n), float("nan"))

    @torch.no_grad()
    def predict(self, images, K_crop, n_samples: int = 100, z=None):
        """As the base, lifting the one prediction once (all samples equal it)."""
        ctx = self.encode(images)
        y, logp = self.sample(ctx, n_samples, z)
        joints = self.lift(y[:, 0], K_crop)
        return {"mode_y": y[:, 0], "mode_joints": joints, "samples_y": y,
                "samples_joints": joints[:, None].expand(-1, n_samples, -1, -1).contiguous(), "samples_logp": logp}

    def _fit(self, ctx, y, mask, cfg):
        return None, self.mode(ctx)[:, None], {}


class MCDropout(_EncoderModel):
    """MC dropout: the regressor's head with every hidden layer's output dropped with ``cfg.dropout_p``.

    A sample is one dropout mask, derived from its noise row ``z`` (module doc); mode = dropout off.
    """

    kind = "mc_dropout"

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__(cfg, hand_model)
        c = self.cfg
        self.head = _Head(c.feature_dim, 0, c.head_hidden, c.head_layers, Y_DIM)
        P = torch.randn(c.head_layers * c.head_hidden, Y_DIM, generator=torch.Generator().manual_seed(MASK_SEED),
                        dtype=torch.float64)
        # a plain attribute, not a buffer: a function of a constant (nothing to save) that must stay float64
        # whatever .float() / .half() do to the module (module doc); moved to z's device on use
        self.mask_proj = P / P.norm(dim=1, keepdim=True)
        self.keep_above = math.sqrt(2.0) * torch.erfinv(torch.tensor(2 * c.dropout_p - 1, dtype=torch.float64)).item()

    def keep_masks(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B,n,218)`` -> inverted-dropout scales ``(B,n,head_layers,head_hidden)`` in ``{0, 1/(1-p)}``."""
        if self.mask_proj.device != z.device:
            with torch.inference_mode(False):  # cached: must stay usable outside rank's inference mode
                self.mask_proj = self.mask_proj.to(z.device)
        g = z.to(torch.float64) @ self.mask_proj.T
        keep = (g > self.keep_above).to(z.dtype) / (1.0 - self.cfg.dropout_p)
        return keep.view(*z.shape[:-1], self.cfg.head_layers, self.cfg.head_hidden)

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """Dropout off: ``(B,218)``."""
        return self.denormalize_y(self.head(ctx)[:, 0])

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        """``(y (B,n,218), logp (B,n) NaN)``, one dropout mask per row of ``z``."""
        z = self._noise(ctx, n, z)
        y = self.denormalize_y(self.head(ctx, keep=self.keep_masks(z)))
        return y, ctx.new_full((ctx.shape[0], n), float("nan"))

    def _fit(self, ctx, y, mask, cfg):
        y_all, _ = self.sample(ctx, 1 + cfg.n_samples)
        return None, y_all, {}


class GaussianBaseline(_EncoderModel):
    """Aleatoric Gaussian: ``y ~ N(μ(v), diag σ(v)²)``; ``y = μ + σ z``, exact logp, mode = μ."""

    kind = "gaussian"

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__(cfg, hand_model)
        c = self.cfg
        self.head = _Head(c.feature_dim, 0, c.head_hidden, c.head_layers, 2 * Y_DIM)

    def params(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ (B,218), log σ (B,218))`` in normalised units."""
        mu, raw = self.head(ctx)[:, 0].split(Y_DIM, dim=-1)
        return mu, _soft_bound(raw, MAX_LOG_STD)

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """``μ`` in y units: ``(B,218)``."""
        return self.denormalize_y(self.params(ctx)[0])

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        """``(y (B,n,218), log p(y|v) (B,n))``: ``ŷ = μ + σ z``."""
        z = self._noise(ctx, n, z)
        mu, log_std = self.params(ctx)
        y = self.denormalize_y(mu[:, None] + torch.exp(log_std)[:, None] * z)
        logp = _log_normal(z, torch.zeros_like(z)) - log_std.sum(-1)[:, None] - torch.log(self.y_std).sum()
        return y, logp

    def log_prob_multi(self, y: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """``log p(y|v)`` in y units: ``y (B,K,218)`` -> ``(B,K)``."""
        mu, log_std = self.params(ctx)
        return _log_normal(self.normalize_y(y) - mu[:, None], log_std[:, None]) - torch.log(self.y_std).sum()

    def _fit(self, ctx, y, mask, cfg):
        nll = -self._mean_valid(self.log_prob_multi(self._noisy(y, cfg), ctx), mask)
        z = torch.randn(ctx.shape[0], 1 + cfg.n_samples, Y_DIM, dtype=ctx.dtype, device=ctx.device)
        z[:, 0] = 0.0  # row 0: the mode μ
        y_all, _ = self.sample(ctx, z.shape[1], z)
        return nll, y_all, {}


class CVAE(_EncoderModel):
    """Conditional VAE: ``ŷ = g(v, l) (+ N(0, diag σ_dec²) in the likelihood)``, ``l ~ N(0, I_latent_dim)``.

    ``l`` = the first ``latent_dim`` entries of a noise row ``z``; mode = ``g(v, 0)``; logp NaN. The
    decoder std ``σ_dec`` (per dimension, not image-dependent) is learned so the ELBO weighs
    reconstruction against the KL in the data's own units; with it fixed at 1 normalised unit the latent
    would only pay off for errors above the whole dataset's spread and the model would collapse to a
    regressor. Samples are the decoder means ``g(v, l)`` (no decoder noise added), as usual for VAEs.
    """

    kind = "cvae"

    def __init__(self, cfg: ModelConfig | None = None, hand_model=None):
        super().__init__(cfg, hand_model)
        c = self.cfg
        self.decoder = _Head(c.feature_dim, c.latent_dim, c.head_hidden, c.head_layers, Y_DIM)
        self.recognition = _Head(c.feature_dim, Y_DIM, c.head_hidden, c.head_layers, 2 * c.latent_dim)
        self.dec_log_std = nn.Parameter(torch.zeros(Y_DIM))  # normalised units, soft-bounded

    def decode(self, ctx: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``g(v, l)``: ``ctx (B,F)``, ``latent (B,m,latent_dim)`` -> ``y (B,m,218)`` in y units."""
        return self.denormalize_y(self.decoder(ctx, latent))

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """``g(v, 0)``: ``(B,218)``."""
        return self.decode(ctx, ctx.new_zeros(ctx.shape[0], 1, self.cfg.latent_dim))[:, 0]

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        """``(y (B,n,218), logp (B,n) NaN)``: ``g(v, z[..., :latent_dim])``."""
        z = self._noise(ctx, n, z)
        return self.decode(ctx, z[..., : self.cfg.latent_dim]), ctx.new_full((ctx.shape[0], n), float("nan"))

    def elbo(self, y: torch.Tensor, ctx: torch.Tensor, eps: torch.Tensor | None = None):
        """Evidence lower bound on ``log p(y|v)`` in y units and its KL term: ``y (B,K,218)`` -> ``((B,K), (B,K))``.

        One reparameterised latent per annotation, ``l = μ_q + σ_q eps`` (``eps (B,K,latent_dim)``, drawn when None).
        """
        y_hat = self.normalize_y(y)
        mu_q, raw = self.recognition(ctx, y_hat).split(self.cfg.latent_dim, dim=-1)
        log_std_q = _soft_bound(raw, MAX_LOG_STD)
        if eps is None:
            eps = torch.randn_like(mu_q)
        latent = mu_q + torch.exp(log_std_q) * eps
        recon = _log_normal(y_hat - self.decoder(ctx, latent), _soft_bound(self.dec_log_std, MAX_LOG_STD))
        kl = (0.5 * (mu_q**2 + torch.exp(2 * log_std_q) - 1.0) - log_std_q).sum(-1)
        return recon - kl - torch.log(self.y_std).sum(), kl

    def _fit(self, ctx, y, mask, cfg):
        elbo, kl = self.elbo(self._noisy(y, cfg), ctx)
        latent = torch.randn(ctx.shape[0], 1 + cfg.n_samples, self.cfg.latent_dim, dtype=ctx.dtype, device=ctx.device)
        latent[:, 0] = 0.0  # row 0: the mode g(v, 0); the others from the prior, as at test time
        return -self._mean_valid(elbo, mask), self.decode(ctx, latent), {"kl": self._mean_valid(kl, mask)}


BASELINES: dict[str, type[_EncoderModel]] = {m.kind: m for m in (Regressor, MCDropout, GaussianBaseline, CVAE)}
