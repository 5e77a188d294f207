"""Inference-only copies of the trainable model: BatchNorm folded into the encoder, the flow's
sampling pass with its constants precomputed, and the plan that holds both for one weight state.

Nothing here trains or holds parameters; every object is a snapshot of the weights it was built
from and equals the trainable path within float rounding. ``HandFlowNet`` builds an
:class:`InferencePlan` on the inference path (eval mode, no autograd) and rebuilds it whenever a
parameter or buffer changes (:func:`state_key`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from handflow.model.flow import ConditionalGlow, _CouplingNet
from handflow.model.resnet import ResNet

__all__ = ["GlowSampler", "InferencePlan", "fold_batchnorm", "state_key"]


# ---------------------------------------------------------------- encoder: BatchNorm folding


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``bn(conv(x))`` in eval mode as one convolution with a bias (computed in float64, then cast back)."""
    w = conv.weight.double()
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)  # (C_out,)
    bias = bn.bias.double() - bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.double() * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_((w * scale[:, None, None, None]).to(conv.weight.dtype))
    fused.bias.copy_(bias.to(conv.weight.dtype))
    return fused


@torch.no_grad()
def fold_batchnorm(model: ResNet, channels_last: bool = True) -> ResNet:
    """An inference-only copy of ``model`` with every BatchNorm folded into the convolution before it.

    Equal to ``model.eval()`` (running statistics) within float rounding; ``model`` is untouched, so
    training, parameter names and checkpoints are unaffected. The copy's BatchNorms are
    ``nn.Identity`` and its convolutions carry the folded bias: one pass over each activation
    instead of two. ``channels_last``: store the weights NHWC, oneDNN's fast layout on CPU (the
    caller passes channels-last images too). Never train the copy (it has no BatchNorm left).
    """
    folded = copy.deepcopy(model).eval()
    folded.conv1, folded.bn1 = _fold(folded.conv1, folded.bn1), nn.Identity()
    for layer in (folded.layer1, folded.layer2, folded.layer3, folded.layer4):
        for block in layer:
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
                if conv is not None:
                    setattr(block, f"conv{i}", _fold(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                block.downsample = nn.Sequential(_fold(block.downsample[0], block.downsample[1]))
    for p in folded.parameters():
        p.requires_grad_(False)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    return folded


# ---------------------------------------------------------------- flow: the sampling pass f_v(z)


def _pad16(n: int) -> int:
    return -(-n // 16) * 16


class GlowSampler:
    """Inference-only ``f_v: z -> y`` of a :class:`ConditionalGlow`, with its constants precomputed.

    Built by :meth:`GlowSampler.build` from the flow's current weights (a snapshot: rebuild it
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

    def __init__(self, glow: ConditionalGlow, out_scale: torch.Tensor | None = None,
                 out_shift: torch.Tensor | None = None):
        steps = glow.steps
        d = glow.features
        self.features = d
        self.embed = glow.embed
        dev, dt = glow.embed_dtype_device()
        nat = torch.arange(d, device=dev)
        # each coupling's order: identity features first, then the transformed ones
        perms = [torch.cat([s.coupling.identity_features, s.coupling.transform_features]).to(dev) for s in steps]
        self.in_perm = perms[-1]
        self.steps = []
        logdet_const = torch.zeros((), dtype=torch.float64, device=dev)
        n_steps = len(perms)
        with torch.no_grad():
            for k in reversed(range(n_steps)):
                act, lu, cpl = steps[k]
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

    @classmethod
    def build(cls, glow: ConditionalGlow, out_scale: torch.Tensor | None = None,
              out_shift: torch.Tensor | None = None) -> "GlowSampler | None":
        """A snapshot of ``glow``'s current weights (``None`` if its nets are not the standard ones).

        ``out_scale``, ``out_shift`` (``(d,)`` each): the sampler returns ``y * out_scale + out_shift``.
        """
        return cls(glow, out_scale, out_shift) if cls.supports(glow) else None

    @staticmethod
    def supports(glow: ConditionalGlow) -> bool:
        """Whether every coupling net is the plain ReLU ResidualNet this sampler reimplements."""
        nets = [s.coupling.transform_net for s in glow.steps]
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


# ---------------------------------------------------------------- the plan of one weight state


class InferencePlan:
    """Inference-time constants of one :class:`HandFlowNet` state: folded encoder and flow sampler."""

    def __init__(self, net, key: tuple):
        """``net``: a HandFlowNet (its ``encoder``, ``flow``, ``y_mean``, ``y_std``); ``key``: :func:`state_key` of it."""
        self.key = key
        self.encoder = fold_batchnorm(net.encoder, channels_last=True)
        self.sampler: GlowSampler | None = GlowSampler.build(net.flow, net.y_std, net.y_mean)
        self.log_std = torch.log(net.y_std).sum()


def state_key(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place (storage, version, dtype)."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in (*module.parameters(), *module.buffers()))
