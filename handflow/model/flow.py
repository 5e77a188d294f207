"""Conditional GLOW over the pose vector ``y`` (HandFlow §3.2.2, built like ProHMR's flow head).

Directions (read this first)
----------------------------
HandFlow writes the flow as ``f_v : z -> y`` (noise to pose) with base ``p_Z = N(0, I)``:
``p(y|v) = p_Z(f_v^{-1}(y)) |det ∂f_v(z)/∂z|^{-1}``. nflows' transforms run the other way: their
``forward`` maps data to noise (``y -> z``) and returns ``log|det ∂z/∂y|``. So here

* ``f_v`` (sampling, the mode ``f_v(0)``) = nflows ``transform.inverse(z, context)``;
* ``f_v^{-1}`` (likelihood)               = nflows ``transform.forward(y, context)``.

Every public method of :class:`ConditionalGlow` that returns a log-determinant returns
``log|det ∂f_v(z)/∂z|`` (the quantity in HandFlow's ``L_DetMag``), whatever direction it ran.

Architecture
------------
``K`` steps (``num_steps``), each (in the ``y -> z`` direction):
``ActNorm -> LULinear(identity_init) -> affine coupling``; the coupling mask alternates between
steps (even features transformed in even steps, odd features in odd steps). The coupling net is an
nflows ``ResidualNet`` (hidden ``hidden``, ``num_blocks`` residual blocks, GLU context gates) whose first
layer sees ``cat(x_a, context)``; its last layer is initialised near zero (U(-1e-3, 1e-3), zero bias)
so a fresh flow is close to the identity.

Context: the image feature ``v`` (512-d ResNet-18/34, 2048-d ResNet-50) goes through a small
embedding MLP once per call (``context_dim``; ``0`` = use ``v`` as it is, as ProHMR and the paper do).
The coupling nets additionally project the (embedded) context once per image and broadcast it over
that image's samples/annotations (``_CouplingNet``), which is numerically identical to nflows'
``ResidualNet`` on a per-row repeated context but does no per-sample work on the image part.

Departures from bare nflows 0.14, and why
-----------------------------------------
* ``LULinear`` inverse uses the deprecated ``torch.triangular_solve`` (warns on torch 2.x):
  :class:`LULinearSolve` overrides it with ``torch.linalg.solve_triangular`` (equal to ~1e-6).
  ``NaiveLinear`` is never used (its inverse calls the removed ``torch.solve``).
* Coupling scale: nflows' ``sigmoid(u + 2) + 1e-3`` can only contract in ``y -> z``. We use a soft clamp
  ``log_scale = L * tanh(u / L)`` with ``L = max_log_scale`` (default 3), symmetric, exactly 1 at
  initialisation, and bounded so finite inputs never overflow to inf/NaN.
* ActNorm data-dependent initialisation (:class:`DataInitActNorm`): the first ``y -> z`` pass in
  training mode (or an explicit :meth:`ConditionalGlow.data_init`) sets each ActNorm so that its output
  on that batch has zero mean and unit variance per feature. Deterministic for a given batch (no
  randomness; biased std over the batch, floored at ``1e-3`` so constant features do not give inf;
  a batch of one row only centres). Before any initialisation an ActNorm is the identity, so sampling
  from an untrained flow works. The ``initialized`` flag is a buffer and travels with checkpoints.
  Under DDP, initialise before wrapping (same batch on every rank, or rank 0 then broadcast).
* Finite inputs never give NaN: the soft clamp bounds every coupling scale; measured in float32,
  ``y`` and context up to ~1e30 in magnitude give finite samples and a finite or ``-inf`` log-density
  (only values near the float32 limit, ~3e38, overflow inside the coupling nets).

Mode: ``mode(ctx) = f_v(0)`` (z = 0 passed as the sampling noise). ``log p_Z`` is maximal at ``z = 0``;
``f_v(0)`` is the density mode of ``p(y|v)`` only when the Jacobian of ``f_v`` is constant (e.g. a flow of
ActNorm and LU steps only) — in general the ``|det|`` factor moves the density mode. HandFlow uses
``f_v(0)`` as "the mode" by definition, and so do we.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import ActNorm, AffineCouplingTransform, CompositeTransform, LULinear
from torch import nn
from torch.nn import functional as F

from handflow.errors import HandflowError

__all__ = ["ConditionalGlow", "GlowStep", "LULinearSolve", "DataInitActNorm", "SoftClampAffineCoupling"]

_LOG_2PI = math.log(2 * math.pi)


class LULinearSolve(LULinear):
    """nflows ``LULinear`` whose inverse uses ``torch.linalg.solve_triangular`` (no deprecation warning)."""

    def inverse_no_cache(self, inputs):
        lower, upper = self._create_lower_upper()
        rhs = (inputs - self.bias).t()
        out = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        out = torch.linalg.solve_triangular(upper, out, upper=True, unitriangular=False)
        logabsdet = -self.logabsdet() * inputs.new_ones(inputs.shape[0])
        return out.t(), logabsdet

    def weight_inverse(self):
        lower, upper = self._create_lower_upper()
        eye = torch.eye(self.features, dtype=lower.dtype, device=lower.device)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, lower_inv, upper=True, unitriangular=False)


class DataInitActNorm(ActNorm):
    """nflows ``ActNorm`` with a guarded, deterministic data-dependent initialisation (see module doc)."""

    min_std = 1e-3

    def _initialize(self, inputs):
        with torch.no_grad():
            x = inputs.reshape(-1, inputs.shape[1]) if inputs.dim() == 2 else inputs.permute(0, 2, 3, 1).reshape(
                -1, inputs.shape[1]
            )
            x = x.to(self.log_scale.dtype)
            mean = x.mean(0)
            if x.shape[0] > 1:
                std = x.std(0, unbiased=False).clamp_min(self.min_std)
            else:
                std = torch.ones_like(mean)
            self.log_scale.data.copy_(-torch.log(std))
            self.shift.data.copy_(-mean / std)
            self.initialized.data = torch.tensor(True, dtype=torch.bool, device=self.initialized.device)


class SoftClampAffineCoupling(AffineCouplingTransform):
    """Affine coupling with ``log_scale = L * tanh(u / L)`` (``L = max_log_scale``); scale 1 at ``u = 0``."""

    def __init__(self, mask, transform_net_create_fn, max_log_scale: float = 3.0):
        self.max_log_scale = float(max_log_scale)
        super().__init__(mask, transform_net_create_fn)

    def _log_scale_and_shift(self, params):
        n = self.num_transform_features
        shift, raw = params[:, :n], params[:, n:]
        L = self.max_log_scale
        return L * torch.tanh(raw / L), shift

    def _scale_and_shift(self, transform_params):
        log_scale, shift = self._log_scale_and_shift(transform_params)
        return torch.exp(log_scale), shift

    def _coupling_transform_forward(self, inputs, transform_params):
        log_scale, shift = self._log_scale_and_shift(transform_params)
        return inputs * torch.exp(log_scale) + shift, log_scale.sum(-1)

    def _coupling_transform_inverse(self, inputs, transform_params):
        log_scale, shift = self._log_scale_and_shift(transform_params)
        return (inputs - shift) * torch.exp(-log_scale), -log_scale.sum(-1)


class _CouplingNet(ResidualNet):
    """nflows ``ResidualNet`` (same parameters, same function) that accepts a per-image context.

    ``inputs (N, d_a)``, ``context (B, C)`` with ``N = B * n``: rows ``i*n .. i*n+n-1`` belong to image ``i``.
    The context's share of the first layer and of every block's GLU gate is computed once per image
    and broadcast, instead of once per row. With ``N == B`` this is exactly ``ResidualNet.forward``.
    """

    def __init__(self, in_features, out_features, hidden_features, context_features, num_blocks):
        super().__init__(
            in_features, out_features, hidden_features, context_features=context_features, num_blocks=num_blocks
        )
        self.in_features = in_features
        nn.init.uniform_(self.final_layer.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, inputs, context=None):
        if context is None:
            raise HandflowError("the coupling network needs a context")
        N, B = inputs.shape[0], context.shape[0]
        if B == 0 or N % B:
            raise HandflowError(f"flow: {N} rows do not split evenly over {B} contexts")
        n = N // B
        W, b = self.initial_layer.weight, self.initial_layer.bias
        h = F.linear(inputs, W[:, : self.in_features]).view(B, n, -1)
        h = h + F.linear(context, W[:, self.in_features :], b)[:, None, :]
        for block in self.blocks:
            t = block.linear_layers[0](block.activation(h))
            t = block.linear_layers[1](block.dropout(block.activation(t)))
            gate = torch.sigmoid(block.context_layer(context))[:, None, :]
            h = h + t * gate  # == F.glu(cat(t, context_layer(ctx))) of nflows' ResidualBlock
        return self.final_layer(h).reshape(N, -1)


class GlowStep(NamedTuple):
    """One flow step, in the ``y -> z`` order nflows runs it."""

    actnorm: "DataInitActNorm"
    lu: "LULinearSolve"
    coupling: "SoftClampAffineCoupling"


class ConditionalGlow(nn.Module):
    """Conditional GLOW ``f_v: z -> y`` over ``features`` dims, conditioned on a ``context_features`` vector.

    Shapes: ``ctx (B, context_features)`` is the raw image feature; it is embedded once per call.
    Several rows per image are passed as ``(B, n, d)``.
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        context_dim: int = 128,
        num_steps: int = 4,
        hidden: int = 256,
        num_blocks: int = 2,
        max_log_scale: float = 3.0,
    ):
        super().__init__()
        if features < 2:
            raise HandflowError(f"flow needs at least 2 features, found {features}")
        self.features = features
        self.context_features = context_features
        if context_dim and context_dim > 0:
            self.embed = nn.Sequential(
                nn.Linear(context_features, context_dim), nn.ReLU(), nn.Linear(context_dim, context_dim)
            )
            emb = context_dim
        else:
            self.embed = nn.Identity()
            emb = context_features
        self.embedded_dim = emb
        steps = []
        for i in range(num_steps):
            mask = torch.arange(features) % 2 == (i % 2)
            steps.append(GlowStep(
                DataInitActNorm(features),
                LULinearSolve(features, identity_init=True),
                SoftClampAffineCoupling(
                    mask.to(torch.int64),
                    lambda cin, cout: _CouplingNet(cin, cout, hidden, emb, num_blocks),
                    max_log_scale=max_log_scale,
                ),
            ))
        # one flat composite (parameter names flow.transform._transforms.<i>.* are what checkpoints hold)
        self.transform = CompositeTransform([m for step in steps for m in step])
        # the same modules by name, for code that reads the steps (inference.GlowSampler); a plain
        # list outside the module tree, so nothing is registered twice
        self.__dict__["steps"] = steps

    # ----------------------------------------------------------------- inference
    def embed_dtype_device(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.transform.parameters())
        return p.device, p.dtype

    # ----------------------------------------------------------------- plumbing
    def embed_context(self, ctx: torch.Tensor) -> torch.Tensor:
        """``(B, context_features) -> (B, embedded_dim)``; the only image-dependent computation."""
        if ctx.dim() != 2 or ctx.shape[1] != self.context_features:
            raise HandflowError(f"flow context must be (B, {self.context_features}), found {tuple(ctx.shape)}")
        return self.embed(ctx)

    def _rows(self, x: torch.Tensor, B: int) -> tuple[torch.Tensor, tuple]:
        """Accept ``(B, d)`` or ``(B, n, d)``; return ``(B*n, d)`` and the leading shape."""
        if x.dim() == 2:
            lead = (x.shape[0],)
        elif x.dim() == 3:
            lead = tuple(x.shape[:2])
        else:
            raise HandflowError(f"flow input must be (B, d) or (B, n, d), found {tuple(x.shape)}")
        if x.shape[-1] != self.features or x.shape[0] != B:
            raise HandflowError(
                f"flow input {tuple(x.shape)} does not match (B={B}, ..., d={self.features})"
            )
        return x.reshape(-1, self.features), lead

    def _y_to_z(self, y: torch.Tensor, emb: torch.Tensor):
        """nflows forward: rows ``(B*n, d)`` -> ``z``, ``log|det ∂z/∂y|``."""
        return self.transform(y, emb)

    def _z_to_y(self, z: torch.Tensor, emb: torch.Tensor):
        """nflows inverse = ``f_v``: rows -> ``y``, ``log|det ∂y/∂z|``."""
        return self.transform.inverse(z, emb)

    @staticmethod
    def log_normal(z: torch.Tensor) -> torch.Tensor:
        """``log N(z; 0, I)`` over the last axis."""
        return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * _LOG_2PI

    # ----------------------------------------------------------------- API
    def forward_and_logdet(self, y: torch.Tensor, ctx: torch.Tensor):
        """``f_v^{-1}``: ``y (B,d)|(B,n,d)`` -> ``(z, log|det ∂f_v(z)/∂z|)`` with ``z = f_v^{-1}(y)``."""
        rows, lead = self._rows(y, ctx.shape[0])
        z, lad_fwd = self._y_to_z(rows, self.embed_context(ctx))
        return z.reshape(*lead, self.features), (-lad_fwd).reshape(lead)

    def inverse(self, z: torch.Tensor, ctx: torch.Tensor):
        """``f_v``: ``z (B,d)|(B,n,d)`` -> ``(y, log|det ∂f_v(z)/∂z|)``."""
        rows, lead = self._rows(z, ctx.shape[0])
        y, lad = self._z_to_y(rows, self.embed_context(ctx))
        return y.reshape(*lead, self.features), lad.reshape(lead)

    def log_prob(self, y: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """``log p(y | v)``: ``y (B, d)`` -> ``(B,)``."""
        if y.dim() != 2:
            raise HandflowError(f"log_prob expects y of shape (B, d), found {tuple(y.shape)}")
        z, logdet_f = self.forward_and_logdet(y, ctx)
        return self.log_normal(z) - logdet_f

    def log_prob_multi(self, y: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``y (B, K, d)`` (K annotations per image) -> ``(B, K)``; context embedded once.

        With ``mask (B, K)`` (True = valid) only valid rows go through the flow (so padding never
        reaches ActNorm's data initialisation); masked entries of the result are 0.
        """
        return self.latents_multi(y, ctx, mask)[2]

    def latents_multi(self, y: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None):
        """``y (B, K, d)`` -> ``(z (B,K,d), log|det ∂f_v/∂z| (B,K), log p (B,K))``; masked rows are 0."""
        if y.dim() != 3:
            raise HandflowError(f"log_prob_multi expects y of shape (B, K, d), found {tuple(y.shape)}")
        B, K, d = y.shape
        if mask is not None and mask.shape != (B, K):
            raise HandflowError(f"annotation mask must be ({B}, {K}), found {tuple(mask.shape)}")
        if mask is None or bool(mask.all()):
            # every row valid: one grouped pass, the context's share computed once per image
            z, logdet_f = self.forward_and_logdet(y, ctx)
            return z, logdet_f, self.log_normal(z) - logdet_f
        mask = mask.to(torch.bool)
        emb = self.embed_context(ctx)
        rows = y[mask]  # (M, d)
        emb_rows = emb[:, None, :].expand(B, K, emb.shape[-1])[mask]  # embedded context, no re-encoding
        z_rows, lad_fwd = self._y_to_z(rows, emb_rows)
        z = y.new_zeros(B, K, d).masked_scatter(mask[..., None].expand(B, K, d), z_rows)
        logdet_f = y.new_zeros(B, K).masked_scatter(mask, -lad_fwd)
        logp = y.new_zeros(B, K).masked_scatter(mask, self.log_normal(z_rows) + lad_fwd)
        return z, logdet_f, logp

    def sample(self, ctx: torch.Tensor, n: int, z: torch.Tensor | None = None):
        """``n`` samples per image: ``-> (y (B, n, d), log p(y|v) (B, n))``. ``z (B, n, d)`` optional noise."""
        B = ctx.shape[0]
        if z is None:
            z = torch.randn(B, n, self.features, dtype=ctx.dtype, device=ctx.device)
        elif z.shape != (B, n, self.features):
            raise HandflowError(f"sample noise must be ({B}, {n}, {self.features}), found {tuple(z.shape)}")
        y, logdet_f = self.inverse(z, ctx)
        return y, self.log_normal(z) - logdet_f

    def mode(self, ctx: torch.Tensor) -> torch.Tensor:
        """``f_v(0)``: ``(B, d)``."""
        z = ctx.new_zeros(ctx.shape[0], self.features)
        return self.inverse(z, ctx)[0]

    @torch.no_grad()
    def data_init(self, y: torch.Tensor, ctx: torch.Tensor) -> None:
        """Initialise every ActNorm from this batch (``y (B,d)|(B,K,d)``); no-op for initialised ones."""
        was = self.training
        self.train(True)
        try:
            self.forward_and_logdet(y, ctx)
        finally:
            self.train(was)

    @property
    def initialized(self) -> bool:
        return all(bool(m.initialized) for m in self.modules() if isinstance(m, ActNorm))
