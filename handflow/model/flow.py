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

import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import ActNorm, AffineCouplingTransform, CompositeTransform, LULinear
from torch import nn
from torch.nn import functional as F

from handflow.errors import HandflowError

__all__ = ["ConditionalGlow", "GlowSampler", "LULinearSolve", "DataInitActNorm", "SoftClampAffineCoupling"]

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


def _pad16(n: int) -> int:
    return -(-n // 16) * 16


class GlowSampler:
    """Inference-only ``f_v: z -> y`` of a :class:`ConditionalGlow`, with its constants precomputed.

    Built by :meth:`ConditionalGlow.sampler` from the flow's current weights (a snapshot: rebuild it
    after the weights change; ``HandFlowNet`` does, keyed on its parameters' versions). Gives what
    ``ConditionalGlow.inverse`` gives, within float rounding, for a fraction of the cost:

    * each step's ``LULinear`` inverse and ``ActNorm`` inverse are one affine map ``y = M b + m`` whose
      matrix is computed once (in float64) instead of two triangular solves per call;
    * the state is kept in the order the next coupling splits it (identity features first), with the
      permutations folded into ``M``: no gathers or scatters per step;
    * the context's share of each coupling net (first layer, GLU gates) is computed once per image
      (:meth:`condition`) and broadcast over that image's samples;
    * an optional affine map of the output (``HandFlowNet``'s ``y`` de-normalisation) is folded into
      the last step's ``M``;
    * matrix output widths are padded with zero rows to a multiple of 16 (218 -> 224): MKL's float32
      GEMM runs such shapes ~1.7x faster on AVX-512 CPUs; the padding columns stay zero.

    Never use it for training: it holds no parameters and builds no graph.
    """

    def __init__(self, glow: "ConditionalGlow", out_scale: torch.Tensor | None = None,
                 out_shift: torch.Tensor | None = None):
        mods = list(glow.transform._transforms)
        d = glow.features
        self.features = d
        self.embed = glow.embed
        dev, dt = glow.embed_dtype_device()
        nat = torch.arange(d, device=dev)
        perms = [torch.cat([c.identity_features, c.transform_features]).to(dev) for c in mods[2::3]]
        self.in_perm = perms[-1]
        self.steps = []
        logdet_const = torch.zeros((), dtype=torch.float64, device=dev)
        n_steps = len(perms)
        with torch.no_grad():
            for k in reversed(range(n_steps)):
                act, lu, cpl = mods[3 * k : 3 * k + 3]
                net = cpl.transform_net
                lower, upper = lu._create_lower_upper()
                eye = torch.eye(d, dtype=torch.float64, device=dev)
                w_inv = torch.linalg.solve_triangular(upper.double(), torch.linalg.solve_triangular(
                    lower.double(), eye, upper=False, unitriangular=True), upper=True)
                inv_s = torch.exp(-act.log_scale.double())
                M = inv_s[:, None] * w_inv  # y = (W^-1 (b - bias) - shift) / scale
                m = -(w_inv @ lu.bias.double() + act.shift.double()) * inv_s
                logdet_const = logdet_const - act.log_scale.double().sum() - lu.logabsdet().double()
                if k == 0 and out_scale is not None:
                    M = out_scale.double()[:, None] * M
                    m = out_scale.double() * m + out_shift.double()
                out_perm = perms[k - 1] if k > 0 else nat
                M = M[out_perm][:, perms[k]]
                n_id = cpl.num_identity_features
                n_tr = d - n_id
                W_in = net.initial_layer.weight
                p_tr = _pad16(n_tr)
                W_out = net.final_layer.weight.detach().new_zeros(2 * p_tr, net.final_layer.weight.shape[1])
                b_out = net.final_layer.bias.detach().new_zeros(2 * p_tr)
                W_out[:n_tr], W_out[p_tr : p_tr + n_tr] = net.final_layer.weight[:n_tr], net.final_layer.weight[n_tr:]
                b_out[:n_tr], b_out[p_tr : p_tr + n_tr] = net.final_layer.bias[:n_tr], net.final_layer.bias[n_tr:]
                M_pad = M.new_zeros(_pad16(d), d)
                M_pad[:d] = M
                m_pad = m.new_zeros(_pad16(d))
                m_pad[:d] = m[out_perm]
                self.steps.append({
                    "n_id": n_id,
                    "L": cpl.max_log_scale,
                    "W_x": W_in[:, : net.in_features].detach().to(dt),
                    "W_ctx": W_in[:, net.in_features :].detach().to(dt),
                    "b_in": net.initial_layer.bias.detach().to(dt),
                    "blocks": [(b.linear_layers[0].weight.detach(), b.linear_layers[0].bias.detach(),
                                b.linear_layers[1].weight.detach(), b.linear_layers[1].bias.detach(),
                                b.context_layer.weight.detach(), b.context_layer.bias.detach())
                               for b in net.blocks],
                    "W_out": W_out, "b_out": b_out, "p_tr": p_tr,  # rows [shift | 0 | raw scale | 0]
                    "M_a": M_pad[:, :n_id].to(dt).contiguous(), "M_b": M_pad[:, n_id:].to(dt).contiguous(),
                    "m": m_pad.to(dt),
                })
        self.logdet_const = logdet_const.to(dt)

    @staticmethod
    def supports(glow: "ConditionalGlow") -> bool:
        """Whether every coupling net is the plain ReLU ResidualNet this sampler reimplements."""
        nets = [t.transform_net for t in glow.transform._transforms if isinstance(t, SoftClampAffineCoupling)]
        return bool(nets) and all(
            isinstance(n, _CouplingNet)
            and all(b.activation is F.relu and not b.use_batch_norm and b.dropout.p == 0 and b.context_layer is not None for b in n.blocks)
            for n in nets
        )

    def condition(self, ctx: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """``ctx (B, context_features)`` -> per step ``(first-layer share (B,H), GLU gates [(B,H)])``."""
        emb = self.embed(ctx)
        return [(F.linear(emb, s["W_ctx"], s["b_in"]),
                 [torch.sigmoid(F.linear(emb, blk[4], blk[5])) for blk in s["blocks"]]) for s in self.steps]

    @staticmethod
    def slice_condition(cond, i0: int, i1: int):
        """The conditioning of images ``i0:i1`` (from :meth:`condition`)."""
        return [(h[i0:i1], [g[i0:i1] for g in gates]) for h, gates in cond]

    def __call__(self, z: torch.Tensor, cond, with_logdet: bool = True):
        """``z (B, n, d)`` with ``cond`` for those ``B`` images -> ``(y (B,n,d), log|det ∂y/∂z| (B,n) or None)``."""
        B, n, d = z.shape
        x = z.reshape(B * n, d)[:, self.in_perm]  # identity features of the first coupling first
        lad = None
        for s, (h_ctx, gates) in zip(self.steps, cond):
            n_id = s["n_id"]
            x_a, x_b = x[:, :n_id], x[:, n_id:d]
            h = torch.mm(x_a, s["W_x"].t()).view(B, n, -1).add_(h_ctx[:, None])
            H = h.shape[-1]
            for (W0, b0, W1, b1, _, _), gate in zip(s["blocks"], gates):
                t = torch.addmm(b0, torch.relu(h).view(-1, H), W0.t())
                t = torch.addmm(b1, t.relu_(), W1.t())
                h.addcmul_(t.view(B, n, H), gate[:, None])  # GLU: h + t * sigmoid(context gate)
            params = torch.addmm(s["b_out"], h.view(-1, H), s["W_out"].t())
            n_tr, p_tr = d - n_id, s["p_tr"]
            shift, raw = params[:, :n_tr], params[:, p_tr : p_tr + n_tr]
            L = s["L"]
            log_scale = raw.div_(L).tanh_().mul_(L)  # soft clamp, in place on the params buffer
            if with_logdet:
                step_lad = -log_scale.sum(-1)
                lad = step_lad if lad is None else lad + step_lad
            x_b_new = (x_b - shift).mul_(torch.exp(log_scale.neg_()))
            # coupling output [x_a, x_b_new] through the folded LU/ActNorm inverse, split into two products
            x = torch.addmm(s["m"], x_a, s["M_a"].t()).addmm_(x_b_new, s["M_b"].t())
        y = x[:, :d].reshape(B, n, d)
        if not with_logdet:
            return y, None
        return y, (lad + self.logdet_const).view(B, n)


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
            steps += [
                DataInitActNorm(features),
                LULinearSolve(features, identity_init=True),
                SoftClampAffineCoupling(
                    mask.to(torch.int64),
                    lambda cin, cout: _CouplingNet(cin, cout, hidden, emb, num_blocks),
                    max_log_scale=max_log_scale,
                ),
            ]
        self.transform = CompositeTransform(steps)

    # ----------------------------------------------------------------- inference
    def embed_dtype_device(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.transform.parameters())
        return p.device, p.dtype

    def sampler(self, out_scale: torch.Tensor | None = None, out_shift: torch.Tensor | None = None) -> GlowSampler | None:
        """A :class:`GlowSampler` snapshot of the current weights (``None`` if the nets are not the standard ones).

        ``out_scale``, ``out_shift`` (``(d,)`` each): the sampler returns ``y * out_scale + out_shift``.
        """
        if not GlowSampler.supports(self):
            return None
        return GlowSampler(self, out_scale, out_shift)

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
